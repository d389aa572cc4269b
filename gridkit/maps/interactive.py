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

import contextlib
import logging
import os
from pathlib import Path
from typing import Literal

import folium
import geopandas as gpd
from branca.element import Element, Figure

from gridkit.crs import from_wgs84, to_wgs84
from gridkit.errors import InputError
from gridkit.maps._branca import children, set_id
from gridkit.maps._controls import (
    NOTE_TEXT,
    BasemapNote,
    LabelZoom,
    Legend,
    add_basemap,
    legend_html,
    no_tiles,
    replace_layer_control,
)
from gridkit.maps._layers import (
    add_grid_layers,
    add_labels,
    add_outline_layers,
    add_points,
    add_workers,
    display_frame,
    geojson_data,
)
from gridkit.maps.offline import OfflineAssets
from gridkit.maps.style import (
    MAX_ZOOM,
    TEXT,
    Basemap,
    ColorBy,
    Lang,
    aliases,
    check_color_range,
    check_grids,
    check_option,
)

__all__ = ["add_changes_layer", "explore", "save_map"]

logger = logging.getLogger("gridkit.maps")  # the stage's logger: stable for users who configure it


_BASEMAPS = ("osm", "amap", "tianditu", "none")


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
    check_option("lang", lang, tuple(TEXT))
    text = TEXT[lang]
    check_option("color_by", color_by, ("households", "status"))
    check_option("tiles_crs", tiles_crs, ("wgs84", "gcj02"))
    if basemap is None:
        basemap = "none" if offline else "osm"
    if color_range is not None:
        color_range = check_color_range(color_range)
    check_option("basemap", basemap, _BASEMAPS)
    if basemap == "tianditu" and not tianditu_key and tiles_url is None and m is None:
        msg = (
            "basemap='tianditu' needs a Tianditu (天地图) API key: pass `tianditu_key=...` "
            "(on the command line: `--tianditu-key KEY`); a free browser key can be requested "
            "at console.tianditu.gov.cn, or choose another basemap (osm, amap, none)."
        )
        raise InputError(msg)
    check_grids(grids, color_by)

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
            maxZoom=MAX_ZOOM,  # needed by the marker cluster when there are no tiles
        )
        add_basemap(m, basemap, text, tianditu_key=tianditu_key, tiles_url=tiles_url)

    hh_layer, status_layer, colormap, status_counts = add_grid_layers(
        m, draw_grids, color_by=color_by, lang=lang, color_range=color_range
    )

    draw_comm = None
    if communities is not None:
        draw_comm = _to_map_crs(communities, "communities", shift=shift)
        add_outline_layers(m, draw_comm, lang=lang)

    add_labels(m, draw_grids, text, min_zoom=label_min_zoom, communities=draw_comm)
    if households is not None:
        add_points(m, _to_map_crs(households, "households", shift=shift), draw_grids, lang=lang)
    if workers is not None:
        add_workers(m, _to_map_crs(workers, "workers", shift=shift), lang=lang)

    Legend(
        hh_layer=hh_layer,
        status_layer=status_layer,
        html_by_layer=legend_html(colormap, status_counts, lang=lang),
    ).add_to(m)
    LabelZoom(plain_background=new_map and no_tiles(m)).add_to(m)
    if new_map:
        BasemapNote(no_tiles=no_tiles(m), text=NOTE_TEXT[lang], offline=bool(offline)).add_to(m)

    replace_layer_control(m)
    minx, miny, maxx, maxy = draw_grids.total_bounds
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    if offline:
        root = m.get_root()
        if not isinstance(root, Figure):  # folium.Map normally sits in a Figure already
            root = Figure()
            root.add_child(m)
        if not any(isinstance(c, OfflineAssets) for c in children(root).values()):
            root.add_child(OfflineAssets(), name="gridkit_offline_assets")

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
        kids = children(element)
        for key, child in kids.items():
            old = child.get_name()
            count += 1
            set_id(child, count)
            renamed[child.get_name() if key == old else key] = child
            visit(child)
        kids.clear()
        kids.update(renamed)

    set_id(root, 0)
    visit(root)


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


# --------------------------------------------------------------------------- changes (regenerate)


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
    check_option("lang", lang, tuple(TEXT))
    group = folium.FeatureGroup(name=_CHANGES_NAME[lang], show=True)
    shown = diff[diff["change"].astype(str) != "unchanged"]
    if len(shown):
        fields = [c for c in _CHANGE_FIELDS if c in shown.columns]
        frame = _to_map_crs(shown[[*fields, shown.geometry.name]], "diff", shift=False)
        change = [str(v) for v in frame["change"]]
        props = display_frame(frame.reset_index(drop=True), lang)
        folium.GeoJson(
            geojson_data(props),
            style_function=lambda f: {
                "color": CHANGE_COLORS.get(change[int(f["id"])], "#d7191c"),
                "weight": 4,
                "fill": False,
                "dashArray": "6 4" if change[int(f["id"])] == "removed" else None,
            },
            tooltip=folium.GeoJsonTooltip(fields=fields, aliases=aliases(fields, lang)),
            className="gk-change",
        ).add_to(group)
    group.add_to(m)
    replace_layer_control(m)
    return m
