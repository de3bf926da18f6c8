"""Naturalistic (story) encoding through the sweep: one design path, whole stories held out, a named
test story, ceilings from a repeated story or across subjects, controls, TRFs, per-voxel layers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainalign import BrainData
from brainalign.alignment import (STORY_COLUMNS, assign_layers, control_features, rate_features, sweep,
                                  voxel_preferences, voxel_scores)

FAST = dict(n_resamples=0, n_permutations=0, verbose=False)
ALPHAS = list(np.logspace(-1, 4, 6))


def test_continuous_sweep_recovers_generating_layer(story):
    feats, brain, truth = story
    table = sweep(feats, brain, methods=["encoding"], n_resamples=30, n_permutations=30,
                  encoding={"delays": [1, 2, 3], "alphas": ALPHAS, "test_runs": ["s3"]})
    best = assign_layers(table).set_index("roi")["best_layer"]
    assert best["early"] == "l0" and best["late"] == "l3"
    enc = table.set_index(["roi", "layer"])
    assert enc.loc[("early", "l0"), "score"] > 0.5 and enc.loc[("late", "l3"), "score"] > 0.5
    assert (enc.loc["noise", "score"].abs() < 0.1).all()
    assert (table["test_runs"] == "s3").all() and (table["n_folds"] == 1).all()
    assert (enc.loc[("early", "l0"), "p"] <= 1 / 31 + 1e-12) and enc.loc[("early", "l0"), "ci_low"] > 0.4
    # the per-voxel layer map agrees with the ROI-level answer
    prefs = voxel_preferences(table, model="toy", subject="sub-01", roi="late")
    assert (prefs["best_layer"] == "l3").mean() > 0.8
    scores = voxel_scores(table, model="toy", subject="sub-01", roi="late")
    assert np.array_equal(prefs["best_layer_index"], scores.argmax(axis=0))
    w = np.clip(scores, 0, None)
    np.testing.assert_allclose(prefs["preferred_depth"], (w * (np.arange(4) / 3)[:, None]).sum(0) / w.sum(0))


def test_the_design_is_align_to(story, monkeypatch):
    """Every design matrix of the sweep is features.align_to's, continuous and event alike; the training
    responses of whole-story folds are not copied."""
    from brainalign.encoding import RidgeCV
    from brainalign.features import align_to

    feats, brain, _ = story
    seen = []
    original = RidgeCV.fit

    def spy(self, X, y, groups=None):
        seen.append((np.array(X), y))
        return original(self, X, y, groups=groups)

    monkeypatch.setattr(RidgeCV, "fit", spy)
    opts = {"delays": [1, 2], "alphas": [1.0, 100.0], "trim": 3, "zscore": "features", "test_runs": ["s3"]}
    sweep(feats, brain, methods=["encoding"], rois=["early"], layers=["l0", "l2"], encoding=opts, **FAST)
    early = brain.select(roi="early")
    keep = align_to(feats, brain, layer="l0", trim=3).keep
    train = (brain.samples["run"] != "s3").to_numpy()[keep]
    for (got, y), layer in zip(seen, ["l0", "l2"]):
        ref = align_to(feats, brain, layer=layer, delays=[1, 2], trim=3, zscore="features").X
        np.testing.assert_array_equal(got, ref.astype(np.float32)[train])
        assert got.shape[0] == 3 * (110 - 3)  # 3 volumes trimmed per story, 3 training stories
        assert np.shares_memory(y, early.data) or y.base is not None  # a view of the kept responses


def test_event_designs_use_align_to_with_rest_as_zeros(toy_features, monkeypatch):
    import brainalign.encoding
    from brainalign.datasets import simulate_responses
    from brainalign.features import align_to

    bd = simulate_responses(toy_features, layer="l1", n_channels=10, n_repeats=2, random_state=0).brain
    rest = bd.samples["stimulus_id"].astype(object).where(np.arange(bd.n_samples) % 7 != 0, None)
    bd.samples["stimulus_id"] = rest.to_numpy()
    seen = []
    original = brainalign.encoding.cross_validate_encoding
    monkeypatch.setattr(brainalign.encoding, "cross_validate_encoding",
                        lambda X, Y, **kw: seen.append(np.array(X)) or original(X, Y, **kw))
    sweep(toy_features, bd, methods=["encoding"], layers=["l1"], encoding={"delays": [0, 1], "alphas": [1.0]}, **FAST)
    np.testing.assert_array_equal(seen[0], align_to(toy_features, bd, layer="l1", delays=[0, 1], missing="zeros").X)
    assert (seen[0][np.arange(bd.n_samples) % 7 == 0, :16] == 0).all()


def test_stories_are_held_out_whole(make_story, monkeypatch):
    from brainalign.alignment import _encoding_units

    feats, brain, _ = make_story(n_stories=4, repeat="s1")
    folds = []
    original = _encoding_units._story_folds

    def spy(X, Y, splits, groups, opts):
        folds.append(splits)
        return original(X, Y, splits, groups, opts)

    monkeypatch.setattr(_encoding_units, "_story_folds", spy)
    sweep(feats, brain, methods=["encoding"], rois=["early"], layers=["l0"], encoding={"alphas": [1.0, 10.0]}, **FAST)
    story = brain.samples["story"].to_numpy()
    assert len(folds[0]) == 4  # one fold per story; both runs of s1 together
    for train, test in folds[0]:
        assert not set(story[train]) & set(story[test])
        assert len(set(story[test])) == 1
    assert sorted(np.concatenate([te for _, te in folds[0]])) == list(range(brain.n_samples))


def test_named_test_story_and_its_errors(make_story):
    feats, brain, _ = make_story(n_stories=3, repeat="s2")
    table = sweep(feats, brain, methods=["encoding"], rois=["late"], encoding={"test_runs": ["s2"], "alphas": [1.0]},
                  **FAST)
    assert (table["n_folds"] == 1).all() and (table["test_runs"] == "s2").all()
    with pytest.raises(ValueError, match=r"the test story \['s2'\] is also in training \(run\(s\) \{'s2': \['s2'\]\}\)"):
        sweep(feats, brain, methods=["encoding"], encoding={"test_runs": ["s2b"]}, **FAST)
    with pytest.raises(ValueError, match=r"test_runs \['fables9'\] are neither runs nor stories.*runs: \['s0'"):
        sweep(feats, brain, methods=["encoding"], encoding={"test_runs": ["fables9"]}, **FAST)
    with pytest.raises(ValueError, match="leaves no run to train on"):
        sweep(feats, brain, methods=["encoding"], encoding={"test_runs": ["s0", "s1", "s2"]}, **FAST)


def test_bad_story_inputs_are_clear_errors(make_story):
    feats, brain, _ = make_story(n_stories=2, n_trs=30)
    with pytest.raises(ValueError, match=r"the delays reach 40 samples but run 's0' has only 30 samples"):
        sweep(feats, brain, methods=["encoding"], encoding={"delays": [1, 40]}, **FAST)
    one = brain.select(run="s0")
    f0 = feats.select(items=[i for i, r in zip(feats.items, feats.item_table["run"]) if r == "s0"])
    with pytest.raises(ValueError, match=r"holds out whole stories \(runs\), but the data have 1 story"):
        sweep(f0, one, methods=["encoding"], **FAST)
    # words of a story that does not fit its recording
    short = brain.select(samples=(brain.samples["onset"] < 40).to_numpy())
    with pytest.raises(ValueError, match="items lie after the end of the recording"):
        sweep(feats, short, methods=["encoding"], **FAST)
    with pytest.raises(ValueError, match="Give delays= \\(samples\\) or lags= \\(seconds\\), not both"):
        sweep(feats, brain, methods=["encoding"], encoding={"delays": [1], "lags": [2.0]}, **FAST)


def test_response_length_that_disagrees_with_the_tr_count_names_both(tmp_path):
    import json
    import shutil

    from brainalign.datasets import dataset_path
    from brainalign import run_recipe

    root = tmp_path / "ds"
    shutil.copytree(dataset_path("story_example") / "lebel2023", root)
    respdict = json.loads((root / "derivative" / "respdict.json").read_text())
    respdict["fables2"] += 3
    (root / "derivative" / "respdict.json").write_text(json.dumps(respdict))
    recipe = {"dataset": {"name": "lebel2023", "root": str(root), "subject": "UTS00"},
              "models": [{"name": "rate", "source": "rate:words"}], "methods": {"use": ["encoding"]}}
    with pytest.raises(ValueError, match=r"'fables2': the response fables2.hf5 has \d+ TRs but respdict.json says "
                                         rf"{respdict['fables2']} TRs"):
        run_recipe(recipe, out=tmp_path / "out")


def test_ceiling_from_a_repeated_story(make_story):
    feats, brain, truth = make_story(n_stories=3, repeat="s2", snr=1.0, n_voxels=30)
    table = sweep(feats, brain, methods=["encoding"], rois=["early"], layers=["l0"],
                  encoding={"alphas": ALPHAS, "delays": [1, 2, 3], "ceiling_by": "story", "test_runs": ["s2"]},
                  **FAST)
    assert table["ceiling"].iloc[0] == pytest.approx(np.sqrt(0.5), abs=0.06)  # sqrt(snr / (1 + snr))
    assert 0.6 < table["normalized_score"].iloc[0] <= 1.05
    feats1, brain1, _ = make_story(n_stories=3)
    with pytest.raises(ValueError, match="ceiling_by='story' is not a samples column"):
        sweep(feats1, brain1, methods=["encoding"], encoding={"ceiling_by": "story"}, **FAST)
    with pytest.raises(ValueError, match="no run is presented in two runs"):
        sweep(feats1, brain1, methods=["encoding"], encoding={"ceiling_by": "run"}, **FAST)


def test_inter_subject_ceiling(make_story):
    from brainalign.stats import inter_subject_ceiling

    subjects = {}
    for s in range(3):  # the same stories and signal, each subject its own noise
        feats, brain, _ = make_story(n_stories=3, random_state=0)
        rng = np.random.default_rng(100 + s)
        noisy = brain.data + rng.standard_normal(brain.data.shape).astype(np.float32)
        subjects[f"sub-{s}"] = BrainData(noisy, tr=brain.tr, samples=brain.samples, channels=brain.channels,
                                         subject=f"sub-{s}")
    table = sweep(feats, subjects, methods=["encoding"], rois=["early"], layers=["l0"],
                  encoding={"alphas": [10.0], "ceiling_by": "inter_subject"}, **FAST)
    ref = inter_subject_ceiling([np.asarray(b.select(roi="early").data, dtype=np.float64)
                                 for b in subjects.values()], average=False)
    got = table.set_index("subject")["ceiling"]
    for k, s in enumerate(subjects):
        assert got[s] == pytest.approx(ref[k].mean(), rel=1e-6)
    with pytest.raises(ValueError, match="needs at least 2 subjects"):
        sweep(feats, subjects["sub-0"], methods=["encoding"], encoding={"ceiling_by": "inter_subject"}, **FAST)


def test_controls_beside_the_model(story):
    feats, brain, _ = story
    shuffled = control_features(feats, "shuffled_words", random_state=1)
    runs = feats.item_table["run"].to_numpy()
    for run in np.unique(runs):  # permuted within each story, onsets kept
        rows = runs == run
        assert sorted(shuffled["l0"][rows, 0]) == sorted(feats["l0"][rows, 0])
    assert not np.array_equal(shuffled["l0"], feats["l0"])
    table = sweep({"toy": feats}, brain, methods=["encoding"], rois=["late"], controls=["shuffled_words"],
                  encoding={"alphas": ALPHAS, "delays": [1, 2, 3], "test_runs": ["s3"]}, **FAST)
    by = table.groupby("model")["score"].max()
    assert set(by.index) == {"toy", "toy[shuffled_words]"}
    assert by["toy"] > 0.5 and abs(by["toy[shuffled_words]"]) < 0.15
    assert (table.loc[table["model"] == "toy[shuffled_words]", "control"] == "shuffled_words").all()
    assert table.loc[table["model"] == "toy", "control"].isna().all()
    with pytest.raises(ValueError, match="needs the model as a FeatureExtractor"):
        sweep({"toy": feats}, brain, methods=["encoding"], controls=["random_weights"], **FAST)
    with pytest.raises(ValueError, match="Allowed values are 'random_weights', 'shuffled_words'"):
        sweep({"toy": feats}, brain, methods=["encoding"], controls=["scrambled"], **FAST)
    with pytest.raises(TypeError, match="needs the FeatureExtractor"):
        control_features(feats, "random_weights")


def test_random_weights_control_keeps_the_architecture():
    torch = pytest.importorskip("torch")
    from brainalign.alignment._controls import random_weights_extractor
    from brainalign.features import FeatureExtractor

    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    fx = FeatureExtractor(net, layers=["0", "2"], preprocess=lambda xs: torch.tensor(np.stack(xs), dtype=torch.float32),
                          device="cpu", pooling="none", cache_dir=False)
    rw = random_weights_extractor(fx, random_state=0)
    assert [p.shape for p in rw.model.parameters()] == [p.shape for p in net.parameters()]
    assert not torch.equal(next(rw.model.parameters()), next(net.parameters()))
    again = random_weights_extractor(fx, random_state=0)
    assert all(torch.equal(a, b) for a, b in zip(rw.model.parameters(), again.model.parameters()))  # seeded
    assert rw.layers == fx.layers and rw.pooling == fx.pooling
    # the baseline's features name their control, as the shuffled-words ones do (the table's control column)
    from brainalign import Stimuli

    xs = Stimuli.from_audio([np.full(3, v, np.float32) for v in range(4)], sfreq=3.0)
    ctrl = control_features(fx, "random_weights", stimuli=xs, random_state=0)
    assert ctrl.provenance["control"] == "random_weights" and ctrl.layer_names == ["0", "2"]


def test_rate_features_are_the_word_rate(story):
    from brainalign import Stimuli
    from brainalign.features import align_to

    feats, brain, _ = story

    rate = rate_features(Stimuli(feats.item_table.assign(modality="word", text="w")))
    binned = align_to(rate, brain, method="sum").X[:, 0]
    counts = feats.item_table.assign(tr=(feats.item_table["onset"] // brain.tr).astype(int)).groupby(["run", "tr"]).size()
    assert binned.sum() == len(feats.item_table) and binned.max() == counts.max()
    with pytest.raises(ValueError, match="needs timed items"):
        rate_features(Stimuli.from_texts(["a", "b"]))


def test_trf_through_the_sweep(make_story):
    """Continuous 'M/EEG': a TRF per layer, per-channel alphas, scores per lag window; the sweep's score is
    the held-out r of encoding.TRF fitted on the training stories."""
    from brainalign.encoding import TRF
    from brainalign.features import align_to
    from brainalign.stats import pearson_r

    feats, brain, _ = make_story(n_stories=3, n_trs=400, tr=0.1, rois=(("a", "l0"), ("b", "l3")), n_voxels=3,
                                 n_noise=1, delays=(1, 2, 3))
    eeg = BrainData(brain.data, sfreq=10.0, samples=brain.samples, channels=brain.channels, subject="sub-01")
    opts = {"tmin": 0.0, "tmax": 0.4, "lag_windows": [[0.0, 0.1], [0.2, 0.4]], "alphas": [1.0, 100.0],
            "inner_cv": 2}
    table = sweep(feats, eeg, methods=["trf"], rois=["a", "b"], trf=opts, **FAST)
    assert set(table["lag_window"]) == {"0..0.4 s", "0..0.1 s", "0.2..0.4 s"}
    full = table[table["lag_window"] == "0..0.4 s"]
    best = assign_layers(table).set_index(["roi", "lag_window"])["best_layer"]
    assert best[("a", "0..0.4 s")] == "l0" and best[("b", "0..0.4 s")] == "l3"
    # the score of one layer, by hand: TRF fitted on stories s0, s1 (alpha per channel), r on s2 ...
    a = eeg.select(roi="a")
    X = align_to(feats, a, layer="l0", method="sum").X.astype(np.float32)
    runs = a.samples["run"].to_numpy()
    r = []
    for test in ("s0", "s1", "s2"):
        tr, te = runs != test, runs == test
        trf = TRF(tmin=0.0, tmax=0.4, sfreq=10.0, alphas=[1.0, 100.0], cv=2, device="cpu").fit(X[tr], a.data[tr],
                                                                                            groups=runs[tr])
        r.append(pearson_r(a.data[te], trf.predict(X[te], groups=runs[te])))
    got = full.set_index(["roi", "layer"]).loc[("a", "l0"), "score"]
    assert got == pytest.approx(np.mean(r), abs=1e-5)
    with pytest.raises(ValueError, match="the delays reach 500 samples but run 's0' has only 400"):
        sweep(feats, eeg, methods=["trf"], trf={"tmax": 50.0}, **FAST)


def test_story_columns_are_documented_once():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    docs = (root / "docs" / "recipes.md").read_text() + (root / "README.md").read_text()
    for col in STORY_COLUMNS:
        assert f"`{col}`" in docs, col


@pytest.mark.slow
def test_dask_gives_the_same_story_table(story):
    distributed = pytest.importorskip("distributed")
    feats, brain, _ = story
    kw = dict(methods=["encoding"], rois=["early"], layers=["l0", "l3"], n_resamples=10, n_permutations=10,
              encoding={"alphas": [1.0, 100.0], "delays": [1, 2], "test_runs": ["s1"]}, verbose=False)
    local = sweep(feats, brain, **kw)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        remote = sweep(feats, brain, client=client, **kw)
    pd.testing.assert_frame_equal(local, remote)


def test_banded_variance_partitioning(story):
    """Unique and shared variance of each layer against another band, on the same folds; the layer-alone R²
    is RidgeCV's by hand."""
    from brainalign.encoding import RidgeCV
    from brainalign.features import align_to
    from brainalign.stats import r2_score

    feats, brain, _ = story
    opts = {"delays": [1, 2, 3], "alphas": ALPHAS, "test_runs": ["s3"], "others": ["toy:l0"], "n_iter": 5}
    table = sweep(feats, brain, methods=["banded"], rois=["early", "late"], layers=["l0", "l3"], banded=opts,
                  n_resamples=20, n_permutations=0, verbose=False)
    assert set(table["method"]) == {"banded"} and (table["metric"] == "r2_unique").all()
    np.testing.assert_allclose(table["unique_variance"], table["r2_joint"] - table["r2_others"], atol=1e-6)
    np.testing.assert_allclose(table["score"], table["unique_variance"])
    t = table.set_index(["roi", "layer"])
    assert t.loc[("late", "l3"), "unique_variance"] > 0.1  # l3 drives late: it adds to l0
    assert abs(t.loc[("early", "l3"), "unique_variance"]) < 0.03  # l0 drives early: l3 adds nothing
    assert t.loc[("late", "l3"), "ci_low"] > 0.05
    assert t.loc[("early", "l0"), "bands"] == "l0+toy:l0"
    # r2_layer by hand: RidgeCV on the training stories (inner folds over them), R² on s3
    early = brain.select(roi="early")
    X = align_to(feats, early, layer="l3", delays=[1, 2, 3]).X.astype(np.float32)
    runs = early.samples["run"].to_numpy()
    tr, te = runs != "s3", runs == "s3"
    model = RidgeCV(alphas=ALPHAS, cv=3, device="cpu").fit(X[tr], early.data[tr], groups=runs[tr])
    ref = r2_score(early.data[te], model.predict(X[te])).mean()
    assert t.loc[("early", "l3"), "r2_layer"] == pytest.approx(ref, abs=1e-6)


def test_banded_with_a_nuisance_model_and_its_errors(story):
    from brainalign import Stimuli

    feats, brain, _ = story
    rate = rate_features(Stimuli(feats.item_table.assign(modality="word", text="w")))
    models = {"toy": feats, "word_rate": rate}
    table = sweep(models, brain, methods=["banded", "encoding"], rois=["late"], layers={"toy": ["l3"]},
                  encoding={"delays": [1, 2], "alphas": ALPHAS, "test_runs": ["s3"]},
                  banded={"others": ["word_rate"], "n_iter": 3}, **FAST)
    banded = table[table["method"] == "banded"]
    assert list(banded["model"]) == ["toy"] and list(banded["bands"]) == ["l3+word_rate"]  # the nuisance is not scored
    assert set(table.loc[table["method"] == "encoding", "model"]) == {"toy", "word_rate"}  # ... but is by encoding
    assert banded["unique_variance"].iloc[0] > 0.2 and abs(banded["shared_variance"].iloc[0]) < 0.05
    with pytest.raises(ValueError, match="method 'banded' needs others"):
        sweep(models, brain, methods=["banded"], **FAST)
    with pytest.raises(KeyError, match="model of banded others"):
        sweep(models, brain, methods=["banded"], banded={"others": ["word_rat"]}, **FAST)
    with pytest.raises(ValueError, match=r"model 'toy' has 4 layers .*name one as 'toy:<layer>'"):
        sweep(models, brain, methods=["banded"], banded={"others": ["toy"]}, **FAST)


def test_banded_on_an_event_design_holds_out_stimuli(toy_features):
    from brainalign.datasets import simulate_responses

    bd = simulate_responses(toy_features, rois={"a": "l0", "b": "l4"}, n_channels=20, snr=2.0, n_repeats=3,
                            random_state=0).brain
    table = sweep(toy_features, bd, methods=["banded"], layers=["l0", "l4"],
                  banded={"others": ["toy:l0"], "alphas": [0.1, 1.0, 10.0, 100.0], "n_iter": 3}, **FAST)
    t = table.set_index(["roi", "layer"])
    assert t.loc[("b", "l4"), "unique_variance"] > 0.1 and abs(t.loc[("a", "l4"), "unique_variance"]) < 0.05
    assert (table["n_folds"] == 5).all()  # stimulus folds, as encoding


def test_memory_mapped_features_are_read_from_their_file(story, tmp_path):
    """The hash and the designs of memory-mapped layers read the file, never the mapping; same numbers."""
    from brainalign import Features
    from brainalign.alignment._inputs import array_hash, mapped_file, read_mapped

    feats, brain, _ = story
    arrays = {}
    for name in feats.layer_names:
        np.save(tmp_path / f"{name}.npy", np.asarray(feats[name], dtype=np.float32))
        arrays[name] = np.load(tmp_path / f"{name}.npy", mmap_mode="r")
    mapped = Features(arrays, items=feats.items, item_table=feats.item_table, provenance={"model_id": "toy"})
    plain = Features({k: np.array(v) for k, v in arrays.items()}, items=feats.items, item_table=feats.item_table,
                     provenance={"model_id": "toy"})
    assert mapped_file(np.asarray(mapped["l0"])) == (str(tmp_path / "l0.npy"), 128)
    assert mapped_file(np.asarray(mapped["l0"])[1:]) is None  # a slice is read through the mapping
    np.testing.assert_array_equal(read_mapped(mapped["l0"]), plain["l0"])
    assert array_hash(mapped["l0"]) == array_hash(plain["l0"])
    kw = dict(methods=["encoding"], rois=["late"], encoding={"delays": [1, 2], "alphas": [1.0, 100.0],
                                                              "test_runs": ["s3"]}, **FAST)
    pd.testing.assert_frame_equal(sweep(mapped, brain, **kw), sweep(plain, brain, **kw))
