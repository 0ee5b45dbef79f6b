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



def test_pairs_against_another_checkout_run_its_own_parity(tmp_path):
    """`--against TREE`: the other checkout's own `parity` runs (a stand-in tree here, which its report tells
    apart), then this tree's; a folder that is no checkout is refused."""
    import pytest

    cli = tmp_path / "other" / "parity" / "cli"
    cli.mkdir(parents=True)
    (tmp_path / "other" / "parity" / "__init__.py").write_text("")
    (cli / "__init__.py").write_text("")
    (cli / "main.py").write_text(  # a checkout whose `parity run` reports 2 s of case time
        "import json, sys\n"
        "def main():\n"
        "    json.dump({'summary': {'wall_seconds': 2.0}}, open(sys.argv[sys.argv.index('--json') + 1], 'w'))\n"
        "    return 0\n")
    [(theirs, ours)] = benchparity.pairs_cost(str(tmp_path / "other"), 1,
                                              args=("run", "seed004_constant", "--dtype", "float64"))
    assert theirs["rc"] == 0 and theirs["case_s"] == 2.0  # the stand-in's own report, not this tree's
    assert ours["rc"] == 0 and 0 < ours["case_s"] != 2.0  # this tree's real run
    with pytest.raises(SystemExit, match="not a checkout of parity"):
        benchparity.pairs_cost(str(tmp_path), 1)
    with pytest.raises(SystemExit):
        benchparity.main(["--against", str(tmp_path / "other"), "--pairs", "0"])


def test_the_pairs_table_prints_each_ratio_and_their_mean_median_and_spread(capsys):
    def row(case, cpu):
        return dict(rc=0, wall_s=case + 3, cpu_s=cpu, peak_mb=1100, case_s=case, stderr=[])

    pairs = [(row(70.0, 130.0), row(63.0, 117.0)), (row(72.0, 132.0), row(72.0, 132.0)), (row(74.0, 130.0), row(74.0, 143.0))]
    benchparity.print_pairs(pairs, "../before")
    out = capsys.readouterr().out
    assert "against ../before" in out and " 0.900 " in out and " 1.000 " in out
    assert "mean 0.967, median 1.000, sd 0.058" in out and "CPU: mean 1.000, median 1.000" in out  # 117/130, 132/132, 143/130
    benchparity.print_pairs(pairs[:1], "../before")
    assert "one pair: no spread" in capsys.readouterr().out
