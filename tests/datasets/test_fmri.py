"""load_fmri / load_gifti / read_events on small NIfTI and GIfTI files written here."""

import json
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainalign import BrainData, Stimuli
from brainalign.datasets import load_fmri, load_gifti, read_events

SHAPE = (4, 4, 3)
AFFINE = np.array([[2.0, 0, 0, -10], [0, 3.0, 0, 5], [0, 0, 4.0, 1], [0, 0, 0, 1]])


def _bold(rng, n_vol=20, tr=2.0, unit="sec", shape=SHAPE, affine=AFFINE):
    arr = (100 + rng.standard_normal(shape + (n_vol,)) * 5).astype(np.float32)
    img = nib.Nifti1Image(arr, affine)
    img.header.set_zooms(img.header.get_zooms()[:3] + (tr,))
    img.header.set_xyzt_units("mm", unit)
    return img


def _save(img, path):
    nib.save(img, path)
    return path


EVENTS = pd.DataFrame({"onset": [4.0, 20.0], "duration": [8.0, 6.0], "trial_type": ["face", "house"]})


# --------------------------------------------------------------------------- basics
def test_load_fmri_values_tables_and_space(rng, tmp_path):
    img = _bold(rng)
    mask = np.zeros(SHAPE, bool)
    mask[1:3, 0:2, 1] = True
    bd = load_fmri(_save(img, tmp_path / "bold.nii.gz"), mask=mask, standardize=False)
    assert isinstance(bd, BrainData) and bd.shape == (20, 4) and bd.tr == 2.0
    raw = np.asarray(img.dataobj)
    np.testing.assert_array_equal(bd.data, raw[mask].T)
    ch = bd.channels
    assert list(ch[["i", "j", "k"]].itertuples(index=False, name=None)) == [tuple(x) for x in np.argwhere(mask)]
    np.testing.assert_allclose(ch[["x", "y", "z"]].to_numpy(), nib.affines.apply_affine(AFFINE, np.argwhere(mask)))
    np.testing.assert_array_equal(bd.samples["volume"], np.arange(20))
    np.testing.assert_allclose(bd.samples["onset"], np.arange(20) * 2.0)
    # to_image round-trip: same grid and affine, values at the voxels, fill elsewhere
    back = bd.to_image(bd.data[3], fill=-1)
    assert back.shape == SHAPE and np.allclose(back.affine, AFFINE)
    out = np.asarray(back.dataobj)
    np.testing.assert_allclose(out[mask], raw[mask][:, 3])
    assert (out[~mask] == -1).all()


def test_zscore_and_psc_per_run(rng):
    runs = [_bold(rng, n_vol=12), _bold(rng, n_vol=15)]
    bd = load_fmri(runs, run=["a", "b"])
    assert bd.shape == (27, int(np.prod(SHAPE)))
    assert bd.samples["run"].tolist() == ["a"] * 12 + ["b"] * 15
    for label, img in zip(["a", "b"], runs):
        x = np.asarray(img.dataobj).reshape(-1, img.shape[3]).T
        ref = (x - x.mean(0)) / x.std(0)
        np.testing.assert_allclose(bd.select(run=label).data, ref, rtol=1e-4, atol=1e-4)
    psc = load_fmri(runs[0], standardize="psc")
    x = np.asarray(runs[0].dataobj).reshape(-1, 12).T
    np.testing.assert_allclose(psc.data, 100 * (x - x.mean(0)) / x.mean(0), rtol=1e-4, atol=1e-4)


def test_default_mask_drops_constant_background(rng):
    img = _bold(rng)
    arr = np.asarray(img.dataobj).copy()
    arr[0, 0, 0] = 0.0
    arr[3, 3, 2] = 7.0
    bd = load_fmri(nib.Nifti1Image(arr, AFFINE, img.header))
    assert bd.n_channels == int(np.prod(SHAPE)) - 2
    assert not ((bd.channels["i"] == 0) & (bd.channels["j"] == 0) & (bd.channels["k"] == 0)).any()


def test_atlas_labels_and_roi_dict(rng):
    img = _bold(rng)
    atlas = np.zeros(SHAPE, np.int16)
    atlas[:2] = 1
    atlas[2:, :, 0] = 2
    bd = load_fmri(img, atlas=nib.Nifti1Image(atlas, AFFINE), atlas_labels=["bg", "vt", "loc"])
    ch = bd.channels
    assert (ch["roi"] == "vt").sum() == (atlas == 1).sum() and (ch["roi"] == "loc").sum() == (atlas == 2).sum()
    assert ch["roi"].isna().sum() == (atlas == 0).sum()
    assert bd.select(roi="vt").n_channels == 24
    # dict of masks; a voxel in two masks takes the first and the overlap is reported
    m1, m2 = atlas == 1, atlas >= 1
    with pytest.warns(UserWarning, match="overlap"):
        bd2 = load_fmri(img, atlas={"a": m1, "b": m2})
    assert (bd2.channels["roi"] == "a").sum() == m1.sum()
    assert (bd2.channels["roi"] == "b").sum() == (m2 & ~m1).sum()
    bd3 = load_fmri(img, atlas=nib.Nifti1Image(atlas, AFFINE))
    assert set(bd3.channels["roi"].dropna()) == {"1", "2"}


def test_tr_from_sidecar_header_and_argument(rng, tmp_path):
    path = _save(_bold(rng, tr=2.0), tmp_path / "sub-01_task-x_bold.nii.gz")
    assert load_fmri(path).tr == 2.0  # header (sec)
    ms = _save(_bold(rng, tr=1500.0, unit="msec"), tmp_path / "ms_bold.nii.gz")
    assert load_fmri(ms).tr == 1.5
    (tmp_path / "sub-01_task-x_bold.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    assert load_fmri(path).tr == 2.0
    nounit = _bold(rng, tr=1.0, unit="unknown")
    with pytest.raises(ValueError, match="No repetition time"):
        load_fmri(nounit)
    assert load_fmri(nounit, tr=0.8).tr == 0.8
    with pytest.warns(UserWarning, match="overrides"):
        assert load_fmri(path, tr=1.0).tr == 1.0


def test_events_label_volumes_and_stimuli(rng):
    bd = load_fmri(_bold(rng), events=EVENTS)
    s = bd.samples
    # volume v covers [2v, 2v + 2): face covers 4..12 s -> volumes 2..5, house 20..26 s -> 10..12
    expected = [None] * 20
    for v in range(2, 6):
        expected[v] = "face"
    for v in range(10, 13):
        expected[v] = "house"
    assert s["trial_type"].isna().sum() == 13  # missing (NaN / None) where no event
    assert s["trial_type"].fillna("-").tolist() == [e or "-" for e in expected]
    assert s["stimulus_id"].fillna("-").tolist() == [e or "-" for e in expected]
    stimuli, table = read_events(EVENTS)
    assert isinstance(stimuli, Stimuli) and stimuli.ids == ["face", "house"]
    assert table["run"].tolist() == [0, 0]
    # read_events output can be passed on; a tuple of two DataFrames means two runs
    same = load_fmri(_bold(rng), events=(stimuli, table))
    assert same.samples["trial_type"].fillna("-").tolist() == [e or "-" for e in expected]
    two = load_fmri((_bold(rng), _bold(rng)), events=(EVENTS, EVENTS.iloc[:1]))
    assert two.select(run=1).samples["trial_type"].notna().sum() == 4


def test_events_partial_overlap_and_instantaneous(rng):
    ev = pd.DataFrame({"onset": [3.5, 9.0, 9.5], "duration": [0.0, 1.0, 3.0], "trial_type": ["a", "b", "c"]})
    idx = load_fmri(_bold(rng), events=ev).samples["trial_type"].fillna("-").tolist()
    # a at 3.5 s falls in volume 1 [2, 4); volume 4 [8, 10): b overlaps 1.0 s, c 0.5 s -> b;
    # c (9.5-12.5 s) also takes volumes 5 and 6
    assert idx[:8] == ["-", "a", "-", "-", "b", "c", "c", "-"]


def test_read_events_tsv_word_and_stim_file(tmp_path):
    p = tmp_path / "sub-01_task-x_events.tsv"
    p.write_text("onset\tduration\ttrial_type\tstim_file\n0\t2\tface\tf1.png\n4\tn/a\tface\tf2.png\n"
                 "8\t2\thouse\tf1.png\n12\t2\tfix\tn/a\n")
    stimuli, table = read_events(p)
    assert stimuli.ids == ["f1.png", "f2.png", "fix"]
    assert stimuli.table.set_index("stimulus_id").loc["f1.png", "n_events"] == 2
    assert stimuli.table.set_index("stimulus_id").loc["f1.png", "modality"] == "image"
    assert table["duration"].tolist() == [2.0, 0.0, 2.0, 2.0]
    words = [pd.DataFrame({"onset": [0.0, 0.4], "duration": [0.3, 0.3], "word": ["the", "cat"]}),
             pd.DataFrame({"onset": [0.0], "duration": [0.3], "word": ["the"]})]
    stimuli, table = read_events(words, run=[1, 2])
    assert stimuli.is_narrative and stimuli.ids == ["r1_w0", "r1_w1", "r2_w0"]
    assert stimuli.texts == ["the", "cat", "the"] and stimuli.table["run"].tolist() == [1, 1, 2]


# --------------------------------------------------------------------------- bad input
def test_bad_dimensionality(rng):
    with pytest.raises(ValueError, match="3 dimensions"):
        load_fmri(nib.Nifti1Image(np.ones(SHAPE, np.float32), AFFINE), tr=2.0)
    with pytest.raises(ValueError, match="5 dimensions"):
        load_fmri(nib.Nifti1Image(np.ones(SHAPE + (4, 2), np.float32), AFFINE), tr=2.0)


def test_mask_shape_affine_and_empty(rng):
    img = _bold(rng)
    with pytest.raises(ValueError, match=r"shape \(4, 4, 2\).*\(4, 4, 3\)"):
        load_fmri(img, mask=np.ones((4, 4, 2), bool))
    with pytest.raises(ValueError, match="different affines"):
        load_fmri(img, mask=nib.Nifti1Image(np.ones(SHAPE, np.uint8), np.eye(4)))
    with pytest.raises(ValueError, match="selects no voxel"):
        load_fmri(img, mask=np.zeros(SHAPE, bool))
    with pytest.raises(ValueError, match="ROI 'vt' has no voxel"):
        load_fmri(img, mask=np.ones(SHAPE, bool), atlas={"vt": np.zeros(SHAPE, bool)})
    with pytest.raises(ValueError, match="labels no voxel"):
        load_fmri(img, atlas=nib.Nifti1Image(np.zeros(SHAPE, np.int16), AFFINE))
    with pytest.raises(ValueError, match="runs must share one grid"):
        load_fmri([img, _bold(rng, affine=np.eye(4))])


def test_events_outside_the_run_one_rule(rng):
    """Late and negative onsets are treated alike: dropped with a warning naming them, or an error (issue 11)."""
    ev = pd.DataFrame({"onset": [-3.0, 4.0, 45.0, 50.0], "duration": [2.0, 2.0, 2.0, 2.0],
                       "trial_type": ["early", "a", "b", "c"]})
    with pytest.warns(UserWarning, match=r"3 of the 4 event\(s\) of run 0 start outside it: 1 before its start "
                                         r"\('early' at -3 s\); 2 at or after its end \('b' at 45 s, 'c' at 50 s\)\. "
                                         r"The run has 20 volumes x TR 2 s = 40 s"):
        bd = load_fmri(_bold(rng), events=ev)
    assert bd.samples["trial_type"].dropna().unique().tolist() == ["a"]
    with pytest.raises(ValueError, match=r"1 before its start.*2 at or after its end.*on_outside='warn'"):
        load_fmri(_bold(rng), events=ev, on_outside="raise")
    with pytest.raises(ValueError, match="'on_outside'.*'ignore'"):
        load_fmri(_bold(rng), events=ev, on_outside="ignore")
    cut = pd.DataFrame({"onset": [36.0], "duration": [10.0], "trial_type": ["a"]})
    with pytest.warns(UserWarning, match="end after the run"):
        load_fmri(_bold(rng), events=cut)
    with pytest.raises(ValueError, match="2 runs but 1 events"):
        load_fmri([_bold(rng), _bold(rng)], events=[EVENTS])


def test_simultaneous_events_keep_every_label(rng):
    """Events that start together: one per-volume label with a warning, all of them in stimulus_ids (issue 11)."""
    ev = pd.DataFrame({"onset": [10.0, 10.0, 10.0, 20.0], "duration": [1.0, 1.0, 1.0, 1.0],
                       "trial_type": ["c0", "c1", "c2", "c1"]})
    with pytest.warns(UserWarning, match=r"1 volume\(s\) are occupied equally by events of different stimuli "
                                         r"\(first: volume 5 of run 0: \['c0', 'c1', 'c2'\]\)"):
        bd = load_fmri(_bold(rng), events=ev)
    s = bd.samples
    assert s["stimulus_id"].iloc[5] == "c0" and s["stimulus_ids"].iloc[5] == ("c0", "c1", "c2")
    assert s["stimulus_ids"].iloc[10] == ("c1",) and s["stimulus_ids"].iloc[0] == ()
    with warnings.catch_warnings():  # a block that ends inside a volume mostly taken by it is not ambiguous
        warnings.simplefilter("error")
        blocks = load_fmri(_bold(rng), events=pd.DataFrame({"onset": [0.0, 5.5], "duration": [5.5, 5.0],
                                                            "trial_type": ["a", "b"]}))
    assert blocks.samples["stimulus_ids"].iloc[2] == ("a", "b") and blocks.samples["stimulus_id"].iloc[2] == "a"


def test_narrative_events_label_no_volume(rng):
    words = pd.DataFrame({"onset": [0.5, 0.9, 2.2, 7.0], "duration": [0.3, 0.3, 0.3, 0.3],
                          "word": ["once", "upon", "a", "time"]})
    bd = load_fmri(_bold(rng), events=words)
    assert "stimulus_id" not in bd.samples  # a continuous design: features.align_to resamples the words
    assert bd.samples["n_words"].tolist()[:4] == [2, 1, 0, 1] and bd.samples["n_words"].sum() == 4
    late = pd.concat([words, pd.DataFrame({"onset": [41.0], "duration": [0.3], "word": ["end"]})])
    with pytest.raises(ValueError, match=r"1 of the 5 event\(s\) of run 0 start outside it.*'end' at 41 s.*never dropped"):
        load_fmri(_bold(rng), events=late)


def test_implausible_tr_warns(rng, tmp_path):
    with pytest.warns(UserWarning, match=r"TR of run 0 is 2000 s \(from the NIfTI header\).*pass tr=2"):
        load_fmri(_bold(rng, tr=2000.0))
    with pytest.warns(UserWarning, match="implausibly short"):
        load_fmri(_bold(rng, tr=0.002))


def test_tr_header_disagrees_with_sidecar(rng, tmp_path):
    path = _save(_bold(rng, tr=2.0), tmp_path / "sub-01_task-x_bold.nii.gz")
    (tmp_path / "sub-01_task-x_bold.json").write_text(json.dumps({"RepetitionTime": 2.5}))
    with pytest.raises(ValueError, match=r"2\.5 s in the .*json.* but 2 s in the NIfTI header"):
        load_fmri(path)
    with pytest.raises(ValueError, match="different TRs"):
        load_fmri([_bold(rng, tr=2.0), _bold(rng, tr=1.0)])


def test_nan_policy(rng):
    img = _bold(rng)
    arr = np.asarray(img.dataobj).copy()
    arr[1, 2, 0, 5] = np.nan
    arr[2, 2, 2, 3] = np.inf
    bad = nib.Nifti1Image(arr, AFFINE, img.header)
    with pytest.raises(ValueError, match=r"NaN/inf values in 2 voxel\(s\) \(first: \(1, 2, 0\)"):
        load_fmri(bad)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bd = load_fmri(bad, nan_policy="allow", standardize="zscore")
    assert np.isnan(bd.data).sum() == 2 and not np.isinf(bd.data).any()
    np.testing.assert_allclose(np.nanmean(bd.data, axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(np.nanstd(bd.data, axis=0), 1, atol=1e-4)
    raw = load_fmri(bad, nan_policy="allow", standardize=False)
    assert np.isinf(raw.data).sum() == 1 and np.isnan(raw.data).sum() == 1


def test_constant_voxels_warn_and_are_zeroed(rng):
    img = _bold(rng)
    arr = np.asarray(img.dataobj).copy()
    arr[0, 1, 2] = 5.0
    with pytest.warns(UserWarning, match=r"1 voxel\(s\) are constant.*\(0, 1, 2\)"):
        bd = load_fmri(nib.Nifti1Image(arr, AFFINE, img.header), mask=np.ones(SHAPE, bool))
    col = ((bd.channels["i"] == 0) & (bd.channels["j"] == 1) & (bd.channels["k"] == 2)).to_numpy()
    assert (bd.data[:, col] == 0).all() and np.isfinite(bd.data).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_fmri(nib.Nifti1Image(arr, AFFINE, img.header), mask=np.ones(SHAPE, bool), standardize=False)


def test_bad_options_and_events(rng, tmp_path):
    with pytest.raises(ValueError, match="'standardize'.*'zscor'"):
        load_fmri(_bold(rng), standardize="zscor")
    with pytest.raises(ValueError, match="required BIDS column"):
        read_events(pd.DataFrame({"onset": [1.0]}))
    with pytest.raises(ValueError, match="negative durations"):
        read_events(pd.DataFrame({"onset": [1.0], "duration": [-1.0]}))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_events(tmp_path / "nope.tsv")
    with pytest.raises(TypeError, match="file path or a nibabel image"):
        load_fmri(np.zeros(SHAPE + (3,)))


# --------------------------------------------------------------------------- surfaces
def _gii(arr, timestep=None):
    meta = {"TimeStep": str(timestep)} if timestep else None
    return nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(a.astype(np.float32), meta=meta) for a in arr])


def test_load_gifti_two_hemis_roundtrip(rng, tmp_path):
    left = rng.standard_normal((20, 10))
    right = rng.standard_normal((20, 7))
    left[:, 3] = 0.0  # medial wall: constant, dropped by default
    nib.save(_gii(left, 2000), tmp_path / "sub-01_hemi-L_bold.func.gii")
    bd = load_gifti(tmp_path / "sub-01_hemi-L_bold.func.gii", _gii(right), standardize=False)
    assert bd.shape == (20, 16) and bd.tr == 2.0
    assert bd.space == {"kind": "surface", "n_vertices": {"left": 10, "right": 7}}
    assert bd.channels["hemi"].tolist() == ["left"] * 9 + ["right"] * 7
    np.testing.assert_allclose(bd.data[:, :9], np.delete(left, 3, axis=1), rtol=1e-6)
    images = bd.to_image(bd.data[4])
    got = images["left"].darrays[0].data
    np.testing.assert_allclose(np.delete(got, 3), np.delete(left[4], 3), rtol=1e-6)
    assert got[3] == 0 and images["right"].darrays[0].data.shape == (7,)
    # two runs, events, z-scoring per run
    bd2 = load_gifti([_gii(left), _gii(left * 2 + 1)], tr=2.0, events=[EVENTS, EVENTS])
    np.testing.assert_allclose(bd2.select(run=0).data, bd2.select(run=1).data, atol=1e-4)
    assert bd2.samples["trial_type"].tolist()[2] == "face"


def test_load_gifti_errors(rng, tmp_path):
    with pytest.raises(ValueError, match="at least one hemisphere"):
        load_gifti()
    with pytest.raises(ValueError, match="No repetition time"):
        load_gifti(_gii(rng.standard_normal((5, 4))))
    nib.save(_gii(rng.standard_normal((5, 4)), 2000), tmp_path / "l_bold.func.gii")
    (tmp_path / "l_bold.json").write_text(json.dumps({"RepetitionTime": 1.0}))
    with pytest.raises(ValueError, match=r"1 s in the .*but 2 s in the GIfTI TimeStep"):
        load_gifti(tmp_path / "l_bold.func.gii")
    with pytest.raises(ValueError, match="different numbers of runs"):
        load_gifti([_gii(rng.standard_normal((5, 4)))] * 2, _gii(rng.standard_normal((5, 4))), tr=1.0)
    with pytest.raises(ValueError, match="mask has shape"):
        load_gifti(_gii(rng.standard_normal((5, 4))), tr=1.0, mask={"left": np.ones(3, bool)})


def test_load_gifti_single_array_orientation(tmp_path):
    """nilearn's test-data generator writes one (n_volumes, n_vertices) array, nilearn's
    SurfaceImage one (n_vertices, n_volumes): both load as 30 volumes x 642 vertices."""
    import warnings as _w

    from nilearn._utils.data_gen import _write_fake_bold_gifti

    gen = _write_fake_bold_gifti(str(tmp_path / "sub-01_hemi-L_bold.func.gii"), 30, 642)
    bd = load_gifti(gen, tr=2.0, standardize=False)
    assert bd.shape == (30, 642)
    np.testing.assert_allclose(bd.data, nib.load(gen).darrays[0].data, rtol=1e-6)
    series = np.random.default_rng(0).standard_normal((642, 30)).astype(np.float32)
    vt = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(series)])
    np.testing.assert_allclose(load_gifti(vt, tr=2.0, standardize=False).data, series.T)
    # not a standard mesh: the longer axis is the vertices (today's files keep loading), the
    # mask's length decides when given, a square array needs it
    odd = np.random.default_rng(1).standard_normal((500, 40)).astype(np.float32)
    with _w.catch_warnings():
        _w.simplefilter("error")
        assert load_gifti(nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(odd)]), tr=2.0).shape == (40, 500)
    few = odd[:60]  # 60 "vertices" x 40 volumes, or the other way round?
    with pytest.warns(UserWarning, match=r"read axis 0 \(60\) as vertices.*give a mask"):
        assert load_gifti(nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(few)]), tr=2.0).shape == (40, 60)
    as_mask = {"left": np.ones(40, bool)}
    assert load_gifti(nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(few)]), tr=2.0,
                      mask=as_mask).shape == (60, 40)
    square = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(odd[:40])])
    with pytest.raises(ValueError, match=r"one square \(40, 40\) array: the vertex axis is ambiguous"):
        load_gifti(square, tr=2.0)
    with pytest.raises(ValueError, match=r"shape \(60, 40\), but the left hemisphere has 50 vertices"):
        load_gifti(nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(few)]), tr=2.0,
                   mask={"left": np.ones(50, bool)})


def test_unreadable_images_and_bad_tr_name_the_file(rng, tmp_path):
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"Could not read the bold file .*empty.nii.gz"):
        load_fmri(tmp_path / "empty.nii.gz", tr=2.0)
    (tmp_path / "text.nii").write_text("not an image at all")
    with pytest.raises(ValueError, match=r"Could not read the bold file .*text.nii.*truncated, or of another format"):
        load_fmri(tmp_path / "text.nii", tr=2.0)
    full = _save(_bold(rng), tmp_path / "full.nii")
    raw = full.read_bytes()
    (tmp_path / "cut.nii").write_bytes(raw[: len(raw) // 2])  # header intact, data cut
    with pytest.raises(ValueError, match=r"(?s)voxel data of the file .*cut.nii.*probably truncated"):
        load_fmri(tmp_path / "cut.nii", tr=2.0)
    with pytest.raises(TypeError, match=r"tr must be a positive number of seconds, got str '2'"):
        load_fmri(full, tr="2")
    full.with_suffix(".json").write_text(json.dumps({"RepetitionTime": "2 s"}))
    with pytest.raises(ValueError, match=r"RepetitionTime in .*full.json is '2 s'"):
        load_fmri(full)
