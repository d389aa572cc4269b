"""Scale benchmark: a generated city of many sample districts, partitioned end to end.

Usage::

    python benchmarks/scale_city.py [--districts 16] [--time-limit 5] [--jobs N]
        [--per-household]

Each district is ``gridkit.datasets.make_sample(seed=i)`` shifted east/north on a
4-wide lattice, with community ids made unique; 16 districts are about 540
communities and 1,040,000 households.  ``--per-household`` gives the city as one
row per household (about a million points a few metres around their buildings, no
building ids: ``gridkit.datasets.make_households`` without its ``building_id``),
which gridkit groups into buildings itself.  Prints wall time per stage, peak memory
of the main process and of the largest worker, grids in bounds and compactness.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import geopandas as gpd
import pandas as pd

import gridkit as gk


def make_city(districts: int) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """``districts`` sample districts side by side (about 0.06 degrees apart)."""
    communities, buildings = [], []
    for i in range(districts):
        c, b = gk.datasets.make_sample(seed=i)
        dx, dy = 0.06 * (i % 4), 0.04 * (i // 4)
        c = c.assign(geometry=c.geometry.translate(dx, dy))
        b = b.assign(geometry=b.geometry.translate(dx, dy))
        prefix = f"D{i:02d}-"
        c["community_id"] = prefix + c["community_id"]
        b["community_id"] = prefix + b["community_id"]
        b["building_id"] = prefix + b["building_id"]
        communities.append(c)
        buildings.append(b)
    return (
        gpd.GeoDataFrame(pd.concat(communities, ignore_index=True), crs=4326),
        gpd.GeoDataFrame(pd.concat(buildings, ignore_index=True), crs=4326),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--districts", type=int, default=16)
    parser.add_argument("--time-limit", type=float, default=5.0)  # the CLI default
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--per-household", action="store_true", help="one row per household")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    communities, buildings = make_city(args.districts)
    n_buildings = len(buildings)
    if args.per_household:
        buildings = gk.datasets.make_households(buildings).drop(columns=["building_id"])
    made = time.perf_counter() - started
    plan = gk.make_grids(communities, buildings, time_limit=args.time_limit, jobs=args.jobs)
    wall = time.perf_counter() - started
    totals = plan.report["totals"]
    figures = {
        "districts": args.districts,
        "communities": totals["communities"],
        "buildings": n_buildings,
        "household_rows": totals["household_rows"],
        "units_built": totals.get("buildings"),
        "households": totals["households"],
        "grids": totals["grids"],
        "pct_grids_in_bounds_where_feasible": totals["pct_grids_in_bounds_where_feasible"],
        "grids_by_status": totals["grids_by_status"],
        "mean_compactness_pp": totals["mean_compactness"],
        "generate_s": round(made, 1),
        "partition_s": round(wall - made, 1),
        "wall_s": round(wall, 1),
        "peak_rss_main_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_largest_worker_mb": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
        "time_limit": args.time_limit,
    }
    json.dump(figures, sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
