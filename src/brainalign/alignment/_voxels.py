"""Per-voxel reading of a sweep: the best layer and the preferred depth of every channel."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._table import check_results, voxel_scores


def voxel_preferences(results: pd.DataFrame, *, model: str, subject: str, roi: str, method: str = "encoding",
                      min_score: float | None = None) -> pd.DataFrame:
    """Best layer and preferred depth of every channel of one (model, subject, ROI).

    Parameters
    ----------
    results : DataFrame
        The table of :func:`sweep` (its per-channel scores, :func:`voxel_scores`).
    model, subject, roi : str
    method : {"encoding", "banded", "trf"}
        Whose per-channel scores: the held-out r of each layer alone (``encoding``, ``trf``:
        full lag range) or the unique variance of each layer (``banded``).
    min_score : float, optional
        Channels whose best score is below it get NaN preferences (e.g. 0.05: voxels that no
        layer predicts have no preferred layer).

    Returns
    -------
    DataFrame with one row per channel (in the ROI's channel order)
        ``channel`` (position in the ROI), ``best_layer``, ``best_layer_index``,
        ``best_layer_depth``, ``best_score`` and ``preferred_depth`` (the score-weighted mean
        depth, ``sum_l max(s_l, 0) depth_l / sum_l max(s_l, 0)``, as
        :func:`preferred_depth` computes it per ROI).

    Examples
    --------
    >>> prefs = voxel_preferences(table, model="minilm", subject="UTS00", roi="early")  # doctest: +SKIP
    >>> prefs["best_layer"].value_counts()  # doctest: +SKIP
    """
    df = check_results(results, ["model", "layer", "layer_index", "layer_depth", "method"], "voxel_preferences")
    scores = np.asarray(voxel_scores(results, model=model, subject=subject, roi=roi, method=method), dtype=float)
    rows = df[(df["model"] == model) & (df["method"] == method) & (df["subject"].astype(str) == str(subject))
              & (df["roi"].astype(str) == str(roi))]
    layers = (rows.drop_duplicates("layer_index").sort_values("layer_index")[["layer", "layer_depth"]])
    if len(layers) != scores.shape[0]:
        raise ValueError(f"voxel_preferences: the table has {len(layers)} layers of model {model!r} for {method}, "
                         f"but the kept scores have {scores.shape[0]}; pass the table sweep() returned.")
    depth = layers["layer_depth"].to_numpy(float)
    finite = np.isfinite(scores).any(axis=0)
    best = np.where(finite, np.nanargmax(np.where(np.isfinite(scores), scores, -np.inf), axis=0), 0)
    best_score = np.where(finite, scores[best, np.arange(scores.shape[1])], np.nan)
    w = np.clip(np.nan_to_num(scores, nan=0.0), 0, None)
    total = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        pref = np.where(total > 0, (w * depth[:, None]).sum(axis=0) / total, np.nan)
    ok = finite if min_score is None else finite & (best_score >= float(min_score))
    names = layers["layer"].to_numpy(dtype=object)
    out = pd.DataFrame({
        "channel": np.arange(scores.shape[1]),
        "best_layer": np.where(ok, names[best], None),
        "best_layer_index": np.where(ok, best, -1),
        "best_layer_depth": np.where(ok, depth[best], np.nan),
        "best_score": best_score,
        "preferred_depth": np.where(ok, pref, np.nan),
    })
    return out
