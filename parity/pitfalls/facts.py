"""Names from facts: a divergence explained by a fact the two programs state differently
(:mod:`parity.program.facts`), with its predicted effect recomputed from the traces where that is
feasible; and the facts that rule catalogue signatures out (no optimizer pitfall for another
optimizer class, no dropout-rate pitfall when the rates match).

``facts`` here is ``{"reference": {...}, "port": {...}, "differs": {fact: (reference, port)}}``:
plain dicts, as :func:`parity.program.facts.compare_facts` lines them up (this layer never imports it).
"""

from __future__ import annotations

import numpy as np

from parity.pitfalls.base import Context
from parity.pitfalls.facts_bn import _bn_eps, _bn_momentum, _bn_name, _bn_var, _site_field, _site_values

__all__ = ["from_facts", "allowed", "FACT_NAMES"]

_ADAM = {"adam", "adamw", "nadam", "adamax"}
_OPT_STAGES = ("parameters", "slots", "processed_gradients")
_FWD = ("forward", "loss", "gradients", "processed_gradients", "parameters", "state")
_LOSS = ("loss", "gradients")

#: fact -> (name given, the stages where its first effect shows); names in the catalogue keep theirs
FACT_NAMES = {
    "optimizer": ("optimizer-class", ("learning_rate",) + _OPT_STAGES),
    "lr": ("learning-rate", ("learning_rate",) + _OPT_STAGES),
    "lr.schedule": ("lr-schedule", ("learning_rate",) + _OPT_STAGES),
    "beta1": ("adam-betas", _OPT_STAGES),
    "beta2": ("adam-betas", _OPT_STAGES),
    "eps": ("optimizer-epsilon", _OPT_STAGES),
    "eps.form": ("optimizer-epsilon", _OPT_STAGES),
    "amsgrad": ("adam-amsgrad", _OPT_STAGES),
    "momentum": ("sgd-momentum", _OPT_STAGES),
    "dampening": ("sgd-dampening", _OPT_STAGES),
    "nesterov": ("nesterov", _OPT_STAGES),
    "rho": ("optimizer-rho", _OPT_STAGES),
    "centered": ("rmsprop-centered", _OPT_STAGES),
    "accumulator.initial": ("optimizer-initial-accumulator", _OPT_STAGES),
    "weight_decay": ("weight-decay", ("regularization", "loss", "gradients") + _OPT_STAGES),
    "weight_decay.form": ("adamw-decoupled", ("regularization", "loss", "gradients") + _OPT_STAGES),
    "weight_decay.scope": ("decay-on-bias", ("regularization", "loss", "gradients") + _OPT_STAGES),
    "clip": ("gradient-clipping", ("processed_gradients", "parameters")),
    "mode": ("eval-mode", _FWD),
    "dropout": ("dropout-keep-prob", _FWD),
    "batchnorm": ("batchnorm-settings", ("forward", "loss", "state")),
    "loss": ("loss-kind", _LOSS),
    "loss.reduction": ("loss-reduction", _LOSS),
    "loss.on": ("loss-on-probabilities", _LOSS),
    "loss.label_smoothing": ("label-smoothing", _LOSS),
}


def _site_kinds(lines) -> list:
    return [str(line).rsplit(", ", 1)[-1] for line in lines or []]


def _name_of(key: str, a, b, ref: dict, port: dict, stage: str | None = None) -> str | None:
    """The name a differing fact gives, refined by what differs (None: no effect on a step)."""
    fam = {ref.get("optimizer"), port.get("optimizer")}
    if key in ("eps", "eps.form") and fam <= _ADAM:
        return "adam-epsilon"
    if key == "accumulator.initial":
        return {"rmsprop": "rmsprop-init", "adagrad": "adagrad-init"}.get(ref.get("optimizer"), "optimizer-initial-accumulator")
    if key == "momentum.form":  # v = mu v - lr g vs v = mu v + g: the same steps while the rate is constant
        sched = {str(ref.get("lr.schedule", "constant")), str(port.get("lr.schedule", "constant"))}
        return "sgd-momentum-lr-change" if sched != {"constant"} else None
    if key == "weight_decay.form":
        return "adamw-decoupled" if fam <= _ADAM else "weight-decay-form"
    if key == "weight_decay.scope":
        return "decay-on-bias" if any("bias" in str(v) for v in (a, b)) else "weight-decay-scope"
    if key == "mode":
        eval_side = ref if str(a).startswith("eval") else port
        if eval_side.get("batchnorm"):
            return "torch-eval-mode" if eval_side.get("framework") == "torch" else "learning-phase"
        return "dropout-eval-mode"
    if key == "lr" and fam == {"adadelta"} and isinstance(a, (int, float)) and isinstance(b, (int, float)) \
            and sorted((float(a), float(b))) == [0.001, 1.0]:
        return "adadelta-lr-default"  # Keras 2.3's Adadelta() default 1.0 vs tf_keras' 0.001
    if key == "loss.on":
        return "loss-on-probabilities" if any("no log" in str(v) or "twice" in str(v) or "expected" in str(v)
                                              for v in (a, b)) else None
    if key == "dropout":
        if len(a or []) != len(b or []):
            return "dropout-site-missing"
        if _site_kinds(a) != _site_kinds(b):
            return "dropout-kind"
        return "dropout-keep-prob"
    if key == "batchnorm":
        return _bn_name(a, b, ref, port, stage)
    return FACT_NAMES.get(key, (None,))[0]


# -- predicted effects, recomputed from the traces ------------------------------------------------------
def _loss_ratio(ctx: Context, ref: dict, port: dict):
    """Summed vs averaged: the step-0 loss ratio is the batch size."""
    la, lb = ctx.at(ctx.a, "loss", 0).get("loss"), ctx.at(ctx.b, "loss", 0).get("loss")
    fed = [np.shape(v)[0] for v in ctx.at(ctx.a, "inputs", 0).values() if np.ndim(v) >= 1]
    n = fed[0] if fed else ref.get("batch_size")  # the batch both were fed (the reference's own data, else drawn)
    if la is None or lb is None or not n or float(la) == 0:
        return None
    r = float(lb) / float(la)
    want = n if port.get("loss.reduction") == "sum" else 1.0 / n if ref.get("loss.reduction") == "sum" else None
    if want is None:
        return None
    ok = abs(r - want) <= 10 * ctx.tol * want
    return ok, f"step-0 loss ratio port/reference {r:.6g}, predicted {want:g} (the batch size)"


def _step0(g, f: dict):
    """The first update an optimizer with facts ``f`` makes from gradient ``g`` (no weight decay), or None
    where the facts do not say enough."""
    fam, lr, eps, form = f.get("optimizer"), f["lr"], f.get("eps", 0.0), str(f.get("eps.form", ""))
    if fam in ("adam", "adamw") and not f.get("amsgrad"):
        eff = eps / np.sqrt(1.0 - f["beta2"]) if form.startswith("hat") else eps
        return -lr * g / (np.abs(g) + eff)
    if fam == "adadelta":  # v = (1 - rho) g^2; delta = sqrt(0 + eps) / sqrt(v + eps) g
        return -lr * np.sqrt(eps) / np.sqrt((1.0 - f["rho"]) * g * g + eps) * g
    if fam == "rmsprop" and not f.get("centered") and not f.get("momentum"):
        v = f.get("accumulator.initial", 0.0) * f["rho"] + (1.0 - f["rho"]) * g * g
        return -lr * g / (np.sqrt(v + eps) if form == "inside sqrt" else np.sqrt(v) + eps)
    if fam == "adagrad":
        acc = f.get("accumulator.initial", 0.0) + g * g
        return -lr * g / (np.sqrt(acc + eps) if form == "inside sqrt" else np.sqrt(acc) if form == "none" else np.sqrt(acc) + eps)
    if fam == "sgd":
        mu = f.get("momentum", 0.0)
        return -lr * g * (1.0 + mu if f.get("nesterov") else 1.0)
    return None


def _step0_update(ctx: Context, ref: dict, port: dict):
    """An optimizer fact differs (eps, its placement, rho, lr, the initial accumulator, nesterov): recompute
    the step-0 update of each side with each side's facts: the reference's must match its own prediction,
    the port's its own, where the two predictions lie apart."""
    if ctx.k != 0 or ref.get("weight_decay") or port.get("weight_decay") or ref.get("amsgrad") or port.get("amsgrad"):
        return None
    if "unknown" in (ref.get("eps.form"), port.get("eps.form")) or "lr" not in ref or "lr" not in port:
        return None
    if ref.get("lr.schedule", "constant") != "constant" or port.get("lr.schedule", "constant") != "constant":
        return None  # the rate a scheduled step used is the learning-rate stage's, not the facts'
    machine = 2.2e-16 if ctx.dtype == "float64" else 1.2e-7
    # the update recomputed in float64 from the recorded gradient: good to ~1e-10 relative from float64
    # gradients, ~1e-5 from float32 ones (|g| + eps, a division and a square root, each rounded)
    computed = 1e-10 if ctx.dtype == "float64" else 1e-5
    ga, gb = ctx.at(ctx.a, "processed_gradients", 0), ctx.at(ctx.b, "processed_gradients", 0)
    pa, pb = ctx.at(ctx.a, "parameters", 0), ctx.at(ctx.b, "parameters", 0)
    p0a, p0b = ctx.params_before(ctx.a, 0), ctx.params_before(ctx.b, 0)
    verdicts = []
    for name in sorted(set(ga) & set(gb) & set(pa) & set(pb) & set(p0a) & set(p0b)):
        for g, p1, p0, own, other in ((ga[name], pa[name], p0a[name], ref, port), (gb[name], pb[name], p0b[name], port, ref)):
            g, p1, p0 = (np.asarray(v, float) for v in (g, p1, p0))
            if not np.any(g):
                continue
            mine, theirs = _step0(g, own), _step0(g, other)
            if mine is None or theirs is None:
                return None
            # the step's delta p1 - p0 carries the rounding of p1 (64 ulps of the largest |p0|)
            allowed = 64 * machine * np.abs(p0).max() + computed * np.abs(mine).max()
            if np.abs(mine - theirs).max() <= 4 * allowed:
                continue  # the two predictions cannot be told apart on this tensor
            verdicts.append(bool(np.abs((p1 - p0) - mine).max() <= allowed))
    if not verdicts:
        return None
    ok = all(verdicts)
    return ok, (f"the step-0 update recomputed from each side's gradient with each side's facts: "
                f"{'each side matches its own' if ok else 'not each side matches its own'} ({len(verdicts)} tensors told apart)")


def _eval_forward(ctx: Context, ref: dict, port: dict):
    if ctx.first.stage != "forward" or ctx.k != 0:
        return None
    return True, "the first divergence is a layer output at step 0, where one side runs in inference mode"


def _site_missing(ctx: Context, ref: dict, port: dict):
    """A site without a partner drops with a mask of its own from the first step: a first divergence at a later
    step is not its effect; at step 0 it is not recomputed (the mask is parity's own draw), so no verdict."""
    if _unpaired(ref, port) is None:
        return None
    return None if ctx.k == 0 else (False, "a dropout site without a partner differs from step 0")


_CHECKS = {"dropout-site-missing": _site_missing, "bn-epsilon": _bn_eps, "bn-momentum": _bn_momentum,
           "bn-running-var": _bn_var, "loss-reduction": _loss_ratio,
           "torch-eval-mode": _eval_forward, "learning-phase": _eval_forward, "dropout-eval-mode": _eval_forward}
_CHECKS.update({n: _step0_update for n in ("adam-epsilon", "optimizer-epsilon", "optimizer-rho", "learning-rate",
                                              "rmsprop-init", "adagrad-init", "optimizer-initial-accumulator", "nesterov",
                                              "optimizer-class", "adadelta-lr-default")})


#: forward-stage facts and the sites that must lie at or before the first diverging layer output
_SITES = {"dropout": ("dropout",), "batchnorm": ("batchnorm",), "mode": ("dropout", "batchnorm")}


def _unpaired(ref: dict, port: dict) -> str | None:
    """The side whose dropout sites outnumber the other's ("reference" / "port"), None where they pair up."""
    n_ref, n_port = len(ref.get("dropout") or []), len(port.get("dropout") or [])
    return None if n_ref == n_port else "reference" if n_ref > n_port else "port"


def _reaches(ctx: Context, key: str, ref: dict, port: dict | None = None) -> bool:
    """A dropout / BatchNorm / mode fact explains a step's first diverging layer output only when a site
    of that kind comes at or before it in the reference's call order (no dropout acts before the first conv);
    a site not found among the recorded outputs is no evidence (False). A dropout site only the port has
    is not in the reference's order (nor recorded by the port: it has no partner); it drops with a mask of
    its own from step 0, so it explains a first divergence at step 0 only (forward or loss)."""
    if key == "dropout" and _unpaired(ref, port or {}) == "port":
        return ctx.k == 0 and ctx.first.stage in ("forward", "loss")
    if ctx.first.stage != "forward" or key not in _SITES:
        return True
    order = list(ctx.at(ctx.a, "forward"))
    if ctx.first.name not in order:
        return False
    at = order.index(ctx.first.name)
    for kind in _SITES[key]:
        for line in ref.get(kind) or []:
            site = str(line).split(": ", 1)[0]
            hits = [i for i, n in enumerate(order) if n == site or n.startswith(site + "/") or site in n.split("/")]
            if hits and hits[0] <= at:
                return True
    return False


def _agrees(ctx: Context, stage: str, steps) -> bool:
    """Every tensor of ``stage`` both traces hold agrees (the run's tolerance) at each of ``steps``; False where
    a step holds none in common (no evidence)."""
    for step in steps:
        ta, tb = ctx.at(ctx.a, stage, step), ctx.at(ctx.b, stage, step)
        common = [n for n in ta if n in tb and np.shape(ta[n]) == np.shape(tb[n])]
        if not common or any(ctx.semantic(stage, n, step) or not np.allclose(
                np.asarray(ta[n], float), np.asarray(tb[n], float), rtol=ctx.tol, atol=0) for n in common):
            return False
    return True


def _clip(ctx: Context, ref: dict, port: dict):
    """Clipping acts between the raw and the processed gradients: processed gradients that differ where the raw
    ones agree are its effect; processed gradients that agree where the parameters differ are not."""
    if ctx.first.stage == "processed_gradients" and _agrees(ctx, "gradients", [ctx.k]):
        return True, f"at step {ctx.k} the raw gradients agree and the processed (clipped) gradients differ"
    if ctx.first.stage == "parameters" and _agrees(ctx, "processed_gradients", [ctx.k]):
        return False, "the processed gradients agree"
    return None


_CHECKS["gradient-clipping"] = _clip
#: facts whose own quantity a stage records: a name is not given where that stage agrees up to the divergence
_OWN_STAGE = {"lr": "learning_rate", "lr.schedule": "learning_rate"}


def from_facts(ctx: Context, facts: dict) -> list[tuple[str, float, str]]:
    """(name, score, evidence) for each differing fact whose effect shows at the first divergence's stage:
    1.0 where its predicted effect was recomputed and matched, 0.8 where it could not be recomputed; a
    prediction the numbers contradict gives no name."""
    ref, port = facts.get("reference") or {}, facts.get("port") or {}
    out, seen = [], set()
    for key, (a, b) in (facts.get("differs") or {}).items():
        if key not in FACT_NAMES and key != "momentum.form":
            continue
        stages = FACT_NAMES.get(key, (None, _OPT_STAGES))[1]
        if ctx.first.stage not in stages or not _reaches(ctx, key, ref, port):
            continue
        if key in _OWN_STAGE and _agrees(ctx, _OWN_STAGE[key], range(ctx.k + 1)):
            continue  # the quantity this fact sets is recorded and agrees: not this divergence's cause
        names = _name_of(key, a, b, ref, port, ctx.first.stage)
        for name in [names] if isinstance(names, str) or names is None else names:
            if name is None or name in seen:
                continue
            evidence = f"{key}: reference {a!r} vs port {b!r} (from the programs' objects)"
            score = 0.8
            check = _CHECKS.get(name)
            try:
                verdict = check(ctx, ref, port) if check else None
            except (KeyError, IndexError, ValueError, TypeError, FloatingPointError):
                verdict = None
            if verdict is not None:
                if not verdict[0]:
                    continue  # the predicted effect is not in the numbers: not this fact's divergence
                score, evidence = 1.0, f"{evidence}; {verdict[1]}"
            seen.add(name)
            out.append((name, score, evidence))
    return sorted(out, key=lambda t: -t[1])


# -- facts as preconditions of the catalogue's signatures ------------------------------------------------
_FOR_OPTIMIZER = {"adam-epsilon": _ADAM, "adamw-decoupled": _ADAM, "nesterov": {"sgd"}, "sgd-dampening": {"sgd"},
                  "sgd-momentum-lr-change": {"sgd"}, "rmsprop-init": {"rmsprop"}, "adagrad-init": {"adagrad"},
                  "adam-betas": _ADAM, "optimizer-rho": {"adadelta", "rmsprop"}, "optimizer-epsilon": {"adadelta"},
                  "adadelta-lr-default": {"adadelta"}, "rmsprop-centered": {"rmsprop"}}
#: catalogue name -> the fact whose two values must differ for it to be proposed (equal facts rule it out)
_NEEDS_DIFFERENT = {"optimizer-class": "optimizer", "adam-betas": ("beta1", "beta2"), "rmsprop-centered": "centered",
                    "weight-decay": "weight_decay", "loss-on-probabilities": "loss.on"}


def _both(facts: dict, key: str):
    ref, port = facts.get("reference") or {}, facts.get("port") or {}
    if key in ref and key in port:
        return ref[key], port[key]
    return None


def allowed(name: str, facts: dict | None) -> tuple[bool, str]:
    """Whether the facts let catalogue signature ``name`` be proposed, and why not."""
    if not facts:
        return True, ""
    opt = _both(facts, "optimizer")
    if name in _FOR_OPTIMIZER and opt is not None and not (set(opt) <= _FOR_OPTIMIZER[name]):
        return False, f"the optimizers are {opt[0]} / {opt[1]}"
    need = _NEEDS_DIFFERENT.get(name)
    pairs = [_both(facts, k) for k in ((need,) if isinstance(need, str) else need or ())]
    if pairs and all(p is not None and p[0] == p[1] for p in pairs):
        return False, f"both programs state the same {' / '.join((need,) if isinstance(need, str) else need)}"
    rho = _both(facts, "rho")
    if name == "optimizer-rho" and rho is not None and rho[0] == rho[1]:
        return False, f"both rhos are {rho[0]!r}"
    damp = _both(facts, "dampening")
    if name == "sgd-dampening" and damp is not None and damp[0] == damp[1]:
        return False, f"both dampenings are {damp[0]!r}"
    drop = _both(facts, "dropout")
    if name == "dropout-keep-prob" and drop is not None and _site_values(drop[0], "rate") == _site_values(drop[1], "rate"):
        return False, "the dropout rates match"
    if drop is not None and name == "dropout-kind" and _site_kinds(drop[0]) == _site_kinds(drop[1]):
        return False, "the dropout sites are of the same kinds"
    if drop is not None and name == "dropout-site-missing" and len(drop[0] or []) == len(drop[1] or []):
        return False, "both programs have as many dropout sites"
    bn = _both(facts, "batchnorm")
    if name == "bn-momentum" and bn is not None and _site_values(bn[0], "momentum") == _site_values(bn[1], "momentum"):
        return False, "the BatchNorm momenta match"
    if name == "bn-epsilon" and bn is not None and _site_values(bn[0], "eps") == _site_values(bn[1], "eps"):
        return False, "the BatchNorm epsilons match"
    var = None if bn is None else (_site_field(bn[0], "moving variance"), _site_field(bn[1], "moving variance"))
    if name == "bn-running-var" and var is not None and None not in var and None not in var[0] + var[1] \
            and sorted(var[0]) == sorted(var[1]):
        return False, "both programs store the same moving variance (" + ", ".join(sorted(set(var[0]))) + ")"
    mode = _both(facts, "mode")
    ref, port = facts.get("reference") or {}, facts.get("port") or {}
    if mode is not None and name in ("torch-eval-mode", "learning-phase"):
        evals = [side for side, m in zip((ref, port), mode) if str(m).startswith("eval")]
        tf_name = name == "learning-phase"
        if evals and all((side.get("framework") == "torch") == tf_name for side in evals):
            return False, "the side in inference mode is " + evals[0].get("framework", "?")
    own_step = "mode.note" in ref or "mode.note" in port or "own train_step" in str(mode)
    if name in ("torch-eval-mode", "dropout-eval-mode", "learning-phase") and mode is not None and not own_step \
            and all(str(m) == "train" for m in mode):
        return False, "both programs train in training mode"
    red = _both(facts, "loss.reduction")
    if name == "loss-reduction" and red is not None and red[0] == red[1] and red[0] in ("mean", "sum") \
            and not any("function" in str(ref.get("loss", "")) + str(port.get("loss", "")) for _ in (0,)):
        return False, "both losses are reduced alike"
    wd = _both(facts, "weight_decay")
    if name in ("decay-on-bias", "l2-loss-half", "adamw-decoupled") and wd is not None and not (wd[0] and wd[1]):
        return False, "one program decays no weight (that is the difference, not its form)"
    clip = _both(facts, "clip")
    if name in ("clip-per-tensor", "clip-norm-sparse-rows") and clip is not None and all(str(c) == "none" for c in clip):
        return False, "neither program clips its gradients"
    sched = _both(facts, "lr.schedule")
    if name in ("lr-schedule-end", "lr-off-by-one") and sched is not None and all(str(s) == "constant" for s in sched):
        return False, "both rates are constant"
    return True, ""
