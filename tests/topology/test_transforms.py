"""Geo-topological transforms: definition, pitfalls of earlier implementations, rsatoolbox."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rsatoolbox.rdm import RDMs
from scipy.spatial.distance import pdist, squareform

from scipy.stats import rankdata as average_ranks

from brainalign.topology import default_grid, geodesic, geotopological


def _floyd(g, zero_edges=True):
    """Reference all-pairs shortest paths (dense Floyd-Warshall); zero-weight pairs are edges
    of length 0 (``zero_edges``) or no edges (the authors' code, via networkx)."""
    w = squareform(g)
    d = np.where((w < 1) & ((w > 0) | zero_edges), w, np.inf)
    np.fill_diagonal(d, 0)
    for k in range(len(d)):
        d = np.minimum(d, d[:, k, None] + d[k][None, :])
    return squareform(d, checks=False)


def _authors_rgdm(g):
    """The authors' procedure (doerlbh/TopologicalRSA, geodesic after the GT transform),
    rewritten with networkx: a zero weight is no edge, weight-1 edges are removed, the path
    lengths are rank-transformed (disconnected pairs: inf, tied at the top)."""
    import networkx as nx

    graph = nx.from_numpy_array(squareform(g))
    graph.remove_edges_from([(a, b) for a, b, w in graph.edges.data("weight") if w == 1])
    return average_ranks(np.round(squareform(np.asarray(nx.floyd_warshall_numpy(graph)), checks=False), 12))


def test_definition(rng):
    v = rng.random(45)
    g = geotopological(v, low=0.2, up=0.7).get_vectors()[0]
    r = average_ranks(v)
    s = (r - r.min()) / (r.max() - r.min())
    lo, hi = np.quantile(s, 0.2), np.quantile(s, 0.7)
    np.testing.assert_allclose(g[s < lo], 0)
    np.testing.assert_allclose(g[s > hi], 1)
    band = (s >= lo) & (s <= hi)
    np.testing.assert_allclose(g[band], (s[band] - lo) / (hi - lo))


def test_low_equal_up_is_binary_and_full_range_is_rank_rdm(rng):
    v = rng.random(45)
    g = geotopological(v, low=0.4, up=0.4).get_vectors()[0]
    assert set(np.unique(g)) == {0.0, 1.0}
    r = average_ranks(v)
    np.testing.assert_allclose(geotopological(v, low=0, up=1).get_vectors()[0], (r - r.min()) / (r.max() - r.min()))
    np.testing.assert_allclose(geotopological(v, low=0, up=1, rank=False).get_vectors()[0],
                               (v - v.min()) / (v.max() - v.min()))


def test_pitfall_thresholds_per_rdm_not_pooled(rng):
    a = rng.random(45)
    both = np.stack([a, 10 + 100 * a])  # same order, very different scale
    g = geotopological(both, low=0.2, up=0.6, rank=False).get_vectors()
    np.testing.assert_allclose(g[0], g[1])  # pooled thresholds would make the first all 0


def test_pitfall_band_values_not_clipped_to_one(rng):
    v = np.linspace(0.0, 1.0, 45)
    g = geotopological(v, low=0.2, up=0.5, rank=False).get_vectors()[0]
    band = (v >= np.quantile(v, 0.2)) & (v < np.quantile(v, 0.5))
    assert (g[band] < 1).all() and (g[band] > 0).sum() >= band.sum() - 1


def test_pitfall_nan_is_not_a_no_op(rng):
    v = rng.random(45)
    v[5] = np.nan
    g = geotopological(v, low=0.2, up=0.6).get_vectors()[0]
    assert np.isnan(g[5]) and np.isfinite(np.delete(g, 5)).all()
    assert (g == 0).sum() > 0 and (g == 1).sum() > 0  # thresholds were applied
    d = geodesic(v, low=0.2, up=0.6).get_vectors()[0]
    assert np.isfinite(d).sum() > 0


def test_pitfall_zero_weight_edges_stay_edges():
    # chain 0-1-2-3 with zero-weight links: every pair of the chain is at distance 0
    n = 4
    w = np.ones((n, n))
    for i in range(n - 1):
        w[i, i + 1] = w[i + 1, i] = 0.0
    w[0, 3] = w[3, 0] = 0.5
    np.fill_diagonal(w, 0)
    with pytest.warns(RuntimeWarning, match=r"4 conditions in 1 group\(s\), 100% of its RGDM is 0"):
        d = geodesic(squareform(w), low=0.0, up=1.0, rank=False, normalize=False,
                     convention="contract").get_matrices()[0]
    np.testing.assert_allclose(d, 0.0)
    # the library pitfall: a dense graph where zero means "no edge" disconnects them
    from scipy.sparse.csgraph import shortest_path

    naive = shortest_path(np.where(w < 1, w, 0), directed=False)
    assert naive[0, 1] != 0.0  # naive routing takes the 0.5 detour or fails


def test_pitfall_disconnected_gives_inf_or_cap():
    w = np.array([[0, 0.0, 1, 1], [0.0, 0, 1, 1], [1, 1, 0, 0.2], [1, 1, 0.2, 0]])
    v = squareform(w)
    d = geodesic(v, low=0.0, up=0.5, rank=False, normalize=False, convention="contract").get_matrices()[0]
    assert np.isinf(d[0, 2]) and d[0, 1] == 0
    capped = geodesic(v, low=0.0, up=0.5, rank=False, disconnected=1.0, convention="contract").get_matrices()[0]
    assert capped[0, 2] == 1.0
    # the authors' convention: disconnected pairs tie at the top rank
    ranks = geodesic(v, low=0.0, up=0.5, rank=False, normalize=False).get_matrices()[0]
    assert ranks[0, 2] == ranks[0, 3] == ranks.max()


@pytest.mark.filterwarnings("ignore:geodesic.*convention='contract'")
@pytest.mark.parametrize("low,up", [(0, 1), (0.1, 0.5), (0.05, 0.3), (0.3, 0.3), (0, 0.2)])
def test_geodesic_exact_vs_floyd_warshall(low, up, rng):
    v = pdist(rng.standard_normal((30, 3)))
    g = geotopological(v, low=low, up=up).get_vectors()[0]
    d = geodesic(v, low=low, up=up, normalize=False, convention="contract").get_vectors()[0]
    np.testing.assert_allclose(d, _floyd(g))
    np.testing.assert_allclose(geodesic(v, low=low, up=up, normalize=False).get_vectors()[0],
                               average_ranks(np.round(_floyd(g, zero_edges=False), 12)))
    dn = geodesic(v, low=low, up=up, convention="contract").get_vectors()[0]
    fin = np.isfinite(dn)
    if fin.any() and d[fin].max() > 0:
        np.testing.assert_allclose(dn[fin], d[fin] / d[fin].max())


def test_agreement_and_documented_differences_with_rsatoolbox(rng):
    from rsatoolbox.rdm.transform import geodesic_transform, geotopological_transform

    v = pdist(rng.standard_normal((15, 3)))
    v = v / v.max()  # values in (0, 1]: rsatoolbox's late clipping then bites
    # single RDM, rank=False: rsatoolbox's RGTM equals ours except where its defect bites:
    ref = geotopological_transform(RDMs(v[None].copy()), 0.1, 0.9).get_vectors()[0]
    ours = geotopological(v, low=0.1, up=0.9, rank=False).get_vectors()[0]
    defect = (ref == 1) & (ours < 1)  # band values rescaled, then clipped to 1 as if above `up`
    assert defect.any()
    np.testing.assert_allclose(ours[~defect], ref[~defect], atol=1e-12)
    # rsatoolbox's geodesic, like the authors' code, drops zero-weight edges (networkx treats
    # 0 as "no edge"): the authors' convention is its rank transform
    g = ours
    ref_geo = geodesic_transform(RDMs(g[None].copy())).get_vectors()[0]
    np.testing.assert_allclose(geodesic(g, low=0, up=1, rank=False, normalize=False).get_vectors()[0],
                               average_ranks(np.round(ref_geo, 12)))
    contracted = geodesic(g, low=0, up=1, rank=False, normalize=False, convention="contract").get_vectors()[0]
    assert (contracted <= ref_geo + 1e-12).all() and (contracted < ref_geo - 1e-9).any()


def test_threshold_errors():
    with pytest.raises(ValueError, match="0 <= low <= up <= 1"):
        geotopological(np.arange(6.0), low=0.6, up=0.4)
    with pytest.raises(ValueError, match="0 <= low <= up <= 1"):
        geodesic(np.arange(6.0), low=-0.1, up=0.4)
    with pytest.raises(ValueError, match="Allowed values are 'authors', 'contract'"):
        geodesic(np.arange(6.0), low=0.1, up=0.4, convention="paper")
    with pytest.raises(TypeError, match="low must be a number in \\[0, 1\\].*got str 'abc'"):
        geotopological(np.arange(6.0), low="abc", up=0.5)


def test_keeps_descriptors(rng):
    r = RDMs(rng.random((2, 10)), rdm_descriptors={"subject": ["a", "b"]},
             pattern_descriptors={"stimulus_id": list("vwxyz")})
    g = geotopological(r, low=0.1, up=0.5)
    assert list(g.rdm_descriptors["subject"]) == ["a", "b"]
    assert list(g.pattern_descriptors["stimulus_id"]) == list("vwxyz")


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.floats(0, 1), st.floats(0, 1), st.booleans())
def test_output_in_unit_interval_and_monotone(random_state, a, b, rank):
    low, up = min(a, b), max(a, b)
    v = np.random.default_rng(random_state).random(28)
    g = geotopological(v, low=low, up=up, rank=rank).get_vectors()[0]
    assert (g >= 0).all() and (g <= 1).all()
    order = np.argsort(v)
    assert (np.diff(g[order]) >= -1e-12).all()


@pytest.mark.parametrize("fraction", [0.0, 2.0])  # 0: always Floyd-Warshall; 2: always Dijkstra
def test_geodesic_dense_and_sparse_solvers_exact(fraction, rng, monkeypatch):
    from brainalign.topology import _transforms

    monkeypatch.setattr(_transforms, "_DENSE_FRACTION", fraction)
    v = pdist(rng.standard_normal((60, 3)))
    for low, up in [(0, 1), (0.05, 0.3), (0, 0.1)]:
        g = geotopological(v, low=low, up=up).get_vectors()[0]
        with pytest.warns(RuntimeWarning) if low >= 0.05 else _no_warning():
            d = geodesic(v, low=low, up=up, normalize=False, convention="contract").get_vectors()[0]
        np.testing.assert_allclose(d, _floyd(g))
        np.testing.assert_allclose(geodesic(v, low=low, up=up, normalize=False).get_vectors()[0],
                                   average_ranks(np.round(_floyd(g, zero_edges=False), 12)))


def _no_warning():
    import contextlib
    import warnings

    @contextlib.contextmanager
    def ctx():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            yield

    return ctx()


def test_authors_convention_equals_their_procedure(rng):
    v = pdist(rng.standard_normal((25, 4)))
    for low, up in [(0.1, 0.5), (0.0, 0.2), (0.3, 0.9), (0.2, 0.25)]:
        g = geotopological(v, low=low, up=up).get_vectors()[0]
        np.testing.assert_allclose(geodesic(v, low=low, up=up, normalize=False).get_vectors()[0], _authors_rgdm(g))


def test_contract_collapses_for_low_from_0_1_and_warns(k92):
    """11.5: contracting every below-low pair makes RGDM(0.1, 0.5) of human IT mostly zeros;
    the authors' convention (the default) does not, and the contraction warns."""
    with pytest.warns(RuntimeWarning, match=r"into a handful of groups at distance 0 in 8 of 8 RDM\(s\) \(worst: RDM \d, "
                                            r"92 conditions in \d+ group\(s\), \d+% of its RGDM is 0\)") as rec:
        contracted = geodesic(k92.hit_rdms, low=0.1, up=0.5, convention="contract").get_vectors()
    assert len(rec) == 1  # once per call, not once per RDM
    assert ((contracted == 0).mean(1) >= 0.5).all()
    authors = geodesic(k92.hit_rdms, low=0.1, up=0.5).get_vectors()
    assert ((authors == 0).mean(1) < 0.01).all()
    assert min(len(np.unique(r)) for r in authors) > 500  # a graded RGDM, not a handful of values


def test_default_grid_stays_out_of_the_degenerate_region(k92):
    """No default grid point gives an RGTM / RGDM whose most common value fills most pairs."""
    def mode_fraction(v):
        return np.unique(v, return_counts=True)[1].max() / v.size

    for kind in ["rgtm", "authors", "contract"]:
        grid = default_grid(geodesic=kind != "rgtm", convention="authors" if kind != "contract" else "contract")
        assert (0.0, 0.0) not in grid and (1.0, 1.0) not in grid
        for low, up in grid:
            if kind == "rgtm":
                v = geotopological(k92.hit_rdms, low=low, up=up).get_vectors()
                limit = max(low, 1 - up) + 0.02  # the thresholded tails themselves
            else:
                v = geodesic(k92.hit_rdms, low=low, up=up, convention=kind).get_vectors()
                limit = 0.25
            assert max(mode_fraction(r) for r in v) <= limit, (kind, low, up)
    assert all(low == 0.0 for low, _ in default_grid(geodesic=True, convention="contract"))
