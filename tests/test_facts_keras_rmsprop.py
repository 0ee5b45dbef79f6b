"""Where tf_keras' legacy RMSprop adds epsilon (tf_impl/v2/capture/facts.py): without momentum it steps
``lr * g / (sqrt(ms) + eps)`` itself, with momentum it calls the ApplyRMSProp kernel,
``lr * g / sqrt(ms + eps)`` (corpus 04's fact said "inside sqrt" for the first). Checked against the
optimizer's own first step."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.tf]


@pytest.mark.parametrize("momentum, form", [(0.0, "outside sqrt"), (0.5, "inside sqrt")])
def test_legacy_rmsprop_eps_form_is_what_its_step_does(momentum, form):
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("tf_keras")
    from tf_impl.v2.capture.facts import optimizer_facts

    opt = keras.optimizers.legacy.RMSprop(1e-3, momentum=momentum, epsilon=0.5)
    w0 = np.array([1.0, 2.0])
    v = tf.Variable(w0)
    g = np.array([0.3, -0.2])
    opt.apply_gradients([(tf.constant(g), v)])
    ms = 0.1 * g ** 2  # rho 0.9, the mean square from zero
    step = {"inside sqrt": -1e-3 * g / np.sqrt(ms + 0.5), "outside sqrt": -1e-3 * g / (np.sqrt(ms) + 0.5)}
    # the two forms differ by ~20 % here; 1e-6 relative covers the float32 hyper-parameters (2^-24 each)
    np.testing.assert_allclose(v.numpy() - w0, step[form], rtol=1e-6)
    assert optimizer_facts(opt, 1e-3)["eps.form"] == form
