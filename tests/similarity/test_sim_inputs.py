"""Bad inputs get clear errors; registry and entry-point behaviour."""

import numpy as np
import pytest
import torch
from sim_data import make_pair

from brainalign import similarity as S


def cmp(X, Y, method, **kw):
    return S.compare(X, Y, method=method, device="cpu", **kw)


def test_different_numbers_of_stimuli():
    X, Y = make_pair()
    with pytest.raises(ValueError, match="same stimuli.*different numbers of stimuli"):
        cmp(X, Y[:-1], "cka")
    with pytest.raises(ValueError, match="same stimuli"):
        S.pairwise([X, X], [Y[:-3]], method="cka", device="cpu")


def test_cca_with_more_features_than_stimuli_says_so():
    X, Y = make_pair(n=20, px=30, py=5)
    with pytest.raises(ValueError, match=r"CCA is degenerate.*20 stimuli span 19 dimensions.*svcca"):
        cmp(X, Y, "cca-mean_sq_corr")
    with pytest.raises(ValueError, match="degenerate.*variance="):
        cmp(X, Y, "pwcca")
    with pytest.raises(ValueError, match="degenerate"):
        cmp(X, Y, "cca-angular")
    assert 0 < cmp(X, Y, "svcca-var95", variance=0.5) <= 1
    assert 0 < cmp(X, Y, "procrustes-angular", alpha=0.1)


def test_constant_features():
    X, _ = make_pair()
    with pytest.raises(ValueError, match="All 12 features of Y are constant"):
        cmp(X, np.ones_like(X), "procrustes-angular")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf(bad):
    X, Y = make_pair()
    Y = Y.copy()
    Y[3, 2] = bad
    with pytest.raises(ValueError, match="Y contains .* NaN and .* inf values"):
        cmp(X, Y, "cka")


def test_k_too_large():
    X, Y = make_pair(n=20)
    with pytest.raises(ValueError, match="k=20 neighbours requested but each stimulus has only 19"):
        cmp(X, Y, "mutual_knn", k=20)
    with pytest.raises(ValueError, match="positive integer"):
        cmp(X, Y, "cycle_knn", k=0)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, "x"])
def test_alpha_outside_unit_interval(alpha):
    X, Y = make_pair()
    with pytest.raises(ValueError, match=r"alpha .* must be in \[0, 1\]"):
        cmp(X, Y, "procrustes-angular", alpha=alpha)


def test_stochastic_metrics_need_repeats():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1, 10, 3))
    Y = rng.standard_normal((3, 10, 3))
    with pytest.raises(ValueError, match="single repetition"):
        cmp(X, Y, "stochastic-gaussian")
    with pytest.raises(ValueError, match=r"must be an array of shape \(n_repeats, n_stimuli, n_features\)"):
        cmp(Y[0], Y[1], "stochastic-energy")
    with pytest.raises(ValueError, match="average the repeats first"):
        cmp(Y, Y, "cka")
    with pytest.raises(ValueError, match=r"alpha of the Gaussian stochastic metric must be in \[0, 2\]"):
        cmp(Y, Y, "stochastic-gaussian", alpha=3)


def test_unknown_method_and_parameters():
    X, Y = make_pair()
    with pytest.raises(ValueError, match="Unknown similarity measure .*'cka'"):
        cmp(X, Y, "ckaa")
    with pytest.raises(TypeError, match="'cka' got an unexpected parameter 'alpha'"):
        cmp(X, Y, "cka", alpha=0.5)
    with pytest.raises(ValueError, match="'hsic' is fixed by the measure name 'cka'"):
        cmp(X, Y, "cka", hsic="song")
    with pytest.raises(ValueError, match="Invalid value for the 'hsic' parameter"):
        cmp(X, Y, "cka-rbf", hsic="foo")
    with pytest.raises(ValueError, match="sigma .* must be > 0"):
        cmp(X, Y, "cka-rbf", sigma=0)


def test_predictivity_errors():
    X, Y = make_pair(n=30)
    with pytest.raises(ValueError, match=r"n_components=25 PLS components exceed what X allows \(12 features"):
        cmp(X, Y, "pls")
    with pytest.raises(ValueError, match="too few for cv=20 folds"):
        cmp(X, Y, "ridge", cv=20)
    with pytest.raises(ValueError, match="Invalid value for the 'direction' parameter"):
        cmp(X, Y, "pls", n_components=3, direction="both")
    Yc = Y.copy()
    Yc[:, 0] = 1.0
    with pytest.warns(UserWarning, match="1 of 9 target units .* constant"):
        assert np.isfinite(cmp(X, Yc, "pls", n_components=3))


def test_song_cka_needs_four_stimuli():
    X, Y = make_pair(n=3)
    with pytest.raises(ValueError, match="at least 4 stimuli"):
        cmp(X, Y, "cka-hsic_song")


def test_registry_entries_are_complete():
    for name, m in S.MEASURES.items():
        assert m.name == name
        assert m.kind in ("similarity", "distance")
        assert m.score in ("identity", "cos", "negative")
        assert (m.kind == "similarity") == (m.score == "identity"), name
        assert m.citation and m.description
        assert len(m.range) == 2 and m.range[0] < m.range[1]
    table = S.measure_table()
    assert list(table["name"]) == list(S.MEASURES)


def test_to_score_is_higher_is_better():
    X, Y = make_pair()
    Z = np.random.default_rng(9).standard_normal(X.shape)
    for name, m in S.MEASURES.items():
        if "repeats" in m.needs or m.family in ("predictivity",):
            continue
        close, far = cmp(X, X + 0.05 * Z, name), cmp(X, Z, name)
        assert S.to_score(close, name) > S.to_score(far, name), name
    assert S.to_score(np.array([0.0, np.pi / 2]), "cka-angular").round(12).tolist() == [1.0, 0.0]
    assert S.normalize_score(0.4, 0.8, "cka") == 0.5
    assert np.isnan(S.normalize_score(-2.0, -1.0, "bures_distance"))


def test_measure_objects_are_callable_and_pairwise_shapes():
    X, Y = make_pair()
    assert S.MEASURES["cka"](X, Y, device="cpu") == cmp(X, Y, "cka")
    layers = {"a": X, "b": X[:, :5], "c": Y}
    out = S.pairwise(layers, method=["cka", "procrustes-angular", "pwcca"], device="cpu")
    assert set(out) == {"cka", "procrustes-angular", "pwcca"}
    assert np.allclose(out["cka"], out["cka"].T) and np.allclose(np.diag(out["cka"]), 1)
    assert np.allclose(np.diag(out["procrustes-angular"]), 0, atol=1e-6)
    grid = S.pairwise(layers, [Y, X], method="cka", device="cpu")
    assert grid.shape == (3, 2)
    assert abs(grid[2, 0] - 1) < 1e-12 and abs(grid[0, 1] - 1) < 1e-12
    # torch inputs, float32
    g32 = S.pairwise([torch.tensor(X), torch.tensor(Y)], method="cka", device="cpu", dtype="float32")
    assert np.allclose(g32, S.pairwise([X, Y], method="cka", device="cpu"), atol=1e-5)


def test_pairwise_with_asymmetric_measure_on_one_side():
    X, Y = make_pair()
    grid = S.pairwise([X, Y], method="pwcca", device="cpu")
    assert abs(grid[0, 1] - cmp(X, Y, "pwcca")) < 1e-12
    assert abs(grid[1, 0] - cmp(Y, X, "pwcca")) < 1e-12


def test_every_family_reuses_work_across_pairs(monkeypatch):
    """The SVD of each matrix is computed once for the whole grid and every measure."""
    calls = []
    real = torch.linalg.svd

    def counting(*a, **k):
        calls.append(a[0].shape)
        return real(*a, **k)

    monkeypatch.setattr(torch.linalg, "svd", counting)
    layers = [make_pair(s, n=40, px=6)[0] for s in range(4)]
    out = S.pairwise(layers, method=["cca-angular", "cca-mean_sq_corr", "svcca-var99", "svcca-var95"], device="cpu")
    per_matrix = [c for c in calls if tuple(c) == (40, 6)]
    assert len(per_matrix) == 4, calls  # one SVD per matrix, shared by 4 measures x 16 pairs
    assert out["cca-angular"].shape == (4, 4)
