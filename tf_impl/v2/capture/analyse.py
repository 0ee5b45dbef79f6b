"""Finding what a Keras program's dict holds: its keys checked (a built ``keras.Model``, a Keras
optimizer, a loss unless the program has its own ``train_step``), which Keras it is (tf_keras or
Keras 3), the leaf layers parity records, each weight's own name (``layer/kernel``) and its kind
(:data:`_KINDS`: dense or conv kernel, bias, BatchNorm and LayerNorm weights, embedding, LSTM / GRU / SimpleRNN).
"""

from __future__ import annotations

from typing import Any, Mapping

from parity.errors import ParityError

PROGRAM_KEYS = ("model", "optimizer", "loss", "train_step", "fit", "inputs", "targets", "data")
_KINDS = {  # (layer class, weight leaf) -> ParamSpec kind
    ("Dense", "kernel"): "dense_kernel", ("Conv1D", "kernel"): "conv_kernel", ("Conv2D", "kernel"): "conv_kernel",
    ("Conv3D", "kernel"): "conv_kernel", ("DepthwiseConv2D", "depthwise_kernel"): "conv_kernel",
    ("BatchNormalization", "gamma"): "bn_gamma", ("BatchNormalization", "beta"): "bn_beta",
    ("BatchNormalization", "moving_mean"): "bn_mean", ("BatchNormalization", "moving_variance"): "bn_var",
    ("LayerNormalization", "gamma"): "ln_gamma", ("LayerNormalization", "beta"): "ln_beta",
    ("Embedding", "embeddings"): "embedding", ("LSTM", "kernel"): "lstm_kernel",
    ("LSTM", "recurrent_kernel"): "lstm_recurrent", ("LSTM", "bias"): "lstm_bias",
    ("LSTMCell", "kernel"): "lstm_kernel", ("LSTMCell", "recurrent_kernel"): "lstm_recurrent",
    ("LSTMCell", "bias"): "lstm_bias",
    ("SimpleRNNCell", "kernel"): "lstm_kernel", ("SimpleRNNCell", "recurrent_kernel"): "lstm_recurrent",
    ("SimpleRNNCell", "bias"): "lstm_bias", ("SimpleRNN", "kernel"): "lstm_kernel",
    ("SimpleRNN", "recurrent_kernel"): "lstm_recurrent", ("SimpleRNN", "bias"): "lstm_bias",
    ("GRU", "kernel"): "lstm_kernel", ("GRU", "recurrent_kernel"): "lstm_recurrent", ("GRU", "bias"): "lstm_bias",
    ("GRUCell", "kernel"): "lstm_kernel", ("GRUCell", "recurrent_kernel"): "lstm_recurrent",
    ("GRUCell", "bias"): "lstm_bias",
}


def _keras_of(model):
    mod = type(model).__module__.split(".")[0]
    if mod == "tf_keras" or "tf_keras" in "".join(c.__module__ for c in type(model).__mro__):
        import tf_keras

        return tf_keras
    import keras

    return keras


def _own(weight) -> str:
    name = getattr(weight, "path", None) or weight.name
    return name[:-2] if name.endswith(":0") else name


def check_model(program: Mapping[str, Any], where: str) -> tuple:
    """``(model, keras)``: the program's keys known and its model a ``keras.Model`` (one-line errors)."""
    unknown = sorted(set(program) - set(PROGRAM_KEYS))
    if unknown:
        raise ParityError(f"{where}: unknown key {unknown[0]!r}; expected some of {', '.join(PROGRAM_KEYS)}")
    model = program.get("model")
    if not (hasattr(model, "layers") and hasattr(model, "trainable_weights") and callable(model)):
        raise ParityError(f"{where}: 'model' must be a keras.Model, got {type(model).__name__}")
    return model, _keras_of(model)


def check_training(program: Mapping[str, Any], model, keras, train_step, where: str) -> tuple:
    """``(optimizer, loss)``: how the program trains, checked; the model built (one-line errors)."""
    if train_step is not None and not callable(train_step):
        raise ParityError(f"{where}: 'train_step' must be a function of the batch, got {type(train_step).__name__}")
    optimizer = program.get("optimizer") or getattr(model, "optimizer", None)
    if optimizer is None or not callable(getattr(optimizer, "apply_gradients", None)):
        raise ParityError(f"{where}: 'optimizer' must be a Keras optimizer, got {type(optimizer).__name__}")
    loss = program.get("loss") or getattr(model, "loss", None)
    if loss is None and train_step is None:
        raise ParityError(f"{where}: 'loss' is missing (a Keras loss or a function(y_true, y_pred))")
    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    if not model.built:
        raise ParityError(f"{where}: the model is not built: give it an Input shape (or call it once)")
    return optimizer, loss


def leaf_layers(model) -> list:
    """The model's layers that hold no other layer (``InputLayer`` left out), in the model's order."""
    return [l for l in model._flatten_layers(include_self=False) if not list(l._flatten_layers(include_self=False))
            and type(l).__name__ != "InputLayer"]


def weight_kind(layer, leaf: str) -> str:
    """The kind of weight ``leaf`` (``kernel`` ...) of ``layer`` (None: a weight of no leaf layer)."""
    return _KINDS.get((type(layer).__name__ if layer else "", leaf), "bias" if leaf == "bias" else "other")
