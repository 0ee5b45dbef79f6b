"""parity.tools.bench: the figures it prints come from real runs (here: a small case, one port)."""

import pytest

from parity.tools import bench


@pytest.mark.torch
def test_trace_bytes_per_step_full_vs_summary():
    tb = bench.trace_bytes("seed002_clip_value", steps=1, port="torch", dtype="float32")
    # One full step of the 266k-parameter MLP holds its parameters, gradients, slots and
    # activations: > 1 MB in float32; a summary keeps ~20 numbers per tensor.
    assert tb["full"] > 1e6
    assert 0 < tb["summary"] < 0.01 * tb["full"], tb
    assert tb["run_steps"] == 50 and tb["full_run"] > tb["summary_run"] > 0


def test_bench_parser_keeps_the_property_bench():
    # `python -m parity.tools.bench properties` is the dense gradient property bench (make bench-properties).
    with pytest.raises(SystemExit) as exc:
        bench.main(["properties", "--help"])
    assert exc.value.code == 0


def test_the_comparisons_measure_figure_compares_equal_numbers():
    # `make bench` times a step's tensors measured one by one against together: the figure counts only if
    # both give the same numbers (bit for bit), which it reports.
    from parity.tools.benchcompare import compare_timing

    ct = compare_timing(steps=3, repeats=1)
    assert ct["same"] is True and ct["steps"] == 3 and ct["tensors"] > 10
    assert ct["one_s"] > 0 and ct["together_s"] > 0
