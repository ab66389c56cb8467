"""
Burst super-resolution with motion estimation in the loop
=========================================================

A burst holds :math:`K` low-resolution frames of one scene, each moved by an
unknown sub-pixel motion :math:`p_k`:

.. math::

    y_k = D B W_{p_k} x + \\varepsilon_k, \\qquad k = 1, \\dots, K,

with :math:`W_p` the warp, :math:`B` a blur and :math:`D` the decimation.
The aliasing of each frame differs with its motion, so together the frames
hold detail that none of them has alone.
:class:`~sklearn_mbdl.BurstSuperResolver` alternates a Lucas-Kanade
(Gauss-Newton) step on the motions, a data step on the image and a prior
step, unrolled and trained end to end (Lecouat, Ponce & Mairal, 2021); see
:ref:`burst`. Its model-based twin runs the same loop with the TV proximal
map as the prior step.
"""

# %%
# The problem
# -----------
# A 160 x 160 crop of ``camera`` (a test image, never used in training),
# 14 frames at scale 2, random translations within 2 low-resolution pixels
# and rotations within 1 degree, noise 0.01.

import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from sklearn_mbdl import BurstSuperResolver
from sklearn_mbdl.burst import bicubic, motion_error, shift_and_add
from sklearn_mbdl.datasets import extract_patches, load_images, make_bursts
from sklearn_mbdl.metrics import psnr

torch.set_num_threads(1)
settings = dict(motion="euclidean", max_shift=2.0, max_rotation=1.0, noise_level=0.01)
scene = load_images(["camera"])["camera"][60:220, 180:340]
bursts, truth, motions = make_bursts(scene, scale=2, n_frames=14, random_state=0,
                                     **settings)
print("bursts", bursts.shape, "-> images", truth.shape)


def score(estimate, border=16):
    inner = np.s_[..., border:-border, border:-border]
    return psnr(truth[inner], estimate[inner], data_range=1.0)


# %%
# Training from clean images only
# -------------------------------
# ``fit`` takes clean high-resolution patches of the *training* pictures and
# simulates bursts from them (fresh motions and noise every epoch). The
# learned prior starts from the denoiser shipped with the package, so one
# short epoch is enough for this example; the benchmark trains longer (see
# the figures at the end). The TV twin learns only its step sizes.

patches = extract_patches(load_images("train"), 48, 48, random_state=0)
start = time.perf_counter()
learned = BurstSuperResolver(2, 8, n_iter=4, max_epochs=1, batch_size=8,
                             random_state=0, **settings).fit(patches)
twin = BurstSuperResolver(2, 8, prior="tv", n_iter=4, max_epochs=1, batch_size=8,
                          random_state=0, **settings).fit(patches[:16])
print(f"training: {time.perf_counter() - start:.1f} s")

# %%
# Restoring the burst (the first 8 frames)
# ----------------------------------------
# Both models estimate the motions themselves; shift-and-add is given the
# *true* motions. The learned model also estimates the optics blur from the
# burst (cross-validation over its frames, ``return_blur=True`` gives it).

eight = bursts[:, :8]
start = time.perf_counter()
restored, estimated, blur = learned.transform(eight, return_motion=True,
                                              return_blur=True)
seconds = time.perf_counter() - start
print(f"optics blur estimated from the burst: {blur[0]:.2f} low-resolution "
      "pixels (the simulated camera's: 0.4)")
# the blur is the camera's: estimated once, it is given to the other
# restorations of this camera (which then skip the estimate)
twin.set_params(blur_sigma=float(blur[0]))
results = {
    "reference frame, bicubic": bicubic(eight, 2),
    "shift-and-add (true motions)": shift_and_add(eight, motions[:, :8], 2,
                                                  model="euclidean"),
    "TV twin": twin.transform(eight),
    "learned": restored,
}
for name, image in results.items():
    print(f"{name:30s} {score(image):.2f} dB")
error = motion_error(estimated, motions[:, :8], eight.shape[-2:], model="euclidean")
print(f"learned: {seconds:.2f} s per burst, motion error {error:.3f} "
      "low-resolution pixels")

fig, axes = plt.subplots(2, 3, figsize=(9, 6.3))
panels = [("low-resolution frame", np.repeat(np.repeat(eight[0, 0], 2, 0), 2, 1))]
panels += [(k, v[0]) for k, v in results.items()] + [("ground truth", truth[0])]
for ax, (title, image) in zip(axes.ravel(), panels):
    ax.imshow(image[40:120, 40:120], cmap="gray", vmin=0, vmax=1)
    label = title if title in ("low-resolution frame", "ground truth") else \
        f"{title}\n{score(image[None]):.2f} dB"
    ax.set_title(label, fontsize=9)
    ax.axis("off")
fig.tight_layout()

# %%
# More frames, more detail
# ------------------------
# The same trained network restores bursts of any length (``n_frames`` only
# sets the least a burst must have).

frames = [1, 2, 4, 8, 14]
learned.set_params(blur_sigma=float(blur[0]))
ours, saa = [], []
for k in frames:
    ours.append(score(learned.set_params(n_frames=k).transform(bursts[:, :k])))
    added = shift_and_add(bursts[:, :k], motions[:, :k], 2, model="euclidean")
    saa.append(score(added))
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(frames, ours, "o-", label="learned (estimated motions)")
ax.plot(frames, saa, "s--", label="shift-and-add (true motions)")
ax.axhline(score(bicubic(bursts, 2)), color="grey", ls=":", label="bicubic")
ax.set_xscale("log", base=2)
ax.set_xticks(frames, [str(k) for k in frames])
ax.set_xlabel("frames")
ax.set_ylabel("PSNR (dB)")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# What a full run gives
# ---------------------
# ``benchmarks/burst.py`` trains on more patches and epochs and evaluates on
# the six test pictures; its figures are in ``benchmarks/results/burst.md``
# and in :ref:`burst`.
