"""BurstSuperResolver: the estimator around the unrolled network."""

import functools
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted

from .._base import (
    FLOAT_DTYPES,
    IMAGE_SHAPE_CONSTRAINT,
    Interval,
    RestorerMixin,
    StrOptions,
    TorchEstimator,
    TrainingProblem,
    check_images,
    check_number_or_range,
    random_symmetries,
    warn_if_out_of_range,
)
from ..operators import MOTION_MODELS, BurstOperator, decimation_factors
from ._motion import to_high_res
from ._network import BurstNet
from ._simulate import draw_bursts as _draw_bursts

__all__ = ["BurstSuperResolver"]

PRIORS = ("cnn", "tv")
# bursts that decide keep-better when no images are held out
N_CHECK = 64
# blurs tried across the ``blur_sigma`` range when it is estimated per burst
N_BLURS = 8
# above this noise level (images in [0, 1]) the frames' noise hides the blur:
# the cross-validation then prefers the smoothest predictions, i.e. the
# largest blurs (0.4-0.7 px picked for a 0.3 px camera at a level of
# 0.05-0.07, benchmarks/results/burst_notes.md), and the blur is assumed
BLUR_NOISE_LIMIT = 0.04


def _frame_shape(image_shape, scale):
    factors = decimation_factors(image_shape, scale)
    return tuple(-(-int(s) // f) for s, f in zip(image_shape, factors))


def _simulate_training(rng, n_samples, *, clean, **camera):
    """Training pairs: random clean images (flipped at random, transposed
    when square) and their bursts through random cameras."""
    which = rng.randint(len(clean), size=n_samples)
    images = random_symmetries(rng, clean[which].astype(np.float64))
    bursts, _ = _draw_bursts(rng, images, **camera)
    return bursts.astype(np.float32), images.astype(np.float32)


def _forward(module, state, bursts, kwargs):
    """The network's forward with the fitted state cast to the bursts' dtype."""
    return torch.func.functional_call(module, state, (bursts,), kwargs)


def _blur_margin(max_shift):
    """Border of the frames left out of the blur's cross-validation (the
    pixels a shift of up to ``max_shift`` may bring in from outside)."""
    return int(np.ceil(max_shift)) + 2


def _frame_folds(n_frames):
    """Two splits of a burst's frames, both keeping the reference frame 0:
    (frames restored from, frames predicted)."""
    others = list(range(1, n_frames))
    return (([0] + others[1::2], others[0::2]), ([0] + others[0::2], others[1::2]))


def _blur_errors(module, state, bursts, kwargs, blurs):
    """Cross-validation error of each candidate blur, per burst.

    For each blur (high-resolution pixels) and each split of the frames
    (:func:`_frame_folds`), the network restores the image from one part of
    the frames with that blur in its data step, and the formation model with
    the same blur predicts the other part, at the motions estimated on the
    whole burst; the error is the mean squared difference inside the frames
    (a margin of the largest shift left out). An overestimated blur rings
    and predicts the frames left out badly; on bursts with little noise
    the least error lies 0.2-0.3 low-resolution pixels below the right
    blur, so the choice errs low there.
    """
    _, motions = _forward(module, state, bursts, kwargs)
    shape = kwargs["image_shape"]
    margin = _blur_margin(module.max_shift)
    h, w = bursts.shape[-2:]
    inside = (slice(None), slice(None), slice(margin, h - margin), slice(margin, w - margin))
    # the left-out frames' motions at high resolution, per split (the same
    # for every blur)
    folds = [(keep, predict, to_high_res(motions[:, predict], model=module.motion,
                                         scale=module.scale, image_shape=shape))
             for keep, predict in _frame_folds(bursts.shape[1])]
    errors = bursts.new_zeros((len(bursts), len(blurs)))
    for i, blur in enumerate(blurs):
        for keep, predict, params in folds:
            image, _ = _forward(module, state, bursts[:, keep],
                                {**kwargs, "blur_sigma": float(blur)})
            predicted = BurstOperator(params, scale=module.scale, blur_sigma=float(blur),
                                      model=module.motion, image_shape=shape)(image)
            residual = (predicted - bursts[:, predict])[inside]
            errors[:, i] += residual.pow(2).mean(dim=(1, 2, 3))
    return errors


def _restore_estimating_blur(module, state, bursts, kwargs, blurs):
    """Restore each burst with the candidate blur of least cross-validation
    error (the module's assumed blur for bursts noisier than
    ``BLUR_NOISE_LIMIT``); returns images, motions and the blurs used
    (high-resolution pixels)."""
    chosen = bursts.new_full((len(bursts),), module.blur_sigma)
    quiet = module._levels(bursts, kwargs["noise_level"]) <= BLUR_NOISE_LIMIT
    if bool(quiet.any()):
        errors = _blur_errors(module, state, bursts[quiet], kwargs, blurs)
        chosen[quiet] = blurs[errors.argmin(dim=1)]
    images = motions = None
    for blur in torch.unique(chosen):
        rows = chosen == blur
        x, m = _forward(module, state, bursts[rows], {**kwargs, "blur_sigma": float(blur)})
        if images is None:
            images = x.new_empty((len(bursts), *x.shape[1:]))
            motions = m.new_empty((len(bursts), *m.shape[1:]))
        images[rows], motions[rows] = x, m
    return images, motions, chosen


class BurstSuperResolver(RestorerMixin, TorchEstimator):
    """Super-resolution of bursts of shifted low-resolution frames, with
    motion estimation in the loop (Lecouat, Ponce & Mairal, 2021).

    A burst holds ``K`` frames of one scene, ``y_k = S B W_{p_k} x + e_k``:
    the high-resolution image ``x`` warped by an unknown motion ``p_k``
    (translation and rotation by default), blurred by the optics (a
    Gaussian), integrated over the sensor's ``scale x scale`` pixels (the
    pixel-centre grid of scikit-image and ``interpolate(align_corners=False)``,
    see :mod:`sklearn_mbdl.operators`), with shot and read noise. The
    restorer alternates a
    Lucas-Kanade (Gauss-Newton) step on the motions, a data step on ``x``
    (conjugate gradient on the quadratic splitting) and a prior step, unrolled
    ``n_iter`` times (:class:`~sklearn_mbdl.burst.BurstNet`):

    - ``prior="cnn"``: the prior step is a noise-level conditioned CNN,
      started from the denoiser shipped with the package and trained end to
      end with the step sizes;
    - ``prior="tv"``: the model-based twin, the TV proximal map; only its
      step sizes and TV weights are learned.

    ``fit`` needs clean high-resolution images only: the formation model
    simulates training bursts from them through random cameras (motions
    within ``max_shift`` and ``max_rotation``, optics blur within the
    ``blur_sigma`` range, shot and read noise within the ``shot_noise``
    range; fresh ones every epoch), so one fitted model serves cameras it
    never saw. At ``transform`` the noise level is estimated from each
    burst (:func:`~sklearn_mbdl.burst.estimate_noise_level`).

    Frames must be on the pixel-centre grid (frame pixel ``(i, j)`` the mean
    of the scene over high-resolution pixels ``scale * i ... scale * i +
    scale - 1``), with values in [0, 1] (a warning otherwise) and frame 0
    the reference the result is aligned with.

    Parameters
    ----------
    scale : int, default=2
        Super-resolution factor.
    n_frames : int, default=8
        Frames per burst: of the training bursts, and the least a burst given
        to ``transform`` must have.
    motion : {"euclidean", "translation", "affine"}, default="euclidean"
        Motion model (``"euclidean"``: translation and rotation).
    max_shift : float, default=4.0
        Largest translation between frames, in low-resolution pixels.
    max_rotation : float, default=2.0
        Largest rotation of the training bursts, in degrees
        (``motion="euclidean"``).
    blur_sigma : float or (float, float), default=(0.0, 0.7)
        Standard deviation of the optics' Gaussian blur, in low-resolution
        pixels (on top of the pixel integration): a range the training
        cameras are drawn from, or one value. With a range, ``transform``
        estimates each burst's blur within it (``estimate_blur``). A model
        fitted on a range restores the bursts of a camera whose blur is
        known with that blur set as one value after ``fit``
        (``set_params(blur_sigma=0.4)``).
    estimate_blur : bool, default=True
        With ``blur_sigma`` a range and bursts of 4 frames or more (frames
        of at least ``2 ceil(max_shift) + 8`` pixels a side),
        ``transform`` picks each burst's blur among 8 values across the
        range by cross-validation over its frames: the image restored from
        half of the frames with a candidate blur predicts the other half
        through the formation model with that blur (two splits, the
        reference frame in both); the blur that predicts them best is used.
        It costs about 20 restorations of half bursts per burst. Bursts
        whose noise level is above 0.04 (images in [0, 1]), where the noise
        hides the blur, and ``estimate_blur=False`` assume the point 30% of
        the way up the range (an overestimated blur rings, an
        underestimated one only loses sharpness).
    noise_level : "auto" or float, default="auto"
        Standard deviation of the noise (images in [0, 1]) that scales the
        step sizes: ``"auto"`` estimates it from each burst; a number fixes
        it (and adds Gaussian noise of that level to the training bursts).
        It may be changed after ``fit`` (``set_params``).
    shot_noise : float or (float, float), default=(1e-4, 1.2e-2)
        Shot-noise variance per unit of signal of the training cameras: a
        range drawn log-uniformly (read noise follows it as in Brooks et
        al., 2019), or one value (0: no shot or read noise).
    n_iter : int, default=4
        Unrolled iterations.
    n_cg : int, default=8
        Conjugate-gradient iterations of each data step when restoring
        (``transform``, ``score``); it may be changed after ``fit``. Training
        unrolls the network with 4 (``BurstNet``'s default), which its
        learned step sizes are fitted to, and costs far less; restoring with
        more brings each data step closer to its solution, which gains most
        on blurred bursts with little noise (16 against 8: +0.2 to +0.5 dB
        there, down to -0.6 dB under mid noise). More iterations also make
        the result depend on rounding (at 16 it differs between batches by
        up to 1e-5 on 128 x 128 bursts and 4e-3 on 16 x 16 images; 3e-14
        at 8).
    prior : {"cnn", "tv"}, default="cnn"
    image_shape : tuple of int (H, W), optional
        Shape of the high-resolution images when rows are flattened (not
        needed for ``(n_samples, H, W)`` input). 1-D signals are images of
        shape ``(1, n_features)``, decimated along their length: give that
        shape (rows shorter than 16 features are taken as such without it).
    max_epochs : int, default=3
        Training epochs (one fresh simulated burst per image per epoch). The
        network starts as a working restorer (the shipped denoiser and the
        half-quadratic schedule), so few epochs fine-tune it.
    lr : float, default=1e-4
        Adam learning rate of the CNN (cosine schedule to 0); the step sizes
        learn at ``100 * lr``.
    batch_size : int, default=16
        Training mini-batch; inference also runs in chunks of it.
    validation_fraction : float, default=0.1
        Share of the clean images held out: their bursts (one fixed draw)
        stop training early (patience 20 epochs, best weights restored) and
        decide whether the trained network is kept or the untrained one,
        the model-based solver it unrolls, if that restores them better
        (with a warning). Used only when it gives at least 20 images;
        otherwise bursts of up to 64 training images decide.
    device : {"cpu", "cuda", "auto", "accelerate"}, default="cpu"
        ``"accelerate"`` trains through HF accelerate (data-parallel
        under ``accelerate launch``, see :ref:`scaling`).
    random_state : int, RandomState instance or None, default=None
        Seeds the training simulation, the held-out split and ``score``'s
        bursts.
    verbose : int, default=0
        1 prints skorch's epoch table.

    Attributes
    ----------
    net_ : skorch.NeuralNetRegressor
        ``net_.module_`` is the trained :class:`~sklearn_mbdl.burst.BurstNet`
        (or the untrained one, when it restored the held-out bursts better),
        ``net_.history`` the training history (``valid_loss``: the held-out
        bursts' mean squared error).
    image_shape_ : tuple of int
        Shape of the high-resolution images ``fit`` saw.
    frame_shape_ : tuple of int
        Shape of their low-resolution frames.
    kept_start_ : bool
        True when the untrained unrolled solver restored the held-out bursts
        better than the trained one and was kept (with a warning).
    trained_error_, start_error_ : float
        The two networks' mean squared errors on those bursts.
    n_features_in_ : int
        Pixels per high-resolution image.
    device_ : str

    See Also
    --------
    sklearn_mbdl.burst.estimate_motion : low-resolution registration.
    sklearn_mbdl.datasets.make_bursts : simulated bursts.

    Examples
    --------
    >>> from sklearn_mbdl import BurstSuperResolver
    >>> from sklearn_mbdl.datasets import extract_patches, load_images, make_bursts
    >>> clean = extract_patches(load_images("train"), 16, 32, random_state=0)
    >>> model = BurstSuperResolver(n_frames=4, n_iter=2, max_epochs=1, batch_size=8,
    ...                            random_state=0).fit(clean)
    >>> bursts, truth, motions = make_bursts(clean[:2], n_frames=4, random_state=1)
    >>> model.transform(bursts).shape
    (2, 32, 32)
    """

    def __init__(self, scale=2, n_frames=8, *, motion="euclidean", max_shift=4.0,
                 max_rotation=2.0, blur_sigma=(0.0, 0.7), estimate_blur=True,
                 noise_level="auto",
                 shot_noise=(1e-4, 1.2e-2), n_iter=4, n_cg=8, prior="cnn",
                 image_shape=None,
                 max_epochs=3, lr=1e-4, batch_size=16, validation_fraction=0.1,
                 device="cpu", random_state=None, verbose=0):
        self.scale = scale
        self.n_frames = n_frames
        self.motion = motion
        self.max_shift = max_shift
        self.max_rotation = max_rotation
        self.blur_sigma = blur_sigma
        self.estimate_blur = estimate_blur
        self.noise_level = noise_level
        self.shot_noise = shot_noise
        self.n_iter = n_iter
        self.n_cg = n_cg
        self.prior = prior
        self.image_shape = image_shape
        super().__init__(max_epochs=max_epochs, lr=lr, batch_size=batch_size,
                         validation_fraction=validation_fraction, device=device,
                         random_state=random_state, verbose=verbose)

    # models pickled before n_cg existed restored with 4 iterations
    _pickle_defaults = {"n_cg": 4}

    _parameter_constraints = {
        "scale": [Interval(Integral, 1, None, closed="left")],
        "n_frames": [Interval(Integral, 1, None, closed="left")],
        "motion": [StrOptions(set(MOTION_MODELS))],
        "max_shift": [Interval(Real, 0, None, closed="left")],
        "max_rotation": [Interval(Real, 0, None, closed="left")],
        # a number, or a range (low, high) checked by _check_param_relations
        "blur_sigma": [Interval(Real, 0, None, closed="left"), tuple, list],
        "estimate_blur": ["boolean"],
        "noise_level": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "shot_noise": [Interval(Real, 0, None, closed="left"), tuple, list],
        "n_iter": [Interval(Integral, 1, None, closed="left")],
        "n_cg": [Interval(Integral, 1, None, closed="left")],
        "prior": [StrOptions(set(PRIORS))],
        "image_shape": IMAGE_SHAPE_CONSTRAINT,
    }

    # ----- parameters ----------------------------------------------------------
    def _check_param_relations(self):
        check_number_or_range(self.blur_sigma, "blur_sigma")
        if isinstance(self.shot_noise, (tuple, list)):
            check_number_or_range(self.shot_noise, "shot_noise", positive_range=True)

    def _check_image_shape(self, shape, scale=None):
        # a side of 1 is a 1-D signal; any other side must reach the scale
        scale = self.scale if scale is None else scale
        if max(shape) < scale or 1 < min(shape) < scale:
            raise ValueError(
                f"images of shape {shape} ({int(np.prod(shape))} feature(s)) are "
                f"smaller than scale={scale}.")
        return shape

    def _validate_images(self, X, *, reset):
        """Clean images, ``(n, H, W)`` or flattened rows -> ``(rows, shape)``
        (the image-input layer, :func:`~sklearn_mbdl._base.check_images`).

        After ``fit`` an ``(n, H, W)`` stack may have any image size (the
        network is convolutional)."""
        rows, shape, _ = check_images(self, X, reset=reset, any_size=True,
                                      images_only=True)
        return rows, self._check_image_shape(shape)

    # ----- fit ----------------------------------------------------------------
    def _noise_level(self):
        return None if self.noise_level == "auto" else float(self.noise_level)

    def _camera(self):
        """The random cameras of the training and ``simulate`` bursts."""
        return dict(n_frames=int(self.n_frames), scale=int(self.scale),
                    model=self.motion, max_shift=float(self.max_shift),
                    max_rotation=float(self.max_rotation),
                    blur_sigma=check_number_or_range(self.blur_sigma, "blur_sigma"),
                    noise_level=self.noise_level,
                    shot_noise=(tuple(self.shot_noise) if isinstance(
                        self.shot_noise, (tuple, list)) else float(self.shot_noise)))

    def _module_kwargs(self, shape):
        blur = check_number_or_range(self.blur_sigma, "blur_sigma")
        if isinstance(blur, tuple):
            # the data step assumes a blur in the lower part of the range: an
            # overestimated PSF rings and costs far more than an underestimated
            # one (benchmarks/results/burst_notes.md)
            blur = blur[0] + 0.3 * (blur[1] - blur[0])
        return dict(scale=int(self.scale), blur_sigma=float(blur * self.scale),
                    motion=self.motion, noise_level=self._noise_level(),
                    max_shift=float(self.max_shift), n_iter=int(self.n_iter),
                    prior=self.prior, image_shape=shape)

    def _fixed_bursts(self, images, n_bursts):
        """One seeded draw of ``n_bursts`` training pairs from ``images``
        (the held-out pair, or the keep-better pair), the same at every
        ``fit`` with the same ``random_state``."""
        rng = np.random.RandomState([self._seed, 1])
        return _simulate_training(rng, n_bursts, clean=images, **self._camera())

    def fit(self, X, y=None):
        """Train the unrolled network on bursts simulated from clean images.

        A share of the images (``validation_fraction``) is held out: the
        bursts simulated from them stop training early and decide whether
        training improved on the untrained network.

        Parameters
        ----------
        X : array-like of shape (n_samples, H * W) or (n_samples, H, W)
            Clean high-resolution images in [0, 1] (small patches, e.g.
            48 x 48 from :func:`~sklearn_mbdl.datasets.extract_patches`,
            train fastest).
        y : None
            Ignored.

        Returns
        -------
        self : BurstSuperResolver
        """
        self._check_params()
        X, shape = self._validate_images(X, reset=True)
        warn_if_out_of_range(X, "X (clean images)", self)
        self._setup_fit()
        self.image_shape_ = shape
        self.frame_shape_ = _frame_shape(shape, self.scale)
        clean = X.reshape(-1, *shape)
        train, held_out = self._holdout(len(clean), self.validation_fraction)
        if held_out.size:
            valid, check = self._fixed_bursts(clean[held_out], held_out.size), None
        else:
            valid, check = None, self._fixed_bursts(clean, min(len(clean), N_CHECK))
        self._fit_network(TrainingProblem(
            BurstNet, self._module_kwargs(shape),
            # every epoch, fresh bursts of the training images through random cameras
            simulate=functools.partial(_simulate_training, clean=clean[train],
                                       **self._camera()),
            n_simulated=train.size, valid=valid, check=check,
            start_name="the untrained unrolled solver",
            net_kwargs=dict(optimizer__param_groups=[("log_*", {"lr": 100 * self.lr})]),
        ))
        return self

    # ----- transform -------------------------------------------------------------
    def _validate_bursts(self, X):
        """Bursts as ``(n, K, h, w)``, their image shape, and whether the
        input was 4-D."""
        check_is_fitted(self)
        self._check_params()
        K, scale = int(self.n_frames), self.net_.module_.scale
        if isinstance(X, (list, tuple)) and X and isinstance(X[0], (list, tuple)):
            shapes = {np.shape(frame) for burst in X for frame in burst}
            if len(shapes) > 1:
                raise ValueError(
                    f"the frames of the bursts have unequal sizes: {sorted(shapes)}.")
        ndim = getattr(X, "ndim", None)
        ndim = np.ndim(X) if ndim is None else ndim
        if ndim == 4:
            X = np.asarray(X)
            n_bursts, n_frames, *frame_shape = X.shape
            frame_shape = tuple(frame_shape)
            if n_bursts == 0:
                raise ValueError(f"X holds 0 bursts (shape {X.shape}); transform "
                                 "needs at least one.")
            if n_frames < K:
                raise ValueError(
                    f"bursts have {n_frames} frames, fewer than n_frames={K}.")
            if min(frame_shape) < 1:
                raise ValueError(f"the bursts' frames are empty: shape {frame_shape}.")
            if frame_shape == tuple(self.frame_shape_):
                image_shape = self.image_shape_
            else:
                image_shape = tuple(1 if s == 1 else scale * s for s in frame_shape)
            self._check_image_shape(image_shape, scale)
            rows = check_array(X.reshape(n_bursts, -1), dtype=FLOAT_DTYPES,
                               ensure_all_finite=True, input_name="bursts")
            return rows.reshape(X.shape), image_shape, True
        if ndim > 2:   # (1-D input: scikit-learn's message, "Reshape your data")
            hint = (" (one burst of shape (n_frames, h, w) needs a leading axis: "
                    "X[None])" if ndim == 3 else "")
            raise ValueError(
                "X must hold bursts as a 4-D array (n_bursts, n_frames, h, w) or as "
                f"rows of n_frames * h * w features, got {ndim}-D input{hint}.")
        rows = check_array(X, dtype=FLOAT_DTYPES, ensure_all_finite=True,
                           input_name="X")
        frame_size = int(np.prod(self.frame_shape_))
        if rows.shape[1] != K * frame_size:
            frames = rows.shape[1] / frame_size
            raise ValueError(
                f"X has {rows.shape[1]} features, but BurstSuperResolver is expecting "
                f"{K * frame_size} features as input ({K} frames of shape "
                f"{self.frame_shape_}, n_frames={K}); got {frames:g} frames' worth.")
        return rows.reshape(len(rows), K, *self.frame_shape_), self.image_shape_, False

    def _candidate_blurs(self, blur, burst_shape):
        """The blurs (high-resolution pixels) tried per burst for the checked
        ``blur_sigma``, or None where the blur is not estimated: one value
        given, ``estimate_blur=False``, fewer than 4 frames to split, or
        frames with too little inside the border a shift may bring in (1-D
        signals among them)."""
        n_frames, *frame_shape = burst_shape
        margin = _blur_margin(self.net_.module_.max_shift)
        if (not isinstance(blur, tuple) or not self.estimate_blur or n_frames < 4
                or min(frame_shape) < 2 * margin + 4):
            return None
        scale = self.net_.module_.scale
        return torch.linspace(blur[0] * scale, blur[1] * scale, N_BLURS,
                              dtype=torch.float64)

    def _restore(self, bursts, image_shape, return_blur=False):
        """Restore validated bursts; returns images (in the bursts' dtype)
        and motions (float64), and with ``return_blur`` the optics blur used
        for each burst (low-resolution pixels)."""
        scale = self.net_.module_.scale
        kwargs = dict(noise_level=self._noise_level(), return_motion=True,
                      image_shape=tuple(image_shape), n_cg=int(self.n_cg))
        blur = check_number_or_range(self.blur_sigma, "blur_sigma")
        blurs = self._candidate_blurs(blur, bursts.shape[1:])
        if blurs is not None:
            def forward(module, state, x):
                return _restore_estimating_blur(module, state, x, kwargs,
                                                blurs.to(x.device, x.dtype))
            images, motions, used = self._run_network(bursts, forward,
                                                      cpu_size=self.batch_size)
            used = used.astype(np.float64) / scale
        else:
            if not isinstance(blur, tuple):   # the camera's blur, given after fit
                kwargs["blur_sigma"] = float(blur * scale)
            forward = functools.partial(_forward, kwargs=kwargs)
            images, motions = self._run_network(bursts, forward, cpu_size=self.batch_size)
            used = np.full(len(bursts), kwargs.get("blur_sigma",
                                                   self.net_.module_.blur_sigma) / scale)
        if return_blur:
            return images, motions.astype(np.float64), used
        return images, motions.astype(np.float64)

    def transform(self, X, *, return_motion=False, return_blur=False):
        """Super-resolve bursts.

        Parameters
        ----------
        X : array-like of shape (n_bursts, n_frames, h, w) or (n_bursts, n_features)
            Bursts, or bursts flattened to rows of ``n_frames * h * w``
            features; the first frame is the reference the result is aligned
            with. Flattened rows have the frame shape of the fitted images
            and exactly ``n_frames`` frames; 4-D input may have any frame
            size and ``n_frames`` frames or more.
        return_motion : bool, default=False
            Also return the motions the network estimated (low-resolution
            units, see :func:`~sklearn_mbdl.burst.estimate_motion`).
        return_blur : bool, default=False
            Also return the optics blur used for each burst (low-resolution
            pixels): estimated, or the one given (see ``estimate_blur``).

        Returns
        -------
        images : ndarray of shape (n_bursts, H, W) or (n_bursts, H * W)
            Images for 4-D input, flattened rows for 2-D input; in the dtype
            of ``X``.
        motions : ndarray of shape (n_bursts, n_frames, k)
            Only with ``return_motion=True``.
        blur : ndarray of shape (n_bursts,)
            Only with ``return_blur=True``.
        """
        bursts, image_shape, as_images = self._validate_bursts(X)
        warn_if_out_of_range(bursts, "X (bursts)", self)
        images, motions, blur = self._restore(bursts, image_shape, return_blur=True)
        out = images if as_images else images.reshape(len(images), -1)
        extra = ((motions,) if return_motion else ()) + ((blur,) if return_blur else ())
        return (out, *extra) if extra else out

    def simulate(self, X, random_state=None, *, return_motion=False):
        """Bursts of clean images through random cameras, drawn as in ``fit``.

        Parameters
        ----------
        X : array-like of shape (n_samples, H * W) or (n_samples, H, W)
        random_state : int, RandomState instance or None
            Seed of the motions and the noise (the estimator's
            ``random_state`` by default).
        return_motion : bool, default=False
            Also return the true motions.

        Returns
        -------
        bursts : ndarray of shape (n_samples, n_frames, h, w)
        motions : ndarray of shape (n_samples, n_frames, k)
            Only with ``return_motion=True``.
        """
        X, shape = self._validate_images(X, reset=False)
        self._check_params()
        rng = check_random_state(self.random_state if random_state is None
                                 else random_state)
        bursts, motions = _draw_bursts(rng, X.reshape(-1, *shape).astype(np.float64),
                                       **self._camera())
        bursts = bursts.astype(X.dtype, copy=False)
        return (bursts, motions) if return_motion else bursts
