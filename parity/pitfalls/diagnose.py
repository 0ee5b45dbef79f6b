"""Name the known pitfall that explains a divergence, and check settings before any numbers.

Contract used by :mod:`parity.report.text`:

    diagnose(case, comparison, traces) -> list[Diagnosis]   # most likely first; [] = unknown
    settings_check(case, traces) -> list[str]                # warnings before any numbers

The diagnosis matches the signatures of :mod:`parity.pitfalls` against the traces and the
comparison only: it never reads which pitfall a case was built to show. A divergence no
signature matches returns ``[]``; :func:`localize` still says where it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from parity.pitfalls.base import Context
from parity.pitfalls.facts import allowed, from_facts
from parity.pitfalls.registry import match_signatures
from parity.trace.memory import Trace, stage_label

__all__ = ["Diagnosis", "diagnose", "settings_check", "localize"]


@dataclass(frozen=True)
class Diagnosis:
    """A pitfall whose signature matches a divergence, with the evidence."""

    pitfall: str
    score: float
    evidence: str


def _pair(comparison, traces) -> tuple[Trace, Trace] | None:
    if isinstance(traces, Mapping):
        a, b = traces.get(comparison.a.get("port")), traces.get(comparison.b.get("port"))
    else:
        seq: Sequence[Trace] = list(traces)
        by_port = {t.port: t for t in seq}
        a, b = by_port.get(comparison.a.get("port")), by_port.get(comparison.b.get("port"))
        if (a is None or b is None) and len(seq) == 2:
            a, b = seq
    return (a, b) if a is not None and b is not None else None


def diagnose(case, comparison, traces, facts=None) -> list[Diagnosis]:
    """Return the pitfalls whose signature matches the comparison's first divergence, most likely first.

    With ``facts`` (both programs' facts and those that differ, :mod:`parity.pitfalls.facts`), names
    come from the facts first: a differing fact whose effect shows at the first divergence's stage
    (its predicted effect recomputed where feasible); then the catalogue's signatures the facts allow
    (no Adam pitfall for an Adadelta, no dropout-rate pitfall when the rates match).

    Args:
        case: the case: signatures read its options (the run's hyper-parameters) where they predict a
            number, never which pitfall it was built to show; None is fine.
        comparison: the :class:`~parity.comparison.comparator.Comparison` of reference ``a`` and port ``b``.
        traces: port -> :class:`~parity.trace.memory.Trace` (or the two traces).
    """
    if comparison is None or comparison.ok:
        return []
    pair = _pair(comparison, traces)
    if pair is None:
        return []
    # the run's hyper-parameters, never the name of the mistake a case was built to show
    options = {k: v for k, v in (getattr(case, "options", None) or {}).items() if k not in ("pitfall", "scenario")}
    found = [Diagnosis(p.name, round(score, 3), evidence)
             for p, score, evidence in match_signatures(comparison, *pair, options=options, facts=facts)]
    if facts is None:
        return found
    first = comparison.first_divergence
    named = []
    if first is not None and first.kind == "semantic":
        ctx = Context(comparison, first, pair[0], pair[1], options, facts)
        named = [Diagnosis(n, round(score, 3), ev) for n, score, ev in from_facts(ctx, facts)]
    taken = {d.pitfall for d in named}
    return named + [d for d in found if d.pitfall not in taken and allowed(d.pitfall, facts)[0]]


def localize(comparison, facts=None) -> str:
    """Describe the first divergence (step, stage, tensor, size): what is said when no pitfall matches;
    with ``facts``, the facts that differ too."""
    first = comparison.first_divergence
    if first is None:
        return "no divergence"
    size = f"; abs {first.diff.max_abs:.3g}, rel {first.diff.max_rel:.3g}" if first.diff is not None else ""
    differs = (facts or {}).get("differs") or {}
    said = "; facts that differ: " + ", ".join(f"{k} {a!r} vs {b!r}" for k, (a, b) in differs.items()) if differs else ""
    return f"unknown: first divergence at step {first.step}, {stage_label(first.stage)}, {first.name}{size}{said}"


# -- settings ---------------------------------------------------------------------------------------
def _canonical(settings: dict) -> dict:
    """Convert a port's settings to TF's conventions, key by key."""
    out = {}
    for key, value in settings.items():
        if key == "framework_convention":
            continue
        if key == "bn_momentum_convention":
            continue
        if key == "bn_momentum":
            out[key] = 1.0 - value if settings.get("bn_momentum_convention") == "torch" else value
        elif key == "dropout":
            if isinstance(value, Mapping) and {"argument", "value"} <= set(value):
                arg, v = value["argument"], value["value"]
                out["dropout_keep"] = v if arg == "keep_prob" else 1.0 - v
        elif key == "max_norm" and isinstance(value, Mapping):
            # tf.clip_by_norm(axes=[a]) on [in, out] takes norms over axis a; torch.renorm(dim=d) on
            # [out, in] keeps dim d, i.e. takes norms over canonical axis d.
            axis = value.get("axis", value.get("dim"))
            out["max_norm"] = {"radius": value["radius"], "norm_axis": axis, "when": value.get("when")}
        else:
            out[key] = value
    return out


_LABELS = {
    "bn_momentum": "BatchNorm momentum (TF convention)",
    "bn_epsilon": "BatchNorm epsilon",
    "bn_running_var": "BatchNorm moving variance",
    "adam_epsilon": "Adam epsilon",
    "adam_epsilon_form": "Adam epsilon placement",
    "dropout_keep": "dropout keep probability",
    "clip": "gradient clipping",
    "max_norm": "max-norm constraint",
    "layernorm_epsilon": "LayerNorm epsilon",
    "gelu": "GELU form",
    "loss_reduction": "loss reduction",
    "probability_clip": "probability clipping",
    "initial_accumulator": "Adagrad initial accumulator",
    "rmsprop_initial": "RMSprop initial mean square",
    "lstm_gate_order": "LSTM gate order as loaded",
    "lstm_forget_bias": "LSTM forget bias",
    "weight_decay": "weight decay (coefficient of the gradient term, parameters, form)",
    "no_gradient": "a parameter without gradient at a step",
    "adam_betas": "Adam betas",
    "adadelta_rho": "Adadelta rho",
    "adadelta_epsilon": "Adadelta epsilon",
    "rmsprop_centered": "RMSprop centered",
    "coupled_weight_decay": "weight decay inside the optimizer (coupled)",
    "dropout_kind": "dropout kind (element / channel)",
    "dropout_sites": "number of dropout sites",
    "padding_idx": "embedding row without gradient (padding_idx)",
    "clip_norm_rows": "global norm of an embedding's gradient (rows)",
    "loss_input": "what the loss takes (logits / probabilities)",
    "lstm_bias_hh": "LSTM second bias (torch bias_hh; TF has one bias)",
}


def settings_check(case, traces) -> list[str]:
    """Return warnings about hyper-parameters the ports expose that disagree under the known conventions.

    Each port's ``settings()`` (recorded in ``trace.manifest["settings"]``) is converted to
    TF's conventions (the schema: the keys of ``_LABELS``; other keys are informational) (torch BatchNorm momentum -> 1 - m, dropout p -> keep probability,
    renorm dim -> norm axis) and compared with the first port's, key by key.
    """
    items = list(traces.values()) if isinstance(traces, Mapping) else list(traces)
    found = [(t.port, _canonical(t.manifest.get("settings") or {})) for t in items if t.manifest.get("settings")]
    if len(found) < 2:
        return []
    ref_port, ref = found[0]
    warnings = []
    for port, s in found[1:]:
        for key in ref:
            # Only the keys of the known schema are compared; anything else a port reports
            # is informational (it is in the trace's manifest) and free-form.
            if key not in s or key not in _LABELS:
                continue
            va, vb = ref[key], s[key]
            same = abs(va - vb) <= 1e-12 * max(abs(va), abs(vb)) if isinstance(va, float) and isinstance(vb, float) else va == vb
            if not same:
                warnings.append(f"{_LABELS.get(key, key)}: {ref_port} {va!r} vs {port} {vb!r} (under TF's conventions)")
    return warnings
