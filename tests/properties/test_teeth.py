"""Teeth: the parity property falsifies each deliberately wrong dense port, and shrinks it.

For every catalogued pitfall a property covers, ``torch_impl/mistakes/dense.py`` has a
wrong port (the bug as people write it). Hypothesis searches, within the profile's example
budget, for a configuration where that port disagrees with the numpy oracle (TF1's
formulas), then shrinks it; the test prints the minimal configuration and checks it is
small and shows the pitfall's trigger (e.g. P07 needs a changing learning rate).
"""

import pytest
from hypothesis import find, settings

from parity.strategies import (
    clips,
    dense_configs,
    max_norms,
    network_shapes,
    normalize_config,
    optimizers,
)

from _dense_support import NO_EXPLAIN, divergences, replay_command

from parity.comparison.comparator import compare
from parity.pitfalls.diagnose import diagnose
from parity.run.runner import run_port
from parity.strategies import dense_case

pytestmark = [pytest.mark.torch]

SHAPES = network_shapes(max_depth=2, max_width=4)


def _depth(cfg):
    return len(cfg["widths"]) - 1


def _named(cfg, ports) -> list[str]:
    """The pitfalls the diagnosis names for a config, most likely first (float64)."""
    case = dense_case(cfg, ports=ports)
    a, b = (run_port(case, p, "float64") for p in ports)
    return [d.pitfall for d in diagnose(case, compare(a, b, cost=case.cost), [a, b])]


# (pitfall, variant, strategy, what the shrunk config must show)
TEETH = [
    ("P07", "wrong_momentum", dense_configs(max_steps=2, max_batch=4, shapes=SHAPES, optimizer=optimizers(names=("momentum",))),
     lambda c: c["schedule"]["kind"] != "constant" and c["steps"] >= 2),
    ("P08", "nesterov_toggled", dense_configs(max_steps=2, max_batch=4, shapes=SHAPES, optimizer=optimizers(names=("momentum",))),
     lambda c: c["optimizer"]["momentum"] > 0),
    ("P09", "adam_epsilon", dense_configs(max_steps=2, max_batch=4, shapes=SHAPES, optimizer=optimizers(names=("adam",))),
     lambda c: c["optimizer"]["name"] == "adam"),
    ("P11", "rmsprop_stock", dense_configs(max_steps=2, max_batch=4, shapes=SHAPES, optimizer=optimizers(names=("rmsprop",))),
     lambda c: c["optimizer"]["name"] == "rmsprop"),
    ("P12", "adagrad_accumulator", dense_configs(max_steps=2, max_batch=4, shapes=SHAPES, optimizer=optimizers(names=("adagrad",))),
     lambda c: c["optimizer"]["name"] == "adagrad"),
    ("P15", "schedule_off_by_one", dense_configs(max_steps=2, max_batch=4, shapes=SHAPES),
     lambda c: c["schedule"]["kind"] != "constant"),
    ("P19", "global_clip", dense_configs(max_steps=2, max_batch=4, shapes=SHAPES, clip=clips(kinds=("norm", "global_norm"), allow_none=False)),
     lambda c: c["clip"]["kind"] in ("norm", "global_norm")),
    ("P20", "maxnorm_axis", dense_configs(max_steps=2, max_batch=4, shapes=SHAPES, max_norm=max_norms()),
     lambda c: c["max_norm"] is not None),
    ("P21", "no_transpose", dense_configs(max_steps=2, max_batch=4, shapes=SHAPES),
     lambda c: any(a > 1 and b > 1 for a, b in zip(c["widths"], c["widths"][1:]))),
    ("P27", "wrong_reduction", dense_configs(max_steps=2, max_batch=4, shapes=SHAPES),
     lambda c: True),
    ("P36", "no_zero_grad", dense_configs(max_steps=2, max_batch=4, shapes=SHAPES),
     lambda c: c["steps"] >= 2),
]


# PITFALLS.md id -> the pitfall registry's name (parity explain NAME)
REGISTRY_NAMES = {
    "P07": "sgd-momentum-lr-change",
    "P08": "nesterov",
    "P09": "adam-epsilon",
    "P11": "rmsprop-init",
    "P12": "adagrad-init",
    "P15": "lr-off-by-one",
    "P19": "clip-per-tensor",
    "P20": "max-norm-axis",
    "P21": "dense-transpose",
    "P27": "loss-reduction",
    "P36": "zero-grad",
}


def test_every_covered_pitfall_is_in_the_registry():
    from parity.pitfalls import all_pitfalls

    registry = {p.name: p.pitfall_id for p in all_pitfalls()}
    for pid, name in REGISTRY_NAMES.items():
        assert registry.get(name) == pid, (pid, name)
    assert set(REGISTRY_NAMES) == {p for p, _, _, _ in TEETH}


@pytest.mark.parametrize("pitfall,variant,strategy,shows", TEETH, ids=[f"{REGISTRY_NAMES[p]}-{v}" for p, v, _, _ in TEETH])
def test_property_falsifies_wrong_port(pitfall, variant, strategy, shows):
    ports = ("numpy", f"torch:{variant}")
    # up to 20 examples to find one (each pitfall's trigger is common in its strategy), then
    # shrink; no explain phase (it re-runs the property hundreds of times, for a report we
    # do not print)
    budget = settings(settings.default, max_examples=max(settings.default.max_examples, 20), database=None, phases=NO_EXPLAIN)
    minimal = normalize_config(find(strategy, lambda cfg: bool(divergences(cfg, ports)), settings=budget))
    found = divergences(minimal, ports)
    print(f"\n{REGISTRY_NAMES[pitfall]} ({pitfall}) torch:{variant} falsified; minimal configuration:\n  {minimal!r}")
    print(f"  {found[0][0]}: {found[0][1]}")
    print("  replay: " + replay_command(minimal, ports, "float64"))
    assert found, "the shrunk configuration must still falsify the property"
    # the shrunk counterexample is named by its pitfall; where the smallest falsifying example
    # does not show the pitfall's pattern (P07 with momentum 0: only a NaN in the Keras-form
    # slot), the smallest example that is named is kept instead
    expected = REGISTRY_NAMES[pitfall]
    named = _named(minimal, ports)
    if named[:1] != [expected]:
        print(f"  named {named or 'unknown'} at that size; the smallest configuration named {expected}:")
        minimal = normalize_config(find(strategy, lambda cfg: _named(cfg, ports)[:1] == [expected], settings=budget))
        print(f"  {minimal!r}")
        named = _named(minimal, ports)
    print(f"  named: {', '.join(named)}")
    assert named[:1] == [expected], (named, minimal)
    assert shows(minimal), f"the minimal configuration does not show {pitfall}'s trigger: {minimal!r}"
    # shrinking reaches a small network and few steps
    assert _depth(minimal) <= 2 and max(minimal["widths"]) <= 4 and minimal["steps"] <= 2, minimal
