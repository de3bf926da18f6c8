"""Bundled real datasets: manifest integrity, registry, and the two loaders of this module."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.io
from scipy.spatial.distance import squareform

from brainalign.datasets import (
    dataset_path,
    list_datasets,
    load_kriegeskorte92,
    load_mne_audvis,
)
from brainalign.datasets._registry import _manifest, _verify


# --------------------------------------------------------------------------- registry
@pytest.mark.parametrize("name", ["kriegeskorte92", "haxby2001", "mne_audvis", "story_example"])
def test_bundled_files_match_manifest(name):
    assert _verify(name) == []


def test_manifest_lists_every_bundled_file():
    root = dataset_path()
    listed = {f"{d['folder']}/{f['path']}" for d in _manifest()["datasets"] for f in d["files"]}
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*")
               if p.is_file() and p.name != "MANIFEST.json" and p.parent != root}  # top-level scripts write data
    assert listed == on_disk


def test_verify_detects_a_changed_file(tmp_path, monkeypatch):
    import shutil

    src = dataset_path()
    shutil.copy(src / "MANIFEST.json", tmp_path / "MANIFEST.json")
    shutil.copytree(src / "mne_testdata_evoked_audvis", tmp_path / "mne_testdata_evoked_audvis")
    (tmp_path / "mne_testdata_evoked_audvis" / "test.ave").write_text("changed")
    monkeypatch.setenv("BRAINALIGN_DATA", str(tmp_path))
    assert dataset_path() == tmp_path
    problems = _verify("mne_audvis")
    assert len(problems) == 1 and "test.ave" in problems[0]


def test_list_datasets_table():
    table = list_datasets()
    assert list(table.columns) == ["name", "loader", "description", "n_files", "size_mb", "citation"]
    assert set(table["name"]) == {"kriegeskorte92", "haxby2001", "mne_audvis", "story_example"}
    row = table.set_index("name").loc["mne_audvis"]
    folder = dataset_path("mne_audvis")
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert row["n_files"] == 4
    assert row["size_mb"] == pytest.approx(size / 1e6, abs=0.01)
    assert "Gramfort" in row["citation"]
    import brainalign.datasets as ds

    for loader in table["loader"]:  # every loader named in the manifest is public
        assert loader in ds.__all__


def test_dataset_path_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="Close matches: \\['kriegeskorte92'\\]"):
        dataset_path("kriegeskorte")
    monkeypatch.setenv("BRAINALIGN_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="BRAINALIGN_DATA"):
        dataset_path()


def test_dataset_path_by_name_and_folder():
    assert dataset_path("kriegeskorte92") == dataset_path() / "kriegeskorte2008_92images"
    assert dataset_path("kriegeskorte2008_92images") == dataset_path("kriegeskorte92")


# --------------------------------------------------------------------------- 92 images
@pytest.fixture(scope="module")
def k92():
    return load_kriegeskorte92()


def _check_rdms(rdms, n_rdm):
    mats = rdms.get_matrices()
    assert mats.shape == (n_rdm, 92, 92)
    assert np.isfinite(mats).all()
    np.testing.assert_allclose(mats, mats.transpose(0, 2, 1), atol=1e-6)
    np.testing.assert_array_equal(np.diagonal(mats, axis1=1, axis2=2), 0)
    assert list(rdms.pattern_descriptors["stimulus_id"][:2]) == ["img01", "img02"]


def test_k92_shapes_and_rdms(k92):
    assert k92.images.shape == (92, 175, 175, 3) and k92.images.dtype == np.uint8
    _check_rdms(k92.hit_rdms, 8)
    _check_rdms(k92.mit_rdm, 1)
    _check_rdms(k92.model_rdms, 8)
    _check_rdms(k92.behavior_rdms, 16)
    _check_rdms(k92.alexnet_rdms, 9)
    assert list(k92.hit_rdms.rdm_descriptors["subject"]) == ["BE", "BE", "KO", "KO", "SN", "SN", "TI", "TI"]
    assert list(k92.hit_rdms.rdm_descriptors["session"]) == [1, 2] * 4
    assert k92.hit_rdms.dissimilarity_measure == "correlation"
    assert list(k92.model_rdms.rdm_descriptors["name"]) == [
        "animacy", "FaceBodyManmadeNatobj", "monkeyIT", "EVA", "HMAX", "V1", "Silhouette", "RADON"]
    assert list(k92.alexnet_rdms.rdm_descriptors["layer"]) == [
        "conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8", "prob"]


def test_k92_hit_mean_equals_supplemental_rdm(k92):
    sup = scipy.io.loadmat(dataset_path("kriegeskorte92") / "Kriegeskorte_Neuron2008_supplementalData.mat")
    fig1 = {str(e["name"][0]): e["RDM"] for e in sup["RDMs_mIT_hIT_fig1"][0]}
    ref = squareform(fig1["hITvisStim_316vx"].ravel())
    mean = k92.hit_rdms.get_matrices().mean(axis=0)
    iu = np.triu_indices(92, 1)
    assert np.corrcoef(mean[iu], ref[iu])[0, 1] > 0.9999
    np.testing.assert_allclose(mean, ref, atol=1e-5)
    np.testing.assert_allclose(k92.mit_rdm.get_matrices()[0], squareform(fig1["mIT_674neurons"].ravel()))


def test_k92_categories(k92):
    cats = k92.categories
    assert len(cats) == 92 and cats["stimulus_id"].is_unique
    counts = cats["category"].value_counts()
    expected = {"human bodypart": 12, "human face": 12, "nonhuman bodypart": 12, "nonhuman face": 12,
                "natural inanimate": 23, "artificial inanimate": 21}
    assert counts.to_dict() == expected
    assert cats["human"].sum() == 24 and cats["face"].sum() == 24
    assert cats["animal"].sum() == 48 and cats["natural"].sum() == 71
    # categoryVectors columns agree with the flags they duplicate
    np.testing.assert_array_equal(cats["animate"], cats["animal"])
    np.testing.assert_array_equal(cats["body"], cats["category"].str.endswith("bodypart"))
    stim = k92.stimuli
    assert len(stim) == 92 and stim.modality == "image" and stim.ids == list(cats["stimulus_id"])
    np.testing.assert_array_equal(stim.table["image"].iloc[5], k92.images[5])
    assert (stim.table["category"] == cats["category"]).all()


def test_k92_measurement_models():
    all_rdms = load_kriegeskorte92(measurement_model=None).alexnet_rdms
    assert all_rdms.n_rdm == 63
    mm = pd.Series(all_rdms.rdm_descriptors["measurement_model"])
    assert (mm == "complete").sum() == 9
    sub = load_kriegeskorte92(measurement_model="rpwavgFeat").alexnet_rdms
    assert sub.n_rdm == 4 and set(sub.rdm_descriptors["measurement_model"]) == {"rpwavgFeat"}
    with pytest.raises(ValueError, match="measurement_model.*'complete'"):
        load_kriegeskorte92(measurement_model="completed")


def test_k92_early_alexnet_layer_tracks_v1_model(k92):
    """Stimulus order sanity check across files: conv1 resembles the V1 model RDM."""
    from scipy.stats import spearmanr

    iu = np.triu_indices(92, 1)
    v1 = k92.model_rdms.subset("name", "V1").get_matrices()[0][iu]
    conv1 = k92.alexnet_rdms.subset("layer", "conv1").get_matrices()[0][iu]
    rng = np.random.default_rng(0)
    perm = rng.permutation(92)
    conv1_shuffled = k92.alexnet_rdms.subset("layer", "conv1").get_matrices()[0][np.ix_(perm, perm)][iu]
    assert spearmanr(conv1, v1)[0] > 0.4
    assert abs(spearmanr(conv1_shuffled, v1)[0]) < 0.15


# --------------------------------------------------------------------------- MNE audvis
def test_mne_audvis():
    import mne

    data = load_mne_audvis()
    brain = data.brain
    assert brain.shape == (4, 366, 421)
    assert brain.sfreq == pytest.approx(600.615, abs=1e-3)
    assert list(brain.samples["condition"]) == ["Left Auditory", "Right Auditory", "Left visual", "Right visual"]
    assert list(brain.samples["nave"]) == [3, 6, 6, 6]
    assert brain.channels["ch_type"].value_counts().to_dict() == {"grad": 204, "mag": 102, "eeg": 60}
    assert data.events.shape == (31, 3)
    ev = data.evokeds[2]
    ref = ev.copy().pick(["meg", "eeg"]).data
    np.testing.assert_array_equal(brain.data[2], ref)
    np.testing.assert_allclose(brain.times, ev.times)
    topo = brain.to_image(brain.data[0][:, 200])
    assert isinstance(topo, mne.EvokedArray) and topo.info["ch_names"] == list(brain.channels["name"])
