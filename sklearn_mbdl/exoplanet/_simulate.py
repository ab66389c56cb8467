"""The idealised ADI simulator behind
:func:`sklearn_mbdl.datasets.make_adi_cube`.

A clear circular pupil with phase-only aberrations (a static screen, a
slowly evolving pair and a small frame-to-frame part), an ideal coronagraph
that removes the coherent part of the pupil field, FFT propagation to the
focal plane, companions at fixed sky positions turned with the field, and
photon and read noise. :mod:`sklearn_mbdl.exoplanet._optics` is the second,
independent simulator built on hcipy.
"""

import numpy as np
import torch

from ..operators import rotate
from ._adi import distinct_separations

__all__ = ["simulate_adi"]


def _phase_screen(rng, m, diameter, slope):
    """A random pupil phase with a power-law spectrum, unit RMS on the pupil."""
    f = np.fft.fftfreq(m) * m / diameter          # cycles per pupil diameter
    fx, fy = np.meshgrid(f, f)
    radius = np.hypot(fx, fy)
    amplitude = np.where(radius > 0, np.maximum(radius, 0.5) ** (-slope / 2), 0.0)
    noise = rng.standard_normal((m, m)) + 1j * rng.standard_normal((m, m))
    screen = np.fft.ifft2(amplitude * noise).real
    inside = np.hypot(*np.meshgrid(np.arange(m) - m / 2, np.arange(m) - m / 2)) \
        <= diameter / 2
    screen = screen - screen[inside].mean()
    return screen / screen[inside].std()


def simulate_adi(n_frames, image_size, *, rotation_range, n_planets, contrast, fwhm,
                 speckle_decorrelation, rng):
    """The simulation behind :func:`sklearn_mbdl.datasets.make_adi_cube` (see
    there for the parameters, already checked); returns the cube, angles,
    planets, psf and the noiseless components."""
    n = image_size
    m = 2 * n                                   # pupil grid: no aliasing in the crop
    diameter = 1.03 * m / fwhm                  # Airy FWHM = 1.03 lambda / D
    u = np.arange(m) - m / 2
    ux, uy = np.meshgrid(u, u)
    pupil = (np.hypot(ux, uy) <= diameter / 2).astype(float)
    # half-pixel tilt: the star lands on the centre of the even grid
    tilt = np.exp(-1j * np.pi * (ux + uy) / m)
    crop = slice(m // 2 - n // 2, m // 2 - n // 2 + n)

    def focal(field):
        image = np.abs(np.fft.fftshift(np.fft.fft2(field))) ** 2
        return image[..., crop, crop]

    peak = focal(pupil * tilt).max()
    # pupil aberrations in radians RMS
    static = 0.1 * _phase_screen(rng, m, diameter, 2.5)
    slow_a = 0.1 * _phase_screen(rng, m, diameter, 2.5)
    slow_b = 0.1 * _phase_screen(rng, m, diameter, 2.5)
    fast = 0.01
    t = np.linspace(0.0, np.pi / 2, n_frames)
    evolving = speckle_decorrelation
    frames = np.empty((n_frames, n, n))
    for k in range(n_frames):
        phase = (np.sqrt(1 - evolving ** 2) * static
                 + evolving * (np.cos(t[k]) * slow_a + np.sin(t[k]) * slow_b)
                 + fast * _phase_screen(rng, m, diameter, 2.0))
        field = pupil * np.exp(1j * phase)
        field = (field - pupil * field[pupil > 0].mean()) * tilt   # ideal coronagraph
        frames[k] = focal(field) / peak
    angles = np.linspace(-rotation_range / 2, rotation_range / 2, n_frames)
    centre = (n - 1) / 2
    # classical-ADI noise per separation, on the planet-free speckles
    yy, xx = np.mgrid[:n, :n]
    radius = np.hypot(xx - centre, yy - centre)
    residual = frames - np.median(frames, axis=0)
    derotated = rotate(torch.from_numpy(residual), torch.from_numpy(angles)).numpy()
    cadi = derotated.mean(axis=0)

    def noise_at(sep):
        ring = np.abs(radius - sep) <= max(fwhm / 2, 1.0)
        return float(cadi[ring].std())

    # photon noise: a star of 1e7 counts at its peak (1e3 at contrast 1e-4),
    # read noise of 5 counts
    photons = 1e7
    # companions on the sky
    psf_full = focal(pupil)                       # centred on pixel n // 2
    size = 2 * int(np.ceil(2 * fwhm)) + 1
    c = n // 2
    psf = psf_full[c - size // 2:c + size // 2 + 1, c - size // 2:c + size // 2 + 1]
    psf = psf / psf.max()
    planets = np.zeros(n_planets, dtype=[("x", float), ("y", float),
                                         ("separation", float),
                                         ("position_angle", float), ("flux", float)])
    sky = np.zeros((n, n))
    low, high = 2 * fwhm, n / 2 - 1.5 * fwhm
    seps = distinct_separations(rng, n_planets, low, high, fwhm)
    for i in range(n_planets):
        sep = seps[i]
        pa = rng.uniform(0, 360)
        x = centre + sep * np.cos(np.deg2rad(pa))
        y = centre + sep * np.sin(np.deg2rad(pa))
        flux = contrast * noise_at(sep)
        planets[i] = (x, y, sep, pa, flux)
        # the off-axis PSF at (x, y): a tilt of the pupil field
        shift = np.exp(2j * np.pi * ((x - centre) * ux + (y - centre) * uy) / m)
        sky += flux * focal(pupil * tilt * shift) / peak
    companions = np.zeros_like(frames)
    if n_planets:
        # vip-hci's convention: the sky turns clockwise by the angle
        companions = rotate(torch.from_numpy(sky), torch.from_numpy(-angles),
                            mode="bicubic").numpy()
    speckles = frames
    frames = speckles + companions
    counts = rng.poisson(np.clip(frames, 0, None) * photons).astype(float)
    counts += 5.0 * rng.standard_normal(counts.shape)
    return counts / photons, angles, planets, psf, {"speckles": speckles,
                                                    "companions": companions}
