"""Tests for staffing: gridkit.roster (rosters, policies, generator), gridkit.assign and its core.

Fixtures are drawn by hand: a row of five square grids in two communities near Huangshi
(0.005 degree ≈ 480 m east-west, 555 m north-south), west to east::

    +-------+-------+-------+-------+-------+
    | A-001 | A-002 | A-003 | B-001 | B-002 |
    |  500  |  600  |  700  |  400  |  800  |   households
    +-------+-------+-------+-------+-------+
    |<---- community A ---->|<- community B ->|

People live at ``_at(i, fx, fy)``: fractions of grid ``i``'s box (``fy > 1`` is north of
the row, outside every grid).  Policies switch every role off except those under test.
"""

from __future__ import annotations

import argparse
import itertools
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from gridkit.cli import assign as _cli_assign
from gridkit.errors import GridkitWarning, InputError
from gridkit.staffing._model import (
    RoleProblem,
    evaluate,
    greedy,
    solve_role,
)
from gridkit.staffing._problem import hires_value as _hires_value
from gridkit.staffing._problem import restaffing_value as _restaffing_value
from gridkit.staffing.assign import assign_workers
from gridkit.staffing.grids import read_staffing_grids as read_grids
from gridkit.staffing.plan import ROSTER_COLUMNS, SHORTAGE_COLUMNS, verify_staffing
from gridkit.staffing.policy import ROLES, load_policy
from gridkit.staffing.roster import WORKER_COLUMNS, mask_phone, read_workers, write_workers
from gridkit.staffing.synthetic import make_roster

X0, Y0, D = 115.0, 30.2, 0.005
CODES = ["A-001", "A-002", "A-003", "B-001", "B-002"]
HOUSEHOLDS = [500, 600, 700, 400, 800]
GRID_ROLES = ("grid_worker", "grid_leader", "police", "part_time", "volunteer")
COMMUNITY_ROLES = ("mediator", "legal_adviser")


def _grids() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "grid_code": CODES,
            "grid_name": [f"grid {c}" for c in CODES],
            "community_id": ["A", "A", "A", "B", "B"],
            "community_name": ["甲社区", "甲社区", "甲社区", "乙社区", "乙社区"],
            "households": HOUSEHOLDS,
        },
        geometry=[box(X0 + i * D, Y0, X0 + (i + 1) * D, Y0 + D) for i in range(5)],
        crs=4326,
    )


def _at(i: float, fx: float = 0.5, fy: float = 0.5) -> tuple[float, float]:
    return X0 + (i + fx) * D, Y0 + fy * D


def _roster(*people: tuple, **columns) -> pd.DataFrame:
    """People as ``(worker_id, role, (lon, lat) or None, home_community or None)``."""
    data = {
        "worker_id": [p[0] for p in people],
        "name": [f"name {p[0]}" for p in people],
        "role": [p[1] for p in people],
        "lon": [p[2][0] if p[2] else None for p in people],
        "lat": [p[2][1] if p[2] else None for p in people],
        "home_community": [p[3] if len(p) > 3 else None for p in people],
    }
    data.update(columns)
    return pd.DataFrame(data)


def _workers(*people: tuple, **columns) -> gpd.GeoDataFrame:
    return read_workers(_roster(*people, **columns), input_crs="wgs84")


def _only(**tables: dict) -> dict:
    """A policy requiring nothing except the given role tables."""
    roles: dict[str, dict] = {r: {"per_grid": 0, "assign_all": False} for r in GRID_ROLES}
    roles |= {r: {"per_community": 0} for r in COMMUNITY_ROLES}
    for role, table in tables.items():
        roles[role] = {**roles[role], **table}
    return {"roles": roles}


def _assign(workers, policy, **kwargs):
    plan = assign_workers(_grids(), workers, policy=policy, time_limit=5, **kwargs)
    assert verify_staffing(plan) == []
    return plan


def _where(plan, worker: str) -> list[str]:
    return sorted(plan.roster.loc[plan.roster["worker_id"] == worker, "grid_code"])


# --------------------------------------------------------------------------- reading rosters


def test_read_workers_accepts_english_and_chinese_roles_and_aliases() -> None:
    roles = ["grid_worker", "专职网格员", "Part-time", "兼职网格员", "网格长", "民警",
             "民调员", "法律顾问", "志愿者", "legal_advisor"]
    frame = pd.DataFrame({
        "工号": [f"P{i}" for i in range(len(roles))],
        "姓名": [f"人{i}" for i in range(len(roles))],
        "岗位": roles,
        "社区": "A",
        "电话": "13812345678",
    })
    workers = read_workers(frame)
    assert tuple(workers.columns[: len(WORKER_COLUMNS)]) == WORKER_COLUMNS
    assert workers["role"].tolist() == [
        "grid_worker", "grid_worker", "part_time", "part_time", "grid_leader", "police",
        "mediator", "legal_adviser", "volunteer", "legal_adviser",
    ]
    assert workers.crs.to_epsg() == 4326
    assert workers.geometry.isna().all()  # no coordinates: home community only
    assert (workers["row"] == np.arange(1, len(roles) + 1)).all()


def test_bad_roster_lists_every_problem_with_rows_and_fix() -> None:
    frame = _roster(
        ("W1", "grid_worker", _at(0)),
        ("W2", "caretaker", _at(1)),  # unknown role
        ("W3", "police", None, None),  # no location at all
        ("W1", "grid_worker", _at(2)),  # duplicated id
        ("W5", "", _at(3)),  # missing role
    )
    with pytest.raises(InputError) as err:
        read_workers(frame, input_crs="wgs84")
    text = str(err.value)
    assert "5 problems" not in text  # one line per kind of problem, not per row
    assert "unknown role at row 2 ('caretaker')" in text
    assert "专职网格员" in text  # the fix lists the accepted roles
    assert "duplicated id" in text and "'W1' at rows 1, 4" in text
    assert "no home location at row 3" in text and "home community" in text
    assert "is empty at row 5" in text
    assert "Row numbers are 1-based" in text


def test_bad_roster_columns_and_values() -> None:
    with pytest.raises(InputError, match=r"no role column .*Rename the column"):
        read_workers(pd.DataFrame({"worker_id": ["a"], "name": ["x"], "社区": ["A"]}))
    frame = _roster(("W1", "police", _at(0)), ("W2", "police", _at(1)),
                    max_grids=["two", "0"], unavailable=["maybe", "否"])
    with pytest.raises(InputError) as err:
        read_workers(frame, input_crs="wgs84")
    assert "column `max_grids` is not a whole number ≥ 1 at rows 1, 2" in str(err.value)
    assert "not yes/no at row 1 (maybe)" in str(err.value)
    frame = _roster(("W1", "police", _at(0)), pinned_grid=["A-001"], unavailable=["是"])
    with pytest.raises(InputError, match="both pinned to a grid and unavailable at row 1"):
        read_workers(frame, input_crs="wgs84")
    frame = _roster(("W1", "police", (30.2, 115.0)))  # lat, lon swapped
    with pytest.raises(InputError, match="swapped at row 1"):
        read_workers(frame, input_crs="wgs84")


def test_table_without_crs_warns_and_gcj02_is_converted() -> None:
    frame = _roster(("W1", "police", _at(0)))
    with pytest.warns(GridkitWarning, match="WGS84 lon/lat was assumed"):
        read_workers(frame)
    gcj = read_workers(frame, input_crs="gcj02")
    wgs = read_workers(frame, input_crs="wgs84")
    shift = gcj.to_crs(32650).distance(wgs.to_crs(32650)).iloc[0]
    assert 100 < shift < 1000  # the GCJ-02 offset was removed


def test_read_workers_from_xlsx_and_point_layer(tmp_path: Path) -> None:
    pytest.importorskip("openpyxl")
    roster = make_roster(_grids(), seed=3)
    path = write_workers(roster, tmp_path / "workers.xlsx")
    from_xlsx = read_workers(path, input_crs="wgs84")
    assert from_xlsx["worker_id"].tolist() == roster["worker_id"].tolist()
    layer = tmp_path / "workers.geojson"
    roster.to_file(layer, driver="GeoJSON")
    from_layer = read_workers(layer)
    assert from_layer["role"].tolist() == from_xlsx["role"].tolist()
    assert from_layer.geometry.isna().tolist() == roster.geometry.isna().tolist()


def test_mask_phone() -> None:
    assert mask_phone("138 1234 5678") == "138****5678"
    assert mask_phone(None) is None


# --------------------------------------------------------------------------- policies


def test_default_policy_file_is_documented_and_complete() -> None:
    policy = load_policy()
    assert tuple(policy.roles) == ROLES
    assert policy.roles["grid_worker"].max_units == 1
    assert policy.roles["police"].max_units == 3 and policy.roles["police"].same_community
    assert policy.roles["mediator"].scope == "community"
    text = (Path(__file__).parents[1] / "gridkit" / "policies" / "default.toml").read_text(
        encoding="utf-8"
    )
    for key in ("per_grid", "max_grids", "same_community", "assign_all", "per_community",
                "cross_community_m", "balance_m_per_household", "idle_m"):
        assert key in text


def test_policy_errors_name_the_key_and_the_fix(tmp_path: Path) -> None:
    bad = {
        "roles": {
            "police": {"max_grid": 2},  # typo
            "mediator": {"per_grid": 1},  # wrong scope key
            "caretaker": {},
            "grid_worker": {"max_per_grid": 0, "per_grid": 2},
        },
        "weights": {"cross_community_m": -5},
    }
    with pytest.raises(InputError) as err:
        load_policy(bad)
    text = str(err.value)
    assert "unknown key `max_grid` in [roles.police]" in text
    assert "has `per_grid` but scope = \"community\": use `per_community`" in text
    assert "unknown role [roles.caretaker]" in text
    assert "[roles.grid_worker] max_per_grid = 0" in text
    assert "[weights] cross_community_m = -5" in text
    path = tmp_path / "policy.toml"
    path.write_text("[roles.police\nmax_grids = 2\n", encoding="utf-8")
    with pytest.raises(InputError, match="not valid TOML"):
        load_policy(path)
    path.write_text("[roles.police]\nscope = \"community\"\nper_community = 1\n", "utf-8")
    assert load_policy(path).roles["police"].max_units == 1  # a new scope: a fresh table


# --------------------------------------------------------------------------- assigning


def test_everyone_nearest_when_enough_people_and_optimal() -> None:
    workers = _workers(*[(f"W{i}", "grid_worker", _at(i, 0.2)) for i in range(5)],
                       ("W9", "grid_worker", _at(0, 0.3, 3)))  # spare, far north
    plan = _assign(workers, _only(grid_worker={"per_grid": 1}))
    assert [_where(plan, f"W{i}") for i in range(5)] == [[c] for c in CODES]
    assert plan.roster["distance_m"].eq(0).all()
    assert plan.summary["totals"]["all_optimal"]
    assert plan.summary["roles"]["grid_worker"]["solver"]["gap"] == 0
    spare = plan.people.set_index("worker_id").loc["W9"]
    assert spare["status"] == "spare" and "not needed" in spare["reason"]
    assert plan.shortages.empty and list(plan.shortages.columns) == list(SHORTAGE_COLUMNS)
    assert list(plan.roster.columns) == list(ROSTER_COLUMNS)


def test_optimal_plan_beats_greedy_nearest_worker() -> None:
    # Grid A-001 comes first; its nearest person X is the only one near A-002 too,
    # and the second person Y is near A-001 only: greedy gives X to A-001 and sends Y
    # far to A-002; the optimum swaps them.
    workers = _workers(("X", "grid_worker", _at(0, 0.95)), ("Y", "grid_worker", _at(-1, 0.5)))
    policy = _only(grid_worker={"per_grid": 1})
    grids = _grids().iloc[:2]
    plan = assign_workers(grids, workers, policy=policy)
    assert _where(plan, "X") == ["A-002"] and _where(plan, "Y") == ["A-001"]
    from gridkit.staffing._inputs import prepare as _prepare

    ctx = _prepare(read_grids(grids), workers, load_policy(policy))
    (ri,) = ctx.roles
    chosen = greedy(ri.problem, key=ri.distance)
    greedy_total = ri.distance[chosen].sum()
    assert plan.summary["totals"]["total_distance_m"] < greedy_total


def test_capacities_police_covers_up_to_three_grids_of_one_community() -> None:
    officers = [("P1", "police", _at(1)), ("P2", "police", _at(3.5)),
                ("P3", "police", _at(2.5, 0.5, 4))]
    plan = _assign(_workers(*officers), _only(police={"per_grid": 1}))
    assert _where(plan, "P1") == ["A-001", "A-002", "A-003"]
    assert _where(plan, "P2") == ["B-001", "B-002"]
    assert plan.people.set_index("worker_id").loc["P3", "status"] == "spare"
    # a roster capacity overrides the policy's: P1 may take two grids only
    plan = _assign(_workers(*officers, max_grids=[2, None, None]), _only(police={"per_grid": 1}))
    counts = plan.roster.groupby("worker_id").size()
    assert counts["P1"] == 2 and counts.max() <= 3
    assert plan.roster.groupby("worker_id")["community_id"].nunique().max() == 1
    # and a households capacity: nobody above 1,300 households
    plan = _assign(_workers(*officers, max_households=[1300, 1300, 1300]),
                   _only(police={"per_grid": 1}))
    load = plan.roster.merge(_grids()[["grid_code", "households"]]).groupby("worker_id")
    assert load["households"].sum().max() <= 1300
    assert plan.shortages.empty


def test_shortages_say_which_grids_lack_which_role_and_who_would_close_the_gap() -> None:
    workers = _workers(("W1", "grid_worker", _at(0)), ("P1", "police", _at(3)),
                       ("M1", "mediator", _at(1)))
    policy = _only(grid_worker={"per_grid": 1}, police={"per_grid": 1},
                   mediator={"per_community": 1})
    plan = _assign(workers, policy)
    short = plan.shortages
    lacking = short[short["role"] == "grid_worker"]
    assert lacking["grid_code"].tolist() == ["A-002", "A-003", "B-001", "B-002"]
    assert (lacking["missing"] == 1).all() and (lacking["assigned"] == 0).all()
    # fewest new people first (one either way), then fewest slots left to them: P1, who
    # lives in B, covers A's three grids and one new officer B's two
    police = short[short["role"] == "police"]
    assert police["grid_code"].tolist() == ["B-001", "B-002"]
    assert short.loc[short["role"] == "mediator", "community_id"].tolist() == ["B"]
    hires = plan.hires.set_index(["role", "community_id"])["people"]
    assert hires.to_dict() == {("grid_worker", "A"): 2, ("grid_worker", "B"): 2,
                               ("police", "B"): 1, ("mediator", "B"): 1}
    assert plan.summary["totals"]["new_people_needed"] == 6
    grids = plan.grids.set_index("grid_code")
    assert grids.loc["A-002", "missing_roles"] == "grid_worker:1"
    assert grids.loc["B-002", "missing_roles"] == "grid_worker:1;police:1;mediator:1"
    assert grids.loc["A-001", "grid_worker"] == "name W1"
    assert grids.loc["A-002", "mediator"] == "name M1"  # community roles on every grid


def test_pinned_people_stay_and_bad_pins_are_errors() -> None:
    people = [("W1", "grid_worker", _at(0)), ("W2", "grid_worker", _at(4))]
    plan = _assign(_workers(*people, pinned_grid=["B-002", None]),
                   _only(grid_worker={"per_grid": 1}))
    assert _where(plan, "W1") == ["B-002"]
    assert plan.roster.set_index("worker_id").loc["W1", "status"] == "pinned"
    with pytest.raises(InputError, match=r"pinned grid not in the grid layer \('Z-009' at row 1"):
        _assign(_workers(*people, pinned_grid=["Z-009", None]), _only(grid_worker={"per_grid": 1}))
    with pytest.raises(InputError, match="2 people of role grid_worker are pinned to grid A-001"):
        _assign(_workers(*people, pinned_grid=["A-001", "A-001"]),
                _only(grid_worker={"per_grid": 1}))
    with pytest.raises(InputError, match="pinned grids lie in several communities at row 1"):
        _assign(_workers(("P1", "police", _at(0)), pinned_grid=["A-001;B-001"]),
                _only(police={"per_grid": 1}))


def test_candidate_pruning_and_roles_with_nobody() -> None:
    people = [(f"W{i}", "grid_worker", _at(i, 0.3)) for i in range(5)]
    policy = _only(grid_worker={"per_grid": 1}, police={"per_grid": 1})
    policy["model"] = {"max_pairs": 10, "candidates": 2}
    plan = _assign(_workers(*people), policy)
    stats = plan.summary["roles"]["grid_worker"]["solver"]
    assert stats["pruned_to_candidates"] and stats["pairs"] < 25
    assert [_where(plan, f"W{i}") for i in range(5)] == [[c] for c in CODES]
    # nobody is a police officer: every grid lacks one, one new officer per 3 grids
    assert plan.shortages.loc[plan.shortages["role"] == "police", "grid_code"].tolist() == CODES
    assert plan.hires.set_index(["role", "community_id"])["people"].to_dict() == {
        ("police", "A"): 1, ("police", "B"): 1}
    assert plan.summary["roles"]["police"]["solver"]["status"] == "OPTIMAL"


def test_unavailable_people_are_listed_not_assigned() -> None:
    workers = _workers(("W1", "grid_worker", _at(0)), ("W2", "grid_worker", _at(0, 0.5, 3)),
                       unavailable=["1", ""])
    plan = _assign(workers, _only(grid_worker={"per_grid": 1}))
    assert "W1" not in set(plan.roster["worker_id"])
    assert _where(plan, "W2") == ["A-001"]
    people = plan.people.set_index("worker_id")
    assert people.loc["W1", "status"] == "unavailable"
    listed = {p["worker_id"]: p["status"] for p in plan.summary["people_not_assigned"]}
    assert listed["W1"] == "unavailable"
    assert len(plan.people) == len(workers)  # nobody dropped


def test_community_roles_and_home_community_only_people() -> None:
    workers = _workers(("M1", "mediator", None, "B"), ("M2", "mediator", None, "甲社区"),
                       ("L1", "legal_adviser", _at(2)))
    plan = _assign(workers, _only(mediator={"per_community": 1},
                                  legal_adviser={"per_community": 1}))
    rows = plan.roster[plan.roster["role"] == "mediator"]
    assert rows.groupby("worker_id")["community_id"].first().to_dict() == {"M1": "B", "M2": "A"}
    assert rows["distance_m"].eq(0).all()  # home community given by id or by name
    assert len(rows) == 5  # one row per grid of the community
    assert _where(plan, "L1") == CODES  # one adviser for both communities (max 3)
    with pytest.raises(InputError, match="home community not in the grid layer"):
        _assign(_workers(("M1", "mediator", None, "Nowhere")),
                _only(mediator={"per_community": 1}))


def test_cross_community_penalty_prefers_residents() -> None:
    # B-001 needs a grid worker.  O lives in community A, 48 m west of it; R lives in
    # community B, 384 m east of it.  The 1 km penalty for crossing community lines
    # picks R; without it, O.
    workers = _workers(("O", "grid_worker", _at(2, 0.9), "A"),
                       ("R", "grid_worker", _at(4, 0.8), "B"))
    policy = _only(grid_worker={"per_grid": 1})
    one_grid = _grids().iloc[[3]]
    plan = assign_workers(one_grid, workers, policy=policy)
    assert _where(plan, "R") == ["B-001"]
    assert plan.summary["totals"]["cross_community_assignments"] == 0
    plan = assign_workers(one_grid, workers, policy=policy | {"weights": {"cross_community_m": 0}})
    assert _where(plan, "O") == ["B-001"]
    assert plan.roster["distance_m"].tolist() == [pytest.approx(48, abs=2)]


def test_assign_all_roles_spread_by_households() -> None:
    # ten volunteers all live in A-001: by distance alone they stay there (up to the cap
    # of 6), with a strong balance weight they spread in proportion to households
    volunteers = [(f"V{i}", "volunteer", _at(0, 0.1 * i + 0.05)) for i in range(10)]
    policy = _only(volunteer={"per_grid": 0, "assign_all": True, "max_per_grid": 6})
    weights = {"weights": {"balance_m_per_household": 0}}
    plan = _assign(_workers(*volunteers), policy | weights)
    counts = plan.roster.groupby("grid_code").size().reindex(CODES, fill_value=0)
    assert counts.tolist() == [6, 4, 0, 0, 0]
    weights = {"weights": {"balance_m_per_household": 20}}
    plan = _assign(_workers(*volunteers), policy | weights)
    counts = plan.roster.groupby("grid_code").size().reindex(CODES, fill_value=0)
    assert counts.sum() == 10  # everyone placed
    assert counts.tolist() == [2, 2, 2, 1, 3]  # 300 households each: closest to the shares


def test_restaffing_keeps_people_in_place() -> None:
    # W1, W2 live north of A-001 and A-002 (277 m away); the newcomers live inside them
    people = [("W1", "grid_worker", _at(0, 0.5, 1.5)), ("W2", "grid_worker", _at(1, 0.5, 1.5)),
              ("P1", "police", _at(1)), ("P2", "police", _at(4))]
    policy = _only(grid_worker={"per_grid": 1}, police={"per_grid": 1})
    first = _assign(_workers(*people), policy)
    assert len(first.shortages) == 3  # three grids lack a grid worker
    # newcomers living right in: without `previous` they take over
    newcomers = [("N1", "grid_worker", _at(0, 0.1)), ("N2", "grid_worker", _at(1, 0.1))]
    fresh = _assign(_workers(*people, *newcomers), policy)
    assert _where(fresh, "N1") == ["A-001"] and _where(fresh, "N2") == ["A-002"]
    # with the previous plan, W1 and W2 keep their grids; the newcomers fill the others
    again = _assign(_workers(*people, *newcomers), policy, previous=first)
    assert _where(again, "W1") == _where(first, "W1")
    assert _where(again, "W2") == _where(first, "W2")
    assert _where(again, "P1") == _where(first, "P1")
    status = again.roster.groupby("worker_id")["status"].first()
    assert status["W1"] == "kept" and status["N1"] == "new"
    rs = again.summary["totals"]["restaffing"]
    assert rs["people_moved"] == 0 and rs["people_kept_in_place"] == 4


def test_restaffing_after_grids_change_matches_by_shape(tmp_path: Path) -> None:
    # W1, W2 live 555 m north of A-002 and B-001; a newcomer N lives about 260 m from both.
    people = [("W1", "grid_worker", _at(1, 0.5, 2)), ("W2", "grid_worker", _at(3, 0.5, 2))]
    newcomer = ("N", "grid_worker", _at(2, 0.5, 1.2))
    policy = _only(grid_worker={"per_grid": 1})
    grids = _grids().iloc[[1, 3]]
    first = assign_workers(grids, _workers(*people), policy=policy)
    assert _where(first, "W1") == ["A-002"] and _where(first, "W2") == ["B-001"]
    first.write(tmp_path / "before")
    # the grids are re-drawn into a new community and renumbered: codes no longer match
    redrawn = grids.assign(grid_code=["X-001", "X-002"], community_id="X", community_name="X")
    fresh = assign_workers(redrawn, _workers(*people, newcomer), policy=policy)
    assert "N" in set(fresh.roster["worker_id"])  # nearer: takes a grid without `previous`
    plan = assign_workers(redrawn, _workers(*people, newcomer), policy=policy,
                          previous=tmp_path / "before")
    assert _where(plan, "W1") == ["X-001"] and _where(plan, "W2") == ["X-002"]
    assert plan.summary["totals"]["restaffing"]["people_moved"] == 0
    assert plan.people.set_index("worker_id").loc["N", "status"] == "spare"


# --------------------------------------------------------------------------- outputs


def test_outputs_are_deterministic_and_phones_masked(tmp_path: Path) -> None:
    roster = make_roster(_grids(), seed=1)
    workers = read_workers(roster)
    policy = load_policy()
    a = assign_workers(_grids(), workers, policy=policy, time_limit=5).write(tmp_path / "a")
    b = assign_workers(_grids(), workers, policy=policy, time_limit=5).write(tmp_path / "b")
    assert set(a) == {"roster", "grids", "shortages", "report"}
    for name in a:
        assert a[name].read_bytes() == b[name].read_bytes(), name
    table = pd.read_csv(a["roster"], dtype=str)
    assert table["phone"].str.fullmatch(r"100\*\*\*\*\d{4}").all()
    layer = gpd.read_file(a["grids"])
    assert {*ROLES, "missing_roles"} <= set(layer.columns)
    assert "phone" not in layer.columns
    full = assign_workers(_grids(), workers, policy=policy, include_phone=True)
    assert full.roster["phone"].str.fullmatch(r"100\d{8}").all()


def test_make_roster_suffices_and_is_seeded() -> None:
    grids = _grids()
    first, again = make_roster(grids, seed=7), make_roster(grids, seed=7)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(make_roster(grids, seed=8))
    plan = assign_workers(grids, read_workers(first), time_limit=5)
    assert verify_staffing(plan) == []
    assert plan.shortages.empty
    assert plan.summary["totals"]["all_optimal"]
    assert (plan.grids["missing_roles"] == "").all()
    assert (plan.grids[list(GRID_ROLES[:3])] != "").all().all()


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gridkit")
    _cli_assign.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_cli_assign(tmp_path: Path, capsys) -> None:
    grids_path = tmp_path / "grids.geojson"
    _grids().to_file(grids_path)
    roster = write_workers(make_roster(_grids(), seed=2), tmp_path / "workers.csv")
    code = _cli(["assign", "--grids", str(tmp_path), "--workers", str(roster),
                 "--input-crs", "wgs84", "--out", str(tmp_path / "out"), "--no-map"])
    out = capsys.readouterr().out
    assert code == 0
    assert "5 of 5 grids fully staffed" in out and "all roles proven optimal" in out
    for name in ("roster.csv", "grids.geojson", "shortages.csv", "staffing_report.json"):
        assert (tmp_path / "out" / name).is_file()
    bad = tmp_path / "bad.csv"
    _roster(("W1", "janitor", _at(0))).to_csv(bad, index=False)
    code = _cli(["assign", "--grids", str(grids_path), "--workers", str(bad),
                 "--input-crs", "wgs84", "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: workers") and "unknown role at row 1" in err


def test_read_grids_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="run `gridkit partition` first"):
        read_grids(tmp_path)
    with pytest.raises(InputError, match="no `households` column; available: grid_code, "):
        read_grids(_grids().drop(columns="households"))
    with pytest.raises(InputError, match="duplicated id"):
        read_grids(_grids().assign(grid_code="A-001"))
    with pytest.raises(InputError, match=r"`households` is not a number at row 2"):
        read_grids(_grids().assign(households=[500, "many", 700, 400, 800]))
    # a layer gridkit exported in GCJ-02 is read back to WGS84, and the marker dropped
    shifted = _grids().assign(crs_note="gcj02: GCJ-02 lon/lat (Amap/Gaode, Tencent)")
    back = read_grids(shifted)
    assert "crs_note" not in back.columns and "row" not in back.columns
    assert back.geometry.iloc[0].centroid.distance(_grids().geometry.iloc[0].centroid) > 0.001


# --------------------------------------------------------------------------- the core


def _value(p: RoleProblem, chosen: np.ndarray) -> tuple[int, int, int]:
    """The lexicographic objective: new people (and slots), people moved, cost."""
    moved = _restaffing_value(p, chosen) if p.pair_keep.any() else 0
    return _hires_value(p, chosen), moved, evaluate(p, chosen)


def _brute_force(p: RoleProblem) -> tuple[int, int, int]:
    """Lexicographic optimum by enumerating every plan."""
    options = []
    for w in range(p.n_people):
        pairs = np.flatnonzero(p.pair_w == w)
        sets = [()]
        for k in range(1, int(p.max_units[w]) + 1):
            sets += list(itertools.combinations(pairs, k))
        options.append(sets)
    best = None
    for combo in itertools.product(*options):
        chosen = np.zeros(len(p.pair_w), dtype=bool)
        for pairs in combo:
            chosen[list(pairs)] = True
        if not _feasible(p, chosen, combo):
            continue
        value = _value(p, chosen)
        best = value if best is None or value < best else best
    assert best is not None
    return best


def _feasible(p: RoleProblem, chosen: np.ndarray, combo) -> bool:
    if not chosen[p.pair_pinned].all():
        return False
    if (np.bincount(p.pair_t[chosen], minlength=p.n_units) > p.max_people).any():
        return False
    for w, pairs in enumerate(combo):
        units = p.pair_t[list(pairs)]
        if p.same_group and len(set(p.group[units])) > 1:
            return False
        if p.max_households[w] and p.households[units].sum() > p.max_households[w]:
            return False
    return True


@pytest.mark.parametrize("seed", range(15))
def test_core_matches_brute_force_on_tiny_instances(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_w, n_t = int(rng.integers(2, 5)), 4
    multi = seed % 3 != 0  # a third of the instances go to min-cost flow
    pair_w, pair_t = (a.ravel() for a in np.meshgrid(np.arange(n_w), np.arange(n_t),
                                                     indexing="ij"))
    drop = rng.random(len(pair_w)) < 0.25
    pair_w, pair_t = pair_w[~drop], pair_t[~drop]
    required = rng.integers(0, 2, n_t)
    assign_all = seed % 4 == 1
    had = rng.random(n_w) < 0.6 if seed % 3 != 1 else np.zeros(n_w, dtype=bool)
    keep = had[pair_w] & (rng.random(len(pair_w)) < 0.4)
    problem = RoleProblem(
        households=rng.integers(100, 900, n_t),
        group=np.array([0, 0, 1, 1]),
        required=required,
        max_people=required + (2 if assign_all else 0),
        max_units=rng.integers(1, 3, n_w) if multi else np.ones(n_w, dtype=np.int64),
        max_households=np.where(rng.random(n_w) < 0.3, 1200, 0),
        pair_w=pair_w,
        pair_t=pair_t,
        pair_cost=rng.integers(0, 5000, len(pair_w)),
        pair_pinned=np.zeros(len(pair_w), dtype=bool),
        pair_keep=keep,
        had_previous=had,
        same_group=bool(seed % 2),
        assign_all=assign_all,
        hire_max_units=2 if multi else 1,
        balance_weight=5,
        idle_cost=20000,
    )
    solution = solve_role(problem, time_limit=5)
    assert solution.status == "OPTIMAL"
    assert solution.method.startswith("cp_sat") if multi else solution.method == "min_cost_flow"
    assert _value(problem, solution.chosen) == _brute_force(problem)
    assert solution.objective == evaluate(problem, solution.chosen)


def test_assign_all_warning_free_run() -> None:
    """A whole default-policy run raises no warning (pytest turns warnings into errors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = assign_workers(_grids(), read_workers(make_roster(_grids(), seed=4)),
                              time_limit=5)
    assert plan.summary["totals"]["slots_missing"] == 0
