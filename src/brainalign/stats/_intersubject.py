"""The inter-subject ceiling (predict one subject from the others) and score normalization."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._backend import to_numpy
from .._utils import check_option
from ._checks import check_finite_columns, warn_constant
from ._scores import _pearson

__all__ = ["inter_subject_ceiling", "normalize_scores"]


def _stack_subjects(data: Any) -> np.ndarray:
    if isinstance(data, (list, tuple)):
        arrays = [np.asarray(to_numpy(getattr(d, "data", d)), dtype=np.float64) for d in data]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ValueError(f"Every subject needs the same (n_samples, n_channels) shape (time-locked responses "
                             f"in a common space); got {[a.shape for a in arrays]}.")
        X = np.stack(arrays)
    else:
        X = np.asarray(to_numpy(data), dtype=np.float64)
    if X.ndim != 3:
        raise ValueError(f"data must be (n_subjects, n_samples, n_channels) or a list of (n_samples, n_channels) "
                         f"arrays; got shape {X.shape}.")
    if X.shape[0] < 2:
        raise ValueError(f"An inter-subject ceiling needs at least 2 subjects; got {X.shape[0]}.")
    if X.shape[1] < 3:
        raise ValueError(f"An inter-subject ceiling needs at least 3 samples; got {X.shape[1]}.")
    for s, x in enumerate(X):
        check_finite_columns(x, f"data of subject {s}")
    return X


def inter_subject_ceiling(data: Any, *, correction: str | None = "spearman_brown", average: bool = True) -> np.ndarray:
    """Per-channel ceiling from other subjects, for data without repeated stimuli (e.g. stories).

    Leave one subject out: each subject's response is correlated (Pearson, per channel) with
    the mean response of the other ``n - 1`` subjects to the same, time-locked stimulus (a
    story dataset such as Narratives, in a common space). Under the model "every subject =
    shared stimulus-driven signal (variance ``S``) + its own noise (variance ``N``)", that
    leave-one-out correlation is ``r_loo = sqrt(ρ1) · sqrt(ρ_{n-1})``, where ``ρ1 = S / (S + N)``
    and ``ρ_{n-1} = (n - 1) ρ1 / (1 + (n - 2) ρ1)`` (Spearman–Brown) is the reliability of the
    mean of the others: the mean of the others is itself noisy, so ``r_loo`` is below the
    best attainable r.

    - ``correction="spearman_brown"`` (default) solves ``r_loo² = ρ1 ρ_{n-1}`` for ``ρ1``,
      ``ρ1 = ((n - 2) r² + sqrt((n - 2)² r⁴ + 4 (n - 1) r²)) / (2 (n - 1))``, and returns
      ``sqrt(ρ1)``: the best r a model of the shared signal can reach against one subject.
      With 2 subjects ``ρ1`` is their correlation.
    - ``correction=None`` returns ``r_loo`` itself: what a "model" as good as the other
      subjects' mean reaches (a conservative ceiling; normalized scores can exceed 1).

    **Unit: a single subject's single presentation.** Normalize with
    ``normalize_scores(r, ceiling, convention="r/c")``. The ceiling covers the part of the
    response shared across subjects: a subject's idiosyncratic stimulus-driven response
    counts as noise here, and unequal noise levels across subjects make the correction
    approximate. Negative ``r_loo`` gives a ceiling of 0.

    Parameters
    ----------
    data : array of shape (n_subjects, n_samples, n_channels), or list of arrays / BrainData
        Time-locked responses of every subject to the same stimulus, channels in
        correspondence (e.g. surface vertices or parcels of a template).
    correction : {"spearman_brown", None}
    average : bool
        Average the per-subject ceilings over subjects (default), or return them all.

    Returns
    -------
    ceiling : array of shape (n_channels,), or (n_subjects, n_channels) without ``average``
        NaN (with a warning) for a channel constant in a subject or in the mean of the others.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> shared = rng.standard_normal((500, 2))
    >>> subjects = shared + rng.standard_normal((6, 500, 2))  # S = N: ceiling sqrt(1/2)
    >>> bool(np.all(np.abs(inter_subject_ceiling(subjects) - 0.707) < 0.05))
    True
    """
    check_option("correction", correction, ["spearman_brown", None])
    X = _stack_subjects(data)
    n = X.shape[0]
    total = X.sum(0)
    out = np.empty((n, X.shape[2]))
    const = np.zeros(X.shape[2], dtype=bool)
    for s in range(n):
        r, c = _pearson(X[s], (total - X[s]) / (n - 1))
        out[s] = r
        const |= c
    warn_constant(const, "A subject's response (or the mean of the others)", "the correlation", stacklevel=2)
    if correction == "spearman_brown":
        r = np.clip(out, 0, None)
        rho1 = ((n - 2) * r**2 + np.sqrt((n - 2) ** 2 * r**4 + 4 * (n - 1) * r**2)) / (2 * (n - 1))
        out = np.sqrt(rho1)
    else:
        out = np.clip(out, 0, None)
    return out.mean(0) if average else out


def normalize_scores(scores: Any, ceiling: Any, *, convention: str = "r/sqrt(c)", floor: float = 1e-6) -> np.ndarray:
    """Scores as a fraction of the noise ceiling.

    Three conventions are in use; name the one you report, and use a ceiling of the same unit
    as the score (single presentation vs mean of repeats, see :mod:`brainalign.stats`):

    - ``"r/sqrt(c)"`` (Hsu et al. 2004; Schoppe et al. 2016, "CC_norm"): a correlation ``r``
      divided by the square root of a reliability ``c`` that bounds ``r²`` — the
      Spearman–Brown split-half reliability for ``r`` against the repeat mean, the
      explainable variance for ``r`` against single presentations.
    - ``"r/c"``: a correlation divided by a ceiling ``c`` of ``r`` itself
      (:func:`single_presentation_ceiling`, :func:`inter_subject_ceiling`). It is also
      Brain-Score's convention, which divides ``r`` by the Spearman–Brown-corrected split-half
      reliability itself (not its square root): with a reliability below 1 that gives larger
      normalized values than ``"r/sqrt(c)"``.
    - ``"r2/c"``: a variance explained (R² or r²) divided by the explainable variance ``c``.

    Channels with a ceiling at or below ``floor`` (or NaN) give NaN, with one warning.

    Parameters
    ----------
    scores : array of shape (n_channels,)
    ceiling : array of shape (n_channels,)
    convention : {"r/sqrt(c)", "r/c", "r2/c"}
    floor : float

    Returns
    -------
    array of shape (n_channels,)

    Examples
    --------
    >>> normalize_scores([0.3], [0.36], convention="r/sqrt(c)")
    array([0.5])
    """
    check_option("convention", convention, ["r/sqrt(c)", "r/c", "r2/c"])
    s = np.asarray(to_numpy(scores), dtype=np.float64)
    c = np.broadcast_to(np.asarray(to_numpy(ceiling), dtype=np.float64), s.shape)
    ok = c > floor
    if (~ok).any():
        warnings.warn(f"{int((~ok).sum())} of {ok.size} ceilings are at or below floor={floor} (or NaN): their "
                      "normalized scores are NaN.", RuntimeWarning, stacklevel=2)
    denom = np.sqrt(np.where(ok, c, 1)) if convention == "r/sqrt(c)" else np.where(ok, c, 1)
    return np.where(ok, s / denom, np.nan)
