"""Scores, noise ceilings and statistics shared by every room: one home for each definition.

- scores: :func:`pearson_r`, :func:`r2_score`, :func:`r2_score_split`, :func:`cross_validated_r`;
- ceilings (each with its unit, single presentation vs mean of repeats): :func:`split_half_reliability`,
  :func:`explainable_variance`, :func:`single_presentation_ceiling`, :func:`inter_subject_ceiling`,
  :func:`channel_ceiling`, and :func:`normalize_scores`;
- resampling within a subject: :func:`bootstrap_ci`, :func:`bootstrap_units`, :func:`permutation_test`;
- group level (subjects as the random effect): :func:`sign_flip_test`, :func:`pairwise_comparisons`,
  :func:`joint_bootstrap`, :func:`p_best`;
- multiple comparisons: :func:`fdr_correction`, :func:`holm_correction`, :func:`max_stat_pvalues`.

Rules for bad input, the same in every function: NaN or inf in the data raises a ValueError
naming the array, the column and the first sample; a score that is undefined (a constant
column) is NaN with one ``RuntimeWarning`` per call; counts (``n_resamples``,
``n_permutations``...) must be ints of at least 1 and levels (``ci``, ``alpha``) lie in (0, 1),
else the error names the parameter.
"""

from ._bootstrap import bootstrap_ci, bootstrap_units
from ._ceiling import channel_ceiling, explainable_variance, single_presentation_ceiling, split_half_reliability
from ._group import joint_bootstrap, p_best, pairwise_comparisons, sign_flip_test
from ._intersubject import inter_subject_ceiling, normalize_scores
from ._multiple import fdr_correction, holm_correction, max_stat_pvalues
from ._permutation import permutation_test
from ._scores import cross_validated_r, pearson_r, r2_score, r2_score_split

__all__ = [
    "bootstrap_ci", "bootstrap_units", "channel_ceiling", "cross_validated_r", "explainable_variance",
    "fdr_correction", "holm_correction", "inter_subject_ceiling", "joint_bootstrap", "max_stat_pvalues",
    "normalize_scores", "p_best", "pairwise_comparisons", "pearson_r", "permutation_test", "r2_score",
    "r2_score_split", "sign_flip_test", "single_presentation_ceiling", "split_half_reliability",
]
