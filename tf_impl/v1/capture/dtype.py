"""The float64 rebuild of a TF1 program: building it again with its float32 placeholders and
variables made float64 (:func:`_call_program`), tf_keras' non-fused batch normalisation kept to
the fused kernel's moving-variance convention (:func:`fused_batch_norm_convention`), every float32
left in the GraphDef rewritten to float64 with its scalar constants taken as the decimals they
print as (:func:`_shortest`, :func:`_retype_graph_def`), and the notes that say so.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Mapping

import numpy as np

from ... import tensorflow
from .graph import _FLOAT, _is_tensor

_BN_TOUCHED: list[str] = []  # layers fused_batch_norm_convention aligned in the last float64 build


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
            self._parity_bessel = n / (n - 1.0)
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


def _call_program(fn: Callable[[], Any], graph, override: str | None) -> dict:
    """Call ``fn`` with ``graph`` as default, control flow v1, and float32 roots made ``override``."""
    tf = tensorflow()
    tf1 = tf.compat.v1
    from tensorflow.python.ops import control_flow_util

    was_v2 = control_flow_util.ENABLE_CONTROL_FLOW_V2
    placeholder = tf1.placeholder
    target = {"float64": tf.float64, "float32": tf.float32}.get(override or "")
    source = {"float64": tf.float32, "float32": tf.float64}.get(override or "")

    def retyped_placeholder(dtype, shape=None, name=None):
        if target is not None and tf.as_dtype(dtype) == source:
            dtype = target
        return placeholder(dtype, shape=shape, name=name)

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

    control_flow_util.ENABLE_CONTROL_FLOW_V2 = False  # TF1's Switch/Merge: tensors stay feedable
    try:
        with graph.as_default():
            if target is None:
                return fn()
            tf1.placeholder = retyped_placeholder
            with tf1.variable_creator_scope(creator), tf.variable_creator_scope(creator), \
                    fused_batch_norm_convention(override, _BN_TOUCHED):
                return fn()
    finally:
        tf1.placeholder = placeholder
        control_flow_util.ENABLE_CONTROL_FLOW_V2 = was_v2


def _shortest(value: float) -> float:
    """The float64 of the shortest decimal that prints float32 ``value`` (what the author typed).

    A reciprocal of a short decimal (``1 / 0.75``, dropout's scale) is taken as that reciprocal
    when its decimal is shorter: float32(1.3333334) -> 1 / 0.75.
    """
    def digits(text: str) -> int:
        return len(text.replace("-", "").replace(".", "").lstrip("0"))

    direct = np.format_float_positional(np.float32(value), unique=True, trim="-")
    if value != 0:
        inverse = np.format_float_positional(np.float32(1.0 / np.float64(np.float32(value))), unique=True, trim="-")
        candidate = 1.0 / float(inverse)
        if digits(inverse) + 2 < digits(direct) and np.float32(candidate) == np.float32(value):
            return candidate
    return float(direct)


def _retype_attr(attr, src, dst) -> bool:
    changed = False
    if attr.HasField("type") and attr.type == src:
        attr.type, changed = dst, True
    if attr.HasField("list"):
        for i, t in enumerate(attr.list.type):
            if t == src:
                attr.list.type[i], changed = dst, True
    return changed


def _retype_graph_def(gdef, dtype: str) -> list[str]:
    """Rewrite every float32 of ``gdef`` to ``dtype`` (in place); return the constants recovered."""
    tf = tensorflow()
    from tensorflow.core.framework import types_pb2

    src, dst = (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE) if dtype == "float64" else (types_pb2.DT_DOUBLE, types_pb2.DT_FLOAT)
    np_dst = np.float64 if dtype == "float64" else np.float32
    recovered: list[str] = []
    no_kernel = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3", "FusedBatchNormGrad",
                 "FusedBatchNormGradV2", "FusedBatchNormGradV3"}

    def nodes():
        yield from gdef.node
        for fn in gdef.library.function:
            yield from fn.node_def

    for node in nodes():
        if node.op in no_kernel and dtype == "float64" and node.attr["T"].type == src:
            from parity.portkit.program import DtypeError

            raise DtypeError(
                f"the program cannot run in float64: {node.op} ({node.name}) has float32 kernels only; "
                "fix: build the batch normalisation with fused=False (tf.nn.fused_batch_norm has no float64 kernel)"
            )
        if node.op == "Const" and node.attr["dtype"].type == src:
            value = tf.make_ndarray(node.attr["value"].tensor)
            if dtype == "float64" and value.ndim == 0:
                new = np.asarray(_shortest(float(value)), np.float64)
                if float(new) != float(value) and "Initializer/" not in node.name and "initializer" not in node.name:
                    recovered.append(f"{node.name} = {float(new)!r} (float32: {float(value)!r})")
            else:
                new = value.astype(np_dst)
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(new))
        for key in node.attr:
            _retype_attr(node.attr[key], src, dst)
    for fn in gdef.library.function:
        for arg in list(fn.signature.input_arg) + list(fn.signature.output_arg):
            if arg.type == src:
                arg.type = dst
    return recovered


def recovered_constants_note(dtype: str, recovered: list[str]) -> str:
    """The note on the float32 scalar constants :func:`_retype_graph_def` took as decimals."""
    return (
        f"{dtype}: {len(recovered)} float32 scalar constant(s) of the program (Python floats TF1 "
        f"turns into float32, e.g. optimizer hyper-parameters) taken as the decimals they print as (or their reciprocals): "
        + "; ".join(sorted(set(recovered))[:8]) + ("; ..." if len(set(recovered)) > 8 else "")
        + ". A constant that is neither a short decimal nor the reciprocal of one (0.1/3) would differ from a float64 port by ~3e-8 "
        "relative: pass it as tf.constant(value, tf.float64) in a float64 program."
    )


def float32_constants_note(graph) -> str | None:
    """Program written in float64: the note listing its float32 constants cast to float64 (TF1 optimizers)."""
    found = []
    for op in graph.get_operations():
        if op.type == "Cast" and op.get_attr("SrcT").name == "float32" and op.get_attr("DstT").name == "float64":
            src = op.inputs[0].op
            if src.type == "Const" and src.outputs[0].shape.rank == 0:
                value = float(tensorflow().make_ndarray(src.get_attr("value")))
                if _shortest(value) != value:
                    found.append(f"{src.name} = float32({_shortest(value)!r}) = {value!r}")
    if not found:
        return None
    return (
        "float64 as written: the program's optimizer turns Python floats into float32 constants cast to "
        "float64 (" + "; ".join(sorted(set(found))[:6]) + "): the run trains with float32-rounded hyper-parameters "
        "(~3e-8 relative). Fix: pass them as tf.constant(value, tf.float64)."
    )


def _written_dtype(built: Mapping[str, Any]) -> str:
    """The float dtype the program's inputs (or loss) are written in."""
    for ph in (built.get("inputs") or {}).values():
        if _is_tensor(ph) and ph.dtype.base_dtype.name in _FLOAT:
            return ph.dtype.base_dtype.name
    loss = built.get("loss")
    if _is_tensor(loss) and loss.dtype.base_dtype.name in _FLOAT:
        return loss.dtype.base_dtype.name
    return "float32"
