"""Loaders of the bundled real datasets: Kriegeskorte et al. (2008) 92 images, MNE audvis evoked.

(The Haxby 2001 fMRI loader lives in ``_haxby.py``.) Files are read from
:func:`brainalign.datasets.dataset_path`; see each folder's SOURCE.md for provenance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._utils import Bunch, check_option
from ._rdms import _mat_string
from ._registry import _citations, dataset_path

__all__ = ["load_kriegeskorte92", "load_mne_audvis"]

_SUBJECTS_HIT = ["BE", "KO", "SN", "TI"]


def _loadmat(name: str) -> dict:
    import scipy.io

    return scipy.io.loadmat(str(dataset_path("kriegeskorte92") / name))


def _square(value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[0] == arr.shape[1]:
        return arr
    from scipy.spatial.distance import squareform

    return squareform(arr.ravel(), checks=False)


def _rdms(mats: list, *, measure: str | None, rdm_descriptors: dict, patterns: dict):
    from rsatoolbox.rdm import RDMs

    return RDMs(np.stack([_square(m) for m in mats]), dissimilarity_measure=measure,
                rdm_descriptors={k: np.asarray(v) for k, v in rdm_descriptors.items()},
                pattern_descriptors={k: np.asarray(v) for k, v in patterns.items()})


def load_kriegeskorte92(*, measurement_model: str | None = "complete") -> Bunch:
    """The 92-image dataset of Kriegeskorte et al. (2008): images, categories and RDMs.

    All RDMs are 92 x 92 in the stimulus order of ``images`` and carry the pattern
    descriptors ``stimulus_id`` (``"img01"``...``"img92"``), ``category`` and ``index``.

    Parameters
    ----------
    measurement_model : str or None
        Which AlexNet layer RDMs to return: ``"complete"`` (the layers' own RDMs, default),
        one of the simulated fMRI measurement models of Kriegeskorte & Diedrichsen (2016)
        (``"smooth1sepFeat"`` ... ``"smooth5rpwavgFeat"``, ``"rpwavgFeat"``), or None for all
        63 RDMs with a ``measurement_model`` descriptor.

    Returns
    -------
    Bunch
        images : array of shape (92, 175, 175, 3), uint8
        categories : DataFrame (92 rows)
            ``stimulus_id``, ``category`` (human bodypart, human face, nonhuman bodypart,
            nonhuman face, natural inanimate, artificial inanimate), boolean ``human``,
            ``face``, ``animal``, ``natural``, and the other columns of the paper's
            ``categoryVectors`` (``animate``, ``inanim``, ``nonhumani``, ``body``,
            ``natObj``, ``artiObj``, ``rand24``, ``rand48``, ``other48``, ``monkeyape``).
        hit_rdms : RDMs (8)
            Human IT fMRI, 4 subjects x 2 sessions (descriptors ``subject``, ``session``,
            ``name``); 1 - Pearson correlation of response patterns.
        mit_rdm : RDMs (1)
            Monkey IT, 674 neurons (Kiani et al. 2007).
        model_rdms : RDMs (8)
            animacy, FaceBodyManmadeNatobj, monkeyIT, EVA, HMAX, V1, Silhouette, RADON.
        behavior_rdms : RDMs (16)
            Similarity-judgement RDMs of 16 subjects (Mur et al. 2013), descriptor ``subject``.
        alexnet_rdms : RDMs
            Layer RDMs conv1 ... prob (descriptors ``layer``, ``measurement_model``, ``name``).
        stimuli : Stimuli
            The images as a :class:`brainalign.Stimuli` table with the category columns.
        citation : list of str

    Examples
    --------
    >>> from brainalign.datasets import load_kriegeskorte92
    >>> data = load_kriegeskorte92()
    >>> data.images.shape, data.hit_rdms.n_rdm
    ((92, 175, 175, 3), 8)
    """
    from ..data import Stimuli

    sup = _loadmat("Kriegeskorte_Neuron2008_supplementalData.mat")
    stim = sup["stimuli_92objs"].ravel()
    images = np.stack([np.asarray(s["image"], dtype=np.uint8) for s in stim])
    ids = [f"img{i + 1:02d}" for i in range(len(stim))]
    categories = pd.DataFrame({
        "stimulus_id": ids,
        "category": [_mat_string(s["category"]) for s in stim],
        **{flag: [bool(np.asarray(s[flag]).ravel()[0]) for s in stim]
           for flag in ("human", "face", "animal", "natural")},
    })
    labels = [_mat_string(lab) for lab in sup["categoryLabels"].ravel()]
    vectors = np.asarray(sup["categoryVectors"]).astype(bool)
    for k, lab in enumerate(labels):
        if lab not in categories:
            categories[lab] = vectors[:, k]
    patterns = {"stimulus_id": ids, "category": categories["category"].to_numpy()}

    brain = _loadmat("92_brainRDMs.mat")["RDMs"]  # (1, 4 subjects, 2 sessions)
    mats, subj, sess, names = [], [], [], []
    for s, subject in enumerate(_SUBJECTS_HIT):
        for k in range(brain.shape[2]):
            elem = brain[0, s, k]
            mats.append(elem["RDM"])
            subj.append(subject)
            sess.append(k + 1)
            names.append(_mat_string(elem["name"]))
    hit = _rdms(mats, measure="correlation", patterns=patterns,
                rdm_descriptors={"subject": subj, "session": sess, "name": names, "roi": ["hIT"] * len(mats)})

    fig1 = {_mat_string(e["name"]): e["RDM"] for e in sup["RDMs_mIT_hIT_fig1"].ravel()}
    mit = _rdms([fig1["mIT_674neurons"]], measure="correlation", patterns=patterns,
                rdm_descriptors={"name": ["mIT_674neurons"], "roi": ["mIT"], "subject": ["monkeys"]})

    models = _loadmat("92_modelRDMs.mat")["Models"].ravel()
    model_rdms = _rdms([m["RDM"] for m in models], measure=None, patterns=patterns,
                       rdm_descriptors={"name": [_mat_string(m["name"]) for m in models]})

    behav = _loadmat("92_behavRDMs.mat")["rdms_behav_92"].ravel()
    behavior_rdms = _rdms([b["RDM"] for b in behav], measure="euclidean", patterns=patterns,
                          rdm_descriptors={"name": [_mat_string(b["name"]) for b in behav],
                                           "subject": list(range(1, len(behav) + 1))})

    alex = _loadmat("alexnet_layer_RDMs_A2020.mat")["modelRDMs"].ravel()
    layers = [_mat_string(a["reprName"]) for a in alex]
    meas = [_mat_string(a["measModelName"]) for a in alex]
    if measurement_model is not None:
        check_option("measurement_model", measurement_model, list(dict.fromkeys(meas)) + [None])
    keep = [i for i, m in enumerate(meas) if measurement_model is None or m == measurement_model]
    alexnet_rdms = _rdms([alex[i]["RDM"] for i in keep], measure=None, patterns=patterns,
                         rdm_descriptors={"layer": [layers[i] for i in keep],
                                          "measurement_model": [meas[i] for i in keep],
                                          "name": [f"alexnet {layers[i]} ({meas[i]})" for i in keep]})

    stimuli = Stimuli.from_images(list(images), ids=ids,
                                  **{c: categories[c].to_numpy() for c in categories if c != "stimulus_id"})
    return Bunch(images=images, categories=categories, hit_rdms=hit, mit_rdm=mit, model_rdms=model_rdms,
                 behavior_rdms=behavior_rdms, alexnet_rdms=alexnet_rdms, stimuli=stimuli,
                 citation=_citations("kriegeskorte92"))


def load_mne_audvis() -> Bunch:
    """MEG + EEG evoked responses to 4 auditory/visual conditions (MNE test data).

    Returns
    -------
    Bunch
        brain : BrainData of shape (4, 366, 421)
            One sample per condition (``condition``, ``nave``); 204 gradiometers (T/m),
            102 magnetometers (T) and 60 EEG channels (V); sfreq 600.615 Hz, times from
            -0.2 to 0.5 s; ``space["info"]`` keeps the MNE Info (sensor positions) for
            topomaps via ``brain.to_image``.
        evokeds : list of mne.Evoked
            The 4 evoked responses as read by MNE (SSP projectors applied).
        events : array of shape (31, 3)
            The events of the original raw excerpt (sample, 0, code); codes 1-4 are the
            conditions.
        citation : list of str

    Examples
    --------
    >>> from brainalign.datasets import load_mne_audvis
    >>> load_mne_audvis().brain.shape
    (4, 366, 421)
    """
    import mne

    from ._mne import load_mne

    folder = dataset_path("mne_audvis")
    evokeds = mne.read_evokeds(folder / "test-ave.fif.gz", verbose=False)
    events = mne.read_events(folder / "test-eve.fif", verbose=False)
    brain = load_mne(evokeds, subject="sample")
    return Bunch(brain=brain, evokeds=evokeds, events=events, citation=_citations("mne_audvis"))
