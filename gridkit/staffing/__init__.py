"""Staffing the grids: rosters, the policy, and the assignment of grid workers, leaders, police,
volunteers and the roles a policy defines (社区负责人, 楼栋长, 第一书记, 包联单位, ...).

This folder's public door: import from ``gridkit.staffing``.

Modules: :mod:`~gridkit.staffing.policy` (roles and the staffing policy),
:mod:`~gridkit.staffing.roster` (reading and writing rosters),
:mod:`~gridkit.staffing.grids` (the grid layer to staff),
:mod:`~gridkit.staffing.buildings` (the buildings building roles serve),
:mod:`~gridkit.staffing.eligibility` (who may serve a role, grid types, the weakest grids),
:mod:`~gridkit.staffing.synthetic` (a synthetic roster for the demo),
:mod:`~gridkit.staffing.assign` (:func:`assign_workers`) and
:mod:`~gridkit.staffing.plan` (the plan, its files and :func:`verify_staffing`); the
optimisation core is private (``_inputs``, ``_people``, ``_tables``, ``_model`` and its
parts, ``_assemble``)."""

from __future__ import annotations

from gridkit.staffing.assign import assign_workers
from gridkit.staffing.buildings import BUILDING_COLUMNS, read_staffing_buildings
from gridkit.staffing.eligibility import check_requirements, rank_weak_grids
from gridkit.staffing.grids import read_staffing_grids
from gridkit.staffing.plan import (
    ROSTER_COLUMNS,
    SHORTAGE_COLUMNS,
    STAFFING_FILES,
    StaffingPlan,
    read_previous_roster,
    verify_staffing,
)
from gridkit.staffing.policy import (
    ROLE_LABELS,
    ROLES,
    SCOPES,
    RolePolicy,
    StaffingPolicy,
    load_policy,
    normalise_role,
)
from gridkit.staffing.roster import WORKER_COLUMNS, mask_phone, read_workers, write_workers
from gridkit.staffing.synthetic import make_roster

#: The old name of :func:`read_staffing_grids`, kept for earlier code (not to be confused
#: with :func:`gridkit.audit.read_grids`, which reads any grid map).
read_grids = read_staffing_grids
#: The old name of :func:`read_previous_roster`, kept for earlier code (not to be confused
#: with :func:`gridkit.regenerate.read_previous`, which reads an earlier partition).
read_previous = read_previous_roster

__all__ = [
    "BUILDING_COLUMNS",
    "ROLES",
    "ROLE_LABELS",
    "ROSTER_COLUMNS",
    "SCOPES",
    "SHORTAGE_COLUMNS",
    "STAFFING_FILES",
    "WORKER_COLUMNS",
    "RolePolicy",
    "StaffingPlan",
    "StaffingPolicy",
    "assign_workers",
    "check_requirements",
    "load_policy",
    "make_roster",
    "mask_phone",
    "normalise_role",
    "rank_weak_grids",
    "read_grids",
    "read_previous",
    "read_previous_roster",
    "read_staffing_buildings",
    "read_staffing_grids",
    "read_workers",
    "verify_staffing",
    "write_workers",
]
