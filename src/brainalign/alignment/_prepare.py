"""What a sweep unit needs before it runs: condition patterns and RDMs of the brain side, the
encoding designs and ceilings, the outer/inner CV plan, and the on-disk cache of unit rows."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._utils import logger
from ._inputs import BrainInput, ModelInput

_CACHE_VERSION = "3"


# --------------------------------------------------------------------------- brain-side preparation
def _condition_patterns(entry: BrainInput, key: str, options: dict) -> tuple[np.ndarray, list]:
    """(n_conditions, n_channels) condition-mean patterns of a data entry and their ids."""
    bd = entry.data
    if key not in bd.samples:
        raise ValueError(
            f"RSA needs the stimulus of every sample: the samples table has no {key!r} column "
            f"(columns: {list(bd.samples.columns)}); pass stimulus_key= to name it."
        )
    keep = bd.samples[key].notna().to_numpy()
    avg = bd.select(samples=keep).average_repetitions(by=key)
    data = avg.data
    if data.ndim == 3:
        tw = options.get("time_window")
        t = avg.times
        mask = np.ones(len(t), bool) if tw is None else (t >= tw[0]) & (t <= tw[1])
        data = data[..., mask].reshape(len(data), -1)
    return np.asarray(data, dtype=float), list(avg.samples[key])


def _split_halves(entry: BrainInput, key: str, options: dict) -> list[tuple[np.ndarray, list]]:
    bd = entry.data
    col = "run" if "run" in bd.samples and bd.samples["run"].nunique() > 1 else (
        "repetition" if "repetition" in bd.samples and bd.samples["repetition"].nunique() > 1 else None)
    if col is None:
        return []
    levels = list(pd.unique(bd.samples[col]))
    halves = []
    for part in (levels[0::2], levels[1::2]):
        sub = BrainInput(entry.subject, entry.roi, "data",
                         data=bd.select(samples=bd.samples[col].isin(part).to_numpy()))
        halves.append(_condition_patterns(sub, key, options))
    return halves


def _rdm_matrix(patterns: np.ndarray, method: str) -> np.ndarray:
    """The (n, n) matrix of :func:`brainalign.rsa.calc_rdm` of (n_conditions, n_channels) patterns."""
    from ..rsa import calc_rdm

    return np.asarray(calc_rdm(patterns, method=method).get_matrices()[0], dtype=float)


def _common_items(model_items: list, brain_items: list, where: str) -> list:
    have = {str(i) for i in model_items}
    common = [i for i in brain_items if str(i) in have]
    if len(common) < 3:
        raise ValueError(
            f"{where}: only {len(common)} stimuli are shared by the model ({len(model_items)} items, e.g. "
            f"{list(model_items)[:3]}) and the brain data ({len(brain_items)}, e.g. {list(brain_items)[:3]}); "
            "RSA needs at least 3. Check that the ids match (stimulus_key=)."
        )
    return common


def _reindex(mat: np.ndarray, items: list, wanted: list) -> np.ndarray:
    pos = {str(i): k for k, i in enumerate(items)}
    idx = np.array([pos[str(w)] for w in wanted])
    return mat[np.ix_(idx, idx)]


class _RDMCache:
    """Model layer RDMs per (model, condition set), computed once."""

    def __init__(self) -> None:
        self._store: dict = {}

    def get(self, model: ModelInput, items: list, rdm_method: str) -> np.ndarray:
        key = (model.name, rdm_method, tuple(map(str, items)))
        if key not in self._store:
            if model.kind == "rdms":
                mats = [_reindex(model.arrays[lay], model.items, items) for lay in model.layers]
            else:
                pos = {str(i): k for k, i in enumerate(model.items)}
                rows = np.array([pos[str(i)] for i in items])
                mats = [_rdm_matrix(np.asarray(model.arrays[lay], dtype=float)[rows], rdm_method)
                        for lay in model.layers]
            self._store[key] = np.stack(mats)
        return self._store[key]


def _rsa_brain(entries: list[BrainInput], key: str, options: dict) -> dict:
    """Per (subject, roi): the ROI RDM, its condition ids, and the ceiling of the ROI."""
    out, by_roi = {}, {}
    n_subjects = {}
    for e in entries:
        n_subjects[e.roi] = n_subjects.get(e.roi, 0) + 1
    for e in entries:
        if e.kind == "rdms":
            mats, items = np.asarray(e.rdms, float), list(e.items)
            out[(e.subject, e.roi)] = dict(rdm=np.nanmean(mats, axis=0), items=items, repeats=mats)
        else:
            pats, items = _condition_patterns(e, key, options)
            rdm = _rdm_matrix(pats, options["rdm_method"])
            reps, rdm_for_reps = [], None
            # one subject: the ceiling comes from split halves of its runs
            halves = _split_halves(e, key, options) if n_subjects[e.roi] == 1 else []
            if len(halves) == 2:
                common = [i for i in items if str(i) in {str(x) for x in halves[0][1]} & {str(x) for x in halves[1][1]}]
                if len(common) >= 3:
                    for pats_h, items_h in halves:
                        pos = {str(i): k for k, i in enumerate(items_h)}
                        reps.append(_rdm_matrix(pats_h[[pos[str(i)] for i in common]], options["rdm_method"]))
                    reps = np.stack(reps)
                    rdm_for_reps = common
                else:
                    reps = []
            rdm_for_reps = rdm_for_reps if len(reps) else None
            out[(e.subject, e.roi)] = dict(rdm=rdm, items=items,
                                           repeats=reps if len(reps) else None,
                                           repeat_items=rdm_for_reps)
        by_roi.setdefault(e.roi, []).append((e.subject, out[(e.subject, e.roi)]))
    return out


def _rsa_ceiling(subjects: list[tuple[str, dict]], items: list, method: str, options: dict, trsa: bool) -> tuple:
    """Noise ceiling over subjects (>= 2), else over the repeats / run halves of the one subject."""
    from ._methods import topo_transform

    if len(subjects) >= 2:
        mats = np.stack([_reindex(d["rdm"], d["items"], items) for _, d in subjects])
    else:
        d = subjects[0][1]
        reps = d.get("repeats")
        if reps is None or len(reps) < 2:
            return (np.nan, np.nan)
        reps_items = d.get("repeat_items") or d["items"]
        common = [i for i in items if str(i) in {str(x) for x in reps_items}]
        if len(common) < 3:
            return (np.nan, np.nan)
        mats = np.stack([_reindex(r, reps_items, common) for r in reps])
    if trsa:
        mats = topo_transform(mats, options)
    from ..rsa import rdm_ceiling

    lower, upper = rdm_ceiling(mats, method=method, rdm_descriptor="index")
    return float(lower), float(upper)


# --------------------------------------------------------------------------- encoding preparation
def _design(model: ModelInput, layer: str, bd: Any, key: str, options: dict) -> np.ndarray:
    """(n_samples, n_features) design of one layer for the brain samples."""
    X = np.asarray(model.arrays[layer], dtype=float)
    n_comp = options.get("pca")
    if n_comp:  # item-level rotation onto the top singular vectors: exact when n_comp >= rank, faster ridge
        # not centred: samples without a stimulus get fill_missing (0), which must stay "no stimulus",
        # not become the mean item (and the mean would mix in the held-out items' features)
        _, sv, vt = np.linalg.svd(X, full_matrices=False)
        keep = min(int(n_comp), int((sv > sv[0] * 1e-10).sum()) if sv.size else 0) or 1
        X = X @ vt[:keep].T
    if key not in bd.samples:
        raise ValueError(
            f"Encoding needs the stimulus of every sample: the samples table has no {key!r} column "
            f"(columns: {list(bd.samples.columns)}); pass stimulus_key=."
        )
    pos = {str(i): k for k, i in enumerate(model.items)}
    ids = bd.samples[key].astype(object).where(bd.samples[key].notna(), None).tolist()
    rows = np.array([pos.get(str(i), -1) if i is not None else -1 for i in ids])
    if (rows < 0).all():
        raise ValueError(
            f"No sample's {key!r} ({pd.unique(pd.Series(ids, dtype=object))[:5].tolist()}...) is an item of model "
            f"{model.name!r} ({model.items[:5]}...); check stimulus_key= and the ids."
        )
    design = np.full((len(rows), X.shape[1]), float(options.get("fill_missing", 0.0)))
    design[rows >= 0] = X[rows[rows >= 0]]
    delays = options.get("delays")
    if delays:
        from ..features import make_delays

        groups = bd.samples["run"].to_numpy() if "run" in bd.samples else None
        design = np.asarray(make_delays(design, delays, groups=groups), dtype=float)
    return design


def _boot_units(bd: Any, key: str, groups: np.ndarray, block: int) -> np.ndarray:
    """What the encoding bootstrap resamples: stimuli when every sample has one of >= 20
    distinct stimuli (event-related / static designs), else blocks of ``block`` consecutive
    samples within runs (time series, where neighbouring samples are not independent)."""
    if key in bd.samples and bd.samples[key].notna().all() and bd.samples[key].nunique() >= 20:
        return bd.samples[key].astype(str).to_numpy()
    out = np.empty(len(groups), dtype=object)
    for g in pd.unique(groups):
        m = np.flatnonzero(groups == g)
        out[m] = [f"{g}|{i // max(1, block)}" for i in range(len(m))]
    return out


def _encoding_ceiling(bd: Any, by: str | None) -> np.ndarray | None:
    """Per-channel ceiling of the held-out r of single presentations, array (n_channels,):
    :func:`brainalign.stats.single_presentation_ceiling` of the samples that have a ``by`` value."""
    if by is None:
        return None
    if by not in bd.samples:
        raise ValueError(f"encoding ceiling_by={by!r} is not a samples column (columns: {list(bd.samples.columns)}).")
    from ..stats import single_presentation_ceiling

    keep = bd.samples[by].notna().to_numpy()
    try:
        return single_presentation_ceiling(np.asarray(bd.data)[keep], bd.samples[by][keep].astype(str).to_numpy())
    except ValueError as err:
        if "presented at least twice" not in str(err):
            raise
        raise ValueError(
            f"encoding ceiling_by={by!r}: fewer than 3 stimuli are presented at least twice, so there is no "
            "noise ceiling; drop ceiling_by or name a column whose values repeat."
        ) from None


def _run_groups(bd: Any) -> np.ndarray:
    return bd.samples["run"].to_numpy() if "run" in bd.samples else np.zeros(bd.n_samples, int)


def _stimulus_ids(bd: Any, key: str) -> np.ndarray:
    """The stimulus of every sample (None where there is none), object array (n_samples,)."""
    if key not in bd.samples:
        raise ValueError(
            f"Encoding needs the stimulus of every sample: the samples table has no {key!r} column "
            f"(columns: {list(bd.samples.columns)}); pass stimulus_key=."
        )
    out = np.empty(bd.n_samples, dtype=object)
    out[:] = [None if pd.isna(v) else v for v in bd.samples[key].to_numpy(dtype=object)]
    return out


def _encoding_gap(opts: dict) -> int:
    """Samples left out of training around held-out stimuli: ``gap``, by default the longest FIR delay."""
    if opts.get("gap") is not None:
        return int(opts["gap"])
    delays = opts.get("delays") or []
    return int(max((abs(int(d)) for d in delays), default=0))


def _encoding_cv_plan(entry: BrainInput, opts: dict, key: str) -> int | None:
    """Check the encoding CV against the stimuli and runs of one entry before anything is computed.

    With ``outer_cv="stimulus"`` (the default) the stimulus-held-out folds are built once
    here, so that an impossible setting fails up front. With a run-wise outer CV, folds
    whose test stimuli are also trained on raise (``shared_stimuli="raise"``) or warn once
    (``"warn"``). Returns ``k`` when the training sets of a run-wise outer CV hold a single
    run, so that the run-grouped inner alpha search is impossible: the inner CV then falls
    back to ``k`` contiguous folds within the training run (``KFold(k)``, no shuffling),
    with a logged note. Raises when the outer CV itself cannot be built, or when
    ``inner_cv="run"`` was asked for explicitly.
    """
    from ..encoding import check_cv, check_shared_stimuli, stimulus_splits

    bd = entry.data
    groups = _run_groups(bd)
    stim = _stimulus_ids(bd, key)
    n_runs = len(pd.unique(groups))
    outer = opts.get("outer_cv", "stimulus")
    where = f"encoding in sweep(), subject {entry.subject!r} ROI {entry.roi!r}"
    if outer == "stimulus":
        try:
            stimulus_splits(stim, runs=groups, n_splits=int(opts.get("stimulus_folds", 5)), gap=_encoding_gap(opts))
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        return None
    try:
        splits = check_cv(outer, bd.n_samples, groups)
    except ValueError as err:
        raise ValueError(
            f"{where}: the data have {n_runs} run(s) ({'samples column run' if 'run' in bd.samples else 'no run column'}) "
            f"and outer_cv={outer!r} cannot be built: {err} Held-out encoding scores need at least 2 runs "
            "(or repeats): give a 'run' samples column (e.g. the repetition index) with >= 2 values, or "
            "hold out stimuli (outer_cv='stimulus', the default)."
        ) from None
    check_shared_stimuli(splits, stim, shared_stimuli=opts.get("shared_stimuli", "raise"),
                         where=f"{where}, outer_cv={outer!r}")
    min_train = min(len(pd.unique(groups[tr])) for tr, _ in splits)
    if min_train >= 2:
        return None
    inner = opts.get("inner_cv", 5)
    if isinstance(inner, str):
        raise ValueError(
            f"{where}: the data have {n_runs} runs, so with outer_cv={outer!r} a training set holds "
            f"{min_train} run and inner_cv={inner!r} cannot leave a run out. Use encoding={{'inner_cv': 5}} "
            "(5 contiguous folds within the training run) or record >= 3 runs / repeats."
        )
    if isinstance(inner, (int, np.integer)) and not isinstance(inner, bool):
        return int(inner)
    return None  # a splitter given by the user: used as is


# --------------------------------------------------------------------------- cache
def _unit_key(spec_meta: dict) -> str:
    blob = json.dumps(spec_meta, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def _cache_read(cache_dir: Path | None, key: str) -> tuple[list[dict], np.ndarray | None] | None:
    """The rows of a cached unit (JSON ``null`` read back as NaN) and its per-channel scores, or None."""
    if cache_dir is None:
        return None
    path = cache_dir / f"{key}.json"
    if not path.exists():
        return None
    try:
        rows = json.loads(path.read_text())["rows"]
        voxels = None
        if (cache_dir / f"{key}.voxels.npy").exists():
            voxels = np.load(cache_dir / f"{key}.voxels.npy", allow_pickle=False)
    except (ValueError, KeyError, OSError):
        logger.warning("ignoring unreadable cache file %s", path)
        return None
    rows = [{k: (np.nan if v is None else v) for k, v in r.items()} for r in rows]
    return rows, voxels


def _cache_write(cache_dir: Path | None, key: str, rows: list[dict], voxels: np.ndarray | None = None) -> None:
    """Store a unit's rows as JSON (NaN as ``null``) and its per-channel scores as ``.npy`` beside them."""
    if cache_dir is None:
        return
    clean = [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()
              if not k.startswith("_")} for r in rows]
    if voxels is not None:
        tmp = cache_dir / f".{key}.{os.getpid()}.voxels.tmp.npy"
        np.save(tmp, np.asarray(voxels, dtype=np.float64), allow_pickle=False)
        os.replace(tmp, cache_dir / f"{key}.voxels.npy")
    tmp = cache_dir / f".{key}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"version": _CACHE_VERSION, "rows": clean}, default=_json_default))
    os.replace(tmp, cache_dir / f"{key}.json")  # written last: its presence means the unit is complete


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
