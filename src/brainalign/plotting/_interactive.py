"""Interactive brain maps: nilearn's ``view_img`` (volumes) and ``view_surf`` (surfaces) as HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ._brain import _values_for


def view_brain_map(brain: Any, values: Any, *, title: str | None = None, threshold: float | None = None,
                   cmap: str | None = None, vmin: float | None = None, vmax: float | None = None,
                   mesh: Mapping[str, Any] | None = None, symmetric_cmap: bool | None = None,
                   path: str | Path | None = None):
    """One value per voxel / vertex as an interactive view in the browser (HTML).

    Volumes go to :func:`nilearn.plotting.view_img` (three orthogonal slices you can click
    through, no background image: the values are drawn on their own voxel grid), surfaces
    to :func:`nilearn.plotting.view_surf` (one view per hemisphere, needs a mesh and plotly).

    Parameters
    ----------
    brain : BrainData
        Volume or surface data (``brain.space["kind"]``); sensor data have no interactive
        view (use :func:`plot_sensor_map`).
    values : array of shape (n_channels,)
        E.g. the encoding score of each voxel.
    title : str, optional
    threshold : float, optional
        Values with ``|v| <= threshold`` are transparent (default: only exact zeros, i.e.
        outside the channels).
    cmap : str, optional
        Default ``"RdBu_r"`` for signed values, ``"viridis"`` for non-negative ones.
    vmin, vmax : float, optional
    mesh : dict hemi -> mesh, optional
        Surface meshes (a path, a nilearn mesh or ``(coords, faces)``); default
        ``brain.space["mesh"]``.
    symmetric_cmap : bool, optional
        Default: True when the values have both signs.
    path : path, optional
        Also write the HTML file there (for surfaces with two hemispheres, ``<stem>_<hemi>.html``).

    Returns
    -------
    nilearn HTML view (``.save_as_html(path)``, ``.open_in_browser()``, shown inline in a
    notebook), or a dict hemi -> view for surfaces.

    Examples
    --------
    >>> view = view_brain_map(brain, scores, title="encoding r", path="scores.html")  # doctest: +SKIP
    """
    from nilearn import plotting

    vals = _values_for(brain, values)
    space = brain.space.get("kind")
    signed = bool(np.nanmin(vals) < 0) if np.isfinite(vals).any() else False
    symmetric = signed if symmetric_cmap is None else bool(symmetric_cmap)
    cmap = cmap or ("RdBu_r" if signed else "viridis")
    if space == "volume":
        img = brain.to_image(np.nan_to_num(vals))
        if threshold is None:  # outside the channels (0) is transparent
            threshold = 0 if (np.asarray(img.dataobj) == 0).any() else None
        view = plotting.view_img(img, bg_img=False, threshold=threshold, cmap=cmap, symmetric_cmap=symmetric,
                                 vmin=vmin, vmax=vmax, title=title, black_bg=False)
        if path is not None:
            view.save_as_html(str(path))
        return view
    if space == "surface":
        mesh = mesh if mesh is not None else brain.space.get("mesh")
        if mesh is None:
            raise ValueError("An interactive surface view needs the cortical mesh: pass mesh={'left': ..., 'right': ...} "
                             "(e.g. nilearn.datasets.load_fsaverage) or load the data with its mesh.")
        images = brain.to_image(np.nan_to_num(vals))
        missing = [h for h in images if h not in mesh]
        if missing:
            raise ValueError(f"mesh has no entry for hemisphere(s) {missing}; it has {list(mesh)}.")
        import importlib.util

        if importlib.util.find_spec("plotly") is None:
            raise ImportError("An interactive surface view needs plotly (nilearn's view_surf draws with it): "
                              "pip install plotly.")
        views = {}
        for hemi, image in images.items():
            stat = np.asarray(image.darrays[0].data, dtype=float)
            nl_hemi = "right" if str(hemi).lower().startswith(("r", "rh")) else "left"
            views[hemi] = plotting.view_surf(mesh[hemi], stat, hemi=nl_hemi, threshold=threshold, cmap=cmap,
                                             symmetric_cmap=symmetric, vmin=vmin, vmax=vmax,
                                             title=f"{title or ''} ({hemi})".strip())
            if path is not None:
                p = Path(path)
                views[hemi].save_as_html(str(p if len(images) == 1 else p.with_name(f"{p.stem}_{hemi}{p.suffix}")))
        return views
    raise ValueError(
        f"No interactive view for data in a {space!r} space: view_brain_map draws volumes (nilearn view_img) and "
        "surfaces (view_surf); use plot_sensor_map for sensors, or plot_brain_map for a static figure."
    )
