"""`parity run` in job processes (parity/cli/jobs.py) and TensorFlow workers forked from the zygote
(parity/run/zygote.py): the same report and JSON as one harness, fewer TensorFlow imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from parity.cli.jobs import MIN_UNITS, jobs_for
from parity.errors import ParityError
from parity.run.frameworks import available

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# small cases of every framework (tf1, tf2 forked from the zygote; torch, numpy fresh) and a refusal
CASES = ["seed004_constant", "seed004_oscillate", "seed004_var_list", "seed004_global_step_ema",
         "seed004_nothing_to_train", "seed002_torch_renorm_eps"]
needs_all = pytest.mark.skipif(not all(available(f) for f in ("tf1", "tf2", "torch")),
                               reason="needs TensorFlow and torch")


def test_jobs_for_reads_the_flag_then_the_environment_then_the_run(monkeypatch):
    monkeypatch.delenv("PARITY_JOBS", raising=False)
    assert jobs_for(MIN_UNITS - 1, None) == 1  # a small run stays in one harness
    assert jobs_for(100, None) in (1, 2)  # one per core, at most 2
    assert jobs_for(100, 3) == 3 and jobs_for(2, 3) == 2  # never more jobs than units
    monkeypatch.setenv("PARITY_JOBS", "4")
    assert jobs_for(100, None) == 4 and jobs_for(100, 1) == 1  # --jobs wins
    for bad in ("two", "0", "-1"):
        monkeypatch.setenv("PARITY_JOBS", bad)
        with pytest.raises(ParityError, match="PARITY_JOBS"):
            jobs_for(100, None)


def test_workers_and_jobs_are_asked_to_stop_before_any_is_waited_for(monkeypatch):
    # They end side by side: a forked worker's end is seen at its zygote's next reaping (every 0.2 s), so stopped
    # one after the other four workers took 0.8 s, and closing make parity's two jobs 1.64 s (0.32 s side by side).
    import socket

    from parity.cli.jobs import Jobs
    from parity.run import workers
    from parity.run.conn import DirectConnection

    events = []

    class Proc:  # a Popen whose process ends once it is asked to
        def __init__(self, name):
            self.name = name

        def poll(self):
            return 0 if ("ask", self.name) in events else None

        def wait(self, timeout=None):
            events.append(("wait", self.name))
            return 0

    def fake(name):
        mine, theirs = socket.socketpair()
        theirs.close()
        return workers._Worker.attach(name, Proc(name), DirectConnection(mine.detach()))

    monkeypatch.setattr(workers._Worker, "send", lambda self, msg: events.append(("ask", self.group)))
    monkeypatch.setattr(workers, "_WORKERS", {g: fake(g) for g in ("tf1", "tf2", "torch", "numpy")})
    workers.shutdown()
    assert [e[0] for e in events] == ["ask"] * 4 + ["wait"] * 4 and not workers._WORKERS
    events.clear()
    jobs = Jobs(2)
    jobs._procs = [fake("job1"), fake("job2")]
    jobs.close()
    assert events == [("ask", "job1"), ("ask", "job2"), ("wait", "job1"), ("wait", "job2")] and not jobs._procs


def _run(tmp_path, name: str, *extra: str, env=None) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / f"{name}.json"
    proc = subprocess.run([sys.executable, "-m", "parity", "run", *CASES, "--json", str(out), *extra],
                          capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, **(env or {})), timeout=600)
    return proc, json.loads(out.read_text())


def _without_times(x):
    if isinstance(x, dict):
        return {k: _without_times(v) for k, v in x.items()
                if k not in ("seconds", "created", "command", "wall_seconds", "pitfall_seconds")}
    if isinstance(x, list):
        return [_without_times(v) for v in x]
    return x


@needs_all
def test_two_jobs_give_the_report_and_json_of_one_harness(tmp_path):
    one, j1 = _run(tmp_path, "one", "--jobs", "1", env={"PARITY_ZYGOTE": "0"})
    two, j2 = _run(tmp_path, "two", "--jobs", "2")
    assert one.returncode == two.returncode == 0, one.stderr + two.stderr
    assert _without_times(j1) == _without_times(j2)
    # the printed report too, but for the run's own time on its last line
    lines = [[ln for ln in p.stdout.splitlines() if "cases behaved" not in ln and "JSON report" not in ln]
             for p in (one, two)]
    assert lines[0] == lines[1]


@pytest.mark.skipif(not available("tf1") or not hasattr(os, "fork"), reason="needs TensorFlow and os.fork")
def test_tensorflow_workers_are_forked_from_the_zygote_unless_the_environment_changed(monkeypatch):
    from parity.run import workers, zygote

    monkeypatch.delenv("PARITY_ZYGOTE", raising=False)
    workers.shutdown()
    zygote.shutdown()  # one an earlier in-process run started, in the environment it had then
    monkeypatch.delenv("_PARITY_ZYGOTE_ADDRESS", raising=False)
    zygote.start()
    try:
        w = workers._Worker("tf1")
        assert isinstance(w.proc, zygote.Forked)
        assert w.alive
        w.stop()
        assert not w.alive  # it ended when its harness stopped it (the zygote reaps it)
        monkeypatch.setenv("TF_PARITY_TEST_SETTING", "1")  # TensorFlow would read it at import: a fresh one
        fresh = workers._Worker("tf1")
        assert isinstance(fresh.proc, subprocess.Popen)
        fresh.stop()
        torch_worker = workers._Worker("torch")  # only TensorFlow's workers are forked
        assert isinstance(torch_worker.proc, subprocess.Popen)
        torch_worker.stop()
    finally:
        zygote.shutdown()
    assert "_PARITY_ZYGOTE_ADDRESS" not in os.environ


@pytest.mark.skipif(not available("torch") or not hasattr(os, "fork"), reason="needs torch and os.fork")
def test_torch_and_numpy_workers_are_forked_when_the_zygote_imported_torch(monkeypatch):
    from parity.run import workers, zygote

    monkeypatch.delenv("PARITY_ZYGOTE", raising=False)
    workers.shutdown()
    zygote.shutdown()
    monkeypatch.delenv("_PARITY_ZYGOTE_ADDRESS", raising=False)
    zygote.start({"torch", "numpy"})  # a run of torch and numpy ports: torch imported, TensorFlow not
    try:
        for group in ("torch", "numpy"):
            w = workers._Worker(group)
            assert isinstance(w.proc, zygote.Forked), group
            assert w.alive
            w.stop()
            assert not w.alive
        tf_worker = workers._Worker("tf1")  # TensorFlow not imported there: a fresh interpreter
        assert isinstance(tf_worker.proc, subprocess.Popen)
        tf_worker.stop()
        # a forked worker that ends says how (the zygote reaps it and writes its exit code) ...
        w = workers._Worker("numpy")
        w.conn.close()  # its harness gone from its socket: it ends, exit code 0
        assert w.proc.wait(timeout=10) is None and w.proc.poll() == 0 and w.proc.returncode == 0
        # ... and one dies with the zygote (PR_SET_PDEATHSIG): no worker outlives it
        w = workers._Worker("numpy")
        zygote._STARTED[0][0].kill()
        w.proc.wait(timeout=5)
        assert not w.alive
    finally:
        zygote.shutdown()


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


def _maps(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as fh:
        return fh.read()


@pytest.mark.skipif(not available("tf1") or not available("torch") or not hasattr(os, "fork")
                    or not os.path.exists("/proc/self/maps"), reason="needs TensorFlow, torch, os.fork and /proc")
def test_torch_is_imported_beside_tensorflow_by_a_zygote_of_its_own(monkeypatch):
    """A run of TF and torch workers: torch's zygote, forked by TensorFlow's before either import, forks the torch and
    numpy workers (TensorFlow never loaded in them, as in a fresh one); it stops with the first; gone, it means a
    fresh worker at once."""
    import signal
    import time

    from parity.run import workers, zygote

    monkeypatch.delenv("PARITY_ZYGOTE", raising=False)
    workers.shutdown()
    zygote.shutdown()
    monkeypatch.delenv("_PARITY_ZYGOTE_ADDRESS", raising=False)
    zygote.start({"tf1", "tf2", "torch", "numpy"})
    tf_zygote = zygote._STARTED[0][0].pid
    try:
        ws = {g: workers._Worker(g) for g in ("tf1", "tf2", "torch", "numpy")}
        assert all(isinstance(w.proc, zygote.Forked) for w in ws.values())
        parents = {g: _parent(w.proc.pid) for g, w in ws.items()}
        torch_zygote = parents["torch"]
        assert parents["tf1"] == parents["tf2"] == tf_zygote
        assert parents["numpy"] == torch_zygote != tf_zygote and _parent(torch_zygote) == tf_zygote
        assert "libtensorflow" in _maps(ws["tf1"].proc.pid) and "libtorch" in _maps(ws["torch"].proc.pid)
        assert "libtensorflow" not in _maps(ws["torch"].proc.pid)  # torch's workers: torch imported alone
        assert "libtorch" not in _maps(ws["tf1"].proc.pid)  # TensorFlow's: without torch's pages
        for w in ws.values():
            w.stop()
        os.kill(torch_zygote, signal.SIGKILL)  # gone (a zombie until its zygote reaps it): a fresh worker, no waiting
        t0 = time.monotonic()
        w = workers._Worker("torch")
        assert isinstance(w.proc, subprocess.Popen) and time.monotonic() - t0 < 5  # (the wait for a socket is 60 s)
        w.stop()
        assert isinstance(workers._Worker("tf1").proc, zygote.Forked)  # TensorFlow's zygote still serves
    finally:
        workers.shutdown()
        zygote.shutdown()
    assert "_PARITY_ZYGOTE_TORCH" not in os.environ
    for pid in (tf_zygote, torch_zygote):  # both ended (the second stopped by the first, which waited for it)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.skipif(not available("tf1") or not available("torch") or not hasattr(os, "fork"),
                    reason="needs TensorFlow, torch and os.fork")
def test_the_torch_zygote_stops_with_the_first_one(monkeypatch):
    import time

    from parity.run import workers, zygote

    monkeypatch.delenv("PARITY_ZYGOTE", raising=False)
    workers.shutdown()
    zygote.shutdown()
    monkeypatch.delenv("_PARITY_ZYGOTE_ADDRESS", raising=False)
    zygote.start({"tf1", "torch"})
    try:
        w = workers._Worker("torch")  # (served while the first zygote may still be importing TensorFlow)
        torch_zygote = _parent(w.proc.pid)
        w.stop()
    finally:
        t0 = time.monotonic()
        zygote.shutdown()  # SIGTERM to the first: it stops the second and waits for it
    # not the kill after the 15 s wait (a stop swallowed by an import): the second would be left an orphan
    assert time.monotonic() - t0 < 10
    with pytest.raises(ProcessLookupError):
        os.kill(torch_zygote, 0)


def test_a_zygote_that_is_gone_means_a_fresh_worker_at_once(tmp_path, monkeypatch):
    """An address inherited from a process whose zygote died (no socket, or nobody listening): no waiting."""
    import socket
    import time

    from parity.run import zygote

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "pid").write_text(dead.stdout.strip())
    monkeypatch.setenv("_PARITY_ZYGOTE_ADDRESS", str(tmp_path / "socket"))
    a, b = socket.socketpair()
    t0 = time.monotonic()
    assert zygote.fork_worker("tf1", a.fileno(), b.fileno(), dict(os.environ)) is None  # no socket, pid gone
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "socket"))  # there, but nobody listens
    assert zygote.fork_worker("tf1", a.fileno(), b.fileno(), dict(os.environ)) is None
    assert time.monotonic() - t0 < 5  # not the 60 s a zygote still importing TensorFlow is given
    listener.close()


def test_a_worker_reaped_just_now_gets_the_exit_code_its_zygote_writes_a_moment_later(tmp_path):
    """The zygote reaps a worker, then writes its exit code: a harness asking in between (a loaded machine) waits for
    it instead of reading "gone without a word" (a race seen once in a full run)."""
    import threading
    import time

    from parity.run import zygote

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(gone.stdout)
    (tmp_path / "pid").write_text(str(os.getpid()))  # its zygote: alive (this process stands in for it)
    timer = threading.Timer(0.3, lambda: (tmp_path / f"exit-{pid}").write_text("3"))
    timer.start()
    try:
        w = zygote.Forked(pid, None, str(tmp_path))
        assert w.poll() == 3 and w.returncode == 3
    finally:
        timer.cancel()
    (tmp_path / "pid").write_text(str(pid))  # no zygote left to write it: unknown at once
    t0 = time.monotonic()
    w = zygote.Forked(pid, None, str(tmp_path))
    assert w.poll() == 0 and w.returncode is None and time.monotonic() - t0 < 1
