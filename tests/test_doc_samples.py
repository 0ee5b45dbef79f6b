"""The sample outputs in README.md and docs/*.md are what the commands print today.

A sample is a fenced block right after a marker line naming the command and its exit code:

    <!-- sample (exit 1): parity diff examples/seed002/torch_mlp.py examples/mistakes/torch_mlp_no_zero_grad.py -->
    ```text
    ...what the command printed on stdout...
    ```

Add ``, slow`` after the exit code for a command that takes more than ~20 s (``(exit 0, slow)``),
``, varies`` for one whose values differ from run to run (a program's unseeded initial weights:
:func:`loose` masks the values and the tensors they fall on).
Each sample's command is run from the repository root as ``python -m parity ...`` in a subprocess,
stdout a pipe (not a terminal), ``COLUMNS`` unset; its stdout must equal the block once what varies
between runs is normalised (:func:`normalise`: elapsed times, the repository's absolute path,
framework versions, the size of a rounding-level error: TensorFlow is not bit-reproducible
between runs), and its exit code the marker's. stderr (framework start-up lines, the progress
bar) is not part of a sample.

After a change to the report's format, rewrite every block from real runs:

    .venv/bin/python tests/test_doc_samples.py --write            # every sample
    .venv/bin/python tests/test_doc_samples.py --write README.md  # one file's
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", "docs/own-model.md"]

SAMPLE = re.compile(
    r"^(?P<indent>[ \t]*)<!-- sample \(exit (?P<code>\d+)(?P<slow>, slow)?(?P<varies>, varies)?\): (?P<cmd>parity [^\n]*?) -->\n"
    r"(?P=indent)```text\n(?P<body>.*?)\n(?P=indent)```[ \t]*$",
    re.M | re.S,
)


def samples(path: str) -> list[re.Match]:
    with open(os.path.join(ROOT, path), encoding="utf-8") as fh:
        return list(SAMPLE.finditer(fh.read()))


def body_text(match: re.Match) -> str:
    """The block's lines without the indentation of the marker (a sample inside a list item)."""
    indent = match["indent"]
    lines = match["body"].splitlines()
    return "\n".join(line[len(indent):] if line.startswith(indent) else line for line in lines)


def normalise(text: str) -> str:
    """Blank out what differs between two runs of one command."""
    text = text.replace(ROOT + os.sep, "").replace(ROOT, ".")
    text = re.sub(r"\(\d+(?:\.\d+)?s\)", "(…s)", text)  # the elapsed time: 'agree (9.2s)'
    # TensorFlow's kernels are not bit-reproducible from run to run: a rounding-level error's size varies
    text = re.sub(r"rounding ≤[0-9.e+-]+", "rounding ≤…", text)
    text = re.sub(r"\b(torch|tensorflow|tf-keras|keras|numpy|parity) \d+\.\d+(?:\.\d+)?\S*", r"\1 X", text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def loose(text: str) -> str:
    """For a sample marked ``varies``: values and the tensors they fall on masked, the structure kept.

    ``parity diff`` seeds the batches and dropout masks, not the programs' own initialisers: a
    program that draws its initial weights unseeded starts elsewhere in each run, so the worst
    element (which tensor, where, its values) and the count of downstream divergences vary.
    """
    text = re.sub(r"(step \d+, [a-z ]+, )[\w./:-]+(\[[\d,]+\])?", r"\1T", text)
    text = re.sub(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", "#", text)
    text = re.sub(r"\s+", " ", text)  # a masked line wraps elsewhere
    return text


def run_sample(cmd: str) -> tuple[int, str]:
    """Run ``parity ARGS`` as the docs say, from the repository root; return (exit code, stdout)."""
    args = shlex.split(cmd)
    assert args[0] == "parity", cmd
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(
        [sys.executable, "-m", "parity", *args[1:]], cwd=ROOT, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600,
    )
    return proc.returncode, proc.stdout


def _frameworks(cmd: str) -> list[str]:
    """The frameworks a sample's files import (to mark the test and skip it where one is missing)."""
    found = set()
    for arg in shlex.split(cmd):
        path = os.path.join(ROOT, arg)
        if arg.endswith(".py") and os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            found |= {"tf"} if re.search(r"^\s*(import|from) (tensorflow|tf_keras|keras)\b", text, re.M) else set()
            found |= {"torch"} if re.search(r"^\s*(import|from) torch\b", text, re.M) else set()
    return sorted(found)


def _params():
    out = []
    for doc in DOCS:
        for m in samples(doc):
            marks = [getattr(pytest.mark, f) for f in _frameworks(m["cmd"])]
            marks += [pytest.mark.slow] if m["slow"] else []
            out.append(pytest.param(doc, m["cmd"], int(m["code"]), body_text(m), bool(m["varies"]), marks=marks,
                                    id=f"{doc}: {m['cmd']}"))
    return out


def test_the_docs_hold_samples():
    assert samples("README.md"), "README.md: no '<!-- sample (exit N): parity ... -->' block"
    assert samples("docs/own-model.md"), "docs/own-model.md: no sample block"


@pytest.mark.parametrize("doc, cmd, code, block, varies", _params())
def test_sample_is_the_real_output(doc, cmd, code, block, varies):
    got_code, out = run_sample(cmd)
    same = (lambda t: loose(normalise(t))) if varies else normalise
    assert same(out) == same(block), (
        f"{doc}: the sample of '{cmd}' is not what it prints now; rewrite it with "
        f"'python tests/test_doc_samples.py --write {doc}'.\nNow:\n{out}"
    )
    assert got_code == code, f"{doc}: '{cmd}' exits {got_code}, the marker says {code}"


def write(docs: list[str]) -> None:
    """Rewrite each sample block (and its marker's exit code) of ``docs`` from a real run."""
    for doc in docs:
        path = os.path.join(ROOT, doc)
        with open(path, encoding="utf-8") as fh:
            text = fh.read()

        def replace(m: re.Match) -> str:
            code, out = run_sample(m["cmd"])
            ind = m["indent"]
            body = "\n".join(f"{ind}{line}".rstrip() for line in out.strip("\n").splitlines()) or ind
            print(f"{doc}: exit {code}: {m['cmd']}", file=sys.stderr)
            return f"{ind}<!-- sample (exit {code}{m['slow'] or ''}{m['varies'] or ''}): {m['cmd']} -->\n{ind}```text\n{body}\n{ind}```"

        new = SAMPLE.sub(replace, text)
        if new != text:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(new)


if __name__ == "__main__":
    argv = sys.argv[1:]
    if not argv or argv[0] != "--write":
        sys.exit("usage: python tests/test_doc_samples.py --write [README.md docs/own-model.md ...]")
    write(argv[1:] or DOCS)
