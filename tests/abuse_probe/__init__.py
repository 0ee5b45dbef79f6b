"""The abuse probe (issue 22): the command line's contract under bad input, faults, signals and load.

``cases.py`` is the table (one :class:`~tests.abuse_probe.cases.Probe` per case: its command, the
files it is given, the exit codes the contract allows and any further check), ``run.py`` runs it
(``python -m tests.abuse_probe.run``), ``tests/test_abuse_probe.py`` runs it under pytest.
"""
