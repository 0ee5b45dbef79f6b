"""Running the catalogue: every pitfall's wrong port must be caught and named first, its right port clean.

This sits above the runner and the diagnosis (it runs cases); nothing below imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parity.cases.case import HEAVY_TAGS
from parity.cases.registry import get_case
from parity.pitfalls.diagnose import diagnose, settings_check
from parity.run.runner import run_pitfall
from parity.pitfalls.registry import all_pitfalls

__all__ = ["PitfallResult", "run_catalogue", "format_catalogue"]


@dataclass
class PitfallResult:
    """What the catalogue measured for one pitfall in one dtype."""

    pitfall: str
    caught: bool
    named_first: bool
    first_divergence: str
    magnitude: float
    right_clean: bool
    warnings: list[str] = field(default_factory=list)
    dtype: str = "float64"
    named: list[str] = field(default_factory=list)
    stage: str = "-"


def run_catalogue(dtypes=("float64",), names=None, *, workers: bool = False) -> list[PitfallResult]:
    """Run every pitfall's wrong and right cases in ``dtypes``; return what was caught and named.

    Pitfalls whose cases carry a heavy tag (``cases.HEAVY_TAGS``: the data-parallel ones) run only when named.

    A dtype the wrong case does not run in (TF32 exists in float32 only) is left out of its rows.
    ``workers``: run each framework's ports in a worker process (:func:`parity.run.runner.run_case`).
    """
    results = []
    for p in all_pitfalls():
        if names and p.name not in names:
            continue
        wrong, right = get_case(p.wrong_case), get_case(p.right_case)
        if not names and set(HEAVY_TAGS) & set(wrong.tags):
            continue  # run by name only (the data-parallel pitfalls start processes)
        wdtypes = tuple(d for d in dtypes if d in wrong.dtypes)
        rw, rr = run_pitfall(wrong, right, dtypes=dtypes, workers=workers)  # the reference run once for both
        for dtype in wdtypes:
            cmp = next((c for c in rw.comparisons if c.dtype == dtype), None)
            traces_w = rw.traces.get(dtype, {})
            diags = diagnose(wrong, cmp, traces_w) if cmp is not None else []
            first = cmp.first_divergence if cmp is not None else None
            mag = first.diff.max_abs if first is not None and first.diff is not None else float("nan")
            rcmp = [c for c in rr.comparisons if c.dtype == dtype]
            traces_r = rr.traces.get(dtype, {})
            clean = (not rr.errors.get(dtype)) and all(c.ok for c in rcmp) and not settings_check(right, traces_r) and not any(
                diagnose(right, c, traces_r) for c in rcmp
            )
            results.append(PitfallResult(
                pitfall=p.name,
                caught=cmp is not None and not cmp.ok,
                named_first=bool(diags) and diags[0].pitfall == p.name,
                first_divergence=first.describe() if first else "-",
                magnitude=mag,
                right_clean=clean,
                warnings=settings_check(wrong, traces_w),
                dtype=dtype,
                named=[d.pitfall for d in diags],
                stage=first.stage if first else "-",
            ))
    return results


def format_catalogue(results) -> str:
    """Format the detection table `make parity` prints: one line per pitfall and dtype."""
    rows = [("pitfall", "dtype", "first diverging", "magnitude", "named first?", "right port clean?")]
    for r in results:
        stage = r.first_divergence.split(",")[1].strip() if r.first_divergence.count(",") >= 1 else r.first_divergence
        step = r.first_divergence.split(",")[0] if r.first_divergence != "-" else ""
        named = "yes" if r.named_first else ("no: " + (r.named[0] if r.named else "unknown"))
        rows.append((r.pitfall, r.dtype, f"{stage} ({step})" if step else stage, f"{r.magnitude:.3g}", named, "yes" if r.right_clean else "NO"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["Pitfall catalogue: " + f"{sum(r.named_first for r in results)}/{len(results)} named first, "
             + f"{sum(r.right_clean for r in results)}/{len(results)} right ports clean"]
    for row in rows:
        lines.append(" | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return "\n".join(lines)
