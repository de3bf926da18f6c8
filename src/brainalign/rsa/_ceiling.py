"""The noise ceiling of RDM comparisons (rsatoolbox's ``boot_noise_ceiling`` definition)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._utils import check_option
from ._common import rdm_vectors
from ._compare import COMPARE_METHODS, compare_vectors
from ._ranks import rank_rows

__all__ = ["rdm_ceiling", "pool_rdms", "RDMCeiling"]


class RDMCeiling(NamedTuple):
    """Lower and upper bound of the RDM noise ceiling."""

    lower: float
    upper: float


def pool_rdms(vectors: Any, method: str) -> np.ndarray:
    """The RDM that best represents a group under ``method`` (rsatoolbox's ``pool_rdm``).

    Parameters
    ----------
    vectors : array of shape (n_rdms, n_pairs) or RDMs
    method : str
        A comparison method of :func:`compare`. Cosine: mean of RMS-normalised RDMs; corr:
        mean of z-scored RDMs shifted to a zero minimum; rank methods: mean of the ranks.

    Returns
    -------
    array of shape (1, n_pairs)
        NaN (missing) dissimilarities are left out of each RDM's normalisation and of the
        mean; a pair is NaN in the pooled RDM only when it is NaN in every RDM.

    Examples
    --------
    >>> import numpy as np
    >>> pool_rdms(np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]), "spearman")
    array([[2., 2., 2.]])
    """
    check_option("method", method, COMPARE_METHODS)
    v = rdm_vectors(vectors, "vectors")
    if method in ("cosine", "cosine_cov"):
        v = v / np.sqrt(np.nanmean(v**2, axis=1, keepdims=True))
    elif method in ("corr", "corr_cov"):
        v = v - np.nanmean(v, axis=1, keepdims=True)
        v = v / np.nanstd(v, axis=1, keepdims=True)
    else:  # spearman, rho-a, kendall, tau-b, tau-a: average the ranks
        v = rank_rows(v)
    present = ~np.isnan(v)
    out = np.full((1, v.shape[1]), np.nan)
    some = present.any(0)
    out[0, some] = np.nansum(v[:, some], 0) / present[:, some].sum(0)
    if method in ("corr", "corr_cov"):
        out = out - np.nanmin(out)
    return out


def rdm_ceiling(rdms: Any, *, method: str = "spearman", rdm_descriptor: str = "subject") -> RDMCeiling:
    """Lower and upper bound of the noise ceiling of a group of data RDMs.

    Leave-one-subject-out, as ``rsatoolbox.inference.boot_noise_ceiling`` defines it: the
    lower bound is the mean similarity of each subject's RDMs to the pooled RDM
    (:func:`pool_rdms`) of the *other* subjects, the upper bound their mean similarity to
    the pooled RDM of *all* subjects (the subject's own data included), averaged over
    subjects. Each RDM (e.g. each session) is scored against the other *subjects*, not
    against the subject's other sessions; a model's score (mean similarity to the data
    RDMs) is on the same scale, so ``score / upper`` is its fraction of the ceiling.
    This is the ceiling of RSA scores; the ceilings of per-channel encoding scores are in
    :mod:`brainalign.stats` (``stats.channel_ceiling``).

    Parameters
    ----------
    rdms : rsatoolbox.rdm.RDMs or array of shape (n_rdms, n_pairs)
        Data RDMs, several per subject allowed (e.g. sessions).
    method : str
        A comparison method of :func:`compare`.
    rdm_descriptor : str
        Rdm descriptor that groups RDMs by subject (``"index"``: each RDM on its own).

    Returns
    -------
    RDMCeiling
        A named tuple ``(lower, upper)`` of floats.

    Notes
    -----
    RDMs with missing (NaN) dissimilarities at different pairs are compared on the pairs
    both present (pairwise deletion, with a warning), see :func:`compare`.

    Examples
    --------
    >>> import numpy as np
    >>> from rsatoolbox.rdm import RDMs
    >>> r = RDMs(np.random.default_rng(0).random((4, 45)), rdm_descriptors={"subject": [0, 1, 2, 3]})
    >>> ceiling = rdm_ceiling(r, method="corr")
    >>> bool(ceiling.lower <= ceiling.upper)
    True
    """
    check_option("method", method, COMPARE_METHODS)
    v = rdm_vectors(rdms)
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
        name = f"the RDMs of {rdm_descriptor} {g!r}"
        lower.append(np.mean(compare_vectors(pool_rdms(v[~test], method), v[test], method=method,
                                             names=(f"the pooled RDM of the other {rdm_descriptor}s", name))))
        upper.append(np.mean(compare_vectors(pooled_all, v[test], method=method,
                                             names=("the pooled RDM of all RDMs", name))))
    return RDMCeiling(float(np.mean(lower)), float(np.mean(upper)))
