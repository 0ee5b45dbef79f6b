"""Program forms (issue 24; docs/own-model.md, "Several optimizers / a hand-written update"):

* a hand-written update (a torch ``train_step`` with no ``torch.optim``: ``p.data.add_(p.grad, alpha=-lr)``)
  is compared on the stages it shows (loss, raw gradients, parameters after the step); the rest is listed
  as not compared, never a structure failure (examples/manual_update/);
* several optimizers in one step (a GAN: TF1 train ops run in order, torch optimizers stepped in a
  ``train_step``) are compared phase by phase, ``phase<k>/<tensor>`` (examples/gan/);
* a crash of parity's own capture code under the user's step is parity's fault (exit 4), the user's own
  error stays exit 3 (:func:`parity.run.boundary.parity_fault`).

The verdicts are parity's own (``Comparison.ok`` / ``.first``): no tolerance is set here. torch-against-torch
pairs run by default; pairs with a TF1 program are marked slow (20-45 s each on a busy 2-core machine).
"""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.torch]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def _compare(ref: str, port: str, steps: int = 3, dtypes=("float64", "float32")):
    from parity.program.prepare import compare_programs

    result = compare_programs(os.path.join(EXAMPLES, ref), os.path.join(EXAMPLES, port), steps=steps, dtypes=dtypes)
    return {c.dtype: c for c in result.comparisons}, result


def _agree(ref: str, port: str, skipped=(), steps: int = 3):
    by, result = _compare(ref, port, steps)
    assert set(by) == {"float64", "float32"}
    for dtype, c in by.items():
        assert c.ok, f"{dtype}: {ref} vs {port}: {c.verdict} at {c.first}"
        assert not c.issues, c.issues  # no structure issue: what one side cannot see is skipped, not missing
        assert sorted(s for s, _ in c.skipped) == sorted(skipped), c.skipped
    return by, result


def _names(c, stage: str) -> set:
    return {d.name.split("[")[0] for d in c.diffs if d.stage == stage}


# -- a hand-written update ---------------------------------------------------------------------------

def test_hand_written_update_agrees_with_torch_optim_sgd_on_what_it_shows():
    by, result = _agree("manual_update/torch_optim_sgd.py", "manual_update/torch_manual_sgd.py",
                        skipped=("learning_rate", "processed_gradients"))
    c = by["float64"]
    stages = {d.stage for d in c.diffs}
    assert {"loss", "gradients", "parameters"} <= stages, stages
    assert any("hand-written update" in n and "not compared" in n for n in result.notes), result.notes


def test_hand_written_update_without_zero_grad_diverges_at_step1_gradients():
    by, _ = _compare("manual_update/torch_optim_sgd.py", "manual_update/torch_manual_sgd_no_zero_grad.py")
    for dtype, c in by.items():
        assert not c.ok and c.first is not None, f"{dtype}: should diverge, got {c.verdict}"
        assert (c.first.step, c.first.stage) == (1, "gradients"), f"{dtype}: {c.first}"


def test_hand_written_program_forms_refuse_several_optimizers_without_a_train_step():
    import torch

    from parity.errors import ParityError
    from torch_impl.capture.phases import is_standin, program_forms

    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    oa, ob = torch.optim.SGD(a.parameters(), lr=0.1), torch.optim.SGD(b.parameters(), lr=0.1)
    with pytest.raises(ParityError, match="several optimizers need a 'train_step'"):
        program_forms({"model": [a, b], "optimizer": [oa, ob], "loss": torch.nn.MSELoss()}, "f.py")
    out = program_forms({"model": {"a": a, "b": b}, "optimizer": {"A": oa, "B": ob}, "train_step": lambda b: 0}, "f.py")
    assert is_standin(out["optimizer"]) and [k for k, _ in out["optimizer"].phases] == ["A", "B"]
    assert isinstance(out["model"], torch.nn.ModuleDict)
    plain = {"model": a, "optimizer": oa, "loss": torch.nn.MSELoss()}
    assert program_forms(plain, "f.py") == plain  # the one-optimizer form is untouched


@pytest.mark.slow
def test_tf1_gradient_descent_against_a_hand_written_update_agrees():
    by, result = _agree("manual_update/tf1_clip_sgd.py", "manual_update/torch_manual_sgd.py",
                        skipped=("learning_rate", "processed_gradients"))
    assert {"forward", "loss", "gradients", "parameters"} <= {d.stage for d in by["float64"].diffs}


@pytest.mark.slow
def test_tf1_assign_sub_update_against_a_hand_written_torch_update_agrees():
    # neither side has an optimizer to read: loss, raw gradients, parameters on both, nothing one-sided
    by, result = _agree("manual_update/tf1_assign_sub.py", "manual_update/torch_manual_sgd.py")
    assert {"forward", "loss", "gradients", "parameters"} <= {d.stage for d in by["float64"].diffs}
    assert any(n.startswith("reference: hand-written update") for n in result.notes), result.notes


# -- several optimizers (a GAN) ------------------------------------------------------------------------

def test_gan_torch_against_itself_compares_every_phase():
    by, _ = _agree("gan/torch_gan.py", "gan/torch_gan.py")
    c = by["float64"]
    assert _names(c, "loss") == {"phase1/loss", "phase2/loss", "phase3/loss"}
    params = _names(c, "parameters")
    assert {n.split("/")[0] for n in params} == {"phase1", "phase2", "phase3"}
    # each phase reports only its own optimizer's parameters: D in phase 1, G in phases 2 and 3
    assert all(n.startswith("phase1/D.") for n in params if n.startswith("phase1/")), params
    assert all(n.split("/")[1].startswith("G.") for n in params if not n.startswith("phase1/")), params
    assert {n.split("/")[0] for n in _names(c, "slots")} == {"phase1", "phase2", "phase3"}
    assert "phase1/lr" in _names(c, "learning_rate")


def test_gan_generator_stepped_once_is_a_structure_issue_at_phase3():
    by, _ = _compare("gan/torch_gan.py", "gan/torch_gan_g_once.py")
    for dtype, c in by.items():
        assert not c.ok and c.first is not None, f"{dtype}: should diverge"
        assert c.first.step == 0 and c.first.kind == "structure" and c.first.name.startswith("phase3/"), c.first


def test_gan_discriminator_betas_diverge_at_phase1_slots_step0():
    # Adam's first update is lr*g/|g| whatever beta1: the parameters agree at step 0, D's first moment does not
    by, _ = _compare("gan/torch_gan.py", "gan/torch_gan_d_betas.py")
    for dtype, c in by.items():
        assert not c.ok and c.first is not None, f"{dtype}: should diverge"
        assert (c.first.step, c.first.stage) == (0, "slots") and c.first.name.startswith("phase1/D."), c.first
        assert c.first.name.split("[")[0].endswith("/m"), c.first


def test_gan_discriminator_rate_diverges_first_at_phase1_parameters(tmp_path):
    # D's rate differs: phase 1's parameters differ at step 0, and every later phase's loss with them; the
    # first divergence is the earliest in time (phase 1, parameters), not the earliest stage (phase 2, loss)
    src = open(os.path.join(EXAMPLES, "gan", "torch_gan.py")).read()
    planted = src.replace("optD = torch.optim.Adam(netD.parameters(), lr=LR,", "optD = torch.optim.Adam(netD.parameters(), lr=2 * LR,")
    assert planted != src
    path = tmp_path / "torch_gan_d_lr.py"
    path.write_text(planted)
    from parity.program.prepare import compare_programs

    result = compare_programs(os.path.join(EXAMPLES, "gan", "torch_gan.py"), str(path), steps=2, dtypes=("float64",))
    c = result.comparisons[0]
    assert (c.first.step, c.first.name.split("/")[0]) == (0, "phase1"), c.first


def test_an_optimizer_subclass_calling_super_step_is_one_phase(tmp_path):
    # corpus 02's port steps an Adam subclass whose step() calls super().step(): torch runs the step hooks
    # twice, which counted six phases for D, G, G; one step() of the program is one phase
    src = open(os.path.join(EXAMPLES, "gan", "torch_gan.py")).read()
    sub = src.replace("netG, netD = Generator(), Discriminator()\n", "netG, netD = Generator(), Discriminator()\n\n\n"
                      "class MyAdam(torch.optim.Adam):\n    def step(self, closure=None):\n"
                      "        return super().step(closure)\n\n\n")
    sub = sub.replace("optD = torch.optim.Adam(", "optD = MyAdam(").replace("optG = torch.optim.Adam(", "optG = MyAdam(")
    assert sub.count("MyAdam(") == 3  # the class and the two optimizers
    path = tmp_path / "torch_gan_subclass.py"
    path.write_text(sub)
    from parity.program.prepare import compare_programs

    result = compare_programs(os.path.join(EXAMPLES, "gan", "torch_gan.py"), str(path), steps=2, dtypes=("float64",))
    c = result.comparisons[0]
    assert c.ok, c.first
    assert _names(c, "loss") == {"phase1/loss", "phase2/loss", "phase3/loss"}


@pytest.mark.slow
def test_tf1_gan_against_its_torch_port_agrees_phase_by_phase():
    by, _ = _agree("gan/tf1_gan.py", "gan/torch_gan.py")
    c = by["float64"]
    assert _names(c, "loss") == {"phase1/loss", "phase2/loss", "phase3/loss"}
    assert {n.split("/")[0] for n in _names(c, "slots")} == {"phase1", "phase2", "phase3"}


@pytest.mark.slow
def test_tf1_gan_against_a_port_with_other_discriminator_betas_diverges_at_phase1_slots():
    by, _ = _compare("gan/tf1_gan.py", "gan/torch_gan_d_betas.py", dtypes=("float64",))
    c = by["float64"]
    assert not c.ok and (c.first.step, c.first.stage) == (0, "slots"), c.first
    assert c.first.name.startswith("phase1/discriminator/"), c.first


def test_tf1_program_forms_split_the_lists_into_phases():
    from parity.errors import ParityError
    from tf_impl.v1.capture.phases import KEY, program_forms, take

    out = program_forms({"inputs": {}, "train_op": ["d", "g", "g"], "loss": ["ld", "lg", "lg"]}, "f.py")
    assert (out["train_op"], out["loss"], out["optimizer"]) == ("d", "ld", None)
    rest, phases = take(out)
    assert KEY not in rest and phases == [("ld", "d", None), ("lg", "g", None), ("lg", "g", None)]
    with pytest.raises(ParityError, match="one per train op"):
        program_forms({"train_op": ["d", "g"], "loss": ["ld"]}, "f.py")


# -- parity's own faults under the user's step: exit 4; the user's errors: exit 3 ------------------------

def _code(filename: str, source: str) -> dict:
    scope: dict = {}
    exec(compile(source, filename, "exec"), scope)
    return scope


def _raised(fn, *args) -> BaseException:
    try:
        fn(*args)
    except Exception as exc:  # the exception whose traceback is classified
        return exc
    raise AssertionError("nothing raised")


def test_parity_fault_is_a_crash_in_capture_code_under_the_users_step(tmp_path):
    from parity.run.boundary import parity_fault

    capture = os.path.join(ROOT, "torch_impl", "capture", "_fault_probe.py")  # a name only: no file is written
    torch_lib = os.path.join(ROOT, ".venv", "lib", "python3", "site-packages", "torch", "_fake.py")
    user = _code(str(tmp_path / "user.py"), "def train_step(hook):\n    return hook()\n"
                 "def bad_step(hook):\n    raise ValueError('the user')\n")
    ours = _code(capture, "def hook():\n    return {}['missing']\n"
                 "def step(fn, hook):\n    return fn(hook)\n"
                 "def __torch_function__(func):\n    raise TypeError('a torch op refused the user input')\n"
                 "def through(fn):\n    return fn()\n")
    lib = _code(torch_lib, "def op():\n    raise RuntimeError('shape mismatch')\n")
    # a capture hook crashing while the user's train_step runs: parity's own bug
    assert parity_fault(_raised(ours["step"], user["train_step"], ours["hook"]))
    # the user's own code raising under parity's call: the user's
    assert not parity_fault(_raised(ours["step"], user["bad_step"], ours["hook"]))
    # a framework error under capture code (the user's input passed through): the user's
    assert not parity_fault(_raised(ours["step"], user["train_step"], lambda: ours["through"](lib["op"])))
    # a pass-through frame (the recording mode of torch functions) raising as the framework would: the user's
    assert not parity_fault(_raised(ours["step"], user["train_step"], lambda: ours["__torch_function__"](None)))
    from parity.errors import ParityError

    assert not parity_fault(ParityError("bad input"))


def _captured(path: str):
    from parity.program.load import capture, load_program

    return capture(load_program(path), "float64")


def test_a_capture_hook_crash_in_the_users_step_is_not_blamed_on_the_user():
    import types

    import numpy as np

    from parity.errors import PortError
    from parity.run.boundary import call

    prog = _captured(os.path.join(EXAMPLES, "gan", "torch_gan.py"))
    rng = np.random.default_rng(0)
    batch = {"x": rng.normal(size=(4, 6)), "z": rng.normal(size=(4, 4))}
    case = types.SimpleNamespace(name="diff:test")

    # parity's own state broken (its table of parameter names emptied): its step pre-hook, run inside the
    # user's optD.step(), fails on it
    names = prog._pnames
    prog._pnames = {}
    with pytest.raises(KeyError):  # not a PortError: parity's bug, exit 4
        call("torch", "step 0", case, prog.step, batch)
    prog._pnames = names

    def users_bug(batch):
        raise ValueError("the user's own step")

    prog.train_step = users_bug
    with pytest.raises(PortError, match="the user's own step"):  # exit 3
        call("torch", "step 0", case, prog.step, batch)


def test_a_capture_crash_in_the_probe_through_the_users_step_is_paritys(monkeypatch, tmp_path):
    # the probe forward runs the user's train_step with parity's muted optimizer steps; parity's code there
    # crashing reaches compare_programs as itself (exit 4), not as a ProgramError (exit 3)
    import torch_impl.capture.phases as phases

    from parity.errors import ParityError
    from parity.program.prepare import compare_programs

    capture = os.path.join(ROOT, "torch_impl", "capture", "_fault_probe.py")  # a name only: no file is written
    broken = _code(capture, "def phases_of(opt):\n    raise KeyError('a bug in the capture')\n")["phases_of"]
    monkeypatch.setattr(phases, "phases_of", broken)
    gan = os.path.join(EXAMPLES, "gan", "torch_gan.py")
    with pytest.raises(KeyError, match="a bug in the capture") as info:
        compare_programs(gan, gan, steps=1, dtypes=("float64",))
    assert not isinstance(info.value, ParityError)
