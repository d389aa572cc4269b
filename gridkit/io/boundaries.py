"""Read community (社区) boundaries: :func:`read_boundaries`.

Polygons from a vector file or a GeoDataFrame, with the community id, name and street
columns found by name, checked row by row (ids, geometries, coordinates against the CRS),
repaired where ``shapely.make_valid`` can, converted to EPSG:4326 and checked for overlaps
between communities.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit.errors import GridkitWarning, InputError
from gridkit.io import validate as _validate
from gridkit.io.tables import (
    VECTOR_FORMATS,
    PathOrFrame,
    as_optional_text,
    as_text,
    assemble_frame,
    checked_polygons,
    frame_to_wgs84,
    load_file,
    option_text,
    pick_column,
    resolve_input_crs,
)

__all__ = ["BOUNDARY_COLUMNS", "read_boundaries"]

logger = logging.getLogger("gridkit.io")  # the stage's logger: stable for users who configure it

#: Columns of :func:`read_boundaries`' result, in order (other source columns follow).
BOUNDARY_COLUMNS = ("community_id", "community_name", "street", "row", "geometry")

# Auto-detected column names (compared case-insensitively, blanks stripped).
_ID_NAMES = ("community_id", "id", "code")
_NAME_NAMES = ("community_name", "name", "名称", "社区")
_STREET_NAMES = ("street", "street_name", "街道")


def read_boundaries(
    path: PathOrFrame,
    *,
    id_col: str | None = None,
    name_col: str | None = None,
    street_col: str | None = None,
    input_crs: Any = None,
    layer: str | int | None = None,
) -> gpd.GeoDataFrame:
    """Read community (社区) boundary polygons into the normalised boundaries frame.

    Parameters
    ----------
    path
        A GeoJSON, GeoPackage or Shapefile (``.shp`` or zipped ``.zip``) path,
        or a GeoDataFrame (copied, never modified).
    id_col
        Column with the unique community id; auto-detected among
        ``community_id``, ``id`` and ``code`` (case-insensitive) when ``None``.
        CLI ``--community-id``.
    name_col
        Column with the community name; auto: ``community_name``, ``name``,
        ``名称``, ``社区``.  Missing names default to the id.
    street_col
        Column with the street / subdistrict (街道); auto: ``street``,
        ``street_name``, ``街道``.  ``None`` where absent.
    input_crs
        CRS of the coordinates, overriding the file's: ``"wgs84"``,
        ``"gcj02"`` (Amap/Gaode, Tencent), ``"bd09"`` (Baidu) or anything
        pyproj accepts (``"EPSG:4547"``).  Required when the file declares no CRS.
    layer
        Layer name or index, required when the file has several layers.

    Returns
    -------
    geopandas.GeoDataFrame
        In EPSG:4326 with a RangeIndex and ``attrs["source"]``; columns
        ``community_id`` (str), ``community_name`` (str), ``street`` (str or
        None), ``row`` (int64, 1-based feature number), ``geometry`` (valid,
        non-empty Polygon / MultiPolygon), then the other source columns
        (``<name>_src`` if the name collides).

    Raises
    ------
    InputError
        The file is missing or unreadable, the id column is not found, the
        CRS is missing or unknown, ids are missing or duplicated, geometries
        are missing, empty, not polygons, unrepairable or not lon/lat where
        they should be, or two communities overlap by more than 1 m².  All
        row-level problems are listed in one error.

    Warns
    -----
    GridkitWarning
        When invalid polygons were repaired with ``shapely.make_valid``.

    Notes
    -----
    Z coordinates are dropped.  Overlaps of at most
    ``gridkit.io.OVERLAP_TOLERANCE_M2`` (1 m²) between neighbouring
    communities are digitising slivers and are tolerated.
    """
    kind, what = "boundaries", "community boundaries"
    source, frame, is_table = load_file(path, layer=layer, what=what, tables=False)
    if is_table:
        msg = (
            f"{what} '{source}' have no geometry column: boundaries must be polygons; pass a "
            f"GeoDataFrame or a {VECTOR_FORMATS} file."
        )
        raise InputError(msg)
    if len(frame) == 0:
        msg = (
            f"{what} file '{source}' contains no features: check the file and "
            f"{option_text(kind, 'layer')}."
        )
        raise InputError(msg)

    problems = _validate.Problems(source, what)
    columns = [c for c in frame.columns if c != frame.geometry.name]
    id_src = pick_column(
        columns,
        id_col,
        _ID_NAMES,
        kind=kind,
        param="id_col",
        label="community id",
        required=True,
        problems=problems,
    )
    name_src = pick_column(
        columns,
        name_col,
        _NAME_NAMES,
        kind=kind,
        param="name_col",
        label="community name",
        required=False,
        problems=problems,
    )
    street_src = pick_column(
        columns,
        street_col,
        _STREET_NAMES,
        kind=kind,
        param="street_col",
        label="street",
        required=False,
        problems=problems,
    )
    problems.raise_if_any()
    crs = resolve_input_crs(
        frame.crs, input_crs, source=source, what=what, kind=kind, is_table=False
    )

    n = len(frame)
    rows = np.arange(1, n + 1, dtype=np.int64)
    ids = as_text(frame[id_src])
    _validate.check_ids(
        ids,
        rows,
        column=str(id_src),
        missing_fix=f"give every community an id, or pass {option_text(kind, 'id_col')} to use "
        "another column.",
        duplicate_fix="give each community its own id, or dissolve the features of one "
        f"community into one (`gdf.dissolve(by={str(id_src)!r}, as_index=False)`), or pass "
        f"{option_text(kind, 'id_col')} to use another column.",
        problems=problems,
    )
    geoms, repaired = checked_polygons(
        frame, rows, crs, [f"community {i}" for i in ids], kind=kind,
        type_fix="Community boundaries must be closed polygons: convert lines with "
        "`shapely.polygonize` or delete these features.",
        problems=problems,
    )  # fmt: skip

    names = as_text(frame[name_src]) if name_src is not None else ids
    names = names.fillna(ids)
    streets = (
        as_optional_text(frame[street_src])
        if street_src is not None
        else pd.Series([None] * n, dtype=object)
    )
    contract = {"community_id": ids, "community_name": names, "street": streets, "row": rows}
    used = {id_src, name_src, street_src} - {None}
    out = assemble_frame(contract, geoms, frame, used, source=source)
    out = frame_to_wgs84(out, crs, kind=kind, problems=problems)
    _validate.check_boundaries_overlap(out, stacklevel=3)

    if repaired:
        warnings.warn(f"{what} '{source}': {repaired}", GridkitWarning, stacklevel=2)
    logger.info(
        "read %d communities from %s (id column %r, CRS %s -> EPSG:4326%s)",
        n,
        source,
        id_src,
        crs.label,
        ", invalid geometries repaired" if repaired else "",
    )
    return out
