"""Reading inputs: community boundaries, households, barriers (any format and CRS gridkit
knows), and the checks on them.

This folder's public door: import from ``gridkit.io``.

:func:`read_boundaries` and :func:`read_households` return a new GeoDataFrame in
EPSG:4326 with a fresh RangeIndex, the contract columns of ``docs/design.md`` first
(then any other source columns, renamed ``<name>_src`` if they collide with a contract
column) and ``attrs["source"]`` set to the path.

Formats
    GeoJSON (``.geojson``/``.json``), GeoPackage (``.gpkg``; pass ``layer`` when
    it holds several layers), Shapefile (``.shp``, or zipped ``.zip``), read
    with pyogrio.  Households may also be a CSV/TSV/TXT table with lon/lat
    columns (UTF-8, or GB18030 as written by Chinese Excel), or an in-memory
    DataFrame / GeoDataFrame (copied, never modified).

Coordinate systems
    A file's declared CRS is used unless ``input_crs`` is given, which
    overrides it: ``"wgs84"``, ``"gcj02"`` (Amap/Gaode, Tencent), ``"bd09"``
    (Baidu) or anything pyproj accepts (``"EPSG:4547"``).  GCJ-02 and BD-09 are
    converted with :func:`gridkit.crs.to_wgs84`.  A vector file without a CRS
    needs ``input_crs``; a table without ``input_crs`` is assumed to be WGS84
    and a :class:`~gridkit.errors.GridkitWarning` says so.

Validation
    All row-level problems of a file (missing/duplicated ids, missing, empty
    or wrongly typed geometries, bad household counts, coordinates that are
    swapped or not lon/lat) are collected and raised as one
    :class:`~gridkit.errors.InputError` naming the 1-based rows and the fix.
    Invalid polygons are repaired with ``shapely.make_valid`` (polygonal parts
    kept) and reported with a ``GridkitWarning``.  Communities overlapping by
    more than 1 m² are an error; smaller slivers from digitising are tolerated.

Modules
    :mod:`~gridkit.io.boundaries` and :mod:`~gridkit.io.households` hold the two
    main readers, :mod:`~gridkit.io.parcels` the reader of dedicated-grid parcels;
    :mod:`~gridkit.io.tables` the reader kit they share with the readers of
    other folders (grid layers, rosters, household shards): loading files, columns,
    cells as text, the input CRS, assembling the result; :mod:`~gridkit.io.validate`
    the checks (a :class:`Problems` collector, then one error).
"""

from __future__ import annotations

from gridkit.io.boundaries import BOUNDARY_COLUMNS, read_boundaries
from gridkit.io.bounds import BOUNDS_COLUMNS, TYPE_COLUMNS, bounds_table, load_community_rules
from gridkit.io.households import HOUSEHOLD_COLUMNS, read_households
from gridkit.io.parcels import DEDICATED_COLUMNS, dedicated_type, read_dedicated
from gridkit.io.tables import (
    TABLE_FORMATS,
    TABLE_SUFFIXES,
    VECTOR_FORMATS,
    as_optional_text,
    as_text,
    assemble_frame,
    cell_text,
    check_coordinates,
    checked_polygons,
    columns_text,
    frame_to_wgs84,
    guess_separator,
    load_file,
    pick_lonlat_columns,
    read_vector,
    resolve_input_crs,
    simplify_single_parts,
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
    "BOUNDS_COLUMNS",
    "DEDICATED_COLUMNS",
    "HOUSEHOLD_COLUMNS",
    "OVERLAP_TOLERANCE_M2",
    "POLYGONAL",
    "ROW_NOTE",
    "SLIVER_WIDTH_M",
    "TABLE_FORMATS",
    "TABLE_SUFFIXES",
    "TYPE_COLUMNS",
    "VECTOR_FORMATS",
    "Problems",
    "as_optional_text",
    "as_text",
    "assemble_frame",
    "bounds_table",
    "cell_text",
    "check_boundaries_overlap",
    "check_coordinates",
    "check_geometries",
    "check_household_counts",
    "check_ids",
    "check_lonlat_range",
    "check_not_degrees",
    "check_swapped_against",
    "checked_polygons",
    "columns_text",
    "dedicated_type",
    "frame_to_wgs84",
    "guess_separator",
    "load_community_rules",
    "load_file",
    "parse_coordinates",
    "pick_lonlat_columns",
    "read_boundaries",
    "read_dedicated",
    "read_households",
    "read_vector",
    "repair_geometries",
    "resolve_input_crs",
    "rows_text",
    "simplify_single_parts",
]
