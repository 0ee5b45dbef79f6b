"""A GAN's discriminator step alone (examples/gan/*_d_step.py): the generator runs in the step but no optimizer
trains it. TF1 reports every variable no train op updates as state; the torch side reports the parameters no
optimizer holds as state too, so the two report the same tensors and the faithful port agrees (corpus 02's
D-step form was STRUCTURE "generator/g_h0_lin/Matrix: missing in B" before)."""

from __future__ import annotations

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ex(name):
    return os.path.join(ROOT, "examples", "gan", name)


@pytest.mark.tf
def test_d_step_reports_the_untrained_generator_as_state_on_both_sides():
    from parity.program.prepare import compare_programs

    r = compare_programs(ex("tf1_gan_d_step.py"), ex("torch_gan_d_step.py"), steps=2, dtypes=("float64",))
    c = r.comparisons[0]
    assert c.ok, c.first_divergence and c.first_divergence.describe()
    state = {name for stage, name in c.worst if stage == "state"}
    params = {name for stage, name in c.worst if stage == "parameters"}
    assert {"generator/h1/kernel", "generator/h1/bias", "generator/out/kernel", "generator/out/bias"} <= state, state
    assert not any(n.startswith("generator/") for n in params) and "discriminator/h1/kernel" in params
    # unchanged by the step on both sides: compared exactly (the loaded values)
    assert all(c.worst[("state", n)].verdict == "exact" for n in state if n.startswith("generator/")), \
        {n: c.worst[("state", n)].verdict for n in state}
