"""The brainalign command: datasets listing and the loader demo."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from brainalign.cli import build_parser, main


def test_datasets_lists_sizes_and_citations(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    from brainalign.datasets import list_datasets

    for row in list_datasets().itertuples():
        assert f"{row.name}  ({row.size_mb:.2f} MB, {row.n_files} files)" in out
        assert f"brainalign.datasets.{row.loader}()" in out
    assert "Neuron 60(6):1126-1141" in out.replace("\n        ", " ")
    assert "Science 293(5539)" in out.replace("\n        ", " ")


def test_python_m_brainalign_datasets():
    proc = subprocess.run([sys.executable, "-m", "brainalign", "datasets"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "kriegeskorte92" in proc.stdout and "mne_audvis" in proc.stdout


def test_no_command_prints_help(capsys):
    assert main([]) == 1
    assert "datasets" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["nope"])


def test_demo_summarises_real_data(tmp_path, capsys):
    from scipy.stats import pearsonr

    from brainalign.datasets import load_kriegeskorte92

    assert main(["inspect", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    png = tmp_path / "demo" / "hit_mean_rdm.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = load_kriegeskorte92()
    iu = np.triu_indices(92, 1)
    r = pearsonr(data.hit_rdms.get_matrices().mean(0)[iu], data.mit_rdm.get_matrices()[0][iu])[0]
    assert f"Pearson r = {r:.3f}" in out
    assert 0.2 < r < 0.9
    assert "images (92, 175, 175, 3) uint8" in out
    assert "natural inanimate      23" in out
    assert "data (4, 366, 421)" in out and "sfreq 600.615 Hz" in out
    assert "204 grad, 102 mag, 60 eeg" in out
    assert "haxby2001" in out


def test_demo_without_haxby_loader(tmp_path, capsys, monkeypatch):
    import brainalign.datasets as ds
    from brainalign import cli

    monkeypatch.delitem(ds._WHERE, "load_haxby2001")
    cli._demo_haxby()
    assert "haxby2001: loader unavailable" in capsys.readouterr().out


def test_parser_has_one_function_per_subcommand():
    parser = build_parser()
    for name in ("datasets", "inspect", "demo"):
        args = parser.parse_args([name])
        assert args.func.__name__ == f"cmd_{name}"


def test_demo_without_minilm_runs_what_it_can(tmp_path, capsys, monkeypatch):
    """Without the demo extra the recipes run without MiniLM, and the message says how to add it."""
    import brainalign._recipe_run as recipe_run
    from brainalign import cli

    ran = []

    def fake_run(recipe, *, out, verbose):
        ran.append((recipe["recipe"]["name"], [m["name"] for m in recipe["models"]], out))
        raise SystemExit(0)  # stop after the first recipe: the plumbing is what is tested

    monkeypatch.setattr(recipe_run, "minilm_available", lambda: False)
    monkeypatch.setattr(recipe_run, "run_recipe", fake_run)
    with pytest.raises(SystemExit):
        main(["demo", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "pip install 'brainalign[demo]'" in out
    assert ran == [("kriegeskorte92_rsa", ["alexnet", "classic"], tmp_path / "kriegeskorte92_rsa")]
    haxby = cli._without_minilm(__import__("brainalign").load_recipe(cli.recipe_dir() / "haxby2001_encoding.toml"))
    assert haxby is None  # its only model is MiniLM: skipped with a message
