"""Grid borders follow roads and compound walls: cells are built inside blocks.

A community is cut along its barriers and compound outlines before any cell is
drawn (:func:`gridkit.units.community_blocks`), so a grid polygon can only cross a
road where the plan itself puts buildings of both sides in one grid, and the
report names every such crossing.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

import gridkit as gk
from gridkit.units.cells import block_cells, community_blocks

X0, Y0 = 500_000.0, 3_340_000.0
CRS = 32650


def community(width: float, height: float) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"community_id": ["420204001001"], "community_name": ["路东社区"], "street": ["测试街道"]},
        geometry=[shapely.box(X0, Y0, X0 + width, Y0 + height)],
        crs=CRS,
    )


def buildings(xs, ys, households: int) -> gpd.GeoDataFrame:
    gx, gy = np.meshgrid(xs, ys)
    return gpd.GeoDataFrame(
        {"households": np.full(gx.size, households)},
        geometry=gpd.points_from_xy(gx.ravel() + X0, gy.ravel() + Y0),
        crs=CRS,
    )


def test_no_grid_polygon_crosses_the_road():
    """A road at x = 300 m; the nearest buildings are 40 m west and 5 m east of it.

    Voronoi cells of the whole community would reach 17.5 m west of the road; cells
    built per block stop at it.  Each side holds 2,800 households: a feasible plan
    on each side, so no grid needs to cross.
    """
    west = buildings(np.arange(20, 261, 40.0), np.arange(20, 400, 40.0), 40)
    east = buildings(np.arange(305, 546, 40.0), np.arange(20, 400, 40.0), 40)
    homes = gpd.GeoDataFrame(
        {"households": np.r_[west["households"], east["households"]]},
        geometry=np.r_[west.geometry.to_numpy(), east.geometry.to_numpy()],
        crs=CRS,
    )
    road = shapely.LineString([(X0 + 300, Y0 - 50), (X0 + 300, Y0 + 450)])
    roads = gpd.GeoDataFrame({"name": ["中山路"]}, geometry=[road], crs=CRS)
    plan = gk.make_grids(community(560, 400), homes, barriers=roads, jobs=1, time_limit=1)
    grids = plan.grids.to_crs(CRS)
    assert (grids["status"] == "ok").all()
    inside = shapely.length(shapely.intersection(shapely.buffer(grids.geometry, -0.01), road))
    assert np.all(inside == 0), inside
    notes = " ".join(plan.report["communities"][0]["notes"])
    assert "cross a barrier" not in notes
    # the cells themselves stop at the road
    cells = plan.units.units
    assert cells.geometry.apply(lambda c: c.buffer(-0.01).intersects(road)).sum() == 0


def test_compounds_stay_inside_one_grid_polygon():
    """Four walled compounds of 6 x 4 buildings (480 households each) with open ground between."""

    xs = np.r_[np.arange(20, 200, 30.0), np.arange(240, 420, 30.0)]
    ys = np.r_[np.arange(30, 151, 40.0), np.arange(250, 371, 40.0)]
    homes = buildings(xs, ys, 20)
    walls = gpd.GeoDataFrame(
        {"name": ["小区00", "小区10", "小区01", "小区11"]},
        geometry=[
            shapely.box(X0 + 5, Y0 + 10, X0 + 190, Y0 + 170),
            shapely.box(X0 + 225, Y0 + 10, X0 + 410, Y0 + 170),
            shapely.box(X0 + 5, Y0 + 230, X0 + 190, Y0 + 390),
            shapely.box(X0 + 225, Y0 + 230, X0 + 410, Y0 + 390),
        ],
        crs=CRS,
    )
    plan = gk.make_grids(community(430, 400), homes, compounds=walls, jobs=1, time_limit=1)
    grids = plan.grids.to_crs(CRS)
    for wall in walls.geometry:
        share = shapely.area(shapely.intersection(grids.geometry.to_numpy(), wall)) / wall.area
        assert share.max() >= 0.999, share


def test_blocks_tile_the_community_and_empty_blocks_join_a_neighbour():
    outline = shapely.box(0, 0, 300, 100)
    roads = np.array(
        [shapely.LineString([(100, -5), (100, 105)]), shapely.LineString([(200, -5), (200, 105)])]
    )
    blocks = community_blocks(outline, roads)
    assert len(blocks) == 3
    assert abs(shapely.area(shapely.union_all(blocks)) - outline.area) < 1e-6
    # no building in the middle block: it joins a neighbouring cell; cells tile the community
    points = shapely.points([[50, 50], [60, 20], [250, 50]])
    cells, notes = block_cells(points, outline, blocks)
    assert abs(sum(c.area for c in cells) - outline.area) < 1e-6
    assert abs(shapely.area(shapely.union_all(cells)) - outline.area) < 1e-6
    assert any("hold no building" in n for n in notes)
    # the cells of the west block never reach past the first road
    for cell in cells[:2]:
        assert cell.bounds[2] <= 200 + 1e-6


def test_a_dead_end_road_cuts_nothing():
    outline = shapely.box(0, 0, 100, 100)
    stub = np.array([shapely.LineString([(50, -5), (50, 40)])])
    assert len(community_blocks(outline, stub)) == 1


# ---------------------------------------------------- compounds known only as points


def compound_points(with_buildings: bool = True) -> gpd.GeoDataFrame:
    """Compound points as a listing site gives them: households and buildings per compound."""
    table = {
        "household_id": ["C1", "C2", "C3", "C4", "C5"],
        "name": ["锦绣花园", "幸福里", "桃源居", "滨江苑", "和平小区"],
        "households": [2400, 300, 350, 500, 420],
        "buildings": [30, 6, 5, 8, 7],
    }
    frame = gpd.GeoDataFrame(
        table,
        geometry=gpd.points_from_xy(
            np.array([200, 60, 340, 80, 320]) + X0, np.array([200, 60, 60, 340, 340]) + Y0
        ),
        crs=CRS,
    )
    return frame if with_buildings else frame.drop(columns="buildings")


def test_a_compound_above_the_maximum_is_split_by_building_number():
    plan = gk.make_grids(community(400, 400), compound_points(), jobs=1, time_limit=1)
    grids = plan.grids
    split = grids[grids["status"] == "split_compound"]
    assert len(split) == 3  # 2,400 households of 80 each: 10 buildings a grid
    assert split["households"].tolist() == [800, 800, 800]
    assert split["buildings"].tolist() == [10, 10, 10]
    assert "oversize_building" not in set(grids["status"])
    assert set(grids["status"]) <= {"ok", "split_compound"}
    # the three grids divide the compound's cell: together they are one polygon
    units = plan.units.units
    cell = units.loc[units["split_of"] == "锦绣花园"].geometry.union_all()
    joined = split.to_crs(CRS).geometry.union_all()
    assert abs(joined.area - cell.area) / cell.area < 1e-6
    notes = " ".join(plan.report["communities"][0]["notes"])
    assert "锦绣花园 (2400 households, 30 buildings) is split into 3 grids" in notes
    assert "1-10, 11-20, 21-30" in notes
    # the compound's row goes to one of its grids; every household is in a grid
    assert plan.assignments["grid_code"].notna().all()
    assert grids["households"].sum() == 3970


def test_a_compound_without_buildings_is_an_oversize_compound():
    plan = gk.make_grids(
        community(400, 400),
        compound_points().assign(buildings=[None, 6, 5, 8, 7]),
        jobs=1,
        time_limit=1,
    )
    statuses = plan.grids["status"].tolist()
    assert statuses.count("oversize_compound") == 1
    notes = " ".join(plan.report["communities"][0]["notes"])
    assert "compound 锦绣花园 has 2400 households" in notes and "buildings" in notes


def test_a_bad_building_count_is_an_input_error():
    bad = compound_points().assign(buildings=["30", "six", 5, 8, 7])
    try:
        gk.make_grids(community(400, 400), bad, jobs=1, time_limit=1)
    except gk.errors.InputError as exc:
        assert "'buildings'" in str(exc) and "row 2" in str(exc) and "six" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("no error")


def test_regenerate_keeps_the_split_of_an_unchanged_compound(tmp_path):
    from gridkit.regenerate import regenerate

    first = gk.make_grids(community(400, 400), compound_points(), jobs=1, time_limit=1)
    first.write(tmp_path / "gen0")
    again = regenerate(tmp_path / "gen0", community(400, 400), compound_points(), jobs=1,
                       time_limit=1)  # fmt: skip
    before = first.grids.set_index("grid_code")[["households", "status"]]
    after = again.grids.set_index("grid_code")[["households", "status"]]
    assert before.equals(after)


def test_a_large_compound_is_divided_along_building_lines_and_small_ones_stay_whole():
    """Compound A: 30 buildings of 40 households (1,200); B and C: 12 of 40 (480) each."""
    a = buildings(np.arange(20, 181, 32.0), np.arange(20, 181, 40.0), 40)  # 6 x 5
    b = buildings(np.arange(240, 361, 40.0), np.arange(20, 101, 40.0), 40)  # 4 x 3
    c = buildings(np.arange(240, 361, 40.0), np.arange(140, 221, 40.0), 40)  # 4 x 3
    homes = gpd.GeoDataFrame(
        {"households": np.r_[a["households"], b["households"], c["households"]]},
        geometry=np.r_[a.geometry.to_numpy(), b.geometry.to_numpy(), c.geometry.to_numpy()],
        crs=CRS,
    )
    walls = gpd.GeoDataFrame(
        {"name": ["A苑", "B苑", "C苑"]},
        geometry=[
            shapely.box(X0 + 5, Y0 + 5, X0 + 200, Y0 + 200),
            shapely.box(X0 + 225, Y0 + 5, X0 + 380, Y0 + 115),
            shapely.box(X0 + 225, Y0 + 125, X0 + 380, Y0 + 235),
        ],
        crs=CRS,
    )
    plan = gk.make_grids(community(400, 250), homes, compounds=walls, jobs=1, time_limit=1)
    grids = plan.grids.to_crs(CRS)
    assert (grids["status"] == "ok").all()
    geoms = grids.geometry.to_numpy()
    for wall in walls.geometry.to_numpy()[1:]:  # kept whole: inside one grid polygon
        share = shapely.area(shapely.intersection(geoms, wall)) / wall.area
        assert share.max() >= 0.999, share
    # A is divided along building lines: its buildings go to 2 grids, which cover it
    big = walls.geometry.iloc[0]
    units = plan.units.units
    codes = plan.assignments["grid_code"].to_numpy()[: len(a)]
    assert len(set(codes)) == 2
    holding = grids[grids["grid_code"].isin(set(codes))].geometry.union_all()
    assert shapely.area(shapely.intersection(holding, big)) / big.area >= 0.999
    notes = plan.report["communities"][0]["notes"]
    assert any("A苑" in n and "split into 2 grids" in n for n in notes)
    assert units["compound"].notna().all()


def partition_on_files(tmp_path, rows: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``gridkit partition`` (the shard path) on the test community and ``rows``; its grids."""
    from tests.batchfiles import run_cli

    rows.to_crs(4326).to_file(tmp_path / "h.geojson")
    community(400, 400).to_crs(4326).to_file(tmp_path / "c.geojson")
    code, _, err = run_cli([
        "partition", "--communities", str(tmp_path / "c.geojson"),
        "--households", str(tmp_path / "h.geojson"), "--out", str(tmp_path / "out"),
        "--no-map", "--jobs", "1", "--time-limit", "1", "-q",
    ])  # fmt: skip
    assert code == 0, err
    return gpd.read_file(tmp_path / "out" / "grids.geojson")


def test_cli_splits_compounds_and_keeps_an_unknown_count_whole(tmp_path):
    """Through `gridkit partition` (the shard path): an empty building count is no error."""
    grids = partition_on_files(tmp_path, compound_points().assign(buildings=[30, None, 5, None, 7]))
    assert (grids["status"] == "split_compound").sum() == 3
    both = gk.make_grids(community(400, 400), compound_points().assign(
        buildings=[30, None, 5, None, 7]), jobs=1, time_limit=1)  # fmt: skip
    assert sorted(grids["households"]) == sorted(both.grids["households"])


def test_audit_checks_a_split_compound_as_a_group(tmp_path):
    """audit credits the grids of a compound split by building number as one group."""
    from tests.batchfiles import run_cli

    grids = partition_on_files(tmp_path, compound_points())
    split = grids[grids["status"] == "split_compound"]
    assert set(split["compound"]) == {"锦绣花园"} and len(split) == 3
    assert grids["compound"].isna().sum() == len(grids) - 3
    code, out, err = run_cli([
        "audit", "--grids", str(tmp_path / "out"), "--households", str(tmp_path / "h.geojson"),
        "--out", str(tmp_path / "audit"), "--lang", "en",
    ])  # fmt: skip
    assert code == 0, err
    assert f"in bounds: {len(grids)} of {len(grids)} grids" in out, out
    audited = gpd.read_file(tmp_path / "audit" / "audit.geojson")
    assert sorted(audited["households"]) == sorted(grids["households"])
    assert (audited["problems"].fillna("") == "").all()


def test_compound_points_a_few_metres_apart_stay_two_compounds():
    """Rows that are whole compounds are never grouped by distance (only household points are)."""
    rows = compound_points()
    rows.loc[1, "geometry"] = shapely.Point(rows.geometry.iloc[2].x - 3, rows.geometry.iloc[2].y)
    units = gk.build_units(gk.read_boundaries(community(400, 400)), gk.read_households(rows))
    assert len(units.units) == len(rows)
