"""DCEA: the convolution operator, the exponential-family solver and the
DCEAEstimator (DCEA-C / DCEA-UC)."""

import copy
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from sklearn_mbdl import DCEAEstimator
from sklearn_mbdl.datasets import make_poisson_images
from sklearn_mbdl.dcea import DCEA
from sklearn_mbdl.metrics import psnr
from sklearn_mbdl.operators import ConvolutionOperator, code_shape
from sklearn_mbdl.solvers import (
    exponential_family_objective,
    exponential_family_step,
    inverse_link,
    natural_offset,
    poisson_proximal_gradient,
)


# ----- operator ---------------------------------------------------------------
@pytest.mark.parametrize("signal_shape,filters_shape", [
    ((13, 17), (5, 7, 7)), ((9, 9), (2, 3, 3)), ((20,), (3, 7)), ((3,), (3, 7)),
])
@pytest.mark.parametrize("stride", [1, 2, 4, 5])
def test_convolution_adjoint(signal_shape, filters_shape, stride):
    g = torch.Generator().manual_seed(0)
    H = ConvolutionOperator(torch.randn(*filters_shape, generator=g,
                                        dtype=torch.float64), signal_shape, stride)
    codes = torch.randn(4, *H.in_shape, generator=g, dtype=torch.float64)
    x = torch.randn(4, *H.out_shape, generator=g, dtype=torch.float64)
    assert H(codes).shape == (4, 1, *signal_shape)
    assert H.adjoint(x).shape == codes.shape
    lhs, rhs = float((H(codes) * x).sum()), float((codes * H.adjoint(x)).sum())
    assert abs(lhs - rhs) <= 1e-10 * max(abs(lhs), 1.0)


def test_convolution_matches_dense_sum_and_lipschitz():
    g = torch.Generator().manual_seed(1)
    filters = torch.randn(2, 3, 3, generator=g, dtype=torch.float64)
    H = ConvolutionOperator(filters, (6, 5), stride=2)
    # one code at (c, p, q) places filter c with its top-left corner at
    # (2p - 2, 2q - 2), cropped to the image
    codes = torch.zeros(1, *H.in_shape, dtype=torch.float64)
    codes[0, 1, 2, 1] = 1.0
    expected = torch.zeros(6 + 4, 5 + 4, dtype=torch.float64)
    expected[4:7, 2:5] = filters[1]
    torch.testing.assert_close(H(codes)[0, 0], expected[2:8, 2:7])
    # ||H||^2 against the dense matrix
    n = int(np.prod(H.in_shape))
    dense = torch.stack([H(e.reshape(1, *H.in_shape)).reshape(-1)
                         for e in torch.eye(n, dtype=torch.float64)])
    exact = float(torch.linalg.matrix_norm(dense, ord=2) ** 2)
    assert H.lipschitz() == pytest.approx(exact, rel=1e-4)
    assert H.in_shape[1:] == code_shape((6, 5), 3, 2)


def test_convolution_is_differentiable_in_the_filters():
    filters = torch.randn(3, 5, 5, dtype=torch.float64, requires_grad=True)
    H = ConvolutionOperator(filters, (12, 12), stride=2)
    H.adjoint(H(torch.ones(2, *H.in_shape, dtype=torch.float64))).sum().backward()
    assert filters.grad is not None and torch.isfinite(filters.grad).all()


# ----- solver -----------------------------------------------------------------
def _counts(peak=4.0, n=6, size=16, seed=0):
    noisy, clean = make_poisson_images(n, patch_size=size, peak=peak, random_state=seed)
    return torch.tensor(noisy)[:, None], torch.tensor(clean)[:, None]


@pytest.mark.parametrize("distribution", ["poisson", "gaussian", "binomial"])
def test_solver_decreases_the_objective(distribution):
    x, clean = _counts()
    if distribution == "binomial":
        x = torch.clamp(x / 8, 0, 1)
    g = torch.Generator().manual_seed(0)
    H = ConvolutionOperator(torch.randn(8, 5, 5, generator=g, dtype=torch.float64),
                            (16, 16), stride=2)
    offset = natural_offset(x, distribution)
    values = []
    codes, n_iter = poisson_proximal_gradient(
        x, H, 0.5, distribution=distribution, max_iter=30, tol=0.0,
        callback=lambda i, c: values.append(
            exponential_family_objective(x, c, H, 0.5, distribution, offset)))
    values = torch.stack(values)
    zero = exponential_family_objective(x, torch.zeros_like(codes), H, 0.5,
                                        distribution, offset)
    assert n_iter == 30
    assert (values[1:] <= values[:-1] + 1e-9 * values[:-1].abs()).all()
    assert (values[-1] <= zero).all()
    # (a flat patch may have the zero code as its solution)
    assert (values[-1] < zero - 1e-3 * zero.abs()).sum() >= 4
    assert (codes == 0).any()  # the l1 penalty makes zeros


def test_solver_fixed_step_is_the_untrained_network():
    """Write each step once: DCEA at initialisation *is* the solver with a
    fixed step (same filters, step, thresholds)."""
    x, _ = _counts()
    g = torch.Generator().manual_seed(0)
    filters = torch.randn(4, 5, 5, generator=g, dtype=torch.float64)
    filters = filters / filters.flatten(1).norm(dim=1)[:, None, None]
    net = DCEA(filters, (16, 16), 2, n_layers=7, alpha=0.3, step=0.02)
    with torch.no_grad():
        mean = net(x.reshape(len(x), -1))
    H = ConvolutionOperator(filters, (16, 16), stride=2)
    codes, _ = poisson_proximal_gradient(x, H, 0.3, max_iter=7, tol=0.0, step=0.02)
    expected = inverse_link(H(codes) + natural_offset(x))
    torch.testing.assert_close(mean, expected.reshape(len(x), -1))
    # and the step itself is exponential_family_step
    one = exponential_family_step(torch.zeros_like(codes), x, natural_offset(x), H, H,
                                  0.02, 0.006)
    first, _ = poisson_proximal_gradient(x, H, 0.3, max_iter=1, tol=0.0, step=0.02)
    torch.testing.assert_close(one, first)


def test_solver_bad_input():
    H = ConvolutionOperator(torch.ones(2, 3, 3), (8, 8))
    with pytest.raises(ValueError, match="distribution"):
        poisson_proximal_gradient(torch.ones(1, 1, 8, 8), H, 1.0, distribution="gamma")
    with pytest.raises(ValueError, match="shape"):
        poisson_proximal_gradient(torch.ones(1, 1, 9, 8), H, 1.0)
    with pytest.raises(ValueError, match="alpha"):
        poisson_proximal_gradient(torch.ones(1, 1, 8, 8), H, -1.0)


# ----- estimator ----------------------------------------------------------------
PEAK = 4


@pytest.fixture(scope="module")
def patches():
    _, train = make_poisson_images(160, patch_size=20, peak=PEAK, random_state=0)
    noisy, clean = make_poisson_images(40, patch_size=32, peak=PEAK, images="test",
                                       random_state=1)
    return train, noisy, clean


def _small(**kw):
    params = dict(n_kernels=16, kernel_size=5, stride=2, n_layers=6, alpha=0.5,
                  peak=PEAK, max_epochs=8, lr=1e-2, batch_size=16, random_state=0)
    params.update(kw)
    return DCEAEstimator(**params)


@pytest.fixture(scope="module")
def fitted(patches):
    train = patches[0]
    return {tied: _small(tied=tied).fit(train) for tied in (True, False)}


def test_dcea_beats_its_twin_and_the_ml_baseline(patches, fitted):
    """Trained on train-picture patches (20x20), tested on test-picture
    patches of another size (32x32): learned > model-based twin > ML."""
    _, noisy, clean = patches
    ml = psnr(clean, noisy / PEAK, data_range=1)
    learned = {}
    for tied, est in fitted.items():
        # the untrained network (a learning rate of ~0) is the twin
        twin = _small(tied=tied, max_epochs=1, lr=1e-12).fit(patches[0])
        np.testing.assert_allclose(twin.initial_components_, est.initial_components_)
        learned[tied] = psnr(clean, est.transform(noisy), data_range=1)
        model_based = psnr(clean, twin.transform(noisy), data_range=1)
        assert model_based > ml + 5
        assert learned[tied] > model_based + 1.0, (tied, learned, model_based)
    # DCEA-UC (untied, more parameters) beats DCEA-C here (by 2.6 dB when
    # written)
    assert learned[False] > learned[True] + 0.5


def test_tied_and_untied(fitted):
    tied, untied = fitted[True], fitted[False]
    np.testing.assert_array_equal(tied.encoder_components_, tied.components_)
    assert not np.allclose(untied.encoder_components_, untied.components_)
    assert "encoder_filters" in dict(untied.net_.module_.named_parameters())
    assert "encoder_filters" not in dict(tied.net_.module_.named_parameters())
    n_tied = sum(p.numel() for p in tied.net_.module_.parameters())
    n_untied = sum(p.numel() for p in untied.net_.module_.parameters())
    assert n_untied - n_tied == tied.components_.size
    # filters are unit norm
    np.testing.assert_allclose(np.linalg.norm(tied.components_.reshape(16, -1), axis=1),
                               1.0, rtol=1e-5)


def test_layouts_codes_dtype_and_score(patches, fitted):
    _, noisy, clean = patches
    est = fitted[True]
    out = est.transform(noisy)
    assert out.shape == noisy.shape and out.dtype == np.float64
    assert (out >= 0).all()
    # rows flattened at the training size, or whole images of another size
    flat = est.transform(noisy[:3, :20, :20].reshape(3, -1))
    assert flat.shape == (3, 400)
    np.testing.assert_allclose(flat, est.transform(noisy[:3, :20, :20]).reshape(3, -1))
    # codes -> intensity is transform; the first 400 columns are the offset
    codes = est.encode(noisy[:3, :20, :20].reshape(3, -1))
    assert codes.shape == (3, 400 + 16 * int(np.prod(est.code_shape_)))
    assert (codes[:, 400:] == 0).mean() > 0.2  # sparse
    np.testing.assert_allclose(est.decode(codes), flat, rtol=1e-10)
    # codes of images of another size
    assert est.encode(noisy[:2]).shape[1] > codes.shape[1]
    # float32 in, float32 out, close to float64; batch-independent
    out32 = est.transform(noisy.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out, rtol=1e-3, atol=1e-3)
    one_by_one = np.concatenate([est.transform(noisy[i:i + 1]) for i in range(5)])
    np.testing.assert_allclose(one_by_one, out[:5], rtol=1e-7, atol=1e-9)
    # score simulates the noise at the peak and returns the PSNR: above ML
    assert est.score(clean) > psnr(clean, noisy / PEAK, data_range=1) + 5
    assert est.score(clean) == est.score(clean)


def test_one_dimensional_rows_are_denoised():
    """With image_shape=(n_features,) rows are 1-D signals and 1-D filters
    denoise them."""
    rng = np.random.RandomState(0)
    t = np.linspace(0, 1, 48)
    clean = np.array([1 + np.sin(2 * np.pi * (f * t + p)) for f, p in
                      zip(rng.uniform(1, 3, 200), rng.uniform(0, 1, 200))])
    est = _small(peak=PEAK, max_epochs=10, image_shape=(48,)).fit(clean[:150])
    assert est.components_.shape == (16, 5)
    noisy = rng.poisson(clean[150:] / est.intensity_scale_).astype(float)
    denoised = est.transform(noisy)
    assert denoised.shape == noisy.shape
    ml = psnr(clean[150:], noisy * est.intensity_scale_, data_range=2)
    assert psnr(clean[150:], denoised, data_range=2) > ml + 5


def test_unsupervised_fit_learns_the_likelihood():
    noisy, clean = make_poisson_images(60, patch_size=16, peak=8, random_state=0)
    est = DCEAEstimator(n_kernels=8, kernel_size=5, stride=2, n_layers=5, alpha=2.0,
                        max_epochs=6, lr=1e-2, random_state=0)
    before = DCEAEstimator(**{**est.get_params(), "lr": 1e-12, "max_epochs": 1})
    est.fit(noisy)
    before.fit(noisy)
    assert est.intensity_scale_ == 1.0
    # training lowers the negative log-likelihood (score is minus it)
    assert est.score(noisy) > before.score(noisy)
    # and the thresholds stay the user's alpha (only the filters learn)
    np.testing.assert_allclose(est.thresholds_ / est.step_, 2.0, rtol=1e-6)


@pytest.mark.parametrize("X,params,match", [
    (-np.ones((4, 64)), {"image_shape": (8, 8)}, "negative"),
    (np.full((4, 64), np.nan), {}, "NaN"),
    (np.ones((4, 64)), {"peak": 0}, "peak"),
    (np.ones((4, 64)), {"peak": -1.0}, "peak"),
    (np.ones((4, 64)), {"image_shape": (8, 9)}, "image_shape"),
    (np.ones((4, 8, 8)), {"image_shape": (4, 16)}, "image_shape"),
    (np.ones((4, 4, 4)), {}, "kernel_size"),
    (np.ones((4, 64)), {"image_shape": (8, 8), "kernel_size": 9}, "kernel_size"),
    (np.ones((4, 64)), {"distribution": "gaussian", "peak": 2}, "peak"),
    (2 * np.ones((4, 64)), {"distribution": "binomial", "image_shape": (8, 8)},
     "binomial"),
    (np.ones((4, 64)), {"distribution": "gamma"}, "distribution"),
    (np.ones((4, 64)), {"tied": "no"}, "tied"),
    (np.zeros((4, 64)), {"peak": 2, "image_shape": (8, 8)}, "all zeros"),
    # flattened images without image_shape are not taken for 1-D signals
    (np.ones((4, 64)), {}, r"image_shape=\(8, 8\)"),
    (np.ones((0, 8, 8)), {}, "0 sample"),
    (np.ones((4, 8, 8)), {"alpha": "big"}, "alpha"),
    (np.ones((4, 8, 8)), {"validation_fraction": 0.9}, "validation_fraction"),
    (np.ones((4, 8, 8)), {"image_shape": (8, 8, 1)}, "image_shape"),
])
def test_bad_input(X, params, match):
    est = DCEAEstimator(max_epochs=1, **params)
    with pytest.raises(ValueError, match=match):
        est.fit(X)


def test_param_validation():
    """Every parameter is declared: scikit-learn's check passes (bad types and
    values raise an error naming the parameter), and bool-like strings are
    refused."""
    from sklearn.utils.estimator_checks import check_param_validation

    check_param_validation("DCEAEstimator", DCEAEstimator(n_kernels=2, n_layers=1,
                                                          max_epochs=1))
    with pytest.raises(ValueError, match="tied"):
        DCEAEstimator(tied="yes", max_epochs=1).fit(np.ones((4, 8, 8)))


def test_bad_input_after_fit(fitted):
    est = fitted[True]
    with pytest.raises(ValueError, match="negative"):
        est.transform(-np.ones((2, 20, 20)))
    with pytest.raises(ValueError, match="kernel_size"):
        est.transform(np.ones((2, 3, 3)))
    with pytest.raises(ValueError, match="columns"):
        est.decode(np.ones((2, 5)))
    with pytest.raises(ValueError, match="features"):
        est.transform(np.ones((2, 30)))
    with pytest.raises(ValueError, match="0 sample"):
        est.transform(np.ones((0, 20, 20)))
    with pytest.raises(ValueError, match="infinity"):
        est.transform(np.full((2, 20, 20), np.inf))
    with pytest.raises(ValueError, match="Complex"):
        est.transform(np.ones((2, 400), dtype=complex))
    with pytest.raises(TypeError, match="(?i)sparse"):
        est.transform(scipy.sparse.csr_matrix(np.ones((2, 400))))
    # a bad value set after fit raises, naming it
    bad = copy.deepcopy(est).set_params(distribution="bogus")
    with pytest.raises(ValueError, match="distribution"):
        bad.transform(np.ones((2, 20, 20)))
    with pytest.raises(NotFittedError):
        clone(est).transform(np.ones((2, 20, 20)))


def test_inputs_that_work(fitted):
    """Lists, ints, float16 and DataFrames (no warning) restore as float64
    arrays; predict and inverse_transform are deprecated aliases."""
    pd = pytest.importorskip("pandas")
    est = fitted[True]
    counts = np.random.RandomState(0).poisson(2.0, size=(3, 400))
    expected = est.transform(counts.astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for X in (counts, counts.tolist(), counts.astype(np.float16),
                  pd.DataFrame(counts)):
            np.testing.assert_allclose(est.transform(X), expected, rtol=1e-6)
    with pytest.warns(FutureWarning, match="transform"):
        np.testing.assert_array_equal(est.predict(counts), expected)
    with pytest.warns(FutureWarning, match="decode"):
        np.testing.assert_array_equal(est.inverse_transform(est.encode(counts)),
                                      est.decode(est.encode(counts)))
    assert list(est.get_feature_names_out()[:2]) == ["dceaestimator0", "dceaestimator1"]
    assert len(est.get_feature_names_out()) == 400


def test_held_out_split_and_pickle_size(patches):
    """With enough images, a share is held out: the epoch table has its loss
    and the best epoch is kept. A fitted estimator holds no training data:
    its pickle does not grow with the training set."""
    train = patches[0]
    sizes = {}
    for n in (40, 160):
        est = _small(max_epochs=2, validation_fraction=0.25).fit(train[:n])
        sizes[n] = len(pickle.dumps(est))
    assert "valid_loss" in est.net_.history[-1]
    assert "early_stopping" in dict(est.net_.callbacks_)
    assert sizes[160] < 1.2 * sizes[40], sizes


def test_grid_search_clone_and_pickle(patches):
    from sklearn.model_selection import GridSearchCV

    train = patches[0][:40]
    est = DCEAEstimator(n_kernels=4, kernel_size=3, stride=2, n_layers=2, peak=PEAK,
                        max_epochs=2, random_state=0)
    search = GridSearchCV(est, {"tied": [True, False]}, cv=2).fit(train)
    assert np.isfinite(search.best_score_)
    fitted = search.best_estimator_
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(train), fitted.transform(train))
    np.testing.assert_allclose(clone(est).fit(train).transform(train),
                               est.fit(train).transform(train))


def test_level_is_a_local_mean_independent_of_the_stride():
    """With every code thresholded to zero the model returns its level b
    alone: a local mean of the counts (a Gaussian window of 4 pixels), the
    same whatever the stride, and already a strong denoiser."""
    noisy, clean = make_poisson_images(6, patch_size=48, peak=2, random_state=0)
    preds = {}
    for stride in (2, 4):
        est = DCEAEstimator(n_kernels=4, stride=stride, n_layers=2, alpha=1e6,
                            max_epochs=1, random_state=0).fit(noisy)
        preds[stride] = est.transform(noisy)
    np.testing.assert_allclose(preds[2], preds[4], rtol=1e-5)
    # measured: ML 7.8 dB, the level 28.0 dB (a 1-pixel window: 18.3 dB)
    assert psnr(clean, preds[4] / 2, data_range=1.0) > psnr(clean, noisy / 2,
                                                          data_range=1.0) + 15


def test_dcea_c_on_small_tiles_does_not_collapse():
    """DCEA-C with the default filters, stride and alpha, trained on 32x32
    tiles at peak 1 and tested on tiles of other pictures, stays within 1 dB
    of the level ``b`` alone (the network with every code at zero; -0.6 dB
    when written, with this small budget) instead of fitting the noise
    (with ``alpha=0.1``, a fifth of the noise level: -12 dB)."""
    _, train = make_poisson_images(96, patch_size=32, peak=1, random_state=0)
    noisy, clean = make_poisson_images(24, patch_size=32, peak=1, images="test",
                                       random_state=1)
    est = DCEAEstimator(n_kernels=16, peak=1, max_epochs=4, random_state=0)
    est.fit(train)
    level = torch.exp(natural_offset(torch.as_tensor(noisy)[:, None],
                                     window=4.0))[:, 0].numpy()
    level_psnr = psnr(clean, level * est.intensity_scale_, data_range=1)
    learned = psnr(clean, est.transform(noisy), data_range=1)
    assert learned > level_psnr - 1.0, (learned, level_psnr)


def test_a_collapsed_fit_keeps_the_solver_and_warns(patches):
    """A learning rate that wrecks the filters: fit keeps the model-based
    solver it started from, says so, and predicts as it does."""
    train, noisy, _ = patches
    with pytest.warns(UserWarning, match="model-based solver"):
        est = _small(lr=30.0, max_epochs=2).fit(train)
    assert est.kept_start_
    start = _small(max_epochs=1, lr=1e-12).fit(train)
    np.testing.assert_allclose(est.components_, est.initial_components_, atol=1e-6)
    np.testing.assert_allclose(est.transform(noisy), start.transform(noisy), rtol=1e-4)


def test_auto_alpha_starts_at_the_best_model_based_solver(patches):
    """alpha="auto" starts training from the best untrained solver: on
    held-out images it restores better than half or twice its weight."""
    train, noisy, clean = patches

    def untrained(alpha):
        est = _small(alpha=alpha, max_epochs=1, lr=1e-12).fit(train)
        return est, psnr(clean, est.transform(noisy), data_range=1)

    start, auto = untrained("auto")
    for factor in (0.5, 2.0):
        assert auto > untrained(factor * start.alpha_)[1] + 0.1, factor


def test_model_based_twin_denoises_and_checks_its_input(patches):
    """The untrained twin (initial filters, fixed l1 weight) restores the
    held-out counts far better than the counts themselves."""
    from sklearn_mbdl.dcea import model_based_denoise

    train, noisy, clean = patches
    est = _small(max_epochs=1, lr=1e-12).fit(train)
    twin = model_based_denoise(noisy, est.initial_components_, est.alpha_,
                               stride=est.stride, n_iter=est.n_layers)
    scale = est.intensity_scale_
    assert psnr(clean, twin * scale, data_range=1) > psnr(clean, noisy * scale,
                                                          data_range=1) + 5
    with pytest.raises(ValueError, match="counts"):
        model_based_denoise(noisy[0], est.initial_components_, 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        model_based_denoise(-noisy, est.initial_components_, 1.0)
    with pytest.raises(ValueError, match="filters"):
        model_based_denoise(noisy, est.initial_components_[0], 1.0)
    with pytest.raises(ValueError, match="alpha"):
        model_based_denoise(noisy, est.initial_components_, -1.0)
