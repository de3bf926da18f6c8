"""Centered kernel alignment (CKA), linear and RBF, with three HSIC estimators.

``CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with, for n stimuli,

- ``gretton`` (biased; Gretton et al. 2005, Kornblith et al. 2019): ``<HKH, HLH>_F``;
- ``lange`` (Lange et al. 2023): the same with the diagonals of the centred kernels set to 0;
- ``song`` (unbiased; Song et al. 2012, = Kornblith's ``debiased=True``, Murphy et al. 2024):
  ``[tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3))`` where ``K~`` is
  ``K`` with a zero diagonal.

Linear kernels never form an n x n matrix when features are fewer than stimuli: with centred
features ``Xc`` (the Gram identity ``<Kc, Lc> = ||Xc' Yc||_F^2``), every estimator needs only
``||Xc' Yc||_F^2``, the squared row norms of ``Xc`` and their sum. The cross products of one
matrix with every matrix of the other side are one matrix product on the stacked features.
RBF kernels use ``exp(-d^2 / (2 sigma^2 m))`` with ``m`` the median squared distance: over all
``n^2`` entries, the diagonal zeros included (Kornblith et al.'s reference code, ckatorch), or
over the ``n(n-1)/2`` distinct pairs (``median="pairs"``, repsim's convention).
"""

from __future__ import annotations

import numpy as np

from .._utils import check_option
from ._prepare import Rep, memory_chunks

HSIC_ESTIMATORS = ("gretton", "song", "lange")


def _row_sq(rep: Rep):
    return rep.cached("row_sq", lambda: (rep.centred * rep.centred).sum(1))


def _linear_route(A: list[Rep], B: list[Rep]) -> str:
    n = A[0].n
    pa = np.mean([r.p for r in A])
    pb = np.mean([r.p for r in B])
    return "gram" if n * n < pa * pb else "feature"


def _linear_dots(A: list[Rep], B: list[Rep], route: str, same: bool) -> np.ndarray:
    """``||Xc_a' Yc_b||_F^2`` for every pair."""
    import torch

    out = np.empty((len(A), len(B)))
    if route == "gram":
        def gram(r: Rep):
            return r.cached("gram_c", lambda: r.centred @ r.centred.T)

        for grp in memory_chunks(B, lambda r: 8 * r.n * r.n, B[0].x.device):
            stack = torch.stack([gram(B[j]).reshape(-1) for j in grp])
            for i, a in enumerate(A):
                out[i, grp] = (stack @ gram(a).reshape(-1)).cpu().numpy()
        return out
    for grp in memory_chunks(B, lambda r: r.x.element_size() * r.n * r.p * 2, B[0].x.device):
        stack = torch.cat([B[j].centred for j in grp], dim=1)
        bounds = np.cumsum([0] + [B[j].p for j in grp])
        seg = torch.as_tensor(np.repeat(np.arange(len(grp)), np.diff(bounds)), device=stack.device)
        for i, a in enumerate(A):
            if same and all(j < i for j in grp):
                continue  # filled from the symmetric entry below
            col = (a.centred.T @ stack).pow(2).sum(0)
            out[i, grp] = torch.zeros(len(grp), dtype=col.dtype, device=col.device).index_add_(0, seg, col).cpu().numpy()
    if same:
        iu = np.triu_indices(len(A), 1)
        out[iu[1], iu[0]] = out[iu]
    return out


def _self_dot(rep: Rep) -> float:
    def run():
        xc = rep.centred
        if rep.n * rep.n < rep.p * rep.p:
            g = xc @ xc.T
        else:
            g = xc.T @ xc
        return float((g * g).sum())

    return rep.cached("self_dot", run)


def _linear_hsic(dot, dx, dy, n: int, hsic: str, w=None):
    """HSIC from ``||Xc'Yc||^2`` (dot) and the squared row norms ``dx``, ``dy`` of the centred data.

    ``w[i]`` is the number of copies of row i (a bootstrap draw): the pairs of copies are left
    out like the diagonal, since ``K~`` is zero wherever two rows are the same stimulus
    (``w = 1``: the usual estimators).
    """
    if hsic == "gretton":
        return float(dot)
    if w is None:
        w = _ones_like(dx)
    same = float((w * dx) @ dy)  # sum over pairs of copies (and the diagonal) of K_ij L_ij
    if hsic == "lange":
        return float(dot) - same
    tx, ty = float(w @ dx), float(w @ dy)  # -1'K~1 (centred features: 1'K1 = 0)
    cross = float((w * w * dx) @ dy)  # (K~1)'(L~1)
    return (float(dot) - same + tx * ty / ((n - 1) * (n - 2)) - 2 * cross / (n - 2)) / (n * (n - 3))


def _ones_like(x):
    import torch

    return torch.ones_like(x)


def _copies(groups, device, dtype):
    """Number of copies of every row (a bootstrap draw), or None."""
    if groups is None:
        return None
    import torch

    _, inv, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    return torch.as_tensor(counts[inv], device=device, dtype=dtype)


def _rbf_kernel(rep: Rep, sigma: float, median: str):
    import torch

    x = rep.x
    g = x @ x.T
    sq = torch.diagonal(g)
    d2 = (sq[:, None] + sq[None, :] - 2 * g).clamp_min_(0)
    d2.fill_diagonal_(0)
    if median == "all":
        vals = d2.reshape(-1)
    else:
        iu = torch.triu_indices(rep.n, rep.n, 1, device=x.device)
        vals = d2[iu[0], iu[1]]
    m = vals.numel()
    lo = torch.kthvalue(vals.cpu() if vals.device.type == "mps" else vals, (m + 1) // 2).values
    hi = torch.kthvalue(vals.cpu() if vals.device.type == "mps" else vals, m // 2 + 1).values
    med = float(lo + hi) / 2 if m % 2 == 0 else float(lo)
    if med <= 0:
        raise ValueError(f"{rep.name}: the median squared distance between stimuli is 0 (more than half of the "
                         "stimulus pairs are identical), so the RBF bandwidth is undefined. Use the linear kernel "
                         "or remove duplicated stimuli.")
    return torch.exp(-d2 / (2 * sigma**2 * med))


def _kernel_stats(rep: Rep, hsic: str, sigma: float, median: str):
    """(vector, rowsums, total) of the transformed RBF kernel used by ``hsic``."""

    def run():
        K = _rbf_kernel(rep, sigma, median)
        if hsic == "song":
            K = K.clone()
            K.fill_diagonal_(0)
            r = K.sum(1)
            return K.reshape(-1), r, float(r.sum())
        Kc = K - K.mean(0, keepdim=True)
        Kc = Kc - Kc.mean(1, keepdim=True)
        if hsic == "lange":
            Kc.fill_diagonal_(0)
        return Kc.reshape(-1), None, 0.0

    key = ("rbf", hsic, float(sigma), median)
    if rep.n * rep.n * rep.x.element_size() * 3 < 2**28:  # small kernels: keep them for the next pair
        return rep.cached(key, run)
    return run()


def _rbf_hsic_pair(va, vb, n: int, hsic: str) -> float:
    dot = float(va[0] @ vb[0])
    if hsic != "song":
        return dot
    return (dot + va[2] * vb[2] / ((n - 1) * (n - 2)) - 2 * float(va[1] @ vb[1]) / (n - 2)) / (n * (n - 3))


def check_params(kernel: str, hsic: str, sigma: float, median: str, n: int) -> None:
    check_option("kernel", kernel, ["linear", "rbf"])
    check_option("hsic", hsic, HSIC_ESTIMATORS)
    check_option("median", median, ["all", "pairs"])
    if kernel == "rbf" and not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma (the RBF bandwidth as a fraction of the median distance) must be > 0; got {sigma!r}.")
    need = 4 if hsic == "song" else 2
    if n < need:
        raise ValueError(f"CKA with hsic={hsic!r} needs at least {need} stimuli; got {n}.")


def grid(A: list[Rep], B: list[Rep], *, same: bool, kernel: str = "linear", hsic: str = "gretton",
         sigma: float = 1.0, median: str = "all", angular: bool = False, groups=None) -> np.ndarray:
    """CKA (or its angle) of every matrix of ``A`` with every matrix of ``B``: (n_a, n_b).

    ``groups`` (stimulus of every row, for a bootstrap draw): copies of a stimulus are not
    pairs of distinct stimuli; the linear song and lange estimators leave them out like the
    diagonal. (For RBF kernels this does not centre the bootstrap distribution on the estimate
    (the kernel's mean enters the estimator's corrections), so copies stay weighted samples.)
    """
    n = A[0].n
    check_params(kernel, hsic, sigma, median, n)
    if kernel == "linear":
        route = _linear_route(A, B)
        dots = _linear_dots(A, B, route, same)
        da = [_row_sq(r) for r in A]
        db = da if same else [_row_sq(r) for r in B]
        w = _copies(groups, A[0].x.device, A[0].x.dtype)
        self_a = np.array([_linear_hsic(_self_dot(r), d, d, n, hsic, w) for r, d in zip(A, da)], dtype=float)
        self_b = self_a if same else np.array([_linear_hsic(_self_dot(r), d, d, n, hsic, w)
                                               for r, d in zip(B, db)], dtype=float)
        num = np.empty_like(dots)
        for i in range(len(A)):
            for j in range(len(B)):
                num[i, j] = _linear_hsic(dots[i, j], da[i], db[j], n, hsic, w)
    else:
        num = np.empty((len(A), len(B)))
        self_a = np.full(len(A), np.nan)
        self_b = np.empty(len(B))
        for grp in memory_chunks(B, lambda r: 3 * r.n * r.n * r.x.element_size(), B[0].x.device):
            vbs = {j: _kernel_stats(B[j], hsic, sigma, median) for j in grp}
            for j in grp:
                self_b[j] = _rbf_hsic_pair(vbs[j], vbs[j], n, hsic)
            for i, a in enumerate(A):
                va = vbs[i] if (same and i in vbs) else _kernel_stats(a, hsic, sigma, median)
                if np.isnan(self_a[i]):
                    self_a[i] = _rbf_hsic_pair(va, va, n, hsic)
                for j in grp:
                    num[i, j] = _rbf_hsic_pair(va, vbs[j], n, hsic)
    for name, vals, reps in (("X", self_a, A), ("Y", self_b, B)):
        bad = np.flatnonzero(~(vals > 0))
        if bad.size:
            raise ValueError(
                f"The {hsic!r} HSIC of {reps[bad[0]].name} with itself is {vals[bad[0]]:.3g} <= 0, so CKA is undefined "
                f"(n_stimuli={n}). The unbiased estimator can be <= 0 with few stimuli: use more stimuli or "
                "hsic='gretton'." if hsic == "song" else
                f"The HSIC of {reps[bad[0]].name} ({name} side) with itself is {vals[bad[0]]:.3g}: its kernel is "
                "constant after centring; CKA is undefined.")
    cka = num / np.sqrt(self_a[:, None] * self_b[None, :])
    if angular:
        return np.arccos(np.clip(cka, -1.0, 1.0))
    return cka
