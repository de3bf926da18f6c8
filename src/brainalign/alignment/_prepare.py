"""What an RSA / tRSA unit needs before it runs (condition patterns, RDMs and ceilings of the brain
side), and the on-disk cache of every unit's rows. The encoding units are prepared in
:mod:`._encoding_plan` with the designs of :mod:`._design`."""

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

_CACHE_VERSION = "4"  # 4: designs through features.align_to, encoding-like methods


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
