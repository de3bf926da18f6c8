"""The encoding units of a sweep: every layer of one model against one subject's ROI.

* ``encoding``: each layer alone (the layer profile): ridge with per-channel alphas chosen by
  an inner CV over the training stimuli / stories, scored on held-out stimuli or whole stories.
* ``banded``: each layer with other feature spaces (nuisance bands such as word rate, or a
  layer of another model) by banded ridge, with variance partitioning: the R² of the joint
  model, of the layer alone and of the others alone on the same folds give the layer's unique
  and shared variance.
* ``trf``: continuous M/EEG: a temporal response function (lags in seconds, per-channel
  alphas) per layer, over the full lag range and for each lag window alone.

The statistics are those of :mod:`brainalign.stats`, computed within every outer test fold
and averaged over folds like the score: a block (or stimulus) bootstrap whose replicates are
paired across layers (``p_best``), and the circular-shift permutation test of the held-out
predictions within runs. Units take and return plain data, so that they run the same in this
process, in a thread pool or on a Dask worker.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from .._utils import logger
from ._methods import _rows, _seeds

ENCODING_DEFAULTS = {"alphas": None, "outer_cv": "stimulus", "stimulus_folds": 5, "gap": None,
                     "shared_stimuli": "raise", "delays": None, "lags": None, "ceiling_by": None,
                     "block_length": 10, "pca": None, "design": "auto", "resample": "lanczos", "trim": 0,
                     "zscore": False, "test_runs": None}
#: banded ridge + variance partitioning: the encoding options plus the other bands
BANDED_DEFAULTS = {**ENCODING_DEFAULTS, "others": None, "n_iter": 20}
#: TRF options (continuous M/EEG): lags in seconds, no FIR delays
TRF_DEFAULTS = {"alphas": None, "tmin": 0.0, "tmax": 0.5, "lag_windows": None, "inner_cv": 5, "stimulus_folds": 5,
                "test_runs": None, "pca": None, "resample": "sum", "trim": 0, "zscore": False, "ceiling_by": None,
                "block_length": 100, "design": "continuous"}
#: options of ENCODING_DEFAULTS handed on to cross_validate_encoding (the others shape the design / statistics)
_CV_KEYS = ("alphas", "outer_cv", "stimulus_folds", "gap", "shared_stimuli")


def _fold_seed(random_state: int, fold: int) -> int:
    """The random_state of one outer fold's resampling: the same for every layer of a unit."""
    return int(np.random.SeedSequence([int(random_state), int(fold)]).generate_state(1)[0])


class _FoldStats:
    """Bootstrap replicates and permutation nulls of one unit, computed within every outer test fold
    and averaged over folds, with the same random_state per fold for every layer (paired replicates)."""

    def __init__(self, spec: dict, splits: list, n_layers: int) -> None:
        self.spec, self.splits = spec, splits
        self.boot_seed, self.perm_seed = _seeds(spec["random_state"])
        self.units = np.asarray(spec["boot_units"])
        self.groups = np.asarray(spec["perm_groups"])
        self.n_resamples, self.n_permutations = int(spec["n_resamples"]), int(spec["n_permutations"])
        tests = [te for _, te in splits]
        if any(len(pd.unique(self.units[te])) < 2 for te in tests):
            self.n_resamples = 0  # a fold with a single resampling unit: no bootstrap
        self.boot = np.full((self.n_resamples, n_layers), np.nan)
        self._ref_of, self._ref = None, {}  # bootstrap replicates of a reference model's predictions, per fold
        self.null = np.full((self.n_permutations, n_layers), np.nan)

    def add(self, k: int, Y: np.ndarray, pred: np.ndarray, score: float, *, metric: str = "pearson_r",
            minus: np.ndarray | None = None) -> None:
        """Replicates of layer ``k`` from its held-out predictions ``pred`` (rows of ``Y``); with ``minus``
        (the predictions of a reference model) the replicates are of the difference of R²."""
        from ..stats import bootstrap_ci, permutation_test

        ci = float(self.spec.get("ci", 0.95))
        if self.n_resamples:
            reps = []
            for f, (_, te) in enumerate(self.splits):
                kw = dict(groups=self.units[te], n_resamples=self.n_resamples, ci=ci, metric=metric,
                          random_state=_fold_seed(self.boot_seed, f))
                d = bootstrap_ci(Y[te], pred[te], **kw).distribution
                if minus is not None:
                    d = d - self._reference(f, Y[te], minus, te, kw)
                reps.append(d)
            self.boot[:, k] = np.mean(reps, axis=0)
            # bootstrap bias correction: a score resampled from the few units of a fold is biased
            # (r by ~0.03 at r = 0.6 and 10 stimuli), so the replicates are re-centred on the score
            self.boot[:, k] += score - np.nanmean(self.boot[:, k])
        if self.n_permutations and minus is None:
            self.null[:, k] = np.mean([np.nanmean(permutation_test(
                Y[te], pred[te], groups=self.groups[te], method="circular_shift", metric=metric,
                n_permutations=self.n_permutations, random_state=_fold_seed(self.perm_seed, f)).null, axis=1)
                for f, (_, te) in enumerate(self.splits)], axis=0)  # null of the ROI-mean score

    def _reference(self, f: int, Y_te: np.ndarray, minus: np.ndarray, te: np.ndarray, kw: dict) -> np.ndarray:
        """Fold ``f``'s bootstrap replicates of the reference predictions ``minus``: the same for every
        layer (same draws), so computed once per reference."""
        from ..stats import bootstrap_ci

        if self._ref_of is not minus:
            self._ref_of, self._ref = minus, {}
        if f not in self._ref:
            self._ref[f] = bootstrap_ci(Y_te, minus[te], **kw).distribution
        return self._ref[f]

    def rows(self, spec: dict, scores: Any, *, metric: str, extra: dict | None = None) -> list[dict]:
        null = self.null if self.n_permutations and np.isfinite(self.null).all() else None
        return _rows(spec, np.asarray(scores, dtype=float), self.boot, null, metric=metric, extra=extra)


def _ceiling_spec(spec: dict) -> dict:
    ceiling_vox = spec.get("ceiling_voxels")
    value = float(np.nanmean(ceiling_vox)) if ceiling_vox is not None else np.nan
    return {**spec, "ceiling": (np.nan, value)}


def _extra(spec: dict, n_channels: int, n_folds: int) -> dict:
    out = {"n_channels": n_channels, "n_folds": n_folds}
    if spec.get("control"):
        out["control"] = spec["control"]
    if spec.get("test_label"):
        out["test_runs"] = spec["test_label"]
    return out


def _log_layer(spec: dict, k: int, fit_s: float, stats_s: float, shape: tuple) -> None:
    logger.info("%s unit %s | %s | %s: layer %s fitted in %.2f s, statistics %.2f s (%d samples x %d channels)",
                spec["method"], spec["model"], spec["subject"], spec["roi"], spec["layers"][k], fit_s, stats_s,
                shape[0], shape[1])


def _as_dtype(X: Any, dtype: np.dtype) -> np.ndarray:
    return np.asarray(X, dtype=dtype)


# --------------------------------------------------------------------------- each layer alone
def encoding_unit(spec: dict) -> list[dict]:
    """Cross-validated encoding of the ROI's channels from every layer; r averaged over folds and channels.

    Event designs hold out stimuli (:func:`brainalign.encoding.stimulus_splits`, with a gap
    of the longest FIR delay in time series) unless the options say otherwise; continuous
    designs hold out whole stories (or the named ``test_runs``), with alphas chosen by an
    inner CV over the training stories. The score of a channel is the Pearson r of the
    held-out predictions within each outer test fold, averaged over folds: the r of all
    folds' predictions concatenated is biased negative under the null when folds hold out
    stimuli (the intercept learnt on the training stimuli is high exactly when the held-out
    stimuli's mean response is low). Responses and designs stay in the responses' float
    precision (float32 data are never copied to float64).
    """
    from ..encoding import cross_validate_encoding

    Y = spec["Y"]
    opts = dict(spec["options"])
    cv_kwargs = {k: v for k, v in opts.items() if k not in ENCODING_DEFAULTS or k in _CV_KEYS}
    cv_kwargs = {k: v for k, v in cv_kwargs.items() if v is not None}
    cv_kwargs["gap"] = int(spec.get("gap") or 0)
    cv_kwargs.setdefault("device", "cpu")
    if spec.get("outer") is not None:
        cv_kwargs["outer_cv"] = spec["outer"]
    if spec.get("inner_kfold"):  # one run per training set (sweep checked it): folds within that run
        cv_kwargs["inner_cv"] = WithinRunKFold(int(spec["inner_kfold"]))
    stats, scores, voxel, splits = None, [], [], None
    for k, X in enumerate(spec["X"]):
        t0 = time.perf_counter()
        if spec.get("lean"):  # whole stories held out: the lean loop below (no copy of the responses)
            splits = spec["outer"]
            pred, r_folds = _story_folds(_as_dtype(X, Y.dtype), Y, splits, np.asarray(spec["groups"]), opts)
        else:
            res = cross_validate_encoding(_as_dtype(X, Y.dtype), Y, groups=spec["groups"], return_predictions=True,
                                          stimulus_ids=spec.get("stimulus_ids"), **cv_kwargs)
            pred, r_folds = np.asarray(res["predictions"]), res["r_folds"]
            splits = [(tr, te) for tr, te in res["splits"]]
        r = np.nanmean(np.asarray(r_folds, dtype=float), axis=0).reshape(-1)  # (n_channels,)
        voxel.append(r)
        scores.append(float(np.nanmean(r)))
        if stats is None:
            stats = _FoldStats(spec, splits, len(spec["X"]))
        t1 = time.perf_counter()
        stats.add(k, Y, pred, scores[k])
        _log_layer(spec, k, t1 - t0, time.perf_counter() - t1, Y.shape)
    rows = stats.rows(_ceiling_spec(spec), scores, metric="pearson_r", extra=_extra(spec, Y.shape[1], len(splits)))
    rows[0]["_voxel_scores"] = np.stack(voxel)
    return rows


def _take(A: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``A[idx]``, as a view (no copy) when ``idx`` is one contiguous block of rows."""
    idx = np.asarray(idx)
    if len(idx) and idx[-1] - idx[0] == len(idx) - 1 and (np.diff(idx) == 1).all():
        return A[int(idx[0]):int(idx[-1]) + 1]
    return A[idx]


class _TestRows:
    """Held-out predictions of whole-story folds, stored for the test rows only: ``pred[te]`` of a fold."""

    def __init__(self) -> None:
        self._parts: dict[bytes, np.ndarray] = {}

    def __setitem__(self, te: np.ndarray, value: np.ndarray) -> None:
        self._parts[np.asarray(te).tobytes()] = value

    def __getitem__(self, te: np.ndarray) -> np.ndarray:
        return self._parts[np.asarray(te).tobytes()]


def _story_folds(X: np.ndarray, Y: np.ndarray, splits: list, groups: np.ndarray, opts: dict) -> tuple:
    """Ridge on the training stories of every fold (alphas per channel by an inner CV over those stories),
    predictions of the test stories.

    The loop of :func:`brainalign.encoding.cross_validate_encoding` for explicit whole-story
    folds, without its copies: the training responses are a view when they form one block of
    rows (the recipes load the test story last), and only the test rows' predictions are kept.
    Returns (predictions indexed by each fold's test rows, r per fold (n_folds, n_channels)).
    """
    from ..encoding import RidgeCV
    from ..stats import pearson_r

    alphas = opts.get("alphas")
    kw = {"alphas": alphas} if alphas is not None else {}
    preds, r = _TestRows(), []
    for tr, te in splits:
        cv, g = _inner(opts.get("inner_cv", 5), groups[tr])
        model = RidgeCV(cv=cv, device="cpu", **kw).fit(_take(X, tr), _take(Y, tr), groups=g)
        p = np.asarray(model.predict(_take(X, te))).reshape(len(te), -1)
        preds[te] = p
        r.append(pearson_r(_take(Y, te), p))
    return preds, np.stack(r)


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


def _inner(inner: Any, groups_tr: np.ndarray) -> tuple[Any, Any]:
    """(cv, groups) of an inner alpha search over the training rows: whole groups (stories / runs) when
    there are at least 2, at most one fold per group; contiguous blocks within a single one."""
    n_groups = len(pd.unique(groups_tr))
    if not isinstance(inner, (int, np.integer)) or isinstance(inner, bool):
        return inner, groups_tr
    if n_groups >= 2:
        return min(int(inner), n_groups), groups_tr
    return WithinRunKFold(int(inner)), None


# --------------------------------------------------------------------------- banded ridge, variance partitioning
def banded_unit(spec: dict) -> list[dict]:
    """Variance partitioning of every layer against the other bands (nuisance spaces or another model).

    On every outer fold three models are fitted on the training rows and scored (R², per
    channel) on the test rows: the layer alone (:class:`~brainalign.encoding.RidgeCV`), the
    other bands alone and the layer with the other bands (both
    :class:`~brainalign.encoding.BandedRidgeCV`, one regularization per band, band weights by
    random search). Per channel, ``unique = r2_joint - r2_others`` and ``shared = r2_layer +
    r2_others - r2_joint`` (de Heer et al., 2017); the row's score is the unique variance,
    averaged over folds and channels. Its bootstrap replicates are differences of R² on the
    same resampled units (paired across layers); there is no permutation p-value.
    """
    from ..encoding import BandedRidgeCV, RidgeCV
    from ..stats import r2_score

    Y = spec["Y"]
    opts = spec["options"]
    alphas = opts.get("alphas")
    kw = dict(device="cpu", **({"alphas": alphas} if alphas is not None else {}))
    others = _as_dtype(spec["others_X"], Y.dtype)
    other_bands = {name: slice(a, b) for name, (a, b) in spec["others_bands"].items()}
    splits, groups = spec["outer"], np.asarray(spec["groups"])
    inner = opts.get("inner_cv", 5)
    seed = _seeds(spec["random_state"])[0]

    stim = spec.get("stimulus_ids") if not spec.get("lean") else None

    def inner_cv(tr):
        if stim is not None and isinstance(inner, (int, np.integer)) and not isinstance(inner, bool):
            from ..encoding import stimulus_splits  # event designs: the alpha search also holds out stimuli

            return stimulus_splits(np.asarray(stim)[tr], runs=groups[tr], n_splits=int(inner)), None
        return _inner(inner, groups[tr])

    def fit_predict(model_factory, X):
        pred = np.zeros(Y.shape, dtype=Y.dtype)
        r2 = []
        for tr, te in splits:
            cv, g = inner_cv(tr)
            pred[te] = np.asarray(model_factory(cv).fit(X[tr], Y[tr], groups=g).predict(X[te])).reshape(len(te), -1)
            r2.append(r2_score(Y[te], pred[te]))
        return pred, np.nanmean(np.stack(r2), axis=0)

    def banded(bands):
        if len(bands) == 1:
            return lambda cv: RidgeCV(cv=cv, **kw)
        return lambda cv: BandedRidgeCV(bands=bands, cv=cv, n_iter=int(opts.get("n_iter", 20)), random_state=seed,
                                        **kw)

    pred_o, r2_o = fit_predict(banded(other_bands), others)
    stats = _FoldStats(spec, splits, len(spec["X"]))
    stats.n_permutations = 0
    scores, voxel, extra_rows = [], [], []
    for k, (layer, X) in enumerate(zip(spec["layers"], spec["X"])):
        Xl = _as_dtype(X, Y.dtype)
        _, r2_l = fit_predict(lambda cv: RidgeCV(cv=cv, **kw), Xl)
        width = Xl.shape[1]
        joint_bands = {str(layer): slice(0, width),
                       **{n: slice(s.start + width, s.stop + width) for n, s in other_bands.items()}}
        pred_j, r2_j = fit_predict(banded(joint_bands), np.concatenate([Xl, others], axis=1))
        unique = r2_j - r2_o
        voxel.append(unique)
        scores.append(float(np.nanmean(unique)))
        stats.add(k, Y, pred_j, scores[k], metric="r2", minus=pred_o)
        extra_rows.append({"bands": "+".join([str(layer), *other_bands]), "r2_joint": float(np.nanmean(r2_j)),
                           "r2_layer": float(np.nanmean(r2_l)), "r2_others": float(np.nanmean(r2_o)),
                           "unique_variance": scores[k],
                           "shared_variance": float(np.nanmean(r2_l + r2_o - r2_j))})
    spec = {**spec, "ceiling": (np.nan, np.nan)}
    rows = stats.rows(spec, scores, metric="r2_unique", extra=_extra(spec, Y.shape[1], len(splits)))
    for row, extra in zip(rows, extra_rows):
        row.update(extra)
    rows[0]["_voxel_scores"] = np.stack(voxel)
    return rows


# --------------------------------------------------------------------------- TRF (continuous M/EEG)
def trf_unit(spec: dict) -> list[dict]:
    """Temporal response functions of every layer: held-out r per channel over the full lag range and
    for each lag window fitted alone.

    :class:`~brainalign.encoding.TRF` (lags ``tmin`` .. ``tmax`` s, never crossing runs; one
    alpha per channel chosen by an inner CV over the training runs) is fitted on the training
    stories of every outer fold and predicts the held-out ones. Rows carry ``lag_window``; the
    full range is scored first, then each of ``lag_windows`` (a TRF with only those lags: how
    well that latency range alone predicts the channel).
    """
    from ..encoding import TRF
    from ..stats import pearson_r

    Y = spec["Y"]
    opts = spec["options"]
    splits, runs = spec["outer"], np.asarray(spec["runs"])
    windows = [(float(opts["tmin"]), float(opts["tmax"]))] + [tuple(map(float, w)) for w in opts.get("lag_windows") or []]
    alphas = opts.get("alphas")
    rows, voxel = [], None
    for w, (t0, t1) in enumerate(windows):
        stats = _FoldStats(spec, splits, len(spec["X"]))
        scores, vox = [], []
        for k, X in enumerate(spec["X"]):
            X = _as_dtype(X, Y.dtype)
            pred = np.zeros(Y.shape, dtype=Y.dtype)
            r = []
            for tr, te in splits:
                cv, _ = _inner(opts.get("inner_cv", 5), runs[tr])
                trf = TRF(tmin=t0, tmax=t1, sfreq=float(spec["sfreq"]), cv=cv, device="cpu",
                          **({"alphas": alphas} if alphas is not None else {}))
                trf.fit(X[tr], Y[tr], groups=runs[tr])
                pred[te] = np.asarray(trf.predict(X[te], groups=runs[te])).reshape(len(te), -1)
                r.append(pearson_r(Y[te], pred[te]))
            r = np.nanmean(np.stack(r), axis=0)
            vox.append(r)
            scores.append(float(np.nanmean(r)))
            stats.add(k, Y, pred, scores[k])
        label = f"{t0:g}..{t1:g} s"
        rows.extend(stats.rows(_ceiling_spec(spec), scores, metric="pearson_r",
                               extra={**_extra(spec, Y.shape[1], len(splits)), "lag_window": label,
                                      "lag_min": t0, "lag_max": t1}))
        if w == 0:
            voxel = np.stack(vox)
    rows[0]["_voxel_scores"] = voxel
    return rows


ENCODING_UNITS = {"encoding": encoding_unit, "banded": banded_unit, "trf": trf_unit}
