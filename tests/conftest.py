"""Shared fixtures: the synthetic sample, a small awkward subset, and the real-data folder.

Fixtures go from small to large:

- ``sample``: ``make_sample(seed=0)`` (34 communities, ~1,000 buildings, ~65,000 households);
- ``sample_subset``: four communities of it, found by their household totals rather than
  by id: the community below any 400-household grid, the one holding the 950-household
  tower, the tight 850-household one (two grids of 400-450 only) and the smallest
  ordinary neighbour of the tower community;
- ``sample_plan``: ``make_grids`` on the subset, computed once per session;
- ``district_plan``: ``make_grids`` on the whole sample district (slow tests only);
- ``shared_data``: ``../shared/data`` beside the repository; skips when it is absent,
  but fails when the ``CI`` environment variable is set (geopandas' naturalearth habit),
  so real-data tests cannot be skipped quietly in CI.

``check_plan`` (a fixture returning a function, so test modules need not import
``conftest``) is the one place where the guarantees of a plan are asserted, through
:mod:`gridkit.checks`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Collection
from functools import cache
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import settings

from gridkit import checks
from gridkit.datasets.synthetic import make_sample
from gridkit.errors import GridkitWarning
from gridkit.pipeline.plan import GridPlan, make_grids

REPO = Path(__file__).resolve().parents[1]

# CI: property tests draw the same examples every run, so a red build reproduces locally
# with `HYPOTHESIS_PROFILE=ci`; local runs keep exploring new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(
    "ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "default")
)
SHARED_DATA = REPO.parent / "shared" / "data"

#: Solver budgets of the session runs (deterministic seconds per community piece).  The
#: subset's budget keeps every solve far below CP-SAT's wall-clock guard in
#: ``gridkit._cpsat.solve`` (4 x limit + 10 s), which would make results load-dependent.
TIME_LIMIT = 0.5
DISTRICT_TIME_LIMIT = 1.0


def in_ci() -> bool:
    """Whether the ``CI`` environment variable is set to something true-ish."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


class Subset(NamedTuple):
    """A few awkward communities of the sample and their buildings (both EPSG:4326)."""

    communities: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    low_id: str  # total households below 400
    low_households: int
    tower_id: str  # holds the one building above 800 households
    tower_building: str
    tower_households: int  # households of the tower building
    tight_id: str  # 800 < total < 1,000: only two grids of 400-500 fit
    other_id: str  # an ordinary neighbour of the tower community


def find_awkward(communities: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame) -> dict:
    """Ids of the awkward sample communities, from household totals (never hard-coded)."""
    totals = buildings.groupby("community_id")["households"].sum()
    low_id = str(totals.idxmin())
    assert totals[low_id] < 400, totals.sort_values().head()
    big = buildings[buildings["households"] > 800]
    assert len(big) == 1, big
    tower = big.iloc[0]
    tight = totals[(totals > 800) & (totals < 1000)]
    assert len(tight) == 1, tight
    tower_geom = communities.set_index("community_id").geometry[tower["community_id"]]
    touching = communities[
        communities.geometry.intersects(tower_geom)
        & ~communities["community_id"].isin([tower["community_id"], low_id, tight.index[0]])
    ]
    other_id = str(totals.reindex(touching["community_id"]).idxmin())
    return {
        "low_id": low_id,
        "low_households": int(totals[low_id]),
        "tower_id": str(tower["community_id"]),
        "tower_building": str(tower["building_id"]),
        "tower_households": int(tower["households"]),
        "tight_id": str(tight.index[0]),
        "other_id": other_id,
    }


def with_household_ids(buildings: pd.DataFrame) -> pd.DataFrame:
    """The ``household_id`` that ``make_grids`` gives building rows without one."""
    if "household_id" in buildings:
        return buildings
    return buildings.assign(household_id=buildings["building_id"].astype(str))


def _unsplittable(weights, min_households: int, max_households: int, *, limit: int = 14):
    """Whether no grouping of ``weights`` puts every group in ``[min, max]`` (contiguity ignored).

    ``True`` proves the bounds infeasible for a community whose units weigh ``weights``;
    ``False`` means a grouping exists (contiguity may still forbid it); ``None`` when there
    are more than ``limit`` weights to search exhaustively.

    >>> _unsplittable([757, 676, 96, 64, 60, 1], 400, 800)
    True
    >>> _unsplittable([500, 300, 200], 400, 800)
    False
    """
    w = sorted((int(x) for x in weights if int(x) > 0), reverse=True)
    if len(w) > limit:
        return None

    @cache
    def splits(rest: tuple[int, ...]) -> bool:
        if not rest:
            return True
        first, others = rest[0], rest[1:]

        def grow(start: int, total: int, used: tuple[int, ...]) -> bool:
            if min_households <= total <= max_households:
                left = tuple(x for i, x in enumerate(others) if i not in used)
                if splits(left):
                    return True
            for i in range(start, len(others)):
                if total + others[i] <= max_households and grow(
                    i + 1, total + others[i], (*used, i)
                ):
                    return True
            return False

        return grow(0, first, ())

    return not splits(tuple(w))


def _check_plan(
    plan: GridPlan,
    communities: gpd.GeoDataFrame,
    households: pd.DataFrame,
    *,
    min_households: int = 400,
    max_households: int = 800,
    tolerance: float = 1e-6,
    excused: Collection[str] = (),
) -> None:
    """Assert every guarantee of a plan with :mod:`gridkit.checks` (never exact labels).

    - every household row is in exactly one grid or unassigned with a reason;
    - every grid is one polygon; grids tile their community (error < ``tolerance``);
    - in every community whose bounds are feasible (``infeasible_reason`` is None),
      every grid is ``ok`` and within ``[min_households, max_households]``, except the
      ``excused`` ones (proven infeasible by the caller, e.g. with :func:`_unsplittable`,
      which the report does not know yet);
    - grid households agree with the assignments and with the input households.
    """
    grids, assignments, report = plan.grids, plan.assignments, plan.report
    households = with_household_ids(households)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GridkitWarning)  # verify_partition warns on problems
        problems = checks.verify_partition(
            grids,
            communities,
            assignments=assignments,
            households=households,
            min_households=min_households,
            max_households=max_households,
            tolerance=tolerance,
        )
    assert not any(problems.values()), problems

    assert checks.accounted_for(assignments, households)
    assert checks.is_contiguous(grids).all(), grids.loc[~checks.is_contiguous(grids), "grid_code"]
    tiling = checks.tiling_error(grids, communities)
    assert set(tiling.index) == set(communities["community_id"].astype(str))
    assert (tiling < tolerance).all(), tiling[tiling >= tolerance]

    feasible = [
        c["community_id"]
        for c in report["communities"]
        if c["infeasible_reason"] is None and c["community_id"] not in excused
    ]
    in_feasible = grids[grids["community_id"].isin(feasible)]
    in_bounds_status = in_feasible["status"].isin(["ok", "split_compound"])
    assert in_bounds_status.all(), in_feasible.loc[
        ~in_bounds_status, ["grid_code", "households", "status"]
    ]
    bounded = checks.within_bounds(
        in_feasible, min_households=min_households, max_households=max_households
    )
    assert bounded.all(), in_feasible.loc[~bounded, ["grid_code", "households"]]
    for c in report["communities"]:
        if c["community_id"] in feasible:
            assert c["bounds_met"], c
            assert c["grids"] == c["grids_in_bounds"], c

    # households: grids == assigned input rows == report totals
    hh = households["households"].to_numpy(dtype=np.int64)
    assigned = (assignments["grid_code"] != "").to_numpy()
    assert int(grids["households"].sum()) == int(hh[assigned].sum())
    # a compound row split by building number is assigned to the grid holding its point,
    # its households to all its grids (buildings.geojson lists the parts): per grid, only
    # without such rows
    if not (hh[assigned] > max_households).any() or "split_compound" not in set(grids["status"]):
        by_grid = pd.Series(hh[assigned]).groupby(
            assignments["grid_code"].to_numpy()[assigned]
        ).sum()
        per_grid = grids.set_index("grid_code")["households"]
        assert by_grid.reindex(per_grid.index, fill_value=0).astype(int).tolist() == (
            per_grid.astype(int).tolist()
        )
    totals = report["totals"]
    assert totals["households"] == int(hh.sum())
    assert totals["households_assigned"] + totals["households_unassigned"] == int(hh.sum())
    assert totals["grids"] == len(grids)
    # an unassigned row names its reason, an assigned row none
    assert (assignments.loc[~assigned, "reason"] != "").all()
    assert (assignments.loc[assigned, "reason"] == "").all()
    assert set(assignments.loc[assigned, "grid_code"]) <= set(grids["grid_code"])


@pytest.fixture(scope="session")
def check_plan():
    """``check_plan(plan, communities, households, *, min_households, max_households, ...)``."""
    return _check_plan


@pytest.fixture(scope="session")
def unsplittable():
    """``unsplittable(weights, min_households, max_households)``: True, False or None."""
    return _unsplittable


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def sample() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """``make_sample(seed=0)``: communities and buildings (do not modify)."""
    return make_sample(seed=0)


@pytest.fixture(scope="session")
def sample_subset(sample) -> Subset:
    """The awkward communities of the sample and an ordinary neighbour, with their buildings."""
    communities, buildings = sample
    ids = find_awkward(communities, buildings)
    keep = [ids["low_id"], ids["tower_id"], ids["tight_id"], ids["other_id"]]
    sub_c = communities[communities["community_id"].isin(keep)].reset_index(drop=True)
    sub_b = buildings[buildings["community_id"].isin(keep)].reset_index(drop=True)
    return Subset(sub_c, sub_b, **ids)


@pytest.fixture(scope="session")
def sample_plan(sample_subset: Subset) -> GridPlan:
    """``make_grids`` on the subset (one process, short budget), computed once."""
    return make_grids(
        sample_subset.communities, sample_subset.buildings, time_limit=TIME_LIMIT, jobs=1
    )


@pytest.fixture(scope="session")
def district_plan(sample) -> GridPlan:
    """``make_grids`` on the whole sample district (two processes); slow (~1-2 min)."""
    communities, buildings = sample
    return make_grids(communities, buildings, time_limit=DISTRICT_TIME_LIMIT, jobs=2)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: skip when absent, fail when ``CI`` is set."""
    if not SHARED_DATA.is_dir():
        msg = "../shared/data not found: real-data tests need the shared folder beside the repo"
        if in_ci():
            pytest.fail(f"{msg} ({SHARED_DATA}; CI is set, so this is a failure, not a skip)")
        pytest.skip(msg)
    return SHARED_DATA
