"""gridkit: community grid management (网格化管理) in Python.

Where things live (``docs/design.md`` has the full table and the import rules):

- core modules: :mod:`gridkit.errors` (exceptions), :mod:`gridkit.contracts` (column
  names, statuses, roles and labels that other systems read), :mod:`gridkit.crs`,
  :mod:`gridkit.codes` (12-digit codes, grid codes), :mod:`gridkit.checks` (verifiers
  of a plan), :mod:`gridkit.utils` (version, progress bars);
- :mod:`gridkit.io` — read community boundaries, households and dedicated-grid parcels
  (GeoJSON, GeoPackage, Shapefile, CSV; WGS84, GCJ-02, BD-09 or any EPSG CRS);
- :mod:`gridkit.units` — buildings as units, Voronoi cells inside blocks tiling each
  community, compounds, rook adjacency;
- :mod:`gridkit.partition` — contiguous grids of 400–800 households (the stage's door);
  :mod:`gridkit.solver` — its engine (OR-Tools CP-SAT, multilevel search);
- :mod:`gridkit.pipeline` — a whole job, in memory or file to file, on processes or Dask;
- :mod:`gridkit.export` — the output set, GeoJSON/CSV/JSON, other formats and CRSs, Excel;
- :mod:`gridkit.maps` — folium maps and PNG overviews;
- :mod:`gridkit.staffing` — rosters, policy and the assignment of grid workers;
- :mod:`gridkit.audit` — check an existing grid map;
- :mod:`gridkit.regenerate` — redraw after housing changes with stable codes;
- :mod:`gridkit.locate` — the grid, community, street and people of any point;
- :mod:`gridkit.datasets` — the sample district and scenarios; :mod:`gridkit.cli` — the
  ``gridkit`` command.

Quick start::

    import gridkit as gk
    communities, buildings = gk.datasets.make_sample(seed=0)
    plan = gk.make_grids(communities, buildings)
    plan.grids.explore()
"""

from __future__ import annotations

import logging
import sys

from gridkit import checks, crs, datasets, errors, export, maps, pipeline, solver, staffing, units
from gridkit.audit import audit_grids
from gridkit.errors import (
    GridkitError,
    GridkitWarning,
    InfeasibleError,
    InputError,
    SolverError,
)
from gridkit.export import export_layers, to_geojson
from gridkit.io import read_boundaries, read_dedicated, read_households
from gridkit.locate import locate_points
from gridkit.partition import GridRules, partition_community, partition_graph
from gridkit.pipeline import GridPlan, make_grids
from gridkit.regenerate import regenerate
from gridkit.staffing import assign_workers
from gridkit.units import attach_compounds, build_units
from gridkit.utils import __version__, show_versions

# A library attaches no handler of its own; the CLI configures logging.
logging.getLogger(__name__).addHandler(logging.NullHandler())

#: Import paths of gridkit 0.1's flat layout that the README, docs and notebooks used,
#: and the stage folder that now answers them (``from gridkit.roster import make_roster``
#: keeps working; new code imports from the folder).
MOVED_MODULES = {
    "gridkit.adjacency": units,
    "gridkit.assign": staffing,
    "gridkit.attention": export,
    "gridkit.batch": pipeline,
    "gridkit.exchange": export,
    "gridkit.execute": pipeline,
    "gridkit.multilevel": solver,
    "gridkit.outputs": export,
    "gridkit.roster": staffing,
    "gridkit.scenarios": datasets,
    "gridkit.shard": pipeline,
    "gridkit.workbook": export,
}
for _old, _door in MOVED_MODULES.items():
    sys.modules.setdefault(_old, _door)
del _old, _door


def __getattr__(name: str):
    # ``import gridkit.roster`` then ``gridkit.roster.make_roster``: the old attribute too
    try:
        return MOVED_MODULES[f"gridkit.{name}"]
    except KeyError:
        raise AttributeError(f"module 'gridkit' has no attribute {name!r}") from None

__all__ = [
    "GridPlan",
    "GridRules",
    "GridkitError",
    "GridkitWarning",
    "InfeasibleError",
    "InputError",
    "SolverError",
    "__version__",
    "assign_workers",
    "attach_compounds",
    "audit_grids",
    "build_units",
    "checks",
    "crs",
    "datasets",
    "errors",
    "export_layers",
    "locate_points",
    "make_grids",
    "maps",
    "partition_community",
    "partition_graph",
    "read_boundaries",
    "read_dedicated",
    "read_households",
    "regenerate",
    "show_versions",
    "to_geojson",
]
