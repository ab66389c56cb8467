"""Plug-and-play image restoration: a splitting solver (ADMM, HQS, proximal
gradient) whose prior step is a denoiser, learned from clean images
(Venkatakrishnan, Bouman & Wohlberg 2013; Zhang et al. 2021, DPIR).
"""

import functools
import numbers
import warnings

import numpy as np
import torch
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNetRegressor
from skorch.utils import to_tensor as _skorch_tensor
from torch import nn

from ._base import (
    RestorerMixin,
    SimulatedRows,
    TorchEstimator,
    check_bool,
    check_number,
    check_options,
    progress,
    resolve_device,
    seeded,
    to_numpy,
    to_tensor,
    warn_if_out_of_range,
)
from .denoisers import (
    PRETRAINED,
    CNNDenoiser,
    DenoisingCNN,
    SelfEnsemble,
    TVDenoiser,
    WaveletDenoiser,
    _shipped_weights,
)
from .operators import Identity
from .operators._observe import observe
from .solvers import admm, hqs, pgd
from .solvers._splitting import _change

__all__ = ["PnPRestorer"]

ALGORITHMS = {"admm": admm, "hqs": hqs, "pgd": pgd}
CLASSIC_DENOISERS = {"tv": TVDenoiser, "wavelet": WaveletDenoiser}
#: noise levels the CNN is trained on: uniform in [0, SIGMA_MAX]
SIGMA_MAX = 0.2
#: the training loss weighs a sample at noise level s by
#: (LEVEL_REF^2 + LEVEL_FLOOR^2) / (s^2 + LEVEL_FLOOR^2)
LEVEL_FLOOR = 0.01
LEVEL_REF = 0.1


class LevelWeightedMSE(nn.Module):
    """Mean squared error with each sample weighted by the inverse of its
    noise variance (floored at ``LEVEL_FLOOR``).

    A plain MSE over noise levels drawn in [0, 0.2] is ruled by the noisiest
    samples, whose errors are largest, and leaves the low levels, which the
    last steps of plug-and-play solvers use, nearly untrained. Dividing by
    ``s^2 + LEVEL_FLOOR^2`` makes each level count by its relative error,
    as a PSNR does; ``LEVEL_REF`` only sets the scale (a weight of about 1
    at ``s = 0.1``).
    """

    def forward(self, y_pred, y_true, sigma):
        """The weighted loss of a batch: ``y_pred``, ``y_true`` of shape
        ``(n, ...)``, ``sigma`` the ``n`` noise levels."""
        per_sample = ((y_pred - y_true) ** 2).reshape(len(y_pred), -1).mean(dim=1)
        weight = (LEVEL_REF ** 2 + LEVEL_FLOOR ** 2) / (sigma ** 2 + LEVEL_FLOOR ** 2)
        return (weight * per_sample).mean()


class _DenoiserNet(NeuralNetRegressor):
    """skorch's regressor whose loss reads each sample's noise level from
    the input's second channel (:class:`LevelWeightedMSE`)."""

    def get_loss(self, y_pred, y_true, X=None, training=False):
        X = _skorch_tensor(X, device=self.device)
        # the level map is constant over each image: its first pixel
        return self.criterion_(y_pred, _skorch_tensor(y_true, device=self.device),
                               X[:, 1, 0, 0])


def _simulate_noisy(rng, n_samples, *, clean, sigma_max):
    """Training pairs for the denoiser: random clean images (flipped and,
    when square, rotated at random), Gaussian noise of a random level in
    ``[0, sigma_max]``; the input carries the level as a second channel."""
    which = rng.randint(len(clean), size=n_samples)
    images = clean[which].copy()
    flip = rng.rand(n_samples) < 0.5
    images[flip] = images[flip, :, ::-1]
    flip = rng.rand(n_samples) < 0.5
    images[flip] = images[flip, ::-1, :]
    if images.shape[1] == images.shape[2]:
        turn = rng.rand(n_samples) < 0.5
        images[turn] = images[turn].transpose(0, 2, 1)
    sigma = sigma_max * rng.rand(n_samples, 1, 1)
    noisy = images + sigma * rng.standard_normal(images.shape)
    X = np.stack([noisy, np.broadcast_to(sigma, images.shape)], axis=1)
    return X.astype(np.float32), images.astype(np.float32)


class PnPRestorer(RestorerMixin, TorchEstimator):
    """Plug-and-play restoration of images seen through a linear operator.

    Restores ``x`` from observations ``y = A x + noise_level * N(0, I)`` by a
    splitting solver (:func:`~sklearn_mbdl.solvers.admm`,
    :func:`~sklearn_mbdl.solvers.hqs` or :func:`~sklearn_mbdl.solvers.pgd`)
    that alternates the operator's data step with a denoiser, the prior step.
    The denoiser is a small CNN conditioned on the noise level
    (:class:`~sklearn_mbdl.denoisers.DenoisingCNN`): by default the network
    shipped with the package, which ``fit`` fine-tunes on the user's clean
    example images and keeps only if it then denoises held-out images
    better; ``"tv"`` and ``"wavelet"`` give the classic regularised solvers
    with the very same loop. Images are expected in [0, 1] (a warning says
    when they lie far outside).

    The denoiser does not depend on the operator: one ``fit`` serves every
    operator and noise level (``set_params(operator=...)`` needs no refit).

    Parameters
    ----------
    operator : ImageOperator or None, default=None
        The forward model, from :mod:`sklearn_mbdl.operators` (blur, mask,
        subsampled Fourier, decimation...). ``None`` means denoising: the
        observation is the noisy image and ``transform`` applies the
        denoiser once at ``noise_level``.
    denoiser : {"cnn", "tv", "wavelet"} or callable, default="cnn"
        The prior step: the learned CNN, the TV proximal map
        (:class:`~sklearn_mbdl.denoisers.TVDenoiser`), wavelet soft
        thresholding (:class:`~sklearn_mbdl.denoisers.WaveletDenoiser`), or
        any callable ``(x, sigma) -> x`` on ``(n, h, w)`` tensors.
    self_ensemble : bool, default=False
        Average the denoiser over the eight flips and quarter turns of its
        input (:class:`~sklearn_mbdl.denoisers.SelfEnsemble`): eight times
        the cost of each prior step. With the shipped CNN, HQS deblurring
        gains 0.09 / 0.05 dB on the benchmark's test pictures (noise 0.03 /
        0.01) and ADMM 0.4 dB on small 48 x 48 patches. Changes nothing but the cost for an
        equivariant denoiser.
    pretrained : bool, default=True
        With ``denoiser="cnn"``, ``fit`` starts from the shipped network
        (:func:`~sklearn_mbdl.denoisers.load_pretrained`) and fine-tunes it
        on ``X`` for ``max_epochs``, keeping the epoch that denoises the
        held-out images best (``validation_fraction``), and keeps the
        fine-tuned network only if it beats the shipped one there (else the
        shipped one, with a warning). False trains from random weights,
        which needs many images and time (the shipped network saw 16,000
        patches for 48 minutes). Ignored by the other denoisers.
    algorithm : {"admm", "hqs", "pgd"}, default="admm"
    n_iter : int, default=30
        Iterations of the solver.
    rho : float, default=None
        Penalty of the data step; smaller values regularise more. None
        takes the solver's own default: 0.02 for ADMM, 0.23 for HQS
        (DPIR's), 1.0 for PGD; a value good for one algorithm can ruin
        another (HQS with the CNN at 0.02 loses 14 dB). ADMM and PGD
        (which steps ``1/L``) run the denoiser at level
        ``noise_level / sqrt(rho)``. HQS follows DPIR's schedule: the
        denoiser level decreases from 0.2 to ``noise_level`` and ``rho`` is
        the last data step's penalty (DPIR's ``lambda``, 0.23 there). The
        benchmark's best values for the CNN with ADMM lie between 0.006 and
        0.025 (deblurring, MRI); tune it with ``score`` and ``GridSearchCV``.
    noise_level : float, default=0.01
        Standard deviation of the observation noise (images in [0, 1]).
    image_shape : tuple of int (h, w), optional
        Shape of the images when rows are flattened. With ``None``: the
        shape of 3-D input, else the shape the operator fixes (its mask),
        else each row is a 1-D signal, an image of shape ``(1, n_features)``.
    max_epochs : int, default=20
        Training epochs of the CNN; each epoch draws fresh noise for every
        training image.
    lr : float, default=None
        Adam learning rate (cosine schedule to 0); None takes 3e-4 when
        fine-tuning the shipped network, 1e-3 when training from scratch.
    batch_size : int, default=32
        Training mini-batch; inference also runs in chunks of it.
    validation_fraction : float, default=0.1
        With ``pretrained=True``, the share of the images of ``X`` held
        out (at least 2 images) to pick the best epoch and to decide between
        the fine-tuned and the shipped network, on a fixed draw of noise
        levels in [0, 0.2]. Without enough images, the training images
        decide, with a fixed draw of noise.
    device : {"cpu", "cuda", "auto", "accelerate"}, default="cpu"
        ``"accelerate"`` trains through HF accelerate (data-parallel
        under ``accelerate launch``, see :ref:`scaling`).
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the training noise and ``score``'s noise.
    verbose : int, default=0
        1 prints skorch's epoch table and a progress bar while the CNN
        trains, and a progress bar over the solver's iterations in
        ``transform``.

    Attributes
    ----------
    net_ : skorch.NeuralNetRegressor or None
        The trained denoiser's net (``net_.module_`` is the
        :class:`~sklearn_mbdl.denoisers.DenoisingCNN`); None when nothing is
        learned.
    image_shape_ : tuple of int
        The shape of the images ``fit`` saw.
    fine_tuned_ : bool
        With ``pretrained=True``: whether the fine-tuned network was kept
        (False: it did not beat the shipped one, which is used).
    n_features_in_ : int
        Pixels per image.
    device_ : str

    See Also
    --------
    sklearn_mbdl.solvers.admm, sklearn_mbdl.solvers.hqs,
    sklearn_mbdl.solvers.pgd, sklearn_mbdl.denoisers

    Examples
    --------
    >>> from sklearn_mbdl import PnPRestorer
    >>> from sklearn_mbdl.datasets import make_degraded_images
    >>> from sklearn_mbdl.operators import GaussianBlur
    >>> A = GaussianBlur(1.0, 7)
    >>> Y, X = make_degraded_images(A, 4, patch_size=32, noise_level=0.01,
    ...                             random_state=0)
    >>> restorer = PnPRestorer(A, denoiser="tv", rho=0.1).fit(X)
    >>> restorer.transform(Y).shape
    (4, 32, 32)
    >>> bool(restorer.score(X) > 20)
    True
    """

    def __init__(self, operator=None, *, denoiser="cnn", self_ensemble=False,
                 pretrained=True, algorithm="admm", n_iter=30, rho=None,
                 noise_level=0.01, image_shape=None, max_epochs=20, lr=None,
                 batch_size=32, validation_fraction=0.1, device="cpu",
                 random_state=None, verbose=0):
        self.operator = operator
        self.denoiser = denoiser
        self.self_ensemble = self_ensemble
        self.pretrained = pretrained
        self.algorithm = algorithm
        self.n_iter = n_iter
        self.rho = rho
        self.noise_level = noise_level
        self.image_shape = image_shape
        self.max_epochs = max_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ----- parameters ----------------------------------------------------------
    def _check_params(self):
        check_options(self.algorithm, "algorithm", ALGORITHMS)
        check_bool(self.self_ensemble, "self_ensemble")
        check_bool(self.pretrained, "pretrained")
        if not callable(self.denoiser):
            check_options(self.denoiser, "denoiser", {"cnn", *CLASSIC_DENOISERS})
        check_number(self.n_iter, "n_iter", min_val=1, integer=True)
        if self.rho is not None:
            check_number(self.rho, "rho", min_val=0, include_min=False)
        check_number(self.noise_level, "noise_level", min_val=0)
        check_number(self.max_epochs, "max_epochs", min_val=1, integer=True)
        if self.lr is not None:
            check_number(self.lr, "lr", min_val=0, include_min=False)
        check_number(self.batch_size, "batch_size", min_val=1, integer=True)
        check_number(self.validation_fraction, "validation_fraction",
                     min_val=0, max_val=0.5)
        operator = self._operator()
        for name in ("forward", "adjoint"):
            if not callable(getattr(operator, name, None)):
                raise ValueError(
                    f"operator must be None or an operator with forward and "
                    f"adjoint methods (see sklearn_mbdl.operators), got "
                    f"{self.operator!r}."
                )
        if self.image_shape is not None:
            shape = self.image_shape
            if (not isinstance(shape, (tuple, list)) or len(shape) != 2
                    or not all(isinstance(s, numbers.Integral) and s >= 1
                               for s in shape)):
                raise ValueError(
                    f"image_shape must be None or a pair of positive integers, "
                    f"got {shape!r}."
                )

    def _operator(self):
        return Identity() if self.operator is None else self.operator

    def _resolve_shape(self, n_features, given=None):
        """The image shape of rows of ``n_features`` pixels."""
        if self.image_shape is not None:
            shape = tuple(int(s) for s in self.image_shape)
        elif given is not None:
            shape = tuple(given)
        else:
            fixed = getattr(self._operator(), "image_shape", None)
            if fixed is not None and int(np.prod(fixed)) == n_features:
                shape = tuple(int(s) for s in fixed)
            else:
                shape = (1, n_features)
        if int(np.prod(shape)) != n_features:
            raise ValueError(
                f"image_shape={shape} has {int(np.prod(shape))} pixels but X has "
                f"{n_features} features."
            )
        return shape

    def _observation_shape(self, image_shape):
        operator = self._operator()
        check = getattr(operator, "check_image_shape", None)
        if check is not None:
            check(image_shape)
        shape_of = getattr(operator, "observation_shape", None)
        return tuple(shape_of(image_shape)) if shape_of else tuple(image_shape)

    # ----- fit ----------------------------------------------------------------
    def fit(self, X, y=None):
        """Learn the denoiser from clean example images.

        Nothing is learned for ``denoiser="tv"``, ``"wavelet"`` or a callable
        (``fit`` only records the image shape). For ``"cnn"`` the network is
        trained through skorch to remove Gaussian noise of levels drawn
        uniformly in [0, 0.2] from the images of ``X`` (flipped and rotated
        at random, fresh noise every epoch), each image's squared error
        divided by its noise variance (:class:`LevelWeightedMSE`). Small patches (e.g. 40 x 40
        from :func:`~sklearn_mbdl.datasets.extract_patches`) train fastest.

        Parameters
        ----------
        X : array-like of shape (n_samples, h * w) or (n_samples, h, w)
            Clean images, values in [0, 1].
        y : None
            Ignored.

        Returns
        -------
        self : PnPRestorer
        """
        self._check_params()
        X, shape = self._validate_images(X, reset=True)
        self._observation_shape(shape)  # the operator accepts these images
        self._setup_fit()
        self.image_shape_ = shape
        self.net_ = None
        if self.denoiser != "cnn":
            return self
        clean = X.reshape(-1, *shape).astype(np.float32)
        fine_tune = bool(self.pretrained)
        if fine_tune:
            train, valid = self._holdout(len(clean), self.validation_fraction,
                                         min_rows=2)
        else:
            train, valid = np.arange(len(clean)), np.arange(0)
        simulate = functools.partial(_simulate_noisy, clean=clean[train],
                                     sigma_max=SIGMA_MAX)
        X_fit = np.empty((train.size, 2, *shape), dtype=np.float32)
        y_fit = np.empty((train.size, *shape), dtype=np.float32)
        X_fit[:], y_fit[:] = simulate(np.random.RandomState(self._seed), train.size)
        # a fixed draw of noisy held-out images (the training images when
        # too few): it picks the best epoch and decides between the
        # fine-tuned and the shipped network
        check = clean[valid] if valid.size else clean
        X_check, y_check = _simulate_noisy(
            np.random.RandomState(self._seed + 1), max(4 * len(check), 32),
            clean=check, sigma_max=SIGMA_MAX)
        callbacks = [("simulate", SimulatedRows(simulate, X_fit, y_fit, 0, self._seed))]
        lr = self.lr if self.lr is not None else (3e-4 if fine_tune else 1e-3)
        with seeded(self._seed, self.device_):
            self.net_ = self._make_net(
                DenoisingCNN, criterion=LevelWeightedMSE, net_class=_DenoiserNet,
                callbacks=callbacks, warm_start=fine_tune, lr=lr,
                valid=(X_check, y_check) if valid.size else None,
                patience=self.max_epochs,
                label=("fine-tuning the shipped CNN prior" if fine_tune
                       else "training the CNN prior from scratch"))
            if fine_tune:  # fit continues from the shipped weights
                self.net_.initialize()
                self.net_.module_.load_state_dict(_shipped_weights(PRETRAINED))
            self._train(self.net_, X_fit, y_fit)
        self.fine_tuned_ = False
        if fine_tune:
            start = {k: v.to(self._inference_device())
                     for k, v in _shipped_weights(PRETRAINED).items()}
            self.fine_tuned_, tuned, shipped = self._keep_better_of(
                start, lambda: self._denoising_error(X_check, y_check))
            if not self.fine_tuned_:
                warnings.warn(
                    f"PnPRestorer: fine-tuning did not beat the shipped CNN prior on "
                    f"{'held-out' if valid.size else 'the training'} images "
                    f"(weighted denoising error {tuned:.4g} against {shipped:.4g}); "
                    "keeping the shipped prior. Try more images, more epochs or a "
                    "smaller lr.", UserWarning)
        return self

    def _denoising_error(self, X, y):
        """The training loss (:class:`LevelWeightedMSE`) of the current
        network on fixed noisy pairs, in eval mode."""
        module = self.net_.module_
        device = self._inference_device()
        loss, total = LevelWeightedMSE(), 0.0
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(X), self.batch_size):
                    xb = torch.as_tensor(X[start:start + self.batch_size], device=device)
                    yb = torch.as_tensor(y[start:start + self.batch_size], device=device)
                    total += float(loss(module(xb), yb, xb[:, 1, 0, 0])) * len(xb)
        finally:
            module.train(was_training)
        return total / len(X)

    def _validate_images(self, X, *, reset):
        """Rows of clean images (2-D) or a stack of images (3-D); after fit,
        a stack may have any image size (the denoiser is convolutional)."""
        if hasattr(X, "ndim") and X.ndim == 3:
            given = tuple(X.shape[1:])
            rows = np.asarray(X).reshape(len(X), -1)
            if reset:
                X = self._validate_X(rows, reset=True)
                shape = self._resolve_shape(X.shape[1], given)
            else:
                check_is_fitted(self)
                X, shape = check_array(rows, dtype=(np.float64, np.float32),
                                       ensure_all_finite=True), given
        else:
            X = self._validate_X(X, reset=reset)
            shape = self._resolve_shape(X.shape[1]) if reset else self.image_shape_
        warn_if_out_of_range(X, "X (clean images)", self)
        return X, shape

    # ----- transform -------------------------------------------------------------
    def _denoiser(self):
        denoise = self._base_denoiser()
        return SelfEnsemble(denoise) if self.self_ensemble else denoise

    def _base_denoiser(self):
        if callable(self.denoiser):
            return self.denoiser
        if self.denoiser in CLASSIC_DENOISERS:
            return CLASSIC_DENOISERS[self.denoiser]()
        if getattr(self, "net_", None) is None:
            raise ValueError(
                "denoiser='cnn' needs a trained network, but this PnPRestorer "
                "was fitted with another denoiser: call fit again."
            )
        return CNNDenoiser(self.net_.module_, batch_size=self.batch_size)

    def _validate_observations(self, Y):
        """Observations as ``(n, *observation_shape)`` and the image shape:
        image-shaped input may have any size the operator accepts; rows
        are images of the fitted shape."""
        check_is_fitted(self)
        self._check_params()
        operator = self._operator()
        layout_images = hasattr(Y, "ndim") and Y.ndim >= 3
        if layout_images:
            shape_for = getattr(operator, "image_shape_for", None)
            image_shape = (shape_for(Y.shape[1:]) if shape_for
                           else tuple(Y.shape[-2:]))
            obs_shape = self._observation_shape(image_shape)
            if tuple(Y.shape[1:]) != obs_shape:
                raise ValueError(
                    f"Y has observations of shape {tuple(Y.shape[1:])} but the "
                    f"operator {operator!r} gives observations of shape "
                    f"{obs_shape} for images of shape {image_shape}."
                )
            Y_arr = np.asarray(Y).reshape(len(Y), -1)
        else:
            image_shape = self.image_shape_
            obs_shape = self._observation_shape(image_shape)
            Y_arr = Y
        Y_arr = check_array(Y_arr, dtype=(np.float64, np.float32),
                            ensure_all_finite=True, input_name="Y")
        if obs_shape == tuple(image_shape):  # observations in the image domain
            warn_if_out_of_range(Y_arr, "X (observed images)", self)
        size = int(np.prod(obs_shape))
        if Y_arr.shape[1] != size:
            raise ValueError(
                f"X has {Y_arr.shape[1]} features, but PnPRestorer is expecting "
                f"{size} features as input (observations of shape {obs_shape} "
                f"of images of shape {image_shape})."
            )
        return Y_arr.reshape(len(Y_arr), *obs_shape), image_shape, layout_images

    def _restore(self, Y, image_shape, *, reference=None, callback=None):
        """Restore validated observations ``(n, *obs_shape)``; returns the
        images ``(n, h, w)`` and the history dict."""
        dtype = torch.float64 if Y.dtype == np.float64 else torch.float32
        device = resolve_device(getattr(self, "device_", self.device))
        if self.net_ is not None:
            device = str(self._inference_device())
        operator = self._operator()
        denoise = self._denoiser()
        y = to_tensor(Y, device, dtype=dtype)
        ref = None if reference is None else to_tensor(
            np.asarray(reference, dtype=Y.dtype).reshape(len(Y), *image_shape),
            device, dtype=dtype)
        nmse = []
        bar = progress(total=1 if self.operator is None else int(self.n_iter),
                       verbose=self.verbose, unit="iteration",
                       desc=f"PnPRestorer: {self.algorithm.upper()} on {len(Y)} images")

        def track(k, x):
            bar.update(1)
            if ref is not None:
                err = ((x - ref) ** 2).reshape(len(x), -1).sum(1)
                nmse.append(10 * torch.log10(
                    err.sum() / (ref ** 2).sum().clamp(min=1e-300)))
            if callback is not None:
                callback(k, to_numpy(x, Y.dtype))

        with torch.no_grad():
            if self.operator is None:
                x = denoise(y, float(self.noise_level))
                changes = _change(x, y)[None]
                track(0, x)
            else:
                solver = ALGORITHMS[self.algorithm]
                # rho=None: the solver's own default
                rho = {} if self.rho is None else {"rho": float(self.rho)}
                x, changes = solver(y, operator, denoise, **rho,
                                    noise_level=float(self.noise_level),
                                    n_iter=int(self.n_iter), callback=track)
        bar.close()
        history = {"change": to_numpy(changes.max(dim=1).values, np.float64)}
        if ref is not None:
            history["nmse_db"] = np.array([float(v) for v in nmse])
        return to_numpy(x, Y.dtype), history

    def transform(self, X, *, return_history=False, reference=None, callback=None):
        """Restore images from their observations.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_observed) or (n_samples, ...)
            Observations ``A x + noise`` (the operator's
            ``observation_shape``, e.g. ``(h, w)`` for a blur,
            ``(2, h, w)`` for subsampled Fourier data).
        return_history : bool, default=False
            Also return a dict: ``"change"``, the largest relative change of
            an image per iteration, and, with ``reference``, ``"nmse_db"``,
            the NMSE (dB) of the whole batch against it per iteration.
        reference : array-like of images, optional
            Ground truth for the NMSE history (convergence plots).
        callback : callable, optional
            Called as ``callback(k, images)`` after each iteration with the
            current estimate as a numpy array ``(n, h, w)``.

        Returns
        -------
        images : ndarray of shape (n_samples, h * w) or (n_samples, h, w)
            Flattened rows for 2-D input, images for image-shaped input; in
            the dtype of ``X``.
        history : dict
            Only with ``return_history=True``.
        """
        Y, image_shape, as_images = self._validate_observations(X)
        images, history = self._restore(Y, image_shape, reference=reference,
                                        callback=callback)
        out = images if as_images else images.reshape(len(images), -1)
        return (out, history) if return_history else out

    def simulate(self, X, random_state=None):
        """Observations of clean images: ``A x + noise_level * N(0, I)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, h * w) or (n_samples, h, w)
        random_state : int, RandomState instance or None
            Seed of the noise (the estimator's ``random_state`` by default).

        Returns
        -------
        ndarray of shape (n_samples, ...)
            The operator's ``observation_shape`` for each image.
        """
        X, shape = self._validate_images(X, reset=False)
        self._check_params()
        self._observation_shape(shape)
        rng = check_random_state(self.random_state if random_state is None
                                 else random_state)
        Y = observe(self._operator(), X.reshape(-1, *shape), self.noise_level, rng)
        return Y.astype(X.dtype)
