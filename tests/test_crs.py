"""Tests for gridkit.crs: GCJ-02 / BD-09 conversions, GeoDataFrame wrappers, UTM choice."""

from __future__ import annotations

import re

# Independent implementations as oracles (both in the `test` extra: a missing one must fail).
import coordTransform as coord_transform
import eviltransform
import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Point, Polygon

from gridkit import crs
from gridkit.errors import InputError

GEOD = pyproj.Geod(ellps="WGS84")
FIX_TEXT = "use wgs84, gcj02, bd09 or an EPSG code such as EPSG:4490"

# (lon, lat) far enough inside both implementations' "in China" boxes
# (gridkit/eviltransform: 72.004-137.8347 x 0.8293-55.8271, coordTransform: 73.66-135.05 x
# 3.86-53.55) that the box test cannot differ.
LON_RANGE = (74.0, 134.9)
LAT_RANGE = (4.0, 53.4)


def _distance_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


@pytest.fixture(scope="module")
def china_grid() -> tuple[np.ndarray, np.ndarray]:
    """2,000 WGS84 points on a regular 50 x 40 grid over China."""
    lon, lat = np.meshgrid(np.linspace(*LON_RANGE, 50), np.linspace(*LAT_RANGE, 40))
    return lon.ravel(), lat.ravel()


@pytest.fixture(scope="module")
def random_points() -> tuple[np.ndarray, np.ndarray]:
    """500 random points in China (fixed seed)."""
    rng = np.random.default_rng(20240601)
    return rng.uniform(*LON_RANGE, 500), rng.uniform(*LAT_RANGE, 500)


# ---------------------------------------------------------------------------
# point conversions
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forward", "inverse", "min_offset_m"),
    [
        (crs.wgs84_to_gcj02, crs.gcj02_to_wgs84, 10.0),
        (crs.wgs84_to_bd09, crs.bd09_to_wgs84, 500.0),
    ],
    ids=["gcj02", "bd09"],
)
def test_round_trip_within_1cm(china_grid, forward, inverse, min_offset_m):
    lon, lat = china_grid
    fx, fy = forward(lon, lat)
    # the shift is real, so the round trip is not trivially exact
    assert _distance_m(lon, lat, fx, fy).min() > min_offset_m
    bx, by = inverse(fx, fy)
    error = _distance_m(lon, lat, bx, by)
    assert error.max() < 0.01
    # measured ~5e-7 m (gcj02) and ~2e-6 m (bd09); keep a margin over float noise
    assert error.max() < 1e-4


@pytest.mark.parametrize(
    ("forward", "inverse"),
    [
        (crs.wgs84_to_gcj02, crs.gcj02_to_wgs84),
        (crs.gcj02_to_bd09, crs.bd09_to_gcj02),
        (crs.wgs84_to_bd09, crs.bd09_to_wgs84),
    ],
    ids=["gcj02", "bd09-step", "bd09"],
)
def test_inverse_reproduces_input_to_1e9_degrees(random_points, forward, inverse):
    lon, lat = random_points
    rx, ry = forward(*inverse(lon, lat))
    assert np.abs(rx - lon).max() < 1e-9
    assert np.abs(ry - lat).max() < 1e-9


def test_iterative_inverse_beats_one_step_formula(china_grid):
    lon, lat = china_grid
    gx, gy = crs.wgs84_to_gcj02(lon, lat)
    crude_x, crude_y = coord_transform.gcj02_to_wgs84(gx, gy)  # the one-step approximation
    crude = _distance_m(lon, lat, np.asarray(crude_x), np.asarray(crude_y))
    ours = _distance_m(lon, lat, *crs.gcj02_to_wgs84(gx, gy))
    assert crude.max() > 1.0  # metres: why the iteration is needed
    assert ours.max() < 1e-4


@pytest.mark.parametrize(
    ("ours", "theirs_name"),
    [
        (crs.wgs84_to_gcj02, "wgs84_to_gcj02"),
        (crs.gcj02_to_bd09, "gcj02_to_bd09"),
        (crs.wgs84_to_bd09, "wgs84_to_bd09"),
    ],
)
def test_forward_agrees_with_coordtransform(random_points, ours, theirs_name):
    lon, lat = random_points
    ox, oy = ours(lon, lat)
    tx, ty = getattr(coord_transform, theirs_name)(lon, lat)
    # same constants and formula: agreement to float rounding (measured ~3e-14)
    np.testing.assert_allclose(ox, tx, rtol=0, atol=1e-10)
    np.testing.assert_allclose(oy, ty, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    ("ours", "theirs_name"),
    [
        (crs.wgs84_to_gcj02, "wgs2gcj"),
        (crs.gcj02_to_bd09, "gcj2bd"),
        (crs.wgs84_to_bd09, "wgs2bd"),
    ],
)
def test_forward_agrees_with_eviltransform(random_points, ours, theirs_name):
    lon, lat = random_points
    ox, oy = ours(lon, lat)
    theirs = getattr(eviltransform, theirs_name)
    ty, tx = np.array([theirs(b, a) for a, b in zip(lon, lat, strict=True)]).T  # (lat, lng)
    # eviltransform uses a = 6378137 instead of Krasovsky's 6378245 (measured <= 1.5e-7)
    np.testing.assert_allclose(ox, tx, rtol=0, atol=1e-6)
    np.testing.assert_allclose(oy, ty, rtol=0, atol=1e-6)


def test_bd09_to_gcj02_close_to_closed_form(random_points):
    """Both packages use the closed-form inverse, which is off by up to ~0.2 m (~2e-6 deg)."""
    lon, lat = random_points
    ox, oy = crs.bd09_to_gcj02(lon, lat)
    tx, ty = coord_transform.bd09_to_gcj02(lon, lat)
    np.testing.assert_allclose(ox, tx, rtol=0, atol=3e-6)
    np.testing.assert_allclose(oy, ty, rtol=0, atol=3e-6)
    ey, ex = np.array([eviltransform.bd2gcj(b, a) for a, b in zip(lon, lat, strict=True)]).T
    np.testing.assert_allclose(ox, ex, rtol=0, atol=3e-6)
    np.testing.assert_allclose(oy, ey, rtol=0, atol=3e-6)


def test_scalar_and_broadcast_inputs():
    lon, lat = crs.wgs84_to_gcj02(116.391, 39.907)
    assert isinstance(lon, np.ndarray) and lon.shape == () and lon.dtype == np.float64
    assert float(lon) == pytest.approx(116.39724, abs=1e-5)
    assert float(lat) == pytest.approx(39.90840, abs=1e-5)
    bx, by = crs.bd09_to_wgs84([[116.4, 116.5], [116.6, 116.7]], 39.9)
    assert bx.shape == by.shape == (2, 2)
    assert by.dtype == np.float64
    ex, ey = crs.gcj02_to_wgs84(np.array([]), np.array([]))
    assert ex.shape == ey.shape == (0,)


def test_inputs_not_mutated():
    lon = np.array([114.3, 115.05])
    lat = np.array([30.6, 30.2])
    crs.wgs84_to_gcj02(lon, lat)
    crs.gcj02_to_wgs84(lon, lat)
    crs.bd09_to_wgs84(lon, lat)
    np.testing.assert_array_equal(lon, [114.3, 115.05])
    np.testing.assert_array_equal(lat, [30.6, 30.2])


OUTSIDE = np.array(
    [
        (-0.1276, 51.5072),  # London
        (139.6917, 35.6895),  # Tokyo (east of 137.8347)
        (151.2093, -33.8688),  # Sydney
        (60.0, 40.0),  # west of the box
        (100.0, 60.0),  # north of the box
        (100.0, 0.5),  # south of the box
        (0.0, 0.0),
    ]
)


@pytest.mark.parametrize("func", [crs.wgs84_to_gcj02, crs.gcj02_to_wgs84])
def test_points_outside_china_unchanged(func):
    lon, lat = func(OUTSIDE[:, 0], OUTSIDE[:, 1])
    np.testing.assert_array_equal(lon, OUTSIDE[:, 0])
    np.testing.assert_array_equal(lat, OUTSIDE[:, 1])


def test_mixed_inside_outside_and_nan():
    lon, lat = crs.gcj02_to_wgs84([139.6917, 114.3, np.nan], [35.6895, 30.6, 30.0])
    assert (lon[0], lat[0]) == (139.6917, 35.6895)
    assert abs(lon[1] - 114.3) > 1e-3
    assert np.isnan(lon[2]) and lat[2] == 30.0


def test_bd09_step_applies_outside_china_and_round_trips():
    lon, lat = OUTSIDE[:, 0], OUTSIDE[:, 1]
    bx, by = crs.wgs84_to_bd09(lon, lat)
    cx, cy = crs.gcj02_to_bd09(lon, lat)  # no GCJ-02 shift outside China
    np.testing.assert_array_equal(bx, cx)
    np.testing.assert_array_equal(by, cy)
    wx, wy = crs.bd09_to_wgs84(bx, by)
    np.testing.assert_allclose(wx, lon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(wy, lat, rtol=0, atol=1e-9)


@settings(max_examples=200, deadline=None, database=None)
@given(
    lon=st.floats(min_value=LON_RANGE[0], max_value=LON_RANGE[1]),
    lat=st.floats(min_value=LAT_RANGE[0], max_value=LAT_RANGE[1]),
)
def test_property_gcj02_round_trip(lon, lat):
    back_lon, back_lat = crs.gcj02_to_wgs84(*crs.wgs84_to_gcj02(lon, lat))
    assert abs(float(back_lon) - lon) < 1e-8
    assert abs(float(back_lat) - lat) < 1e-8


# ---------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("gcj02", "gcj02"),
        ("gcj-02", "gcj02"),
        ("GCJ02", "gcj02"),
        ("GCJ-02", "gcj02"),
        ("amap", "gcj02"),
        ("Gaode", "gcj02"),
        ("tencent", "gcj02"),
        ("bd09", "bd09"),
        ("BD-09", "bd09"),
        ("baidu", "bd09"),
        ("wgs84", "wgs84"),
        ("WGS-84", "wgs84"),
        ("epsg:4326", "wgs84"),
        ("EPSG:4326", "wgs84"),
        ("4326", "wgs84"),
        (" wgs84 ", "wgs84"),
    ],
)
def test_normalise_crs_name_aliases(alias, expected):
    assert crs.normalise_crs_name(alias) == expected
    assert expected in crs.SYSTEMS


@pytest.mark.parametrize("value", ["EPSG:4490", "EPSG:32650", 4490, None, "xyz"])
def test_normalise_crs_name_passes_other_values_through(value):
    assert crs.normalise_crs_name(value) == value


def test_normalise_crs_name_keeps_crs_objects():
    value = pyproj.CRS.from_epsg(4547)
    assert crs.normalise_crs_name(value) is value


def test_systems():
    assert crs.SYSTEMS == ("wgs84", "gcj02", "bd09")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("EPSG:32650", True),
        (pyproj.CRS.from_epsg(4547), True),
        (4326, False),
        ("EPSG:4490", False),
        ("gcj02", False),
        ("baidu", False),
        (None, False),
    ],
)
def test_is_projected(value, expected):
    assert crs.is_projected(value) is expected


def test_is_projected_unknown_raises():
    with pytest.raises(InputError, match=re.escape(FIX_TEXT)):
        crs.is_projected("abc")


# ---------------------------------------------------------------------------
# GeoDataFrames
# ---------------------------------------------------------------------------

SQUARE = Polygon([(115.0, 30.2), (115.01, 30.2), (115.01, 30.21), (115.0, 30.21)])


def _sample_gdf(crs_value=None) -> gpd.GeoDataFrame:
    """Huangshi: a point, a polygon with a hole and a multipolygon."""
    holed = Polygon(
        SQUARE.exterior.coords,
        [[(115.002, 30.202), (115.004, 30.202), (115.004, 30.204), (115.002, 30.204)]],
    )
    multi = MultiPolygon([shapely.affinity.translate(SQUARE, 0.05), SQUARE])
    gdf = gpd.GeoDataFrame(
        {"name": ["p", "poly", "multi"]},
        geometry=[Point(115.05, 30.2), holed, multi],
        index=[10, 11, 12],
        crs=crs_value,
    )
    gdf.attrs["source"] = "communities.geojson"
    return gdf


def _coords(gdf: gpd.GeoDataFrame) -> np.ndarray:
    return shapely.get_coordinates(gdf.geometry.array)


@pytest.mark.parametrize("input_label", [None, "EPSG:4326"])
@pytest.mark.parametrize(
    ("system", "to_func"),
    [("gcj02", crs.gcj02_to_wgs84), ("bd09", crs.bd09_to_wgs84), ("Amap", crs.gcj02_to_wgs84)],
)
def test_to_wgs84_shifts_every_vertex(input_label, system, to_func):
    gdf = _sample_gdf(input_label)
    before = gdf.copy()
    out = crs.to_wgs84(gdf, system)

    assert out.crs == "EPSG:4326"
    assert out.geom_type.tolist() == ["Point", "Polygon", "MultiPolygon"]
    assert out.index.tolist() == [10, 11, 12]
    assert out["name"].tolist() == ["p", "poly", "multi"]
    assert out.attrs["source"] == "communities.geojson"
    assert len(out.geometry.iloc[1].interiors) == 1

    src = _coords(gdf)
    expected = np.column_stack(to_func(src[:, 0], src[:, 1]))
    got = _coords(out)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert _distance_m(src[:, 0], src[:, 1], got[:, 0], got[:, 1]).min() > 100.0

    # input not mutated
    assert gdf.crs == before.crs
    assert gdf.geometry.geom_equals_exact(before.geometry, tolerance=0).all()
    assert out is not gdf


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_from_wgs84_inverts_to_wgs84(system):
    gdf = _sample_gdf("EPSG:4326")
    shifted = crs.from_wgs84(gdf, system)
    assert shifted.crs == "EPSG:4326"  # lon/lat in that system: no pyproj code exists
    assert shifted.geom_type.tolist() == gdf.geom_type.tolist()
    assert np.abs(_coords(shifted) - _coords(gdf)).max() > 1e-3
    back = crs.to_wgs84(shifted, system)
    np.testing.assert_allclose(_coords(back), _coords(gdf), rtol=0, atol=1e-9)
    assert gdf.geometry.geom_equals_exact(_sample_gdf("EPSG:4326").geometry, tolerance=0).all()


def test_from_wgs84_reprojects_other_input_first():
    gdf = _sample_gdf("EPSG:4326")
    direct = crs.from_wgs84(gdf, "gcj02")
    via_utm = crs.from_wgs84(gdf.to_crs(32650), "gcj02")
    np.testing.assert_allclose(_coords(via_utm), _coords(direct), rtol=0, atol=1e-9)


def test_from_wgs84_pyproj_targets():
    gdf = _sample_gdf("EPSG:4326")
    utm = crs.from_wgs84(gdf, "EPSG:32650")
    assert utm.crs == "EPSG:32650"
    np.testing.assert_allclose(_coords(utm), _coords(gdf.to_crs(32650)))
    same = crs.from_wgs84(gdf, "wgs84")
    assert same.crs == "EPSG:4326" and same is not gdf
    np.testing.assert_array_equal(_coords(same), _coords(gdf))


def test_from_wgs84_errors():
    with pytest.raises(InputError, match="no CRS"):
        crs.from_wgs84(_sample_gdf(), "gcj02")
    with pytest.raises(InputError, match=re.escape(FIX_TEXT)):
        crs.from_wgs84(_sample_gdf("EPSG:4326"), "qqq")


def test_to_wgs84_keeps_z():
    gdf = gpd.GeoDataFrame(geometry=[Point(115.05, 30.2, 21.5), Point(115.0, 30.0)])
    out = crs.to_wgs84(gdf, "gcj02")
    assert out.geometry.iloc[0].has_z and out.geometry.iloc[0].z == 21.5
    assert not out.geometry.iloc[1].has_z


def test_to_wgs84_projected_input():
    wgs = _sample_gdf("EPSG:4326")
    utm = wgs.to_crs(32650)
    from_label = crs.to_wgs84(utm)  # uses gdf.crs
    unlabelled = utm.set_crs(None, allow_override=True)
    from_arg = crs.to_wgs84(unlabelled, "EPSG:32650")
    from_int = crs.to_wgs84(unlabelled, 32650)
    from_obj = crs.to_wgs84(unlabelled, pyproj.CRS.from_epsg(32650))
    for out in (from_label, from_arg, from_int, from_obj):
        assert out.crs == "EPSG:4326"
        assert out.geom_type.tolist() == wgs.geom_type.tolist()
        np.testing.assert_allclose(_coords(out), _coords(wgs), rtol=0, atol=1e-9)
    assert unlabelled.crs is None  # not mutated


@pytest.mark.parametrize("source", ["wgs84", "WGS-84", "EPSG:4326", 4326])
def test_to_wgs84_wgs84_input_is_a_labelled_copy(source):
    gdf = _sample_gdf()
    out = crs.to_wgs84(gdf, source)
    assert out.crs == "EPSG:4326" and gdf.crs is None
    np.testing.assert_array_equal(_coords(out), _coords(gdf))


def test_to_wgs84_unknown_crs_raises():
    with pytest.raises(InputError, match=re.escape(FIX_TEXT)) as info:
        crs.to_wgs84(_sample_gdf(), "xyz")
    message = str(info.value)
    assert "'xyz'" in message and "`input_crs`" in message
    assert "communities.geojson" in message
    assert isinstance(info.value, ValueError)


def test_to_wgs84_param_name_in_message():
    with pytest.raises(InputError, match="`crs` "):
        crs.to_wgs84(_sample_gdf(), "xyz", param="crs")


def test_to_wgs84_without_any_crs_raises():
    with pytest.raises(InputError, match="has no CRS"):
        crs.to_wgs84(_sample_gdf())


def test_to_wgs84_gcj02_on_projected_data_raises():
    utm = _sample_gdf("EPSG:4326").to_crs(32650)
    with pytest.raises(InputError, match="labelled EPSG:32650"):
        crs.to_wgs84(utm, "gcj02")
    with pytest.raises(InputError, match="not lon/lat"):
        crs.to_wgs84(utm.set_crs(None, allow_override=True), "gcj02")
    with pytest.raises(InputError, match="not lon/lat"):
        crs.to_wgs84(utm.set_crs(None, allow_override=True), "wgs84")


# ---------------------------------------------------------------------------
# local metric CRS
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lon", "lat", "epsg"),
    [(115.05, 30.2, 32650), (103.85, 1.35, 32648), (114.3, 30.6, 32650)],
    ids=["huangshi", "singapore", "wuhan"],
)
def test_local_metric_crs_utm(lon, lat, epsg):
    gdf = gpd.GeoDataFrame(geometry=[Point(lon, lat)], crs="EPSG:4326")
    assert crs.local_metric_crs(gdf).to_epsg() == epsg


def test_local_metric_crs_any_geographic_input_and_geoseries():
    gdf = gpd.GeoDataFrame(geometry=[Point(115.05, 30.2)], crs="EPSG:4326")
    assert crs.local_metric_crs(gdf.to_crs(4490)).to_epsg() == 32650  # CGCS2000 lon/lat
    assert crs.local_metric_crs(gdf.geometry).to_epsg() == 32650


def test_local_metric_crs_keeps_metric_projection():
    gdf = _sample_gdf("EPSG:4326").to_crs(4547)  # CGCS2000 / 3-degree Gauss-Kruger CM 114E
    assert crs.local_metric_crs(gdf) == pyproj.CRS.from_epsg(4547)
    utm = _sample_gdf("EPSG:4326").to_crs(32650)
    assert crs.local_metric_crs(utm).to_epsg() == 32650


def test_local_metric_crs_replaces_web_mercator():
    gdf = _sample_gdf("EPSG:4326").to_crs(3857)  # metres, but 15 % scale error at 30°N
    assert crs.local_metric_crs(gdf).to_epsg() == 32650


def test_local_metric_crs_errors():
    with pytest.raises(InputError, match="no CRS"):
        crs.local_metric_crs(_sample_gdf())
    empty = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs="EPSG:4326"))
    with pytest.raises(InputError, match="no geometry"):
        crs.local_metric_crs(empty)
