"""sklearn-mbdl: model-based deep learning as scikit-learn estimators."""

__version__ = "0.1.0.dev0"
