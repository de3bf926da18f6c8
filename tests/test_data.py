"""Containers: BrainData, Stimuli, Features."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from brainalign import BrainData, Features, Stimuli


def _brain(rng, n=6, c=4):
    return BrainData(
        rng.standard_normal((n, c)),
        samples={"run": [0, 0, 1, 1, 2, 2], "stimulus_id": ["a", "b"] * 3},
        channels={"name": [f"v{i}" for i in range(c)], "roi": ["v1", "v1", "it", "it"]},
        tr=2.0, subject="s1",
    )


def test_import_is_light():
    code = ("import sys, brainalign; heavy = [m for m in ('torch', 'transformers', 'mne', 'nilearn') "
            "if m in sys.modules]; print(heavy); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_select_by_channel_and_sample_columns(rng):
    bd = _brain(rng)
    sub = bd.select(roi="it", run=[1, 2])
    assert sub.shape == (4, 2)
    np.testing.assert_array_equal(sub.data, bd.data[2:, 2:])
    assert list(sub.samples["run"]) == [1, 1, 2, 2]
    assert list(sub.channels["name"]) == ["v2", "v3"]
    assert sub.tr == 2.0 and sub.subject == "s1"
    # contiguous selection is a view, no copy
    assert np.shares_memory(sub.data, bd.data)


def test_select_errors(rng):
    bd = _brain(rng)
    with pytest.raises(KeyError, match="neither a channel column"):
        bd.select(area="it")
    with pytest.raises(ValueError, match="keeps no channels"):
        bd.select(roi="ffa")


def test_average_repetitions_and_split(rng):
    bd = _brain(rng)
    avg = bd.average_repetitions()
    assert avg.shape == (2, 4)
    np.testing.assert_allclose(avg.data[0], bd.data[[0, 2, 4]].mean(0))
    assert list(avg.samples["n_repetitions"]) == [3, 3]
    assert "run" not in avg.samples  # varies within a stimulus
    parts = bd.split("run")
    assert list(parts) == [0, 1, 2] and all(p.shape == (2, 4) for p in parts.values())
    back = BrainData.concatenate(parts.values())
    np.testing.assert_array_equal(back.data, bd.data)


def test_length_mismatch_names_both_numbers(rng):
    with pytest.raises(ValueError, match="3 rows but the data have 6"):
        BrainData(rng.standard_normal((6, 4)), samples={"run": [0, 1, 2]})
    with pytest.raises(ValueError, match="3 dimensions|4 dimensions"):
        BrainData(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="NaN"):
        BrainData(np.array([[1.0, np.nan]]))
    assert BrainData(np.array([[1.0, np.nan]]), nan_policy="allow").shape == (1, 2)
    with pytest.raises(ValueError, match="disagree"):
        BrainData(np.zeros((2, 2)), tr=2.0, sfreq=1.0)


def test_epoched_time_axis(rng):
    bd = BrainData(rng.standard_normal((5, 3, 10)), sfreq=100.0, times=np.arange(10) / 100 - 0.02)
    crop = bd.select(time=(0.0, 0.05))
    assert crop.n_times == 6 and crop.times[0] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="time points"):
        BrainData(rng.standard_normal((5, 3, 10)), times=np.arange(9))


def test_to_rsatoolbox(rng):
    bd = _brain(rng)
    ds = bd.to_rsatoolbox()
    np.testing.assert_array_equal(ds.measurements, bd.data)
    assert list(ds.obs_descriptors["stimulus_id"]) == list(bd.samples["stimulus_id"])
    assert list(ds.channel_descriptors["roi"]) == list(bd.channels["roi"])
    assert ds.descriptors["subject"] == "s1"


def test_to_image_volume(rng):
    ijk = np.array([[0, 0, 0], [1, 2, 0], [2, 1, 1], [0, 2, 1]])
    bd = BrainData(rng.standard_normal((3, 4)),
                   channels=pd.DataFrame(ijk, columns=["i", "j", "k"]),
                   space={"kind": "volume", "affine": np.eye(4), "shape": (3, 3, 2)})
    img = bd.to_image(np.arange(4) + 1.0)
    vol = np.asarray(img.dataobj)
    assert vol.shape == (3, 3, 2) and vol[1, 2, 0] == 2 and vol[0, 2, 1] == 4 and vol.sum() == 10
    with pytest.raises(ValueError, match="n_channels=4"):
        bd.to_image(np.arange(3))
    with pytest.raises(ValueError, match="no brain space"):
        BrainData(np.zeros((2, 2))).to_image(np.zeros(2))


def test_stimuli():
    s = Stimuli.from_texts(["a cat", "a dog"], ids=["cat", "dog"])
    assert s.ids == ["cat", "dog"] and s.modality == "text" and s.texts == ["a cat", "a dog"]
    assert s.content_hash() == Stimuli.from_texts(["a cat", "a dog"], ids=["cat", "dog"]).content_hash()
    assert s.content_hash() != Stimuli.from_texts(["a cat", "a cow"], ids=["cat", "dog"]).content_hash()
    with pytest.raises(ValueError, match="Duplicate stimulus ids: \\['x'\\]"):
        Stimuli(pd.DataFrame({"stimulus_id": ["x", "x"], "text": ["a", "b"]}))
    with pytest.raises(ValueError, match="empty"):
        Stimuli.from_texts([])
    story = Stimuli.from_words(["the", "cat", "sat"], [0.0, 0.3, 0.6])
    assert story.is_narrative and list(story.table["onset"]) == [0.0, 0.3, 0.6]
    with pytest.raises(ValueError, match="increasing"):
        Stimuli.from_words(["a", "b"], [1.0, 0.5])
    img = Stimuli.from_images([np.zeros((4, 4, 3), np.uint8)] * 2)
    assert img.modality == "image" and img.contents()[0].shape == (4, 4, 3)
    assert s.select(["dog"]).ids == ["dog"]


def test_features():
    f = Features({"l0": np.zeros((3, 2)), "l1": np.ones((3, 4))}, items=["a", "b", "c"],
                 provenance={"model_id": "m"})
    assert f.layer_names == ["l0", "l1"] and f[1].shape == (3, 4) and f.model_id == "m"
    sub = f.select(layers=["l1"], items=["c", "a"])
    assert sub.items == ["c", "a"] and sub.layer_names == ["l1"]
    with pytest.raises(KeyError, match="Close matches"):
        f["l2"]
    with pytest.raises(ValueError, match="n_items=3"):
        Features({"l0": np.zeros((2, 2))}, items=["a", "b", "c"])


def test_content_hash_follows_image_file_bytes(tmp_path):
    path = tmp_path / "img.npy"
    path.write_bytes(b"first version")
    stim = Stimuli.from_images([str(path)], ids=["a"])
    before = stim.content_hash()
    assert Stimuli.from_images([str(path)], ids=["a"]).content_hash() == before
    path.write_bytes(b"edited in place")
    assert Stimuli.from_images([str(path)], ids=["a"]).content_hash() != before


def test_content_hash_of_a_long_story_is_fast():
    import time

    words = [f"w{i % 50}" for i in range(20_000)]
    story = Stimuli.from_words(words, np.arange(20_000) * 0.3)
    start = time.perf_counter()
    h1 = story.content_hash()
    assert time.perf_counter() - start < 1.0
    words[-1] = "changed"
    assert Stimuli.from_words(words, np.arange(20_000) * 0.3).content_hash() != h1


def test_as_tensor_copies_read_only_arrays_without_warning():
    import warnings

    from brainalign._backend import as_tensor

    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    arr.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = as_tensor(arr)
    assert t.shape == (2, 3) and float(t.sum()) == 15.0
    writable = np.ones(3, np.float32)
    assert np.shares_memory(as_tensor(writable).numpy(), writable)  # no copy when not needed


def test_missing_texts_are_not_the_string_none():
    import numpy as np
    import pytest

    from brainalign import Stimuli

    with pytest.raises(ValueError, match=r"1 of the 3 texts are missing \(None or NaN; first at index 1\)"):
        Stimuli.from_texts(["a cat", None, "a dog"])
    with pytest.raises(ValueError, match=r"1 of the 2 words are missing .* index 0"):
        Stimuli.from_words([np.nan, "dog"], [0.0, 0.5])
    assert list(Stimuli.from_texts(["", "x"]).table["text"]) == ["", "x"]
