"""Group-level (random-effects) inference across subjects: is layer L better than L', model M than M'?

Per-subject scores ``(n_subjects, n_models)`` are the input: one row per subject, one column
per layer or model, all scored on the same stimuli. Subjects are the random effect:

- :func:`sign_flip_test`: permutation test of paired differences (the sign of every
  subject's difference is flipped at random; exact enumeration when ``2**n_subjects`` is
  small); valid for any symmetric distribution of the differences.
- :func:`pairwise_comparisons`: every pair of models, with a sign-flip, t or joint-bootstrap
  test and a named multiple-comparison correction (Holm, Benjamini–Hochberg, max-statistic).
- :func:`joint_bootstrap`: subjects and stimuli resampled together, as rsatoolbox's
  ``bootstrap_sample`` / ``eval_dual_bootstrap`` (Schütt et al. 2023), so that the interval
  generalizes to new subjects **and** new stimuli, with rsatoolbox's correction of the
  double-counted variance.
- :func:`p_best`: probability that each model is the best, under subject (and stimulus)
  resampling.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from .._docs import fill_doc
from .._utils import Bunch, check_option, check_random_state
from ._checks import check_fraction, check_int
from ._multiple import fdr_correction, holm_correction

__all__ = ["joint_bootstrap", "p_best", "pairwise_comparisons", "sign_flip_test"]

_TAILS = ["two-sided", "greater", "less"]
_CORRECTIONS = ["holm", "fdr_bh", "max_stat", "none"]


def _subject_matrix(scores: Any, name: str = "scores") -> tuple[np.ndarray, list]:
    """(n_subjects, n_models) finite float matrix and the model labels."""
    labels = None
    if isinstance(scores, pd.DataFrame):
        labels = [str(c) for c in scores.columns]
        scores = scores.to_numpy(dtype=np.float64)
    S = np.asarray(scores, dtype=np.float64)
    if S.ndim == 1:
        S = S[:, None]
    if S.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_subjects, n_models); got shape {S.shape}.")
    if S.shape[0] < 2:
        raise ValueError(f"Group-level inference needs at least 2 subjects; {name} has {S.shape[0]} row(s).")
    bad = ~np.isfinite(S)
    if bad.any():
        s, m = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} holds {int(bad.sum())} NaN or inf values (first: subject row {s}, model column "
                         f"{m}); every subject needs a score for every model. Drop that subject or model.")
    return S, labels if labels is not None else [str(k) for k in range(S.shape[1])]


def _flip_signs(n: int, n_permutations: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Sign vectors (n_flips, n): all 2**n of them when that is at most n_permutations, else random."""
    if 2**n <= n_permutations:
        codes = np.arange(2**n)[:, None] >> np.arange(n)[None, :] & 1
        return 1.0 - 2.0 * codes, True
    return rng.choice([-1.0, 1.0], size=(n_permutations, n)), False


def _t_from_means(means: np.ndarray, sumsq: np.ndarray, n: int) -> np.ndarray:
    """One-sample t of sign-flipped data from their means (the sum of squares does not change)."""
    var = np.clip(sumsq - n * means**2, 0, None) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var > 0, means / np.sqrt(var / n), np.sign(means) * np.inf)


def _count_extreme(null: np.ndarray, obs: np.ndarray, tail: str, tol: np.ndarray) -> np.ndarray:
    if tail == "greater":
        return (null >= obs - tol).sum(0)
    if tail == "less":
        return (null <= obs + tol).sum(0)
    return (np.abs(null) >= np.abs(obs) - tol).sum(0)


@fill_doc
def sign_flip_test(differences: Any, *, n_permutations: int = 10000, tail: str = "two-sided",
                   random_state: Any = 0) -> Bunch:
    """Sign-flip permutation test that paired differences across subjects are centred on 0.

    Under the null hypothesis every subject's difference (e.g. score of layer L minus score
    of layer L') is as likely to be positive as negative, so flipping the signs of any subset
    of subjects gives an equally likely data set. The statistic is the mean difference (its
    p-value equals that of the one-sample t, a monotone function of it under sign flips).
    When ``2**n_subjects <= n_permutations`` every sign vector is enumerated (an exact test,
    p-value ``#{flips at least as extreme} / 2**n_subjects``, as
    ``scipy.stats.permutation_test(..., permutation_type="samples")``); otherwise random
    flips give ``(1 + #) / (1 + n_permutations)``. The same flips serve every column, so
    the null of the t statistics (``null``) supports a max-statistic correction.

    Parameters
    ----------
    differences : array of shape (n_subjects,) or (n_subjects, n_tests)
    %(n_permutations)s
    tail : {"two-sided", "greater", "less"}
        "greater": the mean difference is positive under the alternative.
    %(random_state)s

    Returns
    -------
    Bunch with ``mean`` and ``statistic`` (one-sample t) of shape (n_tests,), ``pvalues``
    (n_tests,), ``null`` (n_flips, n_tests) t statistics of the flips, and ``exact``.

    Examples
    --------
    >>> d = np.array([0.05, 0.02, 0.04, 0.03, 0.06, 0.01, 0.02, 0.05])
    >>> res = sign_flip_test(d)  # 2**8 = 256 flips, enumerated
    >>> float(res.pvalues[0]), bool(res.exact)
    (0.0078125, True)
    """
    check_option("tail", tail, _TAILS)
    n_permutations = check_int("n_permutations", n_permutations, min_value=1)
    D, _ = _subject_matrix(differences, "differences")
    n = D.shape[0]
    signs, exact = _flip_signs(n, n_permutations, check_random_state(random_state))
    means = signs @ D / n
    obs = D.mean(0)
    tol = 1e-12 * (np.abs(D).max(0) + 1e-300)
    count = _count_extreme(means, obs, tail, tol)
    pvals = count / len(signs) if exact else (1 + count) / (1 + len(signs))
    min_p = (2.0 if tail == "two-sided" else 1.0) / 2**n
    if min_p > 0.05:
        warnings.warn(f"With {n} subjects no sign-flip p-value can be below {min_p:.3g} ({tail}): add subjects.",
                      UserWarning, stacklevel=2)
    sumsq = (D * D).sum(0)
    return Bunch(mean=obs, statistic=_t_from_means(obs, sumsq, n), pvalues=np.minimum(pvals, 1.0),
                 null=_t_from_means(means, sumsq, n), exact=exact)


def _dual_variance(v_both: np.ndarray, v_subj: np.ndarray, v_stim: np.ndarray, n_subj: int, n_stim: int) -> np.ndarray:
    """rsatoolbox's small-sample combination of the three bootstrap variances (Schütt et al. 2023)."""
    a, b = n_subj / (n_subj - 1), n_stim / (n_stim - 1)
    v = a * v_subj + b * v_stim - a * b * (v_both - v_subj - v_stim)
    v = np.maximum(np.maximum(v, a * v_subj), b * v_stim)
    return np.minimum(v, v_both)


def _joint_draws(S: np.ndarray, reps: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """The joint, subject-only and stimulus-only bootstrap distributions (n_resamples, n_models)."""
    n_subj, n_res, _ = reps.shape
    subj = rng.integers(0, n_subj, size=(n_res, n_subj))
    both = reps[subj, np.arange(n_res)[:, None]].mean(1)
    return both, S[subj].mean(1), reps.mean(0)


def _check_replicates(reps: Any, S: np.ndarray, n_stimuli: Any) -> tuple[np.ndarray, int]:
    R = np.asarray(reps, dtype=np.float64)
    if R.ndim != 3 or R.shape[0] != S.shape[0] or R.shape[2] != S.shape[1]:
        raise ValueError(f"stimulus_replicates must have shape (n_subjects={S.shape[0]}, n_resamples, "
                         f"n_models={S.shape[1]}); got {R.shape}.")
    if R.shape[1] < 2:
        raise ValueError(f"stimulus_replicates holds {R.shape[1]} resample(s); the bootstrap needs at least 2.")
    if not np.isfinite(R).all():
        s, k, m = (int(i) for i in np.argwhere(~np.isfinite(R))[0])
        raise ValueError(f"stimulus_replicates holds NaN or inf (first: subject {s}, resample {k}, model {m}); "
                         "drop those resamples for every subject alike.")
    return R, check_int("n_stimuli", n_stimuli, min_value=2)


@fill_doc
def joint_bootstrap(scores: Any, stimulus_replicates: Any, *, n_stimuli: int, ci: float = 0.95,
                    random_state: Any = 0) -> Bunch:
    """Group-mean scores with an interval that generalizes over subjects **and** stimuli.

    In every replicate ``k`` the subjects are resampled with replacement and the stimuli
    are resampled too: ``stimulus_replicates[s, k]`` holds subject ``s``'s scores on the
    ``k``-th stimulus resample, **the same resample for every subject** (e.g.
    :func:`bootstrap_ci` ``.distribution`` computed with one ``random_state`` on the same
    stimulus units), and the replicate is the mean over the drawn subjects — rsatoolbox's
    ``bootstrap_sample`` over RDMs and patterns. Resampling both factors counts the
    measurement noise twice, so the variance is not read off that joint distribution alone:
    the subject-only and stimulus-only bootstraps from the same draws are combined with
    rsatoolbox's small-sample formula (``eval_dual_bootstrap``; Schütt et al. 2023, eLife)::

        V = a V_subj + b V_stim - a b (V_both - V_subj - V_stim),  a = n_s / (n_s - 1), b = n_c / (n_c - 1)

    bounded below by ``a V_subj`` and ``b V_stim`` and above by ``V_both``. The interval is
    ``mean ± t_{dof} sqrt(V)`` with ``dof = min(n_subjects, n_stimuli) - 1``, as rsatoolbox.

    Parameters
    ----------
    scores : array of shape (n_subjects, n_models) or DataFrame
        Each subject's score on all stimuli.
    stimulus_replicates : array of shape (n_subjects, n_resamples, n_models)
    n_stimuli : int
        Number of stimulus resampling units behind the replicates.
    %(ci)s
    %(random_state)s

    Returns
    -------
    Bunch with ``mean``, ``se``, ``ci_low``, ``ci_high`` (n_models,), ``dof`` and
    ``distribution`` (n_resamples, n_models) of the joint bootstrap (uncorrected: too wide).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> scores = 0.3 + 0.05 * rng.standard_normal((8, 2))
    >>> reps = scores[:, None, :] + 0.02 * rng.standard_normal((8, 500, 2))
    >>> res = joint_bootstrap(scores, reps, n_stimuli=40)
    >>> bool(np.all(res.ci_low < res.mean) and np.all(res.mean < res.ci_high))
    True
    """
    from scipy.stats import t as t_dist

    ci = check_fraction("ci", ci)
    S, _ = _subject_matrix(scores)
    R, n_stim = _check_replicates(stimulus_replicates, S, n_stimuli)
    both, subj, stim = _joint_draws(S, R, check_random_state(random_state))
    var = _dual_variance(both.var(0, ddof=1), subj.var(0, ddof=1), stim.var(0, ddof=1), S.shape[0], n_stim)
    dof = min(S.shape[0], n_stim) - 1
    mean, se = S.mean(0), np.sqrt(var)
    half = t_dist.ppf(0.5 + ci / 2, dof) * se
    return Bunch(mean=mean, se=se, ci_low=mean - half, ci_high=mean + half, dof=dof, distribution=both)


def _pvalue_from_t(t: np.ndarray, dof: float, tail: str) -> np.ndarray:
    from scipy.stats import t as t_dist

    if tail == "greater":
        return t_dist.sf(t, dof)
    if tail == "less":
        return t_dist.cdf(t, dof)
    return np.minimum(2 * t_dist.sf(np.abs(t), dof), 1.0)


@fill_doc
def pairwise_comparisons(
    scores: Any,
    *,
    labels: Any = None,
    test: str = "sign_flip",
    correction: str = "holm",
    alpha: float = 0.05,
    tail: str = "two-sided",
    n_permutations: int = 10000,
    stimulus_replicates: Any = None,
    n_stimuli: int | None = None,
    random_state: Any = 0,
) -> pd.DataFrame:
    """Every pair of models (or layers) compared across subjects, with a named correction.

    For each pair ``(a, b)`` the per-subject differences ``scores[:, a] - scores[:, b]`` are
    tested against 0 with subjects as the random effect:

    - ``test="sign_flip"``: :func:`sign_flip_test` (exact when ``2**n_subjects <=
      n_permutations``; assumes differences symmetric under the null);
    - ``test="t"``: the one-sample t-test (``scipy.stats.ttest_1samp``; assumes roughly
      normal differences);
    - ``test="bootstrap"``: the joint subject × stimulus bootstrap (:func:`joint_bootstrap`):
      ``t = difference / sqrt(V)`` against a t distribution with ``min(n_subjects,
      n_stimuli) - 1`` degrees of freedom, as rsatoolbox's pairwise tests; needs
      ``stimulus_replicates`` and ``n_stimuli``; generalizes over stimuli as well.

    and the p-values of all pairs are corrected together:

    - ``"holm"``: Holm's step-down family-wise error control (any dependence);
    - ``"fdr_bh"``: Benjamini–Hochberg false discovery rate;
    - ``"max_stat"``: family-wise error by the maximum |t| over pairs under the same sign
      flips (Nichols & Holmes 2002), whatever ``test`` gave the uncorrected p-values (not
      with ``test="bootstrap"``);
    - ``"none"``.

    Parameters
    ----------
    scores : array of shape (n_subjects, n_models) or DataFrame
        A DataFrame's columns are the labels (one row per subject).
    labels : list of str, optional
        Names of the models; default the DataFrame's columns or ``"0", "1", ...``.
    test : {"sign_flip", "t", "bootstrap"}
    correction : {"holm", "fdr_bh", "max_stat", "none"}
    alpha : float
        Level of the ``reject`` decision.
    tail : {"two-sided", "greater", "less"}
        "greater": ``a`` better than ``b`` under the alternative.
    %(n_permutations)s
    stimulus_replicates : array of shape (n_subjects, n_resamples, n_models), optional
        For ``test="bootstrap"`` (see :func:`joint_bootstrap`).
    n_stimuli : int, optional
        For ``test="bootstrap"``.
    %(random_state)s

    Returns
    -------
    DataFrame with one row per pair ``a < b`` (in column order) and the columns ``a``, ``b``,
    ``mean_a``, ``mean_b``, ``difference`` (mean of a - b), ``statistic`` (t), ``p``,
    ``p_corrected``, ``reject``, ``test``, ``correction``, ``n_subjects``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> scores = rng.normal([0.30, 0.30, 0.40], 0.03, size=(12, 3))
    >>> table = pairwise_comparisons(scores, labels=["l1", "l2", "l3"])
    >>> table[["a", "b", "reject"]].values.tolist()
    [['l1', 'l2', False], ['l1', 'l3', True], ['l2', 'l3', True]]
    """
    from scipy.stats import ttest_1samp

    check_option("test", test, ["sign_flip", "t", "bootstrap"])
    check_option("correction", correction, _CORRECTIONS)
    check_option("tail", tail, _TAILS)
    alpha = check_fraction("alpha", alpha)
    n_permutations = check_int("n_permutations", n_permutations, min_value=1)
    S, names = _subject_matrix(scores)
    if labels is not None:
        names = [str(x) for x in labels]
        if len(names) != S.shape[1]:
            raise ValueError(f"labels has {len(names)} names but scores has {S.shape[1]} columns.")
    if S.shape[1] < 2:
        raise ValueError("pairwise_comparisons needs at least 2 models (columns of scores).")
    ia, ib = np.triu_indices(S.shape[1], k=1)
    D = S[:, ia] - S[:, ib]
    rng = check_random_state(random_state)
    flips = None
    if test == "sign_flip":
        flips = sign_flip_test(D, n_permutations=n_permutations, tail=tail, random_state=rng)
        stat, p = flips.statistic, flips.pvalues
    elif test == "t":
        res = ttest_1samp(D, 0.0, axis=0, alternative=tail)
        stat, p = np.asarray(res.statistic, float), np.asarray(res.pvalue, float)
    else:
        if stimulus_replicates is None or n_stimuli is None:
            raise ValueError("test='bootstrap' needs stimulus_replicates (n_subjects, n_resamples, n_models) and "
                             "n_stimuli; or use test='sign_flip' / 't' (subjects only).")
        if correction == "max_stat":
            raise ValueError("correction='max_stat' needs sign flips; with test='bootstrap' use 'holm' or 'fdr_bh'.")
        R, n_stim = _check_replicates(stimulus_replicates, S, n_stimuli)
        both, subj, stim = _joint_draws(S, R, rng)
        contrast = lambda x: x[:, ia] - x[:, ib]  # noqa: E731
        var = _dual_variance(contrast(both).var(0, ddof=1), contrast(subj).var(0, ddof=1),
                             contrast(stim).var(0, ddof=1), S.shape[0], n_stim)
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = np.where(var > 0, D.mean(0) / np.sqrt(var), np.sign(D.mean(0)) * np.inf)
        p = _pvalue_from_t(stat, min(S.shape[0], n_stim) - 1, tail)
    p = np.where(np.isnan(p), 1.0, p)  # all differences 0: no evidence either way
    if correction == "holm":
        reject, p_corr = holm_correction(p, alpha)
    elif correction == "fdr_bh":
        reject, p_corr = fdr_correction(p, alpha)
    elif correction == "max_stat":
        if flips is None:
            flips = sign_flip_test(D, n_permutations=n_permutations, tail=tail, random_state=rng)
        obs, null = flips.statistic, flips.null
        if tail == "two-sided":
            obs, null = np.abs(obs), np.abs(null)
        elif tail == "less":
            obs, null = -obs, -null
        mx = np.where(np.isnan(null), -np.inf, null).max(1)
        count = (mx[:, None] >= obs[None] - 1e-12 * (1 + np.abs(obs))).sum(0)
        p_corr = count / len(mx) if flips.exact else (1 + count) / (1 + len(mx))
        p_corr = np.where(np.isnan(obs), 1.0, np.minimum(p_corr, 1.0))
        reject = p_corr <= alpha
    else:
        p_corr, reject = p.copy(), p <= alpha
    return pd.DataFrame({
        "a": [names[i] for i in ia], "b": [names[j] for j in ib], "mean_a": S[:, ia].mean(0),
        "mean_b": S[:, ib].mean(0), "difference": D.mean(0), "statistic": stat, "p": p, "p_corrected": p_corr,
        "reject": reject, "test": test, "correction": correction, "n_subjects": S.shape[0],
    })


@fill_doc
def p_best(scores: Any, *, stimulus_replicates: Any = None, n_resamples: int = 1000, random_state: Any = 0) -> np.ndarray:
    """Probability that each model (or layer) has the best group-mean score, under resampling.

    Subjects are drawn with replacement and the model with the highest mean over the drawn
    subjects wins the replicate (ties share it). With ``stimulus_replicates`` the stimuli
    are resampled too (replicate ``k`` uses every drawn subject's ``k``-th stimulus resample,
    as :func:`joint_bootstrap`), so ``p_best`` accounts for both sources of variability.

    Parameters
    ----------
    scores : array of shape (n_subjects, n_models) or DataFrame
    stimulus_replicates : array of shape (n_subjects, n_resamples, n_models), optional
    %(n_resamples)s
        Ignored with ``stimulus_replicates`` (its own number of resamples is used).
    %(random_state)s

    Returns
    -------
    p : array of shape (n_models,)
        Sums to 1.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> scores = rng.normal([0.30, 0.31, 0.40], 0.03, size=(10, 3))
    >>> p_best(scores).round(2).tolist()
    [0.0, 0.0, 1.0]
    """
    S, _ = _subject_matrix(scores)
    rng = check_random_state(random_state)
    n_subj = S.shape[0]
    if stimulus_replicates is None:
        n_resamples = check_int("n_resamples", n_resamples, min_value=1)
        means = S[rng.integers(0, n_subj, size=(n_resamples, n_subj))].mean(1)
    else:
        R = np.asarray(stimulus_replicates, dtype=np.float64)
        if R.ndim != 3 or R.shape[0] != n_subj or R.shape[2] != S.shape[1]:
            raise ValueError(f"stimulus_replicates must have shape (n_subjects={n_subj}, n_resamples, "
                             f"n_models={S.shape[1]}); got {R.shape}.")
        if not np.isfinite(R).all():
            raise ValueError("stimulus_replicates holds NaN or inf; drop those resamples for every subject alike.")
        subj = rng.integers(0, n_subj, size=(R.shape[1], n_subj))
        means = R[subj, np.arange(R.shape[1])[:, None]].mean(1)
    best = means == means.max(1, keepdims=True)
    return (best / best.sum(1, keepdims=True)).mean(0)
