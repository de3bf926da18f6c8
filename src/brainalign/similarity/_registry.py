"""The registry of similarity measures: one spec per name, and the one raw -> score mapping.

Every measure has one entry in :data:`MEASURES`: what it computes (``kind``: a similarity,
higher = more alike, or a distance, lower = more alike), its citation, range, whether it is a
metric, what it is invariant to, what it needs (e.g. repeated responses), its default
parameters and how its raw value becomes a higher-is-better ``score`` (:func:`to_score`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._utils import close_matches_message

__all__ = ["Measure", "MEASURES", "to_score", "get_measure"]

#: How a raw value becomes a higher-is-better score (the one place this is defined):
#: ``"identity"`` for similarities; ``"cos"`` for angular distances (the score is the cosine
#: of the angle: the similarity whose arccos the distance is); ``"negative"`` for unbounded
#: distances (the score is ``-distance``: higher is better, ranks and p-values are kept, but it
#: is not a fraction, so it cannot be divided by a ceiling).
SCORE_TRANSFORMS = ("identity", "cos", "negative")
#: Parameters that define which measure a name is (set by the name, never by keyword).
STRUCTURAL_PARAMETERS = ("distance", "cycle", "ground", "angular", "model", "summary", "kernel")


@dataclass(frozen=True)
class Measure:
    """Specification of one similarity measure (an entry of :data:`MEASURES`).

    Attributes
    ----------
    name : str
        The registry name (``method=`` of :func:`~brainalign.similarity.compare`).
    family : str
        The implementation it dispatches to (``"cka"``, ``"procrustes"``, ...).
    kind : {"similarity", "distance"}
        Higher raw values mean more similar (``"similarity"``) or less (``"distance"``).
    citation : str
        The paper that defines it.
    range : tuple of float
        Range of the raw value (``inf`` for unbounded).
    metric : bool
        Whether it satisfies the axioms of a (pseudo-)metric, triangle inequality included.
    symmetric : bool
        Whether ``compare(X, Y) == compare(Y, X)``.
    invariances : tuple of str
        Transforms of the features of either input that leave the value unchanged: ``"orthogonal"``
        (rotations / reflections), ``"isotropic_scaling"``, ``"translation"`` (adding a constant
        to a feature), ``"permutation"`` (reordering the features), ``"invertible_linear"``.
    needs : tuple of str
        Input requirements: ``"repeats"`` (3-D responses ``(n_repeats, n_stimuli, n_features)``).
    defaults : dict
        Default parameters (any can be overridden as keyword arguments of ``compare``).
    score : {"identity", "cos", "negative"}
        How the raw value becomes the higher-is-better ``score`` (see :func:`to_score`).
    score_range : tuple of float
        Range of the score.
    cloos_id : str
        The standardized identifier of Cloos et al. (2024) for the same quantity ("" if none).
    description : str
        One line on what it computes.
    """

    name: str
    family: str
    kind: str
    citation: str
    range: tuple
    metric: bool
    symmetric: bool
    invariances: tuple
    needs: tuple = ()
    defaults: dict = field(default_factory=dict)
    score: str = "identity"
    score_range: tuple = (0.0, 1.0)
    cloos_id: str = ""
    description: str = ""

    def __call__(self, X: Any, Y: Any, **params: Any) -> float:
        """``compare(X, Y, method=self.name, **params)``."""
        from ._api import compare

        return compare(X, Y, method=self.name, **params)

    @property
    def parameters(self) -> dict:
        """The parameters a caller may set, with their defaults (``defaults`` minus those fixed by the name).

        The structural parameters (:data:`STRUCTURAL_PARAMETERS`, e.g. ``distance`` of
        ``procrustes-angular``) define which measure it is, and the kernel parameters of the
        linear CKA variants are fixed too: choose another name instead.
        """
        fixed = set(STRUCTURAL_PARAMETERS)
        if self.family == "cka" and self.defaults.get("kernel") == "linear":
            fixed |= {"hsic", "sigma", "median"}
        return {k: v for k, v in self.defaults.items() if k not in fixed}

    @property
    def bounded_score(self) -> bool:
        """True when the score is a bounded similarity that can be divided by a ceiling."""
        return self.score != "negative"


_INV_ALL = ("orthogonal", "isotropic_scaling", "translation", "permutation")
_INV_NO_SCALE = ("orthogonal", "translation", "permutation")
_KORNBLITH = "Kornblith S, Norouzi M, Lee H, Hinton G (2019). Similarity of neural network representations revisited. ICML."
_WILLIAMS = ("Williams AH, Kunz E, Kornblith S, Linderman SW (2021). Generalized shape metrics on neural "
             "representations. NeurIPS.")
_KHOSLA = ("Khosla M, Williams AH (2023). Soft matching distance: a metric on neural representations that "
           "captures single-neuron tuning. UniReps workshop.")
_DUONG = ("Duong LR, Zhou J, Nassar J, Berman J, Olieslagers J, Williams AH (2023). Representational "
          "dissimilarity metric spaces for stochastic neural networks. ICLR.")
_HUH = "Huh M, Cheung B, Wang T, Isola P (2024). The platonic representation hypothesis. ICML."
_TANG = ("Tang S, Maddox WJ, Dickens C, Diethe T, Damianou A (2020). Similarity of neural networks with "
         "gradients. arXiv:2003.11498.")

MEASURES: dict[str, Measure] = {}


def _add(m: Measure) -> None:
    MEASURES[m.name] = m


# ----------------------------------------------------------------------------------- CKA
_add(Measure(
    "cka", "cka", "similarity", _KORNBLITH + " HSIC estimator: Gretton A et al. (2005) ALT.",
    (0.0, 1.0), False, True, _INV_ALL, defaults={"kernel": "linear", "hsic": "gretton"},
    cloos_id="cka (cka-kernel=linear-hsic=gretton-score)",
    description="linear CKA, biased (Gretton) HSIC: ||Xc'Yc||_F^2 / (||Xc'Xc||_F ||Yc'Yc||_F)"))
_add(Measure(
    "cka-hsic_song", "cka", "similarity",
    _KORNBLITH + " Unbiased HSIC: Song L et al. (2012) JMLR 13:1393; Murphy AP et al. (2024) "
    "Correcting biased centered kernel alignment measures in biological and artificial neural networks.",
    (-1.0, 1.0), False, True, _INV_ALL, defaults={"kernel": "linear", "hsic": "song"}, score_range=(-1.0, 1.0),
    cloos_id="cka-kernel=linear-hsic=song-score",
    description="debiased linear CKA (unbiased HSIC; Kornblith's debiased=True); may be < 0"))
_add(Measure(
    "cka-hsic_lange", "cka", "similarity",
    _KORNBLITH + " HSIC of Lange RD, Kwok D, Matelsky J et al. (2023) Deep networks as paths on the "
    "manifold of neural representations.",
    (-1.0, 1.0), False, True, _INV_ALL, defaults={"kernel": "linear", "hsic": "lange"}, score_range=(-1.0, 1.0),
    cloos_id="cka-kernel=linear-hsic=lange-score",
    description="linear CKA of the centred Gram matrices with their diagonals set to zero"))
_add(Measure(
    "cka-rbf", "cka", "similarity", _KORNBLITH,
    (0.0, 1.0), False, True, _INV_ALL,
    defaults={"kernel": "rbf", "hsic": "gretton", "sigma": 1.0, "median": "all"},
    cloos_id="cka-kernel=(rbf-sigma=1.0)-hsic=gretton-score",
    description="CKA with Gaussian kernels, bandwidth sigma x the median distance"))
_add(Measure(
    "cka-angular", "cka", "distance", _KORNBLITH + " Angular form: " + _WILLIAMS,
    (0.0, np.pi / 2), True, True, _INV_ALL, defaults={"kernel": "linear", "hsic": "gretton", "angular": True},
    score="cos", cloos_id="cka-angular (cka-hsic_gretton-angular)",
    description="arccos(linear CKA): the angle between the centred Gram matrices"))

# ------------------------------------------------------------------------- shape metrics
_add(Measure(
    "procrustes-angular", "procrustes", "distance", _WILLIAMS,
    (0.0, np.pi / 2), True, True, _INV_ALL, defaults={"alpha": 1.0, "distance": "angular"}, score="cos",
    cloos_id="procrustes-angular (alpha=1); shape_metric-alpha={alpha}-distance=angular",
    description="angle between partially whitened (alpha), centred responses after the best rotation"))
_add(Measure(
    "procrustes-euclidean", "procrustes", "distance", _WILLIAMS,
    (0.0, np.inf), True, True, _INV_NO_SCALE, defaults={"alpha": 1.0, "distance": "euclidean"},
    score="negative", score_range=(-np.inf, 0.0),
    cloos_id="procrustes-euclidean (alpha=1); shape_metric-alpha={alpha}-distance=euclidean",
    description="Frobenius distance between partially whitened, centred responses after the best rotation"))
_add(Measure(
    "cca-angular", "procrustes", "distance", _WILLIAMS,
    (0.0, np.pi / 2), True, True, _INV_ALL + ("invertible_linear",), defaults={"alpha": 0.0, "distance": "angular"},
    score="cos", cloos_id="cca-angular",
    description="procrustes-angular with alpha=0 (fully whitened): arccos(sum rho / sqrt(r_x r_y))"))
_add(Measure(
    "permutation-angular", "permutation", "distance", _WILLIAMS + " Unequal widths: " + _KHOSLA,
    (0.0, np.pi), True, True, ("isotropic_scaling", "translation", "permutation"),
    defaults={"distance": "angular"}, score="cos", score_range=(-1.0, 1.0),
    cloos_id="permutation-angular",
    description="angle between centred responses after the best matching of units (soft matching if widths differ)"))
_add(Measure(
    "permutation-euclidean", "permutation", "distance", _WILLIAMS + " Unequal widths: " + _KHOSLA,
    (0.0, np.inf), True, True, ("translation", "permutation"), defaults={"distance": "euclidean"},
    score="negative", score_range=(-np.inf, 0.0), cloos_id="permutation-euclidean",
    description="Frobenius distance after the best matching of units (soft matching if widths differ)"))
_add(Measure(
    "nbs", "procrustes", "similarity", _TANG + " Equal to cos(procrustes-angular): " + _WILLIAMS,
    (0.0, 1.0), False, True, _INV_ALL, defaults={"alpha": 1.0, "distance": "nbs"}, cloos_id="nbs",
    description="normalized Bures similarity ||Xc'Yc||_* / (||Xc||_F ||Yc||_F)"))
_add(Measure(
    "bures_distance", "procrustes", "distance", _TANG + " Equal to procrustes-euclidean: " + _WILLIAMS,
    (0.0, np.inf), True, True, _INV_NO_SCALE, defaults={"alpha": 1.0, "distance": "euclidean"},
    score="negative", score_range=(-np.inf, 0.0), cloos_id="bures_distance",
    description="Bures distance of the centred linear kernels (= procrustes-euclidean, alpha=1)"))

# ------------------------------------------------------------------------------ CCA family
_CCA_INV = _INV_ALL + ("invertible_linear",)
_add(Measure(
    "cca-mean_sq_corr", "cca", "similarity",
    "Yanai H (1974) Unification of various techniques of multivariate analysis by means of generalized "
    "coefficient of determination; " + _KORNBLITH + " (R^2_CCA)",
    (0.0, 1.0), False, True, _CCA_INV, defaults={"summary": "mean_sq_corr", "variance": None},
    cloos_id="cca-mean_sq_corr", description="mean squared canonical correlation (Yanai's GCD)"))
_RAGHU = ("Raghu M, Gilmer J, Yosinski J, Sohl-Dickstein J (2017). SVCCA: singular vector canonical correlation "
          "analysis for deep learning dynamics and interpretability. NeurIPS.")
for _var in (99, 95):
    _add(Measure(
        f"svcca-var{_var}", "cca", "similarity", _RAGHU, (0.0, 1.0), False, True, _INV_ALL,
        defaults={"summary": "mean_corr", "variance": _var / 100}, cloos_id=f"svcca-var{_var}",
        description=f"mean canonical correlation of the top singular directions keeping {_var}% of the variance"))
_add(Measure(
    "pwcca", "cca", "similarity",
    "Morcos AS, Raghu M, Bengio S (2018). Insights on representational similarity in neural networks with "
    "canonical correlation. NeurIPS.",
    (0.0, 1.0), False, False, ("isotropic_scaling", "translation", "permutation"),
    defaults={"summary": "pwcca", "variance": None}, cloos_id="pwcca",
    description="canonical correlations weighted by how much of X's units each canonical variate accounts for"))

# ------------------------------------------------------------------------- neighbourhoods
_add(Measure(
    "mutual_knn", "knn", "similarity", _HUH, (0.0, 1.0), False, True,
    ("orthogonal", "isotropic_scaling", "permutation"), defaults={"k": 10, "metric": "cosine", "cycle": False},
    cloos_id="", description="mean fraction of each stimulus's k nearest neighbours shared by X and Y"))
_add(Measure(
    "cycle_knn", "knn", "similarity", _HUH, (0.0, 1.0), False, False,
    ("orthogonal", "isotropic_scaling", "permutation"), defaults={"k": 10, "metric": "cosine", "cycle": True},
    cloos_id="", description="fraction of stimuli that are among the X-neighbours of one of their Y-neighbours "
                "(below 1 even for identical inputs: kNN graphs are not reciprocal)"))

# ---------------------------------------------------------------------------- predictivity
_add(Measure(
    "ridge", "predictivity", "similarity",
    "Naselaris T, Kay KN, Nishimoto S, Gallant JL (2011) Encoding and decoding in fMRI. NeuroImage; "
    "ridge as in brainalign.encoding.cross_validate_encoding",
    (-1.0, 1.0), False, False, ("translation", "permutation"),
    defaults={"model": "ridge", "direction": "x_to_y", "cv": 5, "alphas": None, "aggregate": "mean",
              "random_state": 0},
    score_range=(-1.0, 1.0), cloos_id="ridge-...-pearson_r#5folds_cv (alphas cross-validated here)",
    description="cross-validated ridge predictions of Y from X, Pearson r per target, mean over targets"))
_add(Measure(
    "pls", "predictivity", "similarity",
    "Schrimpf M, Kubilius J, Hong H et al. (2018) Brain-Score: which artificial neural network for object "
    "recognition is most brain-like? bioRxiv 407007",
    (-1.0, 1.0), False, False, ("isotropic_scaling", "translation", "permutation"),
    defaults={"model": "pls", "direction": "x_to_y", "cv": 5, "n_components": 25, "aggregate": "median",
              "random_state": 0},
    score_range=(-1.0, 1.0), cloos_id="pls-pearson_r#5folds_cv",
    description="cross-validated PLS regression (25 components), Pearson r per target, median over targets"))

# ------------------------------------------------------------------------------- RSA rooms
_add(Measure(
    "rsa", "rsa", "similarity",
    "Kriegeskorte N, Mur M, Bandettini P (2008) Representational similarity analysis. Front Syst Neurosci "
    "(computed by brainalign.rsa)",
    (-1.0, 1.0), False, True, ("isotropic_scaling", "permutation"),
    defaults={"rdm_method": "correlation", "compare": "corr"}, score_range=(-1.0, 1.0),
    cloos_id="rsa-correlation-corr (rsa-{rdm_method}-{compare})",
    description="comparison of the two RDMs (brainalign.rsa.calc_rdm + brainalign.rsa.compare)"))
_add(Measure(
    "trsa", "trsa", "similarity",
    "Lin B, Kriegeskorte N (2024) The topology and geometry of neural representations. PNAS "
    "(computed by brainalign.topology.trsa)",
    (-1.0, 1.0), False, True, ("isotropic_scaling", "permutation"),
    defaults={"rdm_method": "correlation", "compare": "corr", "low": 0.25, "up": 0.75, "geodesic": False},
    score_range=(-1.0, 1.0), cloos_id="",
    description="comparison of the geo-topological transforms of the two RDMs"))

# ----------------------------------------------------------------------- stochastic metrics
_add(Measure(
    "stochastic-gaussian", "stochastic", "distance", _DUONG, (0.0, np.inf), True, True, _INV_NO_SCALE,
    needs=("repeats",), defaults={"ground": "gaussian", "alpha": 1.0, "rank": None, "max_iter": 100, "tol": 1e-8},
    score="negative", score_range=(-np.inf, 0.0), cloos_id="",
    description="2-Wasserstein distance between per-stimulus Gaussians (means and covariances) after the best rotation"))
_add(Measure(
    "stochastic-energy", "stochastic", "distance", _DUONG, (0.0, np.inf), True, True, _INV_NO_SCALE,
    needs=("repeats",), defaults={"ground": "energy", "max_iter": 100, "tol": 1e-8},
    score="negative", score_range=(-np.inf, 0.0), cloos_id="",
    description="energy distance between per-stimulus response distributions after the best rotation"))

FAMILIES = sorted({m.family for m in MEASURES.values()})


def get_measure(method: Any) -> Measure:
    """The :class:`Measure` named ``method`` (a name or a Measure), with a helpful error otherwise."""
    if isinstance(method, Measure):
        return method
    if not isinstance(method, str) or method not in MEASURES:
        raise ValueError(
            close_matches_message("similarity measure (the 'method' parameter)", method, MEASURES)
            + f" All measures: {sorted(MEASURES)}."
        )
    return MEASURES[method]


def to_score(raw: Any, method: Any) -> Any:
    """Turn raw values of ``method`` into higher-is-better scores (the one definition).

    - similarities (``kind == "similarity"``): the raw value;
    - angular distances (``score == "cos"``: ``cka-angular``, ``procrustes-angular``,
      ``cca-angular``, ``permutation-angular``): the cosine of the angle, i.e. the similarity
      whose arccos the distance is (``cos(procrustes-angular) == nbs``,
      ``cos(cka-angular) == cka``);
    - other distances (``score == "negative"``: Euclidean shape metrics, Bures, stochastic
      metrics): ``-raw``. Higher is better, so ``p_best``, permutation p-values and bootstrap
      intervals keep their meaning, but the score is not a fraction and is not divided by a
      ceiling (:func:`normalize_score` gives NaN).

    Parameters
    ----------
    raw : float or array
    method : str or Measure

    Returns
    -------
    float or array (same shape as ``raw``)

    Examples
    --------
    >>> to_score(0.0, "procrustes-angular")
    1.0
    >>> to_score(2.5, "bures_distance")
    -2.5
    """
    m = get_measure(method)
    arr = np.asarray(raw, dtype=np.float64)
    if m.score == "identity":
        out = arr
    elif m.score == "cos":
        out = np.cos(arr)
    else:
        out = -arr
    return float(out) if out.ndim == 0 else out


def normalize_score(score: Any, ceiling: Any, method: Any) -> Any:
    """A score as a fraction of its noise ceiling (both on the :func:`to_score` scale).

    ``score / ceiling`` (``brainalign.stats.normalize_scores`` with ``convention="r2/c"``) for
    measures with a bounded score; NaN for the unbounded distances (``score == "negative"``),
    whose ratio to a ceiling has no meaning, and where the ceiling is not positive.

    Parameters
    ----------
    score, ceiling : float or array
    method : str or Measure

    Returns
    -------
    float or array
    """
    from ..stats import normalize_scores

    m = get_measure(method)
    s = np.asarray(score, dtype=np.float64)
    if not m.bounded_score:
        out = np.full(s.shape, np.nan)
    else:
        out = normalize_scores(np.atleast_1d(s), np.broadcast_to(np.asarray(ceiling, dtype=np.float64),
                                                                 np.atleast_1d(s).shape), convention="r2/c")
        out = out.reshape(s.shape)
    return float(out) if out.ndim == 0 else out


def measure_table():
    """The registry as a pandas DataFrame (one row per measure), for docs and recipes."""
    import pandas as pd

    rows = [{"name": m.name, "kind": m.kind, "score": m.score, "range": m.range, "metric": m.metric,
             "symmetric": m.symmetric, "invariances": ", ".join(m.invariances), "needs": ", ".join(m.needs),
             "defaults": m.defaults, "cloos_id": m.cloos_id, "description": m.description}
            for m in MEASURES.values()]
    return pd.DataFrame(rows)

