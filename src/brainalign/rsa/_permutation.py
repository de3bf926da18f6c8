"""Permutation test of RSA scores: the condition labels of the data RDM are shuffled.

The null is streamed in blocks of permutations, so memory stays within a budget whatever the
number of permutations (a block of ``B`` permutations takes ``40 B n_pairs`` bytes at its
peak: the int64 pair indices, their temporaries and the gathered float64 values). For Pearson, Spearman, rho-a and cosine a
permutation of the conditions only permutes the (ranked, centred) entries of the data RDM,
whose norm it keeps: the data are ranked and centred once and each permutation costs a
gather and a product with the models.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._docs import fill_doc
from .._utils import Bunch, check_option, check_random_state, progress_bar
from ._common import memory_budget as _env_budget
from ._common import n_cond_from_pairs
from ._compare import COMPARE_METHODS, aligned_vectors, compare_vectors
from ._ranks import centred_rank_rows

__all__ = ["permutation_test"]

#: Default cap of the memory a block of permuted RDMs may take (bytes).
DEFAULT_MEMORY_BUDGET = 256 * 1024**2
_BYTES_PER_PAIR = 40


@fill_doc
def permutation_test(model_rdms: Any, data_rdm: Any, *, method: str = "spearman", n_permutations: int = 1000,
                     random_state: Any = None, memory_budget: int | None = None, verbose: bool = False) -> Bunch:
    """Permutation test of the similarity of each model RDM to one data RDM.

    The null distribution shuffles the condition labels of the data RDM (rows and columns
    together), which keeps its structure but breaks its correspondence with the models.

    Parameters
    ----------
    model_rdms : rsatoolbox.rdm.RDMs or array, n_models RDMs
        Reordered to the data's conditions when both are ``RDMs`` sharing a condition label.
    data_rdm : rsatoolbox.rdm.RDMs or array, one RDM
    method : str
        Comparison method (:func:`compare`).
    %(n_permutations)s
    %(random_state)s
    memory_budget : int, optional
        Bytes the permuted RDMs of one block may take (default 256 MiB, or a quarter of
        ``BRAINALIGN_MEMORY_LIMIT`` when that is lower); the permutations are streamed in
        blocks of
        ``max(1, memory_budget // (40 n_pairs))`` (40 bytes per permuted pair at the peak).
    %(verbose)s

    Returns
    -------
    Bunch
        ``score``: array (n_models,); ``null``: array (n_permutations, n_models);
        ``pvalues``: one-sided ``(1 + #(null >= score)) / (1 + n_permutations)``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> d = rng.random(45)
    >>> res = permutation_test(np.stack([d, rng.random(45)]), d, n_permutations=99, random_state=0)
    >>> res.pvalues.round(2).tolist()[0]
    0.01
    """
    check_option("method", method, COMPARE_METHODS)
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) or n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive int; got {n_permutations!r}.")
    vd, vm = aligned_vectors(data_rdm, model_rdms, names=("data_rdm", "model_rdms"))
    if vd.shape[0] != 1:
        raise ValueError(f"data_rdm must hold one RDM; got {vd.shape[0]}. Test each data RDM separately.")
    names = ("model_rdms", "data_rdm")
    n_pairs = vd.shape[1]
    n = n_cond_from_pairs(n_pairs)
    if memory_budget is not None and (isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, np.integer))
                                      or memory_budget < 1):
        raise ValueError(f"memory_budget must be a positive int (bytes) or None; got {memory_budget!r}.")
    budget = memory_budget or _env_budget(DEFAULT_MEMORY_BUDGET)
    block = int(max(1, budget // (_BYTES_PER_PAIR * n_pairs)))
    rng = check_random_state(random_state)
    score = compare_vectors(vm, vd, method=method, names=names)[:, 0]
    fast = method in ("spearman", "rho-a", "corr", "cosine") and np.isfinite(vd).all() and np.isfinite(vm).all()
    if fast:
        proj_m, proj_d, scale = _projections(vm, vd[0], method)
    iu, ju = np.triu_indices(n, 1)
    null = np.empty((n_permutations, vm.shape[0]))
    starts = range(0, n_permutations, block)
    for start in progress_bar(starts, verbose=verbose, total=len(starts), desc="permutations"):
        stop = min(start + block, n_permutations)
        perms = rng.permuted(np.tile(np.arange(n, dtype=np.int64), (stop - start, 1)), axis=1)
        idx = _permuted_pairs(perms, iu, ju, n)
        if fast:
            null[start:stop] = (proj_d[idx] @ proj_m.T) * scale
        else:
            null[start:stop] = compare_vectors(vm, vd[0][idx], method=method, names=names).T
    pvalues = (1 + (null >= score[None] - 1e-12).sum(0)) / (1 + n_permutations)
    return Bunch(score=score, null=null, pvalues=pvalues)


def _permuted_pairs(perms: np.ndarray, iu: np.ndarray, ju: np.ndarray, n: int) -> np.ndarray:
    """Index of pair (perm[i], perm[j]) in the upper-triangle vector, for every pair i < j and
    every row of ``perms``; in place, so at most 4 int64 arrays of the block's size live."""
    a, hi = perms[:, iu], perms[:, ju]
    lo = np.minimum(a, hi)
    np.maximum(a, hi, out=hi)
    del a
    tmp = lo + 1  # position of (lo, hi): lo * n - lo * (lo + 1) / 2 + hi - lo - 1
    tmp *= lo
    tmp //= 2
    hi -= lo
    hi -= 1
    lo *= n
    lo -= tmp
    lo += hi
    return lo


def _projections(vm: np.ndarray, vd: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Models and data prepared so that ``(data[idx] @ models.T) * scale`` is the similarity of
    the data permuted by ``idx`` (a permutation keeps the data's mean, ranks and norm)."""
    m = vd.size
    if method in ("spearman", "rho-a"):
        pm, ssm = centred_rank_rows(vm)
        pd_, ssd = centred_rank_rows(vd[None])
        pd_, ssd = pd_[0], ssd[0]
    else:
        pm = vm - vm.mean(1, keepdims=True) if method == "corr" else vm
        pd_ = vd - vd.mean() if method == "corr" else vd
        ssm, ssd = np.einsum("ij,ij->i", pm, pm), float(pd_ @ pd_)
    if method == "rho-a":
        return pm, pd_, np.full(vm.shape[0], 12.0 / (m**3 - m))
    with np.errstate(divide="ignore"):
        scale = 1.0 / np.sqrt(ssm * ssd)
    scale[~np.isfinite(scale)] = 0.0  # a constant RDM: similarity 0 (rsatoolbox's convention)
    return pm, pd_, scale
