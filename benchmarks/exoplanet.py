"""ExoplanetSeparator against vip-hci's PCA-ADI and PACO and the project's
PACO-style map, on held-out cubes of two simulators.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/exoplanet.py

writes ``benchmarks/results/exoplanet.md`` and ``exoplanet_roc.png`` (a
``--quick`` run writes ``*_quick.*``). Needs the ``astro`` extra (hcipy,
vip-hci).

Cubes (none of these seeds was used while choosing the defaults; the
development cubes were physical seeds 5000-5002 and make_adi_cube seeds
3000-3002, see ``results/exoplanet_notes.md``):

- physical: :func:`make_physical_adi_cube` (hcipy: obstructed pupil with
  spiders, vortex coronagraph, phase and amplitude aberrations, drifting
  quasi-static speckles, AO-like residual, photon and read noise; companions
  injected by vip-hci), 48 frames of 65x65, 60 degrees, 1-3 companions at
  contrast 3 (classical-ADI noise units), seeds 7000-7004; planet-free
  seeds 7100-7102;
- idealised: :func:`make_adi_cube`, 48 frames of 64x64, 60 degrees, 1-3
  companions, seeds 1000-1003; planet-free seeds 2000-2001;
- variations of the physical cube, one each (seeds 7200-): 20 degrees of
  rotation over 32 frames, 90 degrees over 100 frames, a Lyot coronagraph,
  a photon-limited star (1e4 photons in its peak), a wide field (81x81,
  fwhm 3.5: separations 2-10 lambda / D).

Every method gets vip-hci's angles unchanged (the project's convention is
vip-hci's; checked once below). S/N: ``vip_hci.metrics.snr`` on each
method's flux (or residual) map at the true positions; PCA-ADI is the best
of full-frame and annular with 3, 5, 10 or 20 components *per cube* (chosen
on the planets' S/N: in its favour).
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, table  # noqa: E402

from sklearn_mbdl import ExoplanetSeparator  # noqa: E402
from sklearn_mbdl.datasets import make_adi_cube, make_physical_adi_cube  # noqa: E402
from sklearn_mbdl.exoplanet import paco_map, search_field, snr_map  # noqa: E402
from sklearn_mbdl.metrics import detection_roc, find_peaks  # noqa: E402

NCOMPS = (3, 5, 10, 20)
RESULTS = Path(__file__).parent / "results"
OURS, TRAINED = "ours (defaults)", "ours, trained (max_epochs=10)"


def _vip():
    from vip_hci.invprob.paco import FastPACO
    from vip_hci.metrics import snr, snrmap
    from vip_hci.psfsub import pca, pca_annular
    return dict(pca=pca, pca_annular=pca_annular, snr=snr, snrmap=snrmap,
                FastPACO=FastPACO)


def make_cube(kind, seed, n_planets, **kw):
    if kind == "idealised":
        return make_adi_cube(48, 64, n_planets=n_planets, random_state=seed)
    size = kw.pop("size", 65)
    n_frames = kw.pop("n_frames", 48)
    return make_physical_adi_cube(n_frames, size, n_planets=n_planets,
                                  random_state=seed, **kw)


def run_cube(kind, seed, n_planets, vip, fastpaco=False, train=False, **kw):
    cube, angles, planets, psf = make_cube(kind, seed, n_planets, **kw)
    fwhm = kw.get("fwhm", 4.0)
    xy = [(p["x"], p["y"]) for p in planets]
    field = search_field(cube.shape[1:], fwhm, (7, 7))
    out = {"kind": kind, "seed": seed, "xy": xy, "planets": planets, "maps": {},
           "snr": {}, "time": {}, "phot": {}, "shape": cube.shape[1:], "fwhm": fwhm,
           "sep": [p["separation"] / (fwhm / 1.03) for p in planets]}

    def snr(image, q):
        value = float(vip["snr"](image, q, fwhm))
        return value if np.isfinite(value) else 0.0

    def record(name, flux, detection, seconds):
        out["maps"][name] = np.where(field, np.nan_to_num(detection), 0.0)
        out["snr"][name] = [snr(flux, q) for q in xy]
        out["phot"][name] = [float(flux[int(round(q[1])), int(round(q[0]))]) / p["flux"]
                             for q, p in zip(xy, planets)]
        out["time"][name] = seconds

    for name, epochs in ((OURS, None), (TRAINED, 10)) if train else ((OURS, None),):
        start = time.perf_counter()
        extra = {} if epochs is None else {"max_epochs": epochs}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = ExoplanetSeparator(psf, fwhm=fwhm, random_state=0, **extra).fit(
                cube, angles=angles)
        flux = est.flux_map(cube, angles=angles)
        record(name, flux, est.detection_map(cube, angles=angles),
               time.perf_counter() - start)
        if epochs is None and xy:
            out["photometry"] = list(est.photometry(cube, xy, angles=angles)
                                     / planets["flux"])
        out.setdefault("fit_error", {})[name] = (est.trained_error_, est.start_error_)
    start = time.perf_counter()
    pflux, psigma = paco_map(cube, angles, psf, patch_size=5)
    record("paco_map (project, 5x5)", pflux, pflux / psigma, time.perf_counter() - start)
    # vip-hci PCA-ADI: the best number of components per cube and variant
    def annular(k):
        # vip's default protection (delta_rot=1 FWHM) leaves too few frames
        # at small rotation: then its smallest protection
        for delta_rot in (1.0, 0.1):
            try:
                return vip["pca_annular"](cube=cube, angle_list=angles, ncomp=k,
                                          fwhm=fwhm, verbose=False, nproc=1,
                                          delta_rot=delta_rot)
            except RuntimeError:
                continue
        return None                 # too little rotation for vip's annular PCA

    variants = {
        "PCA-ADI full (vip-hci)": lambda k: vip["pca"](
            cube=cube, angle_list=angles, ncomp=k, verbose=False),
        "PCA-ADI annular (vip-hci)": annular}
    out["ncomp"] = {}
    for name, make in variants.items():
        best, best_k, best_map, seconds = -np.inf, 5, None, 0.0
        for k in NCOMPS:
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                residual = make(k)
            seconds += time.perf_counter() - start
            if residual is None:
                continue
            score = np.mean([snr(residual, q) for q in xy]) if xy else 0.0
            if (xy and score > best) or (not xy and k == 5):
                best, best_k, best_map = score, k, residual
        if best_map is None:
            continue
        # detection map: the residual over its robust spread per annulus
        # (vip-hci's snrmap took minutes per cube on the shared machine)
        record(name, best_map, snr_map(best_map, fwhm), seconds / len(NCOMPS))
        out["ncomp"][name] = best_k
    if fastpaco:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fp = vip["FastPACO"](cube=cube, angles=angles, psf=psf, fwhm=fwhm,
                                 pixscale=1.0)
            fsnr, fflux = fp.run(cpu=1)[:2]
        record("FastPACO (vip-hci)", fflux, fsnr, time.perf_counter() - start)
    return out


def convention_check(vip):
    cube, angles, planets, _ = make_adi_cube(48, 64, n_planets=2, contrast=15.0,
                                             random_state=7)
    good = vip["pca"](cube=cube, angle_list=angles, ncomp=3, verbose=False)
    bad = vip["pca"](cube=cube, angle_list=-angles, ncomp=3, verbose=False)
    s_good = [float(vip["snr"](good, (p["x"], p["y"]), 4.0)) for p in planets]
    s_bad = [float(vip["snr"](bad, (p["x"], p["y"]), 4.0)) for p in planets]
    assert min(s_good) > max(s_bad) and min(s_good) > 5, (s_good, s_bad)
    return s_good, s_bad


def best_pca(res):
    return max(np.mean(res["snr"][m]) for m in res["snr"] if m.startswith("PCA"))


def snr_table(results, methods):
    with_planets = [r for r in results if r["xy"]]
    pca = np.array([best_pca(r) for r in with_planets])
    rows = []
    for m in methods:
        have = [r for r in with_planets if m in r["snr"]]
        if not have:
            continue
        per_cube = np.array([np.mean(r["snr"][m]) for r in have])
        ref = np.array([best_pca(r) for r in have])
        times = np.mean([r["time"][m] for r in results if m in r["time"]])
        rows.append([m, f"{per_cube.mean():.2f}", f"{per_cube.mean() / ref.mean():.2f}",
                     f"{(per_cube / ref).min():.2f}", f"{(per_cube >= ref).sum()}/{len(have)}",
                     f"{times:.1f}"])
    return pca, rows


def main(argv=None):  # noqa: C901
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 cube per set, 1 planet-free, 1 variation, no FastPACO")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    vip = _vip()
    quick = args.quick
    sets = {
        "physical": [(s, 1 + s % 3) for s in range(7000, 7001 if quick else 7005)]
        + [(s, 0) for s in range(7100, 7101 if quick else 7103)],
        "idealised": [(s, 1 + s % 3) for s in range(1000, 1001 if quick else 1004)]
        + [(s, 0) for s in range(2000, 2001 if quick else 2002)],
    }
    variations = [
        ("20 deg, 32 frames", dict(rotation_range=20.0, n_frames=32))] if quick else [
        ("20 deg, 32 frames", dict(rotation_range=20.0, n_frames=32)),
        ("90 deg, 100 frames", dict(rotation_range=90.0, n_frames=100)),
        ("Lyot coronagraph", dict(coronagraph="lyot")),
        ("photon-limited (1e4 photons)", dict(star_photons=1e4)),
        ("wide: 81x81, fwhm 3.5, 2-10 lambda/D", dict(size=81, fwhm=3.5)),
    ]
    lines = ["# ExoplanetSeparator benchmark\n",
             f"{machine('cpu')}; 2 cores shared with other jobs (timings are "
             "indicative). Held-out seeds only (see the script's docstring).\n"]
    s_good, s_bad = convention_check(vip)
    lines.append(
        "vip-hci angle convention check (2 bright companions, vip-hci PCA): S/N "
        f"{', '.join(f'{s:.1f}' for s in s_good)} with angle_list=angles, "
        f"{', '.join(f'{s:.1f}' for s in s_bad)} with -angles: the project's angles "
        "are vip-hci's.\n")
    all_results = {}
    for kind, cubes in sets.items():
        all_results[kind] = []
        for i, (seed, n_planets) in enumerate(cubes):
            start = time.perf_counter()
            res = run_cube(kind, seed, n_planets, vip, train=n_planets > 0,
                           fastpaco=(kind == "physical" and i < (0 if quick else 1)))
            all_results[kind].append(res)
            msg = (f"best PCA {best_pca(res):.2f}, ours {np.mean(res['snr'][OURS]):.2f}"
                   if res["xy"] else "planet-free")
            print(f"{kind} {seed}: {msg} ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    variation_results = []
    for j, (label, kw) in enumerate(variations):
        start = time.perf_counter()
        res = run_cube("physical", 7200 + j, 3 if "wide" in label else 2, vip, **kw)
        res["label"] = label
        variation_results.append(res)
        print(f"variation {label}: best PCA {best_pca(res):.2f}, ours "
              f"{np.mean(res['snr'][OURS]):.2f} ({time.perf_counter() - start:.0f} s)",
              flush=True)

    methods = [OURS, TRAINED, "paco_map (project, 5x5)", "FastPACO (vip-hci)",
               "PCA-ADI full (vip-hci)", "PCA-ADI annular (vip-hci)"]
    header = ["method", "mean S/N (vip snr)", "ratio to best PCA-ADI (means)",
              "worst cube ratio", "cubes >= best PCA-ADI", "time per cube (s)"]
    summary = {}
    for kind, results in all_results.items():
        n_cubes = sum(1 for r in results if r["xy"])
        n_planets = sum(len(r["xy"]) for r in results)
        pca, rows = snr_table(results, methods)
        ours = np.array([np.mean(r["snr"][OURS]) for r in results if r["xy"]])
        summary[kind] = (ours.mean() / pca.mean(), (ours / pca).min())
        lines.append(f"\n## {kind} cubes: {n_cubes} with {n_planets} companions, "
                     f"{len(results) - n_cubes} planet-free\n")
        lines.append(f"Best PCA-ADI per cube: mean S/N {pca.mean():.2f}. FastPACO ran "
                     "on the first physical cube only (its row compares with the "
                     "best PCA-ADI of that cube). The trained variant ran on the "
                     "cubes with companions only.\n")
        lines.append(table(header, rows))
        phot = np.concatenate([r["photometry"] for r in results if r["xy"]])
        lines.append(f"\nOur photometry (estimated / true flux, at the true "
                     f"positions): {phot.mean():.2f} +- {phot.std():.2f}.\n")
        errors = np.array([r["fit_error"][TRAINED] for r in results if r["xy"]])
        lines.append(
            f"Training (max_epochs=10) on held-out injections, squared error in "
            f"S/N units: untrained {errors[:, 1].mean():.3f} -> trained "
            f"{errors[:, 0].mean():.3f} (mean over the {len(errors)} cubes).\n")
    if variation_results:
        rows = []
        for r in variation_results:
            pca = best_pca(r)
            rows.append([r["label"], ", ".join(f"{s:.1f}" for s in r["sep"]),
                         f"{pca:.2f}", f"{np.mean(r['snr'][OURS]):.2f}",
                         f"{np.mean(r['snr'][OURS]) / pca:.2f}",
                         f"{np.mean(r['snr']['paco_map (project, 5x5)']) / pca:.2f}"])
        lines.append("\n## Variations of the physical cube (one cube each)\n")
        lines.append(table(["variation", "separations (lambda/D)", "best PCA-ADI S/N",
                            "ours S/N", "ours / PCA", "paco_map / PCA"], rows))

    # detections at equal false positives, on every method's own detection
    # map (ours: flux / model sigma; PCA: snr_map of its residual, the annulus-normalised map; PACO: its S/N)
    thresholds = np.linspace(0.0, 15.0, 151)
    rocs = {}
    for kind, results in all_results.items():
        n_planets = sum(len(r["xy"]) for r in results)
        rows = []
        for m in methods:
            have = [r for r in results if m in r["maps"]]
            if m in (TRAINED, "FastPACO (vip-hci)") or not have:
                continue
            tpr, false = detection_roc([r["maps"][m] for r in have],
                                       [r["xy"] for r in have], thresholds,
                                       fwhm=have[0]["fwhm"])
            rocs[(kind, m)] = (tpr, false)
            row = [m]
            for budget in (0, 1, 3):
                ok = false <= budget
                row.append(f"{tpr[ok].max() * n_planets:.0f}" if ok.any() else "0")
            row.append(f"{int(false[np.searchsorted(thresholds, 5.0)])}")
            rows.append(row)
        lines.append(f"\n## Detections at equal false positives, {kind} cubes "
                     f"({len(results)} cubes, {n_planets} companions; ROC over "
                     "thresholds on each method's own detection map)\n")
        lines.append(table(["method", "detected, 0 false", "detected, <= 1 false",
                            "detected, <= 3 false", "false detections at 5"], rows))

    # calibration on planet-free cubes
    from scipy.stats import norm
    for kind, results in all_results.items():
        free = [r for r in results if not r["xy"]]
        area = sum(int(search_field(r["shape"], r["fwhm"], (7, 7)).sum()) for r in free)
        n_res = area / (np.pi * 4.0 ** 2 / 4)
        rows = []
        for m in methods:
            have = [r for r in free if m in r["maps"]]
            if not have:
                continue
            above5 = sum(len(find_peaks(r["maps"][m], 5.0)) for r in have)
            above3 = sum(len(find_peaks(r["maps"][m], 3.0)) for r in have)
            spread = np.mean([np.std(r["maps"][m][search_field(r["shape"], r["fwhm"],
                                                               (7, 7))]) for r in have])
            rows.append([m, f"{above5}", f"{above3}", f"{spread:.2f}"])
        lines.append(f"\n## Calibration on {len(free)} planet-free {kind} cubes\n")
        lines.append(f"Gaussian prediction over {n_res:.0f} resolution elements: "
                     f"{n_res * norm.sf(5):.4f} peaks above 5, {n_res * norm.sf(3):.1f} "
                     "above 3.\n")
        lines.append(table(["method", "peaks above 5", "peaks above 3",
                            "std of the map in the field"], rows))
    lines.append("\n## Targets\n")
    for kind, (ratio, worst) in summary.items():
        lines.append(f"- {kind}: mean S/N ratio to the best PCA-ADI **{ratio:.2f}** "
                     f"(target 1.5), worst cube {worst:.2f} (target >= 1).")
    text = "\n".join(lines)
    print(text)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if quick else ""
    (args.out_dir / f"exoplanet{suffix}.md").write_text(text + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, kind in zip(axes, all_results):
        for (k, m), (tpr, false) in rocs.items():
            if k == kind:
                ax.plot(false, tpr, label=m)
        ax.set_xscale("symlog")
        ax.set_title(f"{kind} cubes")
        ax.set_xlabel("false detections (all cubes)")
        ax.set_ylabel("share of companions detected")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out_dir / f"exoplanet_roc{suffix}.png", dpi=100)


if __name__ == "__main__":
    main()
