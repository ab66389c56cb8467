"""The camera's noise: shot and read noise, drawn as in the "unprocessing"
model of Brooks et al. (CVPR 2019) that synthetic burst data sets use, and
its level estimated from the frames themselves.

A frame pixel of clean value ``v`` is observed as ``v + e`` with
``e ~ N(0, shot * v + read)``: ``shot`` (the variance per unit of signal,
photon noise) and ``read`` (a variance, the sensor's floor). Cameras differ
in both, and tie them loosely: ``log(read) = 2.18 log(shot) + 1.2 + N(0,
0.26^2)``, ``shot`` log-uniform over the cameras' range.
"""

import numpy as np

__all__ = ["camera_noise", "estimate_noise_level", "draw_noise_levels"]

#: shot-noise range of the unprocessing model (variance per unit of signal)
SHOT_RANGE = (1e-4, 1.2e-2)


def draw_noise_levels(rng, n, shot_noise):
    """Shot and read variances of ``n`` cameras.

    Parameters
    ----------
    rng : RandomState
    n : int
    shot_noise : float or (float, float)
        A fixed shot variance, or a range ``(low, high)`` drawn log-uniformly
        (``low > 0``); the read variance follows the model's relation. 0: no
        noise.

    Returns
    -------
    shot, read : ndarray of shape (n,)
    """
    if np.ndim(shot_noise) == 0:
        shot = np.full(n, float(shot_noise))
    else:
        low, high = (float(v) for v in shot_noise)
        shot = np.exp(rng.uniform(np.log(low), np.log(high), size=n))
    with np.errstate(divide="ignore"):
        log_read = 2.18 * np.log(shot) + 1.2 + 0.26 * rng.standard_normal(n)
    return shot, np.where(shot > 0, np.exp(log_read), 0.0)


def camera_noise(frames, shot, read, rng):
    """Add shot and read noise to clean frames.

    Parameters
    ----------
    frames : ndarray of shape (n, ...)
        Clean values (negative ones count as 0 for the shot noise).
    shot, read : array-like of shape (n,) or float
        Variances (see the module notes).
    rng : RandomState

    Returns
    -------
    ndarray of the shape of ``frames``
    """
    lead = (-1,) + (1,) * (np.ndim(frames) - 1)
    shot = np.reshape(np.broadcast_to(shot, len(frames)), lead)
    read = np.reshape(np.broadcast_to(read, len(frames)), lead)
    std = np.sqrt(shot * np.clip(frames, 0, None) + read)
    return frames + std * rng.standard_normal(frames.shape)


def estimate_noise_level(bursts):
    """Standard deviation of the noise of each burst, from its frames.

    The median absolute value of the finest diagonal (Haar) detail of every
    frame, divided by 0.6745 (Donoho's estimator, robust to edges and to
    the signal-dependent spread of shot noise: it gives the level of the
    typical pixel). Images one pixel high use the horizontal detail.

    Parameters
    ----------
    bursts : torch.Tensor of shape (n, K, h, w)

    Returns
    -------
    torch.Tensor of shape (n,)
        The noise level of each burst, in the units of its pixel values.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.burst import estimate_noise_level
    >>> gen = torch.Generator().manual_seed(0)
    >>> bursts = 0.5 + 0.05 * torch.randn(2, 4, 32, 32, generator=gen)
    >>> estimate_noise_level(bursts).round(decimals=2)
    tensor([0.0500, 0.0500])
    """
    n = bursts.shape[0]
    h, w = bursts.shape[-2:]
    if h >= 2 and w >= 2:
        x = bursts[..., :h - h % 2, :w - w % 2]
        detail = (x[..., ::2, ::2] - x[..., 1::2, ::2] - x[..., ::2, 1::2]
                  + x[..., 1::2, 1::2]) / 2.0
    elif w >= 2:
        x = bursts[..., :w - w % 2]
        detail = (x[..., ::2] - x[..., 1::2]) / 2.0 ** 0.5
    else:
        return bursts.new_zeros(n)
    return detail.reshape(n, -1).abs().median(dim=1).values / 0.6745
