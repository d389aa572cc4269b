"""A synthetic roster for a grid layer, the sample district's demo: :func:`make_roster`.

Homes are random points where households live, names are random Chinese names and phone
numbers start with an unallocated prefix: nothing describes real people.  Write the
roster with :func:`gridkit.staffing.roster.write_workers`.  The roles a policy defines
(社区负责人, 楼栋长, 第一书记, 包联单位, ...) get people too, drawn after those of the
built-in roles, so the roster of the default policy does not change.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.contracts import ROLE_LABELS, ROLES
from gridkit.crs import local_metric_crs
from gridkit.staffing.buildings import BuildingsLike, buildings_beside, read_staffing_buildings
from gridkit.staffing.eligibility import grid_types, normalise_grid_type
from gridkit.staffing.grids import GridsLike, read_staffing_grids
from gridkit.staffing.policy import RolePolicy, StaffingPolicy, load_policy

__all__ = ["make_roster"]

logger = logging.getLogger(__name__)

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文辉斌宇浩凯琳晨雪"
# invented units for roles of scope "unit" (包联单位): no real organisation is meant
_UNITS = ("区财政局", "区住建局", "区卫健委", "区教育局", "区民政局", "区人社局", "区城管局",
          "区市场监管局", "区税务局", "区供电公司", "区自来水公司", "区人民医院", "区第一中学",
          "区农商银行", "区燃气公司", "区文旅局")
# share of the people of roles not requiring a yes/no attribute who have it anyway
_ATTRIBUTE_SHARE = 0.3


def make_roster(
    grids: GridsLike,
    *,
    seed: int = 0,
    policy: str | os.PathLike[str] | Mapping[str, Any] | StaffingPolicy | None = None,
    spare: float = 0.1,
    unavailable: float = 0.03,
    pinned: float = 0.02,
    households_per_extra: int = 400,
    buildings: BuildingsLike | None = None,
) -> gpd.GeoDataFrame:
    """Invent a roster that staffs ``grids`` under ``policy``, deterministically for a seed.

    Homes are random points in grids drawn in proportion to their households, so people
    live where people live; about 10% of people give only their home community and 15%
    only their home point.  Names are random two- or three-character Chinese names and
    phone numbers start with the unallocated prefix 100: nothing describes real people.

    Parameters
    ----------
    grids
        A grid layer (GeoDataFrame, ``grids.geojson`` or a ``gridkit partition`` output
        folder) with ``grid_code``, ``community_id``, ``households`` and polygons.
    seed
        Seed of :func:`numpy.random.default_rng`.
    policy
        The staffing policy the roster must satisfy (see :func:`load_policy`).
    spare
        Extra people per role beyond the minimum that covers every requirement.
    unavailable
        Further people per role marked ``unavailable`` (on leave): they do not count
        towards the supply.
    pinned
        Share of full-time grid workers pinned to the grid they live in (distinct grids).
    households_per_extra
        For ``assign_all`` roles (part-time workers, volunteers): one extra person per
        this many households of the district.
    buildings
        The buildings of the plan, for building roles (楼栋长): default the
        ``buildings.geojson`` beside the grids (see :func:`assign_workers`).

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, one row per person, as a local roster would look: ``worker_id``
        (``W0001``…), ``name``, ``role`` (Chinese, e.g. 专职网格员), ``home_community``,
        ``phone``, ``max_grids`` (a few officers have 2), ``pinned_grid``,
        ``unavailable`` (是/否) and the home ``geometry`` (None for the community-only
        people).  Write it with :func:`write_workers`.  With a policy of its own roles,
        their people follow (role: the role's ``label``): enough for the units each
        role applies to plus ``spare``; building heads live in the buildings, people of
        ``home_community = "same"`` roles in the communities that need them, units (包联)
        are invented organisations (区财政局, ...) with an address point; and one column
        per attribute a role ``requires`` (是/否, or the text asked for), which the
        people of that role meet and about 30% of the others (yes/no columns) have.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> grids = gpd.GeoDataFrame({"grid_code": ["C1-001", "C1-002"], "community_id": "C1",
    ...                           "households": [500, 700]},
    ...                          geometry=[box(115.0, 30.2, 115.005, 30.205),
    ...                                    box(115.005, 30.2, 115.01, 30.205)], crs=4326)
    >>> roster = make_roster(grids, seed=1)
    >>> sorted(set(roster["role"])) == sorted(ROLE_LABELS.values())
    True
    """
    layer = read_staffing_grids(grids)
    rules = load_policy(policy)
    rng = np.random.default_rng(seed)
    metric_crs = local_metric_crs(layer)
    metric = layer.to_crs(metric_crs)
    households = layer["households"].to_numpy(dtype=np.int64)
    community = layer["community_id"].to_numpy(dtype=object)
    communities = pd.unique(community)
    comm_households = pd.Series(households).groupby(community).sum().reindex(communities)

    counts: dict[str, tuple[int, int]] = {}
    for role, rp in rules.roles.items():
        if role not in ROLES:
            continue  # the policy's own roles: drawn after the built-in ones
        if rp.scope == "grid":
            need = rp.required(households)
            if rp.same_community:
                minimum = sum(
                    max(int(need[community == c].max(initial=0)),
                        math.ceil(int(need[community == c].sum()) / rp.max_units))
                    for c in communities
                )
            else:
                minimum = max(int(need.max(initial=0)), math.ceil(int(need.sum()) / rp.max_units))
        else:
            need = rp.required(comm_households.to_numpy())
            minimum = max(int(need.max(initial=0)), math.ceil(int(need.sum()) / rp.max_units))
        n = math.ceil(minimum * (1 + spare)) if minimum else 0
        if rp.assign_all:
            n += round(int(households.sum()) / households_per_extra)
        counts[role] = (n, round(n * unavailable))

    total = sum(a + b for a, b in counts.values())
    weights = (households + 1) / (households + 1).sum()
    home_grid = rng.choice(len(layer), size=total, p=weights)
    points = _random_points_in(rng, metric.geometry.to_numpy(), home_grid)
    home_wgs = gpd.GeoSeries(points, crs=metric_crs).to_crs(4326).to_numpy()
    kind = rng.random(total)  # < 0.10: community only; < 0.25: point only; else both

    rows: list[dict[str, Any]] = []
    taken_pins: set[str] = set()
    k = 0
    for role in ROLES:
        available, away = counts[role]
        for j in range(available + away):
            g = int(home_grid[k])
            is_away = j >= available
            row = {
                "role": ROLE_LABELS[role],
                "home_community": None if kind[k] >= 0.10 and kind[k] < 0.25 else community[g],
                "geometry": None if kind[k] < 0.10 else home_wgs[k],
                "max_grids": pd.NA,
                "pinned_grid": None,
                "unavailable": "是" if is_away else "否",
            }
            code = str(layer["grid_code"].iat[g])
            if (
                role == "grid_worker" and not is_away and row["geometry"] is not None
                and code not in taken_pins and rng.random() < pinned
            ):
                row["pinned_grid"] = code
                taken_pins.add(code)
            if role == "police" and rules.roles[role].max_units > 2 and rng.random() < 0.1:
                row["max_grids"] = 2
            rows.append(row)
            k += 1
    own = [role for role in rules.roles if role not in ROLES]
    if own:
        building_frame = None
        if any(rules.roles[r].unit == "building" for r in own):
            building_frame = read_staffing_buildings(
                buildings_beside(grids, layer, buildings), layer)
        for role in own:
            rows += _own_rows(rng, rules.roles[role], layer, metric, building_frame,
                              spare=spare, unavailable=unavailable,
                              households_per_extra=households_per_extra, counts=counts)
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    names = [
        _SURNAMES[rng.integers(len(_SURNAMES))]
        + "".join(_GIVEN[i] for i in rng.integers(len(_GIVEN), size=rng.integers(1, 3)))
        for _ in rows
    ]
    phones = [f"100{n:08d}" for n in rng.integers(0, 10**8, size=len(rows))]
    frame = pd.DataFrame(rows)
    if own:
        is_unit = frame["unit_name"].notna().to_numpy() if "unit_name" in frame else []
        for i in np.flatnonzero(is_unit):
            names[i] = str(frame["unit_name"].iat[i])
    out = gpd.GeoDataFrame(
        {
            "worker_id": [f"W{i:04d}" for i in range(1, len(rows) + 1)],
            "name": names,
            "role": frame["role"],
            "home_community": frame["home_community"],
            "phone": phones,
            "max_grids": pd.array(frame["max_grids"], dtype="Int64"),
            "pinned_grid": frame["pinned_grid"],
            "unavailable": frame["unavailable"],
        },
        geometry=gpd.GeoSeries(frame["geometry"].to_numpy(), crs=4326),
        crs=4326,
    )
    if own:
        for column, values in _attributes(rng, rules, frame).items():
            out[column] = values
    out["geometry"] = shapely.set_precision(out.geometry.to_numpy(), 1e-7)
    logger.info(
        "make_roster(seed=%d): %d people (%s)", seed, len(out),
        ", ".join(f"{r} {a}+{b} unavailable" for r, (a, b) in counts.items()),
    )
    return out


def _own_rows(
    rng: np.random.Generator,
    rp: RolePolicy,
    layer: gpd.GeoDataFrame,
    metric: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame | None,
    *,
    spare: float,
    unavailable: float,
    households_per_extra: int,
    counts: dict[str, tuple[int, int]],
) -> list[dict[str, Any]]:
    """The people of a role the policy defines: enough for its units, plus spare."""
    households = layer["households"].to_numpy(dtype=np.int64)
    community = layer["community_id"].to_numpy(dtype=object)
    grid_ok = _grids_of(rp, layer)
    if rp.weak_grids:  # the weak grids are known after assignment: take the biggest
        biggest = np.flatnonzero(grid_ok)[np.argsort(-households[grid_ok], kind="stable")]
        grid_ok[biggest[rp.weak_grids:]] = False
    if rp.unit == "building":
        assert buildings is not None
        grid_index = {c: i for i, c in enumerate(layer["grid_code"])}
        b_grid = np.array([grid_index[c] for c in buildings["grid_code"]], dtype=np.int64)
        unit_hh = buildings["households"].to_numpy(dtype=np.int64)
        unit_ok = grid_ok[b_grid] if len(b_grid) else np.zeros(0, dtype=bool)
        unit_comm = community[b_grid] if len(b_grid) else np.zeros(0, dtype=object)
    elif rp.unit == "grid":
        unit_hh, unit_ok, unit_comm = households, grid_ok, community
    else:
        comm_hh = pd.Series(households).groupby(community).sum()
        unit_hh = comm_hh.to_numpy(dtype=np.int64)
        unit_ok = np.ones(len(comm_hh), dtype=bool)
        unit_comm = comm_hh.index.to_numpy(dtype=object)
    if rp.min_households is not None:
        unit_ok = unit_ok & (unit_hh >= rp.min_households)
    need = np.where(unit_ok, rp.required(unit_hh), 0)
    by_comm = pd.Series(need).groupby(unit_comm).sum() if len(need) else pd.Series(dtype=int)
    by_comm = by_comm[by_comm > 0]

    def enough(c: Any) -> int:  # people community c needs: its units' slots, by capacity
        return max(int(need[unit_comm == c].max()), math.ceil(int(by_comm[c]) / rp.max_units))

    weights = (households + 1).astype(np.float64)
    home_comm: np.ndarray | None = None  # per person, when people live where they serve
    if rp.home_community == "same":
        per = {c: math.ceil(enough(c) * (1 + spare)) for c in by_comm.index}
        if rp.assign_all:
            for c, hh in pd.Series(households).groupby(community).sum().items():
                per[c] = per.get(c, 0) + round(int(hh) / households_per_extra)
        home_comm = np.array([c for c in sorted(per) for _ in range(per[c])], dtype=object)
        n = len(home_comm)
    else:
        if rp.same_community:
            minimum = sum(enough(c) for c in by_comm.index)
        else:
            minimum = max(int(need.max(initial=0)), math.ceil(int(need.sum()) / rp.max_units))
        n = math.ceil(minimum * (1 + spare)) if minimum else 0
        if rp.assign_all:
            n += round(int(households.sum()) / households_per_extra)
    away = round(n * unavailable)
    counts[rp.role] = (n, away)
    total = n + away
    if not total:
        return []
    if home_comm is not None:  # the people on leave live in those communities too
        home_comm = np.concatenate([home_comm, home_comm[rng.permutation(n)[:away] % n]])
        home_grid = np.array([
            rng.choice(np.flatnonzero(community == c),
                       p=weights[community == c] / weights[community == c].sum())
            for c in home_comm
        ], dtype=np.int64)
    else:
        home_grid = rng.choice(len(layer), size=total, p=weights / weights.sum())
    points = _random_points_in(rng, metric.geometry.to_numpy(), home_grid)
    homes = gpd.GeoSeries(points, crs=metric.crs).to_crs(4326).to_numpy()
    if rp.unit == "building" and buildings is not None:  # building heads live in them
        eligible = np.flatnonzero(need > 0)
        groups = (
            {c: eligible[unit_comm[eligible] == c] for c in np.unique(home_comm)}
            if home_comm is not None else {None: eligible}
        )
        for c, where in groups.items():
            people = np.flatnonzero(home_comm == c) if home_comm is not None else np.arange(total)
            if len(where):
                at = where[rng.permutation(len(where))][np.arange(len(people)) % len(where)]
                homes[people] = buildings.geometry.to_numpy()[at]
                home_grid[people] = b_grid[at]
    rows = []
    for j in range(total):
        unit_name = _UNITS[j % len(_UNITS)] + ("" if j < len(_UNITS) else str(j // len(_UNITS)))
        rows.append({
            "role": rp.name_zh,
            "home_community": None if rp.scope == "unit" else community[home_grid[j]],
            "geometry": homes[j],
            "max_grids": pd.NA,
            "pinned_grid": None,
            "unavailable": "是" if j >= n else "否",
            "unit_name": unit_name if rp.scope == "unit" else None,
            "role_key": rp.role,
        })
    return rows


def _grids_of(rp: RolePolicy, layer: gpd.GeoDataFrame) -> np.ndarray:
    """The grids a role's ``grids`` and ``grid_types`` keep (every grid without them)."""
    ok = np.ones(len(layer), dtype=bool)
    if rp.grid_types:
        ok &= np.isin(grid_types(layer), [normalise_grid_type(t) for t in rp.grid_types])
    if rp.grids:
        ok &= layer["grid_code"].astype(str).isin(rp.grids).to_numpy()
    return ok


def _attributes(rng: np.random.Generator, rules: StaffingPolicy, frame: pd.DataFrame
                ) -> dict[str, list[Any]]:
    """One column per attribute the roles require; their people meet it."""
    keys = (frame["role_key"] if "role_key" in frame else pd.Series(index=frame.index)).to_numpy(
        dtype=object)
    labels = {rp.name_zh: role for role, rp in rules.roles.items()}
    roles = [k if isinstance(k, str) else labels.get(r, r)
             for k, r in zip(keys, frame["role"], strict=True)]
    wanted: dict[str, dict[str, Any]] = {}
    for role, rp in rules.roles.items():
        for column, want in rp.requires:
            wanted.setdefault(column, {})[role] = want
    out: dict[str, list[Any]] = {}
    for column, by_role in wanted.items():
        sample = next(iter(by_role.values()))
        draws = rng.random(len(frame))
        values: list[Any] = []
        for role, draw in zip(roles, draws, strict=True):
            want = by_role.get(role)
            if isinstance(want, bool):
                values.append("是" if want else "否")
            elif isinstance(want, str):
                values.append(want)
            elif isinstance(want, tuple):
                values.append(want[0])
            elif isinstance(sample, bool):
                values.append("是" if draw < _ATTRIBUTE_SHARE else "否")
            else:
                values.append(None)
        out[column] = values
    return out


def _random_points_in(rng: np.random.Generator, polygons: np.ndarray, which: np.ndarray
                      ) -> np.ndarray:
    """One uniform random point inside ``polygons[which[i]]`` for each ``i``."""
    out = np.empty(len(which), dtype=object)
    for g in np.unique(which):
        idx = np.flatnonzero(which == g)
        poly = polygons[g]
        x0, y0, x1, y1 = poly.bounds
        found: list[np.ndarray] = []
        need = len(idx)
        for _ in range(100):
            pts = rng.uniform((x0, y0), (x1, y1), size=(4 * need + 8, 2))
            inside = pts[shapely.contains_xy(poly, pts[:, 0], pts[:, 1])]
            found.append(inside)
            if sum(len(f) for f in found) >= need:
                break
        pts = np.concatenate(found)
        if len(pts) < need:  # a sliver: fall back to its representative point
            rep = shapely.point_on_surface(poly)
            pts = np.concatenate([pts, np.tile([rep.x, rep.y], (need - len(pts), 1))])
        out[idx] = shapely.points(pts[:need])
    return out
