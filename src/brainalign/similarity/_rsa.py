"""RSA and topological RSA through the similarity entry point: thin calls to the public
functions of ``brainalign.rsa`` (``calc_rdm``, ``compare``, ``bootstrap_pairs``, ``take_pairs``)
and ``brainalign.topology`` (``trsa``, ``geotopological``, ``geodesic``); no maths here.

Every matrix's RDM (and its geo-topological transform) is computed once; all pairs are one
``compare`` call. For the bootstrap, the RDMs of the full data are subsampled with
``rsa.bootstrap_pairs`` (pairs of a stimulus with its own copy are missing, not zero: the
convention of ``rsa.bootstrap`` and rsatoolbox); for the permutation test the stimuli of the
RDM are relabelled.
"""

from __future__ import annotations

import numpy as np

from .._utils import check_option
from ._prepare import Rep

TRSA_KEYS = ("low", "up", "geodesic")


def _rdm_vector(rep: Rep, rdm_method: str) -> np.ndarray:
    from .. import rsa

    def run():
        v = np.asarray(rsa.calc_rdm(rep.x, method=rdm_method, device=rep.x.device).get_vectors(), dtype=np.float64)[0]
        if not np.isfinite(v).all():
            raise ValueError(f"The {rdm_method!r} RDM of {rep.name} has {int((~np.isfinite(v)).sum())} undefined "
                             "dissimilarities (e.g. a stimulus whose pattern is constant across features, for "
                             "the correlation distance). Use rdm_method='euclidean' or drop those stimuli.")
        return v

    return rep.cached(("rdm", rdm_method), run)


def transform(vectors: np.ndarray, low: float, up: float, geodesic: bool) -> np.ndarray:
    """Geo-topological transform of (k, n_pairs) RDM vectors (topology.trsa's own choice)."""
    from .. import topology

    if geodesic:
        out = topology.geodesic(vectors, low=low, up=up, rank=True, disconnected=1.0)
    else:
        out = topology.geotopological(vectors, low=low, up=up, rank=True)
    return np.asarray(out.get_vectors(), dtype=np.float64)


def vectors(reps: list[Rep], *, rdm_method: str = "correlation", topological: bool = False, low: float = 0.25,
            up: float = 0.75, geodesic: bool = False) -> np.ndarray:
    """(k, n_pairs) RDM vectors of ``reps`` (transformed for tRSA)."""
    from .. import rsa

    check_option("rdm_method", rdm_method, [m for m in rsa.RDM_METHODS if m != "crossnobis"])
    v = np.stack([_rdm_vector(r, rdm_method) for r in reps])
    return transform(v, low, up, geodesic) if topological else v


def compare_vectors(va: np.ndarray, vb: np.ndarray, compare: str) -> np.ndarray:
    from .. import rsa

    return np.asarray(rsa.compare(va, vb, method=compare), dtype=np.float64)


def grid(A: list[Rep], B: list[Rep], *, same: bool, rdm_method: str = "correlation", compare: str = "corr",
         topological: bool = False, low: float = 0.25, up: float = 0.75, geodesic: bool = False) -> np.ndarray:
    """RSA / tRSA similarity of every pair: (n_a, n_b)."""
    from .. import rsa, topology

    check_option("compare", compare, rsa.COMPARE_METHODS)
    if A[0].n < 3:
        raise ValueError(f"RSA needs at least 3 stimuli (an RDM of 2 has a single dissimilarity); got {A[0].n}.")
    va = vectors(A, rdm_method=rdm_method)
    vb = va if same else vectors(B, rdm_method=rdm_method)
    if topological:
        return np.asarray(topology.trsa(va, vb, low=low, up=up, method=compare, geodesic=geodesic), dtype=np.float64)
    return compare_vectors(va, vb, compare)


def bootstrap_vectors(v: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """RDM vectors of a bootstrap sample of stimuli (NaN where a stimulus meets its own copy)."""
    from .. import rsa

    n = int(round((1 + np.sqrt(1 + 8 * v.shape[1])) / 2))
    return rsa.take_pairs(v, rsa.bootstrap_pairs(n, idx))


def permute_vectors(v: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """RDM vectors with the stimuli relabelled by ``perm``."""
    n = len(perm)
    iu = np.triu_indices(n, 1)
    mats = np.zeros((v.shape[0], n, n))
    mats[:, iu[0], iu[1]] = v
    mats = mats + mats.transpose(0, 2, 1)
    return mats[:, perm][:, :, perm][:, iu[0], iu[1]]
