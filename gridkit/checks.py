"""Guarantees of a grid plan, as predicates and one verifier.

=======================  =====================================================
check                    guarantee
=======================  =====================================================
:func:`is_contiguous`    each grid is one connected polygon
:func:`within_bounds`    each grid holds between ``min`` and ``max`` households
:func:`tiling_error`     grids cover their community: (gaps + overlaps + parts
                         outside) / community area, per community
:func:`accounted_for`    every input household row is in exactly one grid or
                         listed as unassigned with a reason
:func:`verify_partition` all of the above; returns the problems and warns
=======================  =====================================================

Measured with tolerances (geometries in a metric CRS), as ``gridkit audit`` counts them:

=========================  ===================================================
:func:`polygon_parts`      every polygonal piece of each geometry and its owner
:func:`is_significant`     pieces larger than an area and wider than a sliver
:func:`significant_area`   per geometry, the area of its significant pieces
:func:`count_pieces`       per geometry, its pieces larger than an area (a grid
                           with more than one is not contiguous; crumbs below
                           the area do not count)
=========================  ===================================================

The tests call these same functions, so what is tested is what is promised.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.contracts import DEDICATED
from gridkit.crs import local_metric_crs
from gridkit.errors import GridkitWarning, format_ids

__all__ = [
    "accounted_for",
    "count_pieces",
    "is_contiguous",
    "is_significant",
    "polygon_parts",
    "significant_area",
    "tiling_error",
    "verify_partition",
    "within_bounds",
]


def is_contiguous(grids: gpd.GeoDataFrame | gpd.GeoSeries) -> pd.Series:
    """Whether each grid is a single polygon (one connected piece).

    Examples
    --------
    >>> two = shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 0, 3, 1)])
    >>> s = gpd.GeoSeries([shapely.box(0, 0, 1, 1), two])
    >>> is_contiguous(s).tolist()
    [True, False]
    """
    geoms = grids.geometry.to_numpy()
    single = shapely.get_type_id(geoms) == 3  # Polygon
    return pd.Series(single, index=grids.index, name="contiguous")


def within_bounds(
    grids: pd.DataFrame, *, min_households: int = 400, max_households: int = 800
) -> pd.Series:
    """Whether each grid's ``households`` lies in ``[min_households, max_households]``."""
    hh = grids["households"]
    return ((hh >= min_households) & (hh <= max_households)).rename("within_bounds")


def tiling_error(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame) -> pd.Series:
    """Relative tiling error per community: (gap + overlap + outside area) / community area.

    0 means the community's grids cover it exactly with no overlap.  Computed
    in the local metric CRS.
    """
    crs = local_metric_crs(communities)
    comm = communities.to_crs(crs).set_index("community_id")
    g = grids.to_crs(crs)
    errors = {}
    for cid, group in g.groupby("community_id"):
        poly = comm.geometry.loc[cid]
        parts = group.geometry.to_numpy()
        union = shapely.union_all(parts)
        gap = shapely.area(shapely.difference(poly, union))
        outside = shapely.area(shapely.difference(union, poly))
        overlap = float(shapely.area(parts).sum()) - shapely.area(union)
        errors[cid] = (gap + outside + max(overlap, 0.0)) / shapely.area(poly)
    missing = set(comm.index) - set(errors)
    for cid in missing:
        errors[cid] = 1.0
    return pd.Series(errors, name="tiling_error").sort_index()


def accounted_for(assignments: pd.DataFrame, households: pd.DataFrame) -> bool:
    """Every household row appears once, with a grid code xor an unassigned reason."""
    if len(assignments) != len(households):
        return False
    if not (
        assignments["household_id"].astype(str).to_numpy()
        == households["household_id"].astype(str).to_numpy()
    ).all():
        return False
    has_code = assignments["grid_code"].fillna("").astype(str) != ""
    has_reason = assignments["reason"].fillna("").astype(str) != ""
    return bool((has_code ^ has_reason).all())


def verify_partition(
    grids: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    *,
    assignments: pd.DataFrame | None = None,
    households: pd.DataFrame | None = None,
    min_households: int = 400,
    max_households: int = 800,
    tolerance: float = 1e-6,
) -> dict[str, list]:
    """Check every guarantee; return the offending ids per check and warn if any.

    Grids whose ``status`` is not ``ok`` (explained infeasibility, a dedicated grid)
    are not counted as bound violations.

    Returns
    -------
    dict
        ``not_contiguous`` (grid codes), ``out_of_bounds`` (grid codes with
        status ``ok`` but households outside the bounds), ``not_tiled``
        (community ids), ``unaccounted`` (True in a list when rows are
        missing or doubled).
    """
    problems: dict[str, list] = {
        # ``multi_part`` grids hold an island of a community that is itself in pieces.
        # (a dedicated grid is its parcel, which may be in several pieces)
        "not_contiguous": grids.loc[
            ~is_contiguous(grids) & ~grids["status"].isin(["multi_part", DEDICATED]), "grid_code"
        ].tolist(),
        "out_of_bounds": grids.loc[
            (grids["status"] == "ok")
            & ~within_bounds(grids, min_households=min_households, max_households=max_households),
            "grid_code",
        ].tolist(),
        "not_tiled": [c for c, e in tiling_error(grids, communities).items() if e > tolerance],
        "unaccounted": [],
    }
    if (
        assignments is not None
        and households is not None
        and not accounted_for(assignments, households)
    ):
        problems["unaccounted"] = [True]
    bad = {k: v for k, v in problems.items() if v}
    if bad:
        warnings.warn(
            "grid plan problems: " + "; ".join(f"{k}: {format_ids(v)}" for k, v in bad.items()),
            GridkitWarning,
            stacklevel=2,
        )
    return problems


def polygon_parts(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every Polygon inside ``geoms`` (collections flattened) and the index of its owner.

    Parameters
    ----------
    geoms
        Shapely geometries (any type; lines and points are dropped).

    Returns
    -------
    parts, owner : numpy.ndarray
        The Polygons, and for each the index of the geometry of ``geoms`` holding it.

    Examples
    --------
    >>> two = shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 0, 3, 1)])
    >>> parts, owner = polygon_parts(np.array([shapely.box(0, 0, 1, 1), two]))
    >>> len(parts), owner.tolist()
    (3, [0, 1, 1])
    """
    parts, owner = shapely.get_parts(np.asarray(geoms, dtype=object), return_index=True)
    while True:
        multi = shapely.get_type_id(parts) >= 4
        if not multi.any():
            break
        sub, sub_owner = shapely.get_parts(parts[multi], return_index=True)
        parts = np.concatenate([parts[~multi], sub])
        owner = np.concatenate([owner[~multi], owner[multi][sub_owner]])
    keep = shapely.get_type_id(parts) == 3
    return parts[keep], owner[keep]


def is_significant(parts: np.ndarray, *, tolerance_m2: float, sliver_width_m: float) -> np.ndarray:
    """Pieces larger than ``tolerance_m2`` and wider than ``sliver_width_m`` (2 A / P).

    Parameters
    ----------
    parts
        Polygons in a metric CRS.
    tolerance_m2, sliver_width_m
        A piece counts when its area is above ``tolerance_m2`` and its mean width,
        ``2 * area / perimeter``, above ``sliver_width_m``.

    Returns
    -------
    numpy.ndarray
        One bool per piece.

    Examples
    --------
    >>> strip = shapely.box(0, 0, 100, 0.02)  # 2 m², 2 cm wide: a digitising sliver
    >>> is_significant(np.array([shapely.box(0, 0, 10, 10), strip]),
    ...                tolerance_m2=1.0, sliver_width_m=0.1).tolist()
    [True, False]
    """
    area = shapely.area(parts)
    perimeter = shapely.length(parts)
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.where(perimeter > 0, 2 * area / perimeter, 0.0)
    return (area > tolerance_m2) & (width > sliver_width_m)


def significant_area(
    geoms: np.ndarray, *, tolerance_m2: float, sliver_width_m: float
) -> np.ndarray:
    """Per geometry, the total area of its significant polygonal pieces.

    Parameters
    ----------
    geoms
        Geometries in a metric CRS (e.g. the intersections of two grids).
    tolerance_m2, sliver_width_m
        What a significant piece is (:func:`is_significant`).

    Returns
    -------
    numpy.ndarray
        One area (m²) per geometry; 0 when it has no significant piece.
    """
    parts, owner = polygon_parts(geoms)
    keep = is_significant(parts, tolerance_m2=tolerance_m2, sliver_width_m=sliver_width_m)
    return np.bincount(owner[keep], weights=shapely.area(parts[keep]), minlength=len(geoms))


def count_pieces(geoms: np.ndarray, *, min_area_m2: float = 0.0) -> np.ndarray:
    """Per geometry, the number of its polygonal pieces larger than ``min_area_m2``.

    A grid with more than one such piece is not contiguous; unlike
    :func:`is_contiguous`, crumbs no larger than ``min_area_m2`` do not count.

    Parameters
    ----------
    geoms
        Geometries in a metric CRS.
    min_area_m2
        Pieces of this area or less are ignored.

    Returns
    -------
    numpy.ndarray
        One count (int) per geometry.

    Examples
    --------
    >>> crumb = shapely.MultiPolygon([shapely.box(0, 0, 10, 10), shapely.box(20, 0, 20.5, 0.5)])
    >>> count_pieces(np.array([crumb]), min_area_m2=1.0).tolist()
    [1]
    """
    parts, owner = polygon_parts(geoms)
    return np.bincount(owner[shapely.area(parts) > min_area_m2], minlength=len(geoms))
