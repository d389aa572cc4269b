"""From households to units: buildings grouped from points, Voronoi cells inside blocks, compounds,
and their rook adjacency.

This folder's public door: import from ``gridkit.units``."""

from __future__ import annotations

from gridkit.units.adjacency import (
    adjacency_matrix,
    barrier_crossings,
    rook_pairs,
)
from gridkit.units.cells import (
    COMPOUND_BUILDING_COLUMNS,
    COMPOUND_NAME_COLUMNS,
    MERGE_DISTANCE,
    UNASSIGNED_REASONS,
    Units,
    attach_compounds,
    block_cells,
    build_units,
    community_blocks,
    community_of_points,
    compound_buildings_column,
    compound_shares,
    group_points,
    split_compound,
    unit_cells,
)
from gridkit.units.dissolve import dissolve_cells

__all__ = [
    "COMPOUND_BUILDING_COLUMNS",
    "COMPOUND_NAME_COLUMNS",
    "MERGE_DISTANCE",
    "UNASSIGNED_REASONS",
    "Units",
    "adjacency_matrix",
    "attach_compounds",
    "barrier_crossings",
    "block_cells",
    "build_units",
    "community_blocks",
    "community_of_points",
    "compound_buildings_column",
    "compound_shares",
    "dissolve_cells",
    "group_points",
    "rook_pairs",
    "split_compound",
    "unit_cells",
]
