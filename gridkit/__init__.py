"""gridkit: community grid management (网格化管理) in Python.

Stages, one module each:

1. :mod:`gridkit.io` — read community boundaries and households (GeoJSON,
   GeoPackage, Shapefile, CSV; WGS84, GCJ-02, BD-09 or any EPSG CRS).
2. :mod:`gridkit.units` — buildings as units, Voronoi cells tiling each
   community; :mod:`gridkit.adjacency` — their rook adjacency.
3. :mod:`gridkit.partition` — contiguous grids of 400–800 households with
   OR-Tools CP-SAT; :mod:`gridkit.pipeline` runs the whole job.
4. :mod:`gridkit.assign` — staff the grids (OR-Tools); :mod:`gridkit.regenerate` —
   redraw after housing changes with stable codes.
5. :mod:`gridkit.maps` / :mod:`gridkit.export` / :mod:`gridkit.exchange` — folium maps,
   GeoJSON/CSV/JSON, GeoPackage/Shapefile/PostGIS; :mod:`gridkit.audit` checks an
   existing grid map.

Quick start::

    import gridkit as gk
    communities, buildings = gk.datasets.make_sample(seed=0)
    plan = gk.make_grids(communities, buildings)
    plan.grids.explore()
"""

from __future__ import annotations

__version__ = "0.1.0"

import logging

from gridkit import checks, crs, datasets, errors, maps
from gridkit._utils import show_versions
from gridkit.assign import assign_workers
from gridkit.audit import audit_grids
from gridkit.errors import (
    GridkitError,
    GridkitWarning,
    InfeasibleError,
    InputError,
    SolverError,
)
from gridkit.exchange import export_layers
from gridkit.export import to_geojson
from gridkit.io import read_boundaries, read_households
from gridkit.partition import GridRules, partition_community, partition_graph
from gridkit.pipeline import GridPlan, make_grids
from gridkit.regenerate import regenerate
from gridkit.units import attach_compounds, build_units

# A library attaches no handler of its own; the CLI configures logging.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "GridPlan",
    "GridRules",
    "GridkitError",
    "GridkitWarning",
    "InfeasibleError",
    "InputError",
    "SolverError",
    "assign_workers",
    "attach_compounds",
    "audit_grids",
    "build_units",
    "checks",
    "crs",
    "datasets",
    "errors",
    "export_layers",
    "make_grids",
    "maps",
    "partition_community",
    "partition_graph",
    "read_boundaries",
    "read_households",
    "regenerate",
    "show_versions",
    "to_geojson",
]
