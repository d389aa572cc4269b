"""Both readers and the reader kit under one module: ``gridkit.io.readers``.

:func:`read_boundaries` lives in :mod:`gridkit.io.boundaries`, :func:`read_households`
in :mod:`gridkit.io.households` and the kit they share with the readers of other
folders in :mod:`gridkit.io.tables`; this module gathers them for code that imports
``gridkit.io.readers``.  New code imports from the door, :mod:`gridkit.io`.
"""

from __future__ import annotations

from gridkit.io.boundaries import BOUNDARY_COLUMNS, read_boundaries
from gridkit.io.households import HOUSEHOLD_COLUMNS, read_households
from gridkit.io.tables import (
    TABLE_FORMATS,
    TABLE_SUFFIXES,
    VECTOR_FORMATS,
    as_optional_text,
    as_text,
    assemble_frame,
    cell_text,
    check_coordinates,
    columns_text,
    frame_to_wgs84,
    guess_separator,
    load_file,
    pick_lonlat_columns,
    read_vector,
    resolve_input_crs,
    simplify_single_parts,
)

__all__ = [
    "BOUNDARY_COLUMNS",
    "HOUSEHOLD_COLUMNS",
    "TABLE_FORMATS",
    "TABLE_SUFFIXES",
    "VECTOR_FORMATS",
    "as_optional_text",
    "as_text",
    "assemble_frame",
    "cell_text",
    "check_coordinates",
    "columns_text",
    "frame_to_wgs84",
    "guess_separator",
    "load_file",
    "pick_lonlat_columns",
    "read_boundaries",
    "read_households",
    "read_vector",
    "resolve_input_crs",
    "simplify_single_parts",
]
