"""The page around the layers: basemap tiles, the legend, label zooms, notes, layer control.

Plumbing of :func:`gridkit.maps.explore`: the tile layers of each basemap, and the
:class:`branca.element.MacroElement` s that put gridkit's legend, its label thinning
script and its basemap note on the page; the layer control is rebuilt last.
"""

from __future__ import annotations

import branca.colormap
import folium
import numpy as np
from branca.element import MacroElement
from jinja2 import Template

from gridkit.maps._branca import children
from gridkit.maps.style import (
    DEDICATED_COLOR,
    MAX_ZOOM,
    STATUS_COLORS,
    STATUS_TEXT,
    TEXT,
    UNKNOWN_COLOR,
    html_text,
)

__all__ = [
    "AMAP_TILES",
    "NOTE_TEXT",
    "BasemapNote",
    "LabelZoom",
    "Legend",
    "add_basemap",
    "legend_html",
    "no_tiles",
    "replace_layer_control",
]


AMAP_TILES = (
    "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
    "&x={x}&y={y}&z={z}"
)

_TIANDITU_TILES = (
    "https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)


# --------------------------------------------------------------------------- basemaps


def add_basemap(
    m: folium.Map,
    basemap: str,
    text: dict[str, str],
    *,
    tianditu_key: str | None,
    tiles_url: str | None,
) -> None:
    if tiles_url is not None:
        folium.TileLayer(
            tiles=tiles_url, attr=text["custom_attr"], name=text["custom"], max_zoom=MAX_ZOOM
        ).add_to(m)
    elif basemap == "osm":
        folium.TileLayer("OpenStreetMap", name=text["osm"], max_zoom=MAX_ZOOM).add_to(m)
    elif basemap == "amap":
        folium.TileLayer(
            tiles=AMAP_TILES,
            attr="&copy; 高德地图",
            name=text["amap"],
            subdomains="1234",
            max_zoom=MAX_ZOOM,
            max_native_zoom=18,
        ).add_to(m)
    elif basemap == "tianditu":
        for layer, name, overlay in (("vec", "tianditu", False), ("cva", "tianditu_labels", True)):
            folium.TileLayer(
                tiles=_TIANDITU_TILES.format(layer=layer, key=tianditu_key),
                attr="&copy; 天地图",
                name=text[name],
                subdomains="01234567",
                max_zoom=MAX_ZOOM,
                max_native_zoom=18,
                overlay=overlay,
            ).add_to(m)


def no_tiles(m: folium.Map) -> bool:
    return not any(isinstance(c, folium.TileLayer) for c in children(m).values())


def replace_layer_control(m: folium.Map) -> None:
    """Drop any LayerControl of ``m`` and add one last (it must follow every layer)."""
    layers = children(m)
    for key, child in list(layers.items()):
        if isinstance(child, folium.LayerControl):
            del layers[key]
    folium.LayerControl(collapsed=False).add_to(m)


# --------------------------------------------------------------------------- legend, labels


def legend_html(
    colormap: branca.colormap.LinearColormap, status_counts: dict[str, int], *, lang: str
) -> dict[str, str]:
    text = TEXT[lang]
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
    if status_counts.get("dedicated"):  # dedicated grids: their own colour, no bounds
        hh += (
            f'<div class="gk-legend-row"><i style="background:{DEDICATED_COLOR}"></i>'
            f'{html_text(text["dedicated"])} <span class="gk-legend-count">'
            f'{status_counts["dedicated"]}</span></div>'
        )
    labels = STATUS_TEXT[lang]
    rows = []
    for status in [*STATUS_COLORS, *sorted(set(status_counts) - set(STATUS_COLORS))]:
        if status not in status_counts and status not in ("ok", "below_min", "above_max"):
            continue
        color = STATUS_COLORS.get(status, UNKNOWN_COLOR)
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


class Legend(MacroElement):
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


class LabelZoom(MacroElement):
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


NOTE_TEXT: dict[str, dict[str, str]] = {
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


class BasemapNote(MacroElement):
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
