"""`parity diff`'s memory in its workers (issue 21 item 5): the mapping renames a step's arrays without
copying them (the port boundary copies each once), with the same values; a program's port in a worker
frees what the previous step left (reference cycles, malloc's free memory) before each step.
numpy only: no framework is imported here.
"""

import gc

import numpy as np

from parity.program.mapping import Entry, Mapping_, apply_ops
from parity.program import remote_worker
from parity.run.boundary import to_stages

OPS = [[], ["T"], ["oihw>hwio"], ["oiw>wio"], ["T", "rows_chw>hwc:4,2,3"], ["rows_hwc>chw:4,2,3"], ["gates:ijfo>ifjo"],
       ["rows:1:3"], ["row:1"], ["forget_bias:1.0"], ["zero"]]


def _input(ops, rng):
    if ops and ops[0] == "oihw>hwio":
        return rng.standard_normal((5, 4, 3, 2))
    if ops and ops[0] == "oiw>wio":
        return rng.standard_normal((5, 4, 3))
    if ops and ops[-1].startswith("rows_"):
        return rng.standard_normal((7, 24) if ops[0] == "T" else (24, 7))
    if ops and ops[0] == "forget_bias:1.0":
        return rng.standard_normal(8)
    return rng.standard_normal((4, 8))


def test_apply_ops_without_its_copy_gives_the_same_values_and_never_writes_its_input():
    rng = np.random.default_rng(0)
    for ops in OPS:
        for values in (True, False):
            x = _input(ops, rng)
            before = x.copy()
            a, b = apply_ops(ops, x, values=values), apply_ops(ops, x, values=values, copy=False)
            assert a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b), ops
            assert a.flags.c_contiguous and not np.shares_memory(a, x), ops  # the default: a copy of its own
            assert np.array_equal(x, before), ops
    x = rng.standard_normal((3, 4))
    assert apply_ops([], x, copy=False) is x  # nothing to do: no copy (the boundary makes the step's)
    assert np.shares_memory(apply_ops(["T"], x, copy=False), x)  # a transpose: a view
    # the flatten reorder of a transposed kernel is made in C order (no second copy to make it contiguous)
    assert apply_ops(["T", "rows_chw>hwc:4,2,3"], rng.standard_normal((7, 24)), copy=False).flags.c_contiguous


def test_a_steps_stages_renamed_without_a_copy_are_copied_once_by_the_boundary_with_the_same_values():
    m = Mapping_("ref.py", "port.py", params=[
        Entry("dense/kernel", "fc.weight", [], ["T"], (6, 4), "dense_kernel"),
        Entry("dense/bias", "fc.bias", [], [], (4,), "bias"),
        Entry("lstm/bias", "lstm.bias", [], ["forget_bias:1.0"], (8,), "bias"),
    ])
    rng = np.random.default_rng(1)
    arrays = {"fc.weight": rng.standard_normal((4, 6)), "fc.bias": rng.standard_normal(4), "lstm.bias": rng.standard_normal(8)}
    for stage in ("parameters", "gradients"):
        renamed = m.canonical("port", arrays, stage)
        expected = {"dense/kernel": arrays["fc.weight"].T, "dense/bias": arrays["fc.bias"],
                    "lstm/bias": arrays["lstm.bias"] + np.r_[0, 0, 1.0, 1.0, 0, 0, 0, 0] * (stage == "parameters")}
        assert set(renamed) == set(expected)
        assert renamed["dense/bias"] is arrays["fc.bias"]  # no copy made by the renaming
        out = to_stages({stage: renamed}, "port", "step 0", None)[stage]
        for k, v in expected.items():
            assert np.array_equal(out[k], v) and out[k].flags.c_contiguous, k
            assert not any(np.shares_memory(out[k], a) for a in arrays.values()), k  # the boundary's copy


class _Cycle:
    def __init__(self, payload):
        self.me, self.payload = self, payload


def test_a_workers_program_port_frees_the_previous_steps_cycles_before_each_step():
    import weakref

    seen = []

    class Port:
        def step(self, batch):
            seen.append(batch)
            left = _Cycle(np.ones(4))  # what a torch step leaves: a cycle holding its tensors
            self.ref = weakref.ref(left)
            return {"loss": {"loss": np.zeros(())}}

        def parameters(self):
            return {"w": np.ones(2)}

    port = remote_worker._Trimmed(Port())
    assert port.step({"x": 1}) == {"loss": {"loss": np.zeros(())}}
    ref = port.ref  # (the port's own attributes pass through)
    assert ref() is not None and gc.isenabled()
    gc.disable()  # the automatic collector may not run between the steps: the step itself must free it
    try:
        port.step({"x": 2})
    finally:
        gc.enable()
    assert ref() is None  # the first step's cycle was collected before the second step ran
    assert seen == [{"x": 1}, {"x": 2}] and set(port.parameters()) == {"w"}
