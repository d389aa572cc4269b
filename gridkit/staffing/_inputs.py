"""The per-role inputs of the staffing model: the geometry half of the adapter.

:func:`prepare` turns the grid layer, the roster, the policy and an earlier plan into
what the per-role models need (:mod:`gridkit.staffing._model`): grids and communities as
units in metres, the people resolved against them (home community, pins, capacities),
the pairs an earlier plan may keep, and for each role its candidate pairs with their
distances and costs as a :class:`~gridkit.staffing._model.RoleProblem`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.contracts import ROLES
from gridkit.crs import local_metric_crs
from gridkit.errors import GridkitWarning, format_ids
from gridkit.io import Problems, rows_text
from gridkit.staffing._model import DM, RoleProblem
from gridkit.staffing.plan import read_previous_roster
from gridkit.staffing.policy import RolePolicy, StaffingPolicy
from gridkit.units import dissolve_cells

__all__ = ["ModelUnits", "People", "RoleInput", "StaffingContext", "prepare"]

_KEEP_SHARE = 0.5  # a new grid is "in place" for a person if this share lies in their old grid


@dataclass
class ModelUnits:
    """Grids or communities as the model's units (metric CRS)."""

    scope: str
    codes: np.ndarray
    community: np.ndarray  # community index of each unit
    households: np.ndarray
    geoms: np.ndarray


@dataclass
class People:
    """The roster, resolved against the grids."""

    frame: gpd.GeoDataFrame
    home_comm: np.ndarray  # community index, -1 when unknown / outside the district
    home_geom: np.ndarray  # metric point, else the home community polygon
    pinned: list[list[int]]  # unit indices (grids or communities, by the role's scope)
    max_units: np.ndarray
    max_households: np.ndarray  # 0: no limit


@dataclass
class RoleInput:
    """One role's model input: its people, units, candidate pairs and their problem."""

    role: str
    policy: RolePolicy
    units: ModelUnits
    people: np.ndarray  # row indices into the roster (available people of the role)
    distance: np.ndarray  # (P,) metres
    cross: np.ndarray  # (P,) bool
    problem: RoleProblem
    pruned: bool


@dataclass
class StaffingContext:
    """Everything :func:`prepare` found: the layer, its units, the people, the roles' inputs."""

    layer: gpd.GeoDataFrame
    grids: ModelUnits
    communities: ModelUnits
    community_names: np.ndarray
    people: People
    policy: StaffingPolicy
    roles: list[RoleInput]
    previous: bool


def _community_units(layer: gpd.GeoDataFrame, metric: np.ndarray) -> tuple[ModelUnits, np.ndarray]:
    """Communities as units (their grids dissolved), and the community index of each grid."""
    ids, geoms = dissolve_cells(metric, layer["community_id"].to_numpy(dtype=str))
    comm_of_grid = np.searchsorted(ids, layer["community_id"].to_numpy(dtype=str))
    hh = np.bincount(comm_of_grid, weights=layer["households"], minlength=len(ids))
    return (
        ModelUnits(
            "community", ids.astype(object), np.arange(len(ids)), hh.astype(np.int64), geoms
        ),
        comm_of_grid,
    )


def _resolve_people(
    workers: gpd.GeoDataFrame,
    grids: ModelUnits,
    communities: ModelUnits,
    names: np.ndarray,
    policy: StaffingPolicy,
    metric_crs: Any,
) -> People:
    """Match homes and pins to communities and grids; check capacities; collect problems."""
    source = str(workers.attrs.get("source") or "<workers>")
    problems = Problems(source, "workers")
    n = len(workers)
    rows = workers["row"].to_numpy()
    comm_index = {str(c): i for i, c in enumerate(communities.codes)}
    name_index: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        name_index.setdefault(str(name), []).append(i)
    grid_index = {str(c): i for i, c in enumerate(grids.codes)}

    metric = workers.geometry.to_crs(metric_crs).to_numpy()
    has_point = ~shapely.is_missing(metric)
    point_comm = np.full(n, -1, dtype=np.int64)
    if has_point.any():
        tree = shapely.STRtree(grids.geoms)
        where = tree.query(metric[has_point], predicate="intersects")
        first = pd.Series(where[1]).groupby(where[0]).min()
        idx = np.flatnonzero(has_point)
        point_comm[idx[first.index.to_numpy()]] = grids.community[first.to_numpy()]

    declared = np.full(n, -1, dtype=np.int64)
    unknown: dict[str, list[int]] = {}
    ambiguous: dict[str, list[int]] = {}
    for i, text in enumerate(workers["home_community"]):
        if text is None or (not isinstance(text, str) and pd.isna(text)):
            continue
        text = str(text)
        if text in comm_index:
            declared[i] = comm_index[text]
        elif len(name_index.get(text, [])) == 1:
            declared[i] = name_index[text][0]
        elif text in name_index:
            ambiguous.setdefault(text, []).append(int(rows[i]))
        elif has_point[i]:
            declared[i] = -2  # outside the district: use the point
        else:
            unknown.setdefault(text, []).append(int(rows[i]))
    if unknown:
        items = [f"{t!r} at {rows_text(r)}" for t, r in unknown.items()]
        problems.add(
            f"home community not in the grid layer and no home point ({format_ids(items)}): "
            f"write a community id or name of the grids (e.g. {communities.codes[0]!r} or "
            f"{names[0]!r}), or give the home's lon/lat."
        )
    if ambiguous:
        items = [f"{t!r} at {rows_text(r)}" for t, r in ambiguous.items()]
        problems.add(
            f"home community name matches several communities ({format_ids(items)}): write "
            "the community id instead."
        )
    mismatch = (declared >= 0) & (point_comm >= 0) & (declared != point_comm)
    home_comm = np.where(declared >= 0, declared, point_comm)

    roles = workers["role"].to_numpy(dtype=object)
    max_units = np.zeros(n, dtype=np.int64)
    max_households = np.zeros(n, dtype=np.int64)
    pinned: list[list[int]] = [[] for _ in range(n)]
    wrong_cap: list[int] = []
    bad_pin: dict[str, list[int]] = {}
    for i in range(n):
        rp = policy.roles[roles[i]]
        own = "max_grids" if rp.scope == "grid" else "max_communities"
        other = "max_communities" if rp.scope == "grid" else "max_grids"
        if not pd.isna(workers[other].iat[i]):
            wrong_cap.append(i)
        cap = workers[own].iat[i]
        max_units[i] = rp.max_units if pd.isna(cap) else int(cap)
        hh_cap = workers["max_households"].iat[i]
        max_households[i] = (rp.max_households or 0) if pd.isna(hh_cap) else int(hh_cap)
        codes = workers["pinned_grid"].iat[i]
        if codes is None or (not isinstance(codes, str) and pd.isna(codes)):
            continue
        for code in str(codes).split(";"):
            if rp.scope == "grid":
                unit = grid_index.get(code)
            elif code in comm_index:
                unit = comm_index[code]
            elif code in grid_index:
                unit = int(grids.community[grid_index[code]])
            else:
                unit = name_index[code][0] if len(name_index.get(code, [])) == 1 else None
            if unit is None:
                bad_pin.setdefault(code, []).append(int(rows[i]))
            elif unit not in pinned[i]:
                pinned[i].append(unit)
    if wrong_cap:
        problems.add(
            f"capacity in the wrong column at {rows_text(rows[wrong_cap])}: grid "
            "roles take `max_grids`, community roles (mediator, legal_adviser) "
            "`max_communities`; move the value."
        )
    if bad_pin:
        items = [f"{c!r} at {rows_text(r)}" for c, r in bad_pin.items()]
        problems.add(
            f"pinned grid not in the grid layer ({format_ids(items)}): correct the code or "
            "clear the cell; after grids were redrawn, pass the earlier plan as `previous` "
            "(CLI `--previous`) to keep people near their old grids instead."
        )
    _check_pins(rows, roles, pinned, max_units, max_households, grids, communities, policy,
                problems)
    problems.raise_if_any()
    if mismatch.any():
        warnings.warn(
            f"workers '{source}': the home point lies in another community than the declared "
            f"home community at {rows_text(rows[mismatch])}; the declared community "
            "counts for the cross-community penalty, the point for distances. Correct one of "
            "them if this is a mistake.",
            GridkitWarning,
            stacklevel=3,
        )
    home_geom = metric.copy()
    no_point = ~has_point
    home_geom[no_point] = communities.geoms[home_comm[no_point]]
    return People(workers, home_comm, home_geom, pinned, max_units, max_households)


def _check_pins(
    rows: np.ndarray,
    roles: np.ndarray,
    pinned: list[list[int]],
    max_units: np.ndarray,
    max_households: np.ndarray,
    grids: ModelUnits,
    communities: ModelUnits,
    policy: StaffingPolicy,
    problems: Problems,
) -> None:
    """Pins must fit the person's capacity, one community, and the unit's cap."""
    per_unit: dict[tuple[str, int], list[int]] = {}
    too_many, too_big, spread = [], [], []
    for i, units in enumerate(pinned):
        if not units:
            continue
        rp = policy.roles[roles[i]]
        u = grids if rp.scope == "grid" else communities
        if len(units) > max_units[i]:
            too_many.append(i)
        if max_households[i] and u.households[units].sum() > max_households[i]:
            too_big.append(i)
        if rp.same_community and len(set(u.community[units])) > 1:
            spread.append(i)
        for t in units:
            per_unit.setdefault((roles[i], t), []).append(i)
    if too_many:
        problems.add(
            f"more pinned grids than the person's capacity at {rows_text(rows[too_many])}"
            ": pin fewer grids or raise `max_grids`/`max_communities`."
        )
    if too_big:
        problems.add(
            f"pinned grids hold more households than `max_households` at "
            f"{rows_text(rows[too_big])}: pin fewer grids or raise the capacity."
        )
    if spread:
        problems.add(
            f"pinned grids lie in several communities at {rows_text(rows[spread])}, "
            "but the role's policy has same_community = true: pin grids of one community."
        )
    for (role, t), members in per_unit.items():
        rp = policy.roles[role]
        u = grids if rp.scope == "grid" else communities
        cap = rp.max_people(rp.required(u.households[[t]]))[0]
        if len(members) > cap:
            problems.add(
                f"{len(members)} people of role {role} are pinned to {rp.scope} "
                f"{u.codes[t]} at {rows_text(rows[members])}, but it takes at most "
                f"{cap}: unpin some of them or raise the policy's `max_per_{rp.scope}`."
            )


def _keep_pairs(
    previous: pd.DataFrame | None,
    old_grids: gpd.GeoDataFrame | None,
    ctx_units: dict[str, ModelUnits],
    metric_crs: Any,
    policy: StaffingPolicy,
) -> tuple[dict[tuple[str, str], set[int]], set[tuple[str, str]]]:
    """Units each previous (worker, role) may keep, and who held any assignment."""
    keep: dict[tuple[str, str], set[int]] = {}
    had: set[tuple[str, str]] = set()
    if previous is None:
        return keep, had
    grids = ctx_units["grid"]
    comm_index = {str(c): i for i, c in enumerate(ctx_units["community"].codes)}
    grid_index = {str(c): i for i, c in enumerate(grids.codes)}
    old_geom: dict[str, Any] = {}
    if old_grids is not None and len(old_grids):
        old_metric = old_grids.to_crs(metric_crs)
        old_geom = dict(zip(old_metric["grid_code"].astype(str), old_metric.geometry, strict=True))
    tree = shapely.STRtree(grids.geoms)
    areas = shapely.area(grids.geoms)
    overlap_cache: dict[str, set[int]] = {}

    def in_place(code: str) -> set[int]:
        if code not in overlap_cache:
            if code in old_geom:
                geom = old_geom[code]
                cand = tree.query(geom, predicate="intersects")
                inter = shapely.area(shapely.intersection(grids.geoms[cand], geom))
                overlap_cache[code] = {
                    int(t) for t, a in zip(cand, inter, strict=True)
                    if a >= _KEEP_SHARE * areas[t] - 1e-6
                }
            else:
                overlap_cache[code] = {grid_index[code]} if code in grid_index else set()
        return overlap_cache[code]

    for rec in previous.itertuples(index=False):
        role, worker = str(rec.role), str(rec.worker_id)
        if role not in policy.roles:
            continue
        had.add((worker, role))
        units = keep.setdefault((worker, role), set())
        code = "" if pd.isna(rec.grid_code) else str(rec.grid_code)
        if policy.roles[role].scope == "grid":
            units |= in_place(code)
        else:
            comm = getattr(rec, "community_id", None)
            comm = None if comm is None or pd.isna(comm) else str(comm)
            if comm in comm_index:
                units.add(comm_index[comm])
            elif code in grid_index:
                units.add(int(grids.community[grid_index[code]]))
    return keep, had


def prepare(
    layer: gpd.GeoDataFrame,
    workers: gpd.GeoDataFrame,
    policy: StaffingPolicy,
    previous: Any = None,
) -> StaffingContext:
    """Everything the per-role models need (the geometry half of the adapter)."""
    metric_crs = local_metric_crs(layer)
    metric = layer.geometry.to_crs(metric_crs).to_numpy()
    communities, comm_of_grid = _community_units(layer, metric)
    grids = ModelUnits(
        "grid", layer["grid_code"].to_numpy(dtype=object), comm_of_grid,
        layer["households"].to_numpy(dtype=np.int64), metric,
    )
    names = (
        layer.drop_duplicates("community_id").set_index("community_id")["community_name"]
        .reindex(communities.codes).astype(str).to_numpy(dtype=object)
    )
    people = _resolve_people(workers, grids, communities, names, policy, metric_crs)
    prev_roster, prev_grids = read_previous_roster(previous)
    units = {"grid": grids, "community": communities}
    keep, had = _keep_pairs(prev_roster, prev_grids, units, metric_crs, policy)

    roles_col = workers["role"].to_numpy(dtype=object)
    ids = workers["worker_id"].to_numpy(dtype=object)
    available = ~workers["unavailable"].to_numpy(dtype=bool)
    inputs: list[RoleInput] = []
    for role in ROLES:
        rp = policy.roles[role]
        u = units[rp.scope]
        members = np.flatnonzero((roles_col == role) & available)
        members = members[np.argsort(ids[members].astype(str), kind="stable")]
        required = rp.required(u.households)
        if len(members) == 0 and not required.any():
            continue
        inputs.append(_role_input(role, rp, u, members, required, people, keep, had, policy))
    return StaffingContext(layer, grids, communities, names, people, policy, inputs,
                    previous is not None)


def _role_input(
    role: str,
    rp: RolePolicy,
    u: ModelUnits,
    members: np.ndarray,
    required: np.ndarray,
    people: People,
    keep: dict[tuple[str, str], set[int]],
    had: set[tuple[str, str]],
    policy: StaffingPolicy,
) -> RoleInput:
    """The arrays of one role: candidate pairs, their distances and costs, the capacities."""
    ids = people.frame["worker_id"].to_numpy(dtype=object)
    n_w, n_t = len(members), len(u.codes)
    dist = (
        shapely.distance(people.home_geom[members][:, None], u.geoms[None, :])
        if n_w
        else np.zeros((0, n_t))
    )
    dist = np.round(dist, 1)
    cand = np.ones((n_w, n_t), dtype=bool)
    pruned = n_w * n_t > policy.max_pairs
    if pruned:
        k = policy.candidates
        cand[:] = False
        rows = np.arange(n_w)[:, None]
        cand[rows, np.argsort(dist, axis=1, kind="stable")[:, : min(k, n_t)]] = True
        cols = np.arange(n_t)[None, :]
        cand[np.argsort(dist, axis=0, kind="stable")[: min(k, n_w), :], cols] = True
    keep_mask = np.zeros((n_w, n_t), dtype=bool)
    pin_mask = np.zeros((n_w, n_t), dtype=bool)
    for j, w in enumerate(members):
        for t in keep.get((str(ids[w]), role), ()):
            keep_mask[j, t] = True
        for t in people.pinned[w]:
            pin_mask[j, t] = True
    cand |= keep_mask | pin_mask
    pair_w, pair_t = np.nonzero(cand)
    home = people.home_comm[members][pair_w]
    cross = home != u.community[pair_t]
    distance = dist[pair_w, pair_t]
    cost = np.round(DM * (distance + policy.cross_community_m * cross)).astype(np.int64)
    problem = RoleProblem(
        households=u.households,
        group=u.community,
        required=required,
        max_people=rp.max_people(required),
        max_units=people.max_units[members],
        max_households=people.max_households[members],
        pair_w=pair_w,
        pair_t=pair_t,
        pair_cost=cost,
        pair_pinned=pin_mask[pair_w, pair_t],
        pair_keep=keep_mask[pair_w, pair_t],
        had_previous=np.array([(str(ids[w]), role) in had for w in members], dtype=bool),
        same_group=rp.same_community,
        assign_all=rp.assign_all,
        hire_max_units=rp.max_units,
        balance_weight=round(DM * policy.balance_m_per_household),
        idle_cost=round(DM * policy.idle_m),
    )
    return RoleInput(role, rp, u, members, distance, cross, problem, pruned)
