"""The image formation model of a burst: ``y_k = S B W_{p_k} x``.

One high-resolution image ``x`` of shape ``(H, W)`` is seen through ``K``
low-resolution frames: each frame warps ``x`` by its own motion ``p_k``
(:func:`~sklearn_mbdl.operators.warp`, in high-resolution pixels), blurs it
by an isotropic Gaussian (the optics, with replicated borders) and
integrates it over the sensor's pixels: frame pixel ``(i, j)`` is the mean
of the high-resolution pixels ``scale * i ... scale * i + scale - 1`` (and
likewise along columns), so its centre lies at ``scale * i + (scale - 1) / 2``.

The grid convention
-------------------
Every imaging operator of the package follows the *pixel-centre*
convention of scikit-image (``transform.rescale``,
``transform.downscale_local_mean``), OpenCV, real sensors and
``torch.nn.functional.interpolate(..., align_corners=False)``: a pixel is a
square cell, its value sits at the cell's centre, and a low-resolution cell
covers exactly ``scale x scale`` high-resolution cells. The two grids then
share their centre, so the motions of :mod:`sklearn_mbdl.burst` convert
between units by the factor ``scale`` alone. :func:`bin_pixels` is that
integration (used by :class:`BurstOperator` and
:class:`~sklearn_mbdl.operators.Decimation`) and :func:`upsample` its
interpolating inverse (the bicubic baseline, the first estimate of the burst
solvers). Frame sides are ``ceil(H / scale)`` and ``ceil(W / scale)``: a
last, partial cell repeats the image's border. An image one pixel high (a
1-D signal) is integrated along its length only.

:class:`BurstOperator` is the model as an
:class:`~sklearn_mbdl.operators.ImageOperator` (forward, exact adjoint,
data step by conjugate gradient), batched over bursts and differentiable in
``x`` and in the motions.
"""

import math

import torch
import torch.nn.functional as F

from ._blur import _gaussian_window
from ._imaging import ImageOperator
from ._warp import MOTION_MODELS, warp

__all__ = ["BurstOperator", "bin_pixels", "blur_and_bin", "decimation_factors",
           "gaussian_filter", "upsample"]


def decimation_factors(image_shape, scale):
    """Decimation factor along each axis: ``scale``, or 1 along an axis of
    length 1 (1-D signals are decimated along their length only).

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W)``.
    scale : int

    Returns
    -------
    tuple of int
        ``(fy, fx)``, the factors along rows and columns.

    Examples
    --------
    >>> from sklearn_mbdl.operators import decimation_factors
    >>> decimation_factors((64, 64), 2), decimation_factors((1, 30), 2)
    ((2, 2), (1, 2))
    """
    return tuple(1 if int(s) == 1 else int(scale) for s in image_shape)


def _kernel_1d(sigma, like):
    radius = max(int(math.ceil(3.0 * sigma)), 1)
    return torch.as_tensor(_gaussian_window(sigma, 2 * radius + 1),
                           dtype=like.dtype, device=like.device)


def gaussian_filter(images, sigma):
    """Isotropic Gaussian blur with replicated borders, batched.

    Parameters
    ----------
    images : torch.Tensor of shape (..., h, w)
    sigma : float
        Standard deviation in pixels; 0 returns the images unchanged.

    Returns
    -------
    torch.Tensor of shape (..., h, w)
        The blurred images, in the dtype of ``images``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import gaussian_filter
    >>> gaussian_filter(torch.ones(2, 5, 7), 1.0).allclose(torch.ones(2, 5, 7))
    True
    """
    return _separable_gaussian(images, sigma, adjoint=False)


def _replicate_pad_adjoint(y, r, dim):
    """Adjoint of replicate padding by ``r`` on both ends of ``dim``."""
    n = y.shape[dim]
    core = y.narrow(dim, r, n - 2 * r).clone()
    first = y.narrow(dim, 0, r + 1).sum(dim, keepdim=True)
    last = y.narrow(dim, n - r - 1, r + 1).sum(dim, keepdim=True)
    m = n - 2 * r
    if m == 1:
        return first + last - y.narrow(dim, r, 1)
    index = torch.arange(m, device=y.device)
    inner = core.index_select(dim, index[1:-1])
    return torch.cat([first, inner, last], dim=dim)


def _separable_gaussian(images, sigma, adjoint):
    """:func:`gaussian_filter` (a pass along rows, then one along columns,
    each on replicated borders) or, with ``adjoint=True``, its exact
    adjoint: the transposed passes in reverse order, each a zero-padded
    convolution (the kernel is symmetric) with the padding folded back."""
    if sigma <= 0:
        return images
    shape = images.shape
    x = images.reshape(-1, 1, *shape[-2:])
    g = _kernel_1d(float(sigma), x)
    r = (len(g) - 1) // 2
    for dim in ((2, 3) if adjoint else (3, 2)):
        if x.shape[dim] == 1:
            continue
        pad = (0, 0, r, r) if dim == 2 else (r, r, 0, 0)
        kernel = g.reshape(1, 1, -1, 1) if dim == 2 else g.reshape(1, 1, 1, -1)
        if adjoint:
            x = F.conv2d(F.pad(x, tuple(2 * p for p in pad)), kernel)
            x = _replicate_pad_adjoint(x, r, dim)
        else:
            x = F.conv2d(F.pad(x, pad, mode="replicate"), kernel)
    return x.reshape(shape)


def _factors_and_frame(image_shape, scale):
    factors = decimation_factors(image_shape, scale)
    frame = tuple(-(-int(s) // f) for s, f in zip(image_shape, factors))
    return factors, frame


def bin_pixels(images, scale):
    """Integrate images over the sensor's pixels: the mean of each
    ``scale x scale`` block (the pixel-centre convention of the module notes).

    A side that is not a multiple of ``scale`` gets a last, partial cell
    whose missing pixels repeat the border. Sides of length 1 are kept
    (1-D signals are integrated along their length only).

    Parameters
    ----------
    images : torch.Tensor of shape (..., H, W)
    scale : int

    Returns
    -------
    torch.Tensor of shape (..., ceil(H / scale), ceil(W / scale))
        The mean over each cell.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import bin_pixels
    >>> bin_pixels(torch.arange(4.0).reshape(1, 4), 2)
    tensor([[0.5000, 2.5000]])
    """
    H, W = images.shape[-2:]
    (fy, fx), (h, w) = _factors_and_frame((H, W), scale)
    lead = images.shape[:-2]
    if h * fy != H or w * fx != W:
        padded = F.pad(images.reshape(-1, 1, H, W), (0, w * fx - W, 0, h * fy - H),
                       mode="replicate")
        images = padded.reshape(*lead, h * fy, w * fx)
    return images.reshape(*lead, h, fy, w, fx).mean(dim=(-3, -1))


def _bin_pixels_adjoint(frames, scale, image_shape):
    """Exact adjoint of :func:`bin_pixels` onto images of ``image_shape``."""
    H, W = image_shape
    (fy, fx), _ = _factors_and_frame(image_shape, scale)
    up = frames.repeat_interleave(fy, dim=-2).repeat_interleave(fx, dim=-1) / (fy * fx)
    if up.shape[-2] > H:   # the replicated rows fold back onto the last one
        up = torch.cat([up[..., :H - 1, :], up[..., H - 1:, :].sum(-2, keepdim=True)],
                       dim=-2)
    if up.shape[-1] > W:
        up = torch.cat([up[..., :W - 1], up[..., W - 1:].sum(-1, keepdim=True)],
                       dim=-1)
    return up


def blur_and_bin(images, scale, blur_sigma):
    """The camera without the motion: optics blur (a Gaussian of
    ``blur_sigma`` high-resolution pixels), then pixel integration
    (:func:`bin_pixels`).

    Parameters
    ----------
    images : torch.Tensor of shape (..., H, W)
    scale : int
    blur_sigma : float
        In high-resolution pixels; 0 is pixel integration alone.

    Returns
    -------
    torch.Tensor of shape (..., ceil(H / scale), ceil(W / scale))
        The frames the sensor records, before noise.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import blur_and_bin
    >>> blur_and_bin(torch.ones(2, 8, 8), 2, 1.0).shape
    torch.Size([2, 4, 4])
    """
    return bin_pixels(gaussian_filter(images, blur_sigma), scale)


def upsample(frames, scale, image_shape=None, *, mode="bicubic"):
    """Interpolate low-resolution frames onto the high-resolution grid.

    Pixel-centre convention (the module notes): high-resolution pixel ``u``
    sits at frame coordinate ``(u + 0.5) / scale - 0.5``, as in
    ``torch.nn.functional.interpolate(..., align_corners=False)`` and
    ``skimage.transform.rescale``; values beyond the outer frame pixels
    repeat the border.

    Parameters
    ----------
    frames : torch.Tensor of shape (..., h, w)
    scale : int
    image_shape : tuple of int, optional
        ``(H, W)``; ``(scale * h, scale * w)`` by default (sides of length 1
        stay 1).
    mode : {"bicubic", "bilinear", "nearest"}, default="bicubic"

    Returns
    -------
    torch.Tensor of shape (..., H, W)
        The frames interpolated at the high-resolution pixel centres.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import upsample
    >>> upsample(torch.tensor([[0.0, 1.0]]), 2, mode="bilinear")
    tensor([[0.0000, 0.2500, 0.7500, 1.0000]])
    """
    h, w = frames.shape[-2:]
    if image_shape is None:
        image_shape = tuple(1 if s == 1 else scale * s for s in (h, w))
    H, W = image_shape
    fy, fx = decimation_factors(image_shape, scale)
    dt, dev = frames.dtype, frames.device
    # frame coordinates of the high-resolution pixel centres, normalised for
    # grid_sample(align_corners=False): -1 and 1 are the outer frame edges
    ys = ((torch.arange(H, dtype=dt, device=dev) + 0.5) / fy) * (2.0 / h) - 1
    xs = ((torch.arange(W, dtype=dt, device=dev) + 0.5) / fx) * (2.0 / w) - 1
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    lead = frames.shape[:-2]
    flat = frames.reshape(-1, 1, h, w)
    grid = torch.stack([xx, yy], dim=-1).expand(flat.shape[0], H, W, 2)
    out = F.grid_sample(flat, grid, mode=mode, padding_mode="border",
                        align_corners=False)
    return out.reshape(*lead, H, W)


class _BilinearSampling:
    """Bilinear interpolation at fixed points as a gather (forward) and a
    scatter-add (its exact transpose), with replicated borders: the
    interpolation of :func:`~sklearn_mbdl.operators.warp` in ``bilinear``
    / ``border`` mode, computed once per motion and reused by every
    application (the conjugate-gradient iterations)."""

    def __init__(self, params, model, image_shape, like):
        from ._warp import motion_matrix

        H, W = image_shape
        y = torch.arange(H, dtype=like.dtype, device=like.device) - (H - 1) / 2
        x = torch.arange(W, dtype=like.dtype, device=like.device) - (W - 1) / 2
        yy, xx = torch.meshgrid(y, x, indexing="ij")
        # (..., 1, 1, 2, 3): one matrix per frame, broadcast over the pixels
        m = motion_matrix(params.to(like), model)[..., None, None, :, :]
        sx = m[..., 0, 0] * xx + m[..., 0, 1] * yy + m[..., 0, 2] + (W - 1) / 2
        sy = m[..., 1, 0] * xx + m[..., 1, 1] * yy + m[..., 1, 2] + (H - 1) / 2
        sx = sx.clamp(0, W - 1)
        sy = sy.clamp(0, H - 1)
        x0 = sx.floor().clamp(max=max(W - 2, 0))
        y0 = sy.floor().clamp(max=max(H - 2, 0))
        wx, wy = sx - x0, sy - y0
        x0, y0 = x0.long(), y0.long()
        x1 = (x0 + 1).clamp(max=W - 1)
        y1 = (y0 + 1).clamp(max=H - 1)
        flat = lambda a: a.reshape(*a.shape[:-2], H * W)   # noqa: E731
        self.index = torch.stack([flat(y0 * W + x0), flat(y0 * W + x1),
                                  flat(y1 * W + x0), flat(y1 * W + x1)])
        self.weight = torch.stack([flat((1 - wy) * (1 - wx)), flat((1 - wy) * wx),
                                   flat(wy * (1 - wx)), flat(wy * wx)])
        self.shape = (H, W)

    def forward(self, x):
        """``x`` (n, H, W) -> (n, K, H, W)."""
        H, W = self.shape
        lead = self.index.shape[1:-1]
        src = x.reshape(x.shape[0], *([1] * (len(lead) - 1)), H * W).expand(
            *lead, H * W)
        out = sum(self.weight[c].to(x.dtype) * torch.gather(src, -1, self.index[c])
                  for c in range(4))
        return out.reshape(*lead, H, W)

    def adjoint(self, y):
        """``y`` (n, K, H, W) -> (n, H, W)."""
        H, W = self.shape
        flat_y = y.reshape(*y.shape[:-2], H * W)
        out = flat_y.new_zeros(flat_y.shape)
        for c in range(4):
            weighted = self.weight[c].to(y.dtype) * flat_y
            out = out.scatter_add(-1, self.index[c], weighted)
        return out.sum(dim=1).reshape(y.shape[0], H, W)


class BurstOperator(ImageOperator):
    """The burst formation model ``y_k = S B W_{p_k} x`` as a linear operator.

    ``A x`` maps high-resolution images ``(n, H, W)`` to bursts
    ``(n, K, ceil(H / scale), ceil(W / scale))``: warp, optics blur, pixel
    integration (:func:`blur_and_bin`, the pixel-centre convention of the
    module notes). The adjoint is the exact transpose, written out (the
    integration's transpose, the blur's transpose with the replicated
    border folded back, the scatter-add of the bilinear weights), so it is differentiable without second derivatives of
    ``grid_sample`` and the data step of the splitting solvers (conjugate
    gradient) applies unchanged. The interpolation weights are computed
    once per operator (and input shape) and reused: the conjugate-gradient
    iterations apply the operator many times. ``mode="bicubic"`` (the
    simulation) warps through :func:`~sklearn_mbdl.operators.warp` and
    takes its adjoint through ``torch.func.vjp``.

    Parameters
    ----------
    params : torch.Tensor of shape (K, k) or (n, K, k)
        Motion of each frame in high-resolution pixels (and radians), the
        parameters of :func:`~sklearn_mbdl.operators.warp`.
    scale : int, default=2
        Decimation factor.
    blur_sigma : float, default=1.0
        Standard deviation of the optics' Gaussian blur, in high-resolution
        pixels (0: pixel integration alone).
    model : {"translation", "euclidean", "affine"}, default="translation"
    mode : {"bilinear", "bicubic"}, default="bilinear"
        Interpolation of the warp.
    image_shape : tuple of int, optional
        ``(H, W)`` of the high-resolution images; needed by the adjoint only
        when a side is not a multiple of ``scale`` (otherwise it is
        ``scale`` times the frame's).

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import BurstOperator
    >>> A = BurstOperator(torch.tensor([[0.0, 0.0], [1.5, -0.5]]), scale=2)
    >>> x = torch.rand(3, 16, 16, dtype=torch.float64)
    >>> y = torch.rand(3, 2, 8, 8, dtype=torch.float64)
    >>> A(x).shape
    torch.Size([3, 2, 8, 8])
    >>> bool(torch.isclose((A(x) * y).sum(), (x * A.adjoint(y)).sum()))
    True
    """

    def __init__(self, params, *, scale=2, blur_sigma=1.0, model="translation",
                 mode="bilinear", image_shape=None):
        if model not in MOTION_MODELS:
            raise ValueError(
                f"model must be one of {sorted(MOTION_MODELS)}, got {model!r}.")
        self.params = torch.as_tensor(params)
        size = MOTION_MODELS[model]
        if self.params.ndim not in (2, 3) or self.params.shape[-1] != size:
            raise ValueError(
                f"params must have shape (K, {MOTION_MODELS[model]}) or "
                f"(n, K, {MOTION_MODELS[model]}) for a {model} motion, got "
                f"{tuple(self.params.shape)}.")
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale!r}.")
        if not blur_sigma >= 0:
            raise ValueError(f"blur_sigma must be non-negative, got {blur_sigma!r}.")
        self.scale = scale
        self.blur_sigma = float(blur_sigma)
        self.model = model
        self.mode = mode
        self.image_shape = None if image_shape is None else tuple(
            int(v) for v in image_shape)

    def observation_shape(self, image_shape):
        fy, fx = decimation_factors(image_shape, self.scale)
        return (self.params.shape[-2], -(-int(image_shape[0]) // fy),
                -(-int(image_shape[1]) // fx))

    def check_image_shape(self, image_shape):
        image_shape = tuple(int(s) for s in image_shape)
        if self.image_shape is not None and image_shape != self.image_shape:
            raise ValueError(
                f"this BurstOperator works on images of shape {self.image_shape}, "
                f"got {image_shape}.")
        if max(image_shape) < self.scale:
            raise ValueError(
                f"images of shape {image_shape} are smaller than scale="
                f"{self.scale}.")
        return image_shape

    def _sampling(self, like, image_shape):
        n = like.shape[0]
        key = (tuple(image_shape), n, like.dtype, str(like.device))
        cached = getattr(self, "_cache", None)
        if cached is None or cached[0] != key:
            params = self.params.detach().to(device=like.device, dtype=like.dtype)
            if params.ndim == 2:  # the same motions for every image
                params = params.expand(n, *params.shape)
            sampling = _BilinearSampling(params, self.model, image_shape, like)
            self._cache = (key, sampling)
        return self._cache[1]

    def forward(self, x):
        if self.mode == "bilinear":
            frames = self._sampling(x, x.shape[-2:]).forward(x)
        else:
            params = self.params.to(device=x.device, dtype=x.dtype)
            frames = warp(x[:, None], params, model=self.model, mode=self.mode,
                          padding="border")
        return blur_and_bin(frames, self.scale, self.blur_sigma)

    def adjoint(self, y):
        shape = self.image_shape_for(y.shape)
        if self.mode != "bilinear":
            zeros = y.new_zeros((y.shape[0], *shape))
            _, pullback = torch.func.vjp(self.forward, zeros)
            return pullback(y)[0]
        up = _separable_gaussian(_bin_pixels_adjoint(y, self.scale, shape),
                                 self.blur_sigma, adjoint=True)
        return self._sampling(y, shape).adjoint(up)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_cache", None)
        return state

    def image_shape_for(self, observation_shape):
        if self.image_shape is not None:
            return self.image_shape
        h, w = observation_shape[-2:]
        return tuple(1 if s == 1 else self.scale * int(s) for s in (h, w))

    def __repr__(self):
        return (f"BurstOperator({self.params.shape[-2]} frames, scale={self.scale}, "
                f"blur_sigma={self.blur_sigma}, model={self.model!r})")
