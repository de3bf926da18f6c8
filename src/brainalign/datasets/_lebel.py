"""LeBel et al. (2023) story-listening fMRI (OpenNeuro ds003020), derivative layout.

The layout, as read by the dataset's own code (HuthLab/deep-fMRI-dataset, ``encoding/``)::

    <root>/derivative/preprocessed_data/<subject>/<story>.hf5   dataset "resp": (n_trs, n_voxels)
    <root>/derivative/TextGrids/<story>.TextGrid                 tiers "phone" (0) and "word" (1)
    <root>/derivative/respdict.json                              {story: number of TRs}

How words and volumes line up (``encoding/ridge_utils/stimulus_utils.py``
``load_simulated_trfiles(respdict, tr=2.0, start_time=10.0, pad=5)``, ``dsutils.py``
``make_word_ds``, ``DataSequence.from_grid``, ``encoding_utils.py`` ``apply_zscore_and_hrf``):

* the TR grid of a story has ``respdict[story] - pad`` TRs, TR ``k`` triggered at
  ``k * tr - start_time`` seconds on the TextGrid clock (the sound starts 10 s after the
  first TR); the features are Lanczos-resampled (``window=3``) from the word midpoints to
  the middle of each TR (``k * tr - start_time + tr / 2``);
* the feature rows ``5 + trim`` to ``-trim`` (``trim=5``: the first 10 and the last 5 TRs
  of the grid) are kept; the ``resp`` arrays are already trimmed the same way, so a story
  has ``respdict[story] - pad - 5 - 2 * trim`` (= ``respdict - 20``) response rows, and
  response row ``j`` is grid TR ``k = j + 5 + trim``;
* the word tier drops ``sentence_start, sentence_end, br, lg, ls, ns, sp`` (compared
  lower-cased without braces) and the words are lower-cased.

The code uses ``tr=2.0`` for this grid (``TRFile``'s own default, 2.0045 s, is not used by
``load_simulated_trfiles``); pass ``tr=2.0045`` to follow the scanner's nominal TR instead.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._utils import Bunch, as_list, close_matches_message, logger, progress_bar
from ..data import BrainData
from ._transcript import NON_WORDS, _textgrid_tiers, load_transcript

__all__ = ["load_lebel2023"]

_HUTH_NON_WORDS = frozenset({"sentence_start", "sentence_end", "br", "lg", "ls", "ns", "sp"})


def _response_source(path: Path, subject: str, story: str):
    """(array-like of shape (n_trs, n_voxels), how it is read). A memmap when the HDF5 layout allows."""
    import h5py

    with h5py.File(path, "r") as f:
        if "resp" not in f:
            raise ValueError(f"The response file {path} has no dataset 'resp' (it has {sorted(f.keys())}); "
                             "ds003020 stores each story's responses as 'resp' (n_trs, n_voxels).")
        dset = f["resp"]
        if dset.ndim != 2:
            raise ValueError(f"'resp' of {path} has shape {dset.shape}; expected (n_trs, n_voxels).")
        shape, dtype = dset.shape, dset.dtype
        offset = dset.id.get_offset() if dset.chunks is None and dset.compression is None else None
    if offset is not None and dtype.kind == "f":
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape), "memmap"
    return (path, shape, dtype), "h5py"


def _fill(dest: np.ndarray, source: Any, how: str) -> None:
    """Copy one story's responses into ``dest`` (a view of the output array), without a temporary copy."""
    if how == "memmap":
        dest[...] = source
        return
    import h5py

    path = source[0]
    with h5py.File(path, "r") as f:
        dset = f["resp"]
        if dset.dtype == dest.dtype:
            dset.read_direct(dest)
        else:
            step = max(1, (1 << 24) // max(1, dset.shape[1] * dset.dtype.itemsize))
            for a in range(0, dset.shape[0], step):
                dest[a:a + step] = dset[a:a + step]


def load_lebel2023(root: Any, subject: str, *, stories: Any = None, tr: float = 2.0, start_time: float = 10.0,
                   pad: int = 5, trim: int = 5, lowercase: bool = True, drop: Any = _HUTH_NON_WORDS,
                   standardize: bool = False, verbose: bool = False) -> Bunch:
    """Load one subject of LeBel et al. (2023) / OpenNeuro ds003020 (derivative layout).

    Follows the dataset's own loading code (HuthLab/deep-fMRI-dataset, ``encoding/``; see the
    module docstring for the files and the exact convention): responses from
    ``derivative/preprocessed_data/<subject>/<story>.hf5``, words from the word tier of
    ``derivative/TextGrids/<story>.TextGrid`` (non-words dropped, lower-cased), TR counts from
    ``derivative/respdict.json``. Words and volumes are put on one clock: seconds from the
    start of the story's sound (the TextGrid's time 0).

    Parameters
    ----------
    root : path
        The dataset folder (the one holding ``derivative/``; ``root`` may also be
        ``derivative/`` itself).
    subject : str
        ``"UTS01"`` ... (a ``sub-`` prefix is ignored).
    stories : str or list of str, optional
        Default: every story with a response file for the subject, in name order.
    tr, start_time, pad, trim
        The grid of ``load_simulated_trfiles(tr=2.0, start_time=10.0, pad=5)`` and the
        trimming of ``apply_zscore_and_hrf(trim=5)``.
    lowercase : bool
        Lower-case the words (``DataSequence.from_grid`` does).
    drop : collection of str
        Non-words (default: the code's ``DEFAULT_BAD_WORDS``).
    standardize : bool
        Z-score each story's responses per voxel (the published responses are used as
        they are by the dataset's code; default False keeps them).
    verbose : bool
        A progress bar over stories.

    Returns
    -------
    Bunch with
        brain : BrainData of shape (n_trs over stories, n_voxels), float32, ``tr`` set
            One run per story (in ``stories`` order). ``samples``: ``run`` (the story),
            ``volume`` (row of the story's ``resp``), ``tr_index`` (TR of the story's grid,
            ``volume + 5 + trim``), ``onset`` (trigger time of the volume, s from the sound
            start: ``tr_index * tr - start_time``). ``channels``: ``name`` (``v<index>``),
            ``voxel`` (column of ``resp``).
        stimuli : Stimuli
            The words of every story (``run`` = story, ``onset``/``duration`` in s from the
            sound start, the clock of ``brain.samples["onset"]``). Words before the first or
            after the last kept volume are kept: they are the model's context and reach the
            first / last volumes through the Lanczos kernel.
        phones : Stimuli or None
            The phone tier (same clock), when the TextGrids have one.
        files : DataFrame
            Per story: ``story``, ``response``, ``textgrid``, ``n_trs`` (respdict),
            ``n_volumes`` (rows of ``resp``), ``read`` (``"memmap"`` or ``"h5py"``).
        convention : dict
            ``tr``, ``start_time``, ``pad``, ``trim``, ``first_tr_index`` (= ``5 + trim``),
            ``lanczos`` (the resampling of the original code: word midpoints to TR middles).

    Raises
    ------
    ValueError / FileNotFoundError
        A story without a response file, a TextGrid or a respdict entry (listing what exists);
        a response length that disagrees with respdict (both numbers); words outside the
        story's scan; stories with different numbers of voxels.

    Notes
    -----
    Memory: the responses of all stories are written once into one float32 array; each
    story is copied from a memory map of its ``.hf5`` file when the HDF5 dataset is
    contiguous and uncompressed, else read with ``h5py`` straight into its rows, so the
    stories are never held twice. A single story in float32 with ``standardize=False``
    stays a read-only memory map.

    Examples
    --------
    >>> data = load_lebel2023("ds003020", "UTS03", stories=["wheretheressmoke"])  # doctest: +SKIP
    >>> data.brain.samples["onset"].iloc[0]  # doctest: +SKIP
    10.0
    """
    root = Path(root)
    deriv = root if root.name == "derivative" else root / "derivative"
    if not deriv.is_dir():
        raise FileNotFoundError(f"{str(root)!r} has no 'derivative' folder; give the ds003020 dataset folder "
                                "(the one holding derivative/preprocessed_data, derivative/TextGrids).")
    subject = str(subject).removeprefix("sub-")
    resp_dir = deriv / "preprocessed_data" / subject
    if not resp_dir.is_dir():
        have = sorted(p.name for p in (deriv / "preprocessed_data").glob("*") if p.is_dir())
        raise FileNotFoundError(f"No responses for subject {subject!r}: {resp_dir} does not exist. Subjects: {have}.")
    respdict_path = deriv / "respdict.json"
    if not respdict_path.is_file():
        raise FileNotFoundError(f"{respdict_path} does not exist; ds003020 lists the TR count of every story there.")
    with open(respdict_path) as fh:
        respdict = {str(k): int(v) for k, v in json.load(fh).items()}
    available = sorted(p.stem for p in resp_dir.glob("*.hf5"))
    if stories is None:
        names = available
        if not names:
            raise FileNotFoundError(f"{resp_dir} holds no .hf5 response file.")
    else:
        names = [str(s) for s in as_list(stories)]
        dup = sorted({s for s in names if names.count(s) > 1})
        if dup:
            raise ValueError(f"stories lists {dup} more than once; each story is one run.")
    first = 5 + int(trim)
    files, sources, n_vox = [], [], None
    for story in names:
        resp, grid = resp_dir / f"{story}.hf5", deriv / "TextGrids" / f"{story}.TextGrid"
        if not resp.is_file():
            raise FileNotFoundError(
                f"Story {story!r} has no response file for subject {subject} ({resp} does not exist). "
                + close_matches_message("story", story, available)
            )
        if not grid.is_file():
            raise FileNotFoundError(f"Story {story!r} has no TextGrid ({grid} does not exist); its words are unknown.")
        if story not in respdict:
            raise ValueError(f"Story {story!r} is not in {respdict_path.name} (which lists {len(respdict)} stories); "
                             "its TR grid is unknown.")
        source, how = _response_source(resp, subject, story)
        shape = source.shape if how == "memmap" else source[1]
        expected = respdict[story] - int(pad) - first - int(trim)
        if shape[0] != expected:
            raise ValueError(
                f"Story {story!r}: the response {resp.name} has {shape[0]} TRs but respdict.json says "
                f"{respdict[story]} TRs, i.e. {expected} after the trimming of the dataset's code (respdict - pad "
                f"{pad} - {first} at the start - trim {trim} at the end). The response or the TR count belongs to "
                "another story, or the file was trimmed differently (set pad=/trim=)."
            )
        if n_vox is None:
            n_vox = shape[1]
        elif shape[1] != n_vox:
            raise ValueError(f"Story {story!r} has {shape[1]} voxels but {names[0]!r} has {n_vox}; the stories of one "
                             "subject share one voxel set.")
        sources.append((source, how))
        files.append({"story": story, "response": str(resp), "textgrid": str(grid), "n_trs": respdict[story],
                      "n_volumes": shape[0], "read": how})
    grids = [f["textgrid"] for f in files]
    stimuli = load_transcript(grids, run=names, tier="word", drop=drop, lowercase=lowercase)
    phones = None
    if all(_textgrid_tiers(Path(g)).get("phone", 0) > 0 for g in grids):
        phones = load_transcript(grids, run=names, tier="phone", drop=NON_WORDS, lowercase=False)
    else:
        logger.info("load_lebel2023: not every TextGrid has a non-empty 'phone' tier; phones=None.")
    words = stimuli.table
    for f in files:
        lo, hi = -start_time, (f["n_trs"] - pad) * tr - start_time
        w = words[words["run"] == f["story"]]
        out = (w["onset"] < lo - 1e-9) | (w["onset"] + w["duration"] > hi + 1e-9)
        if out.any():
            bad = w.loc[out]
            raise ValueError(
                f"{int(out.sum())} of the {len(w)} words of story {f['story']!r} lie outside its scan "
                f"({lo:g} to {hi:g} s from the sound start: {f['n_trs'] - pad} TRs of {tr:g} s starting "
                f"{start_time:g} s before it): "
                f"{list(zip(bad['text'], bad['onset'].round(3)))[:5]}. The TextGrid may belong to another story, or "
                "respdict.json / tr= / start_time= is wrong."
            )
    total = sum(f["n_volumes"] for f in files)
    single = len(files) == 1 and sources[0][1] == "memmap" and sources[0][0].dtype == np.float32 and not standardize
    if single:
        data = sources[0][0]
    else:
        data = np.empty((total, n_vox), dtype=np.float32)
        start = 0
        for (source, how), f in progress_bar(list(zip(sources, files)), verbose=verbose, desc="stories"):
            block = data[start:start + f["n_volumes"]]
            _fill(block, source, how)
            if standardize:
                _zscore_inplace(block, f["story"])
            start += f["n_volumes"]
    samples = pd.concat([
        pd.DataFrame({"run": f["story"], "volume": np.arange(f["n_volumes"]),
                      "tr_index": np.arange(f["n_volumes"]) + first,
                      "onset": (np.arange(f["n_volumes"]) + first) * tr - start_time})
        for f in files], ignore_index=True)
    channels = pd.DataFrame({"name": [f"v{i}" for i in range(n_vox)], "voxel": np.arange(n_vox)})
    brain = BrainData(data, samples=samples, channels=channels, tr=tr, subject=subject, nan_policy="allow")
    n_nan = int(np.isnan(data).any(axis=0).sum()) if not single else 0
    if n_nan:
        warnings.warn(f"{n_nan} voxel(s) of subject {subject} have NaN responses (kept as NaN).", stacklevel=2)
    convention = {"tr": float(tr), "start_time": float(start_time), "pad": int(pad), "trim": int(trim),
                  "first_tr_index": first,
                  "lanczos": "word midpoints (onset + duration / 2) to TR middles (onset + tr / 2), window 3"}
    return Bunch(brain=brain, stimuli=stimuli, phones=phones, files=pd.DataFrame(files), convention=convention)


def _zscore_inplace(block: np.ndarray, story: str) -> None:
    mean = block.mean(axis=0, dtype=np.float64)
    sd = block.std(axis=0, dtype=np.float64)
    flat = ~(sd > 0)
    block -= mean.astype(block.dtype)
    block /= np.where(flat, 1.0, sd).astype(block.dtype)
    if flat.any():
        block[:, flat] = 0.0
        warnings.warn(f"{int(flat.sum())} voxel(s) are constant in story {story!r}; set to 0 there.", stacklevel=3)


# --------------------------------------------------------------------------- writers (tests, bundled example)
def _write_textgrid(path: Path, words: pd.DataFrame, *, phones: pd.DataFrame | None = None,
                    xmax: float | None = None) -> None:
    """A long-format TextGrid with tiers ``phone`` and ``word`` (columns text, onset, offset), as ds003020's."""
    from praatio.data_classes.interval_tier import IntervalTier
    from praatio.data_classes.textgrid import Textgrid

    end = float(xmax if xmax is not None else words["offset"].max())
    tg = Textgrid()
    for name, table in (("phone", phones if phones is not None else words.iloc[:0]), ("word", words)):
        entries = [(float(a), float(b), str(t)) for t, a, b in zip(table["text"], table["onset"], table["offset"])]
        tg.addTier(IntervalTier(name, entries, 0.0, end))
    tg.save(str(path), format="long_textgrid", includeBlankSpaces=True)


def _write_response(path: Path, resp: np.ndarray) -> None:
    """``resp`` (n_trs, n_voxels) as a contiguous, uncompressed float32 HDF5 dataset ``resp``."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("resp", data=np.asarray(resp, dtype=np.float32), track_times=False)

