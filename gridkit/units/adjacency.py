"""Rook adjacency of unit cells, from shapely's STRtree.

Two cells are neighbours (rook contiguity) when their shared boundary is at
least ``min_shared_length`` metres (default 0.5 m) long; touching at a corner,
or along a few centimetres (a projected corner), does not count, so a grid
made of neighbours is one connected polygon without hair-thin necks.

We use shapely's STRtree and vectorised boundary intersections instead of
libpysal's ``Graph.build_contiguity``: the Voronoi cells share exact edges, we
need the shared length anyway (for the report and future boundary-length
objectives), and it keeps a heavy dependency out of the core.

Also here: which neighbour links cross a barrier line (:func:`barrier_crossings`), the
links the partition drops to cut a community into blocks.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from scipy import sparse

__all__ = ["adjacency_matrix", "barrier_crossings", "rook_pairs"]


def rook_pairs(
    geometries: np.ndarray, *, min_shared_length: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of polygons that share a boundary of positive length.

    Parameters
    ----------
    geometries
        Array of polygons in a metric CRS.
    min_shared_length
        Shortest shared boundary (metres) that makes two polygons neighbours.

    Returns
    -------
    left, right, length
        Index arrays with ``left < right`` and the shared boundary length.

    Examples
    --------
    >>> import shapely
    >>> cells = np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1),
    ...                   shapely.box(2, 1, 3, 2)])
    >>> left, right, length = rook_pairs(cells)
    >>> left.tolist(), right.tolist(), length.tolist()
    ([0], [1], [1.0])
    """
    geoms = np.asarray(geometries, dtype=object)
    if len(geoms) < 2:
        empty = np.array([], dtype=np.int64)
        return empty, empty, np.array([], dtype=float)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    boundaries = shapely.boundary(geoms)
    shared = shapely.intersection(boundaries[left], boundaries[right])
    length = shapely.length(shared)
    keep = length >= min_shared_length
    order = np.lexsort((right[keep], left[keep]))
    return left[keep][order], right[keep][order], length[keep][order]


def adjacency_matrix(
    n: int, left: np.ndarray, right: np.ndarray, weights: np.ndarray | None = None
) -> sparse.csr_matrix:
    """Symmetric CSR adjacency matrix of ``n`` nodes from an undirected pair list."""
    data = np.ones(len(left)) if weights is None else np.asarray(weights, dtype=float)
    rows = np.concatenate([left, right])
    cols = np.concatenate([right, left])
    return sparse.csr_matrix((np.concatenate([data, data]), (rows, cols)), shape=(n, n))


def barrier_crossings(
    xy: np.ndarray, left: np.ndarray, right: np.ndarray, barriers: gpd.GeoDataFrame | None
) -> tuple[np.ndarray, list[str]]:
    """Which neighbour links (segment between the two building points) cross a barrier.

    Returns the mask over the ``left``/``right`` pairs and, per pair, the name of
    the first barrier crossed (``""`` when unnamed or not crossed).
    """
    crossing = np.zeros(len(left), dtype=bool)
    names = [""] * len(left)
    if barriers is None or len(barriers) == 0 or len(left) == 0:
        return crossing, names
    lines = shapely.boundary(barriers.geometry.to_numpy())
    lines = np.where(
        np.isin(shapely.get_type_id(barriers.geometry.to_numpy()), [3, 6]),
        lines,
        barriers.geometry.to_numpy(),
    )
    segments = shapely.linestrings(np.stack([xy[left], xy[right]], axis=1))
    seg, hit = shapely.STRtree(lines).query(segments, predicate="intersects")
    crossing[seg] = True
    label = (
        barriers["name"].astype(object).where(barriers["name"].notna(), "").astype(str).to_numpy()
        if "name" in barriers
        else np.full(len(barriers), "", dtype=object)
    )
    for k, b in zip(seg[::-1], hit[::-1], strict=True):
        names[int(k)] = label[int(b)]
    return crossing, names
