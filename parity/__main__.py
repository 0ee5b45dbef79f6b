"""``python -m parity``: the same as the ``parity`` console script."""

from parity.cli.main import main

raise SystemExit(main())
