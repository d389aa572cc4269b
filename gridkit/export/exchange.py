"""Export a gridkit output folder to GeoJSON, GeoPackage, Shapefile, CSV or PostGIS.

:func:`export_layers` reads the layers of a folder written by ``gridkit
partition`` (``grids.geojson``, and ``buildings.geojson`` / ``workers.geojson``
when present), converts them to the requested coordinate system and writes
them in the format chosen by the destination:

=====================================  ============================================
destination ``to``                     written
=====================================  ============================================
``PATH.geojson`` / ``PATH.json``       RFC 7946 GeoJSON, one file per layer
``PATH.gpkg``                          one GeoPackage, one layer each
``PATH.shp``                           one Shapefile per layer, UTF-8 with ``.cpg``,
                                       names shortened by :data:`SHAPEFILE_NAMES`
``PATH.csv``                           one UTF-8 CSV per layer, geometry as ``wkt``
``postgresql://user@host:port/db``     PostGIS tables, all or nothing
=====================================  ============================================

Per-file formats write the ``grids`` layer to ``PATH`` itself and every other
layer to ``PATH`` with ``_<layer>`` before the suffix (``out/x.shp``,
``out/x_buildings.shp``).  Files appear atomically: each is written to a
temporary folder beside the destination, then moved into place, so a reader
never sees a half-written file and a failed export leaves the old files.

Coordinate systems (``crs``)
    ``"wgs84"`` (default), ``"gcj02"`` (Amap/Gaode, Tencent), ``"bd09"``
    (Baidu) or any EPSG code (``"EPSG:4490"``).  GCJ-02 and BD-09 have no EPSG
    code: the files declare EPSG:4326 (lon/lat degrees) and every feature
    carries a ``crs_note`` property (:data:`CRS_NOTES`) saying which system
    the numbers are in; GeoJSON files also get a top-level ``description``,
    GeoPackage layers a description and ``crs_note`` metadata item, PostGIS
    tables a table comment.

PostGIS
    One transaction: every layer is loaded into a staging table
    ``<layer>__gridkit_new`` (columns, ``geom`` column, primary key, GiST
    index), then the old tables are dropped and the staging tables renamed.
    Any error rolls everything back, so the previous tables stay intact and
    no staging table is left.  Needs the ``postgis`` extra (SQLAlchemy and
    psycopg 3): ``pip install "gridkit[postgis]"``.  The loading lives in
    :mod:`gridkit.export.postgis`; this module reads the folder, converts the
    coordinates and writes the files.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely
from pyproj.exceptions import CRSError

from gridkit.crs import SYSTEMS, from_wgs84, normalise_crs_name
from gridkit.errors import InputError, format_ids
from gridkit.export.files import spreadsheet_safe
from gridkit.export.outputs import OutputSet, check_set
from gridkit.export.postgis import PRIMARY_KEYS, is_postgis_url, write_postgis
from gridkit.export.workbook import write_summary_xlsx

__all__ = [
    "CRS_NOTES",
    "LAYERS",
    "SHAPEFILE_NAMES",
    "crs_from_note",
    "export_layers",
    "grids_schema",
    "shapefile_names",
]

log = logging.getLogger(__name__)

#: Layers an output folder may hold, and their files.
LAYERS: dict[str, str] = {
    "grids": "grids.geojson",
    "buildings": "buildings.geojson",
    "workers": "workers.geojson",
}


#: Attribute names longer than a Shapefile allows (10 bytes) and their short forms.
#: Other long names are cut to 10 bytes, with ``_2``, ``_3`` … on a clash.
SHAPEFILE_NAMES: dict[str, str] = {
    "community_id": "comm_id",
    "community_name": "comm_name",
    "compactness": "compact",
    "building_id": "bldg_id",
    "street_code": "street_cd",
    "district_code": "dist_code",
    "district_name": "dist_name",
    "declared_households": "hh_decl",
    # staffing columns of `gridkit assign` (names of the people, joined by "、")
    "grid_worker": "grid_wkr",
    "grid_leader": "grid_ldr",
    "legal_adviser": "legal_adv",
    "missing_roles": "missing",
    # buildings and the regenerate diff
    "first_household_id": "first_hh",
    "old_households": "old_hh",
    "households_in": "hh_in",
    "households_out": "hh_out",
    "old_buildings": "old_bldgs",
    "geometry_changed": "geom_chg",
}

#: The ``crs_note`` written with GCJ-02 / BD-09 exports.  Each starts with the system name.
CRS_NOTES: dict[str, str] = {
    "gcj02": (
        "GCJ-02 lon/lat (Amap/Gaode, Tencent), NOT WGS84: coordinates are shifted by up to "
        "about 700 m for those maps; convert with gridkit.crs.gcj02_to_wgs84 before any "
        "analysis or overlay on WGS84 data"
    ),
    "bd09": (
        "BD-09 lon/lat (Baidu), NOT WGS84: coordinates are shifted by up to about 2 km for "
        "Baidu maps; convert with gridkit.crs.bd09_to_wgs84 before any analysis or overlay "
        "on WGS84 data"
    ),
}

_FORMATS = {
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".shp": "shp",
    ".csv": "csv",
}
_SUPPORTED = (
    "PATH.geojson / .json (GeoJSON), PATH.gpkg (GeoPackage), PATH.shp (Shapefile), "
    "PATH.csv (CSV), PATH.xlsx (the summary workbook), postgresql://user@host:port/database "
    "(PostGIS)"
)


def crs_from_note(note: Any) -> str | None:
    """The system (``"gcj02"`` / ``"bd09"``) a ``crs_note`` value declares, else ``None``.

    Examples
    --------
    >>> crs_from_note(CRS_NOTES["gcj02"]), crs_from_note("BD-09 lon/lat"), crs_from_note("x")
    ('gcj02', 'bd09', None)
    """
    if not isinstance(note, str):
        return None
    head = note.strip().upper()
    if head.startswith("GCJ-02") or head.startswith("GCJ02"):
        return "gcj02"
    if head.startswith("BD-09") or head.startswith("BD09"):
        return "bd09"
    return None


def grids_schema() -> dict:
    """The JSON Schema (draft 2020-12) of the properties of one ``grids.geojson`` feature.

    Returns
    -------
    dict
        The parsed ``gridkit/schemas/grids.schema.json`` shipped with the package.

    Examples
    --------
    >>> sorted(grids_schema()["required"])[:3]
    ['area_m2', 'buildings', 'community_id']
    """
    text = resources.files("gridkit").joinpath("schemas/grids.schema.json").read_text("utf-8")
    return json.loads(text)


def shapefile_names(columns: Iterable[str]) -> dict[str, str]:
    """The Shapefile attribute name of each column (≤ 10 bytes, unique, stable).

    Parameters
    ----------
    columns
        Column names in order.

    Returns
    -------
    dict
        ``{column: short name}``; names that fit are kept.

    Examples
    --------
    >>> shapefile_names(["grid_code", "community_name", "compactness", "a_very_long_name"])
    {'grid_code': 'grid_code', 'community_name': 'comm_name', 'compactness': 'compact', \
'a_very_long_name': 'a_very_lon'}
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for col in columns:
        name = SHAPEFILE_NAMES.get(col, col)
        name = _cut(name, 10)
        base, k = name, 1
        while name.lower() in taken:
            k += 1
            name = _cut(base, 10 - len(f"_{k}")) + f"_{k}"
        taken.add(name.lower())
        out[col] = name
    return out


def _cut(name: str, limit: int) -> str:
    """``name`` cut to at most ``limit`` UTF-8 bytes without splitting a character."""
    data = name.encode("utf-8")
    if len(data) <= limit:
        return name
    return data[:limit].decode("utf-8", errors="ignore")


# ---------------------------------------------------------------------------
# reading the source folder
# ---------------------------------------------------------------------------


def _parse_layers(layers: str | Iterable[str] | None, src: Path) -> list[str]:
    if layers is None:
        found = [name for name, file in LAYERS.items() if (src / file).is_file()]
        if "grids" not in found:
            msg = (
                f"export source '{src}' has no {LAYERS['grids']}: pass the folder written by "
                "`gridkit partition --out DIR`."
            )
            raise InputError(msg)
        return found
    names = [s.strip() for s in layers.split(",")] if isinstance(layers, str) else list(layers)
    names = [s for s in names if s]
    unknown = [s for s in names if s not in LAYERS]
    if unknown or not names:
        msg = (
            f"unknown layer(s) {format_ids(unknown) or '(none given)'} in `layers` (CLI "
            f"`--layers`): choose among {', '.join(LAYERS)}, comma-separated."
        )
        raise InputError(msg)
    missing = [s for s in names if not (src / LAYERS[s]).is_file()]
    if missing:
        files = ", ".join(LAYERS[s] for s in missing)
        msg = (
            f"export source '{src}' has no {files} for layer(s) {', '.join(missing)}: drop them "
            f"from `layers` (CLI `--layers`), or write them into '{src}' first."
        )
        raise InputError(msg)
    return list(dict.fromkeys(names))


def _read_layer(src: Path, layer: str) -> gpd.GeoDataFrame:
    path = src / LAYERS[layer]
    try:
        gdf = gpd.read_file(path, engine="pyogrio")
    except (RuntimeError, OSError, ValueError) as err:
        msg = f"cannot read layer {layer!r} from '{path}' ({err}): write it again with gridkit."
        raise InputError(msg) from err
    if gdf.crs is None:
        gdf = gdf.set_crs(4326)
    if "crs_note" in gdf.columns and gdf["crs_note"].map(crs_from_note).notna().any():
        msg = (
            f"layer {layer!r} in '{path}' is already shifted (its `crs_note` says "
            f"{gdf['crs_note'].dropna().iloc[0][:6]}): export from the WGS84 folder written by "
            "`gridkit partition`."
        )
        raise InputError(msg)
    key = PRIMARY_KEYS[layer]
    if layer == "grids":
        if key not in gdf.columns:
            msg = (
                f"'{path}' has no `{key}` column: export from a folder written by "
                "`gridkit partition`."
            )
            raise InputError(msg)
        dup = gdf[key].duplicated(keep=False) | gdf[key].isna()
        if dup.any():
            msg = (
                f"'{path}': `{key}` is missing or duplicated at features "
                f"{format_ids((np.flatnonzero(dup.to_numpy()) + 1).tolist())}: each grid needs "
                "its own code; regenerate the folder with `gridkit partition`."
            )
            raise InputError(msg)
    gdf.attrs["source"] = str(path)
    return gdf


def _target(crs: Any) -> tuple[Any, str, str | None]:
    """``(spec for from_wgs84, label, note)`` for the requested ``crs``."""
    name = normalise_crs_name(crs if crs is not None else "wgs84")
    if isinstance(name, str) and name in SYSTEMS:
        return name, name, CRS_NOTES.get(name)
    try:
        target = pyproj.CRS.from_user_input(name)
    except CRSError as err:
        msg = (
            f"unknown CRS {crs!r} for `crs` (CLI `--crs`): use wgs84, gcj02 (Amap/Gaode, "
            "Tencent), bd09 (Baidu) or an EPSG code such as EPSG:4490."
        )
        raise InputError(msg) from err
    return target, target.to_string(), None


def _convert(gdf: gpd.GeoDataFrame, spec: Any, note: str | None) -> gpd.GeoDataFrame:
    out = from_wgs84(gdf, spec, param="crs")
    if note is not None:
        geom = out.geometry.name
        out = out.drop(columns=[geom]).assign(crs_note=note).set_geometry(out.geometry)
        out = out[[c for c in out.columns if c != geom] + [geom]]
    return out


# ---------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------


def _layer_path(to: Path, layer: str) -> Path:
    return to if layer == "grids" else to.with_name(f"{to.stem}_{layer}{to.suffix}")


@contextmanager
def _staging_dir(to: Path) -> Iterator[Path]:
    """A temporary folder beside ``to`` (same file system, so moves are atomic)."""
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{to.name}.", dir=to.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def _fixed_gdal_date() -> Iterator[None]:
    """Fixed GeoPackage timestamps, so identical exports are identical files."""
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2000-01-01T00:00:00.000Z"})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})


def _geographic(gdf: gpd.GeoDataFrame) -> bool:
    return gdf.crs is None or pyproj.CRS.from_user_input(gdf.crs).is_geographic


def _export_set(to: Path):
    """The files of one export to ``to``, written as one set (:class:`gridkit.export.OutputSet`).

    A kill while the layers are moved into place is finished by the next export to the
    same target, so the folder never keeps new grids beside old buildings.
    """
    return OutputSet(to.parent, "export", label=to.name, manifest=False)


def _write_geojson(
    frames: dict[str, gpd.GeoDataFrame], to: Path, *, rfc7946: bool, note: str | None
) -> list[Path]:
    with _export_set(to) as outputs:
        for layer, gdf in frames.items():
            options = {"WRITE_NAME": "NO"}
            if rfc7946:
                options["RFC7946"] = "YES"
            else:
                options["COORDINATE_PRECISION"] = "7" if _geographic(gdf) else "3"
            if note:
                options["DESCRIPTION"] = note
            final = _layer_path(to, layer)
            pyogrio.write_dataframe(
                gdf, outputs.path(final.name), driver="GeoJSON", layer_options=options
            )
        outputs.commit()
    return [_layer_path(to, layer) for layer in frames]


def _write_gpkg(frames: dict[str, gpd.GeoDataFrame], to: Path, *, note: str | None) -> list[Path]:
    with _staging_dir(to) as tmp, _fixed_gdal_date():
        work = tmp / to.name
        if to.exists():  # keep the file's other layers
            shutil.copy2(to, work)
        for layer, gdf in frames.items():
            options = {"DESCRIPTION": note} if note else None
            pyogrio.write_dataframe(
                gdf,
                work,
                driver="GPKG",
                layer=layer,
                layer_options=options,
                layer_metadata={"crs_note": note} if note else None,
            )
        os.replace(work, to)
    return [to]


def _write_shapefiles(frames: dict[str, gpd.GeoDataFrame], to: Path) -> list[Path]:
    with _export_set(to) as outputs:
        for layer, gdf in frames.items():
            geom = gdf.geometry.name
            names = shapefile_names([c for c in gdf.columns if c != geom])
            out = gdf.rename(columns=names)
            final = _layer_path(to, layer)
            pyogrio.write_dataframe(
                out, outputs.staging / final.name, driver="ESRI Shapefile", encoding="UTF-8"
            )
            for part in sorted(outputs.staging.glob(f"{final.stem}.*")):
                outputs.path(part.name)  # every part of the Shapefile belongs to the set
        outputs.commit()
    return [_layer_path(to, layer) for layer in frames]


def _csv_frame(gdf: gpd.GeoDataFrame) -> pd.DataFrame:
    geom = gdf.geometry.name
    geographic = _geographic(gdf)
    digits = 7 if geographic else 3
    points = gdf.geometry.representative_point()
    x_name, y_name = ("lon", "lat") if geographic else ("x", "y")
    out = pd.DataFrame(gdf.drop(columns=[geom]))
    out[x_name] = np.round(points.x.to_numpy(), digits)
    out[y_name] = np.round(points.y.to_numpy(), digits)
    out["wkt"] = shapely.to_wkt(
        np.asarray(gdf.geometry.array, dtype=object), rounding_precision=digits, trim=True
    )
    return out


def _write_csv(frames: dict[str, gpd.GeoDataFrame], to: Path) -> list[Path]:
    """CSV layers, spreadsheet-safe (:func:`gridkit.export.spreadsheet_safe`)."""
    with _export_set(to) as outputs:
        for layer, gdf in frames.items():
            final = _layer_path(to, layer)
            spreadsheet_safe(_csv_frame(gdf)).to_csv(
                outputs.path(final.name), index=False, encoding="utf-8-sig", lineterminator="\n"
            )
        outputs.commit()
    return [_layer_path(to, layer) for layer in frames]


# ---------------------------------------------------------------------------
# public
# ---------------------------------------------------------------------------


def export_layers(
    src_dir: str | os.PathLike[str],
    to: str | os.PathLike[str],
    *,
    crs: str = "wgs84",
    layers: str | Iterable[str] | None = None,
) -> list[Path | str]:
    """Export the layers of a gridkit output folder to a file format or PostGIS.

    Parameters
    ----------
    src_dir
        A folder written by ``gridkit partition`` (``grids.geojson``, and
        ``buildings.geojson`` / ``workers.geojson`` when present).
    to
        Destination; the format follows the suffix or URL scheme:
        ``.geojson``/``.json``, ``.gpkg``, ``.shp``, ``.csv`` or
        ``postgresql://user:password@host:port/database`` (optional
        ``?schema=name``, default ``public``); ``.xlsx`` writes the summary
        workbook instead (:func:`gridkit.export.write_summary_xlsx`: one sheet
        per street, community and grid, Chinese headers, totals).  Per-file formats write
        ``grids`` to ``to`` and other layers beside it as ``<stem>_<layer>``.
    crs
        {"wgs84", "gcj02", "bd09", "EPSG:nnnn"}
        Coordinate system of the output.  GCJ-02 (Amap/Gaode, Tencent) and
        BD-09 (Baidu) outputs are marked with a ``crs_note`` property and
        layer metadata; the files declare EPSG:4326.
    layers
        {"grids", "buildings", "workers"}
        Layers to export (a list or comma-separated string); default every
        layer present in ``src_dir``.

    Returns
    -------
    list of pathlib.Path or str
        The files written, or ``"schema.table"`` names for PostGIS.

    Raises
    ------
    InputError
        Unknown format, layer or CRS; missing source files; a source already
        shifted to GCJ-02/BD-09; a CRS without EPSG code for PostGIS.
    ExportError
        PostGIS refused the export (connection, permissions, server error);
        the transaction is rolled back and the previous tables stay intact.
    ImportError
        PostGIS export without SQLAlchemy / psycopg installed.

    Examples
    --------
    >>> import tempfile, geopandas as gpd, shapely
    >>> src = Path(tempfile.mkdtemp())
    >>> grids = gpd.GeoDataFrame({"grid_code": ["A-001"], "grid_name": ["江汉社区第1网格"]},
    ...     geometry=[shapely.box(114.30, 30.60, 114.31, 30.61)], crs=4326)
    >>> _ = grids.to_file(src / "grids.geojson")
    >>> [p.name for p in export_layers(src, src / "out" / "x.gpkg", crs="gcj02")]
    ['x.gpkg']
    >>> gpd.read_file(src / "out" / "x.gpkg", layer="grids")["crs_note"].str[:6].tolist()
    ['GCJ-02']
    """
    started = time.perf_counter()
    src = Path(src_dir)
    if not src.is_dir():
        msg = (
            f"export source '{src}' is not a folder: pass the folder written by "
            "`gridkit partition --out DIR`."
        )
        raise InputError(msg)
    if not is_postgis_url(to) and Path(to).suffix.lower() == ".xlsx":
        return [write_summary_xlsx(src, to)]  # the summary workbook (gridkit.export.workbook)
    if is_postgis_url(to):
        kind = "postgis"
    else:
        suffix = Path(to).suffix.lower()
        if suffix not in _FORMATS:
            msg = (
                f"cannot tell the export format of {str(to)!r} (`to`, CLI `--to`): "
                f"use {_SUPPORTED}."
            )
            raise InputError(msg)
        kind = _FORMATS[suffix]
    spec, label, note = _target(crs)
    srid = 4326
    if kind == "postgis" and not isinstance(spec, str):
        epsg = spec.to_epsg()
        if epsg is None:
            msg = (
                f"PostGIS needs an EPSG code, but `crs`={crs!r} has none: pass the "
                "EPSG:nnnn form of the coordinate system."
            )
            raise InputError(msg)
        srid = epsg
    check_set(src)  # an interrupted write is finished before anything is read
    names = _parse_layers(layers, src)
    check_set(src, [LAYERS[name] for name in names])
    frames = {name: _convert(_read_layer(src, name), spec, note) for name in names}

    if kind == "postgis":
        comment = f"gridkit export from {src.name}: coordinates {note or label}"
        written: list[Path | str] = list(write_postgis(frames, str(to), srid=srid, comment=comment))
    else:
        path = Path(to)
        if kind == "geojson":
            written = list(_write_geojson(frames, path, rfc7946=isinstance(spec, str), note=note))
        elif kind == "gpkg":
            written = list(_write_gpkg(frames, path, note=note))
        elif kind == "shp":
            written = list(_write_shapefiles(frames, path))
        else:
            written = list(_write_csv(frames, path))
    log.info(
        "exported %s (%s) to %s in %.2f s",
        ", ".join(f"{k} {len(v)}" for k, v in frames.items()),
        label,
        ", ".join(str(w) for w in written),
        time.perf_counter() - started,
    )
    return written
