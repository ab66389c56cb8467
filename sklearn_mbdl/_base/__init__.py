"""What every estimator of the toolkit shares.

- device choice (``"cpu"``, ``"cuda"``, ``"auto"``, ``"accelerate"``)
  resolved once in ``fit``; seeding from ``random_state`` without touching
  the caller's global torch random state (``_core``);
- parameters declared once per class as constraints (scikit-learn's
  ``_parameter_constraints`` convention) and checked in ``fit`` (``_core``);
- the image-input layer and the image augmentation (``_images``);
- the trained-estimator template: the one fit loop (allocation,
  simulation, seeding, early stopping, keep-better-than-start) and the one
  chunked, dtype-preserving inference (``_estimator``).
"""

from . import _core, _estimator, _images
from ._core import *  # noqa: F401,F403
from ._estimator import *  # noqa: F401,F403
from ._images import *  # noqa: F401,F403

__all__ = _core.__all__ + _estimator.__all__ + _images.__all__
