"""Which layer of which model best explains each brain region, and how sure are we?

:func:`sweep` scores every model x layer against every subject x ROI with encoding, RSA
and topological RSA and returns one tidy table (:data:`RESULT_COLUMNS`);
:func:`assign_layers` reads the best layer per ROI off it with bootstrap uncertainty and
:func:`preferred_depth` the score-weighted mean layer depth; :func:`voxel_scores` gives the
per-channel encoding scores kept with the table (for maps of the best layer per voxel).
"""

from __future__ import annotations

from ._methods import ENCODING_DEFAULTS, RSA_DEFAULTS, TRANSFORMS, TRSA_DEFAULTS
from ._sweep import METHODS, sweep

#: Per-method options of :func:`sweep` and their defaults (``encoding`` also passes other keys,
#: such as ``inner_cv``, on to :func:`brainalign.encoding.cross_validate_encoding`).
METHOD_DEFAULTS = {"encoding": dict(ENCODING_DEFAULTS), "rsa": dict(RSA_DEFAULTS), "trsa": dict(TRSA_DEFAULTS)}
#: The geo-topological transforms tRSA can apply (functions of :mod:`brainalign.topology`).
TRSA_TRANSFORMS = TRANSFORMS
from ._table import RESULT_COLUMNS, VoxelScores, assign_layers, check_results, preferred_depth, tidy, voxel_scores

__all__ = ["sweep", "assign_layers", "preferred_depth", "voxel_scores", "check_results", "tidy", "VoxelScores",
           "RESULT_COLUMNS", "METHODS", "METHOD_DEFAULTS", "TRSA_TRANSFORMS"]
