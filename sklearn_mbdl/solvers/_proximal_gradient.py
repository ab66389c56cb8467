"""Proximal-gradient solvers of the lasso: ISTA and FISTA, and the steps
they share with the unrolled networks (LISTA calls :func:`proximal_step`)."""

import torch

from ..operators import MatrixOperator
from ..prox import prox_l1

__all__ = ["lasso_objective", "proximal_step", "ista", "fista"]


def lasso_objective(X, Z, dictionary, alpha):
    """Per-sample lasso objective ``0.5||x - z D||^2 + alpha ||z||_1``.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
    Z : torch.Tensor of shape (n_samples, n_components)
    dictionary : torch.Tensor of shape (n_components, n_features)
    alpha : float

    Returns
    -------
    torch.Tensor of shape (n_samples,)
    """
    residual = X - Z @ dictionary
    return 0.5 * (residual * residual).sum(dim=1) + alpha * Z.abs().sum(dim=1)


def proximal_step(z, direction, threshold, positive=False):
    """One proximal-gradient step: ``prox_l1(z - direction, threshold)``.

    ISTA passes ``direction = step * gradient``; LISTA passes a learned
    linear map of the residual. Both share this function.

    Parameters
    ----------
    z : torch.Tensor of shape (n_samples, n_components)
        Current codes.
    direction : torch.Tensor of shape (n_samples, n_components)
        The step to subtract from ``z`` before the proximal map.
    threshold : float or torch.Tensor
        Threshold of :func:`~sklearn_mbdl.prox.prox_l1`.
    positive : bool, default=False
        Constrain the codes to be non-negative.

    Returns
    -------
    torch.Tensor of shape (n_samples, n_components)
    """
    return prox_l1(z - direction, threshold, positive=positive)


def _gradient_map(X, dictionary):
    """The gradient ``z -> (z D - X) D^T`` of the data term, as a closure.

    The Gram form ``z G - X D^T`` costs ``n p^2`` per call, the residual
    form ``(z D - X) D^T`` costs ``2 n p m``; the cheaper one is chosen.
    The returned closure takes the row indices it acts on, so converged
    rows can leave the batch.
    """
    n_components, n_features = dictionary.shape
    if n_components <= 2 * n_features:
        gram = dictionary @ dictionary.T
        xdt = X @ dictionary.T

        def grad(z, rows):
            return z @ gram - xdt[rows]
    else:
        def grad(z, rows):
            return (z @ dictionary - X[rows]) @ dictionary.T
    return grad


def _check_problem(X, dictionary, alpha):
    if X.ndim != 2 or dictionary.ndim != 2:
        raise ValueError(
            "X and dictionary must be 2-D, got shapes "
            f"{tuple(X.shape)} and {tuple(dictionary.shape)}."
        )
    if X.shape[1] != dictionary.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} features but the dictionary atoms have "
            f"{dictionary.shape[1]}."
        )
    if not alpha >= 0:
        raise ValueError(f"alpha must be non-negative, got {alpha}.")


def _proximal_gradient(X, dictionary, alpha, *, accelerate, max_iter, tol,
                       positive, init, step, callback):
    """ISTA / FISTA loop shared by :func:`ista` and :func:`fista`."""
    _check_problem(X, dictionary, alpha)
    n_samples = X.shape[0]
    if step is None:
        lipschitz = MatrixOperator(dictionary).lipschitz()
        step = 1.0 / lipschitz if lipschitz > 0 else 1.0
    grad = _gradient_map(X, dictionary)
    threshold = step * alpha
    if init is None:
        Z = X.new_zeros((n_samples, dictionary.shape[0]))
    else:
        Z = init.to(dtype=X.dtype, device=X.device).clone()

    rows = torch.arange(n_samples, device=X.device)  # rows still iterating
    z = Z                       # iterates of the active rows
    y = z                       # extrapolated points (FISTA)
    t = X.new_ones(n_samples)   # momentum sequence, one per row
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        z_new = proximal_step(y, step * grad(y, rows), threshold, positive)
        change = torch.linalg.vector_norm(z_new - z, dim=1)
        scale = torch.linalg.vector_norm(z_new, dim=1)
        done = change <= tol * torch.clamp(scale, min=torch.finfo(X.dtype).tiny)
        if accelerate:
            # adaptive restart (O'Donoghue & Candes): kill the momentum of a
            # row whose update goes against its last step
            restart = ((y - z_new) * (z_new - z)).sum(dim=1) > 0
            t_new = 0.5 * (1.0 + torch.sqrt(1.0 + 4.0 * t * t))
            beta = torch.where(restart, 0.0, (t - 1.0) / t_new)
            t = torch.where(restart, 1.0, t_new)
            y_new = z_new + beta[:, None] * (z_new - z)
        else:
            y_new = z_new
        if callback is not None:
            Z[rows] = z_new
            callback(n_iter, Z)
        if done.any():
            Z[rows[done]] = z_new[done]
            keep = ~done
            rows, z_new, y_new, t = rows[keep], z_new[keep], y_new[keep], t[keep]
            if rows.numel() == 0:
                z = z_new
                break
        z, y = z_new, y_new
    if rows.numel():
        Z[rows] = z
    return Z, n_iter


def ista(X, dictionary, alpha, *, max_iter=1000, tol=1e-6, positive=False,
         init=None, step=None, callback=None):
    """Iterative shrinkage-thresholding (ISTA) for the lasso, batched.

    Solves, for every row ``x`` of ``X``,
    ``min_z 0.5 ||x - z D||^2 + alpha ||z||_1`` (and ``z >= 0`` if
    ``positive``) by ``z <- prox(z - step * grad(z), step * alpha)``.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        Signals, one per row.
    dictionary : torch.Tensor of shape (n_components, n_features)
        Atoms as rows.
    alpha : float
        Weight of the l1 penalty.
    max_iter : int, default=1000
        Maximum number of iterations.
    tol : float, default=1e-6
        A row stops when ``||z_new - z|| <= tol * ||z_new||``; it then leaves
        the batch, so each row's result does not depend on the others.
    positive : bool, default=False
        Constrain the codes to be non-negative.
    init : torch.Tensor of shape (n_samples, n_components), optional
        Starting codes (zeros by default).
    step : float, optional
        Step size; ``1 / ||D||_2^2`` by default.
    callback : callable, optional
        ``callback(iteration, Z)`` after every iteration, for convergence
        plots. ``Z`` holds the current codes of every row.

    Returns
    -------
    Z : torch.Tensor of shape (n_samples, n_components)
        The codes at the last iteration (each row's once it met ``tol``).
    n_iter : int
        Number of iterations run (the maximum over rows).

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.solvers import ista
    >>> D = torch.eye(3, dtype=torch.float64)
    >>> Z, n_iter = ista(torch.tensor([[2.0, -0.5, 1.5]], dtype=torch.float64), D, 1.0)
    >>> Z
    tensor([[1.0000, -0.0000, 0.5000]], dtype=torch.float64)
    """
    return _proximal_gradient(X, dictionary, alpha, accelerate=False,
                              max_iter=max_iter, tol=tol, positive=positive,
                              init=init, step=step, callback=callback)


def fista(X, dictionary, alpha, *, max_iter=1000, tol=1e-6, positive=False,
          init=None, step=None, callback=None):
    """Fast ISTA (Beck & Teboulle 2009) with adaptive restart, batched.

    Same problem and parameters as :func:`ista`; Nesterov momentum is added
    and reset per row when a step goes against the previous one
    (O'Donoghue & Candes 2015), which keeps the iterates monotone in
    practice and converges linearly on strongly convex supports.

    Returns
    -------
    Z, n_iter
        As in :func:`ista`.

    Examples
    --------
    The same codes as ISTA's in fewer iterations:

    >>> import torch
    >>> from sklearn_mbdl.solvers import fista, ista
    >>> gen = torch.Generator().manual_seed(0)
    >>> D = torch.randn(8, 20, generator=gen, dtype=torch.float64)
    >>> X = torch.randn(5, 20, generator=gen, dtype=torch.float64)
    >>> Z_ista, n_ista = ista(X, D, 1.0)
    >>> Z, n_iter = fista(X, D, 1.0)
    >>> n_iter < n_ista, bool(torch.allclose(Z, Z_ista, atol=1e-4))
    (True, True)
    """
    return _proximal_gradient(X, dictionary, alpha, accelerate=True,
                              max_iter=max_iter, tol=tol, positive=positive,
                              init=init, step=step, callback=callback)
