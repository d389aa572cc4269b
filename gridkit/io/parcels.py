"""Read dedicated-grid parcels (专属网格): :func:`read_dedicated`.

Schools, hospitals, parks, enterprises, markets and other non-residential parcels each
become a dedicated grid of their own, carved out of their community before it is
partitioned (:func:`gridkit.units.carve_parcels`).  This module reads their polygons from
a vector file or a GeoDataFrame: the ``type`` (English or Chinese words of
:data:`gridkit.contracts.DEDICATED_TYPES` are mapped to their key; any other type is
kept as given) and an optional ``name``, checked row by row (types, geometries,
coordinates against the CRS, overlaps between parcels), repaired where
``shapely.make_valid`` can and converted to EPSG:4326.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.contracts import DEDICATED_TYPES
from gridkit.crs import local_metric_crs
from gridkit.errors import GridkitWarning, InputError, format_ids
from gridkit.io import validate as _validate
from gridkit.io.tables import (
    VECTOR_FORMATS,
    PathOrFrame,
    as_optional_text,
    assemble_frame,
    checked_polygons,
    frame_to_wgs84,
    load_file,
    pick_column,
    resolve_input_crs,
)

__all__ = ["DEDICATED_COLUMNS", "dedicated_type", "read_dedicated"]

logger = logging.getLogger("gridkit.io")

#: Columns of :func:`read_dedicated`'s result, in order (other source columns follow).
DEDICATED_COLUMNS = ("type", "name", "row", "geometry")

# Auto-detected column names (compared case-insensitively, blanks stripped).
_TYPE_NAMES = ("type", "grid_type", "类型", "kind", "category")
_NAME_NAMES = ("name", "grid_name", "名称", "单位名称")

_WORDS = {word.lower(): key for key, words in DEDICATED_TYPES.items() for word in words}


def dedicated_type(value: Any) -> str | None:
    """The grid type of a parcel's ``type`` cell: a known key, else the text as given.

    Examples
    --------
    >>> dedicated_type("学校"), dedicated_type(" Hospital "), dedicated_type("养老院")
    ('school', 'hospital', '养老院')
    >>> dedicated_type("  ") is None
    True
    """
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    if not text:
        return None
    return _WORDS.get(text.lower(), text)


def read_dedicated(
    path: PathOrFrame,
    *,
    type_col: str | None = None,
    name_col: str | None = None,
    input_crs: Any = None,
    layer: str | int | None = None,
) -> gpd.GeoDataFrame:
    """Read dedicated-grid parcels (schools, hospitals, parks, ...) into a normalised frame.

    Parameters
    ----------
    path
        A GeoJSON, GeoPackage or Shapefile (``.shp`` or zipped ``.zip``) path, or a
        GeoDataFrame (copied, never modified).
    type_col
        Column with each parcel's type; auto: ``type``, ``grid_type``, ``类型``,
        ``kind``, ``category`` (case-insensitive).  ``school``, ``hospital``, ``park``,
        ``enterprise``, ``market``, ``industrial_park`` and their Chinese words (学校,
        医院, 公园, 企业, 市场, 产业园区/工业园区) are mapped to these keys; any other
        type is kept as given.  CLI ``--dedicated-type-col``.
    name_col
        Column with each parcel's name (the dedicated grid's name); auto: ``name``,
        ``grid_name``, ``名称``, ``单位名称``.  None where absent.  CLI
        ``--dedicated-name-col``.
    input_crs
        CRS of the coordinates, overriding the file's: ``"wgs84"``, ``"gcj02"``,
        ``"bd09"`` or anything pyproj accepts.  Required when the file declares none.
    layer
        Layer name or index, required when the file has several layers.

    Returns
    -------
    geopandas.GeoDataFrame
        In EPSG:4326 with a RangeIndex and ``attrs["source"]``; columns ``type`` (str),
        ``name`` (str or None), ``row`` (1-based feature number), ``geometry`` (valid,
        non-empty Polygon / MultiPolygon), then the other source columns.

    Raises
    ------
    InputError
        The file is missing or unreadable, has no type column, a parcel has no type,
        geometries are missing, empty, not polygons, unrepairable or not lon/lat where
        they should be, the CRS is missing or unknown, or two parcels overlap by more
        than 1 m².  All row-level problems are listed in one error, each naming the
        rows and the fix.

    Warns
    -----
    GridkitWarning
        When invalid polygons were repaired with ``shapely.make_valid``.
    """
    kind, what = "dedicated", "dedicated parcels"
    source, frame, is_table = load_file(path, layer=layer, what=what, tables=False, kind=kind)
    if is_table:
        msg = (
            f"{what} '{source}' have no geometry column: parcels must be polygons; pass a "
            f"GeoDataFrame or a {VECTOR_FORMATS} file."
        )
        raise InputError(msg)
    if len(frame) == 0:
        msg = (
            f"{what} file '{source}' contains no features: draw the parcels, or leave out "
            "--dedicated."
        )
        raise InputError(msg)
    problems = _validate.Problems(source, what)
    columns = [c for c in frame.columns if c != frame.geometry.name]
    type_src = pick_column(
        columns, type_col, _TYPE_NAMES, kind=kind, param="type_col", label="parcel type",
        required=True, problems=problems,
    )  # fmt: skip
    name_src = pick_column(
        columns, name_col, _NAME_NAMES, kind=kind, param="name_col", label="parcel name",
        required=False, problems=problems,
    )  # fmt: skip
    problems.raise_if_any()
    crs = resolve_input_crs(
        frame.crs, input_crs, source=source, what=what, kind=kind, is_table=False
    )
    n = len(frame)
    rows = np.arange(1, n + 1, dtype=np.int64)
    types = np.array([dedicated_type(v) for v in frame[type_src]], dtype=object)
    untyped = pd.isna(types)
    if untyped.any():
        problems.add(
            f"no type at {_validate.rows_text(rows[untyped])} (column {str(type_src)!r}): "
            "give every parcel a type (school, hospital, park, enterprise, market, or a word "
            "of your own such as 养老院), or delete those rows."
        )
    names = (
        as_optional_text(frame[name_src])
        if name_src is not None
        else pd.Series([None] * n, dtype=object)
    )
    geoms, repaired = checked_polygons(
        frame, rows, crs, [f"parcel {v}" if v is not None else "parcel" for v in names],
        kind=kind,
        type_fix="Parcels must be closed polygons (the outline of the school, hospital, ...): "
        "convert lines with `shapely.polygonize`, or delete these features.",
        problems=problems,
    )  # fmt: skip
    contract = {"type": pd.Series(types, dtype=object), "name": names, "row": rows}
    used = {type_src, name_src} - {None}
    out = assemble_frame(contract, geoms, frame, used, source=source)
    out = frame_to_wgs84(out, crs, kind=kind, problems=problems)
    _check_overlaps(out, source)
    if repaired:
        warnings.warn(f"{what} '{source}': {repaired}", GridkitWarning, stacklevel=2)
    logger.info(
        "read %d dedicated parcels from %s (type column %r, CRS %s)", n, source, type_src,
        crs.label,
    )  # fmt: skip
    return out


def _check_overlaps(parcels: gpd.GeoDataFrame, source: str) -> None:
    """Raise when two parcels share more than a digitising sliver (1 m², 0.1 m wide)."""
    if len(parcels) < 2:
        return
    metric = parcels.geometry.to_crs(local_metric_crs(parcels))
    geoms = np.asarray(metric.array, dtype=object)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if not len(left):
        return
    shared = shapely.intersection(geoms[left], geoms[right])
    areas = shapely.area(shared)
    with np.errstate(divide="ignore", invalid="ignore"):
        widths = np.where(areas > 0, 2 * areas / shapely.length(shared), 0.0)
    wide = (areas > _validate.OVERLAP_TOLERANCE_M2) & (widths > _validate.SLIVER_WIDTH_M)
    if not wide.any():
        return
    rows = parcels["row"].to_numpy()
    names = parcels["name"].to_numpy(dtype=object)

    def label(i: int) -> str:
        return f"row {rows[i]}" + (f" ({names[i]})" if names[i] is not None else "")

    items = [
        f"{label(left[k])} and {label(right[k])}: {areas[k]:,.1f} m²"
        for k in np.flatnonzero(wide)[np.argsort(-areas[wide], kind="stable")]
    ]
    msg = (
        f"dedicated parcels '{source}' overlap: {format_ids(items)}. A place belongs to one "
        "dedicated grid: cut the shared part out of one of them, or merge them into one "
        "feature if they are one institution."
    )
    raise InputError(msg)
