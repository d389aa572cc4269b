"""The partition engine, on arrays: the rules and measures of a plan, the partition of a unit
graph, the exact CP-SAT search (model builders shared with ``regenerate``), the multilevel
search of large pieces, the spanning-tree construction, the set-partitioning bound, the
cut-unit proof and progress reporting.

This folder's public door: import from ``gridkit.solver``.  The partition stage's door,
:mod:`gridkit.partition`, adds the community adapters (cells, barriers, compounds).
"""

from __future__ import annotations

from gridkit.solver.construct import (
    TreePlan,
    count_feasible,
    count_for,
    tree_partition,
)
from gridkit.solver.cpsat import (
    GridModel,
    SolveResult,
    add_assignment,
    add_balance_cut,
    add_contiguity,
    add_hint,
    add_size_bounds,
    allowed_pairs,
    bounds_reachable,
    build_model,
    restrict,
    solve,
)
from gridkit.solver.exact import (
    COUNT_PROBE,
    EXACT_SHARE,
    EXACT_UNITS,
    GAP_STOP,
    GROUP_LIMIT,
    GROUP_UNITS,
    LNS_STAGES,
)
from gridkit.solver.graph import (
    GraphPartition,
    combine_partitions,
    compound_pieces,
    meets_bounds,
    partition_contracted,
    partition_graph,
)
from gridkit.solver.large import (
    AREA_SHARE,
    COARSE_CAP,
    COARSE_PER_GRID,
    LOCAL_BALANCE,
    MIN_STARTS,
    MULTILEVEL_UNITS,
    PP_GAIN,
    RECOMBINE_ROUNDS,
    STALL_GAIN,
    STALL_STARTS,
)
from gridkit.solver.lower_bound import (
    connected_groups,
    group_costs,
    partition_bounds,
)
from gridkit.solver.measures import (
    RADIUS_FACTOR,
    GridRules,
    balance_weight,
    centre_for,
    count_floors,
    graph_distances,
    max_radius,
    number_grids,
    plan_objective,
    status_of_grid,
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
from gridkit.solver.progress import (
    PROGRESS_ENV,
    PROGRESS_MIN_BUDGET,
    current_community,
)
from gridkit.solver.proof import cut_unit_proof

__all__ = [
    "AREA_SHARE",
    "COARSE_CAP",
    "COARSE_PER_GRID",
    "COUNT_PROBE",
    "EXACT_SHARE",
    "EXACT_UNITS",
    "GAP_STOP",
    "GROUP_LIMIT",
    "GROUP_UNITS",
    "LNS_STAGES",
    "LOCAL_BALANCE",
    "MIN_STARTS",
    "MULTILEVEL_UNITS",
    "PP_GAIN",
    "PROGRESS_ENV",
    "PROGRESS_MIN_BUDGET",
    "RADIUS_FACTOR",
    "RECOMBINE_ROUNDS",
    "STALL_GAIN",
    "STALL_STARTS",
    "GraphPartition",
    "GridModel",
    "GridRules",
    "Level",
    "SolveResult",
    "TreePlan",
    "WorkClock",
    "add_assignment",
    "add_balance_cut",
    "add_contiguity",
    "add_hint",
    "add_size_bounds",
    "allowed_pairs",
    "balance_weight",
    "bounds_reachable",
    "build_model",
    "centre_for",
    "coarsen",
    "combine_partitions",
    "compound_pieces",
    "connected_groups",
    "count_feasible",
    "count_floors",
    "count_for",
    "current_community",
    "cut_unit_proof",
    "graph_distances",
    "group_costs",
    "max_radius",
    "mean_polsby_popper",
    "meets_bounds",
    "number_grids",
    "partition_bounds",
    "partition_contracted",
    "partition_graph",
    "plan_cost",
    "plan_objective",
    "recombine",
    "refine",
    "restrict",
    "solve",
    "status_of_grid",
    "tree_partition",
    "unit_mass",
]
