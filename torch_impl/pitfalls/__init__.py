"""PyTorch ports of the pitfall catalogue (parity/pitfalls.py), grouped by family.

Each module mirrors ``tf_impl/v1/pitfalls/<family>.py``. The default variant is the right
port (the fix applied); the ``wrong`` variant makes the mistake named by
``options["pitfall"]``, so the catalogue shows the harness catching and naming it.
"""
