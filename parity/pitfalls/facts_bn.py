"""BatchNorm facts: which of a differing momentum / epsilon / moving-variance form a divergence's stage can
show (only where both programs state it), the numbers that decide between momentum and variance form at the
moving statistics, and the epsilon's effect on a BatchNorm's training-mode output recomputed from the traces
(used by :mod:`parity.pitfalls.facts`)."""

from __future__ import annotations

import re

import numpy as np

from parity.pitfalls.base import Context, close, constant_ratio


def _site_values(lines, what: str) -> list:
    out = []
    for line in lines or []:
        m = re.search(rf"{what} ([0-9.eE+-]+)", str(line))
        out.append(float(m.group(1)) if m else None)
    return out


def _site_field(lines, what: str) -> list | None:
    """Each site's ``what`` field ("momentum 0.9" -> "0.9"; "moving variance unbiased" -> "unbiased"), None
    for a site that does not say it; None for the lot where there are no sites (a reader that found none)."""
    if not lines:
        return None
    out = []
    for line in lines:
        m = re.search(rf"(?:^|: |, ){what} ([^,]+)", str(line))
        out.append(m.group(1).strip() if m else None)
    return out


def _stated_differ(a, b, what: str) -> bool:
    """Both programs state ``what`` at every BatchNorm, as many sites each, and the values differ (as sets
    of values: the two readers list their sites in orders of their own). A side that does not state it (no
    sites read, a field unsaid, a value it cannot tell) is no evidence: a name is never given from it."""
    fa, fb = _site_field(a, what), _site_field(b, what)
    if fa is None or fb is None or len(fa) != len(fb) or None in fa or None in fb or "unknown" in fa + fb:
        return False

    def key(v):
        try:
            return (0, float(v), "")
        except ValueError:
            return (1, 0.0, v)

    return sorted(map(key, fa)) != sorted(map(key, fb))


def _bn_name(a, b, ref: dict, port: dict, stage: str | None) -> list:
    """BatchNorm: the momentum and the moving variance's form only move the running statistics (stage
    ``state``; a layer output only in inference mode), the epsilon changes the normalised output. Every
    name the stated differences allow, the numbers decide between them (:func:`_bn_momentum`, :func:`_bn_var`)."""
    mom, eps, var = (_stated_differ(a, b, w) for w in ("momentum", "eps", "moving variance"))
    inference = any(str(side.get("mode", "")).startswith("eval") for side in (ref, port))
    if stage == "state":
        return ["bn-momentum"] * mom + ["bn-running-var"] * var
    # a layer output: the epsilon; the momentum only where a side normalises with its moving statistics (the
    # variance's form never: a module in inference mode does not update them)
    return ["bn-epsilon"] if eps else ["bn-momentum"] if mom and inference else []


def _previous(ctx: Context, trace, name: str):
    """A moving statistic as the step started: the previous step's state, the loaded value at step 0."""
    v = ctx.at(trace, "state", ctx.k - 1).get(name) if ctx.k else trace.initial.get(name)
    return None if v is None else np.asarray(v, float)


def _moved(ctx: Context):
    """(name, previous, reference, port) for each moving statistic that diverges at the step, both sides
    starting the step from the same value."""
    for n, sa, sb in ctx.diverging("state", ndim=1):
        pa, pb = _previous(ctx, ctx.a, n), _previous(ctx, ctx.b, n)
        if pa is not None and pb is not None and pa.shape == sa.shape and close(pa, pb, ctx.tol):
            yield n, pa, sa, sb


def _is_mean(name: str) -> bool:
    return "mean" in name.rsplit("/", 1)[-1].rsplit(".", 1)[-1].lower()


def _mean_of(name: str) -> str:
    head, _, leaf = name.rpartition("/") if "/" in name else name.rpartition(".")
    sep = "/" if "/" in name else "."
    leaf = leaf.replace("variance", "mean").replace("running_var", "running_mean").replace("var", "mean")
    return f"{head}{sep}{leaf}" if head else leaf


def _variance_sites(ctx: Context):
    """(variance name, its moving mean agrees, reference, port) for each moving variance that diverges at the
    step, whose moving mean the traces hold."""
    state = ctx.at(ctx.a, "state")
    agree = ctx.matching("state")
    for n, sa, sb in ctx.diverging("state", ndim=1):
        if _is_mean(n) or _mean_of(n) == n or _mean_of(n) not in state:
            continue
        yield n, _mean_of(n) in agree, sa, sb


def _bn_momentum(ctx: Context, ref: dict, port: dict):
    """A momentum difference weighs every new batch differently: a BatchNorm's moving mean diverges with its
    moving variance. A moving variance that diverges while its moving mean agrees rules it out; increments of
    one ratio over the channels (the catalogue's signature) confirm it."""
    if ctx.first.stage != "state":
        return None
    for n, mean_agrees, _, _ in _variance_sites(ctx):
        if mean_agrees:
            return False, f"{n} diverges while {_mean_of(n)} agrees: a momentum difference moves the mean too"
    for n, p, sa, sb in _moved(ctx):
        r = constant_ratio(sb - p, sa - p, ctx.tol)
        if r is not None and r > 0 and abs(r - 1) > 10 * ctx.tol:
            return True, f"{n}'s increments are in one ratio {r:.6g} (port/reference) over its channels"
    return None


def _momentum_of(ref: dict, name: str):
    """The new batch's weight (1 - TF momentum) at the site ``name`` belongs to, from the reference's facts
    (every site's where they all agree)."""
    lines = ref.get("batchnorm") or []
    vals = _site_values(lines, "momentum")
    i = _bn_site(name, lines)
    m = vals[i] if i is not None else (vals[0] if vals and len(set(vals)) == 1 else None)
    return None if m is None or not 0 <= m < 1 else 1.0 - m


def _bn_var(ctx: Context, ref: dict, port: dict):
    """Biased against unbiased moving variance: a BatchNorm's moving mean agrees while its moving variance
    diverges, larger in every channel on the side that states "unbiased". With one update in the step (new-batch
    weight w), the batch parts (state - previous) / w + previous lie in one ratio n/(n-1) over the channels."""
    if ctx.first.stage != "state":
        return None
    if _is_mean(ctx.first.name):
        return False, f"the first divergence is a moving mean ({ctx.first.name}): the variance's form leaves the means equal"
    fa, fb = _site_field(ref.get("batchnorm"), "moving variance"), _site_field(port.get("batchnorm"), "moving variance")
    unbiased_port = fb is not None and fa is not None and "unbiased" in fb and "unbiased" not in fa
    for n, mean_agrees, sa, sb in _variance_sites(ctx):
        if not mean_agrees:
            continue
        d = sb - sa
        if not (np.all(d > 0) or np.all(d < 0)):
            return False, f"{n} diverges with both signs over its channels (one side unbiased is larger in every one)"
        if bool(np.all(d > 0)) != unbiased_port:
            return False, f"{n} is larger on the side that stores the biased variance"
        said = f"{_mean_of(n)} agrees while {n} is larger in every channel on the {'port' if unbiased_port else 'reference'} (unbiased)"
        w = _momentum_of(ref, n)
        p = _previous(ctx, ctx.a, n)
        if w and p is not None and close(p, _previous(ctx, ctx.b, n), ctx.tol):
            xa, xb = (sa - p) / w + p, (sb - p) / w + p
            ok = np.all(np.abs(xa) > 0)
            r = xb / np.where(ok, xa, 1.0)
            med = float(np.median(r))
            # one update in the step: the ratio is the same n/(n-1) in every channel (to 1% of r - 1, which
            # the rounding of the state divided by w leaves far below), larger than 1 on the unbiased side;
            # several updates in the step (a GAN's phases, two calls of one layer) mix batches: nothing said
            if ok and (med > 1) == unbiased_port and med != 1 and np.max(np.abs(r - med)) <= 1e-2 * abs(med - 1):
                nv = med / (med - 1) if med > 1 else 1 / (1 - med)
                said += (f"; the batch parts (state - previous) / {w:g} + previous are in one ratio {med:.6g} = n/(n-1), "
                         f"n = {nv:.4g} values per channel")
        return True, said
    return None


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
