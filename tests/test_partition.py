"""Tests for gridkit.partition, gridkit._construct and gridkit._cpsat.

Lattices are drawn as ASCII pictures of household counts (GerryChain's
``three_by_three_grid``): one number per building, ``.`` where there is none,
north at the top, 30 m between neighbours.  The tests assert what the product
promises (contiguous grids, every unit in one grid, bounds met when they can
be, honest statuses, reproducible plans), never exact labels.
"""

from __future__ import annotations

import math
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import sparse
from scipy.sparse import csgraph
from strategies import (
    from_picture,
    household_bounds,
    lattice_from_weights,
    lattices,
)

from gridkit.checks import is_contiguous, within_bounds
from gridkit.contracts import STATUSES
from gridkit.errors import InputError
from gridkit.partition import (
    GROUP_UNITS,
    GraphPartition,
    GridRules,
    number_grids,
    partition_community,
    partition_graph,
)
from gridkit.solver import construct as _construct
from gridkit.solver import cpsat as _cpsat
from gridkit.solver.exact import _set_partition_bounds, _solve_by_count
from gridkit.solver.measures import count_floors as _count_floors
from gridkit.units.adjacency import adjacency_matrix, rook_pairs

#: CP-SAT deterministic-time budget of the tests (about 5x that in wall time on a
#: small CI box); the warm start already meets the bounds, so this is plenty.
LIMIT = 0.1

PROPERTY = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# ------------------------------------------------------------------ fixtures


def three_by_three():
    """Nine 100-household buildings, 900 households: exactly two grids fit.

    100 100 100
    100 100 100
    100 100 100
    """
    return from_picture(three_by_three.__doc__)


def five_by_four():
    """Twenty mixed buildings, 2,660 households: four to six grids fit.

    120 180  90 200 150
     60 140 170  80 190
    200  30 110 160 130
     90 170 150 100 140
    """
    return from_picture(five_by_four.__doc__)


def two_blocks():
    """Two blocks split by a river, 800 + 1,200 households: two pieces, three grids.

    200 200  .  300 300
    200 200  .  300 300
    """
    return from_picture(two_blocks.__doc__)


def tower_with_annex():
    """A 900-household tower, a 50-household annex touching only the tower, and two more.

    The annex cannot be a grid on its own (50 < 400) and its only neighbour is
    the tower, so it joins the tower's grid.

     50 900 300 300
    """
    return from_picture(tower_with_annex.__doc__)


def hourglass():
    """Contiguity-infeasible: 1,200 households fit two grids by count, but not by shape.

    Any contiguous split leaves a 300 on its own (below 400) or puts 900 together
    (above 800), so some grid must be out of bounds.

    300 600 300
    """
    return from_picture(hourglass.__doc__)


def star():
    """Contiguity-infeasible star: three 350s around a 100 hub, 1,150 households.

    Two grids of 400–800 would need two leaves together, but leaves touch only
    the hub.

     .  350  .
    350 100 350
    """
    return from_picture(star.__doc__)


# ------------------------------------------------------------------- helpers


def grid_loads(result: GraphPartition, weights: np.ndarray) -> np.ndarray:
    return np.bincount(result.labels, weights=weights).astype(np.int64)


def assert_valid_plan(
    adj: sparse.spmatrix, weights: np.ndarray, result: GraphPartition, rules: GridRules
) -> None:
    """Invariants of every plan: coverage, dense labels, contiguity, honest statuses."""
    adj = sparse.csr_matrix(adj)
    n = len(weights)
    labels = result.labels
    assert labels.shape == (n,)
    assert (labels >= 0).all(), "every unit is in a grid"
    k = int(labels.max()) + 1 if n else 0
    assert set(labels.tolist()) == set(range(k)), "labels are 0..k-1"
    assert len(result.grid_status) == k
    loads = np.bincount(labels, weights=weights, minlength=k).astype(np.int64)
    oversize = weights > rules.max_households
    for g in range(k):
        members = np.flatnonzero(labels == g)
        n_parts, _ = csgraph.connected_components(adj[members][:, members], directed=False)
        assert n_parts == 1, f"grid {g} (units {members.tolist()}) is not contiguous"
        if oversize[members].any():
            expected = "oversize_building"
        elif loads[g] < rules.min_households:
            expected = "below_min"
        elif loads[g] > rules.max_households:
            expected = "above_max"
        else:
            expected = "ok"
        assert result.grid_status[g] == expected, (g, int(loads[g]), result.grid_status)
    assert set(result.grid_status) <= set(STATUSES)
    assert result.solver_status in {"OPTIMAL", "FEASIBLE", "HEURISTIC"}


def assert_in_bounds(weights: np.ndarray, result: GraphPartition, rules: GridRules) -> None:
    loads = grid_loads(result, weights)
    assert result.grid_status == ["ok"] * len(loads)
    assert ((loads >= rules.min_households) & (loads <= rules.max_households)).all(), loads
    total = int(weights.sum())
    k = len(loads)
    assert math.ceil(total / rules.max_households) <= k <= total // rules.min_households


def violation(loads: np.ndarray, rules: GridRules) -> int:
    """Households outside the bounds, summed over grids."""
    return int(
        np.clip(rules.min_households - loads, 0, None).sum()
        + np.clip(loads - rules.max_households, 0, None).sum()
    )


def min_violation(adj: sparse.spmatrix, weights: np.ndarray, rules: GridRules) -> int:
    """Smallest total violation of any contiguous partition (exact; small graphs only).

    Dynamic programme over bitmasks: the block holding the lowest unit of the
    remaining set is any connected subset containing it.
    """
    adj = sparse.csr_matrix(adj)
    n = len(weights)
    assert n <= 12
    nbr = [
        int(sum(1 << int(j) for j in adj.indices[adj.indptr[i] : adj.indptr[i + 1]]))
        for i in range(n)
    ]

    def connected(mask: int) -> bool:
        start = mask & -mask
        seen, frontier = start, start
        while frontier:
            i = frontier.bit_length() - 1
            frontier &= ~(1 << i)
            new = nbr[i] & mask & ~seen
            seen |= new
            frontier |= new
        return seen == mask

    cost = {}
    for mask in range(1, 1 << n):
        if connected(mask):
            load = sum(int(weights[i]) for i in range(n) if mask >> i & 1)
            cost[mask] = violation(np.array([load]), rules)
    best = [0] + [math.inf] * ((1 << n) - 1)
    for mask in range(1, 1 << n):
        low = mask & -mask
        rest = mask & ~low
        sub = rest
        while True:
            block = sub | low
            if block in cost:
                best[mask] = min(best[mask], cost[block] + best[mask & ~block])
            if sub == 0:
                break
            sub = (sub - 1) & rest
    return int(best[(1 << n) - 1])


def solve(lattice, rules: GridRules | None = None, **kwargs) -> GraphPartition:
    adj, w, xy = lattice
    kwargs.setdefault("time_limit", LIMIT)
    return partition_graph(adj, w, xy, rules=rules, **kwargs)


# ------------------------------------------------------- feasible lattices


@pytest.mark.parametrize("lattice", [three_by_three, five_by_four], ids=lambda f: f.__name__)
def test_feasible_lattice_meets_bounds(lattice):
    adj, w, xy = lattice()
    rules = GridRules()
    result = solve((adj, w, xy), rules)
    assert_valid_plan(adj, w, result, rules)
    assert_in_bounds(w, result, rules)
    assert result.solver_status in {"OPTIMAL", "FEASIBLE"}
    assert result.objective is not None and result.objective >= 0


def test_three_by_three_makes_two_grids():
    adj, w, xy = three_by_three()
    result = solve((adj, w, xy))
    assert sorted(grid_loads(result, w).tolist()) in ([400, 500], [500, 400])


def test_tight_bounds_force_the_grid_count():
    """1,200 households with bounds 550–650: only two grids of 550–650 fit."""
    adj, w, xy = lattice_from_weights([[100] * 4] * 3)
    rules = GridRules(min_households=550, max_households=650)
    result = solve((adj, w, xy), rules)
    assert_valid_plan(adj, w, result, rules)
    assert_in_bounds(w, result, rules)
    assert len(result.grid_status) == 2


def test_target_steers_the_number_of_grids():
    """3,200 households: a target of 410 asks for more grids than a target of 790."""
    adj, w, xy = lattice_from_weights([[200] * 4] * 4)
    few = solve((adj, w, xy), GridRules(target_households=790))
    many = solve((adj, w, xy), GridRules(target_households=410))
    for result in (few, many):
        assert_valid_plan(adj, w, result, GridRules())
        assert_in_bounds(w, result, GridRules())
    assert len(few.grid_status) < len(many.grid_status)


def test_gap_is_consistent():
    adj, w, xy = five_by_four()
    result = solve((adj, w, xy))
    assert result.bound is not None and result.objective is not None
    assert result.bound <= result.objective + 1e-6
    assert 0.0 <= result.gap <= 1.0
    labels = np.zeros(1, dtype=np.int64)
    assert GraphPartition(labels, ["ok"], "OPTIMAL", objective=0.0, bound=0.0).gap == 0.0
    assert GraphPartition(labels, ["ok"], "OPTIMAL", objective=10.0, bound=None).gap is None
    assert GraphPartition(labels, ["ok"], "FEASIBLE", objective=10.0, bound=7.5).gap == 0.25


def test_no_time_to_solve_keeps_the_warm_start():
    """With no CP-SAT budget the warm start is the plan: still complete and in bounds."""
    adj, w, xy = lattice_from_weights(
        np.random.default_rng(1).integers(12, 200, size=(8, 8)).tolist()
    )
    rules = GridRules()
    result = solve((adj, w, xy), rules, time_limit=1e-9, prove=True)
    assert result.solver_status == "HEURISTIC"
    assert any("kept the warm-start plan" in note for note in result.notes)
    assert_valid_plan(adj, w, result, rules)
    assert_in_bounds(w, result, rules)
    assert result.objective is not None and result.bound is None


def test_no_time_for_the_multilevel_search_still_gives_a_complete_plan():
    """The multilevel search makes its first start whatever the budget."""
    adj, w, xy = lattice_from_weights(
        np.random.default_rng(1).integers(12, 200, size=(8, 8)).tolist()
    )
    rules = GridRules()
    result = solve((adj, w, xy), rules, time_limit=1e-9)
    assert result.solver_status == "FEASIBLE"
    assert_valid_plan(adj, w, result, rules)
    assert_in_bounds(w, result, rules)
    assert result.bound is not None and result.bound <= result.objective


# ------------------------------------------------------- infeasible inputs


def test_total_below_min_is_one_below_min_grid():
    adj, w, xy = lattice_from_weights([[60, 60], [60, 70]])
    result = solve((adj, w, xy))
    assert result.labels.tolist() == [0, 0, 0, 0]
    assert result.grid_status == ["below_min"]
    assert result.solver_status == "OPTIMAL"


def test_single_oversize_building_is_its_own_grid():
    adj, w, xy = lattice_from_weights([[200, 950, 200], [200, 200, 200]])
    rules = GridRules()
    result = solve((adj, w, xy), rules)
    assert_valid_plan(adj, w, result, rules)
    tower = result.labels[1]
    assert (result.labels == tower).sum() == 1, "the tower is alone in its grid"
    assert result.grid_status[tower] == "oversize_building"
    others = [s for g, s in enumerate(result.grid_status) if g != tower]
    assert others and set(others) == {"ok"}, "the other 1,000 households still fit two grids"
    assert any("above max_households" in note for note in result.notes)


def test_piece_touching_only_an_oversize_building_joins_it():
    adj, w, xy = tower_with_annex()
    rules = GridRules()
    result = solve((adj, w, xy), rules)
    assert_valid_plan(adj, w, result, rules)
    annex, tower, east = 0, 1, 2
    assert result.labels[annex] == result.labels[tower]
    assert result.labels[east] != result.labels[tower]
    assert result.grid_status[result.labels[tower]] == "oversize_building"
    assert result.grid_status[result.labels[east]] == "ok"


def test_isolated_small_piece_becomes_below_min_grid():
    """A 100-household piece cut off from everything else stays on its own."""
    adj, w, xy = from_picture(
        """
        200 200 200  .  100
        200 200 200  .   .
        """
    )
    rules = GridRules()
    result = solve((adj, w, xy), rules)
    assert_valid_plan(adj, w, result, rules)
    lone = result.labels[3]
    assert (result.labels == lone).sum() == 1
    assert result.grid_status[lone] == "below_min"
    assert result.grid_status.count("ok") == len(result.grid_status) - 1


@pytest.mark.parametrize("lattice", [hourglass, star], ids=lambda f: f.__name__)
def test_contiguity_infeasible_gives_complete_plan_with_honest_statuses(lattice):
    adj, w, xy = lattice()
    rules = GridRules()
    assert _construct.count_feasible(int(w.sum()), 400, 800), "feasible by count alone"
    result = solve((adj, w, xy), rules)
    assert_valid_plan(adj, w, result, rules)
    assert set(result.grid_status) - {"ok"}, "some grid must be out of bounds"
    # said in words: proved by a cut unit (gridkit.partition.cut_unit_proof) or soft bounds
    assert any(
        "soft bounds" in note or "proved: no contiguous plan keeps the bounds" in note
        for note in result.notes
    )
    # The plan is the best possible one: no contiguous plan is closer to the bounds.
    loads = grid_loads(result, w)
    assert violation(loads, rules) == min_violation(adj, w, rules)
    assert result.bound is None, "no proven bound is claimed for a soft-bounded plan"


def test_two_components_are_partitioned_separately():
    adj, w, xy = two_blocks()
    rules = GridRules()
    result = solve((adj, w, xy), rules)
    assert_valid_plan(adj, w, result, rules)
    assert_in_bounds(w, result, rules)
    west, east = [0, 1, 4, 5], [2, 3, 6, 7]
    assert not set(result.labels[west]) & set(result.labels[east])
    assert len(set(result.labels[west])) == 1
    assert len(set(result.labels[east])) == 2
    assert any("2 separate pieces" in note for note in result.notes)


def test_degenerate_graphs():
    empty = partition_graph(
        sparse.csr_matrix((0, 0)), np.array([], dtype=np.int64), np.zeros((0, 2))
    )
    assert empty.labels.tolist() == [] and empty.grid_status == []

    rules = GridRules()
    adj = adjacency_matrix(3, np.array([0, 1]), np.array([1, 2]))
    xy = np.array([[0.0, 0.0], [30.0, 0.0], [60.0, 0.0]])
    zeros = partition_graph(adj, np.zeros(3, dtype=np.int64), xy, rules=rules)
    assert_valid_plan(adj, np.zeros(3, dtype=np.int64), zeros, rules)
    assert zeros.grid_status == ["below_min"]

    towers = np.array([900, 1000, 850])
    all_big = partition_graph(adj, towers, xy, rules=rules)
    assert_valid_plan(adj, towers, all_big, rules)
    assert all_big.grid_status == ["oversize_building"] * 3

    isolated = sparse.csr_matrix((3, 3))
    alone = partition_graph(isolated, np.array([500, 600, 100]), xy, rules=rules)
    assert_valid_plan(isolated, np.array([500, 600, 100]), alone, rules)
    assert sorted(alone.grid_status) == ["below_min", "ok", "ok"]


def test_zero_household_units_are_covered():
    adj, w, xy = from_picture(
        """
        0 300 300 0
        0 300 300 0
        """
    )
    rules = GridRules()
    result = solve((adj, w, xy), rules)
    assert_valid_plan(adj, w, result, rules)
    assert_in_bounds(w, result, rules)


# ------------------------------------------------------------ determinism


@pytest.mark.parametrize("workers", [1, 2])
def test_same_inputs_same_plan(workers):
    adj, w, xy = from_picture(
        """
        120 180  90 200 150 110
         60 140 170  80 190  70
        200  30 110 160 130 180
         90 170 150 100 140  60
        """
    )
    first = solve((adj, w, xy), workers=workers)
    second = solve((adj.copy(), w.copy(), xy.copy()), workers=workers)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert first.grid_status == second.grid_status
    assert first.objective == second.objective


def test_tree_partition_depends_only_on_seed():
    adj, w, _ = five_by_four()
    kwargs = {"min_households": 400, "max_households": 800, "target": 600}
    a = _construct.tree_partition(adj, w, seed=3, **kwargs)
    b = _construct.tree_partition(adj, w, seed=3, **kwargs)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.in_bounds == b.in_bounds


# --------------------------------------------------------------- properties


@PROPERTY
@given(lattice=lattices(min_side=2, max_side=6))
def test_property_plan_is_complete_and_contiguous(lattice):
    adj, w, _ = lattice
    rules = GridRules()
    result = solve(lattice, rules, time_limit=0.05)
    assert_valid_plan(adj, w, result, rules)
    plan = _construct.tree_partition(adj, w, min_households=400, max_households=800, target=600)
    if int(w.sum()) > rules.max_households and plan.in_bounds:
        assert_in_bounds(w, result, rules)


@PROPERTY
@given(
    lattice=lattices(min_side=1, max_side=6, max_households=600, holes=True),
    seed=st.integers(0, 2**16),
)
def test_property_tree_partition_parts_are_connected(lattice, seed):
    adj, w, _ = lattice
    plan = _construct.tree_partition(
        adj, w, min_households=300, max_households=500, target=400, seed=seed
    )
    k = int(plan.labels.max()) + 1
    assert set(plan.labels.tolist()) == set(range(k))
    loads = np.bincount(plan.labels, weights=w).astype(np.int64)
    for g in range(k):
        members = np.flatnonzero(plan.labels == g)
        n_parts, _ = csgraph.connected_components(adj[members][:, members], directed=False)
        assert n_parts == 1
    # A part holds more than max_households only if it is a single (oversize) building.
    big = np.flatnonzero(loads > 500)
    assert all((plan.labels == g).sum() == 1 for g in big)
    assert plan.in_bounds == bool(((loads >= 300) & (loads <= 500)).all())


@settings(max_examples=200, deadline=None)
@given(total=st.integers(-5, 6000), bounds=household_bounds(min_value=1, max_value=1500))
def test_property_count_feasible_matches_definition(total, bounds):
    lo, hi = bounds
    brute = any(a * lo <= total <= a * hi for a in range(1, max(total, 0) // lo + 2))
    assert _construct.count_feasible(total, lo, hi) == brute


@PROPERTY
@given(
    lattice=lattices(min_side=1, max_side=3, min_households=12, max_households=200),
    lo=st.integers(100, 400),
    width=st.integers(0, 250),
)
def test_property_soft_plan_minimises_violation(lattice, lo, width):
    """Whatever the bounds, the plan is as close to them as any contiguous plan can be."""
    adj, w, _ = lattice
    rules = GridRules(min_households=lo, max_households=max(lo + width, int(w.max())))
    result = solve(lattice, rules, time_limit=0.05)
    assert_valid_plan(adj, w, result, rules)
    assume(result.solver_status == "OPTIMAL")
    assert violation(grid_loads(result, w), rules) == min_violation(adj, w, rules)


# --------------------------------------------------------------- CP-SAT model


def test_allowed_pairs_precedence_and_weight_reach():
    """On a path, unit 3 can join centre 0 only through 1 and 2, and only if the path fits."""
    adj, w, _ = lattice_from_weights([[300, 300, 300, 300]])
    dist = csgraph.dijkstra(adj, directed=False)
    pair_i, pair_c, preds = _cpsat.allowed_pairs(adj, w, dist, max_households=800)
    pairs = set(zip(pair_i.tolist(), pair_c.tolist(), strict=True))
    assert {(i, i) for i in range(4)} <= pairs
    assert (1, 0) in pairs and (2, 0) not in pairs  # 900 households on the path 0-1-2
    for p, (i, c) in enumerate(zip(pair_i, pair_c, strict=True)):
        if i == c:
            assert preds[p] == []
        else:
            assert preds[p], "a non-centre pair has a closer neighbour"
            for q in preds[p]:
                assert pair_c[q] == c and dist[c, pair_i[q]] < dist[c, i]
    loose = _cpsat.allowed_pairs(adj, w, dist, max_households=None)
    assert len(loose[0]) == 16


def _free_model(adj, w, xy, rules):
    dist = csgraph.dijkstra(adj, directed=False)
    return _cpsat.build_model(
        adj, w, xy, dist, min_households=rules.min_households,
        max_households=rules.max_households, target=rules.target, balance_weight=30, hard=True,
    )  # fmt: skip


def test_restrict_fixes_the_number_of_grids_and_cuts_off_the_objective():
    adj, w, xy = five_by_four()  # 2,660 households: 4 to 6 grids
    rules = GridRules()
    model = _free_model(adj, w, xy, rules)
    assert model.count_range == (4, 6)
    for k in (4, 6):
        _cpsat.restrict(model, count=k)
        result = _cpsat.solve(model, time_limit=5, seed=0)
        assert result.status == "OPTIMAL"
        assert len(np.unique(result.labels)) == k
    _cpsat.restrict(model, count=None)
    free = _cpsat.solve(model, time_limit=5, seed=0)
    assert free.status == "OPTIMAL"
    _cpsat.restrict(model, cutoff=int(free.objective) - 1)
    assert _cpsat.solve(model, time_limit=5, seed=0).status == "INFEASIBLE"
    _cpsat.restrict(model, cutoff=None)
    assert _cpsat.solve(model, time_limit=5, seed=0).objective == free.objective


#: Small lattices of 60-260-household buildings: one to a few grids each.
SEVERAL_GRIDS = lattices(min_side=2, max_side=4, min_households=60, max_households=260)


def _model_of_several_grids(lattice, rules):
    """The free model of a lattice that needs more than one grid (else the example is skipped)."""
    adj, w, xy = lattice
    assume(int(w.sum()) > rules.max_households)
    return _free_model(adj, w, xy, rules)


@PROPERTY
@given(lattice=SEVERAL_GRIDS)
def test_property_count_bounds_are_lower_bounds(lattice):
    """No plan with k grids beats the floor of k or the set-partitioning LP bound of k.

    The LP bound is ``inf`` only when no plan has k grids, and it is skipped (``{}``) only
    when a full grid holds more than ``GROUP_UNITS`` average buildings.
    """
    adj, w, xy = lattice
    rules = GridRules()
    model = _model_of_several_grids(lattice, rules)
    lo, hi = model.count_range
    floors = _count_floors(w, xy, 30, rules, range(lo, hi + 1))
    lp = _set_partition_bounds(adj, w, xy, 30, rules, list(range(lo, hi + 1)))
    if rules.max_households > GROUP_UNITS * w.mean():
        assert lp == {}
    else:  # 16 units at most: few groups, never past the limit
        assert set(lp) == set(range(lo, hi + 1))
    for k in range(lo, hi + 1):
        _cpsat.restrict(model, count=k)
        result = _cpsat.solve(model, time_limit=10, seed=0)
        if result.status == "OPTIMAL":
            assert floors[k] <= result.objective + 1e-6
            assert lp.get(k, 0) <= result.objective + 1e-6
        if lp.get(k) == np.inf:
            assert result.status == "INFEASIBLE"


@pytest.mark.parametrize("budget", [0.0, 1e-4, 2.5e-3, 0.05])
def test_search_by_count_ends_on_any_budget(budget):
    """Slices too thin to spend end the search; the answer stays honest."""
    adj, w, xy = five_by_four()
    rules = GridRules()
    model = _free_model(adj, w, xy, rules)
    free = _cpsat.solve(model, time_limit=5, seed=0)
    result = _solve_by_count(
        model, first=5, incumbent=(free.labels, free.objective + 10_000), time_limit=budget,
        seed=0, workers=1,
    )  # fmt: skip
    assert result.deterministic_time <= budget + 0.05
    assert result.status in ("OPTIMAL", "FEASIBLE")
    if result.bound is not None:
        assert result.bound <= free.objective + 1e-6
    if result.labels is not None:
        assert result.objective >= free.objective - 1e-6


@PROPERTY
@given(lattice=SEVERAL_GRIDS)
def test_property_search_by_count_reaches_the_free_optimum(lattice):
    """Solving one number of grids at a time, with cutoffs, loses no plan of the free model."""
    model = _model_of_several_grids(lattice, GridRules())
    free = _cpsat.solve(model, time_limit=10, seed=0)
    assume(free.status == "OPTIMAL")
    first = len(np.unique(free.labels))
    # from a poor incumbent the search finds the optimum and proves it
    found = _solve_by_count(
        model, first=first, incumbent=(free.labels, free.objective + 10_000),
        time_limit=10, seed=0, workers=1,
    )  # fmt: skip
    assert found.status == "OPTIMAL"
    assert found.objective == free.objective == found.bound
    # from the optimum it finds nothing better, and proves that too
    proved = _solve_by_count(
        model, first=first, incumbent=(free.labels, free.objective), time_limit=10, seed=0,
        workers=1,
    )  # fmt: skip
    assert proved.status == "OPTIMAL" and proved.labels is None
    assert proved.bound == free.objective
    # so does the set-partitioning bound, which may close counts without a solve
    adj, w, xy = lattice
    with_sets = _solve_by_count(
        model, first=first, incumbent=(free.labels, free.objective + 10_000), time_limit=10,
        seed=0, workers=1,
        set_bounds=lambda counts: _set_partition_bounds(adj, w, xy, 30, GridRules(), counts),
    )  # fmt: skip
    assert with_sets.status == "OPTIMAL"
    assert with_sets.objective == free.objective == with_sets.bound
    # the model is left unrestricted
    assert _cpsat.solve(model, time_limit=10, seed=0).objective == free.objective


# ------------------------------------------------------------------ GridRules


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"min_households": 900, "max_households": 800},
            r"min_households=900, max_households=800.*--min-households",
        ),
        ({"min_households": 0}, r"1 <= min <= max.*min_households=0"),
        ({"target_households": 900}, r"target_households`=900 is outside the bounds \[400, 800\]"),
        ({"target_households": 399}, r"399.*pick a value between them"),
        ({"balance_weight": -1.0}, r"balance_weight` must be >= 0, got -1.0"),
    ],
)
def test_grid_rules_validation(kwargs, match):
    with pytest.raises(InputError, match=match):
        GridRules(**kwargs)


def test_grid_rules_target():
    assert GridRules().target == 600
    assert GridRules(min_households=300, max_households=501).target == 400
    assert GridRules(target_households=450).target == 450


# --------------------------------------------------------------- number_grids


def test_number_grids_bands_north_to_south_then_west_to_east():
    # Six grids in two bands; y jitters a little within a band, x is out of order.
    xy = np.array([[250, 95], [10, 105], [130, 100], [240, 5], [0, -3], [120, 0]], dtype=float)
    labels = np.array([11, 5, 8, 2, 7, 3])
    seq = number_grids(labels, xy, np.full(6, 100 * 100.0))
    assert seq.tolist() == [3, 1, 2, 6, 4, 5]


def test_number_grids_uses_area_weighted_centroids():
    # Grid 0 is two cells whose big southern cell pulls it south of grid 1.
    xy = np.array([[0, 100], [0, 0], [50, 60]], dtype=float)
    labels = np.array([0, 0, 1])
    area = np.array([1.0, 100.0, 50.0])
    seq = number_grids(labels, xy, area)
    assert seq[2] == 1 and seq[0] == seq[1] == 2


@PROPERTY
@given(lattice=lattices(min_side=2, max_side=6), k=st.integers(1, 8), seed=st.integers(0, 99))
def test_property_number_grids_is_a_numbering(lattice, k, seed):
    _, w, xy = lattice
    labels = np.random.default_rng(seed).integers(0, k, size=len(w)) * 3
    seq = number_grids(labels, xy, np.full(len(w), 900.0))
    k_used = len(np.unique(labels))
    assert sorted(set(seq.tolist())) == list(range(1, k_used + 1))
    for lab in np.unique(labels):
        assert len(set(seq[labels == lab].tolist())) == 1


# ------------------------------------------------------ partition_community


def box_units(
    picture: str, *, community_id: str = "c1", side: float = 30.0, index_start: int = 0
) -> gpd.GeoDataFrame:
    """Units of one community from a picture: a ``side``-metre box per building."""
    _, w, xy = from_picture(picture, spacing=side)
    cells = [shapely.box(x - side / 2, y - side / 2, x + side / 2, y + side / 2) for x, y in xy]
    n = len(w)
    return gpd.GeoDataFrame(
        {
            "unit_id": np.arange(n),
            "community_id": community_id,
            "households": w,
            "building_id": [f"B{i + 1:02d}" for i in range(n)],
            "x": xy[:, 0],
            "y": xy[:, 1],
        },
        geometry=cells,
        crs=32650,
        index=pd.RangeIndex(index_start, index_start + n),
    )


def dissolve(units: gpd.GeoDataFrame, labels: pd.Series) -> gpd.GeoDataFrame:
    frame = units.assign(grid=labels)
    return frame.dissolve("grid", aggfunc={"households": "sum"})


def test_partition_community_on_box_lattice():
    units = box_units(
        """
        120 180  90 200 150
         60 140 170  80 190
        200  30 110 160 130
         90 170 150 100 140
        """,
        index_start=100,
    )
    rules = GridRules()
    plan = partition_community(units, rules=rules, time_limit=LIMIT)
    assert plan.community_id == "c1"
    assert plan.labels.index.equals(units.index)
    k = len(plan.grid_status)
    assert sorted(plan.labels.unique().tolist()) == list(range(1, k + 1))
    assert set(plan.grid_status.values()) == {"ok"}
    grids = dissolve(units, plan.labels)
    assert is_contiguous(grids).all()
    assert within_bounds(grids).all()
    # rook adjacency of the boxes is the lattice's adjacency
    left, _, length = rook_pairs(units.geometry.to_numpy())
    assert len(left) == 4 * 4 + 3 * 5
    np.testing.assert_allclose(length, 30.0)
    # numbered north→south in bands, west→east within a band
    centroids = grids.geometry.centroid
    bands = (centroids.y.max() - centroids.y) // math.sqrt(grids.area.mean())
    keys = list(zip(bands, centroids.x, strict=True))
    assert keys == sorted(keys)


def test_partition_community_does_not_mutate_units():
    units = box_units("200 200 200\n200 200 200")
    before = units.copy()
    partition_community(units, time_limit=LIMIT)
    pd.testing.assert_frame_equal(units, before)


def test_partition_community_below_min_note():
    units = box_units("60 60 60", community_id="420204004002")
    plan = partition_community(units, time_limit=LIMIT)
    assert plan.grid_status == {1: "below_min"}
    assert (plan.labels == 1).all()
    note = plan.notes[0]
    assert "420204004002" in note and "180 households" in note and "400" in note
    assert "min_households" in note


def test_partition_community_oversize_note_names_the_building():
    units = box_units(
        """
        200 950 200
        200 200 200
        """
    )
    plan = partition_community(units, time_limit=LIMIT)
    tower = plan.labels.iloc[1]
    assert plan.grid_status[tower] == "oversize_building"
    assert (plan.labels == tower).sum() == 1
    assert {s for g, s in plan.grid_status.items() if g != tower} == {"ok"}
    notes = [n for n in plan.notes if "B02" in n]
    assert len(notes) == 1
    assert "950 households" in notes[0] and "800" in notes[0] and "max_households" in notes[0]
    assert not any(re.search(r"\d+ building\(s\) above", n) for n in plan.notes)


def test_partition_community_rejects_two_communities():
    units = pd.concat(
        [box_units("200", community_id="a"), box_units("200", community_id="b", index_start=1)]
    )
    with pytest.raises(InputError, match="got 2 communities"):
        partition_community(units)


@pytest.fixture(scope="module")
def sample_units():
    from gridkit.datasets.synthetic import make_sample
    from gridkit.units.build import build_units

    boundaries, buildings = make_sample(seed=0)
    boundaries = boundaries.assign(row=np.arange(1, len(boundaries) + 1))
    households = buildings.assign(
        household_id=[str(i + 1) for i in range(len(buildings))],
        row=np.arange(1, len(buildings) + 1),
    )
    return build_units(boundaries, households).units


@pytest.mark.parametrize(
    ("community_id", "expected"),
    [
        ("420204002002", {"ok"}),  # 850 households: two grids of 400–450
        ("420204004002", {"below_min"}),  # 250 households
        ("420204002008", {"ok", "oversize_building"}),  # a 950-household tower
    ],
)
def test_partition_community_on_sample(sample_units, community_id, expected):
    units = sample_units[sample_units["community_id"] == community_id]
    rules = GridRules()
    plan = partition_community(units, rules=rules, time_limit=0.2)
    assert set(plan.grid_status.values()) == expected
    grids = dissolve(units, plan.labels)
    assert is_contiguous(grids).all()
    statuses = grids.index.map(plan.grid_status)
    ok = statuses == "ok"
    assert within_bounds(grids[ok]).all()
    assert grids["households"].sum() == units["households"].sum()
    assert plan.labels.sort_values().drop_duplicates().tolist() == list(
        range(1, len(plan.grid_status) + 1)
    )
    if "oversize_building" in expected:
        assert any("950 households" in n for n in plan.notes)
    assert (grids.area > 0).all()


# ------------------------------------------------------------------ compounds

COMPOUND_LATTICE = """
    100 100 100 100 100 100
    100 100 100 100 100 100
    100 100 100 100 100 100
    100 100 100 100 100 100
"""


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("block", [(1, 2), (0, 3)])
def test_compound_within_max_is_never_split(seed, block):
    """A 600-household compound (2 rows x 3 columns of the lattice) stays in one grid."""
    units = box_units(COMPOUND_LATTICE)
    row0, col0 = block
    rows, cols = np.divmod(np.arange(len(units)), 6)
    inside = (rows >= row0) & (rows < row0 + 2) & (cols >= col0) & (cols < col0 + 3)
    units["compound"] = np.where(inside, "阳光小区", None)
    plan = partition_community(units, time_limit=LIMIT, seed=seed, keep_compounds=True)
    assert plan.labels[inside].nunique() == 1
    assert set(plan.grid_status.values()) == {"ok"}
    grids = dissolve(units, plan.labels)
    assert is_contiguous(grids).all() and within_bounds(grids).all()
    assert not any("阳光小区" in n for n in plan.notes)


def test_compound_above_max_is_split_and_reported():
    """A 1,500-household compound cannot be one grid: it is split and the note says so."""
    units = box_units(
        """
        150 150 150 150 150
        150 150 150 150 150
         60  60  60  60  60
        """
    )
    units["compound"] = ["大型小区"] * 10 + [None] * 5
    plan = partition_community(units, time_limit=LIMIT, keep_compounds=True)
    big = plan.labels.iloc[:10]
    # ceil(1500 / 800) = 2 pieces of 750 would leave the 300 households of the bottom
    # row no grid to join, so the compound needs 3 grids here, and the note says why
    assert big.nunique() == 3
    assert any(
        "大型小区 (1500 households) is split into 3 grids along building lines (its size "
        "alone needs 2" in n
        for n in plan.notes
    ), plan.notes
    grids = dissolve(units, plan.labels)
    assert is_contiguous(grids).all() and within_bounds(grids).all()


@settings(max_examples=10, deadline=None)
@given(
    households=st.lists(st.integers(60, 200), min_size=12, max_size=12),
    first=st.integers(0, 11),
    length=st.integers(5, 12),
)
def test_compound_above_max_spans_the_fewest_grids(households, first, length):
    """A compound above the maximum spans ceil(W / max) grids when its buildings allow it."""
    units = box_units(
        "\n".join(" ".join(map(str, households[r * 4 : r * 4 + 4])) for r in range(3))
    )
    members = np.zeros(len(units), dtype=bool)
    members[first : first + length] = True  # a run of buildings in reading order
    total = int(units["households"].to_numpy()[members].sum())
    assume(total > 800)
    units["compound"] = np.where(members, "大型小区", None)
    plan = partition_community(units, time_limit=LIMIT, keep_compounds=True)
    grids = dissolve(units, plan.labels)
    assert is_contiguous(grids).all()
    if set(plan.grid_status.values()) != {"ok"}:
        return  # this draw cannot meet the bounds at all: nothing to say about compounds
    spans = plan.labels[members].nunique()
    fewest = -(-total // 800)
    # reading-order runs are connected on the lattice, so the fewest pieces exist unless
    # a building is too heavy to pair; either way the note names the compound
    assert spans >= fewest
    if spans > fewest:
        assert any(f"its size alone needs {fewest}" in n for n in plan.notes), plan.notes
    else:
        assert spans == fewest


# ------------------------------------------------------------------- barriers


def _road(x: float, *, name: str = "迎宾大道") -> gpd.GeoDataFrame:
    """A north-south road at ``x`` metres crossing the whole box lattice."""
    return gpd.GeoDataFrame(
        {"name": [name]}, geometry=[shapely.LineString([(x, -100), (x, 1000)])], crs=32650
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_road_is_not_crossed_when_a_plan_exists(seed):
    """A road between columns 3 and 4 of a 6x4 lattice (1,200 households each side)."""
    units = box_units(COMPOUND_LATTICE)
    road_x = (units["x"].iloc[2] + units["x"].iloc[3]) / 2
    plan = partition_community(units, time_limit=LIMIT, seed=seed, barriers=_road(road_x))
    west = units["x"] < road_x
    assert set(plan.labels[west]).isdisjoint(set(plan.labels[~west]))
    assert set(plan.grid_status.values()) == {"ok"}
    assert not any("cross a barrier" in n for n in plan.notes)
    grids = dissolve(units, plan.labels)
    assert is_contiguous(grids).all() and within_bounds(grids).all()


def test_blocks_between_roads_are_solved_separately_with_a_bound():
    """Two roads cut a 6x4 lattice into blocks of 800, 800 and 800 households."""
    units = box_units(COMPOUND_LATTICE)
    xs = np.sort(units["x"].unique())
    roads = pd.concat(
        [_road((xs[1] + xs[2]) / 2, name="一路"), _road((xs[3] + xs[4]) / 2, name="二路")],
        ignore_index=True,
    )
    plan = partition_community(units, time_limit=1.0, barriers=roads)
    column = np.searchsorted((xs[1:] + xs[:-1])[[1, 3]] / 2, units["x"].to_numpy())
    for block in range(3):
        inside = column == block
        assert set(plan.labels[inside]).isdisjoint(set(plan.labels[~inside]))
    assert set(plan.grid_status.values()) == {"ok"}
    assert plan.solver_status == "OPTIMAL" and plan.gap == 0.0
    assert any("cut the community into 3 blocks" in n for n in plan.notes), plan.notes
    assert not any("cross a barrier" in n for n in plan.notes)


def test_a_small_block_joins_the_neighbour_it_shares_most_with():
    """A road cuts off one column (320): it must join a neighbour; the other road holds."""
    units = box_units(
        """
        80 100 100 100 100 100
        80 100 100 100 100 100
        80 100 100 100 100 100
        80 100 100 100 100 100
        """
    )
    xs = np.sort(units["x"].unique())
    west, east = (xs[0] + xs[1]) / 2, (xs[3] + xs[4]) / 2
    roads = pd.concat([_road(west, name="一路"), _road(east, name="二路")], ignore_index=True)
    plan = partition_community(units, time_limit=1.0, barriers=roads)
    far_east = units["x"].to_numpy() > east
    assert set(plan.labels[far_east]).isdisjoint(set(plan.labels[~far_east]))  # 二路 holds
    assert set(plan.grid_status.values()) == {"ok"}
    assert any("1 block(s) between barriers" in n for n in plan.notes), plan.notes
    assert any("cross a barrier (一路)" in n for n in plan.notes), plan.notes
    assert not any("二路" in n for n in plan.notes)


def test_road_crossed_only_when_the_bounds_need_it_and_reported():
    """A road cutting off one 100-household building: keeping it would leave 100 alone."""
    units = box_units(COMPOUND_LATTICE)
    road_x = (units["x"].iloc[0] + units["x"].iloc[1]) / 2
    cut = _road(road_x).assign(
        geometry=[shapely.LineString([(road_x, units["y"].iloc[6] - 15), (road_x, -100)])]
    )
    cut = pd.concat(
        [
            cut,
            gpd.GeoDataFrame(
                {"name": ["迎宾大道"]},
                geometry=[
                    shapely.LineString(
                        [(-100, units["y"].iloc[6] - 15), (road_x, units["y"].iloc[6] - 15)]
                    )
                ],
                crs=32650,
            ),
        ],
        ignore_index=True,
    )
    plan = partition_community(units, time_limit=LIMIT, barriers=cut)
    assert set(plan.grid_status.values()) == {"ok"}
    # the cut-off corner is joined to its neighbour across the road, and only there
    assert any("joined to a neighbouring block across a barrier" in n for n in plan.notes)
    assert any("cross a barrier (迎宾大道)" in n for n in plan.notes), plan.notes
