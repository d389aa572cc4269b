"""Staff every grid: assign grid workers, leaders, police, helpers and the policy's own roles.

:func:`assign_workers` takes a grid layer (``gridkit partition`` output), a roster
(:func:`gridkit.staffing.read_workers`) and a staffing policy
(:func:`gridkit.staffing.load_policy`; with building roles also the plan's buildings) and
returns a :class:`StaffingPlan`: who serves each grid (``roster``), the grid layer with
the names per role (``grids``), what is missing (``shortages``, and the new people that
would close each gap) and a ``summary``.  The plan is assembled by
:mod:`gridkit.staffing._assemble`.

Distances are metres in the local UTM zone (:func:`gridkit.crs.local_metric_crs`) from a
person's home point to the *nearest point* of the grid (0 when they live in it), or of
the community for community-level roles; a person known only by their home community
is measured from that community's boundary.  The model (:mod:`gridkit.staffing._model`) is
solved per role, lexicographically: fewest new hires, then (re-staffing) fewest people
moved, then least distance plus penalties for crossing community lines and for
unbalanced workload.  See ``docs/staffing.md``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import pandas as pd

from gridkit.contracts import WORKER_COLUMNS
from gridkit.staffing._assemble import assemble
from gridkit.staffing._inputs import RoleInput, prepare, weak_role_input
from gridkit.staffing._model import DM, RoleSolution, solve_role
from gridkit.staffing.buildings import BuildingsLike, buildings_beside, read_staffing_buildings
from gridkit.staffing.grids import GridsLike, read_staffing_grids
from gridkit.staffing.plan import StaffingPlan
from gridkit.staffing.policy import StaffingPolicy, load_policy
from gridkit.staffing.roster import read_workers
from gridkit.utils import progress_class

tqdm = progress_class()

__all__ = ["assign_workers"]

logger = logging.getLogger(__name__)

WorkersLike = pd.DataFrame | str | os.PathLike[str]
PolicyLike = StaffingPolicy | Mapping[str, Any] | str | os.PathLike[str] | None



# --------------------------------------------------------------------------- the main function


def assign_workers(
    grids: GridsLike,
    workers: WorkersLike,
    *,
    policy: PolicyLike = None,
    previous: Any = None,
    buildings: BuildingsLike | None = None,
    time_limit: float = 10.0,
    seed: int = 0,
    threads: int = 1,
    include_phone: bool = False,
    verbose: bool = False,
) -> StaffingPlan:
    """Assign the people of a roster to grids and communities under a staffing policy.

    Parameters
    ----------
    grids
        The grid layer: a GeoDataFrame, ``grids.geojson`` or the ``gridkit partition``
        output folder (see :func:`~gridkit.staffing.grids.read_staffing_grids`).
    workers
        The roster: a path or frame read with :func:`gridkit.staffing.read_workers` under
        ``policy`` (a frame it already returned is accepted as is).
    policy
        The staffing policy: ``None`` for the defaults, a TOML path, a dict or a
        :class:`~gridkit.staffing.StaffingPolicy` (see :func:`gridkit.staffing.load_policy`).
    previous
        An earlier plan to re-staff from (a :class:`StaffingPlan`, its roster, or the
        folder / ``roster.csv`` written by ``gridkit assign``): current assignments are
        kept where the rules still allow, moving as few people as possible.
    buildings
        The buildings that building roles (``scope = "building"``, 楼栋长) serve: the
        plan's ``buildings.geojson`` (or a frame; see
        :func:`~gridkit.staffing.buildings.read_staffing_buildings`).  Default: the
        ``buildings.geojson`` beside the grids when ``grids`` is a folder or file (or a
        frame read from one).  Read only when the policy has a building role.
    time_limit
        CP-SAT deterministic time budget per role and phase (about seconds); roles solved
        by min-cost flow do not use it.
    seed
        CP-SAT random seed.
    threads
        CP-SAT workers per solve (interleaved above 1, so results stay reproducible).
    include_phone
        Put the full phone numbers in ``roster``; by default they are masked
        (``138****5678``): phone numbers are personal data.
    verbose
        Show a progress bar over the roles.

    Returns
    -------
    StaffingPlan
        ``roster``, ``grids``, ``shortages``, ``hires``, ``people``, ``summary``.

    Raises
    ------
    InputError
        Bad grids, roster, policy or previous plan; roster rows that do not match the
        grids (unknown home community without a point, unknown pinned grid, pins beyond a
        capacity).  Every problem is listed with its rows.
    SolverError
        If CP-SAT finds no plan in the time budget (raise ``time_limit``).

    Notes
    -----
    Each role is solved on its own, in the policy's order, except that roles with
    ``weak_grids`` come last: their grids are ranked by the people the ``weak_by`` roles
    got (:func:`~gridkit.staffing.eligibility.rank_weak_grids`).  A role serves only the
    units its rules select (``grids``, ``grid_types``, ``weak_grids``,
    ``min_households``), with the people who meet its ``requires`` (the others are
    listed as ``ineligible``) and, with ``home_community = "same"``, only in their home
    community.  By min-cost flow when nobody serves more than one grid
    (exact, milliseconds), else by CP-SAT (patterns of up to ``max_grids`` grids of one
    community for ``same_community`` roles).
    Per role, three phases are solved, each keeping the optimum of the previous one:
    fewest new hires (shortages, by community), fewest people moved (re-staffing only),
    then least total cost: home-to-unit distance, plus ``cross_community_m`` for each
    unit outside the person's home community, plus ``balance_m_per_household`` per
    household of workload imbalance, plus ``idle_m`` per idle person of an
    ``assign_all`` role.  See ``docs/staffing.md`` for the model.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> from shapely.geometry import box
    >>> from gridkit.staffing import read_workers
    >>> grids = gpd.GeoDataFrame({"grid_code": ["C1-001", "C1-002"], "community_id": "C1",
    ...                           "households": [500, 700]},
    ...                          geometry=[box(115.0, 30.2, 115.005, 30.205),
    ...                                    box(115.005, 30.2, 115.01, 30.205)], crs=4326)
    >>> workers = read_workers(pd.DataFrame({
    ...     "worker_id": ["A", "B"], "name": ["王芳", "李军"], "role": ["专职网格员"] * 2,
    ...     "lon": [115.0075, 115.0025], "lat": [30.2025, 30.2025]}), input_crs="wgs84")
    >>> grid_workers_only = {"roles": {
    ...     "grid_leader": {"per_grid": 0}, "police": {"per_grid": 0},
    ...     "part_time": {"per_grid": 0}, "mediator": {"per_community": 0},
    ...     "legal_adviser": {"per_community": 0}}}
    >>> plan = assign_workers(grids, workers, policy=grid_workers_only)
    >>> plan.roster[["grid_code", "worker_id", "distance_m"]].values.tolist()
    [['C1-001', 'B', 0.0], ['C1-002', 'A', 0.0]]
    >>> plan.shortages.empty, plan.summary["totals"]["all_optimal"]
    (True, True)
    """
    started = time.perf_counter()
    rules = load_policy(policy)
    layer = read_staffing_grids(grids)
    if (
        isinstance(workers, gpd.GeoDataFrame)
        and tuple(workers.columns[: len(WORKER_COLUMNS)]) == WORKER_COLUMNS
    ):
        people_frame = workers.copy()  # already normalised by read_workers
    else:
        people_frame = read_workers(workers, policy=rules)
    building_frame = None
    if any(rp.unit == "building" for rp in rules.roles.values()):
        building_frame = read_staffing_buildings(buildings_beside(grids, layer, buildings),
                                                 layer)
    ctx = prepare(layer, people_frame, rules, previous, buildings=building_frame)
    solutions: dict[str, RoleSolution] = {}
    timing: dict[str, Any] = {}
    bar = tqdm(total=len(ctx.roles) + len(ctx.pending), desc="roles", unit="role",
               disable=not verbose)

    def solve(ri: RoleInput) -> None:
        t0 = time.perf_counter()
        solutions[ri.role] = solve_role(
            ri.problem, time_limit=time_limit, seed=seed, threads=threads, label=ri.role
        )
        timing[ri.role] = round(time.perf_counter() - t0, 3)
        sol = solutions[ri.role]
        logger.info(
            "assign %s: %d people, %d units, %d pairs, %s, cost %.0f m (gap %.3f%%), %d new "
            "people needed, %.2f s", ri.role, ri.problem.n_people, ri.problem.n_units,
            len(ri.problem.pair_w), sol.status, sol.objective / DM, 100 * sol.gap,
            len(sol.hires), timing[ri.role],
        )
        bar.update(1)

    for ri in list(ctx.roles):
        solve(ri)
    for role in ctx.pending:  # weak-grid roles: their grids depend on the roles solved
        ri = weak_role_input(ctx, role, solutions)
        if ri is not None:
            ctx.roles.append(ri)
            solve(ri)
        else:
            bar.update(1)
    bar.close()
    plan = assemble(ctx, solutions, time_limit=time_limit, seed=seed, threads=threads,
                    include_phone=include_phone)
    plan.summary["timing"] = {"total_s": round(time.perf_counter() - started, 3),
                              "roles_s": timing}
    logger.info(
        "assign_workers: %d people in %d grids, %d slots missing, %.1f s",
        plan.summary["totals"]["assigned_people"], len(layer),
        plan.summary["totals"]["slots_missing"], plan.summary["timing"]["total_s"],
    )
    return plan

