"""What crosses the socket between the harness and its workers and jobs (parity/run/wire.py)."""

from __future__ import annotations

import socket
import threading

import numpy as np

from multiprocessing.connection import Connection

from parity.errors import ParityError, PortError
from parity.run import wire


def _round_trip(obj):
    a, b = socket.socketpair()
    ca, cb = Connection(a.detach()), Connection(b.detach())
    t = threading.Thread(target=wire.send, args=(ca, obj))  # a large message would fill the socket's buffer
    t.start()
    got = wire.recv(cb)
    t.join()
    return got


def test_small_and_large_arrays_come_back_equal_writable_and_separate():
    rng = np.random.default_rng(0)
    step = {"small": {f"t{i}": rng.standard_normal((i % 7 + 1, 3)).astype(np.float32) for i in range(50)},
            "large": rng.standard_normal((300, 300)),  # above wire.SMALL: a message of its own
            "empty": np.zeros((0, 4)), "scalar": np.float64(2.5), "ints": np.arange(5, dtype=np.int64),
            "strided": rng.standard_normal((8, 8))[:, ::2]}
    got = _round_trip(step)
    for k, v in step["small"].items():
        assert got["small"][k].dtype == v.dtype and np.array_equal(got["small"][k], v)
    for k in ("large", "empty", "ints", "strided"):
        assert got[k].dtype == step[k].dtype and np.array_equal(got[k], step[k])
    assert got["scalar"] == 2.5 and type(got["scalar"]) is np.float64
    assert step["large"].nbytes >= wire.SMALL > step["small"]["t0"].nbytes
    got["small"]["t0"][0, 0] = 99.0  # writable, and its neighbours in the same message untouched
    assert got["small"]["t1"][0, 0] == step["small"]["t1"][0, 0]


def test_parity_errors_inside_a_message_keep_their_attributes():
    err = PortError("torch", "step 3", ValueError("bad shape"), case="c")
    got = _round_trip({"errors": {"float64": {"torch": err}}, "other": ParityError("x", case="c")})
    back = got["errors"]["float64"]["torch"]
    assert isinstance(back, PortError) and back.port == "torch" and back.phase == "step 3"
    assert back.exc_type == "ValueError" and back.exc_message == "bad shape" and str(back) == str(err)
    assert isinstance(got["other"], ParityError) and str(got["other"]) == "c: x" and got["other"].case == "c"
