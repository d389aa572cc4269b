"""Constructive warm start: recursive spanning-tree bisection of a unit graph.

The heuristic draws random spanning trees of the unit adjacency graph and cuts
one tree edge so that both sides are connected and can each hold a whole
number of grids within the household bounds (a side of ``s`` households is
*count-feasible* when some integer ``a >= 1`` has ``a*min <= s <= a*max``).
It recurses on both sides until every part fits one grid.  Every part is
connected by construction, so the result is always a contiguous plan; it is
within bounds whenever a count-feasible cut was found at every step.

This is the warm start of the CP-SAT model and the fallback plan when the
solver returns nothing better (see ``gridkit.partition``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

__all__ = ["TreePlan", "count_feasible", "count_for", "tree_partition"]


@dataclass(frozen=True)
class TreePlan:
    """A contiguous plan from :func:`tree_partition`.

    Attributes
    ----------
    labels
        Grid label of each node, ``0..k-1``.
    in_bounds
        True when every grid holds between the bounds.
    """

    labels: np.ndarray
    in_bounds: bool


def count_feasible(total: int, min_households: int, max_households: int) -> bool:
    """Whether ``total`` households can be cut into whole grids within the bounds.

    True when some integer ``a >= 1`` satisfies ``a*min <= total <= a*max``.

    Examples
    --------
    >>> count_feasible(850, 400, 800)
    True
    >>> count_feasible(350, 400, 800)
    False
    >>> count_feasible(1250, 500, 600)
    False
    """
    if total <= 0:
        return False
    k_min = -(-total // max_households)
    return k_min * min_households <= total


def _count_feasible_array(total: np.ndarray, min_households: int, max_households: int):
    """:func:`count_feasible` of every element of ``total`` at once."""
    total = np.asarray(total, dtype=np.int64)
    k_min = -(-total // max_households)
    return (total > 0) & (k_min * min_households <= total)


def count_for(total: int, min_households: int, max_households: int, target: int) -> int:
    """Number of grids to aim for: ``round(total / target)`` within the feasible counts.

    Examples
    --------
    >>> count_for(3000, 400, 800, 600)
    5
    """
    return _grid_count(total, min_households, max_households, target)


def _grid_count(total: int, rules_min: int, rules_max: int, target: int) -> int:
    """Number of grids to aim for: ``round(total/target)`` clipped to the feasible range."""
    k_min = max(1, -(-total // rules_max))
    k_max = max(1, total // rules_min)
    k = max(1, round(total / target))
    if k_min <= k_max:
        return min(max(k, k_min), k_max)
    return max(k, k_min)


def _best_cut(
    adj: sparse.csr_matrix,
    w: np.ndarray,
    rng: np.random.Generator,
    *,
    min_households: int,
    max_households: int,
    target: int,
    tries: int,
) -> tuple[np.ndarray, bool]:
    """Find a tree-edge cut of a connected graph; return (mask of one side, strict).

    ``strict`` is True when both sides are count-feasible.  The cut aims at
    ``floor(k/2)`` of ``k`` target-size grids on one side.
    """
    n = len(w)
    total = int(w.sum())
    k = max(2, _grid_count(total, min_households, max_households, target))
    goal = total * (k // 2) / k
    upper = sparse.triu(adj, k=1).tocoo()
    best: tuple[float, np.ndarray, int] | None = None  # (score, pred, node)
    best_strict = False
    for _ in range(tries):
        weights = rng.random(len(upper.data)) + 1e-3
        tree = csgraph.minimum_spanning_tree(
            sparse.csr_matrix((weights, (upper.row, upper.col)), shape=(n, n))
        )
        order, pred = csgraph.breadth_first_order(tree, 0, directed=False)
        acc, parent = w.tolist(), pred.tolist()
        for v in order[:0:-1].tolist():  # leaves first: subtree sums
            acc[parent[v]] += acc[v]
        sub = np.asarray(acc, dtype=np.int64)
        side = sub[order[1:]]
        other = total - side
        strict = _count_feasible_array(side, min_households, max_households) & (
            _count_feasible_array(other, min_households, max_households)
        )
        score = np.abs(np.minimum(side, other) - min(goal, total - goal)) / total
        if strict.any():
            score = np.where(strict, score, np.inf)
            i = int(np.argmin(score))
            if not best_strict or score[i] < best[0]:
                best, best_strict = (float(score[i]), pred, int(order[1 + i])), True
        elif not best_strict:
            i = int(np.argmin(score))
            if best is None or score[i] < best[0]:
                best = (float(score[i]), pred, int(order[1 + i]))
        if best_strict and best[0] < 0.02:
            break
    assert best is not None
    _, pred, node = best
    mask = np.zeros(n, dtype=bool)
    mask[node] = True
    order, _ = csgraph.breadth_first_order(_tree_from_pred(pred), node, directed=True)
    mask[order] = True
    return mask, best_strict


def _tree_from_pred(pred: np.ndarray) -> sparse.csr_matrix:
    """Directed parent→child tree from a predecessor array (root has pred < 0)."""
    child = np.flatnonzero(pred >= 0)
    n = len(pred)
    return sparse.csr_matrix((np.ones(len(child)), (pred[child], child)), shape=(n, n))


def tree_partition(
    adj: sparse.csr_matrix,
    weights: np.ndarray,
    *,
    min_households: int,
    max_households: int,
    target: int,
    seed: int = 0,
    tries: int = 60,
) -> TreePlan:
    """Split a connected graph into contiguous parts by recursive tree bisection.

    Parameters
    ----------
    adj
        Symmetric adjacency matrix of a connected graph.
    weights
        Households of each node.
    min_households, max_households
        Bounds of one grid.
    target
        Preferred households per grid; sets how many grids are aimed for.
    seed
        Seed of the random spanning trees (the result depends only on it).
    tries
        Spanning trees drawn per bisection before settling for the best cut.

    Returns
    -------
    TreePlan
        Labels and whether every part is within the bounds.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import sparse
    >>> path = sparse.diags([1.0, 1.0], [-1, 1], shape=(6, 6)).tocsr()
    >>> plan = tree_partition(path, np.full(6, 200), min_households=400,
    ...                       max_households=800, target=600)
    >>> plan.in_bounds, np.bincount(plan.labels).tolist()
    (True, [3, 3])
    """
    w = np.asarray(weights, dtype=np.int64)
    adj = sparse.csr_matrix(adj)
    rng = np.random.default_rng(seed)
    labels = np.full(len(w), -1, dtype=np.int64)
    in_bounds = True
    stack = [np.arange(len(w))]
    next_label = 0
    while stack:
        nodes = stack.pop()
        total = int(w[nodes].sum())
        fits = total <= max_households or len(nodes) == 1
        if fits or _grid_count(total, min_households, max_households, target) < 2:
            labels[nodes] = next_label
            next_label += 1
            in_bounds &= min_households <= total <= max_households
            continue
        mask, strict = _best_cut(
            adj[nodes][:, nodes],
            w[nodes],
            rng,
            min_households=min_households,
            max_households=max_households,
            target=target,
            tries=tries,
        )
        in_bounds &= strict
        stack.append(nodes[~mask])
        stack.append(nodes[mask])
    return TreePlan(labels=labels, in_bounds=bool(in_bounds))
