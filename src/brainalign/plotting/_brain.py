"""Maps of one value per channel: volumes (nilearn), surfaces (nilearn), sensors (MNE)."""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np

from .._utils import check_option
from ._common import add_colorbar, new_figure


def _values_for(brain: Any, values: Any) -> np.ndarray:
    vals = np.asarray(values, dtype=float)
    if vals.ndim != 1 or vals.shape[0] != brain.n_channels:
        raise ValueError(
            f"values must have shape (n_channels,) = ({brain.n_channels},), one per channel of the brain data; "
            f"got {vals.shape}."
        )
    return vals


def plot_brain_map(brain: Any, values: Any, *, kind: str = "auto", mesh: Mapping[str, Any] | None = None,
                   title: str | None = None, colorbar_label: str = "score", cmap: str | None = None,
                   vmin: float | None = None, vmax: float | None = None, threshold: float | None = None,
                   figsize: tuple[float, float] | None = None):
    """One value per voxel / vertex / sensor drawn in brain space.

    The values go back into space with ``brain.to_image(values)``; volumes are drawn with
    nilearn (``"slices"``: ``plot_stat_map``, ``"glass"``: ``plot_glass_brain``), thin
    volumes of 1-3 slices as plain slice images, surfaces with nilearn
    ``plot_surf_stat_map`` when a mesh is given, and sensors as an MNE topomap.

    Parameters
    ----------
    brain : BrainData
        Its ``space`` says where channels live (``volume``, ``surface`` or ``sensor``).
    values : array of shape (n_channels,)
        E.g. encoding scores or the preferred layer depth of each voxel.
    kind : {"auto", "slices", "glass", "surface", "sensor"}
    mesh : dict hemi -> mesh, optional
        Surface meshes (a path, a nilearn mesh or ``(coords, faces)``) for surface data.
        Without one, surface data are drawn as a flat scatter of the vertex coordinates
        (``x, y`` columns of ``brain.channels``) or, without coordinates, as values
        against vertex number, with a warning.
    colorbar_label : str
        What the values are, with units (e.g. ``"Pearson r"``, ``"layer depth"``).
    threshold : float, optional
        Values with ``|v| < threshold`` are not drawn (volumes and surfaces).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_brain_map(brain, scores, colorbar_label="Pearson r")  # doctest: +SKIP
    """
    check_option("kind", kind, ["auto", "slices", "glass", "surface", "sensor"])
    vals = _values_for(brain, values)
    space = brain.space.get("kind")
    if space is None:
        raise ValueError(
            "This BrainData has no brain space (brain.space['kind'] is missing), so values cannot be "
            "mapped; load it with brainalign.datasets.load_fmri / load_gifti / load_mne, or plot the values "
            "with matplotlib directly."
        )
    if space == "sensor" or kind == "sensor":
        if space != "sensor":
            raise ValueError(f"kind='sensor' needs sensor data; this BrainData is in a {space!r} space.")
        return plot_sensor_map(brain, vals, title=title, colorbar_label=colorbar_label, cmap=cmap,
                               vmin=vmin, vmax=vmax)
    if space == "surface":
        if kind not in ("auto", "surface"):
            raise ValueError(f"kind={kind!r} is for volumes; this BrainData is on a surface (use 'surface').")
        return _plot_surface(brain, vals, mesh=mesh, title=title, label=colorbar_label, cmap=cmap,
                             vmin=vmin, vmax=vmax, threshold=threshold)
    if kind == "surface":
        raise ValueError("kind='surface' needs surface data; this BrainData is a volume (use 'slices' or 'glass').")
    img = brain.to_image(vals)
    shape = img.shape[:3]
    if kind == "auto" and min(shape) <= 3:
        return _plot_thin_volume(img, title=title, label=colorbar_label, cmap=cmap, vmin=vmin, vmax=vmax,
                                 threshold=threshold, figsize=figsize)
    from nilearn import plotting

    fig = new_figure(figsize or (8.0, 3.2))
    fig.set_layout_engine(None)
    common = dict(figure=fig, title=title, threshold=threshold, colorbar=True)
    if vmax is None:
        vmax = float(np.nanmax(np.abs(vals))) or 1.0
    if kind == "glass":
        plotting.plot_glass_brain(img, cmap=cmap or "viridis", vmax=vmax, vmin=vmin,
                                  plot_abs=False, **common)
    else:
        plotting.plot_stat_map(img, bg_img=None, cmap=cmap or "RdBu_r", vmax=vmax, vmin=vmin,
                               black_bg=False, **common)
    fig.text(0.5, 0.02, f"colour: {colorbar_label}   (x, y, z in mm)", ha="center", fontsize=9)
    return fig


def _plot_thin_volume(img: Any, *, title, label, cmap, vmin, vmax, threshold, figsize):
    """Volumes with 1-3 slices along an axis (e.g. Haxby's single slice): one panel per slice."""
    data = np.asarray(img.dataobj, dtype=float)
    axis = int(np.argmin(data.shape[:3]))
    n = data.shape[axis]
    fig = new_figure(figsize or (4.0 * n + 1.0, 4.0))
    axes = fig.subplots(1, n, squeeze=False)[0]
    finite = data[data != 0]
    lim = float(np.nanmax(np.abs(finite))) if finite.size else 1.0
    vmin = -lim if vmin is None and finite.size and finite.min() < 0 else (0.0 if vmin is None else vmin)
    vmax = lim if vmax is None else vmax
    zooms = img.header.get_zooms()[:3]
    names = ["x", "y", "z"]
    in_plane = [a for a in range(3) if a != axis]
    for s, ax in enumerate(axes):
        sl = np.take(data, s, axis=axis)
        masked = np.ma.masked_where((sl == 0) | (np.abs(sl) < (threshold or 0)), sl)
        extent = (0, sl.shape[0] * zooms[in_plane[0]], 0, sl.shape[1] * zooms[in_plane[1]])
        im = ax.imshow(masked.T, origin="lower", cmap=cmap or ("RdBu_r" if vmin < 0 else "viridis"),
                       vmin=vmin, vmax=vmax, extent=extent, interpolation="nearest")
        ax.set_facecolor("0.85")
        ax.set_xlabel(f"{names[in_plane[0]]} (mm, voxel grid)")
        ax.set_ylabel(f"{names[in_plane[1]]} (mm, voxel grid)")
        ax.set_title(f"slice {names[axis]}={s}", fontsize=9)
    add_colorbar(fig, im, list(axes), label)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def _plot_surface(brain: Any, vals: np.ndarray, *, mesh, title, label, cmap, vmin, vmax, threshold):
    images = brain.to_image(vals)
    hemis = list(images)
    if mesh is None:
        mesh = brain.space.get("mesh")
    if mesh is not None:
        missing = [h for h in hemis if h not in mesh]
        if missing:
            raise ValueError(f"mesh has no entry for hemisphere(s) {missing}; it has {list(mesh)}.")
        from nilearn import plotting

        fig = new_figure((4.5 * len(hemis), 4.0))
        fig.set_layout_engine(None)
        for k, hemi in enumerate(hemis):
            ax = fig.add_subplot(1, len(hemis), k + 1, projection="3d")
            stat = np.asarray(images[hemi].darrays[0].data, dtype=float)
            nl_hemi = "right" if str(hemi).lower().startswith(("r", "rh")) else "left"
            plotting.plot_surf_stat_map(mesh[hemi], stat, hemi=nl_hemi, axes=ax, figure=fig, cmap=cmap or "RdBu_r",
                                        vmin=vmin, vmax=vmax, threshold=threshold, colorbar=True,
                                        title=f"{hemi} ({label})")
        if title:
            fig.suptitle(title)
        return fig
    warnings.warn(
        "Surface data without a mesh: drawing a flat map of the vertex coordinates instead of a cortical "
        "surface. Pass mesh={'left': ..., 'right': ...} (e.g. nilearn.datasets.fetch_surf_fsaverage()) for "
        "a surface rendering.", stacklevel=3,
    )
    ch = brain.channels
    fig = new_figure((4.5 * len(hemis) + 1.0, 4.0))
    axes = fig.subplots(1, len(hemis), squeeze=False)[0]
    sc = None
    for ax, hemi in zip(axes, hemis):
        rows = (ch["hemi"] == hemi).to_numpy()
        v = vals[rows]
        if threshold is not None:
            keep = np.abs(v) >= threshold
        else:
            keep = np.ones(v.shape, bool)
        if {"x", "y"} <= set(ch.columns):
            sc = ax.scatter(ch.loc[rows, "x"].to_numpy()[keep], ch.loc[rows, "y"].to_numpy()[keep], c=v[keep], s=8,
                            cmap=cmap or "viridis", vmin=vmin, vmax=vmax)
            ax.set_xlabel("x (mm)")
            ax.set_ylabel("y (mm)")
            ax.set_aspect("equal")
        else:
            idx = ch.loc[rows, "vertex"].to_numpy()
            sc = ax.scatter(idx[keep], v[keep], c=v[keep], s=6, cmap=cmap or "viridis", vmin=vmin, vmax=vmax)
            ax.set_xlabel("vertex number")
            ax.set_ylabel(label)
        ax.set_title(f"hemisphere {hemi} (flat view, no mesh)", fontsize=9)
    add_colorbar(fig, sc, list(axes), label)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def plot_sensor_map(brain: Any, values: Any, *, ch_type: str | None = None, title: str | None = None,
                    colorbar_label: str = "score", cmap: str | None = None, vmin: float | None = None,
                    vmax: float | None = None):
    """One value per sensor as an MNE topomap (e.g. the encoding score of each MEG sensor).

    Parameters
    ----------
    brain : BrainData
        Sensor data (``brain.space["kind"] == "sensor"`` with an MNE ``Info``).
    values : array of shape (n_channels,)
    ch_type : {"mag", "grad", "eeg", ...}, optional
        Which sensors to draw (a topomap shows one type); default the first of
        ``mag``, ``grad``, ``eeg`` present. Gradiometer pairs are combined (RMS).

    Returns
    -------
    matplotlib.figure.Figure
    """
    vals = _values_for(brain, values)
    if brain.space.get("kind") != "sensor":
        raise ValueError(f"plot_sensor_map needs sensor data; this BrainData is in a {brain.space.get('kind')!r} space.")
    evoked = brain.to_image(vals)
    present = sorted(set(evoked.get_channel_types()))
    if ch_type is None:
        ch_type = next((t for t in ("mag", "grad", "eeg", "seeg") if t in present), None)
        if ch_type is None:
            raise ValueError(f"No channel type with sensor positions to draw; channel types present: {present}.")
    check_option("ch_type", ch_type, present)
    fig = new_figure((4.6, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    ev = evoked.copy().pick(ch_type)
    data = ev.data[:, 0]
    lim = float(np.nanmax(np.abs(data))) or 1.0
    lo = vmin if vmin is not None else (-lim if data.min() < 0 else 0.0)
    hi = vmax if vmax is not None else lim
    # Evoked.plot_topomap combines gradiometer pairs (RMS) itself; scalings=1 keeps the values.
    ev.plot_topomap(times=[float(ev.times[0])], ch_type=ch_type, axes=ax, colorbar=False, show=False,
                    scalings={ch_type: 1.0}, vlim=(lo, hi), cmap=cmap or ("RdBu_r" if lo < 0 else "viridis"),
                    contours=0, time_format="", sensors=True)
    im = ax.images[-1] if ax.images else ax.collections[-1]
    add_colorbar(fig, im, ax, colorbar_label)
    ax.set_title(title or f"{colorbar_label} per sensor ({ch_type})", fontsize=10)
    ax.set_xlabel("left  ←  (head seen from above, nose up)  →  right", fontsize=8)
    return fig
