"""Write grids and reports: GeoJSON (RFC 7946), assignments CSV, report JSON.

Spreadsheet-safe CSV
    Officials open the CSV files in Excel or WPS, which run a cell that begins with
    ``=``, ``+``, ``-``, ``@`` or ``|`` (or a tab or carriage return before one) as a
    formula, so an id such as ``=HYPERLINK(...)`` in an input file could act when the
    table is opened.  Every CSV (and XLSX) gridkit writes therefore goes through
    :func:`spreadsheet_safe`, the rule of spreadsheet-safe exporters (OWASP "CSV
    injection"): a text cell or column name that begins with one of
    ``= + - @ |``, a tab or a carriage return, or with an apostrophe ``'``, gets one
    ``'`` in front; numbers (``-12.5``, ``+86``, ``1e-3``), in numeric columns or
    written as text, are left as they are.  Spreadsheets show the apostrophe-prefixed
    text as text.  Programs get the original value back by removing one leading
    ``'`` from any cell that begins with one (:func:`original_text`; gridkit does so
    when it reads its own ``assignments.csv`` and ``roster.csv``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.contracts import PLAN_FILES
from gridkit.export.outputs import OutputSet
from gridkit.maps import explore, save_map

if TYPE_CHECKING:
    from gridkit.pipeline import GridPlan

__all__ = [
    "FORMULA_START",
    "GEOJSON_GRID",
    "PLAN_FILES",
    "on_output_grid",
    "original_text",
    "spreadsheet_safe",
    "to_assignments_csv",
    "to_geojson",
    "to_report_json",
    "write_outputs",
    "write_plan_files",
    "write_plan_set",
]

#: Characters that make a spreadsheet read a cell as a formula when they lead it.
FORMULA_START = "=+-@|\t\r"
_NEEDS_QUOTE = re.compile(r"^[=+\-@|\t\r']")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")

log = logging.getLogger(__name__)


def _safe_cell(value: Any) -> Any:
    if isinstance(value, str) and _NEEDS_QUOTE.match(value) and not _NUMBER.match(value):
        return "'" + value
    return value


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names no spreadsheet runs as formulas.

    See the module doc for the rule: text beginning with ``= + - @ |``, a tab, a
    carriage return or ``'`` gets one ``'`` in front; numbers stay as they are.

    Parameters
    ----------
    frame
        A table about to be written as CSV or XLSX.

    Returns
    -------
    pandas.DataFrame
        The neutralised copy (``frame`` itself when nothing needed a change).

    Examples
    --------
    >>> t = pd.DataFrame({"id": ["=1+2", "-12.5", "@SUM(A1)", "ok", "'x"], "n": [-1] * 5})
    >>> spreadsheet_safe(t)["id"].tolist()
    ["'=1+2", '-12.5', "'@SUM(A1)", 'ok', "''x"]
    >>> spreadsheet_safe(t)["n"].tolist()
    [-1, -1, -1, -1, -1]
    """
    out = None
    for position, _col in enumerate(frame.columns):
        s = frame.iloc[:, position]
        if s.dtype != object and not pd.api.types.is_string_dtype(s):
            continue
        text = s.astype(object)
        try:
            hit = text.str.match(_NEEDS_QUOTE, na=False) & ~text.str.match(_NUMBER, na=False)
        except AttributeError:  # an object column without text (numbers and blanks)
            hit = text.map(lambda v: isinstance(v, str) and _safe_cell(v) != v).astype(bool)
        if hit.any():
            out = frame.copy() if out is None else out
            values = text.to_numpy(dtype=object, copy=True)
            mask = hit.to_numpy()
            values[mask] = ["'" + v for v in values[mask]]
            out.isetitem(position, pd.Series(values, index=frame.index, dtype=object))
    names = [_safe_cell(c) for c in frame.columns]
    if names != list(frame.columns):
        out = (frame.copy() if out is None else out).set_axis(names, axis=1)
    return frame if out is None else out


def original_text(value: Any) -> Any:
    """The value :func:`spreadsheet_safe` neutralised: one leading ``'`` removed.

    Parameters
    ----------
    value
        A cell read from a CSV gridkit wrote (non-text values are returned as they are).

    Returns
    -------
    Any
        The original value.

    Examples
    --------
    >>> original_text("'=1+2"), original_text("''x"), original_text("-12.5")
    ('=1+2', "'x", '-12.5')
    """
    if isinstance(value, str) and value.startswith("'"):
        return value[1:]
    return value


def to_geojson(gdf: gpd.GeoDataFrame, path: str | os.PathLike) -> Path:
    """Write a layer as RFC 7946 GeoJSON (WGS84 lon/lat, 7 decimals) and return the path.

    Parent folders are created.  The output is byte-identical for identical
    input.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = gdf.to_crs(4326) if gdf.crs is not None else gdf
    out = on_output_grid(out)
    if path.exists():
        path.unlink()
    out.to_file(
        path,
        driver="GeoJSON",
        engine="pyogrio",
        layer_options={"RFC7946": "YES", "WRITE_NAME": "NO"},
    )
    log.info("wrote %d features to %s", len(out), path)
    return path


#: Coordinates of GeoJSON outputs: 7 decimals of a degree (about 1 cm).
GEOJSON_GRID = 1e-7


def on_output_grid(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Polygons snapped to the 7-decimal grid GeoJSON is written on, kept valid.

    Rounding every vertex to 7 decimals (as the RFC 7946 writer does) can make a
    narrow polygon cross itself, and every gridkit command refuses an invalid grid
    when it reads the file back.  ``shapely.set_precision`` snaps to the same grid and
    repairs what the snapping broke, so the file holds exactly what is meant and reads
    back valid.  Points and lines, and a polygon that snapping would empty, are left
    as they are.  ``gdf`` is not modified.

    Parameters
    ----------
    gdf
        A layer in EPSG:4326 (or without CRS).

    Returns
    -------
    geopandas.GeoDataFrame
        ``gdf`` itself when nothing is polygonal, else a copy.
    """
    geoms = gdf.geometry.to_numpy()
    kinds = shapely.get_type_id(geoms)
    polygonal = np.isin(kinds, (3, 6))  # Polygon, MultiPolygon
    if not polygonal.any():
        return gdf
    snapped = geoms.copy()
    snapped[polygonal] = shapely.set_precision(geoms[polygonal], GEOJSON_GRID)
    emptied = polygonal & shapely.is_empty(snapped) & ~shapely.is_empty(geoms)
    snapped[emptied] = geoms[emptied]
    out = gdf.copy()
    out[gdf.geometry.name] = gpd.GeoSeries(snapped, index=gdf.index, crs=gdf.crs)
    return out


def to_assignments_csv(assignments: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a table as UTF-8 CSV (with BOM, so Excel shows Chinese), spreadsheet-safe.

    Text cells that a spreadsheet would run as formulas are neutralised
    (:func:`spreadsheet_safe`, see the module doc).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spreadsheet_safe(assignments).to_csv(
        path, index=False, encoding="utf-8-sig", lineterminator="\n"
    )
    log.info("wrote %d rows to %s", len(assignments), path)
    return path


def to_report_json(report: dict, path: str | os.PathLike) -> Path:
    """Write the run report as pretty-printed UTF-8 JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def write_plan_set(
    out: str | os.PathLike | OutputSet,
    *,
    grids: gpd.GeoDataFrame,
    assignments: pd.DataFrame | Callable[[Path], Any],
    report: dict | Callable[[Any], dict],
    buildings: gpd.GeoDataFrame | Callable[[], gpd.GeoDataFrame],
    communities: gpd.GeoDataFrame | None = None,
    map_html: bool = False,
    offline: bool = True,
    lang: str = "zh",
) -> tuple[dict, dict[str, Path]]:
    """Write a partition output set: the one writer of its files, in their order.

    ``grids.geojson``, ``assignments.csv``, ``report.json``, ``buildings.geojson`` and
    (``map_html``) ``map.html`` (:data:`PLAN_FILES`), each made just before it is
    written, so a run that streams its rows can hand over functions instead of tables.

    Parameters
    ----------
    out
        The output folder: the set is opened (:class:`gridkit.export.OutputSet`,
        command ``partition``), written and committed here (an interrupted write leaves
        the previous set whole; a ``map.html`` of an earlier run is removed when none is
        written).  Or an open ``OutputSet``: the files are written into it and the
        caller commits (``regenerate`` adds its own files to the set).
    grids
        The grid layer, in EPSG:4326.
    assignments
        The assignments table, or a function that writes ``assignments.csv`` (UTF-8
        with BOM, spreadsheet-safe) at the path it is given and returns what
        ``report`` needs (the row totals).
    report
        The report, or a function of what ``assignments`` returned that makes it.
    buildings
        The buildings layer, or a function that makes it.
    communities
        The communities, for the map.
    map_html, offline, lang
        Write ``map.html`` (``offline``: no network needed; ``lang``: its labels),
        see :func:`gridkit.maps.explore`.

    Returns
    -------
    report, paths
        The report written, and kind -> the final path of each file.
    """
    names = {kind: name for kind, name in PLAN_FILES.items() if map_html or kind != "map"}
    opened = not isinstance(out, OutputSet)
    outputs = OutputSet(out, "partition", known=PLAN_FILES.values()) if opened else out
    with outputs if opened else contextlib.nullcontext():
        to_geojson(grids, outputs.path(names["grids"]))
        if callable(assignments):
            totals = assignments(outputs.path(names["assignments"]))
        else:
            to_assignments_csv(assignments, outputs.path(names["assignments"]))
            totals = None
        report = report(totals) if callable(report) else report
        to_report_json(report, outputs.path(names["report"]))
        buildings = buildings() if callable(buildings) else buildings
        to_geojson(buildings, outputs.path(names["buildings"]))
        if map_html:
            m = explore(
                grids, communities=communities, households=buildings, offline=offline,
                lang=lang,
            )  # fmt: skip
            save_map(m, outputs.path(names["map"]))
        if opened:
            outputs.commit()
    return report, {kind: outputs.final(name) for kind, name in names.items()}


def _plan_parts(plan: GridPlan) -> dict[str, Any]:
    """What :func:`write_plan_set` writes of an in-memory plan."""
    return {
        "grids": plan.grids,
        "assignments": plan.assignments,
        "report": plan.report,
        "buildings": lambda: plan.buildings,
        "communities": plan.units.communities,
    }


def write_plan_files(
    plan: GridPlan, outputs: OutputSet, *, map_html: bool = False, offline: bool = True
) -> dict[str, Path]:
    """Write a plan's files into an open :class:`gridkit.export.OutputSet` (not committed).

    ``offline`` (the default) makes a ``map.html`` that needs no network
    (:func:`gridkit.maps.explore`).

    Returns
    -------
    dict
        Kind -> the final path each file will have once the set is committed.
    """
    _, paths = write_plan_set(outputs, **_plan_parts(plan), map_html=map_html, offline=offline)
    return paths


def write_outputs(
    plan: GridPlan, out_dir: str | os.PathLike, *, map_html: bool = False, offline: bool = True
) -> dict[str, Path]:
    """Write ``grids.geojson``, ``assignments.csv``, ``report.json``, ``buildings.geojson``
    (one point per building with its grid) and optionally ``map.html``, as one set.

    With ``offline=True`` (the default) the map embeds its JavaScript/CSS and has no web
    basemap, so it opens on a closed intranet; ``offline=False`` loads them from CDNs
    and shows OpenStreetMap tiles.  The files are written through
    :class:`gridkit.export.OutputSet`: an interrupted write leaves the previous set
    whole, and a ``map.html`` of an earlier run is removed when none is written.
    """
    _, paths = write_plan_set(out_dir, **_plan_parts(plan), map_html=map_html, offline=offline)
    return paths
