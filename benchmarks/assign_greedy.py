"""Benchmark: staff the sample district optimally and compare with a greedy nearest-worker plan.

Usage::

    python benchmarks/assign_greedy.py [--grids out/demo] [--seed 0] [--time-limit 10]

``--grids`` is a ``gridkit partition`` output folder (``make demo`` writes ``out/demo``)
or its grids.geojson.  The roster is ``gridkit.staffing.make_roster(grids, seed=SEED)``.

The greedy baseline obeys the same hard rules on the same candidate pairs (capacities,
one community per officer, pinned people, unavailable people left out): unit by unit it
gives each missing slot to the nearest person with room (for same-community roles
community by community, with least wasted capacity, so it does not strand officers),
then places the remaining people of ``assign_all`` roles at their nearest grid with
room.  "Nearest" is the home-to-grid distance alone.  Printed per role and in total:
people, slots missing, total distance (m) and the model's objective (m: distance plus
the cross-community and balance penalties) of both plans, the solver status and gap,
and the time.  Machines are noisy: compare times measured on the same machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from gridkit.staffing import (
    assign_workers,
    load_policy,
    make_roster,
    read_staffing_grids,
    read_workers,
    verify_staffing,
)
from gridkit.staffing._inputs import prepare
from gridkit.staffing._model import DM, evaluate, greedy
from gridkit.staffing._problem import missing_slots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", default="out/demo", help="partition output folder or file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=10.0)
    args = parser.parse_args(argv)
    if not Path(args.grids).exists():
        print(f"no grids at {args.grids}: run `make demo` first, or pass --grids DIR",
              file=sys.stderr)
        return 2

    grids = read_staffing_grids(args.grids)
    roster = make_roster(grids, seed=args.seed)
    workers = read_workers(roster)
    policy = load_policy()

    started = time.perf_counter()
    plan = assign_workers(grids, workers, policy=policy, time_limit=args.time_limit,
                          seed=args.seed)
    optimal_s = time.perf_counter() - started
    problems = verify_staffing(plan)

    ctx = prepare(grids, workers, policy)
    rows = []
    totals = np.zeros(6)
    for ri in ctx.roles:
        p = ri.problem
        started = time.perf_counter()
        chosen = greedy(p, key=ri.distance)
        greedy_s = time.perf_counter() - started
        stats = plan.summary["roles"][ri.role]
        g_dist = float(ri.distance[chosen].sum())
        g_obj = evaluate(p, chosen) / DM
        g_missing = int(missing_slots(p, chosen).sum())
        rows.append((
            ri.role, p.n_people, p.n_units, stats["missing"], g_missing,
            stats["total_distance_m"], g_dist, stats["solver"]["objective_m"], g_obj,
            stats["solver"]["method"], stats["solver"]["status"], stats["solver"]["gap"],
            plan.summary["timing"]["roles_s"][ri.role], greedy_s,
        ))
        totals += [stats["missing"], g_missing, stats["total_distance_m"], g_dist,
                   stats["solver"]["objective_m"], g_obj]

    head = (f"{'role':<14}{'people':>7}{'units':>6}{'miss':>6}{'g.miss':>7}"
            f"{'dist_m':>10}{'greedy_m':>10}{'obj_m':>10}{'g.obj_m':>10}  "
            f"{'method':<16}{'status':<9}{'gap':>7}{'time_s':>8}{'g.time_s':>9}")
    print(f"sample district: {len(grids)} grids, {grids['community_id'].nunique()} "
          f"communities, {int(grids['households'].sum()):,} households; roster "
          f"make_roster(seed={args.seed}): {len(workers)} people "
          f"({int(workers['unavailable'].sum())} unavailable)")
    print(head)
    for r in rows:
        print(f"{r[0]:<14}{r[1]:>7}{r[2]:>6}{r[3]:>6}{r[4]:>7}{r[5]:>10.0f}{r[6]:>10.0f}"
              f"{r[7]:>10.0f}{r[8]:>10.0f}  {r[9]:<16}{r[10]:<9}{r[11]:>7.2%}{r[12]:>8.2f}"
              f"{r[13]:>9.3f}")
    print(f"{'total':<27}{totals[0]:>6.0f}{totals[1]:>7.0f}{totals[2]:>10.0f}{totals[3]:>10.0f}"
          f"{totals[4]:>10.0f}{totals[5]:>10.0f}")
    t = plan.summary["totals"]
    print(f"optimal plan: all roles proven optimal: {t['all_optimal']}, max gap "
          f"{t['max_gap']:.2%}, {t['slots_missing']} slots missing, wall time {optimal_s:.1f} s")
    better = totals[2] < totals[3]
    print(f"total distance {totals[2]:,.0f} m (optimal) vs {totals[3]:,.0f} m (greedy): "
          f"{'strictly lower' if better else 'NOT lower'} "
          f"({(totals[3] - totals[2]) / max(totals[3], 1):.1%} less)")
    print(f"objective {totals[4]:,.0f} m (optimal) vs {totals[5]:,.0f} m (greedy)")
    print(f"hard rules verified: {problems or 'yes'}")
    return 0 if better and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
