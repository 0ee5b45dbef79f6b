"""The built-in cases. Importing this package imports every module in it, which registers them.

Add a case file here (``seed001.py``, ``pitfalls_bn.py``...) and it is picked up: no
list to edit. The seed modules come first, then the others, each group in name order, so
the registry's order (and every listing) is stable.
"""

import importlib
import pkgutil

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: (not m.name.startswith("seed"), m.name)):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
