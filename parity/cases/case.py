"""Cases: plain, framework-free descriptions of one training scenario, in one registry.

A case names the implementation module that every framework provides
(``tf_impl/v1/<module>.py``, ``tf_impl/v2/<module>.py``, ``torch_impl/<module>.py``,
``parity/oracle/<module>.py``), how to draw the initial parameters and the data, and
the options the ports read. The same registry drives ``make parity``, the tests and
the docs.
"""

from __future__ import annotations

import dataclasses
import re
import types
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from parity.errors import ParityError

__all__ = [
    "Case",
    "Cost",
    "Init",
    "Data",
    "PortSpec",
    "Refusal",
    "register",
    "DTYPES",
    "FRAMEWORKS",
    "HEAVY_TAGS",
]

DTYPES = ("float64", "float32")

#: Tags of the heavy tiers: the seeds at their own sizes (``full``), the real-size model
#: (``realsize``) and the data-parallel cases (``distributed``: they start processes, minutes on
#: 2 cores). ``parity run --all`` (``make parity``) and the default pitfall catalogue leave them
#: out; ``parity run --tag TAG`` runs them (``make parity-full`` the first two).
HEAVY_TAGS = ("full", "realsize", "distributed")

#: The frameworks a port may be written in (``parity.run.frameworks`` holds where their ports live).
FRAMEWORKS = ("tf1", "tf2", "torch", "numpy")


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return types.MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Init:
    """Describe how the harness draws one parameter (numpy, from the case's seed).

    Args:
        shape: canonical shape (TensorFlow layout: Dense ``[in, out]``, conv ``HWIO``).
        kind: ``random_normal`` (mean, stddev), ``truncated_normal`` (mean, stddev),
            ``glorot_uniform``, ``glorot_normal``, ``variance_scaling`` (factor, mode,
            uniform: the TF1 contrib initializer), ``he_normal``, ``constant`` (value),
            ``zeros``, ``ones``, or ``value`` (an explicit nested list in ``value``).
        trainable: whether the TF1 variable is trainable (``trainable=False`` makes
            it state, not a parameter the optimizer sees).
        args: the initializer's arguments.
    """

    shape: tuple[int, ...]
    kind: str = "zeros"
    args: Mapping[str, Any] = field(default_factory=dict)
    trainable: bool = True

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "args", _frozen(self.args))


@dataclass(frozen=True)
class Data:
    """Describe the batches the harness feeds, one per step.

    Args:
        kind: a generator name of :mod:`parity.cases.data` (``uniform``, ``constant``,
            ``normal``, ``digits``, ``images``, ...).
        args: its arguments.
    """

    kind: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "args", _frozen(self.args))


@dataclass(frozen=True)
class Cost:
    """Describe what a step computes, for the float32 error model (:mod:`parity.comparison.tolerance`).

    Args:
        depth: number of layers a value passes through (forward); the backward pass
            adds as many again.
        reduction: the longest reduction (inner-product length, batch mean, ...).
        growth: per-step amplification of a parameter difference by the training
            dynamics (1.0 = errors add up linearly in the step count).
        condition: how much the loss amplifies a rounding of its inputs (>= 1), applied to
            the loss and every stage after it; declared only with a measured figure (seed
            001's stddev-1 init gives logits ~1e4 that saturate the softmax).
        floors: stage -> the magnitude of the operands that stage is computed from,
            when it can be much larger than the result (a squared residual near zero
            is computed from O(1) numbers: its rounding error is eps * O(1), not eps * loss).
    """

    depth: int = 1
    reduction: int = 1
    growth: float = 1.0
    condition: float = 1.0
    floors: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "floors", _frozen(self.floors))


@dataclass(frozen=True)
class PortSpec:
    """Name one port of a case: a framework and, optionally, a variant of its port.

    Written ``framework`` or ``framework:variant`` (``tf1:minimize``, ``torch:buffer``).
    """

    framework: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> "PortSpec":
        framework, _, variant = text.partition(":")
        if framework not in FRAMEWORKS:
            raise ParityError(
                f"unknown framework {framework!r} in port {text!r}; expected one of {', '.join(FRAMEWORKS)}"
            )
        return cls(framework, variant or None)

    def __str__(self) -> str:
        return f"{self.framework}:{self.variant}" if self.variant else self.framework


@dataclass(frozen=True)
class Refusal:
    """The refusal a framework must give in a case that expects every framework to refuse.

    Args:
        exc_type: the exception's class name (a subclass matches too), e.g. ``"ValueError"``.
        pattern: a regular expression searched in the first line of its message.
    """

    exc_type: str
    pattern: str

    def __post_init__(self):
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ParityError(f"refusal pattern {self.pattern!r} is not a regular expression: {exc}") from None

    def matches(self, exc_types: Sequence[str], message: str) -> bool:
        """Whether an error of these class names (its MRO) and message is this refusal."""
        return self.exc_type in exc_types and re.search(self.pattern, message or "") is not None

    def __str__(self) -> str:
        return f"{self.exc_type} matching /{self.pattern}/"


@dataclass(frozen=True)
class Case:
    """Describe one training scenario, independent of any framework.

    Args:
        name: unique id, used on the command line and in reports.
        module: implementation module name, the same in every framework package.
        title: one line for the report.
        ports: the ports compared, as ``framework[:variant]`` strings; the first is the
            reference.
        params: canonical name -> :class:`Init`, drawn once and loaded into every port.
        data: the batches.
        steps: training steps.
        options: everything else the ports read (layer sizes, learning rate, clipping...).
        seed: the numpy seed for parameters, data and dropout masks.
        source: the seed document this case reproduces (``"000"``...), if any.
        expect: ``"match"`` (all ports must agree), ``"error"`` (every port must refuse,
            each with the refusal ``refusals`` states for it) or ``"diverge"`` (a deliberately
            wrong port: the comparison must find a semantic divergence).
        refusals: with ``expect="error"``: port (``tf1:variant``) or framework (``tf1``) ->
            the :class:`Refusal` it must give. Any other error is a crash, shown with the
            expected one.
        cost: the computation's size for the float32 error model.
        dtypes: the dtypes it runs in.
        tags: free labels (``"seed"``, ``"pitfall"``, ``"slow"``).
    """

    name: str
    module: str
    title: str
    ports: tuple[str, ...]
    params: Mapping[str, Init]
    data: Data
    steps: int
    options: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    source: str | None = None
    expect: str = "match"
    cost: Cost = field(default_factory=Cost)
    dtypes: tuple[str, ...] = DTYPES
    tags: tuple[str, ...] = ()
    refusals: Mapping[str, Refusal] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "params", _frozen(self.params))
        object.__setattr__(self, "refusals", _frozen(self.refusals))
        object.__setattr__(self, "options", _frozen(self.options))
        object.__setattr__(self, "ports", tuple(self.ports))
        if not self.ports:
            raise ParityError("a case needs at least one port", case=self.name)
        for spec in self.ports:
            PortSpec.parse(spec)
        if self.expect not in ("match", "error", "diverge"):
            raise ParityError(f"expect must be 'match', 'error' or 'diverge', not {self.expect!r}", case=self.name)
        for dtype in self.dtypes:
            if dtype not in DTYPES:
                raise ParityError(f"unknown dtype {dtype!r}; expected one of {DTYPES}", case=self.name)
        if self.steps < 0:
            raise ParityError("steps must be >= 0", case=self.name)

    def option(self, key: str, default: Any = None) -> Any:
        """Return an option, or ``default`` when the case does not set it."""
        return self.options.get(key, default)

    def replace(self, **changes: Any) -> "Case":
        """Return a copy with some fields changed (options are merged, not replaced)."""
        if "options" in changes:
            merged = dict(self.options)
            merged.update(changes["options"])
            changes["options"] = merged
        return dataclasses.replace(self, **changes)

    def expected_refusal(self, port: str) -> Refusal | None:
        """The refusal ``port`` must give (stated for the port, else for its framework), or None."""
        return self.refusals.get(port) or self.refusals.get(port.partition(":")[0])

    @property
    def tier(self) -> str:
        """Which run holds the case: "realsize", "full" (the seed's own size) or "parity" (``make parity``)."""
        for tag in ("realsize", "full"):
            if tag in self.tags:
                return tag
        return "parity"

    @property
    def trainable(self) -> tuple[str, ...]:
        """Names of the parameters the optimizer trains (in declaration order)."""
        return tuple(n for n, spec in self.params.items() if spec.trainable)


_REGISTRY: dict[str, Case] = {}


def register(case: Case) -> Case:
    """Add a case to the registry; a second case of the same name is an error."""
    if case.name in _REGISTRY and _REGISTRY[case.name] != case:
        raise ParityError(f"case {case.name!r} is registered twice")
    _REGISTRY[case.name] = case
    return case
