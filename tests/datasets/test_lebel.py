"""load_lebel2023 on a small dataset written in the ds003020 derivative layout."""

import json

import h5py
import numpy as np
import pandas as pd
import pytest

from brainalign import Stimuli
from brainalign.datasets import load_lebel2023
from brainalign.datasets._lebel import _write_response, _write_textgrid
from brainalign.features import lanczos_resample

TR, START, N_VOX = 2.0, 10.0, 7
RESPDICT = {"alpha": 40, "beta": 36}  # TRs of each story's grid (as in respdict.json)


def _words(n_trs, rng, bell_at=None):
    """Words every ~0.45 s over the sound (0 s .. end of the grid - 10 s), with 'sp' pauses."""
    end = (n_trs - 5) * TR - START - 12.0
    rows, t = [], 0.3
    while t < end:
        d = 0.2 + 0.2 * rng.random()
        rows.append(("sp" if rng.random() < 0.1 else f"w{len(rows)}", t, t + d))
        t += d + 0.05
    df = pd.DataFrame(rows, columns=["text", "onset", "offset"])
    if bell_at is not None:  # replace the word nearest bell_at by 'bell' starting exactly there
        i = int(np.argmin(np.abs(df["onset"] - bell_at)))
        df.loc[i] = ["bell", bell_at, bell_at + 0.2]
        df = df[(df["onset"] < bell_at) & (df["offset"] <= bell_at) | (df.index >= i)]
        df = df[(df.index <= i) | (df["onset"] >= bell_at + 0.2)].reset_index(drop=True)
    return df


def _dataset(tmp_path, rng, *, chunked=False, respdict=RESPDICT, n_resp=None):
    root = tmp_path / "ds003020"
    deriv = root / "derivative"
    (deriv / "TextGrids").mkdir(parents=True)
    (deriv / "preprocessed_data" / "UTS01").mkdir(parents=True)
    (deriv / "respdict.json").write_text(json.dumps(respdict))
    truth = {}
    for story, n in respdict.items():
        words = _words(n, rng, bell_at=30.4 if story == "alpha" else None)
        _write_textgrid(deriv / "TextGrids" / f"{story}.TextGrid", words,
                        phones=pd.DataFrame({"text": ["B", "EH1"], "onset": [0.3, 0.4], "offset": [0.4, 0.5]}),
                        xmax=(n - 5) * TR - START)
        rows = (n - 20) if n_resp is None else n_resp[story]
        resp = rng.standard_normal((rows, N_VOX)).astype(np.float32)
        path = deriv / "preprocessed_data" / "UTS01" / f"{story}.hf5"
        if chunked:
            with h5py.File(path, "w") as f:
                f.create_dataset("resp", data=resp, chunks=(4, N_VOX), compression="gzip")
        else:
            _write_response(path, resp)
        truth[story] = (words, resp)
    return root, truth


def test_layout_clock_and_memmap(tmp_path, rng):
    root, truth = _dataset(tmp_path, rng)
    data = load_lebel2023(root, "sub-UTS01")
    brain, stim = data.brain, data.stimuli
    assert brain.shape == (20 + 16, N_VOX) and brain.data.dtype == np.float32 and brain.tr == TR
    assert brain.samples["run"].unique().tolist() == ["alpha", "beta"]
    np.testing.assert_array_equal(brain.data[:20], truth["alpha"][1])
    np.testing.assert_array_equal(brain.data[20:], truth["beta"][1])
    alpha = brain.samples[brain.samples["run"] == "alpha"]
    # response row j is TR j + 10 of the grid, triggered at (j + 10) * 2.0 - 10.0 s from the sound start
    np.testing.assert_array_equal(alpha["tr_index"], np.arange(20) + 10)
    np.testing.assert_allclose(alpha["onset"], (np.arange(20) + 10) * TR - START)
    assert data.files["read"].tolist() == ["memmap", "memmap"]
    assert data.files["n_volumes"].tolist() == [20, 16] and data.files["n_trs"].tolist() == [40, 36]
    # words: non-words dropped, lower-cased, on the TextGrid clock
    words = truth["alpha"][0]
    kept = words[words["text"] != "sp"]
    a = stim.select(run="alpha")
    assert isinstance(stim, Stimuli) and a.texts == [t.lower() for t in kept["text"]]
    np.testing.assert_allclose(a.table["onset"], kept["onset"])
    assert data.phones.texts[:2] == ["B", "EH1"]
    # a single float32 story stays a read-only memory map
    one = load_lebel2023(root, "UTS01", stories="beta")
    assert not one.brain.data.flags.writeable and not one.brain.data.flags.owndata  # a view of the mapped file
    np.testing.assert_array_equal(one.brain.data, truth["beta"][1])


def test_chunked_compressed_is_read_story_by_story(tmp_path, rng):
    root, truth = _dataset(tmp_path, rng, chunked=True)
    data = load_lebel2023(root, "UTS01", stories=["beta", "alpha"])
    assert data.files["read"].tolist() == ["h5py", "h5py"]
    np.testing.assert_array_equal(data.brain.data[:16], truth["beta"][1])
    z = load_lebel2023(root, "UTS01", standardize=True).brain.data
    np.testing.assert_allclose(z[:20].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z[:20].std(0), 1, atol=1e-4)


def _huth_lanczos(values, times, new_times, window=3):
    """The resampling of the dataset's code written from its formula: cutoff = 1 / mean TR step,
    kernel window * sin(pi x) sin(pi x / window) / (pi x)^2 with x = cutoff * dt, 1 at 0, 0 beyond window."""
    cutoff = 1.0 / np.mean(np.diff(new_times))
    out = np.zeros((len(new_times), values.shape[1]))
    for j, t in enumerate(new_times):
        x = cutoff * (t - times)
        with np.errstate(invalid="ignore", divide="ignore"):
            k = window * np.sin(np.pi * x) * np.sin(np.pi * x / window) / (np.pi * x) ** 2
        k[x == 0] = 1.0
        k[np.abs(x) > window] = 0.0
        out[j] = k @ values
    return out


def test_word_lands_in_the_known_tr(tmp_path, rng):
    """A word at 30.4 s lands in response row 10 (TR 20 of the grid: 30-32 s), as in the dataset's code."""
    root, _ = _dataset(tmp_path, rng)
    data = load_lebel2023(root, "UTS01", stories="alpha")
    w = data.stimuli.table
    bell = (w["text"] == "bell").to_numpy(float)[:, None]
    rate = np.ones((len(w), 1))
    mid = (w["onset"] + w["duration"] / 2).to_numpy()
    t = data.brain.samples["onset"].to_numpy() + TR / 2  # middle of each kept volume
    design = lanczos_resample(np.hstack([bell, rate]), mid, t)
    assert int(np.argmax(design[:, 0])) == 10
    assert data.brain.samples["onset"].iloc[10] <= 30.4 < data.brain.samples["onset"].iloc[10] + TR
    # the reference: the whole grid (respdict - 5 TRs from -10 s), resampled, then rows [10:-5]
    grid = np.arange(RESPDICT["alpha"] - 5) * TR - START + TR / 2
    ref = _huth_lanczos(np.hstack([bell, rate]), mid, grid)[5 + 5:-5]
    np.testing.assert_allclose(design, ref, atol=1e-12)


# --------------------------------------------------------------------------- bad input
def test_length_disagreement_says_both_numbers(tmp_path, rng):
    root, _ = _dataset(tmp_path, rng, n_resp={"alpha": 21, "beta": 16})
    with pytest.raises(ValueError, match=r"'alpha'.*has 21 TRs but respdict.json says 40 TRs, i.e. 20 after"):
        load_lebel2023(root, "UTS01")


def test_missing_story_files_and_subjects(tmp_path, rng):
    root, _ = _dataset(tmp_path, rng)
    with pytest.raises(FileNotFoundError, match=r"'alphaa' has no response file.*Close matches: \['alpha'\]"):
        load_lebel2023(root, "UTS01", stories=["alphaa"])
    # a story in the transcripts but not in the responses
    _write_textgrid(root / "derivative" / "TextGrids" / "gamma.TextGrid",
                    pd.DataFrame({"text": ["a"], "onset": [0.0], "offset": [0.2]}))
    with pytest.raises(FileNotFoundError, match="'gamma' has no response file for subject UTS01"):
        load_lebel2023(root, "UTS01", stories=["alpha", "gamma"])
    (root / "derivative" / "TextGrids" / "beta.TextGrid").unlink()
    with pytest.raises(FileNotFoundError, match="'beta' has no TextGrid"):
        load_lebel2023(root, "UTS01")
    with pytest.raises(FileNotFoundError, match=r"No responses for subject 'UTS02'.*\['UTS01'\]"):
        load_lebel2023(root, "UTS02")
    with pytest.raises(FileNotFoundError, match="no 'derivative' folder"):
        load_lebel2023(tmp_path, "UTS01")
    with pytest.raises(ValueError, match=r"lists \['alpha'\] more than once"):
        load_lebel2023(root, "UTS01", stories=["alpha", "alpha"])


def test_words_outside_the_scan(tmp_path, rng):
    root, _ = _dataset(tmp_path, rng)
    late = pd.DataFrame({"text": ["early", "late1", "late2"], "onset": [1.0, 71.0, 72.0], "offset": [1.2, 71.5, 72.5]})
    _write_textgrid(root / "derivative" / "TextGrids" / "alpha.TextGrid", late, xmax=73.0)
    with pytest.raises(ValueError, match=r"2 of the 3 words of story 'alpha' lie outside its scan \(-10 to 60 s"):
        load_lebel2023(root, "UTS01", stories="alpha")


def test_no_word_tier(tmp_path, rng):
    root, _ = _dataset(tmp_path, rng)
    from praatio.data_classes.interval_tier import IntervalTier
    from praatio.data_classes.textgrid import Textgrid

    tg = Textgrid()
    tg.addTier(IntervalTier("transcript", [(0.0, 1.0, "hello")], 0.0, 2.0))
    tg.save(str(root / "derivative" / "TextGrids" / "beta.TextGrid"), format="long_textgrid", includeBlankSpaces=True)
    with pytest.raises(ValueError, match=r"beta.TextGrid has no tier 'word'; its tiers are \['transcript'\]"):
        load_lebel2023(root, "UTS01")
