"""The multilevel engine for large communities, and household points grouped into buildings.

Properties on generated point sets and lattices (hypothesis): every household in
exactly one grid, grids contiguous and within the bounds where feasible, the same
plan for any ``jobs``, and coarse units that never mix a barrier block or a
compound.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse import csgraph

import gridkit as gk
from gridkit.checks import accounted_for, verify_partition
from gridkit.partition import MULTILEVEL_UNITS, GridRules, partition_community, partition_graph
from gridkit.solver import multilevel
from gridkit.units.points import MAX_BUILDING_SPAN, group_points
from tests.strategies import lattice_from_weights, lattices

PROPERTY = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
BOUNDS = {"min_households": 400, "max_households": 800, "target": 600}


def connected(adj, members: np.ndarray) -> bool:
    sub = adj[members][:, members]
    return csgraph.connected_components(sub, directed=False)[0] == 1


@st.composite
def point_communities(draw, *, buildings: tuple[int, int] = (70, 110)):
    """A square community with one row per household, points within 2 m of their building.

    Buildings sit on a jittered 25 m raster (some raster cells empty), 5-60
    households each, in a projected CRS; no building ids.
    """
    n = draw(st.integers(min_value=buildings[0], max_value=buildings[1]))
    seed = draw(st.integers(min_value=0, max_value=2**16))
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n * 1.4)))
    cells = rng.permutation(side * side)[:n]
    centres = np.c_[cells % side, cells // side] * 25.0 + 20.0 + rng.normal(0, 2.0, (n, 2))
    sizes = rng.integers(5, 61, n)
    owner = np.repeat(np.arange(n), sizes)
    angle = rng.random(len(owner)) * 2 * np.pi
    radius = 2.0 * np.sqrt(rng.random(len(owner)))
    xy = centres[owner] + np.c_[np.cos(angle), np.sin(angle)] * radius[:, None]
    outline = shapely.box(0, 0, side * 25.0 + 40.0, side * 25.0 + 40.0)
    community = gpd.GeoDataFrame(
        {"community_id": ["C1"], "community_name": ["测试社区"], "street": ["测试街道"]},
        geometry=[outline],
        crs=32650,
    )
    rows = gpd.GeoDataFrame(
        {"household_id": [f"H{i}" for i in range(len(owner))]},
        geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
        crs=32650,
    )
    return gk.read_boundaries(community), gk.read_households(rows), owner


@PROPERTY
@given(point_communities())
def test_household_points_every_household_in_one_contiguous_grid_in_bounds(case):
    communities, rows, owner = case
    plan = gk.make_grids(communities, rows, time_limit=1, jobs=1)
    # the points of one building are one unit
    units = plan.units.membership["unit_id"].to_numpy()
    assert len(set(zip(owner.tolist(), units.tolist(), strict=True))) == len(np.unique(owner))
    assert len(plan.units.units) == len(np.unique(owner))
    assert len(plan.units.units) > MULTILEVEL_UNITS  # the multilevel engine ran
    assert accounted_for(plan.assignments, rows)
    assert plan.assignments["grid_code"].notna().all()
    problems = verify_partition(plan.grids, communities, assignments=plan.assignments,
                                households=rows)  # fmt: skip
    assert not any(problems.values()), problems
    assert (plan.grids["status"] == "ok").all()
    assert plan.grids["households"].sum() == len(rows)
    grouping = plan.units.grouping["C1"]
    assert grouping == {"rows": len(rows), "buildings": len(np.unique(owner)),
                        "merge_distance_m": 5.0}  # fmt: skip


def test_same_plan_for_any_jobs():
    community, rows = gk.datasets.make_point_community(3_000, seed=1)
    community, rows = gk.read_boundaries(community), gk.read_households(rows)
    one = gk.make_grids(community, rows, time_limit=1, jobs=1)
    two = gk.make_grids(community, rows, time_limit=1, jobs=2)
    assert one.assignments["grid_code"].tolist() == two.assignments["grid_code"].tolist()
    assert one.grids.geometry.to_wkb().tolist() == two.grids.geometry.to_wkb().tolist()


def test_point_community_in_bounds_and_compact():
    community, rows = gk.datasets.make_point_community(10_000, seed=0)
    plan = gk.make_grids(gk.read_boundaries(community), gk.read_households(rows), jobs=1)
    assert len(plan.units.units) > 200
    assert (plan.grids["status"] == "ok").all()
    assert plan.grids["compactness"].mean() > 0.5
    assert plan.assignments["grid_code"].notna().all()


# ----------------------------------------------------------------- graph properties


@PROPERTY
@given(lattices(min_side=6, max_side=12, min_households=10, max_households=120, holes=True),
       st.integers(min_value=2, max_value=6), st.integers(min_value=0, max_value=100))  # fmt: skip
def test_coarse_units_never_mix_groups_and_respect_the_cap(lattice, n_groups, seed):
    adj, w, xy = lattice
    rng = np.random.default_rng(seed)
    separate = rng.integers(0, n_groups, len(w))
    levels = multilevel.coarsen(adj, w, xy, cap=150, goal=1, separate=separate)
    fine_to_coarse = np.arange(len(w))
    for level in levels[1:]:
        fine_to_coarse = level.parent[fine_to_coarse]
        for node in np.unique(fine_to_coarse):
            members = np.flatnonzero(fine_to_coarse == node)
            assert len(set(separate[members].tolist())) == 1
            assert len(members) == 1 or w[members].sum() <= 150
            assert connected(adj, members)
        assert level.w.sum() == w.sum()


@PROPERTY
@given(lattices(min_side=5, max_side=10, min_households=20, max_households=150),
       st.integers(min_value=0, max_value=50))  # fmt: skip
def test_refine_and_recombine_keep_grids_connected_and_in_bounds(lattice, seed):
    adj, w, xy = lattice
    if w.sum() < 1200:
        return
    plan = gk.partition.partition_graph(adj, w, xy, time_limit=0.01, seed=seed)
    labels = plan.labels
    if not all(s == "ok" for s in plan.grid_status):
        return
    mass = multilevel.unit_mass(w)
    before = multilevel.plan_cost(labels, w, xy, mass, balance=1.0, **BOUNDS)
    for step in (multilevel.refine, multilevel.recombine):
        labels, _ = step(adj, w, xy, labels, mass=mass, balance=1.0, **BOUNDS)
        loads = np.bincount(labels, weights=w)
        assert ((loads >= 400) & (loads <= 800)).all()
        for g in np.unique(labels):
            assert connected(adj, np.flatnonzero(labels == g))
    after = multilevel.plan_cost(labels, w, xy, mass, balance=1.0, **BOUNDS)
    assert after <= before + 1e-6


def test_multilevel_plan_is_deterministic_and_beats_its_own_start():
    adj, w, xy = lattice_from_weights([[60] * 14 for _ in range(12)])
    first = partition_graph(adj, w, xy, time_limit=2, seed=3)
    again = partition_graph(adj, w, xy, time_limit=2, seed=3)
    assert np.array_equal(first.labels, again.labels)
    assert all(s == "ok" for s in first.grid_status)
    assert first.bound is not None and first.bound <= first.objective
    for g in np.unique(first.labels):
        assert connected(adj, np.flatnonzero(first.labels == g))


def test_prove_uses_the_exact_model():
    adj, w, xy = lattice_from_weights([[100] * 9 for _ in range(8)])
    fast = partition_graph(adj, w, xy, time_limit=1)
    proved = partition_graph(adj, w, xy, time_limit=1, prove=True)
    assert all(s == "ok" for s in fast.grid_status + proved.grid_status)
    # the exact model's bound is at least the floor the multilevel engine reports
    assert proved.bound is not None and fast.bound is not None
    assert proved.bound >= fast.bound - 1e-6


def test_barrier_blocks_stay_apart_in_a_large_community():
    """A road through a 120-building community: coarse units keep to its sides."""
    side = 11
    centres = np.array([(x * 20.0 + 10, y * 20.0 + 10) for y in range(side) for x in range(side)])
    community = shapely.box(0, 0, side * 20.0, side * 20.0)
    cells, _ = gk.units.unit_cells(shapely.points(centres), community)
    units = gpd.GeoDataFrame(
        {
            "unit_id": np.arange(len(centres)),
            "community_id": "C",
            "households": 60,
            "rows": 1,
            "building_id": [f"B{i}" for i in range(len(centres))],
            "first_household_id": "1",
            "x": centres[:, 0],
            "y": centres[:, 1],
        },
        geometry=cells,
        crs=32650,
    )
    road = gpd.GeoDataFrame(
        {"name": ["主干道"]}, geometry=[shapely.LineString([(100, -1), (100, 221)])], crs=32650
    )
    plan = partition_community(units, time_limit=1, barriers=road, keep_compounds=False)
    west = centres[:, 0] < 100
    labels = plan.labels.to_numpy()
    assert set(labels[west]).isdisjoint(labels[~west])
    assert all(s == "ok" for s in plan.grid_status.values())


# ------------------------------------------------------------------ point grouping


@settings(max_examples=40, deadline=None, database=None)
@given(st.lists(st.tuples(st.floats(0, 500), st.floats(0, 500)), min_size=1, max_size=80),
       st.floats(0, 10))  # fmt: skip
def test_group_points_links_close_points_and_never_spans_far(points, distance):
    xy = np.asarray(points, dtype=float)
    groups = group_points(xy, distance=distance)
    assert groups.min() == 0 and set(np.unique(groups)) == set(range(groups.max() + 1))
    for g in np.unique(groups):
        members = xy[groups == g]
        span = np.hypot(*(members.max(axis=0) - members.min(axis=0)))
        assert span <= max(MAX_BUILDING_SPAN, np.hypot(30, 30)) + 1e-6 or len(members) == 1


def test_group_points_keeps_communities_apart():
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    assert group_points(xy, np.array([0, 0, 1]), 3.0).tolist() == [0, 0, 1]


def test_merge_distance_zero_keeps_points_apart_and_negative_is_an_error():
    community, rows = gk.datasets.make_point_community(400, seed=2)
    community, rows = gk.read_boundaries(community), gk.read_households(rows)
    apart = gk.build_units(community, rows, merge_distance=0)
    grouped = gk.build_units(community, rows)
    # 0: only points at one location (to 0.1 m, after the file's 7 decimals) go together
    xy = np.round(shapely.get_coordinates(rows.to_crs(apart.crs).geometry) / 0.1)
    assert len(apart.units) == len(np.unique(xy, axis=0))
    assert len(grouped.units) < len(apart.units) / 5
    with pytest.raises(gk.errors.InputError, match="merge-distance"):
        gk.build_units(community, rows, merge_distance=-1)


def test_buildings_with_different_ids_at_one_point_are_named():
    community = gpd.GeoDataFrame(
        {"community_id": ["C"], "community_name": ["c"], "street": ["s"]},
        geometry=[shapely.box(500_000, 3_340_000, 500_100, 3_340_100)],
        crs=32650,
    )
    rows = gpd.GeoDataFrame(
        {"building_id": ["A栋", "B栋", "C栋"], "households": [10, 20, 30]},
        geometry=gpd.points_from_xy(
            np.array([50, 50, 20]) + 500_000, np.array([50, 50, 20]) + 3_340_000
        ),
        crs=32650,
    )
    units = gk.build_units(gk.read_boundaries(community), gk.read_households(rows))
    assert len(units.units) == 2
    note = " ".join(units.notes["C"])
    assert "A栋 + B栋" in note and "one unit" in note


def test_rules_reach_the_engine():
    adj, w, xy = lattice_from_weights([[50] * 12 for _ in range(10)])
    rules = GridRules(min_households=300, max_households=500)
    plan = partition_graph(adj, w, xy, rules=rules, time_limit=1)
    loads = np.bincount(plan.labels, weights=w)
    assert ((loads >= 300) & (loads <= 500)).all()


# ------------------------------------------------------------ the cut-unit proof


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(lattices(min_side=2, max_side=6, min_households=10, max_households=400, holes=True))
def test_cut_unit_proof_never_contradicts_a_plan_in_bounds(lattice):
    """Sound: whenever some contiguous plan is in bounds, the proof finds nothing."""
    adj, w, xy = lattice
    rules = GridRules()
    proof = gk.partition.cut_unit_proof(adj, w, rules)
    plan = partition_graph(adj, w, xy, rules=rules, time_limit=0.5, prove=True)
    if all(s == "ok" for s in plan.grid_status) and w.sum() >= 400:
        assert proof is None
    if proof is not None:
        assert plan.bounds_unreachable
        assert not all(s == "ok" for s in plan.grid_status)


def test_cut_unit_proof_names_the_overflow():
    # a 208-household block is the only link of pieces of 284 and 393 households
    adj, w, _ = lattice_from_weights(
        [[284, 208, 393], [None, 500, None], [None, 500, None], [None, 500, None]]
    )
    proof = gk.partition.cut_unit_proof(adj, w, GridRules())
    assert proof is not None and "885 > 800" in proof


def test_long_searches_say_how_they_are_going(monkeypatch, capsys):
    """With GRIDKIT_PROGRESS=1 (set by `gridkit partition`), each start is reported."""
    adj, w, xy = lattice_from_weights([[60] * 14 for _ in range(12)])
    monkeypatch.setenv(gk.partition.PROGRESS_ENV, "1")
    partition_graph(adj, w, xy, time_limit=gk.partition.PROGRESS_MIN_BUDGET)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "multilevel search" in ln]
    assert len(lines) >= gk.partition.MIN_STARTS
    assert "start 1" in lines[0] and "best plan so far" in lines[0] and " s" in lines[0]
    monkeypatch.delenv(gk.partition.PROGRESS_ENV)
    partition_graph(adj, w, xy, time_limit=gk.partition.PROGRESS_MIN_BUDGET)
    assert "multilevel search" not in capsys.readouterr().err


@PROPERTY
@given(lattices(min_side=3, max_side=8, min_households=10, max_households=300, holes=True),
       st.integers(min_value=0, max_value=30))  # fmt: skip
def test_mean_polsby_popper_matches_the_drawn_grids(lattice, seed):
    """Polsby-Popper from cell areas, perimeters and shared lengths = the dissolved grids'."""
    _, w, xy = lattice
    cells = shapely.box(xy[:, 0] - 15, xy[:, 1] - 15, xy[:, 0] + 15, xy[:, 1] + 15)
    left, right, length = gk.adjacency.rook_pairs(cells)
    shared = gk.adjacency.adjacency_matrix(len(w), left, right, weights=length)
    labels = np.random.default_rng(seed).integers(0, 4, len(w))
    value = multilevel.mean_polsby_popper(labels, shapely.area(cells), shapely.length(cells),
                                          shared)  # fmt: skip
    drawn = [shapely.union_all(cells[labels == g]) for g in np.unique(labels)]
    expected = np.mean([4 * np.pi * g.area / g.length**2 for g in drawn])
    assert value == pytest.approx(expected, rel=1e-9)


# ------------------------------------------------------------------ command line


def test_cli_groups_household_points_and_reports_buildings(tmp_path):
    """One row per household through `gridkit partition`: rows grouped, summary says so."""
    from tests.batchfiles import run_cli

    community, rows = gk.datasets.make_point_community(2_000, seed=3)
    community.to_file(tmp_path / "c.geojson")
    rows.to_file(tmp_path / "h.geojson")
    base = [
        "partition", "--communities", str(tmp_path / "c.geojson"),
        "--households", str(tmp_path / "h.geojson"), "--no-map", "--jobs", "1", "--time-limit", "1",
    ]  # fmt: skip
    code, out, err = run_cli([*base, "--out", str(tmp_path / "a"), "--lang", "en"])
    assert code == 0, err
    report = json.loads((tmp_path / "a" / "report.json").read_text(encoding="utf-8"))
    buildings = report["totals"]["buildings"]
    assert 40 < buildings < 2_000
    assert f"{buildings:,} buildings" in out
    # --merge-distance 0: only points at one location go together
    code, _, err = run_cli([*base, "--out", str(tmp_path / "b"), "--merge-distance", "0", "-q"])
    assert code == 0, err
    report = json.loads((tmp_path / "b" / "report.json").read_text(encoding="utf-8"))
    assert report["totals"]["buildings"] > 1_900
    code, _, err = run_cli([*base, "--out", str(tmp_path / "c"), "--merge-distance", "-1"])
    assert code == 2 and "error:" in err and "merge-distance" in err
