"""Bootstrap inference for RSA: CIs per model / layer and paired model-vs-model tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._docs import fill_doc
from .._utils import Bunch, check_option, check_random_state, progress_bar
from ._common import n_cond_from_pairs
from ._compare import aligned_vectors, compare_vectors

__all__ = ["bootstrap", "bootstrap_pairs", "take_pairs", "MIN_BOOTSTRAP_CONDITIONS"]

#: Fewest conditions a bootstrap over conditions accepts: with 3, every resample either
#: repeats the original RDM or keeps fewer than 3 distinct pairs (dropped), so the spread is
#: 0; with 4, the resamples are 3-pair sub-RDMs whose rank correlations take 4 values.
MIN_BOOTSTRAP_CONDITIONS = 5


def bootstrap_pairs(n_cond: int, sample: np.ndarray) -> np.ndarray:
    """Indices into the original dissimilarity vector for a bootstrap sample of conditions.

    The sample is sorted (as rsatoolbox's ``subsample_pattern``). Pairs of a condition with
    a copy of itself get index -1: they become NaN (missing) in :func:`take_pairs` and are
    excluded from comparisons, not counted as zero dissimilarity (rsatoolbox's convention).

    Returns
    -------
    array of int of shape (n_sample * (n_sample - 1) / 2,)
    """
    sel = np.sort(np.asarray(sample))
    a, b = np.triu_indices(sel.size, 1)
    i, j = sel[a], sel[b]
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    idx = lo * n_cond - lo * (lo + 1) // 2 + (hi - lo - 1)
    idx[i == j] = -1
    return idx


def take_pairs(vectors: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Dissimilarity vectors of a bootstrap sample (NaN at self-pairs), see :func:`bootstrap_pairs`."""
    out = vectors[:, np.maximum(idx, 0)]
    out[:, idx < 0] = np.nan
    return out


def _names(rdms: Any, n: int, prefix: str) -> list:
    desc = getattr(rdms, "rdm_descriptors", {})
    for key in ("layer", "model", "name", "roi"):
        if key in desc and len(set(map(str, desc[key]))) == n:
            return [str(x) for x in desc[key]]
    return [f"{prefix}{k}" for k in range(n)]


@fill_doc
def bootstrap(model_rdms: Any, data_rdms: Any, *, method: str = "spearman", n_resamples: int = 1000,
              resample: str = "stimuli", rdm_descriptor: str = "subject", ci: float = 0.95,
              random_state: int | None = None, verbose: bool = False) -> Bunch:
    """Bootstrap CIs of RSA scores and paired model-vs-model tests.

    The score of a model is its mean similarity to the data RDMs. Each bootstrap sample
    draws stimuli and/or subjects with replacement; every model is scored on the *same*
    sample, so differences between models are paired.

    Parameters
    ----------
    model_rdms : rsatoolbox.rdm.RDMs or array, n_models RDMs (e.g. one per layer)
        When both arguments are ``RDMs`` sharing a condition label (pattern descriptor, e.g.
        ``stimulus_id``), the models are reordered to the conditions of the data.
    data_rdms : rsatoolbox.rdm.RDMs or array, n_data RDMs
    method : str
        Comparison method (:func:`compare`).
    %(n_resamples)s
    resample : {"stimuli", "subjects", "both"}
        Stimuli: duplicated stimuli contribute no self-pairs (rsatoolbox's convention); needs
        at least 5 conditions. Subjects: whole groups of data RDMs sharing
        ``rdm_descriptor`` are drawn; needs at least 2 subjects.
    rdm_descriptor : str
        Rdm descriptor of ``data_rdms`` that names the subject ("index": each RDM).
    ci : float
        Coverage of the percentile intervals.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    Bunch
        ``scores``: DataFrame (model, score, se, ci_low, ci_high); ``paired``: DataFrame
        (model_a, model_b, difference, ci_low, ci_high, p) with a two-sided bootstrap p;
        ``samples``: array of shape (n_resamples, n_models).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> res = bootstrap(rng.random((2, 45)), rng.random((3, 45)), n_resamples=20, random_state=0)
    >>> list(res.scores.columns)
    ['model', 'score', 'se', 'ci_low', 'ci_high']
    """
    check_option("resample", resample, ["stimuli", "subjects", "both"])
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1); got {ci}.")
    if n_resamples < 2:
        raise ValueError(f"n_resamples must be at least 2; got {n_resamples}.")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)):
        raise TypeError(f"n_resamples must be an int; got {type(n_resamples).__name__} {n_resamples!r}.")
    vd, vm = aligned_vectors(data_rdms, model_rdms, names=("data_rdms", "model_rdms"))
    n_cond = n_cond_from_pairs(vd.shape[1])
    if resample in ("stimuli", "both") and n_cond < MIN_BOOTSTRAP_CONDITIONS:
        raise ValueError(
            f"A bootstrap over conditions needs at least {MIN_BOOTSTRAP_CONDITIONS} conditions; the RDMs have "
            f"{n_cond}. With so few, every resample either repeats the original RDM or keeps fewer than 3 "
            "distinct pairs, so the standard error would be 0 and the interval of zero width. Use "
            "resample='subjects' (several subjects), or more conditions."
        )
    if resample != "stimuli":
        desc = getattr(data_rdms, "rdm_descriptors", {})
        if rdm_descriptor == "index" or rdm_descriptor not in desc:
            if rdm_descriptor != "index" and desc:
                raise KeyError(f"data_rdms have no rdm descriptor {rdm_descriptor!r}; available: {sorted(desc)}.")
            groups = np.arange(vd.shape[0])
        else:
            groups = np.asarray(desc[rdm_descriptor])
        uniq = np.unique(groups)
        if uniq.size < 2:
            raise ValueError(
                f"A bootstrap over subjects needs at least 2 {rdm_descriptor}s in data_rdms; got {uniq.size}. "
                "Use resample='stimuli'."
            )
        members = [np.flatnonzero(groups == g) for g in uniq]
    rng = check_random_state(random_state)
    names = ("model_rdms", "data_rdms")
    samples = np.empty((n_resamples, vm.shape[0]))
    for b in progress_bar(range(n_resamples), verbose=verbose, total=n_resamples, desc="bootstrap"):
        rows = np.arange(vd.shape[0])
        if resample in ("subjects", "both"):
            pick = rng.integers(0, len(members), len(members))
            rows = np.concatenate([members[p] for p in pick])
        if resample in ("stimuli", "both"):
            idx = bootstrap_pairs(n_cond, rng.integers(0, n_cond, n_cond))
            if (idx >= 0).sum() < 3:
                samples[b] = np.nan
                continue
            samples[b] = compare_vectors(take_pairs(vm, idx), take_pairs(vd[rows], idx), method=method,
                                         names=names).mean(1)
        else:
            samples[b] = compare_vectors(vm, vd[rows], method=method, names=names).mean(1)
    point = compare_vectors(vm, vd, method=method, names=names).mean(1)
    alpha = (1 - ci) / 2
    names = _names(model_rdms, vm.shape[0], "model")
    lo, hi = np.nanquantile(samples, [alpha, 1 - alpha], axis=0)
    scores = pd.DataFrame({"model": names, "score": point, "se": np.nanstd(samples, axis=0, ddof=1),
                           "ci_low": lo, "ci_high": hi})
    pairs = []
    for i in range(vm.shape[0]):
        for j in range(i + 1, vm.shape[0]):
            d = samples[:, i] - samples[:, j]
            d = d[np.isfinite(d)]
            p = min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean()))
            qlo, qhi = np.quantile(d, [alpha, 1 - alpha])
            pairs.append({"model_a": names[i], "model_b": names[j], "difference": point[i] - point[j],
                          "ci_low": qlo, "ci_high": qhi, "p": p})
    paired = pd.DataFrame(pairs, columns=["model_a", "model_b", "difference", "ci_low", "ci_high", "p"])
    return Bunch(scores=scores, paired=paired, samples=samples)
