"""Compare two runs step by step: ``records`` (what a comparison measures), ``tolerance`` (the written error
model), ``envelope`` (the measured float32 envelope), ``comparator`` (structure, then values, stage by
stage), ``files`` (two trace files).

Named ``comparison`` rather than ``compare``: ``parity.compare`` is the public function, and a package of
that name would hide it (or be hidden by it: ``import parity.compare.files`` would fail).
"""
