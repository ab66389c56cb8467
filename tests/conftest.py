"""Shared test set-up.

Tests run in parallel over the cores (pytest-xdist's ``-n auto``, set in
setup.cfg; ``-n 0`` runs them in one process), each worker on one
torch thread (on 2 cores torch's default threads made the scikit-learn checks
10-20 times slower), and on the device named by
``--device`` (or the ``SKLEARN_MBDL_DEVICE`` environment variable):
``pytest --device cuda`` runs the suite on a GPU.
"""

import os

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


def pytest_xdist_auto_num_workers(config):
    """Workers for ``-n auto``: one per core, at most 4 (each imports torch
    and builds its own module-level fixtures)."""
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count() or 1)
    return max(1, min(4, cores))


def pytest_addoption(parser):
    parser.addoption(
        "--device",
        default=os.environ.get("SKLEARN_MBDL_DEVICE", "cpu"),
        help="torch device the estimators run on in the tests (cpu or cuda)",
    )


@pytest.fixture(scope="session")
def device(request):
    name = request.config.getoption("--device")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("CUDA requested but not available")
    return name


@pytest.fixture
def sparse_problem():
    """A small seeded sparse-coding problem and a moderate alpha."""
    from sklearn_mbdl.datasets import make_sparse_coding

    X, codes, D = make_sparse_coding(300, 16, 32, 3, noise=0.01, random_state=0)
    alpha = 0.05 * float(np.abs(X @ D.T).max())
    return X, codes, D, alpha
