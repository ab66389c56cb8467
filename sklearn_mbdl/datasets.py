"""Problem generators: ``make_*`` functions, one per method.

Everything is simulated or taken from the images bundled with installed
packages; nothing is downloaded.
"""

import numbers

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["make_sparse_coding"]


def _check_positive_int(value, name, minimum=1):
    if not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def make_sparse_coding(n_samples=1000, n_features=64, n_components=256,
                       n_nonzero=8, *, noise=0.0, random_state=None):
    """Signals that are sparse combinations of the atoms of a dictionary.

    The dictionary has Gaussian atoms normalised to unit norm; each code has
    ``n_nonzero`` non-zero entries at random positions (Bernoulli-Gaussian,
    with exactly ``n_nonzero`` entries per row) with standard normal values;
    ``X = codes @ dictionary + noise * N(0, 1)``.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of signals.
    n_features : int, default=64
        Length of each signal.
    n_components : int, default=256
        Number of atoms.
    n_nonzero : int, default=8
        Non-zero coefficients per code.
    noise : float, default=0.0
        Standard deviation of the additive Gaussian noise.
    random_state : int, RandomState instance or None, default=None
        Seed of the draw.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The signals.
    codes : ndarray of shape (n_samples, n_components)
        The true sparse codes.
    dictionary : ndarray of shape (n_components, n_features)
        Unit-norm atoms as rows.

    Examples
    --------
    >>> from sklearn_mbdl.datasets import make_sparse_coding
    >>> X, codes, D = make_sparse_coding(10, 16, 32, 3, random_state=0)
    >>> X.shape, codes.shape, D.shape
    ((10, 16), (10, 32), (32, 16))
    >>> int((codes != 0).sum(axis=1).max())
    3
    """
    n_samples = _check_positive_int(n_samples, "n_samples")
    n_features = _check_positive_int(n_features, "n_features")
    n_components = _check_positive_int(n_components, "n_components")
    n_nonzero = _check_positive_int(n_nonzero, "n_nonzero", minimum=0)
    if n_nonzero > n_components:
        raise ValueError(
            f"n_nonzero={n_nonzero} cannot exceed n_components={n_components}."
        )
    if not noise >= 0:
        raise ValueError(f"noise must be non-negative, got {noise}.")
    rng = check_random_state(random_state)
    dictionary = rng.standard_normal((n_components, n_features))
    dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)
    codes = np.zeros((n_samples, n_components))
    # n_nonzero distinct positions per row: the first columns of a random
    # permutation of each row
    support = np.argsort(rng.random((n_samples, n_components)), axis=1)[:, :n_nonzero]
    values = rng.standard_normal((n_samples, n_nonzero))
    np.put_along_axis(codes, support, values, axis=1)
    X = codes @ dictionary + noise * rng.standard_normal((n_samples, n_features))
    return X, codes, dictionary
