"""What a program's source states of its own schedule: epochs, total training steps, batch size,
shuffling (numpy-free; read with :mod:`ast`, nothing executed).

parity runs the steps it is asked for on the batches it prepares, so a program's own schedule length
and batch size never show in the numbers. They are written in the file (or in the modules it imports
beside it or from a folder it puts on ``sys.path``: :mod:`parity.program.source`) in a few common
forms, which this module reads:

* a module-level (or ``if __name__ == "__main__":``) assignment of a well-known name:
  ``epochs = 100``, ``EPOCHS``, ``num_epochs``, ``training_steps = 10000``, ``batch_size = 128``;
* an argparse default: ``parser.add_argument('--epochs', type=int, default=14)``;
* an absl / ``tf.app.flags`` default: ``flags.DEFINE_integer('batch_size', 64, ...)``;
* a keyword of a call: ``model.fit(..., epochs=epochs, batch_size=32)``, ``DataLoader(ds,
  batch_size=args.batch_size, shuffle=True)``, resolved through the assignments and defaults above
  (inside a function, its own literal assignments first); a loader assigned to a ``test`` / ``val``
  name is not the training one;
* shuffling left to a default: Keras ``fit`` on arrays and ``ImageDataGenerator.flow`` shuffle unless
  told not to, as TF's mnist ``next_batch`` does; a ``np.random.shuffle`` in a loop shuffles.

Function parameters (``def f(batch_size=3)``) are not read: they say what a function accepts, not
what the program runs; a branch a literal decides against (``if not data_augmentation:``) is left
out. Each fact comes with where it was read (``epochs.where``: ``file.py:19``); a value the reader
cannot resolve to a literal is not reported.
"""

from __future__ import annotations

import ast
import os

from parity.program.source import dotted, literal, module_env, name_of, parse, program_files, walk, where

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

#: a loader / generator assigned to such a name serves evaluation, not training
_EVAL = ("test", "val", "eval")


def _is_eval(ctx) -> bool:
    return any(w in (ctx.target or "").lower() for w in _EVAL)


def _read(path: str, base: str) -> tuple[list, list]:
    """The calls' keywords ``(key, value, where)`` and the defaults stated by omission ``(fact, value,
    where)`` in one file, in source order (the branches a literal decides against left out)."""
    tree = parse(path)
    if tree is None:
        return [], []
    at = lambda n: where(path, base, n)  # noqa: E731
    env = module_env(tree, at)
    calls, defaults = [], []
    for node, ctx in walk(tree, env, at):
        if not isinstance(node, ast.Call) or _is_eval(ctx):
            continue
        fn = name_of(node.func)
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        if fn in _CALLS:
            for k, v in kw.items():
                v = literal(v, ctx.env)
                if isinstance(v, (int, float, bool)):
                    calls.append((k.lower(), v, f"{fn}({k}=...) at {at(node)}"))
        if "shuffle" in kw:
            continue
        # a shuffle the source states by leaving it out: Keras fit on arrays, ImageDataGenerator.flow, TF's
        # mnist DataSet.next_batch (each shuffles by default), or a shuffle it calls itself
        x = node.args[0] if node.args else kw.get("x")
        if fn == "fit" and x is not None and not isinstance(x, ast.Call) and ("batch_size" in kw or len(node.args) >= 2):
            defaults.append(("shuffle", True, f"fit's default, at {at(node)}"))
        elif fn in ("flow", "flow_from_directory", "flow_from_dataframe"):
            defaults.append(("shuffle", True, f"ImageDataGenerator.{fn}'s default, at {at(node)}"))
        elif fn == "next_batch" and "mnist" in dotted(node.func).lower():
            defaults.append(("shuffle", True, f"DataSet.next_batch's default, at {at(node)}"))
        elif dotted(node.func) in ("np.random.shuffle", "numpy.random.shuffle", "random.shuffle") and ctx.loops:
            defaults.append(("shuffle", True, f"{dotted(node.func)}(...) in a loop at {at(node)}"))
    return calls, [("env", env)] + defaults


def stated(path) -> dict:
    """The schedule facts the program file (then the modules it imports, :func:`~parity.program.source.
    program_files`) states: ``{"epochs": 14, "epochs.where": "main.py:88", "batch_size.stated": 64, ...}``;
    with what :func:`parity.program.outside.outside` reads (seeds, augmentation, input scaling,
    per-epoch schedules); empty when it states none (or is not a file)."""
    if not isinstance(path, str) or not os.path.isfile(path):
        return {}
    base = os.path.dirname(os.path.abspath(path))
    files = program_files(path)
    out: dict = {}
    for f in files:
        try:
            calls, defaults = _read(f, base)
        except RecursionError:  # code nested deeper than the reader goes: that file says nothing
            continue
        env = defaults.pop(0)[1] if defaults else {}
        for fact, names in NAMES.items():
            key = "batch_size.stated" if fact == "batch_size" else fact
            if key in out:
                continue
            # a call's keyword (what fit / DataLoader is given) first, then an option's default, then a name,
            # then (shuffling) what a call does when not told
            hit = next(((v, w) for k, v, w in calls if k in names), None)
            if hit is None:
                hit = next((env[n] for n in names if n in env), None)
            if hit is None and fact == "shuffle":
                hit = next(((v, w) for k, v, w in defaults if k == "shuffle"), None)
            if hit is None or not isinstance(hit[0], (int, float)) or isinstance(hit[0], bool) != (fact == "shuffle"):
                continue  # (an option's default may be a string or a list)
            if fact != "shuffle" and (isinstance(hit[0], float) and not float(hit[0]).is_integer() or hit[0] <= 0):
                continue
            out[key] = hit[0] if fact == "shuffle" else int(hit[0])
            out[key + ".where"] = hit[1]
    from parity.program.outside import outside  # seeds, augmentation, input scaling, per-epoch schedules

    try:
        out.update(outside(files, base))
    except RecursionError:
        pass
    return out
