"""Trace files: written step by step, read step by step, no pickle, a readable prefix after a crash.

Format 2 (``.trace``) is a sequence of self-delimiting records after a 16-byte magic line
(``PARITY-TRACE 2``)::

    record = u64 little-endian length N | N bytes: one safetensors blob | u32 CRC-32 of the blob

Each blob's ``__metadata__`` says what it is: ``kind`` = ``manifest`` (first; the JSON
manifest), ``initial`` (the loaded parameters), ``step`` (``index``: one step's tensors,
named ``stage/name``; ``order``: the JSON list of names in the port's order, which
safetensors does not keep) or ``end`` (last; ``steps``: the count). A summarized tensor is
stored as its float64 statistics vector (:mod:`parity.trace.summary`) under its name, with its
shape, dtype and checksum in the metadata (``summaries``).

Why safetensors: a well-kept, widely used container (Hugging Face) whose parser is written
to read untrusted files (no pickle, no code, bounds-checked offsets), with a numpy API;
one blob per step keeps writing incremental and reading lazy. HDF5 and zarr were the
alternatives: HDF5 keeps its index in place and a file cut mid-write is unreadable (it is
not crash-safe without SWMR), zarr is a directory of chunks (not one file to carry). A
single ``.npz`` (format 1) must be written whole at the end (so a crash leaves nothing,
and memory held every step until then); it is still read.

Crash safety: each record is flushed as it is written, so a crash or Ctrl-C leaves every
complete record readable; the final ``end`` record says the run finished. :func:`read`
of a file without it returns the steps before the cut with ``interrupted`` set ("interrupted
after k steps"). Anything else that does not parse -- bad magic, a CRC mismatch (bit flips),
a manifest that is not a JSON object, steps out of order or missing, object arrays -- is a
one-line :class:`~parity.errors.ParityError`.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import tempfile
import zlib
from typing import Iterator, Mapping

import numpy as np

from parity.errors import ParityError
from parity.trace.summary import Summary, summarize
from parity.trace.stages import SMALL, STAGES, TRACE_FORMAT

__all__ = ["TraceWriter", "TraceReader", "open_trace", "MAGIC", "SUFFIX"]

MAGIC = b"PARITY-TRACE 2\n\x00"
SUFFIX = ".trace"
_LEN = struct.Struct("<Q")
_CRC = struct.Struct("<I")
#: A record larger than this is taken as corruption (a bit flip in a length field).
_MAX_RECORD = 1 << 40
_KINDS = ("manifest", "initial", "step", "end")


def _safetensors():
    try:
        import safetensors.numpy as st
    except ImportError:  # pragma: no cover - a base dependency
        raise ParityError("trace files need the safetensors package (pip install safetensors)") from None
    return st


def _encode(tensors: Mapping[str, object], meta: dict, *, summary: bool) -> bytes:
    arrays: dict[str, np.ndarray] = {}
    summaries: dict[str, list] = {}
    for name, x in tensors.items():
        if isinstance(x, Summary) or (summary and np.size(x) > SMALL):
            s = summarize(x)
            arrays[name] = s.encode()
            summaries[name] = [list(s.shape), s.dtype, s.checksum]
            continue
        arr = np.asarray(x)
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise ParityError(f"tensor {name!r} has dtype {arr.dtype}; traces hold numbers only")
        arrays[name] = arr if arr.flags.c_contiguous else arr.copy(order="C")
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    meta["order"] = json.dumps(list(tensors))
    if summaries:
        meta["summaries"] = json.dumps(summaries)
    return _safetensors().save(arrays, metadata=meta)


class TraceWriter:
    """Write a trace record by record: ``manifest`` on open, then :meth:`initial`, :meth:`step`, :meth:`close`.

    Args:
        path: the file (``.trace`` is appended when the name has no suffix); its directory is created.
        manifest: the run's manifest (case, port, dtype, ...).
        summary: store tensors of more than :data:`~parity.trace.memory.SMALL` elements as summaries.
        atomic: write to a temporary file of this writer's own beside ``path`` (hidden, named with
            the process id and a random part: two runs writing the same trace never share it) and
            rename it onto ``path`` when complete: ``path`` is never a cut-off file. A run that does
            not complete (an exception, Ctrl-C, SIGTERM) leaves its readable prefix as
            ``path + ".partial"``.

    A write that fails (a full disk) is a one-line ParityError: ``cannot write trace PATH: why``.
    """

    def __init__(self, path: str | os.PathLike, manifest: Mapping, *, summary: bool = False, atomic: bool = False):
        from parity.io import on_terminate

        path = os.fspath(path)
        if not os.path.splitext(path)[1]:
            path += SUFFIX
        self.path, self.summary, self.steps = path, summary, 0
        self._writing, self._token = path, None
        directory = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(directory, exist_ok=True)
            if atomic:
                fd, self._writing = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.{os.getpid()}-",
                                                     suffix=".partial")
                os.close(fd)
                self._token = on_terminate(lambda: self._keep_partial(closed=False))
            self._fh = open(self._writing, "wb")
        except OSError as exc:
            self._drop()
            if self._writing != path:
                with contextlib.suppress(OSError):
                    os.unlink(self._writing)
            raise ParityError(f"cannot write trace {path}: {exc.strerror or exc}") from None
        self._write(MAGIC)
        m = dict(manifest, format=TRACE_FORMAT, summary=bool(summary))
        self._record({}, {"kind": "manifest", "manifest": json.dumps(m, sort_keys=True, default=str)})

    def _write(self, data: bytes) -> None:
        try:
            self._fh.write(data)
            self._fh.flush()
        except OSError as exc:  # a full disk: the steps written so far are kept, as for an interrupted run
            with contextlib.suppress(OSError):
                self.close(complete=False)
            raise ParityError(f"cannot write trace {self.path}: {exc.strerror or exc}") from None

    def _record(self, tensors, meta) -> None:
        blob = _encode(tensors, meta, summary=self.summary)
        self._write(_LEN.pack(len(blob)) + blob + _CRC.pack(zlib.crc32(blob)))

    def initial(self, params: Mapping[str, np.ndarray]) -> None:
        """Write the parameters as loaded (always in full: they are where a run starts)."""
        blob = _encode({f"parameters/{k}": v for k, v in params.items()}, {"kind": "initial"}, summary=False)
        self._write(_LEN.pack(len(blob)) + blob + _CRC.pack(zlib.crc32(blob)))

    def step(self, stages: Mapping[str, Mapping[str, object]]) -> None:
        """Write the next step (``{stage: {name: array}}``)."""
        tensors = {f"{stage}/{name}": x for stage, arrays in stages.items() for name, x in arrays.items()}
        self._record(tensors, {"kind": "step", "index": str(self.steps)})
        self.steps += 1

    def close(self, *, complete: bool = True) -> str:
        """Write the end record (when ``complete``) and close; return the path written (``.partial`` when not complete)."""
        if self._fh.closed:
            return self.path if complete else self._writing
        if complete:
            self._record({}, {"kind": "end", "steps": str(self.steps)})
        self._fh.close()
        if self._writing == self.path:
            return self.path
        if not complete:
            return self._keep_partial(closed=True)
        try:
            # mkstemp made it 0600: the permissions a plain open() gives, then one atomic rename
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self._writing, 0o666 & ~umask)
            os.replace(self._writing, self.path)
        except OSError as exc:
            self._keep_partial(closed=True)
            raise ParityError(f"cannot write trace {self.path}: {exc.strerror or exc}") from None
        self._writing = self.path
        self._drop()
        return self.path

    def _keep_partial(self, *, closed: bool) -> str:
        """An atomic writer's cut-off file: renamed to ``path + ".partial"`` (its readable prefix)."""
        partial = self.path + ".partial"
        if not closed:
            with contextlib.suppress(Exception):
                self._fh.flush()
        with contextlib.suppress(OSError):
            os.replace(self._writing, partial)
            self._writing = partial
        self._drop()
        return self._writing

    def _drop(self) -> None:
        from parity.io import forget

        if self._token is not None:
            forget(self._token)
            self._token = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(complete=exc_type is None)


def _split(name: str, key: str, path: str) -> tuple[str, str]:
    stage, sep, tensor = key.partition("/")
    if not sep or stage not in STAGES:
        raise ParityError(f"{path}: {name} record holds {key!r}, not a stage/name entry")
    return stage, tensor


class TraceReader:
    """Read a format-2 trace file record by record (:meth:`steps` streams; nothing else is held).

    Attributes after opening: ``manifest``, ``initial``; after :meth:`steps` is exhausted:
    ``interrupted`` (None, or the number of steps a cut-off file holds).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        _check_readable(self.path)
        try:
            self._fh = open(self.path, "rb")
        except OSError as exc:
            raise ParityError(f"cannot read trace {self.path}: {exc.strerror or exc}") from None
        self._size = os.fstat(self._fh.fileno()).st_size
        self.interrupted: int | None = None
        self.initial: dict[str, np.ndarray] = {}
        self._pending = None
        if self._fh.read(len(MAGIC)) != MAGIC:
            self._fh.close()
            raise ParityError(f"{self.path} is not a readable trace file (not a parity trace)")
        first = self._next()
        if first is None or first[0] != "manifest":
            self._fh.close()
            raise ParityError(f"{self.path}: the trace has no manifest (cut off at its start?)")
        try:
            manifest = json.loads(first[1]["manifest"])
        except (KeyError, ValueError, TypeError):
            raise ParityError(f"{self.path}: the manifest is not JSON") from None
        if not isinstance(manifest, dict):
            raise ParityError(f"{self.path}: the manifest is a JSON {type(manifest).__name__}, not an object")
        for key, kind in (("case", str), ("port", str), ("dtype", str)):
            if key in manifest and not isinstance(manifest[key], kind):
                raise ParityError(f"{self.path}: manifest field {key!r} is a {type(manifest[key]).__name__}, not a string")
        self.manifest = manifest
        nxt = self._next()
        if nxt is not None and nxt[0] == "initial":
            self.initial = {_split("initial", k, self.path)[1]: v for k, v in nxt[2].items()}
        else:
            self._pending = nxt

    def _next(self):
        """Return (kind, metadata, tensors) of the next record; None at a clean or cut-off end."""
        head = self._fh.read(_LEN.size)
        if not head:
            return None
        if len(head) < _LEN.size:
            return None  # cut inside a length field: an interrupted write
        (n,) = _LEN.unpack(head)
        if n > _MAX_RECORD:
            raise ParityError(f"{self.path}: corrupt record length {n}")
        if n + _CRC.size > self._size - self._fh.tell():
            return None  # the record runs past the end: cut off (or its length field is corrupt)
        blob = self._fh.read(n)
        crc = self._fh.read(_CRC.size)
        if len(blob) < n or len(crc) < _CRC.size:
            return None  # cut inside a record: an interrupted write
        if zlib.crc32(blob) != _CRC.unpack(crc)[0]:
            raise ParityError(f"{self.path}: checksum mismatch at byte {self._fh.tell() - n - 12} (the file is corrupt)")
        if len(blob) < 8:
            raise ParityError(f"{self.path}: a record too short to be a safetensors blob")
        (hlen,) = _LEN.unpack(blob[:8])
        try:
            header = json.loads(blob[8 : 8 + hlen])
            meta = header.get("__metadata__") or {}
            tensors = _safetensors().load(blob)
        except Exception as exc:  # the parser's own error types vary: one line either way
            raise ParityError(f"{self.path}: unreadable record ({type(exc).__name__}: {str(exc)[:80]})") from None
        if not isinstance(meta, dict) or meta.get("kind") not in _KINDS:
            raise ParityError(f"{self.path}: a record of unknown kind {meta.get('kind') if isinstance(meta, dict) else meta!r}")
        try:
            order = json.loads(meta.get("order", "[]"))
            summaries = json.loads(meta.get("summaries", "{}"))
            if not isinstance(order, list) or not isinstance(summaries, dict) or set(order) != set(tensors):
                raise ValueError("order")
            out = {}
            for key in order:
                if key in summaries:
                    shape, dtype, checksum = summaries[key]
                    out[key] = Summary.decode(tensors[key], shape, dtype, checksum)
                else:
                    out[key] = tensors[key]
        except (ValueError, TypeError, KeyError):
            raise ParityError(f"{self.path}: a {meta['kind']} record with an inconsistent tensor list") from None
        return meta["kind"], meta, out

    def steps(self) -> Iterator[dict[str, dict[str, object]]]:
        """Yield each step's ``{stage: {name: array or Summary}}`` in order, reading as it goes."""
        expected = 0
        try:
            while True:
                rec, self._pending = (self._pending, None) if self._pending is not None else (self._next(), None)
                if rec is None:
                    self.interrupted = expected
                    return
                kind, meta, tensors = rec
                if meta.get("run") is not None and meta.get("run") != getattr(self, "run", None):
                    continue  # another stream of a program's trace (parity.program.record_file): not this one's
                if kind == "end":
                    if meta.get("steps") != str(expected):
                        raise ParityError(f"{self.path}: end record says {meta.get('steps')} steps, the file holds {expected}")
                    return
                if kind != "step":
                    raise ParityError(f"{self.path}: a {kind} record in the middle of the steps")
                if meta.get("index") != str(expected):
                    raise ParityError(f"{self.path}: step {meta.get('index')} where step {expected} was expected (missing steps)")
                step: dict[str, dict[str, object]] = {}
                for key, x in tensors.items():
                    stage, name = _split(f"step {expected}", key, self.path)
                    step.setdefault(stage, {})[name] = x
                expected += 1
                yield step
        finally:
            self._fh.close()

    def close(self) -> None:
        self._fh.close()


def _check_readable(path: str) -> None:
    if os.path.isdir(path):
        raise ParityError(f"trace file {path} is a directory, not a trace file")
    if not os.path.exists(path):
        raise ParityError(f"trace file {path} does not exist")


def open_trace(path: str | os.PathLike):
    """Open a trace file: a :class:`TraceReader` (format 2), or (manifest, initial, steps) of a format 1 ``.npz``."""
    path = os.fspath(path)
    _check_readable(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(MAGIC))
    except OSError as exc:
        raise ParityError(f"cannot read trace {path}: {exc.strerror or exc}") from None
    if head != MAGIC:
        if head[:2] == b"PK":
            return _read_npz(path)
        raise ParityError(f"{path} is not a readable trace file (not a parity trace)")
    return TraceReader(path)


_MANIFEST_KEY = "__manifest__.json"


def _read_npz(path: str) -> tuple[dict, dict, list]:
    """Read a format 1 trace (one ``.npz``: ``step/stage/name`` arrays and a JSON manifest)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if _MANIFEST_KEY not in npz.files:
                raise ParityError(f"{path} is not a parity trace (no manifest)")
            manifest = json.loads(str(npz[_MANIFEST_KEY]))
            if not isinstance(manifest, dict):
                raise ParityError(f"{path}: the manifest is a JSON {type(manifest).__name__}, not an object")
            if manifest.get("format") != 1:
                raise ParityError(f"{path}: trace format {manifest.get('format')!r}, expected 1 in an .npz")
            initial: dict[str, np.ndarray] = {}
            steps: dict[int, dict[str, dict[str, np.ndarray]]] = {}
            for key in npz.files:
                if key == _MANIFEST_KEY:
                    continue
                step, stage, name = key.split("/", 2)
                if step == "initial":
                    initial[name] = npz[key]
                    continue
                if stage not in STAGES:
                    raise ParityError(f"{path}: unknown stage {stage!r} in entry {key!r}")
                steps.setdefault(int(step), {}).setdefault(stage, {})[name] = npz[key]
    except ParityError:
        raise
    except Exception as exc:  # zipfile, zlib, numpy's format checks: any of them is a bad file
        raise ParityError(f"{path} is not a readable trace file ({type(exc).__name__}: {str(exc)[:80]})") from None
    n = manifest.get("steps", len(steps))
    if sorted(steps) != list(range(len(steps))) or len(steps) != n:
        raise ParityError(f"{path}: steps {sorted(steps)[:5]}... do not match the manifest's {n}")
    return manifest, initial, [steps[i] for i in range(n)]
