"""What a torch data-parallel run is made of, as plain data both sides share: the variants and
models the port knows, the process-group backend (gloo on CPU, NCCL on CUDA), the picklable
configuration a worker builds its replica from (:func:`config`) and each replica's contiguous
shard of the global batch (:func:`shard`); the variants, each a porting mistake, are described in
the package's docstring.
"""

from __future__ import annotations

import os

__all__ = ["VARIANTS", "MODELS", "BACKEND", "MLP_LAYERS", "config", "shard"]

VARIANTS = (None, "single", "sum_allreduce", "global_batch_loss", "lr_scaled", "local_bn", "same_dropout")
MODELS = ("mlp", "bn_convnet")
#: gloo on CPU; "nccl" when the ports run on CUDA (``PARITY_TORCH_DEVICE=cuda``): rank r on
#: ``cuda:r``, one GPU per replica. ``PARITY_DIST_BACKEND`` overrides. The NCCL route is not
#: tested here (no GPU, and NCCL refuses two ranks on one GPU): docs/distributed.md.
BACKEND = os.environ.get("PARITY_DIST_BACKEND", "nccl" if os.environ.get("PARITY_TORCH_DEVICE", "cpu").startswith("cuda") else "gloo")
MLP_LAYERS = ("hidden1", "hidden2", "output")


def config(case, dtype: str, variant) -> dict:
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


def shard(n: int, world: int, rank: int) -> slice:
    """Replica ``rank``'s rows of a global batch of ``n`` (the split MirroredStrategy makes)."""
    if n % world:
        raise ValueError(f"the global batch ({n}) does not split evenly over {world} replicas")
    per = n // world
    return slice(rank * per, (rank + 1) * per)
