"""parity: run TensorFlow and PyTorch implementations side by side and compare every step.

This package speaks numpy only: TensorFlow and PyTorch are imported by the ports
(``tf_impl/``, ``torch_impl/``), lazily, when a case runs.
"""

from ._version import __version__  # noqa: E402,F401

from .cases import Case, Cost, Data, Init, all_cases, get_case, register  # noqa: E402
from .compare import Comparison, assert_match, compare  # noqa: E402
from .errors import ParityError, PortError  # noqa: E402
from .programs import compare_programs  # noqa: E402  (parity diff's Python entry point)
from .trace import STAGES, Trace, load, save  # noqa: E402

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
