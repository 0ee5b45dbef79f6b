"""Data-parallel seeds in PyTorch: DistributedDataParallel over gloo, one process per replica.

The port object lives in the harness's process; ``build`` starts ``world_size`` worker
processes with ``torch.multiprocessing.spawn`` (``join=False``), each joins a gloo process
group over 127.0.0.1, builds the seed network, wraps it in ``DistributedDataParallel``
and waits for commands on a pipe (``load``, ``parameters``, ``step``, ``close``). Each
``step`` sends the global batch to every worker; worker ``r`` trains on rows
``[r*n/R, (r+1)*n/R)`` (the split MirroredStrategy makes) and sends back what it saw, so
the port keeps the one-call-per-step protocol of docs/ports.md.

Models (``case.option("model")``): ``mlp`` (seed 002: 784-300-100-10 ReLU, softmax
cross-entropy, plain gradient descent) and ``bn_convnet`` (seed 003: conv, BatchNorm,
ReLU, max-pool, harness-masked dropout, dense softmax; SGD momentum 0.9 Nesterov).

What is recorded, in the canonical (TF MirroredStrategy) convention:

* ``forward``: every replica's activations, concatenated in replica order (= the global
  batch's rows: compared with a single-device run on the global batch);
* ``loss``: ``replica<r>/loss``, replica r's share of the global loss (its local mean
  divided by R, which is what ``tf.nn.compute_average_loss`` returns), and ``loss``, the
  global mean (``all_reduce`` of the local means, divided by R: what a DDP user logs);
* ``gradients``: ``replica<r>/<param>``, replica r's gradient as it enters the SUM
  all-reduce (DDP's ``allreduce_hook`` divides the bucket by the world size first: this
  is that divided bucket, captured by a comm hook that then runs the same all-reduce),
  and ``<param>``, the reduced gradient DDP leaves in ``.grad``;
* ``learning_rate``, ``parameters`` (rank 0's: DDP keeps the replicas identical),
  ``slots`` (``-lr * momentum_buffer``, Keras' velocity) and ``state`` (BatchNorm
  running statistics, rank 0's: DDP broadcasts rank 0's buffers at every forward).

BatchNorm across replicas: ``nn.SyncBatchNorm`` runs on CUDA only (it raises on CPU
tensors), so the faithful port synchronises the batch moments itself with
``torch.distributed.nn.functional.all_reduce`` (autograd-aware: its backward all-reduces
the gradient, as SyncBatchNorm's does): the moments are those of the global batch, the
moving statistics are updated Keras' way (biased variance, torch momentum 1 - 0.99).
With several GPUs use ``nn.SyncBatchNorm.convert_sync_batchnorm`` and the NCCL backend
(docs/distributed.md).

Variants, each a porting mistake that only shows with more than one replica:

* ``single``: not distributed: one process, the global batch, the same maths. Replica
  r's gradient is computed as the gradient with respect to a copy of the parameters used
  on rows of shard r only (the definition of a replica's share); the reference of the
  distributed cases.
* ``sum_allreduce``: a comm hook that all-reduces with SUM and forgets to divide by the
  world size (Horovod's ``op=Sum``, a hand-written ``dist.all_reduce`` of ``.grad``):
  every gradient R times too large.
* ``global_batch_loss``: the TF loss ported literally, ``sum(per_example) /
  global_batch`` (``compute_average_loss``), under DDP's averaging: gradients R times
  too small.
* ``lr_scaled``: learning rate multiplied by the world size (the linear scaling rule
  applied to a port whose global batch did not change).
* ``local_bn``: Keras-style BatchNorm on each replica's shard, not synchronised
  (plain ``nn.BatchNorm2d`` under DDP).
* ``same_dropout``: every replica applies the dropout mask drawn for replica 0's rows
  (every rank seeded the same: ``torch.manual_seed(0)`` on all ranks).
"""

from __future__ import annotations

import os
import socket
import traceback

import numpy as np

from parity.portkit.layout import conv_from_torch, conv_to_torch, dense_from_torch, dense_to_torch, flatten_permutation, nchw_to_nhwc

from . import framework_info as _framework_info

__all__ = ["build", "framework_info", "DistributedPort", "SinglePort", "VARIANTS", "MODELS", "BACKEND"]

VARIANTS = (None, "single", "sum_allreduce", "global_batch_loss", "lr_scaled", "local_bn", "same_dropout")
MODELS = ("mlp", "bn_convnet")
#: gloo on CPU; "nccl" when the ports run on CUDA (``PARITY_TORCH_DEVICE=cuda``): rank r on
#: ``cuda:r``, one GPU per replica. ``PARITY_DIST_BACKEND`` overrides. The NCCL route is not
#: tested here (no GPU, and NCCL refuses two ranks on one GPU): docs/distributed.md.
BACKEND = os.environ.get("PARITY_DIST_BACKEND", "nccl" if os.environ.get("PARITY_TORCH_DEVICE", "cpu").startswith("cuda") else "gloo")
#: Seconds the harness waits for a worker's answer before declaring it hung.
TIMEOUT = float(os.environ.get("PARITY_DIST_TIMEOUT", "600"))
MLP_LAYERS = ("hidden1", "hidden2", "output")


def framework_info() -> dict:
    info = dict(_framework_info())
    info["device"] = f"{info['device']} (DDP, {BACKEND})"
    return info


def _config(case, dtype: str, variant) -> dict:
    """The plain, picklable description a worker builds its replica from."""
    o = case.option
    model = o("model")
    if model not in MODELS:
        raise ValueError(f"case option model must be one of {MODELS}, not {model!r}")
    world = int(o("world_size", 2))
    if world < 1:
        raise ValueError(f"world_size must be >= 1, not {world}")
    return {
        "model": model,
        "dtype": dtype,
        "variant": variant,
        "world": world,
        "options": dict(case.options),
        "shape": tuple(case.data.args.get("shape", (32, 32, 3))),
        "backend": BACKEND,
    }


# -- the networks, shared by the workers and the single-device variant ------------------------------
def _torch():
    from . import torch

    return torch()


def _sync_moments(t, x, dims, world):
    """Batch mean and biased variance over the global batch (all replicas), differentiable."""
    import warnings

    import torch.distributed.nn.functional as dnn

    # torch 2.13 marks this public, autograd-aware all_reduce deprecated in favour of a
    # private module (torch.distributed._functional_collectives): the public one stays here.
    warnings.filterwarnings("ignore", message=r".*nn.functional.all_reduce is deprecated.*", category=FutureWarning)
    n = x.numel() // x.shape[1]
    count = n * world
    mean = dnn.all_reduce(x.sum(dim=dims)) / count
    centred = x - mean.view(1, -1, 1, 1)
    var = dnn.all_reduce((centred * centred).sum(dim=dims)) / count
    return mean, var


def _convnet(t, cfg, sync: bool):
    o = cfg["options"]
    filters, classes, keep = o.get("filters", 8), o.get("classes", 10), o.get("keep", 0.75)
    side = cfg["shape"][0] // 2
    world = cfg["world"]

    class KerasBatchNorm2d(t.nn.BatchNorm2d):
        """BatchNorm whose moving variance is the biased batch variance (Keras); optionally synchronised."""

        def forward(self, x):
            if not self.training:
                return super().forward(x)
            dims = (0, 2, 3)
            if sync:
                mean, var = _sync_moments(t, x, dims, world)
            else:
                mean, var = x.mean(dim=dims), x.var(dim=dims, unbiased=False)
            shape = (1, -1, 1, 1)
            y = (x - mean.view(shape)) / t.sqrt(var.view(shape) + self.eps) * self.weight.view(shape) + self.bias.view(shape)
            with t.no_grad():
                self.running_mean.sub_((self.running_mean - mean) * self.momentum)
                self.running_var.sub_((self.running_var - var) * self.momentum)
                self.num_batches_tracked.add_(1)
            return y

    class Net(t.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = t.nn.Conv2d(3, filters, 3, padding=1, bias=False)
            self.bn = KerasBatchNorm2d(filters, eps=o.get("bn_epsilon", 1e-3), momentum=1.0 - o.get("bn_momentum", 0.99))
            self.pool = t.nn.MaxPool2d(2)
            self.dense = t.nn.Linear(side * side * filters, classes)

        def forward(self, x, mask):
            acts = {}
            acts["conv"] = h = self.conv(x)
            acts["bn"] = h = self.bn(h)
            acts["relu"] = h = t.relu(h)
            acts["pool"] = h = self.pool(h)
            acts["flatten"] = h = t.flatten(h, 1)
            acts["dropout"] = h = h * mask / keep
            logits = self.dense(h)
            acts["dense"] = t.softmax(logits, dim=-1)
            return logits, acts

    return Net()


class _Replica:
    """One replica's model, optimizer and conversions (used in a worker, or alone by ``single``)."""

    def __init__(self, cfg, rank: int = 0):
        t = _torch()
        self.t, self.cfg, self.rank, self.world = t, cfg, rank, cfg["world"]
        self.variant, o = cfg["variant"], cfg["options"]
        self.tdtype = {"float64": t.float64, "float32": t.float32}[cfg["dtype"]]
        # one GPU per rank under NCCL; the single-device reference and gloo stay on the CPU
        self.device = f"cuda:{rank}" if cfg["backend"] == "nccl" and cfg["variant"] != "single" else "cpu"
        self.lr = o.get("lr", 0.01) * (self.world if self.variant == "lr_scaled" else 1)
        if cfg["model"] == "mlp":
            from .mlp import MLP

            self.model = MLP().to(self.tdtype).to(self.device)
            self.opt = t.optim.SGD(self.model.parameters(), lr=self.lr)
        else:
            sync = self.variant not in ("local_bn", "single")
            self.model = _convnet(t, cfg, sync=sync and self.world > 1).to(self.tdtype).to(self.device)
            self.opt = t.optim.SGD(self.model.parameters(), lr=self.lr, momentum=o.get("momentum", 0.9),
                                   nesterov=o.get("nesterov", True))
            side = cfg["shape"][0] // 2
            self.perm = flatten_permutation(side, side, o.get("filters", 8))
            self.inverse = np.argsort(self.perm)
        self.model.train()

    # canonical name -> (parameter, kind)
    def tensors(self, model=None):
        m = model or self.model
        if self.cfg["model"] == "mlp":
            out = {}
            for layer in MLP_LAYERS:
                mod = getattr(m, layer)
                out[f"{layer}/kernel"] = (mod.weight, "dense")
                out[f"{layer}/bias"] = (mod.bias, None)
            return out
        return {"conv/kernel": (m.conv.weight, "conv"), "bn/gamma": (m.bn.weight, None), "bn/beta": (m.bn.bias, None),
                "dense/kernel": (m.dense.weight, "flatdense"), "dense/bias": (m.dense.bias, None)}

    def out(self, value, kind):
        arr = value.detach().cpu().numpy().copy()
        if kind == "dense":
            return dense_from_torch(arr)
        if kind == "conv":
            return conv_from_torch(arr)
        if kind == "flatdense":
            return np.ascontiguousarray(arr.T[self.inverse])
        return arr

    def into(self, arr, kind):
        arr = np.asarray(arr)
        if kind == "dense":
            arr = dense_to_torch(arr)
        elif kind == "conv":
            arr = conv_to_torch(arr)
        elif kind == "flatdense":
            arr = np.ascontiguousarray(arr[self.perm].T)
        return self.t.from_numpy(np.array(arr, copy=True)).to(self.tdtype).to(self.device)

    def state(self):
        if self.cfg["model"] != "bn_convnet":
            return {}
        bn = self.model.bn
        return {"bn/moving_mean": self.out(bn.running_mean, None), "bn/moving_variance": self.out(bn.running_var, None)}

    def parameters(self):
        out = {n: self.out(p, k) for n, (p, k) in self.tensors().items()}
        out.update(self.state())
        return out

    def load(self, params):
        t = self.t
        with t.no_grad():
            for n, (p, k) in self.tensors().items():
                p.copy_(self.into(params[n], k))
            if self.cfg["model"] == "bn_convnet":
                self.model.bn.running_mean.copy_(self.into(params["bn/moving_mean"], None))
                self.model.bn.running_var.copy_(self.into(params["bn/moving_variance"], None))

    def inputs(self, batch, rows):
        """This replica's shard of the global batch, as torch tensors in torch layout."""
        if self.cfg["model"] == "mlp":
            x = self.tensor(batch["X"][rows])
            return (x,), self.tensor(batch["y"][rows])
        x = np.ascontiguousarray(np.transpose(batch["x"][rows], (0, 3, 1, 2)))
        mask = np.asarray(batch["keep_mask"])
        if self.variant == "same_dropout":
            n = rows.stop - rows.start
            mask = mask[:n]  # every replica draws replica 0's mask
        else:
            mask = mask[rows]
        mask = np.ascontiguousarray(mask[:, self.perm])
        return (self.tensor(x), self.tensor(mask)), self.tensor(batch["y"][rows])

    def tensor(self, arr):
        return self.t.from_numpy(np.ascontiguousarray(arr)).to(self.tdtype).to(self.device)

    def activations(self, outputs):
        if self.cfg["model"] == "mlp":
            h1, h2, logits = outputs
            return logits, {"hidden1": h1, "hidden2": h2, "logits": logits}
        return outputs

    def act_out(self, name, value):
        arr = value.detach().cpu().numpy().copy()
        if arr.ndim == 4:
            return nchw_to_nhwc(arr)
        if name in ("flatten", "dropout"):
            return np.ascontiguousarray(arr[:, self.inverse])
        return arr

    def loss_of(self, logits, y, global_batch):
        t = self.t
        per_example = t.nn.functional.cross_entropy(logits, y, reduction="none")
        if self.variant == "global_batch_loss":
            return per_example.sum() / global_batch  # TF's compute_average_loss, ported literally
        return per_example.mean()

    def slots(self):
        if self.cfg["model"] != "bn_convnet":
            return None
        return {f"{n}/momentum": self.out(-self.lr * self.opt.state[p]["momentum_buffer"], k)
                for n, (p, k) in self.tensors().items()}


def _shard(n: int, world: int, rank: int) -> slice:
    if n % world:
        raise ValueError(f"the global batch ({n}) does not split evenly over {world} replicas")
    per = n // world
    return slice(rank * per, (rank + 1) * per)


# -- the worker process -----------------------------------------------------------------------------
def _capture_hook(world: int, divide: bool, names: dict, store: dict):
    """A DDP comm hook: record each bucket's gradients as they enter the SUM all-reduce, then run it."""
    import torch.distributed as dist

    def hook(state, bucket):
        buf = bucket.buffer()
        if divide:
            buf.div_(world)  # what DDP's default allreduce_hook does before its SUM
        for p, g in zip(bucket.parameters(), bucket.gradients()):
            store[names[id(p)]] = g.detach().clone()
        fut = dist.all_reduce(buf, async_op=True).get_future()
        return fut.then(lambda f: f.value()[0])

    return hook


def _worker(rank: int, cfg: dict, conns, address: str) -> None:
    conn = conns[rank]
    try:
        import torch.distributed as dist

        t = _torch()
        world = cfg["world"]
        if cfg["backend"] == "nccl":
            t.cuda.set_device(rank)
        dist.init_process_group(cfg["backend"], init_method=address, rank=rank, world_size=world)
        rep = _Replica(cfg, rank)
        from torch.nn.parallel import DistributedDataParallel as DDP

        ddp = DDP(rep.model)
        captured: dict = {}
        names = {id(p): n for n, (p, _) in rep.tensors().items()}
        ddp.register_comm_hook(None, _capture_hook(world, cfg["variant"] != "sum_allreduce", names, captured))
        conn.send(("ok", None))
    except Exception as exc:  # report the framework's error to the harness in one line
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        try:
            cmd, arg = conn.recv()
        except (EOFError, OSError):  # the harness went away (interrupted): leave quietly
            return
        try:
            if cmd == "close":
                dist.barrier()
                dist.destroy_process_group()
                conn.send(("ok", None))
                return
            if cmd == "load":
                rep.load(arg)
                conn.send(("ok", None))
            elif cmd == "parameters":
                conn.send(("ok", rep.parameters()))
            elif cmd == "step":
                conn.send(("ok", _worker_step(t, dist, rep, ddp, captured, arg, rank, world)))
            else:
                raise ValueError(f"unknown command {cmd!r}")
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc} [{traceback.format_exc().strip().splitlines()[-3]}]"))
            return


def _worker_step(t, dist, rep, ddp, captured, batch, rank, world):
    key = "X" if rep.cfg["model"] == "mlp" else "x"
    n = batch[key].shape[0]
    rows = _shard(n, world, rank)
    inputs, y = rep.inputs(batch, rows)
    captured.clear()
    logits, acts = rep.activations(ddp(*inputs))
    loss = rep.loss_of(logits, y, n)
    rep.opt.zero_grad()
    loss.backward()
    total = loss.detach().clone()
    dist.all_reduce(total)
    out = {
        "forward": {k: rep.act_out(k, v) for k, v in acts.items()},
        "loss": {f"replica{rank}/loss": (loss.detach() / world).cpu().numpy(), "loss": (total / world).cpu().numpy()},
        "gradients": {f"replica{rank}/{name}": rep.out(captured[name], kind) for name, (p, kind) in rep.tensors().items()},
    }
    if rank == 0:
        out["gradients"].update({name: rep.out(p.grad, kind) for name, (p, kind) in rep.tensors().items()})
        out["learning_rate"] = {"lr": np.asarray(rep.opt.param_groups[0]["lr"], dtype=rep.cfg["dtype"])}
    rep.opt.step()
    if rank == 0:
        out["parameters"] = {n_: rep.out(p, k) for n_, (p, k) in rep.tensors().items()}
        slots = rep.slots()
        if slots is not None:
            out["slots"] = slots
        state = rep.state()
        if state:
            out["state"] = state
    return out


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _merge(replies: list[dict]) -> dict:
    """Join the replicas' answers: forward activations concatenated in replica order, the rest merged."""
    out: dict = {}
    for stage in ("forward", "loss", "gradients", "learning_rate", "parameters", "slots", "state"):
        parts = [r[stage] for r in replies if stage in r]
        if not parts:
            continue
        if stage == "forward":
            out[stage] = {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}
        else:
            merged: dict = {}
            for p in parts:
                for k, v in p.items():
                    merged.setdefault(k, v)
            out[stage] = merged
    if "loss" in out:  # the global loss first, then each replica's share
        loss = out["loss"]
        out["loss"] = {"loss": loss.pop("loss"), **dict(sorted(loss.items()))}
    if "gradients" in out:
        grads = out["gradients"]
        out["gradients"] = {**{k: v for k, v in grads.items() if not k.startswith("replica")},
                            **{k: grads[k] for k in sorted(grads) if k.startswith("replica")}}
    return out


class DistributedPort:
    """The harness-side handle of ``world_size`` DDP worker processes."""

    def __init__(self, case, dtype, variant=None):
        import torch.multiprocessing as mp

        _torch()
        self.cfg = _config(case, dtype, variant)
        world = self.cfg["world"]
        ctx = mp.get_context("spawn")
        pipes = [ctx.Pipe() for _ in range(world)]
        self.conns = [a for a, _ in pipes]
        address = f"tcp://127.0.0.1:{_free_port()}"
        self.procs = mp.spawn(_worker, args=(self.cfg, [b for _, b in pipes], address), nprocs=world, join=False)
        for _, b in pipes:
            b.close()
        self._closed = False
        self._gather()  # each worker says it is up (or why not)

    def settings(self):
        o = self.cfg["options"]
        return {"world_size": self.cfg["world"], "backend": self.cfg["backend"], "lr": o.get("lr"),
                "loss": "local mean, DDP averages" if self.cfg["variant"] != "global_batch_loss"
                else "sum / global batch, DDP averages",
                "allreduce": "sum of g/R (DDP allreduce_hook)" if self.cfg["variant"] != "sum_allreduce" else "sum of g",
                "batchnorm": "local" if self.cfg["variant"] == "local_bn" else "synchronised"}

    def _gather(self):
        replies = []
        for rank, conn in enumerate(self.conns):
            if not conn.poll(TIMEOUT):
                self.close()
                raise RuntimeError(f"DDP worker {rank} did not answer within {TIMEOUT:.0f} s")
            try:
                status, value = conn.recv()
            except EOFError:
                self.close()
                raise RuntimeError(f"DDP worker {rank} exited (see its stderr)") from None
            if status != "ok":
                self.close()
                raise RuntimeError(f"DDP worker {rank}: {value}")
            replies.append(value)
        return replies

    def _all(self, cmd, arg=None):
        for conn in self.conns:
            conn.send((cmd, arg))
        return self._gather()

    def parameters(self):
        return self._all("parameters")[0]

    def load(self, params):
        self._all("load", {k: np.asarray(v) for k, v in params.items()})

    def step(self, batch):
        return _merge(self._all("step", {k: np.asarray(v) for k, v in batch.items()}))

    def close(self):
        if self._closed:
            return
        self._closed = True
        for conn in self.conns:
            try:
                conn.send(("close", None))
            except (OSError, BrokenPipeError):
                pass
        for rank, conn in enumerate(self.conns):
            try:
                if conn.poll(30):
                    conn.recv()
            except (OSError, EOFError):
                pass
        for p in self.procs.processes:
            p.join(30)
            if p.is_alive():
                p.terminate()
                p.join(5)


# -- single device ----------------------------------------------------------------------------------
class SinglePort:
    """One process, the global batch: the run data parallelism must reproduce.

    Replica r's share of a gradient is the gradient with respect to a copy of the
    parameters that only shard r's rows use (``torch.func.functional_call``), the batch
    statistics and the loss being those of the global batch; the shares add up to the
    gradient (tested), and the update uses that sum, as one device computes it.
    """

    def __init__(self, case, dtype):
        cfg = _config(case, dtype, "single")
        self.rep = _Replica(cfg)
        self.world = cfg["world"]

    def settings(self):
        return {"world_size": 1, "replica_shares": self.world, "lr": self.rep.cfg["options"].get("lr")}

    def parameters(self):
        return self.rep.parameters()

    def load(self, params):
        self.rep.load(params)

    def step(self, batch):
        rep, t = self.rep, self.rep.t
        from torch.func import functional_call

        key = "X" if rep.cfg["model"] == "mlp" else "x"
        n = batch[key].shape[0]
        world = self.world
        named = dict(rep.model.named_parameters())
        copies = [{k: v.detach().clone().requires_grad_(True) for k, v in named.items()} for _ in range(world)]
        shards = [rep.inputs(batch, _shard(n, world, r)) for r in range(world)]
        if rep.cfg["model"] == "mlp":
            outs = [functional_call(rep.model, copies[r], shards[r][0]) for r in range(world)]
            h1, h2, logits = (t.cat([o[i] for o in outs]) for i in range(3))
            acts = {"hidden1": h1, "hidden2": h2, "logits": logits}
        else:
            logits, acts = self._convnet_forward(copies, shards)
        y = t.cat([s[1] for s in shards])
        per_example = t.nn.functional.cross_entropy(logits, y, reduction="none")
        loss = per_example.mean()
        params = [p for c in copies for p in c.values()]
        grads = t.autograd.grad(loss, params)
        k = len(named)
        shares = [dict(zip(named, grads[r * k:(r + 1) * k])) for r in range(world)]
        out = {
            "forward": {name: rep.act_out(name, v) for name, v in acts.items()},
            "loss": {"loss": loss.detach().numpy()},
            "gradients": {},
        }
        per = n // world
        for r in range(world):
            out["loss"][f"replica{r}/loss"] = (per_example[r * per:(r + 1) * per].sum() / n).detach().numpy()
        lookup = {id(p): name for name, p in named.items()}
        rep.opt.zero_grad()
        with t.no_grad():
            for name, p in named.items():
                p.grad = sum(s[name] for s in shares)
        tensors = rep.tensors()
        out["gradients"] = {cn: rep.out(p.grad, kind) for cn, (p, kind) in tensors.items()}
        for r in range(world):
            for cn, (p, kind) in tensors.items():
                out["gradients"][f"replica{r}/{cn}"] = rep.out(shares[r][lookup[id(p)]], kind)
        out["learning_rate"] = {"lr": np.asarray(rep.opt.param_groups[0]["lr"], dtype=rep.cfg["dtype"])}
        rep.opt.step()
        out["parameters"] = {cn: rep.out(p, kind) for cn, (p, kind) in tensors.items()}
        slots = rep.slots()
        if slots is not None:
            out["slots"] = slots
        state = rep.state()
        if state:
            out["state"] = state
        return out

    def _convnet_forward(self, copies, shards):
        """Seed 003's forward on the global batch, each shard through its own parameter copy."""
        rep, t = self.rep, self.rep.t
        m, F = rep.model, t.nn.functional
        conv = t.cat([F.conv2d(x, c["conv.weight"], padding=1) for c, ((x, _), _) in zip(copies, shards)])
        bn = m.bn
        mean, var = conv.mean(dim=(0, 2, 3)), conv.var(dim=(0, 2, 3), unbiased=False)
        shape = (1, -1, 1, 1)
        xhat = (conv - mean.view(shape)) / t.sqrt(var.view(shape) + bn.eps)
        per = conv.shape[0] // len(copies)
        normed = t.cat([xhat[r * per:(r + 1) * per] * c["bn.weight"].view(shape) + c["bn.bias"].view(shape)
                        for r, c in enumerate(copies)])
        with t.no_grad():
            bn.running_mean.sub_((bn.running_mean - mean) * bn.momentum)
            bn.running_var.sub_((bn.running_var - var) * bn.momentum)
        relu = t.relu(normed)
        pool = m.pool(relu)
        flat = t.flatten(pool, 1)
        mask = t.cat([s[0][1] for s in shards])
        drop = flat * mask / rep.cfg["options"].get("keep", 0.75)
        logits = t.cat([F.linear(drop[r * per:(r + 1) * per], c["dense.weight"], c["dense.bias"])
                        for r, c in enumerate(copies)])
        acts = {"conv": conv, "bn": normed, "relu": relu, "pool": pool, "flatten": flat, "dropout": drop,
                "dense": t.softmax(logits, dim=-1)}
        return logits, acts


def build(case, dtype, variant=None):
    """Build the torch data-parallel port of ``case`` (DDP workers), or its single-device reference."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} of the torch distributed port; expected one of {VARIANTS[1:]}")
    if variant == "single":
        return SinglePort(case, dtype)
    return DistributedPort(case, dtype, variant)
