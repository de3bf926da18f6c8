"""BrainData: recordings with per-sample and per-channel tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._utils import check_option
from ._tables import _as_table, _index_or_slice, _match


# --------------------------------------------------------------------------- BrainData
class BrainData:
    """Brain recordings with one row of metadata per sample and per channel.

    Parameters
    ----------
    data : array of shape (n_samples, n_channels) or (n_samples, n_channels, n_times)
        fMRI volumes x voxels, continuous M/EEG times x sensors, or M/EEG epochs
        x sensors x time points.
    samples : DataFrame, optional
        One row per sample: ``onset`` (s), ``run``, ``stimulus_id``, ``repetition``,
        ``condition``... Defaults to an empty table with ``n_samples`` rows.
    channels : DataFrame, optional
        One row per voxel / vertex / sensor: ``name``, ``roi``, ``i, j, k``, ``x, y, z``,
        ``ch_type``... Defaults to a table with a ``name`` column.
    tr : float, optional
        Repetition time in seconds (fMRI). Sets ``sfreq = 1 / tr``.
    sfreq : float, optional
        Sampling frequency in Hz: of the samples for continuous data, of the time axis
        for epoched data (``n_times``).
    times : array of shape (n_times,), optional
        Time of each point of the epoch axis (s); defaults to ``arange(n_times) / sfreq``.
    subject : str, optional
    space : dict, optional
        What is needed to go back to brain space: ``{"kind": "volume", "affine", "shape"}``
        (with ``i, j, k`` columns in ``channels``), ``{"kind": "surface", "n_vertices":
        {hemi: n}}`` (with ``hemi, vertex`` columns) or ``{"kind": "sensor", "info": mne.Info}``.
    nan_policy : {"raise", "allow"}
        NaN/inf in ``data`` raise a ValueError unless ``"allow"``.

    Examples
    --------
    >>> import numpy as np
    >>> bd = BrainData(np.zeros((4, 3)), samples={"run": [0, 0, 1, 1]}, tr=2.0)
    >>> bd.select(run=1).shape
    (2, 3)
    """

    def __init__(
        self,
        data: Any,
        *,
        samples: Any = None,
        channels: Any = None,
        tr: float | None = None,
        sfreq: float | None = None,
        times: Any = None,
        subject: str | None = None,
        space: Mapping[str, Any] | None = None,
        nan_policy: str = "raise",
    ) -> None:
        check_option("nan_policy", nan_policy, ["raise", "allow"])
        arr = np.asarray(data)
        if arr.ndim not in (2, 3):
            raise ValueError(
                f"BrainData needs data of shape (n_samples, n_channels) or "
                f"(n_samples, n_channels, n_times); got {arr.ndim} dimensions, shape {arr.shape}."
            )
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
            raise ValueError(f"BrainData needs real numeric data, got dtype {arr.dtype}.")
        if not np.issubdtype(arr.dtype, np.floating):
            arr = arr.astype(np.float32)
        if nan_policy == "raise" and not np.isfinite(arr).all():
            n_bad = int((~np.isfinite(arr)).sum())
            where = np.argwhere(~np.isfinite(arr))[0].tolist()
            raise ValueError(
                f"The data contain {n_bad} NaN/inf values (first at index {where}). Clean them "
                f"(e.g. drop the channels) or pass nan_policy='allow' to keep them."
            )
        if tr is not None and sfreq is not None and not np.isclose(sfreq, 1.0 / tr):
            raise ValueError(f"tr={tr} s and sfreq={sfreq} Hz disagree (1/tr = {1.0 / tr:.6g} Hz).")
        for name, val in (("tr", tr), ("sfreq", sfreq)):
            if val is not None and not (np.isfinite(val) and val > 0):
                raise ValueError(f"{name} must be a positive number, got {val!r}.")
        self._data = arr
        self._samples = _as_table(samples, arr.shape[0], "samples")
        self._channels = _as_table(channels, arr.shape[1], "channels", ("name", "ch"))
        self._tr = float(tr) if tr is not None else None
        self._sfreq = float(sfreq) if sfreq is not None else (1.0 / tr if tr is not None else None)
        self._times = None
        if arr.ndim == 3:
            if times is None:
                step = 1.0 / self._sfreq if self._sfreq else 1.0
                times = np.arange(arr.shape[2]) * step
            times = np.asarray(times, dtype=float)
            if times.shape != (arr.shape[2],):
                raise ValueError(
                    f"times has {times.size} values but the data have {arr.shape[2]} time points."
                )
            self._times = times
        elif times is not None:
            raise ValueError("times is only for epoched data of shape (n_samples, n_channels, n_times).")
        self.subject = subject
        self.space = dict(space) if space is not None else {}

    # --- read-only fields (derived ones cannot drift from the data) ------------------
    @property
    def data(self) -> np.ndarray:
        """Array of shape (n_samples, n_channels) or (n_samples, n_channels, n_times)."""
        return self._data

    @property
    def samples(self) -> pd.DataFrame:
        """One row per sample (onset, run, stimulus_id, ...)."""
        return self._samples

    @property
    def channels(self) -> pd.DataFrame:
        """One row per channel (name, roi, coordinates, ...)."""
        return self._channels

    @property
    def tr(self) -> float | None:
        """Repetition time in seconds (fMRI), or None."""
        return self._tr

    @property
    def sfreq(self) -> float | None:
        """Sampling frequency in Hz, or None."""
        return self._sfreq

    @property
    def times(self) -> np.ndarray | None:
        """Epoch time axis (s) for data with a time axis, else None."""
        return self._times

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def n_samples(self) -> int:
        return self._data.shape[0]

    @property
    def n_channels(self) -> int:
        return self._data.shape[1]

    @property
    def n_times(self) -> int | None:
        return self._data.shape[2] if self._data.ndim == 3 else None

    def __len__(self) -> int:
        return self.n_samples

    def __repr__(self) -> str:
        kind = self.space.get("kind", "unspecified space")
        rate = f", tr={self.tr} s" if self.tr else (f", sfreq={self.sfreq:g} Hz" if self.sfreq else "")
        rois = ""
        if "roi" in self._channels:
            rois = f", rois={sorted(map(str, self._channels['roi'].dropna().unique()))[:6]}"
        return (
            f"<BrainData {self.shape} subject={self.subject!r}{rate}, {kind}{rois}; "
            f"samples: {list(self._samples.columns)}; channels: {list(self._channels.columns)}>"
        )

    # --- construction of new objects ---------------------------------------------------
    def _new(self, data: np.ndarray, samples: pd.DataFrame, channels: pd.DataFrame,
             times: np.ndarray | None = None) -> BrainData:
        obj = BrainData.__new__(BrainData)
        obj._data = data
        obj._samples = samples.reset_index(drop=True)
        obj._channels = channels.reset_index(drop=True)
        obj._tr, obj._sfreq = self._tr, self._sfreq
        obj._times = self._times if times is None else times
        obj.subject, obj.space = self.subject, dict(self.space)
        return obj

    def with_data(self, data: Any, *, channels: Any = None) -> BrainData:
        """A new BrainData with ``data`` replacing the array (tables kept); shapes must match."""
        arr = np.asarray(data)
        if arr.shape[0] != self.n_samples:
            raise ValueError(f"New data have {arr.shape[0]} samples, this BrainData has {self.n_samples}.")
        chans = self._channels if channels is None else _as_table(channels, arr.shape[1], "channels")
        if channels is None and arr.shape[1] != self.n_channels:
            raise ValueError(f"New data have {arr.shape[1]} channels, this BrainData has {self.n_channels}.")
        times = self._times if arr.ndim == 3 else None
        if arr.ndim == 3 and times is not None and arr.shape[2] != len(times):
            raise ValueError(f"New data have {arr.shape[2]} time points, this BrainData has {len(times)}.")
        out = self._new(arr, self._samples, chans)
        out._times = times
        return out

    def copy(self) -> BrainData:
        """A deep copy (data and tables)."""
        return self._new(self._data.copy(), self._samples.copy(), self._channels.copy())

    def select(self, *, samples: Any = None, channels: Any = None, time: tuple | None = None,
               **query: Any) -> BrainData:
        """Select channels and/or samples by their table columns.

        Each keyword names a column of the ``channels`` table (looked up first: ``roi``,
        ``name``, ``ch_type``, ``hemi``...) or of the ``samples`` table (``run``,
        ``stimulus_id``, ``condition``...). A value keeps the rows equal to it, a list keeps
        rows in it, a callable receives the column and returns a boolean mask.

        Parameters
        ----------
        samples, channels : array of bool or int, optional
            Explicit masks or indices.
        time : (tmin, tmax), optional
            Crop the epoch time axis to ``tmin <= t <= tmax`` (epoched data only).

        Returns
        -------
        BrainData
            A new object. Contiguous selections are views of the same array.
        """
        smask = np.ones(self.n_samples, bool)
        cmask = np.ones(self.n_channels, bool)
        if samples is not None:
            smask &= self._explicit(samples, self.n_samples, "samples")
        if channels is not None:
            cmask &= self._explicit(channels, self.n_channels, "channels")
        for key, value in query.items():
            if key in self._channels.columns:
                cmask &= _match(self._channels[key], value)
            elif key in self._samples.columns:
                smask &= _match(self._samples[key], value)
            else:
                raise KeyError(
                    f"Cannot select by {key!r}: it is neither a channel column "
                    f"{list(self._channels.columns)} nor a sample column {list(self._samples.columns)}."
                )
        if not smask.any() or not cmask.any():
            which = "samples" if not smask.any() else "channels"
            raise ValueError(f"The selection {query or ''} keeps no {which}; check the values.")
        si, ci = _index_or_slice(smask), _index_or_slice(cmask)
        data = self._data[si]
        data = data[:, ci]
        times = None
        if time is not None:
            if self._times is None:
                raise ValueError("time= selection needs epoched data with a time axis.")
            tmask = (self._times >= time[0]) & (self._times <= time[1])
            if not tmask.any():
                raise ValueError(
                    f"time={time} keeps no time point (times span {self._times[0]:g} to {self._times[-1]:g} s)."
                )
            data = data[..., _index_or_slice(tmask)]
            times = self._times[tmask]
        return self._new(data, self._samples.iloc[si], self._channels.iloc[ci], times)

    @staticmethod
    def _explicit(sel: Any, n: int, what: str) -> np.ndarray:
        sel = np.asarray(sel)
        if sel.dtype == bool:
            if sel.shape != (n,):
                raise ValueError(f"A boolean {what} mask needs {n} values, got {sel.shape[0]}.")
            return sel
        mask = np.zeros(n, bool)
        if sel.size and (sel.min() < -n or sel.max() >= n):
            raise IndexError(f"{what} indices out of range for {n} {what}: {sel.min()}..{sel.max()}.")
        mask[sel] = True
        return mask

    def split(self, by: str = "run") -> dict[Any, BrainData]:
        """Split the samples by a column of the samples table: ``{value: BrainData}`` in order."""
        if by not in self._samples.columns:
            raise KeyError(f"Cannot split by {by!r}; sample columns are {list(self._samples.columns)}.")
        keys = pd.unique(self._samples[by])
        return {k: self.select(samples=(self._samples[by] == k).to_numpy()) for k in keys}

    def average_repetitions(self, by: str = "stimulus_id") -> BrainData:
        """Average the samples that share a value of ``by`` (e.g. repeated stimuli).

        The returned samples table has one row per distinct value, in order of first
        appearance, with the columns that are constant within every group and
        ``n_repetitions``.
        """
        if by not in self._samples.columns:
            raise KeyError(
                f"Cannot average repetitions by {by!r}; sample columns are {list(self._samples.columns)}."
            )
        codes, uniques = pd.factorize(self._samples[by], sort=False)
        if (codes < 0).any():
            raise ValueError(f"The {by!r} column has missing values; cannot group by it.")
        counts = np.bincount(codes)
        flat = self._data.reshape(self.n_samples, -1)
        sums = np.zeros((len(uniques), flat.shape[1]), dtype=np.result_type(flat.dtype, np.float32))
        np.add.at(sums, codes, flat)
        data = (sums / counts[:, None]).reshape((len(uniques),) + self._data.shape[1:])
        grouped = self._samples.groupby(codes, sort=True)
        keep = [c for c in self._samples.columns if (grouped[c].nunique(dropna=False) <= 1).all()]
        table = self._samples[keep].groupby(codes, sort=True).first().reset_index(drop=True)
        table[by] = np.asarray(uniques)
        table["n_repetitions"] = counts
        return self._new(data, table, self._channels)

    @classmethod
    def concatenate(cls, items: Iterable[BrainData]) -> BrainData:
        """Stack BrainData along samples (e.g. runs); channels, rates and space must agree."""
        items = list(items)
        if not items:
            raise ValueError("Nothing to concatenate: got an empty list.")
        first = items[0]
        for k, other in enumerate(items[1:], 1):
            if other.shape[1:] != first.shape[1:]:
                raise ValueError(
                    f"Item {k} has shape {other.shape[1:]} per sample, item 0 has {first.shape[1:]}."
                )
            if other.sfreq != first.sfreq:
                raise ValueError(f"Item {k} has sfreq {other.sfreq}, item 0 has {first.sfreq}.")
        data = np.concatenate([b._data for b in items], axis=0)
        samples = pd.concat([b._samples for b in items], ignore_index=True)
        return first._new(data, samples, first._channels)

    # --- interop -------------------------------------------------------------------------
    def to_rsatoolbox(self):
        """The data as an ``rsatoolbox.data.Dataset`` (``TemporalDataset`` with a time axis).

        The samples table becomes ``obs_descriptors`` and the channels table
        ``channel_descriptors``; ``subject`` goes into ``descriptors``.
        """
        import rsatoolbox

        obs = {c: self._samples[c].to_numpy() for c in self._samples.columns}
        chn = {c: self._channels[c].to_numpy() for c in self._channels.columns}
        desc = {"subject": self.subject} if self.subject is not None else None
        if self._data.ndim == 3:
            return rsatoolbox.data.TemporalDataset(
                self._data, descriptors=desc, obs_descriptors=obs or None,
                channel_descriptors=chn or None, time_descriptors={"time": self._times},
            )
        return rsatoolbox.data.Dataset(
            self._data, descriptors=desc, obs_descriptors=obs or None, channel_descriptors=chn or None
        )

    def to_image(self, values: Any, *, fill: float = 0.0):
        """Put one value per channel back into brain space.

        Parameters
        ----------
        values : array of shape (n_channels,) or (n_maps, n_channels)
        fill : float
            Value outside the channels (volume) or at missing vertices (surface).

        Returns
        -------
        nibabel.Nifti1Image (volume), dict hemi -> nibabel.GiftiImage (surface),
        or mne.EvokedArray (sensors, one "time point" per map).
        """
        vals = np.asarray(values, dtype=np.float32)
        if vals.shape[-1] != self.n_channels or vals.ndim > 2:
            raise ValueError(
                f"to_image needs values of shape (n_channels,) or (n_maps, n_channels) with "
                f"n_channels={self.n_channels}; got {vals.shape}."
            )
        kind = self.space.get("kind")
        if kind == "volume":
            import nibabel as nib

            shape = tuple(self.space["shape"])[:3]
            ijk = self._channels[["i", "j", "k"]].to_numpy(int)
            maps = vals.reshape(-1, self.n_channels)
            out = np.full(shape + (len(maps),), fill, np.float32)
            out[ijk[:, 0], ijk[:, 1], ijk[:, 2], :] = maps.T
            return nib.Nifti1Image(out[..., 0] if vals.ndim == 1 else out, np.asarray(self.space["affine"]))
        if kind == "surface":
            import nibabel as nib

            maps = vals.reshape(-1, self.n_channels)
            images = {}
            for hemi, n_vert in self.space["n_vertices"].items():
                rows = (self._channels["hemi"] == hemi).to_numpy()
                arr = np.full((len(maps), int(n_vert)), fill, np.float32)
                arr[:, self._channels.loc[rows, "vertex"].to_numpy(int)] = maps[:, rows]
                images[hemi] = nib.gifti.GiftiImage(
                    darrays=[nib.gifti.GiftiDataArray(a, datatype="NIFTI_TYPE_FLOAT32") for a in arr]
                )
            return images
        if kind == "sensor":
            import mne

            info = self.space["info"]
            picked = mne.pick_info(info, mne.pick_channels(info["ch_names"], list(self._channels["name"]), ordered=True))
            return mne.EvokedArray(vals.reshape(-1, self.n_channels).T, picked, tmin=0.0, verbose=False)
        raise ValueError(
            f"This BrainData has no brain space to map values into (space kind {kind!r}); "
            "load it with brainalign.datasets.load_fmri / load_gifti / load_mne to keep one."
        )


