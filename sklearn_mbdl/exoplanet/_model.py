"""The local ADI model unrolled into a network.

For a companion hypothesis at sky position ``p`` the frames are modelled as::

    y_k = m + x_k + alpha h_k(p) + n_k,     x_k = beta_k D,   n_k ~ N(0, C)

``h_k(p)`` is the PSF at the companion's position in frame ``k`` (it
follows the field rotation). The star's light is the static speckles ``m``
plus a part ``x_k`` sparse in a dictionary ``D`` of the annulus the
companion moves in (one dictionary for all frames, its codes ``beta_k``
change from frame to frame), and the noise is Gaussian with, at every
pixel, a covariance ``C`` over the patch around it: that of the frames
around the static speckles, shrunk towards its diagonal (PACO's noise
model, Flasseur et al. 2018). It is estimated once per cube and does not
depend on the learned parameters.

The static speckles are by default each pixel's temporal mean
(``static_speckles="mean"``, PACO's); it takes a share of every companion
that crosses the pixel. ``static_speckles="mirror"`` takes the temporal
mean *at the pixel symmetric to it about the star*: small phase
aberrations behind an ideal coronagraph give point-symmetric speckles (the
intensity is ``|FT(P phi)|^2`` with a real phase ``phi``) and a companion
at a pixel is not in its mirror's mean, so ``m`` does not absorb it; but
amplitude aberrations, spiders and real coronagraphs break the symmetry
(as on :func:`~sklearn_mbdl.datasets.make_physical_adi_cube`).
``static_speckles="auto"`` (the estimator's default) decides annulus by
annulus from the data (``mirror_shares``), and averages the two means
where they differ by no more than their noise.

The solver alternates two steps::

    b      = y - m - alpha h                         # remove the companion
    beta  <- S_lambda[beta + s C_D^T (b - beta D)]   # ISTA step on the speckles
    alpha <- alpha + rho h^T W (y - m - beta D - alpha h) / h^T W h   # flux step

(``W = C^-1`` where the companion lands, ``C_D`` the analysis map) and is
unrolled to ``n_layers`` layers whose dictionary ``D``, analysis map,
thresholds ``lambda``, steps ``s`` and flux steps ``rho`` are learned. At
initialisation ``D`` and its analysis map are the leading principal
components of the annulus, the thresholds are 0 and the steps 1: the
untrained network is block coordinate descent on the joint (weighted)
least-squares fit of speckles and companion. With no atoms
(``n_components=0``, the estimator's default) it is the weighted
least-squares flux of PACO around the static speckles, and
``(h^T W h)^-1/2`` is its standard deviation.

Everything a hypothesis needs is local: the patches it crosses, their
inverse covariances, and the projections of those patches on the atoms;
the frame-level projections are shared by all hypotheses of an annulus. A
whole map costs a few batched products per layer.
"""

import numpy as np
import torch
from torch import nn

from .._base import check_options
from ..prox import soft_threshold
from ._adi import local_inverse_covariance, trajectory_patches

__all__ = ["LocalADISeparator", "ring_geometry", "companion_signal"]


def companion_signal(positions, fluxes, angles, image_shape, psf, patch_shape,
                     n_frames):
    """Frames ``(n_frames, h * w)`` holding companions of ``fluxes`` at sky
    ``positions`` along their trajectories (the model's own signature)."""
    h, w = image_shape
    out = torch.zeros(n_frames, h * w + 1, dtype=psf.dtype)
    if len(positions) == 0:
        return out[:, :-1]
    index, sig, _ = trajectory_patches(positions, angles, image_shape, psf,
                                       patch_shape)
    values = fluxes[:, None, None] * sig                           # (B, K, P)
    for k in range(n_frames):
        out[k].index_add_(0, index[:, k].reshape(-1), values[:, k].reshape(-1))
    return out[:, :-1]


def ring_geometry(image_shape, fwhm, patch_shape):
    """Annuli of the model: centres, half-width, and each pixel's nearest annulus.

    Annuli are one FWHM apart; each is wide enough to hold every patch of
    the hypotheses assigned to it (separation within half a step of its
    centre).
    """
    h, w = image_shape
    ph, pw = patch_shape
    step = max(float(fwhm), 1.0)
    corner = float(np.hypot(ph // 2, pw // 2))
    half_width = step / 2 + corner + 0.5
    yy, xx = np.mgrid[:h, :w]
    radius = np.hypot(xx - (w - 1) / 2, yy - (h - 1) / 2).ravel()
    n_rings = int(np.floor(radius.max() / step + 0.5)) + 1
    centres = step * np.arange(n_rings)
    nearest = np.clip(np.floor(radius / step + 0.5).astype(int), 0, n_rings - 1)
    masks = np.abs(radius[None, :] - centres[:, None]) <= half_width
    return centres, masks, nearest, step


class LocalADISeparator(nn.Module):
    """The unrolled local model (see the module notes).

    Parameters
    ----------
    cube : array of shape (n_frames, h * w)
        The (scaled) science frames the model is fitted on.
    angles : array of shape (n_frames,)
    psf : array of shape (sh, sw)
    image_shape, patch_shape : (int, int)
    fwhm : float
    n_components : int
        Atoms per annulus.
    n_layers : int
    dictionary : array of shape (n_rings, n_components, h * w) or None
        Initial atoms (masked to their annulus); the SVD of the cube's
        annuli when None.
    noise_scale : array of shape (n_rings,) or None
        Standard deviation of the flux estimate in each annulus:
        ``forward`` returns fluxes in these units (S/N).
    static_speckles : {"auto", "mean", "mirror"}, default="mean"
        Where each pixel's static speckles are taken from: its own temporal
        mean, that of the pixel symmetric to it about the star, or, for
        "auto", a share of the mirror's chosen per annulus from the data
        (``mirror_shares``).
    """

    def __init__(self, cube, angles, psf, image_shape, patch_shape, fwhm,
                 n_components, n_layers, dictionary=None, noise_scale=None,
                 static_speckles="mean"):
        super().__init__()
        cube = torch.as_tensor(np.asarray(cube, dtype=np.float32))
        n_frames, n_pixels = cube.shape
        centres, masks, nearest, step = ring_geometry(image_shape, fwhm, patch_shape)
        self.patch_shape = tuple(patch_shape)
        self.n_layers = n_layers
        self.step = step
        n_rings = len(centres)
        self.image_shape = tuple(image_shape)
        self.static_speckles = static_speckles
        # the share of each pixel's static speckles taken from its mirror
        # pixel (per annulus: 0, 1/2 or 1)
        self.register_buffer("mirror", _pad(torch.as_tensor(
            mirror_shares(cube, nearest, static_speckles)[nearest],
            dtype=torch.float32)), persistent=False)
        mean, inverse = self.noise_model(_pad(cube))
        if dictionary is None:
            centred = (_pad(cube) - mean)[:, :-1].numpy()
            dictionary = _ring_svd(centred, masks, n_components)
        dictionary = torch.as_tensor(np.asarray(dictionary, dtype=np.float32))
        self.register_buffer("cube", _pad(cube))
        # the fitted cube's noise model, derived from it (not saved)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("inverse", inverse, persistent=False)
        self.register_buffer("angles", torch.as_tensor(np.asarray(angles, np.float32)))
        self.register_buffer("psf", torch.as_tensor(np.asarray(psf, np.float32)))
        self.register_buffer("centres", torch.as_tensor(centres, dtype=torch.float32))
        self.register_buffer("mask", _pad(torch.as_tensor(masks, dtype=torch.float32))[:, None])
        self.register_buffer("nearest", torch.as_tensor(nearest))
        if noise_scale is None:
            noise_scale = np.ones(n_rings)
        self.register_buffer("noise_scale",
                             torch.as_tensor(np.asarray(noise_scale, np.float32)))
        self.dictionary = nn.Parameter(_pad(dictionary))
        self.adjoint = nn.Parameter(_pad(dictionary).clone())
        # code scale of every atom (threshold unit): RMS of its codes
        codes = torch.einsum("kn,rcn->rkc", self.cube - self.mean,
                             self.adjoint.detach() * self.mask)
        self.register_buffer("code_unit", codes.pow(2).mean(1).sqrt().clamp_min(1e-12))
        self.threshold = nn.Parameter(torch.zeros(n_layers, n_rings, dictionary.shape[1]))
        self.step_size = nn.Parameter(torch.ones(n_layers))
        self.flux_step = nn.Parameter(torch.ones(n_layers))

    # ----- the model's pieces ---------------------------------------------
    def atoms(self):
        """Dictionary and analysis map, each zero outside its annulus."""
        return self.dictionary * self.mask, self.adjoint * self.mask

    def ring_of(self, positions):
        h, w = self.image_shape
        sep = torch.hypot(positions[:, 0] - (w - 1) / 2, positions[:, 1] - (h - 1) / 2)
        ring = torch.floor(sep / self.step + 0.5).long()
        return ring.clamp(0, len(self.centres) - 1)

    def thresholds(self):
        return torch.clamp(self.threshold, min=0) * self.code_unit

    def steps(self):
        """ISTA and flux step sizes, kept in the stable range (0, 1.9]."""
        return (torch.clamp(self.step_size, 0.0, 1.9),
                torch.clamp(self.flux_step, 0.0, 1.9))

    def drop_frames(self):
        """Forget the fitted frames and their noise covariances, which only
        training reads (it injects companions into those frames).

        What inference needs stays: the fitted cube's static speckles
        (:meth:`background`), the learned parameters and the geometry;
        :meth:`projections` then needs the frames to map, from which it
        estimates their noise model. A fitted estimator keeps no copy of
        its training cube.
        """
        self.cube = None
        self.inverse = None
        return self

    def noise_model(self, cube):
        """The static speckles and the noise's inverse patch covariances
        estimated on padded frames.

        The static speckles are each pixel's temporal mean or, with
        ``static_speckles="mirror"``, the temporal mean of the pixel
        symmetric to it about the star: small phase aberrations behind a
        coronagraph give point-symmetric speckles, and a companion at a
        pixel is not in its mirror's mean, so the mirror mean does not
        absorb it. The covariances are those of the frames around the
        static speckles (PACO's, shrunk towards their diagonal); they do
        not depend on the learned parameters.

        Parameters
        ----------
        cube : torch.Tensor of shape (n_frames, h * w + 1)
            Padded frames: the last column is the zero pixel that patch
            pixels outside the image read (``_pad``).

        Returns
        -------
        mean : torch.Tensor of shape (h * w + 1,)
            The static speckles, padded as ``cube`` (last entry 0).
        inverse : torch.Tensor of shape (h * w, n_patch, n_patch)
            Each pixel's inverse patch covariance.
        """
        with torch.no_grad():
            mean = self._placed(cube.mean(0))
            inverse = local_inverse_covariance(cube[:, :-1] - mean[:-1],
                                               self.image_shape, self.patch_shape)
        return mean, inverse

    def _placed(self, mean):
        """Padded per-pixel means ``(..., h * w + 1)`` as the static speckles
        take them: each pixel's own, its mirror pixel's, or their average,
        by the pixel's mirror share."""
        if bool(self.mirror.any()):
            flipped = torch.cat([mean[..., :-1].flip(-1),
                                 torch.zeros_like(mean[..., -1:])], -1)
            mean = mean + self.mirror * (flipped - mean)
        return mean

    def projections(self, cube=None, weight_cube=None):
        """What all hypotheses share (pass it to :meth:`flux` to map many
        positions).

        Parameters
        ----------
        cube : torch.Tensor of shape (n_frames, h * w + 1), default=None
            Padded frames (the fitted cube when None).
        weight_cube : torch.Tensor of the same shape, default=None
            Frames the noise model (:meth:`noise_model`) is estimated on
            (``cube`` when given, else the fitted cube's, computed once):
            frames with the companions taken out, else the covariance
            absorbs part of them.

        Returns
        -------
        dict
            The centred frames, the atoms, ``y C^T`` on every annulus,
            ``D C^T`` and each pixel's inverse patch covariance.
        """
        if weight_cube is None and cube is not None:
            weight_cube = cube
        if weight_cube is None and self.cube is None:
            raise ValueError("the model's frames were dropped after fitting: "
                             "pass the frames to map.")
        mean, inverse = (self.mean, self.inverse) if weight_cube is None \
            else self.noise_model(weight_cube)
        cube = (self.cube if cube is None else cube) - mean
        D, C = self.atoms()
        return dict(cube=cube, D=D, C=C, a=torch.einsum("kn,rcn->rkc", cube, C),
                    gram=D @ C.transpose(1, 2), inverse=inverse)

    def flux(self, positions, inject=None, cube=None, shared=None,
             return_sigma=False):
        """Flux estimate ``alpha`` (cube units) at sky positions.

        Parameters
        ----------
        positions : torch.Tensor of shape (n, 2)
            Sky positions ``(x, y)``.
        inject : torch.Tensor of shape (n,), default=None
            Companions of these fluxes are added there first (training).
        cube : torch.Tensor of shape (n_frames, h * w + 1), default=None
            Padded frames (the fitted cube when None).
        shared : dict, default=None
            :meth:`projections` of the cube, computed when None.
        return_sigma : bool, default=False
            Also return the estimate's standard deviation under the noise
            model, ``(h^T W h)^-1/2``.

        Returns
        -------
        alpha : torch.Tensor of shape (n,)
        sigma : torch.Tensor of shape (n,), only with ``return_sigma``
        """
        shared = self.projections(cube) if shared is None else shared
        cube, D, C = shared["cube"], shared["D"], shared["C"]
        ring = self.ring_of(positions)
        index, h, centre = trajectory_patches(positions, self.angles, self.image_shape,
                                              self.psf, self.patch_shape)
        n_frames = cube.shape[0]
        frames = torch.arange(n_frames, device=cube.device)[None, :, None]
        y = cube[frames, index]                                   # (B, K, P)
        Ct = C.transpose(1, 2)[ring[:, None, None], index]         # (B, K, P, n)
        Dt = D.transpose(1, 2)[ring[:, None, None], index]
        # W h: the signature whitened by the patch covariance where it lands
        hw = torch.einsum("bkpq,bkq->bkp", shared["inverse"][centre], h)
        u = torch.einsum("bkp,bkpn->bkn", h, Ct)                  # h C^T
        v = torch.einsum("bkp,bkpn->bkn", hw, Dt)                 # h W D^T
        a = shared["a"][ring]                                     # y C^T
        if inject is not None:
            # an injected companion also enters the static speckles' estimate,
            # as a real one does
            n_batch = len(positions)
            flat = index.reshape(n_batch, -1)
            share = h.new_zeros(n_batch, cube.shape[1]).scatter_add_(
                1, flat, h.reshape(n_batch, -1)) / n_frames
            share[:, -1] = 0
            share = self._placed(share)                           # (B, N + 1)
            centred = h - share.gather(1, flat).reshape(h.shape)
            y = y + inject[:, None, None] * centred
            u_share = torch.einsum("bn,bcn->bc", share, C[ring])
            a = a + inject[:, None, None] * (u - u_share[:, None])
        w = (hw * y).sum(-1)                                      # h^T W y
        q = (hw * h).sum((1, 2)).clamp_min(1e-12)                 # h^T W h
        gram = shared["gram"][ring]                               # D C^T
        thresholds = self.thresholds()[:, ring][:, :, None]       # (L, B, 1, n)
        beta = a.new_zeros(a.shape)
        alpha = a.new_zeros(a.shape[0])
        steps, flux_steps = self.steps()
        for t in range(self.n_layers):
            # speckle step on b = y - alpha h
            grad = a - alpha[:, None, None] * u - beta @ gram
            beta = soft_threshold(beta + steps[t] * grad, thresholds[t])
            # flux step on the residual y - beta D - alpha h
            residual = (w - (beta * v).sum(-1)).sum(1) - alpha * q
            alpha = alpha + flux_steps[t] * residual / q
        if return_sigma:
            return alpha, q.rsqrt()
        return alpha

    def forward(self, X):
        """Flux estimates in units of the annulus' noise (S/N).

        Parameters
        ----------
        X : torch.Tensor of shape (n, 3)
            Rows ``(x, y, injected S/N)``.

        Returns
        -------
        torch.Tensor of shape (n,)
        """
        positions, inject = X[:, :2], X[:, 2]
        scale = self.noise_scale[self.ring_of(positions)]
        return self.flux(positions, inject * scale) / scale

    def background(self, cube):
        """The star's light in every frame (companion-free fit: ``alpha =
        0``): the fitted cube's static speckles plus the speckle fit of
        what is left.

        Parameters
        ----------
        cube : torch.Tensor of shape (n_frames, h * w + 1)
            As in :meth:`noise_model`.

        Returns
        -------
        torch.Tensor of shape (n_frames, h * w)
            The star's light in every frame, in the units of ``cube``,
            without the padding pixel.
        """
        cube = cube - self.mean
        D, C = self.atoms()
        a = torch.einsum("kn,rcn->rkc", cube, C)                  # (R, K, n)
        gram = D @ C.transpose(1, 2)
        thresholds = self.thresholds()[:, :, None]                # (L, R, 1, n)
        beta = a.new_zeros(a.shape)
        steps, _ = self.steps()
        for t in range(self.n_layers):
            beta = soft_threshold(beta + steps[t] * (a - beta @ gram),
                                  thresholds[t])
        per_ring = torch.einsum("rkc,rcn->rkn", beta, D)          # (R, K, N + 1)
        n_pixels = cube.shape[1] - 1
        pixels = torch.arange(n_pixels, device=cube.device)
        return self.mean[:-1] + per_ring[self.nearest, :, pixels].T   # (K, N)


#: Largest point-asymmetry of the temporal mean in an annulus, in units of
#: the variance of that mean, for which ``static_speckles="auto"`` takes the
#: static speckles from the mirror pixel (between the values measured on
#: point-symmetric and on asymmetric speckles: see
#: ``benchmarks/results/exoplanet_notes.md``).
SYMMETRY_THRESHOLD = 30.0

#: Largest point-asymmetry, in the same units, at which the temporal mean is
#: symmetric within its own noise: both means then estimate the same
#: speckles, and ``static_speckles="auto"`` averages them (half the noise of
#: either, half the share of a companion the own mean absorbs). The
#: asymmetry's expectation is 1 for symmetric speckles; the margin covers
#: the spread of an annulus's average.
NOISE_SYMMETRY_THRESHOLD = 2.5


def mirror_shares(cube, nearest, static_speckles):
    """The share of each annulus's static speckles taken from the mirror pixel.

    ``"mirror"``: 1 in all; ``"mean"``: 0 in all; ``"auto"``: from the
    point-asymmetry of the temporal mean, the mean squared half-difference
    between the mean and its mirror, ``mean((m - m_mirror)^2) / 2``, in
    units of the variance of the temporal mean (the frames' variance over
    their number): 1/2 up to ``NOISE_SYMMETRY_THRESHOLD`` (symmetric within
    the noise: the average of the two means), 1 up to
    ``SYMMETRY_THRESHOLD`` (point-symmetric up to a few times the noise:
    the mirror's), 0 above (the pixel's own).

    Parameters
    ----------
    cube : torch.Tensor of shape (n_frames, h * w)
    nearest : ndarray of shape (h * w,)
        Annulus of every pixel.
    static_speckles : {"auto", "mirror", "mean"}

    Returns
    -------
    ndarray of float of shape (n_rings,)
        0, 1/2 or 1.
    """
    check_options(static_speckles, "static_speckles", ("auto", "mirror", "mean"))
    n_rings = int(nearest.max()) + 1
    if static_speckles != "auto":
        return np.full(n_rings, float(static_speckles == "mirror"))
    frames = cube.double()
    mean = frames.mean(0)
    asym = ((mean - mean.flip(-1)) ** 2 / 2).numpy()
    noise = (frames.var(0, unbiased=False) / frames.shape[0]).numpy()
    # per-annulus averages of the asymmetry and of the mean's variance
    counts = np.maximum(np.bincount(nearest, minlength=n_rings), 1)
    level = np.bincount(nearest, weights=asym, minlength=n_rings) / counts
    scale = np.bincount(nearest, weights=noise, minlength=n_rings) / counts
    return np.where(level <= NOISE_SYMMETRY_THRESHOLD * scale, 0.5,
                    np.where(level <= SYMMETRY_THRESHOLD * scale, 1.0, 0.0))


def _pad(tensor):
    """Append the zero padding pixel that out-of-image patch pixels read."""
    return torch.nn.functional.pad(tensor, (0, 1))


def _ring_svd(cube, masks, n_components):
    """Leading right singular vectors of the cube on every annulus."""
    n_frames, n_pixels = cube.shape
    atoms = np.zeros((len(masks), n_components, n_pixels), dtype=np.float32)
    if n_components == 0:
        return atoms
    for j, mask in enumerate(masks):
        pixels = np.flatnonzero(mask)
        if pixels.size == 0:
            continue
        _, s, vt = np.linalg.svd(cube[:, pixels].astype(np.float64),
                                 full_matrices=False)
        # a few atoms per annulus at most a quarter of its pixels (and fewer
        # than the frames): the companion must stay outside their span
        k = min(n_components, int((s > 1e-10 * max(s[0], 1e-300)).sum()),
                max(pixels.size // 4, 1), max(n_frames - 1, 1))
        block = np.zeros((k, n_pixels), dtype=np.float32)
        block[:, pixels] = vt[:k]
        atoms[j, :k] = block
    return atoms
