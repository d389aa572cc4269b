"""The folium layers of a map: grids with their tooltips and popups, outlines, labels, points.

Plumbing of :func:`gridkit.maps.explore`: the grid layers filled by households and by
status, community and street outlines, grid and community names shown by zoom level,
building / household points and workers' homes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import branca.colormap
import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.contracts import STAFFING_COLUMNS
from gridkit.crs import local_metric_crs
from gridkit.maps.style import (
    CLUSTER_THRESHOLD,
    COLUMN_TEXT,
    DEDICATED_COLOR,
    STATUS_COLORS,
    TEXT,
    UNKNOWN_COLOR,
    aliases,
    dedicated_mask,
    grid_type_label,
    html_text,
    is_missing,
    robust_range,
    status_label,
)

__all__ = [
    "add_grid_layers",
    "add_labels",
    "add_outline_layers",
    "add_points",
    "add_workers",
    "display_frame",
    "geojson_data",
]


_MIN_LABEL_ZOOM = 12
_MIN_COMMUNITY_LABEL_ZOOM = 10
_HOUSEHOLD_COLORS = branca.colormap.linear.YlGnBu_09.colors

# distinct colours for points by grid (Tableau 10 without its grey)
_POINT_PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#17becf",
)  # fmt: skip

_ROLE_PALETTE = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")

# The grid contract (docs/design.md), in the order popups list it.
_GRID_COLUMNS = (
    "grid_code", "grid_name", "grid_type", "community_name", "community_id", "street",
    "street_code", "district_name", "district_code", "households", "buildings", "compounds",
    "area_m2", "compactness", "status",
)  # fmt: skip

#: The staffing columns (:data:`gridkit.contracts.STAFFING_COLUMNS`) shown in tooltips too.
_TOOLTIP_WORKERS = ("grid_leader", "grid_worker", "police", "missing_roles")


def display_frame(gdf: gpd.GeoDataFrame, lang: str) -> gpd.GeoDataFrame:
    """Copy of ``gdf`` whose properties are JSON-friendly, HTML-escaped display values."""
    # 6 decimals of a degree are ~0.1 m: plenty for display, and a third of the bytes
    geoms = shapely.transform(np.asarray(gdf.geometry.values), lambda xy: np.round(xy, 6))
    out = gpd.GeoDataFrame(geometry=geoms, crs=gdf.crs)
    for col in gdf.columns:
        if col == gdf.geometry.name or isinstance(gdf[col].dtype, gpd.array.GeometryDtype):
            continue
        s = gdf[col]
        if col == "status":
            s = s.map(lambda v: status_label(v, lang))
        elif col == "grid_type":
            s = s.map(lambda v: grid_type_label(v, lang))
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


def geojson_data(gdf: gpd.GeoDataFrame) -> dict[str, Any]:
    return json.loads(gdf.to_json(na="null", drop_id=False))


def _household_colormap(
    values: pd.Series, lang: str, color_range: tuple[float, float] | None = None
) -> branca.colormap.LinearColormap:
    vmin, vmax = robust_range(values.to_numpy()) if color_range is None else color_range
    return branca.colormap.LinearColormap(
        _HOUSEHOLD_COLORS, vmin=vmin, vmax=vmax, caption=TEXT[lang]["legend_households"]
    )


def _clipped_hex(colormap: branca.colormap.LinearColormap, value: float) -> str:
    """Colour of ``value``, values beyond the scale taking the colour of its end."""
    return colormap.rgb_hex_str(min(max(value, colormap.vmin), colormap.vmax))


def add_grid_layers(
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
    text = TEXT[lang]
    props = display_frame(grids, lang)
    hh = pd.to_numeric(grids["households"], errors="coerce").astype(float).to_numpy()
    # dedicated grids have no household bounds: their own colour, a dashed outline, and
    # no say in the household colour scale
    dedicated = dedicated_mask(grids)
    scale = hh[~dedicated] if (~dedicated).any() else hh
    colormap = _household_colormap(pd.Series(scale), lang, color_range)
    fills = {"hh": [
        DEDICATED_COLOR if d else _clipped_hex(colormap, v) if np.isfinite(v) else UNKNOWN_COLOR
        for v, d in zip(hh, dedicated, strict=True)
    ]}  # fmt: skip
    dashes = ["6 4" if d else None for d in dedicated]
    counts: dict[str, int] = {}
    if "status" in grids.columns:
        status = grids["status"].astype(str)
        fills["status"] = [STATUS_COLORS.get(s, UNKNOWN_COLOR) for s in status]
        counts = {str(k): int(v) for k, v in status.value_counts().items()}

    others = [c for c in props.columns if c != "geometry"]
    first = [c for c in (*_GRID_COLUMNS, *STAFFING_COLUMNS) if c in others]
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
                **({"dashArray": dashes[int(f["id"])]} if dashes[int(f["id"])] else {}),
            },
            highlight_function=lambda f: {"weight": 3, "color": "#000000", "fillOpacity": 0.75},
            tooltip=folium.GeoJsonTooltip(
                fields=tip_cols, aliases=aliases(tip_cols, lang), localize=True, sticky=True
            ),
            popup=folium.GeoJsonPopup(
                fields=columns, aliases=aliases(columns, lang), localize=True, max_width=420
            ),
            className=f"gk-grid gk-grid-{kind}",
        ).add_to(m)

    hh_layer = layer("hh", text["grids_households"], color_by == "households")
    status_layer = None
    if "status" in fills:
        status_layer = layer("status", text["grids_status"], color_by == "status")
    return hh_layer, status_layer, colormap, counts


def add_outline_layers(m: folium.Map, communities: gpd.GeoDataFrame, *, lang: str) -> None:
    text = TEXT[lang]
    cols = [c for c in ("community_id", "community_name", "street") if c in communities.columns]
    props = display_frame(communities[[*cols, communities.geometry.name]], lang)
    folium.GeoJson(
        geojson_data(props),
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
            geojson_data(display_frame(streets[["street", "geometry"]], lang)),
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


# --------------------------------------------------------------------------- labels


def _label_text(row: pd.Series) -> str:
    """Map label of a grid: its name without the community name ("第1网格"), else its code.

    The community is clear from the outlines around it, and short labels can be shown
    from a lower zoom level; tooltips keep the full name.
    """
    name = row.get("grid_name")
    if is_missing(name) or str(name) == "":
        return str(row["grid_code"])
    name, community = str(name), row.get("community_name")
    if not is_missing(community) and str(community) and name.startswith(str(community)):
        return name[len(str(community)) :].strip(" -_·") or name
    return name


def add_labels(
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
        "" if "community_name" not in grids.columns or is_missing(v) else str(v)
        for v in (grids["community_name"] if "community_name" in grids.columns else labels)
    ]
    zooms = _label_zooms(grids, labels) if min_zoom is None else [int(min_zoom)] * len(labels)
    points = grids.geometry.representative_point()
    metric_area = grids.to_crs(local_metric_crs(grids)).geometry.area.to_numpy()
    entries: list[tuple[float, str, Any]] = []  # (area, html with {rank}, point)
    for label, sub, zoom, pt, area in zip(labels, subs, zooms, points, metric_area, strict=True):
        sub_html = (
            f'<span class="gk-label-sub">{html_text(sub)}</span>' if sub and sub != label else ""
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
    ids = grids["community_id"].map(lambda v: "" if is_missing(v) else str(v))
    first_zoom: dict[str, int] = {}
    for cid, zoom in zip(ids, grid_zooms, strict=True):
        first_zoom[cid] = min(first_zoom.get(cid, 99), int(zoom))
    if communities is not None and "community_id" in communities.columns:
        polys = communities.assign(
            community_id=communities["community_id"].map(lambda v: "" if is_missing(v) else str(v))
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
        str(cid) if is_missing(n) or not str(n) else str(n)
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


# --------------------------------------------------------------------------- points


def _grid_colors(grids: gpd.GeoDataFrame) -> dict[str, str]:
    codes = sorted(grids["grid_code"].dropna().astype(str).unique())
    return {code: _POINT_PALETTE[i % len(_POINT_PALETTE)] for i, code in enumerate(codes)}


def add_points(
    m: folium.Map, points: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *, lang: str
) -> None:
    text = TEXT[lang]
    if len(points) == 0:
        return
    geom = points.geometry
    if not (geom.geom_type == "Point").all():
        geom = geom.representative_point()
    colors = _grid_colors(grids)
    if "grid_code" in points.columns:
        codes = points["grid_code"].map(lambda v: "" if is_missing(v) else str(v))
        fill = [colors.get(c, UNKNOWN_COLOR) for c in codes]
    else:
        fill = [UNKNOWN_COLOR] * len(points)

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
    props = display_frame(frame, lang)
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
        geojson_data(props.reset_index(drop=True)),
        name=text["points"],
        marker=folium.CircleMarker(radius=4, class_name="gk-point"),
        style_function=lambda f: styles[int(f["id"])],
        tooltip=folium.GeoJsonTooltip(fields=cols, aliases=aliases(cols, lang), localize=True)
        if cols
        else None,
        className="gk-point",
    ).add_to(m)


def add_workers(m: folium.Map, workers: gpd.GeoDataFrame, *, lang: str) -> None:
    text = TEXT[lang]
    if len(workers) == 0:
        return
    geom = workers.geometry
    if not (geom.geom_type == "Point").all():
        geom = geom.representative_point()
    roles = (
        workers["role"].map(lambda v: "" if is_missing(v) else str(v))
        if "role" in workers.columns
        else pd.Series([""] * len(workers))
    )
    palette = {r: _ROLE_PALETTE[i % len(_ROLE_PALETTE)] for i, r in enumerate(sorted(set(roles)))}
    names = COLUMN_TEXT[lang]
    group = folium.FeatureGroup(name=text["workers"])
    for (_, row), pt, role in zip(workers.iterrows(), geom, roles, strict=True):
        lines = []
        if "name" in row.index and not is_missing(row["name"]):
            lines.append(f"<b>{html_text(text['name'])}</b>: {html_text(row['name'])}")
        if role:  # role keys of gridkit.staffing in words ("police" -> "民警")
            lines.append(f"<b>{html_text(text['role'])}</b>: {html_text(names.get(role, role))}")
        if "grid_code" in row.index and not is_missing(row["grid_code"]):
            lines.append(f"<b>{html_text(names['grid_code'])}</b>: {html_text(row['grid_code'])}")
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
