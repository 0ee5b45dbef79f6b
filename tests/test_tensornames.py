"""Reference ports as starting points: copyable as they are, and docs/ports.md's names up to date."""

import ast
import glob
import os
import shutil
import subprocess
import sys

import pytest

from parity.cases.registry import default_cases

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "ports.md")
REFERENCE_PORTS = sorted(
    p
    for pattern in ("tf_impl/v1/*.py", "tf_impl/v2/*.py", "torch_impl/*.py", "parity/oracle/*.py")
    for p in glob.glob(os.path.join(ROOT, pattern))
    # distributed.py: the data-parallel ports (their names are those of the ports they wrap); the capture
    # adapters of users' programs are packages (capture/), not matched here
    if not os.path.basename(p).startswith("_") and os.path.basename(p) != "distributed.py"
)


def _generated():
    from parity.tools.tensornames import MARKER

    with open(DOC) as fh:
        text = fh.read()
    assert MARKER in text, "docs/ports.md lacks the generated part: python -m parity.tools.tensornames --write docs/ports.md"
    return text.split(MARKER, 1)[1]


@pytest.mark.parametrize("path", REFERENCE_PORTS, ids=lambda p: os.path.relpath(p, ROOT))
def test_reference_ports_import_absolutely(path):
    # A relative import ("from ._common import ...") fails in a copy outside the package.
    with open(path) as fh:
        tree = ast.parse(fh.read())
    relative = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0]
    assert not relative, f"relative imports at lines {relative}"


def test_ports_doc_lists_every_case():
    generated = _generated()
    missing = [c.name for c in default_cases() if f"`{c.name}`" not in generated]
    assert not missing, f"docs/ports.md lacks {missing}: python -m parity.tools.tensornames --write docs/ports.md"


@pytest.mark.slow  # ~20 s of CPU: two frameworks' start-up and 50 convnet steps
@pytest.mark.tf
@pytest.mark.torch
def test_a_copied_reference_port_passes_check(tmp_path):
    # The reference file, copied out of the project, checked as a user's port against the
    # TF1 reference (float64: the comparison that decides a semantic difference).
    shutil.copy(os.path.join(ROOT, "torch_impl", "convnet.py"), tmp_path / "convnet.py")
    cmd = [sys.executable, "-m", "parity", "check", "seed001_convnet", "--dtype", "float64", "--frameworks", "tf1,torch",
           "--torch-port", str(tmp_path / "convnet.py")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "rounding" in proc.stdout, proc.stdout[-2000:]


@pytest.mark.slow
def test_ports_doc_is_up_to_date():
    from parity.tools.tensornames import render

    assert _generated() == render().split(_marker(), 1)[1], "regenerate: python -m parity.tools.tensornames --write docs/ports.md"


def _marker():
    from parity.tools.tensornames import MARKER

    return MARKER
