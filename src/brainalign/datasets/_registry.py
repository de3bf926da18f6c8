"""Where the bundled datasets live, and what they are (from ``datasets/MANIFEST.json``)."""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from .._utils import close_matches_message

__all__ = ["dataset_path", "list_datasets"]

_ENV = "BRAINALIGN_DATA"
_MANIFEST = "MANIFEST.json"


def _data_root() -> Path:
    """The folder holding the bundled datasets and their MANIFEST.json."""
    env = os.environ.get(_ENV)
    if env:
        root = Path(env).expanduser()
        if not (root / _MANIFEST).is_file():
            raise FileNotFoundError(
                f"{_ENV}={env!r} does not point at the brainalign datasets folder: "
                f"{root / _MANIFEST} does not exist. Set {_ENV} to the 'datasets' folder of a "
                "brainalign checkout (the one with MANIFEST.json), or unset it."
            )
        return root
    # an installed wheel: the build copies <repo>/datasets into the package as brainalign/_data/datasets
    packaged = Path(__file__).resolve().parents[1] / "_data" / "datasets"
    if (packaged / _MANIFEST).is_file():
        return packaged
    # a checkout / editable install: <repo>/src/brainalign/datasets/_registry.py -> <repo>/datasets
    root = Path(__file__).resolve().parents[3] / "datasets"
    if not (root / _MANIFEST).is_file():
        raise FileNotFoundError(
            f"The bundled datasets were not found (looked for {packaged / _MANIFEST} and {root / _MANIFEST}). "
            "Reinstall brainalign (pip install brainalign, or pip install -e . in a clone), or set the "
            f"environment variable {_ENV} to the 'datasets' folder of a clone "
            "(export BRAINALIGN_DATA=/path/to/brainalign/datasets)."
        )
    return root


@lru_cache(maxsize=4)
def _load_manifest(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _manifest() -> dict[str, Any]:
    return _load_manifest(str(_data_root() / _MANIFEST))


def _entry(name: str) -> dict[str, Any]:
    entries = {d["name"]: d for d in _manifest()["datasets"]}
    by_folder = {d["folder"]: d for d in _manifest()["datasets"]}
    if name in entries:
        return entries[name]
    if name in by_folder:
        return by_folder[name]
    raise ValueError(close_matches_message("bundled dataset", name, entries)
                     + " See brainalign.datasets.list_datasets().")


def dataset_path(name: str | None = None) -> Path:
    """The folder of the bundled data, or of one bundled dataset.

    The folder is ``$BRAINALIGN_DATA`` when that environment variable is set, else the copy
    installed with the package (``brainalign/_data/datasets``, from a wheel), else the
    ``datasets`` folder of the source tree brainalign runs from (checkout, editable install).

    Parameters
    ----------
    name : str, optional
        A dataset name from :func:`list_datasets` (``"kriegeskorte92"``, ``"haxby2001"``,
        ``"mne_audvis"``) or its folder name. None gives the root folder.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> from brainalign.datasets import dataset_path
    >>> (dataset_path("kriegeskorte92") / "SOURCE.md").is_file()
    True
    """
    root = _data_root()
    if name is None:
        return root
    path = root / _entry(name)["folder"]
    if not path.is_dir():
        raise FileNotFoundError(
            f"The folder of dataset {name!r} is missing: {path}. Restore it from the brainalign "
            "repository (git checkout datasets/) or point BRAINALIGN_DATA at a complete copy."
        )
    return path


def list_datasets() -> pd.DataFrame:
    """The bundled real datasets, one row each.

    Returns
    -------
    DataFrame
        Columns ``name``, ``loader`` (function of :mod:`brainalign.datasets`),
        ``description``, ``n_files``, ``size_mb``, ``citation`` (the primary reference) and
        ``citations`` (every reference to cite, a tuple of str; each SOURCE.md has them too).

    Examples
    --------
    >>> from brainalign.datasets import list_datasets
    >>> "kriegeskorte92" in set(list_datasets()["name"])
    True
    """
    rows = []
    for d in _manifest()["datasets"]:
        rows.append({
            "name": d["name"],
            "loader": d["loader"],
            "description": d["description"],
            "n_files": len(d["files"]),
            "size_mb": round(sum(f["bytes"] for f in d["files"]) / 1e6, 2),
            "citation": d["citation"][0],
            "citations": tuple(d["citation"]),
        })
    return pd.DataFrame(rows, columns=["name", "loader", "description", "n_files", "size_mb", "citation", "citations"])


def _citations(name: str) -> list[str]:
    """All references of a bundled dataset."""
    return list(_entry(name)["citation"])


def _verify(name: str) -> list[str]:
    """Files of a dataset whose size or sha256 differ from the manifest (empty when all match)."""
    folder = dataset_path(name)
    problems = []
    for f in _entry(name)["files"]:
        path = folder / f["path"]
        if not path.is_file():
            problems.append(f"{f['path']}: missing")
            continue
        data = path.read_bytes()
        if len(data) != f["bytes"]:
            problems.append(f"{f['path']}: {len(data)} bytes, manifest says {f['bytes']}")
        elif hashlib.sha256(data).hexdigest() != f["sha256"]:
            problems.append(f"{f['path']}: sha256 differs from the manifest")
    return problems
