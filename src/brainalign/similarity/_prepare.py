"""Inputs of the similarity room: checks, and one cache of per-matrix work (centring, norms,
SVD, whitening, kernels, neighbours) shared by every pair and every measure."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .._backend import as_tensor, available_memory_bytes, resolve_device, resolve_dtype, to_numpy

__all__ = ["Rep", "as_reps", "check_same_stimuli", "memory_chunks"]


class Rep:
    """One response matrix ``(n_stimuli, n_features)`` (or repeats ``(n_repeats, n_stimuli,
    n_features)``) on its device, with a cache of what the measures derive from it."""

    def __init__(self, x, name: str) -> None:
        self.x = x
        self.name = name
        self.repeats = x.ndim == 3
        self.n = int(x.shape[-2])
        self.p = int(x.shape[-1])
        self.n_distinct = self.n  # distinct stimuli (fewer after a bootstrap draw with duplicates)
        self._cache: dict = {}

    def cached(self, key: Any, fn: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    # ---------------------------------------------------------------- shared derived data
    @property
    def centred(self):
        """Features centred over stimuli, (n, p)."""
        return self.cached("centred", lambda: self.x - self.x.mean(0, keepdim=True))

    @property
    def sq_norm(self) -> float:
        """``||Xc||_F^2``."""
        return self.cached("sq_norm", lambda: float((self.centred * self.centred).sum()))

    def svd(self):
        """Thin SVD of the centred data, truncated to its numerical rank: ``(U (n, r), s (r,))``."""
        import torch

        def run():
            xc = self.centred
            U, s, _ = torch.linalg.svd(xc, full_matrices=False)
            tol = float(s[0]) * max(xc.shape) * torch.finfo(s.dtype).eps if s.numel() else 0.0
            r = int((s > tol).sum())
            return U[:, :r], s[:r]

        return self.cached("svd", run)

    @property
    def rank(self) -> int:
        return int(self.svd()[1].numel())

    def to(self, x):
        """``x`` (an index array or a tensor) on this matrix's device."""
        import torch

        return torch.as_tensor(x, device=self.x.device)

    def take(self, idx) -> "Rep":
        """A new Rep of the stimuli ``idx`` (rows; resampling keeps duplicates)."""
        idx = np.asarray(idx)
        t = self.to(idx)
        out = Rep(self.x[:, t] if self.repeats else self.x[t], self.name)
        out.n_distinct = min(self.n_distinct, int(np.unique(idx).size))
        return out


def _is_features(obj: Any) -> bool:
    return hasattr(obj, "layer_names") and hasattr(obj, "provenance")


def _check_one(arr, name: str, repeats: bool) -> None:
    import torch

    want = 3 if repeats else 2
    if arr.ndim != want:
        shape = "(n_repeats, n_stimuli, n_features)" if repeats else "(n_stimuli, n_features)"
        hint = (" This measure needs repeated responses: stack the repetitions of every stimulus."
                if repeats else (" For repeated responses average the repeats first, or use a stochastic "
                                 "measure ('stochastic-gaussian', 'stochastic-energy')." if arr.ndim == 3 else ""))
        raise ValueError(f"{name} must be an array of shape {shape}; got shape {tuple(arr.shape)}.{hint}")
    if min(arr.shape) < 1:
        raise ValueError(f"{name} is empty (shape {tuple(arr.shape)}).")
    if not bool(torch.isfinite(arr).all()):
        n_nan = int(torch.isnan(arr).sum())
        n_inf = int(torch.isinf(arr).sum())
        raise ValueError(f"{name} contains {n_nan} NaN and {n_inf} inf values (shape {tuple(arr.shape)}). "
                         "Drop or impute those stimuli / features first.")
    if repeats and arr.shape[0] < 2:
        raise ValueError(f"{name} has a single repetition (shape {tuple(arr.shape)}); the stochastic metrics need "
                         "at least 2 repeats per stimulus to estimate each response distribution.")
    flat = arr.reshape(-1, arr.shape[-1]) if repeats else arr
    if flat.shape[0] >= 2:
        spread = (flat.max(0).values - flat.min(0).values)
        if not bool((spread > 0).any()):
            raise ValueError(f"All {arr.shape[-1]} features of {name} are constant across stimuli: the "
                             "representation carries no information and every measure is undefined.")


def as_reps(data: Any, *, name: str, device: Any = "auto", dtype: Any = "float64",
            repeats: bool = False) -> tuple[list[Rep], list[str], bool]:
    """Checked :class:`Rep` objects from one matrix, a list / tuple / dict of matrices or a
    brainalign ``Features`` (one matrix per layer).

    Returns ``(reps, labels, single)`` where ``single`` says whether one bare matrix was given.
    """
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, "float64")
    import torch

    if dt not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}.")
    single = False
    if _is_features(data):
        labels = [str(k) for k in data.layer_names]
        items = [data[k] for k in data.layer_names]
    elif isinstance(data, dict):
        if not data:
            raise ValueError(f"{name} is an empty dict; give at least one matrix.")
        labels = [str(k) for k in data]
        items = list(data.values())
    elif isinstance(data, (list, tuple)):
        if not data:
            raise ValueError(f"{name} is an empty list; give at least one matrix.")
        labels = [f"{name}[{i}]" for i in range(len(data))]
        items = list(data)
    else:
        single = True
        labels = [name]
        items = [data]
    reps = []
    for lab, item in zip(labels, items):
        try:
            arr = as_tensor(item, device=dev, dtype=dt)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{lab} must be a numeric array or tensor; got {type(item).__name__}.") from err
        _check_one(arr, lab if not single else name, repeats)
        reps.append(Rep(arr, lab))
    return reps, labels, single


def check_same_stimuli(a: list[Rep], b: list[Rep], name_a: str = "X", name_b: str = "Y") -> int:
    """All matrices must describe the same stimuli: the same number of rows."""
    sizes = {r.name: r.n for r in a + b}
    if len(set(sizes.values())) != 1:
        shown = ", ".join(f"{k}: {v}" for k, v in list(sizes.items())[:8])
        raise ValueError(
            f"{name_a} and {name_b} must describe the same stimuli (the same number of rows, in the same order); "
            f"got different numbers of stimuli ({shown}). Select the common stimuli first."
        )
    return next(iter(sizes.values()))


def memory_chunks(reps: list[Rep], bytes_per_rep: Callable[[Rep], int], device) -> list[list[int]]:
    """Group the indices of ``reps`` so that each group's working set fits in a quarter of the free
    memory of ``device`` (``BRAINALIGN_MEMORY_LIMIT`` caps it)."""
    budget = max(1, available_memory_bytes(device) // 4)
    groups, cur, used = [], [], 0
    for i, r in enumerate(reps):
        b = int(bytes_per_rep(r))
        if cur and used + b > budget:
            groups.append(cur)
            cur, used = [], 0
        cur.append(i)
        used += b
    if cur:
        groups.append(cur)
    return groups


def numpy_of(x) -> np.ndarray:
    return np.asarray(to_numpy(x), dtype=np.float64)
