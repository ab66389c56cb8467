"""MIMODetector: the model-based detectors as an estimator."""

import numpy as np
import torch

from .._base import TorchEstimator, check_number, check_options, progress
from ..prox import nearest_point
from ..solvers import mmse, mmse_sic, sphere_decoder, zero_forcing
from ._problem import _check_y, _DetectorMixin


class MIMODetector(_DetectorMixin, TorchEstimator):
    """Model-based MIMO detectors: ZF, MMSE, ordered MMSE-SIC and exact ML.

    Nothing is learned but what the model needs: the alphabet from the
    labels, the noise variance (for MMSE) from the training residuals and,
    without ``channel`` or per-sample ``channels``, a fixed channel by least
    squares.

    Parameters
    ----------
    method : {"zf", "mmse", "mmse_sic", "ml"}, default="mmse"
        Zero forcing, linear MMSE, ordered MMSE successive interference
        cancellation, or maximum likelihood by sphere decoding (exact; its
        cost grows with the noise and the number of users: fine up to about
        30 BPSK users at moderate SNR).
    channel : array-like of shape (n_rx, n_tx), optional
        A fixed channel.
    noise_var : float, optional
        Noise variance per receive antenna; measured on the training data by
        default.
    verbose : int, default=0
        1 shows a progress bar while ``"ml"`` decodes (its time grows fast
        with the users and the noise).

    Attributes
    ----------
    classes_ : ndarray of shape (n_points,)
    channel_ : ndarray of shape (n_rx, n_tx) or None
    noise_var_ : float

    Examples
    --------
    >>> from sklearn_mbdl import MIMODetector
    >>> from sklearn_mbdl.datasets import make_mimo
    >>> X, y, H = make_mimo(200, n_tx=4, n_rx=8, snr_db=12, random_state=0)
    >>> det = MIMODetector("ml").fit(X, y, channels=H)
    >>> det.score(X, y, channels=H) > 0.95
    True
    """

    def __init__(self, method="mmse", channel=None, *, noise_var=None, verbose=0):
        self.method = method
        self.channel = channel
        self.noise_var = noise_var
        self.verbose = verbose

    def fit(self, X, y, channels=None):
        """Learn the alphabet, the noise level and, if needed, the channel.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_rx)
        y : array-like of shape (n_samples,) or (n_samples, n_tx)
        channels : array-like of shape (n_samples, n_rx, n_tx), optional

        Returns
        -------
        self : MIMODetector
        """
        check_options(self.method, "method", {"zf", "mmse", "mmse_sic", "ml"})
        if self.noise_var is not None:
            check_number(self.noise_var, "noise_var", min_val=0)
        X = self._validate_X(X, reset=True)
        y = _check_y(y, X)
        codes = self._fit_labels(y)
        self.n_tx_ = codes.shape[1]
        self._fit_channel(X, self._values(codes), channels)
        if self.noise_var is not None:
            self.noise_var_ = float(self.noise_var)
        return self

    def predict(self, X, channels=None):
        """Detected symbols.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_rx)
        channels : array-like of shape (n_samples, n_rx, n_tx), optional

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_tx)
        """
        X = self._validate_X(X, reset=False)
        H = self._predict_channel(X, channels).astype(np.float64)
        X = X.astype(np.float64)
        points = torch.as_tensor(self.points_)
        if self.method == "ml":
            S = np.empty((len(X), self.n_tx_))
            # by chunks, for the progress bar (the decoder loops over rows)
            with progress(total=len(X), verbose=self.verbose, unit="transmission",
                          desc="MIMODetector('ml'): sphere decoding") as bar:
                for start in range(0, len(X), 64):
                    rows = slice(start, start + 64)
                    S[rows] = sphere_decoder(X[rows], H if H.ndim == 2 else H[rows],
                                             self.points_)
                    bar.update(len(S[rows]))
            return self._labels(np.abs(S[..., None] - self.points_).argmin(-1))
        Xt, Ht = torch.as_tensor(X), torch.as_tensor(H)
        noise_var = max(self.noise_var_, 1e-12)
        if self.method == "zf":
            # (with more users than antennas, the minimum-norm solution)
            s = zero_forcing(Xt, Ht) if H.shape[-2] >= H.shape[-1] else \
                mmse(Xt, Ht, 1e-9, points)
        elif self.method == "mmse":
            s = mmse(Xt, Ht, noise_var, points)
        else:
            s = mmse_sic(Xt, Ht, noise_var, points)
        return self._labels(nearest_point(s, points).numpy())
