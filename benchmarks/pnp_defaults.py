"""PnPRestorer's defaults on a small user data set, against TV.

What a user gets from ``PnPRestorer(operator)`` with no tuning: the shipped
CNN prior, fine-tuned by ``fit`` on the user's clean images (kept only when it
beats the shipped prior on held-out images), in the default ADMM (30
iterations, ``rho`` 0.02). Against: the same solver with TV, the shipped prior
without fine-tuning, and the former default (the CNN trained from scratch by
``fit``, ``pretrained=False``).

Two user data sets the shipped prior never saw:

- ``tiles``: 64 x 64 tiles of the six test pictures (camera, astronaut, coins,
  moon, chelsea, coffee); ``fit`` on 200 tiles, restored: 40 other tiles;
- ``faces``: scikit-image's ``lfw_subset`` (200 faces of 25 x 25); ``fit`` on
  the first 150, restored: the last 50.

Tasks: denoising at noise 0.05, Gaussian deblurring (1.6 px on tiles, 1.0 px
on faces) at noise 0.01. Mean PSNR (dB) over the restored images.

    OMP_NUM_THREADS=1 python benchmarks/pnp_defaults.py

writes ``benchmarks/results/pnp_defaults.md``.
"""

import argparse
import pathlib
import time
import warnings

import numpy as np
import torch

from _common import machine, table
from sklearn_mbdl import PnPRestorer
from sklearn_mbdl.datasets import extract_patches, load_images
from sklearn_mbdl.denoisers import load_pretrained
from sklearn_mbdl.metrics import psnr
from sklearn_mbdl.operators import GaussianBlur


def user_data():
    from skimage.data import lfw_subset

    pictures = load_images("test")
    tiles_fit = extract_patches(pictures, 200, 64, random_state=0)
    tiles_new = extract_patches(pictures, 40, 64, random_state=1)
    faces = lfw_subset().astype(np.float64)
    return {"tiles": (tiles_fit, tiles_new, GaussianBlur(1.6, 25)),
            "faces": (faces[:150], faces[150:], GaussianBlur(1.0, 9))}


def mean_psnr(clean, restored):
    return float(np.mean(psnr(clean, restored, data_range=1.0, per_image=True)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-epochs", type=int, default=20,
                        help="PnPRestorer's default (20)")
    parser.add_argument("--out", default=str(pathlib.Path(__file__).parent
                                             / "results" / "pnp_defaults.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, fits = [], []
    for name, (fit_images, new_images, blur) in user_data().items():
        fitted = {}
        for label, params in (("default", {}),
                              ("from scratch", {"pretrained": False})):
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                est = PnPRestorer(max_epochs=args.max_epochs, random_state=0,
                                  **params).fit(fit_images)
            seconds = time.perf_counter() - start
            kept = est.fine_tuned_ if est.pretrained else None
            fitted[label] = (est, seconds, kept, [str(w.message) for w in caught])
            fits.append((name, label, len(fit_images), f"{seconds:.0f}",
                         {None: "-", True: "yes", False: "no (shipped kept)"}[kept],
                         "; ".join(m.split(";")[0] for m in fitted[label][3]) or "-"))
            print(fits[-1], flush=True)
        for task, operator, noise in (("denoising, noise 0.05", None, 0.05),
                                      ("deblurring, noise 0.01", blur, 0.01)):
            observe = PnPRestorer(operator, denoiser="tv", noise_level=noise,
                                  random_state=1).fit(new_images)
            observed = observe.simulate(new_images)
            scores = {}
            restorers = {
                "TV": PnPRestorer(operator, denoiser="tv", noise_level=noise),
                "shipped prior, no fit": PnPRestorer(operator, denoiser=load_pretrained(),
                                                     noise_level=noise),
            }
            for label, (est, *_rest) in fitted.items():
                restorers[label] = est.set_params(operator=operator, noise_level=noise)
            for label, est in restorers.items():
                if label in ("TV", "shipped prior, no fit"):
                    est.fit(new_images[:1])  # nothing learned: records the shape
                scores[label] = mean_psnr(new_images, est.transform(observed))
            base = mean_psnr(new_images, observed)
            rows.append((name, task, f"{base:.2f}", f"{scores['TV']:.2f}",
                         f"{scores['shipped prior, no fit']:.2f}",
                         f"{scores['default']:.2f}",
                         f"{scores['default'] - scores['TV']:+.2f}",
                         f"{scores['from scratch']:.2f}"))
            print(rows[-1], flush=True)
    header = ("data", "task", "observed", "TV", "shipped, no fit",
              "**default** (fine-tuned)", "default - TV", "from scratch (old default)")
    text = "\n".join([
        "# PnPRestorer's defaults on small user data sets",
        "",
        "`" + "OMP_NUM_THREADS=1 python benchmarks/pnp_defaults.py" + "`; "
        + machine("cpu") + " (the machine shared with other jobs).",
        "",
        "Mean PSNR (dB) of the restored held-out images; every restorer runs the",
        "default ADMM (30 iterations, rho 0.02) at the task's noise level.",
        f"`default`: `PnPRestorer()`, the shipped prior fine-tuned by `fit` for "
        f"{args.max_epochs} epochs (lr 3e-4) and kept only if it beats the shipped "
        "prior on held-out images; `from scratch`: `pretrained=False`, the former "
        "default.",
        "",
        table(header, rows),
        "",
        "Fits (seconds of wall time; the denoiser does not depend on the operator,",
        "so one fit serves both tasks):",
        "",
        table(("data", "fit", "images", "seconds", "fine-tuned network kept",
               "warnings"), fits),
        "",
    ])
    pathlib.Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
