"""Map one program's variables and layer outputs onto another's: by order, shape and kind.

numpy only. Each side's variables (:class:`~parity.portkit.program.ParamSpec`, own names, own layout)
are brought to parity's canonical layout (TensorFlow's: Dense ``[in, out]``, conv ``HWIO``,
flatten order ``(h, w, c)``) by a short list of exact permutations (:mod:`.ops`); two variables pair
when they have the same canonical shape and a compatible kind (:mod:`.auto`). Several candidates of one
shape and kind are decided by evidence only (the layer a variable belongs to; the probe forward from the
mapped weights), printed in a note; a class with different counts on the two sides, a variable with no
partner, or candidates nothing decides stop with one line listing both sides: never a silent guess.
The table is printed, and saved as JSON the user can edit and pass back (:mod:`.model`: read and checked
completely).

Layer outputs are paired by :mod:`parity.program.outputs` (kind and shape in call order, the probe's values
only confirming); the rest is listed as not compared (pair them in the JSON's ``"forward"`` list).
"""

from __future__ import annotations

from .auto import AmbiguousMapping, auto_map
from .model import (ENTRY_FIELDS, FILE_FIELDS, MAPPING_FORMAT, VALUE_STAGES, Entry, Mapping_, format_table, load_mapping,
                    save_mapping, used_once)
from .ops import OPS, apply_ops, canon_shape, check_ops, invert_ops, to_canonical_ops

__all__ = ["Mapping_", "Entry", "apply_ops", "invert_ops", "to_canonical_ops", "auto_map",
           "load_mapping", "save_mapping", "format_table", "MAPPING_FORMAT", "OPS", "check_ops",
           "canon_shape", "AmbiguousMapping", "FILE_FIELDS", "ENTRY_FIELDS", "VALUE_STAGES", "used_once"]
