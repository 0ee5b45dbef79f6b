"""parity/envvars.py is the one list of the PARITY_* environment variables: the code, the README agree.

The code is read, not imported (ast and a regex over the .py files of parity/, tf_impl/,
torch_impl/; parity/envvars.py itself left out). A name *used* is a string constant that is
exactly ``PARITY_...`` (``os.environ.get("PARITY_X")``, ``ENV = "PARITY_X"``) or a keyword
argument so named (``dict(os.environ, PARITY_X=...)``); a name *mentioned* is any
``PARITY_...`` word, in a docstring or comment too.
"""

import ast
import os
import re

from parity.envvars import NAMES, VARIABLES, help_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TREES = ("parity", "tf_impl", "torch_impl")
WORD = re.compile(r"(?<![A-Za-z0-9_])PARITY_[A-Z0-9_]+")
#: PARITY_* names that are not environment variables: an attribute a user's program file may
#: set (``PARITY_FRAMEWORK = "torch"``), read with getattr by parity/program/load.py.
NOT_ENVIRONMENT = {"PARITY_FRAMEWORK"}


def _sources():
    for top in TREES:
        for dirpath, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for f in files:
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, ROOT).replace(os.sep, "/")
                if f.endswith(".py") and rel != "parity/envvars.py":
                    with open(path, encoding="utf-8") as fh:
                        yield rel, fh.read()


def _used(source: str) -> set:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and WORD.fullmatch(node.value):
            found.add(node.value)
        elif isinstance(node, ast.keyword) and node.arg and WORD.fullmatch(node.arg):
            found.add(node.arg)
    return found


def test_the_scanner_finds_names_in_every_form():
    source = ('import os\nENV = "PARITY_A"\nos.environ.get("PARITY_B", "1")\nenv = dict(os.environ, PARITY_C="x")\n'
              '"""PARITY_D in a docstring is mentioned, not used"""\n_PARITY_E = 1\n')
    assert _used(source) == {"PARITY_A", "PARITY_B", "PARITY_C"}
    assert set(WORD.findall(source)) == {"PARITY_A", "PARITY_B", "PARITY_C", "PARITY_D"}


def test_every_name_the_code_uses_is_listed_and_every_listed_name_is_used():
    used = set()
    for _, source in _sources():
        used |= _used(source)
    used -= NOT_ENVIRONMENT
    assert used - NAMES == set(), f"read by the code, missing from parity/envvars.py: {sorted(used - NAMES)}"
    assert NAMES - used == set(), f"in parity/envvars.py, read by no code: {sorted(NAMES - used)}"


def test_every_name_mentioned_in_the_code_is_listed():
    unknown = {}
    for rel, source in _sources():
        for name in set(WORD.findall(source)) - NAMES - NOT_ENVIRONMENT:
            unknown.setdefault(name, []).append(rel)
    assert not unknown, f"PARITY_* names mentioned in the code but not in parity/envvars.py: {unknown}"


def test_each_listed_reader_reads_its_variable():
    wrong = []
    for var in VARIABLES:
        assert var.readers and var.does and var.default, var.name
        for reader in var.readers:
            path = os.path.join(ROOT, reader)
            if not os.path.exists(path):
                wrong.append(f"{var.name}: {reader} does not exist (moved? update parity/envvars.py)")
                continue
            with open(path, encoding="utf-8") as fh:
                if var.name not in _used(fh.read()):
                    wrong.append(f"{var.name}: {reader} does not read it")
    assert not wrong, wrong


def test_the_readme_and_the_help_list_every_variable():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    section = readme.split("## Environment variables", 1)
    assert len(section) == 2, "README.md lacks its 'Environment variables' section"
    section = section[1].split("\n## ", 1)[0]
    rows = {line.split("`")[1]: line for line in section.splitlines() if line.startswith("| `PARITY_")}
    assert set(rows) == NAMES, f"README's Environment variables table: {sorted(rows)}, parity/envvars.py: {sorted(NAMES)}"
    for var in VARIABLES:
        assert all(f"`{reader}`" in rows[var.name] for reader in var.readers), f"README: {var.name}'s readers"
    assert set(WORD.findall(readme)) <= NAMES, sorted(set(WORD.findall(readme)) - NAMES)
    assert "parity --help" in section
    text = help_text()
    assert all(name in text for name in NAMES)
    assert max(len(line) for line in text.splitlines()) <= 80


def test_the_docs_mention_only_listed_names():
    unknown = {}
    for dirpath, _, files in os.walk(os.path.join(ROOT, "docs")):
        for f in files:
            if f.endswith(".md"):
                with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                    for name in set(WORD.findall(fh.read())) - NAMES - NOT_ENVIRONMENT:
                        unknown.setdefault(name, []).append(f)
    assert not unknown, unknown
