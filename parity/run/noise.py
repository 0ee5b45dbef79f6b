"""The frameworks' start-up lines, kept off the user's screen: what TensorFlow's C++ logging prints at import
on a machine without a GPU ("Could not find cuda drivers", "oneDNN custom operations", absl's
"All log messages before absl::InitializeLog"), whatever ``TF_CPP_MIN_LOG_LEVEL`` says.

A worker's stderr is relayed line by line without them (:func:`relay`); in the harness process (``parity
diff`` runs the user's programs there) :func:`filtered_stderr` sends file descriptor 2 (where C++ code
writes) through the same filter, while Python's ``sys.stderr`` keeps writing to the original stream (a
terminal stays a terminal: the progress bar still sees one). Anything else reaches the user unchanged.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import threading

__all__ = ["STARTUP_NOISE", "relay", "filtered_stderr"]

#: What a framework prints at import on a machine without a GPU: not shown (anything else is).
STARTUP_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|[IEW]\d{4} [\d:. ]+\s*\d+ \w+\.(cc|h):\d+\]"
                           r".*(cuda|GPU|oneDNN|cpu_feature_guard|TensorFloat|rebuild TensorFlow|cuDNN|cuFFT|cuBLAS)"
                           r"|.*absl::InitializeLog)")


def relay(stream, write=None) -> None:
    """Copy a binary ``stream`` line by line to ``write`` (default: ``sys.stderr``), without the start-up noise."""
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace")
        if not STARTUP_NOISE.match(line):
            if write is None:
                sys.stderr.write(line)
                sys.stderr.flush()
            else:
                write(line)


@contextlib.contextmanager
def filtered_stderr():
    """While inside: what C/C++ code writes to file descriptor 2 is filtered (:data:`STARTUP_NOISE` dropped);
    Python's ``sys.stderr`` writes to the original stream as before. A no-op where fd 2 cannot be redirected."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    read_end, write_end = os.pipe()
    original = open(saved, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    python_stream = sys.stderr
    uses_fd2 = _fileno(python_stream) == 2
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os.dup2(write_end, 2)
    os.close(write_end)
    if uses_fd2:  # Python's own writes keep going to the terminal (or file) the user sees, unfiltered
        sys.stderr = original
    lock = threading.Lock()

    def write(line: str) -> None:
        with lock:
            original.write(line)
            original.flush()

    thread = threading.Thread(target=relay, args=(os.fdopen(read_end, "rb"), write), daemon=True)
    thread.start()
    try:
        yield
    finally:
        os.dup2(saved, 2)  # closes the pipe's last write end: the relay reads EOF and ends
        thread.join(timeout=5)
        if uses_fd2:
            sys.stderr = python_stream
        original.close()
        os.close(saved)


def _fileno(stream) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
