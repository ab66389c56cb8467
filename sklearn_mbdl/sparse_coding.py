"""Sparse coding: the lasso solved by ISTA, FISTA or an active-set method,
and dictionary learning, as a scikit-learn transformer.
"""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted

from . import solvers
from ._base import (
    DEVICE_CONSTRAINT,
    FLOAT_DTYPES,
    Interval,
    StrOptions,
    TorchEstimator,
    check_bool,
    check_matrix,
    check_number,
    check_options,
    resolve_device,
    row_chunks,
    to_numpy,
    to_tensor,
)

__all__ = ["SparseCoder", "sparse_encode", "learn_dictionary"]

ALGORITHMS = ("ista", "fista", "active_set")


def _encode(X, dictionary, *, algorithm, alpha, max_iter, tol, positive):
    """Dispatch to the solver on tensors; returns the codes tensor."""
    solver = getattr(solvers, algorithm)
    codes, _ = solver(X, dictionary, alpha, max_iter=max_iter, tol=tol,
                      positive=positive)
    return codes


def _check_coding_params(algorithm, alpha, max_iter, tol, positive):
    """The functions' arguments (the estimator declares its constraints)."""
    check_options(algorithm, "algorithm", ALGORITHMS)
    check_number(alpha, "alpha", min_val=0)
    check_number(max_iter, "max_iter", min_val=1, integer=True)
    check_number(tol, "tol", min_val=0)
    check_bool(positive, "positive")


def sparse_encode(X, dictionary, *, algorithm="active_set", alpha=1.0,
                  max_iter=1000, tol=1e-6, positive=False, device="cpu"):
    """Lasso codes of the rows of ``X`` in a dictionary.

    Solves, for each row ``x`` of ``X``,
    ``min_z 0.5 ||x - z @ dictionary||^2 + alpha ||z||_1`` (the objective of
    scikit-learn's ``sparse_encode(..., algorithm="lasso_cd")``).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Signals.
    dictionary : array-like of shape (n_components, n_features)
        Atoms as rows.
    algorithm : {"active_set", "fista", "ista"}, default="active_set"
        ``"active_set"`` grows each row's support a few atoms at a time and
        solves exactly on it: the fastest, and exact. ``"fista"`` and
        ``"ista"`` are the proximal-gradient methods LISTA unrolls.
    alpha : float, default=1.0
        Weight of the l1 penalty.
    max_iter : int, default=1000
        Maximum number of iterations (rounds for ``"active_set"``).
    tol : float, default=1e-6
        Stopping tolerance of the solver.
    positive : bool, default=False
        Constrain the codes to be non-negative.
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where to compute.

    Returns
    -------
    codes : ndarray of shape (n_samples, n_components)
        float32 for float32 input, float64 otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mbdl import sparse_encode
    >>> D = np.eye(3)
    >>> sparse_encode(np.array([[2.0, -0.5, 1.5]]), D, alpha=1.0)
    array([[1. , 0. , 0.5]])
    """
    _check_coding_params(algorithm, alpha, max_iter, tol, positive)
    X = check_array(X, dtype=FLOAT_DTYPES, ensure_all_finite=True)
    dictionary = check_matrix(dictionary, "dictionary", n_features=X.shape[1])
    return _sparse_encode(X, dictionary, algorithm=algorithm, alpha=alpha,
                          max_iter=max_iter, tol=tol, positive=positive,
                          device=resolve_device(device))


def _sparse_encode(X, dictionary, *, algorithm="active_set", alpha, max_iter=1000,
                   tol=1e-6, positive=False, device):
    """:func:`sparse_encode` on arrays and parameters already validated."""
    Dt = to_tensor(dictionary, device, dtype=torch.from_numpy(X[:0]).dtype)
    codes = np.empty((X.shape[0], dictionary.shape[0]), dtype=X.dtype)
    # rows are independent: chunks only change the speed. The active set's
    # rounds have a fixed overhead and prefer large blocks.
    cpu_size = 65536 if algorithm == "active_set" else 1024
    for rows in row_chunks(X.shape[0], device, cpu_size):
        chunk = _encode(to_tensor(X[rows], device), Dt, algorithm=algorithm,
                        alpha=alpha, max_iter=max_iter, tol=tol,
                        positive=positive)
        codes[rows] = to_numpy(chunk, X.dtype)
    return codes + 0.0  # + 0.0 turns -0.0 into 0.0


def _normalize_rows(D):
    norms = torch.linalg.vector_norm(D, dim=1, keepdim=True)
    return D / torch.clamp(norms, min=torch.finfo(D.dtype).tiny)


def learn_dictionary(X, n_components, *, alpha=1.0, n_iter=30, tol=1e-4,
                     algorithm="active_set", positive=False, random_state=None,
                     device="cpu", return_n_iter=False):
    """Learn unit-norm atoms by alternating sparse coding and atom updates.

    Minimises ``sum_i 0.5||x_i - z_i D||^2 + alpha ||z_i||_1`` over the codes
    and over dictionaries with unit-norm atoms: the codes step is an exact
    lasso solve, the dictionary step one pass of block coordinate descent
    over the atoms (each atom the least-squares fit to its residual,
    projected on the unit sphere), as scikit-learn's ``DictionaryLearning``.
    Atoms that no code uses are re-drawn from the worst-fitted signals.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : int
        Number of atoms.
    alpha : float, default=1.0
        Weight of the l1 penalty.
    n_iter : int, default=30
        Maximum number of alternations.
    tol : float, default=1e-4
        Stop when the objective changes by less than ``tol`` (relative).
    algorithm : {"active_set", "fista", "ista"}, default="active_set"
        Solver of the codes step.
    positive : bool, default=False
        Non-negative codes.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial atoms (random signals of ``X``).
    device : {"cpu", "cuda", "auto"}, default="cpu"
    return_n_iter : bool, default=False
        Also return the number of alternations run.

    Returns
    -------
    dictionary : ndarray of shape (n_components, n_features)
    n_iter : int
        Only with ``return_n_iter=True``.

    Examples
    --------
    >>> from sklearn_mbdl.datasets import make_sparse_coding
    >>> from sklearn_mbdl.sparse_coding import learn_dictionary
    >>> X, _, _ = make_sparse_coding(200, 16, 24, 2, random_state=0)
    >>> D = learn_dictionary(X, 24, alpha=0.1, random_state=0)
    >>> D.shape
    (24, 16)
    """
    _check_coding_params(algorithm, alpha, 1, tol, positive)
    check_number(n_components, "n_components", min_val=1, integer=True)
    check_number(n_iter, "n_iter", min_val=1, integer=True)
    X = check_array(X, dtype=FLOAT_DTYPES, ensure_all_finite=True)
    device = resolve_device(device)
    rng = check_random_state(random_state)
    n_samples, n_features = X.shape
    Xt = to_tensor(X, device)
    # start from random signals (repeated with a perturbation if too few)
    picks = rng.choice(n_samples, n_components, replace=n_samples < n_components)
    D0 = X[picks] + 1e-2 * rng.standard_normal((n_components, n_features))
    D = _normalize_rows(to_tensor(D0, device, dtype=Xt.dtype))

    previous = np.inf
    it = 0
    for it in range(1, n_iter + 1):
        Z = _encode(Xt, D, algorithm=algorithm, alpha=alpha, max_iter=1000,
                    tol=1e-6, positive=positive)
        residual = Xt - Z @ D
        for j in range(n_components):
            z = Z[:, j]
            energy = float(z @ z)
            if energy == 0.0:
                # unused atom: re-draw it from the worst-fitted signal
                worst = int(torch.argmax((residual * residual).sum(dim=1)))
                atom = residual[worst] + 1e-3 * to_tensor(
                    rng.standard_normal(n_features), device, dtype=Xt.dtype)
            else:
                atom = D[j] + (z @ residual) / energy
            atom = atom / torch.clamp(torch.linalg.vector_norm(atom),
                                      min=torch.finfo(Xt.dtype).tiny)
            residual += torch.outer(z, D[j] - atom)
            D[j] = atom
        objective = float(0.5 * (residual * residual).sum()
                          + alpha * Z.abs().sum()) / n_samples
        if abs(previous - objective) <= tol * max(abs(objective), 1e-300):
            break
        previous = objective
    D = to_numpy(D, np.float64)
    return (D, it) if return_n_iter else D


class DictionaryTransformerMixin(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """What the dictionary-based transformers share: the decoder
    ``inverse_transform``, the codes' feature names (``<class name>0``, ...,
    one per atom, so ``set_output(transform="pandas")`` works) and
    dtype-preserving tags. The fitted estimator has ``components_`` of shape
    (n_components, n_features)."""

    @property
    def _n_features_out(self):
        """One code per atom."""
        return self.components_.shape[0]

    def inverse_transform(self, X):
        """Signals from codes: ``codes @ components_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        codes = check_array(X, dtype=FLOAT_DTYPES, ensure_all_finite=True)
        if codes.shape[1] != self.components_.shape[0]:
            raise ValueError(
                f"codes have {codes.shape[1]} columns but the dictionary has "
                f"{self.components_.shape[0]} atoms."
            )
        return codes @ self.components_.astype(codes.dtype, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class SparseCoder(DictionaryTransformerMixin, TorchEstimator):
    """Sparse coding with ISTA, FISTA or an exact active-set method.

    Each row ``x`` of ``X`` is coded by solving the lasso
    ``min_z 0.5 ||x - z @ D||^2 + alpha ||z||_1``, the objective of
    scikit-learn's ``SparseCoder(transform_algorithm="lasso_cd",
    transform_alpha=alpha)``, so results compare one to one. The solvers run
    in torch, batched over all rows, on CPU or GPU.

    Parameters
    ----------
    dictionary : array-like of shape (n_components, n_features), default=None
        Atoms as rows. With ``None``, ``fit`` learns ``n_components``
        unit-norm atoms from ``X``.
    n_components : int, default=None
        Number of atoms to learn when ``dictionary`` is None (``n_features``
        if None too). Ignored when a dictionary is given.
    algorithm : {"active_set", "fista", "ista"}, default="active_set"
        The lasso solver. ``"active_set"`` is exact and the fastest;
        ``"fista"`` and ``"ista"`` are the iterations LISTA unrolls.
    alpha : float, default=1.0
        Weight of the l1 penalty.
    max_iter : int, default=1000
        Maximum iterations of the solver.
    tol : float, default=1e-6
        Stopping tolerance of the solver.
    positive : bool, default=False
        Constrain the codes to be non-negative.
    n_iter : int, default=30
        Alternations of dictionary learning (only when ``dictionary=None``).
    device : {"cpu", "cuda", "auto", "accelerate"}, default="cpu"
        Where to compute (``"accelerate"``: the device HF accelerate gives
        this process).
    random_state : int, RandomState instance or None, default=None
        Seeds dictionary learning.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The dictionary (given or learned), atoms as rows.
    n_components_ : int
        Number of atoms.
    n_iter_ : int
        Alternations of dictionary learning run by ``fit`` (0 when the
        dictionary was given).
    n_features_in_ : int
        Number of features seen in ``fit``.
    device_ : str
        The resolved device.

    See Also
    --------
    sparse_encode : The function behind ``transform``.
    LISTATransformer : The learned, fixed-depth twin of ISTA.

    Examples
    --------
    >>> from sklearn_mbdl import SparseCoder
    >>> from sklearn_mbdl.datasets import make_sparse_coding
    >>> X, codes, D = make_sparse_coding(100, 32, 64, 4, random_state=0)
    >>> coder = SparseCoder(D, alpha=0.05).fit(X)
    >>> Z = coder.transform(X)
    >>> Z.shape
    (100, 64)
    >>> X_hat = coder.inverse_transform(Z)
    """

    def __init__(self, dictionary=None, *, n_components=None,
                 algorithm="active_set", alpha=1.0, max_iter=1000, tol=1e-6,
                 positive=False, n_iter=30, device="cpu", random_state=None):
        self.dictionary = dictionary
        self.n_components = n_components
        self.algorithm = algorithm
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.positive = positive
        self.n_iter = n_iter
        super().__init__(device=device, random_state=random_state)

    _parameter_constraints = {
        "dictionary": ["array-like", None],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "algorithm": [StrOptions(set(ALGORITHMS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "positive": ["boolean"],
        "n_iter": [Interval(Integral, 1, None, closed="left")],
        "device": DEVICE_CONSTRAINT,
        "random_state": ["random_state"],
    }

    def fit(self, X, y=None):
        """Validate the dictionary, or learn one from ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training signals.
        y : None
            Ignored.

        Returns
        -------
        self : SparseCoder
        """
        self._check_params()
        X = self._validate_X(X, reset=True)
        self.device_ = resolve_device(self.device)
        if self.dictionary is not None:
            if np.ndim(self.dictionary) != 2:
                raise ValueError(
                    "dictionary must be a 2-D array of shape (n_components, "
                    f"n_features), got {np.ndim(self.dictionary)} dimension(s).")
            self.components_ = check_matrix(self.dictionary, "dictionary",
                                            n_features=X.shape[1]).copy()
            self.n_iter_ = 0
        else:
            n_components = self.n_components
            if n_components is None:
                n_components = X.shape[1]
            self.components_, self.n_iter_ = learn_dictionary(
                X, n_components, alpha=self.alpha, n_iter=self.n_iter,
                algorithm=self.algorithm, positive=self.positive,
                random_state=self.random_state, device=self.device_,
                return_n_iter=True)
        self.n_components_ = self.components_.shape[0]
        return self

    def transform(self, X):
        """Sparse codes of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        codes : ndarray of shape (n_samples, n_components)
            In the dtype of ``X`` (float32 or float64).
        """
        X = self._validate_X(X, reset=False)
        # the solver's parameters are read here: set_params may have changed
        # them after fit
        self._check_params()
        return _sparse_encode(X, self.components_, algorithm=self.algorithm,
                             alpha=self.alpha, max_iter=self.max_iter,
                             tol=self.tol, positive=self.positive,
                             device=self.device_)
