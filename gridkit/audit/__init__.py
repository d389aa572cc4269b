"""Checking an existing grid map: households per grid, contiguity, gaps and overlaps.

This folder's public door: import from ``gridkit.audit``."""

from __future__ import annotations

from gridkit.audit.core import (
    AUDIT_COLUMNS,
    AUDIT_FILES,
    GAP_COLUMNS,
    PROBLEMS,
    SLIVER_WIDTH_M,
    TOLERANCE_M2,
    AuditResult,
    audit_grids,
    format_summary,
    read_grids,
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
