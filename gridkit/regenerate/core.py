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
:mod:`gridkit._cpsat` builders with a lexicographic objective:

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
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import time
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csgraph

from gridkit.contracts import OWN_GRID_STATUSES
from gridkit.errors import GridkitWarning, InputError
from gridkit.partition import (
    CommunityPlan,
    GridRules,
    balance_weight,
    centre_for,
    graph_distances,
    status_of_grid,
    max_radius,
    number_grids,
    own_grid_kinds,
    partition_community,
)
from gridkit.pipeline import (
    BackendError,
    GridPlan,
    assemble,
    die_with_parent,
    district_units,
    pct_floor,
)
from gridkit.solver import cpsat as _cpsat
from gridkit.units import MERGE_DISTANCE, adjacency_matrix, rook_pairs
from gridkit.utils import progress_class

tqdm = progress_class()

__all__ = [
    "CHANGE_COLUMNS",
    "CODES_FILE",
    "REGEN_FILES",
    "Previous",
    "RegenPlan",
    "moved_households",
    "read_previous",
    "regenerate",
]

log = logging.getLogger(__name__)

#: Sidecar listing every grid code ever issued per community (read from and
#: written to the output folder), so that retired codes are never reused.
CODES_FILE = "codes.json"
#: Files ``regenerate`` writes beside those of a grid plan, by kind.
REGEN_FILES = {
    "changes": "changes.csv",
    "diff": "diff.geojson",
    "summary": "summary.json",
    "codes": CODES_FILE,
}
#: Columns of ``changes.csv``.
CHANGE_COLUMNS = [
    "household_id",
    "row",
    "building_id",
    "community_id",
    "households",
    "old_grid_code",
    "new_grid_code",
    "change",
]
_GRID_COLUMNS = ("grid_code", "community_id", "households", "buildings", "status")


# --------------------------------------------------------------------------- previous plan


@dataclass
class Previous:
    """The previous grid map: its grids (EPSG:4326) and the codes ever issued per community."""

    grids: gpd.GeoDataFrame
    issued: dict[str, set[str]]
    source: str
    assignments: pd.DataFrame | None = None

    @property
    def household_ids(self) -> set[str] | None:
        """Household ids of the previous run, when they identify households across runs.

        ``None`` without ``assignments.csv`` or when its ids are just row numbers
        (``--id-col`` not given), which do not survive added or removed rows.
        """
        a = self.assignments
        if a is None or (a["household_id"] == a["row"]).all():
            return None
        return set(a["household_id"])


def _seq(code: str) -> int:
    return int(str(code)[-3:])


def read_previous(previous: str | os.PathLike | gpd.GeoDataFrame) -> Previous:
    """Read a previous grid map: an output folder, a ``grids.geojson`` or a GeoDataFrame.

    ``codes.json`` beside the grids (written by :func:`regenerate`) adds the codes
    issued in earlier generations; without it, the codes in use are all that is known.
    """
    from gridkit.export import check_set, original_text, read_output_layer

    codes_path = assignments = None
    fix = (
        "Pass the folder exactly as `gridkit partition` or `gridkit regenerate` wrote it "
        "(write it again if it was edited or damaged)."
    )
    if isinstance(previous, gpd.GeoDataFrame):
        grids, source = previous.copy(), "previous grids"
    else:
        path = Path(previous)
        grids_path = path / "grids.geojson" if path.is_dir() else path
        if grids_path.name == "grids.geojson":
            check_set(grids_path.parent, ["grids.geojson", CODES_FILE, "assignments.csv"])
        if not grids_path.is_file():
            msg = (
                f"no previous grid layer at '{grids_path}' (`previous`): pass the folder "
                "written by `gridkit partition` or `gridkit regenerate` (it holds "
                "grids.geojson) or a grids.geojson file."
            )
            raise InputError(msg)
        grids = read_output_layer(grids_path, what="previous grid layer (--previous)", fix=fix)
        codes_path = grids_path.parent / CODES_FILE
        source = str(grids_path)
        table = grids_path.parent / "assignments.csv"
        if table.is_file():
            assignments = _read_previous_assignments(table, fix)
            if not {"household_id", "row", "grid_code"} <= set(assignments.columns):
                assignments = None
            else:
                for col in ("household_id", "grid_code"):
                    assignments[col] = assignments[col].map(original_text)
    missing = [c for c in _GRID_COLUMNS if c not in grids]
    if missing:
        msg = (
            f"{source} lacks the grid columns {', '.join(missing)}: it does not look like a "
            "gridkit grid layer. Pass the grids.geojson written by `gridkit partition`."
        )
        raise InputError(msg)
    if grids.crs is None:
        grids = grids.set_crs(4326)
    grids["grid_code"] = grids["grid_code"].astype(str)
    grids["community_id"] = grids["community_id"].astype(str)
    _check_previous_grids(grids, source, fix)
    dup = grids["grid_code"][grids["grid_code"].duplicated()].tolist()
    if dup:
        msg = f"{source} repeats grid codes {dup[:10]}; every grid needs its own code."
        raise InputError(msg)
    issued: dict[str, set[str]] = {}
    for cid, code in zip(grids["community_id"], grids["grid_code"], strict=True):
        issued.setdefault(cid, set()).add(code)
    if codes_path is not None and codes_path.is_file():
        for cid, codes in _read_codes(codes_path).items():
            issued.setdefault(cid, set()).update(codes)
    return Previous(
        grids=grids.reset_index(drop=True), issued=issued, source=source, assignments=assignments
    )


_CODE_END = re.compile(r"\d{3}$")


def _check_previous_grids(grids: gpd.GeoDataFrame, source: str, fix: str) -> None:
    """Codes ending in a 3-digit sequence, numeric households, polygon geometries."""
    bad = [c for c in grids["grid_code"] if not _CODE_END.search(c)]
    if bad:
        raise InputError(
            f"{source}: grid codes {bad[:5]}{' …' if len(bad) > 5 else ''} do not end in the "
            "3-digit sequence number gridkit gives every grid (e.g. 420204001003007 or "
            "C01-007), so new codes cannot be numbered after them. " + fix
        )
    hh = pd.to_numeric(grids["households"], errors="coerce")
    if hh.isna().any():
        rows = (np.flatnonzero(hh.isna().to_numpy()) + 1).tolist()
        raise InputError(
            f"{source}: `households` is missing or not a number at features {rows[:10]}. " + fix
        )
    polygon = grids.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    if not polygon.all():
        rows = (np.flatnonzero(~polygon) + 1).tolist()
        raise InputError(f"{source}: features {rows[:10]} are not polygons. " + fix)
    invalid = ~shapely.is_valid(grids.geometry.to_numpy())
    if invalid.any():
        grids.loc[invalid, grids.geometry.name] = shapely.make_valid(
            grids.geometry.to_numpy()[invalid]
        )


def _read_previous_assignments(table: Path, fix: str) -> pd.DataFrame:
    """The previous ``assignments.csv`` (text cells), or an InputError naming the file."""
    try:
        return pd.read_csv(table, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"cannot read the previous household table '{table}' ({first}). {fix} Or move "
            "assignments.csv out of the folder: without it, households are matched by "
            "location only."
        ) from None


def _read_codes(path: Path) -> dict[str, set[str]]:
    """The codes ever issued per community, from ``codes.json``; an InputError when damaged."""
    how = (
        f"Restore {CODES_FILE} from a copy of the earlier run, or delete it to number new "
        "grids after the codes in use only (a retired code could then be issued again)."
    )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot read '{path}': it is not valid JSON ({exc}). {how}") from None
    communities = data.get("communities") if isinstance(data, dict) else None
    if not isinstance(communities, dict):
        raise InputError(
            f"'{path}' is not a gridkit codes file (expected {{\"communities\": {{id: "
            f"{{\"issued\": [codes]}}}}}}). {how}"
        )
    issued: dict[str, set[str]] = {}
    for cid, entry in communities.items():
        codes = entry.get("issued") if isinstance(entry, dict) else None
        if not isinstance(codes, list) or not all(isinstance(c, str | int) for c in codes):
            raise InputError(
                f"'{path}': community {str(cid)!r} has no list of issued codes. {how}"
            )
        bad = [str(c) for c in codes if not _CODE_END.search(str(c))]
        if bad:
            raise InputError(
                f"'{path}': community {str(cid)!r} lists codes {bad[:5]} that do not end in a "
                f"3-digit sequence number. {how}"
            )
        issued[str(cid)] = set(map(str, codes))
    return issued


# --------------------------------------------------------------------------- one community


@dataclass
class _Task:
    community_id: str
    units: gpd.GeoDataFrame
    inherit: np.ndarray  # previous grid sequence per unit, -1 when none
    existing: np.ndarray  # whether the unit held households of the previous run
    prev_status: dict[int, str]
    next_seq: int
    rules: GridRules
    time_limit: float
    seed: int
    workers: int


@dataclass
class _Outcome:
    plan: CommunityPlan
    region_units: int = 0
    region_grids: int = 0
    expanded: bool = False


def _connected(adj: sparse.csr_matrix, members: np.ndarray) -> bool:
    if len(members) <= 1:
        return True
    sub = adj[members][:, members]
    return csgraph.connected_components(sub, directed=False)[0] == 1


def _grow(region: np.ndarray, adj: sparse.csr_matrix, inherit: np.ndarray, fixed: set[int]):
    """``region`` plus every previous grid touching it (except the ``fixed`` ones)."""
    touched = np.unique(adj[np.flatnonzero(region)].indices)
    seqs = {int(s) for s in inherit[touched] if s >= 0} - fixed
    return region | np.isin(inherit, sorted(seqs))


def _hint_labels(adj: sparse.csr_matrix, inherit: np.ndarray) -> np.ndarray:
    """A hint: the previous grid of each unit, free units joining a neighbour's grid.

    Returns labels 0..k-1 whose groups are connected.
    """
    labels = inherit.astype(np.int64).copy()
    n = len(labels)
    while (labels < 0).any():
        changed = False
        for i in np.flatnonzero(labels < 0):
            nbrs = adj.indices[adj.indptr[i] : adj.indptr[i + 1]]
            known = [int(j) for j in nbrs if labels[j] >= 0]
            if known:
                labels[i] = labels[min(known)]
                changed = True
        if not changed:  # a piece with no previous grid at all: one new group
            first = int(np.flatnonzero(labels < 0)[0])
            labels[first] = labels.max(initial=-1) + 1 + n
    out = np.empty(n, dtype=np.int64)
    nxt = 0
    for lab in np.unique(labels):
        members = np.flatnonzero(labels == lab)
        k, comp = csgraph.connected_components(adj[members][:, members], directed=False)
        out[members] = comp + nxt
        nxt += k
    return out


def _match_codes(labels: np.ndarray, old: np.ndarray, w: np.ndarray) -> dict[int, int]:
    """Old grid sequence for each new label: maximum-weight matching on shared households.

    Weights are ``1000 * households + 1`` per shared unit, so households decide and
    buildings break ties; pairs sharing nothing are never matched.
    """
    new_ids = np.unique(labels)
    old_ids = np.unique(old[old >= 0])
    if not len(new_ids) or not len(old_ids):
        return {}
    ni = np.searchsorted(new_ids, labels)
    has = old >= 0
    oi = np.searchsorted(old_ids, old[has])
    gain = np.zeros((len(new_ids), len(old_ids)))
    np.add.at(gain, (ni[has], oi), 1000.0 * w[has] + 1.0)
    rows, cols = linear_sum_assignment(gain, maximize=True)
    return {
        int(new_ids[r]): int(old_ids[c]) for r, c in zip(rows, cols, strict=True) if gain[r, c] > 0
    }


@dataclass
class _RegionResult:
    labels: np.ndarray  # centre (local index) per region unit
    status: str
    objective: float | None
    bound: float | None
    wall_time: float
    deterministic_time: float
    violation: int
    moved: int


def _violation(labels: np.ndarray, w: np.ndarray, rules: GridRules) -> int:
    total = 0
    for lab in np.unique(labels):
        members = labels == lab
        load = int(w[members].sum())
        if (w[members] > rules.max_households).any():
            continue  # an oversize building: not fixable
        total += max(0, rules.min_households - load) + max(0, load - rules.max_households)
    return total


def _moved(labels: np.ndarray, old: np.ndarray, w: np.ndarray) -> int:
    match = _match_codes(labels, old, w)
    kept = sum(int(w[(labels == lab) & (old == g)].sum()) for lab, g in match.items())
    return int(w[old >= 0].sum()) - kept


def _solve_region(
    adj: sparse.csr_matrix,
    w: np.ndarray,
    xy: np.ndarray,
    inherit: np.ndarray,
    old: np.ndarray,
    *,
    rules: GridRules,
    time_limit: float,
    seed: int,
    workers: int,
) -> _RegionResult:
    """Re-partition a region: fewest households out of bounds, then fewest moved, then compact.

    ``inherit`` is the previous grid holding each unit (the hint); ``old`` the same for
    units that existed before and -1 for new ones (the moved-household term).
    """
    n = len(w)
    dist = graph_distances(adj, xy)
    hint = _hint_labels(adj, inherit)
    centres = {
        int(lab): centre_for(np.flatnonzero(hint == lab), adj, w, xy, dist)
        for lab in np.unique(hint)
    }
    hint_centre = np.array([centres[int(lab)] for lab in hint], dtype=np.int64)
    lam = balance_weight(adj, w, xy, rules)
    pair_i, pair_c, preds = _cpsat.allowed_pairs(
        adj,
        w,
        dist,
        max_households=None,
        xy=xy,
        max_radius=max_radius(adj, w, xy, rules),
        keep={(i, int(hint_centre[i])) for i in range(n)},
    )
    model = _cpsat.cp_model.CpModel()
    x = [model.NewBoolVar(f"x_{i}_{c}") for i, c in zip(pair_i, pair_c, strict=True)]
    centre_index = {
        int(c): p for p, (i, c) in enumerate(zip(pair_i, pair_c, strict=True)) if i == c
    }
    _cpsat.add_assignment(model, x, pair_i, n)
    _cpsat.add_contiguity(model, x, pair_i, pair_c, preds, centre_index)
    devs, violations = _cpsat.add_size_bounds(
        model,
        x,
        pair_i,
        pair_c,
        w,
        centre_index,
        min_households=rules.min_households,
        max_households=rules.max_households,
        target=rules.target,
        hard=False,
    )
    total = int(w.sum())
    opened = [x[p] for p in centre_index.values()]
    _cpsat.add_balance_cut(model, devs, opened, total=total, target=rules.target)
    # moved households: each old code goes to at most one open grid
    y: dict[tuple[int, int], Any] = {}
    kept_terms = []
    z_of: dict[int, Any] = {}
    for p, (i, c) in enumerate(zip(pair_i, pair_c, strict=True)):
        g = int(old[i])
        if g < 0 or w[i] == 0:
            continue
        key = (g, int(c))
        if key not in y:
            y[key] = model.NewBoolVar(f"y_{g}_{c}")
        z = model.NewBoolVar(f"z_{i}_{c}")
        model.AddImplication(z, x[p])
        model.AddImplication(z, y[key])
        kept_terms.append(int(w[i]) * z)
        z_of[p] = z
    by_old: dict[int, list] = {}
    by_centre: dict[int, list] = {}
    for (g, c), var in y.items():
        by_old.setdefault(g, []).append(var)
        by_centre.setdefault(c, []).append(var)
    for vars_g in by_old.values():
        model.AddAtMostOne(vars_g)
    for c, vars_c in by_centre.items():
        model.Add(sum(vars_c) <= x[centre_index[c]])
    old_total = int(w[old >= 0].sum())
    big = total + 1
    first = big * sum(violations) + old_total - sum(kept_terms)
    model.Minimize(first)
    grid_model = _cpsat.GridModel(model=model, pair_i=pair_i, pair_c=pair_c, x=x, n=n)

    def hint_plan(labels: np.ndarray) -> None:
        model.ClearHints()
        _cpsat.add_hint(grid_model, labels, {int(c): int(c) for c in np.unique(labels)})
        match = _match_codes(labels, old, w)
        for (g, c), var in y.items():
            model.AddHint(var, match.get(c) == g)
        for p, z in z_of.items():
            i, c = int(pair_i[p]), int(pair_c[p])
            model.AddHint(z, bool(labels[i] == c and match.get(c) == int(old[i])))

    hint_plan(hint_centre)
    step1 = _cpsat.solve(grid_model, time_limit=0.6 * time_limit, seed=seed, workers=workers)
    wall, det = step1.wall_time, step1.deterministic_time
    if step1.labels is None:
        labels = hint_centre
        return _RegionResult(
            labels, "HEURISTIC", None, None, wall, det, _violation(labels, w, rules),
            _moved(labels, old, w),
        )  # fmt: skip
    labels = step1.labels
    # step 2: keep the first optimum (as found), minimise compactness + balance
    model.Add(first <= round(step1.objective))
    dist_m = np.rint(np.hypot(*(xy[pair_i] - xy[pair_c]).T)).astype(np.int64)
    cost = w[pair_i] * dist_m
    model.Minimize(sum(int(k) * x[p] for p, k in enumerate(cost) if k) + lam * sum(devs))
    hint_plan(labels)
    step2 = _cpsat.solve(grid_model, time_limit=0.4 * time_limit, seed=seed, workers=workers)
    wall += step2.wall_time
    det += step2.deterministic_time
    status = step1.status if step1.status == "OPTIMAL" else "FEASIBLE"
    objective = bound = None
    if step2.labels is not None:
        labels = step2.labels
        objective, bound = step2.objective, step2.bound
        if step2.status != "OPTIMAL":
            status = "FEASIBLE"
    else:
        status = "FEASIBLE"
    return _RegionResult(
        labels, status, objective, bound, wall, det, _violation(labels, w, rules),
        _moved(labels, old, w),
    )  # fmt: skip


def _statuses(
    seq: np.ndarray, w: np.ndarray, rules: GridRules, kinds: np.ndarray
) -> dict[int, str]:
    out = {}
    for s in np.unique(seq):
        members = seq == s
        out[int(s)] = status_of_grid(int(w[members].sum()), _kind_of(kinds[members]), rules)
    return out


def _kind_of(kinds: np.ndarray) -> str:
    """The own-grid kind of a grid from its units' (:func:`gridkit.partition.own_grid_kinds`)."""
    for kind in OWN_GRID_STATUSES:
        if (kinds == kind).any():
            return kind
    return ""


def _regen_community(task: _Task) -> _Outcome:
    """Keep the valid grids of one community and re-solve the rest."""
    started = time.perf_counter()
    units, rules = task.units, task.rules
    cid = task.community_id
    inherit = task.inherit
    w = units["households"].to_numpy(dtype=np.int64)
    kinds = own_grid_kinds(units, rules)
    if (inherit < 0).all():
        # nothing to keep (a new community): partition it, numbering after the issued codes
        plan = partition_community(
            units, rules=rules, time_limit=task.time_limit, seed=task.seed, workers=task.workers
        )
        offset = task.next_seq - 1
        plan.labels = plan.labels + offset
        plan.grid_status = {s + offset: st for s, st in plan.grid_status.items()}
        return _Outcome(plan=plan, region_units=len(units), region_grids=len(plan.grid_status))
    geoms = units.geometry.to_numpy()
    left, right, _ = rook_pairs(geoms)
    adj = adjacency_matrix(len(units), left, right)
    xy = units[["x", "y"]].to_numpy(dtype=float)
    status_now = {}
    broken = set()
    for s in np.unique(inherit[inherit >= 0]):
        members = np.flatnonzero(inherit == s)
        st = status_of_grid(int(w[members].sum()), _kind_of(kinds[members]), rules)
        status_now[int(s)] = st
        ok = st == "ok" or st == task.prev_status.get(int(s))
        if not ok or not _connected(adj, members):
            broken.add(int(s))
    free = inherit < 0
    notes: list[str] = []
    if not broken and not free.any():
        plan = CommunityPlan(
            community_id=cid,
            labels=pd.Series(inherit, index=units.index, name="grid_seq"),
            grid_status=dict(sorted(status_now.items())),
            solver_status="OPTIMAL",
            objective=None,
            bound=None,
            gap=None,
            wall_time=time.perf_counter() - started,
            deterministic_time=0.0,
            notes=[],
        )
        return _Outcome(plan=plan)
    mover = np.where(task.existing, inherit, -1)  # new buildings never count as moved
    fixed = {s for s, st in status_now.items() if st in OWN_GRID_STATUSES} - broken
    region = np.isin(inherit, sorted(broken)) | free
    region = _grow(region, adj, inherit, fixed)
    best: tuple[np.ndarray, _RegionResult] | None = None
    expanded = False
    det = 0.0
    while True:
        nodes = np.flatnonzero(region)
        result = _solve_region(
            adj[nodes][:, nodes].tocsr(),
            w[nodes],
            xy[nodes],
            inherit[nodes],
            mover[nodes],
            rules=rules,
            time_limit=task.time_limit,
            seed=task.seed,
            workers=task.workers,
        )
        det += result.deterministic_time
        if best is None or (result.violation, result.moved) < (best[1].violation, best[1].moved):
            best = (nodes, result)
        if result.violation == 0 or region.all():
            break
        region = np.ones(len(units), dtype=bool)
        expanded = True
    if best[1].violation:
        # Bounds come before stability: a fresh partition (its warm start meets the
        # bounds whenever a spanning-tree cut allows) may fix what the re-solve could not.
        fresh_plan = partition_community(
            units, rules=rules, time_limit=task.time_limit, seed=task.seed, workers=task.workers
        )
        fresh_labels = fresh_plan.labels.to_numpy()
        violation = _violation(fresh_labels, w, rules)
        if violation < best[1].violation:
            det += fresh_plan.deterministic_time
            expanded = True
            best = (
                np.arange(len(units)),
                _RegionResult(
                    fresh_labels, fresh_plan.solver_status, fresh_plan.objective,
                    fresh_plan.bound, fresh_plan.wall_time, fresh_plan.deterministic_time,
                    violation, _moved(fresh_labels, mover, w),
                ),
            )  # fmt: skip
    nodes, result = best
    # codes: the matched old code, else new sequence numbers north→south, west→east
    seq = inherit.copy()
    local = result.labels
    match = _match_codes(local, mover[nodes], w[nodes])
    fresh = sorted(set(np.unique(local).tolist()) - set(match))
    new_seq = np.zeros(len(nodes), dtype=np.int64)
    for lab, g in match.items():
        new_seq[local == lab] = g
    if fresh:
        mask = np.isin(local, fresh)
        cells = geoms[nodes][mask]
        order = number_grids(
            local[mask], shapely.get_coordinates(shapely.centroid(cells)), shapely.area(cells)
        )
        new_seq[mask] = order - 1 + task.next_seq
    seq[nodes] = new_seq
    statuses = _statuses(seq, w, rules, kinds)
    if result.violation:
        notes.append(
            f"{result.violation} household(s) outside the bounds "
            f"[{rules.min_households}, {rules.max_households}] could not be avoided "
            f"around the changed grids of {cid}"
            + (" (the whole community was re-solved)" if expanded else "")
            + "; change the bounds or merge this area with a neighbouring community"
        )
    gap = None
    if result.objective is not None and result.bound is not None:
        gap = (
            0.0
            if result.objective <= 0
            else max(0.0, (result.objective - result.bound) / result.objective)
        )
    plan = CommunityPlan(
        community_id=cid,
        labels=pd.Series(seq, index=units.index, name="grid_seq"),
        grid_status=dict(sorted(statuses.items())),
        solver_status=result.status,
        objective=result.objective,
        bound=result.bound,
        gap=gap,
        wall_time=time.perf_counter() - started,
        deterministic_time=det,
        notes=notes,
        bounds_unreachable=bool(result.violation) and expanded,
    )
    log.info(
        "community %s: re-solved %d units (%d grids freed), %d households moved",
        cid,
        len(nodes),
        len(np.unique(inherit[nodes][inherit[nodes] >= 0])),
        result.moved,
    )
    return _Outcome(
        plan=plan,
        region_units=len(nodes),
        region_grids=len(np.unique(inherit[nodes][inherit[nodes] >= 0])),
        expanded=expanded,
    )


# --------------------------------------------------------------------------- the plan


@dataclass
class RegenPlan:
    """What :func:`regenerate` produces.

    Attributes
    ----------
    grids, assignments
        The full new grid layer and household table (the contract of ``gridkit partition``).
    changes
        One row per household row whose grid changed (:data:`CHANGE_COLUMNS`).
    diff
        Every grid of either map with ``change`` = ``unchanged``, ``reshaped``,
        ``added`` or ``removed`` (EPSG:4326; removed grids keep their old polygon).
    report
        The partition report plus a ``regenerate`` section (the summary).
    summary
        Households unchanged %, grids kept / changed / added / retired, retired codes.
    codes
        Every code ever issued per community (what ``codes.json`` holds).
    plan
        The underlying :class:`gridkit.pipeline.GridPlan`.
    """

    grids: gpd.GeoDataFrame
    assignments: pd.DataFrame
    changes: pd.DataFrame
    diff: gpd.GeoDataFrame
    report: dict
    summary: dict
    codes: dict[str, list[str]]
    plan: GridPlan = field(repr=False)

    def write(
        self, out_dir: str | os.PathLike, *, map_html: bool = False, offline: bool = True
    ) -> dict[str, Path]:
        """Write the grid layer (as ``partition``), changes.csv, diff.geojson, summary.json
        and codes.json (and map.html with the changed grids highlighted).

        ``report.json`` holds the partition report plus a ``regenerate`` section (the
        figures of ``summary.json``).  The map needs no network unless ``offline=False``.
        """
        from gridkit.export import (
            PLAN_FILES,
            OutputSet,
            to_assignments_csv,
            to_geojson,
            to_report_json,
            write_plan_files,
        )

        names = {k: v for k, v in PLAN_FILES.items() if k != "map"}
        names.update({**REGEN_FILES, "map": PLAN_FILES["map"]})
        with OutputSet(out_dir, "regenerate", known=names.values()) as outputs:
            self.plan.report["regenerate"] = self.summary
            write_plan_files(self.plan, outputs, map_html=False)
            to_assignments_csv(self.changes, outputs.path(names["changes"]))
            to_geojson(self.diff, outputs.path(names["diff"]))
            to_report_json(self.summary, outputs.path(names["summary"]))
            codes = {
                "format": "gridkit-codes/1",
                "communities": {
                    cid: {
                        "issued": sorted(issued),
                        "retired": sorted(set(issued) - set(self._in_use.get(cid, []))),
                    }
                    for cid, issued in sorted(self.codes.items())
                },
            }
            to_report_json(codes, outputs.path(names["codes"]))
            if map_html:
                self._write_map(outputs.path(names["map"]), offline=offline)
            written = outputs.commit()
        return {kind: written[name] for kind, name in names.items() if name in written}

    @property
    def _in_use(self) -> dict[str, list[str]]:
        return self.grids.groupby("community_id")["grid_code"].agg(list).to_dict()

    def _write_map(self, path: Path, *, offline: bool = True) -> Path:
        from gridkit.maps import add_changes_layer, explore, save_map

        m = explore(self.grids, communities=self.plan.units.communities, offline=offline)
        return save_map(add_changes_layer(m, self.diff), path)


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


def _run(task: _Task) -> _Outcome:
    return _regen_community(task)


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
        no removed ones.
    """
    started = time.perf_counter()
    rules = GridRules(
        min_households=min_households,
        max_households=max_households,
        target_households=target_households,
        balance_weight=balance_weight,
    )
    prev = read_previous(previous)
    boundaries, households, units, _ = district_units(
        boundaries,
        households,
        rules=rules,
        merge_distance=merge_distance,
        barriers=barriers,
        compounds=compounds,
        keep_compounds=keep_compounds,
        compound_buildings_col=compound_buildings_col,
    )
    _warn_row_number_ids(prev, households)
    u = units.units
    old = prev.grids.to_crs(units.crs)
    points = shapely.points(u[["x", "y"]].to_numpy())
    unit_comm = u["community_id"].astype(str).to_numpy()
    where = _locate(points, old, unit_comm)
    old_codes = np.where(where >= 0, old["grid_code"].to_numpy()[np.maximum(where, 0)], "")
    same = (where >= 0) & (old["community_id"].to_numpy()[np.maximum(where, 0)] == unit_comm)
    inherit_all = np.where(same, [_seq(c) if c else -1 for c in old_codes], -1).astype(np.int64)
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
        (str(c), _seq(code)): str(st)
        for c, code, st in zip(old["community_id"], old["grid_code"], old["status"], strict=True)
    }
    tasks = []
    jobs = (os.cpu_count() or 1) if jobs is None else max(1, int(jobs))
    for cid, group in u.groupby("community_id", sort=False):
        cid = str(cid)
        idx = group.index.to_numpy()
        issued = prev.issued.get(cid, set())
        tasks.append(
            _Task(
                community_id=cid,
                units=group,
                inherit=inherit_all[idx],
                existing=existing_all[idx],
                prev_status={s: st for (c, s), st in prev_status.items() if c == cid},
                next_seq=max((_seq(c) for c in issued), default=0) + 1,
                rules=rules,
                time_limit=time_limit,
                seed=seed,
                workers=2,
            )
        )
    outcomes: list[_Outcome | None] = [None] * len(tasks)
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
    )
    row_hh = households["households"].to_numpy(dtype=np.int64)
    return _finish(plan, prev, units, old_codes, row_hh, row_existing, existing_all, done, started)


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


def _may_break(task: _Task) -> bool:
    """Cheap pre-check: could a previous grid of this community be out of bounds now?"""
    w = task.units["households"].to_numpy(dtype=np.int64)
    for s in np.unique(task.inherit):
        load = int(w[task.inherit == s].sum())
        if not (task.rules.min_households <= load <= task.rules.max_households):
            return True
    return False


def _finish(
    plan: GridPlan,
    prev: Previous,
    units,
    old_codes: np.ndarray,
    row_hh: np.ndarray,
    row_existing: np.ndarray,
    unit_existing: np.ndarray,
    outcomes: list[_Outcome],
    started: float,
) -> RegenPlan:
    """Changes, diff, summary and issued codes of a regenerated plan."""
    u = units.units
    membership = units.membership
    households = plan.assignments
    uid = membership["unit_id"]
    has_unit = uid.notna().to_numpy()
    row_old = np.full(len(membership), "", dtype=object)
    row_old[has_unit] = old_codes[uid[has_unit].to_numpy(dtype=np.int64)]
    new_codes = households["grid_code"].to_numpy(dtype=object)
    # unit-level new codes
    unit_new = np.full(len(u), "", dtype=object)
    unit_new[uid[has_unit].to_numpy(dtype=np.int64)] = new_codes[has_unit]
    hh_unit = u["households"].to_numpy(dtype=np.int64)
    hh_prev = np.where(unit_existing, hh_unit, 0)  # households that were there before
    row_old[~row_existing] = ""  # a new building had no grid
    changed = (row_old != new_codes) | (~row_existing & (new_codes != ""))
    change = np.where(
        ~row_existing,
        "new",
        np.where(row_old == "", "placed", np.where(new_codes == "", "unassigned", "moved")),
    ).astype(object)
    changes = pd.DataFrame(
        {
            "household_id": households["household_id"].to_numpy(),
            "row": households["row"].to_numpy(),
            "building_id": _row_buildings(units, has_unit, uid),
            "community_id": households["community_id"].to_numpy(),
            "households": pd.array(row_hh, dtype="Int64"),
            "old_grid_code": row_old,
            "new_grid_code": new_codes,
            "change": change,
        }
    )[changed]
    ids = prev.household_ids
    if ids is not None:  # households of the previous run that are gone (demolished)
        a = prev.assignments
        gone = a[~a["household_id"].isin(set(households["household_id"].astype(str)))]
        gone = gone[gone["grid_code"] != ""]
        removed = pd.DataFrame(
            {
                "household_id": gone["household_id"].to_numpy(),
                "row": pd.array([pd.NA] * len(gone), dtype="Int64"),
                "building_id": "",
                "community_id": gone["community_id"].to_numpy() if "community_id" in gone else "",
                "households": pd.array([pd.NA] * len(gone), dtype="Int64"),
                "old_grid_code": gone["grid_code"].to_numpy(),
                "new_grid_code": "",
                "change": "removed",
            }
        )
        changes = pd.concat([changes, removed], ignore_index=True) if len(removed) else changes
    changes = changes.reset_index(drop=True)[CHANGE_COLUMNS]
    # grid-level diff
    old = prev.grids
    old_by_code = old.set_index("grid_code")
    new = plan.grids
    rows = []
    before = set(old["grid_code"])
    after = set(new["grid_code"])
    for r in new.itertuples():
        code = r.grid_code
        members = unit_new == code
        if code in before:
            o = old_by_code.loc[code]
            located = old_codes == code
            moved_in = int(hh_prev[members & ~located].sum())
            moved_out = int(hh_prev[located & ~members].sum())
            same = moved_in == 0 and moved_out == 0
            geometry_changed = not shapely.equals_exact(
                shapely.normalize(o.geometry), shapely.normalize(r.geometry), tolerance=1e-6
            )
            rows.append(
                (code, r.community_id, "unchanged" if same else "reshaped", int(o["households"]),
                 int(r.households), int(o["buildings"]), int(r.buildings), moved_in, moved_out,
                 geometry_changed, r.geometry)
            )  # fmt: skip
        else:
            moved_in = int(hh_prev[members].sum())
            rows.append(
                (code, r.community_id, "added", 0, int(r.households), 0, int(r.buildings),
                 moved_in, 0, True, r.geometry)
            )  # fmt: skip
    for o in old[~old["grid_code"].isin(after)].itertuples():
        located = old_codes == o.grid_code
        rows.append(
            (o.grid_code, o.community_id, "removed", int(o.households), 0, int(o.buildings), 0,
             0, int(hh_prev[located].sum()), True, o.geometry)
        )  # fmt: skip
    cols = [
        "grid_code", "community_id", "change", "old_households", "households", "old_buildings",
        "buildings", "households_in", "households_out", "geometry_changed", "geometry",
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=cols).sort_values("grid_code", kind="stable")
    diff = gpd.GeoDataFrame(frame.reset_index(drop=True), geometry="geometry", crs=4326)
    # codes ever issued
    issued = {cid: set(codes) for cid, codes in prev.issued.items()}
    for cid, code in zip(new["community_id"], new["grid_code"], strict=True):
        issued.setdefault(str(cid), set()).add(str(code))
    kinds = Counter(diff["change"])
    base = row_existing & (row_old != "")
    base_hh = int(row_hh[base].sum())
    kept_hh = int(row_hh[base & (row_old == new_codes)].sum())
    retired = sorted(before - after)
    summary = {
        "previous": prev.source,
        "households": int(row_hh.sum()),
        "households_in_previous_grids": base_hh,
        "households_unchanged": kept_hh,
        "households_moved": base_hh - kept_hh,
        "households_unchanged_pct": pct_floor(kept_hh, base_hh),
        "households_new": int(row_hh[~row_existing & (new_codes != "")].sum()),
        "households_placed": int(row_hh[row_existing & ~base & (new_codes != "")].sum()),
        "rows_removed": int((changes["change"] == "removed").sum()),
        "grids_previous": len(before),
        "grids": len(after),
        "grids_kept": int(kinds.get("unchanged", 0)),
        "grids_changed": int(kinds.get("reshaped", 0)),
        "grids_added": int(kinds.get("added", 0)),
        "grids_retired": int(kinds.get("removed", 0)),
        "kept_grids_with_new_polygon": int(
            ((diff["change"] == "unchanged") & diff["geometry_changed"]).sum()
        ),
        "added_codes": sorted(after - before),
        "retired_codes": retired,
        "communities_re_solved": [
            {
                "community_id": o.plan.community_id,
                "units_re_solved": o.region_units,
                "previous_grids_freed": o.region_grids,
                "whole_community": o.expanded,
            }
            for o in outcomes
            if o.region_units
        ],
        "time_s": round(time.perf_counter() - started, 3),
    }
    report = dict(plan.report)
    report["regenerate"] = summary
    codes = {cid: sorted(c) for cid, c in issued.items()}
    log.info(
        "regenerated %d grids: %d kept, %d changed, %d added, %d retired; %.2f%% of households "
        "unchanged",
        len(after),
        summary["grids_kept"],
        summary["grids_changed"],
        summary["grids_added"],
        summary["grids_retired"],
        summary["households_unchanged_pct"],
    )
    return RegenPlan(
        grids=plan.grids,
        assignments=plan.assignments,
        changes=changes,
        diff=diff,
        report=report,
        summary=summary,
        codes=codes,
        plan=plan,
    )


def moved_households(old_codes, new_codes, households, *, relabel: bool = False) -> int:
    """Households whose grid changed between two plans.

    Parameters
    ----------
    old_codes, new_codes
        Grid code per unit (or household row) before and after; ``""`` for none.
        Units without an old code are new and never count.
    households
        Households per unit.
    relabel
        Count after the best one-to-one renaming of the new grids to old codes (a
        maximum-weight matching): what a from-scratch plan would move at best.

    Examples
    --------
    >>> moved_households(["a", "a", "b"], ["a", "c", "b"], [10, 5, 7])
    5
    >>> moved_households(["a", "a", "b"], ["x", "x", "y"], [10, 5, 7], relabel=True)
    0
    """
    old = np.asarray(old_codes, dtype=object)
    new = np.asarray(new_codes, dtype=object)
    w = np.asarray(households, dtype=np.int64)
    base = old != ""
    if not relabel:
        return int(w[base & (old != new)].sum())
    old_ids, oi = np.unique(old[base].astype(str), return_inverse=True)
    new_ids, ni = np.unique(new[base].astype(str), return_inverse=True)
    gain = np.zeros((len(new_ids), len(old_ids)))
    np.add.at(gain, (ni, oi), w[base])
    for k, code in enumerate(new_ids):
        if code == "":
            gain[k] = 0.0  # unassigned now: never kept
    rows, cols = linear_sum_assignment(gain, maximize=True)
    return int(w[base].sum() - gain[rows, cols].sum())


def _row_buildings(units, has_unit: np.ndarray, uid: pd.Series) -> np.ndarray:
    out = np.full(len(has_unit), "", dtype=object)
    b = units.units["building_id"].to_numpy(dtype=object)
    vals = b[uid[has_unit].to_numpy(dtype=np.int64)]
    out[has_unit] = [str(v) if v is not None and not pd.isna(v) else "" for v in vals]
    return out
