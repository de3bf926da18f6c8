"""Recipes: every key validated before any computation; shipped recipes are valid; run writes outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from brainalign._recipes import RecipeError, load_recipe, validate_recipe
from brainalign.cli import main

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "encoding").glob("*.toml"))


def _base():
    return {"dataset": {"name": "kriegeskorte92"},
            "models": [{"name": "alexnet", "source": "dataset:alexnet_rdms"}],
            "methods": {"use": ["rsa"]}}


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_shipped_recipes_are_valid(path):
    recipe = load_recipe(path)
    assert recipe["recipe"]["name"] == path.stem
    assert recipe["statistics"]["n_resamples"] >= 100


def test_defaults_filled():
    r = validate_recipe(_base())
    assert r["statistics"]["n_permutations"] == 200 and r["outputs"]["table"] is True


@pytest.mark.parametrize("mutate, match", [
    (lambda r: r.update(modles=[]), r"Unknown key 'modles' in the top level.*Did you mean 'models'"),
    (lambda r: r["dataset"].update(nmae="x"), r"Unknown key 'nmae' in \[dataset\].*Allowed keys:.*name"),
    (lambda r: r["dataset"].update(name="haxby"), r"name = 'haxby' is invalid.*one of 'kriegeskorte92'"),
    (lambda r: r["models"][0].update(layer="all"), r"Unknown key 'layer' in \[\[models\]\] #1.*'layers'"),
    (lambda r: r["models"][0].update(source="torchvision:alexnet"), r"source = 'torchvision:alexnet' is invalid"),
    (lambda r: r["models"][0].update(source="dataset:vgg_rdms"), r"not a model of dataset 'kriegeskorte92'"),
    (lambda r: r["models"][0].update(source="hf:/no/such/folder"), r"not a local folder.*never downloads"),
    (lambda r: r["models"].append({"name": "m", "source": "minilm"}), r"give text ="),
    (lambda r: r["models"].append({"name": "alexnet", "source": "dataset:model_rdms"}), r"Two models are named"),
    (lambda r: r["methods"].update(use=["rsa", "mvpa"]), r"unknown: \['mvpa'\]"),
    (lambda r: r["methods"].update(use=["encoding"]), r"kriegeskorte92 has RDMs only"),
    (lambda r: r["methods"].update(rsa={"compare": "pearson"}), r"\[methods\]\.rsa compare = 'pearson'.*'corr'"),
    (lambda r: r["methods"].update(trsa={"low": 0.8, "up": 0.2}), r"low = 0.8 must not exceed up = 0.2"),
    (lambda r: r.update(statistics={"n_resamples": "many"}), r"n_resamples = 'many' is invalid.*an integer >= 0"),
    (lambda r: r.update(statistics={"n_resamples": True}), r"n_resamples = True is invalid"),
    (lambda r: r.update(outputs={"figures": ["heatmap"]}), r"unknown: \['heatmap'\]"),
    (lambda r: r.pop("methods"), r"no \[methods\] section"),
    (lambda r: r["models"][0].pop("source"), r"has no 'source'"),
    (lambda r: r["dataset"].update(name="bids"), r"needs a \[dataset.bids\] table"),
])
def test_bad_recipes_fail_before_computing(mutate, match):
    r = _base()
    mutate(r)
    with pytest.raises(RecipeError, match=match):
        validate_recipe(r)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No recipe file"):
        load_recipe(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[dataset\nname = 1")
    with pytest.raises(RecipeError, match="not valid TOML"):
        load_recipe(bad)


def test_cli_run_reports_bad_recipe(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[dataset]\nname = "kriegeskorte92"\n[methods]\nuse = ["rsa"]\n[[models]]\nname = "a"\n'
                   'source = "dataset:alexnet_rdms"\nlayres = "all"\n')
    assert main(["run", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "Unknown key 'layres'" in err and "layers" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_run_small_recipe_writes_outputs(tmp_path, capsys):
    recipe = tmp_path / "k92.toml"
    recipe.write_text(
        '[recipe]\nname = "k92_small"\nrandom_state = 1\n[dataset]\nname = "kriegeskorte92"\nbrain_rdms = ["hit"]\n'
        '[[models]]\nname = "alexnet"\nsource = "dataset:alexnet_rdms"\n'
        'layers = ["conv1", "conv3", "conv5", "fc7"]\n'
        '[[models]]\nname = "classic"\nsource = "dataset:model_rdms"\nsplit = "models"\nlayers = ["animacy", "V1"]\n'
        '[methods]\nuse = ["rsa"]\n[statistics]\nn_resamples = 20\nn_permutations = 20\n'
        '[outputs]\nfigures = ["layer_profile", "model_comparison", "assignment", "rdms", "mds"]\ndpi = 60\n')
    assert main(["run", str(recipe), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "best model and layer per region" in out
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert set(table["model"]) == {"alexnet", "animacy", "V1"} and set(table["subject"]) == {"BE", "KO", "SN", "TI"}
    # the human-IT ceiling is above every model (Kriegeskorte et al. 2008; Nili et al. 2014)
    assert (table["ceiling"] > table["score"]).all()
    # the categorical animacy model beats the V1 model in IT
    mean = table.groupby("model")["score"].mean()
    assert mean["animacy"] > mean["V1"]
    prov = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert prov["random_state"] == 1 and "numpy" in prov["versions"] and prov["timings"]["total_s"] > 0
    pngs = sorted(p.name for p in (tmp_path / "out" / "figures").glob("*.png"))
    assert pngs == ["assignment.png", "brain_rdms.png", "layer_profile.png", "mds.png", "model_comparison.png"]
