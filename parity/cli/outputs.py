"""The report files a command can write besides the terminal: ``--html``, ``--markdown``, ``--tensorboard``.

:func:`add_output_args` gives ``run``, ``check``, ``compare`` and ``diff`` the same flags;
:func:`check_outputs` checks their paths before any port runs; :func:`write_reports`
writes the page and the summary atomically from the JSON report dict (so every command
gets the same page); :func:`tensorboard_observer` makes the runner's per-step hook that
writes TensorBoard events for every port.
"""

from __future__ import annotations

import argparse
import os

__all__ = ["add_output_args", "check_outputs", "check_distinct", "same_path", "write_reports", "tensorboard_observer",
           "wants_report_dict"]

#: every option naming something a command writes (attribute, option)
OUTPUT_OPTIONS = (("json", "--json"), ("html", "--html"), ("markdown", "--markdown"), ("save_mapping", "--save-mapping"),
                  ("tensorboard", "--tensorboard"), ("traces", "--traces"), ("output", "-o"))


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


def _same_file_key(path) -> str:
    return os.path.normcase(os.path.realpath(os.fspath(path)))


def same_path(a, b) -> bool:
    """Whether two paths name one file (resolved: ``./x`` and ``x``, a link and its target); False if one is None."""
    return a is not None and b is not None and _same_file_key(a) == _same_file_key(b)


def check_distinct(args, inputs: dict | None = None) -> None:
    """Refuse two outputs on one path (one would overwrite the other), and an output on an input file.

    ``inputs``: what the command reads, label -> path (``A.trace``, ``REF.py``). Paths are compared
    resolved (``./x`` and ``x``, a symbolic link and its target are one file). A one-line ParityError
    names both options.
    """
    from parity.errors import ParityError

    seen: dict[str, str] = {}
    for attr, option in OUTPUT_OPTIONS:
        value = getattr(args, attr, None)
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            continue
        key = _same_file_key(value)
        if key in seen:
            raise ParityError(f"{seen[key]} and {option} name the same path ({os.fspath(value)}): one would overwrite "
                              "the other; give each its own")
        seen[key] = option
    for label, value in (inputs or {}).items():
        if value and _same_file_key(value) in seen:
            raise ParityError(f"{seen[_same_file_key(value)]} {os.fspath(value)} is the input {label}: writing it would "
                              "destroy what is read; give the output another path")


def check_outputs(args, inputs: dict | None = None) -> None:
    """Check the output paths before any port runs (a one-line ParityError otherwise): none the same as
    another or as an input (:func:`check_distinct`), each writable (its directory created)."""
    from parity.errors import ParityError
    from parity.io import check_output, check_output_dir

    check_distinct(args, inputs)
    if getattr(args, "json", None):
        check_output(args.json, "--json")
    if getattr(args, "save_mapping", None):
        check_output(args.save_mapping, "--save-mapping")
    if getattr(args, "traces", None):
        check_output_dir(args.traces, "--traces")
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
