"""Dropout driven with parity's masks in a Keras program: each ``Dropout`` layer's ``call`` becomes
``x * mask / (1 - rate)`` with parity's keep mask when training (the identity without a mask: a
deterministic probe; a training step gives every site a mask, one without a partner its own), so
both frameworks drop the same units; the sites (index, layer name, input shape, rate) parity sees.
A ``SpatialDropout1D/2D/3D`` layer drops channels: its site's shape is ``[N, 1, .., 1, C]`` (its
noise shape), driven the same way (the mask broadcasts over the spatial dimensions).
"""

from __future__ import annotations

from parity.errors import ParityError
from parity.portkit.program import fit_mask, OWN_MASK, site_mask


#: the Keras dropout layers parity drives, by class name (the spatial ones drop whole channels)
DRIVEN = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D")


def is_driven(layer) -> bool:
    """Whether ``layer`` is a Keras dropout parity drives."""
    return type(layer).__name__ in DRIVEN


def _site_shape(layer, inputs) -> tuple:
    shape = tuple(int(d) for d in inputs.shape)
    if type(layer).__name__.startswith("SpatialDropout") and len(shape) >= 3:
        return (shape[0],) + (1,) * (len(shape) - 2) + (shape[-1],)
    return shape


def dropout_call(layer, index: int, rec, tf):
    """The ``call`` of Dropout ``layer`` (site ``index``): parity's mask from ``rec.masks``, shape to ``rec.shapes``."""
    def call(inputs, training=None, _l=layer, _i=index, **kw):
        rec.shapes[_i] = _site_shape(_l, inputs)
        mask = site_mask(rec.masks, _i, rec.shapes[_i])
        if not training or mask is None:
            out = tf.identity(inputs)
        else:
            m = tf.constant(fit_mask(mask, rec.shapes[_i]), dtype=inputs.dtype)
            out = inputs * m / tf.constant(1.0 - float(_l.rate), dtype=inputs.dtype)  # not tf.cast: a float32 0.7
        rec.keep(_l, out)
        return out

    return call


def dropout_sites(dropouts: list, shapes: dict, where: str) -> list:
    """The dropout sites (``DropoutSite``), each with the input shape its last call saw, then the noise sites."""
    from parity.portkit.program import DropoutSite

    from .noise import noise_sites

    out = []
    for i, layer in enumerate(dropouts):
        if i not in shapes:
            raise ParityError(f"{where}: dropout {layer.name} not called yet: call forward() first")
        out.append(DropoutSite(i, layer.name, shapes[i], float(layer.rate)))
    return out + noise_sites(shapes)  # and the normal / uniform draws of the last run (:mod:`.noise`)
