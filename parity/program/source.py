"""Reading a program's source without running it (numpy-free; :mod:`ast`): the files it is made of, the
literal values its names and options hold, and its statements in source order with the branches a
literal decides left out. :mod:`parity.program.stated` (schedule length, batch size, shuffling) and
:mod:`parity.program.outside` (seeds, augmentation, input scaling, per-epoch schedules) read through it.

* **Files**: the file, then the modules it imports (one level) found beside it or in a folder it puts
  on ``sys.path`` as a literal (``sys.path.insert(0, "/x")``, ``sys.path[:0] = ["/x", ...]``): a glue
  file importing the training script unchanged states what that script states.
* **Values**: module-level literal assignments (``epochs = 100``; also inside ``if`` blocks), argparse
  defaults (``add_argument('--batch-size', default=64)`` as ``batch_size``), absl / ``tf.app.flags``
  defaults (``DEFINE_integer('batch_size', 128, ...)``); inside a function, its own literal assignments
  first. A name resolves through them, ``args.x`` / ``FLAGS.x`` as ``x``; anything computed is not read.
* **Branches**: ``if NAME:``, ``if not NAME:`` and ``if NAME == literal:`` whose NAME holds a literal keep
  only the branch that runs (``data_augmentation = True`` ... ``if not data_augmentation: fit(...)``
  leaves that ``fit`` out); every other ``if`` keeps both branches.
"""

from __future__ import annotations

import ast
import os
from typing import NamedTuple

__all__ = ["program_files", "parse", "module_env", "literal", "walk", "Ctx", "where", "dotted", "name_of"]


def name_of(node) -> str | None:
    """The last name of ``f`` / ``a.b.f``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def dotted(node) -> str:
    """``tf.compat.v1.set_random_seed`` as written ('' for anything else than names and attributes)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def parse(path: str) -> ast.Module | None:
    try:
        with open(path, encoding="utf-8") as f:
            return ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError):
        return None


def where(path: str, base: str, node) -> str:
    """``file.py:12``: relative to the folder of the file given (a file outside it: its full path)."""
    rel = os.path.relpath(os.path.abspath(path), base) if base else os.path.basename(path)
    return f"{os.path.abspath(path) if rel.startswith('..') else rel}:{node.lineno}"


def _path_dirs(tree: ast.Module, here: str) -> list[str]:
    """Folders the file puts on ``sys.path`` as literals."""
    out = []
    for node in ast.walk(tree):
        vals = []
        if isinstance(node, ast.Call) and dotted(node.func) in ("sys.path.insert", "sys.path.append"):
            vals = node.args[-1:]
        elif isinstance(node, ast.Assign) and any(dotted(getattr(t, "value", t)) == "sys.path" for t in node.targets):
            vals = list(node.value.elts) if isinstance(node.value, (ast.List, ast.Tuple)) else []
        for v in vals:
            if isinstance(v, ast.Constant) and isinstance(v.value, str):
                d = os.path.normpath(os.path.join(here, os.path.expanduser(v.value)))
                if os.path.isdir(d) and d not in out:
                    out.append(d)
    return out


def program_files(path: str) -> list[str]:
    """The file, then the modules it imports found beside it or in a folder it adds to ``sys.path``."""
    tree = parse(path)
    if tree is None:
        return [path]
    here = os.path.dirname(os.path.abspath(path))
    dirs = [here] + [d for d in _path_dirs(tree, here) if d != here]
    out = [os.path.abspath(path)]
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names += [f"{node.module}.{a.name}" for a in node.names]  # from pkg import module
        for n in names:
            for d in dirs:
                f = os.path.join(d, *n.split(".")) + ".py"
                if os.path.isfile(f):
                    if os.path.abspath(f) not in out:
                        out.append(os.path.abspath(f))
                    break
    return out


def literal(node, env: dict):
    """A literal int/float/bool/str (or a list/tuple of them), or a name / ``args.x`` resolved through ``env``."""
    try:
        v = ast.literal_eval(node)
        ok = lambda x: isinstance(x, (int, float, bool, str)) or x is None  # noqa: E731
        return v if ok(v) or isinstance(v, (list, tuple)) and all(ok(x) for x in v) else None
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    key = name_of(node)
    if key is not None and isinstance(node, (ast.Name, ast.Attribute)) and key.lower() in env:
        return env[key.lower()][0]
    return None


def _assigns(stmts, env: dict, at) -> None:
    for node in stmts:
        if isinstance(node, ast.If):
            _assigns(node.body, env, at)
            _assigns(node.orelse, env, at)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            t, val = node.targets[0], node.value
            pairs = [(t, val)] if isinstance(t, ast.Name) else \
                list(zip(t.elts, val.elts)) if isinstance(t, ast.Tuple) and isinstance(val, ast.Tuple) and \
                len(t.elts) == len(val.elts) else []  # SIDE, CLASSES = 8, 10
            for name, value in pairs:
                v = literal(value, env) if isinstance(name, ast.Name) else None
                if v is not None:
                    env.setdefault(name.id.lower(), (v, at(node)))


def module_env(tree: ast.Module, at) -> dict:
    """lower-cased name -> (value, where) of module-level literal assignments and option defaults."""
    env: dict = {}
    _assigns(tree.body, env, at)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        fn, kw = name_of(node.func), {k.arg: k.value for k in node.keywords if k.arg}
        if fn == "add_argument" and "default" in kw:
            v = literal(kw["default"], {})
            opts = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            longs = [o for o in opts if o.startswith("--")] or opts
            if v is not None and longs:
                dest = kw.get("dest")
                key = dest.value if isinstance(dest, ast.Constant) else longs[0].lstrip("-").replace("-", "_")
                env.setdefault(str(key).lower(), (v, at(node)))
        elif fn and fn.startswith("DEFINE_") and len(node.args) >= 2 and isinstance(node.args[0], ast.Constant):
            v = literal(node.args[1], {})
            if v is not None and isinstance(node.args[0].value, str):
                env.setdefault(node.args[0].value.lower(), (v, at(node)))
    return env


class Ctx(NamedTuple):
    """Where a node stands: the functions / classes around it, the loops around it, the name the
    statement holding it assigns, and the values names hold there."""

    funcs: tuple = ()
    loops: tuple = ()
    target: str | None = None
    env: dict = {}
    main: bool = False  # inside ``if __name__ == "__main__":`` (runs as a script only, not when imported)


def _truth(test, env: dict):
    """True / False where a literal decides the test, else None."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        v = _truth(test.operand, env)
        return None if v is None else not v
    if isinstance(test, (ast.Name, ast.Attribute)):
        v = literal(test, env)
        return v if isinstance(v, bool) else None
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.NotEq)):
        if dotted(test.left) == "__name__":
            return None
        a, b = literal(test.left, env), literal(test.comparators[0], env)
        if a is None or b is None:
            return None
        return (a == b) if isinstance(test.ops[0], ast.Eq) else (a != b)
    return None


def _target(node) -> str | None:
    t = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else getattr(node, "target", None)
    return dotted(t) or None if t is not None else None


def walk(tree: ast.Module, env: dict, at):
    """``(node, ctx)`` of every node in source order, the branches a literal decides against left out."""
    yield from _visit(tree, env, Ctx(env=env), at)


def _visit(node, module: dict, ctx: Ctx, at):
    if isinstance(node, ast.If):
        v = _truth(node.test, ctx.env)
        main = isinstance(node.test, ast.Compare) and dotted(node.test.left) == "__name__"
        for s in node.body if v is True else node.orelse if v is False else node.body + node.orelse:
            yield from _visit(s, module, ctx._replace(main=True) if main and s in node.body else ctx, at)
        return
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        local = dict(module)
        if not isinstance(node, ast.ClassDef):
            mine: dict = {}
            _assigns(node.body, mine, at)
            local.update(mine)
        ctx = ctx._replace(funcs=ctx.funcs + (node.name,), env=local, target=None)
    elif isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
        ctx = ctx._replace(loops=ctx.loops + (node,))
    elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
        ctx = ctx._replace(target=_target(node))
    yield node, ctx
    for child in ast.iter_child_nodes(node):
        yield from _visit(child, module, ctx, at)
