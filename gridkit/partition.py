"""Split communities into contiguous grids of 400–800 households with OR-Tools CP-SAT.

Pipeline for one community (``partition_community``):

1. Units (buildings, from :func:`gridkit.units.build_units`) and their rook
   adjacency (:mod:`gridkit.adjacency`).
2. A building above ``max_households`` becomes a grid of its own
   (``oversize_building``); pieces of the community with fewer than
   ``min_households`` households become ``below_min`` grids (or join the
   oversize building they touch).
3. Every other connected piece gets a warm start from recursive spanning-tree
   bisection (:mod:`gridkit._construct`), then the CP-SAT model of
   :mod:`gridkit._cpsat` chooses the number of grids and their shapes,
   minimising household-weighted distance to the grid centre plus a balance
   term.  Bounds are hard when the warm start met them and soft (penalised)
   otherwise, so an infeasible community still gets the best plan possible.
4. Grids are numbered north→south in bands, west→east within a band.

The core, :func:`partition_graph`, works on arrays only and can be tested on a
lattice without any geometry.
"""

from __future__ import annotations

import contextvars
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from gridkit.errors import InputError, format_ids
from gridkit.solver import construct as _construct
from gridkit.solver import cpsat as _cpsat
from gridkit.solver import lower_bound as _columns
from gridkit.solver import multilevel
from gridkit.units import adjacency_matrix, rook_pairs

__all__ = [
    "CommunityPlan",
    "GraphPartition",
    "GridRules",
    "community_budget",
    "cut_unit_proof",
    "own_grid_kinds",
    "partition_community",
    "partition_graph",
]

log = logging.getLogger(__name__)

#: Set to ``1`` (``gridkit partition`` does, unless ``--quiet``) to print the progress of
#: long searches on standard error, from whichever process runs them.
PROGRESS_ENV = "GRIDKIT_PROGRESS"
#: Searches with a budget of at least this many seconds report their progress.
PROGRESS_MIN_BUDGET = 3.0
_community: contextvars.ContextVar[str] = contextvars.ContextVar("community", default="")


def _progress(message: str) -> None:
    """Say how a long search is going: logged, and printed when :data:`PROGRESS_ENV` is 1."""
    text = f"community {_community.get() or '?'}: {message}"
    log.info(text)
    if os.environ.get(PROGRESS_ENV) == "1":
        print(text, file=sys.stderr, flush=True)

@dataclass(frozen=True)
class GridRules:
    """What makes a good grid.

    Parameters
    ----------
    min_households, max_households
        Bounds of households per grid (default 400–800, the Huangshi standard).
    target_households
        Preferred grid size; default the middle of the bounds.  Together with
        ``balance_weight`` it steers how many grids the model opens.
    balance_weight
        Weight of the balance term relative to compactness (1.0: one household
        away from the target costs as much as one household placed a grid
        radius further from its centre).
    """

    min_households: int = 400
    max_households: int = 800
    target_households: int | None = None
    balance_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.min_households < 1 or self.max_households < self.min_households:
            raise InputError(
                f"household bounds must satisfy 1 <= min <= max; got min_households="
                f"{self.min_households}, max_households={self.max_households}. "
                "Pass e.g. --min-households 400 --max-households 800."
            )
        if self.target_households is not None and not (
            self.min_households <= self.target_households <= self.max_households
        ):
            raise InputError(
                f"`target_households`={self.target_households} is outside the bounds "
                f"[{self.min_households}, {self.max_households}]; pick a value between them."
            )
        if self.balance_weight < 0:
            raise InputError(f"`balance_weight` must be >= 0, got {self.balance_weight}.")

    @property
    def target(self) -> int:
        """Preferred households per grid."""
        if self.target_households is not None:
            return int(self.target_households)
        return (self.min_households + self.max_households) // 2


@dataclass
class GraphPartition:
    """Result of :func:`partition_graph` for one community's unit graph."""

    labels: np.ndarray
    grid_status: list[str]
    solver_status: str
    objective: float | None = None
    bound: float | None = None
    wall_time: float = 0.0
    deterministic_time: float = 0.0
    notes: list[str] = field(default_factory=list)
    bounds_unreachable: bool = False

    @property
    def gap(self) -> float | None:
        """Relative optimality gap ``(objective - bound) / objective`` (None if unknown)."""
        if self.objective is None or self.bound is None:
            return None
        if self.objective <= 0:
            return 0.0
        return max(0.0, (self.objective - self.bound) / self.objective)


# --------------------------------------------------------------------------- core


def status_of_grid(load: int, has_oversize: bool | str, rules: GridRules) -> str:
    """Status of a grid; ``has_oversize`` is its own-grid kind (``True``: an oversize building)."""
    kind = "oversize_building" if has_oversize is True else (has_oversize or "")
    if kind in ("oversize_building", "oversize_compound"):
        return kind
    if kind == "split_compound" and rules.min_households <= load <= rules.max_households:
        return "split_compound"
    if load < rules.min_households:
        return "below_min"
    if load > rules.max_households:
        return "above_max"
    return "ok"


def balance_weight(adj: sparse.csr_matrix, w: np.ndarray, xy: np.ndarray, rules: GridRules) -> int:
    """Balance weight in metres per household: ``balance_weight * r_T``.

    ``r_T`` is the radius of a round grid of target size at the community's
    density, estimated from the mean neighbour spacing ``s`` and mean
    households per unit ``w``: ``r_T = s * sqrt(target / (pi * w))``.
    """
    coo = sparse.triu(adj, k=1).tocoo()
    if coo.nnz == 0 or w.sum() == 0:
        return 1
    spacing = float(np.mean(np.hypot(*(xy[coo.row] - xy[coo.col]).T)))
    mean_w = max(float(w.mean()), 1.0)
    r_t = spacing * math.sqrt(rules.target / (math.pi * mean_w))
    return max(1, round(rules.balance_weight * r_t))


#: A grid's units lie within this multiple of the radius of a round, full
#: (``max_households``) grid from its centre.
RADIUS_FACTOR = 2.0


def max_radius(adj: sparse.csr_matrix, w: np.ndarray, xy: np.ndarray, rules: GridRules) -> float:
    """Largest centre-to-unit distance allowed in the model (metres)."""
    coo = sparse.triu(adj, k=1).tocoo()
    if coo.nnz == 0:
        return float("inf")
    spacing = float(np.mean(np.hypot(*(xy[coo.row] - xy[coo.col]).T)))
    mean_w = max(float(w.mean()), 1.0)
    r_max = spacing * math.sqrt(rules.max_households / (math.pi * mean_w))
    return RADIUS_FACTOR * max(r_max, spacing)


def centre_for(members: np.ndarray, adj: sparse.csr_matrix, w, xy, graph_dist) -> int:
    """Best precedence-compatible centre of a connected grid (min weighted distance).

    A centre ``c`` is compatible when every other member has a member
    neighbour strictly closer to ``c`` in ``graph_dist``; falls back to the
    cheapest centre if none is.
    """
    pts = xy[members]
    dist = np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1])
    cost = (w[members][:, None] * dist).sum(axis=0)
    sub = adj[members][:, members].tocsr()
    for k in np.argsort(cost, kind="stable"):
        d = graph_dist[members[k], members]
        ok = True
        for i in range(len(members)):
            if i == k:
                continue
            nbrs = sub.indices[sub.indptr[i] : sub.indptr[i + 1]]
            if not np.any(d[nbrs] < d[i]):
                ok = False
                break
        if ok:
            return int(members[k])
    return int(members[int(np.argmin(cost))])


def _plan_objective(labels, centres, w, xy, lam, rules) -> float:
    """Objective of a plan, as the CP-SAT model counts it (hard part only)."""
    total = 0.0
    for lab, c in centres.items():
        members = np.flatnonzero(labels == lab)
        d = np.rint(np.hypot(*(xy[members] - xy[c]).T))
        total += float((w[members] * d).sum())
        total += lam * abs(int(w[members].sum()) - rules.target)
    return total


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


def graph_distances(adj: sparse.csr_matrix, xy: np.ndarray) -> np.ndarray:
    """All-pairs shortest-path lengths (metres) along the adjacency graph."""
    coo = adj.tocoo()
    lengths = np.hypot(*(xy[coo.row] - xy[coo.col]).T) + 1e-3
    return csgraph.dijkstra(
        sparse.csr_matrix((lengths, (coo.row, coo.col)), shape=adj.shape), directed=False
    )


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
            current = _plan_objective(local, centres, sw, sxy, lam, rules)
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


def _count_floors(
    w: np.ndarray, xy: np.ndarray, lam: int, rules: GridRules, counts: range
) -> dict[int, float]:
    """A lower bound on the objective of every plan with ``k`` grids, for each ``k``.

    Compactness: a building that is not its grid's centre is at least as far
    from it as from its nearest other building, so it costs at least
    ``a_i = w_i * d_i`` (``d_i`` the rounded distance to the nearest other
    building); at most ``k`` buildings are centres, so the term is at least
    ``sum(a) - (sum of the k largest a_i)``.  Balance: ``sum_g |load_g - T|
    >= |W - k T|``.  A count whose floor is no better than the incumbent needs
    no solve.

    Examples
    --------
    Four 150-household buildings 30 m apart in a row, λ = 10: one grid costs at
    least 3 x 150 x 30 = 13,500 (and no balance), two grids at least
    2 x 150 x 30 = 9,000 plus 10 x |600 - 1,200| = 6,000.

    >>> xy = np.c_[np.arange(4) * 30.0, np.zeros(4)]
    >>> _count_floors(np.full(4, 150), xy, 10, GridRules(), range(1, 3))
    {1: 13500.0, 2: 15000.0}
    """
    n = len(w)
    if n < 2:
        return dict.fromkeys(counts, 0.0)
    nearest, _ = cKDTree(xy).query(xy, k=2)  # itself, then its nearest other building
    cost = np.sort(w * np.rint(nearest[:, 1]))[::-1]  # largest first
    total, households = float(cost.sum()), int(w.sum())
    return {
        k: total - float(cost[: min(k, n)].sum()) + lam * abs(households - rules.target * k)
        for k in counts
    }


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
    """Set-partitioning LP bound per count (:mod:`gridkit._columns`); ``{}`` if too many groups."""
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

    ``floors`` (:func:`_count_floors`) are lower bounds per count known
    beforehand: they start each count's bound, and a count whose floor is no
    better than the best plan is closed without a solve.  ``set_bounds``, when
    given, returns lower bounds for a list of counts (the set-partitioning LP of
    :mod:`gridkit._columns`); it is called once, after the probes, for the
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


#: Components above this many units go to the multilevel search (:func:`_solve_large`)
#: unless ``prove`` is set.  Its plans are rounder on the map than the exact model's
#: (whose objective counts households, not area) and come sooner: on the sample district,
#: mean Polsby-Popper 0.591 in 2.7 s with 30, against 0.580 in 8.6 s with the exact
#: model up to 60 units; on Singapore's 40 subzones 20 takes 24.0 CPU s against 26.3
#: with 30, at PP 0.599 against 0.597.
MULTILEVEL_UNITS = 20
#: The multilevel engine (:func:`_solve_large`).
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


def cut_unit_proof(
    adj: sparse.spmatrix, weights: np.ndarray, rules: GridRules
) -> str | None:
    """A proof that contiguity alone keeps the bounds out of reach, or None.

    When removing unit ``a`` (an articulation point of the adjacency) leaves
    pieces holding fewer than ``min_households``, each such piece can reach
    other units only through ``a``, so all of it lies in ``a``'s grid.  If
    ``a`` and those pieces hold more than ``max_households``, no contiguous
    plan keeps every grid within the bounds.

    Returns
    -------
    str or None
        The reason in words, or None when this test proves nothing.

    Examples
    --------
    A star: one 200-household centre with three 300-household arms.

    >>> adj = sparse.csr_matrix(([1.0] * 6, ([0, 0, 0, 1, 2, 3], [1, 2, 3, 0, 0, 0])), (4, 4))
    >>> print(cut_unit_proof(adj, np.array([200, 300, 300, 300]), GridRules()))
    a unit of 200 households is the only link of 3 piece(s) below 400 households (900 in all), so they share its grid: 1100 > 800
    """  # noqa: E501
    import networkx as nx

    adj = sparse.csr_matrix(adj)
    w = np.asarray(weights, dtype=np.int64)
    n = len(w)
    if n < 3 or int(w.sum()) < 2 * rules.min_households:
        return None
    graph = nx.from_scipy_sparse_array(adj)
    for a in sorted(nx.articulation_points(graph)):
        keep = np.flatnonzero(np.arange(n) != a)
        _, piece = csgraph.connected_components(adj[keep][:, keep], directed=False)
        loads = np.bincount(piece, weights=w[keep])
        light = loads[loads < rules.min_households]
        load = int(w[a] + light.sum())
        if load > rules.max_households:
            return (
                f"a unit of {int(w[a])} households is the only link of {len(light)} "
                f"piece(s) below {rules.min_households} households ({int(light.sum())} in "
                f"all), so they share its grid: {load} > {rules.max_households}"
            )
    return None


def _cut_note(cut: str) -> str:
    """The report's words for a :func:`cut_unit_proof`."""
    return (
        f"proved: no contiguous plan keeps the bounds, because {cut}; the plan keeps the "
        "bounds as nearly as possible. Merge this area with a neighbouring community or "
        "change the bounds"
    )


def community_budget(time_limit: float, units: int) -> float:
    """Seconds of search a community of ``units`` units gets: ``time_limit * sqrt(units / 60)``.

    ``time_limit`` is the budget of a community of up to :data:`EXACT_UNITS`
    units; a larger one gets more, growing with the square root of its units
    (a 900-building community: 3.9 times as much), because the multilevel
    search's work per start grows about linearly and it stops by itself once
    starts stop improving.

    Examples
    --------
    >>> community_budget(5, 40), community_budget(5, 960)
    (5.0, 20.0)
    """
    return float(time_limit) * math.sqrt(max(1.0, units / EXACT_UNITS))


def _solve_large(
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
    """Multilevel partition of a large connected component (see :mod:`gridkit.multilevel`).

    1. Coarsen: neighbours are matched into coarse units of at most
       ``COARSE_CAP * min_households`` households, never across two
       ``separate`` groups, until about ``COARSE_PER_GRID`` coarse units per
       grid are left.
    2. Starts, one after the other: a seeded spanning-tree plan
       (:mod:`gridkit._construct`) of the coarse graph, for the ideal number of
       grids and one more in turn, improved by rounds of recombination
       (:func:`gridkit.multilevel.recombine`: two neighbouring grids merged and
       split again along the best of several random spanning trees) and
       boundary refinement (:func:`gridkit.multilevel.refine`) until a round
       gains less than 0.1 %; then uncoarsened level by level, refined at every
       level.  The cheapest plan of all starts is kept.
    3. Starts stop when ``STALL_STARTS`` in a row improved nothing, or before
       the next one would overrun the budget; at least ``MIN_STARTS`` run.
       With the cells' ``outline`` (area, perimeter, shared boundary lengths)
       the plan kept is the one whose grids are roundest on the map (mean
       Polsby-Popper, :func:`gridkit.multilevel.mean_polsby_popper`; a start
       improves when it adds ``PP_GAIN``), else the cheapest; a plan closer to
       the bounds always wins.

    The budget is counted by a :class:`gridkit.multilevel.WorkClock`, not
    timed, so the plan does not depend on the machine or its load.  The search
    objective is :func:`gridkit.multilevel.plan_cost`: the moment of households
    and area about each grid's centroid (what a round outline minimises) plus
    ``LOCAL_BALANCE`` times the model's balance term; the objective reported is
    the exact model's (:func:`_plan_objective`), and the bound is the floor of
    :func:`_count_floors` over the counts that can meet the bounds: valid,
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
            _progress(
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
    objective = _plan_objective(labels, centres, w, xy, lam, rules)
    bound = None
    unreachable = False
    if in_bounds:
        floors = _count_floors(w, xy, lam, rules, range(k_lo, k_hi + 1))
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
            notes.append(_cut_note(cut))
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


def _solve_component(
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
    time; larger ones by the multilevel engine (:func:`_solve_large`).

    Returns labels (the centre unit of each unit), solver status, objective,
    proven bound, wall time, deterministic time, notes and whether the bounds
    were proved unreachable.
    """
    n = len(w)
    total = int(w.sum())
    if total <= rules.max_households or n == 1:
        return np.zeros(n, dtype=np.int64), "OPTIMAL", 0.0, 0.0, 0.0, 0.0, [], False
    if n > MULTILEVEL_UNITS and not prove:
        return _solve_large(
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
    heuristic_cost = _plan_objective(plan.labels, centres, w, xy, lam, rules)
    unreachable = False
    cut = None if plan.in_bounds else cut_unit_proof(adj, w, rules)
    if cut is not None:
        unreachable = True
        notes.append(_cut_note(cut))
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
            floors=_count_floors(w, xy, lam, rules, range(lo, hi + 1)),
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
            objective = _plan_objective(
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
        objective = _plan_objective(
            labels, {int(c): int(c) for c in np.unique(labels)}, w, xy, lam, rules
        )
        if accepted:
            notes.append(f"large-neighbourhood search improved the plan {accepted} time(s)")
        if status == "HEURISTIC" and accepted:
            status = "FEASIBLE"
        if bound is not None and objective <= bound + 0.5:
            status = "OPTIMAL"
    return labels, status, objective, bound, wall, det, notes, unreachable


def partition_graph(
    adj: sparse.spmatrix,
    weights: np.ndarray,
    xy: np.ndarray,
    *,
    rules: GridRules | None = None,
    time_limit: float = 5.0,
    seed: int = 0,
    workers: int = 1,
    prove: bool = False,
    area: np.ndarray | None = None,
    separate: np.ndarray | None = None,
    own_status: np.ndarray | None = None,
    perimeter: np.ndarray | None = None,
    shared: sparse.spmatrix | None = None,
) -> GraphPartition:
    """Partition a unit graph into contiguous grids.

    Parameters
    ----------
    adj
        Symmetric adjacency matrix (rook contiguity) of the ``n`` units.
    weights
        Households per unit (non-negative integers).
    xy
        ``(n, 2)`` unit coordinates in metres.
    rules
        Bounds and preferences (default :class:`GridRules`).
    time_limit
        CP-SAT deterministic time budget, in (roughly) seconds, shared between the
        connected pieces by their number of units.
    seed
        Seed of the warm start and of CP-SAT.
    workers
        CP-SAT workers (interleaved, so results stay deterministic).
    prove
        Solve pieces of more than :data:`MULTILEVEL_UNITS` units with the whole exact
        model (a proven bound, at a cost that grows with the square of the
        units) instead of the multilevel engine.
    area
        Area of every unit (m²); the multilevel engine then weighs outline
        compactness too, not only households.
    separate
        Group of every unit (barrier block, compound): the multilevel engine
        never merges units of two groups into one coarse unit.
    own_status
        Per unit, ``""`` or the status of the grid it forms on its own (one of
        :data:`gridkit.contracts.OWN_GRID_STATUSES`, see :func:`own_grid_kinds`).  Units above
        ``max_households`` always form grids of their own (``oversize_building``
        unless said otherwise).
    perimeter, shared
        Perimeter of every unit's cell and the boundary length every two cells
        share (a sparse matrix), in metres: with ``area``, the multilevel engine
        keeps, of its starts, the plan whose grids are roundest on the map (mean
        Polsby-Popper 4πA/P², computed from these without drawing a grid).

    Returns
    -------
    GraphPartition
        ``labels`` (0..k-1 per unit), the status of each grid and solver figures.

    Examples
    --------
    A 4×4 lattice of 100-household buildings, 1,600 households:

    >>> from scipy import sparse
    >>> side = 4
    >>> idx = np.arange(side * side).reshape(side, side)
    >>> pairs = np.vstack([np.c_[idx[:, :-1].ravel(), idx[:, 1:].ravel()],
    ...                    np.c_[idx[:-1].ravel(), idx[1:].ravel()]])
    >>> adj = adjacency_matrix(side * side, pairs[:, 0], pairs[:, 1])
    >>> xy = np.c_[(idx % side).ravel(), (idx // side).ravel()] * 30.0
    >>> result = partition_graph(adj, np.full(16, 100), xy)
    >>> sorted((np.bincount(result.labels) * 100).tolist())
    [500, 500, 600]
    >>> result.grid_status
    ['ok', 'ok', 'ok']
    """
    rules = rules or GridRules()
    started = time.perf_counter()
    adj = sparse.csr_matrix(adj)
    w = np.asarray(weights, dtype=np.int64)
    xy = np.asarray(xy, dtype=float)
    n = len(w)
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return GraphPartition(labels=labels, grid_status=[], solver_status="OPTIMAL")
    own = (
        np.full(n, "", dtype=object) if own_status is None else np.asarray(own_status, dtype=object)
    )
    oversize = (w > rules.max_households) | (own != "")
    next_label = 0
    grid_has_oversize: dict[int, bool | str] = {}
    for i in np.flatnonzero(oversize):
        labels[i] = next_label
        grid_has_oversize[next_label] = own[i] or "oversize_building"
        next_label += 1
    n_pieces = csgraph.connected_components(adj, directed=False)[0]
    keep = np.flatnonzero(~oversize)
    sub = adj[keep][:, keep]
    n_comp, comp = csgraph.connected_components(sub, directed=False)
    statuses, objective, bound = [], 0.0, 0.0
    known_objective = known_bound = True
    wall = det = 0.0
    bounds_unreachable = False
    notes: list[str] = []
    if (w > rules.max_households).any():
        notes.append(
            f"{int((w > rules.max_households).sum())} unit(s) above max_households form grids "
            "of their own"
        )
    # The time budget is shared between the pieces that need a solve, by size.
    sizes = np.bincount(comp, minlength=n_comp)
    piece_loads = np.bincount(comp, weights=w[keep], minlength=n_comp)
    to_solve = int(sizes[piece_loads > rules.max_households].sum()) or 1
    for k in range(n_comp):
        nodes = keep[comp == k]
        total = int(w[nodes].sum())
        if total < rules.min_households:
            touching = sorted({int(j) for j in adj[nodes].indices if oversize[j]})
            if touching:
                # a grid of its own (an oversize unit, a part of a split compound) with
                # room for the piece takes it, else the first one touching it
                room = [
                    j for j in touching
                    if grid_has_oversize[labels[j]] == "split_compound"
                    and int(w[labels == labels[j]].sum()) + total <= rules.max_households
                ]  # fmt: skip
                host = room[0] if room else touching[0]
                labels[nodes] = labels[host]
                if grid_has_oversize[labels[host]] == "split_compound" and not room:
                    bounds_unreachable = True
                    notes.append(
                        f"proved, for compounds split by building number: a piece of {total} "
                        f"households ({len(nodes)} unit(s)) touches only grids of a split "
                        "compound, none with room for it; join it to a neighbouring community "
                        "or change the bounds"
                    )
                continue
            labels[nodes] = next_label
            grid_has_oversize[next_label] = False
            next_label += 1
            statuses.append("TRIVIAL")
            if int(w.sum()) >= rules.min_households:
                # A cut-off piece below the minimum can join no other grid.
                bounds_unreachable = True
                notes.append(
                    f"proved: a separate piece of {total} households ({len(nodes)} building(s)) "
                    "touches no other building's cell, so it forms a grid below "
                    f"{rules.min_households}; join it to a neighbouring community or lower "
                    "`min_households`"
                )
            continue
        local, status, obj, bnd, wt, dt, comp_notes, unreachable = _solve_component(
            adj[nodes][:, nodes],
            w[nodes],
            xy[nodes],
            rules=rules,
            time_limit=time_limit * len(nodes) / to_solve,
            seed=seed,
            workers=workers,
            prove=prove,
            area=None if area is None else np.asarray(area, dtype=float)[nodes],
            separate=None if separate is None else np.asarray(separate)[nodes],
            outline=None
            if area is None or perimeter is None or shared is None
            else (
                np.asarray(area, dtype=float)[nodes],
                np.asarray(perimeter, dtype=float)[nodes],
                sparse.csr_matrix(shared)[nodes][:, nodes],
            ),
        )
        _, dense = np.unique(local, return_inverse=True)
        labels[nodes] = dense + next_label
        for lab in range(dense.max() + 1):
            grid_has_oversize[next_label + lab] = False
        next_label += int(dense.max()) + 1
        statuses.append(status)
        notes += comp_notes
        bounds_unreachable |= unreachable
        wall += wt
        det += dt
        if obj is None:
            known_objective = False
        else:
            objective += obj
        if bnd is None:
            known_bound = False
        else:
            bound += bnd
    loads = np.bincount(labels, weights=w, minlength=next_label).astype(np.int64)
    grid_status = [
        status_of_grid(int(loads[g]), grid_has_oversize[g], rules) for g in range(next_label)
    ]
    if not statuses or all(s in ("OPTIMAL", "TRIVIAL") for s in statuses):
        solver_status = "OPTIMAL"
    elif "HEURISTIC" in statuses:
        solver_status = "HEURISTIC"
    else:
        solver_status = "FEASIBLE"
    if n_pieces > 1:
        notes.append(f"the units form {n_pieces} separate pieces, partitioned separately")
    return GraphPartition(
        labels=labels,
        grid_status=grid_status,
        solver_status=solver_status,
        objective=objective if known_objective else None,
        bound=bound if known_bound and known_objective else None,
        wall_time=time.perf_counter() - started,
        deterministic_time=det,
        notes=notes,
        bounds_unreachable=bounds_unreachable,
    )


# ------------------------------------------------------------------- adapters


@dataclass
class CommunityPlan:
    """Grids of one community, as :func:`partition_community` returns them.

    Attributes
    ----------
    community_id
        The community.
    labels
        Grid sequence number (1..k, numbered north→south, west→east) of every
        unit, aligned with the units' index.
    grid_status
        Status of each grid sequence number: ``ok``, ``below_min``,
        ``above_max`` or ``oversize_building``.
    solver_status, objective, bound, gap, wall_time, deterministic_time, notes
        How the plan was found: CP-SAT status (``OPTIMAL``, ``FEASIBLE``) or
        ``HEURISTIC`` (warm start kept), objective and proven bound, and remarks.
    """

    community_id: str
    labels: pd.Series
    grid_status: dict[int, str]
    solver_status: str
    objective: float | None
    bound: float | None
    gap: float | None
    wall_time: float
    deterministic_time: float
    notes: list[str]
    bounds_unreachable: bool = False


def number_grids(labels: np.ndarray, xy: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Sequence numbers 1..k for labels: bands north→south, west→east within a band.

    A grid's position is the area-weighted centroid of its cells; the band
    height is the side of a square of the mean grid area.

    Examples
    --------
    >>> xy = np.array([[0, 10], [10, 10], [0, 0], [10, 0]], dtype=float)
    >>> number_grids(np.array([3, 2, 1, 0]), xy, np.full(4, 100.0)).tolist()
    [1, 2, 3, 4]
    """
    uniq, dense = np.unique(labels, return_inverse=True)
    k = len(uniq)
    weights = np.bincount(dense, weights=area, minlength=k)
    safe = np.where(weights > 0, weights, 1.0)
    cx = np.bincount(dense, weights=xy[:, 0] * area, minlength=k) / safe
    cy = np.bincount(dense, weights=xy[:, 1] * area, minlength=k) / safe
    band_height = max(math.sqrt(float(area.sum()) / k), 1e-9)
    # Millimetre rounding keeps the numbering stable against floating-point noise.
    cx, cy = np.round(cx, 3), np.round(cy, 3)
    band = np.floor((cy.max() - cy) / band_height)
    order = np.lexsort((cx, band))
    seq = np.empty(k, dtype=np.int64)
    seq[order] = np.arange(1, k + 1)
    return seq[dense]


def own_grid_kinds(units: pd.DataFrame, rules: GridRules) -> np.ndarray:
    """Per unit, ``""`` or the status of the grid it forms on its own.

    ``split_compound``: a part of a compound split by building number
    (:func:`gridkit.units.split_compound`) holding at least ``min_households``
    (a smaller part is an ordinary unit, grouped with its neighbours);
    ``oversize_compound``: a compound row
    above ``max_households`` whose buildings are unknown; ``oversize_building``:
    any other unit above ``max_households``.
    """
    n = len(units)
    w = units["households"].to_numpy(dtype=np.int64)
    split = (
        units["split_of"].notna().to_numpy() if "split_of" in units else np.zeros(n, dtype=bool)
    )
    compound = (
        (units["unit_kind"] == "compound").to_numpy()
        if "unit_kind" in units
        else np.zeros(n, dtype=bool)
    )
    big = w > rules.max_households
    out = np.full(n, "", dtype=object)
    out[big] = np.where(compound[big], "oversize_compound", "oversize_building")
    # a part below the minimum (a compound of few, big buildings) is an ordinary unit:
    # the plan may complete it with its neighbours
    out[split & (w >= rules.min_households)] = "split_compound"
    return out


def _oversize_notes(units: pd.DataFrame, rules: GridRules) -> list[str]:
    """Explain every unit above ``max_households``, naming it as the inputs do."""
    big = units[units["households"] > rules.max_households]
    notes = []
    compound_rows = "unit_kind" in units
    for row in big.itertuples():
        if compound_rows and getattr(row, "unit_kind", "") == "compound":
            label = getattr(row, "building_id", None) or f"row {row.first_household_id}"
            notes.append(
                f"compound {label} has {row.households} households > {rules.max_households} "
                "and no known number of buildings, so it is one grid; give its buildings "
                "(a `buildings` column, or --compound-buildings-col) to split it by building"
            )
            continue
        building = getattr(row, "building_id", None)
        if isinstance(building, str) and building:
            name = f"building {building}"
        else:
            hid = getattr(row, "first_household_id", None)
            name = f"the building of household row {hid}" if hid else f"unit {row.unit_id}"
        notes.append(
            f"{name} alone has {row.households} households > {rules.max_households} "
            "(`max_households`); split it into entrances/units or raise `max_households`"
        )
    return notes


def _barrier_crossings(
    xy: np.ndarray, left: np.ndarray, right: np.ndarray, barriers: gpd.GeoDataFrame | None
) -> tuple[np.ndarray, list[str]]:
    """Which neighbour links (segment between the two building points) cross a barrier.

    Returns the mask over the ``left``/``right`` pairs and, per pair, the name of
    the first barrier crossed (``""`` when unnamed or not crossed).
    """
    crossing = np.zeros(len(left), dtype=bool)
    names = [""] * len(left)
    if barriers is None or len(barriers) == 0 or len(left) == 0:
        return crossing, names
    lines = shapely.boundary(barriers.geometry.to_numpy())
    lines = np.where(
        np.isin(shapely.get_type_id(barriers.geometry.to_numpy()), [3, 6]),
        lines,
        barriers.geometry.to_numpy(),
    )
    segments = shapely.linestrings(np.stack([xy[left], xy[right]], axis=1))
    seg, hit = shapely.STRtree(lines).query(segments, predicate="intersects")
    crossing[seg] = True
    label = (
        barriers["name"].astype(object).where(barriers["name"].notna(), "").astype(str).to_numpy()
        if "name" in barriers
        else np.full(len(barriers), "", dtype=object)
    )
    for k, b in zip(seg[::-1], hit[::-1], strict=True):
        names[int(k)] = label[int(b)]
    return crossing, names


def _feasible_blocks(
    n: int,
    left: np.ndarray,
    right: np.ndarray,
    crossing: np.ndarray,
    w: np.ndarray,
    rules: GridRules,
) -> tuple[np.ndarray, int, int]:
    """Blocks between barriers, merged until each can hold a whole number of grids.

    Blocks are the connected pieces left when the links crossing a barrier are
    dropped.  A block whose households (buildings above ``max_households`` aside:
    they are grids of their own) cannot be cut into grids within the bounds is
    joined to the neighbouring block it shares most crossing links with, until
    every block can (or no block has a neighbour left).

    Returns
    -------
    keep_link, n_blocks, merged
        Mask of the links kept (inside blocks, or between merged blocks), the
        number of blocks and the number of merges.
    """
    keep_link = ~crossing
    fits = np.where(w > rules.max_households, 0, w)
    merged = 0
    while True:
        adj = adjacency_matrix(n, left[keep_link], right[keep_link])
        n_blocks, block = csgraph.connected_components(adj, directed=False)
        load = np.bincount(block, weights=fits, minlength=n_blocks).astype(np.int64)
        has_big = np.bincount(block, weights=w > rules.max_households, minlength=n_blocks) > 0
        bad = [
            b
            for b in range(n_blocks)
            if not (
                _construct.count_feasible(int(load[b]), rules.min_households, rules.max_households)
                or (has_big[b] and load[b] < rules.min_households)
            )
        ]
        if not bad:
            return keep_link, n_blocks, merged
        # the smallest infeasible block first (ties: lowest block number)
        b = min(bad, key=lambda x: (load[x], x))
        across = ~keep_link & ((block[left] == b) != (block[right] == b))
        if not across.any():
            bad_rest = [x for x in bad if x != b]
            if not bad_rest:
                return keep_link, n_blocks, merged
            # an isolated block cannot merge: leave it, try the others
            b = min(bad_rest, key=lambda x: (load[x], x))
            across = ~keep_link & ((block[left] == b) != (block[right] == b))
            if not across.any():
                return keep_link, n_blocks, merged
        other = np.where(block[left[across]] == b, block[right[across]], block[left[across]])
        blocks, shared = np.unique(other, return_counts=True)
        target = int(blocks[np.lexsort((blocks, -shared))][0])
        between = ~keep_link & (
            ((block[left] == b) & (block[right] == target))
            | ((block[left] == target) & (block[right] == b))
        )
        keep_link = keep_link | between
        merged += 1


def _meets_bounds(plan: GraphPartition, total: int, rules: GridRules) -> bool:
    """Whether every grid of ``plan`` is in bounds (or is an oversize building)."""
    if total < rules.min_households:  # one below_min grid is the best there is
        return len(plan.grid_status) == 1
    return all(st in ("ok", "oversize_building") for st in plan.grid_status)


def _separate_groups(
    units: pd.DataFrame, n: int, left: np.ndarray, right: np.ndarray, crossing: np.ndarray
) -> np.ndarray:
    """Group per unit that coarse units must not mix: the barrier block and the compound.

    Blocks are the pieces the barriers cut, before any block is joined to a
    neighbour; units outside every compound form one group per block.
    """
    _, block = csgraph.connected_components(
        adjacency_matrix(n, left[~crossing], right[~crossing]), directed=False
    )
    if "compound" in units:
        compound = units["compound"].astype(object).where(units["compound"].notna(), "")
        codes = pd.factorize(compound.astype(str).to_numpy())[0]
    else:
        codes = np.zeros(n, dtype=np.int64)
    return pd.factorize(pd.MultiIndex.from_arrays([block, codes]))[0].astype(np.int64)


def _solve_block(
    units: pd.DataFrame,
    adj: sparse.csr_matrix,
    w: np.ndarray,
    xy: np.ndarray,
    *,
    keep_compounds: bool,
    rules: GridRules,
    time_limit: float,
    seed: int,
    workers: int,
    prove: bool = False,
    area: np.ndarray | None = None,
    separate: np.ndarray | None = None,
    own_status: np.ndarray | None = None,
    perimeter: np.ndarray | None = None,
    shared: sparse.spmatrix | None = None,
) -> GraphPartition:
    """Partition one block, keeping its compounds whole when the bounds allow it.

    With compounds, the block is solved with each compound (or compound piece,
    see :func:`_compound_groups`) contracted to one node; if that plan misses the
    bounds, the block is solved again building by building (and a note says so).
    The proven bound of a contracted solve is for plans that keep the compounds.
    ``area`` and ``separate`` go to :func:`partition_graph` (summed, and taken
    from any member, for a contracted node).
    """
    groups = _compound_groups(units, adj, rules, seed) if keep_compounds else None
    kwargs = {
        "rules": rules, "time_limit": time_limit, "seed": seed, "workers": workers,
        "prove": prove,
    }  # fmt: skip
    if groups is not None and groups.max() + 1 < len(units):
        k = int(groups.max()) + 1
        coarse_sep = None
        if separate is not None:
            coarse_sep = np.zeros(k, dtype=np.int64)
            coarse_sep[groups] = np.unique(separate, return_inverse=True)[1]
        coarse_own = None
        if own_status is not None:
            coarse_own = np.full(k, "", dtype=object)
            coarse_own[groups] = own_status
        coarse_perimeter = coarse_shared = None
        if perimeter is not None and shared is not None:
            member = sparse.csr_matrix(
                (np.ones(len(groups)), (groups, np.arange(len(groups)))), (k, len(groups))
            )
            both = (member @ sparse.csr_matrix(shared) @ member.T).tocsr()
            coarse_perimeter = np.bincount(groups, weights=perimeter, minlength=k) - both.diagonal()
            both.setdiag(0)
            both.eliminate_zeros()
            coarse_shared = both
        result = _partition_contracted(
            adj, w, xy, groups, **kwargs,
            area=None if area is None else np.bincount(groups, weights=area, minlength=k),
            separate=coarse_sep, own_status=coarse_own, perimeter=coarse_perimeter,
            shared=coarse_shared,
        )  # fmt: skip
        if _meets_bounds(result, int(w.sum()), rules):
            return result
        plain = partition_graph(
            adj, w, xy, area=area, separate=separate, own_status=own_status,
            perimeter=perimeter, shared=shared, **kwargs,
        )  # fmt: skip
        plain.notes.append(
            "keeping every compound whole could not meet the bounds; buildings of "
            "compounds were allowed to go to different grids"
        )
        plain.deterministic_time += result.deterministic_time
        return plain
    return partition_graph(
        adj, w, xy, area=area, separate=separate, own_status=own_status,
        perimeter=perimeter, shared=shared, **kwargs,
    )  # fmt: skip


def _combine(parts: list[GraphPartition], nodes: list[np.ndarray], n: int) -> GraphPartition:
    """One partition from the partitions of disjoint blocks (labels offset block by block)."""
    if len(parts) == 1:
        return parts[0]
    labels = np.full(n, -1, dtype=np.int64)
    grid_status: list[str] = []
    notes: list[str] = []
    for part, idx in zip(parts, nodes, strict=True):
        labels[idx] = part.labels + len(grid_status)
        grid_status += part.grid_status
        notes += [note for note in part.notes if "separate pieces" not in note]
    statuses = {part.solver_status for part in parts}
    status = (
        "OPTIMAL"
        if statuses == {"OPTIMAL"}
        else ("HEURISTIC" if "HEURISTIC" in statuses else "FEASIBLE")
    )
    objectives = [part.objective for part in parts]
    bounds = [part.bound for part in parts]
    objective = None if None in objectives else float(sum(objectives))
    bound = None if None in bounds or objective is None else float(sum(bounds))
    return GraphPartition(
        labels=labels,
        grid_status=grid_status,
        solver_status=status,
        objective=objective,
        bound=bound,
        wall_time=sum(part.wall_time for part in parts),
        deterministic_time=sum(part.deterministic_time for part in parts),
        notes=list(dict.fromkeys(notes)),  # a note of several blocks is said once
        bounds_unreachable=any(part.bounds_unreachable for part in parts),
    )


def _compound_groups(
    units: pd.DataFrame, adj: sparse.csr_matrix, rules: GridRules, seed: int = 0
) -> np.ndarray | None:
    """Group id per unit: the buildings of a compound that must stay together share one.

    A compound (小区, ``compound`` column) with at most ``max_households`` stays in one
    grid: its buildings are contracted into one node per connected part (a compound
    whose cells are cut apart by another building's cell contracts part by part).
    A larger part is cut along building lines into the fewest pieces that fit a
    grid, ``ceil(households / max_households)``, each connected and about equal
    (recursive spanning-tree bisection), and each piece is contracted; so the
    compound spans as few grids as possible.  None when there is no compound column.
    """
    if "compound" not in units or not units["compound"].notna().any():
        return None
    compound = units["compound"].astype(object).where(units["compound"].notna(), None)
    compound = compound.to_numpy(dtype=object)
    w = units["households"].to_numpy(dtype=np.int64)
    groups = np.arange(len(units))
    for name in sorted({c for c in compound if c is not None}, key=str):
        members = np.flatnonzero(compound == name)
        if len(members) < 2:
            continue
        sub = adj[members][:, members]
        _, part = csgraph.connected_components(sub, directed=False)
        for k in np.unique(part):
            nodes = members[part == k]
            for piece in _compound_pieces(adj, w, nodes, rules, seed):
                groups[piece] = piece.min()
    _, dense = np.unique(groups, return_inverse=True)
    return dense


def _compound_pieces(
    adj: sparse.csr_matrix, w: np.ndarray, nodes: np.ndarray, rules: GridRules, seed: int
) -> list[np.ndarray]:
    """Cut a connected compound part into the fewest connected pieces of <= max households.

    A part that fits one grid is one piece.  Otherwise ``k = ceil(W / max)``
    pieces are sought with bounds ``[W - (k - 1) * max, max]`` (any piece that
    small leaves the others full); buildings above the maximum stay alone.
    """
    total = int(w[nodes].sum())
    if total <= rules.max_households:
        return [nodes]
    small = nodes[w[nodes] <= rules.max_households]
    pieces = [np.array([i]) for i in nodes[w[nodes] > rules.max_households]]
    if len(small) == 0:
        return pieces
    sub = adj[small][:, small]
    n_cc, cc = csgraph.connected_components(sub, directed=False)
    for c in range(n_cc):
        part = small[cc == c]
        load = int(w[part].sum())
        if load <= rules.max_households or len(part) == 1:
            pieces.append(part)
            continue
        k = -(-load // rules.max_households)
        plan = _construct.tree_partition(
            adj[part][:, part],
            w[part],
            min_households=max(1, load - (k - 1) * rules.max_households),
            max_households=rules.max_households,
            target=-(-load // k),
            seed=seed,
        )
        pieces += [part[plan.labels == lab] for lab in np.unique(plan.labels)]
    return pieces


def _partition_contracted(adj, w, xy, groups, **kwargs) -> GraphPartition:
    """Partition the graph with each group contracted to one node; labels per unit."""
    k = int(groups.max()) + 1
    member = sparse.csr_matrix(
        (np.ones(len(groups)), (groups, np.arange(len(groups)))), (k, len(groups))
    )
    cadj = (member @ adj @ member.T).tocsr()
    cadj.setdiag(0)
    cadj.eliminate_zeros()
    cw = np.bincount(groups, weights=w, minlength=k).astype(np.int64)
    safe = np.maximum(np.bincount(groups, weights=np.maximum(w, 1), minlength=k), 1)
    cxy = np.c_[
        np.bincount(groups, weights=xy[:, 0] * np.maximum(w, 1), minlength=k) / safe,
        np.bincount(groups, weights=xy[:, 1] * np.maximum(w, 1), minlength=k) / safe,
    ]
    result = partition_graph(cadj, cw, cxy, **kwargs)
    result.labels = result.labels[groups]
    return result


def _compound_split_notes(units: pd.DataFrame, labels: np.ndarray, rules: GridRules) -> list[str]:
    """Name every compound whose buildings ended up in more than one grid."""
    if "compound" not in units:
        return []
    frame = pd.DataFrame(
        {
            "compound": units["compound"].to_numpy(dtype=object),
            "grid": labels,
            "households": units["households"].to_numpy(),
        }
    ).dropna(subset=["compound"])
    notes = []
    for name, g in frame.groupby("compound", sort=True):
        grids = g["grid"].nunique()
        if grids > 1:
            households = int(g["households"].sum())
            fewest = -(-households // rules.max_households)
            why = (
                f"the fewest possible above {rules.max_households} households"
                if grids == fewest
                else f"its size alone needs {fewest}; the grids around it needed more to "
                "stay within the bounds"
            )
            notes.append(
                f"compound {name} ({households} households) is split into {grids} grids "
                f"along building lines ({why})"
            )
    return notes


def partition_community(
    units: pd.DataFrame,
    *,
    rules: GridRules | None = None,
    time_limit: float = 5.0,
    seed: int = 0,
    workers: int = 1,
    keep_compounds: bool = True,
    barriers: gpd.GeoDataFrame | None = None,
    prove: bool = False,
) -> CommunityPlan:
    """Partition the units of one community into contiguous grids.

    Parameters
    ----------
    units
        The community's rows of :attr:`gridkit.units.Units.units` (cells in a
        metric CRS, ``households``, ``x``, ``y``, ``unit_id``, ``building_id``).
    rules
        Household bounds and preferences.
    time_limit
        CP-SAT deterministic time budget (about seconds) of a community of up to
        :data:`EXACT_UNITS` buildings; larger communities get more
        (:func:`community_budget`), shared by their blocks.
    seed
        Seed of the warm start and CP-SAT; the result depends only on the
        inputs and the arguments.
    workers
        CP-SAT workers, interleaved deterministically.
    keep_compounds
        Keep every compound (小区, the units' ``compound`` column) of at most
        ``max_households`` in one grid and split a larger one into the fewest
        grids possible; if that makes the bounds unreachable the community is
        partitioned building by building instead (and a note says so).
        Compounds split across grids are named in the notes.
    barriers
        Lines (roads, rivers, railways, walls) in the units' CRS, optionally with a
        ``name`` column.  Two buildings whose connecting segment crosses a barrier
        are not neighbours, so the barriers cut the community into blocks, each
        solved on its own.  A block that cannot hold a whole number of grids is
        joined to its neighbour across the barrier; if the bounds still cannot be
        met, the community is partitioned without barriers.  Crossings are
        counted and named in the notes.
    prove
        Spend the budget on proofs: pieces of more than :data:`MULTILEVEL_UNITS`
        units get the whole exact model (a proven bound and gap, at a cost that
        grows with the square of the units) instead of the multilevel engine,
        which is faster and finds plans at least as good but proves little.

    Returns
    -------
    CommunityPlan
    """
    rules = rules or GridRules()
    ids = units["community_id"].unique()
    if len(ids) != 1:
        raise InputError(
            f"`partition_community` takes the units of one community, got {len(ids)} "
            "communities; call `gridkit.partition` for a district."
        )
    token = _community.set(str(ids[0]))
    try:
        return _partition_community(
            units, rules=rules, time_limit=time_limit, seed=seed, workers=workers,
            keep_compounds=keep_compounds, barriers=barriers, prove=prove,
        )  # fmt: skip
    finally:
        _community.reset(token)


def _partition_community(
    units: pd.DataFrame,
    *,
    rules: GridRules,
    time_limit: float,
    seed: int,
    workers: int,
    keep_compounds: bool,
    barriers: gpd.GeoDataFrame | None,
    prove: bool,
) -> CommunityPlan:
    """:func:`partition_community` once the community is known (see there)."""
    ids = units["community_id"].unique()
    geoms = units.geometry.to_numpy()
    left, right, lengths = rook_pairs(geoms)
    full = adjacency_matrix(len(units), left, right)
    w = units["households"].to_numpy(dtype=np.int64)
    xy = units[["x", "y"]].to_numpy(dtype=float)
    budget = community_budget(time_limit, len(units))
    extra_notes: list[str] = []

    # Barriers cut the community into blocks; a block that cannot hold a whole
    # number of grids is merged with its neighbour across the barrier.
    crossing, crossed_names = _barrier_crossings(xy, left, right, barriers)
    blocked, n_blocks, merged = full, 1, 0
    if crossing.any() and int(w.sum()) >= rules.min_households:
        keep_link, n_blocks, merged = _feasible_blocks(len(units), left, right, crossing, w, rules)
        blocked = adjacency_matrix(len(units), left[keep_link], right[keep_link])
        if merged:
            extra_notes.append(
                f"{merged} block(s) between barriers could not hold a whole number of grids "
                "and were joined to a neighbouring block across a barrier"
            )
    _, block = csgraph.connected_components(blocked, directed=False)
    if n_blocks == 1:
        block = np.zeros(len(units), dtype=np.int64)  # pieces without barriers: one solve
    area = shapely.area(geoms)
    perimeter = shapely.length(geoms)
    shared = adjacency_matrix(len(units), left, right, weights=lengths)
    separate = _separate_groups(units, len(units), left, right, crossing)
    own = own_grid_kinds(units, rules)
    kwargs = {"rules": rules, "seed": seed, "workers": workers, "prove": prove}
    parts = []
    for b in range(int(block.max()) + 1):
        nodes = np.flatnonzero(block == b)
        share = budget * len(nodes) / len(units)
        parts.append(
            _solve_block(
                units.iloc[nodes], blocked[nodes][:, nodes], w[nodes], xy[nodes],
                keep_compounds=keep_compounds, time_limit=share, area=area[nodes],
                separate=separate[nodes], own_status=own[nodes], perimeter=perimeter[nodes],
                shared=shared[nodes][:, nodes], **kwargs,
            )
        )  # fmt: skip
    result = _combine(parts, [np.flatnonzero(block == b) for b in range(len(parts))], len(units))
    graph = blocked
    if blocked is not full and not _meets_bounds(result, int(w.sum()), rules):
        extra_notes.append(
            "the bounds cannot be met without crossing a barrier; the grids were drawn "
            "across barriers where needed"
        )
        graph = full
        result = _solve_block(units, full, w, xy, keep_compounds=keep_compounds,
                              time_limit=budget, area=area, separate=separate,
                              own_status=own, perimeter=perimeter, shared=shared,
                              **kwargs)  # fmt: skip
    if graph is blocked and n_blocks > 1 and result.bound is not None:
        extra_notes.append(
            f"the barriers cut the community into {n_blocks} blocks solved separately; "
            "the bound and gap are for plans that keep to them"
        )
    if keep_compounds:
        extra_notes += _compound_split_notes(units, result.labels, rules)
    inside = crossing & (result.labels[left] == result.labels[right])
    if inside.any():
        names = sorted({crossed_names[k] for k in np.flatnonzero(inside)} - {""})
        extra_notes.append(
            f"{int(inside.sum())} neighbour link(s) inside grids cross a barrier"
            + (f" ({', '.join(names)})" if names else "")
        )
    centroids = shapely.get_coordinates(shapely.centroid(geoms))
    seq = number_grids(result.labels, centroids, shapely.area(geoms))
    status_by_seq = {
        int(s): result.grid_status[int(lab)] for s, lab in zip(seq, result.labels, strict=True)
    }
    notes = (
        _oversize_notes(units, rules)
        + [n for n in result.notes if "above max_households" not in n]
        + extra_notes
    )
    total = int(w.sum())
    if total < rules.min_households:
        notes.insert(
            0,
            f"community {ids[0]} has {total} households; a grid needs at least "
            f"{rules.min_households} (`min_households`). Merge it with a neighbour or lower "
            "`min_households`",
        )
    log.info(
        "community %s: %d grids from %d units in %.1f s (%s)",
        ids[0],
        len(status_by_seq),
        len(units),
        result.wall_time,
        result.solver_status,
    )
    return CommunityPlan(
        community_id=str(ids[0]),
        labels=pd.Series(seq, index=units.index, name="grid_seq"),
        grid_status=dict(sorted(status_by_seq.items())),
        solver_status=result.solver_status,
        objective=result.objective,
        bound=result.bound,
        gap=result.gap,
        wall_time=result.wall_time,
        deterministic_time=result.deterministic_time,
        notes=notes,
        bounds_unreachable=result.bounds_unreachable,
    )
