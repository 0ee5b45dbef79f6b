"""``make bench``'s ``make parity`` figure: ``parity run --all`` as ``make parity`` runs it (jobs, the zygote)
and in one harness (``--jobs 1``, ``PARITY_ZYGOTE=0``: how it ran before), side by side on this machine.

Each run is a child process tree timed as a whole: wall, CPU (user + system of every process, the
zygote's forked workers included: it waits for them) and the largest process's peak memory
(``ru_maxrss`` of the children). Case time is what the run prints as its own (``wall_seconds``).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time

from parity.run.interpreter import python

__all__ = ["parity_cost", "print_parity_cost"]

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
                try:
                    with open(out) as fh:
                        row["case_s"] = json.load(fh)["summary"]["wall_seconds"]
                except (OSError, ValueError, KeyError):
                    row["case_s"] = float("nan")
                rows.append(dict(row, mode=name))
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


if __name__ == "__main__":
    print_parity_cost(parity_cost())
