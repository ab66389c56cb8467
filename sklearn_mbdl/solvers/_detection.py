"""Model-based MIMO detectors for ``x = H s + w`` with ``s`` in a finite
alphabet: zero forcing, MMSE, ordered MMSE-SIC, projected gradient (the
algorithm DetNet unrolls; both call :func:`detection_step`) and the exact
maximum-likelihood sphere decoder.

Real-valued model: ``X`` has shape ``(n_samples, n_rx)``, the channel ``H``
is one ``(n_rx, n_tx)`` matrix or one per sample, ``(n_samples, n_rx,
n_tx)``, and the alphabet is a sorted 1-D tensor of points shared by all
users (complex constellations enter through their real decomposition).
Every detector except the sphere decoder works on the sufficient statistics
``H^T x`` and ``H^T H`` (see :func:`matched_filter`) and is batched over
samples.
"""

import math

import numpy as np
import torch

from ..prox import nearest_point, soft_constellation

__all__ = [
    "matched_filter",
    "detection_step",
    "zero_forcing",
    "mmse",
    "mmse_sic",
    "projected_gradient",
    "softness_schedule",
    "sphere_decoder",
]


def matched_filter(X, H):
    """The sufficient statistics ``(H^T x, H^T H)`` of the linear model.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_rx)
    H : torch.Tensor of shape (n_rx, n_tx) or (n_samples, n_rx, n_tx)

    Returns
    -------
    Htx : torch.Tensor of shape (n_samples, n_tx)
    HtH : torch.Tensor of shape (n_tx, n_tx) or (n_samples, n_tx, n_tx)

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.solvers import matched_filter
    >>> Htx, HtH = matched_filter(torch.ones(5, 3), torch.eye(3)[:, :2])
    >>> Htx.shape, HtH.shape
    (torch.Size([5, 2]), torch.Size([2, 2]))
    """
    if H.ndim == 2:
        return X @ H, H.T @ H
    return torch.einsum("nr,nrk->nk", X, H), H.transpose(1, 2) @ H


def _gram_times(HtH, s):
    """``H^T H s`` for one shared Gram matrix or one per sample."""
    if HtH.ndim == 2:
        return s @ HtH  # symmetric
    # a broadcast product and a sum: per-sample matrix-vector products as
    # bmm run 2.4 times slower on CPU (measured at 1000 x 30 x 30)
    return (HtH * s.unsqueeze(-2)).sum(dim=-1)


def detection_step(s, Htx, HtH, step_gram, step_corr):
    """One gradient step on ``||x - H s||^2 / 2``: ``s - a H^T H s + b H^T x``.

    Projected gradient descent takes ``a = b = step``; DetNet learns the
    two step sizes of each layer separately (its ``delta_2 = -a``,
    ``delta_1 = -b``) and feeds the result to its network instead of the
    projection. Both call this function.

    Parameters
    ----------
    s : torch.Tensor of shape (n_samples, n_tx)
        Current estimate.
    Htx : torch.Tensor of shape (n_samples, n_tx)
    HtH : torch.Tensor of shape (n_tx, n_tx) or (n_samples, n_tx, n_tx)
    step_gram, step_corr : float or torch.Tensor
        The step sizes ``a`` and ``b`` (scalars, or broadcastable per
        sample, e.g. of shape ``(n_samples, 1)``).

    Returns
    -------
    torch.Tensor of shape (n_samples, n_tx)
    """
    return s - step_gram * _gram_times(HtH, s) + step_corr * Htx


def _prior(points):
    """Mean and variance of the uniform distribution on the alphabet."""
    mean = points.mean()
    return mean, ((points - mean) ** 2).mean()


def _regularised_solve(Htx, HtH, ridge):
    eye = torch.eye(HtH.shape[-1], dtype=HtH.dtype, device=HtH.device)
    per_sample = torch.is_tensor(ridge) and ridge.ndim > 0
    if HtH.ndim == 2 and not per_sample:
        return torch.linalg.solve(HtH + ridge * eye, Htx.T).T
    if HtH.ndim == 2:
        HtH = HtH.expand(Htx.shape[0], *HtH.shape)
    if not per_sample:
        return torch.linalg.solve(HtH + ridge * eye, Htx.unsqueeze(-1)).squeeze(-1)
    A = HtH + ridge.reshape(-1, 1, 1) * eye
    return torch.linalg.solve(A, Htx.unsqueeze(-1)).squeeze(-1)


def zero_forcing(X, H):
    """Zero-forcing (least-squares) estimate ``(H^T H)^{-1} H^T x``.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_rx)
    H : torch.Tensor of shape (n_rx, n_tx) or (n_samples, n_rx, n_tx)
        Needs ``n_rx >= n_tx`` and full column rank.

    Returns
    -------
    torch.Tensor of shape (n_samples, n_tx)
        Soft estimates; :func:`~sklearn_mbdl.prox.nearest_point` slices them.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.solvers import zero_forcing
    >>> H = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    >>> zero_forcing(torch.tensor([[2.0, -1.0, 0.5]]), H)
    tensor([[ 1., -1.]])
    """
    Htx, HtH = matched_filter(X, H)
    return _regularised_solve(Htx, HtH, 0.0)


def mmse(X, H, noise_var, points):
    """Linear MMSE estimate for symbols drawn uniformly from ``points``.

    ``mu + (H^T H + noise_var / E I)^{-1} H^T (x - H mu)`` with ``mu`` and
    ``E`` the mean and variance of a symbol.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_rx)
    H : torch.Tensor of shape (n_rx, n_tx) or (n_samples, n_rx, n_tx)
    noise_var : float or torch.Tensor of shape (n_samples,)
        Variance of each noise entry (one value, or one per sample).
    points : torch.Tensor of shape (n_points,)
        The sorted alphabet.

    Returns
    -------
    torch.Tensor of shape (n_samples, n_tx)
        Soft estimates, regularised towards the mean symbol ``mu``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.solvers import mmse
    >>> H = torch.eye(2)
    >>> mmse(torch.tensor([[1.0, -1.0]]), H, 1.0, torch.tensor([-1.0, 1.0]))
    tensor([[ 0.5000, -0.5000]])
    """
    Htx, HtH = matched_filter(X, H)
    mean, var = _prior(points)
    Htx = Htx - mean * HtH.sum(-1)
    return mean + _regularised_solve(Htx, HtH, torch.as_tensor(noise_var) / var)


def mmse_sic(X, H, noise_var, points, *, return_soft=False):
    """Ordered MMSE successive interference cancellation (MMSE V-BLAST).

    At each of ``n_tx`` stages every sample detects, among its users not
    yet detected, the one with the smallest MMSE error (the largest
    post-detection SINR), slices it to the alphabet and cancels its
    contribution before the next stage.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_rx)
    H : torch.Tensor of shape (n_rx, n_tx) or (n_samples, n_rx, n_tx)
    noise_var : float or torch.Tensor of shape (n_samples,)
    points : torch.Tensor of shape (n_points,)
    return_soft : bool, default=False
        Also return, for each user, the MMSE estimate it was sliced from
        and that estimate's error variance (``noise_var`` times the
        diagonal entry of ``(H^T H + noise_var / E I)^{-1}`` over the users
        not yet detected at its stage): a soft output.

    Returns
    -------
    decided : torch.Tensor of shape (n_samples, n_tx)
        Hard decisions (values of ``points``).
    estimates, variances : torch.Tensor of shape (n_samples, n_tx)
        Only with ``return_soft=True``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.solvers import mmse_sic
    >>> H = torch.tensor([[1.0, 0.9], [0.0, 0.5]])
    >>> mmse_sic(torch.tensor([[1.9, 0.5]]), H, 0.01, torch.tensor([-1.0, 1.0]))
    tensor([[1., 1.]])
    """
    Htx, HtH = matched_filter(X, H)
    n, K = Htx.shape
    if HtH.ndim == 2:
        HtH = HtH.expand(n, K, K)
    mean, var = _prior(points)
    ridge = (torch.as_tensor(noise_var, dtype=Htx.dtype, device=Htx.device)
             / var).reshape(-1, 1, 1)
    eye = torch.eye(K, dtype=Htx.dtype, device=Htx.device)
    active = torch.ones(n, K, dtype=torch.bool, device=Htx.device)
    decided = torch.zeros(n, K, dtype=Htx.dtype, device=Htx.device)
    rows = torch.arange(n, device=Htx.device)
    if return_soft:
        estimates, variances = torch.zeros_like(decided), torch.zeros_like(decided)
    for _ in range(K):
        keep = active.to(Htx.dtype)
        # detected users: their columns leave the model and their
        # contribution leaves the observation
        A = HtH * keep[:, :, None] * keep[:, None, :] + ridge * eye
        # decided users enter with their decision, the others with the
        # prior mean
        residual = (Htx - _gram_times(HtH, decided + mean * keep)) * keep
        P = torch.linalg.inv(A)
        estimate = mean + (P @ residual.unsqueeze(-1)).squeeze(-1)
        errors = torch.diagonal(P, dim1=1, dim2=2).masked_fill(~active, math.inf)
        k = errors.argmin(dim=1)
        decided[rows, k] = points[nearest_point(estimate[rows, k], points)]
        active[rows, k] = False
        if return_soft:
            estimates[rows, k] = estimate[rows, k]
            variances[rows, k] = errors[rows, k] * ridge[:, 0, 0] * var
    if return_soft:
        return decided, estimates, variances
    return decided


def softness_schedule(softness, n_iter):
    """Ramp widths per iteration: a constant, or geometric from start to end.

    Parameters
    ----------
    softness : float or (float, float)
        One positive width, or ``(start, end)``.
    n_iter : int

    Returns
    -------
    ndarray of shape (n_iter,)

    Examples
    --------
    >>> from sklearn_mbdl.solvers import softness_schedule
    >>> softness_schedule((1.0, 0.25), 3)
    array([1.  , 0.5 , 0.25])
    """
    start, end = (softness, softness) if np.ndim(softness) == 0 else softness
    start, end = float(start), float(end)
    if not (start > 0 and end > 0):
        raise ValueError(f"softness must be positive, got {softness!r}.")
    if n_iter == 1:
        return np.array([end])
    return start * (end / start) ** (np.arange(n_iter) / (n_iter - 1))


def projected_gradient(X, H, points, *, n_iter=30, step=1.0, softness=1.0,
                       mixing=1.0):
    """Projected gradient descent on ``||x - H s||^2 / 2`` over the alphabet.

    ``s <- (1 - m) s + m soft_constellation(s - step (H^T H s - H^T x), t_k)``
    from ``s = mu`` (the mean symbol). With a constant ``softness=1`` the
    projection is onto the box around the alphabet and the iterates converge
    to the box-constrained least-squares solution. With a decreasing
    schedule, e.g. ``softness=(2.0, 0.3)``, the projection starts wide and
    ends close to the hard decision: a graduated non-convexity that, with a
    long step (``step=1.9``), comes close to maximum likelihood on
    well-conditioned channels. DetNet unrolls this iteration
    (:func:`detection_step`) and starts from that schedule.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_rx)
    H : torch.Tensor of shape (n_rx, n_tx) or (n_samples, n_rx, n_tx)
    points : torch.Tensor of shape (n_points,)
    n_iter : int, default=30
    step : float, default=1.0
        Step size in units of ``1 / ||H^T H||_2`` (per sample); below 2 the
        gradient step is non-expansive.
    softness : float or (float, float), default=1.0
        Ramp width of :func:`~sklearn_mbdl.prox.soft_constellation`, constant
        or geometric from ``start`` to ``end`` over the iterations.
    mixing : float, default=1.0
        Weight ``m`` of the new iterate.

    Returns
    -------
    torch.Tensor of shape (n_samples, n_tx)
        The last iterate, inside the alphabet's range;
        :func:`~sklearn_mbdl.prox.nearest_point` makes it hard decisions.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.solvers import projected_gradient
    >>> H = torch.tensor([[1.0, 0.2], [0.1, 1.0], [0.3, 0.3]])
    >>> x = torch.tensor([[0.8, -0.9, 0.0]])
    >>> projected_gradient(x, H, torch.tensor([-1.0, 1.0]), softness=0.5).sign()
    tensor([[ 1., -1.]])
    """
    Htx, HtH = matched_filter(X, H)
    unit = 1.0 / torch.linalg.matrix_norm(HtH, ord=2)
    if HtH.ndim == 3:
        unit = unit[:, None]
    step = step * unit
    s = torch.full_like(Htx, float(points.mean()))
    for t in softness_schedule(softness, n_iter):
        new = soft_constellation(detection_step(s, Htx, HtH, step, step), points,
                                 float(t))
        s = mixing * new + (1.0 - mixing) * s
    return s


# ----- exact maximum likelihood ------------------------------------------------
def _schnorr_euchner(R, y, points):
    """Depth-first Schnorr-Euchner search of ``min ||y - R s||^2``.

    ``R`` is upper triangular (a list of rows), ``y`` a list; returns the
    best point indices and the number of tree nodes visited.
    """
    K = len(y)
    M = len(points)
    best = math.inf
    best_s = None
    s = [0.0] * K
    index = [0] * K
    dist = [0.0] * (K + 1)  # dist[k]: partial distance of levels k..K-1
    order = [None] * K      # per level, candidates sorted by distance
    nodes = 0

    def candidates(k):
        row = R[k]
        acc = y[k]
        for j in range(k + 1, K):
            acc -= row[j] * s[j]
        center = acc / row[k]
        return sorted(((row[k] * (center - p)) ** 2, i) for i, p in enumerate(points))

    k = K - 1
    order[k] = candidates(k)
    pos = [0] * K
    while True:
        if pos[k] < M:
            inc, i = order[k][pos[k]]
            d = dist[k + 1] + inc
            pos[k] += 1
            if d < best:
                nodes += 1
                s[k] = points[i]
                index[k] = i
                if k == 0:
                    best = d
                    best_s = list(index)
                    # the remaining siblings are farther: go up
                    pos[k] = M
                else:
                    dist[k] = d
                    k -= 1
                    order[k] = candidates(k)
                    pos[k] = 0
                continue
            pos[k] = M  # sorted: every later sibling is pruned too
        if k == K - 1:
            return best_s, nodes
        k += 1


def sphere_decoder(X, H, points, *, return_nodes=False):
    """Exact maximum-likelihood detection by sphere decoding.

    ``argmin_{s in points^n_tx} ||x - H s||^2`` by the Schnorr-Euchner
    depth-first search on the QR decomposition of the channel (users
    ordered by increasing column norm, so the strongest are decided first
    and pruning starts early). The cost depends on the noise and the
    conditioning of ``H``: count the visited nodes with
    ``return_nodes=True``. A plain Python loop over samples: exact, not
    fast.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_rx)
    H : ndarray of shape (n_rx, n_tx) or (n_samples, n_rx, n_tx)
        Needs ``n_rx >= n_tx``.
    points : array-like of shape (n_points,)
        The sorted alphabet.
    return_nodes : bool, default=False
        Also return the number of tree nodes visited per sample.

    Returns
    -------
    S : ndarray of shape (n_samples, n_tx)
        The maximum-likelihood symbols (values of ``points``).
    nodes : ndarray of shape (n_samples,) of int
        Only with ``return_nodes=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mbdl.solvers import sphere_decoder
    >>> H = np.array([[1.0, 0.9], [0.0, 0.5]])
    >>> sphere_decoder(np.array([[1.9, 0.5]]), H, [-1.0, 1.0])
    array([[1., 1.]])
    """
    X = np.asarray(X, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    points_list = [float(p) for p in np.asarray(points, dtype=np.float64)]
    n, K = X.shape[0], H.shape[-1]
    shared = H.ndim == 2
    if shared:
        H = H[None]
    S = np.empty((n, K))
    nodes = np.empty(n, dtype=np.int64)
    perm = np.argsort(np.linalg.norm(H, axis=1), axis=1)  # weakest first
    Hp = np.take_along_axis(H, perm[:, None, :], axis=2)
    Q, R = np.linalg.qr(Hp)  # batched reduced QR
    for i in range(n):
        c = 0 if shared else i
        y = (Q[c].T @ X[i]).tolist()
        best, count = _schnorr_euchner(R[c].tolist(), y, points_list)
        S[i, perm[c]] = [points_list[j] for j in best]
        nodes[i] = count
    return (S, nodes) if return_nodes else S
