"""The trained-estimator template: one fit loop and one chunked inference
for every estimator whose method trains a torch module.

An estimator declares its training problem (:class:`TrainingProblem`: the
module and its arguments, the user's rows, how the known model simulates
more, the held-out pair, the error that decides keep-better) and
:meth:`TorchEstimator._fit_network` runs it: allocation, simulation,
seeding, device, early stopping, keep-better-than-start with a warning
when training did not help. :meth:`TorchEstimator._run_network` is the one
inference: by chunks, in eval mode, in the input's float dtype.
"""

import dataclasses
import functools
import inspect
import warnings
from typing import Any, Callable, Optional

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._core import (
    FLOAT_DTYPES,
    TRAINING_CONSTRAINTS,
    Announce,
    SimulatedRows,
    _accelerate,
    _accelerated,
    _drop_accelerator,
    _no_print,
    resolve_device,
    row_chunks,
    seeded,
    to_numpy,
    to_tensor,
    torch_dtype,
    torch_seed,
)

__all__ = ["TrainingProblem", "TrainingResult", "TorchEstimator", "RestorerMixin",
           "module_state", "device_of"]


@dataclasses.dataclass
class TrainingProblem:
    """What a trained estimator declares; :meth:`TorchEstimator._fit_network`
    trains it.

    Attributes
    ----------
    module : type
        The torch module class (skorch builds it: an instance would be
        pickled outside skorch's device mapping).
    module_args : dict
        Its constructor's arguments.
    X, y : ndarray or None
        The user's training rows (inputs and targets, float32), used as
        they are at every epoch.
    simulate : callable, optional
        ``simulate(rng, n) -> (X, y)``: ``n`` rows the known model draws;
        fresh rows every epoch, after the user's.
    n_simulated : int
        Simulated rows per epoch.
    valid : (X, y) or None
        Held-out rows: early stopping on their loss (best weights
        restored), and the data of the keep-better decision.
    check : (X, y) or None
        The keep-better data when there is no held-out pair (default: the
        user's rows).
    error : callable, optional
        ``error(X, y) -> float`` of the module as currently loaded, lower
        is better; default: the training loss (the net's ``get_loss``).
    start : dict or None
        Weights to start from (fine-tuning); default: the module's own
        initialisation.
    start_name : str
        What the start is, for the warning ("ISTA", "the shipped prior").
    keep_better : bool
        Keep the start when training ends worse on the keep-better data.
    warn : bool
        Warn when the start is kept (an estimator that trains several
        networks may summarise them in one warning instead).
    exact : float
        A start error at or below this is exact: nothing to learn, no warning.
    criterion : type
        The loss module class.
    net_kwargs : dict
        More skorch arguments (``optimizer__param_groups``, ``net_class``,
        ``lr``, ``patience``, ``label``, ``callbacks``...).
    seed_offset : int
        Added to the estimator's seed (several networks in one ``fit``).
    """

    module: type
    module_args: dict
    X: Optional[np.ndarray] = None
    y: Optional[np.ndarray] = None
    simulate: Optional[Callable] = None
    n_simulated: int = 0
    valid: Optional[tuple] = None
    check: Optional[tuple] = None
    error: Optional[Callable] = None
    start: Optional[dict] = None
    start_name: str = "the untrained network"
    keep_better: bool = True
    warn: bool = True
    exact: float = 0.0
    criterion: Any = torch.nn.MSELoss
    net_kwargs: dict = dataclasses.field(default_factory=dict)
    seed_offset: int = 0


@dataclasses.dataclass
class TrainingResult:
    """What :meth:`TorchEstimator._fit_network` returns."""

    net: Any
    kept_trained: bool
    trained_error: float
    start_error: float


#: the training parameters :meth:`TorchEstimator.__init__` stores
SHARED_PARAMETERS = tuple(TRAINING_CONSTRAINTS)


class TorchEstimator(BaseEstimator):
    """Base of the toolkit's estimators.

    Gives the shared input validation, device resolution and seeding, and
    for estimators with a trained torch module, the skorch net and the
    dtype-preserving inference. Subclasses keep scikit-learn's rules:
    ``__init__`` only stores its arguments; fitted state ends in ``_``.
    """

    # the parameters' constraints (scikit-learn's convention), checked by
    # _check_params at the start of fit and again by whatever reads a
    # parameter after fit; the shared training parameters a subclass takes
    # get TRAINING_CONSTRAINTS unless it declares its own (__init_subclass__)
    _parameter_constraints: dict = {}
    # parameters added after models were pickled, whose default would not
    # be what those models were trained with: name -> the former behaviour
    # (read by __setstate__)
    _pickle_defaults: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("_parameter_constraints")
        if own is None:
            return
        shared = {name: TRAINING_CONSTRAINTS[name] for name in cls._get_param_names()
                  if name in TRAINING_CONSTRAINTS}
        cls._parameter_constraints = {**shared, **own}

    def __init__(self, **shared):
        """Store the shared parameters a subclass has, unchanged.

        The parameters every trained estimator shares (``max_epochs``,
        ``lr``, ``batch_size``, ``validation_fraction``, ``augmentation``,
        ``device``, ``random_state``, ``verbose``: each subclass those it
        has) are stored here. A subclass lists all its parameters in its own
        ``__init__`` signature, which scikit-learn's ``get_params`` reads,
        stores its method's parameters itself and passes the shared ones on
        by name, as scikit-learn's estimators call their base class.
        """
        unknown = set(shared) - set(SHARED_PARAMETERS)
        if unknown:
            raise TypeError(f"{sorted(unknown)} are not shared training parameters "
                            f"(those are {SHARED_PARAMETERS}).")
        for name, value in shared.items():
            setattr(self, name, value)

    def _check_params(self):
        """Check the parameters against ``_parameter_constraints`` (an
        ``InvalidParameterError``, a ``ValueError`` and a ``TypeError``, that
        names the parameter), then the rules between parameters."""
        self._validate_params()
        self._check_param_relations()

    def _check_param_relations(self):
        """Rules between parameters (none by default)."""

    # ----- validation -------------------------------------------------------
    def _validate_X(self, X, *, reset):
        """2-D, finite, float64 or float32 (other dtypes become float64),
        and writable.

        A pandas DataFrame (copy-on-write) or a read-only memmap gives a
        read-only array, which torch warns about when it wraps it: such
        input is copied once here, so that no estimator meets it.
        """
        if not reset:
            check_is_fitted(self)
        X = validate_data(self, X, reset=reset, dtype=FLOAT_DTYPES,
                          ensure_all_finite=True)
        return X if X.flags.writeable else X.copy()

    def _setup_fit(self):
        """Resolve the device and the torch seed; call at the start of ``fit``."""
        self.device_ = resolve_device(self.device)
        self._seed = torch_seed(self.random_state)

    # ----- skorch plumbing ---------------------------------------------------
    def _holdout(self, n_samples, fraction, min_rows=20):
        """Seeded (train, validation) row indices for early stopping.

        The validation part is empty unless it gets at least ``min_rows``
        rows: skorch's own default split silently holds out 20% even of
        tiny data sets, which the estimators never want.
        """
        order = np.random.RandomState(self._seed).permutation(n_samples)
        n_valid = int(round(fraction * n_samples))
        if n_valid < min_rows:
            return np.arange(n_samples), order[:0]
        return np.sort(order[n_valid:]), np.sort(order[:n_valid])

    def _make_net(self, module, *, criterion, valid=None, callbacks=(),
                  patience=20, gradient_clip=1.0, net_class=None, label=None,
                  **kwargs):
        """The skorch net that trains ``module`` (a module class; its
        arguments come as ``module__name=value`` keyword arguments).

        ``net_class`` replaces skorch's ``NeuralNetRegressor`` (e.g. a
        subclass whose loss also reads the input batch).

        ``valid`` is a held-out ``(X, y)`` pair: with it, the net stops early
        when the validation loss stops improving and restores its best
        weights; without it, every row trains (``train_split=None``).
        Gradients are clipped by norm and the learning rate follows a cosine
        schedule down to 0 at ``max_epochs``.

        At ``verbose >= 1`` skorch prints its epoch table, headed by a line
        naming the estimator and what trains (``label``, e.g. "network 2 of
        4"), and a progress bar runs over each epoch's batches.

        With ``device="accelerate"`` the same net trains through HF
        accelerate (skorch's ``AccelerateMixin``): run the script with
        ``accelerate launch`` for data-parallel training on several GPUs or
        nodes; one plain process trains as without it.
        """
        from skorch import NeuralNetRegressor
        from skorch.callbacks import EarlyStopping, GradientNormClipping, LRScheduler
        from skorch.dataset import Dataset
        from skorch.helper import predefined_split

        callbacks = list(callbacks)
        callbacks.append(("lr_schedule", LRScheduler(
            torch.optim.lr_scheduler.CosineAnnealingLR, T_max=self.max_epochs)))
        if gradient_clip is not None:
            callbacks.append(("clip", GradientNormClipping(gradient_clip)))
        if self.verbose:
            from skorch.callbacks import ProgressBar

            what = label or f"training the {getattr(module, '__name__', 'network')}"
            callbacks.insert(0, ("announce", Announce(
                f"{type(self).__name__}: {what}, up to {self.max_epochs} epochs")))
            callbacks.append(("progress", ProgressBar()))
        train_split = None
        if valid is not None and len(valid[0]):
            train_split = predefined_split(Dataset(*valid))
            callbacks.append(("early_stopping", EarlyStopping(
                patience=patience, load_best=True, threshold=1e-4)))
        lr = kwargs.pop("lr", self.lr)  # (an estimator may resolve its own)
        net_class = net_class or NeuralNetRegressor
        device = self.device_
        if self.device == "accelerate":
            # accelerate places the module and the batches on this process's
            # device (skorch must not: device=None)
            net_class = _accelerated(net_class)
            accelerator = _accelerate().Accelerator()
            kwargs["accelerator"] = accelerator
            # the epoch table on the main process only, and only if verbose
            # (skorch calls a sink other than print whatever verbose says)
            kwargs["callbacks__print_log__sink"] = (
                accelerator.print if self.verbose else _no_print)
            device = None
        return net_class(
            module=module,
            criterion=criterion,
            optimizer=torch.optim.Adam,
            lr=lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=train_split,
            callbacks=callbacks,
            iterator_train__shuffle=True,
            device=device,
            verbose=self.verbose,
            **kwargs,
        )

    def _train(self, net, X, y):
        """``net.fit(X, y)``, then drop what only training needed.

        Early stopping keeps a copy of the best weights and the learning-rate
        scheduler a reference to the optimizer, both on the training device.
        skorch maps only its own module, optimizer and criterion when
        unpickling, so with these a model trained on a GPU would not load on
        a CPU-only machine.
        """
        net.fit(X, y)
        # the held-out rows live in the split: a fitted net holds no data
        net.train_split = None
        if hasattr(type(net), "_plain_class"):
            _drop_accelerator(net, self.device_)
        for _, callback in net.callbacks_:
            for name in ("best_model_weights_", "lr_scheduler_"):
                if hasattr(callback, name):
                    setattr(callback, name, None)
        return net

    def _keep_better_of(self, start_state, error, module=None):
        """Keep the trained weights, or the start if it was better.

        Unrolled networks start as their model-based algorithm; training
        that ends worse than that start is not kept. ``error()`` scores the
        current module (lower is better).

        Returns
        -------
        kept_trained : bool
        trained_error, start_error : float
        """
        module = module if module is not None else self.net_.module_
        trained = {k: v.clone() for k, v in module.state_dict().items()}
        trained_error = error()
        module.load_state_dict(start_state)
        start_error = error()
        if trained_error <= start_error:
            module.load_state_dict(trained)
            return True, trained_error, start_error
        return False, trained_error, start_error

    # ----- the one fit loop ---------------------------------------------------
    def _fit_network(self, problem):
        """Train ``problem`` (a :class:`TrainingProblem`) and return a
        :class:`TrainingResult`.

        The training set is the user's rows followed by ``n_simulated``
        rows the known model draws, the first draw made here and a fresh
        one at every later epoch. The net starts from the module's
        initialisation (or ``problem.start``), trains with early stopping
        on ``problem.valid``, and ends with the better of trained and start
        on the held-out rows (or ``problem.check``), with a warning when
        training did not help. The net is ``self.net_`` when this returns,
        and the outcome is in ``self.kept_start_`` (the start was kept),
        ``self.trained_error_`` and ``self.start_error_`` (the two errors
        compared; NaN when not compared).
        """
        seed = self._seed + problem.seed_offset
        n_real = 0 if problem.X is None else len(problem.X)
        n_sim = int(problem.n_simulated) if problem.simulate is not None else 0
        callbacks = list(problem.net_kwargs.get("callbacks", ()))
        rng = np.random.RandomState(seed)
        if n_sim:
            first_X, first_y = problem.simulate(rng, n_sim)
            X_fit = _allocate(problem.X, first_X, n_real + n_sim)
            y_fit = _allocate(problem.y, first_y, n_real + n_sim)
            X_fit[n_real:], y_fit[n_real:] = first_X, first_y
            callbacks.append(("simulate", SimulatedRows(
                problem.simulate, X_fit, y_fit, n_real, rng, skip_first=True)))
        else:
            X_fit, y_fit = problem.X, problem.y
        if n_real and n_sim:
            X_fit[:n_real], y_fit[:n_real] = problem.X, problem.y
        kwargs = {k: v for k, v in problem.net_kwargs.items() if k != "callbacks"}
        kwargs.update({f"module__{k}": v for k, v in problem.module_args.items()})
        with seeded(seed, self.device_):
            net = self._make_net(problem.module, criterion=problem.criterion,
                                 valid=problem.valid, callbacks=callbacks,
                                 warm_start=True, **kwargs)
            net.initialize()
            if problem.start is not None:
                net.module_.load_state_dict(problem.start)
            start = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}
            self._train(net, X_fit, y_fit)
        net.warm_start = False
        self.net_ = net   # (the keep-better error may read the estimator)
        if not problem.keep_better:
            self.kept_start_, self.trained_error_, self.start_error_ = False, np.nan, np.nan
            return TrainingResult(net, True, np.nan, np.nan)
        held_out = problem.valid is not None and len(problem.valid[0])
        data = problem.valid if held_out else (problem.check or (problem.X, problem.y))
        error = problem.error or functools.partial(_loss_of, net)
        kept, trained_error, start_error = self._keep_better_of(
            start, lambda: error(*data), module=net.module_)
        if not kept and problem.warn and start_error > problem.exact:
            where = "held-out" if held_out else "training"
            warnings.warn(
                f"{type(self).__name__}: training did not improve on "
                f"{problem.start_name} ({where} error {trained_error:.4g} against "
                f"{start_error:.4g}); keeping {problem.start_name}. Try more data, "
                "more epochs or a smaller lr.", UserWarning, stacklevel=3)
        # the outcome, as fitted attributes of every trained estimator
        self.kept_start_ = not kept
        self.trained_error_, self.start_error_ = float(trained_error), float(start_error)
        return TrainingResult(net, kept, trained_error, start_error)

    # ----- the one inference ---------------------------------------------------
    def _run_network(self, X, forward=None, *, module=None, cpu_size=1024):
        """Run the trained module on ``X`` by chunks, in ``X``'s float dtype.

        Parameters
        ----------
        X : ndarray, float64 or float32
            Validated input, first axis the samples.
        forward : callable, optional
            ``forward(module, state, x) -> tensor or tuple of tensors``;
            ``state`` holds the module's parameters and buffers cast to the
            dtype of ``x`` (for :func:`torch.func.functional_call`).
            Default: the module's own ``forward``.
        module : torch.nn.Module, optional
            Default: ``net_.module_``.
        cpu_size : int
            Rows per chunk on a CPU (see :func:`row_chunks`).

        Returns
        -------
        ndarray, or tuple of ndarrays
            Concatenated over the chunks, in ``X``'s dtype.
        """
        module = module if module is not None else self.net_.module_
        dtype = torch_dtype(X)
        state = module_state(module, dtype)
        device = device_of(module)
        forward = forward or _plain_forward
        results = None
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                for rows in row_chunks(len(X), device, cpu_size=cpu_size):
                    out = forward(module, state, to_tensor(X[rows], device, dtype=dtype))
                    out = out if isinstance(out, tuple) else (out,)
                    if results is None:   # written chunk by chunk, allocated once
                        results = tuple(np.empty((len(X), *o.shape[1:]), dtype=X.dtype)
                                        for o in out)
                    for result, o in zip(results, out):
                        result[rows] = to_numpy(o, X.dtype)
        finally:
            module.train(was_training)
        if results is None:
            raise ValueError("no samples to compute: X has 0 rows.")
        return results if len(results) > 1 else results[0]

    def _module_state(self, dtype):
        """The trained module's parameters and buffers cast to ``dtype``."""
        return module_state(self.net_.module_, dtype)

    def _inference_device(self):
        return device_of(self.net_.module_)

    def __setstate__(self, state):
        # a model trained on a GPU loads on a CPU-only machine: skorch maps
        # the tensors, and the estimator follows
        if str(state.get("device_", "cpu")).startswith("cuda") and \
                not torch.cuda.is_available():
            state["device_"] = "cpu"
        # a model pickled before a parameter was added takes its default, or
        # the value that keeps what it was trained as (_pickle_defaults)
        for name, param in inspect.signature(type(self).__init__).parameters.items():
            if name != "self" and name not in state and \
                    param.default is not inspect.Parameter.empty:
                state[name] = self._pickle_defaults.get(name, param.default)
        super().__setstate__(state)


class RestorerMixin(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """What the image restorers share: ``score`` by simulation, feature
    names, and tags.

    ``get_feature_names_out`` names the pixels of the restored images
    (``<class name>0``, ...), the columns ``transform`` returns for
    flattened rows, so ``set_output(transform="pandas")`` gives a DataFrame
    for 2-D input (image-shaped input gives image-shaped arrays).

    ``fit`` learns from clean images and the known forward model simulates
    the observations, so the same simulation scores a restorer without
    labelled pairs: ``score(X)`` simulates observations of the clean images
    ``X`` (seeded by ``random_state``, 0 when it is None), restores them and
    returns the mean PSNR (peak 1). The estimator provides
    ``_validate_images(X, reset=False) -> (rows, image_shape)``,
    ``simulate(X, random_state)`` and ``_restore(observations, image_shape)
    -> (images, extra)``.
    """

    def score(self, X, y=None):
        """Mean PSNR (dB, peak 1) of the restorations of simulated
        observations of the clean images ``X``.

        ``GridSearchCV`` can tune the estimator with clean images only.

        Parameters
        ----------
        X : array-like of shape (n_samples, h * w) or (n_samples, h, w)
            Clean images in [0, 1].
        y : None
            Ignored.

        Returns
        -------
        float
        """
        from ..metrics import psnr

        check_is_fitted(self)
        clean, shape = self._validate_images(X, reset=False)
        observed = self.simulate(X, random_state=check_random_state(
            0 if self.random_state is None else self.random_state))
        restored, _ = self._restore(observed, shape)
        return float(np.mean(psnr(clean.reshape(-1, *shape), restored,
                                  data_range=1.0, per_image=True)))

    @property
    def _n_features_out(self):
        """Pixels of a restored image (the columns of 2-D output)."""
        return int(np.prod(self.image_shape_))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.non_deterministic = False
        return tags


def _allocate(real, first, n_rows):
    """float32 training array of ``n_rows`` rows shaped like ``first``."""
    like = first if real is None or not len(real) else real
    return np.empty((n_rows, *np.shape(like)[1:]), dtype=np.float32)


def _loss_of(net, X, y):
    """The net's own loss (its ``get_loss``, which may read the inputs) on
    ``(X, y)`` in eval mode, by batches: skorch's validation loss."""
    module = net.module_
    device = device_of(module)
    total, size = 0.0, max(int(net.batch_size), 1)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(X), size):
                xb = torch.as_tensor(X[start:start + size], device=device)
                yb = torch.as_tensor(y[start:start + size], device=device)
                loss = net.get_loss(module(xb), yb, X=xb, training=False)
                total += float(loss) * len(xb)
    finally:
        module.train(was_training)
    error = total / max(len(X), 1)
    return error if np.isfinite(error) else np.inf


def module_state(module, dtype):
    """``module``'s parameters and buffers cast to ``dtype``: with
    :func:`torch.func.functional_call` inference runs in the input's dtype
    without changing the fitted module."""
    state = dict(module.named_parameters())
    state.update(module.named_buffers())
    return {k: (v.detach().to(dtype=dtype) if v.is_floating_point() else v.detach())
            for k, v in state.items()}


def device_of(module):
    """The device of ``module``'s tensors (CPU when it has none)."""
    tensor = next(iter(module.parameters()), None)
    if tensor is None:
        tensor = next(iter(module.buffers()), None)
    return torch.device("cpu") if tensor is None else tensor.device


def _plain_forward(module, state, x):
    return torch.func.functional_call(module, state, (x,))
