import numpy as np
import pytest
import torch

from sklearn_mbdl import LISTATransformer, sparse_encode
from sklearn_mbdl.datasets import make_sparse_coding
from sklearn_mbdl.lista import LISTA
from sklearn_mbdl.metrics import nmse_db
from sklearn_mbdl.solvers import fista, ista


@pytest.fixture(scope="module")
def problem():
    X, _, D = make_sparse_coding(1700, 16, 32, 3, noise=0.01, random_state=0)
    alpha = 0.05 * float(np.abs(X @ D.T).max())
    X_train, X_test = X[:1500], X[1500:]
    return X_train, X_test, D, alpha


def test_untrained_network_is_ista(problem):
    X, _, D, alpha = problem
    Xt, Dt = torch.tensor(X[:50]), torch.tensor(D)
    module = LISTA(Dt, n_layers=7, alpha=alpha).double()
    expected, _ = ista(Xt, Dt, alpha, max_iter=7, tol=0.0)
    with torch.no_grad():
        np.testing.assert_allclose(module(Xt), expected, atol=1e-12)
        np.testing.assert_allclose(module(Xt, n_layers=3),
                                   ista(Xt, Dt, alpha, max_iter=3, tol=0.0)[0],
                                   atol=1e-12)


@pytest.fixture(scope="module")
def trained(problem, device):
    X_train, _, D, alpha = problem
    return LISTATransformer(D, n_layers=8, alpha=alpha, max_epochs=40,
                            device=device, random_state=0).fit(X_train)


def _errors_at_equal_depth(model, X_test, D, alpha):
    """NMSE (dB) to the exact lasso codes of ``X_test``: the trained model's,
    and that of FISTA run for as many iterations as the model has layers."""
    reference = sparse_encode(X_test, D, alpha=alpha)
    lista_error = nmse_db(reference, model.transform(X_test))
    fista_codes, _ = fista(torch.tensor(X_test), torch.tensor(D), alpha,
                           max_iter=model.n_layers_, tol=0.0)
    return lista_error, nmse_db(reference, fista_codes.numpy())


def test_trained_lista_beats_fista_at_equal_depth(problem, trained):
    _, X_test, D, alpha = problem
    lista_error, fista_error = _errors_at_equal_depth(trained, X_test, D, alpha)
    assert lista_error < fista_error - 3.0, (lista_error, fista_error)


def test_fitted_attributes_and_depth_curve(problem, trained):
    _, X_test, D, alpha = problem
    assert trained.steps_.shape == (8,) and trained.thresholds_.shape == (8,)
    assert np.all(trained.thresholds_ >= 0)
    assert trained.ista_step_ > 0
    assert not trained.kept_start_ and trained.trained_error_ <= trained.start_error_
    np.testing.assert_array_equal(trained.components_, D)
    reference = sparse_encode(X_test, D, alpha=alpha)
    errors = [nmse_db(reference, trained.transform(X_test, n_layers=k))
              for k in (1, 4, 8)]
    assert errors[0] > errors[1] > errors[2]
    with pytest.raises(ValueError, match="n_layers"):
        trained.transform(X_test, n_layers=9)


def test_dtype_and_batch_independence(problem, trained):
    _, X_test, _, _ = problem
    full = trained.transform(X_test)
    assert full.dtype == np.float64
    rows = np.vstack([trained.transform(X_test[i:i + 1]) for i in range(20)])
    np.testing.assert_allclose(full[:20], rows, atol=1e-7)
    single = trained.transform(X_test.astype(np.float32))
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, full, atol=1e-4)


def test_determinism(problem, device):
    X_train, X_test, D, alpha = problem
    kw = dict(n_layers=3, alpha=alpha, max_epochs=3, random_state=7, device=device)
    a = LISTATransformer(D, **kw).fit(X_train[:300]).transform(X_test)
    b = LISTATransformer(D, **kw).fit(X_train[:300]).transform(X_test)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("weights", ["dictionary", "learned"])
def test_tied_shares_parameters(problem, weights):
    X_train, _, D, alpha = problem
    model = LISTATransformer(D, n_layers=5, alpha=alpha, weights=weights, tied=True,
                             max_epochs=2, random_state=0).fit(X_train[:200])
    module = model.net_.module_
    assert module.weight.shape[0] == 1
    assert np.unique(model.thresholds_).size == 1
    assert sum(p.numel() for p in module.parameters()) == \
        3 + (D.size if weights == "learned" else 0)


def test_default_learns_only_steps_thresholds_and_momenta(problem, trained):
    """By default every layer applies the dictionary's adjoint, unchanged by
    training: 3 learned numbers per layer."""
    _, _, D, _ = problem
    module = trained.net_.module_
    assert sum(p.numel() for p in module.parameters()) == 3 * 8
    np.testing.assert_array_equal(module.weight[0].numpy(), D.T.astype(np.float32))
    learned = LISTA(torch.tensor(D), n_layers=8, alpha=0.1, weights="learned")
    assert sum(p.numel() for p in learned.parameters()) == 8 * (3 + D.size)


def test_model_pickled_before_weights_existed_keeps_its_learned_maps(problem):
    X_train, _, D, alpha = problem
    model = LISTATransformer(D, n_layers=2, alpha=alpha, weights="learned",
                             max_epochs=1, random_state=0).fit(X_train[:100])
    state = model.__getstate__()
    del state["weights"]
    old = LISTATransformer.__new__(LISTATransformer)
    old.__setstate__(state)
    assert old.weights == "learned"
    np.testing.assert_array_equal(old.transform(X_train[:5]), model.transform(X_train[:5]))


def test_learns_dictionary_when_none(problem):
    X_train, X_test, _, _ = problem
    model = LISTATransformer(n_components=20, n_layers=4, alpha=0.1, max_epochs=2,
                             random_state=0).fit(X_train[:300])
    assert model.components_.shape == (20, 16)
    assert model.transform(X_test).shape == (200, 20)


def test_guard_replaces_failed_rows_and_warns(problem, trained):
    _, X_test, D, alpha = problem
    model = LISTATransformer(D, n_layers=8, alpha=alpha, max_epochs=1,
                             random_state=0).fit(X_test[:100])
    with torch.no_grad():  # sabotage the network: a blown-up layer
        model.net_.module_.weight[-1].mul_(1e3)
    with pytest.warns(UserWarning, match="ISTA"):
        codes = model.transform(X_test)
    zero_objective = 0.5 * np.sum(X_test ** 2, axis=1)
    objective = (0.5 * np.sum((X_test - codes @ D) ** 2, axis=1)
                 + alpha * np.abs(codes).sum(1))
    assert np.all(objective <= zero_objective + 1e-9)


def test_training_on_cuda_device_runs(problem, device):
    X_train, X_test, D, alpha = problem
    model = LISTATransformer(D, n_layers=2, alpha=alpha, max_epochs=1,
                             device=device, random_state=0).fit(X_train[:100])
    assert model.device_ == device
    assert model.transform(X_test).shape == (200, 32)


@pytest.mark.parametrize("bad, match", [
    (dict(n_layers=0), "n_layers"),
    (dict(alpha=-0.1), "alpha"),
    (dict(lr=0.0), "lr"),
    (dict(max_epochs=0), "max_epochs"),
    (dict(validation_fraction=0.9), "validation_fraction"),
    (dict(tied="yes"), "tied"),
    (dict(weights="adjoint"), "weights"),
    (dict(positive=None), "positive"),
])
def test_bad_parameters(problem, bad, match):
    X_train, _, D, _ = problem
    with pytest.raises(ValueError, match=match):
        LISTATransformer(D, **bad).fit(X_train[:50])


def test_bad_input(problem):
    X_train, _, D, alpha = problem
    with pytest.raises(ValueError, match="features"):
        LISTATransformer(D[:, :-2], alpha=alpha).fit(X_train[:50])
    with pytest.raises(ValueError, match="dim 3"):
        LISTATransformer(D, alpha=alpha).fit(X_train[:48].reshape(3, 16, 16))
    bad = X_train[:50].copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LISTATransformer(D, alpha=alpha).fit(bad)


def test_failed_training_falls_back_to_ista(problem):
    """A learning rate that blows the network up: fit keeps the ISTA
    initialisation and says so, and transform is exactly ISTA."""
    X_train, X_test, D, alpha = problem
    with pytest.warns(UserWarning, match="did not improve"):
        model = LISTATransformer(D, n_layers=4, alpha=alpha, lr=50.0, max_epochs=2,
                                 random_state=0).fit(X_train[:600])
    np.testing.assert_array_equal(model.momentum_, 0.0)
    np.testing.assert_allclose(model.steps_, model.ista_step_)
    assert model.kept_start_ and not model.trained_error_ <= model.start_error_
    expected, _ = ista(torch.tensor(X_test), torch.tensor(D), alpha, max_iter=4,
                       tol=0.0)
    # (the network stores the dictionary in float32)
    np.testing.assert_allclose(model.transform(X_test), expected, atol=1e-6)


def test_momentum_and_thresholds_stay_in_range():
    module = LISTA(torch.eye(3), n_layers=2, alpha=1.0)
    with torch.no_grad():
        module.momentum.copy_(torch.tensor([5.0, -1.0]))
        module.threshold_scale.copy_(torch.tensor([-2.0, 1.0]))
    from sklearn_mbdl.lista import MAX_MOMENTUM

    np.testing.assert_array_equal(module.momenta().detach(), [MAX_MOMENTUM, 0.0])
    assert torch.all(module.thresholds() >= 0)


def test_simulated_signals_are_labelled_exactly(problem):
    from sklearn_mbdl.lista import _recombine_codes

    X_train, _, D, alpha = problem
    codes = sparse_encode(X_train, D, alpha=alpha)
    signals, targets = _recombine_codes(
        np.random.RandomState(0), 400, X=X_train, codes=codes, dictionary=D,
        alpha=alpha, positive=False, device="cpu")
    assert signals.shape == (400, 16) and targets.shape == (400, 32)
    np.testing.assert_allclose(targets, sparse_encode(signals, D, alpha=alpha))
    # new signals (a few repeat one when all its coefficients were kept),
    # with the sparsity of the user's codes
    assert np.isin(signals[:, 0], X_train[:, 0]).mean() < 0.2
    assert abs((targets != 0).sum(1).mean() - (codes != 0).sum(1).mean()) < 1.0


def test_simulated_rows_refreshed_every_epoch():
    from skorch import NeuralNetRegressor

    from sklearn_mbdl._base import SimulatedRows

    seen = []

    def simulate(rng, n):
        seen.append(rng.rand())
        return np.full((n, 2), seen[-1], np.float32), np.zeros((n, 1), np.float32)

    X = np.zeros((10, 2), np.float32)
    y = np.zeros((10, 1), np.float32)
    callback = SimulatedRows(simulate, X, y, start=6, seed=0)
    NeuralNetRegressor(torch.nn.Linear, module__in_features=2, module__out_features=1,
                       max_epochs=3, train_split=None, verbose=0,
                       callbacks=[callback]).fit(X, y)
    assert len(seen) == 3 and len(set(seen)) == 3
    np.testing.assert_array_equal(X[:6], 0.0)          # the user's rows untouched
    np.testing.assert_array_equal(X[6:], np.float32(seen[-1]))  # refilled
    assert callback.X is None and callback.simulate is None  # released after fit


@pytest.mark.parametrize("weights, tied, positive", [
    ("dictionary", False, False), ("learned", False, False), ("learned", True, True)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_in_place_inference_is_the_network(sparse_problem, weights, tied, positive,
                                           dtype):
    """transform runs the layers in reused buffers (fast where glibc's mmap
    threshold is pinned, as in Dask workers): the same values as the
    module's forward, on several chunks and a shorter last one."""
    import copy

    import torch

    from sklearn_mbdl.lista import _Buffers, _run_in_place
    from sklearn_mbdl.solvers import ista, lasso_objective

    X, _, D, alpha = sparse_problem
    est = LISTATransformer(D, n_layers=4, alpha=alpha, weights=weights, tied=tied,
                           positive=positive, max_epochs=3, lr=1e-2,
                           random_state=0).fit(X)
    module = est.net_.module_
    Xt = torch.as_tensor(np.tile(X, (5, 1)).astype(dtype))  # 1500 rows: 2 chunks
    with torch.no_grad():
        expected = torch.func.functional_call(
            module, {k: v.to(Xt.dtype) for k, v in module.state_dict().items()},
            (Xt,))
        # the guard: rows above the zero code's objective get ISTA's codes
        Dt = module.dictionary.to(Xt.dtype)
        bad = lasso_objective(Xt, expected, Dt, alpha) > 0.5 * (Xt * Xt).sum(1)
        expected[bad] = ista(Xt[bad], Dt, alpha, max_iter=4, tol=0.0,
                             positive=positive)[0]
    # (ISTA on the guarded rows of each chunk: equal up to rounding, which
    # float32 shows at its own precision)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(est.transform(Xt.numpy()), expected.numpy(),
                               rtol=rtol, atol=0)
    module = copy.deepcopy(module).to(Xt.dtype)
    module.momentum.data.fill_(0.3)   # exercise the momentum term too
    with torch.no_grad():
        expected = module(Xt)
        buffers = _Buffers(1024, module, "cpu", Xt.dtype)
        for rows in (slice(0, 1024), slice(1024, 1500)):
            got = _run_in_place(module, Xt[rows], 4, buffers)
            np.testing.assert_array_equal(got.numpy(), expected[rows].numpy())


def _overcomplete_dct(n_features, n_components):
    """Cosines at evenly spaced frequencies: a coherent, structured family
    (neighbouring atoms nearly parallel), unlike the Gaussian one above."""
    freq = np.arange(n_components)[:, None] * n_features / n_components
    D = np.cos(np.pi * freq * (np.arange(n_features) + 0.5) / n_features)
    return D / np.linalg.norm(D, axis=1, keepdims=True)


def _signals(rng, D, n_samples, n_nonzero, noise=0.01):
    """``n_samples`` rows ``z D + noise N(0, 1)``, ``n_nonzero`` standard
    normal entries per code."""
    codes = np.zeros((n_samples, D.shape[0]))
    support = np.argsort(rng.rand(n_samples, D.shape[0]), axis=1)[:, :n_nonzero]
    np.put_along_axis(codes, support, rng.standard_normal((n_samples, n_nonzero)),
                      axis=1)
    return codes @ D + noise * rng.standard_normal((n_samples, D.shape[1]))


def test_lista_on_a_coherent_dct_dictionary():
    """A second dictionary family (overcomplete DCT, mutual coherence 0.9):
    8 trained layers beat 8 FISTA iterations on held-out rows by 2 dB
    (3.2 dB when written; trained on the 600 rows alone, without simulated
    signals, they lose to FISTA by 0.5 dB)."""
    rng = np.random.RandomState(0)
    D = _overcomplete_dct(16, 32)
    X = _signals(rng, D, 800, 3)
    alpha = 0.05 * float(np.abs(X @ D.T).max())
    X_train, X_test = X[:600], X[600:]
    model = LISTATransformer(D, n_layers=8, alpha=alpha, max_epochs=30,
                             random_state=0).fit(X_train)
    lista_error, fista_error = _errors_at_equal_depth(model, X_test, D, alpha)
    assert lista_error < fista_error - 2.0, (lista_error, fista_error)


def test_default_generalises_from_few_rows():
    """300 training rows of a 4x overcomplete Gaussian dictionary: the
    default (3 learned numbers per layer) beats 8 FISTA iterations on
    held-out rows, where learned maps (1024 numbers per layer) do not
    (-3.98 / -1.93 dB against FISTA's -2.18 dB when written)."""
    rng = np.random.RandomState(0)
    D = rng.standard_normal((64, 16))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = _signals(rng, D, 900, 5)
    alpha = 0.01 * float(np.abs(X @ D.T).max())
    X_train, X_test = X[:300], X[300:]
    errors = {}
    for name, kwargs in (("default", {}), ("learned", dict(weights="learned"))):
        model = LISTATransformer(D, n_layers=8, alpha=alpha, max_epochs=15,
                                 random_state=0, **kwargs).fit(X_train)
        errors[name], fista_error = _errors_at_equal_depth(model, X_test, D, alpha)
    assert errors["default"] < fista_error - 1.0, (errors, fista_error)
    assert errors["default"] < errors["learned"] - 1.0, (errors, fista_error)
