"""Loaders for recordings and stimuli, the bundled real datasets, and the response simulator.

Public names load lazily from private modules (nibabel / nilearn / mne are imported only
when a loader that needs them is first used).
"""

from __future__ import annotations

import importlib

_WHERE = {
    # fMRI volumes and surfaces, BIDS events (brainalign.datasets._fmri, _events, _bids)
    "load_fmri": "_fmri",
    "load_gifti": "_gifti",
    "read_events": "_events",
    "load_bids": "_bids",
    # narratives: word / phone timings, story datasets
    "load_transcript": "_transcript",
    "load_textgrid": "_transcript",
    "NON_WORDS": "_transcript",
    "load_lebel2023": "_lebel",
    # M/EEG and RDM files
    "load_mne": "_mne",
    "load_rdms": "_rdms",
    "save_rdms": "_rdms",
    # bundled real datasets
    "load_haxby2001": "_haxby",
    "load_kriegeskorte92": "_bundled",
    "load_mne_audvis": "_bundled",
    "load_story_example": "_story_example",
    "list_datasets": "_registry",
    "dataset_path": "_registry",
    # simulation with a known ground truth
    "simulate_responses": "_simulate",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        module = importlib.import_module(f"{__name__}.{_WHERE[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'brainalign.datasets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
