"""The harness side of a torch data-parallel run: :class:`DistributedPort`, the port object that
lives in the harness's process, starts ``world_size`` worker processes (``torch.multiprocessing``,
spawn, the target :func:`.worker.serve`), sends each command to every worker over its pipe, waits
for their answers (``PARITY_DIST_TIMEOUT`` seconds at most) and merges the replicas' records of a
step into one (activations concatenated in replica order, the global loss and gradients first).
"""

from __future__ import annotations

import os
import socket

import numpy as np

from .. import torch as _torch
from .config import config
from .worker import serve

__all__ = ["DistributedPort", "TIMEOUT"]

#: Seconds the harness waits for a worker's answer before declaring it hung.
TIMEOUT = float(os.environ.get("PARITY_DIST_TIMEOUT", "600"))


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
        self.cfg = config(case, dtype, variant)
        world = self.cfg["world"]
        ctx = mp.get_context("spawn")
        pipes = [ctx.Pipe() for _ in range(world)]
        self.conns = [a for a, _ in pipes]
        address = f"tcp://127.0.0.1:{_free_port()}"
        self.procs = mp.spawn(serve, args=(self.cfg, [b for _, b in pipes], address), nprocs=world, join=False)
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
