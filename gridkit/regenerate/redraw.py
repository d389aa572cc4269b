"""Regenerate a grid map as housing changes: keep valid grids and their codes, re-solve the rest.

What "kept" means
-----------------
Every unit (building) of the new inputs inherits the previous grid whose polygon
holds its building point, when that grid belongs to the unit's (current)
community.  A previous grid is *valid* when its inherited units are contiguous
(rook adjacency of the new cells) and hold a number of households within the
bounds (or keep the same non-``ok`` status as before, e.g. an
``oversize_building`` grid or a community below the minimum).  A valid grid is
kept with its code and its buildings; its polygon is re-derived as the union of
its units' *current* cells, so it follows the community boundary and moves only
where a neighbouring building appeared or disappeared.  With unchanged inputs
the cells are the same, hence ``grids.geojson`` is byte-identical.

Where a grid is broken (out of bounds, split, or emptied) or buildings lie in
no previous grid of their community, the broken grids, the free buildings and
the grids touching them (one ring; the whole community when one ring cannot
meet the bounds) are re-solved by a CP-SAT model built from the
:mod:`gridkit.solver` builders with a lexicographic objective:

1. households outside the bounds (soft bounds), then households that change
   grid: ``y[g, c] = 1`` gives old grid ``g``'s code to the grid centred at
   ``c`` (each code to at most one open grid, each grid at most one code),
   ``z[i, c] <= x[i, c]``, ``z[i, c] <= y[g_i, c]``, and kept households
   ``sum w_i z[i, c]`` are maximised;
2. with that optimum fixed, compactness plus balance (the objective of
   ``gridkit partition``).

Codes: a re-solved grid takes the old code matched to it (a maximum-weight
matching of new grids to old codes by shared households); other grids get
new sequence numbers after every number ever issued in the community (kept in
``codes.json``), so retired codes are never reused.

Dedicated grids (``dedicated`` parcels, 专属网格): each parcel is carved out again
(:func:`gridkit.units.carve_parcels`) and keeps the code of the previous dedicated grid
it overlaps (intersection over union ≥ 0.5); a new parcel takes the next dedicated code
(901-999) after every one ever issued, and a removed parcel's code is retired.  Buildings
are never inherited from a previous dedicated grid: where a parcel was removed, its
buildings are free and re-solved.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
import warnings
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.codes import DEDICATED_BLOCK
from gridkit.errors import GridkitWarning
from gridkit.partition import GridRules
from gridkit.pipeline import (
    BackendError,
    assemble,
    bounds_report,
    die_with_parent,
    district_units,
    ensure_boundary_columns,
)
from gridkit.regenerate.changes import RegenPlan, build_regen_plan
from gridkit.regenerate.community import CommunityOutcome, CommunityTask, regen_community
from gridkit.regenerate.previous import Previous, read_previous
from gridkit.regenerate.stable_codes import sequence_of
from gridkit.units import MERGE_DISTANCE, carve_parcels, row_points
from gridkit.utils import progress_class

tqdm = progress_class()

__all__ = ["regenerate"]

log = logging.getLogger(__name__)


def _locate(points: np.ndarray, old: gpd.GeoDataFrame, unit_comm: np.ndarray):
    """Previous grid (row of ``old``) holding each point, preferring the unit's community."""
    geoms = old.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    pt, g = tree.query(points, predicate="intersects")
    result = np.full(len(points), -1, dtype=np.int64)
    if len(pt) == 0:
        return result
    frame = pd.DataFrame(
        {
            "pt": pt,
            "g": g,
            "other": old["community_id"].to_numpy()[g] != unit_comm[pt],
            "code": old["grid_code"].to_numpy()[g],
        }
    )
    first = frame.sort_values(["pt", "other", "code"]).drop_duplicates("pt")
    result[first["pt"].to_numpy()] = first["g"].to_numpy()
    return result


def _run(task: CommunityTask) -> CommunityOutcome:
    return regen_community(task)


def regenerate(
    previous: str | os.PathLike | gpd.GeoDataFrame,
    boundaries: gpd.GeoDataFrame,
    households: gpd.GeoDataFrame,
    *,
    min_households: int = 400,
    max_households: int = 800,
    target_households: int | None = None,
    balance_weight: float = 1.0,
    time_limit: float = 10.0,
    seed: int = 0,
    jobs: int | None = None,
    verbose: bool = False,
    keep_compounds: bool = True,
    compounds: gpd.GeoDataFrame | None = None,
    barriers: gpd.GeoDataFrame | None = None,
    merge_distance: float = MERGE_DISTANCE,
    compound_buildings_col: str | None = None,
    dedicated: gpd.GeoDataFrame | None = None,
    community_rules: str | os.PathLike | Mapping | None = None,
) -> RegenPlan:
    """Regenerate a grid map for changed housing with as little change as possible.

    Parameters
    ----------
    previous
        The previous map: an output folder of ``gridkit partition`` / ``regenerate``
        (``grids.geojson`` and, when present, ``codes.json``), a ``grids.geojson``
        path or its GeoDataFrame.
    boundaries, households
        The current inputs, as for :func:`gridkit.make_grids` (buildings may be new,
        demolished or re-counted; community boundaries may be edited).
    min_households, max_households, target_households, balance_weight
        Grid rules, as for :func:`gridkit.make_grids`.
    time_limit
        CP-SAT deterministic budget per re-solved region (60 % for the first objective,
        40 % for compactness).
    seed
        Seed of CP-SAT.
    jobs
        Communities solved in parallel (default all cores); the result does not depend
        on it.
    verbose
        Show a progress bar.
    keep_compounds, compounds, barriers, merge_distance, compound_buildings_col
        As for :func:`gridkit.make_grids`: the buildings and their cells are made
        exactly as ``partition`` makes them (cells drawn inside the blocks that
        barriers and compound walls cut, compounds given as points split by building
        number), so pass the same layers and options as for the previous run.
    dedicated
        Dedicated-grid parcels, as for :func:`gridkit.make_grids`: the parcel of a
        previous dedicated grid keeps its code, a new parcel gets the next dedicated
        code (901-999) never issued, a removed parcel's code is retired.
    community_rules
        Household bounds by community type; with ``min_households``/``max_households``
        columns of ``boundaries``, each community keeps its own bounds, as for
        :func:`gridkit.make_grids`.

    Returns
    -------
    RegenPlan
        Unchanged inputs give the previous grids back, byte for byte once written.

    Warns
    -----
    GridkitWarning
        When household ids are row numbers (no ``--id-col``) in this run or the
        previous one: new and demolished buildings cannot then be told from old
        ones, so ``changes.csv`` counts new buildings as moved households and lists
        no removed ones.  When the previous map has dedicated grids and no
        ``dedicated`` parcels are given (their codes are retired).
    """
    started = time.perf_counter()
    rules = GridRules(
        min_households=min_households,
        max_households=max_households,
        target_households=target_households,
        balance_weight=balance_weight,
    )
    prev = read_previous(previous)
    previous_dedicated = np.array(
        [sequence_of(c) > DEDICATED_BLOCK for c in prev.grids["grid_code"]], dtype=bool
    )
    carving = None
    if dedicated is not None:
        carving = carve_parcels(
            ensure_boundary_columns(boundaries), dedicated, previous=prev.grids,
            issued=prev.issued,
        )  # fmt: skip
    elif previous_dedicated.any():
        warnings.warn(
            f"the previous map has {int(previous_dedicated.sum())} dedicated grid(s) "
            f"({', '.join(prev.grids['grid_code'][previous_dedicated].tolist()[:5])}) but no "
            "dedicated parcels were given: their codes are retired and their area is drawn "
            "into residential grids. Pass the parcels again (--dedicated) to keep them.",
            GridkitWarning,
            stacklevel=2,
        )
    boundaries, households, units, _, bounds = district_units(
        boundaries,
        households,
        rules=rules,
        community_rules=community_rules,
        merge_distance=merge_distance,
        barriers=barriers,
        compounds=compounds,
        keep_compounds=keep_compounds,
        compound_buildings_col=compound_buildings_col,
        dedicated=carving,
    )
    _warn_row_number_ids(prev, households)
    u = units.units
    every_old = prev.grids.to_crs(units.crs)
    # buildings inherit residential grids only (a dedicated grid is its parcel's)
    old = every_old[~previous_dedicated].reset_index(drop=True)
    points = shapely.points(u[["x", "y"]].to_numpy())
    unit_comm = u["community_id"].astype(str).to_numpy()
    where = _locate(points, old, unit_comm)
    old_codes = np.where(where >= 0, old["grid_code"].to_numpy()[np.maximum(where, 0)], "")
    same = (where >= 0) & (old["community_id"].to_numpy()[np.maximum(where, 0)] == unit_comm)
    inherit_all = np.where(same, [sequence_of(c) if c else -1 for c in old_codes], -1).astype(
        np.int64
    )
    ids = prev.household_ids
    row_existing = (
        np.ones(len(households), dtype=bool)
        if ids is None
        else households["household_id"].astype(str).isin(ids).to_numpy()
    )
    uid = units.membership["unit_id"]
    has_unit = uid.notna().to_numpy()
    existing_all = np.zeros(len(u), dtype=bool)
    existing_all[uid[has_unit & row_existing].to_numpy(dtype=np.int64)] = True
    prev_status = {
        (str(c), sequence_of(code)): str(st)
        for c, code, st in zip(old["community_id"], old["grid_code"], old["status"], strict=True)
    }
    tasks = []
    jobs = (os.cpu_count() or 1) if jobs is None else max(1, int(jobs))
    for cid, group in u.groupby("community_id", sort=False):
        cid = str(cid)
        idx = group.index.to_numpy()
        issued = prev.issued.get(cid, set())
        tasks.append(
            CommunityTask(
                community_id=cid,
                units=group,
                inherit=inherit_all[idx],
                existing=existing_all[idx],
                prev_status={s: st for (c, s), st in prev_status.items() if c == cid},
                next_seq=max(
                    (s for s in map(sequence_of, issued) if s <= DEDICATED_BLOCK), default=0
                ) + 1,
                rules=bounds.get(cid, rules),
                time_limit=time_limit,
                seed=seed,
                workers=2,
            )
        )
    outcomes: list[CommunityOutcome | None] = [None] * len(tasks)
    bar = tqdm(total=len(tasks), desc="communities", unit="community", disable=not verbose)
    heavy = [
        k for k, t in enumerate(tasks)
        if (t.inherit < 0).any() or _may_break(t)
    ]  # fmt: skip
    light = [k for k in range(len(tasks)) if k not in set(heavy)]
    for k in light:
        outcomes[k] = _run(tasks[k])
        bar.update()
    if jobs == 1 or len(heavy) <= 1:
        for k in heavy:
            outcomes[k] = _run(tasks[k])
            bar.update()
    else:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with ProcessPoolExecutor(
            max_workers=min(jobs, len(heavy)),
            mp_context=ctx,
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            futures = {pool.submit(_run, tasks[k]): k for k in heavy}
            try:
                for future in as_completed(futures):
                    outcomes[futures[future]] = future.result()
                    bar.update()
            except BrokenProcessPool as exc:
                raise BackendError(
                    f"a worker process died while regenerating ({exc}): it was killed or ran "
                    "out of memory. Nothing was written; run the command again (fewer --jobs "
                    "needs less memory)."
                ) from None
    bar.close()
    done = [o for o in outcomes if o is not None]
    plan = assemble(
        units,
        [o.plan for o in done],
        households,
        rules=rules,
        time_limit=time_limit,
        seed=seed,
        elapsed=time.perf_counter() - started,
        bounds=bounds,
        bounds_info=bounds_report(bounds, community_rules),
    )
    row_hh = households["households"].to_numpy(dtype=np.int64)
    return build_regen_plan(
        plan, prev, units, old_codes, row_hh, row_existing, existing_all, done, started,
        row_old_codes=_piece_rows_old_codes(units, households, every_old),
    )  # fmt: skip


def _piece_rows_old_codes(units, households: gpd.GeoDataFrame, old: gpd.GeoDataFrame):
    """The previous grid of each household row in a dedicated parcel ("" elsewhere).

    Those rows have no unit: their previous grid is the one holding their point (in
    their community first), so a row that stays in a kept dedicated grid is unchanged.
    """
    out = np.full(len(households), "", dtype=object)
    ded = units.dedicated
    if ded is None or ded.row_piece is None or not len(old):
        return out
    rows = np.flatnonzero(ded.row_piece >= 0)
    if not len(rows):
        return out
    points = row_points(households.iloc[rows].to_crs(units.crs).geometry.to_numpy())
    comm = ded.pieces["community_id"].astype(str).to_numpy()[ded.row_piece[rows]]
    where = _locate(points, old, comm)
    found = where >= 0
    out[rows[found]] = old["grid_code"].to_numpy(dtype=object)[where[found]]
    return out


def _warn_row_number_ids(prev: Previous, households: gpd.GeoDataFrame) -> None:
    """Warn when row-number ids make new and removed buildings undetectable."""
    previous_rows = prev.assignments is not None and prev.household_ids is None
    current_rows = "row" in households.columns and (
        households["household_id"].astype(str) == households["row"].astype(str)
    ).all()
    if not (previous_rows or current_rows):
        return
    which = (
        "this run's and the previous run's"
        if previous_rows and current_rows
        else "the previous run's" if previous_rows else "this run's"
    )
    warnings.warn(
        f"{which} household ids are row numbers, so new and removed buildings cannot be "
        "told from old ones: new buildings count as households that moved and demolished "
        "ones are not listed in changes.csv (the grids themselves are unaffected). Give a "
        "stable id column with --id-col (e.g. --id-col building_id) in both runs.",
        GridkitWarning,
        stacklevel=3,
    )


def _may_break(task: CommunityTask) -> bool:
    """Cheap pre-check: could a previous grid of this community be out of bounds now?"""
    w = task.units["households"].to_numpy(dtype=np.int64)
    for s in np.unique(task.inherit):
        load = int(w[task.inherit == s].sum())
        if not (task.rules.min_households <= load <= task.rules.max_households):
            return True
    return False
