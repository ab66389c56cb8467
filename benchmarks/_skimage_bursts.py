"""An independent burst generator, built on scikit-image and NumPy alone (no
code of sklearn_mbdl), to test the burst model on cameras and code it was
not built on.

Frame ``k`` of a burst of the high-resolution image ``x`` (values in [0, 1]):

1. motion: ``skimage.transform.warp`` with a Euclidean map about the image
   centre, cubic spline interpolation (``order=3``), edge mode: frame ``k``
   shows at ``u`` what ``x`` shows at ``R(theta) (u - c) + c + t``;
2. optics: ``skimage.filters.gaussian`` of ``psf_sigma`` low-resolution
   pixels (none for the pixel-area PSF alone);
3. sensor: ``skimage.transform.downscale_local_mean`` (each low-resolution
   pixel the mean of its ``scale x scale`` cell: the pixel-centre grid);
4. noise: Gaussian with variance ``shot * value + read`` (the "unprocessing"
   model of Brooks et al., 2019).

Motions are returned in low-resolution pixels ``(dx, dy, theta)``: frame
``k`` shows at low-resolution ``v`` (from the frame centre) what the
reference shows at ``R v + (dx, dy)``.
"""

import numpy as np
from skimage.filters import gaussian
from skimage.transform import EuclideanTransform, downscale_local_mean, warp

#: camera noise of the robustness table: (shot, read) variances; read noise
#: from Brooks et al.'s relation log(read) = 2.18 log(shot) + 1.2
NOISES = {
    "none": (0.0, 0.0),
    "low": (1e-4, float(np.exp(2.18 * np.log(1e-4) + 1.2))),
    "mid": (1e-3, float(np.exp(2.18 * np.log(1e-3) + 1.2))),
    "high": (1e-2, float(np.exp(2.18 * np.log(1e-2) + 1.2))),
}


def euclidean_about_centre(shape, dx, dy, theta):
    """The map ``u -> R(theta) (u - c) + c + (dx, dy)`` in (col, row)
    coordinates, ``c`` the centre of an image of ``shape``."""
    h, w = shape
    c = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    return (EuclideanTransform(translation=-c)
            + EuclideanTransform(rotation=theta)
            + EuclideanTransform(translation=c + np.array([dx, dy])))


def make_skimage_burst(image, *, scale, n_frames, psf_sigma, shot, read, max_shift,
                       max_rotation, rng):
    """One burst of ``image`` (sides multiples of ``scale``).

    Returns
    -------
    frames : ndarray of shape (n_frames, H / scale, W / scale)
    motions : ndarray of shape (n_frames, 3)
        ``(dx, dy, theta)`` in low-resolution pixels and radians; frame 0 is
        the reference.
    """
    frames, motions = [], []
    for k in range(n_frames):
        if k == 0:
            dx = dy = theta = 0.0
        else:
            dx, dy = rng.uniform(-max_shift, max_shift, size=2)
            theta = np.deg2rad(rng.uniform(-max_rotation, max_rotation))
        tform = euclidean_about_centre(image.shape, scale * dx, scale * dy, theta)
        moved = warp(image, tform, order=3, mode="edge")
        if psf_sigma > 0:
            moved = gaussian(moved, sigma=psf_sigma * scale, mode="nearest")
        frames.append(downscale_local_mean(moved, (scale, scale)))
        motions.append((dx, dy, theta))
    frames = np.asarray(frames)
    std = np.sqrt(shot * np.clip(frames, 0, None) + read)
    frames = frames + std * rng.standard_normal(frames.shape)
    return frames, np.asarray(motions)
