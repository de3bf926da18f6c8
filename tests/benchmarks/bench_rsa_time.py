"""Time-resolved and searchlight RSA against mne-rsa and rsatoolbox, side by side (issue 14).

Run: ``python tests/benchmarks/bench_rsa_time.py`` (``--quick`` for small sizes and 3 runs,
``--repeats N`` to change the number of runs, ``--only NAME`` to run the workloads whose
name contains NAME, ``--json PATH`` to write the rows for ``run_all.py``). Every workload
runs the peer and brainalign alternately (peer, brainalign, peer, ...), ``repeats`` times
(default 5) after a warm-up of each, and prints the median time of each with its spread
(min-max), the ratio (median of the per-run ratios peer / brainalign, with their min-max)
against the target of the issue, and the largest absolute difference between the two
results (the run fails if any exceeds its tolerance).

Workloads (full size):

- ``time-resolved``: 150 epochs x 204 channels x 120 times, correlation RDM per time point,
  Spearman vs 2 model RDMs; mne-rsa ``rsa_epochs(temporal_radius=0)``. Without a condition
  column (every epoch its own condition), with ``descriptor="stimulus_id"`` over 150
  distinct ids, and with 50 conditions x 3 repetitions (model RDMs given in another
  condition order, matched by label).
- ``sliding windows``: the same with 5-sample windows whose time points are features
  (mne-rsa ``temporal_radius=2 / sfreq``; ``window_mode="concatenate"``).
- ``crossnobis``: 50 conditions x 3 runs, leave-one-run-out crossnobis per time point vs
  rsatoolbox ``calc_rdm_movie`` + ``compare`` (mne-rsa's cross-validated distances are a
  different estimator).
- ``searchlight``: volume searchlight, 3-voxel radius (rsatoolbox keeps distances < 3
  voxels, i.e. <= sqrt(8)), correlation RDM, Spearman vs 2 models, on the bundled Haxby
  slice (8 categories) and on a 40 x 40 x 32 simulated brain (51,200 voxels, 40
  conditions) vs rsatoolbox ``get_volume_searchlight`` + ``get_searchlight_RDMs`` +
  ``compare``, compared at rsatoolbox's centres (complete spheres); and a sensor-space
  spatio-temporal searchlight (64 EEG channels, 4.5 cm, 5-sample windows) vs mne-rsa.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _harness.py beside this file
from _harness import add_arguments, alternate, make_row, versions, write_json  # noqa: E402


def _run(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Call every function ``repeats`` times, alternating (peer, brainalign, peer, ...) after a
    warm-up of each (imports and caches are not what is measured); (times per name, first output per name)."""
    return alternate(fns, repeats)


ROWS = []


def _report(workload: str, peer: str, times: dict, diff: float, tol: float, target: float) -> None:
    row = make_row(workload, peer, times["peer"], times["ours"], equal=diff <= tol, diff=diff, tolerance=tol,
                   target=target)
    ROWS.append(row)
    tp, tb = row["peer_s"], row["brainalign_s"]
    print(f"{workload:<58s} {peer:<12s} {tp:8.3f} s [{min(times['peer']):.3f}-{max(times['peer']):.3f}]  "
          f"brainalign {tb:7.3f} s [{min(times['ours']):.3f}-{max(times['ours']):.3f}]  x{row['ratio']:6.1f} "
          f"(paired runs {row['spread'][0]:.1f}-{row['spread'][1]:.1f}; target {target:g})  max|diff| {diff:.1e} "
          f"{'equal' if row['equal'] else 'MISMATCH'}", flush=True)


def _epochs(n_epochs, n_ch, n_times, sfreq, labels, rng, montage=None):
    import mne

    x = rng.standard_normal((n_epochs, n_ch, n_times))
    if montage is None:
        info = mne.create_info(n_ch, sfreq, "grad")
    else:
        mont = mne.channels.make_standard_montage(montage)
        info = mne.create_info(mont.ch_names[:n_ch], sfreq, "eeg")
        info.set_montage(mont)
    codes = np.unique(labels, return_inverse=True)[1].ravel() + 1
    events = np.c_[np.arange(n_epochs) * 1000, np.zeros(n_epochs, int), codes]
    return mne.EpochsArray(x, info, events=events, tmin=0.0, verbose=False)


def bench_time_resolved(quick: bool, repeats: int, rng) -> None:
    from mne_rsa import rsa_epochs
    from rsatoolbox.rdm import RDMs

    from brainalign import BrainData
    from brainalign.datasets import load_mne
    from brainalign.rsa import time_resolved

    n_ep, n_ch, n_t = (60, 64, 40) if quick else (150, 204, 120)
    cases = [("no condition column", np.arange(n_ep), None),
             ("descriptor, 150 distinct ids" if not quick else "descriptor, distinct ids", np.arange(n_ep), "stimulus_id"),
             (f"descriptor, {n_ep // 3} conditions x 3", np.arange(n_ep) % (n_ep // 3), "stimulus_id")]
    for label, stim, descriptor in cases:
        epochs = _epochs(n_ep, n_ch, n_t, 1000.0, stim, rng)
        loaded = load_mne(epochs)
        brain = BrainData(loaded.data, samples=loaded.samples.assign(stimulus_id=[f"s{i:03d}" for i in stim]),
                          channels=loaded.channels, sfreq=loaded.sfreq, times=loaded.times)
        ids = sorted(set(brain.samples["stimulus_id"]))
        n = len(ids)
        models = rng.random((2, n * (n - 1) // 2))  # in the order of `ids`
        order = rng.permutation(n)  # the models as an RDMs in another condition order, matched by label
        from brainalign.rsa._common import reorder_vectors

        shuffled = RDMs(reorder_vectors(models, order), pattern_descriptors={"stimulus_id": [ids[i] for i in order]})
        model_arg = shuffled if descriptor else models
        labels_epochs = list(brain.samples["stimulus_id"]) if descriptor else None
        for window, mode in ([(1, "average")] if label != "no condition column" else [(1, "average"), (5, "concatenate")]):
            radius = (window - 1) / 2 / 1000.0

            def peer():
                kw = {"labels_epochs": labels_epochs, "labels_rdm_model": ids} if descriptor else {}
                res = rsa_epochs(epochs, [m for m in models], temporal_radius=radius, n_jobs=1, verbose=False, **kw)
                return np.stack([r.data[0] for r in res])

            def ours():
                return time_resolved(brain, model_arg, descriptor=descriptor, window=window,
                                     window_mode=mode).scores

            times, outs = _run({"peer": peer, "ours": ours}, repeats)
            name = f"time-resolved {n_ep}x{n_ch}x{n_t}, {label}" + (f", {window}-sample windows" if window > 1 else "")
            _report(name, "mne-rsa", times, float(np.abs(outs["peer"] - outs["ours"]).max()), 1e-12, 5)


def bench_crossnobis(quick: bool, repeats: int, rng) -> None:
    from rsatoolbox.data import TemporalDataset
    from rsatoolbox.rdm import RDMs, calc_rdm_movie
    from rsatoolbox.rdm import compare as r_compare

    from brainalign import BrainData
    from brainalign.rsa import time_resolved

    n_cond, n_runs, n_ch, n_t = (20, 3, 32, 20) if quick else (50, 3, 204, 120)
    x = rng.standard_normal((n_cond * n_runs, n_ch, n_t))
    stim = np.tile(np.arange(n_cond), n_runs)
    run = np.repeat(np.arange(n_runs), n_cond)
    models = rng.random((2, n_cond * (n_cond - 1) // 2))
    ds = TemporalDataset(x, obs_descriptors={"stimulus_id": stim, "run": run},
                         time_descriptors={"time": np.arange(n_t) / 1000.0})
    brain = BrainData(x, samples={"stimulus_id": stim, "run": run}, sfreq=1000.0)

    def peer():
        movie = calc_rdm_movie(ds, method="crossnobis", descriptor="stimulus_id", cv_descriptor="run")
        return r_compare(RDMs(models), movie, method="spearman")

    def ours():
        return time_resolved(brain, models, rdm_method="crossnobis", descriptor="stimulus_id",
                             cv_descriptor="run").scores

    times, outs = _run({"peer": peer, "ours": ours}, repeats)
    _report(f"time-resolved crossnobis {n_cond} cond x {n_runs} runs x {n_ch} x {n_t}", "rsatoolbox", times,
            float(np.abs(outs["peer"] - outs["ours"]).max()), 1e-10, 5)


def _rsatoolbox_searchlight(data_vol: np.ndarray, mask: np.ndarray, events: np.ndarray, models: np.ndarray):
    from rsatoolbox.rdm import RDMs
    from rsatoolbox.rdm import compare as r_compare
    from rsatoolbox.util.searchlight import get_searchlight_RDMs, get_volume_searchlight

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            centers, neighbors = get_volume_searchlight(mask, radius=3, threshold=1.0)
            sl = get_searchlight_RDMs(data_vol, centers, neighbors, events, method="correlation", verbose=False)
    return centers, r_compare(RDMs(models), sl, method="spearman")


def bench_searchlight(quick: bool, repeats: int, rng) -> None:
    from brainalign import BrainData
    from brainalign.datasets import load_haxby2001
    from brainalign.rsa import searchlight

    # --- Haxby slice: 8 categories
    hx = load_haxby2001().brain
    keep = (hx.samples["category"] != "rest").to_numpy()
    hx = hx.select(samples=keep)
    ijk = hx.channels[["i", "j", "k"]].to_numpy()
    shape = tuple(ijk.max(0) + 1)
    cases = [("Haxby slice (%d voxels, 8 categories)" % len(ijk), hx.data, ijk, shape,
              hx.samples["category"].to_numpy())]
    # --- simulated brain
    dims = (20, 20, 16) if quick else (40, 40, 32)
    n_cond = 20 if quick else 40
    grid = np.argwhere(np.ones(dims, bool))
    sim = rng.standard_normal((n_cond, grid.shape[0]))
    cases.append((f"simulated brain ({grid.shape[0]} voxels, {n_cond} conditions)", sim, grid, dims,
                  np.arange(n_cond)))
    for label, data, ijk, shape, events in cases:
        n = len(np.unique(events))
        models = rng.random((2, n * (n - 1) // 2))
        flat = np.ravel_multi_index(ijk.T, shape)
        mask = np.zeros(shape, bool)
        mask[tuple(ijk.T)] = True
        data_vol = np.zeros((data.shape[0], int(np.prod(shape))))
        data_vol[:, flat] = data
        # brainalign: voxel units (identity affine) so that radius 2.9 keeps the offsets < 3 voxels
        brain = BrainData(data, samples={"condition": events},
                          channels={"i": ijk[:, 0], "j": ijk[:, 1], "k": ijk[:, 2]},
                          space={"kind": "volume", "affine": np.eye(4), "shape": shape})

        def peer():
            return _rsatoolbox_searchlight(data_vol, mask, events, models)

        def ours():
            return searchlight(brain, models, radius=2.9, descriptor="condition", min_voxels=1).maps

        times, outs = _run({"peer": peer, "ours": ours}, repeats)
        centers, ref = outs["peer"]
        pos = {v: i for i, v in enumerate(flat)}
        at = np.array([pos[c] for c in centers])
        if not len(at):
            raise RuntimeError(f"rsatoolbox found no searchlight centre in {label}; nothing to compare.")
        diff = float(np.abs(outs["ours"][:, at] - ref).max())
        _report(f"searchlight volume r=3 vox, {label}, {len(at)} centres compared", "rsatoolbox", times, diff,
                1e-10, 10)


def bench_sensor_searchlight(quick: bool, repeats: int, rng) -> None:
    import mne
    from mne_rsa import rsa_epochs

    from brainalign.datasets import load_mne
    from brainalign.rsa import searchlight

    mne.set_log_level("ERROR")
    n_ep, n_ch, n_t, sfreq = (30, 32, 20, 250.0) if quick else (60, 64, 60, 250.0)
    epochs = _epochs(n_ep, n_ch, n_t, sfreq, np.arange(n_ep), rng, montage="biosemi64")
    brain = load_mne(epochs)
    models = rng.random((2, n_ep * (n_ep - 1) // 2))
    radius, half = 0.045, 2

    def peer():
        res = rsa_epochs(epochs, [m for m in models], spatial_radius=radius, temporal_radius=half / sfreq,
                         n_jobs=1, verbose=False)
        return np.stack([r.data for r in res])

    def ours():
        return searchlight(brain, models, radius=radius, window=2 * half + 1, min_voxels=1).maps

    times, outs = _run({"peer": peer, "ours": ours}, repeats)
    _report(f"spatio-temporal searchlight {n_ep}x{n_ch}x{n_t}, 4.5 cm, 5 samples", "mne-rsa", times,
            float(np.abs(outs["peer"] - outs["ours"]).max()), 1e-12, 3)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, quick_help="small sizes, 3 runs (a smoke test)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per library (default 5; 3 with --quick)")
    parser.add_argument("--only", default="", help="run the workloads whose name contains this")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)
    import mne

    mne.set_log_level("ERROR")
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    rng = np.random.default_rng(0)
    for name, fn in [("time-resolved", bench_time_resolved), ("crossnobis", bench_crossnobis),
                     ("searchlight", bench_searchlight), ("sensor", bench_sensor_searchlight)]:
        if args.only in name:
            fn(args.quick, repeats, rng)
    bad = [r for r in ROWS if not r["equal"]]
    print(f"\n{len(ROWS)} workloads; {sum(r['met'] for r in ROWS)} meet their target; "
          f"{len(bad)} with different numbers.")
    write_json(args.json, __file__, ROWS, versions=versions("mne_rsa", "rsatoolbox", "mne", "numpy", "torch"))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
