"""Scaling out on a real Dask cluster: searches under joblib's Dask backend,
block-by-block inference on Dask arrays, and their bad input."""

import sys

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

pytest.importorskip("dask.array")
pytest.importorskip("distributed")

import dask.array as da  # noqa: E402
import joblib  # noqa: E402

from sklearn_mbdl import (  # noqa: E402
    BurstSuperResolver,
    DCEAEstimator,
    DetNetClassifier,
    LISTATransformer,
    MIMODetector,
    PnPRestorer,
    SparseCoder,
)
from sklearn_mbdl.datasets import make_mimo, make_sparse_coding  # noqa: E402
from sklearn_mbdl.operators import GaussianBlur  # noqa: E402
from sklearn_mbdl.scaling import blockwise, dask_client  # noqa: E402


@pytest.fixture(scope="module")
def client():
    """Two worker processes of one thread each (torch sized by the plugin)."""
    client = dask_client(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=None)
    yield client
    cluster = client.cluster
    client.close()
    cluster.close()


def test_core_does_not_import_dask():
    import subprocess

    code = ("import sys, sklearn_mbdl, sklearn_mbdl.scaling; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed', 'dask_ml', 'accelerate')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def test_workers_run_torch_on_their_own_threads(client):
    import torch

    from sklearn_mbdl.scaling import torch_threads_plugin

    def threads():
        return sorted(client.run(torch.get_num_threads).values())

    assert threads() == [1, 1]          # one task slot per worker
    client.register_plugin(torch_threads_plugin(2))
    assert threads() == [2, 2]
    client.register_plugin(torch_threads_plugin())
    assert threads() == [1, 1]


def test_plugin_follows_the_worker_slots():
    from types import SimpleNamespace

    import torch

    from sklearn_mbdl._worker import TorchThreads

    try:
        TorchThreads().setup(SimpleNamespace(state=SimpleNamespace(nthreads=2)))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    with pytest.raises(ValueError, match="n_threads"):
        from sklearn_mbdl.scaling import torch_threads_plugin
        torch_threads_plugin(0)


def _lasso_score(est, X, y=None):
    """Minus the mean lasso objective of the codes (at the search's alpha)."""
    codes = est.transform(X)
    D = est[-1].components_
    return -float(np.mean(0.5 * ((X - codes @ D) ** 2).sum(1)
                          + 0.05 * np.abs(codes).sum(1)))


def test_search_over_two_estimators_on_the_cluster(client):
    """The same search on the cluster and in this process: same scores."""
    X, _, D = make_sparse_coding(160, 8, 12, 2, noise=0.01, random_state=0)
    grid = [
        {"code": [SparseCoder(D, alpha=0.05)], "code__max_iter": [2, 50]},
        {"code": [LISTATransformer(D, alpha=0.05, max_epochs=3, random_state=0)],
         "code__n_layers": [1, 3]},
    ]

    def search():
        return GridSearchCV(Pipeline([("code", SparseCoder(D))]), grid, cv=2,
                            scoring=_lasso_score)

    local = search().set_params(n_jobs=1).fit(X)
    with joblib.parallel_backend("dask"):
        remote = search().fit(X)
    assert str(remote.best_params_) == str(local.best_params_)
    np.testing.assert_allclose(remote.cv_results_["mean_test_score"],
                               local.cv_results_["mean_test_score"], rtol=1e-10)
    # what the cluster ran is a real search: LISTA's depth and ISTA's
    # iterations both change the score
    assert len(set(np.round(local.cv_results_["mean_test_score"], 6))) == 4


def _images(n, size=16, seed=0):
    rng = np.random.RandomState(seed)
    t = np.linspace(0, 1, size)
    return np.clip(0.5 + 0.3 * np.sin(6 * t[None, :, None] * rng.rand(n, 1, 1)
                                      + 5 * t[None, None, :] * rng.rand(n, 1, 1)),
                   0, 1)


def _fitted():
    """Tiny fitted row-wise estimators and inputs for their inference method."""
    X, _, D = make_sparse_coding(60, 8, 12, 2, noise=0.01, random_state=0)
    Xm, ym, Hm = make_mimo(300, n_tx=2, n_rx=4, snr_db=10, random_state=0)
    clean = _images(12)
    blur = GaussianBlur(1.0, 5)
    pnp = PnPRestorer(blur, max_epochs=1, batch_size=4, n_iter=3,
                      noise_level=0.01, random_state=0).fit(clean)
    burst = BurstSuperResolver(2, 4, n_iter=2, max_epochs=1, random_state=0).fit(clean)
    dcea = DCEAEstimator(n_kernels=4, kernel_size=3, stride=2, n_layers=3, peak=4,
                         max_epochs=1, random_state=0).fit(clean)
    counts = np.random.RandomState(1).poisson(4 * clean).astype(float)
    return [
        (SparseCoder(D, alpha=0.05).fit(X), "transform", X, {}),
        (LISTATransformer(D, alpha=0.05, n_layers=3, max_epochs=2,
                          random_state=0).fit(X), "transform", X, {}),
        (DetNetClassifier(n_layers=3, max_epochs=1, random_state=0).fit(
            Xm, ym, channels=Hm), "predict", Xm, {"channels": Hm}),
        (MIMODetector("mmse").fit(Xm, ym, channels=Hm), "predict", Xm,
         {"channels": Hm}),
        (dcea, "transform", counts, {}),                # images (n, h, w)
        (dcea, "encode", counts.reshape(12, -1), {}),
        (pnp, "transform", pnp.simulate(clean), {}),
        (burst, "transform", burst.simulate(clean), {}),  # bursts (n, K, h, w)
    ]


def test_blockwise_inference_equals_in_memory(client):
    for est, method, X, kwargs in _fitted():
        expected = getattr(est, method)(X, **kwargs)
        chunks = (5,) + X.shape[1:]
        lazy = blockwise(est, da.from_array(X, chunks=chunks), method,
                         **{k: da.from_array(v, chunks=(7,) + v.shape[1:])
                            for k, v in kwargs.items()})
        assert lazy.shape == expected.shape and lazy.dtype == expected.dtype
        assert lazy.numblocks[0] == -(-len(X) // 5)
        np.testing.assert_allclose(lazy.compute(), expected, rtol=1e-7,
                                   atol=1e-10, err_msg=type(est).__name__)


def test_blockwise_puts_the_estimator_in_the_graph_once():
    """Workers get each task pickled on its own: the fitted estimator must be
    one key of the graph, not a copy inside every block's task (a worker
    kept one copy per block and grew by the model's size each block)."""
    import pickle

    X, _, D = make_sparse_coding(400, 8, 12, 2, random_state=0)
    coder = SparseCoder(D, alpha=0.05).fit(X)
    size = len(pickle.dumps(coder))
    graph = dict(blockwise(coder, da.from_array(X, chunks=(10, 8))).__dask_graph__())
    assert len(graph) > 40
    holding = [key for key, task in graph.items() if len(pickle.dumps(task)) > size // 2]
    assert len(holding) == 1, len(holding)


def test_blockwise_bad_input():
    X, _, D = make_sparse_coding(40, 8, 12, 2, random_state=0)
    coder = SparseCoder(D, alpha=0.05).fit(X)
    with pytest.raises(ValueError, match=r"X.rechunk\(\{1: -1\}\)"):
        blockwise(coder, da.from_array(X, chunks=(10, 4)))
    images = da.zeros((6, 16, 16), chunks=(2, 8, 16))
    with pytest.raises(ValueError, match=r"rechunk\(\{1: -1\}\)"):
        blockwise(coder, images)
    with pytest.raises(ValueError, match=r"channels.rechunk\(\{2: -1\}\)"):
        blockwise(coder, da.from_array(X, chunks=(10, 8)),
                  channels=da.zeros((40, 8, 2), chunks=(10, 8, 1)))
    with pytest.raises(ValueError, match="one entry per row"):
        blockwise(coder, da.from_array(X, chunks=(10, 8)),
                  channels=da.zeros((30, 8, 2)))
    with pytest.raises(ValueError, match="no method"):
        blockwise(coder, da.from_array(X), "predict")
    # numpy input is passed through
    np.testing.assert_allclose(blockwise(coder, X), coder.transform(X))


def test_unreachable_scheduler_names_the_fix():
    with pytest.raises(ValueError, match="could not reach a Dask scheduler.*"
                                         "address=None"):
        dask_client("tcp://127.0.0.1:9", timeout="1s")
