"""Data parallelism: tf.distribute.MirroredStrategy against torch DDP, and the pitfalls of going wide.

Both seed networks, trained data-parallel over ``world_size`` replicas (2 here: two
logical CPU devices for TF, two gloo processes for torch), each replica taking its
contiguous slice of the global batch. Module ``distributed``: ``tf_impl/v2/distributed.py``
and ``torch_impl/distributed/``; ``torch:single`` is the single-device run on the
global batch (the run data parallelism must reproduce), which reports each replica's
share of the gradient too. Every case is tagged ``distributed``.

Matching cases (reference ``torch:single``; pairs: TF vs torch, and each against the
single device):

* ``distributed_mlp``: seed 002's MLP on real digits, global batch 50 (25 per replica),
  softmax cross-entropy, gradient descent lr 0.01 (the seed's clip at 1.0 never bites:
  left out);
* ``distributed_bn_convnet``: seed 003's convnet, global batch 8 (4 per replica), with
  BatchNorm synchronised across replicas and the harness's dropout masks split with the
  batch, SGD momentum 0.9 Nesterov.

The float32 error model: the all-reduce adds one rounded addition per gradient element
(two replicas' shares; the division of DDP's mean by 2 is exact), and the synchronised
BatchNorm one per batch moment: one more layer of rounding (``depth + 1``) on top of the
seed's own cost.

Pitfalls (``pitfall_<name>_right`` / ``_wrong``, 3 steps, reference
``torch:single``): see :mod:`parity.pitfalls` (docs/pitfalls.md) for the formulas.
"""

from __future__ import annotations

from parity.cases.case import Case, Cost, Data, register
from parity.cases.catalog import seed002, seed003

__all__ = ["distributed_case", "WORLD", "MLP", "BN_CONVNET", "PITFALLS"]

WORLD = 2
TAGS = ("distributed",)
#: TF's ports configure two logical CPU devices before TensorFlow initialises: a process of their own.
TF_PORTS = ("tf2", "tf2:plain_mean", "tf2:local_bn")

MLP_STEPS = 20
BN_STEPS = 10
_MLP_COST = Cost(depth=seed002._COST.depth + 1, reduction=seed002._COST.reduction)
_BN_COST = Cost(depth=seed003.DEPTH + 1, reduction=seed003.REDUCTION, growth=seed003.GROWTH)


def distributed_case(name: str, title: str, model: str, ports: tuple[str, ...], **extra) -> Case:
    """Build a data-parallel case of ``model`` ("mlp" or "bn_convnet"); the tests use it for shorter runs."""
    options = {"model": model, "world_size": extra.pop("world_size", WORLD)}
    if model == "mlp":
        base = seed002.mlp_case(name, title, "clip_value")
        options.update(lr=0.01)
        steps, cost = MLP_STEPS, _MLP_COST
    elif model == "bn_convnet":
        base = seed003.convnet_bn_case(name, title, ("torch",))
        options.update({k: v for k, v in base.options.items() if k != "isolate"})
        steps, cost = BN_STEPS, _BN_COST
    else:
        raise ValueError(f"unknown model {model!r}")
    options.update(extra.pop("options", {}))
    options["isolate"] = tuple(p for p in ports if p in TF_PORTS)
    return Case(
        name=name,
        module="distributed",
        title=title,
        source=base.source,
        ports=ports,
        params=base.params,
        data=base.data,
        steps=extra.pop("steps", steps),
        options=options,
        seed=base.seed,
        cost=cost,
        tags=TAGS + tuple(extra.pop("tags", ())),
        **extra,
    )


MLP = register(distributed_case(
    "distributed_mlp",
    "seed 002 MLP data-parallel over 2 replicas: MirroredStrategy == DDP (gloo) == one device on the global batch",
    "mlp", ("torch:single", "tf2", "torch")))

BN_CONVNET = register(distributed_case(
    "distributed_bn_convnet",
    "seed 003 BN convnet over 2 replicas, synchronised BatchNorm: MirroredStrategy == DDP == one device",
    "bn_convnet", ("torch:single", "tf2", "torch")))


def _pair(pitfall: str, title: str, model: str, right: str, wrong: str, steps: int = 3) -> tuple[Case, Case]:
    slug = pitfall.replace("-", "_")
    common = dict(steps=steps)
    right_case = register(distributed_case(
        f"pitfall_{slug}_right", f"{title}: right port", model, ("torch:single", right),
        expect="match", tags=("pitfall", "pitfall-right"), options={"scenario": pitfall}, **common))
    wrong_case = register(distributed_case(
        f"pitfall_{slug}_wrong", f"{title}: wrong port", model, ("torch:single", wrong),
        expect="diverge", tags=("pitfall", "pitfall-wrong"), options={"scenario": pitfall, "pitfall": pitfall},
        **common))
    return right_case, wrong_case


#: pitfall name -> (right case, wrong case)
PITFALLS = {
    "replica-loss-average": _pair(
        "replica-loss-average", "MirroredStrategy loss: tf.nn.compute_average_loss, not a per-replica mean",
        "mlp", "tf2", "tf2:plain_mean"),
    "allreduce-sum": _pair(
        "allreduce-sum", "DDP comm hook: all-reduce the mean (g / world_size summed), not the sum",
        "mlp", "torch", "torch:sum_allreduce"),
    "lr-world-size": _pair(
        "lr-world-size", "learning rate unchanged when the global batch is split over replicas",
        "mlp", "torch", "torch:lr_scaled"),
    "replica-batchnorm": _pair(
        "replica-batchnorm", "BatchNorm moments of the global batch (synchronised), not each replica's shard",
        "bn_convnet", "torch", "torch:local_bn"),
    "replica-dropout-masks": _pair(
        "replica-dropout-masks", "each replica its own dropout mask, not replica 0's on every replica",
        "bn_convnet", "torch", "torch:same_dropout"),
}

# The TF forms of two of them, run as plain cases: the torch DDP ports above carry the
# registry's right/wrong pairs; these show the same signature from MirroredStrategy.
TF_LOCAL_BN = register(distributed_case(
    "distributed_tf_local_bn", "Keras BatchNormalization() under MirroredStrategy (synchronized=False): per-replica moments",
    "bn_convnet", ("torch:single", "tf2:local_bn"), steps=3, expect="diverge",
    tags=("pitfall",)))
TORCH_GLOBAL_BATCH_LOSS = register(distributed_case(
    "distributed_torch_global_batch_loss",
    "TF's compute_average_loss ported literally under DDP (sum / global batch, then DDP averages)",
    "mlp", ("torch:single", "torch:global_batch_loss"), steps=3, expect="diverge",
    tags=("pitfall",)))
