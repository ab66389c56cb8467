"""Tests of plug-and-play restoration: the imaging operators, the denoisers,
the splitting solvers and PnPRestorer."""

import copy
import inspect

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV

from sklearn_mbdl import PnPRestorer
from sklearn_mbdl.datasets import (
    extract_patches,
    load_images,
    make_dead_leaves,
    make_degraded_images,
)
from sklearn_mbdl.denoisers import (
    CNNDenoiser,
    DenoisingCNN,
    SelfEnsemble,
    load_pretrained,
    TVDenoiser,
    WaveletDenoiser,
    daubechies_filter,
    inverse_wavelet_transform,
    tv_prox,
    wavelet_transform,
)
from sklearn_mbdl.denoisers import _divergence, _gradient
from sklearn_mbdl.metrics import psnr
from sklearn_mbdl.operators import (
    Blur,
    Decimation,
    GaussianBlur,
    Identity,
    Inpainting,
    SubsampledFourier,
    cartesian_mask,
    gaussian_kernel,
    power_iteration,
    random_mask,
)
from sklearn_mbdl.solvers import admm, dpir_schedule, hqs, pgd

SHAPE = (16, 12)


def _operators():
    rng = np.random.RandomState(0)
    return {
        "identity": Identity(),
        "gaussian_blur": GaussianBlur(1.6, 25),  # kernel larger than the image
        "blur": Blur(rng.rand(3, 5)),  # not symmetric, not normalised
        "inpainting": Inpainting(random_mask(SHAPE, 0.5, random_state=0)),
        "fourier": SubsampledFourier(cartesian_mask(SHAPE, 4, random_state=0)),
        "decimation": Decimation(2),
        "decimation_kernel": Decimation(2, gaussian_kernel(1.0, 5)),
    }


OPERATORS = _operators()


@pytest.mark.parametrize("name", OPERATORS)
def test_adjoint_dot_product(name):
    A = OPERATORS[name]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, *SHAPE, dtype=torch.float64, generator=gen)
    y = torch.randn(3, *A.observation_shape(SHAPE), dtype=torch.float64, generator=gen)
    lhs = float((A(x) * y).sum())
    rhs = float((x * A.adjoint(y)).sum())
    assert abs(lhs - rhs) <= 1e-10 * max(abs(lhs), 1.0)
    assert A(x).shape == (3, *A.observation_shape(SHAPE))


@pytest.mark.parametrize("name", OPERATORS)
def test_data_solve_is_the_minimiser(name):
    """The gradient of 0.5||A s - y||^2 + rho/2 ||s - v||^2 vanishes."""
    A = OPERATORS[name]
    gen = torch.Generator().manual_seed(1)
    y = torch.randn(2, *A.observation_shape(SHAPE), dtype=torch.float64, generator=gen)
    v = torch.randn(2, *SHAPE, dtype=torch.float64, generator=gen)
    for rho in (0.01, 1.0):
        s = A.data_solve(y, v, rho)
        grad = A.adjoint(A(s) - y) + rho * (s - v)
        scale = max(1.0, float(A.adjoint(y).abs().max()))
        assert float(grad.abs().max()) < 1e-6 * scale


@pytest.mark.parametrize("name", OPERATORS)
def test_lipschitz_matches_power_iteration(name):
    A = OPERATORS[name]
    exact = power_iteration(A.normal, SHAPE, dtype=torch.float64, n_iter=2000,
                            tol=1e-12)
    assert A.lipschitz(SHAPE) == pytest.approx(exact, rel=1e-4)


def test_blur_is_circular_convolution():
    kernel = np.random.RandomState(0).rand(3, 3)
    x = np.random.RandomState(1).rand(8, 9)
    expected = np.zeros_like(x)
    for i in range(3):
        for j in range(3):
            expected += kernel[i, j] * np.roll(x, (i - 1, j - 1), axis=(0, 1))
    out = Blur(kernel)(torch.from_numpy(x)[None])[0].numpy()
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_fourier_matches_numpy_fft():
    mask = cartesian_mask((8, 8), 2, random_state=0)
    x = np.random.RandomState(0).rand(8, 8)
    k = np.fft.fft2(x, norm="ortho") * mask
    y = SubsampledFourier(mask)(torch.from_numpy(x)[None])[0].numpy()
    np.testing.assert_allclose(y[0] + 1j * y[1], k, atol=1e-12)


def test_cartesian_mask():
    mask = cartesian_mask((32, 64), 4, center_fraction=0.08, random_state=0)
    assert mask.shape == (32, 64)
    assert int(mask[0].sum()) == 16
    assert (mask == mask[:1]).all()  # whole lines
    assert mask[:, [0, 1, -1]].all()  # the lowest frequencies
    assert not np.array_equal(mask, cartesian_mask((32, 64), 4, random_state=1))


def test_operator_bad_input():
    with pytest.raises(ValueError, match="mask"):
        Inpainting(np.ones(5))
    with pytest.raises(ValueError, match="0/1"):
        SubsampledFourier(np.full((4, 4), 0.5))
    with pytest.raises(ValueError, match="shape"):
        Inpainting(np.ones((4, 4))).check_image_shape((5, 5))
    with pytest.raises(ValueError, match="multiples"):
        Decimation(2).check_image_shape((5, 6))
    with pytest.raises(ValueError, match="factor"):
        Decimation(0)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_kernel(-1.0)
    with pytest.raises(ValueError, match="odd"):
        gaussian_kernel(1.0, 4)
    with pytest.raises(ValueError, match="kernel"):
        Blur([[np.nan]])


# ----- denoisers ------------------------------------------------------------------
def test_gradient_divergence_adjoint():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 6, dtype=torch.float64, generator=gen)
    p = torch.randn(2, 2, 5, 6, dtype=torch.float64, generator=gen)
    assert float((_gradient(x) * p).sum() + (x * _divergence(p)).sum()) == \
        pytest.approx(0.0, abs=1e-10)


def _tv(z):
    g = _gradient(z)
    return torch.sqrt(g[:, 0] ** 2 + g[:, 1] ** 2).sum(dim=(1, 2))


def test_tv_prox_minimises_its_objective():
    gen = torch.Generator().manual_seed(0)
    b = torch.rand(3, 16, 16, dtype=torch.float64, generator=gen)
    weight = torch.tensor([0.05, 0.1, 0.3], dtype=torch.float64)

    def objective(z):
        return 0.5 * ((z - b) ** 2).sum(dim=(1, 2)) + weight * _tv(z)

    z = tv_prox(b, weight, n_iter=500)
    best = objective(z)
    assert (best < objective(b)).all()
    for _ in range(5):
        other = z + 1e-3 * torch.randn(z.shape, dtype=z.dtype, generator=gen)
        assert (best <= objective(other) + 1e-9).all()
    # 50 iterations (the default) are within 1% of the optimum
    assert (objective(tv_prox(b, weight)) - best <= 1e-2 * best).all()
    # batch independence
    single = tv_prox(b[1:2], weight[1:2])
    torch.testing.assert_close(single, tv_prox(b, weight)[1:2])


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_daubechies_filters_are_orthonormal(n):
    h = daubechies_filter(n)
    assert len(h) == 2 * n
    assert h.sum() == pytest.approx(np.sqrt(2))
    for shift in range(n):
        assert np.dot(h[:len(h) - 2 * shift], h[2 * shift:]) == \
            pytest.approx(1.0 if shift == 0 else 0.0, abs=1e-10)


@pytest.mark.parametrize("wavelet", [1, 2, 4])
def test_wavelet_transform_is_orthonormal(wavelet):
    x = torch.rand(2, 32, 16, dtype=torch.float64)
    a, details = wavelet_transform(x, wavelet, 3)
    energy = (a ** 2).sum() + sum((band ** 2).sum() for bands in details
                                  for band in bands)
    assert float(energy) == pytest.approx(float((x ** 2).sum()))
    torch.testing.assert_close(inverse_wavelet_transform(a, details, wavelet), x)


def test_wavelet_denoiser_is_soft_thresholding():
    x = torch.rand(1, 16, 16, dtype=torch.float64)
    out = WaveletDenoiser(weight=2.0, wavelet=2, levels=2)(x, 0.05)
    a, d = wavelet_transform(x, 2, 2)
    a2, d2 = wavelet_transform(out, 2, 2)
    torch.testing.assert_close(a2, a)
    for bands, bands2 in zip(d, d2):
        for band, band2 in zip(bands, bands2):
            expected = torch.sign(band) * torch.relu(band.abs() - 0.1)
            torch.testing.assert_close(band2, expected)


@pytest.mark.parametrize("denoiser", [TVDenoiser(), WaveletDenoiser(),
                                      CNNDenoiser(DenoisingCNN())])
@pytest.mark.parametrize("shape", [(1, 7), (9, 8), (1, 1)])
def test_denoisers_keep_shape_and_dtype(denoiser, shape):
    for dtype in (torch.float32, torch.float64):
        x = torch.rand(3, *shape, dtype=dtype)
        out = denoiser(x, 0.1)
        assert out.shape == x.shape and out.dtype == dtype
        assert torch.isfinite(out).all()


def test_classic_denoisers_denoise():
    clean = extract_patches(load_images(["camera"]), 8, 32, random_state=0)
    rng = np.random.RandomState(0)
    noisy = clean + 0.1 * rng.standard_normal(clean.shape)
    x = torch.from_numpy(noisy)
    for denoiser in (TVDenoiser(), WaveletDenoiser()):
        out = denoiser(x, 0.1).numpy()
        assert psnr(clean, out, data_range=1) > psnr(clean, noisy, data_range=1) + 3


def test_self_ensemble_is_equivariant():
    """Averaged over the eight symmetries, any denoiser becomes equivariant
    to flips and quarter turns, keeps shape and dtype, and an equivariant
    denoiser is left unchanged."""
    def skewed(x, sigma):  # neither flip- nor rotation-equivariant
        return 0.5 * x + 0.3 * torch.roll(x, 1, dims=-1) + 0.2 * torch.roll(x, 2, dims=-2)

    x = torch.rand(2, 9, 7, dtype=torch.float64)
    ensemble = SelfEnsemble(skewed)
    out = ensemble(x, 0.1)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not torch.allclose(skewed(x.flip(-1), 0.1), skewed(x, 0.1).flip(-1))
    assert torch.allclose(ensemble(x.flip(-1), 0.1), out.flip(-1))
    assert torch.allclose(ensemble(x.flip(-2), 0.1), out.flip(-2))
    square = torch.rand(2, 8, 8, dtype=torch.float64)
    assert torch.allclose(ensemble(torch.rot90(square, 1, (-2, -1)), 0.1),
                          torch.rot90(ensemble(square, 0.1), 1, (-2, -1)))
    scale = lambda z, sigma: 0.7 * z  # equivariant: unchanged
    assert torch.allclose(SelfEnsemble(scale)(x, 0.1), 0.7 * x)
    # one noise level per image follows its image through the batching
    levels = torch.tensor([0.1, 0.3], dtype=torch.float64)
    per_image = lambda z, sigma: z * torch.as_tensor(sigma).reshape(-1, 1, 1)
    assert torch.allclose(SelfEnsemble(per_image)(x, levels), x * levels[:, None, None])
    with pytest.raises(ValueError, match="callable"):
        SelfEnsemble("cnn")


def test_self_ensemble_improves_the_learned_prior():
    """On held-out TEST_IMAGES patches, PnP-ADMM deblurring with the shipped
    CNN gains from the x8 self-ensemble (the network is not equivariant)."""
    A = GaussianBlur(1.6, 25)
    _, clean = make_degraded_images(None, 4, patch_size=48, random_state=1)
    scores = {}
    for ensemble in (False, True):
        est = PnPRestorer(A, denoiser=load_pretrained(), self_ensemble=ensemble,
                          noise_level=0.01, rho=0.0125, random_state=0).fit(clean)
        scores[ensemble] = est.score(clean)
    assert scores[True] > scores[False] + 0.05  # measured +0.40 (both networks)


@pytest.mark.parametrize("algorithm", ["admm", "hqs", "pgd"])
def test_default_rho_suits_each_algorithm(algorithm):
    """``rho=None`` takes the solver's own default: with the shipped CNN
    every algorithm then deblurs held-out patches (one value for all, 0.02,
    made HQS diverge: 14 dB below the observation on a 256x256 crop)."""
    from sklearn_mbdl.pnp import ALGORITHMS

    default = inspect.signature(ALGORITHMS[algorithm]).parameters["rho"].default
    A = GaussianBlur(1.6, 25)
    Y, clean = make_degraded_images(A, 2, patch_size=48, noise_level=0.01,
                                    random_state=1)
    est = PnPRestorer(A, denoiser=load_pretrained(), algorithm=algorithm,
                      noise_level=0.01, n_iter=8).fit(clean)
    restored = est.transform(Y)
    assert psnr(clean, restored, data_range=1) > psnr(clean, Y, data_range=1) + 1
    explicit = est.set_params(rho=default).transform(Y)
    np.testing.assert_array_equal(restored, explicit)


def test_shipped_weights():
    """The PnP denoiser and the burst network's starting point are separate
    files (retraining one leaves the other); a missing file is a ValueError
    that names it."""
    from sklearn_mbdl.burst import BurstNet
    from sklearn_mbdl.burst._network import INIT_WEIGHTS
    from sklearn_mbdl.denoisers import PRETRAINED, _shipped_weights

    burst = BurstNet(n_iter=1).denoiser.state_dict()
    pnp = load_pretrained().module.state_dict()
    init = _shipped_weights(INIT_WEIGHTS)
    assert INIT_WEIGHTS != PRETRAINED
    assert all(torch.equal(burst[k], init[k]) for k in init)
    assert not all(torch.equal(burst[k], pnp[k]) for k in pnp)
    with pytest.raises(ValueError, match="no_such.pt"):
        _shipped_weights("no_such.pt")


def test_pretrained_fine_tunes_the_shipped_network():
    """``pretrained=True`` starts from the shipped weights (its first loss is
    the shipped network's, far below a fresh one's) and trains them further."""
    X = extract_patches(load_images("train"), 64, 32, random_state=0)
    shipped = load_pretrained().module.state_dict()
    tuned = PnPRestorer(pretrained=True, max_epochs=1, lr=1e-4, random_state=0).fit(X)
    fresh = PnPRestorer(pretrained=False, max_epochs=1, lr=1e-4, random_state=0).fit(X)
    tuned_loss = tuned.net_.history[0, "train_loss"]
    assert tuned_loss < 0.2 * fresh.net_.history[0, "train_loss"]
    state = tuned.net_.module_.state_dict()
    # kept only when it beats the shipped network on held-out patches
    moved = not all(torch.equal(state[k], shipped[k]) for k in shipped)
    assert moved == tuned.fine_tuned_
    assert all(torch.allclose(state[k], shipped[k], atol=1e-2) for k in shipped)


def test_training_loss_weighs_low_noise_levels():
    """The CNN's training loss divides each sample's squared error by its
    noise variance (floored at 0.01): the same error counts 100x more at
    level 0.01 than at 0.1 ... 0.2, and ``fit`` trains with it."""
    from sklearn_mbdl.pnp import LevelWeightedMSE

    loss = LevelWeightedMSE()
    target = torch.zeros(2, 4, 4)
    error = torch.full((2, 4, 4), 0.1)
    low, high = torch.tensor([0.0, 0.0]), torch.tensor([0.2, 0.2])
    assert float(loss(error, target, low)) == pytest.approx(0.01 * 101, rel=1e-5)
    assert float(loss(error, target, high)) == pytest.approx(0.01 * 0.0101 / 0.0401,
                                                             rel=1e-5)
    X = extract_patches(load_images("train"), 16, 16, random_state=0)
    net = PnPRestorer(pretrained=False, max_epochs=1, random_state=0).fit(X).net_
    inputs = torch.stack([torch.from_numpy(X[:2]).float(),
                          torch.tensor([0.01, 0.2]).reshape(2, 1, 1).expand(2, 16, 16)],
                         dim=1)
    clean = torch.from_numpy(X[:2]).float()
    with torch.no_grad():
        denoised = net.module_(inputs)
        expected = loss(denoised, clean, torch.tensor([0.01, 0.2]))
        assert float(net.get_loss(denoised, clean, inputs)) == pytest.approx(
            float(expected), rel=1e-5)
        assert float(expected) != pytest.approx(
            float(torch.nn.functional.mse_loss(denoised, clean)), rel=0.1)


# ----- solvers --------------------------------------------------------------------
@pytest.fixture(scope="module")
def blurred():
    A = GaussianBlur(1.6, 25)
    Y, X = make_degraded_images(A, 4, patch_size=48, noise_level=0.01,
                                random_state=0)
    return A, torch.from_numpy(Y), X


@pytest.mark.parametrize("solver", [admm, hqs, pgd])
def test_solvers_restore_with_tv(blurred, solver):
    A, y, X = blurred
    x, changes = solver(y, A, TVDenoiser(), rho=0.05 if solver is not pgd else 1.0,
                        noise_level=0.01, n_iter=30)
    assert x.shape == (4, 48, 48)
    assert changes.shape == (30, 4)
    assert psnr(X, x.numpy(), data_range=1) > psnr(X, y.numpy(), data_range=1) + 1


def test_admm_converges(blurred):
    """The relative change decays and the TV objective decreases to a plateau
    at least as low as proximal gradient's on the same objective (a wrong
    dual update or denoiser level converges elsewhere, 1-30% higher)."""
    A, y, X = blurred
    weight_of = {}

    def objective(x):
        return 0.5 * ((A(x) - y) ** 2).sum() + weight_of["w"] * _tv(x).sum()

    rho, noise = 0.05, 0.01
    # ADMM with TVDenoiser solves 0.5||Ax - y||^2 + noise * sqrt(rho) TV(x)
    weight_of["w"] = noise * np.sqrt(rho)
    values = []
    x, changes = admm(y, A, TVDenoiser(n_iter=100), rho=rho, noise_level=noise,
                      n_iter=50,
                      callback=lambda k, v: values.append(float(objective(v))))
    assert float(changes[-1].max()) < 1e-3
    assert float(changes[-1].max()) < 0.05 * float(changes[0].max())
    assert values[-1] < values[0]
    assert abs(values[-1] - values[-10]) < 1e-3 * values[-1]
    # the same objective by PnP-PGD: step 1/L, prox of (w / L) TV, i.e. the
    # denoiser at level noise / sqrt(rho_pgd) = w / L
    lipschitz = A.lipschitz()
    rho_pgd = (noise * lipschitz / weight_of["w"]) ** 2
    reference, _ = pgd(y, A, TVDenoiser(n_iter=100), rho=rho_pgd,
                       noise_level=noise, n_iter=50)
    assert values[-1] <= float(objective(reference))


def test_solvers_plug_any_callable(blurred):
    A, y, _ = blurred
    calls = []

    def identity(x, sigma):
        calls.append(sigma)
        return x

    x, _ = admm(y, A, identity, rho=1.0, noise_level=0.02, n_iter=3)
    assert calls == [0.02] * 3
    calls.clear()
    hqs(y, A, identity, rho=0.25, noise_level=0.01, n_iter=4, sigma_start=0.2)
    # DPIR's schedule: from sigma_start down to the noise level, whatever rho
    assert calls[0] == pytest.approx(0.2) and calls[-1] == pytest.approx(0.01)
    assert all(a > b for a, b in zip(calls, calls[1:]))


def test_hqs_penalty_ends_at_rho(blurred, monkeypatch):
    """HQS's data penalty follows the denoiser level, rho * (noise / sigma_k)^2,
    so that the last step has penalty rho (DPIR's lambda)."""
    A, y, _ = blurred
    penalties, solve = [], A.data_solve
    monkeypatch.setattr(A, "data_solve",
                        lambda y_, z, rho: penalties.append(rho) or solve(y_, z, rho))
    hqs(y, A, lambda x, sigma: x, rho=0.23, noise_level=0.01, n_iter=5, sigma_start=0.2)
    assert penalties[0] == pytest.approx(0.23 * (0.01 / 0.2) ** 2)
    assert penalties[-1] == pytest.approx(0.23)
    assert all(a < b for a, b in zip(penalties, penalties[1:]))


def test_dpir_schedule():
    s = dpir_schedule(30, 0.2, 0.01)
    assert s[0] == pytest.approx(0.2) and s[-1] == pytest.approx(0.01)
    assert dpir_schedule(3, 0.01, 0.05) == [0.05] * 3


@pytest.mark.parametrize("kwargs, match", [
    (dict(rho=-1.0), "rho"),
    (dict(noise_level=-0.1), "noise_level"),
    (dict(n_iter=0), "n_iter"),
])
def test_solver_bad_input(blurred, kwargs, match):
    A, y, _ = blurred
    with pytest.raises(ValueError, match=match):
        admm(y, A, TVDenoiser(), **kwargs)
    with pytest.raises(ValueError, match="NaN"):
        admm(torch.full_like(y, float("nan")), A, TVDenoiser())
    with pytest.raises(ValueError, match="denoiser"):
        pgd(y, A, "tv")


# ----- estimator -------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained():
    """A small CNN denoiser trained on TRAIN_IMAGES patches (a few seconds)."""
    patches = extract_patches(load_images("train"), 128, 24, random_state=0)
    return PnPRestorer(pretrained=False, max_epochs=8, batch_size=4,
                       random_state=0).fit(patches)


def test_fit_learns_a_denoiser(trained):
    """A few seconds of training already remove much of the noise of
    held-out patches, at every noise level (one network for all levels)."""
    _, clean = make_degraded_images(None, 8, patch_size=32, random_state=1)
    rng = np.random.RandomState(0)
    denoise = CNNDenoiser(trained.net_.module_)
    for sigma in (0.05, 0.1):
        noisy = clean + sigma * rng.standard_normal(clean.shape)
        out = denoise(torch.from_numpy(noisy), sigma).numpy()
        assert psnr(clean, out, data_range=1) > psnr(clean, noisy, data_range=1) + 1
    history = trained.net_.history
    assert history[-1, "train_loss"] < 0.5 * history[0, "train_loss"]


def test_learned_beats_tv():
    """On held-out TEST_IMAGES patches, the shipped CNN denoiser beats TV
    in the same loop: denoising, and PnP-ADMM deblurring."""
    _, clean = make_degraded_images(None, 8, patch_size=48, random_state=1)
    scores = {}
    for operator, noise, rhos in [(None, 0.1, (1.0, 1.0)),
                                  (GaussianBlur(1.6, 25), 0.03, (0.05, 0.03))]:
        # rho: the best of (0.01, 0.025, 0.05) for the CNN and of
        # (0.003, 0.01, 0.03) for TV on these patches (denoising: unused)
        for name, denoiser, r in (("cnn", load_pretrained(), rhos[0]),
                                  ("tv", "tv", rhos[1])):
            est = PnPRestorer(operator, denoiser=denoiser, noise_level=noise, rho=r,
                              random_state=0).fit(clean)
            scores[operator is None, name] = est.score(clean)
    # measured: +0.74 dB (denoising), +0.60 dB (deblurring); before the
    # level-weighted fine-tuning +0.68 / +0.58, before the first
    # fine-tuning +0.61 / +0.55; the network before that
    # (burst_prior_init.pt): +0.23 and +0.43
    assert scores[True, "cnn"] > scores[True, "tv"] + 0.4
    assert scores[False, "cnn"] > scores[False, "tv"] + 0.45


@pytest.mark.parametrize("operator", [
    GaussianBlur(1.0, 9), Decimation(2),
    SubsampledFourier(cartesian_mask((32, 32), 4, random_state=0)),
    Inpainting(random_mask((32, 32), 0.5, random_state=0))])
def test_one_fit_serves_every_operator(trained, operator):
    _, clean = make_degraded_images(None, 3, patch_size=32, random_state=2)
    est = copy.deepcopy(trained)
    # the fitted estimator, with the shipped network's weights in its net
    est.net_.module_.load_state_dict(load_pretrained().module.state_dict())
    est.set_params(operator=operator, n_iter=8, rho=0.5, noise_level=0.02)
    Y = est.simulate(clean, random_state=0)
    out = est.transform(Y)
    assert out.shape == clean.shape
    start = est._operator().initial(torch.from_numpy(Y)).numpy()
    assert psnr(clean, out, data_range=1) > psnr(clean, start, data_range=1)


def test_transform_layout_dtype_history():
    A = GaussianBlur(1.0, 7)
    Y, X = make_degraded_images(A, 3, patch_size=16, random_state=0)
    est = PnPRestorer(A, denoiser="tv", n_iter=5, rho=0.1).fit(X)
    images = est.transform(Y)
    rows = est.transform(Y.reshape(3, -1))
    assert images.shape == (3, 16, 16) and rows.shape == (3, 256)
    np.testing.assert_allclose(images.reshape(3, -1), rows)
    assert est.transform(Y.astype(np.float32)).dtype == np.float32
    out, history = est.transform(Y, return_history=True, reference=X)
    assert history["change"].shape == (5,) and history["nmse_db"].shape == (5,)
    seen = []
    est.transform(Y, callback=lambda k, x: seen.append((k, x.shape)))
    assert seen == [(k, (3, 16, 16)) for k in range(5)]
    # one by one equals all at once
    single = np.concatenate([est.transform(Y[i:i + 1]) for i in range(3)])
    np.testing.assert_allclose(single, images, atol=1e-10)


@pytest.mark.parametrize("operator", [GaussianBlur(1.0, 7), Decimation(2), None])
def test_make_degraded_images_and_simulate_share_one_observation_model(operator):
    # make_degraded_images draws its patches, then the noise, from one random
    # state; simulate on those patches from that state gives its observations
    observed, clean = make_degraded_images(operator, 3, patch_size=16,
                                           noise_level=0.05, random_state=0)
    est = PnPRestorer(operator, denoiser="tv", noise_level=0.05).fit(clean)
    rng = np.random.RandomState(0)
    patches = extract_patches(load_images("test"), 3, 16, random_state=rng)
    np.testing.assert_array_equal(patches, clean)
    np.testing.assert_array_equal(est.simulate(clean, random_state=rng), observed)


def test_score_and_grid_search_tune_rho():
    A = GaussianBlur(1.6, 25)
    _, X = make_degraded_images(A, 6, patch_size=32, random_state=0)
    est = PnPRestorer(A, denoiser="tv", noise_level=0.03, n_iter=10,
                      image_shape=(32, 32), random_state=0)
    search = GridSearchCV(est, {"rho": [1e-4, 0.1, 100.0]}, cv=2).fit(X.reshape(6, -1))
    assert search.best_params_ == {"rho": 0.1}
    assert search.best_score_ > 20


def test_one_dimensional_rows():
    rng = np.random.RandomState(0)
    t = np.linspace(0, 1, 40)
    X = (np.sin(2 * np.pi * rng.rand(30, 1) * 3 * t) > 0).astype(float)
    noisy = X + 0.1 * rng.standard_normal(X.shape)
    est = PnPRestorer(denoiser="tv", noise_level=0.1, image_shape=(1, 40)).fit(X)
    assert est.image_shape_ == (1, 40)
    out = est.transform(noisy)
    assert out.shape == X.shape
    assert np.mean((out - X) ** 2) < 0.5 * np.mean((noisy - X) ** 2)


def test_restorer_bad_input():
    A = GaussianBlur(1.0, 7)
    Y, X = make_degraded_images(A, 2, patch_size=16, random_state=0)
    est = PnPRestorer(A, denoiser="tv").fit(X)
    with pytest.raises(ValueError, match="features"):
        est.transform(Y.reshape(2, -1)[:, :100])
    mri = PnPRestorer(SubsampledFourier(cartesian_mask((16, 16), 2)),
                      denoiser="tv").fit(X)
    with pytest.raises(ValueError, match="shape"):
        mri.transform(np.zeros((2, 2, 8, 8)))
    # as many values as (2, 16, 16) observations, in the wrong layout
    with pytest.raises(ValueError, match="observations of shape"):
        mri.transform(np.zeros((2, 4, 16, 8)))
    with pytest.raises(ValueError, match="shape"):
        mri.transform(np.zeros((2, 16, 16)))
    bad = Y.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.transform(bad)
    with pytest.raises(ValueError, match="noise_level"):
        PnPRestorer(A, noise_level=-0.1).fit(X)
    with pytest.raises(ValueError, match="algorithm"):
        PnPRestorer(A, algorithm="sgd").fit(X)
    with pytest.raises(ValueError, match="self_ensemble"):
        PnPRestorer(A, self_ensemble="yes").fit(X)
    with pytest.raises(ValueError, match="pretrained"):
        PnPRestorer(A, pretrained=1).fit(X)
    # pretrained (True by default) concerns the CNN only
    assert PnPRestorer(A, denoiser="tv", pretrained=True).fit(X).net_ is None
    with pytest.raises(ValueError, match="denoiser"):
        PnPRestorer(A, denoiser="bm3d").fit(X)
    with pytest.raises(ValueError, match="operator"):
        PnPRestorer("blur").fit(X)
    with pytest.raises(ValueError, match="mask"):
        PnPRestorer(Inpainting(np.ones((8, 8))), denoiser="tv").fit(X)
    with pytest.raises(ValueError, match="image_shape"):
        PnPRestorer(image_shape=(3, 5)).fit(X.reshape(2, -1))
    with pytest.raises(ValueError, match="noise_level"):
        make_degraded_images(A, 2, noise_level=-1.0)
    est = PnPRestorer(A, denoiser="tv").fit(X)
    est.set_params(denoiser="cnn")
    with pytest.raises(ValueError, match="fit again"):
        est.transform(Y)


def test_dead_leaves_are_seeded_covered_and_anti_aliased():
    leaves = make_dead_leaves(6, size=24, random_state=0)
    assert leaves.shape == (6, 24, 24)
    assert np.isfinite(leaves).all() and leaves.min() >= 0 and leaves.max() <= 1
    np.testing.assert_array_equal(leaves, make_dead_leaves(6, size=24, random_state=0))
    assert not np.array_equal(leaves, make_dead_leaves(6, size=24, random_state=1))
    # flat discs: many pixels (about 45% here) equal their neighbour exactly,
    # noise would give none; the box-averaged edges take grey levels between
    # two discs'
    flat = np.mean(leaves[:, :, 1:] == leaves[:, :, :-1])
    assert 0.3 < flat < 0.99
    sharp = make_dead_leaves(6, size=24, supersample=1, random_state=0)
    assert len(np.unique(leaves)) > 3 * len(np.unique(sharp))


def test_dead_leaves_radii_set_the_scale():
    # larger discs, fewer edges
    small = make_dead_leaves(4, size=32, radius_range=(1.0, 3.0), random_state=0)
    large = make_dead_leaves(4, size=32, radius_range=(8.0, 30.0), random_state=0)
    edges = [np.mean(np.abs(np.diff(x, axis=2)) > 1e-3) for x in (small, large)]
    assert edges[0] > 3 * edges[1]


def test_dead_leaves_cover_the_picture_with_discs():
    # with discs of radius 1-3 no grey level may hold more than a few percent
    # of the picture (about 2% here); pixels no disc covered share one grey,
    # so a picture left half uncovered would hold half of it
    leaves = make_dead_leaves(4, size=32, radius_range=(1.0, 3.0), supersample=1,
                              random_state=0)
    for picture in leaves:
        _, counts = np.unique(picture, return_counts=True)
        assert counts.max() < 0.1 * picture.size


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_samples=0), "n_samples"),
    (dict(n_samples=2, size=0), "size"),
    (dict(n_samples=2, radius_range=(3.0, 1.0)), "radius_range"),
    (dict(n_samples=2, radius_range=(0.0, 1.0)), "radius_range"),
    (dict(n_samples=2, radius_range="big"), "radius_range"),
    (dict(n_samples=2, supersample=0), "supersample"),
])
def test_dead_leaves_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_dead_leaves(**kwargs)


# ----- defaults that work ------------------------------------------------------------
def test_default_fine_tunes_the_shipped_prior_and_keeps_the_better():
    """By default fit fine-tunes the shipped CNN; a fine-tune that ends worse
    on held-out images (here a ruinous learning rate) is not kept: the
    shipped weights are, with a warning."""
    from sklearn_mbdl.denoisers import PRETRAINED, _shipped_weights

    X = extract_patches(load_images("train"), 24, 24, random_state=0)
    assert PnPRestorer().pretrained is True
    with pytest.warns(UserWarning, match="did not improve on the shipped CNN prior"):
        est = PnPRestorer(max_epochs=1, lr=1.0, random_state=0).fit(X)
    assert est.fine_tuned_ is False
    shipped = _shipped_weights(PRETRAINED)
    state = est.net_.module_.state_dict()
    assert all(torch.equal(state[k], shipped[k]) for k in shipped)


def test_images_far_outside_unit_range_warn():
    """8-bit images (0-255) restore about 16 dB worse: fit, score and
    transform say so (observations in the image domain only)."""
    A = GaussianBlur(1.0, 7)
    Y, X = make_degraded_images(A, 2, patch_size=16, random_state=0)
    with pytest.warns(UserWarning, match="divide by 255"):
        est = PnPRestorer(A, denoiser="tv").fit(255 * X)
    est = PnPRestorer(A, denoiser="tv").fit(X)
    with pytest.warns(UserWarning, match="observed images"):
        est.transform(255 * Y)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.transform(Y)  # noisy observations a little outside [0, 1]: fine
        mri = PnPRestorer(SubsampledFourier(cartesian_mask((16, 16), 2)),
                          denoiser="tv").fit(X)
        mri.transform(40 * mri.simulate(X))  # k-space: any scale


# ----- image input, parameters, fitted state -------------------------------------
def test_image_input_contradictions_raise():
    """An image_shape that contradicts 3-D input, zero images, and flattened
    images without image_shape raise ValueErrors naming the problem (they
    were reshaped, a NumPy error, and 1 x n images)."""
    X = np.random.RandomState(0).rand(3, 16, 16)
    with pytest.raises(ValueError, match="image_shape"):
        PnPRestorer(denoiser="tv", image_shape=(8, 32)).fit(X)
    with pytest.raises(ValueError, match="image_shape"):
        PnPRestorer(denoiser="tv").fit(X.reshape(3, -1))
    for empty in (X[:0], np.zeros((0, 256))):
        with pytest.raises(ValueError, match="0 sample"):
            PnPRestorer(denoiser="tv", image_shape=(16, 16)).fit(empty)
    with pytest.raises(ValueError, match="image_shape"):
        PnPRestorer(denoiser="tv", image_shape=(256,)).fit(X.reshape(3, -1))
    est = PnPRestorer(denoiser="tv", image_shape=(16, 16)).fit(X.reshape(3, -1))
    assert est.image_shape_ == (16, 16)
    with pytest.raises(ValueError, match="0 sample"):
        est.transform(X[:0])
    # rows shorter than a 4 x 4 image are 1-D signals, 1 x n images
    assert PnPRestorer(denoiser="tv").fit(X[:, 0, :8]).image_shape_ == (1, 8)


def test_operator_with_a_mask_gives_the_shape():
    """Operators with a fixed image shape (a mask) say what image_shape
    would for flattened rows; a contradiction names the mask."""
    X = np.random.RandomState(0).rand(3, 16, 16)
    mri = SubsampledFourier(cartesian_mask((16, 16), 2, random_state=0))
    est = PnPRestorer(mri, denoiser="tv", n_iter=3).fit(X.reshape(3, -1))
    assert est.image_shape_ == (16, 16) and est.n_features_in_ == 256
    assert est.transform(est.simulate(X)).shape == (3, 16, 16)
    with pytest.raises(ValueError, match="mask"):
        PnPRestorer(mri, denoiser="tv", image_shape=(8, 32)).fit(X.reshape(3, -1))
    with pytest.raises(ValueError, match="image_shape"):
        PnPRestorer(mri, denoiser="tv").fit(X.reshape(6, -1))


def test_parameters_are_declared_and_rechecked():
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.estimator_checks import check_param_validation

    check_param_validation("PnPRestorer", PnPRestorer())
    Y, X = make_degraded_images(GaussianBlur(1.0, 7), 2, patch_size=16, random_state=0)
    with pytest.raises(NotFittedError):
        PnPRestorer(denoiser="tv").transform(Y)
    est = PnPRestorer(GaussianBlur(1.0, 7), denoiser="tv").fit(X)
    for name, value in (("n_iter", 0), ("algorithm", "bogus"), ("rho", -1.0),
                        ("self_ensemble", "yes"), ("batch_size", 0)):
        with pytest.raises(ValueError, match=name):
            clone_est = copy.deepcopy(est).set_params(**{name: value})
            clone_est.transform(Y)


def test_input_types_work():
    """Lists, DataFrames (without torch's non-writable warning), integer and
    float16 images fit and restore."""
    import warnings

    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X = rng.rand(4, 16, 16)
    rows = X.reshape(4, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = PnPRestorer(denoiser="tv", image_shape=(16, 16), n_iter=2)
        out = est.fit(pd.DataFrame(rows)).transform(pd.DataFrame(rows))
        assert out.shape == (4, 256)
        assert est.fit(X.tolist()).transform(X.tolist()).shape == (4, 16, 16)
        assert est.fit((X > 0.5).astype(int)).transform(X).dtype == np.float64
        assert est.fit(X.astype(np.float16)).transform(X).shape == (4, 16, 16)
    for bad, match in ((X + 1j, "omplex"), (X.reshape(4, 16, 4, 4), "3-D"),
                       (rows.reshape(-1), "2D|1-D|2-D")):
        with pytest.raises(ValueError, match=match):
            PnPRestorer(denoiser="tv").fit(bad)


def test_fitted_restorer_holds_no_training_images():
    """The pickled estimator does not grow with the training set."""
    import pickle

    X = extract_patches(load_images("train"), 64, 16, random_state=0)
    sizes = [len(pickle.dumps(PnPRestorer(max_epochs=1, random_state=0).fit(images)))
             for images in (X[:16], X)]
    assert sizes[1] < 1.2 * sizes[0]


def test_cnn_denoiser_chunks_agree():
    """The CNN's chunked inference does not depend on the chunk size."""
    x = torch.rand(5, 12, 10, dtype=torch.float64)
    module = load_pretrained().module
    whole = CNNDenoiser(module, batch_size=64)(x, 0.05)
    np.testing.assert_allclose(CNNDenoiser(module, batch_size=2)(x, 0.05).numpy(),
                               whole.numpy(), atol=1e-12)
    assert whole.dtype == torch.float64
