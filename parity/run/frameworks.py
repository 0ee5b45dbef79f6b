"""The one registry of adapters: where each framework's ports and capture adapter live, which
frameworks are installed (without importing them), and how to install the missing ones.

Nothing else in ``parity/`` names ``tf_impl`` or ``torch_impl``: the ports and the capture adapters
are imported here, by :func:`port_package` and :func:`capture_adapter`, when a port runs.

``parity run`` / ``check`` leave out the ports of a framework that is not installed (one
note with the install command; those ports are listed as "not run", never as passing), and
``--frameworks torch,numpy`` leaves out the others by choice.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from types import ModuleType
from typing import Iterable

from parity.cases.case import FRAMEWORKS
from parity.errors import ParityError

__all__ = [
    "PORT_PACKAGES",
    "CAPTURE_ADAPTERS",
    "PACKAGES",
    "INSTALL",
    "port_package",
    "capture_adapter",
    "prepare_environment",
    "needs_legacy_keras",
    "available",
    "missing_reason",
    "parse_frameworks",
]

#: framework -> the package holding its ports (imported lazily, only when a port runs)
PORT_PACKAGES = {
    "tf1": "tf_impl.v1",
    "tf2": "tf_impl.v2",
    "torch": "torch_impl",
    "numpy": "parity.oracle",
}

#: framework -> the module holding its capture adapter (``parity diff``)
CAPTURE_ADAPTERS = {"torch": "torch_impl.capture", "tf1": "tf_impl.v1.capture", "tf2": "tf_impl.v2.capture"}

#: framework -> the importable packages its ports need
PACKAGES = {
    "tf1": ("tensorflow",),
    "tf2": ("tensorflow",),
    "torch": ("torch",),
    "numpy": ("numpy",),
}

#: framework -> the install command (exact pins from constraints.txt)
INSTALL = {
    "tf1": "pip install -c constraints.txt tensorflow-cpu tf-keras",
    "tf2": "pip install -c constraints.txt tensorflow-cpu tf-keras",
    "torch": "pip install -c constraints.txt torch --index-url https://download.pytorch.org/whl/cpu",
    "numpy": "pip install numpy",
}

_NAMES = {"tf1": "TensorFlow", "tf2": "TensorFlow", "torch": "PyTorch", "numpy": "numpy"}


def port_package(framework: str) -> ModuleType:
    """Import the package holding ``framework``'s ports (``tf_impl.v1`` ...): its ``framework_info``."""
    if framework not in PORT_PACKAGES:
        raise ParityError(f"unknown framework {framework!r}; expected one of {', '.join(PORT_PACKAGES)}")
    return importlib.import_module(PORT_PACKAGES[framework])


def preload(framework: str) -> None:
    """Import ``framework``'s library and run nothing (its adapter package's ``preload``): a process that forks the
    framework's ports (:mod:`parity.run.isolate`'s zygote) starts each from here."""
    importlib.import_module(PORT_PACKAGES[framework].split(".")[0]).preload()


def capture_adapter(framework: str) -> ModuleType:
    """Import ``framework``'s capture adapter (``parity diff``); a one-line error where it cannot load."""
    try:
        return importlib.import_module(CAPTURE_ADAPTERS[framework])
    except KeyError:
        raise ParityError(f"there is no capture adapter for {framework!r}; expected one of {', '.join(CAPTURE_ADAPTERS)}") from None
    except ModuleNotFoundError as exc:
        raise ParityError(f"the {framework} capture adapter ({CAPTURE_ADAPTERS[framework]}) is not available: {exc}") from None


#: Keras 2 APIs a TF1 file may use that TensorFlow 2.16+ serves only with TF_USE_LEGACY_KERAS=1 (tf_keras)
_LEGACY_KERAS = re.compile(
    r"\b(?:tf|tf1|v1)\.layers\.\w+\(|\brnn_cell\.|\bfrom tensorflow\.compat\.v1 import layers\b"
    r"|\btf(?:\.compat\.v1)?\.nn\.rnn_cell\b")
#: the TF1 cells and RNN builders a tutorial reaches through an alias (`from tensorflow.contrib import rnn`;
#: `rnn.BasicLSTMCell`, `cell.LSTMCell`); not Keras 3's `layers.LSTMCell` nor torch's `nn.LSTMCell`
_TF1_CELLS = re.compile(
    r"\b(?:BasicLSTMCell|BasicRNNCell|MultiRNNCell|DropoutWrapper|static_rnn|dynamic_rnn)\b"
    r"|\b(?!nn\.|layers\.)\w+\.(?:LSTMCell|GRUCell)\(")
_IMPORTS_TF = re.compile(r"^\s*(?:import|from)\s+tensorflow\b", re.M)
_IMPORTS_TORCH = re.compile(r"^\s*(?:import|from)\s+torch\b", re.M)


def needs_legacy_keras(source: str) -> bool:
    """Whether a file's source uses ``tf.layers`` / ``tf.nn.rnn_cell`` (Keras 2 APIs: ``TF_USE_LEGACY_KERAS=1``),
    or, in a TensorFlow file that does not import torch, TF1's cells / ``static_rnn`` / ``dynamic_rnn`` by any alias."""
    if _LEGACY_KERAS.search(source):
        return True
    return bool(_TF1_CELLS.search(source) and _IMPORTS_TF.search(source) and not _IMPORTS_TORCH.search(source))


def prepare_environment(source: str | None = None, where: str = "the program") -> str | None:
    """Set the frameworks' environment before a user's file imports them: ``tf_impl`` sets TensorFlow's
    (oneDNN's reordering off, its start-up lines quiet) when imported before TensorFlow is.

    A file whose ``source`` uses ``tf.layers`` or ``tf.nn.rnn_cell`` (Keras 2 APIs, gone from TF 2.16+'s
    Keras 3) gets ``TF_USE_LEGACY_KERAS=1`` (tf_keras) set before TensorFlow is imported; the one-line note
    that says so is returned. Where TensorFlow was imported already without it, or tf_keras is missing, a
    one-line ParityError says what to do."""
    import os
    import sys

    note = None
    if source is not None and needs_legacy_keras(source) and os.environ.get("TF_USE_LEGACY_KERAS", "") not in ("1", "true", "True"):
        if not _installed("tf_keras"):
            raise ParityError(f"{where} uses tf.layers / tf.nn.rnn_cell (Keras 2 APIs), which TensorFlow 2.16+ serves only "
                              f"from tf_keras: pip install -c constraints.txt tf-keras")
        if "tensorflow" in sys.modules:
            raise ParityError(f"{where} uses tf.layers / tf.nn.rnn_cell (Keras 2 APIs) and TensorFlow was imported already "
                              f"without TF_USE_LEGACY_KERAS=1: run `TF_USE_LEGACY_KERAS=1 parity diff ...`")
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        note = (f"{where} uses tf.layers / tf.nn.rnn_cell (Keras 2 APIs): parity set TF_USE_LEGACY_KERAS=1 before "
                "importing TensorFlow (set it yourself to run the file outside parity)")
    if "tensorflow" not in sys.modules and _installed("tf_impl"):
        importlib.import_module("tf_impl")
    return note


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a broken or blocked package counts as not installed
        return False


def available(framework: str) -> bool:
    """Whether every package the framework's ports need is importable (nothing is imported)."""
    return all(_installed(p) for p in PACKAGES.get(framework, ()))


def missing_reason(framework: str) -> str | None:
    """``None`` when installed, else one line: what is missing and the install command."""
    if available(framework):
        return None
    return f"{_NAMES.get(framework, framework)} is not installed ({INSTALL.get(framework, '')})"


def parse_frameworks(text: str | None) -> tuple[str, ...] | None:
    """Parse ``--frameworks torch,numpy``; ``tf`` stands for tf1 and tf2. ``None`` means all."""
    if text is None:
        return None
    chosen: list[str] = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        names: Iterable[str] = ("tf1", "tf2") if item in ("tf", "tensorflow") else (item,)
        for name in names:
            if name not in FRAMEWORKS:
                raise ParityError(
                    f"--frameworks: unknown framework {item!r}; expected some of {', '.join(FRAMEWORKS)} (or tf for both TF ports)"
                )
            if name not in chosen:
                chosen.append(name)
    if not chosen:
        raise ParityError("--frameworks: name at least one framework, e.g. --frameworks torch,numpy")
    return tuple(chosen)


# -- threads ------------------------------------------------------------------------------------------------
#: numpy's BLAS (OpenBLAS) threads in every process that runs ports (this module is imported by the port
#: boundary): ``PARITY_BLAS_THREADS``, default 1. The numpy oracle's matmuls are small; with a thread per
#: core, OpenBLAS's threads spin against the frameworks' own and the other workers' on a shared machine.
#: Measured (2 loaded cores, the seed 002 MLP oracle, 20 steps): float64 0.27 s CPU at 1 thread, 1.76 s at 2.
BLAS_THREADS_ENV = "PARITY_BLAS_THREADS"


def blas_threads() -> int | None:
    """The BLAS threads parity sets: ``PARITY_BLAS_THREADS`` (default 1); None where the user set
    ``OPENBLAS_NUM_THREADS`` themselves and not ``PARITY_BLAS_THREADS`` (theirs stands), or asked for 0."""
    import os

    text = os.environ.get("PARITY_BLAS_THREADS")
    if text is None and "OPENBLAS_NUM_THREADS" in os.environ and not _SET:
        return None
    try:
        n = int(text) if text not in (None, "") else 1
    except ValueError:
        raise ParityError(f"PARITY_BLAS_THREADS must be a number of threads, not {text!r}") from None
    return n if n > 0 else None


def limit_blas_threads() -> int | None:
    """Set numpy's BLAS threads (:func:`blas_threads`) in this process and the processes it starts (workers,
    isolated ports: ``OPENBLAS_NUM_THREADS`` in the environment, read when they load numpy); numpy already
    loaded here is limited at run time through threadpoolctl where it is installed. Returns the number set."""
    import os
    import sys

    n = blas_threads()
    if n is None:
        return None
    os.environ["OPENBLAS_NUM_THREADS"] = str(n)
    _SET.append(n)
    if "numpy" in sys.modules and _installed("threadpoolctl"):
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(n, user_api="blas")
        except Exception:  # noqa: BLE001 - a speed setting: never a reason for a run to fail
            pass
    return n


_SET: list[int] = []
try:
    limit_blas_threads()
except ParityError:  # a PARITY_BLAS_THREADS that is not a number: left to the library's default here
    pass
