"""Compare two plain training programs (a TF1/Keras program and its PyTorch port) step by step.

The user's files are plain programs plus one function, ``parity_program()``, returning a dict of
the objects the program builds (model, optimizer, loss...). The capture adapters
(``torch_impl/capture.py``, ``tf_impl/v1/capture.py``, ``tf_impl/v2/capture.py``) record every
stage of a step; this module maps the reference's weights onto the port (:mod:`parity.mapping`),
runs both through :func:`parity.runner.run_case` as two in-memory ports, and returns the same
:class:`~parity.runner.CaseResult` as the catalogue, so the report, diagnosis and health work
unchanged. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ParityError

__all__ = ["ParamSpec", "DropoutSite", "DtypeError", "KINDS"]

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
