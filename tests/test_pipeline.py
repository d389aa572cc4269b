"""Tests for gridkit.pipeline (make_grids, assemble, the report) and gridkit.export.

Invariants only, never exact labels: the guarantees are asserted with
:mod:`gridkit.checks` (through the ``check_plan`` fixture of ``conftest.py``), on a
four-community subset of the sample (fast) and on the whole sample district (slow, one
session-scoped run shared by every ``[district]`` test).
"""

from __future__ import annotations

import json
import re
import warnings
from collections import Counter

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from shapely.geometry import Point

from gridkit.contracts import STATUSES
from gridkit.datasets.synthetic import make_households
from gridkit.errors import GridkitWarning
from gridkit.pipeline.plan import GRID_COLUMNS, make_grids

TIME_LIMIT = 0.5

#: Report keys measured with a clock: they differ between runs and are left out of
#: the determinism comparison.
TIMING_KEYS = {"time_s", "deterministic_time"}


def _strip_timing(value):
    """The report without its timing fields (recursively)."""
    if isinstance(value, dict):
        return {k: _strip_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_strip_timing(v) for v in value]
    return value


def _differences(a, b, path=""):
    """Paths at which two JSON-like values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}" for k in a.keys() ^ b.keys()]
        for k in a.keys() & b.keys():
            out += _differences(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in
                _differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [path]


def _community(report: dict, community_id: str) -> dict:
    return next(c for c in report["communities"] if c["community_id"] == community_id)


@pytest.fixture(
    params=["subset", pytest.param("district", marks=pytest.mark.slow)],
)
def case(request, sample_subset, sample):
    """(plan, communities, households) for the subset and for the whole district."""
    if request.param == "subset":
        plan = request.getfixturevalue("sample_plan")
        return plan, sample_subset.communities, sample_subset.buildings
    plan = request.getfixturevalue("district_plan")
    _record_district_figures(plan)
    return plan, sample[0], sample[1]


_recorded: list[str] = []


def _record_district_figures(plan) -> None:
    """Print the district's headline figures once (run with -s to read them)."""
    if _recorded:
        return
    t = plan.report["totals"]
    figures = {k: t[k] for k in (
        "communities", "feasible_communities", "households", "grids", "grids_by_status",
        "pct_grids_in_bounds_where_feasible", "mean_compactness", "time_s",
    )}  # fmt: skip
    figures["solver_status"] = dict(
        sorted(Counter(c["solver_status"] for c in plan.report["communities"]).items())
    )
    figures["time_limit"] = plan.report["parameters"]["time_limit"]
    print("\nsample district figures:", json.dumps(figures, ensure_ascii=False))
    _recorded.append("district")


# --------------------------------------------------------------------------- guarantees


def test_guarantees(case, check_plan):
    """Contiguous, tiled, in bounds where feasible, every household accounted for."""
    plan, communities, households = case
    check_plan(plan, communities, households)
    # nothing of the sample lies outside its communities
    assert (plan.assignments["reason"] == "").all()
    assert int(plan.grids["households"].sum()) == int(households["households"].sum())
    assert plan.report["totals"]["pct_grids_in_bounds_where_feasible"] == 100.0


def test_every_community_gets_grids(case):
    plan, communities, households = case
    assert set(plan.grids["community_id"]) == set(communities["community_id"])
    totals = households.groupby("community_id")["households"].sum()
    hh = plan.grids.groupby("community_id")["households"].sum()
    pd.testing.assert_series_equal(
        hh.sort_index().astype(np.int64), totals.sort_index().astype(np.int64), check_names=False
    )


def test_grid_codes(case):
    """12-digit community code + 3-digit sequence 001..k, unique, numbered per community."""
    plan, _, _ = case
    grids = plan.grids
    assert grids["grid_code"].is_unique
    for code, cid in zip(grids["grid_code"], grids["community_id"], strict=True):
        assert re.fullmatch(r"\d{15}", code), code
        assert code[:12] == cid
    for cid, g in grids.groupby("community_id"):
        seqs = sorted(int(c[12:]) for c in g["grid_code"])
        assert seqs == list(range(1, len(g) + 1)), (cid, seqs)
    names = plan.grids.set_index("grid_code")["grid_name"]
    for code, name in names.items():
        assert name.endswith(f"第{int(code[12:])}网格"), name
    assert grids["grid_code"].is_monotonic_increasing


def test_grid_layer_columns(case):
    plan, communities, _ = case
    grids = plan.grids
    assert list(grids.columns) == [*GRID_COLUMNS, "geometry"]
    assert grids.crs.to_epsg() == 4326
    assert set(grids["status"]) <= set(STATUSES)
    assert grids["households"].dtype == np.int64
    assert grids["buildings"].dtype == np.int64
    assert (grids["area_m2"] > 0).all()
    assert ((grids["compactness"] > 0) & (grids["compactness"] <= 1)).all()
    info = communities.set_index("community_id").loc[grids["community_id"]]
    assert grids["community_name"].tolist() == info["community_name"].tolist()
    assert grids["street"].tolist() == info["street"].tolist()


def test_report_structure(case):
    plan, communities, households = case
    report = plan.report
    assert {"gridkit_version", "parameters", "totals", "communities", "grids"} <= report.keys()
    assert report["parameters"]["min_households"] == 400
    assert report["parameters"]["max_households"] == 800
    assert report["parameters"]["time_limit"] > 0
    assert len(report["communities"]) == len(communities)
    totals = households.groupby("community_id")["households"].sum()
    for c in report["communities"]:
        for key in ("households", "grids", "solver_status", "gap", "time_s", "notes",
                    "infeasible_reason", "bounds_met"):
            assert key in c, key
        assert c["households"] == int(totals[c["community_id"]])
        assert c["grids"] == int((plan.grids["community_id"] == c["community_id"]).sum())
        assert c["solver_status"] in {"OPTIMAL", "FEASIBLE", "HEURISTIC"}, c
        assert c["gap"] is None or 0.0 <= c["gap"] <= 1.0
        assert c["time_s"] >= 0
    assert len(report["grids"]) == len(plan.grids)
    layer = plan.grids.set_index("grid_code")
    for g in report["grids"]:
        assert g["households"] == int(layer.loc[g["grid_code"], "households"])
        assert g["compactness"] == pytest.approx(float(layer.loc[g["grid_code"], "compactness"]))
        assert g["status"] == layer.loc[g["grid_code"], "status"]
    t = report["totals"]
    assert t["communities"] == len(communities)
    assert t["household_rows"] == len(households)
    assert t["grids_by_status"] == plan.grids["status"].value_counts().sort_index().to_dict()
    assert t["mean_compactness"] == pytest.approx(plan.grids["compactness"].mean(), abs=1e-4)
    json.dumps(report, ensure_ascii=False, allow_nan=False)  # plain JSON, no NaN


def test_assignments_table(case):
    plan, _, households = case
    a = plan.assignments
    assert list(a.columns) == ["household_id", "row", "community_id", "grid_code", "reason"]
    assert len(a) == len(households)
    assert a["row"].tolist() == list(range(1, len(households) + 1))
    assert a["household_id"].tolist() == households["building_id"].astype(str).tolist()
    # the sample knows each building's true community
    assert a["community_id"].tolist() == households["community_id"].tolist()
    assert (a["grid_code"].str[:12] == a["community_id"]).all()


# --------------------------------------------------------------------------- awkward communities


def test_below_min_community_is_one_explained_grid(sample_plan, sample_subset):
    s = sample_subset
    grids = sample_plan.grids[sample_plan.grids["community_id"] == s.low_id]
    assert len(grids) == 1
    assert grids["status"].tolist() == ["below_min"]
    assert int(grids["households"].iloc[0]) == s.low_households
    c = _community(sample_plan.report, s.low_id)
    assert c["infeasible_reason"] == "below_min"
    assert not c["bounds_met"]
    note = " ".join(c["notes"])
    assert s.low_id in note
    assert str(s.low_households) in note
    assert "400" in note and "min_households" in note


def test_oversize_tower_is_its_own_explained_grid(sample_plan, sample_subset):
    s = sample_subset
    a = sample_plan.assignments
    code = a.loc[a["household_id"] == s.tower_building, "grid_code"].item()
    tower_grid = sample_plan.grids.set_index("grid_code").loc[code]
    assert tower_grid["status"] == "oversize_building"
    assert int(tower_grid["buildings"]) == 1
    assert int(tower_grid["households"]) == s.tower_households
    c = _community(sample_plan.report, s.tower_id)
    assert c["infeasible_reason"] == "oversize_building"
    assert any(s.tower_building in n and str(s.tower_households) in n for n in c["notes"]), c
    # the rest of the community is still split into proper grids
    rest = sample_plan.grids[
        (sample_plan.grids["community_id"] == s.tower_id) & (sample_plan.grids["grid_code"] != code)
    ]
    assert len(rest) >= 1
    assert (rest["status"] == "ok").all()
    assert rest["households"].between(400, 800).all()


def test_tight_community_gets_two_grids(sample_plan, sample_subset):
    """850 households in two compounds: only two grids of 400-450 fit."""
    grids = sample_plan.grids[sample_plan.grids["community_id"] == sample_subset.tight_id]
    assert len(grids) == 2
    assert grids["households"].between(400, 450).all()
    assert (grids["status"] == "ok").all()


# --------------------------------------------------------------------------- files


def test_written_files(sample_plan, sample_subset, tmp_path):
    paths = sample_plan.write(tmp_path / "out")
    assert {p.name for p in paths.values()} == {
        "grids.geojson",
        "assignments.csv",
        "report.json",
        "buildings.geojson",
    }

    # buildings.geojson: one point per building, each in a grid of its own community,
    # households adding up to the grid layer's
    buildings = gpd.read_file(tmp_path / "out" / "buildings.geojson")
    assert buildings["building_id"].is_unique
    assert len(buildings) == len(sample_plan.units.units)
    by_grid = buildings.groupby("grid_code")["households"].sum()
    grid_hh = sample_plan.grids.set_index("grid_code")["households"]
    assert by_grid.to_dict() == grid_hh[grid_hh > 0].to_dict()
    assert (buildings["grid_code"].str[:12] == buildings["community_id"].str[:12]).all()

    raw = json.loads((tmp_path / "out" / "grids.geojson").read_text(encoding="utf-8"))
    assert raw["type"] == "FeatureCollection"
    assert "crs" not in raw  # RFC 7946: WGS84 implied
    assert len(raw["features"]) == len(sample_plan.grids)
    for feature in raw["features"]:
        assert list(feature["properties"]) == GRID_COLUMNS
        assert feature["geometry"]["type"] == "Polygon"
        ring = np.asarray(feature["geometry"]["coordinates"][0])
        assert shapely.is_ccw(shapely.linearrings(ring))  # RFC 7946 right-hand rule
        assert np.abs(ring - np.round(ring, 7)).max() < 1e-12  # 7 decimals at most
    codes = [f["properties"]["grid_code"] for f in raw["features"]]
    assert codes == sample_plan.grids["grid_code"].tolist()

    back = gpd.read_file(tmp_path / "out" / "grids.geojson")
    assert back["households"].tolist() == sample_plan.grids["households"].tolist()
    assert back["status"].tolist() == sample_plan.grids["status"].tolist()
    # 7 decimals (about 1 cm) keep the tiling to well under a millionth... of a per cent
    from gridkit.checks import tiling_error

    assert (tiling_error(back, sample_subset.communities) < 1e-4).all()

    csv_bytes = (tmp_path / "out" / "assignments.csv").read_bytes()
    assert csv_bytes.startswith(b"\xef\xbb\xbf")  # BOM, for Excel
    assert b"\r\n" not in csv_bytes
    table = pd.read_csv(
        tmp_path / "out" / "assignments.csv", dtype=str, keep_default_na=False,
        encoding="utf-8-sig",
    )
    expected = sample_plan.assignments.astype(str)
    pd.testing.assert_frame_equal(table, expected)

    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report == json.loads(json.dumps(sample_plan.report))


def test_same_output_whatever_the_jobs(sample_plan, sample_subset, tmp_path):
    """jobs=1 and jobs=2 give byte-identical files (and the same report but for timings)."""
    other = make_grids(
        sample_subset.communities, sample_subset.buildings, time_limit=TIME_LIMIT, jobs=2
    )
    sample_plan.write(tmp_path / "a", map_html=True)
    other.write(tmp_path / "b", map_html=True)
    for name in ("grids.geojson", "assignments.csv", "buildings.geojson", "map.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    a = json.loads((tmp_path / "a" / "report.json").read_text(encoding="utf-8"))
    b = json.loads((tmp_path / "b" / "report.json").read_text(encoding="utf-8"))
    diff = _differences(a, b)
    assert {p.rsplit(".", 1)[-1] for p in diff} <= TIMING_KEYS, diff
    assert _strip_timing(a) == _strip_timing(b)


def test_household_points_give_the_building_grids(sample_subset):
    """One point per household (within 3 m of its building) gives the building-level grids."""
    s = sample_subset
    keep = [s.low_id, s.tight_id]
    communities = s.communities[s.communities["community_id"].isin(keep)]
    buildings = s.buildings[s.buildings["community_id"].isin(keep)].reset_index(drop=True)
    points = make_households(buildings, seed=1)
    assert len(points) == int(buildings["households"].sum())
    by_building = make_grids(communities, buildings, time_limit=TIME_LIMIT, jobs=1)
    by_point = make_grids(communities, points, time_limit=TIME_LIMIT, jobs=1)
    cols = ["grid_code", "community_id", "households", "buildings", "status"]
    pd.testing.assert_frame_equal(
        pd.DataFrame(by_point.grids[cols]), pd.DataFrame(by_building.grids[cols])
    )
    # every household lands in its building's grid
    grid_of_building = dict(
        zip(by_building.assignments["household_id"], by_building.assignments["grid_code"],
            strict=True)
    )
    assert by_point.assignments["grid_code"].tolist() == [
        grid_of_building[b] for b in points["building_id"]
    ]
    assert by_point.assignments["household_id"].tolist() == points["household_id"].tolist()
    # cells move by at most a few metres, so the grid areas barely change
    np.testing.assert_allclose(
        by_point.grids["area_m2"], by_building.grids["area_m2"], rtol=0.02
    )


def test_households_outside_every_community(sample_subset, check_plan):
    s = sample_subset
    communities = s.communities[s.communities["community_id"] == s.low_id]
    inside = s.buildings[s.buildings["community_id"] == s.low_id]
    others = s.buildings[s.buildings["community_id"] == s.tight_id].head(2)
    far = gpd.GeoDataFrame(
        {"building_id": ["FAR1"], "households": [7], "community_id": [None]},
        geometry=[Point(115.5, 30.5)],
        crs=4326,
    )
    households = pd.concat([others.iloc[:1], inside, far, others.iloc[1:]], ignore_index=True)
    with pytest.warns(GridkitWarning, match="outside every community") as record:
        plan = make_grids(communities, households, time_limit=TIME_LIMIT, jobs=1)
    assert "rows 1, " in str(record[0].message)  # names the rows (1-based)
    outside = households["community_id"] != s.low_id
    a = plan.assignments
    assert (a.loc[outside.to_numpy(), "reason"] == "outside_communities").all()
    assert (a.loc[outside.to_numpy(), "grid_code"] == "").all()
    assert (a.loc[outside.to_numpy(), "community_id"] == "").all()
    assert (a.loc[~outside.to_numpy(), "reason"] == "").all()
    check_plan(plan, communities, households)
    t = plan.report["totals"]
    assert t["rows_unassigned"] == int(outside.sum())
    assert t["households_unassigned"] == int(households.loc[outside, "households"].sum())
    assert t["unassigned_by_reason"]["outside_communities"]["rows"] == int(outside.sum())


def test_inputs_are_not_modified(sample_subset):
    s = sample_subset
    keep = [s.low_id, s.tight_id]
    communities = s.communities[s.communities["community_id"].isin(keep)].copy()
    buildings = s.buildings[s.buildings["community_id"].isin(keep)].copy()
    communities.attrs["source"] = "communities.geojson"
    before_c, before_b = communities.copy(deep=True), buildings.copy(deep=True)
    make_grids(communities, buildings, time_limit=TIME_LIMIT, jobs=1)
    assert_geodataframe_equal(communities, before_c)
    assert_geodataframe_equal(buildings, before_b)
    assert communities.attrs == {"source": "communities.geojson"}
    assert "household_id" not in buildings


def test_community_without_households(sample_subset, check_plan):
    """An empty community is one empty ``below_min`` grid covering it, with a note."""
    s = sample_subset
    keep = [s.low_id, s.tight_id]
    communities = s.communities[s.communities["community_id"].isin(keep)]
    buildings = s.buildings[s.buildings["community_id"] == s.tight_id]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = make_grids(communities, buildings, time_limit=TIME_LIMIT, jobs=1)
    check_plan(plan, communities, buildings)
    empty = plan.grids[plan.grids["community_id"] == s.low_id]
    assert empty["households"].tolist() == [0]
    assert empty["status"].tolist() == ["below_min"]
    c = _community(plan.report, s.low_id)
    assert c["infeasible_reason"] == "below_min"
    assert any("no households" in n for n in c["notes"])


# ----------------------------------------------------------- fixed bugs (were xfail)


def test_time_limit_is_the_deterministic_budget(sample_subset):
    s = sample_subset
    communities = s.communities[s.communities["community_id"] == s.tower_id]
    buildings = s.buildings[s.buildings["community_id"] == s.tower_id]
    budget = 0.2
    plan = make_grids(communities, buildings, time_limit=budget, jobs=1)
    c = _community(plan.report, s.tower_id)
    assert not any("pieces" in n for n in c["notes"])  # one solve, one budget
    # CP-SAT stops at the end of an interleaved batch: allow one batch (~0.1) of overshoot.
    assert c["deterministic_time"] <= 1.1 * budget + 0.1, c["deterministic_time"]


def test_oversize_note_names_the_input_row_without_building_ids():
    square = shapely.box(115.0, 30.0, 115.004, 30.004)
    communities = gpd.GeoDataFrame({"community_id": ["420204001001"]}, geometry=[square],
                                   crs=4326)
    households = gpd.GeoDataFrame(
        {"household_id": ["H-a", "H-big", "H-c"], "households": [300, 1200, 350]},
        geometry=[Point(115.001, 30.001), Point(115.002, 30.002), Point(115.003, 30.003)],
        crs=4326,
    )
    plan = make_grids(communities, households, time_limit=0.2, jobs=1)
    notes = " ".join(plan.report["communities"][0]["notes"])
    assert "1200" in notes
    assert "H-big" in notes or "row 2" in notes, notes


def test_unsplittable_community_is_reported_infeasible(unsplittable):
    square = shapely.box(115.0, 30.0, 115.006, 30.002)
    communities = gpd.GeoDataFrame({"community_id": ["420204001001"]}, geometry=[square],
                                   crs=4326)
    counts = [700, 150, 700]
    assert unsplittable(counts, 400, 800)
    households = gpd.GeoDataFrame(
        {"building_id": ["A", "B", "C"], "households": counts},
        geometry=[Point(115.001, 30.001), Point(115.003, 30.001), Point(115.005, 30.001)],
        crs=4326,
    )
    plan = make_grids(communities, households, time_limit=0.2, jobs=1)
    c = plan.report["communities"][0]
    assert not c["bounds_met"]  # nothing can meet them
    assert c["infeasible_reason"] is not None, c
    assert any("700" in n and "150" in n for n in c["notes"]), c["notes"]
