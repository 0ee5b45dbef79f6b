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
