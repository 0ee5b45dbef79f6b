"""Signatures of numerical-format pitfalls: TF32 matmuls and convolutions (the TF32 case of
``parity/cases/catalog/pitfalls_layers.py``).

TF32 rounds both operands of a float32 matmul/conv to a 10-bit mantissa (relative 2^-11 each)
and accumulates in float32: each output element moves by at most ~2^-10 * sum_i |x_i| |k_i|,
and typically by 2^-11 * sqrt(K) times a term, so the error grows with the reduction length K.
float64 is never affected. The signature is that bound, met by the first diverging layer
output, well above float32's own rounding (2^-24 per operation). Behind a BatchNorm the product's
own difference may pass as float32 rounding while its parameter's gradient diverges (the norm's
backward divides by the batch's spread: measured, seed 003's convnet with the conv's operands rounded
to TF32, float32, step 0: the conv output accepted, its kernel's gradient 0.025 relative): the
signature is then read on the accepted product of the diverging gradient's parameter.
"""

from __future__ import annotations

import numpy as np

from parity.pitfalls.base import Context, Precondition, pitfall, predicts
from parity.pitfalls.layers import sources4
from parity.pitfalls.reference import conv2d, round_tf32, same_pads
from parity.pitfalls.requires import FLOAT32

__all__ = ["PITFALLS"]

_TF32_UNIT = 2.0**-11  # half an ulp of a 10-bit mantissa


def _products(c: Context, y):
    """(parameter, label, x, k, x (*) k, |x| (*) |k|) for every layer input x both ports agree on and parameter k
    whose product (matmul or conv, VALID or SAME) has ``y``'s shape."""
    params = c.params_before(c.a)
    flat = {n: np.asarray(v, float) for n, v in c.at(c.a, "inputs").items() if np.ndim(v) == 2}
    flat.update({n: v for n, v in c.matching("forward").items() if v.ndim == 2})
    for pn, k in params.items():
        k = np.asarray(k, float)
        if y.ndim == 2 and k.ndim == 2 and k.shape[1] == y.shape[1]:
            for xn, x in flat.items():
                if x.shape == (y.shape[0], k.shape[0]):
                    yield pn, f"{xn} @ {pn}", x, k, x @ k, np.abs(x) @ np.abs(k)
        if y.ndim == 4 and k.ndim == 4 and k.shape[3] == y.shape[3]:
            for xn, x in sources4(c).items():
                if x.shape[0] != y.shape[0] or x.shape[3] != k.shape[2]:
                    continue
                s = max(1, int(round(x.shape[1] / y.shape[1])))
                kh, kw = k.shape[:2]
                for pads in ((0, 0, 0, 0), same_pads(x.shape[1], kh, s) + same_pads(x.shape[2], kw, s)):
                    bound = conv2d(np.abs(x), np.abs(k), s, pads)
                    if bound.shape == y.shape:
                        yield pn, f"conv({xn}, {pn})", x, k, conv2d(x, k, s, pads), bound


def _residual(y, prod, bound) -> float:
    """How far ``y`` is from this product plus a per-channel bias (with or without a ReLU), in units of sum|x||k|."""
    y2, p2, b2 = (np.asarray(v, float).reshape(-1, np.shape(v)[-1]) for v in (y, prod, bound))
    scale = b2 + 2.0**-22 * np.abs(y2) + 1e-300  # the bias addition's own rounding too
    pos = y2 > 0
    off = np.array([np.median((y2 - p2)[pos[:, j], j]) if pos[:, j].any() else 0.0 for j in range(y2.shape[1])])
    lin = p2 + off
    return float(min(np.max(np.abs(y2 - lin) / scale), np.max(np.abs(y2 - np.maximum(lin, 0)) / scale)))


#: The IEEE side's largest residual, in units of sum|x||k|: float32 rounding of the sum, with room for
#: cuDNN's Winograd / FFT algorithms (~1e-5), 16x under TF32's bound: a non-product (a mask multiply) is O(1).
_IEEE_MAX = _TF32_UNIT / 4


def _ieee_rel(k) -> float:
    """float32's own rounding of a sum of K products, relative to sum|x||k| (2^-24 per addition, sqrt(K) typical, x16)."""
    return 16 * 2.0**-24 * max(np.sqrt(np.prod(np.shape(k)[:-1])), 1)


def _agreed_product(c: Context, x, k, bound) -> bool:
    """Whether both ports recorded this matmul's output (x @ k + a bias) and agree on it: then the
    matmul itself is not what differs (a later elementwise layer is)."""
    if x.ndim != 2:
        return False
    xk = x @ k
    for z in c.matching("forward").values():
        if z.shape != xk.shape:
            continue
        off = z - xk
        if np.all(np.abs(off - off.mean(0)) <= _ieee_rel(k) * np.maximum(bound, 1e-300) + c.tol * np.abs(z).max()):
            return True
    return False


def _first_products(c: Context):
    """(name, label, x, k, product, bound, IEEE side) for the first divergence's tensor where it is a matmul/conv
    output: one port's tensor equals an input both agree on times a parameter (plus a bias, a ReLU) to 2^-13 x
    sum|x||k| (float32 rounding, cuDNN's algorithms), the other's within TF32's bound. A mask multiply, a pooling, a
    normalisation is no product. Where the first divergence is a parameter's gradient, the step's products of that
    parameter the comparison accepted (a BatchNorm after one: see the module docstring)."""
    if c.first.stage == "forward":
        outputs, param = [(n, ya, yb) for n, ya, yb in c.diverging("forward") if n == c.first.name], None
    elif c.first.stage == "gradients":
        fa, fb = c.at(c.a, "forward"), c.at(c.b, "forward")
        outputs = [(n, np.asarray(fa[n], float), np.asarray(fb[n], float)) for n in fa
                   if n in fb and np.shape(fa[n]) == np.shape(fb[n]) and not c.semantic("forward", n)]
        param = c.first.name
    else:
        return
    for n, ya, yb in outputs:
        if ya.ndim not in (2, 4):
            continue
        for pn, label, x, k, prod, bound in _products(c, ya):
            if param is not None and pn != param:
                continue
            ra, rb = _residual(ya, prod, bound), _residual(yb, prod, bound)
            ieee = "A" if ra <= rb else "B"
            # An accepted product (behind a BatchNorm) is the one that differs here: not ruled out by both ports
            # agreeing on it, but its TF32 side must be beyond the IEEE side's own allowance (_IEEE_MAX): above cuDNN's
            # Winograd / FFT algorithms' ~1e-5 (up to ~3e-5 with the residual's channel offset: no evidence), below
            # TF32's own (measured, seed 003's conv, K = 27: 2.5e-4; ~2^-11 x 3 / sqrt(K) expected at the largest of
            # many outputs, so a reduction of more than ~150 terms stays unnamed there: unknown, never a wrong name).
            if (min(ra, rb) <= _IEEE_MAX and max(ra, rb) <= 4 * _TF32_UNIT
                    and (not _agreed_product(c, x, k, bound) if param is None else max(ra, rb) > _IEEE_MAX)):
                yield n, label, x, k, prod, bound, ieee


def _check_tf32(c: Context):
    for n, label, x, k, prod, bound, ieee in _first_products(c):
        ya, yb = c.at(c.a, "forward")[n], c.at(c.b, "forward")[n]
        ya, yb = np.asarray(ya, float), np.asarray(yb, float)
        d = np.abs(yb - ya)
        scale = np.maximum(bound, 1e-300)
        worst = float(np.max(d / scale))
        reduction = int(np.prod(k.shape[:-1]))
        # inside TF32's bound (2 operands x 2^-11, x2 for the float32 accumulation) and far above
        # float32's own rounding of the same sum (2^-24 per addition, K additions)
        if not (worst <= 4 * _TF32_UNIT and worst >= _ieee_rel(k)):
            continue
        rel = float(d.max() / max(np.abs(ya).max(), 1e-300))
        other = "B" if ieee == "A" else "A"
        sign = 1.0 if other == "B" else -1.0
        exact = ya.ndim == 2 and predicts(sign * (yb - ya), round_tf32(x) @ round_tf32(k) - x @ k, 1e-3)
        behind = (f" (accepted as rounding there: the first divergence is {c.first.name}'s gradient, which a "
                  "normalisation after the product amplifies)" if c.first.stage == "gradients" else "")
        return (0.95 if exact else 0.8), (
            f"{n}{behind} = {label} (reduction length {reduction}): {ieee}'s is the IEEE product, {other}'s stays within "
            f"TF32's bound, at most {worst:.2g} x sum|x||k| (2^-11 = {_TF32_UNIT:.2g} per operand), relative {rel:.2g}, in a float32 run"
            + (", and equals the product of operands rounded to a 10-bit mantissa" if exact else "")
            + f": TF32 matmul/conv in {other} (TF enables it by default on Ampere+ GPUs; torch for convolutions "
            "via cudnn.allow_tf32); float64 is unaffected"
        )
    return None


#: The first divergence is a matmul/conv output, or its parameter's gradient (TF32 changes nothing else).
PRODUCT = Precondition(
    "the first diverging tensor is a matmul/conv output (one port's equals an input both agree on times a parameter "
    "(+ bias, ReLU) to 2^-13 x sum|x||k|; a mask multiply is not one), or the gradient of that parameter with the "
    "product accepted", lambda c: next(_first_products(c), None) is not None)


PITFALLS = [
    pitfall("tf32-emulated", "TF32 matmuls and convolutions in float32", "numerics", "P45", ["forward", "gradients"],
            "a float32 matmul/conv output differs by at most ~2^-10 x sum|x||k| (operands rounded to a 10-bit mantissa), "
            "far above float32 rounding (behind a BatchNorm: accepted, and its parameter's gradient diverges); "
            "float64 matches",
            _check_tf32, requires=[FLOAT32, PRODUCT],
            explanation="On Ampere+ GPUs TF enables TensorFloat-32 by default for float32 matmuls and convs (10-bit mantissa operands); torch keeps matmuls in IEEE float32 (allow_tf32=False) but lets cuDNN convolutions use TF32 (cudnn.allow_tf32=True). The error is ~2^-11 relative per operand and grows with the reduction length; float64 is untouched. Here the wrong port rounds its float32 operands on CPU (emulated); the GPU checks are tests/test_gpu_tf32.py (torch only: they run without TensorFlow; the hardware's TF32 against the emulation, and named tf32-emulated).",
            tf="tf.config.experimental.enable_tensor_float_32_execution(True) by default", torch="torch.backends.cuda.matmul.allow_tf32 = False, torch.backends.cudnn.allow_tf32 = True by default",
            fix="Disable TF32 on both sides for parity (enable_tensor_float_32_execution(False); allow_tf32 = False for matmul and cudnn)."),
]
