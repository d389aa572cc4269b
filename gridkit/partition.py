"""Split communities into contiguous grids of 400–800 households with OR-Tools CP-SAT.

Pipeline for one community (``partition_community``):

1. Units (buildings, from :func:`gridkit.units.build_units`) and their rook
   adjacency (:mod:`gridkit.units`).
2. A building above ``max_households`` becomes a grid of its own
   (``oversize_building``); pieces of the community with fewer than
   ``min_households`` households become ``below_min`` grids (or join the
   oversize building they touch).
3. Every other connected piece gets a warm start from recursive spanning-tree
   bisection (:mod:`gridkit.solver.construct`), then the CP-SAT model of
   :mod:`gridkit.solver.cpsat` chooses the number of grids and their shapes,
   minimising household-weighted distance to the grid centre plus a balance
   term.  Bounds are hard when the warm start met them and soft (penalised)
   otherwise, so an infeasible community still gets the best plan possible.
4. Grids are numbered north→south in bands, west→east within a band.

This module is the stage's door: the community adapters (cells, barriers, compounds)
live here, the engine in :mod:`gridkit.solver`.  Its core, :func:`partition_graph`,
works on arrays only and can be tested on a lattice without any geometry; it, the
rules, the plan measures and the engine's constants are re-exported from here.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from gridkit.errors import InputError
from gridkit.solver import (
    AREA_SHARE,
    COARSE_CAP,
    COARSE_PER_GRID,
    COUNT_PROBE,
    EXACT_SHARE,
    EXACT_UNITS,
    GAP_STOP,
    GROUP_LIMIT,
    GROUP_UNITS,
    LNS_STAGES,
    LOCAL_BALANCE,
    MIN_STARTS,
    MULTILEVEL_UNITS,
    PP_GAIN,
    PROGRESS_ENV,
    PROGRESS_MIN_BUDGET,
    RADIUS_FACTOR,
    RECOMBINE_ROUNDS,
    STALL_GAIN,
    STALL_STARTS,
    GraphPartition,
    GridRules,
    balance_weight,
    centre_for,
    combine_partitions,
    compound_pieces,
    count_feasible,
    current_community,
    cut_unit_proof,
    graph_distances,
    max_radius,
    meets_bounds,
    number_grids,
    partition_contracted,
    partition_graph,
    status_of_grid,
)
from gridkit.units import adjacency_matrix, barrier_crossings, rook_pairs

#: The stage's own names (``CommunityPlan``, ``partition_community``, ``own_grid_kinds``,
#: ``community_budget``) and its engine's (:mod:`gridkit.solver`), re-exported for the code
#: and users that import them from here.
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
    "CommunityPlan",
    "GraphPartition",
    "GridRules",
    "balance_weight",
    "centre_for",
    "community_budget",
    "cut_unit_proof",
    "graph_distances",
    "max_radius",
    "number_grids",
    "own_grid_kinds",
    "partition_community",
    "partition_graph",
    "status_of_grid",
]

log = logging.getLogger(__name__)


@dataclass
class CommunityPlan:
    """Grids of one community, as :func:`partition_community` returns them.

    Attributes
    ----------
    community_id
        The community.
    labels
        Grid sequence number (1..k, numbered north→south, west→east) of every
        unit, aligned with the units' index.
    grid_status
        Status of each grid sequence number: ``ok``, ``below_min``,
        ``above_max`` or ``oversize_building``.
    solver_status, objective, bound, gap, wall_time, deterministic_time, notes
        How the plan was found: CP-SAT status (``OPTIMAL``, ``FEASIBLE``) or
        ``HEURISTIC`` (warm start kept), objective and proven bound, and remarks.
    """

    community_id: str
    labels: pd.Series
    grid_status: dict[int, str]
    solver_status: str
    objective: float | None
    bound: float | None
    gap: float | None
    wall_time: float
    deterministic_time: float
    notes: list[str]
    bounds_unreachable: bool = False


def community_budget(time_limit: float, units: int) -> float:
    """Seconds of search a community of ``units`` units gets: ``time_limit * sqrt(units / 60)``.

    ``time_limit`` is the budget of a community of up to :data:`EXACT_UNITS`
    units; a larger one gets more, growing with the square root of its units
    (a 900-building community: 3.9 times as much), because the multilevel
    search's work per start grows about linearly and it stops by itself once
    starts stop improving.

    Examples
    --------
    >>> community_budget(5, 40), community_budget(5, 960)
    (5.0, 20.0)
    """
    return float(time_limit) * math.sqrt(max(1.0, units / EXACT_UNITS))


def own_grid_kinds(units: pd.DataFrame, rules: GridRules) -> np.ndarray:
    """Per unit, ``""`` or the status of the grid it forms on its own.

    ``split_compound``: a part of a compound split by building number
    (:func:`gridkit.units.split_compound`) holding at least ``min_households``
    (a smaller part is an ordinary unit, grouped with its neighbours);
    ``oversize_compound``: a compound row
    above ``max_households`` whose buildings are unknown; ``oversize_building``:
    any other unit above ``max_households``.
    """
    n = len(units)
    w = units["households"].to_numpy(dtype=np.int64)
    split = (
        units["split_of"].notna().to_numpy() if "split_of" in units else np.zeros(n, dtype=bool)
    )
    compound = (
        (units["unit_kind"] == "compound").to_numpy()
        if "unit_kind" in units
        else np.zeros(n, dtype=bool)
    )
    big = w > rules.max_households
    out = np.full(n, "", dtype=object)
    out[big] = np.where(compound[big], "oversize_compound", "oversize_building")
    # a part below the minimum (a compound of few, big buildings) is an ordinary unit:
    # the plan may complete it with its neighbours
    out[split & (w >= rules.min_households)] = "split_compound"
    return out


def _oversize_notes(units: pd.DataFrame, rules: GridRules) -> list[str]:
    """Explain every unit above ``max_households``, naming it as the inputs do."""
    big = units[units["households"] > rules.max_households]
    notes = []
    compound_rows = "unit_kind" in units
    for row in big.itertuples():
        if compound_rows and getattr(row, "unit_kind", "") == "compound":
            label = getattr(row, "building_id", None) or f"row {row.first_household_id}"
            notes.append(
                f"compound {label} has {row.households} households > {rules.max_households} "
                "and no known number of buildings, so it is one grid; give its buildings "
                "(a `buildings` column, or --compound-buildings-col) to split it by building"
            )
            continue
        building = getattr(row, "building_id", None)
        if isinstance(building, str) and building:
            name = f"building {building}"
        else:
            hid = getattr(row, "first_household_id", None)
            name = f"the building of household row {hid}" if hid else f"unit {row.unit_id}"
        notes.append(
            f"{name} alone has {row.households} households > {rules.max_households} "
            "(`max_households`); split it into entrances/units or raise `max_households`"
        )
    return notes


def _feasible_blocks(
    n: int,
    left: np.ndarray,
    right: np.ndarray,
    crossing: np.ndarray,
    w: np.ndarray,
    rules: GridRules,
) -> tuple[np.ndarray, int, int]:
    """Blocks between barriers, merged until each can hold a whole number of grids.

    Blocks are the connected pieces left when the links crossing a barrier are
    dropped.  A block whose households (buildings above ``max_households`` aside:
    they are grids of their own) cannot be cut into grids within the bounds is
    joined to the neighbouring block it shares most crossing links with, until
    every block can (or no block has a neighbour left).

    Returns
    -------
    keep_link, n_blocks, merged
        Mask of the links kept (inside blocks, or between merged blocks), the
        number of blocks and the number of merges.
    """
    keep_link = ~crossing
    fits = np.where(w > rules.max_households, 0, w)
    merged = 0
    while True:
        adj = adjacency_matrix(n, left[keep_link], right[keep_link])
        n_blocks, block = csgraph.connected_components(adj, directed=False)
        load = np.bincount(block, weights=fits, minlength=n_blocks).astype(np.int64)
        has_big = np.bincount(block, weights=w > rules.max_households, minlength=n_blocks) > 0
        bad = [
            b
            for b in range(n_blocks)
            if not (
                count_feasible(int(load[b]), rules.min_households, rules.max_households)
                or (has_big[b] and load[b] < rules.min_households)
            )
        ]
        if not bad:
            return keep_link, n_blocks, merged
        # the smallest infeasible block first (ties: lowest block number)
        b = min(bad, key=lambda x: (load[x], x))
        across = ~keep_link & ((block[left] == b) != (block[right] == b))
        if not across.any():
            bad_rest = [x for x in bad if x != b]
            if not bad_rest:
                return keep_link, n_blocks, merged
            # an isolated block cannot merge: leave it, try the others
            b = min(bad_rest, key=lambda x: (load[x], x))
            across = ~keep_link & ((block[left] == b) != (block[right] == b))
            if not across.any():
                return keep_link, n_blocks, merged
        other = np.where(block[left[across]] == b, block[right[across]], block[left[across]])
        blocks, shared = np.unique(other, return_counts=True)
        target = int(blocks[np.lexsort((blocks, -shared))][0])
        between = ~keep_link & (
            ((block[left] == b) & (block[right] == target))
            | ((block[left] == target) & (block[right] == b))
        )
        keep_link = keep_link | between
        merged += 1


def _separate_groups(
    units: pd.DataFrame, n: int, left: np.ndarray, right: np.ndarray, crossing: np.ndarray
) -> np.ndarray:
    """Group per unit that coarse units must not mix: the barrier block and the compound.

    Blocks are the pieces the barriers cut, before any block is joined to a
    neighbour; units outside every compound form one group per block.
    """
    _, block = csgraph.connected_components(
        adjacency_matrix(n, left[~crossing], right[~crossing]), directed=False
    )
    if "compound" in units:
        compound = units["compound"].astype(object).where(units["compound"].notna(), "")
        codes = pd.factorize(compound.astype(str).to_numpy())[0]
    else:
        codes = np.zeros(n, dtype=np.int64)
    return pd.factorize(pd.MultiIndex.from_arrays([block, codes]))[0].astype(np.int64)


def _solve_block(
    units: pd.DataFrame,
    adj: sparse.csr_matrix,
    w: np.ndarray,
    xy: np.ndarray,
    *,
    keep_compounds: bool,
    rules: GridRules,
    time_limit: float,
    seed: int,
    workers: int,
    prove: bool = False,
    area: np.ndarray | None = None,
    separate: np.ndarray | None = None,
    own_status: np.ndarray | None = None,
    perimeter: np.ndarray | None = None,
    shared: sparse.spmatrix | None = None,
) -> GraphPartition:
    """Partition one block, keeping its compounds whole when the bounds allow it.

    With compounds, the block is solved with each compound (or compound piece,
    see :func:`_compound_groups`) contracted to one node; if that plan misses the
    bounds, the block is solved again building by building (and a note says so).
    The proven bound of a contracted solve is for plans that keep the compounds.
    ``area`` and ``separate`` go to :func:`partition_graph` (summed, and taken
    from any member, for a contracted node).
    """
    groups = _compound_groups(units, adj, rules, seed) if keep_compounds else None
    kwargs = {
        "rules": rules, "time_limit": time_limit, "seed": seed, "workers": workers,
        "prove": prove,
    }  # fmt: skip
    if groups is not None and groups.max() + 1 < len(units):
        k = int(groups.max()) + 1
        coarse_sep = None
        if separate is not None:
            coarse_sep = np.zeros(k, dtype=np.int64)
            coarse_sep[groups] = np.unique(separate, return_inverse=True)[1]
        coarse_own = None
        if own_status is not None:
            coarse_own = np.full(k, "", dtype=object)
            coarse_own[groups] = own_status
        coarse_perimeter = coarse_shared = None
        if perimeter is not None and shared is not None:
            member = sparse.csr_matrix(
                (np.ones(len(groups)), (groups, np.arange(len(groups)))), (k, len(groups))
            )
            both = (member @ sparse.csr_matrix(shared) @ member.T).tocsr()
            coarse_perimeter = np.bincount(groups, weights=perimeter, minlength=k) - both.diagonal()
            both.setdiag(0)
            both.eliminate_zeros()
            coarse_shared = both
        result = partition_contracted(
            adj, w, xy, groups, **kwargs,
            area=None if area is None else np.bincount(groups, weights=area, minlength=k),
            separate=coarse_sep, own_status=coarse_own, perimeter=coarse_perimeter,
            shared=coarse_shared,
        )  # fmt: skip
        if meets_bounds(result, int(w.sum()), rules):
            return result
        plain = partition_graph(
            adj, w, xy, area=area, separate=separate, own_status=own_status,
            perimeter=perimeter, shared=shared, **kwargs,
        )  # fmt: skip
        plain.notes.append(
            "keeping every compound whole could not meet the bounds; buildings of "
            "compounds were allowed to go to different grids"
        )
        plain.deterministic_time += result.deterministic_time
        return plain
    return partition_graph(
        adj, w, xy, area=area, separate=separate, own_status=own_status,
        perimeter=perimeter, shared=shared, **kwargs,
    )  # fmt: skip


def _compound_groups(
    units: pd.DataFrame, adj: sparse.csr_matrix, rules: GridRules, seed: int = 0
) -> np.ndarray | None:
    """Group id per unit: the buildings of a compound that must stay together share one.

    A compound (小区, ``compound`` column) with at most ``max_households`` stays in one
    grid: its buildings are contracted into one node per connected part (a compound
    whose cells are cut apart by another building's cell contracts part by part).
    A larger part is cut along building lines into the fewest pieces that fit a
    grid, ``ceil(households / max_households)``, each connected and about equal
    (recursive spanning-tree bisection), and each piece is contracted; so the
    compound spans as few grids as possible.  None when there is no compound column.
    """
    if "compound" not in units or not units["compound"].notna().any():
        return None
    compound = units["compound"].astype(object).where(units["compound"].notna(), None)
    compound = compound.to_numpy(dtype=object)
    w = units["households"].to_numpy(dtype=np.int64)
    groups = np.arange(len(units))
    for name in sorted({c for c in compound if c is not None}, key=str):
        members = np.flatnonzero(compound == name)
        if len(members) < 2:
            continue
        sub = adj[members][:, members]
        _, part = csgraph.connected_components(sub, directed=False)
        for k in np.unique(part):
            nodes = members[part == k]
            for piece in compound_pieces(adj, w, nodes, rules, seed):
                groups[piece] = piece.min()
    _, dense = np.unique(groups, return_inverse=True)
    return dense


def _compound_split_notes(units: pd.DataFrame, labels: np.ndarray, rules: GridRules) -> list[str]:
    """Name every compound whose buildings ended up in more than one grid."""
    if "compound" not in units:
        return []
    frame = pd.DataFrame(
        {
            "compound": units["compound"].to_numpy(dtype=object),
            "grid": labels,
            "households": units["households"].to_numpy(),
        }
    ).dropna(subset=["compound"])
    notes = []
    for name, g in frame.groupby("compound", sort=True):
        grids = g["grid"].nunique()
        if grids > 1:
            households = int(g["households"].sum())
            fewest = -(-households // rules.max_households)
            why = (
                f"the fewest possible above {rules.max_households} households"
                if grids == fewest
                else f"its size alone needs {fewest}; the grids around it needed more to "
                "stay within the bounds"
            )
            notes.append(
                f"compound {name} ({households} households) is split into {grids} grids "
                f"along building lines ({why})"
            )
    return notes


def partition_community(
    units: pd.DataFrame,
    *,
    rules: GridRules | None = None,
    time_limit: float = 5.0,
    seed: int = 0,
    workers: int = 1,
    keep_compounds: bool = True,
    barriers: gpd.GeoDataFrame | None = None,
    prove: bool = False,
) -> CommunityPlan:
    """Partition the units of one community into contiguous grids.

    Parameters
    ----------
    units
        The community's rows of :attr:`gridkit.units.Units.units` (cells in a
        metric CRS, ``households``, ``x``, ``y``, ``unit_id``, ``building_id``).
    rules
        Household bounds and preferences.
    time_limit
        CP-SAT deterministic time budget (about seconds) of a community of up to
        :data:`EXACT_UNITS` buildings; larger communities get more
        (:func:`community_budget`), shared by their blocks.
    seed
        Seed of the warm start and CP-SAT; the result depends only on the
        inputs and the arguments.
    workers
        CP-SAT workers, interleaved deterministically.
    keep_compounds
        Keep every compound (小区, the units' ``compound`` column) of at most
        ``max_households`` in one grid and split a larger one into the fewest
        grids possible; if that makes the bounds unreachable the community is
        partitioned building by building instead (and a note says so).
        Compounds split across grids are named in the notes.
    barriers
        Lines (roads, rivers, railways, walls) in the units' CRS, optionally with a
        ``name`` column.  Two buildings whose connecting segment crosses a barrier
        are not neighbours, so the barriers cut the community into blocks, each
        solved on its own.  A block that cannot hold a whole number of grids is
        joined to its neighbour across the barrier; if the bounds still cannot be
        met, the community is partitioned without barriers.  Crossings are
        counted and named in the notes.
    prove
        Spend the budget on proofs: pieces of more than :data:`MULTILEVEL_UNITS`
        units get the whole exact model (a proven bound and gap, at a cost that
        grows with the square of the units) instead of the multilevel engine,
        which is faster and finds plans at least as good but proves little.

    Returns
    -------
    CommunityPlan
    """
    rules = rules or GridRules()
    ids = units["community_id"].unique()
    if len(ids) != 1:
        raise InputError(
            f"`partition_community` takes the units of one community, got {len(ids)} "
            "communities; call `gridkit.partition` for a district."
        )
    token = current_community.set(str(ids[0]))
    try:
        return _partition_community(
            units, rules=rules, time_limit=time_limit, seed=seed, workers=workers,
            keep_compounds=keep_compounds, barriers=barriers, prove=prove,
        )  # fmt: skip
    finally:
        current_community.reset(token)


def _partition_community(
    units: pd.DataFrame,
    *,
    rules: GridRules,
    time_limit: float,
    seed: int,
    workers: int,
    keep_compounds: bool,
    barriers: gpd.GeoDataFrame | None,
    prove: bool,
) -> CommunityPlan:
    """:func:`partition_community` once the community is known (see there)."""
    ids = units["community_id"].unique()
    geoms = units.geometry.to_numpy()
    left, right, lengths = rook_pairs(geoms)
    full = adjacency_matrix(len(units), left, right)
    w = units["households"].to_numpy(dtype=np.int64)
    xy = units[["x", "y"]].to_numpy(dtype=float)
    budget = community_budget(time_limit, len(units))
    extra_notes: list[str] = []

    # Barriers cut the community into blocks; a block that cannot hold a whole
    # number of grids is merged with its neighbour across the barrier.
    crossing, crossed_names = barrier_crossings(xy, left, right, barriers)
    blocked, n_blocks, merged = full, 1, 0
    if crossing.any() and int(w.sum()) >= rules.min_households:
        keep_link, n_blocks, merged = _feasible_blocks(len(units), left, right, crossing, w, rules)
        blocked = adjacency_matrix(len(units), left[keep_link], right[keep_link])
        if merged:
            extra_notes.append(
                f"{merged} block(s) between barriers could not hold a whole number of grids "
                "and were joined to a neighbouring block across a barrier"
            )
    _, block = csgraph.connected_components(blocked, directed=False)
    if n_blocks == 1:
        block = np.zeros(len(units), dtype=np.int64)  # pieces without barriers: one solve
    area = shapely.area(geoms)
    perimeter = shapely.length(geoms)
    shared = adjacency_matrix(len(units), left, right, weights=lengths)
    separate = _separate_groups(units, len(units), left, right, crossing)
    own = own_grid_kinds(units, rules)
    kwargs = {"rules": rules, "seed": seed, "workers": workers, "prove": prove}
    parts = []
    for b in range(int(block.max()) + 1):
        nodes = np.flatnonzero(block == b)
        share = budget * len(nodes) / len(units)
        parts.append(
            _solve_block(
                units.iloc[nodes], blocked[nodes][:, nodes], w[nodes], xy[nodes],
                keep_compounds=keep_compounds, time_limit=share, area=area[nodes],
                separate=separate[nodes], own_status=own[nodes], perimeter=perimeter[nodes],
                shared=shared[nodes][:, nodes], **kwargs,
            )
        )  # fmt: skip
    result = combine_partitions(
        parts, [np.flatnonzero(block == b) for b in range(len(parts))], len(units)
    )
    graph = blocked
    if blocked is not full and not meets_bounds(result, int(w.sum()), rules):
        extra_notes.append(
            "the bounds cannot be met without crossing a barrier; the grids were drawn "
            "across barriers where needed"
        )
        graph = full
        result = _solve_block(units, full, w, xy, keep_compounds=keep_compounds,
                              time_limit=budget, area=area, separate=separate,
                              own_status=own, perimeter=perimeter, shared=shared,
                              **kwargs)  # fmt: skip
    if graph is blocked and n_blocks > 1 and result.bound is not None:
        extra_notes.append(
            f"the barriers cut the community into {n_blocks} blocks solved separately; "
            "the bound and gap are for plans that keep to them"
        )
    if keep_compounds:
        extra_notes += _compound_split_notes(units, result.labels, rules)
    inside = crossing & (result.labels[left] == result.labels[right])
    if inside.any():
        names = sorted({crossed_names[k] for k in np.flatnonzero(inside)} - {""})
        extra_notes.append(
            f"{int(inside.sum())} neighbour link(s) inside grids cross a barrier"
            + (f" ({', '.join(names)})" if names else "")
        )
    centroids = shapely.get_coordinates(shapely.centroid(geoms))
    seq = number_grids(result.labels, centroids, shapely.area(geoms))
    status_by_seq = {
        int(s): result.grid_status[int(lab)] for s, lab in zip(seq, result.labels, strict=True)
    }
    notes = (
        _oversize_notes(units, rules)
        + [n for n in result.notes if "above max_households" not in n]
        + extra_notes
    )
    total = int(w.sum())
    if total < rules.min_households:
        notes.insert(
            0,
            f"community {ids[0]} has {total} households; a grid needs at least "
            f"{rules.min_households} (`min_households`). Merge it with a neighbour or lower "
            "`min_households`",
        )
    log.info(
        "community %s: %d grids from %d units in %.1f s (%s)",
        ids[0],
        len(status_by_seq),
        len(units),
        result.wall_time,
        result.solver_status,
    )
    return CommunityPlan(
        community_id=str(ids[0]),
        labels=pd.Series(seq, index=units.index, name="grid_seq"),
        grid_status=dict(sorted(status_by_seq.items())),
        solver_status=result.solver_status,
        objective=result.objective,
        bound=result.bound,
        gap=result.gap,
        wall_time=result.wall_time,
        deterministic_time=result.deterministic_time,
        notes=notes,
        bounds_unreachable=result.bounds_unreachable,
    )
