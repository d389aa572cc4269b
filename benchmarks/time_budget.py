"""Benchmark: does a community take the time its budget says?

Usage::

    python benchmarks/time_budget.py [--limits 1,5,20] [--shared-data PATH]

For communities of every kind (exact model, multilevel search, household points,
apartment blocks that are hard to prove), runs :func:`gridkit.partition_community`
with several ``--time-limit`` values and prints the community's budget
(:func:`gridkit.partition.community_budget`), the counted (deterministic) time it
used, the wall time it took and wall / budget.  A run may stop before its budget
(proved optimal, or the search stalled); it should never take much longer.  Run it on
an idle machine: wall time is what is measured.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import gridkit as gk
from gridkit.partition import community_budget

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compare_anchors import SHARED_DATA, build_instances, load_dataset  # noqa: E402


def cases(shared: Path) -> list[tuple[str, object]]:
    """(name, units) of the communities measured."""
    out = []
    boundaries, households = load_dataset("sample", limit=None, shared=shared)
    sample, _ = build_instances(boundaries, households)
    by_size = sorted(sample, key=lambda c: len(c.units))
    out.append(("sample, 30-60 buildings", next(c for c in by_size if len(c.units) >= 30).units))
    out.append(("sample, largest", by_size[-1].units))
    boundaries, households = load_dataset("points", limit=None, shared=shared)
    points, _ = build_instances(boundaries, households)
    out.append(("10,000 household points", points[0].units))
    if (shared / "sg_hdb_subzones").is_dir():
        boundaries, households = load_dataset("singapore", limit=40, shared=shared)
        singapore, _ = build_instances(boundaries, households)
        hard = [c for c in singapore if c.community_id in ("CLSZ07", "BMSZ09", "BMSZ13")]
        out += [(f"Singapore {c.community_id}", c.units) for c in hard]
    from large_community import merged_community

    units, _ = merged_community(900, 0)
    out.append(("900 buildings, no roads", units))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limits", default="1,5,20", help="time limits to try (seconds)")
    parser.add_argument("--shared-data", type=Path, default=SHARED_DATA)
    args = parser.parse_args(argv)
    limits = [float(v) for v in args.limits.split(",")]
    header = f"{'community':<28} {'units':>6} {'limit':>6} {'budget':>7} {'counted':>8} "
    header += f"{'wall':>7} {'wall/budget':>11}  status"
    print(header)
    print("-" * len(header))
    ratios = []
    for name, units in cases(args.shared_data):
        for limit in limits:
            budget = community_budget(limit, len(units))
            started = time.perf_counter()
            plan = gk.partition_community(units, time_limit=limit, keep_compounds=False)
            wall = time.perf_counter() - started
            ratios.append(wall / budget)
            print(
                f"{name:<28} {len(units):>6} {limit:>6g} {budget:>7.1f} "
                f"{plan.deterministic_time:>8.1f} {wall:>7.1f} {wall / budget:>11.2f}  "
                f"{plan.solver_status}",
                flush=True,
            )
    print(f"\nwall / budget: median {np.median(ratios):.2f}, max {max(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
