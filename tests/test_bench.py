"""parity.tools.bench: the figures it prints come from real runs (here: a small case, one port)."""

import os

import pytest

from parity.cases.registry import get_case
from parity.tools import bench

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


@pytest.mark.torch
def test_trace_bytes_per_step_full_vs_summary():
    tb = bench.trace_bytes("seed002_clip_value", steps=1, port="torch", dtype="float32")
    # One full step of the 266k-parameter MLP holds its parameters, gradients, slots and
    # activations: > 1 MB in float32; a summary keeps ~20 numbers per tensor.
    assert tb["full"] > 1e6
    assert 0 < tb["summary"] < 0.01 * tb["full"], tb
    # (a run of the registered case: its own length, 25 steps since session 11)
    assert tb["run_steps"] == get_case("seed002_clip_value").steps and tb["full_run"] > tb["summary_run"] > 0


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


def test_the_diff_figure_runs_the_seed_001_pair_at_the_seeds_size(tmp_path):
    # parity.tools.benchdiff rewrites examples/seed001 to the seed's size (batch 128) and its own __main__ to the
    # bench's steps; an example edited so that a line is gone must fail the bench loudly, not measure batch 16.
    from parity.tools.benchdiff import seed_size

    files = seed_size(str(tmp_path), steps=7)
    ref, port = (open(files[k]).read() for k in ("reference", "port"))
    assert "batch_size = 128" in ref and "enumerate(batches(7))" in ref and "tf.disable_eager_execution()" in ref
    assert "batch_size=128, seed=1" in port and "enumerate(batches(7))" in port
    assert "parity_program" in ref and "parity_program" in port  # the same programs, only their size changed
    examples = tmp_path / "examples"
    (examples / "seed001").mkdir(parents=True)
    for rel in ("tf1_convnet.py", "torch_convnet.py"):
        text = open(os.path.join(EXAMPLES, "seed001", rel)).read()
        (examples / "seed001" / rel).write_text(text.replace("batch_size", "size"))
    with pytest.raises(ValueError, match="no longer holds"):
        seed_size(str(tmp_path), steps=7, examples=str(examples))


def test_bench_parser_has_the_diff_figure():
    with pytest.raises(SystemExit) as exc:
        bench.main(["diff", "--help"])
    assert exc.value.code == 0
