"""Benchmark: partition the bundled sample district end to end and print the figures.

Usage::

    python benchmarks/partition_district.py [--time-limit 10] [--jobs N] [--seed 0]

Prints wall time (read + units + solve + assemble + write), peak memory of
this process and of the solver processes, grids in bounds where feasible and
mean Polsby-Popper compactness.  Machines are noisy: compare runs made on
the same machine at the same time.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import gridkit as gk
from gridkit.datasets.synthetic import get_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=5.0)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    communities = gk.read_boundaries(get_path("communities"))
    households = gk.read_households(get_path("buildings"))
    read_s = time.perf_counter() - started
    plan = gk.make_grids(
        communities, households, time_limit=args.time_limit, seed=args.seed, jobs=args.jobs
    )
    solve_s = time.perf_counter() - started - read_s
    with tempfile.TemporaryDirectory() as tmp:
        plan.write(Path(tmp))
    wall = time.perf_counter() - started

    grids = plan.grids
    totals = plan.report["totals"]
    checks = gk.checks.verify_partition(
        grids, communities, assignments=plan.assignments, households=households
    )
    statuses = {}
    for c in plan.report["communities"]:
        statuses[c["solver_status"]] = statuses.get(c["solver_status"], 0) + 1
    gaps = [c["gap"] for c in plan.report["communities"] if c["gap"] is not None]
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    figures = {
        "communities": totals["communities"],
        "households": totals["households"],
        "buildings": int(plan.units.units.shape[0]),
        "grids": totals["grids"],
        "pct_grids_in_bounds_where_feasible": totals["pct_grids_in_bounds_where_feasible"],
        "grids_by_status": totals["grids_by_status"],
        "mean_compactness_pp": totals["mean_compactness"],
        "solver_status": statuses,
        "mean_gap": round(sum(gaps) / len(gaps), 4) if gaps else None,
        "max_gap": max(gaps) if gaps else None,
        "problems": {k: len(v) for k, v in checks.items()},
        "read_s": round(read_s, 2),
        "partition_s": round(solve_s, 2),
        "wall_s": round(wall, 2),
        "peak_rss_main_mb": round(self_mb, 1),
        "peak_rss_largest_worker_mb": round(child_mb, 1),
        "time_limit": args.time_limit,
        "jobs": args.jobs,
    }
    json.dump(figures, sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
