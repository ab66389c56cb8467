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
"""

import functools
import warnings

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import type_of_target
from skorch.callbacks import EpochScoring
from torch import nn

from ._base import (
    SimulatedRows,
    TorchEstimator,
    check_number,
    check_options,
    row_chunks,
    seeded,
    to_numpy,
    to_tensor,
)
from .prox import nearest_point, soft_constellation
from .solvers import (
    detection_step,
    softness_schedule,
    matched_filter,
    mmse,
    mmse_sic,
    sphere_decoder,
    zero_forcing,
)

__all__ = ["DetNet", "DetNetClassifier", "MIMODetector"]


# ----- the problem: alphabet, channel, sufficient statistics -------------------
class _DetectorMixin(ClassifierMixin):
    """Labels, channel and noise handling shared by the detectors.

    The alphabet is ``classes_`` (all users share it). Numeric labels are
    the symbols' values; other labels (strings) are mapped in sorted order
    to the equally spaced points ``-(M-1), ..., M-1``. Internally symbols
    are centred and scaled to ``[-1, 1]`` (``u = (s - offset_) / scale_``).
    """

    def _fit_labels(self, y):
        y = np.asarray(y)
        if y.ndim not in (1, 2) or y.size == 0:
            raise ValueError(
                f"y must have shape (n_samples,) or (n_samples, n_tx), got {y.shape}."
            )
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
        clean = (y_values @ H.T if H.ndim == 2
                 else np.einsum("nrk,nk->nr", H, y_values))
        residual = np.sum((X - clean) ** 2, axis=1) / X.shape[1]
        if channels is None:
            # one noise level: the pooled residual (degrees of freedom
            # corrected when the channel was estimated)
            dof = X.size - (H.size if self.channel is None else 0)
            pooled = np.sum((X - clean) ** 2) / max(dof, 1)
            residual = np.full(X.shape[0], pooled)
        self.noise_var_ = float(np.mean(residual))
        return H, residual

    def _predict_channel(self, X, channels):
        n_tx = self.n_tx_
        if channels is not None:
            return self._check_channel(channels, X, n_tx, per_sample=True)
        if self.channel_ is None:
            raise ValueError(
                f"{type(self).__name__} was fitted with per-sample channels: pass "
                "them to this method as channels=, shape (n_samples, n_rx, n_tx)."
            )
        return self.channel_.astype(X.dtype)

    def _labels(self, index):
        labels = self.classes_[index]
        return labels[:, 0] if self._single_output else labels

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
        from .metrics import symbol_error_rate

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


def _statistics(X, H, offset, scale):
    """Normalised sufficient statistics of the centred, scaled problem.

    With ``s = offset + scale * u``: ``H^T x = H^T H (offset + scale u) +
    H^T w``. Returns ``(H^T x - offset H^T H 1) / (scale c)`` and
    ``H^T H / c`` with ``c = trace(H^T H) / n_tx`` per sample, so that the
    network sees unit-scale inputs whatever the channel gain.
    """
    Htx, HtH = matched_filter(X, H)
    Htx = (Htx - offset * HtH.sum(-1)) / scale
    c = torch.diagonal(HtH, dim1=-2, dim2=-1).mean(-1).clamp_min(1e-30)
    if HtH.ndim == 2:
        return Htx / c, HtH / c
    return Htx / c[:, None], HtH / c[:, None, None]


# ----- the network ------------------------------------------------------------
class DetNet(nn.Module):
    """Projected gradient descent unrolled to ``n_layers`` learned layers.

    Layer ``q`` computes (the DetNet layer of the seed slides)::

        r = (I + d2_q H^T H) s - d1_q H^T x        # gradient step
        z = relu(W1_q r + b1_q)
        s_new = soft_constellation(W2_q z + b2_q, points, t_q)
        s <- residual * s_new + (1 - residual) * s

    where the gradient step is :func:`~sklearn_mbdl.solvers.detection_step`
    with ``(a, b) = (-d2_q, -d1_q)``, the soft projection is
    :func:`~sklearn_mbdl.prox.soft_constellation` with a learned ramp width
    ``t_q`` (DetNet's piecewise-linear soft sign for BPSK), and every layer's
    estimate is returned so the loss can weight them all. With a latent
    state (``latent_size > 0``, the paper's full layer) ``z`` also sees the
    current estimate ``s`` and the state ``v``, and ``v <- W3_q z + b3_q``.

    At initialisation the first ``2 n_tx`` hidden units pass ``r`` through
    (``W2 relu(W1 r) = r``, the other units enter ``W2`` with zero weight),
    ``d1 = d2 = -step`` and the ramp widths ``t_q`` decrease geometrically
    along ``softness``: the untrained network *is* the annealed projected
    gradient of :func:`~sklearn_mbdl.solvers.projected_gradient`, and
    training starts from the model-based algorithm.

    Inputs are rows of normalised sufficient statistics: ``H^T x`` (``n_tx``
    values) followed, when no fixed ``gram`` is given, by the flattened
    per-sample ``H^T H``.

    Parameters
    ----------
    n_tx : int
        Number of (real) users.
    points : array-like of shape (n_points,)
        Sorted alphabet, scaled to ``[-1, 1]``.
    n_layers : int
    hidden_size : int
        Width of ``z`` (at least ``2 n_tx``).
    residual : float
        Weight of the new estimate in each layer's update.
    step : float
        Initial gradient step (``1 / ||H^T H||`` of typical channels).
    latent_size : int, default=0
        Size of the latent state passed between layers (0: none).
    softness : (float, float), default=(2.0, 0.3)
        Initial ramp widths of the first and last layers.
    gram : array-like of shape (n_tx, n_tx), optional
        A fixed normalised ``H^T H``.
    """

    def __init__(self, n_tx, points, n_layers, hidden_size, residual, step,
                 latent_size=0, softness=(2.0, 0.3), gram=None):
        super().__init__()
        self.n_tx, self.n_layers, self.residual = n_tx, n_layers, residual
        self.latent_size = latent_size
        self.register_buffer("points", torch.as_tensor(points, dtype=torch.float32))
        self.register_buffer("gram", None if gram is None
                             else torch.as_tensor(gram, dtype=torch.float32))
        K, h, m = n_tx, hidden_size, latent_size
        n_in = K + (K + m if m else 0)  # r, then (s, v) with a latent state
        W1 = torch.randn(n_layers, h, n_in) / np.sqrt(n_in)
        W2 = torch.zeros(n_layers, K, h)
        eye = torch.eye(K)
        W1[:, :2 * K, :K] = torch.cat([eye, -eye])
        W1[:, :2 * K, K:] = 0.0
        W2[:, :, :K], W2[:, :, K:2 * K] = eye, -eye
        self.W1, self.W2 = nn.Parameter(W1), nn.Parameter(W2)
        self.b1 = nn.Parameter(torch.zeros(n_layers, h))
        self.b1.data[:, 2 * K:] = 0.1
        self.b2 = nn.Parameter(torch.zeros(n_layers, K))
        if m:
            self.W3 = nn.Parameter(torch.randn(n_layers, m, h) / np.sqrt(h))
            self.b3 = nn.Parameter(torch.zeros(n_layers, m))
        # steps in units of the initial step, ramp widths as logs: every
        # parameter is of order one for the optimiser
        self.step_unit = float(step)
        self.step_gram = nn.Parameter(torch.ones(n_layers))
        self.step_corr = nn.Parameter(torch.ones(n_layers))
        self.log_softness = nn.Parameter(torch.as_tensor(
            np.log(softness_schedule(softness, n_layers)), dtype=torch.float32))

    def forward(self, rows):
        """Every layer's estimate.

        Parameters
        ----------
        rows : torch.Tensor of shape (n_samples, n_tx) or (n_samples, n_tx + n_tx**2)
            Normalised ``H^T x``, followed by the flattened ``H^T H`` of each
            sample unless the module holds a fixed ``gram``.

        Returns
        -------
        torch.Tensor of shape (n_samples, n_layers, n_tx)
        """
        K = self.n_tx
        Htx = rows[:, :K]
        HtH = self.gram if self.gram is not None else rows[:, K:].reshape(-1, K, K)
        s = torch.zeros_like(Htx)
        v = Htx.new_zeros(Htx.shape[0], self.latent_size)
        estimates = []
        for q in range(self.n_layers):
            r = detection_step(s, Htx, HtH, self.step_unit * self.step_gram[q],
                               self.step_unit * self.step_corr[q])
            if self.latent_size:
                r = torch.cat([r, s, v], dim=1)
            z = torch.relu(r @ self.W1[q].T + self.b1[q])
            if self.latent_size:
                v = z @ self.W3[q].T + self.b3[q]
            s_new = soft_constellation(z @ self.W2[q].T + self.b2[q], self.points,
                                       self.log_softness[q].exp())
            s = self.residual * s_new + (1.0 - self.residual) * s
            estimates.append(s)
        return torch.stack(estimates, dim=1)


class FinalLayerMSE(nn.Module):
    """Mean squared error of the last layer's estimate.

    The DetNet paper sums the errors of all layers (weighted by
    ``log(layer)``). Here the layers start as an annealed projected
    gradient whose early iterates are soft by design (wide ramps); a loss
    on them pulls those ramps narrow and undoes the annealing: on 8 x 16
    BPSK it made the symbol error rate worse than the untrained network at
    every SNR, while the last layer's error alone improved it (measured:
    1.69e-3 -> 1.25e-3 at 12 dB).
    """

    def __init__(self):
        super().__init__()

    def forward(self, estimates, target):
        """The loss.

        Parameters
        ----------
        estimates : torch.Tensor of shape (n_samples, n_layers, n_tx)
            Every layer's estimate, as :class:`DetNet` returns them.
        target : torch.Tensor of shape (n_samples, n_tx)
            The true symbols (in the network's scaled units).

        Returns
        -------
        torch.Tensor
            A scalar.
        """
        return ((estimates[:, -1] - target) ** 2).mean()


def _symbol_accuracy(net, X, y):
    """Validation symbol accuracy of the last layer (an EpochScoring)."""
    points = net.module_.points
    with torch.no_grad():
        s = net.forward(X)[:, -1]
    y = torch.as_tensor(y, device=s.device)
    return float((nearest_point(s, points) == nearest_point(y, points)).float().mean())


def _simulate_symbols(rng, n_samples, *, gram, chol, noise_std, points):
    """New symbols and noise on the training channels (SimulatedRows).

    Row ``i`` uses channel ``i mod n_channels`` with its noise level:
    ``H^T x = H^T H u + noise_std L e`` with ``L L^T = H^T H`` (the law of
    ``H^T w``), all in the normalised units of :func:`_statistics`.
    """
    n_channels, K = noise_std.shape[0], chol.shape[-1]
    which = np.arange(n_samples) % n_channels
    u = points[rng.randint(len(points), size=(n_samples, K))]
    e = rng.standard_normal((n_samples, K)).astype(np.float32)
    if gram.ndim == 2:
        Htx = u @ gram + noise_std[which, None] * (e @ chol.T)
        return Htx, u
    G, L = gram[which], chol[which]
    Htx = np.einsum("nij,nj->ni", G, u) + noise_std[which, None] * np.einsum(
        "nij,nj->ni", L, e)
    return np.concatenate([Htx, G.reshape(n_samples, -1)], axis=1), u


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
    device : {"cpu", "cuda", "auto"}, default="cpu"
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
                 validation_fraction=0.1, device="cpu", random_state=None,
                 verbose=0):
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
        points = ((self.points_ - self.offset_) / self.scale_).astype(np.float32)
        u = ((values - self.offset_) / self.scale_).astype(np.float32)
        Htx, HtH = _statistics(torch.as_tensor(X, dtype=torch.float64),
                               torch.as_tensor(H, dtype=torch.float64),
                               self.offset_, self.scale_)
        c = np.sum(H.astype(np.float64) ** 2, axis=(-2, -1)) / K
        noise_std = (np.sqrt(noise_var / np.maximum(c, 1e-30))
                     / self.scale_).astype(np.float32)
        gram = HtH.numpy().astype(np.float32)
        eye = np.eye(K, dtype=np.float32)
        chol = np.linalg.cholesky(gram + 1e-6 * eye)
        # the annealed projected gradient DetNet starts from (see
        # solvers.projected_gradient): a long step, ramps from wide to narrow
        step = 1.9 / float(np.median(np.linalg.eigvalsh(gram)[..., -1]))
        noise_std = np.broadcast_to(noise_std, (X.shape[0],))
        fixed = HtH.ndim == 2
        rows = Htx.numpy().astype(np.float32)
        if not fixed:
            rows = np.concatenate([rows, gram.reshape(len(rows), -1)], axis=1)
        train, valid = self._holdout(X.shape[0], self.validation_fraction)
        n_train = train.size
        n_sim = int(round(self.augmentation * n_train))
        X_fit = np.empty((n_train + n_sim, rows.shape[1]), dtype=np.float32)
        y_fit = np.empty((n_train + n_sim, K), dtype=np.float32)
        X_fit[:n_train], y_fit[:n_train] = rows[train], u[train]
        simulate = functools.partial(
            _simulate_symbols, gram=gram if fixed else gram[train],
            chol=chol if fixed else chol[train],
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
        module = self.net_.module_
        trained = {k: v.clone() for k, v in module.state_dict().items()}
        trained_errors = np.sum(self._decide(rows) != codes)
        with seeded(self._seed):
            initial = DetNet(**module_args).to(self._inference_device())
        module.load_state_dict(initial.state_dict())
        initial_errors = np.sum(self._decide(rows) != codes)
        if trained_errors <= initial_errors:
            module.load_state_dict(trained)
        else:
            warnings.warn(
                f"DetNetClassifier: training did not improve on the untrained "
                f"network (projected gradient): {trained_errors} held-out symbol "
                f"errors against {initial_errors}; keeping the initialisation. "
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
        points = (self.points_ - self.offset_) / self.scale_
        return nearest_point(torch.as_tensor(self._run(rows)),
                             torch.as_tensor(points, dtype=torch.float64)).numpy()

    def _calibrate(self, rows, u):
        """Fit the soft-output width by maximum likelihood on held-out rows."""
        s = self._run(rows).astype(np.float64)
        points = (self.points_ - self.offset_) / self.scale_
        best, self.temperature_ = np.inf, 1.0
        for t in np.geomspace(1e-3, 2.0, 60):
            logp = -0.5 * ((s[..., None] - points) / t) ** 2
            logp -= logp.max(-1, keepdims=True)
            logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
            truth = np.abs(u[..., None] - points).argmin(-1)
            nll = -np.take_along_axis(logp, truth[..., None], -1).mean()
            if nll < best:
                best, self.temperature_ = nll, float(t)

    def _statistic_rows(self, X, channels):
        X = self._validate_X(X, reset=False)
        H = self._predict_channel(X, channels)
        dtype = torch.float64 if X.dtype == np.float64 else torch.float32
        Htx, HtH = _statistics(torch.as_tensor(X, dtype=dtype),
                               torch.as_tensor(H, dtype=dtype),
                               self.offset_, self.scale_)
        if HtH.ndim == 2:
            fixed = self.net_.module_.gram
            if fixed is None:
                HtH = HtH.expand(len(X), *HtH.shape)
            else:
                return Htx.numpy()
        if self.net_.module_.gram is not None:
            raise ValueError(
                "this DetNetClassifier was trained for one fixed channel; "
                "per-sample channels need a model fitted with channels=.")
        return torch.cat([Htx, HtH.reshape(len(X), -1)], dim=1).numpy()

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
        u = self._run(self._statistic_rows(X, channels))
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
        return self._labels(self._decide(self._statistic_rows(X, channels)))

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
        s = self._run(self._statistic_rows(X, channels)).astype(np.float64)
        points = (self.points_ - self.offset_) / self.scale_
        logp = -0.5 * ((s[..., None] - points) / self.temperature_) ** 2
        p = np.exp(logp - logp.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        return p[:, 0] if self._single_output else [p[:, k] for k in range(p.shape[1])]


# ----- the model-based detectors as an estimator -------------------------------
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

    def __init__(self, method="mmse", channel=None, *, noise_var=None):
        self.method = method
        self.channel = channel
        self.noise_var = noise_var

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
            S = sphere_decoder(X, H, self.points_)
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
