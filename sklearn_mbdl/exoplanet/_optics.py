"""A physical-optics ADI simulator on hcipy (an independent second simulator).

:func:`sklearn_mbdl.datasets.make_adi_cube` idealises the optics (a clear
circular pupil, phase-only aberrations, an ideal coronagraph that removes
the coherent part of the field). This module builds ADI sequences through
the field's own optics library, hcipy, with what a real instrument has and
that idealisation lacks:

- an obstructed pupil with spiders (a central obscuration and four spider
  arms, anti-aliased by supersampling);
- a real coronagraph: a charge-2 vortex (hcipy's ``VortexCoronagraph``) or a
  classical Lyot coronagraph (an opaque focal-plane disc, hcipy's
  ``LyotCoronagraph``), each followed by an undersized Lyot stop with a
  larger obscuration and thicker spiders;
- phase *and* amplitude aberrations with power-law spectra: a static part
  (non-common-path aberrations), a quasi-static part that drifts along the
  sequence (a smooth random combination of several screens, so the speckles
  decorrelate over the sequence rather than along one fixed direction),
  and a fast AO-like residual redrawn several times within each frame;
- photon (Poisson) and read (Gaussian) noise;
- companions injected in vip-hci's convention (``vip_hci.fm.
  cube_inject_companions`` itself: frame ``k`` sees the sky turned
  clockwise by ``angles[k]``).

Units: the focal plane is sampled at ``fwhm / 1.03`` pixels per
``lambda / D`` (the off-axis PSF's FWHM is about ``fwhm`` pixels);
intensities are in units of the off-axis PSF's peak (a companion of flux
``1e-4`` has a peak ten thousand times fainter than the star seen off
axis). The star is at the centre pixel of the (odd) frames, which is
vip-hci's centre too.
"""

import numpy as np

from ._adi import distinct_separations

__all__ = ["simulate_physical_adi"]

#: Pupil grid samples across the pupil diameter.
_PUPIL_SAMPLES = 96


def _power_law_screen(rng, n, exponent, inside):
    """A random screen on an ``n x n`` pupil grid with a power-law spectrum
    ``f ** exponent`` (spatial frequency in cycles per pupil), zero mean and
    unit RMS on ``inside``."""
    f = np.fft.fftfreq(2 * n) * 2 * n / n          # cycles per pupil, padded 2x
    fx, fy = np.meshgrid(f, f)
    radius = np.hypot(fx, fy)
    amplitude = np.where(radius > 0, np.maximum(radius, 0.5) ** (exponent / 2), 0.0)
    shape = (2 * n, 2 * n)
    noise = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    screen = np.fft.ifft2(amplitude * noise).real[:n, :n].ravel()
    screen = screen - screen[inside].mean()
    return screen / screen[inside].std()


def _smooth_paths(rng, n_frames, n_paths, correlation):
    """``n_paths`` smooth random time series over the frames (Gaussian
    processes with a Gaussian kernel of width ``correlation`` frames),
    unit RMS each."""
    t = np.arange(n_frames, dtype=float)
    kernel = np.exp(-0.5 * ((t[:, None] - t[None, :]) / max(correlation, 1e-3)) ** 2)
    root = np.linalg.cholesky(kernel + 1e-8 * np.eye(n_frames))
    paths = root @ rng.standard_normal((n_frames, n_paths))
    return paths / np.sqrt((paths ** 2).mean())


def simulate_physical_adi(n_frames, image_size, *, rotation_range, n_planets,
                          contrast, fwhm, coronagraph, static_phase,
                          static_amplitude, quasistatic, fast_phase,
                          star_photons, read_noise, separations, rng,
                          n_substeps=3):
    """The simulation behind :func:`sklearn_mbdl.datasets.
    make_physical_adi_cube` (see there for the parameters); returns the
    cube, angles, planets, psf and the noiseless components."""
    import hcipy as hp
    from vip_hci.fm import cube_inject_companions

    from ._adi import derotate

    n = image_size
    m = _PUPIL_SAMPLES
    pupil_grid = hp.make_pupil_grid(m, 1.0)
    aperture = np.asarray(hp.evaluate_supersampled(
        hp.make_obstructed_circular_aperture(1.0, 0.14, 4, 0.015), pupil_grid, 4))
    lyot = np.asarray(hp.evaluate_supersampled(
        hp.make_obstructed_circular_aperture(0.92, 0.24, 4, 0.04), pupil_grid, 4))
    per_lod = fwhm / 1.03                              # pixels per lambda / D
    focal_grid = hp.make_uniform_grid([n, n], [n / per_lod, n / per_lod])
    propagator = hp.FraunhoferPropagator(pupil_grid, focal_grid)
    if coronagraph == "vortex":
        mask = hp.VortexCoronagraph(pupil_grid, 2)
    else:
        # an opaque disc of radius 2.5 lambda / D on a finely sampled grid
        mask_grid = hp.make_focal_grid(8, 4.0)
        disc = 1 - hp.make_circular_aperture(5.0)(mask_grid)
        mask = hp.LyotCoronagraph(pupil_grid, disc)

    def image(field):
        after = mask.forward(hp.Wavefront(hp.Field(field, pupil_grid), 1.0))
        out = propagator(hp.Wavefront(after.electric_field * lyot, 1.0))
        return np.asarray(out.power).reshape(n, n)

    # the off-axis PSF (the companion's, through the Lyot stop): the unit
    off_axis = np.asarray(propagator(hp.Wavefront(hp.Field(aperture * lyot, pupil_grid),
                                                  1.0)).power).reshape(n, n)
    peak = off_axis.max()
    inside = aperture > 0.5
    screens = lambda k, e: np.stack([_power_law_screen(rng, m, e, inside)  # noqa: E731
                                     for _ in range(k)])
    # aberrations: phase in radians RMS, amplitude as a relative RMS
    phase0 = static_phase * screens(1, -2.5)[0]
    amp0 = static_amplitude * screens(1, -2.0)[0]
    n_slow = 6
    slow_phase = screens(n_slow, -2.5)
    slow_amp = screens(n_slow, -2.0)
    paths = _smooth_paths(rng, n_frames, 2 * n_slow, correlation=n_frames / 4)
    scale = quasistatic / np.sqrt(n_slow)
    frames = np.empty((n_frames, n, n))
    for k in range(n_frames):
        phase = phase0 + scale * static_phase * (paths[k, :n_slow] @ slow_phase)
        amp = amp0 + scale * static_amplitude * (paths[k, n_slow:] @ slow_amp)
        total = np.zeros((n, n))
        for _ in range(n_substeps):
            # the AO residual: redrawn within the exposure
            fast = fast_phase * _power_law_screen(rng, m, -11.0 / 3.0, inside)
            total += image(aperture * (1 + amp) * np.exp(1j * (phase + fast)))
        frames[k] = total / (n_substeps * peak)
    speckles = frames
    angles = np.linspace(-rotation_range / 2, rotation_range / 2, n_frames)
    size = 2 * int(np.ceil(2 * fwhm)) + 1
    c = n // 2
    crop = slice(c - size // 2, c + size // 2 + 1)
    psf = off_axis[crop, crop] / peak

    def noisy(expected):
        counts = rng.poisson(np.clip(expected, 0, None) * star_photons).astype(float)
        return (counts + read_noise * rng.standard_normal(counts.shape)) / star_photons

    # classical-ADI noise per separation, on a noisy planet-free cube (so
    # that photon-limited cubes set the contrast by their photon noise)
    yy, xx = np.mgrid[:n, :n]
    radius = np.hypot(xx - c, yy - c)
    empty = noisy(speckles)
    cadi = derotate(empty - np.median(empty, axis=0), angles).mean(0)

    def noise_at(sep):
        ring = np.abs(radius - sep) <= max(fwhm / 2, 1.0)
        return float(cadi[ring].std())

    planets = np.zeros(n_planets, dtype=[("x", float), ("y", float),
                                         ("separation", float),
                                         ("position_angle", float), ("flux", float)])
    low, high = separations if separations is not None else \
        (2 * per_lod, n / 2 - 1.5 * fwhm)
    if n_planets and not (0 < low < high <= n / 2 - fwhm):
        raise ValueError(
            f"separations {low:.1f}-{high:.1f} pixels do not fit a {n}-pixel frame "
            f"with fwhm={fwhm}.")
    seps = distinct_separations(rng, n_planets, low, high, fwhm)
    companions = np.zeros_like(frames)
    for i in range(n_planets):
        pa = rng.uniform(0, 360)
        flux = contrast * noise_at(seps[i])
        planets[i] = (c + seps[i] * np.cos(np.deg2rad(pa)),
                      c + seps[i] * np.sin(np.deg2rad(pa)), seps[i], pa, flux)
        companions = cube_inject_companions(
            companions, psf, angles, flevel=flux, rad_dists=[seps[i]], theta=pa,
            imlib="vip-fft", verbose=False)
    cube = noisy(speckles + companions)
    return cube, angles, planets, psf, {"speckles": speckles, "companions": companions}
