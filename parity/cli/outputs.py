"""The report files a command can write besides the terminal: ``--html``, ``--markdown``, ``--tensorboard``.

:func:`add_output_args` gives ``run``, ``check``, ``compare`` and ``diff`` the same flags;
:func:`check_outputs` checks their paths before any port runs; :func:`write_reports`
writes the page and the summary atomically from the JSON report dict (so every command
gets the same page); :func:`tensorboard_observer` makes the runner's per-step hook that
writes TensorBoard events for every port.
"""

from __future__ import annotations

import argparse

__all__ = ["add_output_args", "check_outputs", "write_reports", "tensorboard_observer", "wants_report_dict"]


def add_output_args(parser: argparse.ArgumentParser, *, tensorboard: bool = True, terminal: bool = False) -> None:
    """Add ``--html FILE``, ``--markdown FILE``, (for commands that run ports) ``--tensorboard DIR``
    and (``terminal``) ``-q`` / ``-v`` for the table."""
    parser.add_argument("--html", metavar="FILE",
                        help="also write one self-contained HTML page: verdicts, error maps, loss and gradient plots")
    parser.add_argument("--markdown", metavar="FILE",
                        help="also write a short Markdown summary (for a CI job summary or a pull request)")
    if tensorboard:
        parser.add_argument("--tensorboard", metavar="DIR",
                            help="also write TensorBoard event files, one run per port with the same tags "
                                 "(DIR/<case>/<dtype>/<port>; view with: tensorboard --logdir DIR)")
    if terminal:
        parser.add_argument("-q", "--quiet", action="store_true", help="only the cases that did not pass, and the last line")
        parser.add_argument("-v", "--verbose", action="store_true",
                            help="one line per compared pair under each case, and a line per finished case on stderr")


def wants_report_dict(args) -> bool:
    return bool(getattr(args, "html", None) or getattr(args, "markdown", None))


def check_outputs(args) -> None:
    """Check the output paths before any port runs (a one-line ParityError otherwise)."""
    from parity.errors import ParityError
    from parity.io import check_output, check_output_dir

    if getattr(args, "html", None):
        check_output(args.html, "--html")
    if getattr(args, "markdown", None):
        check_output(args.markdown, "--markdown")
    if getattr(args, "tensorboard", None):
        from parity.report.tensorboard import available

        why = available()
        if why:
            raise ParityError(f"--tensorboard: {why}")
        check_output_dir(args.tensorboard, "--tensorboard")
    if getattr(args, "html", None):
        from parity.report.plots import available as plots

        why = plots()
        if why:
            raise ParityError(f"--html: {why}")


def write_reports(args, report: dict, say=print) -> None:
    """Write ``--html`` and ``--markdown`` from the report dict (atomically)."""
    from parity.io import atomic_write

    if getattr(args, "html", None):
        from parity.report.html import render_html

        page = render_html(report)
        with atomic_write(args.html) as fh:
            fh.write(page)
        say(f"HTML report: {args.html}")
    if getattr(args, "markdown", None):
        from parity.report.markdown import render_markdown_summary

        with atomic_write(args.markdown) as fh:
            fh.write(render_markdown_summary(report))
        say(f"Markdown summary: {args.markdown}")


class _TensorBoardObserver:
    """The runner's per-step hook: one :class:`~parity.report.tensorboard.TensorBoardWriter` per (port, dtype)."""

    def __init__(self, root: str):
        self.root = root
        self._writers: dict = {}

    def start(self, case: str, port: str, dtype: str, initial) -> None:
        from parity.report.tensorboard import TensorBoardWriter

        self._writers[(case, port, dtype)] = TensorBoardWriter(self.root, case, dtype, port, initial)

    def step(self, case: str, port: str, dtype: str, stages) -> None:
        w = self._writers.get((case, port, dtype))
        if w is not None:
            w.add(stages)

    def finish(self, case: str, port: str, dtype: str) -> None:
        w = self._writers.pop((case, port, dtype), None)
        if w is not None:
            w.close()


def tensorboard_observer(args):
    """The observer for ``--tensorboard DIR``, or None when the flag is not given."""
    root = getattr(args, "tensorboard", None)
    return _TensorBoardObserver(root) if root else None
