"""Encoding designs and what they are scored against.

Every design matrix of the sweep comes from :func:`brainalign.features.timing.align_to`, the
function a user calls: *event* designs (one stimulus per sample, named by the
``stimulus_key`` column) and *continuous* designs (many timed items per sample: the words of
a story, put on the sample grid by Lanczos resampling or by sum / mean per bin). Here are the
choices around it: which kind of design, the held-out units (stimuli, or whole stories), a
named test set, the responses the scores compare with, the ceilings, the bootstrap units,
and the checks made before anything is computed.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from .._utils import Bunch, as_list, check_option, logger
from ._inputs import BrainInput, ModelInput, read_mapped

#: the encoding-like methods of the sweep (they share these designs and folds)
ENCODING_METHODS = ("encoding", "banded", "trf")
DESIGNS = ("auto", "event", "continuous")
RESAMPLE = ("lanczos", "sum", "mean")
ZSCORE = (False, True, "features", "responses", "both")


# --------------------------------------------------------------------------- the kind of design
def design_kind(model: ModelInput, bd: Any, key: str, opts: dict, where: str) -> str:
    """``"event"`` or ``"continuous"`` for one model and one recording.

    ``design="auto"``: event when ``stimulus_key`` is a samples column naming items of the
    model; continuous when the model's items carry onsets (words, phonemes, frames).
    """
    want = check_option("design", opts.get("design", "auto"), DESIGNS)
    timed = model.item_table is not None and "onset" in model.item_table.columns
    has_key = key in bd.samples.columns
    if want == "event" or (want == "auto" and has_key and _matches(model, bd.samples[key])):
        if not has_key:
            raise ValueError(
                f"{where}: design='event' needs the stimulus of every sample, but the samples table has no "
                f"{key!r} column (columns: {list(bd.samples.columns)}); pass stimulus_key= or design='continuous'."
            )
        return "event"
    if want == "continuous" or timed:
        if not timed:
            raise ValueError(
                f"{where}: design='continuous' needs timed items, but the features of model {model.name!r} carry no "
                "onsets; extract them from Stimuli with onsets (e.g. the words of datasets.load_lebel2023)."
            )
        if not bd.sfreq:
            raise ValueError(f"{where}: a continuous design needs the recording's tr or sfreq; the BrainData has none.")
        return "continuous"
    if has_key:
        raise ValueError(
            f"{where}: no sample's {key!r} ({pd.unique(bd.samples[key].dropna().astype(str))[:5].tolist()}...) is an "
            f"item of model {model.name!r} ({model.items[:5]}...); check stimulus_key= and the ids."
        )
    raise ValueError(
        f"{where}: the samples table has no {key!r} column (so the design is not event-related) and the features "
        f"of model {model.name!r} carry no onsets (so it is not continuous either). Pass stimulus_key= naming "
        "each sample's stimulus, or extract the features from timed Stimuli (words with onsets)."
    )


def _matches(model: ModelInput, ids: pd.Series) -> bool:
    have = {str(i) for i in model.items}
    return any(str(v) in have for v in pd.unique(ids.dropna()))


def story_labels(bd: Any) -> np.ndarray:
    """What a continuous design holds out as a whole: the ``story`` samples column when there is one
    (two runs of one story are held out together), else the run."""
    col = "story" if "story" in bd.samples.columns else "run"
    if col not in bd.samples.columns:
        return np.full(bd.n_samples, "0", dtype=object)
    return bd.samples[col].astype(str).to_numpy(dtype=object)


def run_labels(bd: Any) -> np.ndarray:
    return bd.samples["run"].to_numpy() if "run" in bd.samples else np.zeros(bd.n_samples, int)


def stimulus_ids(bd: Any, key: str) -> np.ndarray:
    """The stimulus of every sample (None where there is none), object array (n_samples,)."""
    if key not in bd.samples:
        raise ValueError(
            f"Encoding needs the stimulus of every sample: the samples table has no {key!r} column "
            f"(columns: {list(bd.samples.columns)}); pass stimulus_key=."
        )
    out = np.empty(bd.n_samples, dtype=object)
    out[:] = [None if pd.isna(v) else v for v in bd.samples[key].to_numpy(dtype=object)]
    return out


# --------------------------------------------------------------------------- designs
def layer_features(model: ModelInput, layer: str, opts: dict) -> Any:
    """The model's item features of one layer as :class:`~brainalign.Features` (PCA-rotated with ``pca``)."""
    from ..data import Features

    X = read_mapped(model.arrays[layer])  # a memory-mapped layer is read from its file, never kept resident
    n_comp = opts.get("pca")
    if n_comp:  # item-level rotation onto the top singular vectors: exact when n_comp >= rank, faster ridge
        # not centred: samples without a stimulus get rows of zeros, which must stay "no stimulus",
        # not become the mean item (and the mean would mix in the held-out items' features)
        key = ("pca", layer, int(n_comp))
        if key not in model.cache:
            X64 = np.asarray(X, dtype=float)
            _, sv, vt = np.linalg.svd(X64, full_matrices=False)
            keep = min(int(n_comp), int((sv > sv[0] * 1e-10).sum()) if sv.size else 0) or 1
            model.cache[key] = (X64 @ vt[:keep].T).astype(np.result_type(X.dtype, np.float32))
        X = model.cache[key]
    return Features({layer: X}, items=model.items, item_table=model.item_table,
                    provenance={"model_id": model.name})


def sample_grid(bd: Any, key: str, kind: str) -> Any:
    """A one-channel stand-in of ``bd`` with its samples table and rate: what ``align_to`` reads to
    place items (the responses are never copied for the design). Event designs get the
    ``stimulus_key`` column as ``stimulus_id``."""
    from ..data import BrainData

    samples = bd.samples
    if kind == "event":
        samples = samples.drop(columns=[c for c in ("stimulus_id", "stimulus_ids") if c in samples.columns])
        samples = samples.assign(stimulus_id=bd.samples[key].to_numpy(dtype=object))
    rate = {"tr": bd.tr} if bd.tr else ({"sfreq": bd.sfreq} if bd.sfreq else {})
    return BrainData(np.zeros((bd.n_samples, 1), np.float32), samples=samples, **rate)


def delay_options(opts: dict, kind: str) -> dict:
    """``delays`` (samples) or ``lags`` (seconds) for align_to, from the options."""
    delays, lags = opts.get("delays"), opts.get("lags")
    if delays and lags:
        raise ValueError(f"Give delays= (samples) or lags= (seconds), not both; got delays={delays}, lags={lags}.")
    return {"delays": list(delays)} if delays else ({"lags": list(lags)} if lags else {})


def build_design(model: ModelInput, layer: str, grid: Any, kind: str, opts: dict, *, lagged: bool = True) -> Bunch:
    """``align_to`` of one layer: Bunch ``X`` (n_kept, n_columns), ``groups`` (runs), ``keep``."""
    from ..features import align_to

    zs = opts.get("zscore", False)
    kw = dict(layer=layer, trim=_trim(opts.get("trim", 0)),
              zscore="features" if zs in (True, "features", "both") else False)
    if lagged:
        kw.update(delay_options(opts, kind))
    feats = layer_features(model, layer, opts)
    if kind == "event":  # one stimulus per sample; samples without one (rest) get rows of zeros
        kw.update(missing="zeros")
    else:
        kw.update(method=opts.get("resample", "lanczos"))
    return align_to(feats, grid, **kw)


class Designs:
    """The design matrices of a model's layers for one recording, made by ``align_to`` when read.

    A sequence of arrays ``(n_kept, n_columns)`` in the responses' float precision, one layer
    in memory at a time (twelve layers of 8,000 TRs x 3,072 delayed features would hold
    1.2 GB); picklable, so that a Dask worker builds its unit's designs itself.
    """

    def __init__(self, model: ModelInput, grid: Any, kind: str, opts: dict, keep: np.ndarray, dtype: Any,
                 *, lagged: bool = True) -> None:
        self.model, self.grid, self.kind, self.opts, self.keep = model, grid, kind, opts, keep
        self.dtype, self.lagged = np.dtype(dtype), lagged

    def __len__(self) -> int:
        return len(self.model.layers)

    def __getitem__(self, k: int) -> np.ndarray:
        out = build_design(self.model, self.model.layers[k], self.grid, self.kind, self.opts, lagged=self.lagged)
        if not np.array_equal(out.keep, self.keep):
            raise RuntimeError("align_to kept other samples than the sweep planned (trim); please report this.")
        return np.asarray(out.X, dtype=self.dtype)

    def __iter__(self):
        return (self[k] for k in range(len(self)))


def _trim(trim: Any) -> Any:
    return tuple(trim) if isinstance(trim, list) else trim


def unknown_stimuli_warning(model: ModelInput, bd: Any, key: str, where: str) -> None:
    """Warn once when samples name stimuli that the model lacks (they get rows of zeros, like rest)."""
    ids = bd.samples[key].dropna().astype(str)
    have = {str(i) for i in model.items}
    missing = sorted(set(pd.unique(ids)) - have)
    if missing:
        warnings.warn(
            f"{where}: {int(ids.isin(missing).sum())} samples name {len(missing)} stimuli that model {model.name!r} "
            f"has no features for (e.g. {missing[:5]}); their rows of the design are zeros, like samples without a "
            "stimulus. Extract features for them to score them.", stacklevel=4)


def responses(bd: Any, keep: np.ndarray, opts: dict) -> np.ndarray:
    """The responses the scores compare with, (n_kept, n_channels): the kept samples, in their own
    float precision (float32 stays float32; a view when nothing is trimmed), z-scored per run with
    ``zscore="responses"`` / ``"both"`` / True."""
    data = bd.data
    if data.dtype.kind != "f":
        data = np.asarray(data, dtype=np.float64)
    Y = data if keep.all() else data[keep]
    if opts.get("zscore", False) in (True, "responses", "both"):
        runs = run_labels(bd)[keep]
        Y = np.array(Y, dtype=data.dtype)
        for run in pd.unique(runs):
            rows = runs == run
            mu, sd = Y[rows].mean(0), Y[rows].std(0)
            Y[rows] = np.where(sd > 0, (Y[rows] - mu) / np.where(sd > 0, sd, 1), 0)
    return Y


# --------------------------------------------------------------------------- held-out units, folds
def test_split(labels_run: np.ndarray, labels_story: np.ndarray, test_runs: Any, where: str) -> tuple:
    """(train, test) indices for the named test runs / stories. A story that is tested and also
    trained on (another run of it) raises."""
    names = [str(t) for t in as_list(test_runs)]
    runs, stories = labels_run.astype(str), labels_story.astype(str)
    known = list(dict.fromkeys([*pd.unique(runs), *pd.unique(stories)]))
    bad = [t for t in names if t not in known]
    if bad:
        raise ValueError(f"{where}: test_runs {bad} are neither runs nor stories of the data (runs: "
                         f"{[str(r) for r in pd.unique(runs)][:10]}, stories: "
                         f"{[str(r) for r in pd.unique(stories)][:10]}).")
    test = np.isin(runs, names) | np.isin(stories, names)
    shared = sorted(str(s) for s in set(stories[test]) & set(stories[~test]))
    if shared:
        where_runs = {s: sorted(str(r) for r in set(runs[(stories == s) & ~test])) for s in shared}
        raise ValueError(
            f"{where}: the test story {shared} is also in training (run(s) {where_runs}), so its test score would "
            "reward memorizing it. Name every run of the test story in test_runs (or the story itself).")
    if (~test).sum() == 0:
        raise ValueError(f"{where}: test_runs={names} leaves no run to train on.")
    return np.flatnonzero(~test), np.flatnonzero(test)


def story_folds(stories: np.ndarray, n_splits: int, where: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Whole-story folds: ``min(n_splits, n_stories)`` groups of consecutive stories."""
    names = list(pd.unique(stories))
    if len(names) < 2:
        raise ValueError(
            f"{where}: a continuous design holds out whole stories (runs), but the data have {len(names)} story "
            f"({names}); load at least 2 stories, or name a test story with test_runs= in another recording.")
    k = min(int(n_splits), len(names))
    parts = np.array_split(np.arange(len(names)), k)
    out = []
    for part in parts:
        test = np.isin(stories, [names[i] for i in part])
        out.append((np.flatnonzero(~test), np.flatnonzero(test)))
    return out


def check_delays(bd: Any, keep: np.ndarray, opts: dict, where: str) -> None:
    """Delays (or TRF lags) as long as a run would leave its delayed columns all zeros: raise."""
    d = [abs(int(v)) for v in (opts.get("delays") or [])]
    if opts.get("lags") and bd.sfreq:
        d += [abs(int(round(float(v) * bd.sfreq))) for v in opts["lags"]]
    if "tmin" in opts and bd.sfreq:
        d += [abs(int(round(float(opts[k]) * bd.sfreq))) for k in ("tmin", "tmax")]
    if not d:
        return
    runs = run_labels(bd)[keep]
    lengths = pd.Series(runs).value_counts()
    shortest = lengths.idxmin()
    if max(d) >= int(lengths.min()):
        raise ValueError(
            f"{where}: the delays reach {max(d)} samples but run {shortest!r} has only {int(lengths.min())} samples "
            f"(after trimming): its delayed columns would be all zeros. Use delays shorter than the shortest run, "
            "or drop the short runs.")


def boot_units(stim: np.ndarray | None, runs: np.ndarray, block: int, kind: str) -> np.ndarray:
    """What the bootstrap resamples: stimuli when every sample of an event design has one of >= 20
    distinct stimuli, else blocks of ``block`` consecutive samples within runs (time series,
    where neighbouring samples are not independent)."""
    if kind == "event" and stim is not None and all(s is not None for s in stim) and \
            len(pd.unique(pd.Series(stim, dtype=object).astype(str))) >= 20:
        return pd.Series(stim, dtype=object).astype(str).to_numpy()
    out = np.empty(len(runs), dtype=object)
    for g in pd.unique(runs):
        m = np.flatnonzero(runs == g)
        out[m] = [f"{g}|{i // max(1, block)}" for i in range(len(m))]
    return out


def kept_samples(runs: np.ndarray, trim: Any) -> np.ndarray:
    """The samples that ``align_to(trim=...)`` keeps: all but the first (and last, with a pair) ``trim``
    of every run. The designs' own ``keep`` is checked against it when they are built."""
    pair = tuple(trim) if isinstance(trim, (tuple, list)) else (trim, 0)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0
                                 for v in pair):
        raise ValueError(f"trim must be a number of samples >= 0 or a pair (start, end) of them; got {trim!r}.")
    keep = np.ones(len(runs), dtype=bool)
    for run in pd.unique(runs):
        pos = np.flatnonzero(runs == run)
        if len(pos) <= pair[0] + pair[1]:
            raise ValueError(f"trim={trim!r} removes all {len(pos)} samples of run {run!r}; trim fewer samples "
                             "or drop that run.")
        keep[pos[:pair[0]]] = False
        if pair[1]:
            keep[pos[len(pos) - pair[1]:]] = False
    return keep


# --------------------------------------------------------------------------- ceilings
def encoding_ceiling(bd: Any, by: str | None, kind: str, keep: np.ndarray, Y: np.ndarray) -> np.ndarray | None:
    """Per-channel ceiling of the held-out r of single presentations, array (n_channels,).

    Event designs: :func:`brainalign.stats.single_presentation_ceiling` of the samples that
    have a ``by`` value. Continuous designs: ``by`` names a samples column (e.g. ``story``)
    whose values recur in several runs (a story heard twice); sample ``k`` of each such run
    is one stimulus, presented once per run.
    """
    if by is None or by == "inter_subject":
        return None
    from ..stats import single_presentation_ceiling

    if by not in bd.samples:
        raise ValueError(f"encoding ceiling_by={by!r} is not a samples column (columns: {list(bd.samples.columns)}).")
    col = bd.samples[by][keep].reset_index(drop=True)
    if kind == "continuous":
        runs = pd.Series(run_labels(bd)[keep]).astype(str)
        per = runs.groupby(col.astype(str)).nunique()
        repeated = set(per[per >= 2].index)
        if not repeated:
            raise ValueError(
                f"encoding ceiling_by={by!r}: no {by} is presented in two runs (each has one run: "
                f"{dict(per.head(6))}), so there is no repeated story for a noise ceiling; drop ceiling_by, or use "
                "ceiling_by='inter_subject' with several subjects in a common space.")
        pos = runs.groupby(runs).cumcount()
        labels = np.where(col.astype(str).isin(repeated), col.astype(str) + "|" + pos.astype(str), None)
        try:
            return single_presentation_ceiling(Y, np.asarray(labels, dtype=object), groups=runs.to_numpy())
        except ValueError as err:
            raise ValueError(f"encoding ceiling_by={by!r}: {err}") from None
    ok = col.notna().to_numpy()
    try:
        return single_presentation_ceiling(np.asarray(Y)[ok], col[ok].astype(str).to_numpy())
    except ValueError as err:
        if "presented at least twice" not in str(err):
            raise
        raise ValueError(
            f"encoding ceiling_by={by!r}: fewer than 3 stimuli are presented at least twice, so there is no "
            "noise ceiling; drop ceiling_by or name a column whose values repeat."
        ) from None


def inter_subject_ceilings(entries: list[BrainInput], keep: np.ndarray) -> dict[int, np.ndarray]:
    """``ceiling_by="inter_subject"``: per entry index, the ceiling of its ROI from the other subjects
    (:func:`brainalign.stats.inter_subject_ceiling`, kept samples); the subjects of an ROI must share
    samples and channels (a common space, time-locked to the same stories)."""
    from ..stats import inter_subject_ceiling

    by_roi: dict[str, list[int]] = {}
    for k, e in enumerate(entries):
        by_roi.setdefault(e.roi, []).append(k)
    out = {}
    for roi, idx in by_roi.items():
        if len(idx) < 2:
            raise ValueError(f"ceiling_by='inter_subject' needs at least 2 subjects; ROI {roi!r} has "
                             f"{len(idx)} ({[entries[k].subject for k in idx]}).")
        shapes = {entries[k].subject: entries[k].data.shape for k in idx}
        if len(set(shapes.values())) != 1:
            raise ValueError(f"ceiling_by='inter_subject' needs the subjects of ROI {roi!r} in one space and "
                             f"time-locked to the same samples; their shapes differ: {shapes}.")
        data = [np.asarray(entries[k].data.data[keep], dtype=np.float64) for k in idx]
        ceil = inter_subject_ceiling(data, average=False)
        for j, k in enumerate(idx):
            out[k] = ceil[j]
        logger.info("inter-subject ceiling of ROI %s from %d subjects", roi, len(idx))
    return out
