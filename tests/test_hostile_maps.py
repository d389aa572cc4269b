"""No script runs from any map gridkit writes, whatever the inputs hold (issue 18, class 1-2).

The hostile corpus (:mod:`hostile`) puts script payloads in every text value and in
extra column names of every input; each payload would set ``document.title``.  Each
map (``partition``, ``map``, ``assign``, ``regenerate``) is opened in headless Chromium
(as in ``test_browser.py``), every overlay is switched on, and every tooltip and popup
of every feature is opened; the title must stay, the payloads must show as text, and
the page must load without a JavaScript error (the regenerate map threw one, and its
changes layer was never drawn).  A control map that inserts one payload raw proves the
harness would see a script run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import folium
import geopandas as gpd
import pandas as pd
import pytest
from batchfiles import run_cli
from hostile import PWNED, SCRIPTS, hostile_previous, write_corpus, write_roster
from test_browser import browser, serve_known  # noqa: F401  (the fixture)

from gridkit.maps import interactive as maps

pytestmark = pytest.mark.browser

TIMEOUT_MS = 30_000

#: Opens every tooltip and popup of every layer on the map; returns how many.
OPEN_ALL = """
() => {
  const map = window[document.querySelector('.leaflet-container').id];
  document.querySelectorAll('.leaflet-control-layers-overlays input').forEach(box => {
    if (!box.checked) { box.click(); }
  });
  const where = l => l.getLatLng ? l.getLatLng()
    : (l.getBounds && l.getBounds().isValid() ? l.getBounds().getCenter() : null);
  let opened = 0;
  const visit = (layer) => {
    if (layer.getLayers) {
      layer.getLayers().forEach(visit);
      return;
    }
    const at = where(layer);
    if (!at) { return; }
    // as the mouse does: the events reach the layer and, propagated, its GeoJSON group
    layer.fire('mouseover', {latlng: at}, true);
    layer.fire('click', {latlng: at}, true);
    opened += 1;
  };
  map.eachLayer(visit);
  return opened;
}
"""


def _route(route) -> None:
    url = route.request.url
    if url.startswith(("file:", "data:", "about:")):
        route.continue_()
        return
    if not serve_known(route, url):  # the payloads' `src=x` and the like: nothing else
        route.abort()


def check_no_script_runs(browser, html: Path, *, expect_text: bool = True) -> dict:  # noqa: F811
    """Open ``html``, open every tooltip and popup; return what was seen."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    errors: list[str] = []
    context.route("**/*", _route)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("dialog", lambda d: (errors.append(f"dialog {d.message}"), d.dismiss()))
    try:
        page.goto(html.resolve().as_uri(), wait_until="load", timeout=TIMEOUT_MS)
        page.wait_for_selector(".leaflet-container", timeout=TIMEOUT_MS)
        before = page.title()
        opened = page.evaluate(OPEN_ALL)
        for path in page.locator("path.leaflet-interactive").all()[:60]:
            # DOM events as the mouse sends them (popups pan the map: no viewport needed)
            path.dispatch_event("mouseover")
            path.dispatch_event("click")
        page.wait_for_timeout(400)
        seen = {
            "title": page.title(),
            "before": before,
            "opened": opened,
            "text": page.evaluate("document.body.innerText"),
            "errors": errors,
            "changes": page.locator("path.gk-change").count(),
        }
    finally:
        context.close()
    assert seen["title"] == seen["before"] != PWNED, f"a payload ran in {html}: {seen['title']}"
    assert not errors, "\n".join(errors)
    assert opened > 0
    if expect_text:  # the payloads were shown, as text
        assert "onerror=" in seen["text"], f"no payload text shown in {html}"
    return seen


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    paths = write_corpus(folder / "in")
    out = folder / "partition"
    code, _, err = run_cli([
        "partition", "--communities", str(paths["communities"]),
        "--households", str(paths["households"]), "--input-crs", "wgs84", "--time-limit", "0.3",
        "--jobs", "1", "--out", str(out), "-q",
    ])  # fmt: skip
    assert code == 0, err
    return folder, paths, out


def test_control_map_with_a_raw_payload_does_run(browser, tmp_path):  # noqa: F811
    """The harness sees a script run: folium's tooltip inserts aliases as HTML."""
    grids = gpd.read_file(Path(maps.__file__).parents[2] / "data/boundaries/"
                          "sample_communities.geojson").head(2)  # fmt: skip
    m = folium.Map(location=[30.4, 114.9], zoom_start=11)
    folium.GeoJson(
        grids[["community_id", "geometry"]],
        tooltip=folium.GeoJsonTooltip(fields=["community_id"], aliases=[SCRIPTS[0]]),
    ).add_to(m)
    html = tmp_path / "raw.html"
    m.save(str(html))
    with pytest.raises(AssertionError, match="a payload ran"):
        check_no_script_runs(browser, html, expect_text=False)


def test_partition_map(browser, corpus):  # noqa: F811
    _, _, out = corpus
    seen = check_no_script_runs(browser, out / "map.html")
    assert "社区" in seen["text"]


def test_partition_map_with_barriers_and_compounds(browser, corpus, tmp_path):  # noqa: F811
    _, paths, _ = corpus
    out = tmp_path / "out"
    code, _, err = run_cli([
        "partition", "--communities", str(paths["communities"]),
        "--households", str(paths["households"]), "--compounds", str(paths["compounds"]),
        "--barriers", str(paths["barriers"]), "--input-crs", "wgs84", "--time-limit", "0.3",
        "--jobs", "1", "--out", str(out), "-q",
    ])  # fmt: skip
    assert code == 0, err
    check_no_script_runs(browser, out / "map.html")


def test_map_command_on_a_hostile_grid_layer(browser, corpus, tmp_path):  # noqa: F811
    _folder, _, out = corpus
    layer = hostile_previous(out, tmp_path / "layer")
    code, _, err = run_cli(["map", str(layer), "--out", str(tmp_path / "m.html")])
    assert code == 0, err
    check_no_script_runs(browser, tmp_path / "m.html")
    code, _, err = run_cli(["map", str(layer), "--out", str(tmp_path / "en.html"), "--lang", "en",
                            "--color-by", "status", "--offline"])  # fmt: skip
    assert code == 0, err
    check_no_script_runs(browser, tmp_path / "en.html")


def test_assign_map(browser, corpus, tmp_path):  # noqa: F811
    _, _, out = corpus
    layer = hostile_previous(out, tmp_path / "layer")
    roster = write_roster(out / "grids.geojson", tmp_path / "roster.csv")
    staffed = tmp_path / "staffed"
    code, _, err = run_cli(["assign", "--grids", str(layer), "--workers", str(roster),
                            "--out", str(staffed), "--time-limit", "2", "-q"])  # fmt: skip
    assert code == 0, err
    check_no_script_runs(browser, staffed / "map.html")


def test_regenerate_map_draws_its_changes_without_errors(browser, corpus, tmp_path):  # noqa: F811
    _folder, paths, out = corpus
    previous = hostile_previous(out, tmp_path / "previous")
    # housing changed: a tower replaces one building of the first community
    households = tmp_path / "households.csv"
    table = pd.read_csv(paths["households"], dtype=str, keep_default_na=False)
    table.loc[0, "households"] = "700"  # 1,910 households: a third grid is needed
    table.to_csv(households, index=False)
    regen = tmp_path / "regen"
    code, _, err = run_cli([
        "regenerate", "--previous", str(previous), "--communities", str(paths["communities"]),
        "--households", str(households), "--input-crs", "wgs84", "--time-limit", "0.5",
        "--jobs", "1", "--out", str(regen), "-q",
    ])  # fmt: skip
    assert code == 0, err
    seen = check_no_script_runs(browser, regen / "map.html")
    assert "changes 变更" in seen["text"]  # listed in the layer control
    assert seen["changes"] > 0  # and drawn (it was not: setZIndex of undefined)
    shutil.copy(regen / "map.html", Path("/tmp/regenerate_map_hostile.html"))
