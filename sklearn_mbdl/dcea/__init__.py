"""DCEA: the deep convolutional exponential-family autoencoder (Tolooshams,
Song, Temereanca & Ba, ICML 2020).

Photon-limited images follow ``x ~ Poisson(mu)`` with
``log mu = b + sum_c h_c * s_c``: sparse code maps ``s_c`` convolved with a
bank of filters ``h_c`` (a :class:`~sklearn_mbdl.operators.ConvolutionOperator`)
plus the image's mean level ``b``. The model-based algorithm is proximal
gradient on the Poisson likelihood
(:func:`~sklearn_mbdl.solvers.poisson_proximal_gradient`); DCEA unrolls a
fixed number of its steps (:func:`~sklearn_mbdl.solvers.exponential_family_step`)
into an encoder whose filters, step and thresholds are learned, followed by
the decoder ``mu = exp(b + H s)``. DCEA-C ties the encoder's filters to the
decoder's, DCEA-UC unties them.

The subpackage holds the network (``_network``) and the estimator
(``_estimator``).
"""

from ._estimator import DCEAEstimator, model_based_denoise
from ._network import DCEA, ExponentialFamilyLoss

__all__ = ["DCEA", "DCEAEstimator", "ExponentialFamilyLoss", "model_based_denoise"]
