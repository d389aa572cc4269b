"""The whole job: boundaries + households → units → grids, assignments and a report."""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from tqdm.auto import tqdm

from gridkit import __version__
from gridkit.codes import grid_code, grid_name
from gridkit.errors import InputError, format_ids
from gridkit.partition import CommunityPlan, GridRules, partition_community
from gridkit.units import UNASSIGNED_REASONS, Units, attach_compounds, build_units

__all__ = ["GRID_COLUMNS", "GridPlan", "make_grids", "partition_units"]

log = logging.getLogger(__name__)

#: CP-SAT threads per community solve (interleaved, so results do not depend on it).
WORKERS = 2

#: Columns of the grid layer, in order (the contract of ``grids.geojson``).
GRID_COLUMNS = [
    "grid_code",
    "grid_name",
    "community_id",
    "community_name",
    "street",
    "households",
    "buildings",
    "area_m2",
    "compactness",
    "status",
]


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
        ids = [
            b if isinstance(b, str) and b else f"U{i:06d}"
            for b, i in zip(u["building_id"], u["unit_id"], strict=True)
        ]
        ids = pd.Series(ids)
        dup = ids.duplicated(keep=False)
        ids[dup] = ids[dup] + "@" + u["community_id"].astype(str).to_numpy()[dup.to_numpy()]
        points = gpd.GeoSeries(gpd.points_from_xy(u["x"], u["y"]), crs=self.units.crs)
        return gpd.GeoDataFrame(
            {
                "building_id": ids.to_numpy(dtype=object),
                "community_id": u["community_id"].astype(str).to_numpy(dtype=object),
                "grid_code": code.reindex(u["unit_id"].to_numpy(dtype=float)).to_numpy(
                    dtype=object
                ),
                "households": u["households"].to_numpy(dtype=np.int64),
                "rows": u["rows"].to_numpy(dtype=np.int64),
            },
            geometry=points.to_numpy(),
            crs=self.units.crs,
        ).to_crs(4326)

    def write(
        self, out_dir: str | os.PathLike, *, map_html: bool = False, offline: bool = False
    ) -> dict[str, Path]:
        """Write grids.geojson, assignments.csv, report.json (and map.html) to ``out_dir``."""
        from gridkit.export import write_outputs

        return write_outputs(self, out_dir, map_html=map_html, offline=offline)


def _barriers_in(barriers: gpd.GeoDataFrame | None, crs) -> gpd.GeoDataFrame | None:
    """Barriers reprojected to the units' CRS, checked."""
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


def _barriers_near(barriers: gpd.GeoDataFrame | None, units: gpd.GeoDataFrame):
    """The barriers that touch the community's bounding box (keeps tasks small)."""
    if barriers is None:
        return None
    xmin, ymin, xmax, ymax = units.total_bounds
    near = barriers.cx[xmin:xmax, ymin:ymax]
    return near if len(near) else None


def _run_community(task: tuple) -> CommunityPlan:
    units, rules, time_limit, seed, workers, keep_compounds, barriers = task
    return partition_community(
        units,
        rules=rules,
        time_limit=time_limit,
        seed=seed,
        workers=workers,
        keep_compounds=keep_compounds,
        barriers=barriers,
    )


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
) -> list[CommunityPlan]:
    """Partition every community of ``units``; communities run in parallel processes.

    The result does not depend on ``jobs``: each community is solved on its own
    with a deterministic time budget, and results are returned in community order.
    """
    rules = rules or GridRules()
    groups = [(cid, g) for cid, g in units.groupby("community_id", sort=False)]
    # Each community solve runs WORKERS interleaved CP-SAT threads.
    jobs = max(1, (os.cpu_count() or 1) // WORKERS) if jobs is None else max(1, int(jobs))
    tasks = [
        (g, rules, time_limit, seed, WORKERS, keep_compounds, _barriers_near(barriers, g))
        for _, g in groups
    ]
    plans: list[CommunityPlan | None] = [None] * len(tasks)
    bar = tqdm(total=len(tasks), desc="communities", unit="community", disable=not verbose)
    # Largest first, so one big community does not finish last on its own.
    order = sorted(range(len(tasks)), key=lambda i: -len(groups[i][1]))
    if jobs == 1 or len(tasks) <= 1:
        for i in order:
            plans[i] = _run_community(tasks[i])
            bar.update()
    else:
        # fork: no re-import of the caller's script (a notebook or a script without a
        # ``__main__`` guard); the parent runs no solver threads at this point.
        # From Python 3.12 forking a process that has threads is deprecated: use
        # forkserver there (scripts then need the usual ``if __name__ == "__main__"``).
        methods = multiprocessing.get_all_start_methods()
        if "fork" in methods and sys.version_info < (3, 12):
            ctx = multiprocessing.get_context("fork")
        else:
            ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=ctx) as pool:
            futures = {pool.submit(_run_community, tasks[i]): i for i in order}
            for future in as_completed(futures):
                plans[futures[future]] = future.result()
                bar.update()
    bar.close()
    return [p for p in plans if p is not None]


def _polsby_popper(geoms: np.ndarray) -> np.ndarray:
    """Polsby–Popper compactness ``4*pi*A / P**2`` (1 for a circle)."""
    area = shapely.area(geoms)
    perimeter = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        pp = np.where(perimeter > 0, 4 * math.pi * area / perimeter**2, 0.0)
    return pp


def _dissolve(cells: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union cells by key; cells form a coverage, so use the fast coverage union."""
    uniq, inverse = np.unique(keys, return_inverse=True)
    out = np.empty(len(uniq), dtype=object)
    for k in range(len(uniq)):
        members = cells[inverse == k]
        merged = shapely.coverage_union_all(members) if len(members) > 1 else members[0]
        if not shapely.is_valid(merged):
            merged = shapely.union_all(members)
        out[k] = merged
    return uniq, out


def assemble(
    units: Units,
    plans: list[CommunityPlan],
    households: gpd.GeoDataFrame,
    *,
    rules: GridRules,
    time_limit: float,
    seed: int,
    elapsed: float,
) -> GridPlan:
    """Turn community plans into the grid layer, the assignments and the report."""
    comm = units.communities
    by_id = comm.set_index("community_id")
    u = units.units
    code_of_unit = pd.Series("", index=u.index, dtype=object)
    status_of: dict[str, str] = {}
    plan_by_id = {p.community_id: p for p in plans}
    for plan in plans:
        codes = [grid_code(plan.community_id, int(s)) for s in plan.labels]
        code_of_unit.loc[plan.labels.index] = codes
        for s, st in plan.grid_status.items():
            status_of[grid_code(plan.community_id, s)] = st
    rows = []
    if len(u):
        uniq, geoms = _dissolve(u.geometry.to_numpy(), code_of_unit.to_numpy(dtype=str))
        hh = u.groupby(code_of_unit.to_numpy())["households"].sum()
        nb = u.groupby(code_of_unit.to_numpy()).size()
        cid = u.groupby(code_of_unit.to_numpy())["community_id"].first()
        for code, geom in zip(uniq, geoms, strict=True):
            status = status_of[code]
            if status == "ok" and shapely.get_num_geometries(geom) > 1:
                # Only a community in several parts (islands without buildings) does this.
                status = status_of[code] = "multi_part"
            rows.append((code, cid[code], int(hh[code]), int(nb[code]), geom, status))
    # Communities without any household still get one (empty) grid that covers them.
    for cid_, row in by_id.iterrows():
        if cid_ not in plan_by_id:
            code = grid_code(str(cid_), 1)
            rows.append((code, cid_, 0, 0, row.geometry, "below_min"))
            status_of[code] = "below_min"
    frame = pd.DataFrame(
        rows, columns=["grid_code", "community_id", "households", "buildings", "geometry", "status"]
    )
    frame = frame.sort_values("grid_code", kind="stable").reset_index(drop=True)
    geoms = frame["geometry"].to_numpy()
    info = by_id.loc[frame["community_id"]]
    seqs = [int(c[-3:]) for c in frame["grid_code"]]
    grids = gpd.GeoDataFrame(
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
        },
        geometry=gpd.GeoSeries(geoms, crs=units.crs),
        crs=units.crs,
    )
    grids_4326 = grids.to_crs(4326)

    membership = units.membership
    unit_code = code_of_unit.to_numpy(dtype=object)
    uid = membership["unit_id"]
    assigned = uid.notna().to_numpy()
    codes = np.full(len(membership), "", dtype=object)
    codes[assigned] = unit_code[uid[assigned].to_numpy(dtype=np.int64)]
    assignments = pd.DataFrame(
        {
            "household_id": households["household_id"].astype(str).to_numpy(),
            "row": households["row"].to_numpy()
            if "row" in households
            else np.arange(len(households)) + 1,
            "community_id": membership["community_id"].fillna("").astype(str).to_numpy(),
            "grid_code": codes,
            "reason": membership["reason"].to_numpy(dtype=object),
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
    )
    return GridPlan(grids=grids_4326, assignments=assignments, report=report, units=units)


def _pct_floor(part: int, whole: int) -> float:
    """``100 * part / whole`` rounded *down* to 2 decimals: only all of them reads 100.0.

    Examples
    --------
    >>> _pct_floor(19999, 20000), _pct_floor(3, 3), _pct_floor(0, 0)
    (99.99, 100.0, 100.0)
    """
    if whole == 0:
        return 100.0
    return (10_000 * int(part) // int(whole)) / 100


def _report(
    grids, assignments, households, units, plans, *, rules, time_limit, seed, elapsed
) -> dict:
    plan_by_id = {p.community_id: p for p in plans}
    comm = units.communities
    hh_rows = households["households"].to_numpy(dtype=np.int64)
    unassigned = assignments["reason"] != ""
    communities = []
    for _, c in comm.iterrows():
        cid = str(c["community_id"])
        g = grids[grids["community_id"] == cid]
        plan = plan_by_id.get(cid)
        statuses = Counter(g["status"])
        infeasible = None
        if int(c["households"]) < rules.min_households:
            infeasible = "below_min"
        elif statuses.get("oversize_building"):
            infeasible = "oversize_building"
        elif plan is not None and plan.bounds_unreachable:
            infeasible = "bounds_unreachable"
        communities.append(
            {
                "community_id": cid,
                "community_name": str(c["community_name"]),
                "street": None if pd.isna(c.get("street")) else str(c.get("street")),
                "households": int(c["households"]),
                "buildings": int(c["n_units"]),
                "grids": len(g),
                "grids_in_bounds": int(statuses.get("ok", 0)),
                "bounds_met": statuses.get("ok", 0) == len(g),
                "infeasible_reason": infeasible,
                "solver_status": plan.solver_status if plan else "NO_HOUSEHOLDS",
                "objective": plan.objective if plan else None,
                "bound": plan.bound if plan else None,
                "gap": None if plan is None or plan.gap is None else round(plan.gap, 6),
                "time_s": round(plan.wall_time, 3) if plan else 0.0,
                "deterministic_time": round(plan.deterministic_time, 3) if plan else 0.0,
                "notes": (plan.notes if plan else [])
                + units.notes.get(cid, [])
                + ([] if plan else [f"community {cid} has no households; it is one empty grid"]),
            }
        )
    feasible_ids = {c["community_id"] for c in communities if c["infeasible_reason"] is None}
    feasible_grids = grids[grids["community_id"].isin(feasible_ids)]
    in_bounds = int((feasible_grids["status"] == "ok").sum())
    reasons = Counter(assignments.loc[unassigned, "reason"])
    return {
        "gridkit_version": __version__,
        "parameters": {
            "min_households": rules.min_households,
            "max_households": rules.max_households,
            "target_households": rules.target,
            "balance_weight": rules.balance_weight,
            "time_limit": time_limit,
            "seed": seed,
        },
        "totals": {
            "communities": len(comm),
            "grids": len(grids),
            "household_rows": len(assignments),
            "households": int(hh_rows.sum()),
            "households_assigned": int(hh_rows[~unassigned.to_numpy()].sum()),
            "households_unassigned": int(hh_rows[unassigned.to_numpy()].sum()),
            "rows_unassigned": int(unassigned.sum()),
            "unassigned_by_reason": {
                r: {"rows": int(n), "meaning": UNASSIGNED_REASONS.get(r, r)}
                for r, n in sorted(reasons.items())
            },
            "grids_by_status": dict(sorted(Counter(grids["status"]).items())),
            "feasible_communities": len(feasible_ids),
            "grids_in_feasible_communities": len(feasible_grids),
            "pct_grids_in_bounds_where_feasible": _pct_floor(in_bounds, len(feasible_grids)),
            "mean_compactness": round(float(grids["compactness"].mean()), 4)
            if len(grids)
            else None,
            "time_s": round(elapsed, 3),
        },
        "communities": communities,
        "grids": [
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
        ],
    }


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
        Processes solving communities in parallel (default: half the cores, since
        each solve runs two CP-SAT threads).
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

    Returns
    -------
    GridPlan
        ``grids`` (EPSG:4326), ``assignments``, ``report`` and ``units``.

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
    if not (math.isfinite(time_limit) and time_limit > 0):
        raise InputError(
            f"`time_limit` must be a positive number of seconds, got {time_limit}; "
            "e.g. --time-limit 5."
        )
    if not 0 <= int(seed) < 2**31:
        raise InputError(f"`seed` must be between 0 and 2**31 - 1, got {seed}; e.g. --seed 0.")
    households = _ensure_household_columns(households)
    if compounds is not None:
        households = attach_compounds(households, compounds)
    boundaries = _ensure_boundary_columns(boundaries)
    units = build_units(boundaries, households)
    plans = partition_units(
        units.units,
        rules=rules,
        time_limit=time_limit,
        seed=seed,
        jobs=jobs,
        verbose=verbose,
        keep_compounds=keep_compounds,
        barriers=_barriers_in(barriers, units.crs),
    )
    plan = assemble(
        units,
        plans,
        households,
        rules=rules,
        time_limit=time_limit,
        seed=seed,
        elapsed=time.perf_counter() - started,
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


def _ensure_household_columns(households: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
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


def _ensure_boundary_columns(boundaries: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
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
