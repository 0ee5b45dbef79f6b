"""parity.run.conn: a program worker's connection reads a message straight into the buffer it is meant for,
the same bytes as multiprocessing's Connection (which reads it in chunks, through a BytesIO, and copies it)."""

from __future__ import annotations

import os
import socket
import threading
from multiprocessing.connection import BufferTooShort, Connection

import numpy as np
import pytest

from parity.run.conn import DirectConnection
from parity.run import wire


def _pair():
    a, b = socket.socketpair()
    return Connection(a.detach()), DirectConnection(b.detach())


def _sent(messages, receive):
    """Send ``messages`` from a plain Connection (a thread: a message larger than the socket's buffer waits for the
    reader) and return what ``receive(conn)`` gives for each."""
    plain, direct = _pair()
    t = threading.Thread(target=lambda: [plain.send_bytes(m) for m in messages])
    t.start()
    try:
        return [receive(direct) for _ in messages]
    finally:
        t.join()
        plain.close(), direct.close()


@pytest.mark.parametrize("size", [0, 1, 4, 1000, 3 * 2**20 + 7])  # 3 MB: many reads of a ~200 KB socket buffer
def test_recv_bytes_into_gives_the_bytes_sent_with_the_offset(size):
    rng = np.random.default_rng(size)
    data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()

    def receive(conn):
        buf = bytearray(b"\xee" * (size + 9))
        n = conn.recv_bytes_into(buf, 5)
        return n, bytes(buf)

    (n, got), = _sent([data], receive)
    assert n == size and got == b"\xee" * 5 + data + b"\xee" * 4  # nothing written outside the message


def test_the_payload_is_not_read_through_connections_chunks(monkeypatch):
    # the mechanism: only the 4-byte header goes through Connection._recv (a BytesIO); the 1 MB message is read
    # by os.readv into the buffer (with Connection's own recv_bytes_into, _recv reads all of it)
    read = []
    orig = Connection._recv
    monkeypatch.setattr(Connection, "_recv", lambda self, size, *a: read.append(size) or orig(self, size, *a))
    data = os.urandom(2**20)

    def receive(conn):
        buf = bytearray(2**20)
        conn.recv_bytes_into(buf)
        return bytes(buf)

    got, = _sent([data], receive)
    assert got == data and sum(read) == 4


def test_arrays_sent_by_the_wire_arrive_equal():
    # what a worker sends a step as (parity.run.wire): small arrays in one buffer, large ones each on its own
    rng = np.random.default_rng(1)
    step = {"forward": {"big": rng.normal(size=(300, 1000)), "small": np.arange(5, dtype=np.float32),
                        "empty": np.zeros((0, 3))}, "loss": {"loss": np.full((), 0.5)}}
    a, b = socket.socketpair()
    plain, direct = Connection(a.detach()), DirectConnection(b.detach())
    t = threading.Thread(target=wire.send, args=(plain, step))
    t.start()
    got = wire.recv(direct)
    t.join()
    plain.close(), direct.close()
    for stage, arrays in step.items():
        for name, x in arrays.items():
            y = got[stage][name]
            assert y.dtype == x.dtype and y.shape == x.shape and y.tobytes() == x.tobytes() and y.flags.writeable


def test_a_short_buffer_and_an_early_end_are_connections_errors():
    data = b"x" * 100
    (err,), = _sent([data], lambda c: [pytest.raises(BufferTooShort, c.recv_bytes_into, bytearray(10))])
    assert err.value.args[0] == data  # the message read whole and carried by the error, as Connection does
    a, b = socket.socketpair()
    direct = DirectConnection(b.detach())
    a.sendall((1000).to_bytes(4, "big") + b"y" * 10)  # a message cut short: its writer died
    a.close()
    with pytest.raises(OSError, match="end of file"):
        direct.recv_bytes_into(bytearray(1000))
    with pytest.raises(EOFError):  # nothing more: the end, as Connection says it
        direct.recv_bytes_into(bytearray(1000))
    direct.close()
