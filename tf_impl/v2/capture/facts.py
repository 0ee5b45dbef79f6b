"""The facts of a captured Keras program, read from its objects (never from numbers): the optimizer in
parity's one convention (:mod:`parity.program.facts`; a legacy ``decay`` is an inverse-time
schedule), weight decay (the optimizer's decoupled ``weight_decay``, layers' L2 regularisers as
loss terms), the learning-rate schedule, clipping, every dropout site (rate, element or channel),
every BatchNorm (momentum, eps), the mode, and the loss (kind, reduction, logits or probabilities).
``facts(prog)`` returns a flat dict of plain values.
"""

from __future__ import annotations

import numpy as np

__all__ = ["facts"]

_FAMILY = {"adam": "adam", "adamw": "adamw", "sgd": "sgd", "rmsprop": "rmsprop", "adagrad": "adagrad",
           "adadelta": "adadelta", "adamax": "adamax", "nadam": "nadam", "ftrl": "ftrl", "lion": "lion"}


def _f(v):
    """A number as the program wrote it: a float32 variable's value as the short decimal it prints as."""
    if v is None:
        return None
    v = v.numpy() if hasattr(v, "numpy") else v
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    short = float(f"{x:.7g}")
    return short if float(np.float32(short)) == float(np.float32(x)) and abs(short - x) <= 1e-7 * abs(x) else x


def _hyper(opt, name):
    """A hyper-parameter of a new (attribute) or legacy (``_hyper``) Keras optimizer."""
    hyper = getattr(opt, "_hyper", None)
    if isinstance(hyper, dict) and name in hyper:
        v = hyper[name]
        return v if callable(v) and not hasattr(v, "numpy") else _f(v)
    v = getattr(opt, name, None)
    return v if callable(v) and not hasattr(v, "numpy") else _f(v)


def optimizer_facts(opt, lr_now: float) -> dict:
    name = type(opt).__name__
    fam = _FAMILY.get(name.lower(), f"other:{name}")
    legacy = hasattr(opt, "get_slot_names")
    out: dict = {"optimizer": fam, "optimizer.class": f"{type(opt).__module__.split('.')[0]}:{name}"
                 + (" (legacy)" if legacy else ""), "lr": float(lr_now)}
    if fam in ("adam", "adamw", "nadam", "adamax"):
        out["beta1"], out["beta2"] = _hyper(opt, "beta_1"), _hyper(opt, "beta_2")
    if fam in ("adam", "adamw"):
        out["amsgrad"] = bool(getattr(opt, "amsgrad", False))
    eps = _f(getattr(opt, "epsilon", None))
    if eps is not None:
        out["eps"] = eps
        out["eps.form"] = {"adam": "hat (added to sqrt(v) before bias correction)", "adamw": "hat (added to sqrt(v) before bias correction)",
                           "nadam": "hat (added to sqrt(v) before bias correction)", "rmsprop": "inside sqrt",
                           "adagrad": "outside sqrt" if legacy else "inside sqrt", "adadelta": "inside sqrt",
                           "adamax": "outside max"}.get(fam, "unknown")
        if fam == "rmsprop" and legacy and not (_hyper(opt, "momentum") or 0.0):
            # tf_keras' legacy RMSprop without momentum steps lr * g / (sqrt(ms) + eps) itself; with momentum
            # it calls the ApplyRMSProp kernel, lr * g / sqrt(ms + eps) (as Keras 3 and the new tf_keras do)
            out["eps.form"] = "outside sqrt"
    if fam == "sgd":
        out["momentum"] = _hyper(opt, "momentum") or 0.0
        out["dampening"] = 0.0
        out["nesterov"] = bool(getattr(opt, "nesterov", False))
        out["momentum.form"] = "lr inside the velocity (v = mu v - lr g)"
    if fam == "rmsprop":
        out["rho"] = _hyper(opt, "rho")
        out["momentum"] = _hyper(opt, "momentum") or 0.0
        out["centered"] = bool(getattr(opt, "centered", False))
        out["accumulator.initial"] = 0.0
    if fam == "adagrad":
        out["accumulator.initial"] = _f(getattr(opt, "initial_accumulator_value", 0.1))
    if fam == "adadelta":
        out["rho"] = _hyper(opt, "rho")
    return out


def schedule_facts(opt) -> dict:
    lr = getattr(opt, "_hyper", {}).get("learning_rate") if isinstance(getattr(opt, "_hyper", None), dict) else None
    lr = lr if lr is not None else getattr(opt, "_learning_rate", None)
    lr = lr if lr is not None else getattr(opt, "learning_rate", None)
    decay = _f(getattr(opt, "_initial_decay", None)) or _f(getattr(opt, "decay", None)) if hasattr(opt, "get_slot_names") else None
    if callable(lr) and not hasattr(lr, "numpy") and hasattr(lr, "get_config"):
        cfg = {k: v for k, v in lr.get_config().items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        text = type(lr).__name__ + "(" + ", ".join(f"{k}={v:g}" for k, v in sorted(cfg.items())) + ")"
        return {"lr.schedule": text, "lr.schedule.unit": "optimizer iterations (one per training step)"}
    if decay:
        return {"lr.schedule": f"InverseTimeDecay(decay={decay:g}) (legacy decay: lr / (1 + decay * iterations))",
                "lr.schedule.unit": "optimizer iterations (one per training step)"}
    return {"lr.schedule": "constant"}


def decay_facts(opt, layers) -> dict:
    out: dict = {}
    wd = _f(getattr(opt, "weight_decay", None))
    terms = []
    for layer in layers:
        for attr in ("kernel_regularizer", "bias_regularizer", "depthwise_regularizer", "recurrent_regularizer"):
            reg = getattr(layer, attr, None)
            l2 = _f(getattr(reg, "l2", None)) if reg is not None else None
            if l2:
                terms.append((f"{layer.name}.{attr.replace('_regularizer', '')}", 2.0 * l2))
    if wd:
        out["weight_decay"] = wd
        out["weight_decay.form"] = "decoupled (p -= lr wd p)"
        excluded = getattr(opt, "_exclude_from_weight_decay", None) or getattr(opt, "_exclude_from_weight_decay_names", None)
        out["weight_decay.scope"] = "all parameters" + (f" except {excluded}" if excluded else "")
    elif terms:
        coefs = sorted({c for _, c in terms})
        out["weight_decay"] = coefs[0] if len(coefs) == 1 else coefs
        out["weight_decay.form"] = "loss term (L2 regulariser: adds 2 l2 w to the gradient)"
        out["weight_decay.scope"] = ", ".join(n for n, _ in terms)
    else:
        out["weight_decay"] = 0.0
    return out


def clip_facts(opt) -> dict:
    for attr, kind in (("global_clipnorm", "global norm"), ("clipnorm", "norm per tensor"), ("clipvalue", "value")):
        v = _f(getattr(opt, attr, None))
        if v:
            return {"clip": f"{kind} {v:g}"}
    return {"clip": "none"}


def _bn_var(layer) -> str:
    """The moving variance's form: Keras 3 stores the biased batch variance; tf_keras' fused kernel (its
    default on 4-D inputs, decided at build) n/(n-1) times it, its non-fused path the biased one; unsaid
    where the layer does not tell (not built)."""
    if type(layer).__module__.startswith("keras."):
        return ", moving variance biased"
    if getattr(layer, "_parity_bessel", None) is not None:
        # fused in the float32 program; parity's float64 rebuild ran it non-fused with the fused kernel's
        # n/(n-1) (fused_batch_norm_convention): the program stores the unbiased variance
        return ", moving variance unbiased"
    fused = getattr(layer, "fused", None)
    if isinstance(fused, bool) and not getattr(layer, "renorm", False) and not getattr(layer, "virtual_batch_size", None):
        return ", moving variance unbiased" if fused else ", moving variance biased"
    return ""


def layer_facts(layers) -> dict:
    dropout, bn = [], []
    for layer in layers:
        kind = type(layer).__name__
        if kind in ("SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"):
            dropout.append(f"{layer.name}: rate {float(layer.rate):g}, channel")
        elif kind == "Dropout":
            ns = getattr(layer, "noise_shape", None)
            dropout.append(f"{layer.name}: rate {float(layer.rate):g}, {'element' if ns is None else f'noise_shape {ns}'}")
        elif kind in ("GaussianDropout", "AlphaDropout"):
            dropout.append(f"{layer.name}: rate {float(layer.rate):g}, {kind}")
        elif kind.startswith("BatchNormalization"):
            frozen = "" if layer.trainable else ", frozen (inference mode)"
            bn.append(f"{layer.name}: momentum {float(layer.momentum):g}, eps {float(layer.epsilon):g}{_bn_var(layer)}{frozen}")
        for attr in ("dropout", "recurrent_dropout"):
            r = getattr(layer, attr, None)
            if isinstance(r, float) and r:
                dropout.append(f"{layer.name}.{attr}: rate {r:g}, element")
    return {"dropout": dropout, "batchnorm": bn}


def loss_facts(loss, model, fit: bool = False) -> dict:
    if loss is None:
        return {}
    act = ""
    if getattr(model, "layers", None):
        fn = getattr(model.layers[-1], "activation", None)
        # parity wraps a layer's own activation to record its pre-activation output: the original is a default
        for d in getattr(fn, "__defaults__", None) or ():
            if callable(d) and getattr(d, "__name__", "") and not hasattr(d, "weights"):
                fn = d
        act = getattr(fn, "__name__", "") if fn is not None else ""
    name = type(loss).__name__ if not callable(loss) or hasattr(loss, "get_config") else getattr(loss, "__name__", "loss")
    low = name.lower()
    kind = ("softmax cross-entropy" if "categorical" in low and "crossentropy" in low else
            "sigmoid cross-entropy" if "binary" in low else "mean squared error" if "squared" in low or low == "mse"
            else name)
    out = {"loss": kind}
    from_logits = bool(getattr(loss, "from_logits", False) or getattr(loss, "_fn_kwargs", {}).get("from_logits", False))
    if "cross-entropy" in kind:
        squash = act in ("softmax", "sigmoid")
        if from_logits:
            out["loss.on"] = f"{act} twice (from_logits=True after the model's {act})" if squash else "logits"
        else:
            out["loss.on"] = f"logits (the model's {act}; Keras clips the probabilities to [1e-7, 1 - 1e-7])" if squash \
                else f"probabilities expected (from_logits=False), the last layer's activation is {act or 'none'}"
    red = getattr(loss, "reduction", None)
    red = {"sum": "sum", "none": "none", "auto": "mean", "sum_over_batch_size": "mean",
           "mean": "mean"}.get(str(red).split(".")[-1].lower(), "mean" if red is None else str(red))
    if red == "none" and fit:
        red = "mean"  # fit() averages the per-example losses (compile's sum_over_batch_size)
    out["loss.reduction"] = red
    return out


def facts(prog) -> dict:
    """The program's facts (see the module docstring); a fact the objects do not say is left out."""
    out: dict = {"framework": "tf2"}
    if getattr(prog, "tf32", False):  # the program turned TF32 back on (parity turns it off before building)
        out["tf32"] = True
    out.update(optimizer_facts(prog.optimizer, _f(prog._lr())))
    out.update(schedule_facts(prog.optimizer))
    out.update(decay_facts(prog.optimizer, prog.layers))
    out.update(clip_facts(prog.optimizer))
    out.update(layer_facts(prog.layers))
    out["mode"] = "train" if prog.train_step is None else "train (the program's own train_step calls the model)"
    out.update(loss_facts(prog.loss, prog.model, prog.fit))
    return out
