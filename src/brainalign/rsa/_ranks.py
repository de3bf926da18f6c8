"""Fast ranking and Kendall-tau kernels for long dissimilarity vectors.

An RDM of 1,000 stimuli has ~500,000 dissimilarities; scipy's ``rankdata`` and
``kendalltau`` on vectors of that length dominate the cost of rank-based RSA. Here:

- :func:`sort_order` is an exact argsort that packs (value, index) into one 64-bit key and
  calls numpy's SIMD ``np.sort`` (several times faster than ``np.argsort``), falling back to a
  stable argsort in the rare case that two different values share the packed key.
- :func:`average_ranks` gives scipy's ``rankdata(method="average")`` from that order.
- :func:`kendall_counts` counts discordant pairs in O(n log n) (Knight's algorithm). It uses
  scipy's compiled Fenwick-tree counter when it can be imported (the same routine that
  ``scipy.stats.kendalltau`` and rsatoolbox use) and a vectorised numpy fallback otherwise
  (radix / wavelet-style counting, one pass per bit of the ranks).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

try:  # compiled O(n log n) discordant-pair counter (Fenwick tree) shipped with scipy
    from scipy.stats._stats import _kendall_dis as _scipy_kendall_dis
except Exception:  # pragma: no cover - depends on the scipy build
    _scipy_kendall_dis = None

__all__ = ["sort_order", "average_ranks", "centred_ranks_into", "centred_rank_rows", "rank_rows",
           "rank_products", "sorted_order_rows", "dense_ranks", "kendall_counts", "map_threads"]

_INDEX_CACHE: dict = {}


def _index_u64(m: int) -> np.ndarray:
    """Read-only ``arange(m)`` as uint64, kept for the last lengths used (ranking many
    vectors of one length would otherwise page-fault a fresh 4 MB array per vector)."""
    idx = _INDEX_CACHE.get(m)
    if idx is None:
        idx = np.arange(m, dtype=np.uint64)
        idx.flags.writeable = False
        if len(_INDEX_CACHE) > 4:
            _INDEX_CACHE.clear()
        _INDEX_CACHE[m] = idx
    return idx


def _orderable_bits(v: np.ndarray) -> np.ndarray:
    """uint64 keys whose unsigned order is the float order of ``v`` (finite, -0.0 == 0.0)."""
    v = np.ascontiguousarray(v, dtype=np.float64)
    if not np.signbit(v).any():  # non-negative (the usual dissimilarities): bits already order
        return v.view(np.uint64)
    v = v + 0.0  # turns -0.0 into +0.0
    mask = (v.view(np.int64) >> 63).view(np.uint64)  # all ones for negatives, zeros otherwise
    mask |= np.uint64(1 << 63)
    return v.view(np.uint64) ^ mask


def _order_and_ties(v: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Stable sort order of ``v`` and the starts of its runs of equal values (None: no ties)."""
    v = np.asarray(v, dtype=np.float64)
    m = v.size
    if m < 4096:
        perm = np.argsort(v, kind="stable")
        new = _groups(v[perm])
        return perm, (None if new.all() else np.flatnonzero(new))
    bits = int(m - 1).bit_length()
    u = _orderable_bits(v)
    low = np.uint64((1 << bits) - 1)
    key = u & ~low
    key |= _index_u64(m)
    key.sort()
    perm = (key & low).view(np.intp)  # indices < 2**63: the same bits as intp
    key >>= np.uint64(bits)
    close = np.flatnonzero(key[1:] == key[:-1])  # neighbours equal in the packed precision
    if close.size == 0:
        return perm, None
    same = u[perm[close]] == u[perm[close + 1]]
    if not same.all():  # distinct values closer than the packed precision: order those runs
        # only the positions inside runs of packed-equal keys move; sort them by (run, value,
        # index) — O(#close), not O(m)
        pos = np.union1d(close, close + 1)
        run = np.cumsum(np.concatenate(([True], np.diff(pos) != 1)))
        sub = perm[pos]
        perm[pos] = sub[np.lexsort((sub, u[sub], run))]
        close = close[u[perm[close]] == u[perm[close + 1]]]
    if close.size == 0:
        return perm, None
    new = np.ones(m, bool)
    new[close + 1] = False
    return perm, np.flatnonzero(new)


def sort_order(v: np.ndarray) -> np.ndarray:
    """Indices that sort the finite 1-D float vector ``v``; ties keep their input order.

    Equal to ``np.argsort(v, kind="stable")``.
    """
    return _order_and_ties(v)[0]


def _groups(sorted_values: np.ndarray) -> np.ndarray:
    """Boolean starts of runs of equal values in a sorted vector."""
    new = np.empty(sorted_values.size, bool)
    if sorted_values.size:
        new[0] = True
        np.not_equal(sorted_values[1:], sorted_values[:-1], out=new[1:])
    return new


def average_ranks(v: np.ndarray) -> np.ndarray:
    """``scipy.stats.rankdata(v)`` (average ranks for ties, 1-based) for a finite vector."""
    perm, starts = _order_and_ties(v)
    m = perm.size
    ranks = np.empty(m, dtype=np.float64)
    if starts is None:
        ranks[perm] = np.arange(1, m + 1, dtype=np.float64)
        return ranks
    counts = np.diff(np.append(starts, m))
    ranks[perm] = np.repeat(starts + (counts + 1) / 2.0, counts)
    return ranks


def centred_ranks_into(v: np.ndarray, out: np.ndarray) -> float:
    """Write ``rankdata(v) - (m + 1) / 2`` into ``out`` and return its sum of squares.

    The average ranks of any vector sum to ``m (m + 1) / 2``, so centring is a constant
    shift, and the sum of squares follows from the tie counts:
    ``(m^3 - m - sum(t^3 - t)) / 12``. No temporary of length m beyond the sort.
    """
    perm, starts = _order_and_ties(v)
    m = perm.size
    centre = (m + 1) / 2.0
    if starts is None:
        out[perm] = _centred_arange(m)
        return (m**3 - m) / 12.0
    counts = np.diff(np.append(starts, m))
    out[perm] = np.repeat(starts + (counts + 1) / 2.0 - centre, counts)
    c = counts.astype(np.int64 if m < 2_000_000 else object)  # sum(c^3) <= m^3: exact
    ties = int(np.sum(c**3 - c))
    return (m**3 - m - ties) / 12.0


_CENTRED_CACHE: dict = {}


def _centred_arange(m: int) -> np.ndarray:
    """Read-only ``arange(1, m + 1) - (m + 1) / 2`` (exact in float64)."""
    r = _CENTRED_CACHE.get(m)
    if r is None:
        r = np.arange(1, m + 1, dtype=np.float64) - (m + 1) / 2.0
        r.flags.writeable = False
        if len(_CENTRED_CACHE) > 4:
            _CENTRED_CACHE.clear()
        _CENTRED_CACHE[m] = r
    return r


def map_threads(fn, items: list) -> list:
    """``[fn(x) for x in items]`` on up to 2 threads (numpy's sorts, gathers and BLAS calls
    release the GIL); a local pool, no global thread setting is touched."""
    n_workers = min(2, os.cpu_count() or 1, len(items))
    if n_workers < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(n_workers) as pool:
        return list(pool.map(fn, items))


def centred_rank_rows(v: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Centred average ranks of each row of a finite 2-D array (into ``out``) and their sums
    of squares. Rows are ranked on 2 threads when there is enough work to pay for them."""
    out = np.empty(v.shape) if out is None else out
    rows = list(range(v.shape[0]))
    if v.size < 200_000 or v.shape[0] < 2:
        ss = [centred_ranks_into(v[i], out[i]) for i in rows]
    else:
        half = len(rows) // 2

        def part(chunk):
            return [centred_ranks_into(v[i], out[i]) for i in chunk]

        ss = [x for p in map_threads(part, [rows[:half], rows[half:]]) for x in p]
    return out, np.asarray(ss, dtype=np.float64)


def sorted_order_rows(v: np.ndarray) -> np.ndarray:
    """An order that sorts each row of a finite 2-D array (ties in any order), from one 2-D
    sort of packed (value, index) keys; rows where two different values share a packed key
    are re-sorted exactly."""
    r, m = v.shape
    if m < 64:
        return np.argsort(v, axis=1)
    bits = int(m - 1).bit_length()
    u = _orderable_bits(v.reshape(-1)).reshape(r, m)
    low = np.uint64((1 << bits) - 1)
    key = u & ~low
    key |= np.arange(m, dtype=np.uint64)
    key.sort(axis=1)
    order = (key & low).view(np.intp)
    key >>= np.uint64(bits)
    close = key[:, 1:] == key[:, :-1]
    rows = np.flatnonzero(close.any(1))
    if rows.size:
        sv = np.take_along_axis(v[rows], order[rows], axis=1)
        bad = rows[((sv[:, 1:] != sv[:, :-1]) & close[rows]).any(1)]
        if bad.size:
            order[bad] = np.argsort(v[bad], axis=1, kind="stable")
    return order


def rank_products(centred: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Products of the centred ranks of each row of ``v`` (r, m) with ``centred`` (k, m) (rows
    already centred ranks), and the rows' sums of squared centred ranks.

    Many rows are ranked at once without scattering ranks back to their positions: in sorted
    order a row's centred ranks are ``arange(m) - (m - 1) / 2`` (averaged over ties), so
    the product with a model is that vector times the model's ranks gathered in the row's
    order. Returns ``(num (k, r), ss (r,))``.
    """
    r, m = v.shape
    order = sorted_order_rows(v)
    s = np.take_along_axis(v, order, axis=1)
    ties = s[:, 1:] == s[:, :-1]
    pos = np.arange(m) - (m - 1) / 2.0
    num = np.empty((centred.shape[0], r))
    for k in range(centred.shape[0]):
        num[k] = centred[k][order] @ pos
    ss = np.full(r, (m**3 - m) / 12.0)
    for i in np.flatnonzero(ties.any(1)):  # rows with ties: average ranks in sorted order
        starts = np.flatnonzero(np.r_[True, ~ties[i]])
        counts = np.diff(np.r_[starts, m])
        cr = np.repeat(starts + (counts - 1) / 2.0, counts) - (m - 1) / 2.0
        ss[i] = cr @ cr
        num[:, i] = centred[:, order[i]] @ cr
    return num, ss


def rank_rows(v: np.ndarray) -> np.ndarray:
    """``scipy.stats.rankdata(v, axis=1)`` for a 2-D array; NaN entries stay NaN and are not
    ranked (each row's other values, ``inf`` included, get ranks 1..k)."""
    v = np.asarray(v, dtype=np.float64)
    out = np.full(v.shape, np.nan)
    finite = ~np.isnan(v)
    for i, row in enumerate(v):
        ok = finite[i]
        if ok.all():
            out[i] = average_ranks(row)
        elif ok.any():
            out[i, ok] = average_ranks(row[ok])
    return out


def dense_ranks(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Sort order, dense integer ranks (1..k) of ``v`` and its number of tied pairs."""
    perm, starts = _order_and_ties(v)
    m = perm.size
    ranks = np.empty(m, dtype=np.intp)
    if starts is None:
        ranks[perm] = np.arange(1, m + 1, dtype=np.intp)
        return perm, ranks, 0
    new = np.zeros(m, bool)
    new[starts] = True
    ranks[perm] = np.cumsum(new, dtype=np.intp)
    counts = np.diff(np.append(starts, m)).astype(np.int64)
    return perm, ranks, int((counts * (counts - 1) // 2).sum())


# --------------------------------------------------------------------- discordant pairs
def _inversions_numpy(y: np.ndarray, seg_start: np.ndarray) -> int:
    """Pairs i < j inside the same segment with ``y[i] > y[j]`` (vectorised radix counting).

    ``y`` are non-negative ints; ``seg_start[k]`` is the index where the segment of element
    ``k`` starts (segments are contiguous). One pass per bit of ``max(y)``: within each
    segment, every element whose current bit is 0 is preceded by some elements whose bit is
    1 (all with the same higher bits) — those pairs are inversions; then the segment is
    split stably by the bit, as in an MSD radix sort.
    """
    y = y.astype(np.int64, copy=True)
    start = seg_start.astype(np.int64, copy=True)
    m = y.size
    idx = np.arange(m, dtype=np.int64)
    total = 0
    n_bits = int(y.max()).bit_length() if m else 0
    for b in range(n_bits - 1, -1, -1):
        bit = (y >> b) & 1
        c1 = np.cumsum(bit)
        before_seg = np.where(start > 0, c1[start - 1], 0)
        ones_before = c1 - bit - before_seg
        total += int(ones_before[bit == 0].sum())
        # stable split of every segment: zeros first, then ones
        zeros_before = (idx - start) - ones_before
        seg_end_c1 = c1[_segment_last(start, m)]
        n_ones_seg = seg_end_c1 - before_seg
        seg_len = _segment_last(start, m) - start + 1
        n_zero_seg = seg_len - n_ones_seg
        new_pos = np.where(bit == 0, start + zeros_before, start + n_zero_seg + ones_before)
        new_start = np.where(bit == 0, start, start + n_zero_seg)
        y_new = np.empty_like(y)
        s_new = np.empty_like(start)
        y_new[new_pos] = y
        s_new[new_pos] = new_start
        y, start = y_new, s_new
    return total


def _segment_last(start: np.ndarray, m: int) -> np.ndarray:
    """Index of the last element of the segment of each element."""
    is_start = np.zeros(m + 1, bool)
    is_start[np.unique(start)] = True
    is_start[m] = True
    starts = np.flatnonzero(is_start)
    ends = starts[1:] - 1
    which = np.searchsorted(starts, start, side="right") - 1
    return ends[which]


def discordant_pairs(x_sorted: np.ndarray, y: np.ndarray, *, use_compiled: bool = True) -> int:
    """Pairs with ``x_i < x_j`` and ``y_i > y_j`` given ``x`` sorted (ints, y >= 1)."""
    if use_compiled and _scipy_kendall_dis is not None:
        return int(_scipy_kendall_dis(np.ascontiguousarray(x_sorted, np.intp),
                                      np.ascontiguousarray(y, np.intp)))
    m = x_sorted.size
    all_start = np.zeros(m, np.int64)
    new = _groups(x_sorted)
    group_start = np.flatnonzero(new)[np.cumsum(new) - 1]
    return _inversions_numpy(y, all_start) - _inversions_numpy(y, group_start)


def kendall_counts(x_sorted: np.ndarray, x_ties: int, y: np.ndarray, y_ties: int,
                   *, use_compiled: bool = True) -> tuple[int, int, int]:
    """(tot, con - dis, n_joint_ties) for dense ranks ``y`` gathered in the order of sorted ``x``.

    ``x_sorted`` are the dense ranks of x in sorted order, ``y`` the dense ranks (>= 1) of
    y in the same order; ``x_ties``/``y_ties`` their numbers of tied pairs.
    """
    m = x_sorted.size
    tot = m * (m - 1) // 2
    dis = discordant_pairs(x_sorted, y, use_compiled=use_compiled)
    ntie = 0
    if x_ties and y_ties:
        key = x_sorted.astype(np.int64) * (int(y.max()) + 1) + y
        key.sort()
        new = _groups(key)
        counts = np.diff(np.append(np.flatnonzero(new), m)).astype(np.int64)
        ntie = int((counts * (counts - 1) // 2).sum())
    return tot, tot - x_ties - y_ties + ntie - 2 * dis, ntie
