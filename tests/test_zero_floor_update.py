"""The gradients' accepted rounding carried through the update rule (parity/comparison/propagate.py;
docs/tolerance.md, "Values that are zero or cancel"): a conv bias right before BatchNorm has a gradient that
is rounding noise on both sides, and Adam divides it by eps. Synthetic float64 traces of TF1's Adam
(lr 2e-4, beta1 0.5: corpus pair 02's), numpy only: the comparator sees what two ports would record."""

import numpy as np

from parity.comparison.comparator import Comparator

LR, B1, B2 = 2e-4, 0.5, 0.999


def _adam(p, g, m, v, t, eps_hat=1e-8, after=False):
    m, v = B1 * m + (1 - B1) * g, B2 * v + (1 - B2) * g * g
    lr_t = LR * np.sqrt(1 - B2 ** t) / (1 - B1 ** t)
    if after:  # torch's form without the rescaled epsilon: eps added after the bias correction
        return p - LR / (1 - B1 ** t) * m / (np.sqrt(v / (1 - B2 ** t)) + eps_hat), m, v
    return p - lr_t * m / (np.sqrt(v) + eps_hat), m, v


def _runs(steps=3, noise_b=None, bias_grad_b=0.0, after_b=False, seed=0):
    """Two runs of one conv layer (kernel gradient ~0.5, bias gradient rounding noise ~1e-14) under Adam:
    ``(initial, steps a, steps b)``; ``noise_b``: run b's own noise; ``bias_grad_b``: a real difference."""
    rng = np.random.default_rng(seed)
    w0, b0 = rng.normal(0, 0.02, (5, 5, 8, 16)), np.zeros(16)
    x = rng.normal(size=(8, 4, 4, 16))
    runs = []
    for side in "ab":
        w, b = w0.copy(), b0.copy()
        mw = vw = mb = vb = 0.0
        out = []
        nrng = np.random.default_rng([seed, 1 if side == "a" else 2])
        gw_all = np.random.default_rng([seed, 3])
        for t in range(1, steps + 1):
            gw = gw_all.normal(0, 0.2, w.shape)  # the same real kernel gradient on both sides (up to 1e-16)
            gw = gw * (1 + 1e-16 * nrng.normal(size=w.shape))
            gb = 3e-14 * nrng.normal(size=16)  # a sum that cancels: each side its own rounding noise
            if side == "b":
                gb = gb + bias_grad_b
            forward = {"conv/BiasAdd": x + b}
            w, mw, vw = _adam(w, gw, mw, vw, t, after=after_b and side == "b")
            b, mb, vb = _adam(b, gb, mb, vb, t, after=after_b and side == "b")
            out.append({"forward": forward, "gradients": {"conv/w": gw, "conv/biases": gb},
                        "parameters": {"conv/w": w.copy(), "conv/biases": b.copy()},
                        "slots": {"conv/w/m": np.asarray(mw).copy(), "conv/biases/m": np.asarray(mb).copy()}})
        runs.append(out)
    return {"conv/w": w0, "conv/biases": b0}, runs[0], runs[1]


def _compare(initial, a, b, carry=True):
    ma = {"case": "c", "dtype": "float64", "port": "tf1"}
    mb = {"case": "c", "dtype": "float64", "port": "torch"}
    cmp = Comparator(ma, mb, keep="all", initial=(initial, initial) if carry else None)
    for sa, sb in zip(a, b):
        cmp.add(sa, sb)
    return cmp.finish()


def test_adams_amplified_noise_of_a_bias_before_batchnorm_is_rounding_with_the_update_carried():
    initial, a, b = _runs()
    c = _compare(initial, a, b)
    assert c.first is None, c.first.describe()
    worst = c.worst[("parameters", "conv/biases")]
    # the biases differ by far more than the float64 bound of their layer's scale (1e-10 x ~0.08): it is the
    # gradients' noise (accepted as rounding) times Adam's gain ~lr_t/eps, carried; measured 0 beyond it
    assert worst.max_abs > 1e-10 * worst.scale and worst.verdict == "rounding"
    # the next step's layer output carries its bias's difference as it is: rounding too
    assert c.worst[("forward", "conv/BiasAdd")].verdict == "rounding"
    # without the carried error (no initial parameters: the first move is unknown) the same runs diverge
    # at step 0's parameters: the allowance is what decides, not a looser bound
    d = _compare(initial, a, b, carry=False).first
    assert d is not None and (d.step, d.stage, d.name) == (0, "parameters", "conv/biases")


def test_an_epsilon_after_the_bias_correction_still_diverges_at_step_0_parameters():
    initial, a, b = _runs(after_b=True)
    d = _compare(initial, a, b).first
    assert d is not None and (d.step, d.stage, d.kind) == (0, "parameters", "semantic")
    assert d.name == "conv/biases" or d.name == "conv/w"


def test_a_real_bias_gradient_difference_diverges_at_the_gradients():
    # 1e-9 beside kernel gradients of ~0.5: ~20x the float64 floor (1e-10 x 0.5), far above noise
    initial, a, b = _runs(bias_grad_b=1e-9)
    d = _compare(initial, a, b).first
    assert d is not None and (d.step, d.stage, d.name) == (0, "gradients", "conv/biases")
