"""A real-size case: a 4-layer transformer encoder trained with AdamW, in Keras and in torch.

The seeds are small networks; a user's model is not. This case is one at a size people
train: the BERT-mini geometry (Turc et al. 2019, "Well-Read Students Learn Better": 4
layers, hidden 256, 4 heads, feed-forward 1024), post-LayerNorm blocks as in BERT, the
Keras "text classification with Transformer" example and torch's
``nn.TransformerEncoderLayer`` default, a learned position embedding, mean pooling and a
classification head; ``AdamW`` (lr 1e-4, weight decay 0.01, LayerNorm gains and biases
excluded from the decay, as BERT does), 100 steps of batch 16 x 64 tokens. 5.26 M
parameters, 3.15 M of them in the encoder blocks.

Sizes. One full float32 step holds every parameter four times (gradient, parameter,
Adam m and v: 86 MB) and 19 activations of 16x64x256 (20 MB): ~106 MB a step, 10.6 GB
for the 100 steps, twice that in float64. It runs only with the streaming runner (each
step compared as it arrives, then dropped) and is recorded as a *summary* trace.

Why these choices, each a thing a migrating user meets:

* No biases inside the blocks (attention, FFN, LayerNorm: torch ``bias=False``, Keras
  ``use_bias=False`` / ``center=False``), as PaLM and LLaMA are built. With BERT's biases
  the *key* projection's bias has a gradient that is identically zero in exact arithmetic
  (it adds ``q . b_k`` to every score of a query, and the softmax cancels it), so each
  framework's gradient is its own rounding noise (measured: 1e-20 in float64, 1e-13 to
  3e-11 in float32, with O(1) relative disagreement between the two) and AdamW, whose
  update ``m / (sqrt(v) + eps)`` does not care how small ``m`` is, trains it on that noise.
  No two frameworks can agree on noise; a port of a model with biases will see exactly
  this, and should read it so.
* Dropout 0: framework RNGs cannot be aligned, and ``nn.MultiheadAttention`` applies its
  attention dropout inside one call where no mask can be fed (seeds 001 and 003 compare
  dropout exactly through harness masks; here it would only add noise).
* LayerNorm epsilon 1e-6, the Keras example's; both frameworks' defaults differ from it
  and from each other (Keras ``LayerNormalization`` 1e-3, torch 1e-5): each port passes it.
* Adam epsilon 1e-7 as Keras' "epsilon hat" (added to sqrt of the *uncorrected* v); torch
  adds its eps to the bias-corrected sqrt, so the torch port rescales eps every step
  (PITFALLS P09), as the seed-001 port does.
* Weight decay 0.01 (torch's AdamW default; Keras' is 0.004), decoupled, ``p -= lr*wd*p``
  before the Adam step in both; torch's param groups mirror Keras'
  ``exclude_from_weight_decay``.
* Initialisation as Keras draws it: ``glorot_uniform`` on each layer's own kernel shape
  (``MultiHeadAttention`` kernels are ``[256, 4, 64]`` and ``[4, 64, 256]``, whose Keras
  fans are not those of a 256x256 matrix), embeddings ``random_normal(0, 0.02)`` (BERT).

Data: a toy topic classification drawn by the harness (:func:`_tokens`): token ids from a
vocabulary of 8192, a quarter of them from the sequence's class's 32 topic tokens.
"""

from __future__ import annotations

import numpy as np

from parity.cases.case import Case, Cost, Data, Init, register
from parity.cases.data import register_data
from parity.errors import ParityError

__all__ = ["transformer_case", "TRANSFORMER", "VOCAB", "SEQ", "D_MODEL", "HEADS", "FF", "LAYERS", "BATCH", "STEPS"]

VOCAB = 8192
SEQ = 64
D_MODEL = 256
HEADS = 4
FF = 1024
LAYERS = 4
CLASSES = 4
BATCH = 16
STEPS = 100
TAGS = ("slow", "realsize")  # make parity-full runs it after the full tier, in summary mode

# float32 error model. depth: embedding, then per block attention (projection, scores,
# softmax, weighted sum, output projection), 2 residual LayerNorms and a 2-layer FFN (9),
# then pooling and the head: 1 + 4 * 9 + 2 = 39. Longest reduction: a weight gradient sums
# over batch x tokens = 16 * 64 = 1024 products (the FFN's 1024 inner products too).
DEPTH = 1 + LAYERS * 9 + 2
REDUCTION = BATCH * SEQ


@register_data("tokens")
def _tokens(case: Case, rng: np.random.Generator, *, batch: int, seq: int, vocab: int, classes: int,
            signal: float = 0.25, band: int = 32):
    """Token ids ``x`` [batch, seq] and integer labels ``y`` [batch]: a toy topic classification.

    Each sequence draws its class, then each token is, with probability ``signal``, one of
    the class's ``band`` topic tokens (ids ``class * band`` ..), and otherwise any token of the
    vocabulary. The model has something to learn in 100 steps (each topic token is seen ~2
    times a step), so the run is a training run, not noise around the initial loss.
    """
    if min(batch, seq, vocab, classes, band) < 1 or classes * band > vocab or not 0.0 <= signal <= 1.0:
        raise ParityError(f"tokens: need batch, seq, classes, band >= 1, classes * band <= vocab and signal in "
                          f"[0, 1] (got {batch}, {seq}, {classes}, {band}, vocab {vocab}, signal {signal})",
                          case=case.name)
    out = []
    for _ in range(case.steps):
        y = rng.integers(0, classes, size=batch)
        topic = y[:, None] * band + rng.integers(0, band, size=(batch, seq))
        x = np.where(rng.random((batch, seq)) < signal, topic, rng.integers(0, vocab, size=(batch, seq)))
        out.append({"x": x.astype(np.int64), "y": y.astype(np.int64)})
    return out


def _params(*, vocab: int, seq: int, d: int, heads: int, ff: int, layers: int, classes: int) -> dict[str, Init]:
    dh = d // heads
    out = {
        "embedding/embeddings": Init((vocab, d), "random_normal", {"mean": 0.0, "stddev": 0.02}),
        "position/embeddings": Init((seq, d), "random_normal", {"mean": 0.0, "stddev": 0.02}),
    }
    for i in range(layers):
        b = f"block{i}"
        for proj in ("query", "key", "value"):
            out[f"{b}/attention/{proj}/kernel"] = Init((d, heads, dh), "glorot_uniform")
        out[f"{b}/attention/output/kernel"] = Init((heads, dh, d), "glorot_uniform")
        out[f"{b}/ln1/gamma"] = Init((d,), "ones")
        out[f"{b}/ffn1/kernel"] = Init((d, ff), "glorot_uniform")
        out[f"{b}/ffn2/kernel"] = Init((ff, d), "glorot_uniform")
        out[f"{b}/ln2/gamma"] = Init((d,), "ones")
    out["head/kernel"] = Init((d, classes), "glorot_uniform")
    out["head/bias"] = Init((classes,), "zeros")
    return out


def transformer_case(name: str, title: str, **extra) -> Case:
    """Build a transformer case (the tests and the bench use it at other sizes and step counts)."""
    size = {
        "vocab": extra.pop("vocab", VOCAB),
        "seq": extra.pop("seq", SEQ),
        "d": extra.pop("d_model", D_MODEL),
        "heads": extra.pop("heads", HEADS),
        "ff": extra.pop("ff", FF),
        "layers": extra.pop("layers", LAYERS),
        "classes": extra.pop("classes", CLASSES),
    }
    if size["d"] % size["heads"]:
        raise ParityError(f"d_model {size['d']} is not a multiple of heads {size['heads']}", case=name)
    batch = extra.pop("batch", BATCH)
    options = {
        "vocab": size["vocab"],
        "seq": size["seq"],
        "d_model": size["d"],
        "heads": size["heads"],
        "ff": size["ff"],
        "layers": size["layers"],
        "classes": size["classes"],
        "activation": "gelu",  # exact (erf) GELU: Keras' and torch's default form
        "ln_epsilon": 1e-6,
        "lr": 1e-4,
        "beta1": 0.9,
        "beta2": 0.999,
        "epsilon": 1e-7,  # epsilon hat (Keras)
        "weight_decay": 0.01,
        # Keras exclude_from_weight_decay(var_names=...): patterns searched in the variable's
        # name, the last part of the canonical name (LayerNorm gamma, the head's bias).
        "no_decay": ("gamma", "beta", "bias"),
        **extra.pop("options", {}),
    }
    depth = 1 + size["layers"] * 9 + 2
    return Case(
        name=name,
        module="transformer",
        title=title,
        ports=extra.pop("ports", ("tf2", "torch")),
        params=_params(**size),
        data=Data("tokens", {"batch": batch, "seq": size["seq"], "vocab": size["vocab"], "classes": size["classes"],
                             "band": min(32, size["vocab"] // size["classes"])}),
        steps=extra.pop("steps", STEPS),
        options=options,
        seed=extra.pop("seed", 9),
        cost=extra.pop("cost", Cost(depth=depth, reduction=batch * size["seq"])),
        tags=tuple(extra.pop("tags", TAGS)),
        **extra,
    )


TRANSFORMER = register(
    transformer_case(
        "realsize_transformer",
        "4-layer transformer encoder (BERT-mini: d 256, 4 heads, FFN 1024, LayerNorm), AdamW, "
        "batch 16 x 64 tokens, 100 steps, 5.26M parameters",
    )
)
