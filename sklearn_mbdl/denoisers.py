"""Priors to plug into the splitting solvers: denoisers ``(x, sigma) -> x``.

Every denoiser here is a callable that takes a batch of noisy images
``x`` of shape ``(n, h, w)`` (a torch tensor) and the standard deviation
``sigma`` of the Gaussian noise it should remove (a float, or a tensor of
shape ``(n,)``), and returns a tensor of the shape, dtype and device of
``x``. Any user callable with this signature plugs into
:func:`sklearn_mbdl.solvers.admm`, :func:`~sklearn_mbdl.solvers.hqs`,
:func:`~sklearn_mbdl.solvers.pgd` and :class:`~sklearn_mbdl.PnPRestorer`.

- :class:`DenoisingCNN` / :class:`CNNDenoiser`: a small learned CNN
  conditioned on the noise level (FFDNet-like), trained by
  :class:`~sklearn_mbdl.PnPRestorer` through skorch.
- :class:`TVDenoiser` (:func:`tv_prox`): the exact proximal map of the
  isotropic total variation, ``argmin_z 0.5||z - x||^2 + weight*sigma*TV(z)``.
- :class:`WaveletDenoiser` (:func:`wavelet_transform`): soft thresholding of
  the detail coefficients of an orthonormal periodic Daubechies wavelet
  transform, the proximal map of ``weight * sigma * ||W_detail z||_1``.
- :class:`SelfEnsemble`: any of them averaged over the eight flips and
  quarter turns of its input (DPIR's self-ensemble).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._base import row_chunks
from ._base import device_of, module_state
from .prox import soft_threshold

__all__ = [
    "DenoisingCNN",
    "CNNDenoiser",
    "load_pretrained",
    "SelfEnsemble",
    "tv_prox",
    "TVDenoiser",
    "daubechies_filter",
    "wavelet_transform",
    "inverse_wavelet_transform",
    "WaveletDenoiser",
]

#: scale of the noise-level map fed to the CNN (keeps its input of order 1)
SIGMA_SCALE = 10.0


def _sigma_per_sample(sigma, x):
    """``sigma`` as a tensor of shape ``(n, 1, 1)`` in ``x``'s dtype/device."""
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if sigma.ndim == 0:
        sigma = sigma.expand(x.shape[0])
    return sigma.reshape(-1, 1, 1)


# ----- learned CNN ----------------------------------------------------------
class DenoisingCNN(nn.Module):
    """A small FFDNet-like denoiser conditioned on the noise level.

    The noisy image is split into its four 2x2 polyphase sub-images (pixel
    unshuffle), stacked with a constant map of the noise level; ``n_layers``
    3x3 convolutions with ``n_channels`` channels and ReLUs (no batch
    normalisation: inference must not depend on the batch) predict the four
    sub-images of the *noise*, which are shuffled back and subtracted from
    the input (residual learning). Working at half resolution makes it four
    times cheaper than DnCNN at the same width and widens its receptive
    field (``4 n_layers + 1`` pixels). Odd sides are padded by replication
    and cropped back.

    With the defaults (48 channels, 6 layers) it has about 8.7e4 parameters.

    Parameters
    ----------
    n_channels : int, default=48
    n_layers : int, default=6

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.denoisers import DenoisingCNN
    >>> net = DenoisingCNN()
    >>> sum(p.numel() for p in net.parameters())
    87076
    >>> x = torch.rand(2, 1, 9, 8)
    >>> net(torch.cat([x, torch.full_like(x, 0.1)], dim=1)).shape
    torch.Size([2, 9, 8])
    """

    def __init__(self, n_channels=48, n_layers=6):
        super().__init__()
        layers = [nn.Conv2d(5, n_channels, 3, padding=1), nn.ReLU()]
        for _ in range(n_layers - 2):
            layers += [nn.Conv2d(n_channels, n_channels, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(n_channels, 4, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, X):
        """Denoise a batch.

        Parameters
        ----------
        X : torch.Tensor of shape (n, 2, h, w)
            The noisy images and the map of their noise level.

        Returns
        -------
        torch.Tensor of shape (n, h, w)
            The denoised images.
        """
        x, sigma = X[:, :1], X[:, 1:2]
        h, w = x.shape[-2:]
        pad = (0, w % 2, 0, h % 2)
        if any(pad):
            x_in = F.pad(x, pad, mode="replicate")
            sigma = F.pad(sigma, pad, mode="replicate")
        else:
            x_in = x
        sub = F.pixel_unshuffle(x_in, 2)
        level = F.pixel_unshuffle(sigma, 2)[:, :1] * SIGMA_SCALE
        # centred input: images in [0, 1] train faster around 0
        noise = F.pixel_shuffle(self.body(torch.cat([sub - 0.5, level], dim=1)), 2)
        return (x_in - noise)[:, 0, :h, :w]


class CNNDenoiser:
    """A trained :class:`DenoisingCNN` as a ``(x, sigma) -> x`` callable.

    Inference runs without gradients, in the dtype of ``x`` (float64 in,
    float64 out) and on the module's device, by chunks of images (the
    toolkit's one chunking rule: ``batch_size`` images on a CPU, larger
    chunks on a GPU).

    Parameters
    ----------
    module : DenoisingCNN
        The trained network (e.g. ``PnPRestorer(...).fit(X).net_.module_``).
    batch_size : int, default=64
        Images per chunk on a CPU.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.denoisers import CNNDenoiser, DenoisingCNN
    >>> denoise = CNNDenoiser(DenoisingCNN())
    >>> denoise(torch.rand(3, 8, 8, dtype=torch.float64), 0.1).dtype
    torch.float64
    """

    def __init__(self, module, batch_size=64):
        self.module = module
        self.batch_size = batch_size

    def __call__(self, x, sigma):
        module = self.module
        device = device_of(module)
        state = module_state(module, x.dtype)
        sigma = _sigma_per_sample(sigma, x).to(device)
        out = torch.empty_like(x)
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                for rows in row_chunks(x.shape[0], device, cpu_size=self.batch_size):
                    xi = x[rows].to(device)
                    inp = torch.stack([xi, sigma[rows].expand_as(xi)], dim=1)
                    out[rows] = torch.func.functional_call(module, state, (inp,)).to(
                        x.device)
        finally:
            module.train(was_training)
        return out


PRETRAINED = "pnp_denoiser.pt"


def load_pretrained(device="cpu", batch_size=64):
    """The CNN denoiser shipped with the package, as a ``(x, sigma) -> x``
    callable.

    A :class:`DenoisingCNN` (default size) trained by ``benchmarks/pnp.py``
    through :class:`~sklearn_mbdl.PnPRestorer` on patches of
    :data:`~sklearn_mbdl.datasets.TRAIN_IMAGES` and synthetic
    :func:`~sklearn_mbdl.datasets.make_dead_leaves` pictures only, with
    noise levels uniform in [0, 0.2] (how, step by step, in
    ``benchmarks/results/pnp_notes.md``). The file
    ``sklearn_mbdl/_data/pnp_denoiser.pt`` is that script's
    ``--save-weights`` output; it loads without network access. Pass it as
    ``PnPRestorer(denoiser=load_pretrained())`` to skip training;
    ``PnPRestorer()`` fine-tunes it on the user's images. The benchmark's
    figures are those of this network.

    Parameters
    ----------
    device : str, default="cpu"
    batch_size : int, default=64
        Inference chunk size.

    Returns
    -------
    CNNDenoiser

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.denoisers import load_pretrained
    >>> denoise = load_pretrained()
    >>> denoise(torch.zeros(1, 8, 8), 0.05).shape
    torch.Size([1, 8, 8])
    """
    module = DenoisingCNN()
    module.load_state_dict(_shipped_weights(PRETRAINED))
    return CNNDenoiser(module.to(device).eval(), batch_size=batch_size)


def _shipped_weights(name):
    """The state dict ``sklearn_mbdl/_data/<name>`` (on the CPU); a
    ``ValueError`` naming the file when the installation lacks it."""
    import os

    path = os.path.join(os.path.dirname(__file__), "_data", name)
    if not os.path.exists(path):
        raise ValueError(
            f"the shipped weights {path} are missing from this installation "
            f"(`{PRETRAINED}` comes from `python benchmarks/pnp.py --save-weights "
            f"sklearn_mbdl/_data/{PRETRAINED}`)."
        )
    return torch.load(path, map_location="cpu", weights_only=True)


class SelfEnsemble:
    """A denoiser averaged over the eight symmetries of the square.

    ``SelfEnsemble(d)(x, sigma)`` is the mean over the four quarter turns
    ``R`` and the two mirror images ``F`` of ``R^-1 F^-1 d(F R x, sigma)``:
    the result is exactly equivariant to flips and quarter turns, and the
    errors of a learned denoiser that is not are partly averaged out, at
    eight times its cost (the "x8" self-ensemble of DPIR, Zhang et al.
    2021). For an equivariant denoiser it changes nothing.

    Parameters
    ----------
    denoiser : callable
        A denoiser ``(x, sigma) -> x`` on ``(n, h, w)`` tensors; non-square
        images reach it transposed for odd quarter turns, so it must accept
        any size (every denoiser of this module does).

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.denoisers import SelfEnsemble
    >>> shift = lambda x, sigma: torch.roll(x, 1, dims=-1)  # not equivariant
    >>> x = torch.arange(9.0).reshape(1, 3, 3)
    >>> y = SelfEnsemble(shift)(x, 0.1)
    >>> bool(torch.allclose(SelfEnsemble(shift)(x.flip(-1), 0.1), y.flip(-1)))
    True
    """

    def __init__(self, denoiser):
        if not callable(denoiser):
            raise ValueError(f"SelfEnsemble needs a callable denoiser, got {denoiser!r}.")
        self.denoiser = denoiser

    def __call__(self, x, sigma):
        total = torch.zeros_like(x)
        for turns in range(4):
            for mirror in (False, True):
                z = torch.rot90(x, turns, dims=(-2, -1))
                z = z.flip(-1) if mirror else z
                out = self.denoiser(z, sigma)
                out = out.flip(-1) if mirror else out
                total = total + torch.rot90(out, -turns, dims=(-2, -1))
        return total / 8

    def __repr__(self):
        return f"SelfEnsemble({self.denoiser!r})"


# ----- total variation --------------------------------------------------------
def _gradient(x):
    """Forward differences with Neumann boundaries, shape ``(n, 2, h, w)``."""
    dh = torch.zeros_like(x)
    dw = torch.zeros_like(x)
    dh[:, :-1] = x[:, 1:] - x[:, :-1]
    dw[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    return torch.stack([dh, dw], dim=1)


def _divergence(p):
    """Minus the adjoint of :func:`_gradient`."""
    ph, pw = p[:, 0], p[:, 1]
    div = torch.zeros_like(ph)
    div[:, :-1] += ph[:, :-1]
    div[:, 1:] -= ph[:, :-1]
    div[:, :, :-1] += pw[:, :, :-1]
    div[:, :, 1:] -= pw[:, :, :-1]
    return div


def tv_prox(x, weight, *, n_iter=50):
    """Proximal map of the isotropic total variation, batched.

    ``argmin_z 0.5 ||z - x||^2 + weight * TV(z)`` with
    ``TV(z) = sum_ij sqrt((dz/di)^2 + (dz/dj)^2)`` (forward differences,
    Neumann boundaries), by the fast gradient projection on the dual
    (Beck & Teboulle, 2009), a fixed number of iterations (so a sample's
    result does not depend on the rest of the batch).

    Parameters
    ----------
    x : torch.Tensor of shape (n, h, w)
    weight : float or torch.Tensor of shape (n,)
        Non-negative weight of the TV term.
    n_iter : int, default=50
        Dual iterations.

    Returns
    -------
    torch.Tensor of shape (n, h, w)

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.denoisers import tv_prox
    >>> x = torch.tensor([[[0.0, 0.0, 1.0, 1.0]]])
    >>> tv_prox(x, 0.1, n_iter=200)
    tensor([[[0.0500, 0.0500, 0.9500, 0.9500]]])
    """
    weight = _sigma_per_sample(weight, x)
    if bool((weight < 0).any()):
        raise ValueError("tv_prox needs a non-negative weight.")
    safe = torch.where(weight > 0, weight, torch.ones_like(weight))
    step = 1.0 / (8.0 * safe)
    p = r = x.new_zeros((x.shape[0], 2, *x.shape[1:]))
    t = 1.0
    for _ in range(n_iter):
        g = _gradient(x - weight * _divergence(r))
        q = r - step[:, None] * g
        # clamp before the square root: same value, and no 0 * inf = NaN
        # gradient where q = 0 (flat regions) when unrolled networks train through it
        norm = torch.sqrt((q[:, 0] ** 2 + q[:, 1] ** 2).clamp(min=1.0))
        p_new = q / norm[:, None]
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        r = p_new + ((t - 1.0) / t_new) * (p_new - p)
        p, t = p_new, t_new
    return x - weight * _divergence(p)


class TVDenoiser:
    """Total-variation denoiser: ``(x, sigma) -> prox_{weight*sigma*TV}(x)``.

    Parameters
    ----------
    weight : float, default=1.0
        TV weight per unit of noise level.
    n_iter : int, default=50
        Dual iterations of :func:`tv_prox`.

    Examples
    --------
    Each sample is denoised at its own noise level: the TV weight is
    ``weight * sigma``, so the second step edge, at twice the level, loses
    twice as much contrast (as :func:`tv_prox` with weights 0.1 and 0.2).

    >>> import torch
    >>> from sklearn_mbdl.denoisers import TVDenoiser
    >>> steps = torch.tensor([[[0.0, 0.0, 1.0, 1.0]]]).repeat(2, 1, 1)
    >>> TVDenoiser(n_iter=200)(steps, torch.tensor([0.1, 0.2]))
    tensor([[[0.0500, 0.0500, 0.9500, 0.9500]],
    <BLANKLINE>
            [[0.1000, 0.1000, 0.9000, 0.9000]]])
    """

    def __init__(self, weight=1.0, n_iter=50):
        self.weight = weight
        self.n_iter = n_iter

    def __call__(self, x, sigma):
        return tv_prox(x, self.weight * _sigma_per_sample(sigma, x).reshape(-1),
                       n_iter=self.n_iter)

    def __repr__(self):
        return f"TVDenoiser(weight={self.weight}, n_iter={self.n_iter})"


# ----- wavelets -----------------------------------------------------------------
def daubechies_filter(n_vanishing):
    """Low-pass filter of the orthonormal Daubechies wavelet ``db<N>``.

    Built by spectral factorisation (the minimum-phase root choice), so any
    order is available without a wavelet library; ``db1`` is Haar.

    Parameters
    ----------
    n_vanishing : int
        Number of vanishing moments ``N`` (filter length ``2N``).

    Returns
    -------
    ndarray of shape (2 * n_vanishing,)
        Sums to ``sqrt(2)``, orthonormal to its even shifts.

    Examples
    --------
    >>> from sklearn_mbdl.denoisers import daubechies_filter
    >>> daubechies_filter(2).round(4)
    array([ 0.483 ,  0.8365,  0.2241, -0.1294])
    """
    n = int(n_vanishing)
    if n < 1:
        raise ValueError(f"n_vanishing must be >= 1, got {n_vanishing!r}.")
    # P(y) = sum_k C(N-1+k, k) y^k with y = (2 - z - 1/z) / 4
    coeffs = [math.comb(n - 1 + k, k) for k in range(n)]
    roots_y = np.roots(coeffs[::-1]) if n > 1 else np.array([])
    roots_z = []
    for y in roots_y:
        # z + 1/z = 2 - 4y: keep the root inside the unit circle
        b = 2 - 4 * y
        z = np.roots([1, -b, 1])
        roots_z.append(z[np.argmin(np.abs(z))])
    poly = np.array([1.0])
    for _ in range(n):
        poly = np.convolve(poly, [1.0, 1.0])
    for z in roots_z:
        poly = np.convolve(poly, [1.0, -z])
    h = np.real(poly)
    h = h * math.sqrt(2) / h.sum()
    return h[::-1].copy() if abs(h[-1]) > abs(h[0]) else h


def _analysis_1d(x, low, high):
    """One level along the last axis (periodic), length must be even."""
    n = x.shape[-1]
    length = low.shape[0]
    idx = (2 * torch.arange(n // 2, device=x.device)[:, None]
           + torch.arange(length, device=x.device)[None, :]) % n
    gathered = x[..., idx]  # (..., n/2, L)
    return gathered @ low, gathered @ high


def _synthesis_1d(a, d, low, high):
    """Adjoint (= inverse) of :func:`_analysis_1d`."""
    half = a.shape[-1]
    n = 2 * half
    length = low.shape[0]
    idx = (2 * torch.arange(half, device=a.device)[:, None]
           + torch.arange(length, device=a.device)[None, :]) % n
    contrib = a[..., None] * low + d[..., None] * high  # (..., n/2, L)
    out = a.new_zeros((*a.shape[:-1], n))
    return out.index_add_(-1, idx.reshape(-1), contrib.reshape(*a.shape[:-1], -1))


def _filters(wavelet, like):
    low = torch.as_tensor(daubechies_filter(wavelet), dtype=like.dtype,
                          device=like.device)
    signs = torch.tensor([(-1.0) ** k for k in range(low.shape[0])],
                         dtype=like.dtype, device=like.device)
    high = signs * low.flip(0)
    return low, high


def _check_wavelet_shape(shape, levels):
    factor = 2 ** levels
    if shape[0] % factor or shape[1] % factor:
        raise ValueError(
            f"a {levels}-level wavelet transform needs image sides that are "
            f"multiples of {factor}, got {tuple(shape)}."
        )


def wavelet_transform(x, wavelet=4, levels=3):
    """Orthonormal periodic 2-D Daubechies wavelet transform, batched.

    Parameters
    ----------
    x : torch.Tensor of shape (n, h, w)
        Sides must be multiples of ``2**levels``.
    wavelet : int, default=4
        Vanishing moments of the Daubechies wavelet (1 = Haar, 4 = db4).
    levels : int, default=3

    Returns
    -------
    approximation : torch.Tensor of shape (n, h / 2**levels, w / 2**levels)
    details : list of tuples of three tensors
        ``(horizontal, vertical, diagonal)`` detail bands, finest first.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.denoisers import (inverse_wavelet_transform,
    ...                                     wavelet_transform)
    >>> x = torch.rand(2, 16, 16, dtype=torch.float64)
    >>> a, d = wavelet_transform(x, 2, 2)
    >>> torch.allclose(inverse_wavelet_transform(a, d, 2), x)
    True
    """
    _check_wavelet_shape(x.shape[-2:], levels)
    low, high = _filters(wavelet, x)
    details = []
    a = x
    for _ in range(levels):
        lo, hi = _analysis_1d(a, low, high)  # along w
        ll, lh = _analysis_1d(lo.transpose(-1, -2), low, high)  # along h
        hl, hh = _analysis_1d(hi.transpose(-1, -2), low, high)
        a = ll.transpose(-1, -2)
        details.append((lh.transpose(-1, -2), hl.transpose(-1, -2),
                        hh.transpose(-1, -2)))
    return a, details


def inverse_wavelet_transform(approximation, details, wavelet=4):
    """Inverse of :func:`wavelet_transform` (its adjoint: it is orthonormal).

    Parameters
    ----------
    approximation : torch.Tensor
    details : list of tuples of three tensors, finest first
    wavelet : int, default=4

    Returns
    -------
    torch.Tensor of shape (n, h, w)
    """
    low, high = _filters(wavelet, approximation)
    a = approximation
    for lh, hl, hh in reversed(details):
        lo = _synthesis_1d(a.transpose(-1, -2), lh.transpose(-1, -2), low, high)
        hi = _synthesis_1d(hl.transpose(-1, -2), hh.transpose(-1, -2), low, high)
        a = _synthesis_1d(lo.transpose(-1, -2), hi.transpose(-1, -2), low, high)
    return a


class WaveletDenoiser:
    """Wavelet soft thresholding: ``(x, sigma) ->`` the proximal map of
    ``weight * sigma * ||W_detail z||_1``.

    ``W`` is the orthonormal periodic Daubechies transform of
    :func:`wavelet_transform`; the approximation band is kept. Images whose
    sides are not multiples of ``2**levels`` are padded by reflection (then
    the map is a close approximation of the prox, not the exact one); the
    number of levels is reduced for images too small for it.

    Parameters
    ----------
    weight : float, default=3.0
        Threshold per unit of noise level.
    wavelet : int, default=4
        Vanishing moments (1 = Haar, 4 = db4).
    levels : int, default=3

    Examples
    --------
    Noise of level 0.1 on a flat 20 x 20 image (not a multiple of
    ``2**levels``: padded, then cropped back): the flat level is in the
    kept approximation band, the noise in the thresholded details, and the
    mean squared error falls about fiftyfold.

    >>> import torch
    >>> from sklearn_mbdl.denoisers import WaveletDenoiser
    >>> flat = torch.full((1, 20, 20), 0.5)
    >>> noise = 0.1 * torch.randn(1, 20, 20, generator=torch.Generator().manual_seed(0))
    >>> denoised = WaveletDenoiser()(flat + noise, 0.1)
    >>> denoised.shape
    torch.Size([1, 20, 20])
    >>> bool(((denoised - flat) ** 2).mean() < (noise ** 2).mean() / 20)
    True
    """

    def __init__(self, weight=3.0, wavelet=4, levels=3):
        self.weight = weight
        self.wavelet = wavelet
        self.levels = levels

    def __call__(self, x, sigma):
        h, w = x.shape[-2:]
        levels = self.levels
        while levels > 0 and 2 ** levels > max(h, w):
            levels -= 1
        if levels == 0:
            return x.clone()
        factor = 2 ** levels
        ph, pw = (-h) % factor, (-w) % factor
        z = x
        if ph or pw:
            # reflect where the side allows it, replicate otherwise
            mode = "reflect" if ph < h and pw < w else "replicate"
            z = F.pad(x[:, None], (0, pw, 0, ph), mode=mode)[:, 0]
        threshold = self.weight * _sigma_per_sample(sigma, z)
        a, details = wavelet_transform(z, self.wavelet, levels)
        details = [tuple(soft_threshold(band, threshold) for band in bands)
                   for bands in details]
        return inverse_wavelet_transform(a, details, self.wavelet)[:, :h, :w]

    def __repr__(self):
        return (f"WaveletDenoiser(weight={self.weight}, wavelet=db{self.wavelet}, "
                f"levels={self.levels})")
