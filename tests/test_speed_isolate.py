"""Isolated ports recorded by a child forked from an interpreter that imported TensorFlow (parity/run/isolate.py's
zygote) instead of a fresh interpreter: the same trace files, the same errors, one TensorFlow import per run."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from parity.errors import ParityError  # noqa: E402
from parity.run import isolate  # noqa: E402
from parity.run.boundary import record_isolated  # noqa: E402
from parity.trace.file import TraceReader  # noqa: E402

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the zygote forks")


def _content(path):
    reader = TraceReader(path)
    out = (dict(reader.manifest), dict(reader.initial), list(reader.steps()))
    reader.close()
    return out


def _same(a, b):
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    else:
        assert a == b


@pytest.fixture
def fresh_zygote():
    isolate.shutdown()
    yield
    isolate.shutdown()


def test_the_zygote_records_what_a_fresh_interpreter_records_and_is_reused(tmp_path, fresh_zygote):
    from parity.cases.registry import get_case

    case = get_case("seed004_global_step_ema")  # a TF1 graph port (and torch's), 12 steps
    jobs = [("tf1", "float64"), ("torch", "float32")]
    (tmp_path / "fresh").mkdir(), (tmp_path / "z1").mkdir(), (tmp_path / "z2").mkdir()
    want = [_content(p) for p, _ in record_isolated(case, jobs, str(tmp_path / "fresh"))]
    got = [_content(p) for p, _ in isolate.record(case, jobs, str(tmp_path / "z1"))]
    pid = isolate._ZYGOTE[0].proc.pid
    again = [_content(p) for p, _ in isolate.record(case, jobs, str(tmp_path / "z2"))]
    assert isolate._ZYGOTE[0].proc.pid == pid  # TensorFlow imported once for both
    for w, g, a in zip(want, got, again):
        _same(w, g)
        _same(w, a)
    assert len(want[0][2]) == case.steps


def test_a_failing_job_and_a_failing_child_report_as_a_fresh_interpreter_does(tmp_path, fresh_zygote):
    from parity.cases.registry import get_case

    case = get_case("seed004_oscillate")
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    # a port that cannot be built (an unknown variant): its error file, one line, the same text
    jobs = [("tf1:no_such_variant", "float64")]
    (_, err_fresh), = record_isolated(case, jobs, str(tmp_path / "a"))
    (_, err_zygote), = isolate.record(case, jobs, str(tmp_path / "b"))
    assert open(err_fresh).read() == open(err_zygote).read() != ""
    # the child itself failing (no such case in the registry): a ParityError with its last line
    ghost = case.replace(name="no_such_case")
    with pytest.raises(ParityError) as fresh:
        record_isolated(ghost, [("tf1", "float64")], str(tmp_path / "a"))
    with pytest.raises(ParityError) as zygote:
        isolate.record(ghost, [("tf1", "float64")], str(tmp_path / "b"))
    assert str(zygote.value) == str(fresh.value) and "isolated ports tf1 failed" in str(zygote.value)


@pytest.mark.slow  # two more TensorFlow imports
def test_a_changed_environment_or_a_dead_zygote_starts_another(tmp_path, fresh_zygote, monkeypatch):
    from parity.cases.registry import get_case

    case = get_case("seed004_oscillate")
    for d in ("a", "b", "c"):
        (tmp_path / d).mkdir()
    isolate.record(case, [("numpy", "float64")], str(tmp_path / "a"))
    first = isolate._ZYGOTE[0].proc
    monkeypatch.setenv("PARITY_TEST_ZYGOTE", "1")  # what TensorFlow read at import may have changed
    isolate.record(case, [("numpy", "float64")], str(tmp_path / "b"))
    second = isolate._ZYGOTE[0].proc
    assert second.pid != first.pid and first.poll() is not None
    second.kill()
    second.wait()
    (trace, error), = isolate.record(case, [("numpy", "float64")], str(tmp_path / "c"))
    assert os.path.exists(trace) and not os.path.exists(error)


@pytest.fixture
def workers_zygote(monkeypatch, fresh_zygote):
    """A stand-in for the workers' zygote (parity.run.zygote registers its ``forked`` in ``isolate.FORKED``): the
    case's recorder, :func:`isolate.serve_case`, in a fresh interpreter on the socket it is handed."""
    import subprocess

    from parity.run.interpreter import python

    started = []

    def forked(group, theirs, env):
        assert group == isolate.GROUP
        fd = theirs.fileno()
        proc = subprocess.Popen(python(f"from parity.run.isolate import serve_case; serve_case({fd})"),
                                pass_fds=[fd], stderr=subprocess.PIPE, env=env)
        started.append(proc)
        return proc

    monkeypatch.setattr(isolate, "FORKED", [forked])
    yield started
    for proc in started:
        proc.wait(timeout=60)


def test_a_recorder_forked_by_the_workers_zygote_records_and_fails_as_a_fresh_interpreter(tmp_path, workers_zygote):
    from parity.cases.registry import get_case

    case = get_case("seed004_global_step_ema")
    jobs = [("tf1", "float64"), ("tf1:no_such_variant", "float64")]
    for d in ("fresh", "forked", "ghost_fresh", "ghost_forked"):
        (tmp_path / d).mkdir()
    want = record_isolated(case, jobs, str(tmp_path / "fresh"))
    got = isolate.record(case, jobs, str(tmp_path / "forked"))
    assert len(workers_zygote) == 1 and not isolate._ZYGOTE  # the isolated ports' own zygote never started
    _same(_content(want[0][0]), _content(got[0][0]))
    assert open(want[1][1]).read() == open(got[1][1]).read() != ""  # the job that cannot be built: its one line
    ghost = case.replace(name="no_such_case")  # the recorder itself failing: a ParityError with its last line
    with pytest.raises(ParityError) as fresh:
        record_isolated(ghost, [("tf1", "float64")], str(tmp_path / "ghost_fresh"))
    with pytest.raises(ParityError) as forked:
        isolate.record(ghost, [("tf1", "float64")], str(tmp_path / "ghost_forked"))
    assert str(forked.value) == str(fresh.value) and "isolated ports tf1 failed" in str(forked.value)


def test_a_recorder_that_dies_without_a_reply_fails_with_its_last_line(tmp_path, monkeypatch, fresh_zygote):
    import subprocess
    import sys

    from parity.cases.registry import get_case

    def forked(group, theirs, env):  # a child that writes its log and is gone (killed, a crash in C++)
        code = ("import os, sys; open(os.path.join(sys.argv[1], 'isolate.log'), 'w').write('boom\\nSegmentation fault\\n');"
                "os._exit(139)")
        # it holds its end of the socket until it is gone, as a forked child does
        return subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], pass_fds=[theirs.fileno()],
                                stderr=subprocess.PIPE)

    monkeypatch.setattr(isolate, "FORKED", [forked])
    with pytest.raises(ParityError, match="isolated ports tf1 failed: Segmentation fault"):
        isolate.record(get_case("seed004_oscillate"), [("tf1", "float64")], str(tmp_path))
    assert not isolate._ZYGOTE


def test_without_the_workers_zygote_the_isolated_ports_own_zygote_records(tmp_path, monkeypatch, fresh_zygote):
    from parity.cases.registry import get_case

    monkeypatch.setattr(isolate, "FORKED", [lambda group, theirs, env: None])  # it cannot serve (another environment)
    (path, _), = isolate.record(get_case("seed004_oscillate"), [("numpy", "float64")], str(tmp_path))
    assert isolate._ZYGOTE and len(_content(path)[2]) == get_case("seed004_oscillate").steps


def test_with_the_workers_zygote_a_case_is_recorded_by_its_child(tmp_path, fresh_zygote):
    zygote = pytest.importorskip("parity.run.zygote")
    if isolate.GROUP not in getattr(zygote, "GROUPS", ()):
        pytest.skip("parity.run.zygote does not fork the isolated ports' recorders")
    from parity.cases.registry import get_case

    case = get_case("seed004_global_step_ema")
    jobs = [("tf1", "float64")]
    (tmp_path / "fresh").mkdir(), (tmp_path / "forked").mkdir()
    want = record_isolated(case, jobs, str(tmp_path / "fresh"))
    zygote.start()
    try:
        got = isolate.record(case, jobs, str(tmp_path / "forked"))
        assert not isolate._ZYGOTE  # no third TensorFlow import: the workers' zygote forked the recorder
    finally:
        zygote.shutdown()
    _same(_content(want[0][0]), _content(got[0][0]))
