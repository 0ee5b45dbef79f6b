"""The captured TF1 program parity drives: :class:`TF1Program` analyses the graph the user's
``parity_program()`` built (by concept, in the sibling modules), imports it (retyped where the
run's dtype differs) into the graph that runs with parity's own read, load and dropout-shape ops,
and implements the protocol: ``parameter_specs()``, ``parameters()``, ``load()``, ``step()``,
``forward()``, ``dropout_sites()``, ``input_specs()``, ``settings()``, ``notes()``, ``close()``.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from parity.errors import ParityError

from ... import tensorflow
from .analyse import (check_program, feed_names, find_constrained, find_model_state, find_update_ops, initializers,
                      param_kind, raw_gradients, train_op_of, _shape_of)
from .dropout import DropoutFeeds, dropout_notes, find_dropout
from .dtype import _retype_graph_def, float32_constants_note, recovered_constants_note
from .forward import BIDIRECTIONAL_NOTE, bidirectional_names, fetch_tensor, forward_ops, layer_outputs
from .graph import _VARIABLE_OPS, _ancestors, graph_ops_reading
from .inputs import lookup_bounds, sparse_inputs, variable_feeds  # noqa: F401  (importable from here, as before)
from . import phases as _phases
from .phases import program_forms  # noqa: F401  (parity.program.load applies it to the program's dict)
from .optimizer import find_applies, find_slots, read_apply_ops, read_settings, resolve_settings


def _with_rnn_stacks(graph, forward: list) -> list:
    """``forward`` with the stacked sequence output (``TensorArrayStack``) of each ``dynamic_rnn`` in TF1 control
    flow whose loop is on the path to the loss while its sequence output is not (a ``bidirectional_dynamic_rnn``
    whose loss reads the final states only): its outputs are then recorded like any ``dynamic_rnn``'s, the
    sequence output and the final state (``scope/c``, ``scope/h``), in creation order."""
    on = set(forward)
    scopes = {op.name.split("/while/Exit_")[0] for op in forward if op.type == "Exit" and "/while/Exit_" in op.name}
    extra = []
    for scope in sorted(scopes):
        try:
            op = graph.get_operation_by_name(f"{scope}/TensorArrayStack/TensorArrayGatherV3")
        except KeyError:
            continue
        if op not in on:
            extra.append(op)
    if not extra:
        return forward
    order = {op: i for i, op in enumerate(graph.get_operations())}
    return sorted(forward + extra, key=order.__getitem__)


def _records():
    """``ParamSpec`` and ``DropoutSite`` of :mod:`parity.program.prepare` (same fields before it exists)."""
    try:
        from parity.portkit.program import DropoutSite, ParamSpec
    except ImportError:  # parity/program/prepare.py not landed yet: the contract's fields, duck-typed
        from collections import namedtuple

        ParamSpec = namedtuple("ParamSpec", "name shape kind layer trainable")
        DropoutSite = namedtuple("DropoutSite", "index name shape_channel_last rate")
    return ParamSpec, DropoutSite


class TF1Program:
    """A user's TF1 program, captured (see :mod:`tf_impl.v1.capture`). Use :func:`capture`."""

    framework = "tf1"
    graph_ops_reading = staticmethod(graph_ops_reading)

    def __init__(self, program: Mapping[str, Any], graph, dtype: str, notes: list[str], written: str,
                 where: str = "tf1 program"):
        self.where = where
        tf = tensorflow()
        tf1 = tf.compat.v1
        self.dtype, self._notes, self.written = dtype, list(notes), written
        self.data = program.get("data")
        self._analyse(program, graph)
        gdef = graph.as_graph_def()
        from .bn_order import order_shared_updates, shared_updates_note  # a BatchNorm called twice per run

        note = shared_updates_note(order_shared_updates(gdef))
        if note:
            self._notes.append(note)
        if dtype != written:
            recovered = _retype_graph_def(gdef, dtype)
            if recovered:
                self._notes.append(recovered_constants_note(dtype, recovered))
        elif dtype == "float64":
            note = float32_constants_note(graph)
            if note is not None:
                self._notes.append(note)
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf1.import_graph_def(gdef, name="")
            self._bind(tf, tf1)
            self.graph.finalize()
        config = program.get("session_config")
        if config is None:
            config = tf1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
        self.session = tf1.Session(graph=self.graph, config=config)
        self.session.run([self.graph.get_operation_by_name(n) for n in self._initializers])
        self.session.run(list(self._t_var_feeds.values()))
        self._resolve_rates()

    # -- analysis on the graph the program built ---------------------------------------------
    def _analyse(self, program: Mapping[str, Any], graph) -> None:
        """Read what the program holds, by name (the graph that runs is another: see :meth:`_bind`)."""
        tf1 = tensorflow().compat.v1
        program, phases = _phases.take(program)  # several train ops in one step (a GAN): phases.py
        program, self._sparse = sparse_inputs(program)
        inputs, loss, optimizer, gvs = check_program(program, self.where)
        train_op = train_op_of(program, optimizer, gvs, graph, self._notes)
        self.input_keys = list(inputs)
        self._inputs = {k: ph.name for k, ph in inputs.items()}
        self._input_dtypes = {k: ph.dtype.base_dtype.name for k, ph in inputs.items()}
        self._ranges = lookup_bounds(inputs)
        self._loss = loss.name
        self._train = train_op.name
        program, self._var_feeds = variable_feeds(program)
        self._feeds = feed_names(program, self.where)
        train_deps = _ancestors([train_op])
        # update ops: run with the train op unless it already depends on them
        update_ops, self._extra = find_update_ops(program, graph, train_deps, tf1, self._notes)

        # the optimizer's apply ops: processed gradients, learning rate, slots; the raw gradients
        variables = [op for op in graph.get_operations() if op.type in _VARIABLE_OPS]
        self._var_names = {op: op.name for op in variables}
        trained = self._applied = find_applies(graph, train_deps, self.where)  # var op -> apply op
        if trained:
            (self._processed, self._apply_type, self._lr, self._hyper,
             self._nesterov) = read_apply_ops(trained, self._var_names)
            self._raw = raw_gradients(trained, self._var_names, graph, loss, self._notes)
            self._slots, owned = find_slots(optimizer, gvs, graph, trained, self._var_names, tf1)
        else:  # a hand-written update (tf.assign_sub(v, lr * g)): what can be seen, docs/own-model.md
            trained = self._applied = _phases.hand_written(self, graph, train_deps, loss)
            owned = {}
        self._phases = []
        if phases:  # each train op's own stages; the variables of every phase are the parameters
            self._phases, trained, more = _phases.analyse(phases, graph, self._var_names, self.where, self._notes, tf1)
            self._applied, owned = trained, {**owned, **more}

        # state: every other variable; constrained: what the post ops assign
        self._state = {self._var_names[v]: v.name for v in variables if v not in trained and v not in owned}
        self._post, self._constrained = find_constrained(program, self._var_names)

        # the parameters: trained variables and the model state loaded like them
        forward = forward_ops(graph, inputs.values(), loss)
        model_state = find_model_state(variables, trained, owned, forward, update_ops)
        self._specs_vars = [v for v in variables if v in trained or v in model_state]
        self._kinds = {v: param_kind(v, self._var_names[v], forward) for v in self._specs_vars}
        self._trainable = {v: v in trained for v in self._specs_vars}
        self._shapes = {v: tuple(int(d) for d in _shape_of(v)) for v in self._specs_vars}

        # forward activations and dropout sites
        self._dropout = find_dropout(forward)
        self._notes.extend(dropout_notes(self._dropout))
        self._forward, self._forward_kind = layer_outputs(_with_rnn_stacks(graph, forward), trained, model_state, self._dropout)
        if bidirectional_names(self._forward):
            self._notes.append(BIDIRECTIONAL_NOTE.format(names=", ".join(bidirectional_names(self._forward))))

        self._initializers = initializers(graph, variables, tf1)
        self._settings = read_settings(optimizer)

    # -- the graph that runs ---------------------------------------------------------------------
    def _bind(self, tf, tf1) -> None:
        g = self.graph
        T = g.get_tensor_by_name
        self._bind_variables(tf, tf1)
        self._t_inputs = {k: T(n) for k, n in self._inputs.items()}
        self._t_sparse = {k: tuple(T(n) for n in names) for k, (names, _) in self._sparse.items()}
        self._t_feeds = {T(n): v for n, v in self._feeds.items()}
        before = {
            "forward": {k: fetch_tensor(T, tf, n) for k, n in self._forward.items()},
            "loss": {"loss": T(self._loss)},
            "gradients": {k: T(n) for k, n in self._raw.items()},
            "processed_gradients": {k: T(n) for k, n in self._processed.items()},
        }
        if self._lr is not None:
            before["learning_rate"] = {"lr": T(self._lr)}
        self._before = {s: d for s, d in before.items() if d}
        self._train_ops = [g.get_operation_by_name(self._train)] + [g.get_operation_by_name(n) for n in self._extra]
        after = {
            "parameters": {self._var_names[v]: self._reads[self._var_names[v]] for v in self._applied},
            "slots": {k: self._reads[n] for k, n in self._slots.items()},
            "state": {k: self._reads[n] for k, n in self._state.items()},
        }
        self._after = {s: d for s, d in after.items() if d}
        self._post_ops = [g.get_operation_by_name(n) for n in self._post]
        self._t_constrained = {k: self._reads[n] for k, n in self._constrained.items()}
        self._dropout_feeds = DropoutFeeds(self._dropout, g, tf)
        self._t_phases = _phases.bind(self, g)
        self._t_hyper = {k: T(n) for k, n in self._hyper.items()}

    def _bind_variables(self, tf, tf1) -> None:
        """parity's ops on the variables: a read of every one, a load (placeholder + assign) of each parameter."""
        g = self.graph
        self._reads, self._loads, self._load_ops = {}, {}, {}
        everything = set(self._var_names.values())
        for name in everything:
            op = g.get_operation_by_name(name)
            dt = op.get_attr("dtype")
            if op.type == "VarHandleOp":
                read = tf.raw_ops.ReadVariableOp(resource=op.outputs[0], dtype=dt, name=f"parity/read/{name}")
            else:
                read = tf.identity(op.outputs[0], name=f"parity/read/{name}")
            self._reads[name] = read
        for v in self._specs_vars:
            name = self._var_names[v]
            op = g.get_operation_by_name(name)
            dt = op.get_attr("dtype")
            ph = tf1.placeholder(dt, op.get_attr("shape"), name=f"parity/load/{name}")
            if op.type == "VarHandleOp":
                assign = tf.raw_ops.AssignVariableOp(resource=op.outputs[0], value=ph, name=f"parity/assign/{name}")
            else:
                assign = tf1.assign(op.outputs[0], ph, name=f"parity/assign/{name}")
            self._loads[name] = ph
            self._load_ops[name] = assign
        self._t_var_feeds = {}  # a fed variable: its value assigned before every run (its reads see it)
        for name, value in self._var_feeds.items():
            op = g.get_operation_by_name(name)
            value = np.asarray(value, dtype=tf.as_dtype(op.get_attr("dtype")).as_numpy_dtype)
            if op.type == "VarHandleOp":
                assign = tf.raw_ops.AssignVariableOp(resource=op.outputs[0], value=value, name=f"parity/feed/{name}")
            else:
                assign = tf1.assign(op.outputs[0], value, name=f"parity/feed/{name}")
            self._t_var_feeds[name] = assign

    def _resolve_rates(self) -> None:
        """The dropout rates and the optimizer's hyper-parameters that do not depend on the batch."""
        self._dropout_feeds.read_rates(lambda t: self.session.run(t, self._t_feeds))
        hyper = dict(self._t_hyper)
        if self._lr is not None:
            hyper["lr"] = self.graph.get_tensor_by_name(self._lr)
        resolve_settings(self._settings, hyper, lambda t: self.session.run(t, self._t_feeds), self.dtype,
                         self._apply_type, self._nesterov)

    # -- the protocol ----------------------------------------------------------------------------
    def parameter_specs(self) -> list:
        ParamSpec, _ = _records()
        out = []
        for v in self._specs_vars:
            name = self._var_names[v]
            layer = name.rsplit("/", 1)[0] + "/" if "/" in name else name
            out.append(ParamSpec(name, self._shapes[v], self._kinds[v], layer, self._trainable[v]))
        return out

    def parameters(self) -> dict[str, np.ndarray]:
        return self.session.run({self._var_names[v]: self._reads[self._var_names[v]] for v in self._specs_vars})

    def load(self, params: Mapping[str, np.ndarray]) -> None:
        unknown = sorted(set(params) - set(self._loads))
        if unknown:
            raise ParityError(f"{self.where}: no parameter {unknown[0]!r} to load")
        feed, ops = {}, []
        for name, value in params.items():
            ph = self._loads[name]
            value = np.asarray(value, dtype=ph.dtype.as_numpy_dtype)
            if tuple(value.shape) != tuple(ph.shape.as_list()):
                raise ParityError(f"{self.where}: {name} has shape {tuple(ph.shape.as_list())}, "
                                  f"the value to load {tuple(value.shape)}")
            feed[ph] = value
            ops.append(self._load_ops[name])
        if ops:
            self.session.run(ops, feed)

    def _feed(self, batch: Mapping[str, np.ndarray], masks: Mapping[int, np.ndarray] | None) -> dict:
        if self._t_var_feeds:  # "feeds": {variable: value} holds the value in every run, as assign_lr(sess, v) does
            self.session.run(list(self._t_var_feeds.values()))
        feed = dict(self._t_feeds)
        for key, ph in self._t_inputs.items():
            if key not in batch:
                raise ParityError(f"{self.where}: the batch has no {key!r} (its keys: {', '.join(sorted(batch))})")
            value = np.asarray(batch[key])
            if key in self._t_sparse:  # a sparse_placeholder: fed from the dense batch (zeros left out)
                indices, values, shape = self._t_sparse[key]
                feed[indices] = np.argwhere(value != 0).astype(np.int64)
                feed[values] = value[value != 0].astype(values.dtype.as_numpy_dtype)
                feed[shape] = np.asarray(value.shape, dtype=np.int64)
                continue
            if value.dtype.kind == "f" and ph.dtype.is_floating:
                value = value.astype(ph.dtype.as_numpy_dtype)
            feed[ph] = value
        self._dropout_feeds.feed(feed, masks, self.session.run)
        return feed

    def step(self, batch: Mapping[str, np.ndarray], masks: Mapping[int, np.ndarray] | None = None) -> dict:
        feed = self._feed(batch, masks)
        if self._t_phases:
            return _phases.step(self, feed)
        run = self.session.run
        fetches = {"before": self._before, "train": self._train_ops}
        if not hasattr(self, "_reg_terms"):  # the loss's regularisation terms (docs/stages.md)
            from .optimizer import regularization_terms

            T = self.graph.get_tensor_by_name
            self._reg_terms = [T(n) for n in regularization_terms(T(self._loss), list(self._t_inputs.values()))]
        if self._reg_terms:
            fetches["regularization"] = self._reg_terms
        self._dropout_feeds.add_fetches(fetches)
        # One run fetches the stages before the update and runs the train op, as a TF1 script's
        # sess.run([train_op, loss, ...]) does: the fetched gradients are the ones applied.
        got = run(fetches, feed)
        out = {s: dict(d) for s, d in got["before"].items()}
        if self._reg_terms:
            terms = [np.asarray(v) for v in got["regularization"]]
            out["regularization"] = {"regularization": np.asarray(sum(terms[1:], terms[0]), dtype=terms[0].dtype)}
        self._dropout_feeds.record(got)
        if self._after:
            out.update(run(self._after))
        if self._post_ops:
            run(self._post_ops, feed)
            out["constrained"] = run(self._t_constrained)
        return out

    def forward(self, batch: Mapping[str, np.ndarray], masks: Mapping[int, np.ndarray] | None = None) -> dict:
        """One training-mode forward pass: the layer outputs; no train op, no update op runs."""
        feed = self._feed(batch, masks)
        fetches = {"forward": self._before.get("forward", {})}
        self._dropout_feeds.add_fetches(fetches)
        got = self.session.run(fetches, feed)
        self._dropout_feeds.record(got)
        return got["forward"]

    def dropout_sites(self) -> list:
        """The dropout sites the adapter drives (shapes as seen by the last forward or step)."""
        _, DropoutSite = _records()
        return [DropoutSite(*site) for site in self._dropout_feeds.driven(self.where)]

    def input_specs(self) -> dict:
        """Batch key -> (shape with None for unknown dims, dtype): what the program's placeholders take."""
        return {k: self._sparse[k][1] if k in self._sparse else
                (tuple(self._t_inputs[k].shape.as_list()) if self._t_inputs[k].shape.rank is not None else None,
                 self._t_inputs[k].dtype.base_dtype.name) for k in self.input_keys}

    def input_ranges(self) -> dict:
        """Integer batch key -> the table size of the embedding lookup it feeds (None: not static)."""
        return dict(self._ranges)

    def data_source(self):
        """The program's own "data" (a function returning batches), or None."""
        return self.data

    @property
    def has_constraint(self) -> bool:
        return bool(self._post)

    def forward_kinds(self) -> dict[str, str]:
        """Each forward output's kind: linear, conv, activation, pool, norm, dropout, embedding."""
        return dict(self._forward_kind)

    def settings(self) -> dict:
        return dict(self._settings)

    def facts(self) -> dict:
        """The program's facts, read from its graph (:mod:`.facts`; compared in :mod:`parity.program.facts`)."""
        from .facts import facts

        return facts(self)

    def notes(self) -> list[str]:
        return list(self._notes)

    def close(self) -> None:
        self.session.close()
