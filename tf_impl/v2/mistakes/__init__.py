"""Deliberately wrong TF2 ports: each mistake a small subclass of the faithful port.

One module per reference port (``tf_impl/v2/mistakes/mlp.py`` next to
``tf_impl/v2/mlp.py``), each with a ``MISTAKES`` dict (variant name -> the class) that
:mod:`parity.portkit.variants` reads when a case names ``tf2:<variant>``. Every class overrides
the one thing it gets wrong; the line that differs carries a comment naming its pitfall.
"""
