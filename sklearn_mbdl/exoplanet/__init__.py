"""Exoplanet detection in angular differential imaging (ADI) sequences.

- ``_adi``: geometry (derotation, companion trajectories), the PCA-ADI and
  PACO-style baselines;
- ``_model``: the local model unrolled into a network;
- ``_estimator``: :class:`ExoplanetSeparator`;
- ``_simulate``: the idealised ADI simulator behind
  :func:`sklearn_mbdl.datasets.make_adi_cube`; ``_optics``: the
  physical-optics one (hcipy) behind
  :func:`sklearn_mbdl.datasets.make_physical_adi_cube`.
"""

from ._adi import (
    annulus_scale,
    derotate,
    gaussian_psf,
    paco_map,
    pca_adi,
    search_field,
    snr_map,
    trajectory_patches,
)
from ._estimator import ExoplanetSeparator
from ._model import LocalADISeparator

__all__ = ["ExoplanetSeparator", "LocalADISeparator", "annulus_scale", "derotate",
           "gaussian_psf", "paco_map", "pca_adi", "search_field", "snr_map",
           "trajectory_patches"]
