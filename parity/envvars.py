"""The one list of the ``PARITY_*`` environment variables parity and its ports read.

Each entry says what the variable does, its default and which modules read it.
:func:`help_text` formats the list for ``parity --help``; the README's "Environment
variables" section lists the same names, and ``tests/test_envvars.py`` checks both against
the names the code uses. Standard library only: any layer may import this module.
(``PARITY_FRAMEWORK`` is not one of them: it is an attribute a user's program file may set,
read by ``parity/program/load.py``.)
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

__all__ = ["EnvVar", "VARIABLES", "NAMES", "get", "help_text"]


@dataclass(frozen=True)
class EnvVar:
    """One environment variable: its name, its default (in words), what it does, who reads it."""

    name: str
    default: str
    does: str
    readers: tuple[str, ...]


VARIABLES: tuple[EnvVar, ...] = (
    EnvVar(
        "PARITY_WORKERS",
        "1 (a worker process per framework)",
        "'0' (or 'no', 'false', empty) runs every port of `parity run` and `parity check` in the "
        "harness process instead of a worker process per framework (tf1, tf2, torch, numpy), "
        "and `parity diff`'s two programs there instead of one worker per program and run.",
        ("parity/run/workers.py",),
    ),
    EnvVar(
        "PARITY_JOBS",
        "automatic (one per core, at most 2, when a run has 6 or more cases and pitfalls; else 1)",
        "The number of harness processes ('jobs') `parity run` shares its cases among, each with its own "
        "framework workers; `parity run --jobs N` wins. 1 runs every case in the harness process. The report, "
        "the JSON and the exit code are those of one harness.",
        ("parity/cli/jobs.py",),
    ),
    EnvVar(
        "PARITY_ZYGOTE",
        "1 (the workers are forked from one interpreter that imported TensorFlow; with several jobs, torch's from a second "
        "one that imported torch)",
        "'0' (or 'no', 'false', empty) starts every worker of `parity run` and `parity check` as a fresh "
        "interpreter that imports its framework itself (about 5 s of CPU for TensorFlow, 1.5 s for torch) instead "
        "of forking it from the zygote.",
        ("parity/run/zygote.py",),
    ),
    EnvVar(
        "PARITY_PROFILE_WORKERS",
        "unset (no profile)",
        "A directory: each program worker of `parity diff` profiles itself (cProfile, CPU time) and writes "
        "`worker-<pid>-<name>.prof` there when it stops (where a diff spends its time; docs/performance.md).",
        ("parity/program/remote_worker.py",),
    ),
    EnvVar(
        "PARITY_TORCH_DEVICE",
        "cpu",
        "The device the torch ports run on ('cuda', 'cuda:1'...); TF32 stays off, so a GPU run is "
        "compared in IEEE float32. On CUDA the DDP ports use NCCL.",
        ("torch_impl/__init__.py", "torch_impl/distributed/config.py", "parity/tools/bench.py"),
    ),
    EnvVar(
        "PARITY_TORCH_THREADS",
        "1",
        "torch's intra-op threads (torch.set_num_threads) in the process running the torch ports. One: the "
        "catalogue's ports are small, thread start-up dominates their kernels, and the harness and the other "
        "frameworks' workers share the cores (the TF1 ports' sessions use one intra- and one inter-op thread, "
        "fixed; TensorFlow's eager threads: PARITY_TF_THREADS). Set it higher for a large model of your own.",
        ("torch_impl/__init__.py",),
    ),
    EnvVar(
        "PARITY_TF_THREADS",
        "1",
        "TensorFlow's eager intra- and inter-op threads (tf.config.threading) in the processes running TensorFlow "
        "ports and programs (the TF2/Keras ports, parity diff's TensorFlow programs). One, as torch's side: the "
        "workers share the cores, and a reduction split across threads rounds by the machine's core count "
        "(measured: TF2's float64 MLP then equals TF1's exactly, and its worker takes 8 % less CPU). 0 keeps "
        "TensorFlow's default (a thread per core). A program that ran TensorFlow before parity set it keeps its own.",
        ("tf_impl/__init__.py",),
    ),
    EnvVar(
        "PARITY_BLAS_THREADS",
        "1 (unless OPENBLAS_NUM_THREADS is set)",
        "numpy's BLAS threads (OpenBLAS) in parity's processes and the workers they start: the numpy oracle's "
        "matmuls are small, and a thread per core spins against the frameworks' threads (measured: 6.5x the "
        "CPU time of the seed 002 oracle at 2 threads on 2 loaded cores). 0 leaves OpenBLAS's own default.",
        ("parity/run/frameworks.py",),
    ),
    EnvVar(
        "PARITY_DIST_BACKEND",
        "gloo (nccl when PARITY_TORCH_DEVICE is cuda)",
        "The torch.distributed backend of the DDP ports (the `distributed` cases).",
        ("torch_impl/distributed/config.py",),
    ),
    EnvVar(
        "PARITY_DIST_TIMEOUT",
        "600",
        "Seconds the harness waits for a DDP worker's answer before it declares the worker hung.",
        ("torch_impl/distributed/port.py",),
    ),
    EnvVar(
        "PARITY_MNIST_DIR",
        "unset (sklearn's bundled 8x8 digits, resized to 28x28)",
        "A directory of MNIST IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, gzipped "
        "or not): the `digits` data is read from them instead.",
        ("parity/cases/datasets.py",),
    ),
    EnvVar(
        "PARITY_SUMMARY_DIR",
        "unset (no histograms)",
        "A directory: the encoder ports (seed 000) write TensorBoard histograms of every variable "
        "and gradient under `DIR/<case>/<port>-<dtype>`.",
        ("parity/trace/health.py",),
    ),
)

NAMES = frozenset(v.name for v in VARIABLES)


def get(name: str) -> EnvVar:
    """Return the entry for ``name`` (KeyError if parity does not read it)."""
    for var in VARIABLES:
        if var.name == name:
            return var
    raise KeyError(name)


def help_text(width: int = 80, indent: int = 2) -> str:
    """Format :data:`VARIABLES` as the ``environment variables:`` block of ``parity --help``.

    Plain lines, already wrapped to ``width`` (for ``argparse.RawDescriptionHelpFormatter``):
    each name on a line of its own, then what it does, its default and its readers, indented.
    """
    pad = " " * (indent + 4)
    lines = ["environment variables:"]
    for var in VARIABLES:
        lines.append(" " * indent + var.name)
        text = f"{var.does} Default: {var.default}. Read by {', '.join(var.readers)}."
        lines.extend(textwrap.wrap(text, width=width, initial_indent=pad, subsequent_indent=pad,
                                   break_on_hyphens=False))
    return "\n".join(lines) + "\n"
