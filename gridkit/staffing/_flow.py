"""Exact solution of a role whose people serve one unit each, by two min-cost flows.

Used by :func:`gridkit.staffing._model.solve_role` when nobody serves more than one unit
(:attr:`RoleProblem.is_network`).  Notation: :mod:`gridkit.staffing._model`.
"""

from __future__ import annotations

import time

import numpy as np
from ortools.graph.python import min_cost_flow

from gridkit.errors import SolverError
from gridkit.staffing._problem import (
    PhaseResult,
    RoleProblem,
    RoleSolution,
    deviation,
    evaluate,
    hires_value,
    missing_slots,
    restaffing_value,
    spread_hires,
)

__all__ = ["solve_flow"]


def solve_flow(p: RoleProblem) -> RoleSolution:
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
            marginal.append(p.balance_weight * np.diff(deviation(per_unit, n, p.households[t])))
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
    slots = missing_slots(p, chosen)
    objective = evaluate(p, chosen)
    wall = time.perf_counter() - started
    values = [("hires", hires_value(p, chosen))]
    if p.pair_keep.any():
        values.append(("restaffing", restaffing_value(p, chosen)))
    values.append(("cost", objective))
    phases = [PhaseResult(name, "OPTIMAL", v, v, 0.0, wall) for name, v in values]
    return RoleSolution(
        chosen=chosen, hires=spread_hires(p, slots), method="min_cost_flow",
        phases=phases, status="OPTIMAL", objective=objective, bound=objective,
    )
