"""A job's inputs and settings checked, and the units of a district made from them.

The checks every run makes before any solving (in memory or file to file): the
settings (time limit, seed, merge distance), the boundary and household frames
(ids, CRS, household counts, geometries) and the barriers; then the district's
units (:func:`district_units`), shared with ``regenerate``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit.crs import local_metric_crs
from gridkit.errors import InputError, format_ids
from gridkit.partition import GridRules
from gridkit.pipeline.bounds import CommunityBounds, community_bounds, split_limits
from gridkit.pipeline.dedicated import carving_of, split_rows, with_dedicated
from gridkit.units import MERGE_DISTANCE, Dedicated, Units, attach_compounds, build_units

__all__ = [
    "barriers_in",
    "barriers_near",
    "check_settings",
    "district_units",
    "ensure_boundary_columns",
    "ensure_household_columns",
]


def check_settings(
    time_limit: float, seed: int, merge_distance: float = MERGE_DISTANCE
) -> None:
    """Raise an InputError for a time limit, seed or merge distance gridkit cannot use."""
    if not (math.isfinite(merge_distance) and merge_distance >= 0):
        raise InputError(
            f"`merge_distance` must be a distance in metres >= 0, got {merge_distance}; "
            f"e.g. --merge-distance {MERGE_DISTANCE:g}."
        )
    if not (math.isfinite(time_limit) and time_limit > 0):
        raise InputError(
            f"`time_limit` must be a positive number of seconds, got {time_limit}; "
            "e.g. --time-limit 5."
        )
    if not 0 <= int(seed) < 2**31:
        raise InputError(f"`seed` must be between 0 and 2**31 - 1, got {seed}; e.g. --seed 0.")


def barriers_in(barriers: gpd.GeoDataFrame | None, crs) -> gpd.GeoDataFrame | None:
    """Barriers reprojected to the units' CRS, checked (``None`` stays ``None``).

    Raises
    ------
    InputError
        If the layer has no CRS or holds geometries other than lines and polygons.
    """
    if barriers is None:
        return None
    source = barriers.attrs.get("source", "`barriers`")
    if barriers.crs is None:
        raise InputError(
            f"{source} has no CRS: set it (`gdf.set_crs(4326)`) or save the file with one."
        )
    kinds = set(barriers.geometry.geom_type.dropna())
    wrong = kinds - {"LineString", "MultiLineString", "Polygon", "MultiPolygon"}
    if wrong:
        raise InputError(
            f"{source} holds {', '.join(sorted(wrong))}: barriers must be lines (roads, "
            "rivers, railways, walls) or polygons (their outlines are used)."
        )
    return barriers[barriers.geometry.notna() & ~barriers.geometry.is_empty].to_crs(crs)



def district_units(
    boundaries: gpd.GeoDataFrame,
    households: gpd.GeoDataFrame,
    *,
    rules: GridRules,
    merge_distance: float = MERGE_DISTANCE,
    barriers: gpd.GeoDataFrame | None = None,
    compounds: gpd.GeoDataFrame | None = None,
    keep_compounds: bool = True,
    compound_buildings_col: str | None = None,
    community_rules: str | os.PathLike | Mapping | None = None,
    dedicated: gpd.GeoDataFrame | Dedicated | None = None,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, Units, gpd.GeoDataFrame | None, CommunityBounds]:
    """The buildings and cells of a district, as ``partition`` and ``regenerate`` make them.

    Checks the columns, gives the households their compounds (``compounds``
    outlines), and builds the units (:func:`gridkit.units.build_units`): cells
    inside the blocks that barriers and (kept) compound walls cut, compounds given
    as points split above their community's maximum (``rules``, or the community's own
    bounds: :func:`gridkit.pipeline.community_bounds` with ``community_rules``).
    ``dedicated`` parcels (or their carving, :func:`gridkit.units.carve_parcels`) are
    cut out of the communities first: the units cover the rest, and the rows inside a
    parcel go to its dedicated grid (:attr:`gridkit.units.Units.dedicated`).

    Returns
    -------
    boundaries, households, units, barriers, bounds
        The checked inputs, the units, the barriers checked and in the units' metric
        CRS (``None`` without barriers), and each community's grid rules.
    """
    households = ensure_household_columns(households)
    if compounds is not None:
        households = attach_compounds(households, compounds)
    boundaries = ensure_boundary_columns(boundaries)
    bounds = community_bounds(boundaries, rules, community_rules=community_rules)
    crs = local_metric_crs(boundaries)
    metric_barriers = barriers_in(barriers, crs)
    carving = carving_of(boundaries, dedicated, crs)
    if carving is not None:
        piece, kept = split_rows(households, carving, crs)
    units = build_units(
        boundaries if carving is None else carving.residential,
        households if carving is None else households.iloc[kept],
        crs=crs,
        merge_distance=merge_distance,
        barriers=metric_barriers,
        compounds=compounds if keep_compounds else None,
        split_above=split_limits(bounds),
        compound_buildings_col=compound_buildings_col,
    )
    if carving is not None:
        units = with_dedicated(units, carving, boundaries, households, piece, kept)
    return boundaries, households, units, metric_barriers, bounds


def barriers_near(barriers: gpd.GeoDataFrame | None, units: gpd.GeoDataFrame):
    """The barriers that touch the community's bounding box (keeps tasks small)."""
    if barriers is None:
        return None
    xmin, ymin, xmax, ymax = units.total_bounds
    near = barriers.cx[xmin:xmax, ymin:ymax]
    return near if len(near) else None


def ensure_household_columns(households: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Accept frames not made by ``read_households`` (e.g. the sample buildings), checked."""
    source = households.attrs.get("source", "`households`")
    if households.crs is None:
        raise InputError(
            f"{source} has no CRS: set it (`gdf.set_crs(4326)`) or read the file with "
            "`gridkit.read_households(..., input_crs=...)`."
        )
    hh = households.copy()
    if "household_id" not in hh:
        hh["household_id"] = (
            hh["building_id"].astype(str)
            if "building_id" in hh
            else (np.arange(len(hh)) + 1).astype(str)
        )
    if "households" not in hh:
        hh["households"] = 1
    if "row" not in hh:
        hh["row"] = np.arange(len(hh)) + 1
    counts = pd.to_numeric(hh["households"], errors="coerce")
    bad = ~np.isfinite(counts.to_numpy(dtype=float)) | (counts < 0) | (counts % 1 != 0)
    if bad.any():
        rows = hh.loc[bad.to_numpy(), "row"]
        raise InputError(
            f"{source}: column `households` must hold whole numbers >= 0; rows "
            f"{format_ids(rows)} do not ({format_ids(hh.loc[bad.to_numpy(), 'households'])}). "
            "Correct them, or read the file with `gridkit.read_households`, which explains "
            "each row."
        )
    hh["households"] = counts.astype(np.int64)
    empty = hh.geometry.isna() | hh.geometry.is_empty
    if empty.any():
        raise InputError(
            f"{source}: rows {format_ids(hh.loc[empty, 'row'])} have no geometry; "
            "give them a location or drop them."
        )
    return hh


def ensure_boundary_columns(boundaries: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Accept frames not made by ``read_boundaries``, checked for ids and CRS."""
    source = boundaries.attrs.get("source", "`boundaries`")
    if boundaries.crs is None:
        raise InputError(
            f"{source} has no CRS: set it (`gdf.set_crs(4326)`) or read the file with "
            "`gridkit.read_boundaries(..., input_crs=...)`."
        )
    if "community_id" not in boundaries:
        raise InputError(
            f"{source} has no `community_id` column (columns: "
            f"{format_ids(boundaries.columns)}); rename the id column or read the file with "
            "`gridkit.read_boundaries(..., id_col=...)`."
        )
    b = boundaries.copy()
    b["community_id"] = b["community_id"].astype(str)
    dup = b["community_id"].duplicated(keep=False)
    if dup.any():
        repeated = format_ids(sorted(set(b.loc[dup, "community_id"])))
        raise InputError(
            f"{source}: community ids must be unique; {repeated} "
            "appear more than once. Dissolve them (`gdf.dissolve(by='community_id', "
            "as_index=False)`) or give each community its own id."
        )
    if "community_name" not in b:
        b["community_name"] = b["community_id"]
    if "street" not in b:
        b["street"] = None
    return b

