"""Small shared helpers: option checks that teach, the package logger, Bunch, progress bars.

Everything here is light (numpy only) so that ``import brainalign`` stays fast.
"""

from __future__ import annotations

import difflib
import logging
from typing import Any, Iterable

import numpy as np

logger = logging.getLogger("brainalign")


class Bunch(dict):
    """A dict whose keys are also attributes (as in scikit-learn and nilearn).

    Examples
    --------
    >>> b = Bunch(brain=1, stimuli=2)
    >>> b.brain, b["stimuli"]
    (1, 2)
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(kwargs)

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(
                f"This Bunch has no key {key!r}; available keys: {sorted(self)}"
            ) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __dir__(self) -> list[str]:
        return list(self.keys()) + list(super().__dir__())


def check_option(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise a ValueError that lists them.

    The message follows MNE's ``_check_option``: it names the parameter, the allowed
    values, what was received, and close matches for a typo.
    """
    allowed = list(allowed)
    if value in allowed:
        return value
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"Invalid value for the {name!r} parameter. Allowed values are "
        f"{', '.join(repr(a) for a in allowed)}, but got {value!r} instead.{hint}"
    )


def close_matches_message(what: str, value: Any, available: Iterable[Any]) -> str:
    """Message for an unknown name, listing close matches (or the first available names)."""
    available = [str(a) for a in available]
    close = difflib.get_close_matches(str(value), available, n=5, cutoff=0.4)
    if close:
        hint = f"Close matches: {close}."
    else:
        shown = available[:20]
        more = f" (and {len(available) - 20} more)" if len(available) > 20 else ""
        hint = f"Available: {shown}{more}."
    return f"Unknown {what} {value!r}. {hint}"


def check_finite(array: np.ndarray, name: str, *, hint: str = "") -> None:
    """Raise a ValueError naming how many and where non-finite values are in ``array``."""
    arr = np.asarray(array)
    if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.complexfloating):
        return
    finite = np.isfinite(arr)
    if finite.all():
        return
    bad = np.argwhere(~finite)
    n_nan = int(np.isnan(arr).sum())
    n_inf = int(np.isinf(arr).sum())
    first = tuple(int(i) for i in bad[0])
    raise ValueError(
        f"{name} contains {n_nan} NaN and {n_inf} inf values (first at index {first}, "
        f"array shape {arr.shape}). {hint or 'Remove or impute them before this step.'}"
    )


def progress_bar(iterable: Iterable, *, verbose: bool | int, total: int | None = None, desc: str = ""):
    """Wrap ``iterable`` in a tqdm bar when ``verbose`` is true (tqdm imported lazily)."""
    if not verbose:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


def check_n_jobs(n_jobs: Any) -> int:
    """The number of workers that ``n_jobs`` asks for, with joblib's semantics.

    ``None`` or 1: no parallelism; ``-1``: all cores; ``-2``: all but one; ``k > 1``: k workers.
    """
    if isinstance(n_jobs, (bool, np.bool_)) or not (n_jobs is None or isinstance(n_jobs, (int, np.integer))):
        raise TypeError(f"n_jobs must be None or an int (-1 = all cores); got {type(n_jobs).__name__} {n_jobs!r}.")
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning; use n_jobs=1 (no parallelism) or -1 (all cores).")
    from joblib import effective_n_jobs

    return int(effective_n_jobs(n_jobs))


def parallel_map(fn, items: Iterable, *, n_jobs: Any = 1, verbose: bool | int = False, desc: str = ""):
    """Yield ``fn(item)`` for each item, in order, on ``n_jobs`` joblib threads.

    The work this package parallelizes is numpy / torch kernels that release the GIL, so
    threads avoid copying the (often large) shared arrays into worker processes.
    """
    items = list(items)
    n_workers = min(check_n_jobs(n_jobs), max(len(items), 1))
    if n_workers == 1:
        results = map(fn, items)
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_workers, prefer="threads", return_as="generator")(
            delayed(fn)(item) for item in items
        )
    yield from progress_bar(results, verbose=verbose, total=len(items), desc=desc)


def check_random_state(random_state: Any, name: str = "random_state") -> np.random.Generator:
    """Turn ``random_state`` (None, a non-negative int, a Generator or a RandomState) into a Generator.

    The one place where the package's randomness is created: every public function that
    draws takes ``random_state`` and passes it through here.

    Examples
    --------
    >>> int(check_random_state(0).integers(10)) == int(check_random_state(0).integers(10))
    True
    """
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, (bool, np.bool_)) or not isinstance(random_state, (int, np.integer)):
        raise TypeError(
            f"{name} must be None, a non-negative int or a numpy Generator; got "
            f"{type(random_state).__name__} {random_state!r}."
        )
    if random_state < 0:
        raise ValueError(f"{name} must be a non-negative int; got {random_state}. Use e.g. {name}=0.")
    return np.random.default_rng(int(random_state))


def as_list(value: Any) -> list:
    """``None`` -> ``[]``; scalars and strings -> ``[value]``; other iterables -> ``list(value)``."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or np.isscalar(value):
        return [value]
    return list(value)
