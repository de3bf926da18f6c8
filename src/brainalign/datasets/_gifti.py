"""GIfTI surface time series (``load_gifti``): one file per hemisphere and run.

Shares the TR resolution, standardization and assembly of :mod:`._fmri` (the volume loader).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._utils import check_option
from ..data import BrainData
from ._events import ON_OUTSIDE
from ._fmri import _STANDARDIZE, _as_image, _assemble, _Describe, _finite_std, _run_labels, _sidecar_tr, resolve_tr

# --------------------------------------------------------------------------- surfaces
# vertices per hemisphere of the standard meshes (fsaverage3..7 / ico, fsLR 32k and 59k / 164k)
_MESH_SIZES = frozenset({162, 642, 2562, 10242, 40962, 163842, 32492, 59292})


def _single_array_orientation(shape: tuple[int, int], hemi: str, label: Any, hint: int | None) -> int:
    """Which axis of a single 2-D GIfTI data array holds the vertices (0 or 1).

    Writers disagree: nilearn's ``SurfaceImage`` writes (n_vertices, n_volumes) while
    nilearn's own test-data generator and several pipelines write (n_volumes, n_vertices), and
    neither records it in the array's metadata. The vertex count decides: the count known
    from a mask or another run of this hemisphere, else a standard mesh size (fsaverage,
    fsLR), else the longer axis (surfaces have more vertices than runs have volumes).
    """
    if hint is not None:
        axes = [ax for ax in (0, 1) if shape[ax] == hint]
        if not axes:
            raise ValueError(
                f"The {hemi} GIfTI of run {label!r} holds one array of shape {shape}, but the {hemi} "
                f"hemisphere has {hint} vertices (from its mask or another run)."
            )
        return axes[0]
    known = [ax for ax in (0, 1) if shape[ax] in _MESH_SIZES]
    if len(known) == 1:
        return known[0]
    if shape[0] == shape[1]:
        raise ValueError(
            f"The {hemi} GIfTI of run {label!r} holds one square {shape} array: the vertex axis is "
            "ambiguous. Give mask={'" + hemi + "': ...} (one entry per vertex) to say how many vertices "
            "the surface has, or save one data array per volume."
        )
    axis = int(np.argmax(shape))
    if max(shape) < 10 * min(shape):  # e.g. nilearn's fake BIDS data: 30 volumes x 10 vertices
        warnings.warn(
            f"The {hemi} GIfTI of run {label!r} holds one {shape} array; read axis {axis} "
            f"({shape[axis]}) as vertices and the other as volumes (the longer axis). If that is wrong, "
            "give a mask with one entry per vertex.", stacklevel=4)
    return axis


def _gifti_series(obj: Any, hemi: str, label: Any, n_vertices: int | None = None
                  ) -> tuple[np.ndarray, float | None, Path | None]:
    """(n_volumes, n_vertices) array, TR from the GIfTI ``TimeStep`` metadata (s), path."""
    img, path = _as_image(obj, f"{hemi} GIfTI")
    import nibabel as nib

    if not isinstance(img, nib.gifti.GiftiImage) or not img.darrays:
        raise ValueError(f"The {hemi} surface of run {label!r} is not a GIfTI time series with data arrays.")
    arrays = [np.asarray(d.data) for d in img.darrays]
    if len(arrays) == 1 and arrays[0].ndim == 2:
        axis = _single_array_orientation(arrays[0].shape, hemi, label, n_vertices)
        series = arrays[0] if axis == 1 else arrays[0].T
    elif all(a.ndim == 1 for a in arrays) and len({a.shape for a in arrays}) == 1:
        series = np.stack(arrays)  # one array per volume (fMRIPrep's func.gii)
    else:
        raise ValueError(
            f"The {hemi} GIfTI of run {label!r} has data arrays of shapes {[a.shape for a in arrays][:4]}; "
            "expected one 1D array of vertices per volume, or one 2D array of vertices x volumes."
        )
    step = img.darrays[0].meta.get("TimeStep") if img.darrays[0].meta is not None else None
    tr = float(step) / 1000.0 if step not in (None, "") and float(step) > 0 else None  # GIfTI TimeStep is in ms
    return np.asarray(series, dtype=np.float32), tr, path


def load_gifti(left: Any = None, right: Any = None, *, mask: dict | None = None, events: Any = None,
               tr: float | None = None, run: Any = None, standardize: Any = "zscore",
               subject: str | None = None, nan_policy: str = "raise", on_outside: str = "warn",
               _sidecar_trs: list | None = None) -> BrainData:
    """Load GIfTI surface time series (``.func.gii``, one per hemisphere) into a BrainData.

    Parameters
    ----------
    left, right : path, nibabel GiftiImage, or list of them (one per run), optional
        The time series of each hemisphere (at least one). Each file holds one data array
        per volume (as fMRIPrep writes them) or one 2-D array, vertices x volumes or volumes x
        vertices (writers differ; the vertex axis is the one whose length matches the mask, a
        standard mesh such as fsaverage5, or else the longer one).
    mask : dict of hemi -> bool array of shape (n_vertices,), optional
        The vertices to keep. Default: the vertices whose time series varies in every run
        (drops the medial wall, which is constant).
    events, tr, run, standardize, subject, nan_policy, on_outside
        As in :func:`load_fmri`. The TR comes from ``tr=``, the JSON sidecar next to the
        file (``RepetitionTime``) or the GIfTI ``TimeStep`` metadata (ms).

    Returns
    -------
    BrainData
        ``data`` of shape (n_volumes, n_vertices kept, left then right); ``channels`` with
        ``hemi``, ``vertex``, ``name``; ``space = {"kind": "surface", "n_vertices":
        {hemi: n}}`` so that ``to_image(values)`` gives one GiftiImage per hemisphere.

    Examples
    --------
    >>> import numpy as np, nibabel as nib
    >>> arr = np.random.default_rng(0).normal(size=(8, 5)).astype("float32")
    >>> img = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(a) for a in arr])
    >>> load_gifti(left=img, tr=2.0).shape
    (8, 5)
    """
    check_option("standardize", standardize, _STANDARDIZE)
    check_option("nan_policy", nan_policy, ["raise", "allow"])
    check_option("on_outside", on_outside, ON_OUTSIDE)
    hemis = {h: v for h, v in (("left", left), ("right", right)) if v is not None}
    if not hemis:
        raise ValueError("Give the time series of at least one hemisphere: left= and/or right=.")
    per_hemi = {h: (list(v) if isinstance(v, (list, tuple)) else [v]) for h, v in hemis.items()}
    counts = {h: len(v) for h, v in per_hemi.items()}
    if len(set(counts.values())) > 1:
        raise ValueError(f"The hemispheres have different numbers of runs: {counts}.")
    n_runs = next(iter(counts.values()))
    labels = _run_labels(run, n_runs)
    mask = dict(mask or {})
    unknown = set(mask) - set(hemis)
    if unknown:
        raise ValueError(f"mask names hemispheres {sorted(unknown)} but only {sorted(hemis)} were given.")
    blocks: dict[str, list[np.ndarray]] = {}
    keep: dict[str, np.ndarray] = {}
    n_vertices: dict[str, int] = {}
    trs = []
    for r, label in enumerate(labels):
        found: dict[str, list] = {"sidecar": [], "step": []}
        names = []
        for h in hemis:
            hint = n_vertices.get(h, len(mask[h]) if h in mask else None)
            series, step, path = _gifti_series(per_hemi[h][r], h, label, hint)
            n_vertices.setdefault(h, series.shape[1])
            if series.shape[1] != n_vertices[h]:
                raise ValueError(f"Run {label!r} of the {h} hemisphere has {series.shape[1]} vertices, "
                                 f"run {labels[0]!r} has {n_vertices[h]}.")
            side, side_name = _sidecar_tr(path)
            if _sidecar_trs is not None:
                side, side_name = _sidecar_trs[r], "BIDS JSON sidecars"
            if side is not None:
                found["sidecar"].append(side)
                names.append(side_name)
            if step is not None:
                found["step"].append(step)
            blocks.setdefault(h, []).append(series)
        for key, vals in found.items():
            if len(vals) > 1 and not np.allclose(vals, vals[0]):
                raise ValueError(f"Run {label!r}: the hemispheres have different TRs in their {key}s: {vals} s.")
        tr_run = resolve_tr(tr, found["sidecar"][0] if found["sidecar"] else None,
                            found["step"][0] if found["step"] else None, where=f"run {label!r}",
                            sidecar_name=names[0] if names else "JSON sidecar",
                            header_name="GIfTI TimeStep metadata")
        trs.append(tr_run)
        lengths = {h: len(blocks[h][r]) for h in hemis}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"Run {label!r}: the hemispheres have different numbers of volumes {lengths}.")
    for h in hemis:
        if h in mask:
            m = np.asarray(mask[h], bool)
            if m.shape != (n_vertices[h],):
                raise ValueError(f"The {h} mask has shape {m.shape}; the surface has {n_vertices[h]} vertices.")
        else:
            m = np.ones(n_vertices[h], bool)
            for s in blocks[h]:
                m &= _finite_std(s.T) > 0
        if not m.any():
            raise ValueError(f"The {h} mask keeps no vertex" + ("" if h in mask else
                             " (no vertex varies over time in every run); pass mask= explicitly") + ".")
        keep[h] = m
    runs = [np.ascontiguousarray(np.concatenate([blocks[h][r][:, keep[h]] for h in hemis], axis=1))
            for r in range(n_runs)]
    channels = pd.concat(
        [pd.DataFrame({"hemi": h, "vertex": np.flatnonzero(keep[h]),
                       "name": [f"{h[0].upper()}{v}" for v in np.flatnonzero(keep[h])]}) for h in hemis],
        ignore_index=True,
    )
    space = {"kind": "surface", "n_vertices": dict(n_vertices)}
    return _assemble(runs, channels=channels, trs=trs, run_labels=labels, events=events,
                     standardize=standardize, subject=subject, nan_policy=nan_policy, space=space,
                     describe=_Describe("vertex", channels, ["hemi", "vertex"]), on_outside=on_outside)
