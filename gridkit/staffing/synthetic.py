"""A synthetic roster for a grid layer, the sample district's demo: :func:`make_roster`.

Homes are random points where households live, names are random Chinese names and phone
numbers start with an unallocated prefix: nothing describes real people.  Write the
roster with :func:`gridkit.staffing.roster.write_workers`.
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
from gridkit.staffing.grids import GridsLike, read_staffing_grids
from gridkit.staffing.policy import StaffingPolicy, load_policy

__all__ = ["make_roster"]

logger = logging.getLogger(__name__)

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文辉斌宇浩凯琳晨雪"


def make_roster(
    grids: GridsLike,
    *,
    seed: int = 0,
    policy: str | os.PathLike[str] | Mapping[str, Any] | StaffingPolicy | None = None,
    spare: float = 0.1,
    unavailable: float = 0.03,
    pinned: float = 0.02,
    households_per_extra: int = 400,
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

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, one row per person, as a local roster would look: ``worker_id``
        (``W0001``…), ``name``, ``role`` (Chinese, e.g. 专职网格员), ``home_community``,
        ``phone``, ``max_grids`` (a few officers have 2), ``pinned_grid``,
        ``unavailable`` (是/否) and the home ``geometry`` (None for the community-only
        people).  Write it with :func:`write_workers`.

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
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    names = [
        _SURNAMES[rng.integers(len(_SURNAMES))]
        + "".join(_GIVEN[i] for i in rng.integers(len(_GIVEN), size=rng.integers(1, 3)))
        for _ in rows
    ]
    phones = [f"100{n:08d}" for n in rng.integers(0, 10**8, size=len(rows))]
    frame = pd.DataFrame(rows)
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
    out["geometry"] = shapely.set_precision(out.geometry.to_numpy(), 1e-7)
    logger.info(
        "make_roster(seed=%d): %d people (%s)", seed, len(out),
        ", ".join(f"{r} {a}+{b} unavailable" for r, (a, b) in counts.items()),
    )
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
