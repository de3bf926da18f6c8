"""Group-level inference on sweep tables: compare_layers, group_p_best, assign_layers across subjects."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from brainalign import stats
from brainalign.alignment import (
    CORRECTIONS,
    GROUP_TESTS,
    UnitReplicates,
    assign_layers,
    compare_layers,
    group_p_best,
    sweep,
)


def _table(S, R=None, n_stimuli=None, method="cka", model="m"):
    """A sweep-like table of scores S (n_datasets, n_subjects, n_layers): one ROI per data set."""
    n_d, n_s, n_l = S.shape
    rows = [dict(model=model, layer=f"l{k}", layer_index=k, layer_depth=k / max(1, n_l - 1), subject=f"s{s}",
                 roi=f"r{d}", method=method, score=float(S[d, s, k]))
            for d in range(n_d) for s in range(n_s) for k in range(n_l)]
    df = pd.DataFrame(rows)
    if R is not None:
        df.attrs["replicates"] = UnitReplicates({
            f"{method}|{model}|s{s}|r{d}": dict(samples=R[d, s], draws="same", n_stimuli=n_stimuli)
            for d in range(n_d) for s in range(n_s)})
    return df


def _interval(n, p=0.05, level=0.99):
    lo, hi = binom.interval(level, n, p)
    return lo / n, hi / n


def test_constants_are_those_of_stats():
    S = np.random.default_rng(0).standard_normal((6, 3))
    for correction in CORRECTIONS:
        stats.pairwise_comparisons(S, correction=correction)
    for test in GROUP_TESTS[:2]:
        stats.pairwise_comparisons(S, test=test)


def test_matches_stats_pairwise_comparisons():
    rng = np.random.default_rng(1)
    S = rng.normal([0.3, 0.32, 0.4], 0.05, size=(1, 9, 3))
    df = _table(S)
    out = compare_layers(df, test="t", correction="fdr_bh")
    ref = stats.pairwise_comparisons(S[0], labels=["l0", "l1", "l2"], test="t", correction="fdr_bh")
    np.testing.assert_allclose(out["p"], ref["p"])
    np.testing.assert_allclose(out["p_corrected"], ref["p_corrected"])
    np.testing.assert_allclose(out["difference"], ref["difference"])
    assert out["layer_a"].tolist() == ref["a"].tolist() and out["layer_b"].tolist() == ref["b"].tolist()
    assert (out[["method", "roi", "level", "test", "correction"]].iloc[0].tolist()
            == ["cka", "r0", "layer", "t", "fdr_bh"])
    assert (out["n_comparisons"] == 3).all() and (out["n_subjects"] == 9).all()


@pytest.mark.slow
def test_false_positive_rate_with_equal_layers():
    """300 null data sets (10 subjects, 4 layers equal in truth, subject effects shared by the layers)."""
    rng = np.random.default_rng(0)
    n_d = 300
    S = rng.standard_normal((n_d, 10, 1)) + 0.5 * rng.standard_normal((n_d, 10, 4))
    df = _table(S)
    lo, hi = _interval(n_d)
    for test in ("sign_flip", "t"):
        raw = compare_layers(df, test=test, correction="none")
        first = raw.groupby("roi").head(1)["reject"].mean()  # one pair per data set: independent tests
        assert lo <= first <= hi, (test, first)
        assert abs(raw["reject"].mean() - 0.05) < 0.02, (test, raw["reject"].mean())
        assert raw.groupby("roi")["reject"].any().mean() > 0.1  # uncorrected: the family-wise rate is inflated
    for correction in ("holm", "max_stat"):
        fwer = compare_layers(df, test="sign_flip", correction=correction).groupby("roi")["reject"].any().mean()
        assert fwer <= hi, (correction, fwer)
    fwer = compare_layers(df, test="sign_flip", correction="max_stat").groupby("roi")["reject"].any().mean()
    assert lo <= fwer <= hi, fwer  # max-stat is exact, not only conservative


def _stimulus_null(rng, n_s=8, n_stim=30, n_res=200):
    """Scores as means of per-stimulus contributions; the stimuli (shared by every subject) are a random
    effect and the two layers are equal over the population of stimuli."""
    a = rng.standard_normal((n_stim, 2))
    c = a[None] + rng.standard_normal((n_s, n_stim, 2))
    u = 0.05 * rng.standard_normal((n_s, 2))
    idx = rng.integers(0, n_stim, (n_res, n_stim))  # the same stimulus draws for every subject
    return c.mean(1) + u, c[:, idx].mean(2) + u[:, None]


@pytest.mark.slow
def test_joint_bootstrap_generalizes_over_stimuli():
    """With a stimulus effect, tests that treat stimuli as fixed reject far too often for a claim about new
    stimuli; the joint subject x stimulus bootstrap keeps the rate near alpha."""
    rng = np.random.default_rng(2)
    sims = [_stimulus_null(rng) for _ in range(300)]
    df = _table(np.stack([s for s, _ in sims]), np.stack([r for _, r in sims]), n_stimuli=30)
    lo, hi = _interval(300)
    boot = compare_layers(df, test="bootstrap", correction="none")["reject"].mean()
    flips = compare_layers(df, test="sign_flip", correction="none")["reject"].mean()
    assert boot <= hi and boot > 0.01, boot
    assert flips > 0.25, flips
    # P(best) over subjects and stimuli is uncertain here; over subjects alone it is overconfident
    pb = group_p_best(df)
    assert pb.groupby("roi")["p_best_joint"].max().mean() < pb.groupby("roi")["p_best"].max().mean()


def test_a_real_difference_is_found():
    rng = np.random.default_rng(3)
    S = rng.standard_normal((1, 12, 1)) + rng.normal([0.0, 0.0, 0.6], 0.3, size=(1, 12, 3))
    for test in ("sign_flip", "t"):
        out = compare_layers(_table(S), test=test, correction="holm").set_index(["layer_a", "layer_b"])
        assert out.loc[("l0", "l2"), "reject"] and out.loc[("l1", "l2"), "reject"], test
        assert not out.loc[("l0", "l1"), "reject"]
        assert out.loc[("l0", "l2"), "difference"] < 0
    pb = group_p_best(_table(S)).set_index("layer")
    assert pb.loc["l2", "p_best"] > 0.95 and np.isnan(pb["p_best_joint"]).all()
    assert pb["p_best"].sum() == pytest.approx(1.0)


@pytest.fixture(scope="module")
def six_subjects(toy_features):
    from brainalign.datasets import simulate_responses

    return {f"sub-{s}": simulate_responses(toy_features, rois={"early": "l0", "late": "l4"}, n_channels=40, snr=0.5,
                                           n_repeats=4, random_state=10 + s).brain for s in range(6)}


def test_sweep_end_to_end_layers_and_models(toy_features, other_features, six_subjects):
    table = sweep({"toy": toy_features, "other": other_features}, six_subjects, methods=["cka-hsic_song"],
                  n_resamples=30, n_permutations=0, random_state=0, **{"cka-hsic_song": {"ceiling_splits": 2}})
    layers = compare_layers(table[table["method"] == "cka-hsic_song"], test="bootstrap").set_index(
        ["roi", "model_a", "layer_a", "layer_b"])
    assert layers.loc[("late", "toy", "l0", "l4"), "reject"] and layers.loc[("early", "toy", "l0", "l4"), "reject"]
    assert layers.loc[("late", "toy", "l0", "l4"), "difference"] < 0 < layers.loc[("early", "toy", "l0", "l4"),
                                                                                 "difference"]
    t = compare_layers(table, test="t")
    assert set(t["roi"]) == {"early", "late"} and set(t["model_a"]) == {"toy", "other"} and set(t["test"]) == {"t"}
    for test in ("t", "bootstrap"):
        models = compare_layers(table, level="model", test=test).set_index("roi")
        assert (models["model_a"] == "toy").all() and (models["model_b"] == "other").all()
        assert models["reject"].all() and (models["difference"] > 0).all()
        assert models.loc["late", "layer_a"] == "l4" and models.loc["early", "layer_a"] == "l0"
        assert models["layer_selection"].eq("leave-one-subject-out").all()
    fixed = compare_layers(table, level="model", test="t", layers={"toy": "l2", "other": "l0"})
    assert (fixed["layer_a"] == "l2").all() and (fixed["layer_selection"] == "fixed").all()
    pb = group_p_best(table, level="model")
    assert pb.groupby(["method", "roi"])["p_best"].sum().round(10).eq(1).all()
    assert pb["p_best_joint"].notna().all()
    assert pb.set_index(["roi", "model"])["p_best_joint"].loc[("late", "toy")] > 0.9


def test_assign_layers_across_subjects_uses_stats_p_best(toy_features, six_subjects):
    table = sweep(toy_features, six_subjects, methods=["cka-hsic_song", "rsa"], rois=["late"], n_resamples=30,
                  n_permutations=0, random_state=0)
    best = assign_layers(table, n_resamples=200, random_state=4)
    across = best[best["subject"] == "all"].set_index("method")
    reps = table.attrs["replicates"]
    sim = table[table["method"] == "cka-hsic_song"]
    S = sim.pivot(index="subject", columns="layer", values="score").to_numpy()
    R = np.stack([reps[f"cka-hsic_song|toy|{s}|late"].samples for s in sorted(six_subjects)])
    expected = stats.p_best(S, stimulus_replicates=R)  # subjects and stimuli resampled
    assert across.loc["cka-hsic_song", "p_best"] == pytest.approx(expected.max())
    assert across.loc["cka-hsic_song", "best_layer"] == "l4" and across.loc["rsa", "best_layer"] == "l4"
    rsa = table[table["method"] == "rsa"].pivot(index="subject", columns="layer", values="score").to_numpy()
    rng = np.random.default_rng(4)
    ref = [stats.p_best(rsa, n_resamples=200, random_state=np.random.default_rng(k)).max() for k in range(20)]
    assert min(ref) - 0.05 <= across.loc["rsa", "p_best"] <= max(ref) + 0.05  # subjects only, same kind of draw
    del rng
    pb = group_p_best(table).set_index(["method", "layer"])
    assert pb.loc["rsa", "p_best_joint"].isna().all()  # no stimulus replicates shared by the subjects for RSA
    np.testing.assert_allclose(pb.loc["cka-hsic_song", "p_best_joint"], expected)


def test_errors():
    S = np.random.default_rng(0).standard_normal((1, 5, 3))
    df = _table(S)
    with pytest.raises(ValueError, match=r"test='bootstrap' in method='cka', roi='r0', model='m': the table holds no "
                                         r"stimulus replicates.*test='sign_flip'"):
        compare_layers(df, test="bootstrap")
    with pytest.raises(ValueError, match=r"no stimulus replicates for method 'rsa'"):
        d = _table(S, R=np.zeros((1, 5, 10, 3)), n_stimuli=10)
        d.attrs["replicates"] = UnitReplicates({k.replace("cka", "x"): v for k, v in d.attrs["replicates"].items()})
        d["method"] = "rsa"
        compare_layers(d, test="bootstrap")
    with pytest.raises(ValueError, match=r"test='bootstrap' resamples the stimulus replicates, which are on the "
                                         r"'score' scale"):
        compare_layers(df.assign(normalized_score=df["score"]), test="bootstrap", score="normalized_score")
    two = pd.concat([df, df.assign(roi="r1")])
    with pytest.raises(ValueError, match=r"subject 's0' has several rows for layer 'l0'.*add the columns"):
        compare_layers(two, by=["method"])
    with pytest.raises(ValueError, match=r"found no group with at least 2 subjects"):
        compare_layers(df[df["subject"] == "s0"])
    with pytest.raises(ValueError, match=r"Invalid value for the 'test'.*'sign_flip'"):
        compare_layers(df, test="wilcoxon")
    with pytest.raises(ValueError, match=r"Invalid value for the 'correction'.*'holm'"):
        compare_layers(df, correction="bonferoni")
    with pytest.raises(ValueError, match=r"Invalid value for the 'level'"):
        compare_layers(df, level="roi")
    with pytest.raises(ValueError, match=r"Cannot group by 'session'"):
        compare_layers(df, by=["session"])
    with pytest.raises(ValueError, match=r"layers must be 'loso' or a dict"):
        compare_layers(df, level="model", layers="best")
    with pytest.raises(ValueError, match=r"layers= names no layer of model 'm'.*given 'l9'"):
        compare_layers(pd.concat([df, df.assign(model="n")]), level="model", layers={"m": "l9", "n": "l0"})
    with pytest.raises(TypeError, match=r"needs the DataFrame returned by sweep"):
        compare_layers(S)
    with pytest.warns(UserWarning, match=r"subjects \['s1'\] lack a score"):
        out = compare_layers(df.assign(score=np.where((df["subject"] == "s1") & (df["layer"] == "l0"), np.nan,
                                                      df["score"])), test="t")
    assert (out["n_subjects"] == 4).all()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compare_layers(_table(np.random.default_rng(1).standard_normal((5, 3, 3))))
    few = [w for w in caught if "no sign-flip p-value can be below" in str(w.message)]
    assert len(few) == 1  # said once, not once per family
