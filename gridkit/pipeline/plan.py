"""The whole job: boundaries + households → units → grids, assignments and a report."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.codes import grid_code, grid_name
from gridkit.contracts import GRID_COLUMNS
from gridkit.crs import local_metric_crs
from gridkit.errors import GridkitWarning, InputError, SolverError, format_ids
from gridkit.export import attention, count_in_bounds
from gridkit.partition import CommunityPlan, GridRules, partition_community
from gridkit.pipeline.execute import Failure, Task, default_jobs, open_backend, run_communities
from gridkit.units import (
    MERGE_DISTANCE,
    UNASSIGNED_REASONS,
    Units,
    attach_compounds,
    build_units,
    dissolve_cells,
)
from gridkit.utils import __version__

__all__ = [
    "GRID_COLUMNS",
    "REASONS",
    "GridPlan",
    "district_units",
    "make_grids",
    "partition_units",
]

log = logging.getLogger(__name__)

#: CP-SAT threads per community solve.  One: communities solve in parallel
#: processes instead (``jobs``, default all cores), which uses the cores better
#: than interleaved threads and keeps every result independent of ``jobs``.
WORKERS = 1

#: Why a household row is in no grid: :data:`gridkit.units.UNASSIGNED_REASONS` and
#: the communities whose solve failed (``assignments.csv`` ``reason``, ``report.json``).
REASONS = {
    **UNASSIGNED_REASONS,
    "community_failed": "the community could not be partitioned (see `failed_communities`); "
    "re-run with --resume to retry it",
}

def split_compounds_of(codes: np.ndarray, split_of: np.ndarray) -> dict[str, str]:
    """Grid code -> the compound whose strip it holds (compounds split by building number).

    ``codes`` and ``split_of`` are per unit (``split_of`` None for an ordinary unit).
    """
    out: dict[str, str] = {}
    for code, name in zip(codes, split_of, strict=True):
        if name is not None and not pd.isna(name) and str(code) not in out:
            out[str(code)] = str(name)
    return out


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
        ``grid_code``, ``households``, ``rows`` (input rows in the building).
        """
        u = self.units.units
        code = self.assignments.groupby(
            self.units.membership["unit_id"].to_numpy(dtype=float), dropna=True
        )["grid_code"].first()
        return buildings_layer(
            u, code.reindex(u["unit_id"].to_numpy(dtype=float)).to_numpy(dtype=object),
            self.units.crs,
        )

    def write(
        self, out_dir: str | os.PathLike, *, map_html: bool = False, offline: bool = True
    ) -> dict[str, Path]:
        """Write grids.geojson, assignments.csv, report.json (and map.html) to ``out_dir``.

        The map needs no network unless ``offline=False`` (:func:`gridkit.maps.explore`).
        """
        from gridkit.export import write_outputs

        return write_outputs(self, out_dir, map_html=map_html, offline=offline)


def buildings_layer(units: pd.DataFrame, codes: np.ndarray, crs) -> gpd.GeoDataFrame:
    """The ``buildings.geojson`` layer: one point per unit, in EPSG:4326.

    ``units`` holds ``unit_id``, ``building_id``, ``community_id``, ``households``,
    ``rows``, ``x`` and ``y`` (in ``crs``) for every unit of the district, in unit
    order; ``codes`` the grid code of each.
    """
    ids = [
        b if isinstance(b, str) and b else f"U{i:06d}"
        for b, i in zip(units["building_id"], units["unit_id"], strict=True)
    ]
    ids = pd.Series(ids)
    dup = ids.duplicated(keep=False)
    ids[dup] = ids[dup] + "@" + units["community_id"].astype(str).to_numpy()[dup.to_numpy()]
    points = gpd.GeoSeries(gpd.points_from_xy(units["x"], units["y"]), crs=crs)
    return gpd.GeoDataFrame(
        {
            "building_id": ids.to_numpy(dtype=object),
            "community_id": units["community_id"].astype(str).to_numpy(dtype=object),
            "grid_code": np.asarray(codes, dtype=object),
            "households": units["households"].to_numpy(dtype=np.int64),
            "rows": units["rows"].to_numpy(dtype=np.int64),
        },
        geometry=points.to_numpy(),
        crs=crs,
    ).to_crs(4326)


def check_settings(
    time_limit: float, seed: int, merge_distance: float = MERGE_DISTANCE
) -> None:
    """Raise an InputError for a time limit, seed or merge distance gridkit cannot use."""
    if not (math.isfinite(merge_distance) and merge_distance >= 0):
        raise InputError(
            f"`merge_distance` must be a distance in metres >= 0, got {merge_distance}; "
            f"e.g. --merge-distance {MERGE_DISTANCE:g}."
        )
    if not (math.isfinite(time_limit) and time_limit > 0):
        raise InputError(
            f"`time_limit` must be a positive number of seconds, got {time_limit}; "
            "e.g. --time-limit 5."
        )
    if not 0 <= int(seed) < 2**31:
        raise InputError(f"`seed` must be between 0 and 2**31 - 1, got {seed}; e.g. --seed 0.")


def barriers_in(barriers: gpd.GeoDataFrame | None, crs) -> gpd.GeoDataFrame | None:
    """Barriers reprojected to the units' CRS, checked (``None`` stays ``None``).

    Raises
    ------
    InputError
        If the layer has no CRS or holds geometries other than lines and polygons.
    """
    if barriers is None:
        return None
    source = barriers.attrs.get("source", "`barriers`")
    if barriers.crs is None:
        raise InputError(
            f"{source} has no CRS: set it (`gdf.set_crs(4326)`) or save the file with one."
        )
    kinds = set(barriers.geometry.geom_type.dropna())
    wrong = kinds - {"LineString", "MultiLineString", "Polygon", "MultiPolygon"}
    if wrong:
        raise InputError(
            f"{source} holds {', '.join(sorted(wrong))}: barriers must be lines (roads, "
            "rivers, railways, walls) or polygons (their outlines are used)."
        )
    return barriers[barriers.geometry.notna() & ~barriers.geometry.is_empty].to_crs(crs)




def district_units(
    boundaries: gpd.GeoDataFrame,
    households: gpd.GeoDataFrame,
    *,
    rules: GridRules,
    merge_distance: float = MERGE_DISTANCE,
    barriers: gpd.GeoDataFrame | None = None,
    compounds: gpd.GeoDataFrame | None = None,
    keep_compounds: bool = True,
    compound_buildings_col: str | None = None,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, Units, gpd.GeoDataFrame | None]:
    """The buildings and cells of a district, as ``partition`` and ``regenerate`` make them.

    Checks the columns, gives the households their compounds (``compounds``
    outlines), and builds the units (:func:`gridkit.units.build_units`): cells
    inside the blocks that barriers and (kept) compound walls cut, compounds given
    as points split above ``rules.max_households``.

    Returns
    -------
    boundaries, households, units, barriers
        The checked inputs, the units, and the barriers checked and in the units'
        metric CRS (``None`` without barriers).
    """
    households = ensure_household_columns(households)
    if compounds is not None:
        households = attach_compounds(households, compounds)
    boundaries = ensure_boundary_columns(boundaries)
    crs = local_metric_crs(boundaries)
    metric_barriers = barriers_in(barriers, crs)
    units = build_units(
        boundaries,
        households,
        crs=crs,
        merge_distance=merge_distance,
        barriers=metric_barriers,
        compounds=compounds if keep_compounds else None,
        split_above=rules.max_households,
        compound_buildings_col=compound_buildings_col,
    )
    return boundaries, households, units, metric_barriers


def barriers_near(barriers: gpd.GeoDataFrame | None, units: gpd.GeoDataFrame):
    """The barriers that touch the community's bounding box (keeps tasks small)."""
    if barriers is None:
        return None
    xmin, ymin, xmax, ymax = units.total_bounds
    near = barriers.cx[xmin:xmax, ymin:ymax]
    return near if len(near) else None


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
) -> tuple[list[CommunityPlan], dict[str, Failure]]:
    """Plans in community order, and the failures by community id."""
    groups = [(str(cid), g) for cid, g in units.groupby("community_id", sort=False)]
    run = uuid.uuid4().hex  # in-memory tasks are never reused: keys unique to this run
    tasks = [
        Task(
            index=i,
            community_id=cid,
            key=f"gridkit-units-{hashlib.sha1(cid.encode()).hexdigest()[:12]}-{run}",
            payload=(
                g, rules, time_limit, seed, WORKERS, keep_compounds, barriers_near(barriers, g),
                prove,
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
        ``distributed.Client``; see :mod:`gridkit.execute`.

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


def _polsby_popper(geoms: np.ndarray) -> np.ndarray:
    """Polsby–Popper compactness ``4*pi*A / P**2`` (1 for a circle)."""
    area = shapely.area(geoms)
    perimeter = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        pp = np.where(perimeter > 0, 4 * math.pi * area / perimeter**2, 0.0)
    return pp


#: One grid before numbering and measuring: code, community, households, buildings,
#: geometry (metric CRS) and status.
GridRow = tuple[str, str, int, int, shapely.Geometry, str]


def community_grids(units: pd.DataFrame, plan: CommunityPlan) -> tuple[np.ndarray, list[GridRow]]:
    """The grid code of each unit of one community and its grids (cells dissolved).

    Parameters
    ----------
    units
        The community's units (cells in a metric CRS), aligned with ``plan.labels``.
    plan
        Its plan.

    Returns
    -------
    codes, grids
        Codes aligned with ``units``; one :data:`GridRow` per grid, by code.  A grid of
        status ``ok`` made of several polygons (a community in several parts) becomes
        ``multi_part``.
    """
    cid = plan.community_id
    codes = np.array([grid_code(cid, int(s)) for s in plan.labels], dtype=object)
    status_of = {grid_code(cid, s): st for s, st in plan.grid_status.items()}
    rows: list[GridRow] = []
    if not len(units):
        return codes, rows
    keys = codes.astype(str)
    uniq, geoms = dissolve_cells(units.geometry.to_numpy(), keys)
    hh = units.groupby(keys)["households"].sum()
    # buildings: a unit is one building, a compound row its known buildings
    if "buildings" in units:
        nb = units["buildings"].groupby(keys).sum()
    else:
        nb = units.groupby(keys).size()
    community = units.groupby(keys)["community_id"].first()
    for code, geom in zip(uniq, geoms, strict=True):
        status = status_of[code]
        if status == "ok" and shapely.get_num_geometries(geom) > 1:
            # Only a community in several parts (islands without buildings) does this.
            status = "multi_part"
        rows.append((str(code), community[code], int(hh[code]), int(nb[code]), geom, status))
    return codes, rows


def empty_grid(community_id: str, geometry: shapely.Geometry) -> GridRow:
    """The one grid of a community without households: the whole community, ``below_min``."""
    return (grid_code(str(community_id), 1), community_id, 0, 0, geometry, "below_min")


def grid_layer(
    rows: list[GridRow],
    communities: gpd.GeoDataFrame,
    crs,
    compound_of: Mapping[str, str] | None = None,
) -> gpd.GeoDataFrame:
    """The grid layer (:data:`GRID_COLUMNS`, in ``crs``) from grid rows, sorted by code.

    ``compound_of`` names, per grid code, the compound split by building number whose
    strip the grid holds (:func:`split_compounds_of`); ``compound`` is null elsewhere.
    """
    compound_of = compound_of or {}
    by_id = communities.set_index("community_id")
    frame = pd.DataFrame(
        rows, columns=["grid_code", "community_id", "households", "buildings", "geometry", "status"]
    )
    frame = frame.sort_values("grid_code", kind="stable").reset_index(drop=True)
    geoms = frame["geometry"].to_numpy()
    info = by_id.loc[frame["community_id"]]
    seqs = [int(c[-3:]) for c in frame["grid_code"]]
    return gpd.GeoDataFrame(
        {
            "grid_code": [str(c) for c in frame["grid_code"]],
            "grid_name": [
                grid_name(str(n), s) for n, s in zip(info["community_name"], seqs, strict=True)
            ],
            "community_id": frame["community_id"].astype(str).to_numpy(),
            "community_name": info["community_name"].astype(str).to_numpy(),
            "street": info["street"].to_numpy(dtype=object) if "street" in info else None,
            "households": frame["households"].to_numpy(dtype=np.int64),
            "buildings": frame["buildings"].to_numpy(dtype=np.int64),
            "area_m2": np.round(shapely.area(geoms), 1),
            "compactness": np.round(_polsby_popper(geoms), 4),
            "status": frame["status"].to_numpy(dtype=object),
            "compound": np.array(
                [compound_of.get(str(c)) for c in frame["grid_code"]], dtype=object
            ),
        },
        geometry=gpd.GeoSeries(geoms, crs=crs),
        crs=crs,
    )


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
) -> GridPlan:
    """Turn community plans into the grid layer, the assignments and the report.

    Communities in ``failures`` get no grid; their household rows are unassigned
    with reason ``community_failed`` and the report lists them.
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
    # Communities without any household still get one (empty) grid that covers them.
    for cid_, geometry in zip(comm["community_id"], comm.geometry, strict=True):
        if cid_ not in plan_by_id and str(cid_) not in failures:
            rows.append(empty_grid(cid_, geometry))
    split_of = u["split_of"].to_numpy(dtype=object) if "split_of" in u else None
    grids = grid_layer(
        rows,
        comm,
        units.crs,
        compound_of=None
        if split_of is None
        else split_compounds_of(code_of_unit.to_numpy(dtype=object), split_of),
    )
    grids_4326 = grids.to_crs(4326)

    membership = units.membership
    unit_code = code_of_unit.to_numpy(dtype=object)
    uid = membership["unit_id"]
    assigned = uid.notna().to_numpy()
    codes = np.full(len(membership), "", dtype=object)
    codes[assigned] = unit_code[uid[assigned].to_numpy(dtype=np.int64)]
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
    )
    return GridPlan(grids=grids_4326, assignments=assignments, report=report, units=units)


def pct_floor(part: int, whole: int) -> float:
    """``100 * part / whole`` rounded *down* to 2 decimals: only all of them reads 100.0.

    Examples
    --------
    >>> pct_floor(19999, 20000), pct_floor(3, 3), pct_floor(0, 0)
    (99.99, 100.0, 100.0)
    """
    if whole == 0:
        return 100.0
    return (10_000 * int(part) // int(whole)) / 100


@dataclass
class RowTotals:
    """Household-row figures of a run (what ``report.json`` totals say about rows)."""

    household_rows: int = 0
    households: int = 0
    households_assigned: int = 0
    households_unassigned: int = 0
    rows_unassigned: int = 0
    reasons: Counter = field(default_factory=Counter)

    def add(self, households: np.ndarray, reasons: np.ndarray) -> None:
        """Count a batch of rows: households per row and reason (``""`` when assigned)."""
        hh = np.asarray(households, dtype=np.int64)
        unassigned = np.asarray(reasons, dtype=object) != ""
        self.household_rows += len(hh)
        self.households += int(hh.sum())
        self.households_assigned += int(hh[~unassigned].sum())
        self.households_unassigned += int(hh[unassigned].sum())
        self.rows_unassigned += int(unassigned.sum())
        self.reasons.update(np.asarray(reasons, dtype=object)[unassigned].tolist())


def _report(
    grids, assignments, households, units, plans, *, rules, time_limit, seed, elapsed,
    failures=None,
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
    )


def report_from(
    grids: gpd.GeoDataFrame,
    communities: pd.DataFrame,
    notes: Mapping[str, list[str]],
    plans: list[CommunityPlan],
    rows: RowTotals,
    *,
    rules: GridRules,
    time_limit: float,
    seed: int,
    elapsed: float,
    failures: Mapping[str, Failure] | None = None,
) -> dict:
    """The ``report.json`` dict.

    Parameters
    ----------
    grids
        The grid layer (:func:`grid_layer`).
    communities
        Every community, in order, with ``community_id``, ``community_name``,
        ``street``, ``households`` and ``n_units`` (``None`` when unknown: a failed
        community).
    notes
        Remarks made while building each community's cells.
    plans
        The community plans.
    rows
        Household-row totals.
    failures
        Communities that could not be partitioned, by id.
    """
    failures = failures or {}
    plan_by_id = {p.community_id: p for p in plans}
    statuses_of: dict[str, list[str]] = {}
    for cid, status in zip(grids["community_id"], grids["status"], strict=True):
        statuses_of.setdefault(str(cid), []).append(status)
    entries = []
    for _, c in communities.iterrows():
        cid = str(c["community_id"])
        g = statuses_of.get(cid, [])
        plan = plan_by_id.get(cid)
        failure = failures.get(cid)
        statuses = Counter(g)
        # a part of a split compound is a grid within the bounds (its status says how made)
        in_bounds_here = int(statuses.get("ok", 0) + statuses.get("split_compound", 0))
        infeasible = None
        if int(c["households"]) < rules.min_households:
            infeasible = "below_min"
        elif statuses.get("oversize_building"):
            infeasible = "oversize_building"
        elif statuses.get("oversize_compound"):
            infeasible = "oversize_compound"
        elif plan is not None and plan.bounds_unreachable:
            infeasible = "bounds_unreachable"
        if failure is not None:
            status, extra = "FAILED", [
                f"partitioning community {cid} failed: {failure.error}; its households are "
                "unassigned (reason community_failed). Re-run with --resume to retry it"
            ]
        elif plan is None:
            status, extra = "NO_HOUSEHOLDS", [
                f"community {cid} has no households; it is one empty grid"
            ]
        else:
            status, extra = plan.solver_status, []
        entries.append(
            {
                "community_id": cid,
                "community_name": str(c["community_name"]),
                "street": None if pd.isna(c.get("street")) else str(c.get("street")),
                "households": int(c["households"]),
                "buildings": None if pd.isna(c["n_units"]) else int(c["n_units"]),
                "grids": len(g),
                "grids_in_bounds": in_bounds_here,
                "bounds_met": failure is None and in_bounds_here == len(g),
                "infeasible_reason": infeasible,
                "solver_status": status,
                "objective": plan.objective if plan else None,
                "bound": plan.bound if plan else None,
                "gap": None if plan is None or plan.gap is None else round(plan.gap, 6),
                "time_s": round(plan.wall_time, 3) if plan else 0.0,
                "deterministic_time": round(plan.deterministic_time, 3) if plan else 0.0,
                "notes": (plan.notes if plan else []) + list(notes.get(cid, [])) + extra,
            }
        )
    feasible_ids = {
        c["community_id"]
        for c in entries
        if c["infeasible_reason"] is None and c["solver_status"] != "FAILED"
    }
    feasible_grids = grids[grids["community_id"].isin(feasible_ids)]
    all_in_bounds, _ = count_in_bounds(Counter(grids["status"]))
    in_bounds = int(feasible_grids["status"].isin(["ok", "split_compound"]).sum())
    totals = {"communities": len(communities)}
    if failures:
        totals["communities_failed"] = len(failures)
    totals.update(
        {
            "grids": len(grids),
            "household_rows": rows.household_rows,
            "buildings": int(
                pd.to_numeric(communities["n_units"], errors="coerce").fillna(0).sum()
            ),
            "households": rows.households,
            "households_assigned": rows.households_assigned,
            "households_unassigned": rows.households_unassigned,
            "rows_unassigned": rows.rows_unassigned,
            "unassigned_by_reason": {
                r: {"rows": int(n), "meaning": REASONS.get(r, r)}
                for r, n in sorted(rows.reasons.items())
            },
            "grids_by_status": dict(sorted(Counter(grids["status"]).items())),
            "grids_in_bounds": all_in_bounds,
            "pct_grids_in_bounds": pct_floor(all_in_bounds, len(grids)),
            "feasible_communities": len(feasible_ids),
            "grids_in_feasible_communities": len(feasible_grids),
            "pct_grids_in_bounds_where_feasible": pct_floor(in_bounds, len(feasible_grids)),
            "mean_compactness": round(float(grids["compactness"].mean()), 4)
            if len(grids)
            else None,
            "time_s": round(elapsed, 3),
        }
    )
    report = {
        "gridkit_version": __version__,
        "parameters": {
            "min_households": rules.min_households,
            "max_households": rules.max_households,
            "target_households": rules.target,
            "balance_weight": rules.balance_weight,
            "time_limit": time_limit,
            "seed": seed,
        },
        "totals": totals,
    }
    if failures:
        report["failed_communities"] = [
            {"community_id": c["community_id"], "error": failures[c["community_id"]].error}
            for c in entries
            if c["solver_status"] == "FAILED"
        ]
    report["communities"] = entries
    report["attention"] = [
        {
            "cause": f.cause,
            "community_id": f.community_id,
            "community_name": f.community_name,
            "subject": f.subject,
            "households": f.households,
            "note": f.note,
        }
        for items in attention(report).values()
        for f in items
    ]
    report["grids"] = [
        {
            "grid_code": r.grid_code,
            "community_id": r.community_id,
            "households": int(r.households),
            "buildings": int(r.buildings),
            "area_m2": float(r.area_m2),
            "compactness": float(r.compactness),
            "status": r.status,
        }
        for r in grids.itertuples()
    ]
    return report


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
        :func:`gridkit.batch.partition_files`, which reads them in partitions.)
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
    boundaries, households, units, barriers = district_units(
        boundaries,
        households,
        rules=rules,
        merge_distance=merge_distance,
        barriers=barriers,
        compounds=compounds,
        keep_compounds=keep_compounds,
        compound_buildings_col=compound_buildings_col,
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


def ensure_household_columns(households: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Accept frames not made by ``read_households`` (e.g. the sample buildings), checked."""
    source = households.attrs.get("source", "`households`")
    if households.crs is None:
        raise InputError(
            f"{source} has no CRS: set it (`gdf.set_crs(4326)`) or read the file with "
            "`gridkit.read_households(..., input_crs=...)`."
        )
    hh = households.copy()
    if "household_id" not in hh:
        hh["household_id"] = (
            hh["building_id"].astype(str)
            if "building_id" in hh
            else (np.arange(len(hh)) + 1).astype(str)
        )
    if "households" not in hh:
        hh["households"] = 1
    if "row" not in hh:
        hh["row"] = np.arange(len(hh)) + 1
    counts = pd.to_numeric(hh["households"], errors="coerce")
    bad = ~np.isfinite(counts.to_numpy(dtype=float)) | (counts < 0) | (counts % 1 != 0)
    if bad.any():
        rows = hh.loc[bad.to_numpy(), "row"]
        raise InputError(
            f"{source}: column `households` must hold whole numbers >= 0; rows "
            f"{format_ids(rows)} do not ({format_ids(hh.loc[bad.to_numpy(), 'households'])}). "
            "Correct them, or read the file with `gridkit.read_households`, which explains "
            "each row."
        )
    hh["households"] = counts.astype(np.int64)
    empty = hh.geometry.isna() | hh.geometry.is_empty
    if empty.any():
        raise InputError(
            f"{source}: rows {format_ids(hh.loc[empty, 'row'])} have no geometry; "
            "give them a location or drop them."
        )
    return hh


def ensure_boundary_columns(boundaries: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Accept frames not made by ``read_boundaries``, checked for ids and CRS."""
    source = boundaries.attrs.get("source", "`boundaries`")
    if boundaries.crs is None:
        raise InputError(
            f"{source} has no CRS: set it (`gdf.set_crs(4326)`) or read the file with "
            "`gridkit.read_boundaries(..., input_crs=...)`."
        )
    if "community_id" not in boundaries:
        raise InputError(
            f"{source} has no `community_id` column (columns: "
            f"{format_ids(boundaries.columns)}); rename the id column or read the file with "
            "`gridkit.read_boundaries(..., id_col=...)`."
        )
    b = boundaries.copy()
    b["community_id"] = b["community_id"].astype(str)
    dup = b["community_id"].duplicated(keep=False)
    if dup.any():
        repeated = format_ids(sorted(set(b.loc[dup, "community_id"])))
        raise InputError(
            f"{source}: community ids must be unique; {repeated} "
            "appear more than once. Dissolve them (`gdf.dissolve(by='community_id', "
            "as_index=False)`) or give each community its own id."
        )
    if "community_name" not in b:
        b["community_name"] = b["community_id"]
    if "street" not in b:
        b["street"] = None
    return b
