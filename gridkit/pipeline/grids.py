"""The layers of a plan: community plans to grid rows, grid rows to the grid layer, units
to the buildings layer.

Shared by the in-memory run (:func:`gridkit.pipeline.make_grids`) and the file-to-file
run (:func:`gridkit.pipeline.partition_files`), so both write the same grids.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.codes import community_divisions, grid_code, grid_name, residential_grid_code
from gridkit.contracts import COMPREHENSIVE, DEDICATED
from gridkit.partition import CommunityPlan
from gridkit.units import dissolve_cells

__all__ = [
    "COMPOUND_SEPARATOR",
    "GridRow",
    "buildings_layer",
    "community_grids",
    "compounds_by_grid",
    "empty_grid",
    "grid_layer",
    "split_compounds_of",
    "unit_compound_names",
]

#: Separator of the compound names of a grid (``compounds``), as staffing joins names.
COMPOUND_SEPARATOR = "、"


#: One grid before numbering and measuring: code, community, households, buildings,
#: geometry (metric CRS) and status.
GridRow = tuple[str, str, int, int, shapely.Geometry, str]


def community_grids(units: pd.DataFrame, plan: CommunityPlan) -> tuple[np.ndarray, list[GridRow]]:
    """The grid code of each unit of one community and its grids (cells dissolved).

    Parameters
    ----------
    units
        The community's units (cells in a metric CRS), aligned with ``plan.labels``.
    plan
        Its plan.

    Returns
    -------
    codes, grids
        Codes aligned with ``units``; one :data:`GridRow` per grid, by code.  A grid of
        status ``ok`` made of several polygons (a community in several parts) becomes
        ``multi_part``.
    """
    cid = plan.community_id
    codes = np.array([residential_grid_code(cid, int(s)) for s in plan.labels], dtype=object)
    status_of = {residential_grid_code(cid, s): st for s, st in plan.grid_status.items()}
    rows: list[GridRow] = []
    if not len(units):
        return codes, rows
    keys = codes.astype(str)
    uniq, geoms = dissolve_cells(units.geometry.to_numpy(), keys)
    hh = units.groupby(keys)["households"].sum()
    # buildings: a unit is one building, a compound row its known buildings
    if "buildings" in units:
        nb = units["buildings"].groupby(keys).sum()
    else:
        nb = units.groupby(keys).size()
    community = units.groupby(keys)["community_id"].first()
    for code, geom in zip(uniq, geoms, strict=True):
        status = status_of[code]
        if status == "ok" and shapely.get_num_geometries(geom) > 1:
            # Only a community in several parts (islands without buildings) does this.
            status = "multi_part"
        rows.append((str(code), community[code], int(hh[code]), int(nb[code]), geom, status))
    return codes, rows


def empty_grid(community_id: str, geometry: shapely.Geometry) -> GridRow:
    """The one grid of a community without households: the whole community, ``below_min``."""
    return (grid_code(str(community_id), 1), community_id, 0, 0, geometry, "below_min")


def grid_layer(
    rows: list[GridRow],
    communities: gpd.GeoDataFrame,
    crs,
    compound_of: Mapping[str, str] | None = None,
    *,
    compounds: Mapping[str, str] | None = None,
    dedicated: Mapping[str, tuple[str, str]] | None = None,
) -> gpd.GeoDataFrame:
    """The grid layer (:data:`GRID_COLUMNS`, in ``crs``) from grid rows, sorted by code.

    Parameters
    ----------
    rows
        The grids.
    communities
        Every community (``community_id``, ``community_name``, ``street`` and any other
        columns of the communities file: the hierarchy is read from them,
        :func:`gridkit.codes.community_divisions`).
    crs
        The CRS of the rows' geometries.
    compound_of
        Per grid code, the compound split by building number whose strip the grid
        holds (:func:`split_compounds_of`); ``compound`` is null elsewhere.
    compounds
        Per grid code, the names of the compounds whose buildings lie in it
        (:func:`compounds_by_grid`); ``compounds`` is null elsewhere.
    dedicated
        Per dedicated grid code (status ``dedicated``), its ``(grid_type, grid_name)``;
        every other grid is ``comprehensive`` and named ``<community>第N网格``.
    """
    compound_of = compound_of or {}
    compounds = compounds or {}
    dedicated = dedicated or {}
    by_id = communities.set_index("community_id")
    divisions = community_divisions(communities).set_axis(by_id.index)
    frame = pd.DataFrame(
        rows, columns=["grid_code", "community_id", "households", "buildings", "geometry", "status"]
    )
    frame = frame.sort_values("grid_code", kind="stable").reset_index(drop=True)
    geoms = frame["geometry"].to_numpy()
    info = by_id.loc[frame["community_id"]]
    hierarchy = divisions.loc[frame["community_id"]]
    seqs = [int(c[-3:]) for c in frame["grid_code"]]
    codes = [str(c) for c in frame["grid_code"]]
    own = [dedicated.get(c) if st == DEDICATED else None for c, st in zip(codes, frame["status"],
                                                                          strict=True)]
    return gpd.GeoDataFrame(
        {
            "grid_code": codes,
            "grid_name": [
                grid_name(str(n), s) if d is None else d[1]
                for n, s, d in zip(info["community_name"], seqs, own, strict=True)
            ],
            "community_id": frame["community_id"].astype(str).to_numpy(),
            "community_name": info["community_name"].astype(str).to_numpy(),
            "street": info["street"].to_numpy(dtype=object) if "street" in info else None,
            "households": frame["households"].to_numpy(dtype=np.int64),
            "buildings": frame["buildings"].to_numpy(dtype=np.int64),
            "area_m2": np.round(shapely.area(geoms), 1),
            "compactness": np.round(_polsby_popper(geoms), 4),
            "status": frame["status"].to_numpy(dtype=object),
            "compound": np.array(
                [compound_of.get(str(c)) for c in frame["grid_code"]], dtype=object
            ),
            "grid_type": np.array(
                [COMPREHENSIVE if d is None else d[0] for d in own], dtype=object
            ),
            **{
                col: pd.Series(hierarchy[col].to_numpy(dtype=object), dtype=object)
                for col in ("street_code", "district_code", "district_name")
            },
            "compounds": pd.Series([compounds.get(c) for c in codes], dtype=object),
        },
        geometry=gpd.GeoSeries(geoms, crs=crs),
        crs=crs,
    )


def _polsby_popper(geoms: np.ndarray) -> np.ndarray:
    """Polsby–Popper compactness ``4*pi*A / P**2`` (1 for a circle)."""
    area = shapely.area(geoms)
    perimeter = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        pp = np.where(perimeter > 0, 4 * math.pi * area / perimeter**2, 0.0)
    return pp


def split_compounds_of(codes: np.ndarray, split_of: np.ndarray) -> dict[str, str]:
    """Grid code -> the compound whose strip it holds (compounds split by building number).

    ``codes`` and ``split_of`` are per unit (``split_of`` None for an ordinary unit).
    """
    out: dict[str, str] = {}
    for code, name in zip(codes, split_of, strict=True):
        if name is not None and not pd.isna(name) and str(code) not in out:
            out[str(code)] = str(name)
    return out


def unit_compound_names(units: pd.DataFrame) -> np.ndarray:
    """The compound (小区) of each unit, or None.

    The unit's ``compound`` (from compound outlines or a ``compound`` column); for a
    row that is a whole compound (``unit_kind`` ``compound``), the compound it is a
    part of (``split_of``) or its own name (its ``building_id``).
    """
    n = len(units)
    out = np.full(n, None, dtype=object)
    if "compound" in units:
        named = units["compound"].notna().to_numpy()
        out[named] = units["compound"].to_numpy(dtype=object)[named].astype(str)
    if "unit_kind" in units:
        whole = (units["unit_kind"] == "compound").to_numpy() & pd.isna(out)
        if whole.any():
            split = (
                units["split_of"].to_numpy(dtype=object)
                if "split_of" in units
                else np.full(n, None, dtype=object)
            )
            own = units["building_id"].to_numpy(dtype=object)
            for i in np.flatnonzero(whole):
                name = split[i] if not pd.isna(split[i]) else own[i]
                out[i] = None if pd.isna(name) else str(name)
    return out


def compounds_by_grid(codes: np.ndarray, names: np.ndarray) -> dict[str, str]:
    """Grid code -> the names of its compounds, sorted, joined by ``、`` (grids with any).

    ``codes`` and ``names`` are per building (``names`` None outside compounds).

    Examples
    --------
    >>> compounds_by_grid(np.array(["A", "A", "B", "A"]), np.array(["乙", "甲", None, "乙"]))
    {'A': '乙、甲'}
    """
    frame = pd.DataFrame({"code": np.asarray(codes, dtype=object),
                          "name": np.asarray(names, dtype=object)})  # fmt: skip
    frame = frame[frame["name"].notna() & frame["code"].notna() & (frame["code"] != "")]
    return {
        str(code): COMPOUND_SEPARATOR.join(sorted({str(n) for n in group}))
        for code, group in frame.groupby("code", sort=True)["name"]
    }


def buildings_layer(units: pd.DataFrame, codes: np.ndarray, crs) -> gpd.GeoDataFrame:
    """The ``buildings.geojson`` layer: one point per unit, in EPSG:4326.

    ``units`` holds ``unit_id``, ``building_id``, ``community_id``, ``households``,
    ``rows``, ``x`` and ``y`` (in ``crs``) for every unit of the district, in unit
    order, and ``compound`` (its compound's name, :func:`unit_compound_names`) when
    known; ``codes`` the grid code of each.
    """
    ids = [
        b if isinstance(b, str) and b else f"U{i:06d}"
        for b, i in zip(units["building_id"], units["unit_id"], strict=True)
    ]
    ids = pd.Series(ids)
    dup = ids.duplicated(keep=False)
    ids[dup] = ids[dup] + "@" + units["community_id"].astype(str).to_numpy()[dup.to_numpy()]
    points = gpd.GeoSeries(gpd.points_from_xy(units["x"], units["y"]), crs=crs)
    return gpd.GeoDataFrame(
        {
            "building_id": ids.to_numpy(dtype=object),
            "community_id": units["community_id"].astype(str).to_numpy(dtype=object),
            "grid_code": np.asarray(codes, dtype=object),
            "households": units["households"].to_numpy(dtype=np.int64),
            "rows": units["rows"].to_numpy(dtype=np.int64),
            "compound": units["compound"].to_numpy(dtype=object)
            if "compound" in units
            else np.full(len(units), None, dtype=object),
        },
        geometry=points.to_numpy(),
        crs=crs,
    ).to_crs(4326)

