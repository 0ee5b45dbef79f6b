"""Signatures of the layer and layout pitfalls: kernel layouts, flatten order, SAME padding, pooling,
GELU, dropout's argument (``parity/cases/catalog/pitfalls_layers.py``).

Most share one shape: recompute the layer in numpy from tensors both ports agree on (the
inputs, a matching earlier output, the loaded parameters), once the reference's way and once
the mistaken way, and ask whether A is the first and B the second (:func:`.base.side_of`).
"""

from __future__ import annotations

import numpy as np

from parity.pitfalls.base import Context, close, constant_ratio, pitfall, predicts_through, side_of
from parity.pitfalls.reference import conv2d, gelu_exact, gelu_tanh, pool2d, same_pads
from parity.pitfalls.requires import DROPOUT, IMAGES

__all__ = ["PITFALLS", "sources4"]


def _check_transposed_forward(c: Context):
    """A square kernel loaded as it is, reported back transposed: the layer computes x @ K.T."""
    params = c.params_before(c.a)
    inputs = {n: np.asarray(v, float) for n, v in c.at(c.a, "inputs").items() if np.ndim(v) == 2}
    inputs.update({n: v for n, v in c.matching("forward").items() if v.ndim == 2})
    for n, ya, yb in c.diverging("forward", ndim=2):
        for xn, x in inputs.items():
            for pn, k in params.items():
                k = np.asarray(k, float)
                if k.ndim == 2 and k.shape[0] == k.shape[1] == x.shape[1] == ya.shape[1] and k.shape[0] > 1:
                    if predicts_through(ya, yb, x @ k.T - x @ k, c.tol):
                        return 0.9, (f"{n} differs exactly as {xn} @ {pn}.T instead of {xn} @ {pn} predicts (square {k.shape[0]}x{k.shape[1]}: "
                                     "shape-silent): a Dense kernel [in, out] used as a Linear weight [out, in] without the transpose")
    return None


def _check_transposed_import(c: Context, ndim: int):
    if ndim == 2:
        hit = _check_transposed_load(c, ndim)
        return hit or _check_transposed_forward(c)
    return _check_transposed_load(c, ndim)


def _check_transposed_load(c: Context, ndim: int):
    for n, va in c.a.initial.items():
        vb = c.b.initial.get(n)
        if vb is None or np.ndim(va) != ndim or np.shape(va) != np.shape(vb) or close(va, vb, c.tol):
            continue
        if ndim == 2 and close(vb, np.asarray(va).T, c.tol):
            return 0.95, f"{n} after load() is A's {n} transposed (square {va.shape[0]}x{va.shape[1]}: shape-silent); a Dense kernel [in, out] becomes a Linear weight [out, in] = K.T"
        if ndim == 4 and close(vb, np.transpose(va, (1, 0, 2, 3)), c.tol):
            return 0.95, f"{n} after load() is A's {n} with kernel height and width swapped ({va.shape[0]}x{va.shape[1]}: shape-silent); HWIO -> OIHW is permute(3, 2, 0, 1)"
    return None


def _orders(f):
    """The two flattenings of a 4-D map [N, h, w, c]: (h, w, c) as NHWC gives, (c, h, w) as NCHW gives."""
    n = f.shape[0]
    return f.reshape(n, -1), np.transpose(f, (0, 3, 1, 2)).reshape(n, -1)


def _reorder(x, shape, to_chw: bool):
    """A flat [N, h*w*c] tensor read in one order, rewritten in the other ((h, w) and c from ``shape``)."""
    h, w, ch = shape
    n = x.shape[0]
    if to_chw:
        return np.transpose(x.reshape(n, h, w, ch), (0, 3, 1, 2)).reshape(n, -1)
    return np.transpose(x.reshape(n, ch, h, w), (0, 2, 3, 1)).reshape(n, -1)


def elementwise_of(x, flat, tol: float) -> str | None:
    """How ``x`` derives from ``flat`` element by element: "" (the same), "ReLU", "dropout", "ReLU + dropout"; None if not.

    Only the elementwise layers whose evidence is in the numbers: a ReLU (x = max(flat, 0)), a dropout (some entries
    zeroed, the rest scaled by one factor >= 1: parity feeds both ports the same mask, so the recorded output matches).
    """
    x, flat = np.asarray(x, float), np.asarray(flat, float)
    if x.shape != flat.shape:
        return None
    relu = np.maximum(flat, 0)
    if close(x, flat, tol):
        return ""
    if close(x, relu, tol):
        return "ReLU"
    # a ReLU first where every entry the ReLU clips is 0 in x too (else x kept a negative entry: no ReLU)
    for act, label in ((relu, "ReLU + dropout"), (flat, "dropout")):
        live = np.abs(act) > tol * max(np.abs(act).max(), 1e-300)
        zero = np.abs(x) <= tol * max(np.abs(x).max(), 1e-300)  # zero at the run's tolerance
        kept = live & ~zero
        if kept.sum() < 2 or not (live & zero).any() or not zero[~live].all():
            continue
        r = constant_ratio(x[kept], act[kept], tol)
        if r is not None and r >= 1 - tol:
            return label
    return None


def _dense_inputs(c: Context):
    """(label, x, shape, recorded order is (c, h, w)) for every flat tensor both ports agree on that feeds a Dense layer
    after a 4-D map: the flattened map itself (and its ReLU), or a recorded 2-D tensor derived from a flattening of the
    map by elementwise layers (ReLU, dropout)."""
    feats = {n: v for n, v in c.matching("forward").items() if v.ndim == 4 and v.shape[3] > 1 and v.shape[1] * v.shape[2] > 1}
    flats = {n: v for n, v in c.matching("forward").items() if v.ndim == 2}
    for fn, f in feats.items():
        hwc, chw = _orders(f)
        yield fn, hwc, f.shape[1:], False
        yield f"ReLU({fn})", np.maximum(hwc, 0), f.shape[1:], False
        for xn, x in flats.items():
            if x.shape != hwc.shape:
                continue
            for flat, is_chw, order in ((hwc, False, "(h, w, c)"), (chw, True, "(c, h, w)")):
                how = elementwise_of(x, flat, c.tol)
                if how is not None:
                    yield f"{xn} (= {how + ' of ' if how else ''}{fn} flattened {order})", x, f.shape[1:], is_chw
                    break


def _check_flatten(c: Context):
    params = c.params_before(c.a)
    for n, da, db in c.diverging("forward", ndim=2):
        for label, x, shape, is_chw in _dense_inputs(c):
            other = _reorder(x, shape, to_chw=not is_chw)
            for pn, k in params.items():
                k = np.asarray(k, float)
                if k.ndim != 2 or k.shape != (x.shape[1], da.shape[1]):
                    continue
                pred = (other - x) @ k
                for who, sign in (("B", 1.0), ("A", -1.0)):
                    if predicts_through(da, db, sign * pred, c.tol):
                        mine, theirs = ("(h, w, c)", "(c, h, w)") if is_chw else ("(c, h, w)", "(h, w, c)")
                        return 0.95, (f"{label} matches but {n} differs exactly as if {who} flattened it in {mine} order against "
                                      f"{pn}'s {theirs} rows: an NCHW flatten before a Dense layer ported from NHWC (or the "
                                      "kernel's rows not permuted)")
    return None


def sources4(c: Context) -> dict:
    """Image tensors both ports agree on: 4-D inputs, flat square single-channel inputs, matching 4-D outputs."""
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
    for n, ya, yb in c.diverging("forward", ndim=4):
        for xn, x in sources4(c).items():
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
    for n, ya, yb in c.diverging("forward", ndim=4):
        for xn, x in sources4(c).items():
            if x.shape[3] != ya.shape[3] or x.shape[0] != ya.shape[0]:
                continue
            for k in (2, 3):
                for s in (1, 2):
                    tf_p = same_pads(x.shape[1], k, s) + same_pads(x.shape[2], k, s)
                    ref = pool2d(x, k, s, tf_p, kinds[0])
                    if ref.shape != ya.shape:
                        continue
                    alt = pool2d(x, k, s, (k // 2,) * 4 if kinds[1] == "max" else tf_p, kinds[1])
                    if alt.shape == yb.shape and side_of(ya, yb, ref, alt, c.tol):
                        d = np.abs(yb - ya).max(-1).max(0)
                        border = np.ones_like(d, bool)
                        border[1:-1, 1:-1] = False
                        where = "on border pixels only" if np.all(d[~border] <= c.tol * np.abs(ya).max()) else "near the borders"
                        return 0.9, f"{n} ({k}x{k}, stride {s} pooling of {xn}) differs {where}: {label}"
    return None


def _check_gelu(c: Context):
    for n, ya, yb in c.diverging("forward"):
        for zn, z in c.matching("forward").items():
            if z.shape != ya.shape:
                continue
            ex, th = gelu_exact(z), gelu_tanh(z)
            for (ra, rb, la, lb) in ((ex, th, "exact", "tanh"), (th, ex, "tanh", "exact")):
                if side_of(ya, yb, ra, rb, c.tol):
                    return 0.95, f"{n} = GELU({zn}): A uses the {la} form, B the {lb} form (max diff {np.abs(ya - yb).max():.3g}, largest near |x| ~ 2)"
    return None


def _check_leaky_slope(c: Context):
    """Where the (matching) pre-activation is negative, y / z is one slope per side, and the slopes differ."""
    for n, ya, yb in c.diverging("forward"):
        for zn, z in c.matching("forward").items():
            if z.shape != ya.shape:
                continue
            neg, pos = z < 0, z > 0
            if neg.sum() < 2 or not pos.any():
                continue
            if not (close(ya[pos], z[pos], c.tol) and close(yb[pos], z[pos], c.tol)):
                continue  # the positive side must be the identity in both
            sa, sb = constant_ratio(ya[neg], z[neg], c.tol), constant_ratio(yb[neg], z[neg], c.tol)
            if sa is None or sb is None or not (0 < sa < 1 and 0 < sb < 1) or abs(sa - sb) <= 10 * c.tol:
                continue
            ka, kb = c.settings(c.a).get("leaky_relu_slope"), c.settings(c.b).get("leaky_relu_slope")
            said = f" (settings: {ka:g} vs {kb:g})" if isinstance(ka, float) and isinstance(kb, float) else ""
            return 0.95, (f"{n} = leaky_relu({zn}): identical for positive inputs, negative slope {sa:.4g} in A and {sb:.4g} in B{said}: "
                          "the default slopes differ (tf.nn.leaky_relu 0.2, Keras LeakyReLU 0.3, torch 0.01)")
    return None


def _keep(settings: dict):
    d = settings.get("dropout")
    if isinstance(d, dict) and {"argument", "value"} <= set(d):
        return float(d["value"]) if d["argument"] == "keep_prob" else 1.0 - float(d["value"])
    return None


def _check_dropout(c: Context):
    for n, ya, yb in c.diverging("forward"):
        za, zb = np.abs(ya) <= 0, np.abs(yb) <= 0
        both = ~za & ~zb
        if za.mean() == zb.mean() or both.sum() < 2:
            continue
        r = constant_ratio(yb[both], ya[both], c.tol)
        if r is None or r <= 0 or abs(r - 1) <= 10 * c.tol:
            continue  # kept values scaled x1 (within the run's tolerance): one keep probability, other masks
        # both sides drop out: a side equal to the layer's input is dropout-eval-mode's signature
        inputs = [x for x in c.matching("forward").values() if x.shape == ya.shape]
        if any(close(y, x, c.tol) for y in (ya, yb) for x in inputs):
            continue
        ka, kb = _keep(c.settings(c.a)), _keep(c.settings(c.b))
        said = ""
        if ka is not None and kb is not None:
            if abs(ka - kb) <= 10 * c.tol * max(ka, kb) or abs(r - ka / kb) > 10 * c.tol * max(r, 1):
                continue  # kept values scale as keep_A / keep_B; this is another difference
            said = f" = keep {ka:g} / {kb:g} from the ports' settings"
        return 0.9, (
            f"{n}: zeros {za.mean():.0%} in A vs {zb.mean():.0%} in B, kept values scaled x{r:.4g} (B/A){said}: the dropout "
            f"argument's meaning differs (TF1 keep_prob, TF2 rate, torch p = 1 - keep_prob)"
        )
    return None


PITFALLS = [
    pitfall("dropout-keep-prob", "Dropout keep_prob vs rate vs p", "layers", "P06", ["forward"],
            "both dropout outputs have zeros, in different fractions, and kept values scaled by a constant other than 1 (keep_A / keep_B where the ports report it)",
            _check_dropout, requires=[DROPOUT],
            explanation="TF1 nn.dropout takes keep_prob, TF2 and Keras take rate, torch takes p (drop probability). Passing keep_prob as p keeps the wrong fraction and scales by 1/(1 - keep_prob).",
            tf="TF1: y = x / keep_prob * floor(keep_prob + U);  TF2: rate = 1 - keep_prob", torch="y = x * Bernoulli(1 - p) / (1 - p)",
            fix="p = 1 - keep_prob (= rate)."),
    pitfall("dense-transpose", "Dense kernel [in, out] copied into Linear [out, in] without transposing", "layout", "P21", ["forward"],
            "the loaded weight is the reference's transposed (square: shape-silent)",
            lambda c: _check_transposed_import(c, 2),
            explanation="A square Dense kernel fits Linear.weight either way; untransposed it computes x @ K.T.",
            tf="y = x @ K + b,  K [in, out]", torch="y = x @ W.T + b,  W [out, in]", fix="W = K.T."),
    pitfall("conv-layout", "Conv kernel HWIO -> OIHW with height and width swapped", "layout", "P22", ["forward"],
            "the loaded kernel is the reference's with kh/kw swapped (square kernels: shape-silent)",
            lambda c: _check_transposed_import(c, 4),
            explanation="HWIO -> OIHW is permute(3, 2, 0, 1); permute(3, 2, 1, 0) also gives OIHW's shape for a square kernel but transposes every filter.",
            tf="tf.nn.conv2d: kernel [kh, kw, in, out], data NHWC", torch="F.conv2d: weight [out, in, kh, kw], data NCHW",
            fix="W = K.permute(3, 2, 0, 1); x_nchw = x.permute(0, 3, 1, 2)."),
    pitfall("flatten-order", "Flatten order (h, w, c) vs (c, h, w) before a Dense layer", "layout", "P23", ["forward"],
            "the conv output (and any ReLU / dropout output after it) matches but the dense layer after the flatten does not, "
            "exactly as the other flatten order ((c, h, w) vs (h, w, c)) predicts, in either port",
            _check_flatten, requires=[IMAGES],
            explanation="An NHWC map flattens in (h, w, c) order, an NCHW one in (c, h, w): the Dense kernel's rows no longer line up, silently.",
            tf="flat = reshape(x_nhwc, [N, -1])", torch="torch.flatten(x_nchw, 1)",
            fix="Flatten x.permute(0, 2, 3, 1) or permute the kernel rows (parity.portkit.layout.flatten_rows_to_torch)."),
    pitfall("same-padding-conv", "SAME padding with stride 2 on an even size (conv)", "padding", "P24", ["forward"],
            "the strided conv output differs exactly as symmetric padding predicts",
            _check_same_conv, requires=[IMAGES],
            explanation="TF SAME pads (total // 2, total - total // 2): the extra row/column goes at the bottom/right. torch padding=k//2 is symmetric; for stride 2 and even sizes the windows shift by one pixel. Odd sizes hide it.",
            tf="out = ceil(in / s); pad_total = max((out - 1) s + k - in, 0); before = total // 2", torch="Conv2d(padding=k // 2): (k // 2, k // 2)",
            fix="F.pad(x, (left, right, top, bottom)) with TF's numbers (parity.portkit.layout.same_padding), then padding=0."),
    pitfall("same-padding-pool", "SAME padding in max pooling", "padding", "P25", ["forward"],
            "the pool output differs exactly as symmetric -inf padding predicts",
            lambda c: _check_pool(c, ("max", "max"), "symmetric padding=k//2 instead of TF SAME's asymmetric padding (pad -inf at bottom/right with F.pad)"),
            requires=[IMAGES],
            explanation="As for convolutions, TF's SAME max pool pads asymmetrically (padded cells ignored); MaxPool2d(padding=1) pads symmetrically.",
            tf="max_pool2d(x, k, s, 'SAME')", torch="MaxPool2d(k, s, padding=k // 2)",
            fix="F.pad(x, TF's pads, value=-inf), then max_pool2d(x, k, s)."),
    pitfall("avgpool-count-pad", "Average pooling SAME: padding counted (count_include_pad)", "padding", "P26", ["forward"],
            "the pool output differs on border pixels only",
            lambda c: _check_pool(c, ("avg", "avg_incl"), "padded zeros counted in the average (torch count_include_pad=True; TF divides by the valid count)"),
            requires=[IMAGES],
            explanation="TF's SAME average pool divides by the number of valid elements; torch's AvgPool2d counts the zero padding by default.",
            tf="avg over valid cells", torch="AvgPool2d(count_include_pad=True): sum / k^2",
            fix="count_include_pad=False (and TF's asymmetric pads for stride > 1)."),
    pitfall("leaky-relu-slope", "LeakyReLU negative slope defaults (TF 0.2, Keras 0.3, torch 0.01)", "activation", "P42", ["forward"],
            "the activation of a matching pre-activation is the identity for positive inputs in both, with two different negative slopes",
            _check_leaky_slope,
            explanation="tf.nn.leaky_relu defaults to alpha=0.2, Keras LeakyReLU to 0.3 (Keras 3: negative_slope=0.3), torch nn.LeakyReLU / F.leaky_relu to 0.01: a port that keeps the default changes every negative activation. (TF takes alpha as a float32 attribute: 0.2 is 0.200000003 in a float64 graph.)",
            tf="tf.nn.leaky_relu(x, alpha=0.2) = max(x, alpha x)", torch="F.leaky_relu(x, negative_slope=0.01)",
            fix="Pass the TF slope: nn.LeakyReLU(negative_slope=alpha)."),
    pitfall("gelu-approx", "GELU exact vs tanh approximation", "activation", "P41", ["forward"],
            "the activation equals GELU of a matching pre-activation, exact on one side and tanh on the other",
            _check_gelu,
            explanation="tf.nn.gelu and keras.activations.gelu default to the exact erf form, keras.ops.gelu and BERT-era code to tanh; torch F.gelu is exact unless approximate='tanh'.",
            tf="0.5 x (1 + erf(x / sqrt 2))", torch="F.gelu(x, approximate='none' | 'tanh'): 0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))",
            fix="Use the same form on both sides."),
]
