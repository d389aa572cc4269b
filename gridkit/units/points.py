"""Household points: the community holding each, and buildings grouped from them.

Household points without a building id become buildings by distance: points of one
community closer than :data:`MERGE_DISTANCE` chain together (:func:`group_points`), and
a chain wider than :data:`MAX_BUILDING_SPAN` is cut into squares of
:data:`BUILDING_CELL` metres.  :func:`community_of_points` says which community holds
each point.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

__all__ = [
    "BUILDING_CELL",
    "MAX_BUILDING_SPAN",
    "MERGE_DISTANCE",
    "community_of_points",
    "group_points",
]


#: Household points without a building id closer than this (metres) are one building.
MERGE_DISTANCE = 5.0
#: A group of points wider than this (metres, diagonal of its bounding box) is not
#: one building: it is cut into squares of ``BUILDING_CELL`` metres.
MAX_BUILDING_SPAN = 60.0
BUILDING_CELL = 30.0
#: Points whose neighbours are looked up at once when grouping (bounds the memory).
_CHUNK = 20_000


def group_points(
    xy: np.ndarray, community: np.ndarray | None = None, distance: float = MERGE_DISTANCE
) -> np.ndarray:
    """Group household points into buildings: points within ``distance`` metres chain together.

    Two points closer than ``distance`` in the same community are linked, and a
    group is a connected set of links (single linkage), so the households of a
    building, geocoded a few metres apart around it, form one group while
    buildings further apart stay apart.  A group wider than
    :data:`MAX_BUILDING_SPAN` (a chain running through a dense urban village) is
    cut into squares of
    :data:`BUILDING_CELL` metres.  Memory is linear in the points.

    Parameters
    ----------
    xy
        ``(n, 2)`` point coordinates in metres.
    community
        Community index of every point; points of two communities never group.
    distance
        Link distance in metres; 0 groups only points at one location.

    Returns
    -------
    numpy.ndarray
        Group number ``0..g-1`` of every point, numbered in order of first point.

    Examples
    --------
    >>> group_points(np.array([[0, 0], [2, 0], [4, 1], [50, 0], [51, 1]])).tolist()
    [0, 0, 0, 1, 1]
    """
    xy = np.asarray(xy, dtype=float)
    n = len(xy)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    community = np.zeros(n, dtype=np.int64) if community is None else np.asarray(community)
    tree = cKDTree(xy)
    group = np.arange(n)
    # every pair within the distance links, a chunk of points at a time: the groups found
    # so far are merged with each chunk's links, so memory stays linear in the points
    for start in range(0, n, _CHUNK):
        idx = np.arange(start, min(n, start + _CHUNK))
        near = tree.query_ball_point(xy[idx], r=max(distance, 1e-9))
        counts = np.fromiter((len(v) for v in near), dtype=np.int64, count=len(idx))
        src = np.repeat(idx, counts)
        dst = np.fromiter((j for v in near for j in v), dtype=np.int64, count=int(counts.sum()))
        same = (community[src] == community[dst]) & (src != dst)
        src, dst = group[src[same]], group[dst[same]]
        if len(src) == 0:
            continue
        graph = sparse.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
        group = csgraph.connected_components(graph, directed=False)[1][group]
    frame = pd.DataFrame({"g": group, "x": xy[:, 0], "y": xy[:, 1]})
    box = frame.groupby("g").agg(x0=("x", "min"), x1=("x", "max"), y0=("y", "min"), y1=("y", "max"))
    wide = np.hypot(box["x1"] - box["x0"], box["y1"] - box["y0"]) > MAX_BUILDING_SPAN
    cell = np.zeros(n, dtype=np.int64)
    if wide.any():
        inside = np.isin(group, box.index[wide].to_numpy())
        cx = np.floor(xy[inside, 0] / BUILDING_CELL).astype(np.int64)
        cy = np.floor(xy[inside, 1] / BUILDING_CELL).astype(np.int64)
        cell[inside] = pd.factorize(pd.MultiIndex.from_arrays([cx, cy]))[0] + 1
    return pd.factorize(pd.MultiIndex.from_arrays([group, cell]))[0].astype(np.int64)


def community_of_points(points: np.ndarray, communities: np.ndarray) -> np.ndarray:
    """Index of the community holding each point, or -1.

    A point strictly inside a community belongs to it; a point on a shared
    edge goes to the first community (in input order) whose boundary holds it.
    """
    tree = shapely.STRtree(communities)
    pt, poly = tree.query(points, predicate="intersects")
    result = np.full(len(points), -1, dtype=np.int64)
    if len(pt) == 0:
        return result
    inside = shapely.contains_properly(communities[poly], points[pt])
    frame = pd.DataFrame({"pt": pt, "poly": poly, "edge": ~inside})
    first = frame.sort_values(["pt", "edge", "poly"]).drop_duplicates("pt")
    result[first["pt"].to_numpy()] = first["poly"].to_numpy()
    return result
