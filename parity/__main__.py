"""``python -m parity``: the same as the ``parity`` console script."""

from .cli import main

raise SystemExit(main())
