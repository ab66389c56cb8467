"""Simulated bursts (the formation model with random motions and camera
noise: :func:`draw_bursts`, behind both
:func:`sklearn_mbdl.datasets.make_bursts` and the estimator's training and
``simulate``) and the classic baselines: bicubic interpolation of the reference
frame, shift-and-add with known motions, Wiener deconvolution. All on the
pixel-centre grid of :mod:`sklearn_mbdl.operators`."""

import math

import numpy as np
import torch

from ..operators import MOTION_MODELS, BurstOperator, gaussian_filter, upsample
from ._camera import camera_noise, draw_noise_levels
from ._motion import to_high_res

__all__ = ["random_motions", "simulate_bursts", "draw_bursts", "bicubic",
           "shift_and_add", "wiener_deconvolution"]


def random_motions(rng, n_bursts, n_frames, *, model="translation", max_shift=2.0,
                   max_rotation=1.0, image_shape=None):
    """Random low-resolution motions: frame 0 is the identity, the others
    translate uniformly within ``max_shift`` frame pixels (and rotate
    uniformly within ``max_rotation`` degrees for ``"euclidean"``). Images
    one pixel high (1-D signals, ``image_shape=(1, n)``) only move along
    their length.

    Returns
    -------
    ndarray of shape (n_bursts, n_frames, k)
    """
    motions = np.zeros((n_bursts, n_frames, MOTION_MODELS[model]))
    shift = rng.uniform(-max_shift, max_shift, size=(n_bursts, n_frames, 2))
    shift[:, 0] = 0.0
    one_d = image_shape is not None and int(image_shape[0]) == 1
    if one_d:
        shift[..., 1] = 0.0
    if model == "euclidean" and not one_d:
        motions[..., :2] = shift
        motions[:, 1:, 2] = np.deg2rad(rng.uniform(-max_rotation, max_rotation,
                                                   size=(n_bursts, n_frames - 1)))
    elif model == "euclidean":
        motions[..., :2] = shift
    else:
        motions[..., -2:] = shift
    return motions


def simulate_bursts(images, motions, *, scale, blur_sigma, rng, model="translation",
                    noise_level=0.0, shot=0.0, read=0.0):
    """``y_k = S B W_{p_k} x + noise``: the formation model with bicubic
    warps (the solvers' model interpolates bilinearly: no inverse crime).

    Parameters
    ----------
    images : ndarray of shape (n, H, W)
    motions : ndarray of shape (n, K, k)
        Low-resolution motions.
    scale : int
    blur_sigma : float or ndarray of shape (n,)
        Optics blur in frame pixels, one for all or one per image.
    rng : RandomState
    model : str
    noise_level : float, default=0.0
        Standard deviation of additive Gaussian noise.
    shot, read : float or ndarray of shape (n,), default=0.0
        Shot and read variances of the camera noise
        (:func:`~sklearn_mbdl.burst._camera.camera_noise`), added to the
        Gaussian noise.

    Returns
    -------
    ndarray of shape (n, K, h, w), the dtype of ``images``
    """
    x = torch.from_numpy(np.asarray(images, dtype=np.float64))
    params = to_high_res(torch.from_numpy(np.asarray(motions, dtype=np.float64)),
                         model=model, scale=scale, image_shape=x.shape[-2:])
    blur = np.broadcast_to(np.asarray(blur_sigma, dtype=np.float64), len(x))
    bursts = None
    for sigma in np.unique(blur):          # one operator per distinct blur
        which = np.flatnonzero(blur == sigma)
        op = BurstOperator(params[which], scale=scale, blur_sigma=sigma * scale,
                           model=model, mode="bicubic")
        with torch.no_grad():
            frames = op(x[which]).numpy()
        if bursts is None:
            bursts = np.empty((len(x), *frames.shape[1:]))
        bursts[which] = frames
    bursts = camera_noise(bursts, shot, read + float(noise_level) ** 2, rng)
    return bursts.astype(np.asarray(images).dtype, copy=False)


def draw_bursts(rng, images, *, n_frames, scale, model="translation", max_shift=2.0,
                max_rotation=1.0, blur_sigma=0.4, noise_level=0.0, shot_noise=0.0,
                read_noise="camera", signals=True):
    """Bursts of ``images`` through cameras drawn at random: motions
    (:func:`random_motions`), optics blur, shot / read noise
    (:mod:`~sklearn_mbdl.burst._camera`) and Gaussian noise, in that order
    from ``rng``.

    Parameters
    ----------
    rng : RandomState
    images : ndarray of shape (n, H, W)
        Float64 images, sides multiples of ``scale`` or 1.
    n_frames, scale : int
    model : str
    max_shift, max_rotation : float
    blur_sigma : float or (float, float)
        Optics blur in frame pixels; a range draws one per burst, uniform on
        a 0.05-pixel grid.
    noise_level : float or "auto"
        Standard deviation of the Gaussian noise; ``"auto"`` adds none.
    shot_noise : float or (float, float)
        Shot variance per unit of signal, or a range (``read_noise="camera"``
        only).
    read_noise : "camera" or float, default="camera"
        ``"camera"``: one camera per burst, its read variance tied to its
        shot variance (:func:`~sklearn_mbdl.burst._camera.draw_noise_levels`);
        a number: that read variance and the fixed ``shot_noise`` for all.
    signals : bool, default=True
        Images one pixel high are 1-D signals, moved only along their
        length; False moves them along both axes like any image.

    Returns
    -------
    bursts : ndarray of shape (n, n_frames, h, w)
    motions : ndarray of shape (n, n_frames, k)
        Low-resolution motions.
    """
    n = len(images)
    motions = random_motions(rng, n, n_frames, model=model, max_shift=max_shift,
                             max_rotation=max_rotation,
                             image_shape=images.shape[1:] if signals else None)
    if isinstance(blur_sigma, tuple):
        blur = np.round(rng.uniform(*blur_sigma, size=n) / 0.05) * 0.05
    else:
        blur = blur_sigma
    if isinstance(read_noise, str) and read_noise == "camera":
        shot, read = draw_noise_levels(rng, n, shot_noise)
    else:
        shot, read = shot_noise, read_noise
    gaussian = 0.0 if noise_level == "auto" else float(noise_level)
    bursts = simulate_bursts(images, motions, scale=scale, blur_sigma=blur, rng=rng,
                             model=model, noise_level=gaussian, shot=shot, read=read)
    return bursts, motions


def bicubic(bursts, scale, image_shape=None):
    """Bicubic interpolation of the reference frame (frame 0).

    Parameters
    ----------
    bursts : ndarray of shape (n, K, h, w)
    scale : int
    image_shape : tuple of int, optional

    Returns
    -------
    ndarray of shape (n, H, W)
    """
    frames = torch.from_numpy(np.ascontiguousarray(bursts[:, 0], dtype=np.float64))
    return upsample(frames, scale, image_shape).numpy()


def shift_and_add(bursts, motions, scale, *, model="translation", image_shape=None,
                  spread=0.5):
    """Shift-and-add: every frame pixel is splatted (bilinear weights) where
    its motion puts it on the high-resolution grid; the sums of values and
    weights are smoothed by a Gaussian of ``spread`` high-resolution pixels
    (normalised convolution, which fills the holes) and divided.

    Parameters
    ----------
    bursts : ndarray of shape (n, K, h, w)
    motions : ndarray of shape (n, K, k)
        Low-resolution motions (the true ones for the baselines).
    scale : int
    model : str
    image_shape : tuple of int, optional
    spread : float, default=0.5

    Returns
    -------
    ndarray of shape (n, H, W)
    """
    y = torch.from_numpy(np.ascontiguousarray(bursts, dtype=np.float64))
    h, w = y.shape[-2:]
    if image_shape is None:
        image_shape = tuple(1 if s == 1 else scale * s for s in (h, w))
    params = to_high_res(torch.from_numpy(np.asarray(motions, dtype=np.float64)),
                         model=model, scale=scale, image_shape=image_shape)
    # splatting is the adjoint of sampling without blur
    op = BurstOperator(params, scale=scale, blur_sigma=0.0, model=model,
                       image_shape=image_shape)
    with torch.no_grad():
        values = gaussian_filter(op.adjoint(y), spread)
        weights = gaussian_filter(op.adjoint(torch.ones_like(y)), spread)
    fallback = torch.from_numpy(bicubic(bursts, scale, image_shape))
    out = torch.where(weights > 1e-3, values / weights.clamp(min=1e-3), fallback)
    return out.numpy()


def wiener_deconvolution(images, sigma, nsr):
    """Wiener deconvolution of a Gaussian blur (mirror-padded FFT).

    Parameters
    ----------
    images : ndarray of shape (n, H, W)
    sigma : float
        Standard deviation of the blur, in pixels.
    nsr : float
        Noise-to-signal ratio (the regularisation).

    Returns
    -------
    ndarray of shape (n, H, W)
    """
    images = np.asarray(images, dtype=np.float64)
    n, H, W = images.shape
    pad = int(math.ceil(4 * sigma)) + 2
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad)), mode="symmetric")
    fy = np.fft.fftfreq(padded.shape[1])[:, None]
    fx = np.fft.rfftfreq(padded.shape[2])[None, :]
    otf = np.exp(-2 * (np.pi * sigma) ** 2 * (fx ** 2 + fy ** 2))
    spectrum = np.fft.rfft2(padded)
    restored = np.fft.irfft2(spectrum * otf / (otf ** 2 + nsr), s=padded.shape[1:])
    return restored[:, pad:pad + H, pad:pad + W]
