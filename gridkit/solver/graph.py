"""A unit graph partitioned into contiguous grids (:func:`partition_graph`), on arrays only.

Units above the maximum (or with a status of their own) are grids of their own, pieces
below the minimum are ``below_min`` grids or join the own grid they touch, and every
other connected piece is solved by :func:`gridkit.solver.exact.solve_component`.  Also
here: the partition of a graph whose groups of units (compounds) are contracted to one
node each, the cut of a group into the fewest connected pieces that fit a grid, and one
partition from the partitions of disjoint blocks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from gridkit.solver import construct as _construct
from gridkit.solver.exact import solve_component
from gridkit.solver.measures import GridRules, status_of_grid

__all__ = [
    "GraphPartition",
    "combine_partitions",
    "compound_pieces",
    "meets_bounds",
    "partition_contracted",
    "partition_graph",
]


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
        :data:`gridkit.contracts.OWN_GRID_STATUSES`, see
        :func:`gridkit.partition.own_grid_kinds`).  Units above ``max_households``
        always form grids of their own (``oversize_building`` unless said otherwise).
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
    >>> from gridkit.units import adjacency_matrix
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
        local, status, obj, bnd, wt, dt, comp_notes, unreachable = solve_component(
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


def meets_bounds(plan: GraphPartition, total: int, rules: GridRules) -> bool:
    """Whether every grid of ``plan`` is in bounds (or is an oversize building)."""
    if total < rules.min_households:  # one below_min grid is the best there is
        return len(plan.grid_status) == 1
    return all(st in ("ok", "oversize_building") for st in plan.grid_status)


def combine_partitions(
    parts: list[GraphPartition], nodes: list[np.ndarray], n: int
) -> GraphPartition:
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


def compound_pieces(
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


def partition_contracted(adj, w, xy, groups, **kwargs) -> GraphPartition:
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
