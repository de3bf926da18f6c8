"""Lanczos resampling, FIR delays and align_to."""

from __future__ import annotations

import math

import numpy as np
import pytest

from brainalign import BrainData, Features
from brainalign.features import align_to, lanczos_resample, make_delays


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


def test_make_delays_in_seconds():
    X = np.arange(6.0)[:, None]
    np.testing.assert_array_equal(make_delays(X, [0.0, 0.02], sfreq=100.0),
                                  make_delays(X, [0, 2]))
    with pytest.raises(ValueError, match="not whole samples at sfreq=100"):
        make_delays(X, [0.015], sfreq=100.0)
    with pytest.raises(ValueError, match="give one run label per sample"):
        make_delays(X, [1], groups=[0, 1])
    with pytest.raises(ValueError, match="delays is empty"):
        make_delays(X, [])


def test_align_to_events(rng):
    F = rng.standard_normal((3, 4))
    feats = Features({"l0": F, "l1": F * 2}, items=["a", "b", "c"])
    brain = BrainData(rng.standard_normal((5, 2)), samples={"stimulus_id": ["c", "a", "c", "b", None],
                                                            "run": [0, 0, 0, 1, 1]}, tr=2.0)
    with pytest.raises(KeyError, match=r"1 samples have no stimulus_id and 0 samples name stimuli"):
        align_to(feats, brain, layer="l0")
    X = align_to(feats, brain, layer="l0", missing="zeros")
    np.testing.assert_array_equal(X, np.vstack([F[2], F[0], F[2], F[1], np.zeros(4)]))
    both = align_to(feats, brain, missing="zeros", delays=[0, 1])
    assert set(both) == {"l0", "l1"} and both["l1"].shape == (5, 8)
    np.testing.assert_array_equal(both["l0"][3, 4:], 0)  # run 1 starts: no delayed row from run 0
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
    X = align_to(feats, brain, layer="w", delays=[1, 2])
    runs = np.asarray(table["run"])
    onsets = np.asarray(table["onset"])
    parts = [lanczos_resample(F[runs == r], onsets[runs == r], np.arange(n_tr) * 2.0) for r in (0, 1)]
    manual = make_delays(np.vstack(parts), [1, 2], groups=brain.samples["run"])
    np.testing.assert_allclose(X, manual)
    assert X.shape == (2 * n_tr, 6)


def test_align_to_refuses_mismatched_timelines(rng):
    table = _story(rng=rng)
    n = len(table["run"])
    feats = Features({"w": rng.standard_normal((n, 3))}, items=[f"w{i}" for i in range(n)], item_table=table)
    short = BrainData(np.zeros((20, 1)), samples={"run": [0] * 10 + [1] * 10}, tr=2.0)
    with pytest.raises(ValueError, match=r"Run '0': the stimuli span .* but the recording covers 0-20 s \(10 samples"):
        align_to(feats, short)
    other = BrainData(np.zeros((60, 1)), samples={"run": [0] * 30 + [2] * 30}, tr=2.0)
    with pytest.raises(ValueError, match=r"runs do not match.*only in recording: \['2'\], only in features: \['1'\]"):
        align_to(feats, other)
    no_onsets = Features({"w": np.zeros((2, 1))}, items=["a", "b"])
    with pytest.raises(ValueError, match="carry no onsets"):
        align_to(no_onsets, other)
    with pytest.raises(ValueError, match="not both"):
        align_to(feats, other, delays=[1], lags=[0.1])
