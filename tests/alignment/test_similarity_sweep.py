"""The measures of brainalign.similarity as sweep methods: numbers, direction, ceilings, statistics, cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainalign import Features, similarity
from brainalign.alignment import (
    METHOD_DEFAULTS,
    METHODS,
    SIMILARITY_COLUMNS,
    SIMILARITY_METHODS,
    assign_layers,
    sweep,
)


def _roi_means(bd, roi, items):
    """Reference ROI matrix: mean over presentations of each stimulus (pandas), rows in ``items`` order."""
    sel = bd.select(roi=roi)
    df = pd.DataFrame(np.asarray(sel.data))
    df["stim"] = sel.samples["stimulus_id"].astype(str).to_numpy()
    return df.groupby("stim").mean().loc[[str(i) for i in items]].to_numpy()


def test_every_measure_is_a_sweep_method_with_registry_options():
    assert set(SIMILARITY_METHODS) == set(similarity.MEASURES) - {"rsa", "trsa"}
    assert set(METHODS) == {"encoding", "rsa", "trsa", "banded", "trf", *SIMILARITY_METHODS}
    for name in SIMILARITY_METHODS:
        opts = METHOD_DEFAULTS[name]
        assert {k: opts[k] for k in similarity.MEASURES[name].parameters} == similarity.MEASURES[name].parameters
        assert {"ceiling_splits", "spearman_brown", "time_window", "device"} <= set(opts)
    assert "distance" not in METHOD_DEFAULTS["procrustes-angular"]  # fixed by the name


def test_values_match_the_similarity_room(toy_features, toy_brains):
    brains = {s: toy_brains[s] for s in ("sub-0", "sub-1")}
    table = sweep(toy_features, brains, methods=["cka", "procrustes-angular", "procrustes-euclidean"],
                  rois=["mid"], n_resamples=0, n_permutations=0, **{"procrustes-angular": {"alpha": 0.5}})
    items = toy_features.items
    layers = [np.asarray(toy_features[lay]) for lay in toy_features.layer_names]
    assert list(table.columns[-5:]) == [*SIMILARITY_COLUMNS, "n_conditions", "n_channels"]
    for (method, subj), g in table.groupby(["method", "subject"]):
        Y = _roi_means(brains[subj], "mid", items)
        params = {"alpha": 0.5} if method == "procrustes-angular" else {}
        raw = similarity.pairwise(layers, [Y], method=method, device="cpu", **params)[:, 0]
        np.testing.assert_allclose(g["raw_score"], raw, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(g["score"], similarity.to_score(raw, method), rtol=1e-10, atol=1e-12)
        m = similarity.MEASURES[method]
        assert (g["metric"] == method).all() and (g["raw_kind"] == m.kind).all()
        assert (g["score_transform"] == m.score).all()
        assert (g["n_conditions"] == len(items)).all() and (g["n_channels"] == Y.shape[1]).all()
    # the generating layer of "mid" (l2) has the smallest distance and the highest score
    for method, g in table[table["subject"] == "sub-0"].groupby("method"):
        assert g.loc[g["score"].idxmax(), "layer"] == "l2", method
        if method != "cka":
            assert g.loc[g["raw_score"].idxmin(), "layer"] == "l2", method


def test_ceiling_is_the_split_half_ceiling_of_the_repeats(toy_features, toy_brains):
    from brainalign.alignment._similarity_units import _seed

    bd = toy_brains["sub-0"]
    table = sweep(toy_features, bd, methods=["cka", "procrustes-angular", "bures_distance"], rois=["late"],
                  n_resamples=0, n_permutations=0, cka={"ceiling_splits": 6},
                  **{"procrustes-angular": {"ceiling_splits": 6}, "bures_distance": {"ceiling_splits": 6}})
    sel = bd.select(roi="late")
    for method, g in table.groupby("method"):
        ref = similarity.split_half_ceiling(np.asarray(sel.data), sel.samples["stimulus_id"].astype(str).to_numpy(),
                                            method=method, n_splits=6, device="cpu",
                                            random_state=_seed(0, "ceiling", method, bd.subject, "late"))
        assert np.allclose(g["ceiling"], ref.ceiling, rtol=1e-10)
        expected = similarity.normalize_score(g["score"].to_numpy(), ref.ceiling, method)
        np.testing.assert_allclose(g["normalized_score"], expected, rtol=1e-10)
    # distances: the ceiling is on the score scale (cos of the angle; minus the Bures distance)
    ang = table[table["method"] == "procrustes-angular"]
    assert 0 < ang["ceiling"].iloc[0] <= 1 and ang["normalized_score"].notna().all()
    bures = table[table["method"] == "bures_distance"]
    assert (bures["ceiling"] < 0).all() and bures["normalized_score"].isna().all()


def test_distance_measures_end_to_end_direction_p_best_and_p(toy_features, toy_brains):
    """A distance measure must crown the *closest* layer and give it a small p-value; a pure-noise layer
    gets a large p. Scoring raw distances as if higher were better fails every line below."""
    rng = np.random.default_rng(5)
    arrays = {lay: np.asarray(toy_features[lay]) for lay in toy_features.layer_names}
    arrays["noise"] = rng.standard_normal((toy_features.n_items, 16))
    feats = Features(arrays, items=toy_features.items, provenance={"model_id": "toy"})
    brains = {s: toy_brains[s] for s in ("sub-0", "sub-1")}
    table = sweep(feats, brains, methods=["procrustes-angular", "procrustes-euclidean", "cka-angular"],
                  rois=["early"], n_resamples=60, n_permutations=60, random_state=3)
    for (method, subj), g in table.groupby(["method", "subject"]):
        g = g.set_index("layer")
        assert g["raw_score"].idxmin() == "l0" and g["score"].idxmax() == "l0", (method, subj)
        assert g.loc["l0", "p_best"] > 0.9 and g["p_best"].sum() == pytest.approx(1.0)
        assert g.loc["l0", "p"] <= 1 / 61 + 1e-12  # no relabelling of the stimuli comes close
        assert g.loc["noise", "p"] > 0.1
        assert g.loc["l0", "ci_low"] <= g.loc["l0", "ci_high"]
    best = assign_layers(table)
    assert (best["best_layer"] == "l0").all()


def test_p_best_and_intervals_come_from_replicates_shared_by_every_subject(toy_features, toy_brains):
    table = sweep(toy_features, toy_brains, methods=["cka-hsic_song"], rois=["late"], n_resamples=40,
                  n_permutations=0, random_state=1)
    reps = table.attrs["replicates"]
    assert len(reps) == 3
    draws = {reps[k].draws for k in reps}
    assert len(draws) == 1  # the same stimulus draws for every subject
    for subj, g in table.groupby("subject"):
        samples = reps[f"cka-hsic_song|toy|{subj}|late"].samples
        assert samples.shape == (40, 5)
        np.testing.assert_allclose(g["p_best"], np.bincount(samples.argmax(1), minlength=5) / 40)
        np.testing.assert_allclose(g["ci_low"], np.quantile(samples, 0.025, axis=0))
    # the replicates are the room's bootstrap on the matched matrices
    Y = _roi_means(toy_brains["sub-2"], "late", toy_features.items)
    layers = [np.asarray(toy_features[lay]) for lay in toy_features.layer_names]
    from brainalign.alignment._similarity_units import _items_digest, _seed

    seed = _seed(1, "similarity-draws", _items_digest([str(i) for i in toy_features.items]))
    ref = similarity.bootstrap(layers, [Y], method="cka-hsic_song", n_resamples=40, random_state=seed, device="cpu")
    np.testing.assert_allclose(reps["cka-hsic_song|toy|sub-2|late"].samples, ref.samples[:, :, 0], rtol=1e-10)


def test_stochastic_measure_uses_the_repeats(toy_features, toy_brains):
    bd = toy_brains["sub-0"]
    table = sweep(toy_features, bd, methods=["stochastic-gaussian"], rois=["late"], n_resamples=0, n_permutations=0,
                  **{"stochastic-gaussian": {"ceiling_splits": 3}})
    assert table.loc[table["score"].idxmax(), "layer"] == "l4"
    sel = bd.select(roi="late")
    ids = sel.samples["stimulus_id"].astype(str).to_numpy()
    Y = np.stack([np.asarray(sel.data)[ids == str(i)] for i in toy_features.items], axis=1)  # (4, n, p)
    X = np.asarray(toy_features["l4"])
    raw = similarity.compare(np.stack([X, X]), Y, method="stochastic-gaussian", device="cpu")
    assert table.set_index("layer").loc["l4", "raw_score"] == pytest.approx(raw, rel=1e-8)
    assert np.isfinite(table["ceiling"]).all() and table["normalized_score"].isna().all()
    one = bd.select(samples=(bd.samples["repetition"] == 0).to_numpy())
    with pytest.raises(ValueError, match=r"stochastic measures need every stimulus presented at least twice"):
        sweep(toy_features, one, methods=["stochastic-energy"], rois=["late"], n_resamples=0, n_permutations=0)


def test_cache_keeps_the_replicates(toy_features, toy_brains, tmp_path, monkeypatch):
    from brainalign.alignment import _sweep

    brains = {s: toy_brains[s] for s in ("sub-0", "sub-1")}
    kw = dict(methods=["mutual_knn"], rois=["early"], n_resamples=10, n_permutations=5, cache_dir=tmp_path,
              mutual_knn={"k": 5})
    first = sweep(toy_features, brains, **kw)
    monkeypatch.setattr(_sweep, "run_unit", lambda spec: (_ for _ in ()).throw(AssertionError("recomputed")))
    again = sweep(toy_features, brains, **kw)
    assert again.attrs["n_cached"] == 2
    pd.testing.assert_frame_equal(again, first)
    for key in first.attrs["replicates"]:
        np.testing.assert_array_equal(again.attrs["replicates"][key].samples, first.attrs["replicates"][key].samples)
        assert again.attrs["replicates"][key].draws == first.attrs["replicates"][key].draws


def test_errors(toy_features, toy_brains):
    import rsatoolbox

    bd = toy_brains["sub-0"]
    kw = dict(rois=["early"], n_resamples=0, n_permutations=0)
    with pytest.raises(ValueError, match=r"Unknown cka-rbf option\(s\) \['k'\]; allowed: .*'sigma'"):
        sweep(toy_features, bd, methods=["cka-rbf"], **{"cka-rbf": {"k": 3}}, **kw)
    with pytest.raises(ValueError, match=r"Unknown procrustes-angular option\(s\) \['distance'\]"):
        sweep(toy_features, bd, methods=["procrustes-angular"], **{"procrustes-angular": {"distance": "x"}}, **kw)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['ckaa'\].*similarity measure"):
        sweep(toy_features, bd, methods=["cka"], ckaa={}, **kw)
    with pytest.raises(ValueError, match=r"Invalid value for the 'methods'.*'cka'"):
        sweep(toy_features, bd, methods=["ckaa"], **kw)
    rdms = rsatoolbox.rdm.RDMs(np.random.default_rng(0).random((1, 6)),
                               pattern_descriptors={"stimulus_id": list(toy_features.items[:4])},
                               rdm_descriptors={"subject": ["s1"], "roi": ["early"]})
    with pytest.raises(ValueError, match=r"'cka' compares response matrices; subject 's1' ROI 'early' is given as RDMs"):
        sweep(toy_features, rdms, methods=["cka"], n_resamples=0, n_permutations=0)
    model_rdms = rsatoolbox.rdm.RDMs(np.random.default_rng(0).random((1, 1128)),
                                     pattern_descriptors={"stimulus_id": list(toy_features.items)},
                                     rdm_descriptors={"layer": ["l0"]})
    with pytest.raises(ValueError, match=r"'cka' needs feature arrays; model 'model' is given as RDMs"):
        sweep(model_rdms, bd, methods=["cka"], **kw)
    with pytest.raises(ValueError, match=r"k=500 neighbours requested.*n_stimuli=48"):  # the room checks values
        sweep(toy_features, bd, methods=["mutual_knn"], mutual_knn={"k": 500}, **kw)
