"""Similarity measures between two representations of the same stimuli.

One entry point, :func:`compare` (one pair) / :func:`pairwise` (grids: layer x layer, layer x
ROI, model x model), and one registry, :data:`MEASURES` (name -> :class:`Measure`: citation,
kind, range, metric or not, invariances, needs, defaults). Raw values keep their meaning
(distances stay distances); :func:`to_score` is the one place where a raw value becomes a
higher-is-better score. :func:`split_half_ceiling` (split-half, from repeated responses),
:func:`bootstrap` (over stimuli) and :func:`permutation_test` (over stimulus labels) work for
every measure.

Measures: CKA (linear / RBF; Gretton, Song and Lange HSIC), shape metrics (Procrustes with
partial whitening, permutation / soft matching, NBS, Bures), the CCA family (mean squared
canonical correlation, SVCCA, PWCCA), mutual / cycle k-nearest neighbours, linear predictivity
(ridge from ``brainalign.encoding``, PLS), RSA and topological RSA (from ``brainalign.rsa`` and
``brainalign.topology``) and the stochastic shape metrics for repeated responses. See
``docs/similarity.md`` for the mapping to the standardized names of Cloos et al. (2024) and
where reference implementations disagree.
"""

from ._api import compare, pairwise
from ._inference import bootstrap, split_half_ceiling, permutation_test
from ._registry import MEASURES, Measure, get_measure, measure_table, normalize_score, to_score

__all__ = [
    "MEASURES", "Measure", "bootstrap", "compare", "get_measure", "measure_table", "split_half_ceiling",
    "normalize_score", "pairwise", "permutation_test", "to_score",
]
