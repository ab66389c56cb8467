"""Tests of the model-based lasso solvers: ista, fista, active_set."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import sparse_encode

from sklearn_mbdl.datasets import make_sparse_coding
from sklearn_mbdl.solvers import active_set, fista, ista, lasso_objective

SOLVERS = {"ista": ista, "fista": fista, "active_set": active_set}


def _problem(n_samples=100, n_features=16, n_components=40, n_nonzero=4,
             factor=0.05, seed=0):
    X, _, D = make_sparse_coding(n_samples, n_features, n_components,
                                 n_nonzero, noise=0.01, random_state=seed)
    alpha = factor * float(np.abs(X @ D.T).max())
    return X, D, alpha


def _tensors(*arrays, device="cpu", dtype=torch.float64):
    return [torch.as_tensor(a, dtype=dtype, device=device) for a in arrays]


def _objective(X, Z, D, alpha):
    """Mean lasso objective in float64 numpy."""
    Z = np.asarray(Z, dtype=np.float64)
    return np.mean(0.5 * np.sum((X - Z @ D) ** 2, axis=1)
                   + alpha * np.abs(Z).sum(axis=1))


def _solve(name, X, D, alpha, **kwargs):
    """Run a solver to high accuracy (the proximal ones need many steps)."""
    if name != "active_set":
        kwargs.setdefault("max_iter", 20000)
        kwargs.setdefault("tol", 1e-10 if X.dtype == torch.float64 else 1e-7)
    return SOLVERS[name](X, D, alpha, **kwargs)


def _kkt_violation(X, Z, D, alpha, positive=False):
    """Largest violation of the lasso optimality conditions, over alpha."""
    corr = (X - Z @ D) @ D.T
    active = Z != 0
    on = (corr - alpha * torch.sign(Z)).abs()
    if positive:
        off = torch.clamp(corr - alpha, min=0)
    else:
        off = torch.clamp(corr.abs() - alpha, min=0)
    return float(torch.where(active, on, off).max()) / alpha


def test_lasso_objective_per_row():
    X, D, alpha = _problem(n_samples=5)
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((5, D.shape[0]))
    expected = 0.5 * ((X - Z @ D) ** 2).sum(1) + alpha * np.abs(Z).sum(1)
    got = lasso_objective(*_tensors(X, Z, D), alpha)
    assert got.shape == (5,)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(SOLVERS))
@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-6),
                                         (torch.float32, 1e-4)])
def test_objective_matches_sklearn_lasso_cd(name, dtype, rtol, device):
    X, D, alpha = _problem()
    reference = sparse_encode(X, D, algorithm="lasso_cd", alpha=alpha,
                              max_iter=10000)
    Xt, Dt = _tensors(X, D, device=device, dtype=dtype)
    Z, n_iter = _solve(name, Xt, Dt, alpha)
    assert Z.dtype == dtype and Z.device.type == torch.device(device).type
    assert Z.shape == reference.shape and n_iter > 0
    np.testing.assert_allclose(_objective(X, Z.cpu().numpy(), D, alpha),
                               _objective(X, reference, D, alpha), rtol=rtol)


@pytest.mark.parametrize("name", ["fista", "active_set"])
def test_positive_matches_sklearn(name, device):
    X, D, alpha = _problem(factor=0.02)
    reference = sparse_encode(X, D, algorithm="lasso_cd", alpha=alpha,
                              positive=True, max_iter=10000)
    Z, _ = _solve(name, *_tensors(X, D, device=device), alpha, positive=True)
    Z = Z.cpu().numpy()
    assert Z.min() >= 0
    np.testing.assert_allclose(_objective(X, Z, D, alpha),
                               _objective(X, reference, D, alpha), rtol=1e-6)


@pytest.mark.parametrize("shape", [(16, 40), (20, 30), (12, 8)],
                         ids=["residual-path", "gram-path", "fewer-atoms"])
@pytest.mark.parametrize("positive", [False, True])
def test_active_set_is_exact(shape, positive, device):
    # the optimality conditions hold, whatever the shape of the dictionary
    n_features, n_components = shape
    X, D, alpha = _problem(n_features=n_features, n_components=n_components,
                           n_nonzero=3, factor=0.02)
    Xt, Dt = _tensors(X, D, device=device)
    Z, _ = active_set(Xt, Dt, alpha, positive=positive)
    assert _kkt_violation(Xt, Z, Dt, alpha, positive) < 1e-6
    reference = sparse_encode(X, D, algorithm="lasso_cd", alpha=alpha,
                              positive=positive, max_iter=10000)
    np.testing.assert_allclose(_objective(X, Z.cpu().numpy(), D, alpha),
                               _objective(X, reference, D, alpha), rtol=1e-6)


@pytest.mark.parametrize("positive", [False, True])
def test_active_set_full_working_sets(positive, device):
    # a small alpha on few features: supports reach n_features atoms and
    # must swap atoms (pivot) to reach the optimum
    X, D, alpha = _problem(n_samples=60, n_features=8, n_components=24,
                           n_nonzero=6, factor=1e-3)
    Xt, Dt = _tensors(X, D, device=device)
    Z, _ = active_set(Xt, Dt, alpha, positive=positive)
    assert int((Z != 0).sum(dim=1).max()) == 8
    assert _kkt_violation(Xt, Z, Dt, alpha, positive) < 1e-6


def test_active_set_float32(device):
    X, D, alpha = _problem()
    Z64, _ = active_set(*_tensors(X, D, device=device), alpha)
    Z32, _ = active_set(*_tensors(X, D, device=device, dtype=torch.float32),
                        alpha)
    assert Z32.dtype == torch.float32
    np.testing.assert_allclose(Z32.cpu().numpy(), Z64.cpu().numpy(), atol=1e-4)


@pytest.mark.parametrize("positive", [False, True])
def test_active_set_rows_are_independent(positive, device):
    X, D, alpha = _problem(n_samples=40, factor=0.02)
    Xt, Dt = _tensors(X, D, device=device)
    Z, _ = active_set(Xt, Dt, alpha, positive=positive)
    for i in [0, 7, 13, 39]:
        Zi, _ = active_set(Xt[i:i + 1], Dt, alpha, positive=positive)
        np.testing.assert_allclose(Zi[0].cpu().numpy(), Z[i].cpu().numpy(),
                                   rtol=0, atol=1e-9)
    Zs, _ = active_set(Xt[10:30], Dt, alpha, positive=positive)
    np.testing.assert_allclose(Zs.cpu().numpy(), Z[10:30].cpu().numpy(),
                               rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_large_alpha_gives_zero_codes(name, device):
    X, D, _ = _problem()
    alpha = 1.001 * float(np.abs(X @ D.T).max())
    Z, n_iter = _solve(name, *_tensors(X, D, device=device), alpha)
    assert torch.count_nonzero(Z) == 0
    if name == "active_set":
        assert n_iter == 0


@pytest.mark.parametrize("positive", [False, True])
def test_active_set_alpha_zero_more_atoms_than_features(positive, device):
    X, D, _ = _problem(n_features=10, n_components=30)
    Xt, Dt = _tensors(X, D, device=device)
    Z, _ = active_set(Xt, Dt, 0.0, positive=positive)
    assert torch.isfinite(Z).all()
    assert int((Z != 0).sum(dim=1).max()) <= 10
    residual = torch.linalg.vector_norm(Xt - Z @ Dt, dim=1)
    if positive:   # non-negative least squares: optimality, not a fit
        assert float(((Xt - Z @ Dt) @ Dt.T).max()) < 1e-6
        assert Z.min() >= 0
    else:          # 10 generic atoms span the signals
        assert float(residual.max()) < 1e-8


def test_active_set_degenerate_inputs(device):
    X, D, alpha = _problem(n_samples=20)
    X[3] = 0.0                               # a zero signal
    D = np.concatenate([D, D[:3], -D[3:5]])  # repeated and opposite atoms
    D[0] = 0.0                               # an all-zero atom
    Xt, Dt = _tensors(X, D, device=device)
    for a in [0.0, alpha]:
        Z, _ = active_set(Xt, Dt, a)
        assert torch.isfinite(Z).all()
        assert torch.count_nonzero(Z[3]) == 0
        assert torch.count_nonzero(Z[:, 0]) == 0
    Z, _ = active_set(Xt, Dt, alpha)
    assert _kkt_violation(Xt, Z, Dt, alpha) < 1e-6


def test_active_set_single_row_and_empty_input(device):
    X, D, alpha = _problem(n_samples=3)
    Xt, Dt = _tensors(X, D, device=device)
    Z, _ = active_set(Xt[:1], Dt, alpha)
    assert Z.shape == (1, D.shape[0])
    Z, n_iter = active_set(Xt[:0], Dt, alpha)
    assert Z.shape == (0, D.shape[0]) and n_iter == 0


def test_active_set_init(device):
    X, D, alpha = _problem()
    Xt, Dt = _tensors(X, D, device=device)
    Z, n_iter = active_set(Xt, Dt, alpha)
    # started from the solution: one round checks it
    Z_warm, n_warm = active_set(Xt, Dt, alpha, init=Z)
    assert n_warm == 1
    np.testing.assert_allclose(Z_warm.cpu().numpy(), Z.cpu().numpy(),
                               atol=1e-10)
    # any start leads to the same solution
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(Z.shape, generator=generator, dtype=torch.float64)
    Z_rand, _ = active_set(Xt, Dt, alpha, init=start.to(device))
    np.testing.assert_allclose(Z_rand.cpu().numpy(), Z.cpu().numpy(),
                               atol=1e-10)
    with pytest.raises(ValueError, match="init must have shape"):
        active_set(Xt, Dt, alpha, init=start[:, :5].to(device))


def test_active_set_callback_objective_never_rises(device):
    X, D, alpha = _problem()
    Xt, Dt = _tensors(X, D, device=device)
    history = []

    def record(iteration, Z):
        history.append((iteration, lasso_objective(Xt, Z, Dt, alpha).clone()))

    Z, n_iter = active_set(Xt, Dt, alpha, callback=record)
    assert [it for it, _ in history] == list(range(1, n_iter + 1))
    objectives = torch.stack([obj for _, obj in history])
    assert (objectives[1:] <= objectives[:-1] + 1e-12).all()
    torch.testing.assert_close(objectives[-1],
                               lasso_objective(Xt, Z, Dt, alpha))


def test_active_set_max_iter_bounds_rounds(device):
    X, D, alpha = _problem(factor=0.01)
    Xt, Dt = _tensors(X, D, device=device)
    Z, n_iter = active_set(Xt, Dt, alpha, max_iter=2)
    assert n_iter == 2 and torch.isfinite(Z).all()
    Z_full, _ = active_set(Xt, Dt, alpha)
    assert (lasso_objective(Xt, Z, Dt, alpha).mean()
            > lasso_objective(Xt, Z_full, Dt, alpha).mean())


def test_fista_needs_fewer_iterations_than_ista(device):
    X, D, alpha = _problem(factor=0.02)
    Xt, Dt = _tensors(X, D, device=device)
    _, n_ista = ista(Xt, Dt, alpha, tol=1e-8, max_iter=50000)
    _, n_fista = fista(Xt, Dt, alpha, tol=1e-8, max_iter=50000)
    assert n_fista < n_ista < 50000


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_problem_checks(name):
    X, D, alpha = _problem(n_samples=5)
    Xt, Dt = _tensors(X, D)
    solver = SOLVERS[name]
    with pytest.raises(ValueError, match="X has 16 features but the "
                                         "dictionary atoms have 15"):
        solver(Xt, Dt[:, :15], alpha)
    with pytest.raises(ValueError, match="alpha must be non-negative"):
        solver(Xt, Dt, -1.0)
    with pytest.raises(ValueError, match="must be 2-D"):
        solver(Xt[0], Dt, alpha)
