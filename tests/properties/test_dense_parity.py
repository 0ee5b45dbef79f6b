"""Properties of the dense module across TF1, TF2, torch and the numpy oracle.

For any drawn configuration the ports agree stage by stage (forward, loss, gradients,
processed gradients, learning rate, parameters, slots, constrained) to the float64
semantic bound of :mod:`parity.tolerance` (1e-10 relative, via :func:`parity.compare.compare`).
"""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from parity.runner import run_port
from parity.strategies import (
    clips,
    dense_case,
    dense_configs,
    max_norms,
    network_shapes,
    optimizers,
)

from _dense_support import assert_parity

pytestmark = [pytest.mark.tf, pytest.mark.torch]

ALL = ("numpy", "tf1", "tf2", "torch")
# Small widths keep graph structures repeating (TF graphs are cached by structure).
SHAPES = network_shapes(max_depth=3, max_width=4)


@given(dense_configs(shapes=SHAPES, min_steps=1, max_steps=1))
def test_forward_loss_gradient_parity(config):
    """One step of any config: forward, loss, gradients, update agree in all four ports."""
    assert_parity(config, ALL)


@given(dense_configs(shapes=SHAPES, max_steps=3))
def test_multistep_update_parity(config):
    """Several steps with any optimizer, schedule, clipping and max-norm: all four ports agree."""
    assert_parity(config, ALL)


@given(dense_configs(shapes=SHAPES, clip=st.none(), max_steps=3))
def test_minimize_equals_compute_apply(config):
    """TF1 ``minimize(loss, global_step)`` == ``compute_gradients`` + ``apply_gradients`` (seed 004)."""
    assert_parity(config, ("tf1", "tf1:minimize"))


@given(dense_configs(shapes=SHAPES, optimizer=optimizers(names=("sgd",)), clip=clips(allow_none=False), max_steps=3))
def test_manual_gradient_descent_equals_optimizers(config):
    """numpy ``chain(clip, sgd)`` (parity.transforms) == TF1 and torch's optimizer with their clipping."""
    assert_parity(config, ("numpy", "tf1", "torch"))


@given(dense_configs(shapes=SHAPES, max_norm=max_norms(allow_none=False), max_steps=3))
def test_max_norm_bound(config):
    """After the constraint every kernel slice along ``axis`` has norm <= radius, in every port."""
    case = dense_case(config)
    radius, axis = case.options["max_norm"]["radius"], case.options["max_norm"]["axis"]
    for port in ("numpy", "tf1", "tf2", "torch"):
        trace = run_port(case, port, "float64")
        for step in trace.steps:
            for name, kernel in step["constrained"].items():
                norms = np.sqrt(np.sum(kernel * kernel, axis=axis))
                # float64: the rescaled norm is radius * (1 + a few ulps)
                assert np.all(norms <= radius * (1 + 1e-12)), (port, name, norms.max(), radius)
