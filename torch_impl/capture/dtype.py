"""Dtype conversion of a captured torch program: the run's dtype name ("float64" or "float32") as
a torch dtype (the model, a loss module and every float tensor of a batch are cast to it), and the
context that makes tensors the program creates on the fly (``torch.zeros``, constants) default to it,
so a float64 run stays float64 from the user's ``parity_program()`` to the last step.
"""

from __future__ import annotations

import contextlib

from parity.errors import ParityError

from .. import torch as _torch

__all__ = ["torch_dtype", "default_dtype"]


def torch_dtype(dtype: str):
    """The torch dtype named ``dtype`` (``"float64"`` or ``"float32"``); a one-line error otherwise."""
    t = _torch()
    try:
        return {"float64": t.float64, "float32": t.float32}[dtype]
    except KeyError:
        raise ParityError(f"unknown dtype {dtype!r}; expected float64 or float32") from None


@contextlib.contextmanager
def default_dtype(dtype: str):
    """Make tensors the program creates on the fly (``torch.zeros``, constants) use ``dtype``."""
    t = _torch()
    old = t.get_default_dtype()
    t.set_default_dtype(torch_dtype(dtype))
    try:
        yield
    finally:
        t.set_default_dtype(old)
