"""The forward outputs a Keras capture records: every leaf layer's output, in call order, by layer
name, and the pre-activation output of a layer with its own activation (``d1/pre_activation``: a
torch port's Linear). Each layer's ``call`` is wrapped on the instance for the run (``fit`` runs
eagerly, so the outputs are values); :class:`Recording` holds what the wrapped calls write.
"""

from __future__ import annotations

from .dropout import dropout_call


class Recording:
    """What the wrapped calls write during one forward or step.

    ``record``: the run's stages (``{"forward": {...}, ...}``; None between runs); ``masks``:
    parity's dropout masks for the run, by site index; ``shapes``: each dropout site's input shape.
    """

    def __init__(self):
        self.record: dict | None = None
        self.masks: dict = {}
        self.shapes: dict[int, tuple] = {}

    def keep(self, layer, out) -> None:
        """Record ``layer``'s output (its first call of the run)."""
        if self.record is not None and layer.name not in self.record["forward"] and hasattr(out, "numpy"):
            self.record["forward"][layer.name] = out.numpy()


def _recording_call(layer, rec: Recording):
    def call(*args, _l=layer, **kw):
        out = type(_l).call(_l, *args, **kw)  # looked up per call: class-level patches apply
        rec.keep(_l, out)
        return out

    return call


def _pre_activation(layer, activation, rec: Recording):
    # a Dense/Conv with its own activation: its pre-activation output too (a torch port's Linear)
    def pre(x, _l=layer, _a=activation):
        if rec.record is not None and hasattr(x, "numpy"):
            rec.record["forward"].setdefault(f"{_l.name}/pre_activation", x.numpy())
        return _a(x)

    return pre


def wrap_layers(layers: list, dropouts: list, model, rec: Recording, tf) -> None:
    """Wrap each leaf layer's ``call`` (dropout: parity's mask) and the model's, to record into ``rec``."""
    for layer in layers:
        if layer in dropouts:
            layer.call = dropout_call(layer, dropouts.index(layer), rec, tf)
        else:
            layer.call = _recording_call(layer, rec)
        activation = getattr(layer, "activation", None)
        if callable(activation) and getattr(activation, "__name__", "linear") != "linear":
            layer.activation = _pre_activation(layer, activation, rec)
    original_model_call = model.call

    def model_call(*args, **kw):
        out = original_model_call(*args, **kw)
        if rec.record is not None:
            rec.record["__output__"] = out
        return out

    model.call = model_call
