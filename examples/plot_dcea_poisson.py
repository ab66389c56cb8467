"""
DCEA: denoising photon-limited images
=====================================

At low light an image is a field of photon counts,
:math:`x \\sim \\mathrm{Poisson}(\\mu)`: at peak 4 the brightest pixels
receive 4 photons on average and the noise is as large as the signal. DCEA
(:class:`~sklearn_mbdl.DCEAEstimator`, see :ref:`dcea`) models the
log-intensity as a sparse convolutional code,
:math:`\\log \\mu = b + \\sum_c h_c * s_c`, and unrolls the proximal-gradient
iterations on the Poisson likelihood into a network whose filters, step and
thresholds are learned from clean example images (the noise is simulated).

This example trains a small DCEA-C (tied encoder and decoder) and DCEA-UC
(untied) for a few epochs on patches of the training pictures and denoises
a picture none of them saw, beside two baselines: the noisy counts scaled
back (the per-pixel maximum-likelihood estimate) and the Anscombe transform
followed by a total-variation denoiser and the exact unbiased inverse.

The training here is kept short for the documentation build (32 filters, 8
epochs on 200 patches, about 20 s), and DCEA stays about 1 dB below the
Anscombe baseline on this crop. ``benchmarks/dcea.py`` trains 32-filter
networks for 20 epochs on 600 patches: on the whole test pictures at peak 4
they reach 23.92 dB, 0.05 dB below Anscombe + TV and 0.16 dB above their
model-based twin (see ``benchmarks/results/dcea.md``).
"""

# %%
# Data: clean training patches, a noisy test picture
# --------------------------------------------------
# :func:`~sklearn_mbdl.datasets.make_poisson_images` cuts patches from the
# pictures bundled with scikit-image (the training set) and draws Poisson
# counts at the given peak. DCEA with ``peak`` set trains on the clean
# patches and simulates fresh noise at every epoch.

import matplotlib.pyplot as plt
import numpy as np
from skimage.restoration import denoise_tv_chambolle
from skimage.util import montage

from sklearn_mbdl import DCEAEstimator
from sklearn_mbdl.datasets import load_images, make_poisson_images
from sklearn_mbdl.metrics import psnr

peak = 4
_, train = make_poisson_images(200, patch_size=24, peak=peak, random_state=0)

camera = load_images(["camera"])["camera"][64:192, 192:320]
camera = camera / camera.max()
noisy = np.random.RandomState(1).poisson(peak * camera).astype(float)

# %%
# The Anscombe baseline
# ---------------------
# :math:`2\sqrt{x + 3/8}` makes the noise roughly Gaussian with unit
# variance; a Gaussian denoiser (here TV) is applied, and the exact unbiased
# inverse (Makitalo & Foi's closed-form approximation) maps back.


def anscombe_tv(counts, weight=2.0):
    d = np.maximum(denoise_tv_chambolle(2 * np.sqrt(counts + 3 / 8), weight=weight),
                   0.8)
    return np.maximum(0.25 * d ** 2 + 0.25 * np.sqrt(1.5) / d - 11 / 8 / d ** 2
                      + 5 / 8 * np.sqrt(1.5) / d ** 3 - 1 / 8, 0.0)


# %%
# DCEA-C and DCEA-UC
# ------------------
# The network is convolutional: trained on 24x24 patches, it denoises the
# whole 128x128 picture. ``transform`` restores: it returns the intensity in the units of
# the training images (here [0, 1]).

results = {"noisy / peak (ML)": noisy / peak,
           "Anscombe + TV": anscombe_tv(noisy) / peak}
models = {}
for name, tied in (("DCEA-C", True), ("DCEA-UC", False)):
    models[name] = DCEAEstimator(n_kernels=32, alpha=2.0, peak=peak, tied=tied,
                                 max_epochs=8, lr=1e-2, random_state=0).fit(train)
    results[name] = models[name].transform(noisy[None])[0]

fig, axes = plt.subplots(1, 5, figsize=(15, 3.8))
axes[0].imshow(camera, cmap="gray", vmin=0, vmax=1)
axes[0].set_title("clean")
for ax, (name, image) in zip(axes[1:], results.items()):
    ax.imshow(np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"{name}\n{psnr(camera, image, data_range=1):.1f} dB")
    print(f"{name}: {psnr(camera, image, data_range=1):.2f} dB")
for ax in axes:
    ax.axis("off")
fig.tight_layout()

# %%
# The learned filters
# -------------------
# ``components_`` holds the decoder's filters (unit norm). They started as
# random windows of the training patches (``initial_components_``, the
# dictionary of the model-based twin); scikit-image's ``montage`` tiles
# them with a blank pixel between filters.

fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
panels = [("initial", models["DCEA-C"].initial_components_),
          ("DCEA-C decoder", models["DCEA-C"].components_),
          ("DCEA-UC encoder", models["DCEA-UC"].encoder_components_)]
for ax, (title, filters) in zip(axes, panels):
    ax.imshow(montage(filters, fill=np.nan, padding_width=1), cmap="RdBu_r")
    ax.set_title(title)
    ax.axis("off")
fig.tight_layout()
plt.show()
