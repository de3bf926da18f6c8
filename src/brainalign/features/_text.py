"""Text planning: lazy tokenization, sliding context windows and per-word pooling.

The unit of work is a *window*: the token ids the model sees at once, plus which of its
positions are pooled into which output row. Batching concatenates windows, pads them to
the longest one and pools with one batched matmul (mean) or one gather (first / last)
over the flattened tokens, so any number of rows per window and windows per row work.

Units are produced lazily, a batch's worth at a time: memory for the plan does not grow
with the length of a story or the number of texts.

Sentences (modality ``text``)
    Tokenized in blocks of :data:`TEXT_BLOCK` texts (sorted by length within a block, so
    that a batch holds texts of similar length). Without ``context`` each text is one window
    (its special tokens included, as in the model's own forward pass); a text longer than
    the model's maximum length is refused. With ``context`` the body tokens of each text
    (special tokens excluded) are covered by sliding windows and pooled across them; all
    windows of one text stay in one unit.
Narratives (modality ``word``)
    The words of one run form one text, joined by single spaces. It is tokenized in blocks
    of :data:`WORD_BLOCK` words, each block with :data:`WORD_OVERLAP` words of context on
    either side whose tokens are dropped; for every tokenizer that splits on whitespace
    before its sub-word model (byte-level BPE as in GPT-2 and Llama 3, WordPiece as in
    BERT, SentencePiece with whitespace splitting) this gives exactly the tokens of the
    whole text. Each word is pooled from its own sub-word tokens, inside the window where
    its last token falls in the window's new part: with ``context=C`` and ``stride=S``
    windows are ``C + S`` tokens long (plus the model's special tokens) and advance by
    ``S``, so the token at body position ``p`` of the run sees ``min(p, C + k)`` tokens of
    left context, where ``0 <= k < S`` is its offset in the new part of its window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

TEXT_BLOCK = 1024  # texts tokenized together (and length-sorted within)
WORD_BLOCK = 2048  # words of a narrative tokenized together
WORD_OVERLAP = 16  # words of context on either side of a block, tokenized and dropped
CAUSAL_WINDOW = 1024  # default window (tokens) of causal models when the model allows it


@dataclass
class TextUnit:
    """Windows processed together and how their tokens map to output rows."""

    windows: list  # list of 1-D int arrays (or lists) of token ids
    tok_window: np.ndarray  # (n_pooled,) window index (within the unit) of each pooled token
    tok_pos: np.ndarray  # (n_pooled,) position in its window
    tok_row: np.ndarray  # (n_pooled,) output row (global), tokens of a row in text order
    rows: np.ndarray  # distinct output rows of the unit

    @property
    def cost(self) -> int:
        return len(self.windows)

    @property
    def length(self) -> int:
        return max(len(w) for w in self.windows)


def window_bounds(n_body: int, context: int, stride: int) -> list[tuple[int, int, int]]:
    """Sliding windows ``(start, end, new_start)`` over ``n_body`` tokens.

    Windows are ``context + stride`` tokens long; ``[new_start, end)`` is the part of
    each window not already covered by an earlier one.
    """
    length = context + stride
    end = min(length, n_body)
    out = [(0, end, 0)]
    while end < n_body:
        new_end = min(end + stride, n_body)
        out.append((max(0, new_end - length), new_end, end))
        end = new_end
    return out


def check_tokenizer(tokenizer, *, fast: bool = False) -> None:
    if tokenizer is None or not callable(tokenizer):
        raise ValueError(
            "Text stimuli need a tokenizer: load the model by its id / folder (the tokenizer is "
            "loaded with it) or pass processor=<tokenizer>."
        )
    if fast and not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            "Per-word features need a fast tokenizer (with offset mappings); load the model's "
            "tokenizer with use_fast=True or pass a transformers PreTrainedTokenizerFast."
        )


def _special_split(ids: list[int], special: list[int]) -> tuple[list[int], list[int], list[int], int]:
    """prefix, body, suffix and the index of the first body token."""
    special = np.asarray(special, dtype=bool)
    body_idx = np.flatnonzero(~special)
    if len(body_idx) == 0:
        return list(ids), [], [], len(ids)
    a, b = int(body_idx[0]), int(body_idx[-1]) + 1
    return list(ids[:a]), list(ids[a:b]), list(ids[b:]), a


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after any text (e.g. [CLS], [SEP])."""
    for probe in ("a", "the", "x", "0", "hello"):
        enc = tokenizer(probe, add_special_tokens=True, return_special_tokens_mask=True, verbose=False)
        prefix, body, suffix, _ = _special_split(enc["input_ids"], enc["special_tokens_mask"])
        if body:
            return prefix, suffix
    return [], []


def context_params(context: int, stride: int | None, max_length: int | None, n_special: int,
                   causal: bool = False) -> tuple[int, int]:
    """``(context, stride)`` checked against the model's maximum length.

    Default stride: ``min(context, room - context)`` for bidirectional models (every token
    has at most ``context`` tokens of right context); for causal models, where later tokens
    cannot change earlier ones, windows as long as ``max(2 * context, CAUSAL_WINDOW)``
    tokens (at most the model's length), so that little is recomputed.
    """
    context = int(context)
    if context < 1:
        raise ValueError(f"context must be a positive number of tokens; got {context}.")
    room = None if max_length is None else max_length - n_special
    if stride is None:
        if causal:
            window = max(2 * context, CAUSAL_WINDOW)
            stride = (window if room is None else min(window, room)) - context
        else:
            stride = context if room is None else min(context, room - context)
    stride = int(stride)
    if stride < 1 or (room is not None and context + stride > room):
        raise ValueError(
            f"context={context} with stride={stride} needs windows of {context + stride} tokens plus "
            f"{n_special} special tokens, but the model takes at most {max_length}; use a context "
            f"below {room} (and a stride of at most {room} - context)."
        )
    return context, stride


# --------------------------------------------------------------------------- sentences
def count_text_tokens(texts: list[str], tokenizer, *, context: int | None) -> int:
    """The most pooled tokens of any text (the positions of ``pooling="none"``), block by block."""
    most = 0
    for a in range(0, len(texts), TEXT_BLOCK):
        enc = tokenizer(list(texts[a:a + TEXT_BLOCK]), add_special_tokens=True, return_special_tokens_mask=True,
                        truncation=False, verbose=False)
        for ids, special in zip(enc["input_ids"], enc["special_tokens_mask"]):
            most = max(most, len(ids) if context is None else len(_special_split(ids, special)[1]))
    return most


def iter_text_units(texts: list[str], tokenizer, *, max_length: int | None, context: int | None,
                    stride: int | None, empty: list, causal: bool = False) -> Iterator[TextUnit]:
    """One unit per text, tokenized block by block; rows of texts without a body token go to ``empty``."""
    check_tokenizer(tokenizer)
    step = TEXT_BLOCK
    for a in range(0, len(texts), step):
        block = list(texts[a:a + step])
        enc = tokenizer(block, add_special_tokens=True, return_special_tokens_mask=True, truncation=False,
                        verbose=False)
        units = []
        for k, (ids, special) in enumerate(zip(enc["input_ids"], enc["special_tokens_mask"])):
            row = a + k
            prefix, body, suffix, _ = _special_split(ids, special)
            if not body:
                empty.append(row)
                continue
            if context is None:
                if max_length is not None and len(ids) > max_length:
                    raise ValueError(
                        f"Text {row} has {len(ids)} tokens but the model takes at most {max_length}. "
                        "Pass context=<n tokens> (e.g. context=256) to compute long texts with sliding "
                        "windows of left context, or shorten the text."
                    )
                n = len(ids)
                units.append(TextUnit([np.asarray(ids, np.int64)], np.zeros(n, np.int64), np.arange(n),
                                      np.full(n, row), np.array([row])))
                continue
            ctx, st = context_params(context, stride, max_length, len(prefix) + len(suffix), causal)
            windows, tw, tp = [], [], []
            for w, (s, e, new_s) in enumerate(window_bounds(len(body), ctx, st)):
                windows.append(np.asarray(prefix + body[s:e] + suffix, np.int64))
                pos = np.arange(new_s, e)
                tw.append(np.full(len(pos), w))
                tp.append(pos - s + len(prefix))
            tw_arr, tp_arr = np.concatenate(tw), np.concatenate(tp)
            units.append(TextUnit(windows, tw_arr, tp_arr, np.full(len(tw_arr), row), np.array([row])))
        units.sort(key=lambda u: -u.length)
        yield from units


# --------------------------------------------------------------------------- narratives
def _word_of_token(words: list[str], offsets: list, special: list) -> np.ndarray:
    """Index (into ``words``) of the word holding each token's last character; -1 for none."""
    text_len = sum(len(w) for w in words) + max(len(words) - 1, 0)
    char_word = np.empty(text_len, dtype=np.int64)
    pos = 0
    for i, w in enumerate(words):
        start = pos - 1 if i else 0  # the separating space belongs to the following word
        pos += len(w)
        char_word[max(start, 0):pos] = i
        pos += 1
    out = np.full(len(offsets), -1, dtype=np.int64)
    for t, ((a, b), sp) in enumerate(zip(offsets, special)):
        if not sp and b > a:
            out[t] = char_word[b - 1]
    return out


def word_token_blocks(words: list[str], tokenizer, *, block: int | None = None,
                      overlap: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Tokens of ``" ".join(words)`` (no special tokens), ``block`` words at a time.

    Yields ``(ids, word, empty)``: the token ids, the word of each token (-1 for a token that
    belongs to no word, e.g. a zero-width token) and the words of the block with no token.
    Each block is tokenized with ``overlap`` words of context on either side, whose tokens
    are dropped, so the tokens equal those of the whole text for any tokenizer whose
    tokenization of a word depends on at most ``overlap`` neighbouring words.
    """
    block = WORD_BLOCK if block is None else int(block)
    overlap = WORD_OVERLAP if overlap is None else int(overlap)
    n = len(words)
    for a in range(0, n, block):
        b = min(a + block, n)
        lo, hi = max(0, a - overlap), min(n, b + overlap)
        enc = tokenizer(" ".join(words[lo:hi]), add_special_tokens=False, return_offsets_mapping=True,
                        return_special_tokens_mask=True, truncation=False, verbose=False)
        ids = np.asarray(enc["input_ids"], dtype=np.int64)
        word = _word_of_token(words[lo:hi], enc["offset_mapping"], enc["special_tokens_mask"])
        # a token of no word belongs (for the block split) to the word before it
        owner = np.maximum.accumulate(np.where(word >= 0, word, -1)) if len(word) else word
        owner = np.where(owner < 0, 0, owner) + lo
        keep = (owner >= a) & (owner < b)
        word = np.where(word >= 0, word + lo, -1)[keep]
        seen = np.zeros(b - a, dtype=bool)
        seen[word[word >= 0] - a] = True
        yield ids[keep], word, np.flatnonzero(~seen) + a


class _TokenBuffer:
    """The tokens ``[start, end)`` of a stream of blocks, dropped from the front as windows advance."""

    def __init__(self, blocks: Iterator, on_empty) -> None:
        self.blocks, self.on_empty = blocks, on_empty
        self.ids = np.empty(0, np.int64)
        self.word = np.empty(0, np.int64)
        self.start, self.exhausted = 0, False

    @property
    def end(self) -> int:
        return self.start + len(self.ids)

    def fill(self, upto: float) -> None:
        while not self.exhausted and self.end < upto:
            try:
                ids, word, empty = next(self.blocks)
            except StopIteration:
                self.exhausted = True
                break
            self.on_empty(empty)
            self.ids = np.concatenate([self.ids, ids])
            self.word = np.concatenate([self.word, word])

    def drop_before(self, t: int) -> None:
        k = t - self.start
        if k > 0:
            self.ids, self.word, self.start = self.ids[k:], self.word[k:], t


def iter_narrative_units(words: list[str], rows: np.ndarray, tokenizer, *, max_length: int | None,
                         context: int | None, stride: int | None, run_label=None, empty: list,
                         causal: bool = False) -> Iterator[TextUnit]:
    """Windows over one run's words, produced lazily; rows of words with no token go to ``empty``."""
    check_tokenizer(tokenizer, fast=True)
    prefix, suffix = special_tokens(tokenizer)
    prefix_arr, suffix_arr = np.asarray(prefix, np.int64), np.asarray(suffix, np.int64)
    n_special = len(prefix) + len(suffix)
    buf = _TokenBuffer(word_token_blocks(words, tokenizer), lambda e: empty.extend(int(rows[i]) for i in e))
    if context is None:
        room = None if max_length is None else max_length - n_special
        buf.fill(np.inf if room is None else room + 1)
        if room is not None and buf.end > room:
            n_tok = buf.end + sum(len(ids) for ids, _, _ in buf.blocks) + n_special
            raise ValueError(
                f"The narrative of run {run_label!r} ({len(words)} words) has {n_tok} tokens but the "
                f"model takes at most {max_length}. Pass context=<n tokens> (e.g. context="
                f"{max(1, room // 2)}) to compute every word with a sliding window of left context."
            )
        ctx, length = max(buf.end, 1), max(buf.end, 1)
        st = 1
    else:
        ctx, st = context_params(context, stride, max_length, n_special, causal)
        length = ctx + st
    end = 0
    while True:
        target = length if end == 0 else end + st
        buf.fill(target + 1)  # one token beyond the window: is the last word complete?
        e = min(target, buf.end)
        if e <= end:
            break
        s, new_s = max(0, e - length), end
        unit = _narrative_window(buf, s, e, new_s, rows, words, prefix_arr, suffix_arr, ctx, run_label)
        if unit is not None:
            yield unit
        end = e
        # the next window starts at or after end + 1 - length; keep the token before it
        buf.drop_before(max(0, end - length))


def _narrative_window(buf: _TokenBuffer, s: int, e: int, new_s: int, rows: np.ndarray, words: list[str],
                      prefix: np.ndarray, suffix: np.ndarray, ctx: int, run_label) -> TextUnit | None:
    """The unit of the window ``[s, e)``: the words whose last token lies in ``[new_s, e)``."""
    seg = buf.word[s - buf.start:e - buf.start]
    after = buf.word[e - buf.start] if e < buf.end else -2
    is_last = (seg >= 0) & (seg != np.r_[seg[1:], after])
    is_last[:new_s - s] = False
    here = seg[is_last]
    if not len(here):
        return None
    pooled = np.flatnonzero(np.isin(seg, here))
    first = int(seg[pooled[0]])
    if pooled[0] == 0 and s > buf.start and buf.word[s - 1 - buf.start] == first:
        n_tok = int(np.sum(buf.word == first))
        raise ValueError(
            f"Word {words[first]!r} (run {run_label!r}) has at least {n_tok} tokens, more than fits in a "
            f"window with context={ctx}; increase context."
        )
    window = np.concatenate([prefix, buf.ids[s - buf.start:e - buf.start], suffix])
    return TextUnit([window], np.zeros(len(pooled), np.int64), pooled + len(prefix), np.asarray(rows)[seg[pooled]],
                    np.asarray(rows)[here])


def collate_text(units: list[TextUnit], pad_id: int):
    """Pad the windows of ``units``; flat pooling indices into (n_windows * T)."""
    import torch

    windows = [w for u in units for w in u.windows]
    T = max(len(w) for w in windows)
    ids = np.full((len(windows), T), pad_id, dtype=np.int64)
    mask = np.zeros((len(windows), T), dtype=np.int64)
    for i, w in enumerate(windows):
        ids[i, :len(w)] = w
        mask[i, :len(w)] = 1
    flat, rows, offset = [], [], 0
    for u in units:
        flat.append((u.tok_window + offset) * T + u.tok_pos)
        rows.append(u.tok_row)
        offset += len(u.windows)
    inputs = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    return inputs, np.concatenate(flat), np.concatenate(rows)
