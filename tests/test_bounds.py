"""Household bounds per community: a village at 200-400 beside urban communities at 400-800."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
from batchfiles import run_cli
from conftest import TIME_LIMIT

from gridkit.errors import InputError
from gridkit.partition import GridRules
from gridkit.pipeline import community_bounds, load_community_rules, make_grids

RULES = {"types": {"村": {"min_households": 200, "max_households": 400}}}


@pytest.fixture(scope="module")
def village_run(sample_subset):
    """The subset with its ordinary community made a village (村) by a type column."""
    communities = sample_subset.communities.copy()
    village = sample_subset.other_id
    communities["类型"] = ["村" if c == village else "社区" for c in communities["community_id"]]
    plan = make_grids(
        communities, sample_subset.buildings, time_limit=TIME_LIMIT, jobs=1, community_rules=RULES
    )
    return communities, village, plan


def test_a_village_and_urban_communities_in_one_run(village_run, sample_subset):
    communities, village, plan = village_run
    grids = plan.grids
    mine = grids[grids["community_id"] == village]
    assert len(mine) >= 2
    assert mine["households"].between(200, 400).all()
    assert set(mine["status"]) == {"ok"}
    urban = grids[grids["community_id"] != village]
    ok = urban[urban["status"] == "ok"]
    assert ok["households"].between(400, 800).all() and len(ok) > 0
    # the report gives every community its bounds, and says where the village's came from
    entries = {c["community_id"]: c for c in plan.report["communities"]}
    assert (entries[village]["min_households"], entries[village]["max_households"]) == (200, 400)
    for cid, entry in entries.items():
        if cid != village:
            assert (entry["min_households"], entry["max_households"]) == (400, 800)
    bounds = plan.report["parameters"]["community_bounds"]
    assert bounds["communities"] == {
        village: {"min_households": 200, "max_households": 400, "source": "type:村"}
    }
    # the same village alone at the run's bounds has fewer, bigger grids
    alone = make_grids(
        communities[communities["community_id"] == village],
        sample_subset.buildings[sample_subset.buildings["community_id"] == village],
        time_limit=TIME_LIMIT,
        jobs=1,
    )
    assert len(alone.grids) < len(mine)
    assert "community_bounds" not in alone.report["parameters"]


def test_columns_win_over_the_type_and_the_type_over_the_run():
    import shapely

    c = gpd.GeoDataFrame(
        {
            "community_id": ["A", "B", "C", "D"],
            "community_type": ["村", "社区", "村", None],
            "min_households": [None, 300, "", None],
            "max_households": [None, None, 350, None],
        },
        geometry=[shapely.box(0, 0, 1, 1)] * 4,
        crs=4326,
    )
    b = community_bounds(c, GridRules(target_households=500), community_rules=RULES)
    got = {k: (r.min_households, r.max_households, r.target_households) for k, r in b.items()}
    assert got == {
        "A": (200, 400, None),  # the run's target lies outside the village's bounds
        "B": (300, 800, 500),
        "C": (200, 350, None),
        "D": (400, 800, 500),
    }
    assert b.source == {"A": "type:村", "B": "columns", "C": "columns", "D": "run"}
    assert b.varies


def test_bad_bounds_name_the_file_rows_and_fix(sample_subset, tmp_path):
    c = sample_subset.communities.copy()
    c.attrs["source"] = "communities.geojson"
    c["row"] = range(1, len(c) + 1)
    c["max_households"] = [None, "many", None, 0][: len(c)]
    with pytest.raises(InputError, match=r"communities\.geojson.*`max_households`.*rows 2, 4"):
        community_bounds(c, GridRules())
    c["max_households"] = [None, 300, None, None][: len(c)]
    c["min_households"] = [None, 350, None, None][: len(c)]
    with pytest.raises(InputError, match=r"minimum above their maximum.*350>300"):
        community_bounds(c, GridRules())
    with pytest.raises(InputError, match="no type column"):
        community_bounds(sample_subset.communities, GridRules(), community_rules=RULES)
    bad = tmp_path / "rules.toml"
    bad.write_text('[types."村"]\nmin_households = "200"\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"rules\.toml.*whole number"):
        load_community_rules(bad)
    bad.write_text("[types.村\n", encoding="utf-8")
    with pytest.raises(InputError, match="not valid TOML"):
        load_community_rules(bad)
    bad.write_text('[typo."村"]\nmin_households = 200\n', encoding="utf-8")
    with pytest.raises(InputError, match="unknown key"):
        load_community_rules(bad)


def test_cli_community_rules_match_make_grids(village_run, sample_subset, tmp_path):
    communities, village, plan = village_run
    cpath = tmp_path / "communities.geojson"
    communities.drop(columns=["row"], errors="ignore").to_file(cpath)
    hpath = tmp_path / "households.geojson"
    sample_subset.buildings.to_file(hpath)
    rules = tmp_path / "rules.toml"
    rules.write_text('[types."村"]\nmin_households = 200\nmax_households = 400\n', "utf-8")
    out = tmp_path / "out"
    code, _, err = run_cli([
        "partition", "--communities", str(cpath), "--households", str(hpath),
        "--community-rules", str(rules), "--time-limit", str(TIME_LIMIT), "--jobs", "1",
        "--out", str(out), "--no-map", "-q",
    ])  # fmt: skip
    assert code == 0, err
    grids = gpd.read_file(out / "grids.geojson")
    mine = grids[grids["community_id"] == village]
    assert mine["households"].between(200, 400).all()
    assert sorted(mine["households"]) == sorted(
        plan.grids.loc[plan.grids["community_id"] == village, "households"]
    )
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    entry = next(c for c in report["communities"] if c["community_id"] == village)
    assert (entry["min_households"], entry["max_households"]) == (200, 400)
    # a rules file without a type column in the communities is an error, exit code 2
    plain = tmp_path / "plain.geojson"
    sample_subset.communities.to_file(plain)
    code, _, err = run_cli([
        "partition", "--communities", str(plain), "--households", str(hpath),
        "--community-rules", str(rules), "--out", str(tmp_path / "x"), "-q",
    ])  # fmt: skip
    assert code == 2 and "no type column" in err


def test_regenerate_keeps_a_village_at_its_own_bounds(village_run, sample_subset, tmp_path):
    from gridkit.regenerate import regenerate

    communities, village, plan = village_run
    plan.write(tmp_path / "before")
    again = regenerate(
        tmp_path / "before",
        communities,
        sample_subset.buildings,
        time_limit=TIME_LIMIT,
        jobs=1,
        community_rules=RULES,
    )
    before = plan.grids.set_index("grid_code")["households"]
    after = again.plan.grids.set_index("grid_code")["households"]
    assert after.to_dict() == before.to_dict()  # unchanged inputs: the same grids back
    mine = again.plan.grids[again.plan.grids["community_id"] == village]
    assert set(mine["status"]) == {"ok"} and mine["households"].between(200, 400).all()
    entry = next(c for c in again.plan.report["communities"] if c["community_id"] == village)
    assert (entry["min_households"], entry["max_households"]) == (200, 400)


def test_audit_checks_each_grid_at_its_communitys_bounds(village_run, sample_subset, tmp_path):
    from gridkit.audit import audit_grids

    communities, village, plan = village_run
    grids = plan.grids
    # at the run's bounds the village's 200-400 grids are mostly below the minimum
    plain = audit_grids(grids, sample_subset.buildings, communities=sample_subset.communities)
    problems = plain.grids.set_index("grid_code")["problems"]
    mine = grids.loc[grids["community_id"] == village, "grid_code"]
    assert any("below_min" in str(problems[c]) for c in mine)
    # with the village's own bounds (type + rules) none of its grids is out of bounds
    result = audit_grids(grids, sample_subset.buildings, communities=communities,
                         community_rules=RULES)  # fmt: skip
    problems = result.grids.set_index("grid_code")["problems"]
    assert not any(
        p in str(problems[c]) for c in mine for p in ("below_min", "above_max")
    )
    assert result.report["parameters"]["community_bounds"] == {
        village: {"min_households": 200, "max_households": 400, "source": "type:村"}
    }
    with pytest.raises(InputError, match="needs the communities"):
        audit_grids(grids, sample_subset.buildings, community_rules=RULES)
    # the command line says the same
    cpath = tmp_path / "communities.geojson"
    communities.drop(columns=["row"], errors="ignore").to_file(cpath)
    plan.write(tmp_path / "plan")
    hpath = tmp_path / "households.geojson"
    sample_subset.buildings.to_file(hpath)
    rules = tmp_path / "rules.toml"
    rules.write_text('[types."村"]\nmin_households = 200\nmax_households = 400\n', "utf-8")
    code, _, err = run_cli([
        "audit", "--grids", str(tmp_path / "plan"), "--households", str(hpath),
        "--communities", str(cpath), "--community-rules", str(rules),
        "--out", str(tmp_path / "audit"), "-q",
    ])  # fmt: skip
    assert code in (0, 1), err
    report = json.loads((tmp_path / "audit" / "report.json").read_text(encoding="utf-8"))
    assert village in report["parameters"]["community_bounds"]
