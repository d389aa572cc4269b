"""The grid layer to staff: :func:`read_staffing_grids` reads and checks it.

Staffing reads a grid map with :func:`gridkit.audit.read_grids` (any grid layer) and
checks what staffing needs besides: each grid's community and households.
:mod:`gridkit.staffing.assign` staffs the layer, :mod:`gridkit.staffing.synthetic`
invents a roster for it.
"""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import numpy as np

from gridkit.audit import read_grids as read_grid_map
from gridkit.contracts import GRID_COLUMNS, ROLES
from gridkit.crs import local_metric_crs
from gridkit.errors import InputError
from gridkit.export import check_set
from gridkit.io import Problems, check_household_counts, columns_text, rows_text

__all__ = ["MISSING_COLUMN", "GridsLike", "read_staffing_grids"]

#: A grid layer: a GeoDataFrame, a ``grids.geojson`` or the folder holding it.
GridsLike = gpd.GeoDataFrame | str | os.PathLike[str]

#: Column of the enriched grid layer listing what a grid lacks, e.g. ``police:1``.
MISSING_COLUMN = "missing_roles"


def read_staffing_grids(grids: GridsLike) -> gpd.GeoDataFrame:
    """Read and check a grid layer to staff: a GeoDataFrame, a ``grids.geojson`` or its folder.

    The file is read by :func:`gridkit.audit.read_grids` (codes, geometry repairs,
    coordinates, a gridkit export's GCJ-02/BD-09 marker); staffing also needs each grid's
    community and households.

    Parameters
    ----------
    grids
        The output of ``gridkit partition`` (the folder, or its ``grids.geojson``), any
        polygon layer with ``grid_code``, ``community_id`` and ``households`` columns,
        or a GeoDataFrame (copied, never modified).  Worker columns of an earlier
        ``gridkit assign`` are dropped (they are recomputed).

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, sorted by ``grid_code``, with the grid contract columns first
        (``grid_name``, ``community_name`` default to the codes when absent), then any
        other source columns, and ``attrs["source"]``.

    Raises
    ------
    InputError
        If the path is missing, codes are missing or duplicated, a grid has no community,
        households are not whole numbers ≥ 0, or geometries are not polygons.
    """
    if isinstance(grids, str | os.PathLike):
        path = Path(grids)
        if path.is_dir():
            path = path / "grids.geojson"
        if not path.is_file():
            msg = (
                f"grid layer '{path}' not found: pass the folder written by `gridkit partition "
                "--out DIR` or its grids.geojson (run `gridkit partition` first)."
            )
            raise InputError(msg)
        if path.name == "grids.geojson":
            check_set(path.parent, ["grids.geojson"])
        grids = path
    frame = read_grid_map(grids)
    source = str(frame.attrs.get("source"))
    problems = Problems(source, "grid layer")
    rows = frame["row"].to_numpy()
    missing = frame["community_id"].isna().to_numpy()
    if missing.all():
        problems.add(
            "no `community_id` column: every grid belongs to one community; use the "
            "grids.geojson written by `gridkit partition`."
        )
    elif missing.any():
        problems.add(
            f"column `community_id` is empty at {rows_text(rows[missing])}: every "
            "grid belongs to one community."
        )
    households = None
    if "households" not in frame.columns:
        problems.add(
            "no `households` column; available: "
            f"{columns_text([c for c in frame.columns if c not in ('row', 'geometry')])}. "
            "Use the grids.geojson written by `gridkit partition`."
        )
    else:
        households = check_household_counts(
            frame["households"], rows, column="households",
            option="a layer with correct `households`", problems=problems,
        )
    problems.raise_if_any()

    frame["households"] = households
    if "grid_name" not in frame:
        frame["grid_name"] = frame["grid_code"]
    if "community_name" not in frame:
        frame["community_name"] = frame["community_id"]
    for col in GRID_COLUMNS:
        if col not in frame:
            frame[col] = None
    if frame["area_m2"].isna().all():
        metric = frame.geometry.to_crs(local_metric_crs(frame))
        frame["area_m2"] = np.round(metric.area.to_numpy(), 1)
    # earlier staffing columns are recomputed; `crs_note` described the file, not the frame
    dropped = [c for c in (*ROLES, MISSING_COLUMN, "crs_note", "row") if c in frame.columns]
    geometry = frame.geometry.name
    extra = [c for c in frame.columns if c not in (*GRID_COLUMNS, *dropped, geometry)]
    out = gpd.GeoDataFrame(
        frame[[*GRID_COLUMNS, *extra]], geometry=frame.geometry.to_numpy(), crs=4326
    )
    out = out.sort_values("grid_code", kind="stable").reset_index(drop=True)
    out.attrs["source"] = source
    return out
