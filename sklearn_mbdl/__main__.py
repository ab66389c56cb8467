"""Command line: ``python -m sklearn_mbdl tour``.

The tour runs every method of the toolkit on its built-in problem and prints
one block per method, within 100 columns: the task, the model-based
baseline's figure, the learned method's figure, the time it took and, in
words, what the figures show. Each method adds its block with a function
decorated by ``_step(method, task)`` that returns ``baseline``,
``learned`` and ``verdict``.
"""

import argparse
import functools
import sys
import textwrap
import time

import numpy as np

#: the tour's output fits this many columns
WIDTH = 100


def _times(ratio, better, worse):
    """``"3.2x faster"`` or ``"2.0x slower"``: a ratio in words."""
    if ratio >= 1:
        return f"{ratio:.1f}x {better}"
    return f"{1 / ratio:.1f}x {worse}"


def _db_verdict(gain, ours, theirs, what="better"):
    """A gain in dB in words, saying plainly when it is a loss."""
    if abs(gain) < 0.005:
        return f"{ours[0].upper() + ours[1:]} ties {theirs}."
    if gain > 0:
        return f"{ours[0].upper() + ours[1:]} is {gain:.2f} dB {what} than {theirs}."
    return (f"{ours[0].upper() + ours[1:]} is {-gain:.2f} dB BELOW {theirs} "
            "here: it does not beat its baseline on this problem.")


#: the tour's steps, in order (added by :func:`_step`)
TOUR = []


def _step(method, task):
    """Add a method's block to ``TOUR``: the decorated function runs the
    method's problem and returns its ``baseline``, ``learned`` and
    ``verdict``; the step returns them with ``method`` and ``task``."""
    def register(run):
        @functools.wraps(run)
        def step():
            return dict(method=method, task=task, **run())

        TOUR.append(step)
        return step

    return register


@_step("SparseCoder", "lasso codes, 3000 x 64 signals, 256 atoms")
def _tour_sparse_coding():
    """SparseCoder's exact active set against scikit-learn's lasso_cd."""
    from sklearn.decomposition import sparse_encode as sk_sparse_encode

    from .datasets import make_sparse_coding
    from .sparse_coding import SparseCoder

    X, _, D = make_sparse_coding(3000, 64, 256, 8, noise=0.01, random_state=0)
    alpha = 0.01 * float(np.abs(X @ D.T).max())

    def objective(Z):
        return np.mean(0.5 * np.sum((X - Z @ D) ** 2, 1) + alpha * np.abs(Z).sum(1))

    start = time.perf_counter()
    Z_cd = sk_sparse_encode(X, D, algorithm="lasso_cd", alpha=alpha)
    t_cd = time.perf_counter() - start
    start = time.perf_counter()
    Z = SparseCoder(D, alpha=alpha).fit(X).transform(X)
    t_ours = time.perf_counter() - start
    gap = (objective(Z) - objective(Z_cd)) / objective(Z_cd)
    speed = t_cd / t_ours
    return dict(
        baseline=f"sklearn lasso_cd: objective {objective(Z_cd):.6f} in {t_cd:.2f} s",
        learned=f"active set: objective {objective(Z):.6f} in {t_ours:.2f} s",
        verdict=f"The exact solver reaches scikit-learn's objective (relative "
                f"difference {gap:.1e}) {_times(speed, 'faster', 'slower')}.",
    )


@_step("LISTATransformer",
       "lasso codes in 16 steps, held-out rows (NMSE to the exact codes)")
def _tour_lista():
    """LISTA (16 layers) against FISTA with 16 iterations on held-out rows."""
    import torch

    from .datasets import make_sparse_coding
    from .lista import LISTATransformer
    from .metrics import nmse_db
    from .solvers import fista
    from .sparse_coding import sparse_encode

    X, _, D = make_sparse_coding(4000, 64, 256, 8, noise=0.01, random_state=0)
    alpha = 0.01 * float(np.abs(X @ D.T).max())
    X_train, X_test = X[:3000], X[3000:]
    reference = sparse_encode(X_test, D, alpha=alpha)
    Z_fista, _ = fista(torch.tensor(X_test), torch.tensor(D), alpha,
                       max_iter=16, tol=0.0)
    lista = LISTATransformer(D, n_layers=16, alpha=alpha, max_epochs=40,
                             random_state=0).fit(X_train)
    base = nmse_db(reference, Z_fista.numpy())
    ours = nmse_db(reference, lista.transform(X_test))
    return dict(
        baseline=f"FISTA, 16 iterations: NMSE {base:.1f} dB",
        learned=f"LISTA, 16 layers: NMSE {ours:.1f} dB",
        verdict=_db_verdict(base - ours, "LISTA", "16 FISTA iterations",
                            what="closer to the exact codes"),
    )


@_step("DCEAEstimator", "Poisson denoising at peak 4, 16 test crops 64 x 64 (PSNR)")
def _tour_dcea():
    """DCEA-C with its defaults against its model-based twin at peak 4."""
    from .datasets import make_poisson_images
    from .dcea import DCEAEstimator, model_based_denoise
    from .metrics import psnr

    _, clean = make_poisson_images(300, patch_size=24, peak=4, random_state=0)
    noisy, truth = make_poisson_images(16, patch_size=64, peak=4, images="test",
                                       random_state=1)
    dcea = DCEAEstimator(peak=4, random_state=0).fit(clean)
    # the twin: 15 proximal-gradient iterations with DCEA's initial filters,
    # its l1 weight the best of a grid on these very crops (an edge the
    # learned model does not get)
    def twin(alpha):
        mean = model_based_denoise(noisy, dcea.initial_components_, alpha,
                                   stride=dcea.stride, n_iter=dcea.n_layers)
        return psnr(truth, mean * dcea.intensity_scale_, data_range=1)

    base = max(twin(alpha) for alpha in (1.0, 2.0, 3.0, 4.0, 6.0, 8.0))
    ours = psnr(truth, dcea.transform(noisy), data_range=1)
    verdict = _db_verdict(ours - base, "the learned model", "its model-based twin")
    if ours < base:
        verdict += (" DCEA's targets are not met on these pictures (see "
                    "benchmarks/RESULTS.md).")
    return dict(
        baseline=f"15 prox-grad steps, initial filters, best l1 weight: {base:.2f} dB "
                 f"(noisy {psnr(truth, noisy / 4, data_range=1):.2f} dB)",
        learned=f"DCEA-C, the defaults: {ours:.2f} dB",
        verdict=verdict,
    )


@_step("PnPRestorer",
       "deblur camera 256 x 256 (blur 1.6 px, noise 0.03), held-out image")
def _tour_pnp():
    """PnP-ADMM with the shipped CNN denoiser against the same loop with TV."""
    import torch

    from .datasets import load_images
    from .denoisers import load_pretrained
    from .metrics import psnr
    from .operators import GaussianBlur
    from .pnp import PnPRestorer

    clean = load_images(["camera"])["camera"][128:384, 128:384][None].astype(np.float32)
    blur = GaussianBlur(1.6, 25)
    rng = np.random.RandomState(0)
    observed = blur(torch.from_numpy(clean)).numpy()
    observed = observed + 0.03 * rng.standard_normal(observed.shape).astype(np.float32)
    scores = {}
    for name, denoiser, rho in (("TV", "tv", 0.03), ("CNN", load_pretrained(), 0.05)):
        restorer = PnPRestorer(blur, denoiser=denoiser, rho=rho, noise_level=0.03,
                               n_iter=30).fit(clean)
        scores[name] = psnr(clean, restorer.transform(observed), data_range=1.0)
    return dict(
        baseline=f"TV-ADMM, 30 iterations: {scores['TV']:.2f} dB "
                 f"(observed {psnr(clean, observed, data_range=1.0):.2f} dB)",
        learned=f"PnP-ADMM, shipped CNN prior: {scores['CNN']:.2f} dB",
        verdict=_db_verdict(scores["CNN"] - scores["TV"], "the learned prior",
                            "TV in the same solver"),
    )


@_step("DetNetClassifier",
       "8 users x 16 antennas, BPSK, 10 dB (bit error rate, lower is better)")
def _tour_detnet():
    """DetNet against MMSE and exact ML on 8 x 16 BPSK at 10 dB."""
    from .datasets import make_mimo
    from .detnet import DetNetClassifier, MIMODetector
    from .metrics import symbol_error_rate
    from .solvers import sphere_decoder

    X, y, H = make_mimo(4000, 8, 16, snr_db=(7, 14), random_state=0)
    X_test, y_test, H_test = make_mimo(3000, 8, 16, snr_db=10.0, random_state=1)
    detnet = DetNetClassifier(random_state=0).fit(X, y, channels=H)
    plain = 1 - detnet.score(X_test, y_test, channels=H_test)
    # the same network with its list stage (likelihood over 16 candidates)
    listed = 1 - detnet.set_params(list_users=4).score(X_test, y_test, channels=H_test)
    mmse = MIMODetector("mmse").fit(X_test, y_test, channels=H_test)
    ml = symbol_error_rate(y_test, sphere_decoder(X_test, H_test, [-1.0, 1.0]))
    base = 1 - mmse.score(X_test, y_test, channels=H_test)
    return dict(
        baseline=f"MMSE: BER {base:.2e} (exact ML {ml:.2e})",
        learned=f"DetNet, the defaults: BER {plain:.2e}; "
                f"+ list stage of 4: {listed:.2e}",
        verdict=f"DetNet makes {_times(base / max(plain, 1e-12), 'fewer', 'more')} "
                f"errors than MMSE; with its list stage, "
                f"{listed / max(ml, 1e-12):.2f}x the errors of exact ML.",
    )


@_step("BurstSuperResolver",
       "x2 super-resolution, camera 128 x 128, 8 shifted frames, noise 0.01")
def _tour_burst():
    """Burst super-resolution (scale 2, 8 frames) against bicubic and the TV twin."""
    from .burst import BurstSuperResolver, bicubic
    from .datasets import extract_patches, load_images, make_bursts
    from .metrics import psnr

    patches = extract_patches(load_images("train"), 24, 48, random_state=0)
    scene = load_images(["camera"])["camera"][64:192, 192:320]
    bursts, truth, _ = make_bursts(scene, n_frames=8, motion="euclidean",
                                   random_state=0)
    inner = np.s_[:, 16:-16, 16:-16]
    scores = {}
    for prior in ("tv", "cnn"):
        model = BurstSuperResolver(2, 8, prior=prior, random_state=0).fit(patches)
        scores[prior] = psnr(truth[inner], model.transform(bursts)[inner], data_range=1.0)
    up = psnr(truth[inner], bicubic(bursts, 2)[inner], data_range=1.0)
    return dict(
        baseline=f"bicubic {up:.2f} dB; TV twin {scores['tv']:.2f} dB",
        learned=f"unrolled, motions estimated, the defaults: {scores['cnn']:.2f} dB",
        verdict=_db_verdict(scores["cnn"] - up, "the learned model", "bicubic")
        + " " + _db_verdict(scores["cnn"] - scores["tv"], "It",
                            "its TV twin"),
    )


@_step("ExoplanetSeparator",
       "3 faint companions in a 48 x 64 x 64 ADI cube (S/N, higher is better)")
def _tour_exoplanet():
    """ExoplanetSeparator against PCA-ADI (best of 3, 5, 10 components) on one
    ADI cube: mean small-sample S/N of the three companions."""
    from .datasets import make_adi_cube
    from .exoplanet import ExoplanetSeparator, pca_adi
    from .metrics import snr_at

    cube, angles, planets, psf = make_adi_cube(48, 64, n_planets=3, random_state=5)
    xy = [(p["x"], p["y"]) for p in planets]
    pca = max(np.mean([snr_at(pca_adi(cube, angles, k), q, 4.0) for q in xy])
              for k in (3, 5, 10))
    sep = ExoplanetSeparator(psf, random_state=0).fit(cube, angles=angles)
    flux = sep.flux_map(cube, angles=angles)
    ours = np.mean([snr_at(flux, q, 4.0) for q in xy])
    return dict(
        baseline=f"PCA-ADI, best of 3 / 5 / 10 components: mean S/N {pca:.1f}",
        learned=f"local patch model, the defaults: mean S/N {ours:.1f}",
        verdict=f"The separator's companions stand {ours / pca:.2f}x as high "
                f"above the noise as PCA-ADI's"
                + (" (below it here)." if ours < pca else "."),
    )


def _format(row, width=WIDTH):
    """One method's block of the tour: what ran, the two figures, and what
    they show in words, wrapped to ``width`` columns."""
    head = f"{row['method']}: {row['task']}"
    lines = textwrap.wrap(f"{head} ({row['time']})", width)
    labels = (("baseline", "baseline"), ("learned", "ours"),
              ("verdict", "in words"))
    for key, label in labels:
        lines += textwrap.wrap(row[key], width, initial_indent=f"  {label:<12}",
                               subsequent_indent=" " * 14)
    return lines


def tour(out=None):
    """Run every method on its built-in problem and print what it shows.

    Each method gets a block: its task, the model-based baseline's figure,
    the learned (or our) method's figure and, in words, what the two
    figures say (a learned model below its baseline is said so). Every line
    fits 100 columns.

    Parameters
    ----------
    out : file-like, default=sys.stdout
        Where to print.

    Returns
    -------
    rows : list of dict
        One per method: ``method``, ``task``, ``baseline``, ``learned``,
        ``verdict``, ``time``.

    Examples
    --------
    >>> from sklearn_mbdl.__main__ import tour
    >>> rows = tour()  # doctest: +SKIP
    """
    out = sys.stdout if out is None else out
    print("sklearn-mbdl tour: every method on its built-in problem, against its "
          "model-based baseline.", file=out, flush=True)
    rows = []
    for step in TOUR:
        start = time.perf_counter()
        row = step()
        row["time"] = f"{time.perf_counter() - start:.1f} s"
        rows.append(row)
        print(file=out)
        print("\n".join(_format(row)), file=out, flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_mbdl",
        description="sklearn-mbdl: model-based deep learning for scikit-learn.")
    parser.add_argument("command", choices=["tour"],
                        help="tour: every method on its built-in problem")
    parser.parse_args(argv)
    tour()
    return 0


if __name__ == "__main__":
    sys.exit(main())
