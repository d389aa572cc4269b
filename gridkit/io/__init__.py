"""Reading inputs: community boundaries, households, barriers (any format and CRS gridkit knows),
and the checks on them.

This folder's public door: import from ``gridkit.io``."""

from __future__ import annotations

from gridkit.io.readers import (
    BOUNDARY_COLUMNS,
    HOUSEHOLD_COLUMNS,
    read_boundaries,
    read_households,
)
from gridkit.io.validate import (
    OVERLAP_TOLERANCE_M2,
    POLYGONAL,
    ROW_NOTE,
    SLIVER_WIDTH_M,
    Problems,
    check_boundaries_overlap,
    check_geometries,
    check_household_counts,
    check_ids,
    check_lonlat_range,
    check_not_degrees,
    check_swapped_against,
    parse_coordinates,
    repair_geometries,
    rows_text,
)

__all__ = [
    "BOUNDARY_COLUMNS",
    "HOUSEHOLD_COLUMNS",
    "OVERLAP_TOLERANCE_M2",
    "POLYGONAL",
    "ROW_NOTE",
    "SLIVER_WIDTH_M",
    "Problems",
    "check_boundaries_overlap",
    "check_geometries",
    "check_household_counts",
    "check_ids",
    "check_lonlat_range",
    "check_not_degrees",
    "check_swapped_against",
    "parse_coordinates",
    "read_boundaries",
    "read_households",
    "repair_geometries",
    "rows_text",
]
