"""Brain responses simulated from a known feature matrix, with their ground truth.

The generative model, per channel ``c`` (a voxel, a sensor):

1. ``X`` = the features of one layer, z-scored per feature across items,
   shape (n_items, n_features).
2. ``s_c = X @ w_c``: the item response, with random Gaussian weights ``w_c`` rescaled so that
   ``s_c`` has unit variance across items (``sim.weights`` holds the rescaled weights, so
   ``X @ sim.weights`` reproduces the item responses exactly).
3. A time course: none (``"static"``), the item responses as boxcar events convolved with
   the canonical HRF and sampled every TR (``"fmri"``), or the item response times a
   gamma-shaped evoked kernel (``"meg"``).
4. Gaussian white noise with variance ``var(signal_c) / snr_c``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._docs import fill_doc
from .._utils import Bunch, check_option, check_random_state
from ..data import BrainData, Features
from ..features.timing import hrf, hrf_response
from ..stats import pearson_r

__all__ = ["simulate_responses"]

_HRF_LENGTH = 32.0  # seconds of haemodynamic response after an event (features.timing.hrf's default duration)


# --------------------------------------------------------------------------- inputs
def _zscore(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{what} must be an array of shape (n_items, n_features); got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise ValueError(f"{what} contains {int((~np.isfinite(x)).sum())} NaN/inf values.")
    sd = x.std(axis=0)
    if not (sd > 0).any():
        raise ValueError(f"All {x.shape[1]} features of {what} are constant across items; nothing drives a response.")
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def _resolve_inputs(features: Any, layer: str | None, rois: dict | None):
    """(items, item_table, {roi: (layer_name, X)}) with X z-scored."""
    if isinstance(features, Features):
        items, table = features.items, features.item_table
        if rois is not None:
            return items, table, {str(r): (str(lay), _zscore(features[lay], f"layer {lay!r}"))
                                  for r, lay in rois.items()}
        if layer is None:
            if len(features) > 1:
                raise ValueError(
                    f"These Features have {len(features)} layers {features.layer_names[:8]}; pass layer= "
                    "to name the one that generates the responses (or rois= for several ROIs)."
                )
            layer = features.layer_names[0]
        return items, table, {None: (str(layer), _zscore(features[layer], f"layer {layer!r}"))}
    if rois is not None:
        raise ValueError("rois= maps ROIs to layer names, so it needs a brainalign.Features object, "
                         f"not a {type(features).__name__}.")
    x = np.asarray(features)
    name = "features" if layer is None else str(layer)
    return [f"item{i}" for i in range(len(x))], None, {None: (name, _zscore(x, "features"))}


def _channel_snr(snr: Any, n_channels: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(snr, tuple):
        if len(snr) != 2 or not 0 < snr[0] <= snr[1]:
            raise ValueError(f"snr=(low, high) needs 0 < low <= high; got {snr}.")
        return rng.uniform(snr[0], snr[1], size=n_channels)
    arr = np.asarray(snr, dtype=float)
    if arr.ndim == 0:
        arr = np.full(n_channels, float(arr))
    if arr.shape != (n_channels,):
        raise ValueError(
            f"snr must be a number, a (low, high) tuple or one value per channel ({n_channels}); "
            f"got an array of shape {arr.shape}."
        )
    if not (np.isfinite(arr).all() and (arr > 0).all()):
        raise ValueError(f"snr values must be positive and finite; got min {arr.min()!r}.")
    return arr


# --------------------------------------------------------------------------- fMRI design
def _fmri_events(items: list, table: pd.DataFrame | None, n_repeats: int, tr: float,
                 event_duration: float | None, rng: np.random.Generator) -> pd.DataFrame:
    """One row per event: run, repetition, item (row index), stimulus_id, onset, duration."""
    rows = []
    if table is not None and "onset" in table:
        src = table.reset_index(drop=True)
        groups = list(src.groupby("run", sort=False)) if "run" in src else [(0, src)]
        for rep in range(n_repeats):
            for g, (src_run, grp) in enumerate(groups):
                onsets = grp["onset"].to_numpy(float)
                if "duration" in grp and event_duration is None:
                    dur = grp["duration"].to_numpy(float)
                else:
                    gap = np.diff(np.append(onsets, onsets[-1] + tr))
                    dur = np.full(len(onsets), event_duration) if event_duration is not None else np.minimum(gap, tr)
                for idx, o, d in zip(grp.index, onsets, dur):
                    rows.append((rep * len(groups) + g, rep, src_run, int(idx), items[idx], o, d))
    else:
        dur = tr if event_duration is None else float(event_duration)
        isi = max(tr, dur)
        for rep in range(n_repeats):
            order = rng.permutation(len(items))
            for k, idx in enumerate(order):
                rows.append((rep, rep, rep, int(idx), items[idx], k * isi, dur))
    ev = pd.DataFrame(rows, columns=["run", "repetition", "source_run", "item", "stimulus_id", "onset", "duration"])
    if (ev["onset"] < 0).any() or (ev["duration"] < 0).any():
        raise ValueError("Item onsets and durations must be >= 0 s for kind='fmri'.")
    return ev


def _fmri_design(events: pd.DataFrame, n_items: int, tr: float) -> list[np.ndarray]:
    """Per run, the HRF-convolved regressor of every item: array (n_volumes, n_items)."""
    designs = []
    for _, ev in events.groupby("run", sort=True):
        end = float((ev["onset"] + ev["duration"]).max()) + _HRF_LENGTH
        n_vols = int(np.ceil(end / tr))
        t = np.arange(n_vols) * tr
        design = np.zeros((n_vols, n_items))
        for idx, onset, dur in zip(ev["item"], ev["onset"], ev["duration"]):
            lo = int(np.floor(onset / tr))
            hi = min(n_vols, int(np.ceil((onset + dur + _HRF_LENGTH) / tr)) + 1)
            # a boxcar of unit height convolved with the HRF (an impulse when dur == 0), peak-scaled
            design[lo:hi, idx] += hrf_response(t[lo:hi] - onset, event_duration=dur)
        designs.append(design)
    return designs


def _meg_kernel(times: np.ndarray, latency: float, shape: float = 4.0) -> np.ndarray:
    """Gamma-shaped evoked response with a maximum of 1 at ``latency`` seconds."""
    t = np.clip(times / latency, 0, None)
    with np.errstate(divide="ignore"):
        out = np.where(t > 0, np.exp(shape * (np.log(np.where(t > 0, t, 1)) + 1 - t)), 0.0)
    return out


# --------------------------------------------------------------------------- public
@fill_doc
def simulate_responses(features: Any, *, layer: str | None = None, n_channels: int = 100, snr: Any = 1.0,
                       kind: str = "static", n_repeats: int = 2, tr: float = 2.0, sfreq: float = 100.0,
                       rois: dict | None = None, random_state: int | None = None, tmin: float = -0.1,
                       tmax: float = 0.5, latency: float = 0.12,
                       event_duration: float | None = None) -> Bunch:
    """Simulate brain responses driven by a known feature matrix, with the ground truth.

    See the module docstring for the generative model. SNR is a variance ratio:
    ``var(noiseless signal of channel c) / var(noise of channel c)``, computed over all
    samples (``"static"``, ``"fmri"``) or across items at the kernel peak (``"meg"``).

    Parameters
    ----------
    features : array of shape (n_items, n_features) or Features
        The generating representation. With a :class:`brainalign.Features`, ``layer=`` names
        the layer (required when there are several), and an ``item_table`` with ``onset``
        (and optional ``duration``, ``run``) gives the event timing for ``kind="fmri"``
        (e.g. words of a story).
    layer : str, optional
        Generating layer (or a name for a plain array).
    n_channels : int
        Total number of channels (voxels/sensors); with ``rois``, split as evenly as possible
        across ROIs in the order given.
    snr : float, array of shape (n_channels,), or (low, high) tuple
        Per-channel SNR; a tuple draws each channel's SNR uniformly in ``[low, high]``.
    kind : {"static", "fmri", "meg"}
        ``"static"``: one response per presentation, shape (n_items * n_repeats, n_channels),
        samples ``stimulus_id``, ``repetition``, ``run`` (= repetition).
        ``"fmri"``: continuous BOLD, one run per repetition (the items in a new random order,
        events of ``event_duration`` = ``tr`` s back to back, unless the Features carry item
        onsets), canonical HRF (:func:`brainalign.features.timing.hrf`), sampled every ``tr``; shape
        (n_volumes, n_channels), samples ``run``, ``repetition``, ``onset`` (s in the run).
        ``"meg"``: epochs (n_items * n_repeats, n_channels, n_times) from ``tmin`` to
        ``tmax`` at ``sfreq``, the item response times a gamma-shaped kernel peaking at
        ``latency`` s; samples as for ``"static"``.
    n_repeats : int
        Presentations of every item (runs for ``"fmri"``).
    tr : float
        Repetition time (s) for ``"fmri"``.
    sfreq : float
        Sampling frequency (Hz) for ``"meg"``.
    rois : dict of str to str, optional
        ``{roi name: layer name}``: each ROI's channels are driven by a different layer of
        ``features`` (a Features object). The channels table gets a ``roi`` column.
    %(random_state)s
        The same random_state gives the same data and the same truth.
    tmin, tmax, latency : float
        Epoch limits and kernel peak latency (s) for ``"meg"``.
    event_duration : float, optional
        Event length (s) for ``"fmri"`` (default ``tr``; with item onsets, the item
        ``duration`` column or the gap to the next onset capped at ``tr``).

    Returns
    -------
    Bunch
        As every loader: ``brain`` (the simulated :class:`BrainData`), and the ground truth:

        weights : array (n_features, n_channels), or dict roi -> array (n_features_layer, n_channels_roi)
        layer : str, or dict roi -> layer name
        channel_layer : array of shape (n_channels,), the generating layer of each channel
        features : the z-scored generating features (array, or dict roi -> array)
        item_responses : array of shape (n_items, n_channels), unit variance per channel
        signal : the noiseless data, same shape as ``brain.data``
        snr : array of shape (n_channels,)
        noise_ceiling : array of shape (n_channels,)
            The expected Pearson correlation between the noiseless signal and the data of a
            single repetition, ``sqrt(snr / (1 + snr))``: the best test-set r an encoding
            model can reach when predicting single-repetition data (for ``"meg"``: at the
            kernel peak, with the peak value ``k``, ``sqrt(snr k^2 / (1 + snr k^2))``).
        noise_ceiling_mean : array of shape (n_channels,)
            The same for the mean of the ``n_repeats`` repetitions,
            ``sqrt(R snr / (1 + R snr))`` (for ``"fmri"`` this assumes repetitions of the same
            run, i.e. item onsets from the Features).
        noise_ceiling_empirical : array of shape (n_channels,)
            The realised correlation between ``signal`` and ``brain.data`` (all samples;
            ``"meg"``: at the peak time point).
        kernel : the HRF (sampled every tr) or MEG kernel (sampled at ``brain.times``), or None
        events, design : ``"fmri"`` only: the events table and, per run, the HRF-convolved
            design (n_volumes, n_items) such that ``signal`` of a run = design @ item_responses.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((50, 5))
    >>> sim = simulate_responses(X, n_channels=10, snr=2.0, random_state=0)
    >>> sim.brain.shape, sim.weights.shape
    ((100, 10), (5, 10))
    """
    check_option("kind", kind, ["static", "fmri", "meg"])
    for name, val in (("n_channels", n_channels), ("n_repeats", n_repeats)):
        if not isinstance(val, (int, np.integer)) or val < 1:
            raise ValueError(f"{name} must be a positive integer, got {val!r}.")
    for name, val in (("tr", tr), ("sfreq", sfreq), ("latency", latency)):
        if not (np.isfinite(val) and val > 0):
            raise ValueError(f"{name} must be a positive number, got {val!r}.")
    if rois is not None and (not isinstance(rois, dict) or not rois):
        raise ValueError(f"rois must be a non-empty dict {{roi name: layer name}}, got {rois!r}.")
    rng = check_random_state(random_state)
    items, table, drivers = _resolve_inputs(features, layer, rois)
    n_items = len(items)
    if rois is not None and n_channels < len(rois):
        raise ValueError(f"n_channels={n_channels} is fewer than the {len(rois)} ROIs; give at least one per ROI.")

    # item responses, unit variance per channel
    splits = np.array_split(np.arange(n_channels), len(drivers))
    responses = np.empty((n_items, n_channels))
    weights, layers, feats, roi_col, chan_layer = {}, {}, {}, [], []
    for (roi, (lay, x)), idx in zip(drivers.items(), splits):
        w = rng.standard_normal((x.shape[1], len(idx)))
        s = x @ w
        w /= s.std(axis=0)
        responses[:, idx] = x @ w
        weights[roi], layers[roi], feats[roi] = w, lay, x
        roi_col += [roi] * len(idx)
        chan_layer += [lay] * len(idx)
    snr_c = _channel_snr(snr, n_channels, rng)
    single = not rois

    truth = Bunch(
        weights=weights[None] if single else weights, layer=layers[None] if single else layers,
        channel_layer=np.asarray(chan_layer), features=feats[None] if single else feats,
        item_responses=responses, snr=snr_c, kernel=None,
    )
    channels = pd.DataFrame({"name": [f"ch{c:03d}" for c in range(n_channels)]})
    if not single:
        channels["name"] = [f"{r}_{k:03d}" for r, idx in zip(drivers, splits) for k in range(len(idx))]
        channels["roi"] = roi_col
    noise_scale = 1.0
    times = None

    if kind in ("static", "meg"):
        rep = np.repeat(np.arange(n_repeats), n_items)
        item_idx = np.tile(np.arange(n_items), n_repeats)
        samples = pd.DataFrame({"stimulus_id": [items[i] for i in item_idx], "repetition": rep, "run": rep})
        signal = responses[item_idx]
        if kind == "meg":
            n0, n1 = int(round(tmin * sfreq)), int(round(tmax * sfreq))
            times = np.arange(n0, n1 + 1) / sfreq
            kern = _meg_kernel(times, latency)  # unit height: the SNR holds at the kernel peak
            signal = signal[:, :, None] * kern[None, None, :]
            truth.kernel = kern
    else:
        events = _fmri_events(items, table, n_repeats, tr, event_duration, rng)
        designs = _fmri_design(events, n_items, tr)
        runs = [d @ responses for d in designs]
        signal = np.concatenate(runs)
        samples = pd.concat([
            pd.DataFrame({"run": r, "repetition": int(events.loc[events["run"] == r, "repetition"].iloc[0]),
                          "onset": np.arange(len(d)) * tr})
            for r, d in zip(sorted(events["run"].unique()), designs)], ignore_index=True)
        noise_scale = signal.std(axis=0)
        truth.kernel = hrf(tr)
        truth.events = events
        truth.design = designs

    noise_sd = noise_scale / np.sqrt(snr_c)
    noise = rng.standard_normal(signal.shape)
    noise *= noise_sd[None, :, None] if signal.ndim == 3 else noise_sd[None, :]
    data = signal + noise
    truth.signal = signal

    if kind == "meg":
        k_peak = float(truth.kernel.max())
        eff = snr_c * k_peak**2
        t_peak = int(np.argmax(truth.kernel))
        emp_sig, emp_dat = signal[:, :, t_peak], data[:, :, t_peak]
    else:
        eff = snr_c
        emp_sig, emp_dat = signal, data
    truth.noise_ceiling = np.sqrt(eff / (1 + eff))
    truth.noise_ceiling_mean = np.sqrt(n_repeats * eff / (1 + n_repeats * eff))
    truth.noise_ceiling_empirical = pearson_r(emp_sig, emp_dat)

    brain = BrainData(data, samples=samples, channels=channels, times=times,
                      tr=tr if kind == "fmri" else None, sfreq=sfreq if kind == "meg" else None,
                      subject="simulated")
    return Bunch(brain=brain, **truth)
