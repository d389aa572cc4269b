"""Benchmark ``gridkit.regenerate`` on the seeded housing-change scenario of the sample district.

Partitions ``make_sample(seed=0)`` from scratch, changes it with
``gridkit.scenarios.change_sample(seed=...)`` (a new estate of ~1,500 households in one
community, 2 % of buildings demolished, 5 % of counts changed by ±10 %), regenerates the
grids, partitions the changed district from scratch too, and prints:

- grids in bounds where feasible, households keeping their grid (%), grids kept / changed /
  added / retired, whether every kept grid kept its code;
- households moved by ``regenerate`` next to what the from-scratch partition moves (after
  the best renaming of its grids to the old codes, so the comparison favours it);
- run times.

Usage::

    .venv/bin/python benchmarks/regenerate_scenario.py [--seed 0] [--time-limit 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from gridkit import checks
from gridkit.datasets.scenarios import change_sample
from gridkit.datasets.synthetic import make_sample
from gridkit.pipeline.plan import make_grids
from gridkit.regenerate import moved_households, regenerate


def _unit_codes(plan, old_grids, new_ids: set[str]):
    """Old code (location), new code and households per unit of ``plan``, existing units only."""
    import shapely

    units = plan.units.units
    old = old_grids.to_crs(units.crs)
    tree = shapely.STRtree(old.geometry.to_numpy())
    pts = shapely.points(units[["x", "y"]].to_numpy())
    pt, g = tree.query(pts, predicate="within")
    old_code = np.full(len(units), "", dtype=object)
    old_code[pt] = old["grid_code"].to_numpy()[g]
    existing = ~units["building_id"].astype(str).isin(new_ids).to_numpy()
    old_code[~existing] = ""
    membership = plan.units.membership
    uid = membership["unit_id"]
    has = uid.notna().to_numpy()
    new_code = np.full(len(units), "", dtype=object)
    new_code[uid[has].to_numpy(dtype=np.int64)] = plan.assignments["grid_code"].to_numpy()[has]
    return old_code, new_code, units["households"].to_numpy(dtype=np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="scenario seed")
    parser.add_argument("--time-limit", type=float, default=1.0, help="CP-SAT budget")
    parser.add_argument("--out", default=None, help="keep the outputs in this folder")
    args = parser.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="regen-bench-"))

    communities, buildings = make_sample(seed=0)
    t0 = time.perf_counter()
    before = make_grids(communities, buildings, time_limit=args.time_limit)
    t_base = time.perf_counter() - t0
    before.write(out / "before")

    scenario = change_sample(communities, buildings, seed=args.seed)
    t0 = time.perf_counter()
    plan = regenerate(
        out / "before", scenario.communities, scenario.buildings, time_limit=args.time_limit
    )
    t_regen = time.perf_counter() - t0
    plan.write(out / "after", map_html=True)

    t0 = time.perf_counter()
    scratch = make_grids(scenario.communities, scenario.buildings, time_limit=args.time_limit)
    t_scratch = time.perf_counter() - t0

    new_ids = set(scenario.new_buildings)
    s = plan.summary
    old_c, new_c, w = _unit_codes(plan.plan, before.grids, new_ids)
    moved_regen = moved_households(old_c, new_c, w)
    old_s, new_s, w_s = _unit_codes(scratch, before.grids, new_ids)
    moved_scratch_codes = moved_households(old_s, new_s, w_s)
    moved_scratch = moved_households(old_s, new_s, w_s, relabel=True)
    base_hh = int(w[old_c != ""].sum())
    kept = plan.diff[plan.diff["change"] == "unchanged"]
    old_codes = set(before.grids["grid_code"])
    problems = checks.verify_partition(plan.grids, scenario.communities)

    print(f"scenario seed {args.seed}: estate of {len(scenario.new_buildings)} buildings "
          f"(1,500 households) in {scenario.estate_community}, {len(scenario.demolished)} "
          f"buildings demolished, {len(scenario.recounted)} recounted")  # fmt: skip
    print(f"grids in bounds where feasible: "
          f"{plan.report['totals']['pct_grids_in_bounds_where_feasible']}%; problems: "
          f"{ {k: v for k, v in problems.items() if v} or 'none'}")  # fmt: skip
    print(f"households keeping their grid: {s['households_unchanged_pct']}% "
          f"({s['households_unchanged']:,} of {s['households_in_previous_grids']:,}); "
          f"new households placed: {s['households_new']:,}")  # fmt: skip
    print(f"grids: {s['grids_previous']} -> {s['grids']}: kept {s['grids_kept']}, changed "
          f"{s['grids_changed']}, added {s['grids_added']}, retired {s['grids_retired']} "
          f"(retired codes {', '.join(s['retired_codes']) or 'none'})")  # fmt: skip
    print(f"every kept grid kept its code: {set(kept['grid_code']) <= old_codes}; added codes "
          f"new: {not set(s['added_codes']) & old_codes}")  # fmt: skip
    print(f"households moved (of {base_hh:,} existing): regenerate {moved_regen:,} "
          f"({100 * moved_regen / base_hh:.2f}%); from scratch {moved_scratch:,} "
          f"({100 * moved_scratch / base_hh:.2f}%) after the best renaming of its grids, "
          f"{moved_scratch_codes:,} with its own codes")  # fmt: skip
    print(f"grids from scratch: {len(scratch.grids)}; mean compactness regenerate "
          f"{plan.report['totals']['mean_compactness']}, from scratch "
          f"{scratch.report['totals']['mean_compactness']}")  # fmt: skip
    print(f"time: partition {t_base:.1f} s, regenerate {t_regen:.1f} s, from scratch "
          f"{t_scratch:.1f} s; outputs in {out}")  # fmt: skip


if __name__ == "__main__":
    main()
