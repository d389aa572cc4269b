"""The CP-SAT model of a role and its lexicographic solve, phase by phase.

The decision columns are single (person, unit) pairs, or for ``same_group`` roles whole
*patterns* (one person with a set of units of one community); :func:`build_model` adds
every constraint family and :func:`solve_cpsat` solves the phases from a greedy hint
(:mod:`gridkit.staffing._greedy`).  Used by :func:`gridkit.staffing._model.solve_role`
when someone may serve several units.  Notation: :mod:`gridkit.staffing._model`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from gridkit.errors import SolverError
from gridkit.staffing._greedy import greedy
from gridkit.staffing._problem import (
    PhaseResult,
    RoleProblem,
    RoleSolution,
    evaluate,
    hires_value,
    missing_slots,
    restaffing_value,
    spread_hires,
)

__all__ = ["MAX_PATTERNS", "build_model", "solve_cpsat"]

#: A CP-SAT linear expression.  ``cp_model.LinearExprT`` holds a ``ForwardRef("IntVar")``
#: that runtime type checkers (typeguard) cannot resolve, hence ``Any``.
_Expr = Any


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
    Both together are exactly what :func:`spread_hires` needs to place them.
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
    slots = missing_slots(p, chosen)
    for t, var in model.slots.items():
        m.add_hint(var, int(slots[t]))
    for k, var in model.new.items():
        units = np.flatnonzero(p.group == k)
        total = int(slots[units].sum())
        m.add_hint(var, max(int(slots[units].max(initial=0)),
                            math.ceil(total / p.hire_max_units)))


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


def solve_cpsat(p: RoleProblem, *, time_limit: float, seed: int, threads: int, label: str
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
    if model.new and p.same_group and hires_value(p, best_plan) > 0:
        hires_lower, allowed = _hires_bound(p, time_limit=time_limit, seed=seed, threads=threads)
        packed = greedy(p, allowed=allowed, prefer=keep)
        if hires_value(p, packed) < hires_value(p, best_plan):
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
        best = run("hires", hires_expr, hires_value, hires_lower)
        # the same as ``hires_expr <= best`` at integer points, and a tighter LP
        new_people, slots = divmod(best, int(p.required.sum()) + 1)
        m.add(sum(model.new.values()) <= new_people)
        m.add(sum(model.slots.values()) <= slots)
    restaff = _restaffing_objective(model)
    if restaff is not None:
        keepable = np.bincount(p.pair_w[p.pair_keep], minlength=p.n_people)
        lower = -int(np.minimum(keepable, p.max_units).sum())  # nobody moved, all kept
        best = run("restaffing", restaff, restaffing_value, lower)
        m.add(restaff <= best)
    cost = sum(int(c) * model.a[j] for j, c in enumerate(cols.cost) if c) + sum(
        weight * term for weight, term in model.cost_terms
    )
    objective = run("cost", cost, evaluate, -(2**62))
    optimal = all(ph.status == "OPTIMAL" for ph in phases)
    return RoleSolution(
        chosen=best_plan, hires=spread_hires(p, missing_slots(p, best_plan)),
        method="cp_sat_patterns" if cols.patterns else "cp_sat",
        phases=phases, status="OPTIMAL" if optimal else "FEASIBLE",
        objective=objective, bound=int(phases[-1].bound),
    )
