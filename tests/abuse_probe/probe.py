"""One abuse case (:class:`Probe`), how it is run (:func:`run_probe`) and judged against the contract (:func:`judge`).

The contract is README's "The command line's contract": exit 0/1/2/3/130 as the fault says
(never 4: that is parity's own bug), one ``parity: error:`` line for bad input, no bare
traceback, never exit 0 without a report. Each probe adds what its fault needs (a file written
or not, a marker a planted module would leave...) as ``check``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

#: commands whose exit 0 must come with a report on stdout
VERDICT_COMMANDS = {"run", "check", "diff", "compare"}


@dataclass
class Outcome:
    rc: int
    out: str
    err: str
    seconds: float
    d: Path  # the case's own directory (its files, its cwd)


@dataclass(frozen=True)
class Probe:
    """One abuse case.

    ``argv``: after ``parity``; ``{d}`` is the case's directory (also its working directory),
    ``{ex}`` the examples folder, ``{fx}`` the shared fixtures (traces recorded once per probe run).
    ``expect``: the exit codes the contract allows. ``setup(d)`` writes the case's files.
    ``check(outcome)``: further contract checks; returns what broke, or None. ``action(d, cmd, env)``
    drives the process itself (signals, concurrency) and returns an :class:`Outcome`.
    """

    name: str
    category: str
    argv: tuple = ()
    expect: tuple = (0,)
    setup: Callable | None = None
    check: Callable | None = None
    action: Callable | None = None
    env: Mapping = field(default_factory=dict)
    module: bool = False  # `python -m parity` instead of the console script
    fast: bool = False  # in the default test suite
    needs: str = ""  # "torch" / "tf": skipped where not installed
    timeout: float = 240
    note: str = ""
    known: str = ""  # a known break, awaiting its fix: where (an xfail under pytest; still counted as BROKE)

    def expected(self) -> str:
        return "/".join(map(str, self.expect)) + (f" {self.note}" if self.note else "")


def entry(module: bool = False) -> list[str]:
    script = shutil.which("parity", path=os.path.dirname(sys.executable))
    if module or not script:
        return [sys.executable, "-m", "parity"]
    return [script]


def base_env(extra: Mapping = ()) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", COLUMNS="100")
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p)
    env.pop("PARITY_WORKERS", None)
    env.update(dict(extra))
    return env


def expand(argv, d: Path, fx: Path) -> list[str]:
    return [str(a).format(d=d, ex=EXAMPLES, fx=fx) for a in argv]


def has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def run_probe(p: Probe, d: Path, fx: Path) -> Outcome:
    d.mkdir(parents=True, exist_ok=True)
    if p.setup is not None:
        p.setup(d)
    cmd, env = entry(p.module), base_env(p.env)
    started = time.monotonic()
    if p.action is not None:
        out = p.action(d, cmd, env, fx, argv=expand(p.argv, d, fx))
        out.seconds = time.monotonic() - started
        return out
    try:
        proc = subprocess.run([*cmd, *expand(p.argv, d, fx)], capture_output=True, text=True, cwd=d, env=env,
                              timeout=p.timeout, errors="replace")
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out, err = -999, str(exc.stdout or ""), f"timed out after {p.timeout} s"
    return Outcome(rc, out, err, time.monotonic() - started, d)


_ARGPARSE = re.compile(r"^parity( \w+)?: error: ", re.M)


def judge(p: Probe, o: Outcome) -> str | None:
    """What broke the contract (None: it held)."""
    if o.rc == -999:
        return o.err
    if o.rc not in p.expect:
        return f"exit {o.rc}: " + _first_line(o.err or o.out)
    tb = "--traceback" in p.argv
    if not tb and ("Traceback (most recent call last)" in o.err or "Traceback (most recent call last)" in o.out):
        return f"exit {o.rc} with a traceback: " + _first_line(o.err[o.err.find("Traceback"):])
    if o.rc == 2 and p.action is None:
        errors = [line for line in o.err.splitlines() if line.startswith("parity: error:")]
        parsed = _ARGPARSE.findall(o.err) and "usage:" in o.err
        if len(errors) != 1 and not parsed:
            return f"exit 2 without one error line: {o.err.strip()[-300:]!r}"
    if o.rc == 0 and p.argv and _command(p.argv) in VERDICT_COMMANDS and not o.out.strip():
        return "exit 0 without a report on stdout"
    if p.check is not None:
        return p.check(o)
    return None


def _command(argv) -> str:
    return next((a for a in argv if not str(a).startswith("-")), "")


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [""])[0][:200]
