"""Capture a TF1 graph + Session program as its author wrote it, and record every stage.

This package's ``__init__`` holds :func:`capture` (the entry point) and re-exports the public names;
the captured program is in ``program.py``, its parts by concept in ``analyse.py``, ``forward.py``,
``optimizer.py``, ``dropout.py``, ``dtype.py`` (and ``graph.py``, the graph walking they share).

The user's file has a ``parity_program()`` that builds the program in the default graph
(placeholders, variables, loss, optimizer, ``compute_gradients`` / clipping /
``apply_gradients`` or ``minimize``) and returns a plain dict (see
``/docs/own-model.md`` and the contract in ``parity/program/prepare.py``)::

    {"inputs": {"x": x_ph, "y": y_ph}, "loss": loss, "train_op": train_op,
     "optimizer": opt, "grads_and_vars": capped, "post_ops": [...], "feeds": {keep_prob: 0.75}}

Where each stage comes from (nothing of the user's graph is edited, only read or fed):

* forward: the outputs of the layer ops on the path from the inputs to the loss, in graph
  (creation) order, named by op name (so by name scope): a matmul/conv with the bias add
  that follows it, activations, pooling, batch normalisation, dropout, embedding lookups.
  :meth:`TF1Program.forward_kinds` says which kind each one is.
* gradients (raw): the ``gradients/...`` tensor each applied gradient derives from (the
  output of ``compute_gradients``, before any clipping).
* processed gradients, learning rate, slots: the inputs of the optimizer's apply ops
  (``ResourceApplyAdam(var, m, v, ..., lr, ..., grad)``): the gradient and the rate the
  optimizer actually consumed; slots through ``optimizer.get_slot`` when the optimizer is
  given (canonical names), from the apply ops' inputs otherwise.
* parameters, slots, state: the variables after the train op (and the ``UPDATE_OPS``),
  read in a second run; state is every variable that is neither trained nor the
  optimizer's (BatchNorm moving statistics, ``global_step``, EMA shadows).
* constrained: the variables the ``post_ops`` write, read after they ran.

Dropout: ``tf.nn.dropout`` draws ``random_uniform`` and keeps ``random >= rate``; the
adapter feeds the random tensor with parity's keep mask (1 keeps, 0 drops), so the
program's own dropout op computes ``where(mask, x / keep_prob, 0)``.

float64: the program is built once more in a fresh graph with every float32 placeholder
and variable made float64 (so layers that pick a kernel by dtype pick the float64 one),
then every float32 left in the graph (the optimizers' Python-float hyper-parameters, which
TF1 turns into float32 constants; casts to float32 inside ``tf.losses``) is rewritten to
float64 in the GraphDef before it is imported into the graph that runs (a TensorArray's
flow stays float32; LeakyRelu's float32 alpha is computed as a float64 constant). A float32
scalar constant is taken as the shortest decimal that prints it (``0.001``, not
``0.0010000000474974513``): what the author typed. Each such constant is listed in
:meth:`TF1Program.notes`, with the fix that makes the program run in float64 as written.
FusedBatchNorm has float32 kernels only: a 4-D ``tf.layers.batch_normalization`` is built
non-fused in float64, and its moving-variance update is scaled by n/(n-1) so it keeps the
fused kernel's (Bessel-corrected) convention (:func:`fused_batch_norm_convention`); a program
that calls ``tf.nn.fused_batch_norm`` itself (TF1 contrib ``batch_norm``, fused by default; a
legacy layer that decides fused from its float32 dtype) gets the fused kernel's maths computed
from float64 ops (:func:`.dtype.fused_kernel_in_float64`; a note says so); a fused op left in the
graph after that (``gen_nn_ops`` called directly) cannot run in float64 and says so
(:class:`parity.portkit.program.DtypeError`, with the fix).

An update written by hand (``w.assign_sub(lr * g)``: no optimizer apply op to read the consumed
gradient and rate from) is compared on the loss, the raw gradients and the parameters after each step
(``phases.py``); a list of train ops runs as phases of one step (a GAN's ``[d, g, g]``).
Not captured: sparse (``IndexedSlices``) gradients, layer outputs inside ``tf.while_loop`` (``dynamic_rnn``), and a dropout whose random tensor
feeds no ``where(random >= rate, x / keep_prob, 0)`` parity knows (a note says so).
"""

from __future__ import annotations

import re
from typing import Mapping

from parity.errors import ParityError

from ... import tensorflow
from .analyse import PROGRAM_KEYS
from .dtype import _BN_TOUCHED, _FUSED_EMULATED, _call_program, _written_dtype
from .dtype import _shortest, fused_batch_norm_convention  # noqa: F401  (importable from here, as before the split)
from .forward import LAYER_OPS
from .optimizer import SLOT_NAMES
from .program import TF1Program

__all__ = ["capture", "seed_program", "TF1Program", "PROGRAM_KEYS", "SLOT_NAMES", "LAYER_OPS", "tf32_off", "tf32_notes"]

#: TensorFloat-32 (TensorFlow's default on Ampere and later GPUs: float32 matmuls and convolutions with 10-bit
#: operands) is turned off for the comparison, as torch_impl turns torch's off (PITFALLS P45): a TF reference
#: on a GPU is then IEEE float32. A program that turns it on itself keeps it, and a note says so (the float32
#: envelope counts a reference's own drift whole: TF32-sized port faults could pass unseen). A no-op on a CPU.
TF32_NOTE = ("TF32: the program turns TensorFloat-32 on (tf.config.experimental.enable_tensor_float_32_execution"
             "(True)); on an Ampere or later GPU its float32 matmuls and convolutions round their operands to 10 bits, "
             "which the float32 comparison counts as the program's own rounding (parity turns TF32 off otherwise)")


def tf32_off(tf) -> None:
    """Turn TensorFloat-32 off (before the user's program is built)."""
    tf.config.experimental.enable_tensor_float_32_execution(False)


def tf32_notes(tf) -> list[str]:
    """[:data:`TF32_NOTE`] where the program turned TensorFloat-32 on again, else []."""
    return [TF32_NOTE] if tf.config.experimental.tensor_float_32_execution_enabled() else []



def seed_program(seed: int) -> None:
    """Seed what a TF1 program draws while it is built: the graph seed of the default graph (the fresh graph
    the program is built in: every random op without its own seed then draws the same values each run;
    the program's own ``tf.set_random_seed`` still wins), numpy's and Python's global generators."""
    import random

    import numpy as np

    tensorflow().compat.v1.set_random_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


#: (file, its size and time, dtype) -> the dtype the file is written in, where building it with its placeholders and
#: variables made ``dtype`` gave a ``dtype`` program: a later capture of the same file (a ``parity diff`` worker
#: captures a program up to three times in float64) skips the build as written, whose only use was that dtype
_WRITTEN: dict = {}


def _written_key(where: str, dtype: str):
    import os

    try:
        st = os.stat(where)
    except (OSError, TypeError, ValueError):
        return None  # not a file (a function passed in-process): built as written every time
    return (os.path.abspath(where), st.st_size, st.st_mtime_ns, dtype)


def capture(program, *, dtype: str, where: str = "tf1 program") -> TF1Program:
    """Build a user's TF1 program and capture it for a run in ``dtype``.

    Args:
        program: the user's ``parity_program`` function (or a module that has one). It is
            called with a fresh ``tf.Graph`` as the default graph; for a run in another
            dtype than the program's own it is called once more under a dtype override.
        dtype: "float64" or "float32".

    Raises:
        ParityError: a key of the wrong kind, nothing to train, a graph that cannot run in ``dtype``.
    """
    if dtype not in ("float64", "float32"):
        raise ParityError(f"dtype must be float64 or float32, not {dtype!r}")
    fn = getattr(program, "parity_program", program)
    if not callable(fn):
        raise ParityError(f"{where}: tf1 capture needs the parity_program function (it builds the graph in a fresh tf.Graph)")
    tf = tensorflow()
    tf32_off(tf)
    notes: list[str] = []
    key = _written_key(where, dtype)
    written = _WRITTEN.get(key) if key is not None else None
    if written is None:  # built as written first: the dtype it is written in
        graph = tf.Graph()
        built = _call_program(fn, graph, None)
        if not isinstance(built, Mapping):
            raise ParityError(f"{where}: parity_program() must return a dict, not {type(built).__name__}")
        written = _written_dtype(built)
        if written == dtype and key is not None:
            # what a later capture in the other dtype would build as written to learn (the float32 run's worker
            # of parity diff builds the conditioning run in float64 next: 0.84 -> 0.39 s of CPU, the seed 001
            # convnet); taken as a guess there, checked by its own build as the entries made below are
            other = {"float32": "float64", "float64": "float32"}[dtype]
            _WRITTEN.setdefault(_written_key(where, other), written)
    else:
        graph = built = None
    if written != dtype:
        graph2 = tf.Graph()
        _BN_TOUCHED.clear()
        _FUSED_EMULATED.clear()
        try:
            built2 = _call_program(fn, graph2, dtype)
            if built is None and (not isinstance(built2, Mapping) or _written_dtype(built2) != dtype):
                _WRITTEN.pop(key, None)  # not as the last capture of this file: built as before, as written first
                return capture(program, dtype=dtype, where=where)
            if _written_dtype(built2) == dtype:
                if key is not None:
                    _WRITTEN[key] = written
                graph, built = graph2, built2
                notes.append(f"{dtype}: the program (written in {written}) was built with its placeholders and "
                             f"variables made {dtype}; the rest of its float32 graph rewritten to {dtype}")
                if _BN_TOUCHED:
                    notes.append(f"{dtype}: batch normalisation {', '.join(_BN_TOUCHED)} has no float64 fused kernel and "
                                 "runs non-fused, whose moving variance update uses the biased batch variance; parity "
                                 "scales it by n/(n-1), the fused kernel's (float32) convention")
                if _FUSED_EMULATED:
                    layers = sorted({re.sub(r"/FusedBatchNorm\w*$", "", n) for n in _FUSED_EMULATED})
                    notes.append(f"{dtype}: fused batch normalisation (tf.nn.fused_batch_norm) in {', '.join(layers)} has no "
                                 f"{dtype} kernel: parity computes the fused kernel's maths from {dtype} ops (normalised "
                                 "with the biased batch variance; the batch variance it returns, which the moving "
                                 "average stores, Bessel-corrected: n/(n-1))")
            else:
                notes.append(f"{dtype}: the program's graph (written in {written}) rewritten to {dtype}")
        except ParityError:
            raise
        except Exception as exc:  # an explicit float32 somewhere: fall back to rewriting the as-written graph
            if built is None:  # not as the last capture of this file: built as before, as written first
                _WRITTEN.pop(key, None)
                return capture(program, dtype=dtype, where=where)
            line = (str(exc).strip().splitlines() or [""])[0][:160]
            notes.append(f"{dtype}: building the program with {dtype} placeholders and variables failed "
                         f"({type(exc).__name__}: {line}); its as-written graph was rewritten to {dtype} instead")
    prog = TF1Program(built, graph, dtype, notes + tf32_notes(tf), written, where)
    prog.tf32 = bool(tf32_notes(tf))  # a program fact where the program keeps TF32 on
    return prog
