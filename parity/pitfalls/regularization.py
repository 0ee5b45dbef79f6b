"""Signatures of the weight-decay pitfalls and of optimizer state under a missing gradient
(``parity/cases/catalog/pitfalls_decay.py``).

One shape serves the L2 forms: an L2 term ``lambda/2 * sum(W**2)`` over a set S of parameters
adds ``lambda * W`` to each gradient in S and ``lambda/2 * sum_S |W|^2`` to the loss. When the
loss and the gradients differ by exactly that, for one common lambda, the difference is an L2
term; which S (kernels, or rank-1 parameters: biases and normalisation scales) and what the
ports' settings say tell the forms apart.
"""

from __future__ import annotations

import numpy as np

from parity.pitfalls.base import Context, close, pitfall, ratio
from parity.pitfalls.optimizers import param_of_slot
from parity.pitfalls.requires import ADAM_SLOTS, SLOTS, STEP_BEFORE, slot_kind

__all__ = ["PITFALLS", "l2_difference"]


def l2_difference(c: Context):
    """(lambda, S) if B's loss and gradients = A's + an L2 term lambda/2 |W|^2 over S; else None."""
    la, lb = c.at(c.a, "loss").get("loss"), c.at(c.b, "loss").get("loss")
    ga, gb, w = c.at(c.a, "gradients"), c.at(c.b, "gradients"), c.params_before(c.a)
    if la is None or lb is None or not ga:
        return None
    lams, decayed = [], []
    for n in ga:
        if n not in gb or n not in w or np.shape(ga[n]) != np.shape(gb[n]):
            continue  # an extra tensor is no evidence either way
        if close(ga[n], gb[n], c.tol):
            continue
        r = ratio(np.asarray(gb[n], float) - np.asarray(ga[n], float), w[n], c.tol)
        if r is None:
            return None  # a gradient differs, and not by lambda * W: something else
        lams.append(r)
        decayed.append(n)
    if not lams or np.ptp(lams) > 10 * c.tol * max(abs(x) for x in lams):
        return None
    lam = float(np.median(lams))
    pred = 0.5 * lam * sum(float(np.sum(np.asarray(w[n], float) ** 2)) for n in decayed)
    if abs((float(lb) - float(la)) - pred) > 10 * c.tol * max(abs(pred), abs(float(la))):
        return None
    return lam, decayed


def _decay_setting(c: Context, trace):
    wd = c.settings(trace).get("weight_decay")
    return wd if isinstance(wd, dict) else None


def _check_l2_coefficient(c: Context):
    hit = l2_difference(c)
    if hit is None:
        return None
    lam, decayed = hit
    w = c.params_before(c.a)
    if all(np.ndim(w[n]) <= 1 for n in decayed):
        return None  # only rank-1 parameters: decay-on-bias's signature
    sa, sb = _decay_setting(c, c.a), _decay_setting(c, c.b)
    said, score = "", 0.7
    if sa and isinstance(sa.get("coefficient"), (int, float)):
        ratio = (sa["coefficient"] + lam) / sa["coefficient"]
        said = f"; A's own coefficient is {sa['coefficient']:g}, so B's term is {ratio:.4g}x A's"
        score = 0.95 if abs(ratio - 2) <= 10 * c.tol or abs(ratio - 0.5) <= 10 * c.tol else 0.7
    elif sb and isinstance(sb.get("coefficient"), (int, float)):
        said = f"; B reports coefficient {sb['coefficient']:g}"
    return score, (
        f"loss differs by {lam / 2:.4g} x sum|W|^2 and the gradients of {', '.join(decayed)} by {lam:.4g} x W (one lambda for "
        f"all){said}: the L2 term has another coefficient; tf.nn.l2_loss(W) is sum(W**2)/2 (torch: 0.5 * wd * W.pow(2).sum(), "
        "or SGD weight_decay=wd)"
    )


def _check_decay_on_bias(c: Context):
    hit = l2_difference(c)
    if hit is None:
        return None
    lam, decayed = hit
    w = c.params_before(c.a)
    if not all(np.ndim(w[n]) <= 1 for n in decayed):
        return None
    who = "B" if lam > 0 else "A"
    return 0.9, (
        f"only the rank-1 parameters ({', '.join(decayed)}) differ, by {abs(lam):.4g} x their value in the gradients and "
        f"{abs(lam) / 2:.4g} x sum of their squares in the loss: {who} decays the biases / normalisation parameters, the other "
        "the kernels only (torch weight_decay applies to every parameter of its group)"
    )


def _check_coupled_decay(c: Context):
    if c.semantic("gradients") or c.semantic("loss"):
        return None
    sa, sb = c.at(c.a, "slots"), c.at(c.b, "slots")
    w = c.params_before(c.a)
    params = c.a.initial
    ratios, names = [], []
    for s in sa:
        if s not in sb or slot_kind(s, params) != "m":
            continue
        n = param_of_slot(s, params)
        if n not in w:
            continue
        prev_a, prev_b = c.at(c.a, "slots", c.k - 1).get(s), c.at(c.b, "slots", c.k - 1).get(s)
        if c.k > 0 and not close(prev_a, prev_b, c.tol):
            continue
        d = np.asarray(sb[s], float) - np.asarray(sa[s], float)
        if close(sa[s], sb[s], c.tol):
            continue
        r = ratio(d, w[n], c.tol)
        if r is None:
            return None
        ratios.append(r)
        names.append(n)
    if not ratios or np.ptp(ratios) > 10 * c.tol * max(abs(x) for x in ratios) or not all(np.sign(ratios) == np.sign(ratios[0])):
        return None
    r = float(np.median(ratios))
    who, other = ("B", "A") if r > 0 else ("A", "B")
    return 0.95, (
        f"gradients match, but {who}'s first moments of {', '.join(names)} exceed {other}'s by {abs(r):.4g} x the weights (one "
        f"factor = (1 - beta1) x weight decay): {who} adds the decay to the gradient inside Adam (coupled L2: torch "
        f"Adam(weight_decay=), Adam + L2 loss), {other} decouples it (AdamW / Keras weight_decay: w -= lr * wd * w outside the moments)"
    )


def _check_none_grad(c: Context):
    ga, gb = c.at(c.a, "gradients"), c.at(c.b, "gradients")
    scale = max((np.abs(np.asarray(g, float)).max() for g in ga.values()), default=0.0)
    for n, _, _ in c.diverging("parameters"):
        if n not in ga or n not in gb:
            continue
        # no gradient this step in either port (dense zeros in one, None reported as zeros in the other)
        if max(np.abs(np.asarray(ga[n], float)).max(), np.abs(np.asarray(gb[n], float)).max()) > c.tol * scale:
            continue
        ua, ub = c.updates(c.a, n), c.updates(c.b, n)
        if ua is None or ub is None:
            continue
        ma, mb = np.abs(ua).max(), np.abs(ub).max()
        if max(ma, mb) <= 0 or min(ma, mb) > c.tol * max(ma, mb):
            continue
        skipped, moved = ("B", "A") if mb < ma else ("A", "B")
        skipped_trace = c.b if skipped == "B" else c.a
        kept = [s for s, v in c.at(skipped_trace, "slots").items() if param_of_slot(s, c.a.initial) == n
                and close(v, c.at(skipped_trace, "slots", c.k - 1).get(s), c.tol)]
        slots = f"; its slots ({', '.join(kept)}) unchanged too" if kept else ""
        return 0.95, (
            f"{n} gets no gradient at step {c.k} in either port; {moved} still moves it by {max(ma, mb):.3g} (its optimizer "
            f"decays the moments and steps on the momentum) while {skipped} leaves it untouched{slots}: {skipped} skips a parameter "
            "whose .grad is None (torch zero_grad(set_to_none=True)); TF feeds dense zeros. Fill None gradients with zeros"
        )
    return None


PITFALLS = [
    pitfall("l2-loss-half", "L2 term coefficient: tf.nn.l2_loss(W) = sum(W**2)/2", "weight decay", "P13", ["regularization", "loss"],
            "loss differs by lambda/2 sum|W|^2 and the kernels' gradients by lambda W, one lambda (2x A's own coefficient where reported)",
            _check_l2_coefficient,
            explanation="TF1 code adds wd * tf.nn.l2_loss(W) to the loss, and l2_loss is half the sum of squares: the gradient of the term is wd * W. A port writing wd * W.pow(2).sum() decays twice as hard; torch's SGD(weight_decay=wd) adds wd * W to the gradient (the same as l2_loss) but puts the term in neither the loss nor .grad.",
            tf="loss + wd * tf.nn.l2_loss(W) = loss + wd/2 * sum(W**2);  grad += wd * W", torch="loss + 0.5 * wd * W.pow(2).sum()  (or SGD(weight_decay=wd): grad += wd * W inside step())",
            fix="0.5 * wd * W.pow(2).sum() on the same parameters (or weight_decay=wd on a parameter group of the kernels)."),
    pitfall("decay-on-bias", "Weight decay on biases and normalisation parameters, or not", "weight decay", "P13", ["regularization", "loss"],
            "the loss and only the rank-1 parameters' gradients differ, by lambda/2 sum b^2 and lambda b",
            _check_decay_on_bias,
            explanation="TF1 models usually sum l2_loss over the kernels only (or filter 'bias' / BatchNorm variables out); torch's weight_decay decays every parameter in the optimizer's group, biases and BatchNorm gamma/beta included, and an L2 term over model.parameters() does the same.",
            tf="wd * tf.add_n([tf.nn.l2_loss(v) for v in kernels])", torch="param groups: [{'params': kernels, 'weight_decay': wd}, {'params': biases_and_norms, 'weight_decay': 0}]",
            fix="Two parameter groups (kernels with decay, biases and normalisation parameters without), or the L2 term over the kernels only."),
    pitfall("adamw-decoupled", "AdamW / Keras weight_decay (decoupled) vs Adam + L2 (coupled)", "weight decay", "P14", ["parameters"],
            "gradients match; the first moments differ by one factor times the weights ((1 - beta1) x decay)",
            _check_coupled_decay, requires=[ADAM_SLOTS],
            explanation="Keras AdamW and Keras 3 optimizers' weight_decay shrink the weights by lr * wd * w outside Adam's moments (decoupled, Loshchilov & Hutter); torch Adam(weight_decay=wd) and an L2 term in the loss add wd * w to the gradient, which then goes through m and v and is rescaled by 1/sqrt(v). The updates differ from the first step.",
            tf="keras.optimizers.AdamW(weight_decay=wd): w -= lr * wd * w; then the Adam step on g", torch="torch.optim.AdamW(weight_decay=wd): p *= 1 - lr * wd; then the Adam step on g",
            fix="torch.optim.AdamW for Keras AdamW / weight_decay; Adam(weight_decay) only for TF code with L2 in the loss."),
    pitfall("none-grad-skip", "Optimizer state when a parameter gets no gradient at a step (None vs zeros)", "optimizer", "P10", ["parameters"],
            "a parameter with no gradient at a step moves in one port (momentum) and not at all in the other, slots untouched",
            _check_none_grad, requires=[SLOTS, STEP_BEFORE],
            explanation="A head, embedding row or branch the loss does not reach at some step: TF's graph gives it a dense zero gradient, so Adam/RMSprop decay its moments and keep moving it on its momentum. torch's zero_grad() sets .grad to None, and every torch optimizer skips a parameter whose .grad is None: no update, no decay of the slots, no step count.",
            tf="apply_gradients with zeros: m = beta1 m, v = beta2 v, w -= lr_t m / (sqrt(v) + eps)", torch="for p in params: if p.grad is None: continue",
            fix="After backward(), set p.grad = torch.zeros_like(p) where it is None (or zero_grad(set_to_none=False) and keep every parameter in the graph)."),
]
