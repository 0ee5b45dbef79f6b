"""PyTorch ports, idiomatic: nn.Module, autograd, torch.optim, torch.nn.utils.

Module and function names mirror ``tf_impl/v1``. The device comes from
``PARITY_TORCH_DEVICE`` (default ``cpu``); TF32 is turned off for the comparison
(PITFALLS P45), so a GPU run is compared in IEEE float32.
"""

import os

#: Conventions of PyTorch written down as data (the docs and the settings check read them).
CONVENTIONS = {
    "dense_kernel_layout": "[out, in]",
    "conv_kernel_layout": "OIHW",
    "activation_layout": "NCHW",
    "flatten_order": "(c, h, w)",
    "bn_momentum": 0.1,  # running = (1-momentum)*running + momentum*batch
    "bn_epsilon": 1e-5,
    "adam_epsilon": 1e-8,  # added to sqrt(bias-corrected v)
    "dropout_argument": "p (drop probability)",
    "clip_global_norm_eps": 1e-6,
}


def torch():
    """Import torch, set up for a comparison (TF32 off); the one place torch_impl imports it."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    global _THREADS_SET
    if not _THREADS_SET:
        # The ports are small: one intra-op thread avoids thread start-up costs that dominate
        # tiny kernels (the TF1 sessions use one thread too). PARITY_TORCH_THREADS overrides.
        torch.set_num_threads(int(os.environ.get("PARITY_TORCH_THREADS", "1")))
        _THREADS_SET = True
    return torch


_THREADS_SET = False


def preload() -> None:
    """Import torch and run nothing (no tensor, no thread set): a process that forks torch workers starts each
    from here (parity.run.zygote); the worker sets its threads when it first asks :func:`torch`.

    ``torch._dynamo`` too: ``torch.optim`` imports it at an optimizer's first step (its ``_disable_dynamo``), which
    cost every torch worker 1.1 s of CPU at its first case (measured: the first open of seed 002's torch port 1.13 s
    -> 0.02 s with it imported before); it starts no thread (a fork after it is as safe as after ``import torch``)."""
    import torch  # noqa: F401
    import torch._dynamo  # noqa: F401


def device() -> str:
    """The device the ports run on: ``PARITY_TORCH_DEVICE`` or ``cpu``."""
    return os.environ.get("PARITY_TORCH_DEVICE", "cpu")


def cuda_available() -> bool:
    """Whether torch sees a CUDA device."""
    return bool(torch().cuda.is_available())


def framework_info() -> dict:
    """Return torch's version and the device the ports run on."""
    t = torch()
    dev = device()
    name = dev
    if dev.startswith("cuda") and t.cuda.is_available():
        name = f"{dev} ({t.cuda.get_device_name(t.device(dev))})"
    return {"version": t.__version__, "device": name}
