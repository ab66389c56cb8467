"""Quality metrics shared by the benchmarks, the tests and ``score``."""

import numpy as np

__all__ = ["nmse_db"]


def nmse_db(reference, estimate):
    """Normalised mean squared error in decibels.

    ``10 log10( sum ||estimate - reference||^2 / sum ||reference||^2 )``
    over all entries: lower is better, -20 dB means an error of 1% of the
    reference's energy.

    Parameters
    ----------
    reference : array-like
        The ground truth (e.g. the exact lasso codes).
    estimate : array-like of the same shape
        The estimate.

    Returns
    -------
    float

    Examples
    --------
    >>> from sklearn_mbdl.metrics import nmse_db
    >>> round(nmse_db([1.0, 0.0], [1.1, 0.0]), 2)
    -20.0
    """
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.shape != estimate.shape:
        raise ValueError(
            f"reference and estimate shapes differ: {reference.shape} and "
            f"{estimate.shape}."
        )
    energy = np.sum(reference ** 2)
    if energy == 0:
        raise ValueError("nmse_db is undefined for an all-zero reference.")
    return float(10.0 * np.log10(np.sum((estimate - reference) ** 2) / energy))
