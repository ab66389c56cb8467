"""MIMO detection: DetNet, projected gradient descent unrolled into a
network (Samuel, Diskin & Wiesel, "Learning to detect", IEEE TSP 2019),
and the model-based detectors it is measured against.

Both estimators solve ``x = H s + w`` for symbols ``s`` from a finite
alphabet: the labels. A sample is one received vector ``x`` (a row of
``X``, one entry per receive antenna); its labels are the symbols of the
``n_tx`` users (a row of ``y``). The channel ``H`` is known: one fixed
matrix (``channel=``), one per sample (``channels=`` metadata in ``fit``
and ``predict``), or, with neither, estimated in ``fit`` by least squares
from the training pairs.

The subpackage holds the problem's plumbing (``_problem``: alphabet,
channel, sufficient statistics), the network (``_network``), the learned
estimator (``_classifier``), the model-based one (``_model_based``) and the
simulated transmissions behind :func:`sklearn_mbdl.datasets.make_mimo`
(``_simulate``: alphabets, real decomposition).
"""

from ._classifier import DetNetClassifier
from ._model_based import MIMODetector
from ._network import DetNet, FinalLayerMSE

__all__ = ["DetNet", "DetNetClassifier", "FinalLayerMSE", "MIMODetector"]
