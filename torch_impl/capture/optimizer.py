"""Reading the user's torch optimizer: its hyper-parameters (the settings parity reports: lr,
momentum, betas, eps ...), the learning rate and processed gradients of each step (a step
pre-hook sees what ``optimizer.step()`` consumes, after any clipping), the parameters right after
it (a step post-hook), each parameter's raw gradient after ``backward()`` (post-accumulate hooks),
and its state as slots under parity's canonical names (``exp_avg`` -> ``m`` ..., and TF1 Adam's
``beta1_power`` / ``beta2_power``).

The update's maths (docs/stages.md): a group's *coupled* ``weight_decay`` (SGD, Adam, RMSprop ...:
``g + wd*w``) is the gradient of ``wd/2*||w||^2``, so the loss reported is the data loss plus that
term (the ``regularization`` stage), and the raw and processed (effective) gradients include
``wd*w``; a *decoupled* decay (AdamW, ``decoupled_weight_decay=True``) is its own term of the update,
reported per parameter as ``<param>/decoupled_decay`` = ``lr*wd`` beside ``<param>/lr``.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

__all__ = ["SLOT_NAMES", "settings", "slots", "recording_step", "decay_of", "regularization", "loss_reads_parameters",
           "scheduler_unit", "EPOCH_SCHEDULERS", "steps_per_epoch", "scheduler_note", "step_scheduler"]

#: torch optimizer state key -> the canonical slot name parity uses
SLOT_NAMES = {
    "exp_avg": "m",
    "exp_avg_sq": "v",
    "max_exp_avg_sq": "vhat",
    "momentum_buffer": "momentum",
    "square_avg": "ms",
    "grad_avg": "mg",
    "sum": "accumulator",
    "acc_delta": "accum_update",
}

_HYPER = ("lr", "momentum", "dampening", "nesterov", "weight_decay", "eps", "betas", "alpha", "amsgrad", "centered")


def settings(opt, scheduler, model) -> dict:
    """The optimizer's hyper-parameters (its first group), the scheduler's class and the model's mode."""
    g = opt.param_groups[0]
    out: dict = {"optimizer": type(opt).__name__, "framework_convention": "torch"}
    for k in _HYPER:
        if k in g:
            v = g[k]
            v = float(v) if hasattr(v, "item") and not isinstance(v, (tuple, list)) else v
            out[k] = list(v) if isinstance(v, tuple) else v
    if "Adam" in type(opt).__name__:
        out["adam_epsilon"] = float(g.get("eps", 0.0))
    if scheduler is not None:
        out["scheduler"] = type(scheduler).__name__
    out["train_mode"] = bool(model.training)
    return out


def slots(prog) -> dict[str, np.ndarray]:
    """Every optimizer state tensor shaped like its parameter, as ``<param>/<slot>``; Adam's beta powers."""
    opt = prog.opt
    out = {}
    for g in opt.param_groups:
        for p in g["params"]:
            name = prog._pnames[id(p)]
            for key, value in opt.state.get(p, {}).items():
                if key == "step" or not isinstance(value, prog.t.Tensor) or tuple(value.shape) != tuple(p.shape):
                    continue
                # Adadelta's square_avg is TF's "accum" (canonical "accumulator"), not RMSprop's mean square
                canon = "accumulator" if key == "square_avg" and type(opt).__name__ == "Adadelta" else SLOT_NAMES.get(key, key)
                out[f"{name}/{canon}"] = prog._np(value)
    if "Adam" in type(opt).__name__ and opt.param_groups and opt.param_groups[0]["params"]:
        # TF1 AdamOptimizer's beta1_power / beta2_power after t updates: beta^(t+1)
        g = opt.param_groups[0]
        st = opt.state.get(g["params"][0], {})
        if "step" in st:
            steps = float(st["step"])
            b1, b2 = g["betas"]
            out["beta1_power"] = np.asarray(math.pow(float(b1), steps + 1), dtype=prog.dtype)
            out["beta2_power"] = np.asarray(math.pow(float(b2), steps + 1), dtype=prog.dtype)
    return out


#: optimizers whose ``weight_decay`` is decoupled (``w -= lr*wd*w``, not added to the gradient)
_DECOUPLED = ("AdamW", "Adafactor")


def decay_of(opt) -> dict:
    """``{id(param): (coupled wd, decoupled wd)}`` for every parameter of ``opt``'s groups."""
    out = {}
    decoupled_class = type(opt).__name__ in _DECOUPLED
    for g in opt.param_groups:
        wd = float(g.get("weight_decay", 0.0) or 0.0)
        decoupled = decoupled_class or bool(g.get("decoupled_weight_decay", False))
        for p in g["params"]:
            out[id(p)] = (0.0, wd) if decoupled else (wd, 0.0)
    return out


def regularization(prog, decay: dict):
    """``sum(wd/2 * ||w||^2)`` over the parameters with a coupled decay and a gradient this step (the
    loss whose gradient ``wd*w`` the optimizer adds), in the run's dtype; None when there is none."""
    total, any_ = None, False
    with prog.t.no_grad():
        for g in prog.opt.param_groups:
            for p in g["params"]:
                wd = decay.get(id(p), (0.0, 0.0))[0]
                if wd and p.grad is not None:  # the optimizer skips (and does not decay) a parameter without one
                    term = 0.5 * wd * (p * p).sum()
                    total = term if total is None else total + term
                    any_ = True
    return prog._np(total) if any_ else None


def loss_reads_parameters(loss, outputs, params) -> bool:
    """Whether ``loss`` depends on a parameter other than through the model's ``outputs`` (a
    regularisation term written by hand inside the loss function): a walk of its autograd graph."""
    stop = {o.grad_fn for o in outputs if getattr(o, "grad_fn", None) is not None}
    ids = {id(p) for p in params}
    todo, seen = [getattr(loss, "grad_fn", None)], set()
    while todo:
        node = todo.pop()
        if node is None or node in stop or node in seen:
            continue
        seen.add(node)
        var = getattr(node, "variable", None)
        if var is not None and id(var) in ids:
            return True
        todo.extend(n for n, _ in node.next_functions)
    return False


#: schedulers whose documented unit is the epoch (``step_size``, ``milestones``, ``gamma`` per epoch);
#: OneCycleLR / CyclicLR are per batch; LambdaLR, MultiplicativeLR, CosineAnnealing*, Linear/Constant/
#: PolynomialLR, SequentialLR ... are written for either unit: stepped per step unless the program says
EPOCH_SCHEDULERS = ("StepLR", "MultiStepLR", "ExponentialLR")


def scheduler_unit(scheduler, given) -> str:
    """``"epoch"`` or ``"step"``: the program's ``scheduler_unit``, else by the scheduler's class."""
    if given in ("epoch", "step"):
        return given
    return "epoch" if type(scheduler).__name__ in EPOCH_SCHEDULERS else "step"


@contextlib.contextmanager
def recording_step(prog, raw: dict, seen: dict):
    """Hooks for one step of ``prog``: raw gradients into ``raw``; what the optimizer step consumed
    (``processed_gradients``, ``learning_rate``, ``regularization``) and left (``parameters``,
    ``versions``) into ``seen``. A coupled decay's ``wd*w`` is added to both gradients."""
    decay = decay_of(prog.opt)

    def with_decay(p, grad):
        wd = decay.get(id(p), (0.0, 0.0))[0]
        return grad + wd * p.detach() if wd else grad

    def on_grad(name):
        def hook(p):
            if p.grad is not None:
                raw[name] = prog._np(with_decay(p, p.grad))
        return hook

    def pre_step(opt, args, kwargs):
        pg, lr = {}, {}
        groups = opt.param_groups
        for g in groups:
            rate = float(g["lr"])
            for p in g["params"]:
                name = prog._pnames[id(p)]
                if len(groups) > 1:
                    lr[f"{name}/lr"] = np.asarray(rate, dtype=prog.dtype)
                wd = decay.get(id(p), (0.0, 0.0))[1]
                if wd:
                    lr[f"{name}/decoupled_decay"] = np.asarray(rate * wd, dtype=prog.dtype)
                if p.grad is not None:
                    pg[name] = prog._np(with_decay(p, p.grad))
        if len(groups) == 1:
            lr["lr"] = np.asarray(float(groups[0]["lr"]), dtype=prog.dtype)
        seen["processed_gradients"], seen["learning_rate"] = pg, lr
        reg = regularization(prog, decay)
        if reg is None and any(d[1] for d in decay.values()):
            # a decoupled decay has no regularisation term: 0, so that a coupled counterpart diverges there
            reg = np.zeros((), dtype=prog.dtype)
        seen["regularization"] = reg

    def post_step(opt, args, kwargs):
        seen["parameters"] = {n: prog._np(p) for n, p in prog._params.items() if id(p) in prog._in_opt}
        # in-place writes after this (a max-norm constraint) bump a parameter's version counter
        seen["versions"] = {n: p._version for n, p in prog._params.items()}

    handles = [p.register_post_accumulate_grad_hook(on_grad(n)) for n, p in prog._params.items() if p.requires_grad]
    handles.append(prog.opt.register_step_pre_hook(pre_step))
    handles.append(prog.opt.register_step_post_hook(post_step))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def steps_per_epoch(prog):
    """The program's ``steps_per_epoch``, else the length of its finite ``data`` (a list, or a function
    returning one); None when neither says."""
    given = getattr(prog, "steps_per_epoch", None)
    if given:
        return int(given)
    if not hasattr(prog, "_data_len"):
        prog._data_len = None
        src = prog.data_fn
        try:
            data = src() if callable(src) else src
            prog._data_len = len(data) if hasattr(data, "__len__") and len(data) else None
        except Exception:  # a data function parity cannot call twice: the epoch length is unknown
            prog._data_len = None
    return prog._data_len


def scheduler_note(prog):
    """One line saying in which unit the textbook step steps ``prog``'s scheduler (None without one)."""
    sch = prog.scheduler
    if sch is None or prog.train_step is not None:
        return None
    name, given = type(sch).__name__, getattr(prog, "scheduler_unit", None)
    if scheduler_unit(sch, given) == "step":
        why = "as the program says (scheduler_unit)" if given else (
            "its unit is the batch" if name in ("OneCycleLR", "CyclicLR") else
            "its class is written for either unit; give \"scheduler_unit\": \"epoch\" to step it per epoch")
        return f"scheduler {name}: stepped after every training step ({why})"
    spe = steps_per_epoch(prog)
    if spe is None:
        return (f"scheduler {name}: a per-epoch scheduler, and the program gives no \"steps_per_epoch\" and no finite "
                "\"data\": not stepped within the run (give \"steps_per_epoch\", or \"scheduler_unit\": \"step\")")
    return f"scheduler {name}: stepped per epoch, every {spe} training steps (the epoch's length: " + (
        "the program's steps_per_epoch)" if getattr(prog, "steps_per_epoch", None) else "its data's length)")


def step_scheduler(prog) -> None:
    """After the textbook step: step the scheduler in its own unit (see :func:`scheduler_note`)."""
    sch = prog.scheduler
    prog._steps_taken = getattr(prog, "_steps_taken", 0) + 1
    if scheduler_unit(sch, getattr(prog, "scheduler_unit", None)) == "step":
        sch.step()
        return
    spe = steps_per_epoch(prog)
    if spe and prog._steps_taken % spe == 0:
        sch.step()
