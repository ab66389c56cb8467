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

import torch

from ._base import LinearOperator, power_iteration

__all__ = ["ImageOperator", "Identity", "conjugate_gradient"]


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


def cg_data_solve(operator, y, v, rho):
    """``argmin_s 0.5 ||A s - y||^2 + (rho / 2) ||s - v||^2`` by conjugate
    gradient on ``(A^T A + rho I) s = A^T y + rho v``, started at ``v``.

    ``operator`` needs ``forward`` and ``adjoint``; its ``normal`` is used
    when it has one.
    """
    normal = getattr(operator, "normal", None)
    if normal is None:
        def normal(s):
            return operator.adjoint(operator.forward(s))
    rhs = operator.adjoint(y) + rho * v
    return conjugate_gradient(lambda s: normal(s) + rho * s, rhs, v,
                              n_iter=100, tol=1e-7)


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
            The image's shape here; operators that change it override this
            method.
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
            ``(h, w)`` of the images the operator is to be applied to.

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
        return cg_data_solve(self, y, v, rho)

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
