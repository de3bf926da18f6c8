"""Delayer: :func:`make_delays` as a scikit-learn transformer, run-aware, with delayed bands."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._timing_delays import delay_steps, make_delays

__all__ = ["Delayer"]


class Delayer(TransformerMixin, BaseEstimator):
    """Delayed copies of every feature, within runs (:func:`~brainalign.features.timing.make_delays`).

    A transformer for pipelines such as ``make_pipeline(Delayer(delays=[1, 2, 3, 4]),
    BandedRidgeCV(bands=delayer.delayed_bands(bands)))``: the output columns are
    delay-major, exactly as :func:`make_delays` orders them (column ``k * n_features + j`` is
    feature ``j`` at ``delays[k]``), and :meth:`delayed_bands` maps feature bands onto them.

    Runs (delays never cross them) come in one of two ways:

    * ``groups=`` in :meth:`fit`, :meth:`transform` and :meth:`fit_transform` (in a
      :class:`~sklearn.pipeline.Pipeline`: ``pipe.fit(X, y, delayer__groups=runs)``; at predict
      time through scikit-learn's metadata routing, ``set_transform_request(groups=True)``);
    * or a column of ``X`` holding the run labels, ``groups_column=``, which travels with the
      rows through any pipeline or cross-validation and is dropped from the output.

    Parameters
    ----------
    delays : sequence of int, optional
        Delays in samples (default ``(1, 2, 3, 4)``, e.g. TRs of an fMRI FIR model).
    lags : sequence of float, optional
        Delays in seconds (M/EEG), with ``sfreq``; replaces ``delays``.
    sfreq : float, optional
        Sampling rate (Hz), only with ``lags``.
    groups_column : int, optional
        Index of the column of ``X`` that holds the run label of each sample (numeric). It is
        not a feature: it is removed before delaying, and bands index the remaining columns.

    Attributes
    ----------
    delays_ : array of shape (n_delays,)
        Delays in samples.
    n_features_in_ : int
        Columns of ``X`` (the groups column included).
    n_features_ : int
        Features that are delayed (the groups column excluded).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.c_[np.arange(4.0), [0, 0, 1, 1]]  # one feature, then the run label
    >>> Delayer(delays=[0, 1], groups_column=-1).fit_transform(X)
    array([[0., 0.],
           [1., 0.],
           [2., 0.],
           [3., 2.]])
    """

    def __init__(self, *, delays=(1, 2, 3, 4), lags=None, sfreq=None, groups_column=None):
        self.delays = delays
        self.lags = lags
        self.sfreq = sfreq
        self.groups_column = groups_column

    def _split(self, X, groups):
        if self.groups_column is None:
            return X, groups
        col = int(self.groups_column)
        n_col = X.shape[1]
        if not -n_col <= col < n_col:
            raise ValueError(f"groups_column={self.groups_column} is out of range for X with {n_col} columns.")
        if groups is not None:
            raise ValueError("Give the runs either as groups= or as groups_column=, not both.")
        col %= n_col
        return np.delete(X, col, axis=1), X[:, col]

    def fit(self, X, y=None, groups=None):
        """Check the delays and remember the number of features.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        y : ignored
        groups : array of shape (n_samples,), optional
            Run of every sample.
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        if self.lags is not None:
            self.delays_ = delay_steps(None, self.lags, self.sfreq)
        else:
            self.delays_ = delay_steps(self.delays, None, self.sfreq)
        features, _ = self._split(X, groups)
        if features.shape[1] == 0:
            raise ValueError("X has no feature column besides the groups column.")
        self.n_features_ = features.shape[1]
        return self

    def transform(self, X, groups=None):
        """Delayed design, array of shape (n_samples, n_features_ * n_delays), delay-major.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        groups : array of shape (n_samples,), optional
            Run of every sample.
        """
        check_is_fitted(self, "delays_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        features, runs = self._split(X, groups)
        return make_delays(features, self.delays_, groups=runs)

    def fit_transform(self, X, y=None, groups=None):
        """:meth:`fit` then :meth:`transform` with the same ``groups``."""
        return self.fit(X, y, groups=groups).transform(X, groups=groups)

    def get_feature_names_out(self, input_features=None):
        """Names ``"<feature>@<delay>"`` of the output columns (delays in samples), delay-major."""
        check_is_fitted(self, "delays_")
        if input_features is None:
            names = [f"x{i}" for i in range(self.n_features_in_)]
        else:
            names = [str(f) for f in input_features]
            if len(names) != self.n_features_in_:
                raise ValueError(f"input_features has {len(names)} names but X had {self.n_features_in_} columns.")
        if self.groups_column is not None:
            names.pop(int(self.groups_column) % self.n_features_in_)
        return np.asarray([f"{name}@{d}" for d in self.delays_ for name in names], dtype=object)

    def delayed_bands(self, bands: Any, n_features: int | None = None) -> dict:
        """The columns of the delayed design that belong to each band of input features.

        Parameters
        ----------
        bands : dict of str to slice or array of int
            Feature columns of each band, e.g. ``{"audio": slice(0, 128), "gpt2_l6": slice(128, 896)}``
            (indices of the features, the groups column excluded).
        n_features : int, optional
            Number of features; needed before :meth:`fit` (after it, ``n_features_``).

        Returns
        -------
        dict of str to array of int
            For each band, its columns in the output of :meth:`transform`, ascending — ready
            for ``BandedRidgeCV(bands=...)``.

        Examples
        --------
        >>> Delayer(delays=[1, 2]).delayed_bands({"a": slice(0, 1), "b": [1, 2]}, n_features=3)
        {'a': array([0, 3]), 'b': array([1, 2, 4, 5])}
        """
        if n_features is None:
            if not hasattr(self, "n_features_"):
                raise ValueError("delayed_bands needs n_features= before the Delayer is fitted.")
            n_features = self.n_features_
        steps = (self.delays_ if hasattr(self, "delays_") else
                 delay_steps(None if self.lags is not None else self.delays, self.lags, self.sfreq))
        if not isinstance(bands, dict) or not bands:
            raise ValueError(f"bands must be a non-empty dict {{name: slice or indices}}; got {bands!r}.")
        out = {}
        for name, cols in bands.items():
            idx = np.arange(n_features)[cols] if isinstance(cols, slice) else np.asarray(cols)
            if idx.dtype == bool:
                idx = np.flatnonzero(idx)
            idx = np.asarray(idx, dtype=int).ravel()
            if idx.size == 0 or idx.min() < 0 or idx.max() >= n_features:
                raise ValueError(f"Band {name!r} selects columns {idx[:6].tolist()}, outside the {n_features} "
                                 "features (or none).")
            out[name] = np.sort((np.arange(len(steps))[:, None] * n_features + idx[None, :]).ravel())
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
