"""The torch ports' boundary copies: a tensor read out through a layout change is copied once (the change makes
the new array), and never handed out as a view of a tensor the port later updates in place."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from parity.portkit.layout import conv_from_torch, nchw_to_nhwc  # noqa: E402
from torch_impl._common import to_numpy, to_numpy_as  # noqa: E402


@pytest.mark.parametrize("convert", [conv_from_torch, nchw_to_nhwc, lambda a: a, lambda a: a.reshape(-1)])
def test_to_numpy_as_is_the_converted_copy_and_owns_its_memory(convert):
    t = torch.arange(2 * 3 * 4 * 5, dtype=torch.float64).reshape(2, 3, 4, 5).requires_grad_()
    got = to_numpy_as(t, convert)
    want = convert(to_numpy(t))
    assert got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes()
    with torch.no_grad():
        t.add_(1.0)  # the optimizer's in-place update: what was read out must not move
    assert got.tobytes() == want.tobytes()
    assert not np.may_share_memory(got, t.detach().numpy())


def test_a_layout_change_is_the_only_copy():
    t = torch.zeros(8, 32, 28, 28, dtype=torch.float64)
    calls = []

    def convert(a):
        calls.append(np.may_share_memory(a, t.numpy()))  # it is handed the tensor's own buffer, not a copy
        return nchw_to_nhwc(a)

    to_numpy_as(t, convert)
    assert calls == [True]
