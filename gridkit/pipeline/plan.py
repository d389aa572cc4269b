"""The whole job in memory: boundaries + households → units → grids, assignments and a report.

:func:`make_grids` checks the inputs and makes the district's units
(:mod:`gridkit.pipeline.inputs`), solves every community in parallel
(:func:`partition_units`), and :func:`assemble` turns the community plans into a
:class:`GridPlan`: the grid layer (:mod:`gridkit.pipeline.grids`), the assignments and
the report (:mod:`gridkit.pipeline.report`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit.contracts import GRID_COLUMNS
from gridkit.errors import GridkitWarning, SolverError
from gridkit.export import write_outputs
from gridkit.partition import CommunityPlan, GridRules, partition_community
from gridkit.pipeline.bounds import bounds_report
from gridkit.pipeline.dedicated import dedicated_grid_rows, residential_outline, row_codes
from gridkit.pipeline.execute import (
    WORKERS,
    Failure,
    Task,
    default_jobs,
    open_backend,
    run_communities,
)
from gridkit.pipeline.grids import (
    GridRow,
    buildings_layer,
    community_grids,
    compounds_by_grid,
    empty_grid,
    grid_layer,
    split_compounds_of,
    unit_compound_names,
)
from gridkit.pipeline.inputs import (
    barriers_near,
    check_settings,
    district_units,
)
from gridkit.pipeline.report import RowTotals, report_from
from gridkit.units import MERGE_DISTANCE, Units

__all__ = [
    "GRID_COLUMNS",
    "GridPlan",
    "assemble",
    "make_grids",
    "partition_units",
]

log = logging.getLogger(__name__)

@dataclass
class GridPlan:
    """Everything one run produces.

    Attributes
    ----------
    grids
        One row per grid in EPSG:4326 with :data:`GRID_COLUMNS`.
    assignments
        One row per input household row, in input order: ``household_id``,
        ``row``, ``community_id``, ``grid_code`` (empty when unassigned),
        ``reason`` (empty when assigned).
    report
        Per-community and per-grid figures (what ``report.json`` holds).
    units
        The units and cells the grids were made of (metric CRS).
    """

    grids: gpd.GeoDataFrame
    assignments: pd.DataFrame
    report: dict
    units: Units = field(repr=False)

    @property
    def buildings(self) -> gpd.GeoDataFrame:
        """One point per building (unit) in EPSG:4326 with its ``grid_code``.

        Columns: ``building_id`` (the input building id, or ``U`` + unit number for
        buildings known only by their location; unique), ``community_id``,
        ``grid_code``, ``households``, ``rows`` (input rows in the building),
        ``compound`` (its compound's name, or null).
        """
        u = self.units.units
        code = self.assignments.groupby(
            self.units.membership["unit_id"].to_numpy(dtype=float), dropna=True
        )["grid_code"].first()
        return buildings_layer(
            u.assign(compound=unit_compound_names(u)),
            code.reindex(u["unit_id"].to_numpy(dtype=float)).to_numpy(dtype=object),
            self.units.crs,
        )

    def write(
        self, out_dir: str | os.PathLike, *, map_html: bool = False, offline: bool = True
    ) -> dict[str, Path]:
        """Write grids.geojson, assignments.csv, report.json (and map.html) to ``out_dir``.

        The map needs no network unless ``offline=False`` (:func:`gridkit.maps.explore`).
        """
        return write_outputs(self, out_dir, map_html=map_html, offline=offline)


def _run_community(task: tuple) -> CommunityPlan:
    units, rules, time_limit, seed, workers, keep_compounds, barriers, prove = task
    return partition_community(
        units,
        rules=rules,
        time_limit=time_limit,
        seed=seed,
        workers=workers,
        keep_compounds=keep_compounds,
        barriers=barriers,
        prove=prove,
    )


def _solve_units(
    units: gpd.GeoDataFrame,
    *,
    rules: GridRules,
    time_limit: float,
    seed: int,
    jobs: int | None,
    verbose: bool,
    keep_compounds: bool,
    barriers: gpd.GeoDataFrame | None,
    scheduler=None,
    prove: bool = False,
    bounds: Mapping[str, GridRules] | None = None,
) -> tuple[list[CommunityPlan], dict[str, Failure]]:
    """Plans in community order, and the failures by community id.

    ``bounds`` holds the communities' own rules; the others use ``rules``.
    """
    groups = [(str(cid), g) for cid, g in units.groupby("community_id", sort=False)]
    run = uuid.uuid4().hex  # in-memory tasks are never reused: keys unique to this run
    tasks = [
        Task(
            index=i,
            community_id=cid,
            key=f"gridkit-units-{hashlib.sha1(cid.encode()).hexdigest()[:12]}-{run}",
            payload=(
                g, (bounds or {}).get(cid, rules), time_limit, seed, WORKERS, keep_compounds,
                barriers_near(barriers, g), prove,
            ),
        )
        for i, (cid, g) in enumerate(groups)
    ]
    # Largest first, so one big community does not finish last on its own.
    tasks.sort(key=lambda t: -len(groups[t.index][1]))
    plans: list[CommunityPlan | None] = [None] * len(tasks)
    failures: dict[str, Failure] = {}
    if scheduler is None:
        jobs = default_jobs() if jobs is None else max(1, int(jobs))
        jobs = min(jobs, max(1, len(tasks)))
    with open_backend(scheduler, jobs=jobs) as backend:
        for task, outcome in run_communities(
            _run_community, tasks, backend, total=len(tasks), progress=verbose
        ):
            if isinstance(outcome, Failure):
                failures[task.community_id] = outcome
            else:
                plans[task.index] = outcome
    return [p for p in plans if p is not None], failures


def partition_units(
    units: gpd.GeoDataFrame,
    *,
    rules: GridRules | None = None,
    time_limit: float = 5.0,
    seed: int = 0,
    jobs: int | None = None,
    verbose: bool = False,
    keep_compounds: bool = True,
    barriers: gpd.GeoDataFrame | None = None,
    scheduler=None,
    prove: bool = False,
) -> list[CommunityPlan]:
    """Partition every community of ``units``; communities run in parallel.

    The result does not depend on ``jobs`` nor on ``scheduler``: each community is
    solved on its own with a deterministic time budget, and results are returned in
    community order.

    Parameters
    ----------
    scheduler
        ``None`` (local processes, ``jobs`` of them), ``"local"`` (a Dask
        ``LocalCluster``), a Dask scheduler address ``tcp://HOST:PORT`` or a
        ``distributed.Client``; see :mod:`gridkit.pipeline.execute`.

    Raises
    ------
    SolverError
        When a community could not be partitioned (after all others finished),
        naming each such community and its error.
    """
    plans, failures = _solve_units(
        units,
        rules=rules or GridRules(),
        time_limit=time_limit,
        seed=seed,
        jobs=jobs,
        verbose=verbose,
        keep_compounds=keep_compounds,
        barriers=barriers,
        scheduler=scheduler,
        prove=prove,
    )
    if failures:
        raise SolverError(
            f"{len(failures)} communities could not be partitioned: "
            + "; ".join(f"{f.community_id}: {f.error}" for f in failures.values())
        )
    return plans


def assemble(
    units: Units,
    plans: list[CommunityPlan],
    households: gpd.GeoDataFrame,
    *,
    rules: GridRules,
    time_limit: float,
    seed: int,
    elapsed: float,
    failures: Mapping[str, Failure] | None = None,
    bounds: Mapping[str, GridRules] | None = None,
    bounds_info: dict | None = None,
) -> GridPlan:
    """Turn community plans into the grid layer, the assignments and the report.

    Communities in ``failures`` get no grid; their household rows are unassigned
    with reason ``community_failed`` and the report lists them.  ``bounds`` holds the
    communities' own rules (:func:`gridkit.pipeline.community_bounds`), reported per
    community.
    """
    failures = dict(failures or {})
    comm = units.communities
    u = units.units
    code_of_unit = pd.Series("", index=u.index, dtype=object)
    plan_by_id = {p.community_id: p for p in plans}
    rows: list[GridRow] = []
    for plan in plans:
        codes, grid_rows = community_grids(u.loc[plan.labels.index], plan)
        code_of_unit.loc[plan.labels.index] = codes
        rows += grid_rows
    # Communities without any household still get one (empty) grid that covers them
    # (less their dedicated parcels).
    ded = units.dedicated
    for cid_, geometry in zip(comm["community_id"], comm.geometry, strict=True):
        if cid_ not in plan_by_id and str(cid_) not in failures:
            outline = residential_outline(ded, cid_, units.crs, geometry)
            if not outline.is_empty:
                rows.append(empty_grid(cid_, outline))
    compounds = compounds_by_grid(code_of_unit.to_numpy(dtype=object), unit_compound_names(u))
    if ded is not None:
        rows += dedicated_grid_rows(ded, ded.tally, units.crs)
        named = ded.tally["compounds"].notna().to_numpy()
        compounds.update(zip(ded.pieces["grid_code"][named], ded.tally["compounds"][named],
                             strict=True))  # fmt: skip
    split_of = u["split_of"].to_numpy(dtype=object) if "split_of" in u else None
    grids = grid_layer(
        rows,
        comm,
        units.crs,
        compound_of=None
        if split_of is None
        else split_compounds_of(code_of_unit.to_numpy(dtype=object), split_of),
        compounds=compounds,
        dedicated=ded.types() if ded is not None else None,
    )
    grids_4326 = grids.to_crs(4326)

    membership = units.membership
    unit_code = code_of_unit.to_numpy(dtype=object)
    uid = membership["unit_id"]
    assigned = uid.notna().to_numpy()
    codes = np.full(len(membership), "", dtype=object)
    codes[assigned] = unit_code[uid[assigned].to_numpy(dtype=np.int64)]
    if ded is not None:
        codes = row_codes(ded, codes)
    reason = membership["reason"].to_numpy(dtype=object)
    if failures:
        failed = membership["community_id"].isin(list(failures)).to_numpy(dtype=bool)
        reason = np.where(failed, "community_failed", reason).astype(object)
    assignments = pd.DataFrame(
        {
            "household_id": households["household_id"].astype(str).to_numpy(),
            "row": households["row"].to_numpy()
            if "row" in households
            else np.arange(len(households)) + 1,
            "community_id": membership["community_id"].fillna("").astype(str).to_numpy(),
            "grid_code": codes,
            "reason": reason,
        }
    )
    report = _report(
        grids,
        assignments,
        households,
        units,
        plans,
        rules=rules,
        time_limit=time_limit,
        seed=seed,
        elapsed=elapsed,
        failures=failures,
        bounds=bounds,
        bounds_info=bounds_info,
    )
    return GridPlan(grids=grids_4326, assignments=assignments, report=report, units=units)


def _report(
    grids, assignments, households, units, plans, *, rules, time_limit, seed, elapsed,
    failures=None, bounds=None, bounds_info=None,
) -> dict:
    rows = RowTotals()
    rows.add(
        households["households"].to_numpy(dtype=np.int64),
        assignments["reason"].to_numpy(dtype=object),
    )
    return report_from(
        grids,
        units.communities,
        units.notes,
        plans,
        rows,
        rules=rules,
        time_limit=time_limit,
        seed=seed,
        elapsed=elapsed,
        failures=failures,
        bounds=bounds,
        bounds_info=bounds_info,
    )


def make_grids(
    boundaries: gpd.GeoDataFrame,
    households: gpd.GeoDataFrame,
    *,
    min_households: int = 400,
    max_households: int = 800,
    target_households: int | None = None,
    balance_weight: float = 1.0,
    time_limit: float = 5.0,
    seed: int = 0,
    jobs: int | None = None,
    verbose: bool = False,
    keep_compounds: bool = True,
    compounds: gpd.GeoDataFrame | None = None,
    barriers: gpd.GeoDataFrame | None = None,
    scheduler=None,
    prove: bool = False,
    merge_distance: float = MERGE_DISTANCE,
    compound_buildings_col: str | None = None,
    dedicated: gpd.GeoDataFrame | None = None,
    community_rules: str | os.PathLike | Mapping | None = None,
) -> GridPlan:
    """Split every community into contiguous grids of ``min``–``max`` households.

    Parameters
    ----------
    boundaries
        Communities from :func:`gridkit.read_boundaries` (or any GeoDataFrame
        with ``community_id``, ``community_name``, ``street`` and polygons).
    households
        Household rows from :func:`gridkit.read_households` (``household_id``,
        ``households``, optional ``building_id``, points or footprints).
    min_households, max_households
        Bounds of households per grid.
    target_households
        Preferred grid size (default: the middle of the bounds).
    balance_weight
        Weight of workload balance against compactness.
    time_limit
        CP-SAT deterministic time budget per community (about seconds).
    seed
        Seed of the warm start and the solver.
    jobs
        Processes solving communities in parallel (default: all cores, each solve
        running one CP-SAT thread).
        Results do not depend on it.
    verbose
        Show a progress bar.
    keep_compounds
        Respect compounds (小区: ``compounds`` polygons or a ``compound`` column on
        the households): a compound of at most ``max_households`` stays in one
        grid, a larger one is split into as few grids as possible, where the
        bounds allow it; compounds split across grids are named in the report
        notes.  False partitions building by building.
    compounds
        Compound outlines (polygons, any CRS, named by a ``name`` column): set the
        households' ``compound`` column with :func:`gridkit.units.attach_compounds`.
    barriers
        Roads, rivers, railways or walls (lines or polygons, any CRS, optional
        ``name`` column): no grid crosses one unless the bounds cannot be met
        otherwise; crossings are counted and named in the report notes.
    scheduler
        Where communities are solved: ``None`` (local processes, ``jobs`` of them),
        ``"local"`` (a Dask ``LocalCluster`` of ``jobs`` workers), a Dask scheduler
        address such as ``"tcp://10.0.0.5:8786"``, or a ``distributed.Client``.
        The result does not depend on it.  (For inputs larger than memory, use
        :func:`gridkit.pipeline.partition_files`, which reads them in partitions.)
    prove
        Spend the budget on proofs (the whole exact model, see
        :func:`gridkit.partition.partition_community`) rather than on the
        faster multilevel search for communities above 60 units.
    merge_distance
        Household points without a building id closer than this (metres) form one
        building (:func:`gridkit.units.group_points`).
    compound_buildings_col
        Column giving the number of buildings of each row when the rows are whole
        compounds (one point per 小区); default ``buildings``, ``楼栋数`` or
        ``楼栋总数`` when present.  A compound above ``max_households`` is split into
        the fewest grids of whole buildings (status ``split_compound``).
    dedicated
        Dedicated-grid parcels (专属网格: schools, hospitals, parks, ...), as
        :func:`gridkit.io.read_dedicated` reads them: each is carved out of its
        community before it is partitioned and becomes one grid of its own (status
        ``dedicated``, ``grid_type`` its type, coded 901-999 in its community), holding
        the households inside it with no bounds; a parcel across two communities gives
        one grid in each (noted); the part outside every community is dropped (warned).

    community_rules
        Household bounds by community type (a TOML file or a dict,
        :func:`gridkit.pipeline.load_community_rules`), looked up in the communities'
        type column.  ``min_households``/``max_households`` columns of ``boundaries``
        take precedence; both replace the run's bounds for their communities, which
        ``report["communities"]`` gives per community (:mod:`gridkit.pipeline.bounds`).

    Returns
    -------
    GridPlan
        ``grids`` (EPSG:4326), ``assignments``, ``report`` and ``units``.

    Warns
    -----
    GridkitWarning
        When communities could not be partitioned (the others are): they get no
        grid, their households are unassigned with reason ``community_failed`` and
        ``report["failed_communities"]`` names each with its error.

    Examples
    --------
    >>> import gridkit as gk
    >>> communities, buildings = gk.datasets.make_sample(seed=0)
    >>> small = communities[communities["community_id"] == "420204002002"]
    >>> plan = gk.make_grids(small, buildings[buildings["community_id"] == "420204002002"],
    ...                      time_limit=2, jobs=1)
    >>> plan.grids["grid_code"].tolist()
    ['420204002002001', '420204002002002']
    >>> plan.grids["households"].tolist(), plan.grids["status"].tolist()
    ([430, 420], ['ok', 'ok'])
    """
    started = time.perf_counter()
    rules = GridRules(
        min_households=min_households,
        max_households=max_households,
        target_households=target_households,
        balance_weight=balance_weight,
    )
    check_settings(time_limit, seed, merge_distance)
    boundaries, households, units, barriers, bounds = district_units(
        boundaries,
        households,
        rules=rules,
        community_rules=community_rules,
        merge_distance=merge_distance,
        barriers=barriers,
        compounds=compounds,
        keep_compounds=keep_compounds,
        compound_buildings_col=compound_buildings_col,
        dedicated=dedicated,
    )
    plans, failures = _solve_units(
        units.units,
        rules=rules,
        time_limit=time_limit,
        seed=seed,
        jobs=jobs,
        verbose=verbose,
        keep_compounds=keep_compounds,
        barriers=barriers,
        scheduler=scheduler,
        prove=prove,
        bounds=bounds,
    )
    plan = assemble(
        units,
        plans,
        households,
        rules=rules,
        time_limit=time_limit,
        seed=seed,
        elapsed=time.perf_counter() - started,
        failures=failures,
        bounds=bounds,
        bounds_info=bounds_report(bounds, community_rules),
    )
    if failures:
        warnings.warn(
            f"{len(failures)} communities could not be partitioned and have no grid "
            f"({'; '.join(f'{f.community_id}: {f.error}' for f in failures.values())}); "
            "their households are unassigned with reason 'community_failed' "
            "(report['failed_communities']).",
            GridkitWarning,
            stacklevel=2,
        )
    t = plan.report["totals"]
    log.info(
        "made %d grids for %d communities (%d households, %.1f%% of grids in bounds where "
        "feasible) in %.1f s",
        t["grids"],
        t["communities"],
        t["households"],
        t["pct_grids_in_bounds_where_feasible"],
        t["time_s"],
    )
    return plan

