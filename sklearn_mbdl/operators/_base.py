"""The operator base class, power iteration and the dense matrix operator."""

import torch

__all__ = ["LinearOperator", "MatrixOperator", "power_iteration"]


def power_iteration(normal, shape, *, n_iter=100, tol=1e-7, dtype=None,
                    device=None, generator=None):
    """Largest eigenvalue of a symmetric positive semi-definite map.

    Parameters
    ----------
    normal : callable
        The map ``v -> A^T A v``, acting on tensors of shape ``(1, *shape)``.
    shape : tuple of int
        Shape of one unknown.
    n_iter : int, default=100
        Maximum number of iterations.
    tol : float, default=1e-7
        Stop when the relative change of the estimate falls below ``tol``.
    dtype, device : torch dtype and device of the iterates.
    generator : torch.Generator, optional
        Generator for the random start, for reproducible estimates.

    Returns
    -------
    float
        The estimate of ``||A^T A||_2``.
    """
    if generator is None:
        # a fixed start: the estimate is reproducible and the caller's global
        # random state is left alone
        generator = torch.Generator(device=device or "cpu").manual_seed(0)
    with torch.no_grad():  # a constant of the operator: no graph through it
        return _power_iteration(normal, shape, n_iter, tol, dtype, device, generator)


def _power_iteration(normal, shape, n_iter, tol, dtype, device, generator):
    v = torch.randn((1, *shape), dtype=dtype, device=device, generator=generator)
    v = v / torch.linalg.vector_norm(v)
    estimate = 0.0
    for _ in range(n_iter):
        w = normal(v)
        new = float(torch.linalg.vector_norm(w))
        if new == 0.0:
            return 0.0
        v = w / new
        if abs(new - estimate) <= tol * new:
            estimate = new
            break
        estimate = new
    return estimate


class LinearOperator:
    """Base class of the forward operators.

    Subclasses implement :meth:`forward` and :meth:`adjoint` on batches and
    may override :meth:`lipschitz` with a closed form.
    """

    #: shape of one unknown (the input of ``forward``)
    in_shape = None

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def adjoint(self, y):  # pragma: no cover - abstract
        raise NotImplementedError

    def normal(self, x):
        """``A^T A x``, the map whose norm is the Lipschitz constant.

        Parameters
        ----------
        x : torch.Tensor
            A batch of unknowns, shape ``(n, *in_shape)``.

        Returns
        -------
        torch.Tensor
            Tensor of the shape of ``x``.
        """
        return self.adjoint(self.forward(x))

    def lipschitz(self, **kwargs):
        """Largest eigenvalue of ``A^T A`` by power iteration.

        Parameters
        ----------
        **kwargs
            Passed to :func:`power_iteration` (``n_iter``, ``tol``,
            ``generator``).

        Returns
        -------
        float
        """
        ref = self._reference_tensor()
        return power_iteration(self.normal, self.in_shape, dtype=ref.dtype,
                               device=ref.device, **kwargs)

    def _reference_tensor(self):  # pragma: no cover - abstract
        raise NotImplementedError


class MatrixOperator(LinearOperator):
    """A dense matrix acting on rows: ``A(z) = z @ matrix``.

    The convention is scikit-learn's: a dictionary has its atoms as rows,
    shape ``(n_components, n_features)``, and a batch of codes ``z`` of shape
    ``(n_samples, n_components)`` is mapped to signals ``z @ matrix`` of
    shape ``(n_samples, n_features)``.

    Parameters
    ----------
    matrix : torch.Tensor of shape (n_components, n_features)
        The matrix, e.g. a dictionary with atoms as rows.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import MatrixOperator
    >>> A = MatrixOperator(torch.tensor([[3.0, 0.0], [0.0, 1.0]]))
    >>> A(torch.tensor([[1.0, 1.0]]))
    tensor([[3., 1.]])
    >>> round(A.lipschitz(), 4)
    9.0
    """

    def __init__(self, matrix):
        if not isinstance(matrix, torch.Tensor):
            matrix = torch.as_tensor(matrix)
        if matrix.ndim != 2:
            raise ValueError(
                f"MatrixOperator needs a 2-D matrix, got shape {tuple(matrix.shape)}."
            )
        self.matrix = matrix
        self.in_shape = (matrix.shape[0],)

    def forward(self, z):
        return z @ self.matrix

    def adjoint(self, y):
        return y @ self.matrix.T

    def gram(self):
        """The normal matrix ``matrix @ matrix.T`` (precompute it once)."""
        return self.matrix @ self.matrix.T

    def lipschitz(self, **kwargs):
        """``||matrix||_2^2``.

        Exact (an eigenvalue of the smaller Gram matrix) up to 2048 rows or
        columns, power iteration beyond.

        Parameters
        ----------
        **kwargs
            Passed to :func:`power_iteration` when it is used.

        Returns
        -------
        float
        """
        m = self.matrix
        small = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
        if small.shape[0] <= 2048:
            return float(torch.linalg.eigvalsh(small)[-1])
        return power_iteration(lambda v: v @ small, (small.shape[0],),
                               dtype=m.dtype, device=m.device, **kwargs)

    def _reference_tensor(self):
        return self.matrix
