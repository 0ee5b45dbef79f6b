"""The shared machinery of a TF1 port: one graph, one Session, loads by assign ops.

A port builds its graph once (placeholders, ``get_variable``, ``compute_gradients`` /
``apply_gradients``), then the graph is finalized: a port that creates ops inside its
training loop fails loudly instead of growing the graph every step (seed 001's bug).
Each step runs the fetches of the stages before the update together with the train op
(as the seeds do), then the constraint ops, then the fetches after the update.

A second port of the same class, case, dtype and variant built while the first is open and has
not stepped yet (the conditioning run beside the port's own float64 run: docs/tolerance.md) is
that port's *twin*: a new Session on the first port's finalized graph instead of a graph built
again. A Session holds its own variables and its own random ops' state (their seeds are the
graph's), so the twin steps as a freshly built port does (tests/test_speed_graph.py).

The first ``load()`` of a Session initializes the variables it does not assign (the optimizer's slots,
``global_step``) in the run that assigns the others, and ``parameters()`` right after a load returns the
values that run read back: one Session run where there were three (``global_variables_initializer``,
the assignments, the read), and no random initializer drawn for a weight the load overwrites. Any other
first use of ``session`` runs ``global_variables_initializer`` first, as a freshly built port always did;
so does a load where an initializer left to run reads a variable the load assigns (its value would
depend on the order of the two in one run).
"""

from __future__ import annotations

import weakref
from typing import Mapping

import numpy as np

from tf_impl import framework_info as _framework_info, tensorflow

__all__ = ["GraphPort", "framework_info", "tf_dtype"]


def framework_info() -> dict:
    return _framework_info()


def tf_dtype(dtype: str):
    tf = tensorflow()
    return {"float64": tf.float64, "float32": tf.float32}[dtype]


class GraphPort:
    """Base of a TF1 port. Subclasses implement ``define(tf, tf1)`` and set, in it:

    * ``self.variables``: canonical name -> tf.Variable (everything ``parameters()`` reports);
    * ``self.placeholders``: batch key -> placeholder;
    * ``self.before``: stage -> {name: tensor}, fetched before the update;
    * ``self.train_ops``: ops run, in order, for the update (train op, then constraints);
    * ``self.after``: stage -> {name: tensor or variable}, fetched after the update.
    """

    def __init__(self, case, dtype: str, variant: str | None = None):
        key = (type(self), case.name, dtype, variant)
        twin = _twin_of(key, case)
        if twin is not None:  # its finalized graph, a Session of this port's own (the module's docstring)
            self.__dict__.update({k: v for k, v in twin.__dict__.items() if k not in _OWN})
        else:
            self.case, self.dtype, self.variant = case, dtype, variant
            tf = tensorflow()
            tf1 = tf.compat.v1
            self.tf, self.tf1 = tf, tf1
            self.graph = tf.Graph()
            self.variables: dict = {}
            self.placeholders: dict = {}
            self.before: dict = {}
            self.train_ops: list = []
            self.after: dict = {}
            self.extra_loads: dict = {}  # name -> list of variables that load the same value (EMA shadows)
            with self.graph.as_default():
                tf1.set_random_seed(case.seed)
                self.define(tf, tf1)
                self._assign_in = {}
                self._assign_ops = []
                for name, var in self.variables.items():
                    ph = tf1.placeholder(var.dtype.base_dtype, var.shape, name=f"load_{len(self._assign_ops)}")
                    self._assign_in[name] = ph
                    ops = [var.assign(ph)] + [v.assign(ph) for v in self.extra_loads.get(name, [])]
                    self._assign_ops.extend(ops)
                self._init = tf1.global_variables_initializer()
                self._init_rest = _initializer_of_the_rest(tf1, self._assign_ops)
                self.graph.finalize()
        _OPEN.setdefault(key, []).append(weakref.ref(self))
        self._stepped = False
        config = self.tf1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
        self._session = self.tf1.Session(graph=self.graph, config=config)
        self._uninitialized = True  # global_variables_initializer not run yet: the first use runs it
        self._loaded = None  # the values the last load() read back, until anything else uses the Session

    @property
    def session(self):
        """The port's Session, its variables initialized (the module's docstring)."""
        self._loaded = None  # whatever runs next may move a variable
        if self._uninitialized:
            self._uninitialized = False
            self._session.run(self._init)
        return self._session

    # -- to implement -------------------------------------------------------------
    def define(self, tf, tf1) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- the port protocol --------------------------------------------------------
    def parameters(self) -> dict[str, np.ndarray]:
        if self._loaded is not None:  # right after a load: the values its run read back (the module's docstring)
            return {k: v.copy() for k, v in self._loaded.items()}
        return self.session.run(dict(self.variables))

    def load(self, params: Mapping[str, np.ndarray]) -> None:
        feed = {self._assign_in[k]: np.asarray(v) for k, v in params.items() if k in self._assign_in}
        if self._uninitialized and self._init_rest is not None:
            # the variables this load does not assign are initialized in its run
            values, _ = self._session.run([self._assign_ops, self._init_rest], feed)
            self._uninitialized = False
        else:
            values = self.session.run(self._assign_ops, feed)
        # each assign op's value is its variable read after the assignment: what parameters() would read
        at = 0
        loaded = {}
        for name in self.variables:
            loaded[name] = values[at]
            at += 1 + len(self.extra_loads.get(name, ()))
        self._loaded = loaded

    def feed(self, batch: Mapping[str, np.ndarray]) -> dict:
        return {ph: batch[key] for key, ph in self.placeholders.items()}

    def step(self, batch: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
        self._stepped = True
        try:
            return self._step(batch)
        except RuntimeError as exc:
            if "finalized" in str(exc):
                raise RuntimeError(
                    "the port creates ops inside its training loop (the graph is finalized after "
                    "building; seed 001's summary op made the graph grow every step): build every "
                    "op once, before the loop"
                ) from exc
            raise

    def _step(self, batch: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
        feed = self.feed(batch)
        ops = list(self.train_ops)
        if self.before and ops:
            # One run fetches the stages before the update and runs the train op, as the seeds'
            # sess.run([train_op, loss, ...]) does: apply_gradients consumes the very gradient
            # tensors fetched, and every fetched forward value feeds the loss those gradients
            # depend on, so no fetched value can see an updated variable. (Two runs would
            # compute the forward and backward passes twice.) Constraints run after.
            out = self.session.run({"before": self.before, "train": ops.pop(0)}, feed)["before"]
        else:
            out = self.session.run(self.before, feed) if self.before else {}
        for op in ops:
            self.session.run(op, feed)
        if self.after:
            out.update(self.session.run(self.after, feed))
        return out

    def close(self) -> None:
        self._stepped = True  # never a twin's source once closed
        self._loaded = None
        self._session.close()


#: (class, case name, dtype, variant) -> weak references to the ports built so (the twins' sources)
_OPEN: dict = {}
#: what a twin does not take from its source: its own Session and its state
_OWN = ("_session", "_stepped", "_uninitialized", "_loaded")


def _initializer_of_the_rest(tf1, assign_ops):
    """The initializer of the global variables that ``assign_ops`` do not assign, or None where one of their
    initializers reads an assigned variable (an EMA shadow's ``initialized_value()``): run with the
    assignments, its value would depend on which of the two ran first (the module's docstring)."""
    # an assign op's first input is its variable: the resource handle's op, or the ref variable's own op
    assigned = {a.op.inputs[0].op.name for a in assign_ops}
    rest = [v for v in tf1.global_variables() if _handle_op(v).name not in assigned]
    init = tf1.variables_initializer(rest)
    seen, todo = set(), [init]
    while todo:  # every op the initializer depends on
        op = todo.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if op.name in assigned:
            return None
        todo.extend(t.op for t in op.inputs)
        todo.extend(op.control_inputs)
    return init


def _handle_op(var):
    handle = getattr(var, "handle", None)
    return handle.op if handle is not None else var.op


def _twin_of(key, case):
    """An open port of ``key`` that has not stepped, built for an equal case (its graph to share), or None."""
    alive = [r for r in _OPEN.get(key, ()) if r() is not None]
    if alive:
        _OPEN[key] = alive
    else:
        _OPEN.pop(key, None)
    for ref in alive:
        port = ref()
        if port is not None and not port._stepped and port.case == case:
            return port
    return None
