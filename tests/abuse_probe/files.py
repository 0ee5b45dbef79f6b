"""The files the abuse probe gives parity: a user's port in numpy, torch programs with a fault, mapping files, traces.

A user's port (:data:`PORT`, for ``parity check seed004_oscillate --torch-port``) is plain numpy
standing in for a torch port (the protocol is the same; no framework is imported). ``MODE``
picks the fault. The torch programs (:func:`program`) are ``examples/seed004/torch_minimize.py``
with one fault written in.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .probe import EXAMPLES

PORT = '''\
import os, sys, time, warnings
import numpy as np

MODE = {mode!r}
if MODE == "import_raise":
    raise RuntimeError("the user's module failed at import")  # LINE:import_raise


def framework_info():
    return {{"version": "user", "device": "cpu"}}


def _deep(n):
    return _deep(n + 1) + 1


class Port:
    def __init__(self, case, dtype):
        if MODE == "build_raise":
            raise ValueError("the user's build failed")  # LINE:build_raise
        self.dt, self.t, self.p = np.dtype(dtype), 0, {{}}
        self.lr = self.dt.type(case.option("lr", 1.0))

    def parameters(self):
        return {{k: v.copy() for k, v in self.p.items()}}

    def load(self, params):
        self.p = {{k: np.array(v, dtype=self.dt) for k, v in params.items()}}

    def step(self, batch):
        self.t += 1
        if self.t == 2:
            if MODE == "step_raise":
                raise RuntimeError("the user's step failed")  # LINE:step_raise
            if MODE == "exit0":
                os._exit(0)
            if MODE == "sysexit0":
                sys.exit(0)  # LINE:sysexit0
            if MODE == "sysexit3":
                sys.exit(3)
            if MODE == "recursion":
                _deep(0)
            if MODE == "sigkill":
                os.kill(os.getpid(), 9)
            if MODE == "memory":
                raise MemoryError("the user's step ran out of memory")
            if MODE == "none":
                return None
            if MODE == "junk":
                return 42
            if MODE == "sleep":
                open("asleep", "w").write(str(os.getpid()))
                time.sleep(120)
        if MODE == "print":
            for i in range(20000):
                print("user print", i)
        if MODE == "warn":
            warnings.warn("the user's own warning")  # LINE:warn
        x, y, w = self.dt.type(batch["x"]), self.dt.type(batch["y"]), self.p["w"]
        pred, g = w * x, 2 * w * x * x - 2 * y * x
        if MODE == "nan" and self.t >= 2:
            g = g * np.nan
        self.p["w"] = w - self.lr * g
        out = {{"forward": {{"prediction": np.asarray(pred)}}, "loss": {{"loss": np.asarray((y - pred) ** 2)}},
               "gradients": {{"w": np.asarray(g)}}, "learning_rate": {{"lr": np.asarray(self.lr)}},
               "parameters": self.parameters()}}
        if MODE == "missing_stage":
            del out["gradients"]
        return out


if MODE != "nobuild":
    def build(case, dtype, variant=None):
        return Port(case, dtype)
'''


def port(mode: str, name: str = "port.py"):
    def setup(d: Path) -> None:
        (d / name).write_text(PORT.format(mode=mode))
    return setup


def line_of(text: str, marker: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if marker in line)


def port_line(mode: str) -> int:
    return line_of(PORT.format(mode=mode), f"# LINE:{mode}")


# -- torch programs for `parity diff` -------------------------------------------------------------------

def base_program() -> str:
    return (EXAMPLES / "seed004" / "torch_minimize.py").read_text()


_LOSS = "def squared_error(y_hat, y):\n    return ((y - y_hat) ** 2).sum()\n"
_RETURN = '    return {"model": model, "optimizer": optimizer, "loss": squared_error, "data": batches}\n'

LOSS_FAULTS = {
    "exit0": "    if _calls[0] >= 3:\n        __import__('os')._exit(0)\n",
    "sysexit0": "    if _calls[0] >= 3:\n        __import__('sys').exit(0)\n",
    "raise": "    if _calls[0] >= 3:\n        raise RuntimeError('the loss failed')  # LINE:raise\n",
    "recursion": "    if _calls[0] >= 3:\n        _deep(0)\n",
    "print": "    for i in range(5000):\n        print('user print', i)\n",
    "warn": "    __import__('warnings').warn('the loss warns')  # LINE:warn\n",
    "nan": "    if _calls[0] >= 3:\n        return ((y - y_hat) ** 2).sum() * float('nan')\n",
}


def program(fault: str = "", returns: str | None = None, head: str = "", drop_function: bool = False) -> str:
    """``examples/seed004/torch_minimize.py`` with a fault in its loss (:data:`LOSS_FAULTS`), another
    ``parity_program()`` return line, lines at its top (after the imports), or without ``parity_program``."""
    text = base_program()
    if fault:
        body = ("_calls = [0]\n\n\ndef _deep(n):\n    return _deep(n + 1) + 1\n\n\n"
                "def squared_error(y_hat, y):\n    _calls[0] += 1\n" + LOSS_FAULTS[fault]
                + "    return ((y - y_hat) ** 2).sum()\n")
        text = text.replace(_LOSS, body)
    if returns is not None:
        text = text.replace(_RETURN, f"    {returns}\n")
    if head:
        text = text.replace("import torch.nn as nn\n", "import torch.nn as nn\n" + head + "\n", 1)
    if drop_function:
        text = text.replace("def parity_program():\n" + _RETURN, "")
    assert text != base_program() or not (fault or returns or head or drop_function)
    return text


def programs(port_text: str | None = None, ref_text: str | None = None):
    def setup(d: Path) -> None:
        (d / "ref.py").write_text(ref_text if ref_text is not None else base_program())
        (d / "port.py").write_text(port_text if port_text is not None else base_program())
    return setup


def program_line(text: str, marker: str) -> int:
    return line_of(text, marker)


# -- mapping files ---------------------------------------------------------------------------------------

def _param(ref, port, trainable=True, shape=()):
    return {"reference": ref, "port": port, "reference_ops": [], "port_ops": [], "shape": list(shape),
            "kind": "other", "trainable": trainable}


def good_mapping() -> dict:
    return {"format": 1, "reference": "ref.py", "port": "port.py",
            "params": [_param("w1", "w1"), _param("w2", "w2"), _param("w3", "w3", trainable=False)],
            "forward": [{"reference": "model", "port": "model"}], "not_compared": {}, "notes": []}


def mapping(edit=None, raw: str | None = None):
    """The programs, and a mapping file ``m.json``: the good one edited by ``edit(doc)``, or ``raw`` text."""
    def setup(d: Path) -> None:
        programs()(d)
        if raw is not None:
            (d / "m.json").write_text(raw)
            return
        doc = good_mapping()
        if edit is not None:
            edit(doc)
        (d / "m.json").write_text(json.dumps(doc, allow_nan=True))
    return setup


# -- traces --------------------------------------------------------------------------------------------

def cut(src: str, name: str, keep: float = 0.5, head: bytes | None = None):
    """A copy of the shared trace ``src`` in the case's directory: its first ``keep`` part, or with its
    first bytes replaced by ``head``."""
    def setup(d: Path) -> None:
        from .run import FIXTURES

        data = (FIXTURES / src).read_bytes()
        data = data[: int(len(data) * keep)] if head is None else head + data[len(head):]
        (d / name).write_text("") if not data else (d / name).write_bytes(data)
    return setup


def plant(name: str, marker: str = "PLANTED", package: bool = False):
    """A module ``name`` in the case's directory that leaves ``marker`` when imported (then fails)."""
    text = ("import os\nopen(os.path.join(%r, %r), 'a').write(str(os.getpid()) + '\\n')\n"
            "raise ImportError('the planted module was imported')\n")

    def setup(d: Path) -> None:
        body = text % (str(d), marker)
        if package:
            (d / name).mkdir(exist_ok=True)
            (d / name / "__init__.py").write_text(body)
        else:
            (d / f"{name}.py").write_text(body)
    return setup


def planted_unused(marker: str = "PLANTED"):
    def check(o):
        mark = o.d / marker
        return f"the planted module ran: {mark.read_text().split()}" if mark.exists() else None
    return check


def mentions(*needles: str, where: str = "both"):
    """A check: each needle (a regex) appears in stderr/stdout."""
    def check(o):
        text = {"err": o.err, "out": o.out}.get(where, o.out + "\n" + o.err)
        missing = [n for n in needles if not re.search(n, text)]
        return f"does not say {missing}: {(o.err or o.out).strip()[-240:]!r}" if missing else None
    return check


def all_of(*checks):
    def check(o):
        return next((r for r in (c(o) for c in checks) if r), None)
    return check


def files_exist(*names: str, absent: tuple = ()):
    def check(o):
        missing = [n for n in names if not (o.d / n).exists()]
        there = [n for n in absent if (o.d / n).exists()]
        stray = [p.name for p in o.d.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]
        if missing or there or stray:
            return f"missing {missing}, present {there}, temp files {stray}"
        return None
    return check


def unchanged(name: str, text: str):
    def check(o):
        now = (o.d / name).read_text() if (o.d / name).exists() else None
        return None if now == text else f"{name} was changed or removed"
    return check


def write(**files: str):
    def setup(d: Path) -> None:
        for name, text in files.items():
            (d / name.replace("__", ".")).write_text(text)
    return setup


def both(*setups):
    def setup(d: Path) -> None:
        for s in setups:
            s(d)
    return setup
