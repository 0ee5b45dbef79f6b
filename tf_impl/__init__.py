"""TensorFlow ports: ``v1/`` (graph + Session, tf.compat.v1, faithful to the seeds) and ``v2/`` (eager, Keras).

Importing this package sets the environment TensorFlow reads at import time: quiet logs
and oneDNN's reordered float32 kernels off, so CPU float32 results are reproducible run
to run (PITFALLS, "How this was measured").
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

#: Conventions of TensorFlow written down as data (the docs and the settings check read them).
CONVENTIONS = {
    "dense_kernel_layout": "[in, out]",
    "conv_kernel_layout": "HWIO",
    "activation_layout": "NHWC",
    "flatten_order": "(h, w, c)",
    "bn_momentum": 0.99,  # moving = moving*momentum + batch*(1-momentum)
    "bn_epsilon": 1e-3,
    "adam_epsilon_tf1": 1e-8,  # epsilon-hat, added to sqrt(uncorrected v)
    "adam_epsilon_keras": 1e-7,
    "dropout_argument": "keep_prob (TF1) / rate (TF2)",
    "clip_global_norm_eps": 0.0,
}


_TF32_SET: list = []  # [True] once tensorflow() turned TF32 off in this process
_THREADS_SET: list = []  # [True] once tensorflow() set the eager threads in this process


def _set_threads(tf) -> None:
    """TensorFlow's eager intra- and inter-op threads: ``PARITY_TF_THREADS`` (default 1; 0 keeps TensorFlow's,
    one per core). One, as the TF1 ports' sessions and torch's side: the ports are small, the workers share the
    cores, and a reduction split across threads rounds by the machine's core count (measured: TF2's float64 MLP
    then equals TF1's exactly; the catalogue's TF2 worker 8 % less CPU)."""
    text = os.environ.get("PARITY_TF_THREADS", "1").strip()
    try:
        n = int(text)
        if n < 0:
            raise ValueError
    except ValueError:
        from parity.errors import ParityError

        raise ParityError(f"PARITY_TF_THREADS must be a number of threads (0: TensorFlow's default), not {text!r}") from None
    if n:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(n)
        except RuntimeError:  # the eager context started already (a program ran TensorFlow first): its threads stand
            pass


def tensorflow():
    """Import TensorFlow with this package's environment; the one place tf_impl imports it.

    The TF1 ports use deprecated APIs on purpose (they are faithful to TF1 code), so TF's
    deprecation notices are silenced here; everything else still reaches the user.
    """
    import warnings

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    # tf.layers.dense & co. warn with a stacklevel that points at the port's own line
    warnings.filterwarnings("ignore", message=r".*is deprecated.*", category=UserWarning)
    for module in ("tensorflow", "tf_keras", "keras"):
        warnings.filterwarnings("ignore", category=UserWarning, module=module)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
    if not _THREADS_SET:
        _set_threads(tf)
        _THREADS_SET.append(True)
    if not _TF32_SET:
        # IEEE float32 matmuls and convolutions on a GPU, as torch's side (TF's default on Ampere and later is
        # TF32); once per process, so that a user's program that turns it back on keeps it (a program fact)
        tf.config.experimental.enable_tensor_float_32_execution(False)
        _TF32_SET.append(True)
    return tf


def preload() -> None:
    """Import TensorFlow and run nothing: a process that forks TF ports starts each from here (parity.run.isolate)."""
    import tensorflow  # noqa: F401


def framework_info() -> dict:
    """Return TensorFlow's version and the device the ports run on."""
    tf = tensorflow()
    return {"version": tf.__version__, "device": "cpu"}


def cached(cache: "OrderedDict", key: tuple, make, size: int):
    """``cache[key]``, made by ``make()`` if missing; least recently used entries dropped beyond ``size``.

    The dense ports keep built graphs by structure: the thorough property profile draws a new
    structure for most examples, and unbounded such a cache grew to 10 GB in 34 minutes. A port
    holds its own reference, so an entry dropped here stays alive while a port uses it.
    """
    if key in cache:
        cache.move_to_end(key)
    else:
        cache[key] = make()
        while len(cache) > size:
            cache.popitem(last=False)
    return cache[key]
