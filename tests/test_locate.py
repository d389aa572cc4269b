"""``gridkit locate`` / :func:`gridkit.locate.locate_points`: the grid of any point."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from batchfiles import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit.crs import local_metric_crs
from gridkit.errors import InputError
from gridkit.locate import LOCATE_COLUMNS, locate_points, write_located
from gridkit.staffing import assign_workers, make_roster


@pytest.fixture(scope="module")
def plan_dir(sample_plan, tmp_path_factory):
    out = tmp_path_factory.mktemp("locate") / "plan"
    sample_plan.write(out)
    return out


@pytest.fixture(scope="module")
def staffed_dir(sample_plan, plan_dir):
    roster = make_roster(sample_plan.grids, seed=0)
    plan = assign_workers(sample_plan.grids, roster, time_limit=5)
    out = plan_dir.parent / "staffing"
    plan.write(out)
    return out


def _random_points(grids: gpd.GeoDataFrame, n: int, seed: int = 0) -> gpd.GeoDataFrame:
    """``n`` points over the grids' bounding box grown by 10 % (some fall outside)."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = grids.total_bounds
    dx, dy = (x1 - x0) * 0.1, (y1 - y0) * 0.1
    x = rng.uniform(x0 - dx, x1 + dx, n)
    y = rng.uniform(y0 - dy, y1 + dy, n)
    ids = [f"P{i}" for i in range(n)]
    return gpd.GeoDataFrame({"id": ids}, geometry=gpd.points_from_xy(x, y), crs=4326)


def _agrees_with_point_in_polygon(located: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> None:
    """Every answer against an independent test: GEOS ``covers`` through a spatial join."""
    pts = gpd.GeoDataFrame(geometry=located.geometry.to_numpy(), crs=4326)
    hits = gpd.sjoin(pts, grids[["grid_code", "geometry"]], predicate="within", how="left")
    covering = gpd.sjoin(pts, grids[["grid_code", "geometry"]], predicate="intersects")
    inside_code = hits["grid_code"].groupby(level=0).first()
    covered_by = covering.groupby(level=0)["grid_code"].agg(set)
    for i, row in located.iterrows():
        if row["match"] == "inside":
            assert inside_code.get(i) == row["grid_code"], i
        elif row["match"] == "edge":
            assert row["grid_code"] == min(covered_by[i]), i
            assert pd.isna(inside_code.get(i)), i
        else:
            assert i not in covered_by.index, i
            assert row["reason"].startswith("outside every grid")
    # the nearest grid of an outside point is the nearest in metres
    outside = located[located["match"] == "nearest"]
    if len(outside):
        metric = local_metric_crs(grids)
        g = grids.to_crs(metric)
        p = outside.to_crs(metric).geometry
        nearest = np.array([g.distance(q).min() for q in p.iloc[:200]])
        assert np.allclose(outside["distance_m"].iloc[:200], nearest, atol=0.06)


def test_100k_random_points_agree_with_point_in_polygon(plan_dir):
    grids = gpd.read_file(plan_dir / "grids.geojson")
    points = _random_points(grids, 100_000)
    located = locate_points(plan_dir, points, id_col="id")
    assert len(located) == len(points)
    assert located["point_id"].tolist() == points["id"].tolist()  # one answer per row, in order
    assert list(located.columns[: len(LOCATE_COLUMNS)]) == list(LOCATE_COLUMNS)
    assert set(located["match"]) == {"inside", "nearest"}
    assert located["grid_code"].notna().all()
    _agrees_with_point_in_polygon(located, grids)
    by_code = grids.set_index("grid_code")
    for field in ("grid_name", "community_id", "community_name", "street", "street_code",
                  "district_code", "grid_type"):
        expected = by_code.loc[located["grid_code"], field].to_numpy()
        assert (located[field].to_numpy() == expected).all()


def test_points_on_grid_lines_go_to_the_first_grid_in_code_order(plan_dir):
    """Vertices shared by two grids lie exactly on both: the first covering grid by code."""
    grids = gpd.read_file(plan_dir / "grids.geojson")
    coords = [{tuple(c) for c in shapely.get_coordinates(g)} for g in grids.geometry]
    shared = set()
    for i in range(len(coords)):
        for j in range(i + 1, len(coords)):
            shared |= coords[i] & coords[j]
    shared = sorted(shared)[:300]
    assert len(shared) > 20
    pts = gpd.GeoDataFrame(geometry=shapely.points(shared), crs=4326)
    located = locate_points(plan_dir, pts)
    # coordinates rounded to 7 decimals (1 cm) may leave a vertex a hair inside a third grid
    assert (located["match"] == "edge").mean() > 0.9
    _agrees_with_point_in_polygon(located, grids)


@settings(max_examples=25, deadline=None)
@given(
    xs=st.lists(st.integers(-2, 42), min_size=1, max_size=30),
    ys=st.lists(st.integers(-2, 22), min_size=1, max_size=30),
)
def test_property_every_point_answered_on_a_tiling(xs, ys):
    """A 4 x 2 tiling of 10 m-ish cells; points on a lattice hit insides, lines and corners."""
    step = 0.0001
    cells, codes = [], []
    for i in range(4):
        for j in range(2):
            x0, y0 = 114 + i * 10 * step, 30 + j * 10 * step
            cells.append(shapely.box(x0, y0, x0 + 10 * step, y0 + 10 * step))
            codes.append(f"G{7 - (2 * i + j)}")  # code order differs from layer order
    grids = gpd.GeoDataFrame({"grid_code": codes, "community_id": "C"}, geometry=cells, crs=4326)
    n = min(len(xs), len(ys))
    pts = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(
            [114 + x * step for x in xs[:n]], [30 + y * step for y in ys[:n]]
        ),
        crs=4326,
    )
    located = locate_points(grids, pts)
    assert len(located) == n
    _agrees_with_point_in_polygon(located, grids)


def test_roster_adds_the_people_of_each_grid(plan_dir, staffed_dir):
    grids = gpd.read_file(plan_dir / "grids.geojson")
    points = gpd.GeoDataFrame(geometry=grids.representative_point(), crs=4326)
    with_roster = locate_points(plan_dir, points, roster=staffed_dir)
    roster = pd.read_csv(staffed_dir / "roster.csv", dtype=str)
    workers = roster[roster["role"] == "grid_worker"].groupby("grid_code")["name"].agg(set)
    for _, row in with_roster.iterrows():
        assert set(row["grid_worker"].split("、")) == workers[row["grid_code"]]
    assert with_roster["police"].notna().all()
    # the staffed grid layer carries the same people: no roster needed
    from_layer = locate_points(staffed_dir, points)
    assert (from_layer["grid_worker"] == with_roster["grid_worker"]).all()


def test_cli_writes_csv_and_geojson(plan_dir, staffed_dir, tmp_path):
    grids = gpd.read_file(plan_dir / "grids.geojson")
    pts = _random_points(grids, 500, seed=1)
    table = pd.DataFrame({"编号": pts["id"], "经度": pts.geometry.x, "纬度": pts.geometry.y})
    table.loc[0, "编号"] = "=HYPERLINK(1)"
    csv = tmp_path / "requests.csv"
    table.to_csv(csv, index=False)
    out = tmp_path / "answers.csv"
    code, stdout, err = run_cli([
        "locate", "--grids", str(plan_dir), "--points", str(csv), "--roster", str(staffed_dir),
        "--id-col", "编号", "--input-crs", "wgs84", "--out", str(out), "--lang", "en",
    ])  # fmt: skip
    assert code == 0, err
    assert "located 500 points" in stdout
    answers = pd.read_csv(out, dtype=str, encoding="utf-8-sig")
    assert len(answers) == 500 and answers["grid_code"].notna().all()
    assert answers.loc[0, "point_id"] == "'=HYPERLINK(1)"  # never runs as a formula
    assert {"grid_worker", "police", "lon", "lat"} <= set(answers.columns)
    code, _, err = run_cli([
        "locate", "--grids", str(plan_dir), "--points", str(csv), "--id-col", "编号",
        "--out", str(tmp_path / "a.geojson"), "-q",
    ])  # fmt: skip
    assert code == 0, err
    layer = gpd.read_file(tmp_path / "a.geojson")
    assert len(layer) == 500 and (layer.geom_type == "Point").all()


def test_bad_points_file_names_the_rows(plan_dir, tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("id,lon,lat\n1,114.3,30.6\n2,abc,30.6\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"(?s)points '.*bad\.csv'.*`lon`.*row 2"):
        locate_points(plan_dir, csv, input_crs="wgs84")
    code, _, err = run_cli(["locate", "--grids", str(tmp_path), "--points", str(csv),
                            "--out", str(tmp_path / "x.csv")])  # fmt: skip
    assert code == 2 and "grids.geojson" in err


def test_write_located_replaces_the_file_whole(plan_dir, tmp_path):
    grids = gpd.read_file(plan_dir / "grids.geojson")
    located = locate_points(plan_dir, _random_points(grids, 50))
    path = write_located(located, tmp_path / "a.csv")
    first = path.read_bytes()
    write_located(located.head(10), path)
    assert len(pd.read_csv(path, encoding="utf-8-sig")) == 10 and path.read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]
