"""The command line: bad input is one line and exit code 2; record/compare/check round trips."""

import os
import re
import subprocess
import sys

import pytest

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def parity(*args, cwd=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "parity", *args], capture_output=True, text=True, cwd=cwd, env=env)


def run_main(capsys, *args):
    """Run the CLI in this process (the frameworks are already imported: no 5 s start-up each)."""
    from parity.cli.main import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_line_error(proc):
    assert proc.returncode == 2, proc.stderr
    lines = [l for l in proc.stderr.strip().splitlines() if l.startswith("parity: error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_help_describes_the_tool():
    proc = parity("--help")
    assert proc.returncode == 0 and "compare every stage" in proc.stdout and "exit codes" in proc.stdout


def test_unknown_case():
    line = _one_line_error(parity("run", "seed000_encoder3_tinyy"))
    assert "unknown case 'seed000_encoder3_tinyy'" in line and "did you mean seed000_encoder3_tiny" in line


def test_missing_trace(tmp_path):
    assert "does not exist" in _one_line_error(parity("compare", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")))


def test_corrupt_trace(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    assert "not a readable trace" in _one_line_error(parity("compare", str(bad), str(bad)))


def test_port_file_that_raises_at_import_is_a_crash_at_its_line():
    # the user's code raised: exit 3 (as any port crash), with the file and line, not exit 2 (bad input)
    proc = parity("check", "seed004_oscillate", "--torch-port", os.path.join(FIXTURES, "broken_port.py"))
    assert proc.returncode == 3, proc.stderr
    lines = [l for l in proc.stderr.strip().splitlines() if l.startswith("parity: error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "port file" in lines[0] and "raised ImportError at import: this port file is broken on purpose" in lines[0]
    assert re.search(r"broken_port\.py:\d+", lines[0]), lines[0]


def test_port_file_missing_functions(tmp_path):
    f = tmp_path / "empty_port.py"
    f.write_text("x = 1\n")
    assert "does not define build, framework_info" in _one_line_error(parity("check", "seed004_oscillate", "--torch-port", str(f)))


@pytest.mark.tf
@pytest.mark.torch
def test_record_then_compare(tmp_path, capsys):
    a, b = tmp_path / "tf1.npz", tmp_path / "torch.npz"
    assert run_main(capsys, "record", "seed004_oscillate", "--port", "tf1", "-o", str(a))[0] == 0
    assert run_main(capsys, "record", "seed004_oscillate", "--port", "torch", "-o", str(b))[0] == 0
    code, out, err = run_main(capsys, "compare", str(a), str(b))
    assert code == 0 and "exact" in out, out + err


@pytest.mark.tf
@pytest.mark.torch
def test_check_a_wrong_torch_port_exits_1_and_names_processed_gradients(tmp_path, capsys):
    out = tmp_path / "r.json"
    code, stdout, err = run_main(capsys, "check", "seed000_encoder3_clip_bites", "--torch-port",
                                 os.path.join(FIXTURES, "torch_encoder_no_clip.py"), "--dtype", "float64", "--json", str(out))
    assert code == 1, err
    assert "step 0, processed gradients" in stdout
    assert out.exists()


@pytest.mark.tf
@pytest.mark.torch
def test_run_reports_refusals_and_passes(capsys):
    code, out, err = run_main(capsys, "run", "seed004_nothing_to_train", "seed004_var_list", "--dtype", "float64")
    assert code == 0, out + err
    flat = " ".join(out.split())  # the details are wrapped to the terminal's width
    assert "No variables to optimize." in flat and "optimizer got an empty parameter list" in flat


def test_a_port_file_imports_the_module_beside_it(tmp_path):
    # as `python FILE` does: the file's own directory is on sys.path (the child interpreters never put the
    # working directory there), so a port split over two files works from any working directory
    from _cli_support import PORT

    src = tmp_path / "src"
    src.mkdir()
    (src / "my_helpers.py").write_text(PORT.format(mode="ok"))
    (src / "my_port.py").write_text("from my_helpers import build, framework_info  # noqa: F401\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = parity("check", "seed004_oscillate", "--torch-port", str(src / "my_port.py"), "--frameworks", "torch,numpy",
                  cwd=str(elsewhere))
    assert "my_helpers" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr + proc.stdout
