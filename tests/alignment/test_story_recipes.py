"""Story recipes: validation of the story keys, and encoding/story_fmri.toml run on the bundled example and
on a ds003020 download (here a copy of the example under another subject and test-story name) with
only root= and subject= changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainalign import RecipeError, run_recipe
from brainalign._recipes import load_recipe, validate_recipe
from brainalign.datasets import dataset_path

ROOT = Path(__file__).resolve().parents[2]
STORY_FMRI = ROOT / "encoding" / "story_fmri.toml"


def _recipe(**dataset):
    return {"dataset": {"name": "lebel2023", **dataset}, "models": [{"name": "m", "source": "rate:words"}],
            "methods": {"use": ["encoding"]}}


def test_story_keys_are_validated(tmp_path):
    with pytest.raises(RecipeError, match="with a root needs subject"):
        validate_recipe(_recipe(root=str(tmp_path)))
    with pytest.raises(RecipeError, match=r"\['layout'\] are not options of dataset 'lebel2023'"):
        validate_recipe(_recipe(layout="eeg"))
    with pytest.raises(RecipeError, match=r"\['root', 'subject'\] are not options of dataset 'haxby2001'"):
        validate_recipe({"dataset": {"name": "haxby2001", "root": "x", "subject": "y"},
                         "models": [{"name": "m", "source": "minilm"}], "methods": {"use": ["encoding"]}})
    with pytest.raises(RecipeError, match="needs timed words, i.e. a story dataset"):
        validate_recipe({"dataset": {"name": "haxby2001"}, "models": [{"name": "m", "source": "rate:words"}],
                         "methods": {"use": ["encoding"]}})
    with pytest.raises(RecipeError, match="must be 'rate:words' or 'rate:phones'"):
        validate_recipe({**_recipe(), "models": [{"name": "m", "source": "rate:syllables"}]})
    with pytest.raises(RecipeError, match="is not a folder"):
        validate_recipe({**_recipe(), "models": [{"name": "m", "source": "npy:no/such/folder"}]})
    with pytest.raises(RecipeError, match=r"test_runs = 'fables4' is invalid .* a list of names"):
        validate_recipe({**_recipe(), "methods": {"use": ["encoding"], "encoding": {"test_runs": "fables4"}}})
    with pytest.raises(RecipeError, match=r"controls = \['scrambled'\] is invalid"):
        validate_recipe({**_recipe(), "methods": {"use": ["encoding"], "controls": ["scrambled"]}})
    with pytest.raises(RecipeError, match=r"lag_windows = \[\[0.3, 0.1\]\] is invalid"):
        validate_recipe({**_recipe(), "methods": {"use": ["trf"], "trf": {"lag_windows": [[0.3, 0.1]]}}})
    with pytest.raises(RecipeError, match="Unknown key 'fill_missing'"):
        validate_recipe({**_recipe(), "methods": {"use": ["encoding"], "encoding": {"fill_missing": 0.0}}})
    ok = validate_recipe({**_recipe(stories=["fables1", "fables2"]),
                          "methods": {"use": ["encoding", "banded", "trf"], "controls": ["shuffled_words"],
                                      "encoding": {"test_runs": [], "zscore": "features", "trim": [2, 1]},
                                      "banded": {"others": ["m"]}, "trf": {"tmax": 0.4}}})
    assert ok["dataset"]["stories"] == ["fables1", "fables2"]
    for path in (STORY_FMRI, ROOT / "encoding" / "story_meg.toml"):
        load_recipe(path)  # the shipped recipes validate


def test_story_sources_need_what_they_read(tmp_path):
    with pytest.raises(RecipeError, match="needs the phone tier"):
        run_recipe({**_recipe(), "models": [{"name": "phones", "source": "rate:phones"}]}, out=tmp_path / "a")
    folder = tmp_path / "feats"
    folder.mkdir()
    np.save(folder / "l0.npy", np.zeros((10, 3), np.float32))
    with pytest.raises(RecipeError, match=r"l0.npy has shape \(10, 3\); it needs \(\d+, n_features\)"):
        run_recipe({**_recipe(), "models": [{"name": "pre", "source": f"npy:{folder}"}]}, out=tmp_path / "b")
    with pytest.raises(RecipeError, match="the bundled example has subject 'UTS00' only"):
        run_recipe(_recipe(subject="UTS03"), out=tmp_path / "c")


def test_npy_features_are_read_memory_mapped(tmp_path):
    from brainalign._recipe_run import _load_story, _npy_features

    ds = _load_story({"name": "lebel2023"})
    folder = tmp_path / "feats"
    folder.mkdir()
    n = len(ds.stimuli)
    for k in range(3):
        np.save(folder / f"layer{k}.npy", np.full((n, 2), k, np.float32))
    (folder / "layers.txt").write_text("layer2\nlayer0\nlayer1\n")
    feats = _npy_features({"name": "pre"}, str(folder), ds)
    assert feats.layer_names == ["layer2", "layer0", "layer1"]
    assert isinstance(feats["layer0"], np.memmap) and feats.items == ds.stimuli.ids
    assert ds.test_runs == ["fables4"]


@pytest.mark.slow
def test_story_fmri_recipe_recovers_the_truth(tmp_path):
    res = run_recipe(STORY_FMRI, out=tmp_path / "out", n_resamples=20, n_permutations=20)
    head = res.headline.set_index("roi")
    assert head.loc["early", "best_layer"] == "layer.1" and head.loc["late", "best_layer"] == "layer.5"
    assert set(res.results["model"]) == {"minilm", "minilm[random_weights]", "minilm[shuffled_words]"}
    # every baseline row names its control, so the headline compares the model's layers only and its
    # P(best) is the paired bootstrap one of the results table (not the independent-normal fallback)
    ctrl = res.results.set_index("model")["control"]
    assert (ctrl.loc["minilm[random_weights]"] == "random_weights").all()
    assert (ctrl.loc["minilm[shuffled_words]"] == "shuffled_words").all() and ctrl.loc["minilm"].isna().all()
    best = res.results[(res.results["model"] == "minilm") & (res.results["roi"] == "early")].set_index("layer")
    assert head.loc["early", "p_best"] == pytest.approx(best.loc["layer.1", "p_best"])
    assert (res.results["test_runs"] == "fables4").all()
    for name in ("results.csv", "headline.csv", "voxels.csv", "figures/layer_profile.png", "index.html"):
        assert (tmp_path / "out" / name).is_file(), name
    assert any("fables4" in note for note in res.notes)


@pytest.mark.slow
def test_story_fmri_recipe_on_a_ds003020_download_needs_only_root_and_subject(tmp_path):
    """A copy of the example laid out as another ds003020 subject, its test story named as ds003020's."""
    root = tmp_path / "ds003020"
    deriv = root / "derivative"
    shutil.copytree(dataset_path("story_example") / "lebel2023" / "derivative", deriv)
    (deriv / "preprocessed_data" / "UTS00").rename(deriv / "preprocessed_data" / "UTS07")
    (deriv / "preprocessed_data" / "UTS07" / "fables4.hf5").rename(deriv / "preprocessed_data" / "UTS07" /
                                                                    "wheretheressmoke.hf5")
    (deriv / "TextGrids" / "fables4.TextGrid").rename(deriv / "TextGrids" / "wheretheressmoke.TextGrid")
    respdict = json.loads((deriv / "respdict.json").read_text())
    respdict["wheretheressmoke"] = respdict.pop("fables4")
    (deriv / "respdict.json").write_text(json.dumps(respdict))

    text = STORY_FMRI.read_text()
    assert '\n[dataset]\nname = "lebel2023"' in text
    edited = text.replace('name = "lebel2023"', f'name = "lebel2023"\nroot = "{root}"\nsubject = "UTS07"', 1)
    path = tmp_path / "story_fmri.toml"
    path.write_text(edited)
    res = run_recipe(path, out=tmp_path / "out", n_resamples=20, n_permutations=20)
    table = res.results
    assert (table["test_runs"] == "wheretheressmoke").all() and set(table["subject"]) == {"UTS07"}
    assert set(table["roi"]) == {"all"} and table["layer"].nunique() == 7
    # the truth, voxel by voxel, from voxels.csv (no ROI labels in a real download)
    from brainalign.datasets import load_story_example

    truth = load_story_example("lebel2023").truth
    vox = pd.read_csv(tmp_path / "out" / "voxels.csv")
    vox = vox[(vox["model"] == "minilm") & (vox["method"] == "encoding")].sort_values("channel")
    best = vox["best_layer"].to_numpy()
    assert np.isin(best[truth.roi == "early"], ["layer.0", "layer.1", "layer.2"]).mean() > 0.8
    assert (best[truth.roi == "late"] == "layer.5").mean() > 0.8
