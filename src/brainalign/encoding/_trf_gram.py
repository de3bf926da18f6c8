"""Sufficient statistics of a lagged design without building it whole: the TRF's fast path.

The lagged design ``D`` of a TRF has one column per (delay, feature), delay-major, with
consecutive delays ``d_k = d_0 + k`` (the column order of
:func:`brainalign.features.timing.make_delays`), zero-padded at the edges of every segment
(run or epoch). Ridge on ``D`` needs, for a set ``S`` of rows: ``G = D_Sᵀ D_S``,
``Z = D_Sᵀ Y_S``, the column sums of ``D_S`` and the sums and sums of squares of ``Y_S``.

``G`` is block Toeplitz up to edge terms. With ``G[k, l]`` the ``(p, p)`` block of delays
``k`` and ``l`` and a piece ``[a, b)`` of consecutive rows of one segment,
``G[k+1, l+1] = G[k, l] + u_k u_lᵀ - w_k w_lᵀ`` where ``u_k = x(a - 1 - d_k)`` enters and
``w_k = x(b - 1 - d_k)`` leaves (``x`` is 0 outside the segment). So ``G`` follows from its
first block row ``D_S[:, :p]ᵀ D_S`` (a ``p``-row product instead of ``K p`` rows) and the
boundary rows of the pieces of ``S``, summed over pieces — exact for any row set, cheapest
for long pieces (contiguous folds, whole runs). ``Z`` is one GEMM per chunk of rows, with the
chunk's lagged rows copied from a sliding window (each row of ``D`` is a reversed window of
``x``). Nothing of size ``n_samples × n_features × n_delays`` is held at once.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._utils import Bunch

__all__ = ["LaggedSeries"]

_CHUNK_VALUES = 2**21  # values of D per chunk (16 MB in float64)


class LaggedSeries:
    """Centred features cut into contiguous segments, seen through consecutive delays.

    Parameters
    ----------
    X : array of shape (n_samples, n_features), float64
        Already centred (when the model has an intercept); segments are contiguous.
    bounds : array of shape (n_segments + 1,)
        Segment ``s`` holds rows ``bounds[s]:bounds[s + 1]``.
    steps : array of int of shape (n_delays,)
        Consecutive delays in samples, ascending.
    """

    def __init__(self, X: np.ndarray, bounds: np.ndarray, steps: np.ndarray):
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.n, self.p = self.X.shape
        self.bounds = np.asarray(bounds, dtype=np.int64)
        self.steps = np.asarray(steps, dtype=np.int64)
        self.K = len(self.steps)
        if self.K > 1 and not np.array_equal(np.diff(self.steps), np.ones(self.K - 1, dtype=np.int64)):
            raise ValueError("LaggedSeries needs consecutive ascending delays.")
        self.seg_of = np.repeat(np.arange(len(self.bounds) - 1), np.diff(self.bounds))
        self._Xz = np.vstack([self.X, np.zeros((1, self.p))])  # row n: the zero row for padding

    # ------------------------------------------------------------------ design rows
    def _piece_rows(self, a: int, b: int) -> np.ndarray:
        """Lagged rows a..b-1 (one segment), by a sliding window over the reversed series."""
        s = self.seg_of[a]
        s0, s1 = self.bounds[s], self.bounds[s + 1]
        dmax, K, p = int(self.steps[-1]), self.K, self.p
        first = a - dmax  # time of buf[0]
        buf = np.zeros((b - a + K - 1, p))
        lo, hi = max(s0, first), min(s1, first + len(buf))
        if hi > lo:
            buf[lo - first:hi - first] = self.X[lo:hi]
        rev = np.ascontiguousarray(buf[::-1]).reshape(-1)
        return sliding_window_view(rev, K * p)[::p][::-1]

    def _gather_rows(self, idx: np.ndarray) -> np.ndarray:
        """Lagged rows of arbitrary (sorted) sample indices, by fancy indexing."""
        src = idx[:, None] - self.steps[None, :]
        seg = self.seg_of[idx][:, None]
        ok = (src >= self.bounds[seg]) & (src < self.bounds[seg + 1])
        src = np.where(ok, src, self.n)
        return self._Xz[src].reshape(len(idx), self.K * self.p)

    def rows(self, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The lagged design rows of the sorted sample indices ``idx``, array (len(idx), K * p)."""
        starts, ends = self.pieces(idx)
        if out is None:
            out = np.empty((len(idx), self.K * self.p))
        if len(starts) * 16 > len(idx):  # short pieces: gather
            out[:] = self._gather_rows(idx)
            return out
        pos = 0
        for a, b in zip(starts, ends):
            out[pos:pos + b - a] = self._piece_rows(a, b)
            pos += b - a
        return out

    def pieces(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Maximal runs of consecutive indices within one segment: (starts, ends), ends exclusive."""
        if len(idx) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        brk = np.flatnonzero((np.diff(idx) != 1) | (np.diff(self.seg_of[idx]) != 0)) + 1
        first = np.r_[0, brk]
        last = np.r_[brk - 1, len(idx) - 1]
        return idx[first], idx[last] + 1

    def _at(self, t: np.ndarray, seg: np.ndarray) -> np.ndarray:
        """x(t) for times ``t`` (n_pieces, K) of segments ``seg`` (zero outside the segment)."""
        ok = (t >= self.bounds[seg][:, None]) & (t < self.bounds[seg + 1][:, None])
        return self._Xz[np.where(ok, t, self.n)]

    # ------------------------------------------------------------------ statistics
    def gram_from_first_row(self, first: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """``D_Sᵀ D_S`` from its first block row ``D_S[:, :p]ᵀ D_S`` (p, K p) and the pieces of ``S``."""
        K, p = self.K, self.p
        starts, ends = self.pieces(idx)
        seg = self.seg_of[starts]
        u = self._at(starts[:, None] - 1 - self.steps[None, :], seg).reshape(len(starts), K * p)
        w = self._at(ends[:, None] - 1 - self.steps[None, :], seg).reshape(len(starts), K * p)
        E = u.T @ u - w.T @ w
        G = np.empty((K * p, K * p))
        G[:p] = first
        for k in range(1, K):
            r, r0 = slice(k * p, (k + 1) * p), slice((k - 1) * p, k * p)
            G[r, k * p:] = G[r0, (k - 1) * p:(K - 1) * p] + E[r0, (k - 1) * p:(K - 1) * p]
        blk = np.arange(K * p) // p
        return np.where(blk[:, None] <= blk[None, :], G, G.T)

    def stats(self, idx: np.ndarray, Y: np.ndarray, y_mean: np.ndarray, *, gemm_dtype=np.float64,
              with_y: bool = True) -> Bunch:
        """Sums over the rows ``idx`` (sorted): G, Z, column sums of D, sums and squares of Y - y_mean."""
        K, p = self.K, self.p
        c = Y.shape[1]
        first = np.zeros((p, K * p))
        colsum = np.zeros(K * p)
        Z = np.zeros((K * p, c))
        ysum, yy = np.zeros(c), np.zeros(c)
        step = max(256, _CHUNK_VALUES // max(1, K * p))
        buf = np.empty((min(step, len(idx)), K * p))
        fused = gemm_dtype == np.float64 and with_y
        for c0 in range(0, len(idx), step):
            sub = idx[c0:c0 + step]
            D = self.rows(sub, out=buf[:len(sub)])
            if not with_y:
                first += D[:, :p].T @ D
                colsum += D.sum(0)
                continue
            contiguous = sub[-1] - sub[0] == len(sub) - 1
            Ysub = Y[sub[0]:sub[-1] + 1] if contiguous else Y[sub]
            if fused:  # one GEMM gives Z, the column sums and the first block row: Dᵀ [Y - mean, 1, D[:, :p]]
                R = np.empty((len(sub), c + 1 + p))
                Yc = R[:, :c]
                np.subtract(Ysub, y_mean, out=Yc)
                R[:, c] = 1.0
                R[:, c + 1:] = D[:, :p]
                M = D.T @ R
                Z += M[:, :c]
                colsum += M[:, c]
                first += M[:, c + 1:].T
            else:
                Yc = Ysub - y_mean
                first += D[:, :p].T @ D
                colsum += D.sum(0)
                Z += D.astype(gemm_dtype).T @ Yc.astype(gemm_dtype, copy=False)
            ysum += Yc.sum(0)
            yy += np.einsum("ij,ij->j", Yc, Yc)
        return Bunch(G=self.gram_from_first_row(first, idx), Z=Z, colsum=colsum, ysum=ysum, yy=yy, n=len(idx))


def combine(a: Bunch, b: Bunch, sign: float = 1.0) -> Bunch:
    """``a + sign * b`` for every statistic of :meth:`LaggedSeries.stats`."""
    return Bunch(**{k: a[k] + sign * b[k] for k in ("G", "Z", "colsum", "ysum", "yy", "n")})
