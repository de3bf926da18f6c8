"""On-disk feature store: one folder per extraction, one ``.npy`` file per layer.

Why ``.npy`` files plus a JSON manifest (and not HDF5 or zarr)?

* A killed process never leaves a half-written container: every layer is a plain file of
  fixed-size rows written with ``os.pwrite`` at their offsets, and progress (which units
  of work are done) is a small ``done.npy`` replaced atomically (temp file + ``os.replace``)
  *after* their rows are written. HDF5 can corrupt the whole file when a write is
  interrupted; zarr is not a dependency.
* Writes go through the page cache, not through the process's memory, so peak RAM is the
  current batch whatever the number of items and layers.
* Reading back is ``np.load(mmap_mode="r")``: lazy, zero-copy, no pickle.

Layout under the cache root::

    <key>.partial/   meta.json  done.npy  L000.npy ...   (in progress; resumable)
    <key>/           manifest.json  L000.npy ...          (complete; renamed atomically)

The key is a SHA-256 of the model id, weights hash, layers, pooling, context, stride,
processor, compute precision, output dtype and the stimuli's content hash. The manifest
records every layer's file, shape, dtype and SHA-256; a complete entry that fails any
check is reported with a warning and recomputed, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np

_FORMAT = 1


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _atomic_json(path: Path, obj: Any) -> None:
    _atomic_write_bytes(path, json.dumps(obj, sort_keys=True, indent=1).encode())


def _atomic_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        np.lib.format.write_array(fh, np.ascontiguousarray(arr), allow_pickle=False)
    os.replace(tmp, path)


def _as_stored(meta: dict) -> Any:
    """``meta`` as it reads back from a JSON file (tuples become lists, other objects strings)."""
    return json.loads(json.dumps(meta, default=str))


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _remove(path: Path) -> None:
    if path.exists():
        trash = path.with_name(f".{path.name}.{uuid.uuid4().hex}.trash")
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)


class FeatureStore:
    """A folder of cached feature extractions.

    Parameters
    ----------
    root : str or Path
        The cache folder (created when needed).

    Examples
    --------
    >>> import tempfile
    >>> store = FeatureStore(tempfile.mkdtemp())
    >>> key = store.key({"model_id": "m", "pooling": "mean"})
    >>> store.load(key, {"model_id": "m", "pooling": "mean"}) is None
    True
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    @staticmethod
    def key(meta: dict) -> str:
        """A SHA-256 key (hex, 32 chars) of a JSON-serialisable description."""
        payload = json.dumps({"format": _FORMAT, **meta}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    def entries(self) -> list[str]:
        """Keys of the complete entries."""
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "manifest.json").exists())

    # --- reading -------------------------------------------------------------------
    def load(self, key: str, meta: dict) -> dict | None:
        """``{layer: memmap}`` of a complete, valid entry, else None (corrupt ones removed)."""
        folder = self.root / key
        if not folder.exists():
            return None
        problem, arrays = self._check(folder, meta)
        if problem is None:
            return arrays
        warnings.warn(f"The cached features at {folder} are unusable ({problem}); recomputing them.",
                      stacklevel=3)
        _remove(folder)
        return None

    def _check(self, folder: Path, meta: dict) -> tuple[str | None, dict]:
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
        except (OSError, ValueError) as err:
            return f"manifest unreadable: {err}", {}
        if manifest.get("meta") != _as_stored(meta):
            return "its manifest describes a different extraction", {}
        arrays = {}
        for layer in manifest.get("layers", []):
            path = folder / layer["file"]
            try:
                arr = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as err:
                return f"layer {layer['name']!r}: {err}", {}
            if list(arr.shape) != layer["shape"] or str(arr.dtype) != layer["dtype"]:
                return (f"layer {layer['name']!r} has shape {arr.shape} {arr.dtype}, manifest says "
                        f"{tuple(layer['shape'])} {layer['dtype']}"), {}
            if file_sha256(path) != layer["sha256"]:
                return f"checksum mismatch for layer {layer['name']!r}", {}
            arrays[layer["name"]] = arr
        if not arrays:
            return "no layers", {}
        return None, arrays

    # --- writing -------------------------------------------------------------------
    def writer(self, key: str, meta: dict, n_rows: int, n_units: int, dtype: Any) -> StoreWriter:
        """A writer on ``<key>.partial`` that resumes a previous interrupted run if any."""
        self.root.mkdir(parents=True, exist_ok=True)
        return StoreWriter(self.root, key, meta, n_rows, n_units, np.dtype(dtype))


class MemoryWriter:
    """Same interface as :class:`StoreWriter`, in RAM (no cache)."""

    def __init__(self, n_rows: int, n_units: int, dtype: Any) -> None:
        self.n_rows, self.dtype = n_rows, np.dtype(dtype)
        self.done = np.zeros(n_units, dtype=bool)
        self.arrays: dict[str, np.ndarray] = {}

    def write(self, name: str, rows: np.ndarray, values: np.ndarray) -> None:
        arr = self.arrays.get(name)
        if arr is None:
            arr = self.arrays[name] = np.zeros((self.n_rows,) + values.shape[1:], dtype=self.dtype)
        _check_row_shape(name, arr.shape[1:], values.shape[1:])
        arr[rows] = values

    def mark_done(self, units: np.ndarray) -> None:
        self.done[units] = True

    def finish(self, order: list[str]) -> dict:
        return {n: self.arrays[n] for n in order}

    def close(self) -> None:
        pass


def _check_row_shape(name: str, have: tuple, got: tuple) -> None:
    if tuple(have) != tuple(got):
        raise ValueError(
            f"Layer {name!r} gave rows of shape {tuple(got)} after rows of shape {tuple(have)}. "
            "pooling='none' needs the same number of positions for every item (same image size, "
            "same audio length); use pooling='mean' otherwise."
        )


class StoreWriter:
    """Rows written in place with ``os.pwrite``; progress replaced atomically."""

    def __init__(self, root: Path, key: str, meta: dict, n_rows: int, n_units: int, dtype: np.dtype) -> None:
        self.final = root / key
        self.folder = root / f"{key}.partial"
        self.meta, self.n_rows, self.n_units, self.dtype = meta, n_rows, n_units, dtype
        self._fds: dict[str, int] = {}
        self.layers: dict[str, dict] = {}
        state = self._resume_state()
        if state is None:
            _remove(self.folder)
            self.folder.mkdir(parents=True)
            self.done = np.zeros(n_units, dtype=bool)
            self._save_state()
        else:
            self.layers, self.done = state
            for name, info in self.layers.items():
                self._fds[name] = os.open(self.folder / info["file"], os.O_RDWR)

    def _resume_state(self):
        try:
            state = json.loads((self.folder / "meta.json").read_text())
            done = np.load(self.folder / "done.npy", allow_pickle=False)
        except (OSError, ValueError):
            return None
        if (state.get("meta") != _as_stored(self.meta)
                or state.get("n_units") != self.n_units or done.shape != (self.n_units,)):
            return None
        for info in state["layers"].values():
            path = self.folder / info["file"]
            if not path.exists() or path.stat().st_size != info["offset"] + info["nbytes"]:
                return None
        return state["layers"], done.astype(bool)

    def _save_state(self) -> None:
        _atomic_json(self.folder / "meta.json",
                     {"meta": self.meta, "n_units": self.n_units, "layers": self.layers})

    def write(self, name: str, rows: np.ndarray, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype)
        if name not in self.layers:
            self._allocate(name, values.shape[1:])
        info = self.layers[name]
        _check_row_shape(name, tuple(info["shape"][1:]), values.shape[1:])
        row_bytes = info["row_bytes"]
        order = np.argsort(rows, kind="stable")
        rows, values = np.asarray(rows)[order], values[order]
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        fd = self._fds[name]
        for seg_rows, seg_vals in zip(np.split(rows, breaks), np.split(values, breaks)):
            os.pwrite(fd, memoryview(np.ascontiguousarray(seg_vals)).cast("B"),
                      info["offset"] + int(seg_rows[0]) * row_bytes)

    def _allocate(self, name: str, row_shape: tuple) -> None:
        file = f"L{len(self.layers):03d}.npy"
        shape = (self.n_rows,) + tuple(row_shape)
        path = self.folder / file
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": shape}
        with open(path, "wb") as fh:
            np.lib.format.write_array_header_2_0(fh, header)
            offset = fh.tell()
        row_bytes = int(np.prod(row_shape, dtype=np.int64)) * self.dtype.itemsize
        nbytes = row_bytes * self.n_rows
        os.truncate(path, offset + nbytes)
        self._fds[name] = os.open(path, os.O_RDWR)
        self.layers[name] = {"file": file, "shape": list(shape), "dtype": str(self.dtype), "offset": offset,
                             "row_bytes": row_bytes, "nbytes": nbytes}
        self._save_state()

    def mark_done(self, units: np.ndarray) -> None:
        self.done[units] = True
        _atomic_npy(self.folder / "done.npy", self.done)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}

    def finish(self, order: list[str]) -> dict:
        """Checksums, manifest, atomic rename; returns ``{layer: memmap}``."""
        self.close()
        layers = []
        for name in order:
            info = self.layers[name]
            layers.append({"name": name, "file": info["file"], "shape": info["shape"], "dtype": info["dtype"],
                           "sha256": file_sha256(self.folder / info["file"])})
        _atomic_json(self.folder / "manifest.json", {"meta": self.meta, "layers": layers})
        (self.folder / "done.npy").unlink(missing_ok=True)
        _remove(self.final)
        os.replace(self.folder, self.final)
        return {lay["name"]: np.load(self.final / lay["file"], mmap_mode="r", allow_pickle=False) for lay in layers}
