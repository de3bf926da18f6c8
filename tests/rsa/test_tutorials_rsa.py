"""Run the RSA / tRSA / time-resolved tutorials end to end (they end with their own asserts)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.tutorial
@pytest.mark.parametrize("name", ["04_rsa.py", "05_topological_rsa.py", "06_time_resolved.py"])
def test_tutorial_runs(name, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(ROOT / "tutorials" / name)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert (ROOT / "results" / "tutorials").is_dir()
