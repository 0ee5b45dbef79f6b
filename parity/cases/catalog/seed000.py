"""Seed 000: a 1-16-1 identity encoder trains; a 1-16-16-1 one with tiny init barely moves.

Init ``random_normal(0, 1e-3)`` (the seed) or Xavier + bias 0.1 (the answer's fix); loss
on element [0, 0] only; plain GD lr 1e-3; ``clip_by_value(-4.5, 4.5)`` through
compute/apply; 100 steps of one input in [-1, 1) (``make parity``'s size; the seed's 10000 steps are
``make parity-full``'s, the same runs longer: :mod:`parity.cases.catalog.full`).
"""

from __future__ import annotations

from parity.cases.case import Case, Cost, Data, Init, register

# 100 steps: the first 100 of the seed-size cases' 10000 (the same batches: ``make parity-full``); 200 until session
# 11, halved for make parity's time (issue 21: the four encoders were ~15 s of its ~125 s of CPU). The float32 figures
# are those of the first steps either way (docs/seeds/000.md, measured at both lengths).
STEPS = 100


def layer_names(n_hidden: int) -> list[tuple[str, str, str]]:
    """Return (kernel, bias, output) names per layer, as the seed names them.

    W, b, O (first layer); W1, b1, O1 (the middle layer of the 3-layer net); W2, b2, O2
    (the output layer). Every port of the encoder uses these canonical names.
    """
    if n_hidden not in (1, 2):
        raise ValueError(f"the seed-000 encoder has 1 or 2 hidden layers, not {n_hidden}")
    middle = [("W1", "b1", "O1")] if n_hidden == 2 else []
    return [("W", "b", "O")] + middle + [("W2", "b2", "O2")]


def _params(hidden: tuple[int, ...], init: str) -> dict[str, Init]:
    widths = (1,) + hidden + (1,)
    out = {}
    for (wn, bn, _), fan_in, fan_out in zip(layer_names(len(hidden)), widths[:-1], widths[1:]):
        if init == "tiny":
            out[wn] = Init((fan_in, fan_out), "random_normal", {"mean": 0.0, "stddev": 1e-3})
            out[bn] = Init((fan_out,), "random_normal", {"mean": 0.0, "stddev": 1e-3})
        else:
            out[wn] = Init((fan_in, fan_out), "xavier")
            out[bn] = Init((fan_out,), "constant", {"value": 0.1})
    return out


def encoder_case(name: str, hidden: tuple[int, ...], init: str, *, clip_value: float = 4.5, **extra) -> Case:
    """Build a seed-000 encoder case (also used by the tests for other clip thresholds)."""
    depth = len(hidden) + 1
    title = f"{'-'.join(map(str, (1,) + hidden + (1,)))} encoder, {'random_normal(0, 1e-3)' if init == 'tiny' else 'Xavier + bias 0.1'}"
    if clip_value != 4.5:
        title += f", clip ±{clip_value:g}"
    return Case(
        name=name,
        module="encoder",
        title=title,
        source="000",
        ports=extra.pop("ports", ("tf1", "tf2", "torch", "numpy")),
        params=_params(hidden, init),
        data=Data("uniform", {"key": "I", "shape": (1, 1), "low": -1.0, "high": 1.0}),
        steps=extra.pop("steps", STEPS),
        options={"hidden": hidden, "lr": 1e-3, "clip_value": clip_value, "init": init},
        seed=extra.pop("seed", 0),
        cost=Cost(depth=depth, reduction=max(hidden)),
        tags=("seed", "seed000") + tuple(extra.pop("tags", ())),
        **extra,
    )


ENCODER2_TINY = register(encoder_case("seed000_encoder2_tiny", (16,), "tiny"))
ENCODER3_TINY = register(encoder_case("seed000_encoder3_tiny", (16, 16), "tiny"))
ENCODER2_XAVIER = register(encoder_case("seed000_encoder2_xavier", (16,), "xavier"))
ENCODER3_XAVIER = register(encoder_case("seed000_encoder3_xavier", (16, 16), "xavier"))
# A threshold that bites: with Xavier init the output-layer gradients are O(0.1-1), so
# clipping at 0.05 changes them at step 0, and a port that forgets to clip diverges there.
ENCODER3_CLIP = register(encoder_case("seed000_encoder3_clip_bites", (16, 16), "xavier", clip_value=0.05, steps=50))
