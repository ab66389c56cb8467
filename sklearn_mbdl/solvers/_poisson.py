"""Proximal gradient for exponential-family sparse coding with a fixed
dictionary (Poisson, Gaussian, binomial), and the step that DCEA unrolls.

The model of a signal ``x`` (e.g. a photon-limited image) is a natural
parameter ``eta = H s + b``: a sparse code ``s`` through a linear dictionary
``H`` (typically a :class:`~sklearn_mbdl.operators.ConvolutionOperator`),
plus a per-signal offset ``b``; ``x`` follows the exponential family whose
mean is ``mu = f^{-1}(eta)`` (the inverse link):

============  ===================  ============================================
distribution  mean ``f^{-1}``      negative log-likelihood (up to a constant)
============  ===================  ============================================
poisson       ``exp(eta)``         ``sum exp(eta) - x eta``
gaussian      ``eta``              ``0.5 sum (x - eta)^2``
binomial      ``sigmoid(eta)``     ``sum log(1 + exp(eta)) - x eta``
============  ===================  ============================================

and the codes solve ``min_s NLL(x | H s + b) + alpha ||s||_1``. The gradient
of the likelihood term is ``H^T (mu - x)`` for every member of the family,
so one step is ``s <- prox(s - step * H^T (mu - x), step * alpha)``
(:func:`exponential_family_step`), the step the DCEA network unrolls with
learned filters.
"""

import math

import torch

from ._proximal_gradient import proximal_step

__all__ = [
    "DISTRIBUTIONS",
    "inverse_link",
    "link",
    "natural_offset",
    "exponential_family_nll",
    "exponential_family_objective",
    "exponential_family_step",
    "poisson_proximal_gradient",
]

DISTRIBUTIONS = ("poisson", "gaussian", "binomial")

# natural parameters are capped here before exp(): exp(30) ~ 1e13 counts is
# far beyond any image, and float32 stays finite through the iterations
_MAX_ETA = 30.0


def _check_distribution(distribution):
    if distribution not in DISTRIBUTIONS:
        raise ValueError(
            f"distribution must be one of {list(DISTRIBUTIONS)}, got {distribution!r}."
        )


def inverse_link(eta, distribution="poisson"):
    """The mean ``mu = f^{-1}(eta)`` of the family at natural parameter ``eta``.

    Parameters
    ----------
    eta : torch.Tensor
        Natural parameters, any shape.
    distribution : {"poisson", "gaussian", "binomial"}, default="poisson"

    Returns
    -------
    torch.Tensor
        ``exp(eta)``, ``eta`` or ``sigmoid(eta)``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.solvers import inverse_link
    >>> inverse_link(torch.tensor([0.0]), "binomial")
    tensor([0.5000])
    """
    if distribution == "poisson":
        return torch.exp(torch.clamp(eta, max=_MAX_ETA))
    if distribution == "gaussian":
        return eta
    if distribution == "binomial":
        return torch.sigmoid(eta)
    _check_distribution(distribution)


def natural_offset(X, distribution="poisson", eps=1e-6, window=None):
    """Per-signal offset ``b = f(mean(x))``: the flat signal of best likelihood.

    The offset carries the signal's level, so that the sparse codes only
    describe the structure around it. With ``window``, the level is local:
    the mean of ``x`` under a Gaussian window of that standard deviation
    (pixels), normalised at the borders, so the offset of a pixel does not
    depend on the extent of the image it lies in (a model trained on small
    patches then sees the same offsets on whole pictures).

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, ...)
        Signals, one per entry of the first axis; with ``window``, of shape
        ``(n_samples, 1, length)`` or ``(n_samples, 1, h, w)``.
    distribution : {"poisson", "gaussian", "binomial"}, default="poisson"
    eps : float, default=1e-6
        Means are clipped to ``[eps, inf)`` (Poisson) or ``[eps, 1 - eps]``
        (binomial) before the link.
    window : float, optional
        Standard deviation of the Gaussian window; None for one offset per
        signal (the global mean).

    Returns
    -------
    torch.Tensor
        Of shape ``(n_samples, 1, ..., 1)`` (global) or the shape of ``X``
        (local); broadcasts against ``X``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.solvers import natural_offset
    >>> natural_offset(torch.tensor([[1.0, 1.0]])).squeeze()
    tensor(0.)
    """
    _check_distribution(distribution)
    if window is None:
        mean = X.reshape(X.shape[0], -1).mean(dim=1)
        mean = mean.reshape(X.shape[0], *([1] * (X.ndim - 1)))
    else:
        mean = _local_mean(X, float(window))
    return link(mean, distribution, eps)


def link(mean, distribution="poisson", eps=1e-6):
    """The canonical link ``f(mean)``, the inverse of :func:`inverse_link`.

    Parameters
    ----------
    mean : torch.Tensor
        Means, any shape.
    distribution : {"poisson", "gaussian", "binomial"}, default="poisson"
    eps : float, default=1e-6
        Means are clipped to ``[eps, inf)`` (Poisson) or ``[eps, 1 - eps]``
        (binomial) before the link.

    Returns
    -------
    torch.Tensor
        ``log(mean)``, ``mean`` or ``logit(mean)``.
    """
    if distribution == "poisson":
        return torch.log(torch.clamp(mean, min=eps))
    if distribution == "binomial":
        mean = torch.clamp(mean, eps, 1 - eps)
        return torch.log(mean) - torch.log1p(-mean)
    return mean


def _local_mean(X, sigma):
    """Gaussian-weighted local mean, separable, normalised at the borders."""
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=X.dtype, device=X.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    ones = torch.ones_like(X[:1])
    num, den = X, ones
    for axis in range(2, X.ndim):
        shape = [1, 1] + [1] * (X.ndim - 2)
        shape[axis] = kernel.numel()
        weight = kernel.reshape(shape)
        conv = torch.nn.functional.conv2d if X.ndim == 4 else torch.nn.functional.conv1d
        padding = [0] * (X.ndim - 2)
        padding[axis - 2] = radius
        num = conv(num, weight, padding=tuple(padding))
        den = conv(den, weight, padding=tuple(padding))
    return num / den


def exponential_family_nll(X, eta, distribution="poisson"):
    """Per-signal negative log-likelihood of ``X`` at natural parameter ``eta``
    (up to terms that do not depend on ``eta``).

    Parameters
    ----------
    X, eta : torch.Tensor of the same shape (n_samples, ...)
    distribution : {"poisson", "gaussian", "binomial"}, default="poisson"

    Returns
    -------
    torch.Tensor of shape (n_samples,)
        The negative log-likelihood of each signal, summed over its entries.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.solvers import exponential_family_nll
    >>> exponential_family_nll(torch.tensor([[1.0]]), torch.tensor([[0.0]]))
    tensor([1.])
    """
    _check_distribution(distribution)
    if distribution == "poisson":
        terms = torch.exp(torch.clamp(eta, max=_MAX_ETA)) - X * eta
    elif distribution == "gaussian":
        terms = 0.5 * (X - eta) ** 2
    else:
        terms = torch.nn.functional.softplus(eta) - X * eta
    return terms.reshape(X.shape[0], -1).sum(dim=1)


def exponential_family_objective(X, codes, operator, alpha, distribution="poisson",
                                 offset=None):
    """Per-signal objective ``NLL(x | H s + b) + alpha ||s||_1``.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, \\*operator.out_shape)
    codes : torch.Tensor of shape (n_samples, \\*operator.in_shape)
    operator : LinearOperator
        The dictionary ``H`` (e.g. a
        :class:`~sklearn_mbdl.operators.ConvolutionOperator`).
    alpha : float
    distribution : {"poisson", "gaussian", "binomial"}, default="poisson"
    offset : torch.Tensor, optional
        ``b``, broadcast against ``X``; :func:`natural_offset` by default.

    Returns
    -------
    torch.Tensor of shape (n_samples,)
        The objective of each signal, which :func:`poisson_proximal_gradient`
        decreases.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import ConvolutionOperator
    >>> from sklearn_mbdl.solvers import exponential_family_objective
    >>> H = ConvolutionOperator(torch.ones(1, 3), (5,))
    >>> X = torch.ones(1, 1, 5)
    >>> exponential_family_objective(X, torch.zeros(1, *H.in_shape), H, 0.1)
    tensor([5.])
    """
    X = _as_signals(X, operator)
    if offset is None:
        offset = natural_offset(X, distribution)
    eta = operator(codes) + offset
    return (exponential_family_nll(X, eta, distribution)
            + alpha * codes.abs().reshape(codes.shape[0], -1).sum(dim=1))


def exponential_family_step(codes, X, offset, decoder, encoder, step, threshold,
                            distribution="poisson", positive=False):
    """One proximal-gradient step on ``NLL(x | H s + b) + alpha ||s||_1``.

    ``s <- prox_l1(s - step * E^T (f^{-1}(D s + b) - x), threshold)``: with
    ``D = E = H``, ``step = 1/L`` and ``threshold = alpha / L`` it is the
    model-based iteration of :func:`poisson_proximal_gradient`; DCEA runs it
    with learned filters ``D`` (decoder) and ``E`` (encoder, the same as
    ``D`` in DCEA-C), a learned step and learned thresholds. The proximal
    map is :func:`~sklearn_mbdl.solvers.proximal_step`.

    Parameters
    ----------
    codes : torch.Tensor of shape (n_samples, \\*decoder.in_shape)
    X : torch.Tensor of shape (n_samples, \\*decoder.out_shape)
    offset : torch.Tensor
        ``b``, broadcast against ``X``.
    decoder, encoder : LinearOperator
        ``D`` (codes to natural parameters) and ``E`` (its adjoint maps the
        residual back to the codes).
    step : float or torch.Tensor
        Step size, broadcast against ``codes``.
    threshold : float or torch.Tensor
        Threshold of the soft threshold, broadcast against ``codes`` (e.g.
        one per filter, shape ``(C, 1, 1)``).
    distribution : {"poisson", "gaussian", "binomial"}, default="poisson"
    positive : bool, default=False
        Non-negative codes.

    Returns
    -------
    torch.Tensor of the shape of ``codes``
    """
    mean = inverse_link(decoder(codes) + offset, distribution)
    return proximal_step(codes, step * encoder.adjoint(mean - X), threshold,
                         positive)


def _as_signals(X, operator):
    out_shape = tuple(operator.out_shape)
    if tuple(X.shape[1:]) == out_shape:
        return X
    if tuple(X.shape[1:]) == out_shape[1:]:
        return X.unsqueeze(1)
    raise ValueError(
        f"X has shape {tuple(X.shape)}; the operator maps codes to signals of "
        f"shape (n, {', '.join(map(str, out_shape))})."
    )


def poisson_proximal_gradient(X, operator, alpha, *, distribution="poisson",
                              max_iter=100, tol=1e-5, step=None, offset=None,
                              positive=False, init=None, callback=None):
    """Sparse codes of exponential-family signals with a fixed dictionary.

    Solves, for every signal ``x``,
    ``min_s NLL(x | H s + b) + alpha ||s||_1`` by proximal gradient
    (:func:`exponential_family_step` with ``D = E = H``), all signals at once.
    For the Poisson family this is
    ``min_s 1^T exp(H s + b) - x^T (H s + b) + alpha ||s||_1``.

    The gradient of the Poisson likelihood is not globally Lipschitz (it
    grows like ``exp``), so by default each signal gets its own step by
    backtracking: the step starts at ``1 / (||H||^2 max(x, mu))``, is halved
    until the usual sufficient-decrease test passes and may grow by 25% at
    the next iteration. The objective then decreases at every iteration.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, \\*operator.out_shape)
        Observations (counts for Poisson, in [0, 1] for binomial); the
        channel axis may be left out.
    operator : LinearOperator
        The dictionary ``H``, e.g. a
        :class:`~sklearn_mbdl.operators.ConvolutionOperator`; it has
        ``in_shape`` and ``out_shape``.
    alpha : float
        Weight of the l1 penalty.
    distribution : {"poisson", "gaussian", "binomial"}, default="poisson"
    max_iter : int, default=100
        Number of iterations (at most).
    tol : float, default=1e-5
        Stop when every signal has ``||s_new - s|| <= tol * ||s_new||``.
    step : float, optional
        A fixed step size instead of the backtracking (no decrease
        guarantee if it is too large): the plain iteration that DCEA unrolls.
    offset : torch.Tensor, optional
        ``b``, broadcast against ``X``; :func:`natural_offset` by default.
    positive : bool, default=False
        Non-negative codes.
    init : torch.Tensor of shape (n_samples, \\*operator.in_shape), optional
        Starting codes (zeros by default).
    callback : callable, optional
        ``callback(iteration, codes)`` after every iteration.

    Returns
    -------
    codes : torch.Tensor of shape (n_samples, \\*operator.in_shape)
    n_iter : int

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import ConvolutionOperator
    >>> from sklearn_mbdl.solvers import (inverse_link, natural_offset,
    ...                                   poisson_proximal_gradient)
    >>> g = torch.Generator().manual_seed(0)
    >>> H = ConvolutionOperator(torch.randn(4, 5, 5, generator=g), (16, 16), stride=2)
    >>> X = torch.poisson(torch.full((3, 1, 16, 16), 4.0), generator=g)
    >>> codes, n_iter = poisson_proximal_gradient(X, H, alpha=1.0, max_iter=20)
    >>> intensity = inverse_link(H(codes) + natural_offset(X))
    >>> intensity.shape
    torch.Size([3, 1, 16, 16])
    """
    _check_distribution(distribution)
    if not alpha >= 0:
        raise ValueError(f"alpha must be non-negative, got {alpha}.")
    X = _as_signals(X, operator)
    n = X.shape[0]
    if offset is None:
        offset = natural_offset(X, distribution)
    codes = (X.new_zeros((n, *operator.in_shape)) if init is None
             else init.to(dtype=X.dtype, device=X.device).clone())
    bcast = (n, *([1] * len(operator.in_shape)))
    n_iter = 0
    if step is not None:
        for n_iter in range(1, max_iter + 1):
            new = exponential_family_step(codes, X, offset, operator, operator,
                                          step, step * alpha, distribution,
                                          positive)
            done = _converged(new, codes, tol)
            codes = new
            if callback is not None:
                callback(n_iter, codes)
            if done:
                break
        return codes, n_iter

    lipschitz = max(operator.lipschitz(), torch.finfo(X.dtype).tiny)
    curvature = {"poisson": None, "gaussian": 1.0, "binomial": 0.25}[distribution]
    if curvature is None:  # local curvature of exp: the largest mean / count
        level = torch.maximum(
            X.reshape(n, -1).max(dim=1).values,
            torch.exp(offset.expand_as(X).reshape(n, -1).max(dim=1).values))
        steps = 1.0 / (lipschitz * torch.clamp(level, min=1e-3))
    else:
        steps = X.new_full((n,), 1.0 / (curvature * lipschitz))

    def smooth(c):
        eta = operator(c) + offset
        return eta, exponential_family_nll(X, eta, distribution)

    eta, value = smooth(codes)
    for n_iter in range(1, max_iter + 1):
        grad = operator.adjoint(inverse_link(eta, distribution) - X)
        for _ in range(60):
            t = steps.reshape(bcast)
            new = proximal_step(codes, t * grad, t * alpha, positive)
            diff = new - codes
            new_eta, new_value = smooth(new)
            bound = (value + (grad * diff).reshape(n, -1).sum(dim=1)
                     + (diff * diff).reshape(n, -1).sum(dim=1) / (2 * steps))
            ok = new_value <= bound + 1e-12 * bound.abs()
            all_ok = bool(ok.all())  # the one sync of the backtracking step
            if all_ok:
                break
            steps = torch.where(ok, steps, 0.5 * steps)
        # a signal whose step underflowed keeps its codes (known without a
        # second sync: the loop above ended without every signal passing)
        if not all_ok:
            keep = ~ok
            new = torch.where(keep.reshape(bcast), codes, new)
            new_eta = torch.where(keep.reshape(n, *([1] * (eta.ndim - 1))), eta,
                                  new_eta)
            new_value = torch.where(keep, value, new_value)
        done = _converged(new, codes, tol)
        codes, eta, value = new, new_eta, new_value
        steps = 1.25 * steps
        if callback is not None:
            callback(n_iter, codes)
        if done:
            break
    return codes, n_iter


def _converged(new, old, tol):
    n = new.shape[0]
    change = torch.linalg.vector_norm((new - old).reshape(n, -1), dim=1)
    scale = torch.linalg.vector_norm(new.reshape(n, -1), dim=1)
    return bool((change <= tol * torch.clamp(scale, min=math.ulp(0.0))).all())
