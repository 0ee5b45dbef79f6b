"""What a program's source states of its own schedule: epochs, total training steps, batch size,
shuffling (numpy-free; read with :mod:`ast`, nothing executed).

parity runs the steps it is asked for on the batches it prepares, so a program's own schedule length
and batch size never show in the numbers. They are written in the file (or in the modules beside it
that the file imports) in a few common forms, which this module reads:

* a module-level (or ``if __name__ == "__main__":``) assignment of a well-known name:
  ``epochs = 100``, ``EPOCHS``, ``num_epochs``, ``training_steps = 10000``, ``batch_size = 128``;
* an argparse default: ``parser.add_argument('--epochs', type=int, default=14)``;
* an absl / ``tf.app.flags`` default: ``flags.DEFINE_integer('batch_size', 64, ...)``;
* a keyword of a call: ``model.fit(..., epochs=epochs, batch_size=32)``, ``DataLoader(ds,
  batch_size=args.batch_size, shuffle=True)``, resolved through the assignments and defaults above.

Function parameters (``def f(batch_size=3)``) and names inside functions are not read: they say what
a function accepts, not what the program runs. Each fact comes with where it was read
(``epochs.where``: ``file.py:19``); a value the reader cannot resolve to a literal is not reported.
"""

from __future__ import annotations

import ast
import os

__all__ = ["stated", "NAMES"]

#: the names each fact is read under (assignments, argparse options with '-' as '_', flags, keywords)
NAMES = {
    "epochs": ("epochs", "epoch", "num_epochs", "n_epochs", "nb_epoch", "nb_epochs", "training_epochs", "max_epochs",
               "max_max_epoch", "epoch_num", "num_epoch"),
    "steps": ("training_steps", "train_steps", "max_steps", "num_train_steps", "total_steps", "num_training_steps"),
    "batch_size": ("batch_size", "batchsize", "train_batch_size"),
    "shuffle": ("shuffle",),
}

#: calls whose keywords say what the program trains with (a method name or a class name)
_CALLS = {"fit", "fit_generator", "DataLoader", "flow", "train", "shuffle_batch", "batch"}


def _name(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _literal(node, env: dict):
    """A literal int/float/bool, or a name / ``args.x`` / ``FLAGS.x`` resolved through ``env``."""
    try:
        v = ast.literal_eval(node)
        return v if isinstance(v, (int, float, bool)) else None
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    key = _name(node)
    if key is not None and key.lower() in env:
        return env[key.lower()][0]
    return None


def _top_level(tree: ast.Module):
    """Module-level statements and those of ``if __name__ == "__main__":`` blocks (not function bodies)."""
    for node in tree.body:
        if isinstance(node, ast.If):
            yield from node.body
            yield from node.orelse
        else:
            yield node


def _read(path: str, base: str) -> tuple[dict, list]:
    """``env`` (lower-cased name -> (value, where)) of literal assignments and option defaults, and the
    calls' keywords, in one file."""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return {}, []
    env: dict = {}
    where = lambda n: f"{os.path.relpath(path, base) if base else os.path.basename(path)}:{n.lineno}"  # noqa: E731
    for node in _top_level(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            v = _literal(node.value, env)
            if v is not None:
                env.setdefault(node.targets[0].id.lower(), (v, where(node)))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        fn = _name(node.func)
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        if fn == "add_argument" and "default" in kw:
            v = _literal(kw["default"], {})
            opts = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            longs = [o for o in opts if o.startswith("--")] or opts
            if v is not None and longs:
                env.setdefault(kw.get("dest").value if isinstance(kw.get("dest"), ast.Constant) else
                               longs[0].lstrip("-").replace("-", "_").lower(), (v, where(node)))
        elif fn and fn.startswith("DEFINE_") and len(node.args) >= 2 and isinstance(node.args[0], ast.Constant):
            v = _literal(node.args[1], {})
            if v is not None and isinstance(node.args[0].value, str):
                env.setdefault(node.args[0].value.lower(), (v, where(node)))
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) in _CALLS:
            for k in node.keywords:
                if k.arg:
                    v = _literal(k.value, env)
                    if v is not None:
                        calls.append((k.arg.lower(), v, f"{_name(node.func)}({k.arg}=...) at {where(node)}"))
    return env, calls


def _siblings(path: str) -> list[str]:
    """The modules beside ``path`` that it imports (one level: a glue file importing the training script)."""
    here = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return []
    out = []
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
        for n in names:
            f = os.path.join(here, *n.split(".")) + ".py"
            if os.path.isfile(f) and f not in out and os.path.abspath(f) != os.path.abspath(path):
                out.append(f)
    return out


def stated(path) -> dict:
    """The schedule facts the program file (then the modules beside it that it imports) states:
    ``{"epochs": 14, "epochs.where": "main.py:88", "batch_size.stated": 64, ...}``; empty when it states
    none (or is not a file)."""
    if not isinstance(path, str) or not os.path.isfile(path):
        return {}
    base = os.path.dirname(os.path.abspath(path))
    out: dict = {}
    for f in [path] + _siblings(path):
        env, calls = _read(f, base)
        for fact, names in NAMES.items():
            key = "batch_size.stated" if fact == "batch_size" else fact
            if key in out:
                continue
            # a call's keyword (what fit / DataLoader is given) first, then an option's default, then a name
            hit = next(((v, w) for k, v, w in calls if k in names), None)
            if hit is None:
                hit = next((env[n] for n in names if n in env), None)
            if hit is None or isinstance(hit[0], bool) != (fact == "shuffle"):
                continue
            if fact != "shuffle" and (isinstance(hit[0], float) and not float(hit[0]).is_integer() or hit[0] <= 0):
                continue
            out[key] = hit[0] if fact == "shuffle" else int(hit[0])
            out[key + ".where"] = hit[1]
    return out
