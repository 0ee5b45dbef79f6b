"""Signatures of layers present in another form, or on one side only: a channel dropout ported as an element
dropout (``dropout-kind``), a dropout site the port left out (``dropout-site-missing``), a convolution whose
padding differs so that its output shape differs (``conv-padding``); cases in
``parity/cases/catalog/pitfalls_layers.py``."""

from __future__ import annotations

import numpy as np

from parity.pitfalls.base import Context, close, pitfall
from parity.pitfalls.requires import DROPOUT, is_dropout_of

__all__ = ["PITFALLS", "mask_kind", "drops_elsewhere"]


def mask_kind(x, y) -> str | None:
    """How ``y`` (``x`` dropped out, NHWC) was masked: "channel" where every (image, channel) slice is kept or
    zeroed whole (over the entries ``x`` does not already zero), "element" where some slice is mixed."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.ndim != 4:
        return None
    mixed = uniform = 0
    for n in range(x.shape[0]):
        for ch in range(x.shape[3]):
            live = x[n, :, :, ch] != 0
            kept = (y[n, :, :, ch] != 0)[live]
            if kept.size < 2:
                continue
            if kept.all() or not kept.any():
                uniform += 1
            else:
                mixed += 1
    if mixed:
        return "element"
    return "channel" if uniform >= 2 else None


def _sources(c: Context) -> dict:
    """Tensors both sides hold alike at the step: the fed inputs and the agreeing layer outputs."""
    out = {n: np.asarray(v, float) for n, v in c.at(c.a, "inputs").items() if np.ndim(v) >= 2}
    out.update(c.matching("forward"))
    return out


def _check_kind(c: Context):
    for n, ya, yb in c.diverging("forward", ndim=4):
        for xn, x in _sources(c).items():
            if x.shape != ya.shape or not (is_dropout_of(x, ya, c.tol) and is_dropout_of(x, yb, c.tol)):
                continue
            ka, kb = mask_kind(x, ya), mask_kind(x, yb)
            if {ka, kb} != {"channel", "element"}:
                continue
            return 0.95, (f"{n}: both sides drop out {xn}, the reference {ka}-wise, the port {kb}-wise (every image-channel slice "
                          f"kept or zeroed whole on one side, mixed on the other): Dropout2d / SpatialDropout2D vs Dropout")
    return None


def drops_elsewhere(c: Context, trace, but: str) -> bool:
    """Whether ``trace`` applies dropout at a site other than ``but`` at the step (an output that is another output,
    or an input, with entries zeroed and the rest scaled)."""
    fwd = {n: np.asarray(v, float) for n, v in c.at(trace, "forward").items() if np.ndim(v) >= 2}
    srcs = dict(fwd)
    srcs.update({n: np.asarray(v, float) for n, v in c.at(trace, "inputs").items() if np.ndim(v) >= 2})
    return any(yn != but and xn != yn and x.shape == y.shape and is_dropout_of(x, y, c.tol)
               for yn, y in fwd.items() for xn, x in srcs.items())


def _check_missing(c: Context):
    """At the diverging site one side passes its input through unchanged while the other drops it out, and the
    pass-through side does drop out at another site (not the whole model in inference mode)."""
    for n, ya, yb in c.diverging("forward"):
        for xn, x in _sources(c).items():
            if x.shape != ya.shape:
                continue
            for side, y_drop, y_same, trace in (("port", ya, yb, c.b), ("reference", yb, ya, c.a)):
                if is_dropout_of(x, y_drop, c.tol) and close(y_same, x, c.tol) and drops_elsewhere(c, trace, n):
                    return 0.95, (f"{n}: the {side}'s output is its input {xn} unchanged while the other's is {xn} dropped out; "
                                  f"the {side} drops out at another site in the same step: this dropout site is missing in the {side}")
    return None


def _check_conv_padding(c: Context):
    """A layer output whose spatial size differs by (kh - 1, kw - 1) of a convolution kernel of its channels, the
    larger being SAME's and the smaller VALID's: the smaller is the larger cropped by the SAME padding."""
    n = c.first.name
    ya, yb = c.at(c.a, "forward").get(n), c.at(c.b, "forward").get(n)
    if ya is None or yb is None or np.ndim(ya) != 4 or np.ndim(yb) != 4:
        return None
    ya, yb = np.asarray(ya, float), np.asarray(yb, float)
    if ya.shape[0] != yb.shape[0] or ya.shape[3] != yb.shape[3]:
        return None
    big, small, padded = (ya, yb, "the reference") if ya.shape[1] >= yb.shape[1] else (yb, ya, "the port")
    dh, dw = big.shape[1] - small.shape[1], big.shape[2] - small.shape[2]
    if dh < 0 or dw < 0 or dh + dw == 0:
        return None
    kernels = [pn for pn, k in c.params_before(c.a).items()
               if np.ndim(k) == 4 and np.shape(k)[3] == ya.shape[3] and (np.shape(k)[0] - 1, np.shape(k)[1] - 1) == (dh, dw)]
    if not kernels:
        return None
    top, left = dh // 2, dw // 2  # TF SAME at stride 1 pads floor((k - 1) / 2) before
    crop = big[:, top:top + small.shape[1], left:left + small.shape[2], :]
    if not close(crop, small, 10 * c.tol):
        return None
    return 0.95, (f"{n}: {list(ya.shape)} vs {list(yb.shape)}: {padded}'s output is {dh} x {dw} larger, the size of {kernels[0]} minus 1, "
                  f"and the other's equals it cropped by ({top}, {left}): SAME ('same') padding on one side, none (VALID, Conv2d's "
                  "default padding=0) on the other")


PITFALLS = [
    pitfall("dropout-kind", "Dropout2d / SpatialDropout2D ported as Dropout (or the reverse)", "layers", "P06", ["forward"],
            "both sides drop out the same input with the same scale; one side keeps or zeroes whole image-channel slices, the other single elements",
            _check_kind, requires=[DROPOUT],
            explanation="A channel dropout (torch Dropout2d, Keras SpatialDropout2D, tf.nn.dropout with noise_shape [N, 1, 1, C]) draws one "
                        "keep decision per feature map; Dropout draws one per element. The rate can be right and the regularisation differs: "
                        "a keep-probability fix would break the rate.",
            tf="SpatialDropout2D(rate) / tf.nn.dropout(x, rate, noise_shape=[N, 1, 1, C])",
            torch="nn.Dropout2d(p) for a channel dropout; nn.Dropout(p) per element",
            fix="Use the same kind: nn.Dropout2d for SpatialDropout2D (and the reverse), with p = rate."),
    pitfall("dropout-site-missing", "A dropout site present on one side only", "layers", "P06", ["forward"],
            "at the diverging site one side's output equals its input while the other's is that input dropped out, and the first side "
            "drops out at another site of the same step",
            _check_missing, requires=[DROPOUT],
            explanation="A port that leaves out one dropout (an input dropout, a dropout before the classifier) trains with less "
                        "regularisation; every other site agrees. Unlike a model left in inference mode, the same side still drops out elsewhere.",
            tf="x = tf.nn.dropout(x, rate)   at each site of the program", torch="(no nn.Dropout at that site)",
            fix="Add the missing nn.Dropout(p) at the same place (a Keras Dropout layer on the input included)."),
    pitfall("conv-padding", "Convolution padding differs: SAME ('same') vs none, another output shape", "padding", "P24", ["forward"],
            "a layer output's shapes differ by (kh - 1, kw - 1) of a convolution kernel of its channels, and the smaller equals the larger "
            "cropped by the SAME padding (stride 1)",
            _check_conv_padding, shapes=True,
            explanation="Keras Conv2D(padding='same') / tf.nn.conv2d(padding='SAME') keep the spatial size; torch Conv2d pads 0 by default "
                        "(VALID): each conv shrinks the map by k - 1. The shapes differ from the first such conv on (flatten sizes "
                        "too); at stride 1 and odd k padding=k // 2 is the same, at stride 2 see same-padding-conv.",
            tf="Conv2D(k, padding='same'): out = ceil(n / s)", torch="nn.Conv2d(k) (padding=0): out = floor((n - k) / s) + 1",
            fix="nn.Conv2d(..., padding=k // 2) at stride 1 (odd k), or padding='same'; at stride 2 pad explicitly with TF's (before, after)."),
]
