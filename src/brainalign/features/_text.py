"""Text planning: tokenization, sliding context windows and per-word pooling.

The unit of work is a *window*: a list of token ids the model sees at once, plus which of
its positions are pooled into which output row. Batching concatenates windows, pads them
to the longest one and pools with one ``index_add`` (mean) or one gather (first / last)
over the flattened tokens, so any number of rows per window and windows per row work.

Sentences (modality ``text``)
    Without ``context`` each text is one window (its special tokens included, as in the
    model's own forward pass); a text longer than the model's maximum length is refused.
    With ``context`` the body tokens of each text (special tokens excluded) are covered by
    sliding windows and pooled across them; all windows of one text stay in one unit.
Narratives (modality ``word``)
    The words of one run are joined by spaces into one text. Each word is pooled from its
    own sub-word tokens, inside the window where its last token falls in the window's new
    part: with ``context=N`` and ``stride=S`` the windows are ``N + S`` tokens long and
    advance by ``S``, so every token sees at least ``min(N, position)`` and fewer than
    ``N + S`` tokens of left context.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TextUnit:
    """Windows processed together and how their tokens map to output rows."""

    windows: list  # list of lists of token ids
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


def _check_tokenizer(tokenizer) -> None:
    if tokenizer is None or not callable(tokenizer):
        raise ValueError(
            "Text stimuli need a tokenizer: load the model by its id / folder (the tokenizer is "
            "loaded with it) or pass processor=<tokenizer>."
        )


def _special_split(ids: list[int], special: list[int]) -> tuple[list[int], list[int], list[int], int]:
    """prefix, body, suffix and the index of the first body token."""
    special = np.asarray(special, dtype=bool)
    body_idx = np.flatnonzero(~special)
    if len(body_idx) == 0:
        return list(ids), [], [], len(ids)
    a, b = int(body_idx[0]), int(body_idx[-1]) + 1
    return list(ids[:a]), list(ids[a:b]), list(ids[b:]), a


def _context_params(context: int, stride: int | None, max_length: int | None, n_special: int) -> tuple[int, int]:
    context = int(context)
    if context < 1:
        raise ValueError(f"context must be a positive number of tokens; got {context}.")
    room = None if max_length is None else max_length - n_special
    if stride is None:
        stride = context if room is None else min(context, room - context)
    stride = int(stride)
    if stride < 1 or (room is not None and context + stride > room):
        raise ValueError(
            f"context={context} with stride={stride} needs windows of {context + stride} tokens plus "
            f"{n_special} special tokens, but the model takes at most {max_length}; use a context "
            f"below {room} (and a stride of at most {room} - context)."
        )
    return context, stride


def plan_texts(texts: list[str], tokenizer, *, max_length: int | None, context: int | None,
               stride: int | None) -> tuple[list[TextUnit], np.ndarray]:
    """One unit per text. Returns the units and the number of pooled tokens per row."""
    _check_tokenizer(tokenizer)
    enc = tokenizer(list(texts), add_special_tokens=True, return_special_tokens_mask=True,
                    truncation=False, verbose=False)
    units: list[TextUnit] = []
    counts = np.zeros(len(texts), dtype=np.int64)
    for row, (ids, special) in enumerate(zip(enc["input_ids"], enc["special_tokens_mask"])):
        if context is None:
            if max_length is not None and len(ids) > max_length:
                raise ValueError(
                    f"Text {row} has {len(ids)} tokens but the model takes at most {max_length}. "
                    "Pass context=<n tokens> (e.g. context=256) to compute long texts with sliding "
                    "windows of left context, or shorten the text."
                )
            n = len(ids)
            units.append(TextUnit([list(ids)], np.zeros(n, np.int64), np.arange(n), np.full(n, row), np.array([row])))
            counts[row] = n
            continue
        prefix, body, suffix, _ = _special_split(ids, special)
        ctx, st = _context_params(context, stride, max_length, len(prefix) + len(suffix))
        if not body:
            n = len(ids)
            units.append(TextUnit([list(ids)], np.zeros(n, np.int64), np.arange(n), np.full(n, row), np.array([row])))
            counts[row] = n
            continue
        windows, tw, tp = [], [], []
        for w, (s, e, new_s) in enumerate(window_bounds(len(body), ctx, st)):
            windows.append(prefix + body[s:e] + suffix)
            pos = np.arange(new_s, e)
            tw.append(np.full(len(pos), w))
            tp.append(pos - s + len(prefix))
        tw_arr, tp_arr = np.concatenate(tw), np.concatenate(tp)
        units.append(TextUnit(windows, tw_arr, tp_arr, np.full(len(tw_arr), row), np.array([row])))
        counts[row] = len(tw_arr)
    return units, counts


def _word_of_token(words: list[str], offsets: list, special: list) -> tuple[np.ndarray, str]:
    text = " ".join(words)
    char_word = np.empty(len(text), dtype=np.int64)
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
    return out, text


def plan_narrative(words: list[str], rows: np.ndarray, tokenizer, *, max_length: int | None,
                   context: int | None, stride: int | None, run_label=None) -> tuple[list[TextUnit], list[int]]:
    """Windows over one run's words; returns the units and the rows of words with no token."""
    _check_tokenizer(tokenizer)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            "Per-word features need a fast tokenizer (with offset mappings); load the model's "
            "tokenizer with use_fast=True or pass a transformers PreTrainedTokenizerFast."
        )
    text = " ".join(words)
    enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True,
                    return_special_tokens_mask=True, truncation=False, verbose=False)
    ids, special = enc["input_ids"], enc["special_tokens_mask"]
    word_of, _ = _word_of_token(words, enc["offset_mapping"], special)
    prefix, body, suffix, first_body = _special_split(ids, special)
    body_word = word_of[first_body:first_body + len(body)]
    n_special = len(prefix) + len(suffix)
    if context is None:
        if max_length is not None and len(ids) > max_length:
            raise ValueError(
                f"The narrative of run {run_label!r} ({len(words)} words) has {len(ids)} tokens but the "
                f"model takes at most {max_length}. Pass context=<n tokens> (e.g. context="
                f"{max(1, (max_length - n_special) // 2)}) to compute every word with a sliding window "
                "of left context."
            )
        ctx, st = max(len(body), 1), 1
        bounds = [(0, len(body), 0)]
    else:
        ctx, st = _context_params(context, stride, max_length, n_special)
        bounds = window_bounds(len(body), ctx, st)
    valid = np.flatnonzero(body_word >= 0)
    first_tok = np.full(len(words), np.iinfo(np.int64).max, np.int64)
    last_tok = np.full(len(words), -1, np.int64)
    np.minimum.at(first_tok, body_word[valid], valid)
    np.maximum.at(last_tok, body_word[valid], valid)
    empty = [int(rows[i]) for i in np.flatnonzero(last_tok < 0)]
    units: list[TextUnit] = []
    for s, e, new_s in bounds:
        in_new = np.flatnonzero((last_tok >= new_s) & (last_tok < e))
        if not len(in_new):
            continue
        too_long = in_new[first_tok[in_new] < s]
        if len(too_long):
            w = int(too_long[0])
            raise ValueError(
                f"Word {words[w]!r} (run {run_label!r}) has {last_tok[w] - first_tok[w] + 1} tokens, more "
                f"than fits in a window with context={ctx}; increase context."
            )
        tp, tr = [], []
        for w in in_new:
            pos = np.arange(first_tok[w], last_tok[w] + 1)
            tp.append(pos - s + len(prefix))
            tr.append(np.full(len(pos), rows[w]))
        tp_arr, tr_arr = np.concatenate(tp), np.concatenate(tr)
        units.append(TextUnit([prefix + body[s:e] + suffix], np.zeros(len(tp_arr), np.int64), tp_arr, tr_arr,
                              np.asarray(rows[in_new])))
    return units, empty


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
