"""Lanczos resampling, FIR delays, the HRF and align_to (the one design path)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from brainalign import BrainData, Features
import pandas as pd

from brainalign.features.timing import (align_to, convolve_hrf, hrf, hrf_response, lanczos_resample,
                                       make_delays)


def _lanczos_direct(values, times, new_times, window, cutoff):
    out = np.zeros((len(new_times), values.shape[1]))
    for j, tj in enumerate(new_times):
        for i, ti in enumerate(times):
            x = 2 * cutoff * (tj - ti)
            if x == 0:
                w = 1.0
            elif abs(x) >= window:
                w = 0.0
            else:
                w = window * math.sin(math.pi * x) * math.sin(math.pi * x / window) / (math.pi ** 2 * x ** 2)
            out[j] += w * values[i]
    return out


def test_lanczos_equals_direct_formula(rng):
    times = np.sort(rng.uniform(0, 30, 57))
    values = rng.standard_normal((57, 3))
    new = np.arange(0, 30, 1.5)
    for window, cutoff in [(3, None), (2, 0.2)]:
        fc = 1 / (2 * 1.5) if cutoff is None else cutoff
        got = lanczos_resample(values, times, new, window=window, cutoff=cutoff)
        np.testing.assert_allclose(got, _lanczos_direct(values, times, new, window, fc), atol=1e-12)


def test_lanczos_recovers_a_slow_sinusoid():
    t = np.arange(0, 200, 0.05)  # 20 Hz
    f = 0.02  # Hz, far below the 0.25 Hz Nyquist of a 2 s grid
    tr = np.arange(10, 190, 2.0)
    y = lanczos_resample(np.sin(2 * np.pi * f * t), t, tr, normalize="sum")
    np.testing.assert_allclose(y, np.sin(2 * np.pi * f * tr), atol=5e-3)
    raw = lanczos_resample(np.sin(2 * np.pi * f * t), t, tr)
    # raw sums scale with the event density: 1 / (2 fc dt) = 1 / (2 * 0.25 * 0.05) = 40
    np.testing.assert_allclose(raw / 40, np.sin(2 * np.pi * f * tr), atol=5e-3)


def test_lanczos_errors():
    with pytest.raises(ValueError, match="values has 3 rows but times has 2"):
        lanczos_resample(np.zeros((3, 1)), [0, 1], [0, 1])
    with pytest.raises(ValueError, match="pass cutoff="):
        lanczos_resample(np.zeros((2, 1)), [0, 1], [0.5])
    with pytest.raises(ValueError, match="Invalid value for the 'normalize'"):
        lanczos_resample(np.zeros((2, 1)), [0, 1], [0, 1], normalize="mean")
    with pytest.raises(ValueError, match="lanczos_resample got no events: values has shape \\(0, 3\\)"):
        lanczos_resample(np.zeros((0, 3)), [], [0.0, 2.0])
    with pytest.raises(ValueError, match="new_times is empty"):
        lanczos_resample(np.zeros((2, 1)), [0, 1], [])


# --------------------------------------------------------------------------- make_delays
def _delays_reference(X, delays, groups):
    """out[t, k*p:(k+1)*p] = X[the sample d_k earlier in t's run], by a plain loop."""
    n, p = X.shape
    g = np.zeros(n) if groups is None else np.asarray(groups)
    out = np.zeros((n, p * len(delays)))
    for t in range(n):
        pos = list(np.flatnonzero(g == g[t]))
        i = pos.index(t)
        for k, d in enumerate(delays):
            if 0 <= i - d < len(pos):
                out[t, k * p:(k + 1) * p] = X[pos[i - d]]
    return out


@pytest.mark.filterwarnings("ignore:1 of 2 runs are not longer")
@pytest.mark.parametrize("delays", [[0, 1, 2], [-2, -1, 0, 1], [3, 4], [0, 2, 5], [-3], [1, 4, 2]])
@pytest.mark.parametrize("groups", [None, [0] * 7 + [1] * 5, [0, 1] * 6])
def test_make_delays_equals_the_definition(rng, delays, groups):
    X = rng.standard_normal((12, 3))
    np.testing.assert_array_equal(make_delays(X, delays, groups=groups), _delays_reference(X, delays, groups))


def test_make_delays_within_runs(rng):
    X = rng.standard_normal((10, 2))
    groups = [0] * 6 + [1] * 4
    D = make_delays(X, [0, 1, 2], groups=groups)
    assert D.shape == (10, 6)
    np.testing.assert_array_equal(D[:, :2], X)
    np.testing.assert_array_equal(D[1:6, 2:4], X[0:5])
    np.testing.assert_array_equal(D[0, 2:4], 0)
    np.testing.assert_array_equal(D[6, 2:6], 0)  # first sample of run 1 sees nothing of run 0
    np.testing.assert_array_equal(D[7, 2:4], X[6])
    np.testing.assert_array_equal(D[7, 4:6], 0)
    np.testing.assert_array_equal(D[8, 4:6], X[6])
    # without groups the delays would leak across the boundary
    assert np.abs(make_delays(X, [1])[6] - X[5]).max() == 0
    # negative delays (leads) stay inside a run too
    L = make_delays(X, [-1], groups=groups)
    np.testing.assert_array_equal(L[5], 0)
    np.testing.assert_array_equal(L[6], X[7])


def test_make_delays_lags_in_seconds():
    X = np.arange(6.0)[:, None]
    np.testing.assert_array_equal(make_delays(X, lags=[0.0, 0.02], sfreq=100.0), make_delays(X, [0, 2]))
    np.testing.assert_array_equal(make_delays(X, lags=[-0.01], sfreq=100.0), make_delays(X, [-1]))


def test_make_delays_bad_input():
    X = np.arange(6.0)[:, None]
    with pytest.raises(ValueError, match=r"lags \[0.015\] s are not whole samples at sfreq=100 Hz"):
        make_delays(X, lags=[0.015], sfreq=100.0)
    with pytest.raises(ValueError, match="need sfreq="):
        make_delays(X, lags=[0.01])
    with pytest.raises(ValueError, match=r"delays=\[0.0, 0.02\] are already in samples"):
        make_delays(X, [0.0, 0.02], sfreq=100.0)  # the old call: seconds passed as delays
    with pytest.raises(ValueError, match="not whole numbers of samples"):
        make_delays(X, [0.5])
    with pytest.raises(ValueError, match="not both"):
        make_delays(X, [1], lags=[0.01], sfreq=100.0)
    with pytest.raises(ValueError, match="give one run label per sample"):
        make_delays(X, [1], groups=[0, 1])
    with pytest.raises(ValueError, match="delays is empty"):
        make_delays(X, [])
    with pytest.raises(ValueError, match=r"The delays repeat \[1\]"):
        make_delays(X, [1, 1, 2])
    with pytest.raises(ValueError, match=r"shape \(n_samples, n_features\)"):
        make_delays(np.zeros((2, 2, 2)), [0])


def test_make_delays_longer_than_every_run_raises():
    X = np.ones((10, 2))
    groups = [0] * 5 + [1] * 5
    with pytest.raises(ValueError, match=r"Delay\(s\) \[5, 7\] \(samples\) are at least as long as every run "
                                         r"\(run lengths: \[5, 5\]\).*shorter than 5 samples"):
        make_delays(X, [1, 5, 7], groups=groups)
    with pytest.raises(ValueError, match="every run"):
        make_delays(X, [-10])  # today's all-zero design
    with pytest.warns(UserWarning, match="1 of 2 runs are not longer than the longest delay"):
        D = make_delays(np.ones((9, 1)), [0, 4], groups=[0] * 5 + [1] * 4)
    np.testing.assert_array_equal(D[5:, 1], 0)  # the short run gets zeros for delay 4


# --------------------------------------------------------------------------- hrf
def test_hrf_shape():
    h = hrf(0.05)
    t = np.arange(len(h)) * 0.05
    assert t[-1] == pytest.approx(32.0)
    assert t[np.argmax(h)] == pytest.approx(5.0, abs=0.1)
    assert h.max() == pytest.approx(1.0, abs=1e-3)
    assert 15.0 < t[np.argmin(h)] < 16.5 and h.min() < -0.05  # undershoot
    assert h[0] == 0
    assert hrf(2.0, normalize="sum").sum() == pytest.approx(1.0)
    assert len(hrf(2.0)) == 17


def test_hrf_matches_nilearn_spm_hrf():
    from nilearn.glm.first_level.hemodynamic_models import spm_hrf

    tr, over = 1.0, 50
    ref = spm_hrf(tr, oversampling=over, time_length=32.0)
    dt = tr / over
    stamps = np.linspace(0, 32.0, len(ref)) - dt  # nilearn shifts the gammas by one step
    ours = np.interp(stamps, np.arange(0, 32.0 + 1e-9, 0.001), hrf(0.001, 32.0))
    np.testing.assert_allclose(ours / ours.max(), ref / ref.max(), atol=2e-3)


def test_hrf_errors():
    with pytest.raises(ValueError, match="tr must be a positive"):
        hrf(0)
    with pytest.raises(ValueError, match="'normalize'.*'peak'"):
        hrf(1.0, normalize="area")


def test_hrf_response_and_convolve_hrf(rng):
    t = np.arange(0, 32.0 + 1e-9, 2.0)
    np.testing.assert_allclose(hrf_response(t), hrf(2.0))
    # a boxcar response is the integral of the impulse response (fine Riemann sum)
    fine = np.arange(0, 40, 0.001)
    h = hrf_response(fine)
    box = np.convolve(h, np.ones(3000))[:len(fine)] * 0.001  # 3 s event
    np.testing.assert_allclose(hrf_response(fine[::500], event_duration=3.0), box[::500], atol=2e-3)
    assert hrf_response([-1.0])[0] == 0
    # convolve_hrf: causal, within runs, truncated at each run's end (as tutorial 03 used to do by hand)
    X = rng.standard_normal((30, 2))
    runs = np.repeat([0, 1], 15)
    got = convolve_hrf(X, tr=2.0, groups=runs)
    for r in (0, 1):
        rows = runs == r
        manual = np.stack([np.convolve(X[rows, j], hrf(2.0))[:15] for j in range(2)], 1)
        np.testing.assert_allclose(got[rows], manual, atol=1e-12)
    with pytest.raises(ValueError, match="event_duration must be >= 0"):
        hrf_response([1.0], event_duration=-1.0)
    with pytest.raises(ValueError, match="tr must be a positive"):
        convolve_hrf(X, tr=0.0)


# --------------------------------------------------------------------------- align_to
def test_align_to_events(rng):
    F = rng.standard_normal((3, 4))
    feats = Features({"l0": F, "l1": F * 2}, items=["a", "b", "c"])
    brain = BrainData(rng.standard_normal((5, 2)), samples={"stimulus_id": ["c", "a", "c", "b", None],
                                                            "run": [0, 0, 0, 1, 1]}, tr=2.0)
    with pytest.raises(KeyError, match=r"1 samples have no stimulus_id and 0 samples name stimuli"):
        align_to(feats, brain, layer="l0")
    out = align_to(feats, brain, layer="l0", missing="zeros")
    np.testing.assert_array_equal(out.X, np.vstack([F[2], F[0], F[2], F[1], np.zeros(4)]))
    assert out.bands == {"l0": slice(0, 4)} and out.Y is None and out.keep.all()
    assert list(out.groups) == ["0", "0", "0", "1", "1"]
    both = align_to(feats, brain, missing="zeros", delays=[0, 1])
    assert both.X.shape == (5, 16) and both.bands == {"l0": slice(0, 8), "l1": slice(8, 16)}
    np.testing.assert_array_equal(both.X[:, both.bands["l1"]], 2 * both.X[:, both.bands["l0"]])
    np.testing.assert_array_equal(both.X[3, 4:8], 0)  # run 1 starts: no delayed row from run 0
    cols = both.columns
    assert list(cols.columns) == ["layer", "feature", "delay", "lag"] and len(cols) == 16
    assert cols.iloc[5].to_dict() == {"layer": "l0", "feature": 1, "delay": 1, "lag": 2.0}
    bad = BrainData(np.zeros((2, 1)), samples={"stimulus_id": ["a", "zebra"]})
    with pytest.raises(KeyError, match=r"1 samples name stimuli that are not in the features \(\['zebra'\]\)"):
        align_to(feats, bad)


def _story(n_words=120, rate=2.5, runs=(0, 1), rng=None):
    rows = []
    for r in runs:
        onsets = np.sort(rng.uniform(1, n_words / rate, n_words))
        rows += [(r, o) for o in onsets]
    table = {"run": [r for r, _ in rows], "onset": [o for _, o in rows]}
    return table


def test_align_to_continuous_matches_manual(rng):
    table = _story(rng=rng)
    n = len(table["run"])
    F = rng.standard_normal((n, 3))
    feats = Features({"w": F}, items=[f"w{i}" for i in range(n)], item_table=table)
    n_tr = 26  # 52 s per run at TR 2 s covers the 48 s of words
    brain = BrainData(rng.standard_normal((2 * n_tr, 4)), samples={"run": [0] * n_tr + [1] * n_tr}, tr=2.0)
    out = align_to(feats, brain, layer="w", delays=[1, 2], return_y=True)
    runs = np.asarray(table["run"])
    onsets = np.asarray(table["onset"])
    parts = [lanczos_resample(F[runs == r], onsets[runs == r], np.arange(n_tr) * 2.0) for r in (0, 1)]
    manual = make_delays(np.vstack(parts), [1, 2], groups=brain.samples["run"])
    np.testing.assert_allclose(out.X, manual)
    assert out.X.shape == (2 * n_tr, 6)
    np.testing.assert_array_equal(out.Y, brain.data)


@pytest.mark.parametrize("method", ["sum", "mean"])
def test_align_to_bins_items_per_sample(rng, method):
    onsets = np.array([0.1, 0.5, 1.9, 2.0, 5.5, 5.6, 5.7, 7.99])  # TR 2 s: bins [0,2) [2,4) [4,6) [6,8)
    F = rng.standard_normal((8, 2))
    feats = Features({"w": F}, items=[f"w{i}" for i in range(8)], item_table={"onset": onsets})
    brain = BrainData(np.zeros((4, 1)), tr=2.0)
    X = align_to(feats, brain, method=method).X
    agg = np.sum if method == "sum" else np.mean
    expected = np.vstack([agg(F[[0, 1, 2]], 0), agg(F[[3]], 0), agg(F[[4, 5, 6]], 0), agg(F[[7]], 0)])
    np.testing.assert_allclose(X, expected)
    late = Features({"w": F[:1]}, items=["x"], item_table={"onset": [8.0]})  # the end of the last bin
    with pytest.raises(ValueError, match=r"1 of 1 items lie after the end of the recording, which covers 0-8 s"):
        align_to(late, brain, method=method)
    lead = Features({"w": F[:2]}, items=["x", "y"], item_table={"onset": [-1.0, 1.0]})  # trimmed volumes
    with pytest.warns(UserWarning, match=r"1 of 2 items start before its first sample \(0 s; volumes trimmed"):
        X = align_to(lead, brain, method=method).X
    np.testing.assert_allclose(X[0], F[1])


def test_align_to_several_events_per_volume(rng):
    """Events whose onsets coincide (several stimuli in one volume) add up in their bin."""
    F = rng.standard_normal((3, 2))
    feats = Features({"l": F}, items=["a", "b", "c"])
    events = pd.DataFrame({"onset": [0.0, 0.0, 2.5, 4.0, 4.0], "stimulus_id": ["a", "b", "c", "a", "unknown"],
                           "run": [1, 1, 1, 1, 1]})
    brain = BrainData(np.zeros((3, 1)), samples={"run": [1, 1, 1], "stimulus_id": ["x", "y", "z"]}, tr=2.0)
    with pytest.raises(KeyError, match=r"1 samples name stimuli that are not in the features \(\['unknown'\]\)"):
        align_to(feats, brain, events=events, method="sum")
    X = align_to(feats, brain, events=events, method="sum", missing="zeros").X
    np.testing.assert_allclose(X, np.vstack([F[0] + F[1], F[2], F[0]]))
    with pytest.raises(ValueError, match=r"events lacks the column\(s\) \['stimulus_id'\]"):
        align_to(feats, brain, events=events.drop(columns="stimulus_id"))


def test_align_to_trim_zscore_and_lags(rng):
    F = rng.standard_normal((4, 3)) * 5 + 2
    ids = list("abcd") * 5
    feats = Features({"l": F}, items=list("abcd"))
    data = rng.standard_normal((20, 2)) * 3 + 1
    brain = BrainData(data, samples={"stimulus_id": ids, "run": [0] * 10 + [1] * 10}, sfreq=100.0)
    raw = align_to(feats, brain).X
    out = align_to(feats, brain, trim=2, zscore=True, lags=[0.0, 0.01], return_y=True)
    keep = np.r_[2:10, 12:20]
    np.testing.assert_array_equal(np.flatnonzero(out.keep), keep)
    assert out.X.shape == (16, 6) and out.Y.shape == (16, 2) and len(out.samples) == 16
    assert list(out.columns["lag"].unique()) == [0.0, 0.01]
    for r in ("0", "1"):
        rows = out.groups == r
        np.testing.assert_allclose(out.X[rows, :3].mean(0), 0, atol=1e-12)
        np.testing.assert_allclose(out.X[rows, :3].std(0), 1)
        np.testing.assert_allclose(out.Y[rows].mean(0), 0, atol=1e-12)
    # z-scoring uses the kept samples' statistics; the delayed row after the trim sees a trimmed sample
    run0 = raw[:10]
    z = (run0 - run0[2:].mean(0)) / run0[2:].std(0)
    np.testing.assert_allclose(out.X[0, 3:], z[1])
    np.testing.assert_allclose(align_to(feats, brain, lags=[0.01]).X, align_to(feats, brain, delays=[1]).X)
    ends = align_to(feats, brain, trim=(1, 3))
    np.testing.assert_array_equal(np.flatnonzero(ends.keep), np.r_[1:7, 11:17])


def test_align_to_assigns_items_to_runs_by_time(rng):
    """Words on the recording's clock, no run column: each goes to the run whose span holds it."""
    n_tr = 20
    onsets = np.r_[np.sort(rng.uniform(0, 38, 50)), np.sort(rng.uniform(100, 138, 50))]
    F = rng.standard_normal((100, 2))
    samples = {"run": [0] * n_tr + [1] * n_tr, "onset": np.r_[np.arange(n_tr) * 2.0, 100 + np.arange(n_tr) * 2.0]}
    brain = BrainData(np.zeros((2 * n_tr, 1)), samples=samples, tr=2.0)
    no_run = Features({"w": F}, items=[f"w{i}" for i in range(100)], item_table={"onset": onsets})
    with_run = Features({"w": F}, items=[f"w{i}" for i in range(100)],
                        item_table={"onset": onsets, "run": [0] * 50 + [1] * 50})
    np.testing.assert_allclose(align_to(no_run, brain).X, align_to(with_run, brain).X)
    stray = Features({"w": F[:3]}, items=["x", "y", "z"], item_table={"onset": [10.0, 60.0, 200.5]})
    with pytest.raises(ValueError, match=r"2 of 3 items fall outside every run's time span \('y' at 60 s, 'z' at "
                                         r"200.5 s\); runs cover '0': -2-40 s, '1': 98-140 s"):
        align_to(stray, brain)


def test_align_to_bad_timelines(rng):
    table = _story(rng=rng)
    n = len(table["run"])
    feats = Features({"w": rng.standard_normal((n, 3))}, items=[f"w{i}" for i in range(n)], item_table=table)
    short = BrainData(np.zeros((20, 1)), samples={"run": [0] * 10 + [1] * 10}, tr=2.0)
    with pytest.raises(ValueError, match=r"Run '0': \d+ of 120 items lie after the end of the recording, which covers "
                                         r"0-20 s \(10 samples at 2 s\): 'w\d+' at"):
        align_to(feats, short)
    offset = BrainData(np.zeros((60, 1)), samples={"run": [0] * 30 + [1] * 30, "onset": np.arange(60) * 2.0 + 100},
                       tr=2.0)  # sample onsets on another clock than the words
    with pytest.raises(ValueError, match=r"Run '0': all 120 items start before the recording, which covers 100-160 s"):
        align_to(feats, offset)
    other = BrainData(np.zeros((60, 1)), samples={"run": [0] * 30 + [2] * 30}, tr=2.0)
    with pytest.raises(ValueError, match=r"runs do not match.*only in recording: \['2'\], only in items: \['1'\]"):
        align_to(feats, other)
    no_onsets = Features({"w": np.zeros((2, 1))}, items=["a", "b"])
    with pytest.raises(ValueError, match="carry no onsets"):
        align_to(no_onsets, other)
    with pytest.raises(ValueError, match="not both"):
        align_to(feats, other, delays=[1], lags=[0.1])
    shuffled = Features({"w": np.zeros((3, 1))}, items=["a", "b", "c"], item_table={"onset": [1.0, 3.0, 2.0]})
    one_run = BrainData(np.zeros((5, 1)), tr=2.0)
    with pytest.raises(ValueError, match=r"Run '0': the item onsets are not in time order: 'c' at 2 s comes after "
                                         r"'b' at 3 s"):
        align_to(shuffled, one_run)
    ok = Features({"w": np.ones((3, 1))}, items=["a", "b", "c"], item_table={"onset": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=r"Delay\(s\) \[5, 6\] \(samples\) are at least as long as every run"):
        align_to(ok, one_run, delays=[1, 5, 6])
    with pytest.raises(ValueError, match=r"lags= \(seconds\) needs a recording with sfreq"):
        align_to(ok, BrainData(np.zeros((5, 1))), lags=[0.1])
    with pytest.raises(ValueError, match=r"trim=\(3, 2\) removes all 5 samples of run '0'"):
        align_to(ok, one_run, trim=(3, 2))
    with pytest.raises(ValueError, match="trim must be a number of samples"):
        align_to(ok, one_run, trim=-1)
    with pytest.raises(ValueError, match="Invalid value for the 'zscore' parameter"):
        align_to(ok, one_run, zscore="yes")
    with pytest.raises(ValueError, match="Invalid value for the 'method' parameter"):
        align_to(ok, one_run, method="nearest")
    back = BrainData(np.zeros((3, 1)), samples={"onset": [0.0, 4.0, 2.0]}, tr=2.0)
    with pytest.raises(ValueError, match=r"sample onsets are not increasing \(sample 2 at 2 s follows 4 s\)"):
        align_to(ok, back)


def test_align_to_on_a_loaded_story_dataset(rng):
    """The words and volumes of the ds003020 layout (load_lebel2023) line up through align_to as by hand."""
    from brainalign.datasets import load_story_example

    lebel = load_story_example("lebel2023")
    words, samples = lebel.stimuli.table, lebel.brain.samples
    F = rng.standard_normal((len(words), 3))
    feats = Features({"w": F}, items=[f"w{i}" for i in range(len(words))], item_table=words)
    out = align_to(feats, lebel.brain, delays=[1, 2, 3, 4], return_y=True)
    runs = samples["run"].to_numpy()
    manual = np.zeros((len(samples), 3))
    for story in pd.unique(runs):
        fi, bi = (words["run"] == story).to_numpy(), runs == story
        manual[bi] = lanczos_resample(F[fi], words["onset"].to_numpy()[fi], samples["onset"].to_numpy()[bi])
    np.testing.assert_allclose(out.X, make_delays(manual, [1, 2, 3, 4], groups=runs))
    np.testing.assert_array_equal(out.groups, runs.astype(str))
    assert out.Y.shape == lebel.brain.shape


@pytest.mark.parametrize("method", ["sum", "mean"])
def test_align_to_every_stimulus_of_a_volume(rng, method):
    """samples['stimulus_ids'] (load_fmri keeps every stimulus of a volume): their features add up."""
    F = rng.standard_normal((3, 2))
    feats = Features({"l": F}, items=["a", "b", "c"])
    samples = {"stimulus_id": ["a", "c", None, "b"], "stimulus_ids": [("a", "b"), ("c",), (), ("b", "zebra")]}
    brain = BrainData(np.zeros((4, 1)), samples=samples, tr=2.0)
    with pytest.raises(KeyError, match=r"1 samples list no stimulus in stimulus_ids and 1 listed stimuli are not in "
                                       r"the features \(\['zebra'\]\)"):
        align_to(feats, brain, method=method)
    X = align_to(feats, brain, method=method, missing="zeros").X
    expected = np.vstack([F[0] + F[1], F[2], np.zeros(2), F[1]])
    if method == "mean":
        expected[0] /= 2
    np.testing.assert_allclose(X, expected)
    # the default keeps one stimulus per volume (samples['stimulus_id'])
    np.testing.assert_allclose(align_to(feats, brain, missing="zeros").X, np.vstack([F[0], F[2], np.zeros(2), F[1]]))
