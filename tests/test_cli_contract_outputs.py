"""The command line's contract for its outputs (issue 11): exit codes, files, strict JSON, Ctrl-C, one line per problem.

Exit codes: 1 diverged, 2 bad input (an unwritable or impossible output path, a corrupted
trace, a bad option: one line, nothing run), 4 parity's own bug, 130 interrupted (no file
left half-written). ``main()`` runs in this process; the JSON is strict and validated
against ``docs/report-schema.json``. A user's port: tests/test_cli_contract_ports.py;
without TensorFlow: tests/test_cli_contract_no_tf.py.
"""

import os

import numpy as np
import pytest

from _cli_support import ROOT, one_error_line, run_main, strict_json, validate, unwritable_dir


# -- strict JSON -----------------------------------------------------------------------------


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
    doc = strict_json(text)
    validate(doc)
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
    skipped = strict_json(out_json.read_text())["cases"][0]["dtypes"][0]["comparisons"][0]["stages_skipped"]
    assert skipped == [{"stage": "gradients", "only_in": "tf1"}]


def test_pitfall_catalogue_section_is_schema_valid():
    """run --all's catalogue rows (a NaN magnitude where nothing diverged) in strict JSON."""
    from parity.tools.pitfall_check import PitfallResult
    from parity.report.text import to_json

    row = PitfallResult(pitfall="adam_epsilon", caught=False, named_first=False, first_divergence="-",
                        magnitude=float("nan"), right_clean=True)
    doc = strict_json(to_json([], {}, {"pitfalls": [dict(vars(row))], "pitfall_seconds": 1.5, "wall_seconds": 2.0}))
    validate(doc)
    assert doc["pitfalls"][0]["magnitude"] == "nan" and doc["exit_code"] == 0


# -- internal errors, Ctrl-C, atomic writes ------------------------------------------------


def test_internal_error_is_one_bug_report_line(capsys, monkeypatch):
    import parity.cli.main

    def boom(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setitem(parity.cli.main.COMMANDS, "list", boom)
    code, out, err = run_main(capsys, "list")
    assert code == 4
    line = one_error_line(err)
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


# -- bad input: one line, exit 2, nothing run -----------------------------------------------



@pytest.mark.parametrize("option", ["--json", "--traces"])
def test_unwritable_output_is_exit_2_before_any_port_runs(capsys, tmp_path, option, monkeypatch):
    import parity.run.runner

    def must_not_run(*a, **k):
        raise AssertionError("a port ran before the output path was checked")

    monkeypatch.setattr(parity.run.runner, "run_case", must_not_run)
    target = os.path.join(unwritable_dir(tmp_path), "sub", "r.json" if option == "--json" else "traces")
    code, out, err = run_main(capsys, "run", "seed004_oscillate", option, target)
    assert code == 2, out + err
    assert f"cannot write {option}" in one_error_line(err)


def test_unwritable_record_output_is_exit_2_before_the_port_runs(capsys, tmp_path, monkeypatch):
    import parity.run.runner

    monkeypatch.setattr(parity.run.runner, "run_port", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran")))
    target = os.path.join(unwritable_dir(tmp_path), "w.npz")
    code, _, err = run_main(capsys, "record", "seed004_oscillate", "--port", "numpy", "-o", target)
    assert code == 2 and "cannot write -o" in one_error_line(err)


def test_json_into_a_path_under_a_file_is_one_line(capsys, tmp_path):
    (tmp_path / "afile").write_text("")
    code, _, err = run_main(capsys, "compare", "a.npz", "b.npz", "--json", tmp_path / "afile" / "r.json")
    assert code == 2 and "cannot write --json" in one_error_line(err)


def test_bad_frameworks_option_is_one_line(capsys):
    code, _, err = run_main(capsys, "run", "seed004_oscillate", "--frameworks", "torch,jax")
    assert code == 2 and "unknown framework 'jax'" in one_error_line(err)


def test_compare_on_a_trace_corrupted_mid_file_is_one_line(capsys, tmp_path):
    a = tmp_path / "a.trace"
    assert run_main(capsys, "record", "seed004_oscillate", "--port", "numpy", "-o", a)[0] == 0
    data = bytearray(a.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 16):
        data[i] ^= 0xFF
    bad = tmp_path / "bad.trace"
    bad.write_bytes(bytes(data))
    code, _, err = run_main(capsys, "compare", a, bad)
    assert code == 2 and str(bad) in one_error_line(err)


def test_docs_outside_a_source_tree_needs_out(capsys, monkeypatch, tmp_path):
    import parity.tools.docs

    monkeypatch.setattr(parity.tools.docs, "source_docs_dir", lambda: None)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(capsys, "docs")
    assert code == 2 and "--out DIR" in one_error_line(err)
    assert os.listdir(tmp_path) == []


# -- documented ------------------------------------------------------------------------------


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
