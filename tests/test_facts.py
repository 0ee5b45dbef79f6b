"""Program facts (issue 23): read right from small torch / TF1 / Keras programs' own objects, lined up
side by side, and turned into the list of what a comparison does not cover; the facts that rule a
catalogue signature out. Unit level: no training step runs here."""

from __future__ import annotations

import os
import types

import numpy as np
import pytest

from parity.pitfalls.facts import allowed
from parity.program.facts import compare_facts, differing, init_family, not_covered
from parity.program.init import describe_init, formula

HERE = os.path.dirname(os.path.abspath(__file__))


def ex(*parts):
    return os.path.join(HERE, "..", "examples", *parts)


# -- torch ------------------------------------------------------------------------------------------------
def torch_facts(model, opt, loss, scheduler=None, train_step=None):
    torch = pytest.importorskip("torch")
    from torch_impl.capture.facts import facts

    pnames = {id(p): n for n, p in model.named_parameters()}
    prog = types.SimpleNamespace(t=torch, model=model, opt=opt, loss_fn=loss, scheduler=scheduler,
                                 train_step=train_step, _pnames=pnames)
    return facts(prog)


def test_torch_adam_rmsprop_adadelta_in_one_convention():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    m = nn.Linear(3, 2)
    f = torch_facts(m, torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.9, 0.99), eps=1e-7), nn.CrossEntropyLoss())
    assert (f["optimizer"], f["beta1"], f["beta2"], f["eps"], f["eps.form"]) == ("adam", 0.9, 0.99, 1e-7, "after bias correction")
    assert f["weight_decay"] == 0.0 and f["loss.reduction"] == "mean" and f["loss.on"] == "logits"
    f = torch_facts(m, torch.optim.RMSprop(m.parameters(), lr=0.01, alpha=0.95, eps=1e-6), nn.MSELoss(reduction="sum"))
    # torch's alpha is the decay of the mean square: parity's rho; it starts at 0 (TF1's RMSPropOptimizer: 1)
    assert (f["optimizer"], f["rho"], f["eps.form"], f["accumulator.initial"]) == ("rmsprop", 0.95, "outside sqrt", 0.0)
    assert f["loss.reduction"] == "sum"
    f = torch_facts(m, torch.optim.Adadelta(m.parameters()), nn.CrossEntropyLoss())
    assert (f["optimizer"], f["lr"], f["rho"], f["eps"]) == ("adadelta", 1.0, 0.9, 1e-6)  # torch's defaults


def test_torch_weight_decay_form_and_scope():
    torch = pytest.importorskip("torch")
    m = torch.nn.Linear(3, 2)
    f = torch_facts(m, torch.optim.AdamW(m.parameters(), weight_decay=0.01), torch.nn.CrossEntropyLoss())
    assert (f["weight_decay"], f["weight_decay.form"], f["weight_decay.scope"]) == (0.01, "decoupled", "all parameters")
    groups = [{"params": [m.weight], "weight_decay": 5e-4}, {"params": [m.bias], "weight_decay": 0.0}]
    f = torch_facts(m, torch.optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=True), torch.nn.CrossEntropyLoss())
    assert f["weight_decay.form"].startswith("coupled") and f["weight_decay.scope"] == "weight"
    assert (f["momentum"], f["nesterov"], f["dampening"]) == (0.9, True, 0.0)


def test_torch_layers_mode_and_loss_on_probabilities():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, momentum=0.01, eps=1e-3), nn.Dropout2d(0.3),
                          nn.Flatten(), nn.Dropout(0.5), nn.LazyLinear(3), nn.Softmax(dim=1))
    model.eval()
    f = torch_facts(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.NLLLoss())
    assert f["batchnorm"] == ["1: momentum 0.99, eps 0.001, moving variance unbiased"]  # torch 0.01 is TF's 0.99
    assert f["dropout"] == ["2: rate 0.3, channel", "4: rate 0.5, element"]
    assert f["mode"] == "eval"
    assert f["loss.on"].startswith("probabilities, no log")  # softmax + NLL: the log is missing

    def loss_fn(out, y):
        return torch.nn.functional.nll_loss(torch.softmax(out, 1), y, reduction="sum")

    f = torch_facts(nn.Linear(2, 2), torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1), loss_fn)
    assert f["loss.reduction"] == "sum" and f["loss.on"].startswith("probabilities, no log")


# -- TF1 and Keras: the example programs captured (their facts from graph and objects) -------------------------
def captured_facts(path):
    from parity.program.load import capture, load_program

    prog = capture(load_program(path), "float64")
    try:
        return prog.facts()
    finally:
        prog.close()


@pytest.mark.tf
def test_tf1_facts_from_the_graph():
    pytest.importorskip("tensorflow")
    f = captured_facts(ex("facts", "tf1_rmsprop_mlp.py"))
    assert (f["optimizer"], f["rho"], f["eps"], f["eps.form"], f["accumulator.initial"]) == (
        "rmsprop", 0.9, 1e-10, "inside sqrt", 1.0)
    assert f["loss.reduction"] == "sum" and f["loss.on"] == "logits"
    assert f["weight_decay"] == pytest.approx(1e-3, rel=1e-6)  # the float32 constant 1e-3 read back in float64
    assert f["weight_decay.scope"] == "w1" and f["weight_decay.form"].startswith("loss term")
    assert f["clip"] == "global norm 5" and f["dropout"] == ["dropout: rate 0.2, element"]  # clip_by_global_norm(g, 5.0)
    f = captured_facts(ex("adadelta", "tf1_adadelta_mlp.py"))
    assert (f["optimizer"], f["lr"], f["rho"], f["eps"], f["loss.reduction"]) == ("adadelta", 1.0, 0.95, 1e-6, "mean")


@pytest.mark.tf
def test_keras_facts_from_the_objects():
    pytest.importorskip("tensorflow")
    f = captured_facts(ex("facts", "keras_adam_convnet.py"))
    assert (f["optimizer"], f["beta2"], f["eps"], f["eps.form"]) == ("adam", 0.99, 1e-7, "hat (added to sqrt(v) before bias correction)")
    assert f["lr.schedule"].startswith("ExponentialDecay(") and "decay_rate=0.5" in f["lr.schedule"]
    assert f["clip"] == "norm per tensor 1"
    assert f["weight_decay"] == pytest.approx(2e-4) and f["weight_decay.scope"] == "dense.kernel"  # L2(1e-4): 2 l2 w
    assert f["dropout"] == ["drop: rate 0.1, channel"] and f["batchnorm"] == ["bn: momentum 0.9, eps 1e-05, moving variance biased"]  # Keras 3
    assert f["loss.on"].startswith("logits (the model's softmax")  # the same function as CE on logits, clipped


# -- the canonical model: side by side, initial distributions, what is not covered ------------------------------
def test_compare_facts_statuses():
    ref = {"optimizer": "adam", "eps": 1e-8, "eps.form": "hat (added to sqrt(v) before bias correction)",
           "dropout": ["fc/dropout: rate 0.25, element"], "lr.schedule": "PolynomialDecay", "framework": "tf1",
           "loss.reduction": "unknown"}
    port = {"optimizer": "adam", "eps": 1e-8, "eps.form": "after bias correction", "dropout": ["3: rate 0.25, element"],
            "lr.schedule": "LambdaLR", "framework": "torch", "loss.reduction": "mean"}
    rows = {r.key: r.status for r in compare_facts(ref, port)}
    assert rows == {"optimizer": "same", "eps": "same", "eps.form": "differs", "dropout": "same", "lr.schedule": "same",
                    "framework": "info", "loss.reduction": "one side"}
    assert differing(compare_facts(ref, port)) == {"eps.form": (ref["eps.form"], port["eps.form"])}


def test_init_family_names_the_distribution():
    rng = np.random.default_rng(0)
    n = 20000
    assert init_family(rng.uniform(-0.05, 0.05, n))["family"] == "uniform"
    assert init_family(rng.normal(0, 0.1, n))["family"] == "normal"
    t = rng.normal(0, 0.1, 3 * n)
    assert init_family(t[np.abs(t) <= 0.2][:n])["family"] == "truncated normal"
    assert init_family(np.full(10, 0.1)) == {"family": "constant", "value": 0.1}


def test_not_covered_lists_init_data_and_schedule():
    facts = {"reference": {}, "port": {},
             "init": [{"reference": "w1", "port": "0.weight", "reference_init": "truncated normal(mean 0, std 0.1)",
                       "port_init": "uniform(+-0.2)", "differs": True}],
             "data": {"reference": {"x": {"shape": [32, 20], "dtype": "float64", "min": 0.0, "max": 1.0, "mean": 0.5, "std": 0.29}},
                      "port": {"x": {"shape": [16, 20], "dtype": "float64", "min": -1.7, "max": 1.7, "mean": 0.0, "std": 1.0}}}}
    lines = not_covered(facts)
    assert any(line.startswith("init-defaults: initialiser of w1 / 0.weight: truncated normal") for line in lines)
    assert "batch size of its own data (x): 32 vs 16" in lines
    assert any(line.startswith("scale of its own data (x)") for line in lines)
    assert any(line.startswith("schedule length") for line in lines)
    same = dict(facts, init=[dict(facts["init"][0], differs=False)], data={"reference": facts["data"]["reference"],
                                                                            "port": facts["data"]["reference"]})
    assert not any(line.startswith(("init-defaults", "batch size", "scale")) for line in not_covered(same))


def test_facts_rule_out_signatures_of_another_optimizer_or_matching_settings():
    adadelta = {"reference": {"optimizer": "adadelta"}, "port": {"optimizer": "adadelta"}}
    assert not allowed("adam-epsilon", adadelta)[0]
    assert allowed("adam-epsilon", {"reference": {"optimizer": "adam"}, "port": {"optimizer": "adam"}})[0]
    rates = {"reference": {"dropout": ["d: rate 0.25, element"]}, "port": {"dropout": ["2: rate 0.25, channel"]}}
    assert not allowed("dropout-keep-prob", rates)[0]
    eval_torch = {"reference": {"mode": "train", "framework": "tf2"}, "port": {"mode": "eval", "framework": "torch"}}
    assert allowed("torch-eval-mode", eval_torch)[0] and not allowed("learning-phase", eval_torch)[0]
    assert allowed("adam-epsilon", None)[0]  # no facts: the catalogue alone, as before


def test_init_formula_names_torch_and_keras_defaults():
    rng = np.random.default_rng(1)
    fan_in, fan_out = 300, 100
    torch_default = init_family(rng.uniform(-1, 1, (fan_in, fan_out)) / np.sqrt(fan_in))
    assert formula(torch_default, (fan_in, fan_out)).startswith("torch's default U(+-1/sqrt(fan_in))")
    glorot = init_family(rng.uniform(-1, 1, (fan_in, fan_out)) * np.sqrt(6 / (fan_in + fan_out)))
    assert formula(glorot, (fan_in, fan_out)).startswith("glorot_uniform")
    conv = init_family(rng.normal(0, np.sqrt(2 / (3 * 3 * 8)), (3, 3, 8, 16)))  # He normal: fan_in 3*3*8
    assert formula(conv, (3, 3, 8, 16)).startswith("he_normal")
    assert formula(init_family(rng.normal(0, 1.0, (fan_in, fan_out))), (fan_in, fan_out)) is None  # N(0, 1): none
    assert describe_init(torch_default, (fan_in, fan_out)).startswith("uniform(+-0.0577) = torch's default")


def test_torch_elementwise_clamp_of_grads_is_a_clip_by_value():
    torch = pytest.importorskip("torch")
    m = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(m.parameters(), lr=1.0)

    def train_step(batch):  # corpus 01 before its fix: each gradient element clamped in place
        opt.zero_grad()
        m(batch["x"]).sum().backward()
        for p in m.parameters():
            p.grad.data.clamp_(-5.0, 5.0)
        opt.step()

    f = torch_facts(m, opt, None, train_step=train_step)
    assert f["clip"] == "value 5.0" and "element-wise" in f["clip.note"], f


def test_torch_log_softmax_in_forward_then_nll_is_cross_entropy_on_logits():
    # corpus 06: a model whose own forward returns F.log_softmax(self.fc(x)) trained with F.nll_loss is cross-entropy on
    # logits, as TF's softmax_cross_entropy_with_logits (the facts must not differ); with F.softmax it is NLL without a log
    torch = pytest.importorskip("torch")
    nn, F = torch.nn, torch.nn.functional

    class LogNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)

        def forward(self, x):
            return F.log_softmax(self.fc(x), dim=1)

    class ProbNet(LogNet):
        def forward(self, x):
            return F.softmax(self.fc(x), dim=1)

    class AssignedNet(LogNet):
        def forward(self, x):
            output = self.fc(x)
            output = F.log_softmax(output, dim=1)
            return output

    def nll(out, y):
        return F.nll_loss(out, y)

    m = LogNet()
    f = torch_facts(m, torch.optim.SGD(m.parameters(), lr=0.1), nll)
    assert f["loss"] == "softmax cross-entropy" and f["loss.on"].startswith("logits")
    tf_side = {"loss": "softmax cross-entropy", "loss.on": "logits", "loss.reduction": "mean"}
    assert not {"loss", "loss.on"} & set(differing(compare_facts(tf_side, f)))
    a = AssignedNet()  # corpus 06: the returned name's last assignment is the log_softmax
    assert torch_facts(a, torch.optim.SGD(a.parameters(), lr=0.1), nll)["loss.on"].startswith("logits (log_softmax")
    f = torch_facts(m, torch.optim.SGD(m.parameters(), lr=0.1), nn.CrossEntropyLoss())  # log_softmax is idempotent
    assert f["loss"] == "softmax cross-entropy" and f["loss.on"].startswith("logits")
    p = ProbNet()
    f = torch_facts(p, torch.optim.SGD(p.parameters(), lr=0.1), nll)
    assert f["loss.on"].startswith("probabilities, no log")
    f = torch_facts(p, torch.optim.SGD(p.parameters(), lr=0.1), nn.CrossEntropyLoss())
    assert f["loss.on"].startswith("softmax twice")
