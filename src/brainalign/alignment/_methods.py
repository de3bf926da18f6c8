"""One unit of a sweep: all layers of one model against one subject's ROI, for one method.

The maths lives in the method rooms (``brainalign.rsa``, ``brainalign.topology``,
``brainalign.encoding``, ``brainalign.stats``); here the scores of every layer are computed
with the same bootstrap replicates (resampled stimuli, paired across layers) so that the
probability of each layer being the best (``p_best``) can be read off them, and the same
permutations give each layer's p-value.

Unit functions take and return plain data (dicts of arrays, lists of dicts) so that they
run the same in this process, in a thread pool or on a Dask worker.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

RSA_DEFAULTS = {"rdm_method": "correlation", "compare": "corr", "time_window": None}
TRSA_DEFAULTS = {"rdm_method": "correlation", "compare": "corr", "low": 0.25, "up": 0.75,
                 "transform": "geotopological", "time_window": None}
TRANSFORMS = ("geotopological", "geodesic")
ENCODING_DEFAULTS = {"alphas": None, "outer_cv": "stimulus", "stimulus_folds": 5, "gap": None,
                     "shared_stimuli": "raise", "delays": None, "fill_missing": 0.0, "ceiling_by": None,
                     "block_length": 10, "pca": None}
#: options of ENCODING_DEFAULTS handed on to cross_validate_encoding (the others shape the design / statistics)
_CV_KEYS = ("alphas", "outer_cv", "stimulus_folds", "gap", "shared_stimuli")


# --------------------------------------------------------------------------- shared maths hooks
def topo_transform(rdms: np.ndarray, options: dict) -> np.ndarray:
    """Geo-topological transform of (k, n, n) RDMs with brainalign.topology."""
    from .. import topology

    fn = getattr(topology, options.get("transform", "geotopological"))
    out = fn(rdms, low=float(options["low"]), up=float(options["up"]))
    mats = out.get_matrices() if hasattr(out, "get_matrices") else np.asarray(out)
    return np.asarray(mats, dtype=float).reshape(rdms.shape)


# --------------------------------------------------------------------------- RSA / tRSA units
def _seeds(random_state: int) -> tuple[int, int]:
    """Independent seeds for the bootstrap and the permutations of one unit."""
    a, b = np.random.SeedSequence(int(random_state)).generate_state(2)
    return int(a), int(b)


def rsa_unit(spec: dict) -> list[dict]:
    """Score every layer RDM against the subject's ROI RDM, with bootstrap CI and permutation p.

    Bootstrap: :func:`brainalign.rsa.bootstrap` (conditions resampled with replacement,
    self-pairs dropped as in rsatoolbox), which scores every layer on the *same* draws: the
    paired replicates give ``p_best``. Permutation: the brain RDM's condition labels are
    shuffled (:func:`brainalign.rsa.permutation_test`, streamed in blocks).
    """
    from ..rsa import bootstrap, compare, permutation_test

    layer_mats = np.asarray(spec["layer_rdms"], dtype=float)  # (L, n, n)
    brain = np.asarray(spec["brain_rdm"], dtype=float)  # (n, n)
    opts, method = spec["options"], spec["options"]["compare"]
    if spec["method"] == "trsa":
        layer_mats = topo_transform(layer_mats, opts)
        brain = topo_transform(brain[None], opts)[0]
    boot_seed, perm_seed = _seeds(spec["random_state"])
    n = brain.shape[0]
    iu = np.triu_indices(n, 1)
    layer_vecs = layer_mats[:, iu[0], iu[1]]
    scores = np.asarray(compare(layer_vecs, brain[iu][None], method=method), dtype=float)[:, 0]
    n_resamples, n_permutations = int(spec["n_resamples"]), int(spec["n_permutations"])
    boot = np.full((n_resamples, len(scores)), np.nan)
    if n_resamples >= 2:
        boot = bootstrap(layer_vecs, brain[iu][None], method=method, n_resamples=n_resamples, resample="stimuli",
                         ci=float(spec.get("ci", 0.95)), random_state=boot_seed).samples
    null = None
    if n_permutations:  # the brain RDM's condition labels shuffled, streamed in memory-bounded blocks
        null = permutation_test(layer_vecs, brain[iu], method=method, n_permutations=n_permutations,
                                random_state=perm_seed).null  # (n_permutations, L)
    return _rows(spec, scores, boot, null, metric=(f"trsa-{method}" if spec["method"] == "trsa" else method),
                 extra={"n_conditions": n})


def _rows(spec: dict, scores: np.ndarray, boot: np.ndarray, null: np.ndarray | None, *, metric: str,
          extra: dict | None = None) -> list[dict]:
    alpha = (1 - spec.get("ci", 0.95)) / 2
    valid = np.isfinite(boot).all(axis=1)
    boot = boot[valid]
    if len(boot):
        lo, hi = np.quantile(boot, alpha, axis=0), np.quantile(boot, 1 - alpha, axis=0)
        p_best = np.bincount(np.argmax(boot, axis=1), minlength=len(scores)) / len(boot)
    else:
        lo = hi = p_best = np.full(len(scores), np.nan)
    if null is not None and len(null):
        # null of the ROI-level score itself (one value per permutation and layer), so the
        # p-value is read off here, with the convention of brainalign.stats.permutation_test
        p = (1 + (null >= scores[None]).sum(axis=0)) / (1 + len(null))
    else:
        p = np.full(len(scores), np.nan)
    ceil_lo, ceil = spec.get("ceiling", (np.nan, np.nan))
    ceiling = np.asarray(spec.get("ceiling_per_layer", [ceil] * len(scores)), dtype=float)
    rows = []
    for k, layer in enumerate(spec["layers"]):
        c = float(ceiling[k])
        rows.append({
            "model": spec["model"], "layer": layer, "layer_index": k, "layer_depth": spec["depths"][k],
            "subject": spec["subject"], "roi": spec["roi"], "method": spec["method"], "metric": metric,
            "score": float(scores[k]), "ceiling": c,
            "normalized_score": float(scores[k] / c) if np.isfinite(c) and c > 0 else np.nan,
            "ci_low": float(lo[k]), "ci_high": float(hi[k]), "p": float(p[k]),
            "ceiling_low": float(ceil_lo), "p_best": float(p_best[k]), **(extra or {}),
        })
    return rows


# --------------------------------------------------------------------------- encoding unit
def _fold_seed(seed: int, fold: int) -> int:
    """The random_state of one outer fold's resampling: the same for every layer of a unit."""
    return int(np.random.SeedSequence([int(seed), int(fold)]).generate_state(1)[0])


def encoding_unit(spec: dict) -> list[dict]:
    """Cross-validated encoding of the ROI's channels from every layer; r averaged over folds and channels.

    The outer folds hold out stimuli (:func:`brainalign.encoding.stimulus_splits`, with a
    gap of the longest FIR delay in time series) unless the options say otherwise. The
    score of a channel is the Pearson r of the held-out predictions within each outer test
    fold, averaged over folds: the r of all folds' predictions concatenated is biased
    negative under the null when folds hold out stimuli (the intercept learnt on the
    training stimuli is high exactly when the held-out stimuli's mean response is low), and
    its bias grows with the alpha search. The bootstrap (:func:`brainalign.stats.bootstrap_ci`,
    resampling stimuli or blocks of samples) and the permutation null
    (:func:`brainalign.stats.permutation_test`, predictions circularly shifted within runs,
    which keeps their autocorrelation) are computed within each test fold and averaged
    over folds, like the score (the bootstrap replicates re-centred on the score: the
    percentile bootstrap of an r from the few stimuli of one fold is biased low). Every
    layer gets the same random_state per fold, so every
    layer is scored on the same resampled units (paired replicates: ``p_best``) and the
    same shifts.
    """
    from ..encoding import cross_validate_encoding
    from ..stats import bootstrap_ci, permutation_test

    Y = np.asarray(spec["Y"], dtype=np.float64)
    groups = np.asarray(spec["groups"])
    opts = dict(spec["options"])
    cv_kwargs = {k: v for k, v in opts.items() if k not in ENCODING_DEFAULTS or k in _CV_KEYS}
    cv_kwargs = {k: v for k, v in cv_kwargs.items() if v is not None}
    cv_kwargs["gap"] = int(spec.get("gap") or 0)
    cv_kwargs.setdefault("device", "cpu")
    if spec.get("inner_kfold"):  # one run per training set (sweep checked it): folds within that run
        cv_kwargs["inner_cv"] = WithinRunKFold(int(spec["inner_kfold"]))
    boot_seed, perm_seed = _seeds(spec["random_state"])
    units = np.asarray(spec["boot_units"])
    n_resamples, n_permutations = int(spec["n_resamples"]), int(spec["n_permutations"])
    n_layers = len(spec["layers"])
    scores, voxel = [], []
    boot, null = np.full((n_resamples, n_layers), np.nan), np.full((n_permutations, n_layers), np.nan)
    for k, X in enumerate(spec["X"]):
        res = cross_validate_encoding(np.asarray(X, dtype=np.float64), Y, groups=groups, return_predictions=True,
                                      stimulus_ids=spec.get("stimulus_ids"), **cv_kwargs)
        pred = np.asarray(res["predictions"], dtype=np.float64)
        r = np.nanmean(np.asarray(res["r_folds"], dtype=float), axis=0).reshape(-1)  # (n_channels,)
        voxel.append(r)
        scores.append(float(np.nanmean(r)))
        splits = [te for _, te in res["splits"]]
        if k == 0 and any(len(pd.unique(units[te])) < 2 for te in splits):
            n_resamples = 0  # a fold with a single resampling unit: no bootstrap
            boot = boot[:0]
        if n_resamples:
            boot[:, k] = np.mean([bootstrap_ci(Y[te], pred[te], groups=units[te], n_resamples=n_resamples,
                                               ci=float(spec.get("ci", 0.95)),
                                               random_state=_fold_seed(boot_seed, f)).distribution
                                  for f, te in enumerate(splits)], axis=0)
            # bootstrap bias correction: r resampled from the few stimuli of a fold is biased low
            # (by ~0.03 for r = 0.6 and 10 stimuli), so the replicates are re-centred on the score
            boot[:, k] += scores[k] - np.nanmean(boot[:, k])
        if n_permutations:
            null[:, k] = np.mean([np.nanmean(permutation_test(Y[te], pred[te], groups=groups[te],
                                                              method="circular_shift", n_permutations=n_permutations,
                                                              random_state=_fold_seed(perm_seed, f)).null, axis=1)
                                  for f, te in enumerate(splits)], axis=0)  # null of the ROI-mean score
    ceiling_vox = spec.get("ceiling_voxels")
    rows = _rows({**spec, "ceiling": (np.nan, float(np.nanmean(ceiling_vox)) if ceiling_vox is not None else np.nan)},
                 np.asarray(scores), boot, null if np.isfinite(null).all() else None, metric="pearson_r",
                 extra={"n_channels": Y.shape[1], "n_folds": len(splits)})
    rows[0]["_voxel_scores"] = np.stack(voxel)
    return rows


class WithinRunKFold:
    """``KFold(n_splits)`` (contiguous blocks, no shuffling) that ignores run labels: the inner
    CV when a training set holds a single run."""

    def __init__(self, n_splits: int) -> None:
        self.n_splits = n_splits

    def split(self, X: Any, y: Any = None, groups: Any = None):
        from sklearn.model_selection import KFold

        return KFold(self.n_splits).split(X)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.n_splits


UNITS = {"rsa": rsa_unit, "trsa": rsa_unit, "encoding": encoding_unit}


def run_unit(spec: dict[str, Any]) -> list[dict]:
    """Dispatch one unit (module-level so that Dask workers can import it)."""
    return UNITS[spec["method"]](spec)
