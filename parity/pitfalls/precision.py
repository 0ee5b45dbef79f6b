"""The measured first-name precision (written by ``python -m parity.pitfalls.matrix --write``).

docs/pitfalls.md quotes it; tests/test_pitfalls_matrix.py re-measures the matrix and checks it.
"""

PRECISION_NOTE = "Not measured yet: run `python -m parity.pitfalls.matrix --write`."
