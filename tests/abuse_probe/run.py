"""Run the abuse probe: ``python -m tests.abuse_probe.run [-k WORDS] [--fast] [--category C] [--keep DIR]``.

Prints one row per case (case, expected exit, got, held/BROKE, seconds, what broke), then a
total; exits 1 if any case broke. Cases needing a framework that is not installed are skipped
(and counted as such). Run from the repository root.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .cases import CASES
from .probe import Probe, base_env, entry, has, judge, run_probe

FIXTURES = Path(tempfile.gettempdir()) / "parity-abuse-fixtures"

# The shared traces the `traces` and `outputs` cases read (recorded once per probe run).
_RECORD = {
    "numpy.trace": ("seed004_oscillate", "numpy", "float64"),
    "numpy32.trace": ("seed004_oscillate", "numpy", "float32"),
    "other.trace": ("seed004_constant", "numpy", "float64"),
    "torch.trace": ("seed004_oscillate", "torch", "float64"),
}


def make_fixtures(fx: Path = FIXTURES) -> Path:
    fx.mkdir(parents=True, exist_ok=True)
    for name, (case, port, dtype) in _RECORD.items():
        if (fx / name).exists() or (port == "torch" and not has("torch")):
            continue
        subprocess.run([*entry(), "record", case, "--port", port, "--dtype", dtype, "-o", str(fx / name)],
                       check=True, capture_output=True, env=base_env())
    if not (fx / "torch.trace").exists():  # no torch: compare two numpy traces
        shutil.copy(fx / "numpy.trace", fx / "torch.trace")
    return fx


def skipped(p: Probe) -> str:
    return f"needs {p.needs}" if p.needs and not has({"tf": "tensorflow"}.get(p.needs, p.needs)) else ""


def run(cases, keep: Path | None = None, out=sys.stdout) -> tuple[int, int, int, float]:
    """Run ``cases``; print a row each; return (held, broke, skipped, seconds)."""
    fx = make_fixtures()
    base = keep or Path(tempfile.mkdtemp(prefix="parity-abuse-"))
    held = broke = skip = 0
    started = time.monotonic()
    width = max(len(p.name) for p in cases)
    print(f"{'case':<{width}}  {'category':<11}  {'expected':<10}  {'got':>5}  {'':5}  seconds", file=out)
    for i, p in enumerate(cases):
        why = skipped(p)
        if why:
            skip += 1
            print(f"{p.name:<{width}}  {p.category:<11}  {p.expected():<10}  {'-':>5}  skip   {why}", file=out)
            continue
        o = run_probe(p, base / f"{i:03d}", fx)
        bad = judge(p, o)
        held, broke = held + (bad is None), broke + (bad is not None)
        mark = "held" if bad is None else "BROKE"
        if bad and p.known:
            bad += f"  [known: {p.known}]"
        print(f"{p.name:<{width}}  {p.category:<11}  {p.expected():<10}  {o.rc:>5}  {mark:<5}  {o.seconds:6.1f}"
              + (f"  {bad}" if bad else ""), file=out, flush=True)
    seconds = time.monotonic() - started
    print(f"\n{len(cases)} cases: {held} held, {broke} BROKE, {skip} skipped; {seconds:.0f} s", file=out)
    if keep is None:
        shutil.rmtree(base, ignore_errors=True)
    return held, broke, skip, seconds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.abuse_probe.run", description=__doc__.splitlines()[0])
    ap.add_argument("-k", default="", help="only cases whose name contains each of these words")
    ap.add_argument("--category", default="", help="only this category")
    ap.add_argument("--fast", action="store_true", help="only the cases of the default test suite")
    ap.add_argument("--keep", type=Path, help="keep each case's directory under this one")
    args = ap.parse_args(argv)
    cases = [p for p in CASES if all(w.lower() in p.name.lower() for w in args.k.split())
             and (not args.category or p.category == args.category) and (p.fast or not args.fast)]
    if not cases:
        print("no case matches", file=sys.stderr)
        return 2
    _, broke, _, _ = run(cases, args.keep)
    return 1 if broke else 0


if __name__ == "__main__":
    sys.exit(main())
