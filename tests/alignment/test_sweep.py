"""alignment.sweep: ground truth recovery, caching/resume, Dask = local, input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainalign.alignment import RESULT_COLUMNS, assign_layers, preferred_depth, sweep, voxel_scores


def test_rsa_sweep_recovers_generating_layer(toy_features, toy_brains):
    table = sweep(toy_features, toy_brains, methods=["rsa"], n_resamples=50, n_permutations=50, verbose=False)
    assert list(table.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert len(table) == 5 * 3 * 3  # layers x subjects x ROIs
    best = assign_layers(table, n_resamples=200)
    truth = {"early": "l0", "mid": "l2", "late": "l4"}
    for _, row in best.iterrows():
        assert row["best_layer"] == truth[row["roi"]], row.to_dict()
    across = best[best["subject"] == "all"].set_index("roi")
    assert across.loc["late", "p_best"] > 0.9
    # the ceiling is above every score and normalized = score / ceiling
    assert (table["ceiling"] >= table["score"]).all()
    np.testing.assert_allclose(table["normalized_score"], table["score"] / table["ceiling"])
    assert ((table["ci_low"] <= table["score"]) & (table["score"] <= table["ci_high"])).all()
    assert (table.loc[table["layer"] == table["roi"].map(truth), "p"] < 0.05).all()
    pref = preferred_depth(table).query("subject == 'all'").set_index("roi")["preferred_depth"]
    assert pref["early"] < pref["mid"] < pref["late"]


def test_rsa_scores_match_rsatoolbox(toy_features, toy_brains):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    bd = toy_brains["sub-0"].select(roi="mid")
    table = sweep(toy_features, bd, methods=["rsa"], n_resamples=0, n_permutations=0, verbose=False)
    avg = bd.average_repetitions("stimulus_id")
    ds_b = rsatoolbox.data.Dataset(avg.data)
    rdm_b = rsatoolbox.rdm.calc_rdm(ds_b, method="correlation")
    for lay in toy_features.layer_names:
        rdm_m = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(toy_features[lay]), method="correlation")
        ref = rsatoolbox.rdm.compare(rdm_m, rdm_b, method="corr")[0, 0]
        got = table.loc[table["layer"] == lay, "score"].item()
        assert got == pytest.approx(ref, abs=1e-6)


def test_precomputed_rdms_and_single_subject_ceiling(toy_features, toy_brains):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    from brainalign.rsa import calc_rdm

    model = rsatoolbox.rdm.concat([calc_rdm(toy_features[lay], method="correlation") for lay in toy_features])
    model.rdm_descriptors["layer"] = np.array(toy_features.layer_names)
    model.pattern_descriptors["stimulus_id"] = np.array(toy_features.items)
    bd = toy_brains["sub-1"].select(roi="late")
    sessions = []
    for rep in range(4):
        sub = bd.select(repetition=rep)
        r = calc_rdm(sub.data, method="correlation")
        sessions.append(r.get_matrices()[0])
    brain = rsatoolbox.rdm.RDMs(np.stack(sessions), rdm_descriptors={"subject": ["m1"] * 4},
                                pattern_descriptors={"stimulus_id": np.array(bd.samples["stimulus_id"][:48])})
    table = sweep({"toy": model}, {"IT": brain}, methods=["rsa"], n_resamples=20, n_permutations=20, verbose=False)
    assert set(table["roi"]) == {"IT"} and set(table["subject"]) == {"m1"}
    assert table["ceiling"].notna().all() and (table["ceiling_low"] <= table["ceiling"]).all()
    assert assign_layers(table)["best_layer"].item() == "l4"


def test_cache_resumes_interrupted_sweep(toy_features, toy_brains, tmp_path, monkeypatch):
    from brainalign.alignment import _sweep

    real = _sweep.run_unit
    calls = {"n": 0}

    def flaky(spec):
        calls["n"] += 1
        if calls["n"] > 4:
            raise KeyboardInterrupt("simulated interruption")
        return real(spec)

    monkeypatch.setattr(_sweep, "run_unit", flaky)
    kw = dict(methods=["rsa"], n_resamples=10, n_permutations=10, verbose=False, cache_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        sweep(toy_features, toy_brains, **kw)
    assert len(list(tmp_path.glob("*.json"))) == 4
    monkeypatch.setattr(_sweep, "run_unit", real)
    resumed = sweep(toy_features, toy_brains, **kw)
    assert resumed.attrs["n_cached"] == 4 and resumed.attrs["n_units"] == 9
    fresh = sweep(toy_features, toy_brains, **{**kw, "cache_dir": None})
    pd.testing.assert_frame_equal(resumed, fresh)
    # changing an option changes the key: nothing is read from the cache
    other = sweep(toy_features, toy_brains, **{**kw, "rsa": {"compare": "spearman"}})
    assert other.attrs["n_cached"] == 0


def test_threads_equal_serial(toy_features, toy_brains):
    kw = dict(methods=["rsa"], n_resamples=10, n_permutations=10, verbose=False)
    pd.testing.assert_frame_equal(sweep(toy_features, toy_brains, n_jobs=2, **kw), sweep(toy_features, toy_brains, **kw))


@pytest.mark.slow
def test_dask_localcluster_equals_local(toy_features, toy_brains):
    distributed = pytest.importorskip("distributed")
    kw = dict(methods=["rsa"], n_resamples=10, n_permutations=10, verbose=False)
    local = sweep(toy_features, toy_brains, **kw)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        remote = sweep(toy_features, toy_brains, client=client, **kw)
    pd.testing.assert_frame_equal(remote, local)


def test_errors(toy_features, toy_brains):
    with pytest.raises(ValueError, match="Allowed values are 'encoding', 'rsa', 'trsa'"):
        sweep(toy_features, toy_brains, methods=["rsaa"], verbose=False)
    with pytest.raises(TypeError, match="unexpected keyword"):
        sweep(toy_features, toy_brains, methods=["rsa"], rsa_options={}, verbose=False)
    with pytest.raises(ValueError, match="Unknown rsa option"):
        sweep(toy_features, toy_brains, methods=["rsa"], rsa={"comapre": "corr"}, verbose=False)
    with pytest.raises(KeyError, match="Unknown ROI 'lat'"):
        sweep(toy_features, toy_brains, methods=["rsa"], rois=["lat"], verbose=False)
    with pytest.raises(KeyError, match="Unknown subject"):
        sweep(toy_features, toy_brains, methods=["rsa"], subjects=["sub-9"], verbose=False)
    with pytest.raises(TypeError, match="features must be"):
        sweep(np.zeros((3, 3)), toy_brains, methods=["rsa"], verbose=False)
    with pytest.raises(TypeError, match="brain must be"):
        sweep(toy_features, np.zeros((3, 3)), methods=["rsa"], verbose=False)
    with pytest.raises(ValueError, match="no 'nope' column"):
        sweep(toy_features, toy_brains, methods=["rsa"], stimulus_key="nope", verbose=False)
    with pytest.raises(ValueError, match="pass stimuli="):
        class Extractor:
            def extract(self, stimuli):
                raise AssertionError
        sweep({"m": Extractor()}, toy_brains, methods=["rsa"], verbose=False)
    with pytest.raises(KeyError, match="layer of model"):
        sweep(toy_features, toy_brains, methods=["rsa"], layers=["l9"], verbose=False)
    with pytest.raises(ValueError, match="n_resamples must be"):
        sweep(toy_features, toy_brains, methods=["rsa"], n_resamples=-1, verbose=False)
    with pytest.raises(TypeError, match="dask.distributed.Client"):
        sweep(toy_features, toy_brains, methods=["rsa"], client=object(), verbose=False)


def test_encoding_and_trsa_recover_generating_layer(toy_features):
    from brainalign.datasets import simulate_responses

    bd = simulate_responses(toy_features, rois={"early": "l0", "late": "l4"}, n_channels=40, snr=1.0,
                            n_repeats=4, random_state=3).brain
    table = sweep(toy_features, bd, methods=["encoding", "trsa"], n_resamples=30, n_permutations=30, verbose=False,
                  encoding={"alphas": [0.1, 1.0, 10.0, 100.0], "ceiling_by": "stimulus_id"})
    assert isinstance(table, pd.DataFrame)
    best = assign_layers(table).set_index(["method", "roi"])["best_layer"]
    assert best[("encoding", "early")] == "l0" and best[("encoding", "late")] == "l4"
    assert best[("trsa", "early")] == "l0" and best[("trsa", "late")] == "l4"
    enc = table[table["method"] == "encoding"]
    assert (enc["metric"] == "pearson_r").all() and (enc["ceiling"] > enc["score"]).all()
    assert ((enc["ci_low"] <= enc["score"]) & (enc["score"] <= enc["ci_high"])).all()
    vs = voxel_scores(table, model="toy", subject=bd.subject or "sub-01", roi="late")
    assert vs is table.attrs["voxel_scores"][f"toy|{bd.subject or 'sub-01'}|late"]
    assert table[table["method"] == "encoding"].attrs["voxel_scores"] is table.attrs["voxel_scores"]  # not copied
    assert vs.shape == (5, 20) and (vs.argmax(0) == 4).mean() > 0.8


def test_encoding_ceiling_is_single_presentation_ceiling(toy_features):
    """The scored quantity is r on single presentations: its ceiling is truth.noise_ceiling,
    not the (higher) ceiling of the mean of the repeats."""
    from brainalign.datasets import simulate_responses

    sim = simulate_responses(toy_features, rois={"early": "l0", "late": "l4"}, n_channels=40, snr=0.5,
                             n_repeats=4, random_state=3)
    bd, truth = sim.brain, sim
    table = sweep(toy_features, bd, methods=["encoding"], n_resamples=0, n_permutations=0, verbose=False,
                  encoding={"alphas": [0.1, 1.0, 10.0, 100.0], "ceiling_by": "stimulus_id"})
    roi_of = bd.channels["roi"].to_numpy()
    for roi, layer in (("early", "l0"), ("late", "l4")):
        ceiling_true = truth.noise_ceiling[roi_of == roi].mean()  # sqrt(0.5 / 1.5) = 0.577
        assert truth.noise_ceiling_mean[roi_of == roi].mean() - ceiling_true > 0.2  # the two conventions differ
        rows = table[table["roi"] == roi]
        assert rows["ceiling"].nunique() == 1
        assert rows["ceiling"].iloc[0] == pytest.approx(ceiling_true, abs=0.04)
        best = rows.set_index("layer").loc[layer]
        assert best["normalized_score"] == pytest.approx(best["score"] / ceiling_true, abs=0.06)
        assert 0.75 < best["normalized_score"] <= 1.0  # the generating layer gets near the ceiling
    with pytest.raises(ValueError, match="ceiling_by='trial' is not a samples column"):
        sweep(toy_features, bd, methods=["encoding"], n_resamples=0, n_permutations=0, verbose=False,
              encoding={"ceiling_by": "trial"})
    once = bd.select(samples=(bd.samples["repetition"] < 1).to_numpy())  # every stimulus presented once
    with pytest.raises(ValueError, match="presented at least twice"):
        sweep(toy_features, once, methods=["encoding"], n_resamples=0, n_permutations=0, verbose=False,
              encoding={"ceiling_by": "stimulus_id"})


def test_encoding_with_two_runs_falls_back_to_kfold_inner_cv(toy_features, monkeypatch, caplog):
    from brainalign.datasets import simulate_responses
    import brainalign.encoding

    sim = simulate_responses(toy_features, rois={"early": "l0", "late": "l4"}, n_channels=20, snr=2.0,
                             n_repeats=2, random_state=1)
    bd = sim.brain
    assert bd.samples["run"].nunique() == 2
    kw = dict(methods=["encoding"], n_resamples=0, n_permutations=0, verbose=False)
    # the default holds out stimuli: two runs are enough, no fallback
    with caplog.at_level("WARNING", logger="brainalign"):
        table = sweep(toy_features, bd, encoding={"alphas": [1.0, 10.0, 100.0]}, **kw)
    assert "contiguous folds" not in caplog.text
    best = assign_layers(table).set_index("roi")["best_layer"]
    assert best["early"] == "l0" and best["late"] == "l4"
    # leaving runs out on repeated stimuli must be asked for knowingly; then the fallback
    run_wise = {"alphas": [1.0, 10.0, 100.0], "outer_cv": "run", "shared_stimuli": "warn"}
    with caplog.at_level("WARNING", logger="brainalign"), pytest.warns(UserWarning, match="test stimuli that their"):
        sweep(toy_features, bd, encoding=run_wise, **kw)
    assert "contiguous folds within that run" in caplog.text

    # impossible settings fail up front, before any model is fitted
    def never(*args, **kwargs):
        raise AssertionError("computed before the inputs were checked")

    monkeypatch.setattr(brainalign.encoding, "cross_validate_encoding", never)
    with pytest.raises(ValueError, match=r"folds test stimuli that their training set also holds.*shared_stimuli='warn'"):
        sweep(toy_features, bd, encoding={"outer_cv": "run"}, **kw)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"2 runs.*inner_cv='run' cannot leave a run out"):
        sweep(toy_features, bd, encoding={"inner_cv": "run", "outer_cv": "run", "shared_stimuli": "warn"}, **kw)
    one = bd.select(samples=(bd.samples["run"] == 0).to_numpy())
    with pytest.raises(ValueError, match=r"have 1 run\(s\).*outer_cv='run' cannot be built.*at least 2 runs"):
        sweep(toy_features, one, encoding={"outer_cv": "run"}, **kw)
    with pytest.raises(ValueError, match=r"subject 'simulated' ROI 'early'.*Stimulus fold 0 has .* training"):
        sweep(toy_features, one, encoding={"gap": 40}, **kw)


def test_fully_cached_rerun_computes_nothing(toy_features, toy_brains, tmp_path, monkeypatch):
    import brainalign.encoding
    import brainalign.features
    from brainalign.alignment import _sweep

    brains = {s: toy_brains[s] for s in ("sub-0", "sub-1")}
    kw = dict(methods=["rsa", "encoding"], rois=["early", "late"], n_resamples=5, n_permutations=5, verbose=False,
              cache_dir=tmp_path, encoding={"alphas": [1.0, 100.0], "ceiling_by": "stimulus_id"})
    first = sweep(toy_features, brains, **kw)
    assert first.attrs["n_cached"] == 0

    def expensive(*args, **kwargs):
        raise AssertionError("recomputed although every unit is cached")

    import brainalign.rsa

    from brainalign.alignment import _design

    for mod, name in ((brainalign.rsa, "calc_rdm"), (_sweep, "_rsa_brain"), (_sweep, "_rsa_ceiling"),
                      (_design, "encoding_ceiling"), (_design, "build_design"), (_design, "boot_units"),
                      (_design, "responses"), (brainalign.features, "align_to"),
                      (_sweep, "run_unit"), (brainalign.encoding, "cross_validate_encoding")):
        monkeypatch.setattr(mod, name, expensive)
    again = sweep(toy_features, brains, **kw)
    assert again.attrs["n_cached"] == again.attrs["n_units"] == 2 * 2 * 2
    pd.testing.assert_frame_equal(again, first)
    # new brain data changes the key of its units (and, for RSA, of the other subjects of the ROI:
    # the ceiling and the shared stimuli depend on them): those are recomputed
    monkeypatch.undo()
    changed = dict(brains, **{"sub-1": toy_brains["sub-2"]})
    third = sweep(toy_features, changed, **kw)
    assert third.attrs["n_cached"] == 2  # the encoding units of sub-0


def test_units_use_shared_bootstrap_and_permutations_paired_across_layers(toy_features, toy_brains, monkeypatch):
    import brainalign.rsa
    import brainalign.stats

    calls = {"rsa": [], "boot": [], "perm": []}

    def spy(name, fn, seed_arg):
        def wrapped(*args, **kwargs):
            out = fn(*args, **kwargs)
            calls[name].append((kwargs[seed_arg], out))
            return out
        return wrapped

    monkeypatch.setattr(brainalign.rsa, "bootstrap", spy("rsa", brainalign.rsa.bootstrap, "random_state"))
    monkeypatch.setattr(brainalign.stats, "bootstrap_ci", spy("boot", brainalign.stats.bootstrap_ci, "random_state"))
    monkeypatch.setattr(brainalign.stats, "permutation_test",
                        spy("perm", brainalign.stats.permutation_test, "random_state"))
    bd = toy_brains["sub-0"].select(roi="late")
    table = sweep(toy_features, bd, methods=["rsa", "encoding"], n_resamples=40, n_permutations=30, verbose=False,
                  encoding={"alphas": [1.0, 100.0]})
    n_layers = len(toy_features.layer_names)
    # RSA: one call scores every layer on the same stimulus draws
    assert len(calls["rsa"]) == 1
    samples = calls["rsa"][0][1].samples
    rsa = table[table["method"] == "rsa"]
    np.testing.assert_allclose(rsa["ci_low"], np.nanquantile(samples, 0.025, axis=0))
    np.testing.assert_allclose(rsa["p_best"], np.bincount(samples.argmax(1), minlength=n_layers) / len(samples))
    # encoding: one call per layer and outer fold; within a fold every layer gets the same random_state
    # (paired draws, the same shifts); the ROI score and its replicates are means over the folds
    enc = table[table["method"] == "encoding"]
    n_folds = int(enc["n_folds"].iloc[0])
    for name in ("boot", "perm"):
        assert len(calls[name]) == n_layers * n_folds
        states = np.array([random_state for random_state, _ in calls[name]]).reshape(n_layers, n_folds)
        assert (states == states[0]).all() and len(set(states[0])) == n_folds
    dist = np.stack([out.distribution for _, out in calls["boot"]]).reshape(n_layers, n_folds, -1).mean(1).T
    dist = dist + (enc["score"].to_numpy() - dist.mean(0))  # re-centred on the score
    np.testing.assert_allclose(enc["ci_high"], np.quantile(dist, 0.975, axis=0))
    np.testing.assert_allclose(enc["p_best"], np.bincount(dist.argmax(1), minlength=n_layers) / len(dist))
    null = np.stack([out.null.mean(1) for _, out in calls["perm"]]).reshape(n_layers, n_folds, -1).mean(1).T
    np.testing.assert_allclose(enc["p"], (1 + (null >= enc["score"].to_numpy()[None]).sum(0)) / (1 + len(null)))
    # the score is the mean over folds of the per-fold r (bootstrap_ci's observed means)
    observed = np.array([out.mean for _, out in calls["boot"]]).reshape(n_layers, n_folds).mean(1)
    np.testing.assert_allclose(enc["score"], observed, rtol=1e-5)


def test_cached_table_round_trips_with_identical_dtypes(toy_features, toy_brains, tmp_path):
    """NaN columns (no permutations: p; one subject: RSA ceiling) come back as float64, not object."""
    bd = toy_brains["sub-0"]
    kw = dict(methods=["rsa", "encoding"], rois=["early"], n_resamples=0, n_permutations=0, verbose=False,
              cache_dir=tmp_path, encoding={"alphas": [1.0, 100.0]})
    first = sweep(toy_features, bd, **kw)
    assert first["p"].isna().all() and first["ci_low"].isna().all() and first["p_best"].isna().all()
    again = sweep(toy_features, bd, **kw)
    assert again.attrs["n_cached"] == again.attrs["n_units"] == 2
    pd.testing.assert_frame_equal(again, first, check_dtype=True)
    for col in ("score", "ceiling", "normalized_score", "ci_low", "ci_high", "p", "p_best", "ceiling_low"):
        assert again[col].dtype == np.float64, col
    assert again["layer_index"].dtype == np.int64
    # the per-channel scores come back from the cache too
    key = f"toy|{bd.subject}|early"
    np.testing.assert_array_equal(voxel_scores(again)[key], voxel_scores(first)[key])


def test_empty_roi_warns_once_for_all_subjects(toy_features, toy_brains):
    rois = {"early": {"roi": "early"}, "nowhere": {"roi": "V9"}}
    with pytest.warns(UserWarning) as record:
        table = sweep(toy_features, toy_brains, methods=["rsa"], rois=rois, n_resamples=0, n_permutations=0)
    messages = [str(w.message) for w in record if "match no channel" in str(w.message)]
    assert len(messages) == 1 and "ROI 'nowhere': all 3 subject(s)" in messages[0]
    assert set(table["roi"]) == {"early"}


def test_voxel_scores_errors(toy_features, toy_brains):
    with pytest.raises(TypeError, match="needs the DataFrame returned by sweep"):
        voxel_scores({})
    with pytest.raises(ValueError, match="holds no voxel scores"):
        voxel_scores(pd.DataFrame({"a": [1]}))
    table = sweep(toy_features, toy_brains["sub-0"], methods=["rsa"], rois=["early"], n_resamples=0, n_permutations=0)
    assert len(voxel_scores(table)) == 0  # RSA has none
    with pytest.raises(ValueError, match="together"):
        voxel_scores(table, model="toy")
    with pytest.raises(KeyError, match="No voxel scores for 'toy|x|y'"):
        voxel_scores(table, model="toy", subject="x", roi="y")
