"""From households to units: buildings grouped from points, Voronoi cells inside blocks,
compounds and their strips, rook adjacency (and the links that cross a barrier), cells
dissolved into grids; dedicated parcels carved out of their communities.

This folder's public door: import from ``gridkit.units``."""

from __future__ import annotations

from gridkit.units.adjacency import (
    adjacency_matrix,
    barrier_crossings,
    rook_pairs,
)
from gridkit.units.build import (
    UNASSIGNED_REASONS,
    Units,
    build_units,
)
from gridkit.units.cells import (
    block_cells,
    community_blocks,
    unit_cells,
)
from gridkit.units.compounds import (
    COMPOUND_BUILDING_COLUMNS,
    COMPOUND_NAME_COLUMNS,
    attach_compounds,
    compound_buildings_column,
    compound_shares,
    split_compound,
)
from gridkit.units.dissolve import dissolve_cells
from gridkit.units.parcels import (
    Dedicated,
    PieceTally,
    carve_parcels,
    full_membership,
    locate_rows,
    row_points,
)
from gridkit.units.points import (
    MERGE_DISTANCE,
    community_of_points,
    group_points,
)

__all__ = [
    "COMPOUND_BUILDING_COLUMNS",
    "COMPOUND_NAME_COLUMNS",
    "MERGE_DISTANCE",
    "UNASSIGNED_REASONS",
    "Dedicated",
    "PieceTally",
    "Units",
    "adjacency_matrix",
    "attach_compounds",
    "barrier_crossings",
    "block_cells",
    "build_units",
    "carve_parcels",
    "community_blocks",
    "community_of_points",
    "compound_buildings_column",
    "compound_shares",
    "dissolve_cells",
    "full_membership",
    "group_points",
    "locate_rows",
    "rook_pairs",
    "row_points",
    "split_compound",
    "unit_cells",
]
