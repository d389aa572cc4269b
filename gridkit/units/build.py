"""Build the atomic units of a partition: buildings and cells that tile each community.

A *unit* is one building: every household row with the same ``building_id``
(or, without building ids, at the same point to 0.1 m, or the same
footprint) in the same community.  A building is never split across grids.
Buildings at exactly the same point (two blocks sharing one geocode) are
merged into one unit.

:func:`build_units` does it for a district: household rows to buildings (by id, by
footprint, or grouped by distance, :mod:`gridkit.units.points`), a cell for each
(:mod:`gridkit.units.cells`), compound rows split where asked
(:mod:`gridkit.units.compounds`), all gathered in :class:`Units`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridkit.crs import local_metric_crs
from gridkit.errors import GridkitWarning, InputError, format_ids
from gridkit.units.cells import block_cells, community_blocks, unit_cells
from gridkit.units.compounds import (
    compound_building_counts,
    compound_row_names,
    split_compound_units,
)
from gridkit.units.parcels import Dedicated
from gridkit.units.points import MERGE_DISTANCE, community_of_points, group_points

__all__ = [
    "UNASSIGNED_REASONS",
    "Units",
    "build_units",
]

#: The stage's logger (the name units logged under as one module): stable for users who
#: configure it.
log = logging.getLogger("gridkit.units")


#: Why a household row is in no grid; these words appear in ``assignments.csv``.
UNASSIGNED_REASONS = {
    "outside_communities": "the point lies outside every community boundary",
}


_SNAP = 0.1  # metres: points closer than this on both axes are one location


@dataclass
class Units:
    """Units of a district, ready to be partitioned.

    Attributes
    ----------
    units
        One row per unit, in the local metric CRS ``crs``: ``unit_id``
        (0..n-1), ``community_id``, ``households``, ``rows`` (input rows),
        ``building_id`` and ``first_household_id`` (ids for messages), ``x``, ``y`` (the
        building point), ``unit_kind`` (``building``, or ``compound`` when every
        row is a whole compound), ``split_of`` (the compound a part of a split
        compound comes from, else None), ``buildings`` (1, or a compound's
        buildings) and ``geometry`` (the cell).
    membership
        One row per input household row, aligned with the households' index:
        ``unit_id`` (``<NA>`` when unassigned), ``community_id`` and ``reason``
        (empty, or a key of :data:`UNASSIGNED_REASONS`).
    communities
        The community boundaries in ``crs``, with ``n_units`` and ``households``.
    crs
        The local metric CRS (UTM zone) every geometry here is in.
    notes
        Per community id, remarks made while building cells (islands etc.).
    grouping
        Per community id with household points lacking a building id: how
        they were grouped into buildings (``rows``, ``buildings``,
        ``merge_distance_m``; see :func:`group_points`).
    dedicated
        The dedicated grids carved out of the communities (``--dedicated``), or None.
        With them, ``units`` and their cells cover each community less its parcels,
        ``communities`` keep their whole outlines, and ``membership`` holds every row
        (a row in a parcel has no unit: it is in the parcel's dedicated grid,
        :attr:`Dedicated.row_piece`).
    """

    units: gpd.GeoDataFrame
    membership: pd.DataFrame
    communities: gpd.GeoDataFrame
    crs: pyproj.CRS
    notes: dict[str, list[str]]
    grouping: dict[str, dict[str, float]] = field(default_factory=dict)
    dedicated: Dedicated | None = None


def _metric_geometries(layer: gpd.GeoDataFrame | None, metric: pyproj.CRS) -> np.ndarray:
    """A layer's valid, non-empty geometries in ``metric`` (empty when there is no layer)."""
    if layer is None or len(layer) == 0:
        return np.array([], dtype=object)
    if layer.crs is None:
        source = layer.attrs.get("source", "a barriers or compounds layer")
        raise InputError(
            f"{source} has no CRS: declare one in the file (e.g. write it as GeoJSON in "
            "WGS84) or call `gdf.set_crs(...)`."
        )
    geoms = layer.to_crs(metric).geometry.to_numpy()
    geoms = geoms[~shapely.is_missing(geoms)]
    geoms = np.where(shapely.is_valid(geoms), geoms, shapely.make_valid(geoms))
    return geoms[~shapely.is_empty(geoms)]


def _grouping_figures(
    rows: pd.DataFrame, loose: np.ndarray, distance: float, community_ids: np.ndarray
) -> dict[str, dict[str, float]]:
    """Rows without a building id and the buildings they were grouped into, per community."""
    frame = rows[rows["key"].str.startswith("g:") | rows["key"].str.startswith("p:")]
    frame = frame[frame["building"].isna()]
    if len(frame) == 0 or len(loose) == 0:
        return {}
    figures = frame.groupby("comm").agg(rows=("key", "size"), buildings=("key", "nunique"))
    return {
        str(community_ids[c]): {
            "rows": int(r.rows),
            "buildings": int(r.buildings),
            "merge_distance_m": float(distance),
        }
        for c, r in figures.iterrows()
    }


def _shared_location_notes(units: pd.DataFrame, community_ids: np.ndarray) -> dict[int, list[str]]:
    """Say where buildings with different ids share one location (and so form one unit)."""
    shared = units[units["ids"].map(len) > 1]
    notes: dict[int, list[str]] = {}
    for comm_idx, group in shared.groupby("comm", sort=True):
        examples = "; ".join(" + ".join(ids) for ids in group["ids"].head(3))
        notes[int(comm_idx)] = [
            f"{len(group)} location(s) hold several buildings with different ids at one point "
            f"({examples}{'; ...' if len(group) > 3 else ''}); the buildings at one location "
            "form one unit, so they always share a grid. Give them their own coordinates to "
            "let them go to different grids"
        ]
    return notes


def build_units(
    boundaries: gpd.GeoDataFrame,
    households: gpd.GeoDataFrame,
    *,
    crs: pyproj.CRS | str | None = None,
    merge_distance: float = MERGE_DISTANCE,
    barriers: gpd.GeoDataFrame | None = None,
    compounds: gpd.GeoDataFrame | None = None,
    split_above: int | Mapping[str, int] | None = None,
    compound_buildings_col: str | None = None,
) -> Units:
    """Group household rows into buildings and give each building a cell.

    Rows with a ``building_id`` form one building per id.  Rows without one
    (one point per household, the most basic input) form one building per
    group of points within ``merge_distance`` metres of each other
    (:func:`group_points`); footprints form one building per footprint.

    Parameters
    ----------
    boundaries
        Communities as returned by :func:`gridkit.read_boundaries`.
    households
        Households as returned by :func:`gridkit.read_households`.
    crs
        Metric CRS to work in; default the UTM zone of the boundaries.
    merge_distance
        Household points without a building id closer than this (metres) are one
        building (default :data:`MERGE_DISTANCE`, 5 m); 0 keeps only points at
        one location (to 0.1 m) together.
    barriers, compounds
        Roads, rivers, railways, walls (lines or polygons) and compound outlines
        (polygons), any CRS: each community is first cut into blocks along them
        (:func:`community_blocks`) and every cell is built inside its building's
        block (:func:`block_cells`), so no cell straddles a road or a compound
        wall and grid borders follow them wherever the plan keeps to them.
    split_above
        The grids' ``max_households`` (one number, or one per community id when
        communities have bounds of their own).  A row that is a whole compound (one
        point per compound, with its number of buildings in
        ``compound_buildings_col``) holding more than ``split_above``
        households is split into the fewest grids that fit, made of whole
        virtual buildings (households / buildings each): its cell is divided
        into that many parts (:func:`split_compound`), each a unit with
        ``split_of`` set, which the partition keeps as a grid of its own
        (status ``split_compound``).  ``None``: no split.
    compound_buildings_col
        Column giving a compound row's number of buildings (楼栋数); default the
        first of :data:`COMPOUND_BUILDING_COLUMNS` present.  When the
        households have one, every row is a compound (``unit_kind``
        ``compound``).

    Returns
    -------
    Units
        Units with cells, the row → unit membership and the unassigned rows.

    Warns
    -----
    GridkitWarning
        When household rows lie outside every community (they are listed as
        unassigned, never dropped).
    """
    if not (np.isfinite(merge_distance) and merge_distance >= 0):
        raise InputError(
            f"`merge_distance` must be a distance in metres >= 0, got {merge_distance}; "
            f"pass e.g. --merge-distance {MERGE_DISTANCE:g}."
        )
    metric = pyproj.CRS.from_user_input(crs) if crs is not None else local_metric_crs(boundaries)
    comm = boundaries.to_crs(metric).reset_index(drop=True)
    hh = households.to_crs(metric)
    geoms = hh.geometry.to_numpy()
    points = np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.point_on_surface(geoms))
    where = community_of_points(points, comm.geometry.to_numpy())
    community_ids = comm["community_id"].to_numpy()
    membership = pd.DataFrame(
        {
            "unit_id": pd.array([pd.NA] * len(hh), dtype="Int64"),
            "community_id": pd.array(
                np.where(where >= 0, community_ids[np.maximum(where, 0)], None), dtype="string"
            ),
            "reason": np.where(where >= 0, "", "outside_communities"),
        },
        index=hh.index,
    )
    outside = np.flatnonzero(where < 0)
    if len(hh) and len(outside) == len(hh):
        source = households.attrs.get("source", "households")
        raise InputError(
            f"none of the {len(hh)} household rows of {source} lies inside any community of "
            f"{boundaries.attrs.get('source', 'the boundaries')}: the two files are probably in "
            "different coordinate systems (e.g. Baidu BD-09 or Amap GCJ-02 points on WGS84 "
            "outlines). Pass --input-crs for the households (bd09, gcj02, wgs84 or EPSG:nnnn) "
            "and --communities-crs for the boundaries if they were traced on a Chinese web map."
        )
    if len(outside):
        rows = hh["row"].to_numpy()[outside] if "row" in hh else outside + 1
        source = households.attrs.get("source", "households")
        warnings.warn(
            f"{len(outside)} household row(s) of {source} lie outside every community "
            f"(rows {format_ids(rows)}); they are listed as unassigned with reason "
            "'outside_communities'. Check the input CRS (--input-crs) or extend the boundaries.",
            GridkitWarning,
            stacklevel=2,
        )
    inside = np.flatnonzero(where >= 0)
    xy = shapely.get_coordinates(points[inside])
    if "building_id" in hh and hh["building_id"].notna().any():
        building = hh["building_id"].to_numpy(dtype=object)[inside]
    else:
        building = np.full(len(inside), None, dtype=object)
    has_building = pd.notna(building)
    counts_b, compound_rows = compound_building_counts(hh, compound_buildings_col, households)
    compound_names = compound_row_names(hh)
    snapped = np.round(xy / _SNAP).astype(np.int64)
    footprint = shapely.get_type_id(geoms[inside]) != 0
    # household points without a building id are grouped by distance; a row that is a
    # whole compound (a compound-buildings column) stays a unit of its own
    loose = np.flatnonzero(~has_building & ~footprint & (not compound_rows))
    cluster = group_points(xy[loose], where[inside][loose], merge_distance)
    if footprint.any():
        wkb = shapely.to_wkb(shapely.normalize(geoms[inside]), hex=True)
    else:
        wkb = np.full(len(inside), "", dtype=object)
    key = np.array(
        [
            f"b:{b}" if has else (f"f:{f}" if fp else f"p:{sx}_{sy}")
            for b, has, fp, f, sx, sy in zip(
                building,
                has_building,
                footprint,
                wkb,
                snapped[:, 0],
                snapped[:, 1],
                strict=True,
            )
        ],
        dtype=object,
    )
    if merge_distance > 0 and len(loose):
        key[loose] = np.char.add("g:", cluster.astype(str)).astype(object)
    rows_frame = pd.DataFrame(
        {
            "pos": inside,
            "comm": where[inside],
            "key": key,
            "x": xy[:, 0],
            "y": xy[:, 1],
            "hh": hh["households"].to_numpy(dtype=np.int64)[inside],
            "building": pd.Series(building, dtype=object).where(has_building, None).to_numpy(),
            "compound": hh["compound"]
            .astype(object)
            .where(hh["compound"].notna(), None)
            .to_numpy()[inside]
            if "compound" in hh
            else np.full(len(inside), None, dtype=object),
            "hid": hh["household_id"].astype(str).to_numpy()[inside]
            if "household_id" in hh
            else (inside + 1).astype(str),
            "cb": counts_b[inside],
            "cname": compound_names[inside],
        }
    )
    first = rows_frame.groupby(["comm", "key"], sort=True).agg(
        x=("x", "mean"),
        y=("y", "mean"),
        hh=("hh", "sum"),
        n=("hh", "size"),
        building=("building", "first"),
        hid=("hid", "first"),
        compound=("compound", "first"),
        cb=("cb", "max"),
        cname=("cname", "first"),
    )
    # Rows of one building id far apart (one id, several geocodes) can average to a
    # point outside the community, e.g. across the notch of a U, whose Voronoi cell
    # misses the community: use the building's row point nearest to the mean instead.
    mean_points = shapely.points(first[["x", "y"]].to_numpy())
    comm_idx = first.index.get_level_values("comm").to_numpy()
    astray = np.flatnonzero(~shapely.covers(comm.geometry.to_numpy()[comm_idx], mean_points))
    for i in astray:
        members = rows_frame.loc[
            (rows_frame["comm"] == comm_idx[i])
            & (rows_frame["key"] == first.index.get_level_values("key")[i]),
            ["x", "y"],
        ].to_numpy()
        gaps = np.hypot(*(members - first[["x", "y"]].to_numpy()[i]).T)
        first.iloc[i, [first.columns.get_loc("x"), first.columns.get_loc("y")]] = members[
            int(np.argmin(gaps))
        ]
    first["rx"] = np.round(first["x"].to_numpy() / _SNAP).astype(np.int64)
    first["ry"] = np.round(first["y"].to_numpy() / _SNAP).astype(np.int64)
    first = first.reset_index()
    units = (
        first.groupby(["comm", "rx", "ry"], sort=True)
        .agg(
            households=("hh", "sum"),
            rows=("n", "sum"),
            building_id=("building", "first"),
            first_household_id=("hid", "first"),
            compound=("compound", "first"),
            ids=("building", lambda b: sorted({str(v) for v in b if v is not None})),
            cb=("cb", "max"),
            cname=("cname", "first"),
        )
        .reset_index()
    )
    shared_notes = _shared_location_notes(units, community_ids)
    grouping = _grouping_figures(rows_frame, loose, merge_distance, community_ids)
    units = units.drop(columns="ids")
    units["building_id"] = (
        units["building_id"].astype(object).where(units["building_id"].notna(), None)
    )
    units["unit_id"] = np.arange(len(units), dtype=np.int64)
    first = first.merge(units[["comm", "rx", "ry", "unit_id"]], on=["comm", "rx", "ry"])
    rows_frame = rows_frame.merge(first[["comm", "key", "unit_id"]], on=["comm", "key"])
    membership.iloc[rows_frame["pos"].to_numpy(), 0] = rows_frame["unit_id"].to_numpy()
    units["x"] = units["rx"] * _SNAP
    units["y"] = units["ry"] * _SNAP
    unit_points = shapely.points(units[["x", "y"]].to_numpy())
    cells = np.empty(len(units), dtype=object)
    notes: dict[str, list[str]] = {}
    cutters = {
        name: _metric_geometries(layer, metric)
        for name, layer in (("barriers", barriers), ("compounds", compounds))
    }
    trees = {name: shapely.STRtree(g) for name, g in cutters.items() if len(g)}
    for comm_idx, group in units.groupby("comm", sort=True):
        idx = group.index.to_numpy()
        outline = comm.geometry.iloc[comm_idx]
        near = {
            name: cutters[name][tree.query(outline, predicate="intersects")]
            for name, tree in trees.items()
        }
        if any(len(g) for g in near.values()):
            blocks = community_blocks(outline, near.get("barriers"), near.get("compounds"))
            cells[idx], comm_notes = block_cells(unit_points[idx], outline, blocks)
        else:
            cells[idx], comm_notes = unit_cells(unit_points[idx], outline)
        comm_notes = shared_notes.get(comm_idx, []) + comm_notes
        if comm_notes:
            notes[str(community_ids[comm_idx])] = comm_notes
    units["community_id"] = community_ids[units["comm"].to_numpy()]
    units["unit_kind"] = "compound" if compound_rows else "building"
    units["split_of"] = None
    units["buildings"] = np.where(np.isfinite(units["cb"]), units["cb"], 1).astype(np.int64)
    if compound_rows:  # a compound row is named by its name where it has no building id
        units["building_id"] = units["building_id"].where(
            units["building_id"].notna(), units["cname"]
        )
    if split_above is not None and compound_rows:
        units, cells, moved, split_notes = split_compound_units(
            units, cells, split_above=split_above
        )
        if moved is not None:
            old = membership["unit_id"]
            new = moved[old.fillna(0).to_numpy(dtype=np.int64)]
            membership["unit_id"] = pd.Series(new, index=old.index, dtype="Int64").where(
                old.notna(), pd.NA
            )
        for cid, extra in split_notes.items():
            notes.setdefault(cid, []).extend(extra)
    result = gpd.GeoDataFrame(
        units[
            [
                "unit_id",
                "community_id",
                "households",
                "rows",
                "building_id",
                "first_household_id",
                "compound",
                "x",
                "y",
                "unit_kind",
                "split_of",
                "buildings",
            ]
        ],
        geometry=gpd.GeoSeries(cells, crs=metric),
        crs=metric,
    )
    comm = comm.copy()
    comm["n_units"] = np.bincount(units["comm"], minlength=len(comm))
    comm["households"] = np.bincount(
        units["comm"], weights=units["households"], minlength=len(comm)
    ).astype(np.int64)
    log.info(
        "built %d units from %d household rows in %d communities (%d rows unassigned)",
        len(result),
        len(hh),
        len(comm),
        len(outside),
    )
    return Units(
        units=result,
        membership=membership,
        communities=comm,
        crs=metric,
        notes=notes,
        grouping=grouping,
    )
