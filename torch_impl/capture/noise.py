"""Random noise driven at the source in a torch port: a standard normal or uniform draw made in the
forward or the step (``torch.randn`` / ``randn_like`` / ``normal`` / ``Tensor.normal_``, ``torch.rand`` /
``rand_like`` / ``Tensor.uniform_``: a VAE's reparameterisation ``mu + std * eps``), seen by the
forward's TorchFunctionMode, takes parity's draw for its site: the k-th normal draw of a run is site
``NOISE_BASE["normal"] + k`` (uniform likewise), the draw a standard normal (``U[0, 1)``), channel-last
as TF's (moved to NCHW for a 4-D draw), scaled and shifted by the call's own ``mean``/``std`` (``from``/
``to``). Without a draw for its site the call draws its own. Other random functions (``randint``,
``randperm``, ``multinomial``, ``Tensor.exponential_``...) are not driven: a note names the function and
the user's line. Each driven call is recorded as a ``DropoutSite`` (index, name with file:line, shape).
"""

from __future__ import annotations

import functools
import sys

import numpy as np

from parity.errors import _is_users
from parity.portkit.program import DropoutSite

from .. import torch as _torch

__all__ = ["NOISE_BASE", "noise_kind", "drive", "undriven"]

#: as parity.program.batches.NOISE_BASE (tests/test_noise_sources.py checks they agree)
NOISE_BASE = {"normal": 1_000_000, "uniform": 2_000_000, "undriven": 3_000_000}


@functools.lru_cache(maxsize=1)
def _functions(t) -> dict:
    T = t.Tensor
    return {t.randn: ("normal", "torch.randn"), t.randn_like: ("normal", "torch.randn_like"),
            t.normal: ("normal", "torch.normal"), T.normal_: ("normal", "Tensor.normal_"),
            t.rand: ("uniform", "torch.rand"), t.rand_like: ("uniform", "torch.rand_like"),
            T.uniform_: ("uniform", "Tensor.uniform_")}


@functools.lru_cache(maxsize=1)
def _undriven(t) -> dict:
    T = t.Tensor
    out = {t.randint: "torch.randint", t.randint_like: "torch.randint_like", t.randperm: "torch.randperm",
           t.multinomial: "torch.multinomial", t.poisson: "torch.poisson", T.exponential_: "Tensor.exponential_",
           T.geometric_: "Tensor.geometric_", T.log_normal_: "Tensor.log_normal_", T.cauchy_: "Tensor.cauchy_",
           T.random_: "Tensor.random_", T.bernoulli_: "Tensor.bernoulli_"}
    return out


def noise_kind(func, t) -> str | None:
    """``normal`` or ``uniform`` for a draw parity drives; None otherwise."""
    try:
        hit = _functions(t).get(func)
    except TypeError:  # an unhashable callable
        return None
    return hit[0] if hit else None


def users_line() -> str:
    """``file:line`` of the innermost frame in the user's own file (``?`` when none)."""
    frame = sys._getframe(1)
    while frame is not None and not _is_users(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return "?"
    import os

    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


def undriven(func, t) -> str | None:
    """The note for a random function parity cannot drive; None for any other function."""
    try:
        label = _undriven(t).get(func)
    except TypeError:
        return None
    if label is None:
        return None
    return (f"not driven: {label} at {users_line()}: it draws its own numbers (what follows it is compared "
            "statistically at best: expect a difference from step 0 at the outputs after it)")


def _channel_last(shape: tuple) -> tuple:
    return (shape[0], shape[2], shape[3], shape[1]) if len(shape) == 4 else tuple(shape)


def _arg(args, kwargs, i: int, name: str, default):
    return kwargs.get(name, args[i] if len(args) > i else default)


def drive(watch, func, args, kwargs):
    """Call ``func`` (a normal or uniform draw) with parity's draw for its site when there is one."""
    t = _torch()
    label = _functions(t)[func][1]
    kind = _functions(t)[func][0]
    inplace = func in (t.Tensor.normal_, t.Tensor.uniform_)
    out = func(*args, **kwargs)  # the program's own draw: its shape, dtype and device (and the value without parity's)
    if not isinstance(out, t.Tensor) or not out.is_floating_point():
        return out
    counts = watch.noise_counts
    k = counts.get(kind, 0)
    counts[kind] = k + 1
    index = NOISE_BASE[kind] + k
    where = users_line()
    current = watch.prog._current[-1] if watch.prog._current else None
    name = f"{label} at {where}" + (f" (in {current})" if current else "")
    shape = _channel_last(tuple(out.shape))
    watch.noise.append(DropoutSite(index, name, shape, 0.0))
    draw = watch.masks.get(index)
    if draw is None:
        return out
    draw = np.asarray(draw)
    if draw.shape != shape:  # (a fixed-size draw whose first dimension only looked like the batch): its own
        watch.prog._note(f"not driven: {name}: parity's draw {list(draw.shape)} does not fit this call's {list(shape)} "
                         "(channel-last): it drew its own; expect a difference from step 0 at the outputs after it")
        return out
    eps = t.from_numpy(np.ascontiguousarray(draw)).to(dtype=out.dtype, device=out.device)
    if eps.dim() == 4:
        eps = eps.permute(0, 3, 1, 2)
    if kind == "normal":
        if func is t.normal:
            mean, std = _arg(args, kwargs, 0, "mean", 0.0), _arg(args, kwargs, 1, "std", 1.0)
        elif inplace:
            mean, std = _arg(args, kwargs, 1, "mean", 0.0), _arg(args, kwargs, 2, "std", 1.0)
        else:
            mean, std = 0.0, 1.0
        value = eps * std + mean
    else:
        low, high = (_arg(args, kwargs, 1, "from", 0.0), _arg(args, kwargs, 2, "to", 1.0)) if inplace else (0.0, 1.0)
        value = eps * (high - low) + low
    with t.no_grad():
        if inplace:
            out.copy_(value)
            return out
        fresh = value.detach().clone()
    return fresh.requires_grad_(out.requires_grad)
