"""The unrolled burst super-resolution network (after Lecouat, Ponce &
Mairal, "Lucas-Kanade reloaded", ICCV 2021).

With ``U_p`` the formation model of :class:`~sklearn_mbdl.operators.BurstOperator`,
each of the ``n_iter`` iterations runs, on a batch of bursts ``y``:

1. motion step (from the second iteration): Gauss-Newton (Lucas-Kanade)
   steps on the motions ``p_k``, each frame against ``U_p x``;
2. data step: ``z = argmin 0.5 ||U_p z - y||^2 + (mu_t / 2) ||z - x||^2`` by
   a few conjugate-gradient iterations (warm-started);
3. prior step: ``x = f(z, sigma_t)``, the noise-level conditioned CNN of
   :class:`~sklearn_mbdl.denoisers.DenoisingCNN` (shared by the iterations,
   initialised with the weights in ``_data/burst_prior_init.pt``) or the
   TV proximal map.

``sigma_t = noise_level * exp(s_t)`` and ``mu_t = exp(m_t) (noise_level /
sigma_t)^2`` (the half-quadratic splitting weights) are learned per
iteration; the noise level is given, or estimated from each burst's frames
(:func:`~sklearn_mbdl.burst.estimate_noise_level`); for the TV prior they
and the TV weights are all that is learned.
The first motions come from low-resolution registration
(:func:`~sklearn_mbdl.burst.estimate_motion`), the first image from bicubic
interpolation of the reference frame. Motions are not back-propagated
through (the motion steps run without gradients).
"""

import math

import torch
from torch import nn

from ..denoisers import DenoisingCNN, _shipped_weights, tv_prox
from ..operators import (
    BurstOperator,
    blur_and_bin,
    conjugate_gradient,
    decimation_factors,
    upsample,
)
from ._camera import estimate_noise_level
from ._motion import (
    _estimate_motion,
    _margin_mask,
    clamp_translation,
    gauss_newton_step,
    to_high_res,
    to_low_res,
)

__all__ = ["BurstNet"]

#: the CNN's starting weights: a noise-level conditioned denoiser of natural
#: images, a file of its own so that retraining the PnP prior leaves it
INIT_WEIGHTS = "burst_prior_init.pt"
#: smallest noise level the step sizes are scaled by (noise_level=0 is allowed)
MIN_LEVEL = 1e-3


class BurstNet(nn.Module):
    """Unrolled alternation of motion, data and prior steps (see the module
    notes).

    Parameters
    ----------
    scale : int, default=2
    blur_sigma : float, default=0.8
        Gaussian blur of the formation model, in high-resolution pixels.
    motion : {"translation", "euclidean", "affine"}, default="translation"
    noise_level : float or None, default=0.01
        Default noise level of the bursts (``forward`` may override it);
        ``None`` estimates it from each burst.
    max_shift : float, default=2.0
        Largest translation, in frame pixels (first registration).
    n_iter : int, default=4
    prior : {"cnn", "tv"}, default="cnn"
    n_cg : int, default=4
        Conjugate-gradient iterations of each data step (``forward`` may
        override it).
    n_lk : int, default=2
        Gauss-Newton steps of each motion step.
    pretrained : bool, default=True
        Start the CNN from the shipped weights (``INIT_WEIGHTS``).
    image_shape : tuple of int, optional
        High-resolution shape of bursts with frames of the matching size
        (sides that are not multiples of ``scale``).

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.burst import BurstNet
    >>> net = BurstNet(n_iter=2)
    >>> net(torch.rand(1, 4, 12, 12)).shape
    torch.Size([1, 24, 24])
    """

    def __init__(self, scale=2, blur_sigma=0.8, motion="translation", noise_level=0.01,
                 max_shift=2.0, n_iter=4, prior="cnn", n_cg=4, n_lk=2,
                 pretrained=True, image_shape=None):
        super().__init__()
        self.scale = int(scale)
        self.blur_sigma = float(blur_sigma)
        self.motion = motion
        self.noise_level = None if noise_level is None else float(noise_level)
        self.max_shift = float(max_shift)
        self.n_iter = int(n_iter)
        self.prior = prior
        self.n_cg = int(n_cg)
        self.n_lk = int(n_lk)
        self.image_shape = None if image_shape is None else tuple(image_shape)
        # DPIR-like schedule: from 0.1 (or 10 noise levels) down to the noise level
        level = max(0.01 if noise_level is None else self.noise_level, MIN_LEVEL)
        start = math.log(max(0.1 / level, 1.0) + 1.0)
        self.log_sigma = nn.Parameter(torch.linspace(start, 0.0, self.n_iter))
        self.log_mu = nn.Parameter(torch.zeros(self.n_iter))
        if prior == "cnn":
            self.denoiser = DenoisingCNN()
            if pretrained:
                self.denoiser.load_state_dict(_shipped_weights(INIT_WEIGHTS))
        else:
            self.log_tv = nn.Parameter(torch.zeros(self.n_iter))

    def _image_shape(self, frame_shape, image_shape=None):
        """The high-resolution shape of frames of ``frame_shape``:
        ``image_shape`` (default: the module's) when its frames have that
        shape, else ``scale`` times the frame's sides."""
        image_shape = self.image_shape if image_shape is None else tuple(image_shape)
        if image_shape is not None:
            factors = decimation_factors(image_shape, self.scale)
            if tuple(-(-s // f) for s, f in zip(image_shape, factors)) == tuple(
                    frame_shape):
                return image_shape
        return tuple(1 if s == 1 else self.scale * s for s in frame_shape)

    def _levels(self, y, noise_level):
        """One noise level per burst: given, or estimated from its frames."""
        level = self.noise_level if noise_level is None else noise_level
        if level is None:
            level = estimate_noise_level(y.detach())
        else:
            level = y.new_full((y.shape[0],), float(level))
        return level.clamp(min=MIN_LEVEL)

    def _prior(self, z, sigma, t):
        if self.prior == "cnn":
            level = sigma.reshape(-1, 1, 1, 1).expand(z.shape[0], 1, *z.shape[-2:])
            return self.denoiser(torch.cat([z[:, None], level], dim=1))
        return tv_prox(z, torch.exp(self.log_tv[t]) * sigma, n_iter=30)

    def forward(self, bursts, noise_level=None, return_motion=False, *,
                blur_sigma=None, image_shape=None, n_cg=None):
        """Restore a batch of bursts.

        Parameters
        ----------
        bursts : torch.Tensor of shape (n, K, h, w)
        noise_level : float, optional
            The module's ``noise_level`` by default (estimated from each
            burst when both are None).
        return_motion : bool, default=False
            Also return the motions of the last data step (low-resolution
            units, see :func:`~sklearn_mbdl.burst.estimate_motion`).
        blur_sigma : float, optional
            The optics blur of these bursts in high-resolution pixels (the
            module's ``blur_sigma`` by default).
        image_shape : tuple of int, optional
            Their high-resolution shape, used when their frames have its
            frame shape (the module's ``image_shape`` by default).
        n_cg : int, optional
            Conjugate-gradient iterations of each data step (the module's
            ``n_cg`` by default).

        Returns
        -------
        images : torch.Tensor of shape (n, H, W)
        motions : torch.Tensor of shape (n, K, k)
            Only with ``return_motion=True``.
        """
        y = bursts
        level = self._levels(y, noise_level)
        shape = self._image_shape(tuple(y.shape[-2:]), image_shape)
        sigma_hr = self.blur_sigma if blur_sigma is None else float(blur_sigma)
        n_cg = self.n_cg if n_cg is None else int(n_cg)
        margin = int(math.ceil(self.max_shift)) + 1
        mask = _margin_mask(tuple(y.shape[-2:]), margin, y)

        def observe(frames):
            return blur_and_bin(frames, self.scale, sigma_hr)

        with torch.no_grad():
            motions = _estimate_motion(y.detach(), self.motion, self.max_shift, 10)
            params = to_high_res(motions, model=self.motion, scale=self.scale,
                                 image_shape=shape)
        x = upsample(y[:, 0], self.scale, shape)
        z = x
        for t in range(self.n_iter):
            if t > 0:
                with torch.no_grad():
                    for _ in range(self.n_lk):
                        params = gauss_newton_step(x.detach(), y.detach(), params,
                                                   model=self.motion, observe=observe,
                                                   mask=mask)
                    params = clamp_translation(params, self.motion,
                                               self.scale * (self.max_shift + 2))
            op = BurstOperator(params, scale=self.scale, blur_sigma=sigma_hr,
                               model=self.motion, image_shape=shape)
            sigma = level * torch.exp(self.log_sigma[t])
            mu = torch.exp(self.log_mu[t] - 2 * self.log_sigma[t])
            rhs = op.adjoint(y) + mu * x
            z = conjugate_gradient(lambda v: op.adjoint(op(v)) + mu * v, rhs, z,
                                   n_iter=n_cg, tol=0.0)
            x = self._prior(z, sigma, t)
        if return_motion:
            motions = to_low_res(params, model=self.motion, scale=self.scale,
                                 image_shape=shape)
            return x, motions
        return x
