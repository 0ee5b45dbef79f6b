"""Record ports in a fresh interpreter: ``python -m parity.run.isolate CASE DIR JOBS``.

Ports a case marks ``isolate`` (Keras 2 graph mode cannot share a process with eager
TensorFlow) run here, all of one case's isolated ports and dtypes in ONE interpreter, so
TensorFlow is imported once per case instead of once per port and dtype. Each job
``[port, dtype]`` is written, step by step, to ``DIR/<n>.trace``; a job that fails leaves
``DIR/<n>.error`` holding its one-line message instead. The parent reads the traces
step by step (:class:`parity.run.boundary.PortRun`).
"""

from __future__ import annotations

import json
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from parity.run.boundary import job_paths
    from parity.cases.registry import get_case
    from parity.errors import ParityError
    from parity.run.runner import record_port

    name, directory, jobs = (argv if argv is not None else sys.argv[1:])[:3]
    case = get_case(name)
    for n, (port, dtype) in enumerate(json.loads(jobs)):
        path, error = job_paths(directory, n)
        try:
            record_port(case, port, dtype, path, isolate=False)
        except ParityError as exc:
            with open(error, "w") as fh:
                fh.write(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
