"""load_haxby2001 against PyMVPA's own concatenated files of the bundled subset."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainalign import BrainData, Stimuli
from brainalign.datasets import dataset_path, load_fmri, load_haxby2001

CATEGORIES = {"face", "house", "cat", "shoe", "scissors", "bottle", "chair", "scrambledpix"}


@pytest.fixture(scope="module")
def raw():
    h = load_haxby2001(standardize=False)
    return h, dataset_path("haxby2001")


def test_shapes_labels_equal_attributes(raw):
    h, root = raw
    assert isinstance(h.brain, BrainData) and isinstance(h.stimuli, Stimuli)
    assert h.brain.shape == (1452, 530) and h.brain.tr == 2.5
    attrs = pd.read_csv(root / "attributes_literal.txt", sep=" ", header=None, names=["label", "run"])
    np.testing.assert_array_equal(h.brain.samples["category"].to_numpy(), attrs["label"].to_numpy())
    np.testing.assert_array_equal(h.brain.samples["run"].to_numpy(), attrs["run"].to_numpy())
    assert (h.brain.samples["category"] == "rest").sum() == 588
    assert set(h.stimuli.ids) == CATEGORIES and len(h.events) == 96
    assert h.events.groupby("run").size().tolist() == [8] * 12


def test_data_equal_concatenated_bold(raw):
    h, root = raw
    bold = np.asanyarray(nib.load(root / "bold.nii.gz").dataobj)
    mask = np.asanyarray(nib.load(root / "mask.nii.gz").dataobj).astype(bool)
    np.testing.assert_array_equal(h.brain.data, bold[mask].T.astype(np.float32))
    # the default z-scoring is per run
    z = load_haxby2001().brain
    for r in (0, 7):
        x = bold[mask].T[h.brain.samples["run"].to_numpy() == r].astype(float)
        np.testing.assert_allclose(z.select(run=r).data, (x - x.mean(0)) / x.std(0), atol=1e-4)
    # and back to the image grid
    img = h.brain.to_image(h.brain.data[10])
    np.testing.assert_array_equal(np.asarray(img.dataobj)[mask], bold[mask][:, 10])


def test_category_blocks_are_decodable(raw):
    """Real-data sanity: volumes of the same category are more alike than of different ones."""
    h, _ = raw
    z = load_haxby2001().brain.select(category=lambda c: c != "rest")
    cat = z.samples["category"].to_numpy()
    train, test = z.samples["run"].to_numpy() % 2 == 0, z.samples["run"].to_numpy() % 2 == 1
    cents = {c: z.data[train & (cat == c)].mean(0) for c in CATEGORIES}
    names = sorted(cents)
    centroids = np.stack([cents[c] for c in names])
    pred = np.array(names)[np.argmax(z.data[test] @ centroids.T, axis=1)]
    assert (pred == cat[test]).mean() > 2 / 8  # chance is 1/8


def test_25mm_resolution_with_vt_roi():
    h = load_haxby2001(resolution="25mm")
    assert h.brain.shape == (1452, 129)
    assert (h.brain.channels["roi"] == "vt").sum() == 1
    assert h.brain.channels["hoc"].dtype.kind == "i" and (h.brain.channels["hoc"] > 0).sum() > 0
    with pytest.raises(ValueError, match="'resolution'"):
        load_haxby2001(resolution="2mm")


def test_data_root_override(monkeypatch, tmp_path):
    monkeypatch.setenv("BRAINALIGN_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="BRAINALIGN_DATA"):
        load_haxby2001()


def test_load_fmri_on_one_real_run():
    root = dataset_path("haxby2001") / "haxby2001" / "sub001" / "BOLD" / "task001_run003"
    bd = load_fmri(root / "bold_1slice.nii.gz", mask=dataset_path("haxby2001") / "mask.nii.gz",
                   events=root / "bold_events.tsv", run=2, standardize=False)
    assert bd.shape == (121, 530) and bd.tr == 2.5
    assert bd.samples["trial_type"].notna().sum() == 72  # 8 blocks x 9 volumes
