"""Fast tests of gridkit.maps on the rendered HTML (no browser; see test_browser.py)."""

from __future__ import annotations

import json
import logging
import re

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from gridmaps import sample_as_grids

from gridkit.crs import wgs84_to_gcj02
from gridkit.datasets.synthetic import make_households
from gridkit.errors import GridkitWarning, InputError
from gridkit.maps import interactive as maps
from gridkit.maps import offline, overview, style

STATUSES = ("ok", "below_min", "above_max", "oversize_building")


@pytest.fixture(scope="module")
def sample() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Sample communities drawn as if each were one grid; buildings tagged with their grid."""
    grids, communities, buildings = sample_as_grids()
    return grids, communities, buildings


@pytest.fixture(scope="module")
def grids(sample) -> gpd.GeoDataFrame:
    return sample[0]


def _html(m: folium.Map) -> str:
    return m.get_root().render()


def _has(html: str, text: str) -> bool:
    """Whether ``text`` is on the page, as is or JSON-escaped (folium's ``tojson``)."""
    escaped = json.dumps(text)[1:-1]
    safe = escaped.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text in html or escaped in html or safe.replace("'", "\\u0027") in html


def _aliases(html: str) -> list[list[str]]:
    """The label lists of every GeoJSON tooltip and popup, in order."""
    return [json.loads(a) for a in re.findall(r"let aliases = (\[.*?\]);", html)]


def _geojson_layers(html: str) -> list[dict]:
    """The GeoJSON data of every folium GeoJson layer on the page, in order."""
    return [json.loads(d) for d in re.findall(r"_add\((\{.*\})\);\s*$", html, flags=re.M)]


def _grid_layers(html: str) -> list[dict]:
    return [
        layer
        for layer in _geojson_layers(html)
        if layer["features"] and "grid_code" in layer["features"][0]["properties"]
        and "status" in layer["features"][0]["properties"]
    ]  # fmt: skip


def _external_links(html: str) -> list[str]:
    srcs = re.findall(r"<script[^>]*\bsrc=[\"']([^\"']+)", html, flags=re.I)
    hrefs = re.findall(r"<link[^>]*\bhref=[\"']([^\"']+)", html, flags=re.I)
    return [u for u in srcs + hrefs if re.match(r"(https?:)?//", u)]


# --------------------------------------------------------------------------- content


def test_one_feature_per_grid_in_each_grid_layer(grids):
    html = _html(maps.explore(grids))
    layers = _grid_layers(html)
    assert len(layers) == 2  # filled by households and by status
    for layer in layers:
        assert len(layer["features"]) == len(grids)
        codes = sorted(f["properties"]["grid_code"] for f in layer["features"])
        assert codes == sorted(grids["grid_code"])


def test_tooltip_popup_and_legend_in_chinese_by_default(grids):
    html = _html(maps.explore(grids))
    tooltip, popup = _aliases(html)[:2]
    assert tooltip == ["网格编码", "网格名称", "社区", "户数", "状态", "专职网格员"]
    assert popup[:3] == ["网格编码", "网格名称", "社区"] and "面积（平方米）" in popup
    assert "bindTooltip" in html and "bindPopup" in html
    assert _has(html, "网格户数（户）") and _has(html, "网格状态")
    assert _has(html, "户数不足（below_min）")  # status in words, code kept
    assert _has(html, "网格（按户数着色）") and _has(html, "网格名称")


def test_english_labels(grids):
    html = _html(maps.explore(grids, lang="en"))
    tooltip = _aliases(html)[0]
    assert tooltip == ["Grid code", "Grid name", "Community", "Households", "Status", "Grid worker"]
    assert _has(html, "Households per grid") and _has(html, "Grid status")
    assert _has(html, "Grids by households")
    assert not _has(html, "网格户数")


def test_layer_control_and_bounds(sample):
    grids, communities, buildings = sample
    m = maps.explore(grids, communities=communities, households=buildings)
    html = _html(m)
    assert html.count("L.control.layers(") == 1
    for name in ("社区边界", "街道边界", "楼栋 / 住户"):
        assert _has(html, name)
    bounds = [c for c in m._children.values() if isinstance(c, folium.map.FitBounds)]
    assert len(bounds) == 1
    (south, west), (north, east) = bounds[0].bounds
    minx, miny, maxx, maxy = grids.total_bounds
    assert (west, south, east, north) == pytest.approx((minx, miny, maxx, maxy), abs=1e-9)
    assert "fitBounds" in html


def test_color_by_status_shows_status_layer_first(grids):
    m = maps.explore(grids, color_by="status")
    layers = [c for c in m._children.values() if isinstance(c, folium.GeoJson)]
    shown = {c.layer_name: c.show for c in layers}
    assert shown == {"网格（按户数着色）": False, "网格（按状态着色）": True}
    html = _html(m)
    # the legend lists the statuses present, and always ok / below / above the bounds
    shown_statuses = {"ok", "below_min", "above_max", *grids["status"]}
    for status, color in style.STATUS_COLORS.items():
        assert (color in html) == (status in shown_statuses), status


def _label_divs(html: str) -> list[tuple[str, int, int, int, str, str]]:
    """(class, min zoom, max zoom, rank, text, second line) of every label on the page.

    DivIcon html is JSON-escaped on the page.
    """
    found = re.findall(
        r'class=\\"(gk-grid-label[^"\\]*)\\" data-minzoom=\\"(\d+)\\" '
        r'data-maxzoom=\\"(\d+)\\" data-rank=\\"(\d+)\\"\\u003e(.*?)'
        r'(?:\\u003cspan class=\\"gk-label-sub\\"\\u003e(.*?)\\u003c/span\\u003e)?'
        r'\\u003c/div',
        html,
    )
    return [
        (cls, int(lo), int(hi), int(rank), json.loads(f'"{text}"'), json.loads(f'"{sub}"'))
        for cls, lo, hi, rank, text, sub in found
    ]


def _labels(html: str) -> list[tuple[int, str]]:
    """(min zoom, text) of every grid label."""
    return [
        (lo, text) for cls, lo, _, _, text, _ in _label_divs(html) if cls == "gk-grid-label"
    ]


def test_grid_labels_and_zoom_toggle(grids):
    labels = _labels(_html(maps.explore(grids, label_min_zoom=16)))
    assert [z for z, _ in labels] == [16] * len(grids)
    assert sorted(text for _, text in labels) == sorted(grids["grid_name"])
    auto = _html(maps.explore(grids))
    assert 'map.on("zoomend overlayadd", update)' in auto
    zooms = [z for z, _ in _labels(auto)]
    assert len(zooms) == len(grids) and all(12 <= z <= 18 for z in zooms)


def test_labels_name_the_community_and_are_thinned(grids):
    """Grid labels carry the community name; community labels show below grid zooms."""
    divs = _label_divs(_html(maps.explore(grids)))
    grid_labels = [d for d in divs if d[0] == "gk-grid-label"]
    community_labels = [d for d in divs if d[0] != "gk-grid-label"]
    assert {d[5] for d in grid_labels} == set(grids["community_name"])
    assert sorted(d[4] for d in community_labels) == sorted(grids["community_name"])
    first_grid_zoom = min(d[1] for d in grid_labels)
    assert all(d[2] < 99 and d[1] <= d[2] for d in community_labels)
    assert min(d[1] for d in community_labels) < first_grid_zoom
    ranks = [d[3] for d in divs]
    assert sorted(ranks) == list(range(len(divs)))  # one rank each: thinning order
    assert max(d[3] for d in community_labels) < min(d[3] for d in grid_labels)
    assert "getBoundingClientRect" in _html(maps.explore(grids))


def test_color_scale_is_robust_to_outliers(grids):
    g = grids.copy()
    g["households"] = np.r_[np.linspace(420, 780, len(g) - 1).round(), 20_000].astype(int)
    vmin, vmax = style.robust_range(g["households"])
    assert 420 <= vmin < 440 and 760 < vmax < 1500  # the outlier does not stretch it
    html = _html(maps.explore(g))
    assert _has(html, "≥") and _has(html, "≤")
    with pytest.raises(InputError, match="color_range"):
        maps.explore(g, color_range=(800, 400))
    assert _has(_html(maps.explore(g, color_range=(400, 1000))), "≥1,000")


def test_grid_label_drops_the_community_name(grids):
    g = grids.head(3).copy()
    g["grid_name"] = g["community_name"] + "第1网格"
    g.loc[g.index[2], "grid_name"] = None
    texts = [text for _, text in _labels(_html(maps.explore(g)))]
    assert texts == ["第1网格", "第1网格", g["grid_code"].iloc[2]]  # no name: the code


def test_points_circle_markers_or_cluster(sample):
    grids, _, buildings = sample
    html = _html(maps.explore(grids, households=buildings))
    assert "markerClusterGroup" not in html
    points = [
        layer
        for layer in _geojson_layers(html)
        if layer["features"] and layer["features"][0]["geometry"]["type"] == "Point"
    ]
    assert len(points) == 1 and len(points[0]["features"]) == len(buildings)

    households = make_households(buildings.head(40), seed=0)
    assert len(households) > style.CLUSTER_THRESHOLD
    html = _html(maps.explore(grids, households=households))
    assert "markerClusterGroup" in html  # no grid_code: drawn grey
    assert style.UNKNOWN_COLOR in html


def test_workers_layer(grids):
    workers = gpd.GeoDataFrame(
        {"name": ["王芳", "李强"], "role": ["police", "网格长"], "grid_code": ["a", None]},
        geometry=grids.geometry.representative_point().iloc[:2].to_numpy(),
        crs=grids.crs,
    )
    html = _html(maps.explore(grids, workers=workers))
    assert _has(html, "网格员住址") and _has(html, "王芳") and _has(html, "李强")
    assert _has(html, "民警") and _has(html, "网格长")  # role keys in words


def test_add_to_existing_map_keeps_one_layer_control(grids):
    m = folium.Map(tiles=None)
    folium.LayerControl().add_to(m)
    out = maps.explore(grids, m=m)
    assert out is m
    assert _html(m).count("L.control.layers(") == 1


def test_html_escapes_names(grids):
    odd = grids.head(2).copy()
    odd["grid_name"] = ["<b>A&B</b>", "ok"]
    html = _html(maps.explore(odd))
    assert not _has(html, "<b>A&B</b>")
    assert _has(html, "&lt;b&gt;A&amp;B&lt;/b&gt;")


# --------------------------------------------------------------------------- basemaps


def test_default_map_is_offline_and_says_so(grids):
    """The default map needs no network: scripts inline, no tiles, a note in the corner."""
    html = _html(maps.explore(grids))
    assert "tile.openstreetmap.org" not in html
    assert _external_links(html) == []
    assert _has(html, "离线地图：未加载底图瓦片") and "gk-basemap-note" in html
    assert _has(_html(maps.explore(grids, lang="en")), "Offline map: no basemap tiles")


def test_online_map_is_osm_with_a_note_when_tiles_fail(grids):
    html = _html(maps.explore(grids, offline=False))
    assert "tile.openstreetmap.org" in html
    assert any("leaflet" in u for u in _external_links(html))
    assert 'layer.on("tileerror"' in html and _has(html, "底图瓦片无法访问")
    # an explicit web basemap on an offline page: tiles when online, the note otherwise
    kept = _html(maps.explore(grids, basemap="osm"))
    assert "tile.openstreetmap.org" in kept and _external_links(kept) == []


def test_amap_shifts_overlays_to_gcj02(grids):
    html = _html(maps.explore(grids, basemap="amap"))
    assert "webrd0{s}.is.autonavi.com" in html and _has(html, "高德地图")
    layer = _grid_layers(html)[0]
    feature = next(
        f for f in layer["features"] if f["properties"]["grid_code"] == grids["grid_code"].iloc[0]
    )
    got = feature["geometry"]["coordinates"][0][0]
    x, y = shapely.get_coordinates(grids.geometry.iloc[0].exterior)[0]
    gx, gy = wgs84_to_gcj02(x, y)
    assert got == pytest.approx([float(gx), float(gy)], abs=2e-6)
    assert abs(got[0] - x) > 1e-3  # really moved (hundreds of metres)

    plain = _grid_layers(_html(maps.explore(grids, basemap="none")))[0]
    first = next(
        f for f in plain["features"] if f["properties"]["grid_code"] == grids["grid_code"].iloc[0]
    )
    assert first["geometry"]["coordinates"][0][0] == pytest.approx([x, y], abs=2e-6)


def test_tianditu_needs_a_key(grids):
    with pytest.raises(InputError, match="--tianditu-key"):
        maps.explore(grids, basemap="tianditu")
    html = _html(maps.explore(grids, basemap="tianditu", tianditu_key="KEY123"))
    assert "tianditu.gov.cn/vec_w" in html and "tianditu.gov.cn/cva_w" in html
    assert "tk=KEY123" in html


def test_local_tiles_url(grids):
    url = "http://10.0.0.5/tiles/{z}/{x}/{y}.png"
    html = _html(maps.explore(grids, tiles_url=url))
    assert url in html and "tile.openstreetmap.org" not in html


def test_bad_options_raise_input_error(grids):
    with pytest.raises(InputError, match="`lang`"):
        maps.explore(grids, lang="fr")
    with pytest.raises(InputError, match="`basemap`"):
        maps.explore(grids, basemap="google")
    with pytest.raises(InputError, match="`color_by`"):
        maps.explore(grids, color_by="area")
    with pytest.raises(InputError, match="grid_code"):
        maps.explore(grids.drop(columns="grid_code"))
    with pytest.raises(InputError, match="status"):
        maps.explore(grids.drop(columns="status"), color_by="status")
    with pytest.raises(InputError, match="no CRS"):
        maps.explore(grids.set_crs(None, allow_override=True))
    with pytest.raises(InputError, match="empty"):
        maps.explore(grids.iloc[:0])


def test_any_crs_is_reprojected(grids):
    html = _html(maps.explore(grids.to_crs(32650)))
    layer = _grid_layers(html)[0]
    lon, lat = layer["features"][0]["geometry"]["coordinates"][0][0]
    assert 115.0 < lon < 115.1 and 30.1 < lat < 30.3


def test_inputs_are_not_mutated(sample):
    grids, communities, buildings = sample
    before = [g.copy() for g in (grids, communities, buildings)]
    maps.explore(
        grids.set_index("grid_code", drop=False),
        communities=communities,
        households=buildings,
        basemap="amap",
        offline=True,
    )
    for b, a in zip(before, (grids, communities, buildings), strict=True):
        assert_geodataframe_equal(a, b)


# --------------------------------------------------------------------------- offline


def test_offline_html_loads_nothing_from_the_network(sample):
    grids, communities, buildings = sample
    households = make_households(buildings.head(40), seed=0).assign(grid_code="x")
    m = maps.explore(grids, communities=communities, households=households, offline=True)
    html = _html(m)
    assert _external_links(html) == []
    assert "Leaflet 1.9.4" in html  # inline
    assert "L.markerClusterGroup" in html and "MarkerCluster" in html
    assert "tile.openstreetmap.org" not in html  # no basemap by default
    assert "url(images/" not in html and "data:image/png;base64," in html
    assert "sourceMappingURL" not in html
    assert "bootstrap" not in html.lower() and "fontawesome" not in html.lower()
    assert _external_links(_html(m)) == []  # folium re-adds its CDN links on each render
    normal = _html(maps.explore(grids, offline=False))
    assert any("leaflet" in u for u in _external_links(normal))


def test_offline_with_local_tiles(grids):
    url = "http://10.0.0.5/tiles/{z}/{x}/{y}.png"
    html = _html(maps.explore(grids, offline=True, tiles_url=url))
    assert url in html and _external_links(html) == []


def test_offline_warns_about_assets_it_cannot_inline(grids):
    m = maps.explore(grids, offline=True)
    folium.plugins.Fullscreen().add_to(m)
    with pytest.warns(GridkitWarning, match="offline map still loads"):
        _html(m)


def test_every_folium_default_asset_is_vendored_or_dropped():
    urls = [u for _, u in folium.Map.default_js + folium.Map.default_css]
    urls += [u for _, u in folium.plugins.MarkerCluster.default_js]
    urls += [u for _, u in folium.plugins.MarkerCluster.default_css]
    for url in urls:
        local = offline._local_asset(url)
        assert (local is not None and local.is_file()) or offline._is_dropped_asset(url), url
    for name in ("layers.png", "layers-2x.png", "marker-icon.png"):
        url = f"https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/images/{name}"
        assert offline._local_asset(url) == offline.STATIC_DIR / "leaflet" / "images" / name


def test_save_map_creates_folders(grids, tmp_path):
    path = maps.save_map(maps.explore(grids, offline=True), tmp_path / "a" / "b" / "map.html")
    assert path.is_file() and path.stat().st_size > 100_000
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_saved_map_is_the_same_bytes_each_time(sample, tmp_path):
    """branca's random element ids are numbered on save: the same map, the same file."""
    grids, communities, buildings = sample
    paths = [
        maps.save_map(
            maps.explore(grids, communities=communities, households=buildings),
            tmp_path / f"{i}.html",
        )
        for i in range(2)
    ]
    text = paths[0].read_text(encoding="utf-8")
    assert paths[0].read_bytes() == paths[1].read_bytes()
    names = re.findall(r"\bvar (\w+_[0-9a-f]{32}) = ", text)
    assert len(names) > 10 and len(names) == len(set(names))  # still one variable each
    assert not re.search(r"_(?!0{16})[0-9a-f]{32}\b", text)  # no random id left


# --------------------------------------------------------------------------- overview_png


def _is_png(path) -> bool:
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_overview_png(sample, tmp_path):
    grids, communities, _ = sample
    path = overview.overview_png(grids, tmp_path / "out" / "overview.png", communities=communities)
    assert path == tmp_path / "out" / "overview.png"
    assert _is_png(path)


def test_overview_png_without_cjk_font_falls_back_to_english(grids, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(overview, "_cjk_font", lambda: None)
    with caplog.at_level(logging.WARNING, logger="gridkit.maps"):
        path = overview.overview_png(grids, tmp_path / "o.png", title="网格总览", dpi=60)
    assert _is_png(path)
    assert "no font with Chinese glyphs" in caplog.text


def test_overview_png_english_and_projected_input(grids, tmp_path):
    g = grids.to_crs(32650)
    holed = g.geometry.iloc[0].difference(g.geometry.iloc[0].buffer(-100))  # a ring with a hole
    g.loc[0, "geometry"] = shapely.MultiPolygon([holed])
    path = overview.overview_png(g, tmp_path / "en.png", lang="en", title="Test", dpi=60)
    assert _is_png(path)
    assert np.isfinite(g["households"]).all()
