"""The one image-input layer of the image estimators (DCEA, PnP, Burst,
Exoplanet), and the one training augmentation of images.

Images come as an ``(n, h, w)`` array, or as flattened rows with the
estimator's ``image_shape`` parameter. Every contradiction, zero images and
flat rows that could be images raise a ``ValueError`` that names
``image_shape``; 1-D signals are rows with ``image_shape=(n_features,)``
(or rows too short to be square images, which the generic scikit-learn
checks feed in).
"""

import numbers

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted, validate_data

from ._core import FLOAT_DTYPES

__all__ = ["IMAGE_SHAPE_CONSTRAINT", "check_images", "normalize_image_shape",
           "random_symmetries"]

# flat rows of at least this many features are taken for flattened images,
# which need image_shape: a square of side 4 or more
_MIN_IMAGE_FEATURES = 16

IMAGE_SHAPE_CONSTRAINT = [tuple, list, None]


def normalize_image_shape(image_shape):
    """``image_shape`` as a tuple of one (signals) or two (images) positive
    ints, or None; a ``ValueError`` naming it otherwise."""
    if image_shape is None:
        return None
    shape = tuple(image_shape) if isinstance(image_shape, (tuple, list)) else None
    if (shape is None or len(shape) not in (1, 2)
            or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool)
                       and n >= 1 for n in shape)):
        raise ValueError(
            "image_shape must be (h, w) for images, (n_features,) for 1-D signals, "
            f"or None, got {image_shape!r}.")
    return tuple(int(n) for n in shape)


def _ndim(X):
    ndim = getattr(X, "ndim", None)
    if ndim is None:
        try:
            ndim = np.ndim(X)
        except ValueError as exc:  # ragged nested lists
            raise ValueError(f"X is not a rectangular array: {exc}") from None
    return ndim


def check_images(estimator, X, *, reset, any_size=False, images_only=False,
                 default_shape=None, input_name="X"):
    """Validate image input; return ``(rows, shape, stacked)``.

    Parameters
    ----------
    estimator : estimator
        Reads its ``image_shape`` parameter at ``reset`` and its fitted
        ``image_shape_`` after; sets ``n_features_in_`` at ``reset``.
    X : array-like of shape (n, h * w) or (n, h, w)
    reset : bool
        True in ``fit``.
    any_size : bool
        After ``fit``, ``(n, h, w)`` stacks of any image size are accepted
        (convolutional estimators).
    images_only : bool
        1-D signals are refused (the estimator needs 2-D images).
    default_shape : tuple, optional
        The shape of flat rows of that many pixels when ``image_shape`` is
        None (an operator with a fixed mask says what it would be).
    input_name : str
        The name of ``X`` in messages.

    Returns
    -------
    rows : ndarray of shape (n, h * w)
        Finite, float64 or float32 (other dtypes become float64), writable.
    shape : tuple
        ``(h, w)``, or ``(n_features,)`` for 1-D signals.
    stacked : bool
        Whether ``X`` came as an ``(n, h, w)`` stack (the output keeps the
        caller's layout).
    """
    if not reset:
        check_is_fitted(estimator)
    if not hasattr(X, "ndim") and hasattr(X, "__array__"):
        X = np.asarray(X)   # (array-likes that refuse np.ndim)
    ndim = _ndim(X)
    given = normalize_image_shape(estimator.image_shape) if reset else None
    fitted = None if reset else tuple(estimator.image_shape_)
    if ndim == 3:
        X = np.asarray(X) if not hasattr(X, "shape") else X
        stack = tuple(int(n) for n in X.shape[1:])
        if reset and given is not None and given != stack:
            raise ValueError(
                f"{input_name} holds images of shape {stack} but "
                f"image_shape={given}: drop image_shape or make them agree.")
        if not reset and stack != fitted:
            if len(fitted) == 1:
                raise ValueError(
                    f"{input_name} holds images of shape {stack}; the estimator "
                    f"was fitted on 1-D signals (image_shape={fitted}).")
            if not any_size:
                raise ValueError(
                    f"{input_name} holds images of shape {stack}; the estimator "
                    f"was fitted on images of shape image_shape_={fitted}.")
        rows = np.asarray(X).reshape(X.shape[0], stack[0] * stack[1])
        if reset or stack == fitted:
            rows = validate_data(estimator, rows, reset=reset, dtype=FLOAT_DTYPES,
                                 ensure_all_finite=True)
        else:
            rows = check_array(rows, dtype=FLOAT_DTYPES, ensure_all_finite=True,
                               input_name=input_name)
        shape, stacked = stack, True
    elif ndim == 2 or not reset:
        rows = validate_data(estimator, X, reset=reset, dtype=FLOAT_DTYPES,
                             ensure_all_finite=True)
        n_features = rows.shape[1]
        if not reset:
            shape = fitted
        elif given is not None:
            if int(np.prod(given)) != n_features:
                raise ValueError(
                    f"image_shape={given} has {int(np.prod(given))} pixels but "
                    f"{input_name} has {n_features} features per row.")
            shape = given
        elif default_shape is not None and int(np.prod(default_shape)) == n_features:
            shape = tuple(int(n) for n in default_shape)
        elif n_features >= _MIN_IMAGE_FEATURES:
            side = int(round(np.sqrt(n_features)))
            hint = (f"image_shape=({side}, {side}) for {side} x {side} images, "
                    if side * side == n_features else "image_shape=(h, w) for images, ")
            raise ValueError(
                f"{input_name} has {n_features} features per row and image_shape is "
                f"None: flattened rows need {hint}or image_shape=({n_features},) "
                "for 1-D signals; or pass images as an (n, h, w) array.")
        else:
            shape = (n_features,)
        stacked = False
    else:
        raise ValueError(
            f"{input_name} must be a 2-D array of flattened images (with "
            f"image_shape) or a 3-D array (n_images, h, w), got {ndim}-D input.")
    if images_only and len(shape) == 1:
        if reset and not stacked and given is None:
            shape = (1, shape[0])
        else:
            raise ValueError(
                f"{type(estimator).__name__} works on 2-D images: image_shape must "
                f"be (h, w), got {shape}.")
    if not rows.flags.writeable:
        rows = rows.copy()
    return rows, shape, stacked


def random_symmetries(rng, images):
    """Each image flipped at random along each axis and, for square images,
    transposed at random: the symmetries of the grid, which leave natural
    images' statistics unchanged. ``images`` ``(n, h, w)`` is modified in
    place and returned."""
    n = len(images)
    for axis in (2, 1):   # (left-right first: the order PnP and Burst drew in)
        draw = rng.rand(n) < 0.5
        images[draw] = np.flip(images[draw], axis=axis)
    if images.shape[1] == images.shape[2]:
        draw = rng.rand(n) < 0.5
        images[draw] = np.transpose(images[draw], (0, 2, 1))
    return images
