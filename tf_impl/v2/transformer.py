"""The real-size transformer encoder in TF2: Keras 3 layers, a ``tf.function`` step, ``AdamW``.

Written as a Keras user writes it (the Keras example "Text classification with
Transformer", scaled to BERT-mini): ``Embedding`` for tokens and positions,
``MultiHeadAttention``, post-LayerNorm residual blocks, a ``Dense(gelu)`` -> ``Dense``
feed-forward, ``GlobalAveragePooling1D``, a ``Dense`` head on logits;
``SparseCategoricalCrossentropy(from_logits=True)``; ``keras.optimizers.AdamW`` with
LayerNorm and biases excluded from the weight decay. The step runs under one
``tf.function`` (as ``fit`` would compile it) and returns every block's activations with
the loss and the gradients.

Canonical names and layouts are Keras' own: ``MultiHeadAttention`` keeps its projections
as ``EinsumDense`` kernels ``[d, heads, head_dim]`` (query, key, value) and
``[heads, head_dim, d]`` (output): nothing to convert here; the torch port converts.

float64 traps, each one set explicitly (a float64 Keras model is not float64 throughout
by default):

* ``SparseCategoricalCrossentropy`` has its own dtype, ``floatx()`` (float32) unless told:
  it would cast float64 logits to float32 before the softmax. The port passes ``dtype``;
* the optimizer's hyper-parameters: a Python float ``learning_rate`` becomes a floatx
  variable, and ``ops.cast(beta, float64)`` of a Python float goes through float32
  (0.999 -> 0.99900001287), as does the weight decay (0.01 -> 0.0099999998): the port
  passes the learning rate as a callable returning a tensor of the model's dtype and the
  others as ``np.float64`` (a ``float``, which Keras' argument checks accept; it converts
  exactly), as the seed-001 TF2 port does;
* every layer gets ``dtype`` (Keras 3 keeps the dtype policy it first derived from floatx);
* the attention scale: Keras' TF backend multiplies the scores by ``tf.cast(1 / sqrt(head_dim),
  dtype)``, a Python float through float32: exact only when ``head_dim`` is a power of 4
  (64 here; with 8, float64 scores are off by 1.5e-8 relative, measured at 5.5e-9 in the
  next block's attention output). Nothing to do at this size; a test at another size
  must keep ``head_dim`` a power of 4;
* GELU: ``keras.activations.gelu`` (``tf.nn.gelu(approximate=False)``) computes
  ``0.5 x erfc(-x * cast(0.7071067811865476, dtype))``, and that cast of a Python float goes
  through float32: in float64 the erf argument is off by 1.7e-8 relative (measured: 4.1e-9
  absolute on [-3, 3] against the exact erf form, which torch computes to 1e-16). The port's
  :func:`gelu` is the same formula with the constant made in the model's dtype (identical
  in float32).

``settings()`` states the conventions the settings check compares: LayerNorm epsilon,
GELU form, Adam epsilon and its placement.
"""

from __future__ import annotations

import numpy as np

from tf_impl import tensorflow
from tf_impl.v2 import VariablesPort, keras_framework_info

__all__ = ["build", "framework_info", "TransformerPort", "VARIANTS", "block_layers"]

VARIANTS = (None,)
#: The activations recorded per block, in the order they are computed.
BLOCK_OUTPUTS = ("attention", "ln1", "ffn", "ln2")


def framework_info() -> dict:
    return keras_framework_info()


def gelu(x):
    """Exact (erf) GELU with 1/sqrt(2) in ``x``'s dtype (``tf.nn.gelu`` rounds it to float32)."""
    tf = tensorflow()
    return 0.5 * x * tf.math.erfc(-x * tf.constant(0.7071067811865476, dtype=x.dtype))


def block_layers(layers: int) -> list[str]:
    """Return the names of the recorded activations, in forward order (the same in every port)."""
    names = ["embed"]
    for i in range(layers):
        names += [f"block{i}/{k}" for k in BLOCK_OUTPUTS]
    return names + ["pool", "logits"]


_ACTIVATIONS = {"gelu": gelu, "relu": "relu"}


class TransformerPort(VariablesPort):
    def __init__(self, case, dtype, variant=None):
        tf = tensorflow()
        import keras

        self.tf, self.case, self.dtype = tf, case, dtype
        o = case.option
        d, heads, ff, n_layers = o("d_model"), o("heads"), o("ff"), o("layers")
        self.seq, self.n_layers = o("seq"), n_layers
        L = keras.layers
        eps = float(o("ln_epsilon"))  # Keras' LayerNormalization default is 1e-3
        self.tok = L.Embedding(o("vocab"), d, dtype=dtype, name="embedding")
        self.pos = L.Embedding(self.seq, d, dtype=dtype, name="position")
        self.blocks = []
        for i in range(n_layers):
            self.blocks.append({
                # No biases in the blocks (the case's docstring says why: the key bias).
                "attention": L.MultiHeadAttention(num_heads=heads, key_dim=d // heads, dropout=0.0, use_bias=False,
                                                  dtype=dtype, name=f"block{i}_attention"),
                "ln1": L.LayerNormalization(epsilon=eps, center=False, dtype=dtype, name=f"block{i}_ln1"),
                # The erf form (torch's default too); not "gelu": see the module docstring (float64).
                "ffn1": L.Dense(ff, activation=_ACTIVATIONS[o("activation")], use_bias=False, dtype=dtype,
                                name=f"block{i}_ffn1"),
                "ffn2": L.Dense(d, use_bias=False, dtype=dtype, name=f"block{i}_ffn2"),
                "ln2": L.LayerNormalization(epsilon=eps, center=False, dtype=dtype, name=f"block{i}_ln2"),
            })
        self.pool = L.GlobalAveragePooling1D(dtype=dtype)
        self.head = L.Dense(o("classes"), dtype=dtype, name="head")
        # The loss's own dtype defaults to floatx (float32): see the module docstring.
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=dtype)
        self._forward(tf.zeros((1, self.seq), dtype=tf.int64))  # build every layer eagerly
        self.vars = self._variables()
        shapes = {n: spec.shape for n, spec in case.params.items()}
        for name, var in self.vars.items():
            if tuple(var.shape) != tuple(shapes[name]):
                raise ValueError(f"{name}: the Keras layer built {tuple(var.shape)}, the case declares {shapes[name]}")
        lr = float(o("lr"))
        f64 = np.float64  # a float subclass: exact under ops.cast (see the module docstring)
        self.opt = keras.optimizers.AdamW(
            learning_rate=lambda: tf.constant(lr, dtype=dtype),
            weight_decay=f64(o("weight_decay")),
            beta_1=f64(o("beta1")),
            beta_2=f64(o("beta2")),
            epsilon=float(o("epsilon")),
        )
        # BERT's practice: no decay on LayerNorm parameters and biases. Keras 3 matches these
        # patterns against the variable's *name* ("gamma", "bias"), not its path
        # ("block0_ln1/gamma"): a Keras 2 list of layer names ("LayerNorm") excludes nothing.
        self.opt.exclude_from_weight_decay(var_names=list(o("no_decay")))
        self.lr = lr
        self.opt.build(list(self.vars.values()))
        self.decayed = {n: bool(self.opt._use_weight_decay(v)) for n, v in self.vars.items()}
        self._step_fn = tf.function(self._train_step)
        self._bare_fn = tf.function(self._bare_step)

    def _variables(self) -> dict:
        out = {"embedding/embeddings": self.tok.embeddings, "position/embeddings": self.pos.embeddings}
        for i, blk in enumerate(self.blocks):
            att = blk["attention"]
            for proj, dense in (("query", att.query_dense), ("key", att.key_dense), ("value", att.value_dense),
                                ("output", att.output_dense)):
                out[f"block{i}/attention/{proj}/kernel"] = dense.kernel
            out[f"block{i}/ln1/gamma"] = blk["ln1"].gamma
            out[f"block{i}/ffn1/kernel"] = blk["ffn1"].kernel
            out[f"block{i}/ffn2/kernel"] = blk["ffn2"].kernel
            out[f"block{i}/ln2/gamma"] = blk["ln2"].gamma
        out["head/kernel"], out["head/bias"] = self.head.kernel, self.head.bias
        return out

    def _forward(self, tokens):
        tf = self.tf
        acts = {}
        positions = tf.range(self.seq)
        h = self.tok(tokens) + self.pos(positions)[tf.newaxis]
        acts["embed"] = h
        for i, blk in enumerate(self.blocks):
            a = blk["attention"](h, h, training=True)  # self-attention: query = value = key = h
            acts[f"block{i}/attention"] = a
            h = blk["ln1"](h + a)  # post-LN (BERT, the Keras example, torch's norm_first=False)
            acts[f"block{i}/ln1"] = h
            f = blk["ffn2"](blk["ffn1"](h))
            acts[f"block{i}/ffn"] = f
            h = blk["ln2"](h + f)
            acts[f"block{i}/ln2"] = h
        acts["pool"] = p = self.pool(h)
        acts["logits"] = self.head(p)
        return acts

    def _train_step(self, tokens, labels):
        tf = self.tf
        names = list(self.vars)
        variables = [self.vars[n] for n in names]
        with tf.GradientTape() as tape:
            acts = self._forward(tokens)
            loss = self.loss_fn(labels, acts["logits"])
        grads = tape.gradient(loss, variables)
        # The embedding's gradient is an IndexedSlices (the rows gathered); AdamW densifies
        # it (m and v decay on every row, as torch's dense embedding gradient does).
        grads = [tf.convert_to_tensor(g) for g in grads]
        self.opt.apply_gradients(zip(grads, variables))
        return acts, loss, dict(zip(names, grads))

    def _bare_step(self, tokens, labels):
        with self.tf.GradientTape() as tape:
            loss = self.loss_fn(labels, self._forward(tokens)["logits"])
        variables = list(self.vars.values())
        self.opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def train(self, batch) -> float:
        """Run one training step and record nothing (the user's own loop: ``parity.tools.bench``'s baseline)."""
        tf = self.tf
        return float(self._bare_fn(tf.constant(batch["x"], tf.int64), tf.constant(batch["y"], tf.int64)))

    def step(self, batch):
        tf = self.tf
        acts, loss, grads = self._step_fn(tf.constant(batch["x"], tf.int64), tf.constant(batch["y"], tf.int64))
        # Tensors, not numpy copies (``.numpy()`` copies): the harness copies each once at its
        # boundary (parity.run.boundary.to_array), before the next step runs. A variable is read
        # (``convert_to_tensor``: a tensor of its current value) rather than copied here.
        return {
            "forward": dict(acts),
            "loss": {"loss": loss},
            "gradients": dict(grads),
            "learning_rate": {"lr": np.asarray(self.lr, dtype=self.dtype)},
            "parameters": {n: tf.convert_to_tensor(v) for n, v in self.vars.items()},
            "slots": self._slots(),
        }

    def _slots(self):
        read, slots = self.tf.convert_to_tensor, {}
        for n, v in self.vars.items():
            i = self.opt._get_variable_index(v)
            slots[f"{n}/m"] = read(self.opt._momentums[i])
            slots[f"{n}/v"] = read(self.opt._velocities[i])
        return slots

    def settings(self) -> dict:
        return {
            "optimizer": "keras.optimizers.AdamW",
            "adam_epsilon": float(self.opt.epsilon),
            "adam_epsilon_form": "hat",
            "adam_epsilon_placement": "epsilon-hat: sqrt(v) + eps, v uncorrected",
            "weight_decay": float(self.case.option("weight_decay")),
            "weight_decay_excluded": sorted(n for n, on in self.decayed.items() if not on),
            "layernorm_epsilon": float(self.case.option("ln_epsilon")),
            "gelu": "exact",
            "loss_reduction": "mean",
        }


def build(case, dtype, variant=None):
    """Build the TF2 (Keras 3) transformer port."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} of the TF2 transformer port")
    return TransformerPort(case, dtype, variant)
