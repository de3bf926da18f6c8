"""Layer x layer and layer x ROI matrices of a similarity measure (brainalign.similarity)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ._common import add_colorbar, new_figure


def _kind(method: str | None) -> str | None:
    if method is None:
        return None
    from ..similarity import MEASURES

    m = MEASURES.get(method)
    return None if m is None else m.kind


def plot_similarity_matrix(matrices: Any, *, row_labels: Sequence[str] | None = None,
                           col_labels: Sequence[str] | None = None, method: str | None = None,
                           row_title: str = "layer (A)", col_title: str = "layer (B)", mark_best: str | None = "row",
                           n_cols: int | None = None, cmap: str | None = None, title: str | None = None):
    """One or several similarity matrices (e.g. from :func:`brainalign.similarity.pairwise`).

    Parameters
    ----------
    matrices : array of shape (n_a, n_b), or dict {method: array of shape (n_a, n_b)}
        Raw values of a measure (a dict gives one panel per measure, each with its colorbar).
    row_labels, col_labels : sequence of str, optional
        Names of the rows (e.g. model A's layers) and columns (model B's layers, or ROIs).
    method : str, optional
        The measure of a single matrix (names the colorbar; distances are marked "lower = more similar").
    row_title, col_title : str
        Axis labels.
    mark_best : {"row", "col", None}
        Outline the best cell of every row (or column): the highest similarity or the lowest
        distance, e.g. the layer of model B that matches each layer of model A best.
    n_cols : int, optional
        Panels per row of the figure (several matrices).
    cmap : str, optional
        Default ``"viridis"`` for similarities, ``"viridis_r"`` for distances (bright = similar).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> fig = plot_similarity_matrix(np.eye(3), method="cka", row_labels=list("abc"), col_labels=list("xyz"))
    """
    if mark_best not in ("row", "col", None):
        raise ValueError(f"mark_best must be 'row', 'col' or None; got {mark_best!r}.")
    if isinstance(matrices, Mapping):
        items = [(str(k), np.asarray(v, dtype=float)) for k, v in matrices.items()]
    else:
        items = [(method or "", np.asarray(matrices, dtype=float))]
    if not items:
        raise ValueError("matrices is empty: give an array or a dict {method: array}.")
    shapes = {m.shape for _, m in items}
    for name, m in items:
        if m.ndim != 2:
            raise ValueError(f"Each matrix must be 2-D (n_rows, n_cols); {name or 'the matrix'} has shape {m.shape}.")
    if len(shapes) > 1:
        raise ValueError(f"All matrices must have the same shape; got {sorted(shapes)}.")
    n_a, n_b = items[0][1].shape
    rows = [str(x) for x in row_labels] if row_labels is not None else [str(i) for i in range(n_a)]
    cols = [str(x) for x in col_labels] if col_labels is not None else [str(j) for j in range(n_b)]
    if len(rows) != n_a or len(cols) != n_b:
        raise ValueError(f"row_labels / col_labels have {len(rows)} / {len(cols)} names for a {n_a} x {n_b} matrix.")
    n = len(items)
    n_cols = n_cols or min(n, 4)
    n_rows = int(np.ceil(n / n_cols))
    cell = 0.28
    fig = new_figure((max(3.2, cell * n_b + 1.8) * n_cols, max(2.8, cell * n_a + 1.4) * n_rows))
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    from matplotlib.patches import Rectangle

    for ax, (name, m) in zip(axes, items):
        kind = _kind(name)
        is_dist = kind == "distance"
        im = ax.imshow(m, cmap=cmap or ("viridis_r" if is_dist else "viridis"), aspect="auto",
                       interpolation="nearest")
        ax.set_xticks(range(n_b), cols, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(n_a), rows, fontsize=7)
        ax.set_xlabel(col_title)
        ax.set_ylabel(row_title)
        ax.set_title(name, fontsize=9)
        if mark_best and np.isfinite(m).any():
            filled = np.where(np.isfinite(m), m, np.inf if is_dist else -np.inf)
            pick = np.argmin if is_dist else np.argmax
            if mark_best == "row":
                cells = [(i, int(pick(filled[i]))) for i in range(n_a)]
            else:
                cells = [(int(pick(filled[:, j])), j) for j in range(n_b)]
            for i, j in cells:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="w", lw=1.2))
        label = name or "similarity"
        if kind is not None:
            label += " (distance: lower = more similar)" if is_dist else " (higher = more similar)"
        add_colorbar(fig, im, ax, label)
    for ax in axes[n:]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
