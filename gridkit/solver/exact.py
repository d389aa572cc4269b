"""The exact search of a connected piece: CP-SAT one number of grids at a time, and LNS.

:func:`solve_component` partitions one connected piece whose units all fit a grid.  Up to
:data:`gridkit.solver.large.MULTILEVEL_UNITS` units (any size with ``prove``) it starts
from a spanning-tree plan and solves the exact model of :mod:`gridkit.solver.cpsat`,
searched one number of grids at a time (:func:`_solve_by_count`) with a floor per count
(:func:`gridkit.solver.measures.count_floors`) and the set-partitioning bound
(:mod:`gridkit.solver.lower_bound`); above :data:`EXACT_UNITS` units the model gets a
share of the budget and large-neighbourhood search the rest.  Larger pieces go to the
multilevel search (:func:`gridkit.solver.large.solve_large`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
from scipy import sparse

from gridkit.errors import format_ids
from gridkit.solver import construct as _construct
from gridkit.solver import cpsat as _cpsat
from gridkit.solver import lower_bound as _columns
from gridkit.solver.large import MULTILEVEL_UNITS, solve_large
from gridkit.solver.measures import (
    GridRules,
    balance_weight,
    centre_for,
    count_floors,
    graph_distances,
    max_radius,
    plan_objective,
)
from gridkit.solver.proof import cut_note, cut_unit_proof

__all__ = [
    "COUNT_PROBE",
    "EXACT_SHARE",
    "EXACT_UNITS",
    "GAP_STOP",
    "GROUP_LIMIT",
    "GROUP_UNITS",
    "LNS_STAGES",
    "solve_component",
]


#: Components up to this many units are solved by one exact model with the
#: whole time budget; larger ones spend ``EXACT_SHARE`` of it on the whole
#: model (for a proven bound and a first plan) and the rest on LNS.
EXACT_UNITS = 60
EXACT_SHARE = 0.3
#: LNS stages: grids freed together and the deterministic budget of one
#: re-solve.  Pairs of grids first (cheap, and they settle: on the sample's
#: 122-building community the pair stage stops by itself after 1.4 s, at 76 % of
#: the warm start's objective), then triples with what is left.
LNS_STAGES = ((2, 0.25), (3, 0.5))


def _improve_by_lns(
    adj: sparse.csr_matrix,
    w: np.ndarray,
    xy: np.ndarray,
    labels: np.ndarray,
    *,
    rules: GridRules,
    lam: int,
    budget: float,
    seed: int,
) -> tuple[np.ndarray, float, int]:
    """Large-neighbourhood search: free a grid and its closest neighbours, re-solve exactly.

    Runs the stages of :data:`LNS_STAGES` in turn, each with what the earlier
    ones left of ``budget``.  In a stage freeing ``m`` grids, for every grid in
    turn (by centre index), the grid and the ``m - 1`` neighbouring grids
    sharing most adjacency edges with it are freed and re-partitioned by the
    exact model on their units (the number of grids may change), hinted with
    the current plan and cut off at its objective.  A re-solve is kept only if
    it lowers the objective, so the plan stays valid and only improves.  A
    neighbourhood proved optimal as it stands (the cut-off model infeasible)
    is not solved again while its grids stay the same.  A stage's passes repeat
    until one improves nothing or the budget (deterministic seconds) is spent;
    the result depends only on the inputs.

    Returns
    -------
    labels, spent, accepted
        Improved labels (centre index per unit), deterministic time used and
        the number of accepted moves.
    """
    labels = labels.copy()
    spent, accepted = 0.0, 0
    for grids, step_limit in LNS_STAGES:
        labels, used, moves = _lns_stage(
            adj, w, xy, labels, grids=grids, step_limit=step_limit, rules=rules, lam=lam,
            budget=budget - spent, seed=seed,
        )  # fmt: skip
        spent += used
        accepted += moves
    return labels, spent, accepted


def _lns_stage(
    adj: sparse.csr_matrix,
    w: np.ndarray,
    xy: np.ndarray,
    labels: np.ndarray,
    *,
    grids: int,
    step_limit: float,
    rules: GridRules,
    lam: int,
    budget: float,
    seed: int,
) -> tuple[np.ndarray, float, int]:
    """One stage of :func:`_improve_by_lns`: neighbourhoods of ``grids`` grids."""
    coo = adj.tocoo()
    row, col = coo.row, coo.col
    spent, accepted, improved = 0.0, 0, True
    settled: set[bytes] = set()  # neighbourhoods proved optimal as they stand
    while improved and spent < budget - 1e-3:
        improved = False
        for g in np.unique(labels):
            if spent >= budget - 1e-3:
                break
            if not np.any(labels == g):
                continue  # merged away earlier in this pass
            a, b = labels[row], labels[col]
            nbrs, shared = np.unique(b[(a == g) & (b != g)], return_counts=True)
            chosen = [int(g)] + [int(x) for x in nbrs[np.lexsort((nbrs, -shared))][: grids - 1]]
            if len(chosen) < 2:
                continue
            nodes = np.flatnonzero(np.isin(labels, chosen))
            _, local = np.unique(labels[nodes], return_inverse=True)
            key = nodes.tobytes() + local.tobytes()
            if key in settled:
                continue  # proved optimal as it stands: nothing to gain
            sub = adj[nodes][:, nodes].tocsr()
            sw, sxy = w[nodes], xy[nodes]
            dist = graph_distances(sub, sxy)
            centres = {
                int(lab): centre_for(np.flatnonzero(local == lab), sub, sw, sxy, dist)
                for lab in np.unique(local)
            }
            current = plan_objective(local, centres, sw, sxy, lam, rules)
            grid_model = _cpsat.build_model(
                sub,
                sw,
                sxy,
                dist,
                min_households=rules.min_households,
                max_households=rules.max_households,
                target=rules.target,
                balance_weight=lam,
                hard=True,
                keep={(i, centres[int(lab)]) for i, lab in enumerate(local)},
            )
            _cpsat.add_hint(grid_model, local, centres)
            _cpsat.restrict(grid_model, cutoff=round(current) - 1)
            result = _cpsat.solve(
                grid_model, time_limit=min(step_limit, budget - spent), seed=seed, workers=1
            )
            spent += result.deterministic_time
            if result.labels is not None and result.objective < current - 0.5:
                labels[nodes] = nodes[result.labels]
                accepted += 1
                improved = True
            elif result.status == "INFEASIBLE":
                settled.add(key)
    return labels, spent, accepted


#: The set-partitioning bound is computed only when a component has at most
#: this many connected groups of units that could be a grid (on Singapore's
#: HDB subzones: 1,600-92,000; with 60-household buildings the number explodes),
#: and it is not even tried when a full grid holds more than ``GROUP_UNITS``
#: units of average size (listing 100,000 groups to give up costs 0.25 s).
GROUP_LIMIT = 100_000
GROUP_UNITS = 10


def _set_partition_bounds(
    adj: sparse.csr_matrix,
    w: np.ndarray,
    xy: np.ndarray,
    lam: int,
    rules: GridRules,
    counts: list[int],
) -> dict[int, float]:
    """Set-partitioning LP bound per count (:mod:`gridkit.solver.lower_bound`).

    ``{}`` if too many groups.
    """
    if rules.max_households > GROUP_UNITS * max(float(w.mean()), 1.0):
        return {}
    groups = _columns.connected_groups(
        adj,
        w,
        min_households=rules.min_households,
        max_households=rules.max_households,
        limit=GROUP_LIMIT,
    )
    if groups is None:
        return {}
    if not groups:  # no group fits the bounds: no plan with any count
        return dict.fromkeys(counts, math.inf)
    costs = _columns.group_costs(groups, w, xy, lam=lam, target=rules.target)
    return _columns.partition_bounds(groups, costs, len(w), counts)


#: The exact search stops once its plan is proved within this share of the optimum
#: (the default is speed first; ``prove`` asks for the optimum itself).
GAP_STOP = 0.05


#: The search by number of grids first probes every count with this many
#: deterministic seconds (at most a quarter of the budget in all).
COUNT_PROBE = 0.2


def _solve_by_count(
    grid_model: _cpsat.GridModel,
    *,
    first: int,
    incumbent: tuple[np.ndarray, float],
    time_limit: float,
    seed: int,
    workers: int,
    floors: dict[int, float] | None = None,
    set_bounds: Callable[[list[int]], dict[int, float]] | None = None,
    gap_stop: float = 0.0,
) -> _cpsat.SolveResult:
    """Solve the hard model one number of grids at a time, the best plan so far as cutoff.

    Fixing the number of grids ``k`` tightens CP-SAT's LP relaxation a lot: the
    balance cut becomes exact, and the fractional half-open centres a free count
    allows disappear.  On the sample district a 32-building community is proved
    optimal in 0.3 deterministic seconds this way, against 4.6 with ``k`` free.

    Every solve is restricted to plans strictly better than the best so far
    (objective ``<= best - 1``; the objective is an integer), so a count is
    *closed* once CP-SAT proves it ``OPTIMAL`` or ``INFEASIBLE`` (no better plan
    with that many grids).  Two passes:

    1. a short probe of every count of the model's range (``COUNT_PROBE``
       seconds each; ``first``, the warm start's, first, then by floor): the
       counts far from the ideal close at once, and the others get a first plan
       and bound;
    2. the open counts, lowest bound first, each get an even share of what is
       left of the budget; time a count does not use passes to the next, and
       passes repeat while counts stay open and budget is left.

    ``floors`` (:func:`count_floors`) are lower bounds per count known
    beforehand: they start each count's bound, and a count whose floor is no
    better than the best plan is closed without a solve.  ``set_bounds``, when
    given, returns lower bounds for a list of counts (the set-partitioning LP of
    :mod:`gridkit.solver.lower_bound`); it is called once, after the probes, for the
    counts still open, and closes those it proves no better than the best plan.
    Each solve is hinted with its count's best plan (the warm start for
    ``first``).  The search stops early once the proven gap is at most
    ``gap_stop`` (:data:`GAP_STOP` by default in :func:`partition_graph`, 0
    with ``prove``).
    The bound returned is ``min(best, bound of every open count)``: a plan with
    a closed count cannot beat the incumbent.  The status is ``OPTIMAL`` when
    every count closed, else ``FEASIBLE``; ``labels`` is the best plan, or None
    when no solve improved on ``incumbent``.
    """
    lo, hi = grid_model.count_range
    floors = floors or {}
    # the warm start's count first, then the lowest floors: good plans early close the rest
    counts = [
        first,
        *sorted((k for k in range(lo, hi + 1) if k != first), key=lambda k: (floors.get(k, 0), k)),
    ]
    best_labels, best = None, float(incumbent[1])
    plans: dict[int, tuple[float, np.ndarray]] = {first: (best, incumbent[0])}
    bounds: dict[int, float] = dict(floors)
    spent = wall = 0.0

    def run(k: int, budget: float) -> None:
        nonlocal best, best_labels, spent, wall
        if floors.get(k, -math.inf) >= best - 0.5:
            bounds[k] = math.inf  # even its floor cannot beat the incumbent
            return
        _cpsat.restrict(grid_model, count=k, cutoff=round(best) - 1)
        if k in plans:
            hint = plans[k][1]
            _cpsat.add_hint(grid_model, hint, {int(c): int(c) for c in np.unique(hint)})
        else:
            grid_model.model.ClearHints()
        result = _cpsat.solve(grid_model, time_limit=budget, seed=seed, workers=workers)
        spent += result.deterministic_time
        wall += result.wall_time
        if result.labels is not None and result.objective < best:
            best, best_labels = result.objective, result.labels
            plans[k] = (best, result.labels)
        if result.status in ("OPTIMAL", "INFEASIBLE"):
            bounds[k] = math.inf  # closed: no plan with k grids beats the incumbent
        elif result.bound is not None:
            bounds[k] = max(bounds.get(k, -math.inf), result.bound)

    probe = min(COUNT_PROBE, time_limit / (4 * len(counts)))
    for k in counts:
        run(k, probe)
    open_counts = [k for k in counts if bounds.get(k) != math.inf]
    if set_bounds is not None and open_counts:
        started = time.perf_counter()
        for k, bound in set_bounds(open_counts).items():
            bounds[k] = math.inf if bound >= best - 0.5 else max(bounds.get(k, -math.inf), bound)
        wall += time.perf_counter() - started
    while spent < time_limit - 1e-3:
        # the most promising count (lowest bound) first: its plan is the cutoff that
        # closes the others quickly
        open_counts = sorted(
            (k for k in counts if bounds.get(k) != math.inf),
            key=lambda k: (bounds.get(k, -math.inf), plans.get(k, (math.inf,))[0], k),
        )
        if not open_counts:
            break
        if all(k in bounds for k in open_counts) and best > 0:
            proven = min([best] + [bounds[k] for k in open_counts])
            if (best - proven) / best <= gap_stop:
                break  # proved close enough to optimal: the rest of the budget is kept
        before = spent
        for done, k in enumerate(open_counts):
            share = (time_limit - spent) / (len(open_counts) - done)
            if share > 1e-3:
                run(k, share)
        closed = any(bounds.get(k) == math.inf for k in open_counts)
        if spent - before < 1e-6 and not closed:
            break  # slices too thin to spend: the budget is as good as gone
    _cpsat.restrict(grid_model, count=None, cutoff=None)
    still_open = [k for k in counts if bounds.get(k) != math.inf]
    bound = None if any(k not in bounds for k in still_open) else min(
        [best] + [bounds[k] for k in still_open]
    )
    return _cpsat.SolveResult(
        status="FEASIBLE" if still_open else "OPTIMAL",
        labels=best_labels,
        objective=best if best_labels is not None else None,
        bound=bound,
        wall_time=wall,
        deterministic_time=spent,
    )


def solve_component(
    adj: sparse.csr_matrix,
    w: np.ndarray,
    xy: np.ndarray,
    *,
    rules: GridRules,
    time_limit: float,
    seed: int,
    workers: int,
    prove: bool = False,
    area: np.ndarray | None = None,
    separate: np.ndarray | None = None,
    outline: tuple[np.ndarray, np.ndarray, sparse.csr_matrix] | None = None,
) -> tuple[np.ndarray, str, float | None, float | None, float, float, list[str], bool]:
    """Partition one connected component whose units all fit a grid on their own.

    Components of up to :data:`MULTILEVEL_UNITS` units (or any size with
    ``prove``) are solved by the exact model, searched one number of grids at a
    time; larger ones by the multilevel engine (:func:`solve_large`).

    Returns labels (the centre unit of each unit), solver status, objective,
    proven bound, wall time, deterministic time, notes and whether the bounds
    were proved unreachable.
    """
    n = len(w)
    total = int(w.sum())
    if total <= rules.max_households or n == 1:
        return np.zeros(n, dtype=np.int64), "OPTIMAL", 0.0, 0.0, 0.0, 0.0, [], False
    if n > MULTILEVEL_UNITS and not prove:
        return solve_large(
            adj, w, xy, rules=rules, time_limit=time_limit, seed=seed, workers=workers,
            area=area, separate=separate, outline=outline,
        )  # fmt: skip
    notes: list[str] = []
    graph_dist = graph_distances(adj, xy)
    plan = _construct.tree_partition(
        adj,
        w,
        min_households=rules.min_households,
        max_households=rules.max_households,
        target=rules.target,
        seed=seed,
    )
    lam = balance_weight(adj, w, xy, rules)
    centres = {
        int(lab): centre_for(np.flatnonzero(plan.labels == lab), adj, w, xy, graph_dist)
        for lab in np.unique(plan.labels)
    }
    heuristic_labels = np.array([centres[int(lab)] for lab in plan.labels], dtype=np.int64)
    heuristic_cost = plan_objective(plan.labels, centres, w, xy, lam, rules)
    unreachable = False
    cut = None if plan.in_bounds else cut_unit_proof(adj, w, rules)
    if cut is not None:
        unreachable = True
        notes.append(cut_note(cut))
    elif not plan.in_bounds:
        reachable = _cpsat.bounds_reachable(
            w,
            min_households=rules.min_households,
            max_households=rules.max_households,
            time_limit=min(1.0, time_limit),
            seed=seed,
        )
        if reachable is False:
            unreachable = True
            notes.append(
                f"proved: {total} households in buildings of "
                f"{format_ids(sorted(w.tolist(), reverse=True))} households cannot be grouped "
                f"into grids of {rules.min_households}-{rules.max_households} households, "
                "even ignoring contiguity; the plan keeps the bounds as nearly as possible. "
                "Merge this area with a neighbouring community or change the bounds"
            )
        else:
            notes.append(
                "the warm start could not meet the bounds; the model ran with soft bounds "
                "(the households could be grouped within the bounds if contiguity were ignored)"
            )
    large = plan.in_bounds and n > EXACT_UNITS
    grid_model = _cpsat.build_model(
        adj,
        w,
        xy,
        graph_dist,
        min_households=rules.min_households,
        max_households=rules.max_households,
        target=rules.target,
        balance_weight=lam,
        hard=plan.in_bounds,
        max_radius=max_radius(adj, w, xy, rules),
        keep={(i, centres[int(lab)]) for i, lab in enumerate(plan.labels)},
    )
    budget = time_limit * (EXACT_SHARE if large else 1.0)
    if plan.in_bounds and not large:  # (the search hints each count itself)
        lo, hi = grid_model.count_range
        result = _solve_by_count(
            grid_model,
            first=len(centres),
            incumbent=(heuristic_labels, heuristic_cost),
            time_limit=budget,
            seed=seed,
            workers=workers,
            floors=count_floors(w, xy, lam, rules, range(lo, hi + 1)),
            set_bounds=lambda counts: _set_partition_bounds(adj, w, xy, lam, rules, counts),
            gap_stop=0.0 if prove else GAP_STOP,
        )
    else:  # soft bounds, or the bound and first plan of a large component
        _cpsat.add_hint(grid_model, plan.labels, centres)
        result = _cpsat.solve(
            grid_model, time_limit=budget, seed=seed, workers=workers, cuts=large
        )
    wall, det = result.wall_time, result.deterministic_time
    if result.labels is None and result.status == "OPTIMAL":
        labels, objective, status = heuristic_labels, heuristic_cost, "OPTIMAL"
    elif result.labels is None:
        notes.append(
            "CP-SAT found no better plan than the warm start within the time limit "
            f"({result.status}); kept the warm-start plan"
        )
        labels, objective, status = heuristic_labels, heuristic_cost, "HEURISTIC"
    elif plan.in_bounds and result.objective > heuristic_cost + 1e-6:
        labels, objective, status = heuristic_labels, heuristic_cost, "FEASIBLE"
    else:
        labels, objective, status = result.labels, result.objective, result.status
    bound = result.bound
    if not plan.in_bounds:
        if result.labels is not None:
            # Report the plan's own objective, without the violation penalty.
            objective = plan_objective(
                labels, {int(c): int(c) for c in np.unique(labels)}, w, xy, lam, rules
            )
            loads = np.bincount(np.unique(labels, return_inverse=True)[1], weights=w)
            in_bounds = bool(
                np.all((loads >= rules.min_households) & (loads <= rules.max_households))
            )
        else:
            objective, in_bounds = None, False
        # The soft model relaxes the hard one, so its bound also bounds every
        # in-bounds plan; it says nothing useful about a plan out of bounds.
        bound = min(bound, objective) if in_bounds and bound is not None else None
    elif large and status != "OPTIMAL":
        started = time.perf_counter()
        labels, spent, accepted = _improve_by_lns(
            adj, w, xy, labels, rules=rules, lam=lam, budget=time_limit - det, seed=seed
        )
        wall += time.perf_counter() - started
        det += spent
        objective = plan_objective(
            labels, {int(c): int(c) for c in np.unique(labels)}, w, xy, lam, rules
        )
        if accepted:
            notes.append(f"large-neighbourhood search improved the plan {accepted} time(s)")
        if status == "HEURISTIC" and accepted:
            status = "FEASIBLE"
        if bound is not None and objective <= bound + 0.5:
            status = "OPTIMAL"
    return labels, status, objective, bound, wall, det, notes, unreachable
