"""BatchNorm facts: which of a differing momentum / epsilon a divergence's stage can show, and the epsilon's
effect on a BatchNorm's training-mode output recomputed from the traces (used by :mod:`parity.pitfalls.facts`)."""

from __future__ import annotations

import re

import numpy as np

from parity.pitfalls.base import Context


def _site_values(lines, what: str) -> list:
    out = []
    for line in lines or []:
        m = re.search(rf"{what} ([0-9.eE+-]+)", str(line))
        out.append(float(m.group(1)) if m else None)
    return out


def _bn_name(a, b, ref: dict, port: dict, stage: str | None) -> str | None:
    """BatchNorm: the momentum only moves the running statistics (stage ``state``; a layer output only in
    inference mode), the epsilon changes the normalised output; both differing, the stage decides."""
    mom = _site_values(a, "momentum") != _site_values(b, "momentum")
    eps = _site_values(a, "eps") != _site_values(b, "eps")
    inference = any(str(side.get("mode", "")).startswith("eval") for side in (ref, port))
    if stage == "state":
        return "bn-momentum" if mom else None
    if eps:
        return "bn-epsilon"
    return "bn-momentum" if mom and inference else None


def _bn_site(name: str, lines) -> int | None:
    for i, line in enumerate(lines or []):
        site = str(line).split(": ", 1)[0]
        if name == site or name.startswith(site + "/") or site in name.split("/"):
            return i
    return None


def _bn_eps(ctx: Context, ref: dict, port: dict):
    """BatchNorm epsilons differ: in training mode a channel's output is gamma (x - mean) / sqrt(var + eps) + beta,
    so the port's centred output is the reference's times r = sqrt((var + eps_ref) / (var + eps_port)) per channel,
    with var read back from the reference's output and its gamma (gamma^2 var / (var + eps_ref) is the output's
    variance); without gamma, r must lie between 1 and sqrt(eps_ref / eps_port). Only at a BatchNorm's own output."""
    if ctx.first.stage != "forward" or any(str(s.get("mode", "")).startswith("eval") for s in (ref, port)):
        return None
    i = _bn_site(ctx.first.name, ref.get("batchnorm"))
    ea, eb = _site_values(ref.get("batchnorm"), "eps"), _site_values(port.get("batchnorm"), "eps")
    if i is None or not eb or ea[i] is None:
        return None
    eb = eb[0] if len(set(eb)) == 1 else eb[i] if len(eb) == len(ea) else None
    ya, yb = np.asarray(ctx.at(ctx.a, "forward")[ctx.first.name], float), np.asarray(ctx.at(ctx.b, "forward")[ctx.first.name], float)
    if eb is None or ya.shape != yb.shape or ya.ndim < 2:
        return None
    ea = ea[i]
    site = str(ref["batchnorm"][i]).split(": ", 1)[0]
    gammas = [np.asarray(v, float) for n, v in ctx.params_before(ctx.a, 0).items()
              if n.startswith(site + "/") and ("gamma" in n or n.endswith("weight"))]
    lo, hi = sorted((1.0, float(np.sqrt(ea / eb))))
    for axis in dict.fromkeys((ya.ndim - 1, 1)):
        a = np.moveaxis(ya, axis, -1).reshape(-1, ya.shape[axis])
        b = np.moveaxis(yb, axis, -1).reshape(-1, ya.shape[axis])
        a, b = a - a.mean(0), b - b.mean(0)
        na, nb = np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0)
        if not np.all(na > 0):
            continue
        r = nb / na
        # centred outputs proportional per channel: the rounding of a float64 / float32 layer, 100x
        if np.linalg.norm(b - r * a, axis=0).max() > 100 * ctx.tol * nb.max():
            continue
        g = [v for v in gammas if v.shape == (ya.shape[axis],)]
        if g and np.all(g[0] != 0):
            vz = (na / g[0]) ** 2 / a.shape[0]  # var / (var + eps_ref) from the output's own variance
            if np.all(vz < 1):
                var = ea * vz / (1.0 - vz)
                pred = np.sqrt((var + ea) / (var + eb))
                # the relative change r - 1 is ~eps / var: to 1% of itself (the variance is recovered through
                # 1 - vz, which loses digits) plus the run's rounding
                ok = bool(np.all(np.abs(r - pred) <= 1e-2 * np.abs(pred - 1) + 10 * ctx.tol))
                return ok, (f"{ctx.first.name}'s centred output per channel is the reference's times sqrt((var + {ea:g}) / "
                            f"(var + {eb:g})): measured {r.min():.6g}..{r.max():.6g}, predicted {pred.min():.6g}..{pred.max():.6g}")
        ok = bool(np.all((r >= lo * (1 - 10 * ctx.tol)) & (r <= hi * (1 + 10 * ctx.tol))))
        return ok, (f"{ctx.first.name}'s centred output per channel is the reference's times {r.min():.6g}..{r.max():.6g}, "
                    f"within sqrt((var + {ea:g}) / (var + {eb:g})) for some var >= 0: [{lo:.6g}, {hi:.6g}]")
    return False, "the outputs are not proportional per channel, as an epsilon change makes them"
