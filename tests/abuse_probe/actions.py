"""The abuse probe's drivers for what a plain command cannot do: signals, and two runs at once.

Each driver is ``action(d, cmd, env, fx) -> Outcome``: it starts ``cmd + argv`` in its own
session (``start_new_session``: a process group of its own, as a terminal's job), waits for a
moment (``after_*``), does its deed, and reports the exit code and output.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from .probe import Outcome, expand

_LIMIT = 120.0


def _descendants(pid: int) -> set[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z":
                    parents[int(entry)] = int(fields[1])
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        kids = [c for c, pp in parents.items() if pp == parent]
        found.update(kids), todo.extend(kids)
    return found


def _alive(pid: int) -> bool:
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


def _cmdline(pid: int) -> bytes:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    return b""


def after_workers(n: int, settle: float = 0.5):
    def wait(proc, d: Path) -> None:
        deadline = time.monotonic() + _LIMIT
        while len([p for p in _descendants(proc.pid) if b"parity.run.workers" in _cmdline(p)]) < n:
            if proc.poll() is not None or time.monotonic() > deadline:
                return
            time.sleep(0.05)
        time.sleep(settle)
    return wait


def after_file(name: str):
    def wait(proc, d: Path) -> None:
        deadline = time.monotonic() + _LIMIT
        while not ((d / name).exists() and (d / name).read_text()):
            if proc.poll() is not None or time.monotonic() > deadline:
                return
            time.sleep(0.05)
    return wait


def _start(d, cmd, env, argv):
    out, err = open(d / ".probe-out", "w"), open(d / ".probe-err", "w")
    proc = subprocess.Popen([*cmd, *argv], stdout=out, stderr=err, cwd=d, env=env, start_new_session=True)
    out.close(), err.close()
    return proc


def _finish(proc, d: Path, extra: str = "") -> Outcome:
    try:
        rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        rc, extra = -999, extra + " did not end within 60 s of the signal"
    finally:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    out, err = (d / ".probe-out").read_text(errors="replace"), (d / ".probe-err").read_text(errors="replace")
    (d / ".probe-out").unlink(), (d / ".probe-err").unlink()
    return Outcome(rc, out, err + extra, 0.0, d)


def signal_group(name: str, wait, twice: bool = False):
    def action(d, cmd, env, fx, argv=None):
        proc = _start(d, cmd, env, argv)
        wait(proc, d)
        sent = time.monotonic()
        for _ in range(2 if twice else 1):
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, getattr(signal, name))
            time.sleep(0.2)
        out = _finish(proc, d)
        if time.monotonic() - sent > 10 and out.rc != -999:
            out.rc, out.err = -999, out.err + f" ended {time.monotonic() - sent:.0f} s after {name}, not at once"
        return out
    return _with_argv(action)


def signal_top(name: str, wait):
    def action(d, cmd, env, fx, argv=None):
        proc = _start(d, cmd, env, argv)
        wait(proc, d)
        with contextlib.suppress(OSError):
            os.kill(proc.pid, getattr(signal, name))
        return _finish(proc, d)
    return _with_argv(action)


def _gone_within(pids: set[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return sorted(p for p in pids if _alive(p))


def kill_harness():
    """SIGKILL of the process that runs the command (the supervised child), as the OOM killer would."""
    def action(d, cmd, env, fx, argv=None):
        proc = _start(d, cmd, env, argv)
        after_file("asleep")(proc, d)
        below = _descendants(proc.pid)
        harness = [p for p in below if b"parity.cli.supervise" in _cmdline(p)]
        os.kill(harness[0] if harness else proc.pid, signal.SIGKILL)
        left = _gone_within(below, 2.0)  # the contract: within a second; +1 s for a loaded machine
        out = _finish(proc, d)
        if left:
            out.rc, out.err = -999, out.err + f" still alive 2 s after the SIGKILL: {left}"
        return out
    return _with_argv(action)


def kill_top():
    def action(d, cmd, env, fx, argv=None):
        proc = _start(d, cmd, env, argv)
        after_file("asleep")(proc, d)
        below = _descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        left = _gone_within(below, 2.0)
        out = _finish(proc, d)
        if left:
            out.rc, out.err = -999, out.err + f" still alive 2 s after the SIGKILL: {left}"
        return out
    return _with_argv(action)


def twice(*extra: str):
    """The command twice at once, each with ``extra`` (``{i}``: 0 or 1); the worse exit code."""
    def action(d, cmd, env, fx, argv=None):
        procs = []
        for i in range(2):
            out, err = open(d / f".probe-out{i}", "w"), open(d / f".probe-err{i}", "w")
            args = [*argv, *(e.format(i=i) for e in extra)]
            procs.append(subprocess.Popen([*cmd, *args], stdout=out, stderr=err, cwd=d, env=env))
            out.close(), err.close()
        rcs = [p.wait(timeout=300) for p in procs]
        outs = [(d / f".probe-out{i}").read_text() for i in range(2)]
        errs = [(d / f".probe-err{i}").read_text() for i in range(2)]
        for i in range(2):
            (d / f".probe-out{i}").unlink(), (d / f".probe-err{i}").unlink()
        worst = max(rcs, key=lambda rc: (rc != 0, rc))
        return Outcome(worst, "\n".join(outs), "\n".join(errs), 0.0, d)
    return _with_argv(action)


def _with_argv(action):
    """The probe's argv, expanded, handed to the driver."""
    def run(d, cmd, env, fx, argv=()):
        return action(d, cmd, env, fx, argv=argv)
    run.wants_argv = True
    return run


def json_ok(name: str):
    def check(o):
        try:
            json.loads((o.d / name).read_text())
        except (OSError, ValueError) as exc:
            return f"{name} is not whole JSON: {exc}"
        return None
    return check


def trace_ok(name: str):
    def check(o):
        import sys

        proc = subprocess.run([sys.executable, "-m", "parity", "compare", str(o.d / name), str(o.d / name)],
                              capture_output=True, text=True, cwd=o.d)
        return None if proc.returncode == 0 else f"{name} does not read back: {proc.stderr.strip()[-200:]}"
    return check


__all__ = ["signal_group", "signal_top", "kill_harness", "kill_top", "twice", "after_workers", "after_file",
           "json_ok", "trace_ok", "expand"]
