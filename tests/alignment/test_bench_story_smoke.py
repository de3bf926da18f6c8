"""bench_story.py end to end at a tiny scale: the recipe runs on the written ds003020 layout, holds out its
test story, and its held-out scores equal himalaya's."""

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_story.py"


@pytest.mark.slow
def test_bench_story_runs_and_scores_agree(tmp_path):
    pytest.importorskip("himalaya")
    spec = importlib.util.spec_from_file_location("bench_story", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    meta = bench.make_data(tmp_path, 0.02)
    assert meta["n_stories"] == 4 and meta["stories"][-1] == "wheretheressmoke"
    sweep = bench.run_sweep(tmp_path)
    assert sweep["n_layers"] == 12 and sweep["test_runs"] == ["wheretheressmoke"]
    assert len(sweep["per_layer"]) == 12 and sweep["peak_anon_gb"] > 0
    scores = sweep["scores"]  # the responses are driven by layer.05 only
    assert max(scores, key=scores.get) == meta["signal_layer"] and scores[meta["signal_layer"]] > 0.2
    him = bench.run_himalaya(tmp_path, meta["signal_layer"], 1)
    assert him["r_max_abs_diff"] < 1e-3 and him["ratio"] > 0
