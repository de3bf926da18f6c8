"""calc_rdm(): agreement with rsatoolbox, containers, chunking, properties, errors."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rsatoolbox.data import Dataset, prec_from_measurements, prec_from_residuals
from rsatoolbox.rdm import calc_rdm as rsa_calc_rdm

from brainalign import BrainData, Features
from brainalign.rsa import calc_rdm, noise_precision

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")


@pytest.fixture
def repeated(rng):
    n_cond, n_rep, n_ch = 6, 3, 12
    x = rng.standard_normal((n_cond * n_rep, n_ch))
    stim = np.tile([f"s{i}" for i in range(n_cond)], n_rep)
    run = np.repeat(np.arange(n_rep), n_cond)
    perm = rng.permutation(len(x))
    return x[perm], stim[perm], run[perm]


@pytest.mark.parametrize("method", ["euclidean", "correlation", "mahalanobis", "crossnobis"])
@pytest.mark.parametrize("noise_kind", [None, "full", "diag"])
@pytest.mark.parametrize("remove_mean", [False, True])
def test_equals_rsatoolbox(method, noise_kind, remove_mean, repeated):
    x, stim, run = repeated
    if method == "correlation" and remove_mean:
        pytest.skip("remove_mean has no effect on correlation")
    ds = Dataset(x, obs_descriptors={"stimulus_id": stim, "run": run})
    prec = prec_from_measurements(ds, "stimulus_id")
    noise = {None: None, "full": prec, "diag": np.diag(np.diag(prec))}[noise_kind]
    kw = dict(descriptor="stimulus_id", cv_descriptor="run" if method == "crossnobis" else None,
              remove_mean=remove_mean)
    ref = rsa_calc_rdm(ds, method=method, noise=noise, **kw)
    brain = BrainData(x, samples={"stimulus_id": stim, "run": run}, subject="s1")
    ours = calc_rdm(brain, method=method, noise=noise, device="cpu", chunk_size=5, **kw)
    np.testing.assert_allclose(ours.get_vectors(), ref.get_vectors(), atol=1e-10)
    assert list(ours.pattern_descriptors["stimulus_id"]) == list(ref.pattern_descriptors["stimulus_id"])
    assert ours.dissimilarity_measure == ref.dissimilarity_measure
    assert ours.rdm_descriptors["subject"] == ["s1"]


def test_no_descriptor_and_default_cv(repeated):
    x, stim, run = repeated
    ds = Dataset(x, obs_descriptors={"stimulus_id": stim})
    np.testing.assert_allclose(calc_rdm(x, method="euclidean").get_vectors(),
                               rsa_calc_rdm(ds, method="euclidean").get_vectors(), atol=1e-12)
    np.testing.assert_allclose(calc_rdm(ds, method="crossnobis", descriptor="stimulus_id").get_vectors(),
                               rsa_calc_rdm(ds, method="crossnobis", descriptor="stimulus_id").get_vectors(),
                               atol=1e-12)


def test_cosine_matches_scipy(rng):
    from scipy.spatial.distance import pdist

    x = rng.standard_normal((7, 30))
    np.testing.assert_allclose(calc_rdm(x, method="cosine").get_vectors()[0], pdist(x, "cosine"), atol=1e-12)


def test_noise_precision_matches_rsatoolbox(repeated, rng):
    x, stim, run = repeated
    ds = Dataset(x, obs_descriptors={"stimulus_id": stim})
    for method in ["shrinkage_diag", "shrinkage_eye", "diag"]:
        np.testing.assert_allclose(noise_precision(ds, descriptor="stimulus_id", method=method),
                                   prec_from_measurements(ds, "stimulus_id", method=method), atol=1e-8)
    res = rng.standard_normal((40, 5))
    np.testing.assert_allclose(noise_precision(res), prec_from_residuals(res), atol=1e-10)
    # noise given as an estimator name
    a = calc_rdm(ds, method="crossnobis", descriptor="stimulus_id", noise="shrinkage_diag")
    b = rsa_calc_rdm(ds, method="crossnobis", descriptor="stimulus_id", noise=prec_from_measurements(ds, "stimulus_id"))
    np.testing.assert_allclose(a.get_vectors(), b.get_vectors(), atol=1e-10)


def test_features_one_rdm_per_layer(rng):
    feats = Features({"l0": rng.standard_normal((5, 8)), "l1": rng.standard_normal((5, 3, 2))},
                     items=list("abcde"), provenance={"model_id": "toy"})
    rdms = calc_rdm(feats)
    assert rdms.n_rdm == 2
    assert list(rdms.rdm_descriptors["layer"]) == ["l0", "l1"]
    assert list(rdms.rdm_descriptors["model"]) == ["toy", "toy"]
    assert list(rdms.pattern_descriptors["stimulus_id"]) == list("abcde")


def test_chunking_bounded_and_equal(rng, monkeypatch):
    import brainalign.rsa._rdm as mod

    x = rng.standard_normal((20, 1000)).astype(np.float32)
    seen = []
    real = mod._block

    def spy(arr, sl, dev, tdt):
        seen.append(sl.stop - sl.start)
        return real(arr, sl, dev, tdt)

    monkeypatch.setattr(mod, "_block", spy)
    monkeypatch.setenv("BRAINALIGN_MEMORY_LIMIT", "200K")
    out = calc_rdm(x, method="correlation")
    assert max(seen) < 1000  # never the whole channel axis at once
    ref = 1 - np.corrcoef(x.astype(np.float64))[np.triu_indices(20, 1)]
    np.testing.assert_allclose(out.get_vectors()[0], ref, atol=1e-10)


def test_torch_input(rng):
    import torch

    x = rng.standard_normal((6, 9))
    np.testing.assert_allclose(calc_rdm(torch.from_numpy(x)).get_vectors(), calc_rdm(x).get_vectors())


@settings(max_examples=10, deadline=None)
@given(st.integers(3, 8), st.sampled_from(["euclidean", "correlation", "cosine"]), st.integers(0, 1000))
def test_rdm_symmetric_zero_diagonal(n, method, random_state):
    x = np.random.default_rng(random_state).standard_normal((n, 6))
    m = calc_rdm(x, method=method).get_matrices()[0]
    np.testing.assert_allclose(m, m.T)
    np.testing.assert_array_equal(np.diag(m), 0)
    assert (m[np.triu_indices(n, 1)] > -1e-12).all()


def test_errors(rng, repeated):
    x, stim, run = repeated
    brain = BrainData(x, samples={"stimulus_id": stim, "run": run})
    with pytest.raises(ValueError, match="Allowed values"):
        calc_rdm(x, method="corr")
    with pytest.raises(ValueError, match="needs descriptor"):
        calc_rdm(brain, method="crossnobis")
    with pytest.raises(KeyError, match="not a samples column"):
        calc_rdm(brain, descriptor="stim")
    with pytest.raises(ValueError, match="shape"):
        calc_rdm(brain, method="mahalanobis", noise=np.eye(3))
    with pytest.raises(ValueError, match="time axis"):
        calc_rdm(BrainData(rng.standard_normal((4, 3, 5))))
    with pytest.raises(TypeError, match="takes BrainData"):
        calc_rdm("data")
    with pytest.raises(ValueError, match="same number of repetitions"):
        calc_rdm(BrainData(x[:-1], samples={"stimulus_id": stim[:-1]}), method="crossnobis",
                 descriptor="stimulus_id")
    with pytest.raises(ValueError, match="no sample in cross-validation fold"):
        samples = pd.DataFrame({"stimulus_id": stim, "run": np.where(stim == "s0", 0, run)})
        calc_rdm(BrainData(x, samples=samples), method="crossnobis", descriptor="stimulus_id", cv_descriptor="run")
    with pytest.raises(ValueError, match="noise covariance .* singular"):
        noise_precision(rng.standard_normal((3, 10)), method="full")
    # many residuals, but two identical channels: singular whatever LAPACK's inv does
    twin = rng.standard_normal((200, 3))
    with pytest.raises(ValueError, match=r"singular \(rank 2 < 3"):
        noise_precision(np.column_stack([twin[:, :2], twin[:, 1]]), method="full")


# ------------------------------------------------------------------ bad input (issue 13.2)
def test_nan_or_inf_names_sample_and_channel(rng):
    x = rng.standard_normal((6, 10))
    x[2, 7] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN/inf value\(s\) in channels 0-9; the first at sample 2, channel 7"):
        calc_rdm(x)
    x[2, 7] = np.inf
    with pytest.raises(ValueError, match="sample 2, channel 7 .value inf"):
        calc_rdm(x, method="euclidean", chunk_size=3)
    brain = BrainData(x, nan_policy="allow", samples={"stimulus_id": list("aabbcc")})
    with pytest.raises(ValueError, match="sample 2, channel 7"):
        calc_rdm(brain, descriptor="stimulus_id")


def test_constant_and_zero_patterns_name_the_condition(rng):
    x = rng.standard_normal((5, 8))
    x[3] = 2.5  # constant over channels: correlation distance 0 / 0
    brain = BrainData(x, samples={"stimulus_id": ["a", "b", "c", "d", "e"]})
    with pytest.raises(ValueError, match=r"condition 'd' \(row 3 of the RDM\) is constant over channels"):
        calc_rdm(brain, descriptor="stimulus_id")
    with pytest.raises(ValueError, match=r"pattern of sample 3 is constant over channels"):
        calc_rdm(x, chunk_size=3)
    assert np.isfinite(calc_rdm(x, method="euclidean").get_vectors()).all()  # defined for euclidean
    assert np.isfinite(calc_rdm(x, method="cosine").get_vectors()).all()
    x[1] = 0.0  # all zero: undefined for cosine (and constant for correlation)
    with pytest.raises(ValueError, match=r"pattern of sample 1 is all zero: the cosine distance"):
        calc_rdm(x, method="cosine")
    # a nearly constant but genuine pattern is accepted
    x[1] = 1e3 + 1e-6 * rng.standard_normal(8)
    x[3] = rng.standard_normal(8)
    assert np.isfinite(calc_rdm(x).get_vectors()).all()


def test_degenerate_shapes_and_parameters(rng):
    with pytest.raises(ValueError, match=r"no channel \(shape \(4, 0\)\)"):
        calc_rdm(np.zeros((4, 0)))
    with pytest.raises(ValueError, match="at least 2 conditions; the data have 1"):
        calc_rdm(rng.standard_normal((1, 5)))
    brain = BrainData(rng.standard_normal((3, 5)), samples={"stimulus_id": ["a", "a", "a"]})
    with pytest.raises(ValueError, match=r"have 1 \(3 samples averaged by 'stimulus_id'\)"):
        calc_rdm(brain, descriptor="stimulus_id")
    for bad in (-1, 0, 2.5, True):
        with pytest.raises(ValueError, match=f"chunk_size must be a positive int .* got {bad!r}"):
            calc_rdm(rng.standard_normal((4, 5)), chunk_size=bad)
    with pytest.raises(TypeError, match="numeric data; got an array of dtype <U3"):
        calc_rdm(np.array([["1.0", "2.0"], ["3.0", "4.5"]]))
    with pytest.raises(TypeError, match="numeric data"):
        calc_rdm([["a", "b"], ["c", "d"]])
    feats = Features({"good": rng.standard_normal((3, 4)), "flat": np.ones((3, 4))}, items=list("abc"))
    with pytest.raises(ValueError, match=r"Layer 'flat' of the features: The patterns of sample 0, sample 1, sample 2 \(3 in all\) are constant"):
        calc_rdm(feats)


# ------------------------------------------------------------------ noise precision (issue 12)
def test_noise_precision_unbalanced_and_per_run_match_rsatoolbox(rng):
    from rsatoolbox.data import prec_from_residuals, prec_from_unbalanced

    n_ch = 6
    stim = np.array([f"s{i}" for i in [0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 4, 4, 4]])
    x = rng.standard_normal((stim.size, n_ch))
    ds = Dataset(x, obs_descriptors={"stimulus_id": stim})
    for method in ["shrinkage_diag", "shrinkage_eye", "diag", "full"]:
        np.testing.assert_allclose(noise_precision(ds, descriptor="stimulus_id", method=method),
                                   prec_from_unbalanced(ds, "stimulus_id", method=method), atol=1e-10)
    # one precision per run, from each run's own residuals
    run = np.repeat([0, 1, 2], 20)
    res = rng.standard_normal((60, n_ch)) * np.repeat([1.0, 3.0, 0.5], 20)[:, None]  # runs differ in noise
    brain = BrainData(res, samples={"run": run})
    per_run = noise_precision(brain, by="run")
    assert per_run.shape == (3, n_ch, n_ch)
    for r in range(3):
        np.testing.assert_allclose(per_run[r], prec_from_residuals(res[run == r]), atol=1e-10)
    assert np.trace(per_run[1]) < np.trace(per_run[0]) < np.trace(per_run[2])
    with pytest.raises(KeyError, match="by='session' is not a samples column"):
        noise_precision(brain, by="session")
    with pytest.raises(ValueError, match="dof must be a positive int"):
        noise_precision(res, dof=0)
    single = BrainData(x[:5], samples={"stimulus_id": list("abcde")})
    with pytest.raises(ValueError, match="single sample: the noise cannot be estimated from repetitions"):
        noise_precision(single, descriptor="stimulus_id")


def test_crossnobis_one_precision_per_run_equals_rsatoolbox(repeated, rng):
    x, stim, run = repeated
    brain = BrainData(x, samples={"stimulus_id": stim, "run": run})
    precs = noise_precision(brain, descriptor="stimulus_id", by="run", method="shrinkage_eye")
    assert precs.shape == (3, 12, 12)
    ds = Dataset(x, obs_descriptors={"stimulus_id": stim, "run": run})
    ref = rsa_calc_rdm(ds, method="crossnobis", descriptor="stimulus_id", cv_descriptor="run", noise=list(precs))
    ours = calc_rdm(brain, method="crossnobis", descriptor="stimulus_id", cv_descriptor="run", noise=precs)
    np.testing.assert_allclose(ours.get_vectors(), ref.get_vectors(), atol=1e-10)
    with pytest.raises(ValueError, match=r"one per fold \(3, 12, 12\)"):
        calc_rdm(brain, method="crossnobis", descriptor="stimulus_id", cv_descriptor="run", noise=precs[:2])
