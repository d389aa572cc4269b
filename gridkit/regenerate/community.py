"""One community regenerated: which previous grids are kept and which are broken, the region
re-solved around the broken ones, and the codes of its new grids.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from gridkit.contracts import OWN_GRID_STATUSES
from gridkit.partition import (
    CommunityPlan,
    GridRules,
    number_grids,
    own_grid_kinds,
    partition_community,
    status_of_grid,
)
from gridkit.regenerate.resolve import RegionResult, bound_violation, moved_by_match, solve_region
from gridkit.regenerate.stable_codes import match_codes
from gridkit.units import adjacency_matrix, rook_pairs

__all__ = ["CommunityOutcome", "CommunityTask", "regen_community"]

log = logging.getLogger(__name__)


@dataclass
class CommunityTask:
    """One community to regenerate: its units, what each inherits, and the rules."""

    community_id: str
    units: gpd.GeoDataFrame
    inherit: np.ndarray  # previous grid sequence per unit, -1 when none
    existing: np.ndarray  # whether the unit held households of the previous run
    prev_status: dict[int, str]
    next_seq: int
    rules: GridRules
    time_limit: float
    seed: int
    workers: int


@dataclass
class CommunityOutcome:
    """The plan of one community and how much of it was re-solved."""

    plan: CommunityPlan
    region_units: int = 0
    region_grids: int = 0
    expanded: bool = False


def _connected(adj: sparse.csr_matrix, members: np.ndarray) -> bool:
    if len(members) <= 1:
        return True
    sub = adj[members][:, members]
    return csgraph.connected_components(sub, directed=False)[0] == 1


def _grow(region: np.ndarray, adj: sparse.csr_matrix, inherit: np.ndarray, fixed: set[int]):
    """``region`` plus every previous grid touching it (except the ``fixed`` ones)."""
    touched = np.unique(adj[np.flatnonzero(region)].indices)
    seqs = {int(s) for s in inherit[touched] if s >= 0} - fixed
    return region | np.isin(inherit, sorted(seqs))


def _statuses(
    seq: np.ndarray, w: np.ndarray, rules: GridRules, kinds: np.ndarray
) -> dict[int, str]:
    out = {}
    for s in np.unique(seq):
        members = seq == s
        out[int(s)] = status_of_grid(int(w[members].sum()), _kind_of(kinds[members]), rules)
    return out


def _kind_of(kinds: np.ndarray) -> str:
    """The own-grid kind of a grid from its units' (:func:`gridkit.partition.own_grid_kinds`)."""
    for kind in OWN_GRID_STATUSES:
        if (kinds == kind).any():
            return kind
    return ""


def regen_community(task: CommunityTask) -> CommunityOutcome:
    """Keep the valid grids of one community and re-solve the rest."""
    started = time.perf_counter()
    units, rules = task.units, task.rules
    cid = task.community_id
    inherit = task.inherit
    w = units["households"].to_numpy(dtype=np.int64)
    kinds = own_grid_kinds(units, rules)
    if (inherit < 0).all():
        # nothing to keep (a new community): partition it, numbering after the issued codes
        plan = partition_community(
            units, rules=rules, time_limit=task.time_limit, seed=task.seed, workers=task.workers
        )
        offset = task.next_seq - 1
        plan.labels = plan.labels + offset
        plan.grid_status = {s + offset: st for s, st in plan.grid_status.items()}
        return CommunityOutcome(
            plan=plan, region_units=len(units), region_grids=len(plan.grid_status)
        )
    geoms = units.geometry.to_numpy()
    left, right, _ = rook_pairs(geoms)
    adj = adjacency_matrix(len(units), left, right)
    xy = units[["x", "y"]].to_numpy(dtype=float)
    status_now = {}
    broken = set()
    for s in np.unique(inherit[inherit >= 0]):
        members = np.flatnonzero(inherit == s)
        st = status_of_grid(int(w[members].sum()), _kind_of(kinds[members]), rules)
        status_now[int(s)] = st
        ok = st == "ok" or st == task.prev_status.get(int(s))
        if not ok or not _connected(adj, members):
            broken.add(int(s))
    free = inherit < 0
    notes: list[str] = []
    if not broken and not free.any():
        plan = CommunityPlan(
            community_id=cid,
            labels=pd.Series(inherit, index=units.index, name="grid_seq"),
            grid_status=dict(sorted(status_now.items())),
            solver_status="OPTIMAL",
            objective=None,
            bound=None,
            gap=None,
            wall_time=time.perf_counter() - started,
            deterministic_time=0.0,
            notes=[],
        )
        return CommunityOutcome(plan=plan)
    mover = np.where(task.existing, inherit, -1)  # new buildings never count as moved
    fixed = {s for s, st in status_now.items() if st in OWN_GRID_STATUSES} - broken
    region = np.isin(inherit, sorted(broken)) | free
    region = _grow(region, adj, inherit, fixed)
    best: tuple[np.ndarray, RegionResult] | None = None
    expanded = False
    det = 0.0
    while True:
        nodes = np.flatnonzero(region)
        result = solve_region(
            adj[nodes][:, nodes].tocsr(),
            w[nodes],
            xy[nodes],
            inherit[nodes],
            mover[nodes],
            rules=rules,
            time_limit=task.time_limit,
            seed=task.seed,
            workers=task.workers,
        )
        det += result.deterministic_time
        if best is None or (result.violation, result.moved) < (best[1].violation, best[1].moved):
            best = (nodes, result)
        if result.violation == 0 or region.all():
            break
        region = np.ones(len(units), dtype=bool)
        expanded = True
    if best[1].violation:
        # Bounds come before stability: a fresh partition (its warm start meets the
        # bounds whenever a spanning-tree cut allows) may fix what the re-solve could not.
        fresh_plan = partition_community(
            units, rules=rules, time_limit=task.time_limit, seed=task.seed, workers=task.workers
        )
        fresh_labels = fresh_plan.labels.to_numpy()
        violation = bound_violation(fresh_labels, w, rules)
        if violation < best[1].violation:
            det += fresh_plan.deterministic_time
            expanded = True
            best = (
                np.arange(len(units)),
                RegionResult(
                    fresh_labels, fresh_plan.solver_status, fresh_plan.objective,
                    fresh_plan.bound, fresh_plan.wall_time, fresh_plan.deterministic_time,
                    violation, moved_by_match(fresh_labels, mover, w),
                ),
            )  # fmt: skip
    nodes, result = best
    # codes: the matched old code, else new sequence numbers north→south, west→east
    seq = inherit.copy()
    local = result.labels
    match = match_codes(local, mover[nodes], w[nodes])
    fresh = sorted(set(np.unique(local).tolist()) - set(match))
    new_seq = np.zeros(len(nodes), dtype=np.int64)
    for lab, g in match.items():
        new_seq[local == lab] = g
    if fresh:
        mask = np.isin(local, fresh)
        cells = geoms[nodes][mask]
        order = number_grids(
            local[mask], shapely.get_coordinates(shapely.centroid(cells)), shapely.area(cells)
        )
        new_seq[mask] = order - 1 + task.next_seq
    seq[nodes] = new_seq
    statuses = _statuses(seq, w, rules, kinds)
    if result.violation:
        notes.append(
            f"{result.violation} household(s) outside the bounds "
            f"[{rules.min_households}, {rules.max_households}] could not be avoided "
            f"around the changed grids of {cid}"
            + (" (the whole community was re-solved)" if expanded else "")
            + "; change the bounds or merge this area with a neighbouring community"
        )
    gap = None
    if result.objective is not None and result.bound is not None:
        gap = (
            0.0
            if result.objective <= 0
            else max(0.0, (result.objective - result.bound) / result.objective)
        )
    plan = CommunityPlan(
        community_id=cid,
        labels=pd.Series(seq, index=units.index, name="grid_seq"),
        grid_status=dict(sorted(statuses.items())),
        solver_status=result.status,
        objective=result.objective,
        bound=result.bound,
        gap=gap,
        wall_time=time.perf_counter() - started,
        deterministic_time=det,
        notes=notes,
        bounds_unreachable=bool(result.violation) and expanded,
    )
    log.info(
        "community %s: re-solved %d units (%d grids freed), %d households moved",
        cid,
        len(nodes),
        len(np.unique(inherit[nodes][inherit[nodes] >= 0])),
        result.moved,
    )
    return CommunityOutcome(
        plan=plan,
        region_units=len(nodes),
        region_grids=len(np.unique(inherit[nodes][inherit[nodes] >= 0])),
        expanded=expanded,
    )
