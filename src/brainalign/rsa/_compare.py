"""Batched RDM comparisons, equal to ``rsatoolbox.rdm.compare``.

Every method works on all pairs of RDMs at once: the ranks of each RDM are computed once
(not once per pair as in rsatoolbox), correlations and cosines are one matrix product, and
the Kendall taus use an O(n log n) discordant-pair count per pair.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._utils import check_option
from ._common import (condition_labels, match_conditions, n_cond_from_pairs, rdm_vectors,
                      reorder_vectors)
from ._ranks import centred_rank_rows, dense_ranks, kendall_counts, map_threads, rank_products

__all__ = ["compare", "COMPARE_METHODS"]

COMPARE_METHODS = ("spearman", "corr", "cosine", "tau-a", "rho-a", "corr_cov", "cosine_cov",
                   "kendall", "tau-b")


def compare(rdms_a: Any, rdms_b: Any, *, method: str = "spearman") -> np.ndarray:
    """Compare every RDM of ``rdms_a`` with every RDM of ``rdms_b``.

    Parameters
    ----------
    rdms_a, rdms_b : rsatoolbox.rdm.RDMs or array
        RDMs objects, or arrays of shape (n_pairs,), (n_rdms, n_pairs), (n, n) or
        (n_rdms, n, n). Both must have the same number of conditions.
    method : {"spearman", "corr", "cosine", "tau-a", "rho-a", "corr_cov", "cosine_cov", \
"kendall", "tau-b"}
        ``spearman``: Pearson correlation of average ranks; ``corr``: Pearson correlation;
        ``cosine``: cosine similarity; ``tau-a``: Kendall's tau-a (ties count 0, no tie
        correction); ``kendall``/``tau-b``: Kendall's tau-b (scipy's ``kendalltau``);
        ``rho-a``: Spearman's rho without tie correction (``12 / (n^3 - n)`` scaling);
        ``cosine_cov``: cosine after whitening by the covariance of RDM entries under
        i.i.d. pattern noise, i.e. linear CKA of the double-centred ``-D/2``;
        ``corr_cov``: the same after removing each vector's mean.

    Returns
    -------
    array of shape (n_a, n_b)
        Similarities, equal to ``rsatoolbox.rdm.compare(rdms_a, rdms_b, method)``.

    Notes
    -----
    Conditions are matched by label: when both arguments are ``RDMs`` that share a pattern
    descriptor with unique values (e.g. ``stimulus_id``), ``rdms_b`` is reordered to the
    conditions of ``rdms_a``, and different condition sets raise a ValueError. Arrays
    carry no labels and are matched by position.

    Missing dissimilarities (NaN): when the two sets have NaNs at the same pairs, a pair that
    is NaN in any RDM is dropped from every comparison (as rsatoolbox does). When they differ
    (where rsatoolbox raises), each similarity uses the pairs present in both of its RDMs
    (pairwise deletion) and a warning says so. Infinite dissimilarities raise. A constant
    RDM has zero norm after centring; its cosine / correlation similarities are 0 (as
    rsatoolbox), and its tau-b is NaN (as scipy).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.random.default_rng(0).random((2, 10))   # two 5x5 RDMs (upper triangles)
    >>> float(compare(a, a, method="corr")[0, 0].round(6))
    1.0
    """
    check_option("method", method, COMPARE_METHODS)
    va, vb = aligned_vectors(rdms_a, rdms_b, names=("rdms_a", "rdms_b"))
    return compare_vectors(va, vb, method=method, names=("rdms_a", "rdms_b"))


def aligned_vectors(rdms_a: Any, rdms_b: Any, *, names: tuple[str, str], prefer: str | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of both arguments, ``rdms_b``'s conditions reordered to those of ``rdms_a``
    when both carry condition labels (see :func:`match_conditions`)."""
    va = rdm_vectors(rdms_a, names[0])
    vb = va if rdms_b is rdms_a else rdm_vectors(rdms_b, names[1])
    if va.shape[1] != vb.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must describe the same conditions: {names[0]} has "
            f"{n_cond_from_pairs(va.shape[1])} conditions ({va.shape[1]} pairs), {names[1]} has "
            f"{n_cond_from_pairs(vb.shape[1])} ({vb.shape[1]} pairs)."
        )
    if rdms_b is not rdms_a:
        perm = match_conditions(condition_labels(rdms_b), condition_labels(rdms_a), source_name=names[1],
                                target_name=names[0], prefer=prefer)
        if perm is not None:
            vb = reorder_vectors(vb, perm)
    return va, vb


def compare_vectors(va: np.ndarray, vb: np.ndarray, *, method: str,
                    names: tuple[str, str] = ("rdms_a", "rdms_b")) -> np.ndarray:
    """:func:`compare` on (n_a, n_pairs) and (n_b, n_pairs) float64 vectors (``vb is va`` allowed);
    ``names`` are the caller's names of the two arguments, for messages."""
    if method in ("cosine", "corr"):
        out = _fast_cosine(va, vb, centre=method == "corr")
        if out is not None:  # None: some value is NaN / inf (or overflows when squared)
            return out
    prepared = _check_missing(va, vb, names)
    if isinstance(prepared, list):  # NaNs at different pairs: pairwise deletion, block by block
        out = np.empty((va.shape[0], vb.shape[0]))
        for rows_a, rows_b, keep in prepared:
            sub_b = vb[np.ix_(rows_b, keep)]
            out[np.ix_(rows_a, rows_b)] = _compare_clean(va[np.ix_(rows_a, keep)], sub_b, method, keep)
        return out
    va, vb, keep = prepared
    return _compare_clean(va, vb, method, keep)


def _compare_clean(va: np.ndarray, vb: np.ndarray, method: str, keep: np.ndarray) -> np.ndarray:
    """Comparison of vectors without missing values (``keep``: the kept pairs of the full RDM)."""
    if method == "cosine":
        return _cosine(va, vb)
    if method == "corr":
        return _cosine(va - va.mean(1, keepdims=True), vb - vb.mean(1, keepdims=True))
    if method in ("spearman", "rho-a"):
        return _rank_compare(va, vb, rho_a=method == "rho-a")
    if method in ("cosine_cov", "corr_cov"):
        if method == "corr_cov":
            va = va - va.mean(1, keepdims=True)
            vb = vb - vb.mean(1, keepdims=True)
        return _cosine_cov(va, vb, keep)
    return _kendall(va, vb, variant="a" if method == "tau-a" else "b")


def _all_finite(v: np.ndarray) -> bool:
    """True if no NaN / inf in ``v`` (one BLAS pass: a row sum is finite only then, barring
    overflow, which merely sends the caller to the exact element-wise checks)."""
    return bool(np.isfinite(v @ np.ones(v.shape[1])).all())


def _check_missing(va: np.ndarray, vb: np.ndarray, names: tuple[str, str]):
    """(va, vb, keep) with the commonly missing pairs dropped, or, when the two sets have NaNs at
    different pairs, a list of (rows_a, rows_b, keep) blocks for pairwise deletion."""
    if _all_finite(va) and (vb is va or _all_finite(vb)):
        return va, vb, np.ones(va.shape[1], bool)
    for v, name in ((va, names[0]), (vb, names[1])):
        if np.isinf(v).any():
            row, col = (int(i) for i in np.argwhere(np.isinf(v))[0])
            raise ValueError(
                f"{name} contain infinite dissimilarities ({int(np.isinf(v).sum())}, first in RDM {row} at "
                f"pair {col}); replace them by NaN to treat them as missing, or fix the RDMs."
            )
    nan_a, nan_b = np.isnan(va), (np.isnan(vb) if vb is not va else None)
    any_a = nan_a.any(0)
    any_b = any_a if nan_b is None else nan_b.any(0)
    if np.array_equal(any_a, any_b):
        keep = ~any_a
        if keep.sum() < 2:
            raise ValueError(f"Fewer than 2 dissimilarities of {names[0]} and {names[1]} are not NaN.")
        va_k = va[:, keep]
        return va_k, (va_k if vb is va else vb[:, keep]), keep
    warnings.warn(
        f"{names[0]} and {names[1]} have missing values (NaN) at different pairs ({int(any_a.sum())} vs "
        f"{int(any_b.sum())} pairs, {int((any_a != any_b).sum())} differ): each similarity uses the pairs "
        "present in both of its RDMs (pairwise deletion; rsatoolbox refuses such input).",
        RuntimeWarning, stacklevel=3,
    )
    blocks = []
    pat_a, inv_a = np.unique(nan_a, axis=0, return_inverse=True)
    pat_b, inv_b = np.unique(nan_b, axis=0, return_inverse=True)
    for ia, mask_a in enumerate(pat_a):
        for ib, mask_b in enumerate(pat_b):
            keep = ~(mask_a | mask_b)
            if keep.sum() < 2:
                raise ValueError(
                    f"An RDM of {names[0]} and one of {names[1]} share fewer than 2 dissimilarities that are "
                    "not NaN; they cannot be compared."
                )
            blocks.append((np.flatnonzero(inv_a.ravel() == ia), np.flatnonzero(inv_b.ravel() == ib), keep))
    return blocks


def _fast_cosine(va: np.ndarray, vb: np.ndarray, *, centre: bool, chunk: int = 8192) -> np.ndarray | None:
    """Cosine (``centre=False``) or Pearson correlation of all row pairs in one pass over
    the data: products, sums of squares and sums are accumulated per block of ``chunk``
    columns while the block is in cache, the columns split over 2 threads. For the
    correlation, each row is first shifted by the mean of a strided sample of it (inside
    the block, no copy of the data), so ``ss - s^2 / m`` loses no precision to a large
    mean. Returns None if any statistic is not finite (NaN / inf in the input)."""
    m = va.shape[1]
    same = vb is va
    shift_a = va[:, :: max(1, m // 4096)].mean(1) if centre else None
    shift_b = shift_a if same or not centre else vb[:, :: max(1, m // 4096)].mean(1)

    def part(bounds):
        start, stop = bounds
        num = np.zeros((va.shape[0], vb.shape[0]))
        ssa, sa = np.zeros(va.shape[0]), np.zeros(va.shape[0])
        ssb, sb = (ssa, sa) if same else (np.zeros(vb.shape[0]), np.zeros(vb.shape[0]))
        buf_a = np.empty((va.shape[0], chunk)) if centre else None
        buf_b = buf_a if same or not centre else np.empty((vb.shape[0], chunk))
        for i in range(start, stop, chunk):
            j = min(i + chunk, stop)
            a = va[:, i:j]
            if centre:
                a = np.subtract(a, shift_a[:, None], out=buf_a[:, : j - i])
            b = a if same else vb[:, i:j]
            if centre and not same:
                b = np.subtract(b, shift_b[:, None], out=buf_b[:, : j - i])
            num += a @ b.T
            ssa += np.einsum("ij,ij->i", a, a)
            if not same:
                ssb += np.einsum("ij,ij->i", b, b)
            if centre:
                sa += a.sum(1)
                if not same:
                    sb += b.sum(1)
        return num, ssa, ssb, sa, sb

    half = (m // 2) // chunk * chunk if m >= 4 * chunk else 0
    parts = map_threads(part, [(0, half), (half, m)] if half else [(0, m)])
    num, ssa, ssb, sa, sb = (sum(p[k] for p in parts) for k in range(5))
    if not (np.isfinite(num).all() and np.isfinite(ssa).all() and np.isfinite(ssb).all()):
        return None
    if centre:
        num = num - np.outer(sa, sb) / m
        ssa = np.maximum(ssa - sa * sa / m, 0.0)
        ssb = np.maximum(ssb - sb * sb / m, 0.0)
    return _ratio(num, np.sqrt(ssa), np.sqrt(ssb))


def _rank_compare(va: np.ndarray, vb: np.ndarray, *, rho_a: bool, block: int | None = None) -> np.ndarray:
    """Spearman (or rho-a) of all row pairs. The smaller set is ranked once and kept. The
    larger one: many rows of moderate length are ranked all at once (one 2-D sort, the small
    set's ranks gathered in each row's order, :func:`rank_products`); otherwise ``block`` rows
    at a time (as many as fit in 64 MB, at least 8) into one reused buffer, so memory stays
    O((n_small + block) * n_pairs)."""
    if vb is not va and va.shape[0] > vb.shape[0]:
        return _rank_compare(vb, va, rho_a=rho_a, block=block).T
    m = va.shape[1]
    block = block or max(8, (64 * 1024**2) // (8 * m))
    ra, ssa = centred_rank_rows(va)
    if vb is va:
        num, ssb = ra @ ra.T, ssa
    elif vb.shape[0] > 8 and m <= 4096:
        num = np.empty((va.shape[0], vb.shape[0]))
        ssb = np.empty(vb.shape[0])
        step = max(1, 4_000_000 // m)
        for start in range(0, vb.shape[0], step):
            stop = min(start + step, vb.shape[0])
            num[:, start:stop], ssb[start:stop] = rank_products(ra, vb[start:stop])
    else:
        num = np.empty((va.shape[0], vb.shape[0]))
        ssb = np.empty(vb.shape[0])
        buf = np.empty((min(block, vb.shape[0]), m))
        for start in range(0, vb.shape[0], block):
            stop = min(start + block, vb.shape[0])
            rb, ssb[start:stop] = centred_rank_rows(vb[start:stop], buf[: stop - start])
            num[:, start:stop] = ra @ rb.T
    if rho_a:
        return num / (m**3 - m) * 12
    return _ratio(num, np.sqrt(ssa), np.sqrt(ssb))


def _ratio(num: np.ndarray, na: np.ndarray, nb: np.ndarray) -> np.ndarray:
    """``num / (na nb^T)``, 0 where a norm is 0 (rsatoolbox's convention)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / na[:, None] / nb[None, :]
    out[~((na > 0)[:, None] & (nb > 0)[None, :])] = 0.0
    return out


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of all row pairs; 0 where a row has zero norm (rsatoolbox's convention)."""
    na = np.sqrt(np.einsum("ij,ij->i", a, a))
    nb = na if b is a else np.sqrt(np.einsum("ij,ij->i", b, b))
    return _ratio(a @ b.T, na, nb)


# ---------------------------------------------------------------------------- cov-weighted
def _centred_gram_vectors(v: np.ndarray, n: int) -> np.ndarray:
    """Upper triangles of the double-centred ``G = -D / 2`` (D with zero diagonal)."""
    iu, ju = np.triu_indices(n, 1)
    rowsum = np.zeros((v.shape[0], n))
    for k in range(v.shape[0]):
        rowsum[k] = np.bincount(iu, v[k], minlength=n) + np.bincount(ju, v[k], minlength=n)
    m = -0.5 * rowsum / n
    mm = -v.sum(1, keepdims=True) / (n * n)
    return -0.5 * v - m[:, iu] - m[:, ju] + mm


def _cosine_cov(va: np.ndarray, vb: np.ndarray, keep: np.ndarray) -> np.ndarray:
    n = n_cond_from_pairs(keep.size)
    if keep.all():
        # <Gc_a, Gc_b>_F = 2 * sum_{i<j} Gc_a,ij * G_b,ij  with G_b = -D_b / 2 (zero diagonal)
        ca = _centred_gram_vectors(va, n)
        cb = ca if vb is va else _centred_gram_vectors(vb, n)
        num = -(ca @ vb.T)
        na = np.sqrt(np.maximum(-np.einsum("ij,ij->i", ca, va), 0))
        nb = na if vb is va else np.sqrt(np.maximum(-np.einsum("ij,ij->i", cb, vb), 0))
        return _ratio(num, na, nb)
    wa = _whiten_missing(va, keep, n)
    wb = wa if vb is va else _whiten_missing(vb, keep, n)
    return _cosine(wa, wb)


def _whiten_missing(v: np.ndarray, keep: np.ndarray, n: int) -> np.ndarray:
    """rsatoolbox's whitening of RDM vectors with missing pairs: a weighted least-squares
    removal of row/column effects from ``-D/2`` extended by its (zero) diagonal."""
    import scipy.sparse as sp

    iu, ju = np.triu_indices(n, 1)
    iu, ju = iu[keep], ju[keep]
    n_valid = iu.size
    rows = np.concatenate([np.arange(n_valid), np.arange(n_valid), n_valid + np.arange(n)])
    cols = np.concatenate([iu, ju, np.arange(n)])
    vals = np.ones(rows.size)  # diagonal rows: (row + col indicator) / 2 = one indicator
    S = sp.csr_matrix((vals, (rows, cols)), shape=(n_valid + n, n))
    w = np.concatenate([np.full(n_valid, 0.5), np.ones(n)])
    WS = sp.diags(w) @ S
    M = (S.T @ WS).toarray()
    ext = np.concatenate([-0.5 * v, np.zeros((v.shape[0], n))], axis=1)
    coef = np.linalg.solve(M, (S.T @ ext.T)).T  # (n_rdms, n)
    out = ext - (WS @ coef.T).T
    out[:, :n_valid] *= np.sqrt(2)
    return out


# ---------------------------------------------------------------------------- Kendall
def _kendall(va: np.ndarray, vb: np.ndarray, *, variant: str) -> np.ndarray:
    prep_a = [dense_ranks(row) for row in va]
    prep_b = prep_a if vb is va else [dense_ranks(row) for row in vb]
    out = np.empty((len(prep_a), len(prep_b)))
    for i, (perm_a, ranks_a, ties_a) in enumerate(prep_a):
        x_sorted = ranks_a[perm_a]
        for j, (_perm_b, ranks_b, ties_b) in enumerate(prep_b):
            tot, con_minus_dis, _ = kendall_counts(x_sorted, ties_a, ranks_b[perm_a], ties_b)
            if variant == "a":
                tau = con_minus_dis / tot if tot else np.nan
            elif ties_a == tot or ties_b == tot:
                tau = np.nan
            else:
                tau = con_minus_dis / np.sqrt(tot - ties_a) / np.sqrt(tot - ties_b)
            out[i, j] = min(1.0, max(-1.0, tau)) if np.isfinite(tau) else np.nan
    return out
