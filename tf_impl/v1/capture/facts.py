"""The facts of a captured TF1 program, read from its graph and optimizer (never from numbers): the
optimizer (from its apply ops and the Python object's settings) in parity's one convention
(:mod:`parity.program.facts`), weight decay as a loss term (``tf.nn.l2_loss``), clipping, every
dropout site (rate, element or channel), every BatchNorm (momentum in TF's convention, eps, the moving
variance's form: fused or not), the
mode the feeds set, and the loss (kind, reduction, on logits or on probabilities).
``facts(prog)`` returns a flat dict of plain values.
"""

from __future__ import annotations

import re

import numpy as np

from .graph import _ancestors, _source_variable

__all__ = ["facts"]

#: apply-op type (``ResourceApply<type>``) -> (family, where epsilon is added)
_FAMILY = {"Adam": ("adam", "hat (added to sqrt(v) before bias correction)"), "GradientDescent": ("sgd", None),
           "Momentum": ("sgd", None), "KerasMomentum": ("sgd", None), "RMSProp": ("rmsprop", "inside sqrt"),
           "CenteredRMSProp": ("rmsprop", "inside sqrt"), "Adagrad": ("adagrad", "none"),
           "AdagradV2": ("adagrad", "outside sqrt"), "Adadelta": ("adadelta", "inside sqrt"),
           "AdaMax": ("adamax", "outside max"), "Ftrl": ("ftrl", None), "FtrlV2": ("ftrl", None),
           "ProximalGradientDescent": ("proximal-sgd", None), "ProximalAdagrad": ("proximal-adagrad", None)}


def optimizer_facts(settings: dict, apply_type: str) -> dict:
    fam, eps_form = _FAMILY.get(apply_type, (f"other:{apply_type}", None))
    out: dict = {"optimizer": fam, "optimizer.class": settings.get("optimizer", apply_type)}
    if "lr" in settings:
        out["lr"] = float(settings["lr"])
    if fam == "adam":
        out["beta1"], out["beta2"] = float(settings.get("beta1", 0.9)), float(settings.get("beta2", 0.999))
        out["amsgrad"] = False
    if "eps" in settings and eps_form not in (None, "none"):
        out["eps"] = float(settings["eps"])
    if eps_form is not None:
        out["eps.form"] = eps_form
    if fam == "sgd":
        out["momentum"] = float(settings.get("momentum", 0.0)) if apply_type != "GradientDescent" else 0.0
        out["dampening"] = 0.0
        out["nesterov"] = bool(settings.get("nesterov", False))
        out["momentum.form"] = ("lr inside the velocity (v = mu v - lr g)" if apply_type == "KerasMomentum"
                                else "lr outside the accumulator")
    if fam == "rmsprop":
        out["rho"] = float(settings.get("rho", settings.get("decay", 0.9)))
        out["momentum"] = float(settings.get("momentum", 0.0))
        out["centered"] = apply_type == "CenteredRMSProp" or bool(settings.get("centered", False))
        out["accumulator.initial"] = 1.0  # RMSPropOptimizer starts its mean square at ones
    if fam == "adagrad":
        out["accumulator.initial"] = float(settings.get("initial_accumulator_value", 0.1))
    if fam == "adadelta":
        out["rho"] = float(settings.get("rho", 0.95))
    return out


def _const(t):
    try:
        return float(np.asarray(t.op.get_attr("value").float_val or t.op.get_attr("value").double_val)[0])
    except Exception:  # not a scalar constant
        return None


def loss_facts(graph, loss_name: str) -> dict:
    """The loss op's kind, its reduction, the logits or probabilities it reads, and L2 loss terms."""
    loss = graph.get_tensor_by_name(loss_name)
    ops = _ancestors([loss.op], control=False)
    types = {op.type for op in ops}
    out: dict = {}
    if types & {"SoftmaxCrossEntropyWithLogits", "SparseSoftmaxCrossEntropyWithLogits"}:
        xent = [op for op in ops if op.type in ("SoftmaxCrossEntropyWithLogits", "SparseSoftmaxCrossEntropyWithLogits")]
        twice = any(o.type == "Softmax" for o in _ancestors([xent[0].inputs[0].op], control=False))
        out["loss"], out["loss.on"] = "softmax cross-entropy", "softmax twice (a Softmax feeds the logits)" if twice else "logits"
    elif "Softmax" in types and "Log" in types:
        out["loss"], out["loss.on"] = "softmax cross-entropy", "logits (log of the softmax)"
    elif "SigmoidCrossEntropyWithLogits" in types or ("Sigmoid" in types and "Log" in types):
        out["loss"] = "sigmoid cross-entropy"
        out["loss.on"] = "probabilities" if "Log" in types and "Sigmoid" in types and "Softplus" not in types else "logits"
    elif any("logistic_loss" in op.name.split("/") for op in ops):  # tf.nn.sigmoid_cross_entropy_with_logits's own ops
        out["loss"], out["loss.on"] = "sigmoid cross-entropy", "logits"
    elif any(op.type in ("SquaredDifference", "Square") and "moments" not in op.name.split("/") for op in ops):
        # (a BatchNorm's tf.nn.moments squares differences of its own: not the loss)
        out["loss"] = "mean squared error"
    # reduction: the last reducing op before the scalar loss (through adds of regularisers)
    top, seen = loss.op, 0
    reducing = ("Mean", "Sum", "AddV2", "Add", "Identity", "Mul", "DivNoNan", "RealDiv", "Cast")
    while top.type in ("AddV2", "Add", "AddN", "Identity", "Mul", "Cast") and top.inputs and seen < 8:
        cands = [i.op for i in top.inputs if i.op.type in reducing]
        if not cands:
            break
        top, seen = cands[0], seen + 1
    red = {"Mean": "mean", "Sum": "sum"}.get(top.type, "unknown")
    if top.type in ("DivNoNan", "RealDiv", "Div") and top.inputs[0].op.type == "Sum":
        red = "mean"  # tf.losses' SUM_BY_NONZERO_WEIGHTS: the sum over the weights present (1 each: the mean)
    out["loss.reduction"] = red
    l2 = [op for op in ops if op.type == "L2Loss"]
    if l2:
        names = sorted({getattr(_source_variable(op.inputs[0]), "name", op.inputs[0].name) for op in l2})
        coefs = set()
        for op in l2:
            for c in op.outputs[0].consumers():
                if c.type == "Mul":
                    v = [_const(i) for i in c.inputs if i.op.type == "Const"]
                    coefs.update(x for x in v if x is not None)
        out["weight_decay"] = sorted(coefs)[0] if len(coefs) == 1 else (sorted(coefs) or "unknown")
        out["weight_decay.form"] = "loss term (tf.nn.l2_loss: adds coef * w to the gradient)"
        out["weight_decay.scope"] = ", ".join(str(n) for n in names)
    elif any("regulariz" in op.name.lower() for op in ops):
        out["weight_decay"] = "unknown"  # a regulariser of its own ops in the loss (not tf.nn.l2_loss)
        out["weight_decay.form"] = "loss term"
    else:
        out["weight_decay"] = 0.0
    return out


def layer_facts(graph, dropout_sites: list, rates: list, forward_ops) -> dict:
    dropout = []
    for site, rate in zip(dropout_sites, rates or [None] * len(dropout_sites)):
        shape = site.get("shape")
        channel = shape is not None and len(shape) == 4 and shape[1] == 1 and shape[2] == 1
        r = "fed per batch" if rate is None else f"{rate:g}"
        dropout.append(f"{site['name']}: rate {r}, {'channel' if channel else 'element'}")
    return {"dropout": dropout, "batchnorm": bn_facts(graph, forward_ops)}


def _fold(t, depth: int = 0):
    """The value of a scalar tensor built from constants (Const, Sub, Identity, Cast), else None."""
    op = t.op
    if depth > 6:
        return None
    if op.type == "Const":
        return _const(t)
    if op.type in ("Identity", "Cast"):
        return _fold(op.inputs[0], depth + 1)
    if op.type == "Sub":
        x, y = _fold(op.inputs[0], depth + 1), _fold(op.inputs[1], depth + 1)
        return None if x is None or y is None else x - y
    return None


def bn_facts(graph, forward_ops) -> list:
    """Every BatchNorm of the forward pass, fused or not (tf.layers / tf.compat.v1.layers / tf_keras legacy
    layers, contrib batch_norm, a Keras layer in a TF1 graph): "scope: momentum m, eps e, moving variance
    unbiased|biased". A scope is one that holds a ``moving_mean`` variable and forward ops; the momentum is
    folded from its ``AssignMovingAvg`` (decay = 1 - momentum); eps from the fused op or the constant added
    to the variance before ``Rsqrt``; the fused kernel stores n/(n-1) times the batch variance, the
    non-fused moments the biased one. A field the graph does not say is left out."""
    ops = graph.get_operations()
    scopes = {op.name.rsplit("/", 1)[0] for op in forward_ops
              if op.type.startswith("FusedBatchNorm") or op.type == "BatchNormWithGlobalNormalization"}
    scopes |= {op.name[: -len("/moving_mean")] for op in ops
               if op.type in ("VarHandleOp", "VariableV2", "Variable") and op.name.endswith("/moving_mean")}
    # one site per BatchNorm: a fused op under a cond of its layer (``bn/cond/FusedBatchNormV3``) is the layer's
    scopes = {s for s in scopes if not any(s.startswith(o + "/") for o in scopes)}
    fwd = {op.name: op for op in forward_ops}
    out = []
    for scope in sorted(scopes):
        mine = [op for name, op in fwd.items() if name.startswith(scope + "/")]
        if not mine:
            continue  # not on the loss's forward pass (a sampler's copy, another tower)
        fused = [op for op in mine if op.type.startswith("FusedBatchNorm") or op.type == "BatchNormWithGlobalNormalization"]
        rsqrt = [op for op in mine if op.type == "Rsqrt"]
        # a float64 rebuild's fused kernel computed from float64 ops (dtype._fused_as_float64): its ops sit
        # under the fused op's name, and it stores what the kernel stores
        fused = fused or [op for op in rsqrt if re.search(r"/FusedBatchNorm\w*/batchnorm/Rsqrt$", op.name)]
        # a tf_keras layer fused in float32, rebuilt non-fused in float64 with the kernel's n/(n-1)
        # (dtype.fused_batch_norm_convention): it stores the unbiased variance too
        bessel = any(op.name.startswith(scope + "/") and op.name.endswith("/fused_kernel_bessel") for op in ops)
        decay = None
        for cand in ops:
            if cand.type == "Mul" and re.fullmatch(re.escape(scope) + r"/(?:[^/]+/)*AssignMovingAvg(_\d+)?/mul", cand.name):
                for i in cand.inputs:
                    decay = _fold(i) if decay is None else decay
                break
        if decay is None:  # TF1 moving_averages.assign_moving_average: a decay constant of its own
            for cand in ops:
                if cand.type == "Const" and cand.name.startswith(scope + "/") and re.search(r"AssignMovingAvg(_\d+)?/decay$", cand.name):
                    decay = _const(cand.outputs[0])
                    break
        fields = [f"momentum {'unknown' if decay is None else f'{1.0 - decay:g}'}"]
        eps = None
        if fused and "epsilon" in fused[0].node_def.attr:
            eps = fused[0].get_attr("epsilon")
        elif rsqrt and rsqrt[0].inputs[0].op.type in ("AddV2", "Add"):
            vals = [_fold(i) for i in rsqrt[0].inputs[0].op.inputs]
            eps = next((v for v in vals if v is not None), None)
        if eps is not None:
            fields.append(f"eps {eps:g}")
        if fused or bessel:
            fields.append("moving variance unbiased")  # the fused kernel's batch variance is n/(n-1) var
        elif rsqrt:
            fields.append("moving variance biased")  # nn.moments' variance, as the moving average stores it
        out.append(f"{scope}: " + ", ".join(fields))
    return out


_UPDATES = ("AssignSub", "AssignSubVariableOp", "AssignAdd", "AssignAddVariableOp", "Assign", "AssignVariableOp")


def bn_shared_facts(graph, roots) -> list:
    """BatchNorm moving statistics updated by several calls in one run (TF1: a layer called twice per step,
    e.g. a GAN's D(real) and D(fake, reuse=True), with ``updates_collections=None`` or both calls' UPDATE_OPS
    run by one train op): "scope: N updates in one run, each from the statistics the run read (reads not
    ordered after the other updates)". Each ``assign_moving_average`` subtracts (1 - decay)(v - batch) from a
    read of v the graph does not order after the other calls' updates: TF's scheduler decides (corpus 02: every
    read first in float64, some chained in float32), so parity runs every read first (:mod:`.bn_order`):
    v - sum_i (1 - decay)(v - batch_i), where calls made one after the other (torch) chain them. ``roots``:
    the ops one run executes (the loss and the train op)."""
    ops = _ancestors(roots)
    out = []
    for var in graph.get_operations():
        if var.type not in ("VarHandleOp", "VariableV2", "Variable") or not var.name.endswith("/moving_mean"):
            continue
        writes = [op for op in ops if op.type in _UPDATES and op.inputs and _source_variable(op.inputs[0]) is var]
        if len(writes) >= 2:
            out.append(f"{var.name[: -len('/moving_mean')]}: {len(writes)} updates in one run, each from the "
                       "statistics the run read (reads not ordered after the other updates)")
    return sorted(out)


def _counter(op) -> bool:
    """Whether variable op ``op`` is a step counter (the global step: an integer variable)."""
    try:
        dtype = op.get_attr("dtype")
    except ValueError:
        return "step" in op.name
    return getattr(dtype, "is_integer", False) or "step" in op.name


def schedule_facts(graph, lr_name) -> dict:
    """A rate that reads a variable (the global step) is a schedule; its kind from the ops' names."""
    if lr_name is None:
        return {}
    ops = _ancestors([graph.get_tensor_by_name(lr_name).op], control=False)
    variables = [op for op in ops if op.type in ("VarHandleOp", "VariableV2", "Variable")]
    if not variables:
        return {"lr.schedule": "constant"}
    if not any(_counter(op) for op in variables):  # a float variable the program assigns itself (per epoch, say):
        # within the steps parity runs the rate is whatever the variable holds (the learning-rate stage compares it)
        return {"lr.schedule": "constant", "lr.variable": "a variable the program assigns outside the training step "
                f"({', '.join(op.name for op in variables)})"}
    names = " ".join(op.name for op in ops)
    kind = next((k for k in ("ExponentialDecay", "PolynomialDecay", "PiecewiseConstant", "InverseTimeDecay",
                             "NaturalExpDecay", "CosineDecay", "exponential_decay", "polynomial_decay",
                             "piecewise_constant", "inverse_time_decay", "cosine_decay") if k in names), "a schedule")
    return {"lr.schedule": kind, "lr.schedule.unit": "the global step (one per training step)"}


def clip_facts(graph, processed: dict) -> dict:
    ops = _ancestors([graph.get_tensor_by_name(n).op for n in processed.values()], control=False)
    names = " ".join(op.name for op in ops)
    if "clip_by_global_norm" in names:
        # clip_by_global_norm's scale is clip_norm * min(1 / norm, 1 / clip_norm): the Mul's first input is
        # the threshold (a constant as most programs write it; else the kind alone)
        for op in ops:
            if op.type == "Mul" and re.search(r"clip_by_global_norm(_\d+)?/mul$", op.name):
                v = _const(op.inputs[0])
                if v is not None:
                    return {"clip": f"global norm {v:g}"}
        return {"clip": "global norm"}
    if "clip_by_norm" in names:
        return {"clip": "norm per tensor"}
    if "clip_by_value" in names:
        return {"clip": "value"}
    return {"clip": "none"}


def mode_facts(graph, feeds: dict) -> dict:
    """Training or inference as the program's feeds (or a placeholder_with_default) set it."""
    off = []
    for name, value in feeds.items():
        t = graph.get_tensor_by_name(name)
        if t.dtype.base_dtype.name == "bool" and not bool(np.asarray(value)):
            off.append(name.split(":")[0])
    for op in graph.get_operations():
        if op.type == "PlaceholderWithDefault" and op.outputs[0].dtype.base_dtype.name == "bool" \
                and op.outputs[0].name not in feeds and _const(op.inputs[0]) is None:
            try:
                if not bool(op.inputs[0].op.get_attr("value").bool_val[0]):
                    off.append(op.name)
            except Exception:  # not a constant default
                pass
    return {"mode": "eval (" + ", ".join(off) + " False)" if off else "train"}


def facts(prog) -> dict:
    """The program's facts (see the module docstring); a fact the graph does not say is left out."""
    out: dict = {"framework": "tf1"}
    if getattr(prog, "tf32", False):  # the program turned TF32 back on (parity turns it off before building)
        out["tf32"] = True
    out.update(optimizer_facts(prog._settings, prog._apply_type))
    g = prog.graph
    out.update(schedule_facts(g, prog._lr))
    out.update(clip_facts(g, prog._processed))
    forward = _ancestors([g.get_tensor_by_name(prog._loss).op], control=False)
    feeds = getattr(prog, "_dropout_feeds", None)  # the driven sites, aligned with their rates
    sites = getattr(feeds, "sites", None) if feeds is not None else None
    out.update(layer_facts(g, prog._dropout if sites is None else sites, getattr(feeds, "rates", None), forward))
    out.update(mode_facts(g, prog._feeds))
    out.update(loss_facts(g, prog._loss))
    roots = [g.get_tensor_by_name(prog._loss).op] + [op for op in getattr(prog, "_train_ops", []) or [] if hasattr(op, "type")]
    shared = bn_shared_facts(g, roots)
    if shared:
        out["batchnorm.shared"] = shared
    return out
