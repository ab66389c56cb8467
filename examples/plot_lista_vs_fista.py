"""
LISTA against ISTA and FISTA: error versus depth
================================================

ISTA solves the lasso

.. math::

    \\min_z \\tfrac12 \\|x - z D\\|_2^2 + \\alpha \\|z\\|_1

by repeating one cheap step, and needs many of them. LISTA
(:class:`~sklearn_mbdl.LISTATransformer`) runs a fixed number of the same
steps with learned parameters (a step size, a threshold and a momentum per
layer; see :ref:`lista`), trained to reproduce the exact lasso codes of the training
signals. This example measures how far each method is from the exact codes
after :math:`k` layers (LISTA) or :math:`k` iterations (ISTA, FISTA), on
signals none of them was trained on.
"""

# %%
# A sparse coding problem
# -----------------------
# :func:`~sklearn_mbdl.datasets.make_sparse_coding` draws a dictionary of
# unit-norm atoms and signals that are sparse combinations of them, with a
# little noise. The first 3000 rows train LISTA; the other 500 are held out.
# ``alpha`` is 5% of the largest correlation between a training signal and an
# atom (above that largest value, every code would be zero).

import matplotlib.pyplot as plt
import numpy as np
import torch

from sklearn_mbdl import LISTATransformer, sparse_encode
from sklearn_mbdl.datasets import make_sparse_coding
from sklearn_mbdl.metrics import nmse_db
from sklearn_mbdl.solvers import fista, ista

X, _, D = make_sparse_coding(
    n_samples=3500, n_features=32, n_components=64, n_nonzero=4, noise=0.01,
    random_state=0,
)
X_train, X_test = X[:3000], X[3000:]
alpha = 0.05 * np.abs(X_train @ D.T).max()
print(f"{D.shape[0]} atoms of length {D.shape[1]}, alpha = {alpha:.4f}")

# %%
# The reference: exact lasso codes
# --------------------------------
# :func:`~sklearn_mbdl.sparse_encode` with its default active-set solver
# gives the exact minimisers. The error of every method below is the
# normalised mean squared error to these codes, in dB
# (:func:`~sklearn_mbdl.metrics.nmse_db`).

reference = sparse_encode(X_test, D, alpha=alpha)
n_nonzero = (reference != 0).sum(axis=1).mean()
print(f"non-zero coefficients per exact code: {n_nonzero:.1f} on average")

# %%
# Training LISTA
# --------------
# ``fit`` needs only the signals: it computes their exact lasso codes and trains
# a 16-layer network, initialised as 16 ISTA iterations, to reproduce them.
# 10% of the training rows are held out for early stopping.

n_layers = 16
lista = LISTATransformer(
    D, n_layers=n_layers, alpha=alpha, max_epochs=60, random_state=0,
)
lista.fit(X_train)
history = lista.net_.history
print(f"epochs run: {len(history)}, best validation loss: "
      f"{min(history[:, 'valid_loss']):.3e}")

# %%
# Error versus depth
# ------------------
# ``transform(X, n_layers=k)`` runs the first ``k`` layers of the trained
# network. ISTA and FISTA report their iterates through ``callback``; with
# ``tol=0.0`` they run every iteration. Both start from zero codes and take the
# step ``1/L``, as LISTA's first layer did before training.

lista_error = np.array([
    nmse_db(reference, lista.transform(X_test, n_layers=k))
    for k in range(1, n_layers + 1)
])

n_iter = 4 * n_layers
X_t, D_t = torch.from_numpy(X_test), torch.from_numpy(D)
ista_error, fista_error = [], []
ista(X_t, D_t, alpha, max_iter=n_iter, tol=0.0,
     callback=lambda k, Z: ista_error.append(nmse_db(reference, Z.numpy())))
fista(X_t, D_t, alpha, max_iter=n_iter, tol=0.0,
      callback=lambda k, Z: fista_error.append(nmse_db(reference, Z.numpy())))
ista_error, fista_error = np.array(ista_error), np.array(fista_error)

print(" depth   LISTA    ISTA   FISTA   (NMSE to the exact codes, dB)")
for k in range(1, n_layers + 1):
    print(f"{k:6d} {lista_error[k - 1]:7.1f} {ista_error[k - 1]:7.1f} "
          f"{fista_error[k - 1]:7.1f}")


def iterations_to_reach(errors, level):
    """First iteration whose error is at most ``level`` (None if never)."""
    below = np.flatnonzero(errors <= level)
    return int(below[0]) + 1 if below.size else None


final = lista_error[-1]
print(f"\nLISTA with {n_layers} layers: {final:.1f} dB")
for name, errors in (("ISTA", ista_error), ("FISTA", fista_error)):
    needed = iterations_to_reach(errors, final)
    reached = f"{needed} iterations" if needed else f"more than {n_iter} iterations"
    print(f"{name} needs {reached} to do as well")
ahead = np.flatnonzero(lista_error < fista_error[:n_layers]) + 1
print(f"depths at which LISTA is ahead of FISTA: {ahead.tolist()}")

# %%
# The learned parameters
# ----------------------
# Each layer has a step size and a threshold, shown here relative to ISTA's
# (step ``1/L`` and threshold ``alpha/L``, where ``L = ||D||_2^2``), and a
# momentum. They started equal to ISTA's (momentum 0); every layer applies
# the dictionary's adjoint ``D^T`` (``weights="learned"`` would train a map
# per layer too; the user guide, :ref:`lista`, describes every parameter).

step_ratio = lista.steps_ / lista.ista_step_
threshold_ratio = lista.thresholds_ / (alpha * lista.ista_step_)
print("step / ISTA's step:          ", np.round(step_ratio, 2))
print("threshold / ISTA's threshold:", np.round(threshold_ratio, 2))

# %%
# Plots
# -----

fig, (ax_err, ax_par) = plt.subplots(1, 2, figsize=(11, 4.2),
                                     gridspec_kw={"width_ratios": [3, 2]})
iterations = np.arange(1, n_iter + 1)
ax_err.plot(iterations, ista_error, label="ISTA", color="tab:gray")
ax_err.plot(iterations, fista_error, label="FISTA (adaptive restart)",
            color="tab:blue")
ax_err.plot(np.arange(1, n_layers + 1), lista_error, "o-",
            label="LISTA (trained)", color="tab:red", markersize=4)
ax_err.axvline(n_layers, color="k", linewidth=0.8, linestyle=":")
ax_err.axhline(final, color="tab:red", linewidth=0.8, linestyle="--",
               label=f"LISTA's error at {n_layers} layers")
ax_err.set_xlabel("layers (LISTA) / iterations (ISTA, FISTA)")
ax_err.set_ylabel("NMSE to the exact lasso codes (dB)")
ax_err.set_title("Held-out signals")
# FISTA goes on down to machine precision; the plot stops a little below
# the errors LISTA and ISTA reach
ax_err.set_ylim(bottom=min(lista_error.min(), ista_error.min()) - 15, top=1)
ax_err.grid(True, alpha=0.3)
ax_err.legend()

layers = np.arange(1, n_layers + 1)
ax_par.plot(layers, step_ratio, "o-", label="step / (1/L)", markersize=4)
ax_par.plot(layers, threshold_ratio, "s-", label=r"threshold / ($\alpha$/L)",
            markersize=4)
ax_par.axhline(1.0, color="k", linewidth=0.8, linestyle=":")
ax_par.set_xlabel("layer")
ax_par.set_title("Learned parameters, relative to ISTA")
ax_par.grid(True, alpha=0.3)
ax_par.legend()
fig.tight_layout()
plt.show()

# %%
# Reading the plots
# -----------------
# At equal depth the trained network is far closer to the exact codes than
# ISTA, whose error falls by a roughly constant amount per iteration:
# training folds several ISTA iterations into each layer. FISTA accelerates
# ISTA too, without training; the table and the summary printed above say at
# which depths LISTA is ahead of it on this problem, and how many ISTA and
# FISTA iterations match the full network. Run longer, FISTA goes on to the
# exact codes, while LISTA stops at its depth with the error its training
# reached. What LISTA offers is a fixed, small cost per signal (exactly
# ``n_layers`` layers, no stopping test) for many signals like the ones it
# was trained on.
#
# The network was trained at its full depth only, so its truncated versions
# (``n_layers=k`` in ``transform``) are not the best ``k``-layer networks:
# they show how the error decreases through the layers.
