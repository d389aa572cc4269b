"""Staff every grid: assign grid workers, leaders, police and helpers with OR-Tools.

:func:`assign_workers` takes a grid layer (``gridkit partition`` output), a roster
(:func:`gridkit.staffing.read_workers`) and a staffing policy
(:func:`gridkit.staffing.load_policy`) and returns a :class:`StaffingPlan`: who serves each
grid (``roster``), the grid layer with the names per role (``grids``), what is missing
(``shortages``, and the new people that would close each gap) and a ``summary``.

Distances are metres in the local UTM zone (:func:`gridkit.crs.local_metric_crs`) from a
person's home point to the *nearest point* of the grid (0 when they live in it), or of
the community for community-level roles; a person known only by their home community
is measured from that community's boundary.  The model (:mod:`gridkit.staffing._model`) is
solved per role, lexicographically: fewest new hires, then (re-staffing) fewest people
moved, then least distance plus penalties for crossing community lines and for
unbalanced workload.  See ``docs/staffing.md``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit.contracts import ROLE_LABELS, ROLES, ROSTER_COLUMNS, SHORTAGE_COLUMNS, WORKER_COLUMNS
from gridkit.crs import local_metric_crs
from gridkit.staffing._inputs import StaffingContext, prepare
from gridkit.staffing._model import DM, RoleSolution, solve_role
from gridkit.staffing.grids import MISSING_COLUMN, GridsLike, read_staffing_grids
from gridkit.staffing.plan import StaffingPlan
from gridkit.staffing.policy import StaffingPolicy, load_policy
from gridkit.staffing.roster import mask_phone, read_workers
from gridkit.utils import __version__, progress_class

tqdm = progress_class()

__all__ = ["assign_workers"]

logger = logging.getLogger(__name__)

WorkersLike = pd.DataFrame | str | os.PathLike[str]
PolicyLike = StaffingPolicy | Mapping[str, Any] | str | os.PathLike[str] | None

_SEPARATOR = "、"  # between names in the grid layer
#: One assignment: role, scope, roster row index, unit index, distance (m), crosses a
#: community line, status (assigned / pinned / kept / moved / new).
_Record = tuple[str, str, int, int, float, bool, str]


# --------------------------------------------------------------------------- the main function


def assign_workers(
    grids: GridsLike,
    workers: WorkersLike,
    *,
    policy: PolicyLike = None,
    previous: Any = None,
    time_limit: float = 10.0,
    seed: int = 0,
    threads: int = 1,
    include_phone: bool = False,
    verbose: bool = False,
) -> StaffingPlan:
    """Assign the people of a roster to grids and communities under a staffing policy.

    Parameters
    ----------
    grids
        The grid layer: a GeoDataFrame, ``grids.geojson`` or the ``gridkit partition``
        output folder (see :func:`~gridkit.staffing.grids.read_staffing_grids`).
    workers
        The roster: a path or frame read with :func:`gridkit.roster.read_workers` (a frame
        it already returned is accepted as is).
    policy
        The staffing policy: ``None`` for the defaults, a TOML path, a dict or a
        :class:`~gridkit.roster.StaffingPolicy` (see :func:`gridkit.roster.load_policy`).
    previous
        An earlier plan to re-staff from (a :class:`StaffingPlan`, its roster, or the
        folder / ``roster.csv`` written by ``gridkit assign``): current assignments are
        kept where the rules still allow, moving as few people as possible.
    time_limit
        CP-SAT deterministic time budget per role and phase (about seconds); roles solved
        by min-cost flow do not use it.
    seed
        CP-SAT random seed.
    threads
        CP-SAT workers per solve (interleaved above 1, so results stay reproducible).
    include_phone
        Put the full phone numbers in ``roster``; by default they are masked
        (``138****5678``): phone numbers are personal data.
    verbose
        Show a progress bar over the roles.

    Returns
    -------
    StaffingPlan
        ``roster``, ``grids``, ``shortages``, ``hires``, ``people``, ``summary``.

    Raises
    ------
    InputError
        Bad grids, roster, policy or previous plan; roster rows that do not match the
        grids (unknown home community without a point, unknown pinned grid, pins beyond a
        capacity).  Every problem is listed with its rows.
    SolverError
        If CP-SAT finds no plan in the time budget (raise ``time_limit``).

    Notes
    -----
    Each role is solved on its own: by min-cost flow when nobody serves more than one grid
    (exact, milliseconds), else by CP-SAT (patterns of up to ``max_grids`` grids of one
    community for ``same_community`` roles).
    Per role, three phases are solved, each keeping the optimum of the previous one:
    fewest new hires (shortages, by community), fewest people moved (re-staffing only),
    then least total cost: home-to-unit distance, plus ``cross_community_m`` for each
    unit outside the person's home community, plus ``balance_m_per_household`` per
    household of workload imbalance, plus ``idle_m`` per idle person of an
    ``assign_all`` role.  See ``docs/staffing.md`` for the model.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> from shapely.geometry import box
    >>> from gridkit.roster import read_workers
    >>> grids = gpd.GeoDataFrame({"grid_code": ["C1-001", "C1-002"], "community_id": "C1",
    ...                           "households": [500, 700]},
    ...                          geometry=[box(115.0, 30.2, 115.005, 30.205),
    ...                                    box(115.005, 30.2, 115.01, 30.205)], crs=4326)
    >>> workers = read_workers(pd.DataFrame({
    ...     "worker_id": ["A", "B"], "name": ["王芳", "李军"], "role": ["专职网格员"] * 2,
    ...     "lon": [115.0075, 115.0025], "lat": [30.2025, 30.2025]}), input_crs="wgs84")
    >>> grid_workers_only = {"roles": {
    ...     "grid_leader": {"per_grid": 0}, "police": {"per_grid": 0},
    ...     "part_time": {"per_grid": 0}, "mediator": {"per_community": 0},
    ...     "legal_adviser": {"per_community": 0}}}
    >>> plan = assign_workers(grids, workers, policy=grid_workers_only)
    >>> plan.roster[["grid_code", "worker_id", "distance_m"]].values.tolist()
    [['C1-001', 'B', 0.0], ['C1-002', 'A', 0.0]]
    >>> plan.shortages.empty, plan.summary["totals"]["all_optimal"]
    (True, True)
    """
    started = time.perf_counter()
    rules = load_policy(policy)
    layer = read_staffing_grids(grids)
    if (
        isinstance(workers, gpd.GeoDataFrame)
        and tuple(workers.columns[: len(WORKER_COLUMNS)]) == WORKER_COLUMNS
    ):
        people_frame = workers.copy()  # already normalised by read_workers
    else:
        people_frame = read_workers(workers)
    ctx = prepare(layer, people_frame, rules, previous)
    solutions: dict[str, RoleSolution] = {}
    timing: dict[str, Any] = {}
    for ri in tqdm(ctx.roles, desc="roles", unit="role", disable=not verbose):
        t0 = time.perf_counter()
        solutions[ri.role] = solve_role(
            ri.problem, time_limit=time_limit, seed=seed, threads=threads, label=ri.role
        )
        timing[ri.role] = round(time.perf_counter() - t0, 3)
        sol = solutions[ri.role]
        logger.info(
            "assign %s: %d people, %d units, %d pairs, %s, cost %.0f m (gap %.3f%%), %d new "
            "people needed, %.2f s", ri.role, ri.problem.n_people, ri.problem.n_units,
            len(ri.problem.pair_w), sol.status, sol.objective / DM, 100 * sol.gap,
            len(sol.hires), timing[ri.role],
        )
    plan = _assemble(ctx, solutions, time_limit=time_limit, seed=seed, threads=threads,
                     include_phone=include_phone)
    plan.summary["timing"] = {"total_s": round(time.perf_counter() - started, 3),
                              "roles_s": timing}
    logger.info(
        "assign_workers: %d people in %d grids, %d slots missing, %.1f s",
        plan.summary["totals"]["assigned_people"], len(layer),
        plan.summary["totals"]["slots_missing"], plan.summary["timing"]["total_s"],
    )
    return plan


# --------------------------------------------------------------------------- assembling


def _assemble(ctx: StaffingContext, solutions: dict[str, RoleSolution], *, time_limit: float,
              seed: int, threads: int, include_phone: bool) -> StaffingPlan:
    frame = ctx.people.frame
    ids = frame["worker_id"].to_numpy(dtype=object)
    names = frame["name"].to_numpy(dtype=object)
    layer = ctx.layer
    grids_of_comm = [np.flatnonzero(ctx.grids.community == k)
                     for k in range(len(ctx.communities.codes))]

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
            records.append((ri.role, ri.policy.scope, int(w), t, float(ri.distance[i]),
                            bool(ri.cross[i]), status))
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
        for t in np.flatnonzero(new):
            comm = int(ri.units.community[t])
            shortage_rows.append({
                "scope": ri.policy.scope,
                "grid_code": str(ri.units.codes[t]) if ri.policy.scope == "grid" else "",
                "community_id": str(ctx.communities.codes[comm]),
                "community_name": str(ctx.community_names[comm]),
                "role": ri.role,
                "role_zh": ROLE_LABELS[ri.role],
                "required": int(p.required[t]),
                "assigned": int(real[t]),
                "missing": int(new[t]),
            })
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
        role_stats[ri.role] = {
            "label_zh": ROLE_LABELS[ri.role],
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

    roster = _roster_frame(records, ctx, grids_of_comm, ids, names, include_phone)
    shortages = pd.DataFrame(shortage_rows, columns=list(SHORTAGE_COLUMNS))
    if len(shortages):
        rank = shortages["role"].map({r: i for i, r in enumerate(ROLES)}).to_numpy()
        order = np.lexsort((rank, shortages["grid_code"].to_numpy(dtype=str),
                            shortages["community_id"].to_numpy(dtype=str)))
        shortages = shortages.iloc[order].reset_index(drop=True)
    hires = _hires_frame(hire_rows)
    enriched = _enrich(layer, roster, shortages, ctx)
    people = _people_frame(ctx, served_units, served_hh, solutions)
    summary = _summary(ctx, role_stats, records, enriched, shortages, hires, people,
                       time_limit=time_limit, seed=seed, threads=threads, solutions=solutions)
    return StaffingPlan(roster=roster, grids=enriched, shortages=shortages, hires=hires,
                        people=people, summary=summary, policy=ctx.policy)


def _units_out(phase: str, value: int) -> float | int:
    """Objective values in report units: metres for the cost phase, counts otherwise."""
    return round(value / DM, 1) if phase == "cost" else int(value)


def _roster_frame(
    records: list[_Record],
    ctx: StaffingContext,
    grids_of_comm: list[np.ndarray],
    ids: np.ndarray,
    names: np.ndarray,
    include_phone: bool,
) -> pd.DataFrame:
    rows = []
    for role, scope, w, t, dist, _cross, status in records:
        if scope == "grid":
            targets = [t]
            comm = int(ctx.grids.community[t])
        else:
            targets = list(grids_of_comm[t])
            comm = t
        for g in targets:
            rows.append((str(ctx.grids.codes[g]), role, str(ids[w]), str(names[w]),
                         round(dist, 1), str(ctx.communities.codes[comm]), scope, status, w))
    frame = pd.DataFrame(rows, columns=[*ROSTER_COLUMNS, "_w"])
    rank = {r: i for i, r in enumerate(ROLES)}
    if len(frame):
        key = np.lexsort((frame["worker_id"].to_numpy(dtype=str),
                          frame["role"].map(rank).to_numpy(),
                          frame["grid_code"].to_numpy(dtype=str)))
        frame = frame.iloc[key].reset_index(drop=True)
    phones = ctx.people.frame["phone"]
    if phones.notna().any():
        values = phones.to_numpy(dtype=object)[frame["_w"].to_numpy(dtype=np.int64)]
        frame["phone"] = [
            (None if v is None or pd.isna(v) else str(v)) if include_phone else mask_phone(v)
            for v in values
        ]
    return frame.drop(columns="_w")


def _hires_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
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
    rank = {r: i for i, r in enumerate(ROLES)}
    order = np.lexsort((grouped["community_id"].to_numpy(dtype=str),
                        grouped["role"].map(rank).to_numpy()))
    return grouped.iloc[order].reset_index(drop=True)[columns]


def _enrich(layer: gpd.GeoDataFrame, roster: pd.DataFrame, shortages: pd.DataFrame,
            ctx: StaffingContext) -> gpd.GeoDataFrame:
    out = layer.copy()
    for role in ROLES:
        sub = roster[roster["role"] == role]
        joined = sub.groupby("grid_code", sort=True)["name"].agg(_SEPARATOR.join).to_dict()
        out[role] = pd.Series([joined.get(c, "") for c in out["grid_code"]], dtype=object,
                              index=out.index)
    rank = {r: i for i, r in enumerate(ROLES)}
    missing: dict[str, list[tuple[int, str]]] = {code: [] for code in out["grid_code"]}
    for rec in shortages.itertuples(index=False):
        if rec.scope == "grid":
            targets = [rec.grid_code]
        else:
            targets = out.loc[out["community_id"] == rec.community_id, "grid_code"].tolist()
        for code in targets:
            missing[code].append((rank[rec.role], f"{rec.role}:{rec.missing}"))
    out[MISSING_COLUMN] = out["grid_code"].map(
        lambda c: ";".join(text for _, text in sorted(missing[c]))
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
        elif served_units[i]:
            status.append("assigned")
            reason.append("")
        elif rp.assign_all:
            status.append("idle")
            reason.append(f"every {rp.scope} near them already has max_per_{rp.scope} people")
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
