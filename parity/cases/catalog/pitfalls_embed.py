"""Pitfall cases: a trained embedding table (TF1 ``embedding_lookup``, mean over 3 ids, a Dense head, SGD).

* ``embedding-padding-idx``: ``nn.Embedding(padding_idx=0)`` freezes row 0, which TF trains;
* ``clip-norm-sparse-rows``: ``tf.clip_by_global_norm`` over the table's ``IndexedSlices`` counts a repeated
  id once per occurrence; ``clip_grad_norm_`` over the dense gradient sums the row first (corpus 01: a uniform
  factor on every processed gradient).

Ids: 4 sequences of 3 out of 6 rows (repeats certain), id 0 first in every batch.
"""

from __future__ import annotations

from parity.cases.case import Cost, Init
from parity.cases.catalog.pitfalls_optim import pitfall_pair

_P = {"E": Init((6, 3), "random_normal", {"stddev": 1.0}), "W": Init((3, 1), "random_normal", {"stddev": 0.5})}
_ARRAYS = {"ids": {"kind": "ids", "shape": (4, 3), "high": 6, "include": (0,)}, "T": {"kind": "normal", "shape": (4, 1)}}
# float32 model: a gather, a mean over 3 rows and a 3-long inner product.
_COST = Cost(depth=2, reduction=4)

pitfall_pair("embedding-padding-idx", module="pitfalls.embed", title="TF1 embedding_lookup (every row trained, id 0 included)",
             reference="tf1", params=_P, arrays=_ARRAYS, steps=2, cost=_COST, options={"lr": 0.125})
# clip norm 2**-4, far below the gradients' norm: the clip bites at every step
pitfall_pair("clip-norm-sparse-rows", module="pitfalls.embed", title="TF1 clip_by_global_norm(2**-4) over an embedding's IndexedSlices",
             reference="tf1", params=_P, arrays=_ARRAYS, steps=2, cost=_COST, options={"lr": 0.125, "clip": 2**-4})
