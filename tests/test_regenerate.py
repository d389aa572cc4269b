"""Regenerating a grid map after housing changed: idempotence, stable codes, minimal change.

The fast tests use four neighbouring communities of ``make_sample(seed=0)`` (about
6,600 households in 12 grids, partitioned in ~2 s); the district scenario is ``slow``.
"""

from __future__ import annotations

import argparse
import json
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridkit import checks
from gridkit.cli.regenerate import register
from gridkit.datasets.scenarios import change_sample
from gridkit.errors import GridkitWarning, InputError
from gridkit.pipeline.plan import make_grids
from gridkit.regenerate import CHANGE_COLUMNS, moved_households, read_previous, regenerate

#: Four neighbouring communities: 003006 - 003007 - 003009 - 003010 (003010 is the
#: smallest, with a 408-household grid of three buildings).
SUBSET = ["420204003006", "420204003007", "420204003009", "420204003010"]
TIME_LIMIT = 0.5


@pytest.fixture(scope="module")
def subset(sample):
    communities, buildings = sample
    c = communities[communities["community_id"].isin(SUBSET)].reset_index(drop=True)
    b = buildings[buildings["community_id"].isin(SUBSET)].reset_index(drop=True)
    return c, b


@pytest.fixture(scope="module")
def base(subset, tmp_path_factory):
    """The subset partitioned from scratch and written to a folder."""
    communities, buildings = subset
    plan = make_grids(communities, buildings, time_limit=TIME_LIMIT, jobs=1)
    out = tmp_path_factory.mktemp("base")
    plan.write(out)
    return out, plan


def _verify(plan, communities, *, min_households=400, max_households=800):
    with warnings.catch_warnings():
        warnings.simplefilter("error", GridkitWarning)
        problems = checks.verify_partition(
            plan.grids,
            communities,
            min_households=min_households,
            max_households=max_households,
        )
    assert not any(problems.values()), problems
    assert (plan.grids["status"] == "ok").all(), plan.grids[["grid_code", "status"]]
    assert checks.within_bounds(plan.grids).all()
    assert plan.grids["grid_code"].is_unique


def _cells_codes(plan) -> dict[str, frozenset[str]]:
    """Grid code -> set of building ids (from the assignments)."""
    a = plan.assignments
    return {
        code: frozenset(group["household_id"]) for code, group in a.groupby("grid_code") if code
    }


def test_idempotent(subset, base, tmp_path):
    communities, buildings = subset
    base_dir, _ = base
    plan = regenerate(base_dir, communities, buildings, time_limit=TIME_LIMIT, jobs=1)
    plan.write(tmp_path / "gen1")
    for name in ("grids.geojson", "assignments.csv"):
        assert (tmp_path / "gen1" / name).read_bytes() == (base_dir / name).read_bytes()
    s = plan.summary
    assert s["households_moved"] == 0 and s["households_unchanged_pct"] == 100.0
    assert s["grids_kept"] == s["grids"] == s["grids_previous"]
    assert s["grids_changed"] == s["grids_added"] == s["grids_retired"] == 0
    assert plan.changes.empty and list(plan.changes.columns) == CHANGE_COLUMNS
    assert (plan.diff["change"] == "unchanged").all()
    assert not plan.diff["geometry_changed"].any()
    # a second generation, now with codes.json beside the grids, changes nothing either
    again = regenerate(tmp_path / "gen1", communities, buildings, time_limit=TIME_LIMIT, jobs=1)
    again.write(tmp_path / "gen2")
    assert (tmp_path / "gen2" / "grids.geojson").read_bytes() == (
        base_dir / "grids.geojson"
    ).read_bytes()


def test_demolition_below_min_merges_or_rebalances(subset, base):
    communities, buildings = subset
    base_dir, before = base
    ok = before.grids[before.grids["status"] == "ok"]
    small = ok.loc[ok["households"].idxmin()]
    members = before.assignments.loc[
        before.assignments["grid_code"] == small["grid_code"], "household_id"
    ]
    in_grid = buildings[buildings["building_id"].isin(members)].sort_values("households")
    # demolish the smallest building whose loss leaves the grid below the minimum
    left = int(in_grid["households"].sum()) - in_grid["households"]
    candidates = in_grid[left < 400]
    assert len(candidates) and len(in_grid) > 1, in_grid
    gone = candidates["building_id"].iloc[0]
    changed = buildings[buildings["building_id"] != gone].reset_index(drop=True)
    plan = regenerate(base_dir, communities, changed, time_limit=TIME_LIMIT, jobs=1)
    _verify(plan, communities)
    # only the demolition's community changed; the other grids keep code and buildings
    old, new = _cells_codes(before), _cells_codes(plan)
    cid = small["community_id"]
    for code, ids in old.items():
        if not code.startswith(cid):
            assert new[code] == ids, code
    assert plan.summary["households_unchanged_pct"] >= 90.0
    # what moved is listed, with old and new codes
    moved = plan.changes[plan.changes["change"] == "moved"]
    assert len(moved) and (moved["old_grid_code"] != moved["new_grid_code"]).all()
    assert int(moved["households"].sum()) == plan.summary["households_moved"]
    removed = plan.changes[plan.changes["change"] == "removed"]
    assert removed["household_id"].tolist() == [gone]
    assert plan.summary["grids_changed"] + plan.summary["grids_retired"] >= 1


def test_retired_codes_are_never_reused(subset, base, tmp_path):
    communities, buildings = subset
    base_dir, before = base
    cid = "420204003010"
    grids = before.grids[before.grids["community_id"] == cid]
    victim = grids["grid_code"].iloc[1]  # a middle code: 002
    members = before.assignments.loc[before.assignments["grid_code"] == victim, "household_id"]
    gen1_buildings = buildings[~buildings["building_id"].isin(members)].reset_index(drop=True)
    gen1 = regenerate(base_dir, communities, gen1_buildings, time_limit=TIME_LIMIT, jobs=1)
    gen1.write(tmp_path / "gen1")
    assert gen1.summary["retired_codes"] == [victim]
    _verify(gen1, communities)
    codes = json.loads((tmp_path / "gen1" / "codes.json").read_text(encoding="utf-8"))
    assert victim in codes["communities"][cid]["retired"]
    # every other grid kept its code and buildings
    assert gen1.summary["grids_kept"] == len(before.grids) - 1
    # next year a new estate needs new grids: they get fresh codes, never the retired one
    scenario = change_sample(
        communities,
        gen1_buildings,
        seed=1,
        new_households=1500,
        demolish_share=0.0,
        recount_share=0.0,
        estate_community=cid,
    )
    gen2 = regenerate(
        tmp_path / "gen1", communities, scenario.buildings, time_limit=TIME_LIMIT, jobs=1
    )
    _verify(gen2, communities)
    assert victim not in set(gen2.grids["grid_code"])
    added = gen2.summary["added_codes"]
    assert added, gen2.summary
    issued = max(int(c[-3:]) for c in grids["grid_code"])
    assert all(int(c[-3:]) > issued for c in added), added
    # the new estate's households are "new", not "moved"
    new_rows = gen2.changes[gen2.changes["change"] == "new"]
    assert set(new_rows["household_id"]) == set(scenario.new_buildings)
    assert gen2.summary["households_new"] == 1500
    # the read-back of the folder knows every code ever issued
    assert victim in read_previous(tmp_path / "gen1").issued[cid]


def test_community_boundary_edit(subset, base):
    communities, buildings = subset
    base_dir, before = base
    a_id, b_id = "420204003009", "420204003010"  # 009 takes a strip of 010
    geoms = communities.set_index("community_id").geometry
    metric = communities.estimate_utm_crs()
    g = gpd.GeoSeries([geoms[a_id], geoms[b_id]], crs=4326).to_crs(metric)
    strip = shapely.intersection(g.iloc[1], g.iloc[0].buffer(90.0))
    a_new, b_new = shapely.union(g.iloc[0], strip), shapely.difference(g.iloc[1], strip)
    b_new = max(shapely.get_parts(b_new), key=shapely.area)  # keep it one polygon
    a_new = shapely.difference(a_new.buffer(0), b_new)
    edited = gpd.GeoSeries([a_new, b_new], crs=metric).to_crs(4326).to_numpy()
    changed = communities.copy()
    changed.loc[changed["community_id"] == a_id, "geometry"] = edited[0]
    changed.loc[changed["community_id"] == b_id, "geometry"] = edited[1]
    changed_buildings = buildings.drop(columns="community_id")
    plan = regenerate(base_dir, changed, changed_buildings, time_limit=TIME_LIMIT, jobs=1)
    _verify(plan, changed)
    crossed = plan.changes[
        (plan.changes["community_id"] == a_id) & plan.changes["old_grid_code"].str.startswith(b_id)
    ]
    assert len(crossed), "some buildings changed community with the edit"
    assert crossed["new_grid_code"].str.startswith(a_id).all()
    # grids of untouched communities are kept exactly: same code, buildings and polygon
    untouched = plan.diff[plan.diff["community_id"] == "420204003006"]
    assert (untouched["change"] == "unchanged").all()
    assert not untouched["geometry_changed"].any()
    old = before.grids.set_index("grid_code").geometry
    for code, geom in plan.grids.set_index("grid_code").geometry.items():
        if code.startswith("420204003006"):
            assert shapely.equals_exact(geom, old[code], tolerance=1e-9)
    assert plan.summary["households_unchanged_pct"] >= 80.0


def test_moved_households_relabels_a_from_scratch_plan():
    old = np.array(["a", "a", "b", "b", ""])
    new = np.array(["y", "y", "x", "z", "x"])
    w = np.array([10, 10, 5, 1, 100])
    assert moved_households(old, new, w) == 26
    assert moved_households(old, new, w, relabel=True) == 1


def test_previous_must_be_a_grid_layer(tmp_path, subset):
    communities, buildings = subset
    with pytest.raises(InputError, match=r"grids\.geojson"):
        regenerate(tmp_path, communities, buildings)
    pd.DataFrame({"a": [1]}).pipe(
        lambda f: gpd.GeoDataFrame(f, geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
    ).to_file(tmp_path / "grids.geojson", driver="GeoJSON", engine="pyogrio")
    with pytest.raises(InputError, match="grid_code"):
        regenerate(tmp_path, communities, buildings)


def test_cli_regenerate(subset, base, tmp_path, capsys):
    communities, buildings = subset
    base_dir, _ = base
    communities.to_file(tmp_path / "c.geojson", driver="GeoJSON", engine="pyogrio")
    buildings.to_file(tmp_path / "b.geojson", driver="GeoJSON", engine="pyogrio")
    parser = argparse.ArgumentParser(prog="gridkit")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        [
            "regenerate",
            "--previous",
            str(base_dir / "grids.geojson"),
            "--communities",
            str(tmp_path / "c.geojson"),
            "--households",
            str(tmp_path / "b.geojson"),
            "--id-col",
            "building_id",
            "--out",
            str(tmp_path / "out"),
            "--time-limit",
            str(TIME_LIMIT),
            "--jobs",
            "1",
            "--lang",
            "en",
        ]
    )
    assert args.handler(args) == 0
    out = tmp_path / "out"
    for name in ("grids.geojson", "assignments.csv", "report.json", "changes.csv"):
        assert (out / name).is_file(), name
    for name in ("diff.geojson", "summary.json", "codes.json", "map.html"):
        assert (out / name).is_file(), name
    assert (out / "grids.geojson").read_bytes() == (base_dir / "grids.geojson").read_bytes()
    assert "households unchanged: 100.0%" in capsys.readouterr().out
    assert "changes" in (out / "map.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_district_scenario(sample, tmp_path):
    """The acceptance scenario: estate of 1,500 households, 2 % demolished, 5 % recounted."""
    communities, buildings = sample
    before = make_grids(communities, buildings, time_limit=1.0)
    before.write(tmp_path / "base")
    scenario = change_sample(communities, buildings, seed=0)
    plan = regenerate(tmp_path / "base", communities, scenario.buildings, time_limit=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GridkitWarning)
        problems = checks.verify_partition(plan.grids, communities)
    assert not any(problems.values()), problems
    assert plan.report["totals"]["pct_grids_in_bounds_where_feasible"] == 100.0
    assert plan.summary["households_unchanged_pct"] >= 90.0
    old = before.grids.set_index("grid_code")
    kept = plan.diff[plan.diff["change"] == "unchanged"]
    assert len(kept) >= 0.8 * len(old)
    assert set(kept["grid_code"]) <= set(old.index)
    assert not set(plan.summary["added_codes"]) & set(old.index)
