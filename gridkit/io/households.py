"""Read households: :func:`read_households`.

Points or building footprints from a vector file, a CSV/TSV/TXT table with lon/lat
columns or a (Geo)DataFrame, with the household id, household count and building id
columns found by name, checked row by row (ids, counts, coordinates against the CRS) and
converted to EPSG:4326.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.errors import GridkitWarning, InputError
from gridkit.io import validate as _validate
from gridkit.io.tables import (
    NAME_SEPARATORS,
    SWAP_FIX,
    PathOrFrame,
    as_optional_text,
    as_text,
    assemble_frame,
    check_coordinates,
    column_key,
    frame_to_wgs84,
    load_file,
    option_text,
    pick_column,
    pick_lonlat_columns,
    resolve_input_crs,
    simplify_single_parts,
)

__all__ = ["HOUSEHOLD_COLUMNS", "read_households"]

logger = logging.getLogger("gridkit.io")  # the stage's logger: stable for users who configure it

#: Columns of :func:`read_households`' result, in order (other source columns follow).
HOUSEHOLD_COLUMNS = ("household_id", "households", "building_id", "row", "geometry")

# Auto-detected column names (compared case-insensitively, blanks stripped).
_HOUSEHOLD_ID_NAMES = ("household_id",)
_HOUSEHOLDS_NAMES = ("households", "hh", "household_count", "户数")
_BUILDING_NAMES = ("building_id", "building")


def _count_like_columns(frame: pd.DataFrame, columns: list[Any]) -> list[Any]:
    """Numeric columns whose name suggests household counts (for a hint)."""
    found = []
    for col in columns:
        name = column_key(col)
        tokens = NAME_SEPARATORS.split(name)
        if not ("户数" in name or "household" in name or "dwelling" in name):
            continue
        if "id" in tokens or "no" in tokens:
            continue
        numbers = pd.to_numeric(frame[col], errors="coerce")
        if numbers.notna().mean() >= 0.9:
            found.append(col)
    return found


def read_households(
    path: PathOrFrame,
    *,
    id_col: str | None = None,
    households_col: str | None = None,
    building_col: str | None = None,
    lon_col: str | None = None,
    lat_col: str | None = None,
    input_crs: Any = None,
    layer: str | int | None = None,
) -> gpd.GeoDataFrame:
    """Read household points or building footprints into the normalised households frame.

    Parameters
    ----------
    path
        A GeoJSON, GeoPackage or Shapefile (``.shp``/``.zip``) of points or
        footprint polygons; a CSV/TSV/TXT table with lon/lat columns (UTF-8 or
        GB18030); or a DataFrame (table) / GeoDataFrame (copied, never modified).
    id_col
        Column with a unique household id.  When ``None``, a column named
        ``household_id`` is used if present, else the 1-based row number.
    households_col
        Column with the number of households of each row; auto:
        ``households``, ``hh``, ``household_count``, ``户数``.  Without one,
        every row is one household.
    building_col
        Column with the building id; auto: ``building_id``, ``building``.
        Rows sharing it form one unit.
    lon_col, lat_col
        Coordinate columns of a table (pass both or neither).  Auto-detected
        (case-insensitive): ``lon``/``lng``/``longitude``/``经度`` and
        ``lat``/``latitude``/``纬度``, then ``x``/``y``, then one suffixed pair
        such as ``lng_wgs84``/``lat_wgs84``.
    input_crs
        CRS of the coordinates, overriding the file's: ``"wgs84"``,
        ``"gcj02"`` (Amap/Gaode, Tencent), ``"bd09"`` (Baidu) or anything
        pyproj accepts.  Required for a vector file without CRS; a table
        without it is assumed to be WGS84 (with a warning).
    layer
        Layer name or index, required when the file has several layers.

    Returns
    -------
    geopandas.GeoDataFrame
        In EPSG:4326 with a RangeIndex and ``attrs["source"]``; columns
        ``household_id`` (str), ``households`` (int64 ≥ 0), ``building_id``
        (str or None), ``row`` (int64, 1-based feature / data row after the
        header), ``geometry`` (Point, or Polygon/MultiPolygon footprint), then
        the other source columns (``<name>_src`` if the name collides).

    Raises
    ------
    InputError
        The file is missing or unreadable, columns are not found or
        ambiguous, the CRS is missing or unknown, ids are missing or
        duplicated, household counts are missing, non-numeric, negative or
        fractional, coordinates are missing, swapped or not lon/lat, or
        geometries are missing, empty or of the wrong type.  All row-level
        problems are listed in one error.

    Warns
    -----
    GridkitWarning
        When a table's CRS was assumed to be WGS84, when invalid footprints
        were repaired, or when no households column was found but a column
        looks like household counts.

    Notes
    -----
    Single-part MultiPoints and MultiPolygons are simplified to Point and
    Polygon; Z coordinates are dropped.
    """
    kind, what = "households", "households"
    source, frame, is_table = load_file(path, layer=layer, what=what, tables=True)
    if len(frame) == 0:
        msg = (
            f"{what} file '{source}' contains no rows: check the file and "
            f"{option_text(kind, 'layer')}."
        )
        raise InputError(msg)

    problems = _validate.Problems(source, what)
    geometry_name = None if is_table else frame.geometry.name
    columns = [c for c in frame.columns if c != geometry_name]
    if not is_table and (lon_col is not None or lat_col is not None):
        problems.add(
            "`lon_col`/`lat_col` (CLI `--lon-col`/`--lat-col`) only apply to tables (CSV) "
            "but this file already has a geometry: drop these options."
        )
    id_src = pick_column(
        columns,
        id_col,
        _HOUSEHOLD_ID_NAMES,
        kind=kind,
        param="id_col",
        label="household id",
        required=False,
        problems=problems,
    )
    hh_src = pick_column(
        columns,
        households_col,
        _HOUSEHOLDS_NAMES,
        kind=kind,
        param="households_col",
        label="households",
        required=False,
        problems=problems,
    )
    building_src = pick_column(
        columns,
        building_col,
        _BUILDING_NAMES,
        kind=kind,
        param="building_col",
        label="building id",
        required=False,
        problems=problems,
    )
    lon_src = lat_src = None
    if is_table:
        lon_src, lat_src = pick_lonlat_columns(columns, lon_col, lat_col, problems=problems)
    problems.raise_if_any()
    crs = resolve_input_crs(
        None if is_table else frame.crs,
        input_crs,
        source=source,
        what=what,
        kind=kind,
        is_table=is_table,
    )

    n = len(frame)
    rows = np.arange(1, n + 1, dtype=np.int64)
    if id_src is not None:
        ids = as_text(frame[id_src])
        _validate.check_ids(
            ids,
            rows,
            column=str(id_src),
            missing_fix=f"give every row an id, or pass {option_text(kind, 'id_col')} to use "
            "another column.",
            duplicate_fix=f"give each row its own id, or pass {option_text(kind, 'id_col')} to use "
            "another column.",
            problems=problems,
        )
    else:
        ids = pd.Series(rows.astype(str), dtype="str")
    if hh_src is not None:
        counts = _validate.check_household_counts(
            frame[hh_src],
            rows,
            column=str(hh_src),
            option=option_text(kind, "households_col"),
            problems=problems,
        )
    else:
        counts = np.ones(n, dtype=np.int64)

    if is_table:
        x = _validate.parse_coordinates(
            frame[lon_src], rows, column=str(lon_src), problems=problems
        )
        y = _validate.parse_coordinates(
            frame[lat_src], rows, column=str(lat_src), problems=problems
        )
        ok = np.isfinite(x) & np.isfinite(y)
        geoms = np.full(n, None, dtype=object)
        geoms[ok] = shapely.points(x[ok], y[ok])
        swap_fix = (
            f"pass {option_text(kind, 'lon_col', lat_src)} and "
            f"{option_text(kind, 'lat_col', lon_src)} if the columns are swapped, or correct "
            "these rows."
        )
        check_coordinates(
            geoms,
            rows,
            crs,
            kind=kind,
            swap_fix=swap_fix,
            problems=problems,
            bounds=np.column_stack([x, y, x, y]),
        )
    else:
        geoms = simplify_single_parts(
            shapely.force_2d(np.asarray(frame.geometry.array, dtype=object))
        )
        _validate.check_geometries(
            geoms,
            rows,
            allowed=("Point", *_validate.POLYGONAL),
            type_fix="Households must be points or building footprints (polygons): use "
            "centroids (`gdf.centroid`) or delete these features.",
            problems=problems,
        )
        check_coordinates(
            geoms,
            rows,
            crs,
            kind=kind,
            swap_fix=SWAP_FIX,
            problems=problems,
        )
    problems.raise_if_any()
    repaired = None
    if not is_table:
        geoms, repaired = _validate.repair_geometries(geoms, rows, None, problems=problems)
        problems.raise_if_any()

    buildings = (
        as_optional_text(frame[building_src])
        if building_src is not None
        else pd.Series([None] * n, dtype=object)
    )
    contract = {
        "household_id": ids,
        "households": counts,
        "building_id": buildings,
        "row": rows,
    }
    used = {id_src, hh_src, building_src, lon_src, lat_src} - {None}
    out = assemble_frame(contract, geoms, frame, used, source=source)
    out = frame_to_wgs84(out, crs, kind=kind, problems=problems)

    if crs.assumed:
        warnings.warn(
            f"{what} '{source}' declares no CRS (a table), so WGS84 lon/lat was assumed. If "
            f"the coordinates come from Amap/Gaode or Tencent pass "
            f"{option_text(kind, 'input_crs', 'gcj02')}, from Baidu "
            f"{option_text(kind, 'input_crs', 'bd09')}; pass "
            f"{option_text(kind, 'input_crs', 'wgs84')} to confirm WGS84 and silence this "
            "warning.",
            GridkitWarning,
            stacklevel=2,
        )
    if hh_src is None:
        hinted = _count_like_columns(frame, [c for c in columns if c not in used])
        if hinted:
            warnings.warn(
                f"{what} '{source}': no households column found (looked for "
                f"{', '.join(_HOUSEHOLDS_NAMES)}), so every row counts as one household, but "
                f"column {hinted[0]!r} looks like household counts: pass "
                f"{option_text(kind, 'households_col', hinted[0])} to use it.",
                GridkitWarning,
                stacklevel=2,
            )
    if repaired:
        warnings.warn(f"{what} '{source}': {repaired}", GridkitWarning, stacklevel=2)
    logger.info(
        "read %d household rows (%d households) from %s (%s, households %s, CRS %s -> EPSG:4326)",
        n,
        int(counts.sum()),
        source,
        f"lon/lat {lon_src!r}/{lat_src!r}" if is_table else "geometry",
        repr(hh_src) if hh_src is not None else "1 per row",
        crs.label,
    )
    return out
