"""parity/ speaks numpy only: importing it (and its CLI and registry) pulls in no framework."""

import subprocess
import sys

CODE = """
import sys
import parity, parity.cli.main, parity.report.text, parity.run.runner, parity.trace.health, parity.portkit.transforms, parity.portkit.layout
parity.all_cases()
loaded = {'tensorflow', 'torch', 'tf_keras', 'keras'} & set(sys.modules)
assert not loaded, loaded
"""


def test_importing_parity_loads_no_framework():
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_done_when_one_liner():
    code = "import parity, sys; assert not {'tensorflow','torch'} & set(sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
