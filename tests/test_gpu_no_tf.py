"""GPU tests that need only torch run without TensorFlow (issue 21, item 4).

On the H200 (no TensorFlow) ``pytest -m gpu`` once skipped the TF32 tests for "TensorFlow is not installed".
Here every test file holding a ``gpu`` test is collected in a fresh interpreter where TensorFlow (and Keras)
cannot be imported, and each ``gpu`` test's skip reasons are read: none may be TensorFlow's, and every file
must still collect (a module-level TensorFlow import would be a collection error there).
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = r"""
import sys
for name in ("tensorflow", "keras", "tf_keras"):
    sys.modules[name] = None  # find_spec() says not installed; import raises ImportError
import pytest

class Reasons:
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items):
        for it in items:
            if "gpu" in it.keywords:
                why = [m.kwargs.get("reason", m.args[0] if m.args else "") for m in it.iter_markers("skip")]
                print("GPU-TEST", it.nodeid, "|", "; ".join(why), flush=True)

sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-m", "gpu", *sys.argv[1:]], plugins=[Reasons()]))
"""


def gpu_files() -> list[str]:
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "test_*.py"))):
        with open(path, encoding="utf-8") as fh:
            if "mark.gpu" in fh.read():
                out.append(os.path.relpath(path, ROOT))
    return out


def test_gpu_tests_need_no_tensorflow():
    files = gpu_files()
    assert "tests/test_gpu_tf32.py" in files and "tests/test_device_stats.py" in files
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *files], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]  # every file collects without TF
    lines = [line for line in proc.stdout.splitlines() if line.startswith("GPU-TEST")]
    # the GPU tests of these files: the encoder on CUDA (2 dtypes), device statistics (2 + 1), TF32 (2)
    assert len(lines) >= 7, proc.stdout
    blocked = [line for line in lines if "TensorFlow" in line.partition("|")[2]]
    assert not blocked, blocked
