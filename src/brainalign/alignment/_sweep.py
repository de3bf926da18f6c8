"""``sweep``: every model x layer x subject x ROI x method, as one tidy table.

Work is cut into units (model, subject, ROI, method), each scoring all layers of the model
with paired bootstrap replicates. Units are independent: they run in this process, in a
thread pool (``n_jobs``), or on a Dask cluster (``client``), and each unit's rows are
cached on disk under a hash of its inputs so that an interrupted sweep resumes.
"""

from __future__ import annotations

import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._docs import fill_doc
from .._utils import as_list, check_option, logger, parallel_map, progress_bar
from ._inputs import BrainInput, ModelInput, normalize_brains, normalize_models
from ._group import UnitReplicates
from ._methods import RSA_DEFAULTS, TRSA_DEFAULTS
from ._methods import run_unit as _core_unit
from ._prepare import (
    _CACHE_VERSION,
    _cache_read,
    _cache_write,
    _common_items,
    _RDMCache,
    _reindex,
    _rsa_brain,
    _rsa_ceiling,
    _unit_key,
)
from ._similarity_units import (
    SIMILARITY_DEFAULTS,
    SIMILARITY_METHODS,
    read_replicates,
    similarity_unit,
    similarity_units,
    write_replicates,
)
from ._table import VoxelScores, tidy
from . import _encoding_plan
from ._controls import CONTROLS
from ._design import ENCODING_METHODS
from ._encoding_units import BANDED_DEFAULTS, ENCODING_DEFAULTS, TRF_DEFAULTS

#: The methods a sweep runs by default.
CORE_METHODS = ("encoding", "rsa", "trsa")
#: Every method of :func:`sweep`: the core ones, the naturalistic encoding ones (banded ridge with
#: variance partitioning, TRFs) and the similarity measures (``brainalign.similarity.MEASURES``).
METHODS = CORE_METHODS + ("banded", "trf") + SIMILARITY_METHODS
_DEFAULTS = {"encoding": ENCODING_DEFAULTS, "rsa": RSA_DEFAULTS, "trsa": TRSA_DEFAULTS, "banded": BANDED_DEFAULTS,
             "trf": TRF_DEFAULTS, **SIMILARITY_DEFAULTS}


def run_unit(spec: dict[str, Any]) -> list[dict]:
    """Dispatch one unit (module-level so that Dask workers can import it)."""
    if spec["method"] in SIMILARITY_METHODS:
        return similarity_unit(spec)
    return _core_unit(spec)


def _options(methods: list[str], method_options: dict) -> dict[str, dict]:
    unknown = [k for k in method_options if k not in METHODS]
    if unknown:
        raise TypeError(
            f"sweep() got unexpected keyword argument(s) {unknown}; per-method options are passed as "
            f"{', '.join(m + '={...}' for m in CORE_METHODS)} or **{{'<measure>': {{...}}}} for a similarity "
            f"measure ({', '.join(SIMILARITY_METHODS)})."
        )
    out = {}
    for m in methods:
        given = dict(method_options.get(m) or {})
        if m == "banded":  # banded ridge shares the encoding settings (design, folds, alphas) unless it overrides them
            given = {**dict(method_options.get("encoding") or {}), **given}
        if m not in ("encoding", "banded"):  # encoding passes extra keys on to cross_validate_encoding
            bad = [k for k in given if k not in _DEFAULTS[m]]
            if bad:
                raise ValueError(f"Unknown {m} option(s) {bad}; allowed: {sorted(_DEFAULTS[m])}.")
        out[m] = {**_DEFAULTS[m], **given}
    return out


def _unit_seed(random_state: int | None, uid: str) -> int:
    base = 0 if random_state is None else int(random_state)
    return int(np.random.SeedSequence([base, zlib.crc32(uid.encode())]).generate_state(1)[0])


# --------------------------------------------------------------------------- the sweep
@fill_doc
def sweep(features: Any, brain: Any, *, methods: Any = CORE_METHODS, rois: Any = None, subjects: Any = None,
          layers: Any = None, stimuli: Any = None, stimulus_key: str = "stimulus_id", client: Any = None,
          n_jobs: int = 1, cache_dir: Any = None, n_resamples: int = 200, n_permutations: int = 200, ci: float = 0.95,
          random_state: int | None = 0, verbose: bool = False, controls: Any = None,
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
    methods : sequence of str
        ``"encoding"``, ``"rsa"``, ``"trsa"`` (the default: all three) and any similarity
        measure of :data:`brainalign.similarity.MEASURES` (``"cka"``, ``"procrustes-angular"``,
        ``"mutual_knn"``, ``"pls"``...; the registry's ``rsa`` / ``trsa`` are the methods of the
        same names). A similarity measure compares each layer's features of the shared
        stimuli with the ROI's mean response to each stimulus (stochastic measures: with the
        repeats), see Notes. ``"banded"``: each layer with other feature spaces (banded ridge)
        and its unique / shared variance; ``"trf"``: temporal response functions for
        continuous M/EEG.
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
    %(n_jobs)s
        Local threads (when ``client`` is None).
    cache_dir : path, optional
        Each unit's rows are stored as JSON under a hash of its inputs and options; a
        re-run (e.g. after an interruption) reads them instead of recomputing.
    %(n_resamples)s
        Used for the CIs and ``p_best`` (RSA: stimuli resampled; encoding: stimuli, or
        blocks of ``block_length`` samples within runs for time series), the same
        replicates for every layer of a unit.
    %(n_permutations)s
        Used for the p-values (RSA: condition labels; encoding, trf: circular shifts of
        the held-out predictions within runs; none for banded). ``p`` is one-sided
        (score > chance).
    %(ci)s
    %(random_state)s
        Every unit derives its own generator from it and from its identity, so local and Dask
        runs give the same table.
    %(verbose)s
        Show a progress bar over units.
    controls : list of {"random_weights", "shuffled_words"}, optional
        Control baselines scored beside every model (``<model>[<control>]`` in the table,
        ``control`` column): the same architecture with random weights (needs the model as
        a FeatureExtractor and ``stimuli``), and the model's features with the words
        shuffled within each story (:func:`control_features`).
    encoding, rsa, trsa, banded, trf, <similarity measure> : dict, optional
        Options of each method: ``rsa={"rdm_method": "correlation", "compare": "corr",
        "time_window": None}``, ``trsa={... "low": 0.25, "up": 0.75, "transform":
        "geotopological"}``, ``encoding={"alphas": ..., "outer_cv": "stimulus",
        "stimulus_folds": 5, "gap": None, "shared_stimuli": "raise", "delays": None,
        "ceiling_by": None, "pca": None, "design": "auto", "resample": "lanczos", "trim": 0,
        "zscore": False, "lags": None, "test_runs": None, ...}`` (other keys such as
        ``inner_cv`` go to :func:`brainalign.encoding.cross_validate_encoding`);
        ``banded={"others": [...], "n_iter": 20}`` plus the encoding keys (inherited from
        ``encoding=``); ``trf={"tmin": 0.0, "tmax": 0.5, "lag_windows": None, "alphas": ...,
        "inner_cv": 5, "test_runs": None, "pca": None, "resample": "sum", ...}``
        (:data:`METHOD_DEFAULTS` lists them all).

        Every design matrix is made by :func:`brainalign.features.timing.align_to`: an
        *event* design when ``stimulus_key`` names the model's items (one stimulus per
        sample, rows of zeros where there is none), a *continuous* design when the model's
        items carry onsets (words: Lanczos / sum / mean onto the sample grid, ``trim``,
        ``zscore`` per run, FIR ``delays`` in samples or ``lags`` in seconds, never across
        runs). Continuous designs hold out **whole stories** (the ``story`` samples column,
        else the run): the named ``test_runs`` as one test set (a story also in training
        raises), else ``stimulus_folds`` folds of stories; the alphas are chosen per channel
        by an inner CV over the training stories. ``ceiling_by`` names a column whose values
        recur in several runs (``"story"``: a story heard twice), or ``"inter_subject"``
        (:func:`brainalign.stats.inter_subject_ceiling` across the subjects of each ROI).
        Delays as long as a run raise.

        Encoding holds out *stimuli* by default (``outer_cv="stimulus"``: ``stimulus_folds``
        folds of whole stimuli, all their presentations, by
        :func:`brainalign.encoding.stimulus_splits`; in time series a ``gap`` of samples,
        by default the longest of ``delays``, is left out of training around the held-out
        ones, and the inner alpha search also holds out stimuli). Leaving runs out
        (``outer_cv="run"`` or an int) on a design where every run shows every stimulus
        would train on the tested stimuli: it raises, unless ``shared_stimuli="warn"``
        (then the score measures how reliably each stimulus's response is memorized, not
        a prediction for new stimuli). The folds are checked before anything is computed;
        with a run-wise outer CV whose training sets hold a single run, the inner alpha
        search falls back to ``inner_cv`` (default 5) contiguous folds within that run,
        with a logged warning (``inner_cv="run"`` then raises instead).

        A similarity measure takes its parameters (``MEASURES[name].parameters``, e.g.
        ``**{"procrustes-angular": {"alpha": 0.5}}``, ``mutual_knn={"k": 5}``) and
        ``ceiling_splits`` (20), ``spearman_brown`` (False), ``time_window`` (epochs) and
        ``device`` ("cpu"); :data:`METHOD_DEFAULTS` lists them all.

    Returns
    -------
    DataFrame
        :data:`RESULT_COLUMNS`, then ``ceiling_low`` (RSA lower ceiling bound), ``p_best``
        (bootstrap probability that the layer is the model's best for this subject, ROI and
        method) and sizes. ``normalized_score = score / ceiling``. Rows of similarity measures
        add :data:`SIMILARITY_COLUMNS` (``raw_score``, ``raw_kind``, ``score_transform``), the
        encoding-like methods :data:`STORY_COLUMNS` (``control``, ``bands``, the R² of
        variance partitioning, ``lag_window``, ``test_runs``...; per-voxel best layers with
        :func:`voxel_preferences`).
        ``table.attrs`` holds ``timings``, ``n_units``, ``n_cached``, ``voxel_scores`` (the
        per-channel encoding scores, also read with :func:`voxel_scores`) and ``replicates``
        (:class:`UnitReplicates`: per similarity unit, the bootstrap scores of every layer on
        stimulus draws shared by all subjects, for :func:`compare_layers` and
        :func:`group_p_best`).

    Notes
    -----
    Ceilings (the ``ceiling`` column is always on the scale of ``score``, so that
    ``normalized_score = score / ceiling`` is the fraction of the attainable score):

    - encoding (``encoding={"ceiling_by": "stimulus_id"}``; NaN without it): the score is
      the held-out Pearson r of predictions with *single-presentation* data within each
      outer test fold, averaged over folds and over the ROI's channels (the r of all
      folds' predictions concatenated is biased negative under the null when folds hold
      out stimuli: the intercept learnt on the training stimuli is high where the held-out
      ones are low). Its ceiling is, per channel, ``sqrt(c1)`` with ``c1`` the
      correlation between two single presentations of the same stimuli
      (:func:`brainalign.stats.split_half_reliability` with one presentation per half and
      no Spearman-Brown step, averaged over pairs of presentations), averaged over the
      ROI's channels. For signal plus noise of variance ratio ``snr`` this is
      ``sqrt(snr / (1 + snr))``, not the (higher) ceiling of the mean of all repeats
      (slightly above what a perfect model reaches within folds of few stimuli).
    - RSA / tRSA: the upper bound of :func:`brainalign.rsa.rdm_ceiling` over subjects
      (or over one subject's run halves / RDM repeats); the lower bound is ``ceiling_low``.
    - similarity measures: :func:`brainalign.similarity.split_half_ceiling` of the subject's
      repeats (on the score scale: the score two halves of the repeats reach with each
      other; each half holds half the repeats, so it is conservative for the mean of all of
      them and ``normalized_score`` can exceed 1; ``spearman_brown=True`` extrapolates
      correlation-like scores); NaN without repeated stimuli, and ``normalized_score`` is
      NaN for unbounded distances (``score_transform == "negative"``).

    Similarity measures: the ROI matrix is the mean response to each stimulus
    (``(n_stimuli, n_channels)``), matched to the feature items by ``stimulus_key`` as for
    RSA (the stimuli shared by the model and every subject of the ROI). ``score`` is
    higher-is-better for every measure (``brainalign.similarity.to_score`` of ``raw_score``),
    so ``p_best``, ``p`` (stimulus labels of the ROI permuted) and the CIs (stimuli
    resampled, every layer on the same draws) read the same for distances and similarities.

    Examples
    --------
    >>> table = sweep({"alexnet": alexnet_rdms}, {"hIT": hit_rdms}, methods=["rsa"])  # doctest: +SKIP
    >>> assign_layers(table)  # doctest: +SKIP

    A story-listening analysis (words with onsets, one run per story):

    >>> ex = datasets.load_story_example("lebel2023")  # doctest: +SKIP
    >>> fx = FeatureExtractor(minilm_path, layers="all", context=128)  # doctest: +SKIP
    >>> table = sweep({"minilm": fx}, ex.brain, stimuli=ex.stimuli, controls=["shuffled_words"],
    ...               encoding={"delays": [1, 2, 3, 4], "test_runs": ["fables4"]})  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    methods = [check_option("methods", m, METHODS) for m in as_list(methods)]
    if not methods:
        raise ValueError(f"methods is empty; choose from {list(METHODS)}.")
    options = _options(methods, method_options)
    for name, val in (("n_resamples", n_resamples), ("n_permutations", n_permutations)):
        if not isinstance(val, (int, np.integer)) or val < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {val!r}.")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be between 0 and 1, got {ci}.")
    if client is not None and not hasattr(client, "submit"):
        raise TypeError(f"client must be a dask.distributed.Client (with .submit), got {type(client).__name__}.")
    models = normalize_models(features, stimuli=stimuli, layers=layers, verbose=verbose)
    entries = normalize_brains(brain, subjects=subjects, rois=rois)
    if not entries:
        raise ValueError("No subject x ROI left to score after the subjects= / rois= selection.")
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    common = dict(n_resamples=int(n_resamples), n_permutations=int(n_permutations), ci=float(ci))
    models = _with_controls(models, features, controls, stimuli, random_state)
    plans = {m: _encoding_plan.check_inputs(m, entries, models, options[m], stimulus_key)
             for m in methods if m in ENCODING_METHODS}
    # Units carry a cache key computed from cheap inputs only (hashes of the feature arrays /
    # RDMs and of the brain data, options, random_state); the expensive spec (ROI RDMs, ceilings,
    # designs) is built only for the units that are not in the cache.
    digests: dict[int, str] = {}
    units: list[dict] = []
    for method in methods:
        opts = options[method]
        if method in ("rsa", "trsa"):
            units.extend(_rsa_units(method, opts, models, entries, stimulus_key, random_state, common, digests))
        elif method in SIMILARITY_METHODS:
            units.extend(_unit(meta, build) for meta, build in similarity_units(
                method, opts, models, entries, stimulus_key, random_state, common,
                lambda k: _digest(entries, k, digests)))
        else:
            units.extend(_encoding_plan.build_units(
                method, opts, models, entries, stimulus_key, plans[method], common,
                make_unit=_unit, seed_of=lambda uid: _unit_seed(random_state, uid),
                digest=lambda k: _digest(entries, k, digests)))
    rows, voxel_scores, replicates, n_cached, prep_s = _execute(units, cache, client=client, n_jobs=n_jobs,
                                                                verbose=verbose)
    table = tidy(rows)
    table.attrs["timings"] = {"prepare_s": prep_s, "total_s": time.perf_counter() - t0}
    table.attrs["n_units"] = len(units)
    table.attrs["n_cached"] = n_cached
    table.attrs["voxel_scores"] = VoxelScores(voxel_scores)
    table.attrs["replicates"] = UnitReplicates(replicates)
    return table


def _unit(key_meta: dict, build: Any) -> dict:
    """A unit of work: its identity, its cache key (from ``key_meta``) and ``build()`` -> spec."""
    key = _unit_key({**key_meta, "version": _CACHE_VERSION})
    return dict(key=key, method=key_meta["method"], model=key_meta["model"], subject=key_meta["subject"],
                roi=key_meta["roi"], build=build)


def _digest(entries: list[BrainInput], k: int, digests: dict[int, str]) -> str:
    if k not in digests:
        digests[k] = entries[k].digest()
    return digests[k]


def _rsa_units(method, opts, models, entries, key, random_state, common, digests):
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
                        options=opts, random_state=unit_seed, ceiling=ceiling, layer_rdms=layer_rdms,
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
                unit_seed = _unit_seed(random_state, f"{method}|{model.name}|{subj}|{roi}")
                meta = dict(method=method, model=model.name, layers=model.layers, subject=subj, roi=roi,
                            options=opts, random_state=unit_seed, stimulus_key=key, features=features,
                            brain=_digest(entries, k, digests), roi_brains=roi_digests, **common)
                out.append(_unit(meta, builder(model, roi, subj, unit_seed)))
    return out


def _execute(units, cache, *, client, n_jobs, verbose):
    rows: list[dict] = []
    voxel_scores: dict = {}
    replicates: dict = {}
    todo = []
    n_cached = 0
    for u in units:
        hit = _cache_read(cache, u["key"])
        if hit is not None:
            rows.extend(hit[0])
            if hit[1] is not None:
                voxel_scores[_voxel_key(u)] = hit[1]
            rep = read_replicates(cache, u["key"])
            if rep is not None:
                replicates[_unit_id(u)] = rep
            n_cached += 1
        else:
            todo.append(u)
    if n_cached:
        logger.info("sweep: %d of %d units read from the cache", n_cached, len(units))
    t_prep = time.perf_counter()
    todo = [(u["key"], u["build"]()) for u in todo]  # the expensive part, only for what is not cached
    prep_s = time.perf_counter() - t_prep

    def collect(key, spec, result):
        vs = rep = None
        for r in result:
            vs = r.pop("_voxel_scores", vs)
            rep = r.pop("_replicates", rep)
        if vs is not None:
            voxel_scores[_voxel_key(spec)] = vs
        if rep is not None:
            replicates[_unit_id(spec)] = rep
            write_replicates(cache, key, rep)  # before the rows, whose file marks the unit complete
        _cache_write(cache, key, result, vs)
        rows.extend(result)

    if client is not None and todo:
        from distributed import as_completed

        futures = {client.submit(run_unit, spec, pure=False): (key, spec) for key, spec in todo}
        for fut in progress_bar(as_completed(futures), verbose=verbose, total=len(futures), desc="sweep (dask)"):
            key, spec = futures[fut]
            collect(key, spec, fut.result())
    else:
        results = parallel_map(lambda item: run_unit(item[1]), todo, n_jobs=n_jobs, verbose=verbose, desc="sweep")
        for (key, spec), result in zip(todo, results):
            collect(key, spec, result)
    order = {(u["method"], u["model"], u["subject"], u["roi"]): i for i, u in enumerate(units)}
    rows.sort(key=lambda r: (order.get((r["method"], r["model"], str(r["subject"]), str(r["roi"])), 0),
                             r["layer_index"]))
    return rows, voxel_scores, replicates, n_cached, prep_s


def _voxel_key(unit: dict) -> str:
    """``model|subject|roi`` (encoding) or ``model|subject|roi|method`` (banded, trf)."""
    key = f"{unit['model']}|{unit['subject']}|{unit['roi']}"
    return key if unit["method"] == "encoding" else f"{key}|{unit['method']}"


def _with_controls(models: list[ModelInput], features: Any, controls: Any, stimuli: Any,
                   random_state: Any) -> list[ModelInput]:
    """The models plus their control baselines (``controls``), each right after its model."""
    if not controls:
        return models
    from collections.abc import Mapping

    from ..data import Features
    from ._controls import control_features, control_name

    kinds = [check_option("controls", c, CONTROLS) for c in as_list(controls)]
    given = dict(features) if isinstance(features, Mapping) else {m.name: features for m in models}
    out = []
    for m in models:
        out.append(m)
        if m.kind != "features" or m.control:
            continue
        source = given.get(m.name)
        for kind in kinds:
            seed = _unit_seed(random_state, f"control|{kind}|{m.name}")
            if kind == "shuffled_words":
                feats = control_features(m.as_features(), kind, random_state=seed)
            elif source is not None and hasattr(source, "extract") and not isinstance(source, Features):
                feats = control_features(source, kind, stimuli=stimuli, random_state=seed)
            else:
                raise ValueError(
                    f"controls={kinds}: the 'random_weights' control of model {m.name!r} runs its architecture with "
                    "random weights, so sweep() needs the model as a FeatureExtractor (with stimuli=), not as "
                    "extracted Features. Give the extractor, or add the random-weights features yourself "
                    "(alignment.control_features) as another model.")
            name = control_name(m.name, kind)
            sub = [lay for lay in m.layers if lay in feats.layer_names]
            out.append(ModelInput(name, sub, "features", feats.items, {lay: np.asarray(feats[lay]) for lay in sub},
                                  feats.item_table, dict(feats.provenance), control=kind))
    return out


def _unit_id(unit: dict) -> str:
    return f"{unit['method']}|{unit['model']}|{unit['subject']}|{unit['roi']}"
