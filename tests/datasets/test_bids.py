"""load_bids on a small raw BIDS + fMRIPrep-style tree written here."""

import json

import pandas as pd

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


# --------------------------------------------------------------------------- issue 11: nilearn's fake dataset
@pytest.fixture
def fake_bids(tmp_path):
    data_gen = pytest.importorskip("nilearn._utils.data_gen")
    return data_gen.create_fake_bids_dataset(base_dir=tmp_path, n_sub=1, n_ses=1, tasks=["localizer"], n_runs=[2],
                                             n_voxels=4, n_vertices=40)


def test_nilearn_fake_dataset_loads(fake_bids):
    """Its events run past the 30 volumes x 1.5 s and three start together at 30 s: a warning each, not a stop."""
    with pytest.warns(UserWarning) as record:
        bunch = load_bids(fake_bids, subject="01", task="localizer")
    messages = [str(w.message) for w in record]
    assert any("4 of the 9 event(s) of run 1 start outside it: 4 at or after its end ('c2' at 60 s" in m
               for m in messages)
    assert any("occupied equally by events of different stimuli" in m for m in messages)
    assert bunch.brain.shape == (60, 64) and len(bunch.events) == 18  # the events table keeps every event
    s = bunch.brain.samples
    assert s.loc[(s["run"] == 1) & (s["volume"] == 20), "stimulus_ids"].iloc[0] == ("c0", "c1", "c2")
    with pytest.raises(ValueError, match="on_outside='warn' to drop them"):
        load_bids(fake_bids, subject="01", task="localizer", on_outside="raise")


def test_fsaverage5_gifti_derivatives(fake_bids):
    from nilearn.surface import load_surf_data

    with pytest.warns(UserWarning) as record:
        bunch = load_bids(fake_bids / "derivatives", raw_root=fake_bids, subject="01", task="localizer",
                          space="fsaverage5", standardize=False)
    assert sum("start outside it" in str(w.message) for w in record) == 2  # one per run
    assert any("occupied equally" in str(w.message) for w in record)
    brain = bunch.brain
    assert brain.space["kind"] == "surface" and brain.space["n_vertices"] == {"left": 40, "right": 40}
    assert brain.shape[0] == 60 and brain.tr == 1.5  # TR from the raw sidecar (inheritance)
    assert bunch.files["bold"].iloc[0][0].endswith("run-01_hemi-L_space-fsaverage5_bold.func.gii")
    for k, hemi in enumerate(("left", "right")):  # the same numbers as nilearn reads (vertices x volumes)
        ref = load_surf_data(bunch.files["bold"].iloc[1][k]).T
        cols = (brain.channels["hemi"] == hemi).to_numpy()
        np.testing.assert_allclose(brain.data[30:, cols], ref[:, brain.channels.loc[cols, "vertex"]], rtol=1e-6)


def test_events_override(bids):
    """events= replaces the events.tsv files (it used to collide with load_fmri's own argument)."""
    words = [pd.DataFrame({"onset": [0.5, 1.0, 4.0], "duration": [0.3, 0.3, 0.3], "word": ["a", "b", "c"]}),
             pd.DataFrame({"onset": [2.0], "duration": [0.3], "word": ["d"]})]
    bunch = load_bids(bids, subject="01", task="faces", events=words)
    assert bunch.stimuli.is_narrative and bunch.stimuli.texts == ["a", "b", "c", "d"]
    assert bunch.stimuli.table["run"].tolist() == [1, 1, 1, 2] and "stimulus_id" not in bunch.brain.samples
    assert bunch.brain.samples["n_words"].sum() == 4 and (bunch.files["events"] == "(events=)").all()
    one = pd.concat([w.assign(run=r) for w, r in zip(words, [1, 2])])
    assert load_bids(bids, subject="01", task="faces", events=one).stimuli.ids == bunch.stimuli.ids
    with pytest.raises(ValueError, match=r"events= gives 1 table\(s\) but sub-01 task-faces has 2 run\(s\) \[1, 2\]"):
        load_bids(bids, subject="01", task="faces", events=words[0])
    with pytest.raises(ValueError, match=r"events= names runs \['7'\]"):
        load_bids(bids, subject="01", task="faces", events=one.assign(run=7))


def test_malformed_sidecars_name_the_file(bids):
    func = bids / "sub-01" / "func"
    _write(func / "sub-01_task-faces_run-1_bold.json", '{"RepetitionTime": 2.0,\n "TaskName": "faces",\n}')
    with pytest.raises(ValueError, match=r"Malformed JSON in .*sub-01_task-faces_run-1_bold.json, line 3"):
        load_bids(bids, subject="01", task="faces")
    _write(func / "sub-01_task-faces_run-1_bold.json", json.dumps({"RepetitionTime": "2 s"}))
    with pytest.raises(ValueError, match=r"RepetitionTime in .*run-1_bold.json is '2 s' \(str\); BIDS requires"):
        load_bids(bids, subject="01", task="faces")
