"""CP-SAT model of contiguous, household-bounded grids: the builders, shared with ``regenerate``.

The model is a centre-based p-median with distance-precedence contiguity
(Zoltners–Sinha; formulation F3 of ``shared/notes/cpsat-study.md``):

* ``x[i, c] = 1`` when unit ``i`` belongs to the grid whose centre is unit
  ``c``; ``x[c, c]`` opens grid ``c``.  Only *allowed* pairs get a variable
  (see :func:`allowed_pairs`).
* Each builder below adds one constraint family and states its maths.

Everything here works on numpy arrays: no geometry, no GeoDataFrames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model
from scipy import sparse
from scipy.sparse import csgraph

__all__ = [
    "VIOLATION_PENALTY",
    "GridModel",
    "SolveResult",
    "add_assignment",
    "add_balance_cut",
    "add_contiguity",
    "add_hint",
    "add_size_bounds",
    "allowed_pairs",
    "bounds_reachable",
    "build_model",
    "restrict",
    "solve",
]

#: Penalty per household outside the bounds in the soft model; large enough
#: that any in-bounds plan beats any out-of-bounds plan.
VIOLATION_PENALTY = 10**7


@dataclass
class GridModel:
    """A built CP-SAT model and the handles needed to read its solution."""

    model: cp_model.CpModel
    pair_i: np.ndarray
    pair_c: np.ndarray
    x: list
    n: int
    #: The number of open grids (hard model only) and its full range.
    count: cp_model.IntVar | None = None
    count_range: tuple[int, int] | None = None


def allowed_pairs(
    adj: sparse.csr_matrix,
    weights: np.ndarray,
    graph_dist: np.ndarray,
    *,
    max_households: int | None,
    xy: np.ndarray | None = None,
    max_radius: float | None = None,
    keep: set[tuple[int, int]] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """Unit–centre pairs that can appear in a contiguous, bounded grid.

    A pair ``(i, c)`` is allowed when ``i == c``, or when ``i`` has a
    neighbour ``j`` with ``d(j, c) < d(i, c)`` whose pair ``(j, c)`` is allowed
    (``d`` = shortest-path length on the adjacency graph), and - with
    ``max_households`` given - when the lightest path from ``c`` to ``i``
    carries at most ``max_households`` households (a grid holding both must
    hold a path between them).  With ``max_radius`` (metres), ``i`` must also
    lie within that straight-line distance of ``c``: a compactness
    restriction that keeps the model small.  Pairs in ``keep`` (the warm
    start) are allowed whatever the radius, so the hint stays feasible.

    Returns
    -------
    pair_i, pair_c
        Arrays of allowed pairs, sorted by centre then distance.
    preds
        For each pair, the indices (into the pair arrays) of its allowed
        precedence neighbours ``(j, c)``.
    """
    n = len(weights)
    w = np.asarray(weights, dtype=np.float64)
    if max_households is not None:
        coo = adj.tocoo()
        node_w = sparse.csr_matrix((w[coo.col] + 1e-6, (coo.row, coo.col)), shape=(n, n))
        path_w = csgraph.dijkstra(node_w, directed=True) + w[:, None]
        reach = path_w <= max_households + 1e-3
    else:
        reach = np.isfinite(graph_dist)
    if max_radius is not None and xy is not None:
        near = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
        reach = reach & (near <= max_radius)
    keep = keep or set()
    indptr, indices = adj.indptr, adj.indices
    pair_i: list[int] = []
    pair_c: list[int] = []
    preds: list[list[int]] = []
    for c in range(n):
        d = graph_dist[c]
        order = np.argsort(d, kind="stable")
        index_of: dict[int, int] = {}
        for i in order:
            i = int(i)
            if not np.isfinite(d[i]) or not (reach[c, i] or (i, c) in keep):
                continue
            if i == c:
                p: list[int] = []
            else:
                nbrs = indices[indptr[i] : indptr[i + 1]]
                p = [index_of[int(j)] for j in nbrs if int(j) in index_of and d[j] < d[i]]
                if not p:
                    continue
            index_of[i] = len(pair_i)
            pair_i.append(i)
            pair_c.append(c)
            preds.append(p)
    return np.asarray(pair_i), np.asarray(pair_c), preds


def add_assignment(model: cp_model.CpModel, x: list, pair_i: np.ndarray, n: int) -> None:
    """Each unit belongs to exactly one grid: ``sum_c x[i, c] = 1`` for every ``i``."""
    by_unit: list[list] = [[] for _ in range(n)]
    for p, i in enumerate(pair_i):
        by_unit[i].append(x[p])
    for i, vars_i in enumerate(by_unit):
        if not vars_i:
            raise ValueError(f"unit {i} has no allowed centre")
        model.AddExactlyOne(vars_i)


def add_contiguity(
    model: cp_model.CpModel,
    x: list,
    pair_i: np.ndarray,
    pair_c: np.ndarray,
    preds: list[list[int]],
    centre_index: dict[int, int],
) -> None:
    """Distance-precedence contiguity and open centres.

    ``x[i, c] <= x[c, c]`` (a unit joins only an open grid) and, for ``i != c``,
    ``x[i, c] <= sum_{j in N(i), d(j,c) < d(i,c)} x[j, c]``: following
    strictly closer neighbours always leads back to the centre inside the grid,
    so every grid is connected.
    """
    for p, (i, c) in enumerate(zip(pair_i, pair_c, strict=True)):
        if i == c:
            continue
        model.AddImplication(x[p], x[centre_index[int(c)]])
        model.AddBoolOr([x[q] for q in preds[p]]).OnlyEnforceIf(x[p])


def add_size_bounds(
    model: cp_model.CpModel,
    x: list,
    pair_i: np.ndarray,
    pair_c: np.ndarray,
    weights: np.ndarray,
    centre_index: dict[int, int],
    *,
    min_households: int,
    max_households: int,
    target: int,
    hard: bool,
) -> tuple[list, list]:
    """Household bounds and the balance deviation of every open grid.

    ``load_c = sum_i w_i x[i, c]``.  Hard: ``min*x[c,c] <= load_c <= max*x[c,c]``.
    Soft: ``load_c + short_c >= min*x[c,c]`` and ``load_c - over_c <= max*x[c,c]``
    with ``short_c, over_c >= 0`` penalised in the objective.  Deviation:
    ``dev_c >= |load_c - target*x[c,c]|``.

    Returns
    -------
    devs, violations
        The deviation variables and the violation variables (empty if hard).
    """
    total = int(np.sum(weights))
    by_centre: dict[int, list[tuple[int, int]]] = {}
    for p, (i, c) in enumerate(zip(pair_i, pair_c, strict=True)):
        by_centre.setdefault(int(c), []).append((p, int(weights[i])))
    devs, violations = [], []
    for c, members in by_centre.items():
        open_c = x[centre_index[c]]
        load = sum(w * x[p] for p, w in members if w)
        if hard:
            model.Add(load <= max_households * open_c)
            model.Add(load >= min_households * open_c)
        else:
            short = model.NewIntVar(0, min_households, f"short_{c}")
            over = model.NewIntVar(0, total, f"over_{c}")
            model.Add(load + short >= min_households * open_c)
            model.Add(load - over <= max_households * open_c)
            violations += [short, over]
        dev = model.NewIntVar(0, max(total, target), f"dev_{c}")
        model.Add(dev >= load - target * open_c)
        model.Add(dev >= target * open_c - load)
        devs.append(dev)
    return devs, violations


def add_balance_cut(
    model: cp_model.CpModel, devs: list, opened: list, *, total: int, target: int
) -> None:
    """Aggregate balance cut: ``sum_c dev_c >= |W - target * sum_c x[c, c]|``.

    Implied by the per-grid deviations (triangle inequality), but it tightens
    the LP relaxation a lot: on the sample district it turns 6 % gaps after 10
    deterministic seconds into proven optima in about 6.
    """
    model.Add(sum(devs) >= total - target * sum(opened))
    model.Add(sum(devs) >= target * sum(opened) - total)


def build_model(
    adj: sparse.csr_matrix,
    weights: np.ndarray,
    xy: np.ndarray,
    graph_dist: np.ndarray,
    *,
    min_households: int,
    max_households: int,
    target: int,
    balance_weight: int,
    hard: bool,
    max_radius: float | None = None,
    keep: set[tuple[int, int]] | None = None,
) -> GridModel:
    """Build the CP-SAT model for one connected component.

    Objective (minimised, integer)::

        sum_{i,c} w_i * round(|p_i - p_c|) * x[i, c]      compactness (household-metres)
      + balance_weight * sum_c dev_c                      balance (任务相当)
      + VIOLATION_PENALTY * sum_c (short_c + over_c)      soft model only

    ``|p_i - p_c|`` is the straight-line distance in metres between unit
    points, so the first term is the household-weighted distance of every
    household to its grid centre: small for round, compact grids.
    """
    n = len(weights)
    w = np.asarray(weights, dtype=np.int64)
    pair_i, pair_c, preds = allowed_pairs(
        adj,
        w,
        graph_dist,
        max_households=max_households if hard else None,
        xy=xy,
        max_radius=max_radius,
        keep=keep,
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
        min_households=min_households,
        max_households=max_households,
        target=target,
        hard=hard,
    )
    total = int(w.sum())
    opened = [x[p] for p in centre_index.values()]
    add_balance_cut(model, devs, opened, total=total, target=target)
    count, count_range = None, None
    if hard:
        count_range = (-(-total // max_households), max(1, total // min_households))
        count = model.NewIntVar(*count_range, "grids")
        model.Add(count == sum(opened))
    dist = np.rint(np.hypot(*(xy[pair_i] - xy[pair_c]).T)).astype(np.int64)
    cost = w[pair_i] * dist
    objective = [int(k) * x[p] for p, k in enumerate(cost) if k]
    objective += [balance_weight * d for d in devs]
    objective += [VIOLATION_PENALTY * v for v in violations]
    model.Minimize(sum(objective))
    return GridModel(
        model=model, pair_i=pair_i, pair_c=pair_c, x=x, n=n, count=count, count_range=count_range
    )


def restrict(grid_model: GridModel, *, count: int | None = None, cutoff: int | None = None) -> None:
    """Restrict the next solves to ``count`` grids and to objectives ``<= cutoff``.

    ``None`` lifts a restriction.  Both are set on the model's domains (the
    number-of-grids variable and the objective domain), so one model serves a
    whole sequence of solves without being rebuilt.  ``count`` needs the hard
    model, which has the number-of-grids variable.
    """
    proto = grid_model.model.Proto()
    if count is not None or grid_model.count is not None:
        if grid_model.count is None or grid_model.count_range is None:
            raise ValueError("only the hard model has a number-of-grids variable")
        lo, hi = (count, count) if count is not None else grid_model.count_range
        domain = proto.variables[grid_model.count.Index()].domain
        domain[0], domain[1] = int(lo), int(hi)
    objective = proto.objective.domain
    if cutoff is None:
        if len(objective):
            objective[1] = 2**62  # (every objective is >= 0)
    elif len(objective):
        objective[1] = int(cutoff)
    else:
        objective.extend([0, int(cutoff)])


def add_hint(grid_model: GridModel, labels: np.ndarray, centres: dict[int, int]) -> None:
    """Hint a plan (replacing any earlier hint): ``labels`` per unit and each label's centre."""
    grid_model.model.ClearHints()
    for p, (i, c) in enumerate(zip(grid_model.pair_i, grid_model.pair_c, strict=True)):
        grid_model.model.AddHint(grid_model.x[p], centres.get(int(labels[i])) == int(c))


@dataclass(frozen=True)
class SolveResult:
    """Outcome of one CP-SAT solve."""

    status: str
    labels: np.ndarray | None
    objective: float | None
    bound: float | None
    wall_time: float
    deterministic_time: float


def solve(
    grid_model: GridModel,
    *,
    time_limit: float,
    seed: int,
    workers: int = 1,
    linearization: int = 2,
    cuts: bool = False,
) -> SolveResult:
    """Solve deterministically and return labels (the centre unit of each unit).

    ``time_limit`` is CP-SAT's *deterministic* time budget (roughly seconds on
    a modern core), so the same model gives the same answer on any machine
    and any load.  There is deliberately no wall-clock limit: it would make
    the answer depend on the machine's load.  With ``workers > 1`` the
    portfolio runs interleaved, which CP-SAT documents as deterministic; its
    deterministic clock sums the workers' work, so the budget is shared
    between them (``time_limit / workers`` each) and may overshoot by one
    interleaved batch (about 0.1 deterministic seconds).

    ``linearization`` is CP-SAT's ``linearization_level`` (2: every clause in
    the LP) and ``cuts`` turns on its generic cutting planes (``cut_level``);
    see the comments below for why the defaults are what they are.
    """
    solver = cp_model.CpSolver()
    params = solver.parameters
    params.max_deterministic_time = float(time_limit) / max(1, int(workers))
    params.random_seed = int(seed)
    params.num_workers = max(1, int(workers))
    # Level 2 puts every clause (the precedence and open-centre implications) into
    # the LP relaxation: on 40-unit communities it proves in ~2 deterministic
    # seconds what level 1 leaves at a 10-18 % gap after 10.
    params.linearization_level = int(linearization)
    # Without generic cuts (MIR, zero-half, clique, ...) by default: on communities of
    # up to ~60 buildings they cost more than they prune.  On a 44-building community
    # the proof takes 0.6 deterministic seconds without them against 2.6 with them
    # (1.1 s of wall time against 6.9).  On 120 buildings they do raise the bound.
    params.cut_level = 1 if cuts else 0
    if workers > 1:
        params.interleave_search = True
        params.subsolvers.append("max_lp")  # the portfolio's full-model worker at level 2
    params.log_search_progress = False
    status = solver.Solve(grid_model.model)
    name = solver.StatusName(status)
    labels = None
    objective = bound = None
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        values = np.fromiter(
            (solver.BooleanValue(v) for v in grid_model.x), dtype=bool, count=len(grid_model.x)
        )
        labels = np.full(grid_model.n, -1, dtype=np.int64)
        labels[grid_model.pair_i[values]] = grid_model.pair_c[values]
        objective = solver.ObjectiveValue()
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        bound = solver.BestObjectiveBound()
    elif status == cp_model.UNKNOWN and solver.BestObjectiveBound() > 0:
        # still a valid lower bound without a plan; 0 (every objective is >= 0) says nothing
        bound = solver.BestObjectiveBound()
    return SolveResult(
        status=name,
        labels=labels,
        objective=objective,
        bound=bound,
        wall_time=solver.WallTime(),
        deterministic_time=solver.deterministic_time,
    )


def bounds_reachable(
    weights: np.ndarray,
    *,
    min_households: int,
    max_households: int,
    time_limit: float = 1.0,
    seed: int = 0,
) -> bool | None:
    """Whether the units can be grouped into grids within the bounds, ignoring contiguity.

    A bin-packing relaxation: ``k <= floor(W/min)`` bins, ``min*y_b <=
    sum_i w_i x[i, b] <= max*y_b``, every unit in one open bin, bins opened in
    order (``y_b >= y_{b+1}``, symmetry breaking).  ``False`` is a proof that
    no plan - contiguous or not - meets the bounds; ``None`` means the budget
    ran out before an answer.

    Examples
    --------
    >>> bounds_reachable(np.array([700, 150, 700]), min_households=400, max_households=800)
    False
    >>> bounds_reachable(np.array([300, 300, 300, 300]), min_households=400,
    ...                  max_households=800)
    True
    """
    w = np.asarray(weights, dtype=np.int64)
    total = int(w.sum())
    k = total // min_households
    if k == 0 or (w > max_households).any():
        return False
    model = cp_model.CpModel()
    y = [model.NewBoolVar(f"y_{b}") for b in range(k)]
    x = [[model.NewBoolVar(f"x_{i}_{b}") for b in range(k)] for i in range(len(w))]
    for i in range(len(w)):
        model.AddExactlyOne(x[i])
        for b in range(k):
            model.AddImplication(x[i][b], y[b])
    for b in range(k):
        load = sum(int(w[i]) * x[i][b] for i in range(len(w)))
        model.Add(load >= min_households * y[b])
        model.Add(load <= max_households * y[b])
        if b + 1 < k:
            model.AddImplication(y[b + 1], y[b])
    solver = cp_model.CpSolver()
    solver.parameters.max_deterministic_time = float(time_limit)
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = int(seed)
    status = solver.Solve(model)
    if status == cp_model.INFEASIBLE:
        return False
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return True
    return None
