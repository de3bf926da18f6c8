"""Time-resolved and searchlight RSA on simulated data with a known answer."""

import numpy as np
import pytest

from brainalign import BrainData, Features
from brainalign.datasets import simulate_responses
from brainalign.rsa import calc_rdm, searchlight, time_resolved


def test_time_resolved_peaks_at_latency(rng):
    feats = Features({"a": rng.standard_normal((12, 10)), "b": rng.standard_normal((12, 10))},
                     items=[f"s{i:02d}" for i in range(12)])
    sim = simulate_responses(feats, layer="a", kind="meg", n_channels=30, snr=2.0, n_repeats=3,
                             sfreq=100.0, latency=0.15, random_state=0)
    brain = sim.brain
    res = time_resolved(brain, calc_rdm(feats), descriptor="stimulus_id", window=2, step=2)
    assert res.scores.shape == (2, len(res.times))
    a = res.scores[0]
    # no structure before stimulus onset, the generating layer's geometry at the response
    assert a[res.times < 0].mean() < 0.15
    assert a[np.argmin(abs(res.times - 0.15))] > 0.8 * a.max()
    assert 0.05 <= res.times[np.argmax(a)] <= 0.35  # the kernel is broad; the peak falls in it
    assert a.max() > res.scores[1].max()
    assert set(res.table.columns) == {"layer", "time", "score"}


def test_time_resolved_errors(rng):
    with pytest.raises(ValueError, match="time axis"):
        time_resolved(BrainData(rng.standard_normal((4, 3))), rng.random((1, 6)))
    with pytest.raises(ValueError, match="window"):
        time_resolved(BrainData(rng.standard_normal((4, 3, 5))), rng.random((1, 6)), window=9)
    with pytest.raises(ValueError, match="same conditions"):
        time_resolved(BrainData(rng.standard_normal((4, 3, 5))), rng.random((1, 10)))


def _volume(rng, planted):
    shape = (8, 8, 8)
    ijk = np.array(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")).reshape(3, -1).T
    n_cond = 15
    signal = rng.standard_normal((n_cond, 5))
    data = rng.standard_normal((n_cond, len(ijk)))
    region = np.linalg.norm(ijk - np.array([2, 2, 2]), axis=1) <= 2.5
    if planted:
        data[:, region] = signal @ rng.standard_normal((5, region.sum())) * 3 + data[:, region]
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    brain = BrainData(data, channels={"i": ijk[:, 0], "j": ijk[:, 1], "k": ijk[:, 2]},
                      space={"kind": "volume", "affine": aff, "shape": shape})
    far = np.linalg.norm(ijk - np.array([2, 2, 2]), axis=1) > 5.0  # spheres that cannot touch it
    return brain, calc_rdm(signal, method="euclidean"), region, far


def test_searchlight_finds_planted_region(rng):
    brain, model, region, far = _volume(rng, True)
    res = searchlight(brain, model, radius=4.0, n_jobs=2, chunk_size=100)
    m = res.maps[0]
    assert m[region].mean() > 0.3
    assert abs(m[far].mean()) < 0.1
    # joblib semantics: -1 = all cores (crashed with "max_workers must be greater than 0")
    np.testing.assert_array_equal(searchlight(brain, model, radius=4.0, n_jobs=-1, chunk_size=100).maps, res.maps)
    img = res.images[0]
    assert img.shape == (8, 8, 8)
    centre = int(np.flatnonzero((brain.channels[["i", "j", "k"]].to_numpy() == 2).all(1))[0])
    assert np.isclose(img.get_fdata()[2, 2, 2], m[centre])
    np.testing.assert_allclose(res.maps, searchlight(brain, model, radius=4.0).maps)


def test_searchlight_errors(rng):
    brain, model, _, _ = _volume(rng, False)
    with pytest.raises(ValueError, match="radius"):
        searchlight(brain, model, radius=0)
    with pytest.raises(ValueError, match="coordinates"):
        searchlight(BrainData(rng.standard_normal((15, 4))), model)
