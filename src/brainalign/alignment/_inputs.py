"""Normalise what users pass to ``sweep``: models (Features, RDMs, extractors) and brains."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .._utils import as_list, close_matches_message, logger
from ..data import BrainData, Features


def _is_rdms(obj: Any) -> bool:
    return hasattr(obj, "get_matrices") and hasattr(obj, "rdm_descriptors")


def mapped_file(arr: np.ndarray) -> tuple[str, int] | None:
    """(file, byte offset) of an array that is a whole C-ordered ``np.memmap`` (or a plain view of one), else None.

    Such an array is read from its file (the page cache) rather than through the mapping, so
    that its pages never stay resident in the process (a feature store of 12 layers x 40,000
    words x 768 floats would otherwise add 1.5 GB to the sweep's RSS).
    """
    mm = arr if isinstance(arr, np.memmap) else getattr(arr, "base", None)
    if not isinstance(mm, np.memmap) or getattr(mm, "filename", None) is None:
        return None
    if arr.shape != mm.shape or arr.dtype != mm.dtype or not (arr.flags.c_contiguous and mm.flags.c_contiguous):
        return None
    if arr.__array_interface__["data"][0] != mm.__array_interface__["data"][0]:
        return None
    return str(mm.filename), int(mm.offset)


def read_mapped(arr: np.ndarray) -> np.ndarray:
    """A memory-mapped array read into memory from its file (see :func:`mapped_file`); other arrays as they are."""
    where = mapped_file(arr)
    if where is None:
        return arr
    return np.fromfile(where[0], dtype=arr.dtype, count=arr.size, offset=where[1]).reshape(arr.shape)


def array_hash(*arrays: Any) -> str:
    """SHA-1 of array bytes, shapes and dtypes (a cache key, not a security hash).

    Contiguous arrays are hashed in place, 64 MiB at a time, and memory maps from their file:
    a response matrix or a feature store of several GB is never copied (nor kept resident)
    for its key.
    """
    h = hashlib.sha1()
    for a in arrays:
        arr = np.asarray(a)
        h.update(f"{arr.shape}{arr.dtype}".encode())
        if arr.dtype == object:
            h.update(repr(arr.tolist()).encode())
            continue
        where = mapped_file(a if isinstance(a, np.memmap) else arr)
        if where is not None:
            with open(where[0], "rb") as fh:
                fh.seek(where[1])
                left = arr.nbytes
                while left:
                    block = fh.read(min(left, 64 << 20))
                    if not block:
                        raise OSError(f"{where[0]} is shorter than the memory map of shape {arr.shape} it backs.")
                    h.update(block)
                    left -= len(block)
            continue
        if not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        flat = arr.reshape(-1)
        step = max(1, (64 << 20) // max(1, arr.itemsize))
        for start in range(0, flat.size, step):
            h.update(memoryview(np.ascontiguousarray(flat[start:start + step])).cast("B"))
    return h.hexdigest()


# --------------------------------------------------------------------------- models
@dataclass
class ModelInput:
    """One model: per layer either an array (n_items, n_features) or an RDM matrix (n, n)."""

    name: str
    layers: list[str]
    kind: str  # "features" or "rdms"
    items: list  # condition / stimulus ids of the rows (features) or of the RDM rows
    arrays: dict[str, np.ndarray]
    item_table: pd.DataFrame | None = None
    provenance: dict = field(default_factory=dict)
    control: str | None = None  # "random_weights" / "shuffled_words" for a control baseline of a model
    _hashes: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict)  # derived arrays (e.g. PCA rotations), computed once

    @property
    def depths(self) -> dict[str, float]:
        n = len(self.layers)
        return {lay: (k / (n - 1) if n > 1 else 0.0) for k, lay in enumerate(self.layers)}

    def layer_hash(self, layer: str) -> str:
        if layer not in self._hashes:
            table = self.item_table
            timing = (table[[c for c in ("onset", "duration", "run") if c in table.columns]].astype(str).to_numpy()
                      if table is not None else np.zeros(0))
            self._hashes[layer] = array_hash(self.arrays[layer], np.asarray(self.items, dtype=object), timing)
        return self._hashes[layer]

    def as_features(self) -> Features:
        """The layers as :class:`~brainalign.Features` (arrays shared, not copied)."""
        return Features(self.arrays, items=self.items, item_table=self.item_table, provenance=self.provenance)


def _rdm_layer_names(rdms: Any) -> list[str]:
    desc = rdms.rdm_descriptors
    for key in ("layer", "name"):
        if key in desc and len(set(map(str, desc[key]))) == rdms.n_rdm:
            return [str(v) for v in desc[key]]
    return [f"rdm{i}" for i in range(rdms.n_rdm)]


def _rdm_items(rdms: Any) -> list:
    pd_ = rdms.pattern_descriptors or {}
    if "stimulus_id" in pd_:
        return list(pd_["stimulus_id"])
    return list(range(rdms.n_cond))


def normalize_models(features: Any, *, stimuli: Any = None, layers: Any = None, cache_dir: Any = None,
                     verbose: bool = False) -> list[ModelInput]:
    """Features / RDMs / FeatureExtractor (with ``stimuli``), or a dict name -> one of them."""
    if isinstance(features, Mapping):
        named = dict(features)
    elif isinstance(features, Features):
        named = {features.model_id: features}
    elif _is_rdms(features):
        named = {"model": features}
    elif hasattr(features, "extract"):
        named = {str(getattr(features, "model_id", None) or getattr(features, "model", "model")): features}
    else:
        raise TypeError(
            "features must be a brainalign Features, rsatoolbox RDMs (one per layer), a FeatureExtractor "
            f"(with stimuli=), or a dict model name -> one of those; got {type(features).__name__}."
        )
    if not named:
        raise ValueError("features is an empty dict: give at least one model.")
    out = []
    for name, obj in named.items():
        name = str(name)
        if hasattr(obj, "extract") and not isinstance(obj, Features):
            if stimuli is None:
                raise ValueError(
                    f"Model {name!r} is a feature extractor: pass stimuli= so that sweep() can extract its "
                    "features (once; every method reuses them)."
                )
            logger.info("extracting features of %s for %d stimuli", name, len(stimuli))
            obj = obj.extract(stimuli)
        wanted = layers.get(name) if isinstance(layers, Mapping) else layers
        if isinstance(obj, Features):
            names = obj.layer_names
            if wanted is not None:
                for w in as_list(wanted):
                    if w not in names:
                        raise KeyError(close_matches_message(f"layer of model {name!r}", w, names))
                names = [n for n in names if n in set(map(str, as_list(wanted)))]
            arrays = {}
            for lay in names:
                arr = np.asarray(obj[lay])
                if arr.ndim != 2:
                    raise ValueError(
                        f"Layer {lay!r} of model {name!r} has shape {arr.shape}; sweep needs pooled features "
                        "(n_items, n_features): extract with pooling='mean' (or another pooling)."
                    )
                arrays[lay] = arr
            out.append(ModelInput(name, names, "features", obj.items, arrays, obj.item_table, dict(obj.provenance),
                                  control=obj.provenance.get("control")))
        elif _is_rdms(obj):
            names = _rdm_layer_names(obj)
            mats = np.asarray(obj.get_matrices(), dtype=float)
            keep = names if wanted is None else [n for n in names if n in set(map(str, as_list(wanted)))]
            if wanted is not None:
                for w in as_list(wanted):
                    if str(w) not in names:
                        raise KeyError(close_matches_message(f"layer of model {name!r}", w, names))
            arrays = {n: mats[names.index(n)] for n in keep}
            out.append(ModelInput(name, keep, "rdms", _rdm_items(obj), arrays,
                                  provenance={"model_id": name, "source": "precomputed RDMs"}))
        else:
            raise TypeError(
                f"Model {name!r}: expected Features, rsatoolbox RDMs or a FeatureExtractor, got {type(obj).__name__}."
            )
    return out


# --------------------------------------------------------------------------- brains
@dataclass
class BrainInput:
    """One subject x ROI: a BrainData selection, or RDM matrices (repeats/sessions) with item ids."""

    subject: str
    roi: str
    kind: str  # "data" or "rdms"
    data: BrainData | None = None
    rdms: np.ndarray | None = None  # (n_repeats, n, n)
    items: list | None = None

    def digest(self) -> str:
        if self.kind == "rdms":
            return array_hash(self.rdms, np.asarray(self.items, dtype=object))
        bd = self.data
        cols = [c for c in bd.samples.columns if bd.samples[c].dtype != object or True]
        return array_hash(bd.data, bd.samples[cols].astype(str).to_numpy(), bd.channels.astype(str).to_numpy())


def _roi_selectors(bd: BrainData, rois: Any) -> dict[str, np.ndarray]:
    """ROI name -> boolean channel mask."""
    has_roi = "roi" in bd.channels
    if rois is None:
        if not has_roi:
            return {"all": np.ones(bd.n_channels, bool)}
        names = [str(r) for r in pd.unique(bd.channels["roi"].dropna())]
        return {r: (bd.channels["roi"].astype(str) == r).to_numpy() for r in names}
    if isinstance(rois, Mapping):
        out = {}
        for name, sel in rois.items():
            if isinstance(sel, Mapping):
                mask = np.ones(bd.n_channels, bool)
                for col, val in sel.items():
                    if col not in bd.channels:
                        raise KeyError(f"ROI {name!r} selects by {col!r}, not a channel column {list(bd.channels.columns)}.")
                    mask &= bd.channels[col].isin(as_list(val)).to_numpy()
            else:
                sel = np.asarray(sel)
                mask = sel if sel.dtype == bool else np.isin(np.arange(bd.n_channels), sel)
                if mask.shape != (bd.n_channels,):
                    raise ValueError(f"ROI {name!r}: a mask needs {bd.n_channels} values, got {mask.shape}.")
            out[str(name)] = mask
        return out
    wanted = [str(r) for r in as_list(rois)]
    if wanted == ["all"] and not has_roi:
        return {"all": np.ones(bd.n_channels, bool)}
    if not has_roi:
        raise ValueError(
            f"rois={wanted} but this BrainData has no 'roi' channel column; pass rois=None (all channels), "
            "or a dict roi name -> channel mask / {column: values}."
        )
    available = [str(r) for r in pd.unique(bd.channels["roi"].dropna())]
    out = {}
    for r in wanted:
        if r == "all":
            out[r] = np.ones(bd.n_channels, bool)
        elif r not in available:
            raise KeyError(close_matches_message("ROI", r, available))
        else:
            out[r] = (bd.channels["roi"].astype(str) == r).to_numpy()
    return out


def _rdm_brain(rdms: Any, *, roi_default: str, subjects: Any, rois: Any) -> list[BrainInput]:
    desc = rdms.rdm_descriptors
    mats = np.asarray(rdms.get_matrices(), dtype=float)
    n = len(mats)
    subj = [str(s) for s in desc.get("subject", ["sub-01"] * n)]
    roi = [str(r) for r in desc.get("roi", [roi_default] * n)]
    items = _rdm_items(rdms)
    out = []
    for s in dict.fromkeys(subj):
        for r in dict.fromkeys(roi):
            idx = [i for i in range(n) if subj[i] == s and roi[i] == r]
            if idx:
                out.append(BrainInput(s, r, "rdms", rdms=mats[idx], items=items))
    return out


def normalize_brains(brain: Any, *, subjects: Any = None, rois: Any = None) -> list[BrainInput]:
    """BrainData, dict subject -> BrainData, RDMs, or dict ROI -> RDMs -> one entry per subject x ROI."""
    entries: list[BrainInput] = []
    if isinstance(brain, BrainData):
        brain = {str(brain.subject or "sub-01"): brain}
    if _is_rdms(brain):
        entries = _rdm_brain(brain, roi_default="all", subjects=subjects, rois=rois)
    elif isinstance(brain, Mapping) and brain:
        values = list(brain.values())
        if all(_is_rdms(v) for v in values):  # ROI -> RDMs
            for roi, rd in brain.items():
                entries.extend(_rdm_brain(rd, roi_default=str(roi), subjects=subjects, rois=rois))
                for e in entries[-rd.n_rdm:]:
                    e.roi = str(roi)
        elif all(isinstance(v, BrainData) for v in values):
            empty: dict[str, list[str]] = {}
            for subj, bd in brain.items():
                for roi, mask in _roi_selectors(bd, rois).items():
                    if not mask.any():
                        empty.setdefault(roi, []).append(str(subj))
                        continue
                    entries.append(BrainInput(str(subj), roi, "data", data=bd.select(channels=mask)))
            if empty:  # one warning for every empty selection, not one per subject
                n_subj = len(brain)
                what = "; ".join(f"ROI {roi!r}: {'all ' + str(n_subj) if len(s) == n_subj else len(s)} subject(s)"
                                 f" ({', '.join(s[:5])}{' ...' if len(s) > 5 else ''})" for roi, s in empty.items())
                warnings.warn(f"ROI selections that match no channel were skipped: {what}.", stacklevel=3)
        else:
            kinds = sorted({type(v).__name__ for v in values})
            raise TypeError(
                "brain as a dict must map subject -> BrainData or ROI -> rsatoolbox RDMs (all values alike); "
                f"got values of types {kinds}."
            )
    else:
        raise TypeError(
            "brain must be a BrainData, rsatoolbox RDMs, a dict subject -> BrainData or a dict ROI -> RDMs; "
            f"got {type(brain).__name__}."
        )
    if subjects is not None:
        entries = _keep(entries, "subject", subjects, "subject")
    if rois is not None and any(e.kind == "rdms" for e in entries) and not isinstance(rois, Mapping):
        entries = _keep(entries, "roi", rois, "ROI")
    return entries


def _keep(entries: list[BrainInput], attr: str, wanted: Any, what: str) -> list[BrainInput]:
    """The entries whose ``attr`` is one of ``wanted``; an unknown value lists close matches."""
    wanted = [str(w) for w in as_list(wanted)]
    have = list(dict.fromkeys(getattr(e, attr) for e in entries))
    for w in wanted:
        if w not in have:
            raise KeyError(close_matches_message(what, w, have))
    return [e for e in entries if getattr(e, attr) in wanted]
