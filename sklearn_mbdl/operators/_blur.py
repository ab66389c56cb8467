"""Blur operators: circular convolution with a kernel, Gaussian or given."""

import numbers

import numpy as np
import torch

from ._imaging import ImageOperator

__all__ = ["Blur", "GaussianBlur", "gaussian_kernel"]


def _check_kernel(kernel):
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or kernel.size == 0:
        raise ValueError(
            f"kernel must be a non-empty 2-D array, got shape {kernel.shape}.")
    if not np.all(np.isfinite(kernel)):
        raise ValueError("kernel contains NaN or infinity.")
    return kernel


def _transfer_function(kernel, shape):
    """Real-FFT of the circular convolution by ``kernel`` on ``shape`` images.

    The kernel is wrapped around (entries that fall outside the image add up
    modulo its size), so kernels larger than the image are exact too.
    """
    h, w = shape
    kh, kw = kernel.shape
    rows = (np.arange(kh) - kh // 2) % h
    cols = (np.arange(kw) - kw // 2) % w
    psf = np.zeros((h, w))
    np.add.at(psf, (rows[:, None], cols[None, :]), kernel)
    return np.fft.rfft2(psf)


class Blur(ImageOperator):
    """Circular convolution by an arbitrary kernel.

    ``A s = k * s`` with periodic boundaries, computed by FFT. The data step
    is exact in the Fourier domain::

        S = (conj(K) Y + rho V) / (|K|^2 + rho)

    Parameters
    ----------
    kernel : array-like of shape (k_h, k_w)
        The point-spread function; its centre is ``(k_h // 2, k_w // 2)``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import Blur
    >>> A = Blur([[0.25, 0.5, 0.25]])
    >>> A(torch.tensor([[[0.0, 1.0, 0.0, 0.0]]], dtype=torch.float64))
    tensor([[[0.2500, 0.5000, 0.2500, 0.0000]]], dtype=torch.float64)
    """

    def __init__(self, kernel):
        self.kernel = _check_kernel(kernel)
        self._cache = {}

    def _otf(self, x):
        """The transfer function on ``x``'s grid and its squared modulus
        ``|K|^2`` (real), cached per shape, dtype and device."""
        shape = tuple(x.shape[-2:])
        key = (shape, x.dtype, str(x.device))
        if key not in self._cache:
            otf = _transfer_function(self.kernel, shape)
            cdtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
            self._cache[key] = (
                torch.as_tensor(otf).to(dtype=cdtype, device=x.device),
                torch.as_tensor(np.abs(otf) ** 2).to(dtype=x.dtype, device=x.device),
            )
        return self._cache[key]

    def _apply(self, x, otf):
        return torch.fft.irfft2(torch.fft.rfft2(x) * otf, s=x.shape[-2:])

    def forward(self, x):
        return self._apply(x, self._otf(x)[0])

    def adjoint(self, y):
        return self._apply(y, self._otf(y)[0].conj())

    def normal(self, x):
        return self._apply(x, self._otf(x)[1])

    def data_solve(self, y, v, rho):
        otf, power = self._otf(v)
        numerator = otf.conj() * torch.fft.rfft2(y) + rho * torch.fft.rfft2(v)
        return torch.fft.irfft2(numerator / (power + rho), s=v.shape[-2:])

    def lipschitz(self, image_shape=None, **kwargs):
        """``max |K|^2`` on the frequency grid of ``image_shape``.

        For a non-negative kernel, ``(sum k)^2`` whatever the shape.

        Parameters
        ----------
        image_shape : tuple of int, optional
            Image shape (a grid 4 times the kernel's by default).
        **kwargs
            Unused (the value is exact).

        Returns
        -------
        float
        """
        if image_shape is None:
            if np.all(self.kernel >= 0):
                return float(self.kernel.sum() ** 2)
            image_shape = tuple(4 * s for s in self.kernel.shape)
        return float(np.max(np.abs(_transfer_function(self.kernel, image_shape)) ** 2))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state

    def __repr__(self):
        return f"{type(self).__name__}(kernel of shape {self.kernel.shape})"


def gaussian_kernel(sigma, size=None):
    """A normalised, centred, isotropic Gaussian kernel.

    Parameters
    ----------
    sigma : float
        Standard deviation in pixels.
    size : int, optional
        Odd side of the square kernel; ``2 * ceil(3 sigma) + 1`` by default.

    Returns
    -------
    ndarray of shape (size, size)
        Non-negative, sums to 1.

    Examples
    --------
    >>> from sklearn_mbdl.operators import gaussian_kernel
    >>> k = gaussian_kernel(1.6, 25)
    >>> k.shape, round(float(k.sum()), 6)
    ((25, 25), 1.0)
    """
    if not isinstance(sigma, numbers.Real) or not sigma > 0:
        raise ValueError(f"sigma must be a positive number, got {sigma!r}.")
    if size is None:
        size = 2 * int(np.ceil(3 * sigma)) + 1
    if not isinstance(size, numbers.Integral) or size < 1 or size % 2 == 0:
        raise ValueError(f"size must be a positive odd integer, got {size!r}.")
    g = _gaussian_window(sigma, size)
    return np.outer(g, g)


def _gaussian_window(sigma, size):
    """Normalised 1-D Gaussian of ``size`` (odd) samples; the separable
    factor of :func:`gaussian_kernel` and of the burst operator's blur."""
    t = np.arange(size) - size // 2
    g = np.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


class GaussianBlur(Blur):
    """Circular Gaussian blur (see :class:`Blur`).

    Parameters
    ----------
    sigma : float, default=1.6
        Standard deviation of the kernel in pixels.
    size : int, default=25
        Odd side of the square kernel.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import GaussianBlur
    >>> A = GaussianBlur(1.6, 25)
    >>> y = A(torch.rand(2, 32, 32, dtype=torch.float64))
    >>> y.shape
    torch.Size([2, 32, 32])
    """

    def __init__(self, sigma=1.6, size=25):
        self.sigma = sigma
        self.size = size
        super().__init__(gaussian_kernel(sigma, size))

    def __repr__(self):
        return f"GaussianBlur(sigma={self.sigma}, size={self.size})"
