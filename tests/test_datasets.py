"""parity.cases.datasets: the digits and images generators, the resize, the IDX reader (numpy only)."""

import gzip
import os

import numpy as np
import pytest

from parity.cases import datasets
from parity.cases.case import Case, Data
from parity.cases.data import DATA, batches
from parity.errors import ParityError


def _case(kind, steps=3, **args):
    return Case(name=f"t_{kind}", module="none", title="", ports=("numpy",), params={}, data=Data(kind, args), steps=steps)


def test_bilinear_resize_reproduces_linear_ramps_and_constants():
    # Bilinear interpolation is exact on affine images away from the clamped border.
    n = 8
    ramp = np.add.outer(np.arange(n) * 2.0, np.arange(n) * 3.0)[None]
    out = datasets.bilinear_resize(ramp, (28, 28))
    src = (np.arange(28) + 0.5) * n / 28 - 0.5
    inside = (src >= 0) & (src <= n - 1)
    expected = np.add.outer(src * 2.0, src * 3.0)
    # a few float64 operations per pixel on values up to ~35: a handful of ulps, far below 1e-13
    np.testing.assert_allclose(out[0][np.ix_(inside, inside)], expected[np.ix_(inside, inside)], rtol=1e-13)
    const = datasets.bilinear_resize(np.full((2, 8, 8), 0.7), (28, 28))
    np.testing.assert_allclose(const, 0.7, rtol=1e-15)  # convex weights summing to 1: <= 2 ulp


def test_bilinear_resize_identity_and_bad_shape():
    x = np.random.default_rng(0).random((3, 8, 8))
    # same size: the weights are 1 and 0 up to rounding of the source coordinate (1 ulp of values < 1)
    np.testing.assert_allclose(datasets.bilinear_resize(x, (8, 8)), x, rtol=0, atol=1e-15)
    with pytest.raises(ParityError):
        datasets.bilinear_resize(x[0], (4, 4))


def test_digits_are_real_scaled_and_labelled(monkeypatch):
    monkeypatch.delenv(datasets.MNIST_ENV, raising=False)
    images, labels = datasets.load_digits()
    assert images.shape == (1797, 28, 28)
    assert images.min() == 0.0 and images.max() == 1.0
    assert sorted(set(labels.tolist())) == list(range(10))
    # A real digit has ink in the middle and a blank border.
    assert images[:, 12:16, 12:16].mean() > images[:, :2, :].mean()


def test_digits_batches(monkeypatch):
    monkeypatch.delenv(datasets.MNIST_ENV, raising=False)
    case = _case("digits", steps=120, batch=32, keep_prob=0.75, mask_units=1024)
    out = batches(case, "float32")
    assert len(out) == 120
    b = out[0]
    assert b["x"].shape == (32, 784) and b["x"].dtype == np.float32
    assert b["y"].shape == (32, 10) and np.all(b["y"].sum(1) == 1)
    assert b["keep_mask"].shape == (32, 1024)
    assert set(np.unique(b["keep_mask"]).tolist()) == {0.0, 1.0}
    masks = np.stack([x["keep_mask"] for x in out])
    # 120*32*1024 Bernoulli(0.75) draws: std of the mean is sqrt(.75*.25/n) = 1.1e-4; 6 sigma.
    assert abs(masks.mean() - 0.75) < 6 * np.sqrt(0.75 * 0.25 / masks.size)
    # Same seed, same batches; an epoch is 56 batches, so reshuffling was exercised.
    again = batches(case, "float32")
    for a, c in zip(out, again):
        for k in a:
            np.testing.assert_array_equal(a[k], c[k])
    image = batches(_case("digits", steps=1, batch=4, flatten=False, one_hot=False), "float64")[0]
    assert image["x"].shape == (4, 28, 28, 1) and image["y"].dtype.kind == "i"


def test_digits_bad_arguments(monkeypatch):
    monkeypatch.delenv(datasets.MNIST_ENV, raising=False)
    for args in ({"batch": 0}, {"batch": 4, "keep_prob": 0.5}, {"batch": 5000}, {"batch": 4, "source": "web"}):
        with pytest.raises(ParityError):
            batches(_case("digits", **args))
    with pytest.raises(ParityError, match="PARITY_MNIST_DIR"):
        batches(_case("digits", batch=4, source="mnist"))


def _write_idx(path, array, dtype_code=0x08):
    header = bytes([0, 0, dtype_code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    data = header + array.astype(">u1").tobytes()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(data)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_mnist_directory_is_read_with_numpy(tmp_path, monkeypatch, suffix):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(50, 28, 28))
    labels = rng.integers(0, 10, size=50)
    _write_idx(os.path.join(tmp_path, f"train-images-idx3-ubyte{suffix}"), images)
    _write_idx(os.path.join(tmp_path, f"train-labels-idx1-ubyte{suffix}"), labels)
    np.testing.assert_array_equal(datasets.read_idx(os.path.join(tmp_path, f"train-labels-idx1-ubyte{suffix}")), labels)
    monkeypatch.setenv(datasets.MNIST_ENV, str(tmp_path))
    got_images, got_labels = datasets.load_digits()
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_allclose(got_images, images / 255.0, rtol=1e-15)  # one division: <= 1 ulp
    b = batches(_case("digits", steps=2, batch=10), "float64")[0]
    rows = [int(np.argmax(r)) for r in b["y"]]
    assert all(any(np.array_equal(x, im.reshape(-1) / 255.0) for im in images[labels == r]) for x, r in zip(b["x"], rows))


def test_idx_reader_rejects_garbage(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ParityError, match="magic"):
        datasets.read_idx(str(bad))
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 1]) + np.asarray([10], ">u4").tobytes() + b"\x00" * 3)
    with pytest.raises(ParityError, match="holds 3"):
        datasets.read_idx(str(short))


def test_images_generator():
    assert "images" in DATA
    out = batches(_case("images", steps=2, batch=8), "float32")
    assert out[0]["x"].shape == (8, 32, 32, 3) and out[0]["y"].shape == (8, 10)
    assert np.all(out[0]["y"].sum(1) == 1)
    uni = batches(_case("images", steps=1, batch=64, shape=(4, 4, 1), classes=3, distribution="uniform", x_key="img", y_key="lab"))[0]
    assert uni["img"].shape == (64, 4, 4, 1) and uni["lab"].shape == (64, 3)
    assert 0.0 <= uni["img"].min() and uni["img"].max() < 1.0
    with pytest.raises(ParityError):
        batches(_case("images", batch=2, distribution="cauchy"))


def test_generators_do_not_import_frameworks():
    import subprocess
    import sys

    code = (
        "import sys; from parity.cases.data import batches; from parity.cases.registry import get_case; "
        "batches(get_case('seed001_convnet')); "
        "print(sorted(m for m in ('tensorflow', 'torch', 'sklearn') if m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if k != datasets.MNIST_ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"
