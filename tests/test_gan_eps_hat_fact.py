"""A torch GAN port that sets Adam's eps every step in a helper its train_step calls (TF1's epsilon hat:
``hat_step(opt)`` in corpus 02's port) states no epsilon form: the fact reader reads the helper too (W6: it
said "after bias correction" against TF's "hat" while the port computed TF's form)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def hat_step(opt):  # a module-level helper, as corpus 02's glue writes it
    st = opt.state.get(opt.param_groups[0]["params"][0], {})
    for g in opt.param_groups:
        g["eps"] = 1e-8 / (1 - g["betas"][1] ** (int(st["step"]) + 1 if "step" in st else 1)) ** 0.5
    opt.step()


def _program(helper: bool):
    def parity_program():
        torch.manual_seed(0)
        net = torch.nn.Linear(3, 1)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)

        def train_step(batch):
            opt.zero_grad()
            loss = ((net(batch["x"]) - batch["y"]) ** 2).mean()
            loss.backward()
            hat_step(opt)
            return loss

        def plain_step(batch):
            opt.zero_grad()
            loss = ((net(batch["x"]) - batch["y"]) ** 2).mean()
            loss.backward()
            opt.step()
            return loss
        return {"model": net, "optimizer": opt, "train_step": train_step if helper else plain_step}
    return parity_program


@pytest.mark.parametrize("helper", [True, False])
def test_eps_set_in_a_helper_of_the_train_step_leaves_the_form_unstated(helper):
    from torch_impl.capture import capture

    prog = capture(_program(helper), dtype="float64")
    try:
        facts = prog.facts()
    finally:
        getattr(prog, "close", lambda: None)()
    if helper:
        assert facts["eps.form"] == "unknown" and "sets eps every step" in facts["eps.note"]
    else:  # no code of its own sets eps: the class's form
        assert facts["eps.form"] == "after bias correction" and "eps.note" not in facts
