"""The gradients' accepted rounding carried through the update rule into the parameters (numpy only).

A gradient that is zero in exact arithmetic (a bias right before BatchNorm) is computed as rounding noise,
and the comparison accepts it against its layer's operand scale (docs/tolerance.md, "Values that are zero
or cancel"). The update rule then amplifies the noise: Adam's step of a gradient far below ``eps`` is
``~ lr g / eps`` (a gain of 632 for TF1's Adam(2e-4, beta1 0.5) at step 1), so the two runs' parameters
differ by more than the parameters' own bound although each update consumed a gradient the comparison
accepted. :class:`Propagation` carries that difference on, element by element:

    carried(t) = carried(t-1) + |s_a(t) - s_b(t)| x max(|dp_a(t)| / |s_a(t)|, |dp_b(t)| / |s_b(t)|)

``s`` is what the update is linear in: its first-moment slot (Adam's ``m``, a momentum buffer: they hold
the past gradients' differences too), else the gradient it consumed (the effective gradient where
recorded, else the raw one); only when the comparison accepted this step's gradient as rounding. ``dp``
is the parameter's move in that update; the ratio is the update's gain, measured on each run (0 where
``s`` is exactly 0). First-order error propagation: an update linear in ``s`` (SGD: ``lr g``; momentum:
``lr buf``; Adam: ``lr_t m / (sqrt(v) + eps)``, the change of ``v`` second order while ``sqrt(v) << eps``)
moves by ``|dp| / |s|`` per unit of ``s``; the steps' differences accumulate in ``carried``. Where a
gradient is real (``|s| >> |s_a - s_b|``) the allowance is ``|dp|`` times its relative difference (~1e-15 in
float64): an epsilon, a learning rate or an update rule that differs still shows in full. A parameter is then measured by the part of its
difference beyond ``carried``; a layer's output at the next step by the part beyond its biases' carried
error (a bias adds to the output as it is; a kernel's carried error, times the input, is not added).
"""

from __future__ import annotations

import math
import re
import weakref
from functools import lru_cache
from typing import Mapping

import numpy as np

__all__ = ["Propagation", "owner_of", "variable_of", "GRADIENT_STAGES", "EXCESS_STAGES"]

#: the stages that hold the gradient an update consumed, preferred first
GRADIENT_STAGES = ("processed_gradients", "gradients")
#: the slots an update is linear in (canonical names: torch's exp_avg, momentum_buffer; TF's m, momentum)
FIRST_MOMENT = ("m", "momentum")
#: the stages whose differences are measured beyond a carried error (:meth:`Propagation.excess`)
EXCESS_STAGES = ("parameters", "forward")
_PHASE = re.compile(r"^phase\d+/")
_CALL = re.compile(r"#\d+$")  # torch: the k-th call of a module (``D.main.0.conv#2``)
_UNIQUE = re.compile(r"_\d+(?=/)")  # TF: a name scope entered again (``discriminator_1/`` for ``discriminator/``)


@lru_cache(maxsize=1 << 14)  # (asked for every parameter of every step and pair)
def variable_of(name: str) -> str:
    """A parameter's variable: its name without the phase (``phase3/generator/g_h1/w`` -> ``generator/g_h1/w``)."""
    return _PHASE.sub("", name)


@lru_cache(maxsize=1 << 14)
def _sources(name: str) -> tuple:
    """Where parameter ``name``'s update may be read, preferred first: its first-moment slots, its gradients."""
    return tuple([("slots", f"{name}/{slot}") for slot in FIRST_MOMENT] + [(stage, name) for stage in GRADIENT_STAGES])


def owner_of(name: str, layers) -> str | None:
    """The layer an output belongs to: the longest of ``layers`` that is the output's name or a scope of it
    (``generator/g_h1`` for ``generator/g_h1/conv2d_transpose``, ``G.main.0.deconv`` for its 2nd call
    ``G.main.0.deconv#2``); a TF name scope entered again (``discriminator_1/d_h0_conv/BiasAdd``: the
    variables of ``discriminator/d_h0_conv`` reused) is read as its first entry when nothing else fits."""
    name = _CALL.sub("", name)
    for cand in (name, _UNIQUE.sub("", name)):
        cuts = [k for k, ch in enumerate(cand) if ch in "/."] + [len(cand)]
        hits = [cand[:k] for k in cuts if cand[:k] in layers]
        if hits:
            return max(hits, key=len)
    return None


def _layer(var: str) -> str:
    cut = max(var.rfind("/"), var.rfind("."))
    return var[:cut] if cut > 0 else ""


class Propagation:
    """Per variable, the accepted error its updates carried so far (see the module docstring). It holds one
    step's parameters of both runs and a float32 allowance per parameter element (measured: peak RSS +140 MB
    for one 4M-element float64 parameter, 32 MB per run).

    ``initial``: both runs' parameters before the first step (``({name: array}, {name: array})``); without
    them the first update's move is unknown and nothing is carried before the second."""

    def __init__(self, initial: tuple[Mapping, Mapping] | None = None):
        self.prev: dict[str, tuple] = {}
        if initial is not None and initial[0] and initial[1]:
            for k in set(initial[0]) & set(initial[1]):
                self.prev[k] = (initial[0][k], initial[1][k])
        self.carried: dict[str, np.ndarray] = {}
        self.accepted: dict[tuple[str, str], bool] = {}  # (stage, name) -> its difference was rounding this step
        # (:meth:`output`) per layer its biases' carried error, until the carried errors change; the layers; an
        # output's layer among them
        self._bias: dict[str, float] | None = None
        self._layers: frozenset = frozenset()
        self._owners: dict[str, str | None] = {}
        #: called ``(stage, name, a, b, |a - b|)`` with the float64 difference of two float64 arrays an update
        #: carried error on (the comparator measures that pair from it: :func:`.pairdiff.measure_from`)
        self.source_diff = None

    def accept(self, stage: str, name: str, verdict: str) -> None:
        """A gradient of this step whose difference the comparison accepted as rounding (or exact)."""
        if stage in GRADIENT_STAGES:
            self.accepted[(stage, name)] = verdict in ("rounding", "exact")

    def parameter(self, name: str, xa, xb, sa: Mapping, sb: Mapping) -> np.ndarray | None:
        """The carried error of parameter ``name`` after this step's update (per element), or None."""
        var, source = self._source(name, xa, xb, sa, sb)
        return self.carried.get(var) if source is None else self._update(var, xa, xb, *source)

    def _source(self, name: str, xa, xb, sa: Mapping, sb: Mapping):
        """``(variable, (previous values, slot or gradient a, b))`` where this step's update carries error on (else
        ``(variable, None)``); the parameters are kept as the next step's previous values either way."""
        var = variable_of(name)
        prev = self.prev.get(var)
        arrays = isinstance(xa, np.ndarray) and isinstance(xb, np.ndarray) and xa.shape == xb.shape
        self.prev[var] = (xa, xb) if arrays else None
        if not arrays or prev is None or prev[0] is None or np.shape(prev[0]) != xa.shape or np.shape(prev[1]) != xa.shape:
            return var, None
        if not any(self.accepted.get((stage, name)) for stage in GRADIENT_STAGES):
            return var, None  # (no gradient, or one that differs: that is the divergence)
        # what the update is linear in: the first-moment slot (Adam's m, a momentum buffer: the history's
        # differences are in it), else the gradient it consumed
        for stage, key in _sources(name):
            ga, gb = sa.get(stage, {}).get(key), sb.get(stage, {}).get(key)
            if isinstance(ga, np.ndarray) and isinstance(gb, np.ndarray) and ga.shape == gb.shape == xa.shape:
                return var, (prev, ga, gb, stage, key)
        return var, None

    def _update(self, var: str, xa, xb, prev, ga, gb, stage=None, key=None) -> np.ndarray:
        self._bias = None
        with np.errstate(all="ignore"):
            # the update's gain |dp| / |g|, the larger of the two runs (0 where g is 0); each run's own gain is
            # the same in every pair it is in: taken once per step (:func:`_gain`)
            step = np.maximum(_gain(xa, prev[0], ga), _gain(xb, prev[1], gb), out=np.empty(xa.shape))
            diff = _absdiff(ga, gb)
            if self.source_diff is not None and ga.dtype == gb.dtype == np.float64 and ga.ndim:
                self.source_diff(stage, key, ga, gb, diff)  # (before diff is overwritten)
            np.multiply(step, diff, out=step)
            del diff
            if step.size and not np.isfinite(step.max()):  # (the largest is finite only when every element is)
                step[~np.isfinite(step)] = 0.0
            old = self.carried.get(var)
            if old is not None and old.shape == step.shape and old.dtype == np.float32:
                # kept in float32 (an allowance, not a value: 1e-7 relative is plenty): memory is the parameters'
                # size. The sum in float64, rounded once to float32, written over the old allowance (nobody
                # else holds it): the numbers of (step + old).astype(float32)
                return np.add(step, old, out=old, casting="unsafe")
            if old is not None:
                step = old + step
        carried = self.carried[var] = step.astype(np.float32)
        return carried

    def output(self, name: str) -> float:
        """The carried error a layer output inherits: the largest carried error of its layer's biases (1-D)."""
        if self._bias is None:  # (once after the carried errors changed: every layer's, in the carried order)
            maxima: dict[str, list] = {}
            for v, c in self.carried.items():
                got = maxima.setdefault(_layer(v), [])
                if np.ndim(c) == 1 and np.size(c):
                    got.append(np.max(c))
            layers = frozenset(maxima) - {""}
            if layers != self._layers:
                self._layers, self._owners = layers, {}
            self._bias = {layer: float(sum(m)) for layer, m in maxima.items()}
        mine = self._owners.get(name, "")
        if mine == "":
            mine = self._owners[name] = owner_of(name, self._layers)
        return 0.0 if mine is None else self._bias[mine]

    def excess(self, stage: str, name: str, raw, xa, xb, sa: Mapping, sb: Mapping, kept=None):
        """``(abs difference, index, a, b, beyond)`` at the element whose difference most exceeds the error
        carried into it (a parameter: per element; a layer output: its biases'), or None where none is carried
        (``raw`` as the comparator measured it: :func:`parity.comparison.records._diff_arrays`; ``kept``: the
        pair's float64 ``|a - b|`` and its first maximum's flat index, where the measure took it:
        :func:`.pairdiff.measure_keeping`)."""
        if stage == "parameters":
            carried = self.parameter(name, xa, xb, sa, sb)
        elif stage == "forward" and self.carried:
            carried = self.output(name) or None
        else:
            return None
        return _beyond(raw, carried, xa, xb, kept)


def _beyond(raw, carried, xa, xb, kept=None):
    """:meth:`Propagation.excess` of one tensor, its carried error known (``kept``: its ``(|a - b|, argmax)``)."""
    (max_abs, _, idx, va, vb, _), summary, _, nonfinite = raw
    if carried is None or summary or nonfinite or not math.isfinite(max_abs) or max_abs == 0.0:
        return None
    a, b = np.asarray(xa), np.asarray(xb)
    with np.errstate(all="ignore"):
        diff, first = kept if kept is not None else (_absdiff(a, b), None)  # |a - b|, and its excess over the carried error
        over = np.subtract(diff, carried)
    # the element most beyond the carried error (the first where several are); where nothing is beyond it,
    # the largest difference (``diff``, kept: not taken again). The difference at one element is the same
    # float64 subtraction as the array's.
    k = int(np.argmax(over))
    if not over.flat[k] > 0:
        k = int(np.argmax(diff)) if first is None else first
    del diff
    beyond = float(np.maximum(over.flat[k], 0.0))
    va, vb = float(a.flat[k]), float(b.flat[k])
    where = np.unravel_index(k, a.shape) if a.ndim else ()
    return abs(va - vb), tuple(int(x) for x in where), va, vb, beyond


def _absdiff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``|a - b|`` in float64, a new array (the same numbers as ``np.abs(np.asarray(a, np.float64) - np.asarray(b,
    np.float64))``, without the casts' copies)."""
    if a.dtype == np.float64 and b.dtype == np.float64 and a.ndim:  # (a 0-d difference would be a scalar)
        out = np.subtract(a, b)
    else:
        out = a.astype(np.float64)
        np.subtract(out, b, out=out)
    return np.abs(out, out=out)


#: Each run's update gain, per (parameter, its previous value, the slot or gradient), while all three live
#: (:func:`_gain`), the oldest forgotten beyond :data:`GAIN_MEMO_BYTES`.
_GAINS: dict = {}
_GAIN_BYTES = [0]
GAIN_MEMO_BYTES = 64 << 20
GAIN_MEMO_MIN = 1024  # elements: a smaller parameter's gain is remembered with its arrays held (:data:`SMALL_GAINS`)
#: the small gains remembered, the oldest forgotten first: a run's gains of one step (held: a held array's id is
#: never another's), at most SMALL_GAINS x 4 x 8 KB
SMALL_GAINS = 512
_SMALL: dict = {}


def _gain(x, p, g) -> np.ndarray:
    """``|x - p| / |g|`` in float64, 0 where ``g`` is 0: one run's update gain (read-only: it is shared).

    A run's parameter is in every pair the run is in (a case of four ports: three pairs per dtype), so its gain
    is remembered while ``x``, ``p`` and ``g`` live, :data:`GAIN_MEMO_BYTES` at most: a step's arrays are never
    written to (the boundary copied them), and the same three objects give the same gain. A small parameter's
    (under :data:`GAIN_MEMO_MIN` elements) is remembered with its three arrays held, the last
    :data:`SMALL_GAINS` only (a weak reference costs more than its gain)."""
    if np.size(x) < GAIN_MEMO_MIN:  # (held, not weakly referenced: cheaper; the last SMALL_GAINS only)
        key = (id(x), id(p), id(g))
        hit = _SMALL.get(key)
        if hit is not None and hit[0] is x and hit[1] is p and hit[2] is g:
            return hit[3]
        gain = _take_gain(x, p, g)
        _SMALL[key] = (x, p, g, gain)
        if len(_SMALL) > SMALL_GAINS:
            _SMALL.pop(next(iter(_SMALL)), None)
        return gain
    key = (id(x), id(p), id(g))
    hit = _GAINS.get(key)
    if hit is not None and hit[0]() is x and hit[1]() is p and hit[2]() is g:
        _GAINS[key] = _GAINS.pop(key)  # (the most recently used last: the oldest is forgotten first)
        return hit[3]
    gain = _take_gain(x, p, g)
    try:
        refs = tuple(weakref.ref(v, lambda _, key=key: _forget(key)) for v in (x, p, g))
    except TypeError:  # (not an ndarray: nothing to remember it by)
        return gain
    _forget(key)
    for old in [k for k in list(_GAINS) if k[0] == key[1]]:  # the previous update's gains (p was its x): not asked again
        _forget(old)
    _GAINS[key] = (*refs, gain)
    _GAIN_BYTES[0] += gain.nbytes
    while _GAIN_BYTES[0] > GAIN_MEMO_BYTES and len(_GAINS) > 1:
        _forget(next(iter(_GAINS)))
    return gain


def _take_gain(x, p, g) -> np.ndarray:
    with np.errstate(all="ignore"):
        x, p = np.asarray(x), np.asarray(p)
        if x.dtype == np.float64 and p.dtype == np.float64 and x.ndim:  # (a 0-d difference would be a scalar)
            gain = np.subtract(x, p)
        else:
            gain = x.astype(np.float64)
            np.subtract(gain, p, out=gain)
        # |dx| / |g| as |dx / g|: division rounds the same whatever the signs, so the same numbers (a NaN's sign
        # aside: a NaN gain is dropped), without |dx|'s pass nor |g|'s float64 copies (g as float64 is exact:
        # numpy casts it inside the division)
        np.divide(gain, g, out=gain)
        np.abs(gain, out=gain)
        gain[g == 0] = 0.0
    gain.flags.writeable = False
    return gain


def _forget(key) -> None:
    hit = _GAINS.pop(key, None)
    if hit is not None:
        _GAIN_BYTES[0] -= hit[3].nbytes
