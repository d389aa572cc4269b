"""Tests for gridkit.io (readers) and gridkit._validate (shared input checks).

Every fixture file is written into ``tmp_path`` from code; nothing is committed.
Coordinates are small boxes and points in Wuhan (around 114.3 E, 30.6 N), where
0.01 degree is about 960 m east-west and 1110 m north-south.
"""

from __future__ import annotations

import logging
import re
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, MultiPoint, Point, Polygon, box

from gridkit.crs import bd09_to_wgs84, gcj02_to_wgs84
from gridkit.errors import GridkitWarning, InputError
from gridkit.io import tables as gk_io
from gridkit.io import validate as _validate
from gridkit.io.readers import BOUNDARY_COLUMNS, HOUSEHOLD_COLUMNS, read_boundaries, read_households

X0, Y0, D = 114.30, 30.60, 0.01


def _cell(i: int, j: int = 0) -> Polygon:
    """Box i (west to east), j (south to north) of a 0.01-degree lattice."""
    return box(X0 + i * D, Y0 + j * D, X0 + (i + 1) * D, Y0 + (j + 1) * D)


def _boundaries(**columns) -> gpd.GeoDataFrame:
    """Three adjacent communities; ``columns`` override / add attribute columns."""
    data = {
        "code": [101, 102, 103],
        "name": ["江汉社区", "汉兴社区", None],
        "街道": ["民族街道", "民族街道", None],
        "area_note": ["a", "b", "c"],
    }
    data.update(columns)
    return gpd.GeoDataFrame(data, geometry=[_cell(0), _cell(1), _cell(2)], crs=4326)


def _write(gdf: gpd.GeoDataFrame, path: Path, **kwargs) -> Path:
    with warnings.catch_warnings():
        # writing a fixture without CRS on purpose
        warnings.filterwarnings("ignore", "'crs' was not provided", UserWarning)
        gdf.to_file(path, engine="pyogrio", **kwargs)
    return path


def _zip_shapefile(gdf: gpd.GeoDataFrame, tmp_path: Path) -> Path:
    shp = _write(gdf, tmp_path / "communities.shp")
    archive = tmp_path / "communities.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in tmp_path.glob("communities.*"):
            if part.suffix != ".zip":
                zf.write(part, part.name)
    for part in tmp_path.glob("communities.*"):
        if part.suffix != ".zip":
            part.unlink()
    assert not shp.exists()
    return archive


def _csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


def _households_csv(tmp_path: Path, rows: list[str], header: str = "id,lon,lat,households") -> Path:
    return _csv(tmp_path / "households.csv", "\n".join([header, *rows]) + "\n")


def _assert_boundaries_contract(gdf: gpd.GeoDataFrame, n: int) -> None:
    assert tuple(gdf.columns[:5]) == BOUNDARY_COLUMNS
    assert isinstance(gdf.index, pd.RangeIndex)
    assert gdf.index.start == 0 and len(gdf) == n
    assert gdf.crs.to_epsg() == 4326
    assert pd.api.types.is_string_dtype(gdf["community_id"])
    assert pd.api.types.is_string_dtype(gdf["community_name"])
    assert gdf["row"].dtype == np.int64
    assert gdf["row"].tolist() == list(range(1, n + 1))
    assert all(isinstance(s, str) or s is None for s in gdf["street"])
    assert gdf.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    assert gdf.is_valid.all() and not gdf.is_empty.any()
    assert isinstance(gdf.attrs["source"], str)


def _assert_households_contract(gdf: gpd.GeoDataFrame, n: int) -> None:
    assert tuple(gdf.columns[:5]) == HOUSEHOLD_COLUMNS
    assert isinstance(gdf.index, pd.RangeIndex)
    assert gdf.index.start == 0 and len(gdf) == n
    assert gdf.crs.to_epsg() == 4326
    assert pd.api.types.is_string_dtype(gdf["household_id"])
    assert gdf["households"].dtype == np.int64
    assert (gdf["households"] >= 0).all()
    assert gdf["row"].dtype == np.int64
    assert gdf["row"].tolist() == list(range(1, n + 1))
    assert all(isinstance(b, str) or b is None for b in gdf["building_id"])
    assert gdf.geom_type.isin(["Point", "Polygon", "MultiPolygon"]).all()
    assert isinstance(gdf.attrs["source"], str)


# ---------------------------------------------------------------------------
# boundaries: formats and the contract
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["geojson", "json", "gpkg", "shp", "zip"])
def test_read_boundaries_every_format_reads_to_the_contract(tmp_path, fmt):
    source = _boundaries()
    if fmt == "zip":
        path = _zip_shapefile(source, tmp_path)
    else:
        driver = {"json": "GeoJSON"}.get(fmt)
        path = _write(
            source, tmp_path / f"communities.{fmt}", **({"driver": driver} if driver else {})
        )

    gdf = read_boundaries(path)

    _assert_boundaries_contract(gdf, 3)
    assert gdf["community_id"].tolist() == ["101", "102", "103"]  # ints, no ".0"
    assert gdf["community_name"].tolist() == ["江汉社区", "汉兴社区", "103"]  # default: the id
    assert gdf["street"].tolist() == ["民族街道", "民族街道", None]
    assert gdf.attrs["source"] == str(path)
    for got, want in zip(gdf.geometry, source.geometry, strict=True):
        assert got.normalize().equals_exact(want.normalize(), tolerance=1e-9)
    assert "area_note" in gdf.columns  # extra source columns are kept after the contract ones
    assert list(gdf.columns).index("area_note") > 4


def test_read_boundaries_projected_file_is_reprojected(tmp_path):
    source = _boundaries().to_crs(32650)
    gdf = read_boundaries(_write(source, tmp_path / "utm.gpkg"))
    _assert_boundaries_contract(gdf, 3)
    assert gdf.geometry.iloc[0].normalize().equals_exact(_cell(0).normalize(), tolerance=1e-7)


def test_read_boundaries_accepts_a_pathlib_path_and_a_str(tmp_path):
    path = _write(_boundaries(), tmp_path / "c.geojson")
    assert read_boundaries(str(path))["community_id"].tolist() == ["101", "102", "103"]


@pytest.mark.parametrize("column", ["community_id", "ID", "Code"])
def test_read_boundaries_detects_the_id_column_case_insensitively(tmp_path, column):
    source = _boundaries().rename(columns={"code": column})
    gdf = read_boundaries(_write(source, tmp_path / "c.geojson"))
    assert gdf["community_id"].tolist() == ["101", "102", "103"]
    assert list(gdf.columns).count("community_id") == 1
    assert column == "community_id" or column not in gdf.columns  # consumed, not an extra


def test_read_boundaries_explicit_columns(tmp_path):
    source = _boundaries(
        社区代码=["420103-001", "420103-002", "420103-003"],
        社区名=["a", "b", "c"],
        subdistrict=["s1", "s2", "s3"],
    )
    gdf = read_boundaries(
        _write(source, tmp_path / "c.gpkg"),
        id_col="社区代码",
        name_col="社区名",
        street_col="subdistrict",
    )
    assert gdf["community_id"].tolist() == ["420103-001", "420103-002", "420103-003"]
    assert gdf["community_name"].tolist() == ["a", "b", "c"]
    assert gdf["street"].tolist() == ["s1", "s2", "s3"]
    assert "code" in gdf.columns  # the auto candidate is an ordinary extra once id_col is given


def test_read_boundaries_float_ids_are_written_as_integers(tmp_path):
    source = _boundaries(code=[1.0, 2.0, 3.5])
    gdf = read_boundaries(_write(source, tmp_path / "c.geojson"))
    assert gdf["community_id"].tolist() == ["1", "2", "3.5"]


def test_read_boundaries_renames_extra_columns_that_collide(tmp_path):
    source = _boundaries(row=[7, 8, 9], Street="x")
    source = source.drop(columns="街道")
    gdf = read_boundaries(source)
    assert gdf["row"].tolist() == [1, 2, 3]
    assert gdf["row_src"].tolist() == [7, 8, 9]
    # `Street` is auto-detected as the street column (case-insensitive), so it is consumed.
    assert gdf["street"].tolist() == ["x", "x", "x"]


def test_read_boundaries_from_a_geodataframe_does_not_mutate_it():
    source = _boundaries()
    source.index = [10, 20, 30]
    before = source.copy()
    gdf = read_boundaries(source)
    pd.testing.assert_frame_equal(source, before)
    assert gdf.attrs["source"] == "<GeoDataFrame>"
    _assert_boundaries_contract(gdf, 3)


def test_read_boundaries_drops_z(tmp_path):
    source = _boundaries()
    source["geometry"] = shapely.force_3d(np.asarray(source.geometry.array), z=5.0)
    gdf = read_boundaries(_write(source, tmp_path / "z.geojson"))
    assert not gdf.has_z.any()


def test_read_boundaries_logs_one_info_line(tmp_path, caplog):
    path = _write(_boundaries(), tmp_path / "c.geojson")
    with caplog.at_level(logging.INFO, logger="gridkit.io"):
        read_boundaries(path)
    records = [r for r in caplog.records if r.name == "gridkit.io"]
    assert len(records) == 1
    assert records[0].levelno == logging.INFO
    assert "3 communities" in records[0].getMessage()


# ---------------------------------------------------------------------------
# boundaries: errors
# ---------------------------------------------------------------------------


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match=r"'.*nowhere\.geojson' not found.*check the path") as info:
        read_boundaries(tmp_path / "nowhere.geojson")
    assert isinstance(info.value, ValueError)
    assert not isinstance(info.value, FileNotFoundError)
    with pytest.raises(InputError, match=r"households file '.*nowhere\.csv' not found"):
        read_households(tmp_path / "nowhere.csv")


def test_unreadable_file_names_the_supported_formats(tmp_path):
    path = _csv(tmp_path / "broken.geojson", "{not json at all")
    with pytest.raises(
        InputError, match=r"cannot read .*broken\.geojson.*Supported formats: GeoJSON"
    ):
        read_boundaries(path)


def test_unsupported_extension_names_the_supported_formats(tmp_path):
    path = _csv(tmp_path / "boundaries.docx", "hello")
    with pytest.raises(InputError, match=r"boundaries\.docx.*Supported formats: .*GeoPackage"):
        read_boundaries(path)


def test_boundaries_from_a_csv_are_refused(tmp_path):
    path = _csv(tmp_path / "b.csv", "id,lon,lat\n1,114.3,30.6\n")
    with pytest.raises(InputError, match=r"b\.csv.*boundaries must be polygons.*GeoJSON"):
        read_boundaries(path)


def test_missing_id_column_lists_columns_and_the_option(tmp_path):
    path = _write(_boundaries().rename(columns={"code": "bianhao"}), tmp_path / "c.geojson")
    with pytest.raises(
        InputError,
        match=r"no community id column found \(looked for community_id, id, code.*"
        r"available columns: bianhao, name.*`id_col=\.\.\.` \(CLI `--community-id \.\.\.`\)",
    ):
        read_boundaries(path)


def test_explicit_id_column_that_does_not_exist(tmp_path):
    path = _write(_boundaries(), tmp_path / "c.geojson")
    with pytest.raises(
        InputError, match=r"column 'nope' given as `id_col='nope'` .*does not exist; available"
    ):
        read_boundaries(path, id_col="nope")


def test_gpkg_with_several_layers_needs_layer(tmp_path):
    path = tmp_path / "multi.gpkg"
    _write(_boundaries(), path, layer="communities")
    _write(_boundaries(), path, layer="streets")
    with pytest.raises(
        InputError,
        match=r"has 2 layers \(communities, streets\): pass `layer=\.\.\.` "
        r"\(CLI `--communities-layer",
    ):
        read_boundaries(path)
    assert len(read_boundaries(path, layer="streets")) == 3
    with pytest.raises(InputError, match=r"no layer 'roads'; its layers are communities, streets"):
        read_boundaries(path, layer="roads")


def test_file_without_crs_needs_input_crs(tmp_path):
    path = _write(_boundaries().set_crs(None, allow_override=True), tmp_path / "noprj.shp")
    assert not path.with_suffix(".prj").exists()
    with pytest.raises(
        InputError,
        match=r"noprj\.shp' declares no CRS: pass it as `input_crs=\.\.\.` \(CLI `--input-crs",
    ):
        read_boundaries(path)
    gdf = read_boundaries(path, input_crs="EPSG:4326")
    _assert_boundaries_contract(gdf, 3)


def test_unknown_input_crs(tmp_path):
    path = _write(_boundaries(), tmp_path / "c.geojson")
    with pytest.raises(
        InputError, match=r"unknown CRS 'wgs-1984x' given as `input_crs=\.\.\.`.*Use wgs84, gcj02"
    ):
        read_boundaries(path, input_crs="wgs-1984x")


def test_input_crs_that_cannot_be_transformed(tmp_path):
    path = _write(_boundaries(), tmp_path / "c.geojson")
    # pyproj knows "mars-2000" (an IAU Mars CRS) but cannot transform it to WGS84
    with pytest.raises(InputError, match=r"cannot transform from .* to EPSG:4326.*`input_crs="):
        read_boundaries(path, input_crs="mars-2000")


def test_null_and_empty_geometries_name_the_rows(tmp_path):
    source = gpd.GeoDataFrame(
        {"code": [1, 2, 3, 4]}, geometry=[_cell(0), None, Polygon(), _cell(3)], crs=4326
    )
    with pytest.raises(InputError) as info:
        read_boundaries(_write(source, tmp_path / "c.gpkg"))
    msg = str(info.value)
    assert re.search(r"no geometry at row 2: draw the missing features or delete", msg)
    assert re.search(r"empty geometry at row 3: draw the missing features or delete", msg)
    assert "2 problems found" in msg
    assert "1-based" in msg


def test_wrong_geometry_type_in_boundaries(tmp_path):
    source = gpd.GeoDataFrame(
        {"code": [1, 2, 3]},
        geometry=[_cell(0), LineString([(X0, Y0), (X0 + D, Y0 + D)]), Point(X0, Y0)],
        crs=4326,
    )
    with pytest.raises(
        InputError,
        match=r"wrong geometry type \(LineString at row 2; Point at row 3\): expected Polygon or "
        r"MultiPolygon\. .*`shapely.polygonize`",
    ):
        read_boundaries(source)


def test_duplicated_ids_name_values_and_rows(tmp_path):
    source = _boundaries(code=["A", "B", "A"])
    with pytest.raises(
        InputError,
        match=r"column `code` has 1 duplicated id \('A' at rows 1, 3\): give each community its "
        r"own id, or dissolve .*`gdf.dissolve\(by='code'",
    ):
        read_boundaries(_write(source, tmp_path / "c.geojson"))


def test_missing_ids_name_the_rows(tmp_path):
    source = _boundaries(code=["A", None, " "])
    with pytest.raises(
        InputError, match=r"column `code` has no id at rows 2, 3: give every community an id"
    ):
        read_boundaries(source)


def test_many_bad_rows_are_truncated_after_ten(tmp_path):
    n = 15
    source = gpd.GeoDataFrame({"code": ["X"] * n}, geometry=[_cell(i) for i in range(n)], crs=4326)
    with pytest.raises(InputError, match=r"'X' at rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 … and 5 more"):
        read_boundaries(source)


def test_all_row_problems_are_reported_at_once(tmp_path):
    source = gpd.GeoDataFrame(
        {"code": ["A", "A", None]},
        geometry=[_cell(0), LineString([(X0, Y0), (X0 + D, Y0)]), _cell(2)],
        crs=4326,
    )
    with pytest.raises(InputError, match=r"3 problems found") as info:
        read_boundaries(source)
    msg = str(info.value)
    assert "no id at row 3" in msg
    assert "'A' at rows 1, 2" in msg
    assert "LineString at row 2" in msg


def test_invalid_geometry_is_repaired_with_a_warning(tmp_path):
    bowtie = Polygon(
        [(X0 + D, Y0), (X0 + 2 * D, Y0 + D), (X0 + 2 * D, Y0), (X0 + D, Y0 + D), (X0 + D, Y0)]
    )
    source = gpd.GeoDataFrame({"code": [1, 2]}, geometry=[_cell(0), bowtie], crs=4326)
    assert not source.is_valid.all()
    path = _write(source, tmp_path / "c.geojson")
    with pytest.warns(
        GridkitWarning,
        match=r"repaired 1 invalid geometry with `shapely.make_valid`.*community 2 \(row 2\): "
        r"Self-intersection.*QGIS 'Fix geometries'",
    ) as record:
        gdf = read_boundaries(path)
    assert record[0].filename == __file__  # stacklevel points at the caller
    _assert_boundaries_contract(gdf, 2)
    assert gdf.geometry.iloc[1].geom_type == "MultiPolygon"
    assert gdf.geometry.iloc[1].area == pytest.approx(D * D / 2)


def test_invalid_geometry_that_cannot_be_repaired_is_an_error():
    flat = Polygon([(X0, Y0), (X0 + D, Y0), (X0 + 2 * D, Y0), (X0, Y0)])  # zero area
    source = gpd.GeoDataFrame({"code": [1, 2]}, geometry=[_cell(5), flat], crs=4326)
    with pytest.raises(
        InputError,
        match=r"invalid geometry at row 2 that `shapely.make_valid` cannot turn into a "
        r"polygon .*redraw these features",
    ):
        read_boundaries(source)


def test_swapped_boundaries_are_an_error(tmp_path):
    swapped = gpd.GeoDataFrame(
        {"code": [1, 2]},
        geometry=[box(Y0, X0, Y0 + D, X0 + D), box(Y0, X0 + D, Y0 + D, X0 + 2 * D)],
        crs=4326,
    )
    with pytest.raises(
        InputError,
        match=r"lon and lat look swapped at rows 1, 2 \(every row: latitude 114\.3.*exchange x "
        r"and y",
    ):
        read_boundaries(_write(swapped, tmp_path / "c.geojson"))


def test_projected_crs_with_degree_values_is_an_error(tmp_path):
    wrong = _boundaries().set_crs(32650, allow_override=True)
    with pytest.raises(
        InputError,
        match=r"projected EPSG:32650 .*looks like lon/lat degrees: pass `input_crs=\.\.\.`",
    ):
        read_boundaries(_write(wrong, tmp_path / "c.gpkg"))


def test_empty_file_is_an_error(tmp_path):
    path = _write(_boundaries().iloc[:0], tmp_path / "empty.gpkg")
    with pytest.raises(InputError, match=r"empty\.gpkg' contains no features"):
        read_boundaries(path)


# ---------------------------------------------------------------------------
# boundaries: overlaps
# ---------------------------------------------------------------------------


def _shifted_pair(overlap_degrees: float) -> gpd.GeoDataFrame:
    """Two communities, the second shifted west so they overlap by a strip."""
    second = shapely.affinity.translate(_cell(1), xoff=-overlap_degrees)
    return gpd.GeoDataFrame({"code": ["A", "B"]}, geometry=[_cell(0), second], crs=4326)


def test_overlapping_communities_are_an_error(tmp_path):
    with pytest.raises(
        InputError,
        match=r"overlap: 1 pair shares more than 1 m² \(A \(row 1\) and B \(row 2\): [\d,.]+ m², "
        r".*correct the boundaries so they do not overlap",
    ):
        read_boundaries(_write(_shifted_pair(0.002), tmp_path / "c.geojson"))


def test_community_inside_another_is_an_overlap():
    inner = box(X0 + 0.2 * D, Y0 + 0.2 * D, X0 + 0.4 * D, Y0 + 0.4 * D)
    source = gpd.GeoDataFrame({"code": ["A", "B"]}, geometry=[_cell(0), inner], crs=4326)
    with pytest.raises(InputError, match=r"A \(row 1\) and B \(row 2\)"):
        read_boundaries(source)


def test_slivers_under_one_square_metre_are_tolerated():
    # 5e-9 degree (0.5 mm) x 1,110 m: about 0.5 m²
    gdf = read_boundaries(_shifted_pair(5e-9))
    assert len(gdf) == 2


def test_thin_slivers_over_one_square_metre_warn():
    # 1e-6 degree (about 10 cm) x 1,110 m: about 107 m², but only 10 cm wide
    with pytest.warns(
        GridkitWarning, match=r"A \(row 1\) and B \(row 2\): [\d.]+ m², 0\.\d+ m wide.*Snap"
    ) as record:
        gdf = read_boundaries(_shifted_pair(1e-6))
    assert record[0].filename == __file__
    assert len(gdf) == 2


def test_check_boundaries_overlap_does_not_mutate_its_input():
    source = read_boundaries(_boundaries())
    before = source.copy()
    _validate.check_boundaries_overlap(source)
    pd.testing.assert_frame_equal(source, before)
    assert source.crs.to_epsg() == 4326


def test_check_boundaries_overlap_reports_largest_first_and_works_without_row():
    third = shapely.affinity.translate(_cell(2), xoff=-0.005)
    frame = gpd.GeoDataFrame(
        {"community_id": ["A", "B", "C"]},
        geometry=[_cell(0), shapely.affinity.translate(_cell(1), xoff=-0.001), third],
        crs=4326,
    )
    with pytest.raises(InputError, match=r"2 pairs .*\(B \(row 2\) and C \(row 3\).*A \(row 1\)"):
        _validate.check_boundaries_overlap(frame)


# ---------------------------------------------------------------------------
# households: formats and the contract
# ---------------------------------------------------------------------------


def test_read_households_csv_reads_to_the_contract(tmp_path):
    path = _households_csv(
        tmp_path,
        ["h1,114.301,30.601,12", "h2,114.302,30.602,0", "h3,114.303,30.603,7.0"],
        header="household_id,lon,lat,households",
    )
    gdf = read_households(path, input_crs="wgs84")
    _assert_households_contract(gdf, 3)
    assert gdf["household_id"].tolist() == ["h1", "h2", "h3"]
    assert gdf["households"].tolist() == [12, 0, 7]
    assert gdf["building_id"].tolist() == [None, None, None]
    assert gdf.geometry.iloc[0].equals(Point(114.301, 30.601))
    assert "lon" not in gdf.columns and "lat" not in gdf.columns  # consumed


def test_csv_without_input_crs_assumes_wgs84_with_a_warning(tmp_path):
    path = _households_csv(tmp_path, ["1,114.301,30.601,3"])
    with pytest.warns(
        GridkitWarning,
        match=r"declares no CRS \(a table\), so WGS84 lon/lat was assumed.*"
        r"`input_crs='gcj02'` \(CLI `--input-crs gcj02`\)",
    ) as record:
        gdf = read_households(path)
    assert record[0].filename == __file__
    assert gdf.geometry.iloc[0].equals(Point(114.301, 30.601))


def test_chinese_header_csv_with_bom(tmp_path):
    text = "编号,经度,纬度,户数,building\n1,114.301,30.601,120,B-1\n2,114.302,30.602,80,B-1\n"
    path = _csv(tmp_path / "楼栋.csv", text, encoding="utf-8-sig")
    gdf = read_households(path, input_crs="wgs84")
    _assert_households_contract(gdf, 2)
    assert gdf["households"].tolist() == [120, 80]
    assert gdf["building_id"].tolist() == ["B-1", "B-1"]
    assert gdf["household_id"].tolist() == ["1", "2"]  # no id_col: the row numbers
    assert gdf["编号"].tolist() == ["1", "2"]  # kept as text: leading zeros would survive


def test_gb18030_csv_from_chinese_excel(tmp_path):
    text = "小区,经度,纬度,户数\n银湖月色,114.301,30.601,1199\n月亮湾,114.302,30.602,2046\n"
    path = tmp_path / "excel.csv"
    path.write_bytes(text.encode("gb18030"))
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    gdf = read_households(path, input_crs="wgs84")
    assert gdf["小区"].tolist() == ["银湖月色", "月亮湾"]
    assert gdf["households"].tolist() == [1199, 2046]


def test_tsv_and_semicolon_txt(tmp_path):
    tsv = _csv(tmp_path / "h.tsv", "lng\tlat\thh\n114.301\t30.601\t5\n")
    txt = _csv(tmp_path / "h.txt", "LNG;LAT;HH\n114.301;30.601;5\n")
    for path in (tsv, txt):
        gdf = read_households(path, input_crs="wgs84")
        assert gdf["households"].tolist() == [5]
        assert gdf.geometry.iloc[0].equals(Point(114.301, 30.601))


def test_ids_keep_leading_zeros_and_explicit_columns(tmp_path):
    path = _households_csv(
        tmp_path,
        ["007,114.301,30.601,3,A", "008,114.302,30.602,4,"],
        header="门牌,lon,lat,人户,楼",
    )
    gdf = read_households(
        path, id_col="门牌", households_col="人户", building_col="楼", input_crs="wgs84"
    )
    assert gdf["household_id"].tolist() == ["007", "008"]
    assert gdf["households"].tolist() == [3, 4]
    assert gdf["building_id"].tolist() == ["A", None]


def test_without_households_column_each_row_is_one_household(tmp_path):
    path = _households_csv(tmp_path, ["a,114.301,30.601", "b,114.302,30.602"], "name,x,y")
    gdf = read_households(path, input_crs="wgs84")
    assert gdf["households"].tolist() == [1, 1]
    assert gdf["household_id"].tolist() == ["1", "2"]


def test_count_like_column_is_hinted_when_no_households_column(tmp_path):
    path = _households_csv(tmp_path, ["114.301,30.601,142"], header="lng,lat,total_dwelling_units")
    with pytest.warns(
        GridkitWarning,
        match=r"every row counts as one household, but column 'total_dwelling_units' looks like "
        r"household counts: pass `households_col='total_dwelling_units'`",
    ):
        gdf = read_households(path, input_crs="wgs84")
    assert gdf["households"].tolist() == [1]


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp"])
def test_read_households_vector_points_and_footprints(tmp_path, fmt):
    source = gpd.GeoDataFrame(
        {"hh": [10, 20, 30], "building": [5, 6, None]},
        geometry=[
            Point(114.301, 30.601),
            box(114.302, 30.602, 114.3021, 30.6021),
            MultiPoint([(114.303, 30.603)]),
        ],
        crs=4326,
    )
    if fmt == "shp":  # a shapefile holds one geometry type: a MultiPoint layer here
        source = source.iloc[[0, 2]].reset_index(drop=True)
        source = source.set_geometry(
            [MultiPoint([(114.301, 30.601)]), MultiPoint([(114.303, 30.603)])]
        )
    gdf = read_households(_write(source, tmp_path / f"h.{fmt}"))
    _assert_households_contract(gdf, len(source))
    assert gdf["households"].tolist() == source["hh"].tolist()
    assert gdf["building_id"].iloc[0] == "5"
    assert gdf.geometry.iloc[-1].geom_type == "Point"  # single-part MultiPoint simplified


def test_read_households_from_frames_does_not_mutate_them():
    table = pd.DataFrame({"lon": [114.301, 114.302], "lat": [30.601, 30.602], "hh": [3, 4]})
    table.index = [5, 9]
    before = table.copy()
    gdf = read_households(table, input_crs="wgs84")
    pd.testing.assert_frame_equal(table, before)
    assert gdf.attrs["source"] == "<DataFrame>"
    _assert_households_contract(gdf, 2)

    points = gpd.GeoDataFrame({"hh": [3]}, geometry=[Point(114.301, 30.601)], crs=4326)
    points.attrs["source"] = "my-points"
    before = points.copy()
    gdf = read_households(points)
    pd.testing.assert_frame_equal(points, before)
    assert gdf.attrs["source"] == "my-points"


def test_household_id_column_is_used_when_present(tmp_path):
    path = _households_csv(tmp_path, ["H-1,114.301,30.601"], header="Household_ID,lon,lat")
    gdf = read_households(path, input_crs="wgs84")
    assert gdf["household_id"].tolist() == ["H-1"]


# ---------------------------------------------------------------------------
# households: lon/lat detection
# ---------------------------------------------------------------------------


def test_single_suffixed_pair_is_detected(tmp_path):
    path = _households_csv(tmp_path, ["114.301,30.601"], header="lng_wgs84,lat_wgs84")
    gdf = read_households(path, input_crs="wgs84")
    assert gdf.geometry.iloc[0].equals(Point(114.301, 30.601))


def test_exact_names_win_over_suffixed_projected_columns(tmp_path):
    path = _households_csv(
        tmp_path, ["1.30,103.86,31467.8,31778.9"], header="lat,lng,x_svy21,y_svy21"
    )
    gdf = read_households(path, input_crs="wgs84")
    assert gdf.geometry.iloc[0].equals(Point(103.86, 1.30))
    assert "x_svy21" in gdf.columns


def test_several_lonlat_pairs_are_ambiguous(tmp_path):
    path = _households_csv(
        tmp_path,
        ["115.068,30.200,115.062,30.194,115.056,30.197"],
        header="lng_bd09,lat_bd09,lng_gcj02,lat_gcj02,lng_wgs84,lat_wgs84",
    )
    with pytest.raises(
        InputError,
        match=r"several lon/lat column pairs \(lng_bd09/lat_bd09, lng_gcj02/lat_gcj02, "
        r"lng_wgs84/lat_wgs84\).*`--lon-col`/`--lat-col`.*matching `input_crs` \(CLI "
        r"`--input-crs`\).*--input-crs wgs84",
    ):
        read_households(path)


def test_no_lonlat_columns(tmp_path):
    path = _households_csv(tmp_path, ["a,114.301 30.601"], header="name,经纬度")
    with pytest.raises(
        InputError,
        match=r"no longitude/latitude columns found .*available columns: name, 经纬度\. Pass them "
        r"as `lon_col=\.\.\.` \(CLI `--lon-col \.\.\.`\).*split it into two columns",
    ):
        read_households(path)


def test_only_one_of_lon_col_and_lat_col(tmp_path):
    path = _households_csv(tmp_path, ["1,114.301,30.601,3"])
    with pytest.raises(InputError, match=r"only one of `lon_col`/`lat_col` was given.*pass both"):
        read_households(path, lon_col="lon")


def test_lon_col_with_a_vector_file_is_refused(tmp_path):
    source = gpd.GeoDataFrame(geometry=[Point(114.301, 30.601)], crs=4326)
    with pytest.raises(InputError, match=r"only apply to tables \(CSV\).*drop these options"):
        read_households(source, lon_col="lon", lat_col="lat")


# ---------------------------------------------------------------------------
# households: errors
# ---------------------------------------------------------------------------


def test_bad_household_counts_are_all_reported(tmp_path):
    path = _households_csv(
        tmp_path,
        [
            "1,114.301,30.601,5",
            "2,114.302,30.602,-3",
            "3,114.303,30.603,12.5",
            "4,114.304,30.604,",
            "5,114.305,30.605,abc",
        ],
    )
    with pytest.raises(InputError, match=r"4 problems found") as info:
        read_households(path, input_crs="wgs84")
    msg = str(info.value)
    fix = r"household counts must be whole numbers ≥ 0: correct these rows in the file, or pass "
    fix += r"`households_col=\.\.\.` \(CLI `--households-col \.\.\.`\)"
    assert re.search(r"column `households` is negative at row 2 \(-3\): " + fix, msg)
    assert re.search(r"column `households` is not a whole number at row 3 \(12\.5\): " + fix, msg)
    assert re.search(r"column `households` is empty at row 4: fill in the count", msg)
    assert re.search(r"column `households` is not a number at row 5 \('abc'\): " + fix, msg)
    assert msg.startswith("households '")
    assert "households.csv" in msg


def test_duplicated_household_ids(tmp_path):
    path = _households_csv(tmp_path, ["a,114.301,30.601,1", "a,114.302,30.602,1"])
    with pytest.raises(
        InputError,
        match=r"column `id` has 1 duplicated id \('a' at rows 1, 2\): give each row its own id",
    ):
        read_households(path, id_col="id", input_crs="wgs84")


def test_missing_and_non_numeric_coordinates(tmp_path):
    path = _households_csv(tmp_path, ["1,114.301,30.601,1", "2,,30.602,1", "3,114.3°,30.603,1"])
    with pytest.raises(InputError) as info:
        read_households(path, input_crs="wgs84")
    msg = str(info.value)
    assert re.search(r"column `lon` is empty at row 2: fill in the coordinate", msg)
    assert re.search(r"column `lon` is not a number at row 3 \('114\.3°'\): write decimal", msg)


def test_swapped_lonlat_columns(tmp_path):
    path = _households_csv(tmp_path, ["1,30.601,114.301,1", "2,30.602,114.302,1"])
    with pytest.raises(
        InputError,
        match=r"lon and lat look swapped at rows 1, 2 \(every row: latitude 114\.301, 114\.302 is "
        r"beyond ±90.*pass `lon_col='lat'` \(CLI `--lon-col lat`\) and `lat_col='lon'`",
    ):
        read_households(path, input_crs="wgs84")


def test_one_swapped_row(tmp_path):
    path = _households_csv(tmp_path, ["1,114.301,30.601,1", "2,30.602,114.302,1"])
    with pytest.raises(
        InputError, match=r"lon and lat look swapped at row 2 \(1 row: latitude 114\.302"
    ):
        read_households(path, input_crs="wgs84")


def test_projected_metres_in_a_lonlat_table(tmp_path):
    path = _households_csv(tmp_path, ["1,530000.5,3385000.2,1", "2,530100.0,3385100.0,1"])
    with pytest.raises(
        InputError,
        match=r"coordinates look like projected metres, not lon/lat degrees \(x 530000…530100.*"
        r"rows 1, 2\): pass the data's projected CRS as `input_crs=\.\.\.` \(CLI `--input-crs "
        r"\.\.\.`\), e\.g\. EPSG:4547",
    ):
        read_households(path)


def test_projected_table_with_input_crs(tmp_path):
    x, y = gpd.GeoSeries([Point(114.301, 30.601)], crs=4326).to_crs(4547).iloc[0].coords[0]
    path = _households_csv(tmp_path, [f"1,{x},{y},1"])
    gdf = read_households(path, input_crs="EPSG:4547")
    assert gdf.geometry.iloc[0].distance(Point(114.301, 30.601)) < 1e-7


def test_nullable_integer_ids_with_missing_values(tmp_path):
    table = pd.DataFrame(
        {
            "household_id": pd.array([7, None], dtype="Int64"),
            "lon": [114.301, 114.302],
            "lat": [30.601, 30.602],
        }
    )
    with pytest.raises(InputError, match=r"column `household_id` has no id at row 2"):
        read_households(table, input_crs="wgs84")


def test_a_few_metre_values_among_lonlat_rows_are_out_of_range(tmp_path):
    path = _households_csv(tmp_path, ["1,114.301,30.601,1", "2,530100.0,3385100.0,1"])
    with pytest.raises(InputError, match=r"outside lon ±180 / lat ±90 at row 2 \(x 530100"):
        read_households(path, input_crs="wgs84")


def test_read_households_logs_one_info_line(tmp_path, caplog):
    path = _households_csv(tmp_path, ["1,114.301,30.601,3", "2,114.302,30.602,4"])
    with caplog.at_level(logging.INFO, logger="gridkit.io"):
        read_households(path, input_crs="wgs84")
    records = [r for r in caplog.records if r.name == "gridkit.io"]
    assert [r.levelno for r in records] == [logging.INFO]
    assert "2 household rows (7 households)" in records[0].getMessage()


def test_out_of_range_coordinates_that_are_not_swapped(tmp_path):
    path = _households_csv(tmp_path, ["1,114.301,30.601,1", "2,200.5,95.0,1"])
    with pytest.raises(
        InputError, match=r"outside lon ±180 / lat ±90 at row 2 \(x 200\.5; y 95\): correct"
    ):
        read_households(path, input_crs="wgs84")


def test_wrong_geometry_type_in_households():
    source = gpd.GeoDataFrame(
        {"hh": [1, 2]},
        geometry=[Point(114.301, 30.601), LineString([(114.3, 30.6), (114.31, 30.61)])],
        crs=4326,
    )
    with pytest.raises(
        InputError, match=r"LineString at row 2\): expected Point or Polygon or MultiPolygon"
    ):
        read_households(source)


def test_households_vector_without_crs(tmp_path):
    source = gpd.GeoDataFrame({"hh": [1]}, geometry=[Point(114.301, 30.601)])
    path = _write(source, tmp_path / "h.shp")
    with pytest.raises(InputError, match=r"h\.shp' declares no CRS.*`--input-crs"):
        read_households(path)


def test_invalid_footprint_is_repaired_with_a_warning():
    bowtie = Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])
    bowtie = shapely.affinity.translate(shapely.affinity.scale(bowtie, 1e-4, 1e-4), X0, Y0)
    source = gpd.GeoDataFrame({"hh": [1, 2]}, geometry=[Point(X0, Y0), bowtie], crs=4326)
    with pytest.warns(GridkitWarning, match=r"repaired 1 invalid geometry .*row 2: Self-inter"):
        gdf = read_households(source)
    assert gdf.is_valid.all()


# ---------------------------------------------------------------------------
# households: GCJ-02 / BD-09
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "inverse"), [("gcj02", gcj02_to_wgs84), ("bd09", bd09_to_wgs84)]
)
def test_chinese_web_map_coordinates_are_converted(tmp_path, system, inverse):
    lon = np.array([114.301, 114.35, 115.06])
    lat = np.array([30.601, 30.55, 30.19])
    rows = [
        f"{i},{x},{y},1" for i, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True))
    ]
    gdf = read_households(_households_csv(tmp_path, rows), input_crs=system)
    want_lon, want_lat = inverse(lon, lat)
    np.testing.assert_allclose(gdf.geometry.x, want_lon, rtol=0, atol=1e-12)
    np.testing.assert_allclose(gdf.geometry.y, want_lat, rtol=0, atol=1e-12)
    # the offset is real: hundreds of metres, not a no-op
    assert np.abs(gdf.geometry.x.to_numpy() - lon).max() > 1e-3


def test_gcj02_vector_file_labelled_wgs84_is_converted(tmp_path):
    source = gpd.GeoDataFrame({"code": ["A"]}, geometry=[_cell(0)], crs=4326)
    gdf = read_boundaries(_write(source, tmp_path / "amap.geojson"), input_crs="GCJ-02")
    x, y = gcj02_to_wgs84(*np.asarray(_cell(0).exterior.coords).T)
    got = np.asarray(gdf.geometry.iloc[0].exterior.coords)
    np.testing.assert_allclose(np.sort(got[:, 0]), np.sort(x), atol=1e-12)
    np.testing.assert_allclose(np.sort(got[:, 1]), np.sort(y), atol=1e-12)


# ---------------------------------------------------------------------------
# _validate.check_swapped_against
# ---------------------------------------------------------------------------


def _small_world() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Boundaries near (50 E, 10 N), where swapped points are still valid lon/lat."""
    boundaries = gpd.GeoDataFrame(
        {"community_id": ["A"]}, geometry=[box(50.0, 10.0, 50.1, 10.1)], crs=4326
    )
    boundaries.attrs["source"] = "b.geojson"
    households = gpd.GeoDataFrame(
        {"household_id": ["1", "2", "3"]},
        geometry=[Point(50.01, 10.01), Point(50.05, 10.05), Point(50.09, 10.02)],
        crs=4326,
    )
    households.attrs["source"] = "h.csv"
    return households, boundaries


def test_check_swapped_against_accepts_aligned_data():
    households, boundaries = _small_world()
    before = households.copy(), boundaries.copy()
    _validate.check_swapped_against(households, boundaries)
    pd.testing.assert_frame_equal(households, before[0])
    pd.testing.assert_frame_equal(boundaries, before[1])


def test_check_swapped_against_detects_lat_lon_points():
    households, boundaries = _small_world()
    swapped = households.set_geometry(
        shapely.transform(np.asarray(households.geometry.array), lambda c: c[:, ::-1])
    )
    swapped.attrs["source"] = "h.csv"
    with pytest.raises(
        InputError,
        match=r"households in 'h\.csv' look like \(lat, lon\) instead of \(lon, lat\): only 0% "
        r"of the 3 household points .*'b\.geojson'.*100% would .*Swap them: .*`--lon-col`",
    ):
        _validate.check_swapped_against(swapped, boundaries)


# ------------------------------------------------------------ id cells as text

_blank = st.sampled_from([None, float("nan"), ""])
_TEXT_COLUMNS = st.one_of(
    st.lists(st.one_of(st.text(max_size=6), _blank), max_size=12),  # a CSV column
    st.lists(st.one_of(st.integers(-(2**70), 2**70), st.none()), max_size=12),
    st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(-(10**6), 10**6).map(float),
            st.none(),
        ),
        max_size=12,
    ),
    st.lists(  # any mix, as a GeoJSON property can be
        st.one_of(st.text(max_size=4), st.integers(), st.floats(), st.booleans(), _blank),
        max_size=12,
    ),
)


@settings(max_examples=300, deadline=None)
@given(cells=_TEXT_COLUMNS)
def test_property_vectorised_text_matches_cell_by_cell(cells):
    """The vectorised id conversion gives exactly what converting each cell gives."""
    values = pd.Series(cells, dtype=object)
    expected = [gk_io.cell_text(v) for v in cells]
    assert gk_io._texts(values).tolist() == expected
    typed = pd.Series(cells)  # as pandas would type the column itself
    assert gk_io._texts(typed).tolist() == [gk_io.cell_text(v) for v in typed.tolist()]


def _problems() -> _validate.Problems:
    return _validate.Problems("t.csv", "households")


@settings(max_examples=100, deadline=None)
@given(cells=st.lists(st.one_of(st.text(max_size=8), st.floats(-1e3, 1e3), _blank), max_size=12))
def test_property_coordinate_parsing_strips_text_cells(cells):
    """A text column parses as if every cell were stripped first; numbers parse as themselves."""
    rows = np.arange(1, len(cells) + 1)
    stripped = [c.strip() if isinstance(c, str) else c for c in cells]
    got = _validate.parse_coordinates(
        pd.Series(cells, dtype=object), rows, column="lon", problems=_problems()
    )
    want = _validate.parse_coordinates(
        pd.Series(stripped, dtype=object), rows, column="lon", problems=_problems()
    )
    np.testing.assert_array_equal(got, want)
    padded = [f" {c} " if isinstance(c, str) else c for c in cells]
    again = _validate.parse_coordinates(
        pd.Series(padded, dtype=object), rows, column="lon", problems=_problems()
    )
    np.testing.assert_array_equal(again, want)
