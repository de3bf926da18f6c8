"""Benchmark: brainalign TRF vs MNE's ReceptiveField (issue 14, target 2).

Workloads (continuous M/EEG, 4 stimulus features, lags 0..290 ms at 100 Hz = 30 lags, 64 channels):

1. one alpha, 30,000 samples: ``TRF(alphas=1.0)`` vs ``ReceptiveField(estimator=1.0)``;
2. one alpha, 300,000 samples (10x);
3. per-channel alpha chosen by 5-fold CV over 20 alphas (``np.logspace(-2, 6, 20)``) vs MNE
   fitting *one* alpha, at both lengths (target: less time than MNE's single fit).

Each ratio is the median of ``--repeats`` (>= 5) alternating runs (MNE, brainalign, MNE, ...),
in this process, with the spread shown. The coefficients of every one-alpha pair are compared
(max relative difference; they must agree to 1e-8), and the script exits non-zero if not.

Run ``python tests/benchmarks/bench_trf.py`` (full) or ``--quick`` (3,000 and 30,000 samples,
3 repeats: a check that it runs). Threads: whatever the environment gives (set
``OMP_NUM_THREADS`` to compare like with like).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

N_FEAT, N_CHAN, SFREQ, TMIN, TMAX = 4, 64, 100.0, 0.0, 0.29
ALPHAS = np.logspace(-2, 6, 20)


def make_data(n: int, random_state: int = 0):
    """Smooth features (speech-envelope-like) and channels driven by a few lagged features plus noise."""
    rng = np.random.default_rng(random_state)
    X = rng.standard_normal((n + 20, N_FEAT))
    X = np.stack([np.convolve(X[:, j], np.hanning(9), "same") for j in range(N_FEAT)], 1)[10:n + 10]
    kernel = np.exp(-((np.arange(30) - 10) / 4.0) ** 2)
    signal = sum(np.convolve(X[:, j], kernel)[:n, None] * rng.standard_normal((1, N_CHAN)) for j in range(N_FEAT))
    Y = signal / signal.std(0) + rng.standard_normal((n, N_CHAN))
    return X, Y


def _mne_fit(X, Y):
    from mne.decoding import ReceptiveField

    return ReceptiveField(TMIN, TMAX, SFREQ, estimator=1.0).fit(X, Y)


def _ours(X, Y, alphas):
    from brainalign.encoding import TRF

    return TRF(tmin=TMIN, tmax=TMAX, sfreq=SFREQ, alphas=alphas, cv=5).fit(X, Y)


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bench(n: int, repeats: int) -> list[dict]:
    X, Y = make_data(n)
    warm = slice(0, min(n, 2000))  # imports and first-call set-up stay out of the timings
    _mne_fit(X[warm], Y[warm]), _ours(X[warm], Y[warm], 1.0), _ours(X[warm], Y[warm], ALPHAS)
    mne_t, one_t, cv_t, diffs = [], [], [], []
    for _ in range(repeats):
        t, rf = _timed(lambda: _mne_fit(X, Y))
        mne_t.append(t)
        t, ours = _timed(lambda: _ours(X, Y, 1.0))
        one_t.append(t)
        diffs.append(float(np.abs(ours.coef_ - rf.coef_).max() / np.abs(rf.coef_).max()))
        t, _ = _timed(lambda: _ours(X, Y, ALPHAS))
        cv_t.append(t)
    mne_t, one_t, cv_t = map(np.asarray, (mne_t, one_t, cv_t))
    rows = []
    for name, ours_t, target in ((f"TRF one alpha, {n:,} samples", one_t, 3.0),
                                 (f"TRF 20 alphas x 5 folds (per channel), {n:,} samples", cv_t, 1.0)):
        ratios = mne_t / ours_t  # alternating runs, paired
        rows.append(dict(workload=name, peer="MNE ReceptiveField (one alpha)", peer_s=float(np.median(mne_t)),
                         brainalign_s=float(np.median(ours_t)), ratio=float(np.median(ratios)),
                         ratio_min=float(ratios.min()), ratio_max=float(ratios.max()), target=target,
                         max_rel_diff=max(diffs) if "one alpha" in name else None, repeats=repeats))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 repeats: check that it runs")
    parser.add_argument("--repeats", type=int, default=None, help="alternating runs per workload (default 5)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    import mne

    mne.set_log_level("ERROR")
    sizes = (3_000, 30_000) if args.quick else (30_000, 300_000)
    repeats = args.repeats or (3 if args.quick else 5)
    print(f"TRF benchmark: {N_FEAT} features x 30 lags x {N_CHAN} channels, float64; OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; medians of {repeats} alternating runs")
    rows = []
    for n in sizes:
        rows += bench(n, repeats)
    print(f"{'workload':<56s} {'MNE s':>8s} {'ours s':>8s} {'ratio':>7s} {'(min-max)':>13s} {'target':>7s}  equal")
    ok = True
    for r in rows:
        eq = "" if r["max_rel_diff"] is None else f"{r['max_rel_diff']:.1e}"
        if r["max_rel_diff"] is not None and r["max_rel_diff"] > 1e-8:
            ok = False
        met = "met" if r["ratio"] >= r["target"] else "MISSED"
        print(f"{r['workload']:<56s} {r['peer_s']:8.3f} {r['brainalign_s']:8.3f} {r['ratio']:6.1f}x "
              f"({r['ratio_min']:4.1f}-{r['ratio_max']:4.1f}x) {'>=' + format(r['target'], 'g') + 'x':>7s}  {eq} {met}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    if not ok:
        print("coefficients differ from MNE's by more than 1e-8 (relative)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
