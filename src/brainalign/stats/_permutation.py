"""Permutation tests for encoding scores that respect temporal autocorrelation."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .._docs import fill_doc
from .._utils import Bunch, check_option, check_random_state, progress_bar
from ._checks import check_fraction, check_int, paired_arrays, warn_constant
from ._multiple import fdr_correction, max_stat_pvalues
from ._scores import _pearson, _r2

__all__ = ["permutation_test"]

#: Fewer effectively independent blocks than this and the test warns (its null is coarse).
MIN_INDEPENDENT_BLOCKS = 20


def _blocks(n: int, groups: Any, block_size: Any) -> list[np.ndarray]:
    if groups is not None:
        g = np.asarray(groups)
        if g.shape != (n,):
            raise ValueError(f"groups has {g.size} labels but there are {n} samples.")
        _, first = np.unique(g, return_index=True)
        return [np.flatnonzero(g == g[i]) for i in np.sort(first)]
    if block_size is None:
        raise ValueError("Give groups (runs) or block_size to define the blocks that are permuted or shifted.")
    block_size = check_int("block_size", block_size, min_value=1)
    return [np.arange(s, min(s + block_size, n)) for s in range(0, n, block_size)]


def _mean_autocorrelation(x: np.ndarray, blocks: list[np.ndarray], max_lag: int) -> np.ndarray:
    """Autocorrelation at lags 0..max_lag, within blocks, averaged over blocks (by length) and columns."""
    cols = np.linspace(0, x.shape[1] - 1, min(x.shape[1], 256)).astype(int)
    acf, weight = np.zeros(max_lag + 1), 0
    for b in blocks:
        z = x[np.ix_(b, cols)]
        z = z - z.mean(0)
        keep = (z * z).sum(0) > 0
        if len(b) <= max_lag or not keep.any():
            continue
        size = 1 << int(np.ceil(np.log2(2 * len(b))))
        f = np.fft.rfft(z[:, keep], n=size, axis=0)
        ac = np.fft.irfft(f * np.conj(f), n=size, axis=0)[: max_lag + 1]
        acf += len(b) * (ac / ac[0]).mean(1)
        weight += len(b)
    return acf / weight if weight else np.r_[1.0, np.zeros(max_lag)]


def autocorrelation_time(y_true: np.ndarray, y_pred: np.ndarray, blocks: list[np.ndarray]) -> float:
    """Integrated autocorrelation time of the score's summands (Bartlett): ``1 + 2 Σ_k ρ_y(k) ρ_p(k)``.

    The larger of two estimates, as sample autocorrelations of short runs are biased low: the
    sum over the initial positive sequence of the products (lags up to a quarter of the
    shortest block), and the AR(1) value ``(1 + a) / (1 - a)``, ``a = ρ_y(1) ρ_p(1)``, with
    each lag-1 autocorrelation bias-corrected as ``ρ + (1 + 4ρ) / m`` (Kendall) for runs of
    ``m`` samples. 1 for white series, ``(1 + φ²) / (1 - φ²)`` for two AR(1) series with
    coefficient φ.
    """
    max_lag = max(1, min(200, min(len(b) for b in blocks) // 4))
    acf_y = _mean_autocorrelation(y_true, blocks, max_lag)
    acf_p = _mean_autocorrelation(y_pred, blocks, max_lag)
    prod = acf_y[1:] * acf_p[1:]
    stop = np.flatnonzero(prod <= 0)
    prod = prod[: stop[0]] if stop.size else prod
    lengths = np.array([len(b) for b in blocks], dtype=float)
    m = float((lengths**2).sum() / lengths.sum())  # the typical run length, weighted by samples

    def corrected(rho: float) -> float:
        return float(np.clip(rho + (1 + 4 * rho) / m, 0, 0.99)) if rho > 0 else 0.0

    a = corrected(acf_y[1]) * corrected(acf_p[1])
    return float(max(1 + 2 * prod.sum(), (1 + a) / (1 - a)))


def _draw_shifts(rng: np.random.Generator, lengths: np.ndarray, n_permutations: int) -> np.ndarray:
    """(n_permutations, n_blocks) circular shifts, uniform on every combination but all-zero."""
    shifts = np.floor(rng.random((n_permutations, len(lengths))) * lengths).astype(np.int64)
    while True:
        ident = ~shifts.any(axis=1)
        if not ident.any():
            return shifts
        shifts[ident] = np.floor(rng.random((int(ident.sum()), len(lengths))) * lengths).astype(np.int64)


def _draw_orders(rng: np.random.Generator, n_blocks: int, n_permutations: int) -> np.ndarray:
    """(n_permutations, n_blocks) block orders, uniform on every permutation but the identity."""
    orders = np.argsort(rng.random((n_permutations, n_blocks)), axis=1)
    while True:
        ident = (orders == np.arange(n_blocks)).all(axis=1)
        if not ident.any():
            return orders
        orders[ident] = np.argsort(rng.random((int(ident.sum()), n_blocks)), axis=1)


def _null_cross(yc: np.ndarray, pc: np.ndarray, blocks: list[np.ndarray], method: str, rng: np.random.Generator,
                n_permutations: int, verbose: bool) -> np.ndarray:
    """(n_permutations, n_targets) values of ``Σ_i y_i p_perm(i)`` for random shifts / block orders."""
    if method == "circular_shift":
        lengths = np.array([len(b) for b in blocks])
        shifts = _draw_shifts(rng, lengths, n_permutations)
        out = np.zeros((n_permutations, yc.shape[1]))
        for j in progress_bar(range(len(blocks)), verbose=verbose, desc="circular shifts"):
            b, m = blocks[j], len(blocks[j])
            # cross[s] = Σ_i y[i] p[(i - s) mod m]: every circular lag at once (a correlation by FFT)
            cross = np.fft.irfft(np.fft.rfft(yc[b], axis=0) * np.conj(np.fft.rfft(pc[b], axis=0)), n=m, axis=0)
            out += cross[shifts[:, j]]
        return out
    orders = _draw_orders(rng, len(blocks), n_permutations)
    Yb, Pb = yc[np.stack(blocks)], pc[np.stack(blocks)]  # (n_blocks, m, n_targets)
    gram = np.einsum("ait,cit->act", Yb, Pb)  # gram[a, c] = Σ_i y_a[i] p_c[i]
    return gram[np.arange(len(blocks))[None, :], orders].sum(axis=1)


@fill_doc
def permutation_test(
    y_true: Any,
    y_pred: Any,
    *,
    groups: Any = None,
    method: str = "circular_shift",
    block_size: int | None = None,
    n_permutations: int = 1000,
    metric: str = "pearson_r",
    alpha: float = 0.05,
    random_state: Any = 0,
    verbose: bool = False,
) -> Bunch:
    """Per-target permutation p-values of held-out scores, preserving autocorrelation.

    The predictions are scrambled in a way that keeps their temporal structure, and the
    score is recomputed against the untouched data:

    - ``"circular_shift"``: within every run (or block) the predictions are rotated by a
      random lag. The lags of the runs are drawn uniformly from every combination except
      "no run shifted", so that the observed score is one member of the group of rotations:
      the p-value is then valid for stationary series whatever their autocorrelation.
      (Excluding lags near 0, as earlier versions did, made the test anti-conservative: a
      false-positive rate of 0.099 at α = 0.05 on AR(1) φ = 0.9 noise.)
    - ``"block"``: whole blocks (runs, or ``block_size`` chunks of equal length) of the
      predictions are permuted between positions (needs blocks of equal length, each long
      compared with the autocorrelation).

    The same permutation is applied to every target, so the null distribution keeps the
    spatial correlation and supports the max-statistic FWE correction (``pvalues_fwe``).
    The nulls are computed exactly from the cross-products at every lag (by FFT), without
    materializing permuted predictions.

    A ``UserWarning`` says when the data hold fewer than 20 effectively independent blocks
    (samples divided by the integrated autocorrelation time of the score's summands,
    ``1 + 2 Σ_k ρ_y(k) ρ_pred(k)``): the null is then coarse and rests on few independent
    values. For ``"block"``, it warns when blocks are shorter than twice that time (they are
    not independent, the test is anti-conservative) or when fewer than 20 orders exist.

    Parameters
    ----------
    y_true, y_pred : array of shape (n_samples, n_targets)
        Finite values.
    groups : array of shape (n_samples,), optional
        Run labels (preferred); else ``block_size``.
    method : {"circular_shift", "block"}
    block_size : int, optional
    %(n_permutations)s
    metric : {"pearson_r", "r2"}
    alpha : float
        Level for the FDR decision ``reject_fdr``.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    Bunch with ``score`` (n_targets,), ``pvalues`` (uncorrected, ``(1 + #null >= score) /
    (1 + n_permutations)``), ``pvalues_fdr`` (Benjamini–Hochberg), ``pvalues_fwe``
    (max statistic), ``reject_fdr``, ``null`` (n_permutations, n_targets) and
    ``n_independent_blocks`` (the estimate above). A target whose score is undefined
    (constant column) has NaN score and p-values and is left out of the corrections.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.standard_normal((200, 2)); pred = y + rng.standard_normal((200, 2))
    >>> res = permutation_test(y, pred, block_size=50, n_permutations=99)
    >>> bool((res.pvalues < 0.05).all())
    True
    """
    check_option("method", method, ["circular_shift", "block"])
    check_option("metric", metric, ["pearson_r", "r2"])
    alpha = check_fraction("alpha", alpha)
    n_permutations = check_int("n_permutations", n_permutations, min_value=1)
    yt, yp = paired_arrays(y_true, y_pred)
    yt, yp = yt.astype(np.float64), yp.astype(np.float64)
    n = yt.shape[0]
    blocks = _blocks(n, groups, block_size)
    # runs are separate recordings; block_size chunks are pieces of one series
    tau = autocorrelation_time(yt, yp, blocks if groups is not None else [np.arange(n)])
    n_independent = n / tau
    if method == "block":
        lengths = {len(b) for b in blocks}
        if len(lengths) != 1:
            raise ValueError(f"method='block' needs blocks of equal length; got lengths {sorted(lengths)}. "
                             "Use method='circular_shift' or a block_size that divides the samples.")
        if len(blocks) < 2:
            raise ValueError("method='block' needs at least 2 blocks.")
        m = len(blocks[0])
        if m < 2 * tau:
            warnings.warn(f"method='block': blocks of {m} samples are shorter than twice the autocorrelation time "
                          f"of the data ({tau:.1f} samples), so neighbouring blocks are not independent and the "
                          "test is anti-conservative. Use longer blocks or method='circular_shift'.", stacklevel=2)
        elif math.factorial(len(blocks)) < 20:
            warnings.warn(f"method='block' with {len(blocks)} blocks has only {math.factorial(len(blocks))} orders: "
                          "no p-value below 0.05 can be reached. Use more blocks or method='circular_shift'.",
                          stacklevel=2)
    else:
        if all(len(b) == 1 for b in blocks):
            raise ValueError("method='circular_shift' needs runs (blocks) of at least 2 samples; every block has 1.")
        if n_independent < MIN_INDEPENDENT_BLOCKS:
            warnings.warn(
                f"The {n} samples hold about {n_independent:.1f} independent blocks (autocorrelation time "
                f"{tau:.1f} samples, {len(blocks)} run(s)): fewer than {MIN_INDEPENDENT_BLOCKS}, so the null "
                "distribution of the circular shifts is coarse and its p-values unreliable. Record longer or "
                "more runs.", stacklevel=2)
    rng = check_random_state(random_state)
    score_fn = _pearson if metric == "pearson_r" else _r2
    observed, const = score_fn(yt, yp)
    warn_constant(const, "y_true or y_pred" if metric == "pearson_r" else "y_true",
                  "the score", stacklevel=2)
    ym, pm = yt.mean(0), yp.mean(0)
    yc, pc = yt - ym, yp - pm
    ssy, ssp = (yc * yc).sum(0), (pc * pc).sum(0)
    cross = _null_cross(yc, pc, blocks, method, rng, n_permutations, verbose)
    ok = ~const
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "pearson_r":
            null = np.where(ok, cross / np.sqrt(np.where(ok, ssy * ssp, 1)), np.nan)
        else:  # Σ (y - p_perm)² = ssy + ssp - 2 cross + n (ȳ - p̄)²: rotations keep sums and sums of squares
            sse = ssy + ssp - 2 * cross + n * (ym - pm) ** 2
            null = np.where(ok, 1 - sse / np.where(ok, ssy, 1), np.nan)
    observed = observed.astype(np.float64)
    tol = 1e-10 * (1 + np.abs(observed))  # FFT round-off must not turn a tie into a miss
    pvals = np.where(ok, (1 + (null >= observed[None] - tol).sum(0)) / (1 + n_permutations), np.nan)
    reject = np.zeros(len(pvals), dtype=bool)
    p_fdr = np.full(len(pvals), np.nan)
    if ok.any():
        reject[ok], p_fdr[ok] = fdr_correction(pvals[ok], alpha)
    return Bunch(score=observed, pvalues=pvals, pvalues_fdr=p_fdr, reject_fdr=reject,
                 pvalues_fwe=max_stat_pvalues(observed, null) if ok.any() else np.full(len(pvals), np.nan),
                 null=null, n_independent_blocks=float(n_independent))
