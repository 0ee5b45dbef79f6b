"""``python -m parity``: the same as the ``parity`` console script (the command runs supervised: parity.cli.supervise).

``python -m`` puts the working directory first on ``sys.path``; it is dropped here before
anything else is imported (``parity/__init__.py`` imports nothing eagerly), so a ``numpy.py``
planted in the working directory never runs. (A ``parity.py`` or ``parity/`` there is found by
Python itself before this file runs: ``python -P -m parity``, or the ``parity`` command, avoids it.)
"""

import os
import sys

_here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # parity's root (a checkout's tf_impl...)
_cwd = os.getcwd()
sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != _cwd]
if _here not in sys.path:
    sys.path.append(_here)

from parity.cli.main import main  # noqa: E402

raise SystemExit(main())
