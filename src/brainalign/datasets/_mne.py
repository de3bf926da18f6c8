"""MNE ``Raw`` / ``Epochs`` / ``Evoked`` (or files MNE reads) to :class:`brainalign.BrainData`."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._utils import Bunch, logger
from ..data import BrainData

__all__ = ["load_mne"]

_DEFAULT_TMIN, _DEFAULT_TMAX = -0.2, 0.5


def _read_path(path: Path):
    """Raw, Epochs or list of Evoked from a file, chosen from the MNE file-name convention."""
    import mne

    if not path.exists():
        raise FileNotFoundError(f"No such M/EEG file: {path}")
    name = path.name.lower()
    stem = name.removesuffix(".gz").removesuffix(".fif")
    if name.endswith((".fif", ".fif.gz")) and stem.endswith(("-epo", "_epo")):
        return mne.read_epochs(path, preload=True, verbose=False)
    if name.endswith((".fif", ".fif.gz")) and stem.endswith(("-ave", "_ave")):
        return mne.read_evokeds(path, verbose=False)
    try:
        return mne.io.read_raw(path, preload=False, verbose=False)
    except Exception as err:  # MNE raises several types for unknown formats
        raise ValueError(
            f"MNE could not read {path.name} as raw data ({type(err).__name__}: {err}). Give a file "
            "that mne.io.read_raw reads (FIF, EDF, BDF, BrainVision, EEGLAB...), an epochs file named "
            "*-epo.fif or an evoked file named *-ave.fif, or load it with MNE and pass the object."
        ) from err


def _pick_idx(info, picks: Any) -> np.ndarray:
    import mne

    if picks is None:
        idx = mne.pick_types(info, meg=True, eeg=True, seeg=True, ecog=True, dbs=True, exclude="bads")
        if len(idx) == 0:
            types = sorted(set(info.get_channel_types()))
            raise ValueError(
                f"No MEG/EEG data channel to load (channel types present: {types}; bad channels "
                f"excluded: {info['bads']}). Pass picks= to choose channels, e.g. picks={types[0]!r}."
            )
        return idx
    try:
        from mne._fiff.pick import _picks_to_idx
    except ImportError:  # MNE < 1.6
        from mne.io.pick import _picks_to_idx
    try:
        return np.asarray(_picks_to_idx(info, picks, exclude=()))
    except ValueError as err:
        raise ValueError(
            f"Invalid picks={picks!r}: {err}. Give channel names, channel types ('meg', 'eeg', "
            f"'grad'...) or indices; this recording has {len(info['ch_names'])} channels."
        ) from err


def _channels_table(info, idx: np.ndarray) -> pd.DataFrame:
    types = info.get_channel_types()
    locs = np.array([info["chs"][i]["loc"][:3] for i in idx], dtype=float).reshape(len(idx), 3)
    return pd.DataFrame({
        "name": [info["ch_names"][i] for i in idx],
        "ch_type": [types[i] for i in idx],
        "x": locs[:, 0], "y": locs[:, 1], "z": locs[:, 2],
    })


def _picked_info(info, idx: np.ndarray):
    import mne

    return mne.pick_info(info, idx, verbose=False)


def _subject(info, subject: str | None) -> str | None:
    if subject is not None:
        return subject
    sub = info.get("subject_info") or {}
    his = sub.get("his_id")
    return str(his) if his else None


def _events_array(events: Any) -> np.ndarray:
    import mne

    if isinstance(events, (str, os.PathLike)):
        return mne.read_events(events, verbose=False)
    arr = np.asarray(events)
    if arr.ndim != 2 or arr.shape[1] != 3 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"events must be an integer array of shape (n_events, 3) (sample, previous, code) as "
            f"returned by mne.find_events, or an events file; got shape {arr.shape}, dtype {arr.dtype}."
        )
    return arr


def _events_inside(ev: np.ndarray, raw, names: dict, on_outside: str) -> np.ndarray:
    """The selected events that fall inside the recording; the others dropped with a warning or an error.

    Events before the first sample and after the last one are treated alike (the rule of
    ``load_fmri``'s ``on_outside``).
    """
    first, last = raw.first_samp, raw.first_samp + raw.n_times - 1
    sfreq = raw.info["sfreq"]
    early, late = ev[:, 0] < first, ev[:, 0] > last
    if not (early | late).any():
        return ev

    def show(rows):
        return ", ".join(f"{names.get(int(c), int(c))!r} at sample {int(s)}" for s, _, c in rows[:5]) + (
            " ..." if len(rows) > 5 else "")

    parts = [f"{int(m.sum())} {w} ({show(ev[m])})" for m, w in ((early, "before its first sample"),
                                                                (late, "after its last sample")) if m.any()]
    msg = (f"{int((early | late).sum())} of the {len(ev)} selected event(s) lie outside the recording: "
           f"{'; '.join(parts)}. The data span samples {first}..{last} ({first / sfreq:.3f}-{last / sfreq:.3f} s); "
           "event samples include raw.first_samp, as from mne.find_events.")
    if on_outside == "raise":
        raise ValueError(msg + " Pass on_outside='warn' to drop them.")
    from ._events import user_stacklevel

    warnings.warn(msg + " They were dropped; pass on_outside='raise' to stop instead.", stacklevel=user_stacklevel())
    return ev[~(early | late)]


def _from_epochs(epochs, idx: np.ndarray, subject: str | None) -> BrainData:
    if len(epochs) == 0:
        raise ValueError(
            f"No epoch is left (drop log: {[d for d in epochs.drop_log if d][:5]}...). Check the events, "
            "event_id, tmin/tmax and rejection settings."
        )
    data = epochs.get_data(picks=idx, copy=False)
    names = {code: name for name, code in epochs.event_id.items()}
    codes = epochs.events[:, 2]
    sfreq = float(epochs.info["sfreq"])
    samples = pd.DataFrame({
        "condition": [names.get(int(c), str(int(c))) for c in codes],
        "event_code": codes.astype(int),
        "onset": epochs.events[:, 0] / sfreq,
        "sample": epochs.events[:, 0].astype(int),
    })
    if epochs.metadata is not None:
        meta = epochs.metadata.reset_index(drop=True)
        for col in meta.columns:
            samples[col if col not in samples else f"metadata_{col}"] = meta[col].to_numpy()
    info = _picked_info(epochs.info, idx)
    return BrainData(data, samples=samples, channels=_channels_table(epochs.info, idx), sfreq=sfreq,
                     times=epochs.times, subject=_subject(epochs.info, subject),
                     space={"kind": "sensor", "info": info})


def _from_evokeds(evokeds: list, picks: Any, subject: str | None) -> BrainData:
    first = evokeds[0]
    for k, ev in enumerate(evokeds[1:], 1):
        if ev.ch_names != first.ch_names:
            raise ValueError(
                f"Evoked {k} ({ev.comment!r}) has channels that differ from evoked 0 "
                f"({len(ev.ch_names)} vs {len(first.ch_names)} channels); pick the same channels first."
            )
        if len(ev.times) != len(first.times) or not np.allclose(ev.times, first.times):
            raise ValueError(
                f"Evoked {k} ({ev.comment!r}) has {len(ev.times)} time points from {ev.times[0]:.4f} s, "
                f"evoked 0 has {len(first.times)} from {first.times[0]:.4f} s; crop/resample them alike."
            )
    idx = _pick_idx(first.info, picks)
    data = np.stack([ev.data[idx] for ev in evokeds])
    samples = pd.DataFrame({"condition": [ev.comment for ev in evokeds],
                            "nave": [int(ev.nave) for ev in evokeds]})
    return BrainData(data, samples=samples, channels=_channels_table(first.info, idx),
                     sfreq=float(first.info["sfreq"]), times=first.times, subject=_subject(first.info, subject),
                     space={"kind": "sensor", "info": _picked_info(first.info, idx)})


def load_mne(inst: Any, *, events: Any = None, event_id: dict | None = None, tmin: float | None = None,
             tmax: float | None = None, baseline: tuple | None = None, picks: Any = None,
             subject: str | None = None, words: Any = None, prefix: str = "word/",
             on_outside: str = "warn") -> BrainData | Bunch:
    """M/EEG data from MNE to :class:`brainalign.BrainData`.

    Parameters
    ----------
    inst : mne.io.Raw, mne.Epochs, mne.Evoked, list of mne.Evoked, or path
        A path is read with :func:`mne.io.read_raw` (any format MNE reads), except FIF files
        named ``*-epo.fif`` (epochs) and ``*-ave.fif`` (evoked).
    events : array of shape (n_events, 3) or path, optional
        Raw only: cut epochs around these events (sample indices including
        ``raw.first_samp``, as from :func:`mne.find_events`). Without events a Raw stays
        continuous.
    event_id : dict, optional
        ``{condition name: event code}``: which events to epoch and their names.
    tmin, tmax : float, optional
        Epoch limits in seconds (default -0.2 and 0.5).
    baseline : tuple, optional
        Baseline correction interval for epoching, as in :class:`mne.Epochs`; None (default)
        applies none.
    picks : str, list or array, optional
        Channels: names, types (``"meg"``, ``"eeg"``, ``"grad"``...) or indices. Default: the
        MEG and EEG (and sEEG/ECoG/DBS) data channels minus bad channels — never stim or EOG.
    subject : str, optional
        Stored on the BrainData (default: ``info["subject_info"]["his_id"]`` if any).
    words : "annotations", path, DataFrame or mne.Annotations, optional
        Continuous Raw only: the words heard (or read) during the recording, which makes the
        result a ``Bunch`` with a narrative ``Stimuli`` (the Raw stays continuous).
        ``"annotations"``: the Raw's own annotations whose description starts with
        ``prefix`` (``"word/the"``), on MNE's clock. A table (a BIDS ``*_events.tsv`` with
        a ``word`` column, a TSV/CSV word table or a DataFrame, see
        :func:`~brainalign.datasets.load_transcript`) has onsets in seconds from the first
        sample of the file, as BIDS says; they are moved to MNE's clock (``+
        raw.first_time``). Words outside the recording raise a ValueError.
    prefix : str
        The annotation prefix that marks a word (``words="annotations"``).
    on_outside : {"warn", "raise"}
        Selected events (``event_id``) before the first or after the last sample: dropped
        with a warning that names them (default), or a ValueError. Events that ``event_id``
        does not select (e.g. an EDF+ "Recording ends" annotation) are ignored.

    Returns
    -------
    BrainData
        - Epochs, or Raw with events: shape (n_epochs, n_channels, n_times); samples
          ``condition`` (name from ``event_id``), ``event_code``, ``onset`` (s) and
          ``sample`` of each event, plus the columns of ``epochs.metadata``.
        - Raw without events: continuous, shape (n_times, n_channels); samples ``onset`` (s)
          and ``sample``. Onsets and samples follow MNE's clock (they include
          ``raw.first_samp``, like event samples); subtract ``raw.first_time`` for the time
          since the start of the file.
        - Evoked(s): shape (n_evoked, n_channels, n_times), samples ``condition`` (the
          comment) and ``nave``.
        - Raw with ``words``: ``Bunch(brain=<continuous BrainData>, stimuli=<Stimuli of the
          words, onsets on the clock of brain.samples["onset"]>)``.

        Channels table: ``name``, ``ch_type``, sensor position ``x, y, z`` (m, device/head
        coordinates from ``info["chs"][i]["loc"][:3]``). ``sfreq`` is set (and ``times`` for
        epoched data); ``space = {"kind": "sensor", "info": info}`` of the picked channels,
        so ``brain.to_image(values)`` gives an ``mne.EvokedArray`` for topomaps.

    Examples
    --------
    >>> import mne, numpy as np
    >>> info = mne.create_info(["EEG1", "EEG2", "STI"], 100.0, ["eeg", "eeg", "stim"])
    >>> raw = mne.io.RawArray(np.zeros((3, 1000)), info, verbose=False)
    >>> load_mne(raw).shape
    (1000, 2)
    >>> load_mne(raw, events=np.array([[200, 0, 1], [600, 0, 2]]), tmin=-0.1, tmax=0.3).shape
    (2, 2, 41)
    """
    import mne

    from .._utils import check_option
    from ._events import ON_OUTSIDE

    check_option("on_outside", on_outside, ON_OUTSIDE)
    if isinstance(inst, (str, os.PathLike)):
        inst = _read_path(Path(inst))
    if words is not None and not isinstance(inst, mne.io.BaseRaw):
        raise ValueError(f"words= is for continuous recordings (mne.io.Raw); got {type(inst).__name__}.")
    if words is not None and events is not None:
        raise ValueError("Give words= (a continuous recording with its narrative) or events= (epochs), not both.")
    if isinstance(inst, mne.Evoked):
        inst = [inst]
    if isinstance(inst, (list, tuple)):
        if not inst or not all(isinstance(ev, mne.Evoked) for ev in inst):
            kinds = sorted({type(ev).__name__ for ev in inst}) or ["empty list"]
            raise TypeError(f"A list given to load_mne must hold mne.Evoked objects; got {kinds}.")
        if events is not None or tmin is not None or tmax is not None:
            warnings.warn("events/tmin/tmax are ignored for Evoked data (already averaged).", stacklevel=2)
        return _from_evokeds(list(inst), picks, subject)
    if isinstance(inst, mne.BaseEpochs):
        if events is not None:
            warnings.warn("events are ignored for Epochs (they carry their own).", stacklevel=2)
        idx = _pick_idx(inst.info, picks)
        if tmin is not None or tmax is not None:
            inst = inst.copy().crop(tmin=tmin, tmax=tmax)
        if not inst.preload:
            inst = inst.copy().load_data()
        return _from_epochs(inst, idx, subject)
    if not isinstance(inst, mne.io.BaseRaw):
        raise TypeError(
            f"load_mne needs an mne Raw, Epochs, Evoked, a list of Evoked or a file path; "
            f"got {type(inst).__name__}."
        )
    raw = inst
    idx = _pick_idx(raw.info, picks)
    sfreq = float(raw.info["sfreq"])
    if events is None and (tmin is not None or tmax is not None or event_id is not None):
        raise ValueError(
            "tmin/tmax/event_id were given but no events: pass events= (e.g. mne.find_events(raw) or "
            "mne.events_from_annotations(raw)[0]) to cut epochs, or leave them out to keep the "
            "continuous data."
        )
    if events is None:
        data = np.ascontiguousarray(raw.get_data(picks=idx).T)
        sample = raw.first_samp + np.arange(raw.n_times)
        samples = pd.DataFrame({"onset": sample / sfreq, "sample": sample})
        brain = BrainData(data, samples=samples, channels=_channels_table(raw.info, idx), sfreq=sfreq,
                          subject=_subject(raw.info, subject),
                          space={"kind": "sensor", "info": _picked_info(raw.info, idx)})
        if words is None:
            return brain
        return Bunch(brain=brain, stimuli=_raw_words(raw, words, prefix))
    ev = _events_array(events)
    if event_id is not None:
        missing = {k: v for k, v in event_id.items() if v not in set(ev[:, 2].tolist())}
        if len(missing) == len(event_id):
            raise ValueError(
                f"None of the event codes in event_id={event_id} occurs in the events "
                f"(codes present: {sorted(set(ev[:, 2].tolist()))})."
            )
        ev = ev[np.isin(ev[:, 2], list(event_id.values()))]  # unselected events (EDF+ 'Recording ends'...) ignored
    ev = _events_inside(ev, raw, {v: k for k, v in (event_id or {}).items()}, on_outside)
    if len(ev) == 0:
        raise ValueError("No selected event lies inside the recording; nothing to epoch.")
    tmin = _DEFAULT_TMIN if tmin is None else tmin
    tmax = _DEFAULT_TMAX if tmax is None else tmax
    epochs = mne.Epochs(raw, ev, event_id=event_id, tmin=tmin, tmax=tmax, baseline=baseline, picks=idx,
                        preload=True, reject=None, flat=None, reject_by_annotation=False,
                        on_missing="ignore", event_repeated="drop", verbose=False)
    n_kept = len(epochs)
    n_wanted = int(sum(1 for d in epochs.drop_log if "IGNORED" not in d))
    if 0 < n_kept < n_wanted:
        warnings.warn(
            f"{n_wanted - n_kept} of {n_wanted} epochs were dropped (window [{tmin}, {tmax}] s beyond the "
            f"recording, or repeated events).", stacklevel=2)
    logger.info("load_mne: %d epochs x %d channels x %d times", n_kept, len(idx), len(epochs.times))
    return _from_epochs(epochs, np.arange(len(idx)), subject)


def _raw_words(raw, words: Any, prefix: str):
    """The narrative Stimuli of a continuous Raw, on MNE's clock (sample / sfreq, first_samp included)."""
    from ._transcript import load_transcript

    if isinstance(words, str) and words == "annotations":
        stim = load_transcript(raw.annotations, prefix=prefix, run=0)
    else:
        stim = load_transcript(words, run=0, prefix=prefix)
        if not (type(words).__name__ == "Annotations"):
            stim.table["onset"] = stim.table["onset"] + raw.first_time
    sfreq = raw.info["sfreq"]
    start, end = raw.first_samp / sfreq, (raw.first_samp + raw.n_times) / sfreq
    on = stim.table["onset"].to_numpy(float)
    off = on + stim.table["duration"].to_numpy(float)
    out = (on < start - 1e-9) | (off > end + 1e-9)
    if out.any():
        bad = stim.table.loc[out]
        raise ValueError(
            f"{int(out.sum())} of the {len(stim)} words lie outside the recording ({start:.3f}-{end:.3f} s on MNE's "
            f"clock): {list(zip(bad['text'], bad['onset'].round(3)))[:5]}. Tables give seconds from the first "
            "sample (BIDS); annotations are on MNE's clock. Check that the words belong to this recording."
        )
    return stim
