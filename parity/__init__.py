"""parity: run TensorFlow and PyTorch implementations side by side and compare every step.

This package speaks numpy only: TensorFlow and PyTorch are imported by the ports
(``tf_impl/``, ``torch_impl/``), lazily, when a case runs.

The public names below are imported on first use (PEP 562): ``import parity`` imports nothing
else, so ``python -m parity`` reaches ``parity/__main__.py``, which drops the working directory
from ``sys.path``, before numpy is imported (a ``numpy.py`` in the working directory never runs).
"""

from parity._version import __version__  # noqa: F401

#: public name -> the module that defines it
_PUBLIC = {
    "Case": "parity.cases.case",
    "Cost": "parity.cases.case",
    "Data": "parity.cases.case",
    "Init": "parity.cases.case",
    "register": "parity.cases.case",
    "get_case": "parity.cases.registry",
    "all_cases": "parity.cases.registry",
    "compare": "parity.comparison.comparator",
    "compare_programs": "parity.program.prepare",  # parity diff's Python entry point
    "assert_match": "parity.comparison.comparator",
    "Comparison": "parity.comparison.comparator",
    "ParityError": "parity.errors",
    "PortError": "parity.errors",
    "STAGES": "parity.trace.memory",
    "Trace": "parity.trace.memory",
    "save": "parity.trace.memory",
    "load": "parity.trace.memory",
}

__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'parity' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__():
    return sorted({*globals(), *_PUBLIC})
