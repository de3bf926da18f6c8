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
    idx = torch.as_tensor(flat, device=h.device)
    loc = torch.as_tensor(local, device=h.device)
    if pooling == "mean":
        # tokens of one row are contiguous in ``local``: segment sums by a float64 cumsum
        # (index_add_ with many repeated indices is very slow on CPU)
        x = flat_h.index_select(0, idx).double()
        starts = np.r_[0, np.flatnonzero(np.diff(local) != 0) + 1]
        ends = np.r_[starts[1:], len(local)]
        cs = torch.cat([torch.zeros((1,) + tuple(x.shape[1:]), dtype=x.dtype, device=x.device), x.cumsum(0)])
        s_t, e_t = torch.as_tensor(starts, device=x.device), torch.as_tensor(ends, device=x.device)
        counts = (e_t - s_t).to(x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
        seg = ((cs[e_t] - cs[s_t]) / counts).float()
        out = torch.zeros((n_local,) + tuple(x.shape[1:]), dtype=torch.float32, device=x.device)
        out[torch.as_tensor(local[starts], device=x.device)] = seg
        return out
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
        flat_h.index_select(0, idx).float()
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
