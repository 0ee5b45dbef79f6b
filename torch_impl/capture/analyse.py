"""Finding what the user's objects hold: the dict ``parity_program()`` returns, checked key by key
(the model, the optimizer, the loss or ``train_step``, a scheduler, a constraint, the batch keys,
the data), and the model's contents as parity names them: its parameters and float buffers, the
module owning each and its kind (``dense_kernel``, ``bn_gamma`` ...), the leaf modules whose outputs
are recorded, the parameters the optimizer trains, and the ParamSpecs in forward call order.
"""

from __future__ import annotations

from parity.errors import ParityError
from parity.portkit.program import ParamSpec

from .. import torch as _torch

__all__ = ["PROGRAM_KEYS", "program_objects", "param_kind", "Contents", "parameter_specs"]

#: the keys of the dict ``parity_program()`` returns
PROGRAM_KEYS = ("model", "optimizer", "loss", "scheduler", "train_step", "constraint", "inputs", "targets", "data",
                "steps_per_epoch", "scheduler_unit")


def program_objects(objs, where: str) -> dict:
    """Check the dict ``parity_program()`` returned; the objects by key, defaults filled in.

    Raises:
        ParityError: not a dict, an unknown key, a key missing or holding an object of the wrong
            kind (one line, naming it).
    """
    t = _torch()
    if not isinstance(objs, dict):
        raise ParityError(f"{where}: parity_program() must return a dict, got {type(objs).__name__}")
    unknown = sorted(set(objs) - set(PROGRAM_KEYS))
    if unknown:
        raise ParityError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} in parity_program()'s dict; torch keys are {', '.join(PROGRAM_KEYS)}")

    def need(key, ok, what, required=True):
        if key not in objs or objs[key] is None:
            if required:
                raise ParityError(f"{where}: parity_program() returned no {key!r} ({what})")
            return None
        if not ok(objs[key]):
            raise ParityError(f"{where}: {key!r} must be {what}, got {type(objs[key]).__name__}")
        return objs[key]

    model = need("model", lambda v: isinstance(v, t.nn.Module), "a torch.nn.Module")
    opt = need("optimizer", lambda v: isinstance(v, t.optim.Optimizer), "a torch.optim.Optimizer")
    train_step = need("train_step", callable, "a function train_step(batch) -> loss", required=False)
    loss = need("loss", callable, "a callable loss(output, *targets)", required=train_step is None)
    sched = need("scheduler", lambda v: callable(getattr(v, "step", None)), "an LR scheduler (with .step())", required=False)
    constraint = need("constraint", callable, "a function called after each step", required=False)
    names = lambda v: isinstance(v, (list, tuple)) and all(isinstance(s, str) for s in v)  # noqa: E731
    inputs = need("inputs", names, "a list of batch keys", required=False) or ["x"]
    targets = need("targets", names, "a list of batch keys", required=False)
    data = need("data", callable, "a function returning an iterable of batches", required=False)
    steps_per_epoch = need("steps_per_epoch", lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
                           "a positive int", required=False)
    scheduler_unit = need("scheduler_unit", lambda v: v in ("epoch", "step"), '"epoch" or "step"', required=False)
    return {"model": model, "optimizer": opt, "loss": loss, "scheduler": sched, "train_step": train_step,
            "constraint": constraint, "inputs": list(inputs), "targets": None if targets is None else list(targets),
            "data": data, "steps_per_epoch": steps_per_epoch, "scheduler_unit": scheduler_unit}


def param_kind(module, attr: str, t) -> str | None:
    """The ParamSpec kind of ``module``'s parameter or buffer ``attr`` (None: a buffer parity ignores)."""
    nn = t.nn
    if isinstance(module, nn.Linear):
        return {"weight": "dense_kernel", "bias": "bias"}.get(attr)
    # a transposed conv's weight [in, out, kh, kw] under the conv layout (oihw>hwio) is TF's conv2d_transpose
    # kernel [kh, kw, out, in]
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        return {"weight": "conv_kernel", "bias": "bias"}.get(attr)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return {"weight": "bn_gamma", "bias": "bn_beta", "running_mean": "bn_mean", "running_var": "bn_var"}.get(attr)
    if isinstance(module, nn.LayerNorm):
        return {"weight": "ln_gamma", "bias": "ln_beta"}.get(attr)
    if isinstance(module, (nn.LSTM, nn.LSTMCell, nn.RNN, nn.RNNCell, nn.GRU, nn.GRUCell)):  # (the lstm_* kinds: any recurrent layer's)
        if attr.startswith("weight_ih"):
            return "lstm_kernel"
        if attr.startswith("weight_hh"):
            return "lstm_recurrent"
        if attr.startswith("bias"):
            return "lstm_bias"
    if isinstance(module, nn.Embedding) and attr == "weight":
        return "embedding"
    return "other"


class Contents:
    """What a model and its optimizer hold, by the names parity uses (the model's dotted names).

    ``params``: name -> parameter; ``pnames``: id(parameter) -> name; ``buffers``: the float
    buffers by name; ``in_opt``: ids of the parameters the optimizer holds; ``owner``: name ->
    (owning module's name, kind); ``leaves``: (name, module) of every module without children.

    Raises:
        ParityError: the optimizer holds a tensor that is not a parameter of the model.
    """

    def __init__(self, model, optimizer, where: str, t):
        self.params = dict(model.named_parameters())
        self.pnames = {id(p): n for n, p in self.params.items()}
        self.buffers = {n: b for n, b in model.named_buffers() if b.is_floating_point()}
        opt_params = [p for g in optimizer.param_groups for p in g["params"]]
        strangers = [p for p in opt_params if id(p) not in self.pnames]
        if strangers:
            raise ParityError(f"{where}: the optimizer holds {len(strangers)} tensor(s) that are not parameters of the model "
                              "(build the optimizer from model.parameters(), after the model)")
        self.in_opt = {id(p) for p in opt_params}
        self.owner = {}
        for mname, mod in model.named_modules():
            for attr, p in list(mod.named_parameters(recurse=False)) + list(mod.named_buffers(recurse=False)):
                full = f"{mname}.{attr}" if mname else attr
                if full in self.params or full in self.buffers:
                    self.owner[full] = (mname, param_kind(mod, attr, t))
        self.leaves = [(n, m) for n, m in model.named_modules() if not any(True for _ in m.children())]


def parameter_specs(contents: Contents, order: list[str]) -> list[ParamSpec]:
    """Parameters then float buffers; ordered by the call order (``order``) of their module."""
    rank = {n: i for i, n in enumerate(order)}
    specs = []
    for n, p in contents.params.items():
        layer, kind = contents.owner.get(n, (n.rpartition(".")[0], "other"))
        specs.append(ParamSpec(n, tuple(p.shape), kind or "other", layer, trainable=p.requires_grad and id(p) in contents.in_opt))
    for n, b in contents.buffers.items():
        layer, kind = contents.owner.get(n, (n.rpartition(".")[0], "other"))
        specs.append(ParamSpec(n, tuple(b.shape), kind or "other", layer, trainable=False))
    position = {s.name: i for i, s in enumerate(specs)}
    return sorted(specs, key=lambda s: (rank.get(s.layer, len(rank)), position[s.name]))
