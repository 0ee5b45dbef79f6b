"""The forward outputs a Keras capture records: every leaf layer's output, in call order, by layer
name, and the pre-activation output of a layer with its own activation (``d1/pre_activation``: a
torch port's Linear). Each layer's ``call`` is wrapped on the instance for the run (``fit`` runs
eagerly, so the outputs are values); :class:`Recording` holds what the wrapped calls write. Each
output has a kind (:data:`KINDS` by layer class; a layer with its own activation: ``activation``,
its ``pre_activation`` the layer's kind; an ``Activation`` layer has no pre-activation output of its own:
its input is the layer before's output) for the structural pairing. An ``LSTM``/``GRU``/``SimpleRNN``
records its sequence output (kind ``rnn``) and, with ``return_state``, its final state as
``name/h``, ``name/c`` (``rnn_state``); without ``return_sequences`` its output is the final state.
"""

from __future__ import annotations

from .dropout import dropout_call, is_driven
from .noise import install as install_noise

#: the output kind of each Keras layer class (see :mod:`parity.program.outputs`)
KINDS = {
    "linear": ("Dense", "EinsumDense"),
    "conv": ("Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D"),
    "activation": ("Activation", "ReLU", "Softmax", "LeakyReLU", "ELU", "PReLU"),
    "pool": ("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
             "AveragePooling3D"),
    "norm": ("BatchNormalization", "LayerNormalization"),
    "dropout": ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout",
                "GaussianDropout"),
    "embedding": ("Embedding",),
    "rnn": ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional"),
    "reshape": ("Flatten", "Reshape", "Permute"),
}
_KIND = {c: k for k, classes in KINDS.items() for c in classes}


def layer_kind(layer) -> str:
    """The kind of a Keras layer's output (``other`` for a class parity does not know)."""
    for cls in type(layer).__mro__:
        if cls.__name__ in _KIND:
            return _KIND[cls.__name__]
    return "other"


class Recording:
    """What the wrapped calls write during one forward or step.

    ``record``: the run's stages (``{"forward": {...}, ...}``; None between runs); ``masks``:
    parity's dropout masks for the run, by site index; ``shapes``: each dropout site's input shape.
    """

    def __init__(self):
        self.record: dict | None = None
        self.masks: dict = {}
        self.shapes: dict[int, tuple] = {}
        self.kinds: dict[str, str] = {}  # output name -> kind
        self.notes: list[str] = []  # what parity cannot drive (an alpha or Gaussian dropout)

    def keep(self, layer, out) -> None:
        """Record ``layer``'s output (its first call of the run); an RNN's output and final state."""
        if self.record is None or layer.name in self.record["forward"]:
            return
        fwd = self.record["forward"]
        # (the first call turns a return_sequences=False layer's kind into rnn_state: later forwards are RNNs still,
        # an LSTM(return_state=True)'s [h, h, c] list recorded as name, name/c, name/h each time)
        if self.kinds.get(layer.name) == "rnn" or (self.kinds.get(layer.name) == "rnn_state" and hasattr(layer, "return_sequences")):
            parts = list(out) if isinstance(out, (list, tuple)) else [out]
            if not getattr(layer, "return_sequences", True):
                self.kinds[layer.name] = "rnn_state"  # the output is the last step's h, the final state
            named = list(zip((layer.name, f"{layer.name}/h", f"{layer.name}/c"), parts))
            for label, t in named[:1] + named[2:] + named[1:2]:  # output, c, h: TF1's (c, h) order
                if hasattr(t, "numpy"):
                    fwd[label] = t.numpy()
                    self.kinds.setdefault(label, "rnn_cell" if label.endswith("/c") else "rnn_state")
            return
        if hasattr(out, "numpy"):
            fwd[layer.name] = out.numpy()


def _recording_call(layer, rec: Recording):
    # a call set on the instance is the layer's op (tf_keras TFOpLambda: Keras 2's add_loss arithmetic);
    # otherwise the class's, looked up per call so class-level patches apply
    own = vars(layer).get("call")

    def call(*args, _l=layer, **kw):
        out = own(*args, **kw) if own is not None else type(_l).call(_l, *args, **kw)
        rec.keep(_l, out)
        return out

    return call


def _pre_activation(layer, activation, rec: Recording):
    # a Dense/Conv with its own activation: its pre-activation output too (a torch port's Linear)
    def pre(x, _l=layer, _a=activation):
        if rec.record is not None and hasattr(x, "numpy"):
            rec.record["forward"].setdefault(f"{_l.name}/pre_activation", x.numpy())
        return _a(x)

    for attr in ("__name__", "__qualname__", "__module__"):  # the activation's name, for whoever reads the config
        if isinstance(getattr(activation, attr, None), str):
            setattr(pre, attr, getattr(activation, attr))
    return pre


def wrap_layers(layers: list, dropouts: list, model, rec: Recording, tf) -> None:
    """Wrap each leaf layer's ``call`` (dropout: parity's mask) and the model's, to record into ``rec``.
    ``dropouts`` (the program's list) gains the channel dropouts parity drives too, in layer order."""
    dropouts[:] = [layer for layer in layers if layer in dropouts or is_driven(layer)]
    install_noise(rec, tf)  # normal / uniform draws in a forward or a step: parity's (:mod:`.noise`)
    # an LSTM / GRU / SimpleRNN holds its cell (the leaf, called once per step): the layer is recorded
    rnns = [l for l in model._flatten_layers(include_self=False) if layer_kind(l) == "rnn"]
    cells = {id(c) for r in rnns for c in [getattr(r, "cell", None), getattr(r, "forward_layer", None),
                                           getattr(r, "backward_layer", None)] if c is not None}
    for layer in layers:
        if type(layer).__name__ == "AlphaDropout":  # (GaussianNoise / GaussianDropout: normal draws, :mod:`.noise`)
            rec.notes.append(f"{type(layer).__name__} {layer.name} is not driven by parity's masks: it draws its own "
                             "(that layer and what follows differ by chance: compare them statistically, not element by element)")
    for r in rnns:
        rec.kinds[r.name] = "rnn"
        r.call = _recording_call(r, rec)
    for layer in layers:
        if id(layer) in cells:
            continue
        rec.kinds[layer.name] = layer_kind(layer)
        if layer in dropouts:
            layer.call = dropout_call(layer, dropouts.index(layer), rec, tf)
        else:
            layer.call = _recording_call(layer, rec)
        activation = getattr(layer, "activation", None)
        # an Activation layer's input is the previous layer's output (already recorded): only a layer that
        # computes before its activation (Dense/Conv ``activation=``) has a pre-activation cut of its own
        if (callable(activation) and getattr(activation, "__name__", "linear") != "linear"
                and rec.kinds[layer.name] not in ("rnn", "activation")):
            rec.kinds[f"{layer.name}/pre_activation"] = rec.kinds[layer.name]
            rec.kinds[layer.name] = "activation"
            layer.activation = _pre_activation(layer, activation, rec)
    original_model_call = model.call

    def model_call(*args, **kw):
        out = original_model_call(*args, **kw)
        if rec.record is not None:
            rec.record["__output__"] = out
        return out

    model.call = model_call
