"""
Scaling out: a search on a Dask cluster, inference block by block, training through accelerate
==============================================================================================

The three recipes of :ref:`scaling`, run on a small local cluster: a
``GridSearchCV`` over two estimators under joblib's Dask backend, the
transform of rows, images and bursts held in Dask arrays block by block
(equal to the in-memory results), and training through HF accelerate
(``device="accelerate"``; one process here, several GPUs under
``accelerate launch``).

The cluster below runs its two workers as threads of this process
(``processes=False``) so that the example starts fast; a real cluster only
changes the first call (see :ref:`scaling`). Fits in threads of one process
take turns on torch's global random state, so they are reproducible but do
not train in parallel: give each worker process one thread for searches
over trained estimators (the default of
:func:`~sklearn_mbdl.scaling.dask_client`).
"""

import time

import dask.array as da
import joblib
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from sklearn_mbdl import BurstSuperResolver, LISTATransformer, PnPRestorer, SparseCoder
from sklearn_mbdl.datasets import load_images, make_sparse_coding, extract_patches
from sklearn_mbdl.operators import GaussianBlur
from sklearn_mbdl.scaling import blockwise, dask_client

torch.set_num_threads(1)
client = dask_client(n_workers=2, threads_per_worker=1, processes=False,
                     dashboard_address=None)
print(client)

# %%
# A search on the cluster
# -----------------------
# One search over two estimators: the exact lasso solver with a capped number
# of iterations, and LISTA at two depths. Each candidate and fold is a task
# on the cluster; the scores equal those of ``n_jobs=1``.
X, _, D = make_sparse_coding(400, 16, 32, 3, noise=0.01, random_state=0)
alpha = 0.05


def lasso_score(est, X, y=None):
    """Minus the mean lasso objective of the codes."""
    codes = est.transform(X)
    residual = X - codes @ D
    return -np.mean(0.5 * (residual ** 2).sum(1) + alpha * np.abs(codes).sum(1))


grid = [
    {"code": [SparseCoder(D, alpha=alpha)], "code__max_iter": [2, 50]},
    {"code": [LISTATransformer(D, alpha=alpha, max_epochs=10, random_state=0)],
     "code__n_layers": [2, 6]},
]
search = GridSearchCV(Pipeline([("code", SparseCoder(D))]), grid, cv=2,
                      scoring=lasso_score)
start = time.perf_counter()
with joblib.parallel_backend("dask"):
    search.fit(X)
print(f"search on the cluster: {time.perf_counter() - start:.1f} s")
for params, score in zip(search.cv_results_["params"],
                         search.cv_results_["mean_test_score"]):
    step = params["code"]
    depth = params.get("code__max_iter", params.get("code__n_layers"))
    print(f"{type(step).__name__:>18} ({depth:>2}): {score:.4f}")
best = search.best_params_
print("best:", type(best["code"]).__name__,
      {k: v for k, v in best.items() if k != "code"})
local = GridSearchCV(Pipeline([("code", SparseCoder(D))]), grid, cv=2,
                     scoring=lasso_score).fit(X)
print("same scores as n_jobs=1:",
      np.allclose(local.cv_results_["mean_test_score"],
                  search.cv_results_["mean_test_score"], rtol=1e-10))

# %%
# Rows, block by block
# --------------------
# A Dask array of signals, cut into blocks of rows (here from memory; in
# practice ``da.from_zarr``, ``da.from_array`` on an HDF5 dataset...).
# :func:`~sklearn_mbdl.scaling.blockwise` returns a lazy array of codes.
coder = search.best_estimator_
signals = da.from_array(np.tile(X, (25, 1)), chunks=(2000, -1))   # 10,000 rows
codes = blockwise(coder, signals)
print(codes)
print("equal to in memory:",
      np.allclose(codes.compute(), coder.transform(signals.compute()), atol=1e-12))

# %%
# Images and bursts, block by block
# ---------------------------------
# The same call for image stacks ``(n, h, w)`` and bursts ``(n, K, h, w)``:
# each block holds whole images (or bursts). A block that cuts an image
# raises an error naming the ``rechunk`` that fixes it.
patches = extract_patches(load_images("train"), 16, 32, random_state=0)
blur = GaussianBlur(1.2, 9)
pnp = PnPRestorer(blur, denoiser="tv", n_iter=10, noise_level=0.02).fit(patches)
observed = pnp.simulate(patches, random_state=0)
restored = blockwise(pnp, da.from_array(observed, chunks=(4, -1, -1))).compute()
print("PnP, equal to in memory:",
      np.allclose(restored, pnp.transform(observed), atol=1e-10))
try:
    blockwise(pnp, da.from_array(observed, chunks=(4, 16, -1)))
except ValueError as error:
    print("ValueError:", error)

burst_model = BurstSuperResolver(2, 4, prior="tv", n_iter=2, max_epochs=1,
                                 random_state=0).fit(patches)
bursts = burst_model.simulate(patches, random_state=0)          # (16, 4, 16, 16)
super_resolved = blockwise(burst_model, da.from_array(bursts, chunks=(4, -1, -1, -1)))
print("bursts", bursts.shape, "->", super_resolved.shape, "equal to in memory:",
      np.allclose(super_resolved.compute(), burst_model.transform(bursts), atol=1e-10))

fig, axes = plt.subplots(1, 4, figsize=(9, 2.6))
for ax, image, title in zip(axes, [patches[0], observed[0], restored[0], bursts[0, 0]],
                            ["clean", "blurred + noise", "PnP-TV, blockwise",
                             "one burst frame"]):
    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.tight_layout()

# %%
# Training through accelerate
# ---------------------------
# ``device="accelerate"`` trains through HF accelerate (skorch's
# ``AccelerateMixin``). In one plain process it is plain training: the same
# weights. Saved as a script, ``accelerate launch --multi_gpu
# --num_processes 4 script.py`` trains the same estimator data-parallel on 4
# GPUs.
plain = LISTATransformer(D, alpha=alpha, n_layers=4, max_epochs=5,
                         random_state=0).fit(X)
accelerated = LISTATransformer(D, alpha=alpha, n_layers=4, max_epochs=5,
                               random_state=0, device="accelerate").fit(X)
print("trained on", accelerated.device_, "- same codes as plain training:",
      np.allclose(accelerated.transform(X), plain.transform(X)))

cluster = client.cluster
client.close()
cluster.close()
