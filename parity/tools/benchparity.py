"""``make bench``'s ``make parity`` figure: ``parity run --all`` as ``make parity`` runs it (jobs, the zygote)
and in one harness (``--jobs 1``, ``PARITY_ZYGOTE=0``: how it ran before), side by side on this machine.

Each run is a child process tree timed as a whole: wall, CPU (user + system of every process, the
zygote's forked workers included: it waits for them) and the largest process's peak memory
(``ru_maxrss`` of the children). Case time is what the run prints as its own (``wall_seconds``).

``--against TREE --pairs N`` measures a change instead: this tree's ``parity run --all`` and another checkout's
(``TREE``, e.g. a clone at the commit before), as ``make parity`` runs them, alternating, ``N`` pairs; each pair's
ratio and their mean, median and spread. One run of ``--all`` varies by several per cent from the next on a shared
machine (docs/performance.md), so a change of a few per cent needs several pairs to be seen at all.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from parity.run.interpreter import python

__all__ = ["parity_cost", "print_parity_cost", "pairs_cost", "print_pairs"]

#: the two ways compared: how ``make parity`` runs, and one harness without the zygote
MODES = (("make parity (jobs, zygote)", (), {}),
         ("one harness (--jobs 1, PARITY_ZYGOTE=0)", ("--jobs", "1"), {"PARITY_ZYGOTE": "0"}))


_PARITY = "import sys; from parity.cli.main import main; sys.exit(main())"  # `parity ARGS`, supervised as the command is
_WRAP = ("import json, resource, subprocess, sys; rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
         "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
         "print(json.dumps([rc, u.ru_utime + u.ru_stime, u.ru_maxrss]), file=sys.stderr)")


def _timed(args: list[str], env: dict) -> dict:
    """Run ``args`` in a wrapper interpreter of its own (so that its children's peak memory is this run's alone);
    return its wall, CPU and the largest process's peak."""
    t0 = time.perf_counter()
    proc = subprocess.run(python(_WRAP, *args, watch=False), env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    lines = proc.stderr.strip().splitlines()
    try:
        rc, cpu, peak_kb = json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"rc": proc.returncode or 1, "wall_s": wall, "cpu_s": float("nan"), "peak_mb": float("nan"),
                "stderr": lines[-1:]}
    return {"rc": rc, "wall_s": wall, "cpu_s": cpu, "peak_mb": peak_kb / 1024, "stderr": lines[-2:-1] if rc else []}


def parity_cost(repeats: int = 1) -> list[dict]:
    """``parity run --all`` in each of :data:`MODES`, alternating, ``repeats`` times each; one dict per run."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="parity-bench-") as tmp:
        for r in range(repeats):
            for name, extra, env in MODES:
                out = os.path.join(tmp, f"report-{r}-{len(rows)}.json")
                row = _timed(python(_PARITY, "run", "--all", "--json", out, *extra, watch=False),
                             dict(os.environ, **env))
                rows.append(dict(_case_time(row, out), mode=name))
    return rows


def print_parity_cost(rows: list[dict]) -> None:
    print("make parity (parity run --all), side by side on this machine:")
    print(f"  {'mode':42s} {'case time':>10s} {'wall':>8s} {'CPU':>8s} {'largest process':>16s}")
    for row in rows:
        bad = f"  exit {row['rc']}: {' '.join(row['stderr'])}" if row["rc"] else ""
        print(f"  {row['mode']:42s} {row['case_s']:9.1f}s {row['wall_s']:7.1f}s {row['cpu_s']:7.1f}s "
              f"{row['peak_mb']:13.0f} MB{bad}")
    first, second = rows[0], rows[1] if len(rows) > 1 else None
    if second is not None and second["case_s"] > 0:
        print(f"  case time {first['case_s'] / second['case_s']:.2f}x, CPU {first['cpu_s'] / second['cpu_s']:.2f}x "
              f"of one harness; target: case time <= 60 s on 2 cores (this machine: {os.cpu_count()} cores)")


def _case_time(row: dict, out: str) -> dict:
    try:
        with open(out) as fh:
            row["case_s"] = json.load(fh)["summary"]["wall_seconds"]
    except (OSError, ValueError, KeyError):
        row["case_s"] = float("nan")
    return row


def pairs_cost(against: str, pairs: int = 3, args=("run", "--all")) -> list[tuple[dict, dict]]:
    """``parity run --all`` (``parity ARGS``) of ``against`` (another checkout's root: its own ``parity``, as
    ``make parity`` runs it) and of this tree, alternating, ``pairs`` times: ``[(theirs, ours), ...]``."""
    root = os.path.abspath(against)
    if not os.path.isfile(os.path.join(root, "parity", "cli", "main.py")):
        raise SystemExit(f"benchparity: {against} is not a checkout of parity (no parity/cli/main.py there)")
    # (the prelude imports nothing of parity without watch: the other checkout's is the first on the path)
    theirs_cmd = python(f"sys.path.insert(0, {root!r}); " + _PARITY, watch=False)
    theirs_env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    out_pairs = []
    with tempfile.TemporaryDirectory(prefix="parity-bench-") as tmp:
        for r in range(pairs):
            got = []
            for who, cmd, env in (("theirs", theirs_cmd, theirs_env), ("ours", python(_PARITY, watch=False), dict(os.environ))):
                out = os.path.join(tmp, f"report-{r}-{who}.json")
                got.append(_case_time(_timed([*cmd, *args, "--json", out], env), out))
            out_pairs.append((got[0], got[1]))
    return out_pairs


def print_pairs(pairs: list[tuple[dict, dict]], against: str) -> None:
    print(f"make parity (parity run --all), this tree against {against}, alternating pairs:")
    print(f"  {'pair':>4s} {'theirs case':>12s} {'ours case':>10s} {'ratio':>6s} {'theirs CPU':>11s} {'ours CPU':>9s} "
          f"{'ratio':>6s} {'largest (ours)':>15s}")
    case_r, cpu_r = [], []
    for k, (a, b) in enumerate(pairs, 1):
        bad = "".join(f"  {w} exit {r['rc']}: {' '.join(r['stderr'])}" for w, r in (("theirs", a), ("ours", b)) if r["rc"])
        cr, ur = b["case_s"] / a["case_s"] if a["case_s"] else float("nan"), b["cpu_s"] / a["cpu_s"] if a["cpu_s"] else float("nan")
        case_r.append(cr)
        cpu_r.append(ur)
        print(f"  {k:4d} {a['case_s']:11.1f}s {b['case_s']:9.1f}s {cr:6.3f} {a['cpu_s']:10.1f}s {b['cpu_s']:8.1f}s "
              f"{ur:6.3f} {b['peak_mb']:12.0f} MB{bad}")
    if case_r:
        spread = f", sd {statistics.stdev(case_r):.3f}" if len(case_r) > 1 else " (one pair: no spread)"
        print(f"  case time ours/theirs: mean {statistics.mean(case_r):.3f}, median {statistics.median(case_r):.3f}{spread}; "
              f"CPU: mean {statistics.mean(cpu_r):.3f}, median {statistics.median(cpu_r):.3f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m parity.tools.benchparity", description=__doc__.split("\n\n")[0])
    ap.add_argument("--against", metavar="TREE", help="another checkout of parity (e.g. a clone at the commit before): "
                    "this tree's make parity against its, alternating")
    ap.add_argument("--pairs", type=int, default=3, help="with --against: how many pairs (default 3)")
    args = ap.parse_args(argv)
    if args.against is None:
        print_parity_cost(parity_cost())
        return 0
    if args.pairs < 1:
        ap.error("--pairs must be >= 1")
    print_pairs(pairs_cost(args.against, args.pairs), args.against)
    return 0


if __name__ == "__main__":
    sys.exit(main())
