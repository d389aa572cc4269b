"""Read community boundaries and households into normalised GeoDataFrames.

Both readers return a new GeoDataFrame in EPSG:4326 with a fresh RangeIndex,
the contract columns of ``docs/design.md`` first (then any other source
columns, renamed ``<name>_src`` if they collide with a contract column) and
``attrs["source"]`` set to the path.

Formats
    GeoJSON (``.geojson``/``.json``), GeoPackage (``.gpkg``; pass ``layer`` when
    it holds several layers), Shapefile (``.shp``, or zipped ``.zip``), read
    with pyogrio.  Households may also be a CSV/TSV/TXT table with lon/lat
    columns (UTF-8, or GB18030 as written by Chinese Excel), or an in-memory
    DataFrame / GeoDataFrame (copied, never modified).

Coordinate systems
    A file's declared CRS is used unless ``input_crs`` is given, which
    overrides it: ``"wgs84"``, ``"gcj02"`` (Amap/Gaode, Tencent), ``"bd09"``
    (Baidu) or anything pyproj accepts (``"EPSG:4547"``).  GCJ-02 and BD-09 are
    converted with :func:`gridkit.crs.to_wgs84`.  A vector file without a CRS
    needs ``input_crs``; a table without ``input_crs`` is assumed to be WGS84
    and a :class:`~gridkit.errors.GridkitWarning` says so.

Validation
    All row-level problems of a file (missing/duplicated ids, missing, empty
    or wrongly typed geometries, bad household counts, coordinates that are
    swapped or not lon/lat) are collected and raised as one
    :class:`~gridkit.errors.InputError` naming the 1-based rows and the fix.
    Invalid polygons are repaired with ``shapely.make_valid`` (polygonal parts
    kept) and reported with a ``GridkitWarning``.  Communities overlapping by
    more than 1 m² are an error; smaller slivers from digitising are tolerated.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely
from pyproj.exceptions import CRSError, ProjError

from gridkit.crs import SYSTEMS, normalise_crs_name, to_wgs84
from gridkit.errors import GridkitWarning, InputError, format_ids
from gridkit.io import validate as _validate

__all__ = [
    "BOUNDARY_COLUMNS",
    "HOUSEHOLD_COLUMNS",
    "read_boundaries",
    "read_households",
]

logger = logging.getLogger("gridkit.io")  # the stage's logger: stable for users who configure it

#: Columns of :func:`read_boundaries`' result, in order (other source columns follow).
BOUNDARY_COLUMNS = ("community_id", "community_name", "street", "row", "geometry")
#: Columns of :func:`read_households`' result, in order (other source columns follow).
HOUSEHOLD_COLUMNS = ("household_id", "households", "building_id", "row", "geometry")

VECTOR_FORMATS = "GeoJSON (.geojson, .json), GeoPackage (.gpkg), Shapefile (.shp or zipped .zip)"
TABLE_FORMATS = "CSV/TSV/TXT with lon/lat columns (.csv, .tsv, .txt)"
TABLE_SUFFIXES = (".csv", ".tsv", ".txt")

# Auto-detected column names (compared case-insensitively, blanks stripped).
_ID_NAMES = ("community_id", "id", "code")
_NAME_NAMES = ("community_name", "name", "名称", "社区")
_STREET_NAMES = ("street", "street_name", "街道")
_HOUSEHOLD_ID_NAMES = ("household_id",)
_HOUSEHOLDS_NAMES = ("households", "hh", "household_count", "户数")
_BUILDING_NAMES = ("building_id", "building")
_LON_NAMES = ("lon", "lng", "longitude", "经度")
_LAT_NAMES = ("lat", "latitude", "纬度")

# CLI flag of each keyword, quoted next to it in messages.
_FLAGS = {
    "boundaries": {
        "id_col": "--community-id",
        "name_col": "--name-col",
        "street_col": "--street-col",
        "input_crs": "--input-crs",
        "layer": "--communities-layer",
    },
    "households": {
        "id_col": "--id-col",
        "households_col": "--households-col",
        "building_col": "--building-col",
        "lon_col": "--lon-col",
        "lat_col": "--lat-col",
        "input_crs": "--input-crs",
        "layer": "--households-layer",
    },
}

_TOKEN_SPLIT = re.compile(r"[\s_\-.:/()（）\[\]【】]+")

PathOrFrame = str | os.PathLike[str] | pd.DataFrame


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def _opt(kind: str, param: str, value: Any = None) -> str:
    """How to pass ``param`` in Python and on the command line, for messages."""
    flag = _FLAGS[kind][param]
    if value is None:
        return f"`{param}=...` (CLI `{flag} ...`)"
    return f"`{param}={value!r}` (CLI `{flag} {value}`)"


def _norm(name: Any) -> str:
    return str(name).strip().lower()


def columns_text(columns: list[Any]) -> str:
    return format_ids([str(c) for c in columns], limit=30) if columns else "(none)"


def cell_text(value: Any) -> str | None:
    """One id/name cell as text: integral numbers without ``.0``, blanks as ``None``."""
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value).strip() or None


def _texts(values: pd.Series) -> np.ndarray:
    """:func:`cell_text` of every cell, as an object array of ``str`` or ``None``.

    Columns of only text, only integers or only floats (what CSV, Excel and
    GeoJSON readers give) are converted with vectorised string operations; any
    other mix goes cell by cell.  A million-row id column takes about 0.3 s
    instead of 3.

    Examples
    --------
    >>> _texts(pd.Series([" A1 ", None, "", "b"])).tolist()
    ['A1', None, None, 'b']
    >>> _texts(pd.Series([3.0, 2.5, float("nan")])).tolist()
    ['3', '2.5', None]
    """
    cells = values.to_numpy(dtype=object)
    kind = pd.api.types.infer_dtype(cells, skipna=True)
    missing = np.asarray(pd.isna(cells), dtype=bool)
    out = np.full(len(cells), None, dtype=object)
    present = cells[~missing]
    if kind == "empty":
        return out
    if kind == "string":
        stripped = pd.Series(present, dtype=object).str.strip().to_numpy(dtype=object, copy=True)
        stripped[stripped == ""] = None
        out[~missing] = stripped
        return out
    try:
        if kind == "integer":
            out[~missing] = present.astype(np.int64).astype(str).astype(object)
            return out
        if kind == "floating":
            numbers = present.astype(np.float64)
            whole = np.isfinite(numbers) & (numbers == np.floor(numbers))
            whole &= np.abs(numbers) < 2.0**63  # fits int64; larger ones cell by cell
            text = np.empty(len(numbers), dtype=object)
            text[whole] = numbers[whole].astype(np.int64).astype(str)
            text[~whole] = [cell_text(float(x)) for x in numbers[~whole]]
            out[~missing] = text
            return out
    except (OverflowError, TypeError, ValueError):
        pass  # e.g. integers beyond int64: cell by cell below
    return np.array([cell_text(v) for v in cells], dtype=object)


def as_text(values: pd.Series) -> pd.Series:
    """Values as a pandas ``str`` Series (NaN where missing or blank), fresh RangeIndex."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":  # numpy ints: no NA
        return pd.Series(values.astype(str).to_numpy(), dtype="str")
    return pd.Series(_texts(values), dtype="str")


def as_optional_text(values: pd.Series) -> pd.Series:
    """Values as an object Series of ``str`` or ``None``, fresh RangeIndex."""
    return pd.Series(_texts(values), dtype=object)


def _pick(
    columns: list[Any],
    explicit: str | None,
    candidates: tuple[str, ...],
    *,
    kind: str,
    param: str,
    label: str,
    required: bool,
    problems: _validate.Problems,
) -> Any:
    """Find the source column for ``param``: ``explicit`` or the first candidate present."""
    if explicit is not None:
        if explicit in columns:
            return explicit
        matches = [c for c in columns if _norm(c) == _norm(explicit)]
        if len(matches) == 1:
            return matches[0]
        problems.add(
            f"column {explicit!r} given as {_opt(kind, param, explicit)} does not exist; "
            f"available columns: {columns_text(columns)}. Pass one of them."
        )
        return None
    for name in candidates:
        matches = [c for c in columns if _norm(c) == name]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            problems.add(
                f"several columns could hold the {label} ({', '.join(map(str, matches))}): "
                f"pass {_opt(kind, param)} to choose one."
            )
            return None
    if required:
        problems.add(
            f"no {label} column found (looked for {', '.join(candidates)}, case-insensitive); "
            f"available columns: {columns_text(columns)}. Pass the right one as "
            f"{_opt(kind, param)}."
        )
    return None


# ---------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------


def load_file(
    path: PathOrFrame, *, layer: str | int | None, what: str, tables: bool
) -> tuple[str, pd.DataFrame, bool]:
    """Read ``path`` into a (Geo)DataFrame: ``(source, frame, is_table)``."""
    formats = VECTOR_FORMATS + (f", or {TABLE_FORMATS}" if tables else "")
    if isinstance(path, pd.DataFrame):
        source = str(path.attrs.get("source") or f"<{type(path).__name__}>")
        frame = path.copy()
        is_table = not isinstance(path, gpd.GeoDataFrame)
        return source, frame.reset_index(drop=True), is_table
    if not isinstance(path, str | os.PathLike):
        msg = (
            f"`path` must be a file path or a DataFrame, got {type(path).__name__}: pass the "
            f"path of a {formats} file."
        )
        raise InputError(msg)
    source = os.fspath(path)
    p = Path(source)
    if not p.exists():
        msg = (
            f"{what} file '{source}' not found (looked for {p.absolute()}): check the path and "
            f"the working directory ({Path.cwd()})."
        )
        raise InputError(msg)
    if p.suffix.lower() in TABLE_SUFFIXES:
        if not tables:
            msg = (
                f"{what} file '{source}' is a table, but boundaries must be polygons: save "
                f"them as {VECTOR_FORMATS}."
            )
            raise InputError(msg)
        return source, _read_table(p, source, what=what, formats=formats), True
    frame = read_vector(p, source, layer=layer, what=what, formats=formats, tables=tables)
    return source, frame, not isinstance(frame, gpd.GeoDataFrame)


def read_vector(
    p: Path, source: str, *, layer: str | int | None, what: str, formats: str, tables: bool
) -> pd.DataFrame:
    """Read a vector file with pyogrio, choosing/validating the layer first."""
    kind = "households" if tables else "boundaries"
    try:
        layers = pyogrio.list_layers(p)
    except (RuntimeError, OSError, ValueError) as err:
        msg = f"cannot read {what} file '{source}' ({err}). Supported formats: {formats}."
        raise InputError(msg) from err
    names = [str(n) for n in layers[:, 0]]
    if not names:
        msg = f"{what} file '{source}' contains no layers. Supported formats: {formats}."
        raise InputError(msg)
    if layer is None and len(names) > 1:
        msg = (
            f"{what} file '{source}' has {len(names)} layers ({format_ids(names)}): pass "
            f"{_opt(kind, 'layer')} to choose one, e.g. {_opt(kind, 'layer', names[0])}."
        )
        raise InputError(msg)
    if layer is not None and not (
        (isinstance(layer, str) and layer in names)
        or (isinstance(layer, int) and 0 <= layer < len(names))
    ):
        msg = (
            f"{what} file '{source}' has no layer {layer!r}; its layers are "
            f"{format_ids(names)}: pass one of them as {_opt(kind, 'layer')}."
        )
        raise InputError(msg)
    try:
        return gpd.read_file(p, engine="pyogrio", layer=names[0] if layer is None else layer)
    except (RuntimeError, OSError, ValueError) as err:
        msg = f"cannot read {what} file '{source}' ({err}). Supported formats: {formats}."
        raise InputError(msg) from err


def guess_separator(head: bytes, suffix: str) -> str:
    """The delimiter of a delimited text file, from its header line."""
    if suffix == ".tsv":
        return "\t"
    first = head.splitlines()[0] if head else b""
    counts = {sep: first.count(sep.encode()) for sep in (",", "\t", ";", "|")}
    best = max(counts, key=lambda sep: counts[sep])  # ties: first listed wins
    return best if counts[best] else ","


def _read_table(p: Path, source: str, *, what: str, formats: str) -> pd.DataFrame:
    """Read a CSV/TSV/TXT as text columns (UTF-8, falling back to GB18030)."""
    with p.open("rb") as fh:
        head = fh.read(65536)
    sep = guess_separator(head, p.suffix.lower())
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            frame = pd.read_csv(
                p,
                sep=sep,
                encoding=encoding,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                skipinitialspace=True,
            )
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as err:
            msg = f"cannot read {what} file '{source}' as a table ({err}). Supported: {formats}."
            raise InputError(msg) from err
        frame.columns = [str(c).strip() for c in frame.columns]
        return frame
    msg = (
        f"cannot read {what} file '{source}': it is neither UTF-8 nor GB18030 text. Save it "
        "as 'CSV UTF-8' (Excel: File > Save As) and read it again."
    )
    raise InputError(msg)


# ---------------------------------------------------------------------------
# CRS
# ---------------------------------------------------------------------------


class _Crs(NamedTuple):
    spec: Any  # what to give gridkit.crs.to_wgs84: a SYSTEMS name or a pyproj.CRS
    lonlat: bool  # coordinates are lon/lat degrees
    projected: bool
    label: str
    assumed: bool  # WGS84 assumed for a table without input_crs


def resolve_input_crs(
    declared: Any, input_crs: Any, *, source: str, what: str, kind: str, is_table: bool
) -> _Crs:
    """Decide the CRS of the input: ``input_crs`` > declared CRS > WGS84 for tables."""
    if input_crs is not None:
        name = normalise_crs_name(input_crs)
        if name in SYSTEMS:
            return _Crs(name, True, False, name, False)
        try:
            crs = pyproj.CRS.from_user_input(input_crs)
        except CRSError as err:
            msg = (
                f"unknown CRS {input_crs!r} given as {_opt(kind, 'input_crs')} for {what} "
                f"'{source}': pyproj cannot interpret it. Use wgs84, gcj02 (Amap/Gaode, "
                "Tencent), bd09 (Baidu) or an EPSG code such as EPSG:4547."
            )
            raise InputError(msg) from err
        return _Crs(crs, crs.is_geographic, crs.is_projected, crs.to_string(), False)
    if declared is not None:
        crs = pyproj.CRS.from_user_input(declared)
        return _Crs(crs, crs.is_geographic, crs.is_projected, crs.to_string(), False)
    if is_table:
        return _Crs("wgs84", True, False, "wgs84 (assumed)", True)
    msg = (
        f"{what} file '{source}' declares no CRS: pass it as {_opt(kind, 'input_crs')}: "
        "wgs84, gcj02 (Amap/Gaode, Tencent), bd09 (Baidu) or an EPSG code such as EPSG:4547. "
        "For a Shapefile, also check that its .prj file was copied along."
    )
    raise InputError(msg)


def check_coordinates(
    geoms: np.ndarray,
    rows: np.ndarray,
    crs: _Crs,
    *,
    kind: str,
    swap_fix: str,
    problems: _validate.Problems,
    bounds: np.ndarray | None = None,
) -> None:
    """Check coordinates against the CRS (lon/lat ranges, or degrees in a projected CRS)."""
    if bounds is None:
        bounds = shapely.bounds(geoms)
    if crs.lonlat:
        _validate.check_lonlat_range(
            bounds, rows, swap_fix=swap_fix, crs_option=_opt(kind, "input_crs"), problems=problems
        )
    elif crs.projected:
        _validate.check_not_degrees(
            bounds, crs_label=crs.label, crs_option=_opt(kind, "input_crs"), problems=problems
        )


def frame_to_wgs84(
    gdf: gpd.GeoDataFrame, crs: _Crs, *, kind: str, problems: _validate.Problems
) -> gpd.GeoDataFrame:
    """Convert to EPSG:4326 and report features the transformation broke."""
    try:
        out = to_wgs84(gdf, crs.spec)
    except (ProjError, CRSError) as err:
        msg = (
            f"{kind} '{gdf.attrs.get('source')}': cannot transform from {crs.label} to "
            f"EPSG:4326 ({err}): pass the data's real CRS as {_opt(kind, 'input_crs')}."
        )
        raise InputError(msg) from err
    geoms = np.asarray(out.geometry.array, dtype=object)
    broken = ~shapely.is_empty(geoms) & ~np.isfinite(shapely.bounds(geoms)).all(axis=1)
    if broken.any():
        problems.add(
            f"{_validate.rows_text(gdf['row'].to_numpy()[broken])} cannot be transformed from "
            f"{crs.label} to EPSG:4326 (non-finite coordinates): check the CRS and pass the "
            f"right one as {_opt(kind, 'input_crs')}."
        )
    problems.raise_if_any()
    return out


# ---------------------------------------------------------------------------
# assembling the result
# ---------------------------------------------------------------------------


def assemble_frame(
    contract: dict[str, Any],
    geoms: np.ndarray,
    frame: pd.DataFrame,
    used: set[Any],
    *,
    source: str,
) -> gpd.GeoDataFrame:
    """The contract columns, geometry, then the unused source columns (renamed on collision)."""
    data: dict[str, Any] = {name: pd.Series(values) for name, values in contract.items()}
    data["geometry"] = gpd.GeoSeries(geoms)
    geometry_name = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    taken = {name.lower() for name in data}
    for col in frame.columns:
        if col in used or col == geometry_name:
            continue
        new = str(col)
        while new.lower() in taken:
            new = f"{new}_src"
        taken.add(new.lower())
        data[new] = frame[col].reset_index(drop=True)
    out = gpd.GeoDataFrame(data, geometry="geometry", crs=None)
    out.attrs["source"] = source
    return out


# ---------------------------------------------------------------------------
# public readers
# ---------------------------------------------------------------------------


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
    ``gridkit._validate.OVERLAP_TOLERANCE_M2`` (1 m²) between neighbouring
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
            f"{_opt(kind, 'layer')}."
        )
        raise InputError(msg)

    problems = _validate.Problems(source, what)
    columns = [c for c in frame.columns if c != frame.geometry.name]
    id_src = _pick(
        columns,
        id_col,
        _ID_NAMES,
        kind=kind,
        param="id_col",
        label="community id",
        required=True,
        problems=problems,
    )
    name_src = _pick(
        columns,
        name_col,
        _NAME_NAMES,
        kind=kind,
        param="name_col",
        label="community name",
        required=False,
        problems=problems,
    )
    street_src = _pick(
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
        missing_fix=f"give every community an id, or pass {_opt(kind, 'id_col')} to use "
        "another column.",
        duplicate_fix="give each community its own id, or dissolve the features of one "
        f"community into one (`gdf.dissolve(by={str(id_src)!r}, as_index=False)`), or pass "
        f"{_opt(kind, 'id_col')} to use another column.",
        problems=problems,
    )
    geoms = shapely.force_2d(np.asarray(frame.geometry.array, dtype=object))
    _validate.check_geometries(
        geoms,
        rows,
        allowed=_validate.POLYGONAL,
        type_fix="Community boundaries must be closed polygons: convert lines with "
        "`shapely.polygonize` or delete these features.",
        problems=problems,
    )
    check_coordinates(
        geoms,
        rows,
        crs,
        kind=kind,
        swap_fix="the file stores (lat, lon); exchange x and y at the source (e.g. "
        "`shapely.transform(geoms, lambda c: c[:, ::-1])`) and read it again.",
        problems=problems,
    )
    problems.raise_if_any()
    labels = [f"community {i}" for i in ids]
    geoms, repaired = _validate.repair_geometries(geoms, rows, labels, problems=problems)
    problems.raise_if_any()

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


def pick_lonlat_columns(
    columns: list[Any],
    lon_col: str | None,
    lat_col: str | None,
    *,
    problems: _validate.Problems,
) -> tuple[Any, Any]:
    """Find the lon and lat columns of a table (explicit, exact names, x/y, then suffixed)."""
    kind = "households"
    if (lon_col is None) != (lat_col is None):
        problems.add(
            f"only one of `lon_col`/`lat_col` was given ({lon_col!r}/{lat_col!r}): pass both "
            "(CLI `--lon-col` and `--lat-col`)."
        )
        return None, None
    if lon_col is not None:
        lon = _pick(
            columns,
            lon_col,
            (),
            kind=kind,
            param="lon_col",
            label="longitude",
            required=True,
            problems=problems,
        )
        lat = _pick(
            columns,
            lat_col,
            (),
            kind=kind,
            param="lat_col",
            label="latitude",
            required=True,
            problems=problems,
        )
        return lon, lat

    tiers = (
        (lambda c: _norm(c) in _LON_NAMES, lambda c: _norm(c) in _LAT_NAMES),
        (lambda c: _norm(c) == "x", lambda c: _norm(c) == "y"),
        (lambda c: _coord_key(c, "lon") is not None, lambda c: _coord_key(c, "lat") is not None),
    )
    for tier, (is_lon, is_lat) in enumerate(tiers):
        lons = [c for c in columns if is_lon(c)]
        lats = [c for c in columns if is_lat(c)]
        if not lons or not lats:
            continue
        if len(lons) == 1 and len(lats) == 1:
            return lons[0], lats[0]
        if tier < 2:
            problems.add(
                f"several longitude/latitude columns ({', '.join(map(str, lons + lats))}): "
                "pass the ones to use as `lon_col=...`/`lat_col=...` (CLI `--lon-col`/"
                "`--lat-col`) together with the matching `input_crs` (CLI `--input-crs`)."
            )
            return None, None
        pairs = [
            (lo, la) for lo in lons for la in lats if _coord_key(lo, "lon") == _coord_key(la, "lat")
        ]
        listed = ", ".join(f"{lo}/{la}" for lo, la in pairs) or ", ".join(map(str, lons + lats))
        example = next(
            (p for p in pairs if normalise_crs_name(_coord_key(p[0], "lon")) == "wgs84"),
            pairs[0] if pairs else (lons[0], lats[0]),
        )
        system = normalise_crs_name(_coord_key(example[0], "lon"))
        system = system if system in SYSTEMS else "<crs>"
        problems.add(
            f"several lon/lat column pairs ({listed}), probably in different coordinate "
            "systems: pass one pair as `lon_col=...`/`lat_col=...` (CLI `--lon-col`/`--lat-col`) "
            "together with the matching `input_crs` (CLI `--input-crs`), e.g. "
            f"`lon_col={example[0]!r}, lat_col={example[1]!r}, input_crs={system!r}` "
            f"(CLI `--lon-col {example[0]} --lat-col {example[1]} --input-crs {system}`)."
        )
        return None, None

    hint = ""
    both = ("lnglat", "lonlat", "latlng", "latlon", "coordinates", "location", "坐标")
    combined = [c for c in columns if "经纬" in str(c) or _norm(c).replace("_", "") in both]
    if combined:
        hint = (
            f" Column {combined[0]!r} seems to hold both values in one cell: split it into "
            "two columns first."
        )
    problems.add(
        f"no longitude/latitude columns found (looked for {', '.join((*_LON_NAMES, 'x'))} / "
        f"{', '.join((*_LAT_NAMES, 'y'))}, case-insensitive, also with suffixes such as "
        f"lng_wgs84); available columns: {columns_text(columns)}. Pass them as "
        f"{_opt(kind, 'lon_col')} and {_opt(kind, 'lat_col')}.{hint}"
    )
    return None, None


def _coord_key(name: Any, axis: str) -> str | None:
    """The rest of a lon/lat column name once the axis word is removed, else ``None``.

    ``lng_wgs84`` -> ``"wgs84"``, ``经度(GCJ02)`` -> ``"(gcj02)"``, ``lat`` -> ``""``.
    """
    norm = _norm(name)
    cjk = "经度" if axis == "lon" else "纬度"
    if cjk in norm:
        return norm.replace(cjk, "", 1).strip(" _-()（）")
    words = (*_LON_NAMES[:3], "x") if axis == "lon" else (*_LAT_NAMES[:2], "y")
    tokens = [t for t in _TOKEN_SPLIT.split(norm) if t]
    for i, token in enumerate(tokens):
        if token in words:
            return "_".join(tokens[:i] + tokens[i + 1 :])
    return None


def _count_like_columns(frame: pd.DataFrame, columns: list[Any]) -> list[Any]:
    """Numeric columns whose name suggests household counts (for a hint)."""
    found = []
    for col in columns:
        name = _norm(col)
        tokens = _TOKEN_SPLIT.split(name)
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
        msg = f"{what} file '{source}' contains no rows: check the file and {_opt(kind, 'layer')}."
        raise InputError(msg)

    problems = _validate.Problems(source, what)
    geometry_name = None if is_table else frame.geometry.name
    columns = [c for c in frame.columns if c != geometry_name]
    if not is_table and (lon_col is not None or lat_col is not None):
        problems.add(
            "`lon_col`/`lat_col` (CLI `--lon-col`/`--lat-col`) only apply to tables (CSV) "
            "but this file already has a geometry: drop these options."
        )
    id_src = _pick(
        columns,
        id_col,
        _HOUSEHOLD_ID_NAMES,
        kind=kind,
        param="id_col",
        label="household id",
        required=False,
        problems=problems,
    )
    hh_src = _pick(
        columns,
        households_col,
        _HOUSEHOLDS_NAMES,
        kind=kind,
        param="households_col",
        label="households",
        required=False,
        problems=problems,
    )
    building_src = _pick(
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
            missing_fix=f"give every row an id, or pass {_opt(kind, 'id_col')} to use another "
            "column.",
            duplicate_fix=f"give each row its own id, or pass {_opt(kind, 'id_col')} to use "
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
            option=_opt(kind, "households_col"),
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
            f"pass {_opt(kind, 'lon_col', lat_src)} and {_opt(kind, 'lat_col', lon_src)} "
            "if the columns are swapped, or correct these rows."
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
            swap_fix="the file stores (lat, lon); exchange x and y at the source (e.g. "
            "`shapely.transform(geoms, lambda c: c[:, ::-1])`) and read it again.",
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
            f"{_opt(kind, 'input_crs', 'gcj02')}, from Baidu {_opt(kind, 'input_crs', 'bd09')}; "
            f"pass {_opt(kind, 'input_crs', 'wgs84')} to confirm WGS84 and silence this warning.",
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
                f"{_opt(kind, 'households_col', hinted[0])} to use it.",
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


def simplify_single_parts(geoms: np.ndarray) -> np.ndarray:
    """Single-part MultiPoint / MultiPolygon -> Point / Polygon (new array)."""
    out = np.array(geoms, dtype=object)
    type_ids = shapely.get_type_id(out)
    multi = np.isin(type_ids, [4, 6]) & (shapely.get_num_geometries(out) == 1)
    if multi.any():
        out[multi] = shapely.get_geometry(out[multi], 0)
    return out
