import numpy as np
import pytest

from brainalign.stats import fdr_correction, holm_correction, max_stat_pvalues


@pytest.mark.parametrize("method, mne_method, sm_method", [("bh", "indep", "fdr_bh"), ("by", "negcorr", "fdr_by")])
def test_fdr_equals_mne_and_statsmodels(rng, method, mne_method, sm_method):
    from mne.stats import fdr_correction as mne_fdr
    from statsmodels.stats.multitest import multipletests

    p = rng.uniform(size=200) ** 3
    rej, adj = fdr_correction(p, 0.05, method=method)
    rej_m, adj_m = mne_fdr(p, 0.05, method=mne_method)
    rej_s, adj_s = multipletests(p, 0.05, method=sm_method)[:2]
    np.testing.assert_allclose(adj, adj_m, atol=1e-12)
    np.testing.assert_allclose(adj, adj_s, atol=1e-12)
    np.testing.assert_array_equal(rej, rej_m)
    np.testing.assert_array_equal(rej, rej_s)
    grid = p.reshape(20, 10)  # any shape, corrected as one family
    np.testing.assert_allclose(fdr_correction(grid, method=method)[1], adj.reshape(20, 10))


def test_holm_equals_statsmodels(rng):
    from statsmodels.stats.multitest import multipletests

    p = rng.uniform(size=50) ** 4
    p[3] = p[7]  # ties
    rej, adj = holm_correction(p, 0.05)
    rej_s, adj_s = multipletests(p, 0.05, method="holm")[:2]
    np.testing.assert_allclose(adj, adj_s, atol=1e-12)
    np.testing.assert_array_equal(rej, rej_s)


def test_correction_errors():
    with pytest.raises(ValueError, match=r"alpha must be a number in \(0, 1\)"):
        fdr_correction([0.1, 0.2], 1.5)
    with pytest.raises(ValueError, match=r"1 do not \(first at index \(1,\): nan\)"):
        fdr_correction([0.1, np.nan])
    with pytest.raises(ValueError, match=r"first at index \(0,\): 1.2"):
        holm_correction([1.2, 0.1])
    with pytest.raises(ValueError, match="'method'"):
        fdr_correction([0.1], method="storey")
    with pytest.raises(ValueError, match="empty"):
        holm_correction([])


def test_max_stat_controls_fwe(rng):
    null = rng.standard_normal((500, 50))
    obs = rng.standard_normal(50)  # no effect anywhere
    p = max_stat_pvalues(obs, null)
    assert p.min() > 0.05
    obs[0] = 10.0
    assert max_stat_pvalues(obs, null)[0] == pytest.approx(1 / 501)
    null[:, 3] = np.nan  # an undefined target is left out of the maximum and gets a NaN p-value
    obs[3] = np.nan
    p = max_stat_pvalues(obs, null)
    assert np.isnan(p[3]) and p[0] == pytest.approx(1 / 501)
    with pytest.raises(ValueError, match=r"null must have shape \(n_permutations, 50\)"):
        max_stat_pvalues(obs, null[:, :3])
