"""The command line's contract under abuse, the process part (issue 22).

* no false pass: a port that calls ``os._exit(0)`` mid-run (a user's port in the harness, a
  program of ``parity diff``, a port in a worker) is exit 3 with one line, never exit 0;
* Ctrl-C (SIGINT to the process group, as a terminal sends it): exit 130, no traceback;
* the workers die with the harness (SIGKILL of any parity process);
* no code from the working directory: a ``numpy.py`` planted there is never imported.

Each runs the ``parity`` console script in a subprocess; the user's port is plain numpy (a
torch port's stand-in) compared with the numpy oracle in its worker: most need no framework.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from _cli_support import ROOT, one_error_line

LINUX = sys.platform.startswith("linux")

# A user's port of seed004_oscillate in numpy; MODE: "ok", "exit0" (os._exit(0) at step 2), "sleep".
PORT = '''\
import os, time
import numpy as np

MODE = {mode!r}


def framework_info():
    return {{"version": "user", "device": "cpu"}}


class Port:
    def __init__(self, case, dtype):
        self.dt, self.t, self.p = np.dtype(dtype), 0, {{}}
        self.lr = self.dt.type(case.option("lr", 1.0))

    def parameters(self):
        return {{k: v.copy() for k, v in self.p.items()}}

    def load(self, params):
        self.p = {{k: np.array(v, dtype=self.dt) for k, v in params.items()}}

    def step(self, batch):
        self.t += 1
        if MODE == "exit0" and self.t == 2:
            os._exit(0)  # mid-training, in the harness process
        time.sleep(60 if MODE == "sleep" else 0)
        x, y, w = self.dt.type(batch["x"]), self.dt.type(batch["y"]), self.p["w"]
        pred, g = w * x, 2 * w * x * x - 2 * y * x
        self.p["w"] = w - self.lr * g
        return {{"forward": {{"prediction": pred}}, "loss": {{"loss": (y - pred) ** 2}}, "gradients": {{"w": g}},
                "learning_rate": {{"lr": self.lr}}, "parameters": self.parameters()}}


def build(case, dtype, variant=None):
    return Port(case, dtype)
'''


def user_port(directory, mode: str) -> str:
    directory.mkdir(exist_ok=True)
    (directory / f"port_{mode}.py").write_text(PORT.format(mode=mode))
    return str(directory / f"port_{mode}.py")


def entry() -> list[str]:
    """The ``parity`` console script (as a user runs it), else ``python -m parity``."""
    script = shutil.which("parity", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "parity"]


def env(**extra) -> dict:
    out = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=os.pathsep.join(
        [p for p in [extra.pop("PYTHONPATH", None), ROOT] if p]))
    out.pop("PARITY_WORKERS", None)
    out.update(extra)
    return out


def parity(*args, cwd=None, timeout=300, module=False, **extra):
    cmd = [sys.executable, "-m", "parity"] if module else entry()
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env(**extra),
                          timeout=timeout)


CHECK = ("check", "seed004_oscillate", "--frameworks", "torch,numpy", "--dtype", "float64")


# -- 1. no false pass ----------------------------------------------------------------------------


@pytest.mark.parametrize("workers, module", [("1", False), ("0", False), ("1", True)],
                         ids=["workers", "PARITY_WORKERS=0", "python -m parity"])
def test_a_users_port_calling_os_exit_0_is_a_crash_not_a_pass(tmp_path, workers, module):
    port = user_port(tmp_path / "ports", "exit0")
    proc = parity(*CHECK, "--torch-port", port, cwd=tmp_path, module=module, PARITY_WORKERS=workers)
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
    line = one_error_line(proc.stderr)
    assert "ended without a verdict" in line and "exited with code 0" in line and "os._exit" in line, line
    assert "parity check seed004_oscillate" in line, line


def test_the_supervisor_passes_output_and_exit_codes_through(tmp_path):
    port = user_port(tmp_path / "ports", "ok")
    proc = parity(*CHECK, "--torch-port", port, cwd=tmp_path)
    assert proc.returncode == 0 and "seed004_oscillate" in proc.stdout, proc.stdout + proc.stderr
    proc = parity("run", "no_such_case", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown case" in one_error_line(proc.stderr)
    proc = parity("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("parity ") and not proc.stderr
    proc = parity("run", "--no-such-option", cwd=tmp_path)
    assert proc.returncode == 2 and "usage:" in proc.stderr and "ended without a verdict" not in proc.stderr


SITE_IN_WORKER = """\
import os

# In a worker process only (parity.run.workers._serve runs nowhere else), ABUSE_WORKER="WHAT:N":
# at step N (0 = the first) every port calls os._exit(0) ("exit") or sleeps a minute ("sleep",
# after writing its pid to the file ABUSE_MARK).
if os.environ.get("ABUSE_WORKER"):
    import parity.run.workers as _w

    _serve = _w._serve

    def _patched(conn):
        import time
        from parity.run.boundary import PortRun

        step = PortRun.step
        what, at = os.environ["ABUSE_WORKER"].split(":")

        def abused(self, batch):
            if self.steps == int(at):
                if what == "exit":
                    os._exit(0)
                with open(os.environ["ABUSE_MARK"], "w") as fh:  # the test waits for this
                    fh.write(str(os.getpid()))
                time.sleep(60)
            return step(self, batch)

        PortRun.step = abused
        return _serve(conn)

    _w._serve = _patched
"""


def abuse_site(tmp_path) -> str:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITE_IN_WORKER)
    return str(site)


def test_a_port_calling_os_exit_in_a_worker_is_a_crash_naming_port_and_step(tmp_path):
    port = user_port(tmp_path / "ports", "ok")
    proc = parity(*CHECK, "--torch-port", port, cwd=tmp_path, PYTHONPATH=abuse_site(tmp_path), ABUSE_WORKER="exit:2")
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    text = " ".join(proc.stdout.split())
    assert "numpy" in text and "step 2" in text and "worker process" in text and "exit code 0" in text, text


# A program of `parity diff` calling os._exit: tests/test_abuse_supervisor.py.


# -- the process tree (Linux: /proc) ------------------------------------------------------------


def _stat(pid) -> list[str]:
    """/proc/PID/stat after the name: [state, ppid, ...] ([] when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _ppid_map() -> dict[int, int]:
    stats = {int(d): _stat(d) for d in os.listdir("/proc") if d.isdigit()}
    return {pid: int(st[1]) for pid, st in stats.items() if st and st[0] != "Z"}


def _descendants(pid: int) -> set[int]:
    parents, found, todo = _ppid_map(), set(), [pid]
    while todo:
        parent = todo.pop()
        kids = [c for c, pp in parents.items() if pp == parent]
        found.update(kids), todo.extend(kids)
    return found


def _alive(pid: int) -> bool:
    return _stat(pid)[:1] not in ([], ["Z"])  # a zombie is gone: it only waits to be reaped


def _is_worker(pid: int) -> bool:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as fh:
        return b"parity.run.workers" in fh.read()
    return False


def _start(tmp_path, *args, **extra):
    out, err = open(tmp_path / "stdout", "w"), open(tmp_path / "stderr", "w")
    proc = subprocess.Popen([*entry(), *args], stdout=out, stderr=err, cwd=tmp_path, env=env(**extra),
                            start_new_session=True)
    out.close(), err.close()
    return proc


def _wait_for_workers(proc, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len([p for p in _descendants(proc.pid) if _is_worker(p)]) < n:
        assert proc.poll() is None and time.monotonic() < deadline, "parity ended before its workers started"
        time.sleep(0.05)


def _kill_group(proc) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


RUN = ("run", "seed004_oscillate", "--frameworks", "torch,numpy")


# -- 2. Ctrl-C -----------------------------------------------------------------------------------


def _busy_worker(tmp_path):
    """`parity check` with the user's port in the harness and the numpy port in its worker, asleep
    in its second step (a long step: the worker does not read its socket); its pid."""
    mark = tmp_path / "asleep"
    proc = _start(tmp_path, *CHECK, "--torch-port", user_port(tmp_path / "ports", "ok"),
                  PYTHONPATH=abuse_site(tmp_path), ABUSE_WORKER="sleep:1", ABUSE_MARK=str(mark))
    deadline = time.monotonic() + 120
    while not (mark.exists() and mark.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "stderr").read_text()
        time.sleep(0.05)
    return proc, int(mark.read_text())


def _interrupt(tmp_path, proc) -> tuple[int, str]:
    """Ctrl-C as a terminal sends it (SIGINT to the process group); the exit code and stderr."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(timeout=60)
    finally:
        _kill_group(proc)
    return rc, (tmp_path / "stderr").read_text()


@pytest.mark.skipif(not LINUX, reason="reads the process tree from /proc")
@pytest.mark.torch
def test_ctrl_c_to_the_process_group_is_exit_130_without_a_traceback(tmp_path):
    proc = _start(tmp_path, *RUN)
    _wait_for_workers(proc, 1)
    time.sleep(0.3)  # the torch worker imports torch (its first port opens; the numpy worker starts after)
    rc, err = _interrupt(tmp_path, proc)
    assert rc == 130, (rc, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "interrupted" in err


@pytest.mark.skipif(not LINUX, reason="reads the process tree from /proc")
@pytest.mark.parametrize("busy", ["users_port", "worker"])
def test_ctrl_c_in_a_long_step_is_exit_130_at_once_without_a_traceback(tmp_path, busy):
    # users_port: the user's port (in the harness) sleeps, the numpy worker idles on its socket;
    # worker: the numpy port (in its worker) sleeps, the harness waits for it
    if busy == "worker":
        proc, _ = _busy_worker(tmp_path)
    else:
        proc = _start(tmp_path, *CHECK, "--torch-port", user_port(tmp_path / "ports", "sleep"))
        _wait_for_workers(proc, 1)
        time.sleep(1.0)
    started = time.monotonic()
    rc, err = _interrupt(tmp_path, proc)
    assert rc == 130 and "Traceback" not in err and "interrupted" in err, (rc, err)
    assert time.monotonic() - started < 10  # not after the step (a minute)


# -- 3. the workers die with the harness -----------------------------------------------------------


@pytest.mark.skipif(not LINUX, reason="reads the process tree from /proc")
@pytest.mark.parametrize("victim", ["harness", "top"])
def test_a_busy_worker_dies_within_seconds_of_a_sigkill(tmp_path, victim):
    # "harness": the process that runs the command (the supervised child); "top": the `parity` process
    proc, worker = _busy_worker(tmp_path)
    try:
        below = _descendants(proc.pid)
        # the harness: the worker's ancestor right below the `parity` process (a worker forked by the workers'
        # zygote has the zygote for its parent, the harness above it), or the `parity` process itself
        parents, harness = _ppid_map(), worker
        while parents.get(harness) not in (proc.pid, None):
            harness = parents[harness]
        harness = proc.pid if parents.get(worker) == proc.pid else harness
        assert worker in below and harness in below | {proc.pid}
        os.kill(harness if victim == "harness" else proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 2.0  # asked: within 1 s; PDEATHSIG is at once, +1 s for a loaded CI
        while time.monotonic() < deadline and any(_alive(p) for p in below | {harness}):
            time.sleep(0.05)
        left = sorted(p for p in below | {harness} if _alive(p))
        assert not left, f"still alive 2 s after the SIGKILL of the {victim}: {left}"
        if victim == "harness" and proc.pid != harness:  # the supervisor says so, exit 3
            assert proc.wait(timeout=10) == 3
            line = one_error_line((tmp_path / "stderr").read_text())
            assert "ended without a verdict" in line and "killed by SIGKILL" in line, line
    finally:
        _kill_group(proc)


# -- 4. no code from the working directory -----------------------------------------------------


PLANTED = """\
import os, sys
with open({marker!r}, "a") as fh:
    fh.write(f"{{os.getpid()}} {{sys.argv!r}}\\n")
raise ImportError("the planted numpy.py was imported")
"""


def _plant(tmp_path):
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "numpy.py").write_text(PLANTED.format(marker=str(tmp_path / "IMPORTED")))
    return tmp_path / "cwd", tmp_path / "IMPORTED"


@pytest.mark.parametrize("command", ["check", pytest.param("run", marks=pytest.mark.torch)])
def test_no_child_interpreter_imports_from_the_working_directory(tmp_path, command):
    # check: the supervised harness and the numpy worker; run: the torch worker too
    cwd, marker = _plant(tmp_path)
    args = RUN if command == "run" else (*CHECK, "--torch-port", user_port(tmp_path / "ports", "ok"))
    proc = parity(*args, cwd=cwd)
    assert not marker.exists(), marker.read_text()
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_isolated_sub_runs_import_nothing_from_the_working_directory(tmp_path, monkeypatch):
    # record_port's `parity record --in-process` and record_isolated's parity.run.isolate
    from parity.cases.registry import get_case
    from parity.run.boundary import record_isolated
    from parity.run.runner import record_port

    cwd, marker = _plant(tmp_path)
    monkeypatch.chdir(cwd)
    case = get_case("seed004_oscillate")
    isolated = case.replace(options={**dict(case.options), "isolate": ("numpy",)})
    path, steps = record_port(isolated, "numpy", "float64", str(tmp_path / "n.trace"))
    assert steps == case.steps
    (trace, error), = record_isolated(case, [("numpy", "float64")], str(tmp_path))
    assert os.path.exists(trace) and not os.path.exists(error)
    assert not marker.exists(), marker.read_text()


def test_every_child_interpreter_is_started_isolated_from_the_working_directory():
    # Every `sys.executable` command line in parity goes through the one helper that adds -P
    # (Python >= 3.11) and drops the working directory from sys.path first (3.10).
    import glob

    offenders = [f"{os.path.relpath(path, ROOT)}:{n}: {line.strip()}"
                 for top in ("parity", "tf_impl", "torch_impl")
                 for path in glob.glob(os.path.join(ROOT, top, "**", "*.py"), recursive=True)
                 if not path.endswith(os.path.join("run", "interpreter.py"))
                 for n, line in enumerate(open(path), 1) if "sys.executable" in line]
    assert not offenders, "\n".join(offenders)
    from parity.run.interpreter import python

    cmd = python("print(1)")
    assert cmd[0] == sys.executable and "-c" in cmd
    if sys.version_info >= (3, 11):
        assert "-P" in cmd
