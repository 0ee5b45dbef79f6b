"""The worker side of a torch data-parallel run: :func:`serve`, the body of each spawned worker
process (it joins the process group, builds its :class:`~.replica.Replica` under
``DistributedDataParallel`` and answers the harness's commands on its pipe: ``load``,
``parameters``, ``step``, ``close``), one step on the worker's shard (:func:`step`) and the DDP
comm hook that records each replica's gradient as it enters the all-reduce.
"""

from __future__ import annotations

import traceback

import numpy as np

from .. import torch as _torch
from .config import shard
from .replica import Replica

__all__ = ["serve", "step", "capture_hook"]


def capture_hook(world: int, divide: bool, names: dict, store: dict):
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


def serve(rank: int, cfg: dict, conns, address: str) -> None:
    """Worker ``rank``'s life: join the group, build the DDP replica, answer commands until ``close``.

    The target ``torch.multiprocessing.spawn`` starts (pickled by its qualified name,
    ``torch_impl.distributed.worker.serve``); each answer is ``("ok", value)`` or ``("error", line)``.
    """
    conn = conns[rank]
    try:
        import torch.distributed as dist

        t = _torch()
        world = cfg["world"]
        if cfg["backend"] == "nccl":
            t.cuda.set_device(rank)
        dist.init_process_group(cfg["backend"], init_method=address, rank=rank, world_size=world)
        rep = Replica(cfg, rank)
        from torch.nn.parallel import DistributedDataParallel as DDP

        ddp = DDP(rep.model)
        captured: dict = {}
        names = {id(p): n for n, (p, _) in rep.tensors().items()}
        ddp.register_comm_hook(None, capture_hook(world, cfg["variant"] != "sum_allreduce", names, captured))
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
                conn.send(("ok", step(t, dist, rep, ddp, captured, arg, rank, world)))
            else:
                raise ValueError(f"unknown command {cmd!r}")
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc} [{traceback.format_exc().strip().splitlines()[-3]}]"))
            return


def step(t, dist, rep, ddp, captured, batch, rank, world):
    """One DDP step on this worker's shard of ``batch``: what this replica saw (rank 0: the rest too)."""
    key = "X" if rep.cfg["model"] == "mlp" else "x"
    n = batch[key].shape[0]
    rows = shard(n, world, rank)
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
