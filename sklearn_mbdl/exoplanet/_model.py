"""The local ADI model unrolled into a network (the seed's separator).

For a companion hypothesis at sky position ``p`` the frames are modelled as::

    y_k = x_k + alpha h_k(p) + noise,     x_k = beta_k D

``h_k(p)`` is the PSF at the companion's position in frame ``k`` (it
follows the field rotation), ``x_k`` the star's speckles, sparse in a
dictionary ``D`` of the annulus the companion moves in (quasi-static: one
dictionary for all frames, its codes ``beta_k`` change from frame to frame).
The solver alternates the two steps of the seed's slides::

    b      = y - alpha h                             # remove the companion
    beta  <- S_lambda[beta + s C^T (b - beta D)]     # ISTA step on the speckles
    alpha <- alpha + rho h^T W (y - beta D - alpha h) / h^T W h   # flux step

(``W``: the inverse variance of each pixel's residual after the speckle
fit, the noise model of the flux step) and is unrolled to ``n_layers`` layers whose dictionary ``D``, analysis map
``C``, thresholds ``lambda``, steps ``s`` and flux steps ``rho`` are learned.
At initialisation ``D = C`` are the leading singular vectors of the
annulus (the mean and the principal components of the speckles), the
thresholds are 0 and the steps 1: the untrained network is block
coordinate descent on the joint (weighted) least-squares fit of speckles
and companion: PCA-ADI with the companion modelled. The atoms, computed
from frames that hold the companions, still absorb part of them; see
``ExoplanetSeparator.photometry`` for the correction.

Everything a hypothesis needs is local: the patches it crosses, and the
projections of those patches on the atoms; the frame-level projections
``y_k C^T`` are shared by all hypotheses of an annulus. A whole map costs a
few matrix products per layer.
"""

import numpy as np
import torch
from torch import nn

from ..prox import soft_threshold
from ._adi import trajectory_patches

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
    """

    def __init__(self, cube, angles, psf, image_shape, patch_shape, fwhm,
                 n_components, n_layers, dictionary=None, noise_scale=None):
        super().__init__()
        cube = torch.as_tensor(np.asarray(cube, dtype=np.float32))
        n_frames, n_pixels = cube.shape
        centres, masks, nearest, step = ring_geometry(image_shape, fwhm, patch_shape)
        self.image_shape = tuple(image_shape)
        self.patch_shape = tuple(patch_shape)
        self.n_layers = n_layers
        self.step = step
        n_rings = len(centres)
        if dictionary is None:
            dictionary = _ring_svd(cube.numpy(), masks, n_components)
        dictionary = torch.as_tensor(np.asarray(dictionary, dtype=np.float32))
        self.register_buffer("cube", _pad(cube))
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
        codes = torch.einsum("kn,rcn->rkc", self.cube, self.adjoint.detach() * self.mask)
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

    def projections(self, cube=None, weight_cube=None):
        """What all hypotheses share (pass it to :meth:`flux` to map many
        positions).

        Parameters
        ----------
        cube : torch.Tensor of shape (n_frames, h * w + 1), default=None
            Padded frames (the fitted cube when None).
        weight_cube : torch.Tensor of the same shape, default=None
            Frames the pixel weights are measured on (``cube`` when None):
            frames with the companions taken out, else a bright companion
            lowers its own pixels' weights.

        Returns
        -------
        dict
            The atoms, ``y C^T`` on every annulus, ``D C^T`` and the weights.
        """
        cube = self.cube if cube is None else cube
        weight_cube = cube if weight_cube is None else weight_cube
        D, C = self.atoms()
        # the noise model: the residual of each pixel after the speckle fit
        # has its own variance (bright speckles leave larger residuals); the
        # flux step is the weighted least-squares one, weights 1 / variance
        with torch.no_grad():
            residual = weight_cube[:, :-1] - self.background(weight_cube)
            variance = residual.pow(2).mean(0)
            variance = variance + 0.05 * variance.mean() + 1e-30
            weight = variance.mean() / variance
        return dict(cube=cube, D=D, C=C, a=torch.einsum("kn,rcn->rkc", cube, C),
                    gram=D @ C.transpose(1, 2),
                    weight=torch.nn.functional.pad(weight, (0, 1)))

    def flux(self, positions, inject=None, cube=None, shared=None):
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

        Returns
        -------
        torch.Tensor of shape (n,)
        """
        shared = self.projections(cube) if shared is None else shared
        cube, D, C = shared["cube"], shared["D"], shared["C"]
        ring = self.ring_of(positions)
        index, h, _ = trajectory_patches(positions, self.angles, self.image_shape,
                                         self.psf, self.patch_shape)
        frames = torch.arange(cube.shape[0], device=cube.device)[None, :, None]
        y = cube[frames, index]                                   # (B, K, P)
        Ct = C.transpose(1, 2)[ring[:, None, None], index]         # (B, K, P, n)
        Dt = D.transpose(1, 2)[ring[:, None, None], index]
        hw = h * shared["weight"][index]                          # weighted h
        u = torch.einsum("bkp,bkpn->bkn", h, Ct)                  # h C^T
        v = torch.einsum("bkp,bkpn->bkn", hw, Dt)                 # h W D^T
        a = shared["a"][ring]                                     # y C^T
        if inject is not None:
            y = y + inject[:, None, None] * h
            a = a + inject[:, None, None] * u
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
        """The speckles of every frame (companion-free fit: ``alpha = 0``).

        Parameters
        ----------
        cube : torch.Tensor of shape (n_frames, h * w + 1)
            Padded frames.

        Returns
        -------
        torch.Tensor of shape (n_frames, h * w)
        """
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
        return per_ring[self.nearest, :, pixels].T                # (K, N)


def _pad(tensor):
    """Append the zero padding pixel that out-of-image patch pixels read."""
    return torch.nn.functional.pad(tensor, (0, 1))


def _ring_svd(cube, masks, n_components):
    """Leading right singular vectors of the cube on every annulus."""
    n_frames, n_pixels = cube.shape
    atoms = np.zeros((len(masks), n_components, n_pixels), dtype=np.float32)
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
