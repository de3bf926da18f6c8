"""The shared vocabulary helpers: random_state, n_jobs, the parameter-doc dictionary."""

import numpy as np
import pytest

from brainalign._docs import docdict, fill_doc
from brainalign._utils import check_n_jobs, check_random_state, parallel_map


def test_check_random_state():
    assert check_random_state(3).random() == check_random_state(3).random()
    gen = np.random.default_rng(1)
    assert check_random_state(gen) is gen
    assert isinstance(check_random_state(None), np.random.Generator)
    assert isinstance(check_random_state(np.random.RandomState(0)), np.random.Generator)
    with pytest.raises(ValueError, match="random_state must be a non-negative int; got -1"):
        check_random_state(-1)
    with pytest.raises(TypeError, match="random_state must be None, a non-negative int .* got str '0'"):
        check_random_state("0")
    with pytest.raises(TypeError, match="got float 1.5"):
        check_random_state(1.5)


def test_check_n_jobs_joblib_semantics():
    import os

    assert check_n_jobs(1) == 1 and check_n_jobs(None) == 1
    assert check_n_jobs(-1) == os.cpu_count()
    with pytest.raises(ValueError, match="n_jobs == 0 has no meaning"):
        check_n_jobs(0)
    with pytest.raises(TypeError, match="n_jobs must be None or an int"):
        check_n_jobs(2.5)


@pytest.mark.parametrize("n_jobs", [1, 2, -1])
def test_parallel_map_keeps_order(n_jobs):
    assert list(parallel_map(lambda x: x * x, range(7), n_jobs=n_jobs)) == [x * x for x in range(7)]


def test_fill_doc_pastes_indented_and_refuses_unknown_keys():
    def f():
        """Do it.

        Parameters
        ----------
        %(n_jobs)s
        """

    doc = fill_doc(f).__doc__
    first = docdict["n_jobs"].splitlines()
    assert f"        {first[0]}" in doc and f"        {first[1]}" in doc and "%(" not in doc

    def g():
        """%(nope)s"""

    with pytest.raises(KeyError, match="names %\\(nope\\)s, which docdict lacks"):
        fill_doc(g)


def test_no_unfilled_docstrings():
    """Every public docstring that names a docdict entry went through fill_doc."""
    import importlib
    import inspect

    for room in ("alignment", "encoding", "features", "rsa", "similarity", "stats", "topology", "plotting", "datasets"):
        mod = importlib.import_module(f"brainalign.{room}")
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            doc = inspect.getdoc(obj) or ""
            assert "%(" not in doc, f"brainalign.{room}.{name} has an unfilled %(...)s in its docstring"
