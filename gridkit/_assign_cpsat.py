"""Private CP-SAT model of one role's staffing: arrays in, chosen (person, unit) pairs out.

The model is geometry-free (spopt's ``from_cost_matrix`` half): :mod:`gridkit.assign`
turns grids, communities and a roster into a :class:`RoleProblem` and reads the
:class:`RoleSolution` back.  One builder per constraint family, each with its maths.

Notation: people ``w`` (available people of the role), units ``t`` (grids, or
communities for community-level roles) with households ``h_t``, community ``k(t)``,
requirement ``r_t`` and cap ``m_t``; candidate pairs ``(w, t)`` with a cost ``c_wt``
(decimetres: home-to-unit distance plus the cross-community penalty); ``x_wt ∈ {0, 1}``:
``w`` serves ``t``.  Shortages are modelled as *new hires*: per community ``k``, up to
``R_k = Σ_{t∈k} r_t`` virtual people ``v`` with the role's default capacity, ``u_v ∈ {0, 1}``
(hired) and ``y_vt`` (serves ``t ∈ k``).  The objective is lexicographic, solved in phases,
each phase adding "no worse than the previous optimum" as a constraint:

1. fewest new hires, then fewest slots left to them: ``min (S+1)·Σ u_v + Σ y_vt``
   (``S = Σ_t r_t``);
2. re-staffing only: fewest people moved, then most previous pairs kept:
   ``min (K+1)·Σ_w moved_w − Σ_{(w,t) kept} x_wt``;
3. cost: ``min Σ c_wt x_wt + β·(Σ_w excess_w + Σ_t dev_t) + ι·Σ_w idle_w``.

Every solve is deterministic: one worker (or interleaved workers), a fixed seed and a
deterministic time budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model

from gridkit.errors import SolverError

__all__ = ["PhaseResult", "RoleProblem", "RoleSolution", "solve_role"]


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
        Idle people cost ``idle_cost`` each (place everyone who fits).
    hire_max_units, hire_max_households
        Default capacity of a new hire (households 0: no limit).
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
    hire_max_households: int = 0
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


@dataclass(frozen=True)
class PhaseResult:
    """Outcome of one phase's solve (objective and bound in model units)."""

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
        One ``(community index, [unit indices])`` per new hire the plan needs.
    phases
        The phases solved, in order; the last one is the cost phase.
    status
        ``OPTIMAL`` when every phase was proven optimal, else ``FEASIBLE``.
    objective, bound
        Cost phase objective and proven lower bound (model units).
    """

    chosen: np.ndarray
    hires: list[tuple[int, list[int]]] = field(default_factory=list)
    phases: list[PhaseResult] = field(default_factory=list)
    status: str = "OPTIMAL"
    objective: int = 0
    bound: int = 0

    @property
    def gap(self) -> float:
        """Relative gap of the cost phase, ``(objective - bound) / max(|objective|, 1)``."""
        return max(0, self.objective - self.bound) / max(abs(self.objective), 1)


class _Model:
    """The CP-SAT model of a :class:`RoleProblem` and its variables."""

    def __init__(self, problem: RoleProblem) -> None:
        self.p = problem
        self.m = cp_model.CpModel()
        self.x = [self.m.new_bool_var(f"x{i}") for i in range(len(problem.pair_w))]
        self.pairs_of_unit: list[list[int]] = [[] for _ in range(problem.n_units)]
        self.pairs_of_person: list[list[int]] = [[] for _ in range(problem.n_people)]
        for i, (w, t) in enumerate(zip(problem.pair_w, problem.pair_t, strict=True)):
            self.pairs_of_unit[t].append(i)
            self.pairs_of_person[w].append(i)
        self.hire_used: list[cp_model.IntVar] = []
        self.hire_pairs: list[tuple[int, int, cp_model.IntVar]] = []  # (hire, unit, var)
        self.hire_group: list[int] = []
        self.cost_terms: list[tuple[int, cp_model.LinearExprT]] = []


def _add_pinned(model: _Model) -> None:
    """Pinned pairs are fixed: ``x_wt = 1`` for every pinned ``(w, t)``."""
    for i in np.flatnonzero(model.p.pair_pinned):
        model.m.add(model.x[i] == 1)


def _add_hires(model: _Model) -> None:
    """Virtual new hires per community, with the role's default capacity.

    For each community ``k`` with ``R_k = Σ_{t∈k} r_t > 0``: hires ``v = 1..R_k``,
    ``y_vt ≤ u_v`` for ``t ∈ k`` with ``r_t > 0``, ``Σ_t y_vt ≤ U·u_v``,
    ``Σ_t h_t y_vt ≤ H`` (when the role caps households) and ``u_v ≥ u_{v+1}``
    (symmetry breaking).  A hire serves only required slots of its community.
    """
    p, m = model.p, model.m
    for k in np.unique(p.group):
        units = np.flatnonzero((p.group == k) & (p.required > 0))
        total = int(p.required[units].sum())
        previous = None
        for _ in range(total):
            v = len(model.hire_used)
            used = m.new_bool_var(f"u{v}")
            ys = []
            for t in units:
                y = m.new_bool_var(f"y{v}_{t}")
                m.add_implication(y, used)
                model.hire_pairs.append((v, int(t), y))
                ys.append((int(t), y))
            m.add(sum(y for _, y in ys) <= p.hire_max_units * used)
            if p.hire_max_households:
                m.add(sum(int(p.households[t]) * y for t, y in ys) <= p.hire_max_households)
            if previous is not None:
                m.add_implication(used, previous)
            previous = used
            model.hire_used.append(used)
            model.hire_group.append(int(k))


def _add_coverage(model: _Model) -> None:
    """Each unit gets its required people, real or new, and no more than allowed.

    ``r_t ≤ Σ_w x_wt + Σ_v y_vt`` and ``Σ_w x_wt + Σ_v y_vt ≤ m_t``.
    """
    p, m = model.p, model.m
    new_of_unit: list[list[cp_model.IntVar]] = [[] for _ in range(p.n_units)]
    for _, t, y in model.hire_pairs:
        new_of_unit[t].append(y)
    for t in range(p.n_units):
        served = sum(model.x[i] for i in model.pairs_of_unit[t]) + sum(new_of_unit[t])
        if p.required[t] > 0:
            m.add(served >= int(p.required[t]))
        if len(model.pairs_of_unit[t]) + len(new_of_unit[t]) > p.max_people[t]:
            m.add(served <= int(p.max_people[t]))


def _add_capacity(model: _Model) -> None:
    """No person serves more units or households than allowed.

    ``Σ_t x_wt ≤ U_w`` and, where set, ``Σ_t h_t x_wt ≤ H_w``.
    """
    p, m = model.p, model.m
    for w, pairs in enumerate(model.pairs_of_person):
        if len(pairs) > p.max_units[w]:
            m.add(sum(model.x[i] for i in pairs) <= int(p.max_units[w]))
        if p.max_households[w]:
            load = sum(int(p.households[p.pair_t[i]]) * model.x[i] for i in pairs)
            m.add(load <= int(p.max_households[w]))


def _add_same_group(model: _Model) -> None:
    """All units of a person lie in one community.

    ``z_wk ∈ {0, 1}``, ``Σ_k z_wk ≤ 1`` and ``x_wt ≤ z_{w,k(t)}``; only for people who
    may serve several units with candidates in several communities.
    """
    p, m = model.p, model.m
    if not p.same_group:
        return
    for w, pairs in enumerate(model.pairs_of_person):
        groups = np.unique(p.group[p.pair_t[pairs]]) if pairs else np.array([], dtype=int)
        if p.max_units[w] <= 1 or len(groups) <= 1:
            continue
        z = {int(k): m.new_bool_var(f"z{w}_{k}") for k in groups}
        m.add_at_most_one(z.values())
        for i in pairs:
            m.add_implication(model.x[i], z[int(p.group[p.pair_t[i]])])


def _fair_share(p: RoleProblem) -> tuple[int, int]:
    """Households per person: over required slots (per person) and over everyone (per unit)."""
    relevant = (p.required > 0) | p.assign_all
    total = int(p.households[relevant].sum())
    slots = int(p.required.sum())
    per_person = -(-total // max(1, min(p.n_people, slots) if slots else p.n_people))
    per_unit = -(-total // max(1, p.n_people))
    return per_person, per_unit


def _add_balance(model: _Model) -> None:
    """Workload balance by households, with ``β`` = ``balance_weight`` per household.

    Person term (roles where one person may serve several units):
    ``excess_w ≥ Σ_t h_t x_wt − L``, ``excess_w ≥ 0``, ``L = ⌈H / min(W, S)⌉``: the
    households a person serves above the fair share ``L``.  Unit term (``assign_all``
    roles, whose number of people per unit varies): ``dev_t ≥ |L'·n_t − h_t|`` with
    ``n_t`` the people of unit ``t`` and ``L' = ⌈H / W⌉``: people spread in proportion
    to households.
    """
    p, m = model.p, model.m
    if not p.balance_weight or p.n_people == 0:
        return
    share, per_unit = _fair_share(p)
    h_max = int(p.households.sum())
    if (p.max_units > 1).any():
        for w, pairs in enumerate(model.pairs_of_person):
            if p.max_units[w] <= 1 or not pairs:
                continue
            excess = m.new_int_var(0, h_max, f"excess{w}")
            load = sum(int(p.households[p.pair_t[i]]) * model.x[i] for i in pairs)
            m.add(excess >= load - share)
            model.cost_terms.append((p.balance_weight, excess))
    if p.assign_all and (p.max_people > p.required).any():
        for t in range(p.n_units):
            pairs = model.pairs_of_unit[t]
            if not pairs:
                continue
            count = sum(model.x[i] for i in pairs)
            dev = m.new_int_var(0, max(h_max, per_unit * len(pairs)), f"dev{t}")
            m.add(dev >= per_unit * count - int(p.households[t]))
            m.add(dev >= int(p.households[t]) - per_unit * count)
            model.cost_terms.append((p.balance_weight, dev))


def _add_idle(model: _Model) -> None:
    """Idle people of an ``assign_all`` role cost ``ι`` each: ``idle_w ≥ 1 − Σ_t x_wt``."""
    p, m = model.p, model.m
    if not p.assign_all or not p.idle_cost:
        return
    for w, pairs in enumerate(model.pairs_of_person):
        idle = m.new_bool_var(f"idle{w}")
        m.add(idle + sum(model.x[i] for i in pairs) >= 1)
        model.cost_terms.append((p.idle_cost, idle))


def _restaffing_objective(model: _Model) -> cp_model.LinearExprT | None:
    """Fewest people moved, then most previous pairs kept.

    ``moved_w ≥ x_wt`` for each candidate ``t`` not kept and
    ``moved_w ≥ 1 − Σ_{t kept} x_wt`` for every person who had an assignment;
    objective ``(K+1)·Σ_w moved_w − Σ_{kept} x_wt`` with ``K`` keepable pairs.
    """
    p, m = model.p, model.m
    if not p.pair_keep.any():
        return None
    moved = []
    for w, pairs in enumerate(model.pairs_of_person):
        if not p.had_previous[w]:
            continue
        mv = m.new_bool_var(f"moved{w}")
        kept = [model.x[i] for i in pairs if p.pair_keep[i]]
        for i in pairs:
            if not p.pair_keep[i]:
                m.add_implication(model.x[i], mv)
        m.add(mv + sum(kept) >= 1)
        moved.append(mv)
    keepable = int(p.pair_keep.sum())
    return (keepable + 1) * sum(moved) - sum(model.x[i] for i in np.flatnonzero(p.pair_keep))


def build_model(problem: RoleProblem) -> _Model:
    """Build the full model (all constraint families; objectives are set by the phases)."""
    model = _Model(problem)
    _add_pinned(model)
    _add_hires(model)
    _add_coverage(model)
    _add_capacity(model)
    _add_same_group(model)
    _add_balance(model)
    _add_idle(model)
    return model


def _solver(time_limit: float, seed: int, threads: int) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    params = solver.parameters
    params.max_deterministic_time = float(time_limit)
    params.max_time_in_seconds = 4 * float(time_limit) + 10  # runaway guard only
    params.random_seed = int(seed)
    params.num_workers = max(1, int(threads))
    if threads > 1:
        params.interleave_search = True
    params.log_search_progress = False
    return solver


def solve_role(
    problem: RoleProblem,
    *,
    time_limit: float = 10.0,
    seed: int = 0,
    threads: int = 1,
    label: str = "role",
) -> RoleSolution:
    """Solve one role's model phase by phase (see the module docstring).

    Parameters
    ----------
    problem
        The arrays of the role.
    time_limit
        CP-SAT deterministic time budget per phase (about seconds).
    seed
        CP-SAT ``random_seed``.
    threads
        CP-SAT workers; above 1 they run interleaved, which keeps results reproducible.
    label
        Role name for error messages.

    Returns
    -------
    RoleSolution

    Raises
    ------
    SolverError
        If the first phase finds no plan at all within the budget (the model always
        has one: everything left to new hires), or the model is invalid.
    """
    model = build_model(problem)
    m = model.m
    phases: list[PhaseResult] = []
    values: list[int] | None = None
    all_vars = [*model.x, *model.hire_used, *(y for _, _, y in model.hire_pairs)]

    def run(name: str, objective: cp_model.LinearExprT) -> int | None:
        nonlocal values
        m.minimize(objective)
        if values is not None:
            m.clear_hints()
            for var, value in zip(all_vars, values, strict=True):
                m.add_hint(var, value)
        solver = _solver(time_limit, seed, threads)
        started = time.perf_counter()
        status = solver.solve(m)
        wall = time.perf_counter() - started
        name_status = solver.status_name(status)
        if status == cp_model.MODEL_INVALID:  # pragma: no cover - a bug
            msg = (
                f"CP-SAT says the staffing model of {label} is invalid ({m.validate()}): "
                "this is a gridkit bug, please report it with the roster and policy."
            )
            raise SolverError(msg)
        found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
        obj = round(solver.objective_value) if found else None
        bound = round(solver.best_objective_bound) if found else None
        phases.append(PhaseResult(name, name_status, obj, bound, solver.deterministic_time, wall))
        if found:
            values = [int(solver.boolean_value(v)) for v in all_vars]
        return obj

    hires_expr = (int(problem.required.sum()) + 1) * sum(model.hire_used) + sum(
        y for _, _, y in model.hire_pairs
    )
    if model.hire_used:
        best = run("hires", hires_expr)
    else:
        best = run("feasibility", 0)
    if values is None:
        msg = (
            f"CP-SAT found no staffing plan for {label} within {time_limit:g} deterministic "
            f"seconds (status {phases[-1].status}): raise `time_limit` (CLI `--time-limit`), "
            "or lower the policy's `candidates`/`max_pairs` to shrink the model."
        )
        raise SolverError(msg)
    if model.hire_used and best is not None:
        m.add(hires_expr <= best)
    restaff = _restaffing_objective(model)
    if restaff is not None:
        best = run("restaffing", restaff)
        if best is not None:
            m.add(restaff <= best)
    cost = sum(int(c) * model.x[i] for i, c in enumerate(problem.pair_cost) if c) + sum(
        weight * term for weight, term in model.cost_terms
    )
    last_good = values
    run("cost", cost)
    cost_phase = phases[-1]
    if cost_phase.objective is None:  # no solution within the budget: keep the previous phase's
        values = last_good
    chosen = np.array(values[: len(model.x)], dtype=bool)
    offset = len(model.x)
    used = values[offset : offset + len(model.hire_used)]
    hire_values = values[offset + len(model.hire_used) :]
    served: dict[int, list[int]] = {}
    for (v, t, _), value in zip(model.hire_pairs, hire_values, strict=True):
        if value:
            served.setdefault(v, []).append(t)
    hires = [(model.hire_group[v], sorted(served.get(v, []))) for v, u in enumerate(used) if u]
    objective = cost_phase.objective
    bound = cost_phase.bound
    if objective is None:
        objective = _evaluate(problem, chosen)
        bound = 0
    optimal = all(ph.status == "OPTIMAL" for ph in phases)
    return RoleSolution(
        chosen=chosen,
        hires=hires,
        phases=phases,
        status="OPTIMAL" if optimal else "FEASIBLE",
        objective=int(objective),
        bound=int(bound if bound is not None else 0),
    )


def _evaluate(problem: RoleProblem, chosen: np.ndarray) -> int:
    """Distance part of the cost of ``chosen`` (a fallback when the cost phase timed out)."""
    return int(problem.pair_cost[chosen].sum())
