"""Stimuli: the table of stimulus items."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ._tables import _match

# --------------------------------------------------------------------------- Stimuli
def _as_strings(values: Iterable[Any], what: str) -> list[str]:
    """Items as strings; a missing value (None / NaN) is an error, never the text "None"."""
    values = list(values)
    missing = [i for i, v in enumerate(values) if v is None or (isinstance(v, float) and np.isnan(v))]
    if missing:
        raise ValueError(
            f"{len(missing)} of the {len(values)} {what} are missing (None or NaN; first at index "
            f"{missing[0]}). Give every item a string — an empty string for an empty stimulus, whose "
            "features are zeros with a warning — or drop the missing items."
        )
    return [str(v) for v in values]


_PAYLOAD = {"text": "text", "word": "text", "image": "image", "audio": "audio", "video": "image"}


class Stimuli:
    """A table of stimulus items: one row per item, with its content and timing.

    Columns: ``stimulus_id`` (unique), ``modality`` (``text``, ``word``, ``image``,
    ``audio``, ``video``), the content column for the modality (``text``, ``image`` — an
    array, a PIL image or a path —, ``audio`` with ``sfreq``), and optional timing
    ``onset``, ``duration`` (s) and ``run``. A narrative is a table of words (modality
    ``word``) with their onsets; the words of one ``run`` form one continuous text.

    Examples
    --------
    >>> s = Stimuli.from_texts(["a cat", "a dog"])
    >>> len(s), s.ids
    (2, ['s0', 's1'])
    """

    def __init__(self, table: Any) -> None:
        df = pd.DataFrame(table).reset_index(drop=True)
        if len(df) == 0:
            raise ValueError("Stimuli need at least one item; got an empty table.")
        if "stimulus_id" not in df:
            df.insert(0, "stimulus_id", [f"s{i}" for i in range(len(df))])
        dup = df["stimulus_id"][df["stimulus_id"].duplicated()]
        if len(dup):
            raise ValueError(
                f"Duplicate stimulus ids: {list(pd.unique(dup))[:10]} ({len(dup)} duplicates). "
                "Each item needs a unique stimulus_id; repeated presentations belong in the "
                "BrainData samples table, not in Stimuli."
            )
        if "modality" not in df:
            df["modality"] = next((m for m in ("text", "image", "audio") if m in df), "text")
        bad = sorted(set(df["modality"]) - set(_PAYLOAD))
        if bad:
            raise ValueError(f"Unknown modality {bad}; allowed: {sorted(_PAYLOAD)}.")
        for mod in set(df["modality"]):
            col = _PAYLOAD[mod]
            if col not in df:
                raise ValueError(f"Stimuli of modality {mod!r} need a {col!r} column; columns: {list(df.columns)}.")
        if "onset" in df and "duration" in df and (df["duration"] < 0).any():
            raise ValueError("Stimulus durations must be >= 0.")
        self.table = df

    # --- constructors ----------------------------------------------------------------
    @classmethod
    def from_texts(cls, texts: Iterable[str], *, ids: Iterable[Any] | None = None, **columns: Any) -> Stimuli:
        """Sentences or passages, one item each."""
        texts = _as_strings(texts, "texts")
        table = {"text": texts, "modality": "text", **columns}
        if ids is not None:
            table = {"stimulus_id": list(ids), **table}
        return cls(pd.DataFrame(table))

    @classmethod
    def from_images(cls, images: Iterable[Any], *, ids: Iterable[Any] | None = None, **columns: Any) -> Stimuli:
        """Images as arrays (H, W[, C]), PIL images or file paths."""
        table = pd.DataFrame({"modality": "image", **columns}, index=range(len(images := list(images))))
        table["image"] = pd.Series(images, dtype=object)
        if ids is not None:
            table.insert(0, "stimulus_id", list(ids))
        return cls(table)

    @classmethod
    def from_audio(cls, waveforms: Iterable[Any], sfreq: float, *, ids: Iterable[Any] | None = None,
                   **columns: Any) -> Stimuli:
        """Mono waveforms (1-D arrays) sampled at ``sfreq`` Hz."""
        waves = [np.asarray(w, dtype=np.float32) for w in waveforms]
        table = pd.DataFrame({"modality": "audio", "sfreq": float(sfreq), **columns}, index=range(len(waves)))
        table["audio"] = pd.Series(waves, dtype=object)
        if ids is not None:
            table.insert(0, "stimulus_id", list(ids))
        return cls(table)

    @classmethod
    def from_words(cls, words: Iterable[str], onsets: Iterable[float], *, offsets: Iterable[float] | None = None,
                   run: Any = 0, ids: Iterable[Any] | None = None) -> Stimuli:
        """A narrative: words with their onsets (s). ``run`` is a value or one per word."""
        words = _as_strings(words, "words")
        onsets = np.asarray(list(onsets), dtype=float)
        if len(onsets) != len(words):
            raise ValueError(f"{len(words)} words but {len(onsets)} onsets.")
        table = pd.DataFrame({"modality": "word", "text": words, "onset": onsets, "run": run})
        if offsets is not None:
            offsets = np.asarray(list(offsets), dtype=float)
            if len(offsets) != len(words):
                raise ValueError(f"{len(words)} words but {len(offsets)} offsets.")
            table["duration"] = offsets - onsets
        if ids is None:
            table.insert(0, "stimulus_id", [f"w{i}" for i in range(len(words))])
        else:
            table.insert(0, "stimulus_id", list(ids))
        for r, grp in table.groupby("run", sort=False):
            if (np.diff(grp["onset"].to_numpy()) < 0).any():
                raise ValueError(f"Word onsets of run {r!r} are not in increasing order.")
        return cls(table)

    # --- access ------------------------------------------------------------------------
    @property
    def ids(self) -> list:
        return self.table["stimulus_id"].tolist()

    @property
    def modality(self) -> str:
        """The modality, or ``"mixed"``."""
        mods = pd.unique(self.table["modality"])
        return str(mods[0]) if len(mods) == 1 else "mixed"

    @property
    def is_narrative(self) -> bool:
        return self.modality == "word"

    def contents(self) -> list:
        """The content of every item (text, image, waveform), in table order."""
        modality = self.table["modality"].to_numpy()
        columns = {col: self.table[col].to_numpy() for col in {_PAYLOAD[m] for m in set(modality)}}
        return [columns[_PAYLOAD[m]][i] for i, m in enumerate(modality)]

    @property
    def texts(self) -> list[str]:
        return self.table["text"].astype(str).tolist()

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return f"<Stimuli: {len(self)} items, modality={self.modality!r}, columns={list(self.table.columns)}>"

    def select(self, ids: Iterable[Any] | None = None, **query: Any) -> Stimuli:
        """Items by id (in the order given) and/or by column values."""
        table = self.table
        if ids is not None:
            ids = list(ids)
            pos = pd.Index(table["stimulus_id"]).get_indexer(ids)
            if (pos < 0).any():
                missing = [i for i, p in zip(ids, pos) if p < 0][:10]
                raise KeyError(f"Unknown stimulus ids {missing}.")
            table = table.iloc[pos]
        for key, value in query.items():
            if key not in table:
                raise KeyError(f"Cannot select by {key!r}; columns are {list(table.columns)}.")
            table = table[_match(table[key], value)]
        return Stimuli(table)

    def content_hash(self) -> str:
        """A stable SHA-256 of ids, modality, content and timing (used as a cache key).

        Texts are hashed as text; arrays and PIL images by their pixels; a content given as a
        file path (an image on disk) by the bytes of the file, so that editing the file in
        place changes the hash.
        """
        h = hashlib.sha256()
        for col in ("stimulus_id", "modality", "onset", "duration", "run", "sfreq"):
            if col in self.table:
                h.update(col.encode())
                h.update(pd.util.hash_pandas_object(self.table[col].astype(str), index=False).to_numpy().tobytes())
        items = self.contents()
        if all(isinstance(item, str) for item in items) and self.modality in ("text", "word"):
            h.update(b"texts")
            h.update(pd.util.hash_pandas_object(pd.Series(items, dtype=object), index=False).to_numpy().tobytes())
            return h.hexdigest()
        for item in items:
            _hash_item(h, item)
        return h.hexdigest()




def _hash_item(h: Any, item: Any) -> None:
    """Feed one stimulus content into the hash ``h``."""
    is_path = isinstance(item, os.PathLike) or (isinstance(item, str) and len(item) < 4096 and os.path.isfile(item))
    if is_path:
        h.update(b"f")
        with open(item, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    elif isinstance(item, str):
        h.update(b"s" + item.encode())
    elif hasattr(item, "getdata"):  # PIL image
        h.update(f"p{item.size}{item.mode}".encode())
        h.update(item.tobytes())
    elif hasattr(item, "tobytes"):
        arr = np.ascontiguousarray(item)
        h.update(f"a{arr.shape}{arr.dtype}".encode())
        h.update(arr.tobytes())
    else:
        h.update(repr(item).encode())
