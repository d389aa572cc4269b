"""Folium maps of grids, communities, buildings and workers.

:func:`explore` draws the grids (网格) of a partition on an interactive Leaflet map
(folium), with community (社区) and street (街道) outlines, building / household
points and workers' homes as layers that can be switched on and off;
:func:`save_map` writes it to an HTML file.  :func:`overview_png` draws a static
overview for printed reports with matplotlib.

Basemaps and coordinates
    Everything is drawn in WGS84 lon/lat.  Amap (高德) tiles are in GCJ-02, so with
    ``basemap="amap"`` every overlay is first shifted to GCJ-02 with
    :func:`gridkit.crs.from_wgs84` (up to ~700 m), or it would sit off the streets of
    the basemap.  OpenStreetMap and Tianditu (天地图, CGCS2000 ≈ WGS84) tiles need no
    shift.

Offline maps (the default)
    folium loads Leaflet and its plugins from CDNs.  gridkit's maps instead carry
    inline copies of the few files they need, vendored under ``gridkit/static/``
    (Leaflet, Leaflet.markercluster, jQuery; see its README), and no web basemap, so
    they open on a computer with no internet access (a 综治 intranet, an office whose
    CDN access is unreliable).  A small note in the bottom-left corner says when no
    basemap tiles are shown or reachable.  ``offline=False`` (``--online-map`` /
    ``--online`` on the command line) loads the scripts from CDNs and draws
    OpenStreetMap tiles.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import logging
import math
import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import branca.colormap
import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import CssLink, Element, Figure, JavascriptLink, MacroElement
from jinja2 import Template

from gridkit.contracts import IN_BOUNDS_STATUSES
from gridkit.crs import from_wgs84, local_metric_crs, to_wgs84
from gridkit.errors import GridkitWarning, InputError, format_ids

if TYPE_CHECKING:
    from matplotlib.path import Path as MplPath

__all__ = [
    "STATIC_DIR",
    "add_changes_layer",
    "explore",
    "html_text",
    "overview_png",
    "robust_range",
    "save_map",
    "size_histogram_png",
]

logger = logging.getLogger("gridkit.maps")  # the stage's logger: stable for users who configure it

Basemap = Literal["osm", "amap", "tianditu", "none"]
ColorBy = Literal["households", "status"]
Lang = Literal["zh", "en"]

#: Folder of the vendored JavaScript / CSS used by offline maps (see its README.md).
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

#: Point layers with more points than this are drawn as a marker cluster.
CLUSTER_THRESHOLD = 2000

AMAP_TILES = (
    "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
    "&x={x}&y={y}&z={z}"
)
_TIANDITU_TILES = (
    "https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)

_BASEMAPS = ("osm", "amap", "tianditu", "none")
_MAX_ZOOM = 19
_MIN_LABEL_ZOOM = 12
_MIN_COMMUNITY_LABEL_ZOOM = 10
_REQUIRED = ("grid_code", "households")

STATUS_COLORS: dict[str, str] = {
    "ok": "#2ca25f",
    "below_min": "#fd8d3c",
    "above_max": "#de2d26",
    "oversize_building": "#7b3294",
    "oversize_compound": "#c51b7d",
    "split_compound": "#66bd63",
}
_UNKNOWN_COLOR = "#9e9e9e"
# statuses within the household bounds: not outlined as problems in the overview PNG
_IN_BOUNDS = IN_BOUNDS_STATUSES
_HOUSEHOLD_COLORS = branca.colormap.linear.YlGnBu_09.colors
# distinct colours for points by grid (Tableau 10 without its grey)
_POINT_PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#17becf",
)  # fmt: skip
_ROLE_PALETTE = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")

_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "grids_households": "网格（按户数着色）",
        "grids_status": "网格（按状态着色）",
        "labels": "网格名称",
        "communities": "社区边界",
        "streets": "街道边界",
        "points": "楼栋 / 住户",
        "workers": "网格员住址",
        "legend_households": "网格户数（户）",
        "legend_status": "网格状态",
        "osm": "OpenStreetMap",
        "amap": "高德地图",
        "tianditu": "天地图",
        "tianditu_labels": "天地图注记",
        "custom": "本地瓦片",
        "custom_attr": "本地瓦片服务",
        "unassigned": "未分配",
        "name": "姓名",
        "role": "岗位",
        "title": "网格划分总览（{n} 个网格）",
    },
    "en": {
        "grids_households": "Grids by households",
        "grids_status": "Grids by status",
        "labels": "Grid names",
        "communities": "Community boundaries",
        "streets": "Street boundaries",
        "points": "Buildings / households",
        "workers": "Workers' homes",
        "legend_households": "Households per grid",
        "legend_status": "Grid status",
        "osm": "OpenStreetMap",
        "amap": "Amap (Gaode)",
        "tianditu": "Tianditu",
        "tianditu_labels": "Tianditu labels",
        "custom": "Local tiles",
        "custom_attr": "local tile server",
        "unassigned": "unassigned",
        "name": "Name",
        "role": "Role",
        "title": "Grid overview ({n} grids)",
    },
}

_STATUS_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "ok": "正常",
        "below_min": "户数不足",
        "above_max": "户数超标",
        "oversize_building": "超大楼栋",
        "oversize_compound": "超大小区",
        "split_compound": "拆分小区",
    },
    "en": {
        "ok": "OK",
        "below_min": "below minimum",
        "above_max": "above maximum",
        "oversize_building": "oversize building",
        "oversize_compound": "oversize compound",
        "split_compound": "split compound",
    },
}

# Column labels of tooltips and popups; other columns are shown under their own name.
_COLUMN_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "grid_code": "网格编码",
        "grid_name": "网格名称",
        "community_id": "社区代码",
        "community_name": "社区",
        "street": "街道",
        "street_code": "街道代码",
        "households": "户数",
        "buildings": "楼栋数",
        "area_m2": "面积（平方米）",
        "compactness": "紧凑度",
        "status": "状态",
        "grid_worker": "专职网格员",
        "grid_leader": "网格长",
        "police": "民警",
        "part_time": "兼职网格员",
        "volunteer": "志愿者",
        "mediator": "民调员",
        "legal_adviser": "法律顾问",
        "missing_roles": "缺员岗位",
        "building_id": "楼栋编号",
        "household_id": "住户编号",
        "compound": "小区",
        "floors": "层数",
    },
    "en": {
        "grid_code": "Grid code",
        "grid_name": "Grid name",
        "community_id": "Community id",
        "community_name": "Community",
        "street": "Street",
        "street_code": "Street code",
        "households": "Households",
        "buildings": "Buildings",
        "area_m2": "Area (m²)",
        "compactness": "Compactness",
        "status": "Status",
        "grid_worker": "Grid worker",
        "grid_leader": "Grid leader",
        "police": "Police officer",
        "part_time": "Part-time grid worker",
        "volunteer": "Volunteer",
        "mediator": "Mediator",
        "legal_adviser": "Legal adviser",
        "missing_roles": "Missing roles",
        "building_id": "Building",
        "household_id": "Household",
        "compound": "Compound",
        "floors": "Floors",
    },
}

# The grid contract (docs/design.md), in the order popups list it.
_GRID_COLUMNS = (
    "grid_code", "grid_name", "community_name", "community_id", "street", "households",
    "buildings", "area_m2", "compactness", "status",
)  # fmt: skip

#: Staffing columns of ``grids`` (one per role of :mod:`gridkit.roster`, names joined by
#: "、", plus ``missing_roles``), listed after the grid contract in popups.
WORKER_COLUMNS = (
    "grid_leader", "grid_worker", "police", "part_time", "volunteer", "mediator",
    "legal_adviser", "missing_roles",
)  # fmt: skip
#: The ones also shown in the tooltip.
_TOOLTIP_WORKERS = ("grid_leader", "grid_worker", "police", "missing_roles")


# --------------------------------------------------------------------------- explore


def explore(
    grids: gpd.GeoDataFrame,
    *,
    communities: gpd.GeoDataFrame | None = None,
    households: gpd.GeoDataFrame | None = None,
    workers: gpd.GeoDataFrame | None = None,
    m: folium.Map | None = None,
    color_by: ColorBy = "households",
    basemap: Basemap | None = None,
    tianditu_key: str | None = None,
    tiles_url: str | None = None,
    tiles_crs: Literal["wgs84", "gcj02"] = "wgs84",
    lang: Lang = "zh",
    offline: bool = True,
    height: int | str | None = None,
    label_min_zoom: int | None = None,
    color_range: tuple[float, float] | None = None,
) -> folium.Map:
    """Draw grids (and optionally communities, households, workers) on a folium map.

    Parameters
    ----------
    grids
        Grid polygons in any CRS (reprojected to EPSG:4326), with at least
        ``grid_code`` and ``households``; the other columns of the grid contract
        (``grid_name``, ``community_id``, ``community_name``, ``street``,
        ``buildings``, ``area_m2``, ``compactness``, ``status``) and worker columns
        (``grid_leader``, ``grid_worker``, ``police``, ...) are shown when present.
        Never modified.
    communities
        Community polygons (``community_name``, ``street``), drawn as dashed
        outlines, plus street (街道) outlines made by dissolving them on ``street``.
    households
        Building or household points (polygons are drawn at a representative
        point), coloured by their ``grid_code`` column (grey when it is missing or
        empty).  More than ``CLUSTER_THRESHOLD`` (2,000) points are drawn as a marker
        cluster, fewer as circle markers sized by ``households`` with a tooltip.
    workers
        Workers' homes: points with ``name`` and ``role`` (and optionally
        ``grid_code``) columns.
    m
        A map to add the layers to (its tiles are kept; ``basemap`` then only
        decides whether overlays are shifted to GCJ-02).  A new map when ``None``.
    color_by
        {"households", "status"}
        Which of the two grid layers is shown first: the fill by household count
        (a linear colour scale) or by ``status`` (ok green, below_min orange,
        above_max red, oversize_building purple).  Both are in the layer control.
    basemap
        {"osm", "amap", "tianditu", "none"}, optional
        Background tiles: OpenStreetMap, Amap / Gaode (高德, GCJ-02: overlays are
        shifted to match), Tianditu (天地图, needs ``tianditu_key``) or none.
        ``None`` (the default) means ``"none"`` for an offline map (the default)
        and ``"osm"`` with ``offline=False``.  A web basemap chosen explicitly with
        ``offline=True`` is kept: its tiles then show only when the computer happens
        to be online, and a note in the corner says so when they cannot be reached.
    tianditu_key
        Tianditu API key (天地图 tk), required for ``basemap="tianditu"``.
    tiles_url
        An XYZ tile URL template such as ``"http://10.1.2.3/tiles/{z}/{x}/{y}.png"``
        (a local or intranet tile server).  Replaces ``basemap``'s tiles; also used
        with ``offline=True``.
    tiles_crs
        {"wgs84", "gcj02"}
        Coordinate system of the ``tiles_url`` tiles; ``"gcj02"`` shifts the
        overlays as for Amap.
    lang
        {"zh", "en"}
        Language of layer names, legends, tooltips and popups.
    offline
        Embed the JavaScript and CSS inline (from ``gridkit/static``) instead of
        loading them from CDNs, so the saved HTML works without internet access
        (the default).  Only gridkit's own layers and core Leaflet features are
        guaranteed to work: folium's Bootstrap, Font Awesome and awesome-markers
        are left out.  ``False`` loads them from CDNs (and OpenStreetMap tiles
        unless ``basemap`` says otherwise).
    height
        Height of the map in pixels or as a CSS size (default ``"100%"``).
    label_min_zoom
        Zoom level from which grid names are shown.  ``None`` picks it per grid: the
        level at which the grid is about as wide as its name (usually 14–17), so
        small grids in dense areas are named only when zoomed in.  Grid labels
        carry the community name on a second line; community names are shown from
        lower zoom levels; a label that would overlap one already shown is hidden
        until the map is zoomed in far enough (larger areas first).
    color_range
        ``(low, high)`` of the household colour scale.  ``None`` uses the 2nd and
        98th percentiles of the grids' households, so a few outliers (an oversize
        building of 3,000 households) do not wash out the others; values beyond
        the range take the end colours, and the legend says "≤" / "≥".

    Returns
    -------
    folium.Map
        ``m`` or a new map, fitted to the grids; save it with :func:`save_map`.

    Raises
    ------
    InputError
        If ``grids`` is empty, has no CRS or lacks ``grid_code`` / ``households``;
        if an option is unknown; if ``basemap="tianditu"`` has no key; if
        ``color_by="status"`` but ``grids`` has no ``status`` column.

    Examples
    --------
    >>> from gridkit.datasets import make_sample
    >>> communities, _ = make_sample(seed=0)
    >>> grids = communities.assign(
    ...     grid_code=communities["community_id"] + "01", households=600, status="ok"
    ... )
    >>> m = explore(grids, communities=communities, lang="en")
    >>> "Households per grid" in m.get_root().render()
    True
    """
    _check_option("lang", lang, tuple(_TEXT))
    text = _TEXT[lang]
    _check_option("color_by", color_by, ("households", "status"))
    _check_option("tiles_crs", tiles_crs, ("wgs84", "gcj02"))
    if basemap is None:
        basemap = "none" if offline else "osm"
    if color_range is not None:
        color_range = _check_color_range(color_range)
    _check_option("basemap", basemap, _BASEMAPS)
    if basemap == "tianditu" and not tianditu_key and tiles_url is None and m is None:
        msg = (
            "basemap='tianditu' needs a Tianditu (天地图) API key: pass `tianditu_key=...` "
            "(on the command line: `--tianditu-key KEY`); a free browser key can be requested "
            "at console.tianditu.gov.cn, or choose another basemap (osm, amap, none)."
        )
        raise InputError(msg)
    _check_grids(grids, color_by)

    shift = tiles_crs == "gcj02" if tiles_url is not None else basemap == "amap"
    draw_grids = _to_map_crs(grids, "grids", shift=shift)

    new_map = m is None
    if m is None:
        m = folium.Map(
            location=_center(draw_grids),
            zoom_start=14,
            tiles=None,
            control_scale=True,
            height="100%" if height is None else height,
            maxZoom=_MAX_ZOOM,  # needed by the marker cluster when there are no tiles
        )
        _add_basemap(m, basemap, text, tianditu_key=tianditu_key, tiles_url=tiles_url)

    hh_layer, status_layer, colormap, status_counts = _add_grid_layers(
        m, draw_grids, color_by=color_by, lang=lang, color_range=color_range
    )

    draw_comm = None
    if communities is not None:
        draw_comm = _to_map_crs(communities, "communities", shift=shift)
        _add_outline_layers(m, draw_comm, lang=lang)

    _add_labels(m, draw_grids, text, min_zoom=label_min_zoom, communities=draw_comm)
    if households is not None:
        _add_points(m, _to_map_crs(households, "households", shift=shift), draw_grids, lang=lang)
    if workers is not None:
        _add_workers(m, _to_map_crs(workers, "workers", shift=shift), lang=lang)

    _Legend(
        hh_layer=hh_layer,
        status_layer=status_layer,
        html_by_layer=_legend_html(colormap, status_counts, lang=lang),
    ).add_to(m)
    _LabelZoom(plain_background=new_map and _no_tiles(m)).add_to(m)
    if new_map:
        _BasemapNote(
            no_tiles=_no_tiles(m), text=_NOTE_TEXT[lang], offline=bool(offline)
        ).add_to(m)

    _replace_layer_control(m)
    minx, miny, maxx, maxy = draw_grids.total_bounds
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    if offline:
        root = m.get_root()
        if not isinstance(root, Figure):  # folium.Map normally sits in a Figure already
            root = Figure()
            root.add_child(m)
        if not any(isinstance(c, _OfflineAssets) for c in root._children.values()):
            root.add_child(_OfflineAssets(), name="gridkit_offline_assets")

    logger.info(
        "explore: %d grids on basemap %s%s%s",
        len(draw_grids),
        "custom tiles" if tiles_url else basemap,
        " (GCJ-02 shifted)" if shift else "",
        " (offline)" if offline else "",
    )
    return m


def save_map(m: folium.Map, path: str | Path) -> Path:
    """Write a folium map to an HTML file, creating parent folders.

    Parameters
    ----------
    m
        The map, e.g. from :func:`explore`.
    path
        Output file, usually ``.../map.html``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Notes
    -----
    The same map gives the same bytes: folium's random element ids are replaced,
    in ``m`` itself, by numbers in drawing order before it is written.  The file is
    written to a temporary name and moved into place, so it is never half written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _stable_ids(m.get_root())
    # Written whole or not at all: a kill mid-write never leaves half a page.
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        m.save(str(tmp))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    logger.info("wrote map %s (%.0f kB)", path, path.stat().st_size / 1024)
    return path


def _stable_ids(root: Element) -> None:
    """Number the elements of a map in order, in place of branca's random ids.

    branca gives every element 16 random bytes as its id, and the JavaScript
    variable names are made from them, so the same map gave a different file on
    each run.  Numbered in tree order, the same map gives the same bytes (and a
    re-run's ``map.html`` can be compared with ``cmp``).  Children stored under
    their generated name are re-keyed; names given explicitly are kept.
    """
    count = 0

    def visit(element: Element) -> None:
        nonlocal count
        renamed = {}
        for key, child in element._children.items():
            old = child.get_name()
            count += 1
            child._id = f"{count:032x}"
            renamed[child.get_name() if key == old else key] = child
            visit(child)
        element._children.clear()
        element._children.update(renamed)

    root._id = f"{0:032x}"
    visit(root)


# --------------------------------------------------------------------------- checks


def _check_option(name: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        msg = f"unknown `{name}` {value!r}: expected one of {choices}."
        raise InputError(msg)
    return value


def _check_grids(grids: gpd.GeoDataFrame, color_by: str) -> None:
    if not isinstance(grids, gpd.GeoDataFrame):
        msg = f"`grids` must be a GeoDataFrame, got {type(grids).__name__}."
        raise InputError(msg)
    missing = [c for c in _REQUIRED if c not in grids.columns]
    if missing:
        msg = (
            f"`grids` lacks the column(s) {', '.join(missing)} "
            f"(it has {format_ids(grids.columns)}): pass the grids produced by "
            "`gridkit partition` / grids.geojson, or rename your columns."
        )
        raise InputError(msg)
    if color_by == "status" and "status" not in grids.columns:
        msg = "`color_by='status'` needs a `status` column in `grids`; use color_by='households'."
        raise InputError(msg)
    if len(grids) == 0 or grids.geometry.is_empty.all():
        msg = "`grids` has no geometry to draw: it is empty."
        raise InputError(msg)


def _to_map_crs(gdf: gpd.GeoDataFrame, name: str, *, shift: bool) -> gpd.GeoDataFrame:
    """Copy of ``gdf`` in EPSG:4326 (GCJ-02-shifted if ``shift``) without empty geometries."""
    if not isinstance(gdf, gpd.GeoDataFrame):
        msg = f"`{name}` must be a GeoDataFrame, got {type(gdf).__name__}."
        raise InputError(msg)
    if gdf.crs is None:
        msg = (
            f"`{name}` has no CRS, so it cannot be placed on the map: read it with gridkit.io "
            f"(which returns EPSG:4326) or call `{name}.set_crs(...)` first."
        )
        raise InputError(msg)
    out = to_wgs84(gdf)
    out = out[~(out.geometry.isna() | out.geometry.is_empty)]
    if shift:
        out = from_wgs84(out, "gcj02")
    return out.reset_index(drop=True)


def _center(gdf: gpd.GeoDataFrame) -> list[float]:
    minx, miny, maxx, maxy = gdf.total_bounds
    return [(miny + maxy) / 2, (minx + maxx) / 2]


# --------------------------------------------------------------------------- basemaps


def _add_basemap(
    m: folium.Map,
    basemap: str,
    text: dict[str, str],
    *,
    tianditu_key: str | None,
    tiles_url: str | None,
) -> None:
    if tiles_url is not None:
        folium.TileLayer(
            tiles=tiles_url, attr=text["custom_attr"], name=text["custom"], max_zoom=_MAX_ZOOM
        ).add_to(m)
    elif basemap == "osm":
        folium.TileLayer("OpenStreetMap", name=text["osm"], max_zoom=_MAX_ZOOM).add_to(m)
    elif basemap == "amap":
        folium.TileLayer(
            tiles=AMAP_TILES,
            attr="&copy; 高德地图",
            name=text["amap"],
            subdomains="1234",
            max_zoom=_MAX_ZOOM,
            max_native_zoom=18,
        ).add_to(m)
    elif basemap == "tianditu":
        for layer, name, overlay in (("vec", "tianditu", False), ("cva", "tianditu_labels", True)):
            folium.TileLayer(
                tiles=_TIANDITU_TILES.format(layer=layer, key=tianditu_key),
                attr="&copy; 天地图",
                name=text[name],
                subdomains="01234567",
                max_zoom=_MAX_ZOOM,
                max_native_zoom=18,
                overlay=overlay,
            ).add_to(m)


def _no_tiles(m: folium.Map) -> bool:
    return not any(isinstance(c, folium.TileLayer) for c in m._children.values())


# --------------------------------------------------------------------------- layers


def _display_frame(gdf: gpd.GeoDataFrame, lang: str) -> gpd.GeoDataFrame:
    """Copy of ``gdf`` whose properties are JSON-friendly, HTML-escaped display values."""
    # 6 decimals of a degree are ~0.1 m: plenty for display, and a third of the bytes
    geoms = shapely.transform(np.asarray(gdf.geometry.values), lambda xy: np.round(xy, 6))
    out = gpd.GeoDataFrame(geometry=geoms, crs=gdf.crs)
    for col in gdf.columns:
        if col == gdf.geometry.name or isinstance(gdf[col].dtype, gpd.array.GeometryDtype):
            continue
        s = gdf[col]
        if col == "status":
            s = s.map(lambda v: _status_label(v, lang))
        if pd.api.types.is_bool_dtype(s) and not s.isna().any():
            values = s.astype(str).to_numpy()
        elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            digits = 0 if str(col).endswith(("_m2", "_m")) else 3
            num = s.astype(float).round(digits)
            if pd.api.types.is_integer_dtype(s) or digits == 0:
                values = [None if pd.isna(v) else int(v) for v in num]
            else:
                values = [None if pd.isna(v) else float(v) for v in num]
        else:
            values = [html_text(v) for v in s]
        out[col] = pd.Series(values, index=out.index, dtype=object)
    return out


def html_text(value: Any) -> str:
    """HTML-escaped display text of a value ("" for missing values).

    The one door to the page: every text gridkit puts into a map (names, ids, codes,
    values, column names, labels, legends) passes here, because tooltips, popups,
    labels and the layer control insert their text as HTML.  ``<``, ``>``, ``&``,
    ``"`` and ``'`` become entities, so a value such as ``<img src=x onerror=...>``
    is shown as text and never runs.

    Parameters
    ----------
    value
        Any value; missing values (None, NaN, NA) give "".

    Returns
    -------
    str
        Text safe to insert into HTML (element content or a quoted attribute).

    Examples
    --------
    >>> html_text('<img src=x onerror="alert(1)">')
    '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
    >>> html_text(None)
    ''
    """
    return "" if _is_missing(value) else html.escape(str(value), quote=True)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _status_label(value: Any, lang: str) -> str:
    """Status in words; the Chinese label keeps the code: "户数不足（below_min）"."""
    if _is_missing(value):
        return ""
    value = str(value)
    label = _STATUS_TEXT[lang].get(value)
    if label is None:
        return value
    return f"{label}（{value}）" if lang == "zh" else label


def _aliases(columns: Sequence[str], lang: str) -> list[str]:
    """Column labels of tooltips and popups (inserted as HTML: escaped like any value)."""
    names = _COLUMN_TEXT[lang]
    return [html_text(names.get(c, c)) for c in columns]


def _geojson_data(gdf: gpd.GeoDataFrame) -> dict[str, Any]:
    return json.loads(gdf.to_json(na="null", drop_id=False))


def robust_range(values: Sequence[float] | np.ndarray, *, low: float = 2.0, high: float = 98.0):
    """``(vmin, vmax)`` of a colour scale that outliers do not stretch.

    The ``low`` and ``high`` percentiles of the finite values (nearest value), kept
    within Tukey's fences (1.5 interquartile ranges beyond the quartiles, so a single
    outlier among few grids is left out too), rounded to whole households and
    widened to at least 1 so the scale has a length.

    Parameters
    ----------
    values
        Households per grid (NaN and infinities are ignored).
    low, high
        Percentiles of the ends of the scale.

    Returns
    -------
    tuple of float
        ``(vmin, vmax)``; ``(0, 1)`` when there is no finite value.

    Examples
    --------
    >>> robust_range([500, 520, 610, 640, 700, 720, 9000])
    (500.0, 928.0)
    >>> robust_range(list(range(400, 800)) + [12000])
    (408.0, 792.0)
    """
    arr = np.asarray(values, dtype=float)
    finite = arr[np.isfinite(arr)]
    if not len(finite):
        return 0.0, 1.0
    q1, q3 = np.percentile(finite, [25, 75])
    fence = 1.5 * (q3 - q1)
    vmin = float(np.round(max(np.percentile(finite, low, method="nearest"), q1 - fence)))
    vmax = float(np.round(min(np.percentile(finite, high, method="nearest"), q3 + fence)))
    if vmax <= vmin:
        vmax = vmin + 1.0
    return vmin, vmax


def _check_color_range(color_range: Any) -> tuple[float, float]:
    try:
        vmin, vmax = (float(v) for v in color_range)
    except (TypeError, ValueError):
        msg = f"`color_range` must be two numbers (low, high), got {color_range!r}."
        raise InputError(msg) from None
    if not (np.isfinite(vmin) and np.isfinite(vmax) and vmax > vmin):
        msg = f"`color_range` must be finite with high > low, got {color_range!r}."
        raise InputError(msg)
    return vmin, vmax


def _household_colormap(
    values: pd.Series, lang: str, color_range: tuple[float, float] | None = None
) -> branca.colormap.LinearColormap:
    vmin, vmax = robust_range(values.to_numpy()) if color_range is None else color_range
    return branca.colormap.LinearColormap(
        _HOUSEHOLD_COLORS, vmin=vmin, vmax=vmax, caption=_TEXT[lang]["legend_households"]
    )


def _clipped_hex(colormap: branca.colormap.LinearColormap, value: float) -> str:
    """Colour of ``value``, values beyond the scale taking the colour of its end."""
    return colormap.rgb_hex_str(min(max(value, colormap.vmin), colormap.vmax))


def _add_grid_layers(
    m: folium.Map,
    grids: gpd.GeoDataFrame,
    *,
    color_by: str,
    lang: str,
    color_range: tuple[float, float] | None = None,
) -> tuple[folium.GeoJson, folium.GeoJson | None, branca.colormap.LinearColormap, dict[str, int]]:
    """Add the grid layers filled by households and by status.

    Returns the two layers (the second is ``None`` without a ``status`` column), the
    household colour map and the number of grids per status.
    """
    text = _TEXT[lang]
    props = _display_frame(grids, lang)
    hh = pd.to_numeric(grids["households"], errors="coerce").astype(float).to_numpy()
    colormap = _household_colormap(pd.Series(hh), lang, color_range)
    fills = {"hh": [_clipped_hex(colormap, v) if np.isfinite(v) else _UNKNOWN_COLOR for v in hh]}
    counts: dict[str, int] = {}
    if "status" in grids.columns:
        status = grids["status"].astype(str)
        fills["status"] = [STATUS_COLORS.get(s, _UNKNOWN_COLOR) for s in status]
        counts = {str(k): int(v) for k, v in status.value_counts().items()}

    others = [c for c in props.columns if c != "geometry"]
    first = [c for c in (*_GRID_COLUMNS, *WORKER_COLUMNS) if c in others]
    columns = first + [c for c in others if c not in first]
    tip_cols = [
        c
        for c in ("grid_code", "grid_name", "community_name", "households", "status")
        if c in columns
    ] + [c for c in _TOOLTIP_WORKERS if c in columns]
    data = props.to_json(na="null", drop_id=False)  # feature ids "0", "1", ... = row numbers

    def layer(kind: str, name: str, show: bool) -> folium.GeoJson:
        fill = fills[kind]
        return folium.GeoJson(
            json.loads(data),
            name=name,
            show=show,
            style_function=lambda f: {
                "fillColor": fill[int(f["id"])],
                "fillOpacity": 0.6,
                "color": "#303030",
                "weight": 1.2,
                "opacity": 0.9,
            },
            highlight_function=lambda f: {"weight": 3, "color": "#000000", "fillOpacity": 0.75},
            tooltip=folium.GeoJsonTooltip(
                fields=tip_cols, aliases=_aliases(tip_cols, lang), localize=True, sticky=True
            ),
            popup=folium.GeoJsonPopup(
                fields=columns, aliases=_aliases(columns, lang), localize=True, max_width=420
            ),
            className=f"gk-grid gk-grid-{kind}",
        ).add_to(m)

    hh_layer = layer("hh", text["grids_households"], color_by == "households")
    status_layer = None
    if "status" in fills:
        status_layer = layer("status", text["grids_status"], color_by == "status")
    return hh_layer, status_layer, colormap, counts


def _add_outline_layers(m: folium.Map, communities: gpd.GeoDataFrame, *, lang: str) -> None:
    text = _TEXT[lang]
    cols = [c for c in ("community_id", "community_name", "street") if c in communities.columns]
    props = _display_frame(communities[[*cols, communities.geometry.name]], lang)
    folium.GeoJson(
        _geojson_data(props),
        name=text["communities"],
        style_function=lambda f: {
            "fill": False,
            "color": "#1a1a1a",
            "weight": 2.5,
            "opacity": 0.9,
            "dashArray": "8 5",
        },
        interactive=False,
        className="gk-community",
    ).add_to(m)
    if "street" in communities.columns and communities["street"].notna().any():
        streets = communities[communities["street"].notna()].dissolve(by="street").reset_index()
        folium.GeoJson(
            _geojson_data(_display_frame(streets[["street", "geometry"]], lang)),
            name=text["streets"],
            style_function=lambda f: {
                "fill": False,
                "color": "#4a1486",
                "weight": 4.5,
                "opacity": 0.75,
            },
            interactive=False,
            className="gk-street",
        ).add_to(m)


def _label_text(row: pd.Series) -> str:
    """Map label of a grid: its name without the community name ("第1网格"), else its code.

    The community is clear from the outlines around it, and short labels can be shown
    from a lower zoom level; tooltips keep the full name.
    """
    name = row.get("grid_name")
    if _is_missing(name) or str(name) == "":
        return str(row["grid_code"])
    name, community = str(name), row.get("community_name")
    if not _is_missing(community) and str(community) and name.startswith(str(community)):
        return name[len(str(community)) :].strip(" -_·") or name
    return name


def _add_labels(
    m: folium.Map,
    grids: gpd.GeoDataFrame,
    text: dict[str, str],
    *,
    min_zoom: int | None,
    communities: gpd.GeoDataFrame | None = None,
) -> folium.FeatureGroup:
    """Grid and community names, each shown from its own zoom level, overlaps thinned.

    A grid label is its short name ("第1网格") over its community's name in smaller
    type; a community label (at the community's representative point) is shown at
    the zoom levels below those of its grids' labels, so the map is named at every
    scale.  ``data-rank`` orders the labels for thinning (larger areas first): the
    page hides a label that would overlap one of lower rank.
    """
    group = folium.FeatureGroup(name=text["labels"], show=True)
    labels = [_label_text(row) for _, row in grids.iterrows()]
    subs = [
        "" if "community_name" not in grids.columns or _is_missing(v) else str(v)
        for v in (grids["community_name"] if "community_name" in grids.columns else labels)
    ]
    zooms = _label_zooms(grids, labels) if min_zoom is None else [int(min_zoom)] * len(labels)
    points = grids.geometry.representative_point()
    metric_area = grids.to_crs(local_metric_crs(grids)).geometry.area.to_numpy()
    entries: list[tuple[float, str, Any]] = []  # (area, html with {rank}, point)
    for label, sub, zoom, pt, area in zip(labels, subs, zooms, points, metric_area, strict=True):
        sub_html = (
            f'<span class="gk-label-sub">{html_text(sub)}</span>'
            if sub and sub != label
            else ""
        )
        entries.append(
            (
                float(area),
                f'<div class="gk-grid-label" data-minzoom="{zoom}" data-maxzoom="99" '
                f'data-rank="{{rank}}">{html_text(label)}{sub_html}</div>',
                pt,
            )
        )
    community_entries = _community_label_entries(grids, zooms, communities)
    ranked = sorted(
        range(len(community_entries) + len(entries)),
        key=lambda i: (
            0 if i < len(community_entries) else 1,
            -(community_entries + entries)[i][0],
        ),
    )
    rank_of = {i: r for r, i in enumerate(ranked)}
    for i, (_, markup, pt) in enumerate(community_entries + entries):
        folium.Marker(
            [pt.y, pt.x],
            icon=folium.DivIcon(
                html=markup.replace("{rank}", str(rank_of[i])),
                icon_size=(0, 0),
                icon_anchor=(0, 0),
                class_name="gk-grid-label-icon",
            ),
            interactive=False,
        ).add_to(group)
    group.add_to(m)
    return group


def _community_label_entries(
    grids: gpd.GeoDataFrame, grid_zooms: Sequence[int], communities: gpd.GeoDataFrame | None
) -> list[tuple[float, str, Any]]:
    """Community name labels ``(area, html with {rank}, point)``, shown below grid zooms."""
    if "community_id" not in grids.columns:
        return []
    ids = grids["community_id"].map(lambda v: "" if _is_missing(v) else str(v))
    first_zoom: dict[str, int] = {}
    for cid, zoom in zip(ids, grid_zooms, strict=True):
        first_zoom[cid] = min(first_zoom.get(cid, 99), int(zoom))
    if communities is not None and "community_id" in communities.columns:
        polys = communities.assign(
            community_id=communities["community_id"].map(
                lambda v: "" if _is_missing(v) else str(v)
            )
        )
        polys = polys[polys["community_id"].isin(set(ids))]
    else:
        cols = ["community_id"] + (["community_name"] if "community_name" in grids else [])
        polys = grids[[*cols, grids.geometry.name]].assign(community_id=ids)
        polys = polys.dissolve(by="community_id", as_index=False, aggfunc="first")
    if not len(polys):
        return []
    if "community_name" in polys.columns:
        names = list(polys["community_name"])
    elif "community_name" in grids.columns:
        by_id = grids["community_name"].groupby(ids).first()
        names = [by_id.get(cid) for cid in polys["community_id"]]
    else:
        names = list(polys["community_id"])
    names = [
        str(cid) if _is_missing(n) or not str(n) else str(n)
        for n, cid in zip(names, polys["community_id"], strict=True)
    ]
    area = polys.to_crs(local_metric_crs(polys)).geometry.area.to_numpy()
    out = []
    for cid, name, pt, a in zip(
        polys["community_id"], names, polys.geometry.representative_point(), area, strict=True
    ):
        # from the city view (thinned: larger communities first) until its grids are named
        top = max(first_zoom.get(str(cid), 99) - 1, _MIN_COMMUNITY_LABEL_ZOOM)
        low = _MIN_COMMUNITY_LABEL_ZOOM
        out.append(
            (
                float(a),
                f'<div class="gk-grid-label gk-community-label" data-minzoom="{low}" '
                f'data-maxzoom="{top}" data-rank="{{rank}}">{html_text(name)}</div>',
                pt,
            )
        )
    return out


def _label_px(label: str) -> float:
    """Rough width in pixels of ``label`` in the 12 px bold label font."""
    return sum(12.5 if ord(ch) > 0x2E80 else 7.5 for ch in label)


def _label_zooms(
    grids: gpd.GeoDataFrame, labels: Sequence[str], *, floor: int = _MIN_LABEL_ZOOM
) -> list[int]:
    """Per grid, the lowest zoom at which the grid (square root of its area) fits its label."""
    metric = grids.to_crs(local_metric_crs(grids))
    size_m = np.sqrt(np.maximum(metric.geometry.area.to_numpy(), 1.0))
    need_px = np.maximum(40.0, np.array([_label_px(lb) for lb in labels]))
    lat = float(np.mean(grids.total_bounds[[1, 3]]))
    # metres per pixel at zoom z: 156543.034 * cos(lat) / 2**z
    z = np.log2(need_px * 156543.034 * math.cos(math.radians(lat)) / size_m)
    return [int(v) for v in np.clip(np.ceil(z), floor, 18)]


def _grid_colors(grids: gpd.GeoDataFrame) -> dict[str, str]:
    codes = sorted(grids["grid_code"].dropna().astype(str).unique())
    return {code: _POINT_PALETTE[i % len(_POINT_PALETTE)] for i, code in enumerate(codes)}


def _add_points(
    m: folium.Map, points: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *, lang: str
) -> None:
    text = _TEXT[lang]
    if len(points) == 0:
        return
    geom = points.geometry
    if not (geom.geom_type == "Point").all():
        geom = geom.representative_point()
    colors = _grid_colors(grids)
    if "grid_code" in points.columns:
        codes = points["grid_code"].map(lambda v: "" if _is_missing(v) else str(v))
        fill = [colors.get(c, _UNKNOWN_COLOR) for c in codes]
    else:
        fill = [_UNKNOWN_COLOR] * len(points)

    if len(points) > CLUSTER_THRESHOLD:
        rows = [
            [round(y, 7), round(x, 7), c]
            for x, y, c in zip(geom.x.to_numpy(), geom.y.to_numpy(), fill, strict=True)
        ]
        callback = (
            "function (row) {"
            " return L.circleMarker(new L.LatLng(row[0], row[1]), {radius: 4, color: row[2],"
            " weight: 1, fillColor: row[2], fillOpacity: 0.85});"
            "}"
        )
        folium.plugins.FastMarkerCluster(
            rows,
            callback=callback,
            name=text["points"],
            disableClusteringAtZoom=18,
            chunkedLoading=True,
        ).add_to(m)
        return

    cols = [
        c
        for c in ("building_id", "household_id", "compound", "households", "grid_code")
        if c in points.columns
    ]
    frame = gpd.GeoDataFrame(points[cols].copy(), geometry=geom.values, crs=points.crs)
    props = _display_frame(frame, lang)
    if "grid_code" in cols:
        props["grid_code"] = [c if c else text["unassigned"] for c in props["grid_code"]]
    if "households" in points.columns:
        hh = pd.to_numeric(points["households"], errors="coerce").fillna(1).clip(lower=1)
        radius = np.clip(2.5 + np.sqrt(hh.to_numpy(dtype=float)) / 3.0, 3.0, 10.0)
    else:
        radius = np.full(len(points), 4.0)
    styles = [
        {
            "radius": round(float(r), 1),
            "color": "#ffffff",
            "weight": 0.8,
            "fill": True,
            "fillColor": c,
            "fillOpacity": 0.9,
        }
        for r, c in zip(radius, fill, strict=True)
    ]
    folium.GeoJson(
        _geojson_data(props.reset_index(drop=True)),
        name=text["points"],
        marker=folium.CircleMarker(radius=4, class_name="gk-point"),
        style_function=lambda f: styles[int(f["id"])],
        tooltip=folium.GeoJsonTooltip(fields=cols, aliases=_aliases(cols, lang), localize=True)
        if cols
        else None,
        className="gk-point",
    ).add_to(m)


def _add_workers(m: folium.Map, workers: gpd.GeoDataFrame, *, lang: str) -> None:
    text = _TEXT[lang]
    if len(workers) == 0:
        return
    geom = workers.geometry
    if not (geom.geom_type == "Point").all():
        geom = geom.representative_point()
    roles = (
        workers["role"].map(lambda v: "" if _is_missing(v) else str(v))
        if "role" in workers.columns
        else pd.Series([""] * len(workers))
    )
    palette = {r: _ROLE_PALETTE[i % len(_ROLE_PALETTE)] for i, r in enumerate(sorted(set(roles)))}
    names = _COLUMN_TEXT[lang]
    group = folium.FeatureGroup(name=text["workers"])
    for (_, row), pt, role in zip(workers.iterrows(), geom, roles, strict=True):
        lines = []
        if "name" in row.index and not _is_missing(row["name"]):
            lines.append(f"<b>{html_text(text['name'])}</b>: {html_text(row['name'])}")
        if role:  # role keys of gridkit.roster in words ("police" -> "民警")
            lines.append(
                f"<b>{html_text(text['role'])}</b>: {html_text(names.get(role, role))}"
            )
        if "grid_code" in row.index and not _is_missing(row["grid_code"]):
            lines.append(
                f"<b>{html_text(names['grid_code'])}</b>: {html_text(row['grid_code'])}"
            )
        folium.CircleMarker(
            [pt.y, pt.x],
            radius=7,
            color="#111111",
            weight=2,
            fill=True,
            fill_color=palette[role],
            fill_opacity=0.95,
            tooltip="<br>".join(lines) or None,
            class_name="gk-worker",
        ).add_to(group)
    group.add_to(m)


#: Outline colours of the regenerate map's changes layer, by ``change``.
CHANGE_COLORS = {"reshaped": "#d7191c", "added": "#7b3294", "removed": "#404040"}
_CHANGES_NAME = {"zh": "changes 变更", "en": "changes 变更"}
_CHANGE_FIELDS = ("grid_code", "change", "old_households", "households")


def add_changes_layer(m: folium.Map, diff: gpd.GeoDataFrame, *, lang: Lang = "zh") -> folium.Map:
    """Outline the grids a regeneration changed (``diff.geojson``) on a map from :func:`explore`.

    Reshaped grids are outlined in red, added ones in purple, removed ones dashed
    grey; the tooltip shows the code, the change and the households before and after
    (escaped like every text of the map, :func:`html_text`).  The layer control is
    rebuilt last, so the new layer is listed and drawn.

    Parameters
    ----------
    m
        A map made by :func:`explore`.
    diff
        The diff layer of :class:`gridkit.regenerate.RegenPlan` (``change`` column);
        unchanged grids are left out.
    lang
        Language of the layer name and tooltip labels.

    Returns
    -------
    folium.Map
        ``m``.
    """
    _check_option("lang", lang, tuple(_TEXT))
    group = folium.FeatureGroup(name=_CHANGES_NAME[lang], show=True)
    shown = diff[diff["change"].astype(str) != "unchanged"]
    if len(shown):
        fields = [c for c in _CHANGE_FIELDS if c in shown.columns]
        frame = _to_map_crs(shown[[*fields, shown.geometry.name]], "diff", shift=False)
        change = [str(v) for v in frame["change"]]
        props = _display_frame(frame.reset_index(drop=True), lang)
        folium.GeoJson(
            _geojson_data(props),
            style_function=lambda f: {
                "color": CHANGE_COLORS.get(change[int(f["id"])], "#d7191c"),
                "weight": 4,
                "fill": False,
                "dashArray": "6 4" if change[int(f["id"])] == "removed" else None,
            },
            tooltip=folium.GeoJsonTooltip(fields=fields, aliases=_aliases(fields, lang)),
            className="gk-change",
        ).add_to(group)
    group.add_to(m)
    _replace_layer_control(m)
    return m


def _replace_layer_control(m: folium.Map) -> None:
    """Drop any LayerControl of ``m`` and add one last (it must follow every layer)."""
    for key, child in list(m._children.items()):
        if isinstance(child, folium.LayerControl):
            del m._children[key]
    folium.LayerControl(collapsed=False).add_to(m)


# --------------------------------------------------------------------------- legend, labels


def _legend_html(
    colormap: branca.colormap.LinearColormap, status_counts: dict[str, int], *, lang: str
) -> dict[str, str]:
    text = _TEXT[lang]
    stops = ", ".join(colormap.rgb_hex_str(v) for v in np.linspace(colormap.vmin, colormap.vmax, 9))
    ticks = np.linspace(colormap.vmin, colormap.vmax, 3)
    marks = ("≤", "", "≥")
    tick_html = "".join(
        f"<span>{mark}{round(t):,}</span>" for mark, t in zip(marks, ticks, strict=True)
    )
    hh = (
        f'<div class="gk-legend-title">{html_text(colormap.caption)}</div>'
        f'<div class="gk-legend-bar" style="background: linear-gradient(to right, {stops});">'
        f'</div><div class="gk-legend-ticks">{tick_html}</div>'
    )
    labels = _STATUS_TEXT[lang]
    rows = []
    for status in [*STATUS_COLORS, *sorted(set(status_counts) - set(STATUS_COLORS))]:
        if status not in status_counts and status not in ("ok", "below_min", "above_max"):
            continue
        color = STATUS_COLORS.get(status, _UNKNOWN_COLOR)
        label = html_text(labels.get(status, status))
        rows.append(
            f'<div class="gk-legend-row"><i style="background:{color}"></i>{label}'
            f' <span class="gk-legend-count">{status_counts.get(status, 0)}</span></div>'
        )
    status_html = (
        f'<div class="gk-legend-title">{html_text(text["legend_status"])}</div>' + "".join(rows)
    )
    return {"households": hh, "status": status_html if status_counts else ""}


_LEGEND_CSS = """
.gk-legend { background: rgba(255,255,255,0.92); padding: 6px 9px; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,0.35); font: 12px/1.4 "Helvetica Neue", Arial,
  "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; color: #222; }
.gk-legend-section + .gk-legend-section { margin-top: 6px; }
.gk-legend-title { font-weight: bold; margin-bottom: 3px; }
.gk-legend-bar { width: 180px; height: 12px; border: 1px solid #888; }
.gk-legend-ticks { display: flex; justify-content: space-between; width: 182px; }
.gk-legend-row i { display: inline-block; width: 14px; height: 12px; margin-right: 6px;
  vertical-align: -2px; border: 1px solid #555; opacity: 0.8; }
.gk-legend-count { color: #666; }
"""


class _Legend(MacroElement):
    """Bottom-right legend; each section is visible while its grid layer is on the map."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <style>{{ this.css }}</style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }};
            var sections = [
            {%- for key, layer in this.sections %}
                [{{ this.html_by_layer[key]|tojson }}, {{ layer.get_name() }}],
            {%- endfor %}
            ];
            var control = L.control({position: "bottomright"});
            control.onAdd = function () {
                var div = L.DomUtil.create("div", "gk-legend");
                sections.forEach(function (s) {
                    var el = L.DomUtil.create("div", "gk-legend-section", div);
                    el.innerHTML = s[0];
                    s.push(el);
                });
                L.DomEvent.disableClickPropagation(div);
                return div;
            };
            control.addTo(map);
            function sync() {
                sections.forEach(function (s) {
                    s[2].style.display = map.hasLayer(s[1]) ? "" : "none";
                });
            }
            map.on("overlayadd overlayremove", sync);
            sync();
        })();
        {% endmacro %}
        """
    )

    def __init__(
        self,
        *,
        hh_layer: folium.GeoJson,
        status_layer: folium.GeoJson | None,
        html_by_layer: dict[str, str],
    ) -> None:
        super().__init__()
        self._name = "GridkitLegend"
        self.css = _LEGEND_CSS
        self.html_by_layer = html_by_layer
        self.sections = [("households", hh_layer)]
        if status_layer is not None and html_by_layer.get("status"):
            self.sections.append(("status", status_layer))


class _LabelZoom(MacroElement):
    """Style labels; show each between its ``data-minzoom`` and ``data-maxzoom``, thinned.

    After every zoom the visible labels are placed in ``data-rank`` order and a label
    whose box overlaps one already placed is hidden, so a city of 300 grids shows a
    readable selection that grows as the map is zoomed in.
    """

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <style>
        .gk-grid-label-icon { background: none; border: none; }
        .gk-grid-label { position: absolute; transform: translate(-50%, -50%);
          white-space: nowrap; pointer-events: none; text-align: center;
          font: bold 12px/1.2 "Helvetica Neue", Arial, "Noto Sans CJK SC",
          "Microsoft YaHei", "PingFang SC", sans-serif;
          color: #1a1a1a; text-shadow: -1px -1px 0 #fff, 1px -1px 0 #fff, -1px 1px 0 #fff,
          1px 1px 0 #fff, 0 0 3px #fff; }
        .gk-label-sub { display: block; font-weight: normal; font-size: 10px; color: #444; }
        .gk-community-label { font-size: 13px; color: #2b1a4a; }
        {%- if this.plain_background %}
        .leaflet-container { background: #f3f1ec; }
        {%- endif %}
        </style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }};
            function overlaps(a, b) {
                return a.left < b.right && b.left < a.right &&
                    a.top < b.bottom && b.top < a.bottom;
            }
            function update() {
                var zoom = map.getZoom();
                var nodes = map.getContainer().querySelectorAll(".gk-grid-label");
                var shown = [];
                for (var i = 0; i < nodes.length; i++) {
                    var el = nodes[i];
                    var lo = Number(el.getAttribute("data-minzoom"));
                    var hi = Number(el.getAttribute("data-maxzoom") || 99);
                    var on = zoom >= lo && zoom <= hi;
                    el.style.display = on ? "" : "none";
                    if (on) { shown.push(el); }
                }
                shown.sort(function (a, b) {
                    return Number(a.getAttribute("data-rank")) -
                        Number(b.getAttribute("data-rank"));
                });
                var placed = [];
                for (var j = 0; j < shown.length; j++) {
                    var box = shown[j].getBoundingClientRect();
                    var clash = false;
                    for (var k = 0; k < placed.length && !clash; k++) {
                        clash = overlaps(box, placed[k]);
                    }
                    if (clash) { shown[j].style.display = "none"; } else { placed.push(box); }
                }
            }
            map.on("zoomend overlayadd", update);
            // once more after the frame in which Leaflet has placed the markers
            map.on("zoomend overlayadd", function () { window.setTimeout(update, 50); });
            update();
        })();
        {% endmacro %}
        """
    )

    def __init__(self, *, plain_background: bool) -> None:
        super().__init__()
        self._name = "GridkitLabelZoom"
        self.plain_background = plain_background


_NOTE_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "none": "离线地图：未加载底图瓦片（网格、边界和名称完整）",
        "unreachable": "底图瓦片无法访问（无网络？）：网格、边界和名称照常显示",
    },
    "en": {
        "none": "Offline map: no basemap tiles (grids, outlines and names are complete)",
        "unreachable": "Basemap tiles cannot be reached (no network?): grids, outlines "
        "and names are shown as usual",
    },
}


class _BasemapNote(MacroElement):
    """A note in the bottom-left corner when the page shows no basemap tiles.

    Without a tile layer the note is there from the start; with one, it appears when
    tiles fail to load and none has loaded (a closed network), and goes away as soon
    as one loads.  The texts come from gridkit (:func:`html_text`), never from data.
    """

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <style>
        .gk-basemap-note { background: rgba(255,255,255,0.9); padding: 3px 7px;
          border-radius: 3px; font: 11px/1.3 "Helvetica Neue", Arial, "Noto Sans CJK SC",
          "Microsoft YaHei", sans-serif; color: #555; max-width: 320px; }
        </style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }};
            var note = L.control({position: "bottomleft"});
            note.onAdd = function () {
                var div = L.DomUtil.create("div", "gk-basemap-note");
                div.setAttribute("data-offline", "{{ 'yes' if this.offline else 'no' }}");
                return div;
            };
            note.addTo(map);
            var div = note.getContainer();
            function say(html) {
                div.innerHTML = html;
                div.style.display = html ? "" : "none";
            }
            {%- if this.no_tiles %}
            say({{ this.text_none|tojson }});
            {%- else %}
            say("");
            var loaded = 0;
            map.eachLayer(function (layer) {
                if (!(layer instanceof L.TileLayer)) { return; }
                layer.on("tileload", function () { loaded += 1; say(""); });
                layer.on("tileerror", function () {
                    if (!loaded) { say({{ this.text_unreachable|tojson }}); }
                });
            });
            {%- endif %}
        })();
        {% endmacro %}
        """
    )

    def __init__(self, *, no_tiles: bool, text: dict[str, str], offline: bool) -> None:
        super().__init__()
        self._name = "GridkitBasemapNote"
        self.no_tiles = no_tiles
        self.offline = offline
        self.text_none = html_text(text["none"])
        self.text_unreachable = html_text(text["unreachable"])


# --------------------------------------------------------------------------- offline


# (pattern on the URL, kind, file under STATIC_DIR); first match wins
_MC = "leaflet.markercluster/"
_ASSETS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"leaflet\.markercluster(-src)?\.js$"), "js", _MC + "leaflet.markercluster.js"),
    (re.compile(r"MarkerCluster\.Default\.css$"), "css", _MC + "MarkerCluster.Default.css"),
    (re.compile(r"MarkerCluster\.css$"), "css", _MC + "MarkerCluster.css"),
    (re.compile(r"/leaflet(-src)?\.js$"), "js", "leaflet/leaflet.js"),
    (re.compile(r"/leaflet\.css$"), "css", "leaflet/leaflet.css"),
    (re.compile(r"/jquery[-.\d]*(\.min)?\.js$"), "js", "jquery/jquery.min.js"),
    (re.compile(r"/leaflet[^/]*/(?:dist/)?images/([\w-]+\.png)$"), "png", ""),
)
# folium defaults that gridkit's layers do not need; left out of offline maps
_DROPPED = re.compile(
    r"bootstrap|glyphicons|fontawesome|font-awesome|awesome-markers|awesome\.rotate", re.I
)
_LEAFLET_ICON_FIX = (
    "L.Icon.Default.imagePath = '';"
    "L.Icon.Default.prototype.options.iconUrl = '{icon}';"
    "L.Icon.Default.prototype.options.iconRetinaUrl = '{icon2x}';"
    "L.Icon.Default.prototype.options.shadowUrl = '{shadow}';"
)


def _local_asset(url: str) -> Path | None:
    """The vendored file that stands in for the CDN ``url``, or ``None``."""
    path = url.split("?", 1)[0].split("#", 1)[0]
    for pattern, kind, rel in _ASSETS:
        match = pattern.search(path)
        if match is None:
            continue
        if kind == "png":
            name = match.group(1)
            candidate = STATIC_DIR / "leaflet" / "images" / name
            return candidate if candidate.is_file() else None
        return STATIC_DIR / rel
    return None


def _is_dropped_asset(url: str) -> bool:
    """Whether ``url`` is a folium default that offline maps leave out."""
    return bool(_DROPPED.search(url))


@cache
def _data_uri(name: str) -> str:
    data = (STATIC_DIR / "leaflet" / "images" / name).read_bytes()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


@cache
def _inline_text(path: Path) -> str:
    """Contents of a vendored file, ready to sit inside ``<script>`` / ``<style>``."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"\n?//# sourceMappingURL=\S+\s*$", "\n", text)
    if path.suffix == ".css":
        text = re.sub(
            r"url\((['\"]?)images/([\w-]+\.png)\1\)",
            lambda mt: f"url({_data_uri(mt.group(2))})",
            text,
        )
        return text.replace("</style", "<\\/style")
    text = text.replace("</script", "<\\/script")
    if path.name == "leaflet.js":
        text += "\n" + _LEAFLET_ICON_FIX.format(
            icon=_data_uri("marker-icon.png"),
            icon2x=_data_uri("marker-icon-2x.png"),
            shadow=_data_uri("marker-shadow.png"),
        )
    return text


class _InlineAsset(Element):
    """A vendored script or stylesheet written inline into the page header."""

    def __init__(self, path: Path, url: str) -> None:
        super().__init__()
        self._name = "GridkitInlineAsset"
        self.path = path
        self.url = url

    def render(self, **kwargs: Any) -> str:
        tag = "style" if self.path.suffix == ".css" else "script"
        return (
            f"<{tag}>/* {self.path.relative_to(STATIC_DIR)} */\n{_inline_text(self.path)}</{tag}>"
        )


class _OfflineAssets(Element):
    """Swap the CDN links of the page header for inline copies of the vendored files.

    Added to the :class:`branca.element.Figure` after the map, so it renders after
    every layer has put its links in the header (layers added to the map after
    :func:`explore` are covered too).
    """

    def __init__(self) -> None:
        super().__init__()
        self._name = "GridkitOfflineAssets"

    def render(self, **kwargs: Any) -> str:
        header = self.get_root().header
        unknown = []
        for key, child in list(header._children.items()):
            if not isinstance(child, (JavascriptLink, CssLink)):
                continue
            asset = _local_asset(child.url)
            if asset is not None:
                inline = _InlineAsset(asset, child.url)
                inline._parent = header
                header._children[key] = inline
            elif _is_dropped_asset(child.url):
                del header._children[key]
            elif re.match(r"(https?:)?//", child.url):
                unknown.append(child.url)
        if unknown:
            warnings.warn(
                f"the offline map still loads {format_ids(unknown)} from the network: "
                "gridkit has no local copy of it; remove the layer that needs it or host "
                "the file yourself.",
                GridkitWarning,
                stacklevel=2,
            )
        return ""


# --------------------------------------------------------------------------- overview_png

_CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Heiti SC",
    "Noto Serif CJK SC",
    "AR PL UMing CN",
    "AR PL UKai CN",
    "Droid Sans Fallback",
)


@cache
def _cjk_font() -> str | None:
    """Family name of an installed font with Simplified Chinese glyphs, or ``None``.

    Looks in matplotlib's font list first, then asks fontconfig (``fc-list :lang=zh``)
    and registers what it finds (matplotlib's font cache misses fonts installed
    after it was built).  Simplified Chinese faces (``… SC``, ``… CN``, Microsoft
    YaHei, SimHei, WenQuanYi) are preferred, and a family is taken only when the face
    matplotlib would draw with is that family: a ``.ttc`` collection such as
    ``NotoSansCJK-Regular.ttc`` holds the Japanese, Korean and Traditional faces too,
    and an older matplotlib that reads only its first face would draw Japanese
    glyph shapes (e.g. 边, 户) under the Simplified name.
    """
    from matplotlib import font_manager

    def drawn_as(family: str) -> str | None:
        try:
            found = font_manager.findfont(
                font_manager.FontProperties(family=family), fallback_to_default=False
            )
            return font_manager.get_font(found).family_name
        except (ValueError, RuntimeError, OSError):
            return None

    def known() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        for family in _CJK_FAMILIES:
            if family in names and drawn_as(family) == family:
                return family
        return None

    family = known()
    if family is not None:
        return family
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    try:
        out = subprocess.run(
            [fc_list, ":lang=zh-cn", "file"], capture_output=True, text=True, timeout=20,
            check=False,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    files = sorted(
        {line.split(":", 1)[0].strip() for line in out.splitlines() if line.strip()},
        key=lambda f: ("Regular" not in f, "Sans" not in f and "Hei" not in f, f),
    )
    fallback = None
    for file in files:
        try:
            font_manager.fontManager.addfont(file)  # every face of a .ttc collection
            name = font_manager.FontProperties(fname=file).get_name()
        except (OSError, RuntimeError, ValueError):
            continue
        if fallback is None and not name.endswith((" JP", " KR", " TC", " HK")):
            fallback = name
    return known() or fallback


def _mpl_path(geom: Any) -> MplPath | None:
    """A matplotlib compound path of a (Multi)Polygon, holes included."""
    from matplotlib.path import Path as MplPath

    if geom is None or geom.is_empty:
        return None
    polys = list(geom.geoms) if geom.geom_type in ("MultiPolygon", "GeometryCollection") else [geom]
    verts, codes = [], []
    for poly in polys:
        if poly.geom_type != "Polygon":
            continue
        for ring in (poly.exterior, *poly.interiors):
            xy = np.asarray(ring.coords)[:, :2]
            c = np.full(len(xy), MplPath.LINETO, dtype=MplPath.code_type)
            c[0], c[-1] = MplPath.MOVETO, MplPath.CLOSEPOLY
            verts.append(xy)
            codes.append(c)
    if not verts:
        return None
    return MplPath(np.concatenate(verts), np.concatenate(codes))


def overview_png(
    grids: gpd.GeoDataFrame,
    path: str | Path,
    *,
    communities: gpd.GeoDataFrame | None = None,
    title: str | None = None,
    lang: Lang = "zh",
    dpi: int = 150,
    color_by: ColorBy = "households",
    color_range: tuple[float, float] | None = None,
) -> Path:
    """Write a static overview image of the grids, for printed reports.

    Grids are filled by household count (a colour bar whose ends are the 2nd and 98th
    percentiles, :func:`robust_range`, so outliers do not wash out the rest) or by
    status (``color_by="status"``).  Community names are written large; each grid is
    labelled with its code (its 3-digit sequence number when the full code does not
    fit) and household count; a label that would overlap a label already drawn is left
    out (community names first, then larger grids), so a city of 300 grids stays
    legible.  Grids out of the bounds (``below_min``, ``above_max``, oversize) get an
    outline in the status colour;
    community outlines are drawn dashed.  Drawn in the local UTM zone, so distances
    are true, with a scale bar.

    Parameters
    ----------
    grids
        Grid polygons in any CRS with ``grid_code`` and ``households`` (and
        optionally ``status``).  Never modified.
    path
        Output PNG file; parent folders are created.
    communities
        Community polygons for the dashed outlines.
    title
        Title above the map (default "网格划分总览（N 个网格）" / "Grid overview (N grids)").
    lang
        {"zh", "en"}
        Language of the title, colour bar and legend.  Chinese text needs a CJK font
        (e.g. Debian ``fonts-noto-cjk``, Windows' Microsoft YaHei); without one the
        image falls back to English and a warning is logged.
    dpi
        Resolution of the PNG.
    color_by
        {"households", "status"}
        Fill by household count or by status (as :func:`explore`; CLI ``--color-by``).
    color_range
        ``(low, high)`` of the household colour scale (default :func:`robust_range`).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    InputError
        As :func:`explore` for bad ``grids`` or ``lang``.
    """
    try:
        from matplotlib import colormaps
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.cm import ScalarMappable
        from matplotlib.collections import PatchCollection
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch, PathPatch
        from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar
    except ImportError as err:  # pragma: no cover - matplotlib is a test dependency
        msg = "overview_png needs matplotlib: pip install matplotlib"
        raise ImportError(msg) from err

    _check_option("lang", lang, tuple(_TEXT))
    _check_option("color_by", color_by, ("households", "status"))
    _check_grids(grids, color_by)
    family: list[str] = ["DejaVu Sans"]
    if lang == "zh":
        cjk = _cjk_font()
        if cjk is None:
            logger.warning(
                "overview_png: no font with Chinese glyphs found (fc-list :lang=zh is empty); "
                "drawing English labels instead. Install one, e.g. `apt-get install "
                "fonts-noto-cjk` on Debian/Ubuntu."
            )
            lang = "en"
        else:
            family = [cjk, "DejaVu Sans"]
    else:  # English text, but names in the data may be Chinese: a CJK font after DejaVu
        cjk = _cjk_font()
        if cjk is not None:
            family = ["DejaVu Sans", cjk]
    text = _TEXT[lang]

    crs = local_metric_crs(grids)
    g = grids.to_crs(crs)
    g = g[~(g.geometry.isna() | g.geometry.is_empty)].reset_index(drop=True)
    hh = pd.to_numeric(g["households"], errors="coerce").astype(float).to_numpy()
    vmin, vmax = robust_range(hh) if color_range is None else _check_color_range(color_range)
    norm = Normalize(vmin=vmin, vmax=vmax, clip=True)
    cmap = colormaps["YlGnBu"]

    minx, miny, maxx, maxy = g.total_bounds
    aspect = (maxy - miny) / max(maxx - minx, 1.0)
    width = float(np.clip(10.0 + (len(g) - 40) / 20.0, 10.0, 24.0))  # room for many labels
    height = float(np.clip(width * aspect * 0.85 + 1.2, 5.0, 1.4 * width))
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_aspect("equal")
    ax.set_axis_off()

    status = g["status"].astype(str).to_numpy() if "status" in g.columns else None
    paths = [_mpl_path(geom) for geom in g.geometry]
    keep = [i for i, p in enumerate(paths) if p is not None]
    if color_by == "status":
        faces = [STATUS_COLORS.get(str(status[i]), _UNKNOWN_COLOR) for i in keep]
    else:
        faces = [cmap(norm(hh[i])) if np.isfinite(hh[i]) else _UNKNOWN_COLOR for i in keep]
    ax.add_collection(
        PatchCollection(
            [PathPatch(paths[i]) for i in keep],
            facecolors=faces,
            edgecolors="#303030",
            linewidths=0.6,
            zorder=1,
        )
    )
    if communities is not None:
        c = communities.to_crs(crs)
        outlines = [PathPatch(p) for p in map(_mpl_path, c.geometry) if p is not None]
        ax.add_collection(
            PatchCollection(
                outlines,
                facecolor="none",
                edgecolor="#111111",
                linewidth=1.4,
                linestyle=(0, (5, 3)),
                zorder=2,
            )
        )
    if status is not None and color_by == "households":
        # grids with a problem: an outline in the status colour, drawn just inside the grid
        inset = max(maxx - minx, maxy - miny) / 400
        # (only grids out of the bounds: a part of a split compound is in them)
        bad = [i for i in keep if status[i] not in _IN_BOUNDS]
        rings = [_mpl_path(g.geometry.iloc[i].buffer(-inset)) or paths[i] for i in bad]
        ax.add_collection(
            PatchCollection(
                [PathPatch(p) for p in rings],
                facecolor="none",
                edgecolors=[STATUS_COLORS.get(status[i], _UNKNOWN_COLOR) for i in bad],
                linewidth=2.2,
                zorder=2.5,
            )
        )
    ax.set_xlim(minx, maxx)
    ax.set_ylim(miny, maxy)

    bar = None
    if color_by == "households":
        bar = fig.colorbar(
            ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.7, pad=0.02, extend="both"
        )
    # label size: fit each grid's width (points per metre of the axes once it is laid out)
    box = ax.get_position()
    fig_w, fig_h = fig.get_size_inches()
    pt_per_m = min(
        box.width * fig_w * 72 / max(maxx - minx, 1.0),
        box.height * fig_h * 72 / max(maxy - miny, 1.0),
    )
    widths = (g.geometry.bounds["maxx"] - g.geometry.bounds["minx"]).to_numpy()
    codes = g["grid_code"].astype(str).to_numpy()
    ems = np.array([sum(1.0 if ord(ch) > 0x2E80 else 0.62 for ch in c) for c in codes])
    fits = 0.8 * widths * pt_per_m / np.maximum(ems, 1.0)
    # one size for all labels (a quarter of them may overflow their grid a little)
    size = float(np.clip(np.percentile(fits[keep], 25), 5.0, 9.0)) if keep else 6.0
    short = bool(keep) and float(np.percentile(fits[keep], 25)) < 5.0
    points = g.geometry.representative_point()
    texts = []  # (priority, artist): community names first, then larger grids
    if communities is not None and "community_name" in communities.columns:
        c = communities.to_crs(crs)
        c = c[~(c.geometry.isna() | c.geometry.is_empty)]
        for area, name, pt in zip(
            c.geometry.area, c["community_name"], c.geometry.representative_point(), strict=True
        ):
            if _is_missing(name) or not (minx <= pt.x <= maxx and miny <= pt.y <= maxy):
                continue
            artist = ax.annotate(
                str(name), (pt.x, pt.y), ha="center", va="center", fontsize=size + 2.5,
                fontweight="bold", fontfamily=family, color="#2b1a4a", zorder=4,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7},
            )  # fmt: skip
            texts.append((-1e18 - float(area), artist))
    areas = g.geometry.area.to_numpy()
    for i in keep:
        code = codes[i][-3:] if short and len(codes[i]) > 3 else codes[i]
        label = code if not np.isfinite(hh[i]) else f"{code}\n{int(hh[i]):,}"
        artist = ax.annotate(
            label,
            (points.iloc[i].x, points.iloc[i].y),
            ha="center",
            va="center",
            fontsize=size,
            linespacing=1.1,
            fontfamily=family,
            color="#111111",
            zorder=3,
            bbox={"boxstyle": "round,pad=0.12", "fc": "white", "ec": "none", "alpha": 0.55},
        )
        texts.append((-float(areas[i]), artist))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
        _thin_labels(fig, [artist for _, artist in sorted(texts, key=lambda t: t[0])])

    with warnings.catch_warnings():
        # a user title in Chinese without a CJK font: boxes instead of a crash
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
        if bar is not None:
            bar.set_label(text["legend_households"], fontfamily=family)
        if title is None:
            title = text["title"].format(n=len(g))
        ax.set_title(title, fontfamily=family, fontsize=13)
        if status is not None and color_by == "status":
            labels = _STATUS_TEXT[lang]
            present = [s for s in STATUS_COLORS if (status == s).any()]
            present += sorted(set(status) - set(STATUS_COLORS))
            ax.legend(
                handles=[
                    Patch(
                        facecolor=STATUS_COLORS.get(s, _UNKNOWN_COLOR),
                        edgecolor="#303030",
                        label=f"{labels.get(s, s)} ({int((status == s).sum())})",
                    )
                    for s in present
                ],
                loc="lower left",
                prop={"family": family, "size": 8},
                title=text["legend_status"],
                title_fontproperties={"family": family},
            )
        elif status is not None and (~np.isin(status, _IN_BOUNDS)).any():
            labels = _STATUS_TEXT[lang]
            present = [s for s in STATUS_COLORS if s not in _IN_BOUNDS and (status == s).any()]
            handles = [
                Patch(
                    facecolor="none",
                    edgecolor=STATUS_COLORS[s],
                    linewidth=1.8,
                    label=f"{labels[s]} ({int((status == s).sum())})",
                )
                for s in present
            ]
            if handles:
                ax.legend(
                    handles=handles,
                    loc="lower left",
                    prop={"family": family, "size": 8},
                    title=text["legend_status"],
                    title_fontproperties={"family": family},
                )
        span = maxx - minx
        bar_m = _nice_length(span / 5)
        ax.add_artist(
            AnchoredSizeBar(
                ax.transData,
                bar_m,
                f"{bar_m / 1000:g} km" if bar_m >= 1000 else f"{bar_m:g} m",
                "lower right",
                pad=0.5,
                frameon=False,
                size_vertical=span / 300,
            )
        )
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
        try:  # whole or not at all, as save_map
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    logger.info("wrote overview %s (%d grids)", path, len(g))
    return path


def _thin_labels(fig: Any, artists: Sequence[Any]) -> int:
    """Hide every label that overlaps one drawn before it; returns how many were hidden.

    ``artists`` are in priority order.  The figure is drawn once to measure the text.
    """
    if not artists:
        return 0
    renderer = fig.canvas.get_renderer()
    placed: list[Any] = []
    hidden = 0
    for artist in artists:
        box = artist.get_window_extent(renderer=renderer)
        if any(box.overlaps(other) for other in placed):
            artist.set_visible(False)
            hidden += 1
        else:
            placed.append(box)
    return hidden


def _nice_length(x: float) -> float:
    """Largest 1, 2 or 5 x 10^k not above ``x`` (for scale bars)."""
    if x <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(x))
    return max(s * exp for s in (1, 2, 5) if s * exp <= x)


_HIST_TEXT = {
    "zh": {
        "title": "网格户数分布（{n} 个网格）",
        "x": "每个网格的户数",
        "y": "网格数",
        "bounds": "户数标准 {lo}–{hi}",
    },
    "en": {
        "title": "Households per grid ({n} grids)",
        "x": "households in the grid",
        "y": "grids",
        "bounds": "bounds {lo}–{hi}",
    },
}


def size_histogram_png(
    grids: gpd.GeoDataFrame | pd.DataFrame,
    path: str | Path,
    *,
    min_households: int = 400,
    max_households: int = 800,
    lang: Lang = "zh",
    dpi: int = 150,
) -> Path:
    """Write a histogram of households per grid, the bounds shaded, for printed reports.

    Bars inside the bounds are green, outside them orange (below) or red (above); the
    bins are 50 households wide (wider for very spread sizes).

    Parameters
    ----------
    grids
        A table with a ``households`` column (the grid layer, or ``report.json``'s
        ``grids`` list as a DataFrame).
    path
        Output PNG; parent folders are created.
    min_households, max_households
        The bounds to mark.
    lang
        {"zh", "en"}: language of the title and axes (English without a CJK font).
    dpi
        Resolution.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        If ``grids`` has no ``households`` column or no grid.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    _check_option("lang", lang, tuple(_TEXT))
    if "households" not in grids.columns or len(grids) == 0:
        msg = "`grids` needs a `households` column and at least one grid for a histogram."
        raise InputError(msg)
    family: list[str] = ["DejaVu Sans"]
    if lang == "zh":
        cjk = _cjk_font()
        if cjk is None:
            lang = "en"
        else:
            family = [cjk, "DejaVu Sans"]
    text = _HIST_TEXT[lang]
    hh = pd.to_numeric(grids["households"], errors="coerce").dropna().to_numpy(dtype=float)
    lo, hi = float(min_households), float(max_households)
    top = max(float(hh.max()) if len(hh) else hi, hi)
    width = 50.0 if top <= 3000 else float(_nice_length(top / 60))
    edges = np.arange(0.0, top + width, width)
    counts, edges = np.histogram(hh, bins=edges)
    centres = (edges[:-1] + edges[1:]) / 2
    colors = [
        STATUS_COLORS["ok"] if lo <= c <= hi
        else STATUS_COLORS["below_min"] if c < lo
        else STATUS_COLORS["above_max"]
        for c in centres
    ]  # fmt: skip
    fig = Figure(figsize=(8, 4.5), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.axvspan(lo, hi, color="#e5f5e0", zorder=0)
    ax.bar(edges[:-1], counts, width=width, align="edge", color=colors, edgecolor="white",
           zorder=2)  # fmt: skip
    for x in (lo, hi):
        ax.axvline(x, color="#2ca25f", linestyle="--", linewidth=1.2, zorder=3)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
        ax.set_title(text["title"].format(n=len(hh)), fontfamily=family)
        ax.set_xlabel(text["x"], fontfamily=family)
        ax.set_ylabel(text["y"], fontfamily=family)
        ax.set_ylim(0, max(int(counts.max()) if len(counts) else 1, 1) * 1.15)
        ax.text(
            (lo + hi) / 2, ax.get_ylim()[1] * 0.98, text["bounds"].format(lo=int(lo), hi=int(hi)),
            ha="center", va="top", fontfamily=family, color="#1b7a43", fontsize=9, zorder=4,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
        )  # fmt: skip
        ax.spines[["top", "right"]].set_visible(False)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
        try:  # whole or not at all, as save_map
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return path
