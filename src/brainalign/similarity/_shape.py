"""Shape metrics (Williams et al. 2021): Procrustes with partial whitening, the Bures family,
and the permutation / soft-matching distance (Khosla & Williams 2023).

Procrustes, partial whitening ``alpha`` (netrep's ``LinearMetric``): each centred matrix
``Xc = U diag(s) V'`` is mapped to ``phi(X) = U diag(c (alpha s + 1 - alpha))`` (``alpha = 1``:
unchanged up to a rotation; ``alpha = 0``: whitened, CCA-like), with ``c`` chosen so that
``||phi(X)||_F = ||Xc||_F`` (netrep's ``preserve_variance``). The best rotation between two
such matrices gives the nuclear norm ``F = ||phi(X)' phi(Y)||_*`` and

- angular distance ``arccos(F / (||phi(X)|| ||phi(Y)||))``,
- Euclidean distance ``sqrt(||phi(X)||^2 + ||phi(Y)||^2 - 2 F)``;

with ``alpha = 1`` these are the arccos of the normalized Bures similarity (NBS, Tang et al.
2020) and the Bures distance of the centred linear kernels. ``phi`` is computed once per
matrix; each pair needs one cross product and one singular-value computation, batched over
the other side's matrices.

Differences from netrep (written down in docs/similarity.md): netrep zero-pads the narrower
matrix and clips the covariance eigenvalues at 1e-7 before rescaling, so for ``alpha < 1``
with rank-deficient data or unequal widths its Euclidean distances carry an extra factor from
the padded / null directions; here ``phi`` is defined on the non-zero spectrum. Angular
distances and full-rank equal-width data agree.
"""

from __future__ import annotations

import math

import numpy as np

from ._prepare import Rep, memory_chunks

#: soft matching: largest replicated assignment problem (else an exact linear program)
LCM_LIMIT = 4096


def check_alpha(alpha: float) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        a = np.nan
    if not (0.0 <= a <= 1.0):
        raise ValueError(f"alpha (the partial whitening of the shape metrics) must be in [0, 1]: 0 whitens fully "
                         f"(CCA-like), 1 keeps the data (Procrustes); got {alpha!r}.")
    return a


def _phi(rep: Rep, alpha: float):
    """The partially whitened, centred representation (n, r) and its squared norm."""
    if alpha == 1.0 and rep.p <= rep.n:
        return rep.centred

    def run():
        U, s = rep.svd()
        w = alpha * s + (1 - alpha)
        c = (s.pow(2).sum() / w.pow(2).sum()).sqrt()
        return U * (c * w)

    return rep.cached(("phi", alpha), run)


def _nuclear_grid(A: list[Rep], B: list[Rep], alpha: float, same: bool) -> np.ndarray:
    """``||phi(A_i)' phi(B_j)||_*`` for every pair, batched over B."""
    import torch

    out = np.zeros((len(A), len(B)))
    phis_a = [_phi(r, alpha) for r in A]
    phis_b = phis_a if same else [_phi(r, alpha) for r in B]
    for grp in memory_chunks(B, lambda r: r.x.element_size() * r.n * min(r.n, r.p) * 2, B[0].x.device):
        stack = torch.cat([phis_b[j] for j in grp], dim=1)
        bounds = np.cumsum([0] + [phis_b[j].shape[1] for j in grp])
        for i, pa in enumerate(phis_a):
            todo = [k for k, j in enumerate(grp) if not (same and j < i)]
            if not todo:
                continue
            M = pa.T @ stack
            blocks = [M[:, bounds[k]:bounds[k + 1]] for k in todo]
            shapes = {tuple(b.shape) for b in blocks}
            if len(shapes) == 1:
                sv = torch.linalg.svdvals(torch.stack(blocks)).sum(-1)
                vals = sv.cpu().numpy()
            else:
                vals = [float(torch.linalg.svdvals(b).sum()) for b in blocks]
            for k, v in zip(todo, vals):
                out[i, grp[k]] = v
    if same:
        iu = np.triu_indices(len(A), 1)
        out[iu[1], iu[0]] = out[iu]
    return out


def procrustes_grid(A: list[Rep], B: list[Rep], *, same: bool, alpha: float = 1.0,
                    distance: str = "angular") -> np.ndarray:
    """Procrustes shape distances (or NBS) of every pair: (n_a, n_b)."""
    alpha = check_alpha(alpha)
    if alpha == 0.0:  # fully whitened: canonical correlations, degenerate like CCA
        from ._cca import check_dims

        for a in A:
            for b in B:
                check_dims(a, a.rank, b, b.rank, None, "procrustes with alpha > 0, or svcca-var99")
    F = _nuclear_grid(A, B, alpha, same)
    na = np.sqrt([r.sq_norm for r in A])
    nb = np.sqrt([r.sq_norm for r in B])
    if distance == "euclidean":
        return np.sqrt(np.maximum(na[:, None] ** 2 + nb[None, :] ** 2 - 2 * F, 0.0))
    cos = F / (na[:, None] * nb[None, :])
    if distance == "nbs":
        return np.clip(cos, 0.0, 1.0)
    return np.arccos(np.clip(cos, -1.0, 1.0))


# ----------------------------------------------------------------------------- permutation
def _transport_value(C: np.ndarray) -> float:
    """``max sum_ij P_ij C_ij`` over plans with row sums 1/p_x and column sums 1/p_y."""
    from scipy.optimize import linear_sum_assignment

    px, py = C.shape
    if px == py:
        r, c = linear_sum_assignment(C, maximize=True)
        return float(C[r, c].sum()) / px
    L = px * py // math.gcd(px, py)
    if L <= LCM_LIMIT:  # integer masses L/p_x and L/p_y: an assignment on a replicated matrix is exact
        big = np.repeat(np.repeat(C, L // px, axis=0), L // py, axis=1)
        r, c = linear_sum_assignment(big, maximize=True)
        return float(big[r, c].sum()) / L
    import scipy.sparse as sp
    from scipy.optimize import linprog

    rows = sp.kron(sp.eye(px), np.ones((1, py)))
    cols = sp.kron(np.ones((1, px)), sp.eye(py))
    A_eq = sp.vstack([rows, cols]).tocsr()
    b_eq = np.concatenate([np.full(px, 1.0 / px), np.full(py, 1.0 / py)])
    res = linprog(-C.reshape(-1), A_eq=A_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    if not res.success:  # pragma: no cover - HiGHS does not fail on a feasible transport problem
        raise RuntimeError(f"The soft-matching transport problem did not solve: {res.message}")
    return float(-res.fun)


def permutation_grid(A: list[Rep], B: list[Rep], *, same: bool, distance: str = "angular") -> np.ndarray:
    """Permutation (equal widths) / soft-matching (unequal widths) distances: (n_a, n_b).

    With ``p_x == p_y`` units, ``min_P ||Xc - Yc P||_F`` over permutation matrices (netrep's
    ``PermutationMetric``). Otherwise the optimal transport plan between the units with masses
    ``1/p_x`` and ``1/p_y`` (Khosla & Williams' soft matching), scaled by ``sqrt(p_x p_y)`` so that
    it is the permutation case when the widths are equal::

        S = sqrt(p_x p_y) max_P sum_ij P_ij <x_i, y_j>,
        angular = arccos(S / (||Xc|| ||Yc||)),
        euclidean^2 = sqrt(p_y / p_x) ||Xc||^2 + sqrt(p_x / p_y) ||Yc||^2 - 2 S.
    """
    out = np.zeros((len(A), len(B)))
    for i, a in enumerate(A):
        for j, b in enumerate(B):
            if same and j < i:
                out[i, j] = out[j, i]
                continue
            C = (a.centred.T @ b.centred).cpu().numpy().astype(np.float64)
            px, py = C.shape
            S = math.sqrt(px * py) * _transport_value(C)
            na2, nb2 = a.sq_norm, b.sq_norm
            if distance == "euclidean":
                out[i, j] = math.sqrt(max(math.sqrt(py / px) * na2 + math.sqrt(px / py) * nb2 - 2 * S, 0.0))
            else:
                out[i, j] = math.acos(min(1.0, max(-1.0, S / math.sqrt(na2 * nb2))))
    return out
