"""ADI geometry and the model-based baselines.

Conventions: the star is at the image centre ``c = ((w - 1) / 2, (h - 1) /
2)`` (for odd frames the centre pixel, where vip-hci puts it too); positions
are ``(x, y)`` = (column, row), position angles counterclockwise from ``+x``
as displayed with ``imshow(origin="lower")``. **Angles follow vip-hci's
convention** (the parallactic angles of the FITS headers, as
``vip_hci.fm.cube_inject_companions`` and ``vip_hci.preproc.cube_derotate``
take them): frame ``k`` sees the sky turned *clockwise* by ``angles[k]``
degrees, so a companion at sky position ``p`` sits at ``c + R(-angles[k]) (p
- c)`` in frame ``k`` (position angle ``theta - angles[k]``), and derotating
the frame, turning it counterclockwise by ``angles[k]``
(:func:`sklearn_mbdl.operators.rotate` by ``+angles[k]``), brings it back.

Baselines:

- :func:`pca_adi`: PCA-ADI / KLIP (Soummer et al. 2012, Amara & Quanz 2012),
  full-frame or in annuli, with scikit-learn's PCA;
- :func:`paco_map`: a PACO-style local Gaussian model (Flasseur et al.
  2018): per-pixel patch mean and shrunk covariance over the frames, and the
  maximum-likelihood flux along each trajectory with its standard deviation.
"""

import math

import numpy as np
import torch

from ..operators import rotate

__all__ = ["derotate", "gaussian_psf", "trajectory_patches", "pca_adi",
           "paco_map", "annulus_scale", "search_field", "snr_map"]


def distinct_separations(rng, n_planets, low, high, fwhm):
    """Sorted separations of ``n_planets`` companions drawn uniformly in
    ``[low, high]`` pixels, at least 1.5 FWHM apart (distinct annuli, so
    that each companion's S/N apertures avoid the others)."""
    for _ in range(10000):
        seps = np.sort(rng.uniform(low, high, size=n_planets))
        if n_planets < 2 or np.diff(seps).min() >= 1.5 * fwhm:
            return seps
    raise ValueError(
        f"n_planets={n_planets} companions do not fit in distinct annuli "
        f"(1.5 FWHM apart) between {low:.1f} and {high:.1f} pixels.")


def derotate(frames, angles):
    """Turn every frame back to the sky orientation and return the stack.

    Parameters
    ----------
    frames : ndarray of shape (n_frames, h, w)
    angles : ndarray of shape (n_frames,)
        Parallactic angles in degrees, in vip-hci's convention: frame ``k``
        is turned counterclockwise by ``angles[k]`` (as
        ``vip_hci.preproc.cube_derotate`` does, about the centre
        ``((w - 1) / 2, (h - 1) / 2)``; vip-hci's centre is the same pixel
        for odd frames).

    Returns
    -------
    ndarray of shape (n_frames, h, w)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mbdl.exoplanet import derotate
    >>> derotate(np.ones((2, 5, 5)), np.array([0.0, 90.0])).shape
    (2, 5, 5)
    """
    frames = np.asarray(frames, dtype=np.float64)
    out = rotate(torch.from_numpy(frames),
                 torch.from_numpy(np.asarray(angles, dtype=np.float64)))
    return out.numpy()


def gaussian_psf(fwhm, shape=None):
    """A Gaussian PSF of peak 1 with the given FWHM.

    Parameters
    ----------
    fwhm : float
        Full width at half maximum, in pixels.
    shape : (int, int), default=None
        Grid shape; an odd square of side ``2 ceil(2 fwhm) + 1`` when None.

    Returns
    -------
    ndarray of shape ``shape``

    Examples
    --------
    >>> from sklearn_mbdl.exoplanet import gaussian_psf
    >>> psf = gaussian_psf(4.0)
    >>> psf.shape, float(psf.max())
    ((17, 17), 1.0)
    """
    size = 2 * int(math.ceil(2 * fwhm)) + 1
    h, w = shape if shape is not None else (size, size)
    y = np.arange(h) - (h - 1) / 2
    x = np.arange(w) - (w - 1) / 2
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
    return np.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma ** 2))


def _sample_psf(psf, ox, oy):
    """Bilinear samples of ``psf`` at offsets ``(ox, oy)`` from its centre
    (zero outside)."""
    sh, sw = psf.shape
    gx = ox + (sw - 1) / 2
    gy = oy + (sh - 1) / 2
    x0, y0 = torch.floor(gx), torch.floor(gy)
    fx, fy = gx - x0, gy - y0
    padded = torch.nn.functional.pad(psf, (1, 1, 1, 1)).reshape(-1)
    out = 0.0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi = (x0 + dx).long() + 1
            yi = (y0 + dy).long() + 1
            inside = (xi >= 0) & (xi < sw + 2) & (yi >= 0) & (yi < sh + 2)
            flat = torch.where(inside, yi.clamp(0, sh + 1) * (sw + 2)
                               + xi.clamp(0, sw + 1), 0)
            out = out + wx * wy * torch.where(inside, padded[flat], 0.0)
    return out


def trajectory_patches(positions, angles, image_shape, psf, patch_shape):
    """Where a companion at each sky position falls in every frame.

    Parameters
    ----------
    positions : torch.Tensor of shape (n, 2)
        Sky positions ``(x, y)`` in pixels.
    angles : torch.Tensor of shape (n_frames,)
        Degrees, vip-hci's convention: frame ``k`` sees the sky turned
        clockwise by ``angles[k]``.
    image_shape : (int, int)
    psf : torch.Tensor of shape (sh, sw)
    patch_shape : (int, int)
        Odd patch sides.

    Returns
    -------
    index : torch.LongTensor of shape (n, n_frames, n_patch)
        Flat pixel index of every patch pixel; ``h * w`` (a padding pixel)
        outside the image.
    signature : torch.Tensor of shape (n, n_frames, n_patch)
        The PSF of unit flux centred on the companion, on those pixels.
    centre : torch.LongTensor of shape (n, n_frames)
        Flat index of the patch centre (clamped into the image).
    """
    h, w = image_shape
    ph, pw = patch_shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    # vip-hci's convention: the sky turns clockwise by the angle in frame k
    theta = -angles.to(positions.dtype) * (math.pi / 180)
    dx = positions[:, 0:1] - cx
    dy = positions[:, 1:2] - cy
    lx = cx + torch.cos(theta) * dx - torch.sin(theta) * dy      # (n, K)
    ly = cy + torch.sin(theta) * dx + torch.cos(theta) * dy
    rx, ry = torch.round(lx), torch.round(ly)
    oy, ox = torch.meshgrid(
        torch.arange(ph, device=positions.device) - ph // 2,
        torch.arange(pw, device=positions.device) - pw // 2, indexing="ij")
    ox, oy = ox.reshape(-1), oy.reshape(-1)
    px = rx.long()[..., None] + ox                                 # (n, K, P)
    py = ry.long()[..., None] + oy
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    index = torch.where(inside, py * w + px, h * w)
    signature = _sample_psf(psf, px.to(lx.dtype) - lx[..., None],
                            py.to(ly.dtype) - ly[..., None])
    signature = torch.where(inside, signature, 0.0)
    centre = ry.long().clamp(0, h - 1) * w + rx.long().clamp(0, w - 1)
    return index, signature, centre


def _annuli(image_shape, width):
    h, w = image_shape
    yy, xx = np.mgrid[:h, :w]
    radius = np.hypot(xx - (w - 1) / 2, yy - (h - 1) / 2)
    return radius, np.floor(radius / width).astype(int)


def annulus_scale(image, width, *, mask=None):
    """Robust standard deviation (1.4826 MAD) of a map in annuli around the
    centre, as a map of the same shape.

    Parameters
    ----------
    image : ndarray of shape (h, w)
    width : float
        Width of the annuli, in pixels.
    mask : ndarray of bool of shape (h, w), default=None
        Pixels the spread is measured on (all when None); every pixel of an
        annulus gets its annulus' value.

    Returns
    -------
    ndarray of shape (h, w)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mbdl.exoplanet import annulus_scale
    >>> scale = annulus_scale(np.random.RandomState(0).standard_normal((64, 64)), 4.0)
    >>> bool(0.7 < np.median(scale) < 1.3)
    True
    """
    _, label = _annuli(image.shape, width)
    use = np.ones(image.shape, bool) if mask is None else mask
    scale = np.zeros(image.shape)
    for j in np.unique(label):
        ring = label == j
        values = image[ring & use]
        if values.size < 3:
            continue
        mad = np.median(np.abs(values - np.median(values)))
        scale[ring] = 1.4826 * mad
    # annuli too small to measure take their neighbour's scale
    positive = scale[scale > 0]
    scale[scale <= 0] = positive.min() if positive.size else 1.0
    return scale


def search_field(image_shape, fwhm, patch_shape=(7, 7)):
    """Pixels searched for companions: from 1 FWHM off the star to the
    largest circle whose companions' patches stay inside the frames (all
    pixels when that leaves none).

    Examples
    --------
    >>> from sklearn_mbdl.exoplanet import search_field
    >>> field = search_field((64, 64), 4.0)
    >>> bool(field[31, 50]), bool(field[31, 31]), bool(field[0, 0])
    (True, False, False)
    """
    h, w = image_shape
    ph, pw = patch_shape
    yy, xx = np.mgrid[:h, :w]
    sep = np.hypot(xx - (w - 1) / 2, yy - (h - 1) / 2)
    field = (sep >= fwhm) & (sep <= min((h - ph) / 2, (w - pw) / 2))
    return field if field.any() else np.ones((h, w), bool)


def snr_map(flux, fwhm, *, patch_shape=(7, 7)):
    """A flux (or residual) map over its robust spread in annuli one FWHM
    wide (:func:`annulus_scale`), 0 outside :func:`search_field`: the
    detection map of :class:`ExoplanetSeparator`, usable on any method's map.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mbdl.exoplanet import snr_map
    >>> snr = snr_map(np.random.RandomState(0).standard_normal((64, 64)), 4.0)
    >>> bool(0.8 < snr[snr != 0].std() < 1.2)
    True
    """
    flux = np.asarray(flux, dtype=np.float64)
    field = search_field(flux.shape, fwhm, patch_shape)
    snr = flux / annulus_scale(flux, fwhm, mask=field)
    snr[~field] = 0.0
    return snr


def pca_adi(cube, angles, n_components, *, annular=False, fwhm=4.0,
            random_state=0):
    """PCA-ADI (KLIP): subtract each frame's projection on the cube's
    principal components, derotate and average.

    Parameters
    ----------
    cube : ndarray of shape (n_frames, h, w)
        The ADI sequence: frames centred on the star, at ``((w - 1) / 2,
        (h - 1) / 2)``.
    angles : ndarray of shape (n_frames,)
        Parallactic angles in degrees, vip-hci's convention (see
        :func:`derotate`).
    n_components : int
        Principal components subtracted from every frame (in every annulus
        with ``annular=True``); at most ``n_frames - 1`` are used.
    annular : bool, default=False
        Separate PCAs in annuli one FWHM wide (``n_components`` each).
    fwhm : float, default=4.0
        PSF full width at half maximum in pixels: the annuli's width.
    random_state : int, default=0
        For scikit-learn's PCA solver.

    Returns
    -------
    residual : ndarray of shape (h, w)
        The mean of the derotated residual frames.

    Examples
    --------
    >>> from sklearn_mbdl.datasets import make_adi_cube
    >>> from sklearn_mbdl.exoplanet import pca_adi
    >>> cube, angles, planets, psf = make_adi_cube(8, 32, n_planets=1, random_state=0)
    >>> pca_adi(cube, angles, 3).shape
    (32, 32)
    """
    from sklearn.decomposition import PCA

    cube = np.asarray(cube, dtype=np.float64)
    n, h, w = cube.shape
    flat = cube.reshape(n, -1)
    if annular:
        _, label = _annuli((h, w), fwhm)
        groups = [np.flatnonzero(label.ravel() == j) for j in np.unique(label)]
    else:
        groups = [np.arange(h * w)]
    residual = np.zeros_like(flat)
    for pixels in groups:
        block = flat[:, pixels]
        k = min(n_components, n - 1, pixels.size)
        if k < 1:
            residual[:, pixels] = block - block.mean(0)
            continue
        pca = PCA(k, svd_solver="full", random_state=random_state).fit(block)
        residual[:, pixels] = block - pca.inverse_transform(pca.transform(block))
    return derotate(residual.reshape(n, h, w), angles).mean(axis=0)


def _patches(cube, patch_shape):
    """Patches around every pixel: (n_frames, h * w, n_patch), zero-padded."""
    ph, pw = patch_shape
    t = torch.from_numpy(cube)[:, None]
    cols = torch.nn.functional.unfold(t, (ph, pw), padding=(ph // 2, pw // 2))
    return cols.transpose(1, 2).numpy()


def local_inverse_covariance(frames, image_shape, patch_shape, *, floor=1e-6):
    """Inverse covariance of the patch around every pixel over the frames,
    shrunk towards its diagonal by PACO's data-driven factor (Flasseur et
    al. 2018, eq. 10).

    Parameters
    ----------
    frames : torch.Tensor of shape (n_frames, h * w)
        Centred frames (patches outside the image read zeros).
    image_shape, patch_shape : (int, int)
    floor : float, default=1e-6
        Added to the diagonal, relative to its mean (a guard for pixels
        whose patches leave the image).

    Returns
    -------
    torch.Tensor of shape (h * w, n_patch, n_patch)
    """
    n = frames.shape[0]
    ph, pw = patch_shape
    images = frames.reshape(n, 1, *image_shape)
    patches = torch.nn.functional.unfold(images, (ph, pw), padding=(ph // 2, pw // 2))
    patches = patches.transpose(1, 2)                             # (K, N, P)
    cov = torch.einsum("knp,knq->npq", patches, patches) / n
    diag = torch.diagonal(cov, dim1=1, dim2=2)
    tr_s2 = (cov * cov).sum((1, 2))
    tr2 = diag.sum(1) ** 2
    d2 = (diag ** 2).sum(1)
    rho = (tr_s2 + tr2 - 2 * d2) / ((n + 1) * (tr_s2 - d2)).clamp_min(1e-30)
    rho = rho.clamp(0.0, 1.0)[:, None, None]
    eye = torch.eye(ph * pw, dtype=frames.dtype, device=frames.device)
    shrunk = (1 - rho) * cov + rho * torch.diag_embed(diag)
    guard = floor * diag.mean(1).clamp_min(1e-30) + 1e-30
    return torch.linalg.inv(shrunk + guard[:, None, None] * eye)


def paco_map(cube, angles, psf, *, patch_size=7, reference=None, chunk=256):
    """A PACO-style detection map: local Gaussian patch statistics.

    At every pixel the patches of all frames give a mean ``m`` and a
    covariance shrunk towards its diagonal (PACO's data-driven shrinkage,
    Flasseur et al. 2018). For a companion at sky position ``p`` the patch
    ``r_k`` of frame ``k`` around its position, minus the mean there, and
    the PSF ``b_k`` there give::

        a = sum_k b_k^T C_k^-1 b_k,    flux = sum_k b_k^T C_k^-1 r_k / a,
        sigma = 1 / sqrt(a),           S/N = flux / sigma.

    Parameters
    ----------
    cube : ndarray of shape (n_frames, h, w)
        As in :func:`pca_adi`.
    angles : ndarray of shape (n_frames,)
        As in :func:`pca_adi`.
    psf : ndarray of shape (sh, sw)
        Off-axis PSF: a companion of flux 1 adds ``psf`` centred on it.
    patch_size : int, default=7
        Side of the square patch around every pixel whose mean and
        covariance are estimated.
    reference : ndarray of shape (n_frames, h, w), default=None
        Frames the local statistics (mean and covariance) are estimated
        from; by default the cube itself, as PACO does. An oracle study can
        pass the cube without its companions: the statistics then no longer
        absorb part of them.
    chunk : int, default=256
        Sky positions per batch.

    Returns
    -------
    flux, sigma : ndarray of shape (h, w)
        Flux estimate and its standard deviation at every sky pixel.

    Examples
    --------
    >>> from sklearn_mbdl.datasets import make_adi_cube
    >>> from sklearn_mbdl.exoplanet import paco_map
    >>> cube, angles, planets, psf = make_adi_cube(8, 32, n_planets=1, random_state=0)
    >>> flux, sigma = paco_map(cube, angles, psf, patch_size=5)
    >>> flux.shape, bool((sigma > 0).all())
    ((32, 32), True)
    """
    cube = np.asarray(cube, dtype=np.float64)
    n, h, w = cube.shape
    if reference is None:
        reference = cube
    reference = np.asarray(reference, dtype=np.float64)
    if reference.shape != cube.shape:
        raise ValueError(f"reference must have the cube's shape {cube.shape}, "
                         f"got {reference.shape}.")
    ph = pw = patch_size
    mean_image = reference.mean(0)
    mean = _patches(mean_image[None], (ph, pw))[0]       # (N, P)
    inverse = local_inverse_covariance(
        torch.from_numpy((reference - mean_image).reshape(n, -1)), (h, w), (ph, pw),
        floor=1e-12).numpy()
    flat = cube.reshape(n, -1)
    flat_padded = np.concatenate([flat, np.zeros((n, 1))], 1)
    ys, xs = np.mgrid[:h, :w]
    positions = torch.from_numpy(np.stack([xs.ravel(), ys.ravel()], 1).astype(float))
    ang = torch.from_numpy(np.asarray(angles, dtype=np.float64))
    psf_t = torch.from_numpy(np.asarray(psf, dtype=np.float64))
    num = np.zeros(h * w)
    den = np.zeros(h * w)
    frames = np.arange(n)
    for start in range(0, h * w, chunk):
        pos = positions[start:start + chunk]
        index, sig, centre = trajectory_patches(pos, ang, (h, w), psf_t, (ph, pw))
        index, sig, centre = index.numpy(), sig.numpy(), centre.numpy()
        # the patch statistics at the pixel nearest the companion
        y = flat_padded[frames[None, :, None], index] - mean[centre]   # (B, K, P)
        weighted = np.einsum("bkpq,bkq->bkp", inverse[centre], sig)
        num[start:start + chunk] = np.einsum("bkp,bkp->b", y, weighted)
        den[start:start + chunk] = np.einsum("bkp,bkp->b", sig, weighted)
    den = np.maximum(den, 1e-300)
    return (num / den).reshape(h, w), (1 / np.sqrt(den)).reshape(h, w)
