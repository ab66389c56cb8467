"""Proximal maps and projections.

Every map here acts elementwise on a batched tensor, is written once and is
shared by the model-based solvers (:mod:`sklearn_mbdl.solvers`) and by the
unrolled networks that learn their parameters (LISTA, DetNet, ...). All maps
are differentiable almost everywhere, so gradients flow through them.
"""

import torch

__all__ = ["soft_threshold", "nonneg_soft_threshold", "prox_l1"]


def soft_threshold(x, threshold):
    """Soft threshold, the proximal map of ``threshold * ||.||_1``.

    ``sign(x) * max(|x| - threshold, 0)``, elementwise.

    Parameters
    ----------
    x : torch.Tensor
        Input of any shape.
    threshold : float or torch.Tensor
        Non-negative threshold, broadcast against ``x`` (a scalar, one value
        per component, or one per element).

    Returns
    -------
    torch.Tensor
        Tensor of the shape of ``x``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.prox import soft_threshold
    >>> soft_threshold(torch.tensor([-2.0, 0.5, 3.0]), 1.0)
    tensor([-1.,  0.,  2.])
    """
    return torch.sign(x) * torch.relu(torch.abs(x) - threshold)


def nonneg_soft_threshold(x, threshold):
    """Non-negative soft threshold: the proximal map of ``threshold*||.||_1``
    plus the indicator of the non-negative orthant, ``max(x - threshold, 0)``.

    Parameters
    ----------
    x : torch.Tensor
        Input of any shape.
    threshold : float or torch.Tensor
        Non-negative threshold, broadcast against ``x``.

    Returns
    -------
    torch.Tensor

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.prox import nonneg_soft_threshold
    >>> nonneg_soft_threshold(torch.tensor([-2.0, 0.5, 3.0]), 1.0)
    tensor([0., 0., 2.])
    """
    return torch.relu(x - threshold)


def prox_l1(x, threshold, positive=False):
    """Proximal map of the l1 norm, optionally restricted to ``x >= 0``.

    Dispatches to :func:`soft_threshold` or :func:`nonneg_soft_threshold`.

    Parameters
    ----------
    x : torch.Tensor
        Input of any shape.
    threshold : float or torch.Tensor
        Non-negative threshold, broadcast against ``x``.
    positive : bool, default=False
        Also project on ``x >= 0``.

    Returns
    -------
    torch.Tensor
    """
    if positive:
        return nonneg_soft_threshold(x, threshold)
    return soft_threshold(x, threshold)
