"""load_bids on a small raw BIDS + fMRIPrep-style tree written here."""

import json

import nibabel as nib
import numpy as np
import pytest

from brainalign.datasets import load_bids
from brainalign.datasets._bids import parse_bids_name

SHAPE = (3, 3, 2)
EVENTS = "onset\tduration\ttrial_type\n{a}\t4\tface\n{b}\t4\thouse\n"


def _img(rng, n_vol, unit="unknown", tr=1.0, offset=0.0):
    arr = (100 + offset + rng.standard_normal(SHAPE + (n_vol,))).astype(np.float32)
    img = nib.Nifti1Image(arr, np.eye(4))
    img.header.set_zooms((1.0, 1.0, 1.0, tr))
    img.header.set_xyzt_units("mm", unit)
    return img


def _write(path, img_or_text):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(img_or_text, str):
        path.write_text(img_or_text)
    else:
        nib.save(img_or_text, path)


@pytest.fixture
def bids(tmp_path, rng):
    root = tmp_path / "ds"
    _write(root / "dataset_description.json", json.dumps({"Name": "toy", "BIDSVersion": "1.8.0"}))
    _write(root / "task-faces_bold.json", json.dumps({"RepetitionTime": 2.0, "TaskName": "faces"}))
    _write(root / "task-rest_bold.json", json.dumps({"RepetitionTime": 2.0}))
    func = root / "sub-01" / "func"
    for r, n in ((1, 12), (2, 10)):
        _write(func / f"sub-01_task-faces_run-{r}_bold.nii.gz", _img(rng, n, offset=r))
        _write(func / f"sub-01_task-faces_run-{r}_events.tsv", EVENTS.format(a=2 * r, b=10 + r))
    _write(func / "sub-01_task-rest_bold.nii.gz", _img(rng, 8))
    for ses in ("a", "b"):
        d = root / "sub-02" / f"ses-{ses}" / "func"
        _write(d / f"sub-02_ses-{ses}_task-faces_run-1_bold.nii.gz", _img(rng, 12))
    _write(root / "sub-02" / "sub-02_task-faces_events.tsv", EVENTS.format(a=0, b=12))  # inherited
    deriv = root / "derivatives" / "fmriprep" / "sub-01" / "func"
    for r, n in ((1, 12), (2, 10)):
        for desc in ("preproc", "smooth"):
            stem = f"sub-01_task-faces_run-{r}_space-MNI_desc-{desc}_bold"
            _write(deriv / f"{stem}.nii.gz", _img(rng, n, unit="sec", tr=2.0))
            _write(deriv / f"{stem}.json", json.dumps({"RepetitionTime": 2.0}))
        _write(deriv / f"sub-01_task-faces_run-{r}_space-T1w_desc-preproc_bold.nii.gz", _img(rng, n, unit="sec", tr=2.0))
    return root


def test_parse_bids_name():
    assert parse_bids_name("sub-01_ses-2_task-a_run-03_space-MNI_desc-preproc_bold.nii.gz") == (
        {"sub": "01", "ses": "2", "task": "a", "run": "03", "space": "MNI", "desc": "preproc"}, "bold", ".nii.gz")
    assert parse_bids_name("dataset_description.json") is None
    assert parse_bids_name("sub-01_task_bold.nii") is None


def test_raw_runs_events_and_inherited_tr(bids):
    out = load_bids(bids, subject="01", task="faces", standardize=False)
    brain = out.brain
    assert brain.shape == (22, 18) and brain.tr == 2.0  # TR only in the top-level task-faces_bold.json
    assert brain.samples["run"].tolist() == [1] * 12 + [2] * 10
    raw = np.asarray(nib.load(bids / "sub-01/func/sub-01_task-faces_run-2_bold.nii.gz").dataobj)
    np.testing.assert_allclose(brain.select(run=2).data, raw.reshape(-1, 10).T)
    assert out.stimuli.ids == ["face", "house"] and len(out.events) == 4
    assert out.events["run"].tolist() == [1, 1, 2, 2]
    # run 2: face 4-8 s -> volumes 2, 3; house 12-16 s -> volumes 6, 7
    run2 = brain.select(run=2).samples["trial_type"].fillna("-").tolist()
    assert run2[:9] == ["-", "-", "face", "face", "-", "-", "house", "house", "-"]
    assert out.files["sidecars"][0][0].endswith("task-faces_bold.json")
    assert list(out.files["run"]) == [1, 2] and out.files["events"].notna().all()
    one = load_bids(bids, subject="sub-01", task="task-faces", run=2)
    assert one.brain.shape == (10, 18) and one.brain.samples["run"].unique().tolist() == [2]


def test_no_events_task(bids):
    out = load_bids(bids, subject="01", task="rest")
    assert out.brain.shape == (8, 18) and out.stimuli is None and out.events is None
    assert out.brain.samples["run"].unique().tolist() == [0]


def test_sessions_and_inherited_events(bids):
    out = load_bids(bids, subject="02", task="faces")
    assert out.brain.samples["run"].unique().tolist() == ["a_1", "b_1"]
    assert out.brain.samples["session"].unique().tolist() == ["a", "b"]
    assert out.files["events"].str.endswith("sub-02_task-faces_events.tsv").all()
    assert load_bids(bids, subject="02", task="faces", session="ses-b").brain.shape[0] == 12


def test_derivatives_space_desc_and_raw_events(bids):
    out = load_bids(bids, subject="01", task="faces", space="MNI")
    assert "desc-preproc" in out.files["bold"][0] and out.stimuli.ids == ["face", "house"]
    assert out.files["events"][0].endswith("sub-01/func/sub-01_task-faces_run-1_events.tsv")
    smooth = load_bids(bids, subject="01", task="faces", space="MNI", desc="smooth")
    assert "desc-smooth" in smooth.files["bold"][1]
    # a derivatives folder given directly: raw events found in <raw> = root/../..
    deriv = load_bids(bids / "derivatives" / "fmriprep", subject="01", task="faces", space="T1w")
    assert deriv.brain.shape == (22, 18) and len(deriv.events) == 4
    with pytest.raises(ValueError, match=r"Several space values.*\['MNI', 'T1w'\].*space="):
        load_bids(bids / "derivatives" / "fmriprep", subject="01", task="faces")


def test_query_matching_nothing_says_what_exists(bids):
    with pytest.raises(ValueError, match=r"subject '03'.*Subjects: \['01', '02'\]"):
        load_bids(bids, subject="03", task="faces")
    with pytest.raises(ValueError, match=r"task 'nback'.*Tasks of this subject: \['faces', 'rest'\]"):
        load_bids(bids, subject="01", task="nback")
    with pytest.raises(ValueError, match=r"space-fsaverage.*\['\(none\)', 'MNI', 'T1w'\]"):
        load_bids(bids, subject="01", task="faces", space="fsaverage")
    with pytest.raises(ValueError, match=r"Runs \[3\].*available runs: \[1, 2\]"):
        load_bids(bids, subject="01", task="faces", run=3)
    with pytest.raises(ValueError, match=r"ses-c.*\['a', 'b'\]"):
        load_bids(bids, subject="02", task="faces", session="c")
    with pytest.raises(ValueError, match="No BOLD file"):
        load_bids(_empty(bids), subject="01", task="faces")


def _empty(bids):
    path = bids.parent / "empty"
    path.mkdir()
    return path


def test_sidecar_header_disagreement(bids, rng):
    func = bids / "sub-01" / "func"
    _write(func / "sub-01_task-faces_run-1_bold.nii.gz", _img(rng, 12, unit="sec", tr=2.5))
    with pytest.raises(ValueError, match=r"RepetitionTime = 2 s in the BIDS JSON sidecars but 2\.5 s"):
        load_bids(bids, subject="01", task="faces")
    # a more specific sidecar overrides the top-level one
    _write(func / "sub-01_task-faces_run-1_bold.json", json.dumps({"RepetitionTime": 2.5}))
    with pytest.raises(ValueError, match="different TRs"):
        load_bids(bids, subject="01", task="faces")
    assert load_bids(bids, subject="01", task="faces", run=1).brain.tr == 2.5


def test_malformed_sidecars_name_the_file(bids):
    func = bids / "sub-01" / "func"
    _write(func / "sub-01_task-faces_run-1_bold.json", '{"RepetitionTime": 2.0,\n "TaskName": "faces",\n}')
    with pytest.raises(ValueError, match=r"Malformed JSON in .*sub-01_task-faces_run-1_bold.json, line 3"):
        load_bids(bids, subject="01", task="faces")
    _write(func / "sub-01_task-faces_run-1_bold.json", json.dumps({"RepetitionTime": "2 s"}))
    with pytest.raises(ValueError, match=r"RepetitionTime in .*run-1_bold.json is '2 s' \(str\); BIDS requires"):
        load_bids(bids, subject="01", task="faces")
