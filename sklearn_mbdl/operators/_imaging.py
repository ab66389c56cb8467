"""Imaging operators: identity, blur, inpainting mask, subsampled Fourier
(MRI), decimation (super-resolution).

Every operator acts on batches of grey images of shape ``(n, h, w)`` and
gives, beside ``forward`` and ``adjoint``, the *data step* of the splitting
solvers (ADMM, HQS)::

    data_solve(y, v, rho) = argmin_s 0.5 ||A s - y||^2 + (rho / 2) ||s - v||^2
                          = (A^T A + rho I)^{-1} (A^T y + rho v)

in closed form where ``A^T A`` is diagonal in the pixel or the Fourier
domain (identity, blur, mask, Fourier sampling, block-average decimation) and
by batched conjugate gradient otherwise (decimation with a blur kernel).

Convolutions are *circular* (periodic boundaries, computed with the FFT):
this is what makes the blur's data step exact in the Fourier domain. The
kernel's centre is pixel ``(k_h // 2, k_w // 2)``.
"""

import numbers

import numpy as np
import torch

from ._base import LinearOperator, power_iteration

__all__ = [
    "ImageOperator",
    "Identity",
    "Blur",
    "GaussianBlur",
    "gaussian_kernel",
    "Inpainting",
    "random_mask",
    "SubsampledFourier",
    "cartesian_mask",
    "Decimation",
    "conjugate_gradient",
]


def _as_float_tensor(x, like):
    return torch.as_tensor(x).to(dtype=like.dtype, device=like.device)


def _batch_dot(a, b):
    """Per-sample inner product over every axis but the first, shape (n,)."""
    return (a * b).reshape(a.shape[0], -1).sum(dim=1)


def conjugate_gradient(normal, rhs, x0=None, *, n_iter=50, tol=1e-6):
    """Batched conjugate gradient for ``normal(x) = rhs``.

    ``normal`` is a symmetric positive definite map acting on a batch.
    Each sample stops being updated once its residual norm falls below
    ``tol`` times the norm of its right-hand side, so a sample's result does
    not depend on the other samples of the batch.

    Parameters
    ----------
    normal : callable
        The map ``x -> M x`` on tensors of the shape of ``rhs``.
    rhs : torch.Tensor of shape (n, ...)
    x0 : torch.Tensor, optional
        Starting point (zero by default).
    n_iter : int, default=50
        Maximum number of iterations.
    tol : float, default=1e-6
        Relative residual at which a sample stops.

    Returns
    -------
    torch.Tensor of the shape of ``rhs``

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import conjugate_gradient
    >>> x = conjugate_gradient(lambda v: 2 * v, torch.ones(1, 3))
    >>> x
    tensor([[0.5000, 0.5000, 0.5000]])
    """
    x = torch.zeros_like(rhs) if x0 is None else x0.clone()
    r = rhs - normal(x)
    p = r.clone()
    rr = _batch_dot(r, r)
    stop = (tol * torch.sqrt(_batch_dot(rhs, rhs))) ** 2
    shape = (-1,) + (1,) * (rhs.ndim - 1)
    for _ in range(n_iter):
        active = rr > stop
        if not bool(active.any()):
            break
        q = normal(p)
        pq = _batch_dot(p, q)
        alpha = torch.where(active, rr / torch.where(pq > 0, pq, 1.0), 0.0)
        x = x + alpha.reshape(shape) * p
        r = r - alpha.reshape(shape) * q
        rr_new = _batch_dot(r, r)
        beta = torch.where(active, rr_new / torch.where(rr > 0, rr, 1.0), 0.0)
        p = torch.where(active.reshape(shape), r + beta.reshape(shape) * p, p)
        rr = torch.where(active, rr_new, rr)
    return x


class ImageOperator(LinearOperator):
    """Base class of the imaging operators (batches of ``(n, h, w)`` images).

    Subclasses give :meth:`forward`, :meth:`adjoint` and
    :meth:`observation_shape`; :meth:`data_solve` defaults to conjugate
    gradient on ``(A^T A + rho I) s = A^T y + rho v`` and is overridden by a
    closed form where one exists.
    """

    #: fixed image shape ``(h, w)`` (masks fix it) or None (any shape)
    image_shape = None

    @property
    def in_shape(self):
        return self.image_shape

    def observation_shape(self, image_shape):
        """Shape of one observation of an image of shape ``image_shape``.

        Parameters
        ----------
        image_shape : tuple of int
            ``(h, w)``.

        Returns
        -------
        tuple of int
        """
        return tuple(image_shape)

    def image_shape_for(self, observation_shape):
        """Shape of the images whose observations have this shape.

        Parameters
        ----------
        observation_shape : tuple of int

        Returns
        -------
        tuple of int
            ``(h, w)``.
        """
        if self.image_shape is not None:
            return tuple(self.image_shape)
        return tuple(int(s) for s in observation_shape[-2:])

    def check_image_shape(self, image_shape):
        """Raise a ``ValueError`` unless images of this shape are supported.

        Parameters
        ----------
        image_shape : tuple of int
            ``(h, w)``.

        Returns
        -------
        tuple of int
            The shape, as a tuple of ints.
        """
        image_shape = tuple(int(s) for s in image_shape)
        if self.image_shape is not None and image_shape != tuple(self.image_shape):
            raise ValueError(
                f"{type(self).__name__} works on images of shape "
                f"{tuple(self.image_shape)} (the shape of its mask), got images "
                f"of shape {image_shape}."
            )
        return image_shape

    def initial(self, y):
        """A first estimate of the images from observations (``A^T y``).

        Parameters
        ----------
        y : torch.Tensor of shape (n, ...)
            Observations.

        Returns
        -------
        torch.Tensor of shape (n, h, w)
        """
        return self.adjoint(y)

    def data_solve(self, y, v, rho):
        """``argmin_s 0.5 ||A s - y||^2 + (rho / 2) ||s - v||^2``, batched.

        Parameters
        ----------
        y : torch.Tensor of shape (n, ...)
            Observations, of the operator's ``observation_shape``.
        v : torch.Tensor of shape (n, h, w)
        rho : float
            Positive weight of the proximity term.

        Returns
        -------
        torch.Tensor of shape (n, h, w)
        """
        rhs = self.adjoint(y) + rho * v
        return conjugate_gradient(lambda s: self.normal(s) + rho * s, rhs, v,
                                  n_iter=100, tol=1e-7)

    def lipschitz(self, image_shape=None, **kwargs):
        """Largest eigenvalue of ``A^T A`` (power iteration by default).

        Parameters
        ----------
        image_shape : tuple of int, optional
            Image shape, needed when the operator does not fix it.
        **kwargs
            Passed to :func:`power_iteration`.

        Returns
        -------
        float
        """
        shape = image_shape or self.image_shape
        if shape is None:
            raise ValueError(f"{type(self).__name__}.lipschitz needs image_shape.")
        return power_iteration(self.normal, tuple(shape), dtype=torch.float64,
                               **kwargs)

    def __repr__(self):
        return f"{type(self).__name__}()"


class Identity(ImageOperator):
    """The identity: observations are the noisy images (denoising).

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import Identity
    >>> A = Identity()
    >>> A.data_solve(torch.ones(1, 2, 2), torch.zeros(1, 2, 2), 1.0)
    tensor([[[0.5000, 0.5000],
             [0.5000, 0.5000]]])
    """

    def forward(self, x):
        return x

    def adjoint(self, y):
        return y

    def data_solve(self, y, v, rho):
        return (y + rho * v) / (1.0 + rho)

    def lipschitz(self, image_shape=None, **kwargs):
        return 1.0


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
        shape = tuple(x.shape[-2:])
        key = (shape, x.dtype, str(x.device))
        if key not in self._cache:
            otf = _transfer_function(self.kernel, shape)
            cdtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
            self._cache[key] = torch.as_tensor(otf).to(dtype=cdtype, device=x.device)
        return self._cache[key]

    def _apply(self, x, otf):
        return torch.fft.irfft2(torch.fft.rfft2(x) * otf, s=x.shape[-2:])

    def forward(self, x):
        return self._apply(x, self._otf(x))

    def adjoint(self, y):
        return self._apply(y, self._otf(y).conj())

    def normal(self, x):
        otf = self._otf(x)
        return self._apply(x, (otf * otf.conj()).real.to(otf.dtype))

    def data_solve(self, y, v, rho):
        otf = self._otf(v)
        numerator = otf.conj() * torch.fft.rfft2(y) + rho * torch.fft.rfft2(v)
        denominator = otf.real ** 2 + otf.imag ** 2 + rho
        return torch.fft.irfft2(numerator / denominator, s=v.shape[-2:])

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
    t = np.arange(size) - size // 2
    g = np.exp(-0.5 * (t / sigma) ** 2)
    kernel = np.outer(g, g)
    return kernel / kernel.sum()


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
    """Decimation (super-resolution): blur, then keep one pixel in
    ``factor x factor``.

    With ``kernel=None`` the blur is the ``factor x factor`` block average
    (each low-resolution pixel is the mean of its block): then
    ``A A^T = I / factor^2`` and the data step has the closed form
    ``(A^T A + rho I)^{-1} = (I - A^T A / (rho + 1/factor^2)) / rho``. With a
    kernel, ``A s = (k * s)[::factor, ::factor]`` (circular convolution) and
    the data step runs conjugate gradient.

    Parameters
    ----------
    factor : int, default=2
        Decimation factor; image sides must be multiples of it.
    kernel : array-like of shape (k_h, k_w), optional
        Anti-aliasing blur; block average by default.

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
        f = self.factor
        if self._blur is None:
            n, h, w = x.shape
            return x.reshape(n, h // f, f, w // f, f).mean(dim=(2, 4))
        return self._blur(x)[:, ::f, ::f]

    def adjoint(self, y):
        f = self.factor
        if self._blur is None:
            up = y.repeat_interleave(f, dim=1).repeat_interleave(f, dim=2)
            return up / f ** 2
        n, h, w = y.shape
        up = y.new_zeros((n, h * f, w * f))
        up[:, ::f, ::f] = y
        return self._blur.adjoint(up)

    def initial(self, y):
        """Nearest-neighbour (block average) or zero-filled up-sampling.

        Parameters
        ----------
        y : torch.Tensor of shape (n, h / factor, w / factor)

        Returns
        -------
        torch.Tensor of shape (n, h, w)
        """
        scale = self.factor ** 2 if self._blur is None else 1.0
        return scale * self.adjoint(y)

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
