"""A DCGAN written as corpus pair 02 is (examples/gan_bn/): the TF1 program builds G then D, its torch port
calls D(real), G, D(fake); the discriminator's second convolution has a bias right before BatchNorm, whose
gradient is rounding noise that TF1's Adam(2e-4, beta1 0.5) divides by its epsilon. The layer outputs pair
within each network (parity/program/output_owners.py) and the noise carried through the update is rounding
(parity/comparison/propagate.py): the faithful port agrees in both dtypes, a wrong epsilon still diverges."""

from __future__ import annotations

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ex(name):
    return os.path.join(ROOT, "examples", "gan_bn", name)


@pytest.mark.slow
def test_the_faithful_port_agrees_in_both_dtypes_with_outputs_paired_within_each_network():
    from parity.program.prepare import compare_programs

    r = compare_programs(ex("tf1_dcgan.py"), ex("torch_dcgan.py"), steps=3, dtypes=("float64", "float32"))
    forward = dict(r.mapping.forward)
    assert forward["generator/g_h0_lin/add"] == "G.lin" and forward["discriminator/d_h0_conv/BiasAdd"] == "D.h0.conv"
    assert forward["discriminator_1/d_h1_conv/BiasAdd"] == "D.h1.conv#2" and forward["generator/Tanh"] == "F.tanh"
    assert "generator/g_h1/BiasAdd" not in forward  # TF's SAME deconv vs torch's before its crop: another cut
    for c in r.comparisons:
        assert c.ok, (c.dtype, c.first_divergence and c.first_divergence.describe())
    # float64: the noise bias's parameters differ by more than 1e-10 of their layer's scale, all of it
    # carried from gradients accepted as rounding (measured: 0 beyond it)
    c64 = next(c for c in r.comparisons if c.dtype == "float64")
    bias = c64.worst[("parameters", "phase1/discriminator/d_h1_conv/biases")]
    assert bias.verdict in ("rounding", "exact") and bias.units < 1


@pytest.mark.slow
def test_tf1s_epsilon_hat_left_out_still_diverges_at_step_0_parameters():
    from parity.program.prepare import compare_programs

    r = compare_programs(ex("tf1_dcgan.py"), ex("torch_dcgan_eps.py"), steps=2, dtypes=("float64",))
    d = r.comparisons[0].first_divergence
    assert d is not None and (d.step, d.stage, d.kind) == (0, "parameters", "semantic")
