"""Compare two plain training programs (a TF1/Keras program and its PyTorch port) step by step.

The user's files are plain programs plus one function, ``parity_program()``, returning a dict of
the objects the program builds (model, optimizer, loss...). The capture adapters
(``torch_impl/capture.py``, ``tf_impl/v1/capture.py``, ``tf_impl/v2/capture.py``) record every
stage of a step; this module maps the reference's weights onto the port (:mod:`parity.mapping`),
runs both through :func:`parity.runner.run_case` as two in-memory ports, and returns the same
:class:`~parity.runner.CaseResult` as the catalogue, so the report, diagnosis and health work
unchanged. numpy only.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import os
import re
import sys
import time
import types
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from .errors import ParityError, PortError

__all__ = ["ParamSpec", "DropoutSite", "DtypeError", "KINDS", "Program", "load_program", "compare_programs",
           "ProgramRun", "ADAPTERS"]

#: framework -> the module holding its capture adapter
ADAPTERS = {"torch": "torch_impl.capture", "tf1": "tf_impl.v1.capture", "tf2": "tf_impl.v2.capture"}

#: the kinds a :class:`ParamSpec` may have
KINDS = (
    "dense_kernel", "conv_kernel", "bias", "bn_gamma", "bn_beta", "bn_mean", "bn_var", "ln_gamma", "ln_beta",
    "lstm_kernel", "lstm_recurrent", "lstm_bias", "embedding", "other",
)


@dataclass(frozen=True)
class ParamSpec:
    """One variable of a captured program, in its framework's own name and layout.

    Args:
        name: the program's own name (torch: ``features.0.weight``; TF: ``conv1/kernel``).
        shape: its shape in the framework's own layout (torch Linear ``[out, in]``, TF ``[in, out]``).
        kind: one of :data:`KINDS`.
        layer: the owning module / layer / scope.
        trainable: whether the optimizer trains it (BatchNorm statistics are not).
    """

    name: str
    shape: tuple
    kind: str
    layer: str
    trainable: bool = True

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.kind not in KINDS:
            raise ParityError(f"parameter {self.name}: unknown kind {self.kind!r}; expected one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class DropoutSite:
    """One dropout the adapter drives with parity's masks (channel-last mask shape, no batch size fixed)."""

    index: int
    name: str
    shape_channel_last: tuple
    rate: float

    def __post_init__(self):
        object.__setattr__(self, "shape_channel_last", tuple(int(s) for s in self.shape_channel_last))


class DtypeError(ParityError):
    """The program cannot run in the dtype asked (a TF1 optimizer's float32 constants in a float64 run).

    The message says what and how to fix it; :func:`compare_programs` reports that dtype only.
    """


# -- the user's files ---------------------------------------------------------------------------------
@dataclass
class Program:
    """A user's program: its file, framework and ``parity_program`` function."""

    path: str
    framework: str
    build: Callable

    @property
    def label(self) -> str:
        return os.path.basename(self.path)


_TF1_HINTS = re.compile(r"compat\.v1|placeholder\(|Session\(|disable_eager_execution|disable_v2_behavior|get_variable\(|import tensorflow\.compat\.v1")


def _framework_of(mod: types.ModuleType, source: str, where: str) -> str:
    declared = getattr(mod, "PARITY_FRAMEWORK", None)
    if declared is not None:
        if declared not in ADAPTERS:
            raise ParityError(f"{where}: PARITY_FRAMEWORK = {declared!r}; expected one of {', '.join(ADAPTERS)}")
        return declared
    roots = {v.__name__.split(".")[0] for v in vars(mod).values() if isinstance(v, types.ModuleType)}
    roots |= {getattr(v, "__module__", "").split(".")[0] for v in vars(mod).values() if callable(v)}
    has_torch = "torch" in roots
    has_tf = bool(roots & {"tensorflow", "keras", "tf_keras"})
    if has_torch and has_tf:
        raise ParityError(f"{where} imports both torch and TensorFlow: say which it is with PARITY_FRAMEWORK = 'torch' | 'tf1' | 'tf2'")
    if has_torch:
        return "torch"
    if has_tf:
        return "tf1" if _TF1_HINTS.search(source) else "tf2"
    raise ParityError(f"{where} imports neither torch nor TensorFlow: say which it is with PARITY_FRAMEWORK = 'torch' | 'tf1' | 'tf2'")


def load_program(source) -> Program:
    """Load a user's file (or take a ``parity_program`` function); bad input is a one-line ParityError."""
    if callable(source):
        mod = sys.modules.get(getattr(source, "__module__", ""), None)
        path = getattr(mod, "__file__", None) or getattr(source, "__qualname__", "program")
        text = open(path, encoding="utf-8").read() if mod is not None and os.path.isfile(path) else ""
        return Program(path, _framework_of(mod, text, path) if mod is not None else "torch", source)
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise ParityError(f"program file {path} does not exist")
    if not path.endswith(".py"):
        raise ParityError(f"program file {path} is not a Python file (.py)")
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    mod = _exec_file(path)
    sys.modules.pop(mod.__name__, None)
    framework = _framework_of(mod, text, path)

    def build():
        # A fresh run of the file for every capture: module-level objects (a model and optimizer
        # built at import, TF1 graph code at top level) are new each time, and built inside the
        # adapter's graph / default dtype. The module leaves sys.modules afterwards, so a finished
        # capture's model and optimizer state can be freed.
        fresh = _exec_file(path)
        try:
            return fresh.parity_program()
        finally:
            sys.modules.pop(fresh.__name__, None)

    return Program(path, framework, build)


_EXEC_COUNT = itertools.count()


def _exec_file(path: str) -> types.ModuleType:
    name = "parity_program_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0]) + f"_{next(_EXEC_COUNT)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ParityError(f"program file {path} is not a Python module")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses, pickling and tf.function look modules up by name
    if "tensorflow" not in sys.modules:  # TF's environment (oneDNN reordering off) before the file imports TF
        importlib.import_module("tf_impl") if importlib.util.find_spec("tf_impl") else None
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:  # a user's file can fail in any way; one line
        sys.modules.pop(name, None)
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ParityError(f"program file {path} does not load: {type(exc).__name__}: {line}") from None
    if not callable(getattr(mod, "parity_program", None)):
        raise ParityError(f"{path} defines no parity_program() function (it returns the program's objects; see docs/own-model.md)")
    return mod


def capture(program: Program, dtype: str):
    """Capture ``program`` in ``dtype`` with its framework's adapter."""
    try:
        adapter = importlib.import_module(ADAPTERS[program.framework])
    except ModuleNotFoundError as exc:
        raise ParityError(f"the {program.framework} capture adapter ({ADAPTERS[program.framework]}) is not available: {exc}") from None
    return adapter.capture(program.build, dtype=dtype, where=program.path)


# -- data ---------------------------------------------------------------------------------------------
def _draw_batches(specs: dict, steps: int, rng: np.random.Generator, classes: int | None, batch_size: int) -> list[dict]:
    """Batches from the input specs: float inputs N(0, 1); integer targets uniform over ``classes``;
    a float target of shape [None, K] named like a label (y, label(s), target(s)) one-hot rows."""
    out = []
    for _ in range(steps):
        b = {}
        for key, (shape, dtype) in specs.items():
            if shape is None:
                raise ParityError(f"cannot draw batch key {key!r}: its placeholder has no static rank; give 'data' in the reference file")
            shape = tuple(batch_size if s is None else int(s) for s in shape)
            if np.issubdtype(np.dtype(dtype), np.integer):
                if not classes:
                    raise ParityError(f"cannot draw integer batch key {key!r}: give 'data' in the reference file")
                b[key] = rng.integers(0, classes, size=shape).astype(dtype)
            elif re.fullmatch(r"y|labels?|targets?|y_true|y_", key) and len(shape) == 2:
                b[key] = np.eye(shape[1])[rng.integers(0, shape[1], size=shape[0])]
            else:
                b[key] = rng.normal(0.0, 1.0, size=shape)
        out.append(b)
    return out


def _as_batches(source, steps: int, where: str) -> list[dict]:
    try:
        it = iter(source() if callable(source) else source)
        batches = list(itertools.islice(it, steps))
    except ParityError:
        raise
    except Exception as exc:
        raise PortError("data", "data()", exc) from exc
    if len(batches) < steps:
        raise ParityError(f"{where}: data gave {len(batches)} batch(es) for {steps} steps (use --steps {len(batches)} or give more)")
    out = []
    for i, b in enumerate(batches):
        if not isinstance(b, dict) or not b:
            raise ParityError(f"{where}: batch {i} is a {type(b).__name__}, not a non-empty dict {{key: array}}")
        out.append({str(k): np.asarray(v) for k, v in b.items()})
    return out


_MASK = "__dropout_mask__/"


# -- the in-memory ports run_case drives ----------------------------------------------------------------
@dataclass
class ProgramRun:
    """What compare_programs decided before running: mapping, initial weights, batches, dropout masks."""

    reference: Program
    port: Program
    mapping: object
    initial: dict
    batches: list
    notes: list = field(default_factory=list)
    constrained: bool = False


class _Port:
    """One captured program behind the port protocol (build/load/parameters/step), in reference names."""

    def __init__(self, run: ProgramRun, side: str, dtype: str):
        from .mapping import apply_ops

        self.run, self.side, self.dtype, self._apply = run, side, dtype, apply_ops
        program = run.reference if side == "reference" else run.port
        self.prog = capture(program, dtype)
        m = run.mapping
        if side == "reference":
            self.names = {e.reference: (e.reference, e.reference_ops, e.trainable) for e in m.params}
            self.acts = {a: a for a, _ in m.forward}
            weights = {k: np.asarray(v, dtype=dtype) for k, v in run.initial.items() if k in self.names}
        else:
            self.names = {e.port: (e.reference, e.port_ops, e.trainable) for e in m.params}
            self.acts = {b: a for a, b in m.forward}
            weights = {k: np.asarray(v, dtype=dtype) for k, v in m.port_weights(run.initial).items()}
            if run.constrained and hasattr(self.prog, "report_constrained"):
                self.prog.report_constrained = True
        try:
            self.prog.load(weights)
        except Exception:
            self.close()
            raise

    def _rename(self, arrays: dict, trainable_only: bool = False) -> dict:
        out = {}
        for own, arr in arrays.items():
            hit = self.names.get(own)
            if hit is None or (trainable_only and not hit[2]):
                continue
            out[hit[0]] = self._apply(hit[1], arr)
        return out

    def _slots(self, arrays: dict) -> dict:
        out = {}
        for key, arr in arrays.items():
            own, _, slot = key.rpartition("/")
            hit = self.names.get(own)
            if hit is not None and slot:
                out[f"{hit[0]}/{slot}"] = self._apply(hit[1], arr)
        return out

    def parameters(self) -> dict:
        return self._rename(self.prog.parameters())

    def load(self, params) -> None:
        if params:
            raise ParityError("a program's port loads the mapped weights itself; the case has no parameters")

    def settings(self) -> dict:
        s = getattr(self.prog, "settings", None)
        return dict(s()) if callable(s) else {}

    def step(self, batch) -> dict:
        masks = {int(k[len(_MASK):]): v for k, v in batch.items() if k.startswith(_MASK)}
        data = {k: v for k, v in batch.items() if not k.startswith(_MASK)}
        raw = self.prog.step(data, masks)
        out: dict = {"inputs": {k: np.asarray(v) for k, v in data.items()}}
        for stage, arrays in raw.items():
            if stage == "forward":
                out[stage] = {self.acts[k]: v for k, v in arrays.items() if k in self.acts}
            elif stage in ("loss", "learning_rate"):
                out[stage] = dict(arrays)
            elif stage == "slots":
                out[stage] = self._slots(arrays)
            elif stage == "state":
                out[stage] = self._rename(arrays)
            elif stage == "inputs":
                continue
            else:
                out[stage] = self._rename(arrays, trainable_only=True)
        # a stage with nothing mapped in it (SGD without momentum has no slots; global_step alone
        # in state) is not reported: the other side reporting it too would be a false structure issue
        return {stage: arrays for stage, arrays in out.items() if arrays or stage in ("inputs",)}

    def close(self) -> None:
        close = getattr(self.prog, "close", None)
        if callable(close):
            close()


class _ProgramModule(types.ModuleType):
    """An in-memory port module (build/framework_info) for one side of a ProgramRun."""

    def __init__(self, run: ProgramRun, side: str):
        super().__init__(f"parity_program_port_{side}")
        self.run, self.side = run, side

    def build(self, case, dtype, variant=None):
        return _Port(self.run, self.side, dtype)

    def framework_info(self):
        fw = (self.run.reference if self.side == "reference" else self.run.port).framework
        if fw == "torch":
            from torch_impl import framework_info

            return framework_info()
        try:
            import tensorflow as tf

            return {"version": tf.__version__, "device": "cpu"}
        except ImportError:  # pragma: no cover
            return {"version": "?", "device": "cpu"}


_STORE: dict[str, list] = {}


def _register_data():
    from .data import DATA, register_data

    if "program" not in DATA:
        @register_data("program")
        def _program(case, rng, *, token):
            """The batches (and dropout masks) compare_programs prepared."""
            try:
                return [dict(b) for b in _STORE[token]]
            except KeyError:
                raise ParityError(f"the batches of {case.name} are gone (compare_programs holds them while it runs)", case=case.name) from None


def _masks(ref_sites, port_sites, batches, rng, notes) -> None:
    """Draw one keep-mask per reference dropout site per step (channel-last, 1 = keep) into the batches."""
    if len(ref_sites) != len(port_sites):
        notes.append(f"dropout: the reference has {len(ref_sites)} site(s), the port {len(port_sites)}: masks are given to the "
                     f"first {min(len(ref_sites), len(port_sites))}; the others draw their own (compare those layers statistically)")
    for i, site in enumerate(ref_sites):
        if i < len(port_sites) and tuple(port_sites[i].shape_channel_last[1:]) != tuple(site.shape_channel_last[1:]):
            notes.append(f"dropout site {i}: {site.name} {list(site.shape_channel_last)} vs {port_sites[i].name} "
                         f"{list(port_sites[i].shape_channel_last)} (channel-last): no mask given")
            continue
        if abs(site.rate - (port_sites[i].rate if i < len(port_sites) else site.rate)) > 1e-12:
            notes.append(f"dropout site {i}: rate {site.rate:g} in the reference, {port_sites[i].rate:g} in the port")
        for b in batches:
            n = _batch_size(b)
            shape = (n,) + tuple(site.shape_channel_last[1:])
            b[f"{_MASK}{i}"] = (rng.random(shape) < 1.0 - site.rate).astype(np.float64)


def _batch_size(batch: dict) -> int:
    sizes = [np.shape(v)[0] for k, v in batch.items() if np.ndim(v) >= 1 and not k.startswith(_MASK)]
    return int(sizes[0]) if sizes else 1


def _cost(mapping, acts: dict, batch: dict):
    from .cases import Cost

    kernels = [e for e in mapping.params if e.kind in ("dense_kernel", "conv_kernel", "lstm_kernel", "embedding")]
    fan_in = max([int(np.prod(e.shape[:-1])) for e in kernels] or [1])
    n = _batch_size(batch)
    positions = max([int(np.prod(np.shape(v)[:-1])) for v in acts.values() if np.ndim(v) >= 2] or [n])
    return Cost(depth=max(len(kernels), 1), reduction=max(fan_in, positions, n))


def prepare(reference, port, *, data=None, steps: int = 10, mapping=None, seed: int = 0, log=None) -> ProgramRun:
    """Load both programs, capture them once (float64), map the variables and the layer outputs.

    Raises:
        ParityError: bad input (file, keys, kinds, an unresolvable mapping), one line.
        PortError: the user's own code raised.
    """
    from .mapping import Mapping_, auto_map, load_mapping, match_activations, same_values

    ref, prt = load_program(reference), load_program(port)
    probe_notes: list[str] = []
    R = P = None
    for probe_dtype in ("float64", "float32"):  # a program that cannot run in float64 is probed in float32
        try:
            R = capture(ref, probe_dtype)
            P = capture(prt, probe_dtype)
            break
        except DtypeError as exc:
            if R is not None:
                R.close()
            R = P = None
            if probe_dtype == "float32":
                raise
            probe_notes.append(f"mapped in float32: {exc}")
        except BaseException:
            if R is not None:
                R.close()
            raise
    try:
        source = data if data is not None else getattr(R, "data_source", lambda: None)()
        if source is not None:
            batches = _as_batches(source, steps, ref.path)
        else:
            specs = dict(P.input_specs()) if hasattr(P, "input_specs") else {}
            specs.update(R.input_specs() if hasattr(R, "input_specs") else {})
            if not specs:
                raise ParityError(f"{ref.path}: no 'data' in parity_program()'s dict and no input shapes to draw batches from: "
                                  "add \"data\": a function returning batches ({key: array})")
            # an integer label placeholder of unknown rank (tf.placeholder(tf.int32, shape=(None))): one label per example
            specs = {k: ((None,) if sh is None and np.issubdtype(np.dtype(dt), np.integer) else sh, dt) for k, (sh, dt) in specs.items()}
            rng = np.random.default_rng([seed, 1])
            float_specs = {k: v for k, v in specs.items() if not np.issubdtype(np.dtype(v[1]), np.integer)}
            probe = _draw_batches(float_specs, 1, rng, None, 8)[0]
            classes = None
            if len(float_specs) != len(specs):
                acts = R.forward(dict(probe, **{k: np.zeros([8 if s is None else s for s in sh], dtype=dt)
                                              for k, (sh, dt) in specs.items() if k not in float_specs}), {})
                last = list(acts.values())[-1] if acts else None
                classes = int(np.shape(last)[-1]) if last is not None and np.ndim(last) >= 1 else None
            batches = _draw_batches(specs, steps, np.random.default_rng([seed, 1]), classes, 8)
        first = batches[0]
        # probes: call order, flatten orders, dropout sites (masks={} = identity, deterministic)
        R.forward(first, {})
        P.forward(first, {})
        if mapping is None:
            flat = getattr(P, "flatten_inputs", lambda: {})()
            rflat = getattr(R, "flatten_inputs", lambda: {})()
            m = auto_map(R.parameter_specs(), ref.framework, P.parameter_specs(), prt.framework,
                         ref_flatten=rflat, port_flatten=flat, reference_file=ref.path, port_file=prt.path)
        else:
            m = mapping if isinstance(mapping, Mapping_) else load_mapping(os.fspath(mapping))
            _check_mapping(m, R, P, ref.path, prt.path)
        initial = {k: np.asarray(v, dtype=np.float64) for k, v in R.parameters().items()}
        P.load(m.port_weights(initial))
        # the matching probe drives dropout with a real mask (the same on both sides): an identity
        # dropout would equal its input and could pair with the layer before it
        probe = [dict(first)]
        _masks(R.dropout_sites(), P.dropout_sites(), probe, np.random.default_rng([seed, 3]), [])
        pmasks = {int(k[len(_MASK):]): v for k, v in probe[0].items() if k.startswith(_MASK)}
        ar, ap = R.forward(first, pmasks), P.forward(first, pmasks)
        if not m.forward:
            pairs, left_r, left_p = match_activations(ar, ap)
            lr_, lp_ = getattr(R, "probe_loss", lambda: None)(), getattr(P, "probe_loss", lambda: None)()
            if lr_ is not None and lp_ is not None and same_values(lr_, lp_):
                # the two compute the same loss from the same weights: a pair of outputs that differ
                # here is two different cuts of the network (softmax inside a Dense vs logits), not a bug
                odd = [(a, b) for a, b in pairs if not same_values(ar[a], ap[b])]
                if odd:
                    pairs = [p for p in pairs if p not in odd]
                    left_r += [a for a, _ in odd]
                    left_p += [b for _, b in odd]
                    m.notes.append("layer outputs " + ", ".join(f"{a}/{b}" for a, b in odd) + " differ at the probe while the losses "
                                   "agree: different cuts of the network (e.g. a softmax inside a Dense layer), not compared")
            # a softmax / sigmoid inside one side's last layer (Keras Dense(activation="softmax")) vs logits
            # on the other: the same layer cut differently; not compared (the loss stage compares them)
            cut = [(a, b) for a, b in pairs if not same_values(ar[a], ap[b]) and _activated(ar[a], ap[b])]
            if cut:
                pairs = [p for p in pairs if p not in cut]
                left_r += [a for a, _ in cut]
                left_p += [b for _, b in cut]
                m.notes.append("layer outputs " + ", ".join(f"{a}/{b}" for a, b in cut) + ": one is the softmax (or sigmoid) "
                               "of the other (an activation inside a Dense layer vs logits): not compared")
            m.forward = pairs
            if left_r:
                m.not_compared["reference layer outputs"] = left_r
            if left_p:
                m.not_compared["port layer outputs"] = left_p
        else:
            bad = [f"{a} -> {b}" for a, b in m.forward if a not in ar or b not in ap]
            if bad:
                raise ParityError(f"mapping: layer outputs not found: {', '.join(bad)}; reference outputs: {', '.join(ar)}; port outputs: {', '.join(ap)}")
        notes = list(dict.fromkeys(probe_notes + [f"reference: {n}" for n in getattr(R, "notes", lambda: [])()]
                                   + [f"port: {n}" for n in getattr(P, "notes", lambda: [])()] + list(m.notes)))
        _masks(R.dropout_sites(), P.dropout_sites(), batches, np.random.default_rng([seed, 2]), notes)
        run = ProgramRun(ref, prt, m, initial, batches, notes, constrained=bool(getattr(R, "has_constraint", False)))
        run.cost = _cost(m, ar, first)
        return run
    finally:
        R.close()
        P.close()


def _activated(a, b) -> bool:
    """Whether one array is the softmax or the sigmoid (over the last axis) of the other."""
    from .mapping import same_values

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim < 1:
        return False

    def softmax(z):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def sigmoid(z):
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    with np.errstate(all="ignore"):
        return any(same_values(f(x), y) for f in (softmax, sigmoid) for x, y in ((a, b), (b, a)))


def _check_mapping(m, R, P, ref_path: str, port_path: str) -> None:
    rs = {s.name: s for s in R.parameter_specs()}
    ps = {s.name: s for s in P.parameter_specs()}
    problems = [f"reference has no {e.reference!r}" for e in m.params if e.reference not in rs]
    problems += [f"port has no {e.port!r}" for e in m.params if e.port not in ps]
    if problems:
        raise ParityError(f"mapping does not fit the programs: {'; '.join(problems)}. Reference ({ref_path}): "
                          f"{', '.join(rs)}. Port ({port_path}): {', '.join(ps)}")
    from .mapping import apply_ops

    for e in m.params:
        a = apply_ops(e.reference_ops, np.zeros(rs[e.reference].shape))
        b = apply_ops(e.port_ops, np.zeros(ps[e.port].shape))
        if a.shape != b.shape:
            raise ParityError(f"mapping: {e.reference} {list(rs[e.reference].shape)} -> {list(a.shape)} and {e.port} "
                              f"{list(ps[e.port].shape)} -> {list(b.shape)} do not meet in one shape")
    missing = [n for n, s in rs.items() if s.trainable and n not in m.by_reference()]
    if missing:
        raise ParityError(f"mapping leaves the reference's trainable {', '.join(missing)} unmapped")


def port_names(run: ProgramRun) -> tuple[str, str]:
    """The two port labels of the case: their frameworks (the port's gets ':port' when both are the same)."""
    a, b = run.reference.framework, run.port.framework
    return (a, f"{b}:port") if a == b else (a, b)


def compare_programs(reference, port, *, data=None, steps: int = 10, dtypes: Iterable[str] = ("float64", "float32"),
                     mapping=None, save_mapping: str | None = None, seed: int = 0, name: str | None = None):
    """Compare a program against its port, step by step, in each dtype; return a CaseResult.

    Args:
        reference: the reference program's file (or its ``parity_program`` function).
        port: the port's file (or function).
        data: batches (an iterable of dicts, or a function returning one); default: the reference's
            ``"data"``, else drawn from its input shapes.
        steps: training steps.
        dtypes: "float64" and/or "float32".
        mapping: a mapping file (or :class:`parity.mapping.Mapping_`) instead of the automatic one.
        save_mapping: write the mapping used to this JSON file.
        seed: seeds the drawn batches and the dropout masks.
        name: the case name in the report (default: ``diff:<ref>-vs-<port>``).

    The result also carries ``.mapping``, ``.notes`` and ``.program_run``.
    """
    from .cases import Case, Data
    from .mapping import save_mapping as _save
    from .runner import run_case

    dtypes = tuple(dtypes)
    for d in dtypes:
        if d not in ("float64", "float32"):
            raise ParityError(f"unknown dtype {d!r}; expected float64 or float32")
    if steps < 1:
        raise ParityError("steps must be >= 1")
    run = prepare(reference, port, data=data, steps=steps, mapping=mapping, seed=seed)
    if save_mapping:
        _save(run.mapping, save_mapping)
    _register_data()
    token = f"{id(run)}-{time.perf_counter_ns()}"
    _STORE[token] = run.batches
    rp, pp = port_names(run)
    case = Case(
        name=name or f"diff:{os.path.splitext(run.reference.label)[0]}-vs-{os.path.splitext(run.port.label)[0]}",
        module="(program)",
        title=f"{run.reference.path} vs {run.port.path}",
        ports=(rp, pp),
        params={},
        data=Data("program", {"token": token}),
        steps=steps,
        seed=seed,
        cost=run.cost,
        dtypes=dtypes,
        tags=("program",),
    )
    try:
        result = run_case(case, dtypes=dtypes, modules={rp: _ProgramModule(run, "reference"), pp: _ProgramModule(run, "port")},
                          sources={rp: run.reference.path, pp: run.port.path}, pairs="reference")
    finally:
        _STORE.pop(token, None)
    result.mapping = run.mapping
    result.notes = run.notes
    result.program_run = run
    return result
