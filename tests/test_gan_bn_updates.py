"""A DCGAN whose TF1 BatchNorm keeps moving statistics as TF 1.15's contrib batch_norm(updates_collections=None) does
(examples/gan_bn_updates/, corpus pair 02's form): fused (no float64 kernel: parity computes it from float64 ops) and
updated inside each call, with D called on the real and the generated batch in one sess.run. The port that updates
D's running statistics TF's way agrees in both dtypes; the port that chains them is named bn-shared-updates."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = [pytest.mark.tf, pytest.mark.torch]


def ex(name):
    return os.path.join(ROOT, "examples", "gan_bn_updates", name)


@pytest.mark.slow
def test_the_port_that_updates_the_running_statistics_tfs_way_agrees_in_both_dtypes():
    from parity.program.prepare import compare_programs

    r = compare_programs(ex("tf1_dcgan_bn.py"), ex("torch_dcgan_bn.py"), steps=3, dtypes=("float64", "float32"))
    assert [c.dtype for c in r.comparisons] == ["float64", "float32"]
    for c in r.comparisons:
        assert c.ok, (c.dtype, c.first_divergence and c.first_divergence.describe())
        assert "state" in c.worst_by_stage()  # the moving statistics are compared, not left out


@pytest.mark.slow
def test_the_port_that_chains_the_two_updates_is_named_bn_shared_updates(tmp_path):
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "parity", "diff", ex("tf1_dcgan_bn.py"), ex("torch_dcgan_bn_chained.py"),
                           "--steps", "2", "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())
    for dt in report["cases"][0]["dtypes"]:
        (c,) = dt["comparisons"]
        first = c["first_divergence"]
        assert (first["step"], first["stage"]) == (0, "state"), first
        assert c["diagnosis"]["pitfalls"][0]["pitfall"] == "bn-shared-updates", (dt["dtype"], c["diagnosis"])
    assert "bn-shared-updates" in proc.stdout and "updated by two or more calls in one run (discriminator/d_bn1)" in proc.stdout
