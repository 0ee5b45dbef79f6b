"""parity: run TensorFlow and PyTorch implementations side by side and compare every step.

This package speaks numpy only: TensorFlow and PyTorch are imported by the ports
(``tf_impl/``, ``torch_impl/``), lazily, when a case runs.
"""

from parity._version import __version__  # noqa: E402,F401

from parity.cases.case import Case, Cost, Data, Init, register  # noqa: E402
from parity.cases.registry import all_cases, get_case  # noqa: E402
from parity.comparison.comparator import Comparison, assert_match, compare  # noqa: E402
from parity.errors import ParityError, PortError  # noqa: E402
from parity.program.prepare import compare_programs  # noqa: E402  (parity diff's Python entry point)
from parity.trace.memory import STAGES, Trace, load, save  # noqa: E402

__all__ = [
    "Case",
    "Cost",
    "Data",
    "Init",
    "register",
    "get_case",
    "all_cases",
    "compare",
    "compare_programs",
    "assert_match",
    "Comparison",
    "ParityError",
    "PortError",
    "STAGES",
    "Trace",
    "save",
    "load",
    "__version__",
]
