"""Properties of the dense module across TF1, TF2, torch and the numpy oracle.

For any drawn configuration the ports agree stage by stage (forward, loss, gradients,
processed gradients, learning rate, parameters, slots, constrained) to the float64
semantic bound of :mod:`parity.comparison.tolerance` (1e-10 relative, via :func:`parity.comparison.comparator.compare`);
in float32, where the written error model applies (see ``test_float32_within_error_model``).

Under the ci profile the structures come from ``COVERING_STRUCTURES`` (every activation,
loss, reduction, optimizer, schedule, clip kind and max-norm axis occurs), so the TF graphs
are built once and the examples vary every fed number; under thorough, anything.
"""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from parity.run.runner import run_port
from parity.strategies import (
    clips,
    dense_case,
    dense_configs,
    max_norms,
    network_shapes,
    optimizers,
)

from _dense_support import STRUCTURES, assert_parity, structures

pytestmark = [pytest.mark.tf, pytest.mark.torch]

ALL = ("numpy", "tf1", "tf2", "torch")
# thorough: small widths, any structure
SHAPES = network_shapes(max_depth=3, max_width=4)


def _configs(structs, *, free: dict, **common):
    """Draw from ``structs`` (ci, dev) or freely with the ``free`` part strategies (thorough)."""
    if STRUCTURES is None:
        return dense_configs(shapes=SHAPES, **free, **common)
    return dense_configs(structures=structs, **common)


@given(_configs(structures(), free={}, min_steps=1, max_steps=1))
def test_forward_loss_gradient_parity(config):
    """One step of any config: forward, loss, gradients, update agree in all four ports."""
    assert_parity(config, ALL)


@given(_configs(structures(), free={}, max_steps=3))
def test_multistep_update_parity(config):
    """Several steps with any optimizer, schedule, clipping and max-norm: all four ports agree."""
    assert_parity(config, ALL)


@given(_configs(structures(clip=None), free={"clip": st.none()}, max_steps=3))
def test_minimize_equals_compute_apply(config):
    """TF1 ``minimize(loss, global_step)`` == ``compute_gradients`` + ``apply_gradients`` (seed 004)."""
    assert_parity(config, ("tf1", "tf1:minimize"))


_SGD_CLIPPED = [s for s in structures(optimizer="sgd") or [] if s["clip"]]


@given(_configs(_SGD_CLIPPED, free={"optimizer": optimizers(names=("sgd",)), "clip": clips(allow_none=False)}, max_steps=3))
def test_manual_gradient_descent_equals_optimizers(config):
    """numpy ``chain(clip, sgd)`` (parity.portkit.transforms) == TF1 and torch's optimizer with their clipping."""
    assert_parity(config, ("numpy", "tf1", "torch"))


_MAX_NORMED = [s for s in structures() or [] if s["max_norm"] is not None]


@given(_configs(_MAX_NORMED, free={"max_norm": max_norms(allow_none=False)}, max_steps=3))
def test_max_norm_bound(config):
    """After the constraint every kernel slice along ``axis`` has norm <= radius, in every port."""
    case = dense_case(config)
    radius, axis = case.options["max_norm"]["radius"], case.options["max_norm"]["axis"]
    for port in ALL:
        trace = run_port(case, port, "float64")
        for step in trace.steps:
            for name, kernel in step["constrained"].items():
                norms = np.sqrt(np.sum(kernel * kernel, axis=axis))
                # float64: a rescaled slice has norm radius * (1 + err), |err| <= ~(n + 3) eps64
                # for an n-term norm (n <= 4 here) and one multiply: 1e-12 is >100x that.
                assert np.all(norms <= radius * (1 + 1e-12)), (port, name, norms.max(), radius)


# float32: judged as the runner judges it (the written model, or the measured envelope where
# larger: docs/tolerance.md). One exclusion, measured (docs/properties.md, "float32"):
# * Adam: TF1's ApplyAdam updates v += (g^2 - v)(1 - beta2), torch.optim.Adam and the oracle
#   beta2*v + (1 - beta2)*g^2: when g shrinks, v is a small result of O(v_prev) operands, and
#   TF's form rounds at v_prev's scale. With beta1 = beta2 = 0 (2-1-1-2 linear, seed 0) TF1's
#   float32 bias differs from the oracle's by 3.2e-4 at step 1: TF1's own drift (3.24e-4), with
#   the oracle's (2.2e-7) and the conditioning run (1.0e-7) small: a float32-only fault's look.
#   (RMSProp had the same problem from ms = 1 -- 17% at |g| ~ 2e-4 -- until every port used
#   the kernel's form: test_rmsprop_tiny_gradients_kernel_form. torch.optim.Adam cannot.)
# softmax_xent was excluded too until the conditioning run: its last-layer gradient is a batch
# mean of (p - y) terms ~0.5 that cancel to ~1e-4 under a tiny init (44 model bounds measured).
_F32 = [s for s in structures() or [] if s["optimizer"] in ("sgd", "momentum", "rmsprop", "adagrad")]


@given(
    _configs(
        _F32,
        free={"optimizer": optimizers(names=("sgd", "momentum", "rmsprop", "adagrad"))},
        max_steps=3,
    )
)
def test_float32_within_error_model(config):
    """float32 runs of numpy, TF1, TF2 and torch agree within parity.comparison.tolerance's float32 bound."""
    assert_parity(config, ALL, dtype="float32")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_rmsprop_tiny_gradients_kernel_form(dtype):
    """|g| ~ 2e-4, decay 0: every port follows TF1's ms += (g^2 - ms)(1 - decay) (float32: 17% otherwise)."""
    config = {"widths": (1, 1), "activation": "linear", "init_scale": 1e-3, "batch": 1, "data_scale": 1e-3,
              "optimizer": {"name": "rmsprop", "lr": 0.01, "decay": 0.0, "epsilon": 1e-10}, "steps": 1, "seed": 0}
    assert_parity(config, ALL, dtype=dtype)
