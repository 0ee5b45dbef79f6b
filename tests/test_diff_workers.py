"""`parity diff` with each program in a worker process of its own (parity.program.remote).

The same verdict and the same numbers as in one process; the error contract kept across the process
boundary: the user's code raising is exit 3 at their file and line, a program whose process vanishes
is named (which program, during what), parity's own failure in a worker is exit 4; the user's prints
never reach stdout (the report's)."""

from __future__ import annotations

import json
import os
import re
import sys

import pytest

pytest.importorskip("torch")

from parity.cli.main import main  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures", "programs")
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")


@pytest.fixture(autouse=True)
def _workers_on(monkeypatch):
    monkeypatch.setenv("PARITY_WORKERS", "1")


def diff(capfd, *argv):
    rc = main(["diff", *argv])
    out, err = capfd.readouterr()
    return rc, out, err


def error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("parity: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _program(tmp_path, name: str, step_body: str, build_body: str = "") -> str:
    """A tiny torch program (the fixture tiny_mlp's shape) whose training step runs ``step_body``."""
    path = tmp_path / name
    path.write_text(f'''import os
import numpy as np
import torch
import torch.nn as nn


def parity_program():
    {build_body or "pass"}
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = nn.CrossEntropyLoss()

    def train_step(batch):
        {step_body}
        opt.zero_grad()
        out = loss(model(torch.as_tensor(batch["x"])), torch.as_tensor(batch["y"]).long())
        out.backward()
        opt.step()
        return out

    def batches():
        rng = np.random.default_rng(0)
        while True:
            yield {{"x": rng.normal(size=(6, 4)), "y": rng.integers(0, 3, size=6)}}

    return {{"model": model, "optimizer": opt, "loss": loss, "train_step": train_step, "data": batches}}
''')
    return str(path)


def test_the_users_exception_in_a_worker_is_exit_3_at_their_line(capfd, monkeypatch):
    rc, out, err = diff(capfd, os.path.join(FIX, "tiny_mlp.py"), os.path.join(FIX, "tiny_crash.py"), "--steps", "1",
                        "--dtype", "float64")
    assert rc == 3, err
    line = error_line(err)
    assert "my training step is broken" in line and re.search(r"tiny_crash\.py:\d+", line), line
    monkeypatch.setenv("PARITY_WORKERS", "0")
    rc0, _, err0 = diff(capfd, os.path.join(FIX, "tiny_mlp.py"), os.path.join(FIX, "tiny_crash.py"), "--steps", "1",
                        "--dtype", "float64")
    assert rc0 == 3 and error_line(err0) == line  # the same line, file and line number as in one process


def test_a_program_raising_when_built_is_exit_3_at_its_line(capfd, tmp_path):
    bad = _program(tmp_path, "bad_build.py", "pass", build_body='raise ValueError("no model for you")')
    rc, out, err = diff(capfd, os.path.join(FIX, "tiny_mlp.py"), bad, "--steps", "1", "--dtype", "float64")
    assert rc == 3, err
    line = error_line(err)
    assert "no model for you" in line and "bad_build.py:8" in line, line


def test_a_program_whose_process_vanishes_while_stepping_is_named(capfd, tmp_path):
    # builds counted in a file: the first build is parity's probe, the second the float64 run's port
    count = tmp_path / "builds"
    gone = _program(tmp_path, "vanishing.py", "os._exit(9) if built >= 2 else None",
                    build_body=f"open({str(count)!r}, 'a').write('x'); built = len(open({str(count)!r}).read())")
    rc, out, err = diff(capfd, os.path.join(FIX, "tiny_mlp.py"), gone, "--steps", "2", "--dtype", "float64")
    assert rc == 3, err  # the port's crash, as any crash of the user's program
    line = error_line(err)
    assert "vanishing.py" in line and "exit code 9" in line and "step 0" in line, line


def test_a_program_whose_process_vanishes_when_built_is_named(capfd, tmp_path):
    gone = _program(tmp_path, "vanishing_build.py", "pass", build_body="os._exit(5)")
    rc, out, err = diff(capfd, os.path.join(FIX, "tiny_mlp.py"), gone, "--steps", "1", "--dtype", "float64")
    assert rc == 3, err
    line = error_line(err)
    assert "vanishing_build.py" in line and "exit code 5" in line and "built for a float64 run" in line, line


def test_paritys_own_failure_in_a_worker_is_exit_4(capfd, monkeypatch):
    # what the harness raises when a worker reports a failure of parity's own code (remote_worker._packed)
    from parity.program import remote, remote_worker

    kind, text = remote_worker._packed(KeyError("an internal key"), None, "in parity's probe forward pass")
    assert kind == "bug" and "KeyError" in text
    bug = remote._rebuilt((kind, text))
    import parity.program.prepare

    def compare(*a, **k):
        raise bug

    monkeypatch.setattr(parity.program.prepare, "compare_programs", compare)
    rc, out, err = diff(capfd, os.path.join(FIX, "tiny_mlp.py"), os.path.join(FIX, "tiny_mlp.py"))
    assert rc == 4, err


def test_the_users_prints_go_to_stderr(capfd, tmp_path):
    loud = _program(tmp_path, "loud.py", 'print("USER-PRINT-MARKER", flush=True)')
    rc, out, err = diff(capfd, loud, loud, "--steps", "2", "--dtype", "float64")
    assert rc == 0, err
    assert "USER-PRINT-MARKER" not in out and "USER-PRINT-MARKER" in err


def _numbers(report: dict) -> dict:
    """The report without what differs between two runs of one comparison (times, dates, file names)."""
    drop = {"wall_seconds", "created", "seconds", "command"}

    def clean(x):
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items() if k not in drop}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    return clean(report)


def _both_ways(capfd, monkeypatch, tmp_path, reference, port, *argv):
    """The same ``parity diff`` with workers and in one process, each in a fresh interpreter (in this test
    process, a TensorFlow an earlier test imported with other settings would be the in-process run's)."""
    import subprocess
    import sys

    reports = {}
    for workers in ("1", "0"):
        path = tmp_path / f"r{workers}.json"
        env = dict(os.environ, PARITY_WORKERS=workers)
        proc = subprocess.run([sys.executable, "-m", "parity", "diff", reference, port, "--json", str(path), *argv],
                              env=env, capture_output=True, text=True, cwd=os.path.dirname(HERE))
        out = re.sub(r"\(\d+\.\ds\)", "", proc.stdout).replace(str(path), "R")
        reports[workers] = (proc.returncode, out, json.loads(path.read_text()))
    return reports


@pytest.mark.slow
def test_tf1_and_torch_give_the_same_verdict_and_numbers_in_workers(capfd, monkeypatch, tmp_path):
    pytest.importorskip("tensorflow")
    reports = _both_ways(capfd, monkeypatch, tmp_path, os.path.join(EXAMPLES, "seed001", "tf1_convnet.py"),
                         os.path.join(EXAMPLES, "seed001", "torch_convnet.py"), "--steps", "2")
    (rc1, out1, json1), (rc0, out0, json0) = reports["1"], reports["0"]
    assert rc1 == rc0 == 0
    assert out1 == out0  # the same report, line for line (the wall time aside)
    assert _numbers(json1) == _numbers(json0)  # every number equal: the same computation, another process


@pytest.mark.slow
def test_keras_and_torch_give_the_same_verdict_and_numbers_in_workers(capfd, monkeypatch, tmp_path):
    pytest.importorskip("tf_keras")
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")
    reports = _both_ways(capfd, monkeypatch, tmp_path, os.path.join(EXAMPLES, "seed003", "keras_bn_convnet.py"),
                         os.path.join(EXAMPLES, "seed003", "torch_bn_convnet.py"), "--steps", "2")
    (rc1, out1, json1), (rc0, out0, json0) = reports["1"], reports["0"]
    assert rc1 == rc0
    assert out1 == out0
    assert _numbers(json1) == _numbers(json0)


def test_a_torch_step_leaves_nothing_for_the_collector():
    # torch_impl/capture/forward.py: the function mode watching a step held the step's recorded outputs; made as a
    # class per step (a class is a reference cycle), they were freed only when the collector ran (171 MB a float64
    # step of the seed 001 convnet at batch 128). A step now frees what it recorded at once: with the collector
    # off, nothing of a step is left unreachable (the class made per step left its Watch, its tensors and itself).
    import gc

    import numpy as np
    import torch

    from parity.program.load import capture, load_program

    prog = capture(load_program(os.path.join(FIX, "tiny_mlp.py")), "float64")
    rng = np.random.default_rng(0)

    def step():
        prog.step({"x": rng.normal(size=(6, 4)), "y": rng.integers(0, 3, size=6)}, {})

    step()  # the first step builds what lives as long as the program (the optimizer's state)
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds unreachable is kept in gc.garbage, to be looked at
    try:
        for _ in range(3):
            step()
        gc.collect()
        left = list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was:
            gc.enable()
    tensors = [o for o in left if isinstance(o, torch.Tensor)]
    kinds = sorted({type(o).__name__ for o in left})
    assert not tensors and not any(k in ("Watch", "_Mode") for k in kinds), kinds
    prog.close()


def test_the_conditioning_run_steps_in_the_float32_runs_worker(monkeypatch):
    # parity.program.remote.Pool.run_worker: the envelope's perturbed float64 run beside the float32 run (a process
    # of its own imported the framework once more for a model of a few MB); the float64 run in a worker of its own.
    from parity.program import remote
    from parity.run import workers

    started = []

    class Fake:
        alive = True

        def __init__(self, what, boot=""):
            started.append(what)

        def stop(self):
            pass

    monkeypatch.setattr(workers, "_Worker", Fake)
    monkeypatch.setenv("PARITY_ZYGOTE", "0")  # fresh interpreters (the forked ones: the test below)
    pool = remote.Pool("ref.py", "port.py")
    try:
        for side in ("reference", "port"):
            run = pool.run_worker(side)
            f64, cond, f32 = run("float64", None), run("float64", 0), run("float32", None)
            assert cond is f32 and f32 is not f64
        assert len(started) == 4, started  # two programs, two workers each
    finally:
        pool.close()


@pytest.mark.skipif(not sys.platform.startswith("linux") or not hasattr(os, "fork"), reason="the zygote forks (Linux)")
def test_a_programs_workers_are_forked_from_one_zygote_per_program(monkeypatch):
    # parity.program.zygote: each program's two workers are children of one process that imported its framework
    # (TensorFlow ~4.7 s of CPU, torch ~1.6 s, once per program instead of once per worker); each serves as a fresh
    # interpreter's worker would, and its exit code is still known (the zygote reaps it and says)
    import subprocess

    from parity.program import remote, zygote
    from parity.run.conn import DirectConnection

    monkeypatch.delenv("PARITY_ZYGOTE", raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")  # as parity's commands set it (PARITY_BLAS_THREADS, default 1)
    tiny = os.path.join(FIX, "tiny_mlp.py")
    pool = remote.Pool(tiny, tiny)
    try:
        f64, f32 = pool.worker("port", "float64"), pool.worker("port", "float32")
        z = pool.zygotes["port"]
        assert isinstance(f64.proc, zygote._Child) and isinstance(f32.proc, zygote._Child)
        # their steps' arrays are read straight into their buffers (parity.run.conn; tests/test_conn.py)
        assert isinstance(f64.conn, DirectConnection) and isinstance(f32.conn, DirectConnection)
        assert f64.proc.pid != f32.proc.pid and f64.alive and f32.alive
        for w in (f64, f32):  # the zygote is their parent; torch came imported, in one process for both
            with open(f"/proc/{w.proc.pid}/stat") as fh:
                assert int(fh.read().rsplit(")", 1)[1].split()[1]) == z.proc.pid
        assert "port" in pool.zygotes and "reference" not in pool.zygotes  # started on first use
        f32.kill()
        assert f32.proc.wait(timeout=10) == -9 and not f32.alive  # its exit told by the zygote (SIGKILL)
        monkeypatch.setenv("PARITY_ZYGOTE_TEST_CHANGED", "1")  # a setting changed since the zygote started:
        again = pool.worker("port", "float32")  # a fresh interpreter, which reads it
        assert isinstance(again.proc, subprocess.Popen) and again.alive
    finally:
        pool.close()
    assert z.proc.poll() is not None and f64.proc.poll() is not None  # all stopped with the pool


@pytest.mark.parametrize("why", ["PARITY_ZYGOTE=0", "a thread in the zygote"])
def test_where_the_zygote_cannot_fork_the_workers_are_fresh_interpreters(monkeypatch, why):
    # a process with a second thread (OpenBLAS's pool, started by numpy's import where BLAS may use 2 threads) is
    # never forked: the copy would hold one thread of two; a fresh interpreter serves instead
    import subprocess

    from parity.program import remote

    if why == "PARITY_ZYGOTE=0":
        monkeypatch.setenv("PARITY_ZYGOTE", "0")
    else:
        monkeypatch.delenv("PARITY_ZYGOTE", raising=False)
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    tiny = os.path.join(FIX, "tiny_mlp.py")
    pool = remote.Pool(tiny, tiny)
    try:
        w = pool.worker("port", "float64")
        assert isinstance(w.proc, subprocess.Popen) and w.alive
        assert bool(pool.zygotes) == (why != "PARITY_ZYGOTE=0")
        assert w.call("pnotes", pool.token) == (True, [])  # it serves
    finally:
        pool.close()


def test_numpy_asks_for_no_huge_pages_in_a_diffs_processes(monkeypatch):
    # parity.program.remote.no_huge_pages (called by tune_malloc: the harness's Pool, every program worker): numpy's
    # madvise of transparent huge pages cost the seed 001 diff's harness 1.1 s of system time; a user's setting stands
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    from parity.program import remote

    before = multiarray._set_madvise_hugepage(True)
    try:
        monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
        assert remote.no_huge_pages()
        assert multiarray._set_madvise_hugepage(True) is False  # (it returns the setting it replaces: off)
        remote.tune_malloc()
        assert multiarray._set_madvise_hugepage(True) is False
        monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")  # the user's own choice: left as it is
        assert not remote.no_huge_pages()
        assert multiarray._set_madvise_hugepage(True) is True
    finally:
        multiarray._set_madvise_hugepage(before)
