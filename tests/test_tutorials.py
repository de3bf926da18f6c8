"""Every tutorial in tutorials/ runs start to finish (each ends with its own scientific asserts).

One runner for all of them: a new tutorial is picked up by its file name, and a tutorial
folder that loses its scripts fails loudly instead of running nothing.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
LIMIT_S = 600  # the contract is < 3 min each on a 2-core CPU; this is the hard stop


def test_the_tutorials_are_there():
    numbers = [p.name[:2] for p in TUTORIALS]
    assert numbers[:7] == ["01", "02", "03", "04", "05", "06", "07"], numbers
    for path in TUTORIALS:
        text = path.read_text()
        assert text.count("# %%") >= 3, f"{path.name} is not a jupytext percent-format script"
        assert "assert " in text, f"{path.name} checks nothing a scientist would check"


@pytest.mark.tutorial
@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path):
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(path)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=LIMIT_S)
    took = time.perf_counter() - start
    assert proc.returncode == 0, f"{path.name} failed after {took:.0f} s:\n{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}"
