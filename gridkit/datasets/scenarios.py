"""Seeded housing-change scenarios for the sample district (new estates, demolitions, counts).

Used by the tests and ``benchmarks/regenerate_scenario.py`` to exercise
:func:`gridkit.regenerate.regenerate` on realistic change: one new estate in one
community, a share of buildings demolished and a share of household counts changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.errors import InputError

__all__ = ["Scenario", "change_sample"]

log = logging.getLogger(__name__)

_METRIC_CRS = "EPSG:32650"  # the sample district is built in UTM zone 50N
_SPACING = 36.0  # metres between the new estate's towers
_MARGIN = 12.0  # metres: new buildings keep this far inside their community


@dataclass
class Scenario:
    """A changed copy of a district and what was changed.

    Attributes
    ----------
    communities, buildings
        The changed inputs (EPSG:4326, same columns as the originals).
    estate_community
        Community that received the new estate.
    new_buildings, demolished, recounted
        ``building_id`` values of the new, demolished and re-counted buildings.
    """

    communities: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    estate_community: str
    new_buildings: list[str] = field(default_factory=list)
    demolished: list[str] = field(default_factory=list)
    recounted: list[str] = field(default_factory=list)


def _estate_sites(rng: np.random.Generator, poly, existing: np.ndarray, n: int) -> np.ndarray:
    """``n`` tower sites on a lattice around the emptiest spot of ``poly`` (metric CRS)."""
    inner = poly.buffer(-_MARGIN)
    minx, miny, maxx, maxy = inner.bounds
    cand = np.c_[rng.uniform(minx, maxx, 4000), rng.uniform(miny, maxy, 4000)]
    cand = cand[shapely.contains_xy(inner, cand[:, 0], cand[:, 1])]
    if len(existing):
        gaps = np.min(
            np.hypot(
                cand[:, None, 0] - existing[None, :, 0], cand[:, None, 1] - existing[None, :, 1]
            ),
            axis=1,
        )
        centre = cand[int(np.argmax(gaps))]
    else:
        centre = cand[0]
    side = int(np.ceil(np.sqrt(n))) + 3
    offsets = (np.indices((side, side)).reshape(2, -1).T - (side - 1) / 2) * _SPACING
    order = np.argsort(np.hypot(offsets[:, 0], offsets[:, 1]), kind="stable")
    sites = []
    for off in offsets[order]:
        p = centre + off
        if not shapely.contains_xy(inner, p[0], p[1]):
            continue
        if len(existing) and np.min(np.hypot(*(existing - p).T)) < _SPACING / 2:
            continue
        sites.append(p)
        if len(sites) == n:
            break
    if len(sites) < n:
        msg = (
            f"room for only {len(sites)} of {n} new buildings in the chosen community; "
            "pass a smaller `new_households` or another `seed`."
        )
        raise InputError(msg)
    return np.asarray(sites)


def change_sample(
    communities: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    seed: int = 0,
    new_households: int = 1500,
    demolish_share: float = 0.02,
    recount_share: float = 0.05,
    recount_change: float = 0.10,
    estate_community: str | None = None,
) -> Scenario:
    """Change a district as housing changes: one new estate, demolitions, new counts.

    Parameters
    ----------
    communities, buildings
        The district, e.g. :func:`gridkit.datasets.make_sample`; never modified.
    seed
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same scenario.
    new_households
        Households of the new estate, in towers of about 150 households each, placed
        around the emptiest spot of one community.
    demolish_share
        Share of the existing buildings removed.
    recount_share, recount_change
        Share of the remaining buildings whose household count changes, by
        ``+recount_change`` or ``-recount_change`` (relative, rounded, at least 1).
    estate_community
        Community of the new estate; default a seeded choice among the communities
        of 1,000-4,000 households.

    Returns
    -------
    Scenario

    Examples
    --------
    >>> from gridkit.datasets import make_sample
    >>> communities, buildings = make_sample(seed=0)
    >>> s = change_sample(communities, buildings, seed=0)
    >>> int(s.buildings.loc[s.buildings["building_id"].isin(s.new_buildings), "households"].sum())
    1500
    >>> len(s.demolished) == round(0.02 * len(buildings))
    True
    """
    rng = np.random.default_rng(seed)
    comm = communities.to_crs(_METRIC_CRS)
    bld = buildings.to_crs(_METRIC_CRS).reset_index(drop=True)
    totals = bld.groupby("community_id")["households"].sum()
    if estate_community is None:
        pool = sorted(totals[(totals >= 1000) & (totals <= 4000)].index.astype(str))
        estate_community = str(rng.choice(pool))
    poly = comm.set_index(comm["community_id"].astype(str)).geometry[estate_community]
    inside = bld["community_id"].astype(str) == estate_community
    existing = shapely.get_coordinates(bld.geometry[inside].to_numpy())
    n_new = max(1, round(new_households / 150))
    sites = _estate_sites(rng, poly, existing, n_new)
    sizes = np.full(n_new, new_households // n_new)
    sizes[: new_households - int(sizes.sum())] += 1

    n_demolish = round(demolish_share * len(bld))
    demolished = np.sort(rng.choice(len(bld), size=n_demolish, replace=False))
    keep = np.setdiff1d(np.arange(len(bld)), demolished)
    n_recount = round(recount_share * len(keep))
    recounted = np.sort(rng.choice(keep, size=n_recount, replace=False))
    sign = rng.choice([-1.0, 1.0], size=n_recount)
    counts = bld["households"].to_numpy(dtype=np.int64).copy()
    counts[recounted] = np.maximum(
        1, np.rint(counts[recounted] * (1.0 + sign * recount_change)).astype(np.int64)
    )
    changed = buildings.reset_index(drop=True).copy()  # untouched coordinates
    changed["households"] = counts
    changed = changed.iloc[keep]
    new_ids = [f"N{k + 1:05d}" for k in range(n_new)]
    estate = gpd.GeoDataFrame(
        {
            "building_id": new_ids,
            "households": sizes.astype(np.int64),
            "compound": "新建小区",
            "floors": 30,
            "community_id": estate_community,
        },
        geometry=gpd.points_from_xy(sites[:, 0], sites[:, 1]),
        crs=_METRIC_CRS,
    )
    estate = estate[[c for c in changed.columns if c in estate.columns]].to_crs(buildings.crs)
    estate["geometry"] = shapely.transform(estate.geometry.to_numpy(), lambda c: np.round(c, 7))
    out = gpd.GeoDataFrame(
        pd.concat([changed, estate], ignore_index=True), geometry="geometry", crs=buildings.crs
    )
    log.info(
        "scenario seed=%d: %d new buildings (%d households) in %s, %d demolished, %d recounted",
        seed,
        n_new,
        new_households,
        estate_community,
        n_demolish,
        n_recount,
    )
    return Scenario(
        communities=communities.copy(),
        buildings=out,
        estate_community=estate_community,
        new_buildings=new_ids,
        demolished=bld["building_id"].astype(str).to_numpy()[demolished].tolist(),
        recounted=bld["building_id"].astype(str).to_numpy()[recounted].tolist(),
    )
