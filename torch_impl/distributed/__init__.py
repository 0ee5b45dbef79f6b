"""Data-parallel seeds in PyTorch: DistributedDataParallel over gloo, one process per replica.

This package is the port module ``distributed`` of the torch framework: :func:`build` and
:func:`framework_info` here, and re-exports; the parts, read bottom-up: :mod:`.config` (variants,
models, backend, a worker's configuration, the shards), :mod:`.replica` (the networks, one
replica's model and conversions), :mod:`.worker` (a spawned worker process), :mod:`.port` (the
harness-side handle of the workers) and :mod:`.single` (the single-device reference).

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

from .. import framework_info as _framework_info
from .config import BACKEND, MLP_LAYERS, MODELS, VARIANTS
from .port import TIMEOUT, DistributedPort
from .single import SinglePort

__all__ = ["build", "framework_info", "DistributedPort", "SinglePort", "VARIANTS", "MODELS", "BACKEND", "TIMEOUT", "MLP_LAYERS"]


def framework_info() -> dict:
    info = dict(_framework_info())
    info["device"] = f"{info['device']} (DDP, {BACKEND})"
    return info


def build(case, dtype, variant=None):
    """Build the torch data-parallel port of ``case`` (DDP workers), or its single-device reference."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} of the torch distributed port; expected one of {VARIANTS[1:]}")
    if variant == "single":
        return SinglePort(case, dtype)
    return DistributedPort(case, dtype, variant)
