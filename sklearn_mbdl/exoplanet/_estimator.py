"""ExoplanetSeparator: the estimator around the unrolled local ADI model."""

import copy
import functools
import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import OneToOneFeatureMixin, TransformerMixin
from sklearn.utils import check_array, check_random_state
from torch import nn

from ..metrics import find_peaks
from .._base import (
    IMAGE_SHAPE_CONSTRAINT,
    Interval,
    StrOptions,
    TorchEstimator,
    TrainingProblem,
    check_images,
    check_number,
    check_routed,
    to_tensor,
    torch_dtype,
)
from ._adi import gaussian_psf, search_field
from ._model import (
    LocalADISeparator,
    _pad,
    companion_signal,
)

__all__ = ["ExoplanetSeparator"]

# the quadrants of position angle of the cross-fitting
N_FOLDS = 4
# companions injected by score
N_INJECTED = 4


def _training_rows(rng, n, *, positions, max_snr):
    """Companion hypotheses for one epoch: random sky positions (the
    candidate pixels, jittered by up to half a pixel), half of them with an
    injected companion of S/N uniform in ``[0, max_snr]`` (annulus units),
    the other half without; the target is the injected S/N."""
    pick = positions[rng.randint(len(positions), size=n)]
    pick = pick + rng.uniform(-0.5, 0.5, size=pick.shape)
    snr = rng.uniform(0, max_snr, size=n) * (rng.rand(n) < 0.5)
    X = np.concatenate([pick, snr[:, None]], 1).astype(np.float32)
    return X, snr.astype(np.float32)


def _real_array(values, name, **kwargs):
    """``check_array`` to finite float64 values, with a message naming
    ``name`` for complex values too."""
    if np.iscomplexobj(values):
        raise ValueError(f"{name} must be real, got complex values.")
    try:
        return check_array(values, dtype=np.float64, input_name=name, **kwargs)
    except (TypeError, ValueError) as exc:
        if name in str(exc):
            raise
        raise ValueError(f"{name}: {exc}") from None


def _sector(positions, shape):
    """Quadrant (0-3) of the position angle of sky positions ``(x, y)``."""
    h, w = shape
    angle = np.arctan2(positions[:, 1] - (h - 1) / 2, positions[:, 0] - (w - 1) / 2)
    return np.floor(np.mod(angle, 2 * np.pi) / (np.pi / 2)).astype(int) % N_FOLDS


def _drop_frames(net):
    """A fitted net without the training cube: the module forgets its
    frames (:meth:`LocalADISeparator.drop_frames`) and the net the frames it
    was built from (its ``module__cube`` argument; the net is not
    initialised again)."""
    net.module_.drop_frames()
    net.module__cube = None
    return net


class ExoplanetSeparator(OneToOneFeatureMixin, TransformerMixin, TorchEstimator):
    """Separate faint companions from stellar speckles in an ADI sequence.

    The local model ``y = x + alpha H(p) + noise`` (speckles ``x``: static
    speckles, by default each pixel's temporal mean or, in annuli where the
    speckles are point-symmetric, that of its mirror pixel (or the average
    of the two where they agree within their noise), plus an optional
    part sparse in a dictionary; a companion of flux ``alpha`` whose
    signature ``H(p)`` follows the field rotation; Gaussian noise with a
    covariance over the patch around every pixel, as in PACO), solved by
    unrolled ISTA steps on the speckles alternating with weighted flux steps
    (see :class:`~sklearn_mbdl.exoplanet.LocalADISeparator`).

    **By default the method is model-based**: ``max_epochs=0`` keeps the
    solver at its initialisation, which with the default ``n_components=0``
    is PACO's weighted least-squares flux around the static speckles, and
    ``fit`` estimates the model (static speckles and noise covariances) from
    the science cube. What the model assumes about the optics: speckles
    that are static up to a drift the patch covariances absorb, and a
    companion that moves by at least one FWHM over the sequence (``fit``
    warns otherwise); point-symmetric speckles only where the data show
    them (``static_speckles="auto"``). With ``max_epochs > 0``, ``fit`` also
    learns from the science cube itself: synthetic companions of known flux
    are injected at random positions and the dictionary, thresholds and
    step sizes are trained through skorch to recover their fluxes (labels);
    the
    surroundings of candidate companions are left out of training, and the
    network that maps a quadrant of position angle is trained on the
    opposite quadrant (cross-fitting); a quadrant's network keeps the
    untrained model unless training lowers its error on held-out injections.
    :meth:`photometry` corrects the fluxes of given companions for
    self-subtraction.

    Samples are frames: ``X`` is ``(n_frames, h * w)`` (or ``(n_frames, h,
    w)``), the parallactic ``angles`` (degrees) are metadata of ``fit``,
    ``transform``, ``flux_map``, ``detection_map``, ``photometry`` and
    ``find_companions``. They follow vip-hci's convention (the parallactic
    angles of the FITS headers, as ``vip_hci.fm.cube_inject_companions``
    and ``vip_hci.preproc.cube_derotate`` take them): frame ``k`` sees the
    sky turned clockwise by ``angles[k]`` (as displayed with
    ``origin="lower"``, the star at ``((w - 1) / 2, (h - 1) / 2)``), and
    derotating it counterclockwise by ``angles[k]`` gives the sky.
    With ``angles=None`` the frames are unrotated (all angles 0): the model
    is still a valid speckle/background separator. Flattened frames (2-D
    ``X``) need ``image_shape`` (rows of fewer than 16 values are one-row
    images ``(1, n)``).

    Parameters
    ----------
    psf : array-like of shape (sh, sw), default=None
        Off-axis PSF (a companion of flux 1 is ``psf`` centred on it); a
        Gaussian of ``fwhm`` (peak 1) when None, cropped to small frames.
    fwhm : float, default=4.0
        PSF full width at half maximum in pixels: the annuli's spacing.
    patch_size : int, default=5
        Side of the patch around a companion in each frame (odd): the
        extent of the noise model's covariances.
    n_components : int, default=0
        Atoms per annulus (principal components of the frames at start).
        The default uses none: an atom also absorbs part of the companions
        that cross its annulus (see the user guide), so the speckles are the
        static ones and the noise model.
    n_layers : int, default=6
        Unrolled iterations.
    static_speckles : {"auto", "mean", "mirror"}, default="auto"
        How each pixel's static speckles are estimated: its own temporal
        mean ("mean", as PACO; it absorbs a share of every companion that
        crosses the pixel), or the temporal mean of the pixel symmetric to
        it about the star ("mirror": a companion is not in its mirror's
        mean, but the speckles must be point-symmetric, which holds for
        small phase aberrations behind an ideal coronagraph only, not
        amplitude aberrations, spiders or a real coronagraph). "auto"
        chooses from the data, annulus by annulus: the average of the two
        means where they agree within their noise (both estimate the same
        speckles: half the noise of either, as on photon-limited frames;
        ``_model.NOISE_SYMMETRY_THRESHOLD``), the mirror where the temporal
        mean is point-symmetric within a few times its own noise
        (``_model.SYMMETRY_THRESHOLD``), the own mean elsewhere. Optics
        known not to be point-symmetric (amplitude aberrations, spiders, a
        real coronagraph) are best given "mean": under moderate photon
        noise their asymmetry can fall within the mirror's band.
    image_shape : (int, int), default=None
        Frame shape for flattened frames (2-D ``X``); with 3-D ``X`` it must
        agree with the frames or be None.
    n_cleaning : int, default=8
        Rounds of the photometry's correction for self-subtraction (see
        :meth:`photometry`); 0 reports the uncorrected joint fit.
    learn_dictionary : bool, default=True
        Train the atoms and analysis maps too (at ``dictionary_lr`` times
        ``lr``); False trains thresholds and steps only.
    dictionary_lr : float, default=0.05
    n_injections : int, default=1024
        Synthetic companion hypotheses per epoch (fresh at every epoch), at
        most one per candidate pixel.
    max_snr : float, default=10.0
        Injected companions have S/N uniform in ``[0, max_snr]``.
    max_epochs : int, default=0
        Training epochs. The default 0 uses the model-based separator as it
        is (the unrolled solver at its initialisation, which is PACO's
        weighted least-squares flux around the static speckles when
        ``n_components=0``). With ``max_epochs > 0`` injected companions
        train the four quadrants' networks (cross-fitting), each stopping
        early on held-out injections, and the better of trained and
        untrained is kept.
    lr : float, default=1e-3
    batch_size : int, default=64
    device : {"cpu", "cuda", "auto", "accelerate"}, default="cpu"
        ``"accelerate"`` trains through HF accelerate (data-parallel
        under ``accelerate launch``, see :ref:`scaling`).
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0

    Attributes
    ----------
    nets_ : list of skorch.NeuralNetRegressor
        With training, the networks of the four quadrants of position angle
        (cross-fitting: network ``f`` is trained on injections in quadrant
        ``f`` and maps quadrant ``(f + 2) % 4``); ``nets_[f].module_`` is a
        :class:`LocalADISeparator`. Untrained (``max_epochs=0``), one
        network that maps every position.
    net_ : skorch.NeuralNetRegressor
        ``nets_[0]`` (it also gives :meth:`transform` its background model).
    trained_error_, start_error_ : float
        Squared error (S/N units) on held-out injections of the trained and
        of the untrained networks, mean over the quadrants (NaN untrained).
    kept_start_ : bool
        True when at least one quadrant's network kept the untrained model
        (training did not lower its held-out error), and when untrained.
    n_candidates_ : int
        Candidate companions (S/N above 3 in the untrained map) whose
        surroundings were left out of training (0 untrained).
    image_shape_ : (int, int)
    fwhm_ : float
        ``fwhm`` at fit (the networks' annuli and the field searched).
    patch_shape_ : (int, int)
        The patch of the noise model (``patch_size``, cut to the frames).
    psf_ : ndarray
    scale_ : float
        Data scale the model works in (the cube's standard deviation).
    noise_scale_ : ndarray of shape (n_rings,)
        Standard deviation of the untrained flux estimate in each annulus,
        the unit of the training targets (ones untrained).
    n_features_in_ : int
    device_ : str

    Examples
    --------
    >>> from sklearn_mbdl import ExoplanetSeparator
    >>> from sklearn_mbdl.datasets import make_adi_cube
    >>> cube, angles, planets, psf = make_adi_cube(16, 32, n_planets=1,
    ...                                            contrast=30, random_state=0)
    >>> sep = ExoplanetSeparator(psf, max_epochs=2, random_state=0)
    >>> sep = sep.fit(cube, angles=angles)
    >>> sep.detection_map(cube, angles=angles).shape
    (32, 32)
    """

    def __init__(self, psf=None, *, fwhm=4.0, patch_size=5, n_components=0,
                 n_layers=6, static_speckles="auto", image_shape=None, n_cleaning=8,
                 learn_dictionary=True,
                 dictionary_lr=0.05, n_injections=1024, max_snr=10.0,
                 max_epochs=0, lr=1e-3, batch_size=64, device="cpu",
                 random_state=None, verbose=0):
        self.psf = psf
        self.fwhm = fwhm
        self.patch_size = patch_size
        self.n_components = n_components
        self.n_layers = n_layers
        self.static_speckles = static_speckles
        self.image_shape = image_shape
        self.n_cleaning = n_cleaning
        self.learn_dictionary = learn_dictionary
        self.dictionary_lr = dictionary_lr
        self.n_injections = n_injections
        self.max_snr = max_snr
        super().__init__(max_epochs=max_epochs, lr=lr, batch_size=batch_size,
                         device=device, random_state=random_state, verbose=verbose)

    _parameter_constraints = {
        "psf": ["array-like", None],
        "fwhm": [Interval(Real, 0.5, None, closed="left")],
        "patch_size": [Interval(Integral, 1, None, closed="left")],
        "n_components": [Interval(Integral, 0, None, closed="left")],
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "static_speckles": [StrOptions({"auto", "mean", "mirror"})],
        "image_shape": IMAGE_SHAPE_CONSTRAINT,
        "n_cleaning": [Interval(Integral, 0, None, closed="left")],
        "learn_dictionary": ["boolean"],
        "dictionary_lr": [Interval(Real, 0, None, closed="left")],
        "n_injections": [Interval(Integral, 1, None, closed="left")],
        "max_snr": [Interval(Real, 0, None, closed="neither")],
        # (0, the default: the model-based separator, untrained)
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
    }

    # ----- checks -------------------------------------------------------------
    def _check_param_relations(self):
        if self.patch_size % 2 == 0:
            raise ValueError(f"patch_size must be odd, got {self.patch_size}.")

    def _check_angles(self, angles, n_frames):
        if angles is None:
            return np.zeros(n_frames)
        angles = _real_array(angles, "angles", ensure_2d=False, ensure_min_samples=0)
        if angles.ndim != 1 or angles.shape[0] != n_frames:
            raise ValueError(
                f"angles has {angles.size} values (shape {angles.shape}) but X "
                f"has {n_frames} frames: one parallactic angle per frame.")
        return angles

    def _check_psf(self, shape):
        if self.psf is None:
            size = 2 * int(math.ceil(2 * self.fwhm)) + 1
            fit = [min(size, s if s % 2 else s - 1) for s in shape]
            return gaussian_psf(self.fwhm, tuple(max(f, 1) for f in fit))
        psf = np.asarray(self.psf)
        if psf.ndim != 2 or psf.size == 0:
            raise ValueError(f"psf must be a 2-D array, got shape {psf.shape}.")
        psf = _real_array(psf, "psf")
        if psf.shape[0] > shape[0] or psf.shape[1] > shape[1]:
            raise ValueError(
                f"the psf ({psf.shape[0]}x{psf.shape[1]}) is larger than the "
                f"image ({shape[0]}x{shape[1]}).")
        if not np.any(psf):
            raise ValueError("psf is all zeros.")
        return psf

    @staticmethod
    def _check_positions(positions):
        """``positions`` as an ``(n, 2)`` float array of sky positions."""
        try:
            positions = np.asarray(positions)
        except ValueError as exc:      # ragged nested lists
            raise ValueError(f"positions is not a rectangular array: {exc}") from None
        if positions.size == 0:
            return np.zeros((0, 2))
        if positions.ndim == 1 and positions.size == 2:   # one position
            positions = positions[None]
        if positions.ndim != 2 or positions.shape[1] != 2:
            raise ValueError(
                "positions must be an array of shape (n_companions, 2) of sky "
                f"positions (x, y), got shape {positions.shape}.")
        return _real_array(positions, "positions", copy=True)

    def _check_rotation(self, angles, shape):
        """Warn when the field turns by less than one FWHM at the innermost
        separation searched (there a companion hardly moves against the
        speckles and their model absorbs it)."""
        field = self._field(shape)
        h, w = shape
        yy, xx = np.mgrid[:h, :w]
        inner = float(np.hypot(xx - (w - 1) / 2, yy - (h - 1) / 2)[field].min())
        rotation = float(np.ptp(angles))
        arc = inner * np.deg2rad(rotation)
        if arc < self.fwhm_:
            reach = self.fwhm_ / max(np.deg2rad(rotation), 1e-12)
            warnings.warn(
                f"angles: the field rotates by {rotation:.1f} degrees, less than one "
                f"FWHM ({self.fwhm_:g} px) at the innermost separation searched "
                f"({inner:.1f} px): companions closer than {reach:.1f} px to the star "
                "move less than one FWHM over the sequence and the speckle model "
                "absorbs them.", UserWarning)

    def _validate(self, X, angles, *, reset):
        """Rows, frame shape, whether the caller gave 3-D frames, angles.

        After ``fit`` the parameters are checked again (``set_params`` may
        have changed them).
        """
        if not reset:
            self._check_params()
        X, shape, stacked = check_images(self, X, reset=reset, images_only=True)
        if reset and X.shape[0] < 4:
            raise ValueError(
                f"ExoplanetSeparator needs at least 4 frames (samples) to model the "
                f"speckles, got {X.shape[0]} sample(s).")
        return X, shape, stacked, self._check_angles(angles, X.shape[0])

    # ----- fit ------------------------------------------------------------------
    def fit(self, X, y=None, angles=None):
        """Estimate the speckle model of a science cube, and with
        ``max_epochs > 0`` train it on injected companions.

        Parameters
        ----------
        X : array-like of shape (n_frames, h * w) or (n_frames, h, w)
            The ADI sequence.
        y : None
            Ignored.
        angles : array-like of shape (n_frames,), default=None
            Parallactic angles in degrees, vip-hci's convention (see the
            class notes); 0 for every frame when None.

        Returns
        -------
        self : ExoplanetSeparator
        """
        self._check_params()
        check_routed(self, "angles", angles)   # score needs them too
        X, shape, _, frame_angles = self._validate(X, angles, reset=True)
        self._setup_fit()
        self.image_shape_, self.fwhm_ = shape, float(self.fwhm)
        self.patch_shape_ = tuple(min(self.patch_size, s if s % 2 else s - 1)
                                  for s in shape)
        self.psf_ = self._check_psf(shape)
        if angles is not None:
            self._check_rotation(frame_angles, shape)
        scale = float(np.std(X))
        self.scale_ = scale if scale > 0 else 1.0
        args = self._model_args((X / self.scale_).astype(np.float32), frame_angles)
        if not self.max_epochs:
            return self._fit_untrained(args)
        # the untrained model (atoms: the SVD of the annuli) finds the
        # candidates to leave out and gives the targets their unit
        start = LocalADISeparator(**args)
        flux, sigma = self._map([start], args["cube"], args["angles"])
        positions = self._training_positions(flux / sigma)
        self.noise_scale_ = self._target_unit(start, flux, positions)
        args.update(dictionary=start.dictionary.detach()[..., :-1].numpy(),
                    noise_scale=self.noise_scale_)
        results = [self._fit_fold(fold, args, positions) for fold in range(N_FOLDS)]
        self.nets_ = [_drop_frames(result.net) for result in results]
        self.net_ = self.nets_[0]
        self._summarise_folds(results)
        return self

    def _model_args(self, cube, angles):
        """The arguments of :class:`LocalADISeparator` for the scaled cube."""
        return dict(cube=cube, angles=angles, psf=self.psf_,
                    image_shape=self.image_shape_, patch_shape=self.patch_shape_,
                    fwhm=self.fwhm_, n_components=min(self.n_components, len(cube)),
                    n_layers=self.n_layers, static_speckles=self.static_speckles)

    def _fit_untrained(self, args):
        """``max_epochs=0``: the model-based separator, one network that maps
        every position (its initialisation is deterministic); no injections,
        so no held-out error."""
        net = self._make_net(LocalADISeparator, criterion=nn.MSELoss,
                             **{f"module__{k}": v for k, v in args.items()})
        net.initialize()
        self.net_ = _drop_frames(net)
        self.nets_ = [self.net_]
        self.n_candidates_ = 0
        self.noise_scale_ = self.net_.module_.noise_scale.cpu().numpy().astype(float)
        self.trained_error_ = self.start_error_ = float("nan")
        self.kept_start_ = True
        return self

    def _training_positions(self, snr):
        """The candidate pixels of the injections: the field searched, less
        the surroundings of candidate companions (S/N above 3 in the
        untrained map), so that a real companion is never a "no companion
        here" example the network would learn to subtract."""
        positions = self._positions(self.image_shape_)
        peaks = find_peaks(np.where(self._field(self.image_shape_), snr, 0.0), 3.0,
                           min_distance=max(int(self.fwhm_ // 2), 1))
        self.n_candidates_ = len(peaks)
        far = np.ones(len(positions), bool)
        for x, y, _ in peaks:
            far &= np.hypot(positions[:, 0] - x, positions[:, 1] - y) > 1.5 * self.fwhm_
        # (unless that leaves too few positions to train on)
        enough = far.sum() >= max(10, len(positions) // 4)
        return positions[far] if enough else positions

    @staticmethod
    def _target_unit(start, flux, positions):
        """The unit of the training targets: the robust spread (MAD) of the
        untrained flux estimate in each annulus."""
        alpha = flux[positions[:, 1].astype(int), positions[:, 0].astype(int)]
        rings = start.ring_of(torch.as_tensor(positions, dtype=torch.float32)).numpy()
        noise = np.ones(len(start.centres))
        for j in np.unique(rings):
            values = alpha[rings == j]
            mad = 1.4826 * np.median(np.abs(values - np.median(values)))
            noise[j] = mad if mad > 0 else 1.0
        # (a floor keeps tiny or constant annuli from inflating the targets)
        return np.maximum(noise, 1e-3 * np.median(noise))

    def _fit_fold(self, fold, args, positions):
        """Train the network that maps the quadrant opposite ``fold``.

        Cross-fitting: the network is trained on injections in quadrant
        ``fold`` only, so no map value comes from a network that saw (and
        could have memorised) the noise there; its held-out injections are
        in the quadrant it maps, so early stopping and keep-better see
        whether what it learned carries over to pixels it was not trained
        on. The untrained model is the start.
        """
        sectors = _sector(positions, self.image_shape_)
        own = positions[sectors == fold]
        mapped = positions[sectors == (fold + 2) % N_FOLDS]
        if len(own) < 10 or len(mapped) < 10:    # tiny frames: every position
            own = mapped = positions
        n_injections = max(min(self.n_injections // N_FOLDS, len(own)), 1)
        valid = _training_rows(np.random.RandomState(self._seed + N_FOLDS + fold),
                               max(n_injections // 4, 20), positions=mapped,
                               max_snr=self.max_snr)
        # the atoms learn at a small fraction of the rate (or not at all)
        atom_lr = self.lr * self.dictionary_lr if self.learn_dictionary else 0.0
        return self._fit_network(TrainingProblem(
            LocalADISeparator, args,
            simulate=functools.partial(_training_rows, positions=own,
                                       max_snr=self.max_snr),
            n_simulated=n_injections, valid=valid, start_name="the untrained model",
            warn=False,  # (one warning for the four networks: _summarise_folds)
            net_kwargs=dict(
                optimizer__param_groups=[("dictionary", {"lr": atom_lr}),
                                         ("adjoint", {"lr": atom_lr})],
                patience=5, label=f"network {fold + 1} of {N_FOLDS} (trained on "
                                  f"quadrant {fold}, maps quadrant {(fold + 2) % 4})"),
            seed_offset=fold))

    def _summarise_folds(self, results):
        """The held-out errors, and one warning for the networks that kept
        the untrained model."""
        self.trained_error_ = float(np.mean([r.trained_error for r in results]))
        self.start_error_ = float(np.mean([r.start_error for r in results]))
        n_start = sum(not r.kept_trained for r in results)
        self.kept_start_ = n_start > 0
        if n_start:
            warnings.warn(
                f"ExoplanetSeparator: training did not improve the flux estimates "
                f"on held-out injections for {n_start} of the {N_FOLDS} quadrants' "
                "networks; they keep the untrained model. Try more data, more "
                "epochs or a smaller lr.", UserWarning, stacklevel=3)

    # ----- characterisation -------------------------------------------------
    def photometry(self, X, positions, angles=None, *, refine=False):
        """Fluxes of companions at given sky positions, corrected for
        self-subtraction.

        The model-based characterisation step (the detection map's fluxes
        are not corrected): the untrained model estimated on ``X``, whose
        companions at ``positions`` are taken out before the model is
        estimated, by ``n_cleaning`` secant steps to the fixed point where
        the flux taken out equals the flux found.

        Parameters
        ----------
        X : array-like of shape (n_frames, h * w) or (n_frames, h, w)
        positions : array-like of shape (n_companions, 2)
            ``(x, y)`` sky positions (pixels, derotated frame).
        angles : array-like of shape (n_frames,), default=None
        refine : bool, default=False
            Also refine the positions: once the companions are taken out of
            the model, each one's flux is mapped on a grid of half-pixel
            steps within a pixel of its position and the maximum kept, then
            its flux is measured there.

        Returns
        -------
        flux : ndarray of shape (n_companions,)
        positions : ndarray of shape (n_companions, 2)
            Only with ``refine=True``: the refined positions.

        Examples
        --------
        The flux of the cube's companion at its true position; with
        ``refine=True``, the refined position is returned too.

        >>> from sklearn_mbdl import ExoplanetSeparator
        >>> from sklearn_mbdl.datasets import make_adi_cube
        >>> cube, angles, planets, psf = make_adi_cube(16, 32, n_planets=1,
        ...                                            contrast=30, random_state=0)
        >>> sep = ExoplanetSeparator(psf, random_state=0).fit(cube, angles=angles)
        >>> xy = [(planets["x"][0], planets["y"][0])]
        >>> sep.photometry(cube, xy, angles=angles).shape
        (1,)
        >>> flux, where = sep.photometry(cube, xy, angles=angles, refine=True)
        >>> where.shape
        (1, 2)
        """
        X, _, _, angles = self._validate(X, angles, reset=False)
        positions = self._check_positions(positions)
        if len(positions) == 0:
            return (np.zeros(0), positions) if refine else np.zeros(0)
        args = self._model_args(X.astype(np.float64) / self.scale_, angles)
        module = LocalADISeparator(**args).double()
        with torch.no_grad():
            found = module.flux(torch.as_tensor(positions)).numpy()
        if self.n_cleaning:
            found, module, shared = self._cleaned_fluxes(args["cube"], args,
                                                         positions, found)
            if refine:
                positions = self._refined_positions(module, shared, positions)
                # the start of the second cleaning: the flux in the science
                # cube under the cleaned model (the module's own cube is
                # the cleaned one, which holds no companion)
                with torch.no_grad():
                    found = module.flux(torch.as_tensor(positions),
                                        shared=shared).numpy()
                found, _, _ = self._cleaned_fluxes(args["cube"], args, positions, found)
        if refine:
            return found * self.scale_, positions
        return found * self.scale_

    @staticmethod
    def _refined_positions(module, shared, positions):
        """Each position moved to the maximum of the flux on a grid of
        half-pixel steps within a pixel of it."""
        steps = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
        grid = np.stack(np.meshgrid(steps, steps), -1).reshape(-1, 2)
        positions = positions.copy()
        for i in range(len(positions)):
            trial = torch.as_tensor(positions[i] + grid)
            with torch.no_grad():
                values = module.flux(trial, shared=shared).numpy()
            positions[i] = positions[i] + grid[np.argmax(values)]
        return positions

    def _cleaned_fluxes(self, cube, args, where, found):
        """Fluxes of companions at ``where`` free of self-subtraction.

        The model estimated on the frames (its noise covariances, and its
        atoms if any) contains the companions too: the companions are taken
        out of the frames (their modelled signature, at their estimated
        flux) and the model is estimated again. The estimate ``a(s)`` after
        taking out a flux ``s`` grows about as ``a(s) = a0 + c s`` (``c`` the
        share of a companion the model absorbs), so the fixed point ``a(s) =
        s`` is found by secant steps (``n_cleaning`` rounds).
        """
        dtype = torch.float64
        angles = torch.as_tensor(args["angles"], dtype=dtype)
        psf = torch.as_tensor(args["psf"], dtype=dtype)
        where = torch.as_tensor(where, dtype=dtype)
        history_s, history_a = [np.zeros(len(found))], [found]
        taken = np.zeros(len(found))
        for _ in range(self.n_cleaning):
            if len(history_s) == 1:
                new = found                                   # fixed-point step
            else:
                # secant step on a(s) = a0 + c s, c fitted by least squares
                # on the last three rounds and kept in [0, 0.95]; a step is at
                # most twice the current estimate (noisy slopes overshoot)
                S, A = np.array(history_s[-3:]), np.array(history_a[-3:])
                Sc, Ac = S - S.mean(0), A - A.mean(0)
                denom = (Sc ** 2).sum(0)
                slope = np.divide((Sc * Ac).sum(0), denom, out=np.zeros_like(denom),
                                  where=denom > 1e-18 * max(np.abs(A).max(), 1e-300) ** 2)
                slope = np.clip(slope, 0.0, 0.95)
                step = (found - taken) / (1 - slope)
                limit = 2 * np.maximum(np.abs(found), np.abs(taken))
                new = taken + np.clip(step, -limit, limit)
            # at most 1000 times the uncorrected estimate (a guard only)
            new = np.clip(new, 0.0, 1000 * np.clip(history_a[0], 0.0, None))
            taken = new
            signal = companion_signal(where, torch.as_tensor(taken, dtype=dtype),
                                      angles, args["image_shape"], psf,
                                      args["patch_shape"], len(args["cube"])).numpy()
            # the model (atoms and noise) of the frames without the
            # companions, applied to the frames with them
            clean = args["cube"] - signal
            module = LocalADISeparator(**{**args, "cube": clean}).double()
            with torch.no_grad():
                shared = module.projections(
                    _pad(torch.as_tensor(args["cube"], dtype=dtype)),
                    weight_cube=_pad(torch.as_tensor(clean, dtype=dtype)))
                found = module.flux(where, shared=shared).numpy()
            history_s.append(taken)
            history_a.append(found)
        return found, module, shared

    def _field(self, shape):
        return search_field(shape, self.fwhm_, self.patch_shape_)

    def _positions(self, shape, field=None):
        """Candidate sky positions ``(x, y)``: the pixel centres of the field
        (all pixels when ``field`` is False)."""
        h, w = shape
        yy, xx = np.mgrid[:h, :w]
        keep = self._field(shape).ravel() if field is None else \
            np.ones(h * w, bool)
        return np.stack([xx.ravel(), yy.ravel()], 1)[keep].astype(np.float64)

    # ----- inference ----------------------------------------------------------
    @staticmethod
    def _inference_module(module, dtype, angles):
        """A copy of a fitted module in the float ``dtype`` of the input
        (numpy's) that follows the field rotation of ``angles``."""
        dtype = torch_dtype(np.empty(0, dtype))
        module = copy.deepcopy(module).to(dtype=dtype)
        module.angles = to_tensor(angles, module.centres.device, dtype)
        return module

    def transform(self, X, angles=None):
        """The frames with the speckle background removed.

        The background of each frame is its fit by the unrolled model (the
        first quadrant's network) with no companion (``alpha = 0``); the
        speckles are fixed in the frame, so ``angles`` (validated) do not
        change it, and each frame is processed on its own.

        Parameters
        ----------
        X : array-like of shape (n_frames, h * w) or (n_frames, h, w)
        angles : array-like of shape (n_frames,), default=None

        Returns
        -------
        residuals : ndarray of the layout and dtype of ``X``
        """
        X, shape, stacked, angles = self._validate(X, angles, reset=False)
        module = self._inference_module(self.net_.module_, X.dtype, angles)
        background = self._run_network(
            X / X.dtype.type(self.scale_),
            lambda module, state, frames: module.background(_pad(frames)),
            module=module)
        out = X - background * X.dtype.type(self.scale_)
        return out.reshape(-1, *shape) if stacked else out

    def _map(self, modules, frames, angles, chunk=256):
        """Flux estimate and its standard deviation at every pixel, in the
        modules' units (``frames`` are scaled by ``scale_``): a position in
        quadrant ``q`` is mapped by network ``(q + 2) % 4`` (one module: by
        it everywhere)."""
        shape = self.image_shape_
        positions = self._positions(shape, field=False)
        owner = (_sector(positions, shape) + 2) % N_FOLDS if len(modules) == N_FOLDS \
            else np.zeros(len(positions), int)
        flux = np.empty(len(positions))
        sigma = np.empty(len(positions))
        for index, fitted in enumerate(modules):
            rows = np.flatnonzero(owner == index)
            if rows.size:
                flux[rows], sigma[rows] = self._flux_at(
                    fitted, frames, angles, positions[rows].astype(frames.dtype), chunk)
        return flux.reshape(shape), sigma.reshape(shape)

    def _flux_at(self, fitted, frames, angles, positions, chunk):
        """One module's flux estimates and standard deviations at
        ``positions``, in the dtype of ``frames``; the noise model is
        estimated on ``frames`` once, and the positions run by chunks."""
        module = self._inference_module(fitted, frames.dtype, angles)
        with torch.no_grad():
            shared = module.projections(_pad(to_tensor(
                frames, module.centres.device, module.centres.dtype)))
        return self._run_network(
            positions,
            lambda module, state, x: module.flux(x, shared=shared, return_sigma=True),
            module=module, cpu_size=chunk)

    def _flux_sigma(self, X, angles, chunk=256):
        X, _, _, angles = self._validate(X, angles, reset=False)
        modules = [net.module_ for net in self.nets_]
        return self._map(modules, X / X.dtype.type(self.scale_), angles, chunk)

    def flux_map(self, X, angles=None, *, chunk=256):
        """Flux estimate of a companion at every sky pixel (PSF units).

        Parameters
        ----------
        X : array-like of shape (n_frames, h * w) or (n_frames, h, w)
            The frames to search, of the fitted frame shape; their noise
            model is estimated on them.
        angles : array-like of shape (n_frames,), default=None
            Parallactic angles of ``X`` in degrees (see the class
            description); None: unrotated frames.
        chunk : int, default=256
            Positions per batch.

        Returns
        -------
        flux : ndarray of shape (h, w)
            At each sky pixel (derotated frame), the flux of a companion
            there, in units of ``psf`` (a companion of flux ``f`` adds ``f *
            psf``), not corrected for self-subtraction (see
            :meth:`photometry`).

        See Also
        --------
        find_companions : Its example maps a cube with this method.
        """
        check_number(chunk, "chunk", min_val=1, integer=True)
        return self._flux_sigma(X, angles, chunk)[0] * self.scale_

    def detection_map(self, X, angles=None):
        """S/N map: the flux map over its standard deviation.

        The standard deviation is the model's, ``(h^T W h)^-1/2`` with ``W``
        the inverse patch covariances of the noise model (as in PACO), so a
        value of 5 is a 5-sigma detection under the model's Gaussian noise;
        the map is 0 outside the field searched: within 1 FWHM of the star,
        and beyond the largest circle whose companions' patches stay inside
        the frames.

        Parameters
        ----------
        X : array-like of shape (n_frames, h * w) or (n_frames, h, w)
            As in :meth:`flux_map`.
        angles : array-like of shape (n_frames,), default=None
            As in :meth:`flux_map`.

        Returns
        -------
        snr : ndarray of shape (h, w)
            At each sky pixel (derotated frame), the S/N of a companion
            there; 0 outside the field searched.

        See Also
        --------
        find_companions : The peaks of this map, with an example.
        """
        return self._snr(*self._flux_sigma(X, angles))

    def _snr(self, flux, sigma):
        return np.where(self._field(flux.shape), flux / sigma, 0.0)

    def find_companions(self, X, angles=None, *, threshold=5.0):
        """Companions detected above ``threshold`` in the detection map.

        Parameters
        ----------
        X : array-like of shape (n_frames, h * w) or (n_frames, h, w)
            The frames to search, as in :meth:`flux_map`; the photometry
            of every peak found (:meth:`photometry`) is measured on them too.
        angles : array-like of shape (n_frames,), default=None
            As in :meth:`flux_map`.
        threshold : float, default=5.0
            Smallest S/N of a peak of the detection map (local maxima at
            least half a FWHM apart).

        Returns
        -------
        companions : structured ndarray
            Fields ``x``, ``y`` (pixels, derotated frame), ``separation``,
            ``flux`` (from :meth:`photometry`: corrected for
            self-subtraction, at the refined position) and ``snr`` (the
            detection map's peak), brightest first.

        Examples
        --------
        The search on a cube with one companion: the detection map peaks
        above 5 sigma at the companion's pixel, where the flux map (not
        corrected for self-subtraction) sees under half its flux; the
        companion found there has its flux corrected by :meth:`photometry`,
        within 20% of the true one.

        >>> import numpy as np
        >>> from sklearn_mbdl import ExoplanetSeparator
        >>> from sklearn_mbdl.datasets import make_adi_cube
        >>> cube, angles, planets, psf = make_adi_cube(16, 32, n_planets=1,
        ...                                            contrast=30, random_state=0)
        >>> sep = ExoplanetSeparator(psf, random_state=0).fit(cube, angles=angles)
        >>> snr = sep.detection_map(cube, angles=angles)
        >>> row, col = np.unravel_index(snr.argmax(), snr.shape)
        >>> bool(snr[row, col] > 5), (int(col), int(row))  # the companion's pixel
        (True, (18, 24))
        >>> true_flux = planets["flux"][0]
        >>> bool(sep.flux_map(cube, angles=angles)[row, col] < true_flux / 2)
        True
        >>> found = sep.find_companions(cube, angles=angles)
        >>> len(found), bool(abs(found["flux"][0] / true_flux - 1) < 0.2)
        (1, True)
        """
        check_number(threshold, "threshold")
        snr = self._snr(*self._flux_sigma(X, angles))
        h, w = snr.shape
        peaks = find_peaks(snr, threshold, min_distance=max(int(self.fwhm_ // 2), 1))
        out = np.zeros(len(peaks), dtype=[("x", float), ("y", float),
                                          ("separation", float), ("flux", float),
                                          ("snr", float)])
        fluxes, where = self.photometry(X, peaks[:, :2], angles, refine=True) \
            if len(peaks) else ([], peaks[:, :2])
        peaks[:, :2] = where
        for i, (x, y, value) in enumerate(peaks):
            out[i] = (x, y, np.hypot(x - (w - 1) / 2, y - (h - 1) / 2),
                      fluxes[i], value)
        return out

    def score(self, X, y=None, angles=None):
        """Mean S/N at which companions injected into ``X`` are recovered.

        The known model simulates what the user lacks, labelled companions:
        ``N_INJECTED`` companions at separations spread over the searched
        field (random position angles, seeded by ``random_state``, 0 when
        None), each with a peak as bright as the frames' standard deviation
        in its annulus, are added along their trajectories (``psf_`` moved by
        ``angles``). Each is scored in the detection map of the injected
        cube against the map's own spread in its annulus (median and median
        absolute deviation, away from the companion), so a noise model that
        understates its errors earns nothing. Higher is better:
        ``GridSearchCV`` can tune the separator on one cube (see the user
        guide).

        Parameters
        ----------
        X : array-like of shape (n_frames, h * w) or (n_frames, h, w)
        y : None
            Ignored.
        angles : array-like of shape (n_frames,), default=None

        Returns
        -------
        float
        """
        X, shape, _, angles = self._validate(X, angles, reset=False)
        rng = check_random_state(0 if self.random_state is None else self.random_state)
        h, w = shape
        yy, xx = np.mgrid[:h, :w]
        separation = np.hypot(xx - (w - 1) / 2, yy - (h - 1) / 2)
        field = self._field(shape)
        low, high = separation[field].min(), separation[field].max()
        radii = low + (high - low) * (np.arange(N_INJECTED) + 0.5) / N_INJECTED
        theta = rng.uniform(0, 2 * np.pi, N_INJECTED)
        where = np.stack([(w - 1) / 2 + radii * np.cos(theta),
                          (h - 1) / 2 + radii * np.sin(theta)], 1)
        frames = X.reshape(len(X), h, w)
        peaks = np.array([frames[:, np.abs(separation - r) < 0.5 * self.fwhm_].std()
                          for r in radii])
        signal = companion_signal(
            torch.as_tensor(where), torch.as_tensor(peaks / self.psf_.max()),
            torch.as_tensor(angles), shape, torch.as_tensor(self.psf_, dtype=torch.float64),
            self.patch_shape_, len(X)).numpy()
        snr = self.detection_map(X + signal.astype(X.dtype), angles)
        scores = []
        for (x, y), radius in zip(where, radii):
            near = np.hypot(xx - x, yy - y)
            ring = field & (np.abs(separation - radius) < self.fwhm_) & (near > 2 * self.fwhm_)
            values = snr[ring] if ring.sum() >= 8 else snr[field]
            centre = np.median(values)
            spread = 1.4826 * np.median(np.abs(values - centre)) or np.std(values) or 1.0
            scores.append((snr[near <= 1.0].max() - centre) / spread)
        return float(np.mean(scores))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
