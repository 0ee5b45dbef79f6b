"""TF2 / Keras 3 reference ports of the pitfall catalogue, where the pitfall is Keras's.

Mirrors ``torch_impl/pitfalls/<family>.py``.
"""
