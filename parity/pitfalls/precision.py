"""The measured first-name precision (written by ``python -m parity.tools.pitfall_matrix --write``).

docs/pitfalls.md quotes it; tests/test_pitfalls.py re-measures PRECISION_NOTE and checks it is
current (BEYOND_NOTE: ``--beyond``, the slow test).
"""

PRECISION_NOTE = "Measured by `python -m parity.tools.pitfall_matrix` over the catalogue's 57 wrong ports in float32 and float64 (113 runs): a first name was given in 113/113 runs and was the right one in 113/113 (precision of the first name 100%); no run was named first by another pitfall's signature. Further names proposed after the first: 4. The right ports drew no name at all. This measures the catalogue's own wrong ports; on mistakes written independently it is not measured here: there a signature is proposed only where the traces meet its preconditions, and an unmatched divergence is reported as unknown with its step, stage and tensor."

BEYOND_NOTE = "Beyond the catalogue (`python -m parity.tools.pitfall_matrix --beyond`: the seed cases' 12 wrong ports and 4 example programs with a planted mistake, written separately from the signatures; 23 diverging runs): a first name in 20, the right one in 20/20; 3/3 runs that no catalogued pitfall explains (a 1e-7 framework convention) answered unknown; 0 runs with a catalogued cause left unnamed."
