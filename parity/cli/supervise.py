"""The ``parity`` process: the command runs in a supervised child interpreter, so that no run ends without a verdict.

A port runs in the harness process (a user's port given to ``parity check``, the programs of
``parity diff``, every port under ``PARITY_WORKERS=0``); if it calls ``os._exit(0)``, or the
process is killed, nothing after it runs: no report, no exit code of parity's own. So the
``parity`` console script and ``python -m parity`` (:func:`parity.cli.main.main` called without
arguments) run the command in a child interpreter (:func:`supervise`), which tells this process
its exit code on a pipe right before it exits (:func:`child`). A child that ends without saying
so ended without a verdict: one line says so, and the exit code is 3 (a port crashed), never 0.
On the same pipe the child says where it is (``@in the torch port (float64), during step 3``,
:func:`parity.run.interpreter.progress`, written by the step loop before each in-process step):
the line names the port and step the process ended in. The pipe is read as the child writes.

The child writes to this process's stdout and stderr directly (a terminal stays a terminal),
and starts isolated from the working directory (:func:`parity.run.interpreter.python`); it dies
with this process, even of SIGKILL. Signals: Ctrl-C reaches the child from the terminal (the
whole process group); SIGINT, SIGTERM and SIGHUP sent to this process alone are passed on to it.
A child stopped by a signal this process was sent ends this process the same way, after one line.

Cost: one more interpreter start and import of parity, ~0.17 s per command (``parity list``:
0.20 s -> 0.36 s, median of 15 on 2 cores), and ~31 MB for this process; nothing per step.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time

from parity.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_PORT
from parity.run.interpreter import progress, python, report_to

__all__ = ["supervise", "child"]

_FORWARDED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
_INTERRUPTED = "parity: interrupted (Ctrl-C); no output file was left half-written"


def _say(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _flags() -> list[str]:
    """This interpreter's options (-W, -X, -O...), for the child."""
    try:
        return subprocess._args_from_interpreter_flags()  # what multiprocessing uses too
    except Exception:  # noqa: BLE001 -- a private helper: without it the child runs with the defaults
        return []


def supervise(argv: list[str], run) -> int:
    """Run ``parity ARGV`` in a child interpreter; return its exit code, or 3 if it gave none.

    ``run``: the command line in this process (:func:`parity.cli.main.main`), used where no child
    interpreter can be started.
    """
    read, write = os.pipe()
    code = f"from parity.cli.main import main; from parity.cli.supervise import child; child({write}, main)"
    received: list[int] = []
    proc = None

    def forward(signum, frame) -> None:
        received.append(signum)
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signum)
            except OSError:
                pass

    started = time.time()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, forward) for s in _FORWARDED} if main_thread else {}
    try:
        proc = subprocess.Popen(python(code, *argv, flags=_flags()), pass_fds=[write])
    except (OSError, ValueError):  # no second interpreter here: run the command in this one, unsupervised
        _restore(previous)
        os.close(read), os.close(write)
        return run(list(argv))
    os.close(write)
    said = _Said(read)
    if received:  # a signal before the child existed
        forward(received[-1], None)
    try:
        rc = proc.wait()
    finally:  # SIGINT stays with `forward` (a second Ctrl-C must not kill this process before its line)
        _restore({s: h for s, h in previous.items() if s != signal.SIGINT})
    if main_thread:  # nor as it exits: at exit Python puts back the default handler for `forward`, not for SIG_IGN
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    said.done()
    if said.code is not None:
        return said.code
    _remove_temporaries(argv, started)
    return _no_verdict(rc, received, argv, said.where)


def _restore(previous: dict) -> None:
    for s, handler in previous.items():
        signal.signal(s, handler)


class _Said:
    """What the child says on its pipe, read as it comes (a thread): ``@WHERE`` lines (:attr:`where`, the
    last one) and ``=CODE``, its exit code (:attr:`code`)."""

    def __init__(self, fd: int):
        self.fd, self.where, self.code = fd, "", None
        self._buf = b""
        self._thread = threading.Thread(target=self._read, name="parity-supervisor-pipe", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while chunk := os.read(self.fd, 65536):
                self._take(chunk)
        except OSError:
            pass

    def _take(self, chunk: bytes) -> None:
        *lines, self._buf = (self._buf + chunk).split(b"\n")
        for line in lines:
            text = line.decode("utf-8", "replace")
            if text.startswith("@"):
                self.where = text[1:]
            elif text.startswith("="):
                try:
                    self.code = int(text[1:])
                except ValueError:
                    pass

    def done(self) -> None:
        """The child has exited: read what is left (without waiting for processes it may have left)."""
        self._thread.join(timeout=1.0)
        if self._thread.is_alive():  # a process the child left holds the pipe: read what is there, stop
            os.set_blocking(self.fd, False)
            try:
                while chunk := os.read(self.fd, 65536):
                    self._take(chunk)
            except OSError:
                pass
        else:
            os.close(self.fd)


_OUTPUTS = ("--json", "--html", "--markdown", "-o", "--output", "--save-mapping")


def _remove_temporaries(argv: list[str], since: float) -> None:
    """The child ended without a verdict: remove the temporary files it left beside the outputs asked for
    (:mod:`parity.io` writes ``.NAME.XXXX.tmp[.ext]`` beside NAME and renames it when complete)."""
    targets = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in _OUTPUTS]
    targets += [a.split("=", 1)[1] for a in argv if a.split("=", 1)[0] in _OUTPUTS and "=" in a]
    for target in targets:
        directory, name = os.path.split(os.path.abspath(target))
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        for entry in entries:
            if entry.startswith(f".{name}.") and ".tmp" in entry[len(name) + 2:]:
                path = os.path.join(directory, entry)
                try:
                    if os.path.isfile(path) and not os.path.islink(path) and os.stat(path).st_mtime >= since - 1:
                        os.unlink(path)
                except OSError:
                    pass


def _no_verdict(rc: int, received: list[int], argv: list[str], where: str = "") -> int:
    how = f"was killed by {signal.Signals(-rc).name}" if rc < 0 else f"exited with code {rc}"
    if rc < 0 and -rc in received and -rc != signal.SIGINT:  # stopped as asked: end the same way
        _say(f"parity: stopped by {signal.Signals(-rc).name} before a verdict")
        signal.signal(-rc, signal.SIG_DFL)
        os.kill(os.getpid(), -rc)
    if signal.SIGINT in received:
        _say(_INTERRUPTED)
        return EXIT_INTERRUPTED
    command = shlex.join(["parity", *argv])
    if where:
        _say(f"parity: error: the run ended without a verdict: the process {how} {where} (it called os._exit, "
             f"or was killed?), during `{command}`")
    else:
        _say(f"parity: error: the run ended without a verdict: the process {how} during `{command}` "
             "(a port called os._exit or was killed?)")
    return EXIT_PORT


def child(fd: int, main) -> None:
    """The supervised side: run the command (``main(argv)``), write its exit code on ``fd``, exit with it."""
    os.set_inheritable(fd, False)
    report_to(fd)
    argv = sys.argv[1:]
    sys.argv = ["parity", *argv]
    signal.signal(signal.SIGINT, _once())
    try:
        code = main(argv)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the verdict is in: the rest is shutting down
    except SystemExit as exc:  # argparse: --help, --version, a bad option (it printed why)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            _say(exc.code)
    except KeyboardInterrupt:  # between main's own handler and here
        _say(_INTERRUPTED)
        code = EXIT_INTERRUPTED
    except BaseException as exc:  # noqa: BLE001 -- main catches every Exception: this is a bug of parity's
        _say(f"parity: error: internal error: {type(exc).__name__}: {exc} -- a bug in parity; please report it")
        code = EXIT_INTERNAL
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    progress()
    report_to(None)
    try:
        os.write(fd, b"=%d\n" % code)
        os.close(fd)
    except OSError:  # the supervisor is gone
        pass
    sys.exit(code)


def _once():
    """A SIGINT handler that raises KeyboardInterrupt once per Ctrl-C: the terminal sends it to this
    process and the supervisor passes its own on too, a moment apart."""
    last = [-1e9]

    def handler(signum, frame) -> None:
        now = time.monotonic()
        if now - last[0] < 1.0:
            return
        last[0] = now
        raise KeyboardInterrupt

    return handler
