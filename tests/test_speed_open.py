"""Opening a case's ports in their workers side by side (:func:`parity.run.remote_runs.open_all`): every reply is read,
errors come back per run as ``run.open()`` raised them, the runs keep their order."""

from __future__ import annotations

import pytest

from parity.errors import ParityError, PortError
from parity.run.remote_runs import open_all


class _Run:
    """An in-process run (not a RemoteRun): opened in order, after the workers were asked."""

    def __init__(self, name, log, fail=None):
        self.name, self.log, self.fail, self.closed = name, log, fail, False

    def open(self):
        self.log.append(("open", self.name))
        if self.fail is not None:
            raise self.fail

    def close(self):
        self.closed = True


def test_each_run_opens_once_in_order_and_its_error_comes_back_as_raised():
    log = []
    bad = PortError("torch", "build", ValueError("no"), case="c")
    protocol = ParityError("the port broke the protocol")
    runs = [_Run("a", log), _Run("b", log, bad), _Run("c", log, protocol), _Run("d", log)]
    announced = []
    out = open_all(runs, announced.append)
    assert log == [("open", n) for n in "abcd"] and announced == [0, 1, 2, 3]
    assert out == [None, bad, protocol, None]
    assert not any(r.closed for r in runs)  # the caller closes the failed ones (as after run.open())


def test_a_bug_is_raised_after_every_run_was_opened_and_the_opened_ones_closed():
    log = []
    runs = [_Run("a", log), _Run("b", log, KeyError("parity's own bug")), _Run("c", log)]
    with pytest.raises(KeyError):
        open_all(runs)
    assert log == [("open", n) for n in "abc"]
    assert runs[0].closed and runs[2].closed and not runs[1].closed
