"""Weight-decay scopes are compared through the variable mapping: each program names its own parameters
(Keras ``conv2d.kernel`` vs torch ``conv1.weight``), so equal scopes written in two namings are the same
fact, and a scope that truly differs still differs, with the parameters only one side decays (corpus 05's
fixed ResNet port showed a false ``! weight_decay.scope`` and a wrong ``weight-decay-scope`` name)."""

from __future__ import annotations

from types import SimpleNamespace as NS

from parity.program.facts import _scope_through_mapping, compare_facts

M = NS(params=[NS(reference="conv2d/kernel", port="conv1.weight"), NS(reference="conv2d_1/kernel", port="layer1.0.conv1.weight"),
               NS(reference="dense/bias", port="fc.bias")])


def _row(ref, port):
    mapped = _scope_through_mapping(ref, port, M)
    facts_p = {"weight_decay.scope": port, **({"weight_decay.scope.mapped": mapped} if mapped else {})}
    (row,) = [r for r in compare_facts({"weight_decay.scope": ref}, facts_p) if r.key == "weight_decay.scope"]
    return mapped, row.status


def test_the_same_parameters_named_two_ways_are_the_same_scope():
    mapped, status = _row("conv2d.kernel, conv2d_1.kernel", "layer1.0.conv1.weight, conv1.weight")
    assert mapped.startswith("the same 2") and status == "same"


def test_all_parameters_equals_the_full_list():
    mapped, status = _row("all parameters", "conv1.weight, layer1.0.conv1.weight, fc.bias")
    assert status == "same", mapped


def test_a_scope_that_differs_still_differs_and_says_where():
    mapped, status = _row("conv2d.kernel, conv2d_1.kernel", "all parameters")
    assert status == "differs" and "only the port decays dense/bias" in mapped


def test_an_unmapped_name_leaves_the_plain_comparison():
    mapped, status = _row("conv2d.kernel", "some.other.weight")
    assert mapped is None and status == "differs"
