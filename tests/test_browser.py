"""Open saved maps in headless Chromium and check that every grid is drawn.

Needs the Debian package ``chromium`` (``bash scripts/install_browser.sh``) and the
``playwright`` Python package (its bundled driver only: no browser download).  The
tests skip with a message when Chromium is missing, except under ``CI=true``, where
they fail instead.

The normal map loads Leaflet & co. from CDNs, which this machine cannot reach.  For
that map only, ``page.route`` answers the CDN requests with the files vendored in
``gridkit/static`` (the same ones offline maps inline), folium defaults gridkit does
not use (Bootstrap, Font Awesome, ...) with empty files, and OpenStreetMap tiles with
a plain placeholder tile.  This substitution exists only in the test.  The offline map
gets no such help: every non-``file:`` request is refused and must not even be tried.
"""

from __future__ import annotations

import os
import shutil
import struct
import time
import zlib
from pathlib import Path

import pytest
from gridmaps import sample_as_grids

from gridkit.datasets.synthetic import make_households
from gridkit.maps import interactive as maps
from gridkit.maps import offline, style

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("GRIDKIT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}
SCREENSHOT_COPY = Path("/tmp/map_screenshot.png")
TIMEOUT_MS = 30_000

CONTENT_TYPES = {".js": "application/javascript", ".css": "text/css", ".png": "image/png"}


def _missing(msg: str) -> None:
    """Skip locally, fail in CI (a required test must not skip quietly)."""
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{msg} (CI is set, so this is a failure, not a skip)")
    pytest.skip(msg)


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A plain RGB PNG with a 1 px darker border (a placeholder map tile)."""
    edge = bytes(max(c - 18, 0) for c in rgb)
    body = bytes(rgb)
    rows = []
    for y in range(height):
        row = edge * width if y in (0, height - 1) else edge + body * (width - 2) + edge
        rows.append(b"\x00" + row)
    raw = zlib.compress(b"".join(rows), 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


TILE = _png(256, 256, (242, 240, 235))


def serve_known(route, url: str) -> bool:
    """Answer a map's request from gridkit's bundled assets or a blank tile; False if unknown."""
    asset = offline._local_asset(url)
    if asset is not None:
        route.fulfill(path=asset, content_type=CONTENT_TYPES[asset.suffix])
    elif offline._is_dropped_asset(url):
        kind = "text/css" if ".css" in url else "application/javascript"
        route.fulfill(status=200, body="", content_type=kind)
    elif "tile.openstreetmap.org" in url:
        route.fulfill(status=200, body=TILE, content_type="image/png")
    else:
        return False
    return True


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        _missing(
            f"headless Chromium not found at {CHROMIUM}: run `bash scripts/install_browser.sh`"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is missing: pip install -e '.[test]'")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def sample():
    """The sample communities drawn as if each were one grid, plus buildings and workers."""
    grids, communities, buildings = sample_as_grids()
    workers = buildings.iloc[::90][["geometry"]].copy()
    workers["name"] = [f"网格员{i:02d}" for i in range(1, len(workers) + 1)]
    workers["role"] = ["网格员", "网格长", "社区民警"] * (len(workers) // 3) + ["网格员"] * (
        len(workers) % 3
    )
    return grids, communities, buildings, workers


def _open(browser, html: Path, *, offline: bool, n_grids: int):
    """Open ``html``; return (page, context, errors, external requests, seconds to draw)."""
    context = browser.new_context(viewport=VIEWPORT, offline=offline)
    errors: list[str] = []
    external: list[str] = []

    def handle(route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
            return
        external.append(url)
        if offline:
            route.abort()
            return
        if not serve_known(route, url):
            errors.append(f"unexpected request {url}")
            route.abort()

    context.route("**/*", handle)
    page = context.new_page()
    page.on(
        "console",
        lambda msg: (
            errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
        ),
    )
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    start = time.perf_counter()
    page.goto(html.resolve().as_uri(), wait_until="load", timeout=TIMEOUT_MS)
    page.wait_for_selector(".leaflet-container", timeout=TIMEOUT_MS)
    page.wait_for_function(
        f"document.querySelectorAll('path.gk-grid-hh').length >= {n_grids}", timeout=TIMEOUT_MS
    )
    seconds = time.perf_counter() - start
    page.wait_for_timeout(300)  # let tiles / clusters settle for the screenshot
    return page, context, errors, external, seconds


def _check_map(page, *, n_grids: int, lang_label: str) -> None:
    assert page.locator("path.gk-grid-hh").count() == n_grids
    assert page.locator("path.gk-grid-status").count() == 0  # second grid layer starts hidden
    assert page.locator(".leaflet-control-layers").count() == 1
    assert page.locator(".gk-legend").is_visible()
    assert "网格户数" in page.locator(".gk-legend").inner_text()
    labels = page.locator(".gk-grid-label:not(.gk-community-label)")
    assert labels.count() == n_grids
    # hovering a grid shows its tooltip
    page.locator("path.gk-grid-hh").nth(n_grids // 2).hover(force=True)
    page.wait_for_selector(".leaflet-tooltip", timeout=5_000)
    assert "网格编码" in page.locator(".leaflet-tooltip").first.inner_text()
    page.mouse.move(5, VIEWPORT["height"] - 5)
    # switching the status layer on draws it and shows its legend
    page.get_by_text(lang_label, exact=True).click()
    page.wait_for_function(
        f"document.querySelectorAll('path.gk-grid-status').length == {n_grids}",
        timeout=5_000,
    )
    assert "网格状态" in page.locator(".gk-legend").inner_text()
    page.get_by_text(lang_label, exact=True).click()
    # grid names hide when zoomed out below their label zoom (never shown below 12)
    visible = (
        "Array.from(document.querySelectorAll('.gk-grid-label:not(.gk-community-label)'))"
        ".filter(e => e.offsetParent)"
    )
    # (returns nothing: serialising the Leaflet map back to Python takes seconds)
    set_zoom = "z => { window[document.querySelector('.leaflet-container').id].setZoom(z); }"
    shown = page.evaluate(f"{visible}.length")
    assert shown > 0
    zoom = page.evaluate("window[document.querySelector('.leaflet-container').id].getZoom()")
    page.evaluate(set_zoom, 11)
    page.wait_for_function(f"{visible}.length == 0", timeout=5_000)
    page.evaluate(set_zoom, zoom)
    page.wait_for_function(f"{visible}.length == {shown}", timeout=5_000)


def test_map_renders_every_grid(browser, sample, tmp_path, record_property):
    grids, communities, buildings, workers = sample
    m = maps.explore(
        grids, communities=communities, households=buildings, workers=workers, offline=False
    )
    html = maps.save_map(m, tmp_path / "map.html")
    page, context, errors, external, seconds = _open(
        browser, html, offline=False, n_grids=len(grids)
    )
    try:
        shot = tmp_path / "map.png"
        page.screenshot(path=str(shot))
        shutil.copy(shot, SCREENSHOT_COPY)
        _check_map(page, n_grids=len(grids), lang_label="网格（按状态着色）")
        assert page.locator("path.gk-point").count() == len(buildings)
        assert page.locator("path.gk-worker").count() == len(workers)
    finally:
        context.close()
    record_property("render_seconds", round(seconds, 3))
    print(f"\nnormal map: {len(grids)} grids drawn in {seconds:.2f} s, {html.stat().st_size} B")
    assert not errors, "\n".join(errors)
    assert any("leaflet" in url for url in external)  # the CDN links really were routed


def test_offline_map_renders_without_network(browser, sample, tmp_path, record_property):
    grids, communities, buildings, _ = sample
    households = make_households(buildings.head(40), seed=0)
    assert len(households) > style.CLUSTER_THRESHOLD  # exercise the marker cluster plugin
    m = maps.explore(grids, communities=communities, households=households, offline=True)
    html = maps.save_map(m, tmp_path / "map_offline.html")
    page, context, errors, external, seconds = _open(
        browser, html, offline=True, n_grids=len(grids)
    )
    try:
        shot = tmp_path / "map_offline.png"
        page.screenshot(path=str(shot))
        shutil.copy(shot, SCREENSHOT_COPY.with_name("map_screenshot_offline.png"))
        _check_map(page, n_grids=len(grids), lang_label="网格（按状态着色）")
        assert page.locator(".marker-cluster").count() > 0  # markercluster JS ran
    finally:
        context.close()
    record_property("render_seconds", round(seconds, 3))
    print(f"\noffline map: {len(grids)} grids drawn in {seconds:.2f} s, {html.stat().st_size} B")
    assert external == [], f"the offline map tried the network: {external[:5]}"
    assert not errors, "\n".join(errors)


# Visible labels overlapping each other (thinning must leave none).
OVERLAPS = """() => {
    const boxes = Array.from(document.querySelectorAll('.gk-grid-label'))
        .filter(e => e.offsetParent).map(e => e.getBoundingClientRect());
    let n = 0;
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i], b = boxes[j];
        if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) n++;
    }
    return n;
}"""


def test_default_partition_map_works_with_no_network(browser, tmp_path, record_property):
    """`gridkit partition` with default options: its map.html draws every grid offline."""
    import json

    from gridkit.cli.commands import main

    out = tmp_path / "out"
    root = Path(__file__).resolve().parents[1] / "data" / "boundaries"
    argv = [
        "partition",
        "--communities", str(root / "sample_communities.geojson"),
        "--households", str(root / "sample_buildings.geojson"),
        "--out", str(out),
        "-q",
    ]  # fmt: skip
    assert main(argv) == 0
    n_grids = len(json.loads((out / "grids.geojson").read_text(encoding="utf-8"))["features"])
    page, context, errors, external, seconds = _open(
        browser, out / "map.html", offline=True, n_grids=n_grids
    )
    try:
        page.screenshot(path=str(SCREENSHOT_COPY.with_name("map_screenshot_default.png")))
        assert page.locator("path.gk-grid-hh").count() == n_grids
        note = page.locator(".gk-basemap-note")
        assert note.is_visible() and "离线地图" in note.inner_text()
        # community names at the city view, no two labels on top of each other
        set_zoom = "z => { window[document.querySelector('.leaflet-container').id].setZoom(z); }"
        for zoom in (11, 12, 14, 16):
            page.evaluate(set_zoom, zoom)
            page.wait_for_timeout(400)
            assert page.evaluate(OVERLAPS) == 0, f"overlapping labels at zoom {zoom}"
        page.evaluate(set_zoom, 11)  # the city view: community names, no grid names
        page.wait_for_timeout(400)
        shown = page.evaluate(
            "Array.from(document.querySelectorAll('.gk-community-label'))"
            ".filter(e => e.offsetParent).length"
        )
        assert shown > 0
    finally:
        context.close()
    record_property("render_seconds", round(seconds, 3))
    assert external == [], f"the default map tried the network: {external[:5]}"
    assert not errors, "\n".join(errors)


def test_offline_page_says_when_tiles_cannot_be_reached(browser, sample, tmp_path):
    grids, communities, _, _ = sample
    m = maps.explore(grids, communities=communities, basemap="osm")  # offline page, web tiles
    html = maps.save_map(m, tmp_path / "tiles.html")
    page, context, errors, external, _ = _open(browser, html, offline=True, n_grids=len(grids))
    try:
        page.wait_for_function(
            "document.querySelector('.gk-basemap-note').offsetParent !== null", timeout=10_000
        )
        assert "底图瓦片无法访问" in page.locator(".gk-basemap-note").inner_text()
    finally:
        context.close()
    assert external and all("tile.openstreetmap.org" in u for u in external)
    assert not [e for e in errors if "Failed to load resource" not in e]
