"""On-disk feature store: one folder per extraction, one ``.npy`` file per layer.

Why ``.npy`` files plus a JSON manifest (and not HDF5 or zarr)?

* A killed process never leaves a half-written container: every layer is a plain file of
  fixed-size rows written with ``os.pwrite`` at their offsets. After the rows of a batch are
  written, one record is appended to ``journal.bin``: the rows and, for each layer, a
  BLAKE2b checksum of their bytes, the record itself sealed by its own checksum. HDF5 can
  corrupt the whole file when a write is interrupted; zarr is not a dependency.
* Resuming an interrupted extraction trusts a row only if its journal record is intact
  *and* the bytes on disk still match its checksums; rows that do not (overwritten,
  damaged, or written after the last complete record) are recomputed, with a warning. The
  checksums are verified once more before the entry is sealed.
* Writes go through the page cache, not through the process's memory, so peak RAM is the
  current batch whatever the number of items and layers.
* Reading back is ``np.load(mmap_mode="r")``: lazy, zero-copy, no pickle.
* One extraction per key at a time: a process takes an exclusive lock on ``<key>.lock``
  (``fcntl.flock``; ``msvcrt.locking`` on Windows) before it looks for the entry, so a
  second process asking for the same features waits and then reads the finished entry.
  (Locks on network file systems are only as good as the file system's ``flock``.)

Layout under the cache root::

    <key>.lock
    <key>.partial/   meta.json  journal.bin  L000.npy ...   (in progress; resumable)
    <key>/           manifest.json  L000.npy ...             (complete; renamed atomically)

The key is a SHA-256 of the model id, weights hash, layers, pooling, context, stride,
processor, preprocess fingerprint, compute precision, output dtype and the stimuli's content
hash. The manifest records every layer's file, shape, dtype and SHA-256; a complete entry
that fails any check is reported with a warning and recomputed, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import logger

_FORMAT = 2


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

    def notes(self, key: str) -> dict:
        """What the extraction recorded beside its arrays (e.g. the rows without a token)."""
        try:
            return json.loads((self.root / key / "manifest.json").read_text()).get("notes") or {}
        except (OSError, ValueError):
            return {}

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
    def writer(self, key: str, meta: dict, n_rows: int, dtype: Any) -> StoreWriter:
        """A writer on ``<key>.partial`` that resumes a previous interrupted run if any."""
        self.root.mkdir(parents=True, exist_ok=True)
        return StoreWriter(self.root, key, meta, n_rows, np.dtype(dtype))

    def lock(self, key: str) -> _KeyLock:
        """An exclusive lock on the extraction ``key`` (a context manager; waits for other holders)."""
        self.root.mkdir(parents=True, exist_ok=True)
        return _KeyLock(self.root / f"{key}.lock")


class _KeyLock:
    """``fcntl.flock`` (POSIX) or ``msvcrt.locking`` (Windows) on a lock file, held by this object."""

    def __init__(self, path: Path) -> None:
        self.path, self._fh = path, None

    def __enter__(self) -> _KeyLock:
        self._fh = open(self.path, "a+b")
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            self._lock_windows()
            return self
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            logger.info("Another process is computing these features (lock %s); waiting for it.", self.path)
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX)
        return self

    def _lock_windows(self) -> None:  # pragma: no cover - Windows
        import msvcrt
        import time

        while True:
            try:
                self._fh.seek(0)
                msvcrt.locking(self._fh.fileno(), msvcrt.LK_NBLCK, 1)
                return
            except OSError:
                time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        try:
            try:
                import fcntl

                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            except ImportError:  # pragma: no cover - Windows
                import msvcrt

                self._fh.seek(0)
                msvcrt.locking(self._fh.fileno(), msvcrt.LK_UNLCK, 1)
        finally:
            self._fh.close()
            self._fh = None


class MemoryWriter:
    """Same interface as :class:`StoreWriter`, in RAM (no cache)."""

    def __init__(self, n_rows: int, dtype: Any) -> None:
        self.n_rows, self.dtype = n_rows, np.dtype(dtype)
        self.done = np.zeros(n_rows, dtype=bool)
        self.arrays: dict[str, np.ndarray] = {}

    @property
    def layers(self) -> dict:
        return self.arrays

    def write(self, name: str, rows: np.ndarray, values: np.ndarray) -> None:
        arr = self.arrays.get(name)
        if arr is None:
            arr = self.arrays[name] = np.zeros((self.n_rows,) + values.shape[1:], dtype=self.dtype)
        _check_row_shape(name, arr.shape[1:], values.shape[1:])
        arr[rows] = values

    def mark_done(self, rows: np.ndarray) -> None:
        self.done[rows] = True

    def finish(self, order: list[str], notes: dict | None = None) -> dict:
        return {n: self.arrays[n] for n in order}

    def close(self) -> None:
        pass

    def abort(self) -> None:
        self.arrays = {}


def _check_row_shape(name: str, have: tuple, got: tuple) -> None:
    if tuple(have) != tuple(got):
        raise ValueError(
            f"Layer {name!r} gave rows of shape {tuple(got)} after rows of shape {tuple(have)}. "
            "pooling='none' needs the same number of positions for every item (same image size, "
            "same audio length); use pooling='mean' otherwise."
        )


_MAGIC = b"BAJ1"
_DIGEST = 16


def _digest(data) -> bytes:
    return hashlib.blake2b(data, digest_size=_DIGEST).digest()


def _segments(rows: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive rows of a sorted array as ``(first, count)``."""
    if not len(rows):
        return []
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.r_[0, breaks]
    ends = np.r_[breaks, len(rows)]
    return [(int(rows[a]), int(b - a)) for a, b in zip(starts, ends)]


class StoreWriter:
    """Rows written in place with ``os.pwrite``; a checksummed journal record per batch."""

    def __init__(self, root: Path, key: str, meta: dict, n_rows: int, dtype: np.dtype) -> None:
        self.final = root / key
        self.folder = root / f"{key}.partial"
        self.meta, self.n_rows, self.dtype = meta, n_rows, dtype
        self._fds: dict[str, int] = {}
        self._pending: dict[str, bytes] = {}
        self.layers: dict[str, dict] = {}
        self.done = np.zeros(n_rows, dtype=bool)
        self.n_rejected = 0
        if self._resume():
            if self.n_rejected:
                warnings.warn(
                    f"{self.n_rejected} rows of the interrupted extraction in {self.folder} no longer match "
                    "the checksums written with them (overwritten or damaged on disk); recomputing them.",
                    stacklevel=4)
        else:
            _remove(self.folder)
            self.folder.mkdir(parents=True)
            self._save_state()
            open(self.folder / "journal.bin", "wb").close()
        self._journal = open(self.folder / "journal.bin", "ab")

    # --- resume ----------------------------------------------------------------------
    def _resume(self) -> bool:
        try:
            state = json.loads((self.folder / "meta.json").read_text())
        except (OSError, ValueError):
            return False
        if (state.get("meta") != _as_stored(self.meta) or state.get("n_rows") != self.n_rows
                or not (self.folder / "journal.bin").exists()):
            return False
        for info in state["layers"].values():
            path = self.folder / info["file"]
            if not path.exists() or path.stat().st_size != info["offset"] + info["nbytes"]:
                return False
        self.layers = state["layers"]
        for name, info in self.layers.items():
            self._fds[name] = os.open(self.folder / info["file"], os.O_RDWR)
        journaled = np.zeros(self.n_rows, dtype=bool)
        for rows, digests in self._records():
            journaled[rows] = True
            self.done[rows] = self._intact(rows, digests)  # a later record of the same rows supersedes
        self.n_rejected = int((journaled & ~self.done).sum())
        os.truncate(self.folder / "journal.bin", self._journal_end)  # drop a torn last record
        return True

    def _intact(self, rows: np.ndarray, digests: list[bytes]) -> bool:
        names = self._layer_order()
        return len(digests) == len(names) and all(self._layer_digest(n, rows) == d for n, d in zip(names, digests))

    def _records(self):
        """``(rows, [digest per layer])`` of each intact journal record, in order (stops at a torn one)."""
        data = (self.folder / "journal.bin").read_bytes()
        pos = self._journal_end = 0
        head = len(_MAGIC) + 8 + 4
        while pos + head <= len(data):
            if data[pos:pos + 4] != _MAGIC:
                break
            n, n_layers = struct.unpack_from("<QI", data, pos + 4)
            size = head + 8 * n + _DIGEST * n_layers
            if pos + size + _DIGEST > len(data) or _digest(data[pos:pos + size]) != data[pos + size:pos + size + _DIGEST]:
                break
            rows = np.frombuffer(data, dtype="<i8", count=n, offset=pos + head).astype(np.int64)
            if len(rows) and (rows.min() < 0 or rows.max() >= self.n_rows):
                break
            digests = [data[pos + head + 8 * n + _DIGEST * k:pos + head + 8 * n + _DIGEST * (k + 1)]
                       for k in range(n_layers)]
            pos += size + _DIGEST
            self._journal_end = pos
            yield rows, digests

    def _layer_order(self) -> list[str]:
        return sorted(self.layers, key=lambda n: self.layers[n]["file"])

    def _layer_digest(self, name: str, rows: np.ndarray) -> bytes:
        info = self.layers[name]
        h = hashlib.blake2b(digest_size=_DIGEST)
        for first, count in _segments(rows):
            size = count * info["row_bytes"]
            block = os.pread(self._fds[name], size, info["offset"] + first * info["row_bytes"])
            if len(block) != size:
                return b""
            h.update(block)
        return h.digest()

    def _save_state(self) -> None:
        _atomic_json(self.folder / "meta.json",
                     {"meta": self.meta, "n_rows": self.n_rows, "layers": self.layers})

    # --- writing ---------------------------------------------------------------------
    def write(self, name: str, rows: np.ndarray, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype)
        if name not in self.layers:
            self._allocate(name, values.shape[1:])
        info = self.layers[name]
        _check_row_shape(name, tuple(info["shape"][1:]), values.shape[1:])
        row_bytes = info["row_bytes"]
        order = np.argsort(rows, kind="stable")
        rows, values = np.asarray(rows)[order], np.ascontiguousarray(values[order])
        fd = self._fds[name]
        a = 0
        for first, count in _segments(rows):
            os.pwrite(fd, memoryview(values[a:a + count]).cast("B"), info["offset"] + first * row_bytes)
            a += count
        self._pending[name] = _digest(memoryview(values).cast("B"))

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

    def mark_done(self, rows: np.ndarray) -> None:
        """Append the journal record of the batch just written (every layer wrote ``rows``)."""
        rows = np.sort(np.asarray(rows, dtype=np.int64))
        names = self._layer_order()
        missing = [n for n in names if n not in self._pending]
        if missing:
            raise RuntimeError(f"Layers {missing} were not written for this batch.")
        body = (_MAGIC + struct.pack("<QI", len(rows), len(names)) + rows.astype("<i8").tobytes()
                + b"".join(self._pending[n] for n in names))
        self._journal.write(body + _digest(body))
        self._journal.flush()
        self._pending = {}
        self.done[rows] = True

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}
        if getattr(self, "_journal", None) is not None:
            self._journal.close()
            self._journal = None

    def abort(self) -> None:
        """Close and remove the partial folder (nothing worth resuming)."""
        self.close()
        _remove(self.folder)

    def finish(self, order: list[str], notes: dict | None = None) -> dict:
        """Verify every journal record, then checksums, manifest (with ``notes``), atomic rename.

        Returns ``{layer: memmap}``.
        """
        self._journal.close()
        self._journal = None
        ok = np.zeros(self.n_rows, dtype=bool)
        for rows, digests in self._records():
            ok[rows] = self._intact(rows, digests)
        bad = int((self.done & ~ok).sum())
        if bad:
            self.close()
            raise RuntimeError(
                f"{bad} rows in {self.folder} changed on disk after they were written (another program wrote "
                "into the cache?); run the extraction again to recompute them.")
        self.close()
        layers = []
        for name in order:
            info = self.layers[name]
            layers.append({"name": name, "file": info["file"], "shape": info["shape"], "dtype": info["dtype"],
                           "sha256": file_sha256(self.folder / info["file"])})
        _atomic_json(self.folder / "manifest.json", {"meta": self.meta, "layers": layers, "notes": notes or {}})
        for extra in ("journal.bin", "meta.json"):
            (self.folder / extra).unlink(missing_ok=True)
        _remove(self.final)
        os.replace(self.folder, self.final)
        return {lay["name"]: np.load(self.final / lay["file"], mmap_mode="r", allow_pickle=False) for lay in layers}
