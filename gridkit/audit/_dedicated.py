"""Dedicated grids (专属网格) in an audit: which grids of the map are dedicated, and the
residential grids that overlap a dedicated grid or parcel.

Plumbing of :func:`gridkit.audit.audit_grids`: a grid of the map is dedicated when its
``grid_type`` is neither empty nor ``comprehensive`` (综合网格), or, without that column,
when its ``status`` is ``dedicated``; parcels given to the audit (``dedicated``) count as
dedicated grids too.  A residential grid sharing a significant area with one of them
gets the problem ``overlaps_dedicated``; dedicated grids have no household bounds.
"""

from __future__ import annotations

import os
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.checks import significant_area
from gridkit.contracts import COMPREHENSIVE, DEDICATED, GRID_TYPE_WORDS
from gridkit.io import DEDICATED_COLUMNS, read_dedicated

__all__ = [
    "DedicatedOverlaps",
    "dedicated_in_map",
    "dedicated_overlaps",
    "parcel_geoms",
    "read_parcels",
]

_RESIDENTIAL_WORDS = {COMPREHENSIVE, GRID_TYPE_WORDS["zh"][COMPREHENSIVE], ""}


def dedicated_in_map(grids: pd.DataFrame) -> np.ndarray:
    """Whether each grid of a map is a dedicated grid (by ``grid_type``, else ``status``)."""
    if "grid_type" in grids.columns:
        types = grids["grid_type"].map(lambda v: "" if pd.isna(v) else str(v).strip().lower())
        return (~types.isin(_RESIDENTIAL_WORDS)).to_numpy(dtype=bool)
    if "status" in grids.columns:
        return (grids["status"].astype(str) == DEDICATED).to_numpy(dtype=bool)
    return np.zeros(len(grids), dtype=bool)


def read_parcels(
    dedicated: gpd.GeoDataFrame | str | os.PathLike[str] | None,
) -> gpd.GeoDataFrame | None:
    """The parcels given to an audit (read with :func:`gridkit.io.read_dedicated`)."""
    if dedicated is None:
        return None
    if (
        isinstance(dedicated, gpd.GeoDataFrame)
        and dedicated.crs is not None
        and all(c in dedicated.columns for c in DEDICATED_COLUMNS)
    ):
        return dedicated
    return read_dedicated(dedicated)


class DedicatedOverlaps:
    """Per grid: the area it shares with dedicated grids and parcels, and which ones."""

    def __init__(self, n: int) -> None:
        self.area = np.zeros(n)
        self.with_: list[list[str]] = [[] for _ in range(n)]


def _parcel_label(name: Any, kind: Any, row: Any) -> str:
    if name is not None and not pd.isna(name) and str(name).strip():
        return f"parcel {name}"
    return f"parcel {kind} (row {row})"


def dedicated_overlaps(
    G: np.ndarray,
    codes: np.ndarray,
    in_map: np.ndarray,
    parcels: np.ndarray,
    labels: list[str],
    *,
    tolerance_m2: float,
    sliver_width_m: float,
) -> DedicatedOverlaps:
    """The significant overlap of each residential grid with dedicated grids and parcels.

    Parameters
    ----------
    G, codes
        The map's grids (metric CRS) and their codes.
    in_map
        Which of them are dedicated (:func:`dedicated_in_map`).
    parcels, labels
        Parcels given to the audit (metric CRS) and how to name them.
    tolerance_m2, sliver_width_m
        What a significant piece is (:func:`gridkit.checks.is_significant`).
    """
    out = DedicatedOverlaps(len(G))
    targets = np.concatenate([G[in_map], np.asarray(parcels, dtype=object)])
    names = [str(c) for c in codes[in_map]] + list(labels)
    residential = np.flatnonzero(~in_map)
    if not len(targets) or not len(residential):
        return out
    gi, ti = shapely.STRtree(targets).query(G[residential], predicate="intersects")
    if not len(gi):
        return out
    grid = residential[gi]
    shared = significant_area(
        shapely.intersection(G[grid], targets[ti]),
        tolerance_m2=tolerance_m2,
        sliver_width_m=sliver_width_m,
    )
    for g, t, a in zip(grid, ti, shared, strict=True):
        if a > 0:
            out.area[g] += a
            out.with_[g].append(names[t])
    return out


def parcel_geoms(parcels: gpd.GeoDataFrame | None, metric: Any) -> tuple[np.ndarray, list[str]]:
    """The parcels' geometries in ``metric`` and their labels (none without parcels)."""
    if parcels is None or not len(parcels):
        return np.array([], dtype=object), []
    geoms = np.asarray(parcels.geometry.to_crs(metric).array, dtype=object)
    labels = [
        _parcel_label(n, k, r)
        for n, k, r in zip(parcels["name"], parcels["type"], parcels["row"], strict=True)
    ]
    return geoms, labels
