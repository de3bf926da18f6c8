"""Noise ceilings of RDM comparisons (rsatoolbox's ``boot_noise_ceiling`` definition)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._utils import check_option
from ._compare import COMPARE_METHODS, compare
from ._common import as_vectors
from ._ranks import average_ranks

__all__ = ["noise_ceiling", "pool_rdms"]


def pool_rdms(vectors: np.ndarray, method: str) -> np.ndarray:
    """The RDM that best represents a group under ``method`` (rsatoolbox's ``pool_rdm``).

    Cosine: mean of RMS-normalised RDMs; corr: mean of z-scored RDMs shifted to a zero
    minimum; rank methods: mean of the ranks. NaN pairs (from the first RDM) stay NaN.
    """
    v = np.asarray(vectors, dtype=np.float64)
    if method in ("cosine", "cosine_cov"):
        v = v / np.sqrt(np.nanmean(v**2, axis=1, keepdims=True))
    elif method in ("corr", "corr_cov"):
        v = v - np.nanmean(v, axis=1, keepdims=True)
        v = v / np.nanstd(v, axis=1, keepdims=True)
    else:  # spearman, rho-a, kendall, tau-b, tau-a: average the ranks
        ranked = np.full_like(v, np.nan)
        for i, row in enumerate(v):
            ok = ~np.isnan(row)
            ranked[i, ok] = average_ranks(row[ok])
        v = ranked
    ok = ~np.isnan(v[0])
    out = np.full((1, v.shape[1]), np.nan)
    out[0, ok] = v[:, ok].mean(0)
    if method in ("corr", "corr_cov"):
        out = out - np.nanmin(out)
    return out


def noise_ceiling(rdms: Any, *, method: str = "spearman", rdm_descriptor: str = "subject") -> tuple[float, float]:
    """Lower and upper bound of the noise ceiling of a group of data RDMs.

    Leave-one-subject-out, as ``rsatoolbox.inference.boot_noise_ceiling`` defines it:
    the lower bound is the mean similarity of each subject's RDMs to the pooled RDM of the
    *other* subjects, the upper bound their mean similarity to the pooled RDM of *all*
    subjects (the subject's own data included), averaged over subjects.

    Parameters
    ----------
    rdms : rsatoolbox.rdm.RDMs
        Data RDMs, several per subject allowed (e.g. sessions).
    method : str
        A comparison method of :func:`compare`.
    rdm_descriptor : str
        Rdm descriptor that groups RDMs by subject (``"index"``: each RDM on its own).

    Returns
    -------
    (lower, upper) : tuple of float

    Examples
    --------
    >>> import numpy as np
    >>> from rsatoolbox.rdm import RDMs
    >>> r = RDMs(np.random.default_rng(0).random((4, 45)), rdm_descriptors={"subject": [0, 1, 2, 3]})
    >>> lo, up = noise_ceiling(r, method="corr")
    >>> bool(lo <= up)
    True
    """
    check_option("method", method, COMPARE_METHODS)
    v = as_vectors(rdms)
    desc = getattr(rdms, "rdm_descriptors", {"index": np.arange(v.shape[0])})
    if rdm_descriptor not in desc:
        raise KeyError(
            f"The RDMs have no rdm descriptor {rdm_descriptor!r}; available: {sorted(desc)}. "
            "Use rdm_descriptor='index' to treat every RDM as a separate subject."
        )
    groups = np.asarray(desc[rdm_descriptor])
    uniq = np.unique(groups)
    if uniq.size < 2:
        raise ValueError(f"A leave-one-out noise ceiling needs at least 2 {rdm_descriptor}s; got {uniq.size}.")
    pooled_all = pool_rdms(v, method)
    lower, upper = [], []
    for g in uniq:
        test = groups == g
        lower.append(np.mean(compare(pool_rdms(v[~test], method), v[test], method=method)))
        upper.append(np.mean(compare(pooled_all, v[test], method=method)))
    return float(np.mean(lower)), float(np.mean(upper))
