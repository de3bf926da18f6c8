"""Word (and phone) timings of a narrative: Praat TextGrids, word tables, BIDS events, MNE annotations.

:func:`load_transcript` is the one entry point; :func:`load_textgrid` is its TextGrid case.
Every source becomes the same narrative :class:`~brainalign.Stimuli`: one row per token
(modality ``word``) with ``text``, ``onset`` and ``duration`` (s), ``run`` (the story / run
label) and ids ``r<run>_w<k>`` (``k`` counts the kept tokens of the run from 0), in run then
time order.

Sources
    * Praat ``.TextGrid`` (read with praatio): the intervals of one tier (``tier="word"``,
      or ``"phone"``, or the tier's position); empty intervals are silences and are skipped.
    * Word tables ``.tsv`` / ``.csv`` (or a DataFrame): a word column (``word``, ``text`` or
      ``token``), an onset column (``onset`` or ``start``, s) and an offset (``offset``,
      ``end``, ``stop``) or ``duration`` column. A BIDS ``*_events.tsv`` with a ``word``
      column is such a table (``n/a`` marks missing values).
    * :class:`mne.Annotations` whose descriptions start with ``prefix`` (default
      ``"word/"``, MNE's hierarchical event naming): the word is the rest of the description.

Tokens whose label is a non-word (:data:`NON_WORDS`, compared lower-cased without
surrounding braces and spaces, as in the HuthLab ds003020 code) are dropped. Word times
must increase within a run and words must not overlap (1 ms tolerance): anything else
raises a ValueError naming the rows, since a silently re-ordered transcript would pair
words with the wrong volumes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._utils import as_list
from ..data import Stimuli

__all__ = ["load_transcript", "load_textgrid", "NON_WORDS", "word_ids"]

#: Labels dropped by default: silences, breaths, noises and sentence markers. The HuthLab
#: ds003020 code drops ``sentence_start, sentence_end, br, lg, ls, ns, sp``; ``sil`` and
#: ``spn`` are the Montreal Forced Aligner's silence and spoken-noise labels.
NON_WORDS = frozenset({"sentence_start", "sentence_end", "br", "lg", "ls", "ns", "sp", "sil", "spn"})

_WORD_COLS = ("word", "text", "token")
_ONSET_COLS = ("onset", "start")
_OFFSET_COLS = ("offset", "end", "stop")
_OVERLAP_TOL = 1e-3


def word_ids(runs: Any) -> list[str]:
    """Ids ``r<run>_w<k>`` of narrative tokens, ``k`` counting from 0 within each run (in order)."""
    runs = pd.Series(list(runs), dtype=object)
    return [f"r{r}_w{k}" for r, k in zip(runs, runs.groupby(runs.astype(str), sort=False).cumcount())]


def _is_non_word(label: str, drop: frozenset) -> bool:
    return label.lower().strip("{}").strip() in drop or label.strip() == ""


# --------------------------------------------------------------------------- readers
def _tier_names(tg) -> list[str]:
    return list(tg.tierNames)


def _read_textgrid(path: Path, tier: Any) -> pd.DataFrame:
    """(text, onset, offset) of one tier of a TextGrid, empty intervals skipped."""
    from praatio import textgrid

    if not path.is_file():
        raise FileNotFoundError(f"TextGrid file {str(path)!r} does not exist.")
    try:
        tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=False, reportingMode="silence",
                                   duplicateNamesMode="rename")
    except Exception as err:  # praatio raises several types on malformed files
        raise ValueError(f"praatio could not read the TextGrid {str(path)!r} ({type(err).__name__}: {err}). "
                         "Is it a Praat TextGrid (long or short text format)?") from err
    names = _tier_names(tg)
    if isinstance(tier, (int, np.integer)) and not isinstance(tier, bool):
        if not -len(names) <= int(tier) < len(names):
            raise ValueError(f"tier={tier} but the TextGrid {path.name} has {len(names)} tiers: {names}.")
        name = names[int(tier)]
    else:
        want = str(tier).lower()
        found = [n for n in names if n.lower() == want] or [
            n for n in names if n.lower().rstrip("s") == want.rstrip("s")]
        if not found:
            raise ValueError(
                f"The TextGrid {path.name} has no tier {tier!r}; its tiers are {names}. Pass tier=<name> "
                "(or the tier's position, e.g. tier=1 for the second tier)."
            )
        name = found[0]
    entries = tg.getTier(name).entries
    if tg.getTier(name).entryType.__name__ == "Point":
        rows = [(e.label, float(e.time), float(e.time)) for e in entries]
    else:
        rows = [(e.label, float(e.start), float(e.end)) for e in entries]
    out = pd.DataFrame(rows, columns=["text", "onset", "offset"])
    out.attrs["where"] = f"tier {name!r} of {path.name}"
    out.attrs["tier"] = name
    return out


def _textgrid_tiers(path: Path) -> dict:
    """{tier name: number of non-empty entries} of a TextGrid."""
    from praatio import textgrid

    tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=False, reportingMode="silence",
                               duplicateNamesMode="rename")
    return {name: len(tg.getTier(name).entries) for name in tg.tierNames}


def _find(df: pd.DataFrame, names: tuple, what: str, where: str, required: bool = True) -> str | None:
    lower = {str(c).lower(): c for c in df.columns}
    for n in names:
        if n in lower:
            return lower[n]
    if required:
        raise ValueError(
            f"The {where} has no {what} column (looked for {list(names)}); its columns are "
            f"{list(df.columns)}. A word table needs a word, an onset and an offset or duration column."
        )
    return None


def _read_table(src: Any) -> pd.DataFrame:
    """(text, onset, offset) of a word table (path or DataFrame)."""
    if isinstance(src, pd.DataFrame):
        df, where = src.copy(), "word table (DataFrame)"
    else:
        path = Path(src)
        if not path.is_file():
            raise FileNotFoundError(f"Word table {str(path)!r} does not exist.")
        sep = "," if path.suffix.lower() == ".csv" else "\t"
        df = pd.read_csv(path, sep=sep, na_values=["n/a", "N/A", ""], keep_default_na=False)
        where = f"word table {path.name}"
    wcol = _find(df, _WORD_COLS, "word", where)
    ocol = _find(df, _ONSET_COLS, "onset", where)
    ecol = _find(df, _OFFSET_COLS, "offset", where, required=False)
    dcol = _find(df, ("duration",), "duration", where, required=False)
    if ecol is None and dcol is None:
        raise ValueError(f"The {where} has neither an offset ({list(_OFFSET_COLS)}) nor a duration column; "
                         f"its columns are {list(df.columns)}.")
    onset = pd.to_numeric(df[ocol], errors="coerce").to_numpy(float)
    if ecol is not None:
        offset = pd.to_numeric(df[ecol], errors="coerce").to_numpy(float)
    else:
        offset = onset + pd.to_numeric(df[dcol], errors="coerce").fillna(0.0).to_numpy(float)
    text = df[wcol].astype(object).where(df[wcol].notna(), "").astype(str).to_numpy()
    out = pd.DataFrame({"text": text, "onset": onset, "offset": offset})
    if "run" in df.columns:
        out["run"] = df["run"].to_numpy()
    out.attrs["where"] = where
    return out


def _read_annotations(annot, prefix: str) -> pd.DataFrame:
    desc = [str(d) for d in annot.description]
    keep = np.array([d.startswith(prefix) for d in desc], dtype=bool)
    if not keep.any():
        kinds = sorted({d.split("/")[0] for d in desc})[:10]
        raise ValueError(
            f"No annotation description starts with prefix={prefix!r} ({len(desc)} annotations; their "
            f"first parts: {kinds}). Name word annotations '{prefix}<word>' or pass prefix=."
        )
    onset = np.asarray(annot.onset, float)[keep]
    out = pd.DataFrame({"text": [d[len(prefix):] for d, k in zip(desc, keep) if k], "onset": onset,
                        "offset": onset + np.asarray(annot.duration, float)[keep]})
    out.attrs["where"] = f"annotations {prefix!r}"
    return out


def _read_one(src: Any, tier: Any, prefix: str) -> tuple[pd.DataFrame, Any]:
    """One source -> (table, default run label)."""
    if type(src).__name__ == "Annotations" and hasattr(src, "description"):
        return _read_annotations(src, prefix), None
    if isinstance(src, pd.DataFrame):
        return _read_table(src), None
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if path.suffix.lower() == ".textgrid":
            return _read_textgrid(path, tier), path.stem
        name = path.name
        for ext in (".tsv", ".csv", ".txt"):
            if name.lower().endswith(ext):
                name = name[: -len(ext)]
        return _read_table(path), name
    raise TypeError(
        f"A transcript must be a TextGrid / TSV / CSV path, a DataFrame, mne.Annotations or a list of them "
        f"(one per run); got {type(src).__name__}."
    )


# --------------------------------------------------------------------------- checks
def _check_times(df: pd.DataFrame, run: Any, where: str) -> None:
    on, off = df["onset"].to_numpy(float), df["offset"].to_numpy(float)
    bad = ~(np.isfinite(on) & np.isfinite(off))
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise ValueError(f"The {where} (run {run!r}) has missing or non-numeric times at rows {rows} "
                         f"({df['text'].iloc[rows].tolist()}); every token needs an onset and an offset (s).")
    neg = off < on - 1e-9
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise ValueError(f"{int(neg.sum())} token(s) of the {where} (run {run!r}) end before they start: row {i} "
                         f"{df['text'].iloc[i]!r} from {on[i]:g} to {off[i]:g} s.")
    back = np.flatnonzero(np.diff(on) < 0)
    if len(back):
        i = int(back[0])
        raise ValueError(
            f"The word times of the {where} (run {run!r}) are not in increasing order at {len(back)} place(s): "
            f"row {i + 1} {df['text'].iloc[i + 1]!r} at {on[i + 1]:g} s comes after row {i} "
            f"{df['text'].iloc[i]!r} at {on[i]:g} s. Sort the table by onset if only the file order is wrong; "
            "otherwise the runs may be mixed up (give one table per run, or a 'run' column)."
        )
    over = np.flatnonzero(off[:-1] > on[1:] + _OVERLAP_TOL)
    if len(over):
        i = int(over[0])
        raise ValueError(
            f"{len(over)} word(s) of the {where} (run {run!r}) overlap the next one: row {i} {df['text'].iloc[i]!r} "
            f"ends at {off[i]:g} s but row {i + 1} {df['text'].iloc[i + 1]!r} starts at {on[i + 1]:g} s. "
            "Words of one narrative follow each other; check the offsets (or durations) and the run labels."
        )


# --------------------------------------------------------------------------- public
def load_transcript(source: Any, *, run: Any = None, tier: Any = "word", drop: Any = NON_WORDS,
                    lowercase: bool = False, prefix: str = "word/") -> Stimuli:
    """Word (or phone) timings of a narrative as a ``Stimuli`` table.

    Parameters
    ----------
    source : path, DataFrame, mne.Annotations, or list of them (one per run)
        A Praat ``.TextGrid``; a ``.tsv`` / ``.csv`` word table (word, onset and offset or
        duration columns; a BIDS ``events.tsv`` with a ``word`` column is one); a DataFrame
        with those columns (and optionally ``run``); or MNE annotations (see ``prefix``).
    run : value or list of values, optional
        The run / story label of each source. Default: the file name without extension (a
        TextGrid ``alternateithicatom.TextGrid`` is story ``"alternateithicatom"``), the
        ``run`` column of a table, else ``0, 1, ...``.
    tier : str or int
        TextGrids only: the tier to read, by name (case-insensitive; ``"word"`` also finds
        ``"words"``) or position. ``tier="phone"`` gives one item per phone.
    drop : collection of str
        Labels to drop (default :data:`NON_WORDS`); empty labels are always dropped.
    lowercase : bool
        Lower-case the tokens (the HuthLab ds003020 code does).
    prefix : str
        MNE annotations only: the description prefix that marks a word (``"word/the"``).

    Returns
    -------
    Stimuli of shape (n_tokens,)
        Columns ``stimulus_id`` (``r<run>_w<k>``), ``modality`` (``"word"``), ``text``,
        ``onset``, ``duration`` (s, on the clock of the source: TextGrid time, BIDS run
        time, MNE annotation time), ``run``, and ``tier`` for TextGrids.

    Raises
    ------
    ValueError
        A TextGrid without the tier (the message lists its tiers), a table without the
        needed columns, unsorted or overlapping word times, a run left without any word.

    Examples
    --------
    >>> import pandas as pd
    >>> words = pd.DataFrame({"word": ["Once", "sp", "upon"], "onset": [0.0, 0.3, 0.5],
    ...                       "offset": [0.3, 0.5, 0.8]})
    >>> s = load_transcript(words, run="story1")
    >>> s.ids, s.texts, s.table["duration"].round(2).tolist()
    (['rstory1_w0', 'rstory1_w1'], ['Once', 'upon'], [0.3, 0.3])
    """
    items = list(source) if isinstance(source, (list, tuple)) else [source]
    if not items:
        raise ValueError("source is an empty list; give one transcript per run.")
    labels = as_list(run) if run is not None else [None] * len(items)
    if len(labels) != len(items):
        raise ValueError(f"{len(items)} transcripts but {len(labels)} run labels in run=; give one label per "
                         "transcript.")
    dropset = frozenset(str(d).lower() for d in as_list(drop))
    tables = []
    for k, (label, src) in enumerate(zip(labels, items)):
        df, default = _read_one(src, tier, prefix)
        where = df.attrs.get("where", "transcript")
        if label is None and "run" in df.columns and len(items) == 1:
            groups = list(df.groupby("run", sort=False))
        else:
            lab = label if label is not None else (default if default is not None else k)
            groups = [(lab, df.drop(columns="run", errors="ignore"))]
        for lab, g in groups:
            g = g.reset_index(drop=True)
            _check_times(g, lab, where)
            keep = ~g["text"].map(lambda t: _is_non_word(str(t), dropset)).to_numpy(bool)
            g = g.loc[keep].reset_index(drop=True)
            if len(g) == 0:
                raise ValueError(f"Run {lab!r} ({where}) has no word left after dropping the non-words "
                                 f"{sorted(dropset)} and empty labels; check tier= (or drop=).")
            g["run"] = [lab] * len(g)
            if "tier" in df.attrs:
                g["tier"] = df.attrs["tier"]
            tables.append(g)
    df = pd.concat(tables, ignore_index=True)
    dup = pd.Series([str(t["run"].iloc[0]) for t in tables])
    if dup.duplicated().any():
        raise ValueError(f"Run labels repeat across transcripts: {dup[dup.duplicated()].tolist()}; give each run "
                         "its own label with run=.")
    text = df["text"].astype(str)
    table = pd.DataFrame({
        "stimulus_id": word_ids(df["run"]), "modality": "word",
        "text": (text.str.lower() if lowercase else text).to_numpy(),
        "onset": df["onset"].to_numpy(float), "duration": (df["offset"] - df["onset"]).clip(lower=0).to_numpy(float),
        "run": df["run"].to_numpy(),
    })
    if "tier" in df.columns:
        table["tier"] = df["tier"].to_numpy()
    return Stimuli(table)


def load_textgrid(path: Any, *, tier: Any = "word", run: Any = None, drop: Any = NON_WORDS,
                  lowercase: bool = False) -> Stimuli:
    """The words (or phones) of a Praat TextGrid as a narrative ``Stimuli`` (read with praatio).

    The TextGrid case of :func:`load_transcript`; see there for the columns and checks.

    Parameters
    ----------
    path : path or list of paths
        One ``.TextGrid`` per run / story.
    tier : str or int
        ``"word"`` (default), ``"phone"``, another tier name, or a tier position.
    run : value or list, optional
        Run labels (default: the file names without extension, i.e. the story names).
    drop : collection of str
        Non-word labels to drop (default :data:`NON_WORDS`: ``sp``, ``sentence_start``...).
    lowercase : bool

    Returns
    -------
    Stimuli of shape (n_tokens,)

    Examples
    --------
    >>> words = load_textgrid("derivative/TextGrids/wheretheressmoke.TextGrid")  # doctest: +SKIP
    >>> phones = load_textgrid("derivative/TextGrids/wheretheressmoke.TextGrid", tier="phone")  # doctest: +SKIP
    """
    paths = list(path) if isinstance(path, (list, tuple)) else [path]
    for p in paths:
        if not isinstance(p, (str, os.PathLike)) or Path(p).suffix.lower() != ".textgrid":
            raise ValueError(f"load_textgrid reads .TextGrid files; got {p!r}. Use load_transcript for word tables.")
    return load_transcript(paths if isinstance(path, (list, tuple)) else path, run=run, tier=tier, drop=drop,
                           lowercase=lowercase)
