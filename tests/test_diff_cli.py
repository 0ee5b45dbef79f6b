"""`parity diff`: bad input is one line on stderr and exit 2; a crash of the user's code exit 3."""

from __future__ import annotations

import json
import os
import re

import pytest

pytest.importorskip("torch")

from parity.cli.main import main  # noqa: E402

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "programs")


def fix(name):
    return os.path.join(FIX, name)


def run(capsys, *argv):
    rc = main(["diff", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("parity:")]
    assert len(lines) == 1 and err.strip().count("\n") == 0, err
    return lines[0]


def test_agreeing_programs_exit_0_and_print_the_mapping(capsys):
    rc, out, err = run(capsys, fix("tiny_mlp.py"), fix("tiny_mlp.py"), "--steps", "2")
    assert rc == 0, err
    assert "variables:" in out and "0.weight" in out and "f32 " in out and "agree" in out  # f32: the float32 pair


def test_a_file_without_the_function(capsys):
    rc, out, err = run(capsys, fix("tiny_mlp.py"), fix("tiny_no_function.py"))
    assert rc == 2
    assert "parity_program" in one_line_error(err)


def test_an_object_of_the_wrong_kind(capsys):
    rc, out, err = run(capsys, fix("tiny_mlp.py"), fix("tiny_wrong_kind.py"))
    assert rc == 2
    line = one_line_error(err)
    assert "'model' must be a torch.nn.Module, got str" in line


def test_models_of_different_sizes(capsys):
    rc, out, err = run(capsys, fix("tiny_mlp.py"), fix("tiny_mlp_wide.py"))
    assert rc == 2
    line = one_line_error(err)
    assert "different sizes" in line and "0.weight [8, 4]" in line and "0.weight [16, 4]" in line
    # no mapping file pairs an [8, 4] with a [16, 4] kernel: the line says what else to do (corpus 02's refusal)
    assert line.endswith("align the port's architecture in a copy of it first"), line[-200:]


def test_a_mapping_that_cannot_resolve(capsys, tmp_path):
    path = tmp_path / "m.json"
    rc, out, err = run(capsys, fix("tiny_mlp.py"), fix("tiny_mlp.py"), "--steps", "1", "--save-mapping", str(path))
    assert rc == 0 and path.exists()
    data = json.loads(path.read_text())
    data["params"][0]["port"] = "encoder.weight"  # a name the port does not have
    path.write_text(json.dumps(data))
    rc, out, err = run(capsys, fix("tiny_mlp.py"), fix("tiny_mlp.py"), "--mapping", str(path))
    assert rc == 2
    assert "port has no 'encoder.weight'" in one_line_error(err)
    path.write_text("{not json")
    rc, out, err = run(capsys, fix("tiny_mlp.py"), fix("tiny_mlp.py"), "--mapping", str(path))
    assert rc == 2 and "not readable JSON" in one_line_error(err)


def test_a_missing_file(capsys):
    rc, out, err = run(capsys, fix("tiny_mlp.py"), fix("nowhere.py"))
    assert rc == 2 and "does not exist" in one_line_error(err)


def test_a_crash_of_the_users_code_is_exit_3(capsys):
    rc, out, err = run(capsys, fix("tiny_mlp.py"), fix("tiny_crash.py"), "--steps", "1", "--dtype", "float64")
    assert rc == 3
    assert "my training step is broken" in err


def test_json_report(capsys, tmp_path):
    path = tmp_path / "r.json"
    rc, out, err = run(capsys, fix("tiny_mlp.py"), fix("tiny_mlp.py"), "--steps", "1", "--json", str(path), "--quiet-mapping")
    assert rc == 0
    data = json.loads(path.read_text())
    assert data["kind"] == "diff" and data["exit_code"] == 0
    assert data["extra"]["mapping"]["params"][0]["reference"] == "0.weight"



def test_a_program_that_cannot_run_in_float64_is_reported_for_that_dtype_only(capsys, monkeypatch, tmp_path):
    # What the TF1 adapter raises when a float64 rebuild is impossible: that dtype says why and
    # how to fix it, float32 still runs, and it is not a crash (exit 1, not 3).
    import shutil

    import torch_impl.capture as tc
    from parity.portkit.program import DtypeError

    port = str(tmp_path / "port_mlp.py")
    shutil.copy(fix("tiny_mlp.py"), port)
    real = tc.capture

    def capture(build, *, dtype, where="program"):
        if dtype == "float64" and where == port:
            raise DtypeError("float64: the learning rate is a float32 constant; fix: tf.constant(0.01, tf.float64)")
        return real(build, dtype=dtype, where=where)

    monkeypatch.setattr(tc, "capture", capture)
    monkeypatch.setenv("PARITY_WORKERS", "0")  # the adapter is patched in this process: the programs run here
    rc, out, err = run(capsys, fix("tiny_mlp.py"), port, "--steps", "2")
    assert rc == 1, err
    assert "DtypeError" in out and "fix: tf.constant(0.01, tf.float64)" in out
    assert re.search(r"f32 \S+ vs \S+ (exact|rounding)", out), out  # the float32 pair ran and agrees


def test_a_float32_only_run_measures_its_envelope_with_unreported_float64_runs(capsys):
    # without the float64 runs there is no float32 envelope (corpus 05's ResNet20: a float32-only run
    # flagged rel 0.056 at step 1 that the run with both dtypes accepts at 0.5 of its envelope): they run, unreported
    rc, out, _ = run(capsys, fix("tiny_mlp.py"), fix("tiny_mlp.py"), "--steps", "1", "--dtype", "float32")
    assert rc == 0
    flat = out.replace("\n      ", " ")
    assert "float32 only: the float64 runs ran to measure each program's float32 rounding" in flat
    assert "f32 torch vs torch:port" in out and "f64 torch" not in out
    rc, out, _ = run(capsys, fix("tiny_mlp.py"), fix("tiny_mlp.py"), "--steps", "1")
    assert "float32 only" not in out
