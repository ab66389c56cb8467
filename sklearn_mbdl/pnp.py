"""Plug-and-play image restoration: a splitting solver (ADMM, HQS, proximal
gradient) whose prior step is a denoiser, learned from clean images
(Venkatakrishnan, Bouman & Wohlberg 2013; Zhang et al. 2021, DPIR).
"""

import functools
from numbers import Integral, Real

import numpy as np
import torch
from scipy import sparse
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNetRegressor
from skorch.utils import to_tensor as _skorch_tensor
from torch import nn

from ._base import (
    IMAGE_SHAPE_CONSTRAINT,
    HasMethods,
    Interval,
    RestorerMixin,
    StrOptions,
    TorchEstimator,
    TrainingProblem,
    check_images,
    progress,
    random_symmetries,
    resolve_device,
    to_numpy,
    to_tensor,
    torch_dtype,
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
    """Training pairs for the denoiser: random clean images under random
    symmetries of the grid, Gaussian noise of a random level in
    ``[0, sigma_max]``; the input carries the level as a second channel."""
    images = random_symmetries(rng, clean[rng.randint(len(clean), size=n_samples)])
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
        input (:class:`~sklearn_mbdl.denoisers.SelfEnsemble`), at eight
        times the cost of each prior step: the errors of a learned denoiser
        that is not equivariant partly average out; an equivariant denoiser
        gives the same result.
    pretrained : bool, default=True
        With ``denoiser="cnn"``, ``fit`` starts from the shipped network
        (:func:`~sklearn_mbdl.denoisers.load_pretrained`) and fine-tunes it
        on ``X`` for ``max_epochs``, keeping the epoch that denoises the
        held-out images best (``validation_fraction``), and keeps the
        fine-tuned network only if it beats the shipped one there (else the
        shipped one, with a warning). False trains from random weights,
        which needs many more images and epochs. Ignored by the other
        denoisers.
    algorithm : {"admm", "hqs", "pgd"}, default="admm"
    n_iter : int, default=30
        Iterations of the solver.
    rho : float, default=None
        Penalty of the data step; smaller values regularise more. None
        takes the solver's own default: 0.02 for ADMM, 0.23 for HQS
        (DPIR's), 1.0 for PGD; a value good for one algorithm can ruin
        another. ADMM and PGD (which steps ``1/L``) run the denoiser at
        level ``noise_level / sqrt(rho)``. HQS follows DPIR's schedule: the
        denoiser level decreases from 0.2 to ``noise_level`` and ``rho`` is
        the last data step's penalty (DPIR's ``lambda``). Tune it with
        ``score`` and ``GridSearchCV``.
    noise_level : float, default=0.01
        Standard deviation of the observation noise (images in [0, 1]).
    image_shape : tuple of int (h, w), optional
        Shape of the images when ``X`` holds flattened rows. With ``None``,
        flattened rows take the shape the operator fixes (its mask), and
        rows of fewer than 16 pixels are 1-D signals, images of shape
        ``(1, n_features)``; other flattened rows raise a ``ValueError``.
        It must agree with 3-D input ``(n, h, w)``, whose shape is used.
    max_epochs : int, default=20
        Training epochs of the CNN; each epoch draws fresh noise for every
        training image.
    lr : float, default=None
        Adam learning rate (cosine schedule to 0); None takes 3e-4 when
        fine-tuning the shipped network, 1e-3 when training from scratch.
    batch_size : int, default=32
        Training mini-batch; inference runs in chunks of it on a CPU.
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
        Whether ``fit`` fine-tuned the shipped network and kept the result
        (False: it did not beat the shipped one, which is used, or nothing
        was fine-tuned).
    kept_start_, trained_error_, start_error_ : bool, float, float
        With the CNN denoiser: whether the shipped network was kept over
        the fine-tuned one, and the held-out losses of the two (NaN when
        trained from scratch).
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

    _parameter_constraints = {
        "operator": [None, HasMethods(["forward", "adjoint"])],
        "denoiser": [StrOptions({"cnn", *CLASSIC_DENOISERS}), callable],
        "self_ensemble": ["boolean"],
        "pretrained": ["boolean"],
        "algorithm": [StrOptions(set(ALGORITHMS))],
        "n_iter": [Interval(Integral, 1, None, closed="left")],
        "rho": [Interval(Real, 0, None, closed="neither"), None],
        "noise_level": [Interval(Real, 0, None, closed="left")],
        "image_shape": IMAGE_SHAPE_CONSTRAINT,
        "lr": [Interval(Real, 0, None, closed="neither"), None],
    }

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
        super().__init__(max_epochs=max_epochs, lr=lr, batch_size=batch_size,
                         validation_fraction=validation_fraction, device=device,
                         random_state=random_state, verbose=verbose)

    def _operator(self):
        return Identity() if self.operator is None else self.operator

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
        uniformly in [0, 0.2] from the images of ``X`` (flipped and
        transposed at random, fresh noise every epoch), each image's squared
        error divided by its noise variance (:class:`LevelWeightedMSE`).
        Small patches (e.g. 40 x 40 from
        :func:`~sklearn_mbdl.datasets.extract_patches`) train fastest.

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
        self.net_, self.fine_tuned_ = None, False
        if self.denoiser != "cnn":
            return self
        clean = X.reshape(-1, *shape).astype(np.float32)
        fine_tune = bool(self.pretrained)
        if fine_tune:  # held-out images pick the best epoch and decide
            # between the fine-tuned and the shipped network
            train, valid = self._holdout(len(clean), self.validation_fraction,
                                         min_rows=2)
            checked = self._noisy_pairs(clean[valid] if valid.size else clean)
        else:
            train, valid, checked = np.arange(len(clean)), np.arange(0), None
        result = self._fit_network(TrainingProblem(
            DenoisingCNN, {}, n_simulated=train.size,
            simulate=functools.partial(_simulate_noisy, clean=clean[train],
                                       sigma_max=SIGMA_MAX),
            valid=checked if valid.size else None, check=checked,
            start=_shipped_weights(PRETRAINED) if fine_tune else None,
            start_name="the shipped CNN prior", keep_better=fine_tune,
            criterion=LevelWeightedMSE,
            net_kwargs=dict(net_class=_DenoiserNet, patience=self.max_epochs,
                            lr=self.lr or (3e-4 if fine_tune else 1e-3),
                            label=("fine-tuning the shipped CNN prior" if fine_tune
                                   else "training the CNN prior from scratch"))))
        self.fine_tuned_ = fine_tune and result.kept_trained
        return self

    def _noisy_pairs(self, clean):
        """A fixed draw of noisy versions of ``clean`` (every noise level of
        training): the held-out pairs of early stopping and keep-better."""
        return _simulate_noisy(np.random.RandomState(self._seed + 1),
                               max(4 * len(clean), 32), clean=clean,
                               sigma_max=SIGMA_MAX)

    def _validate_images(self, X, *, reset):
        """Clean images as rows and their shape (the input of ``fit``,
        ``score`` and ``simulate``); after ``fit``, an ``(n, h, w)`` stack
        may have any image size (the denoisers are convolutional)."""
        # an operator with a fixed mask gives the shape of flat rows
        fixed = getattr(self._operator(), "image_shape", None) if reset else None
        rows, shape, _ = check_images(self, X, reset=reset, any_size=True,
                                      images_only=True, default_shape=fixed)
        warn_if_out_of_range(rows, "X (clean images)", self)
        return rows, shape

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
        if not hasattr(Y, "shape") and not sparse.issparse(Y):
            Y = np.asarray(Y)
        layout_images = len(Y.shape) >= 3
        if layout_images:
            shape_for = getattr(operator, "image_shape_for", None)
            image_shape = (shape_for(Y.shape[1:]) if shape_for
                           else tuple(Y.shape[-2:]))
            obs_shape = self._observation_shape(image_shape)
            if tuple(Y.shape[1:]) != obs_shape:
                raise ValueError(
                    f"X has observations of shape {tuple(Y.shape[1:])} "
                    f"({Y.ndim - 1}-D) but the operator {operator!r} gives "
                    f"observations of shape {obs_shape} ({len(obs_shape)}-D) for "
                    f"images of shape {image_shape}."
                )
            Y_arr = np.asarray(Y).reshape(Y.shape[0], int(np.prod(obs_shape)))
        else:
            image_shape = self.image_shape_
            obs_shape = self._observation_shape(image_shape)
            Y_arr = Y
        Y_arr = check_array(Y_arr, dtype=(np.float64, np.float32),
                            ensure_all_finite=True, input_name="X")
        if obs_shape == tuple(image_shape):  # observations in the image domain
            warn_if_out_of_range(Y_arr, "X (observed images)", self)
        size = int(np.prod(obs_shape))
        if Y_arr.shape[1] != size:
            raise ValueError(
                f"X has {Y_arr.shape[1]} features, but PnPRestorer is expecting "
                f"{size} features as input (observations of shape {obs_shape} "
                f"of images of shape {image_shape})."
            )
        if not Y_arr.flags.writeable:
            Y_arr = Y_arr.copy()
        return Y_arr.reshape(len(Y_arr), *obs_shape), image_shape, layout_images

    def _restore(self, Y, image_shape, *, reference=None, callback=None):
        """Restore validated observations ``(n, *obs_shape)``; returns the
        images ``(n, h, w)`` and the history dict."""
        dtype = torch_dtype(Y)
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
