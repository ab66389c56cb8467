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

from . import _active_set, _detection, _poisson, _proximal_gradient, _splitting
from ._active_set import *  # noqa: F401,F403
from ._detection import *  # noqa: F401,F403
from ._poisson import *  # noqa: F401,F403
from ._proximal_gradient import *  # noqa: F401,F403
from ._splitting import *  # noqa: F401,F403

# each module lists its public names once, in its own __all__
__all__ = [name for module in (_proximal_gradient, _active_set, _detection, _poisson,
                               _splitting)
           for name in module.__all__]
