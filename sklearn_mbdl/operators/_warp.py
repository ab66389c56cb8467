"""Geometric warps of images: sub-pixel motion (bursts) and field rotation (ADI).

Coordinates are in pixels, measured from the image centre
``((w - 1) / 2, (h - 1) / 2)``, with ``x`` along columns and ``y`` along
rows. A motion ``p`` defines a map ``T_p`` of the plane and the warp samples
the image there::

    warp(image, p)(u) = image(T_p(u))

by interpolation (bilinear by default, through ``torch.nn.functional.grid_sample``),
so the warp is linear in the image, differentiable in the image *and* in
``p`` (what Lucas-Kanade and unrolled training need), and batched. Three
motion models, the size of ``p`` in brackets:

- ``"translation"`` (2): ``T_p(u) = u + (dx, dy)``;
- ``"euclidean"`` (3): ``T_p(u) = R(theta) u + (dx, dy)``, ``theta`` in
  radians;
- ``"affine"`` (6): ``T_p(u) = [[1 + a, b], [c, 1 + d]] u + (dx, dy)`` with
  ``p = (a, b, c, d, dx, dy)``.

A positive ``dx`` shows, at ``u``, what the image had at ``u + dx``: the
content moves by ``-dx``.

:func:`rotate` turns images about their centre by angles in degrees, the
field rotation of angular differential imaging; :class:`Warp` is the warp as
an :class:`ImageOperator`, with its adjoint (the transpose of the
interpolation, through ``torch.func.vjp``) for the data steps of the solvers.
"""

import math

import torch
import torch.nn.functional as F

from ._imaging import ImageOperator

__all__ = ["MOTION_MODELS", "motion_matrix", "warp", "rotate", "Warp"]

#: number of parameters of each motion model
MOTION_MODELS = {"translation": 2, "euclidean": 3, "affine": 6}

_MODES = ("bilinear", "bicubic", "nearest")
_PADDINGS = ("zeros", "border", "reflection")


def _check_model(model):
    if model not in MOTION_MODELS:
        raise ValueError(
            f"model must be one of {sorted(MOTION_MODELS)}, got {model!r}.")
    return MOTION_MODELS[model]


def motion_matrix(params, model="translation"):
    """The ``2 x 3`` matrices ``[M | t]`` with ``T_p(u) = M u + t``.

    Parameters
    ----------
    params : torch.Tensor of shape (..., k)
        Motion parameters, ``k`` given by the model (see the module notes).
    model : {"translation", "euclidean", "affine"}, default="translation"

    Returns
    -------
    torch.Tensor of shape (..., 2, 3)

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import motion_matrix
    >>> motion_matrix(torch.tensor([1.0, -2.0]))
    tensor([[ 1.,  0.,  1.],
            [ 0.,  1., -2.]])
    """
    size = _check_model(model)
    params = torch.as_tensor(params)
    if params.shape[-1:] != (size,):
        raise ValueError(
            f"A {model} motion has {size} parameters, got params of shape "
            f"{tuple(params.shape)}.")
    one = torch.ones_like(params[..., 0])
    zero = torch.zeros_like(one)
    if model == "translation":
        dx, dy = params.unbind(-1)
        rows = [one, zero, dx, zero, one, dy]
    elif model == "euclidean":
        dx, dy, theta = params.unbind(-1)
        c, s = torch.cos(theta), torch.sin(theta)
        rows = [c, -s, dx, s, c, dy]
    else:
        a, b, c, d, dx, dy = params.unbind(-1)
        rows = [one + a, b, dx, c, one + d, dy]
    return torch.stack(rows, dim=-1).reshape(*params.shape[:-1], 2, 3)


def _check_images(images):
    if not torch.is_tensor(images) or images.ndim < 2:
        raise ValueError(
            "images must be a tensor of shape (..., h, w), got "
            f"{type(images).__name__} of shape {tuple(getattr(images, 'shape', ()))}.")
    if not images.is_floating_point():
        raise ValueError(f"images must be floating point, got {images.dtype}.")
    return images


def _sample(images, matrices, mode, padding):
    """Sample ``images`` (..., h, w) at ``T(u)``, ``matrices`` (..., 2, 3)."""
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}.")
    if padding not in _PADDINGS:
        raise ValueError(f"padding must be one of {_PADDINGS}, got {padding!r}.")
    h, w = images.shape[-2:]
    batch = torch.broadcast_shapes(images.shape[:-2], matrices.shape[:-2])
    images = images.expand(*batch, h, w).reshape(-1, 1, h, w)
    matrices = matrices.to(images.dtype).expand(*batch, 2, 3).reshape(-1, 2, 3)
    dev, dt = images.device, images.dtype
    x = torch.arange(w, dtype=dt, device=dev) - (w - 1) / 2
    y = torch.arange(h, dtype=dt, device=dev) - (h - 1) / 2
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    points = torch.stack([xx, yy, torch.ones_like(xx)], dim=-1)  # (h, w, 3)
    source = torch.einsum("hwk,nik->nhwi", points, matrices)       # (n, h, w, 2)
    # grid_sample with align_corners=True: -1 and +1 are the centres of the
    # first and last pixels
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], dtype=dt, device=dev)
    grid = source * scale
    out = F.grid_sample(images, grid, mode=mode, padding_mode=padding,
                        align_corners=True)
    return out.reshape(*batch, h, w)


def warp(images, params, *, model="translation", mode="bilinear", padding="border"):
    """Warp images by sub-pixel motions: ``out(u) = image(T_p(u))``.

    Parameters
    ----------
    images : torch.Tensor of shape (..., h, w)
        Real images; leading axes (bursts, frames) broadcast with those of
        ``params``.
    params : torch.Tensor of shape (..., k)
        One motion per image, in pixels (and radians for ``"euclidean"``).
    model : {"translation", "euclidean", "affine"}, default="translation"
    mode : {"bilinear", "bicubic", "nearest"}, default="bilinear"
        Interpolation.
    padding : {"border", "zeros", "reflection"}, default="border"
        Values sampled outside the image.

    Returns
    -------
    torch.Tensor of shape (..., h, w)
        The warped images; the leading axes are those of ``images`` and
        ``params`` broadcast together.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import warp
    >>> image = torch.arange(4.0).reshape(1, 4)
    >>> warp(image, torch.tensor([0.5, 0.0]))
    tensor([[0.5000, 1.5000, 2.5000, 3.0000]])
    """
    images = _check_images(images)
    params = torch.as_tensor(params, device=images.device)
    return _sample(images, motion_matrix(params, model), mode, padding)


def rotate(images, angles, *, mode="bilinear", padding="zeros"):
    """Rotate images about their centre by angles in degrees.

    A positive angle turns the content counterclockwise as displayed with
    ``imshow(origin="lower")`` (the astronomical convention), i.e. from the
    ``+x`` (column) axis towards the ``+y`` (row) axis. ``rotate(rotate(x, a),
    -a)`` gives back ``x`` up to interpolation: that is the derotation of
    angular differential imaging.

    Parameters
    ----------
    images : torch.Tensor of shape (..., h, w)
    angles : float or torch.Tensor broadcasting with the leading axes of ``images``
        Angles in degrees.
    mode : {"bilinear", "bicubic", "nearest"}, default="bilinear"
    padding : {"zeros", "border", "reflection"}, default="zeros"

    Returns
    -------
    torch.Tensor of shape (..., h, w)
        The rotated images; what comes from outside the image is filled as
        ``padding`` says.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import rotate
    >>> image = torch.zeros(3, 3)
    >>> image[1, 2] = 1.0                  # right of the centre
    >>> rotate(image, 90.0).round()        # now below it (row + 1)
    tensor([[0., 0., 0.],
            [0., 0., 0.],
            [0., 1., 0.]])
    """
    images = _check_images(images)
    angles = torch.as_tensor(angles, dtype=images.dtype, device=images.device)
    theta = -angles * (math.pi / 180.0)   # sample at R(-angle) u
    params = torch.stack([torch.zeros_like(theta), torch.zeros_like(theta), theta], -1)
    return _sample(images, motion_matrix(params, "euclidean"), mode, padding)


class Warp(ImageOperator):
    """The warp by fixed motions as a linear operator, with its adjoint.

    ``A x = warp(x, params)``: one motion per image of the batch (or one for
    all). The adjoint is the exact transpose of the interpolation (the
    gradient of ``grid_sample`` with respect to its input), so
    ``<A x, y> = <x, A^T y>`` to rounding, and it is differentiable for
    unrolled networks.

    Parameters
    ----------
    params : torch.Tensor of shape (k,) or (n, k)
        Motions; see :func:`warp`.
    model : {"translation", "euclidean", "affine"}, default="translation"
    mode : {"bilinear", "bicubic", "nearest"}, default="bilinear"
    padding : {"zeros", "border", "reflection"}, default="zeros"
        ``"zeros"`` keeps the operator a plain interpolation matrix.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import Warp
    >>> A = Warp(torch.tensor([[0.5, 0.25]]))
    >>> x, y = torch.randn(1, 6, 6, dtype=torch.float64), torch.randn(1, 6, 6, dtype=torch.float64)
    >>> bool(torch.isclose((A(x) * y).sum(), (x * A.adjoint(y)).sum()))
    True
    """

    def __init__(self, params, *, model="translation", mode="bilinear", padding="zeros"):
        _check_model(model)
        self.params = torch.as_tensor(params)
        self.model = model
        self.mode = mode
        self.padding = padding
        motion_matrix(self.params, model)  # checks the parameter count

    def forward(self, x):
        params = self.params.to(device=x.device, dtype=x.dtype)
        return _sample(x, motion_matrix(params, self.model), self.mode, self.padding)

    def adjoint(self, y):
        zeros = torch.zeros_like(y)
        _, pullback = torch.func.vjp(self.forward, zeros)
        return pullback(y)[0]

    def __repr__(self):
        return (f"Warp({self.model}, {tuple(self.params.shape)} params, "
                f"mode={self.mode!r}, padding={self.padding!r})")
