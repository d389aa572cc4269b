"""A proof that contiguity alone keeps a community's bounds out of reach, and its words.

:func:`cut_unit_proof` looks for a unit whose removal leaves pieces too small to be grids
of their own: they all share its grid, and when that grid holds more than the maximum no
contiguous plan keeps the bounds.  (The proof that ignores contiguity, that the
households cannot be grouped within the bounds at all, is
:func:`gridkit.solver.cpsat.bounds_reachable`.)
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from gridkit.solver.measures import GridRules

__all__ = [
    "cut_note",
    "cut_unit_proof",
]


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


def cut_note(cut: str) -> str:
    """The report's words for a :func:`cut_unit_proof`."""
    return (
        f"proved: no contiguous plan keeps the bounds, because {cut}; the plan keeps the "
        "bounds as nearly as possible. Merge this area with a neighbouring community or "
        "change the bounds"
    )
