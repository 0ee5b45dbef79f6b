"""Shared by the tests of the command line's contract (tests/test_cli_contract_*.py, issue 11).

A user's port file in plain numpy (:data:`PORT`, written by :func:`user_port`), ``main()`` run
in this process (:func:`run_main`), the one-error-line check, and strict JSON validated against
``docs/report-schema.json``. The test files import it by name: pytest puts tests/ on
``sys.path``, as for tests/properties/_dense_support.py.
"""

import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = os.path.join(ROOT, "docs", "report-schema.json")


# A user's port of the seed-004 "oscillate" / "nothing to train" cases, in plain numpy (it
# stands in for a torch port: the protocol is the same). MODE picks how it misbehaves; the
# line numbers the tests look for are those of the `raise` / `sys.exit` lines below.
PORT = '''\
import sys
import numpy as np

MODE = {mode!r}


def framework_info():
    return {{"version": "user", "device": "cpu"}}


class Port:
    def __init__(self, case, dtype):
        if MODE == "nameerror":
            undefined_name_in_build  # noqa: F821 -- the user's bug
        if not case.trainable:
            raise ValueError("optimizer got an empty parameter list")
        self.dt = np.dtype(dtype)
        self.lr = self.dt.type(case.option("lr", 1.0))
        self.p = {{}}

    def parameters(self):
        return {{k: v.copy() for k, v in self.p.items()}}

    def load(self, params):
        self.p = {{k: np.array(v, dtype=self.dt) for k, v in params.items()}}

    def step(self, batch):
        if MODE == "raise":
            raise RuntimeError("the user's step failed")
        if MODE == "exit":
            sys.exit(3)
        x, y = self.dt.type(batch["x"]), self.dt.type(batch["y"])
        w = self.p["w"]
        pred = w * x
        g = 2 * w * x * x - 2 * y * x
        if MODE == "wrong":
            g = g * 1.5
        self.p["w"] = w - self.lr * g
        out = {{"forward": {{"prediction": np.asarray(pred)}}, "loss": {{"loss": np.asarray((y - pred) ** 2)}},
               "gradients": {{"w": np.asarray(g)}}, "learning_rate": {{"lr": np.asarray(self.lr)}},
               "parameters": self.parameters()}}
        if MODE == "none":
            return None
        if MODE == "float_stage":
            out["loss"] = float((y - pred) ** 2)
        if MODE == "own_stage":
            out["my_stage"] = {{"x": np.asarray(1.0)}}
        return out


def build(case, dtype, variant=None):
    return Port(case, dtype)
'''


def user_port(tmp_path, mode: str) -> str:
    path = tmp_path / f"user_port_{mode}.py"
    path.write_text(PORT.format(mode=mode))
    return str(path)


def line_of(path: str, needle: str) -> int:
    with open(path) as fh:
        return next(i for i, line in enumerate(fh, 1) if needle in line)


def run_main(capsys, *args):
    from parity.cli.main import main

    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(err: str) -> str:
    lines = [l for l in err.strip().splitlines() if l.startswith("parity: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def strict_json(text: str):
    def no_constant(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=no_constant)


def validate(doc):
    import jsonschema

    with open(SCHEMA) as fh:
        schema = json.load(fh)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


def unwritable_dir(tmp_path) -> str:
    """A directory this process cannot write: chmod 555, or (as root, who ignores modes) one under /sys."""
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    try:
        (d / "probe").write_text("")
    except OSError:
        return str(d)
    (d / "probe").unlink()
    return "/sys/parity-cannot-write-here"
