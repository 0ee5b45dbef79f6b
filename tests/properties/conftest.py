"""Hypothesis profiles for the property suite, chosen by HYPOTHESIS_PROFILE (default: ci).

* ``ci`` (``make test``): 12 examples per property (teeth: up to 20 to find one), derandomized
  (the same examples every run), no example database. The 4-port properties draw from
  :data:`parity.strategies.COVERING_STRUCTURES` (``_dense_support.STRUCTURES``), so the
  whole suite builds about twenty TF graphs / tf.functions instead of one per example.
* ``dev``: 5 examples, for editing.
* ``thorough`` (``make property-thorough``): 2000 examples per property, structures drawn
  freely (every widths / activation / optimizer / schedule / clip combination).

A failing property prints the falsifying configuration as a Python literal, the
``@reproduce_failure`` blob, and a one-line ``python -c`` replay command (see
``_dense_support.assert_parity``).
"""

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(
    deadline=None,  # the first example of a structure builds a graph (~0.3 s of CPU)
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
settings.register_profile("ci", max_examples=12, derandomize=True, database=None, **_COMMON)
settings.register_profile("dev", max_examples=5, **_COMMON)
settings.register_profile("thorough", max_examples=2000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

try:  # tiny tensors: torch's intra-op threads only add overhead (and contend with TF's)
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
