"""Nearest-neighbour alignment (Huh et al. 2024, the platonic-representation code).

Each stimulus's ``k`` nearest neighbours (itself excluded) are found once per matrix, by
cosine similarity (the platonic-rep convention: L2-normalised features, inner product) or by
Euclidean distance. Then

- ``mutual_knn``: the mean over stimuli of ``|N_X(i) & N_Y(i)| / k`` (symmetric);
- ``cycle_knn``: the fraction of stimuli ``i`` that are among the X-neighbours of at least one
  of their Y-neighbours, ``i in N_X(N_Y(i))`` (platonic-rep's ``cycle_knn(feats_X, feats_Y)``;
  not symmetric).

When the bootstrap duplicates stimuli, copies of a stimulus are excluded from each other's
neighbours (as the stimulus itself is), so a copy is never its own nearest neighbour.
"""

from __future__ import annotations

import numpy as np

from .._utils import check_option
from ._prepare import Rep


def check_k(k, n: int, groups=None) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k (the number of nearest neighbours) must be a positive integer; got {k!r}.")
    limit = n - 1
    if groups is not None:
        limit = n - int(np.unique(groups, return_counts=True)[1].max())
    if k > limit:
        raise ValueError(f"k={k} neighbours requested but each stimulus has only {limit} other stimuli "
                         f"(n_stimuli={n}); k must be smaller than the number of stimuli. Use e.g. k={max(1, limit // 10)}.")
    return int(k)


def neighbours(rep: Rep, k: int, metric: str, groups=None):
    """Sorted indices of the k nearest neighbours of every stimulus, (n, k) (cached)."""
    import torch

    key = ("knn", k, metric, None if groups is None else tuple(np.asarray(groups).tolist()))

    def run():
        x = rep.x
        if metric == "cosine":
            norms = x.norm(dim=1)
            zero = torch.nonzero(norms == 0).reshape(-1)
            if zero.numel():
                raise ValueError(f"{rep.name}: {zero.numel()} stimuli have all-zero features (first: row "
                                 f"{int(zero[0])}); their cosine neighbours are undefined. Use metric='euclidean'.")
            x = x / norms[:, None]
            sq = None
        else:
            sq = (x * x).sum(1)
        g = None if groups is None else torch.as_tensor(np.asarray(groups), device=x.device)
        out = torch.empty((rep.n, k), dtype=torch.long, device=x.device)
        rows_per = max(1, min(rep.n, available_rows(rep)))
        for start in range(0, rep.n, rows_per):
            stop = min(start + rows_per, rep.n)
            s = x[start:stop] @ x.T
            if sq is not None:
                s = 2 * s - sq[start:stop, None] - sq[None, :]  # -squared distance
            idx = torch.arange(start, stop, device=x.device)
            s[idx - start, idx] = -torch.inf
            if g is not None:
                s[g[start:stop, None] == g[None, :]] = -torch.inf
            out[start:stop] = torch.topk(s, k, dim=1).indices
        return torch.sort(out, dim=1).values

    return rep.cached(key, run)


def available_rows(rep: Rep) -> int:
    """Rows of the (rows, n) similarity block that fit in a quarter of the free memory."""
    from .._backend import available_memory_bytes

    return int(available_memory_bytes(rep.x.device) // 4 // max(1, rep.n * rep.x.element_size() * 2))


def _contains(sorted_rows, queries):
    """Boolean (n, m): whether ``queries[i, t]`` is in the sorted row ``sorted_rows[i]``."""
    import torch

    pos = torch.searchsorted(sorted_rows, queries).clamp_max_(sorted_rows.shape[1] - 1)
    return torch.gather(sorted_rows, 1, pos) == queries


def grid(A: list[Rep], B: list[Rep], *, same: bool, k: int = 10, metric: str = "cosine", cycle: bool = False,
         groups=None) -> np.ndarray:
    """Mutual / cycle kNN alignment of every pair: (n_a, n_b)."""
    import torch

    check_option("metric", metric, ["cosine", "euclidean"])
    n = A[0].n
    k = check_k(k, n, groups)
    na = [neighbours(r, k, metric, groups) for r in A]
    nb = na if same else [neighbours(r, k, metric, groups) for r in B]
    out = np.zeros((len(A), len(B)))
    ids = torch.arange(n, device=A[0].x.device)
    for i in range(len(A)):
        for j in range(len(B)):
            if same and j < i and not cycle:
                out[i, j] = out[j, i]
                continue
            if cycle:
                cand = na[i][nb[j]].reshape(n, -1)  # X-neighbours of the Y-neighbours of i
                hit = (cand == ids[:, None]).any(1)
                if groups is not None:  # a copy of i counts as i
                    g = torch.as_tensor(np.asarray(groups), device=cand.device)
                    hit = (g[cand] == g[:, None]).any(1)
                out[i, j] = float(hit.double().mean())
            else:
                out[i, j] = float(_contains(nb[j], na[i]).double().sum()) / (n * k)
    return out
