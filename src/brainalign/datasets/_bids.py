"""BIDS datasets (raw or fMRIPrep derivatives): find the BOLD runs, their events and sidecars.

A small, dependency-free reader of BIDS file names (``key-value`` entities joined by ``_``,
then a suffix and an extension) and of the inheritance principle for sidecars and events:
a ``*_bold.json`` / ``*_events.tsv`` applies to every BOLD file in its folder and below whose
entities include its own (``task-x_bold.json`` at the top level applies to every run of
task ``x``); JSON sidecars are merged from the least to the most specific, for events the
most specific file wins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .._utils import Bunch, as_list, logger

__all__ = ["load_bids", "parse_bids_name"]

_PREFIX = {"subject": "sub-", "session": "ses-", "task": "task-", "space": "space-", "desc": "desc-"}


def parse_bids_name(name: str) -> tuple[dict[str, str], str, str] | None:
    """Entities, suffix and extension of a BIDS file name, or None if it is not one.

    Examples
    --------
    >>> parse_bids_name("sub-01_task-faces_run-2_bold.nii.gz")
    ({'sub': '01', 'task': 'faces', 'run': '2'}, 'bold', '.nii.gz')
    >>> parse_bids_name("task-faces_bold.json")
    ({'task': 'faces'}, 'bold', '.json')
    """
    base, dot, ext = name.partition(".")
    parts = base.split("_")
    if len(parts) < 2 and "-" in base:
        return None
    *pairs, suffix = parts
    if not suffix or "-" in suffix:
        return None
    entities = {}
    for pair in pairs:
        key, sep, value = pair.partition("-")
        if not sep or not key or not value or key in entities:
            return None
        entities[key] = value
    return entities, suffix, dot + ext


def _rel_parts(path: Path) -> tuple[Path, list[str]]:
    """The dataset root of a file and the folders from it (``sub-01``, ``ses-1``, ``func``)."""
    parts = path.parent.parts
    for k in range(len(parts) - 1, -1, -1):
        if parts[k].startswith("sub-"):
            return Path(*parts[:k]), list(parts[k:])
    return path.parent, []


def _candidates(bold: Path, bases: list[Path], suffix: str, ext: str, entities: dict) -> list[tuple]:
    """Files ``*_<suffix><ext>`` that apply to ``bold`` by inheritance: (rank, path), least specific first."""
    own_root, rel = _rel_parts(bold)
    found = {}
    for b, base in enumerate(dict.fromkeys([*bases, own_root])):
        for depth in range(len(rel) + 1):
            folder = base.joinpath(*rel[:depth])
            if not folder.is_dir():
                continue
            for f in folder.glob(f"*{suffix}{ext}"):
                parsed = parse_bids_name(f.name)
                if parsed is None or parsed[1] != suffix or parsed[2] != ext:
                    continue
                ents = parsed[0]
                if all(entities.get(k) == v for k, v in ents.items()):
                    found[f.resolve()] = (b, depth, len(ents))
    return sorted(((rank, path) for path, rank in found.items()), key=lambda t: t[0])


def _norm(value: Any, key: str) -> Any:
    if value is None:
        return None
    prefix = _PREFIX.get(key, "")
    text = str(value)
    return text[len(prefix):] if prefix and text.startswith(prefix) else text


def _values(rows: list[dict], key: str) -> list[str]:
    return sorted({r["ents"].get(key, "(none)") for r in rows})


def _choose(rows: list[dict], key: str, value: str | None, context: str, prefer: str | None = None) -> list[dict]:
    """Keep the rows with entity ``key`` = value; None: files without it, else ``prefer``, else the only one."""
    if value is not None:
        kept = [r for r in rows if r["ents"].get(key) == value]
        if not kept:
            raise ValueError(f"No BOLD run with {key}-{value} for {context}. Available {key} values: "
                             f"{_values(rows, key)}.")
        return kept
    kept = [r for r in rows if key not in r["ents"]]
    if kept:
        return kept
    options = _values(rows, key)
    if prefer in options:
        return [r for r in rows if r["ents"].get(key) == prefer]
    if len(options) == 1:
        logger.info("Using %s-%s, the only one for %s.", key, options[0], context)
        return rows
    arg = {"space": "space", "desc": "desc"}.get(key, f"filters={{'{key}': ...}}")
    raise ValueError(f"Several {key} values exist for {context}: {options}. Choose one with {arg}=.")


def load_bids(root: Any, *, subject: str, task: str, session: str | None = None, space: str | None = None,
              desc: str | None = None, run: Any = None, raw_root: Any = None, filters: dict | None = None,
              **kwargs: Any) -> Bunch:
    """Load the BOLD runs of one subject and task from a BIDS or fMRIPrep dataset.

    Parameters
    ----------
    root : path
        A raw BIDS dataset (``sub-XX/[ses-YY/]func/sub-XX_[ses-YY_]task-T_[run-N_]bold.nii.gz``),
        a derivatives folder (``..._space-S_desc-D_bold.nii.gz``), or a raw dataset that
        holds its derivatives under ``derivatives/`` (found as well).
    subject, task : str
        With or without the ``sub-`` / ``task-`` prefix.
    session : str, optional
        Default: every session (the run labels are then ``"<session>_<run>"`` and the
        samples get a ``session`` column).
    space, desc : str, optional
        Derivative entities. Default: raw files (no ``space``) when they exist, else the
        only space there is; ``desc-preproc`` when several ``desc`` exist.
    run : int or list of int, optional
        Which runs (default all).
    raw_root : path, optional
        The raw dataset with the events and sidecars, when ``root`` holds derivatives
        elsewhere. A ``root`` at ``<raw>/derivatives/<name>`` finds ``<raw>`` by itself.
    filters : dict, optional
        Other entities to match, e.g. ``{"acq": "fullbrain", "echo": "1"}``.
    **kwargs
        Passed to :func:`~brainalign.datasets.load_fmri` (``mask``, ``atlas``,
        ``standardize``, ``tr``, ``nan_policy``...).

    Returns
    -------
    Bunch with
        brain : BrainData of shape (n_volumes over all runs, n_voxels)
            The runs concatenated, with ``run`` (the BIDS run number) in the samples.
        stimuli : Stimuli or None
            From the events (see :func:`read_events`); None without events files.
        events : DataFrame or None
            One row per event, with ``run`` and ``stimulus_id``.
        files : DataFrame
            Per run: ``bold``, ``events``, ``sidecars`` (merged in this order) and entities.

    Examples
    --------
    >>> bunch = load_bids("ds000105", subject="1", task="objectviewing")  # doctest: +SKIP
    """
    from ._events import read_events
    from ._fmri import load_fmri, read_json, repetition_time

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"BIDS root {str(root)!r} is not a folder.")
    bases = [root]
    if root.parent.name == "derivatives":
        bases.insert(0, root.parent.parent)
    if raw_root is not None:
        bases.insert(0, Path(raw_root))
    rows = []
    for path in sorted(root.rglob("*_bold.nii*")):
        parsed = parse_bids_name(path.name)
        if parsed and parsed[1] == "bold" and parsed[2] in (".nii", ".nii.gz") and "sub" in parsed[0]:
            rows.append({"path": path, "ents": parsed[0]})
    if not rows:
        raise ValueError(f"No BOLD file (*_bold.nii[.gz]) under {str(root)!r}; is it a BIDS dataset?")
    subject, task = _norm(subject, "subject"), _norm(task, "task")
    kept = [r for r in rows if r["ents"]["sub"] == subject]
    if not kept:
        raise ValueError(f"No BOLD run for subject {subject!r} in {str(root)!r}. Subjects: {_values(rows, 'sub')}.")
    rows, kept = kept, [r for r in kept if r["ents"].get("task") == task]
    if not kept:
        raise ValueError(f"No BOLD run for task {task!r} of subject {subject!r}. Tasks of this subject: "
                         f"{_values(rows, 'task')}.")
    context = f"sub-{subject} task-{task}"
    if session is not None:
        kept = _choose(kept, "ses", _norm(session, "session"), context)
    for key, value in (filters or {}).items():
        kept = _choose(kept, key, str(value), context)
    kept = _choose(kept, "space", _norm(space, "space"), context)
    kept = _choose(kept, "desc", _norm(desc, "desc"), context, prefer="preproc")
    if run is not None:
        wanted = {int(r) for r in as_list(run)}
        avail = sorted({int(r["ents"]["run"]) for r in kept if "run" in r["ents"]})
        kept = [r for r in kept if "run" in r["ents"] and int(r["ents"]["run"]) in wanted]
        if not kept or len({int(r["ents"]["run"]) for r in kept}) < len(wanted):
            raise ValueError(f"Runs {sorted(wanted)} requested for {context}; available runs: {avail}.")
    for key in sorted({k for r in kept for k in r["ents"]} - {"sub", "ses", "run", "task"}):
        if len(_values(kept, key)) > 1:
            raise ValueError(f"The BOLD runs of {context} differ in {key}: {_values(kept, key)}; "
                             f"choose one with filters={{'{key}': ...}}.")
    kept.sort(key=lambda r: (r["ents"].get("ses", ""), int(r["ents"].get("run", "0"))))
    sessions = sorted({r["ents"].get("ses") for r in kept} - {None})
    keys = [(r["ents"].get("ses"), r["ents"].get("run")) for r in kept]
    if len(set(keys)) != len(keys):
        raise ValueError(f"Several BOLD files share a session/run for {context}: "
                         f"{[r['path'].name for r in kept]}; narrow the query with filters=.")
    if len(sessions) > 1:
        labels = [f"{s}_{int(r) if r else 0}" for s, r in keys]
    elif all(r is not None for _, r in keys):
        labels = [int(r) for _, r in keys]
    else:
        labels = list(range(len(kept)))
    records, events, trs = [], [], []
    for label, r in zip(labels, kept):
        ents = r["ents"]
        sidecars = [p for _, p in _candidates(r["path"], bases, "bold", ".json", ents)]
        meta: dict = {}
        for p in sidecars:
            meta.update(read_json(p))
        ev = _candidates(r["path"], bases, "events", ".tsv", ents)
        events.append(ev[-1][1] if ev else None)
        trs.append(repetition_time(meta, sidecars[-1] if sidecars else r["path"]))
        records.append({**ents, "run": label, "bold": str(r["path"]),
                        "events": str(events[-1]) if ev else None, "sidecars": [str(p) for p in sidecars]})
    files = pd.DataFrame(records)
    has_events = [e is not None for e in events]
    stimuli = table = None
    if any(has_events):
        if not all(has_events):
            missing = [lab for lab, h in zip(labels, has_events) if not h]
            raise ValueError(f"Runs {missing} of {context} have no events.tsv but the other runs do; "
                             "add them or select runs with run=.")
        stimuli, table = read_events(events, run=labels)
    brain = load_fmri([r["path"] for r in kept], run=labels, events=(stimuli, table) if table is not None else None,
                      subject=subject, _sidecar_trs=trs, **kwargs)
    if sessions:
        brain.samples["session"] = brain.samples["run"].map(dict(zip(labels, [s for s, _ in keys])))
    return Bunch(brain=brain, stimuli=stimuli, events=table, files=files)
