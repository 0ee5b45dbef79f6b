"""The user's program files of ``parity diff`` (numpy only): a file -> a :class:`Program` (its framework and
``parity_program``), captured by its framework's adapter (:mod:`parity.run.frameworks`).

A file is run afresh for every capture (module-level objects, TF1 graph code at top level, are built
inside the adapter's fresh graph and dtype), and only there: its framework is read from its source
(its imports, ``PARITY_FRAMEWORK``) without running it, so a TF1 file's top-level graph never lands
in TensorFlow's global graph, and the same file given twice (or two files naming a variable alike)
does not collide. What the file prints goes to stderr, once per process, never into the report; a
file that prints at import gets a note (it trains at import?). An exception raised in the user's file,
at import or in ``parity_program()``, is a :class:`ProgramError` (exit 3, the file and line).

Each run is seeded first (every framework's generators, from ``--seed``: the same initial weights on every
rerun), sees ``sys.argv == [file]`` and its own module as ``__main__`` (parity's options never reach the
file's argparse or absl flags; ``tf.app.run()`` finds the file's ``main``), and may define its absl flags
again (:func:`_flags_defined_afresh`). docs/own-model.md, "Programs as you wrote them".

The records the adapters fill in (:class:`~parity.portkit.program.ParamSpec` ...) are in :mod:`parity.portkit`.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import itertools
import os
import re
import sys
import traceback
import types
from dataclasses import dataclass
from typing import Callable

from parity.errors import ParityError, PortError, UserFileError
from parity.run.boundary import beside
from parity.run.frameworks import CAPTURE_ADAPTERS, capture_adapter, prepare_environment

__all__ = ["Program", "ProgramError", "load_program", "capture", "program_error", "at_users_line"]


# -- the user's files ---------------------------------------------------------------------------------
@dataclass
class Program:
    """A user's program: its file, framework and ``parity_program`` function."""

    path: str
    framework: str
    build: Callable
    #: seeds the frameworks' generators before each build (``--seed``): the same initial weights every run
    seed: int = 0

    @property
    def label(self) -> str:
        return os.path.basename(self.path)


class ProgramError(UserFileError):
    """The user's program file raised (at import, in ``parity_program()``, while captured): exit 3, with
    the innermost line of the user's own file (:attr:`PortError.where`)."""

    def __init__(self, path: str, phase: str, exc: BaseException):
        super().__init__(path, phase, exc, kind="program file")
        # the innermost lines of the user's own file, not of parity's adapters the error passed through
        own = [f for f in traceback.extract_tb(exc.__traceback__)
               if isinstance(path, str) and os.path.realpath(f.filename) == os.path.realpath(path)]
        if own and not isinstance(exc, SyntaxError):
            self.frames = own[-3:]
            self.args = (f"program file {path} raised {self.exc_type} {phase}: {self.exc_message} ({self.where})",)
        if "is not available with Keras 3" in str(exc):  # a Keras 2 API (tf.layers, TF1's cells) under Keras 3
            self.args = (f"{self.args[0]}; set TF_USE_LEGACY_KERAS=1 (tf.layers / tf.nn.rnn_cell are Keras 2 APIs)",)


_TF1_HINTS = re.compile(r"compat\.v1|placeholder\(|Session\(|disable_eager_execution|disable_v2_behavior|get_variable\(|import tensorflow\.compat\.v1")
_TF_ROOTS = {"tensorflow", "keras", "tf_keras"}


def _choose(declared, roots: set, source: str, where: str) -> str:
    if declared is not None:
        if declared not in CAPTURE_ADAPTERS:
            raise ParityError(f"{where}: PARITY_FRAMEWORK = {declared!r}; expected one of {', '.join(CAPTURE_ADAPTERS)}")
        return declared
    has_torch, has_tf = "torch" in roots, bool(roots & _TF_ROOTS)
    if has_torch and has_tf:
        raise ParityError(f"{where} imports both torch and TensorFlow: say which it is with PARITY_FRAMEWORK = 'torch' | 'tf1' | 'tf2'")
    if has_torch:
        return "torch"
    if has_tf:
        return "tf1" if _TF1_HINTS.search(source) else "tf2"
    raise ParityError(f"{where} imports neither torch nor TensorFlow: say which it is with PARITY_FRAMEWORK = 'torch' | 'tf1' | 'tf2'")


def _framework_of(mod: types.ModuleType, source: str, where: str) -> str:
    """The framework of a loaded module, from what it holds (its modules, its callables' modules)."""
    roots = {v.__name__.split(".")[0] for v in vars(mod).values() if isinstance(v, types.ModuleType)}
    roots |= {getattr(v, "__module__", "").split(".")[0] for v in vars(mod).values() if callable(v)}
    return _choose(getattr(mod, "PARITY_FRAMEWORK", None), roots, source, where)


def _top_level(tree: ast.Module):
    """The statements run at import (into ``if`` / ``try`` / ``with`` blocks; not into functions or classes)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            todo += [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.stmt) or isinstance(c, ast.excepthandler)]


def _read_statically(source: str, path: str) -> str | None:
    """The framework of a file from its source (its imports, a literal ``PARITY_FRAMEWORK``), when it
    also defines ``parity_program``; None when only running it can tell."""
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        raise ProgramError(path, "at import", exc) from None
    roots, names, declared = set(), set(), None
    for node in _top_level(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots |= {node.module.split(".")[0]} if node.module and not node.level else set()
            names |= {a.asname or a.name for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
                if isinstance(t, ast.Name) and t.id == "PARITY_FRAMEWORK":
                    value = node.value
                    declared = value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else ...
    if declared is ... or "parity_program" not in names or not (declared or roots & (_TF_ROOTS | {"torch"})):
        return None  # computed, or through a star import or another module: run the file to know
    return _choose(declared, roots, source, path)


def load_program(source) -> Program:
    """Load a user's file (or take a ``parity_program`` function); bad input is a one-line ParityError."""
    if callable(source):
        mod = sys.modules.get(getattr(source, "__module__", ""), None)
        path = getattr(mod, "__file__", None) or getattr(source, "__qualname__", "program")
        text = open(path, encoding="utf-8").read() if mod is not None and os.path.isfile(path) else ""
        return Program(path, _framework_of(mod, text, path) if mod is not None else "torch", source)
    path = os.fspath(source)
    if os.path.isdir(path):
        raise ParityError(f"program file {path} is a directory, not a Python file")
    if not os.path.isfile(path):
        raise ParityError(f"program file {path} does not exist")
    if not path.endswith(".py"):
        raise ParityError(f"program file {path} is not a Python file (.py)")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, ValueError) as exc:
        raise ParityError(f"program file {path} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    note = prepare_environment(text, path)  # before anything imports TensorFlow: TF_USE_LEGACY_KERAS where needed
    if note is not None and (path, "legacy keras") not in _SHOWN:
        _SHOWN.add((path, "legacy keras"))
        print(f"note: {note}", file=sys.stderr, flush=True)
    framework = _read_statically(text, path)
    if framework is None:  # only running it can tell (outside any capture, as before)
        mod = _exec_file(path)
        sys.modules.pop(mod.__name__, None)
        framework = _framework_of(mod, text, path)

    def build():
        # A fresh run of the file for every capture: module-level objects (a model and optimizer
        # built at import, TF1 graph code at top level) are new each time, and built inside the
        # adapter's graph / default dtype, after the framework's generators are seeded (the same
        # initial weights every run). The module leaves sys.modules afterwards, so a finished
        # capture's model and optimizer state can be freed. Its exceptions propagate as they are
        # (an adapter may retry), and :func:`capture` reports them.
        _seed(program.framework, program.seed)
        fresh = _exec_file(path)
        try:
            with _user_output(path, "parity_program"), _as_main(path, fresh):
                return fresh.parity_program()
        finally:
            sys.modules.pop(fresh.__name__, None)

    program = Program(path, framework, build)
    return program


def _seed(framework: str, seed: int) -> None:
    """Seed ``framework``'s generators (and numpy's, Python's) through its adapter's ``seed_program``."""
    seed_program = getattr(capture_adapter(framework), "seed_program", None)
    if callable(seed_program):
        seed_program(int(seed))


# -- the user's argv and flags ---------------------------------------------------------------------------
_USER_FLAGS: set = set()  # absl / tf.app.flags names the user's files defined in this process


@contextlib.contextmanager
def _as_main(path: str, module: types.ModuleType):
    """While the user's code runs: ``sys.argv`` is ``[path]`` (as ``python FILE`` with no arguments), so
    parity's own arguments (``--json ...``) never reach the file's argparse / absl flags; and
    ``sys.modules["__main__"]`` is the file's module (``tf.app.run()`` finds the file's ``main``, not
    parity's). ``__name__`` stays the module's own: ``if __name__ == "__main__":`` blocks do not run."""
    saved, main = sys.argv, sys.modules.get("__main__")
    sys.argv = [path]
    sys.modules["__main__"] = module
    try:
        yield
    finally:
        sys.argv = saved
        if main is not None:
            sys.modules["__main__"] = main


@contextlib.contextmanager
def _flags_defined_afresh(path: str):
    """Let a file define its absl / ``tf.app.flags`` flags again on every run in this process.

    parity runs a file once per capture, and two files may define the same flag name; absl refuses a
    second definition (``DuplicateFlagError``). So before the file runs, the flags user files defined are
    taken out of the registry; afterwards, those the file did not define again are put back (so a flag
    read later, in a step, still resolves), the new ones are remembered, and the flags are parsed from
    ``[path]`` when nobody parsed them (``FLAGS.batch_size`` works without ``tf.app.run()``: defaults)."""
    FLAGS = _absl_flags()
    removed = {}
    if FLAGS is not None:
        for name in sorted(_user_flags(FLAGS)):
            if name in FLAGS:
                flag = FLAGS[name]
                if flag.name == name:
                    removed[name] = flag
                delattr(FLAGS, name)
    try:
        yield
    finally:
        FLAGS = _absl_flags()
        if FLAGS is not None:
            _USER_FLAGS.update(_user_flags(FLAGS))
            for name, flag in removed.items():
                if name not in FLAGS:
                    FLAGS[name] = flag
            if not FLAGS.is_parsed():
                FLAGS([path], known_only=True)


def _absl_flags():
    """absl's flag registry (``tf.app.flags`` and ``absl.flags`` share it), where a file imported it."""
    return getattr(sys.modules.get("absl.flags"), "FLAGS", None)


def _user_flags(FLAGS) -> set:
    """The flag names (long and short) the user's files defined: those of the modules parity ran them as."""
    names = set(_USER_FLAGS)
    for module, flags in FLAGS.flags_by_module_dict().items():
        if module.startswith("parity_program_"):
            for flag in flags:
                names |= {flag.name} | ({flag.short_name} if flag.short_name else set())
    return names


_EXEC_COUNT = itertools.count()
_SHOWN: set = set()  # (file, what) whose output was shown once already in this process


class _Output:
    """``sys.stdout`` while the user's file runs: a stream (stderr, or os.devnull) that counts what is written;
    anything else a library asks of stdout (``isatty``, ``encoding``, ``fileno``) is the stream's."""

    def __init__(self, to):
        self.to, self.written = to, 0

    def write(self, text: str) -> int:
        self.written += len(text)
        return self.to.write(text)

    def __getattr__(self, name):
        return getattr(self.to, name)


@contextlib.contextmanager
def _user_output(path: str, what: str):
    """The user's prints, out of the report: on stderr the first time ``path`` runs ``what``, then dropped."""
    first = (path, what) not in _SHOWN
    _SHOWN.add((path, what))
    with contextlib.ExitStack() as stack:
        out = _Output(sys.stderr if first else stack.enter_context(open(os.devnull, "w")))
        with contextlib.redirect_stdout(out):
            yield
    if first and out.written and what == "import":
        print(f"note: {path} printed at import (above): if it trains at import, put that code under "
              "`if __name__ == \"__main__\":` -- parity runs the file afresh for each capture (docs/own-model.md) "
              "and shows its output once, on stderr", file=sys.stderr, flush=True)


def _exec_file(path: str) -> types.ModuleType:
    name = "parity_program_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0]) + f"_{next(_EXEC_COUNT)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ParityError(f"program file {path} is not a Python module")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses, pickling and tf.function look modules up by name
    beside(path)  # its own directory first on sys.path, as `python FILE` does
    prepare_environment()  # TF's environment (oneDNN reordering off) before the file imports TF
    try:
        with _user_output(path, "import"), _as_main(path, mod), _flags_defined_afresh(path):
            spec.loader.exec_module(mod)
    except (Exception, SystemExit) as exc:  # the user's file raised (or exited) at import: exit 3, its line
        sys.modules.pop(name, None)
        phase = ("at import (tf.app.run() or a main() at the top of the file? put it under "
                 "`if __name__ == \"__main__\":`)" if isinstance(exc, SystemExit) else "at import")
        raise ProgramError(path, phase, exc) from None
    if not callable(getattr(mod, "parity_program", None)):
        sys.modules.pop(name, None)
        raise ParityError(f"{path} defines no parity_program() function (it returns the program's objects; see docs/own-model.md)")
    return mod


def program_error(exc: BaseException, programs, phase: str) -> ProgramError | None:
    """``exc`` as a :class:`ProgramError` of the program whose file its traceback passes through (the
    innermost one: the user's code raised), or None when it passes through none (parity's own bug)."""
    from parity.run.boundary import parity_fault

    if parity_fault(exc):  # parity's capture code crashed (under the user's call or not): parity's own bug
        return None
    files = [os.path.realpath(f.filename) for f in traceback.extract_tb(exc.__traceback__)]
    for frame in reversed(files):
        for program in programs:
            if isinstance(program.path, str) and os.path.realpath(program.path) == frame:
                return ProgramError(program.path, phase, exc)
    return None


def capture(program: Program, dtype: str):
    """Capture ``program`` in ``dtype`` with its framework's adapter.

    Raises:
        ProgramError: the user's file raised (at import, in ``parity_program()``, or in code of theirs
            the adapter called): exit 3 with its file and line, whatever the framework.
        ParityError: bad input (objects of the wrong kind...), one line.
    """
    try:
        adapter = capture_adapter(program.framework)
        return adapter.capture(_with_forms(adapter, program), dtype=dtype, where=program.path)
    except UserFileError:
        raise
    except PortError as exc:  # an adapter's user_call: at the user's own line where their file is on the stack
        raise at_users_line(exc, [program], f"while built for a {dtype} run") from exc.__cause__
    except ParityError:
        raise
    except (Exception, SystemExit) as exc:  # SystemExit: the user's code called sys.exit (tf.app.run at import)
        err = program_error(exc, [program], f"while built for a {dtype} run")
        if err is None:
            raise  # not the user's code: parity's (or an adapter's) own bug
        raise err from exc


def _with_forms(adapter, program: Program):
    """The program's ``parity_program``, its dict passed through the adapter's ``program_forms`` (several
    optimizers, a hand-written update: docs/own-model.md) where the adapter has one."""
    forms = getattr(getattr(adapter, "program", None), "program_forms", None)
    if not callable(forms):
        return program.build

    def parity_program():
        return forms(program.build(), program.path)

    return parity_program


def at_users_line(exc: PortError, programs, phase: str) -> PortError:
    """An adapter's :class:`PortError` (the user's code raised under one of parity's calls) as a
    :class:`ProgramError` at the user's file and line when the original exception passed through one of
    ``programs``' files; else as it is (the frames parity saw)."""
    from parity.run.boundary import raise_parity_fault

    raise_parity_fault(exc)  # a crash of parity's capture code under the user's call: parity's (exit 4)
    cause = exc.__cause__
    if cause is None or isinstance(exc, UserFileError):
        return exc
    err = program_error(cause, programs, f"{phase} ({exc.phase})")
    return err if err is not None else exc
