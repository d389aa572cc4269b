"""The reader kit: from a file or frame to a normalised table, for every reader of gridkit.

What :func:`~gridkit.io.read_boundaries`, :func:`~gridkit.io.read_households` and the
readers of other folders (grid layers, rosters, household shards) share: loading a vector
file or a CSV/TSV/TXT table (:func:`load_file`), finding columns by name
(:func:`pick_column`, :func:`pick_lonlat_columns`), cells as text (:func:`as_text`),
deciding the input CRS (:func:`resolve_input_crs`), checking coordinates against it, and
assembling the result in EPSG:4326 (:func:`assemble_frame`, :func:`frame_to_wgs84`).
Messages name the Python keyword and the CLI flag of each option (:func:`option_text`).
"""

from __future__ import annotations

import os
import re
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
from gridkit.errors import InputError, format_ids
from gridkit.io import validate as _validate

__all__ = [
    "NAME_SEPARATORS",
    "TABLE_FORMATS",
    "TABLE_SUFFIXES",
    "VECTOR_FORMATS",
    "PathOrFrame",
    "as_optional_text",
    "as_text",
    "assemble_frame",
    "cell_text",
    "check_coordinates",
    "checked_polygons",
    "column_key",
    "columns_text",
    "frame_to_wgs84",
    "guess_separator",
    "load_file",
    "option_text",
    "pick_column",
    "pick_lonlat_columns",
    "read_vector",
    "resolve_input_crs",
    "simplify_single_parts",
]

#: The vector formats the readers take, for messages.
VECTOR_FORMATS = "GeoJSON (.geojson, .json), GeoPackage (.gpkg), Shapefile (.shp or zipped .zip)"
#: The table formats the household and roster readers take, for messages.
TABLE_FORMATS = "CSV/TSV/TXT with lon/lat columns (.csv, .tsv, .txt)"
#: File suffixes read as delimited text tables rather than with pyogrio.
TABLE_SUFFIXES = (".csv", ".tsv", ".txt")
#: What to do about a vector file whose coordinates are stored (lat, lon).
SWAP_FIX = (
    "the file stores (lat, lon); exchange x and y at the source (e.g. "
    "`shapely.transform(geoms, lambda c: c[:, ::-1])`) and read it again."
)

# Auto-detected coordinate column names (compared case-insensitively, blanks stripped).
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
    "dedicated": {
        "type_col": "--dedicated-type-col",
        "name_col": "--dedicated-name-col",
        "input_crs": "--input-crs",
        "layer": "--dedicated-layer",
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

#: Separators between the words of a column name (``lng_wgs84`` -> ``lng``, ``wgs84``).
NAME_SEPARATORS = re.compile(r"[\s_\-.:/()（）\[\]【】]+")
#: What a reader takes: a file path, or a (Geo)DataFrame (copied, never modified).
PathOrFrame = str | os.PathLike[str] | pd.DataFrame


# ---------------------------------------------------------------------------
# columns and cells
# ---------------------------------------------------------------------------


def option_text(kind: str, param: str, value: Any = None) -> str:
    """How to pass ``param`` in Python and on the command line, for messages."""
    flag = _FLAGS[kind][param]
    if value is None:
        return f"`{param}=...` (CLI `{flag} ...`)"
    return f"`{param}={value!r}` (CLI `{flag} {value}`)"


def column_key(name: Any) -> str:
    """A column name as the readers compare it: stripped and lower-cased."""
    return str(name).strip().lower()


def columns_text(columns: list[Any]) -> str:
    """The column names of a file for messages (at most 30), or ``"(none)"``."""
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


def pick_column(
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
        matches = [c for c in columns if column_key(c) == column_key(explicit)]
        if len(matches) == 1:
            return matches[0]
        problems.add(
            f"column {explicit!r} given as {option_text(kind, param, explicit)} does not exist; "
            f"available columns: {columns_text(columns)}. Pass one of them."
        )
        return None
    for name in candidates:
        matches = [c for c in columns if column_key(c) == name]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            problems.add(
                f"several columns could hold the {label} ({', '.join(map(str, matches))}): "
                f"pass {option_text(kind, param)} to choose one."
            )
            return None
    if required:
        problems.add(
            f"no {label} column found (looked for {', '.join(candidates)}, case-insensitive); "
            f"available columns: {columns_text(columns)}. Pass the right one as "
            f"{option_text(kind, param)}."
        )
    return None


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
        lon = pick_column(
            columns,
            lon_col,
            (),
            kind=kind,
            param="lon_col",
            label="longitude",
            required=True,
            problems=problems,
        )
        lat = pick_column(
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
        (lambda c: column_key(c) in _LON_NAMES, lambda c: column_key(c) in _LAT_NAMES),
        (lambda c: column_key(c) == "x", lambda c: column_key(c) == "y"),
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
    combined = [c for c in columns if "经纬" in str(c) or column_key(c).replace("_", "") in both]
    if combined:
        hint = (
            f" Column {combined[0]!r} seems to hold both values in one cell: split it into "
            "two columns first."
        )
    problems.add(
        f"no longitude/latitude columns found (looked for {', '.join((*_LON_NAMES, 'x'))} / "
        f"{', '.join((*_LAT_NAMES, 'y'))}, case-insensitive, also with suffixes such as "
        f"lng_wgs84); available columns: {columns_text(columns)}. Pass them as "
        f"{option_text(kind, 'lon_col')} and {option_text(kind, 'lat_col')}.{hint}"
    )
    return None, None


def _coord_key(name: Any, axis: str) -> str | None:
    """The rest of a lon/lat column name once the axis word is removed, else ``None``.

    ``lng_wgs84`` -> ``"wgs84"``, ``经度(GCJ02)`` -> ``"(gcj02)"``, ``lat`` -> ``""``.
    """
    norm = column_key(name)
    cjk = "经度" if axis == "lon" else "纬度"
    if cjk in norm:
        return norm.replace(cjk, "", 1).strip(" _-()（）")
    words = (*_LON_NAMES[:3], "x") if axis == "lon" else (*_LAT_NAMES[:2], "y")
    tokens = [t for t in NAME_SEPARATORS.split(norm) if t]
    for i, token in enumerate(tokens):
        if token in words:
            return "_".join(tokens[:i] + tokens[i + 1 :])
    return None


# ---------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------


def load_file(
    path: PathOrFrame, *, layer: str | int | None, what: str, tables: bool, kind: str | None = None
) -> tuple[str, pd.DataFrame, bool]:
    """Read ``path`` into a (Geo)DataFrame: ``(source, frame, is_table)``.

    ``kind`` names the input in messages about its options (default ``households`` for
    a reader of tables, else ``boundaries``)."""
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
    frame = read_vector(
        p, source, layer=layer, what=what, formats=formats, tables=tables, kind=kind
    )
    return source, frame, not isinstance(frame, gpd.GeoDataFrame)


def read_vector(
    p: Path,
    source: str,
    *,
    layer: str | int | None,
    what: str,
    formats: str,
    tables: bool,
    kind: str | None = None,
) -> pd.DataFrame:
    """Read a vector file with pyogrio, choosing/validating the layer first."""
    kind = kind or ("households" if tables else "boundaries")
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
            f"{option_text(kind, 'layer')} to choose one, e.g. "
            f"{option_text(kind, 'layer', names[0])}."
        )
        raise InputError(msg)
    if layer is not None and not (
        (isinstance(layer, str) and layer in names)
        or (isinstance(layer, int) and 0 <= layer < len(names))
    ):
        msg = (
            f"{what} file '{source}' has no layer {layer!r}; its layers are "
            f"{format_ids(names)}: pass one of them as {option_text(kind, 'layer')}."
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
                f"unknown CRS {input_crs!r} given as {option_text(kind, 'input_crs')} for {what} "
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
        f"{what} file '{source}' declares no CRS: pass it as {option_text(kind, 'input_crs')}: "
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
            bounds,
            rows,
            swap_fix=swap_fix,
            crs_option=option_text(kind, "input_crs"),
            problems=problems,
        )
    elif crs.projected:
        _validate.check_not_degrees(
            bounds,
            crs_label=crs.label,
            crs_option=option_text(kind, "input_crs"),
            problems=problems,
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
            f"EPSG:4326 ({err}): pass the data's real CRS as {option_text(kind, 'input_crs')}."
        )
        raise InputError(msg) from err
    geoms = np.asarray(out.geometry.array, dtype=object)
    broken = ~shapely.is_empty(geoms) & ~np.isfinite(shapely.bounds(geoms)).all(axis=1)
    if broken.any():
        problems.add(
            f"{_validate.rows_text(gdf['row'].to_numpy()[broken])} cannot be transformed from "
            f"{crs.label} to EPSG:4326 (non-finite coordinates): check the CRS and pass the "
            f"right one as {option_text(kind, 'input_crs')}."
        )
    problems.raise_if_any()
    return out


# ---------------------------------------------------------------------------
# assembling the result
# ---------------------------------------------------------------------------


def simplify_single_parts(geoms: np.ndarray) -> np.ndarray:
    """Single-part MultiPoint / MultiPolygon -> Point / Polygon (new array)."""
    out = np.array(geoms, dtype=object)
    type_ids = shapely.get_type_id(out)
    multi = np.isin(type_ids, [4, 6]) & (shapely.get_num_geometries(out) == 1)
    if multi.any():
        out[multi] = shapely.get_geometry(out[multi], 0)
    return out


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


def checked_polygons(
    frame: gpd.GeoDataFrame,
    rows: np.ndarray,
    crs: _Crs,
    labels: list[str] | None,
    *,
    kind: str,
    type_fix: str,
    problems: _validate.Problems,
) -> tuple[np.ndarray, str | None]:
    """The polygons of a layer, 2-D, checked and repaired, or every problem in one error.

    The checks every polygon reader shares (communities, dedicated parcels, grid maps):
    geometry types (:data:`gridkit.io.POLYGONAL`), coordinates that are not lon/lat where
    they should be or are swapped, then invalid polygons repaired with
    ``shapely.make_valid``.

    Parameters
    ----------
    frame
        The layer as read.
    rows
        1-based feature numbers, for messages.
    crs
        The layer's resolved CRS (:func:`resolve_input_crs`).
    labels
        A label per feature for the repair message (``"community 42"``), or None.
    kind, type_fix
        What the features are (for messages) and what to do with a non-polygon.
    problems
        Where row problems are collected; raised before the repair and after it.

    Returns
    -------
    geoms, repaired
        The polygons, and the repair message (None when nothing was repaired).
    """
    geoms = shapely.force_2d(np.asarray(frame.geometry.array, dtype=object))
    _validate.check_geometries(
        geoms, rows, allowed=_validate.POLYGONAL, type_fix=type_fix, problems=problems
    )
    check_coordinates(geoms, rows, crs, kind=kind, swap_fix=SWAP_FIX, problems=problems)
    problems.raise_if_any()
    geoms, repaired = _validate.repair_geometries(geoms, rows, labels, problems=problems)
    problems.raise_if_any()
    return geoms, repaired
