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
        ids = pd.Series([f"r{r}_w{k}" for r, k in zip(df["run"], df.groupby("run", sort=False).cumcount())],
                        index=df.index, dtype=object)
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
def check_events_in_run(events: pd.DataFrame, n_volumes: int, tr: float, run: Any) -> None:
    """Raise when an event starts after the run ends; warn when one is cut by the end."""
    length = n_volumes * tr
    late = events["onset"].to_numpy() >= length
    if late.any():
        row = events.loc[late].iloc[0]
        what = f" ({row['trial_type']!r})" if "trial_type" in events else ""
        raise ValueError(
            f"{int(late.sum())} event(s) of run {run!r} start after the end of the run: the first{what} "
            f"at onset {row['onset']:g} s, but the run has {n_volumes} volumes x TR {tr:g} s = {length:g} s. "
            "Check that the events belong to this run, that onsets are in seconds from the first "
            "volume, and the TR."
        )
    cut = (events["onset"] + events["duration"]).to_numpy() > length + 1e-6
    if cut.any():
        warnings.warn(
            f"{int(cut.sum())} event(s) of run {run!r} end after the run ({length:g} s = {n_volumes} volumes "
            f"x TR {tr:g} s), the last at {float((events['onset'] + events['duration']).max()):g} s; "
            "they only label the volumes they overlap.",
            stacklevel=3,
        )


def label_volumes(events: pd.DataFrame, n_volumes: int, tr: float) -> np.ndarray:
    """Index (row of ``events``) of the event that occupies each volume, -1 if none.

    Volume ``v`` covers the acquisition window ``[v * tr, (v + 1) * tr)``. An event of
    duration ``d`` covers ``[onset, onset + d)``; the volume takes the event that overlaps
    its window the longest (ties: the earliest event). An event of zero duration occupies
    the volume whose window contains its onset.
    """
    out = np.full(n_volumes, -1, dtype=int)
    if len(events) == 0:
        return out
    start = events["onset"].to_numpy(float)[:, None]
    dur = events["duration"].to_numpy(float)[:, None]
    t0 = np.arange(n_volumes)[None, :] * tr
    t1 = t0 + tr
    overlap = np.minimum(start + dur, t1) - np.maximum(start, t0)
    instant = (dur == 0) & (start >= t0) & (start < t1)
    score = np.where(overlap > 1e-9, overlap, 0.0)
    score = np.where(instant, 1e-9, score)  # an instantaneous event counts only where it falls
    best = score.argmax(axis=0)
    has = score.max(axis=0) > 0
    out[has] = best[has]
    return out
