"""Searchlight RSA: against a per-sphere reference, rsatoolbox, mne-rsa and a planted region."""

import warnings

import numpy as np
import pytest

from brainalign import BrainData
from brainalign.rsa import calc_rdm, compare, searchlight
from brainalign.rsa._searchlight import _grid_neighbours


def _volume(rng, planted):
    shape = (8, 8, 8)
    ijk = np.array(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")).reshape(3, -1).T
    n_cond = 15
    signal = rng.standard_normal((n_cond, 5))
    data = rng.standard_normal((n_cond, len(ijk)))
    region = np.linalg.norm(ijk - np.array([2, 2, 2]), axis=1) <= 2.5
    if planted:
        data[:, region] = signal @ rng.standard_normal((5, region.sum())) * 3 + data[:, region]
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    brain = BrainData(data, channels={"i": ijk[:, 0], "j": ijk[:, 1], "k": ijk[:, 2]},
                      space={"kind": "volume", "affine": aff, "shape": shape})
    far = np.linalg.norm(ijk - np.array([2, 2, 2]), axis=1) > 5.0  # spheres that cannot touch it
    return brain, calc_rdm(signal, method="euclidean"), region, far


def test_searchlight_finds_planted_region(rng):
    brain, model, region, far = _volume(rng, True)
    res = searchlight(brain, model, radius=4.0, n_jobs=2, chunk_size=100)
    m = res.maps[0]
    assert m[region].mean() > 0.3
    assert abs(m[far].mean()) < 0.1
    # joblib semantics: -1 = all cores (crashed with "max_workers must be greater than 0")
    np.testing.assert_array_equal(searchlight(brain, model, radius=4.0, n_jobs=-1, chunk_size=100).maps, res.maps)
    img = res.images[0]
    assert img.shape == (8, 8, 8)
    centre = int(np.flatnonzero((brain.channels[["i", "j", "k"]].to_numpy() == 2).all(1))[0])
    assert np.isclose(img.get_fdata()[2, 2, 2], m[centre])
    np.testing.assert_allclose(res.maps, searchlight(brain, model, radius=4.0).maps)


def test_searchlight_errors(rng):
    brain, model, _, _ = _volume(rng, False)
    with pytest.raises(ValueError, match="radius"):
        searchlight(brain, model, radius=0)
    with pytest.raises(ValueError, match="coordinates"):
        searchlight(BrainData(rng.standard_normal((15, 4))), model)


def _rdm(pats, rdm_method):
    """scipy's pdist: an RDM computed independently of brainalign (NaN if undefined)."""
    from scipy.spatial.distance import pdist

    if rdm_method == "euclidean":
        return pdist(pats, "sqeuclidean") / pats.shape[1]
    if pats.shape[1] < 2:
        return np.full(len(pats) * (len(pats) - 1) // 2, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pdist(pats, "correlation")


def _reference(x, spheres, models, rdm_method, compare_method):
    """One RDM + compare per sphere: the definition the batched kernel must reproduce."""
    out = np.full((len(models), len(spheres)), np.nan)
    for v, idx in enumerate(spheres):
        out[:, v] = compare(models, _rdm(x[:, idx], rdm_method), method=compare_method)[:, 0]
    return out


@pytest.mark.parametrize("rdm_method", ["correlation", "euclidean"])
@pytest.mark.parametrize("compare_method", ["spearman", "corr", "tau-a"])
def test_volume_equals_per_sphere_reference(rng, rdm_method, compare_method):
    from scipy.spatial import cKDTree

    brain, _, _, _ = _volume(rng, True)
    brain = brain.with_data(brain.data + 5.0)  # an offset: the centring must be exact
    models = rng.random((2, 105))
    res = searchlight(brain, models, radius=4.0, rdm_method=rdm_method, compare_method=compare_method,
                      chunk_size=77, min_voxels=1)
    coords = brain.channels[["i", "j", "k"]].to_numpy() * 2.0
    spheres = cKDTree(coords).query_ball_point(coords, r=4.0)
    ref = _reference(brain.data, spheres, models, rdm_method, compare_method)
    np.testing.assert_allclose(res.maps, ref, atol=1e-10)
    np.testing.assert_array_equal(res.n_voxels, [len(s) for s in spheres])


def test_grid_spheres_equal_kdtree_for_an_oblique_affine(rng):
    from scipy.spatial import cKDTree

    ijk = np.argwhere(rng.random((7, 6, 5)) < 0.7)  # an irregular mask
    a = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    aff = np.eye(4)
    aff[:3, :3] = a
    nb = _grid_neighbours(ijk, aff, 5.0)
    coords = ijk @ a.T
    for v, s in enumerate(cKDTree(coords).query_ball_point(coords, r=5.0)):
        assert sorted(nb[v][nb[v] >= 0]) == sorted(s)


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")  # inside rsatoolbox
def test_volume_equals_rsatoolbox(rng, capsys):
    from rsatoolbox.rdm import RDMs
    from rsatoolbox.rdm import compare as r_compare
    from rsatoolbox.util.searchlight import get_searchlight_RDMs, get_volume_searchlight

    shape = (7, 7, 6)
    ijk = np.argwhere(np.ones(shape, bool))
    data = rng.standard_normal((10, len(ijk)))
    events = np.repeat(np.arange(5), 2)
    models = rng.random((2, 10))
    centers, neighbors = get_volume_searchlight(np.ones(shape), radius=3, threshold=1.0)
    sl = get_searchlight_RDMs(data, centers, neighbors, events, method="correlation", verbose=False)
    ref = r_compare(RDMs(models), sl, method="spearman")
    brain = BrainData(data, samples={"event": events}, channels={"i": ijk[:, 0], "j": ijk[:, 1], "k": ijk[:, 2]},
                      space={"kind": "volume", "affine": np.eye(4), "shape": shape})
    ours = searchlight(brain, models, radius=2.9, descriptor="event")  # rsatoolbox: distance < 3 voxels
    assert len(centers) > 0
    np.testing.assert_allclose(ours.maps[:, centers], ref, atol=1e-12)


def _sensors(rng, n_ep=12, n_ch=14, n_t=9):
    pos = rng.standard_normal((n_ch, 3)) * 0.05
    x = rng.standard_normal((n_ep, n_ch, n_t)) + 2.0
    return BrainData(x, channels={"x": pos[:, 0], "y": pos[:, 1], "z": pos[:, 2]}, sfreq=100.0)


@pytest.mark.parametrize("window,step,mode", [(1, 1, "concatenate"), (3, 2, "concatenate"), (3, 1, "average")])
def test_spatio_temporal_equals_per_patch_reference(rng, window, step, mode):
    from scipy.spatial import cKDTree

    brain = _sensors(rng)
    models = rng.random((2, 66))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # single-channel spheres (when any) warn
        res = searchlight(brain, models, radius=0.06, window=window, step=step, window_mode=mode, min_voxels=1,
                          chunk_size=10)
    pos = brain.channels[["x", "y", "z"]].to_numpy()
    spheres = cKDTree(pos).query_ball_point(pos, r=0.06)
    starts = range(0, 9 - window + 1, step)
    assert res.maps.shape == (2, 14, len(starts))
    for w, s in enumerate(starts):
        seg = brain.data[:, :, s:s + window]
        for c, idx in enumerate(spheres):
            pats = seg[:, idx].mean(-1) if mode == "average" else seg[:, idx].reshape(12, -1)
            if pats.shape[1] < 2:  # one feature: the correlation distance is undefined
                assert np.isnan(res.maps[:, c, w]).all()
                continue
            ref = compare(models, _rdm(pats, "correlation"), method="spearman")[:, 0]
            np.testing.assert_allclose(res.maps[:, c, w], ref, atol=1e-10)
    np.testing.assert_allclose(res.times, [brain.times[s:s + window].mean() for s in starts])


def test_spatio_temporal_equals_mne_rsa(rng):
    mne = pytest.importorskip("mne")
    mne_rsa = pytest.importorskip("mne_rsa")
    from brainalign.datasets import load_mne

    mont = mne.channels.make_standard_montage("biosemi32")
    info = mne.create_info(mont.ch_names, 250.0, "eeg")
    info.set_montage(mont)
    n_ep = 10
    ep = mne.EpochsArray(rng.standard_normal((n_ep, 32, 12)), info,
                         events=np.c_[np.arange(n_ep) * 100, np.zeros(n_ep, int), np.arange(n_ep) + 1], verbose=False)
    models = [rng.random(45), rng.random(45)]
    ref = mne_rsa.rsa_epochs(ep, models, spatial_radius=0.05, temporal_radius=1 / 250.0, verbose=False)
    ours = searchlight(load_mne(ep), np.stack(models), radius=0.05, window=3, min_voxels=1)
    np.testing.assert_allclose(ours.maps, np.stack([r.data for r in ref]), atol=1e-12)


def test_undefined_spheres_warn_and_get_nan(rng):
    brain, model, _, _ = _volume(rng, False)
    x = brain.data.copy()
    x[4, :200] = 1.0  # condition 4 constant over every sphere inside the first 200 voxels
    with pytest.warns(RuntimeWarning, match=r"searchlight sphere\(s\) have a condition whose pattern is constant"):
        res = searchlight(brain.with_data(x), model, radius=2.0)
    assert np.isnan(res.maps[0, :10]).all()
    assert np.isfinite(res.maps[0, 400:][res.n_voxels[400:] >= 5]).all()


def test_sensor_radius_in_metres_and_other_errors(rng):
    brain = _sensors(rng)
    with pytest.raises(ValueError, match=r"radius=6.0 puts all 14 channels in every sphere.*metres for MNE data"):
        searchlight(brain, rng.random((1, 66)))
    with pytest.raises(ValueError, match="window must be an int in"):
        searchlight(brain, rng.random((1, 66)), radius=0.06, window=20)
    vol, model, _, _ = _volume(rng, False)
    with pytest.raises(ValueError, match="window= is for epoched data"):
        searchlight(vol, model, window=3)
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        searchlight(vol, model, chunk_size=0)
