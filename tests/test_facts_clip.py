"""The torch side's clip fact, read from the train_step's source (torch_impl/capture/facts.py): a clip
written by hand (the gradients scaled in place) is "unknown", never "none" (corpus 01's fixed port was
told `clip: none` while it clipped every gradient by a global norm of its own)."""

from __future__ import annotations

import importlib.util
import textwrap

import pytest

pytestmark = [pytest.mark.torch]

SRC = '''
def by_hand(batch):
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    norm = torch.sqrt(sum((g * g).sum() for g in grads))
    for g in grads:
        g.mul_(5.0 / torch.clamp(norm, min=5.0))
    optimizer.step()

def plain(batch):
    out = model(x); loss = crit(out, y); loss.backward(); optimizer.step(); x.mul_(2)

def library(batch):
    loss.backward(); torch.nn.utils.clip_grad_norm(model.parameters(), 0.25); opt.step()

def clamp(batch):
    loss.backward()
    for p in model.parameters():
        p.grad.data.clamp_(-5, 5)
'''


def _steps(tmp_path):
    f = tmp_path / "steps.py"
    f.write_text(textwrap.dedent(SRC))
    spec = importlib.util.spec_from_file_location("steps_for_clip_facts", f)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_clip_written_by_hand_is_unknown_not_none(tmp_path):
    from torch_impl.capture.facts import clip_facts

    m = _steps(tmp_path)
    assert clip_facts(m.by_hand)["clip"] == "unknown"
    assert clip_facts(m.plain)["clip"] == "none"  # an activation scaled in place is not a gradient
    assert clip_facts(m.library) == {"clip": "global norm 0.25"}
    assert clip_facts(m.clamp)["clip"] == "value 5"
    assert clip_facts(None) == {"clip": "none"}


NAMED = '''
MAX_GRAD_NORM = 5.0

class Args:
    clip = 0.25

args = Args()

def by_constant(batch):
    torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)

def by_flag(batch):
    torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)

def by_unknown(batch):
    torch.nn.utils.clip_grad_value_(model.parameters(), limit)
'''


def test_a_named_threshold_is_resolved_or_left_out(tmp_path):
    from torch_impl.capture.facts import clip_facts

    f = tmp_path / "named.py"
    f.write_text(textwrap.dedent(NAMED))
    spec = importlib.util.spec_from_file_location("named_clip_facts", f)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    assert clip_facts(m.by_constant) == {"clip": "global norm 5"}
    assert clip_facts(m.by_flag) == {"clip": "global norm 0.25"}
    assert clip_facts(m.by_unknown) == {"clip": "value"}  # never the name as if it were a value


def test_loss_kind_read_from_a_function_binary_forms_first(tmp_path):
    import torch

    from torch_impl.capture.facts import loss_facts

    f = tmp_path / "losses.py"
    f.write_text(textwrap.dedent('''
        import torch.nn.functional as F
        def bce_logits(out, y):
            return F.binary_cross_entropy_with_logits(out, y)
        def bce(out, y):
            return F.binary_cross_entropy(out, y)
        def ce(out, y):
            return F.cross_entropy(out, y)
        '''))
    spec = importlib.util.spec_from_file_location("loss_kinds", f)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    model = torch.nn.Linear(2, 1)
    assert loss_facts(m.bce_logits, model, torch)["loss"] == "sigmoid cross-entropy"
    assert loss_facts(m.bce, model, torch)["loss"] == "binary cross-entropy"
    assert loss_facts(m.ce, model, torch)["loss"] == "softmax cross-entropy"


def test_clip_facts_compare_thresholds_as_numbers():
    from parity.program.facts import _same

    assert _same("clip", "global norm 5", "global norm 5.0")  # TF's constant read back vs the port's source text
    assert _same("clip", "global norm", "global norm 5")  # a side that cannot read the threshold says the kind only
    assert not _same("clip", "global norm 5", "global norm 0.25")
    assert not _same("clip", "value 5", "global norm 5")
