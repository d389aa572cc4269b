"""Redrawing grids after housing changes while keeping valid grids and their codes.

This folder's public door: import from ``gridkit.regenerate``.

- :mod:`gridkit.regenerate.redraw` — :func:`regenerate`, the whole run;
- :mod:`gridkit.regenerate.previous` — :func:`read_previous`, the previous grid map;
- :mod:`gridkit.regenerate.community` — one community: kept and broken grids;
- :mod:`gridkit.regenerate.resolve` — the CP-SAT re-solve of a region;
- :mod:`gridkit.regenerate.stable_codes` — codes across generations,
  :func:`moved_households`;
- :mod:`gridkit.regenerate.changes` — :class:`RegenPlan`, the changes, diff and summary.
"""

from __future__ import annotations

from gridkit.regenerate.changes import CHANGE_COLUMNS, REGEN_FILES, RegenPlan
from gridkit.regenerate.previous import CODES_FILE, Previous, read_previous
from gridkit.regenerate.redraw import regenerate
from gridkit.regenerate.stable_codes import moved_households

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
