"""A set-partitioning lower bound over every possible grid (private helpers).

When buildings are large (apartment blocks of ~150 households, 3-6 to a
grid), the number of connected groups of buildings that could form a grid is
small enough to list.  Each such group gets its exact cost - household-weighted
distance to its best centre plus the balance term - and the linear relaxation
of "choose groups covering every building exactly once, ``k`` of them" is a
lower bound on every plan with ``k`` grids.  It is much tighter than CP-SAT's
own relaxation on such data, where the fractional centre-based model can
split a building across grids to hit the target load exactly (see
docs/design.md, "Set-partitioning bound").

Everything here works on numpy arrays: no geometry, no GeoDataFrames.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

__all__ = ["connected_groups", "group_costs", "partition_bounds"]

#: Array entries (group x member x centre) handled at once by :func:`group_costs`.
CHUNK = 2_000_000


def connected_groups(
    adj: sparse.csr_matrix,
    weights: np.ndarray,
    *,
    min_households: int,
    max_households: int,
    limit: int,
) -> list[list[int]] | None:
    """Every connected set of units holding ``min_households``-``max_households``.

    Enumerates connected induced subgraphs with the ESU scheme (Wernicke 2006,
    "Efficient detection of network motifs"): each set is grown from its
    smallest unit ``v`` by adding units ``> v`` that neighbour the set but not
    an earlier-considered part of it, so every connected set is produced once.
    A branch stops as soon as its load would pass ``max_households`` (weights
    are non-negative).  NetworkX has no weight-bounded enumeration of connected
    subgraphs, hence this small routine.

    Returns
    -------
    list of list of int, or None
        The sets (unit indices), or None when there are more than ``limit``
        of them (the bound is then not worth its time).

    Examples
    --------
    Four 200-household units in a row:

    >>> adj = sparse.csr_matrix(np.eye(4, k=1) + np.eye(4, k=-1))
    >>> sorted(map(sorted, connected_groups(adj, np.full(4, 200), min_households=400,
    ...                                      max_households=800, limit=100)))
    [[0, 1], [0, 1, 2], [0, 1, 2, 3], [1, 2], [1, 2, 3], [2, 3]]
    """
    n = len(weights)
    w = np.asarray(weights, dtype=np.int64).tolist()
    nbrs = [set(adj.indices[adj.indptr[i] : adj.indptr[i + 1]].tolist()) - {i} for i in range(n)]
    found: list[list[int]] = []
    for v in range(n):
        if w[v] > max_households:
            continue
        stack = [([v], {x for x in nbrs[v] if x > v}, w[v], nbrs[v] | {v})]
        while stack:
            members, extension, load, seen = stack.pop()
            if load >= min_households:
                found.append(members)
                if len(found) > limit:
                    return None
            extension = set(extension)
            while extension:
                x = extension.pop()
                if load + w[x] > max_households:
                    continue
                grown = extension | {y for y in nbrs[x] if y > v and y not in seen}
                stack.append(([*members, x], grown, load + w[x], seen | nbrs[x]))
    return found


def group_costs(
    groups: list[list[int]], weights: np.ndarray, xy: np.ndarray, *, lam: int, target: int
) -> np.ndarray:
    """Cost of each group as a grid: ``min_c sum_i w_i round(|p_i - p_c|) + lam |load - target|``.

    The centre ``c`` is the best member, as in the CP-SAT model's objective
    (which rounds each unit-centre distance to whole metres).

    Examples
    --------
    >>> xy = np.array([[0.0, 0.0], [30.0, 0.0], [60.0, 0.0]])
    >>> group_costs([[0, 1, 2], [0, 1]], np.full(3, 200), xy, lam=10, target=600).tolist()
    [12000.0, 8000.0]
    """
    w = np.asarray(weights, dtype=np.float64)
    dist = np.rint(np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1]))
    weighted = w[:, None] * dist  # weighted[i, c]: unit i's cost if c is its centre
    sizes = np.fromiter((len(g) for g in groups), dtype=np.int64, count=len(groups))
    costs = np.empty(len(groups))
    for size in np.unique(sizes):
        rows = np.flatnonzero(sizes == size)
        members = np.array([groups[r] for r in rows], dtype=np.int64).reshape(len(rows), size)
        step = max(1, CHUNK // (size * size))  # bounded memory: CHUNK entries at a time
        for lo in range(0, len(rows), step):
            m = members[lo : lo + step]
            per_centre = weighted[m[:, :, None], m[:, None, :]].sum(axis=1)
            load = w[m].sum(axis=1)
            costs[rows[lo : lo + step]] = per_centre.min(axis=1) + lam * np.abs(load - target)
    return costs


def partition_bounds(
    groups: list[list[int]], costs: np.ndarray, n: int, counts: list[int]
) -> dict[int, float]:
    """Lower bound on the objective of every plan with ``k`` grids, for each ``k``.

    The LP relaxation of set partitioning, ``min sum_g cost_g y_g`` subject to
    every unit covered exactly once and ``sum_g y_g = k``, ``y >= 0``, solved
    by HiGHS's dual simplex (:func:`scipy.optimize.linprog`).  An infeasible LP
    proves that no plan has ``k`` grids (bound ``inf``).  The objective is
    integral, so bounds are rounded up, after a relative 1e-6 is taken off for
    the LP's tolerances.

    Examples
    --------
    Three 300-household units in a row, groups {0,1}, {1,2} and all three:

    >>> partition_bounds([[0, 1], [1, 2], [0, 1, 2]], np.array([5.0, 6.0, 9.0]), 3, [1, 2])
    {1: 9.0, 2: inf}
    """
    rows = np.concatenate([np.asarray(g, dtype=np.int64) for g in groups])
    cols = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    cover = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, len(groups)))
    a_eq = sparse.vstack([cover, sparse.csr_matrix(np.ones((1, len(groups))))]).tocsr()
    bounds: dict[int, float] = {}
    for k in counts:
        result = linprog(
            costs,
            A_eq=a_eq,
            b_eq=np.r_[np.ones(n), k],
            bounds=(0, None),
            method="highs-ds",
            options={"presolve": False},  # twice as fast on these LPs (0.4 s against 0.8)
        )
        if result.status == 2:  # infeasible
            bounds[k] = math.inf
        elif result.status == 0:
            bounds[k] = float(math.ceil(result.fun - 1e-6 * max(1.0, abs(result.fun))))
    return bounds
