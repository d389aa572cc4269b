"""The roster resolved against the units: homes, pins, capacities, eligibility.

:func:`resolve_people` matches each person's home to a community, their pins to grids,
communities or buildings (by the scope of their role), their capacity (the roster cell or
the policy's), and checks the pins against capacities, communities and the units' caps.
Every problem is collected and raised once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.errors import GridkitWarning, format_ids
from gridkit.io import Problems, rows_text
from gridkit.staffing._tables import ModelUnits
from gridkit.staffing.eligibility import check_requirements
from gridkit.staffing.policy import StaffingPolicy
from gridkit.staffing.roster import MAX_BUILDINGS

__all__ = ["People", "resolve_people"]

#: The roster column holding a person's capacity, by what their role serves.
_CAPACITY = {"grid": "max_grids", "community": "max_communities", "building": MAX_BUILDINGS}


@dataclass
class People:
    """The roster, resolved against the grids.

    Attributes
    ----------
    frame
        The roster (:func:`~gridkit.staffing.read_workers`).
    home_comm
        Community index of each home; -1 when unknown or outside the district.
    home_geom
        Metric home point, else the home community's polygon.
    pinned
        Per person, the pinned units (indices into the full table of the role's scope).
    max_units, max_households
        Capacities (0: no households limit).
    eligible, reasons
        Whether the person meets what the role ``requires``, and why not.
    """

    frame: gpd.GeoDataFrame
    home_comm: np.ndarray
    home_geom: np.ndarray
    pinned: list[list[int]]
    max_units: np.ndarray
    max_households: np.ndarray
    eligible: np.ndarray
    reasons: list[str]


def resolve_people(
    workers: gpd.GeoDataFrame,
    tables: dict[str, ModelUnits],
    names: np.ndarray,
    policy: StaffingPolicy,
    metric_crs: Any,
) -> People:
    """Match homes and pins to communities, grids and buildings; check capacities and pins.

    Parameters
    ----------
    workers
        The roster.
    tables
        The full unit tables by scope: ``"grid"``, ``"community"`` and (when a role
        serves buildings) ``"building"``.
    names
        Community names, by community index.
    policy
        The staffing policy.
    metric_crs
        The CRS of the tables' geometries.
    """
    grids, communities = tables["grid"], tables["community"]
    source = str(workers.attrs.get("source") or "<workers>")
    problems = Problems(source, "workers")
    unknown_roles = sorted(set(workers["role"]) - set(policy.roles))
    if unknown_roles:
        problems.add(
            f"roles not in the staffing policy ({format_ids(unknown_roles)}): read the "
            "roster with the same policy (`read_workers(..., policy=...)`) or add the roles "
            "to the policy."
        )
        problems.raise_if_any()
    n = len(workers)
    rows = workers["row"].to_numpy()
    comm_index = {str(c): i for i, c in enumerate(communities.codes)}
    name_index: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        name_index.setdefault(str(name), []).append(i)
    grid_index = {str(c): i for i, c in enumerate(grids.codes)}
    building_index = (
        {str(c): i for i, c in enumerate(tables["building"].codes)} if "building" in tables
        else {}
    )

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
    capacity_columns = [c for c in _CAPACITY.values() if c in workers.columns]
    for i in range(n):
        rp = policy.roles[roles[i]]
        own = _CAPACITY[rp.unit]
        if any(not pd.isna(workers[c].iat[i]) for c in capacity_columns if c != own):
            wrong_cap.append(i)
        cap = workers[own].iat[i] if own in workers.columns else pd.NA
        max_units[i] = rp.max_units if pd.isna(cap) else int(cap)
        hh_cap = workers["max_households"].iat[i]
        max_households[i] = (rp.max_households or 0) if pd.isna(hh_cap) else int(hh_cap)
        codes = workers["pinned_grid"].iat[i]
        if codes is None or (not isinstance(codes, str) and pd.isna(codes)):
            continue
        for code in str(codes).split(";"):
            if rp.unit == "grid":
                unit = grid_index.get(code)
            elif rp.unit == "building":
                unit = building_index.get(code)
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
        community_roles = [r for r, p in policy.roles.items() if p.unit == "community"]
        building_roles = [r for r, p in policy.roles.items() if p.unit == "building"]
        problems.add(
            f"capacity in the wrong column at {rows_text(rows[wrong_cap])}: grid "
            f"roles take `max_grids`, community roles ({', '.join(community_roles)}) "
            "`max_communities`"
            + (f", building roles ({', '.join(building_roles)}) `max_buildings`"
               if building_roles else "")
            + "; move the value."
        )
    if bad_pin:
        items = [f"{c!r} at {rows_text(r)}" for c, r in bad_pin.items()]
        problems.add(
            f"pinned grid not in the grid layer ({format_ids(items)}): correct the code or "
            "clear the cell (building roles are pinned to building ids); after grids were "
            "redrawn, pass the earlier plan as `previous` (CLI `--previous`) to keep people "
            "near their old grids instead."
        )
    _check_pins(rows, roles, pinned, max_units, max_households, home_comm, tables, policy,
                problems)
    problems.raise_if_any()
    eligible, reasons = check_requirements(workers, policy)
    pinned_out = [i for i in range(n) if pinned[i] and not eligible[i]]
    if pinned_out:
        problems.add(
            f"people pinned to a unit but not eligible for their role at "
            f"{rows_text(rows[pinned_out])} ({reasons[pinned_out[0]]}): clear the pin or "
            "correct the roster."
        )
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
    return People(workers, home_comm, home_geom, pinned, max_units, max_households,
                  eligible, reasons)


def _check_pins(
    rows: np.ndarray,
    roles: np.ndarray,
    pinned: list[list[int]],
    max_units: np.ndarray,
    max_households: np.ndarray,
    home_comm: np.ndarray,
    tables: dict[str, ModelUnits],
    policy: StaffingPolicy,
    problems: Problems,
) -> None:
    """Pins must fit the person's capacity, one community, and the unit's cap."""
    per_unit: dict[tuple[str, int], list[int]] = {}
    too_many, too_big, spread, away = [], [], [], []
    for i, units in enumerate(pinned):
        if not units:
            continue
        rp = policy.roles[roles[i]]
        u = tables[rp.unit]
        if len(units) > max_units[i]:
            too_many.append(i)
        if max_households[i] and u.households[units].sum() > max_households[i]:
            too_big.append(i)
        if rp.same_community and len(set(u.community[units])) > 1:
            spread.append(i)
        if rp.home_community == "same" and (u.community[units] != home_comm[i]).any():
            away.append(i)
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
    if away:
        problems.add(
            f"pinned outside the home community at {rows_text(rows[away])}, but the role's "
            "policy has home_community = \"same\": pin units of the person's home community "
            "or correct the home."
        )
    for (role, t), members in per_unit.items():
        rp = policy.roles[role]
        u = tables[rp.unit]
        cap = rp.max_people(rp.required(u.households[[t]]))[0]
        if len(members) > cap:
            problems.add(
                f"{len(members)} people of role {role} are pinned to {rp.unit} "
                f"{u.codes[t]} at {rows_text(rows[members])}, but it takes at most "
                f"{cap}: unpin some of them or raise the policy's `max_per_{rp.unit}`."
            )
