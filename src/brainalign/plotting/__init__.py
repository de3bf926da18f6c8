"""Figures for alignment results: layer profiles, brain and sensor maps, layers x time, RDMs,
layer x layer / layer x ROI similarity matrices.

Every function returns a :class:`matplotlib.figure.Figure` with labelled axes, units and
colorbars; nothing is shown or saved (call ``fig.savefig``). matplotlib, nilearn and MNE
are imported inside the functions, and the figures are built with the object-oriented
API, so they work with the non-interactive ``Agg`` backend (servers, CI).
"""

from __future__ import annotations

from ._brain import plot_brain_map, plot_sensor_map
from ._profiles import plot_layer_assignment, plot_layer_profile, plot_layers_by_time, plot_model_comparison
from ._rdm import plot_mds, plot_rdm
from ._similarity import plot_similarity_matrix

__all__ = [
    "plot_layer_profile",
    "plot_layer_assignment",
    "plot_model_comparison",
    "plot_layers_by_time",
    "plot_brain_map",
    "plot_sensor_map",
    "plot_rdm",
    "plot_mds",
    "plot_similarity_matrix",
]
