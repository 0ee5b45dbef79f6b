"""A program's trace file (``parity record PROG.py``): several runs of one program in one format-2 file (numpy only).

One program recorded for ``parity diff``'s verdict needs more than one stream: its run in each dtype
(float64, float32: the float32 envelope reads each program's float64 -> float32 drift), the reference's
conditioning run (its float64 run from float32-perturbed data: the envelope's cap) or, in a float64-only
recording, its float32 shadow; and the reference also carries the *plan* the port is recorded from:
the initial weights (float64), every batch with its dropout masks and noise draws, the mapping, the notes,
the error model's cost and the facts.

The file is an ordinary format-2 trace (:mod:`parity.trace.file`): the first dtype's run is its main stream
(records without a ``run`` tag: a plain :class:`~parity.trace.file.TraceReader` reads it, and skips the
rest); every other stream's records carry ``run`` = ``float32`` / ``conditioning`` / ``shadow`` / ``plan``
in their metadata, and each stream has its own manifest, initial and end records. The steps of the runs
are interleaved (step t of each run, in turn) as they are recorded, so one pass over the file reads them
in lockstep: :class:`RunReader` reads one stream, seeking past the other streams' records after reading
their header alone (the CRC of a record is checked by the reader of its own stream). Nothing is held but
the current step of each stream.
"""

from __future__ import annotations

import json
import os
import zlib

from parity.errors import ParityError
from parity.trace.file import _CRC, _LEN, TraceReader, TraceWriter, _encode

__all__ = ["ProgramTraceWriter", "RunReader", "PLAN", "MAIN", "program_info"]

#: the stream holding the plan (initial weights, batches, mapping): the reference's trace only
PLAN = "plan"
#: the manifest key saying a trace is a program's recording (``parity record PROG.py``)
MAIN = "program"


class ProgramTraceWriter:
    """Write several streams of one program into one trace file, step by step.

    ``add(run, manifest, initial)`` opens a stream (the first one is the main stream, untagged: its manifest
    carries ``info`` under :data:`MAIN`); ``step(run, stages)`` writes its next step; ``close()`` writes the
    end records (the main stream's last). Written to a hidden temporary file and renamed when complete
    (``path + ".partial"`` when not, as :class:`~parity.trace.file.TraceWriter`)."""

    def __init__(self, path: str, info: dict, *, summary: bool = False):
        self.path, self.info, self.summary = path, dict(info), summary
        self.main: TraceWriter | None = None
        self.main_run: str | None = None
        self.counts: dict[str, int] = {}

    def add(self, run: str, manifest: dict, initial=None) -> None:
        if run in self.counts:
            raise ParityError(f"{self.path}: stream {run!r} opened twice")
        if self.main is None:
            m = dict(manifest, **{MAIN: dict(self.info, main=run)})
            self.main = TraceWriter(self.path, m, summary=self.summary, atomic=True)
            self.main_run = run
            self.main.initial(initial or {})
        else:
            m = dict(manifest, format=self.main_format(), summary=bool(self.summary and run != PLAN))
            self._tagged(run, {}, {"kind": "manifest", "manifest": json.dumps(m, sort_keys=True, default=str)})
            self._tagged(run, {f"parameters/{k}": v for k, v in (initial or {}).items()}, {"kind": "initial"},
                         summary=False)
        self.counts[run] = 0

    def main_format(self) -> int:
        from parity.trace.stages import TRACE_FORMAT

        return TRACE_FORMAT

    def _tagged(self, run: str, tensors: dict, meta: dict, summary: bool | None = None) -> None:
        blob = _encode(tensors, dict(meta, run=run), summary=self.summary if summary is None else summary)
        self.main._write(_LEN.pack(len(blob)) + blob + _CRC.pack(zlib.crc32(blob)))

    def step(self, run: str, stages) -> None:
        """The next step of stream ``run`` (``{stage: {name: array}}``; the plan's batches: ``{"inputs": batch}``)."""
        if run == self.main_run:
            self.main.step(stages)
        else:
            tensors = {f"{stage}/{name}": x for stage, arrays in stages.items() for name, x in arrays.items()}
            self._tagged(run, tensors, {"kind": "step", "index": str(self.counts[run])},
                         summary=False if run == PLAN else None)
        self.counts[run] += 1

    def close(self, *, complete: bool = True, end: dict | None = None) -> str:
        """Write every stream's end record (``end``: run -> more metadata for its end record, a stream opened
        here when it has none yet: what is known only after the runs) and close."""
        if self.main is None:
            return self.path
        if complete:
            for run in end or {}:
                if run not in self.counts:
                    self.add(run, {"kind": run})
            for run, n in self.counts.items():
                if run != self.main_run:
                    more = {k: json.dumps(v) for k, v in ((end or {}).get(run) or {}).items()}
                    self._tagged(run, {}, dict(more, kind="end", steps=str(n)))
        return self.main.close(complete=complete)


class RunReader(TraceReader):
    """One stream of a program's trace file (``run``: None = the main stream), read step by step as
    :class:`~parity.trace.file.TraceReader` reads a trace; the other streams' records are skipped unread."""

    def __init__(self, path: str, run: str | None = None):
        self.run = run
        self.end: dict = {}  # the end record's metadata (JSON values decoded), once read
        super().__init__(path)

    def _next(self):
        while True:
            pos = self._fh.tell()
            tag = self._peek_run(pos)
            if tag is _UNKNOWN or tag == self.run:
                self._fh.seek(pos)
                rec = super()._next()
                if rec is not None and rec[0] == "end":
                    self.end = {k: _json(v) for k, v in rec[1].items()}
                return rec
            # another stream's record: skip it (length + blob + CRC)
            self._fh.seek(pos)
            (n,) = _LEN.unpack(self._fh.read(_LEN.size))
            self._fh.seek(pos + _LEN.size + n + _CRC.size)

    def _peek_run(self, pos: int):
        """The ``run`` tag of the record at ``pos`` (None: untagged) from its header alone; :data:`_UNKNOWN`
        when it cannot be read cheaply (a cut-off or corrupt record: the full read says what is wrong)."""
        head = self._fh.read(_LEN.size)
        if len(head) < _LEN.size:
            return _UNKNOWN
        (n,) = _LEN.unpack(head)
        if n < 8 or n + _CRC.size > self._size - pos - _LEN.size:
            return _UNKNOWN
        (hlen,) = _LEN.unpack(self._fh.read(8))
        if hlen > n - 8 or hlen > 1 << 26:
            return _UNKNOWN
        try:
            meta = json.loads(self._fh.read(hlen)).get("__metadata__") or {}
        except (ValueError, AttributeError):
            return _UNKNOWN
        return meta.get("run") if isinstance(meta, dict) else _UNKNOWN


_UNKNOWN = object()


def _json(text):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def read_end(path: str, run: str) -> dict:
    """The end record's metadata of stream ``run`` (``{}``: the stream has none, or was cut off)."""
    r = RunReader(path, run)
    for _ in r.steps():
        pass
    return r.end


def program_info(path: str) -> dict | None:
    """The :data:`MAIN` block of a trace's manifest (None: not a program's recording)."""
    from parity.trace.file import open_trace

    head = open_trace(path)
    if isinstance(head, tuple):
        return None
    try:
        info = head.manifest.get(MAIN)
    finally:
        head.close()
    if info is not None and not isinstance(info, dict):
        raise ParityError(f"{path}: the manifest's {MAIN!r} block is not a JSON object")
    return info


def file_digest(path: str) -> str:
    """A short content digest of a file (the reference trace a port was recorded against)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def source_digest(path: str) -> str | None:
    try:
        return file_digest(path) if os.path.isfile(path) else None
    except OSError:
        return None
