"""The report's plots, drawn with matplotlib (imported lazily) as inline SVG text.

Every function takes plain lists from the JSON report (:mod:`parity.report.jsonreport`) and
returns one ``<svg>`` element: the HTML page embeds them as they are, so it needs no
network, no script and no image file to be viewed.
"""

from __future__ import annotations

import io
import math
from typing import Mapping, Sequence

__all__ = ["heatmap_svg", "lines_svg", "available"]

#: Line styles that tell the ports apart when colours tell the layers apart.
_PORT_STYLES = ("-", "--", ":", "-.")


def available() -> str | None:
    """Return None when matplotlib can be imported, else the reason (with the install command)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed (pip install -c constraints.txt matplotlib): no plots"
    return None


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.titlesize": 10})
    return plt


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    _pyplot().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: the SVG sits inside HTML


def _finite(values: Sequence) -> list[float]:
    out = []
    for v in values:
        if isinstance(v, str):  # the JSON's "inf", "-inf", "nan"
            v = float(v)
        out.append(float("nan") if v is None else float(v))
    return out


def heatmap_svg(stages: Sequence[str], rows: Sequence[Sequence], title: str, labels: Mapping[str, str] | None = None) -> str:
    """A stage x step map of the error in units of its bound (log colour scale; 1 = the bound).

    Blank cells: a stage not compared at that step. Anything at or above 1 is beyond rounding,
    so "where first" is the left-most, top-most cell over the threshold.
    """
    plt = _pyplot()
    import numpy as np
    from matplotlib.colors import LogNorm, ListedColormap

    data = np.array([_finite(r) for r in rows], dtype=np.float64) if rows else np.zeros((0, 0))
    steps = data.shape[1] if data.ndim == 2 else 0
    fig, ax = plt.subplots(figsize=(min(10.0, 2.5 + 0.06 * max(steps, 1)), 0.35 * max(len(stages), 1) + 1.1))
    shown = np.where(np.isfinite(data) & (data > 0), data, np.nan)
    # Exact agreement (0 units) is drawn at the floor of the scale, not left blank.
    shown = np.where((data == 0) & np.isfinite(data), 1e-4, shown)
    shown = np.clip(shown, 1e-4, 1e4)
    cmap = ListedColormap(plt.get_cmap("viridis")(np.linspace(0, 1, 128)).tolist() + [[0.85, 0.1, 0.1, 1.0]] * 128)
    image = ax.imshow(shown, aspect="auto", interpolation="nearest", cmap=cmap, norm=LogNorm(1e-4, 1e4))
    ax.set_yticks(range(len(stages)))
    ax.set_yticklabels([(labels or {}).get(s, s) for s in stages])
    ax.set_xlabel("step")
    ax.set_title(title)
    bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label("error / bound (red: beyond rounding)")
    return _svg(fig)


def lines_svg(
    series: Mapping[str, Mapping[str, Sequence]],
    title: str,
    ylabel: str,
    *,
    log: bool = True,
    max_lines: int = 12,
) -> str:
    """Overlay series: ``{port: {line name: values per step}}``; colour = line, style = port.

    Used for the loss of both frameworks on one plot (one line name per port) and for the
    per-layer gradient norm and update/weight ratio (ports overlaid, one colour per layer).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 3.2))
    names: list[str] = []
    for per in series.values():
        names += [n for n in per if n not in names]
    names = names[:max_lines]
    colours = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    drawn = 0
    for p, (port, per) in enumerate(series.items()):
        for name in names:
            values = per.get(name)
            if values is None:
                continue
            ys = _finite(values)
            if log:
                ys = [y if y > 0 and math.isfinite(y) else float("nan") for y in ys]
            if not any(math.isfinite(y) for y in ys):
                continue
            # one legend entry per line name (colour); the ports' line styles get their own entries
            label = name if (p == 0 or name == port) else None
            ax.plot(
                range(len(ys)),
                ys,
                _PORT_STYLES[p % len(_PORT_STYLES)],
                color=colours(names.index(name) % colours.N),
                linewidth=1.4 if p == 0 else 1.1,
                label=label,
            )
            drawn += 1
    if log and drawn:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if drawn:
        if len(series) > 1 and any(n not in series for n in names):
            for p, port in enumerate(series):
                ax.plot([], [], _PORT_STYLES[p % len(_PORT_STYLES)], color="black", label=f"— {port}")
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    else:
        ax.text(0.5, 0.5, "nothing to draw", transform=ax.transAxes, ha="center")
    return _svg(fig)
