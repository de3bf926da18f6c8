"""Feature store: hit, miss, resume after a kill, corruption, keys, locking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from brainalign.features import FeatureExtractor, FeatureStore


def _fx(bert_dir, tmp_path, **kw):
    kw.setdefault("batch_size", 2)
    fx = FeatureExtractor(bert_dir, cache_dir=tmp_path / "cache", verbose=False, **kw)
    assert not fx.is_causal  # the causality probe (two tiny forward passes) is behind us
    return fx


def _count_forward(fx):
    calls = []
    fx.model.register_forward_pre_hook(lambda *a: calls.append(1))
    return calls


def test_hit_loads_without_running_the_model(bert_dir, sentences, tmp_path):
    fx = _fx(bert_dir, tmp_path)
    first = fx.extract(sentences)
    assert first.provenance["from_cache"] is False
    calls = _count_forward(fx)
    second = fx.extract(sentences)
    assert calls == [] and second.provenance["from_cache"] is True
    assert isinstance(second["layer.1"], np.memmap)
    for n in first.layer_names:
        np.testing.assert_array_equal(first[n], second[n])
    # a fresh extractor on the same model finds the same entry
    assert _fx(bert_dir, tmp_path).extract(sentences).provenance["from_cache"] is True
    assert len(FeatureStore(tmp_path / "cache").entries()) == 1


def test_different_settings_give_different_keys(bert_dir, sentences, tmp_path):
    keys = {
        _fx(bert_dir, tmp_path).extract(sentences).provenance["cache_key"],
        _fx(bert_dir, tmp_path, pooling="first").extract(sentences).provenance["cache_key"],
        _fx(bert_dir, tmp_path, layers=["layer.1"]).extract(sentences).provenance["cache_key"],
        _fx(bert_dir, tmp_path, context=8).extract(sentences).provenance["cache_key"],
        _fx(bert_dir, tmp_path).extract(sentences[:3]).provenance["cache_key"],
        _fx(bert_dir, tmp_path, dtype="float16").extract(sentences).provenance["cache_key"],
    }
    assert len(keys) == 6
    # changed weights -> new weights hash -> new key
    fx = _fx(bert_dir, tmp_path)
    import torch

    with torch.no_grad():
        fx.model.embeddings.word_embeddings.weight[0, 0] += 1.0
    assert fx.extract(sentences).provenance["cache_key"] not in keys


def test_resume_after_a_kill(bert_dir, sentences, tmp_path):
    ref = FeatureExtractor(bert_dir, cache_dir=False, verbose=False).extract(sentences)
    fx = _fx(bert_dir, tmp_path, batch_size=1)
    calls = []

    def killer(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated kill")

    handle = fx.model.register_forward_pre_hook(killer)
    with pytest.raises(KeyboardInterrupt):
        fx.extract(sentences)
    handle.remove()
    cache = tmp_path / "cache"
    assert FeatureStore(cache).entries() == []  # nothing complete
    partial = [p for p in cache.iterdir() if p.name.endswith(".partial")]
    assert len(partial) == 1 and (partial[0] / "journal.bin").stat().st_size > 0
    calls2 = _count_forward(fx)
    feats = fx.extract(sentences)
    assert len(calls2) == 2  # only the two missing batches ran
    for n in ref.layer_names:
        np.testing.assert_allclose(feats[n], ref[n], atol=1e-6)
    assert not any(p.name.endswith(".partial") for p in cache.iterdir())


@pytest.mark.parametrize("damage", ["flip", "truncate", "manifest"])
def test_corruption_is_detected_and_recomputed(bert_dir, sentences, tmp_path, damage):
    fx = _fx(bert_dir, tmp_path)
    good = np.array(fx.extract(sentences)["layer.1"])
    entry = tmp_path / "cache" / FeatureStore(tmp_path / "cache").entries()[0]
    manifest = json.loads((entry / "manifest.json").read_text())
    path = entry / manifest["layers"][-1]["file"]
    if damage == "flip":
        with open(path, "r+b") as fh:
            fh.seek(os.path.getsize(path) - 3)
            fh.write(b"\x7f")
    elif damage == "truncate":
        os.truncate(path, os.path.getsize(path) - 4)
    else:
        manifest["layers"][0]["shape"] = [99, 32]
        (entry / "manifest.json").write_text(json.dumps(manifest))
    calls = _count_forward(fx)
    with pytest.warns(UserWarning, match="unusable .*recomputing"):
        again = fx.extract(sentences)
    assert calls and again.provenance["from_cache"] is False
    np.testing.assert_allclose(again["layer.1"], good, atol=1e-6)
    assert fx.extract(sentences).provenance["from_cache"] is True


def test_env_cache_and_no_cache(bert_dir, sentences, tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINALIGN_CACHE", str(tmp_path / "env"))
    fx = FeatureExtractor(bert_dir, verbose=False)
    assert fx.extract(sentences).provenance["cache_key"] is not None
    assert len(FeatureStore(tmp_path / "env").entries()) == 1
    nofx = FeatureExtractor(bert_dir, verbose=False, cache_dir=False)
    feats = nofx.extract(sentences)
    assert feats.provenance["cache_key"] is None and not isinstance(feats["layer.0"], np.memmap)


def test_float16_output(bert_dir, sentences, tmp_path):
    f16 = _fx(bert_dir, tmp_path, dtype="float16").extract(sentences)
    f32 = _fx(bert_dir, tmp_path).extract(sentences)
    assert f16["layer.1"].dtype == np.float16
    np.testing.assert_allclose(f16["layer.1"].astype(np.float32), f32["layer.1"], atol=5e-3)


def _killed_after(fx, sentences, n_batches):
    """Run an extraction that is killed when the forward pass of batch ``n_batches + 1`` starts."""
    calls = []

    def killer(*args):
        calls.append(1)
        if len(calls) == n_batches + 1:
            raise KeyboardInterrupt("simulated kill")

    handle = fx.model.register_forward_pre_hook(killer)
    with pytest.raises(KeyboardInterrupt):
        fx.extract(sentences)
    handle.remove()
    partial = [p for p in (fx.cache_dir).iterdir() if p.name.endswith(".partial")]
    assert len(partial) == 1
    return partial[0]


def test_overwritten_row_in_an_interrupted_store_is_recomputed(bert_dir, sentences, tmp_path):
    """A row changed on disk after it was journaled is not trusted, not sealed: it is recomputed."""
    ref = FeatureExtractor(bert_dir, cache_dir=False, layers="layer.1").extract(sentences)["layer.1"]
    fx = _fx(bert_dir, tmp_path, batch_size=1, layers="layer.1")
    partial = _killed_after(fx, sentences, 2)
    meta = json.loads((partial / "meta.json").read_text())
    info = meta["layers"]["layer.1"]
    done = [r for r in range(4) if np.abs(np.load(partial / info["file"], mmap_mode="r")[r]).sum() > 0]
    assert len(done) == 2
    with open(partial / info["file"], "r+b") as fh:  # overwrite one finished row with 3.4e38
        fh.seek(info["offset"] + done[0] * info["row_bytes"])
        fh.write(np.full(32, 3.4e38, np.float32).tobytes())
    calls = _count_forward(fx)
    with pytest.warns(UserWarning, match=r"1 rows of the interrupted extraction .* no longer match the checksums"):
        feats = fx.extract(sentences)
    assert len(calls) == 3  # the two missing rows and the damaged one
    np.testing.assert_allclose(feats["layer.1"], ref, atol=1e-6)
    assert np.abs(feats["layer.1"]).max() < 1e3


def test_torn_journal_record_is_ignored(bert_dir, sentences, tmp_path):
    ref = FeatureExtractor(bert_dir, cache_dir=False, layers="layer.1").extract(sentences)["layer.1"]
    fx = _fx(bert_dir, tmp_path, batch_size=1, layers="layer.1")
    partial = _killed_after(fx, sentences, 3)
    journal = partial / "journal.bin"
    os.truncate(journal, journal.stat().st_size - 5)  # the last record was cut short by the kill
    calls = _count_forward(fx)
    feats = fx.extract(sentences)
    assert len(calls) == 2  # the row of the torn record and the one never started
    np.testing.assert_allclose(feats["layer.1"], ref, atol=1e-6)


def test_row_changed_before_sealing_is_refused(bert_dir, sentences, tmp_path):
    fx = _fx(bert_dir, tmp_path, batch_size=1, layers="layer.1")
    state = {}

    def tamper(module, args):
        # just before the last batch: damage a finished row of the partial store
        state["n"] = state.get("n", 0) + 1
        if state["n"] == 4:
            partial = next(p for p in (tmp_path / "cache").iterdir() if p.name.endswith(".partial"))
            info = json.loads((partial / "meta.json").read_text())["layers"]["layer.1"]
            with open(partial / info["file"], "r+b") as fh:
                fh.seek(info["offset"] + info["row_bytes"] * 0)
                fh.write(b"\xff" * 8)

    fx.model.register_forward_pre_hook(tamper)
    with pytest.raises(RuntimeError, match=r"1 rows in .*\.partial changed on disk after they were written"):
        fx.extract(sentences)
    assert FeatureStore(tmp_path / "cache").entries() == []


def test_preprocess_is_keyed_by_its_code_and_closure(tmp_path, rng):
    import torch

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    imgs = [rng.random((2, 2, 3)).astype(np.float32) for _ in range(3)]

    def extract(preprocess, **kw):
        return FeatureExtractor(model, preprocess=preprocess, cache_dir=tmp_path / "c", layers="1", **kw).extract(imgs)

    def scaled(k):
        return lambda images: torch.from_numpy(np.stack(images)) * k

    one = extract(lambda images: torch.from_numpy(np.stack(images)))
    two = extract(lambda images: torch.from_numpy(np.stack(images)) * 2)  # same __qualname__ '<lambda>'
    assert not two.provenance["from_cache"] and two.provenance["cache_key"] != one.provenance["cache_key"]
    assert np.abs(two["1"] - one["1"]).max() > 1e-3
    a, b = extract(scaled(3)), extract(scaled(4))  # same code, another closure
    assert not b.provenance["from_cache"] and np.abs(a["1"] - b["1"]).max() > 1e-3
    assert extract(scaled(3)).provenance["from_cache"]  # the same function again: a hit


def test_unfingerprintable_preprocess_needs_a_cache_key(tmp_path, rng):
    import threading

    import torch

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    imgs = [rng.random((2, 2, 3)).astype(np.float32) for _ in range(2)]
    lock = threading.Lock()

    def pre(images):
        with lock:
            return torch.from_numpy(np.stack(images))

    with pytest.raises(ValueError, match=r"preprocess= callable .*pre.* cannot be part of the feature cache key "
                                         r"\(_thread.lock .*\).*Pass cache_key="):
        FeatureExtractor(model, preprocess=pre, cache_dir=tmp_path).extract(imgs)
    keyed = FeatureExtractor(model, preprocess=pre, cache_dir=tmp_path, cache_key="stack-v1").extract(imgs)
    assert keyed.provenance["cache_key"] is not None
    assert FeatureExtractor(model, preprocess=pre, cache_dir=False).extract(imgs).n_items == 2
    with pytest.raises(TypeError, match="cache_key must be a string"):
        FeatureExtractor(model, preprocess=pre, cache_key=3)


_CHILD = """
import sys, time, json, pathlib
import numpy as np
sys.path.insert(0, {src!r})
from brainalign.features import FeatureExtractor
root = pathlib.Path({root!r})
fx = FeatureExtractor({bert!r}, cache_dir=root / "cache", batch_size=1, verbose=False)
fx.model.register_forward_pre_hook(lambda *a: time.sleep(0.15))  # slow enough for the two runs to overlap
(root / "ready{i}").touch()
while not (root / "go").exists():
    time.sleep(0.01)
feats = fx.extract({sentences!r})
print(json.dumps({{"from_cache": feats.provenance["from_cache"], "sum": float(np.asarray(feats["layer.1"]).sum())}}))
"""


@pytest.mark.slow
def test_two_processes_share_one_cache(bert_dir, sentences, tmp_path):
    """Two processes extract the same features into one cache: one computes, the other waits and reads."""
    src = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "src")
    procs = []
    for i in range(2):
        code = textwrap.dedent(_CHILD.format(src=src, root=str(tmp_path), bert=bert_dir, i=i, sentences=sentences))
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env))
    import time

    deadline = time.time() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
        assert time.time() < deadline and all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.05)
    (tmp_path / "go").touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert sorted(r["from_cache"] for r in results) == [False, True]
    assert results[0]["sum"] == results[1]["sum"]
    assert len(FeatureStore(tmp_path / "cache").entries()) == 1


def test_refused_input_leaves_nothing_in_the_cache(bert_dir, tmp_path):
    fx = _fx(bert_dir, tmp_path)
    with pytest.raises(ValueError, match="tokens but the model takes at most 64"):
        fx.extract(["the cat", " ".join(["cat"] * 100)])
    assert not [p for p in (tmp_path / "cache").iterdir() if p.suffix == ".partial"]
