"""The bundled story-listening example: Aesop's fables, simulated fMRI and EEG with a known truth.

Written by ``datasets/make_story_example.py`` (see ``datasets/story_example/SOURCE.md``): the
same simulated subject in the ds003020 layout (read with :func:`load_lebel2023`), in a BIDS
layout (read with :func:`load_bids`) and as continuous EEG (read with :func:`load_mne`).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from .._utils import Bunch, check_option
from ..data import BrainData, Stimuli
from ._registry import _citations, dataset_path
from ._transcript import word_ids

__all__ = ["load_story_example"]

LAYOUTS = ["lebel2023", "bids", "eeg"]


def _truth(folder, kind: str) -> Bunch:
    meta = json.loads((folder / "truth.json").read_text())
    with np.load(folder / f"truth_{kind}.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return Bunch(meta=meta, **arrays)


def load_story_example(layout: str = "lebel2023", *, stories: Any = None) -> Bunch:
    """Simulated story listening (fMRI or EEG) driven by known layers of MiniLM, with its ground truth.

    Text: 47 of Aesop's fables (Townsend's 1867 translation, public domain) in 4 stories
    (``fables1`` ... ``fables4``; ``fables4`` is the test story, heard twice), about 2.4
    words per second of synthesized word timings. Responses were simulated from MiniLM-L6's
    per-word features (mean over each word's tokens, 128 tokens of left context): ROI
    ``early`` (80 voxels) from ``layer.1``, ``late`` (80) from ``layer.5``, ``noise`` (40)
    pure noise; EEG channels Fz, Cz from ``layer.1``, Pz, Oz from ``layer.5``, T7 noise.

    Parameters
    ----------
    layout : {"lebel2023", "bids", "eeg"}
        ``"lebel2023"``: the ds003020 derivative layout through :func:`load_lebel2023`
        (4 stories, trimmed responses z-scored per story, the test story averaged over its
        2 presentations). ``"bids"``: the BIDS layout through :func:`load_bids` (5 runs,
        runs 4 and 5 the two presentations of ``fables4``, the untrimmed grid, word events).
        ``"eeg"``: 3 stories of continuous EEG at 100 Hz through :func:`load_mne` (word
        annotations), one run per story.
    stories : str or list of str, optional
        ``"lebel2023"`` only: passed to :func:`load_lebel2023`.

    Returns
    -------
    Bunch with
        brain : BrainData
            ``lebel2023``: (974 TRs, 200 voxels), TR 2 s; ``bids``: (1,284 volumes, 200);
            ``eeg``: (151,809 samples, 5 channels), sfreq 100 Hz. ``samples`` has
            ``run`` and ``onset`` on the clock of ``stimuli`` (``bids`` and ``eeg`` also
            ``story`` and ``repetition``); ``channels`` has ``roi`` (fMRI) or ``name`` (EEG).
        stimuli : Stimuli
            The words (``run`` as in ``brain.samples``).
        truth : Bunch
            ``meta`` (truth.json: stories, speech rate, model, layers, ROIs, SNRs, file
            conventions) and per voxel / channel arrays in ``brain.channels`` order: ``roi``
            (fMRI), ``channel`` (EEG), ``layer`` (the generating layer, ``"none"`` for noise),
            ``snr``, ``noise_ceiling`` (expected r of the noiseless signal with one
            presentation), ``noise_ceiling_repeated`` (fMRI: with the mean of 2),
            ``noise_ceiling_empirical``, ``weights`` (n_channels, 384) and, for EEG,
            ``trf_lags`` and ``trf_kernel`` (the true TRF of feature j is
            ``weights[c, j] * trf_kernel``).
        root : pathlib.Path
            The folder of the layout (to run the real loaders on it yourself).
        citation : list of str

    Examples
    --------
    >>> from brainalign.datasets import load_story_example
    >>> ex = load_story_example("lebel2023")
    >>> ex.brain.shape, sorted(set(ex.brain.channels["roi"]))
    ((974, 200), ['early', 'late', 'noise'])
    >>> dict(zip(ex.truth.meta["fmri"]["rois"], [r["layer"] for r in ex.truth.meta["fmri"]["rois"].values()]))
    {'early': 'layer.1', 'late': 'layer.5', 'noise': None}
    """
    check_option("layout", layout, LAYOUTS)
    folder = dataset_path("story_example")
    if stories is not None and layout != "lebel2023":
        raise ValueError(f"stories= selects stories of the 'lebel2023' layout; layout={layout!r} loads all runs.")
    citation = _citations("story_example")
    if layout == "lebel2023":
        from ._lebel import load_lebel2023

        truth = _truth(folder, "fmri")
        root = folder / "lebel2023"
        data = load_lebel2023(root, truth.meta["fmri"]["lebel2023"]["subject"], stories=stories)
        data.brain.channels["roi"] = truth.roi[data.brain.channels["voxel"].to_numpy()]
        return Bunch(brain=data.brain, stimuli=data.stimuli, truth=truth, root=root, citation=citation,
                     files=data.files, convention=data.convention)
    if layout == "bids":
        from ._bids import load_bids

        truth = _truth(folder, "fmri")
        root = folder / "bids"
        rois = root / "derivatives" / "rois"
        names = pd.read_csv(rois / "sub-01_desc-rois_dseg.tsv", sep="\t")
        data = load_bids(root, subject="01", task="fables", atlas=rois / "sub-01_desc-rois_dseg.nii.gz",
                         atlas_labels=dict(zip(names["index"], names["name"])))
        runs = {int(k): v for k, v in truth.meta["fmri"]["bids"]["runs"].items()}
        _story_columns(data.brain, runs)
        return Bunch(brain=data.brain, stimuli=data.stimuli, truth=truth, root=root, citation=citation,
                     events=data.events, files=data.files)
    from ._mne import load_mne

    truth = _truth(folder, "eeg")
    root = folder / "eeg"
    brains, tables = [], []
    for k, story in enumerate(truth.meta["eeg"]["stories"]):
        part = load_mne(root / f"sub-01_task-fables_run-{k + 1}_eeg.fif", words="annotations")
        part.brain.samples["run"] = story
        brains.append(part.brain)
        tables.append(part.stimuli.table.assign(run=story))
    brain = BrainData.concatenate(brains)
    _story_columns(brain, None)
    table = pd.concat(tables, ignore_index=True)
    table["stimulus_id"] = word_ids(table["run"])
    return Bunch(brain=brain, stimuli=Stimuli(table), truth=truth, root=root, citation=citation)


def _story_columns(brain: BrainData, runs: dict | None) -> None:
    """``story`` and ``repetition`` (0, 1 ... for the presentations of a story) in the samples."""
    run = brain.samples["run"]
    story = run.map(runs) if runs is not None else run
    first = pd.Series(range(len(run)))
    order = pd.DataFrame({"story": story, "run": run, "pos": first}).drop_duplicates("run")
    rep = {r: k for _, g in order.groupby("story", sort=False) for k, r in enumerate(g["run"])}
    brain.samples["story"] = story.to_numpy()
    brain.samples["repetition"] = run.map(rep).to_numpy()
