"""A Keras GAN (two models, two optimizers) against its torch port (issue 24; docs/own-model.md, "Several
optimizers / a hand-written update"): each ``apply_gradients`` of the Keras step is one phase, paired by order
with the port's ``optimizer.step()`` calls, ``phase<k>/<tensor>`` (examples/keras_gan/).

The verdicts are parity's own (``Comparison.ok`` / ``.first``): no tolerance is set here. Each pair runs a
Keras program (10-40 s on a busy 2-core machine): marked slow.
"""

from __future__ import annotations

import os
import re

import pytest

pytest.importorskip("tensorflow")
pytestmark = [pytest.mark.torch, pytest.mark.tf, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GAN = os.path.join(ROOT, "examples", "keras_gan")


def _compare(ref: str, port: str, steps: int = 3, dtypes=("float64", "float32")):
    from parity.program.prepare import compare_programs

    result = compare_programs(ref, port, steps=steps, dtypes=dtypes)
    return {c.dtype: c for c in result.comparisons}, result


def _names(c, stage: str) -> set:
    return {d.name.split("[")[0] for d in c.diffs if d.stage == stage}


def _tf_keras_copy(tmp_path, name: str = "keras_gan.py") -> str:
    """An example as a tf_keras (Keras 2) program: the same source with ``import tf_keras as keras``."""
    pytest.importorskip("tf_keras")
    src = open(os.path.join(GAN, name)).read()
    legacy = src.replace("\nimport keras\n", "\nimport tf_keras as keras\n")
    assert legacy != src
    path = tmp_path / f"tf_keras_{name}"
    path.write_text(legacy)
    return str(path)


def _agrees_phase_by_phase(by: dict, trains=("discriminator", "generator")) -> None:
    """Each dtype agrees, phase k trained the model ``trains[k-1]`` and was compared stage by stage."""
    phases = {f"phase{k}" for k in range(1, len(trains) + 1)}
    assert set(by) == {"float64", "float32"}
    for dtype, c in by.items():
        assert c.ok, f"{dtype}: {c.verdict} at {c.first}"
        assert not c.issues, c.issues
        # one phase per update, each with its loss, gradients, rate, parameters and Adam slots
        assert _names(c, "loss") == {f"{p}/loss" for p in phases}, _names(c, "loss")
        for stage in ("gradients", "processed_gradients", "parameters", "slots"):
            assert {n.split("/")[0] for n in _names(c, stage)} == phases, (dtype, stage)
        params = _names(c, "parameters")
        # each phase reports only its own optimizer's variables
        assert params and all(n.split("/")[1] == trains[int(n.split("/")[0][5:]) - 1] for n in params), params
        assert "phase1/lr" in _names(c, "learning_rate"), _names(c, "learning_rate")
        assert _names(c, "forward"), "phase 1's layer outputs compared"


def test_keras3_gan_against_its_torch_port_agrees_phase_by_phase():
    by, result = _compare(os.path.join(GAN, "keras_gan.py"), os.path.join(GAN, "torch_gan.py"))
    _agrees_phase_by_phase(by)
    assert any("reference: several optimizers (discriminator, generator)" in n for n in result.notes), result.notes


def test_tf_keras_gan_against_its_torch_port_agrees_phase_by_phase(tmp_path):
    by, _ = _compare(_tf_keras_copy(tmp_path), os.path.join(GAN, "torch_gan.py"))
    _agrees_phase_by_phase(by)


def test_keras_gan_with_a_tf_function_step_agrees(tmp_path):
    # the TensorFlow DCGAN tutorial decorates its step with @tf.function: run eagerly while parity records
    src = open(os.path.join(GAN, "keras_gan.py")).read()
    traced = src.replace("    def train_step(batch):", "    @tf.function\n    def train_step(batch):")
    assert traced != src
    path = tmp_path / "keras_gan_tf_function.py"
    path.write_text(traced)
    by, _ = _compare(str(path), os.path.join(GAN, "torch_gan.py"))
    _agrees_phase_by_phase(by)


@pytest.mark.parametrize("legacy", [False, True], ids=["keras3", "tf_keras"])
def test_keras_gan_of_train_on_batch_calls_agrees_with_three_torch_steps(tmp_path, legacy):
    # D on the real batch, D on the generated one, then the combined model (D frozen): three phases
    name = "keras_gan_train_on_batch.py"
    ref = _tf_keras_copy(tmp_path, name) if legacy else os.path.join(GAN, name)
    by, result = _compare(ref, os.path.join(GAN, "torch_gan_train_on_batch.py"))
    _agrees_phase_by_phase(by, trains=("discriminator", "discriminator", "generator"))



def _keras3_apply_copy(tmp_path, which=("d", "g")) -> str:
    """keras_gan.py with Keras 3's ``optimizer.apply(grads, variables)`` for the optimizers named (d, g)."""
    src = open(os.path.join(GAN, "keras_gan.py")).read()
    for opt, net in (("d", "discriminator"), ("g", "generator")):
        if opt in which:
            old = f"{opt}_opt.apply_gradients(zip(grads, {net}.trainable_variables))"
            assert old in src
            src = src.replace(old, f"{opt}_opt.apply(grads, {net}.trainable_variables)")
    path = tmp_path / f"keras_gan_apply_{''.join(which)}.py"
    path.write_text(src)
    return str(path)


@pytest.mark.parametrize("which", [("d", "g"), ("d",)], ids=["both_apply", "apply_then_apply_gradients"])
def test_keras3_gan_step_calling_optimizer_apply_agrees_phase_by_phase(tmp_path, which):
    # Keras 3's optimizer.apply(grads, variables), called directly (its apply_gradients calls it too): one phase
    # per call, never two for one apply_gradients. tf_keras optimizers have no apply (only apply_gradients).
    by, result = _compare(_keras3_apply_copy(tmp_path, which), os.path.join(GAN, "torch_gan.py"), steps=2)
    _agrees_phase_by_phase(by)
    assert any("each apply_gradients (or Keras 3 apply) of a step is one phase" in n for n in result.notes), result.notes



def test_keras3_model_gan_whose_own_train_step_calls_optimizer_apply_agrees(tmp_path):
    # a keras.Model GAN trained with fit, its train_step calling self.d_optimizer.apply(...): each call one phase
    src = open(os.path.join(GAN, "keras_gan_model.py")).read()
    for opt, net in (("d", "discriminator"), ("g", "generator")):
        old = f"self.{opt}_optimizer.apply_gradients(zip(grads, self.{net}.trainable_weights))"
        assert old in src
        src = src.replace(old, f"self.{opt}_optimizer.apply(grads, self.{net}.trainable_weights)")
    path = tmp_path / "keras_gan_model_apply.py"
    path.write_text(src)
    by, _ = _compare(str(path), os.path.join(GAN, "torch_gan_model.py"), steps=2)
    _agrees_phase_by_phase(by)

def test_keras3_gan_calling_apply_against_a_port_with_other_beta1_diverges_at_phase1_slots_step0(tmp_path):
    by, _ = _compare(_keras3_apply_copy(tmp_path), os.path.join(GAN, "torch_gan_d_beta1.py"), steps=1, dtypes=("float64",))
    c = by["float64"]
    assert not c.ok and c.first is not None and (c.first.step, c.first.stage) == (0, "slots"), c.first
    assert re.fullmatch(r"phase1/discriminator/\w+/(kernel|bias)/m", c.first.name.split("[")[0]), c.first

def test_keras_gan_against_a_port_with_other_discriminator_beta1_diverges_at_phase1_slots_step0():
    # Adam's first update is lr*g/|g| whatever beta1: D's parameters agree at step 0, its first moment does not
    by, _ = _compare(os.path.join(GAN, "keras_gan.py"), os.path.join(GAN, "torch_gan_d_beta1.py"))
    for dtype, c in by.items():
        assert not c.ok and c.first is not None, f"{dtype}: should diverge"
        assert (c.first.step, c.first.stage) == (0, "slots"), (dtype, c.first)
        assert re.fullmatch(r"phase1/discriminator/\w+/(kernel|bias)/m", c.first.name.split("[")[0]), c.first


def test_keras_gan_step_calling_no_apply_gradients_is_one_line(tmp_path, capfd, monkeypatch):
    from parity.cli.main import main

    src = open(os.path.join(GAN, "keras_gan.py")).read()
    lazy = src.replace("        d_opt.apply_gradients(zip(grads, discriminator.trainable_variables))\n", "")
    lazy = lazy.replace("        g_opt.apply_gradients(zip(grads, generator.trainable_variables))\n", "")
    assert "apply_gradients(zip" not in lazy
    path = tmp_path / "keras_gan_no_update.py"
    path.write_text(lazy)
    monkeypatch.setenv("PARITY_WORKERS", "0")
    rc = main(["diff", str(path), os.path.join(GAN, "torch_gan.py"), "--steps", "1", "--dtype", "float64", "--quiet-mapping"])
    _, err = capfd.readouterr()
    errors = [ln for ln in err.splitlines() if ln.startswith("parity: error:")]
    assert rc != 4 and rc != 0, rc  # the program's fault, not parity's
    assert len(errors) == 1 and "the step never called the apply_gradients of any of its optimizers" in errors[0], err


def test_keras_gan_with_fit_and_several_optimizers_asks_for_a_train_step(tmp_path):
    from parity.errors import ParityError

    src = open(os.path.join(GAN, "keras_gan.py")).read()
    fit = src.replace('"train_step": make_train_step(generator, discriminator, g_opt, d_opt),', '"fit": True,')
    assert fit != src
    path = tmp_path / "keras_gan_fit.py"
    path.write_text(fit)
    with pytest.raises(ParityError, match="need a 'train_step'"):
        _compare(str(path), os.path.join(GAN, "torch_gan.py"), steps=1, dtypes=("float64",))


def test_keras_gan_gives_the_same_verdict_in_workers_and_in_process(capfd, monkeypatch):
    from parity.cli.main import main

    ref, port = os.path.join(GAN, "keras_gan.py"), os.path.join(GAN, "torch_gan_d_beta1.py")
    firsts = {}
    for workers in ("1", "0"):
        monkeypatch.setenv("PARITY_WORKERS", workers)
        rc = main(["diff", ref, port, "--steps", "2", "--dtype", "float64", "--quiet-mapping"])
        out, _ = capfd.readouterr()
        firsts[workers] = (rc, [ln.strip() for ln in out.splitlines() if ln.strip().startswith("first")])
    assert firsts["1"] == firsts["0"], firsts
    rc, lines = firsts["1"]
    assert rc == 1 and lines and "step 0, slots, phase1/discriminator/" in lines[0], firsts


# -- a keras.Model GAN trained with fit, its noise drawn inside its own train_step ------------------------

@pytest.mark.parametrize("legacy", [False, True], ids=["keras3", "tf_keras"])
def test_keras_model_gan_with_fit_and_noise_drawn_in_the_step_agrees(tmp_path, legacy):
    name = "keras_gan_model.py"
    ref = _tf_keras_copy(tmp_path, name) if legacy else os.path.join(GAN, name)
    by, _ = _compare(ref, os.path.join(GAN, "torch_gan_model.py"))
    _agrees_phase_by_phase(by)


def test_a_port_reusing_the_discriminators_noise_for_the_generator_diverges_at_phase2(tmp_path):
    # the port draws z once: G's update sees D's noise, the Keras model draws anew (the second normal draw)
    src = open(os.path.join(GAN, "torch_gan_model.py")).read()
    once = src.replace("    adam_step(optD)\n    z = torch.randn(real.shape[0], Z_DIM, dtype=real.dtype)\n",
                       "    adam_step(optD)\n")
    assert once != src
    path = tmp_path / "torch_gan_model_noise_once.py"
    path.write_text(once)
    by, _ = _compare(os.path.join(GAN, "keras_gan_model.py"), str(path), steps=1, dtypes=("float64",))
    c = by["float64"]
    assert not c.ok and c.first is not None and c.first.step == 0, c.first
    # phase 1 (D's update) agrees: the same first draw; G's loss is the first thing the second draw changes
    assert (c.first.stage, c.first.name.split("[")[0]) == ("loss", "phase2/loss"), c.first


# -- the user's errors: one line, at their file and line ----------------------------------------------

def _diff_error(capfd, monkeypatch, ref: str) -> tuple[int, str]:
    from parity.cli.main import main

    monkeypatch.setenv("PARITY_WORKERS", "0")
    rc = main(["diff", ref, os.path.join(GAN, "torch_gan.py"), "--steps", "1", "--dtype", "float64", "--quiet-mapping"])
    _, err = capfd.readouterr()
    errors = [ln for ln in err.splitlines() if ln.startswith("parity: error:")]
    assert len(errors) == 1, err
    return rc, errors[0]


def test_a_keras_gan_step_raising_is_exit_3_at_the_users_line(tmp_path, capfd, monkeypatch):
    src = open(os.path.join(GAN, "keras_gan.py")).read()
    typo = src.replace('real, z = batch["x"], batch["z"]', 'real, z = batch["x"], batch["noise"]')
    assert typo != src
    path = tmp_path / "keras_gan_typo.py"
    path.write_text(typo)
    rc, line = _diff_error(capfd, monkeypatch, str(path))
    assert rc == 3 and "raised KeyError" in line and "keras_gan_typo.py:" in line and "in train_step" in line, line


def test_two_models_with_a_layer_of_one_name_are_refused_in_one_line(tmp_path, capfd, monkeypatch):
    src = open(os.path.join(GAN, "keras_gan.py")).read()
    named = src.replace('keras.layers.Dense(HIDDEN, activation="relu")', 'keras.layers.Dense(HIDDEN, activation="relu", name="h1")')
    named = named.replace("keras.layers.Dense(HIDDEN), keras.layers.LeakyReLU", 'keras.layers.Dense(HIDDEN, name="h1"), keras.layers.LeakyReLU')
    assert named.count('name="h1"') == 2
    path = tmp_path / "keras_gan_h1_twice.py"
    path.write_text(named)
    rc, line = _diff_error(capfd, monkeypatch, str(path))
    assert rc == 2 and "two models hold a layer named 'h1'" in line, (rc, line)
