"""The command line's contract (issue 11): exit codes, one line per problem, refusals, writes, JSON, torch-only use.

Exit codes: 0 behaved, 1 diverged, 2 bad input, 3 a port crashed, 4 parity's own bug, 130
interrupted. Each row of issue 11's table has a test here. Most run in this process (no
framework start-up); the TF-free ones that must prove TensorFlow is never imported run in
a subprocess whose import system refuses ``tensorflow`` (a sitecustomize on PYTHONPATH).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = os.path.join(ROOT, "docs", "report-schema.json")

# A user's port of the seed-004 "oscillate" / "nothing to train" cases, in plain numpy (it
# stands in for a torch port: the protocol is the same). MODE picks how it misbehaves; the
# line numbers the tests look for are those of the `raise` / `sys.exit` lines below.
PORT = '''\
import sys
import numpy as np

MODE = {mode!r}


def framework_info():
    return {{"version": "user", "device": "cpu"}}


class Port:
    def __init__(self, case, dtype):
        if MODE == "nameerror":
            undefined_name_in_build  # noqa: F821 -- the user's bug
        if not case.trainable:
            raise ValueError("optimizer got an empty parameter list")
        self.dt = np.dtype(dtype)
        self.lr = self.dt.type(case.option("lr", 1.0))
        self.p = {{}}

    def parameters(self):
        return {{k: v.copy() for k, v in self.p.items()}}

    def load(self, params):
        self.p = {{k: np.array(v, dtype=self.dt) for k, v in params.items()}}

    def step(self, batch):
        if MODE == "raise":
            raise RuntimeError("the user's step failed")
        if MODE == "exit":
            sys.exit(3)
        x, y = self.dt.type(batch["x"]), self.dt.type(batch["y"])
        w = self.p["w"]
        pred = w * x
        g = 2 * w * x * x - 2 * y * x
        if MODE == "wrong":
            g = g * 1.5
        self.p["w"] = w - self.lr * g
        out = {{"forward": {{"prediction": np.asarray(pred)}}, "loss": {{"loss": np.asarray((y - pred) ** 2)}},
               "gradients": {{"w": np.asarray(g)}}, "learning_rate": {{"lr": np.asarray(self.lr)}},
               "parameters": self.parameters()}}
        if MODE == "none":
            return None
        if MODE == "float_stage":
            out["loss"] = float((y - pred) ** 2)
        if MODE == "own_stage":
            out["my_stage"] = {{"x": np.asarray(1.0)}}
        return out


def build(case, dtype, variant=None):
    return Port(case, dtype)
'''


def _port(tmp_path, mode: str) -> str:
    path = tmp_path / f"user_port_{mode}.py"
    path.write_text(PORT.format(mode=mode))
    return str(path)


def _line_of(path: str, needle: str) -> int:
    with open(path) as fh:
        return next(i for i, line in enumerate(fh, 1) if needle in line)


def run_main(capsys, *args):
    from parity.cli.main import main

    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_error_line(err: str) -> str:
    lines = [l for l in err.strip().splitlines() if l.startswith("parity: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _strict(text: str):
    def no_constant(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=no_constant)


def _validate(doc):
    import jsonschema

    with open(SCHEMA) as fh:
        schema = json.load(fh)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


# -- the TF-free subprocesses: TensorFlow blocked at import --------------------------------

BLOCKER = """\
import sys

# Simulate a machine without TensorFlow: `import tensorflow` raises ModuleNotFoundError and
# importlib.util.find_spec("tensorflow") returns None, as when it is not installed.
for _name in ("tensorflow", "tf_keras", "keras"):
    sys.modules[_name] = None
"""


@pytest.fixture(scope="module")
def no_tf(tmp_path_factory):
    """Run ``python -m parity ARGS`` in a subprocess where TensorFlow is not importable."""
    site = tmp_path_factory.mktemp("no_tf_site")
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), ROOT]), TF_CPP_MIN_LOG_LEVEL="3")

    def run(*args, cwd=None):
        return subprocess.run([sys.executable, "-m", "parity", *map(str, args)], capture_output=True, text=True,
                              env=env, cwd=cwd or ROOT, timeout=600)

    return run


def test_without_tensorflow_every_tf_free_command_works(no_tf, tmp_path):
    """list / pitfalls / run / check / record / compare need no TF; TF ports are 'not run' with one note."""
    proc = no_tf("list")
    assert proc.returncode == 0 and "seed004_oscillate" in proc.stdout, proc.stderr
    proc = no_tf("pitfalls")
    assert proc.returncode == 0, proc.stderr
    name = proc.stdout.split()[0]
    proc = no_tf("explain", name)
    assert proc.returncode == 0 and name in proc.stdout, proc.stderr
    # run (one process: torch starts once): the TF ports are listed as not run, one note with
    # the install command, torch vs numpy compared; a must-refuse case checks torch's refusal
    # only (the TF ports are not run, never a pass); a case whose every port needs TF is not run.
    out = tmp_path / "r.json"
    proc = no_tf("run", "seed004_oscillate", "seed004_nothing_to_train", "seed002_keras_sgd_momentum",
                 "--dtype", "float64", "--json", out, "-v")  # -v: a line per pair
    assert proc.returncode == 0, proc.stdout + proc.stderr
    notes = [l for l in proc.stderr.splitlines() if l.startswith("note:")]
    assert len(notes) == 1 and "TensorFlow is not installed" in notes[0] and "pip install" in notes[0], proc.stderr
    assert "torch vs numpy" in proc.stdout and "refused (expected)" in proc.stdout
    assert "seed004_nothing_to_train: tf1, tf2 not run: TensorFlow is not installed" in " ".join(proc.stdout.split())
    assert "tf1                  float64" not in proc.stdout  # no TF row claims a refusal
    assert "not run (no port could run): seed002_keras_sgd_momentum" in proc.stdout
    doc = _strict(out.read_text())
    _validate(doc)
    oscillate, nothing, keras = doc["cases"]
    assert {p["port"] for p in oscillate["ports_not_run"]} == {"tf1", "tf1:minimize", "tf2"}
    assert oscillate["status"] == "passed" and oscillate["ports"] == ["torch", "numpy"]
    assert nothing["status"] == "passed" and nothing["ports"] == ["torch"]
    assert keras["status"] == "not_run" and doc["summary"]["not_run"] == ["seed002_keras_sgd_momentum"]
    assert "TensorFlow is not installed" in doc["frameworks"]["not_installed"]["tf1"]
    # record a TF port: one line, exit 2, the install command.
    proc = no_tf("record", "seed004_oscillate", "--port", "tf1", "-o", tmp_path / "t.trace")
    assert proc.returncode == 2 and "pip install" in _one_error_line(proc.stderr)
    # record + compare without TF (the user's file in the second: no torch start-up again).
    a, b = tmp_path / "numpy.trace", tmp_path / "user.trace"
    assert no_tf("record", "seed004_oscillate", "--port", "numpy", "-o", a).returncode == 0
    proc = no_tf("record", "seed004_oscillate", "--port", "numpy", "--port-file", _port(tmp_path, "ok"), "-o", b)
    assert proc.returncode == 0, proc.stderr
    proc = no_tf("compare", a, b)
    assert proc.returncode == 0 and "exact" in proc.stdout, proc.stderr
    # check a user's torch port: compared with the numpy port, the TF ones not run.
    proc = no_tf("check", "seed004_oscillate", "--torch-port", _port(tmp_path, "ok"), "--dtype", "float64")
    assert proc.returncode == 0 and "numpy vs torch" in proc.stdout, proc.stdout + proc.stderr  # yours last


def test_port_calling_sys_exit_is_a_crash_with_its_line(no_tf, tmp_path):
    port = _port(tmp_path, "exit")
    proc = no_tf("record", "seed004_oscillate", "--port", "numpy", "--port-file", port, "-o", tmp_path / "x.npz")
    assert proc.returncode == 3, proc.stderr
    line = _one_error_line(proc.stderr)
    assert "sys.exit(3)" in line and f"{os.path.basename(port)}:{_line_of(port, 'sys.exit(3)')}" in line, line
    assert not (tmp_path / "x.npz").exists()


def test_traceback_after_the_subcommand(no_tf, tmp_path):
    proc = no_tf("record", "seed004_oscillate", "--port", "numpy", "--port-file", _port(tmp_path, "raise"),
                 "-o", tmp_path / "x.npz", "--traceback")
    assert proc.returncode == 3 and "Traceback (most recent call last)" in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("parity: error:")


def test_docs_in_a_users_project_does_not_touch_its_docs(no_tf, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "cases.md").write_text("the user's own page\n")
    out = tmp_path / "generated"
    proc = no_tf("docs", "--out", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (out / "cases.md").exists() and (tmp_path / "docs" / "cases.md").read_text() == "the user's own page\n"


# -- in-process: refusals -------------------------------------------------------------------


def test_every_must_refuse_case_states_its_refusals():
    from parity.cases.registry import all_cases

    for case in all_cases():
        if case.expect == "error":
            missing = [p for p in case.ports if case.expected_refusal(p) is None]
            assert not missing, f"{case.name}: no Refusal stated for {missing}"


def test_refusal_matching():
    from parity.cases.case import Refusal
    from parity.cases.registry import get_case
    from parity.run.result import refusal_matches
    from parity.errors import PortError

    case = get_case("seed004_nothing_to_train")
    right = PortError("torch", "build", ValueError("optimizer got an empty parameter list"))
    assert refusal_matches(case, "torch", right)
    assert not refusal_matches(case, "torch", PortError("torch", "build", NameError("name 'x' is not defined")))
    # the right type in other words is not the refusal either
    assert not refusal_matches(case, "torch", PortError("torch", "build", ValueError("something else")))
    # a missing framework (ModuleNotFoundError) never counts as a refusal
    assert not refusal_matches(case, "tf1", PortError("tf1", "setup", ModuleNotFoundError("No module named 'tensorflow'")))
    # a subclass of the stated type matches
    class Sub(ValueError):
        pass

    assert Refusal("ValueError", "x").matches([c.__name__ for c in Sub.__mro__], "x")


def test_a_users_nameerror_in_a_must_refuse_case_is_a_crash_with_both_shown(capsys, tmp_path):
    port = _port(tmp_path, "nameerror")
    code, out, err = run_main(capsys, "check", "seed004_nothing_to_train", "--torch-port", port,
                              "--frameworks", "torch", "--dtype", "float64")
    assert code == 3, out + err
    assert "WRONG REFUSAL" in out
    assert "must refuse with ValueError matching /optimizer got an empty parameter list/" in " ".join(out.split())  # wrapped to the width
    assert "it raised NameError" in out
    assert f"{os.path.basename(port)}:{_line_of(port, 'undefined_name_in_build')}" in out


def test_a_users_right_refusal_passes(capsys, tmp_path):
    code, out, err = run_main(capsys, "check", "seed004_nothing_to_train", "--torch-port", _port(tmp_path, "ok"),
                              "--frameworks", "torch", "--dtype", "float64")
    assert code == 0 and "refused (expected)" in out, out + err


# -- in-process: crashes, divergences, internal errors, Ctrl-C -----------------------------


def test_a_ports_own_exception_in_check_names_file_and_line(capsys, tmp_path):
    port = _port(tmp_path, "raise")
    code, out, err = run_main(capsys, "check", "seed004_oscillate", "--torch-port", port,
                              "--frameworks", "torch,numpy", "--dtype", "float64")
    assert code == 3, out + err
    assert "CRASH" in out and f"{os.path.basename(port)}:{_line_of(port, 'raise RuntimeError')}" in out
    assert "raised RuntimeError during step 0: the user's step failed" in _one_error_line(err)


def test_a_diverging_users_port_exits_1_and_writes_strict_json(capsys, tmp_path):
    out_json = tmp_path / "deep" / "er" / "r.json"  # the directories are created
    code, out, err = run_main(capsys, "check", "seed004_oscillate", "--torch-port", _port(tmp_path, "wrong"),
                              "--frameworks", "torch,numpy", "--json", out_json)
    assert code == 1, out + err
    doc = _strict(out_json.read_text())
    _validate(doc)
    (case,) = doc["cases"]
    assert case["status"] == "failed" and doc["exit_code"] == 1 and doc["kind"] == "check"
    cmp = case["dtypes"][0]["comparisons"][0]
    first = cmp["first_divergence"]
    assert first["step"] == 0 and first["stage"] == "gradients" and first["a_value"] != first["b_value"]
    assert cmp["diagnosis"]["status"] in ("named", "unknown")
    assert {p["port"] for p in case["ports_not_run"]} == {"tf1", "tf1:minimize", "tf2"}


def test_nonfinite_numbers_are_strings_in_json(tmp_path, capsys):
    """A trace with inf/nan: `compare --json` on a case not in the registry writes strict JSON."""
    from parity.trace.memory import Trace, save

    def trace(port, w):
        t = Trace(manifest={"case": "my_own_model", "port": port, "dtype": "float64", "framework": port})
        t.add_step({"loss": {"loss": np.array(1.0)}, "parameters": {"w": np.array(w)}})
        return save(t, tmp_path / f"{port}.npz")

    a, b = trace("tf1", [1.0, np.inf]), trace("torch", [np.nan, 2.0])
    out_json = tmp_path / "c.json"
    code, out, err = run_main(capsys, "compare", a, b, "--json", out_json)
    assert code == 1, out + err
    text = out_json.read_text()
    assert "Infinity" not in text and "NaN" not in text
    doc = _strict(text)
    _validate(doc)
    (case,) = doc["cases"]
    assert case["registered"] is False and case["case"] == "my_own_model" and doc["kind"] == "compare"
    worst = case["dtypes"][0]["comparisons"][0]["worst_by_stage"]
    assert any(w["max_rel"] == "inf" for w in worst)


def test_omitted_stage_is_said_even_on_a_passing_comparison(tmp_path, capsys):
    from parity.trace.memory import Trace, save

    def trace(port, stages):
        t = Trace(manifest={"case": "my_own_model", "port": port, "dtype": "float64"})
        t.add_step(stages)
        return save(t, tmp_path / f"{port}.npz")

    a = trace("tf1", {"loss": {"loss": np.array(1.0)}, "gradients": {"w": np.array(0.5)}})
    b = trace("torch", {"loss": {"loss": np.array(1.0)}})
    out_json = tmp_path / "c.json"
    code, out, _ = run_main(capsys, "compare", a, b, "--json", out_json)
    assert code == 0 and "not compared: gradients (only tf1 reports it)" in out
    skipped = _strict(out_json.read_text())["cases"][0]["dtypes"][0]["comparisons"][0]["stages_skipped"]
    assert skipped == [{"stage": "gradients", "only_in": "tf1"}]


def test_internal_error_is_one_bug_report_line(capsys, monkeypatch):
    import parity.cli.main

    def boom(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setitem(parity.cli.main.COMMANDS, "list", boom)
    code, out, err = run_main(capsys, "list")
    assert code == 4
    line = _one_error_line(err)
    assert "internal error: ZeroDivisionError: a bug" in line and "report" in line


def test_ctrl_c_while_record_saves_leaves_no_file(capsys, monkeypatch, tmp_path):
    import parity.trace.file

    real_step = parity.trace.file.TraceWriter.step

    def interrupted_step(self, stages):
        real_step(self, stages)  # steps are written to the temporary path as they come...
        if self.steps == 2:
            raise KeyboardInterrupt  # ...and Ctrl-C comes before the run completes

    monkeypatch.setattr(parity.trace.file.TraceWriter, "step", interrupted_step)
    out = tmp_path / "w.npz"
    code, _, err = run_main(capsys, "record", "seed004_oscillate", "--port", "numpy", "-o", out)
    assert code == 130 and "interrupted" in err
    assert os.listdir(tmp_path) == []


def test_atomic_write_keeps_the_old_file_on_interrupt(tmp_path):
    from parity.io import atomic_write

    path = tmp_path / "r.json"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(path) as fh:
            fh.write("new, half written")
            raise KeyboardInterrupt
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["r.json"]
    with atomic_write(path) as fh:
        fh.write("new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["r.json"]


def _unwritable_dir(tmp_path) -> str:
    """A directory this process cannot write: chmod 555, or (as root, who ignores modes) one under /sys."""
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    try:
        (d / "probe").write_text("")
    except OSError:
        return str(d)
    (d / "probe").unlink()
    return "/sys/parity-cannot-write-here"


@pytest.mark.parametrize("option", ["--json", "--traces"])
def test_unwritable_output_is_exit_2_before_any_port_runs(capsys, tmp_path, option, monkeypatch):
    import parity.run.runner

    def must_not_run(*a, **k):
        raise AssertionError("a port ran before the output path was checked")

    monkeypatch.setattr(parity.run.runner, "run_case", must_not_run)
    target = os.path.join(_unwritable_dir(tmp_path), "sub", "r.json" if option == "--json" else "traces")
    code, out, err = run_main(capsys, "run", "seed004_oscillate", option, target)
    assert code == 2, out + err
    assert f"cannot write {option}" in _one_error_line(err)


def test_unwritable_record_output_is_exit_2_before_the_port_runs(capsys, tmp_path, monkeypatch):
    import parity.run.runner

    monkeypatch.setattr(parity.run.runner, "run_port", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran")))
    target = os.path.join(_unwritable_dir(tmp_path), "w.npz")
    code, _, err = run_main(capsys, "record", "seed004_oscillate", "--port", "numpy", "-o", target)
    assert code == 2 and "cannot write -o" in _one_error_line(err)


def test_json_into_a_path_under_a_file_is_one_line(capsys, tmp_path):
    (tmp_path / "afile").write_text("")
    code, _, err = run_main(capsys, "compare", "a.npz", "b.npz", "--json", tmp_path / "afile" / "r.json")
    assert code == 2 and "cannot write --json" in _one_error_line(err)


# -- check: must-diverge and nothing to compare with ---------------------------------------


def test_check_with_no_port_of_another_framework_refuses_with_a_reason(capsys, tmp_path):
    code, _, err = run_main(capsys, "check", "seed002_torch_renorm_eps", "--torch-port", _port(tmp_path, "ok"))
    assert code == 2
    assert "no port of another framework than torch" in _one_error_line(err)


def test_check_with_only_uninstalled_or_left_out_partners_refuses(capsys, tmp_path):
    code, _, err = run_main(capsys, "check", "seed004_oscillate", "--torch-port", _port(tmp_path, "ok"),
                            "--frameworks", "torch")
    assert code == 2 and "none of the ports to compare yours with can run" in _one_error_line(err)


def test_bad_frameworks_option_is_one_line(capsys):
    code, _, err = run_main(capsys, "run", "seed004_oscillate", "--frameworks", "torch,jax")
    assert code == 2 and "unknown framework 'jax'" in _one_error_line(err)


@pytest.mark.tf
@pytest.mark.torch
def test_check_on_a_must_diverge_case_says_what_it_means(capsys, tmp_path):
    """A right torch port in place of pitfall_sgd_dampening_wrong's wrong one: a pass, and the note says why."""
    from parity.cases.registry import get_case

    case = get_case("pitfall_sgd_dampening_wrong")
    port = tmp_path / "my_torch_port.py"  # the user's file: the reference torch port, re-exported
    port.write_text(f"from torch_impl.{case.module} import build, framework_info  # noqa: F401\n")
    code, out, err = run_main(capsys, "check", case.name, "--torch-port", port, "--dtype", "float64")
    note = [l for l in err.splitlines() if l.startswith("note:")]
    assert note and "must-diverge" in note[0] and "expects it to MATCH" in note[0], err
    assert code == 0, out + err
    assert "MISSED" not in out


def test_exit_codes_are_documented_in_help_and_readme(capsys):
    from parity.errors import EXIT_CODES

    from parity.cli.main import build_parser

    text = build_parser().format_help()
    with open(os.path.join(ROOT, "README.md")) as fh:
        readme = fh.read()
    for code in EXIT_CODES:
        assert f"  {code} " in text or f"  {code:<3d} " in text, code
        assert f"| {code} |" in readme, f"README lacks exit code {code}"
    assert "--frameworks" in readme and "report-schema.json" in readme


@pytest.mark.torch
def test_a_real_must_diverge_run_writes_schema_valid_json(capsys, tmp_path):
    """seed002_torch_renorm_eps (torch only): caught, exit 0, the first divergence with both values."""
    out_json = tmp_path / "r.json"
    code, out, err = run_main(capsys, "run", "seed002_torch_renorm_eps", "--json", out_json)
    assert code == 0 and "caught: SEMANTIC" in out, out + err
    doc = _strict(out_json.read_text())
    _validate(doc)
    cmp = doc["cases"][0]["dtypes"][0]["comparisons"][0]
    assert cmp["expect"] == "diverge" and cmp["behaved"] and not cmp["ok"]
    first = cmp["first_divergence"]
    assert (first["step"], first["stage"]) == (0, "constrained") and first["a_value"] != first["b_value"]


def test_refusals_and_crashes_in_json(capsys, tmp_path):
    out_json = tmp_path / "r.json"
    port = _port(tmp_path, "nameerror")
    code, _, _ = run_main(capsys, "check", "seed004_nothing_to_train", "--torch-port", port,
                          "--frameworks", "torch", "--dtype", "float64", "--json", out_json)
    assert code == 3
    doc = _strict(out_json.read_text())
    _validate(doc)
    (case,) = doc["cases"]
    (error,) = case["dtypes"][0]["errors"]
    assert case["status"] == "crashed" and doc["exit_code"] == 3 and case["user_ports"] == {"torch": port}
    assert doc["command"][:2] == ["check", "seed004_nothing_to_train"]
    assert error["exc_type"] == "NameError" and not error["as_expected"]
    assert error["expected_refusal"]["exc_type"] == "ValueError"
    assert error["where"]["line"] == _line_of(port, "undefined_name_in_build")
    assert {p["reason"] for p in case["ports_not_run"]} == {"left out by --frameworks"}


def test_docs_outside_a_source_tree_needs_out(capsys, monkeypatch, tmp_path):
    import parity.tools.docs

    monkeypatch.setattr(parity.tools.docs, "source_docs_dir", lambda: None)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(capsys, "docs")
    assert code == 2 and "--out DIR" in _one_error_line(err)
    assert os.listdir(tmp_path) == []


def test_pitfall_catalogue_section_is_schema_valid():
    """run --all's catalogue rows (a NaN magnitude where nothing diverged) in strict JSON."""
    from parity.tools.pitfall_check import PitfallResult
    from parity.report.text import to_json

    row = PitfallResult(pitfall="adam_epsilon", caught=False, named_first=False, first_divergence="-",
                        magnitude=float("nan"), right_clean=True)
    doc = _strict(to_json([], {}, {"pitfalls": [dict(vars(row))], "pitfall_seconds": 1.5, "wall_seconds": 2.0}))
    _validate(doc)
    assert doc["pitfalls"][0]["magnitude"] == "nan" and doc["exit_code"] == 0


@pytest.mark.parametrize("mode, says", [
    ("none", "step 0 returned NoneType"),
    ("float_stage", "stage 'loss' as a float"),
    ("own_stage", "unknown stage 'my_stage'"),
])
def test_a_port_breaking_the_protocol_is_a_crash_with_json(capsys, tmp_path, mode, says):
    out_json = tmp_path / "r.json"
    code, out, err = run_main(capsys, "check", "seed004_oscillate", "--torch-port", _port(tmp_path, mode),
                              "--frameworks", "torch,numpy", "--dtype", "float64", "--json", out_json)
    assert code == 3, out + err
    line = _one_error_line(err)
    assert "ProtocolError during step 0" in line and says in line, line
    doc = _strict(out_json.read_text())
    _validate(doc)
    assert doc["cases"][0]["dtypes"][0]["errors"][0]["exc_type"] == "ProtocolError"


def test_compare_on_a_trace_corrupted_mid_file_is_one_line(capsys, tmp_path):
    a = tmp_path / "a.trace"
    assert run_main(capsys, "record", "seed004_oscillate", "--port", "numpy", "-o", a)[0] == 0
    data = bytearray(a.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 16):
        data[i] ^= 0xFF
    bad = tmp_path / "bad.trace"
    bad.write_bytes(bytes(data))
    code, _, err = run_main(capsys, "compare", a, bad)
    assert code == 2 and str(bad) in _one_error_line(err)
