"""Forward operators as small torch objects.

An operator maps a batch of unknowns to a batch of observations. Every
operator has the same three methods, batched over the first axis and
differentiable:

- ``A(x)`` (``forward``): the observation model,
- ``A.adjoint(y)``: the adjoint map,
- ``A.lipschitz()``: the largest eigenvalue of ``A^T A``, the Lipschitz
  constant of the gradient of ``0.5 ||A x - y||^2`` (the step size of every
  gradient-based solver).

:class:`MatrixOperator` is the pattern all later operators (convolution,
masks, Fourier sampling, warps) follow.

The operators live in private modules, one per family, and are all
importable from here:

- ``_base``: :class:`LinearOperator`, :class:`MatrixOperator`,
  :func:`power_iteration`.
"""

from ._base import LinearOperator, MatrixOperator, power_iteration

__all__ = ["LinearOperator", "MatrixOperator", "power_iteration"]
