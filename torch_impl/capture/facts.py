"""The facts of a captured PyTorch program, read from its objects (never from numbers): the optimizer
and every hyper-parameter in parity's one convention (:mod:`parity.program.facts`), weight decay
(coefficient, form, scope), the learning-rate schedule, gradient clipping, every dropout site,
every BatchNorm (momentum in TF's convention), the model's mode, the loss (kind, reduction, on
logits or on probabilities) and the seed. ``facts(prog)`` returns a flat dict of plain values.
"""

from __future__ import annotations

import inspect
import re

__all__ = ["facts"]

#: torch optimizer class -> parity's family name
_FAMILY = {"Adam": "adam", "AdamW": "adamw", "SGD": "sgd", "RMSprop": "rmsprop", "Adagrad": "adagrad",
           "Adadelta": "adadelta", "Adamax": "adamax", "NAdam": "nadam", "RAdam": "radam"}

#: where each family adds its epsilon (parity's canonical forms)
_EPS_FORM = {"adam": "after bias correction", "adamw": "after bias correction", "adamax": "outside max",
             "nadam": "after bias correction", "rmsprop": "outside sqrt", "adagrad": "outside sqrt",
             "adadelta": "inside sqrt"}


def _num(v):
    if hasattr(v, "item") and not isinstance(v, (tuple, list)):
        v = v.item()
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def _source(fn) -> str:
    try:
        return inspect.getsource(fn)
    except (TypeError, OSError):
        return ""


def _step_source(fn) -> str:
    """``fn``'s source and that of the functions it calls by name from its module or its closure (one level: a
    ``hat_step(opt)`` helper the train_step calls, which sets eps before ``opt.step()``)."""
    src = _source(fn)
    scope = dict(getattr(fn, "__globals__", {}) or {})
    code, cells = getattr(fn, "__code__", None), getattr(fn, "__closure__", None) or ()
    for name, cell in zip(code.co_freevars if code is not None else (), cells):
        try:
            scope[name] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    called = [scope.get(n) for n in sorted(set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", src)))]
    return "\n".join([src] + [_source(f) for f in called if inspect.isfunction(f) and f is not fn])


def optimizer_facts(opt, pnames: dict) -> dict:
    """The optimizer's family and hyper-parameters (its first group), weight decay with its scope."""
    name = type(opt).__name__
    fam = _FAMILY.get(name, f"other:{name}")
    g = opt.param_groups[0]
    out: dict = {"optimizer": fam, "optimizer.class": f"torch:{name}", "lr": _num(g.get("lr"))}
    if "betas" in g:
        out["beta1"], out["beta2"] = (_num(b) for b in g["betas"])
    if "eps" in g:
        out["eps"] = _num(g["eps"])
        out["eps.form"] = _EPS_FORM.get(fam, "unknown")
    if fam in ("adam", "adamw"):
        out["amsgrad"] = bool(g.get("amsgrad", False))
    if fam == "sgd":
        out["momentum"] = _num(g.get("momentum", 0.0))
        out["dampening"] = _num(g.get("dampening", 0.0))
        out["nesterov"] = bool(g.get("nesterov", False))
        out["momentum.form"] = "lr outside the accumulator"  # v = mu v + g; p -= lr v (TF1 Momentum too)
    if fam == "rmsprop":
        out["rho"] = _num(g.get("alpha"))
        out["momentum"] = _num(g.get("momentum", 0.0))
        out["centered"] = bool(g.get("centered", False))
        out["accumulator.initial"] = 0.0  # the mean square starts at 0 (TF1's RMSPropOptimizer: 1)
    if fam == "adagrad":
        out["accumulator.initial"] = _num(g.get("initial_accumulator_value", 0.0))
        out["lr_decay"] = _num(g.get("lr_decay", 0.0))
    if fam == "adadelta":
        out["rho"] = _num(g.get("rho"))
    # weight decay: coupled (added to the gradient) except AdamW's decoupled p -= lr wd p
    decays = []
    for group in opt.param_groups:
        for p in group["params"]:
            decays.append((pnames.get(id(p), "?"), _num(group.get("weight_decay", 0.0)) or 0.0))
    on = [n for n, wd in decays if wd]
    coefs = sorted({wd for _, wd in decays if wd})
    out["weight_decay"] = coefs[0] if len(coefs) == 1 else (coefs if coefs else 0.0)
    if on:
        out["weight_decay.form"] = "decoupled" if fam == "adamw" else "coupled (added to the gradient)"
        out["weight_decay.scope"] = "all parameters" if len(on) == len(decays) else ", ".join(on)
    return out


def schedule_facts(scheduler) -> dict:
    """The scheduler's kind and parameters; parity steps it once per training step."""
    if scheduler is None:
        return {"lr.schedule": "constant"}
    kind = type(scheduler).__name__
    params = {k: _num(v) for k, v in vars(scheduler).items()
              if not k.startswith("_") and isinstance(v, (int, float)) and not isinstance(v, bool)
              and k not in ("last_epoch", "base_lrs", "verbose")}
    text = kind + ("(" + ", ".join(f"{k}={v:g}" for k, v in sorted(params.items())) + ")" if params else "")
    return {"lr.schedule": text, "lr.schedule.unit": "scheduler.step() per training step"}


def _returned(src: str, expr: str) -> str:
    """What a forward returns: ``expr``, or for a bare name its last assignment in ``src`` (``x = F.log_softmax(x)``)."""
    if re.fullmatch(r"\w+", expr):
        found = re.findall(rf"^\s*{expr}\s*=\s*(.*)$", src, flags=re.M)
        return found[-1] if found else expr
    return expr


def loss_facts(loss, model, t) -> dict:
    """The loss: kind, reduction, and what it is applied to (logits, probabilities, log-probabilities)."""
    last = None
    for m in model.modules():
        if not list(m.children()):
            last = m
    last_kind = type(last).__name__ if last is not None else ""
    on = {"Softmax": "probabilities", "LogSoftmax": "log-probabilities", "Sigmoid": "probabilities"}.get(last_kind, "logits")
    if on == "logits":  # a functional last step: what the model's own forward returns (F.log_softmax(self.fc(x)))
        fwd = _source(type(model).forward)
        ret = " ".join(_returned(fwd, r.strip()) for r in re.findall(r"\breturn\b(.*)$", fwd, flags=re.M))
        if re.search(r"log_softmax\(", ret):
            on, last_kind = "log-probabilities", "its forward's log_softmax"
        elif re.search(r"(?<!log_)softmax\(|sigmoid\(", ret):
            on, last_kind = "probabilities", "its forward's " + ("sigmoid" if "sigmoid(" in ret else "softmax")
    nn = t.nn
    kinds = [(nn.CrossEntropyLoss, "softmax cross-entropy"), (nn.NLLLoss, "negative log-likelihood"),
             (nn.BCEWithLogitsLoss, "sigmoid cross-entropy"), (nn.BCELoss, "binary cross-entropy"),
             (nn.MSELoss, "mean squared error"), (nn.L1Loss, "absolute error"), (nn.SmoothL1Loss, "smooth L1"),
             (nn.HuberLoss, "Huber"), (nn.KLDivLoss, "KL divergence")]
    out: dict = {}
    if isinstance(loss, nn.Module):
        kind = next((k for cls, k in kinds if isinstance(loss, cls)), type(loss).__name__)
        out["loss"] = kind
        out["loss.reduction"] = getattr(loss, "reduction", "unknown")
        if getattr(loss, "label_smoothing", 0.0):
            out["loss.label_smoothing"] = _num(loss.label_smoothing)
    elif callable(loss):
        src = _source(loss)
        # the binary forms first: "cross_entropy" is a part of "binary_cross_entropy_with_logits"
        found = [k for pat, k in ((r"binary_cross_entropy_with_logits", "sigmoid cross-entropy"),
                                  (r"binary_cross_entropy\(", "binary cross-entropy"),
                                  (r"(?<!binary_)cross_entropy\(", "softmax cross-entropy"),
                                  (r"nll_loss", "negative log-likelihood"), (r"mse_loss", "mean squared error"))
                 if re.search(pat, src)]
        out["loss"] = found[0] if found else "unknown"  # a function whose source names no known loss: says nothing
        red = re.search(r"reduction\s*=\s*['\"](\w+)['\"]", src)
        out["loss.reduction"] = red.group(1) if red else ("mean" if found else "unknown")  # torch's default: mean
        if re.search(r"softmax\(", src) and "log_softmax" not in src and "nll_loss" in src:
            on = "probabilities"  # softmax then nll_loss: NLL of probabilities, not of log-probabilities
        elif "log_softmax" in src:
            on = "log-probabilities"
    else:
        return {}
    kind = out.get("loss")
    if kind == "negative log-likelihood":
        if on == "log-probabilities":
            out["loss"], on = "softmax cross-entropy", "logits (log_softmax + NLL)"
        elif on == "probabilities":
            out["loss"], on = "softmax cross-entropy", "probabilities, no log (softmax + nll_loss)"
    elif kind == "softmax cross-entropy" and on == "log-probabilities":
        on = "logits (cross-entropy of log_softmax: log_softmax is idempotent, the same loss)"
    elif kind in ("softmax cross-entropy", "sigmoid cross-entropy") and on == "probabilities":
        on = f"{'softmax' if kind.startswith('softmax') else 'sigmoid'} twice ({last_kind} then {type(loss).__name__})"
    elif on == "log-probabilities":
        on = "log-probabilities"
    out["loss.on"] = on
    return out


def layer_facts(model, t) -> dict:
    """Every dropout site (rate, kind) and BatchNorm (momentum in TF's convention, eps), and the mode."""
    nn = t.nn
    dropout, bn, eval_modules = [], [], []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)):
            dropout.append(f"{name}: rate {float(m.p):g}, channel")
        elif isinstance(m, nn.AlphaDropout):
            dropout.append(f"{name}: rate {float(m.p):g}, alpha")
        elif isinstance(m, nn.Dropout):
            dropout.append(f"{name}: rate {float(m.p):g}, element")
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            mom = "cumulative average" if m.momentum is None else f"{1.0 - float(m.momentum):g}"
            # nn.BatchNorm stores n/(n-1) times the batch variance in running_var (Bessel-corrected)
            var = "moving variance unbiased" if m.track_running_stats else "no moving statistics"
            bn.append(f"{name}: momentum {mom}, eps {float(m.eps):g}, {var}")
        for child in ((m.dropout,) if isinstance(getattr(m, "dropout", None), float) and m.dropout else ()):
            dropout.append(f"{name}: rate {float(child):g}, between recurrent layers")
        if not m.training and name:
            eval_modules.append(name)
    out = {"dropout": dropout, "batchnorm": bn}
    if not model.training:
        out["mode"] = "eval"
    elif eval_modules:
        out["mode"] = "train, except " + ", ".join(eval_modules) + " (eval)"
    else:
        out["mode"] = "train"
    return out


def _threshold(kind: str, text: str, fn) -> str:
    """``"global norm 5.0"``: the threshold as written, or a name resolved through the function's closure and
    globals (``MAX_GRAD_NORM``, ``args.clip``); the kind alone when it cannot be resolved."""
    try:
        float(text)
        return f"{kind} {text}"
    except ValueError:
        pass
    import inspect

    try:
        cv = inspect.getclosurevars(fn)
        scope = {**cv.builtins, **cv.globals, **cv.nonlocals}
    except (TypeError, ValueError):
        scope = getattr(fn, "__globals__", {})
    head, *rest = text.split(".")
    v = scope.get(head)
    for attr in rest:
        v = getattr(v, attr, None)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{kind} {float(v):g}"
    return kind


def clip_facts(train_step) -> dict:
    """Clipping: torch clips in user code only, so it is read from the train_step's source."""
    if train_step is None:
        return {"clip": "none"}
    src = _source(train_step)
    m = re.search(r"clip_grad_norm_?\([^,]+,\s*(?:max_norm\s*=\s*)?([\w.]+)", src)
    if m:
        return {"clip": _threshold("global norm", m.group(1), train_step)}
    m = re.search(r"clip_grad_value_?\([^,]+,\s*(?:clip_value\s*=\s*)?([\w.]+)", src)
    if m:
        return {"clip": _threshold("value", m.group(1), train_step)}
    # an element-wise clamp of each gradient in place (p.grad.data.clamp_(-5, 5)): a clip by value
    m = re.search(r"\.grad(?:\.data)?\.clamp_?\(\s*(?:min\s*=\s*)?(-?[\w.]+)\s*,\s*(?:max\s*=\s*)?(-?[\w.]+)", src)
    if m:
        return {"clip": f"value {m.group(2)}", "clip.note": f"element-wise clamp of each .grad to [{m.group(1)}, {m.group(2)}]"}
    # gradients changed by hand (grads = [p.grad ...]; g.mul_(5 / max(norm, 5))): a clip of its own, not read
    if re.search(r"\.grad\b", src) and re.search(r"\.(?:mul_|div_|clamp_|clip_|copy_|set_)\(|\bgrad\w*\s*[*/]=", src):
        return {"clip": "unknown", "clip.note": "the train_step changes the gradients by hand: a clip not read"}
    return {"clip": "none", "clip.note": "none seen in the train_step's source"}


def facts(prog) -> dict:
    """The program's facts (see the module docstring); a fact the objects do not say is left out."""
    t = prog.t
    out: dict = {"framework": "torch"}
    out.update(optimizer_facts(prog.opt, prog._pnames))
    out.update(schedule_facts(prog.scheduler))
    if prog.scheduler is None and prog.train_step is not None and re.search(
            r"""scheduler|\[["']lr["']\]\s*=""", _source(prog.train_step)):
        out["lr.schedule"] = "unknown"  # its train_step sets the rate (a scheduler of its own)
        out["lr.schedule.unit"] = "set in its train_step"
    out.update(clip_facts(prog.train_step))
    out.update(layer_facts(prog.model, t))
    if prog.train_step is not None:
        out["mode.note"] = "a train_step of its own (it may change the mode)"
    for fn in (prog.train_step, getattr(prog.scheduler, "lr_lambdas", [None])[0] if prog.scheduler is not None else None):
        if fn is not None and re.search(r"""\[["']eps["']\]\s*=""", _step_source(fn)) and "eps.form" in out:
            out["eps.form"] = "unknown"  # its own code sets eps every step (TF1's epsilon hat, rescaled)
            out["eps.note"] = f"{getattr(fn, '__name__', 'its own code')} sets eps every step"
    if prog.loss_fn is not None:
        out.update(loss_facts(prog.loss_fn, prog.model, t))
    elif prog.train_step is not None:  # the loss its train_step computes, read from its source
        found = loss_facts(prog.train_step, prog.model, t)
        if not str(found.get("loss", "")).startswith("a function"):
            out.update(found)
    return out
