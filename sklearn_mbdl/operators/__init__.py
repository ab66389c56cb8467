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
- ``_imaging``: images ``(n, h, w)`` with the data step of the splitting
  solvers: :class:`ImageOperator`, :class:`Identity`,
  :func:`conjugate_gradient`; ``_blur``: :class:`Blur`,
  :class:`GaussianBlur`, :func:`gaussian_kernel`; ``_sampling``:
  :class:`Inpainting`, :class:`SubsampledFourier`, :class:`Decimation`,
  :func:`random_mask`, :func:`cartesian_mask`.
- ``_convolution``: :class:`ConvolutionOperator` (a filter bank, strided),
  :func:`code_shape`.
- ``_warp``: sub-pixel motion and field rotation: :func:`warp`,
  :func:`rotate`, :func:`motion_matrix`, :class:`Warp` (bursts, ADI).
- ``_burst``: the burst formation model ``y_k = S B W_{p_k} x``:
  :class:`BurstOperator`, :func:`bin_pixels`, :func:`blur_and_bin`,
  :func:`gaussian_filter`, :func:`upsample`, :func:`decimation_factors`.
- ``_observe``: simulated noisy observations through any operator,
  ``observe`` (behind ``make_degraded_images`` and ``PnPRestorer.simulate``).

One grid convention holds for every imaging operator: *pixel-centre*, as in
scikit-image (``transform.rescale``, ``transform.downscale_local_mean``),
OpenCV, real sensors and ``torch.nn.functional.interpolate(...,
align_corners=False)``. A pixel is a square cell with its value at the
centre; a low-resolution pixel integrates the ``scale x scale``
high-resolution pixels of its cell (:func:`bin_pixels`), so low-resolution
pixel ``i`` is centred on high-resolution coordinate ``scale * i + (scale -
1) / 2`` and both grids share their centre. Warps and rotations turn about
the image centre ``((w - 1) / 2, (h - 1) / 2)`` in pixel units.
"""

from ._base import LinearOperator, MatrixOperator, power_iteration
from ._blur import Blur, GaussianBlur, gaussian_kernel
from ._imaging import Identity, ImageOperator, conjugate_gradient
from ._sampling import (
    Decimation,
    Inpainting,
    SubsampledFourier,
    cartesian_mask,
    random_mask,
)
from ._convolution import ConvolutionOperator, code_shape
from ._warp import MOTION_MODELS, Warp, motion_matrix, rotate, warp
from ._burst import (
    BurstOperator,
    bin_pixels,
    blur_and_bin,
    decimation_factors,
    gaussian_filter,
    upsample,
)

__all__ = ["LinearOperator", "MatrixOperator", "power_iteration",
           "ConvolutionOperator", "code_shape"]
__all__ += ["ImageOperator", "Identity", "Blur", "GaussianBlur", "gaussian_kernel",
            "Inpainting", "random_mask", "SubsampledFourier", "cartesian_mask",
            "Decimation", "conjugate_gradient"]
__all__ += ["MOTION_MODELS", "motion_matrix", "warp", "rotate", "Warp"]
__all__ += ["BurstOperator", "bin_pixels", "blur_and_bin", "decimation_factors",
            "gaussian_filter", "upsample"]
