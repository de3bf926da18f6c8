"""The benchmark harness itself: run_all.py's table and exit status, gpu_check.py's logic.

The real benchmarks take minutes; here run_all.py runs one fast script (``--quick --only stats``)
and scripted stand-ins for the failure cases, and gpu_check.py runs its CPU self-test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent / "benchmarks"
ROOT = BENCH.parents[1]
pytestmark = pytest.mark.slow


def _run(*args, env=None, timeout=300):
    full_env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"), **(env or {}))
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=full_env,
                          cwd=str(ROOT), timeout=timeout)


def _row(**kw):
    row = dict(workload="w", peer="p", peer_s=2.0, brainalign_s=1.0, ratio=2.0, spread=[1.5, 2.5], runs=5,
               equal=True, diff=1e-12, tolerance=1e-8, diff_kind="max |diff|", target=1.5, met=True, note="")
    row.update(kw)
    return row


def _fake(folder: Path, name: str, rows=None, rc: int = 0, marker: Path | None = None) -> None:
    """A bench script that writes ``rows`` to --json and exits with ``rc`` (touches ``marker`` if run)."""
    body = f"""
        import json, sys
        from pathlib import Path
        if {str(marker)!r} != 'None':
            Path({str(marker)!r}).write_text('ran')
        assert '--quick' in sys.argv, sys.argv
        print('fake benchmark {name} printing its own lines')
        rows = {json.dumps(rows)!r}
        if rows != 'null':
            path = sys.argv[sys.argv.index('--json') + 1]
            Path(path).write_text(json.dumps({{'script': '{name}', 'rows': json.loads(rows), 'meta': {{}}}}))
        sys.exit({rc})
    """
    (folder / name).write_text(textwrap.dedent(body))


def test_run_all_quick_on_a_real_script(tmp_path):
    out = tmp_path / "bench.md"
    res = _run(BENCH / "run_all.py", "--quick", "--only", "stats", "--out", out)
    assert res.returncode == 0, res.stdout + res.stderr
    text = out.read_text()
    assert "Quick smoke run" in text
    assert "| workload | peer | peer time | brainalign time | ratio [spread] | numbers equal? | target | met? |" in text
    assert "circular-shift permutation null" in text and "bootstrap CI" in text
    for field in ("machine:", "cores", "load average", "numpy", "torch", "OMP_NUM_THREADS=1", "date:"):
        assert field in text, field
    data = json.loads(out.with_suffix(".json").read_text())
    rows = data["scripts"][0]["rows"]
    assert len(rows) == 2 and all(r["equal"] is True and r["runs"] == 3 for r in rows)
    for r in rows:  # the ratio is the median of the per-run ratios, inside its spread
        assert r["spread"][0] <= r["ratio"] <= r["spread"][1]
    assert (tmp_path / "bench_logs" / "bench_stats.log").read_text().startswith("data:")


def test_run_all_reports_unequal_numbers_and_failures(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    story_marker = tmp_path / "story_ran"
    _fake(bench, "bench_good.py", [_row(workload="good one")])
    _fake(bench, "bench_unequal.py", [_row(workload="bad one", equal=False, diff=0.5)], rc=1)
    _fake(bench, "bench_crash.py", None, rc=3)
    _fake(bench, "bench_norows.py", None, rc=0)
    _fake(bench, "bench_badrow.py", [{"workload": "half a row"}])
    _fake(bench, "bench_story.py", [_row()], marker=story_marker)
    out = tmp_path / "bench.md"
    res = _run(BENCH / "run_all.py", "--quick", "--bench-dir", bench, "--out", out)
    assert res.returncode == 1
    assert "fake benchmark bench_good.py printing its own lines" in res.stdout  # their own printing shows
    text = out.read_text()  # the table is written all the same
    assert "| good one |" in text and "| bad one |" in text
    assert "**NO** (max \\|diff\\| 5.0e-01 > 1e-08)" in text
    assert "`bench_crash.py` FAILED: exited with status 3 and wrote no rows" in text
    assert "`bench_norows.py` FAILED: wrote no rows (does it accept --json PATH?)" in text
    assert "`bench_badrow.py` FAILED: row 'half a row' lacks" in text
    assert "`bench_unequal.py` ok" in text  # its non-zero status is explained by its unequal row
    assert "1 with unequal numbers; 3 of 5 scripts failed" in text
    assert not story_marker.exists(), "bench_story.py must not run"
    assert "unequal numbers: ['bad one']" in res.stderr


def test_run_all_only_must_match(tmp_path):
    res = _run(BENCH / "run_all.py", "--only", "no_such_benchmark", "--out", tmp_path / "b.md")
    assert res.returncode != 0
    assert "--only no_such_benchmark matches none of the benchmarks" in res.stderr
    assert "bench_ridge" in res.stderr


def test_gpu_check_skips_cleanly_without_cuda():
    res = _run(BENCH / "gpu_check.py", env={"CUDA_VISIBLE_DEVICES": ""})
    assert res.returncode == 0, res.stdout + res.stderr
    for section in ("ridge", "features", "rdms", "similarity"):
        assert f"{section}: skipped: no CUDA device" in res.stdout


def test_gpu_check_cpu_selftest(tmp_path):
    out = tmp_path / "gpu.json"
    res = _run(BENCH / "gpu_check.py", "--cpu-selftest", "--json", out, env={"HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0, res.stdout + res.stderr
    rows = json.loads(out.read_text())["rows"]
    checks = {r["check"]: r["status"] for r in rows}
    assert {r["section"] for r in rows} == {"ridge", "features", "rdms", "similarity"}
    assert all(status in ("ok", "SKIPPED") for status in checks.values()), checks
    assert sum(status == "ok" for status in checks.values()) >= 12
    bf16 = [r for r in rows if "bf16" in r["check"] and r["status"] == "ok"]
    assert bf16 and all(float(r["diff"].split()[1].rstrip(",")) > 0 for r in bf16), "bf16 stand-in changed nothing"
    assert "| section | check |" in res.stdout


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", BENCH / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_comparisons_catch_disagreement(gpu_check):
    rng = np.random.default_rng(0)
    alphas = np.logspace(-2, 6, 20)
    scores = rng.random((20, 50))
    best = alphas[scores.argmax(0)]
    coef = rng.standard_normal((50, 8))
    cpu = dict(cv_scores=scores, best_alphas=best, coef=coef)
    assert gpu_check.compare_ridge(dict(cpu), cpu, alphas)["ok"]
    shifted = dict(cpu, cv_scores=scores + 0.01)
    assert not gpu_check.compare_ridge(shifted, cpu, alphas)["ok"]
    other_alpha = best.copy()
    other_alpha[0] = alphas[scores[:, 0].argmin()]  # not a tie
    assert not gpu_check.compare_ridge(dict(cpu, best_alphas=other_alpha), cpu, alphas)["ok"]
    assert not gpu_check.compare_ridge(dict(cpu, coef=coef * 1.01), cpu, alphas)["ok"]

    ref = {"layer.0": rng.standard_normal((20, 6)), "layer.1": rng.standard_normal((20, 6))}
    close = {k: v * (1 + 1e-3 * rng.standard_normal(v.shape)) for k, v in ref.items()}
    assert gpu_check.compare_features(close, ref, 0.05, 0.995)["ok"]
    broken = dict(close, **{"layer.1": rng.standard_normal((20, 6))})
    res = gpu_check.compare_features(broken, ref, 0.05, 0.995)
    assert not res["ok"] and res["rel"] > 0.5 and res["corr"] < 0.5
    with pytest.raises(ValueError, match="different layers"):
        gpu_check.compare_features({"layer.0": ref["layer.0"]}, ref, 0.05)

    assert gpu_check.max_abs_diff([1.0, np.nan], [1.0, np.nan]) == 0.0
    assert gpu_check.max_abs_diff([1.0, np.nan], [1.0, 2.0]) == np.inf
