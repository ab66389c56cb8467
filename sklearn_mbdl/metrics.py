"""Quality metrics shared by the benchmarks, the tests and ``score``."""

import numpy as np

__all__ = ["nmse_db", "psnr"]


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


def psnr(reference, estimate, *, data_range=None, per_image=False):
    """Peak signal-to-noise ratio in decibels.

    ``10 log10(data_range^2 / MSE)``: higher is better.

    Parameters
    ----------
    reference : array-like
        The ground truth: one image, or a batch of images (or rows) along
        the first axis.
    estimate : array-like of the same shape
        The estimate.
    data_range : float, optional
        The peak signal. By default the range of ``reference``
        (``max - min``), over all of it, or over each image when
        ``per_image=True``; pass ``1.0`` for images known to lie in [0, 1].
    per_image : bool, default=False
        Return one PSNR per entry of the first axis instead of one over
        everything.

    Returns
    -------
    float or ndarray of shape (n_images,)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mbdl.metrics import psnr
    >>> round(psnr(np.zeros(4), np.full(4, 0.1), data_range=1.0), 2)
    20.0
    """
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.shape != estimate.shape:
        raise ValueError(
            f"reference and estimate shapes differ: {reference.shape} and "
            f"{estimate.shape}."
        )
    if not (np.all(np.isfinite(reference)) and np.all(np.isfinite(estimate))):
        raise ValueError("psnr needs finite inputs; found NaN or infinity.")
    if per_image:
        if reference.ndim < 2:
            raise ValueError("per_image=True needs a batch along the first axis.")
        ref = reference.reshape(len(reference), -1)
        est = estimate.reshape(len(estimate), -1)
        mse = np.mean((ref - est) ** 2, axis=1)
        peak = (np.ptp(ref, axis=1) if data_range is None
                else np.full(len(ref), float(data_range)))
    else:
        mse = np.mean((reference - estimate) ** 2)
        peak = np.ptp(reference) if data_range is None else float(data_range)
    if np.any(np.asarray(peak) <= 0):
        raise ValueError("psnr needs a positive data_range (the reference is constant).")
    with np.errstate(divide="ignore"):
        out = 10.0 * np.log10(np.asarray(peak) ** 2 / np.asarray(mse))
    return out if per_image else float(out)
