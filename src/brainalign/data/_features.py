"""Features: layerwise representations of stimulus items."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._utils import as_list
from ._tables import _as_table


# --------------------------------------------------------------------------- Features
class Features:
    """Layerwise representations of a set of stimulus items.

    Parameters
    ----------
    layers : mapping of str to array of shape (n_items, n_features)
        In the order the layers run in the model. Arrays may be memory-maps (feature store).
        With ``pooling="none"`` an array may have more axes, ``(n_items, n_tokens, n_features)``.
    items : sequence of length n_items
        The stimulus id of each row.
    item_table : DataFrame, optional
        One row per item (``onset``, ``duration``, ``run``...), e.g. word timings.
    provenance : dict, optional
        ``model_id``, ``weights_hash``, ``pooling``, ``context``, versions...

    Examples
    --------
    >>> import numpy as np
    >>> f = Features({"l0": np.zeros((3, 2)), "l1": np.ones((3, 4))}, items=["a", "b", "c"])
    >>> f.layer_names, f["l1"].shape
    (['l0', 'l1'], (3, 4))
    """

    def __init__(self, layers: Mapping[str, Any], *, items: Iterable[Any], item_table: Any = None,
                 provenance: Mapping[str, Any] | None = None) -> None:
        self._items = list(items)
        n = len(self._items)
        if len(set(map(str, self._items))) != n:
            raise ValueError("Feature item ids must be unique.")
        self._layers: dict[str, np.ndarray] = {}
        for name, arr in layers.items():
            if not isinstance(arr, np.ndarray):
                arr = np.asarray(arr)
            if arr.ndim < 2 or arr.shape[0] != n:
                raise ValueError(
                    f"Layer {name!r} has shape {arr.shape}; it needs (n_items, n_features) with n_items={n}."
                )
            self._layers[str(name)] = arr
        if not self._layers:
            raise ValueError("Features need at least one layer.")
        self.item_table = _as_table(item_table, n, "items") if item_table is not None else None
        self.provenance = dict(provenance or {})

    @property
    def layer_names(self) -> list[str]:
        return list(self._layers)

    @property
    def items(self) -> list:
        """Stimulus id of each row."""
        return list(self._items)

    @property
    def n_items(self) -> int:
        return len(self._items)

    @property
    def model_id(self) -> str:
        return str(self.provenance.get("model_id", "model"))

    def __getitem__(self, key: str | int) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self._layers[self.layer_names[key]]
        if key not in self._layers:
            from .._utils import close_matches_message

            raise KeyError(close_matches_message("layer", key, self._layers))
        return self._layers[key]

    def __contains__(self, key: object) -> bool:
        return key in self._layers

    def __iter__(self):
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def __repr__(self) -> str:
        dims = sorted({a.shape[-1] for a in self._layers.values()})
        return (f"<Features model={self.model_id!r}: {len(self)} layers x {self.n_items} items, "
                f"n_features in {dims}>")

    def select(self, *, layers: Iterable[str] | None = None, items: Iterable[Any] | None = None) -> Features:
        """A new Features with a subset/reordering of layers and/or items (by id)."""
        names = self.layer_names if layers is None else [self._check_layer(n) for n in as_list(layers)]
        idx: Any = slice(None)
        new_items = self._items
        if items is not None:
            new_items = list(items)
            pos = pd.Index(pd.Series(self._items, dtype=object).astype(str)).get_indexer(
                pd.Series(new_items, dtype=object).astype(str))
            if (pos < 0).any():
                missing = [i for i, p in zip(new_items, pos) if p < 0][:10]
                raise KeyError(f"Items {missing} are not in these features.")
            idx = pos
        table = None if self.item_table is None else self.item_table.iloc[idx]
        return Features({n: self._layers[n][idx] for n in names}, items=new_items, item_table=table,
                        provenance=self.provenance)

    def _check_layer(self, name: str | int) -> str:
        if isinstance(name, (int, np.integer)):
            return self.layer_names[name]
        self[name]
        return name

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> Features:
        """Apply ``fn`` to every layer array (e.g. a PCA), keeping items and provenance."""
        return Features({n: fn(a) for n, a in self._layers.items()}, items=self._items,
                        item_table=self.item_table, provenance=self.provenance)
