"""What a recipe run writes: its output folder (checked, then cleaned of its own previous outputs),
the figures it was asked for (each drawn, or the reason it was not), and an ``index.html`` report."""

from __future__ import annotations

import html
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._recipes import RecipeError

#: marks a folder as the output of a recipe run (name of the recipe inside) before anything else is written
MARKER = ".brainalign-recipe"
#: files and folders a run writes (and removes before writing again); the caches are kept
OWNED = ("results.csv", "assignment.csv", "headline.csv", "comparisons.csv", "voxels.csv", "provenance.json",
         "index.html", "figures", "maps")


def prepare_out(out: Path, name: str) -> None:
    """Create ``out`` for recipe ``name``, refusing a file or another recipe's folder.

    A folder that holds the outputs of the same recipe is cleaned of them (results,
    figures, report: what :data:`OWNED` lists), so that no file of an earlier run is left
    beside the new ones; the feature and sweep caches are kept (their keys are checked). A
    folder that brainalign did not write is used only when none of those names are in it.
    """
    if out.exists() and not out.is_dir():
        raise RecipeError(f"--out {out} is an existing file, not a folder; give the path of a folder for the outputs.")
    owner = None
    if (out / MARKER).is_file():
        owner = (out / MARKER).read_text().strip()
    elif (out / "provenance.json").is_file():
        try:
            owner = json.loads((out / "provenance.json").read_text())["recipe"]["recipe"]["name"]
        except (ValueError, KeyError, TypeError):
            owner = "(unreadable provenance.json)"
    if owner is not None and owner != name:
        raise RecipeError(
            f"The output folder {out} holds the results of recipe {owner!r}, not {name!r}; give another --out "
            "(or remove that folder) so that the two runs' files do not mix."
        )
    clash = [item for item in OWNED if (out / item).exists()]
    if owner is None and clash:  # a folder brainalign did not write: never delete what is there
        raise RecipeError(
            f"The output folder {out} already holds {clash}, not written by a brainalign run; give another --out "
            "(or empty that folder) so that nothing there is overwritten."
        )
    out.mkdir(parents=True, exist_ok=True)
    for item in clash:
        path = out / item
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    (out / MARKER).write_text(name + "\n")


def _safe(text: Any) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in str(text))


def write_figures(recipe: dict, results: pd.DataFrame, ds: Any, out: Path, dpi: int) -> tuple[list[str], list[dict]]:
    """Draw every requested figure into ``out/figures`` (interactive maps into ``out/maps``).

    Returns
    -------
    written : list of str
        Paths of the files written, each once.
    skipped : list of dict
        ``{"figure": name, "reason": why}`` for every requested figure that could not be drawn.
    """
    from . import plotting
    from .alignment import assign_layers, voxel_scores

    figdir = out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    skipped: list[dict] = []

    def save(fig, name):
        path = figdir / f"{_safe(name)}.png"
        fig.savefig(path, dpi=dpi)
        if str(path) not in written:
            written.append(str(path))

    def skip(figure, reason):
        skipped.append({"figure": figure, "reason": reason})

    wanted = recipe["outputs"]["figures"]
    results = _full_lag_range(results)
    n_layers = results.groupby("model")["layer"].nunique()
    deep = [m for m, n in n_layers.items() if n > 1]
    for name in ("layer_profile", "assignment"):
        if name in wanted and not deep:
            skip(name, "no model has more than one layer")
    if "layer_profile" in wanted and deep:
        save(plotting.plot_layer_profile(results[results["model"].isin(deep)]), "layer_profile")
    if "model_comparison" in wanted:
        save(plotting.plot_model_comparison(results), "model_comparison")
    if "assignment" in wanted and deep:
        save(plotting.plot_layer_assignment(assign_layers(results[results["model"].isin(deep)])), "assignment")
    brain = ds.brain
    rdm_brain = isinstance(brain, dict) and all(hasattr(v, "get_matrices") for v in brain.values())
    for name in ("rdms", "mds"):
        if name in wanted and not rdm_brain:
            skip(name, "the brain data are recordings, not RDMs (the RDM figures draw the dataset's brain RDMs)")
    if ("rdms" in wanted or "mds" in wanted) and rdm_brain:
        mats, titles = [], []
        for roi, rd in brain.items():
            mats.append(rd.get_matrices().mean(0))
            titles.append(f"{roi} (mean of {rd.n_rdm})")
        if "rdms" in wanted:
            save(plotting.plot_rdm(np.stack(mats), titles=titles, categories=ds.categories, rank=True,
                                   title="Brain RDMs"), "brain_rdms")
        if "mds" in wanted:
            save(plotting.plot_mds(mats[0], categories=ds.categories, title=f"MDS of {titles[0]}"), "mds")
    if "similarity_matrix" in wanted:
        for model, fig in _similarity_matrices(results):
            save(fig, f"similarity_matrix_{model}")
    if "brain_map" in wanted:
        written_maps, why = _brain_maps(results, brain, voxel_scores(results), save, out, recipe)
        written.extend(p for p in written_maps if p not in written)
        if why:
            skip("brain_map", why)
    return written, skipped


def _full_lag_range(results: pd.DataFrame) -> pd.DataFrame:
    """The rows the figures draw: TRF rows of the full lag range only (each lag window fitted alone is its
    own comparison, kept in results.csv)."""
    if "lag_window" not in results or results["lag_window"].isna().all():
        return results
    trf = results["method"] == "trf"
    full = results["lag_min"].eq(results.loc[trf, "lag_min"].min()) & results["lag_max"].eq(results.loc[trf, "lag_max"].max())
    out = results[~trf | full]
    out.attrs = results.attrs
    return out


def _similarity_matrices(results: pd.DataFrame):
    """Per model, the layer x ROI matrix of every method (subject means; similarity measures in their raw units)."""
    from . import plotting

    df = results[results["subject"].astype(str) != "all"]
    raw = df["raw_score"] if "raw_score" in df else pd.Series(np.nan, index=df.index)
    df = df.assign(value=raw.where(raw.notna(), df["score"]))
    rois = list(dict.fromkeys(df["roi"].astype(str)))
    for model, g in df.groupby("model", sort=False):
        layers = g.drop_duplicates("layer").sort_values("layer_index")["layer"].tolist()
        mats = {}
        for method, gm in g.groupby("method", sort=False):
            mean = gm.groupby(["layer", gm["roi"].astype(str)])["value"].mean().unstack()
            mats[str(method)] = mean.reindex(index=layers, columns=rois).to_numpy(float)
        fig = plotting.plot_similarity_matrix(mats, row_labels=layers, col_labels=rois, row_title="layer",
                                              col_title="ROI", mark_best="col",
                                              n_cols=min(len(mats), 3), title=f"{model}: layer x ROI, subject means")
        yield str(model), fig


def _brain_maps(results, brain, scores, save, out: Path, recipe: dict) -> tuple[list[str], str | None]:
    """One static map (and one interactive HTML view) per model, subject and ROI: best-layer r and its depth."""
    from . import plotting

    if not {"encoding", "trf"} & set(results["method"]):
        return [], "brain maps show encoding scores per voxel, and the recipe runs neither 'encoding' nor 'trf'"
    if not len(scores):
        return [], "the sweep kept no per-voxel encoding scores"
    html_maps = []
    reasons = []
    for key, vs in scores.items():
        model, subject, roi, *method = key.split("|")
        if method and method[0] != "trf":  # banded: unique variance, not a score per layer to map
            continue
        bd = brain if not isinstance(brain, dict) else brain.get(subject)
        if bd is None:
            reasons.append(f"no recordings of subject {subject!r}")
            continue
        if bd.space.get("kind") not in ("volume", "surface", "sensor"):
            reasons.append(f"subject {subject!r}: the data have no brain space to draw in")
            continue
        if roi != "all" and "roi" in bd.channels:
            bd = bd.select(roi=roi)
        if bd.n_channels != vs.shape[1]:
            reasons.append(f"{key}: {vs.shape[1]} scores for {bd.n_channels} channels")
            continue
        best = vs.max(axis=0)
        stem = "_".join(_safe(x) for x in (model, subject, roi, *method))
        label = f"{model}, {subject}, ROI {roi}"
        save(plotting.plot_brain_map(bd, best, colorbar_label="encoding score (r, best layer)",
                                     title=f"{label}: best-layer encoding score"), f"brain_map_{stem}_score")
        depth = vs.argmax(axis=0) / max(1, vs.shape[0] - 1)
        save(plotting.plot_brain_map(bd, np.where(best > 0.05, depth + 1e-3, 0.0), vmin=0.0, vmax=1.0,
                                     colorbar_label="preferred layer depth (0 = first, 1 = last)",
                                     title=f"{label}: best layer per voxel (r > 0.05)"), f"brain_map_{stem}_layer")
        if recipe["outputs"].get("html", True) and bd.space.get("kind") == "volume":
            (out / "maps").mkdir(exist_ok=True)
            path = out / "maps" / f"brain_map_{stem}_score.html"
            plotting.view_brain_map(bd, best, title=f"{label}: best-layer encoding score (r)", path=path)
            html_maps.append(str(path))
    if reasons and len(reasons) == len(scores):
        return html_maps, "; ".join(dict.fromkeys(reasons))
    return html_maps, None


def write_index(out: Path, recipe: dict, headline: pd.DataFrame, figures: list[str], skipped: list[dict],
                notes: list[str]) -> Path:
    """``out/index.html``: the headline table, the notes, links to every table, figure and interactive map."""
    rel = [os.path.relpath(f, out) for f in figures]
    tables = [f for f in ("results.csv", "assignment.csv", "headline.csv", "comparisons.csv", "voxels.csv",
                          "provenance.json")
              if (out / f).exists()]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(recipe['recipe']['name'])} - brainalign</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:3px 6px}"
        "img{max-width:100%;border:1px solid #eee;margin:0.5em 0}</style></head><body>",
        f"<h1>{html.escape(recipe['recipe']['name'])}</h1>",
        f"<p>{html.escape(recipe['recipe'].get('description', ''))}</p>",
        "<h2>Best model and layer per region</h2>",
        headline.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="n/a", border=0),
    ]
    if notes:
        parts.append("<h2>How to read it</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    parts.append("<h2>Tables</h2><ul>" + "".join(f"<li><a href='{t}'>{t}</a></li>" for t in tables) + "</ul>")
    maps = [f for f in rel if f.endswith(".html")]
    if maps:
        parts.append("<h2>Interactive brain maps</h2><ul>"
                     + "".join(f"<li><a href='{html.escape(f)}'>{html.escape(Path(f).stem)}</a></li>" for f in maps)
                     + "</ul>")
    pngs = [f for f in rel if f.endswith(".png")]
    if pngs:
        parts.append("<h2>Figures</h2>")
        parts.extend(f"<h3>{html.escape(Path(f).stem)}</h3><a href='{html.escape(f)}'><img src='{html.escape(f)}'></a>"
                     for f in pngs)
    if skipped:
        parts.append("<h2>Figures not drawn</h2><ul>"
                     + "".join(f"<li>{html.escape(s['figure'])}: {html.escape(s['reason'])}</li>" for s in skipped)
                     + "</ul>")
    parts.append("</body></html>")
    path = out / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
