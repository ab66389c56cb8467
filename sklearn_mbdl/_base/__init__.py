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

from ._core import (
    FLOAT_DTYPES,
    ROUTING_HINT,
    TRAINING_CONSTRAINTS,
    Announce,
    DEVICE_CONSTRAINT,
    HasMethods,
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    RealNotInt,
    SimulatedRows,
    StrOptions,
    check_bool,
    check_matrix,
    check_number,
    check_number_or_range,
    check_options,
    check_routed,
    progress,
    resolve_device,
    row_chunks,
    seeded,
    to_numpy,
    to_tensor,
    torch_dtype,
    torch_seed,
    warn_if_out_of_range,
)
from ._estimator import RestorerMixin, TorchEstimator, TrainingProblem, TrainingResult
from ._images import (
    IMAGE_SHAPE_CONSTRAINT,
    check_images,
    normalize_image_shape,
    random_symmetries,
)

__all__ = [
    "FLOAT_DTYPES", "ROUTING_HINT", "TRAINING_CONSTRAINTS", "Announce",
    "DEVICE_CONSTRAINT", "HasMethods", "Hidden", "Interval", "InvalidParameterError",
    "Options", "RealNotInt", "SimulatedRows", "StrOptions", "check_bool",
    "check_matrix", "check_number", "check_number_or_range", "check_options",
    "check_routed", "progress", "resolve_device", "row_chunks", "seeded",
    "to_numpy", "to_tensor", "torch_dtype", "torch_seed", "warn_if_out_of_range",
    "RestorerMixin", "TorchEstimator", "TrainingProblem", "TrainingResult",
    "IMAGE_SHAPE_CONSTRAINT", "check_images", "normalize_image_shape",
    "random_symmetries",
]
