"""What every port and capture adapter implements and may use: ``contract`` (the protocols), ``program``
(the records a capture adapter fills in), ``resume``, ``layout``, ``variants``, ``transforms``.

``tf_impl/`` and ``torch_impl/`` import from parity only this package, ``parity.cases`` (the case
types, the seed catalogue's layer names), ``parity.strategies``, ``parity.trace`` (the health
summaries) and ``parity.errors`` (``tests/test_imports.py`` checks it).
"""
