"""The tidy results table and what is read off it: best layer per ROI, preferred depth."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .._docs import fill_doc
from .._utils import as_list, check_option, check_random_state

#: Columns of the tidy table returned by :func:`brainalign.alignment.sweep`, in order.
#: ``ceiling_low`` (lower noise-ceiling bound, RSA) and ``p_best`` (bootstrap probability
#: that the row's layer is the best of its model for this subject/ROI/method) follow them.
RESULT_COLUMNS = [
    "model", "layer", "layer_index", "layer_depth", "subject", "roi", "method", "metric",
    "score", "ceiling", "normalized_score", "ci_low", "ci_high", "p",
]
#: Columns of the rows of the similarity measures (sweep methods named after the keys of
#: ``brainalign.similarity.MEASURES``; ``metric`` is the measure's name). ``score`` is always
#: higher-is-better: ``score = brainalign.similarity.to_score(raw_score)``.
#:
#: - ``raw_score``: the measure's own value (a distance stays a distance);
#: - ``raw_kind``: ``"similarity"`` (higher raw = more alike) or ``"distance"`` (lower raw = more alike);
#: - ``score_transform``: how ``score`` is made from ``raw_score``: ``"identity"`` (similarities),
#:   ``"cos"`` (angular distances: the cosine of the angle) or ``"negative"`` (unbounded distances:
#:   ``-raw_score``; such scores have no ceiling ratio, ``normalized_score`` is NaN).
SIMILARITY_COLUMNS = ["raw_score", "raw_kind", "score_transform"]
EXTRA_COLUMNS = ["ceiling_low", "p_best", *SIMILARITY_COLUMNS, "n_conditions", "n_channels"]

#: The columns that naturalistic encoding adds (``methods`` "encoding", "banded" and "trf"; absent
#: or NaN in the rows of other methods), in table order. The one definition of their meaning:
#: the README and docs/recipes.md describe them from here.
STORY_COLUMNS = {
    "control": "the baseline the row's model is: 'random_weights' (the same architecture with random "
               "weights, reading the same words) or 'shuffled_words' (the model's features with the words "
               "shuffled within each story); empty for the model itself. Its model name is "
               "'<model>[<control>]'.",
    "bands": "method 'banded': the feature spaces fitted together by banded ridge, '+'-joined, the row's "
             "layer first (e.g. 'layer.3+word_rate').",
    "r2_joint": "method 'banded': held-out R² of the joint (banded) model, mean over the ROI's channels.",
    "r2_layer": "method 'banded': held-out R² of the row's layer alone (ridge, the same folds).",
    "r2_others": "method 'banded': held-out R² of the other bands alone (banded ridge, the same folds).",
    "unique_variance": "method 'banded': variance explained by the layer beyond the other bands, "
                       "r2_joint - r2_others (also the row's score).",
    "shared_variance": "method 'banded': variance the layer shares with the other bands, "
                       "r2_layer + r2_others - r2_joint.",
    "lag_window": "method 'trf': the lags of the TRF that produced the score, 'tmin..tmax s' (the full range, "
                  "and each of lag_windows fitted alone).",
    "lag_min": "method 'trf': first lag of the window (s).",
    "lag_max": "method 'trf': last lag of the window (s).",
    "test_runs": "encoding, banded, trf: the held-out test runs / stories when one test set was named "
                 "(test_runs=), '+'-joined; empty when the scores average whole-story folds.",
    "n_folds": "number of outer folds the score averages.",
}


_FLOAT_COLUMNS = ["layer_depth", "score", "ceiling", "normalized_score", "ci_low", "ci_high", "p", "ceiling_low",
                  "p_best", "raw_score", "r2_joint", "r2_layer", "r2_others", "unique_variance", "shared_variance",
                  "lag_min", "lag_max"]
_INT_COLUMNS = ["layer_index", "n_conditions", "n_channels", "n_folds"]


def tidy(rows: Sequence[dict] | pd.DataFrame) -> pd.DataFrame:
    """Rows -> DataFrame with RESULT_COLUMNS first (missing ones as NaN), then the extras.

    The numeric columns get one dtype whatever the rows hold (float64 for scores, CIs,
    p-values and depths, with NaN for a missing value; int64 for counts and layer
    indices), so that a table read back from the sweep cache equals the computed one.
    """
    df = pd.DataFrame(list(rows) if not isinstance(rows, pd.DataFrame) else rows)
    for col in RESULT_COLUMNS:
        if col not in df:
            df[col] = np.nan
    for col in _FLOAT_COLUMNS:
        if col in df:
            df[col] = pd.to_numeric(df[col].astype(object).where(df[col].notna(), np.nan),
                                    errors="coerce").astype("float64")
    for col in _INT_COLUMNS:
        if col in df and df[col].notna().all() and len(df):
            df[col] = df[col].astype("int64")
    extras = [c for c in df.columns if c not in RESULT_COLUMNS]
    known = EXTRA_COLUMNS + list(STORY_COLUMNS)
    order = RESULT_COLUMNS + [c for c in known if c in extras] + [c for c in extras if c not in known]
    return df[order].reset_index(drop=True)


def _frozen(values: Any) -> np.ndarray:
    """A read-only float64 copy."""
    arr = np.array(values, dtype=np.float64)
    arr.setflags(write=False)
    return arr


class SweepUnits(Mapping):
    """A read-only mapping over the units of a sweep (``"...|subject|roi" -> value``), shared
    rather than copied when pandas copies a table's ``attrs`` (every filter of the table would
    otherwise copy the arrays). Subclasses say what a value is (``_value``) and name it."""

    _what = "values"
    _key_form = "model|subject|roi"

    def __init__(self, items: dict | None = None) -> None:
        self._items = {str(key): self._value(value) for key, value in (items or {}).items()}

    @staticmethod
    def _value(value: Any) -> Any:
        return value

    def __getitem__(self, key: str) -> Any:
        try:
            return self._items[key]
        except KeyError:
            keys = sorted(self._items)
            raise KeyError(f"No {self._what} for {key!r}; keys are '{self._key_form}': "
                           f"{keys[:6]}{' ...' if len(keys) > 6 else ''}.") from None

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __deepcopy__(self, memo: dict) -> "SweepUnits":
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} units: {list(self._items)[:4]}{' ...' if len(self) > 4 else ''})"


class VoxelScores(SweepUnits):
    """Per-channel encoding scores of a sweep: ``"model|subject|roi" -> array (n_layers, n_channels)``.

    Read-only, and shared rather than copied when pandas copies a table's ``attrs``.
    """

    _what = "voxel scores"
    _value = staticmethod(_frozen)


def voxel_scores(results: pd.DataFrame, *, model: str | None = None, subject: str | None = None,
                 roi: str | None = None, method: str = "encoding") -> Any:
    """The per-channel encoding scores that :func:`sweep` kept with its table.

    Parameters
    ----------
    results : DataFrame
        The table returned by :func:`sweep` (its ``attrs["voxel_scores"]``).
    model, subject, roi : str, optional
        Give all three for one array; otherwise the whole mapping is returned.
    method : {"encoding", "banded", "trf"}
        Whose scores (with model, subject and roi): the held-out r of each layer
        (``encoding``; ``trf`` over its full lag range) or each layer's unique variance
        (``banded``).

    Returns
    -------
    VoxelScores mapping ``"model|subject|roi" -> array (n_layers, n_channels)`` (held-out r
    of every layer of the model for every channel of the ROI, in layer order; the keys of
    the other methods end in ``|banded`` / ``|trf``), or one such array.

    Examples
    --------
    >>> scores = voxel_scores(table, model="minilm", subject="sub-01", roi="all")  # doctest: +SKIP
    >>> best_layer_per_voxel = scores.argmax(axis=0)  # doctest: +SKIP
    """
    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"voxel_scores needs the DataFrame returned by sweep(), got {type(results).__name__}.")
    scores = results.attrs.get("voxel_scores")
    if scores is None:
        raise ValueError("This table holds no voxel scores: they are kept by sweep() in table.attrs['voxel_scores'] "
                         "for encoding units (a table read from a CSV file does not have them).")
    if model is None and subject is None and roi is None:
        return scores
    if None in (model, subject, roi):
        raise ValueError("Give model=, subject= and roi= together (or none of them for the whole mapping).")
    return scores[f"{model}|{subject}|{roi}" + ("" if method == "encoding" else f"|{method}")]


def check_results(results: Any, needed: Sequence[str], what: str) -> pd.DataFrame:
    """``results`` if it is a non-empty sweep table with the ``needed`` columns, else a clear error.

    Parameters
    ----------
    results : DataFrame
    needed : sequence of str
        Columns the caller reads.
    what : str
        The caller's name, for the message.

    Returns
    -------
    DataFrame
        ``results`` itself.
    """
    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"{what} needs the DataFrame returned by sweep(), got {type(results).__name__}.")
    missing = [c for c in needed if c not in results.columns]
    if missing:
        raise ValueError(f"{what} needs the columns {missing}; the table has {list(results.columns)}.")
    if results.empty:
        raise ValueError(f"{what} got an empty results table.")
    return results


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: Sequence[float]) -> list[float]:
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cw = np.cumsum(w) / w.sum()
    return [float(v[min(np.searchsorted(cw, q - 1e-12), len(v) - 1)]) for q in qs]


@fill_doc
def assign_layers(results: pd.DataFrame, *, by: Sequence[str] = ("model", "subject", "roi", "method"),
                  score: str = "score", n_resamples: int = 1000, ci: float = 0.95, random_state: int | None = 0) -> pd.DataFrame:
    """The best layer for every ROI, with bootstrap uncertainty on which layer it is.

    Within each group of ``by`` the candidates are the table's (model, layer) rows; the
    best is the one with the highest ``score``. Its uncertainty is the distribution of the
    best layer over bootstrap replicates:

    * per subject, the ``p_best`` column written by :func:`sweep` (the replicates
      resample stimuli, paired across layers); when it is missing, or when ``by`` mixes
      models, scores are drawn from normals matched to each row's CI;
    * across subjects (rows with ``subject="all"``, added when ``"subject"`` is in ``by``
      and there are several subjects): :func:`brainalign.stats.p_best` of the subjects x
      candidates scores (subjects resampled with replacement, the best subject-mean wins;
      subjects *and* stimuli resampled when the sweep kept per-subject stimulus replicates
      drawn on the same stimuli, as for the similarity measures; subjects without a score for
      every candidate are left out). Pairwise tests across subjects:
      :func:`brainalign.alignment.compare_layers`.

    Parameters
    ----------
    results : DataFrame
        The tidy table of :func:`sweep`.
    by : sequence of str
        Columns that define a group; leave out ``"model"`` to pick the best (model, layer)
        pair across models.
    score : {"score", "normalized_score"}
    %(n_resamples)s
        Used for the subject resampling and the normal-draw fallback.
    %(ci)s
        Used for the interval on the best layer's depth.
    %(random_state)s

    Returns
    -------
    DataFrame
        One row per group: the ``by`` columns, ``best_model`` (when ``model`` is not in
        ``by``), ``best_layer``, ``best_layer_index``, ``best_layer_depth``, ``score``,
        ``normalized_score``, ``ci_low``, ``ci_high``, ``p``, ``p_best`` (probability that the
        best layer is best), ``depth_ci_low``, ``depth_ci_high``, ``preferred_depth``,
        ``n_subjects``.

    Examples
    --------
    >>> best = assign_layers(table)  # doctest: +SKIP
    >>> best[["roi", "best_layer", "p_best"]]  # doctest: +SKIP
    """
    df = check_results(results, ["model", "layer", "layer_depth", "roi", "score"], "assign_layers")
    check_option("score", score, ["score", "normalized_score"])
    by = as_list(by)
    for col in by:
        if col not in df:
            raise ValueError(f"Cannot group by {col!r}: not a column of the table ({list(df.columns)}).")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be between 0 and 1, got {ci}.")
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples}.")
    rng = check_random_state(random_state)
    alpha = (1 - ci) / 2
    df = df.copy()
    by = _with_lag_windows(by, df)
    if "subject" not in df:
        df["subject"] = "all"
    df["subject"] = df["subject"].astype(object).where(df["subject"].notna(), "all")
    out = [_assign_group(dict(zip(by, key if isinstance(key, tuple) else (key,))), g, by, score, n_resamples, alpha, rng)
           for key, g in df.groupby(by, sort=False, dropna=False)]
    if "subject" in by and df["subject"].nunique() > 1:
        by_all = [c for c in by if c != "subject"]
        groups = df.groupby(by_all, sort=False, dropna=False) if by_all else [((), df)]
        for key, g in groups:
            if g["subject"].nunique() < 2:  # one subject: its own row says it all
                continue
            keyd = dict(zip(by_all, key if isinstance(key, tuple) else (key,)))
            keyd["subject"] = "all"
            out.append(_assign_across_subjects(keyd, g, score, n_resamples, alpha, rng, df))
    return pd.DataFrame(out)


def _with_lag_windows(by: list[str], df: pd.DataFrame) -> list[str]:
    """``by`` plus ``lag_window`` when the table scores TRF lag windows separately (a window is
    its own comparison of layers, never a candidate beside the full lag range)."""
    if "lag_window" in df and "lag_window" not in by and df["lag_window"].nunique(dropna=True) > 1:
        df["lag_window"] = df["lag_window"].astype(object).where(df["lag_window"].notna(), "")
        return [*by, "lag_window"]
    return by


def _candidates(g: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in ("model", "layer") if c in g]
    agg = {c: (c, "mean") for c in ("score", "normalized_score", "ci_low", "ci_high", "p", "p_best",
                                   "layer_depth", "layer_index") if c in g}
    return g.groupby(keys, sort=False).agg(**agg).reset_index()


def _assign_group(key: dict, g: pd.DataFrame, by: list[str], score: str, n_resamples: int, alpha: float,
                  rng: np.random.Generator) -> dict:
    cand = _candidates(g)
    vals = cand[score].to_numpy(float)
    best = int(np.nanargmax(vals)) if np.isfinite(vals).any() else 0
    depths = cand["layer_depth"].to_numpy(float)
    single_model = "model" in by or cand["model"].nunique() == 1
    if single_model and "p_best" in cand and cand["p_best"].notna().all() and cand["p_best"].sum() > 0:
        probs = cand["p_best"].to_numpy(float)
    else:
        probs = _normal_draw_probs(cand, score, n_resamples, rng)
    row = _summary(key, cand, best, probs, depths, alpha, by)
    row["n_subjects"] = int(g["subject"].nunique())
    return row


def _normal_draw_probs(cand: pd.DataFrame, score: str, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    vals = cand[score].to_numpy(float)
    if {"ci_low", "ci_high"} <= set(cand.columns) and cand["ci_low"].notna().all():
        se = (cand["ci_high"].to_numpy(float) - cand["ci_low"].to_numpy(float)) / (2 * 1.959964)
        if score == "normalized_score":
            scale = np.where(cand["score"].to_numpy(float) != 0, vals / cand["score"].to_numpy(float), 1.0)
            se = se * np.abs(scale)
    else:
        se = np.zeros_like(vals)
    draws = vals[None] + rng.standard_normal((n_resamples, len(vals))) * np.nan_to_num(se)[None]
    draws = np.where(np.isfinite(draws), draws, -np.inf)
    return np.bincount(draws.argmax(axis=1), minlength=len(vals)) / n_resamples


def _summary(key: dict, cand: pd.DataFrame, best: int, probs: np.ndarray, depths: np.ndarray, alpha: float,
             by: list[str]) -> dict:
    b = cand.iloc[best]
    row = dict(key)
    if "model" not in by:
        row["best_model"] = b["model"]
    row.update(best_layer=b["layer"], best_layer_index=b.get("layer_index", np.nan),
               best_layer_depth=float(b["layer_depth"]))
    for c in ("score", "normalized_score", "ci_low", "ci_high", "p"):
        row[c] = float(b[c]) if c in b else np.nan
    row["p_best"] = float(probs[best])
    lo, hi = _weighted_quantiles(depths, probs, [alpha, 1 - alpha]) if probs.sum() > 0 else (np.nan, np.nan)
    row["depth_ci_low"], row["depth_ci_high"] = lo, hi
    row["preferred_depth"] = _pref_depth(cand["score"].to_numpy(float), depths)
    return row


def _assign_across_subjects(key: dict, g: pd.DataFrame, score: str, n_resamples: int, alpha: float,
                            rng: np.random.Generator, results: pd.DataFrame) -> dict:
    from ._group import subject_p_best

    keys = [c for c in ("model", "layer") if c in g]
    piv = g.pivot_table(index="subject", columns=keys, values=score, aggfunc="mean", sort=False)
    cand = _candidates(g)
    cand_index = pd.MultiIndex.from_frame(cand[keys]) if len(keys) > 1 else pd.Index(cand[keys[0]])
    piv = piv.reindex(columns=cand_index)
    mat = piv.to_numpy(float)  # (n_subjects, n_candidates)
    mean = np.nanmean(mat, axis=0)
    best = int(np.nanargmax(mean))
    n_sub = mat.shape[0]
    idx = rng.integers(0, n_sub, size=(n_resamples, n_sub))
    boot = np.nanmean(mat[idx], axis=1)  # (n_resamples, n_candidates)
    probs = subject_p_best(results, g, cand, mat, list(piv.index), n_resamples, rng)
    cand = cand.copy()
    cand[score] = mean
    by = [c for c in key if c != "subject"] + ["subject"]
    row = _summary(key, cand, best, probs, cand["layer_depth"].to_numpy(float), alpha, by)
    # across subjects the CI of the best layer's score is the subject bootstrap of its mean
    row["ci_low"], row["ci_high"] = (float(np.quantile(boot[:, best], alpha)), float(np.quantile(boot[:, best], 1 - alpha)))
    row["n_subjects"] = int(n_sub)
    return row


def _pref_depth(scores: np.ndarray, depths: np.ndarray) -> float:
    w = np.clip(np.nan_to_num(scores, nan=0.0), 0, None)
    if w.sum() <= 0:
        return float("nan")
    return float((w * depths).sum() / w.sum())


def preferred_depth(results: pd.DataFrame, *, by: Sequence[str] = ("model", "roi", "method"),
                    score: str = "score", n_resamples: int = 1000, ci: float = 0.95, random_state: int | None = 0) -> pd.DataFrame:
    """Score-weighted mean layer depth, per subject and across subjects.

    ``preferred_depth = sum_l max(score_l, 0) * depth_l / sum_l max(score_l, 0)``: 0 when
    only the first layer explains the region, 1 when only the last does. Negative scores
    count as 0.

    Parameters
    ----------
    results : DataFrame
        The tidy table of :func:`sweep`.
    by : sequence of str
        Grouping columns besides ``subject``.
    score : {"score", "normalized_score"}
    n_resamples, ci, random_state
        Bootstrap over subjects for the across-subject interval (rows ``subject="all"``).

    Returns
    -------
    DataFrame
        Columns ``by`` + ``subject``, ``preferred_depth``, ``ci_low``, ``ci_high``
        (across subjects only) and ``n_subjects``.

    Examples
    --------
    >>> preferred_depth(table)  # doctest: +SKIP
    """
    df = check_results(results, ["layer_depth", "score"], "preferred_depth")
    check_option("score", score, ["score", "normalized_score"])
    by = [c for c in as_list(by) if c != "subject"]
    for col in by:
        if col not in df:
            raise ValueError(f"Cannot group by {col!r}: not a column of the table ({list(df.columns)}).")
    df = df.copy()
    by = _with_lag_windows(by, df)
    if "subject" not in df:
        df["subject"] = "all"
    rng = check_random_state(random_state)
    alpha = (1 - ci) / 2
    rows = []
    per_subject = (df.groupby(by + ["subject"], sort=False, dropna=False)
                     .apply(lambda g: _pref_depth(g[score].to_numpy(float), g["layer_depth"].to_numpy(float)),
                            include_groups=False)
                     .rename("preferred_depth").reset_index())
    for _, r in per_subject.iterrows():
        rows.append({**r.to_dict(), "ci_low": np.nan, "ci_high": np.nan, "n_subjects": 1})
    if per_subject["subject"].nunique() > 1:
        groups = per_subject.groupby(by, sort=False, dropna=False) if by else [((), per_subject)]
        for key, g in groups:
            vals = g["preferred_depth"].dropna().to_numpy(float)
            keyd = dict(zip(by, key if isinstance(key, tuple) else (key,)))
            if len(vals) == 0:
                continue
            boot = vals[rng.integers(0, len(vals), size=(int(n_resamples), len(vals)))].mean(axis=1)
            rows.append({**keyd, "subject": "all", "preferred_depth": float(vals.mean()),
                         "ci_low": float(np.quantile(boot, alpha)), "ci_high": float(np.quantile(boot, 1 - alpha)),
                         "n_subjects": len(vals)})
    return pd.DataFrame(rows)
