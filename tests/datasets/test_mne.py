"""load_mne on small Raw / Epochs / Evoked objects and FIF files written here with MNE."""

from __future__ import annotations

import mne
import numpy as np
import pandas as pd
import pytest

from brainalign.datasets import load_mne

SFREQ = 100.0
EEG = ["Fz", "Cz", "Pz", "Oz"]


@pytest.fixture
def raw():
    rng = np.random.default_rng(0)
    info = mne.create_info(EEG + ["EOG1", "STI"], SFREQ, ["eeg"] * 4 + ["eog", "stim"])
    data = rng.standard_normal((6, 2000)) * 1e-5
    data[5] = 0
    for sample, code in [(200, 1), (500, 2), (900, 1), (1300, 2), (1700, 3)]:
        data[5, sample] = code
    raw = mne.io.RawArray(data, info, first_samp=50, verbose=False)
    builtin = mne.channels.get_builtin_montages()
    raw.set_montage("colin27_1020" if "colin27_1020" in builtin else "standard_1020", verbose=False)
    return raw


def test_raw_continuous(raw, tmp_path):
    path = tmp_path / "rec_raw.fif"
    raw.save(path, verbose=False)
    for inst in (raw, path, str(path)):
        brain = load_mne(inst, subject="s1")
        assert brain.shape == (2000, 4)
        assert brain.sfreq == SFREQ and brain.times is None and brain.subject == "s1"
        np.testing.assert_allclose(brain.data, raw.get_data(picks="eeg").T, rtol=1e-6)
        assert list(brain.channels["name"]) == EEG
        assert set(brain.channels["ch_type"]) == {"eeg"}
        np.testing.assert_allclose(brain.samples["onset"], raw.times + raw.first_time)
        assert brain.samples["sample"].iloc[0] == raw.first_samp
        pos = np.array([raw.info["chs"][i]["loc"][:3] for i in range(4)])
        np.testing.assert_allclose(brain.channels[["x", "y", "z"]].to_numpy(), pos)
        assert np.linalg.norm(pos, axis=1).min() > 0.05  # real positions from the montage
        assert brain.space["kind"] == "sensor" and brain.space["info"]["ch_names"] == EEG


def test_raw_picks_and_bads(raw):
    raw.info["bads"] = ["Oz"]
    assert list(load_mne(raw).channels["name"]) == ["Fz", "Cz", "Pz"]
    assert list(load_mne(raw, picks=["Oz", "EOG1"]).channels["ch_type"]) == ["eeg", "eog"]
    assert load_mne(raw, picks="eog").shape == (2000, 1)
    with pytest.raises(ValueError, match="Invalid picks"):
        load_mne(raw, picks=["nope"])


def test_raw_to_epochs_matches_mne(raw):
    events = mne.find_events(raw, verbose=False)
    event_id = {"face": 1, "house": 2}
    brain = load_mne(raw, events=events, event_id=event_id, tmin=-0.1, tmax=0.4, baseline=(None, 0))
    ref = mne.Epochs(raw, events, event_id, tmin=-0.1, tmax=0.4, baseline=(None, 0), picks="eeg",
                     preload=True, verbose=False)
    assert brain.shape == (4, 4, 51)
    np.testing.assert_allclose(brain.data, ref.get_data(), rtol=1e-6)
    np.testing.assert_allclose(brain.times, ref.times)
    assert list(brain.samples["condition"]) == ["face", "house", "face", "house"]
    assert list(brain.samples["event_code"]) == [1, 2, 1, 2]
    np.testing.assert_allclose(brain.samples["onset"], events[:4, 0] / SFREQ)
    # without event_id every code is kept and named by its number; default window -0.2..0.5
    brain = load_mne(raw, events=events)
    assert brain.shape == (5, 4, 71)
    assert list(brain.samples["condition"]) == ["1", "2", "1", "2", "3"]


def test_raw_events_from_file(raw, tmp_path):
    events = mne.find_events(raw, verbose=False)
    mne.write_events(tmp_path / "x-eve.fif", events, verbose=False)
    brain = load_mne(raw, events=tmp_path / "x-eve.fif", tmin=0, tmax=0.1)
    assert brain.shape == (5, 4, 11)


@pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning", "ignore::FutureWarning")
def test_epochs_with_metadata(tmp_path):
    rng = np.random.default_rng(1)
    info = mne.create_info(["MEG1", "MEG2", "EEG1"], 200.0, ["mag", "mag", "eeg"])
    events = np.array([[10, 0, 1], [60, 0, 2], [110, 0, 1]])
    meta = pd.DataFrame({"word": ["cat", "dog", "sun"], "freq": [3.0, 2.0, 5.0]})
    epochs = mne.EpochsArray(rng.standard_normal((3, 3, 40)), info, events=events, tmin=-0.05,
                             event_id={"noun": 1, "verb": 2}, metadata=meta, verbose=False)
    path = tmp_path / "words-epo.fif"
    epochs.save(path, verbose=False)
    for inst in (epochs, path):
        brain = load_mne(inst)
        assert brain.shape == (3, 3, 40)
        np.testing.assert_allclose(brain.data, epochs.get_data(), rtol=1e-6)
        assert list(brain.samples["condition"]) == ["noun", "verb", "noun"]
        assert list(brain.samples["word"]) == ["cat", "dog", "sun"]
        assert brain.sfreq == 200.0 and brain.times[0] == pytest.approx(-0.05)
        assert list(brain.channels["ch_type"]) == ["mag", "mag", "eeg"]
    cropped = load_mne(epochs, tmin=0.0, tmax=0.1, picks="mag")
    assert cropped.shape == (3, 2, 21) and cropped.times[0] == pytest.approx(0.0)


def test_evokeds_and_topomap(raw, tmp_path):
    events = mne.find_events(raw, verbose=False)
    epochs = mne.Epochs(raw, events, {"a": 1, "b": 2}, tmin=-0.1, tmax=0.3, preload=True, verbose=False)
    evokeds = [epochs["a"].average(), epochs["b"].average()]
    path = tmp_path / "cond-ave.fif"
    mne.write_evokeds(path, evokeds, verbose=False)
    for inst in (evokeds, path):
        brain = load_mne(inst)
        assert brain.shape == (2, 4, 41)
        assert list(brain.samples["condition"]) == ["a", "b"]
        assert list(brain.samples["nave"]) == [2, 2]
        np.testing.assert_allclose(brain.data[1], evokeds[1].copy().pick("eeg").data, rtol=1e-6)
    single = load_mne(evokeds[0])
    assert single.shape == (1, 4, 41)
    values = np.arange(4.0)
    topo = single.to_image(values)
    assert isinstance(topo, mne.EvokedArray)
    np.testing.assert_allclose(topo.data[:, 0], values)
    fig = topo.plot_topomap(times=[0.0], show=False, colorbar=False)  # needs sensor positions
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_evoked_mismatch_errors(raw):
    events = mne.find_events(raw, verbose=False)
    epochs = mne.Epochs(raw, events, {"a": 1, "b": 2}, tmin=-0.1, tmax=0.3, preload=True, verbose=False)
    a, b = epochs["a"].average(), epochs["b"].average()
    with pytest.raises(ValueError, match="channels that differ"):
        load_mne([a, b.copy().pick(["Fz", "Cz"])])
    with pytest.raises(ValueError, match="time points"):
        load_mne([a, b.copy().crop(0, 0.2)])
    with pytest.raises(TypeError, match="mne.Evoked"):
        load_mne([a, np.zeros(3)])


def test_bad_input_errors(raw, tmp_path):
    with pytest.raises(TypeError, match="needs an mne Raw"):
        load_mne(np.zeros((3, 4)))
    with pytest.raises(FileNotFoundError, match="No such M/EEG file"):
        load_mne(tmp_path / "missing_raw.fif")
    (tmp_path / "junk.xyz").write_text("not data")
    with pytest.raises(ValueError, match="MNE could not read junk.xyz"):
        load_mne(tmp_path / "junk.xyz")
    with pytest.raises(ValueError, match=r"1 of the 2 selected event\(s\) lie outside the recording.*on_outside='warn'"):
        load_mne(raw, events=np.array([[100, 0, 1], [5000, 0, 1]]), on_outside="raise")
    with pytest.raises(ValueError, match="shape \\(n_events, 3\\)"):
        load_mne(raw, events=np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="no events"):
        load_mne(raw, tmin=-0.1, tmax=0.2)
    events = mne.find_events(raw, verbose=False)
    with pytest.raises(ValueError, match="None of the event codes"):
        load_mne(raw, events=events, event_id={"x": 9})
    only_stim = raw.copy().pick(["STI", "EOG1"])
    with pytest.raises(ValueError, match="No MEG/EEG data channel"):
        load_mne(only_stim)


def test_epochs_beyond_the_end_warn(raw):
    events = np.array([[300, 0, 1], [2040, 0, 1]])  # second window runs past the last sample
    with pytest.warns(UserWarning, match="1 of 2 epochs were dropped"):
        brain = load_mne(raw, events=events, tmin=-0.1, tmax=0.5)
    assert brain.shape[0] == 1


# --------------------------------------------------------------------------- issue 11: events outside the recording
def test_events_outside_one_rule(raw):
    """Early and late events are dropped alike with a warning that names them (or raise)."""
    ev = np.array([[10, 0, 1], [100, 0, 1], [700, 0, 2], [5000, 0, 2]])
    with pytest.warns(UserWarning, match=r"2 of the 4 selected event\(s\) lie outside the recording: 1 before its "
                                         r"first sample \('a' at sample 10\); 1 after its last sample \('b' at sample 5000\)"):
        brain = load_mne(raw, events=ev, event_id={"a": 1, "b": 2}, tmin=-0.1, tmax=0.2)
    assert brain.samples["sample"].tolist() == [100, 700]
    with pytest.raises(ValueError, match="before its first sample.*after its last sample"):
        load_mne(raw, events=ev, event_id={"a": 1, "b": 2}, on_outside="raise")


def test_unselected_out_of_range_event_is_ignored(raw):
    """An EDF+ 'Recording ends' annotation past the data must not stop epoching of the selected events."""
    ev = np.array([[200, 0, 1], [900, 0, 1], [2049 + 50, 0, 99]])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        brain = load_mne(raw, events=ev, event_id={"stim": 1}, tmin=-0.1, tmax=0.2)
    assert brain.shape[0] == 2 and brain.samples["condition"].tolist() == ["stim", "stim"]


def test_raw_with_words_annotations_and_table(raw, tmp_path):
    annot = mne.Annotations([3.0, 3.4, 8.0, 9.0], [0.3, 0.3, 0.0, 0.3], ["word/once", "word/upon", "BAD_x", "word/time"],
                            orig_time=None)
    raw = raw.copy().set_annotations(annot)  # orig_time None: onsets from the first sample, stored on MNE's clock
    out = load_mne(raw, words="annotations")
    assert out.brain.shape == (2000, 4) and out.stimuli.texts == ["once", "upon", "time"]
    np.testing.assert_allclose(out.stimuli.table["onset"], [3.5, 3.9, 9.5])  # + first_time 0.5 s
    first = int(np.argmin(np.abs(out.brain.samples["onset"].to_numpy() - out.stimuli.table["onset"].iloc[0])))
    assert out.brain.samples["sample"].iloc[first] == 350  # the word at 3.0 s into the file is at sample 50 + 300
    tsv = tmp_path / "sub-01_task-story_events.tsv"  # BIDS: seconds from the first sample of the file
    tsv.write_text("onset\tduration\tword\n3.0\t0.3\tonce\n3.4\t0.3\tupon\n9.0\t0.3\ttime\n")
    from_table = load_mne(raw, words=tsv)
    np.testing.assert_allclose(from_table.stimuli.table["onset"], out.stimuli.table["onset"])
    late = pd.DataFrame({"word": ["end"], "onset": [25.0], "duration": [0.3]})
    with pytest.raises(ValueError, match=r"1 of the 1 words lie outside the recording \(0.500-20.500 s"):
        load_mne(raw, words=late)
    with pytest.raises(ValueError, match="not both"):
        load_mne(raw, words=tsv, events=np.array([[100, 0, 1]]))
