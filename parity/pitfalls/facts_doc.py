"""The section of docs/pitfalls.md on names given from the programs' facts (``parity diff``), generated
from :data:`parity.pitfalls.facts.FACT_NAMES`."""

from __future__ import annotations

from parity.pitfalls.facts import FACT_NAMES

__all__ = ["facts_markdown"]


def facts_markdown() -> list[str]:
    """The section of docs/pitfalls.md on names given from the programs' facts (``parity diff``)."""
    out = [
        "## Names from the programs' facts (`parity diff`)",
        "",
        "`parity diff` reads both programs' facts from their own objects before any number (optimizer and every",
        "hyper-parameter in one convention, weight decay, schedule, clipping, dropout sites, BatchNorm, mode, loss;",
        "docs/own-model.md). A divergence is named from the facts first: a fact the two programs state differently,",
        "whose effect shows at the first divergence's stage, gives its name; where its effect can be recomputed it",
        "is (an optimizer fact: each side's step-0 update from its own recorded gradient with its own facts, where",
        "the two predictions can be told apart; a loss summed vs averaged: the step-0 loss ratio is the batch size;",
        "one side in inference mode: the first divergence is a layer output at step 0), and a prediction the numbers",
        "contradict gives no name. Then the catalogue's signatures below, only those the facts allow: no optimizer",
        "pitfall for another optimizer class (never `adam-epsilon` for Adadelta), no `dropout-keep-prob` when the",
        "rates match, no BatchNorm momentum / epsilon pitfall when those match, no eval-mode pitfall when both train",
        "in training mode (or for the side that is not in inference mode), no `loss-reduction` when both reduce",
        "alike, no weight-decay form pitfall when one side has no decay at all; Adam's betas only for Adam, rho only",
        "for Adadelta / RMSprop, an Adadelta epsilon or learning-rate default only for Adadelta, `rmsprop-centered` only",
        "for RMSprop; `optimizer-class`, `adam-betas`, `rmsprop-centered`, `weight-decay`, `loss-on-probabilities`,",
        "`optimizer-rho`, `dropout-kind` and `dropout-site-missing` never when both programs state that fact alike.",
        "Else \"unknown\", with the first",
        "divergence and the facts that differ. A name from facts that is not in the catalogue has no",
        "`parity explain` entry: its evidence line says which fact differs and how.",
        "",
        "| fact | name given | first effect in |",
        "|---|---|---|",
    ]
    for key, (name, stages) in FACT_NAMES.items():
        out.append(f"| `{key}` | `{name}` | {', '.join(s.replace('_', ' ') for s in stages)} |")
    out += [
        "",
        "Refined by what differs: `eps`/`eps.form` of two Adam-family optimizers is `adam-epsilon`; the initial",
        "accumulator is `rmsprop-init` / `adagrad-init`; `momentum.form` (Keras' v = mu v - lr g vs torch's and",
        "TF1's v = mu v + g) is `sgd-momentum-lr-change` only when a rate changes (else it trains the same); the",
        "weight-decay form of Adam is `adamw-decoupled`; a scope with biases is `decay-on-bias`; one side in",
        "inference mode is `torch-eval-mode` / `learning-phase` with a BatchNorm, else `dropout-eval-mode`;",
        "dropout sites differ in number (`dropout-site-missing`), kind (`dropout-kind`: `Dropout2d` vs `Dropout`)",
        "or rate (`dropout-keep-prob`); `loss.on` (softmax + `nll_loss`, a softmax twice) is `loss-on-probabilities`;",
        "`lr` of two Adadelta optimizers, 1.0 vs 0.001, is `adadelta-lr-default` (Keras 2.3 vs tf_keras defaults).",
        "BatchNorm momentum and epsilon are told apart by the stage: the momentum only moves the running statistics",
        "(`bn-momentum` at the `state` stage, or a layer output in inference mode), the epsilon changes a training-mode",
        "output (`bn-epsilon`, checked at the BatchNorm's own output: per channel the port's centred output is the",
        "reference's times sqrt((var + eps_ref) / (var + eps_port)), var read back from the output and gamma).",
        "Each BatchNorm fact also says how its moving variance is stored (`moving variance unbiased`: torch, TF's fused",
        "kernel, n/(n-1) times the batch variance; `biased`: Keras 3, non-fused TF1 / tf_keras). A BatchNorm fact is",
        "compared only where both programs state it for as many sites (a reader that found no BatchNorm, or a field",
        "one side leaves unsaid, gives no name). At the `state` stage the numbers decide between `bn-momentum` and",
        "`bn-running-var`: a momentum difference moves a BatchNorm's moving mean with its variance, the variance's form",
        "leaves the mean equal and makes the unbiased side's variance larger in every channel (with one update in the",
        "step, the batch parts (state - previous) / w + previous lie in one ratio n/(n-1), n the values per channel).",
        "`lr` / `lr.schedule` give no name while the learning-rate stage agrees up to the divergence; `clip` is",
        "checked: processed gradients that differ over raw gradients that agree are the clipping (ranked first).",
        "`sgd-dampening` is never proposed when both programs' dampening facts are equal.",
        "Another optimizer class shows from the learning-rate stage on: where the rate differs too, `optimizer-class`",
        "comes first and `learning-rate` second, each checked by the step-0 update recomputed with each side's own",
        "optimizer. A dropout site only the port has is in neither the reference's call order nor the port's recorded",
        "outputs (it has no partner; parity drives it with a mask of its own): it names a first divergence at step 0",
        "(forward or loss) only, unverified (score 0.8: the mask is parity's draw), never a later step's.",
        "A torch model whose own forward returns `F.log_softmax(...)` trained with `nll_loss` (or cross-entropy) is",
        "read as softmax cross-entropy on logits, as TF's `softmax_cross_entropy_with_logits` (no difference).",
        "Catalogue signatures may read the facts too: `clip-norm-sparse-rows` takes the clip threshold from both",
        "programs' clip facts (`global norm 5`), or from one where the other clips by hand (`unknown`), and tests it on",
        "the numbers (the dense side's factor must be c / its dense norm: its own threshold recovered equals c).",
        "",
        "Slots: TF1 Adadelta's `accum` / `accum_update`, torch's `square_avg` / `acc_delta` and Keras'",
        "`accumulated_grad` / `accumulated_delta_var` are recorded by the capture adapters' optimizer modules",
        "under canonical names; where the two sides name one slot differently the comparison reports it as a",
        "structure difference (only one side reports it), never as agreement.",
    ]
    return out
