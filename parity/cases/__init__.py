"""Cases: ``case`` (plain descriptions of one training scenario and their registry), ``registry`` (the
built-in cases by name), ``params`` (initial parameters), ``data`` and ``datasets`` (the batches),
``catalog/`` (every built-in case).
"""
