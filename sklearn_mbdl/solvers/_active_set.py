"""Exact active-set (working-set) solver of the lasso, batched over rows."""

import math
import warnings

import torch

from ._proximal_gradient import _check_problem

__all__ = ["active_set"]


# ---------------------------------------------------------------------------
# Active-set lasso solver
# ---------------------------------------------------------------------------
#
# Every row of the batch keeps a working set of atoms with fixed signs in
# padded slots: the first ``size`` slots of ``idx`` hold its atoms, the others
# the dummy index ``n_components`` (an all-zero extra row and column of the
# Gram matrix and of the correlations ``X D^T``). ``factor`` is the lower
# Cholesky factor ``L`` of ``G[A, A]``, with an identity block on the padded
# slots, so that one batched triangular solve serves rows of every working-set
# size; ``half`` is ``L^{-1} (x D_A^T - alpha s_A)``, which only changes on
# the new slots when atoms are added.

_ATOMS_PER_ROUND = 2   # more adds false atoms, which cost more than rounds


def _support_factor(gram_ext, idx, valid, ridge, retry=True):
    """Cholesky factors of ``G[A, A]`` (identity on the padded slots).

    A relative ridge ``ridge`` is added to the diagonal; where the
    factorisation still fails and ``retry``, a ridge of the square root of
    it is. ``info`` is non-zero for the rows that failed.
    """
    both = valid[:, :, None] & valid[:, None, :]
    sub = torch.where(both, gram_ext[idx[:, :, None], idx[:, None, :]], 0.0)
    diag = torch.diagonal(sub, dim1=1, dim2=2)
    diag.copy_(torch.where(valid, diag * (1.0 + ridge), 1.0))
    factor, info = torch.linalg.cholesky_ex(sub)
    if retry and bool((info != 0).any()):
        bad = (info != 0).nonzero()[:, 0]
        sub = sub[bad]
        diag = torch.diagonal(sub, dim1=1, dim2=2)
        diag.copy_(torch.where(valid[bad], diag * (1.0 + math.sqrt(ridge)), 1.0))
        factor[bad], info[bad] = torch.linalg.cholesky_ex(sub)
    return factor, info


def _half_solve(factor, corr_ext, rows, idx, sgn, alpha):
    """``L^{-1} (x D_A^T - alpha s_A)`` for the rows ``rows`` (zero padded)."""
    stride = corr_ext.shape[1]
    rhs = torch.take(corr_ext, rows[:, None] * stride + idx) - alpha * sgn
    return torch.linalg.solve_triangular(factor, rhs[:, :, None],
                                         upper=False)[:, :, 0]


def _compact(gram_ext, idx, sgn, zval, keep, ridge):
    """Move the kept slots first, pad the others, refactorise ``G[A, A]``."""
    dummy = gram_ext.shape[0] - 1
    order = torch.argsort((~keep).to(torch.uint8), dim=1, stable=True)
    keep = keep.gather(1, order)
    idx = torch.where(keep, idx.gather(1, order), dummy)
    sgn = torch.where(keep, sgn.gather(1, order), 0.0)
    zval = torch.where(keep, zval.gather(1, order), 0.0)
    factor, _ = _support_factor(gram_ext, idx, keep, ridge)
    return idx, sgn, zval, factor, keep.sum(dim=1)


def _resize(width, dummy, idx, sgn, zval, half, factor):
    """Change the number of slots (only padded slots are cut)."""
    b, old = idx.shape
    if width <= old:
        return (idx[:, :width].contiguous(), sgn[:, :width].contiguous(),
                zval[:, :width].contiguous(), half[:, :width].contiguous(),
                factor[:, :width, :width].contiguous())
    pad = width - old
    idx = torch.cat([idx, idx.new_full((b, pad), dummy)], dim=1)
    sgn, zval, half = (torch.cat([t, t.new_zeros((b, pad))], dim=1)
                       for t in (sgn, zval, half))
    new = factor.new_zeros((b, width, width))
    new[:, :old, :old] = factor
    new[:, old:, old:] = torch.eye(pad, dtype=factor.dtype, device=factor.device)
    return idx, sgn, zval, half, new


def _sparse_codes(idx, zval, size, n_components):
    """The codes of padded working sets as a sparse CSR matrix.

    Column indices are sorted and distinct within each row, as the CSR
    format requires; the dummy slots are left out.
    """
    idx, order = torch.sort(idx, dim=1)   # the dummy index sorts last
    zval = zval.gather(1, order)
    real = idx < n_components
    crow = size.new_zeros(idx.shape[0] + 1)
    torch.cumsum(size, dim=0, out=crow[1:])
    with warnings.catch_warnings():   # "sparse CSR support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            crow, idx[real], zval[real], size=(idx.shape[0], n_components),
            check_invariants=False)


def _write_codes(Z, rows, idx, zval, clear):
    """Write padded working-set values into the rows ``rows`` of ``Z``."""
    if clear:
        Z[rows] = 0.0
    real = idx < Z.shape[1]
    Z[rows[:, None].expand_as(idx)[real], idx[real]] = zval[real]


def _small_cholesky(matrix, valid, scale, ridge, dependent_tol):
    """Cholesky factors of a batch of small ``(q, q)`` Schur complements.

    Rows and columns that are not ``valid`` get an identity block. A pivot
    below ``dependent_tol * scale`` (``scale``: the squared norms of the new
    atoms) marks an atom in the span of the others (``dependent``); pivots
    are floored at ``ridge * scale``, which keeps such atoms solvable.
    """
    n = matrix.shape[1]
    out = torch.zeros_like(matrix)
    dependent = torch.zeros_like(valid)
    for j in range(n):
        diag = matrix[:, j, j] - (out[:, j, :j] ** 2).sum(dim=1)
        dependent[:, j] = valid[:, j] & (diag <= dependent_tol * scale[:, j])
        diag = torch.sqrt(torch.clamp(diag, min=ridge * scale[:, j]))
        diag = torch.where(valid[:, j], diag, 1.0)
        out[:, j, j] = diag
        for i in range(j + 1, n):
            val = (matrix[:, i, j]
                   - (out[:, i, :j] * out[:, j, :j]).sum(dim=1)) / diag
            out[:, i, j] = torch.where(valid[:, i] & valid[:, j], val, 0.0)
    return out, dependent


@torch.no_grad()
def active_set(X, dictionary, alpha, *, max_iter=1000, tol=1e-6,
               positive=False, init=None, callback=None):
    """Exact lasso by a batched active-set (working-set) method.

    Solves, for every row ``x`` of ``X``,
    ``min_z 0.5 ||x - z D||^2 + alpha ||z||_1`` (and ``z >= 0`` if
    ``positive``) exactly, in the manner of the feature-sign search of
    Lee et al. (2007). Each row keeps a working set of atoms with fixed
    signs. A round adds the (at most two) atoms that violate the optimality
    conditions most, with the sign of their correlation with the residual,
    and solves the sign-fixed least-squares problem on the working set,
    ``z_A = G_AA^{-1} (x D_A^T - alpha s_A)``, with a Cholesky factor of
    ``G_AA = D_A D_A^T`` that is updated, not recomputed, as atoms come in.
    The codes move towards that solution only as far as the first sign
    change, so the objective never increases; the atom whose coefficient
    reaches zero leaves and the row solves again. A row stops, and leaves the
    batch, as soon as its optimality conditions hold, so its result does not
    depend on the other rows.

    A round costs one product of the residuals with the dictionary plus
    small triangular solves, and a row needs about one round per two
    non-zero coefficients: on sparse codes this is several times faster
    than coordinate descent or (F)ISTA, and the result is exact up to
    rounding.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        Signals, one per row.
    dictionary : torch.Tensor of shape (n_components, n_features)
        Atoms as rows. Converted to the dtype and device of ``X``.
    alpha : float
        Weight of the l1 penalty.
    max_iter : int, default=1000
        Maximum number of rounds (a round adds at most two atoms per row).
    tol : float, default=1e-6
        A row stops when its codes solve the sign-fixed problem on their
        working set and every other atom has ``|r D_j^T| <= alpha * (1 + tol)``
        (``r D_j^T <= alpha * (1 + tol)`` if ``positive``), where ``r`` is
        the residual ``x - z D``: these are the optimality conditions of the
        lasso. With ``alpha=0`` the bound is ``tol * max_j |x D_j^T|``.
    positive : bool, default=False
        Constrain the codes to be non-negative.
    init : torch.Tensor of shape (n_samples, n_components), optional
        Starting codes (zeros by default). Their non-zero entries, with their
        signs and values, are the starting working sets (negative entries are
        set to zero if ``positive``, and only the
        ``min(n_components, n_features)`` largest in magnitude are kept); a
        row whose starting working set is numerically singular starts from
        zero instead. The solution does not depend on ``init``; a good one
        (the codes of a nearby problem) saves rounds.
    callback : callable, optional
        ``callback(iteration, Z)`` after every round. ``Z`` holds the current
        codes of every row.

    Returns
    -------
    Z : torch.Tensor of shape (n_samples, n_components)
        The codes.
    n_iter : int
        Number of rounds run (the maximum over rows).

    See Also
    --------
    fista : Proximal gradient with momentum, for dense or large codes.

    Notes
    -----
    ``G_AA`` must stay invertible, so an atom in the span of the working set
    (a repeated atom, or any atom once the working set holds
    ``n_features`` independent atoms) is never added. If it is the most
    violating one, the row swaps it in instead, along the direction that
    keeps the residual fixed and lowers the l1 norm, until a coefficient
    reaches zero and its atom leaves (a simplex pivot). With ``alpha=0`` a
    full working set has a zero residual and the row stops. A relative ridge
    of a few machine epsilons on the diagonal of ``G_AA`` guards the
    factorisations. When the solution is not unique (repeated atoms), the
    solver returns one of the solutions.

    The rows are processed together as padded batches: batched triangular
    solves on ``(n_rows, k, k)`` stacks, one sparse-times-dense product and
    one dense product per round. The same code runs on CPU and CUDA. The
    solver runs under ``torch.no_grad()``: its output carries no gradient.

    References
    ----------
    H. Lee, A. Battle, R. Raina, A. Y. Ng, "Efficient sparse coding
    algorithms", NIPS 2006.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.solvers import active_set
    >>> D = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]],
    ...                  dtype=torch.float64)
    >>> X = torch.tensor([[2.0, -0.5], [0.3, 0.4]], dtype=torch.float64)
    >>> Z, n_iter = active_set(X, D, 0.25)
    >>> Z
    tensor([[ 1.7500, -0.2500,  0.0000],
            [ 0.0000,  0.0000,  0.2500]], dtype=torch.float64)
    """
    _check_problem(X, dictionary, alpha)
    alpha = float(alpha)
    if not X.is_floating_point():
        X = X.to(torch.get_default_dtype())
    dictionary = dictionary.to(dtype=X.dtype, device=X.device)
    n_samples, n_features = X.shape
    n_components = dictionary.shape[0]
    dtype, device = X.dtype, X.device
    eps = torch.finfo(dtype).eps
    ridge = 4.0 * eps
    cap = min(n_components, n_features)  # largest non-singular working set
    dummy = n_components
    stride = n_components + 1
    q = _ATOMS_PER_ROUND

    Z = X.new_zeros((n_samples, n_components))
    if n_samples == 0 or n_components == 0:
        return Z, 0
    gram = dictionary @ dictionary.T
    gram_ext = gram.new_zeros((stride, stride))
    gram_ext[:n_components, :n_components] = gram
    corr_x = X @ dictionary.T
    corr_ext = torch.cat([corr_x, corr_x.new_zeros((n_samples, 1))], dim=1)
    # correlations of the residuals: through the Gram matrix when it is the
    # smaller operand, else through the residuals
    use_gram = n_components <= 2 * n_features

    # stopping threshold per row, floored at the rounding level of the
    # correlations so that tiny alphas terminate
    scale = (torch.linalg.vector_norm(X, dim=1)
             * torch.linalg.vector_norm(dictionary, dim=1).max())
    if alpha > 0:
        thr = alpha * (1.0 + tol) + 16.0 * eps * scale
    else:
        thr = tol * corr_x.abs().amax(dim=1) + 16.0 * eps * scale

    # ---- the state of the rows still in the batch
    rows = torch.arange(n_samples, device=device)
    x_b, thr_b = X, thr
    if init is None:
        width = min(4 * q, cap + q)
        idx = torch.full((n_samples, width), dummy, dtype=torch.long,
                         device=device)
        sgn, zval, half = (X.new_zeros((n_samples, width)) for _ in range(3))
        factor = torch.eye(width, dtype=dtype, device=device).repeat(
            n_samples, 1, 1)
        size = torch.zeros(n_samples, dtype=torch.long, device=device)
    else:
        idx, sgn, zval, factor, size = _active_set_init(
            init, gram_ext, cap, positive, ridge, q)
        half = _half_solve(factor, corr_ext, rows, idx, sgn, alpha)
        width = idx.shape[1]
    exact = size == 0    # the codes solve the sign-fixed problem
    stalled = torch.zeros_like(exact)
    score_buf = X.new_empty((n_samples, stride))
    score_buf[:, n_components] = -math.inf
    corr_buf = X.new_empty((n_samples, n_components))

    n_iter = 0
    while True:
        # ---- correlations of the residuals with every atom
        b = rows.numel()
        corr = corr_buf[:b]
        if n_iter == 0 and init is None:   # zero codes
            corr.copy_(corr_x)
        elif use_gram:
            codes = _sparse_codes(idx, zval, size, n_components)
            torch.addmm(corr_x[rows], codes, gram, alpha=-1.0, out=corr)
        else:
            codes = _sparse_codes(idx, zval, size, n_components)
            residual = torch.addmm(x_b, codes, dictionary, alpha=-1.0)
            torch.mm(residual, dictionary.T, out=corr)
        score = score_buf[:b]
        if positive:
            score[:, :n_components] = corr
        else:
            torch.abs(corr, out=score[:, :n_components])
        score.scatter_(1, idx, -math.inf)  # atoms already in, and the dummy
        top, cand = torch.topk(score, min(q, n_components), dim=1)
        if positive:
            cand_sgn = torch.ones_like(top)
        else:
            # (a candidate at -inf may be the dummy: its sign is unused)
            cand_sgn = torch.sign(corr.gather(1, cand.clamp(max=dummy - 1)))

        # ---- rows at an optimum leave the batch
        violated = top[:, 0] > thr_b
        full = size >= cap
        done = stalled | (exact & (~violated | (full & (alpha == 0))))
        if n_iter >= max_iter:
            done = torch.ones_like(done)
        if done.any():
            _write_codes(Z, rows[done], idx[done], zval[done],
                         clear=callback is not None)
            keep = ~done
            if not keep.any():
                break
            rows, x_b, thr_b = rows[keep], x_b[keep], thr_b[keep]
            idx, sgn, zval, half = idx[keep], sgn[keep], zval[keep], half[keep]
            factor, size, exact = factor[keep], size[keep], exact[keep]
            top, cand, cand_sgn = top[keep], cand[keep], cand_sgn[keep]
            violated, full = violated[keep], full[keep]
            b = rows.numel()
            need = int(size.max()) + q
            if 2 * need <= width:
                width = need
                idx, sgn, zval, half, factor = _resize(
                    width, dummy, idx, sgn, zval, half, factor)
        n_iter += 1
        ar = torch.arange(b, device=device)
        was_exact = exact
        stalled = torch.zeros_like(exact)

        # ---- the atoms to add: the most violating ones, with their sign
        n_new = top.shape[1]
        need = int(size.max()) + n_new
        if need > width:
            width = min(max(need, width + width // 2), cap + q)
            idx, sgn, zval, half, factor = _resize(
                width, dummy, idx, sgn, zval, half, factor)
        slots = size[:, None] + torch.arange(n_new, device=device)
        adding = (top > thr_b[:, None]) & (slots < cap)
        adding = torch.cumprod(adding, dim=1).bool()
        new_atoms = torch.where(adding, cand, dummy)

        # ---- bordered Cholesky update of G_AA. An atom in the span of the
        # working set is not added; if it is the most violating one, or if
        # the working set is full, the row swaps it in (a pivot) instead
        border = torch.take(gram_ext, new_atoms[:, :, None] * stride
                            + idx[:, None, :])                     # (b, q, K)
        cols = torch.linalg.solve_triangular(factor, border.mT, upper=False)
        gram_new = gram_ext[new_atoms[:, :, None], new_atoms[:, None, :]]
        schur = gram_new - (cols[:, :, :, None] * cols[:, :, None, :]).sum(dim=1)
        scale = torch.diagonal(gram_new, dim1=1, dim2=2)
        block, dependent = _small_cholesky(schur, adding, scale, ridge,
                                           100.0 * eps)
        pivot = exact & violated & (full | (adding[:, 0] & dependent[:, 0]))
        kept = torch.cumprod(adding & ~dependent & ~pivot[:, None], dim=1).bool()
        if not torch.equal(kept, adding):
            adding = kept
            new_atoms = torch.where(adding, cand, dummy)
            cols = cols * adding[:, None, :]
            block, _ = _small_cholesky(schur, adding, scale, ridge, 0.0)
        new_sgn = torch.where(adding, cand_sgn, 0.0)
        # ... and of L^{-1} rhs, by forward substitution on the new slots
        rhs = torch.take(corr_ext, rows[:, None] * stride + new_atoms)
        rhs = rhs - alpha * new_sgn - (cols * half[:, :, None]).sum(dim=1)
        for i in range(n_new):
            factor[ar, slots[:, i]] = cols[:, :, i]
            rhs[:, i] -= (block[:, i, :i] * rhs[:, :i]).sum(dim=1)
            rhs[:, i] /= block[:, i, i]
        factor[ar[:, None, None], slots[:, :, None], slots[:, None, :]] = block
        idx[ar[:, None], slots] = new_atoms
        sgn[ar[:, None], slots] = new_sgn
        half[ar[:, None], slots] = rhs
        size = size + adding.sum(dim=1)

        if pivot.any():
            sub = pivot.nonzero()[:, 0]
            new = _pivot(gram_ext, idx[sub], sgn[sub], zval[sub], factor[sub],
                         cand[sub, 0], cand_sgn[sub, 0], ridge)
            idx[sub], sgn[sub], zval[sub], factor[sub], size[sub], moved = new
            half[sub] = _half_solve(factor[sub], corr_ext, rows[sub], idx[sub],
                                    sgn[sub], alpha)
            stalled[sub] = ~moved
            exact[sub] = ~moved

        # ---- the sign-fixed solution on the working set, and a step towards
        # it up to the first sign change; atoms that reach zero leave and the
        # row solves again, until a step is not cut short
        work = None   # the rows that solve again (None: the whole batch)
        while work is None or work.numel():
            if work is None:
                w_sgn, w_z, w_half, w_factor = sgn, zval, half, factor
            else:
                w_sgn, w_z, w_half, w_factor = (sgn[work], zval[work],
                                                half[work], factor[work])
            target = torch.linalg.solve_triangular(
                w_factor.mT, w_half[:, :, None], upper=True)[:, :, 0]
            wrong = w_sgn * target < 0
            cross = torch.where(wrong, w_z / (w_z - target), math.inf)
            step = torch.clamp(cross.amin(dim=1), max=1.0)
            reached = step >= 1.0
            new_z = torch.where(reached[:, None], target,
                                w_z + step[:, None] * (target - w_z))
            fresh = (w_sgn != 0) & (w_z == 0)   # atoms added this round
            leave = (w_sgn != 0) & ((cross <= step[:, None])
                                    | ((w_sgn * new_z <= 0) & ~fresh))
            new_z = torch.where(leave, 0.0, new_z)
            # a zero step that removes every new atom leaves the codes as
            # they were: an exact row then cannot move at this precision
            stuck = ((step <= 0) & ~(fresh & ~leave).any(dim=1)
                     & was_exact[ar if work is None else work])
            drop = leave.any(dim=1)
            if work is None:
                work = ar
                zval, exact = new_z, reached
                stalled = stalled | stuck
            else:
                zval[work] = new_z
                exact[work] = reached
                stalled[work] = stalled[work] | stuck
            if drop.any():
                d = drop.nonzero()[:, 0]
                rows_d = work[d]
                new = _compact(gram_ext, idx[rows_d], w_sgn[d], new_z[d],
                               (w_sgn[d] != 0) & ~leave[d], ridge)
                idx[rows_d], sgn[rows_d], zval[rows_d], factor[rows_d] = new[:4]
                size[rows_d] = new[4]
                half[rows_d] = _half_solve(new[3], corr_ext, rows[rows_d],
                                           new[0], new[1], alpha)
            work = work[~reached & ~stuck & drop]

        if callback is not None:
            _write_codes(Z, rows, idx, zval, clear=True)
            callback(n_iter, Z)
    return Z, n_iter


def _pivot(gram_ext, idx, sgn, zval, factor, atom, atom_sgn, ridge):
    """Swap ``atom`` into full working sets, keeping the residual fixed.

    With ``n_features`` independent atoms, ``D_j = w D_A`` with
    ``w = G_AA^{-1} G_Aj``: moving ``z_j`` by ``t s_j`` and ``z_A`` by
    ``-t s_j w`` leaves the residual unchanged and changes the l1 norm by
    ``t (1 - |c_j| / alpha)``, a decrease for a violating atom. The move
    stops when the first coefficient of ``z_A`` reaches zero; that atom
    leaves and ``atom`` takes its slot.
    """
    border = gram_ext[atom[:, None], idx]
    half = torch.linalg.solve_triangular(factor, border[:, :, None], upper=False)
    w = torch.linalg.solve_triangular(factor.mT, half, upper=True)[:, :, 0]
    direction = -atom_sgn[:, None] * w
    towards = (sgn != 0) & (zval * direction < 0)
    hit = torch.where(towards, -zval / direction, math.inf)
    step, slot = hit.min(dim=1)
    moved = torch.isfinite(step)
    step = torch.where(moved, step, 0.0)
    zval = zval + step[:, None] * direction
    zval = torch.where(towards & (hit <= step[:, None]), 0.0, zval)
    ar = torch.arange(idx.shape[0], device=idx.device)
    new_idx, new_sgn, new_z = idx.clone(), sgn.clone(), zval.clone()
    new_idx[ar, slot] = atom
    new_sgn[ar, slot] = atom_sgn
    new_z[ar, slot] = step * atom_sgn
    idx = torch.where(moved[:, None], new_idx, idx)
    sgn = torch.where(moved[:, None], new_sgn, sgn)
    zval = torch.where(moved[:, None], new_z, zval)
    keep = (sgn != 0) & (sgn * zval > 0)
    idx, sgn, zval, factor, size = _compact(gram_ext, idx, sgn, zval, keep,
                                            ridge)
    return idx, sgn, zval, factor, size, moved


def _active_set_init(init, gram_ext, cap, positive, ridge, q):
    """Working sets, signs, values and factors from starting codes."""
    n_components = gram_ext.shape[0] - 1
    dummy = n_components
    init = torch.as_tensor(init).to(dtype=gram_ext.dtype,
                                    device=gram_ext.device)
    if init.ndim != 2 or init.shape[1] != n_components:
        raise ValueError(
            f"init must have shape (n_samples, {n_components}), got "
            f"{tuple(init.shape)}."
        )
    if positive:
        init = torch.clamp(init, min=0.0)
    init = torch.where(torch.isfinite(init), init, 0.0)
    n_samples = init.shape[0]
    count = int((init != 0).sum(dim=1).clamp(max=cap).max())
    width = count + q
    mag, pos = torch.topk(init.abs(), count, dim=1)
    valid = mag > 0
    idx = torch.where(valid, pos, dummy)
    zval = torch.where(valid, init.gather(1, pos), 0.0)
    pad = width - count
    idx = torch.cat([idx, idx.new_full((n_samples, pad), dummy)], dim=1)
    zval = torch.cat([zval, zval.new_zeros((n_samples, pad))], dim=1)
    valid = torch.cat([valid, valid.new_zeros((n_samples, pad))], dim=1)
    # the valid slots first (topk sorts by magnitude, so they already are)
    factor, info = _support_factor(gram_ext, idx, valid, ridge, retry=False)
    bad = info != 0
    if bad.any():  # singular starting working set: start that row from zero
        valid[bad] = False
        idx[bad] = dummy
        zval[bad] = 0.0
        factor[bad] = torch.eye(width, dtype=factor.dtype, device=factor.device)
    return idx, torch.sign(zval), zval, factor, valid.sum(dim=1)
