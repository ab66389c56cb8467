"""The DCEA module, its loss, and the initialisation and simulation helpers."""

import math

import numpy as np
import torch
from torch import nn

from .._base import random_symmetries
from ..operators import ConvolutionOperator, code_shape
from ..solvers import (
    exponential_family_nll,
    exponential_family_step,
    inverse_link,
    link,
    natural_offset,
)


def _unit_filters(filters):
    """Filters scaled to unit norm (the scale lives in the codes)."""
    norms = torch.linalg.vector_norm(filters.reshape(filters.shape[0], -1), dim=1)
    shape = (-1, *([1] * (filters.ndim - 1)))
    return filters / torch.clamp(norms, min=1e-12).reshape(shape)


class DCEA(nn.Module):
    """Proximal gradient on an exponential-family likelihood, unrolled.

    Layer ``t`` is one step of the model-based solver,
    :func:`~sklearn_mbdl.solvers.exponential_family_step`::

        s <- prox_l1(s - eta * E^T (f^{-1}(b + D s) - x), lambda_c)

    starting from ``s = 0``, with the decoder filters ``D`` (the dictionary
    ``H``), the encoder filters ``E`` (``E = D`` for DCEA-C, ``tied=True``;
    learned separately for DCEA-UC), the step ``eta`` and one threshold per
    filter ``lambda_c = eta * alpha_c``. The output is the decoded mean
    ``mu = f^{-1}(b + D s)`` (``exp`` for Poisson) of the final codes. The
    offset ``b`` is the signal's level, ``f(mean(x))``, global or, with
    ``offset_window``, local (:func:`~sklearn_mbdl.solvers.natural_offset`):
    the codes carry the detail around it. Filters are used at unit
    norm. Step and l1 weights are learned on a log scale. At initialisation
    ``eta = step`` and ``alpha_c = alpha``:
    the untrained network is ``n_layers`` iterations of the model-based
    solver with the initial dictionary.

    Parameters
    ----------
    filters : torch.Tensor of shape (C, k, k) or (C, k)
        Initial filters (2-D images or 1-D signals).
    signal_shape : tuple of int
        ``(h, w)`` or ``(length,)``.
    stride : int
    n_layers : int
    alpha : float
        Weight of the l1 penalty at initialisation.
    step : float
        Step size at initialisation.
    tied : bool, default=True
        DCEA-C (``True``) or DCEA-UC (``False``).
    distribution : {"poisson", "gaussian", "binomial"}, default="poisson"
    learn_threshold : bool, default=True
        Learn the step and the thresholds (supervised training); with
        ``False`` only the filters are learned, as in the paper's
        unsupervised dictionary learning (the sparsity level stays
        ``alpha``).
    offset_window : float, optional
        Width (pixels) of the local level ``b``; None for one level per
        signal.
    """

    def __init__(self, filters, signal_shape, stride, n_layers, alpha, step, *,
                 tied=True, distribution="poisson", learn_threshold=True,
                 offset_window=None):
        super().__init__()
        self.offset_window = offset_window
        filters = torch.as_tensor(filters)
        self.signal_shape = tuple(int(n) for n in signal_shape)
        self.stride = int(stride)
        self.n_layers = int(n_layers)
        self.tied = bool(tied)
        self.distribution = distribution
        self.decoder_filters = nn.Parameter(filters.clone())
        if not self.tied:
            self.encoder_filters = nn.Parameter(filters.clone())
        dtype = filters.dtype
        n_kernels = filters.shape[0]
        self.register_buffer("step_unit", torch.tensor(float(step), dtype=dtype))
        # step and l1 weights are learned on a log scale: they are positive,
        # and relative changes (what they need: the right threshold can be
        # tens of times the initial one) come at Adam's pace
        log_step = torch.zeros(1, dtype=dtype)
        # one l1 weight per filter, broadcast over the code maps: (C, 1[, 1])
        log_alpha = torch.full((n_kernels, *([1] * len(self.signal_shape))),
                               math.log(max(float(alpha), 1e-6)), dtype=dtype)
        if learn_threshold:
            self.log_step = nn.Parameter(log_step)
            self.log_alpha = nn.Parameter(log_alpha)
        else:
            self.register_buffer("log_step", log_step)
            self.register_buffer("log_alpha", log_alpha)

    def _shape(self, signal_shape):
        """The signal shape: the training one when None."""
        return self.signal_shape if signal_shape is None else tuple(signal_shape)

    def operators(self, signal_shape=None):
        """The decoder ``D`` and encoder ``E`` as convolution operators.

        Parameters
        ----------
        signal_shape : tuple of int, optional
            Shape of the signals; the training shape by default (the
            network is convolutional and runs on any size).

        Returns
        -------
        decoder, encoder : ConvolutionOperator
            The same object twice when ``tied``.
        """
        shape = self._shape(signal_shape)
        decoder = ConvolutionOperator(_unit_filters(self.decoder_filters),
                                      shape, self.stride)
        if self.tied:
            return decoder, decoder
        encoder = ConvolutionOperator(_unit_filters(self.encoder_filters),
                                      shape, self.stride)
        return decoder, encoder

    def step(self):
        """The learned step size."""
        return torch.exp(self.log_step) * self.step_unit

    def alphas(self):
        """The learned l1 weight of each filter, shape ``(C, 1[, 1])``."""
        return torch.exp(self.log_alpha)

    def thresholds(self):
        """The thresholds of the soft threshold: ``step * alpha_c``."""
        return self.step() * self.alphas()

    def encode(self, x, signal_shape=None):
        """Codes and offsets of flattened signals: the ``n_layers`` steps.

        Parameters
        ----------
        x : torch.Tensor of shape (n, n_features)
            Flattened signals.
        signal_shape : tuple of int, optional
            Shape of the signals; the training shape by default (the
            network is convolutional and runs on any size).

        Returns
        -------
        codes : torch.Tensor of shape (n, C, \\*code_shape)
        offset : torch.Tensor of shape (n, 1, \\*signal_shape) or (n, 1, 1[, 1])
        """
        shape = self._shape(signal_shape)
        return self._encode(x, shape, *self.operators(shape))

    def _encode(self, x, shape, decoder, encoder):
        signals = x.reshape(x.shape[0], 1, *shape)
        offset = natural_offset(signals, self.distribution,
                                window=self.offset_window)
        step, thresholds = self.step(), self.thresholds()
        codes = signals.new_zeros((x.shape[0], *decoder.in_shape))
        for _ in range(self.n_layers):
            codes = exponential_family_step(codes, signals, offset, decoder, encoder,
                                            step, thresholds, self.distribution)
        return codes, offset

    def decode(self, codes, offset, signal_shape=None):
        """The mean ``f^{-1}(b + D s)``.

        Parameters
        ----------
        codes : torch.Tensor of shape (n, C, \\*code_shape)
        offset : torch.Tensor
            ``b``, broadcast against the signals.
        signal_shape : tuple of int, optional
            Shape of the signals; the training shape by default (the
            network is convolutional and runs on any size).

        Returns
        -------
        torch.Tensor of shape (n, n_features)
        """
        return self._decode(codes, offset, self.operators(signal_shape)[0])

    def _decode(self, codes, offset, decoder):
        mean = inverse_link(decoder(codes) + offset, self.distribution)
        return mean.reshape(codes.shape[0], -1)

    def pack(self, codes, offset, signal_shape=None):
        """Offsets and codes as rows ``[b.ravel(), s.ravel()]``.

        Parameters
        ----------
        codes, offset, signal_shape
            As in :meth:`decode` (e.g. what :meth:`encode` returns).

        Returns
        -------
        torch.Tensor of shape (n, n_features + C * prod(code_shape))
            The offset at every pixel, then the code maps.
        """
        shape = self._shape(signal_shape)
        n = len(codes)
        return torch.cat([offset.expand(n, 1, *shape).reshape(n, -1),
                          codes.reshape(n, -1)], dim=1)

    def unpack(self, rows, signal_shape=None):
        """The inverse of :meth:`pack`.

        Parameters
        ----------
        rows : torch.Tensor of shape (n, n_features + C * prod(code_shape))
        signal_shape : tuple of int, optional
            Shape of the signals; the training shape by default (the
            network is convolutional and runs on any size).

        Returns
        -------
        codes, offset : torch.Tensor
        """
        shape = self._shape(signal_shape)
        codes_shape = code_shape(shape, self.decoder_filters.shape[-1], self.stride)
        n_pixels = int(np.prod(shape))
        offset = rows[:, :n_pixels].reshape(len(rows), 1, *shape)
        codes = rows[:, n_pixels:].reshape(len(rows), self.decoder_filters.shape[0],
                                           *codes_shape)
        return codes, offset

    def forward(self, x, output="mean", signal_shape=None):
        """Run the autoencoder, the encoder or the decoder.

        Parameters
        ----------
        x : torch.Tensor of shape (n, n_features) or (n, n_codes)
            Flattened signals; packed codes with ``output="decode"``.
        output : {"mean", "codes", "decode"}, default="mean"
            ``"mean"``: the decoded mean of the signals (the autoencoder);
            ``"codes"``: their packed codes (:meth:`pack`); ``"decode"``:
            the decoded mean of packed codes.
        signal_shape : tuple of int, optional
            Shape of the signals; the training shape by default (the
            network is convolutional and runs on any size).

        Returns
        -------
        torch.Tensor
        """
        shape = self._shape(signal_shape)
        # the unit-norm filters and operators once per call, for both halves
        decoder, encoder = self.operators(shape)
        if output == "decode":
            return self._decode(*self.unpack(x, shape), decoder)
        codes, offset = self._encode(x, shape, decoder, encoder)
        if output == "codes":
            return self.pack(codes, offset, shape)
        return self._decode(codes, offset, decoder)


class ExponentialFamilyLoss(nn.Module):
    """Mean negative log-likelihood of targets ``x`` under predicted means ``mu``
    (the unsupervised loss of the autoencoder).

    Parameters
    ----------
    distribution : {"poisson", "gaussian", "binomial"}, default="poisson"
    """

    def __init__(self, distribution="poisson"):
        super().__init__()
        self.distribution = distribution

    def forward(self, mean, target):
        eta = link(mean, self.distribution, eps=1e-8)
        nll = exponential_family_nll(target, eta, self.distribution)
        return nll.sum() / target.numel()


def _initial_filters(X, signal_shape, n_kernels, kernel_size, rng):
    """Unit-norm filters cut from the data: random windows of the rows of ``X``
    with their mean removed (random Gaussian filters where a window is flat
    or the kernel does not fit in the signal)."""
    filter_shape = (kernel_size,) * len(signal_shape)
    filters = rng.standard_normal((n_kernels, *filter_shape))
    if all(kernel_size <= n for n in signal_shape):
        rows = rng.randint(X.shape[0], size=n_kernels)
        corners = [rng.randint(n - kernel_size + 1, size=n_kernels)
                   for n in signal_shape]
        images = X.reshape(X.shape[0], *signal_shape)
        for c in range(n_kernels):
            window = images[(rows[c], *(slice(k[c], k[c] + kernel_size)
                                        for k in corners))]
            window = window - window.mean()
            if np.linalg.norm(window) > 1e-6 * (np.abs(images[rows[c]]).max() + 1e-12):
                filters[c] = window / np.linalg.norm(window)
    norms = np.linalg.norm(filters.reshape(n_kernels, -1), axis=1)
    return filters / norms.reshape(-1, *([1] * len(filter_shape)))


def _poisson_pairs(rng, n_samples, *, clean, shape=None):
    """Noisy counts ``Poisson(clean)`` of the clean rows, and their targets.

    One pair per clean row (``n_samples`` is ``len(clean)``, the template's
    count of simulated rows). With a 2-D ``shape`` each image is also
    flipped and transposed at random (:func:`random_symmetries`): the
    symmetries of the grid, which leave the statistics of natural images
    unchanged.
    """
    targets = clean
    if shape is not None and len(shape) == 2:
        images = random_symmetries(rng, clean.reshape(-1, *shape).copy())
        targets = images.reshape(len(images), -1)
    return rng.poisson(targets).astype(np.float32), targets.astype(np.float32)
