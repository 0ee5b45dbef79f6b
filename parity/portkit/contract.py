"""The contract every port and every capture adapter implements, declared once (``typing.Protocol``).

Two ways into the harness, one shape out:

- A **port module** (``tf_impl/v1/<module>.py``, ``torch_impl/<module>.py``, ``parity/oracle/<module>.py``,
  a user's file given to ``parity check``, or :class:`parity.program.port.ProgramPorts` for ``parity diff``)
  has :meth:`PortModule.build` and :meth:`PortModule.framework_info`. ``build`` returns a :class:`Port`:
  ``load`` the initial parameters, report ``parameters``, then ``step`` once per batch, returning
  ``{stage: {name: array}}`` in canonical names and layout (``docs/ports.md``).
- A **capture adapter** (``tf_impl/v1/capture``, ``tf_impl/v2/capture``, ``torch_impl/capture``) has
  :meth:`CaptureAdapter.capture`: a user's ``parity_program()`` becomes a :class:`CapturedProgram`, which
  reports its variables as :class:`~parity.portkit.program.ParamSpec`, its dropout sites as
  :class:`~parity.portkit.program.DropoutSite`, and steps with parity's batches and dropout masks in
  its framework's own names and layouts (:mod:`parity.program` maps them).

The harness checks what it receives at the boundary (:mod:`parity.run.boundary`); these protocols say
what it asks for. Methods marked optional are looked up with ``getattr``; a port may leave them out.
:data:`PORT_FUNCTIONS` and :data:`OPTIONAL` are what the boundary and the tests read.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = ["Port", "PortModule", "CapturedProgram", "CaptureAdapter", "PORT_FUNCTIONS", "OPTIONAL", "Stages"]

#: stage -> tensor name -> array (the stages of :data:`parity.trace.stages.STAGES`)
Stages = Mapping[str, Mapping[str, np.ndarray]]

#: The public functions a port module exposes (the reference modules and a user's file alike).
PORT_FUNCTIONS = ("build", "framework_info")

#: Optional methods, by protocol: the harness uses them where present.
OPTIONAL = {
    "Port": ("settings", "close"),
    "CapturedProgram": ("settings", "notes", "input_specs", "data_source", "flatten_inputs", "probe_loss", "close"),
}


@runtime_checkable
class Port(Protocol):
    """One framework's implementation of a case, built for one dtype."""

    def load(self, params: Mapping[str, np.ndarray]) -> None:
        """Set the parameters (canonical names and layout: TF's)."""

    def parameters(self) -> Mapping[str, np.ndarray]:
        """The current parameters, canonical names and layout."""

    def step(self, batch: Mapping[str, np.ndarray]) -> Stages:
        """One training step on ``batch``; every stage the port can report, canonical names."""

    # optional: settings() -> dict (the settings check); close() -> None (free the framework's resources)


@runtime_checkable
class PortModule(Protocol):
    """What the harness imports (or is given) for one framework and case module."""

    def build(self, case: Any, dtype: str, variant: str | None = None) -> Port:
        """A new :class:`Port` of ``case`` in ``dtype`` (``variant``: the port's ``framework:variant`` suffix)."""

    def framework_info(self) -> Mapping[str, Any]:
        """``{"version": ..., "device": ...}`` for the trace's manifest."""


@runtime_checkable
class CapturedProgram(Protocol):
    """A user's training program captured by its framework's adapter (``parity diff``), in its own names."""

    def parameter_specs(self) -> Sequence[Any]:
        """Every variable as a :class:`~parity.portkit.program.ParamSpec`, in creation order."""

    def parameters(self) -> Mapping[str, np.ndarray]:
        """The variables' values, own names and layouts."""

    def load(self, weights: Mapping[str, np.ndarray]) -> None:
        """Set the variables (own names and layouts)."""

    def dropout_sites(self) -> Sequence[Any]:
        """The dropouts parity drives, as :class:`~parity.portkit.program.DropoutSite`, in call order."""

    def forward(self, batch: Mapping[str, np.ndarray], masks: Mapping[int, np.ndarray]) -> Mapping[str, np.ndarray]:
        """The layer outputs of a forward pass (no update), in call order: the mapping's probe."""

    def step(self, batch: Mapping[str, np.ndarray], masks: Mapping[int, np.ndarray]) -> Stages:
        """One training step with parity's dropout masks (site index -> keep mask); own names."""


@runtime_checkable
class CaptureAdapter(Protocol):
    """A framework's capture adapter module (:data:`parity.run.frameworks.CAPTURE_ADAPTERS`)."""

    capture: Callable[..., CapturedProgram]
    """``capture(build, *, dtype, where)``: run ``build`` (the user's ``parity_program``) and capture what it
    returns in ``dtype``; raises :class:`~parity.portkit.program.DtypeError` where that dtype cannot run."""
