"""The re-solve model: a region of a community re-partitioned by CP-SAT, built from the
model builders of :mod:`gridkit.solver`, fewest households out of bounds first, then fewest
households moved, then compactness and balance (see :mod:`gridkit.regenerate.redraw`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from ortools.sat.python import cp_model
from scipy import sparse
from scipy.sparse import csgraph

from gridkit.partition import GridRules, balance_weight, centre_for, graph_distances, max_radius
from gridkit.regenerate.stable_codes import match_codes

# Not yet exported by the door of gridkit.solver: the CP-SAT model builders.
from gridkit.solver import (
    GridModel,
    add_assignment,
    add_balance_cut,
    add_contiguity,
    add_hint,
    add_size_bounds,
    allowed_pairs,
    solve,
)

__all__ = ["RegionResult", "bound_violation", "moved_by_match", "solve_region"]


def _hint_labels(adj: sparse.csr_matrix, inherit: np.ndarray) -> np.ndarray:
    """A hint: the previous grid of each unit, free units joining a neighbour's grid.

    Returns labels 0..k-1 whose groups are connected.
    """
    labels = inherit.astype(np.int64).copy()
    n = len(labels)
    while (labels < 0).any():
        changed = False
        for i in np.flatnonzero(labels < 0):
            nbrs = adj.indices[adj.indptr[i] : adj.indptr[i + 1]]
            known = [int(j) for j in nbrs if labels[j] >= 0]
            if known:
                labels[i] = labels[min(known)]
                changed = True
        if not changed:  # a piece with no previous grid at all: one new group
            first = int(np.flatnonzero(labels < 0)[0])
            labels[first] = labels.max(initial=-1) + 1 + n
    out = np.empty(n, dtype=np.int64)
    nxt = 0
    for lab in np.unique(labels):
        members = np.flatnonzero(labels == lab)
        k, comp = csgraph.connected_components(adj[members][:, members], directed=False)
        out[members] = comp + nxt
        nxt += k
    return out


@dataclass
class RegionResult:
    """A re-solved region: new labels, solver figures, households out of bounds and moved."""

    labels: np.ndarray  # centre (local index) per region unit
    status: str
    objective: float | None
    bound: float | None
    wall_time: float
    deterministic_time: float
    violation: int
    moved: int


def bound_violation(labels: np.ndarray, w: np.ndarray, rules: GridRules) -> int:
    """Households outside the bounds over all grids of ``labels`` (oversize buildings excepted)."""
    total = 0
    for lab in np.unique(labels):
        members = labels == lab
        load = int(w[members].sum())
        if (w[members] > rules.max_households).any():
            continue  # an oversize building: not fixable
        total += max(0, rules.min_households - load) + max(0, load - rules.max_households)
    return total


def moved_by_match(labels: np.ndarray, old: np.ndarray, w: np.ndarray) -> int:
    """Households of ``old`` grids outside the new grid matched to their code (``match_codes``)."""
    match = match_codes(labels, old, w)
    kept = sum(int(w[(labels == lab) & (old == g)].sum()) for lab, g in match.items())
    return int(w[old >= 0].sum()) - kept


def solve_region(
    adj: sparse.csr_matrix,
    w: np.ndarray,
    xy: np.ndarray,
    inherit: np.ndarray,
    old: np.ndarray,
    *,
    rules: GridRules,
    time_limit: float,
    seed: int,
    workers: int,
) -> RegionResult:
    """Re-partition a region: fewest households out of bounds, then fewest moved, then compact.

    ``inherit`` is the previous grid holding each unit (the hint); ``old`` the same for
    units that existed before and -1 for new ones (the moved-household term).
    """
    n = len(w)
    dist = graph_distances(adj, xy)
    hint = _hint_labels(adj, inherit)
    centres = {
        int(lab): centre_for(np.flatnonzero(hint == lab), adj, w, xy, dist)
        for lab in np.unique(hint)
    }
    hint_centre = np.array([centres[int(lab)] for lab in hint], dtype=np.int64)
    lam = balance_weight(adj, w, xy, rules)
    pair_i, pair_c, preds = allowed_pairs(
        adj,
        w,
        dist,
        max_households=None,
        xy=xy,
        max_radius=max_radius(adj, w, xy, rules),
        keep={(i, int(hint_centre[i])) for i in range(n)},
    )
    model = cp_model.CpModel()
    x = [model.NewBoolVar(f"x_{i}_{c}") for i, c in zip(pair_i, pair_c, strict=True)]
    centre_index = {
        int(c): p for p, (i, c) in enumerate(zip(pair_i, pair_c, strict=True)) if i == c
    }
    add_assignment(model, x, pair_i, n)
    add_contiguity(model, x, pair_i, pair_c, preds, centre_index)
    devs, violations = add_size_bounds(
        model,
        x,
        pair_i,
        pair_c,
        w,
        centre_index,
        min_households=rules.min_households,
        max_households=rules.max_households,
        target=rules.target,
        hard=False,
    )
    total = int(w.sum())
    opened = [x[p] for p in centre_index.values()]
    add_balance_cut(model, devs, opened, total=total, target=rules.target)
    # moved households: each old code goes to at most one open grid
    y: dict[tuple[int, int], Any] = {}
    kept_terms = []
    z_of: dict[int, Any] = {}
    for p, (i, c) in enumerate(zip(pair_i, pair_c, strict=True)):
        g = int(old[i])
        if g < 0 or w[i] == 0:
            continue
        key = (g, int(c))
        if key not in y:
            y[key] = model.NewBoolVar(f"y_{g}_{c}")
        z = model.NewBoolVar(f"z_{i}_{c}")
        model.AddImplication(z, x[p])
        model.AddImplication(z, y[key])
        kept_terms.append(int(w[i]) * z)
        z_of[p] = z
    by_old: dict[int, list] = {}
    by_centre: dict[int, list] = {}
    for (g, c), var in y.items():
        by_old.setdefault(g, []).append(var)
        by_centre.setdefault(c, []).append(var)
    for vars_g in by_old.values():
        model.AddAtMostOne(vars_g)
    for c, vars_c in by_centre.items():
        model.Add(sum(vars_c) <= x[centre_index[c]])
    old_total = int(w[old >= 0].sum())
    big = total + 1
    first = big * sum(violations) + old_total - sum(kept_terms)
    model.Minimize(first)
    grid_model = GridModel(model=model, pair_i=pair_i, pair_c=pair_c, x=x, n=n)

    def hint_plan(labels: np.ndarray) -> None:
        model.ClearHints()
        add_hint(grid_model, labels, {int(c): int(c) for c in np.unique(labels)})
        match = match_codes(labels, old, w)
        for (g, c), var in y.items():
            model.AddHint(var, match.get(c) == g)
        for p, z in z_of.items():
            i, c = int(pair_i[p]), int(pair_c[p])
            model.AddHint(z, bool(labels[i] == c and match.get(c) == int(old[i])))

    hint_plan(hint_centre)
    step1 = solve(grid_model, time_limit=0.6 * time_limit, seed=seed, workers=workers)
    wall, det = step1.wall_time, step1.deterministic_time
    if step1.labels is None:
        labels = hint_centre
        return RegionResult(
            labels, "HEURISTIC", None, None, wall, det, bound_violation(labels, w, rules),
            moved_by_match(labels, old, w),
        )  # fmt: skip
    labels = step1.labels
    # step 2: keep the first optimum (as found), minimise compactness + balance
    model.Add(first <= round(step1.objective))
    dist_m = np.rint(np.hypot(*(xy[pair_i] - xy[pair_c]).T)).astype(np.int64)
    cost = w[pair_i] * dist_m
    model.Minimize(sum(int(k) * x[p] for p, k in enumerate(cost) if k) + lam * sum(devs))
    hint_plan(labels)
    step2 = solve(grid_model, time_limit=0.4 * time_limit, seed=seed, workers=workers)
    wall += step2.wall_time
    det += step2.deterministic_time
    status = step1.status if step1.status == "OPTIMAL" else "FEASIBLE"
    objective = bound = None
    if step2.labels is not None:
        labels = step2.labels
        objective, bound = step2.objective, step2.bound
        if step2.status != "OPTIMAL":
            status = "FEASIBLE"
    else:
        status = "FEASIBLE"
    return RegionResult(
        labels, status, objective, bound, wall, det, bound_violation(labels, w, rules),
        moved_by_match(labels, old, w),
    )  # fmt: skip
