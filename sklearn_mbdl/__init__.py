"""sklearn-mbdl: model-based deep learning as scikit-learn estimators.

Every method pairs a model-based algorithm (a known forward model and an
iterative solver) with its deep-learning twin (unrolled layers with learned
parameters, or a learned prior plugged into the solver).
"""

from .burst import BurstSuperResolver
from .dcea import DCEAEstimator
from .detnet import DetNetClassifier, MIMODetector
from .exoplanet import ExoplanetSeparator
from .lista import LISTATransformer
from .pnp import PnPRestorer
from .sparse_coding import SparseCoder, sparse_encode

__version__ = "0.1.0.dev0"

__all__ = ["DetNetClassifier", "LISTATransformer", "MIMODetector", "SparseCoder", "sparse_encode"]
__all__ += ["PnPRestorer"]
__all__ += ["DCEAEstimator"]
__all__ += ["BurstSuperResolver"]
__all__ += ["ExoplanetSeparator"]
