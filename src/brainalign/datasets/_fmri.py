"""fMRI loaders: 4D NIfTI volumes (``load_fmri``) and GIfTI surface time series (``load_gifti``).

Both return a :class:`~brainalign.BrainData` of shape (n_volumes, n_voxels or n_vertices)
with one row per volume (``run``, ``volume``, ``onset`` and, with events, the stimulus
labels) and one row per voxel / vertex, plus the ``space`` needed by
``BrainData.to_image`` to put a vector of values back into an image.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._utils import as_list, check_option, logger
from ..data import BrainData, Stimuli
from ._events import ON_OUTSIDE, read_events, volume_labels

__all__ = ["load_fmri", "load_gifti"]

_STANDARDIZE = ["zscore", "psc", False, None]
_TIME_SCALE = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}


# --------------------------------------------------------------------------- small helpers
def _stem(path: Path) -> Path:
    """``.../x_bold.nii.gz`` -> ``.../x_bold`` (also ``.nii``, ``.func.gii``, ``.gii``)."""
    name = path.name
    for ext in (".nii.gz", ".nii", ".func.gii", ".gii"):
        if name.endswith(ext):
            return path.with_name(name[: -len(ext)])
    return path.with_suffix("")


def _sidecar_tr(path: Path | None) -> tuple[float | None, str | None]:
    """``RepetitionTime`` from the JSON sidecar next to ``path``, if any."""
    if path is None:
        return None, None
    side = Path(str(_stem(path)) + ".json")
    if not side.is_file():
        return None, None
    meta = read_json(side)
    return repetition_time(meta, side), str(side)


def read_json(path: Path) -> dict:
    """A JSON sidecar as a dict; a malformed file names the file, line and column."""
    try:
        with open(path, encoding="utf-8") as fh:
            meta = json.load(fh)
    except json.JSONDecodeError as err:
        raise ValueError(f"Malformed JSON in {path}, line {err.lineno} column {err.colno}: {err.msg}. "
                         "Fix the file (a trailing comma or a missing quote?).") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path} holds a JSON {type(meta).__name__}, not an object of key: value pairs.")
    return meta


def repetition_time(meta: dict, path: Any) -> float | None:
    """``RepetitionTime`` of a sidecar in seconds (None when absent); BIDS makes it a number."""
    value = meta.get("RepetitionTime")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (np.isfinite(value) and value > 0):
        raise ValueError(
            f"RepetitionTime in {path} is {value!r} ({type(value).__name__}); BIDS requires a positive "
            "number of seconds, e.g. 2.0. Fix the sidecar, or pass tr=<seconds>."
        )
    return float(value)


_TR_RANGE = (0.05, 20.0)  # seconds; outside it a TR is almost surely in the wrong unit


def resolve_tr(tr: float | None, sidecar: float | None, header: float | None, *, where: str,
               sidecar_name: str = "JSON sidecar", header_name: str = "header") -> float:
    """The TR in seconds from the argument, the sidecar or the header (see ``load_fmri``); warns when implausible."""
    value, source = _resolve_tr(tr, sidecar, header, where=where, sidecar_name=sidecar_name, header_name=header_name)
    lo, hi = _TR_RANGE
    if value > hi:
        warnings.warn(
            f"The TR of {where} is {value:g} s (from {source}), implausibly long for fMRI. If it is in milliseconds "
            f"({value:g} ms = {value / 1000:g} s), pass tr={value / 1000:g}; if it really is {value:g} s, ignore this.",
            stacklevel=3,
        )
    elif value < lo:
        warnings.warn(
            f"The TR of {where} is {value:g} s (from {source}), implausibly short for fMRI. If it is in the wrong unit "
            f"(e.g. a GIfTI TimeStep in seconds where milliseconds are expected), pass tr=<seconds>.",
            stacklevel=3,
        )
    return value


def _resolve_tr(tr: float | None, sidecar: float | None, header: float | None, *, where: str,
                sidecar_name: str, header_name: str) -> tuple[float, str]:
    if tr is not None:
        if isinstance(tr, (bool, np.bool_)) or not isinstance(tr, (int, float, np.integer, np.floating)):
            raise TypeError(f"tr must be a positive number of seconds, got {type(tr).__name__} {tr!r}; e.g. tr=2.0.")
        if not (np.isfinite(tr) and tr > 0):
            raise ValueError(f"tr must be a positive number of seconds, got {tr!r}.")
        for name, val in ((sidecar_name, sidecar), (header_name, header)):
            if val is not None and not np.isclose(val, tr, rtol=1e-3):
                warnings.warn(f"tr={tr:g} s overrides the TR {val:g} s of the {name} of {where}.", stacklevel=4)
        return float(tr), "tr="
    if sidecar is not None:
        if header is not None and not np.isclose(header, sidecar, rtol=1e-3):
            raise ValueError(
                f"The TR of {where} disagrees: RepetitionTime = {sidecar:g} s in the {sidecar_name} but "
                f"{header:g} s in the {header_name}. Pass tr=<seconds> to say which one is right."
            )
        return float(sidecar), f"the {sidecar_name}"
    if header is not None:
        return float(header), f"the {header_name}"
    raise ValueError(
        f"No repetition time for {where}: no tr= argument, no RepetitionTime in a JSON sidecar and "
        f"no TR with time units in the {header_name}. Pass tr=<seconds>."
    )


def _header_tr(img) -> float | None:
    """TR in seconds from NIfTI pixdim[4] when its time unit is known, else None."""
    zooms = img.header.get_zooms()
    if len(zooms) < 4 or not zooms[3] > 0:
        return None
    try:
        unit = img.header.get_xyzt_units()[1]
    except Exception:  # non-NIfTI headers
        return None
    if unit not in _TIME_SCALE:
        logger.info("Ignoring header TR %s with unknown time unit %r.", zooms[3], unit)
        return None
    return float(zooms[3]) * _TIME_SCALE[unit]


def _as_image(obj: Any, what: str):
    """A nibabel image and its path (None for an in-memory image)."""
    import nibabel as nib

    if isinstance(obj, (str, Path)):
        path = Path(obj)
        if not path.is_file():
            raise FileNotFoundError(f"The {what} file {str(path)!r} does not exist.")
        try:
            return nib.load(path), path
        except Exception as err:  # ImageFileError, EOFError, gzip / zlib errors, OSError...
            raise ValueError(
                f"Could not read the {what} file {str(path)!r} ({type(err).__name__}: {err}). Expected a "
                "NIfTI (.nii, .nii.gz) or GIfTI (.gii) image: is the file empty, truncated, or of another "
                "format than its extension says?"
            ) from None
    if (hasattr(obj, "dataobj") and hasattr(obj, "affine")) or isinstance(obj, nib.gifti.GiftiImage):
        return obj, None
    raise TypeError(f"{what} must be a file path or a nibabel image, got {type(obj).__name__}.")


def image_data(img: Any, path: Path | None) -> np.ndarray:
    """The voxel array of an image; a truncated file names the file instead of an EOFError."""
    try:
        return np.asanyarray(img.dataobj)
    except Exception as err:  # EOFError / OSError / zlib.error on a truncated or corrupt file
        where = f"file {str(path)!r}" if path is not None else "in-memory image"
        raise ValueError(f"Could not read the voxel data of the {where} ({type(err).__name__}: {err}); "
                         "the file is probably truncated (an interrupted download or copy?).") from None


def _finite_std(block: np.ndarray) -> np.ndarray:
    """Standard deviation over the last axis, ignoring NaN/inf (NaN when nothing is finite)."""
    x = np.where(np.isfinite(block), block, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanstd(x, axis=-1)


def _standardize(x: np.ndarray, method: Any) -> tuple[np.ndarray, np.ndarray]:
    """Standardize one run (n_volumes, n_channels) in place; returns it and the bad columns."""
    bad = np.zeros(x.shape[1], bool)
    if method in (False, None):
        return x, bad
    x[np.isinf(x)] = np.nan  # only reached with nan_policy="allow"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(x, axis=0)
        if method == "zscore":
            scale = np.nanstd(x, axis=0)
            bad = ~(scale > 0)
            x -= mean
            x /= np.where(bad, 1.0, scale)
        else:  # psc: percent signal change around the run mean
            bad = ~(np.abs(mean) > 0) | ~(np.nanstd(x, axis=0) > 0)
            x -= mean
            x *= 100.0 / np.where(bad, 1.0, mean)
    x[:, bad] = 0.0
    return x, bad


def _assemble(runs: list[np.ndarray], *, channels: pd.DataFrame, trs: list[float], run_labels: list,
              events: Any, standardize: Any, subject: str | None, nan_policy: str, space: dict,
              describe: Any, on_outside: str = "warn") -> BrainData:
    """Check, standardize and stack the runs; build the samples table (with events)."""
    if len({round(t, 6) for t in trs}) > 1:
        raise ValueError(
            f"The runs have different TRs {dict(zip(map(str, run_labels), trs))} s; load them separately."
        )
    tr = trs[0]
    for label, x in zip(run_labels, runs):
        if nan_policy == "raise" and not np.isfinite(x).all():
            cols = np.flatnonzero(~np.isfinite(x).all(axis=0))
            raise ValueError(
                f"Run {label!r} has NaN/inf values in {len(cols)} {describe.what}(s) (first: "
                f"{describe(cols[:3])}). Pass a mask that excludes them, or nan_policy='allow' to keep them."
            )
    bad_any = np.zeros(channels.shape[0], bool)
    for x in runs:
        bad_any |= _standardize(x, standardize)[1]
    if bad_any.any():
        cols = np.flatnonzero(bad_any)
        warnings.warn(
            f"{len(cols)} {describe.what}(s) are constant within a run (or have a zero mean for 'psc') and "
            f"cannot be standardized; they were set to 0 there. First: {describe(cols[:5])}. Exclude them "
            "with mask= (or select(channels=...)) if they are outside the brain.",
            stacklevel=3,
        )
    samples = pd.concat(
        [pd.DataFrame({"run": [label] * len(x), "volume": np.arange(len(x)), "onset": np.arange(len(x)) * tr})
         for label, x in zip(run_labels, runs)],
        ignore_index=True,
    )
    if events is not None:
        if isinstance(events, tuple) and len(events) == 2 and isinstance(events[0], Stimuli):
            table = events[1]  # (Stimuli, events DataFrame) as read_events returns it
        else:
            many = isinstance(events, (list, tuple))
            if many and len(events) != len(runs):
                raise ValueError(f"{len(runs)} runs but {len(events)} events tables; give one per run.")
            table = read_events(events, run=run_labels if many else run_labels[0])[1]
        for col, values in volume_labels(table, run_labels, [len(x) for x in runs], tr, on_outside).items():
            samples[col] = values
    data = np.concatenate(runs, axis=0) if len(runs) > 1 else runs[0]
    return BrainData(data, samples=samples, channels=channels, tr=tr, subject=subject, space=space,
                     nan_policy=nan_policy)


def _run_labels(run: Any, n: int) -> list:
    labels = as_list(run) if run is not None else list(range(n))
    if len(labels) != n:
        raise ValueError(f"{n} runs but {len(labels)} run labels in run=; give one label per run.")
    if len(set(map(str, labels))) != n:
        raise ValueError(f"Run labels must be unique, got {labels}.")
    return labels


# --------------------------------------------------------------------------- volumes
def _mask_array(mask: Any, shape: tuple, affine: np.ndarray, what: str = "mask") -> np.ndarray:
    """A boolean 3D array on the BOLD grid from a path, an image or an array."""
    if isinstance(mask, np.ndarray) and not hasattr(mask, "dataobj"):
        arr, m_affine = mask, None
    else:
        img, _ = _as_image(mask, what)
        arr, m_affine = np.asanyarray(img.dataobj), img.affine
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    if tuple(arr.shape) != tuple(shape):
        raise ValueError(
            f"The {what} has shape {tuple(arr.shape)} but the BOLD volumes have shape {tuple(shape)}. "
            "Resample it onto the BOLD grid, e.g. nilearn.image.resample_to_img(mask, bold, "
            "interpolation='nearest')."
        )
    if m_affine is not None and not np.allclose(m_affine, affine, atol=1e-3):
        raise ValueError(
            f"The {what} and the BOLD images have different affines:\n{np.round(m_affine, 3)}\nvs\n"
            f"{np.round(affine, 3)}.\nResample it with nilearn.image.resample_to_img(mask, bold, "
            "interpolation='nearest')."
        )
    return np.asarray(arr)


def _roi_labels(atlas: Any, atlas_labels: Any, in_mask: np.ndarray, shape: tuple,
                affine: np.ndarray) -> np.ndarray:
    """ROI name (or None) of every voxel of the mask."""
    out = np.full(int(in_mask.sum()), None, dtype=object)
    if isinstance(atlas, dict):
        taken = np.zeros(len(out), bool)
        n_overlap = {}
        for name, roi in atlas.items():
            sel = (_mask_array(roi, shape, affine, f"ROI {name!r}") != 0)[in_mask]
            if not sel.any():
                raise ValueError(
                    f"ROI {name!r} has no voxel inside the mask ({int(in_mask.sum())} voxels). Check that "
                    "it is on the same grid and overlaps the brain, or drop it."
                )
            if (sel & taken).any():
                n_overlap[name] = int((sel & taken).sum())
            out[sel & ~taken] = str(name)
            taken |= sel
        if n_overlap:
            warnings.warn(
                f"The ROI masks overlap: {n_overlap} voxel(s) of these ROIs already belong to an earlier ROI "
                "in the dict; a voxel keeps the first ROI of the dict that contains it. Load overlapping ROIs "
                "in separate calls if you need each one whole.",
                stacklevel=3,
            )
        return out
    arr = _mask_array(atlas, shape, affine, "atlas")[in_mask]
    if not np.allclose(arr, np.round(arr)):
        raise ValueError("The atlas image must hold integer labels (0 = no region); got non-integer values.")
    values = np.round(arr).astype(int)
    if isinstance(atlas_labels, dict):
        names = {int(k): str(v) for k, v in atlas_labels.items()}
    elif atlas_labels is not None:
        names = {i: str(v) for i, v in enumerate(atlas_labels)}
    else:
        names = {}
    present = sorted(set(values[values != 0].tolist()))
    if not present:
        raise ValueError("The atlas labels no voxel of the mask (all labels are 0 there); it defines no ROI.")
    if names:
        unnamed = [v for v in present if v not in names]
        if unnamed:
            raise ValueError(f"Atlas labels {unnamed[:10]} have no name in atlas_labels (names given for "
                             f"{sorted(names)[:10]}...).")
        absent = [names[k] for k in names if k != 0 and k not in present]
        if absent:
            warnings.warn(f"{len(absent)} atlas region(s) have no voxel inside the mask: {absent[:10]}.",
                          stacklevel=3)
    for v in present:
        out[values == v] = names.get(v, str(v))
    return out


class _Describe:
    """Names channels in messages: voxels by ijk, vertices by hemi/index."""

    def __init__(self, what: str, table: pd.DataFrame, cols: list[str]) -> None:
        self.what, self.table, self.cols = what, table, cols

    def __call__(self, idx: np.ndarray) -> str:
        return ", ".join(str(tuple(r)) for r in self.table.iloc[idx][self.cols].itertuples(index=False))


def load_fmri(bold: Any, *, mask: Any = None, atlas: Any = None, atlas_labels: Any = None, events: Any = None,
              tr: float | None = None, run: Any = None, standardize: Any = "zscore", subject: str | None = None,
              nan_policy: str = "raise", on_outside: str = "warn", _sidecar_trs: list | None = None) -> BrainData:
    """Load 4D NIfTI BOLD runs into a BrainData of shape (n_volumes, n_voxels).

    Parameters
    ----------
    bold : path, nibabel image, or list of them
        One 4D image per run; several runs are stacked along the samples.
    mask : path, image or bool array of shape (X, Y, Z), optional
        The voxels to keep (non-zero = in). On the grid of ``bold`` (same shape and affine).
        Default: every voxel whose time series varies in every run (drops the constant
        background; no anatomical brain extraction).
    atlas : path / image of integer labels, or dict of name -> mask, optional
        Adds a ``roi`` column to the channels table (None outside every region). With a
        dict, a voxel in several masks gets the first of the dict order (and a warning).
    atlas_labels : list or dict, optional
        Names of the atlas labels: ``labels[value]`` (list, index 0 the background) or
        ``{value: name}``. Default: the label number as a string.
    events : path, DataFrame, list of them (one per run), or ``read_events`` output, optional
        BIDS events. Each volume gets the ``stimulus_id`` and ``trial_type`` of the event
        that overlaps its acquisition window ``[onset, onset + TR)`` the longest (None when
        none does) and ``stimulus_ids``, the tuple of every stimulus whose events overlap
        it; volumes where different stimuli tie (events that start together) raise a
        warning. Narrative events (a ``word`` column) label no volume with a stimulus (their
        design is continuous: ``features.align_to`` resamples the words); volumes get
        ``n_words`` (words starting in them). Use :func:`read_events` for the ``Stimuli``
        and the full events table.
    tr : float, optional
        Repetition time (s). Default: ``RepetitionTime`` of the BIDS JSON sidecar next to
        the file, else the NIfTI header (pixdim[4], when its time unit is set). A sidecar and
        a header that disagree raise an error; ``tr=`` overrides both (with a warning).
    run : value or list, optional
        Run labels (default ``0, 1, ...``).
    standardize : {"zscore", "psc", False, None}
        Per run: z-score, percent signal change around the run mean, or raw values.
        Voxels that cannot be standardized (constant in a run) are set to 0 with a warning.
    subject : str, optional
    nan_policy : {"raise", "allow"}
        NaN/inf inside the mask raise a ValueError unless ``"allow"``; then NaN stay NaN
        (standardization ignores them) and +-inf become NaN when standardizing.
    on_outside : {"warn", "raise"}
        Events that start outside their run (a negative onset, or at / after the end of the
        last volume) are treated alike: ``"warn"`` (default) drops them from the volume
        labels with a warning that names them, ``"raise"`` stops with a ValueError. Words of
        a narrative outside their run always raise.

    Returns
    -------
    BrainData
        ``data`` of shape (n_volumes, n_voxels) in float32; ``samples`` with ``run``,
        ``volume`` (index in the run), ``onset`` (s from the run start) and with events
        ``stimulus_id``, ``trial_type``, ``stimulus_ids`` (or ``n_words`` for a narrative);
        ``channels`` with ``i, j, k`` (voxel indices),
        ``x, y, z`` (mm), ``name`` and ``roi``; ``space = {"kind": "volume", "affine",
        "shape"}`` so that ``to_image(values)`` gives a NIfTI image.

    Examples
    --------
    >>> import numpy as np, nibabel as nib
    >>> img = nib.Nifti1Image(np.random.default_rng(0).normal(size=(3, 3, 2, 10)), np.eye(4))
    >>> bd = load_fmri(img, tr=2.0)
    >>> bd.shape, bd.to_image(np.ones(bd.n_channels)).shape
    ((10, 18), (3, 3, 2))
    """
    import nibabel as nib

    check_option("standardize", standardize, _STANDARDIZE)
    check_option("nan_policy", nan_policy, ["raise", "allow"])
    check_option("on_outside", on_outside, ON_OUTSIDE)
    items = list(bold) if isinstance(bold, (list, tuple)) else [bold]
    if not items:
        raise ValueError("bold is an empty list; give at least one 4D image.")
    labels = _run_labels(run, len(items))
    images = [_as_image(b, "bold") for b in items]
    shape, affine = None, None
    trs = []
    for k, ((img, path), label) in enumerate(zip(images, labels)):
        where = f"run {label!r}" + (f" ({path.name})" if path else "")
        if len(img.shape) != 4:
            raise ValueError(
                f"The BOLD image of {where} has {len(img.shape)} dimensions, shape {tuple(img.shape)}; "
                "load_fmri needs a 4D time series (X, Y, Z, n_volumes). For a single 3D volume add a "
                "time axis (nibabel.funcs.four_to_three / concat_images)."
            )
        if shape is None:
            shape, affine = tuple(img.shape[:3]), img.affine
        elif tuple(img.shape[:3]) != shape or not np.allclose(img.affine, affine, atol=1e-3):
            raise ValueError(
                f"The BOLD image of {where} has grid {tuple(img.shape[:3])} / affine\n{np.round(img.affine, 3)}\n"
                f"but run {labels[0]!r} has {shape} /\n{np.round(affine, 3)}; runs must share one grid."
            )
        if _sidecar_trs is not None:
            side, side_name = _sidecar_trs[k], "BIDS JSON sidecars"
        else:
            side, side_name = _sidecar_tr(path)
        trs.append(resolve_tr(tr, side, _header_tr(img), where=where, sidecar_name=side_name or "JSON sidecar",
                              header_name="NIfTI header"))
    if mask is None:
        in_mask = np.ones(shape, bool)
        for img, _ in images:
            in_mask &= _finite_std(image_data(img, path)) > 0
        if not in_mask.any():
            raise ValueError("No voxel varies over time in every run, so the default mask is empty; "
                             "pass mask= explicitly.")
    else:
        in_mask = _mask_array(mask, shape, affine) != 0
        if not in_mask.any():
            raise ValueError(f"The mask selects no voxel (all {int(np.prod(shape))} values are 0).")
    runs = [np.ascontiguousarray(image_data(img, path)[in_mask].T, dtype=np.float32) for img, path in images]
    ijk = np.argwhere(in_mask)
    xyz = nib.affines.apply_affine(affine, ijk)
    channels = pd.DataFrame({"i": ijk[:, 0], "j": ijk[:, 1], "k": ijk[:, 2],
                             "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2],
                             "name": [f"v{a}_{b}_{c}" for a, b, c in ijk]})
    if atlas is not None:
        channels["roi"] = _roi_labels(atlas, atlas_labels, in_mask, shape, affine)
    elif atlas_labels is not None:
        raise ValueError("atlas_labels was given without an atlas image; pass atlas= too.")
    space = {"kind": "volume", "affine": np.asarray(affine, float), "shape": shape}
    return _assemble(runs, channels=channels, trs=trs, run_labels=labels, events=events,
                     standardize=standardize, subject=subject, nan_policy=nan_policy, space=space,
                     describe=_Describe("voxel", channels, ["i", "j", "k"]), on_outside=on_outside)
