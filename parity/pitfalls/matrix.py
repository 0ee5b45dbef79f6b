"""The confusion matrix: every wrong port of the catalogue against every signature.

Rows are the catalogue's wrong ports (one per pitfall and dtype), columns the signatures the
diagnosis proposed for them, first name marked. The matrix must be diagonal: each wrong port
named first by its own pitfall, and no signature naming another pitfall's wrong port first.

    python -m parity.pitfalls.matrix            # run the catalogue, print the matrix and the precision
    python -m parity.pitfalls.matrix --write    # also write the precision into docs/pitfalls.md
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

from .catalogue import PitfallResult, run_catalogue

__all__ = ["confusion", "precision_note", "format_matrix", "main"]


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
        f"Measured by `python -m parity.pitfalls.matrix` over the catalogue's {len({r.pitfall for r in results})} wrong ports "
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


def write_precision(results: list[PitfallResult], root: str = ".") -> list[str]:
    """Write the measured note into parity/pitfalls/precision.py and regenerate docs/pitfalls.md."""
    note = precision_note(results)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "precision.py")
    with open(path, "w") as fh:
        fh.write('"""The measured first-name precision (written by ``python -m parity.pitfalls.matrix --write``).\n\n'
                 "docs/pitfalls.md quotes it; tests/test_pitfalls.py re-measures it and checks it is current.\n"
                 f'"""\n\nPRECISION_NOTE = {note!r}\n')
    from . import precision, render

    precision.PRECISION_NOTE = note
    docs = os.path.join(root, "docs", "pitfalls.md")
    with open(docs, "w") as fh:
        fh.write(render.render_markdown(note))
    return [path, docs]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parity.pitfalls.matrix", description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", action="append", choices=("float64", "float32"), help="default: both")
    parser.add_argument("--write", action="store_true", help="write the precision into docs/pitfalls.md")
    args = parser.parse_args(argv)
    results = run_catalogue(tuple(args.dtype or ("float64", "float32")))
    print(format_matrix(results))
    if args.write:
        for path in write_precision(results):
            print(f"wrote {path}", file=sys.stderr)
    return 0 if all(r.named_first for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
