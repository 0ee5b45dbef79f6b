"""The pitfall catalogue: every wrong port is caught and named first, every right port is clean.

Each pitfall runs its wrong and right cases in float64 and float32 (tiny: a few steps of a
few-element network; the whole catalogue takes ~1 minute on this machine after the TF import).
"""

from __future__ import annotations

import pytest

from parity.cases.case import HEAVY_TAGS
from parity.cases.registry import get_case
from parity.pitfalls.diagnose import diagnose, localize, settings_check
from parity.errors import ParityError
from parity.pitfalls import all_pitfalls, explain, get_pitfall, render_markdown
from parity.tools.pitfall_check import format_catalogue, run_catalogue
from parity.tools.pitfall_matrix import confusion, format_matrix, precision_note
from parity.pitfalls.precision import PRECISION_NOTE
from parity.run.runner import run_case

PITFALLS = [p.name for p in all_pitfalls()]
# The data-parallel pitfalls start processes (DDP workers, TF in its own process): left out of
# the default catalogue (HEAVY_TAGS, parity/cases/case.py), run by name here, slow.
HEAVY = {p.name for p in all_pitfalls() if set(HEAVY_TAGS) & set(get_case(p.wrong_case).tags)}
DEFAULT = [n for n in PITFALLS if n not in HEAVY]
pytestmark = [pytest.mark.tf, pytest.mark.torch]


@pytest.fixture(scope="module")
def catalogue():
    """The whole catalogue, both dtypes, run once (~45 s): pitfall -> its results."""
    out = {}
    for r in run_catalogue(("float64", "float32")):
        out.setdefault(r.pitfall, []).append(r)
    return out


def test_registry_is_complete():
    assert len(PITFALLS) >= 25 and len(set(PITFALLS)) == len(PITFALLS)
    for p in all_pitfalls():
        assert p.name == p.name.lower() and " " not in p.name
        assert get_case(p.wrong_case).expect == "diverge" and get_case(p.right_case).expect == "match"
        assert p.pitfall_id.startswith("P") and p.tf_formula and p.torch_formula and p.fix


def test_unknown_name_suggests_close_ones():
    with pytest.raises(ParityError, match="bn-momentum"):
        get_pitfall("bn-momentun")


def test_explain_has_formulas_fix_and_signature():
    text = explain("adam-epsilon")
    assert "TensorFlow:" in text and "PyTorch:" in text and "Fix:" in text and "Signature:" in text


def test_docs_are_generated_from_the_registry():
    with open("docs/pitfalls.md") as f:
        assert f.read() == render_markdown(), "docs/pitfalls.md is stale: write parity.pitfalls.render_markdown() to it"


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow, pytest.mark.distributed]) if n in HEAVY else n
                                  for n in PITFALLS])
def test_pitfall_is_caught_named_first_and_right_port_clean(name, catalogue):
    results = catalogue[name] if name not in HEAVY else run_catalogue(("float64", "float32"), names=[name])
    # every pitfall shows in both dtypes but TF32, which exists in float32 only
    assert [r.dtype for r in results] == (["float32"] if name == "tf32-emulated" else ["float64", "float32"])
    for r in results:
        assert r.caught, f"{name} ({r.dtype}): the wrong port was not flagged"
        assert r.named_first, f"{name} ({r.dtype}): named {r.named or 'unknown'} first; divergence {r.first_divergence}"
        assert r.right_clean, f"{name} ({r.dtype}): the right port diverged, warned or was diagnosed"
    assert "named first" in format_catalogue(results)


def test_confusion_matrix_is_diagonal_and_the_docs_state_its_precision(catalogue):
    results = [r for rs in catalogue.values() for r in rs]
    cells = confusion(results)
    # every wrong port against every signature: named first by its own pitfall, by no other
    assert {w for w, n in cells if w != n} == set(), format_matrix(results)
    assert sum(cells.values()) == len(results) == 2 * len(DEFAULT) - 1  # TF32: float32 only
    assert "0/" not in format_matrix(results).split(";")[0]
    assert precision_note(results) == PRECISION_NOTE, "run: python -m parity.tools.pitfall_matrix --write"


def test_a_signature_is_not_proposed_without_its_preconditions(catalogue):
    # the BN, LayerNorm and dropout signatures need that structure in the traces: on the wrong
    # ports of the other families (no BN, no LayerNorm, no dropout) they never fire, first or not
    structural = {"bn-epsilon", "bn-momentum", "bn-running-var", "bn-update-ops", "learning-phase", "torch-eval-mode",
                  "layernorm-epsilon", "dropout-keep-prob", "dropout-eval-mode"}
    for name, rs in catalogue.items():
        for r in rs:
            if name not in structural:
                assert not set(r.named) & structural, (name, r.dtype, r.named)


def test_uncatalogued_divergence_is_localized_and_unknown():
    # relu -> tanh in one port: no pitfall describes it; it must be reported as unknown, not forced.
    base = get_case("pitfall_dense_transpose_right")
    case = base.replace(name="uncatalogued_activation", ports=("tf1", "torch:wrong"), expect="diverge",
                        options={"scenario": "mlp", "pitfall": "activation", "wrong_activation": "tanh"})
    result = run_case(case, dtypes=("float64",))
    cmp = result.comparisons[0]
    assert not cmp.ok
    first = cmp.first_divergence
    assert (first.step, first.stage) == (0, "forward")
    assert diagnose(case, cmp, result.traces["float64"]) == []
    assert localize(cmp).startswith("unknown: first divergence at step 0, forward")
    assert settings_check(case, result.traces["float64"]) == []


@pytest.mark.slow
def test_mistakes_beyond_the_catalogue_are_named_or_left_unknown():
    # the seed cases' wrong ports and the examples' planted mistakes were written apart from the
    # signatures: each is named by its own pitfall, or "unknown" where no catalogued pitfall explains it
    from parity.tools.pitfall_matrix import beyond, format_beyond

    rows = beyond()
    assert rows and all(first == (expected or "unknown") for _, _, expected, first in rows), format_beyond(rows)


def test_init_defaults_wrong_port_is_the_same_run_to_run():
    # torch seeds its generator at random per process: the wrong port's default init is drawn from the case's seed,
    # so the catalogue's figures repeat (the JSON report compared before/after a change), and the process's
    # generator is left as it was. Exact equality: the same draws, nothing rounded.
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    from torch_impl.pitfalls.optim import build

    case = get_case(get_pitfall("init-defaults").wrong_case)
    torch.manual_seed(1)
    first = build(case, "float64", "wrong").parameters()
    torch.manual_seed(2)
    state = torch.random.get_rng_state()
    second = build(case, "float64", "wrong").parameters()
    assert torch.equal(torch.random.get_rng_state(), state)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
