"""Names from facts at the regularization stage (docs/stages.md): a weight-decay fact that differs explains a
first divergence in the regularization term, where a coupled decay and a decoupled one first part (AdamW vs
Adam(weight_decay): before, the stage was not among the weight-decay facts' stages and the name was unknown)."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = [pytest.mark.torch]

EQ = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "equivalence")


def test_adamw_against_coupled_decay_is_named_at_regularization(tmp_path, monkeypatch):
    from parity.cli.main import main

    monkeypatch.setenv("PARITY_WORKERS", "0")
    out = tmp_path / "r.json"
    code = main(["diff", os.path.join(EQ, "torch_adamw.py"), os.path.join(EQ, "torch_adam_wd.py"), "--steps", "2",
                 "--dtype", "float64", "--json", str(out)])
    assert code == 1
    c = json.loads(out.read_text())["cases"][0]["dtypes"][0]["comparisons"][0]
    assert c["diagnosis"]["pitfalls"][0]["pitfall"] == "adamw-decoupled"
