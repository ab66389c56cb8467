"""MIMODetector: the model-based detectors as an estimator."""

from numbers import Real

import numpy as np
import torch

from .._base import Interval, StrOptions, TorchEstimator, progress
from ..prox import nearest_point
from ..solvers import matched_filter, mmse, mmse_sic, sphere_decoder, zero_forcing
from ..solvers._detection import _prior
from ._problem import _DetectorMixin, _gaussian_log_proba


class MIMODetector(_DetectorMixin, TorchEstimator):
    """Model-based MIMO detectors: ZF, MMSE, ordered MMSE-SIC and exact ML.

    Nothing is learned but what the model needs: the alphabet from the
    labels, the noise variance (for MMSE) from the training residuals and,
    without ``channel`` or per-sample ``channels``, a fixed channel by least
    squares.

    ``predict_proba`` gives each method's soft output, normalised over the
    alphabet (its most probable symbol is ``predict``'s decision):

    - ``"zf"`` and ``"mmse"``: a Gaussian around the linear estimate
      ``s_hat`` whose variance is the estimate's post-equalisation error,
      ``noise_var_`` times the diagonal of ``(H^T H + r I)^{-1}`` (``r = 0``
      for ZF, ``noise_var_ / E`` for MMSE, ``E`` the symbols' variance);
      with two symbols per user this is the log-likelihood ratio of the
      unbiased MMSE estimate;
    - ``"mmse_sic"``: the same, from the MMSE estimate of each user at the
      stage it is detected (earlier users cancelled with their decisions);
    - ``"ml"``: the likelihood ``exp(-||x - H s||^2 / (2 noise_var_))`` of
      the ML decision with one user's symbol changed, the other users kept
      at their ML symbols (the max-log approximation restricted to
      one-user changes: ``n_tx x n_points`` distances per transmission).

    Parameters
    ----------
    method : {"zf", "mmse", "mmse_sic", "ml"}, default="mmse"
        Zero forcing, linear MMSE, ordered MMSE successive interference
        cancellation, or maximum likelihood by sphere decoding (exact; its
        cost grows with the noise and the number of users: fine up to about
        30 BPSK users at moderate SNR). Read by ``predict``: it may be
        changed after ``fit``.
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

    See Also
    --------
    DetNetClassifier : the learned detector.

    Examples
    --------
    >>> from sklearn_mbdl import MIMODetector
    >>> from sklearn_mbdl.datasets import make_mimo
    >>> X, y, H = make_mimo(200, n_tx=4, n_rx=8, snr_db=12, random_state=0)
    >>> det = MIMODetector("ml").fit(X, y, channels=H)
    >>> det.score(X, y, channels=H) > 0.95
    True
    >>> proba = det.predict_proba(X, channels=H)  # one array per user
    >>> len(proba), proba[0].shape
    (4, (200, 2))
    """

    def __init__(self, method="mmse", channel=None, *, noise_var=None, verbose=0):
        self.method = method
        self.channel = channel
        self.noise_var = noise_var
        super().__init__(verbose=verbose)

    _parameter_constraints = {
        "method": [StrOptions({"zf", "mmse", "mmse_sic", "ml"})],
        "channel": ["array-like", None],
        "noise_var": [Interval(Real, 0, None, closed="left"), None],
        "verbose": ["verbose"],
    }

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
        self._fit_problem(X, y, channels)
        if self.noise_var is not None:
            self.noise_var_ = float(self.noise_var)
        return self

    def _symbol_indices(self, X, channels):
        return self._detect(X, channels, soft=False)[0]

    def _symbol_log_proba(self, X, channels):
        return self._detect(X, channels, soft=True)[1]

    def _detect(self, X, channels, soft):
        """Symbol indices and, with ``soft``, log-probabilities of shape
        ``(n_samples, n_tx, n_points)``."""
        X = self._validate_X(X, reset=False)
        self._check_params()  # method is read here: set_params may change it
        H = self._predict_channel(X, channels).astype(np.float64)
        X = X.astype(np.float64)
        noise_var = max(self.noise_var_, 1e-12)
        if len(self.points_) == 1:  # one symbol: nothing to detect
            index = np.zeros((len(X), self.n_tx_), dtype=np.int64)
            return index, np.zeros((len(X), self.n_tx_, 1))
        if self.method == "ml":
            S = self._sphere_decode(X, H)
            index = np.abs(S[..., None] - self.points_).argmin(-1)
            return index, (_one_change_log_likelihood(X, H, S, noise_var, self.points_)
                           if soft else None)
        Xt, Ht = torch.as_tensor(X), torch.as_tensor(H)
        points = torch.as_tensor(self.points_)
        if self.method == "mmse_sic":
            decided, s, variance = mmse_sic(Xt, Ht, noise_var, points, return_soft=True)
            index = nearest_point(decided, points).numpy()
        else:
            s, variance = self._linear(Xt, Ht, noise_var, points)
            index = nearest_point(s, points).numpy()
        if not soft:
            return index, None
        return index, _gaussian_log_proba(s.numpy(), np.sqrt(variance.numpy()),
                                          self.points_)

    def _linear(self, X, H, noise_var, points):
        """ZF or MMSE estimates and their error variances."""
        K = H.shape[-1]
        if self.method == "zf" and H.shape[-2] >= K:
            s, ridge = zero_forcing(X, H), 0.0
        else:
            # (ZF with more users than antennas: the minimum-norm solution)
            power = float(_prior(points)[1])
            level = noise_var if self.method == "mmse" else 1e-9
            s, ridge = mmse(X, H, level, points), level / power
        _, HtH = matched_filter(X, H)
        inverse = torch.linalg.inv(HtH + ridge * torch.eye(K, dtype=HtH.dtype))
        variance = noise_var * torch.diagonal(inverse, dim1=-2, dim2=-1)
        return s, variance.expand_as(s)

    def _sphere_decode(self, X, H):
        S = np.empty((len(X), self.n_tx_))
        # by chunks, for the progress bar (the decoder loops over rows)
        with progress(total=len(X), verbose=self.verbose, unit="transmission",
                      desc="MIMODetector('ml'): sphere decoding") as bar:
            for start in range(0, len(X), 64):
                rows = slice(start, start + 64)
                S[rows] = sphere_decoder(X[rows], H if H.ndim == 2 else H[rows],
                                         self.points_)
                bar.update(len(S[rows]))
        return S


def _one_change_log_likelihood(X, H, S, noise_var, points):
    """``-||x - H s||^2 / (2 noise_var)`` for ``s`` the decision ``S`` with
    user ``k``'s symbol replaced by each point, shape (n, n_tx, n_points)."""
    residual = X - (S @ H.T if H.ndim == 2 else np.einsum("nrk,nk->nr", H, S))
    # ||r - h_k d||^2 = ||r||^2 - 2 d h_k^T r + d^2 ||h_k||^2, d = a - s_k
    if H.ndim == 2:
        correlation, energy = residual @ H, (H ** 2).sum(0)
    else:
        correlation = np.einsum("nr,nrk->nk", residual, H)
        energy = (H ** 2).sum(1)
    change = points - S[..., None]
    distance = ((residual ** 2).sum(1)[:, None, None]
                - 2 * change * correlation[..., None] + change ** 2 * energy[..., None])
    return -distance / (2 * noise_var)
