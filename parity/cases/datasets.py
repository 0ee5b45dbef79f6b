"""Dataset-backed batch generators (:mod:`parity.cases.data` registers them; this module imports nothing of it).

Nothing is downloaded at run time:

* ``digits``: real handwritten digits. By default scikit-learn's bundled digits
  (``sklearn.datasets.load_digits``: 1797 images of 8x8, values 0..16, shipped inside the
  package) resized to 28x28 by bilinear interpolation written here in numpy and scaled to
  [0, 1]; when ``PARITY_MNIST_DIR`` names a directory holding the MNIST IDX files
  (``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``, gzipped or not), those
  are read instead (28x28, scaled by 1/255). Optional dropout keep-masks are drawn with
  the same generator, so every port applies the same mask.
* ``images``: synthetic colour images (normal or uniform pixels) with one-hot labels.
"""

from __future__ import annotations

import functools
import gzip
import os
from typing import Iterator, Sequence

import numpy as np

from parity.cases.case import Case
from parity.errors import ParityError

__all__ = ["bilinear_resize", "load_digits", "read_idx", "keep_masks", "digit_batches", "image_batches", "MNIST_ENV"]

#: Environment variable naming a directory of MNIST IDX files (used instead of sklearn's digits).
MNIST_ENV = "PARITY_MNIST_DIR"


def _interpolation_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Return the ``[n_out, n_in]`` matrix of 1-D linear interpolation with half-pixel centres."""
    # Half-pixel centres (TF2 tf.image.resize, PIL, torch align_corners=False): output
    # pixel i samples the input at (i + 0.5) * n_in / n_out - 0.5, clamped to the edges.
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    out = np.zeros((n_out, n_in))
    out[np.arange(n_out), lo] += 1.0 - frac
    out[np.arange(n_out), hi] += frac
    return out


def bilinear_resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``[N, H, W]`` images to ``[N, *size]`` by bilinear interpolation (half-pixel centres).

    Bilinear interpolation is separable: rows then columns, each a small matrix product.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3:
        raise ParityError(f"bilinear_resize expects [N, H, W] images, got shape {list(images.shape)}")
    rows = _interpolation_matrix(images.shape[1], int(size[0]))
    cols = _interpolation_matrix(images.shape[2], int(size[1]))
    return np.einsum("ih,nhw,jw->nij", rows, images, cols)


def read_idx(path: str) -> np.ndarray:
    """Read one IDX file (the MNIST format; ``.gz`` or not) into a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ParityError(f"cannot read IDX file {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ParityError(f"{path} is not an IDX file (bad magic number)")
    types = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in types:
        raise ParityError(f"{path}: unknown IDX element type 0x{raw[2]:02x}")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, types[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ParityError(f"{path}: header says {shape} ({int(np.prod(shape))} values), file holds {data.size}")
    return data.reshape(shape)


def _find(directory: str, prefix: str) -> str:
    names = sorted(n for n in os.listdir(directory) if n.startswith(prefix))
    if not names:
        raise ParityError(f"{MNIST_ENV}={directory} holds no {prefix}* file (expected {prefix}-idx?-ubyte[.gz])")
    return os.path.join(directory, names[0])


@functools.lru_cache(maxsize=4)
def _mnist(directory: str) -> tuple[np.ndarray, np.ndarray]:
    if not os.path.isdir(directory):
        raise ParityError(f"{MNIST_ENV}={directory} is not a directory")
    images = read_idx(_find(directory, "train-images"))
    labels = read_idx(_find(directory, "train-labels"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ParityError(f"MNIST files in {directory} have shapes {images.shape} and {labels.shape}")
    return images.astype(np.float64) / 255.0, labels.astype(np.int64)


def _bundled_digits_file() -> str | None:
    """Return the path of scikit-learn's bundled ``digits.csv.gz`` without importing sklearn."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(root, "datasets", "data", "digits.csv.gz")
        if os.path.isfile(path):
            return path
    return None


@functools.lru_cache(maxsize=4)
def _sklearn_digits(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    # Reading the bundled file directly skips sklearn's ~2 s import; it is the file
    # sklearn.datasets.load_digits reads (64 pixel columns, then the label).
    path = _bundled_digits_file()
    if path is not None:
        table = np.loadtxt(path, delimiter=",")
        raw, target = table[:, :-1].reshape(-1, 8, 8), table[:, -1]
    else:
        try:
            from sklearn.datasets import load_digits as _load
        except ImportError:
            raise ParityError(
                f"the digits data needs scikit-learn (pip install scikit-learn) or {MNIST_ENV} set to an MNIST directory"
            ) from None
        bunch = _load()
        raw, target = bunch.images, bunch.target
    images = bilinear_resize(raw / 16.0, size)
    # Bilinear weights are convex, so [0, 1] inputs stay in [0, 1] up to rounding.
    return np.clip(images, 0.0, 1.0), target.astype(np.int64)


def load_digits(size: tuple[int, int] = (28, 28), source: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images [N, H, W] in [0, 1], labels [N])`` of real handwritten digits.

    Args:
        size: the image size (sklearn's 8x8 digits are resized to it; MNIST must be 28x28).
        source: ``"sklearn"``, ``"mnist"`` (needs ``PARITY_MNIST_DIR``) or ``"auto"``
            (MNIST when ``PARITY_MNIST_DIR`` is set, else sklearn).
    """
    size = (int(size[0]), int(size[1]))
    directory = os.environ.get(MNIST_ENV)
    if source not in ("auto", "sklearn", "mnist"):
        raise ParityError(f"digits source must be 'auto', 'sklearn' or 'mnist', not {source!r}")
    if source == "mnist" and not directory:
        raise ParityError(f"digits source 'mnist' needs {MNIST_ENV} set to a directory of IDX files")
    if source == "mnist" or (source == "auto" and directory):
        images, labels = _mnist(directory)
        if images.shape[1:] != size:
            raise ParityError(f"MNIST images are {images.shape[1]}x{images.shape[2]}, the case asks for {size}")
        return images, labels
    return _sklearn_digits(size)


def keep_masks(rng: np.random.Generator, shape: Sequence[int], keep_prob: float) -> np.ndarray:
    """Draw a dropout keep-mask of 0/1 (1 with probability ``keep_prob``)."""
    if not 0.0 < keep_prob <= 1.0:
        raise ParityError(f"keep_prob must be in (0, 1], not {keep_prob}")
    return (rng.random(tuple(shape)) < keep_prob).astype(np.float64)


def _one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    out = np.zeros((len(labels), classes))
    out[np.arange(len(labels)), labels] = 1.0
    return out


def digit_batches(
    case: Case,
    rng: np.random.Generator,
    *,
    batch: int,
    flatten: bool = True,
    size: Sequence[int] = (28, 28),
    one_hot: bool = True,
    classes: int = 10,
    keep_prob: float | None = None,
    mask_units: int | None = None,
    mask_key: str = "keep_mask",
    x_key: str = "x",
    y_key: str = "y",
    source: str = "auto",
) -> Iterator[dict[str, np.ndarray]]:
    """Batches of real digits, shuffled each epoch (seed 001's ``mnist.train.next_batch``).

    ``x`` is ``[batch, H*W]`` (``flatten``, as the seed's placeholder) or ``[batch, H, W, 1]``;
    ``y`` one-hot ``[batch, classes]`` or integer labels. With ``keep_prob`` and
    ``mask_units``, each batch also carries ``keep_mask`` ``[batch, mask_units]`` of 0/1.
    """
    if batch < 1:
        raise ParityError(f"digits: batch must be >= 1, not {batch}", case=case.name)
    if (keep_prob is None) != (mask_units is None):
        raise ParityError("digits: give both keep_prob and mask_units for dropout masks, or neither", case=case.name)
    images, labels = load_digits(tuple(size), source)
    n = len(images)
    if batch > n:
        raise ParityError(f"digits: batch {batch} is larger than the data set ({n})", case=case.name)
    return _digit_stream(case, rng, images, labels, batch, flatten, one_hot, classes, keep_prob, mask_units, mask_key, x_key, y_key)


def _digit_stream(case, rng, images, labels, batch, flatten, one_hot, classes, keep_prob, mask_units, mask_key, x_key, y_key):
    n = len(images)
    order, pos = rng.permutation(n), 0
    for _ in range(case.steps):
        if pos + batch > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos : pos + batch]
        pos += batch
        x = images[idx]
        x = x.reshape(batch, -1) if flatten else x[..., None]
        y = _one_hot(labels[idx], classes) if one_hot else labels[idx]
        item = {x_key: x, y_key: y}
        if keep_prob is not None:
            item[mask_key] = keep_masks(rng, (batch, int(mask_units)), float(keep_prob))
        yield item


def image_batches(
    case: Case,
    rng: np.random.Generator,
    *,
    batch: int,
    shape: Sequence[int] = (32, 32, 3),
    classes: int = 10,
    x_key: str = "x",
    y_key: str = "y",
    distribution: str = "normal",
    low: float = 0.0,
    high: float = 1.0,
    mean: float = 0.0,
    stddev: float = 1.0,
) -> Iterator[dict[str, np.ndarray]]:
    """Synthetic NHWC images ``[batch, *shape]`` and one-hot labels ``[batch, classes]``.

    ``distribution`` is ``"normal"`` (mean, stddev) or ``"uniform"`` ([low, high)).
    """
    if batch < 1 or classes < 1:
        raise ParityError(f"images: batch and classes must be >= 1 (got {batch}, {classes})", case=case.name)
    if distribution not in ("normal", "uniform"):
        raise ParityError(f"images: distribution must be 'normal' or 'uniform', not {distribution!r}", case=case.name)
    size = (int(batch),) + tuple(int(s) for s in shape)
    return _image_stream(case, rng, size, batch, classes, x_key, y_key, distribution, low, high, mean, stddev)


def _image_stream(case, rng, size, batch, classes, x_key, y_key, distribution, low, high, mean, stddev):
    for _ in range(case.steps):
        x = rng.normal(mean, stddev, size=size) if distribution == "normal" else rng.uniform(low, high, size=size)
        y = _one_hot(rng.integers(0, classes, size=batch), classes)
        yield {x_key: x, y_key: y}
