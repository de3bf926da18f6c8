"""Which layer of which model best explains each brain region, and how sure are we?

:func:`sweep` scores every model x layer against every subject x ROI with encoding, RSA
and topological RSA and returns one tidy table (:data:`RESULT_COLUMNS`);
:func:`assign_layers` reads the best layer per ROI off it with bootstrap uncertainty and
:func:`preferred_depth` the score-weighted mean layer depth; :func:`voxel_scores` gives the
per-channel encoding scores kept with the table (for maps of the best layer per voxel).
"""

from __future__ import annotations

from ._sweep import METHODS, sweep
from ._table import RESULT_COLUMNS, VoxelScores, assign_layers, check_results, preferred_depth, tidy, voxel_scores

__all__ = ["sweep", "assign_layers", "preferred_depth", "voxel_scores", "check_results", "tidy", "VoxelScores",
           "RESULT_COLUMNS", "METHODS"]
