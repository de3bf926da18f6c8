"""Benchmark: brainalign TRF vs MNE's ReceptiveField (issue 14, target 2).

Workloads (continuous M/EEG, 4 stimulus features, lags 0..290 ms at 100 Hz = 30 lags, 64 channels):

1. one alpha, 30,000 samples: ``TRF(alphas=1.0)`` vs ``ReceptiveField(estimator=1.0)``;
2. one alpha, 300,000 samples (10x);
3. per-channel alpha chosen by 5-fold CV over 20 alphas (``np.logspace(-2, 6, 20)``) vs MNE
   fitting *one* alpha, at both lengths (target: less time than MNE's single fit).

Each ratio is the median of ``--repeats`` (>= 5) alternating runs (MNE, brainalign, MNE, ...),
in this process, with the spread of the per-run ratios shown. The coefficients of the one-alpha
fits are compared (max relative difference; they must agree to 1e-8), and so are the
cross-validated fit's coefficients with MNE refitted (untimed) at the alphas it chose per
channel; the script exits non-zero if either differs. ``--json PATH`` writes the rows for
``run_all.py``.

Run ``python tests/benchmarks/bench_trf.py`` (full) or ``--quick`` (3,000 and 30,000 samples,
3 repeats: a check that it runs). Threads: whatever the environment gives (set
``OMP_NUM_THREADS`` to compare like with like).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _harness.py beside this file
from _harness import add_arguments, alternate, fmt_row, make_row, versions, write_json  # noqa: E402

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


def _mne_fit(X, Y, alpha: float = 1.0):
    from mne.decoding import ReceptiveField

    return ReceptiveField(TMIN, TMAX, SFREQ, estimator=alpha).fit(X, Y)


def _ours(X, Y, alphas):
    from brainalign.encoding import TRF

    return TRF(tmin=TMIN, tmax=TMAX, sfreq=SFREQ, alphas=alphas, cv=5).fit(X, Y)


def _check_cv_coefs(X, Y, cv_model) -> float:
    """Largest relative difference between the cross-validated TRF's coefficients and MNE's fit
    of each channel group at the alpha the TRF chose for it (the same model once the alphas are chosen)."""
    alphas = np.asarray(cv_model.best_alphas_)
    worst = 0.0
    for a in np.unique(alphas):
        chans = np.flatnonzero(alphas == a)
        rf = _mne_fit(X, Y[:, chans], float(a))
        ref = rf.coef_.reshape(len(chans), *rf.coef_.shape[-2:])
        ours = np.asarray(cv_model.coef_)[chans]
        worst = max(worst, float(np.abs(ours - ref).max() / np.abs(ref).max()))
    return worst


def bench(n: int, repeats: int) -> list[dict]:
    X, Y = make_data(n)
    warm = slice(0, min(n, 2000))  # imports and first-call set-up stay out of the timings
    _mne_fit(X[warm], Y[warm]), _ours(X[warm], Y[warm], 1.0), _ours(X[warm], Y[warm], ALPHAS)
    # alternating runs: MNE, brainalign one alpha, brainalign 20 alphas, MNE, ...
    times, outs = alternate({"mne": lambda: _mne_fit(X, Y), "one": lambda: _ours(X, Y, 1.0),
                             "cv": lambda: _ours(X, Y, ALPHAS)}, repeats, warmup=False)
    rf, one, cv = outs["mne"], outs["one"], outs["cv"]
    diff_one = float(np.abs(one.coef_ - rf.coef_).max() / np.abs(rf.coef_).max())
    diff_cv = _check_cv_coefs(X, Y, cv)  # untimed: MNE refitted at the chosen alphas
    n_alphas = len(np.unique(cv.best_alphas_))
    return [
        make_row(f"TRF one alpha, {n:,} samples x {N_FEAT} feat x 30 lags x {N_CHAN} ch", "MNE ReceptiveField",
                 times["mne"], times["one"], equal=diff_one <= 1e-8, diff=diff_one, tolerance=1e-8,
                 diff_kind="max rel diff", target=3.0),
        make_row(f"TRF 20 alphas x 5 folds (per channel), {n:,} samples", "MNE ReceptiveField (one alpha)",
                 times["mne"], times["cv"], equal=diff_cv <= 1e-8, diff=diff_cv, tolerance=1e-8,
                 diff_kind="max rel diff", target=1.0,
                 note=f"coefficients checked against MNE refitted at the {n_alphas} alpha(s) chosen"),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, quick_help="3,000 and 30,000 samples, 3 runs: check that it runs")
    parser.add_argument("--repeats", type=int, default=None, help="alternating runs per workload (default 5)")
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
    for r in rows:
        print(fmt_row(r), flush=True)
    write_json(args.json, __file__, rows, versions=versions("mne", "numpy", "torch"))
    if not all(r["equal"] for r in rows):
        print("coefficients differ from MNE's by more than 1e-8 (relative)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
