"""Running a job: a district through units and partition to a plan, in memory (make_grids) or file
to file (partition_files), on processes or Dask.

This folder's public door: import from ``gridkit.pipeline``."""

from __future__ import annotations

from gridkit.pipeline.batch import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_WORK,
    BatchRun,
    CommunityInput,
    CommunityResult,
    HouseholdFile,
    partition_files,
    solve_community,
)
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
from gridkit.pipeline.inputs import district_units
from gridkit.pipeline.plan import (
    GRID_COLUMNS,
    GridPlan,
    assemble,
    make_grids,
    partition_units,
)
from gridkit.pipeline.report import REASONS, pct_floor
from gridkit.pipeline.shard import (
    DamagedWorkFile,
    WorkDir,
    community_key,
    content_digest,
    load_arrays,
    load_shard,
    save_arrays,
    shard_households,
)

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "DEFAULT_WORK",
    "GRID_COLUMNS",
    "REASONS",
    "WORKERS",
    "Backend",
    "BackendError",
    "BatchRun",
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
    "code_fingerprint",
    "community_key",
    "content_digest",
    "die_with_parent",
    "district_units",
    "load_arrays",
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
]
