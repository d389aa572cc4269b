"""The set-partitioning bound's building blocks (:mod:`gridkit._columns`)."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse import csgraph
from strategies import lattices

from gridkit.solver.lower_bound import connected_groups, group_costs, partition_bounds

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _brute_force_groups(adj, w, lo, hi):
    """Every connected subset with lo <= load <= hi, by trying all subsets."""
    found = set()
    for size in range(1, len(w) + 1):
        for subset in itertools.combinations(range(len(w)), size):
            members = list(subset)
            if not lo <= w[members].sum() <= hi:
                continue
            sub = adj[members][:, members]
            if csgraph.connected_components(sub, directed=False)[0] == 1:
                found.add(subset)
    return found


@PROPERTY
@given(
    lattice=lattices(min_side=1, max_side=3, min_households=50, max_households=450, holes=True),
    lo=st.integers(1, 900),
    extra=st.integers(0, 600),
)
def test_property_connected_groups_match_brute_force(lattice, lo, extra):
    """Exactly the connected sets within the bounds, each once (checked against all subsets)."""
    adj, w, _ = lattice
    hi = lo + extra
    groups = connected_groups(adj, w, min_households=lo, max_households=hi, limit=10**6)
    listed = [tuple(sorted(g)) for g in groups]
    assert len(listed) == len(set(listed))  # no group twice
    assert set(listed) == _brute_force_groups(adj, w, lo, hi)


def test_connected_groups_gives_up_past_the_limit():
    """More groups than ``limit``: None (the bound is skipped), not a partial list."""
    side = 4
    idx = np.arange(side * side).reshape(side, side)
    pairs = np.vstack([np.c_[idx[:, :-1].ravel(), idx[:, 1:].ravel()],
                       np.c_[idx[:-1].ravel(), idx[1:].ravel()]])  # fmt: skip
    from gridkit.units.adjacency import adjacency_matrix

    adj = adjacency_matrix(side * side, pairs[:, 0], pairs[:, 1])
    w = np.full(side * side, 100)
    every = connected_groups(adj, w, min_households=400, max_households=800, limit=10**6)
    assert len(every) > 100
    assert connected_groups(adj, w, min_households=400, max_households=800, limit=100) is None
    assert len(connected_groups(adj, w, min_households=400, max_households=800,
                                limit=len(every))) == len(every)  # fmt: skip


@PROPERTY
@given(lattice=lattices(min_side=1, max_side=3, min_households=50, max_households=450))
def test_property_group_costs_are_the_best_centre(lattice):
    """A group's cost is its cheapest member as centre, plus the balance term."""
    adj, w, xy = lattice
    groups = connected_groups(adj, w, min_households=1, max_households=2000, limit=10**6)
    costs = group_costs(groups, w, xy, lam=7, target=600)
    for group, cost in zip(groups, costs, strict=True):
        g = np.asarray(group)
        d = np.rint(np.hypot(xy[g, None, 0] - xy[None, g, 0], xy[g, None, 1] - xy[None, g, 1]))
        expected = (w[g][:, None] * d).sum(axis=0).min() + 7 * abs(int(w[g].sum()) - 600)
        assert cost == expected


def test_partition_bounds_per_count():
    """Four units in a row, groups of two or three adjacent ones: the LP per count."""
    groups = [[0, 1], [1, 2], [2, 3], [0, 1, 2], [1, 2, 3]]
    costs = np.array([10.0, 1.0, 10.0, 4.0, 4.0])
    bounds = partition_bounds(groups, costs, 4, [1, 2, 3])
    # two grids: {0,1}+{2,3} = 20 is the only partition, and the LP cannot do better
    assert bounds[2] == 20.0
    # one or three groups cannot cover four units exactly once
    assert bounds[1] == bounds[3] == np.inf
