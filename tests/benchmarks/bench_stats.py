"""Benchmark: the permutation and bootstrap nulls of ``brainalign.stats`` against direct recomputation.

* ``permutation_test(method="circular_shift")`` computes every circular lag of every run at once
  (cross-correlation by FFT) and sums the drawn lags; the reference rolls the predictions of every
  run by the same drawn lags and recomputes ``pearson_r`` per permutation (what earlier versions did).
* ``bootstrap_ci(metric="pearson_r")`` computes each resample from per-unit sums weighted by the unit
  counts; the reference (``metric=<callable>``) gathers the resampled rows and recomputes the score.

Both pairs use the same draws and must agree to 1e-8; the script exits non-zero otherwise. Timings are
the best of ``--repeat`` runs and only indicative on a shared machine.

Run: ``python tests/benchmarks/bench_stats.py [--n-runs 4] [--run-length 300] [--targets 2000]
[--n-permutations 500] [--n-resamples 500] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def best_time(fn, repeat: int):
    best, out = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main(argv=None) -> int:
    from brainalign.stats import bootstrap_ci, pearson_r, permutation_test
    from brainalign.stats._permutation import _draw_shifts

    ap = argparse.ArgumentParser()
    ap.add_argument("--n-runs", type=int, default=4)
    ap.add_argument("--run-length", type=int, default=300)
    ap.add_argument("--targets", type=int, default=2000)
    ap.add_argument("--n-permutations", type=int, default=500)
    ap.add_argument("--n-resamples", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
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

    t_fft, null_fft = best_time(ours_perm, args.repeat)
    t_dir, null_dir = best_time(direct_perm, 1)
    perm_err = float(np.abs(null_fft - null_dir).max())

    units = np.repeat(np.arange(n // 10), 10)

    def ours_boot():
        return bootstrap_ci(y, pred, groups=units, n_resamples=args.n_resamples, random_state=2).distribution

    def direct_boot():
        return bootstrap_ci(y, pred, groups=units, metric=lambda a, b: pearson_r(a, b), n_resamples=args.n_resamples,
                            random_state=2).distribution

    t_w, dist_w = best_time(ours_boot, args.repeat)
    t_loop, dist_loop = best_time(direct_boot, 1)
    boot_err = float(np.abs(dist_w - dist_loop).max())
    print(f"data: {args.n_runs} runs x {args.run_length} samples x {args.targets} targets")
    print(f"permutation null ({args.n_permutations} circular shifts): FFT {t_fft:.3f} s, direct {t_dir:.3f} s "
          f"(x{t_dir / t_fft:.1f}); max |difference| {perm_err:.2e}")
    print(f"bootstrap ({args.n_resamples} resamples of {n // 10} units): weighted sums {t_w:.3f} s, recomputed "
          f"{t_loop:.3f} s (x{t_loop / t_w:.1f}); max |difference| {boot_err:.2e}")
    if perm_err > 1e-8 or boot_err > 1e-8:
        print("FAIL: the fast and direct computations disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
