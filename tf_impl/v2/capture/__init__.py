"""Capture a Keras program (tf_keras or Keras 3, eager) as its author wrote it, and record every stage.

This package's ``__init__`` holds :func:`capture` (the entry point) and re-exports the public names;
the captured program is in ``program.py``, its parts by concept in ``analyse.py``, ``forward.py``,
``optimizer.py``, ``dropout.py`` and ``dtype.py``.

The user's ``parity_program()`` returns ``{"model": model, "optimizer": opt, "loss": loss}``
and optionally ``"fit": True`` (one ``train_on_batch`` per step, what ``fit`` runs per batch),
or ``"train_step"`` (the user's GradientTape step, called with the batch dict of tensors),
``"inputs"`` / ``"targets"`` (batch keys, default ``["x"]`` / ``["y"]``) and ``"data"``.

Where each stage comes from (nothing of the user's code is edited):

* forward: every leaf layer's output, in call order, by layer name: each layer's ``call``
  is wrapped on the instance for the run (``fit`` runs eagerly so the outputs are values).
* gradients: what ``tf.GradientTape.gradient`` returned for the trainable weights in a
  user ``train_step`` (before any clipping the step does); with ``fit`` or the default
  step, the gradients handed to ``optimizer.apply_gradients``.
* processed gradients and learning rate: the arguments of ``optimizer.apply_gradients``
  (wrapped on the instance), after the optimizer's own ``clipnorm`` / ``clipvalue`` /
  ``global_clipnorm`` where set; the rate the optimizer holds at that moment.
* parameters, slots, state: trainable weights, the optimizer's slot variables (canonical
  names: ``m``, ``v``, ``momentum``, ``ms``, ``mg``, ``accumulator``) and the non-trainable
  weights (BatchNorm moving statistics) after the step. A Keras SGD velocity
  ``v = mu*v - lr*g`` is reported as ``-v/lr``, TF1's and torch's momentum accumulator.

Dropout: each ``Dropout`` layer's ``call`` becomes ``x * mask / (1 - rate)`` with parity's
keep mask when training (the identity without a mask), so both frameworks drop the same units.

float64: Keras builds layers in ``floatx``; the adapter sets floatx to the run's dtype
before calling ``parity_program()``. A model built at import time keeps its dtype: it is
rebuilt from its config with every float32 made float64 (weights copied), unless the
program has its own ``train_step`` (which holds the original model): then the run is
refused with the fix (build the model inside ``parity_program()``). tf_keras casts
Python-float hyper-parameters through float32 (``tf.cast(0.9, tf.float64)`` is
0.8999999762: SGD momentum, Adam betas, BatchNormalization momentum); in float64 the
adapter hands them over as float64 numbers (a note lists them). BatchNormalization keeps
the fused kernel's moving-variance convention in float64, as in the TF1 adapter.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from parity.errors import ParityError

from ... import tensorflow
from .analyse import PROGRAM_KEYS
from .dtype import _floatx
from .program import KerasProgram

__all__ = ["capture", "seed_program", "KerasProgram", "PROGRAM_KEYS", "tf32_off", "tf32_notes"]

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
    """Seed what a Keras program draws while it is built: TensorFlow's global seed, Keras 3's and tf_keras'
    (``keras.utils.set_random_seed``), numpy's and Python's, so its initial weights are the same each run;
    and clear the Keras session first (layer names start again at ``conv2d``, ``dense``)."""
    import random
    import sys

    import numpy as np

    tf = tensorflow()
    for name in ("keras", "tf_keras"):
        if name == "keras" or name in sys.modules:  # Keras 3 comes with TensorFlow; tf_keras only where imported
            try:
                keras = __import__(name)
                # a fresh session: the file, run again for each capture, names its layers as on its first
                # run (conv2d, not conv2d_1) and the weights mapped at the probe load into every capture
                keras.backend.clear_session()
                keras.utils.set_random_seed(seed)
            except (ImportError, AttributeError):  # not installed, or a Keras without it
                pass
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)


def capture(build: Callable[[], Mapping[str, Any]], *, dtype: str, where: str = "tf2 program") -> KerasProgram:
    """Build a user's Keras program (floatx set to ``dtype``) and capture it."""
    if dtype not in ("float64", "float32"):
        raise ParityError(f"dtype must be float64 or float32, not {dtype!r}")
    fn = getattr(build, "parity_program", build)
    if not callable(fn):
        raise ParityError(f"{where}: tf2 capture needs the parity_program function")
    tf = tensorflow()
    tf32_off(tf)
    with _floatx(dtype):
        program = fn()
    if not isinstance(program, Mapping):
        raise ParityError(f"{where}: parity_program() must return a dict, not {type(program).__name__}")
    with _floatx(dtype):
        prog = KerasProgram(program, dtype, where)
    prog._notes.extend(tf32_notes(tf))
    prog.tf32 = bool(tf32_notes(tf))  # a program fact where the program keeps TF32 on
    return prog
