"""Cells of units: Voronoi cells clipped to the community, built inside blocks.

Each unit gets a *cell*: its Voronoi cell (shapely/GEOS ``voronoi_polygons``)
clipped to the community.  Cells tile the community with no gap and no
overlap, so grids made of cells tile it too.  A cell that the clip cuts into
pieces keeps the piece holding its building; every other piece joins the
neighbouring cell with which it shares the longest boundary (or, for an island
that touches no cell, the nearest cell).

With barriers or compounds, the community is first cut into blocks along them
(:func:`community_blocks`) and every cell is built inside its building's block
(:func:`block_cells`), so no cell straddles a road or a compound wall.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = [
    "attach_pieces",
    "block_cells",
    "community_blocks",
    "unit_cells",
]


def _fix_fragments(cells: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Give every piece of a multi-part cell to one cell, keeping cells connected where possible."""
    parts, owner = shapely.get_parts(cells, return_index=True)
    if len(parts) == len(cells):
        return cells, []
    holds = shapely.intersects(parts, points[owner])
    # A piece touching its point by a hair may not "hold" it; keep the nearest piece.
    dist = shapely.distance(parts, points[owner])
    frame = pd.DataFrame({"owner": owner, "holds": holds, "dist": dist})
    kept_idx = frame.sort_values(["owner", "holds", "dist"], ascending=[True, False, True])
    kept_idx = kept_idx.drop_duplicates("owner").index.to_numpy()
    assigned = np.full(len(parts), -1, dtype=np.int64)
    assigned[kept_idx] = owner[kept_idx]
    return attach_pieces(cells, parts, assigned)


def attach_pieces(
    cells: np.ndarray, parts: np.ndarray, assigned: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """Join every unassigned part (``assigned < 0``) to a cell, and each cell to its parts.

    A part joins the assigned part it shares the longest boundary with, repeatedly;
    an island touching nothing assigned joins the nearest one.  ``cells`` are
    replaced by the union of their parts.
    """
    assigned = assigned.copy()
    islands = 0
    while (assigned < 0).any():
        pending = np.flatnonzero(assigned < 0)
        done = np.flatnonzero(assigned >= 0)
        tree = shapely.STRtree(parts[done])
        a, b = tree.query(parts[pending], predicate="intersects")
        if len(a):
            shared = shapely.length(
                shapely.intersection(
                    shapely.boundary(parts[pending[a]]), shapely.boundary(parts[done[b]])
                )
            )
            frame = pd.DataFrame({"p": pending[a], "d": done[b], "len": shared})
            frame = frame[frame["len"] > 0]
        else:
            frame = pd.DataFrame({"p": [], "d": [], "len": []})
        if len(frame):
            best = frame.sort_values(["p", "len", "d"], ascending=[True, False, True])
            best = best.drop_duplicates("p")
            assigned[best["p"].to_numpy(dtype=np.int64)] = assigned[
                best["d"].to_numpy(dtype=np.int64)
            ]
            continue
        # Islands: nothing left touches an assigned piece.  The piece nearest to a
        # cell joins it; the rest of its island follows through shared boundaries on
        # the next passes, so an island split by the Voronoi diagram stays whole.
        nearest_done = tree.nearest(parts[pending])
        gaps = shapely.distance(parts[pending], parts[done[nearest_done]])
        closest = int(np.argmin(gaps))
        assigned[pending[closest]] = assigned[done[nearest_done[closest]]]
        islands += 1
    notes = (
        [
            f"{islands} island(s) of the community with no building were joined to the "
            "nearest cell; the grid holding them has more than one polygon"
        ]
        if islands
        else []
    )
    frame = gpd.GeoSeries(parts).groupby(assigned).agg(lambda s: shapely.union_all(s.values))
    out = cells.copy()
    out[frame.index.to_numpy()] = frame.to_numpy()
    return out, notes


def community_blocks(
    community: shapely.Geometry,
    barriers: np.ndarray | None = None,
    compounds: np.ndarray | None = None,
) -> np.ndarray:
    """Cut a community into blocks along barrier lines and compound outlines.

    The community's boundary, the barrier lines (a polygon barrier counts by its
    outline) and the compound outlines are noded together and polygonised
    (GEOS); the faces inside the community are the blocks.  A line that ends
    inside the community (a dead end) cuts nothing.  Faces below 1 m² (slivers
    of nearly coincident lines) are left to the neighbouring block.

    Parameters
    ----------
    community
        The community polygon (metric CRS).
    barriers, compounds
        Geometries in the same CRS (``None`` or empty: no cut).

    Returns
    -------
    numpy.ndarray
        Polygons that tile the community.

    Examples
    --------
    A square cut by a road through the middle:

    >>> road = shapely.LineString([(50, -10), (50, 110)])
    >>> blocks = community_blocks(shapely.box(0, 0, 100, 100), np.array([road]))
    >>> sorted(round(b.area) for b in blocks)
    [5000, 5000]
    """
    cutters = []
    for group in (barriers, compounds):
        if group is None or len(group) == 0:
            continue
        geoms = np.asarray(group, dtype=object)
        geoms = geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)]
        kind = shapely.get_type_id(geoms)
        lines = np.where(np.isin(kind, (3, 6)), shapely.boundary(geoms), geoms)
        near = shapely.intersects(lines, community)
        cutters += list(lines[near])
    if not cutters:
        return np.array([community], dtype=object)
    noded = shapely.union_all([shapely.boundary(community), *cutters])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if len(faces) == 0:
        return np.array([community], dtype=object)
    inside = shapely.within(shapely.point_on_surface(faces), community) & (
        shapely.area(faces) >= 1.0
    )
    faces = faces[inside]
    covered = shapely.union_all(faces) if len(faces) else shapely.Polygon()
    rest = shapely.difference(community, covered)
    pieces = shapely.get_parts(rest)
    pieces = pieces[shapely.area(pieces) > 0] if len(pieces) else pieces
    if len(faces) == 0:
        return np.array([community], dtype=object)
    if len(pieces):  # slivers and faces the polygonisation missed go to a neighbour
        parts = np.concatenate([faces, pieces])
        assigned = np.r_[np.arange(len(faces)), np.full(len(pieces), -1)]
        faces, _ = attach_pieces(faces.astype(object), parts, assigned)
    return np.asarray(faces, dtype=object)


def block_cells(
    points: np.ndarray, community: shapely.Geometry, blocks: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """Cells of ``points`` that never straddle a block border, tiling ``community``.

    Every point gets its Voronoi cell inside its own block (:func:`unit_cells`), so
    the border between two blocks (a road, a compound wall) is always a cell border.
    A block holding no point joins the cell it shares the longest border with.

    Returns
    -------
    cells, notes
        Cells aligned with ``points`` and remarks.
    """
    points = np.asarray(points, dtype=object)
    if len(blocks) <= 1 or len(points) <= 1:
        return unit_cells(points, community)
    tree = shapely.STRtree(blocks)
    pt, blk = tree.query(points, predicate="intersects")
    block_of = np.full(len(points), -1, dtype=np.int64)
    frame = pd.DataFrame({"pt": pt, "blk": blk}).sort_values(["pt", "blk"])
    first = frame.drop_duplicates("pt")
    block_of[first["pt"].to_numpy()] = first["blk"].to_numpy()
    if (block_of < 0).any():  # (on no block: numerically outside) the nearest block
        lost = np.flatnonzero(block_of < 0)
        block_of[lost] = tree.nearest(points[lost])
    cells = np.empty(len(points), dtype=object)
    notes: list[str] = []
    for b in np.unique(block_of):
        idx = np.flatnonzero(block_of == b)
        cells[idx], block_notes = unit_cells(points[idx], blocks[b])
        notes += [n for n in block_notes if n not in notes]
    empty = np.setdiff1d(np.arange(len(blocks)), block_of)
    if len(empty):
        parts = np.concatenate([cells, blocks[empty]])
        assigned = np.r_[np.arange(len(cells)), np.full(len(empty), -1)]
        cells, island_notes = attach_pieces(cells, parts, assigned)
        notes.append(
            f"{len(empty)} block(s) between barriers or compound walls hold no building and "
            "were joined to the neighbouring cell they share the longest border with"
        )
        notes += island_notes
    return cells, notes


def unit_cells(points: np.ndarray, community: shapely.Geometry) -> tuple[np.ndarray, list[str]]:
    """Voronoi cells of ``points`` clipped to ``community``, one per point, tiling it.

    Parameters
    ----------
    points
        Distinct shapely Points inside ``community`` (metric CRS).
    community
        The community polygon.

    Returns
    -------
    cells, notes
        Cells aligned with ``points`` and remarks (islands joined to a cell).

    Examples
    --------
    >>> square = shapely.box(0, 0, 100, 100)
    >>> pts = shapely.points([[25, 50], [75, 50]])
    >>> cells, _ = unit_cells(pts, square)
    >>> [round(c.area) for c in cells]
    [5000, 5000]
    """
    points = np.asarray(points, dtype=object)
    if len(points) == 0:
        return np.array([], dtype=object), []
    if len(points) == 1:
        return np.array([community], dtype=object), []
    diagram = shapely.voronoi_polygons(
        shapely.multipoints(points), extend_to=community, ordered=True
    )
    raw = shapely.get_parts(diagram)
    cells = shapely.intersection(raw, community)
    cells = np.asarray(
        [
            shapely.union_all(shapely.get_parts(c)[shapely.area(shapely.get_parts(c)) > 0])
            if c.geom_type == "GeometryCollection"
            else c
            for c in cells
        ],
        dtype=object,
    )
    return _fix_fragments(cells, points)
