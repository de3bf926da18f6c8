"""Checks shared by the stats functions: parameter values, paired score arrays, safe division.

The rules they implement (documented once here, referred to by the public docstrings):

- A count (``n_resamples``, ``n_permutations``, ``n_splits``...) must be an int (a float such
  as 5.5 or 10.0 is refused) of at least its minimum; the error names the parameter.
- Data arrays must be finite: a NaN or inf raises a ValueError naming the array, the column
  and the first sample at fault (scores are never computed around missing values silently).
- A score whose denominator is zero (a constant column) is NaN, and the public function
  warns once per call with the number of such columns and the first of them.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np

from .._backend import to_numpy


def check_int(name: str, value: Any, *, min_value: int = 1) -> int:
    """``value`` as an int if it is an integer (not a bool) >= ``min_value``, else raise naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {min_value}; got {type(value).__name__} {value!r}.")
    if value < min_value:
        raise ValueError(f"{name} must be an int >= {min_value}; got {value}.")
    return int(value)


def check_fraction(name: str, value: Any) -> float:
    """``value`` as a float strictly between 0 and 1 (a coverage ``ci`` or a level ``alpha``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number in (0, 1), e.g. 0.95 for a coverage or 0.05 for a level; "
                         f"got {value!r}.")
    return float(value)


def check_finite_columns(arr: np.ndarray, name: str) -> None:
    """Raise a ValueError naming the columns and first samples of ``arr`` that hold NaN or inf."""
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must hold numbers; got dtype {arr.dtype}.")
    finite = np.isfinite(arr)
    if finite.all():
        return
    bad = ~finite
    cols = np.flatnonzero(bad.any(axis=0)) if arr.ndim == 2 else np.array([0])
    col = int(cols[0])
    rows = np.flatnonzero(bad[:, col]) if arr.ndim == 2 else np.flatnonzero(bad)
    raise ValueError(
        f"{name} holds {int(np.isnan(arr).sum())} NaN and {int(np.isinf(arr).sum())} inf values in {len(cols)} "
        f"column(s) (first: column {col}, sample {int(rows[0])}; array shape {arr.shape}). Scores are not computed "
        "around missing values: drop or impute those samples or columns first."
    )


def paired_arrays(y_true: Any, y_pred: Any, *, names: tuple[str, str] = ("y_true", "y_pred"),
                  min_samples: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Two finite float arrays of one shape (n_samples, n_targets); 1-D inputs become one column."""
    yt, yp = to_numpy(y_true), to_numpy(y_pred)
    if yt.ndim == 1:
        yt = yt[:, None]
    if yp.ndim == 1:
        yp = yp[:, None]
    if yt.ndim != 2 or yt.shape != yp.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape (n_samples, n_targets); got "
                         f"{np.shape(y_true)} and {np.shape(y_pred)}.")
    if yt.shape[0] < min_samples:
        raise ValueError(f"Scores need at least {min_samples} samples; got {yt.shape[0]}.")
    check_finite_columns(yt, names[0])
    check_finite_columns(yp, names[1])
    dt = np.result_type(yt.dtype, yp.dtype, np.float32)
    return yt.astype(dt, copy=False), yp.astype(dt, copy=False)


def safe_divide(num: Any, den: Any, *, where: Any = None) -> np.ndarray:
    """``num / den`` with NaN where ``where`` is False (default: where ``den`` is 0), no numpy warning."""
    num, den = np.asarray(num), np.asarray(den)
    ok = den != 0 if where is None else np.asarray(where)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, num / np.where(ok, den, 1), np.nan)


def constant_columns(arr: np.ndarray) -> np.ndarray:
    """Boolean mask (n_columns,): columns whose values are all equal (exactly)."""
    return np.ptp(arr, axis=0) == 0


def warn_constant(mask: np.ndarray, what: str, result: str, *, stacklevel: int = 3) -> None:
    """One warning naming how many columns (and which first) made ``result`` undefined."""
    if mask.any():
        idx = np.flatnonzero(mask)
        warnings.warn(
            f"{what} is constant in {len(idx)} column(s) (first: column {int(idx[0])}), where {result} is "
            "undefined: NaN is returned there. Drop constant channels, or skip NaN with np.nanmean.",
            RuntimeWarning, stacklevel=stacklevel)
