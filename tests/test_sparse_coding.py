import warnings

import numpy as np
import pandas
import pytest
import scipy.sparse
import torch
from sklearn.decomposition import sparse_encode as sk_sparse_encode
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import check_param_validation

from sklearn_mbdl import SparseCoder, sparse_encode
from sklearn_mbdl.datasets import make_sparse_coding
from sklearn_mbdl.sparse_coding import learn_dictionary


def objective(X, Z, D, alpha):
    return np.mean(0.5 * np.sum((X - Z @ D) ** 2, axis=1) + alpha * np.abs(Z).sum(1))


@pytest.mark.parametrize("algorithm", ["ista", "fista", "active_set"])
def test_objective_matches_sklearn_lasso_cd(sparse_problem, algorithm, device):
    X, _, D, alpha = sparse_problem
    reference = sk_sparse_encode(X, D, algorithm="lasso_cd", alpha=alpha,
                                 max_iter=10000)
    Z = SparseCoder(D, algorithm=algorithm, alpha=alpha, tol=1e-10,
                    max_iter=100000, device=device).fit(X).transform(X)
    assert Z.dtype == np.float64
    np.testing.assert_allclose(objective(X, Z, D, alpha),
                               objective(X, reference, D, alpha), rtol=1e-6)


def test_default_algorithm_is_exact_active_set(sparse_problem):
    X, _, D, alpha = sparse_problem
    assert SparseCoder().algorithm == "active_set"
    Z = SparseCoder(D, alpha=alpha).fit(X).transform(X)
    reference = sk_sparse_encode(X, D, algorithm="lasso_cd", alpha=alpha)
    np.testing.assert_allclose(Z, reference, atol=1e-4)


def test_positive_codes(sparse_problem):
    X, _, D, alpha = sparse_problem
    Z = SparseCoder(D, alpha=alpha, positive=True).fit(X).transform(X)
    assert Z.min() >= 0
    reference = sk_sparse_encode(X, D, algorithm="lasso_cd", alpha=alpha,
                                 positive=True)
    np.testing.assert_allclose(objective(X, Z, D, alpha),
                               objective(X, reference, D, alpha), rtol=1e-6)


def test_float32_in_float32_out(sparse_problem):
    X, _, D, alpha = sparse_problem
    coder = SparseCoder(D, alpha=alpha).fit(X)
    Z32 = coder.transform(X.astype(np.float32))
    assert Z32.dtype == np.float32
    np.testing.assert_allclose(Z32, coder.transform(X), atol=1e-4)


def test_inverse_transform_is_decoder(sparse_problem):
    X, _, D, alpha = sparse_problem
    coder = SparseCoder(D, alpha=alpha).fit(X)
    Z = coder.transform(X)
    np.testing.assert_allclose(coder.inverse_transform(Z), Z @ D)
    with pytest.raises(ValueError, match="atoms"):
        coder.inverse_transform(Z[:, :5])


def test_sparse_encode_function_matches_estimator(sparse_problem):
    X, _, D, alpha = sparse_problem
    np.testing.assert_allclose(
        sparse_encode(X, D, alpha=alpha),
        SparseCoder(D, alpha=alpha).fit(X).transform(X))


def test_dictionary_learning_unit_norm_atoms_and_lower_objective():
    X, _, D_true = make_sparse_coding(400, 12, 16, 2, noise=0.01, random_state=1)
    alpha = 0.05
    coder = SparseCoder(n_components=16, alpha=alpha, random_state=0).fit(X)
    D = coder.components_
    assert D.shape == (16, 12)
    np.testing.assert_allclose(np.linalg.norm(D, axis=1), 1.0, rtol=1e-10)
    # learning beats the initial dictionary (random signals) it started from
    one_step = learn_dictionary(X, 16, alpha=alpha, n_iter=1, random_state=0)
    learned = objective(X, coder.transform(X), D, alpha)
    start = objective(X, sparse_encode(X, one_step, alpha=alpha), one_step, alpha)
    assert learned < 0.8 * start
    # deterministic
    again = SparseCoder(n_components=16, alpha=alpha, random_state=0).fit(X)
    np.testing.assert_array_equal(D, again.components_)


def test_default_n_components_is_n_features(sparse_problem):
    X, *_ = sparse_problem
    coder = SparseCoder(alpha=0.1, n_iter=2, random_state=0).fit(X)
    assert coder.components_.shape == (X.shape[1], X.shape[1])


@pytest.mark.parametrize("bad, match", [
    (dict(alpha=-1.0), "alpha"),
    (dict(algorithm="lars"), "algorithm"),
    (dict(max_iter=0), "max_iter"),
    (dict(tol=-1.0), "tol"),
    (dict(device="tpu"), "device"),
    (dict(positive="yes"), "positive"),
    (dict(n_components=0), "n_components"),
])
def test_bad_parameters_raise_value_error(sparse_problem, bad, match):
    X, _, D, _ = sparse_problem
    with pytest.raises(ValueError, match=match):
        SparseCoder(D, **bad).fit(X)


def test_bad_input_raises_value_error(sparse_problem):
    X, _, D, alpha = sparse_problem
    with pytest.raises(ValueError, match="features"):
        SparseCoder(D[:, :-1], alpha=alpha).fit(X)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SparseCoder(D, alpha=alpha).fit(X_nan)
    X_inf = X.copy()
    X_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        SparseCoder(D, alpha=alpha).fit(X_inf)
    with pytest.raises(ValueError, match="dim 3"):
        SparseCoder(D, alpha=alpha).fit(X.reshape(30, 10, 16))
    with pytest.raises(ValueError, match="dictionary must be a 2-D array"):
        SparseCoder(D[0], alpha=alpha).fit(X)
    coder = SparseCoder(D, alpha=alpha).fit(X)
    with pytest.raises(ValueError, match="features"):
        coder.transform(X[:, :-1])
    D_nan = D.copy()
    D_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SparseCoder(D_nan).fit(X)


def test_torch_global_state_untouched(sparse_problem):
    X, *_ = sparse_problem
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    SparseCoder(n_components=8, alpha=0.1, n_iter=2, random_state=0).fit(X)
    np.testing.assert_array_equal(torch.rand(3), expected)


@pytest.mark.parametrize("algorithm", ["fista", "active_set"])
def test_chunked_encoding_equals_row_by_row_blocks(algorithm):
    """sparse_encode cuts large inputs into chunks: the codes do not change."""
    X, _, D = make_sparse_coding(2500, 8, 12, 2, noise=0.01, random_state=0)
    alpha = 0.1
    whole = sparse_encode(X, D, alpha=alpha, algorithm=algorithm)
    parts = np.vstack([sparse_encode(X[i:i + 700], D, alpha=alpha,
                                     algorithm=algorithm)
                       for i in range(0, 2500, 700)])
    np.testing.assert_allclose(whole, parts, atol=1e-9)


def test_param_validation():
    check_param_validation("SparseCoder", SparseCoder())


@pytest.mark.parametrize("name, value", [
    ("algorithm", "bogus"), ("alpha", -1.0), ("max_iter", 0), ("positive", "yes"),
])
def test_parameters_checked_again_by_transform(sparse_problem, name, value):
    X, _, D, alpha = sparse_problem
    coder = SparseCoder(D, alpha=alpha).fit(X)
    coder.set_params(**{name: value})
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        coder.transform(X)


def test_odd_input(sparse_problem):
    X, _, D, alpha = sparse_problem
    with pytest.raises(NotFittedError):
        SparseCoder(D, alpha=alpha).transform(X)
    with pytest.raises(TypeError, match="Sparse data"):
        SparseCoder(D, alpha=alpha).fit(scipy.sparse.csr_matrix(X))
    with pytest.raises(ValueError, match="Complex"):
        SparseCoder(D, alpha=alpha).fit(X + 1j)
    with pytest.raises(ValueError, match="0 sample"):
        SparseCoder(D, alpha=alpha).fit(X[:0])
    coder = SparseCoder(D, alpha=alpha).fit(X)
    expected = coder.transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no torch warning for a DataFrame
        np.testing.assert_allclose(coder.transform(pandas.DataFrame(X)), expected)
    np.testing.assert_allclose(coder.transform(X.tolist()), expected)
    assert coder.transform(X[:1]).shape == (1, D.shape[0])
    assert coder.transform(X.astype(np.float16)).dtype == np.float64
