"""Benchmark: the permutation and bootstrap nulls of ``brainalign.stats`` against direct recomputation.

* ``permutation_test(method="circular_shift")`` computes every circular lag of every run at once
  (cross-correlation by FFT) and sums the drawn lags; the reference rolls the predictions of every
  run by the same drawn lags and recomputes ``pearson_r`` per permutation (what earlier versions did).
* ``bootstrap_ci(metric="pearson_r")`` computes each resample from per-unit sums weighted by the unit
  counts; the reference (``metric=<callable>``) gathers the resampled rows and recomputes the score.

Both pairs use the same draws and must agree to 1e-8; the script exits non-zero otherwise. Each pair
runs alternately (reference, brainalign, reference, ...; ``--repeats``, default 5, 3 with ``--quick``)
after a warm-up of each; the ratio is the median of the per-run ratios, with their min-max. No issue
sets a target for these. Timings are only indicative on a shared machine.

Run: ``python tests/benchmarks/bench_stats.py [--quick] [--json PATH] [--n-runs 4] [--run-length 300]
[--targets 2000] [--n-permutations 500] [--n-resamples 500] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _harness.py beside this file
from _harness import add_arguments, alternate, make_row, versions, write_json  # noqa: E402


def main(argv=None) -> int:
    from brainalign.stats import bootstrap_ci, pearson_r, permutation_test
    from brainalign.stats._permutation import _draw_shifts

    ap = argparse.ArgumentParser()
    ap.add_argument("--n-runs", type=int, default=4)
    ap.add_argument("--run-length", type=int, default=300)
    ap.add_argument("--targets", type=int, default=2000)
    ap.add_argument("--n-permutations", type=int, default=500)
    ap.add_argument("--n-resamples", type=int, default=500)
    ap.add_argument("--repeats", "--repeat", type=int, default=None, help="alternating runs (default 5; 3 quick)")
    add_arguments(ap, quick_help="2 runs x 100 samples x 200 targets, 100 permutations / resamples, 3 runs")
    args = ap.parse_args(argv)
    if args.quick:
        args.n_runs, args.run_length, args.targets, args.n_permutations, args.n_resamples = 2, 100, 200, 100, 100
    repeats = args.repeats or (3 if args.quick else 5)
    rng = np.random.default_rng(0)
    n = args.n_runs * args.run_length
    y = rng.standard_normal((n, args.targets))
    pred = 0.2 * y + rng.standard_normal((n, args.targets))
    groups = np.repeat(np.arange(args.n_runs), args.run_length)
    blocks = [np.flatnonzero(groups == g) for g in range(args.n_runs)]

    def ours_perm():
        return permutation_test(y, pred, groups=groups, n_permutations=args.n_permutations, random_state=1).null

    def direct_perm():
        # the same draws as permutation_test: check_random_state(1) then _draw_shifts
        shifts = _draw_shifts(np.random.default_rng(1), np.array([len(b) for b in blocks]), args.n_permutations)
        null = np.empty((args.n_permutations, args.targets))
        for k in range(args.n_permutations):
            perm = np.empty(n, dtype=np.int64)
            for j, b in enumerate(blocks):
                perm[b] = np.roll(b, shifts[k, j])
            null[k] = pearson_r(y, pred[perm])
        return null

    t_perm, out = alternate({"peer": direct_perm, "ours": ours_perm}, repeats)
    perm_err = float(np.abs(out["ours"] - out["peer"]).max())

    units = np.repeat(np.arange(n // 10), 10)

    def ours_boot():
        return bootstrap_ci(y, pred, groups=units, n_resamples=args.n_resamples, random_state=2).distribution

    def direct_boot():
        return bootstrap_ci(y, pred, groups=units, metric=lambda a, b: pearson_r(a, b), n_resamples=args.n_resamples,
                            random_state=2).distribution

    t_boot, out = alternate({"peer": direct_boot, "ours": ours_boot}, repeats)
    boot_err = float(np.abs(out["ours"] - out["peer"]).max())
    size = f"{args.n_runs} runs x {args.run_length} samples x {args.targets} targets"
    rows = [make_row(f"circular-shift permutation null, {args.n_permutations} shifts, {size}",
                     "direct (roll + pearson_r per shift)", t_perm["peer"], t_perm["ours"], equal=perm_err <= 1e-8,
                     diff=perm_err, tolerance=1e-8),
            make_row(f"bootstrap CI, {args.n_resamples} resamples of {n // 10} units, {size}",
                     "recomputed per resample", t_boot["peer"], t_boot["ours"], equal=boot_err <= 1e-8,
                     diff=boot_err, tolerance=1e-8)]
    rp, rb = rows
    print(f"data: {size}; medians of {repeats} alternating runs")
    print(f"permutation null ({args.n_permutations} circular shifts): FFT {rp['brainalign_s']:.3f} s, direct "
          f"{rp['peer_s']:.3f} s (x{rp['ratio']:.1f}); max |difference| {perm_err:.2e}")
    print(f"bootstrap ({args.n_resamples} resamples of {n // 10} units): weighted sums {rb['brainalign_s']:.3f} s, "
          f"recomputed {rb['peer_s']:.3f} s (x{rb['ratio']:.1f}); max |difference| {boot_err:.2e}")
    write_json(args.json, __file__, rows, versions=versions("numpy", "scipy", "torch"))
    if perm_err > 1e-8 or boot_err > 1e-8:
        print("FAIL: the fast and direct computations disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
