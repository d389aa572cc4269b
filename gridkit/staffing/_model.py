"""Private optimisation core of staffing: one role's problem as arrays in, chosen pairs out.

The core is geometry-free (spopt's ``from_cost_matrix`` half):
:mod:`gridkit.staffing._inputs` turns grids, communities and a roster into a
:class:`RoleProblem` and :mod:`gridkit.staffing.assign` reads the :class:`RoleSolution` back.

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
  community-level relaxation (``_hires_bound`` in :mod:`gridkit.staffing._cpsat`), so a
  hint that meets it is proven without a solve.  Deterministic: one worker (or
  interleaved workers), a fixed seed and a deterministic time budget.

Where the core lives: :mod:`gridkit.staffing._problem` (the arrays, the solution and the
measures of a plan), :mod:`gridkit.staffing._greedy` (the greedy plan),
:mod:`gridkit.staffing._flow` (min-cost flow), :mod:`gridkit.staffing._cpsat` (CP-SAT);
this module chooses the method (:func:`solve_role`) and gathers the names the rest of
:mod:`gridkit.staffing` uses.
"""

from __future__ import annotations

from gridkit.staffing._cpsat import solve_cpsat
from gridkit.staffing._flow import solve_flow
from gridkit.staffing._greedy import greedy
from gridkit.staffing._problem import DM, PhaseResult, RoleProblem, RoleSolution, evaluate

__all__ = [
    "DM",
    "PhaseResult",
    "RoleProblem",
    "RoleSolution",
    "evaluate",
    "greedy",
    "solve_role",
]


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
        return solve_flow(problem)
    return solve_cpsat(problem, time_limit=time_limit, seed=seed, threads=threads, label=label)
