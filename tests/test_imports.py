"""The code's structure, read from the source (ast only: nothing is imported, no numpy).

* No import cycle among the modules of ``parity/``, nor among those of ``tf_impl/`` and
  ``torch_impl/``.
* The packages of ``parity/`` stand in layers (:data:`LAYERS`, bottom to top, named after the
  pipeline): a package imports only from packages in lower layers, and from itself.
* The ports (``tf_impl/``, ``torch_impl/``) import from parity only :data:`PORT_API`; nothing
  in ``parity/`` imports them with an import statement: the one registry,
  ``parity/run/frameworks.py``, loads them by name with importlib.
* No .py file over 400 lines in ``parity/``, ``tf_impl/``, ``torch_impl/`` or ``tests/``.

Every import counts, at module level or inside a function (a lazy import is still a dependency
of the reader's picture), except under ``if TYPE_CHECKING:``. Importing ``a.x.y`` from outside
``a.x`` runs ``a.x``'s ``__init__`` too, so that counts as an edge to ``a.x`` (a top package's own
``__init__``, parity's public facade or tf_impl's environment, is left out of that rule).
Each checker has a test that feeds it a made-up graph breaking its rule, so each can fail.
What is known to break a rule and is being fixed is listed in a ``PENDING_*`` set below, with
who fixes it; a pending entry that no longer applies is reported as a warning (remove it then).
"""

from __future__ import annotations

import ast
import functools
import os
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODE_TREES = ("parity", "tf_impl", "torch_impl")
PORT_TREES = ("tf_impl", "torch_impl")
SIZE_TREES = ("parity", "tf_impl", "torch_impl", "tests")
MAX_LINES = 400

#: parity's packages, bottom to top: a package may import only from lower layers (and itself).
#: Layer 0 holds single modules; ``parity`` is the root package (``__init__``, ``__main__``).
LAYERS = (
    ("parity.errors", "parity._version", "parity.envvars"),
    ("parity.io",),  # atomic writes: raise ParityError
    ("parity.portkit",),
    ("parity.cases",),
    ("parity.trace",),
    ("parity.strategies",),
    ("parity.comparison",),
    ("parity.pitfalls",),
    ("parity.oracle",),
    ("parity.run",),
    ("parity.program",),
    ("parity.report",),
    ("parity.tools",),
    ("parity.cli",),
    ("parity",),
)
RANK = {package: i for i, layer in enumerate(LAYERS) for package in layer}
#: What the ports may import from parity (package level).
PORT_API = frozenset({"parity.portkit", "parity.cases", "parity.strategies", "parity.trace", "parity.errors"})

# -- known breaches, being fixed: remove an entry when its fix lands ---------------------------
#: (importer package, imported package).
PENDING_LAYERS: set[tuple[str, str]] = set()
#: parity modules that still import a port package directly.
PENDING_PORT_IMPORTS: set[str] = set()
#: files over the limit, being split (relative paths)
PENDING_SIZE: set[str] = set()
PENDING_CYCLES: list[set[str]] = []


def _stale(what: str, entries) -> None:
    if entries:
        warnings.warn(f"{what}: no longer needed for {sorted(entries)}: remove them from the list", stacklevel=2)


# -- reading the source ------------------------------------------------------------------------


def py_files(top: str) -> dict[str, str]:
    """Path relative to the repository (with /) -> absolute path, for every .py file under ``top``."""
    out = {}
    for dirpath, dirs, files in os.walk(os.path.join(REPO, top)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                out[os.path.relpath(path, REPO).replace(os.sep, "/")] = path
    return out


def modules(*tops: str) -> dict[str, str]:
    """Dotted module name -> path, for the packages ``tops`` (a package is named by its ``__init__``)."""
    out = {}
    for top in tops:
        for rel, path in py_files(top).items():
            name = rel[:-3].replace("/", ".")
            out[name[: -len(".__init__")] if name.endswith(".__init__") else name] = path
    return out


def _is_type_checking(node) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(tree, name: str, is_pkg: bool, mods) -> set[str]:
    """The modules of ``mods`` that module ``name`` (source ``tree``) imports: its edges."""
    package = name if is_pkg else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node):
        if _is_type_checking(node):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = {f"{target}.{a.name}" for a in node.names} & set(mods)
            found.update(subs)
            if len(subs) < len(node.names):  # some name comes from the module itself
                found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    edges = set()
    for t in found:
        if t not in mods:
            continue
        edges.add(t)
        # importing a.x.y from outside a.x runs a/x/__init__.py
        parts = t.split(".")
        for i in range(2, len(parts)):
            parent = ".".join(parts[:i])
            if parent in mods and not (name == parent or name.startswith(parent + ".")):
                edges.add(parent)
    edges.discard(name)
    return edges


@functools.lru_cache(maxsize=None)
def _full_graph() -> dict[str, frozenset[str]]:
    mods = modules(*CODE_TREES)
    graph = {}
    for name, path in mods.items():
        with open(path) as fh:
            tree = ast.parse(fh.read(), path)
        graph[name] = frozenset(imports_of(tree, name, path.endswith("__init__.py"), mods))
    return graph


def _top(module: str) -> str:
    return module.split(".")[0]


def import_graph(*tops: str) -> dict[str, set[str]]:
    """The edges among the modules of ``tops`` (default: parity's own)."""
    tops = tops or ("parity",)
    return {m: {t for t in ts if _top(t) in tops} for m, ts in _full_graph().items() if _top(m) in tops}


def cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


# -- the rules ---------------------------------------------------------------------------------


def package(module: str) -> str:
    """The layer unit of a module: ``parity.run.runner`` -> ``parity.run``; the root's modules -> ``parity``."""
    parts = module.split(".")
    if parts[0] != "parity":
        return parts[0]
    return "parity" if len(parts) == 1 or parts[1] == "__main__" else f"parity.{parts[1]}"


def package_edges(graph) -> dict[tuple[str, str], list[str]]:
    """(importer package, imported package) -> the module edges behind it, across packages only."""
    out: dict[tuple[str, str], list[str]] = {}
    for src, targets in graph.items():
        for dst in targets:
            if package(src) != package(dst):
                out.setdefault((package(src), package(dst)), []).append(f"{src} -> {dst}")
    return {k: sorted(v) for k, v in sorted(out.items())}


def layer_violations(graph) -> dict[tuple[str, str], list[str]]:
    """Package edges that do not go down the layers (an unplaced package breaks the rule too)."""
    return {
        (a, b): edges
        for (a, b), edges in package_edges(graph).items()
        if a not in RANK or b not in RANK or RANK[b] >= RANK[a]
    }


def port_imports_past_the_api(graph) -> list[str]:
    """Edges from a port module to a parity module outside :data:`PORT_API`."""
    return sorted(
        f"{src} -> {dst}"
        for src, targets in graph.items()
        if _top(src) in PORT_TREES
        for dst in targets
        if _top(dst) == "parity" and package(dst) not in PORT_API
    )


def parity_modules_importing_ports(graph) -> dict[str, list[str]]:
    """parity module -> the port modules it imports with an import statement."""
    out = {
        src: sorted(t for t in targets if _top(t) in PORT_TREES)
        for src, targets in graph.items()
        if _top(src) == "parity"
    }
    return {src: targets for src, targets in sorted(out.items()) if targets}


def too_long(files: dict[str, str], limit: int = MAX_LINES) -> dict[str, int]:
    """Relative path -> line count, for the files over ``limit`` lines."""
    out = {}
    for rel, path in files.items():
        with open(path, encoding="utf-8") as fh:
            n = sum(1 for _ in fh)
        if n > limit:
            out[rel] = n
    return out


# -- each checker can fail -----------------------------------------------------------------------


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_reader_counts_lazy_imports_and_parents_but_not_type_checking():
    mods = {"parity.run", "parity.run.runner", "parity.run.result", "parity.cases", "parity.cases.registry", "parity.trace",
            "parity.trace.memory", "parity.report", "parity.report.text", "parity.errors"}
    source = (
        "from typing import TYPE_CHECKING\n"
        "from parity.errors import ParityError\n"
        "from . import result\n"
        "if TYPE_CHECKING:\n    from parity.report.text import to_json\n"
        "def later():\n    import parity.trace.memory\n"
        "def lazy():\n    from parity.cases import registry\n"
    )
    edges = imports_of(ast.parse(source), "parity.run.runner", False, mods)
    assert edges == {"parity.errors", "parity.run.result", "parity.trace.memory", "parity.trace", "parity.cases.registry", "parity.cases"}


def test_the_layer_checker_finds_an_upward_edge():
    graph = {
        "parity.cases.case": {"parity.errors", "parity.cases.registry"},  # down, and within itself: fine
        "parity.portkit.program": {"parity.run.result"},  # up: layer 1 -> 8
        "parity.trace.file": {"parity.strategies"},  # up: layer 3 -> 4
        "parity.io": {"parity"},  # the root facade is the top layer
        "parity.newthing.x": {"parity.errors"},  # a package with no layer
    }
    assert set(layer_violations(graph)) == {
        ("parity.portkit", "parity.run"), ("parity.trace", "parity.strategies"), ("parity.io", "parity"),
        ("parity.newthing", "parity.errors"),
    }
    assert layer_violations({"parity.cli.main": {"parity.run.runner"}, "parity.__main__": {"parity.cli"}}) == {}


def test_the_port_checkers_find_forbidden_edges():
    graph = {
        "tf_impl.v1.dense": {"parity.portkit.layout", "parity.cases.catalog.seed", "tf_impl"},
        "torch_impl.capture": {"parity.run.runner", "parity"},  # past the API: run, and the root facade
        "parity.run.frameworks": set(),
        "parity.tools.bench": {"torch_impl", "parity.run"},
    }
    assert port_imports_past_the_api(graph) == ["torch_impl.capture -> parity", "torch_impl.capture -> parity.run.runner"]
    assert parity_modules_importing_ports(graph) == {"parity.tools.bench": ["torch_impl"]}


def test_the_size_checker_finds_a_long_file(tmp_path):
    (tmp_path / "ok.py").write_text("x = 1\n" * MAX_LINES)
    (tmp_path / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    files = {p.name: str(p) for p in tmp_path.iterdir()}
    assert too_long(files) == {"long.py": MAX_LINES + 1}


# -- the rules on the code as it is ------------------------------------------------------------


def test_parity_has_no_import_cycle():
    found = [c for c in cycles(import_graph("parity")) if set(c) not in PENDING_CYCLES]
    assert not found, f"import cycles in parity/: {found}"


def test_the_ports_have_no_import_cycle():
    found = cycles(import_graph(*PORT_TREES))
    assert not found, f"import cycles in tf_impl/ and torch_impl/: {found}"


def test_every_parity_package_has_a_layer():
    unplaced = sorted({package(m) for m in import_graph("parity")} - set(RANK))
    assert not unplaced, f"packages missing from LAYERS (place them in the pipeline): {unplaced}"


def test_parity_packages_import_only_lower_layers():
    found = layer_violations(import_graph("parity"))
    _stale("PENDING_LAYERS", PENDING_LAYERS - set(found))
    bad = {edge: modules for edge, modules in found.items() if edge not in PENDING_LAYERS}
    assert not bad, f"imports up or across the layers (LAYERS, bottom to top): {bad}"


def test_the_ports_import_only_the_port_api():
    bad = port_imports_past_the_api(import_graph(*CODE_TREES))
    assert not bad, f"ports importing parity beyond {sorted(PORT_API)}: {bad}"


def test_parity_does_not_import_the_ports():
    found = parity_modules_importing_ports(import_graph(*CODE_TREES))
    _stale("PENDING_PORT_IMPORTS", PENDING_PORT_IMPORTS - set(found))
    bad = {m: ts for m, ts in found.items() if m not in PENDING_PORT_IMPORTS}
    assert not bad, f"parity modules importing tf_impl/torch_impl (use parity.run.frameworks): {bad}"


def test_diagnosis_imports_the_registry_not_the_catalogue_runner():
    graph = import_graph("parity")
    assert "parity.pitfalls.registry" in graph["parity.pitfalls.diagnose"]
    assert "parity.pitfalls.diagnose" in graph["parity.tools.pitfall_check"]
    assert "parity.tools.pitfall_check" not in graph["parity.pitfalls"]


def test_no_file_over_400_lines():
    found = too_long({rel: path for top in SIZE_TREES for rel, path in py_files(top).items()})
    _stale("PENDING_SIZE", PENDING_SIZE - set(found))
    bad = {rel: n for rel, n in found.items() if rel not in PENDING_SIZE}
    assert not bad, f"files over {MAX_LINES} lines (split them): {bad}"
