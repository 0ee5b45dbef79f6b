"""Reports people read: the HTML page (in a real browser), the Markdown summary, TensorBoard, the terminal.

The pages are rendered from real runs: seed 000's two tiny-init encoders (numpy oracle and
torch, float64, 100 steps: ~1 s) and a catalogued wrong port (a failing case), so the
tests see what a user sees.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from parity.report.html import render_html
from parity.report.markdown import render_markdown_summary
from parity.report.jsonreport import report_dict, strict_json
from parity.run.runner import run_case

pytest.importorskip("matplotlib")

from parity.cases.catalog.seed000 import STEPS  # (the registered encoders' length: every step is in the series)
SCHEMA = os.path.join(os.path.dirname(__file__), "..", "docs", "report-schema.json")


@pytest.fixture(scope="module")
def seed000_report():
    pytest.importorskip("torch")
    results = [
        run_case(name, ports=["numpy", "torch"], dtypes=["float64"])
        for name in ("seed000_encoder3_tiny", "seed000_encoder2_tiny")
    ]
    return report_dict(results, {}, kind="run", command=["run", "seed000_encoder3_tiny", "seed000_encoder2_tiny"])


@pytest.fixture(scope="module")
def failing_report():
    pytest.importorskip("torch")
    from parity.pitfalls.diagnose import diagnose

    result = run_case("pitfall_zero_grad_wrong", dtypes=["float64"])
    diags = {("pitfall_zero_grad_wrong", i): diagnose(result.case, c, result.traces[c.dtype])
             for i, c in enumerate(result.comparisons) if not c.ok}
    return report_dict([result], diags, kind="run", command=["run", "pitfall_zero_grad_wrong"])


def test_series_are_in_the_json_and_valid(seed000_report):
    jsonschema = pytest.importorskip("jsonschema")
    data = json.loads(strict_json(seed000_report))
    jsonschema.validate(data, json.load(open(SCHEMA)))
    d = data["cases"][0]["dtypes"][0]
    series = d["series"]["torch"]
    assert len(series["loss"]) == STEPS and series["every"] == 1
    # seed 000's vanishing gradient, as the plot shows it: the first layer's weight gradient
    # is orders below the last layer's in the 3-layer net (measured means over 100 steps:
    # |g_W| 7.0e-6, |g_W2| 7.4e-3, ~1000x; 7.1e-6 and 7.5e-3 over 200); 100x between the medians leaves a 10x margin.
    first, last = sorted(series["layers"]["W"]["grad_norm"]), sorted(series["layers"]["W2"]["grad_norm"])
    assert first[STEPS // 2] * 100 < last[STEPS // 2]
    heat = d["comparisons"][0]["heatmap"]
    assert heat["stages"][0] == "inputs" and len(heat["units"][0]) == STEPS


def test_html_page_has_the_plots_and_no_network(seed000_report, tmp_path):
    page = render_html(seed000_report)
    # per case: loss, gradient norm and update ratio (3 plots) + one error map per comparison
    assert page.count("<svg") == 2 * (3 + 1)
    assert "gradient norm per layer" in page and "update / weight ratio per layer" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the page must load nothing from the network"


def test_html_of_a_failing_case_shows_the_first_divergence(failing_report):
    page = render_html(failing_report)
    assert "First divergence" in page and "zero-grad" in page
    assert "<i>fix:</i>" in page
    c = failing_report["cases"][0]["dtypes"][0]["comparisons"][0]
    assert f"step {c['first_divergence']['step']}" in page


def test_markdown_summary_is_short(failing_report, seed000_report):
    text = render_markdown_summary(dict(seed000_report, cases=seed000_report["cases"] + failing_report["cases"],
                                        summary=failing_report["summary"]))
    lines = text.splitlines()
    assert len(lines) <= 12
    assert lines[6].startswith("| ❌ pitfall_zero_grad_wrong") or "pitfall_zero_grad_wrong" in text
    assert "`zero-grad`" in text


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed (apt-get install chromium)")
def test_html_renders_in_headless_chromium(failing_report, seed000_report, tmp_path):
    page = tmp_path / "r.html"
    page.write_text(render_html(dict(seed000_report, cases=failing_report["cases"] + seed000_report["cases"])))
    shot = tmp_path / "shot.png"
    base = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run(base + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    # the browser parsed every plot (inline SVG) and the first divergence is on the page
    assert dom.stdout.count("<svg") == 2 * 4 + 1 + 3
    assert "First divergence" in dom.stdout
    failed = [line for line in dom.stderr.splitlines() if "Failed to load" in line or "net::ERR" in line]
    assert not failed, failed
    snap = subprocess.run(base + [f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert snap.returncode == 0 and shot.stat().st_size > 20_000  # a blank page is ~5 KB


@pytest.mark.tf
@pytest.mark.torch
def test_tensorboard_tf1_and_torch_share_every_tag(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from parity.cases.registry import get_case
    from parity.cli.outputs import _TensorBoardObserver

    case = get_case("seed002_clip_value").replace(steps=3)
    run_case(case, ports=["tf1", "torch"], dtypes=["float64"], observers=[_TensorBoardObserver(str(tmp_path))])
    tags = {}
    for port in ("tf1", "torch"):
        acc = EventAccumulator(str(tmp_path / case.name / "float64" / port), size_guidance={"histograms": 0, "scalars": 0})
        acc.Reload()
        t = acc.Tags()
        tags[port] = (set(t["scalars"]), set(t["histograms"]))
        assert len(acc.Scalars("loss")) == 3
    assert tags["tf1"] == tags["torch"]
    scalars, hists = tags["tf1"]
    assert {"loss", "learning_rate"} <= scalars and any(s.startswith("update_ratio/") for s in scalars)
    assert any(h.startswith("gradients/") for h in hists) and any(h.startswith("updates/") for h in hists)


def test_terminal_rows_fit_100_columns():
    pytest.importorskip("torch")
    env = dict(os.environ, COLUMNS="100")
    proc = subprocess.run(
        [sys.executable, "-m", "parity", "run", "seed000_encoder2_tiny", "pitfall_zero_grad_wrong",
         "--frameworks", "torch,numpy", "--dtype", "float64"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= 100, max(lines, key=len)
    table = lines[: lines.index("")]  # the table ends at the first blank line
    assert sum(1 for line in table if line.startswith("seed000_encoder2_tiny")) == 1  # one row per case
