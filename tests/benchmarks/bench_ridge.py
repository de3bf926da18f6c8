"""Benchmark: brainalign RidgeCV vs himalaya RidgeCV (numpy, torch) vs scikit-learn RidgeCV.

Problem (issue 4): n_train=3000, n_test=500, 768 features, 10,000 and 50,000 voxels,
20 alphas (np.logspace(-2, 6, 20)), 5 folds, float32. Each contender runs in its own
subprocess; peak memory is that process's ``ru_maxrss`` minus the memory of the loaded data
(measured in the same subprocess before fitting). The features have a decaying (power-law)
spectrum like language-model embeddings, which is the harder case for brainalign's alpha basis.

Run ``python tests/benchmarks/bench_ridge.py`` (full), ``--quick`` (2,000 voxels),
``--skip sklearn himalaya-torch`` to leave slow peers out, ``--voxels 10000``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

N_TRAIN, N_TEST, N_FEAT, N_ALPHAS, N_FOLDS = 3000, 500, 768, 20, 5


def make_data(n_vox: int, random_state: int = 0):
    rng = np.random.default_rng(random_state)
    n = N_TRAIN + N_TEST
    basis, _ = np.linalg.qr(rng.standard_normal((N_FEAT, N_FEAT)))
    X = (rng.standard_normal((n, N_FEAT)) * np.arange(1, N_FEAT + 1) ** -0.5) @ basis
    X = (X / X.std(0)).astype(np.float32)
    W = rng.standard_normal((N_FEAT, n_vox)).astype(np.float32) * (rng.uniform(size=n_vox) < 0.7)
    signal = X @ W
    signal /= signal.std(0) + 1e-12
    snr = rng.uniform(0.05, 1.0, n_vox).astype(np.float32)
    Y = (signal * snr + rng.standard_normal((n, n_vox)).astype(np.float32)).astype(np.float32)
    return X[:N_TRAIN], Y[:N_TRAIN], X[N_TRAIN:], Y[N_TRAIN:]


def _mean_r(y, p):
    y = y - y.mean(0)
    p = p - p.mean(0)
    return float(np.mean((y * p).sum(0) / np.sqrt((y * y).sum(0) * (p * p).sum(0) + 1e-30)))


def run_one(name: str, n_vox: int) -> dict:
    from sklearn.model_selection import KFold

    Xtr, Ytr, Xte, Yte = make_data(n_vox)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    alphas = np.logspace(-2, 6, N_ALPHAS)
    cv = KFold(N_FOLDS)
    t0 = time.perf_counter()
    if name == "brainalign":
        from brainalign.encoding import RidgeCV

        model = RidgeCV(alphas=alphas, cv=N_FOLDS, verbose=False).fit(Xtr, Ytr)
        pred = model.predict(Xte)
    elif name.startswith("himalaya"):
        from himalaya.backend import set_backend
        from himalaya.ridge import RidgeCV

        backend = set_backend(name.split("-")[1], on_error="raise")
        model = RidgeCV(alphas=alphas, cv=cv, fit_intercept=True).fit(Xtr, Ytr)
        pred = np.asarray(backend.to_numpy(model.predict(Xte)))
    elif name == "sklearn":
        from sklearn.linear_model import RidgeCV

        model = RidgeCV(alphas=alphas, alpha_per_target=True).fit(Xtr, Ytr)  # efficient LOO, float64 inside
        pred = model.predict(Xte)
    else:
        raise ValueError(name)
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"name": name, "time_s": elapsed, "peak_extra_mb": (peak - base) / 1024, "mean_r": _mean_r(Yte, pred)}


def gemm_gflops() -> float:
    import torch

    a, b = torch.randn(600, 768), torch.randn(768, 8000)
    a @ b
    t0 = time.perf_counter()
    for _ in range(3):
        a @ b
    return 3 * 2 * 600 * 768 * 8000 / (time.perf_counter() - t0) / 1e9


def needed_gflop(n_vox: int) -> float:
    """The issue's GEMM count: per fold UᵀY and the 20 alpha predictions, plus the refit."""
    n_val = N_TRAIN // N_FOLDS
    n_tr = N_TRAIN - n_val
    per_fold = 2 * N_FEAT * n_tr * n_vox + N_ALPHAS * 2 * n_val * N_FEAT * n_vox
    refit = 2 * N_FEAT * N_TRAIN * n_vox + 2 * N_FEAT * N_FEAT * n_vox
    return (N_FOLDS * per_fold + refit) / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 voxels only")
    parser.add_argument("--voxels", type=int, nargs="*", default=None)
    parser.add_argument("--skip", nargs="*", default=[], help="contenders to skip: sklearn himalaya-numpy himalaya-torch")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]))))
        return
    sizes = args.voxels or ([2000] if args.quick else [10_000, 50_000])
    contenders = [c for c in ("brainalign", "himalaya-numpy", "himalaya-torch", "sklearn") if c not in args.skip]
    gf = gemm_gflops()
    print(f"float32 GEMM on this machine: {gf:.0f} GFLOP/s")
    for n_vox in sizes:
        need = needed_gflop(n_vox)
        print(f"\n== {n_vox} voxels: n_train={N_TRAIN}, n_test={N_TEST}, {N_FEAT} features, {N_ALPHAS} alphas, "
              f"{N_FOLDS} folds, float32; GEMM work {need:.0f} GFLOP -> {need / gf:.1f} s at {gf:.0f} GFLOP/s")
        results = {}
        for name in contenders:
            proc = subprocess.run([sys.executable, __file__, "--one", name, str(n_vox)], capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{name:16s} failed: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            results[name] = res
            print(f"{name:16s} time {res['time_s']:8.2f} s   peak +{res['peak_extra_mb']:7.0f} MB   mean test r {res['mean_r']:.4f}")
        if "brainalign" in results:
            ours = results["brainalign"]
            print(f"brainalign time / GEMM-bound estimate: {ours['time_s'] / (need / gf):.2f}")
            for name, res in results.items():
                if name != "brainalign":
                    print(f"speed-up vs {name:16s}: {res['time_s'] / ours['time_s']:.2f}x   "
                          f"memory ratio {ours['peak_extra_mb'] / max(res['peak_extra_mb'], 1):.2f}   "
                          f"mean r diff {ours['mean_r'] - res['mean_r']:+.4f}")


if __name__ == "__main__":
    main()
