"""Splitting solvers for ``min_s 0.5 ||A s - y||^2 + sigma_n^2 phi(s)``:
ADMM, half-quadratic splitting (HQS) and proximal gradient (PGD), with the
prior's proximal map given by a denoiser (plug-and-play).

Each algorithm alternates the same two steps, written once:

- the *data step*, ``operator.data_solve(y, v, rho)``
  ``= argmin_s 0.5 ||A s - y||^2 + (rho/2) ||s - v||^2`` (ADMM, HQS), or a
  gradient step on ``0.5 ||A s - y||^2`` (PGD);
- the *prior step*, ``denoiser(z, sigma_d)``, the proximal map of
  ``sigma_d^2 phi``. With noise level ``sigma_n`` and penalty ``rho`` the
  proximal map ADMM needs is that of ``(sigma_n^2 / rho) phi``: a denoiser
  at level ``sigma_d = sigma_n / sqrt(rho)``.

A learned denoiser makes these plug-and-play methods (Venkatakrishnan et al.
2013; Zhang et al. 2021 for the HQS schedule); :class:`~sklearn_mbdl.
denoisers.TVDenoiser` makes the same loops the classic TV-regularised
solvers.
"""

import math
import numbers

import torch

from ..operators._imaging import cg_data_solve

__all__ = ["admm", "hqs", "pgd", "dpir_schedule"]


def _check(y, operator, denoiser, rho, noise_level, n_iter):
    if not callable(denoiser):
        raise ValueError(
            f"denoiser must be a callable (x, sigma) -> x, got {denoiser!r}.")
    for name in ("forward", "adjoint"):
        if not callable(getattr(operator, name, None)):
            raise ValueError(f"operator must have a {name} method, got {operator!r}.")
    if not isinstance(rho, numbers.Real) or not rho > 0 or not math.isfinite(rho):
        raise ValueError(f"rho must be a positive number, got {rho!r}.")
    if (not isinstance(noise_level, numbers.Real) or not noise_level >= 0
            or not math.isfinite(noise_level)):
        raise ValueError(
            f"noise_level must be a non-negative number, got {noise_level!r}.")
    if (isinstance(n_iter, bool) or not isinstance(n_iter, numbers.Integral)
            or n_iter < 1):
        raise ValueError(f"n_iter must be a positive integer, got {n_iter!r}.")
    if not isinstance(y, torch.Tensor):
        raise ValueError("y must be a torch tensor.")
    if not bool(torch.isfinite(y).all()):
        raise ValueError("y contains NaN or infinity.")


def _data_solve(operator, y, v, rho):
    solve = getattr(operator, "data_solve", None)
    if solve is not None:
        return solve(y, v, rho)
    return cg_data_solve(operator, y, v, rho)


def _start(operator, y, x0):
    if x0 is not None:
        return x0.clone()
    initial = getattr(operator, "initial", None)
    return initial(y) if initial is not None else operator.adjoint(y)


def _change(new, old):
    """Per-sample relative change ``||new - old|| / ||new||``, shape (n,)."""
    diff = (new - old).reshape(new.shape[0], -1).norm(dim=1)
    return diff / new.reshape(new.shape[0], -1).norm(dim=1).clamp(min=1e-12)


def _iterate(iteration, x, n_iter, callback):
    """The loop the three solvers share: ``x <- iteration(k, x)`` for ``k``
    in ``range(n_iter)``, with each sample's relative change recorded and
    ``callback(k, x)`` after each iteration."""
    changes = []
    for k in range(n_iter):
        x_new = iteration(k, x)
        changes.append(_change(x_new, x))
        x = x_new
        if callback is not None:
            callback(k, x)
    return x, torch.stack(changes)


def admm(y, operator, denoiser, *, rho=0.02, noise_level=0.01, n_iter=30,
         x0=None, callback=None):
    """Plug-and-play ADMM.

    With ``sigma_d = noise_level / sqrt(rho)``, from ``v = x0``, ``u = 0``::

        s = operator.data_solve(y, v - u, rho)
        v = denoiser(s + u, sigma_d)
        u = u + s - v

    Parameters
    ----------
    y : torch.Tensor of shape (n, ...)
        Observations, of the operator's ``observation_shape``.
    operator : ImageOperator
        The forward model (see :mod:`sklearn_mbdl.operators`).
    denoiser : callable
        ``(x, sigma) -> x`` on ``(n, h, w)`` tensors (see
        :mod:`sklearn_mbdl.denoisers`).
    rho : float, default=0.02
        Penalty of the data step; also sets the denoiser's level. Smaller
        values regularise more.
    noise_level : float, default=0.01
        Standard deviation of the noise on ``y``.
    n_iter : int, default=30
    x0 : torch.Tensor of shape (n, h, w), optional
        Start (``operator.initial(y)`` by default, e.g. ``A^T y``).
    callback : callable, optional
        Called as ``callback(k, v)`` after iteration ``k`` (from 0).

    Returns
    -------
    x : torch.Tensor of shape (n, h, w)
        The denoised iterate ``v``.
    changes : torch.Tensor of shape (n_iter, n)
        Relative change of each sample's iterate at each iteration.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.denoisers import TVDenoiser
    >>> from sklearn_mbdl.operators import GaussianBlur
    >>> from sklearn_mbdl.solvers import admm
    >>> A = GaussianBlur(1.0, 7)
    >>> x = torch.zeros(1, 16, 16, dtype=torch.float64); x[:, 4:12, 4:12] = 1
    >>> restored, changes = admm(A(x), A, TVDenoiser(), rho=0.1, n_iter=20)
    >>> bool((restored - x).norm() < (A(x) - x).norm())
    True
    """
    _check(y, operator, denoiser, rho, noise_level, n_iter)
    sigma = noise_level / math.sqrt(rho)
    v = _start(operator, y, x0)
    u = torch.zeros_like(v)

    def iteration(k, v):
        nonlocal u
        s = _data_solve(operator, y, v - u, rho)
        v_new = denoiser(s + u, sigma)
        u = u + s - v_new
        return v_new

    return _iterate(iteration, v, n_iter, callback)


def dpir_schedule(n_iter, sigma_start, sigma_end):
    """The DPIR noise-level schedule: geometric from ``sigma_start`` to
    ``sigma_end`` in ``n_iter`` steps (Zhang et al. 2021).

    Parameters
    ----------
    n_iter : int
    sigma_start, sigma_end : float
        Positive; a start below the end gives a constant schedule at the end.

    Returns
    -------
    list of float
        The ``n_iter`` denoiser levels, geometric down to ``sigma_end``.

    Examples
    --------
    >>> from sklearn_mbdl.solvers import dpir_schedule
    >>> [round(s, 3) for s in dpir_schedule(3, 0.2, 0.05)]
    [0.2, 0.1, 0.05]
    """
    sigma_start = max(sigma_start, sigma_end)
    if n_iter == 1:
        return [sigma_end]
    ratio = (sigma_end / sigma_start) ** (1.0 / (n_iter - 1))
    return [sigma_start * ratio ** k for k in range(n_iter)]


def hqs(y, operator, denoiser, *, rho=0.23, noise_level=0.01, n_iter=8,
        sigma_start=0.2, x0=None, callback=None):
    """Plug-and-play half-quadratic splitting with DPIR's schedule.

    The denoiser's level decreases geometrically from ``sigma_start`` to
    the noise level (:func:`dpir_schedule`) and the data step's penalty
    follows it, ``rho_k = rho * (noise_level / sigma_k)^2``, so that the last
    iteration has penalty ``rho`` and the denoiser at ``noise_level``
    (Zhang et al. 2021, whose ``lambda`` is ``rho``: 0.23 there)::

        s = operator.data_solve(y, z, rho_k)
        z = denoiser(s, sigma_k)

    Starting from a strong denoiser and refining lets HQS, which has no dual
    variable, converge in a few iterations (DPIR uses 8).

    Parameters
    ----------
    y, operator, denoiser
        As in :func:`admm`.
    rho : float, default=0.23
        Penalty of the last data step; smaller values regularise more.
    noise_level : float, default=0.01
        As in :func:`admm`: the last denoiser level.
    n_iter : int, default=8
        Length of the schedule.
    sigma_start : float, default=0.2
        First denoiser level (DPIR: 49/255).
    x0, callback
        As in :func:`admm`.

    Returns
    -------
    x : torch.Tensor of shape (n, h, w)
        The last denoiser output.
    changes : torch.Tensor of shape (n_iter, n)
        As in :func:`admm`.

    Examples
    --------
    Inpainting half of the pixels with DPIR's default schedule:

    >>> import torch
    >>> from sklearn_mbdl.denoisers import TVDenoiser
    >>> from sklearn_mbdl.operators import Inpainting, random_mask
    >>> from sklearn_mbdl.solvers import hqs
    >>> x = torch.zeros(1, 16, 16, dtype=torch.float64); x[:, 4:12, 4:12] = 1
    >>> A = Inpainting(random_mask((16, 16), 0.5, random_state=0))
    >>> restored, changes = hqs(A(x), A, TVDenoiser())
    >>> bool((restored - x).norm() < (A(x) - x).norm())
    True
    """
    _check(y, operator, denoiser, rho, noise_level, n_iter)
    if not isinstance(sigma_start, numbers.Real) or not sigma_start > 0:
        raise ValueError(f"sigma_start must be a positive number, got {sigma_start!r}.")
    sigma_end = max(noise_level, 1e-6)
    sigmas = dpir_schedule(n_iter, sigma_start, sigma_end)

    def iteration(k, z):
        rho_k = rho * (sigma_end / sigmas[k]) ** 2
        return denoiser(_data_solve(operator, y, z, rho_k), sigmas[k])

    return _iterate(iteration, _start(operator, y, x0), n_iter, callback)


def pgd(y, operator, denoiser, *, rho=1.0, noise_level=0.01, n_iter=30,
        step=None, x0=None, callback=None):
    """Plug-and-play proximal gradient descent.

    ::

        x = denoiser(x - step * A^T (A x - y), sigma_d)

    with ``step = 1 / L`` (``L = operator.lipschitz()``) and the denoiser at
    ADMM's level ``sigma_d = noise_level / sqrt(rho)``.

    Parameters
    ----------
    y, operator, denoiser
        As in :func:`admm`.
    rho : float, default=1.0
        Sets the denoiser's level, as in :func:`admm` (PGD's best values
        lie higher than ADMM's).
    noise_level, n_iter
        As in :func:`admm`.
    step : float, optional
        Gradient step; ``1 / operator.lipschitz(image_shape)`` by default.
    x0, callback
        As in :func:`admm`.

    Returns
    -------
    x : torch.Tensor of shape (n, h, w)
        The last iterate (a denoiser output).
    changes : torch.Tensor of shape (n_iter, n)
        As in :func:`admm`.

    Examples
    --------
    With a projection as the denoiser, PGD is projected gradient descent;
    here onto the images with values in [0, 1]:

    >>> import torch
    >>> from sklearn_mbdl.operators import GaussianBlur
    >>> from sklearn_mbdl.solvers import pgd
    >>> A = GaussianBlur(1.0, 7)
    >>> x = torch.zeros(1, 16, 16, dtype=torch.float64); x[:, 4:12, 4:12] = 1
    >>> restored, changes = pgd(A(x), A, lambda z, sigma: z.clamp(0, 1), n_iter=50)
    >>> bool((restored - x).norm() < (A(x) - x).norm())
    True
    """
    _check(y, operator, denoiser, rho, noise_level, n_iter)
    x = _start(operator, y, x0)
    if step is None:
        lipschitz = operator.lipschitz(tuple(x.shape[1:]))
        step = 1.0 / lipschitz if lipschitz > 0 else 1.0
    sigma = noise_level / math.sqrt(rho)

    def iteration(k, x):
        gradient = operator.adjoint(operator.forward(x) - y)
        return denoiser(x - step * gradient, sigma)

    return _iterate(iteration, x, n_iter, callback)
