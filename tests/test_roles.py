"""Tests for the roles a staffing policy defines (issue 21): 社区负责人, 楼栋长, 第一书记, 包联单位.

The acceptance case runs on the sample district (``make_sample(seed=0)``), partitioned on
four communities for speed: 11 grids, 87 buildings of which 46 hold 60 households or
more.  The small cases use the hand-drawn row of five grids of ``tests/test_assign.py``::

    +-------+-------+-------+-------+-------+
    | A-001 | A-002 | A-003 | B-001 | B-002 |
    |  500  |  600  |  700  |  400  |  800  |   households
    +-------+-------+-------+-------+-------+
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, box

from gridkit.datasets import make_sample
from gridkit.errors import InputError
from gridkit.pipeline import make_grids
from gridkit.staffing import (
    ROLES,
    assign_workers,
    load_policy,
    make_roster,
    normalise_role,
    rank_weak_grids,
    read_staffing_buildings,
    read_workers,
    verify_staffing,
    write_workers,
)

X0, Y0, D = 115.0, 30.2, 0.005
CODES = ["A-001", "A-002", "A-003", "B-001", "B-002"]
HOUSEHOLDS = [500, 600, 700, 400, 800]
OFF = {
    **{r: {"per_grid": 0, "assign_all": False}
       for r in ("grid_worker", "grid_leader", "police", "part_time", "volunteer")},
    "mediator": {"per_community": 0},
    "legal_adviser": {"per_community": 0},
}

#: The acceptance policy: 社区负责人, 楼栋长 of buildings of 60 households or more, and
#: Party-member 第一书记 for the 5 weakest grids.
TEAM = {
    "roles": {
        "community_head": {"label": "社区负责人", "scope": "community", "per_community": 1},
        "building_head": {"label": "楼栋长", "aliases": ["楼长"], "scope": "building",
                          "min_households": 60, "per_building": 1, "max_buildings": 2,
                          "home_community": "same"},
        "first_secretary": {"label": "第一书记", "scope": "grid", "weak_grids": 5,
                            "per_grid": 1, "requires": {"party_member": True}},
    }
}


def _grids(**columns) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"grid_code": CODES, "community_id": ["A", "A", "A", "B", "B"],
         "community_name": ["甲社区"] * 3 + ["乙社区"] * 2, "households": HOUSEHOLDS, **columns},
        geometry=[box(X0 + i * D, Y0, X0 + (i + 1) * D, Y0 + D) for i in range(5)], crs=4326,
    )


def _at(i: float, fx: float = 0.5, fy: float = 0.5) -> tuple[float, float]:
    return X0 + (i + fx) * D, Y0 + fy * D


def _workers(people: list[tuple], policy, **columns) -> gpd.GeoDataFrame:
    """People as ``(worker_id, role, (lon, lat) or None, home_community or None)``."""
    frame = pd.DataFrame({
        "worker_id": [p[0] for p in people],
        "name": [f"name {p[0]}" for p in people],
        "role": [p[1] for p in people],
        "lon": [p[2][0] if p[2] else None for p in people],
        "lat": [p[2][1] if p[2] else None for p in people],
        "home_community": [p[3] if len(p) > 3 else None for p in people],
        **columns,
    })
    return read_workers(frame, input_crs="wgs84", policy=policy)


def _policy(**roles) -> dict:
    return {"roles": {**OFF, **roles}}


def _assign(grids, workers, policy, **kwargs):
    plan = assign_workers(grids, workers, policy=policy, time_limit=5, **kwargs)
    assert verify_staffing(plan) == []
    return plan


# --------------------------------------------------------------------------- the sample


@pytest.fixture(scope="module")
def sample4():
    """The first four communities of the sample district, partitioned (11 grids)."""
    communities, buildings = make_sample(seed=0)
    ids = communities["community_id"].iloc[:4].tolist()
    plan = make_grids(communities[communities["community_id"].isin(ids)],
                      buildings[buildings["community_id"].isin(ids)], time_limit=1, jobs=1)
    return plan.grids, plan.buildings


@pytest.fixture(scope="module")
def team_plan(sample4):
    grids, buildings = sample4
    roster = make_roster(grids, seed=0, policy=TEAM, buildings=buildings)
    workers = read_workers(roster, policy=TEAM)
    plan = assign_workers(grids, workers, policy=TEAM, buildings=buildings, time_limit=5)
    return plan, roster, workers


def test_acceptance_the_4a_team_on_the_sample(sample4, team_plan) -> None:
    grids, buildings = sample4
    plan, roster, workers = team_plan
    assert verify_staffing(plan) == []
    assert plan.shortages.empty and plan.summary["totals"]["all_optimal"]
    # 社区负责人: one per community, listed on every grid of it
    heads = plan.roster[plan.roster["role"] == "community_head"]
    assert heads.groupby("community_id")["worker_id"].nunique().eq(1).all()
    assert len(heads) == len(grids) and heads["scope"].eq("community").all()
    # 楼栋长: one per building of 60 households or more, in the building's own community
    big = buildings[buildings["households"] >= 60]
    served = plan.roster[plan.roster["role"] == "building_head"]
    assert sorted(served["building_id"]) == sorted(big["building_id"]) and len(big) == 46
    assert served["scope"].eq("building").all()
    home = plan.people.set_index("worker_id")["home_community"]
    assert (served["community_id"].to_numpy() == home.loc[served["worker_id"]].to_numpy()).all()
    grid_of = dict(zip(big["building_id"], big["grid_code"], strict=True))
    assert (served["grid_code"] == served["building_id"].map(grid_of)).all()
    assert served.groupby("worker_id").size().max() <= 2
    # 第一书记: the 5 weakest grids, ranked independently from the grid workers' roster
    workers_per_grid = (plan.roster[plan.roster["role"] == "grid_worker"]
                        .groupby("grid_code").size().reindex(grids["grid_code"], fill_value=0))
    ratio = grids.set_index("grid_code")["households"] / workers_per_grid.replace(0, np.nan)
    table = pd.DataFrame({"ratio": ratio.fillna(np.inf),
                          "hh": grids.set_index("grid_code")["households"]})
    table["code"] = table.index
    weakest = table.sort_values(["ratio", "hh", "code"], ascending=[False, False, True])
    secretaries = plan.roster[plan.roster["role"] == "first_secretary"]
    assert sorted(secretaries["grid_code"]) == sorted(weakest.index[:5])
    stats = plan.summary["roles"]["first_secretary"]
    assert [g["grid_code"] for g in stats["applies_to"]["weak_grids"]] == list(weakest.index[:5])
    assert plan.summary["roles"]["building_head"]["applies_to"]["units"] == 46
    # every one of them a Party member (the roster says so)
    party = workers.set_index("worker_id")["party_member"]
    assert (party.loc[secretaries["worker_id"]] == "是").all()
    # the grid layer has one column per role, the new ones after the seven
    assert list(plan.grids.columns[-5:-1]) == ["community_head", "building_head",
                                               "first_secretary", "missing_roles"]
    assert not plan.roster.duplicated(["role", "worker_id", "grid_code", "building_id"]).any()
    assert len(roster) == len(workers)


def test_acceptance_shortages_explained_when_a_community_lacks_building_heads(
        sample4, team_plan) -> None:
    grids, buildings = sample4
    _, roster, _ = team_plan
    gone = grids["community_id"].iloc[0]
    keep = ~((roster["role"] == "楼栋长") & (roster["home_community"] == gone))
    # those living there known by their point only: remove by location too
    inside = roster.geometry.within(grids[grids["community_id"] == gone].union_all())
    keep &= ~((roster["role"] == "楼栋长") & inside.to_numpy())
    workers = read_workers(roster[keep.to_numpy()], policy=TEAM)
    plan = _assign(grids, workers, TEAM, buildings=buildings)
    big = buildings[(buildings["households"] >= 60) & (buildings["community_id"] == gone)]
    short = plan.shortages
    assert set(short["role"]) == {"building_head"}
    assert short["scope"].eq("building").all() and short["role_zh"].eq("楼栋长").all()
    assert sorted(short["building_id"]) == sorted(big["building_id"])
    assert short["community_id"].eq(gone).all() and short["missing"].eq(1).all()
    assert (short["grid_code"] == short["building_id"].map(
        dict(zip(big["building_id"], big["grid_code"], strict=True)))).all()
    hires = plan.hires.set_index(["role", "community_id"])["people"].to_dict()
    assert hires == {("building_head", gone): -(-len(big) // 2)}  # two buildings each
    layer = plan.grids.set_index("grid_code")
    per_grid = big.groupby("grid_code").size()
    for code, n in per_grid.items():
        assert layer.loc[code, "missing_roles"] == f"building_head:{n}"
    # the other communities keep every building head
    served = plan.roster[plan.roster["role"] == "building_head"]
    assert not served["community_id"].eq(gone).any()
    assert plan.summary["roles"]["building_head"]["missing"] == len(big)


def test_acceptance_no_first_secretary_without_party_membership(sample4, team_plan) -> None:
    grids, buildings = sample4
    _, roster, _ = team_plan
    roster = roster.copy()
    secretaries = np.flatnonzero(roster["role"] == "第一书记")
    roster.loc[roster.index[secretaries[:-2]], "party_member"] = "否"  # two members left
    workers = read_workers(roster, policy=TEAM)
    plan = _assign(grids, workers, TEAM, buildings=buildings)
    served = plan.roster[plan.roster["role"] == "first_secretary"]
    party = workers.set_index("worker_id")["party_member"]
    assert (party.loc[served["worker_id"]] == "是").all()
    assert served["worker_id"].nunique() <= 2
    people = plan.people.set_index("worker_id")
    refused = people[people["status"] == "ineligible"]
    assert len(refused) == len(secretaries) - 2
    assert refused["reason"].str.contains("requires party_member = yes").all()
    short = plan.shortages[plan.shortages["role"] == "first_secretary"]
    assert short["missing"].sum() == 5 - len(served) and short["role_zh"].eq("第一书记").all()
    report = plan.summary
    assert report["roles"]["first_secretary"]["people_ineligible"] == len(refused)
    assert report["totals"]["ineligible_people"] == len(refused)
    listed = {p["worker_id"] for p in report["people_not_assigned"]
              if p["status"] == "ineligible"}
    assert listed == set(refused.index)


def test_default_policy_and_its_roster_are_unchanged(sample4) -> None:
    grids, _ = sample4
    policy = load_policy()
    assert tuple(policy.roles) == ROLES
    assert [rp.name_zh for rp in policy.roles.values()] == [
        "专职网格员", "网格长", "民警", "兼职网格员", "志愿者", "民调员", "法律顾问"]
    assert policy.to_dict()["roles"]["police"] == {
        "scope": "grid", "per_grid": 1, "max_grids": 3, "same_community": True,
        "assign_all": False}
    # the policy's own roles are drawn after the built-in ones: those stay as they were
    plain = make_roster(grids, seed=3)
    team = make_roster(grids, seed=3, policy={"roles": {
        "community_head": TEAM["roles"]["community_head"]}})
    assert list(plain.columns) == list(team.columns)
    assert len(team) > len(plain) and "社区负责人" in set(team["role"])
    plan = assign_workers(grids, read_workers(plain), time_limit=5)
    assert "building_id" not in plan.roster.columns
    assert "building_id" not in plan.shortages.columns
    assert list(plan.grids.columns[-8:-1]) == [*ROLES[1:], "missing_roles"]


# --------------------------------------------------------------------------- the policy


def test_policy_defines_roles_named_by_key_label_or_alias(tmp_path: Path) -> None:
    path = tmp_path / "team.toml"
    path.write_text(
        '[roles.community_head]\nlabel = "社区负责人"\nscope = "community"\n\n'
        '[roles.lane_head]\nlabel = "街巷长"\naliases = ["巷长", "lane leader"]\n'
        'scope = "building"\nmin_households = 30\nmax_buildings = 4\n\n'
        '[roles.pairing_unit]\nlabel = "包联单位"\nscope = "unit"\nmax_communities = 3\n',
        encoding="utf-8",
    )
    policy = load_policy(path)
    assert list(policy.roles)[len(ROLES):] == ["community_head", "lane_head", "pairing_unit"]
    lane = policy.roles["lane_head"]
    assert (lane.scope, lane.unit, lane.max_units, lane.min_households) == (
        "building", "building", 4, 30)
    assert policy.roles["pairing_unit"].unit == "community"
    for cell, role in [("社区负责人", "community_head"), ("Community-Head", "community_head"),
                       ("街巷长", "lane_head"), ("巷长", "lane_head"), ("Lane Leader", "lane_head"),
                       ("包联单位", "pairing_unit"), ("民警", "police")]:
        assert normalise_role(cell, policy) == role, cell
    assert normalise_role("街巷长") is None  # not without the policy
    table = policy.to_dict()["roles"]["lane_head"]
    assert table["label"] == "街巷长" and table["per_building"] == 1
    assert load_policy({"roles": {"lane_head": table}}).roles["lane_head"] == lane


def test_policy_errors_for_new_roles() -> None:
    bad = {"roles": {
        "caretaker": {"scope": "grid"},  # no label: a typo is not a new role
        "Chief": {"label": "主任", "scope": "grid"},
        "households": {"label": "户", "scope": "grid"},
        "helper": {"label": "网格员", "scope": "grid"},  # a name of grid_worker
        "secretary": {"label": "书记", "scope": "community", "weak_grids": 3},
        "inspector": {"label": "巡查员", "scope": "grid", "weak_grids": 2, "grids": ["A-001"],
                      "weak_by": ["nobody"], "requires": {"age": 3}},
        "lane_head": {"label": "街巷长", "scope": "building", "max_grids": 2},
        "unit": {"label": "包联", "scope": "units"},
        "chair": {"label": "主席", "scope": "unit", "same_community": True,
                  "home_community": "here"},
    }}
    with pytest.raises(InputError) as err:
        load_policy(bad)
    text = str(err.value)
    assert "unknown role [roles.caretaker]" in text and "give its table a `label`" in text
    assert "role key [roles.Chief] must be lowercase" in text
    assert "role key [roles.households] is a column of the grid layer" in text
    assert "name '网格员' already names role `grid_worker`" in text
    assert "[roles.secretary] `weak_grids` applies to scope 'grid' or 'building' only" in text
    assert "[roles.inspector] has both `weak_grids` and `grids`" in text
    assert "weak_by names `nobody`, which is not a role" in text
    assert "[roles.inspector] requires.age = 3" in text
    assert "[roles.lane_head] has `max_grids` but scope = \"building\": use `max_buildings`" in text
    assert "[roles.unit] scope = 'units'" in text
    assert "[roles.chair] home_community = 'here'" in text
    assert "same_community applies to scope = \"grid\" or \"building\" only" in text


def test_roster_with_an_unknown_role_names_the_file_row_and_the_policys_roles(
        tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    pd.DataFrame({"worker_id": ["W1", "W2"], "name": ["甲", "乙"], "role": ["楼栋长", "楼管"],
                  "社区": ["A", "A"]}).to_csv(path, index=False)
    with pytest.raises(InputError) as err:
        read_workers(path, policy=TEAM)
    text = str(err.value)
    assert f"workers '{path}'" in text and "unknown role at row 2 ('楼管')" in text
    assert "building_head/楼栋长" in text and "first_secretary/第一书记" in text
    assert "the roles of policy '<dict>'" in text
    with pytest.raises(InputError, match=r"unknown role at rows 1, 2 .*`policy=\.\.\.`"):
        read_workers(path)  # without the policy 楼栋长 is unknown: the message says why
    # a frame read under one policy is refused by another
    workers = read_workers(pd.DataFrame(
        {"worker_id": ["W1"], "name": ["甲"], "role": ["楼长"], "社区": ["A"]}), policy=TEAM)
    assert workers["role"].tolist() == ["building_head"]
    with pytest.raises(InputError, match="roles not in the staffing policy"):
        assign_workers(_grids(), workers, policy=None)


def test_required_column_missing_names_the_column_the_role_and_the_fix() -> None:
    policy = _policy(first_secretary={"label": "第一书记", "scope": "grid", "per_grid": 1,
                                      "requires": {"党员": True}})
    workers = _workers([("S1", "第一书记", _at(0))], policy)
    with pytest.raises(InputError) as err:
        assign_workers(_grids(), workers, policy=policy)
    text = str(err.value)
    assert "role first_secretary (第一书记) requires column `党员`" in text
    assert "add a `党员` column (是/否)" in text and "remove `党员` from `requires`" in text
    bad = _workers([("S1", "第一书记", _at(0))], policy, 党员=["maybe"])
    with pytest.raises(InputError, match=r"column `党员` .* is not yes/no at row 1 \(maybe\)"):
        assign_workers(_grids(), bad, policy=policy)


# --------------------------------------------------------------------------- scopes and rules


def test_text_requirement_and_home_community_same() -> None:
    # 双报到 Party members serve grids of the community they live in; a lawyer-skilled
    # adviser role takes only people whose skills mention 法律
    policy = _policy(
        dual_report={"label": "双报到党员", "scope": "grid", "per_grid": 1,
                     "home_community": "same", "requires": {"party_member": True}},
        adviser={"label": "法律明白人", "scope": "community", "per_community": 1,
                 "requires": {"skills": ["法律", "调解"]}},
    )
    people = [("P1", "双报到党员", _at(2, 0.9), "A"), ("P2", "双报到党员", _at(3, 0.1), "B"),
              ("P3", "双报到党员", None, "A"), ("P4", "双报到党员", _at(4), None),
              ("P5", "双报到党员", _at(0), "A"),
              ("L1", "法律明白人", _at(0)), ("L2", "法律明白人", _at(4)),
              ("L3", "法律明白人", _at(4))]
    workers = _workers(people, policy,
                       party_member=["是", "1", "yes", "是", "否", "", "", ""],
                       skills=["", "", "", "", "", "律师、法律援助", "会计", "人民调解"])
    plan = _assign(_grids(), workers, policy)
    rows = plan.roster[plan.roster["role"] == "dual_report"]
    home = plan.people.set_index("worker_id")["home_community"]
    assert (rows["community_id"].to_numpy() == home.loc[rows["worker_id"]].to_numpy()).all()
    assert set(rows["worker_id"]) == {"P1", "P2", "P3", "P4"}  # P5 is not a member
    short = plan.shortages[plan.shortages["role"] == "dual_report"]
    assert short.groupby("community_id")["missing"].sum().to_dict() == {"A": 1}
    advisers = plan.roster[plan.roster["role"] == "adviser"]
    assert set(advisers["worker_id"]) == {"L1", "L3"}  # L2 is an accountant
    status = plan.people.set_index("worker_id")["status"]
    assert status["P5"] == "ineligible" and status["L2"] == "ineligible"


def test_unit_scope_pairs_units_with_communities() -> None:
    policy = _policy(pairing_unit={"label": "包联单位", "scope": "unit", "per_community": 2,
                                   "max_communities": 2})
    units = [("U1", "包联单位", _at(1, 0.5, 2)), ("U2", "包联单位", _at(3.5, 0.5, 2)),
             ("U3", "包联单位", _at(2.5, 0.5, 3))]
    plan = _assign(_grids(), _workers(units, policy), policy)
    rows = plan.roster[plan.roster["role"] == "pairing_unit"]
    assert rows["scope"].eq("unit").all()
    per_comm = rows.drop_duplicates(["community_id", "worker_id"]).groupby("community_id").size()
    assert per_comm.to_dict() == {"A": 2, "B": 2}
    assert rows.groupby("worker_id")["community_id"].nunique().max() <= 2
    assert len(rows) == 2 * len(CODES)  # listed on every grid of the community
    layer = plan.grids.set_index("grid_code")
    assert layer.loc["A-001", "pairing_unit"].count("、") == 1
    # one unit short: the shortage is the community's, with scope "unit"
    plan = _assign(_grids(), _workers(units[:1], policy), policy)
    short = plan.shortages
    assert short["scope"].eq("unit").all() and short["grid_code"].eq("").all()
    assert short.groupby("community_id")["missing"].sum().to_dict() == {"A": 1, "B": 1}


def test_grid_types_and_listed_grids_limit_a_role() -> None:
    # a school grid (专属网格) gets a dedicated worker; residential grids do not
    policy = _policy(school_worker={"label": "专属网格员", "scope": "grid", "per_grid": 1,
                                    "grid_types": ["school"]},
                     grid_worker={"per_grid": 1})
    typed = _grids(grid_type=["综合网格", "school", "comprehensive", None, "School"])
    people = [(f"W{i}", "grid_worker", _at(i)) for i in range(5)] + [
        ("S1", "专属网格员", _at(1)), ("S2", "专属网格员", _at(0))]
    plan = _assign(typed, _workers(people, policy), policy)
    school = plan.roster[plan.roster["role"] == "school_worker"]
    assert sorted(school["grid_code"]) == ["A-002", "B-002"]
    assert plan.roster[plan.roster["role"] == "grid_worker"]["grid_code"].nunique() == 5
    assert plan.applies == {"school_worker": ["A-002", "B-002"]}
    # without a grid_type column every grid is comprehensive
    plan = _assign(_grids(), _workers(people, policy), policy)
    assert plan.roster[plan.roster["role"] == "school_worker"].empty
    assert plan.shortages.empty
    policy = _policy(grid_worker={"per_grid": 1}, school_worker={
        "label": "专属网格员", "scope": "grid", "grid_types": ["comprehensive"],
        "grids": ["A-001", "B-001"]})
    plan = _assign(_grids(), _workers(people, policy), policy)
    assert sorted(plan.roster.loc[plan.roster["role"] == "school_worker", "grid_code"]) == [
        "A-001", "B-001"]
    policy["roles"]["school_worker"]["grids"] = ["A-001", "Z-999"]
    with pytest.raises(InputError, match=r"grids lists codes not in the grid layer \(Z-999\)"):
        assign_workers(_grids(), _workers(people, policy), policy=policy)


def test_weak_grids_go_first_to_grids_lacking_workers() -> None:
    # grid workers for A-001, A-002 and B-002 only: A-003 and B-001 have nobody, so they
    # are the weakest (A-003 first: more households); then B-002 (800 per worker)
    policy = _policy(grid_worker={"per_grid": 1}, first_secretary={
        "label": "第一书记", "scope": "grid", "weak_grids": 3})
    people = [("W0", "grid_worker", _at(0)), ("W1", "grid_worker", _at(1)),
              ("W4", "grid_worker", _at(4))] + [
        (f"S{i}", "第一书记", _at(i, 0.5, 2)) for i in range(5)]
    plan = _assign(_grids(), _workers(people, policy), policy)
    ranking = plan.summary["roles"]["first_secretary"]["applies_to"]["weak_grids"]
    assert [r["grid_code"] for r in ranking] == ["A-003", "B-001", "B-002"]
    assert ranking[0]["households_per_person"] is None and ranking[2]["people"] == 1
    served = plan.roster[plan.roster["role"] == "first_secretary"]
    assert sorted(served["grid_code"]) == ["A-003", "B-001", "B-002"]
    # nobody to send: the shortages are the weak grids'
    plan = _assign(_grids(), _workers(people[:3], policy), policy)
    short = plan.shortages[plan.shortages["role"] == "first_secretary"]
    assert sorted(short["grid_code"]) == ["A-003", "B-001", "B-002"]


def test_rank_weak_grids_orders_by_households_per_person() -> None:
    table = rank_weak_grids(["C", "A", "B", "D", "E"], [600, 600, 800, 300, 900], [1, 1, 2, 0, 0])
    assert table["grid_code"].tolist() == ["E", "D", "A", "C", "B"]
    assert table["rank"].tolist() == [1, 2, 3, 4, 5]
    assert table["households_per_person"].tolist() == [None, None, 600.0, 600.0, 400.0]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 3)), min_size=1, max_size=12),
       st.randoms(use_true_random=False))
def test_rank_weak_grids_property(grids, rnd) -> None:
    codes = [f"G{i:02d}" for i in range(len(grids))]
    hh = [g[0] for g in grids]
    people = [g[1] for g in grids]
    table = rank_weak_grids(codes, hh, people)
    order = list(range(len(codes)))
    rnd.shuffle(order)
    again = rank_weak_grids([codes[i] for i in order], [hh[i] for i in order],
                            [people[i] for i in order])
    assert table["grid_code"].tolist() == again["grid_code"].tolist()  # input order: no matter
    ratio = [np.inf if p is None else p for p in table["households_per_person"]]
    assert all(a >= b for a, b in itertools.pairwise(ratio))
    assert sorted(table["grid_code"]) == codes


# --------------------------------------------------------------------------- buildings


def _buildings(points: list[tuple[str, float, float, int]], **columns) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"building_id": [p[0] for p in points], "households": [p[3] for p in points],
         **columns},
        geometry=[Point(X0 + p[1] * D, Y0 + p[2] * D) for p in points], crs=4326,
    )


def test_buildings_without_grid_code_are_placed_and_bad_ones_reported(tmp_path: Path) -> None:
    layer = _grids()
    points = _buildings([("b2", 1.5, 0.5, 70), ("b1", 3.2, 0.2, 40)])
    placed = read_staffing_buildings(points, layer)
    assert placed["building_id"].tolist() == ["b1", "b2"]
    assert placed["grid_code"].tolist() == ["B-001", "A-002"]
    assert placed["community_id"].tolist() == ["B", "A"]
    with pytest.raises(InputError, match=r"grid_code not in the grid layer \('Z-1' at row 1\)"):
        read_staffing_buildings(_buildings([("b1", 1.5, 0.5, 70)], grid_code=["Z-1"]), layer)
    with pytest.raises(InputError, match="building outside every grid at row 2"):
        read_staffing_buildings(_buildings([("b1", 1.5, 0.5, 70), ("b2", 1.5, 5, 70)]), layer)
    with pytest.raises(InputError, match="CLI `--buildings PATH`"):
        read_staffing_buildings(tmp_path, layer)
    policy = _policy(building_head={"label": "楼栋长", "scope": "building"})
    workers = _workers([("B1", "楼栋长", _at(1))], policy)
    with pytest.raises(InputError, match="no buildings were found beside the grids"):
        assign_workers(layer, workers, policy=policy)


def test_building_roles_read_the_plans_buildings_beside_the_grids(sample4, tmp_path) -> None:
    grids, buildings = sample4
    grids.to_file(tmp_path / "grids.geojson")
    buildings.to_file(tmp_path / "buildings.geojson")
    policy = {"roles": {"building_head": TEAM["roles"]["building_head"]}}
    roster = make_roster(tmp_path, seed=1, policy=policy)
    path = write_workers(roster, tmp_path / "workers.csv")
    workers = read_workers(path, input_crs="wgs84", policy=policy)
    plan = assign_workers(tmp_path, workers, policy=policy, time_limit=5)
    assert verify_staffing(plan) == []
    assert plan.roster["building_id"].ne("").sum() == 46
    out = plan.write(tmp_path / "staffing")
    table = pd.read_csv(out["roster"], dtype=str, keep_default_na=False)
    assert list(table.columns[-2:]) == ["building_id", "phone"]
    assert (table["building_id"] != "").sum() == 46
    short = pd.read_csv(out["shortages"], dtype=str)
    assert list(short.columns)[-1] == "building_id"
    report = json.loads(out["report"].read_text(encoding="utf-8"))
    assert report["roles"]["building_head"]["label_zh"] == "楼栋长"
    assert report["parameters"]["policy"]["roles"]["building_head"]["min_households"] == 60
    layer = gpd.read_file(out["grids"])
    assert "building_head" in layer.columns and layer["building_head"].ne("").all()
    # re-staffing keeps every building head in place
    again = assign_workers(tmp_path, workers, policy=policy, previous=tmp_path / "staffing",
                           time_limit=5)
    assert again.summary["totals"]["restaffing"]["people_moved"] == 0
    assert (again.roster.loc[again.roster["role"] == "building_head", "status"] == "kept").all()


def test_untrusted_names_of_new_roles_are_formula_guarded(tmp_path: Path) -> None:
    policy = _policy(community_head={"label": "社区负责人", "scope": "community"})
    workers = _workers([("H1", "社区负责人", _at(0)), ("H2", "社区负责人", _at(4))], policy)
    workers["name"] = ["=HYPERLINK(\"http://x\")", "@SUM(1)"]
    out = _assign(_grids(), workers, policy).write(tmp_path)
    text = out["roster"].read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in text and "'@SUM" in text


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    buildings=st.lists(st.tuples(st.floats(0.05, 4.95), st.floats(0.05, 0.95),
                                 st.integers(10, 200)), min_size=1, max_size=8),
    people=st.lists(st.tuples(st.floats(0.05, 4.95), st.floats(0.05, 0.95), st.booleans()),
                    min_size=0, max_size=6),
    min_households=st.integers(1, 150),
    max_buildings=st.integers(1, 3),
    same=st.booleans(),
)
def test_building_roles_obey_every_rule(buildings, people, min_households, max_buildings,
                                        same) -> None:
    policy = _policy(building_head={
        "label": "楼栋长", "scope": "building", "min_households": min_households,
        "max_buildings": max_buildings, "requires": {"resident": True},
        **({"home_community": "same"} if same else {})})
    blds = _buildings([(f"b{i}", x, y, h) for i, (x, y, h) in enumerate(buildings)])
    workers = _workers([(f"P{i}", "楼栋长", (X0 + x * D, Y0 + y * D))
                        for i, (x, y, _) in enumerate(people)]
                       or [("P0", "楼栋长", _at(0))], policy,
                       resident=[("是" if ok else "否") for *_, ok in people] or ["否"])
    plan = assign_workers(_grids(), workers, policy=policy, buildings=blds, time_limit=5)
    assert verify_staffing(plan) == []
    big = {f"b{i}" for i, (*_, h) in enumerate(buildings) if h >= min_households}
    served = plan.roster[plan.roster["role"] == "building_head"]
    short = plan.shortages
    assert set(served["building_id"]) | set(short["building_id"]) == big
    assert set(served["building_id"]).isdisjoint(short["building_id"])
    ok = workers.set_index("worker_id")["resident"] == "是"
    assert ok.loc[served["worker_id"]].all()
    assert served.groupby("worker_id").size().le(max_buildings).all()
    if same:
        home = plan.people.set_index("worker_id")["home_community"]
        assert (served["community_id"].to_numpy()
                == home.loc[served["worker_id"]].to_numpy()).all()


def test_the_documented_team_policy_runs(sample4, tmp_path: Path) -> None:
    text = (Path(__file__).parents[1] / "docs" / "staffing.md").read_text(encoding="utf-8")
    block = text.split("# team.toml")[1].split("\n", 1)[1].split("```")[0]
    path = tmp_path / "team.toml"
    path.write_text(block, encoding="utf-8")
    policy = load_policy(path)
    assert list(policy.roles)[len(ROLES):] == [
        "community_head", "building_head", "lane_head", "first_secretary", "dual_report",
        "pairing_unit", "school_worker"]
    grids, buildings = sample4
    roster = make_roster(grids, seed=2, policy=path, buildings=buildings)
    plan = _assign(grids, read_workers(roster, policy=path), path, buildings=buildings)
    assert plan.shortages.empty
    roles = set(plan.roster["role"])
    assert roles == set(policy.roles) - {"school_worker"}  # no school grid in the sample
    lanes = plan.roster[plan.roster["role"] == "lane_head"]
    assert lanes.groupby("building_id").size().max() == 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True),
                          st.text(alphabet="楼栋长书记单位队员街巷甲乙丙", min_size=2,
                                  max_size=5),
                          st.sampled_from(("grid", "community", "building", "unit"))),
                min_size=1, max_size=5, unique_by=(lambda r: r[0], lambda r: r[1])))
def test_policy_roles_are_named_by_key_and_label(roles) -> None:
    # the alphabet holds no built-in role name (专职网格员, 民警, ...): every label is new
    roles = [(f"r_{key}", label, scope) for key, label, scope in roles]
    policy = load_policy({"roles": {key: {"label": label, "scope": scope}
                                    for key, label, scope in roles}})
    assert list(policy.roles) == [*ROLES, *(key for key, _, _ in roles)]
    for key, label, scope in roles:
        assert normalise_role(key, policy) == key
        assert normalise_role(f" {label} ", policy) == key
        assert normalise_role(key.upper().replace("_", "-"), policy) == key
        assert policy.roles[key].scope == scope and policy.roles[key].name_zh == label
    assert normalise_role("民警", policy) == "police"


def test_cli_assign_with_a_team_policy(sample4, tmp_path: Path) -> None:
    """`gridkit assign --policy team.toml`: the roster names the new roles; buildings beside."""
    from batchfiles import run_cli

    grids, buildings = sample4
    folder = tmp_path / "plan"
    folder.mkdir()
    grids.to_file(folder / "grids.geojson")
    buildings.to_file(folder / "buildings.geojson")
    text = (Path(__file__).parents[1] / "docs" / "staffing.md").read_text(encoding="utf-8")
    policy = tmp_path / "team.toml"
    policy.write_text(text.split("# team.toml")[1].split("\n", 1)[1].split("```")[0], "utf-8")
    roster = write_workers(
        make_roster(grids, seed=2, policy=policy, buildings=buildings), tmp_path / "workers.csv"
    )
    out = tmp_path / "staffing"
    code, _, err = run_cli([
        "assign", "--grids", str(folder), "--workers", str(roster), "--input-crs", "wgs84",
        "--policy", str(policy), "--out", str(out), "--no-map", "-q",
    ])  # fmt: skip
    assert code == 0, err
    table = pd.read_csv(out / "roster.csv", dtype=str, keep_default_na=False)
    assert {"community_head", "building_head", "first_secretary"} <= set(table["role"])
    assert (table.loc[table["role"] == "building_head", "building_id"] != "").all()
    # an explicit --buildings gives the same plan
    code, _, err = run_cli([
        "assign", "--grids", str(folder / "grids.geojson"), "--workers", str(roster),
        "--input-crs", "wgs84", "--policy", str(policy), "--buildings",
        str(folder / "buildings.geojson"), "--out", str(tmp_path / "again"), "--no-map", "-q",
    ])  # fmt: skip
    assert code == 0, err
    again = pd.read_csv(tmp_path / "again" / "roster.csv", dtype=str, keep_default_na=False)
    assert again.equals(table)


def test_dedicated_grids_get_their_own_worker_and_not_the_communitys() -> None:
    """``grid_types = ["dedicated"]``: every dedicated grid (any type but comprehensive)."""
    policy = _policy(
        grid_worker={"per_grid": 1, "grid_types": ["comprehensive"]},
        dedicated_worker={"label": "专属网格员", "scope": "grid", "per_grid": 1,
                          "max_grids": 1, "grid_types": ["dedicated"]},
    )  # fmt: skip
    typed = _grids(grid_type=["comprehensive", "school", "hospital", None, "market"])
    people = [(f"W{i}", "grid_worker", _at(i)) for i in range(5)] + [
        (f"D{i}", "专属网格员", _at(i)) for i in (1, 2)]
    plan = _assign(typed, _workers(people, policy), policy)
    roles = plan.roster.groupby("role")["grid_code"].agg(sorted)
    assert roles["dedicated_worker"] == ["A-002", "A-003"]
    assert roles["grid_worker"] == ["A-001", "B-001"]
    short = plan.shortages.set_index("grid_code")["role"]
    assert short.to_dict() == {"B-002": "dedicated_worker"}  # the market has nobody yet
