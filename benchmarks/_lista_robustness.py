"""LISTA across dictionaries: the robustness table of ``sparse_coding.py``.

Each cell is a dictionary family, an overcompleteness, a sparsity of the
generating codes and an alpha; LISTATransformer is fitted with its defaults
(16 layers) on the cell's training rows and its held-out error is turned
into the number of FISTA and ISTA iterations that reach it.
"""

import time

import numpy as np
import torch

from sklearn_mbdl import LISTATransformer, sparse_encode
from sklearn_mbdl.metrics import nmse_db
from sklearn_mbdl.solvers import fista, ista

FAMILIES = ("gaussian", "coherent", "dct", "learned")


def _unit_rows(D):
    return D / np.linalg.norm(D, axis=1, keepdims=True)


def _patches(names, size, n, rng):
    """``n`` random ``size x size`` patches of scikit-image pictures, each
    with its mean removed (rows of length ``size**2``)."""
    from sklearn_mbdl.datasets import load_images

    images = list(load_images(names).values())
    out = []
    for i in range(n):
        image = images[i % len(images)]
        r = rng.randint(image.shape[0] - size + 1)
        c = rng.randint(image.shape[1] - size + 1)
        out.append(image[r:r + size, c:c + size].ravel())
    X = np.array(out)
    return X - X.mean(axis=1, keepdims=True)


_LEARNED = {}


def dictionary(family, n_features, n_components, rng):
    """Unit-norm atoms (rows) of one family.

    gaussian: i.i.d. normal entries. coherent: atoms correlated with each
    other, a shared random direction plus a smaller i.i.d. part (mutual
    coherence about 0.6-0.8). dct: an overcomplete DCT-II frame (cosines at
    ``n_components`` evenly spaced frequencies; neighbours nearly parallel).
    learned: atoms learned by :func:`learn_dictionary` from mean-removed
    patches of scikit-image's TRAIN_IMAGES (``n_features`` must be a square).
    """
    if family == "gaussian":
        D = rng.standard_normal((n_components, n_features))
    elif family == "coherent":
        common = rng.standard_normal(n_features)
        D = 1.5 * common + rng.standard_normal((n_components, n_features))
    elif family == "dct":
        freq = np.arange(n_components)[:, None] * n_features / n_components
        D = np.cos(np.pi * freq * (np.arange(n_features) + 0.5) / n_features)
    elif family == "learned":
        key = (n_features, n_components)
        if key not in _LEARNED:
            from sklearn_mbdl.sparse_coding import learn_dictionary

            size = int(round(np.sqrt(n_features)))
            P = _patches("train", size, 4000, np.random.RandomState(1))
            P /= np.abs(P).max()
            alpha = 0.05 * float(np.linalg.norm(P, axis=1).max())
            _LEARNED[key] = learn_dictionary(P, n_components, alpha=alpha,
                                             n_iter=15, random_state=0)
        D = _LEARNED[key].copy()
    else:
        raise ValueError(family)
    return _unit_rows(D)


def signals(D, n, n_nonzero, rng, noise=0.01):
    """``x = z D + e`` with ``n_nonzero`` standard normal entries per code."""
    p, m = D.shape
    Z = np.zeros((n, p))
    support = np.argsort(rng.random_sample((n, p)), axis=1)[:, :n_nonzero]
    np.put_along_axis(Z, support, rng.standard_normal((n, n_nonzero)), axis=1)
    return Z @ D + noise * rng.standard_normal((n, m))


def mutual_coherence(D):
    G = np.abs(D @ D.T)
    np.fill_diagonal(G, 0)
    return float(G.max())


def equivalent(error, curve):
    """First iteration (1-based) at which ``curve`` reaches ``error``."""
    hit = np.flatnonzero(curve <= error)
    return int(hit[0]) + 1 if hit.size else None


def run_cell(family, n_features, ratio, n_nonzero, alpha_factor, *, n_train,
             n_test=1000, seed=0, max_iter=1000, lista_kwargs=None):
    """One cell of the table: fit LISTA with its defaults, compare to ISTA and
    FISTA on held-out rows. Returns a dict of figures."""
    rng = np.random.RandomState(seed)
    if family == "learned":   # square patches: the nearest square size
        n_features = int(round(np.sqrt(n_features))) ** 2
    D = dictionary(family, n_features, int(round(ratio * n_features)), rng)
    if n_nonzero == "patches":
        # real signals the dictionary was not learned on: patches of the
        # test pictures
        size = int(round(np.sqrt(n_features)))
        X = _patches("test", size, n_train + n_test, rng)
    else:
        X = signals(D, n_train + n_test, n_nonzero, rng)
    alpha = alpha_factor * float(np.abs(X @ D.T).max())
    X_train, X_test = X[:n_train], X[n_train:]
    Z_test = sparse_encode(X_test, D, alpha=alpha, tol=1e-10)
    Xt, Dt = torch.tensor(X_test), torch.tensor(D)
    curves = {}
    for name, solver in (("ISTA", ista), ("FISTA", fista)):
        errors = []
        solver(Xt, Dt, alpha, max_iter=max_iter, tol=0.0,
               callback=lambda k, Z: errors.append(nmse_db(Z_test, Z.numpy())))
        curves[name] = np.array(errors)
    start = time.perf_counter()
    kwargs = dict(n_layers=16, random_state=seed)
    kwargs.update(lista_kwargs or {})
    lista = LISTATransformer(D, alpha=alpha, **kwargs).fit(X_train)
    fit_time = time.perf_counter() - start
    error = nmse_db(Z_test, lista.transform(X_test))
    train_rows = X_train[:n_test]
    train_error = nmse_db(sparse_encode(train_rows, D, alpha=alpha, tol=1e-10),
                          lista.transform(train_rows))
    return dict(family=family, n_features=n_features, n_components=D.shape[0],
                n_nonzero=n_nonzero, alpha_factor=alpha_factor,
                coherence=mutual_coherence(D),
                lasso_nonzeros=float((Z_test != 0).sum(1).mean()),
                error=error, train_error=train_error, fista=equivalent(error, curves["FISTA"]),
                ista=equivalent(error, curves["ISTA"]),
                fista16=float(curves["FISTA"][15]),
                n_epochs=len(lista.net_.history), fit_time=fit_time)


# the table's cells: (family, overcompleteness, non-zeros of the generating
# codes or "patches" for real image patches, alpha / max|X D^T|). Every
# family is seen at 2x and 4x, at both alphas, and the synthetic ones from 2
# to 30 non-zeros.
CELLS = [
    (family, ratio, k, a)
    for family in ("gaussian", "coherent", "dct")
    for ratio, k, a in ((2, 2, 0.1), (2, 10, 0.01), (4, 5, 0.01), (4, 30, 0.1))
] + [("learned", ratio, "patches", a) for ratio in (2, 4) for a in (0.1, 0.01)]

HEAD = ["dictionary", "atoms", "coherence", "code non-zeros", "alpha / max",
        "lasso non-zeros", "LISTA-16 held-out NMSE (dB)", "train NMSE (dB)",
        "FISTA-16 (dB)", "FISTA its (>= 48)", "ISTA its (>= 160)", "epochs",
        "fit (s)"]


def row(r):
    fista = f"{r['fista']} ({r['fista'] / 16:.1f}x)" if r["fista"] else "> 1000"
    ista = f"{r['ista']} ({r['ista'] / 16:.1f}x)" if r["ista"] else "> 1000"
    ok_f = "" if r["fista"] is None or r["fista"] >= 48 else " **miss**"
    ok_i = "" if r["ista"] is None or r["ista"] >= 160 else " **miss**"
    return [r["family"], f"{r['n_components']} x {r['n_features']}",
            f"{r['coherence']:.2f}", r["n_nonzero"], r["alpha_factor"],
            f"{r['lasso_nonzeros']:.1f}", f"{r['error']:.2f}",
            f"{r['train_error']:.2f}", f"{r['fista16']:.2f}", fista + ok_f,
            ista + ok_i, r["n_epochs"], f"{r['fit_time']:.0f}"]
