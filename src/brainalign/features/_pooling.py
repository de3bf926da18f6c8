"""Pooling of one layer's output over tokens, patches or frames (torch, on the model's device)."""

from __future__ import annotations

import numpy as np

POOLINGS = ["mean", "first", "cls", "last", "none"]


def pool_tokens(h, flat: np.ndarray, local: np.ndarray, n_local: int, pooling: str, n_positions: int):
    """Pool the tokens ``flat`` (indices into the flattened (W * T) positions) into rows.

    ``local`` gives the output row (0..n_local-1) of each pooled token, tokens of a row in
    text order. Returns a tensor of shape (n_local, D), or (n_local, n_positions, D) for
    ``"none"`` (zero-padded).
    """
    import torch

    flat_h = h.reshape(-1, *h.shape[2:])
    if pooling == "mean":
        return _mean_bmm(h, flat, local, n_local)
    if pooling in ("first", "cls", "last"):
        order = np.arange(len(local)) if pooling != "last" else np.arange(len(local))[::-1]
        _, first = np.unique(local[order], return_index=True)
        pick = torch.as_tensor(flat[order][first], device=h.device)
        return flat_h.index_select(0, pick).float()
    # none: position k of each row = rank of the token within its row
    starts = np.r_[0, np.flatnonzero(np.diff(local) != 0) + 1]
    rank = np.arange(len(local)) - np.repeat(starts, np.diff(np.r_[starts, len(local)]))
    out = torch.zeros((n_local, n_positions) + tuple(flat_h.shape[1:]), dtype=torch.float32, device=h.device)
    out[torch.as_tensor(local, device=h.device), torch.as_tensor(rank, device=h.device)] = \
        flat_h.index_select(0, torch.as_tensor(flat, device=h.device)).float()
    return out


def pool_items(y, pooling: str, valid: np.ndarray | None = None, layer: str = ""):
    """Pool a batch output of shape (B, D), (B, T, D) or (B, C, *spatial) per item."""
    import torch

    y = y.float()
    if y.ndim == 2:
        return y
    if y.ndim == 3:
        if valid is not None:
            mask = (torch.arange(y.shape[1], device=y.device)[None, :]
                    < torch.as_tensor(valid, device=y.device)[:, None])
        if pooling == "mean":
            if valid is None:
                return y.mean(dim=1)
            m = mask.to(y.dtype)[..., None]
            return (y * m).sum(1) / m.sum(1).clamp_min(1)
        if pooling in ("first", "cls"):
            return y[:, 0]
        if pooling == "last":
            if valid is None:
                return y[:, -1]
            last = torch.as_tensor(np.asarray(valid) - 1, device=y.device)
            return y[torch.arange(y.shape[0], device=y.device), last]
        return y if valid is None else y * mask[..., None].to(y.dtype)
    # (B, C, *spatial): channel maps
    if pooling == "mean":
        return y.flatten(2).mean(dim=2)
    if pooling == "none":
        return y.flatten(1)
    raise ValueError(
        f"pooling={pooling!r} has no meaning for the output of layer {layer!r} of shape "
        f"{tuple(y.shape)} (channels x space); use pooling='mean' (spatial average) or 'none' (flatten)."
    )


def _mean_bmm(h, flat: np.ndarray, local: np.ndarray, n_local: int):
    """Mean over each row's tokens as one batched matmul: (W, R, T) weights x (W, T, D).

    R is the largest number of rows in one window. A row spread over several windows (long
    texts with ``context``) gets its per-window partial sums added. Windows that hold many
    rows (the words of a narrative) are pooled with one ``index_add`` over their tokens
    instead, which needs memory for the pooled tokens only, not a (W, R, T) matrix.
    """
    import torch

    W, T = h.shape[0], h.shape[1]
    win, pos = flat // T, flat % T
    pair_key = win.astype(np.int64) * (n_local + 1) + local
    pairs, slot_of_tok = np.unique(pair_key, return_inverse=True)
    pair_win, pair_row = pairs // (n_local + 1), pairs % (n_local + 1)
    first_slot = np.searchsorted(pair_win, np.arange(W))
    slot_in_win = np.arange(len(pairs)) - first_slot[pair_win]
    R = int(slot_in_win.max()) + 1
    if R > 8:
        return _mean_index_add(h, flat, local, n_local)
    counts = np.bincount(local, minlength=n_local).astype(np.float64)
    P = np.zeros((W, R, T), dtype=np.float32)
    P[win, slot_in_win[slot_of_tok], pos] = 1.0 / counts[local]
    x = h.reshape(W, T, -1)
    x = x if x.dtype == torch.float32 else x.float()
    res = torch.bmm(torch.from_numpy(P).to(x.device), x)  # (W, R, D)
    if R == 1 and len(pairs) == W and n_local == W and (pair_row == np.arange(W)).all():
        return res[:, 0].reshape((n_local,) + tuple(h.shape[2:]))  # one row per window, in order
    picked = res[torch.as_tensor(pair_win, device=x.device), torch.as_tensor(slot_in_win, device=x.device)]
    if len(np.unique(pair_row)) == len(pair_row):
        out = torch.empty((n_local, picked.shape[1]), dtype=torch.float32, device=x.device)
        out[torch.as_tensor(pair_row, device=x.device)] = picked
    else:
        out = torch.zeros((n_local, picked.shape[1]), dtype=torch.float32, device=x.device)
        out.index_add_(0, torch.as_tensor(pair_row, device=x.device), picked)
    return out.reshape((n_local,) + tuple(h.shape[2:]))


def _mean_index_add(h, flat: np.ndarray, local: np.ndarray, n_local: int):
    """Mean over each row's tokens by summing the pooled tokens into their rows."""
    import torch

    flat_h = h.reshape(-1, *h.shape[2:])
    picked = flat_h.index_select(0, torch.as_tensor(flat, device=h.device)).float()
    out = torch.zeros((n_local,) + tuple(picked.shape[1:]), dtype=torch.float32, device=h.device)
    out.index_add_(0, torch.as_tensor(local, device=h.device), picked)
    counts = torch.as_tensor(np.bincount(local, minlength=n_local), dtype=torch.float32, device=h.device)
    return out / counts.clamp_min(1).reshape((-1,) + (1,) * (out.ndim - 1))
