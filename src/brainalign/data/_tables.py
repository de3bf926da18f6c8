"""Table helpers shared by the containers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._utils import as_list


# --------------------------------------------------------------------------- helpers
def _as_table(table: Any, n: int, what: str, default_name: str | None = None) -> pd.DataFrame:
    """A DataFrame of ``n`` rows (fresh RangeIndex); default one with a name column."""
    if table is None:
        df = pd.DataFrame(index=pd.RangeIndex(n))
        if default_name is not None:
            df[default_name[0]] = [f"{default_name[1]}{i}" for i in range(n)]
        return df
    df = pd.DataFrame(table).reset_index(drop=True)
    if len(df) != n:
        raise ValueError(
            f"The {what} table has {len(df)} rows but the data have {n} {what}; "
            f"give one row per {what.removesuffix('s')}."
        )
    return df


def _match(series: pd.Series, value: Any) -> np.ndarray:
    """Boolean mask of rows of ``series`` equal to / in / selected by ``value``."""
    if callable(value):
        out = np.asarray(value(series), dtype=bool)
        if out.shape != (len(series),):
            raise ValueError(
                f"A selector function must return one boolean per row ({len(series)}), "
                f"got shape {out.shape}."
            )
        return out
    values = as_list(value)
    return series.isin(values).to_numpy()


def _index_or_slice(mask: np.ndarray) -> slice | np.ndarray:
    """A slice when the selected rows are contiguous (numpy then returns a view, no copy)."""
    idx = np.flatnonzero(mask)
    if len(idx) and idx[-1] - idx[0] + 1 == len(idx):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


