"""Quality metrics shared by the benchmarks, the tests and ``score``."""

import numpy as np

__all__ = [
    "bit_error_rate",
    "ber_scorer",
    "detection_counts",
    "detection_roc",
    "find_peaks",
    "nmse_db",
    "psnr",
    "snr_at",
    "ser_scorer",
    "symbol_error_rate",
]


def _float_pair(reference, estimate):
    """``reference`` and ``estimate`` as float64 arrays of one shape."""
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.shape != estimate.shape:
        raise ValueError(
            f"reference and estimate shapes differ: {reference.shape} and "
            f"{estimate.shape}."
        )
    return reference, estimate


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
        The error energy relative to the reference's, in dB.

    Examples
    --------
    >>> from sklearn_mbdl.metrics import nmse_db
    >>> round(nmse_db([1.0, 0.0], [1.1, 0.0]), 2)
    -20.0
    """
    reference, estimate = _float_pair(reference, estimate)
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
    reference, estimate = _float_pair(reference, estimate)
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
        The fraction of wrong symbols, in [0, 1] (weighted by the samples'
        weights when given).

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
        Transmitted symbols, values of ``alphabet``.
    y_pred : array-like of the same shape
        Detected symbols, values of ``alphabet``.
    alphabet : array-like, optional
        The sorted alphabet; by default the values found in ``y_true`` and
        ``y_pred``.
    sample_weight : array-like of shape (n_samples,), optional

    Returns
    -------
    float
        The fraction of wrong bits, in [0, 1].

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


# ----- exoplanet detection ---------------------------------------------------
def _check_map(image, name="image"):
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"{name} must be a 2-D map, got shape {image.shape}.")
    if not np.all(np.isfinite(image)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return image


def _aperture_sums(image, centres, radius):
    """Sums of ``image`` over discs of ``radius`` (pixel coverage approximated
    linearly over the disc's edge) at ``centres`` ``(n, 2)`` as ``(x, y)``."""
    h, w = image.shape
    yy, xx = np.mgrid[:h, :w]
    sums = []
    for x, y in centres:
        d = np.hypot(xx - x, yy - y)
        weight = np.clip(radius + 0.5 - d, 0.0, 1.0)
        sums.append(float((weight * image).sum()))
    return np.array(sums)


def snr_at(image, position, fwhm):
    """Signal-to-noise ratio at a position with small-sample statistics.

    Mawet et al. (2014): the flux in an aperture of diameter ``fwhm`` at
    ``position`` is compared with the ``n2`` apertures that fit on the same
    annulus (one FWHM apart, the two neighbours of the tested one left out),
    with Student's two-sample correction::

        S/N = (f1 - mean(f2)) / (std(f2, ddof=1) * sqrt(1 + 1 / n2))

    The star is at the image centre ``((w - 1) / 2, (h - 1) / 2)``.

    Parameters
    ----------
    image : array-like of shape (h, w)
        A residual or flux map (derotated).
    position : (float, float)
        ``(x, y)``: column and row of the tested point.
    fwhm : float
        Aperture diameter, in pixels.

    Returns
    -------
    float
        The S/N; ``inf`` when the reference apertures all hold the same flux.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mbdl.metrics import snr_at
    >>> rng = np.random.RandomState(0)
    >>> image = rng.standard_normal((64, 64))
    >>> image[31, 48] += 40.0
    >>> snr_at(image, (48, 31), 4.0) > 5
    True
    """
    image = _check_map(image)
    if isinstance(fwhm, bool) or not np.isscalar(fwhm) or not fwhm > 0:
        raise ValueError(f"fwhm must be a positive number, got {fwhm!r}.")
    h, w = image.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    x, y = (float(v) for v in position)
    sep = np.hypot(x - cx, y - cy)
    n_apertures = int(np.floor(2 * np.pi * sep / fwhm))
    if n_apertures < 4:
        raise ValueError(
            f"position {position} is {sep:.1f} pixels from the centre: too close "
            f"for the small-sample S/N (fewer than 4 apertures of {fwhm} pixels).")
    theta0 = np.arctan2(y - cy, x - cx)
    theta = theta0 + 2 * np.pi * np.arange(n_apertures) / n_apertures
    centres = np.stack([cx + sep * np.cos(theta), cy + sep * np.sin(theta)], 1)
    sums = _aperture_sums(image, centres, fwhm / 2)
    signal, noise = sums[0], sums[2:-1]     # neighbours may hold the wings
    if noise.size < 2:
        noise = sums[1:]
    spread = noise.std(ddof=1) * np.sqrt(1 + 1 / noise.size)
    return float((signal - noise.mean()) / spread) if spread > 0 else np.inf


def find_peaks(detection_map, threshold, *, min_distance=2):
    """Local maxima of a detection map above a threshold.

    Parameters
    ----------
    detection_map : array-like of shape (h, w)
    threshold : float
    min_distance : int, default=2
        A peak is the maximum of the ``(2 min_distance + 1)`` square around it.

    Returns
    -------
    peaks : ndarray of shape (n_peaks, 3)
        ``(x, y, value)`` rows, brightest first.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mbdl.metrics import find_peaks
    >>> image = np.zeros((9, 9)); image[2, 6] = 7.0; image[6, 3] = 4.0
    >>> find_peaks(image, 5.0)
    array([[6., 2., 7.]])
    """
    from scipy.ndimage import maximum_filter

    detection_map = _check_map(detection_map, "detection_map")
    local_max = maximum_filter(detection_map, size=2 * int(min_distance) + 1,
                               mode="constant", cval=-np.inf)
    rows, cols = np.nonzero((detection_map == local_max) & (detection_map > threshold))
    values = detection_map[rows, cols]
    order = np.argsort(-values, kind="stable")
    return np.stack([cols[order], rows[order], values[order]], 1).astype(float)


def detection_counts(detection_map, planets_xy, threshold, *, fwhm):
    """True and false detections of a map at a threshold.

    The peaks above ``threshold`` (:func:`find_peaks`) within ``fwhm`` of an
    injected planet count as that planet's detection (once per planet);
    every other peak is a false discovery.

    Parameters
    ----------
    detection_map : array-like of shape (h, w)
    planets_xy : array-like of shape (n_planets, 2)
        ``(x, y)`` of the injected planets (may be empty).
    threshold : float
    fwhm : float

    Returns
    -------
    n_true : int
        Planets detected.
    n_false : int
        Peaks above the threshold not on any planet.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mbdl.metrics import detection_counts
    >>> image = np.zeros((9, 9)); image[2, 6] = 7.0; image[6, 3] = 6.0
    >>> detection_counts(image, [(6.0, 2.0)], 5.0, fwhm=2.0)
    (1, 1)
    """
    planets_xy = np.asarray(planets_xy, dtype=float).reshape(-1, 2)
    peaks = find_peaks(detection_map, threshold, min_distance=max(int(fwhm // 2), 1))
    found = np.zeros(len(planets_xy), dtype=bool)
    n_false = 0
    for x, y, _ in peaks:
        d = np.hypot(planets_xy[:, 0] - x, planets_xy[:, 1] - y) if len(planets_xy) \
            else np.array([])
        if d.size and d.min() <= fwhm:
            found[np.argmin(d)] = True
        else:
            n_false += 1
    return int(found.sum()), int(n_false)


def detection_roc(detection_maps, planets_xy, thresholds, *, fwhm):
    """Detections against false discoveries over thresholds, for many maps.

    Parameters
    ----------
    detection_maps : sequence of array-like of shape (h, w)
    planets_xy : sequence of array-like of shape (n_planets, 2)
        Injected planets of each map.
    thresholds : array-like of shape (n_thresholds,)
    fwhm : float

    Returns
    -------
    tpr : ndarray of shape (n_thresholds,)
        Share of the injected planets detected.
    false_discoveries : ndarray of shape (n_thresholds,)
        Total false detections over all maps.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mbdl.metrics import detection_roc
    >>> image = np.zeros((9, 9)); image[2, 6] = 7.0; image[6, 3] = 6.0
    >>> detection_roc([image], [[(6.0, 2.0)]], [5.0, 6.5], fwhm=2.0)
    (array([1., 1.]), array([1, 0]))
    """
    if len(detection_maps) != len(planets_xy):
        raise ValueError(
            f"{len(detection_maps)} detection maps but {len(planets_xy)} planet lists.")
    thresholds = np.asarray(thresholds, dtype=float).ravel()
    n_planets = sum(len(np.asarray(p).reshape(-1, 2)) for p in planets_xy)
    tpr = np.zeros(thresholds.size)
    false = np.zeros(thresholds.size, dtype=int)
    for i, threshold in enumerate(thresholds):
        for image, planets in zip(detection_maps, planets_xy):
            n_true, n_false = detection_counts(image, planets, threshold, fwhm=fwhm)
            tpr[i] += n_true
            false[i] += n_false
    return tpr / max(n_planets, 1), false
