"""The pitfall catalogue: every known TF <-> PyTorch porting trap, reproduced, caught and named.

One registry of :class:`Pitfall` (like the cases): a short kebab-case name, both frameworks'
formulas, the fix, and a *signature*: the stage that diverges first and a checker that
recognises the pattern from the two traces and their comparison (numpy only; it never looks
at which case is running). Each pitfall has a right and a wrong case
(``parity/catalog/pitfalls_*.py``); :func:`run_catalogue` runs them all and
:func:`render_markdown` writes ``docs/pitfalls.md``. Formulas and measured sizes:
PITFALLS.md (ids P01...).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .compare import Comparison, Divergence
from .errors import ParityError
from .trace import STAGES, Trace, stage_label

__all__ = [
    "Pitfall",
    "PitfallResult",
    "Context",
    "all_pitfalls",
    "get_pitfall",
    "explain",
    "render_markdown",
    "run_catalogue",
    "format_catalogue",
    "match_signatures",
]
@dataclass
class Context:
    """What a signature checker sees: the comparison, its first divergence and the two traces."""

    comparison: Comparison
    first: Divergence
    a: Trace
    b: Trace

    @property
    def k(self) -> int:
        return self.first.step

    def at(self, trace: Trace, stage: str, step: int | None = None) -> dict:
        step = self.k if step is None else step
        if step < 0 or step >= len(trace.steps):
            return {}
        return trace.steps[step].get(stage, {})

    def params_before(self, trace: Trace, step: int | None = None) -> dict:
        """The parameters a step started from (the loaded ones at step 0)."""
        step = self.k if step is None else step
        return dict(trace.initial) if step == 0 else dict(trace.steps[step - 1].get("parameters", {}))

    def semantic(self, stage: str, name: str | None = None, step: int | None = None) -> bool:
        step = self.k if step is None else step
        return any(
            d.step == step and d.stage == stage and (name is None or d.name == name) and d.verdict == "semantic"
            for d in self.comparison.diffs
        )

    def matching(self, stage: str, step: int | None = None) -> dict:
        """Tensors of ``stage`` that agree (within rounding) at ``step``: name -> the reference's array."""
        step = self.k if step is None else step
        ta, tb = self.at(self.a, stage, step), self.at(self.b, stage, step)
        return {n: np.asarray(v, float) for n, v in ta.items() if n in tb and np.shape(tb[n]) == np.shape(v) and not self.semantic(stage, n, step)}

    def diverging(self, stage: str, step: int | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
        step = self.k if step is None else step
        ta, tb = self.at(self.a, stage, step), self.at(self.b, stage, step)
        return [(n, np.asarray(ta[n], float), np.asarray(tb[n], float)) for n in ta
                if n in tb and np.shape(ta[n]) == np.shape(tb[n]) and self.semantic(stage, n, step)]

    @property
    def tol(self) -> float:
        """Relative tolerance of a recomputed prediction (float32 traces carry float32 rounding)."""
        return 1e-3 if self.comparison.dtype == "float32" else 1e-7


def close(x, y, tol: float) -> bool:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape:
        return False
    scale = max(np.max(np.abs(x), initial=0.0), np.max(np.abs(y), initial=0.0), 1e-300)
    return bool(np.max(np.abs(x - y), initial=0.0) <= tol * scale)


def predicts(observed_delta, predicted_delta, tol: float) -> bool:
    """Whether a predicted difference explains an observed one (relative to the observed size)."""
    o, p = np.asarray(observed_delta, float), np.asarray(predicted_delta, float)
    if o.shape != p.shape:
        return False
    size = np.max(np.abs(o), initial=0.0)
    return size > 0 and bool(np.max(np.abs(o - p)) <= max(tol, 1e-6) * 10 * size)


def predicts_through(ya, yb, predicted_delta, tol: float) -> bool:
    """Like :func:`predicts` on ``yb - ya``, looking through a ReLU after the layer.

    Ports often record a layer's output after its activation (seed 001's conv1 and fc1
    are ReLU outputs): where both outputs are positive, the ReLU is the identity in both
    and the difference is the linear one; where either is clipped to 0 it says nothing.
    """
    ya, yb = np.asarray(ya, float), np.asarray(yb, float)
    if predicts(yb - ya, predicted_delta, tol):
        return True
    if ya.shape != np.shape(predicted_delta) or ya.min(initial=0.0) < 0 or yb.min(initial=0.0) < 0:
        return False
    active = (ya > 0) & (yb > 0)
    if active.sum() < max(8, active.size // 10):
        return False
    return predicts((yb - ya)[active], np.asarray(predicted_delta, float)[active], tol)


def constant_ratio(num, den, tol: float = 1e-6):
    """Return the common value of num/den over the entries where den is not ~0, or None."""
    num, den = np.asarray(num, float).ravel(), np.asarray(den, float).ravel()
    mask = np.abs(den) > 1e-12 * max(np.max(np.abs(den), initial=0.0), 1e-300)
    if mask.sum() < 2:
        return None
    r = num[mask] / den[mask]
    med = float(np.median(r))
    if not np.isfinite(med) or med == 0:
        return None
    return med if np.max(np.abs(r - med)) <= max(tol, 1e-9) * abs(med) * 10 else None


# -- numpy reference computations ------------------------------------------------------------------
def conv2d(x, k, stride, pads):
    """NHWC x HWIO convolution with explicit (top, bottom, left, right) zero padding."""
    pt, pb, pl, pr = pads
    x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    kh, kw = k.shape[:2]
    ho, wo = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], ho, wo, k.shape[3]))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride, :]
            out += patch @ k[i, j]
    return out


def pool2d(x, k, stride, pads, kind):
    """NHWC pooling; ``max`` pads with -inf, ``avg`` divides by the valid count, ``avg_incl`` by k*k."""
    pt, pb, pl, pr = pads
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    ones = np.pad(np.ones_like(x), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    ho, wo = (xp.shape[1] - k) // stride + 1, (xp.shape[2] - k) // stride + 1
    out = np.full((x.shape[0], ho, wo, x.shape[3]), -np.inf if kind == "max" else 0.0)
    count = np.zeros_like(out)
    for i in range(k):
        for j in range(k):
            sl = (slice(None), slice(i, i + stride * (ho - 1) + 1, stride), slice(j, j + stride * (wo - 1) + 1, stride))
            if kind == "max":
                out = np.maximum(out, xp[sl])
            else:
                out += xp[sl]
                count += ones[sl]
    if kind == "avg":
        out /= count
    elif kind == "avg_incl":
        out /= k * k
    return out


def same_pads(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def gelu_exact(z):
    return 0.5 * z * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))


def gelu_tanh(z):
    return 0.5 * z * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z**3)))


def round_tf32(x):
    m, e = np.frexp(np.asarray(x, float))
    return np.ldexp(np.round(m * 2048.0) / 2048.0, e)


def lstm_tf1(x, kernel, bias, forget_bias, perm=(0, 1, 2, 3)):
    """Run a TF1 LSTMCell (gates i, j, f, o) whose gate blocks were read in order ``perm``."""
    units = kernel.shape[1] // 4
    blocks = np.split(kernel, 4, axis=1)
    kernel = np.concatenate([blocks[p] for p in perm], axis=1)
    bias = np.concatenate([np.split(bias, 4)[p] for p in perm])
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    h = np.zeros((x.shape[0], units))
    c = np.zeros_like(h)
    outs = []
    for t in range(x.shape[1]):
        g = np.concatenate([x[:, t], h], axis=1) @ kernel + bias
        i, j, f, o = np.split(g, 4, axis=1)
        c = c * sig(f + forget_bias) + sig(i) * np.tanh(j)
        h = sig(o) * np.tanh(c)
        outs.append(h)
    return np.stack(outs, axis=1)


# -- signature checkers (one per pitfall or per family of pitfalls) ------------------------------------
def _slot_groups(slots: dict) -> dict:
    groups: dict = {}
    for n in slots:
        kind, _, tensor = n.partition("/")
        groups.setdefault(kind, []).append(n)
    return groups


def _check_bn_momentum(c: Context):
    for n, sa, sb in c.diverging("state"):
        pa, pb = c.params_before(c.a).get(n), c.params_before(c.b).get(n)
        if c.k > 0:
            pa, pb = c.at(c.a, "state", c.k - 1).get(n), c.at(c.b, "state", c.k - 1).get(n)
        if pa is None or pb is None or not close(pa, pb, c.tol):
            continue
        r = constant_ratio(sb - pb, sa - pa, c.tol)
        if r is not None and r > 0 and abs(r - 1) > 1e-3:
            return 0.95, (
                f"{n} increment ratio {r:.4g} (B/A), the same for every channel, while the forward pass, loss and "
                f"gradients match: the moving-average weight of the new batch differs (TF momentum 0.99 = torch momentum "
                f"0.01: 0.99/0.01 = 99, 0.1/0.01 = 10); torch momentum = 1 - TF momentum"
            )
    return None


def _check_bn_update_ops(c: Context):
    for n, sa, sb in c.diverging("state"):
        prev_a = c.at(c.a, "state", c.k - 1).get(n) if c.k else c.a.initial.get(n)
        prev_b = c.at(c.b, "state", c.k - 1).get(n) if c.k else c.b.initial.get(n)
        if prev_a is None or prev_b is None:
            continue
        frozen_b = np.array_equal(sb, prev_b) and not np.array_equal(sa, prev_a)
        frozen_a = np.array_equal(sa, prev_a) and not np.array_equal(sb, prev_b)
        if frozen_a or frozen_b:
            who, other = ("B", "A") if frozen_b else ("A", "B")
            return 0.95, (
                f"{who}'s {n} never changes (still {np.ravel(sb if frozen_b else sa)[:3]} after step {c.k}) while {other}'s "
                f"moves by up to {np.max(np.abs((sa - prev_a) if frozen_b else (sb - prev_b))):.3g}: the moving-statistics "
                f"update ops are not run (TF1 UPDATE_OPS without control_dependencies)"
            )
    return None


def _check_bn_running_var(c: Context):
    matching = [n for n in c.at(c.a, "state") if n in c.matching("state")]
    div = c.diverging("state")
    if not matching or not div:
        return None
    for n, sa, sb in div:
        d = sb - sa
        if np.all(d > 0) or np.all(d < 0):
            side = "B" if np.all(d > 0) else "A"
            return 0.85, (
                f"{', '.join(matching)} match while {n} differs by {np.max(np.abs(d)):.3g}, {side} larger in every channel: "
                f"{side} stores the unbiased batch variance n/(n-1)*var in its moving average (torch, TF fused BN), the "
                f"other the biased one (Keras 3, non-fused TF BN)"
            )
    return None


def _normalised_columns(y) -> bool:
    y = np.asarray(y, float).reshape(-1, np.shape(y)[-1])
    if y.shape[0] < 3:
        return False
    # Batch mode centres every channel exactly (mean = beta = 0 at the usual init); inference
    # mode with moving statistics does not. The variance is left out: an epsilon changes it.
    return bool(np.all(np.abs(y.mean(0)) <= 1e-4 * max(np.abs(y).max(), 1e-12)))


def _check_training_mode(c: Context, framework_prefix: str, name: str):
    for n, ya, yb in c.diverging("forward"):
        if ya.ndim < 2 or ya.shape[-1] < 2:
            continue
        na, nb = _normalised_columns(ya), _normalised_columns(yb)
        if na == nb:
            continue
        infer = c.b if na else c.a
        fw = infer.manifest.get("framework", "?")
        score = 0.9 if fw.startswith(framework_prefix) else 0.4
        return score, (
            f"{n}: {'A' if na else 'B'}'s output is batch-normalised (per-channel mean 0, variance 1) while "
            f"{infer.port}'s is not: {infer.port} ({fw}) runs BatchNorm in inference mode; "
            + ("feed the learning phase / pass training=True" if name == "learning-phase" else "call model.train() before training steps")
        )
    return None


def _affine_slopes(ya, yb, axis: int, tol: float):
    """Per-slice (axis 0: per column; 1: per row) slope of y_b against y_a, if exactly affine."""
    ya2, yb2 = np.asarray(ya, float).reshape(-1, ya.shape[-1]), np.asarray(yb, float).reshape(-1, yb.shape[-1])
    if axis == 1:
        ya2, yb2 = ya2.T, yb2.T
    if ya2.shape[0] < 3 or ya2.shape[1] < 2:
        return None
    slopes = []
    for j in range(ya2.shape[1]):
        xa, xb = ya2[:, j], yb2[:, j]
        A = np.stack([xa, np.ones_like(xa)], 1)
        coef, *_ = np.linalg.lstsq(A, xb, rcond=None)
        if np.max(np.abs(A @ coef - xb)) > tol * 10 * max(np.abs(xb).max(), 1e-12):
            return None
        if abs(xa.mean() - xb.mean()) > tol * 10 * max(np.abs(xb).max(), 1e-12):
            return None  # both centred the same way: only the scale differs
        slopes.append(coef[0])
    slopes = np.array(slopes)
    return slopes if np.max(np.abs(slopes - 1)) > 1e-6 else None


def _check_norm_epsilon(c: Context, axis: int, what: str):
    for n, ya, yb in c.diverging("forward"):
        if ya.ndim != 2:
            continue
        s = _affine_slopes(ya, yb, axis, c.tol)
        if s is not None:
            return 0.85, (
                f"{n}: B = s*A per {'channel' if axis == 0 else 'row'} with the same centre, slopes {s.min():.4g}..{s.max():.4g} "
                f"= sqrt((var + eps_A)/(var + eps_B)): the {what} epsilon differs (TF/Keras 1e-3 vs torch 1e-5)"
            )
    return None


def _check_dropout(c: Context):
    for n, ya, yb in c.diverging("forward"):
        za, zb = ya == 0, yb == 0
        if za.mean() == zb.mean():
            continue
        both = ~za & ~zb
        r = constant_ratio(yb[both], ya[both], c.tol)
        if r is not None:
            return 0.9, (
                f"{n}: zeros {za.mean():.0%} in A vs {zb.mean():.0%} in B, kept values scaled x{r:.4g} (B/A): the dropout "
                f"argument's meaning differs (TF1 keep_prob, TF2 rate, torch p = 1 - keep_prob)"
            )
    return None


def _check_transposed_import(c: Context, ndim: int):
    for n, va in c.a.initial.items():
        vb = c.b.initial.get(n)
        if vb is None or np.ndim(va) != ndim or np.shape(va) != np.shape(vb) or close(va, vb, c.tol):
            continue
        if ndim == 2 and close(vb, np.asarray(va).T, c.tol):
            return 0.95, f"{n} after load() is A's {n} transposed (square {va.shape[0]}x{va.shape[1]}: shape-silent); a Dense kernel [in, out] becomes a Linear weight [out, in] = K.T"
        if ndim == 4 and close(vb, np.transpose(va, (1, 0, 2, 3)), c.tol):
            return 0.95, f"{n} after load() is A's {n} with kernel height and width swapped ({va.shape[0]}x{va.shape[1]}: shape-silent); HWIO -> OIHW is permute(3, 2, 0, 1)"
    return None


def _check_flatten(c: Context):
    feats = {n: v for n, v in c.matching("forward").items() if v.ndim == 4}
    params = c.params_before(c.a)
    for n, da, db in c.diverging("forward"):
        if da.ndim != 2:
            continue
        for fn, f in feats.items():
            for pn, k in params.items():
                k = np.asarray(k, float)
                if k.ndim == 2 and k.shape[0] == np.prod(f.shape[1:]) and k.shape[1] == da.shape[1]:
                    hwc = f.reshape(f.shape[0], -1)
                    chw = np.transpose(f, (0, 3, 1, 2)).reshape(f.shape[0], -1)
                    if predicts_through(da, db, (chw - hwc) @ k, c.tol):
                        return 0.95, (f"{fn} matches but {n} differs exactly as if B flattened {fn} in (c, h, w) order against {pn}'s (h, w, c) rows: "
                                      "NCHW flatten before a Dense layer ported from NHWC")
    return None


def _sources4(c: Context):
    out = {n: np.asarray(v, float) for n, v in c.at(c.a, "inputs").items() if np.ndim(v) == 4}
    for n, v in c.at(c.a, "inputs").items():
        # flat single-channel images (seed 001 feeds MNIST as [N, 784] and reshapes to 28x28x1)
        side = int(round(np.sqrt(np.shape(v)[-1]))) if np.ndim(v) == 2 else 0
        if side > 1 and side * side == np.shape(v)[-1]:
            out[f"{n} (as {side}x{side}x1)"] = np.asarray(v, float).reshape(-1, side, side, 1)
    out.update({n: v for n, v in c.matching("forward").items() if v.ndim == 4})
    return out


def _check_same_conv(c: Context):
    params = c.params_before(c.a)
    for n, ya, yb in c.diverging("forward"):
        if ya.ndim != 4:
            continue
        for xn, x in _sources4(c).items():
            for pn, k in params.items():
                k = np.asarray(k, float)
                if k.ndim != 4 or k.shape[2] != x.shape[3] or k.shape[3] != ya.shape[3]:
                    continue
                s = max(1, int(round(x.shape[1] / ya.shape[1])))
                kh, kw = k.shape[:2]
                tf_p = same_pads(x.shape[1], kh, s) + same_pads(x.shape[2], kw, s)
                sym = (kh // 2, kh // 2, kw // 2, kw // 2)
                if tf_p == sym:
                    continue
                pred = conv2d(x, k, s, sym) - conv2d(x, k, s, tf_p)
                if pred.shape == ya.shape and predicts_through(ya, yb, pred, c.tol):
                    return 0.95, (f"{n} differs exactly as {pn} applied to {xn} ({x.shape[1]}x{x.shape[2]}, stride {s}) with symmetric padding "
                                  f"{sym[:2]} instead of TF SAME's asymmetric {tf_p[:2]} (extra row/column at the bottom/right)")
    return None


def _check_pool(c: Context, kinds: tuple[str, str], label: str):
    for n, ya, yb in c.diverging("forward"):
        if ya.ndim != 4:
            continue
        for xn, x in _sources4(c).items():
            if x.shape[3] != ya.shape[3] or x.shape[0] != ya.shape[0]:
                continue
            for k in (2, 3):
                for s in (1, 2):
                    tf_p = same_pads(x.shape[1], k, s) + same_pads(x.shape[2], k, s)
                    ref = pool2d(x, k, s, tf_p, kinds[0])
                    if ref.shape != ya.shape or not close(ref, ya, c.tol * 10):
                        continue
                    sym = (k // 2,) * 4
                    alt = pool2d(x, k, s, sym if kinds[1] == "max" else tf_p, kinds[1])
                    if alt.shape == yb.shape and close(alt, yb, c.tol * 10):
                        d = np.abs(yb - ya).max(-1).max(0)
                        border = np.ones_like(d, bool)
                        border[1:-1, 1:-1] = False
                        where = "on border pixels only" if not d[~border].any() else "near the borders"
                        return 0.9, f"{n} ({k}x{k}, stride {s} pooling of {xn}) differs {where}: {label}"
    return None


def _check_gelu(c: Context):
    for n, ya, yb in c.diverging("forward"):
        for zn, z in c.matching("forward").items():
            if z.shape != ya.shape:
                continue
            ex, th = gelu_exact(z), gelu_tanh(z)
            for (ra, rb, la, lb) in ((ex, th, "exact", "tanh"), (th, ex, "tanh", "exact")):
                if close(ra, ya, c.tol * 10) and close(rb, yb, c.tol * 10):
                    return 0.95, f"{n} = GELU({zn}): A uses the {la} form, B the {lb} form (max diff {np.abs(ya - yb).max():.3g}, largest near |x| ~ 2)"
    return None


def _check_tf32(c: Context):
    inputs = {n: np.asarray(v, float) for n, v in c.at(c.a, "inputs").items() if np.ndim(v) == 2}
    params = c.params_before(c.a)
    for n, ya, yb in c.diverging("forward"):
        if ya.ndim != 2:
            continue
        for xn, x in inputs.items():
            for pn, k in params.items():
                k = np.asarray(k, float)
                if k.ndim == 2 and k.shape[0] == x.shape[1] and k.shape[1] == ya.shape[1]:
                    pred = round_tf32(x) @ round_tf32(k) - x @ k
                    if predicts(yb - ya, pred, 1e-3):
                        rel = np.abs(yb - ya).max() / np.abs(ya).max()
                        return 0.9, (f"{n} = {xn} @ {pn} with both operands rounded to a 10-bit mantissa in B (relative {rel:.2g} ~ 2^-11): "
                                     "TF32 matmul (emulated on CPU; on Ampere+ GPUs TF enables it by default)")
    return None


def _check_lstm(c: Context, want: str):
    xs = {n: np.asarray(v, float) for n, v in c.at(c.a, "inputs").items() if np.ndim(v) == 3}
    params = c.params_before(c.a)
    for n, ha, hb in c.diverging("forward"):
        if ha.ndim != 3:
            continue
        for xn, x in xs.items():
            for kn, k in params.items():
                k = np.asarray(k, float)
                if k.ndim != 2 or k.shape[1] != 4 * ha.shape[2] or k.shape[0] != x.shape[2] + ha.shape[2]:
                    continue
                for bn, b in params.items():
                    if np.shape(b) != (k.shape[1],):
                        continue
                    for fb in (1.0, 0.0):
                        if not close(lstm_tf1(x, k, np.asarray(b, float), fb), ha, c.tol * 10):
                            continue
                        folded = np.asarray(b, float).copy()
                        folded[2 * ha.shape[2] : 3 * ha.shape[2]] += fb  # forget_bias folded into the bias before the copy
                        if want == "forget":
                            alt = 0.0 if fb else 1.0
                            if close(lstm_tf1(x, k, np.asarray(b, float), alt), hb, c.tol * 10):
                                return 0.95, f"{n}: B equals the same LSTM with forget_bias {alt:g} instead of {fb:g}: TF1 LSTMCell adds forget_bias at run time; fold it into torch's f-gate bias"
                        else:
                            for perm, label in (((0, 2, 1, 3), "j and f"), ((0, 1, 3, 2), "f and o"), ((0, 3, 2, 1), "j and o")):
                                if close(lstm_tf1(x, k, np.asarray(b, float), fb, perm), hb, c.tol * 10) or close(
                                    lstm_tf1(x, k, folded, 0.0, perm), hb, c.tol * 10
                                ):
                                    return 0.95, f"{n}: B equals the reference LSTM with gate blocks {label} swapped: TF1 LSTMCell order i, j, f, o vs torch/Keras i, f, g, o"
    return None


def _check_loss_reduction(c: Context):
    la, lb = c.at(c.a, "loss").get("loss"), c.at(c.b, "loss").get("loss")
    if la is None or lb is None or float(la) == 0:
        return None
    r = float(lb) / float(la)
    big = r if abs(r) >= 1 else 1 / r
    n = next((np.shape(v)[0] for v in c.at(c.a, "inputs").values() if np.ndim(v) >= 1), None)
    grads_a, grads_b = c.at(c.a, "gradients"), c.at(c.b, "gradients")
    gr = [constant_ratio(grads_b[g], grads_a[g], c.tol) for g in grads_a if g in grads_b]
    if abs(big - round(big)) < 1e-6 * big and round(big) >= 2 and all(x is not None and abs(x - r) < 1e-5 * abs(r) for x in gr):
        why = f" = the batch size {n}" if n == round(big) else ""
        return (0.95 if why else 0.7), (
            f"loss ratio B/A {r:.6g}{why}, and every gradient scaled by the same factor: sum vs mean reduction "
            "(with Adam the parameters barely show it: compare losses and gradients)"
        )
    return None


def _check_prob_clip(c: Context):
    onehots = [np.asarray(v, float) for v in c.at(c.a, "inputs").values() if np.ndim(v) == 2 and set(np.unique(v)) <= {0.0, 1.0}]
    for pn, p in c.matching("forward").items():
        if p.ndim != 2 or not np.allclose(p.sum(1), 1.0, atol=1e-5) or p.min() < 0:
            continue
        for y in onehots:
            if y.shape != p.shape:
                continue
            pt = (p * y).sum(1)
            if pt.min() >= 1e-7:
                continue
            clipped = float(np.mean(-np.log(np.clip(pt, 1e-7, 1 - 1e-7))))
            la, lb = float(c.at(c.a, "loss")["loss"]), float(c.at(c.b, "loss")["loss"])
            side = "A" if abs(la - clipped) <= 1e-3 * abs(clipped) else "B" if abs(lb - clipped) <= 1e-3 * abs(clipped) else None
            if side:
                return 0.95, (f"true-class probability {pt.min():.3g} < 1e-7 in {pn}; {side}'s loss {clipped:.6g} equals the mean of "
                              "-log(clip(p, 1e-7, 1-1e-7)): Keras probability crossentropy clips (max 16.12 per example)")
    return None


def _updates(c: Context, trace: Trace, name: str, step: int | None = None):
    step = c.k if step is None else step
    return np.asarray(c.at(trace, "parameters", step)[name], float) - np.asarray(c.params_before(trace, step)[name], float)


def _check_dampening(c: Context):
    if c.k < 1 or c.semantic("gradients"):
        return None
    sa, sb = c.at(c.a, "slots"), c.at(c.b, "slots")
    for n in sa:
        if n not in sb or not n.startswith("momentum/"):
            continue
        g = c.at(c.a, "gradients").get(n.split("/", 1)[1])
        if g is None or not close(c.at(c.a, "slots", c.k - 1).get(n), c.at(c.b, "slots", c.k - 1).get(n), c.tol):
            continue
        r = constant_ratio(np.asarray(sb[n]) - np.asarray(sa[n]), g, c.tol)
        if r is not None and -1 < r < 0:
            return 0.95, (f"step {c.k - 1} matches; at step {c.k} the momentum buffers differ by {r:.4g} x gradient: B damps the "
                          f"new gradient by (1 - {-r:.4g}) from step 2 on (torch SGD dampening; TF has none)")
    return None


def _check_nesterov(c: Context):
    if c.semantic("gradients") or c.semantic("slots"):
        return None
    for n, _, _ in c.diverging("parameters"):
        r = constant_ratio(_updates(c, c.b, n), _updates(c, c.a, n), c.tol)
        if r is None:
            continue
        big = r if r > 1 else 1 / r if r > 0 else 0
        if 1 < big <= 2 and c.at(c.a, "slots"):
            return 0.9, (f"{n}: gradients and momentum buffers match but the update ratio is {r:.4g} for every element "
                         f"= 1 + mu with mu = {big - 1:.4g} at step {c.k}: Nesterov in one port only")
    return None


def _check_adam_eps(c: Context):
    sa, sb = c.at(c.a, "slots"), c.at(c.b, "slots")
    if len(_slot_groups(sa)) < 2 or c.semantic("slots") or c.semantic("gradients") or c.semantic("learning_rate"):
        return None
    for n, _, _ in c.diverging("parameters"):
        ua, ub = _updates(c, c.a, n), _updates(c, c.b, n)
        if constant_ratio(ub, ua, c.tol) is not None:
            continue
        v = next((np.asarray(sa[s], float) for s in sa if s.endswith("/" + n) and s.startswith("v")), None)
        vs = f"; sqrt(v) median {np.median(np.sqrt(np.abs(v))):.3g}" if v is not None else ""
        rel = np.max(np.abs(ub - ua)) / np.max(np.abs(ua))
        return 0.9, (f"{n}: slots ({', '.join(sorted(_slot_groups(sa)))}) equal while the updates differ by up to {rel:.1%}, not by a common "
                     f"factor{vs}: Adam's epsilon is placed differently (TF epsilon-hat on sqrt(v) vs torch eps on sqrt(v_hat)): "
                     "torch eps = eps_tf / sqrt(1 - beta2^t)")
    return None


def _slot_offsets(c: Context, prefix: str):
    out = []
    for k in range(c.k, min(len(c.a.steps), len(c.b.steps))):
        sa, sb = c.at(c.a, "slots", k), c.at(c.b, "slots", k)
        names = [n for n in sa if n.startswith(prefix + "/") and n in sb]
        if not names:
            return None
        d = np.concatenate([(np.asarray(sa[n], float) - np.asarray(sb[n], float)).ravel() for n in names])
        if np.ptp(d) > 1e-6 * max(np.abs(d).max(), 1e-12) * (1e3 if c.comparison.dtype == "float32" else 1):
            # once the parameters differ the gradients do too: only the first steps are clean
            return out or None
        out.append(float(np.median(d)))
    return out or None


def _check_rmsprop_init(c: Context):
    off = _slot_offsets(c, "rms")
    if not off or abs(off[0]) < 1e-9:
        return None
    if len(off) > 1 and not (abs(off[1]) < abs(off[0]) and constant_ratio(np.array(off[1:]), np.array(off[:-1]), 1e-4) is not None):
        return None
    rho = off[1] / off[0] if len(off) > 1 else float("nan")
    return 0.9, (f"mean-square slots differ by the same offset in every element, {off[0]:.4g} then decaying x{rho:.4g} per step "
                 "(rho^t): the accumulator started at 1 in one port and 0 in the other (TF1 RMSPropOptimizer initialises it to ones)")


def _check_adagrad_init(c: Context):
    off = _slot_offsets(c, "accumulator")
    if not off or abs(off[0]) < 1e-12:
        return None
    return 0.9, (f"accumulators differ by a constant {off[0]:.4g} in every element at every step: different initial accumulator "
                 "values (TF initial_accumulator_value=0.1, torch 0)")


def _lrs(trace: Trace):
    return np.array([float(s.get("learning_rate", {}).get("lr", np.nan)) for s in trace.steps])


def _check_lr_off_by_one(c: Context):
    a, b = _lrs(c.a), _lrs(c.b)
    n = min(len(a), len(b))
    if n < 3 or np.isnan(a).any() or np.isnan(b).any():
        return None
    for x, y, who in ((a, b, "B"), (b, a, "A")):
        if np.allclose(y[: n - 1], x[1:n], rtol=1e-6, atol=0) and not np.allclose(x[:n], y[:n], rtol=1e-6):
            return 0.95, f"{who}'s learning rates {np.round(y[:n], 6).tolist()} are the other's shifted one step early: the schedule is advanced before the update (scheduler.step() before optimizer.step(), or a 1-based step)"
    return None


def _check_lr_end(c: Context):
    a, b = _lrs(c.a), _lrs(c.b)
    n = min(len(a), len(b))
    if n < 3 or a[0] != b[0] or np.isnan(a).any() or np.isnan(b).any():
        return None
    if a[n - 1] == a[n - 2] and b[n - 1] == b[n - 2] and a[n - 1] != b[n - 1] and min(a[n - 1], b[n - 1]) >= 0:
        return 0.9, f"schedules agree at step 0 and settle at different end values: A {a[n - 1]:.4g}, B {b[n - 1]:.4g}: end_learning_rate (TF polynomial_decay default 1e-4) vs torch PolynomialLR decaying to 0"
    return None


def _check_clip(c: Context):
    if c.semantic("gradients"):
        return None
    ra, rb = {}, {}
    for n, pa, pb in c.diverging("processed_gradients") + [(n, v, c.at(c.b, "processed_gradients")[n]) for n, v in c.matching("processed_gradients").items()]:
        g = c.at(c.a, "gradients").get(n)
        if g is None:
            return None
        ra[n], rb[n] = constant_ratio(pa, g, c.tol), constant_ratio(np.asarray(pb, float), g, c.tol)
    if len(ra) < 2 or None in ra.values() or None in rb.values():
        return None
    spread = lambda d: np.ptp(list(d.values())) > 1e-6  # noqa: E731
    if spread(ra) != spread(rb):
        glob, per = ("A", "B") if spread(rb) else ("B", "A")
        fa = ", ".join(f"{k} {v:.3g}" for k, v in (rb if spread(rb) else ra).items())
        return 0.95, f"clipped/raw gradient: one common factor in {glob} (global norm), per-tensor factors in {per} ({fa}): per-tensor clipping (tf.clip_by_norm, Keras clipnorm) vs clip_by_global_norm"
    return None


def _norms(w, axis):
    return np.sqrt((np.asarray(w, float) ** 2).sum(axis=axis))


def _check_max_norm(c: Context, want: str):
    ca, cb = c.at(c.a, "constrained"), c.at(c.b, "constrained")
    pb = c.at(c.b, "parameters")
    for n in ca:
        if n not in cb or np.ndim(ca[n]) != 2:
            continue
        wa, wb = np.asarray(ca[n], float), np.asarray(cb[n], float)
        for ax in (0, 1):
            na = _norms(wa, ax)
            r = na.max()
            if not np.all(na <= r) or np.sum(np.isclose(na, r, rtol=max(c.tol * 1e-3, 1e-9))) < 2:
                continue  # A is capped along ax: several norms sit exactly at the radius
            nb, nb_other = _norms(wb, ax), _norms(wb, 1 - ax)
            capped_b = np.any(np.isclose(nb, r, rtol=1e-6)) and nb.max() <= r * (1 + 1e-6)
            if capped_b:
                continue
            on_other = np.isclose(nb_other.max(), r, rtol=1e-6)
            if want == "axis" and on_other:
                return 0.95, f"{n}: A's norms over axis {ax} are capped at {r:.4g}, B's over axis {1 - ax}: the max-norm constraint is applied along the other axis (torch.renorm dim is the kept dimension; Keras MaxNorm(axis=0) on [in, out] = renorm(W, 2, 0, r) on Linear's [out, in])"
            if want == "timing" and not on_other and n in pb and close(pb[n], wb, c.tol):
                return 0.85, (f"{n}: A's norms over axis {ax} are capped at {r:.4g} after the step; B's constraint changes nothing after "
                              f"its update (norms {np.round(nb, 4).tolist()}): B applies the constraint before the update instead of after")
    return None


def _check_frozen(c: Context):
    for n, _, _ in c.diverging("parameters"):
        ua, ub = _updates(c, c.a, n), _updates(c, c.b, n)
        if (not ua.any()) != (not ub.any()):
            who = "A" if not ua.any() else "B"
            return 0.95, f"{n} is not updated in {who} (frozen: var_list / trainable=False / requires_grad=False) but moves by {max(np.abs(ua).max(), np.abs(ub).max()):.3g} in the other"
    return None


def _check_zero_grad(c: Context):
    if c.k < 1:
        return None
    ga, gb, gb_prev = c.at(c.a, "gradients"), c.at(c.b, "gradients"), c.at(c.b, "gradients", c.k - 1)
    hits = [n for n in ga if n in gb and n in gb_prev and close(np.asarray(gb[n]) - np.asarray(gb_prev[n]), ga[n], c.tol * 10)]
    if hits and len(hits) == len(ga):
        return 0.95, f"step {c.k}: B's gradients = its step-{c.k - 1} gradients + the fresh ones ({', '.join(hits)}): gradients accumulate (optimizer.zero_grad() missing)"
    return None


def _check_init(c: Context):
    for n, va in c.a.initial.items():
        vb = c.b.initial.get(n)
        if vb is None or np.shape(va) != np.shape(vb) or close(va, vb, c.tol):
            continue
        va, vb = np.asarray(va, float), np.asarray(vb, float)
        if va.ndim == 2 and close(vb, va.T, c.tol) or va.ndim == 4 and close(vb, np.transpose(va, (1, 0, 2, 3)), c.tol):
            continue
        fan_in = va.shape[0] if va.ndim == 2 else np.prod(va.shape[:-1])
        bound = 1 / math.sqrt(fan_in)
        torchlike = np.abs(vb).max() <= bound * (1 + 1e-6)
        return (0.9 if torchlike else 0.6), (
            f"{n} differs already after load(): B's values " + (f"lie within torch's default +-1/sqrt(fan_in) = {bound:.3g} (kaiming_uniform(a=sqrt(5)))" if torchlike else "are not A's")
            + ": the weights were not copied, the framework's default initializer stayed (glorot_uniform in TF vs kaiming in torch)"
        )
    return None


def _check_lr_change(c: Context):
    if c.k < 1 or c.semantic("learning_rate") or c.semantic("gradients"):
        return None
    lr = _lrs(c.a)
    if c.k >= len(lr) or lr[c.k] == lr[c.k - 1] or any(c.semantic("parameters", None, s) for s in range(c.k)):
        return None
    return 0.9, (f"parameters match up to step {c.k - 1} and diverge at step {c.k}, the first step after the learning rate changes "
                 f"({lr[c.k - 1]:.4g} -> {lr[c.k]:.4g}) with equal gradients: the momentum form differs (Keras keeps lr inside the "
                 "velocity, torch multiplies the buffer by the current lr)")


# -- the registry ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pitfall:
    """One known porting trap.

    Attributes:
        name: short kebab-case id ("bn-momentum").
        title: one line.
        family: "batchnorm", "optimizer", "schedule", "clipping", "layout", "loss", "loop", "rnn", ...
        pitfall_id: PITFALLS.md id ("P01").
        explanation: what goes wrong, in a few sentences.
        tf_formula: TensorFlow's definition.
        torch_formula: PyTorch's definition.
        fix: how to port it right.
        stages: the stage(s) that diverge first.
        pattern: the signature, in words.
        check: the signature checker ``check(ctx) -> (score, evidence) | None``.
    """

    name: str
    title: str
    family: str
    pitfall_id: str
    explanation: str
    tf_formula: str
    torch_formula: str
    fix: str
    stages: tuple[str, ...]
    pattern: str
    check: Callable[[Context], tuple[float, str] | None] = field(repr=False, compare=False)

    @property
    def wrong_case(self) -> str:
        return f"pitfall_{self.name.replace('-', '_')}_wrong"

    @property
    def right_case(self) -> str:
        return f"pitfall_{self.name.replace('-', '_')}_right"


_PITFALLS: dict[str, Pitfall] = {}


def _p(name, title, family, pid, stages, pattern, check, *, explanation, tf, torch, fix):
    _PITFALLS[name] = Pitfall(name, title, family, pid, explanation, tf, torch, fix, tuple(stages), pattern, check)


_p("bn-momentum", "BatchNorm momentum convention (0.99 vs 0.1, not 1 - m)", "batchnorm", "P01", ["state"],
   "only the moving statistics diverge, after the first training step; their increments differ by one constant ratio",
   _check_bn_momentum,
   explanation="TF's momentum weighs the old moving average, torch's the new batch. Copying 0.99 literally (or keeping torch's default 0.1) makes the running statistics move 99x (10x) faster; train-mode outputs still match, eval outputs do not.",
   tf="moving = moving * momentum + batch * (1 - momentum)   (Keras / tf.layers default momentum 0.99)",
   torch="running = (1 - momentum) * running + momentum * batch   (nn.BatchNorm default momentum 0.1)",
   fix="torch momentum = 1 - TF momentum (0.99 -> 0.01).")
_p("bn-epsilon", "BatchNorm epsilon (1e-3 vs 1e-5)", "batchnorm", "P02", ["forward"],
   "the BN output differs at step 0 by a per-channel scale with the same centre",
   lambda c: _check_norm_epsilon(c, 0, "BatchNorm"),
   explanation="Keras and TF1 BN add 1e-3 to the variance, torch 1e-5. The relative effect is about (eps_tf - eps_torch)/(2 var): invisible on unit-variance features, O(1) on low-variance ones.",
   tf="y = gamma (x - mean) / sqrt(var + 1e-3) + beta", torch="y = gamma (x - mean) / sqrt(var + 1e-5) + beta",
   fix="nn.BatchNorm*d(eps=1e-3) (the TF layer's epsilon).")
_p("bn-running-var", "Moving variance biased (Keras 3, non-fused TF) vs unbiased (torch, TF fused)", "batchnorm", "P03", ["state"],
   "moving mean matches, moving variance differs with one sign in every channel",
   _check_bn_running_var,
   explanation="Both normalise with the biased batch variance, but torch (and TF's fused kernel) store the Bessel-corrected n/(n-1) variance in the running average; Keras 3 and non-fused TF BN store the biased one. Large for small batches.",
   tf="moving_var = m * moving_var + (1 - m) * var_biased   (Keras 3; tf.layers on 2-D inputs)",
   torch="running_var = (1 - mom) * running_var + mom * var * n / (n - 1)",
   fix="Against a biased reference update the running statistics yourself (F.batch_norm without running stats, then running_var.mul_(1 - mom).add_(mom * x.var(0, unbiased=False))).")
_p("bn-update-ops", "TF1 UPDATE_OPS not run", "batchnorm", "P05", ["state"],
   "the TF moving statistics never leave their initial values (0 / 1) while the other port's move",
   _check_bn_update_ops,
   explanation="tf.compat.v1.layers.batch_normalization puts its moving-average updates in tf.GraphKeys.UPDATE_OPS; a train op built without a control dependency on them never runs them, so inference later uses mean 0 / variance 1.",
   tf="with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)): train_op = opt.minimize(loss)",
   torch="nn.BatchNorm updates its running buffers inside forward() in train() mode",
   fix="Wrap the train op in control_dependencies(UPDATE_OPS) (Keras fit() does it for you).")
_p("learning-phase", "Learning phase / training flag not set in TF (TF1 Keras, tf.layers training=, TF2 model(x))", "mode", "P04", ["forward"],
   "at step 0 the TF port's BN output is not batch-normalised (it used the moving statistics)",
   lambda c: _check_training_mode(c, "tf", "learning-phase"),
   explanation="TF1 tf.layers.batch_normalization/dropout default to training=False; Keras's learning phase is placeholder_with_default(False) in graph mode; a TF2 model(x) call is training=False unless passed training=True. The port then normalises with the moving statistics and skips dropout.",
   tf="y = (x - moving_mean) / sqrt(moving_var + eps)  when training is not fed / passed",
   torch="y = (x - batch_mean) / sqrt(batch_var + eps)  in train() mode",
   fix="Feed K.learning_phase(): True / pass training=is_training / model(x, training=True) in custom loops.")
_p("torch-eval-mode", "torch model left in eval() during training", "mode", "P04", ["forward"],
   "at step 0 the torch port's BN output is not batch-normalised (it used the running statistics)",
   lambda c: _check_training_mode(c, "torch", "torch-eval-mode"),
   explanation="torch's mode is a module flag: after model.eval() (an evaluation pass, a checkpoint test) BatchNorm uses running statistics and dropout is off until model.train(). requires_grad_(False) does not change the mode.",
   tf="training=True per call (Keras fit, tf.layers training=is_training)", torch="model.train() / model.eval() switch BN and dropout",
   fix="Call model.train() before each training phase.")
_p("dropout-keep-prob", "Dropout keep_prob vs rate vs p", "layers", "P06", ["forward"],
   "the dropout output has a different fraction of zeros and kept values scaled by a constant",
   _check_dropout,
   explanation="TF1 nn.dropout takes keep_prob, TF2 and Keras take rate, torch takes p (drop probability). Passing keep_prob as p keeps the wrong fraction and scales by 1/(1 - keep_prob).",
   tf="TF1: y = x / keep_prob * floor(keep_prob + U);  TF2: rate = 1 - keep_prob", torch="y = x * Bernoulli(1 - p) / (1 - p)",
   fix="p = 1 - keep_prob (= rate).")
_p("sgd-momentum-lr-change", "SGD momentum forms under a learning-rate change (Keras lr inside the velocity)", "optimizer", "P07", ["parameters"],
   "parameters match until the first step after the learning rate changes, then diverge with equal gradients",
   _check_lr_change,
   explanation="Keras SGD keeps lr inside the velocity, torch (and TF1 MomentumOptimizer) multiply the accumulated buffer by the current lr. Equal at constant lr; after a change torch applies the new lr to the whole history.",
   tf="Keras: m = mu m - lr g;  w += m", torch="buf = mu buf + g;  p -= lr buf",
   fix="When lr changes, rescale torch's momentum_buffer by lr_old / lr_new (or write the Keras form).")
_p("sgd-dampening", "SGD dampening", "optimizer", "P07", ["parameters"],
   "step 1 identical, divergence from step 2; the momentum buffers differ by -dampening x gradient",
   _check_dampening,
   explanation="torch SGD(dampening=d) scales each new gradient by (1 - d) in the buffer, except at the first step; TF has no dampening.",
   tf="accum = mu accum + g;  var -= lr accum", torch="buf = mu buf + (1 - dampening) g  (from step 2);  p -= lr buf",
   fix="dampening=0 (torch's default).")
_p("nesterov", "Nesterov momentum toggled", "optimizer", "P08", ["parameters"],
   "step-1 updates differ by a constant ratio 1 + mu with gradients and buffers equal",
   _check_nesterov,
   explanation="TF1 use_nesterov / Keras nesterov / torch nesterov are the same formula, but a port that drops the flag makes the first update lr g instead of lr (1 + mu) g.",
   tf="accum = mu accum + g;  var -= lr (g + mu accum)", torch="buf = mu buf + g;  p -= lr (g + mu buf)   (nesterov=True)",
   fix="SGD(momentum=mu, nesterov=True, dampening=0).")
_p("adam-epsilon", "Adam epsilon placement (epsilon-hat vs eps), in a small-gradient regime", "optimizer", "P09", ["parameters"],
   "slots m and v equal while the updates differ, not by a common factor",
   _check_adam_eps,
   explanation="TF adds epsilon to sqrt(v) before the bias correction (the paper's epsilon-hat), torch after it. Equivalent only if eps_torch = eps_tf / sqrt(1 - beta2^t), which changes every step; invisible with O(1) gradients, large when sqrt(v) ~ eps (tiny inits, scaled losses, rare embedding rows).",
   tf="lr_t = lr sqrt(1 - b2^t) / (1 - b1^t);  var -= lr_t m / (sqrt(v) + eps)",
   torch="p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)",
   fix="Set param_groups[0]['eps'] = eps_tf / sqrt(1 - beta2**t) before each step t.")
_p("rmsprop-init", "RMSprop: TF1 mean square starts at 1", "optimizer", "P11", ["parameters"],
   "mean-square slots differ by one offset in every element, decaying by rho each step",
   _check_rmsprop_init,
   explanation="TF1 RMSPropOptimizer initialises its rms slot to ones (and puts eps inside the sqrt); torch RMSprop starts square_avg at 0 (eps outside) and defaults alpha=0.99 vs TF's decay 0.9. The first ~1/(1 - rho) steps differ.",
   tf="ms = 1 initially;  ms = rho ms + (1 - rho) g^2;  var -= lr g / sqrt(ms + eps)",
   torch="square_avg = 0 initially;  square_avg = alpha sa + (1 - alpha) g^2;  p -= lr g / (sqrt(sa) + eps)",
   fix="RMSprop(alpha=decay, eps=0) with state['square_avg'] preset to ones.")
_p("adagrad-init", "Adagrad initial accumulator 0.1 vs 0", "optimizer", "P12", ["parameters"],
   "accumulators differ by the same constant in every element at every step",
   _check_adagrad_init,
   explanation="TF starts the accumulator at initial_accumulator_value=0.1, torch at 0 (with eps 1e-10 outside the sqrt): the first steps are much larger in torch.",
   tf="acc = 0.1 + sum g^2;  var -= lr g / sqrt(acc)", torch="sum = 0 + sum g^2;  p -= lr g / (sqrt(sum) + 1e-10)",
   fix="Adagrad(initial_accumulator_value=0.1, eps=0).")
_p("lr-schedule-end", "Learning-rate schedule end value (end_learning_rate vs 0)", "schedule", "P15", ["learning_rate"],
   "learning rates agree at step 0 and settle at different end values",
   _check_lr_end,
   explanation="tf.train.polynomial_decay decays to end_learning_rate (default 1e-4) and stays there; torch PolynomialLR decays to 0.",
   tf="lr(k) = (lr0 - end) (1 - min(k, K)/K)^p + end", torch="PolynomialLR: lr(k) = lr0 (1 - min(k, K)/K)^p",
   fix="LambdaLR with TF's formula, stepped after optimizer.step().")
_p("lr-off-by-one", "Learning-rate schedule off by one step", "schedule", "P15", ["learning_rate"],
   "one port's learning-rate sequence is the other's shifted by one step",
   _check_lr_off_by_one,
   explanation="TF evaluates the schedule at global_step before apply_gradients increments it (update k uses lr(k), k from 0). Calling scheduler.step() before optimizer.step() (or counting from 1) uses lr(k+1).",
   tf="update k uses lr(global_step = k), then global_step += 1", torch="optimizer.step(); scheduler.step()  (lr read from param_groups before step)",
   fix="Step the scheduler after the optimizer.")
_p("clip-per-tensor", "Per-tensor vs global-norm gradient clipping", "clipping", "P19", ["processed_gradients"],
   "clipped/raw gradient ratio is one scalar for all tensors in one port, a different scalar per tensor in the other",
   _check_clip,
   explanation="tf.clip_by_norm and Keras clipnorm clip each tensor by its own norm; tf.clip_by_global_norm and torch clip_grad_norm_ scale all tensors by one factor. (torch's clip_grad_norm_ also adds 1e-6 to the norm: 1e-7 relative, below float32 noise but visible in float64.)",
   tf="global: g * c / max(||all g||, c);  per-tensor: g * c / max(||g||, c)", torch="clip_grad_norm_(params, c): g * min(1, c / (||all g|| + 1e-6))",
   fix="Match the kind: global -> one factor from the global norm (computed exactly for float64 parity); per-tensor -> loop clip_grad_norm_([p], c).")
_p("max-norm-axis", "Max-norm constraint axis", "constraints", "P20", ["constrained"],
   "after the constraint, the reference's norms are capped along one axis and the port's along the other",
   lambda c: _check_max_norm(c, "axis"),
   explanation="Keras MaxNorm(axis=0) on a Dense kernel [in, out] caps each output unit's incoming vector; torch.renorm's dim is the kept dimension, so on Linear's [out, in] it is dim=0.",
   tf="w = w * clip(||w||_axis0, 0, r) / ||w||_axis0  (after the update)", torch="torch.renorm(W, p=2, dim=0, maxnorm=r)  on W = kernel.T",
   fix="renorm dim 0 on Linear.weight (or compute the norms over dim 1), after optimizer.step().")
_p("max-norm-timing", "Max-norm constraint applied before the update", "constraints", "P20", ["parameters", "constrained"],
   "after the step the port's norms exceed the cap by about one update",
   lambda c: _check_max_norm(c, "timing"),
   explanation="Keras and TF1 apply constraints after the gradient update; applying the renorm before optimizer.step() leaves every step's update unconstrained.",
   tf="apply_gradients, then constraint", torch="optimizer.step(); with no_grad(): renorm",
   fix="Apply the constraint after optimizer.step().")
_p("dense-transpose", "Dense kernel [in, out] copied into Linear [out, in] without transposing", "layout", "P21", ["forward"],
   "the loaded weight is the reference's transposed (square: shape-silent)",
   lambda c: _check_transposed_import(c, 2),
   explanation="A square Dense kernel fits Linear.weight either way; untransposed it computes x @ K.T.",
   tf="y = x @ K + b,  K [in, out]", torch="y = x @ W.T + b,  W [out, in]", fix="W = K.T.")
_p("conv-layout", "Conv kernel HWIO -> OIHW with height and width swapped", "layout", "P22", ["forward"],
   "the loaded kernel is the reference's with kh/kw swapped (square kernels: shape-silent)",
   lambda c: _check_transposed_import(c, 4),
   explanation="HWIO -> OIHW is permute(3, 2, 0, 1); permute(3, 2, 1, 0) also gives OIHW's shape for a square kernel but transposes every filter.",
   tf="tf.nn.conv2d: kernel [kh, kw, in, out], data NHWC", torch="F.conv2d: weight [out, in, kh, kw], data NCHW",
   fix="W = K.permute(3, 2, 0, 1); x_nchw = x.permute(0, 3, 1, 2).")
_p("flatten-order", "Flatten order (h, w, c) vs (c, h, w) before a Dense layer", "layout", "P23", ["forward"],
   "the conv output matches but the dense layer after the flatten does not, exactly as a (c, h, w) flatten predicts",
   _check_flatten,
   explanation="An NHWC map flattens in (h, w, c) order, an NCHW one in (c, h, w): the Dense kernel's rows no longer line up, silently.",
   tf="flat = reshape(x_nhwc, [N, -1])", torch="torch.flatten(x_nchw, 1)",
   fix="Flatten x.permute(0, 2, 3, 1) or permute the kernel rows (parity.layout.flatten_rows_to_torch).")
_p("same-padding-conv", "SAME padding with stride 2 on an even size (conv)", "padding", "P24", ["forward"],
   "the strided conv output differs exactly as symmetric padding predicts",
   _check_same_conv,
   explanation="TF SAME pads (total // 2, total - total // 2): the extra row/column goes at the bottom/right. torch padding=k//2 is symmetric; for stride 2 and even sizes the windows shift by one pixel. Odd sizes hide it.",
   tf="out = ceil(in / s); pad_total = max((out - 1) s + k - in, 0); before = total // 2", torch="Conv2d(padding=k // 2): (k // 2, k // 2)",
   fix="F.pad(x, (left, right, top, bottom)) with TF's numbers (parity.layout.same_padding), then padding=0.")
_p("same-padding-pool", "SAME padding in max pooling", "padding", "P25", ["forward"],
   "the pool output differs exactly as symmetric -inf padding predicts",
   lambda c: _check_pool(c, ("max", "max"), "symmetric padding=k//2 instead of TF SAME's asymmetric padding (pad -inf at bottom/right with F.pad)"),
   explanation="As for convolutions, TF's SAME max pool pads asymmetrically (padded cells ignored); MaxPool2d(padding=1) pads symmetrically.",
   tf="max_pool2d(x, k, s, 'SAME')", torch="MaxPool2d(k, s, padding=k // 2)",
   fix="F.pad(x, TF's pads, value=-inf), then max_pool2d(x, k, s).")
_p("avgpool-count-pad", "Average pooling SAME: padding counted (count_include_pad)", "padding", "P26", ["forward"],
   "the pool output differs on border pixels only",
   lambda c: _check_pool(c, ("avg", "avg_incl"), "padded zeros counted in the average (torch count_include_pad=True; TF divides by the valid count)"),
   explanation="TF's SAME average pool divides by the number of valid elements; torch's AvgPool2d counts the zero padding by default.",
   tf="avg over valid cells", torch="AvgPool2d(count_include_pad=True): sum / k^2",
   fix="count_include_pad=False (and TF's asymmetric pads for stride > 1).")
_p("loss-reduction", "Loss reduction sum vs mean", "loss", "P27", ["loss"],
   "loss and every gradient differ by the same integer factor (the batch size)",
   _check_loss_reduction,
   explanation="reduce_sum vs reduce_mean (or F.cross_entropy(reduction='sum')) multiplies loss and gradients by N: an N-times learning rate for SGD, and invisible in Adam's parameters (scale-invariant), so compare losses and gradients.",
   tf="loss = reduce_mean(softmax_cross_entropy_with_logits(labels, logits))", torch="F.cross_entropy(logits, target, reduction='mean')",
   fix="Use the same reduction (mean).")
_p("keras-prob-clipping", "Keras probability crossentropy clips at 1e-7", "loss", "P28", ["loss"],
   "some true-class probability is below 1e-7 and one loss equals the clipped formula",
   _check_prob_clip,
   explanation="Keras CategoricalCrossentropy(from_logits=False) on an eager softmax output clips p to [1e-7, 1 - 1e-7] (max 16.12 per example, zero gradient for clipped entries); torch's cross_entropy on logits is exact.",
   tf="-sum(y log(clip(p / sum p, 1e-7, 1 - 1e-7)))", torch="F.cross_entropy(logits, y) = -sum(y log_softmax(logits))",
   fix="Clamp the probabilities like Keras (or use from_logits=True on both sides).")
_p("init-defaults", "Initializer defaults (weights not copied)", "init", "P30", ["forward"],
   "parameters differ already after load(); the port's lie within torch's default init bound",
   _check_init,
   explanation="Keras/TF1 Dense defaults to glorot_uniform with zero bias, torch Linear to kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)) with a non-zero bias: a port that does not copy the weights starts elsewhere.",
   tf="glorot_uniform: U(+-sqrt(6 / (fan_in + fan_out))), bias 0", torch="U(+-1/sqrt(fan_in)) for weight and bias",
   fix="Copy every weight from the reference (or re-initialise with nn.init.xavier_uniform_ / zeros_).")
_p("trainable-var-list", "trainable=False / var_list vs requires_grad / parameter groups", "loop", "P34", ["parameters"],
   "a parameter is updated in one port and left unchanged in the other",
   _check_frozen,
   explanation="TF trains only var_list (or the TRAINABLE_VARIABLES collection); in torch every parameter given to the optimizer with requires_grad=True moves.",
   tf="opt.minimize(loss, var_list=[w2])", torch="w1.requires_grad_(False); optimizer over the trained parameters only",
   fix="requires_grad_(False) for the frozen tensors (and leave them out of the optimizer).")
_p("zero-grad", "Forgotten zero_grad: gradients accumulate", "loop", "P36", ["gradients"],
   "step 1 matches; from step 2 the port's gradients are the previous ones plus the fresh ones",
   _check_zero_grad,
   explanation="TF computes fresh gradients every step; torch adds into .grad until it is zeroed.",
   tf="grads = tape.gradient(loss, vars)  (fresh)", torch="optimizer.zero_grad(); loss.backward()",
   fix="Call optimizer.zero_grad() before each backward().")
_p("lstm-gate-order", "LSTM gate order (TF1 i, j, f, o vs torch i, f, g, o)", "rnn", "P37", ["forward"],
   "the LSTM output equals the reference LSTM with two gate blocks swapped",
   lambda c: _check_lstm(c, "order"),
   explanation="TF1 LSTMCell's kernel [in + units, 4 units] holds gates i, j(=c), f, o; torch nn.LSTM (and Keras) i, f, g, o. Copying blocks in place swaps the forget and cell gates.",
   tf="i, j, f, o = split(concat([x, h]) @ kernel + bias, 4)", torch="i, f, g, o = split(W_ih x + b_ih + W_hh h + b_hh, 4)",
   fix="W_ih = kernel[:in].T and W_hh = kernel[in:].T with blocks reordered (0, 2, 1, 3).")
_p("lstm-forget-bias", "LSTM forget_bias (TF1 adds 1.0 at run time) and biases", "rnn", "P37", ["forward"],
   "the LSTM output equals the reference LSTM with forget_bias 0",
   lambda c: _check_lstm(c, "forget"),
   explanation="TF1 LSTMCell adds forget_bias=1.0 to the f gate at run time; it is not in the bias variable. torch has two biases (b_ih, b_hh): copying the bias into both doubles it.",
   tf="c = c sigmoid(f + forget_bias) + sigmoid(i) tanh(j)", torch="c = f c + i g with f = sigmoid(W x + b_ih + U h + b_hh)",
   fix="b_ih = bias (reordered) + forget_bias on the f block; b_hh = 0 and frozen.")
_p("gelu-approx", "GELU exact vs tanh approximation", "activation", "P41", ["forward"],
   "the activation equals GELU of a matching pre-activation, exact on one side and tanh on the other",
   _check_gelu,
   explanation="tf.nn.gelu and keras.activations.gelu default to the exact erf form, keras.ops.gelu and BERT-era code to tanh; torch F.gelu is exact unless approximate='tanh'.",
   tf="0.5 x (1 + erf(x / sqrt 2))", torch="F.gelu(x, approximate='none' | 'tanh'): 0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))",
   fix="Use the same form on both sides.")
_p("layernorm-epsilon", "LayerNorm epsilon (Keras 1e-3 vs torch 1e-5)", "normalisation", "P40", ["forward"],
   "the LayerNorm output differs by a per-row scale with the same centre",
   lambda c: _check_norm_epsilon(c, 1, "LayerNorm"),
   explanation="Keras LayerNormalization uses 1e-3 (BERT's TF code 1e-12), torch nn.LayerNorm 1e-5: large for low-variance rows.",
   tf="(x - mean) / sqrt(var + 1e-3) * gamma + beta", torch="nn.LayerNorm(eps=1e-5)", fix="nn.LayerNorm(eps=<the TF epsilon>).")
_p("tf32-emulated", "TF32 matmuls (emulated on CPU)", "numerics", "P45", ["forward"],
   "a matmul output equals the product of operands rounded to a 10-bit mantissa (relative error ~1e-3)",
   _check_tf32,
   explanation="On Ampere+ GPUs TF enables TensorFloat-32 by default for float32 matmuls and convs (10-bit mantissa operands); torch keeps matmuls in IEEE float32. Here the wrong port rounds its operands on CPU (emulated); the GPU check is tests/test_pitfalls.py::test_tf32_on_gpu.",
   tf="tf.config.experimental.enable_tensor_float_32_execution(True) by default", torch="torch.backends.cuda.matmul.allow_tf32 = False by default",
   fix="Disable TF32 on both sides for parity (enable_tensor_float_32_execution(False); allow_tf32 = False).")


def all_pitfalls() -> list[Pitfall]:
    """Return every pitfall, in registry order."""
    return list(_PITFALLS.values())


def get_pitfall(name: str) -> Pitfall:
    """Return the pitfall ``name``, or raise a :class:`ParityError` listing close names."""
    try:
        return _PITFALLS[name]
    except KeyError:
        close_names = difflib.get_close_matches(name, _PITFALLS, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close_names)}?)" if close_names else f" (known: {', '.join(_PITFALLS)})"
        raise ParityError(f"unknown pitfall {name!r}{hint}") from None


def match_signatures(comparison: Comparison, a: Trace, b: Trace) -> list[tuple[Pitfall, float, str]]:
    """Return (pitfall, score, evidence) for every signature matching the first divergence, best first."""
    first = comparison.first_divergence
    if first is None or first.kind != "semantic":
        return []
    ctx = Context(comparison, first, a, b)
    found = []
    for p in _PITFALLS.values():
        if first.stage not in p.stages:
            continue
        try:
            hit = p.check(ctx)
        except (KeyError, IndexError, ValueError, TypeError, FloatingPointError):
            hit = None  # a pattern that does not apply to these tensors is no match
        if hit:
            found.append((p, hit[0], hit[1]))
    return sorted(found, key=lambda t: -t[1])


def explain(name: str) -> str:
    """Return the pitfall's explanation, both formulas, the fix and the signature as plain text."""
    p = get_pitfall(name)
    return "\n".join([
        f"{p.name} ({p.pitfall_id}, {p.family}): {p.title}",
        "",
        p.explanation,
        "",
        f"  TensorFlow: {p.tf_formula}",
        f"  PyTorch:    {p.torch_formula}",
        "",
        f"Fix: {p.fix}",
        f"Signature: first divergence in {' / '.join(stage_label(s) for s in p.stages)}; {p.pattern}.",
        f"Cases: {p.right_case} (must match), {p.wrong_case} (must diverge, named {p.name}).",
    ])


def render_markdown() -> str:
    """Return docs/pitfalls.md: the catalogue, generated from the registry."""
    out = [
        "<!-- GENERATED by parity.pitfalls.render_markdown(); do not edit by hand. -->",
        "# Pitfall catalogue",
        "",
        "Every known TF <-> PyTorch porting trap the harness reproduces, catches and names. Each has a right and a",
        "wrong case (`parity run pitfall_<name>_right` / `_wrong`); `make parity` ends with the detection table.",
        "Ids refer to the measured catalogue (PITFALLS.md).",
        "",
        "| name | id | family | first diverging stage | signature |",
        "|---|---|---|---|---|",
    ]
    for p in all_pitfalls():
        out.append(f"| [{p.name}](#{p.name}) | {p.pitfall_id} | {p.family} | {', '.join(stage_label(s) for s in p.stages)} | {p.pattern} |")
    for p in all_pitfalls():
        out += [
            "",
            f"## {p.name}",
            "",
            f"**{p.title}** ({p.pitfall_id}, {p.family})",
            "",
            p.explanation,
            "",
            f"* TensorFlow: `{p.tf_formula}`",
            f"* PyTorch: `{p.torch_formula}`",
            f"* Fix: {p.fix}",
            f"* Signature: first divergence in {', '.join(stage_label(s) for s in p.stages)}; {p.pattern}.",
            f"* Cases: `{p.right_case}`, `{p.wrong_case}`.",
        ]
    return "\n".join(out) + "\n"


# -- running the catalogue -----------------------------------------------------------------------------
@dataclass
class PitfallResult:
    """What the catalogue measured for one pitfall in one dtype."""

    pitfall: str
    caught: bool
    named_first: bool
    first_divergence: str
    magnitude: float
    right_clean: bool
    warnings: list[str] = field(default_factory=list)
    dtype: str = "float64"
    named: list[str] = field(default_factory=list)


def run_catalogue(dtypes=("float64",), names=None) -> list[PitfallResult]:
    """Run every pitfall's wrong and right cases in ``dtypes``; return what was caught and named."""
    from .cases import get_case
    from .diagnose import diagnose, settings_check
    from .runner import run_case

    results = []
    for p in all_pitfalls():
        if names and p.name not in names:
            continue
        wrong, right = get_case(p.wrong_case), get_case(p.right_case)
        rw, rr = run_case(wrong, dtypes=dtypes), run_case(right, dtypes=dtypes)
        for dtype in dtypes:
            cmp = next((c for c in rw.comparisons if c.dtype == dtype), None)
            traces_w = rw.traces.get(dtype, {})
            diags = diagnose(wrong, cmp, traces_w) if cmp is not None else []
            first = cmp.first_divergence if cmp is not None else None
            where = first.describe() if first else "-"
            mag = first.diff.max_abs if first is not None and first.diff is not None else float("nan")
            rcmp = [c for c in rr.comparisons if c.dtype == dtype]
            traces_r = rr.traces.get(dtype, {})
            clean = (not rr.errors.get(dtype)) and all(c.ok for c in rcmp) and not settings_check(right, traces_r) and not any(
                diagnose(right, c, traces_r) for c in rcmp
            )
            results.append(PitfallResult(
                pitfall=p.name,
                caught=cmp is not None and not cmp.ok,
                named_first=bool(diags) and diags[0].pitfall == p.name,
                first_divergence=where,
                magnitude=mag,
                right_clean=clean,
                warnings=settings_check(wrong, traces_w),
                dtype=dtype,
                named=[d.pitfall for d in diags],
            ))
    return results


def format_catalogue(results) -> str:
    """Format the detection table `make parity` prints: one line per pitfall and dtype."""
    rows = [("pitfall", "dtype", "first diverging", "magnitude", "named first?", "right port clean?")]
    for r in results:
        stage = r.first_divergence.split(",")[1].strip() if r.first_divergence.count(",") >= 1 else r.first_divergence
        step = r.first_divergence.split(",")[0] if r.first_divergence != "-" else ""
        named = "yes" if r.named_first else ("no: " + (r.named[0] if r.named else "unknown"))
        rows.append((r.pitfall, r.dtype, f"{stage} ({step})" if step else stage, f"{r.magnitude:.3g}", named, "yes" if r.right_clean else "NO"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["Pitfall catalogue: " + f"{sum(r.named_first for r in results)}/{len(results)} named first, "
             + f"{sum(r.right_clean for r in results)}/{len(results)} right ports clean"]
    for row in rows:
        lines.append(" | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return "\n".join(lines)
