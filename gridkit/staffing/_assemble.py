"""The plan from the roles' solutions: roster, staffed grid layer, shortages, people, summary.

:func:`assemble` reads each role's chosen pairs and new hires back into the tables of a
:class:`~gridkit.staffing.plan.StaffingPlan`.  Grid roles give one roster row per
(person, grid), building roles one per (person, building) with the building's grid and
``building_id``, community and unit roles one per grid of the community.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit.contracts import BUILDING_ID_COLUMN, ROSTER_COLUMNS, SHORTAGE_COLUMNS
from gridkit.crs import local_metric_crs
from gridkit.staffing._inputs import RoleInput, StaffingContext
from gridkit.staffing._model import DM, RoleSolution
from gridkit.staffing.grids import MISSING_COLUMN
from gridkit.staffing.plan import StaffingPlan
from gridkit.staffing.roster import mask_phone
from gridkit.utils import __version__

__all__ = ["BUILDING_ID", "assemble"]

#: Column of ``roster.csv`` and ``shortages.csv`` naming the building of a building role
#: (written only when the policy has one).
BUILDING_ID = BUILDING_ID_COLUMN

_SEPARATOR = "、"  # between names in the grid layer
#: One assignment: role, scope, roster row index, unit index in the full table of its
#: kind, distance (m), crosses a community line, status (assigned / pinned / kept /
#: moved / new).
_Record = tuple[str, str, int, int, float, bool, str]


def assemble(ctx: StaffingContext, solutions: dict[str, RoleSolution], *, time_limit: float,
             seed: int, threads: int, include_phone: bool) -> StaffingPlan:
    """The plan of ``solutions`` (one per role of ``ctx.roles``)."""
    frame = ctx.people.frame
    rank = {r: i for i, r in enumerate(ctx.policy.roles)}
    ctx.roles.sort(key=lambda ri: rank[ri.role])
    records: list[_Record] = []
    shortage_rows = []
    hire_rows = []
    role_stats: dict[str, dict[str, Any]] = {}
    served_units = np.zeros(len(frame), dtype=np.int64)
    served_hh = np.zeros(len(frame), dtype=np.int64)
    for ri in ctx.roles:
        sol = solutions[ri.role]
        p = ri.problem
        chosen = np.flatnonzero(sol.chosen)
        for i in chosen:
            w = ri.people[p.pair_w[i]]
            t = int(p.pair_t[i])
            if p.pair_pinned[i]:
                status = "pinned"
            elif not ctx.previous:
                status = "assigned"
            elif p.pair_keep[i]:
                status = "kept"
            elif p.had_previous[p.pair_w[i]]:
                status = "moved"
            else:
                status = "new"
            records.append((ri.role, ri.policy.scope, int(w), int(ri.units.index[t]),
                            float(ri.distance[i]), bool(ri.cross[i]), status))
            served_units[w] += 1
            served_hh[w] += int(p.households[t])
        real = np.bincount(p.pair_t[chosen], minlength=p.n_units)
        new = np.zeros(p.n_units, dtype=np.int64)
        for k, units in sol.hires:
            for t in units:
                new[t] += 1
            hire_rows.append({
                "role": ri.role,
                "community_id": str(ctx.communities.codes[k]),
                "community_name": str(ctx.community_names[k]),
                "people": 1,
                "units": ";".join(str(ri.units.codes[t]) for t in units),
            })
        shortage_rows.extend(_shortage_rows(ctx, ri, real, new))
        role_stats[ri.role] = _role_stats(ctx, ri, sol, chosen, real, new)

    with_buildings = ctx.buildings is not None
    roster = _roster_frame(records, ctx, include_phone, with_buildings)
    columns = [*SHORTAGE_COLUMNS, *([BUILDING_ID] if with_buildings else [])]
    shortages = pd.DataFrame(shortage_rows, columns=columns)
    if len(shortages):
        order = np.lexsort((
            shortages[BUILDING_ID].to_numpy(dtype=str) if with_buildings
            else np.zeros(len(shortages)),
            shortages["role"].map(rank).to_numpy(),
            shortages["grid_code"].to_numpy(dtype=str),
            shortages["community_id"].to_numpy(dtype=str),
        ))
        shortages = shortages.iloc[order].reset_index(drop=True)
    hires = _hires_frame(hire_rows, rank)
    enriched = _enrich(ctx.layer, roster, shortages, ctx, rank)
    people = _people_frame(ctx, served_units, served_hh, solutions)
    summary = _summary(ctx, role_stats, records, enriched, shortages, hires, people,
                       time_limit=time_limit, seed=seed, threads=threads, solutions=solutions)
    buildings = None
    if with_buildings:
        b = ctx.buildings
        assert b is not None
        buildings = pd.DataFrame({
            "building_id": b.codes.astype(str), "grid_code": ctx.grids.codes[b.grid].astype(str),
            "community_id": ctx.communities.codes[b.community].astype(str),
            "households": b.households,
        })
    return StaffingPlan(roster=roster, grids=enriched, shortages=shortages, hires=hires,
                        people=people, summary=summary, policy=ctx.policy,
                        buildings=buildings, applies=ctx.applies)


def _shortage_rows(ctx: StaffingContext, ri: RoleInput, real: np.ndarray, new: np.ndarray
                   ) -> list[dict[str, Any]]:
    rp, u, p = ri.policy, ri.units, ri.problem
    rows = []
    for t in np.flatnonzero(new):
        comm = int(u.community[t])
        row = {
            "scope": rp.scope,
            "grid_code": str(ctx.grids.codes[u.grid[t]]) if u.grid[t] >= 0 else "",
            "community_id": str(ctx.communities.codes[comm]),
            "community_name": str(ctx.community_names[comm]),
            "role": ri.role,
            "role_zh": rp.name_zh,
            "required": int(p.required[t]),
            "assigned": int(real[t]),
            "missing": int(new[t]),
        }
        if ctx.buildings is not None:
            row[BUILDING_ID] = str(u.codes[t]) if rp.unit == "building" else ""
        rows.append(row)
    return rows


def _role_stats(ctx: StaffingContext, ri: RoleInput, sol: RoleSolution, chosen: np.ndarray,
                real: np.ndarray, new: np.ndarray) -> dict[str, Any]:
    p = ri.problem
    dist = ri.distance[chosen]
    people_used = len(np.unique(p.pair_w[chosen]))
    loads = np.bincount(p.pair_w[chosen], weights=p.households[p.pair_t[chosen]],
                        minlength=p.n_people)[np.unique(p.pair_w[chosen])]
    phases = [
        {"phase": ph.phase, "status": ph.status,
         "objective": None if ph.objective is None else _units_out(ph.phase, ph.objective),
         "bound": None if ph.bound is None else _units_out(ph.phase, ph.bound)}
        for ph in sol.phases
    ]
    stats: dict[str, Any] = {
        "label_zh": ri.policy.name_zh,
        "scope": ri.policy.scope,
        "people_available": p.n_people,
        "people_assigned": people_used,
        "units": p.n_units,
        "required": int(p.required.sum()),
        "filled": int(real.sum()),
        "missing": int(new.sum()),
        "new_people_needed": len(sol.hires),
        "assignments": len(chosen),
        "total_distance_m": round(float(dist.sum()), 1),
        "mean_distance_m": round(float(dist.mean()), 1) if len(dist) else None,
        "max_distance_m": round(float(dist.max()), 1) if len(dist) else None,
        "cross_community": int(ri.cross[chosen].sum()),
        "households_per_person": {
            "min": int(loads.min()), "mean": round(float(loads.mean()), 1),
            "max": int(loads.max()),
        } if len(loads) else None,
        "solver": {
            "method": sol.method,
            "status": sol.status,
            "objective_m": round(sol.objective / DM, 1),
            "bound_m": round(sol.bound / DM, 1),
            "gap": round(sol.gap, 6),
            "phases": phases,
            "pairs": len(p.pair_w),
            "pruned_to_candidates": ri.pruned,
        },
    }
    # what a policy-defined rule limited the role to, and who it excluded (only when set,
    # so the report of the default policy stays as it was)
    if ri.role in ctx.selection:
        stats["applies_to"] = ctx.selection[ri.role]
    frame = ctx.people.frame
    ineligible = (frame["role"].to_numpy(dtype=object) == ri.role) & ~ctx.people.eligible
    if ri.policy.requires:
        stats["people_ineligible"] = int(ineligible.sum())
    return stats


def _units_out(phase: str, value: int) -> float | int:
    """Objective values in report units: metres for the cost phase, counts otherwise."""
    return round(value / DM, 1) if phase == "cost" else int(value)


def _roster_frame(records: list[_Record], ctx: StaffingContext, include_phone: bool,
                  with_buildings: bool) -> pd.DataFrame:
    ids = ctx.people.frame["worker_id"].to_numpy(dtype=object)
    names = ctx.people.frame["name"].to_numpy(dtype=object)
    grids_of_comm = [np.flatnonzero(ctx.grids.community == k)
                     for k in range(len(ctx.communities.codes))]
    rows = []
    for role, scope, w, g, dist, _cross, status in records:
        building = ""
        if scope == "grid":
            targets = [g]
            comm = int(ctx.grids.community[g])
        elif scope == "building":
            assert ctx.buildings is not None
            targets = [int(ctx.buildings.grid[g])]
            comm = int(ctx.buildings.community[g])
            building = str(ctx.buildings.codes[g])
        else:
            targets = list(grids_of_comm[g])
            comm = g
        for t in targets:
            rows.append((str(ctx.grids.codes[t]), role, str(ids[w]), str(names[w]),
                         round(dist, 1), str(ctx.communities.codes[comm]), scope, status,
                         building, w))
    frame = pd.DataFrame(rows, columns=[*ROSTER_COLUMNS, BUILDING_ID, "_w"])
    rank = {r: i for i, r in enumerate(ctx.policy.roles)}
    if len(frame):
        key = np.lexsort((frame[BUILDING_ID].to_numpy(dtype=str),
                          frame["worker_id"].to_numpy(dtype=str),
                          frame["role"].map(rank).to_numpy(),
                          frame["grid_code"].to_numpy(dtype=str)))
        frame = frame.iloc[key].reset_index(drop=True)
    if not with_buildings:
        frame = frame.drop(columns=BUILDING_ID)
    phones = ctx.people.frame["phone"]
    if phones.notna().any():
        values = phones.to_numpy(dtype=object)[frame["_w"].to_numpy(dtype=np.int64)]
        frame["phone"] = [
            (None if v is None or pd.isna(v) else str(v)) if include_phone else mask_phone(v)
            for v in values
        ]
    return frame.drop(columns="_w")


def _hires_frame(rows: list[dict[str, Any]], rank: dict[str, int]) -> pd.DataFrame:
    columns = ["role", "community_id", "community_name", "people", "units"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows)
    grouped = (
        frame.groupby(["role", "community_id", "community_name"], sort=False)
        .agg(people=("people", "sum"), units=("units", lambda s: ";".join(sorted(
            {c for v in s for c in v.split(";") if c}))))
        .reset_index()
    )
    order = np.lexsort((grouped["community_id"].to_numpy(dtype=str),
                        grouped["role"].map(rank).to_numpy()))
    return grouped.iloc[order].reset_index(drop=True)[columns]


def _enrich(layer: gpd.GeoDataFrame, roster: pd.DataFrame, shortages: pd.DataFrame,
            ctx: StaffingContext, rank: dict[str, int]) -> gpd.GeoDataFrame:
    # a column named like a role (an earlier run's) is recomputed
    out = layer.drop(columns=[r for r in ctx.policy.roles if r in layer.columns])
    for role in ctx.policy.roles:
        sub = roster[roster["role"] == role]
        joined = sub.groupby("grid_code", sort=True)["name"].agg(
            lambda s: _SEPARATOR.join(dict.fromkeys(s))).to_dict()
        out[role] = pd.Series([joined.get(c, "") for c in out["grid_code"]], dtype=object,
                              index=out.index)
    missing: dict[str, dict[str, int]] = {code: {} for code in out["grid_code"]}
    for rec in shortages.itertuples(index=False):
        if rec.scope in ("grid", "building"):
            targets = [rec.grid_code]
        else:
            targets = out.loc[out["community_id"] == rec.community_id, "grid_code"].tolist()
        for code in targets:
            missing[code][rec.role] = missing[code].get(rec.role, 0) + int(rec.missing)
    out[MISSING_COLUMN] = out["grid_code"].map(
        lambda c: ";".join(f"{r}:{m}" for r, m in sorted(missing[c].items(),
                                                          key=lambda item: rank[item[0]]))
    ).astype(object)
    geometry = out.geometry.name
    columns = [c for c in out.columns if c != geometry] + [geometry]
    return out[columns]


def _people_frame(
    ctx: StaffingContext,
    served_units: np.ndarray,
    served_hh: np.ndarray,
    solutions: dict[str, RoleSolution],
) -> pd.DataFrame:
    frame = ctx.people.frame
    roles = frame["role"].to_numpy(dtype=object)
    unavailable = frame["unavailable"].to_numpy(dtype=bool)
    status, reason = [], []
    short_roles = {r for r, s in solutions.items() if s.hires}
    for i in range(len(frame)):
        rp = ctx.policy.roles[roles[i]]
        if unavailable[i]:
            status.append("unavailable")
            reason.append("marked unavailable in the roster")
        elif not ctx.people.eligible[i]:
            status.append("ineligible")
            reason.append(f"not eligible for {rp.role}: {ctx.people.reasons[i]}")
        elif served_units[i]:
            status.append("assigned")
            reason.append("")
        elif rp.assign_all:
            status.append("idle")
            reason.append(f"every {rp.unit} near them already has max_per_{rp.unit} people")
        elif rp.home_community == "same" and ctx.people.home_comm[i] < 0:
            status.append("spare")
            reason.append("home_community = \"same\" but their home community is not one of "
                          "the grid layer's")
        else:
            status.append("spare")
            reason.append(
                "not needed: every requirement of the role is met"
                if roles[i] not in short_roles
                else "no place within the rules (capacity, one community)"
            )
    comm = ctx.people.home_comm
    return pd.DataFrame({
        "worker_id": frame["worker_id"].astype(str).to_numpy(),
        "name": frame["name"].astype(str).to_numpy(),
        "role": roles,
        "status": status,
        "units": served_units,
        "households": served_hh,
        "max_units": ctx.people.max_units,
        "max_households": ctx.people.max_households,
        "pinned": frame["pinned_grid"].fillna("").astype(str).to_numpy(),
        "home_community": [str(ctx.communities.codes[c]) if c >= 0 else "" for c in comm],
        "reason": reason,
        "row": frame["row"].to_numpy(),
    })


def _summary(ctx: StaffingContext, role_stats: dict[str, dict[str, Any]], records: list[_Record],
             enriched: gpd.GeoDataFrame, shortages: pd.DataFrame, hires: pd.DataFrame,
             people: pd.DataFrame, *,
             time_limit: float, seed: int, threads: int,
             solutions: dict[str, RoleSolution]) -> dict[str, Any]:
    dist = np.array([r[4] for r in records]) if records else np.zeros(0)
    statuses = people["status"].value_counts()
    gaps = [s.gap for s in solutions.values()]
    totals: dict[str, Any] = {
        "grids": len(ctx.layer),
        "communities": len(ctx.communities.codes),
        "households": int(ctx.layer["households"].sum()),
        "people": len(people),
        "assigned_people": int(statuses.get("assigned", 0)),
        "unavailable_people": int(statuses.get("unavailable", 0)),
        "spare_people": int(statuses.get("spare", 0)),
        "idle_people": int(statuses.get("idle", 0)),
        "slots_required": sum(s["required"] for s in role_stats.values()),
        "slots_filled": sum(s["filled"] for s in role_stats.values()),
        "slots_missing": int(shortages["missing"].sum()) if len(shortages) else 0,
        "grids_fully_staffed": int((enriched[MISSING_COLUMN] == "").sum()),
        "new_people_needed": int(hires["people"].sum()) if len(hires) else 0,
        "assignments": len(records),
        "total_distance_m": round(float(dist.sum()), 1),
        "mean_distance_m": round(float(dist.mean()), 1) if len(dist) else None,
        "cross_community_assignments": int(sum(r[5] for r in records)),
        "all_optimal": all(s.status == "OPTIMAL" for s in solutions.values()),
        "max_gap": round(max(gaps), 6) if gaps else 0.0,
    }
    if "ineligible" in statuses:
        totals["ineligible_people"] = int(statuses["ineligible"])
    if ctx.previous:
        st = pd.Series([r[6] for r in records], dtype=object)
        had = {w for ri in ctx.roles for w, h in zip(ri.people, ri.problem.had_previous,
                                                      strict=True) if h}
        moved = {r[2] for r in records if r[6] == "moved"}
        assigned = {r[2] for r in records}
        released = {w for w in had if w not in assigned}
        totals["restaffing"] = {
            "pairs_kept": int((st == "kept").sum()),
            "people_previously_assigned": len(had),
            "people_kept_in_place": len(had - moved - released),
            "people_moved": len(moved),
            "people_released": len(released),
            "people_new": len(assigned - had),
        }
    not_assigned = people[people["status"] != "assigned"]
    return {
        "gridkit_version": __version__,
        "parameters": {
            "time_limit": time_limit,
            "seed": seed,
            "threads": threads,
            "distance": "metres from the home point to the nearest point of the grid "
            "(community for community roles), 0 inside; from the home community's boundary "
            "when only the community is known",
            "metric_crs": str(local_metric_crs(ctx.layer).to_string()),
            "policy": ctx.policy.to_dict(),
        },
        "totals": totals,
        "roles": role_stats,
        "new_people_needed": hires.to_dict(orient="records"),
        "people_not_assigned": [
            {"worker_id": r.worker_id, "role": r.role, "status": r.status, "reason": r.reason,
             "row": int(r.row)}
            for r in not_assigned.itertuples(index=False)
        ],
    }
