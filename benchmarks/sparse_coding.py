"""Benchmark of SparseCoder (ISTA / FISTA / active set) and LISTATransformer.

Writes ``benchmarks/results/sparse_coding.md`` (``sparse_coding_<device>.md``
for another device) and the figure ``sparse_coding_lista.png``.

Run::

    python benchmarks/sparse_coding.py                 # CPU, one thread
    python benchmarks/sparse_coding.py --device cuda   # the GPU rows
    python benchmarks/sparse_coding.py --robustness    # LISTA across dictionaries

``--robustness`` writes only ``benchmarks/results/lista_robustness.md``: 16
cells (dictionary family, overcompleteness, sparsity, alpha; see
``_lista_robustness.py``), LISTATransformer with its defaults in each.

The problem is the issue's: ``make_sparse_coding(5000, 64, 256, 8,
noise=0.01)`` at ``alpha = 0.1 * max|X D^T|`` and ``0.01 * max|X D^T|``.
Speed is a ratio against scikit-learn's ``lasso_cd`` measured in the same
process, best of ``--repeat`` runs.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import sparse_encode as sk_sparse_encode
from threadpoolctl import threadpool_limits

from sklearn_mbdl import LISTATransformer, SparseCoder, sparse_encode
from sklearn_mbdl.datasets import make_sparse_coding
from sklearn_mbdl.metrics import nmse_db
from sklearn_mbdl.solvers import fista, ista

from _common import best_time, machine, table

RESULTS = Path(__file__).parent / "results"


def objective(X, Z, D, alpha):
    return float(np.mean(0.5 * np.sum((X - Z @ D) ** 2, axis=1)
                         + alpha * np.abs(Z).sum(axis=1)))


def speed_section(device, repeat):
    X, _, D = make_sparse_coding(5000, 64, 256, 8, noise=0.01, random_state=0)
    out = []
    for factor in (0.1, 0.01):
        alpha = factor * float(np.abs(X @ D.T).max())
        t_cd, Z_cd = best_time(lambda: sk_sparse_encode(
            X, D, algorithm="lasso_cd", alpha=alpha, max_iter=10000), repeat)
        f_cd = objective(X, Z_cd, D, alpha)
        rows = [["sklearn lasso_cd", "float64", f"{t_cd:.3f}", "1.00",
                 f"{f_cd:.10g}", "0", f"{(Z_cd != 0).sum(1).mean():.1f}"]]
        for algorithm, dtype in (("active_set", np.float64),
                                 ("active_set", np.float32),
                                 ("fista", np.float64), ("fista", np.float32),
                                 ("ista", np.float32)):
            Xd = X.astype(dtype)
            coder = SparseCoder(D, algorithm=algorithm, alpha=alpha,
                                max_iter=100000, device=device).fit(Xd)
            coder.transform(Xd[:10])  # warm-up
            t, Z = best_time(lambda: coder.transform(Xd), repeat)
            f = objective(X, Z.astype(np.float64), D, alpha)
            rows.append([f"SparseCoder {algorithm}", np.dtype(dtype).name,
                         f"{t:.3f}", f"{t_cd / t:.2f}", f"{f:.10g}",
                         f"{(f - f_cd) / f_cd:+.1e}",
                         f"{(Z != 0).sum(1).mean():.1f}"])
        out.append((factor, alpha, rows))
        print(f"alpha = {factor} max|X D^T|")
        print(table(HEAD_SPEED, rows), flush=True)
    return out


HEAD_SPEED = ["method", "dtype", "time (s)", "speed-up vs lasso_cd",
              "mean objective", "rel. diff. to lasso_cd", "nonzeros/row"]


def lista_section(device, n_train, max_epochs, verbose):
    n_test = 2000
    X, _, D = make_sparse_coding(n_train + n_test, 64, 256, 8, noise=0.01,
                                 random_state=0)
    alpha = 0.01 * float(np.abs(X @ D.T).max())
    X_train, X_test = X[:n_train], X[n_train:]
    Z_test = sparse_encode(X_test, D, alpha=alpha, tol=1e-10, device=device)

    Xt, Dt = torch.tensor(X_test, device=device), torch.tensor(D, device=device)
    curves = {}
    for name, solver in (("ISTA", ista), ("FISTA", fista)):
        errors = []
        solver(Xt, Dt, alpha, max_iter=1000, tol=0.0,
               callback=lambda k, Z: errors.append(nmse_db(Z_test, Z.cpu().numpy())))
        curves[name] = np.array(errors)

    start = time.perf_counter()
    lista = LISTATransformer(D, n_layers=16, alpha=alpha, max_epochs=max_epochs,
                             device=device, random_state=0,
                             verbose=verbose).fit(X_train)
    fit_time = time.perf_counter() - start
    n_epochs = len(lista.net_.history)
    depth = np.arange(1, 17)
    lista_test = np.array([nmse_db(Z_test, lista.transform(X_test, n_layers=k))
                           for k in depth])
    lista_train = nmse_db(sparse_encode(X_train[:n_test], D, alpha=alpha, tol=1e-10),
                          lista.transform(X_train[:n_test]))

    def equivalent(error, curve):
        hit = np.flatnonzero(curve <= error)
        return int(hit[0]) + 1 if hit.size else None

    rows = []
    for k in (4, 8, 16):
        e = lista_test[k - 1]
        eq = {name: equivalent(e, c) for name, c in curves.items()}
        rows.append([k, f"{e:.2f}",
                     *(f"{eq[n]} ({eq[n] / k:.1f}x)" if eq[n] else "> 1000"
                       for n in ("ISTA", "FISTA"))])
    print(table(HEAD_LISTA, rows), flush=True)

    # time: LISTA's 16 layers against FISTA's equivalent number of iterations
    e16 = lista_test[-1]
    n_fista = equivalent(e16, curves["FISTA"]) or 1000
    n_ista = equivalent(e16, curves["ISTA"]) or 1000
    # 1e5 fresh rows of the same model (same seed: same dictionary; the
    # rows after the first n_train + n_test are new)
    X_big, _, D_big = make_sparse_coding(n_train + n_test + 100_000, 64, 256, 8,
                                         noise=0.01, random_state=0)
    assert np.array_equal(D_big, D)
    X32 = X_big[n_train + n_test:].astype(np.float32)
    # every method through the same numpy-in, numpy-out path (same chunking)
    t_lista, _ = best_time(lambda: lista.transform(X32), 2)
    t_fista, _ = best_time(lambda: sparse_encode(
        X32, D, algorithm="fista", alpha=alpha, max_iter=n_fista, tol=0.0,
        device=device), 2)
    t_ista, _ = best_time(lambda: sparse_encode(
        X32, D, algorithm="ista", alpha=alpha, max_iter=n_ista, tol=0.0,
        device=device), 1)
    coder = SparseCoder(D, alpha=alpha, device=device).fit(X32)
    t_exact, _ = best_time(lambda: coder.transform(X32), 1)
    timing = [
        ["LISTA, 16 layers", f"{e16:.2f}", f"{t_lista:.3f}",
         f"{1e5 / t_lista:,.0f}", "1.00"],
        [f"FISTA, {n_fista} iterations", f"{curves['FISTA'][n_fista - 1]:.2f}",
         f"{t_fista:.3f}", f"{1e5 / t_fista:,.0f}", f"{t_fista / t_lista:.2f}"],
        [f"ISTA, {n_ista} iterations", f"{curves['ISTA'][n_ista - 1]:.2f}",
         f"{t_ista:.3f}", f"{1e5 / t_ista:,.0f}", f"{t_ista / t_lista:.2f}"],
        ["SparseCoder active_set (exact)", "exact", f"{t_exact:.3f}",
         f"{1e5 / t_exact:,.0f}", f"{t_exact / t_lista:.2f}"],
    ]
    print(table(HEAD_TIME, timing), flush=True)

    figure = plot(curves, lista_test, device)
    return dict(rows=rows, timing=timing, fit_time=fit_time, n_epochs=n_epochs,
                lista_train=lista_train, lista=lista, n_train=n_train,
                figure=figure, alpha=alpha)


HEAD_LISTA = ["LISTA layers", "held-out NMSE (dB)", "ISTA iterations for it",
              "FISTA iterations for it"]
HEAD_TIME = ["method (float32, 1e5 rows)", "NMSE (dB)", "time (s)",
             "samples/s", "time / LISTA time"]


def plot(curves, lista_test, device):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        ax.semilogx(np.arange(1, curve.size + 1), curve, label=name)
    ax.semilogx(np.arange(1, lista_test.size + 1), lista_test, "o-",
                label="LISTA (layers)")
    ax.set_xlabel("iterations / layers")
    ax.set_ylabel("NMSE to the lasso codes (dB)")
    ax.set_ylim(max(-60, min(curves["FISTA"].min(), lista_test.min()) - 5), 1)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title("Held-out rows, alpha = 0.01 max|X D^T|")
    name = "sparse_coding_lista.png" if device == "cpu" else \
        f"sparse_coding_lista_{device}.png"
    fig.tight_layout()
    fig.savefig(RESULTS / name, dpi=120)
    return name


def robustness_section(args):
    """LISTA across dictionaries: one defaults fit per cell, written to
    ``lista_robustness.md``."""
    import _lista_robustness as rb

    rows, results = [], []
    start = time.perf_counter()
    cells = rb.CELLS if args.cells is None else [rb.CELLS[i] for i in args.cells]
    for family, ratio, k, a in cells:
        r = rb.run_cell(family, args.rb_features, ratio, k, a,
                        n_train=args.rb_train, n_test=1000, seed=0)
        results.append(r)
        rows.append(rb.row(r))
        print(table(rb.HEAD, rows[-1:]), flush=True)
    n_miss_f = sum(1 for r in results if r["fista"] is not None and r["fista"] < 48)
    n_miss_i = sum(1 for r in results if r["ista"] is not None and r["ista"] < 160)
    command = "python benchmarks/sparse_coding.py " + " ".join(sys.argv[1:])
    side = int(round(np.sqrt(args.rb_features)))
    md = ["# LISTA across dictionaries", "", f"Command: `{command.strip()}`", "",
          f"Machine: {machine(args.device)}; torch {torch.__version__}; "
          f"{time.strftime('%Y-%m-%d')}; {time.perf_counter() - start:.0f} s in all "
          "(the 2 cores shared with other jobs).", "",
          f"Each cell: {args.rb_features} features (synthetic families; the learned "
          f"family: {side}x{side} patches), signals `x = z D + 0.01 N(0, 1)` with "
          "the given number of standard normal non-zeros per code (learned family: "
          f"mean-removed {side}x{side} patches of scikit-image's TEST_IMAGES, the "
          "dictionary learned on patches of TRAIN_IMAGES), alpha a fraction of "
          "max|X D^T|. "
          f"LISTATransformer(D, alpha=alpha, n_layers=16, random_state=0) with "
          f"every other parameter at its default, fitted on {args.rb_train} rows; "
          "errors on 1000 held-out rows against their exact lasso codes. "
          "'FISTA its' is the first iteration at which FISTA (adaptive restart) "
          "reaches LISTA's held-out error (target >= 48, 3x); 'ISTA its' the same "
          "for ISTA (target >= 160, 10x).", "",
          table(rb.HEAD, rows), "",
          f"Cells below 3x FISTA: {n_miss_f} of {len(rows)}; below 10x ISTA: "
          f"{n_miss_i} of {len(rows)}.", ""]
    name = "lista_robustness.md" if args.out is None else args.out
    (RESULTS / name).write_text("\n".join(md))
    print(f"wrote {RESULTS / name}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=10000)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--skip-lista", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--robustness", action="store_true",
                        help="only the LISTA robustness table across dictionaries")
    parser.add_argument("--rb-features", type=int, default=48)
    parser.add_argument("--rb-train", type=int, default=2000)
    parser.add_argument("--cells", type=int, nargs="+", default=None,
                        help="indices of the robustness cells to run (all by default)")
    parser.add_argument("--out", default=None,
                        help="name of the robustness report in results/")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    RESULTS.mkdir(exist_ok=True)
    if args.robustness:
        with threadpool_limits(args.threads):
            robustness_section(args)
        return
    command = "python benchmarks/sparse_coding.py " + " ".join(sys.argv[1:])
    with threadpool_limits(args.threads):
        speed = [] if args.skip_speed else speed_section(args.device, args.repeat)
        lista = None if args.skip_lista else lista_section(
            args.device, args.n_train, args.max_epochs, args.verbose)

    md = [f"# Sparse coding: SparseCoder and LISTATransformer",
          "", f"Command: `{command.strip()}`", "",
          f"Machine: {machine(args.device)}; torch {torch.__version__}; "
          f"{time.strftime('%Y-%m-%d')}", "",
          "## Exactness and speed against scikit-learn's lasso_cd", "",
          "`make_sparse_coding(5000, 64, 256, 8, noise=0.01, random_state=0)`; "
          "times are the best of "
          f"{args.repeat} runs of `transform` on all 5000 rows; the speed-up is "
          "lasso_cd's time over the method's, in the same process.", ""]
    for factor, alpha, rows in speed:
        md += [f"### alpha = {factor} max|X D^T| = {alpha:.4g}", "",
               table(HEAD_SPEED, rows), ""]
    if lista is not None:
        l = lista["lista"]
        md += ["## Learned against model-based: LISTA (16 layers)", "",
               f"alpha = 0.01 max|X D^T| = {lista['alpha']:.4g}; trained on "
               f"{lista['n_train']} rows ({lista['n_epochs']} epochs, "
               f"{lista['fit_time']:.0f} s including the exact targets), measured "
               "on 2000 held-out rows against their exact lasso codes. ISTA and "
               "FISTA (with adaptive restart) start from zero; 'iterations for "
               "it' is the first iteration at which they reach LISTA's error. "
               f"Training rows: {lista['lista_train']:.2f} dB at 16 layers.", "",
               table(HEAD_LISTA, lista["rows"]), "",
               "Transform time on 1e5 rows (float32), LISTA against the "
               "solvers run to the same error:", "",
               table(HEAD_TIME, lista["timing"]), "",
               "Learned parameters per layer (ISTA: step 1/L = "
               f"{l.ista_step_:.4g}, threshold alpha/L = "
               f"{lista['alpha'] * l.ista_step_:.4g}, momentum 0):", "",
               table(["layer", "step", "threshold", "momentum"],
                     [[k + 1, f"{s:.4g}", f"{t:.4g}", f"{m:.3f}"] for k, (s, t, m)
                      in enumerate(zip(l.steps_, l.thresholds_, l.momentum_))]),
               "", f"![error against depth]({lista['figure']})", ""]
    name = "sparse_coding.md" if args.device == "cpu" else \
        f"sparse_coding_{args.device.replace(':', '')}.md"
    (RESULTS / name).write_text("\n".join(md))
    print(f"wrote {RESULTS / name}")


if __name__ == "__main__":
    main()
