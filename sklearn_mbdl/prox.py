"""Proximal maps and projections.

Every map here acts elementwise on a batched tensor, is written once and is
shared by the model-based solvers (:mod:`sklearn_mbdl.solvers`) and by the
unrolled networks that learn their parameters (LISTA, DetNet, ...). All maps
are differentiable almost everywhere, so gradients flow through them.
"""

import torch

__all__ = ["soft_threshold", "nonneg_soft_threshold", "prox_l1",
           "soft_constellation", "nearest_point"]


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


def prox_l1(x, threshold, positive=False, *, out=None):
    """Proximal map of the l1 norm, optionally restricted to ``x >= 0``.

    Dispatches to :func:`soft_threshold` or :func:`nonneg_soft_threshold`.

    Parameters
    ----------
    x, threshold
        As in :func:`soft_threshold`.
    positive : bool, default=False
        Also project on ``x >= 0``.
    out : torch.Tensor, optional
        A buffer of the shape of ``x`` (not ``x`` itself) to write the result
        to, with no temporary tensor: inference loops that reuse their
        buffers allocate nothing per step (not differentiable).

    Returns
    -------
    torch.Tensor
        ``out`` when given.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.prox import prox_l1
    >>> x = torch.tensor([-2.0, 0.5, 3.0])
    >>> prox_l1(x, 1.0, out=torch.empty(3))
    tensor([-1.,  0.,  2.])
    """
    if out is not None:
        if positive:
            return torch.sub(x, threshold, out=out).clamp_(min=0)
        torch.abs(x, out=out).sub_(threshold).clamp_(min=0)
        return torch.copysign(out, x, out=out)
    if positive:
        return nonneg_soft_threshold(x, threshold)
    return soft_threshold(x, threshold)


def soft_constellation(x, points, softness=1.0):
    """Soft projection onto a one-dimensional constellation.

    A staircase through the sorted ``points``: between two neighbours
    ``c_i < c_{i+1}`` it ramps linearly over a window of width
    ``softness * (c_{i+1} - c_i)`` centred on their midpoint, and is flat
    elsewhere. ``softness=1`` is the projection onto the box
    ``[c_1, c_M]`` (the convex relaxation of the alphabet), ``softness -> 0``
    the hard decision; for ``points = (-1, 1)`` it is DetNet's piecewise
    linear soft sign ``-1 + relu(x + t)/t - relu(x - t)/t`` with ``t =
    softness``.

    Parameters
    ----------
    x : torch.Tensor
        Input of any shape.
    points : torch.Tensor of shape (n_points,)
        The sorted constellation (at least two points).
    softness : float or torch.Tensor, default=1.0
        Positive ramp width relative to the spacing; a tensor broadcasts
        against ``x[..., None]`` (e.g. one value per layer).

    Returns
    -------
    torch.Tensor
        Tensor of the shape of ``x``, with values in ``[points[0], points[-1]]``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.prox import soft_constellation
    >>> points = torch.tensor([-1.0, 1.0])
    >>> soft_constellation(torch.tensor([-3.0, 0.25, 2.0]), points, 0.5)
    tensor([-1.0000,  0.5000,  1.0000])
    """
    gaps = points[1:] - points[:-1]
    middles = 0.5 * (points[1:] + points[:-1])
    ramp = (x[..., None] - middles) / (softness * gaps) + 0.5
    return points[0] + (gaps * ramp.clamp(0.0, 1.0)).sum(dim=-1)


def nearest_point(x, points):
    """Index of the nearest constellation point (the hard decision).

    Parameters
    ----------
    x : torch.Tensor
        Input of any shape.
    points : torch.Tensor of shape (n_points,)
        The sorted constellation.

    Returns
    -------
    torch.Tensor of int64
        Tensor of the shape of ``x``: indices into ``points``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.prox import nearest_point
    >>> nearest_point(torch.tensor([-0.2, 2.4]), torch.tensor([-3.0, -1.0, 1.0, 3.0]))
    tensor([1, 3])
    """
    middles = 0.5 * (points[1:] + points[:-1])
    return torch.bucketize(x.contiguous(), middles.contiguous())
