"""Benchmarks: what recording and comparing costs (time, memory, bytes), and the property bench.

``make bench`` (``python -m parity.tools.bench``) prints, side by side, from one run:

* **overhead**: the bare training loop of a case (each port's ``train(batch)``: the step a
  user's own loop runs, nothing recorded) against the same steps run by
  :func:`parity.run.runner.run_case` (every stage recorded, compared step by step, summary
  mode). Ratio = (recorded wall time - the ports' build time) / bare loop time; target
  <= 1.15. Bare and recorded runs alternate (``--repeats``) and the fastest of each counts:
  the machine is shared and noisy, ratios measured side by side are what holds. Measured
  (realsize_transformer, TF2 and torch, float32, 10 steps, 2 loaded cores): 1.09 CPU, 1.26
  wall (1.01-1.27 CPU over eight more runs); 1.93-2.44 CPU before summaries were computed
  in place (:mod:`parity.trace.summary` says how: a step's 103 MB are summarized in 30-55 ms, the
  health series read the same summaries, the port boundary copies each tensor once);
* **memory**: peak resident memory of a 50-step and a 500-step run of one case, each in a
  fresh interpreter (``ru_maxrss``): a streamed run must not grow with the steps (target:
  within 10 %);
* **trace bytes per step**: a port's trace file written in full and in summary mode;
* **the comparisons' measure**: a step's tensor pairs measured one by one against together
  (:mod:`parity.tools.benchcompare`; the same numbers, checked);
* **parity diff**: ``parity diff`` of examples/seed001 at the seed's size (10 steps, both dtypes, workers)
  against the two programs run bare (``python FILE``: imports, build, the steps): CPU ratio (target <= 3)
  and the largest process's peak (:mod:`parity.tools.benchdiff`; ``python -m parity.tools.bench diff`` alone);
* **torch alone on the CPU**: the overhead ratio of the torch port by itself (recorded to a
  summary trace file vs its bare loop), the CPU twin of the CUDA figure;
* **CUDA**: the same overhead ratio for the torch side on the GPU (``PARITY_TORCH_DEVICE=cuda``,
  bare loop vs the port recorded to a summary trace file) where torch sees a CUDA device;
  skipped otherwise;
* **summaries on the device**: one real-size step's summaries computed on the GPU
  (:mod:`torch_impl.trace.stats`, one host copy a step) against copying every tensor to the host
  and summarizing there, side by side (:func:`stats_timing`); skipped without CUDA.

``python -m parity.tools.bench overhead --steps 5 --profile 25`` profiles one recorded run instead
(cProfile, the 25 costliest functions by cumulative time): where the overhead goes.

``python -m parity.tools.bench properties`` (``make bench-properties``) is the dense gradient
property bench: a TF graph per example vs graphs cached by structure.

A benchmark, not a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time

import numpy as np

from parity.run.interpreter import python
from parity.tools.benchprops import _machine, _properties_main  # noqa: F401  (the property bench: python -m parity.tools.bench properties)
from parity.tools.benchcompare import compare_timing
from parity.tools.benchdiff import diff_cost, print_diff_cost
from parity.tools.benchstats import cuda_available, stats_timing

__all__ = ["overhead", "profile_recorded", "peak_memory", "trace_bytes", "cuda_overhead", "stats_timing", "main"]

#: The case of the overhead and trace-size figures: a model whose step costs what real steps cost.
OVERHEAD_CASE = "realsize_transformer"
#: The case of the memory figure (the issue's: seed 002's MLP, 50 vs 500 steps).
MEMORY_CASE = "seed002_clip_value"
#: Its ports for the bench: TF1 and torch, both dtypes (all four ports run 500 steps in ~10 min
#: on 2 loaded cores; these two hold TensorFlow and torch, what memory there is).
MEMORY_PORTS = ("tf1", "torch")


# -- overhead: bare loop vs recorded and compared ---------------------------------------------------------
def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(t0: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clocks()
    return wall - t0[0], cpu - t0[1]


def _bare(case, port: str, dtype: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """Build ``port``, then time its bare loop over the case's batches; return ((wall, cpu) build, loop)."""
    from parity.cases.case import PortSpec
    from parity.cases.data import iter_batches
    from parity.errors import ParityError
    from parity.cases.params import draw_parameters
    from parity.run.runner import load_port_module

    spec = PortSpec.parse(port)
    t0 = _clocks()
    mod = load_port_module(spec.framework, case.module)
    instance = mod.build(case, dtype, spec.variant)
    if not callable(getattr(instance, "train", None)):
        raise ParityError(f"port {port} of {case.module} has no train(batch) (the bare step the bench times)")
    instance.load(draw_parameters(case, dtype))
    build = _since(t0)
    t1 = _clocks()
    for batch in iter_batches(case, dtype):
        instance.train(batch)
    loop = _since(t1)
    close = getattr(instance, "close", None)
    if callable(close):
        close()
    return build, loop


def _recorded(case, ports: tuple[str, ...], dtype: str, summary: bool) -> tuple[tuple[float, float], bool]:
    """Run the case through the harness (one port: recorded to a file; more: run_case); return ((wall, cpu), ok)."""
    from parity.run.runner import record_port, run_case

    t0 = _clocks()
    if len(ports) == 1:
        with tempfile.TemporaryDirectory(prefix="parity-bench-") as tmp:
            record_port(case, ports[0], dtype, os.path.join(tmp, "port.trace"), summary=summary)
        return _since(t0), True
    result = run_case(case, dtypes=(dtype,), ports=ports, summary=summary)
    took = _since(t0)
    ok = result.passed
    result.release()
    return took, ok


def overhead(case_name: str = OVERHEAD_CASE, *, steps: int = 10, dtype: str = "float32",
             ports: tuple[str, ...] | None = None, repeats: int = 2, summary: bool = True) -> dict:
    """Time the bare loop against the recorded-and-compared run of the same steps.

    Every port is built once first (imports, framework start-up: outside the timings).
    Then ``repeats`` rounds of (bare loops of every port, one recorded run); the fastest of
    each counts. Times are wall and process CPU seconds: CPU time is the steadier on a
    shared machine (other processes' load does not count), wall time what a user waits.

    Returns a dict: ``bare``/``build``/``recorded`` as {"wall": s, "cpu": s}, ``ratio`` and
    ``ratio_wall`` ((recorded - build) / bare, CPU and wall), ``per_step_bare`` (wall),
    ``ok`` (the recorded run passed), ``steps``, ``ports``, ``dtype``, ``device``.
    """
    from parity.cases.registry import get_case

    case = get_case(case_name).replace(steps=steps)
    ports = tuple(ports or case.ports)
    for p in ports:  # warm up: import the frameworks, trace nothing that is timed later
        _bare(case.replace(steps=1), p, dtype)
    bare, build, recorded, ok = [], [], [], True
    for _ in range(max(repeats, 1)):
        timings = [_bare(case, p, dtype) for p in ports]
        build.append(tuple(sum(t[0][k] for t in timings) for k in (0, 1)))
        bare.append(tuple(sum(t[1][k] for t in timings) for k in (0, 1)))
        took, passed = _recorded(case, ports, dtype, summary)
        recorded.append(took)
        ok = ok and passed
    fastest = {k: {"wall": min(v[0] for v in vals), "cpu": min(v[1] for v in vals)}
               for k, vals in (("bare", bare), ("build", build), ("recorded", recorded))}

    def ratio(clock):
        b = fastest["bare"][clock]
        return (fastest["recorded"][clock] - fastest["build"][clock]) / b if b > 0 else float("nan")

    return {
        "case": case_name, "steps": steps, "ports": list(ports), "dtype": dtype, "summary": summary, **fastest,
        "ratio": ratio("cpu"), "ratio_wall": ratio("wall"), "per_step_bare": fastest["bare"]["wall"] / steps,
        "ok": ok, "device": os.environ.get("PARITY_TORCH_DEVICE", "cpu"),
    }


# -- peak memory: 50 vs 500 steps, each in a fresh interpreter --------------------------------------------
_MEMORY_SNIPPET = """
import json, resource, sys, time
from parity.cases.registry import get_case
from parity.run.runner import run_case
case = get_case(sys.argv[1]).replace(steps=int(sys.argv[2]))
ports = sys.argv[4].split(",") if sys.argv[4] else None
started = time.perf_counter()
result = run_case(case, summary=sys.argv[3] == "1", ports=ports)
print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "passed": result.passed,
                  "seconds": time.perf_counter() - started}))
"""


def peak_memory(case_name: str = MEMORY_CASE, step_counts=(50, 500), *, summary: bool = False,
                ports: tuple[str, ...] | None = MEMORY_PORTS) -> list[dict]:
    """Run ``case_name`` for each step count in a fresh interpreter; return peak RSS (MB), seconds, passed."""
    out = []
    for n in step_counts:
        cmd = python(_MEMORY_SNIPPET, case_name, n, "1" if summary else "0", ",".join(ports or ()))
        proc = subprocess.run(cmd,
                              capture_output=True, text=True, env=dict(os.environ))
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            out.append({"steps": n, "error": last})
            continue
        r = json.loads(lines[-1])
        out.append({"steps": n, "peak_mb": r["maxrss_kb"] / 1024.0, "seconds": r["seconds"], "passed": r["passed"]})
    return out


# -- trace bytes per step ---------------------------------------------------------------------------------
def trace_bytes(case_name: str = OVERHEAD_CASE, *, steps: int = 2, port: str = "torch",
                dtype: str = "float32") -> dict:
    """Record ``port`` in full and in summary mode; return the bytes each step adds, and a whole run's.

    A trace file starts with the manifest and the initial parameters (in full in both
    modes: 21 MB for the real-size transformer), then adds one record per step: the
    per-step figure is (size after ``steps`` steps - size after 0) / ``steps``; the run
    figure is a file of the case's own step count, extrapolated from those two sizes.
    """
    from parity.cases.registry import get_case

    base = get_case(case_name)
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="parity-bench-") as tmp:
        for mode in ("full", "summary"):
            start = _trace_size(base.replace(steps=0), port, dtype, os.path.join(tmp, f"{mode}0.trace"), mode)
            end = _trace_size(base.replace(steps=steps), port, dtype, os.path.join(tmp, f"{mode}.trace"), mode)
            sizes[mode] = (end - start) / steps
            sizes[f"{mode}_run"] = start + base.steps * sizes[mode]
    return {"case": case_name, "port": port, "dtype": dtype, "steps": steps, "run_steps": base.steps, **sizes,
            "ratio": sizes["summary"] / sizes["full"] if sizes["full"] else float("nan"),
            "run_ratio": sizes["summary_run"] / sizes["full_run"] if sizes["full_run"] else float("nan")}


def _trace_size(case, port: str, dtype: str, path: str, mode: str) -> int:
    from parity.run.runner import record_port

    written, _ = record_port(case, port, dtype, path, summary=mode == "summary")
    size = os.path.getsize(written)
    os.remove(written)
    return size


# -- CUDA: the torch side on the GPU ----------------------------------------------------------------------
def cuda_overhead(case_name: str = OVERHEAD_CASE, *, steps: int = 10, repeats: int = 2) -> dict | None:
    """The torch side's overhead ratio on the GPU, in a fresh interpreter; None where there is no CUDA."""
    if not cuda_available():
        return None
    env = dict(os.environ, PARITY_TORCH_DEVICE="cuda")
    cmd = python("from parity.tools.bench import main; raise SystemExit(main())", "overhead", "--case", case_name,
                 "--steps", steps, "--ports", "torch", "--repeats", repeats, "--json")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["(no output)"])[-1]}
    return json.loads(lines[-1])


# -- printing ---------------------------------------------------------------------------------------------
def _print_overhead(o: dict, label: str) -> None:
    if "error" in o:
        print(f"  {label}: failed: {o['error']}")
        return
    verdict = "ok" if o["ratio"] <= 1.15 else "ABOVE the 1.15 target"
    print(f"  {label}: {o['case']}, {', '.join(o['ports'])}, {o['dtype']}, {o['steps']} steps, "
          f"{'summary' if o['summary'] else 'full'} comparison ({o['device']})")
    print(f"    {'':10s} {'wall s':>8s} {'CPU s':>8s}")
    print(f"    {'bare loop':10s} {o['bare']['wall']:8.2f} {o['bare']['cpu']:8.2f}  "
          f"({o['per_step_bare'] * 1000:.0f} ms/step wall; every port's train(batch))")
    print(f"    {'build':10s} {o['build']['wall']:8.2f} {o['build']['cpu']:8.2f}  (the ports, built and loaded)")
    print(f"    {'recorded':10s} {o['recorded']['wall']:8.2f} {o['recorded']['cpu']:8.2f}  "
          f"(run_case, builds included; the run {'passed' if o['ok'] else 'FAILED'})")
    print(f"    ratio      {o['ratio_wall']:8.2f} {o['ratio']:8.2f}  ({verdict}, CPU; (recorded - build) / bare)")


def _default_main(args) -> int:
    _machine()
    print("recording and comparing vs the bare training loop (fastest of "
          f"{args.repeats} alternating runs each):")
    _print_overhead(overhead(args.case, steps=args.steps, repeats=args.repeats), "CPU")
    ports = tuple(args.memory_ports.split(",")) if args.memory_ports else None
    print(f"\npeak resident memory, each run in a fresh interpreter ({', '.join(ports or ('every port',))}, "
          "float64 and float32, streamed):")
    mem = peak_memory(args.memory_case, tuple(args.memory_steps), ports=ports)
    for m in mem:
        if "error" in m:
            print(f"  {args.memory_case} {m['steps']:4d} steps: failed: {m['error']}")
        else:
            print(f"  {args.memory_case} {m['steps']:4d} steps: {m['peak_mb']:7.0f} MB  ({m['seconds']:.1f} s, "
                  f"{'passed' if m['passed'] else 'FAILED'})")
    ok = [m for m in mem if "peak_mb" in m]
    if len(ok) >= 2:
        growth = ok[-1]["peak_mb"] / ok[0]["peak_mb"] - 1.0
        print(f"  growth {ok[0]['steps']} -> {ok[-1]['steps']} steps: {growth * 100:+.1f} % "
              f"({'ok' if abs(growth) <= 0.10 else 'ABOVE the 10 % target'})")
    tb = trace_bytes(args.case, steps=args.trace_steps)
    print(f"\ntrace bytes per step ({tb['case']}, {tb['port']}, {tb['dtype']}; what each step adds to the file):")
    print(f"  full     {tb['full'] / 1e6:12.3f} MB/step   a {tb['run_steps']}-step trace: {tb['full_run'] / 1e6:9.1f} MB")
    print(f"  summary  {tb['summary'] / 1e6:12.3f} MB/step   a {tb['run_steps']}-step trace: {tb['summary_run'] / 1e6:9.1f} MB"
          f"  ({tb['ratio'] * 100:.2f} % per step, {tb['run_ratio'] * 100:.2f} % per run, initial "
          f"parameters included; target <= 1 %)")
    ct = compare_timing()
    print(f"\nthe comparisons' measure, a step's {ct['tensors']} tensor pairs ({ct['case']}, float64 vs float32): one by "
          f"one {ct['one_s'] * 1e3:.2f} ms, together {ct['together_s'] * 1e3:.2f} ms: {ct['ratio']:.1f}x"
          f"{'' if ct['same'] else '  (NOT the same numbers)'}")
    print("\nparity diff of two programs against the two run bare (CPU; parity.tools.benchdiff):")
    print_diff_cost(diff_cost(steps=args.steps))
    print("\ntorch alone on the CPU (bare loop vs recorded to a summary trace; the CUDA figure's twin):")
    _print_overhead(overhead(args.case, steps=args.steps, ports=("torch",), repeats=args.repeats), "CPU, torch")
    print("\ntorch on CUDA (bare loop vs recorded to a summary trace):")
    cu = cuda_overhead(args.case, steps=args.steps, repeats=args.repeats)
    if cu is None:
        print("  skipped: torch sees no CUDA device here")
    else:
        _print_overhead(cu, "CUDA")
    print("\none real-size step's summaries, on the device vs copied to the host first (torch_impl.trace.stats):")
    st = stats_timing("cuda")
    if st is None:
        print("  skipped: torch sees no CUDA device here")
    elif "error" in st:
        print(f"  failed: {st['error']}")
    else:
        print(f"  {st['tensors']} tensors, {st['elements'] / 1e6:.0f}M elements on {st['device']}: device "
              f"{st['device_s'] * 1000:.1f} ms, host {st['host_s'] * 1000:.1f} ms: ratio {st['ratio']:.2f}")
    return 0


def profile_recorded(case_name: str = OVERHEAD_CASE, *, steps: int = 5, dtype: str = "float32", top: int = 25) -> None:
    """Print where a recorded and compared run spends its time: cProfile, cumulative, parity's own code first."""
    import cProfile
    import pstats

    from parity.cases.registry import get_case

    case = get_case(case_name).replace(steps=steps)
    for p in case.ports:  # warm up: the frameworks' imports are not what is profiled
        _bare(case.replace(steps=1), p, dtype)
    prof = cProfile.Profile()
    prof.runcall(_recorded, case, tuple(case.ports), dtype, True)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(r"parity/|_impl/|numpy|zlib|isal", top)


def _overhead_main(args) -> int:
    ports = tuple(args.ports.split(",")) if args.ports else None
    if args.profile:
        profile_recorded(args.case, steps=args.steps, top=args.profile)
        return 0
    o = overhead(args.case, steps=args.steps, ports=ports, repeats=args.repeats)
    if args.json:
        print(json.dumps(o))
    else:
        _print_overhead(o, o["device"])
    return 0


def main(argv=None) -> int:
    """Run the benchmark (default: overhead, memory, trace bytes, CUDA) and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m parity.tools.bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what")
    parser.add_argument("--case", default=OVERHEAD_CASE, help="case of the overhead and trace-size figures")
    parser.add_argument("--steps", type=int, default=10, help="steps of the overhead runs")
    parser.add_argument("--repeats", type=int, default=2, help="alternating bare/recorded runs (the fastest counts)")
    parser.add_argument("--memory-case", default=MEMORY_CASE, help="case of the memory figure")
    parser.add_argument("--memory-steps", type=int, nargs="+", default=[50, 500], help="step counts compared")
    parser.add_argument("--memory-ports", default=",".join(MEMORY_PORTS), help="its ports ('' for the case's)")
    parser.add_argument("--trace-steps", type=int, default=2, help="steps recorded for the trace sizes")
    ov = sub.add_parser("overhead", help="only the overhead ratio (used for the CUDA figure)")
    ov.add_argument("--case", default=OVERHEAD_CASE)
    ov.add_argument("--steps", type=int, default=10)
    ov.add_argument("--repeats", type=int, default=2)
    ov.add_argument("--ports", help="comma-separated ports (default: the case's)")
    ov.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    ov.add_argument("--profile", type=int, metavar="N", default=0,
                    help="instead: profile one recorded run (cProfile) and print its N costliest functions")
    df = sub.add_parser("diff", help="only parity diff of examples/seed001 (seed's size) against the programs run bare")
    df.add_argument("--steps", type=int, default=10)
    df.add_argument("--repeats", type=int, default=1, help="alternating bare/diff runs (the fastest counts)")
    pr = sub.add_parser("properties", help="the dense gradient property bench (graph per example vs cached)")
    pr.add_argument("--naive", type=int, default=10, help="examples run naively (a graph each)")
    pr.add_argument("--cached", type=int, default=200, help="examples run with cached graphs")
    pr.add_argument("--all-ports", type=int, default=100, help="examples of the 4-port property (0: skip)")
    args = parser.parse_args(argv)
    if args.what == "properties":
        return _properties_main(args)
    if args.what == "overhead":
        return _overhead_main(args)
    if args.what == "diff":
        print_diff_cost(diff_cost(steps=args.steps, repeats=args.repeats))
        return 0
    return _default_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
