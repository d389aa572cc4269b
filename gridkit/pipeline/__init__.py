"""Running a job: a district through units and partition to a plan, in memory (make_grids) or file
to file (partition_files), on processes or Dask.

This folder's public door: import from ``gridkit.pipeline``.

Its modules: :mod:`~gridkit.pipeline.plan` (the job in memory: ``make_grids``, ``GridPlan``),
:mod:`~gridkit.pipeline.inputs` (checks of inputs and settings, the district's units),
:mod:`~gridkit.pipeline.grids` (grid and building layers), :mod:`~gridkit.pipeline.dedicated`
(dedicated grids: parcels carved out, their rows and grids), :mod:`~gridkit.pipeline.report`
(``report.json``), :mod:`~gridkit.pipeline.batch` (file to file: ``partition_files``),
:mod:`~gridkit.pipeline.shards` (households read in chunks and split by community),
:mod:`~gridkit.pipeline.workdir` (the work folder, its manifest and resume),
:mod:`~gridkit.pipeline.storage` (its tables, never unpickled),
:mod:`~gridkit.pipeline.community` (one community's task and result),
:mod:`~gridkit.pipeline.assembly` (results streamed into the output set) and
:mod:`~gridkit.pipeline.execute` (local processes or Dask)."""

from __future__ import annotations

from gridkit.pipeline.batch import BatchRun, partition_files
from gridkit.pipeline.bounds import (
    BOUNDS_COLUMNS,
    TYPE_COLUMNS,
    CommunityBounds,
    bounds_report,
    community_bounds,
    load_community_rules,
    split_limits,
)
from gridkit.pipeline.community import CommunityInput, CommunityResult, solve_community
from gridkit.pipeline.execute import (
    WORKERS,
    Backend,
    BackendError,
    DaskBackend,
    Failure,
    LocalBackend,
    Task,
    code_fingerprint,
    die_with_parent,
    open_backend,
    run_communities,
)
from gridkit.pipeline.inputs import (
    barriers_in,
    barriers_near,
    check_settings,
    district_units,
    ensure_boundary_columns,
    ensure_household_columns,
)
from gridkit.pipeline.plan import (
    GRID_COLUMNS,
    GridPlan,
    assemble,
    make_grids,
    partition_units,
)
from gridkit.pipeline.report import REASONS, pct_floor
from gridkit.pipeline.shards import (
    DEFAULT_CHUNK_ROWS,
    HouseholdFile,
    content_digest,
    load_shard,
    shard_households,
)
from gridkit.pipeline.storage import DamagedWorkFile, load_arrays, save_arrays
from gridkit.pipeline.workdir import DEFAULT_WORK, WorkDir, community_key

__all__ = [
    "BOUNDS_COLUMNS",
    "DEFAULT_CHUNK_ROWS",
    "DEFAULT_WORK",
    "GRID_COLUMNS",
    "REASONS",
    "TYPE_COLUMNS",
    "WORKERS",
    "Backend",
    "BackendError",
    "BatchRun",
    "CommunityBounds",
    "CommunityInput",
    "CommunityResult",
    "DamagedWorkFile",
    "DaskBackend",
    "Failure",
    "GridPlan",
    "HouseholdFile",
    "LocalBackend",
    "Task",
    "WorkDir",
    "assemble",
    "barriers_in",
    "barriers_near",
    "bounds_report",
    "check_settings",
    "code_fingerprint",
    "community_bounds",
    "community_key",
    "content_digest",
    "die_with_parent",
    "district_units",
    "ensure_boundary_columns",
    "ensure_household_columns",
    "load_arrays",
    "load_community_rules",
    "load_shard",
    "make_grids",
    "open_backend",
    "partition_files",
    "partition_units",
    "pct_floor",
    "run_communities",
    "save_arrays",
    "shard_households",
    "solve_community",
    "split_limits",
]
