"""The float64 rebuild of a TF1 program: building it again with its float32 placeholders and
variables made float64 (:func:`_call_program`), tf_keras' non-fused batch normalisation kept to
the fused kernel's moving-variance convention (:func:`fused_batch_norm_convention`), every float32
left in the GraphDef rewritten to float64 with its constants taken as the decimals they print as
(:mod:`.retype`: :func:`_shortest`, :func:`_retype_graph_def`), and the notes that say so.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Callable, Mapping

import numpy as np

from ... import tensorflow
from .graph import _FLOAT, _is_tensor
from .retype import _retype_graph_def, _shortest  # noqa: F401  (the GraphDef rewrite; importable from here)

_BN_TOUCHED: list[str] = []  # layers fused_batch_norm_convention aligned in the last float64 build
_FUSED_EMULATED: list[str] = []  # fused batch norms _fused_as_float64 computed in the last float64 build


@contextlib.contextmanager
def fused_batch_norm_convention(dtype: str, touched: list | None = None):
    """In float64, give tf_keras' non-fused BatchNormalization the fused kernel's moving variance.

    FusedBatchNorm has float32 kernels only, so a 4-D BatchNormalization that runs fused in
    float32 runs non-fused in float64, and the two update the moving variance differently:
    fused with the Bessel-corrected batch variance (n / (n - 1), n = batch * height * width),
    non-fused with the biased one. Here the non-fused update of such a layer is scaled by
    n / (n - 1), so a float64 run computes what the float32 program computes. The names of
    the layers touched are appended to ``touched``.
    """
    try:
        from tf_keras.src.layers.normalization.batch_normalization import BatchNormalizationBase as BN
    except ImportError:  # no tf_keras: nothing to align
        yield
        return
    if dtype != "float64":
        yield
        return
    tf = tensorflow()
    call, assign = BN.call, BN._assign_moving_average

    def patched_call(self, inputs, training=None, mask=None):
        rank = inputs.shape.rank
        self._parity_bessel = None
        if (not self.fused and rank in (4, 5) and inputs.dtype == tf.float64 and self.virtual_batch_size is None
                and not self.renorm and self.adjustment is None):
            n = tf.cast(tf.size(inputs), tf.float64) / tf.cast(tf.size(self.moving_variance), tf.float64)
            # named: the TF1 fact reader (facts.bn_facts) takes a layer with it as storing the fused kernel's variance
            self._parity_bessel = tf.identity(n / (n - 1.0), name="fused_kernel_bessel")
            if touched is not None and self.name not in touched:
                touched.append(self.name)
        return call(self, inputs, training=training, mask=mask)

    def patched_assign(self, variable, value, momentum, inputs_size):
        if getattr(self, "_parity_bessel", None) is not None and variable is self.moving_variance:
            value = value * self._parity_bessel
        return assign(self, variable, value, momentum, inputs_size)

    BN.call, BN._assign_moving_average = patched_call, patched_assign
    try:
        yield
    finally:
        BN.call, BN._assign_moving_average = call, assign


def _fused_as_float64(fused):
    """``tf.compat.v1.nn.fused_batch_norm`` that, given a float64 ``x``, computes what the FusedBatchNormV3
    kernel computes (it has no float64 kernel) from float64 ops: training mode normalises with the biased batch
    variance and returns the Bessel-corrected one (n / (n - 1), n = the elements per channel), with
    ``exponential_avg_factor`` f != 1 the running averages (1 - f) * old + f * batch; inference mode normalises
    with the given mean and variance. Its ops sit under a ``FusedBatchNormV3`` name scope (the name the fused
    op has in the float32 program), which the BatchNorm fact reader takes as the fused kernel."""
    import functools

    @functools.wraps(fused)
    def emulated(x, scale, offset, mean=None, variance=None, epsilon=0.001, data_format="NHWC", is_training=True,
                 name=None, exponential_avg_factor=1.0):
        tf = tensorflow()
        x = tf.convert_to_tensor(x, name="input")
        if x.dtype.base_dtype != tf.float64 or x.shape.rank not in (4, 5):
            return fused(x, scale, offset, mean=mean, variance=variance, epsilon=epsilon, data_format=data_format,
                         is_training=is_training, name=name, exponential_avg_factor=exponential_avg_factor)
        with tf.name_scope(name or "FusedBatchNormV3") as scope:
            _FUSED_EMULATED.append(scope.rstrip("/"))
            rank = x.shape.rank
            axes = [0] + list(range(2, rank)) if data_format.startswith("NC") else list(range(rank - 1))
            shape = [1, -1] + [1] * (rank - 2) if data_format.startswith("NC") else [-1]

            def f64(t):
                t = tf.convert_to_tensor(t)
                return t if t.dtype.base_dtype == tf.float64 else tf.cast(t, tf.float64)

            scale, offset = f64(scale), f64(offset)
            if is_training:
                batch_mean, batch_var = tf.nn.moments(x, axes)
                n = tf.cast(tf.size(x), tf.float64) / tf.cast(tf.size(batch_mean), tf.float64)
                y = tf.nn.batch_normalization(x, tf.reshape(batch_mean, shape), tf.reshape(batch_var, shape),
                                              tf.reshape(offset, shape), tf.reshape(scale, shape), epsilon)
                out_mean, out_var = batch_mean, batch_var * (n / (n - 1.0))
                f = 1.0 if exponential_avg_factor is None else exponential_avg_factor  # None: the op's default
                if f != 1.0:
                    out_mean = (1.0 - f) * f64(mean) + f * out_mean
                    out_var = (1.0 - f) * f64(variance) + f * out_var
                return y, out_mean, out_var
            mean, variance = f64(mean), f64(variance)
            y = tf.nn.batch_normalization(x, tf.reshape(mean, shape), tf.reshape(variance, shape),
                                          tf.reshape(offset, shape), tf.reshape(scale, shape), epsilon)
            return y, mean, variance

    emulated._parity_fused_as_float64 = True
    return emulated


@contextlib.contextmanager
def fused_kernel_in_float64(dtype: str):
    """While a float64 rebuild builds: every ``fused_batch_norm`` the program (TF1 contrib ``batch_norm``, whose
    default fused=None meant fused; a legacy ``tf.layers`` BatchNorm that decides fused from its float32 dtype;
    a direct ``tf.nn.fused_batch_norm``) calls with a float64 input computes the fused kernel's maths in
    float64 (:func:`_fused_as_float64`). Restored after."""
    if dtype != "float64":
        yield
        return
    from tensorflow.python.ops import nn, nn_impl

    tf = tensorflow()
    owners = [nn_impl, nn, tf.compat.v1.nn]
    saved = [(o, o.fused_batch_norm) for o in owners if hasattr(o, "fused_batch_norm")
             and not getattr(o.fused_batch_norm, "_parity_fused_as_float64", False)]
    for owner, fn in saved:
        setattr(owner, "fused_batch_norm", _fused_as_float64(fn))
    try:
        yield
    finally:
        for owner, fn in reversed(saved):
            setattr(owner, "fused_batch_norm", fn)


_RNN_FUNCTIONS = ("dynamic_rnn", "static_rnn", "bidirectional_dynamic_rnn", "static_bidirectional_rnn",
                  "static_state_saving_rnn")


@contextlib.contextmanager
def rnn_dtype(source, target):
    """TF1's RNN functions (``dynamic_rnn(cell, x, dtype=tf.float32)``) and its cells' ``zero_state`` /
    ``get_initial_state`` given ``source`` take ``target``: the state a float64 rebuild starts from is
    float64, as its inputs and kernels are; ``tf.one_hot`` without a dtype (float32 by default: a
    char-RNN's inputs) makes ``target`` too. Only while the program builds; restored after."""
    import functools
    import inspect

    from tensorflow.python.ops import array_ops, rnn

    tf = tensorflow()
    saved = []

    def retype(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            try:
                bound = sig.bind_partial(*args, **kwargs)
            except TypeError:  # a wrong call: the function's own error, unchanged
                return fn(*args, **kwargs)
            given = bound.arguments.get("dtype")
            if given is not None and tf.as_dtype(given).base_dtype == source:
                bound.arguments["dtype"] = target
            elif given is None and fn.__name__ == "one_hot" and bound.arguments.get("on_value") is None \
                    and bound.arguments.get("off_value") is None:
                bound.arguments["dtype"] = target
            return fn(*bound.args, **bound.kwargs)
        wrapped._parity_retyped = True
        return wrapped

    places = [(mod, name) for mod in (rnn, tf.compat.v1.nn) for name in _RNN_FUNCTIONS if hasattr(mod, name)]
    if source == tf.float32:
        places += [(array_ops, "one_hot"), (tf.compat.v1, "one_hot"), (tf, "one_hot")]
    # TF1's cells (tf_keras' legacy cells): imported by the as-written build when the program has any
    legacy_cells = sys.modules.get("tf_keras.src.layers.rnn.legacy_cells")
    if legacy_cells is not None:
        places += [(cls, name) for cls in vars(legacy_cells).values() if isinstance(cls, type)
                   for name in ("zero_state", "get_initial_state") if name in vars(cls)]
    for owner, name in places:
        fn = vars(owner)[name] if isinstance(owner, type) else getattr(owner, name)
        if not getattr(fn, "_parity_retyped", False):
            saved.append((owner, name, fn))
            setattr(owner, name, retype(fn))
    try:
        yield
    finally:
        for owner, name, fn in reversed(saved):
            setattr(owner, name, fn)


@contextlib.contextmanager
def shared_variables_retyped(source, target):
    """TF1's variable store asked for a ``source`` variable gives the ``target`` one: a variable shared with
    ``reuse=True`` under the dtype the program writes (``tf.get_variable("w", shape, tf.float32)``, or the
    float32 default) finds the ``target`` variable the creator made, instead of refusing ("Trying to share
    variable ..., but specified dtype float32 and found dtype float64": a GAN's sampler, a second tower).
    Only while the program builds; restored after."""
    import functools
    import inspect

    from tensorflow.python.ops import variable_scope

    store = variable_scope._VariableStore
    get = store.get_variable
    sig = inspect.signature(get)

    @functools.wraps(get)
    def retyped(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        given = bound.arguments.get("dtype")
        if given is not None and tensorflow().as_dtype(given).base_dtype == source:
            bound.arguments["dtype"] = target
        return get(*bound.args, **bound.kwargs)

    store.get_variable = retyped
    try:
        yield
    finally:
        store.get_variable = get


def _silent(record) -> bool:
    """A logging filter that drops every record (TF's logger, while the program is built again)."""
    return False


def _compat_v1_modules(tf, first) -> list:
    """Each distinct ``tf.compat.v1`` module object there is now (the attribute, and the modules of that name)."""
    import sys

    found = [first, tf.compat.v1] + [sys.modules.get(n) for n in ("tensorflow.compat.v1", "tensorflow._api.v2.compat.v1")]
    return list({id(m): m for m in found if m is not None}.values())


def _call_program(fn: Callable[[], Any], graph, override: str | None) -> dict:
    """Call ``fn`` with ``graph`` as default, control flow v1, and float32 roots made ``override``."""
    tf = tensorflow()
    tf1 = tf.compat.v1
    from tensorflow.python.ops import control_flow_util

    was_v2 = control_flow_util.ENABLE_CONTROL_FLOW_V2
    placeholder, with_default = tf1.placeholder, tf1.placeholder_with_default
    logger = tf.get_logger()
    target = {"float64": tf.float64, "float32": tf.float32}.get(override or "")
    source = {"float64": tf.float32, "float32": tf.float64}.get(override or "")

    def retyped_placeholder(dtype, shape=None, name=None):
        if target is not None and tf.as_dtype(dtype) == source:
            dtype = target
        return placeholder(dtype, shape=shape, name=name)

    def retyped_with_default(input, shape, name=None):  # noqa: A002  (TF's argument name)
        if isinstance(input, float) or (isinstance(input, np.ndarray) and input.dtype == source.as_numpy_dtype):
            input = np.asarray(input, target.as_numpy_dtype)  # keep_prob = placeholder_with_default(1.0, [])
        elif tf.is_tensor(input) and input.dtype.base_dtype == source:
            input = tf.cast(input, target)
        return with_default(input, shape, name=name)

    def creator(next_creator, **kwargs):
        dtype = kwargs.get("dtype")
        init = kwargs.get("initial_value")
        if dtype is not None and tf.as_dtype(dtype).base_dtype == source:
            kwargs["dtype"] = target
        # a Python-float initial value (Adam's beta1_power) stays as the program makes it: the
        # GraphDef rewrite that follows turns it, and the ops that use it, into float64 together
        if callable(init) and kwargs.get("dtype") == target:
            kwargs["initial_value"] = lambda: tf.cast(init(), target)
        elif tf.is_tensor(init) and init.dtype.base_dtype == source:
            kwargs["initial_value"] = tf.cast(init, target)
            kwargs["dtype"] = target
        return next_creator(**kwargs)

    patched: list = []  # (a tf.compat.v1 module, its placeholder, its placeholder_with_default) as found
    control_flow_util.ENABLE_CONTROL_FLOW_V2 = False  # TF1's Switch/Merge: tensors stay feedable
    try:
        with graph.as_default():
            if target is None:
                return fn()
            # TF's own log lines were printed by the as-written build; here they would come twice, or
            # be TensorArray dtype complaints of a build that fails and is replaced by the rewrite
            logger.addFilter(_silent)
            with tf1.variable_creator_scope(creator), tf.variable_creator_scope(creator), \
                    fused_batch_norm_convention(override, _BN_TOUCHED), fused_kernel_in_float64(override), \
                    rnn_dtype(source, target), shared_variables_retyped(source, target):
                # every tf.compat.v1 there is now, patched last: the first time in a process, entering the scopes
                # above imports `tensorflow.compat.v1` as a module of its own, which becomes tf.compat.v1 (the
                # program's `tf1`), while `tf1` here is still the first one (`tensorflow._api.v2.compat.v1`)
                for module in _compat_v1_modules(tf, tf1):
                    patched.append((module, module.placeholder, module.placeholder_with_default))
                    module.placeholder, module.placeholder_with_default = retyped_placeholder, retyped_with_default
                return fn()
    finally:
        logger.removeFilter(_silent)
        for module, original, original_with_default in reversed(patched):
            module.placeholder, module.placeholder_with_default = original, original_with_default
        control_flow_util.ENABLE_CONTROL_FLOW_V2 = was_v2


def recovered_constants_note(dtype: str, recovered: list[str]) -> str:
    """The note on what :func:`_retype_graph_def` took as decimals: float32 scalar constants (the list),
    array constants and op attributes (``recovered.other``), and the float32 values it left
    (``recovered.left``), each where the list has it."""
    other, left = (sorted(set(getattr(recovered, k, []))) for k in ("other", "left"))
    done = sorted(set(recovered))
    parts = []
    if done:
        parts.append(
            f"{dtype}: {len(done)} float32 scalar constant(s) of the program (Python floats TF1 turns into float32, "
            "e.g. optimizer hyper-parameters) taken as the decimals they print as (or their reciprocals): "
            + "; ".join(done[:8]) + ("; ..." if len(done) > 8 else "")
            + ". A constant that is neither a short decimal nor the reciprocal of one (0.1/3) would differ from a "
            "float64 port by ~3e-8 relative: pass it as tf.constant(value, tf.float64) in a float64 program.")
    if other:
        parts.append(
            f"{dtype}: {len(other)} float32 array constant(s) or op attribute(s) taken as the short decimals they "
            "print as (an attribute is float32 in every TF graph: parity computes leaky_relu as "
            f"x > 0 ? x : x * alpha with a {dtype} alpha): " + "; ".join(other[:8]) + ("; ..." if len(other) > 8 else ""))
    if left:
        parts.append(
            f"{dtype}: {len(left)} float32 value(s) left as float32 in the {dtype} graph (~3e-8 relative from a "
            f"{dtype} port that uses the decimal): " + "; ".join(left[:8]) + ("; ..." if len(left) > 8 else ""))
    return " ".join(parts)


def _float_attributes(op) -> list[str]:
    """The float attributes of a float64 op whose float32 value is not the decimal it prints as."""
    found = []
    if not any(t.dtype.base_dtype.name == "float64" for t in list(op.outputs) + list(op.inputs)):
        return found
    for key, attr in op.node_def.attr.items():
        for v in ([attr.f] if attr.HasField("f") else list(attr.list.f) if attr.HasField("list") else []):
            v = float(np.float32(v))
            if _shortest(v) != v:
                found.append(f"{op.name} {key} = float32({_shortest(v)!r}) = {v!r} ({op.type}'s attribute)")
    return found


def float32_constants_note(graph) -> str | None:
    """Program written in float64: the note listing its float32 constants cast to float64 (TF1 optimizers)
    and the float attributes of its float64 ops (float32 in every graph: leaky_relu's alpha)."""
    found, attrs = [], []
    for op in graph.get_operations():
        attrs.extend(_float_attributes(op))
        if op.type == "Cast" and op.get_attr("SrcT").name == "float32" and op.get_attr("DstT").name == "float64":
            src = op.inputs[0].op
            if src.type == "Const" and src.outputs[0].shape.rank == 0:
                value = float(tensorflow().make_ndarray(src.get_attr("value")))
                if _shortest(value) != value:
                    found.append(f"{src.name} = float32({_shortest(value)!r}) = {value!r}")
    parts = []
    if found:
        parts.append(
            "float64 as written: the program's optimizer turns Python floats into float32 constants cast to "
            "float64 (" + "; ".join(sorted(set(found))[:6]) + "): the run trains with float32-rounded "
            "hyper-parameters (~3e-8 relative). Fix: pass them as tf.constant(value, tf.float64).")
    if attrs:
        parts.append(
            "float64 as written: op attributes are float32 in every TF graph (" + "; ".join(sorted(set(attrs))[:6])
            + "): the run computes with the float32-rounded value (~3e-8 relative). Fix: write the op from float64 "
            "tensors (leaky_relu: tf.maximum(x, alpha * x)).")
    return " ".join(parts) or None


def _written_dtype(built: Mapping[str, Any]) -> str:
    """The float dtype the program's inputs (or loss) are written in."""
    for ph in (built.get("inputs") or {}).values():
        if _is_tensor(ph) and ph.dtype.base_dtype.name in _FLOAT:
            return ph.dtype.base_dtype.name
    loss = built.get("loss")
    if _is_tensor(loss) and loss.dtype.base_dtype.name in _FLOAT:
        return loss.dtype.base_dtype.name
    return "float32"
