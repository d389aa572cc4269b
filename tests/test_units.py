"""Tests for gridkit.units (buildings → units with cells) and gridkit.adjacency.

Communities are small lon/lat boxes around 115.0 E, 30.2 N (UTM zone 50N),
where 0.001 degree is about 96 m east-west and 111 m north-south.  Frames have
the columns of docs/design.md, as ``gridkit.io`` returns them.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from hypothesis import given, settings
from shapely.geometry import MultiPolygon, Point, box
from strategies import point_sets

from gridkit.checks import is_contiguous, tiling_error
from gridkit.errors import GridkitWarning
from gridkit.units.adjacency import adjacency_matrix, rook_pairs
from gridkit.units.build import UNASSIGNED_REASONS, Units, build_units
from gridkit.units.cells import unit_cells

X0, Y0, D = 115.0, 30.2, 0.001
UTM50N = pyproj.CRS.from_epsg(32650)


def _lonlat(i: float, j: float) -> Point:
    """Point at lattice position (i east, j north) in units of D from (X0, Y0)."""
    return Point(X0 + i * D, Y0 + j * D)


def _box(i0: float, j0: float, i1: float, j1: float) -> shapely.Polygon:
    return box(X0 + i0 * D, Y0 + j0 * D, X0 + i1 * D, Y0 + j1 * D)


def boundaries(*geoms, ids=None, crs=4326) -> gpd.GeoDataFrame:
    ids = ids or [f"c{k + 1}" for k in range(len(geoms))]
    return gpd.GeoDataFrame(
        {
            "community_id": ids,
            "community_name": [f"{c}社区" for c in ids],
            "street": ["江北街道"] * len(geoms),
            "row": np.arange(1, len(geoms) + 1),
        },
        geometry=list(geoms),
        crs=crs,
    )


def households(geoms, *, counts=None, buildings=None, index=None, crs=4326) -> gpd.GeoDataFrame:
    n = len(geoms)
    frame = gpd.GeoDataFrame(
        {
            "household_id": [f"h{k + 1}" for k in range(n)],
            "households": np.asarray(counts if counts is not None else [10] * n, dtype=np.int64),
            "building_id": pd.Series(
                buildings if buildings is not None else [None] * n, dtype=object
            ).to_numpy(),
            "row": np.arange(1, n + 1),
        },
        geometry=list(geoms),
        crs=crs,
        index=index,
    )
    frame.attrs["source"] = "households.csv"
    return frame


def assert_tiles(units: Units, *, tolerance: float = 1e-6) -> None:
    """Cells tile every community that has units: no gap, no overlap, nothing outside."""
    cells = units.units
    with_units = units.communities[units.communities["n_units"] > 0]
    errors = tiling_error(cells, with_units)
    assert (errors <= tolerance).all(), errors
    # pairwise overlaps, directly
    geoms = cells.geometry.to_numpy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    overlap = shapely.area(shapely.intersection(geoms[left[keep]], geoms[right[keep]])).sum()
    assert overlap <= tolerance * float(shapely.area(geoms).sum())
    for cid, group in cells.groupby("community_id"):
        comm = units.communities.set_index("community_id").geometry.loc[cid]
        union = shapely.union_all(group.geometry.to_numpy())
        assert shapely.symmetric_difference(union, comm).area <= tolerance * comm.area


def assert_unit_contract(units: Units) -> None:
    u = units.units
    assert {"unit_id", "community_id", "households", "rows", "building_id", "x", "y"} <= set(
        u.columns
    )
    assert u["unit_id"].tolist() == list(range(len(u)))
    assert pyproj.CRS(u.crs).is_projected and u.crs == units.crs
    assert not u.geometry.is_empty.any()
    assert u.geometry.is_valid.all()
    # one cell per unit, holding (to the 0.1 m snap) its building point
    points = shapely.points(u[["x", "y"]].to_numpy())
    assert (shapely.distance(u.geometry.to_numpy(), points) <= 0.1).all()
    # membership: every row either in a unit or unassigned with a known reason
    m = units.membership
    assigned = m["unit_id"].notna()
    assert (m.loc[assigned, "reason"] == "").all()
    assert m.loc[~assigned, "reason"].isin(list(UNASSIGNED_REASONS)).all()
    rows = m.loc[assigned, "unit_id"].value_counts().sort_index()
    assert rows.index.tolist() == u["unit_id"].tolist(), "every unit has rows"
    assert rows.tolist() == u["rows"].tolist()
    comm = units.communities.set_index("community_id")
    per_comm = u.groupby("community_id")["households"].sum()
    assert (comm.loc[per_comm.index, "households"] == per_comm).all()
    assert (
        comm["n_units"] == u.groupby("community_id").size().reindex(comm.index, fill_value=0)
    ).all()


# ----------------------------------------------------------------- tiling


def test_cells_tile_each_community():
    west, east = _box(0, 0, 3, 3), _box(3, 0, 6, 3)
    pts = [_lonlat(0.5 + i, 0.5 + j) for i in range(6) for j in range(3) if (i + j) % 2 == 0]
    pts.append(_lonlat(4.2, 2.7))
    hh = households(pts, counts=np.arange(1, len(pts) + 1) * 10)
    units = build_units(boundaries(west, east), hh)
    assert_unit_contract(units)
    assert_tiles(units)
    assert is_contiguous(units.units).all()
    assert len(units.units) == len(pts)
    assert units.units.groupby("community_id").size().to_dict() == {"c1": 5, "c2": 5}
    assert units.notes == {}
    assert units.crs == UTM50N


def test_community_with_one_building_is_one_cell():
    comm = _box(0, 0, 2, 2)
    units = build_units(boundaries(comm), households([_lonlat(1, 1)], counts=[300]))
    assert len(units.units) == 1
    assert_tiles(units)
    assert units.units["households"].tolist() == [300]


def test_explicit_metric_crs():
    comm = _box(0, 0, 2, 2)
    hh = households([_lonlat(0.5, 0.5), _lonlat(1.5, 1.5)])
    units = build_units(boundaries(comm), hh, crs="EPSG:3857")
    assert units.crs == pyproj.CRS.from_epsg(3857)
    assert units.units.crs == units.crs
    assert len(units.units) == 2


# --------------------------------------------------------------- grouping


def test_rows_with_same_building_id_form_one_unit():
    comm = _box(0, 0, 4, 2)
    hh = households(
        [_lonlat(0.5, 0.5), _lonlat(0.6, 0.6), _lonlat(0.55, 0.5), _lonlat(3, 1), _lonlat(2, 1)],
        counts=[12, 30, 8, 50, 7],
        buildings=["B1", "B1", "B1", "B2", None],
    )
    units = build_units(boundaries(comm), hh)
    assert_unit_contract(units)
    assert_tiles(units)
    u = units.units.set_index("building_id", drop=False)
    assert len(units.units) == 3
    assert u.loc["B1", "households"] == 50 and u.loc["B1", "rows"] == 3
    assert u.loc["B2", "households"] == 50 and u.loc["B2", "rows"] == 1
    m = units.membership
    assert m.loc[0, "unit_id"] == m.loc[1, "unit_id"] == m.loc[2, "unit_id"]
    assert len(set(m["unit_id"].tolist())) == 3


def test_same_building_id_in_two_communities_is_two_units():
    west, east = _box(0, 0, 2, 2), _box(2, 0, 4, 2)
    hh = households([_lonlat(1, 1), _lonlat(3, 1)], buildings=["B1", "B1"])
    units = build_units(boundaries(west, east), hh)
    assert len(units.units) == 2
    assert sorted(units.units["community_id"]) == ["c1", "c2"]


def test_rows_at_the_same_point_merge():
    comm = _box(0, 0, 3, 3)
    spot = _lonlat(1, 1)
    hh = households(
        [spot, spot, _lonlat(2, 2), _lonlat(2, 2), _lonlat(0.5, 2.5)],
        counts=[10, 20, 30, 40, 50],
        buildings=[None, None, "B7", "B8", None],  # B7/B8: two blocks sharing one geocode
    )
    units = build_units(boundaries(comm), hh)
    assert_unit_contract(units)
    assert_tiles(units)
    assert sorted(units.units["households"].tolist()) == [30, 50, 70]
    m = units.membership
    assert m.loc[0, "unit_id"] == m.loc[1, "unit_id"]
    assert m.loc[2, "unit_id"] == m.loc[3, "unit_id"]
    assert m.loc[0, "unit_id"] != m.loc[2, "unit_id"]


def test_footprints_are_units():
    comm = _box(0, 0, 4, 2)
    flat = _box(0.2, 0.2, 0.8, 0.5)
    hh = households(
        [flat, flat, _box(2.2, 1.2, 2.9, 1.8), _lonlat(3.5, 0.5)],
        counts=[40, 60, 90, 15],
    )
    units = build_units(boundaries(comm), hh)
    assert_unit_contract(units)
    assert_tiles(units)
    assert sorted(units.units["households"].tolist()) == [15, 90, 100]
    footprints = hh.to_crs(units.crs).geometry
    u = units.units.set_index("unit_id")
    for row in (0, 2):
        unit = units.membership.loc[row, "unit_id"]
        point = Point(u.loc[unit, "x"], u.loc[unit, "y"])
        assert footprints.iloc[row].distance(point) <= 0.1, "unit point lies on the footprint"


# ------------------------------------------------------- awkward shapes


def _u_shape():
    """A U open to the north: arms 1 wide and 5 tall, a 3-wide base (units of D)."""
    return shapely.union_all([_box(0, 0, 1, 5), _box(0, 0, 3, 1), _box(2, 0, 3, 5)])


def test_u_shaped_community_cells_are_connected():
    comm = _u_shape()
    # The top of the west arm is nearer the top of the east arm than the base point
    # is, so its raw Voronoi cell reaches across the gap and is cut in two.
    pts = [_lonlat(0.5, 4.5), _lonlat(0.5, 0.5), _lonlat(2.5, 1.5)]
    units = build_units(boundaries(comm), households(pts))
    cells = units.units.geometry.to_numpy()
    metric_comm = units.communities.geometry.iloc[0]
    points = shapely.points(units.units[["x", "y"]].to_numpy())
    raw = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=metric_comm, ordered=True)
    clipped = shapely.intersection(shapely.get_parts(raw), metric_comm)
    assert (shapely.get_num_geometries(clipped) > 1).any(), "the case exercises the repair"
    assert_unit_contract(units)
    assert_tiles(units)
    assert (shapely.get_type_id(cells) == 3).all(), "every cell is one Polygon"
    assert units.notes == {}


def test_multipolygon_community_with_empty_island():
    main, island = _box(0, 0, 3, 2), _box(4, 0, 5, 2)
    comm = MultiPolygon([main, island])
    # The Voronoi cells of both eastern buildings reach the island.
    pts = [_lonlat(0.5, 1), _lonlat(2.5, 0.5), _lonlat(2.5, 1.5)]
    units = build_units(boundaries(comm, ids=["420204001001"]), households(pts))
    assert_unit_contract(units)
    assert_tiles(units)
    note = units.notes["420204001001"]
    assert note == [
        "1 island(s) of the community with no building were joined to the nearest cell; "
        "the grid holding them has more than one polygon"
    ]
    cells = units.units.geometry.to_numpy()
    metric_island = shapely.get_parts(units.communities.geometry.iloc[0])
    metric_island = metric_island[np.argmin(shapely.area(metric_island))]
    holding = shapely.area(shapely.intersection(cells, metric_island)) > 1e-6 * metric_island.area
    assert holding.sum() == 1, "the island joins one cell whole"
    assert shapely.get_type_id(cells[holding][0]) == 6  # MultiPolygon: main piece + island
    assert (shapely.get_type_id(cells[~holding]) == 3).all()


def test_building_whose_rows_straddle_a_notch_keeps_a_cell():
    """One building id geocoded on both arms of a U: the mean lies in the notch.

    The unit must still sit inside the community and get a non-empty cell.
    """
    comm = _u_shape()
    pts = [_lonlat(0.5, 4.5), _lonlat(2.5, 4.5)]  # building B1, both arm tips
    pts += [_lonlat(0.9, j) for j in (2, 3, 4)] + [_lonlat(2.1, j) for j in (2, 3, 4)]
    pts += [_lonlat(1.5, 0.9), _lonlat(2.5, 1.5)]
    hh = households(pts, buildings=["B1", "B1"] + [None] * 8)
    units = build_units(boundaries(comm), hh)
    assert_unit_contract(units)
    assert_tiles(units)
    b1 = units.units[units.units["building_id"] == "B1"].iloc[0]
    assert b1["rows"] == 2 and b1["households"] == 20
    metric_comm = units.communities.geometry.iloc[0]
    assert metric_comm.distance(Point(b1["x"], b1["y"])) <= 0.1


@settings(max_examples=20, deadline=None)
@given(pts=point_sets(min_size=1, max_size=25, side=15, spacing=20.0))
def test_property_cells_tile_convex_community(pts):
    square = shapely.box(0, 0, 300, 300)
    points = shapely.points(pts)
    cells, notes = unit_cells(points, square)
    assert len(cells) == len(points) and notes == []
    assert (shapely.get_type_id(cells) == 3).all()
    assert shapely.covers(cells, points).all()
    union = shapely.union_all(cells)
    assert shapely.symmetric_difference(union, square).area <= 1e-6 * square.area
    assert abs(shapely.area(cells).sum() - square.area) <= 1e-6 * square.area


@settings(max_examples=20, deadline=None)
@given(pts=point_sets(min_size=2, max_size=25, side=15, spacing=20.0))
def test_property_cells_tile_u_shaped_community(pts):
    u_shape = shapely.union_all(
        [shapely.box(0, 0, 100, 300), shapely.box(0, 0, 300, 100), shapely.box(200, 0, 300, 300)]
    )
    inside = shapely.contains_properly(u_shape, shapely.points(pts))
    points = shapely.points(pts[inside])
    cells, notes = unit_cells(points, u_shape)
    assert len(cells) == len(points) and notes == []
    if len(points) == 0:
        return
    assert (shapely.get_type_id(cells) == 3).all(), "cells stay connected"
    assert shapely.covers(cells, points).all()
    union = shapely.union_all(cells)
    assert shapely.symmetric_difference(union, u_shape).area <= 1e-6 * u_shape.area
    assert abs(shapely.area(cells).sum() - u_shape.area) <= 1e-6 * u_shape.area


def test_unit_cells_small_inputs():
    square = shapely.box(0, 0, 100, 100)
    cells, notes = unit_cells(np.array([], dtype=object), square)
    assert len(cells) == 0 and notes == []
    cells, _ = unit_cells(shapely.points([[10, 10]]), square)
    assert cells[0].equals(square)


# -------------------------------------------------- membership and warnings


def test_rows_outside_every_community_are_unassigned():
    comm = _box(0, 0, 2, 2)
    pts = [_lonlat(0.5, 0.5), _lonlat(9, 9), _lonlat(1.5, 1.5), _lonlat(-3, 0.5)]
    hh = households(pts, index=pd.Index([10, 20, 30, 40]))
    with pytest.warns(GridkitWarning, match=r"2 household row\(s\) of households\.csv.*rows 2, 4"):
        units = build_units(boundaries(comm), hh)
    m = units.membership
    assert m.index.equals(hh.index)
    assert m.loc[[20, 40], "reason"].tolist() == ["outside_communities"] * 2
    assert m.loc[[20, 40], "unit_id"].isna().all()
    assert m.loc[[20, 40], "community_id"].isna().all()
    assert m.loc[[10, 30], "reason"].tolist() == ["", ""]
    assert m.loc[[10, 30], "community_id"].tolist() == ["c1", "c1"]
    assert_unit_contract(units)
    assert len(units.units) == 2


def test_no_warning_when_every_row_is_inside(recwarn):
    build_units(boundaries(_box(0, 0, 2, 2)), households([_lonlat(1, 1)]))
    assert not [w for w in recwarn if issubclass(w.category, GridkitWarning)]


def test_household_on_a_shared_edge_goes_to_one_community():
    west, east = _box(0, 0, 2, 2), _box(2, 0, 4, 2)
    pts = [_lonlat(2, 1), _lonlat(0.5, 0.5), _lonlat(3.5, 0.5)]
    units = build_units(boundaries(west, east), households(pts))
    assert units.membership["reason"].eq("").all()
    assert units.membership.loc[0, "community_id"] in {"c1", "c2"}
    assert len(units.units) == 3
    assert units.communities["n_units"].sum() == 3
    assert_tiles(units)


@pytest.mark.parametrize("order", [["c1", "c2"], ["c2", "c1"]])
def test_shared_edge_point_goes_to_the_first_community(order):
    """In a metric CRS (no reprojection) the point lies exactly on the edge."""
    polys = {"c1": shapely.box(0, 0, 200, 200), "c2": shapely.box(200, 0, 400, 200)}
    b = boundaries(*(polys[c] for c in order), ids=order, crs=UTM50N)
    b = b.set_geometry(b.geometry.translate(500_000, 3_340_000))
    pts = gpd.GeoSeries([Point(200, 100), Point(50, 50), Point(350, 50)], crs=UTM50N)
    hh = households(list(pts.translate(500_000, 3_340_000)), crs=UTM50N)
    units = build_units(b, hh)
    assert units.membership.loc[0, "community_id"] == order[0]
    assert_tiles(units)


def test_inputs_are_not_mutated():
    west, east = _box(0, 0, 2, 2), _box(2, 0, 4, 2)
    b = boundaries(west, east)
    hh = households(
        [_lonlat(0.5, 0.5), _lonlat(0.5, 0.5), _box(2.5, 0.5, 2.8, 0.9), _lonlat(9, 9)],
        buildings=["B1", None, None, None],
        index=pd.Index([5, 6, 7, 8]),
    )
    b_before, hh_before = b.copy(), hh.copy()
    with pytest.warns(GridkitWarning, match="rows 4"):
        build_units(b, hh)
    assert_geodataframe_equal(b, b_before)
    assert_geodataframe_equal(hh, hh_before)
    assert hh.attrs == {"source": "households.csv"}
    assert b.crs == hh.crs == pyproj.CRS.from_epsg(4326)


def test_build_units_is_deterministic():
    comm = _u_shape()
    pts = [_lonlat(0.5, 0.5 + j) for j in range(5)] + [_lonlat(2.5, 0.5 + j) for j in range(5)]
    hh = households(pts, counts=np.arange(10) + 1)
    a = build_units(boundaries(comm), hh)
    b = build_units(boundaries(comm), hh)
    assert_geodataframe_equal(a.units, b.units)
    pd.testing.assert_frame_equal(a.membership, b.membership)


# ---------------------------------------------------------------- adjacency


def test_rook_pairs_ignore_corner_contact():
    cells = np.array(
        [
            shapely.box(0, 0, 10, 10),
            shapely.box(10, 0, 20, 10),  # shares an edge with 0
            shapely.box(20, 10, 30, 20),  # touches 1 at a corner only
            shapely.box(0, 10, 10, 20),  # shares an edge with 0, a corner with 1
        ]
    )
    left, right, length = rook_pairs(cells)
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == [(0, 1), (0, 3)]
    np.testing.assert_allclose(length, [10.0, 10.0])


def test_rook_pairs_threshold_and_partial_edges():
    cells = np.array(
        [
            shapely.box(0, 0, 10, 10),
            shapely.box(10, 9.995, 20, 20),  # shares 0.005 m with 0
            shapely.box(10, -5, 20, 5),  # shares 5 m with 0
        ]
    )
    left, right, length = rook_pairs(cells)
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == [(0, 2)]
    np.testing.assert_allclose(length, [5.0])
    left, right, _ = rook_pairs(cells, min_shared_length=0.001)
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == [(0, 1), (0, 2)]
    assert len(rook_pairs(cells, min_shared_length=6.0)[0]) == 0


def test_rook_pairs_small_inputs():
    for geoms in ([], [shapely.box(0, 0, 1, 1)]):
        left, right, length = rook_pairs(np.array(geoms, dtype=object))
        assert len(left) == len(right) == len(length) == 0


def test_adjacency_matrix_is_symmetric():
    adj = adjacency_matrix(4, np.array([0, 1]), np.array([1, 3]))
    dense = adj.toarray()
    np.testing.assert_array_equal(dense, dense.T)
    assert dense.sum() == 4 and dense[2].sum() == 0
    weighted = adjacency_matrix(3, np.array([0]), np.array([2]), np.array([7.5]))
    assert weighted[0, 2] == weighted[2, 0] == 7.5


def test_units_cells_give_rook_graph_of_the_lattice():
    """Buildings on a 3x3 raster in a square community: cells are the 3x3 lattice."""
    x0, y0 = 500_000.0, 3_340_000.0
    comm = shapely.box(x0, y0, x0 + 300, y0 + 300)
    pts = [Point(x0 + 50 + 100 * i, y0 + 50 + 100 * j) for j in range(3) for i in range(3)]
    units = build_units(boundaries(comm, crs=UTM50N), households(pts, crs=UTM50N))
    left, _, length = rook_pairs(units.units.geometry.to_numpy())
    assert len(left) == 12  # 2 * 3 * 2 rook edges, no diagonal contacts
    np.testing.assert_allclose(length, 100.0)
