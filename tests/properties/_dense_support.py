"""Run a dense config through several ports and check every pair agrees (the shared property).

Imported by the property tests (pytest puts this directory on ``sys.path``).
"""

from __future__ import annotations

from parity.compare import compare
from parity.runner import run_port
from parity.strategies import dense_case, normalize_config


def replay_command(config, ports, dtype) -> str:
    """Return a shell one-liner that reruns one config and prints the first divergence."""
    cfg = normalize_config(config)
    code = (
        "from parity.strategies import dense_case; from parity.runner import run_case; "
        f"r = run_case(dense_case({cfg!r}, ports={tuple(ports)!r}), dtypes=[{dtype!r}]); "
        "[print(c.pair, c.verdict, c.first_divergence and c.first_divergence.describe()) for c in r.comparisons]"
    )
    return f'python -c "{code}"'


def divergences(config, ports, dtype="float64", stages=None):
    """Return ``[(pair, description)]`` for each pair of ports (reference first) that disagree."""
    case = dense_case(config, ports=ports)
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
