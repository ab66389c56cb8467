"""Model-based solvers, built from the operators and proximal maps.

Plain functions on torch tensors, batched over samples (rows): the whole
``(n_samples, ...)`` block is updated at once with matrix products, on the
tensors' device and in their dtype. The learned twins of these algorithms
(LISTA, ...) call the very same steps.

Conventions for sparse coding follow scikit-learn: ``X`` has shape
``(n_samples, n_features)``, the dictionary ``D`` has its atoms as rows,
shape ``(n_components, n_features)``, and the codes ``Z`` have shape
``(n_samples, n_components)``. The objective per sample is::

    0.5 * ||x - z @ D||_2^2 + alpha * ||z||_1
"""

from ._active_set import active_set
from ._proximal_gradient import fista, ista, lasso_objective, proximal_step

__all__ = [
    "lasso_objective",
    "proximal_step",
    "ista",
    "fista",
    "active_set",
]
