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


@pytest.mark.parametrize("mutate, match", [
    (lambda r: r.update(recipe={"name": "/abs/path"}), r"name = '/abs/path' is invalid.*plain folder name"),
    (lambda r: r.update(recipe={"name": "../../x"}), r"name = '../../x' is invalid.*plain folder name"),
    (lambda r: r.update(recipe={"name": ".hidden"}), r"plain folder name"),
    (lambda r: r["methods"].update(rsa={"rdm_method": "poisson"}), r"rdm_method = 'poisson' is invalid.*'crossnobis'"),
    (lambda r: r["methods"].update(trsa={"transform": "umap"}), r"transform = 'umap' is invalid.*'geodesic'"),
    (lambda r: r["methods"].update(encoding={"outer_cv": "subject"}), r"outer_cv = 'subject'.*'stimulus'"),
    (lambda r: r["methods"].update(encoding={"shared_stimuli": "ignore"}), r"shared_stimuli = 'ignore'.*'warn'"),
    (lambda r: r["methods"].update(encoding={"gap": -1}), r"gap = -1 is invalid.*>= 0"),
])
def test_values_are_checked_against_the_library(mutate, match):
    r = _base()
    mutate(r)
    with pytest.raises(RecipeError, match=match):
        validate_recipe(r)


def test_schema_follows_the_library_constants():
    from brainalign._recipes import schema
    from brainalign.alignment import METHOD_DEFAULTS
    from brainalign.rsa import COMPARE_METHODS, RDM_METHODS

    rules = schema()
    for m, defaults in METHOD_DEFAULTS.items():
        assert set(defaults) <= set(rules["methods"][m])
    for method in RDM_METHODS:
        assert rules["methods"]["rsa"]["rdm_method"](method) is None
    for method in COMPARE_METHODS:
        assert rules["methods"]["trsa"]["compare"](method) is None
    r = _base()
    r["methods"]["encoding"] = {"outer_cv": "stimulus", "stimulus_folds": 4, "gap": 3, "shared_stimuli": "warn",
                                "inner_cv": "run"}
    r["dataset"]["name"] = "haxby2001"
    r["models"] = [{"name": "m", "source": "onehot:stimulus_id"}]
    r["methods"]["use"] = ["encoding"]
    assert validate_recipe(r)["methods"]["encoding"]["stimulus_folds"] == 4


def test_paths_are_resolved_against_the_recipe_folder(tmp_path, monkeypatch):
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    recipe = tmp_path / "sub" / "r.toml"
    recipe.parent.mkdir()
    recipe.write_text('[dataset]\nname = "fmri"\n[dataset.fmri]\nbold = ["run1.nii.gz", "/abs/run2.nii.gz"]\n'
                      'events = "ev/events.tsv"\n[[models]]\nname = "m"\nsource = "hf:../models/tiny"\n'
                      '[methods]\nuse = ["encoding"]\n')
    monkeypatch.chdir(tmp_path / "models")  # the current folder plays no part
    r = load_recipe(recipe)
    assert r["models"][0]["source"] == "hf:" + str((tmp_path / "models" / "tiny").resolve())
    assert r["dataset"]["fmri"]["bold"] == [str(tmp_path / "sub" / "run1.nii.gz"), "/abs/run2.nii.gz"]
    assert r["dataset"]["fmri"]["events"] == str(tmp_path / "sub" / "ev" / "events.tsv")
    assert r["recipe"]["name"] == "r"
    assert validate_recipe(r, base_dir="/elsewhere") == r  # idempotent: absolute paths stay


def _k92_recipe(path: Path, name: str = "k92_small", layers: str = '["conv1", "fc7"]',
                figures: str = '["layer_profile", "brain_map"]') -> Path:
    path.write_text(
        f'[recipe]\nname = "{name}"\n[dataset]\nname = "kriegeskorte92"\nbrain_rdms = ["hit"]\n'
        f'[[models]]\nname = "alexnet"\nsource = "dataset:alexnet_rdms"\nlayers = {layers}\n'
        '[methods]\nuse = ["rsa"]\n[statistics]\nn_resamples = 0\nn_permutations = 0\n'
        f'[outputs]\nfigures = {figures}\ndpi = 50\n')
    return path


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    recipe = _k92_recipe(tmp_path / "k.toml")
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["run", str(recipe), "--out", str(afile)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is an existing file, not a folder" in err and "Traceback" not in err
    bad_layers = _k92_recipe(tmp_path / "b.toml", layers='["conv1", "conv9"]')
    assert main(["run", str(bad_layers), "--out", str(tmp_path / "o1")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "layers ['conv9'] are not in source 'dataset:alexnet_rdms'" in err
    assert "available layers: ['conv1'" in err
    monkeypatch.setenv("BRAINALIGN_MEMORY_LIMIT", "lots")
    assert main(["run", str(recipe), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "BRAINALIGN_MEMORY_LIMIT='lots' is not a memory size" in err
    assert not (tmp_path / "o2").exists()
    with pytest.raises(ValueError, match="BRAINALIGN_MEMORY_LIMIT"):
        main(["run", str(recipe), "--out", str(tmp_path / "o2"), "--traceback"])


def test_output_folder_is_owned_by_one_recipe(tmp_path, capsys):
    from brainalign import run_recipe

    out = tmp_path / "out"
    res = run_recipe(_k92_recipe(tmp_path / "k.toml"), out=out)
    assert (out / "index.html").is_file() and (out / "results.csv").is_file()
    assert res.skipped == [{"figure": "brain_map", "reason": "brain maps show encoding scores per voxel, and the "
                                                             "recipe runs neither 'encoding' nor 'trf'"}]
    index = (out / "index.html").read_text()
    assert "figures/layer_profile.png" in index and "results.csv" in index and "brain_map: brain maps" in index
    # 4 human-IT subjects: the layers are compared across subjects (sign flips, Holm), written and linked
    pairs = pd.read_csv(out / "comparisons.csv")
    assert "comparisons.csv" in index and res.comparisons is not None
    assert pairs[["layer_a", "layer_b", "test", "correction", "n_subjects"]].values.tolist() == [
        ["conv1", "fc7", "sign_flip", "holm", 4]]
    stale = out / "figures" / "left_over.png"
    stale.write_bytes(b"x")
    run_recipe(_k92_recipe(tmp_path / "k.toml", figures='["model_comparison"]'), out=out)  # same recipe again
    assert not stale.exists() and not (out / "figures" / "layer_profile.png").exists()
    assert (out / "figures" / "model_comparison.png").exists()
    other = _k92_recipe(tmp_path / "o.toml", name="another")
    with pytest.raises(RecipeError, match=r"holds the results of recipe 'k92_small', not 'another'"):
        run_recipe(other, out=out)
    assert main(["run", str(other), "--out", str(out)]) == 2
    assert "holds the results of recipe 'k92_small'" in capsys.readouterr().err
    assert json.loads((out / "provenance.json").read_text())["recipe"]["recipe"]["name"] == "k92_small"
    mine = tmp_path / "mine"  # a folder of the user's own: nothing in it is deleted
    mine.mkdir()
    (mine / "results.csv").write_text("my own table")
    with pytest.raises(RecipeError, match=r"already holds \['results.csv'\], not written by a brainalign run"):
        run_recipe(other, out=mine)
    assert (mine / "results.csv").read_text() == "my own table"


def test_brain_maps_one_file_per_roi_and_interactive(tmp_path):
    import numpy as np

    from brainalign import BrainData, Bunch, Features
    from brainalign._recipe_report import write_figures
    from brainalign._recipes import validate_recipe as validate
    from brainalign.alignment import sweep

    rng = np.random.default_rng(0)
    ijk = np.array([(i, j, k) for i in range(5) for j in range(4) for k in range(2)])
    n_items, reps = 30, 3
    ids = np.tile([f"s{i}" for i in range(n_items)], reps)
    feats = Features({"a": rng.standard_normal((n_items, 6)), "b": rng.standard_normal((n_items, 6))},
                     items=[f"s{i}" for i in range(n_items)], provenance={"model_id": "toy"})
    Y = feats["a"][np.tile(np.arange(n_items), reps)] @ rng.standard_normal((6, len(ijk)))
    Y = Y + rng.standard_normal(Y.shape)
    channels = pd.DataFrame(ijk, columns=["i", "j", "k"]).assign(roi=np.where(ijk[:, 0] < 2, "V1", "IT"))
    brain = BrainData(Y, samples={"stimulus_id": ids, "run": np.repeat(np.arange(reps), n_items)}, channels=channels,
                      subject="s1", space={"kind": "volume", "shape": (5, 4, 2), "affine": np.eye(4)})
    results = sweep(feats, brain, methods=["encoding"], n_resamples=0, n_permutations=0,
                    encoding={"alphas": [1.0, 100.0]})
    recipe = validate({"dataset": {"name": "fmri", "fmri": {}}, "models": [{"name": "toy", "source": "onehot:x"}],
                       "methods": {"use": ["encoding"]}, "outputs": {"figures": ["brain_map"]}})
    written, skipped = write_figures(recipe, results, Bunch(brain=brain), tmp_path, dpi=50)
    assert skipped == [] and len(written) == len(set(written))
    names = sorted(Path(p).name for p in written)
    assert names == ["brain_map_toy_s1_IT_layer.png", "brain_map_toy_s1_IT_score.html", "brain_map_toy_s1_IT_score.png",
                     "brain_map_toy_s1_V1_layer.png", "brain_map_toy_s1_V1_score.html", "brain_map_toy_s1_V1_score.png"]
    assert all(Path(p).stat().st_size > 1000 for p in written)


def _haxby(**methods):
    return {"dataset": {"name": "haxby2001"}, "models": [{"name": "cat", "source": "onehot:stimulus_id"}],
            "methods": {"use": ["cka"], **methods}}


@pytest.mark.parametrize("mutate, match", [
    (lambda r: r["methods"].update({"procrustes-angular": {"alpha": "half"}}),
     r"\[methods\]\.procrustes-angular alpha = 'half' is invalid.*a number"),
    (lambda r: r["methods"].update({"cka": {"sigma": 1.0}}), r"Unknown key 'sigma' in \[methods\]\.cka.*ceiling_splits"),
    (lambda r: r["methods"].update({"procrustes-angular": {"distance": "euclidean"}}),
     r"Unknown key 'distance' in \[methods\]\.procrustes-angular.*alpha"),
    (lambda r: r["methods"].update({"mutual_knn": {"k": 2.5}}), r"mutual_knn k = 2.5 is invalid.*an integer"),
    (lambda r: r["methods"].update({"cka": {"spearman_brown": "yes"}}), r"spearman_brown = 'yes' is invalid.*true or"),
    (lambda r: r["methods"].update(use=["cka", "ckaa"]), r"unknown: \['ckaa'\]"),
    (lambda r: r.update(statistics={"correction": "bonferroni"}), r"correction = 'bonferroni' is invalid.*'holm'"),
    (lambda r: r.update(statistics={"group_test": "wilcoxon"}), r"group_test = 'wilcoxon' is invalid.*'sign_flip'"),
    (lambda r: r["methods"].update(use=["cka", "encoding"]) or r.update(statistics={"group_test": "bootstrap"}),
     r"group_test = 'bootstrap' needs per-subject stimulus replicates.*\['encoding'\] have none"),
    (lambda r: r["dataset"].update(name="kriegeskorte92"), r"similarity measure\(s\) \['cka'\].*RDMs only"),
])
def test_similarity_methods_are_validated_from_the_registry(mutate, match):
    r = _haxby()
    mutate(r)
    with pytest.raises(RecipeError, match=match):
        validate_recipe(r)


def test_similarity_recipe_defaults_and_valid_options():
    r = validate_recipe(_haxby(**{"procrustes-angular": {"alpha": 0.5, "ceiling_splits": 5}},
                               pls={"n_components": 4, "direction": "mean"}, ridge={"alphas": [1.0, 10.0]}))
    assert r["statistics"]["group_test"] == "sign_flip" and r["statistics"]["correction"] == "holm"
    assert r["methods"]["procrustes-angular"]["alpha"] == 0.5
    k92 = {"dataset": {"name": "kriegeskorte92"}, "models": [{"name": "a", "source": "dataset:alexnet_rdms"}],
           "methods": {"use": ["rsa"]}, "outputs": {"figures": ["similarity_matrix"]}}
    assert validate_recipe(k92)["outputs"]["figures"] == ["similarity_matrix"]


def test_similarity_matrix_figure_and_comparisons(tmp_path):
    import numpy as np

    from brainalign import Bunch, Features
    from brainalign._recipe_report import write_figures
    from brainalign._recipe_run import comparisons
    from brainalign.alignment import sweep
    from brainalign.datasets import simulate_responses

    rng = np.random.default_rng(0)
    feats = Features({f"l{k}": rng.standard_normal((30, 8)) for k in range(3)}, items=[f"i{k}" for k in range(30)],
                     provenance={"model_id": "toy"})
    brains = {f"s{k}": simulate_responses(feats, rois={"a": "l0", "b": "l2"}, n_channels=12, n_repeats=2,
                                          random_state=k).brain for k in range(3)}
    results = sweep(feats, brains, methods=["cka", "procrustes-euclidean", "rsa"], n_resamples=0, n_permutations=0)
    recipe = validate_recipe({"dataset": {"name": "fmri", "fmri": {}}, "models": [{"name": "toy", "source": "onehot:x"}],
                              "methods": {"use": ["cka"]}, "outputs": {"figures": ["similarity_matrix"]}})
    written, skipped = write_figures(recipe, results, Bunch(brain=brains), tmp_path, dpi=50)
    assert skipped == [] and [Path(p).name for p in written] == ["similarity_matrix_toy.png"]
    assert Path(written[0]).stat().st_size > 5000
    pairs = comparisons(results, test="t", correction="fdr_bh")
    assert set(pairs["level"]) == {"layer"} and set(pairs["method"]) == {"cka", "procrustes-euclidean", "rsa"}
    assert len(pairs) == 3 * 2 * 3 and set(pairs["correction"]) == {"fdr_bh"}  # 3 pairs of layers per method and ROI
    assert comparisons(results[results["subject"] == "s0"]) is None
    assert np.isfinite(pairs["p"]).all()
