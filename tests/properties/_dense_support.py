"""Run a dense config through several ports and check every pair agrees (the shared property).

Imported by the property tests (pytest puts this directory on ``sys.path``).
"""

from __future__ import annotations

import os

from hypothesis import Phase

from parity.comparison.comparator import compare
from parity.run.runner import run_case, run_port
from parity.strategies import COVERING_STRUCTURES, dense_case, normalize_config

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

#: ``dense_configs(structures=STRUCTURES)``: in ci and dev the six covering structures
#: (graphs built once, reused by every example); in thorough ``None``, every structure.
STRUCTURES = None if PROFILE == "thorough" else COVERING_STRUCTURES

#: hypothesis' phases without ``explain``: explaining a found failure re-runs the
#: property hundreds of times (measured: 36 of a teeth test's 50 s), for a report the
#: teeth do not print.
NO_EXPLAIN = tuple(p for p in Phase if p != Phase.explain)


def structures(**override) -> list[dict] | None:
    """Return :data:`STRUCTURES` with ``override`` applied to each (duplicates dropped); None in thorough."""
    if STRUCTURES is None:
        return None
    out = []
    for s in STRUCTURES:
        s = dict(s, **override)
        if s["optimizer"] != "momentum":
            s["nesterov"] = False
        if s not in out:
            out.append(s)
    return out


def _replay_dtypes(dtype: str) -> list[str]:
    return ["float64", "float32"] if dtype == "float32" else [dtype]  # float32 is judged with its float64 run


def replay_command(config, ports, dtype) -> str:
    """Return a shell one-liner that reruns one config and prints each pair's verdict and first divergence."""
    cfg = normalize_config(config)
    code = (
        "from parity.strategies import dense_case; from parity.run.runner import run_case; "
        f"r = run_case(dense_case({cfg!r}, ports={tuple(ports)!r}), dtypes={_replay_dtypes(dtype)!r}, pairs='reference'); "
        "[print(c.pair, c.verdict, c.first_divergence and c.first_divergence.describe()) for c in r.comparisons]"
    )
    return f'python -c "{code}"'


def divergences(config, ports, dtype="float64", stages=None):
    """Return ``[(pair, description)]`` for each port that disagrees with the first (the reference).

    float32 is judged as the runner judges it: each port also runs in float64, and a float32
    difference is rounding within the larger of the written model and the measured envelope
    (docs/tolerance.md). The written model alone false-alarmed under the thorough profile: one
    SGD step (lr 0.49) on a stddev-1 bias that cancelled to 0.0042 carries the rounding of its
    O(1) operands, 1.09e-5 relative to the result (numpy vs torch, widths (4, 4, 4, 1), seed 3).
    float64 too: the runner's float32 shadow of the reference measures its float32 drift, and
    the limit is max(1e-10, that envelope x 2^-29): under the thorough profile a softmax
    saturated at p = 1 - 8e-7 made numpy and the frameworks round p - y apart by 7.6e-10
    relative (linear 3-3-3-2, init 1.0, batch 1, seed 3; tests/test_envelope.py).
    """
    case = dense_case(config, ports=ports)
    if stages is None:
        result = run_case(case, dtypes=_replay_dtypes(dtype), pairs="reference")
        return [
            (c.pair, f"{c.first_divergence.describe()} [{c.first_divergence.kind}]")
            for c in result.comparisons
            if c.dtype == dtype and not c.ok
        ]
    traces = [run_port(case, p, dtype) for p in ports]
    out = []
    kwargs = {"stages": stages} if stages else {}
    for t in traces[1:]:
        c = compare(traces[0], t, cost=case.cost, **kwargs)
        if not c.ok:
            first = c.first_divergence
            out.append((c.pair, f"{first.describe()} [{first.kind}]"))
    return out


def agree(config, ports, dtype="float64", stages=None) -> bool:
    """Return whether every port agrees with the first (the property's predicate)."""
    return not divergences(config, ports, dtype, stages)


def assert_parity(config, ports, dtype="float64", stages=None) -> None:
    """Assert every port agrees with the first; the message names the divergence and a replay."""
    found = divergences(config, ports, dtype, stages)
    if found:
        lines = [f"{pair}: {what}" for pair, what in found]
        lines.append("replay: " + replay_command(config, ports, dtype))
        raise AssertionError("\n".join(lines))
