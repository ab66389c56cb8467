"""Benchmark of DCEAEstimator (DCEA-C and DCEA-UC) on Poisson image denoising.

Writes ``benchmarks/results/dcea.md`` and the figure ``dcea.png``.

Run::

    python benchmarks/dcea.py            # CPU, one thread (about 15 minutes)
    python benchmarks/dcea.py --quick    # a smoke run (minutes)

Protocol (issue 4's, extended by issue 31): the denoisers train on patches of the bundled
scikit-image pictures ``TRAIN_IMAGES`` and are tested on the whole pictures
``TEST_IMAGES`` (no overlap), each scaled to ``Q = max(image) / peak``, at
peaks 1, 2 and 4; PSNR with the image range as peak signal, one noise draw
per image, averaged over the test pictures. The same models also restore
tiles (``--tile-sizes``, 4 per test picture at seeded positions, each
restored alone), where a small image gives the local level and the
filters little context.

Baselines:

- ML: the noisy counts scaled back, ``Q * x`` (maximum likelihood per pixel).
- Anscombe + TV: the variance-stabilising transform ``2 sqrt(x + 3/8)``,
  scikit-image's total-variation denoiser (Chambolle), and the exact
  unbiased inverse (Makitalo & Foi 2011, closed-form approximation); the TV
  weight is tuned per peak on the training patches.
- Anscombe + BM3D: the paper's reference. The same transform, BM3D (the
  ``bm3d`` package, optional: ``pip install -e ".[bm3d]"``; the row is
  skipped without it) at the noise level the transform gives, 1, and the
  exact unbiased inverse. Its outputs are cached in ``--cache`` (keyed by
  the noisy counts), as it costs seconds per picture.
- Model-based twin: the fixed-dictionary Poisson proximal-gradient solver
  (:func:`sklearn_mbdl.solvers.poisson_proximal_gradient`) with DCEA's
  initial filters and the same number of iterations (15), ``alpha`` tuned
  per peak on larger training patches (as the TV weight). DCEA starts from
  this solver's filters, with ``alpha / 4`` (a start where all codes are 0
  gives the soft threshold no gradient to learn from).
"""

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from skimage.restoration import denoise_tv_chambolle
from skimage.util import montage

from sklearn_mbdl import DCEAEstimator
from sklearn_mbdl._base import torch_seed
from sklearn_mbdl.dcea import model_based_denoise as twin
from sklearn_mbdl.dcea._network import _initial_filters
from sklearn_mbdl.datasets import TEST_IMAGES, load_images, make_poisson_images
from sklearn_mbdl.metrics import psnr

RESULTS = Path(__file__).parent / "results"
PAPER = {1: 22.0, 2: 23.0, 4: 24.0}          # DCEA-UC in the paper, its test set
PAPER_ANSCOMBE = {1: 20.0, 2: 21.2, 4: 22.2}  # oracle Anscombe + blur, the issue
DNCNN_PARAMS = 556_000                       # DnCNN, 17 layers, 64 channels


def anscombe_inverse(d):
    """Exact unbiased inverse of the Anscombe transform, Makitalo & Foi's
    closed-form approximation."""
    d = np.maximum(d, 0.8)
    return np.maximum(0.25 * d ** 2 + 0.25 * np.sqrt(1.5) / d - 11 / 8 / d ** 2
                      + 5 / 8 * np.sqrt(1.5) / d ** 3 - 1 / 8, 0.0)


def anscombe_tv(counts, weight):
    """Anscombe + TV (Chambolle) + exact unbiased inverse, in counts."""
    return anscombe_inverse(denoise_tv_chambolle(2 * np.sqrt(counts + 3 / 8),
                                                 weight=weight))


def anscombe_blur(counts, sigma):
    """Anscombe + Gaussian blur + exact unbiased inverse, in counts."""
    return anscombe_inverse(gaussian_filter(2 * np.sqrt(counts + 3 / 8), sigma))


def anscombe_bm3d(counts, cache=None):
    """Anscombe + BM3D (noise level 1 after the transform) + exact unbiased
    inverse, in counts; None without the optional ``bm3d`` package."""
    try:
        import bm3d
    except ImportError:
        return None
    path = None
    if cache is not None:
        import hashlib

        key = hashlib.sha1(np.ascontiguousarray(counts, dtype=np.float64).tobytes()
                           + str(counts.shape).encode()).hexdigest()
        path = Path(cache) / f"bm3d_{key}.npy"
        if path.exists():
            return np.load(path)
    out = anscombe_inverse(bm3d.bm3d(2 * np.sqrt(counts + 3 / 8), 1.0))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, out)
    return out


def test_tiles(test, size, n_per_image, rng):
    """``n_per_image`` tiles ``size x size`` of each test picture."""
    tiles = []
    for image in test.values():
        for _ in range(n_per_image):
            r = rng.randint(image.shape[0] - size + 1)
            c = rng.randint(image.shape[1] - size + 1)
            tiles.append(image[r:r + size, c:c + size])
    return np.array(tiles)


def mean_psnr(cleans, estimates):
    return float(np.mean([psnr(c, e, data_range=1.0)
                          for c, e in zip(cleans, estimates)]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--peaks", type=float, nargs="+", default=[1, 2, 4])
    parser.add_argument("--n-patches", type=int, default=600)
    parser.add_argument("--patch-size", type=int, default=32)
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--validation-fraction", type=float, default=None,
                        help="DCEAEstimator's validation_fraction (its default "
                             "when not given)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tile-sizes", type=int, nargs="*", default=[32, 48, 64])
    parser.add_argument("--tiles-per-image", type=int, default=4)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/dcea_bm3d_cache"),
                        help="folder of cached BM3D outputs")
    parser.add_argument("--bm3d-whole", action=argparse.BooleanOptionalAction,
                        default=True, help="BM3D on the whole pictures (minutes)")
    parser.add_argument("--out", default="dcea",
                        help="name of the report and figure (.md, .png) in --out-dir")
    parser.add_argument("--out-dir", type=Path, default=RESULTS,
                        help="folder of the report and the figure (e.g. /tmp/x for a "
                             "--quick smoke run, which would otherwise write to "
                             "results/)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.quick:
        args.n_patches, args.max_epochs = 100, 2
    # stride 2 with 32 filters (codes 8x redundant, against 4x for 64 filters
    # at stride 4; half the parameters): on held-out crops of the training
    # pictures, +0.05 / +0.17 / +0.18 dB over 64 filters at stride 4 at
    # peaks 1 / 2 / 4 (DCEA-C)
    params = dict(n_kernels=32, kernel_size=7, stride=2, n_layers=15)

    test = {name: image / image.max() for name, image in load_images("test").items()}
    rng = np.random.RandomState(0)
    rows, figure_images, tuned, tile_rows, bm3d_times = [], {}, [], [], []
    lines = []
    for peak in args.peaks:
        peak_key = int(peak) if float(peak).is_integer() else peak
        # --- training data: clean patches of TRAIN_IMAGES; tuning patches ---
        _, clean = make_poisson_images(args.n_patches, patch_size=args.patch_size,
                                       peak=peak, random_state=1)
        # tuning set: larger patches of the training pictures (small ones
        # are mostly flat and favour over-smoothing)
        tune_noisy, tune_clean = make_poisson_images(24, patch_size=128, peak=peak,
                                                     random_state=2)
        # --- TV weight tuned on the training patches ---
        weights = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0]
        tv_scores = [mean_psnr(tune_clean,
                               [anscombe_tv(x, w) / peak for x in tune_noisy])
                     for w in weights]
        weight = weights[int(np.argmax(tv_scores))]
        # --- the twin's alpha, tuned on the training patches, initial filters ---
        # DCEA's initial filters (what fit draws with random_state=0): the
        # twin's fixed dictionary
        alphas = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
        init_filters = _initial_filters(clean.reshape(len(clean), -1),
                                        (args.patch_size,) * 2, params["n_kernels"],
                                        params["kernel_size"],
                                        np.random.RandomState(torch_seed(0)))
        twin_scores = [mean_psnr(tune_clean, twin(tune_noisy, init_filters, a,
                                                  stride=params["stride"],
                                                  n_iter=params["n_layers"]) / peak)
                       for a in alphas]
        alpha = alphas[int(np.argmax(twin_scores))]
        print(f"peak {peak}: TV weight {weight} ({max(tv_scores):.2f} dB on training "
              f"patches), twin alpha {alpha} ({max(twin_scores):.2f} dB)", flush=True)
        # --- the test pictures, one noise draw each ---
        noisy = {n: rng.poisson(peak * im).astype(np.float64) for n, im in test.items()}
        cleans = list(test.values())
        results = {
            "ML (noisy / peak)": mean_psnr(cleans, [noisy[n] / peak for n in test]),
            "Anscombe + TV + exact inverse": mean_psnr(
                cleans, [anscombe_tv(noisy[n], weight) / peak for n in test]),
        }
        if args.bm3d_whole:
            bm3d_out = {n: anscombe_bm3d(noisy[n], args.cache) for n in test}
            if all(v is not None for v in bm3d_out.values()):
                results["Anscombe + BM3D + exact inverse"] = mean_psnr(
                    cleans, [bm3d_out[n] / peak for n in test])
        # the reference point, "oracle-tuned Anscombe + blur", on our
        # test pictures: the blur width is picked on the test set itself (an
        # oracle, for context only; the TV weight above is not)
        sigmas = np.arange(0.5, 6.01, 0.25)
        blur_scores = [mean_psnr(cleans, [anscombe_blur(noisy[n], s) / peak
                                          for n in test]) for s in sigmas]
        blur_sigma = float(sigmas[int(np.argmax(blur_scores))])
        results["oracle Anscombe + blur (width picked on the test pictures)"] = \
            max(blur_scores)
        start = time.perf_counter()
        tuned.append((peak_key, weight, alpha, blur_sigma))
        results[f"model-based twin: {params['n_layers']} prox-grad iterations, "
                "initial filters"] = mean_psnr(
            cleans, [twin(noisy[n][None], init_filters, alpha, stride=params["stride"],
                          n_iter=params["n_layers"])[0] / peak for n in test])
        t_twin = time.perf_counter() - start
        figure_images[peak] = {"clean": test["camera"], "noisy": noisy["camera"] / peak,
                               "Anscombe + TV":
                                   anscombe_tv(noisy["camera"], weight) / peak}
        models = {}
        for tied in (True, False):
            name = "DCEA-C" if tied else "DCEA-UC"
            # DCEA starts less sparse than the twin: with every code at 0 on
            # the training data the soft threshold passes no gradient
            est = DCEAEstimator(**params, tied=tied, alpha=alpha / 4, peak=peak,
                                max_epochs=args.max_epochs, lr=args.lr,
                                batch_size=32, random_state=0)
            if args.validation_fraction is not None:
                est.set_params(validation_fraction=args.validation_fraction)
            start = time.perf_counter()
            est.fit(clean)
            t_fit = time.perf_counter() - start
            assert np.allclose(est.initial_components_, init_filters)
            # the estimator was fitted on images scaled to max 1: transform
            # returns the intensity on that scale
            estimates = {n: est.transform(noisy[n][None])[0] for n in test}
            results[name] = mean_psnr(cleans, [estimates[n] for n in test])
            figure_images[peak][name] = estimates["camera"]
            n_params = sum(p.numel() for p in est.net_.module_.parameters())
            image = noisy["camera"][:256, :256][None]
            est.transform(image)
            start = time.perf_counter()
            for _ in range(3):
                est.transform(image)
            t_pred = (time.perf_counter() - start) / 3
            models[name] = est
            lines.append((peak_key, name, n_params, t_fit, t_pred, est))
            print(f"peak {peak} {name}: {results[name]:.2f} dB, fit {t_fit:.0f} s, "
                  f"{n_params} parameters, 256x256 in {t_pred:.2f} s", flush=True)
        # BM3D's time on the same 256x256 crop (no cache)
        if anscombe_bm3d(image[0][:16, :16]) is not None:
            start = time.perf_counter()
            anscombe_bm3d(image[0])
            bm3d_times.append((peak_key, time.perf_counter() - start))
        # --- tiles of the test pictures, restored one by one ---
        for size in args.tile_sizes:
            clean_tiles = test_tiles(test, size, args.tiles_per_image,
                                     np.random.RandomState(size))
            noisy_tiles = np.random.RandomState(int(1000 * peak) + size).poisson(
                peak * clean_tiles).astype(np.float64)
            tile = {"ML (noisy / peak)": noisy_tiles / peak,
                    "Anscombe + TV + exact inverse": np.array(
                        [anscombe_tv(x, weight) / peak for x in noisy_tiles])}
            out = [anscombe_bm3d(x, args.cache) for x in noisy_tiles]
            if all(o is not None for o in out):
                tile["Anscombe + BM3D + exact inverse"] = np.array(out) / peak
            for name, est in models.items():
                tile[name] = np.concatenate([est.transform(x[None])
                                             for x in noisy_tiles])
            for method, estimate in tile.items():
                tile_rows.append((peak_key, size, method,
                                  mean_psnr(clean_tiles, estimate)))
            print(f"peak {peak} tiles {size}: " + ", ".join(
                f"{m.split(' +')[0] if m.startswith('ML') else m}: {v:.2f}"
                for p_, s_, m, v in tile_rows if p_ == peak_key and s_ == size),
                flush=True)
        for method, value in results.items():
            rows.append((peak_key, method, value))
        rows.append((peak_key, "time of the twin on the 6 test pictures (s)", t_twin))
    write_report(args, rows, lines, figure_images, params, tuned, tile_rows,
                 bm3d_times)


def write_report(args, rows, lines, figure_images, params, tuned, tile_rows=(),
                 bm3d_times=()):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out_dir.mkdir(parents=True, exist_ok=True)
    peaks = sorted({r[0] for r in rows})
    by = {(r[0], r[1]): r[2] for r in rows}
    methods = list(dict.fromkeys(r[1] for r in rows if not r[1].startswith("time")))

    def short(m):
        return m.split(" (")[0].split(":")[0]

    fraction = (DCEAEstimator().validation_fraction if args.validation_fraction is None
                else args.validation_fraction)
    out = ["# DCEA: Poisson image denoising", "",
           f"`python benchmarks/dcea.py{' --quick' if args.quick else ''}` on "
           f"{platform.processor() or platform.machine()}, torch "
           f"{torch.__version__}, one thread.", "",
           f"Training: {args.n_patches} clean patches of {args.patch_size}x"
           f"{args.patch_size} from TRAIN_IMAGES per peak (Poisson noise drawn "
           f"afresh each epoch, random flips), {args.max_epochs} epochs, lr "
           f"{args.lr}, {params}, validation_fraction {fraction}. Test: the "
           f"{len(TEST_IMAGES)} "
           "whole TEST_IMAGES pictures, each scaled to max 1, one noise draw; "
           "PSNR (dB) with peak signal 1, averaged over the pictures.", "",
           "| method | " + " | ".join(f"peak {p}" for p in peaks) + " |",
           "|---|" + "---|" * len(peaks)]
    for m in methods:
        cells = []
        for p in peaks:
            key = next((k for k in by if k[0] == p and short(k[1]) == short(m)), None)
            cells.append(f"{by[key]:.2f}" if key else "")
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    out.append("| paper, DCEA-UC (its test set) | "
               + " | ".join(f"{PAPER.get(p, float('nan')):.1f}" for p in peaks) + " |")
    out.append("| issue, oracle Anscombe + blur (paper's test set) | "
               + " | ".join(f"{PAPER_ANSCOMBE.get(p, float('nan')):.1f}" for p in peaks)
               + " |")
    out += ["", "Tuned on training pictures (not the test set): "
            + "; ".join(f"peak {p}: TV weight {w}, twin alpha {a} (DCEA starts at "
                        f"alpha {a / 4:g})" for p, w, a, _ in tuned) + ". "
            "The oracle blur's width (standard deviation, pixels), picked on the "
            "test pictures: " + ", ".join(f"{s:g} at peak {p}" for p, *_, s in tuned)
            + "."]
    out += ["", "Parameters, training and inference time (CPU, one thread):", "",
            "| peak | model | parameters | vs DnCNN-17 (556k) | fit (s) | "
            "denoise 256x256 (s) |", "|---|---|---|---|---|---|"]
    for peak, name, n_params, t_fit, t_pred, _ in lines:
        out.append(f"| {peak} | {name} | {n_params} | {DNCNN_PARAMS / n_params:.0f}x "
                   f"fewer | {t_fit:.0f} | {t_pred:.2f} |")
    if bm3d_times:
        out += ["", "Anscombe + BM3D on the same 256x256 crop: " + ", ".join(
            f"{t:.2f} s (peak {p})" for p, t in bm3d_times) + "."]
    # tiles
    tiles = {(p, size, m): v for p, size, m, v in tile_rows}
    sizes = sorted({k[1] for k in tiles})
    tile_methods = list(dict.fromkeys(k[2] for k in tiles))
    if sizes:
        out += ["", f"## Tiles: {args.tiles_per_image} tiles per test picture, "
                "restored one at a time (the same models)", "",
                "| method | " + " | ".join(f"{s} px, peak {p}" for s in sizes
                                           for p in peaks) + " |",
                "|---|" + "---|" * (len(sizes) * len(peaks))]
        for m in tile_methods:
            out.append(f"| {m} | " + " | ".join(
                f"{tiles[(p, s, m)]:.2f}" if (p, s, m) in tiles else ""
                for s in sizes for p in peaks) + " |")
    # targets (issue 31): DCEA-C within 0.5 dB of DCEA-UC, DCEA-UC within
    # 0.5 dB of Anscombe + BM3D, at every peak and size; <= 1% of DnCNN's
    # parameters
    out += ["", "Targets:", ""]
    where = [("whole pictures", p, {k[1]: v for k, v in by.items() if k[0] == p})
             for p in peaks]
    where += [(f"{s} px tiles", p, {k[2]: v for k, v in tiles.items()
                                     if k[0] == p and k[1] == s})
              for s in sizes for p in peaks]
    for label, p, res in where:
        c, uc = res.get("DCEA-C"), res.get("DCEA-UC")
        bm = res.get("Anscombe + BM3D + exact inverse")
        if c is None or uc is None:
            continue
        line = (f"- {label}, peak {p}: DCEA-C {c:.2f}, DCEA-UC {uc:.2f} "
                f"(C - UC {c - uc:+.2f} dB, within 0.5: "
                f"{'yes' if c >= uc - 0.5 else 'no'})")
        if bm is not None:
            line += (f"; Anscombe + BM3D {bm:.2f} (UC - BM3D {uc - bm:+.2f} dB, "
                     f"within 0.5: {'yes' if uc >= bm - 0.5 else 'no'})")
        out.append(line)
    n_max = max(n for _, _, n, *_ in lines)
    out.append(f"- parameters: at most {n_max} = {100 * n_max / DNCNN_PARAMS:.2f}% of "
               f"DnCNN-17's {DNCNN_PARAMS} (<= 1%: "
               f"{'yes' if n_max <= 0.01 * DNCNN_PARAMS else 'no'})")
    (args.out_dir / f"{args.out}.md").write_text("\n".join(out) + "\n")
    print("\n".join(out))

    # figure: camera at every peak, and the learned filters of the last model
    cols = ["clean", "noisy", "Anscombe + TV", "DCEA-C", "DCEA-UC"]
    fig, axes = plt.subplots(len(peaks) + 1, len(cols), figsize=(3 * len(cols),
                                                                3 * (len(peaks) + 1)))
    for i, p in enumerate(peaks):
        ref = figure_images[p]["clean"]
        for j, col in enumerate(cols):
            ax = axes[i, j]
            img = figure_images[p][col]
            ax.imshow(np.clip(img, 0, 1)[:256, 128:384], cmap="gray", vmin=0, vmax=1)
            title = (col if col == "clean"
                     else f"{col}\n{psnr(ref, img, data_range=1):.1f} dB")
            ax.set_title(f"peak {p}: {title}" if j == 0 else title, fontsize=9)
    last = {name: est for peak, name, *_, est in lines if peak == peaks[-1]}
    for j in range(len(cols)):
        axes[-1, j].axis("off")
    for j, (name, est) in enumerate(last.items()):
        tiled = montage(est.components_, fill=np.nan, padding_width=1)
        axes[-1, j].imshow(tiled, cmap="RdBu_r")
        axes[-1, j].set_title(f"{name} filters (peak {peaks[-1]})", fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(args.out_dir / f"{args.out}.png", dpi=80)


if __name__ == "__main__":
    main()
