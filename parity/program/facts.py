"""Program facts: what each program says of itself, from its own objects, compared side by side before
any number (numpy only).

Each capture adapter's ``facts()`` (``torch_impl/capture/facts.py``, ``tf_impl/v1/capture/facts.py``,
``tf_impl/v2/capture/facts.py``) returns a flat dict in one convention:

* ``optimizer`` (family: adam, adamw, sgd, rmsprop, adagrad, adadelta ...), ``lr``, ``beta1``/``beta2``,
  ``eps`` with ``eps.form`` (where it is added: TF's Adam "hat" before bias correction, torch's after;
  inside or outside the square root), ``amsgrad``, ``momentum``/``dampening``/``nesterov`` with
  ``momentum.form``, ``rho`` (Adadelta's rho, RMSprop's decay = torch's ``alpha``), ``centered``,
  ``accumulator.initial`` (Adagrad's, RMSprop's mean square);
* ``weight_decay`` (the coefficient c of the c*w a step adds; a loss term's equivalent) with its
  ``.form`` (coupled / loss term / decoupled) and ``.scope``; ``lr.schedule`` (kind, parameters,
  ``.unit``); ``clip``;
* ``dropout`` and ``batchnorm`` (one line per site; BatchNorm momentum in TF's convention and the moving variance's form), ``mode``;
* ``loss``, ``loss.reduction``, ``loss.on`` (logits or probabilities).

This module adds what numbers made before any step say without a comparison: each mapped parameter's
initial distribution as constructed (:func:`init_family`, before parity copies the reference's
weights) and the first batch of each side's own ``data`` (:func:`batch_summary`); then
:func:`compare_facts` lines the two up (:class:`FactRow`) and :func:`not_covered` says what the
comparison does not cover.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from parity.program.batches import as_array
from parity.program.init import describe_init, init_family, inits_differ
from parity.program.outside import lines as outside_lines
from parity.program.stated import stated

__all__ = ["FactRow", "compare_facts", "init_family", "batch_summary", "program_facts", "not_covered", "differing"]  # init_family: from .init

#: facts that describe, never differ (the framework, the class's own spelling, a seed of another RNG)
INFORMATIONAL = ("framework", "optimizer.class", "seed", "mode.note", "lr.schedule.unit", "clip.note", "eps.note",
                 "weight_decay.scope.mapped", "seeds", "augmentation", "input.scaling", "lr.schedule.epochs",
                 "lr.variable")

#: forms that train the same (a loss term c/2 ||w||^2 and a coupled c adds the same c*w to the gradient)
_SAME_EFFECT = {"weight_decay.form": lambda v: "decoupled" if "decoupled" in str(v) else "gradient term"}

#: the order of the table
ORDER = ("optimizer", "lr", "lr.schedule", "lr.variable", "beta1", "beta2", "eps", "eps.form", "amsgrad", "momentum",
         "dampening",
         "nesterov", "momentum.form", "rho", "centered", "accumulator.initial", "lr_decay", "weight_decay",
         "weight_decay.form", "weight_decay.scope", "clip", "mode", "dropout", "batchnorm", "loss", "loss.reduction",
         "loss.on", "loss.label_smoothing", "batch_size", "batch_size.stated", "epochs", "steps", "shuffle", "seeds", "augmentation", "input.scaling",
         "lr.schedule.epochs")


@dataclass(frozen=True)
class FactRow:
    """One fact of both programs: ``status`` is ``same``, ``differs``, ``one side`` (the other does not say)
    or ``info`` (described, not compared)."""

    key: str
    reference: object
    port: object
    status: str

    def to_json(self) -> dict:
        return {"fact": self.key, "reference": _plain(self.reference), "port": _plain(self.port), "status": self.status}


def _plain(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _same(key: str, a, b) -> bool:
    if key in _SAME_EFFECT:
        return _SAME_EFFECT[key](a) == _SAME_EFFECT[key](b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        # one typed number read back through float32 (a Keras or TF1 hyper-parameter: 1e-4 -> 9.9999997e-05)
        # differs from the decimal by < 2^-24 relative: the same fact
        return abs(float(a) - float(b)) <= 2.0 ** -23 * max(abs(float(a)), abs(float(b)), 1e-300)
    if key == "clip":  # a side that does not read the threshold says the kind only
        ka, kb = (str(v).rstrip("0123456789.e-+ ") for v in (a, b))
        if ka != kb:
            return False
        ta, tb = (str(v)[len(k):].strip() for v, k in ((a, ka), (b, kb)))
        if not ta or not tb:
            return True
        try:
            return float(ta) == float(tb)  # "global norm 5" (TF's constant) and "global norm 5.0" (as written)
        except ValueError:
            return ta == tb
    if key in ("dropout", "batchnorm") and isinstance(a, list) and isinstance(b, list):
        # the sites' own names differ between frameworks: compare what follows "name:"
        return [s.split(": ", 1)[-1] for s in a] == [s.split(": ", 1)[-1] for s in b]
    if key == "mode":
        return str(a).split(" ")[0] == str(b).split(" ")[0]
    if key == "loss.on":  # what the loss computes: the part before a parenthesis ("logits (the model's softmax ...)")
        return str(a).split(" (")[0] == str(b).split(" (")[0]
    if key == "lr.schedule":
        # the kinds are named per framework (PolynomialDecay, LambdaLR): the rates each step are compared as
        # numbers (the learning-rate stage); here only constant vs scheduled
        return (str(a) == "constant") == (str(b) == "constant")
    return a == b


def compare_facts(ref: dict, port: dict) -> list[FactRow]:
    """The two programs' facts side by side, in :data:`ORDER` (then the rest, sorted)."""
    keys = [k for k in ORDER if k in ref or k in port] + sorted((set(ref) | set(port)) - set(ORDER))
    rows = []
    for k in keys:
        a, b = ref.get(k), port.get(k)
        a, b = (None if v == "unknown" else v for v in (a, b))  # a side that cannot tell says nothing
        if k in INFORMATIONAL or k.startswith("init:") or k.startswith("data.") or k.endswith(".where"):
            status = "info"
        elif a is None or b is None:
            status = "one side"
        else:
            status = "same" if _same(k, a, b) else "differs"
        if k == "weight_decay.scope" and status == "differs" and str(port.get("weight_decay.scope.mapped", "")).startswith("the same"):
            status = "same"  # each side names its own parameters: compared through the variable mapping
        if k == "momentum.form" and status == "differs" and {str(ref.get("lr.schedule", "constant")),
                                                              str(port.get("lr.schedule", "constant"))} == {"constant"}:
            status = "same"  # v = mu v - lr g and v = mu v + g take the same steps while the rate is constant
        rows.append(FactRow(k, a, b, status))
    return rows


def differing(rows) -> dict:
    """``{fact: (reference, port)}`` of the rows that differ."""
    return {r.key: (r.reference, r.port) for r in rows if r.status == "differs"}


# -- numbers before any step: initial distributions (:mod:`.init`), the first batch of each side's own data --
def batch_summary(batch: dict) -> dict:
    """Per key of a batch: shape, dtype, min, max, mean, std (channel-last images as given)."""
    out = {}
    for k, v in batch.items():
        a = np.asarray(v)
        s = {"shape": list(a.shape), "dtype": str(a.dtype)}
        if a.size and np.issubdtype(a.dtype, np.number):
            f = a.astype(np.float64)
            s.update(min=float(f.min()), max=float(f.max()), mean=float(f.mean()), std=float(f.std()))
        out[k] = s
    return out


def _first_batch(source):
    try:
        it = source() if callable(source) else source
        return dict(next(iter(it)))
    except Exception:  # the user's data function failed or is empty: nothing to say of it here
        return None


def program_facts(run, mapping=None, builds: int = 1, capture=None) -> dict:
    """Both programs' facts: capture each afresh (float64), read ``facts()``, the initial distributions
    (before any load; ``builds`` > 1: each program built that many times, the draws pooled), the first
    batch of its own data. ``{"reference": {...}, "port": {...}, "init": [...], "data": {...}}``.
    ``capture(program, dtype)``: where to capture (``parity diff``: the program's worker); default in-process."""
    if capture is None:
        from parity.program.load import capture

    sides, params, batches, repeats = {}, {}, {}, {}
    for side, program in (("reference", run.reference), ("port", run.port)):
        draws = []
        for i in range(max(1, builds)):
            # build i > 0 with another seed (parity seeds each build with --seed): a program that seeds
            # itself still draws the same values, and is said to
            seed = getattr(program, "seed", None)
            if i and seed is not None:
                program.seed = seed + 7919 * i  # its build() reads the program's own seed
            try:
                prog = capture(program, "float64")
            finally:
                if seed is not None:
                    program.seed = seed
            try:
                if i == 0:
                    f = prog.facts() if hasattr(prog, "facts") else {}
                    for k, v in stated(getattr(program, "path", None)).items():  # what its source says
                        f.setdefault(k, v)
                    src = prog.data_source() if hasattr(prog, "data_source") else None
                    batches[side] = _first_batch(src) if src is not None else None
                draws.append(prog.parameters())
            finally:
                prog.close()
        params[side] = {k: np.stack([np.asarray(d[k], np.float64) for d in draws]) for k in draws[0]}
        # a program that seeds itself draws the same values every build: one draw, said so
        repeats[side] = len(draws) > 1 and all(np.array_equal(draws[0][k], d[k]) for d in draws[1:] for k in draws[0])
        if batches[side]:
            first = as_array(next(iter(batches[side].values())))  # a SparseTensorValue made dense
            f["batch_size"] = int(np.shape(first)[0]) if np.ndim(first) else None
        sides[side] = f
    init = []
    m = mapping if mapping is not None else getattr(run, "mapping", None)
    for e in getattr(m, "params", []) or []:
        a, b = params["reference"].get(e.reference), params["port"].get(e.port)
        if a is None or b is None:
            continue
        da, db = init_family(a[:1] if repeats["reference"] else a), init_family(b[:1] if repeats["port"] else b)
        # the canonical (TF) shape names the fans; an entry read from a file without one: the reference's own
        shape = tuple(getattr(e, "shape", ()) or ()) or (a.shape[1:] if run.reference.framework != "torch" else ())
        init.append({"reference": e.reference, "port": e.port, "reference_init": describe_init(da, shape),
                     "port_init": describe_init(db, shape), "differs": inits_differ(da, db)})
    mapped = _scope_through_mapping(sides["reference"].get("weight_decay.scope"), sides["port"].get("weight_decay.scope"), m)
    if mapped is not None:
        sides["port"]["weight_decay.scope.mapped"] = mapped
    data = {s: batch_summary(b) for s, b in batches.items() if b}
    out = {"reference": sides["reference"], "port": sides["port"], "init": init, "data": data}
    if builds > 1:
        out["builds"] = {"builds": builds, "seeded_itself": [s for s, r in repeats.items() if r]}
    return out


def _scope_through_mapping(ref_scope, port_scope, m) -> str | None:
    """The two weight-decay scopes compared as sets of the reference's parameters (each side names its own:
    ``conv2d.kernel`` vs ``conv1.weight``), through the variable mapping; None where a side's scope is not a
    list of parameters the mapping knows (``unknown``, ``all parameters except ...``)."""
    params = list(getattr(m, "params", None) or [])
    if not params or not isinstance(ref_scope, str) or not isinstance(port_scope, str):
        return None

    def norm(n: str) -> str:
        return n.strip().split(":")[0].replace("/", ".")

    everything = {e.reference for e in params}
    by_side = ({norm(e.reference): e.reference for e in params}, {norm(e.port): e.reference for e in params})
    sets = []
    for scope, names in zip((ref_scope, port_scope), by_side):
        if scope == "all parameters":
            sets.append(everything)
            continue
        got = [names.get(norm(n)) for n in scope.split(",")]
        if not scope.strip() or None in got:
            return None
        sets.append(set(got))
    a, b = sets
    if a == b:
        return f"the same {len(a)} parameter(s) as the reference's, through the variable mapping"
    return ("differs through the variable mapping: only the reference decays " + (", ".join(sorted(a - b)) or "none")
            + "; only the port decays " + (", ".join(sorted(b - a)) or "none"))


def not_covered(facts: dict) -> list[str]:
    """What this comparison does not cover, from the facts: the lines a user must read before taking
    "agree" for "trains the same"."""
    out = ["the comparison starts both programs from the reference's weights and feeds both the same batches: "
           "it checks that one step computes the same, not that the port trains the same"]
    diff_init = [i for i in facts.get("init", []) if i["differs"]]
    for i in diff_init:
        out.append(f"init-defaults: initialiser of {i['reference']} / {i['port']}: {i['reference_init']} vs "
                   f"{i['port_init']} (the port trained from its own init starts elsewhere)")
    builds = facts.get("builds") or {}
    if builds.get("builds", 1) > 1:
        out.append(f"initial distributions pooled over {builds['builds']} builds of each program"
                   + "".join(f"; the {s} seeds itself (every build drew the same values: one draw)"
                             for s in builds.get("seeded_itself", [])))
    data = facts.get("data") or {}
    if len(data) == 2:
        ra, pa = data["reference"], data["port"]
        for k in sorted(set(ra) & set(pa)):
            a, b = ra[k], pa[k]
            # (a scalar against a batch of one is the same data, not another batch size)
            if a["shape"][:1] != b["shape"][:1] and a["shape"] and b["shape"]:
                out.append(f"batch size of its own data ({k}): {a['shape'][0]} vs {b['shape'][0]}")
            if "min" in a and "min" in b:
                span = max(a["max"] - a["min"], b["max"] - b["min"], 1e-12)
                # 5 % of the range: two shuffles of one pipeline agree on min/max/mean far closer; /255 or a
                # Normalize(mean, std) moves them by the whole range
                if any(abs(a[s] - b[s]) > 0.05 * span for s in ("min", "max", "mean")) or \
                        abs(a["std"] - b["std"]) > 0.05 * max(a["std"], b["std"]):
                    out.append(f"scale of its own data ({k}): [{a['min']:.3g}, {a['max']:.3g}] mean {a['mean']:.3g} "
                               f"std {a['std']:.3g} vs [{b['min']:.3g}, {b['max']:.3g}] mean {b['mean']:.3g} std {b['std']:.3g}")
            if a["shape"][1:] != b["shape"][1:] and a["shape"] and b["shape"]:
                out.append(f"shape of its own data ({k}): {a['shape']} vs {b['shape']}")
        for k in sorted(set(ra) ^ set(pa)):
            out.append(f"its own data: key {k!r} in {'the reference' if k in ra else 'the port'}'s batches only")
    elif len(data) == 1:
        only = next(iter(data))
        out.append(f"only the {only} gives data: the other side's own input pipeline (scale, order, batch size) is not seen")
    else:
        out.append("neither program gives data: both sides' input pipelines (scale, normalisation, order) are not seen")
    ref, port = facts.get("reference", {}), facts.get("port", {})

    def said(side: dict, key: str) -> str:
        if key not in side:
            return "not stated"
        w = side.get(key + ".where")
        return f"{side[key]} ({w})" if w else str(side[key])

    # what each source states of its own schedule (parity.program.stated), where it differs or one side only
    for key, label in (("epochs", "epochs"), ("steps", "training steps"), ("steps_per_epoch", "steps per epoch"),
                       ("batch_size.stated", "batch size its training uses"), ("shuffle", "shuffling of its data")):
        if (key in ref or key in port) and ref.get(key) != port.get(key):
            out.append(f"{label}: {said(ref, key)} vs {said(port, key)}")
    out.extend(outside_lines(ref, port))  # seeds, augmentation, input scaling, per-epoch schedules (.outside)
    for side, f in (("reference", ref), ("port", port)):
        if "hand-written" in str(f.get("optimizer.class", "")):
            out.append(f"the {side}'s update is hand-written: its learning rate, optimizer slots and the gradient "
                       "the update consumed (after a clip) are not compared; the update is compared as the "
                       "parameters after each step")
    if not any(k in side for k in ("epochs", "steps") for side in (ref, port)):
        out.append("schedule length (epochs, steps per epoch): not stated by the programs; parity ran only the steps asked")
    return out
