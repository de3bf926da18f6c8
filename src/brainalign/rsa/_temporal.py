"""Time-resolved RSA for epoched M/EEG (BrainData with a time axis)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._utils import Bunch, progress_bar
from ._common import as_vectors, make_rdms
from ._compare import compare
from ._inference import _names
from ._rdm import calc_rdm

__all__ = ["time_resolved"]


def time_resolved(brain: Any, model_rdms: Any, *, rdm_method: str = "correlation",
                  compare_method: str = "spearman", descriptor: str | None = None,
                  cv_descriptor: str | None = None, window: int = 1, step: int = 1,
                  device: Any = "cpu", verbose: bool = False) -> Bunch:
    """One RDM per time point (or sliding window), compared with every model / layer RDM.

    Parameters
    ----------
    brain : BrainData
        Epoched data of shape (n_samples, n_channels, n_times).
    model_rdms : rsatoolbox.rdm.RDMs or array, n_models RDMs over the same conditions
        (in the order of the sorted ``descriptor`` values, or of the samples).
    rdm_method : str
        Method of :func:`calc_rdm` (``crossnobis`` needs ``descriptor`` and folds).
    compare_method : str
        Method of :func:`compare`.
    descriptor, cv_descriptor : str, optional
        As in :func:`calc_rdm` (e.g. ``"stimulus_id"``, ``"run"``).
    window : int
        Number of time points averaged per RDM (1: one RDM per time point).
    step : int
        Hop between windows, in time points.

    Returns
    -------
    Bunch
        ``scores``: array (n_models, n_windows); ``times``: centre of each window (s);
        ``rdms``: the data RDMs (rdm descriptor ``time``); ``table``: tidy DataFrame
        (layer, time, score).

    Examples
    --------
    >>> import numpy as np
    >>> from brainalign import BrainData
    >>> x = np.random.default_rng(0).standard_normal((6, 4, 5))
    >>> res = time_resolved(BrainData(x, sfreq=100.0), np.random.default_rng(1).random((2, 15)))
    >>> res.scores.shape
    (2, 5)
    """
    data = getattr(brain, "data", None)
    if data is None or np.ndim(data) != 3:
        raise ValueError(
            "time_resolved needs a BrainData with a time axis, data of shape (n_samples, n_channels, "
            f"n_times); got {None if data is None else np.shape(data)}."
        )
    n_times = data.shape[2]
    if not (1 <= window <= n_times) or step < 1:
        raise ValueError(f"Need 1 <= window <= n_times ({n_times}) and step >= 1; got window={window}, step={step}.")
    vm = as_vectors(model_rdms, "model_rdms")
    starts = list(range(0, n_times - window + 1, step))
    times = np.array([brain.times[s:s + window].mean() for s in starts])
    vecs = []
    for s in progress_bar(starts, verbose=verbose, total=len(starts), desc="time points"):
        sub = brain.with_data(data[:, :, s:s + window].mean(-1) if window > 1 else data[:, :, s])
        rdm = calc_rdm(sub, method=rdm_method, descriptor=descriptor, cv_descriptor=cv_descriptor, device=device)
        vecs.append(rdm.get_vectors()[0])
        pattern_desc = rdm.pattern_descriptors
    vd = np.stack(vecs)
    if vd.shape[1] != vm.shape[1]:
        raise ValueError(
            f"The data RDMs have {vd.shape[1]} pairs but the model RDMs {vm.shape[1]}; "
            "they must describe the same conditions (check descriptor=)."
        )
    scores = compare(vm, vd, method=compare_method)
    rdms = make_rdms(vd, measure=rdm_method, rdm_descriptors={"time": list(times)},
                     pattern_descriptors={k: list(v) for k, v in pattern_desc.items() if k != "index"})
    names = _names(model_rdms, vm.shape[0], "layer")
    table = pd.DataFrame({"layer": np.repeat(names, len(times)), "time": np.tile(times, len(names)),
                          "score": scores.ravel()})
    return Bunch(scores=scores, times=times, rdms=rdms, table=table)
