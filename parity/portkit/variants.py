"""Find the code of a port variant (``framework:variant``) outside the faithful port.

A reference port module (``torch_impl/convnet.py``) holds the faithful port only. Its
variants live in two places, and a reference module's ``build`` hands any variant here:

* equivalent formulations a case compares too (``tf1:minimize``: ``opt.minimize``
  instead of ``compute_gradients`` + ``apply_gradients``) sit at the end of the reference
  module, in its ``ALTERNATIVES`` dict: they are part of the lesson;
* deliberate mistakes (``torch:symmetric_pad``) sit in the framework's ``mistakes``
  package under the same module name (``torch_impl/mistakes/convnet.py``), in its
  ``MISTAKES`` dict: each a small subclass overriding the one thing it gets wrong, named
  after its pitfall.

Both dicts map a variant name to a ``(case, dtype) -> port`` callable.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["build_variant", "variants_of"]


def _mistakes_module(module: str):
    package, _, name = module.rpartition(".")
    target = f"{package}.mistakes.{name}"
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name and target.startswith(exc.name):
            return None  # this port has no mistakes written down
        raise


def variants_of(module: str) -> dict:
    """Return ``variant -> factory`` for the reference port module named ``module`` (imported)."""
    found = dict(getattr(sys.modules.get(module) or importlib.import_module(module), "ALTERNATIVES", {}))
    mistakes = _mistakes_module(module)
    if mistakes is not None:
        found.update(mistakes.MISTAKES)
    return found


def build_variant(module: str, variant: str, case, dtype: str):
    """Build the port ``variant`` of the reference port module ``module`` (its ``__name__``).

    Raises:
        ValueError: the module has no such variant (the message lists the ones it has).
    """
    found = variants_of(module)
    if variant not in found:
        known = ", ".join(sorted(found)) or "none"
        raise ValueError(f"unknown variant {variant!r} of the port {module}; its variants: {known}")
    return found[variant](case, dtype)
