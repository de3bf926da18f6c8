"""simulate_responses: known truth recovered, ceilings match their definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainalign import Bunch, Features
from brainalign.datasets import simulate_responses


def _pearson_cols(a, b):
    a = a - a.mean(0)
    b = b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a**2).sum(0) * (b**2).sum(0))


@pytest.fixture
def X():
    return np.random.default_rng(0).standard_normal((120, 8))


# --------------------------------------------------------------------------- return type
def test_returns_a_bunch_like_every_loader(X):
    sim = simulate_responses(X, n_channels=4, random_state=0)
    assert isinstance(sim, Bunch) and list(sim)[0] == "brain"
    assert sim.brain.shape == (240, 4) and sim.weights.shape == (8, 4)
    assert {"signal", "snr", "noise_ceiling", "item_responses", "kernel"} <= set(sim)


# --------------------------------------------------------------------------- static
def test_static_ols_recovers_weights(X):
    sim = simulate_responses(X, n_channels=30, snr=200.0, n_repeats=3, random_state=1)
    brain, truth = sim.brain, sim
    assert brain.shape == (360, 30)
    assert list(brain.samples.columns) == ["stimulus_id", "repetition", "run"]
    assert brain.samples["repetition"].tolist() == [0] * 120 + [1] * 120 + [2] * 120
    assert truth.weights.shape == (8, 30) and truth.layer == "features"
    design = np.tile(truth.features, (3, 1))
    coef, *_ = np.linalg.lstsq(design, brain.data, rcond=None)
    np.testing.assert_allclose(coef, truth.weights, atol=0.03)
    np.testing.assert_allclose(truth.features @ truth.weights, truth.item_responses)
    np.testing.assert_allclose(truth.item_responses.std(0), 1.0)


def test_static_ceilings_match_empirical_correlations(X):
    snr = np.linspace(0.2, 3.0, 400)
    big = np.random.default_rng(2).standard_normal((600, 8))
    sim = simulate_responses(big, n_channels=400, snr=snr, n_repeats=2, random_state=3)
    brain, truth = sim.brain, sim
    np.testing.assert_allclose(truth.snr, snr)
    np.testing.assert_allclose(truth.noise_ceiling, np.sqrt(snr / (1 + snr)))
    first, second = brain.data[:600], brain.data[600:]
    split_half = _pearson_cols(first, second)  # expected: ceiling ** 2
    np.testing.assert_allclose(split_half, truth.noise_ceiling**2, atol=0.13)
    assert abs(np.mean(split_half - truth.noise_ceiling**2)) < 0.01
    r_single = _pearson_cols(truth.item_responses, first)
    assert abs(np.mean(r_single - truth.noise_ceiling)) < 0.01
    r_mean = _pearson_cols(truth.item_responses, (first + second) / 2)
    assert abs(np.mean(r_mean - truth.noise_ceiling_mean)) < 0.01
    np.testing.assert_allclose(truth.noise_ceiling_empirical, _pearson_cols(truth.signal, brain.data))


def test_snr_range_and_seed(X):
    ta = simulate_responses(X, n_channels=50, snr=(0.5, 2.0), random_state=7)
    tb = simulate_responses(X, n_channels=50, snr=(0.5, 2.0), random_state=7)
    a, b = ta.brain, tb.brain
    c = simulate_responses(X, n_channels=50, snr=(0.5, 2.0), random_state=8).brain
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(ta.snr, tb.snr)
    assert not np.allclose(a.data, c.data)
    assert ta.snr.min() >= 0.5 and ta.snr.max() <= 2.0 and ta.snr.std() > 0.1


# --------------------------------------------------------------------------- fmri
def test_fmri_impulse_peaks_five_seconds_later():
    feats = Features({"l": np.array([[1.0], [-1.0]])}, items=["a", "b"],
                     item_table=pd.DataFrame({"onset": [4.0, 60.0], "duration": [0.0, 0.0]}))
    sim = simulate_responses(feats, n_channels=3, snr=1e6, kind="fmri", tr=0.5, n_repeats=1, random_state=0)
    brain, truth = sim.brain, sim
    assert brain.tr == 0.5
    series = brain.data[:, 0] * np.sign(truth.item_responses[0, 0])
    onset = brain.samples["onset"].to_numpy()
    first = onset < 40
    assert onset[first][np.argmax(series[first])] == pytest.approx(4.0 + 5.0, abs=0.5)
    assert onset[~first][np.argmin(series[~first])] == pytest.approx(60.0 + 5.0, abs=0.5)
    np.testing.assert_allclose(truth.design[0] @ truth.item_responses, truth.signal)


def test_fmri_random_order_runs(X):
    sim = simulate_responses(X, n_channels=20, snr=1.0, kind="fmri", tr=2.0, n_repeats=3, random_state=4)
    brain, truth = sim.brain, sim
    runs = brain.split("run")
    assert list(runs) == [0, 1, 2]
    n_vols = int(np.ceil((120 * 2.0 + 32.0) / 2.0))
    assert all(r.shape == (n_vols, 20) for r in runs.values())
    events = truth.events
    assert len(events) == 360 and set(events["stimulus_id"]) == {f"item{i}" for i in range(120)}
    orders = [events.loc[events["run"] == r, "item"].tolist() for r in range(3)]
    assert orders[0] != orders[1] and sorted(orders[0]) == list(range(120))
    start = 0
    for design in truth.design:
        np.testing.assert_allclose(design @ truth.item_responses, truth.signal[start:start + len(design)])
        start += len(design)
    # SNR is the variance ratio over the time series
    noise = brain.data - truth.signal
    np.testing.assert_allclose(truth.signal.var(0) / noise.var(0), 1.0, rtol=0.25)
    assert abs(np.mean(truth.noise_ceiling_empirical - truth.noise_ceiling)) < 0.03


def test_fmri_story_onsets_repeat_identically():
    rng = np.random.default_rng(5)
    onsets = np.cumsum(rng.uniform(0.2, 0.5, 300))
    feats = Features({"emb": rng.standard_normal((300, 6))}, items=[f"w{i}" for i in range(300)],
                     item_table=pd.DataFrame({"onset": onsets, "run": [0] * 150 + [1] * 150}))
    sim = simulate_responses(feats, n_channels=10, snr=0.5, kind="fmri", tr=1.5, n_repeats=2, random_state=0)
    brain, truth = sim.brain, sim
    assert brain.samples["run"].nunique() == 4  # 2 story runs x 2 repetitions
    ev = truth.events
    np.testing.assert_allclose(ev.loc[ev["run"] == 0, "onset"], ev.loc[ev["run"] == 2, "onset"])
    d = brain.split("run")
    np.testing.assert_allclose(truth.design[0], truth.design[2])
    # averaging the two presentations of a story run reaches the "mean" ceiling
    sig = truth.signal[: len(d[0])]
    r_mean = _pearson_cols(sig, (d[0].data + d[2].data) / 2)
    assert abs(np.mean(r_mean - truth.noise_ceiling_mean)) < 0.08


# --------------------------------------------------------------------------- meg
def test_meg_epochs(X):
    sim = simulate_responses(X, n_channels=12, snr=1e4, kind="meg", sfreq=200.0, latency=0.12,
                             tmin=-0.1, tmax=0.5, random_state=0)
    brain, truth = sim.brain, sim
    assert brain.shape == (240, 12, 121) and brain.sfreq == 200.0
    assert brain.times[0] == pytest.approx(-0.1) and brain.times[-1] == pytest.approx(0.5)
    assert brain.times[np.argmax(truth.kernel)] == pytest.approx(0.12)
    assert np.all(truth.kernel[brain.times <= 0] == 0)
    peak = brain.data[:, :, np.argmax(truth.kernel)]
    np.testing.assert_allclose(peak[:120], truth.item_responses, atol=0.05)
    gfp = brain.data.std(axis=(0, 1))
    assert 0.08 <= brain.times[np.argmax(gfp)] <= 0.16


# --------------------------------------------------------------------------- rois
def test_rois_driven_by_different_layers():
    rng = np.random.default_rng(6)
    feats = Features({"early": rng.standard_normal((200, 5)), "late": rng.standard_normal((200, 5))},
                     items=[f"s{i}" for i in range(200)])
    sim = simulate_responses(feats, rois={"V1": "early", "IT": "late"}, n_channels=9, snr=5.0, random_state=0)
    brain, truth = sim.brain, sim
    assert list(brain.channels["roi"]) == ["V1"] * 5 + ["IT"] * 4
    assert truth.layer == {"V1": "early", "IT": "late"}
    assert list(truth.channel_layer) == ["early"] * 5 + ["late"] * 4
    assert truth.weights["V1"].shape == (5, 5) and truth.weights["IT"].shape == (5, 4)

    def r2(layer, roi):
        Xl = np.tile((feats[layer] - feats[layer].mean(0)) / feats[layer].std(0), (2, 1))
        Y = brain.select(roi=roi).data
        resid = Y - Xl @ np.linalg.lstsq(Xl, Y, rcond=None)[0]
        return 1 - resid.var() / Y.var()

    assert r2("early", "V1") > 0.7 > 0.1 > r2("late", "V1")
    assert r2("late", "IT") > 0.7 > 0.1 > r2("early", "IT")


# --------------------------------------------------------------------------- errors
def test_errors(X):
    feats = Features({"a": X, "b": X[:, :3]}, items=[f"s{i}" for i in range(120)])
    with pytest.raises(ValueError, match="'kind'.*'fmri'"):
        simulate_responses(X, kind="eeg")
    with pytest.raises(ValueError, match="2 layers.*pass layer="):
        simulate_responses(feats)
    with pytest.raises(KeyError, match="Unknown layer 'c'"):
        simulate_responses(feats, layer="c")
    with pytest.raises(ValueError, match="needs a brainalign.Features"):
        simulate_responses(X, rois={"A": "a"})
    with pytest.raises(ValueError, match="fewer than the 2 ROIs"):
        simulate_responses(feats, rois={"A": "a", "B": "b"}, n_channels=1)
    with pytest.raises(ValueError, match="one value per channel \\(10\\)"):
        simulate_responses(X, n_channels=10, snr=np.ones(3))
    with pytest.raises(ValueError, match="0 < low <= high"):
        simulate_responses(X, snr=(2.0, 1.0))
    with pytest.raises(ValueError, match="positive and finite"):
        simulate_responses(X, n_channels=2, snr=[1.0, -1.0])
    with pytest.raises(ValueError, match="constant across items"):
        simulate_responses(np.ones((10, 3)))
    with pytest.raises(ValueError, match="n_repeats must be a positive integer"):
        simulate_responses(X, n_repeats=0)
    with pytest.raises(ValueError, match="shape \\(n_items, n_features\\)"):
        simulate_responses(np.zeros(5))
