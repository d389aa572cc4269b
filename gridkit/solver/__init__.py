"""The partition engine: CP-SAT model builders, the spanning-tree construction, the multilevel
search and the set-partitioning bound.

This folder's public door: import from ``gridkit.solver``."""

from __future__ import annotations

from gridkit.solver.construct import (
    TreePlan,
    count_feasible,
    count_for,
    tree_partition,
)
from gridkit.solver.cpsat import (
    GridModel,
    allowed_pairs,
    build_model,
    restrict,
    solve,
)
from gridkit.solver.lower_bound import (
    connected_groups,
    group_costs,
    partition_bounds,
)
from gridkit.solver.multilevel import (
    Level,
    WorkClock,
    coarsen,
    mean_polsby_popper,
    plan_cost,
    recombine,
    refine,
    unit_mass,
)

__all__ = [
    "GridModel",
    "Level",
    "TreePlan",
    "WorkClock",
    "allowed_pairs",
    "build_model",
    "coarsen",
    "connected_groups",
    "count_feasible",
    "count_for",
    "group_costs",
    "mean_polsby_popper",
    "partition_bounds",
    "plan_cost",
    "recombine",
    "refine",
    "restrict",
    "solve",
    "tree_partition",
    "unit_mass",
]
