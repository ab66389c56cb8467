"""LISTA: ISTA unrolled into a network whose step sizes, thresholds and
momenta (and optionally gradient maps) are learned (Gregor & LeCun 2010; the
step-size form of Ablin et al. 2019 and the weight-coupled form of Chen et
al. 2018).
"""

import copy
import functools
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from skorch.callbacks import EpochScoring
from torch import nn

from ._base import (
    Interval,
    TorchEstimator,
    StrOptions,
    TrainingProblem,
    check_matrix,
    check_number,
    to_numpy,
    torch_dtype,
)
from .operators import MatrixOperator
from .prox import prox_l1
from .solvers import ista, proximal_step
from .sparse_coding import DictionaryTransformerMixin, _sparse_encode, learn_dictionary

__all__ = ["LISTA", "LISTATransformer"]

# The largest momentum a layer may learn: FISTA's tends to 1; trained layers
# with the dictionary's adjoint push past it (lista_robustness_notes.md).
MAX_MOMENTUM = 1.5


class LISTA(nn.Module):
    """ISTA unrolled to ``n_layers`` layers with learned parameters.

    Layer ``k`` computes::

        y = z + b_k (z - z_previous)                 # learned momentum
        z <- prox(y - s_k (y D - x) W_k, t_k)        # learned ISTA step

    the ISTA step of :func:`sklearn_mbdl.solvers.ista` with a learned step
    ``s_k``, a learned threshold ``t_k >= 0`` and a learned momentum
    ``0 <= b_k <= 1.5`` (the extrapolation FISTA uses with a fixed schedule,
    where it tends to 1).
    The map ``W_k`` is ISTA's adjoint ``D^T`` in every layer
    (``weights="dictionary"``: the step-size LISTA of Ablin et al. 2019,
    here with a momentum) or a learned matrix per layer
    (``weights="learned"``: the weight-coupled LISTA of Chen et al. 2018).
    The dictionary ``D`` stays the known model in both. At initialisation
    ``W_k = D^T``, ``s_k = 1/L``, ``t_k = alpha/L`` and ``b_k = 0``: the
    untrained network *is* ``n_layers`` iterations of ISTA.

    Steps and thresholds are stored as multiples of ``1/L`` and ``alpha/L``,
    so that every parameter is of order one for the optimiser.

    Parameters
    ----------
    dictionary : torch.Tensor of shape (n_components, n_features)
    n_layers : int
    alpha : float
    weights : {"dictionary", "learned"}, default="dictionary"
        ``"dictionary"``: every layer applies ``D^T`` (a buffer, not
        trained); ``"learned"``: each layer learns its own ``W_k``.
    tied : bool, default=False
        Share ``W`` (when learned), step, threshold and momentum across
        layers.
    positive : bool, default=False
        Non-negative codes.
    """

    def __init__(self, dictionary, n_layers, alpha, *, weights="dictionary",
                 tied=False, positive=False):
        super().__init__()
        if weights not in ("dictionary", "learned"):
            raise ValueError(f"weights must be 'dictionary' or 'learned', got {weights!r}.")
        dictionary = torch.as_tensor(dictionary)
        lipschitz = MatrixOperator(dictionary.double()).lipschitz()
        self.n_layers = int(n_layers)
        self.tied = bool(tied)
        self.positive = bool(positive)
        self.register_buffer("dictionary", dictionary.clone())
        self.register_buffer("step_unit", torch.tensor(1.0 / lipschitz,
                                                       dtype=dictionary.dtype))
        self.register_buffer("threshold_unit", torch.tensor(alpha / lipschitz,
                                                            dtype=dictionary.dtype))
        n_maps = 1 if self.tied else self.n_layers
        if weights == "learned":
            self.weight = nn.Parameter(dictionary.T.repeat(n_maps, 1, 1).contiguous())
        else:   # ISTA's adjoint, one copy for every layer
            self.register_buffer("weight", dictionary.T.unsqueeze(0).contiguous())
        self.step_scale = nn.Parameter(torch.ones(n_maps, dtype=dictionary.dtype))
        self.threshold_scale = nn.Parameter(torch.ones(n_maps, dtype=dictionary.dtype))
        self.momentum = nn.Parameter(torch.zeros(n_maps, dtype=dictionary.dtype))

    def layer_weight(self, k):
        """The map ``W_k`` of one layer.

        Parameters
        ----------
        k : int
            The layer, from 0.

        Returns
        -------
        torch.Tensor of shape (n_features, n_components)
        """
        return self.weight[0 if self.weight.shape[0] == 1 else k]

    def steps(self):
        """Effective step size of each layer, shape ``(n_layers,)``."""
        return (self.step_scale * self.step_unit).expand(self.n_layers)

    def thresholds(self):
        """Effective (non-negative) threshold of each layer."""
        return (torch.clamp(self.threshold_scale, min=0)
                * self.threshold_unit).expand(self.n_layers)

    def momenta(self):
        """Effective momentum of each layer, kept in [0, MAX_MOMENTUM]."""
        return torch.clamp(self.momentum, 0.0, MAX_MOMENTUM).expand(self.n_layers)

    def forward(self, x, n_layers=None):
        n_layers = self.n_layers if n_layers is None else n_layers
        steps, thresholds = self.steps(), self.thresholds()
        momentum = self.momenta()
        z = previous = x.new_zeros((x.shape[0], self.dictionary.shape[0]))
        for k in range(n_layers):
            y = z + momentum[k] * (z - previous)
            direction = steps[k] * ((y @ self.dictionary - x) @ self.layer_weight(k))
            previous, z = z, proximal_step(y, direction, thresholds[k],
                                           self.positive)
        return z


def _nmse_db_score(net, X, y):
    """Validation NMSE (dB) of the codes, the progress column of ``fit``."""
    codes = net.predict(X)
    with np.errstate(over="ignore", invalid="ignore"):
        return 10 * np.log10(np.sum((codes - y) ** 2) / max(np.sum(y ** 2), 1e-300))


def _recombine_codes(rng, n_samples, *, X, codes, dictionary, alpha, positive,
                     device):
    """Simulate signals from the known model ``x = z D + e``.

    Each new code keeps every coefficient of the lasso code of a random
    training signal with probability 1/2 and takes the others from a second
    random signal's code (the sparsity, the amplitudes and which atoms occur
    follow the user's data); the noise ``e`` is the first signal's lasso
    residual. The targets are the exact lasso codes of the new signals.
    """
    first = rng.randint(X.shape[0], size=n_samples)
    second = rng.randint(X.shape[0], size=n_samples)
    keep = rng.rand(n_samples, codes.shape[1]) < 0.5
    new_codes = np.where(keep, codes[first], codes[second])
    signals = new_codes @ dictionary + (X[first] - codes[first] @ dictionary)
    targets = _sparse_encode(signals, dictionary, alpha=alpha, positive=positive,
                             device=device)
    return signals, targets


class _Buffers:
    """The work arrays of :func:`_run_in_place` for chunks of up to
    ``n_rows`` rows, allocated once and reused by every chunk and layer."""

    def __init__(self, n_rows, module, device, dtype):
        n_components, n_features = module.dictionary.shape
        new = functools.partial(torch.empty, device=device, dtype=dtype)
        self._codes = [new((n_rows, n_components)) for _ in range(3)]
        self._step = new((n_rows, n_components))
        self._residual = new((n_rows, n_features))

    def codes(self, n):
        return [buffer[:n] for buffer in self._codes]

    def step(self, n):
        return self._step[:n]

    def residual(self, n):
        return self._residual[:n]


def _run_in_place(module, x, n_layers, buffers):
    """:meth:`LISTA.forward` (inference only), every layer computed in the
    preallocated ``buffers``: the same operations in the same order, so the
    same values, with no temporary tensor per layer."""
    steps, thresholds, momenta = module.steps(), module.thresholds(), module.momenta()
    z, previous, y = buffers.codes(len(x))
    step, residual = buffers.step(len(x)), buffers.residual(len(x))
    z.zero_()
    previous.zero_()
    for k in range(n_layers):
        # y = z + b_k (z - z_previous)
        torch.sub(z, previous, out=y).mul_(momenta[k]).add_(z)
        # direction = s_k (y D - x) W_k
        torch.matmul(y, module.dictionary, out=residual).sub_(x)
        torch.matmul(residual, module.layer_weight(k), out=step).mul_(steps[k])
        # z <- prox(y - direction, t_k); the buffer of the previous iterate,
        # no longer needed, takes the new one
        y.sub_(step)
        previous, z = z, prox_l1(y, thresholds[k], module.positive, out=previous)
    return z


class LISTATransformer(DictionaryTransformerMixin, TorchEstimator):
    """Learned ISTA: a fixed-depth network that approximates the lasso codes.

    ``fit(X)`` is unsupervised: the exact lasso codes of ``X`` (computed by
    the model-based solver, see :func:`sparse_encode`) are the targets, and
    the unrolled network (:class:`~sklearn_mbdl.lista.LISTA`, initialised as
    ISTA) is trained through skorch to reproduce them, on the rows of ``X``
    and on signals the known model simulates from them (``augmentation``).
    ``transform`` then runs ``n_layers`` layers: the error ISTA reaches in
    many more iterations.

    By default each layer applies the dictionary's own adjoint and learns
    three numbers (step, threshold, momentum): 48 parameters for 16 layers,
    whatever the dictionary's size, so a few hundred rows train it without
    learning them by heart. ``weights="learned"`` also learns a matrix per
    layer (the weight-coupled LISTA), which needs many more rows.

    Parameters
    ----------
    dictionary : array-like of shape (n_components, n_features), default=None
        Atoms as rows. With ``None``, ``fit`` first learns a dictionary from
        ``X`` as :class:`SparseCoder` does.
    n_layers : int, default=16
        Depth of the network (number of unrolled ISTA iterations).
    alpha : float, default=1.0
        Weight of the l1 penalty of the lasso the network approximates.
    weights : {"dictionary", "learned"}, default="dictionary"
        The map each layer applies to the residual: the dictionary's adjoint
        ``D^T``, fixed (step-size LISTA), or a matrix learned per layer,
        started at ``D^T`` (weight-coupled LISTA).
    tied : bool, default=False
        Share the map (when learned), step, threshold and momentum across
        layers.
    n_components : int, default=None
        Atoms to learn when ``dictionary`` is None (``n_features`` if None).
    positive : bool, default=False
        Non-negative codes.
    max_epochs : int, default=100
        Maximum training epochs.
    lr : float, default=None
        Adam learning rate (annealed to 0 over ``max_epochs`` by a cosine
        schedule). None: 0.03 with ``weights="dictionary"`` (a few scalars
        of order one), 3e-3 with ``weights="learned"``.
    batch_size : int, default=128
        Mini-batch size for training (inference runs in larger chunks).
    validation_fraction : float, default=0.1
        Share of the rows held out for early stopping (patience 20 epochs,
        best weights restored). Used only when it gives at least 20 rows.
    augmentation : float, default=1.0
        Simulated training signals per epoch, as a multiple of the training
        rows: the known model ``x = z D + e`` is fed codes recombined from the
        lasso codes of ``X`` (each coefficient from one of two random rows)
        and the residuals of ``X`` as noise, and the exact solver labels
        them. Fresh signals every epoch; 0 trains on ``X`` alone. On the
        benchmark this is what closes most of the gap between training and
        held-out error.
    device : {"cpu", "cuda", "auto", "accelerate"}, default="cpu"
        Where to train and compute. ``"accelerate"`` trains through HF
        accelerate (data-parallel under ``accelerate launch``, see
        :ref:`scaling`).
    random_state : int, RandomState instance or None, default=None
        Seeds dictionary learning, weight shuffling and the validation split.
    verbose : int, default=0
        1 prints skorch's epoch table (with the held-out NMSE in dB of the
        codes, ``valid_nmse_db``, when a validation split is used).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The dictionary.
    net_ : skorch.NeuralNetRegressor
        The trained net; ``net_.module_`` is the :class:`LISTA` module and
        ``net_.history`` the training history.
    steps_ : ndarray of shape (n_layers,)
        Learned step size of each layer (ISTA's is ``1/L``).
    thresholds_ : ndarray of shape (n_layers,)
        Learned threshold of each layer (ISTA's is ``alpha/L``).
    momentum_ : ndarray of shape (n_layers,)
        Learned momentum of each layer, in [0, 1.5] (ISTA's is 0; FISTA's
        grows to 1).
    ista_step_ : float
        ``1/L``, ISTA's step, for comparison.
    kept_start_ : bool
        True when training did not lower the held-out error of ``n_layers``
        ISTA iterations, which were kept (with a warning).
    trained_error_, start_error_ : float
        Those held-out squared errors, of the trained network and of ISTA.
    n_features_in_ : int
    device_ : str

    See Also
    --------
    SparseCoder : The exact, model-based solvers.

    Examples
    --------
    >>> from sklearn_mbdl import LISTATransformer
    >>> from sklearn_mbdl.datasets import make_sparse_coding
    >>> X, _, D = make_sparse_coding(200, 16, 32, 3, random_state=0)
    >>> lista = LISTATransformer(D, n_layers=4, alpha=0.1, max_epochs=5,
    ...                          random_state=0).fit(X)
    >>> lista.transform(X).shape
    (200, 32)
    """

    def __init__(self, dictionary=None, *, n_layers=16, alpha=1.0,
                 weights="dictionary", tied=False,
                 n_components=None, positive=False, max_epochs=100, lr=None,
                 batch_size=128, validation_fraction=0.1, augmentation=1.0,
                 device="cpu",
                 random_state=None, verbose=0):
        self.dictionary = dictionary
        self.n_layers = n_layers
        self.alpha = alpha
        self.weights = weights
        self.tied = tied
        self.n_components = n_components
        self.positive = positive
        super().__init__(max_epochs=max_epochs, lr=lr, batch_size=batch_size,
                         validation_fraction=validation_fraction,
                         augmentation=augmentation, device=device,
                         random_state=random_state, verbose=verbose)

    # a model pickled before ``weights`` existed learned its maps
    _pickle_defaults = {"weights": "learned"}

    _parameter_constraints = {
        "dictionary": ["array-like", None],
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "weights": [StrOptions({"dictionary", "learned"})],
        "tied": ["boolean"],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "positive": ["boolean"],
        "lr": [Interval(Real, 0, None, closed="neither"), None],
    }

    def fit(self, X, y=None):
        """Compute the lasso codes of ``X`` and train the network on them.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training signals (no labels needed).
        y : None
            Ignored.

        Returns
        -------
        self : LISTATransformer
        """
        self._check_params()
        X = self._validate_X(X, reset=True)
        self._setup_fit()
        if self.dictionary is not None:
            D = check_matrix(self.dictionary, "dictionary", n_features=X.shape[1])
        else:
            D = learn_dictionary(X, self.n_components or X.shape[1], alpha=self.alpha,
                                 positive=self.positive, random_state=self.random_state,
                                 device=self.device_)
        self.components_ = D.copy()
        self.n_layers_ = self.n_layers
        codes = _sparse_encode(X, D, alpha=self.alpha, positive=self.positive,
                               device=self.device_)
        train, valid = self._holdout(X.shape[0], self.validation_fraction)
        X32, Z32 = X.astype(np.float32), codes.astype(np.float32)
        checked = valid if valid.size else train
        scoring = EpochScoring(_nmse_db_score, lower_is_better=True, name="valid_nmse_db")
        self.net_ = self._fit_network(TrainingProblem(
            LISTA, dict(dictionary=D.astype(np.float32), n_layers=self.n_layers,
                        alpha=self.alpha, weights=self.weights, tied=self.tied,
                        positive=self.positive),
            X=X32[train], y=Z32[train], valid=(X32[valid], Z32[valid]),
            # more signals from the known model, fresh every epoch
            simulate=functools.partial(
                _recombine_codes, X=X[train], codes=codes[train], dictionary=D,
                alpha=self.alpha, positive=self.positive, device=self.device_),
            n_simulated=round(self.augmentation * train.size),
            error=self._fit_error, start_name=f"{self.n_layers} ISTA iterations",
            # (nothing to learn when ISTA is exact)
            exact=1e-12 * float(np.sum(Z32[checked] ** 2)) + 1e-20,
            net_kwargs=dict(callbacks=[("valid_nmse_db", scoring)] if valid.size else [],
                            lr=self.lr or (0.03 if self.weights == "dictionary" else 3e-3)),
        )).net
        module = self.net_.module_
        self.steps_ = to_numpy(module.steps(), np.float64)
        self.thresholds_ = to_numpy(module.thresholds(), np.float64)
        self.momentum_ = to_numpy(module.momenta(), np.float64)
        self.ista_step_ = float(module.step_unit)
        return self

    def _fit_error(self, X, targets):
        """Squared error of the raw network (no per-row guard) to the targets."""
        with np.errstate(over="ignore", invalid="ignore"):
            error = float(np.sum((self._encode(X, guard=False) - targets) ** 2))
        return error if np.isfinite(error) else np.inf

    def _encode(self, X, n_layers=None, guard=True):
        """Run the network on a validated array in its dtype, by chunks
        (with ``guard``, rows worse than the zero code get ISTA's codes).

        The layers run in place in buffers allocated once per call
        (:func:`_run_in_place`): a per-layer temporary of a chunk is larger
        than glibc's mmap threshold, and where that threshold is pinned
        (Dask's workers set ``MALLOC_TRIM_THRESHOLD_``) each one was an
        ``mmap`` / ``munmap`` pair and a round of page faults, 6 times
        slower than in a plain process.
        """
        dtype = torch_dtype(X)
        module = copy.deepcopy(self.net_.module_).to(dtype=dtype)
        n_layers = n_layers or self.n_layers_
        buffers, n_far = [], 0

        def forward(module, state, x):
            nonlocal n_far
            if not buffers:   # sized by the first (largest) chunk
                buffers.append(_Buffers(len(x), module, x.device, dtype))
            z = _run_in_place(module, x, n_layers, buffers[0])
            if guard:
                n_far += self._guard(x, z, module.dictionary, n_layers, buffers[0])
            return z

        codes = self._run_network(X, forward, module=module)
        if n_far:
            warnings.warn(
                f"LISTATransformer: {n_far} of {X.shape[0]} rows had codes far "
                "worse than the zero code (inputs unlike the training data?); "
                f"they were replaced by {n_layers} ISTA iterations.",
                UserWarning,
            )
        return codes

    def _guard(self, x, codes, dictionary, n_layers, buffers):
        """Never return codes worse than ISTA's on a row (in place).

        Every ISTA iterate has a lower lasso objective than the all-zero
        code, so a row whose code is above it is a failure of the network;
        that row gets ``n_layers`` ISTA iterations instead. Returns how many
        rows were far off (objective more than twice the zero code's: a
        blow-up, e.g. an input unlike the training data), to be reported.
        """
        # lasso_objective(x, codes, dictionary, alpha), in the buffers
        residual = torch.matmul(codes, dictionary, out=buffers.residual(len(x)))
        residual.sub_(x)
        objective = residual.mul_(residual).sum(dim=1).mul_(0.5)
        objective.add_(torch.abs(codes, out=buffers.step(len(x))).sum(dim=1)
                       .mul_(self.net_.module__alpha))
        zero_objective = torch.mul(x, x, out=residual).sum(dim=1).mul_(0.5)
        bad = objective > zero_objective
        if not bad.any():
            return 0
        codes[bad], _ = ista(x[bad], dictionary, self.net_.module__alpha,
                             max_iter=n_layers, tol=0.0,
                             positive=self.net_.module__positive)
        return int((objective > 2 * zero_objective).sum())

    def transform(self, X, n_layers=None):
        """Codes of ``X`` computed by the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        n_layers : int, optional
            Run only the first ``n_layers`` layers (for error-versus-depth
            curves); all layers by default.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_components)
            In the dtype of ``X``.
        """
        X = self._validate_X(X, reset=False)
        if n_layers is not None:
            check_number(n_layers, "n_layers", min_val=1, max_val=self.n_layers_,
                         integer=True)
        return self._encode(X, n_layers) + 0.0
