"""MIMO detection: make_mimo, the model-based detectors, DetNetClassifier."""

import itertools
import pickle
import warnings

import numpy as np
import pandas
import pytest
import scipy.sparse
import sklearn
import torch
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import check_param_validation

from sklearn_mbdl import DetNetClassifier, MIMODetector
from sklearn_mbdl.datasets import make_mimo, mimo_constellation
from sklearn_mbdl.detnet import DetNet
from sklearn_mbdl.detnet._problem import _statistics
from sklearn_mbdl.metrics import bit_error_rate, symbol_error_rate
from sklearn_mbdl.prox import nearest_point, soft_constellation
from sklearn_mbdl.solvers import (
    detection_step,
    matched_filter,
    mmse,
    mmse_sic,
    projected_gradient,
    sphere_decoder,
    zero_forcing,
)

BPSK = torch.tensor([-1.0, 1.0], dtype=torch.float64)


def _brute_force_ml(X, H, points):
    K = H.shape[-1]
    candidates = np.array(list(itertools.product(points, repeat=K)))
    out = np.empty((len(X), K))
    for i in range(len(X)):
        Hi = H if H.ndim == 2 else H[i]
        out[i] = candidates[np.argmin(((X[i] - candidates @ Hi.T) ** 2).sum(1))]
    return out


# ----- make_mimo ---------------------------------------------------------------
def test_make_mimo_shapes_and_snr_convention():
    X, y, H = make_mimo(4000, n_tx=4, n_rx=8, snr_db=10.0, random_state=0)
    assert X.shape == (4000, 8) and y.shape == (4000, 4) and H.shape == (4000, 8, 4)
    assert set(np.unique(y)) == {-1, 1}
    noise = X - np.einsum("nrk,nk->nr", H, y)
    # sigma^2 = ||H||_F^2 / (n_tx SNR), per sample
    expected = (H ** 2).sum((1, 2)) / (4 * 10.0)
    ratio = (noise ** 2).mean(1) / expected
    assert abs(ratio.mean() - 1.0) < 0.03


@pytest.mark.parametrize("modulation, points", [
    ("qpsk", [-1, 1]), ("16qam", [-3, -1, 1, 3])])
def test_make_mimo_complex_real_decomposition(modulation, points):
    X, y, H = make_mimo(50, n_tx=3, n_rx=5, modulation=modulation, channel="fixed",
                        snr_db=(5, 15), random_state=0)
    assert X.shape == (50, 10) and y.shape == (50, 6) and H.shape == (10, 6)
    assert set(np.unique(y)) <= set(points)
    # [[Re, -Im], [Im, Re]]
    np.testing.assert_allclose(H[:5, :3], H[5:, 3:])
    np.testing.assert_allclose(H[:5, 3:], -H[5:, :3])


def test_make_mimo_given_channel_and_reproducible():
    H = np.random.RandomState(0).randn(6, 3)
    X1, y1, H1 = make_mimo(20, 3, 6, channel=H, random_state=1)
    X2, y2, _ = make_mimo(20, 3, 6, channel=H, random_state=1)
    np.testing.assert_array_equal(H1, H)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("kwargs, match", [
    (dict(snr_db=np.nan), "snr_db must be finite"),
    (dict(snr_db=np.inf), "snr_db must be finite"),
    (dict(snr_db=(12, 8)), "low <= high"),
    (dict(modulation="8psk"), "modulation"),
    (dict(channel=np.ones((5, 5))), "channel has shape"),
    (dict(channel="rayleigh"), "channel must be"),
    (dict(n_samples=0), "n_samples"),
])
def test_make_mimo_bad_input(kwargs, match):
    args = dict(n_samples=10, n_tx=3, n_rx=6)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_mimo(**args)


# ----- projections and detectors ------------------------------------------------
def test_soft_constellation_is_detnet_soft_sign_and_box_projection():
    x = torch.linspace(-3, 3, 61, dtype=torch.float64)
    t = 0.4
    soft_sign = -1 + torch.relu(x + t) / t - torch.relu(x - t) / t
    torch.testing.assert_close(soft_constellation(x, BPSK, t), soft_sign)
    pam = torch.tensor([-3.0, -1.0, 1.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(soft_constellation(x, pam, 1.0), x.clamp(-3, 3))
    x = x + 0.013  # off the midpoints, where the hard decision is a tie
    hard = soft_constellation(x, pam, 1e-6)
    torch.testing.assert_close(hard, pam[nearest_point(x, pam)])


def test_detection_step_is_a_gradient_step():
    rng = np.random.RandomState(0)
    H = torch.tensor(rng.randn(7, 3))
    x = torch.tensor(rng.randn(2, 7))
    s = torch.tensor(rng.randn(2, 3), requires_grad=True)
    loss = 0.5 * ((x - s @ H.T) ** 2).sum()
    (grad,) = torch.autograd.grad(loss, s)
    Htx, HtH = matched_filter(x, H)
    torch.testing.assert_close(detection_step(s, Htx, HtH, 0.1, 0.1), s - 0.1 * grad)


def test_zero_forcing_exact_without_noise():
    X, y, H = make_mimo(30, 4, 8, snr_db=200.0, random_state=0)
    s = zero_forcing(torch.tensor(X), torch.tensor(H))
    np.testing.assert_allclose(s.numpy(), y, atol=1e-6)


@pytest.mark.parametrize("modulation", ["bpsk", "16qam"])
def test_sphere_decoder_is_exact_ml(modulation):
    points, _ = mimo_constellation(modulation)
    n_tx = 4 if modulation == "bpsk" else 2
    X, y, H = make_mimo(60, n_tx, 6, snr_db=2.0, modulation=modulation, random_state=3)
    S, nodes = sphere_decoder(X, H, points, return_nodes=True)
    np.testing.assert_array_equal(S, _brute_force_ml(X, H, points))
    assert nodes.min() >= y.shape[1]


def test_detector_ordering_small_problem():
    X, y, H = make_mimo(3000, 8, 16, snr_db=10.0, random_state=0)
    Xt, Ht = torch.tensor(X), torch.tensor(H)
    nv = torch.tensor((H ** 2).sum((1, 2)) / (8 * 10.0))

    def ser(s):
        return symbol_error_rate(y, BPSK[nearest_point(s, BPSK)].numpy())

    zf, lin = ser(zero_forcing(Xt, Ht)), ser(mmse(Xt, Ht, nv, BPSK))
    sic = symbol_error_rate(y, mmse_sic(Xt, Ht, nv, BPSK).numpy())
    box = ser(projected_gradient(Xt, Ht, BPSK, n_iter=50))
    annealed = ser(projected_gradient(Xt, Ht, BPSK, step=1.9, softness=(2.0, 0.3)))
    ml = symbol_error_rate(y, sphere_decoder(X, H, BPSK.numpy()))
    assert ml < sic < lin < zf
    assert ml < annealed < box


# ----- DetNet ---------------------------------------------------------------------
def test_untrained_detnet_is_annealed_projected_gradient():
    rng = np.random.RandomState(0)
    H = rng.randn(12, 6)
    X, _, _ = make_mimo(50, 6, 12, channel=H, snr_db=8.0, random_state=1)
    Htx, gram, _ = _statistics(torch.tensor(X), torch.tensor(H), 0.0, 1.0)
    step = 1.9 / float(torch.linalg.matrix_norm(gram, ord=2))
    torch.manual_seed(0)
    net = DetNet(6, np.array([-1.0, 1.0]), 10, 48, 0.9, step, latent_size=12,
                 softness=(2.0, 0.3), gram=gram.numpy()).double()
    with torch.no_grad():
        out = net(Htx)[:, -1]
    reference = projected_gradient(torch.tensor(X), torch.tensor(H), BPSK, n_iter=10,
                                   step=1.9, softness=(2.0, 0.3), mixing=0.9)
    # (up to the float32 storage of the ramp widths)
    torch.testing.assert_close(out, reference, atol=1e-6, rtol=1e-6)


def _correlated_channel(n_rx, n_tx, rho, seed):
    from scipy.linalg import sqrtm, toeplitz

    rng = np.random.RandomState(seed)
    left = np.real(sqrtm(toeplitz(rho ** np.arange(n_rx))))
    right = np.real(sqrtm(toeplitz(rho ** np.arange(n_tx))))
    return left @ rng.randn(n_rx, n_tx) @ right


def test_detnet_learns_beyond_its_model_based_start_on_a_hard_channel():
    # a fixed, strongly correlated channel: the annealed projected gradient
    # DetNet starts from is poor there, and training must do the work
    H = _correlated_channel(16, 8, 0.7, 0)
    X, y, _ = make_mimo(3000, 8, 16, snr_db=(8, 14), channel=H, random_state=0)
    X_test, y_test, _ = make_mimo(3000, 8, 16, snr_db=12, channel=H, random_state=1)
    det = DetNetClassifier(H, n_layers=12, max_epochs=4, lr=1e-3, random_state=0)
    det.fit(X, y)
    start = projected_gradient(torch.tensor(X_test), torch.tensor(H), BPSK, n_iter=12,
                               step=1.9, softness=(2.0, 0.3), mixing=0.9)
    start_errors = symbol_error_rate(y_test, np.sign(start.numpy()))
    assert 1 - det.score(X_test, y_test) < 0.75 * start_errors


def test_detnet_keeps_its_start_when_training_fails():
    X, y, H = make_mimo(1500, 6, 12, snr_db=(8, 12), random_state=0)
    # a learning rate that wrecks the network
    det = DetNetClassifier(n_layers=6, max_epochs=2, lr=5.0, random_state=0)
    with pytest.warns(UserWarning, match="did not improve"):
        det.fit(X, y, channels=H)
    X_test, _, H_test = make_mimo(200, 6, 12, snr_db=10, random_state=1)
    start = projected_gradient(torch.tensor(X_test), torch.tensor(H_test), BPSK,
                               n_iter=6, step=1.9, softness=(2.0, 0.3), mixing=0.9)
    # the start uses the median step of the training channels, close to
    # each channel's own: the decisions agree on nearly every symbol
    agree = np.mean(det.predict(X_test, channels=H_test) == np.sign(start.numpy()))
    assert agree > 0.99


@pytest.fixture(scope="module")
def trained():
    """DetNet on 8 x 16 BPSK with per-sample channels (small, seeded)."""
    X, y, H = make_mimo(3000, 8, 16, snr_db=(7, 14), random_state=0)
    det = DetNetClassifier(n_layers=12, max_epochs=4, lr=1e-3, random_state=0)
    return det.fit(X, y, channels=H)


def test_detnet_beats_mmse_and_approaches_ml(trained):
    X, y, H = make_mimo(3000, 8, 16, snr_db=10.0, random_state=5)
    nv = (H ** 2).sum((1, 2)) / (8 * 10.0)
    lin = MIMODetector("mmse", noise_var=float(nv.mean())).fit(X, y, channels=H)
    ml = symbol_error_rate(y, sphere_decoder(X, H, [-1.0, 1.0]))
    ours = 1 - trained.score(X, y, channels=H)
    assert ours < 1 - lin.score(X, y, channels=H)
    assert ours < 2.5 * ml


def test_detnet_predict_proba(trained):
    X, y, H = make_mimo(200, 8, 16, snr_db=8.0, random_state=6)
    proba = trained.predict_proba(X, channels=H)
    assert isinstance(proba, list) and len(proba) == 8
    pred = trained.predict(X, channels=H)
    for k, p in enumerate(proba):
        assert p.shape == (200, 2)
        np.testing.assert_allclose(p.sum(1), 1.0)
        np.testing.assert_array_equal(trained.classes_[p.argmax(1)], pred[:, k])
    # calibrated on held-out data: confident where right more than where wrong
    confidence = np.stack([p.max(1) for p in proba], 1)
    assert confidence[pred == y].mean() > confidence[pred != y].mean()
    # the fitted width beats a fixed one in log-loss on unseen transmissions
    truth = (y > 0).astype(int)

    def log_loss(width):
        soft = trained._run(trained._statistic_rows(X, H))
        logp = trained._log_proba(soft.astype(np.float64), width)
        return -np.take_along_axis(logp, truth[..., None], -1).mean()

    assert log_loss(trained.temperature_) < min(log_loss(1.0), log_loss(0.05))


def test_detnet_batch_independent_and_dtype(trained):
    X, _, H = make_mimo(20, 8, 16, random_state=7)
    soft = trained.predict_soft(X, channels=H)
    one_by_one = np.concatenate([trained.predict_soft(X[i:i + 1], channels=H[i:i + 1])
                                 for i in range(20)])
    np.testing.assert_allclose(soft, one_by_one, atol=1e-7)
    assert soft.dtype == np.float64
    assert trained.predict_soft(X.astype(np.float32),
                                channels=H.astype(np.float32)).dtype == np.float32


def test_detnet_fixed_channel_and_least_squares_channel():
    H = np.random.RandomState(0).randn(12, 4)
    X, y, _ = make_mimo(1500, 4, 12, channel=H, snr_db=(8, 12), random_state=0)
    X_test, y_test, _ = make_mimo(1000, 4, 12, channel=H, snr_db=10, random_state=1)
    given = DetNetClassifier(H, n_layers=6, max_epochs=2, random_state=0).fit(X, y)
    estimated = DetNetClassifier(n_layers=6, max_epochs=2, random_state=0).fit(X, y)
    # least squares recovers the channel from the training pairs
    assert np.linalg.norm(estimated.channel_ - H) < 0.05 * np.linalg.norm(H)
    ml = symbol_error_rate(y_test, sphere_decoder(X_test, H, [-1.0, 1.0]))
    for det in (given, estimated):
        assert 1 - det.score(X_test, y_test) < 2 * ml + 2e-3


def test_detnet_list_stage_moves_toward_ml_and_reaches_it():
    # Chase decoding of DetNet's least reliable users with the likelihood:
    # on a hard correlated channel it removes errors the network leaves,
    # and with every user in the list (BPSK) it is exact ML by brute force
    H = _correlated_channel(12, 6, 0.7, 1)
    X, y, _ = make_mimo(2000, 6, 12, snr_db=(6, 12), channel=H, random_state=0)
    X_test, y_test, _ = make_mimo(2000, 6, 12, snr_db=9, channel=H, random_state=1)
    det = DetNetClassifier(H, n_layers=6, max_epochs=1, random_state=0).fit(X, y)
    ml = _brute_force_ml(X_test, H, [-1.0, 1.0])
    errors = {}
    for L in (0, 3, 6):
        pred = det.set_params(list_users=L).predict(X_test)
        errors[L] = symbol_error_rate(y_test, pred)
    assert errors[0] > 1.2 * errors[3] > 1.2 * symbol_error_rate(y_test, ml)
    np.testing.assert_array_equal(pred, ml)
    # the soft output stays the network's
    soft = det.predict_soft(X_test)
    np.testing.assert_array_equal(det.set_params(list_users=0).predict_soft(X_test), soft)
    # per-sample channels, and a larger alphabet (two nearest points tried)
    Xs, ys, Hs = make_mimo(1500, 3, 6, snr_db=(4, 10), modulation="16qam",
                           random_state=2)
    det = DetNetClassifier(n_layers=4, max_epochs=1, random_state=0)
    det.fit(Xs, ys, channels=Hs)
    Xt, yt, Ht = make_mimo(1500, 3, 6, snr_db=6, modulation="16qam", random_state=3)
    plain = symbol_error_rate(yt, det.predict(Xt, channels=Ht))
    listed = det.set_params(list_users=6).predict(Xt, channels=Ht)
    assert symbol_error_rate(yt, listed) < plain
    # never farther from x than DetNet's own decision
    det.set_params(list_users=0)
    points = det.points_

    def distance(s):
        return ((Xt - np.einsum("nrk,nk->nr", Ht, s)) ** 2).sum(1)

    assert np.all(distance(listed) <= distance(det.predict(Xt, channels=Ht)) + 1e-9)
    assert set(np.unique(listed)) <= set(points)


def test_detnet_string_labels_and_single_user():
    rng = np.random.RandomState(0)
    h = rng.randn(6, 1)
    s = rng.choice([-1.0, 1.0], size=(400, 1))
    X = s @ h.T + 0.2 * rng.randn(400, 6)
    y = np.where(s[:, 0] > 0, "up", "down")
    det = DetNetClassifier(n_layers=3, max_epochs=2, random_state=0).fit(X, y)
    assert list(det.classes_) == ["down", "up"]
    assert det.predict(X).shape == (400,)
    assert det.score(X, y) > 0.95
    assert det.predict_proba(X).shape == (400, 2)


def test_detnet_metadata_routing_in_pipeline():
    X, y, H = make_mimo(600, 4, 8, snr_db=(8, 12), random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        det = DetNetClassifier(n_layers=4, max_epochs=2, random_state=0)
        det.set_fit_request(channels=True).set_predict_request(channels=True)
        det.set_score_request(channels=True)
        pipe = make_pipeline(FunctionTransformer(), det).fit(X, y, channels=H)
        assert pipe.predict(X, channels=H).shape == y.shape
        assert pipe.score(X, y, channels=H) > 0.9


def test_detnet_bad_input(trained):
    X, y, H = make_mimo(50, 3, 6, random_state=0)
    det = DetNetClassifier(n_layers=2, max_epochs=1)
    with pytest.raises(ValueError, match="finite alphabet"):
        det.fit(X, y + 0.1 * np.random.RandomState(0).randn(*y.shape), channels=H)
    with pytest.raises(ValueError, match="channels has shape"):
        det.fit(X, y, channels=H[:, :, :2])
    with pytest.raises(ValueError, match="channel has shape"):
        DetNetClassifier(np.ones((5, 3))).fit(X, y)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        det.fit(X_nan, y, channels=H)
    with pytest.raises(ValueError, match="y to be passed"):
        det.fit(X, None)
    X8, _, H8 = make_mimo(5, 8, 16, random_state=0)
    with pytest.raises(ValueError, match="per-sample channels"):
        trained.predict(X8)
    for bad in (-1, 1.5, 17):
        with pytest.raises(ValueError, match="list_users"):
            DetNetClassifier(n_layers=2, max_epochs=1, list_users=bad).fit(
                X, y, channels=H)
    try:
        with pytest.raises(ValueError, match="list_users=9 exceeds the 8 users"):
            trained.set_params(list_users=9).predict(X8, channels=H8)
        with pytest.raises(ValueError, match="list_users"):  # changed after fit
            trained.set_params(list_users=-2).predict(X8, channels=H8)
    finally:
        trained.set_params(list_users=0)


def test_detnet_pickle_holds_no_training_data():
    sizes = []
    for n in (400, 1600):
        X, y, H = make_mimo(n, 3, 6, snr_db=10, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # (keep-better)
            det = DetNetClassifier(n_layers=2, max_epochs=1, random_state=0)
            sizes.append(len(pickle.dumps(det.fit(X, y, channels=H))))
    assert sizes[1] < 1.2 * sizes[0]


@pytest.mark.parametrize("make", [
    lambda: DetNetClassifier(n_layers=2, max_epochs=1, random_state=0),
    MIMODetector,
], ids=["DetNetClassifier", "MIMODetector"])
def test_detectors_bad_and_odd_input(make):
    X, y, H = make_mimo(200, 3, 6, snr_db=10, random_state=0)
    with pytest.raises(NotFittedError):
        make().predict(X, channels=H)
    with pytest.raises(NotFittedError):
        make().predict_proba(X, channels=H)
    with pytest.raises(TypeError, match="Sparse data"):
        make().fit(scipy.sparse.csr_matrix(X), y, channels=H)
    with pytest.raises(ValueError, match="Complex"):
        make().fit(X + 1j, y, channels=H)
    with pytest.raises(ValueError, match="0 sample"):
        make().fit(X[:0], y[:0], channels=H[:0])
    with pytest.raises(ValueError, match="y contains NaN"):
        make().fit(X, np.where(y > 0, 1.0, np.nan), channels=H)
    with warnings.catch_warnings():
        # a DataFrame works without torch's non-writable-array warning;
        # lists and integers work
        warnings.filterwarnings("error", message=".*writable.*")
        warnings.filterwarnings("ignore", message=".*did not improve.*")
        det = make().fit(pandas.DataFrame(X), y, channels=H)
        assert det.predict(pandas.DataFrame(X), channels=H).shape == y.shape
        det = make().fit(X.tolist(), y.tolist(), channels=H.tolist())
        assert det.predict(np.round(X).astype(int), channels=H).shape == y.shape
    with pytest.raises(ValueError, match="channels has shape"):
        det.predict(X, channels=H[:-1])
    with pytest.raises(ValueError, match="6 features"):
        det.predict(X[:, :-1], channels=H[:, :-1])


# ----- MIMODetector and metrics ---------------------------------------------------
def test_detectors_param_validation():
    for est in (MIMODetector(), DetNetClassifier(n_layers=2, max_epochs=1)):
        check_param_validation(type(est).__name__, est)


def test_mimo_detector_parameters_checked_after_fit():
    X, y, H = make_mimo(100, 3, 6, random_state=0)
    det = MIMODetector("zf").fit(X, y, channels=H)
    # the method is read by predict: it may change after fit, and is checked
    assert det.set_params(method="ml").predict(X, channels=H).shape == y.shape
    for method in (det.predict, det.predict_proba):
        with pytest.raises(ValueError, match="'method' parameter"):
            det.set_params(method="bogus")
            method(X, channels=H)
    with pytest.raises(ValueError, match="'noise_var' parameter"):
        MIMODetector(noise_var=-1.0).fit(X, y, channels=H)


@pytest.mark.parametrize("method", ["zf", "mmse", "mmse_sic", "ml"])
def test_mimo_detector_predict_proba(method):
    X, y, H = make_mimo(300, 6, 12, snr_db=8.0, random_state=0)
    X_test, y_test, H_test = make_mimo(2000, 6, 12, snr_db=8.0, random_state=1)
    det = MIMODetector(method).fit(X, y, channels=H)
    proba = det.predict_proba(X_test, channels=H_test)
    # scikit-learn's multi-output convention: one array per user
    assert isinstance(proba, list) and len(proba) == 6
    P = np.stack(proba, axis=1)
    assert P.shape == (2000, 6, 2)
    np.testing.assert_allclose(P.sum(-1), 1.0)
    pred = det.predict(X_test, channels=H_test)
    np.testing.assert_array_equal(det.classes_[P.argmax(-1)], pred)
    # calibrated: the mean confidence is the accuracy, and the log-loss is
    # far below the uniform guess's
    assert abs(P.max(-1).mean() - np.mean(pred == y_test)) < 0.02
    truth = np.searchsorted(det.classes_, y_test)[..., None]
    log_loss = -np.mean(np.log(np.take_along_axis(P, truth, -1)))
    assert log_loss < 0.2 * np.log(2)


def test_mimo_detector_zf_proba_is_the_exact_posterior():
    # ZF with BPSK: s_hat = s + n, n ~ N(0, noise_var [(H^T H)^-1]_kk), so
    # P(s = 1 | s_hat) is the logistic of 2 s_hat / variance
    H = np.random.RandomState(0).randn(8, 3)
    X, y, _ = make_mimo(200, 3, 8, snr_db=6.0, channel=H, random_state=0)
    det = MIMODetector("zf", H, noise_var=0.3).fit(X, y)
    s_hat = X @ H @ np.linalg.inv(H.T @ H)
    variance = 0.3 * np.diag(np.linalg.inv(H.T @ H))
    expected = 1 / (1 + np.exp(-2 * s_hat / variance))
    proba = np.stack(det.predict_proba(X), axis=1)[..., 1]
    np.testing.assert_allclose(proba, expected, rtol=1e-8, atol=1e-12)


def test_detectors_share_the_predict_proba_convention():
    X, y, H = make_mimo(300, 3, 6, snr_db=10, random_state=0)
    # one user: the others' signals removed
    X1 = X - np.einsum("nrk,nk->nr", H[:, :, 1:], y[:, 1:])
    y1, H1 = y[:, 0], H[:, :, :1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        estimators = [MIMODetector(), DetNetClassifier(n_layers=2, max_epochs=1)]
        for det in estimators:
            many = det.fit(X, y, channels=H).predict_proba(X, channels=H)
            assert isinstance(many, list) and [p.shape for p in many] == [(300, 2)] * 3
            one = det.fit(X1, y1, channels=H1).predict_proba(X1, channels=H1)
            assert isinstance(one, np.ndarray) and one.shape == (300, 2)


def test_mimo_detector_methods():
    X, y, H = make_mimo(800, 6, 12, snr_db=8.0, random_state=0)
    errors = {m: 1 - MIMODetector(m).fit(X, y, channels=H).score(X, y, channels=H)
              for m in ("zf", "mmse", "mmse_sic", "ml")}
    assert errors["ml"] <= errors["mmse_sic"] <= errors["mmse"] <= errors["zf"]
    # the noise level is measured on the training data
    det = MIMODetector("mmse").fit(X, y, channels=H)
    expected = np.mean((H ** 2).sum((1, 2)) / (6 * 10 ** 0.8))
    assert abs(det.noise_var_ / expected - 1) < 0.1


def test_scorers_in_grid_search():
    from sklearn.model_selection import GridSearchCV

    from sklearn_mbdl.metrics import ber_scorer, ser_scorer

    H = np.random.RandomState(0).randn(10, 4)
    X, y, _ = make_mimo(400, 4, 10, channel=H, snr_db=4.0, random_state=0)
    det = MIMODetector("mmse", H).fit(X, y)
    assert ser_scorer(det, X, y) == -symbol_error_rate(y, det.predict(X))
    assert ber_scorer(det, X, y) == -bit_error_rate(y, det.predict(X))
    search = GridSearchCV(MIMODetector(channel=H), {"method": ["zf", "ml"]},
                          scoring=ser_scorer, cv=2).fit(X, y)
    assert search.best_params_ == {"method": "ml"}


def test_error_rates():
    assert symbol_error_rate([[1, -1], [1, 1]], [[1, 1], [1, 1]]) == 0.25
    # Gray code: neighbours differ by one bit, -3 and 3 by one, -3 and 1 by two
    assert bit_error_rate([[-3]], [[-1]], alphabet=[-3, -1, 1, 3]) == 0.5
    assert bit_error_rate([[-3]], [[1]], alphabet=[-3, -1, 1, 3]) == 1.0
    assert bit_error_rate([[-3]], [[3]], alphabet=[-3, -1, 1, 3]) == 0.5
    with pytest.raises(ValueError, match="shapes differ"):
        symbol_error_rate([1, 2], [1])
    with pytest.raises(ValueError, match="not in the alphabet"):
        bit_error_rate([5], [1], alphabet=[-1, 1])
