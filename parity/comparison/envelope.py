"""The measured float32 envelope: how far two float32 runs may differ when both also ran in float64.

Every case runs in float64 too, and :func:`parity.run.runner.run_case` runs both dtypes of each
port in lockstep. :class:`Drift` measures each port's own float32 drift per tensor,
``drift = max|x32 - x64|`` over the tensor's running scale, maximised over the steps so far.
A float32 difference between the reference ``a`` and a port ``b`` is then rounding when it is
within ``max(model bound, envelope)``, with (:func:`envelope`)::

    envelope = ENVELOPE_FACTOR * (drift_a + min(drift_b, cap))
    cap      = max(PORT_CAP * max(model bound, drift_a), COND_CAP * cond)

* Elementwise, ``|a32 - b32| <= |a32 - a64| + |a64 - b64| + |b64 - b32|``; in a faithful pair
  ``a64 = b64`` to ~1e-15 (the float64 verdict judges that), so the two ports' own drifts
  explain their float32 difference. The factor covers the scales (each drift is relative to
  its own port's running scale, the difference to the pair's).
* The reference's own rounding is acceptable by definition: its drift counts whole.
* The port's drift counts only up to a cap: rounding beyond it, in the port only, is what a
  float32-only fault looks like (TF32 on a GPU, a float16 cast), and the port's own float64
  run cannot excuse it. The cap is the largest of three measures of how much float32 rounding
  the tensor can take:

  - the written model's bound (``PORT_CAP`` x it);
  - the reference's own drift (``PORT_CAP`` x it): a tensor the reference itself cannot compute
    in float32 within the model (a structural zero, BatchNorm's beta gradient before a
    normalisation, is rounding noise in every port);
  - ``cond``, the conditioning run (``COND_CAP`` x it): the reference run once more in float64,
    its initial weights and every batch's floats multiplied by ``1 + 2^-24 U(-1, 1)``
    (:func:`parity.cases.params.perturbed`), and ``cond`` how far (relative, as the drift) each tensor
    moved. That is what one float32 rounding of the operands does to the tensor: large where a
    result cancels (a bias gradient summing to 1e-8 of terms ~1e-4), small where it does not.
    A faithful float32 port rounds each operation by one unit roundoff, a few with its own
    approximations (TF's float32 sigmoid); TF32 rounds every matmul operand to 2^-11, 2^13
    unit roundoffs: its drift is thousands of times ``cond``.

**float64.** A float64 difference is rounding within ``max(1e-10, envelope x 2^-29)``
(``FLOAT64_PER_FLOAT32``): the same envelope, of the same float32 drifts, at float64's unit
roundoff. An algorithm that cancels (a saturated softmax's ``p - 1``, p within 8e-7 of 1)
loses as many digits in float64 as in float32, 2^29 times smaller: the written 1e-10 cannot
know it, the float32 drift measures it. A float64-only run measures the reference's drift with
a float32 shadow run (:func:`parity.run.live.open_shadow`). A drift is at most ~1, so the float64
limit stays below ~1e-8: a semantic difference hides only in a tensor float32 cannot compute.

The figures behind the constants are in their comments and in docs/tolerance.md.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from parity.comparison.batched import measures
from parity.comparison.records import QUIET, _relative, diff_summaries

__all__ = ["COND_CAP", "ConditioningNeeded", "Drift", "ENVELOPE_FACTOR", "FLOAT64_PER_FLOAT32", "LATER", "NOT_YET", "PORT_CAP",
           "envelope", "float64_envelope", "needs_conditioning"]

#: How far a float32 port may differ from the float32 reference, in units of the two ports'
#: own measured float32-vs-float64 drifts (added). 1 is the elementwise triangle inequality;
#: 2 covers the scale mismatch (each drift is relative to its own port's running scale) and
#: the worst elements of the two drifts being elsewhere than the worst difference's.
#: Measured (this machine) over 952,776 float32 tensor-steps of faithful pairs (61 parity-tier
#: cases, seed001_convnet_seed_size, examples/resnet): err32 / (drift_a + drift_b) has median
#: 0.11 and is never above 1.0 (the inequality holds: the float64 runs agree).
ENVELOPE_FACTOR = 2.0

#: The port's drift counts up to PORT_CAP x the written model bound, no further: rounding
#: beyond it, in the port only, is what a float32-only fault looks like. TF32 drifts far beyond:
#: the tf32-emulated wrong port ~85x its model bound; on a real H200, TF32 was 18x (convnet),
#: 25x (BN convnet), 296x (MLP) the bound (issue 10). Faithful ports' own drift beyond the
#: model, measured: 3.4x (TF1 and TF2 against the numpy oracle, a tiny-init sigmoid layer's bias
#: gradient that cancels to 1e-6: found by the thorough property profile, 1.38e-5 vs a 4.1e-6
#: bound), up to 4.07x (TF1's cancelling BatchNorm beta gradients in examples/resnet, varying
#: run to run), 2.0x (seed003_fit_vs_step_seed_size), 1.23x (seed001_convnet_seed_size's tf2).
#: With a cap of 3 and ENVELOPE_FACTOR 2, a port's own drift up to ~6x the bound is accepted
#: (the difference is at most drift_a + drift_b) and TF32 at 18x stays ~3x over its limit.
#: Where the reference itself drifts beyond the model, the cap is PORT_CAP x its drift: the
#: thorough profile found a tiny-init (7e-4) sigmoid layer whose bias gradient cancels to 5e-8:
#: numpy's float32 drifts 6.1e-5 there (13x the 4.8e-6 bound), TF1's 3.4e-4 (72x; TF32-sized
#: by magnitude alone). A faithful port's rounding differs from the reference's by summation
#: order, a small factor; TF32's is 2^13 times float32's unit roundoff, whatever the reference's.
PORT_CAP = 3.0


#: The port's drift counts up to COND_CAP x how far the conditioning run moved the tensor
#: (``cond``: float32's unit roundoff applied to the reference's weights and data, in float64).
#: Measured (this machine): the thorough property profile's cancelling bias gradient (widths
#: 1-1-2, init 7e-4, sigmoid, seed 409): TF1 drifts 2.56e-4 = 54x its model bound but 7.6x cond
#: (numpy's own drift: 0.4x cond); TF32 (pitfall_tf32_emulated_wrong, 12 tensors over the model)
#: drifts 5000-9700x cond, as its 10-bit mantissa predicts (2^13 = 8192 unit roundoffs). Over
#: `parity run --all` (161,120 float32 tensor-steps), no faithful port's drift exceeded the other
#: two caps, so cond widened nothing there; the faithful drifts the other caps accept reach 330x
#: cond where the tensor cancels structurally (BatchNorm beta: a perturbation cannot move a
#: structural zero, rounding can) -- the reference's drift covers those. With COND_CAP 32 a
#: port may round like 32 unit roundoffs of its operands and TF32 stays >75x over that.
COND_CAP = 32.0

#: float64's unit roundoff over float32's (2^-53 / 2^-24): the float64 verdict's envelope is the
#: float32 envelope of the same tensor scaled so. Measured: the thorough profile's saturated
#: softmax (3-3-3-2 linear net, init 1.0, batch 1, seed 3): numpy and the frameworks differ by
#: 7.6e-10 relative in float64 (7.6x the written 1e-10) where numpy's float32 drifts 0.59 and
#: TF1's 0.19; scaled, the envelope is 2.9e-9 (0.26 of it). Over `parity run --all` (161,120
#: float64 tensor-steps) the scaled envelope never exceeded 1e-10, and every wrong port's
#: float64 difference stayed >800x over it.
FLOAT64_PER_FLOAT32 = 2.0**-29


def envelope(model: float, drift_a: float | None, drift_b: float | None, cond: float | None = None) -> float | None:
    """Return the measured envelope of one float32 tensor (None without a float64 run).

    Args:
        model: the written model's bound for the tensor (:func:`parity.comparison.tolerance.bound`).
        drift_a: the reference's own float32 drift (relative), or None when not measured.
        drift_b: the port's, counted up to the cap (the module's docstring).
        cond: how far the conditioning run moved the tensor (relative), or None without one; :data:`LATER`
            (:data:`NOT_YET`'s): none yet, :class:`ConditioningNeeded` raised where it could change the envelope.
    """
    if drift_a is None and drift_b is None:
        return None
    if cond is LATER:  # (the run has no conditioning run yet: NOT_YET's)
        if needs_conditioning(model, drift_a, drift_b):
            raise ConditioningNeeded("a float32 tensor's envelope can depend on the conditioning run")
        cond = None
    cap = max(PORT_CAP * max(model, drift_a or 0.0), COND_CAP * (cond or 0.0))
    return ENVELOPE_FACTOR * ((drift_a or 0.0) + min(drift_b or 0.0, cap))


def needs_conditioning(model: float, drift_a: float | None, drift_b: float | None) -> bool:
    """Whether the conditioning run's ``cond`` can change :func:`envelope` of this tensor at all.

    ``cond`` only raises the port's cap; the port's drift counts ``min(drift_b, cap)``, so where ``drift_b`` is
    within the cap without ``cond`` (``PORT_CAP x max(model, drift_a)``) the envelope is the same number whatever
    ``cond`` is (NaN and infinities included: tests/test_lazy_conditioning.py). Over `parity run --all` no
    tensor-step needed it (docs/tolerance.md): a run compares without the conditioning run until one does
    (:data:`NOT_YET`), and is then run again with it (:func:`parity.run.runner.run_case`).
    """
    return (drift_b or 0.0) > PORT_CAP * max(model, drift_a or 0.0)


class _Later:
    """A tensor's ``cond`` before the conditioning run ran (:data:`LATER`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "LATER"


#: what :data:`NOT_YET` gives for every tensor: :func:`envelope` computes without it, or raises where it could not
LATER = _Later()


class _NotYet(dict):
    """The ``cond`` of a comparison whose conditioning run has not run: :data:`LATER` for every tensor."""

    def get(self, key, default=None):
        return LATER

    def __setitem__(self, key, value):
        raise TypeError("NOT_YET is read-only")


#: ``cond`` for :meth:`parity.comparison.comparator.Comparator.add` where the conditioning run is run only if a
#: tensor needs it (:func:`needs_conditioning`): such a tensor raises :class:`ConditioningNeeded`.
NOT_YET = _NotYet()


class ConditioningNeeded(Exception):
    """A float32 tensor's envelope may depend on the conditioning run, which has not run (:data:`NOT_YET`): the run
    is done again with it. Never reaches a user (:func:`parity.run.runner.run_case` catches it)."""


def float64_envelope(m32: float, key, drift: Mapping | None, drift_b: Mapping | None) -> float:
    """The float32 envelope of the ports' float32 drifts (``m32``: the float32 model bound), at float64's unit
    roundoff (x 2^-29). One side's drift alone (a float64-only run measures the reference's, with its float32
    shadow): the other side counts as drifting as far as the float32 envelope's cap lets it."""
    da = (drift if drift is not None else drift_b).get(key, 0.0)
    db = drift_b.get(key, 0.0) if drift is not None and drift_b is not None else math.inf
    return envelope(m32, da, db) * FLOAT64_PER_FLOAT32


class Drift:
    """The measured float32 drift of one port: per tensor, max|x32 - x64| over its running scale.

    Fed the port's float64 and float32 steps side by side; :meth:`add` returns, per
    (stage, name), the largest relative drift so far (the running maximum over steps).
    """

    def __init__(self):
        self._scale: dict[tuple[str, str], float] = {}
        self._drift: dict[tuple[str, str], float] = {}

    def add(self, s64: Mapping, s32: Mapping) -> dict[tuple[str, str], float]:
        with np.errstate(**QUIET):  # once per step (diff_arrays' own state)
            self._add(s64, s32)
        return self._drift

    def _add(self, s64: Mapping, s32: Mapping) -> None:
        pending = []
        for stage, t32 in s32.items():
            if stage == "inputs":
                continue
            t64 = s64.get(stage, {})
            for name, x32 in t32.items():
                x64 = t64.get(name)
                if x64 is None or np.shape(x64) != np.shape(x32):
                    continue
                pending.append((stage, name, x64, x32))
        # the step's small tensors measured together (parity.comparison.batched: the same numbers as one by one)
        for (stage, name, x64, x32), m in zip(pending, measures([(x64, x32) for _, _, x64, x32 in pending])):
            max_abs, _, _, _, _, scale = diff_summaries(x64, x32) if m is None else m[0]
            key = (stage, name)
            scale = self._scale[key] = max(scale, self._scale.get(key, 0.0))
            rel = _relative(max_abs, scale)
            self._drift[key] = max(rel, self._drift.get(key, 0.0))
