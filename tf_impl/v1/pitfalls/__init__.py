"""TF1 reference ports of the pitfall catalogue (parity/pitfalls.py), grouped by family.

Each module mirrors ``torch_impl/pitfalls/<family>.py``. A case's ``options["scenario"]``
picks the network; the ``wrong`` variant (where the wrong side is TF code: UPDATE_OPS not
run, the learning phase not fed) reproduces the pitfall named by ``options["pitfall"]``.
"""
