"""brainalign.plotting: every figure is built, has labelled axes and colorbars (not pixels)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from brainalign import BrainData
from brainalign.plotting import (
    plot_brain_map,
    plot_layer_assignment,
    plot_layer_profile,
    plot_layers_by_time,
    plot_mds,
    plot_rdm,
    plot_sensor_map,
)


def _labelled(fig):
    """Axes with data (not colorbars) all have x and y labels or ticks labels."""
    main = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert main
    for ax in main:
        if not ax.axison:
            continue
        xl = ax.get_xlabel() or any(t.get_text() for t in ax.get_xticklabels())
        yl = ax.get_ylabel() or any(t.get_text() for t in ax.get_yticklabels())
        assert xl and yl, f"unlabelled axes {ax}"


def _colorbar_labels(fig):
    return [ax.get_ylabel() for ax in fig.axes if ax.get_label() == "<colorbar>"]


def _table(rng, models=("netA", "netB"), rois=("V1", "IT"), subjects=("s1", "s2")):
    rows = []
    for mdl in models:
        for li in range(4):
            for s in subjects:
                for r in rois:
                    sc = rng.random() * 0.5
                    rows.append(dict(model=mdl, layer=f"layer{li}", layer_index=li, layer_depth=li / 3,
                                     subject=s, roi=r, method="rsa", metric="corr", score=sc, ceiling=0.6,
                                     ceiling_low=0.5, normalized_score=sc / 0.6, ci_low=sc - 0.05,
                                     ci_high=sc + 0.05, p=0.01))
    return pd.DataFrame(rows)


def test_layer_profile_panels_and_labels(rng):
    df = _table(rng)
    fig = plot_layer_profile(df)
    assert isinstance(fig, Figure)
    main = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(main) == 2  # one panel per ROI
    assert {ax.get_title() for ax in main} == {"V1 · rsa", "IT · rsa"}
    assert all("depth" in ax.get_xlabel() for ax in main)
    assert all("corr" in ax.get_ylabel() for ax in main)
    _labelled(fig)
    # the ceiling band is drawn from ceiling_low to ceiling
    band = [p for p in main[0].patches]
    assert band, "expected a noise-ceiling band"
    fig2 = plot_layer_profile(df, roi="IT", model="netA", x="layer_index", y="normalized_score")
    ax = fig2.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"layer{i}" for i in range(4)]
    assert "normalized" in ax.get_ylabel()


def test_layer_profile_errors(rng):
    df = _table(rng)
    with pytest.raises(ValueError, match="No rows with roi in"):
        plot_layer_profile(df, roi="V5")
    with pytest.raises(ValueError, match="Allowed values are"):
        plot_layer_profile(df, y="r2")
    with pytest.raises(ValueError, match="needs the columns"):
        plot_layer_profile(df.drop(columns="layer_depth"))
    with pytest.raises(TypeError, match="DataFrame"):
        plot_layer_profile(df.to_dict())
    with pytest.raises(ValueError, match="empty"):
        plot_layer_profile(df.iloc[:0])


def test_layer_assignment():
    df = pd.DataFrame(dict(model=["a", "a", "b", "b"], roi=["V1", "IT"] * 2, method="rsa",
                           best_layer=["l0", "l3", "c1", "c5"], best_layer_depth=[0.0, 1.0, 0.2, 0.9],
                           depth_ci_low=[0, 0.6, 0.0, 0.7], depth_ci_high=[0.3, 1.0, 0.4, 1.0],
                           p_best=[0.9, 0.6, 0.5, 0.8]))
    fig = plot_layer_assignment(df)
    ax = fig.axes[0]
    assert "depth" in ax.get_xlabel() and ax.get_ylabel() == "region"
    assert len(ax.patches) == 4


def test_layers_by_time():
    times = np.linspace(-0.1, 0.5, 13)
    fig = plot_layers_by_time(np.random.default_rng(0).random((3, 13)), ["c1", "c2", "fc"], times,
                              time_unit="ms", colorbar_label="Kendall tau-a")
    assert fig.axes[0].get_xlabel() == "time (ms)"
    assert "Kendall tau-a" in _colorbar_labels(fig)
    _labelled(fig)
    with pytest.raises(ValueError, match="n_layers, n_times"):
        plot_layers_by_time(np.zeros((3, 5)), ["a", "b"], times)


def _volume(shape, rng):
    ijk = np.argwhere(np.ones(shape, bool))
    ch = pd.DataFrame(ijk, columns=["i", "j", "k"])
    return BrainData(rng.normal(size=(5, len(ch))), channels=ch,
                     space={"kind": "volume", "affine": np.diag([3.0, 3.0, 3.0, 1.0]), "shape": shape})


def test_brain_map_volume(rng):
    bd = _volume((8, 9, 7), rng)
    fig = plot_brain_map(bd, rng.normal(size=bd.n_channels), colorbar_label="Pearson r")
    assert isinstance(fig, Figure) and len(fig.axes) >= 3
    assert any("Pearson r" in t.get_text() for t in fig.texts)
    fig = plot_brain_map(bd, np.abs(rng.normal(size=bd.n_channels)), kind="glass", title="glass")
    assert isinstance(fig, Figure)


def test_brain_map_thin_volume(rng):
    bd = _volume((6, 5, 1), rng)
    fig = plot_brain_map(bd, rng.random(bd.n_channels), colorbar_label="layer depth")
    assert _colorbar_labels(fig) == ["layer depth"]
    _labelled(fig)
    assert "mm" in fig.axes[0].get_xlabel()


def test_brain_map_errors(rng):
    bd = _volume((4, 4, 4), rng)
    with pytest.raises(ValueError, match=r"shape \(n_channels,\)"):
        plot_brain_map(bd, np.zeros(3))
    with pytest.raises(ValueError, match="needs surface data"):
        plot_brain_map(bd, np.zeros(bd.n_channels), kind="surface")
    with pytest.raises(ValueError, match="Allowed values"):
        plot_brain_map(bd, np.zeros(bd.n_channels), kind="flat")
    with pytest.raises(ValueError, match="no brain space"):
        plot_brain_map(BrainData(np.zeros((2, 3))), np.zeros(3))


def _surface(rng, with_xy):
    n = 12
    ch = pd.DataFrame({"hemi": ["left"] * n + ["right"] * n, "vertex": list(range(n)) * 2})
    if with_xy:
        ch["x"] = rng.normal(size=2 * n)
        ch["y"] = rng.normal(size=2 * n)
    return BrainData(rng.normal(size=(3, 2 * n)), channels=ch,
                     space={"kind": "surface", "n_vertices": {"left": n, "right": n}})


@pytest.mark.parametrize("with_xy", [True, False])
def test_brain_map_surface_without_mesh_falls_back(rng, with_xy):
    bd = _surface(rng, with_xy)
    with pytest.warns(UserWarning, match="without a mesh"):
        fig = plot_brain_map(bd, rng.random(bd.n_channels), colorbar_label="score")
    assert _colorbar_labels(fig) == ["score"]
    _labelled(fig)


def test_brain_map_surface_with_mesh(rng):
    bd = _surface(rng, False)
    # a tiny closed mesh: 12 vertices of an icosahedron
    t = (1 + 5 ** 0.5) / 2
    coords = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t],
                       [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], float)
    faces = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
                      [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
                      [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]])
    fig = plot_brain_map(bd, rng.random(bd.n_channels), mesh={"left": (coords, faces), "right": (coords, faces)})
    assert isinstance(fig, Figure)
    with pytest.raises(ValueError, match="no entry for hemisphere"):
        plot_brain_map(bd, rng.random(bd.n_channels), mesh={"left": (coords, faces)})


def test_sensor_map(rng):
    mne = pytest.importorskip("mne")
    montage = mne.channels.make_standard_montage("easycap-M1")
    names = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "Cz", "Pz"]
    info = mne.create_info(names, 100.0, "eeg")
    info.set_montage(montage)
    bd = BrainData(rng.normal(size=(4, len(names))), channels={"name": names}, sfreq=100.0,
                   space={"kind": "sensor", "info": info})
    fig = plot_sensor_map(bd, rng.random(len(names)), colorbar_label="Pearson r")
    assert "Pearson r" in _colorbar_labels(fig)
    assert "eeg" in fig.axes[0].get_title()
    fig = plot_brain_map(bd, rng.random(len(names)))  # dispatches to the topomap
    assert isinstance(fig, Figure)
    with pytest.raises(ValueError, match="Allowed values"):
        plot_sensor_map(bd, rng.random(len(names)), ch_type="mag")
    with pytest.raises(ValueError, match="needs sensor data"):
        plot_sensor_map(_volume((3, 3, 3), rng), np.zeros(27))


def test_rdm_and_mds(rng):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    x = np.concatenate([rng.normal(0, 1, (5, 4)), rng.normal(5, 1, (5, 4))])
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    rdms = rsatoolbox.rdm.RDMs(np.stack([d, d * 2]), dissimilarity_measure="euclidean",
                               rdm_descriptors={"name": ["a", "b"]})
    cats = ["animate"] * 5 + ["inanimate"] * 5
    fig = plot_rdm(rdms, categories=cats, rank=True)
    titles = [ax.get_title() for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert titles == ["a", "b"]
    assert _colorbar_labels(fig) == ["dissimilarity (percentile)"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["animate", "inanimate"]
    fig = plot_mds(rdms, categories=cats)
    ax = fig.axes[0]
    assert "MDS dimension 1" in ax.get_xlabel()
    # the two clusters are separated in the embedding
    xy = np.concatenate([c.get_offsets() for c in ax.collections])
    a, b = xy[:5], xy[5:]
    assert np.linalg.norm(a.mean(0) - b.mean(0)) > 3 * max(a.std(0).max(), b.std(0).max())
    with pytest.raises(ValueError, match="categories has 3 labels"):
        plot_mds(d, categories=["a", "b", "c"])
    with pytest.raises(ValueError, match="rsatoolbox RDMs or an array"):
        plot_rdm(np.zeros((3, 4)))


def test_rdm_colorbar_label_kept_with_rank(rng):
    d = rng.random((2, 6, 6))
    d = d + d.transpose(0, 2, 1)
    assert _colorbar_labels(plot_rdm(d, rank=True, colorbar_label="1 - r (rank)")) == ["1 - r (rank)"]
    assert _colorbar_labels(plot_rdm(d, colorbar_label="1 - r")) == ["1 - r"]
    assert _colorbar_labels(plot_rdm(d, rank=True)) == ["dissimilarity (percentile)"]
    assert _colorbar_labels(plot_rdm(d)) == ["dissimilarity"]


def test_layer_assignment_legend_covers_no_label():
    df = pd.DataFrame(dict(model=["a", "a", "b", "b"], roi=["V1", "IT"] * 2, method="rsa",
                           best_layer=["encoder.layer.0.output", "encoder.layer.11.output", "features.1", "features.12"],
                           best_layer_depth=[0.0, 1.0, 0.2, 0.9], p_best=[0.9, 0.6, 0.5, 0.8]))
    fig = plot_layer_assignment(df)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 1
    box = legends[0].get_window_extent(renderer)
    ax = fig.axes[0]
    for artist in [*ax.texts, *ax.patches]:
        assert not box.overlaps(artist.get_window_extent(renderer)), artist


def test_view_brain_map_writes_interactive_html(rng, tmp_path):
    from brainalign.plotting import view_brain_map

    bd = _volume((6, 5, 4), rng)
    vals = rng.normal(size=bd.n_channels)
    view = view_brain_map(bd, vals, title="encoding r", path=tmp_path / "map.html")
    page = (tmp_path / "map.html").read_text()
    assert "encoding r" in page and len(page) > 10_000
    assert hasattr(view, "save_as_html")
    surf = _surface(rng, False)
    t = (1 + 5 ** 0.5) / 2
    coords = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t],
                       [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], float)
    faces = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
                      [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
                      [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]])
    mesh = {"left": (coords, faces), "right": (coords, faces)}
    try:
        import plotly  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install plotly"):
            view_brain_map(surf, rng.random(surf.n_channels), mesh=mesh)
    else:
        views = view_brain_map(surf, rng.random(surf.n_channels), mesh=mesh, path=tmp_path / "surf.html")
        assert set(views) == {"left", "right"}
        assert (tmp_path / "surf_left.html").is_file() and (tmp_path / "surf_right.html").is_file()
    with pytest.raises(ValueError, match="needs the cortical mesh"):
        view_brain_map(surf, rng.random(surf.n_channels))
    with pytest.raises(ValueError, match=r"values must have shape \(n_channels,\)"):
        view_brain_map(bd, vals[:-1])
    sensors = BrainData(rng.normal(size=(2, 3)), channels={"name": ["a", "b", "c"]}, sfreq=100.0,
                        space={"kind": "sensor", "info": None})
    with pytest.raises(ValueError, match="No interactive view for data in a 'sensor' space"):
        view_brain_map(sensors, np.zeros(3))
