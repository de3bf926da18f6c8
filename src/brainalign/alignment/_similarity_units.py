"""Sweep units for the measures of :mod:`brainalign.similarity` (CKA, shape metrics, CCA, kNN...).

One unit scores every layer of one model against one subject's ROI with one measure:

- the ROI matrix is the mean response to each stimulus over its repeats, ``(n_stimuli,
  n_channels)``, matched to the feature items by ``stimulus_key`` exactly as for RSA (the
  stimuli shared by the model and every subject of the ROI, in the first subject's order);
  the stochastic measures get the repeats themselves, ``(n_repeats, n_stimuli, n_channels)``,
  and the model a deterministic copy (two identical repeats: a point mass per stimulus);
- every layer against the ROI in one :func:`brainalign.similarity.bootstrap` /
  :func:`~brainalign.similarity.permutation_test` call, so each layer's precomputation
  (centring, SVD, kernels, neighbours) is shared within a draw, and every layer is scored on
  the *same* stimulus draws (``p_best``) and the same relabellings (``p``);
- the draws depend only on ``random_state`` and the list of stimuli: every subject (and every
  model with the same stimuli) gets the same draws, so the per-subject replicates kept in
  ``table.attrs["replicates"]`` support the joint subject x stimulus bootstrap of
  :func:`brainalign.alignment.compare_layers`;
- ``score = similarity.to_score(raw_score)`` (higher is better for every measure),
  ``ceiling`` = :func:`brainalign.similarity.split_half_ceiling` of the subject's repeats (on the
  score scale), ``normalized_score = similarity.normalize_score(score, ceiling)`` (NaN for the
  unbounded distances).
"""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .._utils import Bunch
from ._inputs import BrainInput, ModelInput
from ._prepare import _common_items, _condition_patterns

#: The sweep's own RSA / tRSA methods (``brainalign.rsa``, ``brainalign.topology``) stand for the
#: registry's ``rsa`` / ``trsa`` entries, which compute the same numbers.
_SWEEP_OWN = ("rsa", "trsa")
#: Options every similarity method of the sweep takes besides the measure's own parameters.
SWEEP_OPTIONS = {"ceiling_splits": 20, "spearman_brown": False, "time_window": None, "device": "cpu"}


def _registry() -> dict:
    from ..similarity import MEASURES

    return MEASURES


#: Sweep method names of the similarity measures: the keys of ``brainalign.similarity.MEASURES``
#: (but ``rsa`` / ``trsa``, which are the sweep's own methods).
SIMILARITY_METHODS = tuple(name for name in _registry() if name not in _SWEEP_OWN)
#: Per similarity method: its options in ``sweep(**{method: {...}})`` and recipes
#: (``[methods.<name>]``) with their defaults: the measure's settable parameters
#: (``MEASURES[name].parameters``) and :data:`SWEEP_OPTIONS`.
SIMILARITY_DEFAULTS = {name: {**_registry()[name].parameters, **SWEEP_OPTIONS} for name in SIMILARITY_METHODS}


def _seed(random_state: int | None, *parts: str) -> int:
    base = 0 if random_state is None else int(random_state)
    words = [base] + [zlib.crc32(p.encode()) for p in parts]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def _items_digest(items: list) -> str:
    return f"{zlib.crc32(repr([str(i) for i in items]).encode()):08x}"


# --------------------------------------------------------------------------- brain side
def _samples(entry: BrainInput, key: str, time_window: Any) -> tuple[np.ndarray, np.ndarray]:
    """Single presentations ``(n_samples, n_features)`` of the samples that have a stimulus, and their ids."""
    bd = entry.data
    keep = bd.samples[key].notna().to_numpy()
    data = np.asarray(bd.data, dtype=float)[keep]
    if data.ndim == 3:
        t = np.asarray(bd.times)
        mask = np.ones(len(t), bool) if time_window is None else (t >= time_window[0]) & (t <= time_window[1])
        data = data[..., mask].reshape(len(data), -1)
    return data, bd.samples[key][keep].astype(str).to_numpy()


def _repeats(samples: np.ndarray, ids: np.ndarray, items: list, where: str) -> np.ndarray:
    """``(n_repeats, n_items, n_features)``: the first ``r`` presentations of every item, ``r`` the fewest."""
    pos = {str(i): np.flatnonzero(ids == str(i)) for i in items}
    r = min(len(v) for v in pos.values())
    if r < 2:
        once = [i for i, v in pos.items() if len(v) < 2][:5]
        raise ValueError(f"{where}: the stochastic measures need every stimulus presented at least twice, but "
                         f"{once} ... are presented once. Use a deterministic measure, or keep repeated stimuli only.")
    if any(len(v) > r for v in pos.values()):
        warnings.warn(f"{where}: stimuli are presented {r} to {max(len(v) for v in pos.values())} times; the "
                      f"stochastic measure uses the first {r} presentations of each.", stacklevel=3)
    return np.stack([samples[pos[str(i)][:r]] for i in items], axis=1)


def _ceiling(samples: np.ndarray, ids: np.ndarray, items: list, method: str, opts: dict, params: dict,
             random_state: int) -> float:
    """Split-half ceiling of the subject's repeats (score scale), NaN when no stimulus is repeated."""
    from .. import similarity

    keep = np.isin(ids, [str(i) for i in items])
    counts = pd.Series(ids[keep]).value_counts()
    need = 4 if "repeats" in similarity.MEASURES[method].needs else 2
    if (counts >= need).sum() < 3:
        return float("nan")
    keep &= np.isin(ids, counts.index[counts >= need].to_numpy())  # stimuli shown too few times are left out
    res = similarity.split_half_ceiling(samples[keep], ids[keep], method=method, n_splits=int(opts["ceiling_splits"]),
                                        spearman_brown=bool(opts["spearman_brown"]), random_state=random_state,
                                        device=opts["device"], **params)
    return float(res.ceiling)


# --------------------------------------------------------------------------- units
def similarity_units(method: str, opts: dict, models: list[ModelInput], entries: list[BrainInput], key: str,
                     random_state: int | None, common: dict, digest: Callable[[int], str]) -> list[tuple[dict, Any]]:
    """``(cache-key metadata, build)`` of every (model, subject, ROI) unit of one similarity method."""
    from .. import similarity

    measure = similarity.MEASURES[method]
    params = {k: v for k, v in opts.items() if k not in SWEEP_OPTIONS}
    stochastic = "repeats" in measure.needs
    for e in entries:
        if e.kind != "data":
            raise ValueError(f"The similarity measure {method!r} compares response matrices; subject {e.subject!r} "
                             f"ROI {e.roi!r} is given as RDMs. Give recordings (BrainData), or use methods=('rsa', "
                             "'trsa') for RDM inputs.")
        if key not in e.data.samples:
            raise ValueError(f"{method!r} needs the stimulus of every sample: the samples table of subject "
                             f"{e.subject!r} has no {key!r} column (columns: {list(e.data.samples.columns)}); "
                             "pass stimulus_key= to name it.")
    for model in models:
        if model.kind != "features":
            raise ValueError(f"The similarity measure {method!r} needs feature arrays; model {model.name!r} is given "
                             "as RDMs (use methods=('rsa', 'trsa') for RDM models).")
    by_roi: dict[str, list[int]] = {}
    for k, e in enumerate(entries):
        by_roi.setdefault(e.roi, []).append(k)
    brain_memo: dict[int, tuple] = {}
    ceiling_memo: dict[tuple, float] = {}  # one per subject and stimulus set, whatever the model

    def brain(k: int) -> tuple:
        if k not in brain_memo:
            pats, items = _condition_patterns(entries[k], key, {"time_window": opts.get("time_window")})
            samples, ids = _samples(entries[k], key, opts.get("time_window"))
            brain_memo[k] = (pats, [str(i) for i in items], samples, ids)
        return brain_memo[k]

    def shared_items(model: ModelInput, roi: str) -> list:
        items = brain(by_roi[roi][0])[1]
        for k in by_roi[roi][1:]:
            have = set(brain(k)[1])
            items = [i for i in items if i in have]
        return [str(i) for i in _common_items(model.items, items, f"{method!r}: model {model.name!r}, ROI {roi!r}")]

    def ceiling(k: int, items: list, samples: np.ndarray, ids: np.ndarray) -> float:
        key_ = (k, tuple(items))
        if key_ not in ceiling_memo:
            e = entries[k]
            ceiling_memo[key_] = _ceiling(samples, ids, items, method, opts, params,
                                          _seed(random_state, "ceiling", method, e.subject, e.roi))
        return ceiling_memo[key_]

    def builder(model: ModelInput, roi: str, k: int):
        def build() -> dict:
            e = entries[k]
            items = shared_items(model, roi)
            pats, brain_items, samples, ids = brain(k)
            where = f"{method!r}: subject {e.subject!r}, ROI {roi!r}"
            pos = {i: n for n, i in enumerate(brain_items)}
            Y = _repeats(samples, ids, items, where) if stochastic else pats[[pos[i] for i in items]]
            rows = {str(i): n for n, i in enumerate(model.items)}
            idx = np.array([rows[i] for i in items])
            X = [np.asarray(model.arrays[lay], dtype=np.float64)[idx] for lay in model.layers]
            if stochastic:  # a deterministic representation: every repeat the same (zero covariance)
                X = [np.stack([x, x]) for x in X]
            draws = _items_digest(items)
            return dict(method=method, model=model.name, layers=model.layers,
                        depths=[model.depths[lay] for lay in model.layers], subject=e.subject, roi=roi,
                        X=X, Y=Y, params=params, device=opts["device"],
                        ceiling=ceiling(k, items, samples, ids),
                        boot_seed=_seed(random_state, "similarity-draws", draws),
                        perm_seed=_seed(random_state, "similarity-permutations", draws),
                        draws=f"{random_state}|{draws}|{len(items)}", **common)
        return build

    out = []
    for model in models:
        features = [model.layer_hash(lay) for lay in model.layers]
        for roi, idx in by_roi.items():
            roi_digests = [digest(k) for k in idx]  # the shared stimuli depend on every subject of the ROI
            for k in idx:
                meta = dict(method=method, model=model.name, layers=model.layers, subject=entries[k].subject, roi=roi,
                            options=opts, random_state=random_state, stimulus_key=key, features=features,
                            brain=digest(k), roi_brains=roi_digests, **common)
                out.append((meta, builder(model, roi, k)))
    return out


def similarity_unit(spec: dict) -> list[dict]:
    """Score every layer of a unit: raw values, scores, bootstrap CIs and ``p_best``, permutation p-values."""
    from .. import similarity

    method, params, device = spec["method"], spec["params"], spec["device"]
    measure = similarity.MEASURES[method]
    X, Y = list(spec["X"]), [spec["Y"]]
    n_resamples, n_permutations = int(spec["n_resamples"]), int(spec["n_permutations"])
    n_layers = len(X)
    boot = np.full((0, n_layers), np.nan)
    if n_resamples >= 2:
        res = similarity.bootstrap(X, Y, method=method, n_resamples=n_resamples, ci=float(spec["ci"]),
                                   random_state=spec["boot_seed"], device=device, **params)
        raw, boot = np.asarray(res.value, float)[:, 0], np.asarray(res.samples, float)[:, :, 0]
    else:
        raw = np.asarray(similarity.pairwise(X, Y, method=method, device=device, **params), float)[:, 0]
    score = np.asarray(similarity.to_score(raw, method), dtype=float)
    p = np.full(n_layers, np.nan)
    if n_permutations >= 1:
        p = np.asarray(similarity.permutation_test(X, Y, method=method, n_permutations=n_permutations,
                                                   random_state=spec["perm_seed"], device=device, **params).pvalue,
                       float)[:, 0]
    alpha = (1 - float(spec["ci"])) / 2
    lo = hi = p_best = np.full(n_layers, np.nan)
    complete = boot[np.isfinite(boot).all(axis=1)]  # p_best from the draws where every layer is defined
    if len(complete):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanquantile(boot, [alpha, 1 - alpha], axis=0)
        p_best = np.bincount(np.argmax(complete, axis=1), minlength=n_layers) / len(complete)
    ceiling = float(spec["ceiling"])
    normalized = np.asarray(similarity.normalize_score(score, np.full(n_layers, ceiling), method), dtype=float)
    Yarr = np.asarray(spec["Y"])
    rows = []
    for k, layer in enumerate(spec["layers"]):
        rows.append({
            "model": spec["model"], "layer": layer, "layer_index": k, "layer_depth": spec["depths"][k],
            "subject": spec["subject"], "roi": spec["roi"], "method": method, "metric": method,
            "score": float(score[k]), "ceiling": ceiling, "normalized_score": float(normalized[k]),
            "ci_low": float(lo[k]), "ci_high": float(hi[k]), "p": float(p[k]), "ceiling_low": float("nan"),
            "p_best": float(p_best[k]), "raw_score": float(raw[k]), "raw_kind": measure.kind,
            "score_transform": measure.score, "n_conditions": int(Yarr.shape[-2]), "n_channels": int(Yarr.shape[-1]),
        })
    if len(boot):
        rows[0]["_replicates"] = Bunch(samples=boot, draws=spec["draws"], n_stimuli=int(Yarr.shape[-2]))
    return rows


# --------------------------------------------------------------------------- replicates on disk
def write_replicates(cache_dir: Path | None, key: str, rep: Bunch | None) -> None:
    """Store a unit's stimulus replicates beside its cached rows (written before the rows, which mark completion)."""
    if cache_dir is None or rep is None:
        return
    import os

    tmp = cache_dir / f".{key}.{os.getpid()}.replicates.tmp.npz"
    with open(tmp, "wb") as fh:
        np.savez(fh, samples=np.asarray(rep.samples, dtype=np.float64), draws=np.array(str(rep.draws)),
                 n_stimuli=np.array(int(rep.n_stimuli)))
    os.replace(tmp, cache_dir / f"{key}.replicates.npz")


def read_replicates(cache_dir: Path | None, key: str) -> Bunch | None:
    """The stimulus replicates cached with a unit, or None."""
    if cache_dir is None or not (cache_dir / f"{key}.replicates.npz").exists():
        return None
    try:
        with np.load(cache_dir / f"{key}.replicates.npz", allow_pickle=False) as z:
            return Bunch(samples=z["samples"], draws=str(z["draws"]), n_stimuli=int(z["n_stimuli"]))
    except (ValueError, KeyError, OSError):
        return None
