import copy
import pickle

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import check_param_validation

from sklearn_mbdl import ExoplanetSeparator
from sklearn_mbdl.datasets import make_adi_cube
from sklearn_mbdl.exoplanet import (
    LocalADISeparator,
    derotate,
    paco_map,
    pca_adi,
    search_field,
)
from sklearn_mbdl.exoplanet._model import (
    _pad,
    _ring_svd,
    companion_signal,
    ring_geometry,
)
from sklearn_mbdl.metrics import detection_counts, detection_roc, snr_at

FWHM = 4.0


@pytest.fixture(scope="module")
def bright():
    """A small cube with one bright companion (and its planet-free twin)."""
    cube, angles, planets, psf = make_adi_cube(24, 40, n_planets=1, contrast=12.0,
                                               random_state=3)
    empty, _, _, _ = make_adi_cube(24, 40, n_planets=0, random_state=4)
    return cube, angles, planets, psf, empty


@pytest.fixture(scope="module")
def fitted(bright, device):
    cube, angles, _, psf, _ = bright
    return ExoplanetSeparator(psf, max_epochs=3, device=device,
                              random_state=0).fit(cube, angles=angles)


def test_make_adi_cube_puts_planets_where_it_says():
    cube, angles, planets, psf = make_adi_cube(16, 48, n_planets=2, contrast=40.0,
                                               rotation_range=50.0, random_state=0)
    assert cube.shape == (16, 48, 48) and angles.shape == (16,)
    assert np.ptp(angles) == pytest.approx(50.0)
    assert psf.shape[0] % 2 == 1 and psf.max() == pytest.approx(1.0)
    residual = pca_adi(cube, angles, 2)
    for p in planets:
        assert snr_at(residual, (p["x"], p["y"]), FWHM) > 5
        assert p["separation"] == pytest.approx(
            np.hypot(p["x"] - 23.5, p["y"] - 23.5))
    again = make_adi_cube(16, 48, n_planets=2, contrast=40.0,
                          rotation_range=50.0, random_state=0)
    np.testing.assert_array_equal(again[0], cube)


def test_trajectory_follows_rotation():
    """The model's companion signature agrees with derotation (both use
    vip-hci's angle convention)."""
    angles = np.linspace(-30, 30, 5)
    psf = torch.ones(1, 1, dtype=torch.float64)
    position = torch.tensor([[20.0, 10.0]], dtype=torch.float64)
    signal = companion_signal(position, torch.ones(1, dtype=torch.float64),
                              torch.from_numpy(angles), (32, 32), psf, (1, 1), 5)
    frames = derotate(signal.numpy().reshape(5, 32, 32), angles)
    row, col = np.unravel_index(np.argmax(frames.mean(0)), (32, 32))
    assert (col, row) == (20, 10)


def test_untrained_model_recovers_a_modelled_companion(bright):
    """Untrained, the network is block coordinate descent on the joint fit:
    a companion with the model's signature, absent from the atoms and from
    the static speckles (taken at the mirror pixel), comes back with its
    flux."""
    _, angles, _, psf, empty = bright
    cube = empty.reshape(24, -1) / empty.std()
    args = dict(cube=cube, angles=angles, psf=psf, image_shape=(40, 40),
                patch_shape=(7, 7), fwhm=FWHM, n_components=4, n_layers=20,
                static_speckles="mirror")
    module = LocalADISeparator(**args).double()
    where = torch.tensor([[30.0, 22.0], [12.0, 15.0]], dtype=torch.float64)
    with torch.no_grad():
        base = module.flux(where)
        injected = module.flux(where, inject=torch.tensor([2.0, 3.0],
                                                          dtype=torch.float64))
    np.testing.assert_allclose((injected - base).numpy(), [2.0, 3.0], rtol=0.02)


def test_mirror_static_speckles_leave_the_companion_out():
    """The static speckles taken at the mirror pixel do not hold a companion
    that the pixel's own temporal mean takes a share of; the speckles of
    ``make_adi_cube`` are nearly point-symmetric, so the mirror is a close
    estimate of them."""
    cube, angles, planets, psf, parts = make_adi_cube(
        24, 40, n_planets=1, contrast=12.0, random_state=3, return_components=True)
    empty = cube - parts["companions"]
    p = planets[0]
    pixel = int(round(p["y"])) * 40 + int(round(p["x"]))
    args = dict(angles=angles, psf=psf, image_shape=(40, 40), patch_shape=(5, 5),
                fwhm=FWHM, n_components=0, n_layers=1)
    share = {}
    for mode in ("mirror", "mean"):
        module = LocalADISeparator(cube.reshape(24, -1), static_speckles=mode,
                                   **args).double()
        with_planet = module.noise_model(_pad(torch.as_tensor(cube.reshape(24, -1))))[0]
        without = module.noise_model(_pad(torch.as_tensor(empty.reshape(24, -1))))[0]
        share[mode] = float(with_planet[pixel] - without[pixel]) / p["flux"]
    assert abs(share["mirror"]) < 0.02 and share["mean"] > 0.1
    speckles = parts["speckles"].mean(0)
    asym = np.abs(speckles - speckles[::-1, ::-1]).sum() / np.abs(speckles).sum()
    assert asym < 0.2
    with pytest.raises(ValueError, match="static_speckles must be"):
        LocalADISeparator(cube.reshape(24, -1), static_speckles="median", **args)


def test_bright_companion_found_with_its_flux(bright, fitted):
    cube, angles, planets, _, _ = bright
    found = fitted.find_companions(cube, angles=angles, threshold=5.0)
    assert len(found) == 1
    p = planets[0]
    assert np.hypot(found["x"][0] - p["x"], found["y"][0] - p["y"]) <= 1.5
    assert found["flux"][0] / p["flux"] == pytest.approx(1.0, abs=0.2)
    assert found["snr"][0] > 5


def test_no_detection_on_a_planet_free_cube(bright, device):
    _, angles, _, psf, empty = bright
    est = ExoplanetSeparator(psf, max_epochs=3, device=device,
                             random_state=0).fit(empty, angles=angles)
    assert len(est.find_companions(empty, angles=angles, threshold=5.0)) == 0
    snr = est.detection_map(empty, angles=angles)
    assert snr.shape == (40, 40)
    assert 0.7 < np.std(snr[snr != 0]) < 1.4       # calibrated: unit spread


def test_photometry_free_of_self_subtraction(bright, fitted):
    """PCA-ADI loses most of a close companion's flux; the model's
    photometry (companions taken out before the SVD) does not."""
    cube, angles, planets, _, _ = bright
    p = planets[0]
    i, j = int(round(p["y"])), int(round(p["x"]))
    pca = pca_adi(cube, angles, 5)[i, j] / p["flux"]
    ours = fitted.photometry(cube, [(p["x"], p["y"])], angles=angles)[0] / p["flux"]
    assert pca < 0.6
    assert ours == pytest.approx(1.0, abs=0.15)
    assert fitted.find_companions(cube, angles=angles)["flux"][0] / p["flux"] \
        == pytest.approx(1.0, abs=0.2)


def test_cross_fitting_maps_each_quadrant_with_the_opposite_network(bright, fitted):
    """A position in quadrant q is mapped by the network trained on quadrant
    q + 2: silencing that network's flux steps zeroes exactly that quadrant."""
    cube, angles, _, _, _ = bright
    assert len(fitted.nets_) == 4
    est = copy.deepcopy(fitted)
    with torch.no_grad():
        est.nets_[2].module_.flux_step.zero_()
    flux = est.flux_map(cube, angles=angles)
    yy, xx = np.mgrid[:40, :40]
    quadrant = (np.floor(np.mod(np.arctan2(yy - 19.5, xx - 19.5), 2 * np.pi)
                         / (np.pi / 2)).astype(int) % 4)
    assert np.all(flux[quadrant == 0] == 0)
    assert np.all(flux[quadrant != 0] != 0)


def test_transform_removes_speckles_and_keeps_layout(bright, fitted):
    cube, angles, _, _, _ = bright
    residual = fitted.transform(cube, angles=angles)
    assert residual.shape == cube.shape
    assert np.sum(residual ** 2) < 0.2 * np.sum(cube ** 2)
    flat = fitted.transform(cube.reshape(24, -1).astype(np.float32))
    assert flat.shape == (24, 1600) and flat.dtype == np.float32
    np.testing.assert_allclose(flat.reshape(cube.shape), residual, rtol=1e-3,
                               atol=1e-3 * np.abs(residual).max())
    # frames are processed independently
    np.testing.assert_allclose(fitted.transform(cube[:5]), residual[:5], atol=1e-12)


def test_baselines_see_a_companion():
    cube, angles, planets, psf = make_adi_cube(24, 40, n_planets=1, contrast=6.0,
                                               random_state=3)
    p = planets[0]
    flux, sigma = paco_map(cube, angles, psf, patch_size=5)
    snr = np.where(search_field((40, 40), FWHM, (5, 5)), flux / sigma, 0.0)
    row, col = np.unravel_index(np.argmax(snr), snr.shape)
    assert np.hypot(col - p["x"], row - p["y"]) < 2 and snr[row, col] > 3
    assert snr_at(pca_adi(cube, angles, 3, annular=True), (p["x"], p["y"]), FWHM) > 3


def test_make_adi_cube_components_and_paco_reference():
    """The noiseless parts add up to the cube (up to photon and read noise),
    and PACO's statistics taken without the companion stop absorbing it."""
    cube, angles, planets, psf, parts = make_adi_cube(
        24, 40, n_planets=1, contrast=6.0, random_state=3, return_components=True)
    again = make_adi_cube(24, 40, n_planets=1, contrast=6.0, random_state=3)
    np.testing.assert_array_equal(again[0], cube)
    speckles, companions = parts["speckles"], parts["companions"]
    noise = cube - speckles - companions
    # photon noise of 1e7 photons at the star's peak, read noise 5 counts
    expected = np.sqrt(np.clip(speckles + companions, 0, None) / 1e7 + 25 / 1e14)
    assert 0.9 < np.std(noise / expected) < 1.1
    p = planets[0]
    assert companions.max() == pytest.approx(p["flux"], rel=0.15)
    x, y = int(round(p["x"])), int(round(p["y"]))
    own = paco_map(cube, angles, psf, patch_size=5)[0][y, x] / p["flux"]
    oracle = paco_map(cube, angles, psf, patch_size=5,
                      reference=cube - companions)[0][y, x] / p["flux"]
    assert own < 0.7 and 0.8 < oracle < 1.3
    with pytest.raises(ValueError, match="reference must have the cube's shape"):
        paco_map(cube, angles, psf, reference=cube[:3])


def test_detection_metrics():
    image = np.zeros((32, 32))
    image[10, 20] = 8.0
    image[25, 5] = 6.0
    assert detection_counts(image, [(20.0, 10.0)], 5.0, fwhm=2.0) == (1, 1)
    assert detection_counts(image, [(21.0, 10.0)], 7.0, fwhm=2.0) == (1, 0)
    assert detection_counts(image, np.zeros((0, 2)), 5.0, fwhm=2.0) == (0, 2)
    tpr, false = detection_roc([image, image], [[(20.0, 10.0)], []],
                               [5.0, 7.0, 9.0], fwhm=2.0)
    np.testing.assert_allclose(tpr, [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(false, [3, 1, 0])
    rng = np.random.RandomState(0)
    noise = rng.standard_normal((64, 64))
    values = [snr_at(noise, (31.5 + 16 * np.cos(a), 31.5 + 16 * np.sin(a)), 4.0)
              for a in np.linspace(0, 2 * np.pi, 8, endpoint=False)]
    assert abs(np.mean(values)) < 1.5
    with pytest.raises(ValueError, match="too close"):
        snr_at(noise, (32.0, 33.0), 4.0)


def test_bad_input(bright):
    cube, angles, _, psf, _ = bright
    est = ExoplanetSeparator(psf, max_epochs=1)
    with pytest.raises(ValueError, match="angles"):
        est.fit(cube, angles=angles[:-1])
    with pytest.raises(ValueError, match="X is not a rectangular array"):
        est.fit([cube[0], cube[1, :-1]])
    bad = cube.copy()
    bad[3, 5, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(bad, angles=angles)
    with pytest.raises(ValueError, match="larger than the image"):
        ExoplanetSeparator(np.ones((41, 41))).fit(cube, angles=angles)
    with pytest.raises(ValueError, match="patch_size"):
        ExoplanetSeparator(patch_size=4).fit(cube)
    with pytest.raises(ValueError, match="static_speckles"):
        ExoplanetSeparator(static_speckles="median").fit(cube)
    with pytest.raises(ValueError, match="image_shape"):
        ExoplanetSeparator(image_shape=(3, 3)).fit(cube.reshape(24, -1))
    with pytest.raises(ValueError, match="at least 4 frames"):
        ExoplanetSeparator(psf).fit(cube[:3], angles=angles[:3])
    # 4 degrees: less than one FWHM of motion at the inner edge (4 px)
    with pytest.warns(UserWarning, match="less than one FWHM"):
        ExoplanetSeparator(psf).fit(cube, angles=np.linspace(0, 4, 24))


def test_ring_atoms_cover_every_pixel():
    centres, masks, nearest, _ = ring_geometry((40, 40), FWHM, (7, 7))
    assert masks[nearest, np.arange(1600)].all()
    atoms = _ring_svd(np.random.RandomState(0).standard_normal((6, 1600)), masks, 3)
    gram = np.einsum("rcn,rdn->rcd", atoms, atoms)
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(3), gram.shape), atol=1e-5)
    assert centres[0] == 0


# ----- vip-hci's angle convention, checked against vip-hci itself ----------
def _vip_injected(n_frames=16, size=41, rotation=(10.0, 70.0), flux=200.0,
                  radius=11.0, theta=35.0, seed=0):
    """Noise frames with one companion injected by vip-hci at ``(radius,
    theta)`` (an odd frame: vip-hci's centre is ours)."""
    fm = pytest.importorskip("vip_hci.fm")
    from sklearn_mbdl.exoplanet import gaussian_psf

    rng = np.random.RandomState(seed)
    angles = np.linspace(*rotation, n_frames)
    psf = gaussian_psf(FWHM, (11, 11))
    cube = rng.standard_normal((n_frames, size, size))
    cube = fm.cube_inject_companions(cube, psf, angles, flevel=flux,
                                     rad_dists=[radius], theta=theta, verbose=False)
    c = (size - 1) / 2
    where = (c + radius * np.cos(np.deg2rad(theta)),
             c + radius * np.sin(np.deg2rad(theta)))
    return cube, angles, psf, where


def _peak(image):
    row, col = np.unravel_index(np.argmax(image), image.shape)
    return col, row


def test_derotate_agrees_with_vip_cube_derotate():
    preproc = pytest.importorskip("vip_hci.preproc")
    cube, angles, _, (x, y) = _vip_injected()
    smooth = np.stack([np.exp(-((np.arange(41)[None] - 28 + k) ** 2
                                + (np.arange(41)[:, None] - 14) ** 2) / 20.0)
                       for k in range(len(angles))])
    ours = derotate(smooth, angles)
    theirs = preproc.cube_derotate(smooth, angles, imlib="skimage",
                                   interpolation="biquintic")
    assert np.abs(ours - theirs).max() < 0.05 * smooth.max()   # interpolation
    # the injected companion comes back where vip-hci put it
    assert _peak(derotate(cube, angles).mean(0)) == (round(x), round(y))


def test_maps_find_a_vip_injected_companion_where_vip_put_it():
    cube, angles, psf, (x, y) = _vip_injected()
    target = (round(x), round(y))
    assert _peak(pca_adi(cube, angles, 2)) == target
    flux, sigma = paco_map(cube, angles, psf, patch_size=5)
    assert _peak(np.where(search_field(flux.shape, FWHM), flux / sigma, 0)) == target
    est = ExoplanetSeparator(psf, max_epochs=1, random_state=0).fit(cube, angles=angles)
    snr = est.detection_map(cube, angles=angles)
    assert _peak(snr) == target and snr.max() > 5
    # in the mirrored convention the companion is smeared away from it
    assert _peak(est.detection_map(cube, angles=-angles)) != target


# ----- the physical-optics simulator (hcipy) ----------------------------------
@pytest.fixture(scope="module")
def physical():
    """A small physical-optics cube with one bright companion, its
    planet-free twin (same optics and noise seed) and the components."""
    pytest.importorskip("hcipy")
    pytest.importorskip("vip_hci")
    from sklearn_mbdl.datasets import make_physical_adi_cube

    kw = dict(rotation_range=70.0, random_state=11, separations=(12.0, 14.0))
    cube, angles, planets, psf, parts = make_physical_adi_cube(
        24, 49, n_planets=1, contrast=12.0, return_components=True, **kw)
    empty = make_physical_adi_cube(24, 49, n_planets=0, **kw)[0]
    return cube, angles, planets, psf, parts, empty


def test_physical_cube_is_seeded_and_holds_its_truth(physical):
    from sklearn_mbdl.datasets import make_physical_adi_cube

    cube, angles, planets, psf, parts, _ = physical
    assert cube.shape == (24, 49, 49) and psf.max() == pytest.approx(1.0)
    again = make_physical_adi_cube(24, 49, n_planets=1, contrast=12.0,
                                   rotation_range=70.0, random_state=11,
                                   separations=(12.0, 14.0))[0]
    np.testing.assert_array_equal(again, cube)
    p = planets[0]
    # the companion where the truth says (derotated noiseless part)
    assert _peak(derotate(parts["companions"], angles).mean(0)) == \
        (round(p["x"]), round(p["y"]))
    # amplitude aberrations and spiders: the speckles are not point-symmetric
    speckles = parts["speckles"].mean(0)
    yy, xx = np.mgrid[:49, :49]
    ring = np.abs(np.hypot(xx - 24, yy - 24) - 14) < 8
    assert np.corrcoef(speckles[ring], speckles[::-1, ::-1][ring])[0, 1] < 0.95
    # and they decorrelate over the sequence
    a, b = parts["speckles"][0][ring], parts["speckles"][-1][ring]
    assert np.corrcoef(a, b)[0, 1] < 0.99
    with pytest.raises(ValueError, match="image_size must be odd"):
        make_physical_adi_cube(8, 48)
    with pytest.raises(ValueError, match="coronagraph"):
        make_physical_adi_cube(8, 49, coronagraph="apodizer")


def test_physical_cube_bright_companion_found_with_its_flux(physical):
    """The defaults on a cube of the physical-optics simulator: the bright
    companion is found where vip-hci injected it, with its flux within 20%
    (photometry corrected for self-subtraction); the planet-free twin
    gives no detection and a calibrated map."""
    cube, angles, planets, psf, _, empty = physical
    p = planets[0]
    est = ExoplanetSeparator(psf, random_state=0).fit(cube, angles=angles)
    found = est.find_companions(cube, angles=angles, threshold=5.0)
    assert len(found) == 1
    assert np.hypot(found["x"][0] - p["x"], found["y"][0] - p["y"]) <= 1.5
    assert found["flux"][0] / p["flux"] == pytest.approx(1.0, abs=0.2)
    clean = ExoplanetSeparator(psf, random_state=0).fit(empty, angles=angles)
    snr = clean.detection_map(empty, angles=angles)
    field = search_field(snr.shape, FWHM)
    assert snr.max() < 5.0 and 0.6 < snr[field].std() < 1.4


def test_auto_static_speckles_follow_the_symmetry_of_the_data(bright, physical):
    """``static_speckles="auto"`` takes the mirror pixel's mean where the
    speckles are point-symmetric (make_adi_cube's idealised optics) and the
    pixel's own mean where they are not (amplitude aberrations, spiders, a
    vortex coronagraph)."""
    from sklearn_mbdl.exoplanet._model import mirror_shares

    def share(cube):
        n, h, w = cube.shape
        _, masks, nearest, _ = ring_geometry((h, w), FWHM, (5, 5))
        field = search_field((h, w), FWHM).ravel()
        mirror = mirror_shares(torch.as_tensor(cube.reshape(n, -1)), nearest, "auto")
        return mirror[nearest][field].mean()

    assert share(bright[0]) > 0.7
    assert share(physical[0]) < 0.3


def test_auto_static_speckles_average_the_two_means_under_photon_noise():
    """Where the temporal mean is point-symmetric within its own noise (a
    symmetric star under photon noise), ``"auto"`` takes the average of
    the pixel's mean and its mirror's: both estimate the same speckles."""
    from sklearn_mbdl.exoplanet._model import mirror_shares

    rng = np.random.RandomState(0)
    n, size = 40, 33
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    star = 200.0 * np.exp(-(xx ** 2 + yy ** 2) / 60.0) + 5.0
    cube = rng.poisson(star, size=(n, size, size)).astype(np.float32)
    _, _, nearest, _ = ring_geometry((size, size), FWHM, (5, 5))
    shares = mirror_shares(torch.as_tensor(cube.reshape(n, -1)), nearest, "auto")
    inner = slice(1, 5)            # the annuli inside the frame (not its corners)
    assert np.all(shares[inner] == 0.5)
    # an asymmetric static pattern above the noise: the own mean
    lopsided = star * (1 + 0.5 * (xx > 0))
    cube = rng.poisson(lopsided, size=(n, size, size)).astype(np.float32)
    shares = mirror_shares(torch.as_tensor(cube.reshape(n, -1)), nearest, "auto")
    assert np.all(shares[inner] == 0.0)


def test_pickle_does_not_grow_with_the_cube():
    """A fitted separator keeps the cube's model statistics, not its frames:
    4 times the frames, about the same pickle (four trained networks)."""
    sizes = []
    for n_frames in (24, 96):
        cube, angles, _, psf = make_adi_cube(n_frames, 24, n_planets=0,
                                             random_state=0)
        est = ExoplanetSeparator(psf, max_epochs=1, n_injections=64,
                                 random_state=0).fit(cube, angles=angles)
        assert len(est.nets_) == 4
        sizes.append(len(pickle.dumps(est)))
    assert sizes[1] / sizes[0] < 1.2
    # (and less than one float32 copy of the training cube)
    assert sizes[1] < cube.astype(np.float32).nbytes
    # the pickled model still maps a cube
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(restored.detection_map(cube, angles=angles),
                               est.detection_map(cube, angles=angles))


def test_parameters_and_inputs_are_checked(bright):
    cube, angles, planets, psf, _ = bright
    check_param_validation("ExoplanetSeparator", ExoplanetSeparator())
    with pytest.raises(NotFittedError):
        ExoplanetSeparator(psf).transform(cube)
    with pytest.raises(NotFittedError):
        ExoplanetSeparator(psf).detection_map(cube)
    with pytest.raises(ValueError, match="learn_dictionary"):
        ExoplanetSeparator(psf, learn_dictionary="yes").fit(cube)
    # flattened frames need image_shape (they were silently taken as squares)
    flat = cube.reshape(24, -1)
    with pytest.raises(ValueError, match="image_shape"):
        ExoplanetSeparator(psf).fit(flat)
    with pytest.raises(ValueError, match="image_shape"):
        ExoplanetSeparator(psf, image_shape=(20, 80)).fit(cube)
    with pytest.raises(ValueError, match="Found array with 0 sample"):
        ExoplanetSeparator(psf).fit(cube[:0])
    est = ExoplanetSeparator(psf, image_shape=(40, 40)).fit(flat, angles=angles)
    assert est.transform(flat).shape == flat.shape
    xy = [(planets["x"][0], planets["y"][0], 1.0)]
    with pytest.raises(ValueError, match="positions must be .* \\(n_companions, 2\\)"):
        est.photometry(flat, xy, angles=angles)
    with pytest.raises(ValueError, match="angles"):
        est.transform(flat, angles=angles + 1j)
    with pytest.raises(ValueError, match="features"):
        est.transform(flat[:, :-1])
    # a bad value set after fit is caught where it is read
    est.set_params(static_speckles="median")
    with pytest.raises(ValueError, match="static_speckles"):
        est.photometry(flat, xy[0][:2], angles=angles)
    with pytest.raises(ValueError, match="static_speckles"):
        est.transform(flat)


def test_one_warning_for_the_quadrants_that_keep_the_start(bright):
    """Training that cannot help (atoms learned at a rate far too large)
    keeps the untrained model in every quadrant, with one warning for the
    four."""
    cube, angles, _, psf, _ = bright
    untrained = ExoplanetSeparator(psf, n_components=3).fit(cube, angles=angles)
    with pytest.warns(UserWarning) as record:
        est = ExoplanetSeparator(psf, n_components=3, max_epochs=1, n_injections=64,
                                 lr=5.0, dictionary_lr=1.0,
                                 random_state=0).fit(cube, angles=angles)
    messages = [str(w.message) for w in record if "training did not" in str(w.message)]
    assert len(messages) == 1 and "4 of the 4" in messages[0]
    assert est.trained_error_ > est.start_error_
    np.testing.assert_allclose(est.detection_map(cube, angles=angles),
                               untrained.detection_map(cube, angles=angles),
                               rtol=1e-5, atol=1e-5)


def test_score_recovers_injected_companions_and_tunes_on_one_cube():
    """score injects companions with the known model and measures their S/N
    in the detection map: a seeded, finite figure that GridSearchCV can
    maximise on one cube (fit and score on all frames, angles routed)."""
    import sklearn
    from sklearn.model_selection import GridSearchCV

    cube, angles, _, psf = make_adi_cube(24, 48, n_planets=0, random_state=0)
    est = ExoplanetSeparator(psf).fit(cube, angles=angles)
    first = est.score(cube, angles=angles)
    assert first == est.score(cube, angles=angles)
    # companions as bright as the speckles, over 24 frames: well detected
    assert first > 5
    all_frames = [(np.arange(len(cube)), np.arange(len(cube)))]
    with sklearn.config_context(enable_metadata_routing=True):
        tuned = ExoplanetSeparator(psf).set_fit_request(angles=True)
        tuned.set_score_request(angles=True)
        search = GridSearchCV(tuned, {"n_components": [0, 1]}, cv=all_frames)
        search.fit(cube, angles=angles)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    # without routing, score would not get the angles: fit says so
    with pytest.raises(ValueError, match="enable_metadata_routing"):
        GridSearchCV(ExoplanetSeparator(psf), {"n_components": [0]},
                     cv=all_frames).fit(cube, angles=angles)
