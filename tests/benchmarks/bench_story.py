"""Story listening at the scale of one ds003020 subject, through ``run_recipe`` (NOT run by ``make bench``).

    python tests/benchmarks/bench_story.py --scale 0.05    # smoke test: a few minutes
    python tests/benchmarks/bench_story.py                  # full size: hours on 2 cores (12 layers)
    python tests/benchmarks/bench_story.py --sweep-layers layer.05 --skip dask   # full size, one layer

At ``--scale 1`` a simulated subject the size of one ds003020 subject is written in the ds003020
layout (``derivative/preprocessed_data/<subject>/<story>.hf5``, TextGrids, ``respdict.json``):
20 stories of 400 TRs (8,000 TRs), 80,000 voxels (float32), ~2.5 words/s, and the word features
of a 12-layer, 768-wide model (random, memory-mapped float32 ``.npy`` files; the responses are
driven by a low-rank projection of one layer). Smaller scales shrink TRs, voxels and width
(``stories = max(4, 20 s)``, ``TRs = 8000 s``, ``voxels = 80000 s``, ``width = max(32, 768 s)``).

Steps, each in its own process (so that every peak RSS is its own):

1. ``data``: write the dataset.
2. ``sweep``: ``brainalign.run_recipe`` (dataset ``lebel2023`` at that root; the model from its
   ``npy:`` folder; every layer; FIR delays 1-4 TRs; the ds003020 test story
   ``wheretheressmoke`` held out; alphas by an inner CV over the training stories; 200 bootstrap
   replicates and 200 circular shifts). Reports the wall time in total and per layer (fit and
   statistics, from the sweep's log), and the peak RSS.
3. ``himalaya``: one layer with himalaya's ``RidgeCV`` (the same design, the same inner folds
   over training stories, the same alphas, fitted on the training stories, r on the test story)
   against ``brainalign.encoding.cross_validate_encoding`` on the same arrays, in the same
   process, alternating, the median of ``--repeats``; held-out r compared per voxel.
4. ``dask``: the same recipe on 2 layers, locally and on a 2-worker Dask ``LocalCluster``: the
   two tables must be equal.

Targets (issue 9): peak RSS <= 8 GB in the sweep; >= 3x faster per layer than himalaya; held-out
scores equal within 1e-3; the Dask table equal. The results go to ``<workdir>/bench_story.json``.
Timings are meaningful only on a quiet machine (``uptime`` load < 1). Memory: the responses are
float32 end to end (read once, the training rows a view, predictions kept for the test story
only, one layer's design at a time); the ridge solver sizes its voxel chunks from a third of the
free memory, which ``--memory-limit`` (``BRAINALIGN_MEMORY_LIMIT``, default 8G here) declares.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
SUBJECT = "UTS01"
TEST_STORY = "wheretheressmoke"
TR, START, PAD, TRIM = 2.0, 10.0, 5, 5
DELAYS = [1, 2, 3, 4]
ALPHAS = [float(a) for a in np.logspace(0, 5, 11)]
N_LAYERS, SIGNAL_LAYER, RANK = 12, 5, 16


def sizes(scale: float) -> dict:
    n_stories = max(4, int(round(20 * scale)))
    trs = max(60, int(round(8000 * scale / n_stories)))
    return {"n_stories": n_stories, "trs_per_story": trs, "n_trs": n_stories * trs,
            "n_voxels": max(200, int(round(80000 * scale))), "width": max(32, int(round(768 * scale))),
            "n_layers": N_LAYERS, "delays": DELAYS}


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux -> GiB


class _MemoryPeaks:
    """Peak anonymous and file-backed resident memory of this process (sampled every 0.2 s): the RSS of a
    run that memory-maps its inputs counts their resident file pages, which the kernel can reclaim."""

    def __init__(self) -> None:
        import threading

        self.peaks = {"RssAnon": 0.0, "RssFile": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with open("/proc/self/status") as fh:
                    for line in fh:
                        key, _, value = line.partition(":")
                        if key in self.peaks:
                            self.peaks[key] = max(self.peaks[key], int(value.split()[0]) / 2**20)
            except OSError:
                return
            self._stop.wait(0.2)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        return {"peak_anon_gb": round(self.peaks["RssAnon"], 2), "peak_file_gb": round(self.peaks["RssFile"], 2)}


# --------------------------------------------------------------------------- 1. data
def make_data(work: Path, scale: float, seed: int = 0) -> dict:
    import pandas as pd

    from brainalign import BrainData, Features
    from brainalign.datasets._lebel import _write_response, _write_textgrid
    from brainalign.features import align_to

    p = sizes(scale)
    rng = np.random.default_rng(seed)
    deriv = work / "ds" / "derivative"
    (deriv / "TextGrids").mkdir(parents=True, exist_ok=True)
    (deriv / "preprocessed_data" / SUBJECT).mkdir(parents=True, exist_ok=True)
    names = [f"story{k:02d}" for k in range(p["n_stories"] - 1)] + [TEST_STORY]
    n_grid = p["trs_per_story"] + 15  # rows kept by the dataset's code: respdict - 20 = grid - 15
    sound = (n_grid * TR) - START - 10.0
    respdict, tables = {}, []
    vocab = np.array(["the", "a", "story", "of", "and", "then", "she", "said", "house", "river", "walked", "light"])
    for name in names:
        gaps = 0.05 + rng.exponential(0.35, size=int(sound * 4)).round(3)  # 2.5 words/s on average
        onset = (0.5 + np.cumsum(gaps)).round(3)
        onset = onset[onset < sound - 0.5]
        offset = onset + np.minimum(0.25, np.r_[np.diff(onset), 0.25] - 0.01)
        words = pd.DataFrame({"text": rng.choice(vocab, len(onset)), "onset": onset, "offset": offset.round(3)})
        _write_textgrid(deriv / "TextGrids" / f"{name}.TextGrid", words, xmax=sound)
        respdict[name] = n_grid + PAD
        tables.append(words.assign(run=name))
    (deriv / "respdict.json").write_text(json.dumps(respdict))
    table = pd.concat(tables, ignore_index=True)
    n_words = len(table)
    feat_dir = work / "features"
    feat_dir.mkdir(exist_ok=True)
    layer_names = [f"layer.{k:02d}" for k in range(p["n_layers"])]
    (feat_dir / "layers.txt").write_text("\n".join(layer_names) + "\n")
    for name in layer_names:
        arr = np.lib.format.open_memmap(feat_dir / f"{name}.npy", mode="w+", dtype=np.float32,
                                        shape=(n_words, p["width"]))
        for a in range(0, n_words, 20000):
            arr[a:a + 20000] = rng.standard_normal((min(20000, n_words - a), p["width"]), dtype=np.float32)
        arr.flush()
        del arr
    # the responses: a low-rank projection of one layer's delayed design (Lanczos to the TR grid), plus noise
    signal_layer = np.load(feat_dir / f"{layer_names[SIGNAL_LAYER]}.npy", mmap_mode="r")
    items = [f"w{i}" for i in range(n_words)]
    feats = Features({"x": signal_layer}, items=items,
                     item_table=table[["onset", "run"]].assign(duration=0.25, stimulus_id=items))
    first = 5 + TRIM
    onsets = (np.arange(p["trs_per_story"]) + first) * TR - START
    grid = BrainData(np.zeros((p["n_trs"], 1), np.float32), tr=TR,
                     samples={"run": np.repeat(names, p["trs_per_story"]), "onset": np.tile(onsets, len(names))})
    X = align_to(feats, grid, layer="x", delays=DELAYS, zscore="features").X
    S = X @ rng.standard_normal((X.shape[1], RANK))
    S = (S - S.mean(0)) / S.std(0)
    M = rng.standard_normal((RANK, p["n_voxels"])).astype(np.float32) / np.sqrt(RANK)
    snr = rng.uniform(0.05, 1.0, p["n_voxels"]).astype(np.float32)
    for k, name in enumerate(names):
        rows = slice(k * p["trs_per_story"], (k + 1) * p["trs_per_story"])
        resp = (S[rows].astype(np.float32) @ M) * np.sqrt(snr)
        resp += rng.standard_normal(resp.shape, dtype=np.float32)
        _write_response(deriv / "preprocessed_data" / SUBJECT / f"{name}.hf5", resp)
        del resp
    meta = {**p, "n_words": n_words, "stories": names, "signal_layer": layer_names[SIGNAL_LAYER],
            "disk_gb": round(sum(f.stat().st_size for f in work.rglob("*") if f.is_file()) / 2**30, 2)}
    (work / "data.json").write_text(json.dumps(meta, indent=1))
    return meta


# --------------------------------------------------------------------------- 2. the sweep through run_recipe
def recipe(work: Path, layers="all", name="bench_story") -> dict:
    return {"recipe": {"name": name, "random_state": 0},
            "dataset": {"name": "lebel2023", "root": str(work / "ds"), "subject": SUBJECT},
            "models": [{"name": "rand12", "source": f"npy:{work / 'features'}", "layers": layers}],
            "methods": {"use": ["encoding"], "encoding": {"delays": DELAYS, "alphas": ALPHAS, "zscore": "features",
                                                          "inner_cv": 5}},
            "statistics": {"n_resamples": 200, "n_permutations": 200},
            "outputs": {"figures": ["layer_profile"], "html": False}}


class _LayerLog(logging.Handler):
    PATTERN = re.compile(r"layer (\S+) fitted in ([\d.]+) s, statistics ([\d.]+) s")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.layers: dict[str, dict] = {}

    def emit(self, record: logging.LogRecord) -> None:
        m = self.PATTERN.search(record.getMessage())
        if m:
            self.layers[m.group(1)] = {"fit_s": float(m.group(2)), "statistics_s": float(m.group(3))}


def run_sweep(work: Path, layers="all") -> dict:
    from brainalign import run_recipe

    import shutil

    shutil.rmtree(work / "out_sweep", ignore_errors=True)  # no sweep cache from an earlier run
    log = _LayerLog()
    logger = logging.getLogger("brainalign")
    logger.addHandler(log)
    logger.setLevel(logging.INFO)
    memory = _MemoryPeaks()
    t0 = time.perf_counter()
    res = run_recipe(recipe(work, layers), out=work / "out_sweep")
    total = time.perf_counter() - t0
    table = res.results
    return {"total_s": round(total, 1), "timings": {k: round(v, 1) for k, v in res.provenance["timings"].items()},
            "per_layer": log.layers, "peak_rss_gb": round(peak_rss_gb(), 2), **memory.stop(),
            "n_layers": int(table["layer"].nunique()), "test_runs": sorted(set(table["test_runs"].dropna())),
            "scores": table.set_index("layer")["score"].round(4).to_dict()}


# --------------------------------------------------------------------------- 3. himalaya on one layer
def run_himalaya(work: Path, layer: str, repeats: int) -> dict:
    import himalaya.backend
    from himalaya.ridge import RidgeCV as HimalayaRidgeCV
    from himalaya.scoring import r2_score  # brainalign's RidgeCV scores the alphas by R² (mean over folds)
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

    from brainalign import Features
    from brainalign.datasets import load_lebel2023
    from brainalign.encoding import cross_validate_encoding
    from brainalign.features import align_to
    from brainalign.stats import pearson_r

    meta = json.loads((work / "data.json").read_text())
    data = load_lebel2023(work / "ds", SUBJECT, stories=meta["stories"])
    words = data.stimuli
    arr = np.load(work / "features" / f"{layer}.npy", mmap_mode="r")
    feats = Features({layer: arr}, items=words.ids, item_table=words.table)
    X = align_to(feats, data.brain, layer=layer, delays=DELAYS, zscore="features").X.astype(np.float32)
    Y = data.brain.data
    runs = data.brain.samples["run"].to_numpy()
    train, test = np.flatnonzero(runs != TEST_STORY), np.flatnonzero(runs == TEST_STORY)
    n_groups = len(np.unique(runs[train]))  # as brainalign's inner CV: GroupKFold(5), or leave one story out
    splitter = GroupKFold(n_splits=5) if n_groups >= 5 else LeaveOneGroupOut()
    inner = list(splitter.split(X[train], groups=runs[train]))
    himalaya.backend.set_backend("torch", on_error="warn")

    def ours():
        res = cross_validate_encoding(X, Y, groups=runs, outer_cv=[(train, test)], inner_cv=5, alphas=ALPHAS,
                                      device="cpu", return_predictions=True)
        return np.asarray(res["r_folds"][0], dtype=np.float64)

    def theirs():
        model = HimalayaRidgeCV(alphas=np.asarray(ALPHAS), cv=inner, fit_intercept=True,
                                solver_params={"n_targets_batch": 10000, "n_alphas_batch": len(ALPHAS),
                                               "n_targets_batch_refit": 10000, "score_func": r2_score})
        model.fit(X[train], Y[train])
        pred = himalaya.backend.get_backend().to_numpy(model.predict(X[test]))
        return pearson_r(Y[test], np.asarray(pred, dtype=np.float32)).astype(np.float64)

    t_ours, t_theirs = [], []
    for _ in range(repeats):  # alternating, so that a busy machine slows both alike
        t = time.perf_counter()
        r_ours = ours()
        t_ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        r_theirs = theirs()
        t_theirs.append(time.perf_counter() - t)
    diff = np.abs(r_ours - r_theirs)
    return {"layer": layer, "n_voxels": int(Y.shape[1]), "brainalign_s": round(float(np.median(t_ours)), 2),
            "himalaya_s": round(float(np.median(t_theirs)), 2),
            "ratio": round(float(np.median(t_theirs) / np.median(t_ours)), 2),
            "r_max_abs_diff": float(diff.max()), "r_99_9th_abs_diff": float(np.quantile(diff, 0.999)),
            "fraction_voxels_diff_over_1e-3": float((diff > 1e-3).mean()),
            "mean_r_abs_diff": float(abs(r_ours.mean() - r_theirs.mean())),
            "mean_r": [round(float(r_ours.mean()), 5), round(float(r_theirs.mean()), 5)],
            "peak_rss_gb": round(peak_rss_gb(), 2), "repeats": repeats}


# --------------------------------------------------------------------------- 4. Dask on 2 layers
def run_dask(work: Path) -> dict:
    import pandas as pd
    from distributed import Client, LocalCluster

    from brainalign import run_recipe

    import shutil

    layers = ["layer.00", "layer.01"]
    for name in ("out_local", "out_dask"):
        shutil.rmtree(work / name, ignore_errors=True)
    t = time.perf_counter()
    local = run_recipe(recipe(work, layers, "bench_story_local"), out=work / "out_local").results
    t_local = time.perf_counter() - t
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster):
        t = time.perf_counter()
        remote = run_recipe(recipe(work, layers, "bench_story_dask"), out=work / "out_dask",
                            scheduler=cluster.scheduler_address).results
        t_remote = time.perf_counter() - t
    num = [c for c in local.columns if local[c].dtype.kind == "f"]
    diff = float(np.nanmax(np.abs(local[num].to_numpy() - remote[num].to_numpy())))
    try:
        pd.testing.assert_frame_equal(local, remote)
        equal = True
    except AssertionError:
        equal = False
    return {"equal": equal, "max_abs_diff": diff, "local_s": round(t_local, 1), "dask_s": round(t_remote, 1)}


# --------------------------------------------------------------------------- driver
def _step(step: str, work: Path, args: argparse.Namespace) -> dict:
    """Run one step in a fresh process; its JSON result comes back on the last line of stdout."""
    cmd = [sys.executable, str(HERE), "--step", step, "--workdir", str(work), "--scale", str(args.scale),
           "--repeats", str(args.repeats), "--layer", args.layer, *(["--sweep-layers", *args.sweep_layers]
                                                                    if args.sweep_layers else [])]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    if args.memory_limit:  # the free memory the solvers size their voxel chunks from (a third of it)
        env["BRAINALIGN_MEMORY_LIMIT"] = args.memory_limit
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"step {step} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["step_wall_s"] = round(time.perf_counter() - t, 1)
    print(f"[{step}] {json.dumps(out)}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=1, help="himalaya comparison: alternating repeats (median)")
    ap.add_argument("--layer", default="layer.05", help="the layer compared with himalaya")
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads of every step (default 2)")
    ap.add_argument("--memory-limit", default="8G",
                    help="BRAINALIGN_MEMORY_LIMIT of every step: the free memory the ridge solver sizes its voxel "
                         "chunks from (a third of it); '' for the machine's free memory (default 8G)")
    ap.add_argument("--sweep-layers", nargs="*", default=None,
                    help="score only these layers in the sweep step (e.g. layer.05 at --scale 1: one layer of the "
                         "full size in about half an hour); default every layer")
    ap.add_argument("--skip", nargs="*", default=[], choices=["himalaya", "dask"])
    ap.add_argument("--step", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = args.workdir or Path(f"/tmp/brainalign_bench_story_{args.scale:g}")
    if args.step:
        fn = {"data": lambda: make_data(work, args.scale), "sweep": lambda: run_sweep(work, args.sweep_layers or "all"),
              "himalaya": lambda: run_himalaya(work, args.layer, args.repeats), "dask": lambda: run_dask(work)}
        print(json.dumps(fn[args.step]()))
        return
    work.mkdir(parents=True, exist_ok=True)
    print(f"bench_story: scale {args.scale:g} -> {sizes(args.scale)}; workdir {work}; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    report = {"scale": args.scale, "sizes": sizes(args.scale), "load_average_start": os.getloadavg(),
              "threads": args.threads, "memory_limit": args.memory_limit, "sweep_layers": args.sweep_layers or "all"}
    report["data"] = (json.loads((work / "data.json").read_text()) if (work / "data.json").exists()
                      else _step("data", work, args))
    report["sweep"] = _step("sweep", work, args)
    if "himalaya" not in args.skip:
        report["himalaya"] = _step("himalaya", work, args)
    if "dask" not in args.skip:
        report["dask"] = _step("dask", work, args)
    report["load_average_end"] = os.getloadavg()
    (work / "bench_story.json").write_text(json.dumps(report, indent=1))
    sw = report["sweep"]
    per = sw["per_layer"]
    print(f"\n== bench_story (scale {args.scale:g}: {report['data']['n_trs']} TRs in {report['data']['n_stories']} "
          f"stories, {report['data']['n_voxels']} voxels, {report['data']['n_layers']} layers x "
          f"{report['data']['width']} features x {len(DELAYS)} delays)")
    print(f"   run_recipe total {sw['total_s']} s (sweep {sw['timings'].get('sweep_s')} s); per layer: fit "
          f"{np.median([v['fit_s'] for v in per.values()]):.1f} s, statistics "
          f"{np.median([v['statistics_s'] for v in per.values()]):.1f} s (medians); peak RSS {sw['peak_rss_gb']} GiB "
          f"(target <= 8: {'met' if sw['peak_rss_gb'] <= 8 else 'NOT met'}), of which at most "
          f"{sw['peak_anon_gb']} GiB anonymous and {sw['peak_file_gb']} GiB pages of the memory-mapped inputs; "
          f"BRAINALIGN_MEMORY_LIMIT={args.memory_limit or 'unset'}, {args.threads} BLAS thread(s)")
    if "himalaya" in report:
        h = report["himalaya"]
        print(f"   one layer ({h['layer']}): brainalign {h['brainalign_s']} s, himalaya RidgeCV {h['himalaya_s']} s "
              f"-> {h['ratio']}x (target >= 3x: {'met' if h['ratio'] >= 3 else 'NOT met'}); held-out r max |diff| "
              f"{h['r_max_abs_diff']:.2e} (target <= 1e-3: {'met' if h['r_max_abs_diff'] <= 1e-3 else 'NOT met'})")
    if "dask" in report:
        d = report["dask"]
        print(f"   2 layers on a 2-worker Dask LocalCluster: table {'equal' if d['equal'] else 'DIFFERENT'} "
              f"(max |diff| {d['max_abs_diff']:.1e}); local {d['local_s']} s, Dask {d['dask_s']} s")
    print(f"   load average at start / end: {report['load_average_start'][0]:.2f} / {report['load_average_end'][0]:.2f}"
          " (timings are meaningful on a quiet machine only)")


if __name__ == "__main__":
    main()
