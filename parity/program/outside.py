"""What a program's source states of what happens outside a training step (numpy-free; :mod:`ast`,
nothing executed): its seeds, its data augmentation, how it scales its inputs, and learning-rate
schedules that change the rate between epochs. parity copies the reference's weights into the port,
feeds both the same batches and runs the steps it is asked for, so none of these shows in the
numbers; :func:`lines` says them in "What this comparison does not cover".

Read from the files :func:`parity.program.source.program_files` names, in source order, the branches a
literal decides against left out; not inside ``parity_program`` (what it builds and returns is what
parity runs). Each item says where it was read (``file.py:12``, ``in main()`` for a function's body):

* ``seeds``: ``tf.set_random_seed`` / ``tf.compat.v1.set_random_seed`` / ``tf.random.set_seed`` /
  ``keras.utils.set_random_seed`` / ``torch.manual_seed`` / ``torch.cuda.manual_seed(_all)`` /
  ``np.random.seed`` / ``random.seed``, the value resolved through literals and option defaults (an
  option without a default that the file replaces by ``random.randint(...)`` is said so);
* ``augmentation``: ``ImageDataGenerator``'s random transforms, ``tf.image.random_*``, torchvision's
  ``Random*`` / ``ColorJitter`` / ``AutoAugment`` ...;
* ``input.scaling``: ``/ 255``, ``/ 127.5 - 1``, subtracting a ``np.mean`` (dividing by a ``np.std``),
  ``ImageDataGenerator(rescale=..., featurewise_center=...)``, torchvision ``ToTensor`` (to [0, 1]), ``Resize``, ``CenterCrop`` and
  ``Normalize(mean, std)``, TF's mnist ``read_data_sets`` (float32 in [0, 1]); not for a ``test`` /
  ``val`` target;
* ``lr.schedule.epochs``: Keras ``LearningRateScheduler`` / ``ReduceLROnPlateau`` callbacks, torch
  ``lr_scheduler`` classes with where their ``.step()`` is called (per epoch / per batch) when a loop
  says so; a scheduler handed to parity (named in ``parity_program``) is parity's to step, not listed.
"""

from __future__ import annotations

import ast
import re

from parity.program.source import dotted, literal, module_env, name_of, parse, walk, where

__all__ = ["outside", "lines"]

_AUG_KERAS = {"rotation_range": 0, "width_shift_range": 0, "height_shift_range": 0, "brightness_range": None,
              "shear_range": 0, "zoom_range": 0, "channel_shift_range": 0, "horizontal_flip": False,
              "vertical_flip": False}
_SCALE_KERAS = {"featurewise_center": False, "samplewise_center": False, "featurewise_std_normalization": False,
                "samplewise_std_normalization": False, "zca_whitening": False, "rescale": None,
                "preprocessing_function": None}
_AUG_TORCH = ("ColorJitter", "AutoAugment", "RandAugment", "TrivialAugmentWide", "AugMix", "ElasticTransform")
_TORCH_SCHED = ("LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR",
                "PolynomialLR", "CosineAnnealingLR", "ChainedScheduler", "SequentialLR", "ReduceLROnPlateau",
                "CyclicLR", "OneCycleLR", "CosineAnnealingWarmRestarts")
_SCALES = (255, 127.5)


#: torchvision transforms that scale the input (values, or the image: a resize or crop, as corpus 02's port)
_SCALE_TORCH = ("ToTensor", "Normalize", "Resize", "CenterCrop")

def _short(text: str, n: int = 72) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n // 3] + " ... " + text[-(2 * n // 3 - 5):]


def _call_text(node: ast.Call, env: dict) -> str:
    """``RandomCrop(32, 4)``: the call as written, under its last name, a name holding a number as the number."""
    def val(a):
        v = literal(a, env) if isinstance(a, (ast.Name, ast.Attribute)) else None
        return ast.Constant(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else a

    return _short(ast.unparse(ast.Call(func=ast.Name(name_of(node.func) or dotted(node.func)),
                                       args=[val(a) for a in node.args],
                                       keywords=[ast.keyword(k.arg, val(k.value)) for k in node.keywords])), 100)


def _seed_kind(d: str) -> str | None:
    last = d.rsplit(".", 1)[-1]
    if last == "set_random_seed":
        return "keras" if "keras" in d or "utils" in d else "tf"
    if d.endswith("random.set_seed"):
        return "tf"
    if last in ("manual_seed", "manual_seed_all") and d.startswith("torch."):
        return "torch"
    if d in ("np.random.seed", "numpy.random.seed"):
        return "numpy"
    return "python" if d == "random.seed" else None


def _torchvision_names(tree) -> set:
    """Names a file binds to torchvision's transforms (the module, an alias, or an imported class)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torchvision"):
            for a in node.names:
                if node.module.startswith("torchvision.transforms") or a.name == "transforms":
                    out.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            out.update(a.asname for a in node.names if a.asname and a.name.startswith("torchvision.transforms"))
    return out


def _bound(tree) -> dict:
    """name -> the call it is assigned from (``x_train_mean = np.mean(x_train, axis=0)``), anywhere."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.value, ast.Call):
            key = dotted(node.targets[0])
            if key:
                out.setdefault(key, node.value)
    return out


def _top(expr):
    """The expression and what it is made of by arithmetic and tuples (not a call's arguments, not a lambda)."""
    yield expr
    kids = [expr.left, expr.right] if isinstance(expr, ast.BinOp) else [expr.operand] if isinstance(expr, ast.UnaryOp) \
        else list(expr.elts) if isinstance(expr, (ast.Tuple, ast.List)) else []
    for k in kids:
        yield from _top(k)


def _scaled(expr, bound: dict) -> list[str]:
    """What an expression does to an input's scale: ``/ 255``, ``/ 127.5 - 1``, ``- <mean>``, ``/ <std>`` (numpy's,
    or a name bound to it: ``x_train_mean = np.mean(x_train, axis=0)``)."""
    out = []
    for n in _top(expr):
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Div, ast.Sub)):
            r = n.right
            if isinstance(n.op, ast.Div) and isinstance(r, ast.Constant) and r.value in _SCALES:
                out.append(f"/ {r.value}")
            call = bound.get(dotted(r)) if dotted(r) else r if isinstance(r, ast.Call) else None
            if isinstance(call, ast.Call) and dotted(call.func).split(".")[0] in ("np", "numpy") and \
                    name_of(call.func) == ("mean" if isinstance(n.op, ast.Sub) else "std"):
                out.append(f"{dotted(r)} = {ast.unparse(call)}" if dotted(r) else ast.unparse(call))
    return out


def _handed(defs: dict) -> set:
    """The names ``parity_program`` uses, and those the module's functions it uses (its ``train_step``) use."""
    names, todo = set(), ["parity_program"] if "parity_program" in defs else []
    while todo:
        f = defs[todo.pop()]
        for n in ast.walk(f):
            if isinstance(n, ast.Name) and n.id not in names:
                names.add(n.id)
                if n.id in defs and n.id != f.name:
                    todo.append(n.id)
    return names


def _read(path: str, base: str) -> dict:
    tree = parse(path)
    if tree is None:
        return {}
    at = lambda n: where(path, base, n)  # noqa: E731
    env = module_env(tree, at)
    tv, bound = _torchvision_names(tree), _bound(tree)
    defs = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    handed = _handed(defs)
    from_sched = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                  and (n.module or "").endswith("lr_scheduler") for a in n.names}
    out: dict = {"seeds": [], "augmentation": [], "input.scaling": [], "lr.schedule.epochs": []}
    sched: dict = {}  # name a torch scheduler is assigned to -> index in out["lr.schedule.epochs"]
    for node, ctx in walk(tree, env, at):
        if ctx.funcs[:1] == ("parity_program",) or set(ctx.funcs) & {"forward", "call", "__call__"}:
            continue  # what parity runs: the program it returns, a model's own forward pass
        inside = f" in {'.'.join(ctx.funcs)}()" if ctx.funcs else ""
        eval_target = any(w in (ctx.target or "").lower() for w in ("test", "val"))
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.Return)) and node.value is not None and not eval_target:
            how = _scaled(node.value, bound) if not isinstance(node, ast.AugAssign) else \
                _scaled(ast.BinOp(left=node.target, op=node.op, right=node.value), bound)
            if how:
                text = _short(ast.unparse(node), 100)
                notes = [h for h in how if " = " in h]
                out["input.scaling"].append(f"{text}{inside} at {at(node)}" + "".join(f" ({h})" for h in notes))
        if not isinstance(node, ast.Call):
            continue
        d, fn = dotted(node.func), name_of(node.func) or ""
        kind = _seed_kind(d)
        if kind:
            arg = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "seed"), None)
            v = literal(arg, ctx.env) if arg is not None else None
            text = f"{d}({v if v is not None else ast.unparse(arg) if arg is not None else ''})"
            if v is None and arg is not None:
                fallback = bound.get(dotted(arg)) if dotted(arg) else None
                text += (f", which is {ast.unparse(fallback)} when none is given" if fallback is not None and
                         name_of(fallback.func) in ("randint", "random", "choice", "randrange") else " (value not read)")
            built = "" if ctx.funcs or ctx.main else " (runs as the file is built: it replaces parity's seed)"
            out["seeds"].append(f"{text}{inside} at {at(node)}{built}")
        elif eval_target and fn not in ("LearningRateScheduler", "ReduceLROnPlateau") and fn not in _TORCH_SCHED:
            continue  # a test / validation pipeline
        elif fn == "ImageDataGenerator":
            kw = {k.arg: k.value for k in node.keywords if k.arg}

            def stated(table):
                got = []
                for k, default in table.items():
                    if k in kw:
                        v = literal(kw[k], ctx.env)
                        text = ast.unparse(kw[k])
                        if (v if v is not None else text) not in (default, "None") and not (v == 0 and default == 0):
                            got.append(f"{k}={text}")
                return got

            aug, scale = stated(_AUG_KERAS), stated(_SCALE_KERAS)
            if aug and "fill_mode" in kw:
                aug.append(f"fill_mode={ast.unparse(kw['fill_mode'])}")
            if aug:
                out["augmentation"].append(f"ImageDataGenerator({', '.join(aug)}){inside} at {at(node)}")
            if scale:
                out["input.scaling"].append(f"ImageDataGenerator({', '.join(scale)}){inside} at {at(node)}")
        elif ".image.random_" in f".{d}" or d.startswith("image.random_"):
            out["augmentation"].append(f"{_short(ast.unparse(node))}{inside} at {at(node)}")
        elif (d.split(".")[0] in tv or d.startswith("torchvision.transforms")) and \
                (fn.startswith("Random") or fn in _AUG_TORCH):
            out["augmentation"].append(f"{_call_text(node, ctx.env)}{inside} at {at(node)}")
        elif (d.split(".")[0] in tv or d.startswith("torchvision.transforms")) and fn in _SCALE_TORCH:
            what = " (uint8 images to [0, 1])" if fn == "ToTensor" else ""
            out["input.scaling"].append(f"{_call_text(node, ctx.env)}{what}{inside} at {at(node)}")
        elif fn == "read_data_sets":
            out["input.scaling"].append(f"read_data_sets(...) (float32 pixels in [0, 1], its default){inside} at {at(node)}")
        elif fn in ("LearningRateScheduler", "ReduceLROnPlateau") or fn in _TORCH_SCHED and \
                ("lr_scheduler" in d or fn in from_sched):
            if ctx.target and ctx.target in handed:
                continue  # handed to parity: it steps it (and compares the rate it gives)
            text = f"{_call_text(node, ctx.env)}{inside} at {at(node)}"
            fdef = defs.get(dotted(node.args[0])) if fn == "LearningRateScheduler" and node.args else None
            if fdef is not None:
                text += f" ({fdef.name}: a function of the epoch, defined at {at(fdef)})"
            if ctx.target:
                sched[ctx.target] = len(out["lr.schedule.epochs"])
            out["lr.schedule.epochs"].append(text)
        elif fn == "step" and isinstance(node.func, ast.Attribute) and dotted(node.func.value) in sched and ctx.loops:
            loop = ctx.loops[-1]
            head = (ast.unparse(loop.target) + " " + ast.unparse(loop.iter)).lower() if isinstance(loop, ast.For) else ""
            unit = "per epoch" if "epoch" in head else "per batch" if any(w in head for w in ("loader", "batch", "enumerate")) else None
            i = sched.pop(dotted(node.func.value))
            if unit:
                out["lr.schedule.epochs"][i] += f", .step() {unit} at {at(node)}"
    return out


def outside(files: list, base: str) -> dict:
    """``{"seeds": [...], "augmentation": [...], "input.scaling": [...], "lr.schedule.epochs": [...]}`` over
    the files (``seeds`` always, empty when none is set; the others only when stated)."""
    got: dict = {}
    for f in files:
        for k, v in _read(f, base).items():
            have = [_key(x) for x in got.setdefault(k, [])]
            for item in v:
                if _key(item) not in have:  # the same call again (another branch, another loader): once
                    got[k].append(item)
                    have.append(_key(item))
    if not got:
        return {}
    return {k: v for k, v in got.items() if v or k == "seeds"}


_PARITY_SEEDS = ("parity seeds each build itself from --seed (TensorFlow's and Keras', torch's, numpy's and Python's "
                 "generators; a seed the file sets while parity builds it wins), copies the reference's weights into "
                 "the port and feeds both the same batches: these seeds do not reach this comparison, but the port "
                 "trained alone starts from its own initial weights")
_FRAMEWORK = {"tf1": ("tf", "keras"), "tf2": ("tf", "keras"), "torch": ("torch",)}


def _compact(line: str) -> str:
    """``at a.py:3, ... at a.py:9`` -> ``at a.py:3, ... at :9`` (the file named just before)."""
    last = [None]

    def sub(m):
        path = m.group(1)
        same, last[0] = path == last[0], path
        return f"at :{m.group(2)}" if same else m.group(0)

    return re.sub(r"at (\S+?):(\d+)", sub, line)


def _key(item: str) -> str:
    return re.sub(r"( in \S+\(\))? at \S+:\d+.*$", "", item)


def lines(ref: dict, port: dict) -> list[str]:
    """The "does not cover" lines of what both sources state outside a training step."""
    out = []
    if "seeds" in ref or "seeds" in port:
        texts, why = [], []
        for side, f in (("reference", ref), ("port", port)):
            seeds = f.get("seeds")
            if seeds is None:
                texts.append("not read")
                continue
            if not seeds:
                texts.append("not seeded")
                why.append(f"what the {side} draws at random differs from run to run")
                continue
            own = _FRAMEWORK.get(str(f.get("framework")), ())
            kinds = {_seed_kind(s.split("(")[0]) for s in seeds}
            texts.append("; ".join(seeds) + ("" if not own or kinds & set(own) else
                                             f" (its {'TensorFlow' if 'tf' in own else 'torch'} generator not seeded)"))
        fws = {str(ref.get("framework"))[:2], str(port.get("framework"))[:2]}
        if ref.get("seeds") and port.get("seeds") and len(fws) == 2:
            why.insert(0, "different generators: even the same seed draws other values")
        if len(why) == 2 and why[0].startswith("what the"):
            why = ["what either draws at random differs from run to run"]
        why.append(_PARITY_SEEDS)
        out.append(f"seeds: {texts[0]} vs {texts[1]}: " + "; ".join(why))
    for key, label, none, why in (
            ("augmentation", "augmentation", "none stated", "parity feeds both programs the same batches, so a "
             "difference here does not show in this comparison"),
            ("input.scaling", "input scaling", "not stated", "parity feeds both programs the same batches, so a "
             "difference here does not show in this comparison"),
            ("lr.schedule.epochs", "schedule over epochs", "none stated", "parity does not run these: it compares "
             "the steps it runs at the rate each program's step uses")):
        a, b = ref.get(key) or [], port.get(key) or []
        if (a or b) and [_key(x) for x in a] != [_key(x) for x in b]:
            out.append(f"{label}: {'; '.join(a) or none} vs {'; '.join(b) or none} ({why})")
    return [_compact(x) for x in out]
