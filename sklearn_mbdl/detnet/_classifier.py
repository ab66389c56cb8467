"""DetNetClassifier: the learned detector."""

import functools
import warnings

import numpy as np
import torch
from skorch.callbacks import EpochScoring

from .._base import (
    SimulatedRows,
    TorchEstimator,
    check_number,
    row_chunks,
    seeded,
    to_numpy,
    to_tensor,
)
from ..prox import nearest_point
from ._network import DetNet, FinalLayerMSE, _simulate_symbols, _symbol_accuracy
from ._problem import _check_y, _DetectorMixin, _statistics


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
        ``2 n_tx`` by default. 0 gives the seed slides' layer, which sees the
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
        self.max_epochs = max_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.augmentation = augmentation
        self.validation_fraction = validation_fraction
        self.list_users = list_users
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self):
        check_number(self.n_layers, "n_layers", min_val=1, integer=True)
        if self.hidden_size is not None:
            check_number(self.hidden_size, "hidden_size", min_val=1, integer=True)
        if self.latent_size is not None:
            check_number(self.latent_size, "latent_size", min_val=0, integer=True)
        check_number(self.residual, "residual", min_val=0, max_val=1,
                     include_min=False)
        check_number(self.max_epochs, "max_epochs", min_val=1, integer=True)
        check_number(self.lr, "lr", min_val=0, include_min=False)
        check_number(self.batch_size, "batch_size", min_val=1, integer=True)
        check_number(self.augmentation, "augmentation", min_val=0)
        check_number(self.validation_fraction, "validation_fraction",
                     min_val=0, max_val=0.5)
        self._check_list_users()

    def _check_list_users(self):
        check_number(self.list_users, "list_users", min_val=0, max_val=MAX_LIST_USERS,
                     integer=True)

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
        self._check_params()
        X = self._validate_X(X, reset=True)
        y = _check_y(y, X)
        self._setup_fit()
        codes = self._fit_labels(y)
        values = self._values(codes)
        H, noise_var = self._fit_channel(X, values, channels)
        K = self.n_tx_ = codes.shape[1]
        points = self._scaled_points().astype(np.float32)
        u = ((values - self.offset_) / self.scale_).astype(np.float32)
        Htx, HtH, c = _statistics(torch.as_tensor(X, dtype=torch.float64),
                                  torch.as_tensor(H, dtype=torch.float64),
                                  self.offset_, self.scale_)
        # the noise of H^T x in the normalised units, per transmission
        noise_std = (np.sqrt(noise_var / c.numpy()) / self.scale_).astype(np.float32)
        gram = HtH.numpy().astype(np.float32)
        fixed = HtH.ndim == 2
        # the annealed projected gradient DetNet starts from (see
        # solvers.projected_gradient): a long step, ramps from wide to
        # narrow; the step is set by the median ||H^T H|| of the channels
        step = 1.9 / float(np.median(np.linalg.eigvalsh(gram.reshape(-1, K, K))[:, -1]))
        rows = Htx.numpy().astype(np.float32)
        if not fixed:
            rows = np.concatenate([rows, gram.reshape(len(rows), -1)], axis=1)
        train, valid = self._holdout(X.shape[0], self.validation_fraction)
        n_train = train.size
        n_sim = int(round(self.augmentation * n_train))
        X_fit = np.empty((n_train + n_sim, rows.shape[1]), dtype=np.float32)
        y_fit = np.empty((n_train + n_sim, K), dtype=np.float32)
        X_fit[:n_train], y_fit[:n_train] = rows[train], u[train]
        # the law of H^T w is N(0, noise_std^2 H^T H): its Cholesky factor
        train_gram = gram if fixed else gram[train]
        chol = np.linalg.cholesky(train_gram + 1e-6 * np.eye(K, dtype=np.float32))
        simulate = functools.partial(
            _simulate_symbols, gram=train_gram, chol=chol,
            noise_std=noise_std[train],
            points=points)
        callbacks = [("simulate", SimulatedRows(simulate, X_fit, y_fit, n_train,
                                                self._seed))] if n_sim else []
        if valid.size:
            callbacks.append(("valid_acc", EpochScoring(
                _symbol_accuracy, lower_is_better=False, name="valid_symbol_acc")))
        module_args = dict(n_tx=K, points=points, n_layers=self.n_layers,
                           hidden_size=max(self.hidden_size or 8 * K, 2 * K),
                           residual=self.residual, step=step,
                           latent_size=(2 * K if self.latent_size is None
                                        else self.latent_size),
                           gram=gram if fixed else None)
        with seeded(self._seed, self.device_):
            self.net_ = self._make_net(
                DetNet, criterion=FinalLayerMSE,
                # the per-layer scalars (steps, ramp widths) are of order one
                # and few: they move faster than the weight matrices
                optimizer__param_groups=[
                    ("step_*", {"lr": 30 * self.lr}),
                    ("log_softness", {"lr": 30 * self.lr})],
                valid=(rows[valid], u[valid]),
                callbacks=callbacks,
                **{f"module__{k}": v for k, v in module_args.items()})
            self._train(self.net_, X_fit, y_fit)
        check_rows = valid if valid.size else np.arange(X.shape[0])
        self._keep_if_better(module_args, rows[check_rows], codes[check_rows])
        self._calibrate(rows[check_rows], u[check_rows])
        return self

    def _keep_if_better(self, module_args, rows, codes):
        """Fall back to the untrained network (annealed projected gradient)
        if training made held-out symbol errors worse."""
        with seeded(self._seed):
            start = DetNet(**module_args).to(self._inference_device()).state_dict()
        kept, trained_errors, start_errors = self._keep_better_of(
            start, lambda: int(np.sum(self._decide(rows) != codes)))
        if not kept:
            warnings.warn(
                f"DetNetClassifier: training did not improve on the untrained "
                f"network (projected gradient): {trained_errors} held-out symbol "
                f"errors against {start_errors}; keeping the initialisation. "
                "Try more data, more epochs or a smaller lr.", UserWarning)

    def _run(self, rows):
        """Last layer's soft estimates of validated statistic rows."""
        dtype = torch.float64 if rows.dtype == np.float64 else torch.float32
        state = self._module_state(dtype)
        device = self._inference_device()
        out = np.empty((rows.shape[0], self.n_tx_), dtype=rows.dtype)
        with torch.no_grad():
            for chunk in row_chunks(rows.shape[0], device):
                r = to_tensor(rows[chunk], device, dtype=dtype)
                s = torch.func.functional_call(self.net_.module_, state, (r,))
                out[chunk] = to_numpy(s[:, -1], rows.dtype)
        return out

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
        logp = -0.5 * ((s[..., None] - self._scaled_points()) / width) ** 2
        logp -= logp.max(-1, keepdims=True)
        return logp - np.log(np.exp(logp).sum(-1, keepdims=True))

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
        dtype = torch.float64 if X.dtype == np.float64 else torch.float32
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
        channels : array-like of shape (n_samples, n_rx, n_tx), optional

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_tx)
        """
        u = self._network_output(X, channels)
        s = (self.offset_ + self.scale_ * u).astype(u.dtype)
        return s[:, 0] if self._single_output else s

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
        self._check_list_users()  # set_params may have changed it after fit
        X, H = self._inputs(X, channels)
        rows = self._statistic_rows(X, H)
        if not self.list_users:
            return self._labels(self._decide(rows))
        return self._labels(self._list_decide(self._run(rows), X, H))

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

    def predict_proba(self, X, channels=None):
        """Per-symbol probabilities (soft output).

        A Gaussian of width ``temperature_`` around DetNet's soft estimate,
        normalised over the alphabet; the width is fitted on held-out
        transmissions, so the probabilities are calibrated there.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_rx)
        channels : array-like of shape (n_samples, n_rx, n_tx), optional

        Returns
        -------
        ndarray of shape (n_samples, n_classes), or list of n_tx such arrays
            As scikit-learn's multi-output classifiers.
        """
        s = self._network_output(X, channels).astype(np.float64)
        p = np.exp(self._log_proba(s, self.temperature_))
        return p[:, 0] if self._single_output else [p[:, k] for k in range(p.shape[1])]
