"""Benchmark: one ~900-building community, its roads as barriers; proven gap and time.

Usage::

    python benchmarks/large_community.py [--time-limit 5] [--buildings 900] [--no-roads]

The community is made of neighbouring communities of the bundled sample district
(``gridkit.datasets.make_sample``), grown from the first one until it holds at
least ``--buildings`` buildings and dissolved into one outline.  The outlines
of the merged communities become its roads (``--barriers``): the blocks
between them are what a planner would draw grids in.  Prints buildings,
households, grids, grids in bounds, solver status, objective, proven bound and
gap, wall and deterministic time, and the blocks.  ``--no-roads`` runs the same
community without barriers (one monolithic model plus large-neighbourhood
search, whose bound is far weaker: see docs/design.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import geopandas as gpd
import numpy as np
import shapely

import gridkit as gk
from gridkit.partition import GridRules, partition_community


def merged_community(min_buildings: int, seed: int = 0):
    """Units of one large community and the outlines of its parts (as roads)."""
    communities, buildings = gk.datasets.make_sample(seed=seed)
    counts = buildings.groupby("community_id").size()
    ids = communities["community_id"].tolist()
    geoms = communities.geometry.to_numpy()
    chosen = [ids[0]]
    while counts.reindex(chosen).fillna(0).sum() < min_buildings and len(chosen) < len(ids):
        grown = shapely.buffer(shapely.union_all(geoms[[ids.index(i) for i in chosen]]), 1e-6)
        touching = [i for i in ids if i not in chosen and grown.intersects(geoms[ids.index(i)])]
        chosen.append(max(touching, key=lambda i: (counts.get(i, 0), i)))
    parts = communities[communities["community_id"].isin(chosen)]
    big = gpd.GeoDataFrame(
        {"community_id": ["999999999999"], "community_name": ["merged"], "street": ["benchmark"]},
        geometry=[shapely.union_all(parts.geometry.to_numpy())],
        crs=communities.crs,
    )
    homes = buildings[buildings["community_id"].isin(chosen)].assign(community_id="999999999999")
    units = gk.build_units(big, homes)
    roads = gpd.GeoDataFrame(
        {"name": parts["community_name"].to_numpy()},
        geometry=parts.to_crs(units.crs).geometry.boundary.to_numpy(),
        crs=units.crs,
    )
    return units.units, roads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=5.0)
    parser.add_argument("--buildings", type=int, default=900)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-roads", action="store_true")
    args = parser.parse_args(argv)

    units, roads = merged_community(args.buildings, args.seed)
    started = time.perf_counter()
    plan = partition_community(
        units,
        rules=GridRules(),
        time_limit=args.time_limit,
        seed=args.seed,
        workers=1,
        barriers=None if args.no_roads else roads,
    )
    wall = time.perf_counter() - started
    statuses = list(plan.grid_status.values())
    figures = {
        "buildings": len(units),
        "households": int(units["households"].sum()),
        "barriers": 0 if args.no_roads else len(roads),
        "time_limit": args.time_limit,
        "grids": len(statuses),
        "grids_ok": statuses.count("ok"),
        "grids_oversize_building": statuses.count("oversize_building"),
        "grids_out_of_bounds": sum(s in ("below_min", "above_max") for s in statuses),
        "solver_status": plan.solver_status,
        "objective": plan.objective,
        "bound": plan.bound,
        "gap_pct": None if plan.gap is None else round(100 * plan.gap, 2),
        "wall_s": round(wall, 1),
        "deterministic_s": round(plan.deterministic_time, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "notes": [n for n in plan.notes if not n.startswith("compound ")],
        "compounds_split": sum(n.startswith("compound ") for n in plan.notes),
    }
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    return 0 if figures["grids_out_of_bounds"] == 0 and np.isfinite(wall) else 1


if __name__ == "__main__":
    raise SystemExit(main())
