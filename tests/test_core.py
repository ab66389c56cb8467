"""Operators, proximal maps, datasets, metrics and the shared plumbing."""

import numpy as np
import pytest
import torch

from sklearn_mbdl._base import resolve_device, seeded
from sklearn_mbdl.datasets import make_sparse_coding
from sklearn_mbdl.metrics import nmse_db
from sklearn_mbdl.operators import MatrixOperator, power_iteration
from sklearn_mbdl.prox import nonneg_soft_threshold, prox_l1, soft_threshold


def test_soft_threshold_is_the_prox_of_l1():
    x = torch.linspace(-3, 3, 61, dtype=torch.float64)
    t = 0.7
    out = soft_threshold(x, t)
    # brute-force prox: argmin_u 0.5 (u - x)^2 + t |u| on a fine grid
    grid = torch.linspace(-4, 4, 80001, dtype=torch.float64)
    cost = 0.5 * (grid[None, :] - x[:, None]) ** 2 + t * grid.abs()[None, :]
    np.testing.assert_allclose(out, grid[cost.argmin(1)], atol=1e-4)
    assert torch.all(nonneg_soft_threshold(x, t) >= 0)
    np.testing.assert_allclose(prox_l1(x, t, positive=True),
                               torch.clamp(out, min=0))


def test_soft_threshold_is_differentiable():
    x = torch.tensor([-2.0, 0.1, 3.0], requires_grad=True)
    soft_threshold(x, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 1.0])


def test_matrix_operator_adjoint_and_lipschitz():
    rng = np.random.default_rng(0)
    M = torch.tensor(rng.standard_normal((7, 5)))
    A = MatrixOperator(M)
    z, y = torch.tensor(rng.standard_normal((3, 7))), torch.tensor(rng.standard_normal((3, 5)))
    # <A z, y> = <z, A^T y>
    np.testing.assert_allclose((A(z) * y).sum(), (z * A.adjoint(y)).sum())
    expected = np.linalg.norm(M.numpy(), 2) ** 2
    np.testing.assert_allclose(A.lipschitz(), expected, rtol=1e-10)
    np.testing.assert_allclose(A.gram(), M @ M.T)
    estimate = power_iteration(A.normal, (7,), n_iter=2000, tol=1e-12,
                               dtype=torch.float64)
    np.testing.assert_allclose(estimate, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="2-D"):
        MatrixOperator(torch.zeros(3))


def test_make_sparse_coding():
    X, codes, D = make_sparse_coding(50, 10, 20, 4, noise=0.0, random_state=3)
    np.testing.assert_allclose(np.linalg.norm(D, axis=1), 1.0)
    assert np.all((codes != 0).sum(axis=1) == 4)
    np.testing.assert_allclose(X, codes @ D)
    again = make_sparse_coding(50, 10, 20, 4, noise=0.0, random_state=3)
    np.testing.assert_array_equal(X, again[0])
    with pytest.raises(ValueError, match="n_nonzero"):
        make_sparse_coding(5, 10, 20, 21)
    with pytest.raises(ValueError, match="noise"):
        make_sparse_coding(5, 10, 20, 2, noise=-1.0)


def test_nmse_db():
    assert nmse_db([1.0, 0.0], [1.1, 0.0]) == pytest.approx(-20.0)
    assert nmse_db(np.ones(4), np.ones(4) * 2) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="shapes"):
        nmse_db(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="all-zero"):
        nmse_db(np.zeros(3), np.ones(3))


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")


def test_seeded_restores_global_state():
    torch.manual_seed(0)
    expected = torch.rand(2)
    torch.manual_seed(0)
    with seeded(123):
        inside = torch.rand(2)
    np.testing.assert_array_equal(torch.rand(2), expected)
    with seeded(123):
        np.testing.assert_array_equal(torch.rand(2), inside)


def test_tour_runs(capsys, monkeypatch):
    from sklearn_mbdl import __main__ as cli

    calls = []

    def fake_step():
        calls.append(1)
        return dict(method="M", task="t " * 80, baseline="b", learned="l",
                    verdict=cli._db_verdict(-0.09, "the learned model", "its twin"))

    monkeypatch.setattr(cli, "TOUR", [fake_step])
    assert cli.main(["tour"]) == 0
    out = capsys.readouterr().out
    assert calls and "baseline" in out and "M" in out
    # within 100 columns, and a learned model below its baseline is said so
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "0.09 dB BELOW its twin" in out
    assert "better than" in cli._db_verdict(0.5, "ours", "theirs")
    with pytest.raises(SystemExit):
        cli.main(["nope"])


def test_tour_sparse_coding_row_is_measured():
    from sklearn_mbdl.__main__ import _tour_sparse_coding

    row = _tour_sparse_coding()
    assert row["method"] == "SparseCoder"
    assert "lasso_cd" in row["baseline"] and "faster" in row["verdict"]
