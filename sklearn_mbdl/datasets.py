"""Problem generators: ``make_*`` functions, one per method.

Everything is simulated or taken from the images bundled with installed
packages; nothing is downloaded.
"""

import numbers

import numpy as np
from sklearn.utils import check_random_state

__all__ = [
    "TEST_IMAGES",
    "TRAIN_IMAGES",
    "extract_patches",
    "load_images",
    "make_sparse_coding",
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
