"""The search of a large connected piece: multilevel starts under a counted budget.

A piece of more than :data:`MULTILEVEL_UNITS` units (unless ``prove`` is asked) is not
given to one exact model: :func:`solve_large` coarsens it, makes seeded spanning-tree
plans of the coarse graph, improves them by recombination and refinement
(:mod:`gridkit.solver.multilevel`), uncoarsens them, and keeps the best start.  The
constants that tune the search live here.
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy import sparse

from gridkit.solver import construct as _construct
from gridkit.solver import cpsat as _cpsat
from gridkit.solver import multilevel
from gridkit.solver.measures import GridRules, balance_weight, count_floors, plan_objective
from gridkit.solver.progress import PROGRESS_MIN_BUDGET, progress
from gridkit.solver.proof import cut_note, cut_unit_proof

__all__ = [
    "AREA_SHARE",
    "COARSE_CAP",
    "COARSE_PER_GRID",
    "LOCAL_BALANCE",
    "MIN_STARTS",
    "MULTILEVEL_UNITS",
    "PP_GAIN",
    "RECOMBINE_ROUNDS",
    "STALL_GAIN",
    "STALL_STARTS",
    "solve_large",
]


#: Components above this many units go to the multilevel search (:func:`solve_large`)
#: unless ``prove`` is set.  Its plans are rounder on the map than the exact model's
#: (whose objective counts households, not area) and come sooner: on the sample district,
#: mean Polsby-Popper 0.591 in 2.7 s with 30, against 0.580 in 8.6 s with the exact
#: model up to 60 units; on Singapore's 40 subzones 20 takes 24.0 CPU s against 26.3
#: with 30, at PP 0.599 against 0.597.
MULTILEVEL_UNITS = 20
#: The multilevel engine (:func:`solve_large`).
#: A coarse unit holds at most this share of ``min_households``: well below a
#: grid, so a grid is always made of several coarse units.
COARSE_CAP = 0.25
#: Coarsening stops at about this many coarse units per grid.
COARSE_PER_GRID = 6
#: Rounds of recombination and refinement per start, at most.
RECOMBINE_ROUNDS = 8
#: Starts made at least (budget permitting the first), and starts in a row without
#: a better plan after which the search stops.
MIN_STARTS = 2
#: (2 rather than 3: Singapore's 40 subzones in 16.6 CPU s instead of 24.0, PP 0.601
#: instead of 0.599; the sample and the 900-building community unchanged)
STALL_STARTS = 2
#: A start counts as progress only when it lowers the best cost by this share, or
#: (cells' outlines known) raises the best mean Polsby-Popper by this much.
STALL_GAIN = 0.001
PP_GAIN = 0.002
#: The balance term of the multilevel search, as a share of the exact model's.
#: Single-unit moves must be able to trade a little balance for a rounder
#: outline: on the 900-building benchmark community, refinement ends at mean
#: Polsby-Popper 0.52 with the full weight and 0.56 with 0.3.
LOCAL_BALANCE = 0.3
#: Where unit areas are known, the share of the search's compactness weight that is
#: area (the rest is households): grids are judged by their outline on the map.
AREA_SHARE = 0.75


def _medoids(labels: np.ndarray, w: np.ndarray, xy: np.ndarray) -> dict[int, int]:
    """Centre of every grid: its member with the least household-weighted distance to the rest.

    A grid of more than 1,000 units takes its candidates among the 250 members
    nearest its weighted centroid, so memory stays linear in the units.
    """
    centres: dict[int, int] = {}
    order = np.argsort(labels, kind="stable")
    cuts = np.flatnonzero(np.diff(labels[order])) + 1
    for members in np.split(order, cuts):
        pts, mw = xy[members], w[members].astype(float)
        candidates = np.arange(len(members))
        if len(members) > 1000:
            weight = mw + 1e-9
            centre = (pts * weight[:, None]).sum(axis=0) / weight.sum()
            candidates = np.argsort(np.hypot(*(pts - centre).T), kind="stable")[:250]
        d = np.hypot(
            pts[:, None, 0] - pts[None, candidates, 0], pts[:, None, 1] - pts[None, candidates, 1]
        )
        best = candidates[int(np.argmin((mw[:, None] * d).sum(axis=0)))]
        centres[int(labels[members[0]])] = int(members[best])
    return centres


def solve_large(
    adj: sparse.csr_matrix,
    w: np.ndarray,
    xy: np.ndarray,
    *,
    rules: GridRules,
    time_limit: float,
    seed: int,
    workers: int,
    area: np.ndarray | None = None,
    separate: np.ndarray | None = None,
    outline: tuple[np.ndarray, np.ndarray, sparse.csr_matrix] | None = None,
) -> tuple[np.ndarray, str, float | None, float | None, float, float, list[str], bool]:
    """Multilevel partition of a large connected component (see :mod:`gridkit.solver.multilevel`).

    1. Coarsen: neighbours are matched into coarse units of at most
       ``COARSE_CAP * min_households`` households, never across two
       ``separate`` groups, until about ``COARSE_PER_GRID`` coarse units per
       grid are left.
    2. Starts, one after the other: a seeded spanning-tree plan
       (:mod:`gridkit.solver.construct`) of the coarse graph, for the ideal number of
       grids and one more in turn, improved by rounds of recombination
       (:func:`gridkit.solver.multilevel.recombine`: two neighbouring grids merged and
       split again along the best of several random spanning trees) and
       boundary refinement (:func:`gridkit.solver.multilevel.refine`) until a round
       gains less than 0.1 %; then uncoarsened level by level, refined at every
       level.  The cheapest plan of all starts is kept.
    3. Starts stop when ``STALL_STARTS`` in a row improved nothing, or before
       the next one would overrun the budget; at least ``MIN_STARTS`` run.
       With the cells' ``outline`` (area, perimeter, shared boundary lengths)
       the plan kept is the one whose grids are roundest on the map (mean
       Polsby-Popper, :func:`gridkit.solver.multilevel.mean_polsby_popper`; a start
       improves when it adds ``PP_GAIN``), else the cheapest; a plan closer to
       the bounds always wins.

    The budget is counted by a :class:`gridkit.solver.multilevel.WorkClock`, not
    timed, so the plan does not depend on the machine or its load.  The search
    objective is :func:`gridkit.solver.multilevel.plan_cost`: the moment of households
    and area about each grid's centroid (what a round outline minimises) plus
    ``LOCAL_BALANCE`` times the model's balance term; the objective reported is
    the exact model's (:func:`plan_objective`), and the bound is the floor of
    :func:`count_floors` over the counts that can meet the bounds: valid,
    cheap and weak (``prove`` runs the whole exact model instead).  Memory is
    linear in the units.
    """
    started = time.perf_counter()
    n, total = len(w), int(w.sum())
    lam = balance_weight(adj, w, xy, rules)
    mass = multilevel.unit_mass(w, area, AREA_SHARE)
    share = 1.0 - AREA_SHARE if area is not None else 1.0
    balance = LOCAL_BALANCE * lam * share / max(float(w.mean()), 1e-9)
    bounds = {
        "min_households": rules.min_households,
        "max_households": rules.max_households,
        "target": rules.target,
    }
    k_lo, k_hi = -(-total // rules.max_households), max(1, total // rules.min_households)
    k_ideal = _construct.count_for(total, rules.min_households, rules.max_households, rules.target)
    clock = multilevel.WorkClock()
    levels = multilevel.coarsen(
        adj, w, xy,
        cap=max(1, int(rules.min_households * COARSE_CAP)),
        goal=COARSE_PER_GRID * k_ideal, mass=mass, separate=separate,
    )  # fmt: skip
    clock.add(sum(lv.adj.nnz for lv in levels) * 4)
    top = levels[-1]
    counts = sorted({min(max(k, k_lo), max(k_hi, k_lo)) for k in (k_ideal, k_ideal + 1)})

    def improve(labels: np.ndarray, s: int) -> np.ndarray:
        labels, _ = multilevel.refine(
            top.adj, top.w, top.xy, labels, mass=top.mass, balance=balance, sweeps=100,
            clock=clock, **bounds,
        )  # fmt: skip
        value = multilevel.plan_cost(labels, top.w, top.xy, top.mass, balance=balance, **bounds)
        for round_ in range(RECOMBINE_ROUNDS):
            if clock.seconds >= time_limit:
                break
            labels, moves = multilevel.recombine(
                top.adj, top.w, top.xy, labels, mass=top.mass, balance=balance,
                seed=1000 * s + round_, passes=1, clock=clock, **bounds,
            )  # fmt: skip
            labels, _ = multilevel.refine(
                top.adj, top.w, top.xy, labels, mass=top.mass, balance=balance, sweeps=100,
                clock=clock, **bounds,
            )  # fmt: skip
            new = multilevel.plan_cost(labels, top.w, top.xy, top.mass, balance=balance, **bounds)
            if not moves or new > value * (1 - 1e-3):
                break
            value = new
        for depth in range(len(levels) - 1, 0, -1):
            fine = levels[depth - 1]
            labels = labels[levels[depth].parent]
            labels, _ = multilevel.refine(
                fine.adj, fine.w, fine.xy, labels, mass=fine.mass, balance=balance,
                sweeps=100, clock=clock, **bounds,
            )  # fmt: skip
        return labels

    best: tuple[float, np.ndarray] | None = None
    best_score: tuple[float, float] = (math.inf, 0.0)
    stall = attempt = 0
    while True:
        before = clock.seconds
        k = counts[attempt % len(counts)]
        plan = _construct.tree_partition(
            top.adj, top.w,
            min_households=rules.min_households, max_households=rules.max_households,
            target=max(1, round(total / k)), seed=seed + attempt, tries=30,
        )  # fmt: skip
        clock.add(30 * (top.n + top.adj.nnz) * max(1, math.ceil(math.log2(max(k, 2)))))
        labels = improve(plan.labels, seed + attempt)
        value = multilevel.plan_cost(labels, w, xy, mass, balance=balance, **bounds)
        attempt += 1
        if outline is not None:  # (violation first, then roundness)
            loads = np.bincount(np.unique(labels, return_inverse=True)[1], weights=w)
            off = float(
                np.maximum(0, rules.min_households - loads).sum()
                + np.maximum(0, loads - rules.max_households).sum()
            )
            score = (off, -multilevel.mean_polsby_popper(labels, *outline))
            better = best is None or score < (best_score[0], best_score[1] - PP_GAIN)
            if best is None or score < best_score:
                best, best_score = (value, labels), score
        else:
            better = best is None or value < best[0] * (1 - STALL_GAIN)
            if best is None or value < best[0]:
                best = (value, labels)
        stall = 0 if better else stall + 1
        last = clock.seconds - before
        if time_limit >= PROGRESS_MIN_BUDGET:
            progress(
                f"multilevel search ({n} units, {top.n} coarse), start {attempt} "
                f"({len(np.unique(labels))} grids): best plan so far "
                f"{len(np.unique(best[1]))} grids, cost {best[0]:,.0f}; "
                f"{clock.seconds:.1f} of {time_limit:.1f} s"
            )
        if attempt >= MIN_STARTS and stall >= STALL_STARTS:
            break
        if clock.seconds + last > time_limit:
            break
    labels = np.unique(best[1], return_inverse=True)[1]
    loads = np.bincount(labels, weights=w)
    in_bounds = bool(np.all((loads >= rules.min_households) & (loads <= rules.max_households)))
    notes: list[str] = []
    centres = _medoids(labels, w, xy)
    objective = plan_objective(labels, centres, w, xy, lam, rules)
    bound = None
    unreachable = False
    if in_bounds:
        floors = count_floors(w, xy, lam, rules, range(k_lo, k_hi + 1))
        bound = min(floors.values()) if floors else None
    else:
        cut = cut_unit_proof(adj, w, rules)
        reachable = None
        if cut is None and n * max(k_hi, 1) <= 20_000:
            reachable = _cpsat.bounds_reachable(
                w, min_households=rules.min_households, max_households=rules.max_households,
                time_limit=min(1.0, time_limit), seed=seed,
            )  # fmt: skip
        unreachable = cut is not None or reachable is False
        if cut is not None:
            notes.append(cut_note(cut))
        else:
            notes.append(
                f"proved: {total} households cannot be grouped into grids of "
                f"{rules.min_households}-{rules.max_households} households, even ignoring "
                "contiguity; the plan keeps the bounds as nearly as possible"
                if unreachable
                else "no contiguous plan within the bounds was found; the plan keeps the "
                "bounds as nearly as possible"
            )
    status = "OPTIMAL" if bound is not None and objective <= bound + 0.5 else "FEASIBLE"
    out = np.array([centres[int(lab)] for lab in labels], dtype=np.int64)
    wall = time.perf_counter() - started
    return out, status, objective, bound, wall, clock.seconds, notes, unreachable
