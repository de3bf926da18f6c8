"""Scores, noise ceilings and statistics shared by the encoding and RSA rooms."""

from ._bootstrap import bootstrap_ci
from ._ceiling import explainable_variance, noise_ceiling, normalize_scores, split_half_reliability
from ._multiple import fdr_correction, max_stat_pvalues
from ._permutation import permutation_test
from ._scores import pearson_r, r2_score, r2_score_split

__all__ = [
    "bootstrap_ci", "explainable_variance", "fdr_correction", "max_stat_pvalues", "noise_ceiling",
    "normalize_scores", "pearson_r", "permutation_test", "r2_score", "r2_score_split", "split_half_reliability",
]
