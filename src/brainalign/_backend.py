"""Array backend helpers shared by the rooms that compute with torch.

No global backend state: the device and dtype come from the inputs or from an explicit
``device=`` argument. torch is imported inside the functions so that importing this module
stays light.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._utils import check_option


def resolve_device(device: Any = "auto", *, need_float64: bool = False):
    """``"auto"`` -> CUDA, then MPS, then CPU; a string or ``torch.device`` is checked.

    Parameters
    ----------
    device : "auto", None, str or torch.device
    need_float64 : bool
        The caller computes in float64 (e.g. the ridge solvers' decompositions). ``"auto"``
        then never picks a device without float64 (Apple's MPS), and asking for such a
        device explicitly raises a ValueError that says so.

    Raises a ValueError when a CUDA/MPS device is asked for but not available.
    """
    import torch

    if isinstance(device, torch.device):
        dev = device
    else:
        if device is None or device == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda")
            mps = getattr(torch.backends, "mps", None)
            if not need_float64 and mps is not None and mps.is_available():
                return torch.device("mps")
            return torch.device("cpu")
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(
                f"Invalid device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
            ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available here; use 'auto' or 'cpu'.")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device={device!r} was asked for but MPS is not available here; use 'auto' or 'cpu'.")
        if need_float64:
            raise ValueError(
                f"device={device!r}: this computation needs float64, which Apple's MPS devices do not "
                "support; use device='cpu' (or 'auto', which skips MPS here)."
            )
    return dev


def resolve_dtype(dtype: Any, default: str = "float32"):
    """``None`` -> ``default``; accepts numpy/torch dtypes or names (float32, float64, float16, bfloat16)."""
    import torch

    if dtype is None:
        dtype = default
    if isinstance(dtype, torch.dtype):
        return dtype
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    name = {"single": "float32", "double": "float64", "half": "float16"}.get(name, name)
    check_option("dtype", name, ["float32", "float64", "float16", "bfloat16"])
    return getattr(torch, name)


def as_tensor(x: Any, *, device: Any = None, dtype: Any = None):
    """A torch tensor on ``device`` (no copy when already there) with ``dtype``.

    Read-only arrays (e.g. memory-mapped features from the feature store) are copied once:
    torch cannot share memory it may not write, and a shared read-only buffer would be
    undefined behaviour on any in-place operation.
    """
    import torch

    if isinstance(x, torch.Tensor):
        return x.to(device=device or x.device, dtype=dtype or x.dtype)
    arr = np.ascontiguousarray(np.asarray(x))
    if arr.dtype == object or not arr.flags.writeable:
        t = torch.tensor(arr.tolist() if arr.dtype == object else arr)
    else:
        t = torch.from_numpy(arr)
    return t.to(device=device, dtype=dtype)


def available_memory_bytes(device: Any) -> int:
    """Free memory on ``device``: CUDA's free bytes, else the host's available RAM.

    Honors ``BRAINALIGN_MEMORY_LIMIT`` (bytes, or with a K/M/G suffix) as an upper bound,
    which is how tests and users on shared machines cap the automatic chunk sizes.
    """
    import torch

    dev = torch.device(device) if not isinstance(device, torch.device) else device
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
        avail = int(free)
    else:
        avail = _host_available()
    limit = memory_limit_bytes()
    if limit is not None:
        avail = min(avail, limit)
    return avail


def memory_limit_bytes() -> int | None:
    """``BRAINALIGN_MEMORY_LIMIT`` in bytes (None when unset), or a clear error naming it."""
    limit = os.environ.get("BRAINALIGN_MEMORY_LIMIT")
    if not limit:
        return None
    try:
        value = _parse_bytes(limit)
    except ValueError:
        value = -1
    if value <= 0:
        raise ValueError(f"BRAINALIGN_MEMORY_LIMIT={limit!r} is not a memory size: give a positive number of bytes, "
                         "optionally with a K, M, G or T suffix (e.g. 8G), or unset it.")
    return value


def _host_available() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 * 1024**3


def _parse_bytes(text: str) -> int:
    text = str(text).strip().upper()
    mult = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    if text and text[-1] == "B":
        text = text[:-1]
    if text and text[-1] in mult:
        return int(float(text[:-1]) * mult[text[-1]])
    return int(float(text))


def to_numpy(x: Any) -> np.ndarray:
    """A numpy array from a numpy array or a torch tensor (moved to the CPU)."""
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)
