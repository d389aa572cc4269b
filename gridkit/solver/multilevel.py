"""Multilevel building blocks for large unit graphs: coarsening and boundary refinement.

A community of thousands of units (household points, blocks of an urban
village, a 900-building estate) is too large for one exact CP-SAT model: the
model's size grows with the square of the units.  gridkit partitions such a
community the way METIS and KaHIP partition huge graphs:

1. **coarsen** (:func:`coarsen`): neighbouring units are matched and merged,
   level after level, into coarse units of at most ``cap`` households (well
   below a grid's minimum) that never mix two ``separate`` groups (barrier
   blocks, compounds), until the graph is small;
2. a plan is made on the coarse graph (seeded spanning-tree splits, refined,
   then CP-SAT large-neighbourhood search on windows of a few grids; see
   :mod:`gridkit.partition`);
3. **uncoarsen**: the plan is projected level by level back to the units and
   refined at every level by :func:`refine`, a local search that moves
   boundary units between neighbouring grids while keeping every grid
   connected and within its bounds.

Everything here works on arrays (a sparse adjacency, weights, coordinates) and
is deterministic: ties are broken by index, never by chance.  Memory is linear
in the number of units and edges; nothing builds an ``n x n`` matrix.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy import sparse

__all__ = [
    "Level",
    "WorkClock",
    "coarsen",
    "mean_polsby_popper",
    "plan_cost",
    "recombine",
    "refine",
    "unit_mass",
]

#: Penalty (in cost units per household) of a load outside the bounds during refinement;
#: large enough that no compactness gain pays for one household out of bounds.
VIOLATION_PENALTY = 1e9


#: Seconds of one unit of work on a typical core (calibrated on the 900-building
#: benchmark community: see docs/benchmarks.md).  Work is counted, not timed,
#: so the search and its result do not depend on the machine's load.
SECONDS_PER_WORK = 1.5e-6


class WorkClock:
    """A deterministic clock: work done by the heuristics, counted in operations.

    ``seconds`` converts the count with :data:`SECONDS_PER_WORK`, so a budget in
    seconds stops the search at the same point on every machine and under any
    load, close to the wall time an idle core takes.

    Examples
    --------
    >>> clock = WorkClock()
    >>> clock.add(2_000_000)
    >>> clock.seconds
    3.0
    """

    def __init__(self) -> None:
        self.work = 0

    def add(self, work: int) -> None:
        """Count ``work`` operations."""
        self.work += int(work)

    @property
    def seconds(self) -> float:
        """Work done so far, in seconds of a typical core."""
        return self.work * SECONDS_PER_WORK


@dataclass(frozen=True)
class Level:
    """One level of a coarsening hierarchy.

    Attributes
    ----------
    adj
        Symmetric adjacency (CSR, no diagonal) of the level's nodes.
    w
        Households per node.
    xy
        ``(n, 2)`` node positions (mass-weighted centroids of their units).
    mass
        Compactness weight per node (see :func:`unit_mass`).
    parent
        For every node of the *finer* level, the node of this level holding it
        (``None`` on the finest level).
    group
        The ``separate`` group of every node.
    """

    adj: sparse.csr_matrix
    w: np.ndarray
    xy: np.ndarray
    mass: np.ndarray
    parent: np.ndarray | None
    group: np.ndarray

    @property
    def n(self) -> int:
        """Number of nodes."""
        return len(self.w)


def unit_mass(
    w: np.ndarray, area: np.ndarray | None = None, area_share: float = 0.5
) -> np.ndarray:
    """Compactness weight of every unit: households, and area where known, each mean 1.

    Grids are judged on the map by their outline (Polsby-Popper), so an empty
    park or school cell must weigh something: without ``area`` every unit gets
    ``0.05`` on top of its households (scaled to mean 1); with ``area``,
    ``area_share`` of the weight is area and the rest households.

    Examples
    --------
    >>> unit_mass(np.array([0, 100, 100])).round(3).tolist()
    [0.05, 1.55, 1.55]
    >>> unit_mass(np.array([0, 100]), np.array([300.0, 100.0])).round(2).tolist()
    [0.75, 1.25]
    """
    w = np.asarray(w, dtype=float)
    mean_w = w.mean() if len(w) and w.mean() > 0 else 1.0
    if area is None:
        return w / mean_w + 0.05
    area = np.asarray(area, dtype=float)
    mean_a = area.mean() if len(area) and area.mean() > 0 else 1.0
    return (1.0 - area_share) * w / mean_w + area_share * area / mean_a


def _contract(
    adj: sparse.csr_matrix, parent: np.ndarray, k: int
) -> sparse.csr_matrix:
    """Adjacency of the coarse graph: ``P A P^T`` without its diagonal."""
    n = len(parent)
    member = sparse.csr_matrix((np.ones(n), (parent, np.arange(n))), shape=(k, n))
    coarse = (member @ adj @ member.T).tocsr()
    coarse.setdiag(0)
    coarse.eliminate_zeros()
    coarse.data[:] = 1.0
    return coarse


def _match(level: Level, cap: int) -> tuple[np.ndarray, int]:
    """Greedy matching of neighbours (closest, lightest pairs first) within ``cap`` households.

    Returns the parent of every node and the number of coarse nodes.
    """
    upper = sparse.triu(level.adj, k=1).tocoo()
    i, j = upper.row, upper.col
    both = level.w[i] + level.w[j]
    ok = (both <= cap) & (level.group[i] == level.group[j])
    i, j, both = i[ok], j[ok], both[ok]
    gap = np.hypot(*(level.xy[i] - level.xy[j]).T)
    # closest first, the lighter of two equally close pairs first (keeps coarse units even)
    score = gap * (1.0 + both / max(cap, 1))
    order = np.lexsort((j, i, score))
    matched = np.full(level.n, -1, dtype=np.int64)
    for a, b in zip(i[order].tolist(), j[order].tolist(), strict=True):
        if matched[a] < 0 and matched[b] < 0:
            matched[a], matched[b] = b, a
    rep = np.where(matched >= 0, np.minimum(np.arange(level.n), matched), np.arange(level.n))
    uniq, parent = np.unique(rep, return_inverse=True)
    return parent.astype(np.int64), len(uniq)


def coarsen(
    adj: sparse.spmatrix,
    w: np.ndarray,
    xy: np.ndarray,
    *,
    cap: int,
    goal: int,
    mass: np.ndarray | None = None,
    separate: np.ndarray | None = None,
) -> list[Level]:
    """Coarsen a unit graph by repeated matching until it has at most ``goal`` nodes.

    Parameters
    ----------
    adj
        Symmetric adjacency of the units.
    w
        Households per unit.
    xy
        ``(n, 2)`` unit positions in metres.
    cap
        Households a coarse node may hold at most (a unit above it stays alone).
    goal
        Stop when the coarsest level has at most this many nodes, or when a
        round of matching merges less than 5 % of the nodes.
    mass
        Compactness weight per unit (default :func:`unit_mass` of ``w``).
    separate
        Group per unit (e.g. barrier block or compound); nodes of two groups
        are never merged.

    Returns
    -------
    list of Level
        Finest level first.

    Examples
    --------
    A path of 8 units of 50 households, merged up to 200 households a node:

    >>> adj = sparse.diags([1.0, 1.0], [-1, 1], shape=(8, 8)).tocsr()
    >>> levels = coarsen(adj, np.full(8, 50), np.c_[np.arange(8.0), np.zeros(8)],
    ...                  cap=200, goal=1)
    >>> [lv.n for lv in levels], levels[-1].w.tolist()
    ([8, 4, 3], [100, 200, 100])
    """
    adj = sparse.csr_matrix(adj, dtype=float)
    adj.setdiag(0)
    adj.eliminate_zeros()
    w = np.asarray(w, dtype=np.int64)
    xy = np.asarray(xy, dtype=float)
    mass = unit_mass(w) if mass is None else np.asarray(mass, dtype=float)
    group = (
        np.zeros(len(w), dtype=np.int64)
        if separate is None
        else np.unique(np.asarray(separate), return_inverse=True)[1].astype(np.int64)
    )
    levels = [Level(adj=adj, w=w, xy=xy, mass=mass, parent=None, group=group)]
    while levels[-1].n > goal:
        fine = levels[-1]
        parent, k = _match(fine, cap)
        if k > 0.95 * fine.n:
            break
        cmass = np.bincount(parent, weights=fine.mass, minlength=k)
        safe = np.where(cmass > 0, cmass, 1.0)
        cxy = np.c_[
            np.bincount(parent, weights=fine.xy[:, 0] * fine.mass, minlength=k) / safe,
            np.bincount(parent, weights=fine.xy[:, 1] * fine.mass, minlength=k) / safe,
        ]
        cgroup = np.zeros(k, dtype=np.int64)
        cgroup[parent] = fine.group
        levels.append(
            Level(
                adj=_contract(fine.adj, parent, k),
                w=np.bincount(parent, weights=fine.w, minlength=k).astype(np.int64),
                xy=cxy,
                mass=cmass,
                parent=parent,
                group=cgroup,
            )
        )
    return levels


def mean_polsby_popper(
    labels: np.ndarray, area: np.ndarray, perimeter: np.ndarray, shared: sparse.spmatrix
) -> float:
    """Mean Polsby-Popper compactness 4πA/P² of the grids, without drawing them.

    A grid's area is the sum of its cells'; its perimeter the sum of its cells'
    perimeters less twice the boundary they share with each other.

    Examples
    --------
    Two unit squares side by side, as one grid and as two:

    >>> shared = sparse.csr_matrix(([1.0, 1.0], ([0, 1], [1, 0])), shape=(2, 2))
    >>> area, perimeter = np.ones(2), np.full(2, 4.0)
    >>> round(mean_polsby_popper(np.array([0, 0]), area, perimeter, shared), 4)
    0.6981
    >>> round(mean_polsby_popper(np.array([0, 1]), area, perimeter, shared), 4)
    0.7854
    """
    _, lab = np.unique(labels, return_inverse=True)
    k = int(lab.max()) + 1 if len(lab) else 0
    coo = sparse.coo_matrix(shared)
    inside = lab[coo.row] == lab[coo.col]
    internal = np.bincount(lab[coo.row[inside]], weights=coo.data[inside], minlength=k)
    perim = np.bincount(lab, weights=perimeter, minlength=k) - internal  # (each pair twice)
    areas = np.bincount(lab, weights=area, minlength=k)
    pp = 4 * np.pi * areas / np.maximum(perim, 1e-9) ** 2
    return float(pp.mean()) if k else 0.0


def _violation(load: float, lo: int, hi: int) -> float:
    return max(0.0, lo - load) + max(0.0, load - hi)


def plan_cost(
    labels: np.ndarray,
    w: np.ndarray,
    xy: np.ndarray,
    mass: np.ndarray,
    *,
    min_households: int,
    max_households: int,
    target: int,
    balance: float,
) -> float:
    """Refinement objective of a plan: moment, balance and bound violations.

    ``sum_i mass_i |p_i - centroid(g_i)| + balance * sum_g |load_g - target|
    + VIOLATION_PENALTY * (households outside the bounds)``, where the
    centroid of a grid is the mass-weighted mean of its units' positions.
    """
    _, lab = np.unique(labels, return_inverse=True)
    k = int(lab.max()) + 1 if len(lab) else 0
    msum = np.bincount(lab, weights=mass, minlength=k)
    safe = np.where(msum > 0, msum, 1.0)
    cx = np.bincount(lab, weights=mass * xy[:, 0], minlength=k) / safe
    cy = np.bincount(lab, weights=mass * xy[:, 1], minlength=k) / safe
    moment = float((mass * np.hypot(xy[:, 0] - cx[lab], xy[:, 1] - cy[lab])).sum())
    loads = np.bincount(lab, weights=w, minlength=k)
    over = np.maximum(0, min_households - loads) + np.maximum(0, loads - max_households)
    return moment + balance * float(np.abs(loads - target).sum()) + VIOLATION_PENALTY * float(
        over.sum()
    )


def _stays_connected(
    i: int,
    grid: int,
    labels: list[int],
    indptr: list[int],
    indices: list[int],
    searched: list[int] | None = None,
) -> bool:
    """Whether grid ``grid`` stays connected without unit ``i`` (a search from one neighbour)."""
    inside = [j for j in indices[indptr[i] : indptr[i + 1]] if labels[j] == grid]
    if len(inside) <= 1:
        return True
    wanted = set(inside[1:])
    seen = {i, inside[0]}
    queue = deque([inside[0]])
    while queue:
        u = queue.popleft()
        if searched is not None:
            searched[0] += 1
        for v in indices[indptr[u] : indptr[u + 1]]:
            if v in seen or labels[v] != grid:
                continue
            if v in wanted:
                wanted.discard(v)
                if not wanted:
                    return True
            seen.add(v)
            queue.append(v)
    return False


def refine(
    adj: sparse.csr_matrix,
    w: np.ndarray,
    xy: np.ndarray,
    labels: np.ndarray,
    *,
    mass: np.ndarray,
    min_households: int,
    max_households: int,
    target: int,
    balance: float,
    sweeps: int = 30,
    clock: WorkClock | None = None,
) -> tuple[np.ndarray, int]:
    """Move boundary units to neighbouring grids while the plan improves.

    A sweep scores every move of a boundary unit to a neighbouring grid at
    once (vectorised): the change of :func:`plan_cost` with the grids'
    centroids held fixed.  It then applies the improving moves best first,
    one at a time, each re-checked against the loads as they are now and
    kept only if the unit's grid stays connected without it (a search from one
    of its neighbours in the grid) and the grid does not empty.  Bounds are
    kept because leaving them costs :data:`VIOLATION_PENALTY` per household;
    a plan out of bounds is repaired the same way.  Centroids are updated
    between sweeps; it stops when a sweep moves nothing.

    Parameters
    ----------
    adj
        Symmetric adjacency (CSR) of the units.
    w, xy, mass
        Households, positions (metres) and compactness weights of the units.
    labels
        Grid of every unit (any integers); every grid must be connected.
    min_households, max_households, target
        The bounds and preferred size of a grid.
    balance
        Cost of one household away from ``target``, in mass-metres.
    sweeps
        At most this many sweeps.
    clock
        Counts the work done (edges scored, units searched).

    Returns
    -------
    labels, moves
        The refined labels (``0..k-1``, same grids as the input, renumbered)
        and the number of moves made.
    """
    adj = sparse.csr_matrix(adj)
    _, lab = np.unique(labels, return_inverse=True)
    lab = lab.astype(np.int64)
    k = int(lab.max()) + 1 if len(lab) else 0
    w = np.asarray(w, dtype=np.int64)
    coo = sparse.triu(adj, k=1).tocoo()
    row = np.r_[coo.row, coo.col].astype(np.int64)
    col = np.r_[coo.col, coo.row].astype(np.int64)
    indptr, indices = adj.indptr.tolist(), adj.indices.tolist()
    x, y = xy[:, 0], xy[:, 1]
    lo, hi, t = min_households, max_households, target
    total_moves = 0
    for _ in range(sweeps):
        loads = np.bincount(lab, weights=w, minlength=k)
        sizes = np.bincount(lab, minlength=k)
        msum = np.bincount(lab, weights=mass, minlength=k)
        safe = np.where(msum > 0, msum, 1.0)
        cx = np.bincount(lab, weights=mass * x, minlength=k) / safe
        cy = np.bincount(lab, weights=mass * y, minlength=k) / safe
        a, b = lab[row], lab[col]
        cand = a != b
        ci, ch = row[cand], b[cand]
        if len(ci) == 0:
            break
        pairs = np.unique(np.c_[ci, ch], axis=0)
        ci, ch = pairs[:, 0], pairs[:, 1]
        ca = lab[ci]
        # the move's gain with centroids fixed (loads are re-checked when applied)
        geo = mass[ci] * (
            np.hypot(x[ci] - cx[ca], y[ci] - cy[ca]) - np.hypot(x[ci] - cx[ch], y[ci] - cy[ch])
        )
        wi = w[ci]
        la, lh = loads[ca], loads[ch]

        def viol(load):
            return np.maximum(0, lo - load) + np.maximum(0, load - hi)

        bal = balance * (
            np.abs(la - t) + np.abs(lh - t) - np.abs(la - wi - t) - np.abs(lh + wi - t)
        ) + VIOLATION_PENALTY * (viol(la) + viol(lh) - viol(la - wi) - viol(lh + wi))
        gain = geo + bal
        good = gain > 1e-9
        if not good.any():
            break
        ci, ch, geo = ci[good], ch[good], geo[good]
        order = np.lexsort((ch, ci, -gain[good]))
        lab_list = lab.tolist()
        loads_list = loads.tolist()
        sizes_list = sizes.tolist()
        moved = 0
        searched = [0]
        for idx in order.tolist():
            i, h = int(ci[idx]), int(ch[idx])
            g = lab_list[i]
            if g == h or sizes_list[g] <= 1:
                continue
            wi_ = int(w[i])
            la_, lh_ = loads_list[g], loads_list[h]
            delta = balance * (
                abs(la_ - t) + abs(lh_ - t) - abs(la_ - wi_ - t) - abs(lh_ + wi_ - t)
            ) + VIOLATION_PENALTY * (
                _violation(la_, lo, hi)
                + _violation(lh_, lo, hi)
                - _violation(la_ - wi_, lo, hi)
                - _violation(lh_ + wi_, lo, hi)
            )
            if float(geo[idx]) + delta <= 1e-9:
                continue
            if not any(lab_list[j] == h for j in indices[indptr[i] : indptr[i + 1]]):
                continue
            if not _stays_connected(i, g, lab_list, indptr, indices, searched):
                continue
            lab_list[i] = h
            loads_list[g] -= wi_
            loads_list[h] += wi_
            sizes_list[g] -= 1
            sizes_list[h] += 1
            moved += 1
        lab = np.asarray(lab_list, dtype=np.int64)
        total_moves += moved
        if clock is not None:
            clock.add(len(row) + 20 * len(order) + searched[0])
        if moved == 0:
            break
    return lab, total_moves


def _moment(mass: np.ndarray, xy: np.ndarray) -> float:
    """``sum mass * |p - centroid|`` of one grid."""
    total = float(mass.sum())
    if total <= 0:
        return 0.0
    centre = (xy * mass[:, None]).sum(axis=0) / total
    return float((mass * np.hypot(*(xy - centre).T)).sum())


def _bisections(
    sub: sparse.csr_matrix,
    w: np.ndarray,
    xy: np.ndarray,
    mass: np.ndarray,
    rng: np.random.Generator,
    *,
    trees: int,
    keep: int,
    min_households: int,
    max_households: int,
) -> list[np.ndarray]:
    """The ``keep`` least-inertia cuts in two within the bounds, over ``trees`` random trees.

    A cut removes one edge of a random spanning tree, so both sides are
    connected.  Every cut of a tree is scored at once from subtree sums: the
    inertia ``sum m |p|^2 - |sum m p|^2 / sum m`` of each side.  Returns masks
    of one side.
    """
    n = len(w)
    upper = sparse.triu(sub, k=1).tocoo()
    q = mass * (xy[:, 0] ** 2 + xy[:, 1] ** 2)
    columns = np.c_[w.astype(float), mass, mass * xy[:, 0], mass * xy[:, 1], q]
    grand = columns.sum(axis=0)
    found: list[tuple[float, int, int, np.ndarray]] = []
    for t in range(trees):
        weights = rng.random(len(upper.data)) + 1e-3
        tree = sparse.csgraph.minimum_spanning_tree(
            sparse.csr_matrix((weights, (upper.row, upper.col)), shape=(n, n))
        )
        order, pred = sparse.csgraph.breadth_first_order(tree, 0, directed=False)
        if len(order) < n:
            return []  # not connected
        acc = columns.copy()
        parent = pred.tolist()
        for v in order[:0:-1].tolist():
            acc[parent[v]] += acc[v]
        side = acc[order[1:]]
        other = grand - side
        ok = (
            (side[:, 0] >= min_households)
            & (side[:, 0] <= max_households)
            & (other[:, 0] >= min_households)
            & (other[:, 0] <= max_households)
        )
        if not ok.any():
            continue

        def inertia(s):
            m = np.where(s[:, 1] > 0, s[:, 1], 1.0)
            return s[:, 4] - (s[:, 2] ** 2 + s[:, 3] ** 2) / m

        score = np.where(ok, inertia(side) + inertia(other), np.inf)
        for i in np.argsort(score, kind="stable")[:keep]:
            if np.isfinite(score[i]):
                found.append((float(score[i]), t, int(order[1 + i]), pred))
    found.sort(key=lambda f: (f[0], f[1], f[2]))
    masks = []
    for _, _, node, pred in found[:keep]:
        child = np.flatnonzero(pred >= 0)
        down = sparse.csr_matrix((np.ones(len(child)), (pred[child], child)), shape=(n, n))
        below = sparse.csgraph.breadth_first_order(down, node, directed=True)[0]
        mask = np.zeros(n, dtype=bool)
        mask[below] = True
        masks.append(mask)
    return masks


def recombine(
    adj: sparse.csr_matrix,
    w: np.ndarray,
    xy: np.ndarray,
    labels: np.ndarray,
    *,
    mass: np.ndarray,
    min_households: int,
    max_households: int,
    target: int,
    balance: float,
    seed: int = 0,
    passes: int = 2,
    trees: int = 8,
    clock: WorkClock | None = None,
) -> tuple[np.ndarray, int]:
    """Merge two neighbouring grids and split them again, better, where possible.

    The recombination move of redistricting (ReCom, as in GerryChain), made
    greedy: for every pair of neighbouring grids in turn, the two are merged,
    ``trees`` random spanning trees of the union are drawn, and their cuts
    within the bounds are scored by inertia; the best few are scored exactly
    (moment to the centroid plus balance, as in :func:`plan_cost`) and the
    best replaces the pair if it is cheaper.  Both new grids are connected
    (sides of a tree edge) and within the bounds.

    Parameters
    ----------
    adj, w, xy, labels, mass, min_households, max_households, target, balance
        As for :func:`refine`.
    seed
        Seed of the random spanning trees (the result depends only on it).
    passes
        Passes over all pairs; it stops after a pass that changes nothing.
    trees
        Spanning trees drawn per pair.
    clock
        Counts the work done (units of every merged pair, per tree).

    Returns
    -------
    labels, moves
        Labels ``0..k-1`` and the number of pairs redrawn.
    """
    adj = sparse.csr_matrix(adj)
    rng = np.random.default_rng(seed)
    lab = np.unique(labels, return_inverse=True)[1].astype(np.int64)
    w = np.asarray(w, dtype=np.int64)
    coo = sparse.triu(adj, k=1).tocoo()
    row, col = coo.row, coo.col
    moves = 0

    def grid_cost(nodes: np.ndarray) -> float:
        return _moment(mass[nodes], xy[nodes]) + balance * abs(int(w[nodes].sum()) - target)

    for _ in range(passes):
        a, b = lab[row], lab[col]
        cut = a != b
        pairs = np.unique(np.c_[np.minimum(a[cut], b[cut]), np.maximum(a[cut], b[cut])], axis=0)
        changed = 0
        for g, h in pairs.tolist():
            nodes = np.flatnonzero((lab == g) | (lab == h))
            if clock is not None:
                clock.add(len(lab) // 8 + (trees + 4) * (len(nodes) + 40))
            in_g = lab[nodes] == g
            current = grid_cost(nodes[in_g]) + grid_cost(nodes[~in_g])
            sub = adj[nodes][:, nodes]
            best, best_mask = current - 1e-6 * max(current, 1.0), None
            for mask in _bisections(
                sub, w[nodes], xy[nodes], mass[nodes], rng, trees=trees, keep=3,
                min_households=min_households, max_households=max_households,
            ):  # fmt: skip
                value = grid_cost(nodes[mask]) + grid_cost(nodes[~mask])
                if value < best:
                    best, best_mask = value, mask
            if best_mask is not None:
                lab[nodes[best_mask]] = g
                lab[nodes[~best_mask]] = h
                changed += 1
        moves += changed
        if not changed:
            break
    return lab, moves
