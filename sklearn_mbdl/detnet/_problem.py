"""What the detectors share: labels as an alphabet, the channel (fixed,
per sample or estimated), the noise level and the sufficient statistics."""

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import type_of_target

from .._base import ROUTING_HINT, check_routed
from ..solvers import matched_filter


class _DetectorMixin(ClassifierMixin):
    """Labels, channel and noise handling shared by the detectors.

    The alphabet is ``classes_`` (all users share it). Numeric labels are
    the symbols' values; other labels (strings) are mapped in sorted order
    to the equally spaced points ``-(M-1), ..., M-1``. Internally symbols
    are centred and scaled to ``[-1, 1]`` (``u = (s - offset_) / scale_``).
    """

    def _fit_problem(self, X, y, channels):
        """What every detector's ``fit`` starts with: check the parameters
        and the data, learn the alphabet (``classes_``, ``n_tx_``), the
        channel and the noise level (:meth:`_fit_channel`).

        Returns the validated ``X``, the training symbols' values, the
        training channels and the noise variance per sample.
        """
        self._check_params()
        X = self._validate_X(X, reset=True)
        values = self._values(self._fit_labels(_check_y(y, X)))
        self.n_tx_ = values.shape[1]
        H, noise_var = self._fit_channel(X, values, channels)
        return X, values, H, noise_var

    def _fit_labels(self, y):
        y = np.asarray(y)
        if y.ndim not in (1, 2) or y.size == 0:
            raise ValueError(
                f"y must have shape (n_samples,) or (n_samples, n_tx), got {y.shape}."
            )
        if y.dtype.kind in "fc" and not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinity: it must hold the "
                             "transmitted symbols.")
        kind = type_of_target(y, input_name="y")
        if kind.startswith("continuous"):
            raise ValueError(
                "y must hold symbols from a finite alphabet (class labels); got "
                "continuous values. Pass the transmitted symbols, e.g. -1 and 1."
            )
        self._single_output = y.ndim == 1
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) > 256:
            raise ValueError(
                f"y has {len(self.classes_)} distinct labels: a detector needs a "
                "small finite alphabet of symbols."
            )
        if self.classes_.dtype.kind in "biuf":
            points = self.classes_.astype(np.float64)
        else:
            points = 2.0 * np.arange(len(self.classes_)) - (len(self.classes_) - 1)
        self.points_ = points
        self.offset_ = 0.5 * (points.max() + points.min())
        self.scale_ = max(0.5 * (points.max() - points.min()), 1e-12)
        return codes.reshape(y.shape[0], -1)

    def _values(self, codes):
        return self.points_[codes]

    def _check_channel(self, H, X, n_tx, *, per_sample):
        """Validate a channel against ``X``: ``(n_rx, n_tx)`` or per sample."""
        name = "channels" if per_sample else "channel"
        H = np.asarray(H)
        if H.dtype.kind not in "biuf":
            raise ValueError(f"{name} must be a real numeric array, got dtype {H.dtype}.")
        H = H.astype(X.dtype if X.dtype == np.float32 else np.float64)
        if not np.all(np.isfinite(H)):
            raise ValueError(f"{name} contains NaN or infinity.")
        expected = (X.shape[0], X.shape[1], n_tx) if per_sample else (X.shape[1], n_tx)
        if H.shape != expected:
            what = ("one (n_rx, n_tx) matrix per sample" if per_sample
                    else "one (n_rx, n_tx) matrix")
            raise ValueError(
                f"{name} has shape {H.shape} but X has {X.shape[0]} samples of "
                f"{X.shape[1]} receive antennas and there are {n_tx} users: "
                f"expected {what}, {expected}."
            )
        return H

    def _fit_channel(self, X, y_values, channels):
        """Set ``channel_`` (fixed, maybe estimated) or mark per-sample use;
        return the training channels and the noise variance per sample."""
        n_tx = y_values.shape[1]
        check_routed(self, "channels", channels)
        if channels is not None:
            H = self._check_channel(channels, X, n_tx, per_sample=True)
            self.channel_ = None
        elif self.channel is not None:
            H = self._check_channel(self.channel, X, n_tx, per_sample=False)
            self.channel_ = H.astype(np.float64)
        else:
            # least squares: X ~ y H^T
            Ht, *_ = np.linalg.lstsq(y_values, X.astype(np.float64), rcond=None)
            H = Ht.T
            self.channel_ = H
        squared = (X - (y_values @ H.T if H.ndim == 2
                        else np.einsum("nrk,nk->nr", H, y_values))) ** 2
        if channels is not None:
            residual = squared.sum(axis=1) / X.shape[1]
        else:
            # one noise level: the pooled residual (degrees of freedom
            # corrected when the channel was estimated)
            dof = X.size - (H.size if self.channel is None else 0)
            residual = np.full(X.shape[0], squared.sum() / max(dof, 1))
        self.noise_var_ = float(np.mean(residual))
        return H, residual

    def _predict_channel(self, X, channels):
        n_tx = self.n_tx_
        if channels is not None:
            return self._check_channel(channels, X, n_tx, per_sample=True)
        if self.channel_ is None:
            raise ValueError(
                f"{type(self).__name__} was fitted with per-sample channels: pass "
                "them to this method as channels=, shape (n_samples, n_rx, n_tx). "
                "Inside a Pipeline or a search: "
                + ROUTING_HINT.format(name="channels")
            )
        return self.channel_.astype(X.dtype)

    def predict(self, X, channels=None):
        """Detected symbols.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_rx)
        channels : array-like of shape (n_samples, n_rx, n_tx), optional
            Needed when the model was fitted with per-sample channels.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_tx)
            Labels from ``classes_``.
        """
        return self._labels(self._symbol_indices(X, channels))

    def predict_proba(self, X, channels=None):
        """Per-symbol probabilities: the detector's soft output (see the
        class description).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_rx)
        channels : array-like of shape (n_samples, n_rx, n_tx), optional
            As in :meth:`predict`.

        Returns
        -------
        ndarray of shape (n_samples, n_classes), or list of n_tx such arrays
            Columns in the order of ``classes_``. One array when ``y`` was
            1-D (one user); otherwise one array per user (scikit-learn's
            multi-output convention).
        """
        return self._probabilities(self._symbol_log_proba(X, channels))

    def _symbol_indices(self, X, channels):
        """The detected symbols' indices in ``classes_``, shape
        ``(n_samples, n_tx)`` (each detector its own)."""
        raise NotImplementedError

    def _symbol_log_proba(self, X, channels):
        """Log-probabilities of the symbols, shape ``(n_samples, n_tx,
        n_classes)`` (each detector its own)."""
        raise NotImplementedError

    def _labels(self, index):
        labels = self.classes_[index]
        return labels[:, 0] if self._single_output else labels

    def _probabilities(self, log_proba):
        """``predict_proba``'s output from log-probabilities of shape
        ``(n_samples, n_tx, n_classes)``, normalised over the alphabet.

        scikit-learn's convention, shared by the detectors: one array of
        shape ``(n_samples, n_classes)`` when ``y`` was 1-D (one user), a
        list of ``n_tx`` such arrays, one per user, otherwise (as
        ``MultiOutputClassifier`` and multi-output trees return).
        """
        log_proba = log_proba - log_proba.max(-1, keepdims=True)
        proba = np.exp(log_proba)
        proba /= proba.sum(-1, keepdims=True)
        if self._single_output:
            return proba[:, 0]
        return [proba[:, k] for k in range(proba.shape[1])]

    def score(self, X, y, sample_weight=None, channels=None):
        """Mean symbol accuracy, ``1 - symbol error rate``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_rx)
        y : array-like of shape (n_samples,) or (n_samples, n_tx)
            True symbols.
        sample_weight : array-like of shape (n_samples,), optional
        channels : array-like of shape (n_samples, n_rx, n_tx), optional
            Per-sample channels (metadata).

        Returns
        -------
        float
        """
        from ..metrics import symbol_error_rate

        return 1.0 - symbol_error_rate(y, self.predict(X, channels=channels),
                                       sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.classifier_tags.multi_class = True
        # the model is x = H s + w with each user's symbols on a line: data
        # whose class means are not (make_blobs, as the generic checks use)
        # is outside it, and no detector of this family scores well there
        tags.classifier_tags.poor_score = True
        return tags


def _check_y(y, X):
    if y is None:
        raise ValueError("requires y to be passed, but the target y is None: a "
                         "detector learns from transmitted symbols.")
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has shape {y.shape}.")
    return y


def _gaussian_log_proba(estimates, std, points):
    """Log-probabilities of the symbols ``points`` under a Gaussian of
    standard deviation ``std`` (broadcast with ``estimates``) around the
    soft ``estimates`` of shape ``(n_samples, n_tx)``, normalised over the
    alphabet: shape ``(n_samples, n_tx, n_points)``."""
    std = np.maximum(np.asarray(std, dtype=np.float64), 1e-300)
    logp = -0.5 * ((estimates[..., None] - points) / std[..., None]) ** 2
    logp -= logp.max(-1, keepdims=True)
    return logp - np.log(np.exp(logp).sum(-1, keepdims=True))


def _statistics(X, H, offset, scale):
    """Normalised sufficient statistics of the centred, scaled problem.

    With ``s = offset + scale * u``: ``H^T x = H^T H (offset + scale u) +
    H^T w``. Returns ``(H^T x - offset H^T H 1) / (scale c)``,
    ``H^T H / c`` and ``c = trace(H^T H) / n_tx`` (per sample, or a scalar
    for one channel), so that the network sees unit-scale inputs whatever
    the channel gain.
    """
    Htx, HtH = matched_filter(X, H)
    Htx = (Htx - offset * HtH.sum(-1)) / scale
    c = torch.diagonal(HtH, dim1=-2, dim2=-1).mean(-1).clamp_min(1e-30)
    if HtH.ndim == 2:
        return Htx / c, HtH / c, c
    return Htx / c[:, None], HtH / c[:, None, None], c
