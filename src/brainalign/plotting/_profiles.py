"""Layer profiles (score vs layer per ROI), layer assignment bars, layers x time images."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from .._utils import as_list, check_option
from ..alignment import check_results
from ._common import add_colorbar, figure_of, new_figure

_NEEDED = ("model", "layer", "layer_depth", "roi", "method", "score")


def _filter(df: pd.DataFrame, column: str, value: Any) -> pd.DataFrame:
    if value is None:
        return df
    values = as_list(value)
    unknown = [v for v in values if v not in set(df[column])]
    if unknown:
        raise ValueError(f"No rows with {column} in {unknown}; available: {sorted(map(str, df[column].unique()))}.")
    return df[df[column].isin(values)]


def _metric_label(df: pd.DataFrame, y: str) -> str:
    metrics = sorted(map(str, df["metric"].dropna().unique())) if "metric" in df else []
    base = "normalized score (fraction of ceiling)" if y == "normalized_score" else "score"
    return f"{base}\n[{', '.join(metrics)}]" if metrics else base


def plot_layer_profile(results: pd.DataFrame, *, roi: Any = None, method: Any = None, model: Any = None,
                       x: str = "layer_depth", y: str = "score", ceiling: bool = True,
                       title: str | None = None, figsize: tuple[float, float] | None = None):
    """Alignment score against layer, one panel per ROI (columns) and method (rows).

    Scores are averaged over subjects; the error bars span the mean ``ci_low``..``ci_high``.
    The grey band is the noise ceiling (``ceiling_low``..``ceiling`` when the table has a
    lower bound, else the range of ``ceiling`` over subjects). The best layer of each model
    is marked with a star.

    Parameters
    ----------
    results : DataFrame
        The tidy table of :func:`brainalign.alignment.sweep`.
    roi, method, model : str or list of str, optional
        Keep only these ROIs / methods / models (default: all).
    x : {"layer_depth", "layer_index"}
        Relative depth (0 = first layer, 1 = last; comparable across models) or the
        layer number (tick labels are layer names when there is one model).
    y : {"score", "normalized_score"}
    ceiling : bool
        Draw the noise-ceiling band (only for ``y="score"``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_layer_profile(table, roi="IT")  # doctest: +SKIP
    >>> fig.savefig("profile.png")  # doctest: +SKIP
    """
    df = check_results(results, _NEEDED, "plot_layer_profile")
    check_option("x", x, ["layer_depth", "layer_index"])
    check_option("y", y, ["score", "normalized_score"])
    df = _filter(_filter(_filter(df, "roi", roi), "method", method), "model", model)
    if x == "layer_index" and "layer_index" not in df:
        raise ValueError("x='layer_index' needs a layer_index column.")
    rois = list(pd.unique(df["roi"].astype(str)))
    methods = list(pd.unique(df["method"].astype(str)))
    models = list(pd.unique(df["model"].astype(str)))
    figsize = figsize or (max(5.0, 3.6 * len(rois)), max(3.2, 3.0 * len(methods)))
    fig, axes, panels = _panel_grid(df, methods, rois, figsize)
    colors = _model_colors(models)
    keys = ["model", "layer", x] if x != "layer_depth" else ["model", "layer", "layer_depth"]
    if "layer_index" in df and "layer_index" not in keys:
        keys.append("layer_index")
    for meth, r, ax, sub in panels:
        agg = _aggregate(sub, keys, y)
        if ceiling and y == "score" and "ceiling" in sub and sub["ceiling"].notna().any():
            lo, hi = _ceiling_band(sub)
            if np.isclose(lo, hi):
                ax.axhline(hi, color="0.45", ls="--", lw=1.2, label="noise ceiling")
            else:
                ax.axhspan(lo, hi, color="0.8", alpha=0.7, lw=0, label="noise ceiling")
        for mdl in models:
            m = agg[agg["model"] == mdl].sort_values(x)
            if m.empty:
                continue
            xs, ys = m[x].to_numpy(float), m["y"].to_numpy(float)
            err = None
            if m["lo"].notna().any():
                err = np.vstack([np.clip(ys - m["lo"].to_numpy(float), 0, None),
                                 np.clip(m["hi"].to_numpy(float) - ys, 0, None)])
                err = np.nan_to_num(err)
            ax.errorbar(xs, ys, yerr=err, marker="o", ms=4, lw=1.5, capsize=2, color=colors[mdl], label=mdl)
            if np.isfinite(ys).any():
                b = int(np.nanargmax(ys))
                ax.plot(xs[b], ys[b], marker="*", ms=14, color=colors[mdl], mec="k", mew=0.6, ls="none")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(f"{r} · {meth}", fontsize=10)
        if x == "layer_depth":
            ax.set_xlabel("relative layer depth (0 = first, 1 = last)")
        else:
            ax.set_xlabel("layer")
            if len(models) == 1:
                m = agg.sort_values(x)
                ax.set_xticks(m[x].to_numpy(float), m["layer"].astype(str), rotation=45, ha="right", fontsize=7)
        ax.set_ylabel(_metric_label(sub, y))
        ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    for ax in axes.ravel():
        h, lab = ax.get_legend_handles_labels()
        for hh, ll in zip(h, lab):
            if ll not in labels:
                handles.append(hh)
                labels.append(ll)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", fontsize=8, ncol=min(6, len(labels)))
    default = "Alignment by layer (mean over subjects,\nbootstrap CIs; ★ best layer)" if len(rois) < 2 else \
        "Alignment by layer (mean over subjects, bootstrap CIs; ★ best layer)"
    fig.suptitle(title or default, fontsize=11)
    return fig


def _panel_grid(df: pd.DataFrame, methods: list, rois: list, figsize) -> tuple:
    """A figure with one panel per method (rows) x ROI (columns); returns it, the axes and the
    ``(method, roi, ax, rows)`` of every panel that has data (empty panels are switched off)."""
    fig = new_figure(figsize)
    axes = np.atleast_2d(fig.subplots(len(methods), len(rois), squeeze=False))
    panels = []
    for i, meth in enumerate(methods):
        for j, r in enumerate(rois):
            sub = df[(df["method"].astype(str) == meth) & (df["roi"].astype(str) == r)]
            if sub.empty:
                axes[i, j].set_axis_off()
            else:
                panels.append((meth, r, axes[i, j], sub))
    return fig, axes, panels


def _model_colors(models: Sequence[str]) -> dict:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {m: cmap(k % 10) for k, m in enumerate(models)}


def _aggregate(sub: pd.DataFrame, keys: list[str], y: str) -> pd.DataFrame:
    cols = {"y": (y, "mean")}
    if "ci_low" in sub and "ci_high" in sub and y == "score":
        cols.update(lo=("ci_low", "mean"), hi=("ci_high", "mean"))
    agg = sub.groupby([k for k in keys if k in sub], sort=False, dropna=False).agg(**cols).reset_index()
    if "lo" not in agg:
        if y == "normalized_score" and {"ci_low", "ci_high", "ceiling"} <= set(sub.columns):
            norm = sub.assign(lo=sub["ci_low"] / sub["ceiling"], hi=sub["ci_high"] / sub["ceiling"])
            extra = norm.groupby([k for k in keys if k in sub], sort=False).agg(lo=("lo", "mean"), hi=("hi", "mean"))
            agg = agg.merge(extra.reset_index(), on=[k for k in keys if k in sub], how="left")
        else:
            agg["lo"] = np.nan
            agg["hi"] = np.nan
    agg["model"] = agg["model"].astype(str)
    return agg


def _ceiling_band(sub: pd.DataFrame) -> tuple[float, float]:
    hi_vals = sub["ceiling"].to_numpy(float)
    if "ceiling_low" in sub and sub["ceiling_low"].notna().any():
        return float(np.nanmean(sub["ceiling_low"].to_numpy(float))), float(np.nanmean(hi_vals))
    return float(np.nanmin(hi_vals)), float(np.nanmax(hi_vals))


def plot_layer_assignment(assignment: pd.DataFrame, *, title: str | None = None,
                          figsize: tuple[float, float] | None = None):
    """Best layer per ROI: its relative depth with the bootstrap CI, one bar per model.

    Parameters
    ----------
    assignment : DataFrame
        The table of :func:`brainalign.alignment.assign_layers` (columns ``model``,
        ``roi``, ``method``, ``best_layer``, ``best_layer_depth``, ``depth_ci_low``,
        ``depth_ci_high``, ``p_best``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    df = check_results(assignment, ("model", "roi", "best_layer", "best_layer_depth"), "plot_layer_assignment")
    if "subject" in df and df["subject"].nunique() > 1:
        df = df[df["subject"].astype(str) == "all"] if (df["subject"].astype(str) == "all").any() else df
    df = df.copy()
    label_cols = ["roi"] + (["method"] if "method" in df and df["method"].nunique() > 1 else [])
    df["row"] = df[label_cols].astype(str).agg(" · ".join, axis=1)
    rows = list(pd.unique(df["row"]))
    models = list(pd.unique(df["model"].astype(str)))
    colors = _model_colors(models)
    figsize = figsize or (7.0, max(2.5, 0.45 * len(rows) * max(1, len(models)) + 1.2))
    fig, ax = figure_of(None, figsize)
    height = 0.8 / len(models)
    for k, mdl in enumerate(models):
        m = df[df["model"].astype(str) == mdl].set_index("row").reindex(rows)
        pos = np.arange(len(rows)) + (k - (len(models) - 1) / 2) * height
        vals = m["best_layer_depth"].to_numpy(float)
        err = None
        if {"depth_ci_low", "depth_ci_high"} <= set(m.columns):
            err = np.nan_to_num(np.vstack([vals - m["depth_ci_low"].to_numpy(float),
                                           m["depth_ci_high"].to_numpy(float) - vals]).clip(0))
        ax.barh(pos, vals, height=height * 0.9, xerr=err, color=colors[mdl], label=mdl, capsize=2)
        for p, v, lay, pb in zip(pos, vals, m["best_layer"], m.get("p_best", pd.Series([np.nan] * len(m)))):
            if np.isfinite(v):
                txt = f"{lay}" + (f" (p={pb:.2f})" if np.isfinite(pb) else "")
                ax.text(1.03, p, txt, va="center", fontsize=7)
    ax.set_yticks(np.arange(len(rows)), rows)
    ax.set_xlim(0, 1.5)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_xlabel("relative depth of the best layer (0 = first, 1 = last)")
    ax.set_ylabel("region")
    # outside the axes: inside, any corner can cover a bar or its layer label
    fig.legend(*ax.get_legend_handles_labels(), fontsize=8, title="model", loc="outside right upper")
    ax.set_title(title or "Layer-to-region assignment (bars: bootstrap CI; p = P(best layer))", fontsize=10)
    return fig


def plot_layers_by_time(matrix: Any, layer_names: Sequence[str], times: Any, *, ax: Any = None,
                        cmap: str = "viridis", colorbar_label: str = "score", title: str | None = None,
                        time_unit: str = "s"):
    """Score of every layer at every time point (M/EEG), as an image.

    Parameters
    ----------
    matrix : array of shape (n_layers, n_times)
    layer_names : sequence of str of length n_layers
    times : array of shape (n_times,)
        In seconds.
    time_unit : {"s", "ms"}
        Unit of the time axis labels.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> fig = plot_layers_by_time(np.zeros((3, 5)), ["a", "b", "c"], np.linspace(0, .4, 5))
    """
    mat = np.asarray(matrix, dtype=float)
    times = np.asarray(times, dtype=float)
    layer_names = [str(n) for n in layer_names]
    check_option("time_unit", time_unit, ["s", "ms"])
    if mat.ndim != 2 or mat.shape != (len(layer_names), len(times)):
        raise ValueError(
            f"matrix must have shape (n_layers, n_times) = ({len(layer_names)}, {len(times)}); got {mat.shape}."
        )
    scale = 1000.0 if time_unit == "ms" else 1.0
    fig, ax = figure_of(ax, (7.0, max(2.5, 0.3 * len(layer_names) + 1.5)))
    t = times * scale
    half = (t[1] - t[0]) / 2 if len(t) > 1 else 0.5
    im = ax.imshow(mat, aspect="auto", origin="lower", cmap=cmap, interpolation="nearest",
                   extent=(t[0] - half, t[-1] + half, -0.5, len(layer_names) - 0.5))
    if t[0] < 0 < t[-1]:
        ax.axvline(0, color="w", lw=1, ls="--")
    ax.set_yticks(np.arange(len(layer_names)), layer_names, fontsize=8)
    ax.set_xlabel(f"time ({time_unit})")
    ax.set_ylabel("layer")
    add_colorbar(fig, im, ax, colorbar_label)
    ax.set_title(title or "Alignment of each layer over time", fontsize=10)
    return fig


def plot_model_comparison(results: pd.DataFrame, *, roi: Any = None, method: Any = None,
                          title: str | None = None, figsize: tuple[float, float] | None = None):
    """Each model's best layer per ROI: bars of the score (mean over subjects) with CIs and the ceiling.

    Parameters
    ----------
    results : DataFrame
        The tidy table of :func:`brainalign.alignment.sweep`.
    roi, method : str or list of str, optional
        One panel per ROI (columns) and method (rows).

    Returns
    -------
    matplotlib.figure.Figure
    """
    df = check_results(results, _NEEDED, "plot_model_comparison")
    df = _filter(_filter(df, "roi", roi), "method", method)
    rois = list(pd.unique(df["roi"].astype(str)))
    methods = list(pd.unique(df["method"].astype(str)))
    models = list(pd.unique(df["model"].astype(str)))
    colors = _model_colors(models)
    figsize = figsize or (max(4.5, 4.2 * len(rois)), max(2.8, (0.32 * len(models) + 1.4) * len(methods)))
    fig, _axes, panels = _panel_grid(df, methods, rois, figsize)
    for meth, r, ax, sub in panels:
        agg = _aggregate(sub, ["model", "layer"], "score")
        best = agg.loc[agg.groupby("model")["y"].idxmax()].sort_values("y")
        if "ceiling" in sub and sub["ceiling"].notna().any():
            lo, hi = _ceiling_band(sub)
            if np.isclose(lo, hi):
                ax.axvline(hi, color="0.45", ls="--", lw=1.2, label="noise ceiling")
            else:
                ax.axvspan(lo, hi, color="0.8", alpha=0.7, lw=0, label="noise ceiling")
        ys = np.arange(len(best))
        vals = best["y"].to_numpy(float)
        err = None
        if best["lo"].notna().any():
            err = np.nan_to_num(np.vstack([vals - best["lo"].to_numpy(float),
                                           best["hi"].to_numpy(float) - vals]).clip(0))
        ax.barh(ys, vals, xerr=err, color=[colors[m] for m in best["model"]], capsize=2, height=0.7)
        labels = [m if n_l == 1 else f"{m} ({lay})" for m, lay, n_l in
                  zip(best["model"], best["layer"], best["model"].map(sub.groupby("model")["layer"].nunique()))]
        ax.set_yticks(ys, labels, fontsize=7)
        ax.axvline(0, color="k", lw=0.5)
        ax.set_xlabel(_metric_label(sub, "score").replace("\n", " "))
        ax.set_ylabel("model (best layer)")
        ax.set_title(f"{r} · {meth}", fontsize=10)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title or "Best layer of each model (mean over subjects; bars: bootstrap CI)", fontsize=11)
    return fig
