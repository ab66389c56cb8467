"""Sampling operators: inpainting masks, subsampled Fourier (MRI) with its
Cartesian mask generator, and decimation (super-resolution)."""

import numbers

import numpy as np
import torch

from ._blur import Blur, _check_kernel
from ._burst import _bin_pixels_adjoint, bin_pixels
from ._imaging import ImageOperator

__all__ = [
    "Inpainting",
    "random_mask",
    "SubsampledFourier",
    "cartesian_mask",
    "Decimation",
]


def _check_mask(mask, name="mask"):
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(
            f"{name} must be a non-empty 2-D array, got shape {mask.shape}.")
    if not np.all(np.isin(mask, (0, 1))):
        raise ValueError(f"{name} must contain only 0/1 (or booleans).")
    return mask.astype(bool)


class _MaskMixin:
    def _mask(self, x):
        key = (x.dtype, str(x.device))
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            cache[key] = torch.as_tensor(self.mask).to(dtype=x.dtype, device=x.device)
        return cache[key]

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state


class Inpainting(_MaskMixin, ImageOperator):
    """Pixel mask: observed pixels are kept, missing ones read 0.

    ``A s = m * s`` (elementwise, ``m`` in {0, 1}); self-adjoint, and the data
    step is pointwise: ``s = (m y + rho v) / (m + rho)``.

    Parameters
    ----------
    mask : array-like of shape (h, w)
        1 (or True) where a pixel is observed. See :func:`random_mask`.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import Inpainting
    >>> A = Inpainting([[1, 0], [0, 1]])
    >>> A(torch.ones(1, 2, 2))
    tensor([[[1., 0.],
             [0., 1.]]])
    """

    def __init__(self, mask):
        self.mask = _check_mask(mask)
        self.image_shape = self.mask.shape

    def forward(self, x):
        return x * self._mask(x)

    def adjoint(self, y):
        return y * self._mask(y)

    def data_solve(self, y, v, rho):
        m = self._mask(v)
        return (m * y + rho * v) / (m + rho)

    def lipschitz(self, image_shape=None, **kwargs):
        return float(self.mask.any())

    def __repr__(self):
        return (f"Inpainting(mask of shape {self.mask.shape}, "
                f"{self.mask.mean():.0%} observed)")


def random_mask(shape, fraction=0.5, *, random_state=None):
    """A random pixel mask for :class:`Inpainting`.

    Parameters
    ----------
    shape : tuple of int
        ``(h, w)``.
    fraction : float, default=0.5
        Probability that a pixel is observed.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    ndarray of bool of shape ``shape``

    Examples
    --------
    >>> from sklearn_mbdl.operators import random_mask
    >>> random_mask((4, 4), 0.5, random_state=0).shape
    (4, 4)
    """
    from sklearn.utils import check_random_state

    if not isinstance(fraction, numbers.Real) or not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}.")
    return check_random_state(random_state).rand(*shape) < fraction


class SubsampledFourier(_MaskMixin, ImageOperator):
    """Subsampled 2-D Fourier transform (MRI, compressed sensing).

    ``A s = M F s`` with ``F`` the orthonormal 2-D DFT (``norm="ortho"``) and
    ``M`` a 0/1 sampling mask in numpy's FFT layout (zero frequency at
    ``[0, 0]``; ``numpy.fft.fftshift`` centres it for display). The unknown
    is a real image; an observation is real too, of shape ``(2, h, w)``: the
    real and imaginary parts of the sampled k-space, 0 where not sampled.

    For a real image ``A^T A = F^H D F`` with ``D = (M + M(-k)) / 2``
    diagonal, so the data step is exact in the Fourier domain.

    Parameters
    ----------
    mask : array-like of shape (h, w)
        Sampled frequencies (see :func:`cartesian_mask`).

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import SubsampledFourier, cartesian_mask
    >>> A = SubsampledFourier(cartesian_mask((8, 8), 2, random_state=0))
    >>> A(torch.rand(3, 8, 8, dtype=torch.float64)).shape
    torch.Size([3, 2, 8, 8])
    """

    def __init__(self, mask):
        self.mask = _check_mask(mask)
        self.image_shape = self.mask.shape
        flipped = np.roll(self.mask[::-1, ::-1], 1, axis=(0, 1))  # M(-k)
        self._diagonal = 0.5 * (self.mask.astype(np.float64) + flipped)

    def observation_shape(self, image_shape):
        return (2, *image_shape)

    def _diag(self, x):
        key = ("diag", x.dtype, str(x.device))
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            cache[key] = torch.as_tensor(self._diagonal).to(dtype=x.dtype,
                                                            device=x.device)
        return cache[key]

    def forward(self, x):
        k = torch.fft.fft2(x, norm="ortho") * self._mask(x)
        return torch.stack((k.real, k.imag), dim=1)

    def adjoint(self, y):
        k = torch.complex(y[:, 0], y[:, 1]) * self._mask(y)
        return torch.fft.ifft2(k, norm="ortho").real

    def normal(self, x):
        k = torch.fft.fft2(x, norm="ortho") * self._diag(x)
        return torch.fft.ifft2(k, norm="ortho").real

    def data_solve(self, y, v, rho):
        rhs = torch.fft.fft2(self.adjoint(y) + rho * v, norm="ortho")
        return torch.fft.ifft2(rhs / (self._diag(v) + rho), norm="ortho").real

    def lipschitz(self, image_shape=None, **kwargs):
        return float(self._diagonal.max())

    def __repr__(self):
        return (f"SubsampledFourier(mask of shape {self.mask.shape}, "
                f"{self.mask.mean():.0%} sampled)")


def cartesian_mask(shape, acceleration=4, *, center_fraction=0.08,
                   random_state=None):
    """A Cartesian k-space sampling mask (MRI): whole lines of frequencies.

    Columns (phase-encoding lines) are sampled: the ``center_fraction`` of
    lowest frequencies always, the others at random, ``w / acceleration``
    columns in all.

    Parameters
    ----------
    shape : tuple of int
        ``(h, w)``.
    acceleration : float, default=4
        Undersampling factor (total columns / sampled columns).
    center_fraction : float, default=0.08
        Share of the columns taken around the zero frequency.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    ndarray of bool of shape ``shape``
        In numpy's FFT layout (zero frequency at ``[0, 0]``).

    Examples
    --------
    >>> from sklearn_mbdl.operators import cartesian_mask
    >>> m = cartesian_mask((64, 64), 4, random_state=0)
    >>> int(m[0].sum())
    16
    """
    from sklearn.utils import check_random_state

    if len(shape) != 2:
        raise ValueError(f"shape must be (h, w), got {shape!r}.")
    h, w = int(shape[0]), int(shape[1])
    if not isinstance(acceleration, numbers.Real) or acceleration < 1:
        raise ValueError(f"acceleration must be >= 1, got {acceleration!r}.")
    if not 0 <= center_fraction <= 1:
        raise ValueError(f"center_fraction must be in [0, 1], got {center_fraction!r}.")
    n_lines = max(1, int(round(w / acceleration)))
    n_center = min(n_lines, max(1, int(round(w * center_fraction))))
    freqs = np.fft.fftfreq(w)
    order = np.argsort(np.abs(freqs), kind="stable")
    center = order[:n_center]
    rest = order[n_center:]
    rng = check_random_state(random_state)
    chosen = rng.choice(rest, size=n_lines - n_center, replace=False)
    columns = np.zeros(w, dtype=bool)
    columns[center] = True
    columns[chosen] = True
    return np.repeat(columns[None, :], h, axis=0)


class Decimation(ImageOperator):
    """Decimation (super-resolution): optics blur, then pixel integration.

    Each low-resolution pixel is the mean of its ``factor x factor`` block
    of the (blurred) image: the pixel-centre grid of scikit-image's
    ``downscale_local_mean`` and ``rescale``, shared by every imaging
    operator (see :func:`~sklearn_mbdl.operators.bin_pixels`), so
    low-resolution pixel ``i`` is centred on high-resolution coordinate
    ``factor * i + (factor - 1) / 2``. With ``kernel=None`` there is no
    optics blur: then ``A A^T = I / factor^2`` and the data step has the
    closed form ``(A^T A + rho I)^{-1} = (I - A^T A / (rho + 1/factor^2)) /
    rho``. With a kernel, ``A s = bin(k * s)`` (circular convolution) and the
    data step runs conjugate gradient.

    Parameters
    ----------
    factor : int, default=2
        Decimation factor; image sides must be multiples of it.
    kernel : array-like of shape (k_h, k_w), optional
        Optics blur before the pixel integration; none by default.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import Decimation
    >>> A = Decimation(2)
    >>> A(torch.ones(1, 4, 4)).shape
    torch.Size([1, 2, 2])
    """

    def __init__(self, factor=2, kernel=None):
        if (isinstance(factor, bool) or not isinstance(factor, numbers.Integral)
                or factor < 1):
            raise ValueError(f"factor must be a positive integer, got {factor!r}.")
        self.factor = int(factor)
        self.kernel = None if kernel is None else _check_kernel(kernel)
        self._blur = None if kernel is None else Blur(self.kernel)

    def observation_shape(self, image_shape):
        return tuple(int(s) // self.factor for s in image_shape)

    def image_shape_for(self, observation_shape):
        return tuple(int(s) * self.factor for s in observation_shape[-2:])

    def check_image_shape(self, image_shape):
        image_shape = super().check_image_shape(image_shape)
        if any(s % self.factor for s in image_shape):
            raise ValueError(
                f"Decimation by {self.factor} needs image sides that are "
                f"multiples of {self.factor}, got images of shape {image_shape}."
            )
        return image_shape

    def forward(self, x):
        return bin_pixels(x if self._blur is None else self._blur(x), self.factor)

    def adjoint(self, y):
        f = self.factor
        up = _bin_pixels_adjoint(y, f, (y.shape[-2] * f, y.shape[-1] * f))
        return up if self._blur is None else self._blur.adjoint(up)

    def initial(self, y):
        """Nearest-neighbour up-sampling (each pixel fills its block).

        Parameters
        ----------
        y : torch.Tensor of shape (n, h / factor, w / factor)

        Returns
        -------
        torch.Tensor of shape (n, h, w)
        """
        f = self.factor
        return y.repeat_interleave(f, dim=-2).repeat_interleave(f, dim=-1)

    def data_solve(self, y, v, rho):
        if self._blur is not None:
            return super().data_solve(y, v, rho)
        rhs = self.adjoint(y) + rho * v
        return (rhs - self.normal(rhs) / (rho + 1.0 / self.factor ** 2)) / rho

    def lipschitz(self, image_shape=None, **kwargs):
        if self._blur is None:
            return 1.0 / self.factor ** 2
        shape = image_shape or (8 * self.factor, 8 * self.factor)
        return super().lipschitz(shape, **kwargs)

    def __repr__(self):
        extra = "" if self.kernel is None else f", kernel of shape {self.kernel.shape}"
        return f"Decimation(factor={self.factor}{extra})"
