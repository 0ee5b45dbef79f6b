"""Small helpers every torch port shares: numpy <-> tensor at the boundary, dtypes."""

from __future__ import annotations

import numpy as np

from torch_impl import device, framework_info, torch

__all__ = ["framework_info", "to_tensor", "to_numpy", "to_numpy_as", "torch_dtype", "torch", "device"]


def torch_dtype(dtype: str):
    t = torch()
    return {"float64": t.float64, "float32": t.float32}[dtype]


def to_tensor(x, dtype: str | None = None):
    t = torch()
    arr = np.asarray(x)
    out = t.from_numpy(np.array(arr, order="C", copy=True))
    if dtype is not None and np.issubdtype(arr.dtype, np.floating):
        out = out.to(torch_dtype(dtype))
    return out.to(device())


def to_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy().copy()


def to_numpy_as(x, convert) -> np.ndarray:
    """``convert(to_numpy(x))`` with one copy, not two, where ``convert`` makes a new array (a layout change):
    the tensor's buffer is read in place and copied only when ``convert`` returned a view of it."""
    view = x.detach().cpu().numpy()
    out = convert(view)
    return out.copy() if np.may_share_memory(out, view) else out
