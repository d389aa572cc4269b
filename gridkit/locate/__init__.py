"""Finding the grid of any point: its grid, community, street and responsible people.

This folder's public door: import from ``gridkit.locate`` (the ``gridkit locate`` command
is :mod:`gridkit.cli.locate`).
"""

from __future__ import annotations

from gridkit.locate.points import LOCATE_COLUMNS, MATCHES, locate_points, write_located

__all__ = ["LOCATE_COLUMNS", "MATCHES", "locate_points", "write_located"]
