"""Burst super-resolution: the formation model's motions, the unrolled
network and :class:`BurstSuperResolver` (after Lecouat, Ponce & Mairal,
"Lucas-Kanade reloaded", ICCV 2021).

- ``_motion``: Lucas-Kanade / Gauss-Newton registration,
  :func:`estimate_motion`, :func:`motion_error`, unit conversions;
- ``_camera``: shot and read noise, :func:`estimate_noise_level`;
- ``_simulate``: random motions, simulated bursts and the classic
  baselines (:func:`bicubic`, :func:`shift_and_add`,
  :func:`wiener_deconvolution`);
- ``_network``: :class:`BurstNet`, the unrolled network;
- ``_estimator``: :class:`BurstSuperResolver`.
"""

from ._camera import estimate_noise_level
from ._motion import estimate_motion, motion_error, to_high_res, to_low_res
from ._network import BurstNet
from ._estimator import BurstSuperResolver
from ._simulate import bicubic, shift_and_add, wiener_deconvolution

__all__ = ["BurstNet", "BurstSuperResolver", "bicubic", "estimate_motion",
           "estimate_noise_level", "motion_error", "shift_and_add", "to_high_res", "to_low_res",
           "wiener_deconvolution"]
