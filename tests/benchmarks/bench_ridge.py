"""Benchmark: brainalign RidgeCV vs himalaya RidgeCV (torch and numpy backends), same run.

Workload (issue 14.4): n_samples x n_features x n_targets from 1,000 x 256 x 1,000 to
3,000 x 768 x 50,000, 20 alphas (``np.logspace(-2, 6, 20)``), 5 contiguous folds, float32,
alphas chosen per target by the held-out R² (himalaya is given ``score_func=r2_score`` so
that both select by the same criterion). Each size is fitted on ``n_samples`` samples and
scored on 500 held-out ones. The features have a decaying (power-law) spectrum like
language-model embeddings, the harder case for brainalign's alpha basis.

Contenders run alternately in one process (himalaya-torch, himalaya-numpy, brainalign,
himalaya-torch, ...) after one untimed warm-up each; each time is the median of ``--repeats``
(>= 5) runs, each ratio the median of the per-run ratios, with the spreads (min-max) beside
them. The script checks, in the same run, that
every contender's held-out scores equal brainalign's (mean R² within 1e-3, and per-target R²
within 1e-2 for >= 99% of targets: float32 alpha selection can flip between neighbouring
alphas of equal score) and exits with status 1 when they do not.

Run ``python tests/benchmarks/bench_ridge.py`` (all sizes; long: himalaya-numpy takes minutes
at 50,000 targets), ``--quick`` (a CI-sized smoke run), ``--sizes 1000x256x1000 ...``,
``--skip himalaya-numpy``, ``--json out.json`` (the rows for ``run_all.py``). Set ``OMP_NUM_THREADS`` for the thread
count; the load average is printed before and after, since timings on a busy machine say little.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _harness.py beside this file
from _harness import add_arguments, alternate, make_row, versions, write_json  # noqa: E402

N_TEST, N_ALPHAS, N_FOLDS = 500, 20, 5
FULL_SIZES = [(1000, 256, 1000), (3000, 768, 1000), (2000, 512, 5000), (3000, 768, 10_000), (3000, 768, 50_000)]
QUICK_SIZES = [(400, 64, 300), (600, 128, 1000)]
CONTENDERS = ("brainalign", "himalaya-torch", "himalaya-numpy")
HIMALAYA_TARGETS_BATCH = 10_000


def make_data(n_train: int, n_feat: int, n_targets: int, random_state: int = 0):
    rng = np.random.default_rng(random_state)
    n = n_train + N_TEST
    basis, _ = np.linalg.qr(rng.standard_normal((n_feat, n_feat)))
    X = (rng.standard_normal((n, n_feat)) * np.arange(1, n_feat + 1) ** -0.5) @ basis
    X = (X / X.std(0)).astype(np.float32)
    Y = np.empty((n, n_targets), dtype=np.float32)
    for j0 in range(0, n_targets, 5000):  # in chunks: the float64 temporaries stay small
        j1 = min(j0 + 5000, n_targets)
        W = rng.standard_normal((n_feat, j1 - j0)) * (rng.uniform(size=j1 - j0) < 0.7)
        signal = X @ W
        signal /= signal.std(0) + 1e-12
        Y[:, j0:j1] = signal * rng.uniform(0.05, 1.0, j1 - j0) + rng.standard_normal((n, j1 - j0))
    return X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]


def r2_per_target(y, pred):
    y = y.astype(np.float64)
    pred = pred.astype(np.float64)
    ss_res = ((y - pred) ** 2).sum(0)
    ss_tot = ((y - y.mean(0)) ** 2).sum(0)
    return 1 - ss_res / ss_tot


def fit_predict(name: str, Xtr, Ytr, Xte):
    """Fit one contender and predict the held-out samples; returns (seconds, predictions)."""
    alphas = np.logspace(-2, 6, N_ALPHAS)
    if name == "brainalign":
        from brainalign.encoding import RidgeCV

        t0 = time.perf_counter()
        model = RidgeCV(alphas=alphas, cv=N_FOLDS).fit(Xtr, Ytr)
        pred = model.predict(Xte)
        return time.perf_counter() - t0, np.asarray(pred)
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV
    from himalaya.scoring import r2_score
    from sklearn.model_selection import KFold

    backend = set_backend(name.split("-")[1], on_error="raise")
    t0 = time.perf_counter()
    # himalaya holds (n_alphas, n_val, n_targets) predictions at once: batch the targets as
    # its documentation advises for large problems (brainalign sizes its batches itself)
    batch = min(Ytr.shape[1], HIMALAYA_TARGETS_BATCH)
    model = RidgeCV(alphas=alphas, cv=KFold(N_FOLDS), fit_intercept=True,
                    solver_params=dict(score_func=r2_score, n_targets_batch=batch)).fit(Xtr, Ytr)
    pred = backend.to_numpy(model.predict(Xte))
    return time.perf_counter() - t0, np.asarray(pred)


def compare(ours: np.ndarray, theirs: np.ndarray) -> dict:
    diff = np.abs(ours - theirs)
    return {"mean_r2_diff": float(abs(ours.mean() - theirs.mean())), "frac_within_1e-2": float((diff <= 1e-2).mean()),
            "max_r2_diff": float(diff.max())}


def run_size(size, contenders, repeats: int) -> dict:
    n, p, t = size
    Xtr, Ytr, Xte, Yte = make_data(n, p, t)
    scores = {}
    for c in contenders:  # warm-up (imports, thread pools, first-touch allocations); its scores are checked
        _, pred = fit_predict(c, Xtr, Ytr, Xte)
        scores[c] = r2_per_target(Yte, pred)
    # alternating runs, the peers first: himalaya-torch, himalaya-numpy, brainalign, himalaya-torch, ...
    order = [c for c in contenders if c != "brainalign"] + ["brainalign"]
    times, _ = alternate({c: (lambda c=c: fit_predict(c, Xtr, Ytr, Xte)[0]) for c in order}, repeats,
                         warmup=False)
    out = {"size": f"{n}x{p}x{t}", "contenders": {}, "rows": []}
    ref = scores["brainalign"]
    for c in contenders:
        med = statistics.median(times[c])
        row = {"median_s": med, "min_s": min(times[c]), "max_s": max(times[c]), "times_s": times[c],
               "mean_held_out_r2": float(scores[c].mean())}
        if c != "brainalign":
            row.update(compare(ref, scores[c]))
            row["equal"] = row["mean_r2_diff"] <= 1e-3 and row["frac_within_1e-2"] >= 0.99
            table_row = make_row(
                f"ridge CV {n:,} x {p} x {t:,}, {N_ALPHAS} alphas, {N_FOLDS} folds, float32", c.replace("-", " "),
                times[c], times["brainalign"], equal=row["equal"], diff=row["mean_r2_diff"], tolerance=1e-3,
                diff_kind="mean held-out R² diff", target=3.0,
                note=f"{row['frac_within_1e-2']:.1%} of targets' R² within 1e-2 (>= 99% required)")
            row["ratio"] = table_row["ratio"]  # median of the per-run ratios
            row["ratio_spread"] = tuple(table_row["spread"])
            out["rows"].append(table_row)
        out["contenders"][c] = row
    return out


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, quick_help="CI-sized smoke run (small sizes, same checks)")
    parser.add_argument("--sizes", nargs="*", default=None, help="sizes as n_samples x n_features x n_targets")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per contender (median reported; default 5, 3 with --quick)")
    parser.add_argument("--skip", nargs="*", default=[], choices=CONTENDERS[1:], help="peers to leave out")
    args = parser.parse_args(argv)
    if args.sizes:
        sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]
    else:
        sizes = QUICK_SIZES if args.quick else FULL_SIZES
    contenders = [c for c in CONTENDERS if c not in args.skip]
    args.repeats = args.repeats or (3 if args.quick else 5)
    import torch

    print(f"threads: torch {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; "
          f"load average before: {_load()}")
    print(f"{N_ALPHAS} alphas, {N_FOLDS} folds, float32, {N_TEST} held-out samples; "
          f"median of {args.repeats} alternating runs (min-max); peer/ours = median of the per-run ratios [min-max]")
    header = f"{'size':>16} {'contender':>15} {'median s':>9} {'min-max s':>15} {'peer/ours':>9} {'spread':>13} equal"
    print(header)
    results, all_equal = [], True
    for size in sizes:
        res = run_size(size, contenders, args.repeats)
        results.append(res)
        for c, row in res["contenders"].items():
            ratio = f"{row['ratio']:9.2f}" if "ratio" in row else f"{'':9}"
            spread = (f"{row['ratio_spread'][0]:5.2f}-{row['ratio_spread'][1]:5.2f}x" if "ratio_spread" in row
                      else f"{'':13}")
            eq = "" if c == "brainalign" else ("yes" if row["equal"] else
                                                f"NO (mean R² diff {row['mean_r2_diff']:.2e}, "
                                                f"{row['frac_within_1e-2']:.1%} within 1e-2)")
            print(f"{res['size']:>16} {c:>15} {row['median_s']:9.3f} {row['min_s']:7.3f}-{row['max_s']:<7.3f} "
                  f"{ratio} {spread} {eq}", flush=True)
            all_equal &= row.get("equal", True)
    print(f"load average after: {_load()}")
    write_json(args.json, __file__, [r for res in results for r in res["rows"]], details=results,
               threads=torch.get_num_threads(), versions=versions("himalaya", "numpy", "torch"))
    if not all_equal:
        print("held-out scores differ between contenders", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
