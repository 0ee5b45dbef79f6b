"""Random noise driven at the source in a Keras / TF2 program: while a captured program runs a forward or a
step, TensorFlow's standard-normal and uniform kernels (``random_standard_normal``, ``random_uniform`` and
their stateless v2 forms: what ``tf.random.normal``/``uniform``, tf_keras' ``K.random_normal`` and Keras 3's
``keras.random.normal`` call, a VAE's ``mu + exp(0.5 * logvar) * eps`` in a ``Lambda`` or the model's
``call``, ``GaussianNoise``) return parity's draw for their site: the k-th normal draw of a run is site
``NOISE_BASE["normal"] + k`` (uniform likewise), a standard normal (``U[0, 1)``) the caller then scales and
shifts itself; without a draw for the site, TensorFlow's own. An initializer's draw (a layer built in
its first call) is left alone. What parity cannot drive (a truncated normal, an integer or categorical
draw, any draw inside a ``tf.function``) is a site of kind ``undriven`` whose name is the note: what and
at which line of the user's file.

The sites live in the program's :class:`~.forward.Recording` (``shapes``: index -> ``(name, shape)`` for
an index at or above ``NOISE_BASE["normal"]``), read by :func:`.dropout.dropout_sites`.
"""

from __future__ import annotations

import os
import sys
import weakref

import numpy as np

from parity.errors import _is_users

__all__ = ["NOISE_BASE", "install", "noise_sites"]

#: as parity.program.batches.NOISE_BASE (tests/test_noise_sources.py checks they agree)
NOISE_BASE = {"normal": 1_000_000, "uniform": 2_000_000, "undriven": 3_000_000}

#: (module, function, kind): the kernels parity drives ("normal" / "uniform") or names ("undriven")
KERNELS = (
    ("gen_random_ops", "random_standard_normal", "normal"),
    ("gen_random_ops", "random_uniform", "uniform"),
    ("gen_stateless_random_ops_v2", "stateless_random_normal_v2", "normal"),
    ("gen_stateless_random_ops_v2", "stateless_random_uniform_v2", "uniform"),
    ("gen_stateless_random_ops", "stateless_random_normal", "normal"),
    ("gen_stateless_random_ops", "stateless_random_uniform", "uniform"),
    ("gen_random_ops", "truncated_normal", "undriven"),
    ("gen_stateless_random_ops_v2", "stateless_truncated_normal_v2", "undriven"),
    ("gen_random_ops", "random_uniform_int", "undriven"),
    ("gen_stateless_random_ops_v2", "stateless_random_uniform_int_v2", "undriven"),
    ("gen_random_ops", "multinomial", "undriven"),
    ("gen_random_ops", "random_shuffle", "undriven"),
)

_RECORDINGS: list = []  # weak references to every captured program's Recording


def _active():
    """The Recording of the program running a forward or a step now (None outside them)."""
    for ref in reversed(_RECORDINGS):
        rec = ref()
        if rec is not None and rec.record is not None:
            return rec
    return None


def _users_line() -> tuple[str, bool]:
    """``(file:line, in_initializer)``: the innermost user's frame, and whether an initializer is on the way."""
    frame, init = sys._getframe(2), False
    while frame is not None and not _is_users(frame.f_code.co_filename):
        init = init or "initializers" in frame.f_code.co_filename or frame.f_code.co_name in ("build", "add_weight")
        frame = frame.f_back
    where = "?" if frame is None else f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
    return where, init


def _start(rec) -> None:
    """A new run (a new ``rec.record``): the counts start again and the last run's sites go."""
    if getattr(rec, "_noise_run", None) is not rec.record:
        rec._noise_run = rec.record
        rec._noise_counts = {}
        for k in [k for k in rec.shapes if k >= NOISE_BASE["normal"]]:
            del rec.shapes[k]


def _site(rec, kind: str, name: str, shape: tuple) -> int:
    k = rec._noise_counts.get(kind, 0)
    rec._noise_counts[kind] = k + 1
    index = NOISE_BASE[kind] + k
    rec.shapes[index] = (name, tuple(int(d) for d in shape))
    return index


def _channel_last(shape: tuple) -> tuple:
    return tuple(shape)  # a TF draw is already channel-last


def _wrap(original, kind: str, label: str, tf):
    def call(*args, **kwargs):
        rec = _active()
        if rec is None:
            return original(*args, **kwargs)
        where, init = _users_line()
        if init:  # a weight's initial value: not the program's noise
            return original(*args, **kwargs)
        _start(rec)
        out = original(*args, **kwargs)
        if kind == "undriven" or not tf.executing_eagerly():
            why = "inside a tf.function, parity cannot feed it" if kind != "undriven" else "parity drives only normal and uniform draws"
            note = (f"{label} at {where} ({why}): it draws its own numbers; expect a difference from step 0 "
                    "at the outputs after it (compare them statistically)")
            if note not in [v[0] for k, v in rec.shapes.items() if k >= NOISE_BASE["undriven"]]:
                _site(rec, "undriven", note, ())
            return out
        if not out.dtype.is_floating:
            return out
        shape = _channel_last(tuple(out.shape))
        index = _site(rec, kind, f"{label} at {where}", shape)
        draw = rec.masks.get(index)
        if draw is None:
            return out
        draw = np.asarray(draw)
        if draw.shape != shape:  # (a fixed-size draw whose first dimension only looked like the batch): its own
            _site(rec, "undriven", f"{label} at {where}: parity's draw {list(draw.shape)} does not fit this call's "
                  f"{list(shape)}: it drew its own; expect a difference from step 0 at the outputs after it", ())
            return out
        return tf.constant(draw, dtype=out.dtype)

    call.__parity_noise__ = original
    call.__name__ = getattr(original, "__name__", label)
    return call


def install(rec, tf) -> None:
    """Drive the random kernels for ``rec``'s program (the kernels are wrapped once per process)."""
    _RECORDINGS[:] = [r for r in _RECORDINGS if r() is not None]
    _RECORDINGS.append(weakref.ref(rec))
    import importlib

    for module, function, kind in KERNELS:
        try:
            mod = importlib.import_module(f"tensorflow.python.ops.{module}")
        except ImportError:
            continue
        original = getattr(mod, function, None)
        if original is None or hasattr(original, "__parity_noise__"):
            continue
        label = f"tf.raw_ops.{''.join(p.capitalize() for p in function.split('_'))}"
        setattr(mod, function, _wrap(original, kind, label, tf))


def noise_sites(shapes: dict) -> list:
    """The noise sites of the last run (``DropoutSite``; index at or above ``NOISE_BASE["normal"]``)."""
    from parity.portkit.program import DropoutSite

    return [DropoutSite(k, *shapes[k], 0.0) for k in sorted(shapes) if k >= NOISE_BASE["normal"]]
