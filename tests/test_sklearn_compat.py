"""Every public estimator passes scikit-learn's estimator checks and works in
Pipeline, GridSearchCV (with parallel jobs), clone and pickle."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_mbdl import LISTATransformer, PnPRestorer, SparseCoder
from sklearn_mbdl import DCEAEstimator
from sklearn_mbdl import DetNetClassifier, MIMODetector
from sklearn_mbdl import ExoplanetSeparator
from sklearn_mbdl import BurstSuperResolver
from sklearn_mbdl.datasets import make_sparse_coding
from sklearn_mbdl.utils import expected_failed_checks

# Every public estimator joins this list, with default parameters.
ESTIMATORS = [SparseCoder(), LISTATransformer(), PnPRestorer()]
ESTIMATORS += [DCEAEstimator()]
ESTIMATORS += [MIMODetector(), DetNetClassifier()]
ESTIMATORS += [ExoplanetSeparator()]
ESTIMATORS += [BurstSuperResolver()]


@parametrize_with_checks(
    ESTIMATORS,
    # the public list, as a user would pass it to check_estimator
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def _small_lista(**kw):
    return LISTATransformer(n_layers=3, max_epochs=3, random_state=0, **kw)


@pytest.fixture(scope="module")
def data():
    X, _, D = make_sparse_coding(120, 8, 12, 2, noise=0.01, random_state=0)
    return X, D


@pytest.mark.parametrize("make", [
    lambda D: SparseCoder(D, alpha=0.1),
    lambda D: _small_lista(dictionary=D, alpha=0.1),
])
def test_pipeline_clone_pickle(data, make):
    X, D = data
    est = make(D)
    pipe = make_pipeline(StandardScaler(), est).fit(X)
    codes = pipe.transform(X)
    assert codes.shape == (120, 12)
    cloned = clone(pipe)
    assert "steps" in cloned.get_params()
    np.testing.assert_allclose(cloned.fit(X).transform(X), codes, atol=1e-7)
    restored = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_allclose(restored.transform(X), codes)


def _reconstruction_score(est, X, y=None):
    return -np.mean((est.inverse_transform(est.transform(X)) - X) ** 2)


def test_grid_search_parallel_tunes_alpha(data):
    X, D = data
    search = GridSearchCV(_small_lista(dictionary=D),
                          {"alpha": [0.01, 1.0]}, cv=2, n_jobs=2,
                          scoring=_reconstruction_score).fit(X)
    # a smaller l1 weight reconstructs better
    assert search.best_params_ == {"alpha": 0.01}
    assert search.best_estimator_.transform(X).shape == (120, 12)


def _tensors_outside_module(obj, path="", seen=None):
    """Tensors a pickle would store outside skorch's device-mapped state."""
    import torch

    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return [path]
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    elif hasattr(obj, "__dict__"):
        items = vars(obj).items()
    else:
        return []
    found = []
    for key, value in items:
        found += _tensors_outside_module(value, f"{path}.{key}", seen)
    return found


def test_gpu_model_would_load_on_cpu(data):
    """skorch maps its module, optimizer and criterion to the CPU when a GPU
    model is unpickled without CUDA; a tensor reached any other way (early
    stopping's copy of the best weights, the scheduler's reference to the
    optimizer) would fail to load. Seen on an H100 before the fix."""
    X, D = data
    est = LISTATransformer(D, n_layers=2, alpha=0.1, max_epochs=2,
                           validation_fraction=0.2, random_state=0).fit(X)
    assert {"early_stopping", "lr_schedule"} <= set(dict(est.net_.callbacks_))
    state = {k: v for k, v in vars(est.net_).items()
             if k not in ("module_", "optimizer_", "criterion_")}
    assert _tensors_outside_module(state) == []
