"""Tests of gridkit.datasets: the synthetic sample district and its bundled files."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from gridkit.datasets import synthetic as datasets
from gridkit.datasets.synthetic import get_path, make_households, make_sample, write_sample
from gridkit.errors import InputError

METRIC = "EPSG:32650"
COMMUNITY_COLUMNS = ["community_id", "community_name", "street", "street_code", "geometry"]
BUILDING_COLUMNS = ["building_id", "households", "compound", "floors", "community_id", "geometry"]


@pytest.fixture(scope="module")
def sample() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    return make_sample(seed=0)


@pytest.fixture(scope="module")
def metric(sample) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    communities, buildings = sample
    return communities.to_crs(METRIC), buildings.to_crs(METRIC)


@pytest.fixture(scope="module")
def per_community(sample):
    _, buildings = sample
    return buildings.groupby("community_id")["households"].agg(["sum", "size"])


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_equal_frames(sample):
    communities, buildings = make_sample(seed=0)
    assert_geodataframe_equal(communities, sample[0])
    assert_geodataframe_equal(buildings, sample[1])


def test_different_seed_gives_different_frames(sample):
    communities, buildings = make_sample(seed=1)
    assert len(communities) == len(sample[0])  # same design ...
    assert not shapely.equals_exact(
        communities.geometry.to_numpy(), sample[0].geometry.to_numpy(), tolerance=1e-6
    ).all()  # ... different layout
    assert len(buildings) != len(sample[1]) or not np.array_equal(
        buildings["households"].to_numpy(), sample[1]["households"].to_numpy()
    )


def test_randomness_is_local():
    state = np.random.get_state()
    make_sample(seed=3)
    after = np.random.get_state()
    assert state[0] == after[0]
    np.testing.assert_array_equal(state[1], after[1])


# --------------------------------------------------------------------------- contract


def test_columns_crs_and_index(sample):
    communities, buildings = sample
    assert list(communities.columns) == COMMUNITY_COLUMNS
    assert list(buildings.columns) == BUILDING_COLUMNS
    for frame in sample:
        assert frame.crs.to_epsg() == 4326
        assert frame.index.equals(pd.RangeIndex(len(frame)))
    assert np.issubdtype(buildings["households"].dtype, np.integer)
    assert np.issubdtype(buildings["floors"].dtype, np.integer)
    assert (buildings["floors"] >= 1).all()
    assert (buildings.geom_type == "Point").all()


def test_sizes(sample):
    communities, buildings = sample
    assert len(communities) >= 30
    assert communities["street"].nunique() >= 3
    assert buildings["households"].sum() >= 60_000
    assert communities["community_id"].isin(buildings["community_id"]).all()


def test_ids_codes_and_names(sample):
    communities, buildings = sample
    assert communities["community_id"].is_unique
    assert communities["community_name"].is_unique
    assert buildings["building_id"].is_unique
    assert communities["community_id"].str.fullmatch(r"420204\d{6}").all()
    assert communities["street_code"].str.fullmatch(r"420204\d{3}").all()
    assert (communities["community_id"].str[:9] == communities["street_code"]).all()
    assert communities["community_id"].str[6:9].astype(int).between(1, 99).all()
    assert communities["community_name"].str.endswith("社区").all()
    assert communities["street"].str.endswith("街道").all()
    # one street name per street code and vice versa
    pairs = communities[["street", "street_code"]].drop_duplicates()
    assert pairs["street"].is_unique and pairs["street_code"].is_unique
    assert buildings["building_id"].str.fullmatch(r"B\d{5}").all()
    assert buildings["compound"].str.endswith("小区").all()
    # a compound lies in one community
    assert (buildings.groupby("compound")["community_id"].nunique() == 1).all()


# --------------------------------------------------------------------------- geometry


def test_communities_are_valid_polygons(metric):
    communities, _ = metric
    assert communities.is_valid.all()
    assert (communities.geom_type == "Polygon").all()
    assert (communities.area > 50_000).all()  # no slivers: each at least 5 ha
    rings = shapely.get_exterior_ring(communities.to_crs(4326).geometry.to_numpy())
    assert shapely.is_ccw(rings).all()  # RFC 7946 winding


def test_communities_tile_the_district(metric):
    communities, _ = metric
    geoms = communities.geometry.to_numpy()
    district = shapely.union_all(geoms)
    total = shapely.area(geoms).sum()
    assert district.geom_type == "Polygon"
    assert len(district.interiors) == 0  # no holes: no gaps inside the district
    assert abs(district.area - total) / total < 1e-6
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(shapely.intersection(geoms[left[pairs]], geoms[right[pairs]]))
    assert overlap.max() < 1e-3  # m²
    # neighbours share edges, not just corners: the district is one connected piece
    assert pairs.sum() >= len(geoms) - 1
    for _, street in communities.groupby("street_code"):
        assert shapely.union_all(street.geometry.to_numpy()).geom_type == "Polygon"


def test_every_building_in_exactly_its_community(sample, metric):
    communities, buildings = sample
    joined = gpd.sjoin(buildings, communities, how="left", predicate="within")
    assert joined.index.is_unique  # in at most one
    assert joined["community_id_right"].notna().all()  # in at least one
    assert (joined["community_id_left"] == joined["community_id_right"]).all()

    communities_m, buildings_m = metric
    edges = communities_m.set_index("community_id").boundary
    own_edge = edges.loc[buildings_m["community_id"]].to_numpy()
    assert shapely.distance(buildings_m.geometry.to_numpy(), own_edge).min() >= 5.0


def test_households_per_building(sample):
    _, buildings = sample
    households = buildings["households"]
    oversize = buildings[households > 200]
    assert len(oversize) == 1
    assert oversize["households"].iloc[0] > 800
    assert households[households <= 200].between(12, 200).all()


def test_awkward_and_large_communities(sample, per_community):
    _, buildings = sample
    totals = per_community["sum"]
    assert (totals < 400).sum() == 1  # one community too small for any grid
    assert totals.min() == 250
    assert (totals == 850).sum() == 1  # one tight community: two grids of 400-450
    tower = buildings.loc[buildings["households"].idxmax()]
    assert totals[tower["community_id"]] > tower["households"]  # the tower has neighbours
    large = per_community[totals >= 5000]
    assert len(large) >= 2
    assert large["size"].between(60, 130).all()
    typical = per_community[(totals >= 1000) & (totals < 5000)]
    assert len(typical) >= 25
    assert typical["size"].median() >= 15


def test_sample_sits_in_huangshi(sample):
    communities, _ = sample
    minx, miny, maxx, maxy = communities.total_bounds
    assert 114.9 < minx < maxx < 115.2
    assert 30.1 < miny < maxy < 30.3


# --------------------------------------------------------------------------- bundled files


def test_bundled_files_match_fresh_sample(sample):
    for name, fresh in zip(("communities", "buildings"), sample, strict=True):
        bundled = gpd.read_file(get_path(name), engine="pyogrio")
        assert bundled.crs.to_epsg() == 4326
        assert list(bundled.columns) == list(fresh.columns)
        assert len(bundled) == len(fresh)
        for col in fresh.columns.drop("geometry"):
            kind = np.int64 if col in ("households", "floors") else str
            np.testing.assert_array_equal(
                bundled[col].to_numpy().astype(kind),
                fresh[col].to_numpy().astype(kind),
                err_msg=f"{name}.{col}: regenerate with gridkit.datasets.write_sample()",
            )
        same = shapely.equals_exact(
            shapely.normalize(bundled.geometry.to_numpy()),
            shapely.normalize(fresh.geometry.to_numpy()),
            tolerance=1e-6,
        )
        assert same.all(), f"{name}: geometries differ; run gridkit.datasets.write_sample()"


def test_write_sample_is_byte_deterministic(tmp_path):
    first = write_sample(tmp_path / "a")
    second = write_sample(tmp_path / "b")
    assert set(first) == {"communities", "buildings"}
    for name in first:
        assert first[name].name == get_path(name).name
        assert first[name].read_bytes() == second[name].read_bytes()
    text = first["communities"].read_text(encoding="utf-8")
    assert '"crs"' not in text  # RFC 7946: WGS84 implied
    assert not re.search(r"\d\.\d{8,}", text)  # at most 7 decimals


def test_get_path_known_names():
    assert get_path("communities").is_file()
    assert get_path("buildings").is_file()


def test_get_path_unknown_name():
    with pytest.raises(InputError, match=r"'households'.*'communities', 'buildings'"):
        get_path("households")
    with pytest.raises(ValueError, match="unknown sample file"):
        get_path("")


def test_get_path_missing_file(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "DATA_DIR", tmp_path)
    with pytest.raises(InputError, match=r"missing.*write_sample\(\)"):
        get_path("communities")


# --------------------------------------------------------------------------- households


def test_make_households(sample):
    _, buildings = sample
    before = buildings.copy()
    households = make_households(buildings, seed=0)
    assert_geodataframe_equal(buildings, before)  # input untouched
    assert len(households) == buildings["households"].sum()
    assert households["household_id"].is_unique
    assert households["household_id"].iloc[0] == "B00001-0001"
    assert (households["households"] == 1).all()
    assert households.crs == buildings.crs
    counts = households.groupby("building_id").size()
    assert counts.reindex(buildings["building_id"]).to_numpy().tolist() == (
        buildings["households"].tolist()
    )
    seq = households["household_id"].str.split("-").str[1].astype(int)
    assert (seq.groupby(households["building_id"]).max() == counts).all()

    # jitter of at most 3 m around the building point
    points = buildings.set_index("building_id").geometry.to_crs(METRIC)
    moved = households.to_crs(METRIC).geometry.to_numpy()
    home = points.loc[households["building_id"]].to_numpy()
    distance = shapely.distance(moved, home)
    assert distance.max() <= 3.0
    assert distance.mean() > 0.5

    again = make_households(buildings, seed=0)
    assert_geodataframe_equal(households, again)


def test_make_households_metric_and_subset(metric):
    _, buildings = metric
    subset = buildings[buildings["community_id"] == buildings["community_id"].iloc[0]]
    households = make_households(subset, seed=5)
    assert len(households) == subset["households"].sum()
    assert households.crs == subset.crs
    assert set(households["community_id"]) == {subset["community_id"].iloc[0]}
    home = subset.set_index("building_id").geometry.loc[households["building_id"]].to_numpy()
    assert shapely.distance(households.geometry.to_numpy(), home).max() <= 3.0
