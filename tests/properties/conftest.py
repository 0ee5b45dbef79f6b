"""Hypothesis profiles for the property suite, chosen by HYPOTHESIS_PROFILE (default: ci).

* ``ci``: 10 examples per property (the teeth search 20), derandomized (the same examples every run), no
  example database: bounded so the property suite stays around three minutes on 2 cores.
* ``dev``: fewer examples, for editing.
* ``thorough``: ``make property-thorough``, at least 2000 examples per property.

Every profile prints the falsifying configuration as a Python literal, the
``@reproduce_failure`` blob, and the test prints a one-line replay command.
"""

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(
    deadline=None,  # the first example of a structure builds a graph (~1 s)
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
settings.register_profile("ci", max_examples=10, derandomize=True, database=None, **_COMMON)
settings.register_profile("dev", max_examples=5, **_COMMON)
settings.register_profile("thorough", max_examples=2000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

try:  # tiny tensors: torch's intra-op threads only add overhead (and contend with TF's)
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass

