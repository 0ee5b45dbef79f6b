"""The records a capture adapter fills in for ``parity diff``: :class:`ParamSpec`, :class:`DropoutSite`,
and the :class:`DtypeError` it raises (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from parity.errors import ParityError

__all__ = ["ParamSpec", "DropoutSite", "DtypeError", "KINDS", "fit_mask", "OWN_MASK", "site_mask"]

#: the kinds a :class:`ParamSpec` may have
KINDS = (
    "dense_kernel", "conv_kernel", "bias", "bn_gamma", "bn_beta", "bn_mean", "bn_var", "ln_gamma", "ln_beta",
    "lstm_kernel", "lstm_recurrent", "lstm_bias", "embedding", "other",
)


@dataclass(frozen=True)
class ParamSpec:
    """One variable of a captured program, in its framework's own name and layout.

    Args:
        name: the program's own name (torch: ``features.0.weight``; TF: ``conv1/kernel``).
        shape: its shape in the framework's own layout (torch Linear ``[out, in]``, TF ``[in, out]``).
        kind: one of :data:`KINDS`.
        layer: the owning module / layer / scope.
        trainable: whether the optimizer trains it (BatchNorm statistics are not).
    """

    name: str
    shape: tuple
    kind: str
    layer: str
    trainable: bool = True

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.kind not in KINDS:
            raise ParityError(f"parameter {self.name}: unknown kind {self.kind!r}; expected one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class DropoutSite:
    """One dropout the adapter drives with parity's masks (channel-last mask shape, no batch size fixed)."""

    index: int
    name: str
    shape_channel_last: tuple
    rate: float

    def __post_init__(self):
        object.__setattr__(self, "shape_channel_last", tuple(int(s) for s in self.shape_channel_last))


class DtypeError(ParityError):
    """The program cannot run in the dtype asked (a TF1 optimizer's float32 constants in a float64 run).

    The message says what and how to fix it; :func:`compare_programs` reports that dtype only.
    """


def fit_mask(m: np.ndarray, shape: tuple) -> np.ndarray:
    """A mask drawn for another site's granularity fitted to ``shape``: a dimension the site has as 1
    (a channel dropout) takes the mask's first position; one the mask has as 1 is broadcast."""
    m = np.asarray(m)
    if m.shape == tuple(shape) or m.ndim != len(shape):
        return m
    m = m[tuple(slice(0, 1) if s == 1 and d != 1 else slice(None) for s, d in zip(shape, m.shape))]
    return np.broadcast_to(m, tuple(shape)).copy()


#: where a dropout site's mask of its own shape lies (mask key OWN_MASK[side] + site index) when its
#: partner's shape cannot meet it, or it has no partner (parity.program.batches.add_masks writes them)
OWN_MASK = {"reference": 500_000, "port": 600_000}


def site_mask(masks, index: int, shape: tuple):
    """Site ``index``'s mask: the shared one (``masks[index]``) when it fits ``shape`` (channel-last), else
    the one of its own shape parity gave each side (:data:`OWN_MASK`), else the shared one (None: no mask)."""
    mask = masks.get(index)
    if mask is not None and _fits(mask, shape):
        return mask
    own = [masks[b + index] for b in OWN_MASK.values() if b + index in masks and _fits(masks[b + index], shape)]
    return own[0] if own else mask


def _fits(mask, shape: tuple) -> bool:
    try:
        return fit_mask(mask, shape).shape == tuple(shape)
    except ValueError:  # shapes that do not broadcast
        return False
