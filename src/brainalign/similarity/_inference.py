"""Noise ceiling, bootstrap and permutation test for every similarity measure.

All three work on the higher-is-better score scale of :func:`to_score`, so a distance and a
similarity read the same way: a larger score is better, ``p`` is the chance of a score at
least as high under relabelled stimuli, and ``p_best`` can be read off the paired bootstrap
samples (every pair is scored on the same resampled stimuli).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._docs import fill_doc
from .._utils import Bunch, check_random_state, progress_bar
from . import _knn, _rsa
from ._api import _inputs, _methods, _run, compare, resolve_params
from ._registry import get_measure, to_score

__all__ = ["split_half_ceiling", "bootstrap", "permutation_test"]


# ------------------------------------------------------------------------------ ceiling
def _repeat_stack(data: Any, stimulus_ids: Any) -> list[np.ndarray]:
    """Per stimulus, the array of its repeats (n_rep_i, n_features)."""
    from .._backend import to_numpy

    arr = np.asarray(to_numpy(data), dtype=np.float64)
    if stimulus_ids is None:
        if arr.ndim != 3:
            raise ValueError(f"data must have shape (n_repeats, n_stimuli, n_features), or be 2-D (n_samples, "
                             f"n_features) with stimulus_ids; got shape {arr.shape}.")
        if arr.shape[0] < 2:
            raise ValueError(f"data has a single repeat (shape {arr.shape}); a split-half ceiling needs at least 2.")
        return [arr[:, i] for i in range(arr.shape[1])]
    if arr.ndim != 2:
        raise ValueError(f"With stimulus_ids, data must be 2-D (n_samples, n_features); got shape {arr.shape}.")
    ids = np.asarray(stimulus_ids)
    if ids.shape != (arr.shape[0],):
        raise ValueError(f"stimulus_ids has {ids.size} labels but data has {arr.shape[0]} samples.")
    import pandas as pd

    codes, uniq = pd.factorize(ids)
    groups = [arr[codes == k] for k in range(len(uniq))]
    kept = [g for g in groups if len(g) >= 2]
    if len(kept) < len(groups):
        warnings.warn(f"{len(groups) - len(kept)} of {len(groups)} stimuli are shown once and are left out of the "
                      "split-half ceiling.", stacklevel=3)
    if not kept:
        raise ValueError("No stimulus is repeated: a split-half ceiling needs at least 2 presentations per stimulus.")
    return kept


@fill_doc
def split_half_ceiling(data: Any, stimulus_ids: Any = None, *, method: str = "cka", n_splits: int = 20,
                  spearman_brown: bool = False, random_state: Any = 0, device: Any = "auto",
                  dtype: Any = "float64", verbose: bool = False, **params: Any) -> Bunch:
    """Split-half noise ceiling of a similarity measure from repeated responses.

    For each of ``n_splits`` random splits, the repetitions of every stimulus are divided into
    two halves; the measure compares the two halves (their means; the repeats themselves for
    the stochastic measures), and the scores (:func:`to_score`) are averaged over splits. This
    is the score two noisy measurements of the *same* representation reach, the best a model
    can expect against data this noisy. Each half holds half the repeats, so this ceiling is
    conservative (lower) for data averaged over all repeats; ``spearman_brown`` extrapolates it
    to the full data with ``2c / (1 + c)``, which is exact for correlation-type scores only.

    Parameters
    ----------
    data : array of shape (n_repeats, n_stimuli, n_features), or (n_samples, n_features) with stimulus_ids
    stimulus_ids : array of shape (n_samples,), optional
        Stimulus of every sample (stimuli shown once are left out, with a warning).
    method : str
        A name of :data:`MEASURES`.
    n_splits : int
    spearman_brown : bool
        Only for measures whose score is bounded by 1 (``to_score`` of a correlation-like value).
    %(random_state)s
    device, dtype, **params
        As in :func:`compare`.
    %(verbose)s

    Returns
    -------
    Bunch with ``ceiling`` (mean score over splits, Spearman–Brown corrected if asked),
    ``scores`` (n_splits,) and ``raw`` (n_splits,) raw values.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.standard_normal((1, 60, 10))
    >>> reps = signal + 0.3 * rng.standard_normal((4, 60, 10))
    >>> c = split_half_ceiling(reps, method="cka", n_splits=5, device="cpu")
    >>> bool(0.8 < c.ceiling <= 1)
    True
    """
    m = get_measure(method)
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) or n_splits < 1:
        raise ValueError(f"n_splits must be a positive integer; got {n_splits!r}.")
    if spearman_brown and (not m.bounded_score or m.score_range[1] != 1.0):
        raise ValueError(f"spearman_brown=True needs a correlation-like score bounded by 1; {m.name!r} has scores "
                         f"in {m.score_range}. Leave spearman_brown=False.")
    groups = _repeat_stack(data, stimulus_ids)
    stochastic = "repeats" in m.needs
    if stochastic and min(len(g) for g in groups) < 4:
        raise ValueError(f"{m.name!r} compares the repeats of each half, so every stimulus needs at least 4 repeats "
                         f"(2 per half); the fewest here is {min(len(g) for g in groups)}.")
    rng = check_random_state(random_state)
    values = np.empty(int(n_splits))
    for s in progress_bar(range(int(n_splits)), verbose=verbose, desc="split halves"):
        halves = ([], [])
        for g in groups:
            order = rng.permutation(len(g))
            h = len(g) // 2
            for half, sel in zip(halves, (order[:h], order[h:2 * h] if stochastic else order[h:])):
                half.append(g[sel] if stochastic else g[sel].mean(0))
        if stochastic:
            y1, y2 = np.stack(halves[0], axis=1), np.stack(halves[1], axis=1)
        else:
            y1, y2 = np.stack(halves[0]), np.stack(halves[1])
        values[s] = compare(y1, y2, method=m.name, device=device, dtype=dtype, **params)
    scores = np.asarray(to_score(values, m), dtype=np.float64)
    c = float(np.mean(scores))
    if spearman_brown:
        c = 2 * c / (1 + c)
    return Bunch(ceiling=c, scores=scores, raw=values)


# ----------------------------------------------------------------------- resampling core
def _prepare(X: Any, Y: Any, method: str, params: dict, device: Any, dtype: Any):
    if isinstance(method, (list, tuple)):
        raise ValueError("bootstrap / permutation_test take one method at a time; loop over the methods.")
    (m,), _ = _methods(method)
    p = resolve_params(m, params)
    A, B, _, _, single_a, single_b, _ = _inputs(X, Y, [m], device, dtype)
    return m, p, A, B, single_a and single_b


def _rsa_vectors(m, p, reps):
    kw = {k: p[k] for k in ("rdm_method",)}
    if m.family == "trsa":
        kw.update(topological=True, low=p["low"], up=p["up"], geodesic=p["geodesic"])
    return _rsa.vectors(reps, **kw)


def _shape_out(arr: np.ndarray, single: bool):
    if single:
        return float(arr.reshape(-1)[0]) if arr.ndim == 2 else arr.reshape(arr.shape[0])
    return arr


def _score_grid(m, p, A, B, *, rows=None, perm=None):
    """Raw values of every pair for bootstrap rows ``rows`` of both sides, or B relabelled by ``perm``."""
    if m.family in ("rsa", "trsa"):
        va, vb = _rsa_vectors(m, p, A), _rsa_vectors(m, p, B)
        if rows is not None:
            va, vb = _rsa.bootstrap_vectors(va, rows), _rsa.bootstrap_vectors(vb, rows)
        if perm is not None:
            vb = _rsa.permute_vectors(vb, perm)
        return _rsa.compare_vectors(va, vb, p["compare"])
    if rows is None and perm is None:
        return _run(m, A, B, False, p)
    if rows is not None:
        A2, B2 = [r.take(rows) for r in A], [r.take(rows) for r in B]
        return _run(m, A2, B2, False, p, groups=rows)
    B2 = [r.take(perm) for r in B]
    if m.family == "knn":  # relabel the cached neighbour lists instead of recomputing them
        import torch

        inv = np.empty_like(perm)
        inv[perm] = np.arange(len(perm))
        for src, dst in zip(B, B2):
            nb = _knn.neighbours(src, _knn.check_k(p["k"], src.n), p["metric"])
            t_perm, t_inv = src.to(perm), src.to(inv)
            dst._cache[("knn", p["k"], p["metric"], None)] = torch.sort(t_inv[nb[t_perm]], dim=1).values
    return _run(m, A, B2, False, p)


@fill_doc
def bootstrap(X: Any, Y: Any, *, method: str = "cka", n_resamples: int = 1000, ci: float = 0.95,
              random_state: Any = 0, device: Any = "auto", dtype: Any = "float64", verbose: bool = False,
              **params: Any) -> Bunch:
    """Bootstrap over stimuli: confidence intervals of the score of every pair, paired across pairs.

    Each replicate draws ``n_stimuli`` stimuli with replacement and recomputes the measure on
    the same draw for every pair (so differences between layers are paired: ``p_best`` is the
    fraction of replicates where a layer scores highest). Duplicated stimuli are handled as
    each measure needs: for RSA / tRSA the pairs of a stimulus with its own copy are missing
    (``brainalign.rsa.bootstrap_pairs``), for the kNN measures copies are never each other's
    neighbours, and the linear unbiased / Lange CKA estimators leave the pairs of copies out like
    the diagonal (without this their bootstrap distribution sits above the estimate); the other
    measures treat copies as weighted samples. The biased (Gretton) CKA, and RBF CKA with any
    estimator, grow with the number of features per distinct stimulus, so their bootstrap
    distributions sit above the estimate when features are not few: use the linear
    ``cka-hsic_song`` for intervals.

    Parameters
    ----------
    X, Y : array of shape (n_stimuli, n_features), or lists / dicts of them (as :func:`pairwise`)
    method : str
    %(n_resamples)s
    %(ci)s
    %(random_state)s
    device, dtype, **params
        As in :func:`compare`.
    %(verbose)s

    Returns
    -------
    Bunch with ``score`` and ``value`` (observed score and raw value), ``ci_low`` / ``ci_high``
    (score scale), ``se`` and ``samples`` (n_resamples, n_a, n_b) of scores — floats and
    (n_resamples,) when X and Y are single matrices. Replicates where the measure is undefined
    (e.g. too few distinct stimuli for CCA) are NaN, with a warning.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((80, 5)); Y = X + rng.standard_normal((80, 5))
    >>> res = bootstrap(X, Y, method="cka", n_resamples=50, device="cpu")
    >>> bool(res.ci_low <= res.score <= res.ci_high)
    True
    """
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1); got {ci}.")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 2:
        raise ValueError(f"n_resamples must be an integer >= 2; got {n_resamples!r}.")
    m, p, A, B, single = _prepare(X, Y, method, params, device, dtype)
    value = _score_grid(m, p, A, B)
    rng = check_random_state(random_state)
    n = A[0].n
    samples = np.full((int(n_resamples), len(A), len(B)), np.nan)
    failures = []
    for b in progress_bar(range(int(n_resamples)), verbose=verbose, desc="bootstrap"):
        rows = rng.integers(0, n, n)
        try:
            samples[b] = to_score(_score_grid(m, p, A, B, rows=rows), m)
        except ValueError as err:
            failures.append(str(err))
    if failures:
        warnings.warn(f"{len(failures)} of {n_resamples} bootstrap replicates are undefined for {m.name!r} and are "
                      f"NaN; the first said: {failures[0]}", stacklevel=2)
    alpha = (1 - ci) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanquantile(samples, [alpha, 1 - alpha], axis=0)
        se = np.nanstd(samples, axis=0, ddof=1)
    score = np.asarray(to_score(value, m))
    return Bunch(score=_shape_out(score, single), value=_shape_out(value, single), ci_low=_shape_out(lo, single),
                 ci_high=_shape_out(hi, single), se=_shape_out(se, single),
                 samples=samples.reshape(len(samples)) if single else samples)


@fill_doc
def permutation_test(X: Any, Y: Any, *, method: str = "cka", n_permutations: int = 1000, random_state: Any = 0,
                     device: Any = "auto", dtype: Any = "float64", verbose: bool = False, **params: Any) -> Bunch:
    """Permutation test over stimulus labels: is the score higher than when stimuli are mismatched?

    The rows (stimuli) of ``Y`` are shuffled ``n_permutations`` times and every pair is scored
    again; the same permutations serve every pair. One-sided p-value on the score scale
    (:func:`to_score`): ``(1 + #{null >= observed}) / (1 + n_permutations)``.

    Parameters
    ----------
    X, Y : array of shape (n_stimuli, n_features), or lists / dicts of them (as :func:`pairwise`)
    method : str
    %(n_permutations)s
    %(random_state)s
    device, dtype, **params
        As in :func:`compare`.
    %(verbose)s

    Returns
    -------
    Bunch with ``score``, ``value`` (observed), ``pvalue`` and ``null`` (n_permutations, n_a, n_b)
    scores — a float and (n_permutations,) when X and Y are single matrices.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 5)); Y = X + rng.standard_normal((60, 5))
    >>> permutation_test(X, Y, method="cka", n_permutations=99, device="cpu").pvalue
    0.01
    """
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) or n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive integer; got {n_permutations!r}.")
    m, p, A, B, single = _prepare(X, Y, method, params, device, dtype)
    value = _score_grid(m, p, A, B)
    score = np.asarray(to_score(value, m))
    rng = check_random_state(random_state)
    n = A[0].n
    null = np.empty((int(n_permutations), len(A), len(B)))
    for k in progress_bar(range(int(n_permutations)), verbose=verbose, desc="permutations"):
        null[k] = to_score(_score_grid(m, p, A, B, perm=rng.permutation(n)), m)
    pvalue = (1 + (null >= score[None] - 1e-12 * np.abs(score[None])).sum(0)) / (1 + int(n_permutations))
    return Bunch(score=_shape_out(score, single), value=_shape_out(value, single), pvalue=_shape_out(pvalue, single),
                 null=null.reshape(len(null)) if single else null)

