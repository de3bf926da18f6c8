"""Topological RSA: geo-topological transforms (RGTM, geodesic RGDM), tRSA comparisons,
threshold selection by nested cross-validation, and identification accuracy."""

from ._transforms import geodesic, geotopological
from ._trsa import default_grid, identify, trsa, trsa_grid

__all__ = ["geotopological", "geodesic", "trsa", "trsa_grid", "identify", "default_grid"]
