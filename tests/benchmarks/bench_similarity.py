"""Benchmark brainalign.similarity on a layer grid, against per-pair loops, in the same run.

Problem (issue 10): two models of 12 layers each, 5,000 stimuli x 768 features, float64, the
full 12 x 12 grid.

- linear CKA: ckatorch's ``cka_base`` (a pip-installable CKA package: two n x n Gram matrices,
  centred, per pair) in a per-pair loop vs ``similarity.pairwise(A, B, method="cka")``
  (target >= 10x);
- Procrustes (angular, alpha = 1): a netrep-style per-pair loop (``LinearMetric.fit_score``:
  centre both, full SVD of the cross-covariance, transform both, angle of the Frobenius inner
  product) vs ``pairwise(..., method="procrustes-angular")`` (target >= 1.5x);
- every other measure's time on the grid (at ``--others-stimuli`` stimuli: PLS, ridge, RSA and
  the RBF kernels grow fast with the number of stimuli).

Every comparison prints the largest absolute difference of the two results (must be <= 1e-8;
the script exits non-zero otherwise). The reference loops and brainalign run alternately
(loop, brainalign, loop, ...; ``--repeats``, default 5) after a warm-up on small slices; each
ratio is the median of the per-run ratios. A reference loop is timed on ``--ref-pairs`` pairs
spread over the grid (default 24 of the 144; ``--ref-pairs 0`` for every pair: about 10
minutes per run for ckatorch on one thread) and its time scaled to the whole grid; the line
says so. Run ``python tests/benchmarks/bench_similarity.py`` (full), ``--quick`` (1,000 x
256, 4 layers, 3 runs), ``--device cuda``, ``--json PATH`` (the rows for ``run_all.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _harness.py beside this file
from _harness import add_arguments, alternate, make_row, versions, write_json  # noqa: E402


def make_layers(n_layers: int, n: int, p: int, seed: int) -> list[np.ndarray]:
    """A 'network': each layer a noisy nonlinear function of the previous one."""
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((n, p))
    out = []
    for _ in range(n_layers):
        h = np.tanh(h @ (rng.standard_normal((p, p)) / np.sqrt(p))) + 0.3 * rng.standard_normal((n, p))
        out.append(h.copy())
    return out


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _row(name: str, t_ref: float | None, t_ours: float, diff: float | None = None, note: str = "") -> None:
    if t_ref is None:
        print(f"{name:<46s} brainalign {t_ours:9.2f} s {note}")
        return
    ok = "ok" if diff is not None and diff <= 1e-8 else "MISMATCH"
    print(f"{name:<46s} per-pair {t_ref:9.2f} s  brainalign {t_ours:8.2f} s  x{t_ref / t_ours:6.1f}  "
          f"max|diff| {diff:.1e} {ok} {note}")


def _pairs(n_a: int, n_b: int, limit: int | None):
    pairs = [(i, j) for i in range(n_a) for j in range(n_b)]
    if limit is None or limit >= len(pairs):
        return pairs, ""
    idx = np.linspace(0, len(pairs) - 1, limit).round().astype(int)
    return [pairs[k] for k in idx], f"(reference timed on {limit} of {len(pairs)} pairs, extrapolated)"


def ckatorch_loop(A, B, pairs, device):
    import ckatorch
    import torch

    ta = [torch.tensor(a, device=device) for a in A]
    tb = [torch.tensor(b, device=device) for b in B]
    return {(i, j): float(ckatorch.cka_base(ta[i], tb[j])) for i, j in pairs}


def netrep_style_loop(A, B, pairs):
    """netrep LinearMetric(alpha=1, center_columns=True, score_method='angular').fit_score, per pair."""
    out = {}
    for i, j in pairs:
        X, Y = A[i], B[j]
        mx, my = X.mean(0), Y.mean(0)
        Xc, Yc = X - mx, Y - my  # fit: centring (alpha=1: no whitening)
        U, _, Vt = np.linalg.svd(Xc.T @ Yc)  # fit: optimal rotation
        tX, tY = (X - mx) @ U, (Y - my) @ Vt.T  # score: transform both
        cos = np.sum(tX * tY) / (np.linalg.norm(tX) * np.linalg.norm(tY))
        out[(i, j)] = float(np.arccos(np.clip(cos, -1, 1)))
    return out


ROWS = []


def _compare_loop(name, peer, ref_fn, ours_fn, pairs, note, n_total, repeats, target):
    """Alternating runs (per-pair loop, brainalign, ...); the loop's time is scaled to the whole grid."""
    times, outs = alternate({"peer": ref_fn, "ours": ours_fn}, repeats, warmup=False)
    scale = n_total / len(pairs)
    ref, ours = outs["peer"], outs["ours"]
    diff = max(abs(ours[i, j] - v) for (i, j), v in ref.items())
    row = make_row(name, peer, [t * scale for t in times["peer"]], times["ours"], equal=diff <= 1e-8, diff=diff,
                   tolerance=1e-8, target=target, note=note)
    ROWS.append(row)
    _row(name, row["peer_s"], row["brainalign_s"], diff,
         f"[paired runs {row['spread'][0]:.1f}-{row['spread'][1]:.1f}x; target {target:g}x] {note}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, quick_help="1,000 stimuli x 256 features, 4 layers, 3 runs")
    parser.add_argument("--repeats", type=int, default=None, help="alternating runs (default 5; 3 with --quick)")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--stimuli", type=int, default=5000)
    parser.add_argument("--features", type=int, default=768)
    parser.add_argument("--others-stimuli", type=int, default=None,
                        help="stimuli for the other measures (default 2 x features + 64: fewer make the CCA "
                             "family and Procrustes-euclidean degenerate, which brainalign refuses)")
    parser.add_argument("--ref-pairs", type=int, default=24,
                        help="time the reference loops on this many pairs, spread over the grid, and scale their "
                             "time to the whole grid (default 24; 0 = every pair)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-others", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.layers, args.stimuli, args.features = 4, 1000, 256
    repeats = args.repeats or (3 if args.quick else 5)

    import torch

    from brainalign import similarity

    L, n, p, dev = args.layers, args.stimuli, args.features, args.device
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {dev}; grid {L} x {L} layers, "
          f"{n} stimuli x {p} features, float64\n")
    A, B = make_layers(L, n, p, 0), make_layers(L, n, p, 1)
    # warm-up on small slices (imports, torch and BLAS thread pools): not what is measured
    small_a, small_b = [a[:50] for a in A[:2]], [b[:50] for b in B[:2]]
    ckatorch_loop(small_a, small_b, [(0, 0)], dev), netrep_style_loop(small_a, small_b, [(0, 0)])
    similarity.pairwise(small_a, small_b, method=["cka", "procrustes-angular"], device=dev)

    pairs, note = _pairs(L, L, args.ref_pairs or None)
    grid = f"{L} x {L} layers, {n:,} stimuli x {p}"
    _compare_loop(f"linear CKA grid, {grid}", "ckatorch cka_base per pair", lambda: ckatorch_loop(A, B, pairs, dev),
                  lambda: similarity.pairwise(A, B, method="cka", device=dev), pairs, note, L * L, repeats, 10.0)
    _compare_loop(f"procrustes-angular grid, {grid}", "netrep-style per-pair loop",
                  lambda: netrep_style_loop(A, B, pairs),
                  lambda: similarity.pairwise(A, B, method="procrustes-angular", device=dev), pairs, note, L * L,
                  repeats, 1.5)
    write_json(args.json, __file__, ROWS, versions=versions("ckatorch", "numpy", "torch"), device=dev)
    bad = [r["workload"] for r in ROWS if not r["equal"]]
    if bad:
        print(f"different numbers: {bad}", file=sys.stderr)
    if args.skip_others:
        return 1 if bad else 0

    m = min(n, args.others_stimuli or 2 * p + 64)
    a, b = [x[:m] for x in A], [x[:m] for x in B]
    print(f"\nother measures on the {L} x {L} grid at {m} stimuli x {p} features (brainalign only):")
    others = {
        "cka-hsic_song": {}, "cka-hsic_lange": {}, "cka-rbf": {}, "cka-angular": {},
        "procrustes-euclidean": {}, "cca-angular": {}, "nbs": {}, "bures_distance": {},
        "permutation-angular": {}, "svcca-var99": {"variance": 0.6}, "svcca-var95": {"variance": 0.5},
        "pwcca": {"variance": 0.5}, "cca-mean_sq_corr": {"variance": 0.5}, "mutual_knn": {}, "cycle_knn": {},
        "rsa": {}, "trsa": {}, "pls": {"cv": 3}, "ridge": {"cv": 3},
    }
    for name, kw in others.items():
        t, _ = _timed(lambda: similarity.pairwise(a, b, method=name, device=dev, **kw))
        _row(f"{name} {kw if kw else ''}".strip(), None, t)
    # measures that share per-matrix work (centred data, norms, SVD) in one call
    t, _ = _timed(lambda: similarity.pairwise(a, b, method=["cka", "procrustes-angular", "nbs", "bures_distance",
                                                            "cka-angular"], device=dev))
    _row("cka + procrustes + nbs + bures + cka-angular, one call", None, t)
    # stochastic metrics: 5 repeats of 500 stimuli x 64 features
    rng = np.random.default_rng(0)
    ra = [x[:500, :64][None] + 0.3 * rng.standard_normal((5, 500, 64)) for x in A[:4]]
    rb = [x[:500, :64][None] + 0.3 * rng.standard_normal((5, 500, 64)) for x in B[:4]]
    for name in ("stochastic-gaussian", "stochastic-energy"):
        t, _ = _timed(lambda: similarity.pairwise(ra, rb, method=name, device=dev))
        _row(f"{name} (4 x 4, 5 repeats x 500 x 64)", None, t)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
