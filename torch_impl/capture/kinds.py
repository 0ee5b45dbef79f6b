"""The kind of each forward output a torch capture records (the kinds TF's captures give theirs:
linear, conv, activation, pool, norm, dropout, embedding, rnn, rnn_state, reshape, other), for a
leaf module by its class and for a functional call (``F.relu``, ``x @ w``) by the function.
"""

from __future__ import annotations

__all__ = ["module_kind", "function_kind", "function_label"]

_MODULES = {
    "linear": ("Linear", "LazyLinear", "Bilinear"),
    "conv": ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "LazyConv2d"),
    "activation": ("ReLU", "ReLU6", "ELU", "SELU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "Softplus",
                   "Softsign", "GELU", "SiLU", "Hardtanh", "PReLU", "CELU"),
    "pool": ("MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d"),
    "norm": ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm"),
    "dropout": ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"),
    "embedding": ("Embedding", "EmbeddingBag"),
    "rnn": ("LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"),
    "reshape": ("Flatten", "Unflatten", "Identity"),
}
_MODULE_KIND = {c: k for k, classes in _MODULES.items() for c in classes}

#: functions recorded when called outside a leaf module (in a ``forward``), by kind; names as ``__name__``
_FUNCTIONS = {
    "linear": ("linear", "matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "_sparse_mm", "spmm", "addmm",
               "einsum"),
    "conv": ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d"),
    "activation": ("relu", "relu_", "relu6", "elu", "selu", "leaky_relu", "sigmoid", "tanh", "softmax",
                   "softplus", "softsign", "gelu", "silu", "hardtanh"),
    "pool": ("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d"),
    "norm": ("batch_norm", "layer_norm"),
    "embedding": ("embedding",),
}
_FUNCTION_KIND = {f: k for k, names in _FUNCTIONS.items() for f in names}


def module_kind(module) -> str:
    """A leaf module's output kind, by its class (or a base class torch defines); ``other`` when unknown."""
    for cls in type(module).__mro__:
        if cls.__name__ in _MODULE_KIND and cls.__module__.startswith("torch."):
            return _MODULE_KIND[cls.__name__]
    return "other"


def function_label(func) -> str:
    """The name a recorded functional output gets (before its ``#n``): ``F.relu``, ``F.matmul``."""
    name = getattr(func, "__name__", "") or ""
    name = name.strip("_").replace("sparse_mm", "sparse.mm").rstrip("_")
    return f"F.{name}"


def function_kind(func) -> str | None:
    """The kind of a torch function's output parity records as a layer output; None for the others
    (only torch's own functions reach the function mode, so the name says which)."""
    name = getattr(func, "__name__", None)
    return _FUNCTION_KIND.get(name) if isinstance(name, str) else None
