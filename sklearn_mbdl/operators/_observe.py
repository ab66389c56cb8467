"""Simulated observations through an operator: the forward model plus white
Gaussian noise, ``y = A x + sigma * N(0, I)``, drawn from a NumPy random
state. The one simulation behind :func:`sklearn_mbdl.datasets.
make_degraded_images` and :meth:`sklearn_mbdl.PnPRestorer.simulate`."""

import numpy as np
import torch

__all__ = ["observe"]


def observe(operator, images, noise_level, rng):
    """Noisy observations ``operator(x) + noise_level * N(0, I)`` of images.

    Parameters
    ----------
    operator : ImageOperator
        Anything with a ``forward`` method on a batch of float64 images.
    images : ndarray of shape (n, h, w)
        Clean images (computed in float64).
    noise_level : float
        Standard deviation of the Gaussian noise.
    rng : RandomState
        Draws the noise, one standard normal per observed value.

    Returns
    -------
    ndarray of shape (n, ...), float64
        The operator's observation shape for each image.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mbdl.operators import Decimation
    >>> from sklearn_mbdl.operators._observe import observe
    >>> observe(Decimation(2), np.ones((3, 8, 8)), 0.01,
    ...         np.random.RandomState(0)).shape
    (3, 4, 4)
    """
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float64))
    with torch.no_grad():
        observed = operator.forward(x)
    observed = observed.detach().cpu().numpy().astype(np.float64, copy=False)
    return observed + noise_level * rng.standard_normal(observed.shape)
