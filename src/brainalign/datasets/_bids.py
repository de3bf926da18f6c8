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
              events: Any = None, **kwargs: Any) -> Bunch:
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
        only space there is; ``desc-preproc`` when several ``desc`` exist. A surface space
        (fMRIPrep's ``*_hemi-L_space-fsaverage5_bold.func.gii`` and ``hemi-R``) loads both
        hemispheres with :func:`~brainalign.datasets.load_gifti`.
    run : int or list of int, optional
        Which runs (default all).
    raw_root : path, optional
        The raw dataset with the events and sidecars, when ``root`` holds derivatives
        elsewhere. A ``root`` at ``<raw>/derivatives/<name>`` finds ``<raw>`` by itself.
    filters : dict, optional
        Other entities to match, e.g. ``{"acq": "fullbrain", "echo": "1"}``.
    events : path, DataFrame, list of them (one per run), or ``read_events`` output, optional
        Use these events instead of the dataset's ``events.tsv`` files (e.g. word timings
        made from a transcript): one table per selected run, in run order, or one table
        with a ``run`` column holding the run labels.
    **kwargs
        Passed to :func:`~brainalign.datasets.load_fmri` / ``load_gifti`` (``mask``,
        ``atlas``, ``standardize``, ``tr``, ``nan_policy``, ``on_outside``...).

    Returns
    -------
    Bunch with
        brain : BrainData of shape (n_volumes over all runs, n_voxels)
            The runs concatenated, with ``run`` (the BIDS run number) in the samples.
        stimuli : Stimuli or None
            From the events (see :func:`read_events`): one item per word for narrative
            events (a ``word`` column, e.g. Narratives), whose volumes then carry
            ``n_words`` and no ``stimulus_id`` (a continuous design for
            ``features.align_to``); None without events.
        events : DataFrame or None
            One row per event, with ``run`` and ``stimulus_id``.
        files : DataFrame
            Per run: ``bold``, ``events``, ``sidecars`` (merged in this order) and entities.

    Examples
    --------
    >>> bunch = load_bids("ds000105", subject="1", task="objectviewing")  # doctest: +SKIP
    """
    from ..data import Stimuli
    from ._events import read_events
    from ._fmri import load_fmri, read_json, repetition_time
    from ._gifti import load_gifti

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"BIDS root {str(root)!r} is not a folder.")
    bases = [root]
    if root.parent.name == "derivatives":
        bases.insert(0, root.parent.parent)
    if raw_root is not None:
        bases.insert(0, Path(raw_root))
    rows = []
    for path in sorted([*root.rglob("*_bold.nii*"), *root.rglob("*_bold.func.gii")]):
        parsed = parse_bids_name(path.name)
        if parsed and parsed[1] == "bold" and parsed[2] in (".nii", ".nii.gz", ".func.gii") and "sub" in parsed[0]:
            if parsed[2] == ".func.gii" and parsed[0].get("hemi") not in ("L", "R"):
                continue
            rows.append({"path": path, "ents": parsed[0], "surface": parsed[2] == ".func.gii"})
    if not rows:
        raise ValueError(f"No BOLD file (*_bold.nii[.gz] or *_hemi-L/R_*_bold.func.gii) under {str(root)!r}; "
                         "is it a BIDS dataset?")
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
    for key in sorted({k for r in kept for k in r["ents"]} - {"sub", "ses", "run", "task", "hemi"}):
        if len(_values(kept, key)) > 1:
            raise ValueError(f"The BOLD runs of {context} differ in {key}: {_values(kept, key)}; "
                             f"choose one with filters={{'{key}': ...}}.")
    kept.sort(key=lambda r: (r["ents"].get("ses", ""), int(r["ents"].get("run", "0")), r["ents"].get("hemi", "")))
    surface = {r["surface"] for r in kept}
    if len(surface) > 1:
        raise ValueError(f"The BOLD runs of {context} mix volumes and surfaces; choose one space with space=.")
    surface = surface.pop()
    hemis: dict = {}
    if surface:  # pair the hemispheres of each run
        for r in kept:
            hemis.setdefault((r["ents"].get("ses"), r["ents"].get("run")), {})[r["ents"]["hemi"]] = r["path"]
        kept = [r for r in kept if r["ents"]["hemi"] == min(hemis[(r["ents"].get("ses"), r["ents"].get("run"))])]
        sides = {tuple(sorted(h)) for h in hemis.values()}
        if len(sides) > 1:
            per_run = {f"run {k[1]}" + (f" (ses {k[0]})" if k[0] else ""): sorted(v) for k, v in hemis.items()}
            raise ValueError(f"The runs of {context} do not all have the same hemispheres: {per_run}.")
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
    records, found, trs = [], [], []
    for label, r in zip(labels, kept):
        ents = r["ents"]
        sidecars = [p for _, p in _candidates(r["path"], bases, "bold", ".json", ents)]
        meta: dict = {}
        for p in sidecars:
            meta.update(read_json(p))
        ents = {k: v for k, v in ents.items() if k != "hemi"}
        ev = _candidates(r["path"], bases, "events", ".tsv", ents)
        found.append(ev[-1][1] if ev else None)
        trs.append(repetition_time(meta, sidecars[-1] if sidecars else r["path"]))
        bold = ([str(p) for _, p in sorted(hemis[(r["ents"].get("ses"), r["ents"].get("run"))].items())]
                if surface else str(r["path"]))
        records.append({**ents, "run": label, "bold": bold, "events": str(found[-1]) if ev else None,
                        "sidecars": [str(p) for p in sidecars]})
    files = pd.DataFrame(records)
    stimuli = table = None
    if events is not None:
        stimuli, table = _override_events(events, labels, context, read_events, Stimuli)
        files["events"] = "(events=)"
    elif any(e is not None for e in found):
        missing = [lab for lab, e in zip(labels, found) if e is None]
        if missing:
            raise ValueError(f"Runs {missing} of {context} have no events.tsv but the other runs do; "
                             "add them, select runs with run=, or pass events=.")
        stimuli, table = read_events(found, run=labels)
    ev_arg = (stimuli, table) if table is not None else None
    if surface:
        pairs = [hemis[k] for k in keys]
        brain = load_gifti(left=[p["L"] for p in pairs] if "L" in pairs[0] else None,
                           right=[p["R"] for p in pairs] if "R" in pairs[0] else None, run=labels, events=ev_arg,
                           subject=subject, _sidecar_trs=trs, **kwargs)
    else:
        brain = load_fmri([r["path"] for r in kept], run=labels, events=ev_arg, subject=subject, _sidecar_trs=trs,
                          **kwargs)
    if sessions:
        brain.samples["session"] = brain.samples["run"].map(dict(zip(labels, [s for s, _ in keys])))
    return Bunch(brain=brain, stimuli=stimuli, events=table, files=files)


def _override_events(events: Any, labels: list, context: str, read_events, stimuli_cls) -> tuple:
    """(Stimuli, events table) from the ``events=`` argument of ``load_bids``."""
    if isinstance(events, tuple) and len(events) == 2 and isinstance(events[0], stimuli_cls):
        stimuli, table = events
    else:
        items = list(events) if isinstance(events, (list, tuple)) else [events]
        single_with_runs = len(items) == 1 and isinstance(items[0], pd.DataFrame) and "run" in items[0].columns
        if single_with_runs:
            stimuli, table = read_events(items[0])
        elif len(items) == len(labels):
            stimuli, table = read_events(items, run=labels)
        else:
            raise ValueError(f"events= gives {len(items)} table(s) but {context} has {len(labels)} run(s) {labels}; "
                             "give one table per run (in run order) or one DataFrame with a 'run' column.")
    unknown = sorted(map(str, set(pd.unique(table["run"])) - set(labels)))
    if unknown:
        raise ValueError(f"events= names runs {unknown} that are not loaded for {context} (runs: {labels}).")
    return stimuli, table
