"""What every port and capture adapter implements and may use: ``contract`` (the protocols), ``program``
(the capture contract's records), ``resume``, ``layout``, ``variants``, ``transforms``.

``tf_impl/`` and ``torch_impl/`` import only this package, ``parity.cases``, ``parity.strategies``,
``parity.trace`` and ``parity.errors``.
"""
