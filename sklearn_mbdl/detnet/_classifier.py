"""DetNetClassifier: the learned detector."""

import functools
from numbers import Integral, Real

import numpy as np
import torch
from skorch.callbacks import EpochScoring

from .._base import (
    Interval,
    TorchEstimator,
    TrainingProblem,
    torch_dtype,
)
from ..prox import nearest_point
from ._network import DetNet, FinalLayerMSE, _simulate_symbols, _symbol_accuracy
from ._problem import _DetectorMixin, _gaussian_log_proba, _statistics


# a cap on the list stage's time and memory: 2 ** 16 candidates per
# transmission
MAX_LIST_USERS = 16


class DetNetClassifier(_DetectorMixin, TorchEstimator):
    """DetNet: a learned MIMO detector built by unrolling projected gradient.

    Detects the symbols ``s`` sent by ``n_tx`` users from ``x = H s + w``
    received on ``n_rx`` antennas, with a known channel ``H``. Each of the
    ``n_layers`` layers takes a gradient step on ``||x - H s||^2`` (the step
    of :func:`~sklearn_mbdl.solvers.projected_gradient`) and replaces the
    projection onto the alphabet by a small learned network ending in a soft
    projection (see :class:`DetNet`). The untrained network is the annealed
    projected gradient of the model-based solver; training minimises the
    mean squared error of the last layer's estimate (see
    :class:`FinalLayerMSE`), and a network that ends worse than its
    initialisation on held-out transmissions is not kept.

    ``fit`` learns from the labelled transmissions given, and the known
    model simulates more: at every epoch, ``augmentation`` times as many
    transmissions with fresh symbols and noise on the training channels, at
    the noise level measured on each training sample.

    ``predict_proba`` gives a Gaussian of width ``temperature_`` around
    DetNet's soft estimate, normalised over the alphabet; the width is
    fitted on held-out transmissions, so the probabilities are calibrated
    there.

    Parameters
    ----------
    channel : array-like of shape (n_rx, n_tx), optional
        A fixed channel. Without it, give per-sample channels to ``fit`` and
        ``predict`` (``channels=``), or let ``fit`` estimate a fixed channel
        from the training pairs by least squares.
    n_layers : int, default=30
        Number of unrolled layers.
    hidden_size : int, optional
        Width of each layer's hidden vector; ``8 n_tx`` by default (the
        paper's choice).
    latent_size : int, optional
        Size of the latent state ``v`` each layer passes to the next, with the
        current estimate, beside the gradient step (the paper's full layer);
        ``2 n_tx`` by default. 0 gives the simpler layer, which sees the
        gradient step alone.
    residual : float, default=0.9
        Each layer returns ``residual * new + (1 - residual) * previous``.
    max_epochs : int, default=20
        Training epochs (early stopping on held-out transmissions may stop
        sooner). Each epoch sees the training transmissions and
        ``augmentation`` times as many fresh simulated ones.
    lr : float, default=3e-4
        Adam learning rate of the weight matrices (cosine schedule to 0);
        the per-layer steps and ramp widths use 30 times it.
    batch_size : int, default=512
        Transmissions per gradient step.
    augmentation : float, default=4.0
        Simulated transmissions per training transmission, drawn afresh
        every epoch; 0 trains on the given data alone.
    validation_fraction : float, default=0.1
        Share of the training transmissions held out for early stopping and
        for calibrating ``predict_proba``.
    list_users : int, default=0
        A list stage after the network, at ``predict`` (Chase decoding with
        the known likelihood): the ``list_users`` users whose soft estimates
        lie closest to the midpoint between their two nearest symbols are
        given both of these symbols, every one of the ``2 ** list_users``
        combinations (the other users keep DetNet's decision) is scored by
        ``||x - H s||^2``, and the best is returned. Its cost is fixed, like
        the network's: about ``2 ** list_users * list_users ** 2``
        operations per transmission, whatever the noise. 0 returns DetNet's decisions; with BPSK and
        ``list_users = n_tx`` it is exact maximum likelihood by brute force.
        ``predict_proba`` and ``predict_soft`` stay the network's output.
    device : {"cpu", "cuda", "auto", "accelerate"}, default="cpu"
        ``"accelerate"`` trains through HF accelerate (data-parallel
        under ``accelerate launch``, see :ref:`scaling`).
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
        1 prints skorch's epoch table (with the validation symbol accuracy).

    Attributes
    ----------
    classes_ : ndarray of shape (n_points,)
        The alphabet (shared by all users).
    points_ : ndarray of shape (n_points,)
        The symbols' values (``classes_`` for numeric labels).
    channel_ : ndarray of shape (n_rx, n_tx) or None
        The fixed channel (given or estimated); None with per-sample channels.
    noise_var_ : float
        Mean noise variance measured on the training data.
    temperature_ : float
        Width of the Gaussian soft output of ``predict_proba``, fitted on
        held-out transmissions.
    net_ : skorch.NeuralNetRegressor
        The trained net; ``net_.module_`` is the :class:`DetNet`.
    kept_start_ : bool
        True when the untrained network (the annealed projected gradient)
        beat the trained one on held-out transmissions and was kept.
    trained_error_, start_error_ : float
        Their symbol errors on those transmissions.

    See Also
    --------
    MIMODetector : the model-based detectors (ZF, MMSE, MMSE-SIC, ML).
    sklearn_mbdl.solvers.projected_gradient : the algorithm DetNet unrolls.

    Examples
    --------
    >>> from sklearn_mbdl import DetNetClassifier
    >>> from sklearn_mbdl.datasets import make_mimo
    >>> X, y, H = make_mimo(2000, n_tx=4, n_rx=8, snr_db=(8, 12), random_state=0)
    >>> det = DetNetClassifier(n_layers=5, max_epochs=5, random_state=0)
    >>> det = det.fit(X, y, channels=H)
    >>> X_test, y_test, H_test = make_mimo(500, n_tx=4, n_rx=8, random_state=1)
    >>> det.score(X_test, y_test, channels=H_test) > 0.9
    True
    """

    def __init__(self, channel=None, *, n_layers=30, hidden_size=None,
                 latent_size=None, residual=0.9, max_epochs=20, lr=3e-4,
                 batch_size=512, augmentation=4.0,
                 validation_fraction=0.1, list_users=0, device="cpu",
                 random_state=None, verbose=0):
        self.channel = channel
        self.n_layers = n_layers
        self.hidden_size = hidden_size
        self.latent_size = latent_size
        self.residual = residual
        self.list_users = list_users
        super().__init__(max_epochs=max_epochs, lr=lr, batch_size=batch_size,
                         augmentation=augmentation, validation_fraction=validation_fraction,
                         device=device, random_state=random_state, verbose=verbose)

    _parameter_constraints = {
        "channel": ["array-like", None],
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "hidden_size": [Interval(Integral, 1, None, closed="left"), None],
        "latent_size": [Interval(Integral, 0, None, closed="left"), None],
        "residual": [Interval(Real, 0, 1, closed="right")],
        "list_users": [Interval(Integral, 0, MAX_LIST_USERS, closed="both")],
    }

    def fit(self, X, y, channels=None):
        """Train DetNet on labelled transmissions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_rx)
            Received signals.
        y : array-like of shape (n_samples,) or (n_samples, n_tx)
            Transmitted symbols (labels from a finite alphabet).
        channels : array-like of shape (n_samples, n_rx, n_tx), optional
            The channel of each transmission (routable metadata).

        Returns
        -------
        self : DetNetClassifier
        """
        X, values, H, noise_var = self._fit_problem(X, y, channels)
        self._setup_fit()
        # the network reads the normalised sufficient statistics (H^T x, and
        # H^T H unless the channel is fixed) and predicts scaled symbols
        rows, gram, noise_std = self._training_statistics(X, H, noise_var)
        u = ((values - self.offset_) / self.scale_).astype(np.float32)
        train, valid = self._holdout(X.shape[0], self.validation_fraction)
        scoring = EpochScoring(_symbol_accuracy, lower_is_better=False,
                               name="valid_symbol_acc")
        self._fit_network(TrainingProblem(
            DetNet, self._module_args(gram),
            X=rows[train], y=u[train], valid=(rows[valid], u[valid]),
            # fresh symbols and noise on the training channels, every epoch
            simulate=_symbol_simulator(gram if gram.ndim == 2 else gram[train],
                                       noise_std[train], self._scaled_points()),
            n_simulated=round(self.augmentation * train.size),
            criterion=FinalLayerMSE, error=self._symbol_errors,
            start_name="the annealed projected gradient",
            net_kwargs=dict(
                callbacks=[("valid_acc", scoring)] if valid.size else [],
                # the per-layer scalars (steps, ramp widths) are of order one
                # and few: they move faster than the weight matrices
                optimizer__param_groups=[("step_*", {"lr": 30 * self.lr}),
                                         ("log_softness", {"lr": 30 * self.lr})]),
        ))
        checked = valid if valid.size else train
        self._calibrate(rows[checked], u[checked])
        return self

    def _training_statistics(self, X, H, noise_var):
        """The network's input rows for the training pairs (float32), the
        normalised Gram matrix (one, or one per row) and the noise standard
        deviation of ``H^T x`` per row, in the network's units."""
        Htx, HtH, c = _statistics(torch.as_tensor(X, dtype=torch.float64),
                                  torch.as_tensor(H, dtype=torch.float64),
                                  self.offset_, self.scale_)
        noise_std = (np.sqrt(noise_var / c.numpy()) / self.scale_).astype(np.float32)
        gram = HtH.numpy().astype(np.float32)
        rows = Htx.numpy().astype(np.float32)
        if gram.ndim == 3:
            rows = np.concatenate([rows, gram.reshape(len(rows), -1)], axis=1)
        return rows, gram, noise_std

    def _module_args(self, gram):
        """The :class:`DetNet` arguments: its start is the annealed projected
        gradient of :func:`~sklearn_mbdl.solvers.projected_gradient` (a long
        step, ramps from wide to narrow), the step set by the median
        ``||H^T H||`` of the training channels."""
        K = self.n_tx_
        step = 1.9 / float(np.median(np.linalg.eigvalsh(gram.reshape(-1, K, K))[:, -1]))
        return dict(n_tx=K, points=self._scaled_points().astype(np.float32),
                    n_layers=self.n_layers,
                    hidden_size=max(self.hidden_size or 8 * K, 2 * K),
                    residual=self.residual, step=step,
                    latent_size=2 * K if self.latent_size is None else self.latent_size,
                    gram=gram if gram.ndim == 2 else None)

    def _symbol_errors(self, rows, u):
        """Symbol errors of the current network on statistic rows whose
        true scaled symbols are ``u``: what decides keep-better."""
        points = torch.as_tensor(self._scaled_points())
        truth = nearest_point(torch.as_tensor(u, dtype=torch.float64), points).numpy()
        return float(np.sum(self._decide(rows) != truth))

    def _run(self, rows):
        """Last layer's soft estimates of validated statistic rows."""
        return self._run_network(rows, _last_layer)

    def _decide(self, rows):
        return nearest_point(torch.as_tensor(self._run(rows)),
                             torch.as_tensor(self._scaled_points())).numpy()

    def _calibrate(self, rows, u):
        """Fit the soft-output width by maximum likelihood on held-out rows."""
        s = self._run(rows).astype(np.float64)
        truth = np.abs(u[..., None] - self._scaled_points()).argmin(-1)[..., None]
        widths = np.geomspace(1e-3, 2.0, 60)
        nll = [-np.take_along_axis(self._log_proba(s, t), truth, -1).mean()
               for t in widths]
        self.temperature_ = float(widths[int(np.argmin(nll))])

    def _scaled_points(self):
        return (self.points_ - self.offset_) / self.scale_

    def _log_proba(self, s, width):
        """Log-probabilities of the symbols: a Gaussian of ``width`` around
        the soft estimates ``s`` (scaled units), normalised over the alphabet."""
        return _gaussian_log_proba(s, width, self._scaled_points())

    def _inputs(self, X, channels):
        """The validated ``X`` and the channel of each of its rows."""
        X = self._validate_X(X, reset=False)
        if channels is not None and self.channel_ is not None:
            raise ValueError(
                "this DetNetClassifier was trained for one fixed channel; "
                "per-sample channels need a model fitted with channels=.")
        return X, self._predict_channel(X, channels)

    def _statistic_rows(self, X, H):
        """Rows of normalised sufficient statistics the network reads, for
        validated ``X`` and its channel ``H`` (:meth:`_inputs`)."""
        dtype = torch_dtype(X)
        Htx, HtH, _ = _statistics(torch.as_tensor(X, dtype=dtype),
                                  torch.as_tensor(H, dtype=dtype),
                                  self.offset_, self.scale_)
        if HtH.ndim == 2:  # the fixed Gram matrix lives in the module
            return Htx.numpy()
        return torch.cat([Htx, HtH.reshape(len(X), -1)], dim=1).numpy()

    def _network_output(self, X, channels):
        """DetNet's last layer on ``X`` (scaled units)."""
        return self._run(self._statistic_rows(*self._inputs(X, channels)))

    def predict_soft(self, X, channels=None):
        """Soft symbol estimates (DetNet's last layer), in symbol units.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_rx)
            Received signals, as in :meth:`predict`.
        channels : array-like of shape (n_samples, n_rx, n_tx), optional
            As in :meth:`predict`.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_tx)
            Each user's estimate on the scale of the symbols' values
            (``points_``), before the decision: :meth:`predict` takes the
            nearest symbol (revised by the list stage when ``list_users``
            is set). 1-D when ``y`` was 1-D (one user).

        Examples
        --------
        BPSK (symbols -1 and 1): the soft estimates lie around the symbols,
        and the decision is their sign.

        >>> import numpy as np
        >>> from sklearn_mbdl import DetNetClassifier
        >>> from sklearn_mbdl.datasets import make_mimo
        >>> X, y, H = make_mimo(500, n_tx=4, n_rx=8, snr_db=10, random_state=0)
        >>> det = DetNetClassifier(n_layers=3, max_epochs=2, random_state=0)
        >>> soft = det.fit(X, y, channels=H).predict_soft(X, channels=H)
        >>> soft.shape
        (500, 4)
        >>> bool((np.sign(soft) == det.predict(X, channels=H)).all())
        True
        """
        u = self._network_output(X, channels)
        s = (self.offset_ + self.scale_ * u).astype(u.dtype)
        return s[:, 0] if self._single_output else s

    def _symbol_indices(self, X, channels):
        """``predict``'s decisions: DetNet's, revised by the list stage."""
        X, H = self._inputs(X, channels)
        self._check_params()  # list_users is read here: set_params may change it
        rows = self._statistic_rows(X, H)
        if not self.list_users:
            return self._decide(rows)
        return self._list_decide(self._run(rows), X, H)

    def _list_decide(self, u, X, H):
        """Chase decoding around the soft estimates ``u`` (scaled units):
        the ``list_users`` least reliable users take either of their two
        nearest symbols, and the combination nearest ``x`` through ``H``
        (the likelihood) wins. Returns the symbols' indices."""
        K = u.shape[1]
        L = int(self.list_users)
        if L > K:
            raise ValueError(
                f"list_users={L} exceeds the {K} users of this problem: it counts "
                f"the users whose decision the list stage revisits (at most {K}).")
        points = self._scaled_points()
        if len(points) == 1:
            return np.zeros(u.shape, dtype=np.int64)
        dist = torch.as_tensor(np.abs(u.astype(np.float64)[..., None] - points))
        d, nearest = dist.topk(2, dim=-1, largest=False, sorted=True)
        users = (d[..., 1] - d[..., 0]).argsort(dim=1, stable=True)[:, :L]
        first = nearest[..., 0].gather(1, users)
        second = nearest[..., 1].gather(1, users)
        values = torch.as_tensor(self.points_, dtype=torch.float64)
        X = torch.as_tensor(X, dtype=torch.float64)
        H = torch.as_tensor(H, dtype=torch.float64)
        s = values[nearest[..., 0]]                          # DetNet's decision
        if H.ndim == 2:
            residual = X - s @ H.T
            columns = H.T[users]                             # (n, L, n_rx)
        else:
            residual = X - torch.einsum("nrk,nk->nr", H, s)
            columns = torch.take_along_dim(H.mT, users[..., None], 1)
        moves = columns * (values[second] - values[first])[..., None]
        # ||r - P m||^2 - ||r||^2 = -2 P (m r) + diag(P (m m^T) P^T) for the
        # residual r of DetNet's decision and the moves m of the L users:
        # 2^L L^2 operations per transmission, not 2^L L n_rx
        gain = (moves @ residual[..., None])[..., 0]                 # (n, L)
        gram = moves @ moves.mT                                      # (n, L, L)
        patterns = torch.as_tensor(
            (np.arange(2 ** L)[:, None] >> np.arange(L)) & 1, dtype=torch.float64)
        choice = torch.empty(len(u), dtype=torch.long)
        size = max(1, (1 << 21) // (2 ** L * L))   # candidates of about 16 MB
        for start in range(0, len(u), size):
            c = slice(start, start + size)
            cost = ((patterns @ gram[c]) * patterns).sum(-1) - 2 * gain[c] @ patterns.T
            choice[c] = cost.argmin(1)
        flip = patterns[choice].bool()                                 # (n, L)
        decision = nearest[..., 0].clone()
        decision.scatter_(1, users, torch.where(flip, second, first))
        return decision.numpy()

    def _symbol_log_proba(self, X, channels):
        """``predict_proba``'s log-probabilities: a Gaussian of width
        ``temperature_`` around the network's soft estimates."""
        s = self._network_output(X, channels).astype(np.float64)
        return self._log_proba(s, self.temperature_)


def _last_layer(module, state, rows):
    """The last layer's estimate (the inference of :class:`DetNet`)."""
    return torch.func.functional_call(module, state, (rows,))[:, -1]


def _symbol_simulator(gram, noise_std, points):
    """``simulate(rng, n)`` of the training problem: fresh symbols and noise
    on the training channels (:func:`_simulate_symbols`), with the Cholesky
    factor of each Gram matrix (the law of ``H^T w`` is
    ``N(0, noise_std^2 H^T H)``)."""
    K = gram.shape[-1]
    chol = np.linalg.cholesky(gram + 1e-6 * np.eye(K, dtype=np.float32))
    return functools.partial(_simulate_symbols, gram=gram, chol=chol,
                             noise_std=noise_std, points=points.astype(np.float32))
