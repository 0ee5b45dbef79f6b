"""Fuzz: corrupt and foreign trace files are each one line and exit code 2 from `parity compare`.

Hypothesis draws truncations, bit flips, wrong manifest types (a JSON list, numbers where
strings go), missing and repeated steps, object arrays and foreign files; every one must be
refused with exit 2 and one line on stderr -- never a traceback (exit 4), never a pass.
In-process through ``parity.cli.main.main`` (the code ``python -m parity`` runs), plus one
subprocess check of the real entry point.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from parity.cli.main import main
from parity.trace.memory import Trace, save
from parity.trace.file import MAGIC

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid(tmp_path, name="a", steps=3) -> bytes:
    t = Trace(manifest={"case": "my_own_model", "port": name, "dtype": "float64", "framework": "numpy"})
    t.initial = {"w": np.arange(4.0)}
    for i in range(steps):
        t.add_step({"loss": {"loss": np.array(1.0 / (i + 1))}, "parameters": {"w": np.arange(4.0) * i}})
    path = save(t, tmp_path / f"{name}.trace")
    with open(path, "rb") as fh:
        return fh.read()


def _compare(tmp_path, data: bytes) -> tuple[int, str]:
    bad = tmp_path / "bad.trace"
    bad.write_bytes(data)
    good = tmp_path / "good.trace"
    if not good.exists():
        good.write_bytes(_valid(tmp_path, "good"))
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(["compare", str(good), str(bad)])
    return code, err.getvalue()


def _assert_refused(code: int, err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("parity: error:"), err


def _record(meta: dict, tensors: dict | None = None) -> bytes:
    from safetensors.numpy import save as st_save

    blob = st_save(tensors or {}, metadata=meta)
    return struct.pack("<Q", len(blob)) + blob + struct.pack("<I", zlib.crc32(blob))


def _manifest(value) -> bytes:
    return _record({"kind": "manifest", "manifest": json.dumps(value), "order": "[]"})


def _step(index, tensors=None) -> bytes:
    tensors = tensors or {"loss/loss": np.array(1.0)}
    return _record({"kind": "step", "index": str(index), "order": json.dumps(list(tensors))}, tensors)


def _end(n) -> bytes:
    return _record({"kind": "end", "steps": str(n), "order": "[]"})


GOOD_MANIFEST = {"case": "my_own_model", "port": "b", "dtype": "float64"}


@FUZZ
@given(cut=st.floats(0.0, 0.999))
def test_truncated(tmp_path, cut):
    data = _valid(tmp_path)
    _assert_refused(*_compare(tmp_path, data[: int(len(data) * cut)]))


@FUZZ
@given(flips=st.lists(st.tuples(st.floats(0.0, 0.9999), st.integers(0, 7)), min_size=1, max_size=4))
def test_bit_flips(tmp_path, flips):
    original = _valid(tmp_path)
    data = bytearray(original)
    for where, bit in flips:
        data[int(where * len(data))] ^= 1 << bit
    assume(bytes(data) != original)  # two flips of one bit cancel
    _assert_refused(*_compare(tmp_path, bytes(data)))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@FUZZ
@given(value=JSON.filter(lambda v: not isinstance(v, dict)))
def test_manifest_that_is_not_an_object(tmp_path, value):
    _assert_refused(*_compare(tmp_path, MAGIC + _manifest(value) + _step(0) + _end(1)))


@FUZZ
@given(field=st.sampled_from(["case", "port", "dtype"]), value=JSON.filter(lambda v: not isinstance(v, str)))
def test_manifest_fields_of_the_wrong_type(tmp_path, field, value):
    manifest = dict(GOOD_MANIFEST, **{field: value})
    _assert_refused(*_compare(tmp_path, MAGIC + _manifest(manifest) + _step(0) + _end(1)))


@FUZZ
@given(indices=st.lists(st.integers(0, 6), min_size=1, max_size=5).filter(lambda xs: xs != list(range(len(xs)))))
def test_missing_or_repeated_steps(tmp_path, indices):
    body = b"".join(_step(i) for i in indices)
    _assert_refused(*_compare(tmp_path, MAGIC + _manifest(GOOD_MANIFEST) + body + _end(len(indices))))


@FUZZ
@given(junk=st.binary(max_size=64))
def test_foreign_bytes(tmp_path, junk):
    _assert_refused(*_compare(tmp_path, junk))


@pytest.mark.parametrize("kind", ["object array (format 1)", "npz without manifest", "json list manifest (format 1)",
                                  "bad stage", "unknown record kind", "tensor list mismatch", "end count"])
def test_foreign_and_inconsistent_files(tmp_path, kind):
    buf = io.BytesIO()
    if kind == "object array (format 1)":
        np.savez(buf, **{"__manifest__.json": np.array(json.dumps(dict(GOOD_MANIFEST, format=1, steps=1))),
                         "0/loss/loss": np.array([object()], dtype=object)})
        data = buf.getvalue()
    elif kind == "npz without manifest":
        np.savez(buf, x=np.ones(2))
        data = buf.getvalue()
    elif kind == "json list manifest (format 1)":
        np.savez(buf, **{"__manifest__.json": np.array(json.dumps([1, 2]))})
        data = buf.getvalue()
    elif kind == "bad stage":
        data = MAGIC + _manifest(GOOD_MANIFEST) + _step(0, {"outputs/y": np.ones(2)}) + _end(1)
    elif kind == "unknown record kind":
        data = MAGIC + _manifest(GOOD_MANIFEST) + _record({"kind": "pickle", "order": "[]"})
    elif kind == "tensor list mismatch":
        data = MAGIC + _manifest(GOOD_MANIFEST) + _record({"kind": "step", "index": "0", "order": '["loss/x"]'},
                                                          {"loss/loss": np.array(1.0)}) + _end(1)
    else:
        data = MAGIC + _manifest(GOOD_MANIFEST) + _step(0) + _end(5)
    _assert_refused(*_compare(tmp_path, data))


def test_through_python_m_parity(tmp_path):
    data = bytearray(_valid(tmp_path))
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "bad.trace").write_bytes(bytes(data))
    (tmp_path / "good.trace").write_bytes(_valid(tmp_path, "good"))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-m", "parity", "compare", str(tmp_path / "good.trace"), str(tmp_path / "bad.trace")],
                          capture_output=True, text=True, env=env)
    _assert_refused(proc.returncode, proc.stderr)
