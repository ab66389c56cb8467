"""Motion estimation for bursts: Lucas-Kanade / Gauss-Newton on the motion
parameters, at low resolution (frame to reference frame) and at high
resolution (each frame against the current estimate of the image seen
through the formation model).

Public motions are in *low-resolution* units: a translation ``(dx, dy)`` in
frame pixels, an angle in radians, the affine linear part unitless, mapping
a frame pixel ``v`` (measured from the frame centre) to ``M v + q``:
frame ``k`` shows at ``v`` what the reference frame shows at ``M v + q``.
The formation model works in high-resolution pixels
(:func:`to_high_res` / :func:`to_low_res` convert). Both grids follow the
pixel-centre convention of :mod:`sklearn_mbdl.operators` and share their
centre, so a translation scales by ``scale`` and an angle is unchanged.
"""

import math

import numpy as np
import torch

from ..operators import (
    MOTION_MODELS,
    decimation_factors,
    gaussian_filter,
    motion_matrix,
    warp,
)

__all__ = ["estimate_motion", "motion_error", "to_high_res", "to_low_res"]


def _centre_offset(image_shape, frame_shape, factors):
    """``c`` in ``u = F v + c``: high-resolution coordinates of frame pixels
    (both measured from their image centre). On the pixel-centre grid frame
    pixel ``i`` sits at ``F i + (F - 1) / 2``, so ``c`` is 0 when the sides
    are multiples of ``F`` (half the partial last cell otherwise)."""
    return torch.tensor([
        (factors[1] * frame_shape[1] - image_shape[1]) / 2.0,
        (factors[0] * frame_shape[0] - image_shape[0]) / 2.0,
    ], dtype=torch.float64)


def _convert(params, model, scale, image_shape, to_high):
    factors = decimation_factors(image_shape, scale)
    frame_shape = tuple(-(-int(s) // f) for s, f in zip(image_shape, factors))
    c = _centre_offset(image_shape, frame_shape, factors).to(params)
    f = torch.tensor([factors[1], factors[0]], dtype=params.dtype, device=params.device)
    matrices = motion_matrix(params, model)
    linear, t = matrices[..., :2], matrices[..., 2]
    shift = (linear @ c[:, None])[..., 0] - c     # M c - c
    new_t = f * t - shift if to_high else (t + shift) / f
    out = params.clone()
    out[..., -2:] = new_t  # every model ends with (dx, dy)
    if model == "euclidean":  # (dx, dy, theta)
        out[..., 0:2] = new_t
        out[..., 2] = params[..., 2]
    return out


def to_high_res(motions, *, model="translation", scale=2, image_shape):
    """Low-resolution motions (frame pixels) as parameters of the formation
    model's warp (high-resolution pixels).

    Parameters
    ----------
    motions : torch.Tensor of shape (..., k)
        Motions in frame pixels (and radians), as :func:`estimate_motion`
        gives them.
    model : {"translation", "euclidean", "affine"}, default="translation"
    scale : int, default=2
    image_shape : tuple of int
        ``(H, W)`` of the high-resolution image.

    Returns
    -------
    torch.Tensor of shape (..., k)
        The ``params`` of :func:`~sklearn_mbdl.operators.warp` and
        :class:`~sklearn_mbdl.operators.BurstOperator`, in high-resolution
        pixels.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.burst import to_high_res
    >>> to_high_res(torch.tensor([0.5, -1.0]), scale=2, image_shape=(32, 32))
    tensor([ 1., -2.])
    """
    return _convert(torch.as_tensor(motions), model, scale, image_shape, True)


def to_low_res(params, *, model="translation", scale=2, image_shape):
    """Inverse of :func:`to_high_res`.

    Parameters
    ----------
    params : torch.Tensor of shape (..., k)
        Parameters of the formation model's warp, in high-resolution pixels.
    model, scale, image_shape
        As in :func:`to_high_res`.

    Returns
    -------
    torch.Tensor of shape (..., k)
        The motions in frame pixels.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.burst import to_high_res, to_low_res
    >>> motions = torch.tensor([0.5, -1.0, 0.1])   # (dx, dy, theta)
    >>> params = to_high_res(motions, model="euclidean", image_shape=(31, 32))
    >>> back = to_low_res(params, model="euclidean", image_shape=(31, 32))
    >>> bool(torch.allclose(back, motions))
    True
    """
    return _convert(torch.as_tensor(params), model, scale, image_shape, False)


def _grid(shape, like):
    h, w = shape
    y = torch.arange(h, dtype=like.dtype, device=like.device) - (h - 1) / 2
    x = torch.arange(w, dtype=like.dtype, device=like.device) - (w - 1) / 2
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    return xx, yy


def _image_gradients(images):
    """Central differences along columns (x) and rows (y), replicated borders."""
    gx = torch.zeros_like(images)
    gy = torch.zeros_like(images)
    if images.shape[-1] > 1:
        pad = torch.cat([images[..., :1], images, images[..., -1:]], dim=-1)
        gx = 0.5 * (pad[..., 2:] - pad[..., :-2])
    if images.shape[-2] > 1:
        pad = torch.cat([images[..., :1, :], images, images[..., -1:, :]], dim=-2)
        gy = 0.5 * (pad[..., 2:, :] - pad[..., :-2, :])
    return gx, gy


def _source_derivatives(params, model, shape):
    """``d T_p(u) / d p_j`` for each parameter: a list of (dsx, dsy) maps."""
    xx, yy = _grid(shape, params)
    one, zero = torch.ones_like(xx), torch.zeros_like(xx)
    if model == "translation":
        return [(one, zero), (zero, one)]
    if model == "euclidean":
        theta = params[..., 2, None, None]
        c, s = torch.cos(theta), torch.sin(theta)
        return [(one, zero), (zero, one), (-s * xx - c * yy, c * xx - s * yy)]
    return [(xx, zero), (yy, zero), (zero, xx), (zero, yy), (one, zero), (zero, one)]


def gauss_newton_step(template, target, params, *, model, observe=None, mask=None,
                      damping=1e-4):
    """One Gauss-Newton (Lucas-Kanade) step on the motions, batched.

    Minimises ``sum_k || observe(warp(template, p_k)) - target_k ||^2`` over
    the ``p_k`` (masked); the Jacobian is the warped image gradient times the
    derivative of the warp's source points, seen through the linear map
    ``observe``. Frame 0 is the reference and keeps its motion.

    Parameters
    ----------
    template : torch.Tensor of shape (n, H, W)
    target : torch.Tensor of shape (n, K, h, w)
    params : torch.Tensor of shape (n, K, k)
    model : str
    observe : callable, optional
        Linear map ``(n, K, H, W) -> (n, K, h, w)`` (identity by default).
    mask : torch.Tensor broadcasting to (n, K, h, w), optional
    damping : float, default=1e-4
        Levenberg-Marquardt damping relative to the diagonal of ``J^T J``.

    Returns
    -------
    torch.Tensor of shape (n, K, k)
    """
    observe = (lambda v: v) if observe is None else observe
    warped = warp(template[:, None], params, model=model, padding="border")
    gx, gy = _image_gradients(template)
    wgx = warp(gx[:, None], params, model=model, padding="border")
    wgy = warp(gy[:, None], params, model=model, padding="border")
    columns = [observe(wgx * dsx + wgy * dsy)
               for dsx, dsy in _source_derivatives(params, model, template.shape[-2:])]
    J = torch.stack(columns, dim=-1).flatten(2, 3)             # (n, K, m, k)
    r = (observe(warped) - target).flatten(2, 3)               # (n, K, m)
    if mask is not None:
        weight = torch.broadcast_to(mask, target.shape).flatten(2, 3)
        J = J * weight[..., None]
        r = r * weight
    JtJ = J.transpose(-1, -2) @ J
    Jtr = (J.transpose(-1, -2) @ r[..., None])[..., 0]
    diag = torch.diagonal(JtJ, dim1=-2, dim2=-1)
    scale = diag.mean(-1, keepdim=True).clamp(min=1e-12)
    JtJ = JtJ + torch.diag_embed(damping * diag + 1e-6 * scale)
    step = torch.nan_to_num(torch.linalg.solve(JtJ, Jtr), nan=0.0, posinf=0.0,
                            neginf=0.0)
    step[:, 0] = 0.0
    return params - step


def clamp_translation(params, model, limit):
    """Keep the translations within ``[-limit, limit]``: on frames too small
    or too flat to register, Gauss-Newton can run off; a motion beyond the
    expected range is not to be trusted."""
    out = params.clone()
    cols = slice(0, 2) if model == "euclidean" else slice(-2, None)
    out[..., cols] = out[..., cols].clamp(-limit, limit)
    return out


def _margin_mask(shape, margin, like):
    h, w = shape
    mask = torch.zeros(h, w, dtype=like.dtype, device=like.device)
    mh = margin if h > 2 * margin + 1 else 0
    mw = margin if w > 2 * margin + 1 else 0
    mask[mh:h - mh, mw:w - mw] = 1.0
    return mask


def _integer_search(frames, reach, margin):
    """Integer translation of each frame against frame 0, by exhaustive
    search in ``[-reach, reach]^2`` (mean squared difference on the centre)."""
    n, K, h, w = frames.shape
    ry = reach if h > 1 else 0
    rx = reach if w > 1 else 0
    my, mx = (min(margin, (h - 1) // 2), min(margin, (w - 1) // 2))
    my, mx = max(my, min(ry, (h - 1) // 2)), max(mx, min(rx, (w - 1) // 2))
    ref = frames[:, :1]
    best = torch.full((n, K), float("inf"), dtype=frames.dtype, device=frames.device)
    shift = torch.zeros(n, K, 2, dtype=frames.dtype, device=frames.device)
    core = frames[..., my:h - my, mx:w - mx]
    for dy in range(-ry, ry + 1):
        for dx in range(-rx, rx + 1):
            top, left = my + dy, mx + dx
            if top < 0 or left < 0 or top + h - 2 * my > h or left + w - 2 * mx > w:
                continue
            moved = ref[..., top:top + h - 2 * my, left:left + w - 2 * mx]
            err = ((core - moved) ** 2).mean(dim=(-2, -1))
            better = err < best
            best = torch.where(better, err, best)
            value = torch.tensor([dx, dy], dtype=frames.dtype, device=frames.device)
            shift = torch.where(better[..., None], value, shift)
    return shift


def _estimate_motion(frames, model, max_shift, n_iter):
    """Torch core of :func:`estimate_motion` on ``(n, K, h, w)`` frames."""
    n, K, h, w = frames.shape
    reach = int(math.ceil(max_shift))
    margin = reach + 1
    shift = _integer_search(frames, reach, margin)
    params = torch.zeros(n, K, MOTION_MODELS[model], dtype=frames.dtype,
                         device=frames.device)
    params[..., -2:] = shift
    if model == "euclidean":
        params[..., :2] = shift
        params[..., 2] = 0.0
    if model == "affine":
        params[..., :4] = 0.0
    mask = _margin_mask((h, w), margin, frames)
    # coarse to fine: smoothing widens the basin and tames the aliasing
    for k in range(n_iter):
        sigma = 1.0 if k < n_iter // 2 else 0.5
        smooth = gaussian_filter(frames, sigma)
        params = gauss_newton_step(smooth[:, 0], smooth, params, model=model,
                                   mask=mask)
    return clamp_translation(params, model, reach + 1)


def estimate_motion(bursts, *, model="translation", max_shift=2.0, n_iter=10):
    """Motion of every frame of each burst relative to its first frame.

    Registration at low resolution: an exhaustive search of the integer
    translation within ``max_shift`` (+1) frame pixels, then ``n_iter``
    Lucas-Kanade (Gauss-Newton) steps on the motion parameters, on
    Gaussian-smoothed frames (coarse to fine), the frame borders left out.
    :class:`~sklearn_mbdl.BurstSuperResolver` refines these motions at high
    resolution inside its unrolled network.

    Parameters
    ----------
    bursts : array-like of shape (n_bursts, n_frames, h, w)
    model : {"translation", "euclidean", "affine"}, default="translation"
    max_shift : float, default=2.0
        Largest translation expected, in frame pixels.
    n_iter : int, default=10
        Gauss-Newton steps.

    Returns
    -------
    motions : ndarray of shape (n_bursts, n_frames, k)
        ``(dx, dy)`` in frame pixels for translations, ``(dx, dy, theta)``
        (radians) for ``"euclidean"``, ``(a, b, c, d, dx, dy)`` for
        ``"affine"`` (see :func:`~sklearn_mbdl.operators.warp`); frame 0 is
        the reference, with the identity motion.

    Examples
    --------
    >>> from sklearn_mbdl.burst import estimate_motion, motion_error
    >>> from sklearn_mbdl.datasets import load_images, make_bursts
    >>> image = load_images(["camera"])["camera"][None, 200:296, 200:296]
    >>> bursts, _, motions = make_bursts(image, n_frames=4, random_state=0)
    >>> estimated = estimate_motion(bursts)
    >>> bool(motion_error(estimated, motions, bursts.shape[-2:]) < 0.3)
    True
    """
    from .._base import check_number

    if model not in MOTION_MODELS:
        raise ValueError(
            f"model must be one of {sorted(MOTION_MODELS)}, got {model!r}.")
    check_number(max_shift, "max_shift", min_val=0)
    check_number(n_iter, "n_iter", min_val=0, integer=True)
    bursts = np.asarray(bursts)
    if bursts.ndim != 4:
        raise ValueError(
            f"bursts must have shape (n_bursts, n_frames, h, w), got {bursts.shape}.")
    if not np.all(np.isfinite(bursts)):
        raise ValueError("bursts contain NaN or infinity.")
    dtype = bursts.dtype if bursts.dtype in (np.float32, np.float64) else np.float64
    frames = torch.from_numpy(np.ascontiguousarray(bursts, dtype=dtype))
    with torch.no_grad():
        params = _estimate_motion(frames, model, max_shift, n_iter)
    return params.numpy()


def motion_error(estimated, true, frame_shape, *, model="translation"):
    """Mean registration error in frame pixels.

    The distance between the points the estimated and the true motions map
    each frame pixel to, averaged over the pixels and the frames other than
    the reference (frame 0).

    Parameters
    ----------
    estimated, true : array-like of shape (n_bursts, n_frames, k)
        Low-resolution motions (see :func:`estimate_motion`).
    frame_shape : tuple of int
        ``(h, w)`` of the frames.
    model : {"translation", "euclidean", "affine"}, default="translation"

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mbdl.burst import motion_error
    >>> true = np.zeros((1, 2, 2))
    >>> estimated = np.array([[[0.0, 0.0], [0.3, 0.4]]])
    >>> round(motion_error(estimated, true, (8, 8)), 6)
    0.5
    """
    est = motion_matrix(torch.as_tensor(np.asarray(estimated, dtype=np.float64)), model)
    ref = motion_matrix(torch.as_tensor(np.asarray(true, dtype=np.float64)), model)
    if est.shape != ref.shape:
        raise ValueError(
            f"estimated and true motions differ in shape: {tuple(est.shape)} and "
            f"{tuple(ref.shape)}.")
    xx, yy = _grid(tuple(frame_shape), est)
    points = torch.stack([xx, yy, torch.ones_like(xx)], dim=-1)   # (h, w, 3)
    diff = torch.einsum("hwj,nkij->nkhwi", points, est - ref)
    dist = torch.sqrt((diff ** 2).sum(-1)).mean(dim=(-2, -1))    # (n, K)
    return float(dist[:, 1:].mean()) if dist.shape[1] > 1 else 0.0
