"""Private optimisation core of staffing: one role's problem as arrays in, chosen pairs out.

The core is geometry-free (spopt's ``from_cost_matrix`` half): :mod:`gridkit.assign`
turns grids, communities and a roster into a :class:`RoleProblem` and reads the
:class:`RoleSolution` back.

Notation: people ``w`` (the available people of one role), units ``t`` (grids, or
communities for community-level roles) with households ``h_t``, community ``k(t)``,
requirement ``r_t`` and cap ``m_t``; candidate pairs ``(w, t)`` with an integer cost
``c_wt`` (decimetres: home-to-unit distance plus the cross-community penalty);
``x_wt ∈ {0, 1}``: ``w`` serves ``t``; ``U_w``/``H_w``: the units/households ``w`` may
serve.  Shortages are *new hires*: ``s_t`` slots of unit ``t`` left to new people and
``n_k`` new people in community ``k``.  The objective is lexicographic:

1. fewest new people, then fewest slots left to them: ``min (S+1)·Σ_k n_k + Σ_t s_t``
   with ``S = Σ_t r_t``;
2. re-staffing only: fewest people moved, then most previous pairs kept:
   ``min (K+1)·Σ_w moved_w − Σ_{(w,t) kept} x_wt``;
3. cost: ``min Σ c_wt x_wt + β·(Σ_w excess_w + Σ_t dev_t) + ι·Σ_w idle_w``.

Two exact methods, chosen per role by :func:`solve_role`:

- **min-cost flow** when every person serves at most one unit (``U_w = 1``): the problem
  is then a transportation problem — persons → units → sink, idle persons through an
  idle node, new hires from a hire node, per-unit balance as convex arc costs — whose
  optimum min-cost flow finds exactly, in milliseconds.  Phase 1 is its own flow; its
  optimum caps the hire arc of the second flow, where phase 2 is folded into phase 3
  with a keep bonus larger than any cost difference.
- **CP-SAT** otherwise (one person for several grids, one community per person, a
  households capacity, load balance per person: side constraints a network cannot
  express), phase by phase, each phase constrained to the optimum of the previous one,
  starting from a greedy plan as a hint.  ``same_group`` roles use *patterns* (one
  Boolean per person and set of units of one community, exact balance priced in), whose
  LP is much tighter than the pair model's; phase 1 gets a lower bound from a
  community-level relaxation (:func:`_hires_bound`), so a hint that meets it is proven
  without a solve.  Deterministic: one worker (or interleaved workers), a fixed seed and
  a deterministic time budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ortools.graph.python import min_cost_flow
from ortools.sat.python import cp_model

from gridkit.errors import SolverError

__all__ = ["PhaseResult", "RoleProblem", "RoleSolution", "evaluate", "greedy", "solve_role"]

#: A CP-SAT linear expression.  ``cp_model.LinearExprT`` holds a ``ForwardRef("IntVar")``
#: that runtime type checkers (typeguard) cannot resolve, hence ``Any``.
_Expr = Any


@dataclass(frozen=True)
class RoleProblem:
    """One role's assignment problem as arrays (``W`` people, ``T`` units, ``P`` pairs).

    Attributes
    ----------
    households, group, required, max_people
        ``(T,)`` households, community index, people required and allowed per unit.
    max_units, max_households
        ``(W,)`` capacity of each person: units, and households (0: no limit).
    pair_w, pair_t, pair_cost
        ``(P,)`` candidate pairs and their integer cost (decimetres).
    pair_pinned, pair_keep
        ``(P,)`` pairs that must be chosen; pairs that keep a previous assignment.
    had_previous
        ``(W,)`` the person held an assignment in the previous plan.
    same_group
        All units of one person lie in one community.
    assign_all
        Idle people cost ``idle_cost`` each, and people spread by households.
    hire_max_units
        Units a new hire may serve.
    balance_weight
        Cost per household of imbalance (decimetres per household).
    idle_cost
        Cost of an idle person of an ``assign_all`` role.
    """

    households: np.ndarray
    group: np.ndarray
    required: np.ndarray
    max_people: np.ndarray
    max_units: np.ndarray
    max_households: np.ndarray
    pair_w: np.ndarray
    pair_t: np.ndarray
    pair_cost: np.ndarray
    pair_pinned: np.ndarray
    pair_keep: np.ndarray
    had_previous: np.ndarray
    same_group: bool = False
    assign_all: bool = False
    hire_max_units: int = 1
    balance_weight: int = 0
    idle_cost: int = 0

    @property
    def n_people(self) -> int:
        """Number of (real, available) people."""
        return len(self.max_units)

    @property
    def n_units(self) -> int:
        """Number of units (grids or communities)."""
        return len(self.households)

    @property
    def is_network(self) -> bool:
        """Whether min-cost flow solves it exactly: nobody serves more than one unit."""
        return bool((self.max_units <= 1).all()) and self.hire_max_units <= 1

    def shares(self) -> tuple[int, int]:
        """Fair shares in households: per person (``L``) and per person of a unit (``L'``).

        ``L = ⌈H / min(W, S)⌉`` over the units that need the role (``S`` required slots,
        ``W`` people); ``L' = ⌈H / W⌉``.
        """
        relevant = (self.required > 0) | self.assign_all
        total = int(self.households[relevant].sum())
        slots = int(self.required.sum())
        people = max(1, self.n_people)
        per_person = -(-total // max(1, min(people, slots) if slots else people))
        return per_person, -(-total // people)

    @property
    def balances_people(self) -> bool:
        """The person balance term applies (someone may serve several units)."""
        return bool(self.balance_weight) and bool((self.max_units > 1).any())

    @property
    def balances_units(self) -> bool:
        """The unit balance term applies (``assign_all`` with room above the requirement)."""
        return (
            bool(self.balance_weight)
            and self.assign_all
            and bool((self.max_people > self.required).any())
        )


@dataclass(frozen=True)
class PhaseResult:
    """Outcome of one phase (objective and bound in model units)."""

    phase: str
    status: str
    objective: int | None
    bound: int | None
    deterministic_time: float
    wall_time: float


@dataclass
class RoleSolution:
    """The chosen pairs and the new hires of one role.

    Attributes
    ----------
    chosen
        ``(P,)`` bool: the pair is in the plan.
    hires
        One ``(community index, [unit indices])`` per new person the plan needs.
    method
        ``"min_cost_flow"`` or ``"cp_sat"``.
    phases
        The phases solved, in order; the last one is the cost phase.
    status
        ``OPTIMAL`` when every phase was proven optimal, else ``FEASIBLE``.
    objective, bound
        Cost phase objective and proven lower bound (model units).
    """

    chosen: np.ndarray
    hires: list[tuple[int, list[int]]] = field(default_factory=list)
    method: str = "cp_sat"
    phases: list[PhaseResult] = field(default_factory=list)
    status: str = "OPTIMAL"
    objective: int = 0
    bound: int = 0

    @property
    def gap(self) -> float:
        """Relative gap of the cost phase, ``(objective - bound) / max(|objective|, 1)``."""
        return max(0, self.objective - self.bound) / max(abs(self.objective), 1)


# --------------------------------------------------------------------------- shared helpers


def _dev(share: int, count: np.ndarray, households: np.ndarray | np.integer | int) -> np.ndarray:
    """Unit balance ``|L'·n_t − h_t|`` for ``n_t`` people (present and new) of a unit."""
    return np.abs(share * np.asarray(count, dtype=np.int64) - np.asarray(households))


def evaluate(p: RoleProblem, chosen: np.ndarray) -> int:
    """The cost-phase objective of a plan (phase 3 of the module docstring).

    Parameters
    ----------
    p
        The problem.
    chosen
        ``(P,)`` bool: the pairs of the plan.

    Returns
    -------
    int
        ``Σ c_wt x_wt + β·(Σ_w excess_w + Σ_t dev_t) + ι·Σ_w idle_w`` in model units.
    """
    chosen = np.asarray(chosen, dtype=bool)
    total = int(p.pair_cost[chosen].sum())
    share, per_unit = p.shares()
    w, t = p.pair_w[chosen], p.pair_t[chosen]
    if p.balances_people:
        load = np.bincount(w, weights=p.households[t], minlength=p.n_people).astype(np.int64)
        multi = p.max_units > 1
        total += p.balance_weight * int(np.maximum(load - share, 0)[multi].sum())
    if p.balances_units:
        has_pairs = np.bincount(p.pair_t, minlength=p.n_units) > 0
        count = np.maximum(np.bincount(t, minlength=p.n_units), p.required)  # with new people
        total += p.balance_weight * int(_dev(per_unit, count, p.households)[has_pairs].sum())
    if p.assign_all and p.idle_cost:
        served = np.bincount(w, minlength=p.n_people)
        total += p.idle_cost * int((served == 0).sum())
    return total


def _spread_hires(p: RoleProblem, slots: np.ndarray) -> list[tuple[int, list[int]]]:
    """Turn missing slots per unit into new people per community (fewest, wrap-around).

    A community with ``Σ s_t`` missing slots needs ``n = max(max_t s_t, ⌈Σ s_t / U⌉)``
    new people; slot ``j`` of the community's list goes to person ``j mod n``, so nobody
    gets the same unit twice and nobody more than ``U`` units (McNaughton).
    """
    hires: list[tuple[int, list[int]]] = []
    for k in np.unique(p.group[slots > 0]):
        units = np.flatnonzero((p.group == k) & (slots > 0))
        total = int(slots[units].sum())
        n = max(int(slots[units].max()), math.ceil(total / p.hire_max_units))
        people: list[list[int]] = [[] for _ in range(n)]
        j = 0
        for t in units:
            for _ in range(int(slots[t])):
                people[j % n].append(int(t))
                j += 1
        hires.extend((int(k), sorted(units_)) for units_ in people)
    return hires


def greedy(
    p: RoleProblem,
    *,
    key: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    prefer: np.ndarray | None = None,
) -> np.ndarray:
    """A nearest-person plan obeying every hard rule: the baseline and the CP-SAT hint.

    Pinned pairs first, then the ``prefer`` pairs (e.g. previous assignments) where
    they fit.  Then each missing required slot goes to the nearest person (by
    ``key``, default the pair cost) who still has room (units, households, community):
    unit by unit in index order, or — for ``same_group`` roles where a person may serve
    several units — community by community, most missing slots first, each time taking
    the free person whose capacity wastes least (``max(0, capacity − missing)``), nearest
    first, for their nearest missing units (bin covering, so capacity is not stranded).
    Finally, for ``assign_all`` roles, each idle person goes to their nearest unit with
    room.  Slots nobody can take stay missing.

    Parameters
    ----------
    p
        The problem.
    key
        ``(P,)`` what "nearest" means, e.g. the distance without penalties.
    allowed
        ``(P,)`` bool: the pairs the greedy may use besides pinned ones (default all).
    prefer
        ``(P,)`` bool: pairs to take first, nearest first, where they fit.

    Returns
    -------
    numpy.ndarray
        ``(P,)`` bool: the chosen pairs.
    """
    key = p.pair_cost if key is None else np.asarray(key)
    allowed = np.ones(len(p.pair_w), dtype=bool) if allowed is None else allowed
    chosen = np.zeros(len(p.pair_w), dtype=bool)
    units_left = p.max_units.astype(np.int64).copy()
    hh_left = np.where(p.max_households > 0, p.max_households, np.iinfo(np.int64).max)
    group_of = np.full(p.n_people, -1, dtype=np.int64)
    count = np.zeros(p.n_units, dtype=np.int64)
    serves: list[set[int]] = [set() for _ in range(p.n_people)]

    def fits(i: int) -> bool:
        w, t = p.pair_w[i], p.pair_t[i]
        return bool(
            allowed[i]
            and units_left[w] > 0
            and hh_left[w] >= p.households[t]
            and t not in serves[w]
            and count[t] < p.max_people[t]
            and (not p.same_group or group_of[w] in (-1, p.group[t]))
        )

    def take(i: int) -> None:
        w, t = p.pair_w[i], p.pair_t[i]
        chosen[i] = True
        units_left[w] -= 1
        hh_left[w] -= p.households[t]
        group_of[w] = p.group[t]
        count[t] += 1
        serves[w].add(int(t))

    for i in np.flatnonzero(p.pair_pinned):
        take(int(i))
    if prefer is not None:
        for i in np.flatnonzero(prefer)[np.argsort(key[prefer], kind="stable")]:
            t = p.pair_t[i]
            if (count[t] < p.required[t] or p.assign_all) and fits(int(i)):
                take(int(i))
    order = np.lexsort((p.pair_w, key, p.pair_t))  # by unit, then nearest first
    starts = np.searchsorted(p.pair_t[order], np.arange(p.n_units + 1))
    if p.same_group and (p.max_units > 1).any():
        _cover_communities(p, key, order, starts, count, group_of, units_left, fits, take)
    for t in range(p.n_units):
        for i in order[starts[t] : starts[t + 1]]:
            if count[t] >= p.required[t]:
                break
            if fits(int(i)):
                take(int(i))
    if p.assign_all:
        by_person = np.lexsort((p.pair_t, key, p.pair_w))
        first = np.searchsorted(p.pair_w[by_person], np.arange(p.n_people + 1))
        for w in range(p.n_people):
            if units_left[w] < p.max_units[w]:
                continue
            for i in by_person[first[w] : first[w + 1]]:
                if fits(int(i)):
                    take(int(i))
                    break
    return chosen


def _cover_communities(
    p: RoleProblem,
    key: np.ndarray,
    order: np.ndarray,
    starts: np.ndarray,
    count: np.ndarray,
    group_of: np.ndarray,
    units_left: np.ndarray,
    fits: Callable[[int], bool],
    take: Callable[[int], None],
) -> None:
    """The community-first step of :func:`greedy` (bin covering with least waste)."""
    pairs_of_unit = [order[starts[t] : starts[t + 1]] for t in range(p.n_units)]

    def missing(k: int) -> np.ndarray:
        units = np.flatnonzero(p.group == k)
        return units[count[units] < p.required[units]]

    groups = np.unique(p.group)
    need = {int(k): int((p.required - count)[p.group == k].clip(0).sum()) for k in groups}
    for k in sorted(need, key=lambda k: (-need[k], k)):
        while True:
            units = missing(k)
            if not len(units):
                break
            short = int((p.required[units] - count[units]).sum())
            # committed people of this community first, then free people
            best = None
            for t in units:
                for i in pairs_of_unit[t]:
                    w = p.pair_w[i]
                    if group_of[w] not in (-1, k) or not fits(int(i)):
                        continue
                    rank = (group_of[w] != k, max(0, int(units_left[w]) - short), key[i], w)
                    if best is None or rank < best[0]:
                        best = (rank, w)
            if best is None:
                break
            w = best[1]
            cand = [int(i) for t in units for i in pairs_of_unit[t] if p.pair_w[i] == w]
            placed = False
            for i in sorted(cand, key=lambda i: (key[i], p.pair_t[i])):
                if count[p.pair_t[i]] < p.required[p.pair_t[i]] and fits(i):
                    take(i)
                    placed = True
            if not placed:  # pragma: no cover - fits() was true for one of them
                break


def _missing(p: RoleProblem, chosen: np.ndarray) -> np.ndarray:
    count = np.bincount(p.pair_t[chosen], minlength=p.n_units)
    return np.maximum(p.required - count, 0)


# --------------------------------------------------------------------------- min-cost flow


def _solve_flow(p: RoleProblem) -> RoleSolution:
    """Exact solution of a one-unit-per-person role by two min-cost flows.

    Nodes: people, units, ``IDLE``, ``HIRE``, ``GATE``, ``SINK``.  Supplies: each free
    person 1, ``HIRE`` ``R`` (the free required slots); demands: each unit its free
    required slots ``r'_t``, ``SINK`` the free people.  Arcs: person → unit (1, ``c_wt``,
    minus the keep bonus ``B`` on pairs kept), person → ``IDLE`` (1, ``ι`` for
    ``assign_all`` roles) → ``SINK``, ``HIRE`` → ``GATE`` (cap ``n*``) → unit (``r'_t``),
    ``HIRE`` → ``SINK``, and per unit one arc of capacity 1 to ``SINK`` for each person
    above the requirement, costing the marginal balance ``β·(dev(n) − dev(n−1))``
    (convex, so taken in order).  Pinned people are placed first.  Flow 1 prices only
    ``HIRE`` → ``GATE`` (cost 1) to find ``n*``; flow 2 caps it at ``n*`` and prices
    everything else.  ``B`` exceeds any difference of the other costs, so fewer people
    move before anything else is traded.
    """
    started = time.perf_counter()
    W, T = p.n_people, p.n_units
    pinned_unit = np.full(W, -1, dtype=np.int64)
    for i in np.flatnonzero(p.pair_pinned):
        pinned_unit[p.pair_w[i]] = p.pair_t[i]
    base = np.bincount(pinned_unit[pinned_unit >= 0], minlength=T)
    need = np.maximum(p.required - base, 0)
    room = np.maximum(p.max_people - np.maximum(base, p.required), 0)
    room = np.minimum(room, W)  # an unlimited cap never takes more than everyone
    free = pinned_unit < 0
    hh_ok = (p.max_households[p.pair_w] == 0) | (
        p.households[p.pair_t] <= p.max_households[p.pair_w]
    )
    arcs = np.flatnonzero(free[p.pair_w] & hh_ok)
    _, per_unit = p.shares()
    marginal: list[np.ndarray] = []
    for t in range(T):
        n = base[t] + need[t] + np.arange(room[t] + 1)
        if p.balances_units:
            marginal.append(p.balance_weight * np.diff(_dev(per_unit, n, p.households[t])))
        else:
            marginal.append(np.zeros(room[t], dtype=np.int64))
    idle = p.idle_cost if p.assign_all else 0
    spread = int(sum(np.abs(m).sum() for m in marginal))
    worst = np.zeros(W, dtype=np.int64)
    np.maximum.at(worst, p.pair_w[arcs], np.abs(p.pair_cost[arcs]))
    bonus = int(np.maximum(worst, idle).sum()) + spread + 1
    R = int(need.sum())
    n_free = int(free.sum())
    IDLE, HIRE, GATE, SINK = W + T, W + T + 1, W + T + 2, W + T + 3

    def solve(hire_cap: int, priced: bool) -> tuple[min_cost_flow.SimpleMinCostFlow, list]:
        f = min_cost_flow.SimpleMinCostFlow()
        handles = []
        for i in arcs:
            cost = int(p.pair_cost[i]) - (bonus if p.pair_keep[i] else 0) if priced else 0
            handles.append(f.add_arc_with_capacity_and_unit_cost(
                int(p.pair_w[i]), W + int(p.pair_t[i]), 1, cost))
        for w in np.flatnonzero(free):
            f.add_arc_with_capacity_and_unit_cost(int(w), IDLE, 1, idle if priced else 0)
        f.add_arc_with_capacity_and_unit_cost(IDLE, SINK, n_free, 0)
        f.add_arc_with_capacity_and_unit_cost(HIRE, GATE, hire_cap, 0 if priced else 1)
        f.add_arc_with_capacity_and_unit_cost(HIRE, SINK, R, 0)
        for t in np.flatnonzero(need):
            f.add_arc_with_capacity_and_unit_cost(GATE, W + int(t), int(need[t]), 0)
        for t in range(T):
            for cost in marginal[t]:
                f.add_arc_with_capacity_and_unit_cost(W + t, SINK, 1, int(cost) if priced else 0)
        for w in np.flatnonzero(free):
            f.set_node_supply(int(w), 1)
        for t in range(T):
            f.set_node_supply(W + t, -int(need[t]))
        f.set_node_supply(HIRE, R)
        f.set_node_supply(SINK, -n_free)
        status = f.solve()
        if status != f.OPTIMAL:  # pragma: no cover - the network is always feasible
            msg = f"min-cost flow returned status {status}: please report this gridkit bug."
            raise SolverError(msg)
        return f, handles

    f1, _ = solve(R, priced=False)
    hires_needed = int(f1.optimal_cost())
    f2, handles = solve(hires_needed, priced=True)
    chosen = p.pair_pinned.copy()
    flows = np.array([f2.flow(h) for h in handles], dtype=np.int64)
    chosen[arcs[flows > 0]] = True
    slots = _missing(p, chosen)
    objective = evaluate(p, chosen)
    wall = time.perf_counter() - started
    values = [("hires", _hires_value(p, chosen))]
    if p.pair_keep.any():
        values.append(("restaffing", _restaffing_value(p, chosen)))
    values.append(("cost", objective))
    phases = [PhaseResult(name, "OPTIMAL", v, v, 0.0, wall) for name, v in values]
    return RoleSolution(
        chosen=chosen, hires=_spread_hires(p, slots), method="min_cost_flow",
        phases=phases, status="OPTIMAL", objective=objective, bound=objective,
    )


# --------------------------------------------------------------------------- CP-SAT

#: Above this many patterns a same-community role uses the pair model instead.
MAX_PATTERNS = 250_000


@dataclass
class _Columns:
    """The decision columns of a CP-SAT model: single pairs, or whole patterns.

    A *pattern* is one person with one set of units of one community (at most ``U_w``
    units, at most ``H_w`` households, containing their pinned units); its cost holds
    the distances and the person's exact balance term ``β·max(0, load − L)``.
    """

    person: np.ndarray  # (C,)
    pairs: list[tuple[int, ...]]  # pair indices of each column
    cost: np.ndarray  # (C,)
    patterns: bool


def _pair_columns(p: RoleProblem) -> _Columns:
    return _Columns(
        person=p.pair_w.copy(), pairs=[(i,) for i in range(len(p.pair_w))],
        cost=p.pair_cost.astype(np.int64), patterns=False,
    )


def _count_patterns(p: RoleProblem, by_person: list[dict[int, list[int]]]) -> int:
    total = 0
    for w, groups in enumerate(by_person):
        for items in groups.values():
            total += sum(math.comb(len(items), j) for j in range(1, int(p.max_units[w]) + 1))
    return total


def _pattern_columns(p: RoleProblem) -> _Columns | None:
    """Enumerate the patterns of a ``same_group`` role, or ``None`` if there are too many."""
    from itertools import combinations

    by_person: list[dict[int, list[int]]] = [{} for _ in range(p.n_people)]
    for i in np.lexsort((p.pair_t, p.pair_w)):
        by_person[p.pair_w[i]].setdefault(int(p.group[p.pair_t[i]]), []).append(int(i))
    if _count_patterns(p, by_person) > MAX_PATTERNS:
        return None
    share, _ = p.shares()
    person, pairs, cost = [], [], []
    for w, groups in enumerate(by_person):
        cap = int(p.max_units[w])
        hh_cap = int(p.max_households[w])
        pins = tuple(i for items in groups.values() for i in items if p.pair_pinned[i])
        for items in groups.values():
            if pins and p.pair_pinned[items].sum() != len(pins):
                continue  # pinned elsewhere
            free = [i for i in items if not p.pair_pinned[i]]
            for size in range(cap - len(pins) + 1):
                for combo in combinations(free, size):
                    col = pins + combo
                    if not col:
                        continue
                    load = int(p.households[p.pair_t[list(col)]].sum())
                    if hh_cap and load > hh_cap:
                        continue
                    c = int(p.pair_cost[list(col)].sum())
                    if p.balances_people and cap > 1:
                        c += p.balance_weight * max(0, load - share)
                    person.append(w)
                    pairs.append(col)
                    cost.append(c)
    return _Columns(np.array(person, dtype=np.int64), pairs, np.array(cost, dtype=np.int64),
                    patterns=True)


class _Model:
    """The CP-SAT model of a :class:`RoleProblem` over its columns."""

    def __init__(self, problem: RoleProblem, columns: _Columns) -> None:
        self.p = problem
        self.cols = columns
        self.m = cp_model.CpModel()
        self.a = [self.m.new_bool_var(f"a{j}") for j in range(len(columns.person))]
        self.cols_of_unit: list[list[int]] = [[] for _ in range(problem.n_units)]
        self.cols_of_person: list[list[int]] = [[] for _ in range(problem.n_people)]
        for j, (w, col) in enumerate(zip(columns.person, columns.pairs, strict=True)):
            self.cols_of_person[w].append(j)
            for i in col:
                self.cols_of_unit[problem.pair_t[i]].append(j)
        self.slots: dict[int, cp_model.IntVar] = {}  # unit -> s_t
        self.new: dict[int, cp_model.IntVar] = {}  # community -> n_k
        self.cost_terms: list[tuple[int, _Expr]] = []


def _add_people(model: _Model) -> None:
    """What one person may take on.

    Patterns: ``Σ_j a_wj ≤ 1`` (``= 1`` for pinned people); capacity, one community and
    the person balance are inside the patterns.  Pairs: pinned ``x_wt = 1``;
    ``Σ_t x_wt ≤ U_w``; where set ``Σ_t h_t x_wt ≤ H_w``; with ``same_group``,
    ``Σ_k z_wk ≤ 1`` and ``Σ_{t∈k} x_wt ≤ U_w·z_wk`` (aggregated: a tighter LP than
    ``x_wt ≤ z_wk``); person balance ``excess_w ≥ Σ_t h_t x_wt − L``, ``excess_w ≥ 0``
    for people who may serve several units (``L``: :meth:`RoleProblem.shares`).
    """
    p, m, cols = model.p, model.m, model.cols
    pinned_people = set(p.pair_w[p.pair_pinned].tolist())
    if cols.patterns:
        for w, js in enumerate(model.cols_of_person):
            if js:
                lits = [model.a[j] for j in js]
                if w in pinned_people:
                    m.add_exactly_one(lits)
                else:
                    m.add_at_most_one(lits)
        return
    for i in np.flatnonzero(p.pair_pinned):
        m.add(model.a[i] == 1)
    share, _ = p.shares()
    h_max = int(p.households.sum())
    for w, pairs in enumerate(model.cols_of_person):
        if not pairs:
            continue
        cap = int(p.max_units[w])
        groups = np.unique(p.group[p.pair_t[pairs]])
        if p.same_group and cap > 1 and len(groups) > 1:
            z = {int(k): m.new_bool_var(f"z{w}_{k}") for k in groups}
            m.add_at_most_one(z.values())
            for k, zk in z.items():
                inside = [model.a[i] for i in pairs if p.group[p.pair_t[i]] == k]
                m.add(sum(inside) <= min(cap, len(inside)) * zk)
        elif len(pairs) > cap:
            m.add(sum(model.a[i] for i in pairs) <= cap)
        load = sum(int(p.households[p.pair_t[i]]) * model.a[i] for i in pairs)
        if p.max_households[w]:
            m.add(load <= int(p.max_households[w]))
        if p.balances_people and cap > 1:
            excess = m.new_int_var(0, h_max, f"excess{w}")
            m.add(excess >= load - share)
            model.cost_terms.append((p.balance_weight, excess))


def _add_hires(model: _Model) -> None:
    """Missing slots and new people per community.

    ``0 ≤ s_t ≤ r_t``; per community ``k``: ``n_k ≥ s_t`` for ``t ∈ k`` (one new person
    fills a unit once) and ``U·n_k ≥ Σ_{t∈k} s_t`` (each serves ``U`` units at most).
    Both together are exactly what :func:`_spread_hires` needs to place them.
    """
    p, m = model.p, model.m
    for k in np.unique(p.group[p.required > 0]):
        units = np.flatnonzero((p.group == k) & (p.required > 0))
        n_k = m.new_int_var(0, int(p.required[units].sum()), f"n{k}")
        model.new[int(k)] = n_k
        for t in units:
            s = m.new_int_var(0, int(p.required[t]), f"s{t}")
            model.slots[int(t)] = s
            m.add(n_k >= s)
        m.add(p.hire_max_units * n_k >= sum(model.slots[int(t)] for t in units))


def _add_coverage(model: _Model) -> None:
    """Each unit gets its required people, present or new, and no more than allowed.

    ``r_t ≤ n_t ≤ m_t`` with ``n_t = Σ_{columns ∋ t} a_j + s_t``.
    """
    p, m = model.p, model.m
    for t in range(p.n_units):
        js = model.cols_of_unit[t]
        served = sum(model.a[j] for j in js) + model.slots.get(t, 0)
        if p.required[t] > 0:
            m.add(served >= int(p.required[t]))
        if len(set(model.cols.person[js].tolist())) + int(p.required[t]) > p.max_people[t]:
            m.add(served <= int(p.max_people[t]))


def _add_unit_balance(model: _Model) -> None:
    """``assign_all`` roles: ``dev_t ≥ |L'·n_t − h_t|``, cost ``β`` per household.

    ``n_t`` counts present and new people; ``L'``: :meth:`RoleProblem.shares`.
    """
    p, m = model.p, model.m
    if not p.balances_units:
        return
    _, per_unit = p.shares()
    h_max = int(p.households.sum())
    has_pairs = np.bincount(p.pair_t, minlength=p.n_units) > 0
    for t in np.flatnonzero(has_pairs):
        js = model.cols_of_unit[t]
        count = sum(model.a[j] for j in js) + model.slots.get(int(t), 0)
        dev = m.new_int_var(0, max(h_max, per_unit * (len(js) + int(p.required[t]))), f"dev{t}")
        m.add(dev >= per_unit * count - int(p.households[t]))
        m.add(dev >= int(p.households[t]) - per_unit * count)
        model.cost_terms.append((p.balance_weight, dev))


def _add_idle(model: _Model) -> None:
    """Idle people of an ``assign_all`` role cost ``ι`` each: ``idle_w ≥ 1 − Σ_j a_wj``."""
    p, m = model.p, model.m
    if not p.assign_all or not p.idle_cost:
        return
    for js in model.cols_of_person:
        idle = m.new_bool_var("idle")
        m.add(idle + sum(model.a[j] for j in js) >= 1)
        model.cost_terms.append((p.idle_cost, idle))


def _restaffing_objective(model: _Model) -> _Expr | None:
    """Fewest people moved, then most previous pairs kept.

    For every person who had an assignment: ``moved_w ≥ a_j`` for each column holding a
    pair not kept, and ``moved_w + Σ_{j ⊆ kept} a_j ≥ 1``; objective
    ``(K+1)·Σ_w moved_w − Σ_j |j ∩ kept|·a_j`` with ``K`` keepable pairs.
    """
    p, m, cols = model.p, model.m, model.cols
    if not p.pair_keep.any():
        return None
    kept = np.array([int(p.pair_keep[list(col)].sum()) for col in cols.pairs], dtype=np.int64)
    size = np.array([len(col) for col in cols.pairs], dtype=np.int64)
    moved = []
    for w, js in enumerate(model.cols_of_person):
        if not p.had_previous[w]:
            continue
        mv = m.new_bool_var(f"moved{w}")
        for j in js:
            if kept[j] < size[j]:
                m.add_implication(model.a[j], mv)
        m.add(mv + sum(model.a[j] for j in js if kept[j] == size[j]) >= 1)
        moved.append(mv)
    keepable = int(p.pair_keep.sum())
    return (keepable + 1) * sum(moved) - sum(
        int(kept[j]) * model.a[j] for j in np.flatnonzero(kept)
    )


def build_model(problem: RoleProblem, *, patterns: bool = True) -> _Model:
    """Build the CP-SAT model (every constraint family; the phases set the objective).

    Parameters
    ----------
    problem
        The role's arrays.
    patterns
        Use patterns for a ``same_group`` role with several units per person, unless
        there are more than :data:`MAX_PATTERNS` of them.
    """
    columns = None
    if patterns and problem.same_group and (problem.max_units > 1).any():
        columns = _pattern_columns(problem)
    model = _Model(problem, columns or _pair_columns(problem))
    _add_people(model)
    _add_hires(model)
    _add_coverage(model)
    _add_unit_balance(model)
    _add_idle(model)
    return model


def _columns_of_plan(model: _Model, chosen: np.ndarray) -> np.ndarray:
    """The column values that represent a plan given as chosen pairs."""
    cols = model.cols
    values = np.zeros(len(cols.person), dtype=bool)
    if not cols.patterns:
        values[:] = chosen
        return values
    wanted = {}
    for i in np.flatnonzero(chosen):
        wanted.setdefault(int(model.p.pair_w[i]), set()).add(int(i))
    for w, pairs in wanted.items():
        for j in model.cols_of_person[w]:
            if set(cols.pairs[j]) == pairs:
                values[j] = True
                break
    return values


def _hint(model: _Model, chosen: np.ndarray) -> None:
    """Hint a plan (and the slots it leaves missing) to CP-SAT."""
    p, m = model.p, model.m
    m.clear_hints()
    for var, value in zip(model.a, _columns_of_plan(model, chosen), strict=True):
        m.add_hint(var, bool(value))
    slots = _missing(p, chosen)
    for t, var in model.slots.items():
        m.add_hint(var, int(slots[t]))
    for k, var in model.new.items():
        units = np.flatnonzero(p.group == k)
        total = int(slots[units].sum())
        m.add_hint(var, max(int(slots[units].max(initial=0)),
                            math.ceil(total / p.hire_max_units)))


def _hires_value(p: RoleProblem, plan: np.ndarray) -> int:
    """Phase 1 objective of a plan: ``(S+1)·new people + missing slots``."""
    slots = _missing(p, plan)
    return (int(p.required.sum()) + 1) * len(_spread_hires(p, slots)) + int(slots.sum())


def _restaffing_value(p: RoleProblem, plan: np.ndarray) -> int:
    """Phase 2 objective of a plan: ``(K+1)·people moved − pairs kept``."""
    kept = int((plan & p.pair_keep).sum())
    lost = np.bincount(p.pair_w[plan & ~p.pair_keep], minlength=p.n_people) > 0
    held = np.bincount(p.pair_w[plan & p.pair_keep], minlength=p.n_people) > 0
    moved = int((p.had_previous & (lost | ~held)).sum())
    return (int(p.pair_keep.sum()) + 1) * moved - kept


def _parameters(solver: cp_model.CpSolver, time_limit: float, seed: int, threads: int) -> None:
    params = solver.parameters
    params.max_deterministic_time = float(time_limit)
    params.max_time_in_seconds = 4 * float(time_limit) + 10  # runaway guard only
    params.random_seed = int(seed)
    params.num_workers = max(1, int(threads))
    params.interleave_search = threads > 1
    params.linearization_level = 2


def _hires_bound(p: RoleProblem, *, time_limit: float, seed: int, threads: int
                 ) -> tuple[int, np.ndarray]:
    """A lower bound on phase 1 for ``same_group`` roles, and the allocation reaching it.

    The community-level relaxation: ``y_wk ∈ {0, 1}`` (``w`` serves in community ``k``),
    ``Σ_k y_wk ≤ 1`` (``= 1`` at the pinned community); ``w`` covers at most
    ``c_wk = min(U_w, |required units of k that w may serve|)`` slots there, so the
    missing slots ``s_k ≥ R_k − Σ_w c_wk·y_wk`` and the new people ``U·n_k ≥ s_k``;
    minimise ``(S+1)·Σ n_k + Σ s_k``.  Every plan gives such a ``y`` with no larger
    objective (per-unit caps, households and one person per slot are ignored), so the
    optimum — or CP-SAT's proven bound — bounds phase 1 from below.

    Returns
    -------
    bound, allowed
        The bound, and the ``(P,)`` pairs inside each person's allocated community (all
        pairs when no allocation was found).
    """
    need = p.required[p.pair_t] > 0
    reach: dict[tuple[int, int], set[int]] = {}
    for i in np.flatnonzero(need):
        reach.setdefault((int(p.pair_w[i]), int(p.group[p.pair_t[i]])), set()).add(
            int(p.pair_t[i]))
    pinned_group = {int(p.pair_w[i]): int(p.group[p.pair_t[i]])
                    for i in np.flatnonzero(p.pair_pinned)}
    m = cp_model.CpModel()
    y = {wk: m.new_bool_var(f"y{wk[0]}_{wk[1]}") for wk in sorted(reach)}
    by_person: dict[int, list[cp_model.IntVar]] = {}
    for (w, k), var in y.items():
        by_person.setdefault(w, []).append(var)
        if w in pinned_group:
            m.add(var == int(pinned_group[w] == k))
    for lits in by_person.values():
        m.add_at_most_one(lits)
    total = 0
    slots_total = int(p.required.sum())
    for k in np.unique(p.group[p.required > 0]):
        r_k = int(p.required[p.group == k].sum())
        cover = sum(min(int(p.max_units[w]), len(reach[(w, kk)])) * var
                    for (w, kk), var in y.items() if kk == k)
        s_k = m.new_int_var(0, r_k, f"s{k}")
        n_k = m.new_int_var(0, r_k, f"n{k}")
        m.add(s_k >= r_k - cover)
        m.add(p.hire_max_units * n_k >= s_k)
        total += (slots_total + 1) * n_k + s_k
    m.minimize(total)
    solver = cp_model.CpSolver()
    _parameters(solver, time_limit, seed, threads)
    status = solver.solve(m)
    allowed = np.ones(len(p.pair_w), dtype=bool)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        bound = solver.best_objective_bound
        return (max(0, math.floor(bound)) if math.isfinite(bound) else 0), allowed
    home = {w: k for (w, k), var in y.items() if solver.boolean_value(var)}
    allowed = np.array([home.get(int(w), -1) == p.group[t]
                        for w, t in zip(p.pair_w, p.pair_t, strict=True)], dtype=bool)
    return max(0, math.ceil(solver.best_objective_bound - 1e-9)), allowed


def _solve_cpsat(p: RoleProblem, *, time_limit: float, seed: int, threads: int, label: str
                 ) -> RoleSolution:
    """Solve the phases with CP-SAT, each from the best plan so far (a greedy one first).

    A phase whose hint already reaches the phase's trivial lower bound (no new people;
    nobody moved and every keepable pair kept) is proven without a solve.  A solve that
    returns nothing better than its hint keeps the hint, so phases never get worse.
    """
    model = build_model(p)
    m, cols = model.m, model.cols
    phases: list[PhaseResult] = []
    keep = p.pair_keep if p.pair_keep.any() else None
    best_plan = greedy(p, prefer=keep)
    hires_lower = 0
    if model.new and p.same_group and _hires_value(p, best_plan) > 0:
        hires_lower, allowed = _hires_bound(p, time_limit=time_limit, seed=seed, threads=threads)
        packed = greedy(p, allowed=allowed, prefer=keep)
        if _hires_value(p, packed) < _hires_value(p, best_plan):
            best_plan = packed

    def run(
        name: str,
        objective: _Expr,
        value: Callable[[RoleProblem, np.ndarray], int],
        lower: int,
    ) -> int:
        nonlocal best_plan
        hinted = value(p, best_plan)
        if hinted <= lower:
            phases.append(PhaseResult(name, "OPTIMAL", hinted, hinted, 0.0, 0.0))
            return hinted
        m.minimize(objective)
        _hint(model, best_plan)
        solver = cp_model.CpSolver()
        _parameters(solver, time_limit, seed, threads)
        started = time.perf_counter()
        status = solver.solve(m)
        wall = time.perf_counter() - started
        if status == cp_model.MODEL_INVALID:  # pragma: no cover - a bug
            msg = (
                f"CP-SAT says the staffing model of {label} is invalid ({m.validate()}): "
                "this is a gridkit bug, please report it with the roster and policy."
            )
            raise SolverError(msg)
        best = hinted
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            plan = np.zeros(len(p.pair_w), dtype=bool)
            for j, var in enumerate(model.a):
                if solver.boolean_value(var):
                    plan[list(cols.pairs[j])] = True
            found = value(p, plan)
            if found <= hinted:
                best_plan, best = plan, found
        bound = solver.best_objective_bound
        bound = min(best, round(bound)) if math.isfinite(bound) else lower
        proven = "OPTIMAL" if bound >= best else "FEASIBLE"
        phases.append(PhaseResult(name, proven, best, max(bound, lower),
                                  solver.deterministic_time, wall))
        return best

    hires_expr = (int(p.required.sum()) + 1) * sum(model.new.values()) + sum(
        model.slots.values()
    )
    if model.new:
        best = run("hires", hires_expr, _hires_value, hires_lower)
        # the same as ``hires_expr <= best`` at integer points, and a tighter LP
        new_people, slots = divmod(best, int(p.required.sum()) + 1)
        m.add(sum(model.new.values()) <= new_people)
        m.add(sum(model.slots.values()) <= slots)
    restaff = _restaffing_objective(model)
    if restaff is not None:
        keepable = np.bincount(p.pair_w[p.pair_keep], minlength=p.n_people)
        lower = -int(np.minimum(keepable, p.max_units).sum())  # nobody moved, all kept
        best = run("restaffing", restaff, _restaffing_value, lower)
        m.add(restaff <= best)
    cost = sum(int(c) * model.a[j] for j, c in enumerate(cols.cost) if c) + sum(
        weight * term for weight, term in model.cost_terms
    )
    objective = run("cost", cost, evaluate, -(2**62))
    optimal = all(ph.status == "OPTIMAL" for ph in phases)
    return RoleSolution(
        chosen=best_plan, hires=_spread_hires(p, _missing(p, best_plan)),
        method="cp_sat_patterns" if cols.patterns else "cp_sat",
        phases=phases, status="OPTIMAL" if optimal else "FEASIBLE",
        objective=objective, bound=int(phases[-1].bound),
    )


def solve_role(
    problem: RoleProblem,
    *,
    time_limit: float = 10.0,
    seed: int = 0,
    threads: int = 1,
    label: str = "role",
) -> RoleSolution:
    """Solve one role exactly: min-cost flow when it suffices, else CP-SAT in phases.

    Parameters
    ----------
    problem
        The arrays of the role.
    time_limit
        CP-SAT deterministic time budget per phase (about seconds); unused by the flow.
    seed
        CP-SAT ``random_seed``.
    threads
        CP-SAT workers; above 1 they run interleaved, which keeps results reproducible.
    label
        Role name for messages.

    Returns
    -------
    RoleSolution

    Raises
    ------
    SolverError
        If CP-SAT finds no plan for the first phase within the budget.
    """
    if problem.is_network:
        return _solve_flow(problem)
    return _solve_cpsat(problem, time_limit=time_limit, seed=seed, threads=threads, label=label)
