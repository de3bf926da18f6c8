"""``sweep``: every model x layer x subject x ROI x method, as one tidy table.

Work is cut into units (model, subject, ROI, method), each scoring all layers of the model
with paired bootstrap replicates. Units are independent: they run in this process, in a
thread pool (``n_jobs``), or on a Dask cluster (``client``), and each unit's rows are
cached on disk under a hash of its inputs so that an interrupted sweep resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .._utils import as_list, check_option, logger, progress_bar
from ._inputs import BrainInput, ModelInput, normalize_brains, normalize_models
from ._methods import ENCODING_DEFAULTS, RSA_DEFAULTS, TRSA_DEFAULTS, calc_rdm, rdm_noise_ceiling, run_unit
from ._table import tidy

METHODS = ("encoding", "rsa", "trsa")
_DEFAULTS = {"encoding": ENCODING_DEFAULTS, "rsa": RSA_DEFAULTS, "trsa": TRSA_DEFAULTS}
_CACHE_VERSION = "2"


def _options(methods: list[str], method_options: dict) -> dict[str, dict]:
    unknown = [k for k in method_options if k not in METHODS]
    if unknown:
        raise TypeError(
            f"sweep() got unexpected keyword argument(s) {unknown}; per-method options are passed as "
            f"{', '.join(m + '={...}' for m in METHODS)}."
        )
    out = {}
    for m in methods:
        given = dict(method_options.get(m) or {})
        if m != "encoding":  # encoding passes extra keys on to cross_validate_encoding
            bad = [k for k in given if k not in _DEFAULTS[m]]
            if bad:
                raise ValueError(f"Unknown {m} option(s) {bad}; allowed: {sorted(_DEFAULTS[m])}.")
        out[m] = {**_DEFAULTS[m], **given}
    return out


def _unit_seed(seed: int | None, uid: str) -> int:
    base = 0 if seed is None else int(seed)
    return int(np.random.SeedSequence([base, zlib.crc32(uid.encode())]).generate_state(1)[0])


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
                mats = [calc_rdm(np.asarray(model.arrays[lay], dtype=float)[rows], rdm_method) for lay in model.layers]
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
            rdm = calc_rdm(pats, options["rdm_method"])
            reps, rdm_for_reps = [], None
            # one subject: the ceiling comes from split halves of its runs
            halves = _split_halves(e, key, options) if n_subjects[e.roi] == 1 else []
            if len(halves) == 2:
                common = [i for i in items if str(i) in {str(x) for x in halves[0][1]} & {str(x) for x in halves[1][1]}]
                if len(common) >= 3:
                    for pats_h, items_h in halves:
                        pos = {str(i): k for k, i in enumerate(items_h)}
                        reps.append(calc_rdm(pats_h[[pos[str(i)] for i in common]], options["rdm_method"]))
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
    return rdm_noise_ceiling(mats, method)


# --------------------------------------------------------------------------- encoding preparation
def _design(model: ModelInput, layer: str, bd: Any, key: str, options: dict) -> np.ndarray:
    """(n_samples, n_features) design of one layer for the brain samples."""
    X = np.asarray(model.arrays[layer], dtype=float)
    n_comp = options.get("pca")
    if n_comp:  # item-level PCA: exact when n_comp >= rank (e.g. few distinct stimuli), much faster ridge
        Xc = X - X.mean(0)
        _, sv, vt = np.linalg.svd(Xc, full_matrices=False)
        keep = min(int(n_comp), int((sv > sv[0] * 1e-10).sum()) if sv.size else 0) or 1
        X = Xc @ vt[:keep].T
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


_MAX_CEILING_PAIRS = 45


def _encoding_ceiling(bd: Any, by: str | None) -> np.ndarray | None:
    """Per-channel ceiling of the held-out r of single-presentation data, array (n_channels,).

    The encoding score correlates predictions with single presentations (not with the mean
    of the repeats), so the ceiling is that of one presentation: ``sqrt(c1)`` with ``c1``
    the correlation between two single presentations of the same stimuli (for signal plus
    independent noise, ``c1 = snr / (1 + snr)`` and the best possible r is ``sqrt(c1)``).
    ``c1`` is :func:`brainalign.stats.split_half_reliability` without Spearman-Brown on
    the samples of two presentation indices (the i-th and j-th time each stimulus is
    shown: one presentation per half), averaged over pairs (i, j).
    """
    if by is None:
        return None
    if by not in bd.samples:
        raise ValueError(f"encoding ceiling_by={by!r} is not a samples column (columns: {list(bd.samples.columns)}).")
    from itertools import combinations

    from ..stats import split_half_reliability

    keep = bd.samples[by].notna().to_numpy()
    ids = bd.samples[by][keep].astype(str).reset_index(drop=True)
    data = np.asarray(bd.data)[keep]
    occurrence = ids.groupby(ids).cumcount().to_numpy()  # k-th presentation of each stimulus
    pairs = list(combinations(range(int(occurrence.max()) + 1 if len(ids) else 0), 2))
    if len(pairs) > _MAX_CEILING_PAIRS:  # many repeats: a fixed subset of pairs is plenty
        pick = np.random.default_rng(0).choice(len(pairs), _MAX_CEILING_PAIRS, replace=False)
        pairs = [pairs[k] for k in np.sort(pick)]
    rel = []
    for i, j in pairs:
        m = (occurrence == i) | (occurrence == j)
        if (np.bincount(pd.factorize(ids[m])[0]) == 2).sum() < 3:
            continue  # fewer than 3 stimuli shown an i-th and a j-th time
        rel.append(split_half_reliability(data[m], ids[m].to_numpy(), n_splits=1, spearman_brown=False))
    if not rel:
        raise ValueError(
            f"encoding ceiling_by={by!r}: fewer than 3 stimuli are presented at least twice, so there is no "
            "noise ceiling; drop ceiling_by or name a column whose values repeat."
        )
    return np.sqrt(np.clip(np.mean(rel, axis=0), 0, None))


def _run_groups(bd: Any) -> np.ndarray:
    return bd.samples["run"].to_numpy() if "run" in bd.samples else np.zeros(bd.n_samples, int)


def _encoding_cv_plan(entry: BrainInput, opts: dict) -> int | None:
    """Check the encoding CV against the runs of one entry before anything is computed.

    Returns ``k`` when the training sets of the outer CV hold a single run, so that the
    run-grouped inner alpha search is impossible: the inner CV then falls back to ``k``
    contiguous folds within the training run (``KFold(k)``, no shuffling), with a logged
    note. Raises when the outer CV itself cannot be built, or when ``inner_cv="run"`` was
    asked for explicitly.
    """
    from ..encoding import check_cv

    bd = entry.data
    groups = _run_groups(bd)
    n_runs = len(pd.unique(groups))
    outer = opts.get("outer_cv", "run")
    where = f"encoding in sweep(), subject {entry.subject!r} ROI {entry.roi!r}"
    try:
        splits = check_cv(outer, bd.n_samples, groups)
    except ValueError as err:
        raise ValueError(
            f"{where}: the data have {n_runs} run(s) ({'samples column run' if 'run' in bd.samples else 'no run column'}) "
            f"and outer_cv={outer!r} cannot be built: {err} Held-out encoding scores need at least 2 runs "
            "(or repeats): give a 'run' samples column (e.g. the repetition index) with >= 2 values."
        ) from None
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


def _cache_read(cache_dir: Path | None, key: str) -> list[dict] | None:
    if cache_dir is None:
        return None
    path = cache_dir / f"{key}.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())["rows"]
    except (ValueError, KeyError):
        logger.warning("ignoring unreadable cache file %s", path)
        return None


def _cache_write(cache_dir: Path | None, key: str, rows: list[dict]) -> None:
    if cache_dir is None:
        return
    clean = [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()
              if not k.startswith("_")} for r in rows]
    tmp = cache_dir / f".{key}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"version": _CACHE_VERSION, "rows": clean}, default=_json_default))
    os.replace(tmp, cache_dir / f"{key}.json")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# --------------------------------------------------------------------------- the sweep
def sweep(features: Any, brain: Any, *, methods: Any = METHODS, rois: Any = None, subjects: Any = None,
          layers: Any = None, stimuli: Any = None, stimulus_key: str = "stimulus_id", client: Any = None,
          n_jobs: int = 1, cache_dir: Any = None, n_boot: int = 200, n_perm: int = 200, ci: float = 0.95,
          seed: int | None = 0, progress: bool = True, return_voxel_scores: bool = False,
          **method_options: Any) -> pd.DataFrame:
    """Score every model x layer against every subject x ROI with every method: one tidy table.

    Parameters
    ----------
    features : Features, rsatoolbox RDMs, FeatureExtractor, or dict model name -> one of those
        Layerwise features (``(n_items, n_features)`` per layer), precomputed layer RDMs
        (one RDM per layer, named by the ``layer`` descriptor), or an extractor whose
        features are extracted once from ``stimuli`` and reused by every method.
    brain : BrainData, dict subject -> BrainData, RDMs, or dict ROI -> RDMs
        Recordings with a ``stimulus_key`` sample column (and a ``roi`` channel column for
        several ROIs), or precomputed brain RDMs (descriptors ``subject`` and ``roi``;
        several RDMs of one subject, e.g. sessions, are averaged and give the ceiling).
    methods : sequence of {"encoding", "rsa", "trsa"}
    rois : None, list of str, or dict name -> channel mask / {column: values}
        None: every value of the ``roi`` channel column (or all channels as ``"all"``).
    subjects : list of str, optional
        Keep only these subjects.
    layers : list of str or dict model -> list, optional
        Keep only these layers (default all, in model order).
    stimuli : Stimuli, optional
        Needed when ``features`` holds FeatureExtractors.
    stimulus_key : str
        Sample column that names the stimulus of each sample (matched to feature items /
        RDM ``stimulus_id`` pattern descriptors).
    client : dask.distributed.Client, optional
        Spread the units over a Dask cluster (``client.submit``); default runs locally.
    n_jobs : int
        Local threads (when ``client`` is None).
    cache_dir : path, optional
        Each unit's rows are stored as JSON under a hash of its inputs and options; a
        re-run (e.g. after an interruption) reads them instead of recomputing.
    n_boot : int
        Bootstrap replicates for the CIs and ``p_best`` (RSA: stimuli resampled; encoding:
        runs resampled), the same replicates for every layer of a unit.
    n_perm : int
        Permutations for the p-values (RSA: condition labels; encoding: circular shifts of
        the out-of-fold predictions within runs). ``p`` is one-sided (score > chance).
    ci : float
        Width of the bootstrap intervals.
    seed : int or None
        Every unit derives its own seed from ``seed`` and its identity, so local and Dask
        runs give the same table.
    progress : bool
        Show a progress bar over units.
    return_voxel_scores : bool
        Also return the per-channel encoding scores: ``(table, voxel_scores)`` with
        ``voxel_scores`` a dict ``"model|subject|roi" -> array (n_layers, n_channels)``
        (for maps of the best layer per voxel). Units with voxel scores are not read from
        the cache.
    encoding, rsa, trsa : dict, optional
        Options of each method: ``rsa={"rdm_method": "correlation", "compare": "corr",
        "time_window": None}``, ``trsa={... "lower": 0.0, "upper": 0.5}``,
        ``encoding={"alphas": ..., "outer_cv": "run", "delays": None, "ceiling_by": None,
        ...}`` (other keys go to :func:`brainalign.encoding.cross_validate_encoding`).
        The runs (``run`` samples column) are checked before anything is computed: the
        outer CV needs >= 2 runs, and when a training set holds a single run (e.g. 2 runs
        with ``outer_cv="run"``), the inner alpha search falls back to ``inner_cv``
        (default 5) contiguous folds within that run, with a logged warning
        (``inner_cv="run"`` then raises instead).

    Returns
    -------
    DataFrame
        :data:`RESULT_COLUMNS`, then ``ceiling_low`` (RSA lower ceiling bound), ``p_best``
        (bootstrap probability that the layer is the model's best for this subject, ROI and
        method) and sizes. ``normalized_score = score / ceiling``. ``table.attrs`` holds
        ``timings`` and ``n_cached``.

    Notes
    -----
    Ceilings (the ``ceiling`` column is always on the scale of ``score``, so that
    ``normalized_score = score / ceiling`` is the fraction of the attainable score):

    - encoding (``encoding={"ceiling_by": "stimulus_id"}``; NaN without it): the score is
      the held-out Pearson r of predictions with *single-presentation* data, averaged over
      the ROI's channels. Its ceiling is, per channel, ``sqrt(c1)`` with ``c1`` the
      correlation between two single presentations of the same stimuli
      (:func:`brainalign.stats.split_half_reliability` with one presentation per half and
      no Spearman-Brown step, averaged over pairs of presentations), averaged over the
      ROI's channels. For signal plus noise of variance ratio ``snr`` this is
      ``sqrt(snr / (1 + snr))``, not the (higher) ceiling of the mean of all repeats.
    - RSA / tRSA: the upper bound of :func:`brainalign.rsa.noise_ceiling` over subjects
      (or over one subject's run halves / RDM repeats); the lower bound is ``ceiling_low``.

    Examples
    --------
    >>> table = sweep({"alexnet": alexnet_rdms}, {"hIT": hit_rdms}, methods=["rsa"])  # doctest: +SKIP
    >>> assign_layers(table)  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    methods = [check_option("methods", m, METHODS) for m in as_list(methods)]
    if not methods:
        raise ValueError(f"methods is empty; choose from {list(METHODS)}.")
    options = _options(methods, method_options)
    for name, val in (("n_boot", n_boot), ("n_perm", n_perm)):
        if not isinstance(val, (int, np.integer)) or val < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {val!r}.")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be between 0 and 1, got {ci}.")
    if client is not None and not hasattr(client, "submit"):
        raise TypeError(f"client must be a dask.distributed.Client (with .submit), got {type(client).__name__}.")
    models = normalize_models(features, stimuli=stimuli, layers=layers, progress=progress)
    entries = normalize_brains(brain, subjects=subjects, rois=rois)
    if not entries:
        raise ValueError("No subject x ROI left to score after the subjects= / rois= selection.")
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    common = dict(n_boot=int(n_boot), n_perm=int(n_perm), ci=float(ci))
    inner_plan = _check_encoding_inputs(entries, options["encoding"]) if "encoding" in options else {}
    # Units carry a cache key computed from cheap inputs only (hashes of the feature arrays /
    # RDMs and of the brain data, options, seed); the expensive spec (ROI RDMs, ceilings,
    # designs) is built only for the units that are not in the cache.
    digests: dict[int, str] = {}
    units: list[dict] = []
    for method in methods:
        opts = options[method]
        if method in ("rsa", "trsa"):
            units.extend(_rsa_units(method, opts, models, entries, stimulus_key, seed, common, digests))
        else:
            units.extend(_encoding_units(opts, models, entries, stimulus_key, seed, common, return_voxel_scores,
                                         inner_plan, digests))
    rows, voxel_scores, n_cached, prep_s = _execute(units, cache, client=client, n_jobs=n_jobs, progress=progress)
    table = tidy(rows)
    table.attrs["timings"] = {"prepare_s": prep_s, "total_s": time.perf_counter() - t0}
    table.attrs["n_units"] = len(units)
    table.attrs["n_cached"] = n_cached
    if return_voxel_scores:
        return table, voxel_scores
    return table


def _unit(key_meta: dict, build: Any) -> dict:
    """A unit of work: its identity, its cache key (from ``key_meta``) and ``build()`` -> spec."""
    key = _unit_key({**key_meta, "version": _CACHE_VERSION})
    return dict(key=key, method=key_meta["method"], model=key_meta["model"], subject=key_meta["subject"],
                roi=key_meta["roi"], return_voxels=bool(key_meta.get("return_voxels")), build=build)


def _digest(entries: list[BrainInput], k: int, digests: dict[int, str]) -> str:
    if k not in digests:
        digests[k] = entries[k].digest()
    return digests[k]


def _rsa_units(method, opts, models, entries, key, seed, common, digests):
    if any(e.kind == "data" and e.data.data.ndim == 3 for e in entries) and opts.get("time_window") is None:
        logger.info("epoched data: RSA patterns concatenate all time points (set time_window=(tmin, tmax))")
    by_roi: dict[str, list[int]] = {}
    for k, e in enumerate(entries):
        by_roi.setdefault(e.roi, []).append(k)
    rdm_cache = _RDMCache()
    brain_memo: dict[str, dict] = {}
    group_memo: dict[tuple, tuple] = {}

    def group(model: ModelInput, roi: str) -> tuple:
        """Shared by the subjects of one (model, ROI): items, layer RDMs, ceiling, brain RDMs."""
        if (model.name, roi) not in group_memo:
            roi_entries = [entries[k] for k in by_roi[roi]]
            if roi not in brain_memo:
                brain_memo[roi] = _rsa_brain(roi_entries, key, opts)
            subs = [(e.subject, brain_memo[roi][(e.subject, e.roi)]) for e in roi_entries]
            items = subs[0][1]["items"]
            for _, d in subs[1:]:
                items = [i for i in items if str(i) in {str(x) for x in d["items"]}]
            items = _common_items(model.items, items, f"model {model.name!r}, ROI {roi!r}")
            layer_rdms = rdm_cache.get(model, items, opts["rdm_method"])
            ceiling = _rsa_ceiling(subs, items, opts["compare"], opts, method == "trsa")
            group_memo[(model.name, roi)] = (items, layer_rdms, ceiling, dict(subs))
        return group_memo[(model.name, roi)]

    def builder(model, roi, subj, unit_seed):
        def build() -> dict:
            items, layer_rdms, ceiling, subs = group(model, roi)
            d = subs[subj]
            return dict(method=method, model=model.name, layers=model.layers,
                        depths=[model.depths[lay] for lay in model.layers], subject=subj, roi=roi,
                        options=opts, seed=unit_seed, ceiling=ceiling, layer_rdms=layer_rdms,
                        brain_rdm=_reindex(d["rdm"], d["items"], items), **common)
        return build

    out = []
    for model in models:
        features = [model.layer_hash(lay) for lay in model.layers]
        for roi, idx in by_roi.items():
            # the ceiling and the shared stimuli depend on every subject of the ROI
            roi_digests = [_digest(entries, k, digests) for k in idx]
            for k in idx:
                subj = entries[k].subject
                unit_seed = _unit_seed(seed, f"{method}|{model.name}|{subj}|{roi}")
                meta = dict(method=method, model=model.name, layers=model.layers, subject=subj, roi=roi,
                            options=opts, seed=unit_seed, stimulus_key=key, features=features,
                            brain=_digest(entries, k, digests), roi_brains=roi_digests, **common)
                out.append(_unit(meta, builder(model, roi, subj, unit_seed)))
    return out


def _check_encoding_inputs(entries: list[BrainInput], opts: dict) -> dict[int, int]:
    """Up-front checks of every encoding entry (nothing computed yet); index -> inner KFold k."""
    plan = {}
    for k, e in enumerate(entries):
        if e.kind != "data":
            raise ValueError(
                f"Encoding needs recordings (BrainData), but subject {e.subject!r} ROI {e.roi!r} is given as RDMs; "
                "use methods=('rsa', 'trsa') for RDM inputs."
            )
        if e.data.data.ndim != 2:
            raise ValueError("Encoding in sweep() needs (n_samples, n_channels) data; use encoding.TRF for epochs.")
        inner = _encoding_cv_plan(e, opts)
        if inner is not None:
            plan[k] = inner
    if plan:
        n_runs = sorted({len(pd.unique(_run_groups(entries[k].data))) for k in plan})
        logger.warning(
            "sweep: encoding data with %s run(s) leave a single run in each training set, so the inner alpha "
            "search uses %s contiguous folds within that run instead of leaving runs out (more runs or "
            "repeats avoid this).", "/".join(map(str, n_runs)), "/".join(map(str, sorted(set(plan.values())))))
    return plan


def _encoding_units(opts, models, entries, key, seed, common, return_voxels, inner_plan, digests):
    memo: dict[int, tuple] = {}

    def brain_side(idx: int) -> tuple:
        if idx not in memo:
            bd = entries[idx].data
            groups = _run_groups(bd)
            memo[idx] = (groups, _encoding_ceiling(bd, opts.get("ceiling_by")),
                         _boot_units(bd, key, groups, int(opts.get("block_length", 10))))
        return memo[idx]

    def builder(model, idx, unit_seed):
        def build() -> dict:
            e = entries[idx]
            groups, ceiling_vox, boot_units = brain_side(idx)
            X = [_design(model, lay, e.data, key, opts) for lay in model.layers]
            return dict(method="encoding", model=model.name, layers=model.layers,
                        depths=[model.depths[lay] for lay in model.layers], subject=e.subject, roi=e.roi,
                        options=opts, seed=unit_seed, X=X, Y=np.asarray(e.data.data), groups=groups,
                        boot_units=boot_units, ceiling_voxels=ceiling_vox, return_voxels=return_voxels,
                        inner_kfold=inner_plan.get(idx), **common)
        return build

    out = []
    for idx, e in enumerate(entries):
        for model in models:
            if model.kind != "features":
                raise ValueError(f"Encoding needs feature arrays; model {model.name!r} is given as RDMs.")
            unit_seed = _unit_seed(seed, f"encoding|{model.name}|{e.subject}|{e.roi}")
            meta = dict(method="encoding", model=model.name, layers=model.layers, subject=e.subject, roi=e.roi,
                        options=opts, seed=unit_seed, stimulus_key=key, return_voxels=return_voxels,
                        inner_kfold=inner_plan.get(idx), features=[model.layer_hash(lay) for lay in model.layers],
                        brain=_digest(entries, idx, digests), **common)
            out.append(_unit(meta, builder(model, idx, unit_seed)))
    return out


def _execute(units, cache, *, client, n_jobs, progress):
    rows: list[dict] = []
    voxel_scores: dict = {}
    todo = []
    n_cached = 0
    for u in units:
        hit = None if u["return_voxels"] else _cache_read(cache, u["key"])
        if hit is not None:
            rows.extend(hit)
            n_cached += 1
        else:
            todo.append(u)
    if n_cached:
        logger.info("sweep: %d of %d units read from the cache", n_cached, len(units))
    t_prep = time.perf_counter()
    todo = [(u["key"], u["build"]()) for u in todo]  # the expensive part, only for what is not cached
    prep_s = time.perf_counter() - t_prep

    def collect(key, spec, result):
        for r in result:
            vs = r.pop("_voxel_scores", None)
            if vs is not None:
                voxel_scores[f"{spec['model']}|{spec['subject']}|{spec['roi']}"] = vs
        _cache_write(cache, key, result)
        rows.extend(result)

    if client is not None and todo:
        from distributed import as_completed

        futures = {client.submit(run_unit, spec, pure=False): (key, spec) for key, spec in todo}
        for fut in progress_bar(as_completed(futures), progress=progress, total=len(futures), desc="sweep (dask)"):
            key, spec = futures[fut]
            collect(key, spec, fut.result())
    elif n_jobs is not None and n_jobs != 1 and len(todo) > 1:
        from concurrent.futures import ThreadPoolExecutor, as_completed

        workers = os.cpu_count() if n_jobs == -1 else int(n_jobs)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futs = {pool.submit(run_unit, spec): (key, spec) for key, spec in todo}
            for fut in progress_bar(as_completed(futs), progress=progress, total=len(futs), desc="sweep"):
                key, spec = futs[fut]
                collect(key, spec, fut.result())
    else:
        for key, spec in progress_bar(todo, progress=progress, total=len(todo), desc="sweep"):
            collect(key, spec, run_unit(spec))
    order = {(u["method"], u["model"], u["subject"], u["roi"]): i for i, u in enumerate(units)}
    rows.sort(key=lambda r: (order.get((r["method"], r["model"], str(r["subject"]), str(r["roi"])), 0),
                             r["layer_index"]))
    return rows, voxel_scores, n_cached, prep_s
