"""Time-resolved RSA: against a per-time-point reference, mne-rsa, rsatoolbox and simulated data."""

import numpy as np
import pytest
from rsatoolbox.rdm import RDMs

from brainalign import BrainData, Features
from brainalign.datasets import simulate_responses
from brainalign.rsa import calc_rdm, compare, noise_precision, time_resolved
from brainalign.rsa._common import reorder_vectors


def test_time_resolved_peaks_at_latency(rng):
    feats = Features({"a": rng.standard_normal((12, 10)), "b": rng.standard_normal((12, 10))},
                     items=[f"s{i:02d}" for i in range(12)])
    brain = simulate_responses(feats, layer="a", kind="meg", n_channels=30, snr=2.0, n_repeats=3,
                               sfreq=100.0, latency=0.15, random_state=0).brain
    res = time_resolved(brain, calc_rdm(feats), descriptor="stimulus_id", window=2, step=2)
    assert res.scores.shape == (2, len(res.times))
    a = res.scores[0]
    # no structure before stimulus onset, the generating layer's geometry at the response
    assert a[res.times < 0].mean() < 0.15
    assert a[np.argmin(abs(res.times - 0.15))] > 0.8 * a.max()
    assert 0.05 <= res.times[np.argmax(a)] <= 0.35  # the kernel is broad; the peak falls in it
    assert a.max() > res.scores[1].max()
    assert set(res.table.columns) == {"layer", "time", "score"}


@pytest.fixture
def epochs(rng):
    n_cond, n_rep, n_ch, n_t = 7, 3, 9, 12
    stim = np.tile([f"c{i}" for i in range(n_cond)], n_rep)
    run = np.repeat(np.arange(n_rep), n_cond)
    perm = rng.permutation(stim.size)
    x = rng.standard_normal((stim.size, n_ch, n_t)) + 3.0  # an offset: centring must be exact
    return BrainData(x[perm], samples={"stimulus_id": stim[perm], "run": run[perm]}, sfreq=100.0)


def _reference(brain, models, *, window=1, step=1, mode="average", compare_method="spearman", **kw):
    """One calc_rdm + compare per window, the definition time_resolved must reproduce."""
    x = brain.data
    noise = kw.get("noise")
    if mode == "concatenate" and isinstance(noise, np.ndarray):  # features are channel-major (c * window)
        eye = np.eye(window)
        kw["noise"] = (np.repeat(noise, window) if noise.ndim == 1 else np.kron(noise, eye) if noise.ndim == 2
                       else np.stack([np.kron(p, eye) for p in noise]))
    out = []
    for s in range(0, x.shape[2] - window + 1, step):
        seg = x[:, :, s:s + window]
        pats = seg.mean(-1) if mode == "average" else seg.reshape(len(seg), -1)
        rdm = calc_rdm(BrainData(pats, samples=brain.samples), device="cpu", **kw)
        out.append(compare(models, rdm.get_vectors(), method=compare_method)[:, 0])
    return np.stack(out, 1)


@pytest.mark.parametrize("rdm_method,extra", [
    ("correlation", {}), ("euclidean", {}), ("cosine", {}), ("mahalanobis", {"noise": "diag"}),
    ("mahalanobis", {"noise": "full"}), ("crossnobis", {"cv_descriptor": "run"}),
    ("crossnobis", {"cv_descriptor": "run", "noise": "full"}), ("crossnobis", {"cv_descriptor": "run", "noise": "per_run"}),
])
@pytest.mark.parametrize("window,step,mode", [(1, 1, "average"), (3, 2, "average"), (4, 3, "concatenate")])
def test_equals_per_time_point_reference(epochs, rng, rdm_method, extra, window, step, mode):
    extra = dict(extra)
    models = rng.random((3, 21))
    if "noise" in extra:
        resid = rng.standard_normal((200, epochs.data.shape[1]))
        if extra["noise"] == "per_run":
            extra["noise"] = np.stack([noise_precision(resid[i::3]) for i in range(3)])
        else:
            prec = noise_precision(resid, method="full")
            extra["noise"] = np.diag(prec) if extra["noise"] == "diag" else prec
    res = time_resolved(epochs, models, rdm_method=rdm_method, descriptor="stimulus_id", window=window, step=step,
                        window_mode=mode, **extra)
    ref = _reference(epochs, models, window=window, step=step, mode=mode, method=rdm_method,
                     descriptor="stimulus_id", **extra)
    np.testing.assert_allclose(res.scores, ref, atol=1e-10)
    assert res.rdms.n_rdm == ref.shape[1]
    assert list(res.rdms.pattern_descriptors["stimulus_id"]) == [f"c{i}" for i in range(7)]
    expected_t = [epochs.times[s:s + window].mean() for s in range(0, 12 - window + 1, step)]
    np.testing.assert_allclose(res.times, expected_t)


def test_no_descriptor_and_other_comparisons(rng):
    x = rng.standard_normal((8, 5, 6))
    brain = BrainData(x, sfreq=50.0)
    models = rng.random((2, 28))
    for method in ["corr", "tau-a", "cosine_cov"]:
        np.testing.assert_allclose(time_resolved(brain, models, compare_method=method).scores,
                                   _reference(brain, models, compare_method=method), atol=1e-10)
    # every epoch its own condition, ids in shuffled order, float32 epochs: read in place, in id order
    ids = rng.permutation(8)
    b32 = BrainData(x.astype(np.float32), samples={"stimulus_id": ids}, sfreq=50.0)
    for window, mode in [(1, "average"), (2, "concatenate"), (3, "average")]:
        np.testing.assert_allclose(
            time_resolved(b32, models, descriptor="stimulus_id", window=window, window_mode=mode).scores,
            _reference(b32, models, descriptor="stimulus_id", window=window, mode=mode), atol=1e-10)


def test_equals_mne_rsa(rng):
    mne = pytest.importorskip("mne")
    mne_rsa = pytest.importorskip("mne_rsa")
    from brainalign.datasets import load_mne

    n_ep, n_ch, n_t = 24, 10, 15
    stim = np.arange(n_ep) % 8
    info = mne.create_info(n_ch, 200.0, "grad")
    ev = np.c_[np.arange(n_ep) * 100, np.zeros(n_ep, int), stim + 1]
    ep = mne.EpochsArray(rng.standard_normal((n_ep, n_ch, n_t)), info, events=ev, verbose=False)
    loaded = load_mne(ep)
    brain = BrainData(loaded.data, samples=loaded.samples.assign(stimulus_id=stim), sfreq=200.0, times=loaded.times)
    models = [rng.random(28), rng.random(28)]
    for window in (1, 3):
        ref = mne_rsa.rsa_epochs(ep, models, temporal_radius=(window - 1) / 2 / 200.0, labels_epochs=stim,
                                 verbose=False)
        ours = time_resolved(brain, np.stack(models), descriptor="stimulus_id", window=window,
                             window_mode="concatenate")
        np.testing.assert_allclose(ours.scores, np.stack([r.data[0] for r in ref]), atol=1e-12)


def test_crossnobis_equals_rsatoolbox_movie(epochs, rng):
    from rsatoolbox.data import TemporalDataset
    from rsatoolbox.rdm import calc_rdm_movie

    ds = TemporalDataset(epochs.data, obs_descriptors={k: epochs.samples[k].to_numpy() for k in epochs.samples},
                         time_descriptors={"time": epochs.times})
    movie = calc_rdm_movie(ds, method="crossnobis", descriptor="stimulus_id", cv_descriptor="run")
    res = time_resolved(epochs, rng.random((1, 21)), rdm_method="crossnobis", descriptor="stimulus_id",
                        cv_descriptor="run")
    np.testing.assert_allclose(res.rdms.get_vectors(), movie.get_vectors(), atol=1e-10)


def test_model_conditions_matched_by_label_not_position(epochs, rng):
    """11.7: a model RDMs object whose conditions are in event_id order (not the data's sorted
    order) is reordered by its labels; on position alone the scores were silently wrong."""
    ids = [f"c{i}" for i in range(7)]
    models = rng.random((2, 21))  # in the data's (sorted) order
    event_order = [3, 0, 6, 1, 5, 2, 4]
    as_event_id = RDMs(reorder_vectors(models, np.array(event_order)),
                       pattern_descriptors={"stimulus_id": [ids[i] for i in event_order]})
    right = time_resolved(epochs, models, descriptor="stimulus_id").scores
    np.testing.assert_allclose(time_resolved(epochs, as_event_id, descriptor="stimulus_id").scores, right,
                               atol=1e-12)
    misaligned = time_resolved(epochs, as_event_id.get_vectors(), descriptor="stimulus_id").scores
    assert np.abs(misaligned - right).max() > 0.1  # what position alone gives
    wrong = RDMs(models, pattern_descriptors={"stimulus_id": ids[:6] + ["c9"]})
    with pytest.raises(ValueError, match=r"model_rdms and the data's conditions describe different conditions.*"
                                         r"\['c6'\].*\['c9'\]"):
        time_resolved(epochs, wrong, descriptor="stimulus_id")


def test_time_resolved_errors(rng, epochs):
    with pytest.raises(ValueError, match="time axis"):
        time_resolved(BrainData(rng.standard_normal((4, 3))), rng.random((1, 6)))
    with pytest.raises(ValueError, match="window"):
        time_resolved(BrainData(rng.standard_normal((4, 3, 5))), rng.random((1, 6)), window=9)
    with pytest.raises(TypeError, match="window must be an int"):
        time_resolved(BrainData(rng.standard_normal((4, 3, 5))), rng.random((1, 6)), window=2.0)
    with pytest.raises(ValueError, match="same conditions"):
        time_resolved(BrainData(rng.standard_normal((4, 3, 5))), rng.random((1, 10)))
    with pytest.raises(ValueError, match="Allowed values"):
        time_resolved(epochs, rng.random((1, 21)), descriptor="stimulus_id", window_mode="stack")
    with pytest.raises(ValueError, match="needs descriptor"):
        time_resolved(epochs, rng.random((1, 21)), rdm_method="crossnobis")
    # a condition whose pattern is constant at one time point: named with its time
    x = epochs.data.copy()
    x[epochs.samples["stimulus_id"].to_numpy() == "c2", :, 5] = 1.0
    flat = epochs.with_data(x)
    with pytest.raises(ValueError, match=r"condition 'c2' \(row 2 of the RDM\) is constant over channels at time 0.05 s"):
        time_resolved(flat, rng.random((1, 21)), descriptor="stimulus_id")
    x2 = epochs.data.copy()
    x2[epochs.samples["stimulus_id"].to_numpy() == "c4", :, 3:6] = 2.0
    with pytest.raises(ValueError, match=r"condition 'c4' \(row 4 of the RDM\) is constant over channels in the window "
                                         r"0.03-0.05 s"):
        time_resolved(epochs.with_data(x2), rng.random((1, 21)), descriptor="stimulus_id", window=3, step=3)
    bad = x.copy()
    bad[4, 2, 7] = np.nan
    with pytest.raises(ValueError, match="first at sample 4, channel 2, time point 7"):
        time_resolved(BrainData(bad, samples=epochs.samples, nan_policy="allow"), rng.random((1, 21)),
                      descriptor="stimulus_id")


def test_model_rdm_with_missing_pairs(epochs, rng):
    """13.2: a model RDM with missing (NaN) dissimilarities is compared on the pairs it has, with
    a warning in the caller's terms (no 'rdms_a and rdms_b')."""
    import warnings

    models = rng.random((2, 21))
    models[1, [3, 8]] = np.nan
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = time_resolved(epochs, models, descriptor="stimulus_id")
    msgs = [str(w.message) for w in rec]
    assert any("model_rdms and the data RDMs have missing values" in m for m in msgs), msgs
    assert not any("rdms_a" in m for m in msgs)
    data = res.rdms.get_vectors().copy()
    data[:, np.isnan(models[1])] = np.nan  # the reference: the same pairs missing on both sides
    ref = compare(models[1:], data, method="spearman")[0]
    np.testing.assert_allclose(res.scores[1], ref, atol=1e-12)
    np.testing.assert_allclose(res.scores[0], compare(models[:1], res.rdms.get_vectors())[0], atol=1e-12)
