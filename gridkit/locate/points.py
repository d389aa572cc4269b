"""The grid of any point: which grid holds it, its community, street and people.

A request (民呼我应, 12345) or a dispute arrives as a point; :func:`locate_points` answers,
for every point, the grid that holds it and who is responsible there.  A point inside a
grid gets that grid (``match`` = ``inside``); a point on the line between two grids gets
the first of them in grid-code order (``edge``), the rule :func:`gridkit.units.community_of_points`
applies to communities; a point outside every grid gets the nearest grid and the distance
(``nearest``), with a reason.  No point is dropped: one answer row per input row, in order.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.audit import read_grids
from gridkit.contracts import ROLE_LABELS, ROLES
from gridkit.crs import local_metric_crs
from gridkit.errors import InputError
from gridkit.export import OutputSet, spreadsheet_safe, to_geojson
from gridkit.io import read_households
from gridkit.staffing import read_previous_roster
from gridkit.units import community_of_points

__all__ = ["LOCATE_COLUMNS", "MATCHES", "locate_points", "write_located"]

log = logging.getLogger(__name__)

#: Columns of :func:`locate_points`' answer, in order; one column per role of the roster
#: (``grid_worker``, ``police``, ... with the names, joined by "、") follows, then
#: ``lon``/``lat`` (WGS84) and the geometry.
LOCATE_COLUMNS = (
    "point_row",
    "point_id",
    "grid_code",
    "grid_name",
    "community_id",
    "community_name",
    "street",
    "street_code",
    "district_code",
    "district_name",
    "grid_type",
    "match",
    "distance_m",
    "reason",
)

#: How a point was matched: inside a grid, on the line between grids, or nearest to one.
MATCHES = ("inside", "edge", "nearest")


def _people(roster: pd.DataFrame, grids: gpd.GeoDataFrame) -> pd.DataFrame:
    """One row per grid code: the names of each role's people, joined by "、".

    People of community scope (``scope`` = ``community``) are listed for every grid of
    their community, after the grid's own.
    """
    codes = grids["grid_code"].astype(str).to_numpy()
    communities = grids["community_id"].astype(str).to_numpy()
    roster = roster.astype({"grid_code": "string", "role": str, "name": str})
    if "scope" not in roster:
        roster["scope"] = "grid"
    if "community_id" not in roster:
        roster["community_id"] = None
    present = set(roster["role"])
    roles = [r for r in ROLES if r in present] + sorted(present - set(ROLES))
    out = pd.DataFrame(index=pd.Index(codes, name="grid_code"))
    for role in roles:
        mine = roster[roster["role"] == role]
        community_scope = mine["scope"] == "community"
        own = mine[~community_scope].groupby("grid_code")["name"].agg("、".join)
        shared = (
            mine[community_scope].astype({"community_id": str}).groupby("community_id")["name"]
            .agg("、".join)
        )
        names = []
        for code, community in zip(codes, communities, strict=True):
            parts = [own.get(code), shared.get(community)]
            names.append("、".join(p for p in parts if isinstance(p, str)) or None)
        out[role] = names
    return out


def locate_points(
    grids: Any,
    points: Any,
    *,
    roster: Any = None,
    id_col: str | None = None,
    lon_col: str | None = None,
    lat_col: str | None = None,
    input_crs: Any = None,
    layer: str | int | None = None,
) -> gpd.GeoDataFrame:
    """The grid, community, street and responsible people of every point.

    Parameters
    ----------
    grids
        An output folder of ``gridkit partition``, ``regenerate`` or ``assign``, a grid
        layer file, or a GeoDataFrame of grids (read by :func:`gridkit.audit.read_grids`).
    points
        Points in any format gridkit reads (GeoJSON, GeoPackage, Shapefile, CSV/TSV with
        lon/lat columns, a DataFrame or GeoDataFrame) and any CRS it knows (see
        :func:`gridkit.io.read_households`, whose ``id_col``, ``lon_col``, ``lat_col``,
        ``input_crs`` and ``layer`` apply).  Polygons are located by a point inside them.
    roster
        Optional: the folder written by ``gridkit assign``, its ``roster.csv``, or a roster
        DataFrame.  Adds one column per role with the names of the grid's people (people of
        community scope are listed for every grid of their community).  Without it, role
        columns already on the grid layer (a layer written by ``gridkit assign``) are used.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per input row, in input order, in EPSG:4326: :data:`LOCATE_COLUMNS`, the
        role columns, ``lon``, ``lat`` and the point.  ``match`` is ``inside``, ``edge``
        (on the line between grids: the first grid in code order) or ``nearest`` (outside
        every grid: the nearest grid, ``distance_m`` to it and a ``reason``).

    Raises
    ------
    InputError
        When a file is missing or unreadable, or a row is unusable (the message names the
        file, the rows and the fix, as for every gridkit reader).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> grids = gpd.GeoDataFrame({"grid_code": ["G1", "G2"], "community_id": ["C", "C"],
    ...     "geometry": [shapely.box(114.30, 30.60, 114.31, 30.61),
    ...                  shapely.box(114.31, 30.60, 114.32, 30.61)]}, crs=4326)
    >>> pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy([114.305, 114.31, 114.33],
    ...                                                       [30.605, 30.605, 30.605]), crs=4326)
    >>> out = locate_points(grids, pts)
    >>> out[["grid_code", "match"]].to_numpy().tolist()
    [['G1', 'inside'], ['G1', 'edge'], ['G2', 'nearest']]
    >>> round(out["distance_m"].iloc[2])
    959
    """
    layer_grids = read_grids(grids)
    try:
        pts = read_households(
            points, id_col=id_col, lon_col=lon_col, lat_col=lat_col, input_crs=input_crs,
            layer=layer,
        )  # fmt: skip
    except InputError as exc:  # the reader's words are about households: these are points
        raise InputError(str(exc).replace("households '", "points '", 1)) from None
    # grid-code order decides a point on a shared line, whatever the layer's row order
    layer_grids = layer_grids.sort_values("grid_code", kind="stable").reset_index(drop=True)
    # containment in the grids' own lon/lat (a point on a grid line stays on it); distances
    # to the nearest grid in metres
    grid_w = layer_grids.geometry.to_numpy()
    geom = pts.geometry.to_numpy()
    is_point = shapely.get_type_id(geom) == 0
    where = np.where(is_point, geom, shapely.point_on_surface(geom))
    index = community_of_points(where, grid_w)
    inside = shapely.contains_properly(grid_w[np.maximum(index, 0)], where) & (index >= 0)
    match = np.where(index < 0, "nearest", np.where(inside, "inside", "edge")).astype(object)
    distance = np.zeros(len(where))
    outside = np.flatnonzero(index < 0)
    if len(outside):
        metric = local_metric_crs(layer_grids)
        tree = shapely.STRtree(layer_grids.to_crs(metric).geometry.to_numpy())
        away = gpd.GeoSeries(where[outside], crs=4326).to_crs(metric).to_numpy()
        (pt, poly), dist = tree.query_nearest(away, return_distance=True, all_matches=True)
        first = np.unique(pt, return_index=True)[1]  # ties: the first grid in code order
        index[outside[pt[first]]] = poly[first]
        distance[outside[pt[first]]] = dist[first]

    chosen = layer_grids.iloc[index]
    out = pd.DataFrame(
        {
            "point_row": pts["row"].to_numpy(),
            "point_id": pts["household_id"].to_numpy(dtype=object),
            "grid_code": chosen["grid_code"].to_numpy(dtype=object),
        }
    )
    for field in LOCATE_COLUMNS[3:11]:  # grid name ... grid type, as the grid layer has them
        out[field] = (
            chosen[field].to_numpy(dtype=object) if field in chosen else np.full(len(out), None)
        )
    out["match"] = match
    out["distance_m"] = np.round(distance, 1)
    reason = np.full(len(out), "", dtype=object)
    for i in outside:
        reason[i] = (
            f"outside every grid: the nearest grid {out.at[i, 'grid_code']} is "
            f"{distance[i]:,.0f} m away (point on a road, a river or beyond the district?)"
        )
    out["reason"] = reason

    people = _people(_roster(roster), layer_grids) if roster is not None else None
    role_cols = (
        list(people.columns)
        if people is not None
        else [r for r in ROLES if r in layer_grids.columns]
    )
    for role in role_cols:
        source = people[role] if people is not None else layer_grids.set_index("grid_code")[role]
        out[role] = source.reindex(out["grid_code"].astype(str)).to_numpy(dtype=object)
    out["lon"] = np.round(shapely.get_x(where), 7)
    out["lat"] = np.round(shapely.get_y(where), 7)
    result = gpd.GeoDataFrame(out, geometry=where, crs=4326)
    result.attrs["roles"] = {r: ROLE_LABELS.get(r, r) for r in role_cols}
    counts = pd.Series(match).value_counts()
    log.info(
        "located %d points: %d inside a grid, %d on a grid line, %d outside every grid",
        len(out), counts.get("inside", 0), counts.get("edge", 0), counts.get("nearest", 0),
    )
    return result


def _roster(roster: Any) -> pd.DataFrame | None:
    if isinstance(roster, pd.DataFrame):
        return roster
    table, _ = read_previous_roster(roster)
    return table


def write_located(located: gpd.GeoDataFrame, path: str | os.PathLike) -> Path:
    """Write :func:`locate_points`' answer: ``.geojson`` as points, else CSV for Excel.

    The CSV is UTF-8 with a byte-order mark (Excel opens it in Chinese) and no cell of it
    runs as a formula; the file is written whole or not at all.
    """
    path = Path(path)
    with OutputSet(path.parent, "locate", label=path.name, manifest=False) as out:
        if path.suffix.lower() in (".geojson", ".json"):
            to_geojson(located, out.path(path.name))
        else:
            table = spreadsheet_safe(pd.DataFrame(located.drop(columns="geometry")))
            table.to_csv(out.path(path.name), index=False, encoding="utf-8-sig")
        written = out.commit()
    return written[path.name]
