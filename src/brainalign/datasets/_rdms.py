"""Read and write RDM files (.mat, .npz, .csv, rsatoolbox HDF5) as rsatoolbox ``RDMs``.

Pickle files are never loaded.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import check_option

__all__ = ["load_rdms", "save_rdms"]

_HDF5 = (".h5", ".hdf5")
_PICKLE = (".pkl", ".pickle")
_ALLOWED = [".mat", ".npz", ".csv", ".h5", ".hdf5"]


# --------------------------------------------------------------------------- helpers
def _n_from_condensed(m: int) -> int | None:
    """n such that m == n (n - 1) / 2, or None."""
    n = int(round((1 + np.sqrt(1 + 8 * m)) / 2))
    return n if n >= 2 and n * (n - 1) // 2 == m else None


def _condensed_to_square(vec: np.ndarray) -> np.ndarray:
    n = _n_from_condensed(vec.size)
    out = np.zeros((n, n), dtype=np.float64)
    iu = np.triu_indices(n, k=1)
    out[iu] = vec
    out[(iu[1], iu[0])] = vec
    return out


def _as_stack(arr: Any, what: str, *, matlab: bool) -> np.ndarray | None:
    """A (n_rdms, n, n) float stack from a square matrix, a stack or condensed vectors.

    Returns None when ``arr`` does not look like RDMs (so callers can skip unrelated
    variables of a .mat/.npz file). ``matlab`` chooses the (n, n, k) stacking convention.
    """
    arr = np.asarray(arr)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or arr.size < 1:
        return None
    arr = arr.astype(np.float64)
    if arr.ndim == 2 and arr.shape[0] == arr.shape[1] and arr.shape[0] > 1:
        return arr[None]
    if arr.ndim == 1 or (arr.ndim == 2 and 1 in arr.shape):
        vec = arr.ravel()
        return _condensed_to_square(vec)[None] if _n_from_condensed(vec.size) else None
    if arr.ndim == 2 and _n_from_condensed(arr.shape[1]):
        return np.stack([_condensed_to_square(row) for row in arr])
    if arr.ndim == 3:
        if matlab and arr.shape[0] == arr.shape[1]:
            return np.moveaxis(arr, 2, 0)
        if arr.shape[1] == arr.shape[2]:
            return arr
        if arr.shape[0] == arr.shape[1]:
            return np.moveaxis(arr, 2, 0)
    return None


def _mat_string(value: Any) -> str:
    arr = np.asarray(value)
    while arr.dtype == object and arr.size == 1:
        arr = np.asarray(arr.ravel()[0])
    if arr.dtype.kind in "US":
        return str(arr.ravel()[0]) if arr.size else ""
    return str(arr.ravel()[0]) if arr.size == 1 else str(arr)


def _struct_rdms(var: np.ndarray, key: str) -> tuple[list[np.ndarray], list[str]] | None:
    """RDMs from a MATLAB struct array with an ``RDM`` field (as in rsatoolbox_matlab files)."""
    fields = var.dtype.names or ()
    field = next((f for f in fields if f.lower() == "rdm"), None)
    if field is None:
        return None
    name_field = next((f for f in fields if f.lower() == "name"), None)
    mats, names = [], []
    for k, elem in enumerate(var.ravel(order="F")):
        stack = _as_stack(elem[field], f"{key}[{k}].{field}", matlab=True)
        if stack is None:
            raise ValueError(
                f"Element {k} of the struct array {key!r} has an {field!r} field of shape "
                f"{np.shape(elem[field])} that is neither a square matrix nor a condensed vector."
            )
        mats.extend(stack)
        label = _mat_string(elem[name_field]) if name_field else f"{key}[{k}]"
        names.extend([label] * len(stack))
    return mats, names


def _validate(stack: np.ndarray, names: list[str], path: Path) -> None:
    """Square, finite, symmetric, zero diagonal — with the offending values in the message."""
    for k, mat in enumerate(stack):
        label = f"RDM {k} ({names[k]!r}) of {path.name}"
        if mat.ndim != 2 or mat.shape[0] != mat.shape[1]:
            raise ValueError(f"{label} is not square: shape {mat.shape}. An RDM is (n_conditions, n_conditions).")
        bad = ~np.isfinite(mat)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ValueError(
                f"{label} contains {int(bad.sum())} NaN/inf values (first at ({i}, {j})). "
                "Fill or remove the missing conditions before loading."
            )
        scale = max(float(np.abs(mat).max()), 1.0)
        asym = np.abs(mat - mat.T)
        if asym.max() > 1e-5 * scale:
            i, j = np.unravel_index(int(asym.argmax()), asym.shape)
            raise ValueError(
                f"{label} is not symmetric: max |d[i, j] - d[j, i]| = {asym.max():.6g} at "
                f"({i}, {j}). Symmetrise it ((D + D.T) / 2) if the asymmetry is numerical noise."
            )
        diag = np.abs(np.diag(mat))
        if diag.max() > 1e-5 * scale:
            i = int(diag.argmax())
            raise ValueError(
                f"{label} has a non-zero diagonal: max |d[i, i]| = {diag.max():.6g} at i={i}. "
                "A dissimilarity matrix has zeros on its diagonal; is this a similarity matrix "
                "(convert with 1 - S) or a matrix with a header row/column?"
            )


# --------------------------------------------------------------------------- readers
def _read_mat(path: Path, variable: str | None) -> tuple[np.ndarray, list[str], dict]:
    import scipy.io

    try:
        raw = scipy.io.loadmat(str(path))
    except Exception as err:  # scipy raises ValueError, TypeError, MatReadError... on a bad file
        raise ValueError(
            f"Could not read {path} as a MATLAB .mat file ({type(err).__name__}: {err}). Expected a file "
            "written by MATLAB's save (v4-v7.2) or scipy.io.savemat; a v7.3 file is HDF5 — "
            "re-save it with save(..., '-v7') or convert it to .npz."
        ) from None
    content = {k: v for k, v in raw.items() if not k.startswith("__")}
    keys = _pick_keys(content, variable, path)
    found: dict[str, tuple[list, list, bool]] = {}
    for key in keys:
        var = content[key]
        if var.dtype.names:
            got = _struct_rdms(var, key)
            if got is not None:
                found[key] = (*got, False)
            continue
        stack = _as_stack(var, key, matlab=True)
        if stack is not None:
            labels = [key] if len(stack) == 1 else [f"{key}[{i}]" for i in range(len(stack))]
            found[key] = (list(stack), labels, _is_vector(var))
        elif variable is not None:
            raise ValueError(
                f"Variable {key!r} of {path.name} (shape {var.shape}, dtype {var.dtype}) holds no "
                "RDM: expected a square matrix, an (n, n, k) stack, condensed vectors or a struct "
                "array with an 'RDM' field."
            )
    mats, names = _keep_rdm_variables(found, content, variable, path)
    return _stack_same_size(mats, names, path), names, {}


def _is_vector(arr: Any) -> bool:
    arr = np.asarray(arr)
    return arr.ndim == 1 or (arr.ndim == 2 and 1 in arr.shape)


def _keep_rdm_variables(found: dict, content: dict, variable: str | None, path: Path) -> tuple[list, list]:
    """The RDMs of a file, skipping what only looks like one.

    Square matrices, stacks and struct arrays with an ``RDM`` field are RDMs. A plain vector
    counts as a condensed RDM only when it is named like one (``rdm`` in its name) or when the
    file holds nothing else: a vector of labels or onsets beside a matrix (a length that
    happens to be n (n - 1) / 2) is skipped. Every skipped variable is named in one warning.
    """
    if variable is not None:
        keep = list(found)
    else:
        has_matrix = any(not is_vec for _, _, is_vec in found.values())
        keep = [k for k, (_, _, is_vec) in found.items() if not (is_vec and has_matrix and "rdm" not in k.lower())]
        skipped = [k for k in content if k not in keep]
        if skipped and keep:
            detail = ", ".join(f"{k} (shape {np.shape(content[k])})" for k in skipped[:10])
            warnings.warn(
                f"{path.name}: read the RDMs in {keep}; skipped {len(skipped)} variable(s) that are not RDMs "
                f"(or are vectors beside matrices): {detail}. Pass variable= to read one of them as an RDM.",
                stacklevel=4,
            )
    mats = [m for k in keep for m in found[k][0]]
    names = [n for k in keep for n in found[k][1]]
    return mats, names


def _read_npz(path: Path, variable: str | None) -> tuple[np.ndarray, list[str], dict]:
    try:
        npz = np.load(path, allow_pickle=False)
    except ValueError:  # a pickle renamed to .npz (numpy's message suggests allow_pickle)
        raise ValueError(
            f"{path} is not an .npz archive but a pickle (or another non-zip file); brainalign never "
            "loads pickles (they can run arbitrary code). Re-save the arrays with numpy.savez or "
            "brainalign.datasets.save_rdms in a trusted session."
        ) from None
    except Exception as err:  # zipfile.BadZipFile, EOFError, OSError...
        raise ValueError(f"Could not read {path} as an .npz archive ({type(err).__name__}: {err}); "
                         "is the file truncated or of another format?") from None
    if not hasattr(npz, "files"):  # np.load returned a plain array: an .npy file renamed .npz
        raise ValueError(f"{path} holds a single .npy array, not an .npz archive; rename it .npy and "
                         "load it with numpy, or save it with numpy.savez.")
    with npz:
        content = {}
        for key in npz.files:
            try:
                content[key] = npz[key]
            except ValueError as err:  # object arrays need pickle, which is never used
                raise ValueError(
                    f"Array {key!r} of {path.name} is an object array, which numpy can only read by "
                    "unpickling; brainalign never loads pickles. Save plain numeric/string arrays "
                    f"(e.g. with brainalign.datasets.save_rdms). ({err})"
                ) from None
    if "dissimilarities" in content and variable is None:  # written by save_rdms
        stack = np.asarray(content.pop("dissimilarities"), dtype=np.float64)
        extra = {"dissimilarity_measure": str(content.pop("dissimilarity_measure", "")) or None,
                 "rdm_descriptors": {}, "pattern_descriptors": {}}
        for key, val in content.items():
            for prefix, target in (("rdm__", "rdm_descriptors"), ("pattern__", "pattern_descriptors")):
                if key.startswith(prefix):
                    extra[target][key[len(prefix):]] = val
        names = [str(v) for v in extra["rdm_descriptors"].get("name", [f"rdm{i}" for i in range(len(stack))])]
        return stack, names, extra
    keys = _pick_keys(content, variable, path)
    found: dict[str, tuple[list, list, bool]] = {}
    for key in keys:
        stack = _as_stack(content[key], key, matlab=False)
        if stack is None:
            if variable is not None:
                raise ValueError(
                    f"Array {key!r} of {path.name} has shape {content[key].shape}; expected a square "
                    "matrix (n, n), a stack (k, n, n) or condensed vectors."
                )
            continue
        labels = [key] if len(stack) == 1 else [f"{key}[{i}]" for i in range(len(stack))]
        found[key] = (list(stack), labels, _is_vector(content[key]))
    mats, names = _keep_rdm_variables(found, content, variable, path)
    return _stack_same_size(mats, names, path), names, {}


def _read_csv(path: Path) -> tuple[np.ndarray, list[str], dict]:
    import pandas as pd

    try:
        raw = pd.read_csv(path, header=None, dtype=str, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ValueError(f"The CSV file {path} is empty; expected one n x n matrix.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"Could not parse {path} as a CSV matrix ({type(err).__name__}: {err}).") from None
    numeric = raw.apply(pd.to_numeric, errors="coerce")
    labels = None
    if numeric.iloc[0].isna().any() and len(raw) > 1:  # a header row of stimulus names
        header = raw.iloc[0].tolist()
        raw, numeric = raw.iloc[1:], numeric.iloc[1:]
        labels = header
    if numeric.iloc[:, 0].isna().all() and raw.shape[1] > 1:  # a first column of row names
        row_names = raw.iloc[:, 0].tolist()
        numeric = numeric.iloc[:, 1:]
        labels = labels[1:] if labels is not None else row_names
    mat = numeric.to_numpy(dtype=np.float64)
    if mat.shape[0] != mat.shape[1]:
        raise ValueError(
            f"The CSV file {path.name} holds a {mat.shape[0]} x {mat.shape[1]} table, not a square "
            "matrix. Give one n x n matrix (optionally with a header row of stimulus names)."
        )
    extra: dict = {"pattern_descriptors": {}}
    if labels is not None:
        extra["pattern_descriptors"]["stimulus"] = np.asarray([str(s) for s in labels])
    return mat[None], [path.stem], extra


def _pick_keys(content: dict, variable: str | None, path: Path) -> list[str]:
    if variable is None:
        return list(content)
    if variable not in content:
        raise KeyError(f"{path.name} has no variable {variable!r}; it has {sorted(content)}.")
    return [variable]


def _stack_same_size(mats: list[np.ndarray], names: list[str], path: Path) -> np.ndarray:
    if not mats:
        raise ValueError(
            f"No RDM found in {path.name}: no variable is a square matrix, an RDM stack, a condensed "
            "vector or a struct array with an 'RDM' field. Use variable= to name the one to read."
        )
    sizes = sorted({m.shape[0] for m in mats})
    if len(sizes) > 1:
        by_size = {s: [n for n, m in zip(names, mats) if m.shape[0] == s][:5] for s in sizes}
        raise ValueError(
            f"{path.name} holds RDMs of different sizes {by_size}; pass variable= to read one of them."
        )
    return np.stack(mats)


# --------------------------------------------------------------------------- public
def load_rdms(path: str | os.PathLike, *, descriptor: str | None = None, variable: str | None = None,
              dissimilarity_measure: str | None = None):
    """Load representational dissimilarity matrices from a file as rsatoolbox ``RDMs``.

    Parameters
    ----------
    path : str or path-like
        ``.mat`` (a square matrix, an ``(n, n, k)`` stack, condensed upper-triangle vectors,
        or struct arrays with an ``RDM`` field and optional ``name`` field, as in the
        rsatoolbox_matlab files), ``.npz`` (arrays ``(n, n)``, ``(k, n, n)`` or condensed; or a
        file written by :func:`save_rdms`), ``.csv`` (one square matrix, optionally with a
        header row — and/or first column — of stimulus names), or rsatoolbox HDF5
        (``.h5``/``.hdf5``). Pickle files are refused.
    descriptor : str, optional
        Name of the rdm descriptor that receives each RDM's label (struct ``name`` field,
        variable name or npz key). Default ``"name"``.
    variable : str, optional
        Read only this variable of a ``.mat``/``.npz`` file (default: every variable that
        holds RDMs; they must have the same number of conditions).
    dissimilarity_measure : str, optional
        Stored on the RDMs (e.g. ``"correlation"``).

    Returns
    -------
    rsatoolbox.rdm.RDMs
        ``n_rdm`` RDMs of ``n_cond`` conditions; CSV header names become the pattern
        descriptor ``stimulus``.

    Raises
    ------
    ValueError
        A matrix that is not square, not symmetric (the message gives the largest asymmetry),
        has a non-zero diagonal or NaN values; an unsupported or pickle file.

    Examples
    --------
    >>> from brainalign.datasets import dataset_path, load_rdms
    >>> rdms = load_rdms(dataset_path("kriegeskorte92") / "92_brainRDMs.mat")
    >>> rdms.n_rdm, rdms.n_cond
    (8, 92)
    """
    from rsatoolbox.rdm import RDMs, load_rdm

    path = Path(path)
    ext = "".join(path.suffixes[-1:]).lower()
    if ext in _PICKLE:
        raise ValueError(
            f"{path.name} is a pickle file; brainalign never loads pickles (they can run arbitrary "
            "code). Re-save the RDMs with rdms.save(path, file_type='hdf5') in a trusted session."
        )
    check_option("file extension", ext, _ALLOWED)
    if not path.is_file():
        raise FileNotFoundError(f"RDM file not found: {path}")
    descriptor = descriptor or "name"
    if ext in _HDF5:
        try:
            rdms = load_rdm(str(path), file_type="hdf5")
        except Exception as err:  # OSError from h5py on a non-HDF5 file, KeyError on another layout
            raise ValueError(
                f"Could not read {path} as rsatoolbox RDMs in HDF5 ({type(err).__name__}: {err}). Expected a "
                "file written by rsatoolbox's RDMs.save(..., file_type='hdf5') or brainalign's save_rdms."
            ) from None
        names = [str(v) for v in rdms.rdm_descriptors.get(descriptor, range(rdms.n_rdm))]
        _validate(rdms.get_matrices(), names, path)
        if dissimilarity_measure is not None:
            rdms.dissimilarity_measure = dissimilarity_measure
        return rdms
    if ext == ".mat":
        stack, names, extra = _read_mat(path, variable)
    elif ext == ".npz":
        stack, names, extra = _read_npz(path, variable)
    else:
        stack, names, extra = _read_csv(path)
    _validate(stack, names, path)
    rdm_desc = dict(extra.get("rdm_descriptors", {}))
    rdm_desc.setdefault(descriptor, np.asarray(names))
    pattern_desc = extra.get("pattern_descriptors") or None
    measure = dissimilarity_measure or extra.get("dissimilarity_measure")
    return RDMs(stack, dissimilarity_measure=measure, rdm_descriptors=rdm_desc,
                pattern_descriptors=pattern_desc)


def _plain(values: Any, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == object:
        try:
            arr = arr.astype(float) if all(isinstance(v, (int, float, np.number)) for v in arr) else arr.astype(str)
        except (TypeError, ValueError):
            arr = arr.astype(str)
    return arr


def save_rdms(rdms, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write rsatoolbox ``RDMs`` to ``.npz`` or rsatoolbox HDF5 (``.h5``/``.hdf5``).

    The npz file holds ``dissimilarities`` (n_rdm, n_cond, n_cond), ``dissimilarity_measure``,
    and one array per rdm descriptor (``rdm__<name>``) and pattern descriptor
    (``pattern__<name>``), with object values written as strings (no pickle).
    :func:`load_rdms` reads both formats back.

    Parameters
    ----------
    rdms : rsatoolbox.rdm.RDMs
    path : str or path-like
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import numpy as np, rsatoolbox, tempfile, pathlib
    >>> d = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0.]])
    >>> out = save_rdms(rsatoolbox.rdm.RDMs(d[None]), pathlib.Path(tempfile.mkdtemp()) / "r.npz")
    >>> load_rdms(out).n_cond
    3
    """
    from rsatoolbox.rdm import RDMs

    if not isinstance(rdms, RDMs):
        raise TypeError(f"save_rdms needs an rsatoolbox.rdm.RDMs object, got {type(rdms).__name__}.")
    path = Path(path)
    ext = path.suffix.lower()
    check_option("file extension", ext, [".npz", ".h5", ".hdf5"])
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    # write beside the target, then replace it: a failure never leaves the old file deleted
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{ext}")
    try:
        if ext in _HDF5:
            rdms.save(str(tmp), file_type="hdf5", overwrite=True)
        else:
            arrays = {"dissimilarities": rdms.get_matrices(),
                      "dissimilarity_measure": np.asarray(rdms.dissimilarity_measure or "")}
            for key, val in rdms.rdm_descriptors.items():
                arrays[f"rdm__{key}"] = _plain(val, key)
            for key, val in rdms.pattern_descriptors.items():
                arrays[f"pattern__{key}"] = _plain(val, key)
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
        os.replace(tmp, path)
    except Exception as err:
        tmp.unlink(missing_ok=True)
        kept = "the existing file is unchanged" if path.exists() else "nothing was written"
        hint = (" rsatoolbox's HDF5 writer stores ASCII strings only; save to a .npz path to keep non-ASCII "
                "descriptors." if isinstance(err, UnicodeEncodeError) else "")
        raise OSError(f"Writing {path} failed ({type(err).__name__}: {err}); {kept}.{hint}") from err
    return path
