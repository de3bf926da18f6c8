"""RDM panels and MDS embeddings (rsatoolbox RDMs or plain arrays)."""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import numpy as np

from .._docs import fill_doc
from ._common import add_colorbar, figure_of, new_figure


def _as_matrices(rdms: Any) -> tuple[np.ndarray, list[str]]:
    """``(n_rdms, n, n)`` matrices and one name per RDM, from rsatoolbox RDMs or arrays."""
    if hasattr(rdms, "get_matrices"):
        mats = np.asarray(rdms.get_matrices(), dtype=float)
        names = None
        desc = getattr(rdms, "rdm_descriptors", {}) or {}
        for key in ("name", "layer", "roi", "subject", "index"):
            if key in desc and len(desc[key]) == len(mats):
                names = [str(v) for v in desc[key]]
                break
        return mats, names or [f"RDM {i}" for i in range(len(mats))]
    arr = np.asarray(rdms, dtype=float)
    if arr.ndim == 2 and arr.shape[0] == arr.shape[1]:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] != arr.shape[2]:
        raise ValueError(
            f"rdms must be rsatoolbox RDMs or an array of shape (n, n) or (n_rdms, n, n); got shape {arr.shape}."
        )
    return arr, [f"RDM {i}" for i in range(len(arr))]


def _group_ticks(ax: Any, categories: Sequence[Any], n: int) -> None:
    cats = [str(c) for c in categories]
    if len(cats) != n:
        raise ValueError(f"categories has {len(cats)} labels but the RDMs have {n} conditions.")
    starts = [0] + [i for i in range(1, n) if cats[i] != cats[i - 1]]
    ends = starts[1:] + [n]
    if len(starts) > 30:  # not grouped: label a few conditions
        return
    centers = [(s + e - 1) / 2 for s, e in zip(starts, ends)]
    labels = [cats[s] for s in starts]
    ax.set_xticks(centers, labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(centers, labels, fontsize=7)
    for s in starts[1:]:
        ax.axhline(s - 0.5, color="w", lw=0.6)
        ax.axvline(s - 0.5, color="w", lw=0.6)


def plot_rdm(rdms: Any, *, titles: Sequence[str] | None = None, categories: Sequence[Any] | None = None,
             n_cols: int | None = None, cmap: str = "viridis", rank: bool = False,
             colorbar_label: str | None = None, title: str | None = None):
    """Representational dissimilarity matrices as images, one panel per RDM.

    Parameters
    ----------
    rdms : rsatoolbox RDMs or array of shape (n_conditions, n_conditions) or (n_rdms, n_conditions, n_conditions)
    titles : sequence of str, optional
        One per RDM (default: the ``name``/``layer``/``roi``/``subject`` descriptor).
    categories : sequence of length n_conditions, optional
        Condition labels; contiguous groups get one tick and a white separator line.
    rank : bool
        Show rank-transformed dissimilarities (percentiles), as in Kriegeskorte et al. 2008.
    colorbar_label : str, optional
        Default ``"dissimilarity"``, or ``"dissimilarity (percentile)"`` with ``rank=True``;
        a label you give is used as is.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> fig = plot_rdm(np.random.default_rng(0).random((2, 5, 5)))
    """
    mats, names = _as_matrices(rdms)
    if titles is not None:
        if len(titles) != len(mats):
            raise ValueError(f"titles has {len(titles)} entries for {len(mats)} RDMs.")
        names = [str(t) for t in titles]
    n = len(mats)
    n_cols = n_cols or min(n, 4)
    n_rows = int(np.ceil(n / n_cols))
    fig = new_figure((3.3 * n_cols + 0.8, 3.2 * n_rows))
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    if rank:
        from scipy.stats import rankdata

        iu = np.triu_indices(mats.shape[1], 1)
        out = np.zeros_like(mats)
        for k, m in enumerate(mats):
            r = rankdata(m[iu]) / len(iu[0]) * 100
            out[k][iu] = r
            out[k] = out[k] + out[k].T
        mats = out
    if colorbar_label is None:  # default only: a label given by the user is kept as is
        colorbar_label = "dissimilarity (percentile)" if rank else "dissimilarity"
    vmin, vmax = float(np.nanmin(mats)), float(np.nanmax(mats))
    im = None
    for ax, m, name in zip(axes, mats, names):
        im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        if categories is not None:
            _group_ticks(ax, categories, m.shape[0])
        else:
            ax.set_xlabel("condition")
            ax.set_ylabel("condition")
    for ax in axes[n:]:
        ax.set_axis_off()
    add_colorbar(fig, im, list(axes[:n]), colorbar_label)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


@fill_doc
def plot_mds(rdms: Any, *, categories: Sequence[Any] | None = None, ax: Any = None, random_state: int = 0,
             title: str | None = None):
    """2-D metric MDS of the (mean) RDM: conditions close together are represented alike.

    Parameters
    ----------
    rdms : rsatoolbox RDMs or array of shape (n, n) or (n_rdms, n, n)
        Several RDMs are averaged first.
    categories : sequence of length n_conditions, optional
        Colours the points by category, with a legend.
    %(random_state)s
        Used for the MDS initialisation.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(6, 3))
    >>> d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    >>> fig = plot_mds(d, categories=list("aabbcc"))
    """
    from sklearn.manifold import MDS

    mats, _ = _as_matrices(rdms)
    d = np.nanmean(mats, axis=0)
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0.0)
    if not np.isfinite(d).all():
        raise ValueError("The RDM has NaN/inf dissimilarities after averaging; MDS needs finite values.")
    params = inspect.signature(MDS).parameters
    kw: dict[str, Any] = {"n_components": 2, "random_state": random_state}
    if "metric_mds" in params:  # scikit-learn >= 1.8
        kw.update(metric="precomputed", init="classical_mds")
    else:
        kw.update(dissimilarity="precomputed", n_init=4)
    xy = MDS(**kw).fit_transform(d)
    fig, ax = figure_of(ax, (5.5, 4.8))
    if categories is not None:
        cats = [str(c) for c in categories]
        if len(cats) != len(d):
            raise ValueError(f"categories has {len(cats)} labels but the RDM has {len(d)} conditions.")
        from matplotlib import colormaps

        cmap = colormaps["tab10" if len(set(cats)) <= 10 else "tab20"]
        for k, c in enumerate(dict.fromkeys(cats)):
            sel = np.array([x == c for x in cats])
            ax.scatter(xy[sel, 0], xy[sel, 1], s=25, color=cmap(k % cmap.N), label=c, edgecolor="k", lw=0.3)
        ax.legend(fontsize=7, loc="best", title="category", title_fontsize=8)
    else:
        ax.scatter(xy[:, 0], xy[:, 1], s=25, color="C0", edgecolor="k", lw=0.3)
    ax.set_xlabel("MDS dimension 1 (dissimilarity units)")
    ax.set_ylabel("MDS dimension 2 (dissimilarity units)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(title or "Multidimensional scaling of the RDM", fontsize=10)
    return fig
