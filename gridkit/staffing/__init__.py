"""Staffing the grids: rosters, the policy, and the assignment of grid workers, leaders, police and
volunteers.

This folder's public door: import from ``gridkit.staffing``."""

from __future__ import annotations

from gridkit.staffing.assign import (
    ROSTER_COLUMNS,
    SHORTAGE_COLUMNS,
    STAFFING_FILES,
    StaffingPlan,
    assign_workers,
    read_grids,
    read_previous,
    verify_staffing,
)
from gridkit.staffing.roster import (
    ROLE_LABELS,
    ROLES,
    WORKER_COLUMNS,
    RolePolicy,
    StaffingPolicy,
    load_policy,
    make_roster,
    mask_phone,
    normalise_role,
    read_workers,
    write_workers,
)

__all__ = [
    "ROLES",
    "ROLE_LABELS",
    "ROSTER_COLUMNS",
    "SHORTAGE_COLUMNS",
    "STAFFING_FILES",
    "WORKER_COLUMNS",
    "RolePolicy",
    "StaffingPlan",
    "StaffingPolicy",
    "assign_workers",
    "load_policy",
    "make_roster",
    "mask_phone",
    "normalise_role",
    "read_grids",
    "read_previous",
    "read_workers",
    "verify_staffing",
    "write_workers",
]
