"""Command line: ``python -m sklearn_mbdl tour``.

The tour runs every method of the toolkit on its built-in problem and prints
one row per method: the task, the model-based baseline's figure, the learned
method's figure and the time it took. Each method adds its row by adding a
function to ``TOUR``.
"""

import argparse
import sys
import time

import numpy as np


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
    return dict(
        method="SparseCoder",
        task="lasso codes, 3000 x 64 signals, 256 atoms",
        baseline=f"sklearn lasso_cd: objective {objective(Z_cd):.6f} in {t_cd:.2f} s",
        learned=f"active set: objective {objective(Z):.6f} in {t_ours:.2f} s "
                f"({t_cd / t_ours:.1f}x faster)",
    )


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
    return dict(
        method="LISTATransformer",
        task="lasso codes in 16 steps, held-out rows",
        baseline=f"FISTA, 16 iterations: NMSE {nmse_db(reference, Z_fista.numpy()):.1f} dB",
        learned=f"LISTA, 16 layers: NMSE "
                f"{nmse_db(reference, lista.transform(X_test)):.1f} dB",
    )


TOUR = [_tour_sparse_coding, _tour_lista]


def tour(out=sys.stdout):
    """Run every method on its built-in problem and print a table."""
    header = ("method", "task", "model-based baseline", "learned / ours", "time")
    rows = []
    for step in TOUR:
        start = time.perf_counter()
        row = step()
        row["time"] = f"{time.perf_counter() - start:.1f} s"
        rows.append(tuple(row[k] for k in ("method", "task", "baseline", "learned",
                                           "time")))
        print(f"  done: {row['method']} ({row['time']})", file=out, flush=True)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("{:<%d}" % w for w in widths)
    print(file=out)
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print(line.format(*r).rstrip(), file=out)
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
