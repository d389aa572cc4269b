"""The run report (``report.json``): per-community and per-grid figures, totals, attention.

:func:`report_from` is the one maker of the report, for the in-memory run and the
file-to-file run (which counts its household rows as it streams them, :class:`RowTotals`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit.contracts import UNBOUNDED_STATUSES
from gridkit.export import attention, count_in_bounds
from gridkit.partition import CommunityPlan, GridRules
from gridkit.pipeline.execute import Failure
from gridkit.units import UNASSIGNED_REASONS
from gridkit.utils import __version__

__all__ = [
    "REASONS",
    "RowTotals",
    "pct_floor",
    "report_from",
]

#: Why a household row is in no grid: :data:`gridkit.units.UNASSIGNED_REASONS` and
#: the communities whose solve failed (``assignments.csv`` ``reason``, ``report.json``).
REASONS = {
    **UNASSIGNED_REASONS,
    "community_failed": "the community could not be partitioned (see `failed_communities`); "
    "re-run with --resume to retry it",
}


def pct_floor(part: int, whole: int) -> float:
    """``100 * part / whole`` rounded *down* to 2 decimals: only all of them reads 100.0.

    Examples
    --------
    >>> pct_floor(19999, 20000), pct_floor(3, 3), pct_floor(0, 0)
    (99.99, 100.0, 100.0)
    """
    if whole == 0:
        return 100.0
    return (10_000 * int(part) // int(whole)) / 100


@dataclass
class RowTotals:
    """Household-row figures of a run (what ``report.json`` totals say about rows)."""

    household_rows: int = 0
    households: int = 0
    households_assigned: int = 0
    households_unassigned: int = 0
    rows_unassigned: int = 0
    reasons: Counter = field(default_factory=Counter)

    def add(self, households: np.ndarray, reasons: np.ndarray) -> None:
        """Count a batch of rows: households per row and reason (``""`` when assigned)."""
        hh = np.asarray(households, dtype=np.int64)
        unassigned = np.asarray(reasons, dtype=object) != ""
        self.household_rows += len(hh)
        self.households += int(hh.sum())
        self.households_assigned += int(hh[~unassigned].sum())
        self.households_unassigned += int(hh[unassigned].sum())
        self.rows_unassigned += int(unassigned.sum())
        self.reasons.update(np.asarray(reasons, dtype=object)[unassigned].tolist())


def report_from(
    grids: gpd.GeoDataFrame,
    communities: pd.DataFrame,
    notes: Mapping[str, list[str]],
    plans: list[CommunityPlan],
    rows: RowTotals,
    *,
    rules: GridRules,
    time_limit: float,
    seed: int,
    elapsed: float,
    failures: Mapping[str, Failure] | None = None,
    bounds: Mapping[str, GridRules] | None = None,
    bounds_info: dict | None = None,
) -> dict:
    """The ``report.json`` dict.

    Parameters
    ----------
    grids
        The grid layer (:func:`grid_layer`).
    communities
        Every community, in order, with ``community_id``, ``community_name``,
        ``street``, ``households`` and ``n_units`` (``None`` when unknown: a failed
        community).
    notes
        Remarks made while building each community's cells.
    plans
        The community plans.
    rows
        Household-row totals.
    failures
        Communities that could not be partitioned, by id.
    bounds
        Community id -> its own rules (:func:`gridkit.pipeline.community_bounds`); the
        run's ``rules`` for the others.  Each community's entry gives its bounds.
    bounds_info
        The ``parameters["community_bounds"]`` entry (:func:`gridkit.pipeline.bounds_report`).
    """
    failures = failures or {}
    plan_by_id = {p.community_id: p for p in plans}
    statuses_of: dict[str, list[str]] = {}
    # dedicated grids (no household bounds) are counted apart
    unbounded = grids["status"].isin(UNBOUNDED_STATUSES).to_numpy()
    dedicated_of: Counter = Counter()
    dedicated_hh: Counter = Counter()
    for cid, status, hh, free in zip(
        grids["community_id"], grids["status"], grids["households"], unbounded, strict=True
    ):
        if free:
            dedicated_of[str(cid)] += 1
            dedicated_hh[str(cid)] += int(hh)
            continue
        statuses_of.setdefault(str(cid), []).append(status)
    entries = []
    for _, c in communities.iterrows():
        cid = str(c["community_id"])
        g = statuses_of.get(cid, [])
        plan = plan_by_id.get(cid)
        failure = failures.get(cid)
        statuses = Counter(g)
        own = bounds.get(cid, rules) if bounds else rules
        # a part of a split compound is a grid within the bounds (its status says how made)
        in_bounds_here = int(statuses.get("ok", 0) + statuses.get("split_compound", 0))
        infeasible = None
        if int(c["households"]) < own.min_households:
            infeasible = "below_min"
        elif statuses.get("oversize_building"):
            infeasible = "oversize_building"
        elif statuses.get("oversize_compound"):
            infeasible = "oversize_compound"
        elif plan is not None and plan.bounds_unreachable:
            infeasible = "bounds_unreachable"
        if failure is not None:
            status, extra = "FAILED", [
                f"partitioning community {cid} failed: {failure.error}; its households are "
                "unassigned (reason community_failed). Re-run with --resume to retry it"
            ]
        elif plan is None:
            status, extra = "NO_HOUSEHOLDS", [
                f"community {cid} has no households; it is one empty grid"
            ]
        else:
            status, extra = plan.solver_status, []
        entry = {
            "community_id": cid,
            "community_name": str(c["community_name"]),
            "street": None if pd.isna(c.get("street")) else str(c.get("street")),
            "households": int(c["households"]),
            "min_households": own.min_households,
            "max_households": own.max_households,
            "buildings": None if pd.isna(c["n_units"]) else int(c["n_units"]),
            "grids": len(g),
            "grids_in_bounds": in_bounds_here,
            "bounds_met": failure is None and in_bounds_here == len(g),
            "infeasible_reason": infeasible,
            "solver_status": status,
            "objective": plan.objective if plan else None,
            "bound": plan.bound if plan else None,
            "gap": None if plan is None or plan.gap is None else round(plan.gap, 6),
            "time_s": round(plan.wall_time, 3) if plan else 0.0,
            "deterministic_time": round(plan.deterministic_time, 3) if plan else 0.0,
            "notes": (plan.notes if plan else []) + list(notes.get(cid, [])) + extra,
        }
        if dedicated_of[cid]:
            entry["dedicated_grids"] = dedicated_of[cid]
            entry["households_in_dedicated_grids"] = dedicated_hh[cid]
        entries.append(entry)
    feasible_ids = {
        c["community_id"]
        for c in entries
        if c["infeasible_reason"] is None and c["solver_status"] != "FAILED"
    }
    bounded = grids[~unbounded]
    feasible_grids = bounded[bounded["community_id"].isin(feasible_ids)]
    all_in_bounds, n_bounded = count_in_bounds(Counter(grids["status"]))
    in_bounds = int(feasible_grids["status"].isin(["ok", "split_compound"]).sum())
    totals = {"communities": len(communities)}
    if failures:
        totals["communities_failed"] = len(failures)
    totals.update(
        {
            "grids": len(grids),
            "household_rows": rows.household_rows,
            "buildings": int(
                pd.to_numeric(communities["n_units"], errors="coerce").fillna(0).sum()
            ),
            "households": rows.households,
            "households_assigned": rows.households_assigned,
            "households_unassigned": rows.households_unassigned,
            "rows_unassigned": rows.rows_unassigned,
            "unassigned_by_reason": {
                r: {"rows": int(n), "meaning": REASONS.get(r, r)}
                for r, n in sorted(rows.reasons.items())
            },
            "grids_by_status": dict(sorted(Counter(grids["status"]).items())),
            "grids_in_bounds": all_in_bounds,
            "pct_grids_in_bounds": pct_floor(all_in_bounds, n_bounded),
            "feasible_communities": len(feasible_ids),
            "grids_in_feasible_communities": len(feasible_grids),
            "pct_grids_in_bounds_where_feasible": pct_floor(in_bounds, len(feasible_grids)),
            "mean_compactness": round(float(bounded["compactness"].mean()), 4)
            if len(bounded)
            else None,
            "time_s": round(elapsed, 3),
        }
    )
    if unbounded.any():
        totals["dedicated_grids"] = int(unbounded.sum())
        totals["households_in_dedicated_grids"] = int(grids.loc[unbounded, "households"].sum())
    report = {
        "gridkit_version": __version__,
        "parameters": {
            "min_households": rules.min_households,
            "max_households": rules.max_households,
            "target_households": rules.target,
            "balance_weight": rules.balance_weight,
            "time_limit": time_limit,
            "seed": seed,
        },
        "totals": totals,
    }
    if bounds_info:
        report["parameters"]["community_bounds"] = bounds_info
    if failures:
        report["failed_communities"] = [
            {"community_id": c["community_id"], "error": failures[c["community_id"]].error}
            for c in entries
            if c["solver_status"] == "FAILED"
        ]
    report["communities"] = entries
    report["attention"] = [
        {
            "cause": f.cause,
            "community_id": f.community_id,
            "community_name": f.community_name,
            "subject": f.subject,
            "households": f.households,
            "note": f.note,
        }
        for items in attention(report).values()
        for f in items
    ]
    report["grids"] = [
        {
            "grid_code": r.grid_code,
            "community_id": r.community_id,
            "households": int(r.households),
            "buildings": int(r.buildings),
            "area_m2": float(r.area_m2),
            "compactness": float(r.compactness),
            "status": r.status,
        }
        for r in grids.itertuples()
    ]
    return report

