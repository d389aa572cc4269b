"""The per-role inputs of the staffing model: the geometry half of the adapter.

:func:`prepare` turns the grid layer, the buildings, the roster, the policy and an earlier
plan into what the per-role models need (:mod:`gridkit.staffing._model`): grids,
communities and buildings as units in metres (:mod:`gridkit.staffing._tables`), the people
resolved against them (:mod:`gridkit.staffing._people`), the pairs an earlier plan may
keep, and for each role the units it applies to and its candidate pairs with their
distances and costs as a :class:`~gridkit.staffing._model.RoleProblem`.

A role with ``weak_grids`` depends on where other roles' people went, so
:func:`prepare` leaves it in ``pending``; :func:`weak_role_input` builds it once those
roles are solved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import local_metric_crs
from gridkit.errors import InputError, format_ids
from gridkit.staffing._model import DM, RoleProblem, RoleSolution
from gridkit.staffing._people import People, resolve_people
from gridkit.staffing._tables import ModelUnits, building_table, community_table, grid_table
from gridkit.staffing.eligibility import accepts_grid_type, grid_types, rank_weak_grids
from gridkit.staffing.plan import read_previous_roster
from gridkit.staffing.policy import RolePolicy, StaffingPolicy

__all__ = [
    "ModelUnits",
    "People",
    "RoleInput",
    "StaffingContext",
    "prepare",
    "weak_role_input",
]

_KEEP_SHARE = 0.5  # a new grid is "in place" for a person if this share lies in their old grid


@dataclass
class RoleInput:
    """One role's model input: its people, units, candidate pairs and their problem."""

    role: str
    policy: RolePolicy
    units: ModelUnits
    people: np.ndarray  # row indices into the roster (available, eligible people of the role)
    distance: np.ndarray  # (P,) metres
    cross: np.ndarray  # (P,) bool
    problem: RoleProblem
    pruned: bool


@dataclass
class StaffingContext:
    """Everything :func:`prepare` found: the layer, its units, the people, the roles' inputs.

    ``selection`` holds, per role limited to some units, what it applies to (for the
    report) and ``applies`` the codes of those units; ``pending`` the ``weak_grids``
    roles not built yet.
    """

    layer: gpd.GeoDataFrame
    grids: ModelUnits
    communities: ModelUnits
    community_names: np.ndarray
    people: People
    policy: StaffingPolicy
    roles: list[RoleInput]
    previous: bool
    buildings: ModelUnits | None = None
    grid_type: np.ndarray | None = None
    keep: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    had: set[tuple[str, str]] = field(default_factory=set)
    pending: list[str] = field(default_factory=list)
    selection: dict[str, dict[str, Any]] = field(default_factory=dict)
    applies: dict[str, list[str]] = field(default_factory=dict)

    def table(self, rp: RolePolicy) -> ModelUnits:
        """The full unit table a role's people serve."""
        if rp.unit == "building":
            assert self.buildings is not None  # prepare() reads them for building roles
            return self.buildings
        return self.grids if rp.unit == "grid" else self.communities


def _keep_pairs(
    previous: pd.DataFrame | None,
    old_grids: gpd.GeoDataFrame | None,
    tables: dict[str, ModelUnits],
    metric_crs: Any,
    policy: StaffingPolicy,
) -> tuple[dict[tuple[str, str], set[int]], set[tuple[str, str]]]:
    """Units each previous (worker, role) may keep, and who held any assignment."""
    keep: dict[tuple[str, str], set[int]] = {}
    had: set[tuple[str, str]] = set()
    if previous is None:
        return keep, had
    grids = tables["grid"]
    comm_index = {str(c): i for i, c in enumerate(tables["community"].codes)}
    grid_index = {str(c): i for i, c in enumerate(grids.codes)}
    building_index = (
        {str(c): i for i, c in enumerate(tables["building"].codes)} if "building" in tables
        else {}
    )
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
        unit = policy.roles[role].unit
        if unit == "grid":
            units |= in_place(code)
        elif unit == "building":
            building = getattr(rec, "building_id", None)
            if building is not None and not pd.isna(building) and str(building) in building_index:
                units.add(building_index[str(building)])
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
    *,
    buildings: gpd.GeoDataFrame | None = None,
) -> StaffingContext:
    """Everything the per-role models need (the geometry half of the adapter).

    ``buildings`` (:func:`~gridkit.staffing.buildings.read_staffing_buildings`) is needed
    when a role serves buildings.
    """
    metric_crs = local_metric_crs(layer)
    metric = layer.geometry.to_crs(metric_crs).to_numpy()
    communities, comm_of_grid = community_table(layer, metric)
    grids = grid_table(layer, metric, comm_of_grid)
    tables = {"grid": grids, "community": communities}
    building_roles = [r for r, rp in policy.roles.items() if rp.unit == "building"]
    if building_roles and buildings is None:
        msg = (
            f"role{'s' if len(building_roles) > 1 else ''} {', '.join(building_roles)} of the "
            "policy serve buildings, but no buildings were given: pass the plan's "
            "buildings.geojson (`buildings=...`, CLI `--buildings PATH`), or the grids as "
            "the `gridkit partition` folder that holds it."
        )
        raise InputError(msg)
    if buildings is not None and building_roles:
        tables["building"] = building_table(buildings, grids, metric_crs)
    names = (
        layer.drop_duplicates("community_id").set_index("community_id")["community_name"]
        .reindex(communities.codes).astype(str).to_numpy(dtype=object)
    )
    people = resolve_people(workers, tables, names, policy, metric_crs)
    prev_roster, prev_grids = read_previous_roster(previous)
    keep, had = _keep_pairs(prev_roster, prev_grids, tables, metric_crs, policy)
    ctx = StaffingContext(
        layer, grids, communities, names, people, policy, [], previous is not None,
        buildings=tables.get("building"), grid_type=grid_types(layer), keep=keep, had=had,
    )
    for role, rp in policy.roles.items():
        if rp.weak_grids:
            ctx.pending.append(role)
            continue
        ri = _build(ctx, role, _selected_grids(ctx, rp))
        if ri is not None:
            ctx.roles.append(ri)
    return ctx


def weak_role_input(ctx: StaffingContext, role: str, solutions: dict[str, RoleSolution]
                    ) -> RoleInput | None:
    """The input of a ``weak_grids`` role, from where its ``weak_by`` roles' people went.

    The grids of the role's ``grid_types`` are ranked by
    :func:`~gridkit.staffing.eligibility.rank_weak_grids` on the people of the
    ``weak_by`` roles in ``solutions``; the ``weak_grids`` first ones are the role's.
    """
    rp = ctx.policy.roles[role]
    people = np.zeros(len(ctx.grids), dtype=np.int64)
    for ri in ctx.roles:
        if ri.role in rp.weak_by and ri.role in solutions:
            chosen = solutions[ri.role].chosen
            np.add.at(people, ri.units.grid[ri.problem.pair_t[chosen]], 1)
    typed = _typed_grids(ctx, rp)
    ranking = rank_weak_grids(ctx.grids.codes[typed], ctx.grids.households[typed], people[typed])
    top = ranking.head(rp.weak_grids)
    chosen_grids = np.zeros(len(ctx.grids), dtype=bool)
    chosen_grids[typed[np.searchsorted(ctx.grids.codes[typed].astype(str),
                                       top["grid_code"].to_numpy(dtype=str))]] = True
    ctx.selection[role] = {
        "rule": f"the {rp.weak_grids} weakest grids: most households per assigned "
        f"{'/'.join(rp.weak_by)} (none at all first), then more households, then grid code",
        "weak_grids": top.to_dict(orient="records"),
    }
    return _build(ctx, role, chosen_grids)


def _typed_grids(ctx: StaffingContext, rp: RolePolicy) -> np.ndarray:
    """Indices (sorted by grid code) of the grids whose type the role accepts."""
    ok = np.ones(len(ctx.grids), dtype=bool)
    if rp.grid_types:
        ok = accepts_grid_type(ctx.grid_type, rp.grid_types)
    idx = np.flatnonzero(ok)
    return idx[np.argsort(ctx.grids.codes[idx].astype(str), kind="stable")]


def _selected_grids(ctx: StaffingContext, rp: RolePolicy) -> np.ndarray | None:
    """The grids a (not weak-grids) role applies to; ``None``: every grid."""
    if rp.unit not in ("grid", "building") or not (rp.grids or rp.grid_types):
        return None
    ok = np.zeros(len(ctx.grids), dtype=bool)
    ok[_typed_grids(ctx, rp)] = True
    rules = []
    if rp.grid_types:
        rules.append(f"grid_type in {', '.join(rp.grid_types)}")
    if rp.grids:
        index = {str(c): i for i, c in enumerate(ctx.grids.codes)}
        missing = [c for c in rp.grids if c not in index]
        if missing:
            msg = (
                f"staffing policy '{ctx.policy.source}': [roles.{rp.role}] grids lists codes "
                f"not in the grid layer ({format_ids(missing)}): correct them (grid codes "
                f"look like {ctx.grids.codes[0]!r})."
            )
            raise InputError(msg)
        listed = np.zeros(len(ctx.grids), dtype=bool)
        listed[[index[c] for c in rp.grids]] = True
        ok &= listed
        rules.append(f"the listed grids {', '.join(rp.grids)}")
    ctx.selection[rp.role] = {"rule": "; ".join(rules)}
    return ok


def _build(ctx: StaffingContext, role: str, chosen_grids: np.ndarray | None
           ) -> RoleInput | None:
    """The role's input over the units it applies to (and the units its people are pinned to)."""
    rp = ctx.policy.roles[role]
    table = ctx.table(rp)
    frame = ctx.people.frame
    ids = frame["worker_id"].to_numpy(dtype=object)
    roles_col = frame["role"].to_numpy(dtype=object)
    available = ~frame["unavailable"].to_numpy(dtype=bool) & ctx.people.eligible
    members = np.flatnonzero((roles_col == role) & available)
    members = members[np.argsort(ids[members].astype(str), kind="stable")]
    applies = np.ones(len(table), dtype=bool)
    if chosen_grids is not None:
        applies &= chosen_grids[table.grid] if rp.unit == "building" else chosen_grids
    if rp.min_households is not None:
        applies &= table.households >= rp.min_households
        ctx.selection.setdefault(role, {})["min_households"] = rp.min_households
    if not applies.all():
        ctx.selection.setdefault(role, {})["units"] = int(applies.sum())
        ctx.selection[role]["of"] = len(table)
    for w in members:
        applies[ctx.people.pinned[w]] = True
    which = np.flatnonzero(applies)
    u = table.subset(which)
    if len(u) < len(table):
        ctx.applies[role] = [str(c) for c in u.codes]
    required = rp.required(u.households)
    if len(members) == 0 and not required.any():
        return None
    return _role_input(role, rp, u, members, required, ctx)


def _role_input(
    role: str,
    rp: RolePolicy,
    u: ModelUnits,
    members: np.ndarray,
    required: np.ndarray,
    ctx: StaffingContext,
) -> RoleInput:
    """The arrays of one role: candidate pairs, their distances and costs, the capacities."""
    people, policy = ctx.people, ctx.policy
    ids = people.frame["worker_id"].to_numpy(dtype=object)
    n_w, n_t = len(members), len(u.codes)
    dist = (
        shapely.distance(people.home_geom[members][:, None], u.geoms[None, :])
        if n_w and n_t
        else np.zeros((n_w, n_t))
    )
    dist = np.round(dist, 1)
    allowed = np.ones((n_w, n_t), dtype=bool)
    if rp.home_community == "same":
        allowed = people.home_comm[members][:, None] == u.community[None, :]
    cand = allowed.copy()
    pruned = n_w * n_t > policy.max_pairs
    if pruned:
        k = policy.candidates
        ranked = np.where(allowed, dist, np.inf)
        cand[:] = False
        rows = np.arange(n_w)[:, None]
        cand[rows, np.argsort(ranked, axis=1, kind="stable")[:, : min(k, n_t)]] = True
        cols = np.arange(n_t)[None, :]
        cand[np.argsort(ranked, axis=0, kind="stable")[: min(k, n_w), :], cols] = True
        cand &= allowed
    local = {int(g): t for t, g in enumerate(u.index)}
    keep_mask = np.zeros((n_w, n_t), dtype=bool)
    pin_mask = np.zeros((n_w, n_t), dtype=bool)
    for j, w in enumerate(members):
        for g in ctx.keep.get((str(ids[w]), role), ()):
            if g in local:
                keep_mask[j, local[g]] = True
        for g in people.pinned[w]:
            pin_mask[j, local[g]] = True
    keep_mask &= allowed
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
        had_previous=np.array([(str(ids[w]), role) in ctx.had for w in members], dtype=bool),
        same_group=rp.same_community,
        assign_all=rp.assign_all,
        hire_max_units=rp.max_units,
        balance_weight=round(DM * policy.balance_m_per_household),
        idle_cost=round(DM * policy.idle_m),
    )
    return RoleInput(role, rp, u, members, distance, cross, problem, pruned)
