"""A worker's connection whose large messages are read straight into the buffer they are meant for.

``multiprocessing``'s ``Connection.recv_bytes_into`` reads a message in the socket's chunks (~200 KB), each
``os.read`` into a new bytes object, appends each chunk to an ``io.BytesIO`` (which grows, and copies, as it
goes) and at last copies the whole message into the caller's buffer: three copies or more of every array a
worker sends (:func:`parity.run.wire.recv` receives each large array into a buffer of its own). Measured on
the 2-core machine, 40 messages of 25 MB through a socket pair: 0.88-0.94 s of the receiver's CPU that way,
0.16-0.17 s read into the buffer with ``os.readv`` (the sender's 0.7-2.3 s -> 0.3 s: the receiver drains
faster). The bytes received are the same; the framing is ``Connection``'s own (a 4-byte big-endian length,
``-1`` and an 8-byte one beyond 2 GB), so either end may be a plain ``Connection``. The standard library only.
"""

from __future__ import annotations

import os
import struct
from multiprocessing.connection import BufferTooShort, Connection

__all__ = ["DirectConnection"]


class DirectConnection(Connection):
    """A ``Connection`` (Unix: a file descriptor) whose :meth:`recv_bytes_into` reads into the buffer given."""

    def recv_bytes_into(self, buf, offset=0):
        self._check_closed()
        self._check_readable()
        with memoryview(buf) as m:
            if not m.c_contiguous or m.readonly:  # (what Connection itself would take or refuse)
                return super().recv_bytes_into(buf, offset)
            flat = m.cast("B")
            if offset < 0:
                raise ValueError("negative offset")
            if offset > flat.nbytes:
                raise ValueError("offset too large")
            size, = struct.unpack("!i", self._recv(4).getvalue())
            if size == -1:
                size, = struct.unpack("!Q", self._recv(8).getvalue())
            if flat.nbytes < offset + size:  # as Connection: the message is read, and raised with
                raise BufferTooShort(self._recv(size).getvalue())
            _read_into(self._handle, flat[offset:offset + size])
            return size


def _read_into(fd: int, view: memoryview) -> None:
    """Fill ``view`` from ``fd`` (``os.readv``: the kernel copies into it; interrupted calls are retried)."""
    got, size = 0, view.nbytes
    while got < size:
        n = os.readv(fd, [view[got:]])
        if n == 0:
            raise EOFError if got == 0 and size else OSError("got end of file during message")
        got += n
