"""assign_layers / preferred_depth on hand-made tables (known answers)."""

from __future__ import annotations

import pandas as pd
import pytest

from brainalign.alignment import assign_layers, preferred_depth, tidy, RESULT_COLUMNS


def _table(scores, subjects=("s1",), models=("m",), se=0.01):
    rows = []
    for mdl in models:
        for s in subjects:
            for k, sc in enumerate(scores):
                rows.append(dict(model=mdl, layer=f"L{k}", layer_index=k, layer_depth=k / (len(scores) - 1),
                                 subject=s, roi="V1", method="rsa", score=sc, ci_low=sc - 1.96 * se,
                                 ci_high=sc + 1.96 * se))
    return tidy(rows)


def test_tidy_orders_columns():
    t = _table([0.1, 0.2, 0.3])
    assert list(t.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS


def test_assign_clear_winner_and_ties():
    best = assign_layers(_table([0.1, 0.5, 0.2]), random_state=0)
    row = best.iloc[0]
    assert row["best_layer"] == "L1" and row["best_layer_depth"] == 0.5
    assert row["p_best"] == 1.0 and row["depth_ci_low"] == row["depth_ci_high"] == 0.5
    # two layers indistinguishable within their CIs: about half of the draws each
    best = assign_layers(_table([0.3, 0.3, 0.0], se=0.05), n_resamples=4000, random_state=1)
    assert 0.4 < best["p_best"].item() < 0.6
    assert best["depth_ci_low"].item() == 0.0 and best["depth_ci_high"].item() == 0.5


def test_assign_uses_p_best_column():
    t = _table([0.1, 0.5, 0.45])
    t["p_best"] = [0.0, 0.7, 0.3]
    row = assign_layers(t).iloc[0]
    assert row["p_best"] == pytest.approx(0.7)
    assert (row["depth_ci_low"], row["depth_ci_high"]) == (0.5, 1.0)


def test_assign_across_subjects_and_models():
    t = pd.concat([_table([0.1, 0.2, 0.4], subjects=["a", "b"], models=["m1"]),
                   _table([0.5, 0.1, 0.1], subjects=["a", "b"], models=["m2"])])
    best = assign_layers(t)
    assert set(best["subject"]) == {"a", "b", "all"}
    allrow = best[(best["subject"] == "all") & (best["model"] == "m1")].iloc[0]
    assert allrow["best_layer"] == "L2" and allrow["n_subjects"] == 2
    across_models = assign_layers(t, by=["subject", "roi", "method"])
    assert set(across_models["best_model"]) == {"m2"}
    assert (across_models["best_layer"] == "L0").all()


def test_preferred_depth_formula():
    t = _table([0.0, 1.0, 3.0, -1.0], subjects=["a"])  # depths 0, 1/3, 2/3, 1; negative -> 0
    d = preferred_depth(t)["preferred_depth"].item()
    assert d == pytest.approx((1 / 3 * 1 + 2 / 3 * 3) / 4)
    t2 = pd.concat([_table([1.0, 0.0, 0.0], subjects=["a"]), _table([0.0, 0.0, 1.0], subjects=["b"])])
    out = preferred_depth(t2).set_index("subject")
    assert out.loc["all", "preferred_depth"] == pytest.approx(0.5)
    assert out.loc["all", "ci_low"] <= 0.5 <= out.loc["all", "ci_high"]


def test_table_errors():
    t = _table([0.1, 0.2])
    with pytest.raises(TypeError, match="DataFrame"):
        assign_layers(t.to_dict())
    with pytest.raises(ValueError, match="needs the columns"):
        assign_layers(t.drop(columns="layer_depth"))
    with pytest.raises(ValueError, match="Cannot group by 'hemi'"):
        assign_layers(t, by=["hemi"])
    with pytest.raises(ValueError, match="Allowed values"):
        assign_layers(t, score="r2")
    with pytest.raises(ValueError, match="n_resamples"):
        assign_layers(t, n_resamples=0)
    with pytest.raises(ValueError, match="empty"):
        preferred_depth(t.iloc[:0])
    with pytest.raises(ValueError, match="Cannot group by"):
        preferred_depth(t, by=["hemi"])
