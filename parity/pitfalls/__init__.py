"""The pitfall catalogue: every known TF <-> PyTorch porting trap, reproduced, caught and named.

One registry of :class:`Pitfall` (like the cases): a short kebab-case name, both frameworks'
formulas, the fix, preconditions on the traces and a *signature*: the stage that diverges
first and a checker that recognises the pattern from the two traces and their comparison
(numpy only; it never looks at which case is running). Each pitfall has a right and a wrong
case (``parity/cases/catalog/pitfalls_*.py``). Formulas and measured sizes: PITFALLS.md (P01...).

The package reads bottom-up:

* :mod:`.base` -- the :class:`Context` a checker reads, tolerant comparisons, the record;
* :mod:`.reference` -- numpy recomputations (conv, pooling, GELU, TF32 rounding, a TF1 LSTM);
* :mod:`.requires` -- preconditions (BatchNorm state, a dropout layer, momentum slots...);
* family modules, each exposing ``PITFALLS``: :mod:`.normalization`, :mod:`.layers`,
  :mod:`.optimizers`, :mod:`.loop`, :mod:`.losses`, :mod:`.rnn`, :mod:`.numerics`;
* :mod:`.registry` -- collects them (:data:`~.registry.MODULES`), matches signatures, explains;
* :mod:`.render` -- docs/pitfalls.md;
* :mod:`.catalogue` and :mod:`.matrix` -- run the cases (above the runner and the diagnosis:
  import them as submodules; this package's ``__init__`` does not, so the diagnosis can import
  the registry without a cycle).
"""

from __future__ import annotations

from parity.pitfalls.base import Context, Pitfall, Precondition
from parity.pitfalls.reference import round_tf32
from parity.pitfalls.registry import all_pitfalls, explain, get_pitfall, match_signatures
from parity.pitfalls.render import render_markdown

__all__ = [
    "Pitfall",
    "Precondition",
    "Context",
    "all_pitfalls",
    "get_pitfall",
    "explain",
    "render_markdown",
    "match_signatures",
    "round_tf32",
]
