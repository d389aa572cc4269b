"""Redrawing grids after housing changes while keeping valid grids and their codes.

This folder's public door: import from ``gridkit.regenerate``."""

from __future__ import annotations

from gridkit.regenerate.core import (
    CHANGE_COLUMNS,
    CODES_FILE,
    REGEN_FILES,
    Previous,
    RegenPlan,
    moved_households,
    read_previous,
    regenerate,
)

__all__ = [
    "CHANGE_COLUMNS",
    "CODES_FILE",
    "REGEN_FILES",
    "Previous",
    "RegenPlan",
    "moved_households",
    "read_previous",
    "regenerate",
]
