"""Which frameworks are installed, without importing them, and how to install the missing ones.

``parity run`` / ``check`` leave out the ports of a framework that is not installed (one
note with the install command; those ports are listed as "not run", never as passing), and
``--frameworks torch,numpy`` leaves out the others by choice.
"""

from __future__ import annotations

import importlib.util
from typing import Iterable

from .cases import FRAMEWORKS
from .errors import ParityError

__all__ = ["PACKAGES", "INSTALL", "available", "missing_reason", "parse_frameworks"]

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
