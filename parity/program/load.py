"""The user's program files of ``parity diff`` (numpy only): a file -> a :class:`Program` (its framework and
``parity_program``), captured by its framework's adapter (:mod:`parity.run.frameworks`).

The records the adapters fill in (:class:`~parity.portkit.program.ParamSpec` ...) are in :mod:`parity.portkit`.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import os
import re
import sys
import types
from dataclasses import dataclass
from typing import Callable

from parity.errors import ParityError
from parity.run.frameworks import CAPTURE_ADAPTERS, capture_adapter, prepare_environment

__all__ = ["Program", "load_program", "capture"]


# -- the user's files ---------------------------------------------------------------------------------
@dataclass
class Program:
    """A user's program: its file, framework and ``parity_program`` function."""

    path: str
    framework: str
    build: Callable

    @property
    def label(self) -> str:
        return os.path.basename(self.path)


_TF1_HINTS = re.compile(r"compat\.v1|placeholder\(|Session\(|disable_eager_execution|disable_v2_behavior|get_variable\(|import tensorflow\.compat\.v1")


def _framework_of(mod: types.ModuleType, source: str, where: str) -> str:
    declared = getattr(mod, "PARITY_FRAMEWORK", None)
    if declared is not None:
        if declared not in CAPTURE_ADAPTERS:
            raise ParityError(f"{where}: PARITY_FRAMEWORK = {declared!r}; expected one of {', '.join(CAPTURE_ADAPTERS)}")
        return declared
    roots = {v.__name__.split(".")[0] for v in vars(mod).values() if isinstance(v, types.ModuleType)}
    roots |= {getattr(v, "__module__", "").split(".")[0] for v in vars(mod).values() if callable(v)}
    has_torch = "torch" in roots
    has_tf = bool(roots & {"tensorflow", "keras", "tf_keras"})
    if has_torch and has_tf:
        raise ParityError(f"{where} imports both torch and TensorFlow: say which it is with PARITY_FRAMEWORK = 'torch' | 'tf1' | 'tf2'")
    if has_torch:
        return "torch"
    if has_tf:
        return "tf1" if _TF1_HINTS.search(source) else "tf2"
    raise ParityError(f"{where} imports neither torch nor TensorFlow: say which it is with PARITY_FRAMEWORK = 'torch' | 'tf1' | 'tf2'")


def load_program(source) -> Program:
    """Load a user's file (or take a ``parity_program`` function); bad input is a one-line ParityError."""
    if callable(source):
        mod = sys.modules.get(getattr(source, "__module__", ""), None)
        path = getattr(mod, "__file__", None) or getattr(source, "__qualname__", "program")
        text = open(path, encoding="utf-8").read() if mod is not None and os.path.isfile(path) else ""
        return Program(path, _framework_of(mod, text, path) if mod is not None else "torch", source)
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise ParityError(f"program file {path} does not exist")
    if not path.endswith(".py"):
        raise ParityError(f"program file {path} is not a Python file (.py)")
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    mod = _exec_file(path)
    sys.modules.pop(mod.__name__, None)
    framework = _framework_of(mod, text, path)

    def build():
        # A fresh run of the file for every capture: module-level objects (a model and optimizer
        # built at import, TF1 graph code at top level) are new each time, and built inside the
        # adapter's graph / default dtype. The module leaves sys.modules afterwards, so a finished
        # capture's model and optimizer state can be freed.
        fresh = _exec_file(path)
        try:
            return fresh.parity_program()
        finally:
            sys.modules.pop(fresh.__name__, None)

    return Program(path, framework, build)


_EXEC_COUNT = itertools.count()


def _exec_file(path: str) -> types.ModuleType:
    name = "parity_program_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0]) + f"_{next(_EXEC_COUNT)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ParityError(f"program file {path} is not a Python module")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses, pickling and tf.function look modules up by name
    prepare_environment()  # TF's environment (oneDNN reordering off) before the file imports TF
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:  # a user's file can fail in any way; one line
        sys.modules.pop(name, None)
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ParityError(f"program file {path} does not load: {type(exc).__name__}: {line}") from None
    if not callable(getattr(mod, "parity_program", None)):
        raise ParityError(f"{path} defines no parity_program() function (it returns the program's objects; see docs/own-model.md)")
    return mod


def capture(program: Program, dtype: str):
    """Capture ``program`` in ``dtype`` with its framework's adapter."""
    return capture_adapter(program.framework).capture(program.build, dtype=dtype, where=program.path)

