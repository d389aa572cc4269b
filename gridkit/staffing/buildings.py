"""The buildings that building roles (楼栋长, 街巷长) serve: :func:`read_staffing_buildings`.

A role with ``scope = "building"`` needs one person per building (of at least
``min_households`` households).  The buildings come from the plan's ``buildings.geojson``
(``gridkit partition`` writes one point per building with ``building_id``, ``grid_code``
and ``households``), or any point layer or table :func:`gridkit.io.read_households`
reads: rows sharing a building id are summed into one building, and buildings without a
``grid_code`` are placed in the grid they lie in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.contracts import PLAN_FILES
from gridkit.errors import InputError, format_ids
from gridkit.io import Problems, read_households, rows_text

__all__ = ["BUILDING_COLUMNS", "BuildingsLike", "buildings_beside", "read_staffing_buildings"]

#: Buildings to staff: a GeoDataFrame, a ``buildings.geojson`` (any layer
#: :func:`gridkit.io.read_households` reads) or the ``gridkit partition`` folder holding it.
BuildingsLike = gpd.GeoDataFrame | pd.DataFrame | str | os.PathLike[str]

#: Columns of :func:`read_staffing_buildings`' result, in order.
BUILDING_COLUMNS = ("building_id", "grid_code", "community_id", "households", "row", "geometry")


def read_staffing_buildings(buildings: BuildingsLike, grids: gpd.GeoDataFrame
                            ) -> gpd.GeoDataFrame:
    """Read the buildings of a plan and match them to the grids to staff.

    Parameters
    ----------
    buildings
        The ``buildings.geojson`` written by ``gridkit partition`` (or its folder), any
        point or footprint layer / table with ``households`` that
        :func:`gridkit.io.read_households` reads, or a (Geo)DataFrame (copied).  Rows
        sharing a ``building_id`` form one building (households summed, the first
        row's point); rows without one are buildings of their own.
    grids
        The grid layer being staffed (:func:`~gridkit.staffing.read_staffing_grids`).

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, one row per building sorted by ``building_id``: :data:`BUILDING_COLUMNS`
        (``row``: the first source row of the building; ``geometry``: a point).

    Raises
    ------
    InputError
        If the file is missing or unreadable, a ``grid_code`` is not in the grid layer,
        a building without ``grid_code`` lies outside every grid, or building ids repeat
        with different grid codes.
    """
    if isinstance(buildings, str | os.PathLike):
        path = Path(buildings)
        if path.is_dir():
            path = path / PLAN_FILES["buildings"]
        if not path.is_file():
            msg = (
                f"buildings '{path}' not found: a building role (scope = \"building\") needs "
                "the buildings of the plan; pass the buildings.geojson written by `gridkit "
                "partition` (`buildings=...`, CLI `--buildings PATH`)."
            )
            raise InputError(msg)
        buildings = path
    frame = read_households(buildings)
    source = str(frame.attrs.get("source"))
    problems = Problems(source, "buildings")
    rows = frame["row"].to_numpy(dtype=np.int64)
    ids = frame["building_id"].astype(object).to_numpy().copy()
    missing = pd.isna(ids)
    ids[missing] = [f"row{r}" for r in rows[missing]]
    ids = ids.astype(str)
    geoms = np.asarray(frame.geometry.array, dtype=object)
    points = np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.point_on_surface(geoms))

    codes = grids["grid_code"].astype(str).to_numpy()
    code_index = {c: i for i, c in enumerate(codes)}
    grid_of = np.full(len(frame), -1, dtype=np.int64)
    given = (
        frame["grid_code"].astype(object).to_numpy()
        if "grid_code" in frame.columns
        else np.full(len(frame), None, dtype=object)
    )
    has_code = ~pd.isna(given)
    unknown: dict[str, list[int]] = {}
    for i in np.flatnonzero(has_code):
        code = str(given[i])
        if code in code_index:
            grid_of[i] = code_index[code]
        else:
            unknown.setdefault(code, []).append(int(rows[i]))
    if unknown:
        items = [f"{c!r} at {rows_text(r)}" for c, r in unknown.items()]
        problems.add(
            f"grid_code not in the grid layer ({format_ids(items)}): pass the "
            "buildings.geojson of the same plan as the grids."
        )
    place = ~has_code
    if place.any():
        tree = shapely.STRtree(np.asarray(grids.geometry.array, dtype=object))
        which = np.flatnonzero(place)
        hit = tree.query(points[which], predicate="intersects")
        first = pd.Series(hit[1]).groupby(hit[0]).min()
        grid_of[which[first.index.to_numpy()]] = first.to_numpy()
        outside = which[grid_of[which] < 0]
        if len(outside):
            problems.add(
                f"building outside every grid at {rows_text(rows[outside])}: pass the buildings "
                "of the plan being staffed (its buildings.geojson carries each grid_code)."
            )
    problems.raise_if_any()

    table = pd.DataFrame({"building_id": ids, "grid": grid_of,
                          "households": frame["households"].to_numpy(dtype=np.int64),
                          "row": rows, "i": np.arange(len(frame))})
    spread = table.groupby("building_id")["grid"].nunique()
    if (spread > 1).any():
        bad = spread.index[spread > 1].tolist()
        problems.add(
            f"building id in several grids ({format_ids(bad)}): give each building one id, "
            "or pass the buildings.geojson written by `gridkit partition`."
        )
        problems.raise_if_any()
    one = table.groupby("building_id", sort=True).agg(
        grid=("grid", "first"), households=("households", "sum"), row=("row", "first"),
        i=("i", "first"),
    )
    grid = one["grid"].to_numpy()
    out = gpd.GeoDataFrame(
        {
            "building_id": one.index.to_numpy(dtype=object),
            "grid_code": codes[grid].astype(object),
            "community_id": grids["community_id"].astype(str).to_numpy()[grid].astype(object),
            "households": one["households"].to_numpy(dtype=np.int64),
            "row": one["row"].to_numpy(dtype=np.int64),
        },
        geometry=points[one["i"].to_numpy()], crs=4326,
    )
    out.attrs["source"] = source
    return out


def buildings_beside(grids: Any, layer: gpd.GeoDataFrame, buildings: BuildingsLike | None
                     ) -> BuildingsLike:
    """The buildings given, else the ``buildings.geojson`` beside the grid layer's file.

    Parameters
    ----------
    grids
        The grids as given by the caller: a folder, a file or a frame.
    layer
        The grid layer read from them (its ``attrs["source"]`` names the file).
    buildings
        The buildings the caller gave, if any (returned as they are).

    Raises
    ------
    InputError
        If no buildings were given and no ``buildings.geojson`` lies beside the grids.
    """
    if buildings is not None:
        return buildings
    source = grids if isinstance(grids, str | os.PathLike) else layer.attrs.get("source")
    if source is not None and Path(source).exists():  # not "<GeoDataFrame>"
        path = Path(source)
        folder = path if path.is_dir() else path.parent
        if (folder / PLAN_FILES["buildings"]).is_file():
            return folder / PLAN_FILES["buildings"]
    msg = (
        "the staffing policy has a building role (scope = \"building\") but no buildings "
        f"were found beside the grids ({source or 'a GeoDataFrame'}): pass the plan's "
        "buildings.geojson (`buildings=...`, CLI `--buildings PATH`)."
    )
    raise InputError(msg)
