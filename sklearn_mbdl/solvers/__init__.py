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
from ._detection import (
    detection_step,
    matched_filter,
    mmse,
    mmse_sic,
    projected_gradient,
    softness_schedule,
    sphere_decoder,
    zero_forcing,
)
from ._poisson import (
    DISTRIBUTIONS,
    exponential_family_nll,
    exponential_family_objective,
    exponential_family_step,
    inverse_link,
    link,
    natural_offset,
    poisson_proximal_gradient,
)
from ._proximal_gradient import fista, ista, lasso_objective, proximal_step
from ._splitting import admm, dpir_schedule, hqs, pgd

__all__ = [
    "lasso_objective",
    "proximal_step",
    "ista",
    "fista",
    "active_set",
    "matched_filter",
    "detection_step",
    "zero_forcing",
    "mmse",
    "mmse_sic",
    "projected_gradient",
    "softness_schedule",
    "sphere_decoder",
    "DISTRIBUTIONS",
    "inverse_link",
    "link",
    "natural_offset",
    "exponential_family_nll",
    "exponential_family_objective",
    "exponential_family_step",
    "poisson_proximal_gradient",
]

__all__ += ["admm", "hqs", "pgd", "dpir_schedule"]
