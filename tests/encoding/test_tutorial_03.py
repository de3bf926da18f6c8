import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.tutorial
def test_tutorial_03_encoding_runs():
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "tutorials/03_encoding.py"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "tutorial 03 OK" in proc.stdout
