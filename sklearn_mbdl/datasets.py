"""Problem generators: ``make_*`` functions, one per method.

Everything is simulated or taken from the images bundled with installed
packages; nothing is downloaded. This module checks the arguments and
documents the generators; each simulation lives beside its method, where
the estimator draws from it too: ``burst._simulate`` (bursts),
``operators._observe`` (degraded images), ``detnet._simulate`` (MIMO),
``exoplanet._simulate`` and ``exoplanet._optics`` (ADI cubes).
"""

import numbers

import numpy as np
from sklearn.utils import check_random_state

from .burst._simulate import draw_bursts
from .detnet._simulate import constellation, simulate_mimo
from .exoplanet._simulate import simulate_adi
from .operators import Identity
from .operators._observe import observe

__all__ = [
    "TEST_IMAGES",
    "TRAIN_IMAGES",
    "extract_patches",
    "load_images",
    "make_adi_cube",
    "make_bursts",
    "make_dead_leaves",
    "make_degraded_images",
    "make_mimo",
    "make_physical_adi_cube",
    "make_poisson_images",
    "make_sparse_coding",
    "mimo_constellation",
]

#: Bundled scikit-image pictures the learned image models train on.
TRAIN_IMAGES = (
    "rocket", "motorcycle_left", "motorcycle_right", "brick", "grass", "gravel",
    "hubble_deep_field", "immunohistochemistry", "retina", "cell",
    "microaneurysms", "page", "text", "clock",
)
#: Bundled scikit-image pictures kept for testing: never used in training.
TEST_IMAGES = ("camera", "astronaut", "coins", "moon", "chelsea", "coffee")


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


def _bundled_image(name):
    from skimage import data
    from skimage.color import rgb2gray
    from skimage.util import img_as_float

    if name in ("motorcycle_left", "motorcycle_right"):
        image = data.stereo_motorcycle()[0 if name.endswith("left") else 1]
    elif name == "phantom":
        image = data.shepp_logan_phantom()
    else:
        image = getattr(data, name)()
    image = img_as_float(image)
    if image.ndim == 3:
        image = rgb2gray(image[..., :3])
    return np.clip(image.astype(np.float64), 0.0, 1.0)


def load_images(names="test"):
    """Grey images in [0, 1] from the pictures bundled with scikit-image.

    Nothing is downloaded: only pictures shipped inside the scikit-image
    wheel are used. Colour pictures are converted to grey.

    Parameters
    ----------
    names : {"train", "test"} or sequence of str, default="test"
        ``"train"`` gives :data:`TRAIN_IMAGES`, ``"test"`` gives
        :data:`TEST_IMAGES` (the two never overlap); or a list of names of
        ``skimage.data`` pictures, plus ``"motorcycle_left"``,
        ``"motorcycle_right"`` and ``"phantom"`` (Shepp-Logan).

    Returns
    -------
    images : dict of str to ndarray
        Float64 arrays in [0, 1], each of its own shape ``(h, w)``.

    Examples
    --------
    >>> from sklearn_mbdl.datasets import load_images
    >>> images = load_images(["camera"])
    >>> images["camera"].shape
    (512, 512)
    """
    if isinstance(names, str):
        if names not in ("train", "test"):
            raise ValueError(
                f"names must be 'train', 'test' or a list of picture names, "
                f"got {names!r}."
            )
        names = TRAIN_IMAGES if names == "train" else TEST_IMAGES
    images = {}
    for name in names:
        try:
            images[name] = _bundled_image(name)
        except AttributeError:
            raise ValueError(f"scikit-image bundles no picture named {name!r}.") from None
    return images


def extract_patches(images, n_patches, patch_size, *, random_state=None):
    """Square patches drawn uniformly at random from a set of images.

    Each patch comes from an image drawn with probability proportional to
    its number of possible patch positions, so large pictures contribute
    more, and every position is equally likely.

    Parameters
    ----------
    images : dict of str to ndarray, or sequence of 2-D arrays
        Grey images, e.g. the output of :func:`load_images`.
    n_patches : int
        Number of patches.
    patch_size : int
        Side of the square patches, in pixels.
    random_state : int, RandomState instance or None, default=None
        Seed of the draw.

    Returns
    -------
    patches : ndarray of shape (n_patches, patch_size, patch_size)

    Examples
    --------
    >>> from sklearn_mbdl.datasets import extract_patches, load_images
    >>> patches = extract_patches(load_images(["camera"]), 5, 32, random_state=0)
    >>> patches.shape
    (5, 32, 32)
    """
    n_patches = _check_positive_int(n_patches, "n_patches")
    patch_size = _check_positive_int(patch_size, "patch_size")
    if isinstance(images, dict):
        images = list(images.values())
    images = [np.asarray(image, dtype=np.float64) for image in images]
    if not images or any(image.ndim != 2 for image in images):
        raise ValueError("images must be a non-empty collection of 2-D arrays.")
    positions = np.array([max(image.shape[0] - patch_size + 1, 0)
                          * max(image.shape[1] - patch_size + 1, 0)
                          for image in images], dtype=np.float64)
    if positions.sum() == 0:
        raise ValueError(
            f"patch_size={patch_size} is larger than every image "
            f"(largest {max(image.shape for image in images)})."
        )
    rng = check_random_state(random_state)
    which = rng.choice(len(images), size=n_patches, p=positions / positions.sum())
    patches = np.empty((n_patches, patch_size, patch_size))
    for i, k in enumerate(which):
        h, w = images[k].shape
        top = rng.randint(h - patch_size + 1)
        left = rng.randint(w - patch_size + 1)
        patches[i] = images[k][top:top + patch_size, left:left + patch_size]
    return patches


def make_dead_leaves(n_samples, *, size=48, radius_range=(1.5, 40.0), supersample=3,
                     random_state=None):
    """Synthetic "dead leaves" pictures: opaque discs of random grey levels.

    Discs fall one under another (each new disc fills only what is still
    uncovered) until the picture is covered; their radii follow the density
    ``r^-3`` between the two bounds of ``radius_range``, which makes the
    pictures scale invariant, with sharp edges at every scale, as natural
    images have (Lee, Mumford & Huang 2001). They are drawn ``supersample``
    times larger and box-averaged down, so that their edges are
    anti-aliased like a camera's. Training denoisers on them is studied by
    Achddou et al. (2021); here a quarter of the PnP denoiser's fine-tuning
    patches are dead leaves (``benchmarks/pnp.py --dead-leaves 0.25``).

    Parameters
    ----------
    n_samples : int
        Number of pictures.
    size : int, default=48
        Side of the square pictures, in pixels (they are drawn at
        ``size * supersample``).
    radius_range : tuple of two floats, default=(1.5, 40.0)
        Smallest and largest disc radius, in pixels.
    supersample : int, default=3
        Drawing resolution over the output's.
    random_state : int, RandomState instance or None, default=None
        Seed of the discs.

    Returns
    -------
    images : ndarray of shape (n_samples, size, size)
        Float64 pictures in [0, 1].

    Examples
    --------
    >>> from sklearn_mbdl.datasets import make_dead_leaves
    >>> leaves = make_dead_leaves(2, size=16, random_state=0)
    >>> leaves.shape, bool(leaves.min() >= 0 and leaves.max() <= 1)
    ((2, 16, 16), True)
    """
    n_samples = _check_positive_int(n_samples, "n_samples")
    size = _check_positive_int(size, "size")
    supersample = _check_positive_int(supersample, "supersample")
    try:
        r_min, r_max = (float(r) for r in radius_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"radius_range must be two numbers, got {radius_range!r}.") from None
    if not 0 < r_min < r_max < np.inf:
        raise ValueError(
            f"radius_range must satisfy 0 < low < high, got {radius_range!r}.")
    rng = check_random_state(random_state)
    big = size * supersample
    r_min, r_max = r_min * supersample, r_max * supersample
    images = np.empty((n_samples, size, size))
    for i in range(n_samples):
        canvas = np.full((big, big), np.nan)
        uncovered = big * big
        while uncovered > 0.001 * big * big:
            # inverse of the cumulative distribution of the density r^-3
            u = rng.rand()
            r = 1 / np.sqrt(1 / r_min**2 - u * (1 / r_min**2 - 1 / r_max**2))
            cy, cx = rng.uniform(-r, big + r, 2)
            y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, big)
            x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, big)
            if y0 >= y1 or x0 >= x1:
                continue
            yy, xx = np.ogrid[y0:y1, x0:x1]
            window = canvas[y0:y1, x0:x1]
            disc = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) & np.isnan(window)
            window[disc] = rng.rand()
            uncovered -= disc.sum()
        canvas[np.isnan(canvas)] = rng.rand()  # the last specks: one grey
        images[i] = canvas.reshape(size, supersample, size,
                                   supersample).mean(axis=(1, 3))
    return images


def mimo_constellation(modulation):
    """The real alphabet of a modulation and whether it is complex.

    Parameters
    ----------
    modulation : {"bpsk", "qpsk", "16qam"}

    Returns
    -------
    points : ndarray
        The values one real dimension takes: ``[-1, 1]`` for BPSK and
        QPSK, ``[-3, -1, 1, 3]`` for 16-QAM.
    is_complex : bool
        Complex modulations use the real decomposition, which doubles both
        dimensions.

    Examples
    --------
    >>> from sklearn_mbdl.datasets import mimo_constellation
    >>> mimo_constellation("16qam")
    (array([-3., -1.,  1.,  3.]), True)
    """
    return constellation(modulation)


def _snr_range(snr_db):
    if isinstance(snr_db, numbers.Real) and not isinstance(snr_db, bool):
        low = high = float(snr_db)
    else:
        try:
            low, high = (float(v) for v in snr_db)
        except (TypeError, ValueError):
            raise ValueError(
                f"snr_db must be a number or a (low, high) pair, got {snr_db!r}."
            ) from None
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(
            f"snr_db must be finite (an infinite SNR is a zero noise level and "
            f"an SNR of -inf an infinite one), got {snr_db!r}."
        )
    if low > high:
        raise ValueError(f"snr_db range must have low <= high, got {snr_db!r}.")
    return low, high


def make_mimo(n_samples=1000, n_tx=30, n_rx=60, *, snr_db=10.0, modulation="bpsk",
              channel="iid", random_state=None):
    """Symbols sent by ``n_tx`` users and received on ``n_rx`` antennas.

    The real-valued linear model of MIMO detection, ``x = H s + w``: each
    user sends a symbol drawn uniformly from the alphabet, ``H`` has
    standard Gaussian entries (complex Gaussian for complex modulations)
    and ``w`` is white Gaussian noise of variance
    ``sigma^2 = E_s ||H||_F^2 / (n_tx SNR)`` per entry, the convention of
    the DetNet paper's code (``E_s``, the mean energy of one real symbol,
    is 1 for BPSK and QPSK, so their SNR matches the paper's).

    Complex modulations enter through the usual real decomposition: a
    complex ``n_rx x n_tx`` channel becomes the real
    ``2 n_rx x 2 n_tx`` matrix ``[[Re H, -Im H], [Im H, Re H]]``, the
    symbols ``[Re s, Im s]`` and the observations ``[Re x, Im x]``.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of transmissions (rows of ``X``).
    n_tx : int, default=30
        Number of users (complex ones for QPSK and 16-QAM).
    n_rx : int, default=60
        Number of receive antennas (complex ones for QPSK and 16-QAM).
    snr_db : float or (float, float), default=10.0
        Signal-to-noise ratio in dB, or a range from which each sample
        draws its own uniformly (in dB).
    modulation : {"bpsk", "qpsk", "16qam"}, default="bpsk"
        The constellation; see :func:`mimo_constellation`.
    channel : {"iid", "fixed"} or array-like, default="iid"
        ``"iid"`` draws a new channel per sample, ``"fixed"`` one channel
        for all samples; or the channel itself, one real matrix of shape
        ``(n_rx, n_tx)`` of the real model or one per sample, or a complex
        ``(n_rx, n_tx)`` matrix for complex modulations.
    random_state : int, RandomState instance or None, default=None
        Seed of the symbols, channels and noise.

    Returns
    -------
    X : ndarray of shape (n_samples, n_rx) or (n_samples, 2 n_rx)
        Received signals.
    y : ndarray of shape (n_samples, n_tx) or (n_samples, 2 n_tx) of int
        The transmitted symbols (their values: -1 and 1, or -3, -1, 1, 3),
        the labels of a detector.
    H : ndarray of shape (n_samples, n_rx, n_tx) or (n_rx, n_tx)
        The channels of the real model (one per sample for ``"iid"``).

    Examples
    --------
    >>> from sklearn_mbdl.datasets import make_mimo
    >>> X, y, H = make_mimo(100, n_tx=4, n_rx=8, random_state=0)
    >>> X.shape, y.shape, H.shape
    ((100, 8), (100, 4), (100, 8, 4))
    """
    n_samples = _check_positive_int(n_samples, "n_samples")
    n_tx = _check_positive_int(n_tx, "n_tx")
    n_rx = _check_positive_int(n_rx, "n_rx")
    low, high = _snr_range(snr_db)
    mimo_constellation(modulation)          # checks the name
    return simulate_mimo(check_random_state(random_state), n_samples, n_tx, n_rx,
                         snr_range=(low, high), modulation=modulation, channel=channel)


def make_degraded_images(operator, n_samples, *, patch_size=64, noise_level=0.01,
                         images="test", random_state=None):
    """Clean image patches and their noisy observations through an operator.

    Patches of the bundled scikit-image pictures (:func:`load_images`,
    :func:`extract_patches`) are observed as
    ``operator(x) + noise_level * N(0, I)``.

    Parameters
    ----------
    operator : ImageOperator or None
        The forward model (see :mod:`sklearn_mbdl.operators`); ``None`` is the
        identity (denoising). An operator with a mask fixes the patch size
        (``patch_size`` must match it).
    n_samples : int
        Number of patches.
    patch_size : int, default=64
        Side of the square patches.
    noise_level : float, default=0.01
        Standard deviation of the Gaussian noise (images in [0, 1]).
    images : {"train", "test"} or sequence of str, default="test"
        The pictures the patches come from (see :func:`load_images`).
    random_state : int, RandomState instance or None, default=None
        Seed of the patch positions and of the noise.

    Returns
    -------
    observed : ndarray of shape (n_samples, ...)
        E.g. ``(n, h, w)`` for a blur, ``(n, 2, h, w)`` for subsampled
        Fourier data.
    clean : ndarray of shape (n_samples, patch_size, patch_size)

    Examples
    --------
    >>> from sklearn_mbdl.datasets import make_degraded_images
    >>> from sklearn_mbdl.operators import GaussianBlur
    >>> Y, X = make_degraded_images(GaussianBlur(1.6, 25), 3, patch_size=32,
    ...                             random_state=0)
    >>> Y.shape, X.shape
    ((3, 32, 32), (3, 32, 32))
    """
    from ._base import check_number

    n_samples = _check_positive_int(n_samples, "n_samples")
    patch_size = _check_positive_int(patch_size, "patch_size")
    check_number(noise_level, "noise_level", min_val=0)
    operator = Identity() if operator is None else operator
    if not callable(getattr(operator, "forward", None)):
        raise ValueError(f"operator must be an operator with a forward method, got {operator!r}.")
    check = getattr(operator, "check_image_shape", None)
    if check is not None:
        check((patch_size, patch_size))
    rng = check_random_state(random_state)
    clean = extract_patches(load_images(images), n_samples, patch_size,
                            random_state=rng)
    return observe(operator, clean, noise_level, rng), clean


def make_bursts(images, *, scale=2, n_frames=8, max_shift=2.0, noise_level=0.01,
                motion="translation", max_rotation=1.0, blur_sigma=0.4,
                shot_noise=0.0, random_state=None):
    """Bursts of shifted, blurred, pixel-integrated, noisy frames of clean
    images.

    The formation model of burst super-resolution,
    ``y_k = S B W_{p_k} x + e_k`` (see
    :class:`~sklearn_mbdl.operators.BurstOperator`): frame 0 is the
    reference (no motion); the others are moved by random translations
    uniform within ``max_shift`` low-resolution pixels (and rotations within
    ``max_rotation`` degrees for ``motion="euclidean"``), warped by bicubic
    interpolation with replicated borders, blurred by a Gaussian of
    ``blur_sigma`` low-resolution pixels (the optics) and integrated over
    ``scale x scale`` pixels (the sensor; the pixel-centre grid of
    scikit-image's ``downscale_local_mean``). The noise ``e_k`` has variance
    ``shot_noise * value + noise_level ** 2`` (shot and read noise).

    Parameters
    ----------
    images : array-like of shape (n_images, H, W) or (H, W)
        Clean grey images in [0, 1], e.g. from :func:`load_images` or
        :func:`extract_patches`; sides are cropped to multiples of ``scale``.
    scale : int, default=2
    n_frames : int, default=8
    max_shift : float, default=2.0
    noise_level : float, default=0.01
    motion : {"translation", "euclidean"}, default="translation"
    max_rotation : float, default=1.0
        Degrees, for ``motion="euclidean"``.
    blur_sigma : float, default=0.4
        Low-resolution pixels.
    shot_noise : float, default=0.0
        Shot-noise variance per unit of signal (photon noise; 1e-4 to 1e-2
        for real cameras).
    random_state : int, RandomState instance or None, default=None
        Seed of the motions and the noise.

    Returns
    -------
    bursts : ndarray of shape (n_images, n_frames, H // scale, W // scale)
    high_res : ndarray of shape (n_images, H', W')
        The images (cropped to multiples of ``scale``).
    motions : ndarray of shape (n_images, n_frames, k)
        True motions in low-resolution units (see
        :func:`sklearn_mbdl.burst.estimate_motion`).

    Examples
    --------
    >>> from sklearn_mbdl.datasets import load_images, make_bursts
    >>> image = load_images(["camera"])["camera"][:64, :64]
    >>> bursts, high_res, motions = make_bursts(image, random_state=0)
    >>> bursts.shape, high_res.shape, motions.shape
    ((1, 8, 32, 32), (1, 64, 64), (1, 8, 2))
    """
    from ._base import check_number, check_options

    scale = _check_positive_int(scale, "scale")
    n_frames = _check_positive_int(n_frames, "n_frames")
    check_number(max_shift, "max_shift", min_val=0)
    check_number(noise_level, "noise_level", min_val=0)
    check_options(motion, "motion", {"translation", "euclidean"})
    check_number(max_rotation, "max_rotation", min_val=0)
    check_number(blur_sigma, "blur_sigma", min_val=0)
    check_number(shot_noise, "shot_noise", min_val=0)
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.size == 0:
        raise ValueError(
            f"images must have shape (n_images, H, W) or (H, W), got {images.shape}.")
    if not np.all(np.isfinite(images)):
        raise ValueError("images contain NaN or infinity.")
    H, W = (s - s % scale for s in images.shape[1:])
    if min(H, W) < scale:
        raise ValueError(
            f"images of shape {images.shape[1:]} are smaller than scale={scale}.")
    high_res = images[:, :H, :W]
    # one fixed camera: Gaussian read noise of noise_level, no drawn levels
    bursts, motions = draw_bursts(
        check_random_state(random_state), high_res, n_frames=n_frames, scale=scale,
        model=motion, max_shift=max_shift, max_rotation=max_rotation,
        blur_sigma=blur_sigma, noise_level=noise_level, shot_noise=shot_noise,
        read_noise=0.0, signals=False)
    return bursts, high_res, motions


def make_poisson_images(n_samples, *, patch_size=64, peak=4, images="train",
                        random_state=None):
    """Photon-limited image patches: Poisson counts at a given peak intensity.

    Each source picture is scaled so that its maximum is 1 (the scaling
    ``Q = max(image) / peak`` of Poisson-denoising papers), square patches
    are drawn from them (:func:`extract_patches`), and every pixel becomes a
    Poisson count of mean ``peak * clean``: at ``peak=1`` the brightest
    pixels receive one photon on average. ``noisy / peak`` is the
    maximum-likelihood estimate of ``clean``.

    Parameters
    ----------
    n_samples : int
        Number of patches.
    patch_size : int, default=64
        Side of the square patches, in pixels; pictures smaller than that
        are not cut from.
    peak : float, default=4
        Mean count of the brightest pixel of each source picture.
    images : {"train", "test"} or sequence of str, default="train"
        The pictures to cut from, as in :func:`load_images`: ``"train"``
        (:data:`TRAIN_IMAGES`) to train a denoiser, ``"test"``
        (:data:`TEST_IMAGES`, never used for training) to evaluate it.
    random_state : int, RandomState instance or None, default=None
        Seed of the patch positions and of the noise.

    Returns
    -------
    noisy : ndarray of shape (n_samples, patch_size, patch_size)
        Poisson counts (non-negative integers, as float64).
    clean : ndarray of shape (n_samples, patch_size, patch_size)
        The noiseless patches, in [0, 1].

    Examples
    --------
    >>> from sklearn_mbdl.datasets import make_poisson_images
    >>> noisy, clean = make_poisson_images(3, patch_size=16, peak=2, random_state=0)
    >>> noisy.shape, clean.shape
    ((3, 16, 16), (3, 16, 16))
    >>> bool((noisy == noisy.round()).all()), float(clean.max()) <= 1.0
    (True, True)
    """
    n_samples = _check_positive_int(n_samples, "n_samples")
    if isinstance(peak, bool) or not isinstance(peak, numbers.Real) \
            or not np.isfinite(peak) or peak <= 0:
        raise ValueError(f"peak must be a positive number, got {peak!r}.")
    rng = check_random_state(random_state)
    pictures = {name: image / image.max()
                for name, image in load_images(images).items() if image.max() > 0}
    clean = extract_patches(pictures, n_samples, patch_size, random_state=rng)
    noisy = rng.poisson(peak * clean).astype(np.float64)
    return noisy, clean


def make_adi_cube(n_frames=48, image_size=64, *, rotation_range=60.0, n_planets=3,
                  contrast=3.0, fwhm=4.0, speckle_decorrelation=0.3,
                  random_state=None, return_components=False):
    """An angular differential imaging (ADI) sequence with faint companions.

    The star light goes through an ideal coronagraph: the pupil field
    ``P exp(i phi_k)`` of frame ``k`` loses its coherent (mean) part and is
    propagated to the focal plane by an FFT, giving speckles. The pupil
    phase ``phi_k`` is a fixed aberration (quasi-static speckles) plus a
    part that evolves slowly along the sequence (a rotation between two
    random phase screens) and a small part that changes from frame to frame;
    ``speckle_decorrelation`` is the share of the aberration that evolves.
    The images receive photon (Poisson) and read (Gaussian) noise. The
    companions sit at fixed positions on the sky. The angles follow
    vip-hci's convention: frame ``k`` sees the sky turned clockwise by
    ``angles[k]`` degrees (as displayed with ``origin="lower"``), a
    companion at position angle ``theta`` appears at ``theta - angles[k]``,
    and derotating frame ``k`` counterclockwise by ``angles[k]``
    (:func:`sklearn_mbdl.exoplanet.derotate`,
    ``vip_hci.preproc.cube_derotate``) brings every companion back to its
    sky position.

    Intensities are in units of the star's off-axis peak: a companion of
    ``flux`` 1e-4 has a peak ten thousand times fainter than the star.

    Parameters
    ----------
    n_frames : int, default=48
    image_size : int, default=64
        Side of the square frames in pixels; the star is at the centre
        ``((image_size - 1) / 2, (image_size - 1) / 2)``.
    rotation_range : float, default=60.0
        Total field rotation over the sequence, in degrees; the angles are
        evenly spaced from ``-rotation_range / 2`` to ``rotation_range / 2``.
    n_planets : int, default=3
        Number of companions, at random position angles and separations
        between 2 FWHM and the edge of the field, in distinct annuli (their
        separations differ by at least 1.5 FWHM, so that the small-sample
        S/N of each is measured on an annulus free of the others).
    contrast : float, default=3.0
        Companion peak in units of the noise at its separation: the
        standard deviation, over the annulus, of the frames' mean after
        subtracting the sequence's temporal median and derotating (classical
        ADI), measured on the planet-free cube. Speckles fall off with
        separation, so a fixed ``contrast`` puts every companion near the
        same detection limit. The default puts them near the 5-sigma limit
        of PCA-ADI.
    fwhm : float, default=4.0
        Full width at half maximum of the off-axis PSF (an Airy pattern), in
        pixels.
    speckle_decorrelation : float, default=0.3
        Share (0 to 1) of the pupil aberration that evolves along the
        sequence: 0 gives perfectly static speckles.
    random_state : int, RandomState instance or None, default=None
    return_components : bool, default=False
        Also return the noiseless parts of the cube, for oracle baselines:
        what a method could reach if it knew the speckles, or the cube
        without its companions.

    Returns
    -------
    cube : ndarray of shape (n_frames, image_size, image_size)
    angles : ndarray of shape (n_frames,)
        Parallactic angles in degrees (vip-hci's convention).
    planets : structured ndarray of shape (n_planets,)
        Fields ``x``, ``y`` (column and row of the companion in the
        derotated frame, in pixels), ``separation`` (pixels from the star),
        ``position_angle`` (degrees, counterclockwise from ``+x``) and
        ``flux`` (peak over the star's peak).
    psf : ndarray of shape (s, s)
        The off-axis PSF, peak 1, centred on an odd grid.
    components : dict, only when ``return_components`` is True
        ``"speckles"`` and ``"companions"``: the star's speckles and the
        companions, noiseless, each of shape ``(n_frames, image_size,
        image_size)`` and in the cube's units; the cube is their sum plus
        the photon and read noise.

    Examples
    --------
    >>> from sklearn_mbdl.datasets import make_adi_cube
    >>> cube, angles, planets, psf = make_adi_cube(8, 32, n_planets=1,
    ...                                            random_state=0)
    >>> cube.shape, angles.shape, planets.dtype.names[:3], psf.shape
    ((8, 32, 32), (8,), ('x', 'y', 'separation'), (17, 17))
    >>> *_, parts = make_adi_cube(8, 32, n_planets=1, random_state=0,
    ...                           return_components=True)
    >>> sorted(parts), parts["speckles"].shape
    (['companions', 'speckles'], (8, 32, 32))
    """
    n_frames = _check_positive_int(n_frames, "n_frames")
    image_size = _check_positive_int(image_size, "image_size", 16)
    n_planets = _check_positive_int(n_planets, "n_planets", 0)
    for value, name in ((rotation_range, "rotation_range"), (contrast, "contrast"),
                        (fwhm, "fwhm"), (speckle_decorrelation, "speckle_decorrelation")):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a non-negative number, got {value!r}.")
    if not 1.0 <= fwhm <= image_size / 6:
        raise ValueError(f"fwhm must be between 1 and image_size / 6 pixels, got {fwhm!r}.")
    if speckle_decorrelation > 1:
        raise ValueError(
            f"speckle_decorrelation must be in [0, 1], got {speckle_decorrelation!r}.")
    cube, angles, planets, psf, parts = simulate_adi(
        n_frames, image_size, rotation_range=rotation_range, n_planets=n_planets,
        contrast=contrast, fwhm=fwhm, speckle_decorrelation=speckle_decorrelation,
        rng=check_random_state(random_state))
    if return_components:
        return cube, angles, planets, psf, parts
    return cube, angles, planets, psf


def make_physical_adi_cube(n_frames=48, image_size=65, *, rotation_range=60.0,
                           n_planets=3, contrast=3.0, fwhm=4.0, coronagraph="vortex",
                           static_phase=0.1, static_amplitude=0.05, quasistatic=0.5,
                           fast_phase=0.1, star_photons=1e7, read_noise=5.0,
                           separations=None, random_state=None,
                           return_components=False):
    """An ADI sequence through physical optics (hcipy), a second simulator.

    Independent of :func:`make_adi_cube`'s idealised optics: the star goes
    through an obstructed pupil with four spiders, a real coronagraph (a
    charge-2 vortex or a Lyot coronagraph, then a Lyot stop) and phase
    *and* amplitude aberrations with power-law spectra: a static part, a
    quasi-static part that drifts smoothly along the sequence (the
    speckles decorrelate over it), and a fast AO-like residual redrawn
    within every frame. The frames receive photon and read noise, and
    companions are injected with ``vip_hci.fm.cube_inject_companions``
    (vip-hci's angle convention: frame ``k`` sees the sky turned clockwise
    by ``angles[k]``). Needs the ``astro`` extra (hcipy and vip-hci:
    ``pip install "sklearn-mbdl[astro]"``). The model lives in
    ``sklearn_mbdl.exoplanet._optics``.

    Intensities are in units of the star's off-axis peak (through the Lyot
    stop). The star is at the centre pixel ``(image_size // 2,
    image_size // 2)`` of odd frames, vip-hci's centre.

    Parameters
    ----------
    n_frames : int, default=48
    image_size : int, default=65
        Side of the square frames in pixels (odd).
    rotation_range : float, default=60.0
        Total field rotation in degrees; angles evenly spaced from
        ``-rotation_range / 2`` to ``rotation_range / 2``.
    n_planets : int, default=3
        Companions at random position angles, in distinct annuli (1.5 FWHM
        apart) between ``separations``.
    contrast : float, default=3.0
        Companion peak in units of the classical-ADI noise at its separation
        (as in :func:`make_adi_cube`, measured here on a noisy planet-free
        cube, so photon-limited cubes count their photon noise).
    fwhm : float, default=4.0
        FWHM of the off-axis PSF in pixels (the focal plane is sampled at
        ``fwhm / 1.03`` pixels per ``lambda / D``).
    coronagraph : {"vortex", "lyot"}, default="vortex"
    static_phase : float, default=0.1
        RMS of the static pupil phase aberration, radians (spectrum
        ``f^-2.5``).
    static_amplitude : float, default=0.05
        Relative RMS of the static pupil amplitude aberration (``f^-2``).
    quasistatic : float, default=0.5
        RMS of the drifting part of the phase and amplitude aberrations
        relative to their static parts (0 gives static speckles).
    fast_phase : float, default=0.1
        RMS in radians of the AO-like residual (``f^-11/3``), three draws per
        frame.
    star_photons : float, default=1e7
        Photons in the star's off-axis peak per frame: lower values move the
        cube from speckle- towards photon-limited.
    read_noise : float, default=5.0
        Read noise in photons per pixel.
    separations : (float, float), default=None
        Range of companion separations in pixels; from ``2 lambda / D`` to
        the edge of the field less 1.5 FWHM when None.
    random_state : int, RandomState instance or None, default=None
    return_components : bool, default=False
        Also return the noiseless ``"speckles"`` and ``"companions"``.

    Returns
    -------
    cube : ndarray of shape (n_frames, image_size, image_size)
        Intensities in units of the star's off-axis peak, the star on the
        centre pixel.
    angles : ndarray of shape (n_frames,)
        As in :func:`make_adi_cube`.
    planets : structured ndarray of shape (n_planets,)
        Fields ``x``, ``y``, ``separation``, ``position_angle`` and ``flux``
        as in :func:`make_adi_cube`.
    psf : ndarray of shape (s, s)
        The off-axis PSF, peak 1, centred on an odd grid.
    components : dict, only when ``return_components`` is True

    Examples
    --------
    >>> from sklearn_mbdl.datasets import make_physical_adi_cube
    >>> cube, angles, planets, psf = make_physical_adi_cube(
    ...     8, 33, n_planets=1, random_state=0)  # doctest: +SKIP
    >>> cube.shape, psf.shape  # doctest: +SKIP
    ((8, 33, 33), (17, 17))
    """
    n_frames = _check_positive_int(n_frames, "n_frames")
    image_size = _check_positive_int(image_size, "image_size", 17)
    n_planets = _check_positive_int(n_planets, "n_planets", 0)
    if image_size % 2 == 0:
        raise ValueError(
            f"image_size must be odd (the star on the centre pixel, as in vip-hci), "
            f"got {image_size}.")
    for value, name in ((rotation_range, "rotation_range"), (contrast, "contrast"),
                        (fwhm, "fwhm"), (static_phase, "static_phase"),
                        (static_amplitude, "static_amplitude"),
                        (quasistatic, "quasistatic"), (fast_phase, "fast_phase"),
                        (star_photons, "star_photons"), (read_noise, "read_noise")):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a non-negative number, got {value!r}.")
    if not 2.0 <= fwhm <= image_size / 6:
        raise ValueError(
            f"fwhm must be between 2 and image_size / 6 pixels, got {fwhm!r}.")
    if star_photons <= 0:
        raise ValueError(f"star_photons must be positive, got {star_photons!r}.")
    if coronagraph not in ("vortex", "lyot"):
        raise ValueError(
            f"coronagraph must be 'vortex' or 'lyot', got {coronagraph!r}.")
    if separations is not None:
        separations = tuple(float(s) for s in separations)
        if len(separations) != 2:
            raise ValueError(f"separations must be two numbers, got {separations!r}.")
    try:
        import hcipy  # noqa: F401
        import vip_hci  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "make_physical_adi_cube needs hcipy and vip_hci: pip install "
            "'sklearn-mbdl[astro]'.") from exc
    from .exoplanet._optics import simulate_physical_adi

    cube, angles, planets, psf, parts = simulate_physical_adi(
        n_frames, image_size, rotation_range=float(rotation_range),
        n_planets=n_planets, contrast=float(contrast), fwhm=float(fwhm),
        coronagraph=coronagraph, static_phase=float(static_phase),
        static_amplitude=float(static_amplitude), quasistatic=float(quasistatic),
        fast_phase=float(fast_phase), star_photons=float(star_photons),
        read_noise=float(read_noise), separations=separations,
        rng=check_random_state(random_state))
    if return_components:
        return cube, angles, planets, psf, parts
    return cube, angles, planets, psf
