"""One bad-input suite for every public estimator.

Each estimator is described once (a tiny, fast configuration, valid
training data, valid inference data and the method that does inference);
every case below runs on all of them. Bad input must raise ``ValueError``
or ``TypeError`` (``NotFittedError`` before ``fit``) with a message that
names the input or the parameter, before any torch or NumPy internals
fail; good input in another container (DataFrame, lists, other dtypes)
must work, without warnings, and give the same results.
"""

import copy
import pickle
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import check_param_validation

from sklearn_mbdl import (
    BurstSuperResolver,
    DCEAEstimator,
    DetNetClassifier,
    ExoplanetSeparator,
    LISTATransformer,
    MIMODetector,
    PnPRestorer,
    SparseCoder,
)

H, W = 8, 8              # image size of the image estimators
N_FEATURES, N_ATOMS = 4, 6
N_RX, N_TX = 4, 2


# ----- the estimators, each described once --------------------------------------
def _dictionary():
    D = np.random.RandomState(0).standard_normal((N_ATOMS, N_FEATURES))
    return D / np.linalg.norm(D, axis=1, keepdims=True)


def _channel():
    return np.random.RandomState(1).standard_normal((N_RX, N_TX))


def _signals(n, seed):
    return np.random.RandomState(seed).standard_normal((n, N_FEATURES))


def _transmissions(n, seed, noise=0.3):
    rng = np.random.RandomState(seed)
    y = rng.choice([-1, 1], size=(n, N_TX))
    X = y @ _channel().T + noise * rng.standard_normal((n, N_RX))
    return X, y


def _images(n, seed):
    """Smooth images in [0, 1]."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[:H, :W] / max(H, W)
    a, b, c = rng.uniform(0.2, 0.8, size=(3, n, 1, 1))
    return np.clip(0.5 + 0.3 * np.sin(4 * a * xx + 3 * b * yy + 6 * c), 0, 1)


def _counts(n, seed):
    return np.random.RandomState(seed + 7).poisson(4 * _images(n, seed)).astype(float)


CUBE_SIDE = 15


def _cube(n, seed):
    """An ADI sequence of n frames: a static pattern plus noise."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[:CUBE_SIDE, :CUBE_SIDE] - (CUBE_SIDE - 1) / 2
    star = np.exp(-(xx ** 2 + yy ** 2) / 8.0)
    return star + 0.05 * rng.standard_normal((n, CUBE_SIDE, CUBE_SIDE))


def _angles(n):
    return np.linspace(0.0, 90.0, n)


def _bursts(n, seed):
    """Bursts of 2 frames of (H/2, W/2) pixels: half-resolution copies."""
    clean = _images(n, seed)
    frame = clean.reshape(n, H // 2, 2, W // 2, 2).mean(axis=(2, 4))
    rng = np.random.RandomState(seed + 3)
    return np.clip(frame[:, None] + 0.01 * rng.standard_normal((n, 2, H // 2, W // 2)),
                   0, 1)


@dataclass
class Spec:
    """How to build, train and query one estimator on tiny data.

    ``fit_data(n, seed)`` gives ``(X, y, fit_kwargs)``;
    ``predict_data(n, seed)`` gives ``(X, kwargs)`` for ``method``.
    ``image``: the estimator takes ``(n, h, w)`` stacks (or rows with
    ``image_shape``). ``min_fit``: the fewest samples ``fit`` accepts.
    """

    make: Callable
    fit_data: Callable
    predict_data: Callable
    method: str = "transform"
    image: bool = False
    classifier: bool = False
    min_fit: int = 1
    # unknown string options and out-of-range numbers: (param, value)
    bad_params: list = field(default_factory=list)
    # set after fit, then method: (param, value)
    bad_after_fit: list = field(default_factory=list)
    # every method that needs a fitted estimator: name -> args builder
    fitted_methods: dict = field(default_factory=dict)


SPECS = {
    "SparseCoder": Spec(
        make=lambda: SparseCoder(_dictionary(), alpha=0.1),
        fit_data=lambda n, s: (_signals(n, s), None, {}),
        predict_data=lambda n, s: (_signals(n, s + 100), {}),
        bad_params=[("algorithm", "bogus"), ("positive", "yes"), ("alpha", -1.0),
                    ("max_iter", 0), ("tol", -1.0), ("n_components", 0),
                    ("device", "bogus")],
        bad_after_fit=[("algorithm", "bogus"), ("alpha", -1.0), ("max_iter", 0),
                       ("positive", "yes")],
        fitted_methods={"transform": lambda: (_signals(3, 0),),
                        "inverse_transform": lambda: (np.ones((3, N_ATOMS)),)},
    ),
    "LISTATransformer": Spec(
        make=lambda: LISTATransformer(_dictionary(), n_layers=4, alpha=0.1,
                                      max_epochs=1, random_state=0),
        fit_data=lambda n, s: (_signals(n, s), None, {}),
        predict_data=lambda n, s: (_signals(n, s + 100), {}),
        bad_params=[("n_layers", 0), ("n_components", 0), ("tied", "yes"),
                    ("positive", "yes"), ("lr", 0.0), ("validation_fraction", 2.0),
                    ("augmentation", -1.0), ("max_epochs", -1), ("device", "bogus")],
        bad_after_fit=[("n_layers", 6), ("n_layers", 2), ("alpha", -1.0),
                       ("positive", "yes")],
        fitted_methods={"transform": lambda: (_signals(3, 0),),
                        "inverse_transform": lambda: (np.ones((3, N_ATOMS)),)},
    ),
    "DetNetClassifier": Spec(
        make=lambda: DetNetClassifier(_channel(), n_layers=2, hidden_size=4,
                                      max_epochs=1, augmentation=0.0,
                                      random_state=0),
        fit_data=lambda n, s: (*_transmissions(n, s), {}),
        predict_data=lambda n, s: (_transmissions(n, s + 100)[0], {}),
        method="predict",
        classifier=True,
        bad_params=[("n_layers", 0), ("hidden_size", 0), ("residual", "yes"),
                    ("lr", -1.0), ("augmentation", -1.0), ("list_users", -1),
                    ("validation_fraction", 2.0), ("max_epochs", 0),
                    ("device", "bogus")],
        bad_after_fit=[("list_users", 99), ("n_layers", 7), ("device", "bogus")],
        fitted_methods={"predict": lambda: (_transmissions(3, 0)[0],),
                        "predict_proba": lambda: (_transmissions(3, 0)[0],),
                        "predict_soft": lambda: (_transmissions(3, 0)[0],),
                        "score": lambda: _transmissions(3, 0)},
    ),
    "MIMODetector": Spec(
        make=lambda: MIMODetector("zf"),
        fit_data=lambda n, s: (*_transmissions(n, s), {}),
        # noisy enough that the detectors disagree on some symbols
        predict_data=lambda n, s: (_transmissions(200, s + 100, noise=1.5)[0], {}),
        method="predict",
        classifier=True,
        bad_params=[("method", "bogus"), ("noise_var", -1.0), ("verbose", "yes")],
        bad_after_fit=[("method", "bogus"), ("noise_var", -1.0)],
        fitted_methods={"predict": lambda: (_transmissions(3, 0)[0],),
                        "score": lambda: _transmissions(3, 0)},
    ),
    "DCEAEstimator": Spec(
        make=lambda: DCEAEstimator(n_kernels=2, kernel_size=3, stride=2, n_layers=2,
                                   alpha=0.1, max_epochs=1, batch_size=8,
                                   random_state=0),
        fit_data=lambda n, s: (_counts(n, s), None, {}),
        predict_data=lambda n, s: (_counts(n, s + 100), {}),
        method="predict",
        image=True,
        bad_params=[("n_kernels", 0), ("kernel_size", 0), ("stride", 0),
                    ("n_layers", 0), ("tied", "yes"), ("distribution", "bogus"),
                    ("alpha", "bogus"), ("alpha", -1.0), ("peak", -1.0),
                    ("image_shape", (0, 64)), ("image_shape", "bogus"),
                    ("max_epochs", 0), ("lr", 0.0), ("device", "bogus")],
        bad_after_fit=[("distribution", "bogus"), ("n_kernels", 5), ("stride", 3),
                       ("image_shape", (4, 16))],
        fitted_methods={"predict": lambda: (_counts(3, 0),),
                        "transform": lambda: (_counts(3, 0),),
                        "inverse_transform": lambda: (np.ones((3, 100)),),
                        "score": lambda: (_counts(3, 0),)},
    ),
    "PnPRestorer": Spec(
        make=lambda: PnPRestorer(n_iter=2, max_epochs=1, batch_size=4,
                                 random_state=0),
        fit_data=lambda n, s: (_images(n, s), None, {}),
        predict_data=lambda n, s: (_images(n, s + 100), {}),
        image=True,
        bad_params=[("denoiser", "bogus"), ("algorithm", "bogus"),
                    ("self_ensemble", "yes"), ("pretrained", "yes"), ("n_iter", 0),
                    ("rho", 0.0), ("noise_level", -1.0), ("image_shape", (0, 64)),
                    ("image_shape", "bogus"), ("validation_fraction", 2.0),
                    ("operator", "bogus"), ("max_epochs", 0), ("device", "bogus")],
        bad_after_fit=[("algorithm", "bogus"), ("n_iter", 0), ("denoiser", "bogus"),
                       ("noise_level", -1.0), ("image_shape", (4, 16))],
        fitted_methods={"transform": lambda: (_images(3, 0),),
                        "simulate": lambda: (_images(3, 0),),
                        "score": lambda: (_images(3, 0),)},
    ),
    "BurstSuperResolver": Spec(
        make=lambda: BurstSuperResolver(scale=2, n_frames=2, n_iter=1, prior="tv",
                                        max_epochs=1, batch_size=4, random_state=0),
        fit_data=lambda n, s: (_images(n, s), None, {}),
        predict_data=lambda n, s: (_bursts(n, s + 100), {}),
        image=True,
        bad_params=[("scale", 0), ("n_frames", 0), ("motion", "bogus"),
                    ("prior", "bogus"), ("max_shift", -1.0), ("blur_sigma", -1.0),
                    ("noise_level", "bogus"), ("shot_noise", -1.0), ("n_iter", 0),
                    ("image_shape", (0, 64)), ("image_shape", "bogus"),
                    ("max_epochs", 0), ("lr", 0.0), ("device", "bogus")],
        bad_after_fit=[("motion", "bogus"), ("prior", "bogus"), ("scale", 4),
                       ("n_frames", 0), ("noise_level", -1.0),
                       ("image_shape", (4, 16))],
        fitted_methods={"transform": lambda: (_bursts(3, 0),),
                        "simulate": lambda: (_images(3, 0),),
                        "score": lambda: (_images(3, 0),)},
    ),
    "ExoplanetSeparator": Spec(
        make=lambda: ExoplanetSeparator(fwhm=2.0, patch_size=3, n_cleaning=1,
                                        random_state=0),
        fit_data=lambda n, s: (_cube(n, s), None, {"angles": _angles(n)}),
        predict_data=lambda n, s: (_cube(n, s + 100), {"angles": _angles(n)}),
        image=True,
        min_fit=4,
        bad_params=[("fwhm", 0.0), ("patch_size", 0), ("patch_size", 4),
                    ("n_components", -1), ("n_layers", 0), ("n_cleaning", -1),
                    ("static_speckles", "bogus"), ("learn_dictionary", "yes"),
                    ("n_injections", 0), ("max_snr", 0.0), ("max_epochs", -1),
                    ("image_shape", (0, 64)), ("image_shape", "bogus"),
                    ("psf", "bogus"), ("device", "bogus")],
        bad_after_fit=[("static_speckles", "bogus"), ("fwhm", -1.0),
                       ("patch_size", 4), ("image_shape", (5, 45))],
        fitted_methods={
            "transform": lambda: (_cube(6, 0), _angles(6)),
            "flux_map": lambda: (_cube(6, 0), _angles(6)),
            "detection_map": lambda: (_cube(6, 0), _angles(6)),
            "photometry": lambda: (_cube(6, 0), [[7.0, 10.0]], _angles(6)),
            "find_companions": lambda: (_cube(6, 0), _angles(6))},
    ),
}
NAMES = list(SPECS)


def test_every_public_estimator_is_in_the_suite():
    import inspect

    import sklearn_mbdl
    from sklearn.base import BaseEstimator

    public = {name for name in sklearn_mbdl.__all__
              if inspect.isclass(getattr(sklearn_mbdl, name))
              and issubclass(getattr(sklearn_mbdl, name), BaseEstimator)}
    assert public == set(SPECS)
N_FIT, N_PREDICT = 6, 3


@lru_cache(maxsize=None)
def _fitted(name):
    """A fitted estimator (shared: tests copy it before changing it)."""
    spec = SPECS[name]
    X, y, kw = spec.fit_data(N_FIT, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spec.make().fit(X, y, **kw)


def _fit(spec, X, y, kw, est=None):
    est = spec.make() if est is None else est
    return est.fit(X, y, **kw)


def _predict(spec, est, X, kw):
    return getattr(est, spec.method)(X, **kw)


def _rows(spec, est, X):
    """``X`` as 2-D rows; an image estimator is told the image shape."""
    X = np.asarray(X)
    if X.ndim == 3 and spec.image and est is not None:
        est.set_params(image_shape=X.shape[1:])
    return X.reshape(len(X), -1)


def _names_any(*words):
    return "|".join(words)


# ----- malformed arrays: fit and inference -------------------------------------
def _with_nan(X):
    X = np.array(X, dtype=float)
    X.flat[1] = np.nan
    return X


def _with_inf(X):
    X = np.array(X, dtype=float)
    X.flat[1] = np.inf
    return X


MALFORMED = {
    # id: (make the bad array from a good one, exception types, message pattern)
    "nan": (_with_nan, ValueError, "NaN"),
    "inf": (_with_inf, ValueError, "infinity"),
    "zero_samples": (lambda X: np.asarray(X)[:0], ValueError,
                     _names_any(r"0 sample", r"0 burst", "image_shape")),
    "complex": (lambda X: np.asarray(X) + 1j, ValueError, "[Cc]omplex"),
    "ndim_1": (lambda X: np.asarray(X).ravel(), ValueError,
               _names_any("1D", "2D", "dimension", "image_shape")),
    "ndim_plus_1": (lambda X: np.asarray(X)[..., None], ValueError,
                    _names_any(r"dim \d", "dimension", "image_shape", "ndim", r"\d-D")),
    "strings": (lambda X: np.full(np.shape(X), "abc"), ValueError,
                _names_any("string", "float", "dtype")),
}


def _angles_for(case, bad, kw):
    """``kw`` with angles that agree with the malformed ``bad`` (none for
    zero samples, one per value of a raveled array), so that only ``X`` is
    wrong."""
    if "angles" not in kw:
        return kw
    if case == "zero_samples":
        return {**kw, "angles": kw["angles"][:0]}
    if case == "ndim_1":
        return {**kw, "angles": _angles(len(bad))}
    return kw


@pytest.mark.parametrize("case", list(MALFORMED))
@pytest.mark.parametrize("name", NAMES)
def test_malformed_fit_input(name, case):
    spec = SPECS[name]
    make_bad, error, match = MALFORMED[case]
    X, y, kw = spec.fit_data(N_FIT, 0)
    bad = make_bad(X)
    if case == "zero_samples" and y is not None:
        y = y[:0]
    with pytest.raises(error, match=match):
        _fit(spec, bad, y, _angles_for(case, bad, kw))


@pytest.mark.parametrize("case", list(MALFORMED))
@pytest.mark.parametrize("name", NAMES)
def test_malformed_inference_input(name, case):
    spec = SPECS[name]
    make_bad, error, match = MALFORMED[case]
    est = _fitted(name)
    X, kw = spec.predict_data(N_PREDICT, 0)
    bad = make_bad(X)
    with pytest.raises(error, match=match):
        _predict(spec, est, bad, _angles_for(case, bad, kw))


@pytest.mark.parametrize("stage", ["fit", "inference"])
@pytest.mark.parametrize("name", NAMES)
def test_sparse_input_rejected(name, stage):
    spec = SPECS[name]
    if stage == "fit":
        X, y, kw = spec.fit_data(N_FIT, 0)
        est = spec.make()
        rows = sp.csr_matrix(_rows(spec, est, X))
        with pytest.raises((TypeError, ValueError), match="[Ss]parse"):
            est.fit(rows, y, **kw)
    else:
        X, kw = spec.predict_data(N_PREDICT, 0)
        rows = sp.csr_matrix(np.asarray(X).reshape(len(X), -1))
        with pytest.raises((TypeError, ValueError), match="[Ss]parse"):
            _predict(spec, _fitted(name), rows, kw)


@pytest.mark.parametrize("name", NAMES)
def test_zero_images(name):
    """A stack of no images, ``(0, h, w)``: at fit and at inference."""
    spec = SPECS[name]
    if not spec.image:
        pytest.skip("not an image estimator")
    X, y, kw = spec.fit_data(N_FIT, 0)
    empty = np.zeros((0, *np.shape(X)[1:]))
    kw0 = {k: v[:0] for k, v in kw.items()}
    zero = _names_any(r"0 sample", r"0 burst", "image_shape")
    with pytest.raises(ValueError, match=zero):
        _fit(spec, empty, None, kw0)
    Xp, kwp = spec.predict_data(N_PREDICT, 0)
    empty = np.zeros((0, *np.shape(Xp)[1:]))
    kwp0 = {k: v[:0] for k, v in kwp.items()}
    with pytest.raises(ValueError, match=zero):
        _predict(spec, _fitted(name), empty, kwp0)


@pytest.mark.parametrize("name", NAMES)
def test_wrong_feature_count_at_inference(name):
    """Rows with one feature more than ``fit`` saw."""
    spec = SPECS[name]
    X, kw = spec.predict_data(N_PREDICT, 0)
    rows = np.asarray(X).reshape(len(X), -1)
    rows = np.concatenate([rows, rows[:, :1]], axis=1)
    with pytest.raises(ValueError, match=_names_any("features", "image_shape")):
        _predict(spec, _fitted(name), rows, kw)


@pytest.mark.parametrize("name", NAMES)
def test_flat_rows_without_image_shape(name):
    """Flattened images without ``image_shape`` are ambiguous: a ValueError
    that names ``image_shape``, never a silent guess."""
    spec = SPECS[name]
    if not spec.image:
        pytest.skip("not an image estimator")
    X, y, kw = spec.fit_data(N_FIT, 0)
    rows = np.asarray(X).reshape(len(X), -1)
    with pytest.raises(ValueError, match="image_shape"):
        _fit(spec, rows, y, kw)


# ----- good input in other containers and dtypes ------------------------------
def _fit_predict(spec, X_fit, y, kw, X_pred, kw_pred, est=None):
    est = _fit(spec, X_fit, y, kw, est)
    return _predict(spec, est, X_pred, kw_pred)


def _reference(name):
    spec = SPECS[name]
    X, y, kw = spec.fit_data(N_FIT, 0)
    Xp, kwp = spec.predict_data(N_PREDICT, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spec, X, y, kw, Xp, kwp, _fit_predict(spec, X, y, kw, Xp, kwp)


def _assert_same(out, ref):
    if out.dtype.kind in "fc":
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(out, ref)


def _messages(caught):
    """Warning messages without their figures (which differ run to run)."""
    return {(w.category, re.sub(r"[-+.\deE]+", "#", str(w.message))) for w in caught}


@pytest.mark.parametrize("name", NAMES)
def test_dataframe_works_without_warning(name):
    """pandas input (copy-on-write, so read-only arrays) at fit and at
    inference: the result of the same data as an array, and no warning
    that the array does not give (torch's "non-writable array" warning
    above all). The training warnings of a tiny fit (keep-better) may come
    with both."""
    spec, X, y, kw, Xp, kwp, _ = _reference(name)
    est = spec.make()
    X_rows = _rows(spec, est, X)
    Xp_rows = np.asarray(Xp).reshape(len(Xp), -1)
    with warnings.catch_warnings(record=True) as with_array:
        warnings.simplefilter("always")
        ref = _fit_predict(spec, X_rows, y, kw, Xp_rows, kwp, est=clone(est))
    pd = pytest.importorskip("pandas")
    with warnings.catch_warnings(record=True) as with_frame:
        warnings.simplefilter("always")
        out = _fit_predict(spec, pd.DataFrame(X_rows), y, kw, pd.DataFrame(Xp_rows),
                           kwp, est=est)
    assert not [w for w in with_frame if "writable" in str(w.message)]
    assert _messages(with_frame) <= _messages(with_array)
    _assert_same(np.asarray(out), ref)


@pytest.mark.parametrize("name", NAMES)
def test_lists_work(name):
    spec, X, y, kw, Xp, kwp, ref = _reference(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = _fit_predict(spec, np.asarray(X).tolist(),
                           None if y is None else np.asarray(y).tolist(),
                           {k: np.asarray(v).tolist() for k, v in kw.items()},
                           np.asarray(Xp).tolist(),
                           {k: np.asarray(v).tolist() for k, v in kwp.items()})
    _assert_same(np.asarray(out), ref)


def _int_like(X):
    X = np.asarray(X)
    return np.round(X).astype(np.int64)


@pytest.mark.parametrize("dtype", ["int64", "float16", "float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_dtypes(name, dtype):
    """Integer and float16 input work and give float64 (scikit-learn's
    default); float32 gives float32 and float64 gives float64."""
    spec = SPECS[name]
    X, y, kw = spec.fit_data(N_FIT, 0)
    Xp, kwp = spec.predict_data(N_PREDICT, 0)
    convert = _int_like if dtype == "int64" else (lambda A: np.asarray(A).astype(dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = _fit(spec, convert(X), y, kw)
        out = _predict(spec, est, convert(Xp), kwp)
        # a detector's labels keep the classes' dtype; its soft output follows
        # the dtype rule
        out_dtype = (out if not spec.classifier
                     else est.predict_soft(convert(Xp)) if hasattr(est, "predict_soft")
                     else None)
    assert np.all(np.isfinite(np.asarray(out, dtype=float)))
    if spec.classifier:
        assert set(np.unique(out)) <= set(est.classes_)
    if out_dtype is not None:
        expected = dtype if dtype in ("float32", "float64") else "float64"
        assert np.asarray(out_dtype).dtype == np.dtype(expected)


@pytest.mark.parametrize("name", NAMES)
def test_one_sample(name):
    """One sample at inference works; ``fit`` on one sample works, or
    raises a ValueError that says how many samples it needs."""
    spec = SPECS[name]
    est = _fitted(name)
    Xp, kwp = spec.predict_data(1, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = _predict(spec, est, Xp, kwp)
    assert np.asarray(out).shape[0] == (np.asarray(Xp).shape[0])
    X, y, kw = spec.fit_data(1, 0)
    if spec.min_fit > 1:
        with pytest.raises(ValueError, match="sample"):
            _fit(spec, X, y, kw)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _fit(spec, X, y, kw)


# ----- metadata that contradicts the data ---------------------------------------
def _image_shape_contradicts_stack(name):
    spec = SPECS[name]
    X, y, kw = spec.fit_data(N_FIT, 0)
    h, w = np.shape(X)[1:]
    return _fit(spec, X, y, kw, est=spec.make().set_params(image_shape=(h * 2, w // 2)))


def _image_shape_contradicts_rows(name):
    spec = SPECS[name]
    X, y, kw = spec.fit_data(N_FIT, 0)
    h, w = np.shape(X)[1:]
    rows = np.asarray(X).reshape(len(X), -1)
    return _fit(spec, rows, y, kw, est=spec.make().set_params(image_shape=(h, w + 1)))


def _angles_too_short_fit(name):
    spec = SPECS[name]
    X, y, kw = spec.fit_data(N_FIT, 0)
    return _fit(spec, X, y, {"angles": _angles(N_FIT - 1)})


def _angles_too_long_transform(name):
    X, _ = SPECS[name].predict_data(N_PREDICT, 0)
    return _fitted(name).transform(X, angles=_angles(N_PREDICT + 1))


def _angles_2d(name):
    X, _ = SPECS[name].predict_data(N_PREDICT, 0)
    return _fitted(name).detection_map(X, angles=_angles(N_PREDICT)[:, None])


def _positions_three_columns(name):
    X, kw = SPECS[name].predict_data(N_FIT, 0)
    return _fitted(name).photometry(X, [[7.0, 7.0, 1.0]], **kw)


def _positions_one_column(name):
    X, kw = SPECS[name].predict_data(N_FIT, 0)
    return _fitted(name).photometry(X, [7.0, 7.0, 1.0], **kw)


def _channels_wrong_samples_fit(name):
    spec = SPECS[name]
    X, y, _ = spec.fit_data(N_FIT, 0)
    est = spec.make().set_params(channel=None)
    return est.fit(X, y, channels=np.ones((N_FIT + 1, N_RX, N_TX)))


def _channels_wrong_users_fit(name):
    spec = SPECS[name]
    X, y, _ = spec.fit_data(N_FIT, 0)
    est = spec.make().set_params(channel=None)
    return est.fit(X, y, channels=np.ones((N_FIT, N_RX, N_TX + 1)))


def _channel_param_wrong_shape(name):
    spec = SPECS[name]
    X, y, _ = spec.fit_data(N_FIT, 0)
    return spec.make().set_params(channel=np.ones((N_RX + 1, N_TX))).fit(X, y)


def _y_wrong_length(name):
    spec = SPECS[name]
    X, y, _ = spec.fit_data(N_FIT, 0)
    return spec.make().fit(X, y[:-1])


def _too_few_frames(name):
    X, _ = SPECS[name].predict_data(N_PREDICT, 0)
    return _fitted(name).transform(X[:, :1])


def _frames_unequal(name):
    X, _ = SPECS[name].predict_data(N_PREDICT, 0)
    return _fitted(name).transform([[X[0, 0], X[0, 1][:-1]]])


def _bursts_wrong_frame_size_rows(name):
    X, _ = SPECS[name].predict_data(N_PREDICT, 0)
    return _fitted(name).transform(X[:, :, :-1].reshape(N_PREDICT, -1))


def _dictionary_wrong_features(name):
    spec = SPECS[name]
    X, y, kw = spec.fit_data(N_FIT, 0)
    return spec.make().set_params(dictionary=np.ones((N_ATOMS, N_FEATURES + 1))).fit(X)


def _codes_wrong_width(name):
    return _fitted(name).inverse_transform(np.ones((2, N_ATOMS + 1)))


def _observations_wrong_shape(name):
    from sklearn_mbdl.operators import GaussianBlur

    est = copy.deepcopy(_fitted(name)).set_params(operator=GaussianBlur(1.0, 3))
    return est.transform(np.ones((2, 1, H, W)) * 0.5)


METADATA = {
    # (estimator, case): (raises it, message pattern)
    ("SparseCoder", "dictionary_wrong_features"): (_dictionary_wrong_features,
                                                   "dictionary"),
    ("SparseCoder", "codes_wrong_width"): (_codes_wrong_width, "codes|atoms|features"),
    ("LISTATransformer", "dictionary_wrong_features"): (_dictionary_wrong_features,
                                                        "dictionary"),
    ("LISTATransformer", "codes_wrong_width"): (_codes_wrong_width,
                                                "codes|atoms|features"),
    ("DetNetClassifier", "channels_wrong_samples"): (_channels_wrong_samples_fit,
                                                     "channels"),
    ("DetNetClassifier", "channels_wrong_users"): (_channels_wrong_users_fit,
                                                   "channels"),
    ("DetNetClassifier", "channel_wrong_shape"): (_channel_param_wrong_shape,
                                                  "channel"),
    ("DetNetClassifier", "y_wrong_length"): (_y_wrong_length, r"\by\b"),
    ("MIMODetector", "channels_wrong_samples"): (_channels_wrong_samples_fit,
                                                 "channels"),
    ("MIMODetector", "channels_wrong_users"): (_channels_wrong_users_fit, "channels"),
    ("MIMODetector", "channel_wrong_shape"): (_channel_param_wrong_shape, "channel"),
    ("MIMODetector", "y_wrong_length"): (_y_wrong_length, r"\by\b"),
    ("DCEAEstimator", "image_shape_contradicts_stack"): (
        _image_shape_contradicts_stack, "image_shape"),
    ("DCEAEstimator", "image_shape_contradicts_rows"): (
        _image_shape_contradicts_rows, "image_shape"),
    ("DCEAEstimator", "codes_wrong_width"): (_codes_wrong_width, "codes"),
    ("PnPRestorer", "image_shape_contradicts_stack"): (
        _image_shape_contradicts_stack, "image_shape"),
    ("PnPRestorer", "image_shape_contradicts_rows"): (
        _image_shape_contradicts_rows, "image_shape"),
    ("PnPRestorer", "observations_wrong_shape"): (_observations_wrong_shape,
                                                  "shape|image_shape"),
    ("BurstSuperResolver", "image_shape_contradicts_stack"): (
        _image_shape_contradicts_stack, "image_shape"),
    ("BurstSuperResolver", "image_shape_contradicts_rows"): (
        _image_shape_contradicts_rows, "image_shape"),
    ("BurstSuperResolver", "too_few_frames"): (_too_few_frames, "n_frames"),
    ("BurstSuperResolver", "frames_of_unequal_size"): (_frames_unequal, "frames"),
    ("BurstSuperResolver", "rows_of_wrong_frame_size"): (
        _bursts_wrong_frame_size_rows, "features"),
    ("ExoplanetSeparator", "image_shape_contradicts_stack"): (
        _image_shape_contradicts_stack, "image_shape"),
    ("ExoplanetSeparator", "image_shape_contradicts_rows"): (
        _image_shape_contradicts_rows, "image_shape"),
    ("ExoplanetSeparator", "angles_too_short_fit"): (_angles_too_short_fit, "angles"),
    ("ExoplanetSeparator", "angles_too_long_transform"): (_angles_too_long_transform,
                                                          "angles"),
    ("ExoplanetSeparator", "angles_2d"): (_angles_2d, "angles"),
    ("ExoplanetSeparator", "positions_three_columns"): (_positions_three_columns,
                                                        "positions"),
    ("ExoplanetSeparator", "positions_flat"): (_positions_one_column, "positions"),
}


@pytest.mark.parametrize("name, case", list(METADATA))
def test_bad_metadata(name, case):
    raise_it, match = METADATA[name, case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=match):
            raise_it(name)


# ----- parameters ---------------------------------------------------------------
BAD_PARAMS = [(name, param, value) for name, spec in SPECS.items()
              for param, value in spec.bad_params]


@pytest.mark.parametrize("name, param, value", BAD_PARAMS,
                         ids=[f"{n}-{p}={v!r}" for n, p, v in BAD_PARAMS])
def test_bad_parameter_at_fit(name, param, value):
    """Unknown options, wrong types and out-of-range numbers: ``fit`` raises
    scikit-learn's InvalidParameterError (a ValueError) naming the
    parameter, before any work."""
    spec = SPECS[name]
    X, y, kw = spec.fit_data(N_FIT, 0)
    est = spec.make().set_params(**{param: value})
    with pytest.raises(ValueError, match=rf"\b{param}\b"):
        _fit(spec, X, y, kw, est)


BAD_AFTER_FIT = [(name, param, value) for name, spec in SPECS.items()
                 for param, value in spec.bad_after_fit]


@pytest.mark.parametrize("name, param, value", BAD_AFTER_FIT,
                         ids=[f"{n}-{p}={v!r}" for n, p, v in BAD_AFTER_FIT])
def test_parameter_set_after_fit(name, param, value):
    """``set_params`` after ``fit`` then inference: what inference reads is
    either checked again (a ValueError naming the parameter) or frozen at
    ``fit`` (the result does not change). Never an internal error, never a
    silent change of behaviour."""
    spec = SPECS[name]
    est = copy.deepcopy(_fitted(name))
    X, kw = spec.predict_data(N_PREDICT, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = _predict(spec, est, X, kw)
        est.set_params(**{param: value})
        try:
            after = _predict(spec, est, X, kw)
        except ValueError as exc:
            assert re.search(rf"\b{param}\b", str(exc)), str(exc)
            return
    _assert_same(np.asarray(after), np.asarray(before))


EXOPLANET_AFTER_FIT = [(param, value, method)
                       for param, value in SPECS["ExoplanetSeparator"].bad_after_fit
                       for method in ("detection_map", "photometry")]


@pytest.mark.parametrize("param, value, method", EXOPLANET_AFTER_FIT)
def test_exoplanet_parameter_set_after_fit(param, value, method):
    """The same for the separator's other methods, which read ``fwhm``,
    ``patch_size`` and ``static_speckles`` again."""
    est = copy.deepcopy(_fitted("ExoplanetSeparator"))
    args = SPECS["ExoplanetSeparator"].fitted_methods[method]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = getattr(est, method)(*args)
        est.set_params(**{param: value})
        try:
            after = getattr(est, method)(*args)
        except ValueError as exc:
            assert re.search(rf"\b{param}\b", str(exc)), str(exc)
            return
    _assert_same(np.asarray(after), np.asarray(before))


NOT_FITTED = [(name, method) for name, spec in SPECS.items()
              for method in spec.fitted_methods]


@pytest.mark.parametrize("name, method", NOT_FITTED)
def test_not_fitted(name, method):
    spec = SPECS[name]
    args = spec.fitted_methods[method]()
    with pytest.raises(NotFittedError):
        getattr(spec.make(), method)(*args)


@pytest.mark.parametrize("name", NAMES)
def test_check_param_validation(name):
    """scikit-learn's own check of declared parameter constraints."""
    est = type(SPECS[name].make())()
    check_param_validation(name, est)


# ----- fitted estimators hold no training data ----------------------------------
def _stored_bytes(obj):
    """Bytes of the arrays, tensors and binary blobs (skorch saves its module
    and optimizer with ``torch.save``) that a pickle of ``obj`` stores."""
    import io

    import torch

    total = 0

    class Counter(pickle.Pickler):
        def persistent_id(self, item):
            nonlocal total
            if isinstance(item, np.ndarray):
                total += item.nbytes
            elif isinstance(item, torch.Tensor):
                total += item.nelement() * item.element_size()
            elif isinstance(item, (bytes, bytearray)):
                total += len(item)
            return None  # pickle it as usual

    Counter(io.BytesIO()).dump(obj)
    return total


@pytest.mark.parametrize("name", NAMES)
def test_pickle_size_does_not_grow_with_training_set(name):
    """A fitted estimator holds no training data: fitted on n and on 4n
    samples, it pickles to the same size (skorch's per-batch history
    aside, hence the tolerance). LISTA gets enough rows for its held-out
    split (at least 20 rows)."""
    spec = SPECS[name]
    n = N_FIT if spec.image else 60
    pickled, stored = [], []
    for n_samples in (n, 4 * n):
        X, y, kw = spec.fit_data(n_samples, 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = _fit(spec, X, y, kw)
        pickled.append(len(pickle.dumps(est)))
        stored.append(_stored_bytes(est))
    assert stored[1] < 1.2 * stored[0], (stored, pickled)
    assert pickled[1] < 1.2 * pickled[0], (stored, pickled)


# ----- random garbage never reaches torch or NumPy internals --------------------
# what scikit-learn's own validation says, or a message naming the input;
# NumPy's and torch's internal messages ("cannot reshape array of size 0")
# match none of these
_GARBAGE_MESSAGE = re.compile(
    r"\bX\b|image_shape|Found array|Expected 2D array|Expected a 2-dimensional|"
    r"sample|features|frames|bursts|dimension|angles|NaN|infinity|"
    r"Negative values|images")


@st.composite
def _garbage(draw):
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(st.integers(0, 9), min_size=ndim, max_size=ndim)))
    fill = draw(st.sampled_from(["normal", "nan", "inf", "int", "huge", "negative"]))
    rng = np.random.RandomState(draw(st.integers(0, 2 ** 16)))
    X = rng.uniform(0, 1, size=shape)
    if fill == "nan" and X.size:
        X.flat[0] = np.nan
    elif fill == "inf" and X.size:
        X.flat[-1] = np.inf
    elif fill == "int":
        X = (10 * X).astype(np.int64)
    elif fill == "huge":
        X = X * 1e300
    elif fill == "negative":
        X = -X
    return X


# fixed shapes that once broke estimators, then random garbage
_GARBAGE_EXAMPLES = (np.zeros((0, H, W)), np.zeros((0, 0, 0)), np.ones((1, 1, 1)),
                     np.ones((2, 1, 1, 1)), np.float64(0.5), -np.ones((2, H, W)))


def _on_garbage(test):
    """Run ``test(name, X)`` on the fixed examples and on random garbage."""
    test = given(X=_garbage())(test)
    for X in reversed(_GARBAGE_EXAMPLES):
        test = example(X=X)(test)
    return settings(max_examples=20, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])(test)


@pytest.mark.parametrize("name", NAMES)
@_on_garbage
def test_random_garbage_at_inference(name, X):
    """Arrays of random shape and content given to the inference method:
    any outcome but a ValueError/TypeError naming the input is a bug."""
    spec = SPECS[name]
    est = _fitted(name)
    kw = {"angles": _angles(len(X))} if "angles" in spec.predict_data(1, 0)[1] \
        and np.ndim(X) >= 1 else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = _predict(spec, est, X, kw)
        except (ValueError, TypeError) as exc:
            assert _GARBAGE_MESSAGE.search(str(exc)), repr(exc)
            return
    assert np.asarray(out).shape[0] == np.shape(X)[0]


@pytest.mark.parametrize("name", NAMES)
@_on_garbage
def test_random_garbage_at_fit(name, X):
    """The same at ``fit`` (with labels or angles of the right length)."""
    spec = SPECS[name]
    _, y, kw = spec.fit_data(N_FIT, 0)
    n = np.shape(X)[0] if np.ndim(X) else 0
    if y is not None:
        y = np.resize(y, (n, *np.shape(y)[1:]))
    kw = {k: _angles(n) for k in kw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _fit(spec, X, y, kw)
        except (ValueError, TypeError) as exc:
            assert _GARBAGE_MESSAGE.search(str(exc)), repr(exc)
