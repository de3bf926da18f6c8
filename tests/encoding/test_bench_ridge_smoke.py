"""The ridge benchmark runs end to end on a tiny size and its equality check holds."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_ridge.py"


def test_bench_ridge_runs_and_scores_agree(tmp_path):
    pytest.importorskip("himalaya")
    spec = importlib.util.spec_from_file_location("bench_ridge", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "bench.json"
    assert bench.main(["--sizes", "200x16x40", "--repeats", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    (res,) = data["meta"]["details"]
    assert res["size"] == "200x16x40"
    for name in ("himalaya-torch", "himalaya-numpy"):
        row = res["contenders"][name]
        assert row["equal"] and row["ratio"] > 0
    # the rows of run_all.py's table: one per peer
    assert [r["peer"] for r in data["rows"]] == ["himalaya torch", "himalaya numpy"]
    assert all(r["equal"] and r["target"] == 3.0 and r["runs"] == 1 for r in data["rows"])
