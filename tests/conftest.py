"""Shared test set-up: the frameworks' environment, and skipping what the machine lacks."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import pytest  # noqa: E402


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


HAS_TF = _has("tensorflow")
HAS_TORCH = _has("torch")


def pytest_collection_modifyitems(config, items):
    gpu = False
    if HAS_TORCH:
        import torch

        gpu = torch.cuda.is_available()
    for item in items:
        if "gpu" in item.keywords and not gpu:
            item.add_marker(pytest.mark.skip(reason="no CUDA device here"))
        if "tf" in item.keywords and not HAS_TF:
            item.add_marker(pytest.mark.skip(reason="TensorFlow is not installed"))
        if "torch" in item.keywords and not HAS_TORCH:
            item.add_marker(pytest.mark.skip(reason="PyTorch is not installed"))


_KERAS_DECIDED: list = []


@pytest.fixture(autouse=True)
def _keras_3_stays_keras_3():
    """``tf.keras`` is decided once per process, at its first use, from ``TF_USE_LEGACY_KERAS``; tests of
    legacy programs (``tf.layers``, ``tf.nn.rnn_cell``) set that variable, and parity's own
    ``prepare_environment`` sets it for such a file. Here ``tf.keras`` is decided as Keras 3 before any test
    can set it (TF's ``tf.compat.v1`` legacy loaders are separate and still follow it), and the variable
    is put back after each test, so one test's legacy program never turns the catalogue's Keras ports into
    tf_keras ones."""
    saved = os.environ.get("TF_USE_LEGACY_KERAS")
    if HAS_TF and saved is None and not _KERAS_DECIDED:
        import tensorflow as tf

        getattr(tf.keras, "layers", None)  # the lazy loader's first use: Keras 3, once for the process
        _KERAS_DECIDED.append(True)
    yield
    if saved is None:
        os.environ.pop("TF_USE_LEGACY_KERAS", None)
    else:
        os.environ["TF_USE_LEGACY_KERAS"] = saved
