"""BIDS ``events.tsv`` files: the stimulus table and the per-volume stimulus labels.

Which item is a *stimulus* depends on the columns of the events (decided here once, for
every loader):

* a ``word`` column: a narrative. Every event is one token (modality ``word``), with its
  onset, duration and run, ids ``r<run>_w<k>`` (a word heard twice is two items, as a
  language model sees it in two contexts);
* else a ``stim_file`` column: one item per distinct file (an image, a sound, a video);
  events whose ``stim_file`` is ``n/a`` fall back to their ``trial_type``;
* else a ``trial_type`` column: one item per condition (a block design: the category
  ``face`` is one item, presented in many blocks);
* else every event is of the single condition ``"event"``.

The events table keeps one row per event with its ``run`` and ``stimulus_id``: the
repeated presentations live there (and in the ``BrainData`` samples), never in ``Stimuli``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._utils import as_list
from ..data import Stimuli
from ._transcript import word_ids

__all__ = ["read_events"]

_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
_AUDIO_EXT = {".wav", ".mp3", ".flac", ".ogg", ".aiff", ".aif"}
_VIDEO_EXT = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg"}


def _read_one(events: Any) -> pd.DataFrame:
    """One events table from a path or a DataFrame (BIDS: tab-separated, ``n/a`` missing)."""
    if isinstance(events, pd.DataFrame):
        df = events.copy()
        where = "the events DataFrame"
    elif isinstance(events, (str, Path)):
        path = Path(events)
        if not path.is_file():
            raise FileNotFoundError(f"Events file {str(path)!r} does not exist.")
        df = pd.read_csv(path, sep="\t", na_values=["n/a", "N/A", "NaN", "nan", ""], keep_default_na=False)
        where = f"events file {str(path)!r}"
    else:
        raise TypeError(
            f"events must be a path to a BIDS events.tsv, a pandas DataFrame, or a list of them "
            f"(one per run); got {type(events).__name__}."
        )
    missing = [c for c in ("onset", "duration") if c not in df.columns]
    if missing:
        raise ValueError(
            f"The {where} lacks the required BIDS column(s) {missing}; its columns are "
            f"{list(df.columns)}. BIDS events need 'onset' and 'duration' (seconds)."
        )
    for col in ("onset", "duration"):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            raise ValueError(
                f"The {col!r} column of the {where} has non-numeric values "
                f"{df.loc[bad, col].astype(str).tolist()[:5]}; give seconds as numbers (or n/a)."
            )
        df[col] = values.astype(float)
    if df["onset"].isna().any() or not np.isfinite(df["onset"]).all():
        rows = np.flatnonzero(~np.isfinite(df["onset"].to_numpy())).tolist()[:5]
        raise ValueError(f"The {where} has missing or infinite onsets (rows {rows}); every event needs an onset.")
    df["duration"] = df["duration"].fillna(0.0)
    if (df["duration"] < 0).any():
        rows = np.flatnonzero(df["duration"].to_numpy() < 0).tolist()[:5]
        raise ValueError(f"The {where} has negative durations (rows {rows}); durations must be >= 0 s.")
    return df


def _stimulus_ids(df: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """The stimulus id of every event and the table of unique stimuli (see module doc)."""
    n = len(df)
    if "word" in df.columns:
        word = df["word"].astype(object)
        ids = pd.Series(word_ids(df["run"]), index=df.index, dtype=object)
        table = pd.DataFrame({
            "stimulus_id": ids.to_numpy(), "modality": "word",
            "text": word.where(word.notna(), "").astype(str).to_numpy(),
            "onset": df["onset"].to_numpy(), "duration": df["duration"].to_numpy(), "run": df["run"].to_numpy(),
        })
        return ids, table
    if "trial_type" in df.columns:
        cond = df["trial_type"].astype(object).where(df["trial_type"].notna(), "n/a").astype(str)
    else:
        cond = pd.Series(["event"] * n, index=df.index, dtype=object)
    ids = cond.copy()
    modality = pd.Series(["text"] * n, index=df.index, dtype=object)
    content = cond.copy()
    if "stim_file" in df.columns:
        has = df["stim_file"].notna()
        files = df["stim_file"].astype(object).where(has, "").astype(str)
        ids[has] = files[has]
        ext = files.map(lambda f: Path(f).suffix.lower())
        for exts, mod in ((_IMAGE_EXT, "image"), (_AUDIO_EXT, "audio"), (_VIDEO_EXT, "video")):
            modality[has & ext.isin(exts)] = mod
        content[has] = files[has]
    first = ~ids.duplicated()
    table = pd.DataFrame({"stimulus_id": ids[first].to_numpy(), "modality": modality[first].to_numpy()})
    table["trial_type"] = cond[first].to_numpy()
    table["n_events"] = ids.map(ids.value_counts())[first].to_numpy()
    for mod, col in (("text", "text"), ("image", "image"), ("audio", "audio"), ("video", "image")):
        rows = (table["modality"] == mod).to_numpy()
        if rows.any():
            if col not in table:
                table[col] = pd.Series([None] * len(table), dtype=object)
            table.loc[rows, col] = content[first].to_numpy()[rows]
    return ids, table


def read_events(events: Any, *, run: Any = None) -> tuple[Stimuli, pd.DataFrame]:
    """Read BIDS events into a ``Stimuli`` table and an events table.

    Parameters
    ----------
    events : path, DataFrame, or list of them (one per run)
        BIDS ``*_events.tsv`` (tab-separated, ``n/a`` for missing values) with the columns
        ``onset`` and ``duration`` (s), and optionally ``trial_type``, ``stim_file``,
        ``word``, ``value``... A DataFrame may carry its own ``run`` column.
    run : value or list of values, optional
        The run label of each table (default ``0, 1, ...``; a single table keeps its own
        ``run`` column if it has one).

    Returns
    -------
    stimuli : Stimuli
        The unique stimulus items. A ``word`` column makes one item per token (a
        narrative); else one item per distinct ``stim_file``; else one per ``trial_type``
        (block designs: the condition is the item). See the module docstring.
    events : DataFrame of shape (n_events, n_columns)
        One row per event, sorted by run and onset, with the added columns ``run`` and
        ``stimulus_id``.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"onset": [0.0, 10.0, 20.0], "duration": [5.0, 5.0, 5.0],
    ...                    "trial_type": ["face", "house", "face"]})
    >>> stimuli, table = read_events(ev)
    >>> stimuli.ids, table["stimulus_id"].tolist()
    (['face', 'house'], ['face', 'house', 'face'])
    """
    items = list(events) if isinstance(events, (list, tuple)) else [events]
    if not items:
        raise ValueError("events is an empty list; give one events table per run.")
    labels = as_list(run) if run is not None else list(range(len(items)))
    if len(labels) != len(items):
        raise ValueError(f"{len(items)} events tables but {len(labels)} run labels; give one label per table.")
    tables = []
    for label, item in zip(labels, items):
        df = _read_one(item)
        if run is not None or len(items) > 1 or "run" not in df.columns:
            df["run"] = label
        tables.append(df)
    df = pd.concat(tables, ignore_index=True)
    order = np.lexsort((df["onset"].to_numpy(), pd.factorize(df["run"])[0]))
    df = df.iloc[order].reset_index(drop=True)
    if len(df) == 0:
        raise ValueError("The events tables have no rows; there is no stimulus to describe.")
    ids, table = _stimulus_ids(df)
    df["stimulus_id"] = ids.to_numpy()
    return Stimuli(table), df


# --------------------------------------------------------------------------- volumes
ON_OUTSIDE = ["warn", "raise"]
_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])


def user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside brainalign."""
    import inspect

    level, frame = 1, inspect.currentframe()
    frame = frame.f_back if frame is not None else None  # the function that warns
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(_PACKAGE_DIR):
        level += 1
        frame = frame.f_back
    return max(level, 2)


def _describe_events(ev: pd.DataFrame, k: int = 5) -> str:
    label = next((c for c in ("word", "trial_type", "stimulus_id") if c in ev.columns), None)
    items = [f"{row[label]!r} at {row['onset']:g} s" if label else f"at {row['onset']:g} s"
             for _, row in ev.head(k).iterrows()]
    return ", ".join(items) + (" ..." if len(ev) > k else "")


def events_in_run(events: pd.DataFrame, n_volumes: int, tr: float, run: Any, on_outside: str) -> pd.DataFrame:
    """The events of one run that start inside it, ``[0, n_volumes * tr)``.

    Events that start before 0 s or at / after the end of the run are treated alike:
    dropped with one warning naming them (``on_outside="warn"``) or a ValueError
    (``"raise"``). The words of a narrative (a ``word`` column) always raise: a transcript
    that does not fit its run belongs to another run, or the TR is wrong. Events cut by the
    end of the run are kept (with a warning): they label the volumes they overlap.
    """
    length = n_volumes * tr
    onset = events["onset"].to_numpy(float)
    early, late = onset < 0, onset >= length
    outside = early | late
    if outside.any():
        parts = []
        if early.any():
            parts.append(f"{int(early.sum())} before its start ({_describe_events(events.loc[early])})")
        if late.any():
            parts.append(f"{int(late.sum())} at or after its end ({_describe_events(events.loc[late])})")
        where = (f"{int(outside.sum())} of the {len(events)} event(s) of run {run!r} start outside it: "
                 f"{'; '.join(parts)}. The run has {n_volumes} volumes x TR {tr:g} s = {length:g} s.")
        if "word" in events.columns:
            raise ValueError(
                f"{where} Words of a narrative are never dropped (the model reads them as context): check that "
                "the transcript belongs to this run, that onsets are in seconds from the first volume, and the TR."
            )
        if on_outside == "raise":
            raise ValueError(f"{where} Check that the events belong to this run, that onsets are in seconds from "
                             "the first volume, and the TR; or pass on_outside='warn' to drop them.")
        warnings.warn(f"{where} They were dropped from the volume labels (the events table keeps them); pass "
                      "on_outside='raise' to stop instead.", stacklevel=user_stacklevel())
        events = events.loc[~outside]
    cut = (events["onset"] + events["duration"]).to_numpy() > length + 1e-6
    if cut.any():
        warnings.warn(
            f"{int(cut.sum())} event(s) of run {run!r} end after the run ({length:g} s = {n_volumes} volumes "
            f"x TR {tr:g} s), the last at {float((events['onset'] + events['duration']).max()):g} s; "
            "they only label the volumes they overlap.",
            stacklevel=user_stacklevel(),
        )
    return events


def label_volumes(events: pd.DataFrame, n_volumes: int, tr: float) -> tuple[np.ndarray, list, np.ndarray]:
    """Which events occupy each volume.

    Volume ``v`` covers the acquisition window ``[v * tr, (v + 1) * tr)``. An event of
    duration ``d`` covers ``[onset, onset + d)``; an event of zero duration occupies the
    volume whose window contains its onset.

    Returns
    -------
    best : array of shape (n_volumes,)
        Row of ``events`` that overlaps the volume the longest (ties: the earliest row), -1
        if none.
    every : list of length n_volumes
        The rows of all events that overlap the volume, in row (time) order.
    ambiguous : bool array of shape (n_volumes,)
        Volumes where events with different stimulus ids tie for the longest overlap (e.g.
        events that start together), so that ``best`` is an arbitrary choice.
    """
    best = np.full(n_volumes, -1, dtype=int)
    if len(events) == 0:
        return best, [[] for _ in range(n_volumes)], np.zeros(n_volumes, bool)
    start = events["onset"].to_numpy(float)[:, None]
    dur = events["duration"].to_numpy(float)[:, None]
    t0 = np.arange(n_volumes)[None, :] * tr
    t1 = t0 + tr
    overlap = np.minimum(start + dur, t1) - np.maximum(start, t0)
    instant = (dur == 0) & (start >= t0) & (start < t1)
    score = np.where(overlap > 1e-9, overlap, 0.0)
    score = np.where(instant, 1e-9, score)  # an instantaneous event counts only where it falls
    top = score.max(axis=0)
    has = top > 0
    best[has] = score.argmax(axis=0)[has]
    every = [np.flatnonzero(score[:, v] > 0).tolist() for v in range(n_volumes)]
    ids = (events["stimulus_id"].astype(str).to_numpy() if "stimulus_id" in events
           else np.arange(len(events)).astype(str))
    tied = (score > 0) & (score >= top[None, :] - 1e-12)
    ambiguous = np.array([len(set(ids[tied[:, v]])) > 1 for v in range(n_volumes)], dtype=bool)
    return best, every, ambiguous


def volume_labels(table: pd.DataFrame, run_labels: list, lengths: list, tr: float,
                  on_outside: str) -> dict[str, np.ndarray]:
    """Per-volume columns of the samples table from an events table (see ``load_fmri``)."""
    unknown = set(pd.unique(table["run"])) - set(run_labels)
    if unknown:
        raise ValueError(f"The events name runs {sorted(map(str, unknown))} that were not loaded "
                         f"(runs: {run_labels}).")
    narrative = "word" in table.columns
    n = int(sum(lengths))
    cols = {} if narrative else {"stimulus_id": np.full(n, None, dtype=object),
                                 "trial_type": np.full(n, None, dtype=object),
                                 "stimulus_ids": np.empty(n, dtype=object)}
    if narrative:
        cols["n_words"] = np.zeros(n, dtype=int)
    start, n_amb, first_amb = 0, 0, None
    for label, n_vol in zip(run_labels, lengths):
        ev = events_in_run(table[table["run"] == label].reset_index(drop=True), n_vol, tr, label, on_outside)
        seg = slice(start, start + n_vol)
        if narrative:
            vol = np.floor(ev["onset"].to_numpy(float) / tr).astype(int)
            cols["n_words"][seg] = np.bincount(vol, minlength=n_vol)[:n_vol]
        else:
            ev = ev.reset_index(drop=True)
            best, every, amb = label_volumes(ev, n_vol, tr)
            has = best >= 0
            ids = ev["stimulus_id"].to_numpy(object)
            cols["stimulus_id"][seg][has] = ids[best[has]]
            if "trial_type" in ev:
                cols["trial_type"][seg][has] = ev["trial_type"].to_numpy(object)[best[has]]
            for v, rows in enumerate(every):
                cols["stimulus_ids"][start + v] = tuple(dict.fromkeys(ids[rows].tolist()))
            if amb.any():
                n_amb += int(amb.sum())
                if first_amb is None:
                    v = int(np.flatnonzero(amb)[0])
                    first_amb = f"volume {v} of run {label!r}: {list(cols['stimulus_ids'][start + v])}"
        start += n_vol
    if n_amb:
        warnings.warn(
            f"{n_amb} volume(s) are occupied equally by events of different stimuli (first: {first_amb}); "
            "samples['stimulus_id'] keeps one of them (the earliest row), samples['stimulus_ids'] lists all of "
            "them, and the events table (read_events, or the 'events' of load_bids) keeps every event.",
            stacklevel=user_stacklevel(),
        )
    return cols
