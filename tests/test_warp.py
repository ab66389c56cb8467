"""The warp and rotation operators shared by the burst and ADI methods."""

import pytest
import torch

from sklearn_mbdl.operators import Warp, motion_matrix, rotate, warp


@pytest.mark.parametrize("model, params", [
    ("translation", [[0.3, -1.2], [1.7, 0.4]]),
    ("euclidean", [[0.3, -1.2, 0.05], [-0.6, 0.2, -0.1]]),
    ("affine", [[0.02, -0.03, 0.01, 0.04, 0.5, -0.7], [0.0, 0.0, 0.0, 0.0, 1.5, 0.2]]),
])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_warp_adjoint_passes_the_dot_product_test(model, params, mode):
    g = torch.Generator().manual_seed(0)
    A = Warp(torch.tensor(params, dtype=torch.float64), model=model, mode=mode)
    x = torch.randn(2, 9, 11, dtype=torch.float64, generator=g)
    y = torch.randn(2, 9, 11, dtype=torch.float64, generator=g)
    lhs, rhs = (A(x) * y).sum(), (x * A.adjoint(y)).sum()
    assert torch.isclose(lhs, rhs, rtol=1e-10), (lhs, rhs)


def test_integer_translation_is_a_shift():
    x = torch.randn(1, 8, 10, dtype=torch.float64)
    out = warp(x, torch.tensor([[2.0, -1.0]], dtype=torch.float64))
    # out(row, col) = x(row - 1, col + 2) away from the border
    assert torch.allclose(out[0, 1:, :-2], x[0, :-1, 2:])


def test_rotation_round_trip_and_quarter_turn():
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(1, 1, 40, 40, dtype=torch.float64, generator=g)
    smooth = torch.nn.functional.avg_pool2d
    x = smooth(smooth(noise, 5, 1), 5, 1).reshape(1, 32, 32)  # a smooth field
    # a quarter turn of the centred grid is exact: it permutes the pixels
    assert torch.allclose(rotate(x, 90.0), torch.rot90(x, -1, dims=(-2, -1)), atol=1e-12)
    back = rotate(rotate(x, 37.0, mode="bicubic"), -37.0, mode="bicubic")
    inner = (slice(None), slice(10, 22), slice(10, 22))
    error = (back - x)[inner].norm() / x[inner].norm()
    assert error < 0.05, error


def test_angles_per_frame_and_gradient_in_the_motion():
    x = torch.randn(3, 7, 7, dtype=torch.float64)
    out = rotate(x, torch.tensor([0.0, 90.0, 180.0], dtype=torch.float64))
    assert torch.allclose(out[0], x[0], atol=1e-12)
    assert torch.allclose(out[2], torch.flip(x[2], dims=(-2, -1)), atol=1e-12)
    p = torch.tensor([0.3, 0.1], dtype=torch.float64, requires_grad=True)
    warp(x, p).sum().backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()


def test_bad_motion_is_a_value_error():
    with pytest.raises(ValueError, match="translation motion has 2 parameters"):
        motion_matrix(torch.zeros(3), "translation")
    with pytest.raises(ValueError, match="model must be one of"):
        warp(torch.zeros(4, 4), torch.zeros(2), model="similarity")
    with pytest.raises(ValueError, match="floating point"):
        rotate(torch.zeros(4, 4, dtype=torch.int64), 10.0)
