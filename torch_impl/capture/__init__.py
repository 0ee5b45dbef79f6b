"""Capture a plain PyTorch training program: every stage of every step, without edits to it.

The user's file returns its own objects from ``parity_program()`` (``"model"``, ``"optimizer"``,
``"loss"``, optional ``"scheduler"``, ``"train_step"``, ``"constraint"``, ``"inputs"``,
``"targets"``, ``"data"``); :func:`capture` wraps them in a :class:`TorchProgram` that records:

* forward: every leaf module's output, in call order, under its dotted name (forward hooks);
* gradients: each parameter's ``.grad`` right after ``backward()`` (post-accumulate hooks), before
  any clipping the user's step does; processed gradients: what ``optimizer.step()`` consumed (a
  step pre-hook); the learning rate of each group at that moment;
* parameters after the step, every optimizer slot (``exp_avg`` -> ``m`` ...), the buffers
  (BatchNorm running statistics) and the parameters after a post-step ``constraint``.

Dropout (``F.dropout``, ``nn.Dropout``, ``torch.dropout``: a :class:`~torch.overrides.TorchFunctionMode`
sees them all, however they are imported) is driven by parity's masks: ``x * mask / (1 - p)``.
The same mode watches flattens, so the mapping knows whether a Linear after a conv reads its input
in ``(c, h, w)`` order (``x.view(n, -1)``) or ``(h, w, c)`` (``x.permute(0, 2, 3, 1)`` first).

This package holds the entry point :func:`capture` and re-exports; the parts, read bottom-up:
:mod:`.dtype` (float64 runs), :mod:`.analyse` (what the user's objects hold), :mod:`.dropout`
(parity's masks), :mod:`.forward` (the recorded outputs), :mod:`.optimizer` (hyper-parameters,
learning rate, slots) and :mod:`.program` (the :class:`TorchProgram` parity drives).
"""

from __future__ import annotations

from .. import torch as _torch
from .analyse import PROGRAM_KEYS, program_objects
from .dtype import default_dtype
from .optimizer import SLOT_NAMES
from .program import TorchProgram, user_call

__all__ = ["capture", "seed_program", "TorchProgram", "SLOT_NAMES", "PROGRAM_KEYS"]


def seed_program(seed: int) -> None:
    """Seed what a torch program draws while it is built (``torch.manual_seed``, numpy's and Python's global
    generators), so its initial weights are the same on every run (``parity diff --seed``)."""
    import random

    import numpy as np

    _torch().manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def capture(build, *, dtype: str, where: str = "the torch program") -> "TorchProgram":
    """Call the user's ``parity_program`` and wrap what it returns.

    Args:
        build: the user's zero-argument ``parity_program`` function.
        dtype: "float64" or "float32": the model (and a loss module) is cast to it, and tensors the
            program makes on the fly default to it.
        where: how to name the program in error messages (its file).

    Raises:
        ParityError: a key is missing or holds an object of the wrong kind (one line, naming it).
        PortError: the user's ``parity_program`` raised.
    """
    _torch()
    with default_dtype(dtype):
        objs = user_call("parity_program", build)
    held = program_objects(objs, where)
    prog = TorchProgram(held["model"], held["optimizer"], held["loss"], dtype=dtype, scheduler=held["scheduler"],
                        train_step=held["train_step"], constraint=held["constraint"], inputs=held["inputs"],
                        targets=held["targets"], data=held["data"], where=where)
    # how the scheduler is stepped (optimizer.py reads them): per epoch of steps_per_epoch steps, or per step
    prog.steps_per_epoch, prog.scheduler_unit = held["steps_per_epoch"], held["scheduler_unit"]
    return prog
