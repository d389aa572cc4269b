"""Audit an existing grid map: households per grid, problems, gaps and overlaps.

:func:`audit_grids` takes any grid map (drawn by hand, exported by another
platform, or made by gridkit), the households and optionally the community
boundaries, and returns an :class:`AuditResult`: one row per grid with its
households, buildings and ``problems``, the uncovered parts of the
communities (gaps), and a report.  :func:`read_grids` reads a grid file.

Problem codes (a contract, in this order, joined by ``;`` in ``problems``)
    ``below_min``          fewer households than ``min_households``
    ``above_max``          more households than ``max_households``
    ``not_contiguous``     more than one piece
    ``overlap``            shares area with another grid
    ``outside_community``  extends beyond its community (communities given)
    ``crosses_community``  spans two or more communities (communities given)
    ``overlaps_dedicated`` a residential grid sharing area with a dedicated grid
                           (专属网格) of the map or a dedicated parcel given

Dedicated grids
    A grid whose ``grid_type`` is neither empty nor ``comprehensive`` (综合网格), or
    without that column whose ``status`` is ``dedicated``, is a dedicated grid: it has
    no household bounds.  Dedicated parcels given to the audit (``dedicated``) count
    as dedicated grids for ``overlaps_dedicated`` and are no community gap.

Tolerances
    Everything is measured in the local UTM zone
    (:func:`gridkit.crs.local_metric_crs`).  A shared, outside or uncovered
    part counts only if it is *significant*: each polygonal piece of it must
    be larger than ``tolerance_m2`` (default 1 m²) **and** wider than
    ``sliver_width_m`` (default 0.1 m) on average, the width being
    ``2 * area / perimeter``.  Digitising slivers along shared borders (a
    border drawn twice 2 cm apart, coordinates rounded to 7 decimals by a
    GeoJSON export, a reprojection) are therefore neither overlaps, nor
    outside parts, nor gaps.  A grid's pieces smaller than ``tolerance_m2``
    (crumbs) do not make it ``not_contiguous``.

Locating households
    Household rows of one building (same ``building_id``; without ids, same
    footprint or the same point to 0.1 m, as in :mod:`gridkit.units`) are one
    *building*, located at the mean of its rows' points (a footprint's point
    on surface), so a building is never split between grids.  A building
    strictly inside several grids is in each of them and its households count
    in ``households_in_several_grids``; a building exactly on the shared
    border of two grids goes to the first of them in input order; a building
    in no grid counts in ``households_outside_grids``.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridkit.audit._buildings import group_buildings, locate_in
from gridkit.audit._dedicated import (
    dedicated_in_map,
    dedicated_overlaps,
    parcel_geoms,
    read_parcels,
)
from gridkit.audit.grid_map import GRID_MAP_COLUMNS, read_grids
from gridkit.audit.report import (
    AuditResult,
    assignments_frame,
    gap_frame,
    grid_frame,
    join_codes,
    report_figures,
)
from gridkit.checks import count_pieces, is_significant, polygon_parts, significant_area
from gridkit.crs import local_metric_crs
from gridkit.errors import GridkitWarning, InputError, format_ids
from gridkit.io import (
    BOUNDARY_COLUMNS,
    HOUSEHOLD_COLUMNS,
    bounds_table,
    read_boundaries,
    read_households,
)

__all__ = ["SLIVER_WIDTH_M", "TOLERANCE_M2", "audit_grids"]

log = logging.getLogger(__name__)

#: A shared / outside / uncovered piece must be larger than this (m²) to count.
TOLERANCE_M2 = 1.0
#: ... and wider than this on average (m), the width being 2 * area / perimeter.
SLIVER_WIDTH_M = 0.1


def _normalised(frame: Any, columns: tuple[str, ...]) -> bool:
    return (
        isinstance(frame, gpd.GeoDataFrame)
        and frame.crs is not None
        and all(c in frame.columns for c in columns)
    )


def _as_grids(grids: Any, grid_code_col: str | None) -> gpd.GeoDataFrame:
    if grid_code_col is None and _normalised(grids, GRID_MAP_COLUMNS):
        out = grids.to_crs(4326).reset_index(drop=True)
        out.attrs = dict(grids.attrs)
        return out
    return read_grids(grids, grid_code_col=grid_code_col)


def _as_households(households: Any) -> gpd.GeoDataFrame:
    if _normalised(households, HOUSEHOLD_COLUMNS):
        out = households.to_crs(4326).reset_index(drop=True)
        out.attrs = dict(households.attrs)
        return out
    return read_households(households)


def _as_communities(communities: Any) -> gpd.GeoDataFrame:
    if _normalised(communities, BOUNDARY_COLUMNS):
        out = communities.to_crs(4326).reset_index(drop=True)
        out.attrs = dict(communities.attrs)
        return out
    return read_boundaries(communities)


def _split_compound_households(grids: pd.DataFrame, located: np.ndarray) -> np.ndarray:
    """Households per grid, with each compound split by building number checked as a group.

    A compound given as one point and split into several grids by building number
    (``compound`` on gridkit's grid layer) is located in one of them only: its
    households cannot be told apart by place.  When the households located in the
    compound's grids add up to what those grids declare, each grid is credited
    with its declared households; otherwise the located counts stand (and are
    flagged).
    """
    if "compound" not in grids or "households" not in grids:
        return located
    names = grids["compound"].to_numpy(dtype=object)
    declared = pd.to_numeric(grids["households"], errors="coerce").to_numpy()
    out = located.copy()
    for name in sorted({str(v) for v in names if v is not None and not pd.isna(v)}):
        members = np.flatnonzero(names == name)
        if np.isfinite(declared[members]).all() and int(located[members].sum()) == int(
            declared[members].sum()
        ):
            out[members] = declared[members].astype(np.int64)
    return out


def _check_parameters(
    min_households: int, max_households: int, tolerance_m2: float, sliver_width_m: float
) -> None:
    bad = []
    if min_households < 0 or max_households < 0:
        bad.append(
            f"`min_households`={min_households} and `max_households`={max_households} must be ≥ 0"
        )
    elif min_households > max_households:
        bad.append(
            f"`min_households`={min_households} is above `max_households`={max_households}: "
            "swap them"
        )
    if not (tolerance_m2 >= 0 and sliver_width_m >= 0):
        bad.append(
            f"`tolerance_m2`={tolerance_m2} and `sliver_width_m`={sliver_width_m} must be ≥ 0"
        )
    if bad:
        msg = "audit parameters: " + "; ".join(bad) + "."
        raise InputError(msg)


def audit_grids(
    grids: gpd.GeoDataFrame | str | os.PathLike[str],
    households: gpd.GeoDataFrame | pd.DataFrame | str | os.PathLike[str],
    *,
    communities: gpd.GeoDataFrame | str | os.PathLike[str] | None = None,
    min_households: int = 400,
    max_households: int = 800,
    grid_code_col: str | None = None,
    tolerance_m2: float = TOLERANCE_M2,
    sliver_width_m: float = SLIVER_WIDTH_M,
    dedicated: gpd.GeoDataFrame | str | os.PathLike[str] | None = None,
    community_rules: str | os.PathLike[str] | Mapping | None = None,
) -> AuditResult:
    """Count households and buildings per grid and list every grid's problems.

    Parameters
    ----------
    grids
        The grid map: a frame from :func:`read_grids`, any GeoDataFrame with
        a ``grid_code`` column (or ``grid_code_col``), or a file path.
    households
        Household points or building footprints: a frame from
        :func:`gridkit.read_households`, or anything it reads (read with its
        defaults; call it yourself for other columns or CRSs).
    communities
        Community boundaries (a frame from :func:`gridkit.read_boundaries`
        or anything it reads).  Needed for ``outside_community``,
        ``crosses_community`` and community gaps.
    min_households, max_households
        Household bounds per grid (``below_min`` / ``above_max``).  With ``communities``,
        a community's own bounds apply to its grids: ``min_households``/
        ``max_households`` columns of the communities, or their type looked up in
        ``community_rules`` (:func:`gridkit.io.bounds_table`); ``report["parameters"]
        ["community_bounds"]`` lists the communities with bounds of their own.
    grid_code_col
        Column with the grid codes when ``grids`` is not a :func:`read_grids` frame.
    tolerance_m2, sliver_width_m
        A shared, outside or uncovered piece counts only when larger than
        ``tolerance_m2`` and wider than ``sliver_width_m`` (2 × area /
        perimeter); see the module notes.
    dedicated
        Dedicated-grid parcels (schools, hospitals, parks, ...; a frame from
        :func:`gridkit.io.read_dedicated` or anything it reads): a residential grid
        overlapping one gets ``overlaps_dedicated``, and the parcels are no gap.
        The map's own dedicated grids (``grid_type``) are checked without it.

    community_rules
        Household bounds by community type (a TOML file or a dict, as for
        :func:`gridkit.make_grids`); needs ``communities`` with a type column.

    Returns
    -------
    AuditResult
        ``grids``, ``gaps``, ``assignments`` and ``report``.  The report holds
        ``parameters``; ``grids``, ``grids_with_problems`` and ``problems``
        (grids per problem code, every code present); ``households``,
        ``household_rows``, ``households_in_grids``,
        ``households_outside_grids``, ``households_in_several_grids`` (and
        the same as ``household_rows_*``), ``households_outside_communities``
        (``None`` without communities); ``gaps``, ``gap_area_m2``,
        ``households_in_gaps``, ``overlap_area_m2``; the ids of the household
        rows outside grids and in several grids; and one entry per grid with
        problems and per gap.  Identical inputs give identical results.

    Raises
    ------
    InputError
        Bad parameters, or input files the readers reject.

    Examples
    --------
    Two grids in Wuhan overlapping by a 96 m strip, with a 300-household
    building in the strip:

    >>> import geopandas as gpd, shapely
    >>> grids = gpd.GeoDataFrame({"grid_code": ["A-001", "A-002"]}, crs=4326,
    ...     geometry=[shapely.box(114.300, 30.60, 114.305, 30.605),
    ...               shapely.box(114.304, 30.60, 114.309, 30.605)])
    >>> homes = gpd.GeoDataFrame({"households": [450, 300, 500]}, crs=4326,
    ...     geometry=shapely.points([[114.301, 30.601], [114.3045, 30.602], [114.308, 30.601]]))
    >>> result = audit_grids(grids, homes)
    >>> result.grids["households"].tolist(), result.grids["problems"].tolist()
    ([750, 800], ['overlap', 'overlap'])
    >>> result.report["households_in_several_grids"]
    300
    """
    _check_parameters(min_households, max_households, tolerance_m2, sliver_width_m)
    g = _as_grids(grids, grid_code_col)
    hh = _as_households(households)
    comm = _as_communities(communities) if communities is not None else None
    parcels = read_parcels(dedicated)
    significant = {"tolerance_m2": tolerance_m2, "sliver_width_m": sliver_width_m}

    metric = local_metric_crs(g)
    G = np.asarray(g.geometry.to_crs(metric).array, dtype=object)
    n = len(G)
    codes = g["grid_code"].to_numpy(dtype=object)
    area = shapely.area(G)

    # pieces
    pieces = count_pieces(G, min_area_m2=tolerance_m2)

    # dedicated grids of the map, and residential grids over them or over parcels
    is_dedicated = dedicated_in_map(g)
    parcel_polys, parcel_labels = parcel_geoms(parcels, metric)
    over_dedicated = dedicated_overlaps(
        G, codes, is_dedicated, parcel_polys, parcel_labels, **significant
    )

    # overlaps (vectorised over candidate pairs from one STRtree query)
    tree = shapely.STRtree(G)
    a, b = tree.query(G, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    shared = (
        significant_area(shapely.intersection(G[a], G[b]), **significant)
        if len(a)
        else np.array([])
    )
    hit = shared > 0
    a, b, shared = a[hit], b[hit], shared[hit]
    overlap_m2 = np.bincount(a, weights=shared, minlength=n) + np.bincount(
        b, weights=shared, minlength=n
    )
    overlaps_with: list[list[str]] = [[] for _ in range(n)]
    for i, j in zip(a, b, strict=True):
        overlaps_with[i].append(codes[j])
        overlaps_with[j].append(codes[i])

    # households: buildings located in grids
    hh_metric = hh.to_crs(metric)
    bld = group_buildings(hh_metric)
    b_pt, b_grid = locate_in(bld.points, G)
    n_grids_of = np.bincount(b_pt, minlength=len(bld.points))
    grid_households = np.bincount(b_grid, weights=bld.households[b_pt], minlength=n).astype(
        np.int64
    )
    grid_buildings = np.bincount(b_grid, minlength=n).astype(np.int64)
    grid_households = _split_compound_households(g, grid_households)

    # communities
    outside_m2 = np.zeros(n)
    covered: list[list[str]] = [[] for _ in range(n)]
    community_of = g["community_id"].to_numpy(dtype=object).copy()
    unknown_ids: list[str] = []
    gap_geoms: list[Any] = []
    gap_comm: list[int] = []
    bld_in_comm = None
    if comm is not None:
        C = np.asarray(comm.geometry.to_crs(metric).array, dtype=object)
        comm_ids = comm["community_id"].to_numpy(dtype=object)
        index_of = {cid: k for k, cid in enumerate(comm_ids)}
        own = np.array(
            [index_of.get(c, -1) if c is not None and not pd.isna(c) else -1 for c in community_of],
            dtype=np.int64,
        )
        unknown_ids = sorted(
            {str(c) for c, k in zip(community_of, own, strict=True) if k < 0 and pd.notna(c)}
        )
        everything = shapely.union_all(C)
        target = np.where(own >= 0, C[np.maximum(own, 0)], everything)
        outside_m2 = significant_area(shapely.difference(G, target), **significant)
        ctree = shapely.STRtree(C)
        gi, ci = ctree.query(G, predicate="intersects")
        share = (
            significant_area(shapely.intersection(G[gi], C[ci]), **significant)
            if len(gi)
            else np.array([])
        )
        frame = pd.DataFrame({"g": gi, "c": ci, "share": share})
        frame = frame[frame["share"] > 0].sort_values(
            ["g", "share", "c"], ascending=[True, False, True]
        )
        for gk, ck in zip(frame["g"].to_numpy(), frame["c"].to_numpy(), strict=True):
            covered[gk].append(comm_ids[ck])
        for k in range(n):
            if (community_of[k] is None or pd.isna(community_of[k])) and covered[k]:
                community_of[k] = covered[k][0]
        # gaps: each community minus the grids touching it
        grids_of_comm = pd.Series(gi).groupby(ci).apply(list).to_dict() if len(ci) else {}
        for k, poly in enumerate(C):
            members = grids_of_comm.get(k, [])
            rest = shapely.difference(poly, shapely.union_all(G[members])) if members else poly
            if len(parcel_polys):  # a dedicated parcel is no gap
                rest = shapely.difference(rest, shapely.union_all(parcel_polys))
            pieces_k, _ = polygon_parts(np.array([rest], dtype=object))
            for piece in pieces_k[is_significant(pieces_k, **significant)]:
                gap_geoms.append(piece)
                gap_comm.append(k)
        b_in, _ = locate_in(bld.points, C)
        bld_in_comm = np.zeros(len(bld.points), dtype=bool)
        bld_in_comm[b_in] = True
    else:
        union = shapely.union_all(G)
        holes = []
        for poly in polygon_parts(np.array([union], dtype=object))[0]:
            holes.extend(shapely.polygons(list(poly.interiors)) if poly.interiors else [])
        holes_arr = np.array(holes, dtype=object)
        if len(holes_arr):
            for piece in holes_arr[is_significant(holes_arr, **significant)]:
                gap_geoms.append(piece)
                gap_comm.append(-1)

    # problems per grid, at the bounds of each grid's community
    grid_min = np.full(n, min_households, dtype=np.int64)
    grid_max = np.full(n, max_households, dtype=np.int64)
    own_bounds = None
    if comm is not None:
        table = bounds_table(
            comm, min_households=min_households, max_households=max_households,
            community_rules=community_rules,
        ).set_index("community_id")  # fmt: skip
        ids = pd.Series(community_of, dtype=object).astype("string")
        grid_min = ids.map(table["min_households"]).fillna(min_households).to_numpy(np.int64)
        grid_max = ids.map(table["max_households"]).fillna(max_households).to_numpy(np.int64)
        own = table[table["source"] != "run"]
        if len(own):
            own_bounds = {
                str(cid): {"min_households": int(r.min_households),
                           "max_households": int(r.max_households), "source": r.source}
                for cid, r in own.iterrows()
            }  # fmt: skip
    elif community_rules is not None:
        raise InputError(
            "`community_rules` needs the communities (--communities) to look their types up."
        )
    flags = {
        "below_min": (grid_households < grid_min) & ~is_dedicated,
        "above_max": (grid_households > grid_max) & ~is_dedicated,
        "not_contiguous": pieces > 1,
        "overlap": overlap_m2 > 0,
        "outside_community": outside_m2 > 0,
        "crosses_community": np.array([len(c) >= 2 for c in covered], dtype=bool),
        "overlaps_dedicated": over_dedicated.area > 0,
    }
    problems = [join_codes(code for code, mask in flags.items() if mask[k]) for k in range(n)]

    # gaps with the households of buildings in no grid
    gaps = gap_frame(gap_geoms, gap_comm, comm, metric)
    outside = n_grids_of == 0
    b_gap = np.full(len(bld.points), -1, dtype=np.int64)
    if len(gaps):
        gp = np.asarray(gaps.geometry.to_crs(metric).array, dtype=object)
        idx = np.flatnonzero(outside)
        p, q = locate_in(bld.points[idx], gp)
        first = pd.DataFrame({"p": p, "q": q}).drop_duplicates("p")
        b_gap[idx[first["p"].to_numpy(dtype=np.int64)]] = first["q"].to_numpy(dtype=np.int64)
        in_gap = b_gap >= 0
        gaps["households"] = np.bincount(
            b_gap[in_gap], weights=bld.households[in_gap], minlength=len(gaps)
        ).astype(np.int64)
        gaps["buildings"] = np.bincount(b_gap[in_gap], minlength=len(gaps)).astype(np.int64)
        gaps["household_rows"] = np.bincount(
            b_gap[in_gap], weights=bld.rows[in_gap], minlength=len(gaps)
        ).astype(np.int64)

    out = grid_frame(
        g,
        codes=codes,
        community_of=community_of,
        households=grid_households,
        buildings=grid_buildings,
        problems=problems,
        area=area,
        pieces=pieces,
        overlap_m2=overlap_m2,
        overlaps_with=overlaps_with,
        outside_m2=outside_m2,
        covered=covered,
        dedicated_overlap_m2=over_dedicated.area,
        dedicated_overlaps=over_dedicated.with_,
    )
    assignments = assignments_frame(hh, bld, b_pt, b_grid, b_gap, codes, gaps)
    report = report_figures(
        out,
        gaps,
        hh,
        bld,
        assignments,
        n_grids_of=n_grids_of,
        bld_in_comm=bld_in_comm,
        parameters={
            "min_households": int(min_households),
            "max_households": int(max_households),
            "tolerance_m2": float(tolerance_m2),
            "sliver_width_m": float(sliver_width_m),
            "metric_crs": pyproj.CRS.from_user_input(metric).to_string(),
            "grids": str(g.attrs.get("source", "")) or None,
            "households": str(hh.attrs.get("source", "")) or None,
            "communities": (str(comm.attrs.get("source", "")) or None)
            if comm is not None
            else None,
            "dedicated": (str(parcels.attrs.get("source", "")) or None)
            if parcels is not None
            else None,
        },
        unknown_ids=unknown_ids,
        dedicated_grids=int(is_dedicated.sum()),
    )
    if own_bounds:
        report["parameters"]["community_bounds"] = own_bounds
    if unknown_ids:
        warnings.warn(
            f"{len(unknown_ids)} community id(s) of the grid map are not in the community "
            f"boundaries ({format_ids(unknown_ids)}); those grids were checked against all "
            "communities together. Check the `community_id` column of the grids, or pass the "
            "matching boundaries.",
            GridkitWarning,
            stacklevel=2,
        )
    log.info(
        "audited %d grids: %d with problems, %d households outside grids, %d gaps",
        n,
        report["grids_with_problems"],
        report["households_outside_grids"],
        report["gaps"],
    )
    return AuditResult(grids=out, gaps=gaps, assignments=assignments, report=report)
