"""Pitfall cases: optimizers, schedules, clipping, constraints and the training loop.

Every pitfall of :mod:`parity.pitfalls` has two cases here or in a sibling
``pitfalls_*.py``: ``pitfall_<name>_right`` (reference vs the right port, must match) and
``pitfall_<name>_wrong`` (reference vs the wrong port, must diverge; ``options["pitfall"]``
names the mistake the port makes). Each is tiny: a few steps of a [16 x 5] batch.
"""

from __future__ import annotations

import numpy as np

from parity.cases.case import Case, Cost, Data, Init, register
from parity.cases.data import register_data

__all__ = ["pitfall_pair", "case_name"]


def case_name(pitfall: str, side: str) -> str:
    """Return the registered case name of a pitfall's ``side`` ("right" or "wrong")."""
    return f"pitfall_{pitfall.replace('-', '_')}_{side}"


@register_data("pitfall")
def _pitfall_batches(case, rng: np.random.Generator, *, arrays, fixed=False):
    """Draw the named arrays of a pitfall case (``normal``, ``uniform``, ``onehot``, ``ids``, ``per_step``), per step or once.

    ``per_step``: ``{"kind": "per_step", "values": [...]}`` feeds ``values[step]`` (a scalar) at each step.
    """

    def draw(step=0):
        out = {}
        for key, spec in arrays.items():
            kind = spec["kind"]
            if kind == "normal":
                out[key] = rng.normal(spec.get("mean", 0.0), spec.get("std", 1.0), size=tuple(spec["shape"]))
            elif kind == "uniform":
                out[key] = rng.uniform(spec.get("low", 0.0), spec.get("high", 1.0), size=tuple(spec["shape"]))
            elif kind == "onehot":
                labels = rng.integers(0, spec["classes"], size=spec["n"])
                out[key] = np.eye(spec["classes"])[labels]
            elif kind == "ids":  # integer ids in [0, high), fed as floats; ``include`` first (a padding id)
                ids = rng.integers(0, spec["high"], size=tuple(spec["shape"])).astype(float)
                ids.flat[: len(spec.get("include", ()))] = spec.get("include", ())
                out[key] = ids
            elif kind == "per_step":
                out[key] = np.asarray(spec["values"][step % len(spec["values"])], float)
            else:
                raise ValueError(f"unknown array kind {kind!r} in case {case.name}")
        return out

    if fixed:
        batch = draw()
        return [dict(batch) for _ in range(case.steps)]
    return [draw(k) for k in range(case.steps)]


def pitfall_pair(
    pitfall: str,
    *,
    module: str,
    title: str,
    reference: str,
    params: dict,
    arrays: dict,
    steps: int,
    options: dict,
    right: str = "torch",
    wrong: str = "torch:wrong",
    cost: Cost = Cost(),
    fixed: bool = False,
    seed: int = 0,
    wrong_dtypes: tuple[str, ...] | None = None,
    variant: str | None = None,
) -> tuple[Case, Case]:
    """Register the right and wrong cases of one pitfall; return them.

    ``wrong_dtypes``: where the mistake exists in some dtypes only (TF32: float32), the wrong
    case runs in those; the right case always runs in every dtype. ``variant``: a second form of
    the same mistake, its pair named ``pitfall_<name>_<variant>_right`` / ``_wrong`` (run by its
    own tests, not in the catalogue's one pair per pitfall).
    """
    data = Data("pitfall", {"arrays": arrays, "fixed": fixed})
    common = dict(module=module, params=params, data=data, steps=steps, seed=seed, cost=cost)
    right_case = register(
        Case(
            name=case_name(f"{pitfall}-{variant}" if variant else pitfall, "right"),
            title=f"{title}: right port",
            ports=(reference, right),
            options=dict(options, scenario=options.get("scenario", pitfall)),
            expect="match",
            tags=("pitfall", "pitfall-right"),
            **common,
        )
    )
    wrong_case = register(
        Case(
            name=case_name(f"{pitfall}-{variant}" if variant else pitfall, "wrong"),
            title=f"{title}: wrong port",
            ports=(reference, wrong),
            options=dict(options, scenario=options.get("scenario", pitfall), pitfall=pitfall),
            expect="diverge",
            tags=("pitfall", "pitfall-wrong"),
            **common,
            **({"dtypes": tuple(wrong_dtypes)} if wrong_dtypes else {}),
        )
    )
    return right_case, wrong_case


# -- optimizers: y = (X W1) W2, MSE --------------------------------------------------------
_W = {
    "W1": Init((5, 4), "random_normal", {"stddev": 0.5}),
    "W2": Init((4, 1), "random_normal", {"stddev": 0.5}),
}
_XT = {"X": {"kind": "normal", "shape": (16, 5)}, "T": {"kind": "normal", "shape": (16, 1)}}
# float32 model: two matmuls (depth 2), reductions over 5 inputs and a 16-row batch mean.
_COST = Cost(depth=2, reduction=16)


def _optim(pitfall, title, steps=3, reference="tf1", params=_W, **options):
    return pitfall_pair(
        pitfall, module="pitfalls.optim", title=title, reference=reference, params=params, arrays=_XT,
        steps=steps, options=options, cost=_COST,
    )


# Hyper-parameters exactly representable in float32 (powers of two, 1 - 2**-10...): TF1
# optimizers and schedules convert them to float32 tensors and cast to the variable's dtype,
# so 0.9 becomes 0.899999976 in a float64 graph (beta2 = 0.999 alone moves Adam's v by
# 1.3e-5 relative), and TF1 Adam keeps its beta powers in float32 variables even for
# float64 weights (beta2**3 must be exact in float32: 1 - 2**-8, 3 steps). Exact values
# keep the float64 comparison about the pitfall only.
_optim(
    "sgd-momentum-lr-change", "Keras SGD(momentum) with a learning-rate drop after step 1",
    steps=4, reference="tf2", optimizer="momentum", momentum=0.75, keras_momentum=True, lr=0.125,
    schedule={"kind": "piecewise", "boundaries": (1,), "values": (0.125, 0.03125)},
)
_optim("sgd-dampening", "TF1 MomentumOptimizer(0.75) vs SGD dampening", optimizer="momentum", momentum=0.75, lr=0.125)
_optim("nesterov", "TF1 MomentumOptimizer(use_nesterov=True)", optimizer="momentum", momentum=0.75, nesterov=True, lr=0.125)
# Small gradients (loss x 1e-5) make sqrt(v) comparable to epsilon: the regime where the
# placement of epsilon shows (PITFALLS P09: 8% of the update).
_optim("adam-epsilon", "TF1 AdamOptimizer with O(1e-5) gradients", optimizer="adam", lr=0.0625, beta1=0.875, beta2=1 - 2**-8, epsilon=2**-27, loss_scale=1e-5)
_optim("rmsprop-init", "TF1 RMSPropOptimizer (mean square starts at 1)", optimizer="rmsprop", lr=0.0625, decay=0.875, epsilon=1e-10)
_optim("adagrad-init", "TF1 AdagradOptimizer(initial_accumulator_value=0.1)", optimizer="adagrad", lr=0.125, initial_accumulator=0.1)
_optim(
    "lr-schedule-end", "TF1 polynomial_decay(end_learning_rate=2**-7) over 3 steps",
    steps=5, optimizer="sgd", lr=0.125, schedule={"kind": "polynomial", "decay_steps": 3, "end": 2**-7},
)
_optim(
    "lr-off-by-one", "TF1 polynomial_decay evaluated at global_step before its increment",
    steps=4, optimizer="sgd", lr=0.125, schedule={"kind": "polynomial", "decay_steps": 3, "end": 2**-7},
)
_optim("clip-per-tensor", "TF1 clip_by_global_norm(0.5)", optimizer="sgd", lr=0.125, clip={"kind": "global", "norm": 0.5})
_optim(
    "max-norm-axis", "max-norm 1.0 on W1's output units (clip_by_norm axes=[0]) after each update",
    params={"W1": Init((5, 4), "random_normal", {"stddev": 1.0}), "W2": _W["W2"]},
    optimizer="sgd", lr=0.125, max_norm={"param": "W1", "radius": 1.0},
)
_optim(
    "max-norm-timing", "max-norm 1.0 applied after the update, not before",
    params={"W1": Init((5, 4), "random_normal", {"stddev": 1.0}), "W2": _W["W2"]},
    optimizer="sgd", lr=0.125, max_norm={"param": "W1", "radius": 1.0},
)
_optim(
    "max-norm-missing", "max-norm 1.0 on W1 (clip_by_norm axes=[0]) after each update, left out of the port",
    steps=3, params={"W1": Init((5, 4), "random_normal", {"stddev": 1.0}), "W2": _W["W2"]},
    optimizer="sgd", lr=0.125, max_norm={"param": "W1", "radius": 1.0},
)
_optim("trainable-var-list", "TF1 minimize(var_list=[W2]): W1 frozen", optimizer="sgd", lr=0.125, var_list=("W2",))
_optim("zero-grad", "fresh gradients every step (TF1 compute_gradients)", optimizer="sgd", lr=0.125)
_optim("init-defaults", "weights copied from the reference, not left at the framework's init", optimizer="sgd", lr=0.125)
