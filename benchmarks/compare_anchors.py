"""Benchmark: gridkit against the tools a GIS analyst would otherwise use.

Usage::

    python benchmarks/compare_anchors.py [--dataset sample|singapore|points|providence|large]
        [--limit N]
        [--methods gridkit,spopt,gerrychain] [--seed 0] [--json PATH|-]

On the same units (gridkit's buildings with their Voronoi cells) and the same rook
adjacency, every community is split by

- **gridkit**: :func:`gridkit.partition_community` with its default rules and time
  limit and the CP-SAT workers ``gridkit partition`` uses, building by building;
- **spopt**: ``MaxPHeuristic`` with ``threshold`` = 400 households (the minimum;
  max-p has no maximum) and the building coordinates as the similarity attributes;
- **gerrychain**: ``recursive_tree_part`` with ``k = round(total / 600)`` parts and
  the population tolerance that keeps ``target * (1 ± epsilon)`` inside [400, 800].

Per method it prints wall and CPU time (the method only, summed over communities;
units and adjacency are built once beforehand and reported apart), grids, share of
grids within [400, 800] (among feasible communities, and among all), whether every
grid is contiguous, mean Polsby-Popper compactness of the dissolved grids, cut
edges and failures.  Machines are noisy: compare runs made on the same machine at
the same time.  See docs/benchmarks.md.

Needs the optional ``bench`` extra: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import signal
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph

import gridkit as gk
import gridkit.pipeline as gk_pipeline
from gridkit.datasets.synthetic import get_path
from gridkit.errors import GridkitWarning
from gridkit.units.adjacency import adjacency_matrix, rook_pairs

MIN_HOUSEHOLDS = 400
MAX_HOUSEHOLDS = 800
TARGET_HOUSEHOLDS = 600
METHODS = ("gridkit", "spopt", "gerrychain")
DATASETS = ("sample", "singapore", "points", "providence", "large")
#: Households of the generated ``points`` community (one row per household).
POINT_HOUSEHOLDS = 10_000
#: People per household in Providence (census population / 2.5 = households).
PROVIDENCE_PERSONS = 2.5
PROVIDENCE = "us_providence_blocks"
#: ``../shared/data`` next to the repository checkout.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SINGAPORE = "sg_hdb_subzones"
INSTALL_HINT = "pip install -e '.[bench]'"
#: spopt ``max_iterations_construction`` (spopt's own default is 99).
SPOPT_ITERATIONS = 10
#: GerryChain spanning trees per cut, and fresh seeds per piece, before giving up.
GERRYCHAIN_ATTEMPTS = 1000
GERRYCHAIN_RETRIES = 3
#: Seconds before one method call on one community counts as failed.
CALL_TIMEOUT = 120.0


# --------------------------------------------------------------------------- instances


@dataclass
class Community:
    """One community, ready for every method: the same units and the same adjacency.

    Attributes
    ----------
    community_id
        The community.
    units
        Its units (cells in a metric CRS) with a fresh positional index 0..n-1.
    left, right
        Rook neighbour pairs (positions into ``units``), as gridkit computes them.
    infeasible
        ``None``, or why no plan can keep every grid within the bounds:
        ``below_min``, ``oversize_building`` or ``bounds_unreachable``.
    multi_part
        Whether the community polygon itself is in several parts (a grid holding an
        island without buildings is then not one polygon, whatever the method).
    """

    community_id: str
    units: gpd.GeoDataFrame
    left: np.ndarray
    right: np.ndarray
    infeasible: str | None
    multi_part: bool

    @property
    def weights(self) -> np.ndarray:
        """Households per unit."""
        return self.units["households"].to_numpy(dtype=np.int64)

    @property
    def adjacency(self) -> sparse.csr_matrix:
        """Symmetric adjacency matrix of the units."""
        return adjacency_matrix(len(self.units), self.left, self.right)

    @property
    def one_grid(self) -> bool:
        """Whether every method can only make one grid of this community.

        Fewer households than the minimum, or fewer than twice the minimum in one
        connected piece (two grids would need ``2 * min``): gridkit, max-p and
        GerryChain all return the whole community, so none of them is called.
        """
        total = int(self.weights.sum())
        if total < MIN_HOUSEHOLDS:
            return True
        pieces = csgraph.connected_components(self.adjacency, directed=False)[0]
        return total < 2 * MIN_HOUSEHOLDS and pieces == 1


def load_sample() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The bundled synthetic sample district (34 communities, about 65,000 households).

    Returns
    -------
    boundaries, households
        As :func:`gridkit.read_boundaries` and :func:`gridkit.read_households` return them.
    """
    return gk.read_boundaries(get_path("communities")), gk.read_households(get_path("buildings"))


def load_singapore(shared: Path) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """URA Master Plan 2019 subzones holding HDB blocks, and the blocks as buildings.

    Parameters
    ----------
    shared
        The ``shared/data`` folder holding ``sg_hdb_subzones``.

    Returns
    -------
    boundaries, households
        Subzones with HDB (``SUBZONE_C`` as the community id) and one row per block
        (``blk_no`` + ``street`` as the building id, ``total_dwelling_units`` as
        households, ``SUBZONE_C`` kept as ``subzone``).

    Raises
    ------
    SystemExit
        When the data folder is absent.
    """
    folder = shared / SINGAPORE
    if not folder.is_dir():
        raise SystemExit(
            f"error: {folder} is missing; the Singapore data lives in ../shared/data next to "
            "the repository checkout (pass --shared-data PATH), or use --dataset sample."
        )
    table = pd.read_csv(folder / "hdb_residential_blocks.csv", dtype=str)
    table["building_id"] = table["blk_no"] + " " + table["street"]
    table["subzone"] = table["SUBZONE_C"]
    table.attrs["source"] = str(folder / "hdb_residential_blocks.csv")
    households = gk.read_households(
        table,
        households_col="total_dwelling_units",
        building_col="building_id",
        lon_col="lng",
        lat_col="lat",
        input_crs="wgs84",
    )
    with warnings.catch_warnings():
        # MP2019 has a few thin border slivers from reprojection; the reader warns about them.
        warnings.simplefilter("ignore", GridkitWarning)
        boundaries = gk.read_boundaries(
            folder / "mp2019_subzones.geojson",
            id_col="SUBZONE_C",
            name_col="SUBZONE_N",
            street_col="PLN_AREA_N",
        )
    boundaries = boundaries[boundaries["hdb_units"] > 0].reset_index(drop=True)
    if "subzone" not in households:  # the reader dropped the extra column
        households["subzone"] = table["subzone"].to_numpy()
    return boundaries, households


def load_dataset(
    name: str, *, limit: int | None, shared: Path
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Boundaries and households of a dataset, cut to its first ``limit`` communities.

    Parameters
    ----------
    name
        {"sample", "singapore", "points"}
    limit
        Keep the first ``limit`` communities (file order) and their households; all if None.
    shared
        The ``shared/data`` folder (Singapore only).

    Returns
    -------
    boundaries, households
    """
    if name == "sample":
        boundaries, households = load_sample()
        hint = "community_id"
    elif name == "points":
        return load_points()
    else:
        boundaries, households = load_singapore(shared)
        hint = "subzone"
    if limit is not None:
        boundaries = boundaries.iloc[:limit].reset_index(drop=True)
        keep = households[hint].astype(str).isin(set(boundaries["community_id"]))
        households = households[keep.to_numpy()].reset_index(drop=True)
    return boundaries, households


def load_points(households: int = POINT_HOUSEHOLDS) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """One generated community given as one row per household, without building ids.

    :func:`gridkit.datasets.make_point_community`; gridkit groups the points into
    buildings (points within 5 m of each other, ``gridkit.units.MERGE_DISTANCE``) and
    every method gets those buildings as its units.
    """
    community, points = gk.datasets.make_point_community(households, seed=0)
    return gk.read_boundaries(community), gk.read_households(points)


def providence_units(shared: Path, limit: int | None = None) -> gpd.GeoDataFrame:
    """Providence's 2010 census blocks as units, its 15 wards as communities.

    Every block is a unit whose cell is the block itself (the blocks tile the city),
    with ``round(population / 2.5)`` households; the ward is its community.  In EPSG:32619.
    """
    folder = shared / PROVIDENCE
    if not folder.is_dir():
        raise SystemExit(
            f"error: {folder} is missing; the Providence blocks live in ../shared/data next to "
            "the repository checkout (pass --shared-data PATH), or use --dataset sample."
        )
    blocks = gpd.read_file(f"zip://{folder / 'Providence_blocks.zip'}!Providence_blocks.shp")
    blocks = blocks.to_crs(32619)
    wards = sorted(blocks["WARD"].astype(int).unique())
    if limit is not None:
        wards = wards[:limit]
        blocks = blocks[blocks["WARD"].astype(int).isin(wards)]
    blocks = blocks.sort_values(["WARD", "GEOID10"]).reset_index(drop=True)
    geoms = shapely.make_valid(blocks.geometry.to_numpy())
    points = shapely.get_coordinates(shapely.point_on_surface(geoms))
    households = np.rint(blocks["TOTPOP"].astype(float) / PROVIDENCE_PERSONS).astype(np.int64)
    return gpd.GeoDataFrame(
        {
            "unit_id": np.arange(len(blocks), dtype=np.int64),
            "community_id": "ward " + blocks["WARD"].astype(int).astype(str).str.zfill(2),
            "households": households.to_numpy(),
            "rows": 1,
            "building_id": blocks["GEOID10"].astype(str).to_numpy(),
            "first_household_id": blocks["GEOID10"].astype(str).to_numpy(),
            "compound": None,
            "x": points[:, 0],
            "y": points[:, 1],
        },
        geometry=geoms,
        crs=blocks.crs,
    )


def large_units() -> gpd.GeoDataFrame:
    """The ~900-building community of ``benchmarks/large_community.py --no-roads``.

    Its one building above 800 households (the sample's 950-household tower) is left
    out, with its cell: no anchor can place it (GerryChain fails on it), and with it
    the community would count as infeasible for every method.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from large_community import merged_community

    units, _ = merged_community(900, 0)
    units = units[units["households"] <= MAX_HOUSEHOLDS].reset_index(drop=True)
    units["unit_id"] = np.arange(len(units), dtype=np.int64)
    return units


def instances_from_units(units: gpd.GeoDataFrame) -> list[Community]:
    """Communities of units built elsewhere (cells given), in order of first appearance."""
    return [
        community_instance(
            str(cid),
            group.reset_index(drop=True),
            shapely.get_num_geometries(shapely.union_all(group.geometry.to_numpy())) > 1,
        )
        for cid, group in units.groupby("community_id", sort=False)
    ]


def community_instance(cid: str, units: gpd.GeoDataFrame, multi_part: bool) -> Community:
    """One community as every method sees it: its units and their rook adjacency."""
    left, right, _ = rook_pairs(units.geometry.to_numpy())
    adj = adjacency_matrix(len(units), left, right)
    return Community(
        community_id=cid,
        units=units,
        left=left,
        right=right,
        infeasible=infeasible_reason(units["households"].to_numpy(np.int64), adj),
        multi_part=multi_part,
    )


def dataset_instances(
    name: str, *, limit: int | None, shared: Path
) -> tuple[list[Community], int]:
    """Every community of a dataset as the methods see it, and the rows outside all."""
    if name == "providence":
        return instances_from_units(providence_units(shared, limit)), 0
    if name == "large":
        return instances_from_units(large_units()), 0
    boundaries, households = load_dataset(name, limit=limit, shared=shared)
    return build_instances(boundaries, households)


def infeasible_reason(weights: np.ndarray, adj: sparse.csr_matrix) -> str | None:
    """Why no plan of this community can keep every grid in the bounds, or None.

    The same tests gridkit reports (``infeasible_reason`` in ``report.json``), made
    on the instance before any method runs, so every method is judged on the same
    communities: fewer households than the minimum; a building above the maximum;
    a connected piece of the adjacency graph below the minimum; a bin-packing
    relaxation (gridkit's, contiguity ignored) proving that no grouping fits; or
    a unit whose light hanging pieces must share its grid and overflow it
    (:func:`gridkit.partition.cut_unit_proof`).
    """
    total = int(weights.sum())
    if total < MIN_HOUSEHOLDS:
        return "below_min"
    if (weights > MAX_HOUSEHOLDS).any():
        return "oversize_building"
    n_pieces, piece = csgraph.connected_components(adj, directed=False)
    for k in range(n_pieces):
        w = weights[piece == k]
        if int(w.sum()) < MIN_HOUSEHOLDS:
            return "bounds_unreachable"
        if int(w.sum()) > MAX_HOUSEHOLDS and _packing_reachable(w) is False:
            return "bounds_unreachable"
        nodes = np.flatnonzero(piece == k)
        rules = gk.GridRules(min_households=MIN_HOUSEHOLDS, max_households=MAX_HOUSEHOLDS)
        if gk.partition.cut_unit_proof(adj[nodes][:, nodes], w, rules) is not None:
            return "bounds_unreachable"
    return None


def _greedy_packing(weights: np.ndarray) -> bool:
    """Whether largest-first packing into some number of grids meets the bounds.

    A quick sufficient test (True proves the bounds reachable ignoring contiguity),
    so the exact relaxation runs only for the few awkward communities.

    Examples
    --------
    >>> _greedy_packing(np.array([300, 300, 300, 300])), _greedy_packing(np.array([300] * 3))
    (True, False)
    """
    w = np.sort(np.asarray(weights, dtype=np.int64))[::-1]
    total = int(w.sum())
    counts = range(max(1, -(-total // MAX_HOUSEHOLDS)), total // MIN_HOUSEHOLDS + 1)
    for k in sorted(counts, key=lambda k: abs(k - total / TARGET_HOUSEHOLDS)):
        loads = [(0, g) for g in range(k)]
        for x in w.tolist():
            load, g = heapq.heappop(loads)
            heapq.heappush(loads, (load + x, g))
        if min(loads)[0] >= MIN_HOUSEHOLDS and max(loads)[0] <= MAX_HOUSEHOLDS:
            return True
    return False


def _packing_reachable(weights: np.ndarray) -> bool | None:
    """Whether the bounds can be met ignoring contiguity; None when not decided.

    A greedy packing first, then gridkit's exact bin-packing relaxation (private in
    gridkit; skipped if it moves).
    """
    if _greedy_packing(weights):
        return True
    try:
        from gridkit.solver.cpsat import bounds_reachable
    except ImportError:  # pragma: no cover - gridkit moved it
        return None
    return bounds_reachable(
        weights, min_households=MIN_HOUSEHOLDS, max_households=MAX_HOUSEHOLDS, time_limit=1.0
    )


def build_instances(
    boundaries: gpd.GeoDataFrame, households: gpd.GeoDataFrame
) -> tuple[list[Community], int]:
    """Units and rook adjacency of every community, built once for all methods.

    Returns
    -------
    communities, rows_outside
        One :class:`Community` per community with households (boundary order), and the
        household rows that lie outside every community (left out, as gridkit does).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridkitWarning)  # rows outside: counted below
        built = gk.build_units(boundaries, households)
    rows_outside = int((built.membership["reason"] != "").sum())
    shapes = built.communities.set_index("community_id").geometry
    communities = [
        community_instance(
            str(cid),
            group.reset_index(drop=True),
            shapely.get_num_geometries(shapes.loc[cid]) > 1,
        )
        for cid, group in built.units.groupby("community_id", sort=False)
    ]
    order = {cid: i for i, cid in enumerate(boundaries["community_id"].astype(str))}
    communities.sort(key=lambda c: order[c.community_id])
    return communities, rows_outside


# --------------------------------------------------------------------------- methods


def run_gridkit(
    community: Community,
    *,
    seed: int,
    keep_compounds: bool = False,
    time_limit: float | None = None,
    balance_weight: float | None = None,
) -> tuple[np.ndarray, dict]:
    """gridkit's :func:`~gridkit.partition_community`; grid label per unit, and its proof.

    The proof is the solver status (``OPTIMAL`` when proved) and the relative gap
    between the plan and its proven bound; the anchors prove nothing.

    Default rules (or ``balance_weight``), the default time limit (or
    ``time_limit``), the CP-SAT workers per community that ``gridkit partition``
    uses (``gridkit.pipeline.WORKERS``), and by default
    building by building (``keep_compounds=False``): the anchors know nothing of
    compounds, so every method solves the same problem.  ``keep_compounds=True``
    is gridkit's own default when the units carry a ``compound`` column (the
    sample does): every compound whole where the bounds allow it.
    """
    extra = {"workers": gk_pipeline.WORKERS} if hasattr(gk_pipeline, "WORKERS") else {}
    if time_limit is not None:
        extra["time_limit"] = time_limit
    if balance_weight is not None:
        extra["rules"] = gk.GridRules(balance_weight=balance_weight)
    plan = gk.partition_community(
        community.units, seed=seed, keep_compounds=keep_compounds, **extra
    )
    return plan.labels.to_numpy(dtype=np.int64), {"status": plan.solver_status, "gap": plan.gap}


def spopt_weights(community: Community):
    """The adjacency as a libpysal ``W`` over unit positions 0..n-1."""
    from libpysal.weights import W

    neighbours: dict[int, list[int]] = {i: [] for i in range(len(community.units))}
    for a, b in zip(community.left.tolist(), community.right.tolist(), strict=True):
        neighbours[a].append(b)
        neighbours[b].append(a)
    return W(neighbours, silence_warnings=True)


def run_spopt(community: Community, *, seed: int, iterations: int = SPOPT_ITERATIONS) -> np.ndarray:
    """spopt's ``MaxPHeuristic``: regions of at least 400 households, similar by x/y.

    ``threshold`` is the minimum; max-p has no maximum, so regions above 800 show in
    the share of grids in bounds.  ``iterations`` is ``max_iterations_construction``
    (spopt's default, 99, takes about a minute on a community of 25 buildings here);
    ``top_n`` = 2 and ``max_iterations_sa`` keeps spopt's default.  spopt draws from
    NumPy's global generator, which is seeded here for reproducible runs.
    """
    from spopt.region import MaxPHeuristic

    frame = gpd.GeoDataFrame(
        community.units[["households", "x", "y"]].reset_index(drop=True),
        geometry=community.units.geometry.to_numpy(),
        crs=community.units.crs,
    )
    weights = spopt_weights(community)
    np.random.seed(seed)  # spopt draws from the global generator
    model = MaxPHeuristic(
        frame,
        weights,
        ["x", "y"],
        "households",
        MIN_HOUSEHOLDS,
        top_n=2,
        max_iterations_construction=iterations,
    )
    with warnings.catch_warnings():
        # spopt 0.7 on pandas 3: inplace drop (Pandas4Warning), FutureWarnings.
        for category in (FutureWarning, DeprecationWarning, RuntimeWarning):
            warnings.simplefilter("ignore", category)
        model.solve()
    labels = np.asarray(model.labels_, dtype=np.int64)
    if len(labels) != len(community.units) or (labels <= 0).any():
        raise RuntimeError("MaxPHeuristic left units without a region")
    return labels


def gerrychain_parts(total: int) -> tuple[int, float, float]:
    """Parts, ideal size and tolerance for a piece of ``total`` households.

    ``k = max(1, round(total / 600))``; when ``total / k`` falls outside [400, 800]
    (only for k = 1), ``k`` moves to the nearest count that fits.  ``epsilon`` is the
    largest tolerance that keeps ``ideal * (1 ± epsilon)`` inside [400, 800].

    Examples
    --------
    >>> k, ideal, epsilon = gerrychain_parts(1200)
    >>> k, ideal, round(epsilon, 4)
    (2, 600.0, 0.3333)
    >>> k, ideal, epsilon = gerrychain_parts(850)
    >>> k, ideal, round(epsilon, 4)
    (2, 425.0, 0.0588)
    """
    k = max(1, round(total / TARGET_HOUSEHOLDS))
    if total / k > MAX_HOUSEHOLDS:
        k = math.ceil(total / MAX_HOUSEHOLDS)
    elif total / k < MIN_HOUSEHOLDS:
        k = max(1, total // MIN_HOUSEHOLDS)
    ideal = total / k
    epsilon = max(0.0, min(MAX_HOUSEHOLDS / ideal - 1, 1 - MIN_HOUSEHOLDS / ideal))
    return k, ideal, epsilon


def run_gerrychain(
    community: Community,
    *,
    seed: int,
    attempts: int = GERRYCHAIN_ATTEMPTS,
    retries: int = GERRYCHAIN_RETRIES,
) -> np.ndarray:
    """GerryChain's ``recursive_tree_part`` on each connected piece of the adjacency.

    A spanning-tree method needs a connected graph, so every connected piece is cut
    on its own (a piece of at most 800 households is one grid).  Each call gets
    ``attempts`` spanning trees per cut and ``retries`` fresh seeds before the
    community counts as failed.
    """
    import networkx as nx
    from gerrychain import Graph
    from gerrychain.partition import recursive_tree_part
    from gerrychain.tree import bipartition_tree

    w = community.weights
    n_pieces, piece = csgraph.connected_components(community.adjacency, directed=False)
    graph = nx.Graph()
    graph.add_nodes_from((i, {"households": int(w[i])}) for i in range(len(w)))
    graph.add_edges_from(zip(community.left.tolist(), community.right.tolist(), strict=True))
    labels = np.full(len(w), -1, dtype=np.int64)
    cut = partial(bipartition_tree, max_attempts=attempts, warn_attempts=attempts + 1)
    for p in range(n_pieces):
        nodes = np.flatnonzero(piece == p)
        k, ideal, epsilon = gerrychain_parts(int(w[nodes].sum()))
        if k == 1:
            labels[nodes] = labels.max() + 1
            continue
        sub = Graph.from_networkx(graph.subgraph(nodes.tolist()).copy())
        for attempt in range(retries):
            try:
                flips = recursive_tree_part(
                    sub,
                    list(range(k)),
                    ideal,
                    "households",
                    epsilon,
                    bipartition_tree_fn=cut,
                    rng=random.Random(seed + attempt),
                )
                break
            except Exception:  # RuntimeError, BalanceError, ...: try a fresh seed
                if attempt == retries - 1:
                    raise
        base = labels.max() + 1
        for node, part in flips.items():
            labels[int(node)] = base + int(part)
    if (labels < 0).any():
        raise RuntimeError("recursive_tree_part left units without a part")
    return labels


#: A runner returns the labels, or the labels and a proof (gridkit).
RUNNERS: dict[str, Callable[..., np.ndarray | tuple[np.ndarray, dict]]] = {
    "gridkit": run_gridkit,
    "spopt": run_spopt,
    "gerrychain": run_gerrychain,
}


@dataclass
class Outcome:
    """One method on one community: labels (None when it failed), wall and CPU seconds, error.

    ``proof``: the solver status and gap of a method that proves bounds (gridkit), else None.
    """

    labels: np.ndarray | None
    seconds: float
    cpu_seconds: float
    error: str = ""
    proof: dict | None = None


class CallTimeout(Exception):
    """A method ran past the per-community time guard."""


@contextmanager
def time_guard(seconds: float | None):
    """Raise :class:`CallTimeout` in this (main) thread after ``seconds`` of wall time.

    spopt 0.7's simulated annealing can loop for ever, so a pure-Python guard is
    needed; a SIGALRM handler runs between bytecodes.  No guard where SIGALRM does
    not exist (Windows) or when ``seconds`` is None.
    """
    if not seconds or not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum, frame):
        raise CallTimeout(f"no answer after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_method(
    method: str,
    community: Community,
    *,
    seed: int,
    timeout: float | None = None,
    options: dict | None = None,
) -> Outcome:
    """Time one method on one community; failures are caught and reported, never fatal.

    A community that can only be one grid (:attr:`Community.one_grid`) is one grid
    for every method, without a call (0 s): spopt refuses one below the threshold
    and can loop forever on one below twice the threshold, GerryChain has nothing to
    cut, and gridkit returns the whole community.  ``options`` are extra keyword
    arguments of the method's runner; ``timeout`` guards each call.
    """
    if community.one_grid:
        return Outcome(np.zeros(len(community.units), dtype=np.int64), 0.0, 0.0)
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        with time_guard(timeout):
            result = RUNNERS[method](community, seed=seed, **(options or {}))
        labels, proof = result if isinstance(result, tuple) else (result, None)
        error = ""
    except Exception as exc:  # an anchor that cannot find a plan
        labels, proof, error = None, None, f"{type(exc).__name__}: {exc}"
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return Outcome(labels, seconds, cpu, error, proof)


# --------------------------------------------------------------------------- metrics


def polsby_popper(geoms: np.ndarray) -> np.ndarray:
    """Polsby-Popper compactness ``4 pi A / P**2`` (1 for a circle).

    Examples
    --------
    >>> round(float(polsby_popper(np.array([shapely.box(0, 0, 1, 1)]))[0]), 4)
    0.7854
    """
    area = shapely.area(geoms)
    perimeter = shapely.length(geoms)
    safe = np.where(perimeter > 0, perimeter, 1.0)
    return np.where(perimeter > 0, 4 * math.pi * area / safe**2, 0.0)


def dissolve(cells: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Union the cells of each grid (labels 0..k-1 after densifying); cells form a coverage."""
    _, dense = np.unique(labels, return_inverse=True)
    out = np.empty(dense.max() + 1, dtype=object)
    for g in range(len(out)):
        members = cells[dense == g]
        merged = shapely.coverage_union_all(members) if len(members) > 1 else members[0]
        out[g] = merged if shapely.is_valid(merged) else shapely.union_all(members)
    return out


def community_figures(community: Community, labels: np.ndarray) -> dict:
    """Counts and sums of one community's plan, ready to be added up.

    Graph contiguity: a grid's units are connected through the shared adjacency.
    Polygon contiguity (:func:`gridkit.checks.is_contiguous`): its dissolved cells
    are one polygon; skipped in a community that is itself in several parts.
    """
    _, dense = np.unique(labels, return_inverse=True)
    k = int(dense.max()) + 1
    loads = np.bincount(dense, weights=community.weights, minlength=k)
    inside = dense[community.left] == dense[community.right]
    internal = adjacency_matrix(len(dense), community.left[inside], community.right[inside])
    _, component = csgraph.connected_components(internal, directed=False)
    pieces = pd.Series(component).groupby(dense).nunique().to_numpy()
    grids = dissolve(community.units.geometry.to_numpy(), dense)
    single = gk.checks.is_contiguous(gpd.GeoSeries(grids)).to_numpy()
    in_bounds = int(((loads >= MIN_HOUSEHOLDS) & (loads <= MAX_HOUSEHOLDS)).sum())
    return {
        "grids": k,
        "in_bounds": in_bounds,
        "above_max": int((loads > MAX_HOUSEHOLDS).sum()),
        "below_min": int((loads < MIN_HOUSEHOLDS).sum()),
        "not_connected": int((pieces > 1).sum()),
        "not_one_polygon": 0 if community.multi_part else int((~single).sum()),
        "pp_sum": float(polsby_popper(grids).sum()),
        "cut_edges": int((~inside).sum()),
    }


@dataclass
class Summary:
    """One method over all communities: the figures of one table row."""

    method: str
    communities: int = 0
    failed: dict[str, dict] = field(default_factory=dict)
    failed_feasible: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    grids: int = 0
    in_bounds: int = 0
    feasible_grids: int = 0
    feasible_in_bounds: int = 0
    above_max: int = 0
    below_min: int = 0
    not_connected: int = 0
    not_one_polygon: int = 0
    pp_sum: float = 0.0
    cut_edges: int = 0
    #: communities called with a proof (gridkit), those proved optimal, and their gaps
    with_proof: int = 0
    proved: int = 0
    gaps: list[float] = field(default_factory=list)
    per_community: dict[str, dict] = field(default_factory=dict)
    #: processes the method ran on, and then the elapsed wall time of the whole run
    jobs: int = 1
    elapsed: float | None = None

    def add(self, community: Community, outcome: Outcome) -> None:
        """Add one community's outcome (a failure's time is kept apart, with its error)."""
        self.communities += 1
        if outcome.labels is None:
            self.failed[community.community_id] = {
                "error": outcome.error,
                "wall_s": round(outcome.seconds, 2),
                "infeasible": community.infeasible,
            }
            self.failed_feasible += community.infeasible is None
            return
        self.seconds += outcome.seconds
        self.cpu_seconds += outcome.cpu_seconds
        figures = community_figures(community, outcome.labels)
        self.per_community[community.community_id] = {
            "wall_s": round(outcome.seconds, 3),
            "cpu_s": round(outcome.cpu_seconds, 3),
            "grids": figures["grids"],
            "in_bounds": figures["in_bounds"],
            "mean_polsby_popper": round(figures["pp_sum"] / figures["grids"], 4),
            "cut_edges": figures["cut_edges"],
        }
        if outcome.proof is not None:
            self.with_proof += 1
            self.proved += outcome.proof["status"] == "OPTIMAL"
            if outcome.proof["gap"] is not None:
                self.gaps.append(outcome.proof["gap"])
            self.per_community[community.community_id].update(
                solver_status=outcome.proof["status"], gap=outcome.proof["gap"]
            )
        if community.infeasible is None:
            self.feasible_grids += figures["grids"]
            self.feasible_in_bounds += figures["in_bounds"]
        for key, value in figures.items():
            setattr(self, key, getattr(self, key) + value)

    def as_dict(self) -> dict:
        """JSON-ready figures."""
        return {
            "method": self.method,
            "communities": self.communities,
            "failed": len(self.failed),
            "failed_feasible": self.failed_feasible,
            "failures": dict(self.failed),
            "failed_wall_s": round(sum(f["wall_s"] for f in self.failed.values()), 2),
            "wall_s": round(self.seconds if self.elapsed is None else self.elapsed, 2),
            "cpu_s": round(self.cpu_seconds, 2),
            "jobs": self.jobs,
            "grids": self.grids,
            "pct_in_bounds_where_feasible": pct_floor(self.feasible_in_bounds, self.feasible_grids),
            "pct_in_bounds_all": pct_floor(self.in_bounds, self.grids),
            "grids_above_max": self.above_max,
            "grids_below_min": self.below_min,
            "all_contiguous": self.not_connected == 0 and self.not_one_polygon == 0,
            "grids_not_connected": self.not_connected,
            "grids_not_one_polygon": self.not_one_polygon,
            "mean_polsby_popper": round(self.pp_sum / self.grids, 4) if self.grids else None,
            "cut_edges": self.cut_edges,
            "communities_with_proof": self.with_proof,
            "proved_optimal": self.proved,
            "mean_gap": round(float(np.mean(self.gaps)), 4) if self.gaps else None,
            "max_gap": round(max(self.gaps), 4) if self.gaps else None,
            "communities_detail": dict(self.per_community),
        }


def pct_floor(part: int, whole: int) -> float:
    """``100 * part / whole`` rounded down to 2 decimals, so only all of them reads 100.0.

    Examples
    --------
    >>> pct_floor(19999, 20000), pct_floor(3, 3), pct_floor(0, 0)
    (99.99, 100.0, 100.0)
    """
    if whole == 0:
        return 100.0
    return (10_000 * int(part) // int(whole)) / 100


# --------------------------------------------------------------------------- report


def describe(communities: list[Community], rows_outside: int, setup_s: float) -> dict:
    """Figures of the instance every method sees."""
    reasons: dict[str, int] = {}
    for c in communities:
        if c.infeasible:
            reasons[c.infeasible] = reasons.get(c.infeasible, 0) + 1
    return {
        "communities": len(communities),
        "feasible_communities": sum(c.infeasible is None for c in communities),
        "infeasible": dict(sorted(reasons.items())),
        "one_grid_communities": sum(c.one_grid for c in communities),
        "units": sum(len(c.units) for c in communities),
        "households": int(sum(int(c.weights.sum()) for c in communities)),
        "adjacency_edges": sum(len(c.left) for c in communities),
        "rows_outside": rows_outside,
        "setup_s": round(setup_s, 2),
    }


def format_table(rows: list[dict]) -> str:
    """The method rows as a fixed-width text table."""
    header = (
        f"{'method':<11}{'wall s':>8}{'cpu s':>8}{'grids':>7}{'in bounds %':>13}"
        f"{'(all) %':>9}{'<400':>6}{'>800':>6}{'contiguous':>12}{'mean PP':>9}"
        f"{'cut edges':>11}{'failed':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        broken = r["grids_not_connected"] + r["grids_not_one_polygon"]
        contiguous = "yes" if r["all_contiguous"] else f"no ({broken})"
        pp = "-" if r["mean_polsby_popper"] is None else f"{r['mean_polsby_popper']:.4f}"
        name = r["method"] if r.get("jobs", 1) == 1 else f"{r['method']} x{r['jobs']}"
        lines.append(
            f"{name:<11}{r['wall_s']:>8.1f}{r['cpu_s']:>8.1f}{r['grids']:>7}"
            f"{r['pct_in_bounds_where_feasible']:>13.2f}{r['pct_in_bounds_all']:>9.2f}"
            f"{r['grids_below_min']:>6}{r['grids_above_max']:>6}{contiguous:>12}{pp:>9}"
            f"{r['cut_edges']:>11}{r['failed']:>8}"
        )
    return "\n".join(lines)


def format_failures(rows: list[dict]) -> str:
    """One line per community a method returned no plan for, with the error."""
    lines = []
    for r in rows:
        for cid, failure in r["failures"].items():
            why = failure["infeasible"] or "feasible"
            lines.append(
                f"{r['method']} failed on {cid} ({why}) after {failure['wall_s']:.1f} s: "
                f"{failure['error']}"
            )
    return "\n".join(lines)


def format_proofs(rows: list[dict]) -> str:
    """One line per method that proves bounds: how many plans are proved optimal, and the gaps."""
    lines = []
    for r in rows:
        if not r["communities_with_proof"]:
            continue
        gaps = (
            f"gap mean {100 * r['mean_gap']:.1f} %, max {100 * r['max_gap']:.1f} %"
            if r["mean_gap"] is not None
            else "no gap known"
        )
        lines.append(
            f"{r['method']} proofs: {r['proved_optimal']} of {r['communities_with_proof']} "
            f"communities it partitioned proved optimal; {gaps} (plan vs proven bound)"
        )
    return "\n".join(lines)


def format_instance(name: str, info: dict) -> str:
    """One paragraph on the instance."""
    infeasible = ", ".join(f"{k} {v}" for k, v in info["infeasible"].items()) or "none"
    return (
        f"dataset {name}: {info['communities']} communities ({info['feasible_communities']} "
        f"feasible; infeasible: {infeasible}; one grid only: {info['one_grid_communities']}), "
        f"{info['units']} units, {info['households']} households, {info['adjacency_edges']} "
        f"rook edges; household rows outside every community: {info['rows_outside']}\n"
        f"units + adjacency built once in {info['setup_s']:.1f} s (not in the method times)"
    )


NOTES = """\
wall s / cpu s: the method calls only, summed over communities run one at a time
(gridkit: the CP-SAT workers `gridkit partition` uses, its own rook adjacency
included; anchors: W / graph built beforehand); cpu s is this process's CPU time,
steadier on a busy machine. A failed call's time is on its failure line instead.
gridkit xN (--jobs N): gridkit on N processes, as `gridkit partition --jobs N`; its
wall s is the elapsed time of the whole run, its cpu s the workers' summed.
in bounds %: grids with 400-800 households among feasible communities (all: every
grid). A community below 800 households in one piece can only be one grid: every
method gets it so, uncalled. contiguous: every grid's units connected through the
adjacency and its cells one polygon. failed: no plan returned (not in other columns).
proofs: only gridkit bounds its plans; the anchors give no certificate of quality."""


# --------------------------------------------------------------------------- CLI


def check_anchors(methods: list[str]) -> None:
    """Exit with the install command when an anchor's library is missing."""
    needed = {"spopt": ["spopt", "libpysal"], "gerrychain": ["gerrychain", "networkx"]}
    missing = []
    for method in methods:
        for module in needed.get(method, []):
            try:
                __import__(module)
            except ImportError:
                missing.append(module)
    if missing:
        raise SystemExit(
            f"error: {', '.join(sorted(set(missing)))} not installed; the anchors are in the "
            f"optional `bench` extra: {INSTALL_HINT}"
        )


def parse_methods(text: str) -> list[str]:
    """``gridkit,spopt`` → ``['gridkit', 'spopt']``, checked."""
    methods = [m.strip() for m in text.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise argparse.ArgumentTypeError(
            f"unknown method(s) {', '.join(unknown) or '(none)'}; expected a comma-separated "
            f"list of {', '.join(METHODS)}"
        )
    return list(dict.fromkeys(methods))


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset",
        choices=DATASETS,
        default="sample",
        help="the bundled sample district (default), Singapore HDB subzones, a generated "
        f"community of {POINT_HOUSEHOLDS:,} household points, Providence census blocks in "
        "15 wards, or the ~900-building community of large_community.py --no-roads",
    )
    parser.add_argument("--limit", type=int, default=None, help="first N communities only")
    parser.add_argument(
        "--methods", type=parse_methods, default=list(METHODS), help=",".join(METHODS)
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every method (default 0)")
    parser.add_argument(
        "--spopt-iterations",
        type=int,
        default=SPOPT_ITERATIONS,
        help=f"MaxPHeuristic max_iterations_construction (default {SPOPT_ITERATIONS}; "
        "spopt's own default is 99)",
    )
    parser.add_argument(
        "--gridkit-compounds",
        action="store_true",
        help="let gridkit keep compounds whole (its default with a compound column; the "
        "anchors cannot, so the problems differ)",
    )
    parser.add_argument(
        "--gridkit-time-limit",
        type=float,
        default=None,
        metavar="S",
        help="gridkit's --time-limit, deterministic seconds per 60 buildings (default: "
        "gridkit's default)",
    )
    parser.add_argument(
        "--gridkit-balance-weight",
        type=float,
        default=None,
        metavar="W",
        help="gridkit's balance weight (GridRules.balance_weight; default 1.0)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=CALL_TIMEOUT,
        help=f"seconds before one method call on one community counts as failed "
        f"(default {CALL_TIMEOUT:g}; 0: no guard)",
    )
    parser.add_argument(
        "--shared-data",
        type=Path,
        default=SHARED_DATA,
        help="folder holding sg_hdb_subzones (default ../shared/data next to the checkout)",
    )
    parser.add_argument(
        "--json", metavar="PATH", help="also write the figures as JSON (- for stdout)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="processes gridkit solves communities on, as `gridkit partition --jobs` (default "
        "1: one community at a time, like the anchors; its wall s is then the elapsed time)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per community")
    return parser


def _gridkit_call(payload: tuple) -> Outcome:
    """:func:`run_method` for gridkit on one community (runs in a worker process)."""
    community, seed, timeout, options = payload
    return run_method("gridkit", community, seed=seed, timeout=timeout, options=options)


def run_gridkit_jobs(
    communities: list[Community],
    jobs: int,
    *,
    seed: int,
    timeout: float | None,
    options: dict | None,
) -> tuple[list[Outcome], float]:
    """gridkit on every community over ``jobs`` local processes, as ``gridkit partition``.

    The processes and the order are the CLI's: :func:`gridkit.execute.open_backend`
    with ``jobs``, the communities with the most units first.  Returns each
    community's outcome (in the order of ``communities``; its CPU seconds are the
    worker's) and the elapsed wall time of the whole run.  The plans are the same as
    one at a time: gridkit's output does not depend on ``--jobs``.
    """
    from gridkit.pipeline.execute import Failure, Task, open_backend, run_communities

    order = sorted(range(len(communities)), key=lambda i: -len(communities[i].units))
    tasks = [
        Task(i, communities[i].community_id, communities[i].community_id,
             (communities[i], seed, timeout, options))
        for i in order
    ]
    outcomes: list[Outcome | None] = [None] * len(communities)
    started = time.perf_counter()
    with open_backend(None, jobs=jobs) as backend:
        for task, outcome in run_communities(_gridkit_call, tasks, backend):
            if isinstance(outcome, Failure):  # run_method catches the method's own errors
                outcome = Outcome(None, 0.0, 0.0, outcome.error)
            outcomes[task.index] = outcome
    return outcomes, time.perf_counter() - started


def run_all(
    communities: list[Community],
    methods: list[str],
    *,
    seed: int,
    timeout: float | None,
    options: dict,
    verbose: bool,
    jobs: int = 1,
) -> list[dict]:
    """Every method on every community; one summary row per method.

    With ``jobs`` > 1 gridkit runs first, over ``jobs`` processes
    (:func:`run_gridkit_jobs`), and its row's wall time is that run's elapsed time;
    the anchors, which have no parallel mode, then run one community at a time.
    """
    summaries = {m: Summary(m) for m in methods}
    parallel: dict[int, Outcome] = {}
    if jobs > 1 and "gridkit" in methods:
        outcomes, elapsed = run_gridkit_jobs(
            communities, jobs, seed=seed, timeout=timeout, options=options.get("gridkit")
        )
        parallel = dict(enumerate(outcomes))
        summaries["gridkit"].jobs, summaries["gridkit"].elapsed = jobs, elapsed
    for i, c in enumerate(communities):
        for method in methods:
            if method == "gridkit" and parallel:
                outcome = parallel[i]
            else:
                outcome = run_method(
                    method, c, seed=seed, timeout=timeout, options=options.get(method)
                )
            summaries[method].add(c, outcome)
            if verbose:
                status = outcome.error or f"{len(np.unique(outcome.labels))} grids"
                print(f"  {c.community_id} {method}: {outcome.seconds:.2f} s, {status}", flush=True)
    return [s.as_dict() for s in summaries.values()]


def write_json(path: str, figures: dict) -> None:
    """The figures as JSON to ``path`` (``-``: stdout)."""
    text = json.dumps(figures, ensure_ascii=False, indent=2)
    if path == "-":
        print(text)
    else:
        Path(path).write_text(text + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the table."""
    args = build_parser().parse_args(argv)
    if args.limit is not None and args.limit < 1:
        raise SystemExit("error: --limit must be at least 1")
    if args.jobs < 1:
        raise SystemExit("error: --jobs must be at least 1")
    check_anchors(args.methods)
    started = time.perf_counter()
    communities, rows_outside = dataset_instances(
        args.dataset, limit=args.limit, shared=args.shared_data
    )
    info = describe(communities, rows_outside, time.perf_counter() - started)
    print(format_instance(args.dataset, info), flush=True)
    rows = run_all(
        communities,
        args.methods,
        seed=args.seed,
        timeout=args.timeout or None,
        options={
            "gridkit": {
                "keep_compounds": args.gridkit_compounds,
                "time_limit": args.gridkit_time_limit,
                "balance_weight": args.gridkit_balance_weight,
            },
            "spopt": {"iterations": args.spopt_iterations},
        },
        verbose=args.verbose,
        jobs=args.jobs,
    )
    print()
    print(format_table(rows))
    for extra in (format_failures(rows), format_proofs(rows)):
        if extra:
            print(extra)
    print()
    print(NOTES)
    if args.json:
        settings = {
            "dataset": args.dataset,
            "limit": args.limit,
            "seed": args.seed,
            "spopt_iterations": args.spopt_iterations,
            "gridkit_compounds": args.gridkit_compounds,
            "gridkit_time_limit": args.gridkit_time_limit,
            "gridkit_balance_weight": args.gridkit_balance_weight,
            "timeout_s": args.timeout,
            "gridkit_jobs": args.jobs,
        }
        write_json(args.json, {**settings, **info, "methods": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
