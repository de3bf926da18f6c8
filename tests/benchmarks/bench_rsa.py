"""Benchmark brainalign.rsa / brainalign.topology against rsatoolbox, in the same run.

Run: ``python tests/benchmarks/bench_rsa.py`` (``--quick`` for smaller sizes and 3 runs).
Each workload runs rsatoolbox and brainalign alternately (5 times each by default) and
prints the median time of each with its spread, the ratio of the medians (rsatoolbox /
brainalign) and the largest absolute difference of the results (must be <= 1e-6; the run
exits non-zero otherwise). Time-resolved and searchlight RSA: ``bench_rsa_time.py``.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

REPEATS = 5
FAILED = []


def _pair(ref_fn, our_fn, repeats=None):
    """(median rsatoolbox time, median brainalign time, spread text, ref output, our output)."""
    repeats = repeats or REPEATS
    ref_fn(), our_fn()  # warm-up (imports, caches)
    t_ref, t_our = [], []
    for r in range(repeats):
        order = [(ref_fn, t_ref), (our_fn, t_our)]
        for fn, acc in (order if r % 2 == 0 else order[::-1]):
            t = time.perf_counter()
            out = fn()
            acc.append(time.perf_counter() - t)
            if fn is ref_fn:
                ref = out
            else:
                our = out
    spread = f"[{min(t_ref):.3f}-{max(t_ref):.3f} | {min(t_our):.3f}-{max(t_our):.3f}]"
    return float(np.median(t_ref)), float(np.median(t_our)), spread, ref, our


def _row(name, t_ref, t_ours, diff, spread=""):
    ok = "ok" if diff <= 1e-6 else "MISMATCH"
    if diff > 1e-6:
        FAILED.append(name)
    print(f"{name:<44s} rsatoolbox {t_ref:8.3f} s  brainalign {t_ours:7.3f} s  x{t_ref / t_ours:6.1f}  "
          f"max|diff| {diff:.1e} {ok} {spread}", flush=True)


def _best(ref_fn, our_fn):
    t_ref, t_our, spread, ref, our = _pair(ref_fn, our_fn)
    return t_ref, t_our, spread, ref, our


def main(quick: bool = False) -> None:
    import rsatoolbox
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import RDMs
    from rsatoolbox.rdm import calc_rdm as r_calc
    from rsatoolbox.rdm import compare as r_compare
    from rsatoolbox.rdm.transform import geodesic_transform, geotopological_transform

    from brainalign.rsa import bootstrap_pairs, calc_rdm, compare, take_pairs
    from brainalign.topology import geodesic, geotopological

    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(0)
    n_big = 300 if quick else 1000
    print(f"rsatoolbox {rsatoolbox.__version__ if hasattr(rsatoolbox, '__version__') else ''}; sizes: "
          f"{n_big} stimuli for the large cases\n")
    calc_rdm(rng.standard_normal((5, 5)))  # warm up torch

    # --- RDM calculation
    for n_stim, n_ch in [(92, 5000), (n_big, 10000)]:
        x = rng.standard_normal((n_stim, n_ch))
        ds = Dataset(x)
        for method in ["correlation", "euclidean"]:
            t_ref, t_our, spread, ref, our = _best(lambda: r_calc(ds, method=method),
                                                   lambda: calc_rdm(x, method=method, device="cpu"))
            _row(f"calc_rdm {method} {n_stim}x{n_ch}", t_ref, t_our,
                 float(np.abs(ref.get_vectors() - our.get_vectors()).max()), spread)
        xx = rng.standard_normal((2 * n_stim, n_ch))
        obs = {"stimulus_id": np.tile(np.arange(n_stim), 2), "run": np.repeat([0, 1], n_stim)}
        ds2 = Dataset(xx, obs_descriptors=obs)
        t_ref, t_our, spread, ref, our = _best(
            lambda: r_calc(ds2, method="crossnobis", descriptor="stimulus_id", cv_descriptor="run"),
            lambda: calc_rdm(ds2, method="crossnobis", descriptor="stimulus_id", cv_descriptor="run", device="cpu"))
        _row(f"calc_rdm crossnobis 2 runs {n_stim}x{n_ch}", t_ref, t_our,
             float(np.abs(ref.get_vectors() - our.get_vectors()).max()), spread)

    # --- comparisons: 1 data RDM vs 50 layer RDMs
    m = n_big * (n_big - 1) // 2
    data = RDMs(rng.random((1, m)))
    layers = RDMs(rng.random((50, m)))
    for method in ["spearman", "corr", "cosine", "tau-a"]:
        t_ref, t_our, spread, ref, our = _best(lambda: r_compare(data, layers, method=method),
                                               lambda: compare(data, layers, method=method))
        _row(f"compare {method} 1 vs 50 at {n_big} stimuli", t_ref, t_our, float(np.abs(ref - our).max()), spread)

    # --- bootstrap over stimuli: 100 samples, 9 models vs 8 data RDMs at 92 stimuli
    n = 92
    models = RDMs(rng.random((9, n * (n - 1) // 2)))
    datas = RDMs(rng.random((8, n * (n - 1) // 2)))
    samples = [rng.integers(0, n, n) for _ in range(100)]

    def ref_boot():
        return np.array([r_compare(models.subsample_pattern("index", s), datas.subsample_pattern("index", s),
                                   "spearman").mean(1) for s in samples])

    def our_boot():
        vm, vd = models.get_vectors(), datas.get_vectors()
        out = []
        for s in samples:
            idx = bootstrap_pairs(n, s)
            out.append(compare(take_pairs(vm, idx), take_pairs(vd, idx), method="spearman").mean(1))
        return np.array(out)

    t_ref, t_our, spread, ref, our = _best(ref_boot, our_boot)
    _row("bootstrap stimuli 100 x (9 vs 8) spearman", t_ref, t_our, float(np.abs(ref - our).max()), spread)

    # --- geo-topological transforms at n_big stimuli (structured RDM: points in 5-D)
    from scipy.spatial.distance import pdist

    v = pdist(rng.standard_normal((n_big, 5)))
    v = v / v.max()
    low, up = 0.05, 0.5
    t_ref, t_our, spread, ref, our = _best(lambda: geotopological_transform(RDMs(v[None].copy()), low, up),
                                           lambda: geotopological(v, low=low, up=up, rank=False))
    defect = (ref.get_vectors() == 1) & (our.get_vectors() < 1)
    diff = float(np.abs(ref.get_vectors() - our.get_vectors())[~defect].max())
    _row(f"geotopological ({low}, {up}) at {n_big}", t_ref, t_our, diff, spread)
    print(f"{'':<44s} ({int(defect.sum())} band values that rsatoolbox wrongly clips to 1 excluded)")
    from scipy.stats import rankdata

    for low, up in [(0.0, 1.0), (0.0, 0.5), (0.01, 0.3)]:
        g = geotopological(v, low=low, up=up, rank=False)
        # rsatoolbox's geodesic drops zero-weight edges, as the authors' code does; brainalign's
        # default (the authors' convention) is the rank transform of that geodesic
        t_ref, t_our, spread, ref, our = _best(
            lambda: rankdata(np.round(geodesic_transform(RDMs(g.get_vectors().copy())).get_vectors()[0], 12)),
            lambda: geodesic(v, low=low, up=up, rank=False, normalize=False).get_vectors()[0])
        _row(f"geodesic ({low}, {up}) at {n_big} (+ ranks)", t_ref, t_our, float(np.abs(ref - our).max()), spread)
    if FAILED:
        raise SystemExit(f"different numbers: {FAILED}")


if __name__ == "__main__":
    if "--quick" in sys.argv:
        REPEATS = 3
    main(quick="--quick" in sys.argv)
