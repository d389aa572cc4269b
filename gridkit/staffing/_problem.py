"""One role's staffing problem as arrays, its solution, and the measures of a plan.

:class:`RoleProblem` is what :mod:`gridkit.staffing._inputs` builds for each role and the
solvers (:mod:`gridkit.staffing._flow`, :mod:`gridkit.staffing._cpsat`) read;
:class:`RoleSolution` is what they return.  The measures of a plan shared by the solvers
and the greedy baseline live here too: the cost-phase objective (:func:`evaluate`), the
phase 1 and 2 objectives (:func:`hires_value`, :func:`restaffing_value`), the slots a plan
leaves missing and the new people that would fill them.  Notation and objective:
:mod:`gridkit.staffing._model`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "DM",
    "PhaseResult",
    "RoleProblem",
    "RoleSolution",
    "deviation",
    "evaluate",
    "hires_value",
    "missing_slots",
    "restaffing_value",
    "spread_hires",
]

DM = 10  # model cost units per metre (decimetres)


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


# --------------------------------------------------------------------------- measures of a plan


def deviation(
    share: int, count: np.ndarray, households: np.ndarray | np.integer | int
) -> np.ndarray:
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
        total += p.balance_weight * int(deviation(per_unit, count, p.households)[has_pairs].sum())
    if p.assign_all and p.idle_cost:
        served = np.bincount(w, minlength=p.n_people)
        total += p.idle_cost * int((served == 0).sum())
    return total


def spread_hires(p: RoleProblem, slots: np.ndarray) -> list[tuple[int, list[int]]]:
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


def missing_slots(p: RoleProblem, chosen: np.ndarray) -> np.ndarray:
    """Slots of each unit the plan ``chosen`` leaves to new people, ``max(r_t − n_t, 0)``."""
    count = np.bincount(p.pair_t[chosen], minlength=p.n_units)
    return np.maximum(p.required - count, 0)


def hires_value(p: RoleProblem, plan: np.ndarray) -> int:
    """Phase 1 objective of a plan: ``(S+1)·new people + missing slots``."""
    slots = missing_slots(p, plan)
    return (int(p.required.sum()) + 1) * len(spread_hires(p, slots)) + int(slots.sum())


def restaffing_value(p: RoleProblem, plan: np.ndarray) -> int:
    """Phase 2 objective of a plan: ``(K+1)·people moved − pairs kept``."""
    kept = int((plan & p.pair_keep).sum())
    lost = np.bincount(p.pair_w[plan & ~p.pair_keep], minlength=p.n_people) > 0
    held = np.bincount(p.pair_w[plan & p.pair_keep], minlength=p.n_people) > 0
    moved = int((p.had_previous & (lost | ~held)).sum())
    return (int(p.pair_keep.sum()) + 1) * moved - kept
