"""One description per shared parameter, pasted into docstrings by :func:`fill_doc`.

The same idea as MNE's ``mne.utils.docs.docdict`` and nilearn's ``fill_doc``: a parameter
that several rooms take (``random_state``, ``n_resamples``, ``n_jobs``...) is described once
here, so its name and its wording are the same everywhere. A docstring names the entry as
``%(random_state)s`` on a line of its own, indented like the other parameters.
"""

from __future__ import annotations

import re
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)

docdict: dict[str, str] = {
    "random_state": """random_state : int, numpy.random.Generator or None
    Source of randomness: an int seeds a new generator (the same int, the same draws), a
    Generator is used as is, None draws fresh entropy.""",
    "n_resamples": """n_resamples : int
    Number of bootstrap replicates (resamples drawn with replacement).""",
    "n_permutations": """n_permutations : int
    Number of permutations (or circular shifts) of the null distribution; the smallest
    p-value that can be reported is ``1 / (n_permutations + 1)``.""",
    "n_jobs": """n_jobs : int or None
    Number of parallel workers, with joblib's meaning: None or 1 runs in this thread,
    -1 uses every core, -2 all but one.""",
    "verbose": """verbose : bool or int
    Show progress bars and log progress at INFO level (silent by default; the
    ``brainalign`` command turns it on).""",
    "ci": """ci : float
    Coverage of the percentile bootstrap interval, e.g. 0.95 for the 2.5th and 97.5th
    percentiles.""",
    "device": """device : "auto", str or torch.device
    Where the computation runs: "auto" takes the device of torch inputs, else CUDA when
    available, else the CPU; "cpu" stays on the CPU.""",
}


def fill_doc(obj: F) -> F:
    """Replace each ``%(name)s`` line of ``obj.__doc__`` by ``docdict[name]``, indented alike.

    Examples
    --------
    >>> @fill_doc
    ... def f(random_state=None):
    ...     '''Parameters
    ...     ----------
    ...     %(random_state)s
    ...     '''
    >>> "an int seeds a new generator" in f.__doc__
    True
    """
    doc = obj.__doc__
    if not doc:
        return obj

    def paste(match: re.Match) -> str:
        indent, key = match.group(1), match.group(2)
        if key not in docdict:
            raise KeyError(f"fill_doc: {obj.__qualname__} names %({key})s, which docdict lacks; "
                           f"entries: {sorted(docdict)}.")
        return "\n".join(indent + line if line else line for line in docdict[key].splitlines())

    obj.__doc__ = re.sub(r"^([ \t]*)%\((\w+)\)s[ \t]*$", paste, doc, flags=re.MULTILINE)
    return obj
