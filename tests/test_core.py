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


def _accelerate_cases():
    from sklearn_mbdl import (BurstSuperResolver, DCEAEstimator, DetNetClassifier,
                              LISTATransformer, PnPRestorer)
    from sklearn_mbdl.datasets import make_mimo

    X, _, D = make_sparse_coding(200, 8, 12, 2, noise=0.01, random_state=0)
    Xm, ym, Hm = make_mimo(400, n_tx=2, n_rx=4, snr_db=10, random_state=0)
    rng = np.random.RandomState(0)
    images = np.clip(0.5 + 0.2 * rng.standard_normal((8, 12, 12)), 0, 1)
    return [
        (lambda **kw: LISTATransformer(D, n_layers=3, alpha=0.1, max_epochs=3,
                                       validation_fraction=0.2, **kw),
         (X,), {}, lambda est: est.transform(X)),
        (lambda **kw: DetNetClassifier(n_layers=3, max_epochs=2, **kw),
         (Xm, ym), {"channels": Hm},
         lambda est: est.predict_soft(Xm, channels=Hm)),
        (lambda **kw: DCEAEstimator(n_kernels=4, kernel_size=3, stride=2, n_layers=3,
                                    peak=4, max_epochs=2, **kw),
         (images,), {}, lambda est: est.transform(images * 4)),
        (lambda **kw: PnPRestorer(max_epochs=2, batch_size=4, **kw),  # net_class
         (images,), {}, lambda est: est.transform(images)),
        (lambda **kw: BurstSuperResolver(2, 3, n_iter=1, max_epochs=1, **kw),
         (images,), {}, None),
    ]


@pytest.mark.parametrize("case", range(5))
def test_device_accelerate_trains_as_plain_training(case, monkeypatch):
    """One CPU process through HF accelerate (skorch's AccelerateMixin)
    trains the same network as plain training; the fitted estimator is a
    plain one again (it pickles, e.g. to load on another machine)."""
    accelerate = pytest.importorskip("accelerate")
    import pickle

    make, args, fit_kw, infer = _accelerate_cases()[case]
    plain = make(random_state=0).fit(*args, **fit_kw)
    backward = accelerate.Accelerator.backward
    calls = []
    def counted(self, loss, **kwargs):
        calls.append(1)
        return backward(self, loss, **kwargs)

    monkeypatch.setattr(accelerate.Accelerator, "backward", counted)
    accelerated = make(random_state=0, device="accelerate").fit(*args, **fit_kw)
    assert calls, "the gradients did not go through the accelerator"
    assert accelerated.device_ == "cpu"
    np.testing.assert_allclose(accelerated.net_.history[:, "train_loss"],
                               plain.net_.history[:, "train_loss"], rtol=1e-6)
    for (name, a), b in zip(accelerated.net_.module_.state_dict().items(),
                            plain.net_.module_.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7,
                                   err_msg=name)
    restored = pickle.loads(pickle.dumps(accelerated))
    assert type(restored.net_) is type(plain.net_)
    if infer is not None:
        np.testing.assert_allclose(infer(restored), infer(plain), rtol=1e-5, atol=1e-6)


def test_device_accelerate_without_accelerate_names_the_extra(monkeypatch):
    import sys

    from sklearn_mbdl import LISTATransformer

    monkeypatch.setitem(sys.modules, "accelerate", None)  # import fails
    X, _, D = make_sparse_coding(50, 8, 12, 2, random_state=0)
    with pytest.raises(ImportError, match=r"sklearn-mbdl\[accelerate\]"):
        LISTATransformer(D, max_epochs=1, device="accelerate").fit(X)
    with pytest.raises(ValueError, match="'accelerate'"):
        resolve_device("tpu")


def test_fits_in_threads_are_reproducible():
    """Two fits in threads of one process (a threaded Dask worker, joblib's
    threading backend) give the weights of sequential fits: they take turns
    on torch's global random state (before, concurrent fits interleaved
    their draws and the search's scores changed from run to run)."""
    from concurrent.futures import ThreadPoolExecutor

    from sklearn_mbdl import LISTATransformer

    X, _, D = make_sparse_coding(200, 8, 12, 2, noise=0.01, random_state=0)

    def fit(seed):
        est = LISTATransformer(D, n_layers=3, alpha=0.1, max_epochs=3,
                               random_state=seed).fit(X)
        return est.net_.module_.weight.detach().numpy()

    sequential = [fit(seed) for seed in (0, 1, 0, 1)]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(fit, (0, 1, 0, 1)))
    for a, b in zip(threaded, sequential):
        np.testing.assert_array_equal(a, b)


def test_device_accelerate_is_quiet_unless_verbose(capsys):
    pytest.importorskip("accelerate")
    from sklearn_mbdl import LISTATransformer

    X, _, D = make_sparse_coding(100, 8, 12, 2, random_state=0)
    LISTATransformer(D, n_layers=2, max_epochs=2, device="accelerate").fit(X)
    assert capsys.readouterr().out == ""
    LISTATransformer(D, n_layers=2, max_epochs=2, device="accelerate",
                     verbose=1).fit(X)
    assert "train_loss" in capsys.readouterr().out


def test_a_model_pickled_before_a_parameter_existed_takes_its_default():
    import pickle

    from sklearn_mbdl import BurstSuperResolver, LISTATransformer

    for est, name in ((LISTATransformer(alpha=0.3), "augmentation"),
                      (BurstSuperResolver(4), "estimate_blur")):
        state = est.__getstate__()
        del state[name]   # as pickled by a version without the parameter
        old = type(est).__new__(type(est))
        old.__setstate__(state)
        assert getattr(old, name) == est.get_params()[name]
        # the others are kept
        assert pickle.loads(pickle.dumps(old)).get_params() == est.get_params()
