"""``make bench``'s ``parity diff`` figure: a diff of two programs against the programs run bare, side by side.

The pair is ``examples/seed001`` at the seed's size (batch 128; the examples use 16 to keep the tutorial
fast): ``parity diff REF PORT --steps N`` (both dtypes, worker processes) against each program run as its
author runs it, ``python FILE`` (imports, build, N float32 steps at batch 128, nothing recorded). Each run is
a child process (under a launcher of its own); its CPU time is user + sys of it and every process it
waited for (``RUSAGE_CHILDREN``: the diff's workers included; those forked by a program's zygote are reaped by
it, counted in its children's usage), its peak the largest of those processes' resident peaks (``ru_maxrss``).

    ratio = diff's CPU / (the reference's bare CPU + the port's bare CPU)      target <= 3 (issue 21, item 5)

Bare and diff runs alternate (``repeats``) and the fastest of each counts: the machine is shared, only
ratios measured side by side hold. numpy only; the programs run in fresh interpreters.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time

from parity.run.interpreter import python as _python

__all__ = ["PAIR", "seed_size", "diff_cost", "print_diff_cost"]

_EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")
#: the pair, and what makes each file the seed's size and its own ``__main__`` run ``steps`` steps
PAIR = {
    "reference": ("seed001/tf1_convnet.py", [("batch_size = 16  # the tutorial: 128", "batch_size = 128"),
                                             ("enumerate(batches())", "enumerate(batches({steps}))"),
                                             # the tutorial's TF1 script, run on TensorFlow 2 as its author would
                                             ('if __name__ == "__main__":\n',
                                              'if __name__ == "__main__":\n    tf.disable_eager_execution()\n')]),
    "port": ("seed001/torch_convnet.py", [("batch_size=16, seed=1", "batch_size=128, seed=1"),
                                          ("enumerate(batches())", "enumerate(batches({steps}))")]),
}


def seed_size(folder: str, steps: int, examples: str = _EXAMPLES) -> dict:
    """The pair's files at the seed's size, written into ``folder``: ``{"reference": path, "port": path}``.
    Raises ValueError when an example no longer holds a line to change (the figure would not be the seed's)."""
    out = {}
    for side, (rel, edits) in PAIR.items():
        with open(os.path.join(examples, rel), encoding="utf-8") as f:
            text = f.read()
        for old, new in edits:
            if text.count(old) != 1:
                raise ValueError(f"examples/{rel} no longer holds {old!r} once: update parity/tools/benchdiff.py")
            text = text.replace(old, new.format(steps=steps))
        out[side] = os.path.join(folder, os.path.basename(rel))
        with open(out[side], "w", encoding="utf-8") as f:
            f.write(text)
    return out


#: run in a fresh interpreter around each measured command: its own children's usage, the largest peak
#: among them only (``RUSAGE_CHILDREN`` of this process would keep the largest peak of every run before)
_LAUNCH = ("import json, resource, subprocess, sys; rc = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL).returncode; "
           "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
           "json.dump({'rc': rc, 'cpu': u.ru_utime + u.ru_stime, 'peak_mb': u.ru_maxrss / 1024}, open(sys.argv[1], 'w'))")


def _timed(cmd: list, python: str | None = None) -> dict:
    """Run ``cmd``; its wall time, CPU (user + sys of it and its waited-for descendants: a diff's workers) and
    the largest resident peak among those processes (MB)."""
    import json

    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        t0 = time.perf_counter()
        launcher = _python(_LAUNCH, f.name, *cmd, watch=False)  # isolated from the working directory (-P)
        if python:
            launcher[0] = python
        proc = subprocess.run(launcher, stderr=subprocess.PIPE, text=True,
                              cwd=tempfile.gettempdir())
        wall = time.perf_counter() - t0
        try:
            with open(f.name) as g:
                out = json.load(g)
        except (OSError, ValueError):
            out = {"rc": proc.returncode, "cpu": float("nan"), "peak_mb": float("nan")}
    out["wall"] = wall
    if out["rc"] not in (0, 1):  # diff: 1 = a divergence found (a result, not a failure)
        out["error"] = (proc.stderr.strip().splitlines() or [f"exit {out['rc']}"])[-1]
    return out


def diff_cost(steps: int = 10, repeats: int = 1, python: str | None = None) -> dict:
    """The figure: bare runs and ``parity diff`` of the pair, alternating; the fastest of each (CPU)."""
    python = python or _python("")[0]  # this interpreter
    runs: dict = {"reference": [], "port": [], "diff": []}
    with tempfile.TemporaryDirectory(prefix="parity-bench-diff-") as folder:
        files = seed_size(folder, steps)
        for _ in range(max(1, repeats)):
            for side in ("reference", "port"):
                runs[side].append(_timed([python, files[side]], python))
            runs["diff"].append(_timed([python, "-m", "parity", "diff", files["reference"], files["port"],
                                        "--steps", str(steps)], python))
    best = {k: min(v, key=lambda r: r["cpu"]) for k, v in runs.items()}
    errors = [f"{k}: {r['error']}" for k, r in best.items() if "error" in r]
    bare_cpu = best["reference"]["cpu"] + best["port"]["cpu"]
    bare_wall = best["reference"]["wall"] + best["port"]["wall"]
    out = {"steps": steps, "repeats": max(1, repeats), "runs": best, "errors": errors,
           "ratio": best["diff"]["cpu"] / bare_cpu if bare_cpu else float("nan"),
           "ratio_wall": best["diff"]["wall"] / bare_wall if bare_wall else float("nan"),
           "peak_mb": best["diff"]["peak_mb"], "load": os.getloadavg()[0]}
    return out


def print_diff_cost(d: dict) -> None:
    print(f"  examples/seed001 at the seed's size (batch 128), {d['steps']} steps; load {d['load']:.1f}; "
          f"fastest of {d['repeats']}")
    if d["errors"]:
        print(f"  failed: {'; '.join(d['errors'])}")
        return
    print(f"    {'':28s} {'wall s':>8s} {'CPU s':>8s} {'peak MB':>8s}")
    labels = {"reference": "python tf1_convnet.py (bare)", "port": "python torch_convnet.py", "diff": "parity diff (both dtypes)"}
    for k, label in labels.items():
        r = d["runs"][k]
        print(f"    {label:28s} {r['wall']:8.1f} {r['cpu']:8.1f} {r['peak_mb']:8.0f}")
    verdict = "ok" if d["ratio"] <= 3.0 else "ABOVE the 3x target"
    print(f"    ratio (diff / both bare)     {d['ratio_wall']:8.2f} {d['ratio']:8.2f}  ({verdict}, CPU); largest "
          f"process {d['peak_mb']:.0f} MB ({'ok' if d['peak_mb'] <= 1500 else 'ABOVE the 1.5 GB target'})")
