"""Checking an existing grid map: households per grid, contiguity, gaps and overlaps.

This folder's public door: import from ``gridkit.audit``.

- :mod:`gridkit.audit.grid_map` — :func:`read_grids`, reading a grid map;
- :mod:`gridkit.audit.grid_checks` — :func:`audit_grids`, the checks of every grid;
- :mod:`gridkit.audit.report` — :class:`AuditResult`, what an audit returns and writes,
  and :func:`format_summary`.
"""

from __future__ import annotations

from gridkit.audit.grid_checks import SLIVER_WIDTH_M, TOLERANCE_M2, audit_grids
from gridkit.audit.grid_map import read_grids
from gridkit.audit.report import (
    AUDIT_COLUMNS,
    AUDIT_FILES,
    GAP_COLUMNS,
    PROBLEMS,
    AuditResult,
    format_summary,
)

__all__ = [
    "AUDIT_COLUMNS",
    "AUDIT_FILES",
    "GAP_COLUMNS",
    "PROBLEMS",
    "SLIVER_WIDTH_M",
    "TOLERANCE_M2",
    "AuditResult",
    "audit_grids",
    "format_summary",
    "read_grids",
]
