"""What makes a good grid (:class:`GridRules`), and the measures of a plan on its unit graph.

The household bounds, target and balance weight of the grids; the status of a grid; the
balance weight and the largest centre-to-unit radius of the exact model; the centre of a
grid and a plan's objective as the CP-SAT model counts them; shortest-path distances
along the adjacency; a floor of the objective per number of grids; and the numbering of
grids north to south.  Everything works on arrays: an adjacency matrix, households per
unit and coordinates in metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from gridkit.errors import InputError

__all__ = [
    "RADIUS_FACTOR",
    "GridRules",
    "balance_weight",
    "centre_for",
    "count_floors",
    "graph_distances",
    "max_radius",
    "number_grids",
    "plan_objective",
    "status_of_grid",
]


@dataclass(frozen=True)
class GridRules:
    """What makes a good grid.

    Parameters
    ----------
    min_households, max_households
        Bounds of households per grid (default 400–800, the Huangshi standard).
    target_households
        Preferred grid size; default the middle of the bounds.  Together with
        ``balance_weight`` it steers how many grids the model opens.
    balance_weight
        Weight of the balance term relative to compactness (1.0: one household
        away from the target costs as much as one household placed a grid
        radius further from its centre).
    """

    min_households: int = 400
    max_households: int = 800
    target_households: int | None = None
    balance_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.min_households < 1 or self.max_households < self.min_households:
            raise InputError(
                f"household bounds must satisfy 1 <= min <= max; got min_households="
                f"{self.min_households}, max_households={self.max_households}. "
                "Pass e.g. --min-households 400 --max-households 800."
            )
        if self.target_households is not None and not (
            self.min_households <= self.target_households <= self.max_households
        ):
            raise InputError(
                f"`target_households`={self.target_households} is outside the bounds "
                f"[{self.min_households}, {self.max_households}]; pick a value between them."
            )
        if self.balance_weight < 0:
            raise InputError(f"`balance_weight` must be >= 0, got {self.balance_weight}.")

    @property
    def target(self) -> int:
        """Preferred households per grid."""
        if self.target_households is not None:
            return int(self.target_households)
        return (self.min_households + self.max_households) // 2


def status_of_grid(load: int, has_oversize: bool | str, rules: GridRules) -> str:
    """Status of a grid; ``has_oversize`` is its own-grid kind (``True``: an oversize building)."""
    kind = "oversize_building" if has_oversize is True else (has_oversize or "")
    if kind in ("oversize_building", "oversize_compound"):
        return kind
    if kind == "split_compound" and rules.min_households <= load <= rules.max_households:
        return "split_compound"
    if load < rules.min_households:
        return "below_min"
    if load > rules.max_households:
        return "above_max"
    return "ok"


def balance_weight(adj: sparse.csr_matrix, w: np.ndarray, xy: np.ndarray, rules: GridRules) -> int:
    """Balance weight in metres per household: ``balance_weight * r_T``.

    ``r_T`` is the radius of a round grid of target size at the community's
    density, estimated from the mean neighbour spacing ``s`` and mean
    households per unit ``w``: ``r_T = s * sqrt(target / (pi * w))``.
    """
    coo = sparse.triu(adj, k=1).tocoo()
    if coo.nnz == 0 or w.sum() == 0:
        return 1
    spacing = float(np.mean(np.hypot(*(xy[coo.row] - xy[coo.col]).T)))
    mean_w = max(float(w.mean()), 1.0)
    r_t = spacing * math.sqrt(rules.target / (math.pi * mean_w))
    return max(1, round(rules.balance_weight * r_t))


#: A grid's units lie within this multiple of the radius of a round, full
#: (``max_households``) grid from its centre.
RADIUS_FACTOR = 2.0


def max_radius(adj: sparse.csr_matrix, w: np.ndarray, xy: np.ndarray, rules: GridRules) -> float:
    """Largest centre-to-unit distance allowed in the model (metres)."""
    coo = sparse.triu(adj, k=1).tocoo()
    if coo.nnz == 0:
        return float("inf")
    spacing = float(np.mean(np.hypot(*(xy[coo.row] - xy[coo.col]).T)))
    mean_w = max(float(w.mean()), 1.0)
    r_max = spacing * math.sqrt(rules.max_households / (math.pi * mean_w))
    return RADIUS_FACTOR * max(r_max, spacing)


def centre_for(members: np.ndarray, adj: sparse.csr_matrix, w, xy, graph_dist) -> int:
    """Best precedence-compatible centre of a connected grid (min weighted distance).

    A centre ``c`` is compatible when every other member has a member
    neighbour strictly closer to ``c`` in ``graph_dist``; falls back to the
    cheapest centre if none is.
    """
    pts = xy[members]
    dist = np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1])
    cost = (w[members][:, None] * dist).sum(axis=0)
    sub = adj[members][:, members].tocsr()
    for k in np.argsort(cost, kind="stable"):
        d = graph_dist[members[k], members]
        ok = True
        for i in range(len(members)):
            if i == k:
                continue
            nbrs = sub.indices[sub.indptr[i] : sub.indptr[i + 1]]
            if not np.any(d[nbrs] < d[i]):
                ok = False
                break
        if ok:
            return int(members[k])
    return int(members[int(np.argmin(cost))])


def plan_objective(labels, centres, w, xy, lam, rules) -> float:
    """Objective of a plan, as the CP-SAT model counts it (hard part only)."""
    total = 0.0
    for lab, c in centres.items():
        members = np.flatnonzero(labels == lab)
        d = np.rint(np.hypot(*(xy[members] - xy[c]).T))
        total += float((w[members] * d).sum())
        total += lam * abs(int(w[members].sum()) - rules.target)
    return total


def graph_distances(adj: sparse.csr_matrix, xy: np.ndarray) -> np.ndarray:
    """All-pairs shortest-path lengths (metres) along the adjacency graph."""
    coo = adj.tocoo()
    lengths = np.hypot(*(xy[coo.row] - xy[coo.col]).T) + 1e-3
    return csgraph.dijkstra(
        sparse.csr_matrix((lengths, (coo.row, coo.col)), shape=adj.shape), directed=False
    )


def count_floors(
    w: np.ndarray, xy: np.ndarray, lam: int, rules: GridRules, counts: range
) -> dict[int, float]:
    """A lower bound on the objective of every plan with ``k`` grids, for each ``k``.

    Compactness: a building that is not its grid's centre is at least as far
    from it as from its nearest other building, so it costs at least
    ``a_i = w_i * d_i`` (``d_i`` the rounded distance to the nearest other
    building); at most ``k`` buildings are centres, so the term is at least
    ``sum(a) - (sum of the k largest a_i)``.  Balance: ``sum_g |load_g - T|
    >= |W - k T|``.  A count whose floor is no better than the incumbent needs
    no solve.

    Examples
    --------
    Four 150-household buildings 30 m apart in a row, λ = 10: one grid costs at
    least 3 x 150 x 30 = 13,500 (and no balance), two grids at least
    2 x 150 x 30 = 9,000 plus 10 x |600 - 1,200| = 6,000.

    >>> xy = np.c_[np.arange(4) * 30.0, np.zeros(4)]
    >>> count_floors(np.full(4, 150), xy, 10, GridRules(), range(1, 3))
    {1: 13500.0, 2: 15000.0}
    """
    n = len(w)
    if n < 2:
        return dict.fromkeys(counts, 0.0)
    nearest, _ = cKDTree(xy).query(xy, k=2)  # itself, then its nearest other building
    cost = np.sort(w * np.rint(nearest[:, 1]))[::-1]  # largest first
    total, households = float(cost.sum()), int(w.sum())
    return {
        k: total - float(cost[: min(k, n)].sum()) + lam * abs(households - rules.target * k)
        for k in counts
    }


def number_grids(labels: np.ndarray, xy: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Sequence numbers 1..k for labels: bands north→south, west→east within a band.

    A grid's position is the area-weighted centroid of its cells; the band
    height is the side of a square of the mean grid area.

    Examples
    --------
    >>> xy = np.array([[0, 10], [10, 10], [0, 0], [10, 0]], dtype=float)
    >>> number_grids(np.array([3, 2, 1, 0]), xy, np.full(4, 100.0)).tolist()
    [1, 2, 3, 4]
    """
    uniq, dense = np.unique(labels, return_inverse=True)
    k = len(uniq)
    weights = np.bincount(dense, weights=area, minlength=k)
    safe = np.where(weights > 0, weights, 1.0)
    cx = np.bincount(dense, weights=xy[:, 0] * area, minlength=k) / safe
    cy = np.bincount(dense, weights=xy[:, 1] * area, minlength=k) / safe
    band_height = max(math.sqrt(float(area.sum()) / k), 1e-9)
    # Millimetre rounding keeps the numbering stable against floating-point noise.
    cx, cy = np.round(cx, 3), np.round(cy, 3)
    band = np.floor((cy.max() - cy) / band_height)
    order = np.lexsort((cx, band))
    seq = np.empty(k, dtype=np.int64)
    seq[order] = np.arange(1, k + 1)
    return seq[dense]
