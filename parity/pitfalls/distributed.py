"""Signatures of the data-parallel pitfalls (``parity/cases/catalog/distributed.py``): they read the
replicas' share of each stage.

A distributed trace records ``replica<r>/loss`` and
``replica<r>/<param>`` next to the global ``loss`` and the reduced gradients; the number
of replicas R is the number of ``replica<r>/loss`` entries. Each checker recognises one
mistake from the two traces alone (it never reads which case runs), numpy only.
"""

from __future__ import annotations

import re

import numpy as np

from parity.pitfalls.base import Context, Precondition, pitfall

__all__ = ["world_size", "REPLICATED", "PITFALLS"]

_REPLICA = re.compile(r"^replica(\d+)/loss$")


def world_size(trace, step: int = 0) -> int:
    """The number of replicas a trace reports (``replica<r>/loss`` entries; 0 for a single-device trace)."""
    if step >= len(trace.steps):
        return 0
    return sum(1 for n in trace.steps[step].get("loss", {}) if _REPLICA.match(n))


def _world(c: Context) -> int:
    return max(world_size(c.a, c.k), world_size(c.b, c.k))


def _factor(num, den, tol: float):
    """The factor f with num = f * den to ``tol`` of num's scale (elementwise ratios of tiny entries
    carry the rounding of their large neighbours: float32 gradients), or None."""
    num, den = np.ravel(np.asarray(num, float)), np.ravel(np.asarray(den, float))
    big = np.abs(den) >= 0.1 * np.max(np.abs(den), initial=0.0)
    if big.sum() < 1 or not np.any(den[big]):
        return None
    f = float(np.median(num[big] / den[big]))
    scale = max(np.max(np.abs(num), initial=0.0), 1e-300)
    return f if np.isfinite(f) and f != 0 and np.max(np.abs(num - f * den)) <= 10 * tol * scale else None


def _ratio(c: Context, stage: str, names=None):
    """The one factor B/A shared by every tensor of ``stage`` (or of ``names``), each to its own scale, or None."""
    ta, tb = c.at(c.a, stage), c.at(c.b, stage)
    keys = [n for n in (names or ta) if n in ta and n in tb and np.shape(ta[n]) == np.shape(tb[n])]
    factors = [_factor(tb[n], ta[n], c.tol) for n in keys]
    if not factors or any(f is None for f in factors):
        return None
    f0 = factors[0]
    return f0 if all(abs(f - f0) <= 10 * c.tol * abs(f0) for f in factors) else None


def _is_world_factor(r, world: int) -> str | None:
    """'x R' or '/ R' when ``r`` is the world size or its inverse (to float32 precision), else None."""
    if r is None or world < 2:
        return None
    if abs(r - world) <= 1e-5 * world:
        return f"x{world}"
    if abs(r * world - 1) <= 1e-5:
        return f"/{world}"
    return None


def _check_loss_average(c):
    world = _world(c)
    r = _ratio(c, "loss")
    factor = _is_world_factor(r, world)
    if factor is None or _ratio(c, "gradients") is None:
        return None
    return 0.97, (
        f"the global loss and every replica's loss differ by {factor} = the number of replicas ({world}), and every "
        f"gradient with them, from step {c.k}: one side averages each replica's loss over its local batch, the other over "
        f"the global batch (tf.nn.compute_average_loss) before the SUM all-reduce (TF) or DDP's mean"
    )


def _check_allreduce_sum(c):
    world = _world(c)
    if c.diverging("loss") or not c.matching("loss"):
        return None
    reduced = [n for n in c.at(c.a, "gradients") if not n.startswith("replica")]
    r = _ratio(c, "gradients", reduced)
    factor = _is_world_factor(r, world)
    if factor is None:
        return None
    return 0.95, (
        f"losses match, the reduced gradients differ by {factor} = the number of replicas ({world}), all tensors alike: "
        f"the gradients are all-reduced as a sum on one side and a mean on the other (a comm hook or hand-written "
        f"all_reduce without dividing by the world size)"
    )


def _check_lr_world(c):
    world = _world(c)
    if c.diverging("gradients") or c.diverging("loss"):
        return None
    la, lb = c.at(c.a, "learning_rate").get("lr"), c.at(c.b, "learning_rate").get("lr")
    if la is None or lb is None or float(la) == 0:
        return None
    factor = _is_world_factor(float(lb) / float(la), world)
    if factor is None:
        return None
    return 0.95, (
        f"gradients match; the learning rate differs by {factor} = the number of replicas ({world}) "
        f"({float(la):.4g} vs {float(lb):.4g}): the rate was scaled with the world size while the global batch stayed "
        f"the same (the linear scaling rule applies when the global batch grows)"
    )


def _shard_means(y, world: int):
    """Per-replica, per-channel means of a [N, ..., C] activation: [R, C]."""
    y = np.asarray(y, float)
    n = y.shape[0] // world
    return np.stack([y[r * n:(r + 1) * n].reshape(-1, y.shape[-1]).mean(0) for r in range(world)])


def _check_replica_bn(c):
    world = _world(c)
    if world < 2:
        return None
    for n, ya, yb in c.diverging("forward"):
        if ya.ndim < 2 or ya.shape[0] % world or ya.shape[-1] < 2:
            continue
        ma, mb = _shard_means(ya, world), _shard_means(yb, world)
        scale = max(np.abs(ya).max(), np.abs(yb).max(), 1e-300)
        # per-shard normalisation leaves every shard's channel mean at beta (rounding apart);
        # the global batch's moments leave them apart by the shards' own offsets
        spread_a, spread_b = np.max(np.abs(ma - ma[0])), np.max(np.abs(mb - mb[0]))
        if spread_b <= c.tol * scale < 2 * c.tol * scale < spread_a:
            local, spread = "B", spread_a
        elif spread_a <= c.tol * scale < 2 * c.tol * scale < spread_b:
            local, spread = "A", spread_b
        else:
            continue
        return 0.92, (
            f"{n}: {local}'s per-channel means are equal on every replica's rows (each replica's shard normalised with its "
            f"own moments) while the other's differ between shards by up to {spread:.3g} (moments of the global batch): "
            f"BatchNorm is per replica on one side, synchronised on the other"
        )
    return None


def _check_replica_dropout(c):
    world = _world(c)
    if world < 2:
        return None
    feeds = c.matching("forward")
    for n, ya, yb in c.diverging("forward"):
        if ya.ndim != 2 or ya.shape[0] % world:
            continue
        src = next((v for v in feeds.values() if np.shape(v) == ya.shape), None)
        if src is None:
            continue
        per = ya.shape[0] // world
        live = src != 0

        def same_masks(y):
            kept = y != 0
            for r in range(1, world):
                both = live[r * per:(r + 1) * per] & live[:per]
                if both.sum() < 8 or not np.array_equal(kept[r * per:(r + 1) * per][both], kept[:per][both]):
                    return False
            return True

        sa, sb = same_masks(ya), same_masks(yb)
        if sa == sb:
            continue
        who = "B" if sb else "A"
        return 0.95, (
            f"{n}: {who} drops the same units on every replica (replica r's row i has replica 0's row i's mask) while the "
            f"other's masks differ: every replica draws the same dropout mask (the same RNG seed on every rank)"
        )
    return None


#: Replica entries in the traces (``replica<r>/loss``): the signatures below read them.
REPLICATED = Precondition("per-replica entries (replica<r>/loss)", lambda c: _world(c) >= 2)


PITFALLS = [
    pitfall('replica-loss-average', 'Per-replica loss averaged over the local batch, not the global one', 'distributed', 'P47', ['loss'],
            'every loss and gradient differs by the number of replicas R (or 1/R)',
            _check_loss_average, requires=(REPLICATED,),
            explanation="Under MirroredStrategy the per-replica gradients are SUMMED: each replica's loss must be its share of the global mean, sum(per_example) / global_batch (tf.nn.compute_average_loss). A plain reduce_mean over the replica's rows makes every gradient R times too large. Porting the other way, DDP AVERAGES the replicas' gradients: the local mean is right there, and TF's sum / global_batch ported literally makes them R times too small.",
            tf='loss_r = sum_{i in shard r} l_i / B_global  (tf.nn.compute_average_loss);  g = SUM_r grad(loss_r)',
            torch='loss_r = mean_{i in shard r} l_i  (B_global / R rows);  g = (1/R) SUM_r grad(loss_r)  (DDP)',
            fix='TF: tf.nn.compute_average_loss(per_example, global_batch_size=B). torch DDP: the plain local mean.'),
    pitfall('allreduce-sum', 'Gradients all-reduced as a sum instead of a mean', 'distributed', 'P48', ['gradients'],
            'losses match; every reduced gradient differs by the number of replicas R',
            _check_allreduce_sum, requires=(REPLICATED,),
            explanation="DDP's default all-reduce divides each gradient bucket by the world size, then sums: a mean. A custom comm hook, Horovod's op=Sum or a hand-written dist.all_reduce(p.grad) sums without dividing: with a local-mean loss every step is R times too large (R times the learning rate for SGD; Adam hides it in the parameters).",
            tf='g = SUM_r grad(loss_r)  with loss_r = sum_{shard r} l_i / B_global',
            torch='g = SUM_r grad(loss_r) / R  (allreduce_hook: bucket.div_(R), then all_reduce SUM)',
            fix='Divide by the world size before or after the SUM all-reduce (or use the default hook / op=Average).'),
    pitfall('lr-world-size', 'Learning rate scaled by the number of replicas with the global batch unchanged', 'distributed', 'P49', ['learning_rate'],
            'gradients match; the learning rate differs by the number of replicas R',
            _check_lr_world, requires=(REPLICATED,),
            explanation='The linear scaling rule (lr x k for a k times larger global batch) applies when each worker keeps the per-device batch. A TF MirroredStrategy program splits its global batch over the replicas: the same global batch, the same learning rate. Multiplying by world_size in the DDP port doubles every step on 2 processes.',
            tf='B_global fixed, split B_global / R per replica;  lr unchanged',
            torch='per-process batch B_global / R;  lr unchanged  (lr x R only if the global batch becomes R x larger)',
            fix='Keep the learning rate when the global batch is unchanged; scale it with the global batch, not the world size.'),
    pitfall('replica-batchnorm', "BatchNorm moments of each replica's shard instead of the global batch", 'distributed', 'P50', ['forward'],
            "the BN output's per-channel means are equal on every replica's rows in one port only",
            _check_replica_bn, requires=(REPLICATED,),
            explanation="A single device normalises with the moments of the whole batch. Keras BatchNormalization() under MirroredStrategy (synchronized=False, the default) and nn.BatchNorm2d under DDP use each replica's shard only: different outputs, gradients and moving statistics, worse for small per-replica batches. (DDP then keeps rank 0's running statistics: it broadcasts rank 0's buffers at every forward.)",
            tf='BatchNormalization(synchronized=True): mean, var all-reduced over replicas (var = E[x^2] - E[x]^2)',
            torch='nn.SyncBatchNorm (CUDA/NCCL; on CPU all-reduce the moments with torch.distributed.nn.functional.all_reduce)',
            fix='Synchronise the batch statistics (SyncBatchNorm.convert_sync_batchnorm on GPUs; synchronized=True in Keras).'),
    pitfall('replica-dropout-masks', 'Every replica draws the same dropout mask', 'distributed', 'P51', ['forward'],
            "the dropout output drops the same units on every replica's rows in one port only",
            _check_replica_dropout, requires=(REPLICATED,),
            explanation="Seeding every rank with the same seed (torch.manual_seed(0) in each DDP process, a fixed op seed in every replica) makes replica r's i-th example use replica 0's i-th mask: the masks of a global batch are no longer independent, which changes the gradient noise. The forward pass shows it at the first dropout layer.",
            tf='each replica its own mask: mask_i ~ Bernoulli(keep) for every example i of the global batch',
            torch='torch.manual_seed(base_seed + rank) per process (or a generator per rank)',
            fix="Seed each rank differently (base seed + rank) and keep the data sampler's seed common."),
]
