"""DCEAEstimator: the scikit-learn estimator around the DCEA module."""

import functools
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._base import (
    IMAGE_SHAPE_CONSTRAINT,
    Interval,
    RestorerMixin,
    StrOptions,
    TorchEstimator,
    TrainingProblem,
    check_images,
    check_number,
    row_chunks,
    to_numpy,
)
from ..operators import ConvolutionOperator, code_shape
from ..solvers import DISTRIBUTIONS, inverse_link, natural_offset, poisson_proximal_gradient
from ._network import (
    DCEA,
    ExponentialFamilyLoss,
    _initial_filters,
    _poisson_pairs,
    _unit_filters,
)


# standard deviation (pixels, or samples for 1-D signals) of the Gaussian
# window of the local level b (see solvers.natural_offset). It is fixed, not
# tied to the stride: the level is the same on a small training patch and on
# a whole picture, and the codes carry the detail around it (how the width
# was chosen: benchmarks/results/dcea_notes.md).
OFFSET_WINDOW = 4.0


class DCEAEstimator(RestorerMixin, TorchEstimator):
    """Deep convolutional exponential-family autoencoder (DCEA-C / DCEA-UC).

    Denoises photon-limited (Poisson) images, or signals of another
    exponential family, with the network :class:`DCEA`: ``n_layers``
    unrolled proximal-gradient steps on the likelihood of the convolutional
    sparse model ``log mu = b + sum_c h_c * s_c``, followed by the decoder.
    The level ``b`` is the log of the local mean count (a Gaussian window
    of standard deviation 4 pixels,
    :func:`~sklearn_mbdl.solvers.natural_offset`),
    so a network trained on small patches denoises whole pictures.
    Trained through skorch. ``fit`` works in two ways:

    - ``peak=None`` (unsupervised): ``X`` holds noisy counts; the network is
      trained as an autoencoder, to minimise the negative log-likelihood of
      ``X`` under its own decoded mean (the filters are learned; step and
      sparsity stay those of ``alpha``), as in the paper's dictionary
      learning.
    - ``peak`` set (supervised): ``X`` holds clean images. They are scaled to
      counts, ``X / Q`` with ``Q = max(X) / peak`` (the paper's scaling, over
      the whole training set), Poisson noise is drawn afresh at every epoch
      (and each image flipped at random), and the network (filters, step,
      thresholds) learns to map the noisy counts to the clean intensity.

    ``transform(X)`` restores, as the toolkit's other restorers do: it takes
    noisy counts and returns the denoised intensity in the units of the
    training images (``Q * mu``; ``mu`` itself, in counts, when
    ``peak=None``), in the caller's layout. ``encode`` gives the codes and
    ``decode`` maps them back.

    Parameters
    ----------
    n_kernels : int, default=64
        Number of filters ``C``.
    kernel_size : int, default=7
        Side of the (square) filters.
    stride : int, default=4
        Step between neighbouring codes.
    n_layers : int, default=15
        Unrolled iterations (the depth of the encoder).
    tied : bool, default=True
        ``True``: DCEA-C (the encoder uses the decoder's filters);
        ``False``: DCEA-UC (separate encoder filters).
    distribution : {"poisson", "gaussian", "binomial"}, default="poisson"
        Exponential family of the observations, with its canonical link:
        ``exp``, identity, ``sigmoid``. Poisson and binomial need
        non-negative ``X`` (binomial: in [0, 1]).
    alpha : float or "auto", default="auto"
        Weight of the l1 penalty on the codes (the model-based problem is
        ``NLL(x | b + H s) + alpha ||s||_1``); sets the initial thresholds,
        and the fixed ones when ``peak=None``. ``"auto"``: from the
        model-based solver (the untrained network): with ``peak``, its best
        l1 weight on training images with fresh noise, among multiples of
        the noise level of its first step (the standard deviation of
        ``H^T (x - f^{-1}(b))``); without, twice that level. Training then
        starts from the best model-based solver, which ``fit`` keeps when
        training does not beat it.
    peak : float, default=None
        Peak intensity (in counts) at which to simulate Poisson noise for
        supervised training; ``None`` trains unsupervised on the counts in
        ``X``. Only with ``distribution="poisson"``.
    image_shape : tuple of int, default=None
        ``(h, w)``: the shape of the images flattened in the rows of ``X``;
        ``(n_features,)``: the rows are 1-D signals, denoised by 1-D
        convolutions (the same model with filters of length
        ``kernel_size``). ``None`` when ``X`` is a 3-D array
        ``(n_samples, h, w)``; flattened rows then raise a ``ValueError``
        (rows of fewer than 16 features are taken for 1-D signals).
    max_epochs : int, default=20
        Training epochs.
    lr : float, default=1e-2
        Adam learning rate (annealed to 0 by a cosine schedule).
    batch_size : int, default=64
        Mini-batch size for training.
    validation_fraction : float, default=0.0
        Share of the training images held out (with one seeded noise draw
        when ``peak`` is set): training stops early when their loss stops
        improving, the network of the epoch with the lowest held-out loss
        is kept, and it is compared with its start there. Used only when
        it gives at least 20 images; otherwise every image trains and the
        comparison uses up to 128 training images with fresh noise. Off by
        default: the learning rate is annealed to 0 at ``max_epochs``, so
        the last epochs are the best ones, and the held-out images would
        be missing from training (see ``benchmarks/results/dcea_notes.md``).
    device : {"cpu", "cuda", "auto", "accelerate"}, default="cpu"
        ``"accelerate"`` trains through HF accelerate (data-parallel
        under ``accelerate launch``, see :ref:`scaling`).
    random_state : int, RandomState instance or None, default=None
        Seeds the initial filters, the noise simulation, the held-out split
        and the shuffling.
    verbose : int, default=0
        1 prints skorch's epoch table.

    Attributes
    ----------
    components_ : ndarray of shape (n_kernels, kernel_size, kernel_size)
        The learned decoder filters (unit norm); ``(n_kernels, kernel_size)``
        for 1-D signals.
    encoder_components_ : ndarray of the shape of ``components_``
        The encoder's filters (the same as ``components_`` when ``tied``).
    initial_components_ : ndarray of the shape of ``components_``
        The random filters training started from (the model-based twin's
        dictionary).
    image_shape_ : tuple of int
        ``(h, w)``, or ``(n_features,)`` for 1-D signals.
    code_shape_ : tuple of int
        Shape of one code map.
    intensity_scale_ : float
        ``Q = max(X) / peak`` (1 when ``peak=None``): ``transform`` returns
        ``Q * mu``.
    peak_ : float or None
        The ``peak`` of the fit (what ``score`` simulates).
    alpha_ : float
        The initial l1 weight (``alpha``, or the level ``"auto"`` found).
    step_ : float
        Learned step size.
    thresholds_ : ndarray of shape (n_kernels,)
        Learned threshold of each filter.
    kept_start_ : bool
        True when training ended worse than the untrained network (the
        model-based solver with the initial filters) on the held-out images
        (or training images with fresh noise), and the untrained network
        was kept (with a warning).
    trained_error_, start_error_ : float
        Those errors, of the trained and of the untrained network.
    net_ : skorch.NeuralNetRegressor
        The trained net; ``net_.module_`` is the :class:`DCEA` module.
    n_features_in_ : int
    device_ : str

    See Also
    --------
    sklearn_mbdl.solvers.poisson_proximal_gradient : The model-based solver
        the network unrolls.

    Examples
    --------
    >>> from sklearn_mbdl import DCEAEstimator
    >>> from sklearn_mbdl.datasets import make_poisson_images
    >>> noisy, clean = make_poisson_images(40, patch_size=16, peak=4, images=["brick"],
    ...                                    random_state=0)
    >>> dcea = DCEAEstimator(n_kernels=8, n_layers=3, peak=4, max_epochs=2,
    ...                      random_state=0).fit(clean)
    >>> dcea.transform(noisy).shape
    (40, 16, 16)
    >>> dcea.components_.shape
    (8, 7, 7)
    """

    def __init__(self, n_kernels=64, kernel_size=7, stride=4, n_layers=15, tied=True,
                 distribution="poisson", alpha="auto", peak=None, image_shape=None,
                 max_epochs=20, lr=1e-2, batch_size=64, validation_fraction=0.0,
                 device="cpu", random_state=None, verbose=0):
        self.n_kernels = n_kernels
        self.kernel_size = kernel_size
        self.stride = stride
        self.n_layers = n_layers
        self.tied = tied
        self.distribution = distribution
        self.alpha = alpha
        self.peak = peak
        self.image_shape = image_shape
        super().__init__(max_epochs=max_epochs, lr=lr, batch_size=batch_size,
                         validation_fraction=validation_fraction, device=device,
                         random_state=random_state, verbose=verbose)

    _parameter_constraints = {
        "n_kernels": [Interval(Integral, 1, None, closed="left")],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "stride": [Interval(Integral, 1, None, closed="left")],
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "tied": ["boolean"],
        "distribution": [StrOptions(set(DISTRIBUTIONS))],
        "alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "peak": [Interval(Real, 0, None, closed="neither"), None],
        "image_shape": IMAGE_SHAPE_CONSTRAINT,
    }

    def _check_param_relations(self):
        if self.peak is not None and self.distribution != "poisson":
            raise ValueError(
                "peak simulates Poisson noise: it needs distribution='poisson', "
                f"got distribution={self.distribution!r}.")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = self.distribution in ("poisson", "binomial")
        return tags

    # ----- validation -------------------------------------------------------
    def _check_counts(self, X, *, reset):
        """Validated rows, their image shape, and whether they came as an
        ``(n, h, w)`` stack; after ``fit``, stacks of any image size."""
        rows, shape, stacked = check_images(self, X, reset=reset, any_size=True)
        if reset:
            distribution, kernel_size = self.distribution, self.kernel_size
        else:
            # what the fitted network was built with (a parameter changed
            # since must still be valid)
            self._check_params()
            distribution = self.net_.module_.distribution
            kernel_size = self.components_.shape[-1]
        if len(shape) == 2 and kernel_size > min(shape):
            raise ValueError(
                f"kernel_size={kernel_size} is larger than the images {shape}.")
        if distribution in ("poisson", "binomial") and rows.min(initial=0) < 0:
            raise ValueError(
                f"Negative values in data passed to DCEAEstimator (minimum "
                f"{rows.min():.3g}): DCEA with distribution={distribution!r} "
                "needs non-negative counts or intensities.")
        if distribution == "binomial" and rows.max(initial=0) > 1:
            raise ValueError(
                "distribution='binomial' needs X in [0, 1] (success fractions), "
                f"got a maximum of {rows.max():.3g}.")
        return rows, shape, stacked

    # ----- fit --------------------------------------------------------------
    def fit(self, X, y=None):
        """Train the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, h, w)
            With ``peak=None``: noisy counts (unsupervised). With ``peak``
            set: clean, non-negative images (Poisson noise is simulated).
            Flattened rows need ``image_shape``.
        y : None
            Ignored.

        Returns
        -------
        self : DCEAEstimator
        """
        self._check_params()
        X, self.image_shape_, _ = self._check_counts(X, reset=True)
        if self.peak is not None and not X.max() > 0:
            raise ValueError("X is all zeros: there is no image to scale to the peak.")
        self._setup_fit()
        self.peak_ = None if self.peak is None else float(self.peak)
        self.intensity_scale_ = 1.0 if self.peak is None else float(X.max()) / self.peak
        self.code_shape_ = code_shape(self.image_shape_, self.kernel_size, self.stride)
        # the model-based solver the network starts as: filters cut from the
        # data, its step, and the l1 weight ("auto": from the solver itself)
        rng = np.random.RandomState(self._seed)
        filters = _initial_filters(X, self.image_shape_, self.n_kernels,
                                   self.kernel_size, rng)
        self.initial_components_ = filters.copy()
        module_args = self._module_args(X, filters, rng)
        self.alpha_ = float(module_args["alpha"])
        # the unrolled solver trains, and is kept only if it beats its start
        self._fit_network(self._training_problem(X, module_args))
        module = self.net_.module_
        decoder, encoder = module.operators()
        self.components_ = to_numpy(decoder.filters, np.float64)
        self.encoder_components_ = to_numpy(encoder.filters, np.float64)
        self.step_ = float(module.step().detach())
        self.thresholds_ = to_numpy(module.thresholds().reshape(-1), np.float64)
        return self

    def _module_args(self, X, filters, rng):
        """The :class:`DCEA` module's arguments: the solver's step at the
        data's intensity level, and ``alpha`` (``"auto"`` resolved)."""
        # the Poisson curvature at the peak, or at the bright end of the counts
        if self.peak is not None:
            level = self.peak_
        else:
            level = float(np.percentile(X, 99)) if X.size else 1.0
        module_args = dict(
            filters=torch.as_tensor(filters, dtype=torch.float32),
            signal_shape=self.image_shape_, stride=self.stride,
            n_layers=self.n_layers, alpha=self.alpha,
            step=self._initial_step(filters, level), tied=self.tied,
            distribution=self.distribution, learn_threshold=self.peak is not None,
            offset_window=OFFSET_WINDOW)
        if isinstance(self.alpha, str):
            module_args["alpha"] = self._auto_alpha(filters, X, rng, module_args)
        return module_args

    def _training_problem(self, X, module_args):
        """What trains: supervised, fresh Poisson draws of the clean images
        at every epoch (the held-out images with one fixed draw);
        unsupervised, the counts themselves under the likelihood."""
        train, valid = self._holdout(len(X), self.validation_fraction)
        if self.peak is not None:
            clean = X / self.intensity_scale_
            data = dict(
                simulate=functools.partial(_poisson_pairs, clean=clean[train],
                                           shape=self.image_shape_),
                n_simulated=len(train),
                valid=_poisson_pairs(np.random.RandomState(self._seed + 2),
                                     len(valid), clean=clean[valid]))
            criterion, net_kwargs = nn.MSELoss, {}
        else:
            counts = X.astype(np.float32)
            data = dict(X=counts[train], y=counts[train],
                        valid=(counts[valid], counts[valid]))
            criterion = ExponentialFamilyLoss
            net_kwargs = {"criterion__distribution": self.distribution}
        if not len(valid):
            data["check"] = self._check_rows(X, n_max=128)[:2]
        name = "DCEA-C" if self.tied else "DCEA-UC"
        return TrainingProblem(
            DCEA, module_args, **data, criterion=criterion,
            start_name=f"the {self.n_layers}-iteration model-based solver",
            net_kwargs=dict(net_kwargs, label=f"training {name}"))

    def _initial_step(self, filters, level):
        """``1 / (||H||^2 * curvature)``: the step of the model-based solver,
        with the Poisson curvature taken at the intensity ``level``."""
        # the norm of a convolution hardly depends on the signal size beyond
        # a few kernels: estimate it on a crop, for speed
        crop = tuple(min(n, 4 * self.kernel_size + 4 * self.stride)
                     for n in self.image_shape_)
        operator = ConvolutionOperator(_unit_filters(torch.as_tensor(filters)),
                                       crop, self.stride)
        lipschitz = operator.lipschitz()
        curvature = {"poisson": max(level, 1e-3), "gaussian": 1.0,
                     "binomial": 0.25}[self.distribution]
        return 1.0 / (lipschitz * curvature)

    def _noise_level(self, filters, counts, rng, n_max=64):
        """The standard deviation of the first gradient ``H^T (x - f^{-1}(b))``
        of the solver on up to ``n_max`` signals: the scale of ``alpha``."""
        rows = rng.permutation(counts.shape[0])[:n_max]
        x = torch.as_tensor(counts[rows], dtype=torch.float64).reshape(
            len(rows), 1, *self.image_shape_)
        operator = ConvolutionOperator(_unit_filters(torch.as_tensor(filters)),
                                       self.image_shape_, self.stride)
        offset = natural_offset(x, self.distribution, window=OFFSET_WINDOW)
        gradient = operator.adjoint(x - inverse_link(offset, self.distribution))
        level = float(gradient.std()) if gradient.numel() > 1 else 0.0
        return level if np.isfinite(level) and level > 0 else 0.1

    def _auto_alpha(self, filters, X, rng, module_args):
        """``alpha="auto"``: the start of training, from the model-based solver.

        Supervised: the l1 weight of the best untrained network (the solver
        with the initial filters) among multiples 1/2 to 16 of the noise
        level (:meth:`_noise_level`), on training images with fresh noise.
        Unsupervised: twice the noise level.
        """
        if self.peak is None:
            return 2.0 * self._noise_level(filters, X.astype(np.float32), rng)
        inputs, targets, criterion = self._check_rows(X, n_max=32)
        noise = self._noise_level(filters, inputs, rng)
        candidates = noise * np.array([0.5, 1.0, 2.0, 4.0, 8.0, 16.0])
        errors = [_error(DCEA(**{**module_args, "alpha": float(a)}),
                         inputs, targets, criterion) for a in candidates]
        return float(candidates[int(np.argmin(errors))])

    def _check_rows(self, X, n_max):
        """Up to ``n_max`` training rows with a fresh, seeded noise draw
        (float32), their targets and the criterion that scores a network
        on them."""
        rng = np.random.RandomState(self._seed + 1)
        rows = np.sort(rng.permutation(X.shape[0])[:n_max])
        if self.peak is not None:
            targets = (X[rows] / self.intensity_scale_).astype(np.float32)
            inputs = rng.poisson(X[rows] / self.intensity_scale_).astype(np.float32)
            criterion = nn.MSELoss(reduction="sum")
        else:
            targets = inputs = X[rows].astype(np.float32)
            criterion = ExponentialFamilyLoss(self.distribution)
        return inputs, targets, criterion

    # ----- inference --------------------------------------------------------
    def _run(self, rows, output, shape):
        """The module on validated rows of signals of ``shape`` (codes
        with ``output="decode"``), in their dtype, by chunks."""
        def forward(module, state, x):
            return torch.func.functional_call(
                module, state, (x,), {"output": output, "signal_shape": shape})

        # chunks of about 65k values: the codes of a chunk stay in cache
        size = max(1, 2 ** 16 // max(1, rows.shape[1]))
        return self._run_network(rows, forward, cpu_size=size)

    def _n_code_features(self):
        return (int(np.prod(self.image_shape_))
                + self.components_.shape[0] * int(np.prod(self.code_shape_)))

    def transform(self, X):
        """Restore: the denoised intensity of noisy counts.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, h, w)
            Noisy, non-negative counts (at the training peak when ``peak``
            is set). Images given as a 3-D array may have any size (the
            network is convolutional), e.g. whole pictures after training
            on small patches.

        Returns
        -------
        intensity : ndarray of the shape of ``X``
            ``Q * mu``: the decoded mean, in the units of the training images
            (counts when ``peak=None``); ``(n_samples, h, w)`` for 3-D input,
            rows for rows; in the dtype of ``X``.
        """
        rows, shape, stacked = self._check_counts(X, reset=False)
        out = self._run(rows, "mean", shape) * rows.dtype.type(self.intensity_scale_)
        return out.reshape(len(out), *shape) if stacked else out

    def predict(self, X):
        """Deprecated: use :meth:`transform`, which restores the same way.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, h, w)
            As in :meth:`transform`.

        Returns
        -------
        intensity : ndarray of the shape of ``X``
            ``transform(X)``, after a ``FutureWarning``.
        """
        warnings.warn(
            "DCEAEstimator.predict is deprecated and will be removed: use "
            "transform, which restores as PnPRestorer and BurstSuperResolver do "
            "(encode gives the codes).", FutureWarning, stacklevel=2)
        return self.transform(X)

    def encode(self, X):
        """Offsets and sparse codes of noisy counts.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, h, w)
            Noisy counts, as :meth:`transform` takes them; images of another
            size than the training images give code maps of another shape.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_codes)
            The first ``n_pixels`` columns are the offset ``b`` of every pixel
            (the local level on the link scale: the log of the local mean
            count for Poisson, see
            :func:`~sklearn_mbdl.solvers.natural_offset`); the others are the
            sparse code maps, flattened in ``(n_kernels, *code_shape)`` order
            (``code_shape_`` for images of the training shape):
            ``n_codes = n_pixels + n_kernels * prod(code_shape)``.

        Examples
        --------
        >>> from sklearn_mbdl import DCEAEstimator
        >>> from sklearn_mbdl.datasets import make_poisson_images
        >>> noisy, clean = make_poisson_images(20, patch_size=16, peak=4,
        ...                                    random_state=0)
        >>> dcea = DCEAEstimator(n_kernels=4, stride=2, n_layers=2, peak=4,
        ...                      max_epochs=1, random_state=0).fit(clean)
        >>> codes = dcea.encode(noisy)
        >>> codes.shape  # 256 offsets, then 4 code maps of 11 x 11
        (20, 740)
        >>> dcea.decode(codes).shape
        (20, 256)
        """
        rows, shape, _ = self._check_counts(X, reset=False)
        return self._run(rows, "codes", shape)

    def decode(self, codes):
        """Decode codes from :meth:`encode` into intensities.

        Parameters
        ----------
        codes : array-like of shape (n_samples, n_codes)
            Codes as :meth:`encode` returns them (for images of the
            training shape).

        Returns
        -------
        intensity : ndarray of shape (n_samples, n_features)
            ``Q * f^{-1}(b + H s)``, rows flattened.
        """
        check_is_fitted(self)
        self._check_params()
        codes = check_array(codes, dtype=(np.float64, np.float32),
                            ensure_all_finite=True, input_name="codes")
        if codes.shape[1] != self._n_code_features():
            raise ValueError(
                f"codes have {codes.shape[1]} columns; this estimator's have "
                f"{self._n_code_features()} ({int(np.prod(self.image_shape_))} "
                f"offsets + {self.components_.shape[0]} maps of "
                f"shape {self.code_shape_}).")
        out = self._run(codes, "decode", self.image_shape_)
        return out * codes.dtype.type(self.intensity_scale_)

    def inverse_transform(self, X):
        """Deprecated: use :meth:`decode` (codes from :meth:`encode`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_codes)
            Codes as :meth:`decode` takes them.

        Returns
        -------
        intensity : ndarray of shape (n_samples, n_features)
            ``decode(X)``, after a ``FutureWarning``.
        """
        warnings.warn(
            "DCEAEstimator.inverse_transform is deprecated and will be removed: "
            "transform now restores; use decode for the codes of encode.",
            FutureWarning, stacklevel=2)
        return self.decode(X)

    def score(self, X, y=None):
        """Quality of the denoiser on ``X``, greater is better.

        With ``peak`` set, ``X`` holds clean images: Poisson noise is drawn
        at the training peak (seeded by ``random_state``, 0 when it is
        None), the result is restored, and the mean PSNR over the images
        (dB, peak signal ``Q * peak``, the maximum of the training images:
        1 for images in [0, 1]) is returned, as for the other restorers.
        With ``peak=None``, ``X`` holds counts and the score is minus the
        mean negative log-likelihood per pixel of ``X`` under the model's
        denoised mean.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, h, w)
        y : None
            Ignored.

        Returns
        -------
        float
        """
        from ..metrics import psnr

        rows, shape, _ = self._check_counts(X, reset=False)
        if self.peak_ is None:
            # minus the training loss, in float64
            mean = self._run(rows.astype(np.float64), "mean", shape)
            nll = ExponentialFamilyLoss(self.net_.module_.distribution)(
                torch.as_tensor(mean), torch.as_tensor(rows, dtype=torch.float64))
            return -float(nll)
        rng = check_random_state(0 if self.random_state is None else self.random_state)
        noisy = rng.poisson(rows / self.intensity_scale_).astype(rows.dtype)
        restored = self._run(noisy, "mean", shape) * self.intensity_scale_
        return float(np.mean(psnr(rows, restored, per_image=True,
                                  data_range=self.intensity_scale_ * self.peak_)))


def _error(module, inputs, targets, criterion):
    """The criterion of ``module`` on the rows (inf when not finite)."""
    device = next(module.parameters()).device
    inputs, targets = torch.as_tensor(inputs), torch.as_tensor(targets)
    total = 0.0
    with torch.no_grad():
        for chunk in row_chunks(len(inputs), device, cpu_size=32):
            out = module(inputs[chunk].to(device))
            total += float(criterion(out, targets[chunk].to(device)))
    return total if np.isfinite(total) else np.inf


def model_based_denoise(counts, filters, alpha, *, stride=4, n_iter=15):
    """DCEA's model-based twin: Poisson proximal gradient with a fixed
    filter bank.

    The codes of ``log mu = b + H s`` (``b``: the local level DCEA uses,
    :func:`~sklearn_mbdl.solvers.natural_offset` with its window ``H``: the
    convolution with ``filters``) after ``n_iter`` steps of
    :func:`~sklearn_mbdl.solvers.poisson_proximal_gradient` with l1 weight
    ``alpha``, and the intensity they give: the model-based algorithm DCEA
    unrolls, with nothing learned. With a fitted estimator's
    ``initial_components_``, ``stride`` and ``n_layers`` it is the twin the
    learned model is measured against.

    Parameters
    ----------
    counts : ndarray of shape (n_images, h, w)
        Photon counts.
    filters : ndarray of shape (n_kernels, k, k)
        The filter bank (e.g. ``DCEAEstimator.initial_components_``).
    alpha : float
        Weight of the l1 penalty on the codes.
    stride : int, default=4
        Stride of the convolution, as the estimator's.
    n_iter : int, default=15
        Proximal-gradient steps.

    Returns
    -------
    intensity : ndarray of shape (n_images, h, w)
        The denoised intensity, in counts.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mbdl.dcea import model_based_denoise
    >>> rng = np.random.RandomState(0)
    >>> counts = rng.poisson(4.0, size=(2, 32, 32)).astype(float)
    >>> filters = rng.standard_normal((8, 5, 5)) / 5
    >>> intensity = model_based_denoise(counts, filters, alpha=2.0)
    >>> intensity.shape, bool(abs(intensity.mean() / counts.mean() - 1) < 0.1)
    ((2, 32, 32), True)
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 3:
        raise ValueError(f"counts must have shape (n_images, h, w), got {counts.shape}.")
    if not np.all(np.isfinite(counts)) or counts.min() < 0:
        raise ValueError("counts must be finite and non-negative.")
    filters = np.asarray(filters, dtype=np.float64)
    if filters.ndim != 3:
        raise ValueError(f"filters must have shape (n_kernels, k, k), got {filters.shape}.")
    check_number(alpha, "alpha", min_val=0)
    check_number(stride, "stride", min_val=1, integer=True)
    check_number(n_iter, "n_iter", min_val=1, integer=True)
    x = torch.as_tensor(counts)[:, None]
    H = ConvolutionOperator(torch.as_tensor(filters), counts.shape[1:], stride)
    offset = natural_offset(x, window=OFFSET_WINDOW)
    codes, _ = poisson_proximal_gradient(x, H, alpha, max_iter=n_iter, tol=0.0,
                                         offset=offset)
    return inverse_link(H(codes) + offset).numpy()[:, 0]
