"""`make bench`'s make-parity figure (parity/tools/benchparity.py): the timing wrapper and the printed table."""

from __future__ import annotations

import os

from parity.run.interpreter import python
from parity.tools import benchparity


def test_a_timed_run_reports_its_own_cpu_and_peak_not_the_callers():
    hog = "x = bytearray(200 << 20); import time; t = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    row = benchparity._timed(python(hog, watch=False), dict(os.environ))
    assert row["rc"] == 0
    assert row["cpu_s"] >= 0.3  # the child's busy loop, counted through the wrapper
    assert row["peak_mb"] >= 200  # the child's 200 MB, not the wrapper's ~10 MB
    small = benchparity._timed(python("pass", watch=False), dict(os.environ))
    assert small["peak_mb"] < 150  # a fresh wrapper: the previous run's peak is not carried over
    failed = benchparity._timed(python("import sys; print('boom', file=sys.stderr); sys.exit(3)", watch=False),
                                dict(os.environ))
    assert failed["rc"] == 3


def test_the_table_prints_both_modes_and_the_ratio(capsys):
    rows = [dict(mode=m, rc=0, wall_s=w, cpu_s=c, peak_mb=p, case_s=k, stderr=[])
            for (m, _, _), w, c, p, k in zip(benchparity.MODES, (70.0, 130.0), (150.0, 170.0), (1250, 1240), (66.0, 125.0))]
    benchparity.print_parity_cost(rows)
    out = capsys.readouterr().out
    assert "make parity (jobs, zygote)" in out and "one harness" in out
    assert "case time 0.53x, CPU 0.88x" in out and "60 s" in out
