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

The tests call these same functions, so what is tested is what is promised.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import pandas as pd
import shapely

from gridkit.crs import local_metric_crs
from gridkit.errors import GridkitWarning, format_ids

__all__ = [
    "accounted_for",
    "is_contiguous",
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

    Grids whose ``status`` is not ``ok`` (explained infeasibility) are not
    counted as bound violations.

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
        "not_contiguous": grids.loc[
            ~is_contiguous(grids) & (grids["status"] != "multi_part"), "grid_code"
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
