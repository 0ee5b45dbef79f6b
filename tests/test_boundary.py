"""parity.run.boundary.to_array: one copy per tensor, never a view of a port's state, always C order."""

import numpy as np
import pytest

from parity.run.boundary import to_array
from parity.errors import ParityError


def _owns(arr: np.ndarray, *others) -> bool:
    return not any(np.shares_memory(arr, o) for o in others)


def test_numpy_values_are_copied_in_c_order():
    w = np.arange(12.0).reshape(3, 4)
    for v in (w, w.T, w[:, ::2]):
        a = to_array(v, "p", "x")
        np.testing.assert_array_equal(a, v)
        assert a.flags.c_contiguous and _owns(a, w)
    with pytest.raises(ParityError, match="not an array of numbers"):
        to_array(np.array(["a"]), "p", "x")


@pytest.mark.torch
def test_torch_tensors_transposed_or_not_are_copied_once():
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.arange(12.0, dtype=torch.float32).reshape(3, 4))
    for v in (p, p.T, p.detach()[1:], p.detach().T.reshape(2, 6)):  # requires grad, transposed, sliced
        a = to_array(v, "p", "x")
        np.testing.assert_array_equal(a, v.detach().numpy())
        assert a.flags.c_contiguous and a.dtype == np.float32 and _owns(a, p.detach().numpy())
    a = to_array(p.T, "p", "x")
    with torch.no_grad():
        p.mul_(2.0)  # the optimizer's in-place update after the step returned
    np.testing.assert_array_equal(a, np.arange(12.0, dtype=np.float32).reshape(3, 4).T)


@pytest.mark.tf
def test_tf_tensors_and_variables_are_copied_once():
    tf = pytest.importorskip("tensorflow")
    v = tf.Variable(np.arange(6.0).reshape(2, 3))
    t = tf.convert_to_tensor(v)  # a read of the variable, as the TF2 transformer port returns
    a, b = to_array(t, "p", "x"), to_array(v, "p", "x")
    v.assign_add(np.ones((2, 3)))  # the next step's update
    np.testing.assert_array_equal(a, np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(b, np.arange(6.0).reshape(2, 3))
    assert _owns(a, np.asarray(t)) and a.flags.c_contiguous
