"""load_transcript / load_textgrid: TextGrids (praatio), word tables, BIDS events, MNE annotations."""

import numpy as np
import pandas as pd
import pytest

from brainalign import Stimuli
from brainalign.datasets import NON_WORDS, load_textgrid, load_transcript
from brainalign.datasets._lebel import _write_textgrid

WORDS = pd.DataFrame({"text": ["sentence_start", "Once", "upon", "sp", "a", "{LG}", "time"],
                      "onset": [0.0, 0.2, 0.6, 1.0, 1.3, 1.5, 1.9],
                      "offset": [0.2, 0.6, 1.0, 1.3, 1.5, 1.9, 2.4]})
PHONES = pd.DataFrame({"text": ["W", "AH1", "N", "S"], "onset": [0.2, 0.3, 0.45, 0.6], "offset": [0.3, 0.45, 0.6, 0.7]})


@pytest.fixture
def grid(tmp_path):
    path = tmp_path / "onceupon.TextGrid"
    _write_textgrid(path, WORDS, phones=PHONES, xmax=3.0)
    return path


def test_textgrid_words_and_phones(grid):
    s = load_textgrid(grid)
    assert isinstance(s, Stimuli) and s.is_narrative
    assert s.texts == ["Once", "upon", "a", "time"]  # sentence_start, sp, {LG} dropped
    assert s.ids == ["ronceupon_w0", "ronceupon_w1", "ronceupon_w2", "ronceupon_w3"]
    assert s.table["run"].unique().tolist() == ["onceupon"] and s.table["tier"].iloc[0] == "word"
    np.testing.assert_allclose(s.table["onset"], [0.2, 0.6, 1.3, 1.9])
    np.testing.assert_allclose(s.table["duration"], [0.4, 0.4, 0.2, 0.5])
    ph = load_textgrid(grid, tier="phone")
    assert ph.texts == ["W", "AH1", "N", "S"] and ph.table["tier"].iloc[0] == "phone"
    assert load_textgrid(grid, tier=1, lowercase=True).texts == ["once", "upon", "a", "time"]
    # the same words from a TSV word table and from a BIDS events.tsv (duration, n/a)
    same = load_transcript(WORDS.rename(columns={"text": "word"}), run="onceupon")
    pd.testing.assert_frame_equal(same.table, s.table.drop(columns="tier"))
    assert "sp" in NON_WORDS and "sentence_end" in NON_WORDS


def test_tables_bids_events_and_runs(tmp_path):
    tsv = tmp_path / "sub-01_task-pieman_run-1_events.tsv"
    tsv.write_text("onset\tduration\ttrial_type\tword\n0.5\t0.3\tword\tThe\n0.9\tn/a\tword\tpie\n1.2\t0.2\tword\tman\n")
    s = load_transcript(tsv)
    assert s.texts == ["The", "pie", "man"] and s.table["run"].iloc[0] == "sub-01_task-pieman_run-1_events"
    np.testing.assert_allclose(s.table["duration"], [0.3, 0.0, 0.2])
    csv = tmp_path / "story.csv"
    csv.write_text("start,end,token\n0.0,0.5,hello\n0.5,0.9,world\n")
    two = load_transcript([tsv, csv], run=[1, 2])
    assert two.table["run"].tolist() == [1, 1, 1, 2, 2] and two.ids[-1] == "r2_w1"
    by_col = load_transcript(pd.DataFrame({"word": ["a", "b", "c"], "onset": [0.0, 1.0, 0.0],
                                           "duration": [0.5, 0.5, 0.5], "run": ["x", "x", "y"]}))
    assert by_col.ids == ["rx_w0", "rx_w1", "ry_w0"]


def test_mne_annotations():
    mne = pytest.importorskip("mne")
    annot = mne.Annotations([1.0, 1.5, 2.0, 3.0], [0.3, 0.4, 0.0, 0.2], ["word/the", "word/cat", "BAD_blink", "word/sat"])
    s = load_transcript(annot, run="story")
    assert s.texts == ["the", "cat", "sat"]
    np.testing.assert_allclose(s.table["onset"], [1.0, 1.5, 3.0])
    with pytest.raises(ValueError, match=r"No annotation description starts with prefix='w/'.*'BAD_blink'"):
        load_transcript(annot, prefix="w/")


# --------------------------------------------------------------------------- bad input
def test_textgrid_without_the_tier_lists_tiers(grid):
    with pytest.raises(ValueError, match=r"no tier 'syllable'; its tiers are \['phone', 'word'\]"):
        load_textgrid(grid, tier="syllable")
    with pytest.raises(ValueError, match=r"tier=5 but the TextGrid onceupon.TextGrid has 2 tiers"):
        load_textgrid(grid, tier=5)
    with pytest.raises(ValueError, match="reads .TextGrid files"):
        load_textgrid(grid.with_suffix(".tsv"))


def test_unsorted_overlapping_and_bad_tables(tmp_path):
    unsorted = pd.DataFrame({"word": ["a", "b", "c"], "onset": [0.0, 2.0, 1.0], "offset": [0.5, 2.5, 1.5]})
    with pytest.raises(ValueError, match=r"not in increasing order.*row 2 'c' at 1 s comes after row 1 'b' at 2 s"):
        load_transcript(unsorted)
    overlap = pd.DataFrame({"word": ["a", "b"], "onset": [0.0, 0.3], "offset": [0.5, 0.6]})
    with pytest.raises(ValueError, match=r"overlap the next one: row 0 'a' ends at 0.5 s but row 1 'b' starts at 0.3 s"):
        load_transcript(overlap)
    backwards = pd.DataFrame({"word": ["a"], "onset": [1.0], "offset": [0.5]})
    with pytest.raises(ValueError, match="end before they start"):
        load_transcript(backwards)
    with pytest.raises(ValueError, match=r"no word column \(looked for \['word', 'text', 'token'\]\)"):
        load_transcript(pd.DataFrame({"onset": [0.0], "offset": [1.0]}))
    with pytest.raises(ValueError, match="neither an offset"):
        load_transcript(pd.DataFrame({"word": ["a"], "onset": [0.0]}))
    with pytest.raises(ValueError, match="no word left"):
        load_transcript(pd.DataFrame({"word": ["sp", "sil"], "onset": [0.0, 1.0], "offset": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="missing or non-numeric times"):
        load_transcript(pd.DataFrame({"word": ["a"], "onset": ["soon"], "offset": [1.0]}))
    with pytest.raises(ValueError, match="2 transcripts but 1 run labels"):
        load_transcript([unsorted, overlap], run=["x"])
    with pytest.raises(ValueError, match="Run labels repeat"):
        load_transcript([overlap.iloc[:1], overlap.iloc[1:]], run=["x", "x"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_transcript(tmp_path / "missing.TextGrid")
    with pytest.raises(TypeError, match="TextGrid / TSV / CSV path"):
        load_transcript(42)
