"""The dense gradient property bench (``python -m parity.tools.bench properties``, ``make bench-properties``).

How many examples per second the gradient property runs: a TF1 graph per example (naive)
vs graphs cached by structure, the same driven by hypothesis, and all four ports.
"""

from __future__ import annotations

import os
import time

import numpy as np

__all__ = ["configs", "run"]


def _machine() -> None:
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")



_SHAPES = ((4, 8, 3), (4, 6, 6, 3), (5, 8, 2), (3, 4, 4, 4, 2))


def configs(n: int, seed: int = 0) -> list[dict]:
    """Return ``n`` gradient-property configs over a few repeating structures."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        out.append(
            {
                "widths": _SHAPES[i % len(_SHAPES)],
                "activation": "relu",
                "loss": "softmax_xent",
                "init_scale": float(10 ** rng.uniform(-3, 0)),
                "batch": int(rng.integers(1, 9)),
                "optimizer": {"name": "sgd", "lr": float(10 ** rng.uniform(-3, -0.3))},
                "steps": 1,
                "seed": i,
            }
        )
    return out


def _property(config, ports) -> bool:
    from parity.comparison.comparator import compare
    from parity.run.runner import run_port
    from parity.strategies import dense_case

    case = dense_case(config, ports=ports)
    traces = [run_port(case, p, "float64") for p in ports]
    return all(compare(traces[0], t, cost=case.cost).ok for t in traces[1:])


def _hypothesis_rate(n: int, ports) -> float:
    from hypothesis import Phase, given, settings  # noqa: PLC0415

    from parity.strategies import COVERING_STRUCTURES, dense_configs  # noqa: PLC0415

    structures = [dict(s, clip=None, max_norm=None) for s in COVERING_STRUCTURES]

    @settings(max_examples=n, database=None, deadline=None, derandomize=True, phases=[Phase.generate])
    @given(dense_configs(structures=structures, min_steps=1, max_steps=1))
    def prop(config):
        assert _property(config, ports), config

    prop()  # build the structures' graphs outside the timing
    started = time.perf_counter()
    prop()
    return n / (time.perf_counter() - started)


def run(n_naive: int = 10, n_cached: int = 200, *, all_ports: int = 100) -> dict[str, float]:
    """Measure examples/s of the gradient property, naive and cached; return the figures."""
    from parity.run.boundary import load_port_module

    tf1_dense = load_port_module("tf1", "dense")  # the benchmark drives the ports (their structure cache)

    ports = ("numpy", "tf1")
    _property(configs(1)[0], ports)  # import TensorFlow and warm up outside the timings
    tf1_dense.clear_cache()

    started = time.perf_counter()
    for cfg in configs(n_naive, seed=1):
        tf1_dense.clear_cache()
        assert _property(cfg, ports), cfg
    naive = n_naive / (time.perf_counter() - started)
    tf1_dense.clear_cache()

    started = time.perf_counter()
    for cfg in configs(n_cached, seed=2):  # includes building the few structures' graphs
        assert _property(cfg, ports), cfg
    cached = n_cached / (time.perf_counter() - started)

    out = {"naive": naive, "cached": cached, "ratio": cached / naive}
    try:  # the same property driven by hypothesis (draws, engine), cached structures
        out["hypothesis"] = _hypothesis_rate(n_cached, ports)
    except ImportError:  # hypothesis is a test dependency
        pass
    if all_ports:
        four = ("numpy", "tf1", "tf2", "torch")
        started = time.perf_counter()
        for cfg in configs(all_ports, seed=3):
            assert _property(cfg, four), cfg
        out["all_ports"] = all_ports / (time.perf_counter() - started)
    return out


def _properties_main(args) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny tensors: thread pools only add overhead on 2 cores
    r = run(args.naive, args.cached, all_ports=args.all_ports)
    _machine()
    print("dense gradient property (TF1 vs numpy oracle, float64, 1 step, every stage compared):")
    print(f"  naive (graph per example): {r['naive']:8.1f} examples/s  ({args.naive} examples)")
    print(f"  cached by structure:       {r['cached']:8.1f} examples/s  ({args.cached} examples, {len(_SHAPES)} structures)")
    print(f"  speed-up:                  {r['ratio']:8.1f}x")
    if "hypothesis" in r:
        print(f"  cached, drawn by hypothesis:{r['hypothesis']:8.1f} examples/s  ({args.cached} examples, 6 covering structures)")
    if "all_ports" in r:
        print(f"  all four ports, cached:    {r['all_ports']:8.1f} examples/s  (numpy, tf1, tf2, torch)")
    return 0


