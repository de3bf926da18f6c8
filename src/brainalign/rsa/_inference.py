"""Bootstrap inference for RSA: CIs per model / layer and paired model-vs-model tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._docs import fill_doc
from .._utils import Bunch, check_option, check_random_state, progress_bar
from ._common import as_vectors, n_cond_from_pairs
from ._compare import compare

__all__ = ["bootstrap", "bootstrap_pairs", "take_pairs"]


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
    data_rdms : rsatoolbox.rdm.RDMs or array, n_data RDMs
    method : str
        Comparison method (:func:`compare`).
    %(n_resamples)s
    resample : {"stimuli", "subjects", "both"}
        Stimuli: duplicated stimuli contribute no self-pairs (rsatoolbox's convention).
        Subjects: whole groups of data RDMs sharing ``rdm_descriptor`` are drawn.
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
    vm, vd = as_vectors(model_rdms, "model_rdms"), as_vectors(data_rdms, "data_rdms")
    if vm.shape[1] != vd.shape[1]:
        raise ValueError(f"Models have {vm.shape[1]} pairs, data {vd.shape[1]}; they must share conditions.")
    n_cond = n_cond_from_pairs(vd.shape[1])
    if resample != "stimuli":
        desc = getattr(data_rdms, "rdm_descriptors", {})
        if rdm_descriptor == "index" or rdm_descriptor not in desc:
            if rdm_descriptor != "index" and desc:
                raise KeyError(f"data_rdms have no rdm descriptor {rdm_descriptor!r}; available: {sorted(desc)}.")
            groups = np.arange(vd.shape[0])
        else:
            groups = np.asarray(desc[rdm_descriptor])
        uniq = np.unique(groups)
        members = [np.flatnonzero(groups == g) for g in uniq]
    rng = check_random_state(random_state)
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
            samples[b] = compare(take_pairs(vm, idx), take_pairs(vd[rows], idx), method=method).mean(1)
        else:
            samples[b] = compare(vm, vd[rows], method=method).mean(1)
    point = compare(vm, vd, method=method).mean(1)
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
