"""``python -m parity``: the same as the ``parity`` console script (the command runs supervised: parity.cli.supervise)."""

from parity.cli.main import main

raise SystemExit(main())
