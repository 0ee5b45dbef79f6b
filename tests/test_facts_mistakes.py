"""The planted mistakes of examples/mistakes/ named from the programs' facts (issue 23): the name each
difference gets with the facts, and what the catalogue alone said. A wrong name is worse than none:
each test also checks the names that must not be given."""

from __future__ import annotations

import os

import pytest

from parity.pitfalls.diagnose import diagnose
from parity.program.facts import compare_facts, differing, not_covered, program_facts
from parity.program.prepare import compare_programs

HERE = os.path.dirname(os.path.abspath(__file__))


def ex(*parts):
    return os.path.join(HERE, "..", "examples", *parts)


def names(ref, port, steps, dtype="float64"):
    """(first divergence, names with the facts, names without, the facts) of one pair in one dtype."""
    r = compare_programs(ex(ref), ex(port), steps=steps, dtypes=(dtype,))
    facts = program_facts(r.program_run)
    facts = dict(facts, differs=differing(compare_facts(facts["reference"], facts["port"])))
    (c,) = [c for c in r.comparisons if c.dtype == dtype]
    assert not c.ok, "the planted mistake must make the pair diverge"
    after = diagnose(r.case, c, r.traces[dtype], facts)
    before = diagnose(r.case, c, r.traces[dtype])
    return c.first_divergence, [d.pitfall for d in after], [d.pitfall for d in before], facts, after


@pytest.mark.tf
def test_loss_summed_is_loss_reduction_with_the_batch_size_as_ratio():
    first, after, _, facts, diags = names("seed002/tf1_mlp.py", "mistakes/torch_mlp_loss_sum.py", 2)
    assert (first.step, first.stage) == (0, "loss")
    assert after[0] == "loss-reduction"
    assert "ratio port/reference 50" in diags[0].evidence  # the seed's batch of 50
    assert facts["differs"]["loss.reduction"] == ("mean", "sum")


@pytest.mark.tf
def test_weight_decay_added_is_named_weight_decay_not_its_form():
    first, after, before, facts, _ = names("seed002/tf1_mlp.py", "mistakes/torch_mlp_weight_decay.py", 2)
    assert after[0] == "weight-decay"
    # the reference has no decay: a pitfall about the L2 term's coefficient or scope is the wrong name
    assert not {"l2-loss-half", "decay-on-bias", "adamw-decoupled"} & set(after), after
    assert "l2-loss-half" in before  # what the catalogue alone said


@pytest.mark.tf
def test_eval_left_on_is_torch_eval_mode_and_not_tf_learning_phase():
    first, after, before, _, _ = names("seed003/keras_bn_convnet.py", "mistakes/torch_bn_convnet_eval.py", 1)
    assert (first.step, first.stage) == (0, "forward")
    assert after[0] == "torch-eval-mode" and "learning-phase" not in after, after


def test_adadelta_rho_is_named_from_its_facts_never_adam_epsilon():
    first, after, _, facts, diags = names("adadelta/torch_adadelta_mlp.py", "mistakes/torch_adadelta_rho.py", 2)
    assert (first.step, first.stage) == (0, "parameters")
    assert after == ["optimizer-rho"], after
    assert "each side matches its own" in diags[0].evidence  # Adadelta's first step recomputed with each rho
    assert facts["differs"] == {"rho": (0.95, 0.9)}


def test_zero_grad_keeps_its_name():
    first, after, before, _, _ = names("seed002/torch_mlp.py", "mistakes/torch_mlp_no_zero_grad.py", 3)
    assert (first.step, first.stage) == (1, "gradients")
    assert after[0] == "zero-grad" == before[0]


@pytest.mark.tf
def test_not_covered_lists_the_ports_own_init_and_data():
    r = compare_programs(ex("adadelta", "tf1_adadelta_mlp.py"), ex("adadelta", "torch_adadelta_mlp.py"), steps=1,
                         dtypes=("float64",))
    lines = not_covered(program_facts(r.program_run))
    assert any(line.startswith("init-defaults: initialiser of w1 / 0.weight: truncated normal") and "uniform" in line for line in lines)
    assert "batch size of its own data (x): 32 vs 16" in lines
    assert any(line.startswith("scale of its own data (x): [0.000") for line in lines)  # [0, 1) vs standardised


@pytest.mark.slow
@pytest.mark.tf
def test_adam_epsilon_placement_is_recomputed_and_betas_are_not_called_epsilon():
    _, after, _, _, diags = names("seed001/tf1_convnet.py", "mistakes/torch_convnet_adam_eps.py", 1)
    assert after[0] == "adam-epsilon" and "each side matches its own" in diags[0].evidence
    # the betas port rescales eps itself (its train_step): the placement is unknown, the betas differ
    _, after, _, facts, _ = names("seed001/tf1_convnet.py", "mistakes/torch_convnet_adam_betas.py", 1)
    assert after[0] == "adam-betas" and "adam-epsilon" not in after, after
    assert facts["differs"] == {"beta2": (0.999, 0.99)}


def test_diff_prints_facts_first_and_what_is_not_covered_last(capsys, tmp_path):
    from parity.cli.main import main

    out_json, out_html = tmp_path / "d.json", tmp_path / "d.html"
    rc = main(["diff", ex("adadelta", "torch_adadelta_mlp.py"), ex("mistakes", "torch_adadelta_rho.py"), "--steps", "2",
               "--dtype", "float64", "--quiet-mapping", "--json", str(out_json), "--html", str(out_html)])
    out = capsys.readouterr().out
    assert rc == 1
    facts_at, first_number = out.index("Program facts"), out.index("first divergence")
    assert facts_at < first_number and "  ! rho " in out[:first_number]
    assert out.index("DIVERGE") < out.index("What this comparison does not cover")
    assert "optimizer-rho: rho: reference 0.95 vs port 0.9" in out
    import json

    data = json.loads(out_json.read_text())
    assert {"fact": "rho", "reference": 0.95, "port": 0.9, "status": "differs"} in data["facts"]["rows"]
    assert data["facts"]["not_covered"][0].startswith("the comparison starts both programs from the reference's weights")
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(data, json.load(open(os.path.join(HERE, "..", "docs", "report-schema.json"))))
    page = out_html.read_text()
    assert "Program facts" in page and "What this comparison does not cover" in page


def test_dropout2d_is_dropout_kind_only_where_the_dropout_acts():
    first, after, before, facts, _ = names("facts/torch_dropout_convnet.py", "mistakes/torch_dropout2d.py", 1)
    assert (first.step, first.stage, first.name) == (0, "forward", "2")  # the dropout's own output
    assert after == ["dropout-kind"] and "dropout-keep-prob" not in after  # the rates match (0.25 both)
    # a divergence at the conv, before any dropout acts: the dropout fact is not its name (unknown instead)
    first, after, _, facts, _ = names("facts/torch_dropout_convnet.py", "mistakes/torch_conv_reflect_padding.py", 1)
    assert (first.stage, first.name) == ("forward", "0") and "dropout" in facts["differs"]
    assert after == [], after


@pytest.mark.tf
def test_own_init_pools_builds_and_names_both_formulas():
    r = compare_programs(ex("adadelta", "tf1_adadelta_mlp.py"), ex("adadelta", "torch_adadelta_mlp.py"), steps=1,
                         dtypes=("float64",))
    facts = program_facts(r.program_run, builds=3)
    w1 = next(i for i in facts["init"] if i["reference"] == "w1")
    # 3 builds x 320 entries: TF's truncated_normal(0.1) (std 0.088 after truncation at 2 sigma) vs torch's
    # Linear default U(+-1/sqrt(20)) = U(+-0.224), named as that formula from the canonical fans (20, 16)
    assert w1["differs"] and w1["reference_init"].startswith("truncated normal")
    assert "torch's default U(+-1/sqrt(fan_in))" in w1["port_init"]
    assert facts["builds"] == {"builds": 3, "seeded_itself": []}
    # the dropout convnet seeds itself (torch.manual_seed(0) at import): every build draws the same values
    r = compare_programs(ex("facts", "torch_dropout_convnet.py"), ex("facts", "torch_dropout_convnet.py"), steps=1,
                         dtypes=("float64",))
    facts = program_facts(r.program_run, builds=2)
    assert facts["builds"]["seeded_itself"] == ["reference", "port"]
    assert not any(i["differs"] for i in facts["init"])


def test_another_optimizer_class_is_named_first_with_its_rate():
    # corpus 06 (SGD vs Adadelta) and 05 (Adam vs SGD): the rate differs with the class; the class is named first,
    # each side's step-0 update recomputed with its own optimizer and facts (the numbers agree with both)
    first, after, _, facts, diags = names("adadelta/torch_adadelta_mlp.py", "mistakes/torch_adadelta_as_sgd.py", 2)
    assert (first.step, first.stage) == (0, "learning_rate")
    assert after == ["optimizer-class", "learning-rate"], after
    assert "each side matches its own" in diags[0].evidence
    assert facts["differs"] == {"optimizer": ("adadelta", "sgd"), "lr": (1.0, 0.1)}


def test_a_dropout_site_only_the_port_has_is_named_at_step_0():
    # corpus 06: the port's own dropout has no partner (parity drives it with a mask of its own): not in the reference's
    # call order, it explains a first divergence at step 0 (forward or loss) only
    first, after, before, facts, _ = names("adadelta/torch_adadelta_mlp.py", "mistakes/torch_dropout_extra.py", 2)
    assert (first.step, first.stage) == (0, "forward")
    assert after == ["dropout-site-missing"] and before == []
    assert facts["differs"] == {"dropout": ([], ["2: rate 0.25, element"])}
