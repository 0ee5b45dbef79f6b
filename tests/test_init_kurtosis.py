"""parity.program.init's excess kurtosis (the initial distribution's family, a program fact): the fourth power as
two squares is the ``** 4`` value to rounding, and where it lies near a threshold the ``** 4`` value is taken, so
the family said is the one ``** 4`` says."""

from __future__ import annotations

import numpy as np
import pytest

from parity.program import init


def _exact(x):
    x = np.asarray(x, np.float64).ravel()
    return float(np.mean(((x - x.mean()) / x.std()) ** 4)) - 3.0


def _draws():
    rng = np.random.default_rng(7)
    n = 3000
    t = rng.standard_normal(4 * n)
    return {"uniform": rng.uniform(-0.05, 0.05, n), "normal": rng.normal(0, 0.05, n),
            "truncated normal": t[np.abs(t) <= 2][:n] * 0.05, "uniform, small": rng.uniform(-1, 1, 64)}


@pytest.mark.parametrize("name", list(_draws()))
def test_the_kurtosis_is_the_fourth_powers(name):
    x = _draws()[name]
    fast = init._excess_kurtosis(x, float(x.mean()), float(x.std()))
    # two roundings per entry instead of pow's one, summed over <= 3000 entries ~1: measured <= 4e-16; 1e-12
    # is far below any gap to a threshold that matters (the guard below covers those)
    assert abs(fast - _exact(x)) <= 1e-12
    assert init.init_family(x)["family"] == name.split(",")[0]


def test_near_a_threshold_the_fourth_powers_value_decides(monkeypatch):
    x = _draws()["truncated normal"]  # its fast value differs from ** 4's (by 4.4e-16): the guard is seen
    z = (x - x.mean()) / x.std()
    fast = float(np.mean((z * z) * (z * z))) - 3.0
    monkeypatch.setattr(init, "_KURT_THRESHOLDS", (fast + 5e-10,))  # the fast value lies within 1e-9 of it
    got = init._excess_kurtosis(x, float(x.mean()), float(x.std()))
    assert fast != _exact(x) and got == _exact(x)
    monkeypatch.setattr(init, "_KURT_THRESHOLDS", (fast + 1e-3,))
    assert abs(init._excess_kurtosis(x, float(x.mean()), float(x.std())) - fast) <= 1e-15
