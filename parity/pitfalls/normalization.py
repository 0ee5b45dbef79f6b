"""Signatures of the normalisation and train/inference-mode pitfalls (``parity/cases/catalog/pitfalls_bn.py``,
the LayerNorm case of ``pitfalls_layers.py``)."""

from __future__ import annotations

import numpy as np

from parity.pitfalls.base import Context, close, constant_ratio, pitfall, predicts
from parity.pitfalls.facts_bn import _is_mean, _mean_of, _site_field, _site_values
from parity.pitfalls.requires import BN_STATE, DROPOUT, LAYERNORM, is_dropout_of, normalised

__all__ = ["PITFALLS"]


def _previous_state(c: Context, trace, name: str):
    return c.at(trace, "state", c.k - 1).get(name) if c.k else c.params_before(trace).get(name, trace.initial.get(name))


def _tf_momentum(settings: dict):
    m = settings.get("bn_momentum")
    if not isinstance(m, (int, float)):
        return None
    return 1.0 - m if settings.get("bn_momentum_convention") == "torch" else float(m)


def _check_bn_momentum(c: Context):
    for n, sa, sb in c.diverging("state", ndim=1):
        pa, pb = _previous_state(c, c.a, n), _previous_state(c, c.b, n)
        if pa is None or pb is None or not close(pa, pb, c.tol):
            continue
        r = constant_ratio(sb - np.asarray(pa, float), sa - np.asarray(pa, float), c.tol)
        if r is None or r <= 0 or abs(r - 1) <= 10 * c.tol:
            continue
        ma, mb = _tf_momentum(c.settings(c.a)), _tf_momentum(c.settings(c.b))
        said = ""
        if ma is not None and mb is not None and ma < 1 and mb < 1:
            pred = (1 - mb) / (1 - ma)  # the weight of the new batch, B over A, from the ports' own settings
            if abs(r - pred) > 10 * c.tol * max(abs(pred), 1):
                continue
            said = f" = (1 - {mb:g}) / (1 - {ma:g}) from the ports' settings (TF convention)"
        return 0.95, (
            f"{n} increment ratio {r:.4g} (B/A){said}, the same for every channel, while the forward pass, loss and "
            f"gradients match: the moving-average weight of the new batch differs (TF momentum 0.99 = torch momentum "
            f"0.01); torch momentum = 1 - TF momentum"
        )
    return None


def _check_bn_update_ops(c: Context):
    for n, sa, sb in c.diverging("state", ndim=1):
        prev_a, prev_b = _previous_state(c, c.a, n), _previous_state(c, c.b, n)
        if prev_a is None or prev_b is None:
            continue
        move_a, move_b = np.max(np.abs(sa - prev_a)), np.max(np.abs(sb - prev_b))
        # "never changes": moved by less than the run's tolerance times the other side's move
        if min(move_a, move_b) <= c.tol * max(move_a, move_b) and max(move_a, move_b) > 0:
            frozen_b = move_b < move_a
            who, other = ("B", "A") if frozen_b else ("A", "B")
            return 0.95, (
                f"{who}'s {n} never changes (still {np.ravel(sb if frozen_b else sa)[:3]} after step {c.k}) while {other}'s "
                f"moves by up to {max(move_a, move_b):.3g}: the moving-statistics update ops are not run "
                "(TF1 UPDATE_OPS without control_dependencies)"
            )
    return None


def _check_bn_running_var(c: Context):
    matching = c.matching("state")
    div = c.diverging("state", ndim=1)
    if not matching or not div:
        return None
    state = c.at(c.a, "state")
    for n, sa, sb in div:
        mean = _mean_of(n)
        if _is_mean(n) or (mean != n and mean in state and mean not in matching):
            continue  # a moving mean, or a variance whose mean diverges too: not the variance's form alone
        d = sb - sa
        if np.all(d > 0) or np.all(d < 0):
            side = "B" if np.all(d > 0) else "A"
            return 0.85, (
                f"{', '.join(matching)} match while {n} differs by {np.max(np.abs(d)):.3g}, {side} larger in every channel: "
                f"{side} stores the unbiased batch variance n/(n-1)*var in its moving average (torch, TF fused BN), the "
                f"other the biased one (Keras 3, non-fused TF BN)"
            )
    return None


def _shared_side(c: Context):
    """(trace stating two or more BatchNorm updates in one step from the statistics the step read, the other
    trace, its TF momentum, its variance form) or None: a program's ``batchnorm.shared`` fact (TF1), a catalogue
    port's ``bn_shared_calls`` setting; exactly one side must state it."""
    stated = []
    for side, trace in (("reference", c.a), ("port", c.b)):
        facts = c.facts.get(side) or {}
        settings = c.settings(trace)
        if facts.get("batchnorm.shared") or (settings.get("bn_shared_calls") or 0) >= 2:
            moms = _site_values(facts.get("batchnorm"), "momentum")
            mom = _tf_momentum(settings)
            mom = mom if mom is not None else next((m for m in moms if m is not None), None)
            form = settings.get("bn_running_var") or next(
                (f for f in (_site_field(facts.get("batchnorm"), "moving variance") or []) if f), None)
            stated.append((trace, c.b if trace is c.a else c.a, mom, form))
    return stated[0] if len(stated) == 1 else None


def _channel_stats(c: Context):
    """(name, per-channel mean, unbiased variance, biased variance) of each recorded layer output and input of
    the step (channel last), the candidates for a BatchNorm's input."""
    for stage in ("forward", "inputs"):
        for n, y in c.at(c.a, stage).items():
            y = np.asarray(y, float)
            if y.ndim >= 2 and y.shape[0] >= 2 and np.issubdtype(y.dtype, np.floating):
                flat = y.reshape(-1, y.shape[-1])
                yield n, flat.mean(0), flat.var(0, ddof=1), flat.var(0)


def _check_bn_shared_updates(c: Context):
    found = _shared_side(c)
    if found is None or found[2] is None or not 0 < found[2] < 1:
        return None
    stale, chained, d, form = found
    state = c.at(c.a, "state")
    diverging = {n for n, _, _ in c.diverging("state", ndim=1)}
    for n in [m for m in state if _is_mean(m)]:
        var_name = next((v for v in state if v != n and _mean_of(v) == n), None)
        if var_name is None or not ({n, var_name} & diverging):
            continue
        prev = {k: _previous_state(c, stale, k) for k in (n, var_name)}
        if any(v is None or not close(v, _previous_state(c, chained, k), c.tol) for k, v in prev.items()):
            continue
        delta = {k: np.asarray(c.at(stale, "state")[k], float) - np.asarray(c.at(chained, "state")[k], float)
                 for k in (n, var_name)}
        for x, mean, var1, var0 in _channel_stats(c):
            if mean.shape != delta[n].shape:
                continue
            for vname, var in (("unbiased", var1), ("biased", var0)):
                if form not in (None, vname):
                    continue
                batch = {n: mean, var_name: var}
                for j in range(6):  # the first call's update, then j single updates later in the step (a GAN's G phases)
                    w = d ** j * (1 - d) ** 2
                    # each statistic that diverges must be the prediction (one that agrees within the run's bound,
                    # a moving mean under float32 noise, says nothing)
                    if all(predicts(delta[k], w * (batch[k] - np.asarray(prev[k], float)), c.tol)
                           for k in (n, var_name) if k in diverging):
                        who = "A" if stale is c.a else "B"
                        later = f" times {d:g}^{j} ({j} single update(s) later in the step)" if j else ""
                        told = " and ".join(k for k in (n, var_name) if k in diverging)
                        return 0.95, (
                            f"{told}: {who} - other = (1 - {d:g})^2 (batch - previous){later} in every channel, the batch "
                            f"being {x}'s per-channel mean and {vname} variance: {who} (TF1, a BatchNorm called twice in "
                            f"one step with its updates in the call) subtracts (1 - {d:g})(moving - batch_i) for each call "
                            "from the statistics the step read; the other chains them (torch: the second call updates "
                            "the first's result)")
    return None


def _check_training_mode(c: Context, framework_prefix: str, name: str):
    params = c.params_before(c.a)
    for n, ya, yb in c.diverging("forward"):
        if ya.ndim < 2 or ya.shape[-1] < 2:
            continue
        width = ya.shape[-1]
        vecs = [np.asarray(v, float) for v in params.values() if np.shape(v) == (width,)]
        affines = [(g, b) for i, g in enumerate(vecs) for j, b in enumerate(vecs) if i != j] + [(np.ones(width), np.zeros(width))]
        na = any(normalised(ya, 0, c.tol, g, b) for g, b in affines)
        nb = any(normalised(yb, 0, c.tol, g, b) for g, b in affines)
        if na == nb:
            continue
        infer = c.b if na else c.a
        fw = infer.manifest.get("framework", "?")
        score = 0.9 if fw.startswith(framework_prefix) else 0.4
        return score, (
            f"{n}: {'A' if na else 'B'}'s output is batch-normalised (per-channel mean 0, variance <= 1) while "
            f"{infer.port}'s is not: {infer.port} ({fw}) runs BatchNorm in inference mode; "
            + ("feed the learning phase / pass training=True" if name == "learning-phase" else "call model.train() before training steps")
        )
    return None


def _check_dropout_eval(c: Context):
    """One side applies dropout (zeros, kept values x 1/keep), the other passes its input through unchanged."""
    fa, fb = c.at(c.a, "forward"), c.at(c.b, "forward")
    for n, ya, yb in c.diverging("forward"):
        for side, y_drop, y_same, fwd in (("B", ya, yb, fa), ("A", yb, ya, fb)):
            # the eval-mode side's output equals an input of the layer that the other side dropped out
            for xn, x in fwd.items():
                if xn == n or np.shape(x) != y_drop.shape:
                    continue
                if is_dropout_of(x, y_drop, c.tol) and close(y_same, x, c.tol):
                    from parity.pitfalls.sites import drops_elsewhere

                    if drops_elsewhere(c, c.b if side == "B" else c.a, n):
                        continue  # that side drops out at another site: one site missing, not inference mode
                    keep = float(np.mean(y_drop[np.asarray(x) != 0] != 0))
                    fw = (c.b if side == "B" else c.a).manifest.get("framework", "?")
                    return (0.9 if fw.startswith("torch") else 0.6), (
                        f"{n}: {side}'s output equals its input {xn} unchanged, while the other's is {xn} with "
                        f"{1 - keep:.0%} of the entries zeroed and the rest scaled: {side} ({fw}) runs dropout in "
                        "evaluation mode (torch model.eval() / training=False) during training"
                    )
    return None


def _affine_slopes(ya, yb, axis: int, tol: float):
    """Per-slice (axis 0: per column; 1: per row) slope of y_b against y_a, if exactly affine."""
    ya2, yb2 = np.asarray(ya, float).reshape(-1, ya.shape[-1]), np.asarray(yb, float).reshape(-1, yb.shape[-1])
    if axis == 1:
        ya2, yb2 = ya2.T, yb2.T
    if ya2.shape[0] < 3 or ya2.shape[1] < 2:
        return None
    slopes = []
    for j in range(ya2.shape[1]):
        xa, xb = ya2[:, j], yb2[:, j]
        A = np.stack([xa, np.ones_like(xa)], 1)
        coef, *_ = np.linalg.lstsq(A, xb, rcond=None)
        if np.max(np.abs(A @ coef - xb)) > tol * 10 * max(np.abs(xb).max(), 1e-12):
            return None
        if abs(xa.mean() - xb.mean()) > tol * 10 * max(np.abs(xb).max(), 1e-12):
            return None  # both centred the same way: only the scale differs
        slopes.append(coef[0])
    slopes = np.array(slopes)
    # an epsilon changes the scale by (eps_a - eps_b) / (2 var): well above the run's tolerance
    return slopes if np.max(np.abs(slopes - 1)) > 100 * tol else None


def _check_norm_epsilon(c: Context, axis: int, what: str):
    for n, ya, yb in c.diverging("forward", ndim=2):
        # the layer's output must itself be normalised (per channel for BN, per row for LayerNorm)
        if not normalised(ya, axis, c.tol) and not _normalised_affine(c, ya, axis):
            continue
        s = _affine_slopes(ya, yb, axis, c.tol)
        if s is not None and np.all(s > 0):
            key = "bn_epsilon" if axis == 0 else "layernorm_epsilon"
            ea, eb = c.settings(c.a).get(key), c.settings(c.b).get(key)
            said = f" (settings: {ea:g} vs {eb:g})" if isinstance(ea, float) and isinstance(eb, float) else ""
            return 0.85, (
                f"{n}: B = s*A per {'channel' if axis == 0 else 'row'} with the same centre, slopes {s.min():.4g}..{s.max():.4g} "
                f"= sqrt((var + eps_A)/(var + eps_B)): the {what} epsilon differs{said} (TF/Keras 1e-3 vs torch 1e-5)"
            )
    return None


def _normalised_affine(c: Context, y, axis: int) -> bool:
    width = y.shape[-1]
    vecs = [np.asarray(v, float) for v in c.params_before(c.a).values() if np.shape(v) == (width,)]
    for i, g in enumerate(vecs):
        for j, b in enumerate(vecs):
            if i == j:
                continue
            if axis == 0 and normalised(y, 0, c.tol, g, b):
                return True
            if axis == 1 and normalised((y - b) / np.where(np.abs(g) < 1e-12, 1.0, g), 1, c.tol):
                return True
    return False


PITFALLS = [
    pitfall("bn-momentum", "BatchNorm momentum convention (0.99 vs 0.1, not 1 - m)", "batchnorm", "P01", ["state"],
            "only the moving statistics diverge, after the first training step; their increments differ by one constant ratio "
            "(the ratio the ports' momentum settings predict, where they report them)",
            _check_bn_momentum, requires=[BN_STATE],
            explanation="TF's momentum weighs the old moving average, torch's the new batch. Copying 0.99 literally (or keeping torch's default 0.1) makes the running statistics move 99x (10x) faster; train-mode outputs still match, eval outputs do not.",
            tf="moving = moving * momentum + batch * (1 - momentum)   (Keras / tf.layers default momentum 0.99)",
            torch="running = (1 - momentum) * running + momentum * batch   (nn.BatchNorm default momentum 0.1)",
            fix="torch momentum = 1 - TF momentum (0.99 -> 0.01)."),
    pitfall("bn-epsilon", "BatchNorm epsilon (1e-3 vs 1e-5)", "batchnorm", "P02", ["forward"],
            "the BN output (normalised per channel) differs at step 0 by a per-channel scale with the same centre",
            lambda c: _check_norm_epsilon(c, 0, "BatchNorm"), requires=[BN_STATE],
            explanation="Keras and TF1 BN add 1e-3 to the variance, torch 1e-5. The relative effect is about (eps_tf - eps_torch)/(2 var): invisible on unit-variance features, O(1) on low-variance ones.",
            tf="y = gamma (x - mean) / sqrt(var + 1e-3) + beta", torch="y = gamma (x - mean) / sqrt(var + 1e-5) + beta",
            fix="nn.BatchNorm*d(eps=1e-3) (the TF layer's epsilon)."),
    pitfall("bn-running-var", "Moving variance biased (Keras 3, non-fused TF) vs unbiased (torch, TF fused)", "batchnorm", "P03", ["state"],
            "moving mean matches, moving variance differs with one sign in every channel",
            _check_bn_running_var, requires=[BN_STATE],
            explanation="Both normalise with the biased batch variance, but torch (and TF's fused kernel) store the Bessel-corrected n/(n-1) variance in the running average; Keras 3 and non-fused TF BN store the biased one. Large for small batches.",
            tf="moving_var = m * moving_var + (1 - m) * var_biased   (Keras 3; tf.layers on 2-D inputs)",
            torch="running_var = (1 - mom) * running_var + mom * var * n / (n - 1)",
            fix="Against a biased reference update the running statistics yourself (F.batch_norm without running stats, then running_var.mul_(1 - mom).add_(mom * x.var(0, unbiased=False)))."),
    pitfall("bn-update-ops", "TF1 UPDATE_OPS not run", "batchnorm", "P05", ["state"],
            "the TF moving statistics never leave their initial values (0 / 1) while the other port's move",
            _check_bn_update_ops, requires=[BN_STATE],
            explanation="tf.compat.v1.layers.batch_normalization puts its moving-average updates in tf.GraphKeys.UPDATE_OPS; a train op built without a control dependency on them never runs them, so inference later uses mean 0 / variance 1.",
            tf="with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)): train_op = opt.minimize(loss)",
            torch="nn.BatchNorm updates its running buffers inside forward() in train() mode",
            fix="Wrap the train op in control_dependencies(UPDATE_OPS) (Keras fit() does it for you)."),
    pitfall("bn-shared-updates", "BatchNorm called twice in one TF1 step, its updates in the call (GAN D(real), D(fake))",
            "batchnorm", "P05", ["state"],
            "one side states a BatchNorm updated by two calls in one step (TF1 contrib batch_norm(updates_collections=None),"
            " a GAN's D on real and generated images); the moving statistics differ by (1 - momentum)^2 (batch - previous)"
            " of the first call, mean and variance alike (times momentum per later single update)",
            _check_bn_shared_updates, requires=[BN_STATE],
            explanation="TF1's assign_moving_average subtracts (1 - m)(moving - batch) from a read of the moving statistic that "
            "the graph does not order after the other call's update (D(real) and D(fake) in one sess.run). Read first, the "
            "step stores moving - (1-m)(moving - a) - (1-m)(moving - b): what TF 2.21 computes for every statistic of "
            "corpus 02's float64 graph, while its float32 graph chains some, depending on the threads (each the same in "
            "repeated runs of one session); parity runs every read first, so the reference is the same in every run and "
            "dtype (a note says so). A torch module called twice chains them: m1 = moving - (1-m)(moving - a), then "
            "m1 - (1-m)(m1 - b). Training-mode outputs, losses and gradients agree; only the running statistics (and "
            "eval-mode outputs) differ.",
            tf="moving -= (1-m)(moving - a) + (1-m)(moving - b)   (both from the value the step read)",
            torch="running = (1-mom) running + mom a; then running = (1-mom) running + mom b   (chained)",
            fix="Give the second call fresh buffers holding the step's statistics (bn.running_mean = start.clone(), ...); after "
            "backward add its move to the first call's buffers and put those back (examples: torch_impl/pitfalls/bn_shared.py)."),
    pitfall("learning-phase", "Learning phase / training flag not set in TF (TF1 Keras, tf.layers training=, TF2 model(x))", "mode", "P04", ["forward"],
            "at step 0 the TF port's BN output is not batch-normalised (it used the moving statistics)",
            lambda c: _check_training_mode(c, "tf", "learning-phase"), requires=[BN_STATE],
            explanation="TF1 tf.layers.batch_normalization/dropout default to training=False; Keras's learning phase is placeholder_with_default(False) in graph mode; a TF2 model(x) call is training=False unless passed training=True. The port then normalises with the moving statistics and skips dropout.",
            tf="y = (x - moving_mean) / sqrt(moving_var + eps)  when training is not fed / passed",
            torch="y = (x - batch_mean) / sqrt(batch_var + eps)  in train() mode",
            fix="Feed K.learning_phase(): True / pass training=is_training / model(x, training=True) in custom loops."),
    pitfall("torch-eval-mode", "torch model left in eval() during training", "mode", "P04", ["forward"],
            "at step 0 the torch port's BN output is not batch-normalised (it used the running statistics)",
            lambda c: _check_training_mode(c, "torch", "torch-eval-mode"), requires=[BN_STATE],
            explanation="torch's mode is a module flag: after model.eval() (an evaluation pass, a checkpoint test) BatchNorm uses running statistics and dropout is off until model.train(). requires_grad_(False) does not change the mode.",
            tf="training=True per call (Keras fit, tf.layers training=is_training)", torch="model.train() / model.eval() switch BN and dropout",
            fix="Call model.train() before each training phase."),
    pitfall("dropout-eval-mode", "Dropout off during training (torch eval(), TF training=False), no BatchNorm to show it", "mode", "P04", ["forward"],
            "one port's dropout output equals its input unchanged while the other's zeroes entries and scales the rest",
            _check_dropout_eval, requires=[DROPOUT],
            explanation="A model without BatchNorm left in eval() (or a TF layer called with training=False) trains without dropout: nothing else changes, the forward pass just skips the mask and the 1/keep scaling. Loss curves look plausible; the regularisation is gone.",
            tf="tf.nn.dropout(x, rate) / Dropout(rate)(x, training=True)", torch="nn.Dropout(p) is the identity in eval() mode",
            fix="model.train() before the training steps (and training=True in TF custom loops)."),
    pitfall("layernorm-epsilon", "LayerNorm epsilon (Keras 1e-3 vs torch 1e-5)", "normalisation", "P40", ["forward"],
            "the LayerNorm output (normalised per row) differs by a per-row scale with the same centre",
            lambda c: _check_norm_epsilon(c, 1, "LayerNorm"), requires=[LAYERNORM],
            explanation="Keras LayerNormalization uses 1e-3 (BERT's TF code 1e-12), torch nn.LayerNorm 1e-5: large for low-variance rows.",
            tf="(x - mean) / sqrt(var + 1e-3) * gamma + beta", torch="nn.LayerNorm(eps=1e-5)", fix="nn.LayerNorm(eps=<the TF epsilon>)."),
]
