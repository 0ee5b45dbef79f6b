"""The generated docs match the registries they come from (run 'parity docs' after changing a case)."""

import os

from parity.tools.docs import cases_markdown

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_cases_md_is_up_to_date():
    with open(os.path.join(ROOT, "docs", "cases.md")) as fh:
        assert fh.read() == cases_markdown(), "docs/cases.md is stale: run 'parity docs'"


def test_readme_commands_exist():
    with open(os.path.join(ROOT, "README.md")) as fh:
        readme = fh.read()
    with open(os.path.join(ROOT, "Makefile")) as fh:
        makefile = fh.read()
    for target in ("parity", "test", "property-thorough"):
        assert f"make {target}" in readme and f"\n{target}:" in makefile


def test_make_docs_finds_this_source_tree():
    # `make docs` (`parity docs` without --out) writes into this checkout's docs/; after parity/docs.py moved to
    # parity/tools/ it looked one level too low and refused ("not run from one")
    from parity.tools.docs import source_docs_dir

    assert source_docs_dir() == os.path.join(ROOT, "docs")
