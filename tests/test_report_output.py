"""What the report writes, and where (issue 22): whole rows in a file, wrapped lists, a progress bar on
``diff``, the user's prints on stderr, no numpy warnings from parity's own computations."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from _cli_support import ROOT, PORT, run_main

FIX = os.path.join(ROOT, "tests", "fixtures", "programs")


def test_a_file_gets_every_row_whole(tmp_path):
    """Piped (not a terminal), COLUMNS does not cut the rows: no ellipsis, every verdict whole."""
    port = tmp_path / "user_port.py"
    port.write_text(PORT.format(mode="wrong"))
    env = dict(os.environ, COLUMNS="60")
    proc = subprocess.run(
        [sys.executable, "-m", "parity", "check", "seed004_oscillate", "--torch-port", str(port), "-v",
         "--frameworks", "torch,numpy"],
        capture_output=True, text=True, env=env, timeout=300, cwd=str(tmp_path),
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert "…" not in proc.stdout, proc.stdout
    lines = proc.stdout.splitlines()
    rows = [ln for ln in lines[: lines.index("")] if ln.startswith("seed004_oscillate ")]  # the table's
    assert len(rows) == 1 and "f64" in rows[0] and "f32" in rows[0], proc.stdout
    assert re.search(r"f32 .*(rounding|exact|SEMANTIC|caught|MISSED)", rows[0]), rows[0]


def _mapping_with_a_long_list(tmp_path, capsys):
    saved = tmp_path / "map.json"
    rc, out, err = run_main(capsys, "diff", os.path.join(FIX, "tiny_mlp.py"), os.path.join(FIX, "tiny_mlp.py"),
                            "--steps", "1", "--dtype", "float64", "--save-mapping", saved)
    assert rc == 0, err
    data = json.loads(saved.read_text())
    names = [f"block{i}.layer_norm.weight" for i in range(120)]
    data["not_compared"] = {"reference": names}
    saved.write_text(json.dumps(data))
    return saved, names


def test_a_long_not_compared_list_is_wrapped_whole(tmp_path, capsys):
    pytest.importorskip("torch")
    mapping, names = _mapping_with_a_long_list(tmp_path, capsys)
    rc, out, err = run_main(capsys, "diff", os.path.join(FIX, "tiny_mlp.py"), os.path.join(FIX, "tiny_mlp.py"),
                            "--steps", "1", "--dtype", "float64", "--mapping", mapping)
    assert rc == 0, err
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("not compared (reference)"))
    block = [lines[start]]
    for ln in lines[start + 1:]:
        if not ln.startswith(" "):
            break
        block.append(ln)
    assert len(block) > 10 and max(len(ln) for ln in block) <= 100, block
    shown = re.split(r",\s*", " ".join(block).split(":", 1)[1].strip())
    assert shown == names  # nothing cut, nothing lost


class _FakeProgress:
    made: list = []

    def __init__(self, total, what="cases", *, enabled=None):
        self.total, self.what, self.done = total, what, 0
        _FakeProgress.made.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def label(self, item):
        pass

    def advance(self, n=1):
        self.done += n


def test_diff_counts_its_steps_on_a_progress_bar(capsys, monkeypatch):
    pytest.importorskip("torch")
    import parity.report.terminal as terminal

    _FakeProgress.made = []
    monkeypatch.setattr(terminal, "Progress", _FakeProgress)
    rc, out, err = run_main(capsys, "diff", os.path.join(FIX, "tiny_mlp.py"), os.path.join(FIX, "tiny_mlp.py"),
                            "--steps", "3")
    assert rc == 0, err
    (bar,) = _FakeProgress.made
    assert bar.total == 6 and bar.done == 6  # 2 dtypes x 3 steps


def test_diff_progress_is_silent_off_a_terminal(capsys):
    pytest.importorskip("torch")
    rc, out, err = run_main(capsys, "diff", os.path.join(FIX, "tiny_mlp.py"), os.path.join(FIX, "tiny_mlp.py"),
                            "--steps", "2")
    assert rc == 0, err
    assert "ETA" not in out + err and "\r" not in out + err


PRINTING = '''\
import numpy as np
import torch
import torch.nn as nn

print("USER-PRINT at import")


class Loud(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))

    def forward(self, x):
        print("USER-PRINT in forward")
        return self.body(x)


def parity_program():
    torch.manual_seed(0)
    model = Loud()
    return {"model": model, "optimizer": torch.optim.SGD(model.parameters(), lr=0.1), "loss": nn.CrossEntropyLoss(),
            "data": batches}


def batches():
    rng = np.random.default_rng(0)
    while True:
        print("USER-PRINT batch")
        yield {"x": rng.normal(size=(6, 4)), "y": rng.integers(0, 3, size=6)}
'''


def test_the_users_prints_go_to_stderr_not_into_the_report(capsys, tmp_path):
    pytest.importorskip("torch")
    prog = tmp_path / "loud.py"
    prog.write_text(PRINTING)
    rc, out, err = run_main(capsys, "diff", prog, prog, "--steps", "2")
    assert rc == 0, err
    assert "USER-PRINT" not in out, out
    assert "USER-PRINT in forward" in err
    assert "variables:" in out and "agree" in out  # parity's own report is still on stdout


# the user's step overflows to inf, then inf - inf is NaN: the user's own warning, which stays
NAN_PORT = PORT.replace("        self.p[\"w\"] = w - self.lr * g\n",
                        "        self.p[\"w\"] = w - self.lr * g * self.dt.type(np.inf)\n")


def test_a_run_going_nan_has_no_numpy_warning_from_parity(tmp_path):
    assert NAN_PORT != PORT
    port = tmp_path / "nan_port.py"
    port.write_text(NAN_PORT.format(mode="ok"))
    proc = subprocess.run(
        [sys.executable, "-W", "default", "-m", "parity", "check", "seed004_oscillate", "--torch-port", str(port),
         "--frameworks", "torch,numpy"],  # both dtypes: the float32-vs-float64 drift meets the NaN
        capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    warned = [ln for ln in proc.stderr.splitlines() if "RuntimeWarning" in ln]
    assert any("nan_port.py" in ln for ln in warned), proc.stderr[-3000:]  # the user's own: kept
    own = [ln for ln in warned if f"parity{os.sep}" in ln]
    assert not own, proc.stderr[-3000:]


def test_a_check_ports_prints_go_to_stderr_and_list_rows_are_whole(tmp_path):
    # parity check: the user's port prints at import and in every step; none of it reaches the report
    import subprocess
    import sys

    from _cli_support import PORT

    port = tmp_path / "noisy_port.py"
    port.write_text("print('PORT FILE IMPORTED')\n" + PORT.format(mode="ok").replace(
        "    def step(self, batch):\n", "    def step(self, batch):\n        print('PORT STEP PRINT')\n"))
    proc = subprocess.run([sys.executable, "-m", "parity", "check", "seed004_oscillate", "--torch-port", str(port),
                           "--frameworks", "torch,numpy"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "PORT" not in proc.stdout and "PORT FILE IMPORTED" in proc.stderr and "PORT STEP PRINT" in proc.stderr
    listed = subprocess.run([sys.executable, "-m", "parity", "list", "-v"], capture_output=True, text=True,
                            env=dict(__import__("os").environ, COLUMNS="60"), timeout=120)
    assert "…" not in listed.stdout, listed.stdout  # a file gets each row whole, whatever COLUMNS says


def test_a_warning_from_the_users_code_is_shown_at_the_users_line(tmp_path):
    # a warning whose stacklevel points at the caller (parity's harness, which calls the port's step) is shown
    # at the innermost line of the user's own file, with where it was raised
    import subprocess
    import sys

    from _cli_support import PORT, line_of

    port = tmp_path / "warning_port.py"
    port.write_text("import warnings\n" + PORT.format(mode="ok").replace(
        "    def step(self, batch):\n",
        "    def step(self, batch):\n        warnings.warn('careful: the user warns', UserWarning, stacklevel=2)\n"))
    proc = subprocess.run([sys.executable, "-m", "parity", "check", "seed004_oscillate", "--torch-port", str(port),
                           "--frameworks", "torch,numpy"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    shown = [l for l in proc.stderr.splitlines() if "UserWarning: careful: the user warns" in l]
    assert shown, proc.stderr
    assert all(f"warning_port.py:{line_of(str(port), 'careful: the user warns')}" in l for l in shown), shown
