"""Tests for gridkit.exchange: every file format read back feature by feature.

The source folder is a `gridkit partition`-like folder written from
``tests/gridmaps.py`` (grids, buildings and workers layers, Chinese names).
PostGIS has its own module, ``tests/test_postgis.py``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

import geopandas as gpd
import jsonschema
import pandas as pd
import pyogrio
import pytest
import shapely
from gridmaps import (
    A1,
    assert_same_features,
    make_map,
    max_shift_m,
    records,
    workers_frame,
    write_output_dir,
)

from gridkit.audit import audit_grids, read_grids
from gridkit.cli.exchange import register
from gridkit.crs import from_wgs84, to_wgs84
from gridkit.errors import InputError
from gridkit.export.exchange import (
    CRS_NOTES,
    SHAPEFILE_NAMES,
    crs_from_note,
    export_layers,
    grids_schema,
    shapefile_names,
)

GRID_PROPS = [
    "grid_code",
    "grid_name",
    "community_id",
    "community_name",
    "street",
    "households",
    "buildings",
    "area_m2",
    "compactness",
    "status",
]


@pytest.fixture
def src(tmp_path: Path) -> Path:
    grids, buildings, _ = make_map()
    return write_output_dir(tmp_path / "src", grids, buildings, workers_frame())


@pytest.fixture
def originals(src: Path) -> dict[str, gpd.GeoDataFrame]:
    return {
        name: gpd.read_file(src / f"{name}.geojson") for name in ("grids", "buildings", "workers")
    }


def _validator() -> jsonschema.Draft202012Validator:
    schema = grids_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


# ---------------------------------------------------------------------------
# schema
# ---------------------------------------------------------------------------


def test_schema_accepts_the_contract_and_rejects_drift(originals):
    validator = _validator()
    for props in records(originals["grids"]):
        assert list(validator.iter_errors(props)) == []
    bad = dict(records(originals["grids"])[0], status="great", households=-1)
    assert {e.path[0] for e in validator.iter_errors(bad)} == {"status", "households"}
    missing = records(originals["grids"])[0]
    del missing["grid_code"]
    assert not validator.is_valid(missing)
    assert set(grids_schema()["required"]) == set(GRID_PROPS)


# ---------------------------------------------------------------------------
# formats, WGS84
# ---------------------------------------------------------------------------


def test_geojson_one_file_per_layer(src, originals, tmp_path):
    written = export_layers(src, tmp_path / "out" / "district.geojson")
    assert [p.name for p in written] == [
        "district.geojson",
        "district_buildings.geojson",
        "district_workers.geojson",
    ]
    for layer, path in zip(("grids", "buildings", "workers"), written, strict=True):
        assert_same_features(gpd.read_file(path), originals[layer])
    data = json.loads(written[0].read_text(encoding="utf-8"))
    assert "crs" not in data  # RFC 7946: WGS84 lon/lat, no crs member
    assert data["features"][0]["properties"]["grid_name"] == "江汉社区第1网格"
    validator = _validator()
    assert all(validator.is_valid(f["properties"]) for f in data["features"])


def test_geopackage_one_file_one_layer_each(src, originals, tmp_path):
    path = tmp_path / "district.gpkg"
    assert export_layers(src, path) == [path]
    assert sorted(pyogrio.list_layers(path)[:, 0]) == ["buildings", "grids", "workers"]
    for layer in ("grids", "buildings", "workers"):
        assert_same_features(gpd.read_file(path, layer=layer), originals[layer])
    grids = gpd.read_file(path, layer="grids")
    assert gpd.read_file(path, layer="grids").crs.to_epsg() == 4326
    validator = _validator()
    assert all(validator.is_valid(p) for p in records(grids))


def test_geopackage_keeps_other_layers_and_is_deterministic(src, tmp_path):
    path = tmp_path / "district.gpkg"
    other = gpd.GeoDataFrame({"note": ["mine"]}, geometry=[shapely.Point(114, 30)], crs=4326)
    other.to_file(path, layer="my_layer", engine="pyogrio")
    export_layers(src, path, layers="grids")
    assert sorted(pyogrio.list_layers(path)[:, 0]) == ["grids", "my_layer"]
    first = gpd.read_file(path, layer="grids")
    export_layers(src, path, layers="grids")  # replaces the layer, keeps the other one
    assert sorted(pyogrio.list_layers(path)[:, 0]) == ["grids", "my_layer"]
    assert_same_features(gpd.read_file(path, layer="grids"), first)
    # fresh files are byte-identical (fixed GeoPackage timestamps)
    a, b = tmp_path / "a.gpkg", tmp_path / "b.gpkg"
    export_layers(src, a)
    export_layers(src, b)
    assert a.read_bytes() == b.read_bytes()


def test_shapefile_keeps_chinese_names_and_maps_long_names(src, originals, tmp_path):
    written = export_layers(src, tmp_path / "shp" / "district.shp")
    assert [p.name for p in written] == [
        "district.shp",
        "district_buildings.shp",
        "district_workers.shp",
    ]
    for path in written:
        assert path.with_suffix(".cpg").read_text() == "UTF-8"
    grids = gpd.read_file(written[0])
    names = shapefile_names(GRID_PROPS)
    assert list(grids.columns[:-1]) == [names[c] for c in GRID_PROPS]
    assert all(len(c.encode()) <= 10 for c in grids.columns)
    back = grids.rename(columns={v: k for k, v in names.items()})
    assert_same_features(back, originals["grids"])
    assert back["community_name"].tolist()[0] == "江汉社区"
    validator = _validator()
    assert all(validator.is_valid(p) for p in records(back))
    for layer, path in (("buildings", written[1]), ("workers", written[2])):
        names = shapefile_names([c for c in originals[layer].columns if c != "geometry"])
        back = gpd.read_file(path).rename(columns={v: k for k, v in names.items()})
        assert_same_features(back, originals[layer])


def test_shapefile_names_are_unique_and_stable():
    names = shapefile_names(["population_total", "population_total2", "户数户数户数户数", "x"])
    assert names == {
        "population_total": "population",
        "population_total2": "populati_2",
        "户数户数户数户数": "户数户",
        "x": "x",
    }
    assert shapefile_names(SHAPEFILE_NAMES) == SHAPEFILE_NAMES


def test_csv_with_wkt(src, originals, tmp_path):
    written = export_layers(src, tmp_path / "district.csv", layers=["grids", "workers"])
    assert [p.name for p in written] == ["district.csv", "district_workers.csv"]
    raw = written[0].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel shows Chinese
    table = pd.read_csv(
        written[0], encoding="utf-8-sig", dtype={"grid_code": str, "community_id": str}
    )
    assert list(table.columns) == [*GRID_PROPS, "lon", "lat", "wkt"]
    back = gpd.GeoDataFrame(
        table.drop(columns=["lon", "lat", "wkt"]),
        geometry=gpd.GeoSeries.from_wkt(table["wkt"]),
        crs=4326,
    )
    assert_same_features(back, originals["grids"])
    validator = _validator()
    assert all(validator.is_valid(p) for p in records(back))


def test_projected_epsg_export(src, originals, tmp_path):
    path = tmp_path / "cgcs2000.gpkg"
    export_layers(src, path, crs="EPSG:4547", layers="grids")
    grids = gpd.read_file(path, layer="grids")
    assert grids.crs.to_epsg() == 4547
    assert "crs_note" not in grids.columns
    expected = originals["grids"].to_crs(4547)
    assert shapely.equals_exact(grids.geometry.to_numpy(), expected.geometry.to_numpy(), 1e-6).all()
    geojson = export_layers(src, tmp_path / "cgcs2000.geojson", crs="EPSG:4547", layers="grids")
    assert gpd.read_file(geojson[0]).crs.to_epsg() == 4547


# ---------------------------------------------------------------------------
# GCJ-02 / BD-09
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp", ".csv"])
def test_shifted_exports_are_marked_and_convert_back_within_1_m(
    src, originals, tmp_path, system, suffix
):
    written = export_layers(src, tmp_path / f"district{suffix}", crs=system)
    if suffix == ".gpkg":
        frames = {k: gpd.read_file(written[0], layer=k) for k in originals}
    elif suffix == ".csv":
        frames = {}
        for k, path in zip(originals, written, strict=True):
            table = pd.read_csv(path, encoding="utf-8-sig")
            frames[k] = gpd.GeoDataFrame(
                table, geometry=gpd.GeoSeries.from_wkt(table["wkt"]), crs=4326
            )
    else:
        frames = {k: gpd.read_file(p) for k, p in zip(originals, written, strict=True)}
    for layer, frame in frames.items():
        assert (frame["crs_note"] == CRS_NOTES[system]).all()
        assert crs_from_note(frame["crs_note"].iloc[0]) == system
        shifted = max_shift_m(frame, originals[layer])
        assert 100 < shifted < 2500  # really shifted, as on Amap/Baidu
        back = to_wgs84(frame.set_crs(None, allow_override=True), system)
        assert max_shift_m(back, originals[layer]) < 1.0
    if suffix == ".geojson":
        data = json.loads(written[0].read_text(encoding="utf-8"))
        assert data["description"] == CRS_NOTES[system]
    if suffix == ".gpkg":
        con = sqlite3.connect(written[0])
        try:
            desc = dict(con.execute("SELECT table_name, description FROM gpkg_contents"))
        finally:
            con.close()
        assert desc["grids"] == CRS_NOTES[system]
        info = pyogrio.read_info(written[0], layer="grids")
        assert info["layer_metadata"]["crs_note"] == CRS_NOTES[system]


def test_exporting_a_shifted_folder_again_is_refused(src, tmp_path):
    (tmp_path / "shifted").mkdir()
    export_layers(src, tmp_path / "shifted" / "grids.geojson", crs="gcj02", layers="grids")
    with pytest.raises(InputError, match="already shifted"):
        export_layers(tmp_path / "shifted", tmp_path / "again.geojson", crs="gcj02")


# ---------------------------------------------------------------------------
# round trips through the audit
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "system"),
    [(".geojson", "wgs84"), (".gpkg", "gcj02"), (".shp", "bd09"), (".shp", "wgs84")],
)
def test_export_then_audit_finds_no_problem(src, tmp_path, suffix, system):
    _, buildings, communities = make_map()
    written = export_layers(src, tmp_path / f"exported{suffix}", crs=system, layers="grids")
    grids = read_grids(written[0], layer="grids" if suffix == ".gpkg" else None)
    result = audit_grids(grids, buildings, communities=communities)
    assert set(result.grids["problems"]) == {""}
    assert result.report["gaps"] == 0
    assert result.report["households_outside_grids"] == 0
    assert result.grids["households"].tolist() == [600] * 4
    if suffix == ".shp":  # community id found under its short name
        assert result.grids["community_id"].tolist()[0] == A1[:12]


# ---------------------------------------------------------------------------
# errors and atomicity
# ---------------------------------------------------------------------------


def test_layers_selection_and_errors(tmp_path):
    grids, _, _ = make_map()
    src = write_output_dir(tmp_path / "only_grids", grids)
    assert [p.name for p in export_layers(src, tmp_path / "a.geojson")] == ["a.geojson"]
    with pytest.raises(InputError, match=r"no buildings\.geojson"):
        export_layers(src, tmp_path / "b.geojson", layers="grids,buildings")
    with pytest.raises(InputError, match="choose among grids, buildings, workers"):
        export_layers(src, tmp_path / "b.geojson", layers="grids,roads")
    with pytest.raises(InputError, match="cannot tell the export format"):
        export_layers(src, tmp_path / "b.kml")
    with pytest.raises(InputError, match="not a folder"):
        export_layers(tmp_path / "nothing", tmp_path / "b.geojson")
    with pytest.raises(InputError, match="unknown CRS"):
        export_layers(src, tmp_path / "b.geojson", crs="EPSG:999999")
    with pytest.raises(InputError, match=r"no grids\.geojson"):
        export_layers(tmp_path, tmp_path / "b.geojson")


def test_duplicated_grid_codes_are_refused(tmp_path):
    grids, _, _ = make_map()
    grids.loc[1, "grid_code"] = grids.loc[0, "grid_code"]
    src = write_output_dir(tmp_path / "dup", grids)
    with pytest.raises(InputError, match="missing or duplicated at features 1, 2"):
        export_layers(src, tmp_path / "x.gpkg")


def test_failed_file_export_leaves_previous_files(src, tmp_path, monkeypatch):
    out = tmp_path / "out"
    written = export_layers(src, out / "district.geojson")
    before = {p: p.read_bytes() for p in written}
    real = pyogrio.write_dataframe
    calls = []

    def fail_on_second_layer(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(pyogrio, "write_dataframe", fail_on_second_layer)
    grids, _, _ = make_map()
    write_output_dir(src, grids.iloc[:2])  # new content that must not land
    with pytest.raises(OSError, match="simulated"):
        export_layers(src, out / "district.geojson")
    assert {p: p.read_bytes() for p in written} == before
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)


def test_cli_export(src, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="gridkit")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        [
            "export",
            str(src),
            "--to",
            str(tmp_path / "x.gpkg"),
            "--crs",
            "GCJ-02",
            "--layers",
            "grids,workers",
        ]
    )
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "1 file to" in out and "note: GCJ-02" in out
    assert sorted(pyogrio.list_layers(tmp_path / "x.gpkg")[:, 0]) == ["grids", "workers"]


def test_gcj02_export_matches_from_wgs84(src, originals, tmp_path):
    """The shifted numbers are exactly gridkit.crs.from_wgs84's (7 decimals in GeoJSON)."""
    written = export_layers(src, tmp_path / "g.geojson", crs="gcj02", layers="grids")
    expected = from_wgs84(originals["grids"], "gcj02")
    got = gpd.read_file(written[0])
    assert shapely.equals_exact(got.geometry.to_numpy(), expected.geometry.to_numpy(), 2e-7).all()
