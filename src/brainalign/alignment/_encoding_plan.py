"""The encoding units of a sweep (methods ``encoding``, ``banded``, ``trf``): up-front checks and specs.

Every check that can fail is made before anything is computed: the kind of design, the runs
and stories, the named test set, delays against run lengths and the cross-validation plan.
Each unit's spec (designs of every layer through ``align_to``, responses, folds, ceilings,
bootstrap units) is built only when the unit is not in the sweep cache.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from .._utils import as_list, close_matches_message, logger
from . import _design as D
from ._inputs import BrainInput, ModelInput


def _where(method: str, e: BrainInput, model: ModelInput) -> str:
    return f"{method} in sweep(), model {model.name!r}, subject {e.subject!r} ROI {e.roi!r}"


def _event_cv_plan(e: BrainInput, opts: dict, key: str, where: str, stim: np.ndarray, groups: np.ndarray) -> dict:
    """Event designs: check the encoding CV against the stimuli and runs of one entry.

    With ``outer_cv="stimulus"`` (the default) the stimulus-held-out folds are built once
    here, so that an impossible setting fails up front. With a run-wise outer CV, folds
    whose test stimuli are also trained on raise (``shared_stimuli="raise"``) or warn once
    (``"warn"``). When the training sets of a run-wise outer CV hold a single run, the
    run-grouped inner alpha search is impossible: the inner CV then falls back to ``k``
    contiguous folds within the training run (``inner_kfold``), with a logged note.
    """
    from ..encoding import check_cv, check_shared_stimuli, stimulus_splits

    n_runs = len(pd.unique(groups))
    if opts.get("test_runs"):
        stories = np.asarray(groups).astype(str)
        tr, te = D.test_split(stories, stories, opts["test_runs"], where)
        check_shared_stimuli([(tr, te)], stim, shared_stimuli=opts.get("shared_stimuli", "raise"),
                             where=f"{where}, test_runs={opts['test_runs']}")
        return {"outer": [(tr, te)], "test_label": "+".join(map(str, as_list(opts["test_runs"])))}
    outer = opts.get("outer_cv", "stimulus")
    if outer == "stimulus":
        try:
            stimulus_splits(stim, runs=groups, n_splits=int(opts.get("stimulus_folds", 5)), gap=_gap(opts))
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        return {}
    try:
        splits = check_cv(outer, len(groups), groups)
    except ValueError as err:
        raise ValueError(
            f"{where}: the data have {n_runs} run(s) ({'samples column run' if 'run' in e.data.samples else 'no run column'}) "
            f"and outer_cv={outer!r} cannot be built: {err} Held-out encoding scores need at least 2 runs "
            "(or repeats): give a 'run' samples column (e.g. the repetition index) with >= 2 values, or "
            "hold out stimuli (outer_cv='stimulus', the default)."
        ) from None
    check_shared_stimuli(splits, stim, shared_stimuli=opts.get("shared_stimuli", "raise"),
                         where=f"{where}, outer_cv={outer!r}")
    min_train = min(len(pd.unique(groups[tr])) for tr, _ in splits)
    if min_train >= 2:
        return {}
    inner = opts.get("inner_cv", 5)
    if isinstance(inner, str):
        raise ValueError(
            f"{where}: the data have {n_runs} runs, so with outer_cv={outer!r} a training set holds "
            f"{min_train} run and inner_cv={inner!r} cannot leave a run out. Use encoding={{'inner_cv': 5}} "
            "(5 contiguous folds within the training run) or record >= 3 runs / repeats."
        )
    if isinstance(inner, (int, np.integer)) and not isinstance(inner, bool):
        return {"inner_kfold": int(inner)}
    return {}  # a splitter given by the user: used as is


def _gap(opts: dict) -> int:
    """Samples left out of training around held-out stimuli: ``gap``, by default the longest FIR delay."""
    if opts.get("gap") is not None:
        return int(opts["gap"])
    return int(max((abs(int(d)) for d in (opts.get("delays") or [])), default=0))


def plan_entry(method: str, e: BrainInput, model: ModelInput, opts: dict, key: str) -> dict:
    """The checked plan of one (entry, model): kind of design, kept samples, labels and folds."""
    where = _where(method, e, model)
    bd = e.data
    if bd.data.ndim != 2:
        raise ValueError(f"{where}: needs (n_samples, n_channels) data; epochs ({bd.data.shape}) go to encoding.TRF.")
    if model.kind != "features":
        raise ValueError(f"{where}: needs feature arrays; model {model.name!r} is given as RDMs.")
    kind = "continuous" if method == "trf" else D.design_kind(model, bd, key, opts, where)
    if method == "trf" and not (model.item_table is not None and "onset" in model.item_table.columns):
        raise ValueError(f"{where}: a TRF needs timed items (words with onsets); the features of {model.name!r} have "
                         "no onsets.")
    if method == "trf" and not bd.sfreq:
        raise ValueError(f"{where}: a TRF needs the sampling rate of the recording (sfreq).")
    runs_all = D.run_labels(bd)
    keep = D.kept_samples(np.asarray(runs_all).astype(str), opts.get("trim", 0))
    D.check_delays(bd, keep, opts, where)
    runs = np.asarray(runs_all)[keep]
    plan = {"kind": kind, "keep": keep, "runs": runs}
    if kind == "event":
        stim = D.stimulus_ids(bd, key)[keep]
        plan.update(groups=runs, stim=stim, **_event_cv_plan(e, opts, key, where, stim, runs))
        if opts.get("outer_cv", "stimulus") != "stimulus" and not opts.get("test_runs"):
            plan["stim"] = None  # a run-wise outer CV was checked for shared stimuli once, here
        return plan
    stories = D.story_labels(bd)[keep]
    if opts.get("test_runs"):
        tr, te = D.test_split(np.asarray(runs).astype(str), stories, opts["test_runs"], where)
        outer = [(tr, te)]
        plan["test_label"] = "+".join(map(str, as_list(opts["test_runs"])))
    else:
        outer = D.story_folds(stories, int(opts.get("stimulus_folds", 5)), where)
    plan.update(groups=stories, stim=stories, outer=outer)
    return plan


def check_inputs(method: str, entries: list[BrainInput], models: list[ModelInput], opts: dict,
                 key: str) -> dict[tuple, dict]:
    """Up-front checks of every (entry, model) of an encoding-like method: (entry index, model) -> plan."""
    plans = {}
    for k, e in enumerate(entries):
        if e.kind != "data":
            raise ValueError(
                f"{method} needs recordings (BrainData), but subject {e.subject!r} ROI {e.roi!r} is given as RDMs; "
                "use methods=('rsa', 'trsa') for RDM inputs."
            )
        for model in _scored(method, models, opts):
            plans[(k, model.name)] = plan_entry(method, e, model, opts, key)
    if method == "banded":
        _others(models, opts)  # names checked up front
    single = {k: p["inner_kfold"] for (k, _), p in plans.items() if p.get("inner_kfold")}
    if single:
        n_runs = sorted({len(pd.unique(p["runs"])) for p in plans.values() if p.get("inner_kfold")})
        logger.warning(
            "sweep: encoding data with %s run(s) leave a single run in each training set, so the inner alpha "
            "search uses %s contiguous folds within that run instead of leaving runs out (more runs or "
            "repeats avoid this).", "/".join(map(str, n_runs)), "/".join(map(str, sorted(set(single.values())))))
    return plans


def _others(models: list[ModelInput], opts: dict) -> list[tuple[ModelInput, str, str]]:
    """``banded`` other bands: (model, layer, band name) for every name of ``others``
    (``"model"`` with a single layer, or ``"model:layer"``)."""
    names = as_list(opts.get("others"))
    if not names:
        raise ValueError("method 'banded' needs others=[...]: the feature spaces fitted beside each layer (names of "
                         "models in features=, e.g. 'word_rate', or 'model:layer').")
    by_name = {m.name: m for m in models}
    out = []
    for name in map(str, names):
        model_name, _, layer = name.partition(":")
        if model_name not in by_name:
            raise KeyError(close_matches_message("model of banded others", model_name, list(by_name)))
        m = by_name[model_name]
        if not layer:
            if len(m.layers) != 1:
                raise ValueError(f"banded others={name!r}: model {model_name!r} has {len(m.layers)} layers "
                                 f"({m.layers[:6]}); name one as '{model_name}:<layer>'.")
            layer = m.layers[0]
        elif layer not in m.layers:
            raise KeyError(close_matches_message(f"layer of model {model_name!r}", layer, m.layers))
        out.append((m, layer, name))
    return out


def _scored(method: str, models: list[ModelInput], opts: dict) -> list[ModelInput]:
    """The models a method scores: for ``banded``, not the (one-layer) models named whole as other bands."""
    if method != "banded":
        return list(models)
    used = {str(n) for n in as_list(opts.get("others")) if ":" not in str(n)}
    return [m for m in models if m.name not in used]


def build_units(method: str, opts: dict, models: list[ModelInput], entries: list[BrainInput], key: str,
                plans: dict, common: dict, *, make_unit: Callable, seed_of: Callable, digest: Callable) -> list[dict]:
    """The units of one encoding-like method; each spec is built only when its unit is run."""
    sides: dict[tuple, dict] = {}
    inter: dict[str, dict] = {}

    def designs(model: ModelInput, e: BrainInput, plan: dict) -> D.Designs:
        # the responses' precision: float32 data get float32 designs (half the memory of every layer's X)
        dtype = np.result_type(e.data.data.dtype if e.data.data.dtype.kind == "f" else np.float64, np.float32)
        return D.Designs(model, D.sample_grid(e.data, key, plan["kind"]), plan["kind"], opts, plan["keep"], dtype,
                         lagged=method != "trf")

    def brain_side(idx: int, model: ModelInput, plan: dict) -> dict:
        k = (idx, plan["kind"])
        if k not in sides:
            e = entries[idx]
            Y = D.responses(e.data, plan["keep"], opts)
            by = opts.get("ceiling_by")
            if by == "inter_subject":
                if "all" not in inter:
                    inter["all"] = D.inter_subject_ceilings(entries, plan["keep"])
                ceiling = inter["all"][idx]
            else:
                ceiling = D.encoding_ceiling(e.data, by, plan["kind"], plan["keep"], Y)
            sides[k] = dict(Y=Y, ceiling_voxels=ceiling,
                            boot_units=D.boot_units(plan["stim"] if plan["kind"] == "event" else None, plan["runs"],
                                                    int(opts.get("block_length", 10)), plan["kind"]))
        return sides[k]

    def builder(model: ModelInput, idx: int, unit_seed: int) -> Callable[[], dict]:
        def build() -> dict:
            e, plan = entries[idx], plans[(idx, model.name)]
            spec = dict(method=method, model=model.name, layers=model.layers,
                        depths=[model.depths[lay] for lay in model.layers], subject=e.subject, roi=e.roi,
                        options=opts, random_state=unit_seed, control=model.control,
                        X=designs(model, e, plan), lean=plan["kind"] == "continuous",
                        groups=plan["groups"], stimulus_ids=plan.get("stim"), outer=plan.get("outer"),
                        gap=_gap(opts) if plan["kind"] == "event" else 0, perm_groups=plan["runs"],
                        runs=plan["runs"], inner_kfold=plan.get("inner_kfold"), test_label=plan.get("test_label"),
                        sfreq=e.data.sfreq, **brain_side(idx, model, plan), **common)
            if method == "banded":
                parts, bands, start = [], {}, 0
                for m, layer, name in _others(models, opts):
                    one = ModelInput(m.name, [layer], m.kind, m.items, {layer: m.arrays[layer]}, m.item_table,
                                     cache=m.cache)
                    X = designs(one, e, plans.get((idx, m.name)) or plan_entry(method, e, m, opts, key))[0]
                    parts.append(X)
                    bands[name] = (start, start + X.shape[1])
                    start += X.shape[1]
                spec.update(others_X=np.concatenate(parts, axis=1), others_bands=bands)
                if spec["outer"] is None:  # event design: whole stimuli held out, as encoding does
                    from ..encoding import stimulus_splits

                    spec["outer"] = stimulus_splits(plan["stim"], runs=plan["runs"],
                                                    n_splits=int(opts.get("stimulus_folds", 5)), gap=_gap(opts))
            return spec
        return build

    out = []
    for idx, e in enumerate(entries):
        for model in _scored(method, models, opts):
            unit_seed = seed_of(f"{method}|{model.name}|{e.subject}|{e.roi}")
            plan = plans[(idx, model.name)]
            meta = dict(method=method, model=model.name, layers=model.layers, subject=e.subject, roi=e.roi,
                        options=opts, random_state=unit_seed, stimulus_key=key, control=model.control,
                        inner_kfold=plan.get("inner_kfold"), features=[model.layer_hash(lay) for lay in model.layers],
                        brain=digest(idx), **common)
            if method == "banded":
                meta["others"] = [m.layer_hash(layer) for m, layer, _ in _others(models, opts)]
            if opts.get("ceiling_by") == "inter_subject":
                meta["roi_brains"] = [digest(j) for j, x in enumerate(entries) if x.roi == e.roi]
            out.append(make_unit(meta, builder(model, idx, unit_seed)))
    return out
