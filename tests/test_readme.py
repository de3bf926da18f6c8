"""The README's example must run as written (a new user copies it first)."""

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no python example"
    for block in blocks:
        n_lines = len(block.strip().splitlines())
        assert n_lines <= 25, f"README example grew to {n_lines} lines"
        exec(compile(block, str(README), "exec"), {})


def test_readme_shows_the_two_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text
