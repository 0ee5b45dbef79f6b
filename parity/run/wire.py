"""What crosses the socket between the harness and a worker (:mod:`parity.run.workers`).

Messages are pickled (protocol 5) between two processes of this same program: arrays travel
out of band, never copied into the stream; exceptions cross as parity's own errors.
"""

from __future__ import annotations

import copyreg
import io
import pickle
import traceback
import types
from multiprocessing.connection import Connection
from typing import Mapping

import numpy as np

from parity.errors import ParityError

__all__ = ["send", "recv", "pack", "plain"]


def _proxy(d: dict) -> Mapping:
    return types.MappingProxyType(d)


class _Pickler(pickle.Pickler):
    # Cases hold read-only mappings (types.MappingProxyType), which pickle does not know.
    dispatch_table = {**copyreg.dispatch_table, types.MappingProxyType: lambda m: (_proxy, (dict(m),))}

    def reducer_override(self, obj):
        # parity's errors inside what is sent (a case's refusals in its result): rebuilt with their attributes,
        # not by calling __init__ again (PortError's takes the original exception)
        if isinstance(obj, ParityError):
            return pack(obj)
        return NotImplemented


#: Buffers smaller than this travel together in one message (one copy into it, one system call for all);
#: larger ones in a message each, never copied. A step's small tensors are most of its buffers and little of
#: its bytes (measured: a step of 300 tensors of 32-2048 elements, 3.9-4.2 -> 2.2-2.4 ms of CPU, both ends).
SMALL = 1 << 16


def send(conn: Connection, obj) -> None:
    """Send ``obj``; arrays travel out of band (pickle protocol 5): large ones never copied, small ones
    gathered into one message (:data:`SMALL`)."""
    buffers: list[pickle.PickleBuffer] = []
    out = io.BytesIO()
    _Pickler(out, protocol=5, buffer_callback=buffers.append).dump(obj)
    raws = [b.raw() for b in buffers]
    sizes = [r.nbytes for r in raws]
    conn.send_bytes(pickle.dumps(sizes, protocol=5))
    conn.send_bytes(out.getbuffer())
    small = [r for r, n in zip(raws, sizes) if n < SMALL]
    if small:
        conn.send_bytes(b"".join(small))
    for r, n in zip(raws, sizes):
        if n >= SMALL:
            conn.send_bytes(r)


def recv(conn: Connection):
    """Receive what :func:`send` sent; arrays are rebuilt on writable buffers (a large one on its own, the
    small ones on slices of the message they came in)."""
    sizes = pickle.loads(conn.recv_bytes())
    head = conn.recv_bytes()
    total = sum(n for n in sizes if n < SMALL)
    small = memoryview(bytearray(total))
    if any(n < SMALL for n in sizes):
        conn.recv_bytes_into(small)
    buffers, at = [], 0
    for n in sizes:
        if n < SMALL:
            buffers.append(small[at:at + n])
            at += n
        else:
            buf = bytearray(n)
            conn.recv_bytes_into(buf)
            buffers.append(buf)
    return pickle.loads(head, buffers=buffers)


def _rebuild(cls, args, state):
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


def pack(exc: BaseException):
    """An exception as it can cross the pipe: parity's own errors whole, any other as a ParityError with its traceback."""
    if isinstance(exc, ParityError):
        return (_rebuild, (type(exc), exc.args, dict(exc.__dict__)))
    text = "".join(traceback.format_exception(exc)).strip()
    return (_rebuild, (ParityError, (f"a port worker failed: {text}",), {"case": None}))


def plain(x):
    """Plain Python of a manifest: a framework's own types (torch's TorchVersion, a str subclass)
    would import the framework in the harness when unpickled."""
    if isinstance(x, Mapping):
        return {plain(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x] if isinstance(x, list) else tuple(plain(v) for v in x)
    if isinstance(x, str):
        return str(x)
    if x is None or isinstance(x, bool):
        return x
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        return float(x)
    if isinstance(x, (np.ndarray, np.generic)):
        return x
    return str(x)
