"""Quality metrics shared by the benchmarks, the tests and ``score``."""

import numpy as np

__all__ = [
    "bit_error_rate",
    "ber_scorer",
    "nmse_db",
    "psnr",
    "ser_scorer",
    "symbol_error_rate",
]


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


def _symbol_pair(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred shapes differ: {y_true.shape} and {y_pred.shape}."
        )
    if y_true.size == 0:
        raise ValueError("y_true is empty.")
    return y_true.reshape(len(y_true), -1), y_pred.reshape(len(y_pred), -1)


def _weighted_mean(values, sample_weight):
    if sample_weight is None:
        return float(np.mean(values))
    weight = np.asarray(sample_weight, dtype=np.float64)
    if weight.shape != (values.shape[0],):
        raise ValueError(
            f"sample_weight must have shape ({values.shape[0]},), got {weight.shape}."
        )
    return float(np.average(values.mean(axis=1), weights=weight))


def symbol_error_rate(y_true, y_pred, *, sample_weight=None):
    """Share of symbols detected wrongly, over all users and samples.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_tx)
        Transmitted symbols.
    y_pred : array-like of the same shape
        Detected symbols.
    sample_weight : array-like of shape (n_samples,), optional

    Returns
    -------
    float

    Examples
    --------
    >>> from sklearn_mbdl.metrics import symbol_error_rate
    >>> symbol_error_rate([[1, -1], [1, 1]], [[1, 1], [1, 1]])
    0.25
    """
    y_true, y_pred = _symbol_pair(y_true, y_pred)
    return _weighted_mean(y_true != y_pred, sample_weight)


def bit_error_rate(y_true, y_pred, *, alphabet=None, sample_weight=None):
    """Share of bits detected wrongly, with Gray-coded symbols.

    Each symbol of an alphabet of ``M`` sorted values carries
    ``ceil(log2 M)`` bits, Gray-coded so that neighbours differ by one bit
    (the usual mapping of PAM and of each real dimension of square QAM).
    For two symbols (BPSK, or QPSK in its real decomposition) it equals the
    symbol error rate.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_tx)
        Transmitted symbols.
    y_pred : array-like of the same shape
        Detected symbols.
    alphabet : array-like, optional
        The sorted alphabet; by default the values found in ``y_true`` and
        ``y_pred``.
    sample_weight : array-like of shape (n_samples,), optional

    Returns
    -------
    float

    Examples
    --------
    >>> from sklearn_mbdl.metrics import bit_error_rate
    >>> # -3 -> 00, -1 -> 01, 1 -> 11, 3 -> 10: one symbol of four, one bit of eight
    >>> bit_error_rate([[-3, 1], [3, -1]], [[-1, 1], [3, -1]])
    0.125
    """
    y_true, y_pred = _symbol_pair(y_true, y_pred)
    if alphabet is None:
        alphabet = np.union1d(np.unique(y_true), np.unique(y_pred))
    alphabet = np.asarray(alphabet)
    missing = np.setdiff1d(np.union1d(np.unique(y_true), np.unique(y_pred)), alphabet)
    if missing.size:
        raise ValueError(f"symbols {missing.tolist()} are not in the alphabet.")
    n_bits = max(int(np.ceil(np.log2(len(alphabet)))), 1)
    index_true = np.searchsorted(alphabet, y_true)
    index_pred = np.searchsorted(alphabet, y_pred)
    diff = (index_true ^ (index_true >> 1)) ^ (index_pred ^ (index_pred >> 1))
    errors = np.zeros(diff.shape)
    for bit in range(n_bits):
        errors += (diff >> bit) & 1
    return _weighted_mean(errors / n_bits, sample_weight)


def _scorer(metric):
    from sklearn.metrics import make_scorer

    return make_scorer(metric, greater_is_better=False)


#: scikit-learn scorer of :func:`symbol_error_rate` (negated: higher is better).
ser_scorer = _scorer(symbol_error_rate)
#: scikit-learn scorer of :func:`bit_error_rate` (negated: higher is better).
ber_scorer = _scorer(bit_error_rate)
