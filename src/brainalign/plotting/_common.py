"""Shared figure helpers (private)."""

from __future__ import annotations

from typing import Any


def new_figure(figsize: tuple[float, float] = (6.0, 4.0)):
    """A Figure that is not registered with pyplot (no GUI, no global state, Agg-safe)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def figure_of(ax: Any, figsize: tuple[float, float]):
    """``(fig, ax)``: the figure of ``ax`` when given, else a new figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(figsize)
    return fig, fig.add_subplot(1, 1, 1)


def add_colorbar(fig: Any, mappable: Any, ax: Any, label: str):
    cbar = fig.colorbar(mappable, ax=ax, shrink=0.85)
    cbar.set_label(label)
    return cbar
