# %% [markdown]
# # 01 — Loading fMRI, EEG/MEG, RDMs and stimuli
#
# Everything in brainalign flows through three plain containers:
#
# * `BrainData` — an array `(n_samples, n_channels)` (fMRI volumes x voxels, continuous M/EEG)
#   or `(n_samples, n_channels, n_times)` (M/EEG epochs), with a **samples** table (one row per
#   volume / epoch: run, onset, stimulus_id...) and a **channels** table (one row per voxel /
#   sensor: coordinates, ROI, sensor type), plus what is needed to go back to brain space;
# * `Stimuli` — a table of stimulus items (sentences, images, sounds, words of a story with
#   their onsets);
# * `Features` — one array per model layer (tutorial 02).
#
# This tutorial loads each kind of data the package reads:
#
# 1. the bundled Haxby (2001) fMRI (block design, 8 object categories);
# 2. a small BIDS dataset written on the fly (NIfTI runs, `events.tsv`, JSON sidecar);
# 3. a NIfTI run with an atlas of regions of interest;
# 4. the bundled MNE evoked responses (MEG + EEG), and a Raw recording cut into epochs;
# 5. representational dissimilarity matrices (RDM files);
# 6. stimulus tables (texts, the 92 images, a narrative with word onsets);
# 7. simulated responses with a known ground truth.
#
# Run from the repository root: `python tutorials/01_loading.py`. Figures and files go to
# `results/tutorials/01_loading/`.

# %%
import json
import shutil
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import nibabel as nib
import numpy as np
import pandas as pd

from brainalign import Features, Stimuli
from brainalign.datasets import (
    list_datasets,
    load_bids,
    load_fmri,
    load_haxby2001,
    load_kriegeskorte92,
    load_mne,
    load_mne_audvis,
    load_rdms,
    save_rdms,
    simulate_responses,
)
from brainalign.plotting import plot_brain_map, plot_rdm, plot_sensor_map

OUT = Path("results/tutorials/01_loading")
OUT.mkdir(parents=True, exist_ok=True)
TMP = Path(tempfile.mkdtemp(prefix="brainalign_tutorial01_"))

# %% [markdown]
# The bundled real datasets, with their sizes and citations (nothing is downloaded):

# %%
print(list_datasets()[["name", "description"]].to_string(index=False, max_colwidth=80))

# %% [markdown]
# ## 1. Haxby et al. (2001): one subject, 12 runs, 8 object categories
#
# `load_haxby2001()` returns a `Bunch` with the `BrainData`, the `Stimuli` (one item per
# category: in a block design the condition is the item) and the events table. By default
# each run is z-scored per voxel.

# %%
haxby = load_haxby2001()
brain = haxby.brain
print(brain)
print(haxby.description)
print(brain.samples.head(8).to_string())
print(brain.channels.head(3).to_string())

# %% [markdown]
# Each volume has a `run`, its `onset` in the run, and the `stimulus_id` / `category` of the
# block it falls in (`"rest"` between blocks). The channels table holds the voxel indices
# `i, j, k` and millimetre coordinates `x, y, z`, so any per-voxel value can be put back on
# the brain.

# %%
n_runs = brain.samples["run"].nunique()
vols_per_run = brain.samples.groupby("run").size()
counts = brain.samples["category"].value_counts()
print(f"{n_runs} runs x {vols_per_run.iloc[0]} volumes, TR = {brain.tr} s, {brain.n_channels} voxels")
print(counts.to_string())

# %% [markdown]
# Selections return new objects: by a samples column (`category`, `run`), by a channels column,
# or with explicit masks. `split` cuts by runs, `average_repetitions` averages the samples that
# share a value (here: all volumes of a category, a crude "category pattern").

# %%
faces = brain.select(category="face")
houses = brain.select(category="house")
runs = brain.split("run")
patterns = brain.select(category=lambda c: c != "rest").average_repetitions(by="category")
print(faces.shape, houses.shape, len(runs), runs[0].shape)
print(patterns.samples.to_string())

# %% [markdown]
# `to_image` puts one value per voxel back into a NIfTI image (the slice of the original
# acquisition grid); `brainalign.plotting.plot_brain_map` draws it. Here: faces minus houses,
# in z units.

# %%
contrast = faces.data.mean(0) - houses.data.mean(0)
img = brain.to_image(contrast)
print("image:", img.shape, "voxel size (mm):", img.header.get_zooms()[:3])
fig = plot_brain_map(brain, contrast, title="Haxby 2001: faces - houses", colorbar_label="mean BOLD difference (z)")
fig.savefig(OUT / "haxby_faces_minus_houses.png", dpi=110)

# %% [markdown]
# ## 2. A BIDS dataset
#
# We write a tiny raw BIDS dataset: one subject, two runs of a task, 4D NIfTI images made
# with nibabel, an `events.tsv` per run and a task-level JSON sidecar with the repetition
# time. The data carry a response to the "face" blocks in some voxels, so that we can check
# the events were matched to the right volumes.

# %%
bids = TMP / "bids"
func = bids / "sub-01" / "func"
func.mkdir(parents=True)
(bids / "dataset_description.json").write_text(json.dumps({"Name": "tiny demo", "BIDSVersion": "1.8.0"}))
(bids / "task-faces_bold.json").write_text(json.dumps({"RepetitionTime": 2.0, "TaskName": "faces"}))
rng = np.random.default_rng(0)
n_vol, shape = 40, (6, 6, 4)
for run in (1, 2):
    events = pd.DataFrame({"onset": [4.0, 24.0, 44.0, 64.0], "duration": [10.0] * 4,
                           "trial_type": ["face", "house", "face", "house"] if run == 1 else
                                         ["house", "face", "house", "face"]})
    events.to_csv(func / f"sub-01_task-faces_run-{run}_events.tsv", sep="\t", index=False, na_rep="n/a")
    bold = rng.standard_normal(shape + (n_vol,)) + 100.0
    t = np.arange(n_vol) * 2.0
    for _, ev in events[events["trial_type"] == "face"].iterrows():
        on = (t >= ev["onset"]) & (t < ev["onset"] + ev["duration"])
        bold[:3, :, :, on] += 2.0  # "face-selective" voxels: the first three x positions
    image = nib.Nifti1Image(bold.astype(np.float32), np.diag([3.0, 3.0, 3.0, 1.0]))
    image.header.set_xyzt_units("mm", "sec")
    image.header["pixdim"][4] = 2.0  # the header agrees with the sidecar
    nib.save(image, func / f"sub-01_task-faces_run-{run}_bold.nii.gz")
print(sorted(p.relative_to(bids).as_posix() for p in bids.rglob("*") if p.is_file()))

# %%
ds = load_bids(bids, subject="01", task="faces")
print(ds.brain)
print(ds.files[["run", "bold", "events"]].map(lambda v: Path(v).name if isinstance(v, str) else v).to_string())
print(ds.stimuli)
print(ds.events.to_string())
face_vols = ds.brain.samples["trial_type"].eq("face").to_numpy()
left = ds.brain.channels["i"].to_numpy() < 3
bids_effect = ds.brain.data[face_vols][:, left].mean() - ds.brain.data[~face_vols][:, left].mean()
print(f"face effect in the face voxels: {bids_effect:.2f} z")

# %% [markdown]
# ## 3. A NIfTI run with regions of interest
#
# `load_fmri` reads one or more 4D images (paths or nibabel images), keeps the voxels of a
# mask, and labels them with an atlas: an integer label image (with names), or a dict of
# region name -> mask. The `roi` column of the channels table then drives `select(roi=...)`
# and the per-ROI analyses of `brainalign.alignment.sweep`.

# %%
brainmask = np.zeros(shape, bool)
brainmask[1:5, 1:5, :] = True
atlas = {"FFA": np.zeros(shape, bool), "PPA": np.zeros(shape, bool)}
atlas["FFA"][:3] = True
atlas["PPA"][3:] = True
run1 = func / "sub-01_task-faces_run-1_bold.nii.gz"
roi_brain = load_fmri(run1, mask=brainmask, atlas=atlas, events=func / "sub-01_task-faces_run-1_events.tsv",
                      subject="01")
print(roi_brain)
print(roi_brain.channels["roi"].value_counts().to_string())
ffa = roi_brain.select(roi="FFA")
print("FFA:", ffa.shape, "PPA:", roi_brain.select(roi="PPA").shape)

# %% [markdown]
# ## 4. MEG and EEG
#
# ### Evoked responses (bundled MNE test data)
#
# Four conditions (left/right auditory, left/right visual) averaged over trials: a BrainData of
# shape `(4 conditions, 366 sensors, 421 time points)`. The channels table gives each sensor's
# type (gradiometer, magnetometer, EEG) and position; `space["info"]` keeps MNE's `Info`.

# %%
audvis = load_mne_audvis()
meg = audvis.brain
print(meg)
print(meg.samples.to_string())
print(meg.channels["ch_type"].value_counts().to_string())
print(meg.channels.head(3).to_string())

# %% [markdown]
# The global field power of the magnetometers (the standard deviation across sensors at
# each time point) in the right-ear auditory condition, and the topography at its peak. These
# test data average only 3-6 trials per condition, so the baseline is noisy; the auditory
# N100m still stands out.

# %%
mags = meg.select(ch_type="mag", condition="Right Auditory")
gfp = mags.data[0].std(axis=0)
t_peak = float(mags.times[np.argmax(gfp)])
baseline_gfp = gfp[mags.times < 0].mean()
print(f"magnetometer GFP peaks at {t_peak * 1000:.0f} ms, {gfp.max() / baseline_gfp:.1f}x the baseline level")
aud = meg.select(condition="Right Auditory")
at_peak = aud.data[0][:, np.argmin(np.abs(aud.times - t_peak))]
fig = plot_sensor_map(aud, at_peak * 1e15, ch_type="mag", colorbar_label="field (fT)",
                      title=f"right auditory, {t_peak * 1000:.0f} ms")
fig.savefig(OUT / "meg_topomap.png", dpi=110)

# %% [markdown]
# ### A Raw recording cut into epochs
#
# `load_mne` accepts MNE `Raw`, `Epochs`, `Evoked` objects or file paths. Here we build a
# 4-channel EEG `RawArray` with a stimulus channel, find its events with MNE, and let
# `load_mne` epoch it around them. Channel 0 responds 100 ms after each "tone".

# %%
import mne

sfreq, n_times = 200.0, 4000
info = mne.create_info(["Fz", "Cz", "Pz", "Oz", "STI"], sfreq, ["eeg"] * 4 + ["stim"])
signal = rng.standard_normal((5, n_times)) * 1e-6
signal[4] = 0
onsets = np.arange(200, n_times - 200, 300)
codes = np.where(np.arange(len(onsets)) % 2 == 0, 1, 2)
signal[4, onsets] = codes
for on in onsets:
    signal[0, on + 15: on + 25] += 5e-6  # 75-125 ms after the event
raw = mne.io.RawArray(signal, info, verbose=False)
events = mne.find_events(raw, stim_channel="STI", verbose=False)
epochs = load_mne(raw, events=events, event_id={"tone": 1, "noise": 2}, tmin=-0.1, tmax=0.4,
                  baseline=(None, 0))
print(epochs)
print(epochs.samples.head(4).to_string())
erp = epochs.select(name="Fz").data[:, 0].mean(0)
erp_peak = float(epochs.times[np.argmax(erp)])
print(f"Fz evoked peak at {erp_peak * 1000:.0f} ms; continuous Raw (no events) has shape {load_mne(raw).shape}")

# %% [markdown]
# ## 5. RDM files
#
# RDMs are rsatoolbox `RDMs` objects. The 92-image dataset of Kriegeskorte et al. (2008)
# ships human IT RDMs (4 subjects x 2 sessions), a monkey IT RDM, model RDMs and AlexNet layer
# RDMs. `save_rdms` writes `.npz` (no pickle) or rsatoolbox HDF5; `load_rdms` reads those,
# MATLAB `.mat` files (as in rsatoolbox_matlab) and CSV matrices.

# %%
k92 = load_kriegeskorte92()
hit = k92.hit_rdms
print(f"{hit.n_rdm} hIT RDMs over {hit.n_cond} images; subjects {sorted(map(str, set(hit.rdm_descriptors['subject'])))}, "
      f"measure {hit.dissimilarity_measure!r}")
path = save_rdms(hit, TMP / "hIT.npz")
back = load_rdms(path)
print(path.name, "->", back.n_rdm, "RDMs of", back.n_cond, "images; descriptors", list(back.rdm_descriptors))
np.testing.assert_allclose(back.get_vectors(), hit.get_vectors())
# a CSV matrix with stimulus names in the header row
names = list(hit.pattern_descriptors["stimulus_id"])
pd.DataFrame(hit.get_matrices()[0], columns=names).to_csv(TMP / "hIT_subject1.csv", index=False)
csv_rdm = load_rdms(TMP / "hIT_subject1.csv", dissimilarity_measure="correlation")
print("CSV:", csv_rdm.n_cond, "conditions, first names", [str(x) for x in csv_rdm.pattern_descriptors["stimulus"][:3]])
mats = hit.get_matrices()
fig = plot_rdm(hit.subset("session", 1), categories=hit.pattern_descriptors["category"], rank=True,
               title="human IT, session 1")
fig.savefig(OUT / "hit_rdms.png", dpi=110)

# %% [markdown]
# ## 6. Stimuli
#
# A `Stimuli` table has one row per item, a unique `stimulus_id`, a modality and its content.
# Extra columns (conditions, categories) are kept and can be used to select items.

# %%
sentences = Stimuli.from_texts(["The dog chased the ball.", "A violin played softly.", "Prices rose again."],
                               ids=["dog", "violin", "prices"], topic=["animal", "music", "finance"])
print(sentences)
print(sentences.table.to_string())

images = k92.stimuli  # the 92 photographs as arrays, with their category columns
print(images)
print(images.table["category"].value_counts().to_string())
faces92 = images.select(face=True)
print(f"{len(faces92)} face images; first image {images.contents()[0].shape} {images.contents()[0].dtype}")

# %% [markdown]
# A narrative is a table of words with their onsets (s); the words of one `run` form one
# continuous text (feature extraction gives each word its left context, tutorial 02).

# %%
story = ["once", "upon", "a", "time", "a", "little", "fox", "lived", "near", "the", "old", "mill", "by", "the",
         "river"]
word_onsets = np.cumsum(rng.uniform(0.25, 0.45, len(story)))
narrative = Stimuli.from_words(story, word_onsets, offsets=word_onsets + 0.2)
print(narrative, narrative.is_narrative)
print(narrative.table.head(5).to_string())

# %% [markdown]
# ## 7. Simulated responses with a known ground truth
#
# `simulate_responses` turns a feature matrix into brain data: each channel is a random
# linear readout of the (z-scored) features plus Gaussian noise at a chosen SNR. With
# `kind="fmri"` the item responses are convolved with the canonical HRF and sampled every TR;
# like every loader it returns a Bunch: `sim.brain` is the BrainData, and the other keys are
# the ground truth (weights, the noiseless signal, the noise ceilings, the fMRI events).

# %%
feats = Features({"layer": rng.standard_normal((30, 8))}, items=[f"img{i:02d}" for i in range(30)])
sim = simulate_responses(feats, kind="fmri", tr=2.0, n_channels=50, snr=2.0, n_repeats=3, random_state=0)
print(sim.brain)
print(sim.brain.samples.head(3).to_string())
print(sim.events.head(3).to_string())
print(f"expected single-run ceiling r = {sim.noise_ceiling.mean():.3f}, "
      f"realised {sim.noise_ceiling_empirical.mean():.3f}")
static = simulate_responses(feats, n_channels=50, snr=2.0, n_repeats=3, random_state=0).brain
print("static:", static.shape, "-> averaged:", static.average_repetitions().shape)

# %% [markdown]
# ## What a scientist checks

# %%
# Haxby: 12 runs of 121 volumes at TR 2.5 s; each of the 8 categories has 12 blocks of 9 volumes.
assert n_runs == 12 and (vols_per_run == 121).all() and brain.tr == 2.5
assert all(counts[c] == 108 for c in counts.index if c != "rest") and len(counts) == 9
assert patterns.shape == (8, brain.n_channels)
# BIDS: both runs, the TR from the sidecar, the face blocks found in the face voxels.
assert ds.brain.shape == (2 * n_vol, int(np.prod(shape))) and ds.brain.tr == 2.0
assert set(ds.brain.samples["run"]) == {1, 2} and bids_effect > 1.0
# Atlas: every voxel of the mask in exactly one ROI.
assert roi_brain.n_channels == brainmask.sum() and set(roi_brain.channels["roi"]) == {"FFA", "PPA"}
# MEG: the evoked response peaks after stimulus onset (auditory N100m window), well above baseline.
assert 0.05 < t_peak < 0.2 and gfp.max() > 2.5 * baseline_gfp
# Raw -> epochs: the right number of epochs, and the built-in response at 75-125 ms is found.
assert epochs.shape[:2] == (len(onsets), 4) and 0.07 <= erp_peak <= 0.13
# hIT RDMs: symmetric, zero diagonal, and they survive a save/load round trip.
assert np.allclose(mats, mats.transpose(0, 2, 1)) and np.allclose(np.diagonal(mats, axis1=1, axis2=2), 0)
assert hit.n_rdm == 8 and hit.n_cond == 92 and csv_rdm.n_cond == 92
# Simulation: the data reach the ceiling the truth promises.
assert abs(sim.noise_ceiling_empirical.mean() - sim.noise_ceiling.mean()) < 0.05
shutil.rmtree(TMP, ignore_errors=True)
print("tutorial 01 OK")
