"""Whole dense configs (and Cases), free or limited to a list of structures."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from parity.errors import ParityError
from parity.strategies._checks import InvalidArgument, _check_float, _check_int, _check_order, _log_uniform, _need_hypothesis, st
from parity.strategies.config import _STRUCTURE_KEYS, dense_case, structure_of
from parity.strategies.parts import activations, clips, init_scales, losses, max_norms, network_shapes, optimizers, schedules

def dense_configs(
    *,
    shapes=None,
    activation=None,
    init_scale=None,
    loss=None,
    optimizer=None,
    schedule=None,
    clip=None,
    max_norm=None,
    min_batch: int = 1,
    max_batch: int | None = None,
    min_steps: int = 1,
    max_steps: int | None = None,
    min_data_scale: float = 0.1,
    max_data_scale: float | None = None,
    structures: Sequence[Mapping[str, Any]] | None = None,
):
    """Return a strategy for whole dense configs (dicts that :func:`dense_case` accepts).

    Each part is a strategy (default: the strategy of the same plural name with its
    defaults), so ``dense_configs(optimizer=optimizers(names=("adam",)))`` draws Adam only.

    Args:
        shapes: strategy for ``widths`` (default :func:`network_shapes`).
        activation, init_scale, loss, optimizer, schedule, clip, max_norm: strategies
            for those parts (``loss`` draws ``(loss, reduction)`` pairs).
        min_batch, max_batch: batch size bounds (default max ``max(8, min_batch)``).
        min_steps, max_steps: training steps (default max ``max(3, min_steps)``).
        min_data_scale, max_data_scale: stddev of the inputs (default max ``max(2.0, min)``).
        structures: draw only these structures (dicts as :func:`structure_of` returns,
            e.g. :data:`COVERING_STRUCTURES`; shrinks towards the first), with every fed
            number still drawn: at most ``len(structures)`` TF graphs get built. Fixes the
            parts ``shapes`` ... ``max_norm`` name, so it excludes them (``init_scale`` aside).
    """
    _need_hypothesis()
    if structures is not None:
        fixed = {"shapes": shapes, "activation": activation, "loss": loss, "optimizer": optimizer,
                 "schedule": schedule, "clip": clip, "max_norm": max_norm}
        given_parts = [k for k, v in fixed.items() if v is not None]
        if given_parts:
            raise InvalidArgument(f"structures fixes {', '.join(given_parts)}: pass one or the other")
        common = dict(init_scale=init_scale, min_batch=min_batch, max_batch=max_batch, min_steps=min_steps,
                      max_steps=max_steps, min_data_scale=min_data_scale, max_data_scale=max_data_scale)
        return st.one_of([_one_structure(s, common) for s in _check_structures(structures)])
    max_batch, max_steps, max_data_scale = _bounds(min_batch, max_batch, min_steps, max_steps, min_data_scale,
                                                   max_data_scale)
    parts = {
        "widths": shapes if shapes is not None else network_shapes(),
        "activation": activation if activation is not None else activations(),
        "init_scale": init_scale if init_scale is not None else init_scales(),
        "loss": loss if loss is not None else losses(),
        "optimizer": optimizer if optimizer is not None else optimizers(),
        "schedule": schedule if schedule is not None else schedules(),
        "clip": clip if clip is not None else clips(),
        "max_norm": max_norm if max_norm is not None else max_norms(),
    }
    for key, value in parts.items():
        if not isinstance(value, st.SearchStrategy):
            raise InvalidArgument(f"{key}={value!r} must be a hypothesis strategy")
    return _configs(parts, st.integers(min_batch, max_batch), st.integers(min_steps, max_steps),
                    _log_uniform(min_data_scale, max_data_scale))


def _bounds(min_batch, max_batch, min_steps, max_steps, min_data_scale, max_data_scale):
    """Check the batch, steps and data-scale bounds eagerly; return the upper bounds with their defaults."""
    _check_int("min_batch", min_batch, 1)
    max_batch = max(8, min_batch) if max_batch is None else max_batch
    _check_int("max_batch", max_batch, 1)
    _check_order("min_batch", min_batch, "max_batch", max_batch)
    _check_int("min_steps", min_steps, 1)
    max_steps = max(3, min_steps) if max_steps is None else max_steps
    _check_int("max_steps", max_steps, 1)
    _check_order("min_steps", min_steps, "max_steps", max_steps)
    _check_float("min_data_scale", min_data_scale, low=0.0, open_low=True)
    max_data_scale = max(2.0, min_data_scale) if max_data_scale is None else max_data_scale
    _check_float("max_data_scale", max_data_scale, low=0.0, open_low=True)
    _check_order("min_data_scale", min_data_scale, "max_data_scale", max_data_scale)
    return max_batch, max_steps, max_data_scale


def _configs(parts: dict, batch, steps, data_scale):
    """The whole-config strategy over the parts' strategies (one dependent draw: softmax_xent needs >= 2 outputs)."""

    @st.composite
    def draw(draw_):
        loss_name, reduction = draw_(parts["loss"])
        widths = draw_(parts["widths"])
        if loss_name == "softmax_xent" and widths[-1] < 2:
            widths = widths[:-1] + (2,)
        return {
            "widths": widths,
            "activation": draw_(parts["activation"]),
            "init_scale": draw_(parts["init_scale"]),
            "batch": draw_(batch),
            "data_scale": draw_(data_scale),
            "loss": loss_name,
            "reduction": reduction,
            "optimizer": draw_(parts["optimizer"]),
            "schedule": draw_(parts["schedule"]),
            "clip": draw_(parts["clip"]),
            "max_norm": draw_(parts["max_norm"]),
            "steps": draw_(steps),
            "seed": draw_(st.integers(0, 2**16)),
        }

    return draw()


def _check_structures(structures) -> list[dict[str, Any]]:
    if isinstance(structures, Mapping) or not isinstance(structures, (tuple, list)) or not structures:
        raise InvalidArgument(f"structures={structures!r} must be a non-empty list of structure dicts")
    out = []
    for s in structures:
        if not isinstance(s, Mapping) or set(s) != set(_STRUCTURE_KEYS):
            raise InvalidArgument(f"structure {s!r} must have exactly the keys {', '.join(_STRUCTURE_KEYS)}")
        config = {
            "widths": s["widths"], "activation": s["activation"], "loss": s["loss"], "reduction": s["reduction"],
            "optimizer": {"name": s["optimizer"], **({"nesterov": s["nesterov"], "momentum": 0.5} if s["optimizer"] == "momentum" else {})},
            "schedule": {"kind": s["schedule"], **({"staircase": s["staircase"]} if s["schedule"] == "exponential" else {})},
            "clip": None if s["clip"] is None else {"kind": s["clip"], "limit": 1.0},
            "max_norm": None if s["max_norm"] is None else {"radius": 1.0, "axis": s["max_norm"]},
        }
        try:
            normalized = structure_of(config)
        except ParityError as exc:
            raise InvalidArgument(f"structure {s!r}: {exc}") from None
        if normalized != dict(s, widths=tuple(s["widths"])):
            raise InvalidArgument(f"structure {s!r}: nesterov / staircase set where they do not apply")
        out.append(normalized)
    return out


def _one_structure(s: Mapping[str, Any], common: Mapping[str, Any]):
    opt = optimizers(names=(s["optimizer"],), nesterov=s["nesterov"] if s["optimizer"] == "momentum" else None)
    return dense_configs(
        shapes=st.just(s["widths"]),
        activation=st.just(s["activation"]),
        loss=st.just((s["loss"], s["reduction"])),
        optimizer=opt,
        schedule=schedules(kinds=(s["schedule"],), staircase=s["staircase"] if s["schedule"] == "exponential" else None),
        clip=st.none() if s["clip"] is None else clips(kinds=(s["clip"],), allow_none=False),
        max_norm=st.none() if s["max_norm"] is None else max_norms(axes=(s["max_norm"],), allow_none=False),
        **common,
    )


def dense_cases(*, ports: Sequence[str] = ("tf1", "tf2", "torch", "numpy"), **kwargs):
    """Return a strategy for dense :class:`~parity.cases.case.Case` objects (``dense_configs(**kwargs)``)."""
    return dense_configs(**kwargs).map(lambda cfg: dense_case(cfg, ports=ports))
