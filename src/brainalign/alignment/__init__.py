"""Which layer of which model best explains each brain region, and how sure are we?

:func:`sweep` scores every model x layer against every subject x ROI with encoding (each
layer alone; banded ridge with variance partitioning; TRFs for continuous M/EEG), RSA,
topological RSA and any similarity measure of :mod:`brainalign.similarity` (CKA, shape
metrics, CCA, mutual kNN, predictivity...) and returns one tidy table (:data:`RESULT_COLUMNS`,
then :data:`SIMILARITY_COLUMNS` and :data:`STORY_COLUMNS`); :func:`assign_layers` reads the best
layer per ROI off it with bootstrap uncertainty and :func:`preferred_depth` the score-weighted
mean layer depth; :func:`voxel_scores` gives the per-channel scores kept with the table and
:func:`voxel_preferences` the best layer and preferred depth of every voxel.
:func:`control_features` and :func:`rate_features` make the control baselines and nuisance
bands of story-listening analyses. :func:`compare_layers` tests every pair of layers (or
models) across subjects, with a named multiple-comparison correction, and
:func:`group_p_best` gives the probability that each is the best over subjects (and stimuli).
"""

from __future__ import annotations

from ._controls import CONTROLS, control_features, rate_features
from ._encoding_units import BANDED_DEFAULTS, ENCODING_DEFAULTS, TRF_DEFAULTS
from ._group import CORRECTIONS, GROUP_TESTS, UnitReplicates, compare_layers, group_p_best
from ._methods import RSA_DEFAULTS, TRANSFORMS, TRSA_DEFAULTS
from ._similarity_units import SIMILARITY_DEFAULTS
from ._sweep import CORE_METHODS, METHODS, SIMILARITY_METHODS, sweep

#: Per-method options of :func:`sweep` and their defaults (``encoding`` also passes other keys,
#: such as ``inner_cv``, on to :func:`brainalign.encoding.cross_validate_encoding`; a similarity
#: measure takes its settable parameters and ``ceiling_splits``, ``spearman_brown``,
#: ``time_window``, ``device``).
METHOD_DEFAULTS = {"encoding": dict(ENCODING_DEFAULTS), "rsa": dict(RSA_DEFAULTS), "trsa": dict(TRSA_DEFAULTS),
                   "banded": dict(BANDED_DEFAULTS), "trf": dict(TRF_DEFAULTS),
                   **{name: dict(opts) for name, opts in SIMILARITY_DEFAULTS.items()}}
#: The geo-topological transforms tRSA can apply (functions of :mod:`brainalign.topology`).
TRSA_TRANSFORMS = TRANSFORMS
from ._table import (  # noqa: E402
    RESULT_COLUMNS,
    SIMILARITY_COLUMNS,
    STORY_COLUMNS,
    VoxelScores,
    assign_layers,
    check_results,
    preferred_depth,
    tidy,
    voxel_scores,
)
from ._voxels import voxel_preferences  # noqa: E402

__all__ = ["sweep", "assign_layers", "preferred_depth", "voxel_scores", "voxel_preferences", "check_results", "tidy",
           "VoxelScores", "compare_layers", "group_p_best", "UnitReplicates", "control_features", "rate_features",
           "RESULT_COLUMNS", "SIMILARITY_COLUMNS", "STORY_COLUMNS", "METHODS", "CORE_METHODS", "SIMILARITY_METHODS",
           "METHOD_DEFAULTS", "TRSA_TRANSFORMS", "GROUP_TESTS", "CORRECTIONS", "CONTROLS"]
