"""The supervisor and ``python -m parity`` under abuse (issue 22, the rest of it).

* a port in the harness process that ends it (``os._exit(0)``) is named by port, dtype and step,
  from the progress records the step loop sends the supervisor (parity.run.interpreter.progress);
* the temporary file of an output the dead run was writing is removed;
* ``python -m parity`` run in a directory holding a ``numpy.py`` never imports it
  (``parity/__init__.py`` is lazy, ``parity/__main__.py`` drops the working directory first),
  while ``import parity; parity.NAME`` keeps every public name.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from _cli_support import ROOT, one_error_line
from abuse_probe.files import PORT
from abuse_probe.probe import base_env, entry

CHECK = ("check", "seed004_oscillate", "--frameworks", "torch,numpy", "--dtype", "float64", "--torch-port", "port.py")


def _parity(tmp_path, *args, module=False, **env):
    return subprocess.run([*entry(module), *args], capture_output=True, text=True, cwd=tmp_path, env=base_env(env),
                          timeout=300)


@pytest.mark.parametrize("workers", ["1", "0"])
def test_a_port_ending_the_harness_is_named_by_port_and_step(tmp_path, workers):
    # the user's port runs in the harness (its numpy counterpart in a worker, or there too): os._exit(0) at
    # its second step (step 1); before, the line named only the command
    (tmp_path / "port.py").write_text(PORT.format(mode="exit0"))
    proc = _parity(tmp_path, *CHECK, PARITY_WORKERS=workers)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    line = one_error_line(proc.stderr)
    assert "ended without a verdict" in line and "exited with code 0" in line and "os._exit" in line, line
    assert "in the torch port (float64), during step 1" in line and "parity check seed004_oscillate" in line, line


def test_a_run_without_a_verdict_leaves_no_temporary_output(tmp_path):
    (tmp_path / "port.py").write_text(PORT.format(mode="exit0"))
    proc = _parity(tmp_path, "record", "seed004_oscillate", "--port", "torch", "--port-file", "port.py",
                   "-o", "x.trace")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["port.py"]


def test_the_supervisor_reads_progress_as_it_comes_and_the_exit_code():
    # more than a pipe holds (64 KiB) of progress records: the child never blocks on a full pipe
    from parity.cli.supervise import _Said

    read, write = os.pipe()
    said = _Said(read)

    def child():
        for step in range(5000):
            os.write(write, b"@in the torch port (float64), during step %d\n" % step)
        os.write(write, b"=1\n")
        os.close(write)

    t = threading.Thread(target=child)
    t.start()
    t.join(timeout=10)
    assert not t.is_alive(), "the writer blocked: the supervisor does not read as the child writes"
    said.done()
    assert said.code == 1 and said.where == "in the torch port (float64), during step 4999"


def test_progress_goes_nowhere_outside_a_supervised_command():
    from parity.run import interpreter

    assert not interpreter.reporting()
    interpreter.progress("in the torch port (float64), during step 0")  # no fd: nothing, no error


PLANTED = "import os\nopen({marker!r}, 'a').write('imported')\nraise ImportError('planted numpy.py')\n"


@pytest.mark.parametrize("args", [("list",), ("--version",)])
def test_python_m_parity_never_imports_a_numpy_py_from_the_working_directory(tmp_path, args):
    marker = tmp_path / "IMPORTED"
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "numpy.py").write_text(PLANTED.format(marker=str(marker)))
    proc = _parity(tmp_path / "cwd", *args, module=True)
    assert not marker.exists(), "the planted numpy.py was imported"
    assert proc.returncode == 0, proc.stderr


def test_python_m_parity_runs_from_the_checkout_itself():
    # the working directory is parity's own root: dropped from sys.path, parity still finds tf_impl/torch_impl
    proc = subprocess.run([sys.executable, "-m", "parity", "list"], capture_output=True, text=True, cwd=ROOT,
                          env=base_env({"PYTHONPATH": ""}), timeout=120)
    assert proc.returncode == 0 and "seed004_oscillate" in proc.stdout, proc.stderr


def test_import_parity_is_lazy_and_keeps_every_public_name():
    code = ("import sys, parity; assert 'numpy' not in sys.modules, 'parity imported numpy eagerly'; "
            "names = parity.__all__; [getattr(parity, n) for n in names]; "
            "from parity import Case, Cost, Trace, compare, compare_programs, ParityError, STAGES; "
            "assert set(names) <= set(dir(parity)); print(len(names))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=base_env(),
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 18
    import parity

    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        parity.no_such_name  # noqa: B018


EXITING_LOSS = """
class ExitingLoss(nn.CrossEntropyLoss):
    calls = 0

    def forward(self, out, y):
        ExitingLoss.calls += 1
        if ExitingLoss.calls == 3:  # mid-training
            __import__("os")._exit(0)
        return super().forward(out, y)
"""


@pytest.mark.torch
@pytest.mark.parametrize("workers", ["1", "0"])
def test_a_diff_program_calling_os_exit_0_is_a_crash_not_a_pass(tmp_path, workers):
    # workers: the program's worker dies (the harness names it); PARITY_WORKERS=0: the harness itself ends
    with open(os.path.join(ROOT, "tests", "fixtures", "programs", "tiny_mlp.py")) as fh:
        text = fh.read()
    (tmp_path / "ref.py").write_text(text)
    port = text.replace('"loss": nn.CrossEntropyLoss()', '"loss": ExitingLoss()')
    (tmp_path / "port.py").write_text(port + EXITING_LOSS)
    proc = _parity(tmp_path, "diff", "ref.py", "port.py", "--steps", "3", "--dtype", "float64",
                   PARITY_WORKERS=workers)
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
    line = one_error_line(proc.stderr)
    if workers == "0":
        assert "ended without a verdict" in line and "parity diff ref.py port.py" in line, line
    else:
        assert "port.py" in line and "worker process died" in line and "os._exit" in line, line
