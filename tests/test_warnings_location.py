"""Where a library warning under the user's code is shown (parity.errors.warnings_at_users_lines): at the user's
own line when one is on the stack; else where the library raised it, never at a worker's ``-c`` bootstrap
(corpus 04: torch's Dropout2d warning, raised under a model parity called itself, was shown at ``<string>:1``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

_CODE = textwrap.dedent("""
    import sys, warnings
    from parity.errors import warnings_at_users_lines
    shown = []
    warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: shown.append(
        (str(message), filename, lineno))
    LIB = "/opt/lib/python3.11/site-packages/torch/nn/modules/dropout.py"
    def library_call():  # a library raising a warning at its own line (what warnings.warn would pass)
        warnings.warn_explicit("dropout2d: Received a 2-D input", UserWarning, LIB, 176)
    with warnings_at_users_lines():
        if sys.argv[1] == "user":
            ns = {"library_call": library_call}
            exec(compile("def forward():\\n    library_call()\\n", sys.argv[2], "exec"), ns)
            ns["forward"]()
        else:
            library_call()
    print(repr(shown))
""")


def _shown(*args: str):
    out = subprocess.run([sys.executable, "-c", _CODE, *args], capture_output=True, text=True, check=True)
    return eval(out.stdout)  # noqa: S307 - our own repr of a list of tuples


def test_a_warning_with_no_users_frame_stays_where_the_library_raised_it():
    ((message, filename, lineno),) = _shown("none")
    assert (filename, lineno) == ("/opt/lib/python3.11/site-packages/torch/nn/modules/dropout.py", 176), filename
    assert message == "dropout2d: Received a 2-D input"


def test_a_warning_under_the_users_code_is_shown_at_the_users_line(tmp_path):
    user = str(tmp_path / "port.py")
    ((message, filename, lineno),) = _shown("user", user)
    assert (filename, lineno) == (user, 2)
    assert message.endswith("(raised at /opt/lib/python3.11/site-packages/torch/nn/modules/dropout.py:176)")
