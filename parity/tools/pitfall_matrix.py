"""The confusion matrix: every wrong port of the catalogue against every signature.

Rows are the catalogue's wrong ports (one per pitfall and dtype), columns the signatures the
diagnosis proposed for them, first name marked. The matrix must be diagonal: each wrong port
named first by its own pitfall, and no signature naming another pitfall's wrong port first.

    python -m parity.tools.pitfall_matrix            # run the catalogue, print the matrix and the precision
    python -m parity.tools.pitfall_matrix --write    # also write the precision into docs/pitfalls.md
    python -m parity.tools.pitfall_matrix --beyond   # also the mistakes written outside the catalogue
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

from parity.tools.pitfall_check import PitfallResult, run_catalogue

__all__ = ["confusion", "precision_note", "format_matrix", "beyond", "beyond_note", "main"]

#: Mistakes written outside the catalogue (the seed cases' wrong ports, the example programs'
#: planted mistakes), with the pitfall that explains each; None: no catalogued pitfall does
#: (a framework convention of 1e-7 relative), "unknown" is the right answer. (case, steps run).
BEYOND_CASES = {
    ("seed001_convnet_stride2_symmetric_pad", 2): "same-padding-conv",
    ("seed001_convnet_flatten_unpermuted", 2): "flatten-order",
    ("seed002_tf1_losses_float32_cast", 3): None,
    ("seed002_torch_renorm_eps", 3): None,
    ("seed002_torch_clip_grad_norm_eps", 3): None,
    ("seed002_max_norm_wrong_axis", 2): "max-norm-axis",
    ("seed002_keras_sgd_momentum", 3): "sgd-momentum-lr-change",
    ("seed003_learning_phase_tf1", 2): "learning-phase",
    ("seed003_training_flag_tf2", 2): "learning-phase",
    ("seed003_eval_mode_torch", 2): "torch-eval-mode",
    ("seed003_fix_without_bn_updates", 2): "bn-update-ops",
    ("seed003_running_var_unbiased", 2): "bn-running-var",
}
#: (reference program, port program, the pitfall), under examples/.
BEYOND_PROGRAMS = [
    ("seed002/tf1_mlp.py", "mistakes/torch_mlp_no_zero_grad.py", "zero-grad"),
    ("seed001/tf1_convnet.py", "mistakes/torch_convnet_adam_eps.py", "adam-epsilon"),
    ("seed001/tf1_convnet.py", "mistakes/torch_convnet_no_zero_grad.py", "zero-grad"),
    ("seed003/keras_bn_convnet.py", "mistakes/torch_bn_convnet_eval.py", "torch-eval-mode"),
]


def beyond(dtypes=("float64", "float32"), root: str = ".") -> list[tuple[str, str, str | None, str]]:
    """(label, dtype, expected pitfall or None, first name or "unknown") for every diverging pair beyond the catalogue."""
    from parity.cases.registry import get_case
    from parity.pitfalls.diagnose import diagnose
    from parity.run.runner import run_case

    rows = []

    def add(label, expected, case, result):
        for cmp in result.comparisons:
            if not cmp.ok:
                named = diagnose(case, cmp, result.traces[cmp.dtype])
                rows.append((label, cmp.dtype, expected, named[0].pitfall if named else "unknown"))

    for (name, steps), expected in BEYOND_CASES.items():
        case = get_case(name).replace(steps=steps)
        add(name, expected, case, run_case(case, dtypes=tuple(d for d in dtypes if d in case.dtypes)))
    examples = os.path.join(root, "examples")
    if os.path.isdir(examples):
        from parity.program.prepare import compare_programs

        for ref, port, expected in BEYOND_PROGRAMS:
            r = compare_programs(os.path.join(examples, ref), os.path.join(examples, port), steps=2, dtypes=tuple(dtypes))
            add(port, expected, r.case, r)
    return rows


def beyond_note(rows) -> str:
    named = [r for r in rows if r[3] != "unknown"]
    right = [r for r in named if r[3] == r[2]]
    honest = [r for r in rows if r[2] is None and r[3] == "unknown"]
    return (
        f"Beyond the catalogue (`python -m parity.tools.pitfall_matrix --beyond`: the seed cases' {len(BEYOND_CASES)} wrong ports and "
        f"{len(BEYOND_PROGRAMS)} example programs with a planted mistake, written separately from the signatures; {len(rows)} "
        f"diverging runs): a first name in {len(named)}, the right one in {len(right)}/{len(named)}; "
        f"{len(honest)}/{sum(r[2] is None for r in rows)} runs that no catalogued pitfall explains (a 1e-7 framework convention) "
        f"answered unknown; {sum(r[2] is not None and r[3] == 'unknown' for r in rows)} runs with a catalogued cause left unnamed."
    )


def format_beyond(rows) -> str:
    out = ["mistake | dtype | its pitfall | named first"]
    out += [f"{label} | {dtype} | {exp or '(none: unknown is right)'} | {first}" for label, dtype, exp, first in rows]
    return "\n".join(out + ["", beyond_note(rows)])


def confusion(results: list[PitfallResult]) -> Counter:
    """(wrong port's pitfall, first name or "unknown") -> count over dtypes."""
    return Counter((r.pitfall, r.named[0] if r.named else "unknown") for r in results)


def precision_note(results: list[PitfallResult]) -> str:
    """The paragraph docs/pitfalls.md states: first-name precision and recall over the catalogue."""
    named = [r for r in results if r.named]
    right = [r for r in named if r.named_first]
    also = sum(len(r.named) - 1 for r in results)
    dtypes = sorted({r.dtype for r in results})
    pct = f"{len(right) / len(named):.0%}" if named else "n/a"
    return (
        f"Measured by `python -m parity.tools.pitfall_matrix` over the catalogue's {len({r.pitfall for r in results})} wrong ports "
        f"in {' and '.join(dtypes)} ({len(results)} runs): a first name was given in {len(named)}/{len(results)} runs and was "
        f"the right one in {len(right)}/{len(named)} (precision of the first name {pct}); no run was named first by another "
        f"pitfall's signature{'' if len(right) == len(named) else ' EXCEPT the ones listed by the matrix'}. Further names "
        f"proposed after the first: {also}. The right ports drew no name at all. This measures the catalogue's own "
        "wrong ports; on mistakes written independently it is not measured here: there a signature is proposed only where "
        "the traces meet its preconditions, and an unmatched divergence is reported as unknown with its step, stage and tensor."
    )


def format_matrix(results: list[PitfallResult]) -> str:
    """A sparse confusion matrix: one line per wrong port and dtype, the names proposed (first one marked)."""
    rows = [("wrong port", "dtype", "first name", "also proposed", "diagonal?")]
    for r in results:
        first = r.named[0] if r.named else "unknown"
        rows.append((r.pitfall, r.dtype, first, ", ".join(r.named[1:]) or "-", "yes" if first == r.pitfall else "NO"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    off = [(w, n) for (w, n), k in sorted(confusion(results).items()) if w != n]
    lines = [f"Confusion matrix: {sum(r.named_first for r in results)}/{len(results)} on the diagonal; off-diagonal cells: "
             + (", ".join(f"{w} -> {n}" for w, n in off) or "none")]
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines += ["", precision_note(results)]
    return "\n".join(lines)


def write_precision(results: list[PitfallResult], root: str = ".", rows=None) -> list[str]:
    """Write the measured notes into parity/pitfalls/precision.py and regenerate docs/pitfalls.md."""
    from parity.pitfalls import precision, render

    note = precision_note(results)
    extra = beyond_note(rows) if rows is not None else precision.BEYOND_NOTE
    path = os.path.abspath(precision.__file__)  # parity/pitfalls/precision.py
    with open(path, "w") as fh:
        fh.write('"""The measured first-name precision (written by ``python -m parity.tools.pitfall_matrix --write``).\n\n'
                 "docs/pitfalls.md quotes it; tests/test_pitfalls.py re-measures PRECISION_NOTE and checks it is\n"
                 "current (BEYOND_NOTE: ``--beyond``, the slow test).\n"
                 f'"""\n\nPRECISION_NOTE = {note!r}\n\nBEYOND_NOTE = {extra!r}\n')
    precision.PRECISION_NOTE, precision.BEYOND_NOTE = note, extra
    render.PRECISION_NOTE, render.BEYOND_NOTE = note, extra  # render imported the old values by name
    docs = os.path.join(root, "docs", "pitfalls.md")
    with open(docs, "w") as fh:
        fh.write(render.render_markdown())
    return [path, docs]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parity.tools.pitfall_matrix", description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", action="append", choices=("float64", "float32"), help="default: both")
    parser.add_argument("--write", action="store_true", help="write the precision into docs/pitfalls.md")
    parser.add_argument("--beyond", action="store_true", help="also run the mistakes written outside the catalogue")
    args = parser.parse_args(argv)
    dtypes = tuple(args.dtype or ("float64", "float32"))
    results = run_catalogue(dtypes)
    print(format_matrix(results))
    rows = None
    if args.beyond:
        rows = beyond(dtypes)
        print()
        print(format_beyond(rows))
    if args.write:
        for path in write_precision(results, rows=rows):
            print(f"wrote {path}", file=sys.stderr)
    ok = all(r.named_first for r in results) and all(first == (exp or "unknown") for _, _, exp, first in rows or ())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
