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

import numpy as np

try:  # compiled O(n log n) discordant-pair counter (Fenwick tree) shipped with scipy
    from scipy.stats._stats import _kendall_dis as _scipy_kendall_dis
except Exception:  # pragma: no cover - depends on the scipy build
    _scipy_kendall_dis = None

__all__ = ["sort_order", "average_ranks", "centred_ranks_into", "dense_ranks", "kendall_counts"]

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
