"""numpy ports: the third voice where the maths is small (closed-form gradients, by hand).

Same module and function names as ``tf_impl/v1`` and ``torch_impl``; the update rules
come from :mod:`parity.portkit.transforms`.
"""

import numpy as np


def framework_info() -> dict:
    """Return numpy's version; the oracle runs on the CPU."""
    return {"version": np.__version__, "device": "cpu"}
