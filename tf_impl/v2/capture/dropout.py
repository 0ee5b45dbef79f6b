"""Dropout driven with parity's masks in a Keras program: each ``Dropout`` layer's ``call`` becomes
``x * mask / (1 - rate)`` with parity's keep mask when training (the identity without a mask), so
both frameworks drop the same units; the sites (index, layer name, input shape, rate) parity sees.
"""

from __future__ import annotations

import numpy as np

from parity.errors import ParityError


def dropout_call(layer, index: int, rec, tf):
    """The ``call`` of Dropout ``layer`` (site ``index``): parity's mask from ``rec.masks``, shape to ``rec.shapes``."""
    def call(inputs, training=None, _l=layer, _i=index, **kw):
        mask = rec.masks.get(_i)
        rec.shapes[_i] = tuple(int(d) for d in inputs.shape)
        if not training or mask is None:
            out = tf.identity(inputs)
        else:
            m = tf.constant(np.asarray(mask), dtype=inputs.dtype)
            out = inputs * m / tf.cast(1.0 - _l.rate, inputs.dtype)
        rec.keep(_l, out)
        return out

    return call


def dropout_sites(dropouts: list, shapes: dict, where: str) -> list:
    """The dropout sites (``DropoutSite``), each with the input shape its last call saw."""
    from parity.portkit.program import DropoutSite

    out = []
    for i, layer in enumerate(dropouts):
        if i not in shapes:
            raise ParityError(f"{where}: dropout {layer.name} not called yet: call forward() first")
        out.append(DropoutSite(i, layer.name, shapes[i], float(layer.rate)))
    return out
