"""Deliberately wrong PyTorch ports: each mistake a small subclass of the faithful port.

One module per reference port (``torch_impl/mistakes/convnet.py`` next to
``torch_impl/convnet.py``), each with a ``MISTAKES`` dict (variant name -> the class) that
:mod:`parity.portkit.variants` reads when a case names ``torch:<variant>``. Every class overrides
the one thing it gets wrong; the line that differs carries a comment naming its pitfall
(``parity explain NAME``). The harness must catch each of them.
"""
