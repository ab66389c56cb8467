"""DCEAEstimator: the scikit-learn estimator around the DCEA module."""

import functools
import warnings

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._base import (
    SimulatedRows,
    TorchEstimator,
    check_bool,
    check_number,
    check_options,
    row_chunks,
    seeded,
    to_numpy,
    to_tensor,
)
from ..operators import ConvolutionOperator, code_shape
from ..solvers import DISTRIBUTIONS, inverse_link, natural_offset
from ._network import (
    _LOG_LR_FACTOR,
    DCEA,
    ExponentialFamilyLoss,
    _initial_filters,
    _poisson_pairs,
    _unit_filters,
)


# standard deviation (pixels, or samples for 1-D signals) of the Gaussian
# window of the local level b (see solvers.natural_offset). Fixed, not tied
# to the stride: on held-out crops of the training pictures
# (peak 1), the level alone scores 23.67 / 24.47 / 23.72 / 23.46 dB with
# windows 2 / 4 / 7 / 8, and trained networks follow it (stride 2 with 16
# filters and window 2: 23.66 dB; stride 2, 32 filters, window 4: 24.53;
# stride 7, 169 filters 11x11: 24.21 with window 7, 24.50 with 4). The
# codes carry the detail around this level.
OFFSET_WINDOW = 4.0


class DCEAEstimator(ClassNamePrefixFeaturesOutMixin, TransformerMixin, TorchEstimator):
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

    ``predict(X)`` takes noisy counts and returns the denoised intensity in
    the units of the training images (``Q * mu``; ``mu`` itself, in counts,
    when ``peak=None``).

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
        model-based solver (the untrained network): with ``peak``, half of
        its best l1 weight on training images with fresh noise, among
        multiples of the noise level of its first step (the standard
        deviation of ``H^T (x - f^{-1}(b))``); without, twice that level.
        (A fixed 0.1 is a fifth of that level at peak 1: every code fits the
        noise, and DCEA-C, which cannot detune its encoder as DCEA-UC
        does, stays there: 15.7 dB on 48x48 tiles against 22.2 dB for the
        level ``b`` alone.)
    peak : float, default=None
        Peak intensity (in counts) at which to simulate Poisson noise for
        supervised training; ``None`` trains unsupervised on the counts in
        ``X``. Only with ``distribution="poisson"``.
    image_shape : tuple of int (h, w), default=None
        Shape of the images flattened in the rows of ``X``. ``None``: rows
        are 1-D signals, denoised by 1-D convolutions (the same model with
        filters of length ``kernel_size``), unless ``X`` is given as a 3-D
        array ``(n_samples, h, w)``.
    max_epochs : int, default=20
        Training epochs.
    lr : float, default=3e-3
        Adam learning rate (annealed to 0 by a cosine schedule).
    batch_size : int, default=64
        Mini-batch size for training.
    device : {"cpu", "cuda", "auto", "accelerate"}, default="cpu"
        ``"accelerate"`` trains through HF accelerate (data-parallel
        under ``accelerate launch``, see :ref:`scaling`).
    random_state : int, RandomState instance or None, default=None
        Seeds the initial filters, the noise simulation and the shuffling.
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
    signal_shape_ : tuple of int
        ``(h, w)`` or ``(n_features,)``.
    code_shape_ : tuple of int
        Shape of one code map.
    intensity_scale_ : float
        ``Q = max(X) / peak`` (1 when ``peak=None``): ``predict`` returns
        ``Q * mu``.
    alpha_ : float
        The initial l1 weight (``alpha``, or the level ``"auto"`` found).
    step_ : float
        Learned step size.
    thresholds_ : ndarray of shape (n_kernels,)
        Learned threshold of each filter.
    kept_start_ : bool
        True when training ended worse than the untrained network (the
        model-based solver with the initial filters) on training images
        with fresh noise, and the untrained network was kept (with a
        warning).
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
    >>> dcea.predict(noisy).shape
    (40, 16, 16)
    >>> dcea.components_.shape
    (8, 7, 7)
    """

    def __init__(self, n_kernels=64, kernel_size=7, stride=4, n_layers=15, tied=True,
                 distribution="poisson", alpha="auto", peak=None, image_shape=None,
                 max_epochs=20, lr=3e-3, batch_size=64, device="cpu",
                 random_state=None, verbose=0):
        self.n_kernels = n_kernels
        self.kernel_size = kernel_size
        self.stride = stride
        self.n_layers = n_layers
        self.tied = tied
        self.distribution = distribution
        self.alpha = alpha
        self.peak = peak
        self.image_shape = image_shape
        self.max_epochs = max_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = self.distribution in ("poisson", "binomial")
        return tags

    # ----- validation -------------------------------------------------------
    def _check_params(self):
        check_number(self.n_kernels, "n_kernels", min_val=1, integer=True)
        check_number(self.kernel_size, "kernel_size", min_val=1, integer=True)
        check_number(self.stride, "stride", min_val=1, integer=True)
        check_number(self.n_layers, "n_layers", min_val=1, integer=True)
        check_options(self.distribution, "distribution", DISTRIBUTIONS)
        check_bool(self.tied, "tied")
        if not (isinstance(self.alpha, str) and self.alpha == "auto"):
            check_number(self.alpha, "alpha", min_val=0)
        check_number(self.max_epochs, "max_epochs", min_val=1, integer=True)
        check_number(self.lr, "lr", min_val=0, include_min=False)
        check_number(self.batch_size, "batch_size", min_val=1, integer=True)
        if self.peak is not None:
            check_number(self.peak, "peak", min_val=0, include_min=False)
            if self.distribution != "poisson":
                raise ValueError(
                    "peak simulates Poisson noise: it needs distribution='poisson', "
                    f"got distribution={self.distribution!r}."
                )
        if self.image_shape is not None:
            shape = self.image_shape
            if (not isinstance(shape, (tuple, list)) or len(shape) != 2
                    or not all(isinstance(n, (int, np.integer))
                               and not isinstance(n, bool) and n >= 1
                               for n in shape)):
                raise ValueError(
                    f"image_shape must be a pair of positive integers (h, w) or None, "
                    f"got {shape!r}."
                )

    def _check_X(self, X, *, reset):
        """Flatten (n, h, w) input, validate, and check the values.

        Returns the 2-D array and the image shape of a 3-D input (or None).
        """
        given_shape = None
        if getattr(X, "ndim", None) == 3:
            given_shape = tuple(int(n) for n in X.shape[1:])
            X = np.asarray(X).reshape(X.shape[0], -1)
        if not reset and given_shape is not None:
            check_is_fitted(self)
        if not reset and given_shape is not None and len(self.signal_shape_) == 2:
            # the network is convolutional: images of any size are denoised
            from sklearn.utils import check_array

            X = check_array(X, dtype=(np.float64, np.float32), ensure_all_finite=True)
        else:
            X = self._validate_X(X, reset=reset)
        if reset:
            if self.image_shape is not None:
                shape = tuple(int(n) for n in self.image_shape)
                if given_shape is not None and given_shape != shape:
                    raise ValueError(
                        f"X holds images of shape {given_shape} but "
                        f"image_shape={shape}."
                    )
                if shape[0] * shape[1] != X.shape[1]:
                    raise ValueError(
                        f"image_shape={shape} has {shape[0] * shape[1]} pixels but X "
                        f"has {X.shape[1]} features per row."
                    )
                self.signal_shape_ = shape
            else:
                self.signal_shape_ = given_shape or (X.shape[1],)
        elif given_shape is not None and len(self.signal_shape_) == 1:
            raise ValueError(
                f"X holds images of shape {given_shape}; the estimator was fitted "
                f"on 1-D signals of length {self.signal_shape_[0]}."
            )
        images = self.signal_shape_ if reset else given_shape
        if images is not None and len(images) == 2 and self.kernel_size > min(images):
            raise ValueError(
                f"kernel_size={self.kernel_size} is larger than the images {images}."
            )
        if self.distribution in ("poisson", "binomial") and X.min(initial=0) < 0:
            raise ValueError(
                f"Negative values in data passed to DCEAEstimator (minimum "
                f"{X.min():.3g}): DCEA with "
                f"distribution={self.distribution!r} needs non-negative counts "
                "or intensities."
            )
        if self.distribution == "binomial" and X.max(initial=0) > 1:
            raise ValueError(
                "distribution='binomial' needs X in [0, 1] (success fractions), "
                f"got a maximum of {X.max():.3g}."
            )
        return X, given_shape

    def _output_layout(self, out, given_shape):
        return out.reshape(out.shape[0], *given_shape) if given_shape else out

    # ----- fit --------------------------------------------------------------
    def _initial_step(self, filters, level):
        """``1 / (||H||^2 * curvature)``: the step of the model-based solver,
        with the Poisson curvature taken at the intensity ``level``."""
        # the norm of a convolution hardly depends on the signal size beyond
        # a few kernels: estimate it on a crop, for speed
        crop = tuple(min(n, 4 * self.kernel_size + 4 * self.stride)
                     for n in self.signal_shape_)
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
            len(rows), 1, *self.signal_shape_)
        operator = ConvolutionOperator(_unit_filters(torch.as_tensor(filters)),
                                       self.signal_shape_, self.stride)
        offset = natural_offset(x, self.distribution, window=OFFSET_WINDOW)
        gradient = operator.adjoint(x - inverse_link(offset, self.distribution))
        level = float(gradient.std()) if gradient.numel() > 1 else 0.0
        return level if np.isfinite(level) and level > 0 else 0.1

    def _auto_alpha(self, filters, X, X_fit, rng, module_args):
        """``alpha="auto"``: the start of training, from the model-based solver.

        Supervised: the l1 weight of the best untrained network (the solver
        with the initial filters) among multiples 1/2 to 16 of the noise
        level (:meth:`_noise_level`), on training images with fresh noise,
        halved: the best solver can switch nearly every code off (at peak 1
        it is the level ``b`` alone), a start the soft threshold passes no
        gradient out of; half of it is about the start the benchmark trains
        from (4 noise levels at peak 1, 1 at peak 4). Unsupervised: twice
        the noise level.
        """
        if self.peak is None:
            return 2.0 * self._noise_level(filters, X_fit, rng)
        inputs, targets, criterion = self._check_rows(X, n_max=32)
        noise = self._noise_level(filters, inputs.numpy(), rng)
        candidates = noise * np.array([0.5, 1.0, 2.0, 4.0, 8.0, 16.0])
        errors = [self._error(DCEA(**{**module_args, "alpha": float(a)}),
                              inputs, targets, criterion) for a in candidates]
        return float(candidates[int(np.argmin(errors))]) / 2

    def _check_rows(self, X, n_max):
        """Up to ``n_max`` training rows with a fresh, seeded noise draw, their
        targets and the criterion that scores a network on them."""
        rng = np.random.RandomState(self._seed + 1)
        rows = np.sort(rng.permutation(X.shape[0])[:n_max])
        if self.peak is not None:
            targets = X[rows] / self.intensity_scale_
            inputs = rng.poisson(targets).astype(np.float32)
            criterion = nn.MSELoss(reduction="sum")
        else:
            targets = inputs = X[rows].astype(np.float32)
            criterion = ExponentialFamilyLoss(self.distribution)
        return (torch.as_tensor(inputs, dtype=torch.float32),
                torch.as_tensor(targets, dtype=torch.float32), criterion)

    @staticmethod
    def _error(module, inputs, targets, criterion):
        """The criterion of ``module`` on the rows (inf when not finite)."""
        device = next(module.parameters()).device
        total = 0.0
        with torch.no_grad():
            for chunk in row_chunks(len(inputs), device, cpu_size=32):
                out = module(inputs[chunk].to(device))
                total += float(criterion(out, targets[chunk].to(device)))
        return total if np.isfinite(total) else np.inf

    def fit(self, X, y=None):
        """Train the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, h, w)
            With ``peak=None``: noisy counts (unsupervised). With ``peak``
            set: clean, non-negative images (Poisson noise is simulated).
        y : None
            Ignored.

        Returns
        -------
        self : DCEAEstimator
        """
        self._check_params()
        X, _ = self._check_X(X, reset=True)
        if self.peak is not None and not X.max() > 0:
            raise ValueError("X is all zeros: there is no image to scale to the peak.")
        self._setup_fit()
        self.code_shape_ = code_shape(self.signal_shape_, self.kernel_size, self.stride)
        rng = np.random.RandomState(self._seed)
        filters = _initial_filters(X, self.signal_shape_, self.n_kernels,
                                   self.kernel_size, rng)
        self.initial_components_ = filters.copy()
        callbacks = []
        if self.peak is not None:
            self.intensity_scale_ = float(X.max()) / float(self.peak)
            clean = X / self.intensity_scale_
            level = float(self.peak)
            flips = self.signal_shape_ if len(self.signal_shape_) == 2 else None
            X_fit = np.empty(X.shape, dtype=np.float32)
            y_fit = np.empty(X.shape, dtype=np.float32)
            simulate = functools.partial(_poisson_pairs, clean=clean, flips=flips)
            callbacks.append(("simulate", SimulatedRows(simulate, X_fit, y_fit, 0,
                                                        self._seed)))
            criterion, criterion_kw = nn.MSELoss, {}
        else:
            self.intensity_scale_ = 1.0
            # the Poisson curvature at the bright end of the data
            level = float(np.percentile(X, 99)) if X.size else 1.0
            X_fit = X.astype(np.float32)
            y_fit = X_fit
            criterion = ExponentialFamilyLoss
            criterion_kw = {"criterion__distribution": self.distribution}
        step = self._initial_step(filters, level)
        module_args = dict(
            filters=torch.as_tensor(filters, dtype=torch.float32),
            signal_shape=self.signal_shape_, stride=self.stride,
            n_layers=self.n_layers, alpha=self.alpha, step=step, tied=self.tied,
            distribution=self.distribution, learn_threshold=self.peak is not None,
            offset_window=OFFSET_WINDOW)
        if isinstance(self.alpha, str):
            module_args["alpha"] = self._auto_alpha(filters, X, X_fit, rng,
                                                    module_args)
        self.alpha_ = float(module_args["alpha"])
        if self.peak is not None and _LOG_LR_FACTOR != 1:
            criterion_kw["optimizer__param_groups"] = [
                ("log_*", {"lr": _LOG_LR_FACTOR * self.lr})]
        with seeded(self._seed, self.device_):
            self.net_ = self._make_net(
                DCEA, criterion=criterion, callbacks=callbacks,
                **criterion_kw,
                **{f"module__{k}": v for k, v in module_args.items()})
            self._train(self.net_, X_fit, y_fit)
        self._keep_better_than_start(DCEA(**module_args), X)
        module = self.net_.module_
        decoder, encoder = module.operators()
        self.components_ = to_numpy(decoder.filters, np.float64)
        self.encoder_components_ = to_numpy(encoder.filters, np.float64)
        self.step_ = float(module.step().detach())
        self.thresholds_ = to_numpy(module.thresholds().reshape(-1), np.float64)
        return self

    def _keep_better_than_start(self, start, X):
        """Never keep a network worse than the model-based solver it started as.

        The trained network and its start (``n_layers`` iterations of the
        solver with the initial filters and ``alpha``) are compared on up to
        128 training images with a fresh, seeded noise draw: squared error to
        the clean images (supervised) or the negative log-likelihood of the
        counts (unsupervised). A fit that ended worse, e.g. collapsed to the
        level ``b`` alone or diverged, is replaced by its start, with a
        warning.
        """
        inputs, targets, criterion = self._check_rows(X, n_max=128)

        def error():
            return self._error(self.net_.module_, inputs, targets, criterion)

        start_state = start.to(self._inference_device()).state_dict()
        kept, trained_error, start_error = self._keep_better_of(start_state, error)
        self.kept_start_ = not kept
        if not kept:
            name = "DCEA-C" if self.tied else "DCEA-UC"
            warnings.warn(
                f"DCEAEstimator ({name}): training ended worse than the "
                f"{self.n_layers}-iteration model-based solver it started from "
                f"(error {trained_error:.4g} against {start_error:.4g} on "
                f"{len(inputs)} training images with fresh noise); keeping the "
                "start. Try a smaller lr, a larger alpha or more epochs.",
                UserWarning,
            )

    # ----- inference --------------------------------------------------------
    def _run(self, X, output, signal_shape=None):
        """The module on validated rows, in their dtype, by chunks."""
        dtype = torch.float64 if X.dtype == np.float64 else torch.float32
        state = self._module_state(dtype)
        device = self._inference_device()
        size = max(1, 2 ** 16 // max(1, X.shape[1]))
        outputs = []
        with torch.no_grad():
            for rows in row_chunks(X.shape[0], device, cpu_size=size):
                x = to_tensor(X[rows], device, dtype=dtype)
                out = torch.func.functional_call(
                    self.net_.module_, state, (x,),
                    {"output": output, "signal_shape": signal_shape})
                outputs.append(to_numpy(out, X.dtype))
        return np.concatenate(outputs, axis=0)

    def _n_code_features(self):
        return (int(np.prod(self.signal_shape_))
                + self.n_kernels * int(np.prod(self.code_shape_)))

    @property
    def _n_features_out(self):
        # the columns of transform: get_feature_names_out names them
        return self._n_code_features()

    def predict(self, X):
        """Denoised intensity of noisy counts.

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
            (counts when ``peak=None``); in the dtype of ``X``.
        """
        check_is_fitted(self)
        X, given_shape = self._check_X(X, reset=False)
        out = self._run(X, "mean", given_shape)
        return self._output_layout(out * X.dtype.type(self.intensity_scale_),
                                   given_shape)

    def transform(self, X):
        """Sparse codes of noisy counts.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, h, w)

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
        """
        check_is_fitted(self)
        X, given_shape = self._check_X(X, reset=False)
        return self._run(X, "codes", given_shape)

    def inverse_transform(self, X):
        """Decode codes from :meth:`transform` into intensities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_codes)
            Codes as :meth:`transform` returns them (for images of the
            training shape).

        Returns
        -------
        intensity : ndarray of shape (n_samples, n_features)
            ``Q * f^{-1}(b + H s)``, rows flattened.
        """
        check_is_fitted(self)
        from sklearn.utils import check_array

        codes = check_array(X, dtype=(np.float64, np.float32), input_name="codes")
        if codes.shape[1] != self._n_code_features():
            raise ValueError(
                f"codes have {codes.shape[1]} columns; this estimator's have "
                f"{self._n_code_features()} ({int(np.prod(self.signal_shape_))} "
                f"offsets + {self.n_kernels} maps of "
                f"shape {self.code_shape_})."
            )
        return self._run(codes, "decode") * codes.dtype.type(self.intensity_scale_)

    def score(self, X, y=None):
        """Quality of the denoiser on ``X``, greater is better.

        With ``peak`` set, ``X`` holds clean images: Poisson noise is drawn
        at the training peak (seeded by ``random_state``), the result is
        denoised and the PSNR (dB, peak signal ``max(X_train)``) is returned.
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
        check_is_fitted(self)
        X, given_shape = self._check_X(X, reset=False)
        X = self._output_layout(X, given_shape)
        if self.peak is None:
            # minus the training loss, in float64
            mean = torch.as_tensor(self.predict(X), dtype=torch.float64)
            nll = ExponentialFamilyLoss(self.distribution)(
                mean, torch.as_tensor(X, dtype=torch.float64))
            return -float(nll)
        from ..metrics import psnr

        rng = np.random.RandomState(self._seed)
        noisy = rng.poisson(X / self.intensity_scale_).astype(X.dtype)
        denoised = self.predict(noisy)
        return psnr(X, denoised, data_range=self.intensity_scale_ * self.peak)
