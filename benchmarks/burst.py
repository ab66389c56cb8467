"""Benchmark of BurstSuperResolver: burst super-resolution with motion
estimation in the loop, against bicubic interpolation of the reference
frame, shift-and-add with the *true* motions (alone and followed by a Wiener
deconvolution tuned on training images) and the model-based twin (TV prior,
learned step sizes only).

Two test sets:

1. the package's own simulator (``make_bursts``; issue 6's settings): grey
   256 x 256 centre crops of the six TEST_IMAGES, random translations within
   2 low-resolution pixels and rotations within 1 degree, optics blur of 0.4
   low-resolution pixels, scale 2 (8 frames) and 4 (8 and 14 frames),
   Gaussian noise 0.01 and 0.02;
2. a robustness table on bursts from an independent generator built on
   scikit-image alone (``_skimage_bursts.py``): PSF Gaussian 0.3 / 0.5 / 0.7
   low-resolution pixels or the pixel box alone, shot + read noise none /
   low / mid / high, motions within 4 pixels and 2 degrees, scales 2 and 4.

One model per scale and prior, trained once with the estimator's default
settings (random cameras) on patches of TRAIN_IMAGES only; the noise level
is estimated from each burst. No retuning per setting.

    OMP_NUM_THREADS=1 python benchmarks/burst.py --models /tmp/burst_models
                            # trains the four models and caches them; a
                            # second run with the same --models only
                            # evaluates
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
from _skimage_bursts import NOISES as CAMERA_NOISES  # noqa: E402
from _skimage_bursts import make_skimage_burst  # noqa: E402

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


def mean_psnr(truth, estimate, border=None):
    cut = (lambda x: x[border:-border, border:-border]) if border else inner
    return float(np.mean([psnr(cut(t), cut(e), data_range=1.0)
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
    """Train one model (the estimator's defaults: random cameras), or load
    it from the ``--models`` cache (the pickle keeps its training settings,
    which the report prints)."""
    name = f"burst_{prior}_s{scale}.pkl"
    path = os.path.join(args.models, name) if args.models else None
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            model, seconds, n, size = pickle.load(f)
        # a cached model restores with --n-cg or the estimator's current
        # default (training unrolls its own conjugate-gradient count, which
        # the report gives beside the restoring one)
        model.set_params(n_cg=BurstSuperResolver().n_cg if args.n_cg is None
                         else args.n_cg)
        print(f"loaded {name} (trained in {seconds:.0f} s)", flush=True)
        return model, (seconds, n, size)
    cnn = prior == "cnn"
    # frames of 32 x 32 pixels: room for the registration's reach of 4
    size = 64 if scale == 2 else 128
    n = (args.n_patches if cnn else args.n_patches // 4) // (1 if scale == 2 else 4)
    epochs = (args.epochs if scale == 2 else args.epochs_s4) if cnn else 2
    patches = extract_patches(load_images("train"), n, size, random_state=scale)
    model = BurstSuperResolver(scale, frames, n_iter=4, prior=prior, max_epochs=epochs,
                               lr=args.lr, batch_size=8, random_state=0, verbose=1)
    start = time.perf_counter()
    model.fit(patches)
    seconds = time.perf_counter() - start
    print(f"trained {name}: {n} patches {size}x{size}, {seconds:.0f} s", flush=True)
    if path:
        os.makedirs(args.models, exist_ok=True)
        with open(path, "wb") as f:
            pickle.dump((model, seconds, n, size), f)
    if args.n_cg is not None:
        model.set_params(n_cg=args.n_cg)
    return model, (seconds, n, size)


def restore(model, bursts, frames, return_blur=False):
    """Per-image transform (the images differ in size); returns images,
    motions and seconds per burst (and the optics blur used for each). The
    noise level, and the blur unless it was given, are estimated from each
    burst."""
    model.set_params(n_frames=frames, verbose=0)
    images, motions, seconds, blurs = [], [], [], []
    for b in bursts:
        start = time.perf_counter()
        x, m, blur = model.transform(b[None, :frames].astype(np.float32),
                                     return_motion=True, return_blur=True)
        seconds.append(time.perf_counter() - start)
        images.append(x[0].astype(np.float64))
        motions.append(m[0])
        blurs.append(float(blur[0]))
    out = images, motions, float(np.mean(seconds))
    return (*out, blurs) if return_blur else out


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
        # optics, the pixel box and the splat's box (variance (s^2 - 1) / 12
        # each), the splat smoothing
        base = np.sqrt((BLUR * scale) ** 2 + (scale ** 2 - 1) / 6 + spread ** 2)
        for factor in (0.8, 1.0, 1.2):
            for nsr in np.logspace(-4, -0.5, 15):
                est = [wiener_deconvolution(s[None], base * factor, nsr)[0]
                       for s in saa]
                score = mean_psnr(tune_images, est)
                if score > best_wiener[0]:
                    best_wiener = (score, (spread, base * factor, nsr))
    return best_saa[1], best_wiener[1]


PSFS = (("pixel box", 0.0), ("Gaussian 0.3", 0.3), ("Gaussian 0.5", 0.5),
        ("Gaussian 0.7", 0.7))
ROBUST_SETTINGS = ((2, 8), (4, 14))
ROBUST_SIZE, ROBUST_BORDER = 192, 24
ROBUST_MOTION = dict(max_shift=4.0, max_rotation=2.0)


def skimage_bursts(images, scale, frames, psf, noise, seed):
    rng = np.random.RandomState(seed)
    shot, read = CAMERA_NOISES[noise]
    out = [make_skimage_burst(image, scale=scale, n_frames=frames, psf_sigma=psf,
                              shot=shot, read=read, rng=rng, **ROBUST_MOTION)
           for image in images]
    return [b for b, _ in out], [m for _, m in out]


def tune_wiener(scale, frames, psf, noise, tune_images):
    """Shift-and-add's splat smoothing and the Wiener step's PSF width and
    noise-to-signal ratio, by PSNR on training crops of the same camera
    (true motions)."""
    bursts, motions = skimage_bursts(tune_images, scale, frames, psf, noise, seed=7)
    best = (-np.inf, None)
    for spread in (0.5, 1.0):
        saa = [shift_and_add(b[None], m[None], scale, model="euclidean",
                             spread=spread)[0] for b, m in zip(bursts, motions)]
        base = np.sqrt((psf * scale) ** 2 + (scale ** 2 - 1) / 6 + spread ** 2)
        for factor in (0.8, 1.0, 1.2):
            for nsr in np.logspace(-4, -0.5, 8):
                est = [wiener_deconvolution(x[None], base * factor, nsr)[0]
                       for x in saa]
                score = mean_psnr(tune_images, est, ROBUST_BORDER)
                if score > best[0]:
                    best = (score, (spread, base * factor, nsr))
    return best[1]


def robustness(models, truth, tune_images, noises=tuple(CAMERA_NOISES)):
    """The robustness table on the scikit-image bursts: one row per camera."""
    from skimage.transform import rescale

    rows, records = [], []
    for scale, frames in ROBUST_SETTINGS:
        for (psf_name, psf) in PSFS:
            for noise in noises:
                seed = 10 * scale + int(10 * psf) + list(CAMERA_NOISES).index(noise)
                bursts, motions = skimage_bursts(truth, scale, frames, psf, noise,
                                                 seed)
                cubic = [rescale(b[0], scale, order=3, mode="edge") for b in bursts]
                spread, width, nsr = tune_wiener(scale, frames, psf, noise, tune_images)
                wiener = [wiener_deconvolution(
                    shift_and_add(b[None], m[None], scale, model="euclidean",
                                  spread=spread), width, nsr)[0]
                    for b, m in zip(bursts, motions)]
                images, estimated, seconds, blurs = restore(
                    models["cnn", scale], bursts, frames, return_blur=True)
                shifts = image_shifts(truth, images)
                cubic_shifts = image_shifts(truth, cubic)
                r = dict(scale=scale, frames=frames, psf=psf_name, noise=noise,
                         bicubic=mean_psnr(truth, cubic, ROBUST_BORDER),
                         wiener=mean_psnr(truth, wiener, ROBUST_BORDER),
                         learned=mean_psnr(truth, images, ROBUST_BORDER),
                         motion=motion_errors(estimated, motions, bursts),
                         offset=float(np.abs(shifts).max()),
                         offset_median=float(np.abs(np.median(shifts, axis=0)).max()),
                         offset_bicubic=float(np.abs(cubic_shifts).max()),
                         blur=blurs, seconds=seconds)
                records.append(r)
                print("robustness", {k: (round(v, 3) if isinstance(v, float) else v)
                                     for k, v in r.items()}, flush=True)
                misses = []
                if (scale == 2 and noise != "high"
                        and r["learned"] - r["bicubic"] < 3.0):
                    misses.append("< +3 dB")
                if r["learned"] <= r["wiener"]:
                    misses.append("<= S&A+W")
                if r["motion"] >= 0.1:
                    misses.append("registration")
                if r["offset_median"] >= 0.05:
                    misses.append("offset")
                rows.append((scale, frames, psf_name, noise,
                             f"{min(blurs):.1f}-{max(blurs):.1f}",
                             f"{r['bicubic']:.2f}",
                             f"{r['wiener']:.2f}", f"{r['learned']:.2f}",
                             f"{r['learned'] - r['bicubic']:+.2f}",
                             f"{r['learned'] - r['wiener']:+.2f}",
                             f"{r['motion']:.3f}", f"{r['offset_median']:.2f}",
                             f"{r['offset']:.2f} ({r['offset_bicubic']:.2f})",
                             f"{seconds:.1f}", ", ".join(misses) or "all met"))
    return rows, records


def image_shifts(truth, images):
    """Each image's (row, column) shift against its truth, high-resolution
    pixels, inside the border."""
    from skimage.registration import phase_cross_correlation

    inside = np.s_[ROBUST_BORDER:-ROBUST_BORDER, ROBUST_BORDER:-ROBUST_BORDER]
    return np.array([phase_cross_correlation(t[inside], x[inside],
                                             upsample_factor=100)[0]
                     for t, x in zip(truth, images)])


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
    parser.add_argument("--n-cg", type=int, default=None,
                        help="conjugate-gradient iterations per data step when "
                             "restoring (the estimator's default by default)")
    parser.add_argument("--out", default=os.path.join(RESULTS, "burst.md"),
                        help="the report; its figures are written beside it")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: two 128 x 128 test crops")
    parser.add_argument("--scales", nargs="*", type=int, default=(2, 4),
                        help="the scales to train / load and evaluate")
    parser.add_argument("--known-blur", action="store_true",
                        help="give the models the simulator's optics blur "
                             "(set_params(blur_sigma=0.4)) instead of their default "
                             "assumption")
    parser.add_argument("--psfs", nargs="*", type=int, default=None,
                        help="indices of the robustness table's PSFs to run "
                             "(all by default)")
    parser.add_argument("--noises", nargs="*", default=None,
                        choices=tuple(CAMERA_NOISES),
                        help="the robustness table's noise levels to run (all by "
                             "default)")
    parser.add_argument("--skip", nargs="*", default=(),
                        choices=("simulator", "robustness"),
                        help="sections left out of this run")
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
    global SETTINGS, ROBUST_SETTINGS
    SETTINGS = [(s, k) for s, k in SETTINGS if s in args.scales]
    ROBUST_SETTINGS = tuple((s, k) for s, k in ROBUST_SETTINGS if s in args.scales)
    for scale, frames in ((2, 8), (4, 14)):
        if scale not in args.scales:
            continue
        for prior in ("cnn", "tv"):
            models[prior, scale], info = train(scale, frames, prior, args)
            train_seconds[prior, scale] = (models[prior, scale], info)
    if args.known_blur:
        for model in models.values():
            model.set_params(blur_sigma=BLUR)
    if args.save_weights:
        state = models["cnn", 2].net_.module_.state_dict()
        torch.save({k: v.detach().cpu() for k, v in state.items()}, args.save_weights)

    robust_rows = robust_records = None
    if "robustness" not in args.skip:
        global PSFS
        robust_truth = [centre_crop(test[k], ROBUST_SIZE) for k in names]
        robust_tune = [centre_crop(train_all[k], ROBUST_SIZE)
                       for k in ("rocket", "brick")]
        if args.quick:
            ROBUST_SETTINGS, PSFS = ((2, 8),), PSFS[::3]
        if args.psfs is not None:
            PSFS = tuple(PSFS[i] for i in args.psfs)
        noises = tuple(CAMERA_NOISES) if args.noises is None else tuple(args.noises)
        robust_rows, robust_records = robustness(models, robust_truth, robust_tune,
                                                 noises)
    rows, runs, tuned, curve = [], {}, {}, {}
    if "simulator" in args.skip:
        write_report(args, rows, runs, curve, train_seconds, tuned, robust_rows,
                     robust_records)
        return
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
                images, motions, sec = restore(models[prior, scale], bursts, frames)
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
    for scale in args.scales:
        bursts, true_motions = simulate(truth, scale, max(FRAMES_CURVE), 0.01, seed=7)
        truth_cut = [t[:scale * b.shape[-2], :scale * b.shape[-1]]
                     for t, b in zip(truth, bursts)]
        for k in FRAMES_CURVE:
            sub = [b[:k] for b in bursts]
            images, _, _ = restore(models["cnn", scale], sub, k)
            spread = tuned[scale, 8 if scale == 2 else 14, 0.01][0]
            saa = [shift_and_add(b[None], m[None, :k], scale, model=MOTION["motion"],
                                 spread=spread)[0] for b, m in zip(sub, true_motions)]
            curve[scale, k] = (mean_psnr(truth_cut, images), mean_psnr(truth_cut, saa))
            print("frames", scale, k, curve[scale, k], flush=True)
        curve[scale, "bicubic"] = mean_psnr(truth_cut, [bicubic(b[None], scale)[0]
                                                        for b in bursts])
    write_report(args, rows, runs, curve, train_seconds, tuned, robust_rows,
                 robust_records)


def robust_lines(rows, records):
    header = ("scale", "frames", "PSF", "noise", "blur used (LR px)",
              "bicubic (skimage)",
              "S&A + Wiener (true motions)", "learned", "learned - bicubic",
              "learned - S&A+W", "registration error (LR px)",
              "output offset, median (HR px)",
              "output offset, largest (bicubic's) (HR px)", "s per burst", "targets")
    x2 = [r for r in records if r["scale"] == 2 and r["noise"] != "high"]
    summary = [
        "## Robustness: bursts from scikit-image, cameras not used in training", "",
        f"Test data: {ROBUST_SIZE} x {ROBUST_SIZE} centre crops of the TEST_IMAGES, one "
        "burst each, from `benchmarks/_skimage_bursts.py` (scikit-image's `warp` with "
        "cubic splines, `filters.gaussian`, `downscale_local_mean`, shot + read "
        "noise; no code of the package). Motions within "
        f"{ROBUST_MOTION['max_shift']:g} low-resolution pixels and "
        f"{ROBUST_MOTION['max_rotation']:g} degrees. Noise (shot, read variances): "
        + ", ".join(f"{k} {v[0]:.0e} / {v[1]:.1e}" for k, v in CAMERA_NOISES.items())
        + f". PSNR on the inside ({ROBUST_BORDER}-pixel border ignored). Bicubic is "
        "`skimage.transform.rescale(order=3)` of frame 0; the Wiener step and the "
        "splat smoothing are tuned per camera on two TRAIN_IMAGES crops. The "
        "learned model is the one of the first table (default settings), "
        "untouched; it estimates each burst's optics blur (`estimate_blur=True`, "
        "'blur used': the range over the images; the scikit-image PSF's sigma is in "
        "low-resolution pixels too). Output offset: each image's shift against the truth "
        "from `skimage.registration.phase_cross_correlation(upsample_factor=100)`; "
        "'median': the larger component of the median shift over the images (a grid "
        "offset moves every image alike), 'largest': the largest |shift| of any "
        "image, with bicubic's (on the truth's grid by construction) beside it: on "
        "images with little fine detail the phase-normalised correlation measures "
        "the restoration's artefacts rather than its position (burst_notes.md).", "",
        "Targets: learned - bicubic >= +3 dB at x2, 8 frames, noise up to mid; "
        "learned above S&A + Wiener; registration < 0.1 LR px; offset (median) < "
        "0.05 HR px.",
        "",
    ]
    if x2:
        gains = [r["learned"] - r["bicubic"] for r in x2]
        summary += [f"x2, noise up to mid: learned - bicubic from {min(gains):+.2f} "
                    f"to {max(gains):+.2f} dB.", ""]
    return summary + [table(header, rows), ""]


def write_report(args, rows, runs, curve, train_seconds, tuned, robust_rows=None,
                 robust_records=None):
    figures = os.path.dirname(os.path.abspath(args.out))  # beside the report
    command = f"`OMP_NUM_THREADS=1 python benchmarks/burst.py {' '.join(sys.argv[1:])}`"
    training = ("Training (TRAIN_IMAGES patches, the estimator's default cameras, "
                "4 unrolled iterations, batch 8): " + "; ".join(
                    f"{p} scale {s}: {n} patches {size} x {size}, {m.max_epochs} "
                    f"epochs, lr {m.lr:g}, {m.net_.module_.n_cg} conjugate-gradient "
                    f"iterations per data step in training and {m.n_cg} restoring, "
                    f"{sec:.0f} s"
                    for (p, s), (m, (sec, n, size)) in sorted(train_seconds.items()))
                + ".")
    if robust_rows:
        lines = ["# BurstSuperResolver robustness (issue 26)", "",
                 f"Command: {command}", "", f"Machine: {machine('cpu')}.", "",
                 training, ""] + robust_lines(robust_rows, robust_records)
        path = os.path.join(figures, "burst_robustness.md")
        with open(path, "w") as f:
            f.write("\n".join(lines))
        print("\n".join(lines))
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(RESULTS, exist_ok=True)
    scales = sorted({key[0] for key in curve if key[1] == "bicubic"})
    fig, axes = plt.subplots(1, len(scales), figsize=(5 * len(scales), 3.8),
                             squeeze=False)
    axes = axes[0]
    for ax, scale in zip(axes, scales):
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

    names, truth, bursts, images, saa = runs["example"]  # noqa: F811
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
        "# BurstSuperResolver benchmark (issue 6, re-measured for issue 26)", "",
        f"Command: {command}",
        "", f"Machine: {machine('cpu')}.", "",
        f"Test data: {SIZE} x {SIZE} centre crops of {len(names)} TEST_IMAGES "
        f"({', '.join(names)}), one burst each from the package's simulator "
        "(`make_bursts`, pixel-centre grid), "
        f"PSNR on the inside (a {BORDER}-pixel border ignored), averaged over the images. "
        "Motions: random translations within 2 low-resolution pixels and rotations "
        "within 1 degree; optics blur 0.4 low-resolution pixels and pixel "
        "integration; Gaussian noise; bicubic warps in the simulation, bilinear in "
        "the models. The models are trained once per scale with the estimator's "
        "defaults (random cameras: blur 0-0.7 px, shot + read noise, motions within "
        "4 px and 2 degrees) and estimate the noise level of each burst. The Wiener "
        "step's PSF width and "
        "noise-to-signal ratio and the splat smoothing of shift-and-add are tuned on "
        "three TRAIN_IMAGES crops per setting (chosen: "
        + "; ".join(f"scale {s}, {k} frames, noise {n}: spread {a} / {b}, PSF "
                    f"{c:.2f}, NSR {d:.2g}" for (s, k, n), (a, b, c, d) in tuned.items())
        + ").", "", training,
        "", "## PSNR (dB)", "", table(header, rows), "",
        "## PSNR against the number of frames (noise 0.01, learned model of each scale)",
        "", table(("scale", "frames", "learned", "shift-and-add (true motions)",
                   "bicubic"),
                  [(s, k, f"{curve[s, k][0]:.2f}", f"{curve[s, k][1]:.2f}",
                    f"{curve[s, 'bicubic']:.2f}") for s in scales for k in FRAMES_CURVE]),
        "", "![PSNR against frames](burst_frames.png)", "",
        "![examples](burst_examples.png)", "",
    ]
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
