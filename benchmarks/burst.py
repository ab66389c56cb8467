"""Benchmark of BurstSuperResolver (issue 6): burst super-resolution with
motion estimation in the loop, against bicubic interpolation of the
reference frame, shift-and-add with the *true* motions (alone and followed
by a Wiener deconvolution tuned on training images) and the model-based
twin (TV prior, learned step sizes only), on the same simulated bursts.

Settings: grey 256 x 256 centre crops of the six TEST_IMAGES (a 40-pixel
border ignored in every PSNR), random translations within 2 low-resolution
pixels and rotations within 1 degree (``motion="euclidean"``), Gaussian blur
of 0.4 low-resolution pixels, scale 2 (8 frames) and 4 (8 and 14 frames),
noise 0.01 and 0.02. Each model is trained once per scale at noise 0.01 on
patches of TRAIN_IMAGES only and evaluated at both noise levels (the step
sizes scale with ``noise_level``, set with ``set_params``). The learned and
TV models estimate the motions themselves.

    OMP_NUM_THREADS=1 python benchmarks/burst.py --models /tmp/burst_models
                            # trains the four models (about 20 min on one
                            # thread) and caches them; a second run with the
                            # same --models only evaluates (about 6 min)
"""

import argparse
import os
import pickle
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, table  # noqa: E402

from sklearn_mbdl import BurstSuperResolver  # noqa: E402
from sklearn_mbdl.burst import (  # noqa: E402
    bicubic,
    estimate_motion,
    motion_error,
    shift_and_add,
    wiener_deconvolution,
)
from sklearn_mbdl.datasets import extract_patches, load_images, make_bursts  # noqa: E402
from sklearn_mbdl.metrics import psnr  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
SIZE = 256
BORDER = 40
MOTION = dict(motion="euclidean", max_shift=2.0, max_rotation=1.0)
BLUR = 0.4
TRAIN_NOISE = 0.01
SETTINGS = [(2, 8), (4, 8), (4, 14)]          # (scale, frames)
NOISES = (0.01, 0.02)
FRAMES_CURVE = (1, 2, 4, 8, 14)
SPREADS = (0.3, 0.5, 0.7, 1.0)                 # shift-and-add splat smoothing


def centre_crop(image, size=SIZE):
    h, w = image.shape
    size_h, size_w = min(size, h - h % 4), min(size, w - w % 4)
    top, left = (h - size_h) // 2, (w - size_w) // 2
    return image[top:top + size_h, left:left + size_w]


def inner(images):
    return images[..., BORDER:-BORDER, BORDER:-BORDER]


def mean_psnr(truth, estimate):
    return float(np.mean([psnr(inner(t), inner(e), data_range=1.0)
                          for t, e in zip(truth, estimate)]))


def simulate(images, scale, frames, noise, seed):
    """One burst per image (of its own size), seeded per image."""
    bursts, motions = [], []
    for i, image in enumerate(images):
        b, _, m = make_bursts(image, scale=scale, n_frames=frames, noise_level=noise,
                              blur_sigma=BLUR, random_state=seed + i, **MOTION)
        bursts.append(b[0])
        motions.append(m[0])
    return bursts, motions


def train(scale, frames, prior, args):
    """Train one model, or load it from the ``--models`` cache (the pickle
    keeps its training settings, which the report prints)."""
    name = f"burst_{prior}_s{scale}.pkl"
    path = os.path.join(args.models, name) if args.models else None
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            model, seconds, n, size = pickle.load(f)
        print(f"loaded {name} (trained in {seconds:.0f} s)", flush=True)
        return model, (seconds, n, size)
    cnn = prior == "cnn"
    size = 48 if scale == 2 else 64
    n = (args.n_patches if cnn else args.n_patches // 4) // (1 if scale == 2 else 2)
    epochs = (args.epochs if scale == 2 else args.epochs_s4) if cnn else 2
    patches = extract_patches(load_images("train"), n, size, random_state=scale)
    model = BurstSuperResolver(scale, frames, blur_sigma=BLUR, noise_level=TRAIN_NOISE,
                               n_iter=4, prior=prior, max_epochs=epochs, lr=args.lr,
                               batch_size=8, random_state=0, verbose=1, **MOTION)
    start = time.perf_counter()
    model.fit(patches)
    seconds = time.perf_counter() - start
    print(f"trained {name}: {n} patches {size}x{size}, {seconds:.0f} s", flush=True)
    if path:
        os.makedirs(args.models, exist_ok=True)
        with open(path, "wb") as f:
            pickle.dump((model, seconds, n, size), f)
    return model, (seconds, n, size)


def restore(model, bursts, noise, frames):
    """Per-image transform (the images differ in size); returns images,
    motions and seconds per burst."""
    model.set_params(noise_level=noise, n_frames=frames, verbose=0)
    images, motions, seconds = [], [], []
    for b in bursts:
        start = time.perf_counter()
        x, m = model.transform(b[None, :frames].astype(np.float32), return_motion=True)
        seconds.append(time.perf_counter() - start)
        images.append(x[0].astype(np.float64))
        motions.append(m[0])
    return images, motions, float(np.mean(seconds))


def tune_baselines(scale, frames, noise, tune_images):
    """The splat smoothing of shift-and-add (alone, and before the Wiener
    step) and the Wiener step's PSF width and noise-to-signal ratio, by
    PSNR on training crops."""
    bursts, motions = simulate(tune_images, scale, frames, noise, seed=1000)
    best_saa, best_wiener = (-np.inf, None), (-np.inf, None)
    for spread in SPREADS:
        saa = [shift_and_add(b[None], m[None], scale, model=MOTION["motion"],
                             spread=spread)[0] for b, m in zip(bursts, motions)]
        score = mean_psnr(tune_images, saa)
        if score > best_saa[0]:
            best_saa = (score, spread)
        base = np.sqrt((BLUR * scale) ** 2 + spread ** 2)
        for factor in (0.8, 1.0, 1.2):
            for nsr in np.logspace(-4, -0.5, 15):
                est = [wiener_deconvolution(s[None], base * factor, nsr)[0]
                       for s in saa]
                score = mean_psnr(tune_images, est)
                if score > best_wiener[0]:
                    best_wiener = (score, (spread, base * factor, nsr))
    return best_saa[1], best_wiener[1]


def motion_errors(estimated, true, bursts):
    return float(np.mean([motion_error(e[None], t[None], b.shape[-2:],
                                       model=MOTION["motion"])
                          for e, t, b in zip(estimated, true, bursts)]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-patches", type=int, default=800,
                        help="training patches of the CNN model at scale 2 (half at 4)")
    parser.add_argument("--epochs", type=int, default=6,
                        help="epochs of the CNN model at scale 2")
    parser.add_argument("--epochs-s4", type=int, default=3,
                        help="epochs of the CNN model at scale 4")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--models", default=None,
                        help="cache folder: models found there are loaded, the "
                             "others trained and saved there")
    parser.add_argument("--save-weights", default=None,
                        help="write the scale-2 CNN model's state dict here")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=os.path.join(RESULTS, "burst.md"),
                        help="the report; its figures are written beside it")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: two 128 x 128 test crops")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    global SIZE, BORDER
    if args.quick:
        SIZE, BORDER = 128, 16

    test = {k: centre_crop(v) for k, v in load_images("test").items()}
    if args.quick:
        test = {k: test[k] for k in ("camera", "coins")}
    names = list(test)
    truth = [test[k] for k in names]
    train_all = load_images("train")
    tune_images = [centre_crop(train_all[k]) for k in ("rocket", "brick", "clock")]

    models, train_seconds = {}, {}
    for scale, frames in ((2, 8), (4, 14)):
        for prior in ("cnn", "tv"):
            models[prior, scale], info = train(scale, frames, prior, args)
            train_seconds[prior, scale] = (models[prior, scale], info)
    if args.save_weights:
        state = models["cnn", 2].net_.module_.state_dict()
        torch.save({k: v.detach().cpu() for k, v in state.items()}, args.save_weights)

    rows, runs, tuned = [], {}, {}
    for scale, frames in SETTINGS:
        for noise in NOISES:
            seed = 100 * scale + frames + int(1000 * noise)
            bursts, true_motions = simulate(truth, scale, frames, noise, seed)
            truth_cut = [t[:scale * b.shape[-2], :scale * b.shape[-1]]
                         for t, b in zip(truth, bursts)]
            res = {}
            res["bicubic"] = mean_psnr(truth_cut, [bicubic(b[None], scale)[0]
                                                   for b in bursts])
            spread, (spread_w, psf, nsr) = tune_baselines(scale, frames, noise,
                                                          tune_images)
            saa = [shift_and_add(b[None], m[None], scale, model=MOTION["motion"],
                                 spread=spread)[0]
                   for b, m in zip(bursts, true_motions)]
            res["saa"] = mean_psnr(truth_cut, saa)
            saa_w = [shift_and_add(b[None], m[None], scale, model=MOTION["motion"],
                                   spread=spread_w)[0]
                     for b, m in zip(bursts, true_motions)]
            res["wiener"] = mean_psnr(truth_cut, [
                wiener_deconvolution(s[None], psf, nsr)[0] for s in saa_w])
            tuned[scale, frames, noise] = (spread, spread_w, psf, nsr)
            lr_motions = [estimate_motion(b[None], model=MOTION["motion"],
                                          max_shift=MOTION["max_shift"])[0]
                          for b in bursts]
            res["lr_motion"] = motion_errors(lr_motions, true_motions, bursts)
            for prior in ("tv", "cnn"):
                images, motions, sec = restore(models[prior, scale], bursts, noise, frames)
                res[prior] = mean_psnr(truth_cut, images)
                res[prior + "_motion"] = motion_errors(motions, true_motions, bursts)
                res[prior + "_time"] = sec
                if prior == "cnn" and (scale, frames, noise) == (2, 8, 0.01):
                    runs["example"] = (names, truth_cut, bursts, images, saa)
            runs[scale, frames, noise] = res
            print(scale, frames, noise, {k: round(v, 3) for k, v in res.items()},
                  flush=True)
            rows.append((scale, frames, noise, f"{res['bicubic']:.2f}", f"{res['saa']:.2f}",
                         f"{res['wiener']:.2f}", f"{res['tv']:.2f}", f"{res['cnn']:.2f}",
                         f"{res['cnn'] - res['bicubic']:+.2f}",
                         f"{res['cnn'] - res['tv']:+.2f}",
                         f"{res['lr_motion']:.3f} / {res['tv_motion']:.3f} / "
                         f"{res['cnn_motion']:.3f}",
                         f"{res['tv_time']:.1f} / {res['cnn_time']:.1f}"))

    # PSNR against the number of frames (noise 0.01)
    curve = {}
    for scale in (2, 4):
        bursts, true_motions = simulate(truth, scale, max(FRAMES_CURVE), 0.01, seed=7)
        truth_cut = [t[:scale * b.shape[-2], :scale * b.shape[-1]]
                     for t, b in zip(truth, bursts)]
        for k in FRAMES_CURVE:
            sub = [b[:k] for b in bursts]
            images, _, _ = restore(models["cnn", scale], sub, 0.01, k)
            spread = tuned[scale, 8 if scale == 2 else 14, 0.01][0]
            saa = [shift_and_add(b[None], m[None, :k], scale, model=MOTION["motion"],
                                 spread=spread)[0] for b, m in zip(sub, true_motions)]
            curve[scale, k] = (mean_psnr(truth_cut, images), mean_psnr(truth_cut, saa))
            print("frames", scale, k, curve[scale, k], flush=True)
        curve[scale, "bicubic"] = mean_psnr(truth_cut, [bicubic(b[None], scale)[0]
                                                        for b in bursts])
    write_report(args, rows, runs, curve, train_seconds, tuned)


def write_report(args, rows, runs, curve, train_seconds, tuned):
    figures = os.path.dirname(os.path.abspath(args.out))  # beside the report
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(RESULTS, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, scale in zip(axes, (2, 4)):
        ax.plot(FRAMES_CURVE, [curve[scale, k][0] for k in FRAMES_CURVE], "o-",
                label="learned (estimated motions)")
        ax.plot(FRAMES_CURVE, [curve[scale, k][1] for k in FRAMES_CURVE], "s--",
                label="shift-and-add (true motions)")
        ax.axhline(curve[scale, "bicubic"], color="grey", ls=":", label="bicubic, frame 0")
        ax.set_xscale("log", base=2)
        ax.set_xticks(FRAMES_CURVE, [str(k) for k in FRAMES_CURVE])
        ax.set_xlabel("frames in the burst")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(f"scale {scale}, noise 0.01")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(figures, "burst_frames.png"), dpi=100)

    names, truth, bursts, images, saa = runs["example"]
    i = names.index("camera") if "camera" in names else 0
    panels = [("reference frame", bursts[i][0]),
              ("bicubic", bicubic(bursts[i][None], 2)[0]),
              ("shift-and-add (true motions)", saa[i]),
              ("learned", images[i]), ("ground truth", truth[i])]
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.2))
    for ax, (title, img) in zip(axes, panels):
        ax.imshow(img[BORDER // 2:-BORDER // 2, BORDER // 2:-BORDER // 2]
                  if img.shape[0] > 128 else img[BORDER // 4:-BORDER // 4,
                                                 BORDER // 4:-BORDER // 4],
                  cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(os.path.join(figures, "burst_examples.png"), dpi=100)

    header = ("scale", "frames", "noise", "bicubic", "shift-and-add (true)",
              "+ Wiener (true)", "TV twin", "learned", "learned - bicubic",
              "learned - TV", "motion error LR-only / TV / learned (LR px)",
              "time TV / learned (s per burst)")
    lines = [
        "# BurstSuperResolver benchmark (issue 6)", "",
        f"Command: `OMP_NUM_THREADS=1 python benchmarks/burst.py {' '.join(sys.argv[1:])}`",
        "", f"Machine: {machine('cpu')}.", "",
        f"Test data: {SIZE} x {SIZE} centre crops of {len(names)} TEST_IMAGES "
        f"({', '.join(names)}), one burst each, "
        f"PSNR on the inside (a {BORDER}-pixel border ignored), averaged over the images. "
        "Motions: random translations within 2 low-resolution pixels and rotations "
        "within 1 degree; blur 0.4 low-resolution pixels; bicubic warps in the "
        "simulation, bilinear in the models. Models trained at noise 0.01 only, on "
        "TRAIN_IMAGES patches (scale 2: 8 frames, scale 4: 14 frames) and evaluated "
        "at both noise levels and frame counts. The Wiener step's PSF width and "
        "noise-to-signal ratio and the splat smoothing of shift-and-add are tuned on "
        "three TRAIN_IMAGES crops per setting (chosen: "
        + "; ".join(f"scale {s}, {k} frames, noise {n}: spread {a} / {b}, PSF "
                    f"{c:.2f}, NSR {d:.2g}" for (s, k, n), (a, b, c, d) in tuned.items())
        + ").", "",
        "Training (TRAIN_IMAGES patches, 4 unrolled iterations, batch 8): " + "; ".join(
            f"{p} scale {s}: {n} patches {size} x {size}, {m.max_epochs} epochs, "
            f"lr {m.lr:g}, {sec:.0f} s"
            for (p, s), (m, (sec, n, size)) in sorted(train_seconds.items())) + ".",
        "", "## PSNR (dB)", "", table(header, rows), "",
        "## PSNR against the number of frames (noise 0.01, learned model of each scale)",
        "", table(("scale", "frames", "learned", "shift-and-add (true motions)",
                   "bicubic"),
                  [(s, k, f"{curve[s, k][0]:.2f}", f"{curve[s, k][1]:.2f}",
                    f"{curve[s, 'bicubic']:.2f}") for s in (2, 4) for k in FRAMES_CURVE]),
        "", "![PSNR against frames](burst_frames.png)", "",
        "![examples](burst_examples.png)", "",
    ]
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
