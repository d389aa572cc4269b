"""Build the atomic units of a partition: buildings and cells that tile each community.

A *unit* is one building: every household row with the same ``building_id``
(or, without building ids, at the same point to 0.1 m, or the same
footprint) in the same community.  A building is never split across grids.
Buildings at exactly the same point (two blocks sharing one geocode) are
merged into one unit.

Each unit gets a *cell*: its Voronoi cell (shapely/GEOS ``voronoi_polygons``)
clipped to the community.  Cells tile the community with no gap and no
overlap, so grids made of cells tile it too.  A cell that the clip cuts into
pieces keeps the piece holding its building; every other piece joins the
neighbouring cell with which it shares the longest boundary (or, for an island
that touches no cell, the nearest cell).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree
from shapely import affinity

from gridkit.crs import local_metric_crs
from gridkit.errors import GridkitWarning, InputError, format_ids

__all__ = [
    "COMPOUND_BUILDING_COLUMNS",
    "MERGE_DISTANCE",
    "UNASSIGNED_REASONS",
    "Units",
    "attach_compounds",
    "block_cells",
    "build_units",
    "community_blocks",
    "compound_buildings_column",
    "compound_shares",
    "group_points",
    "split_compound",
    "unit_cells",
]

log = logging.getLogger(__name__)

#: Why a household row is in no grid; these words appear in ``assignments.csv``.
UNASSIGNED_REASONS = {
    "outside_communities": "the point lies outside every community boundary",
}

_SNAP = 0.1  # metres: points closer than this on both axes are one location

#: Household points without a building id closer than this (metres) are one building.
MERGE_DISTANCE = 5.0
#: A group of points wider than this (metres, diagonal of its bounding box) is not
#: one building: it is cut into squares of ``BUILDING_CELL`` metres.
MAX_BUILDING_SPAN = 60.0
BUILDING_CELL = 30.0
#: Points whose neighbours are looked up at once when grouping (bounds the memory).
_CHUNK = 20_000


@dataclass
class Units:
    """Units of a district, ready to be partitioned.

    Attributes
    ----------
    units
        One row per unit, in the local metric CRS ``crs``: ``unit_id``
        (0..n-1), ``community_id``, ``households``, ``rows`` (input rows),
        ``building_id`` and ``first_household_id`` (ids for messages), ``x``, ``y`` (the
        building point), ``unit_kind`` (``building``, or ``compound`` when every
        row is a whole compound), ``split_of`` (the compound a part of a split
        compound comes from, else None), ``buildings`` (1, or a compound's
        buildings) and ``geometry`` (the cell).
    membership
        One row per input household row, aligned with the households' index:
        ``unit_id`` (``<NA>`` when unassigned), ``community_id`` and ``reason``
        (empty, or a key of :data:`UNASSIGNED_REASONS`).
    communities
        The community boundaries in ``crs``, with ``n_units`` and ``households``.
    crs
        The local metric CRS (UTM zone) every geometry here is in.
    notes
        Per community id, remarks made while building cells (islands etc.).
    grouping
        Per community id with household points lacking a building id: how
        they were grouped into buildings (``rows``, ``buildings``,
        ``merge_distance_m``; see :func:`group_points`).
    """

    units: gpd.GeoDataFrame
    membership: pd.DataFrame
    communities: gpd.GeoDataFrame
    crs: pyproj.CRS
    notes: dict[str, list[str]]
    grouping: dict[str, dict[str, float]] = field(default_factory=dict)


#: Columns searched, in order, for a compound's name when ``name_col`` is not given.
COMPOUND_NAME_COLUMNS = ("name", "compound", "名称", "小区", "xqmc", "NAME")


def attach_compounds(
    households: gpd.GeoDataFrame,
    compounds: gpd.GeoDataFrame,
    *,
    name_col: str | None = None,
) -> gpd.GeoDataFrame:
    """Set the households' ``compound`` column from compound (小区) polygons.

    Each household row (its point, or a point on its footprint) gets the name of
    the compound polygon it lies in; where polygons nest, the smallest one wins.
    Rows in no polygon get no compound (they are partitioned building by
    building).  The polygons replace any ``compound`` column the households had.

    Parameters
    ----------
    households
        Household rows with a CRS.
    compounds
        Compound outlines (polygons, any CRS).
    name_col
        Column naming each compound; default: the first of
        :data:`COMPOUND_NAME_COLUMNS` present, else ``compound <row>``.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``households`` with ``compound`` (object, ``None`` outside every
        compound).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> hh = gpd.GeoDataFrame(geometry=shapely.points([[0.5, 0.5], [2.5, 0.5]]), crs=3857)
    >>> c = gpd.GeoDataFrame({"name": ["A苑"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=3857)
    >>> attach_compounds(hh, c)["compound"].tolist()
    ['A苑', None]
    """
    source = compounds.attrs.get("source", "`compounds`")
    if compounds.crs is None:
        raise InputError(
            f"{source} has no CRS: declare one in the file (e.g. write it as GeoJSON in "
            "WGS84) or call `gdf.set_crs(...)`."
        )
    if name_col is not None and name_col not in compounds:
        raise InputError(
            f"{source} has no column '{name_col}' (--compound-name-col); it has: "
            f"{', '.join(map(str, compounds.columns.drop('geometry')))}."
        )
    geoms = compounds.geometry.to_numpy()
    kind = shapely.get_type_id(geoms)
    bad = ~(np.isin(kind, (3, 6)) | shapely.is_missing(geoms))  # Polygon, MultiPolygon
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InputError(
            f"{source}: feature(s) {format_ids(rows + 1)} are not polygons (feature "
            f"{rows[0] + 1} is a {geoms[rows[0]].geom_type}); compounds must be outlines "
            "(Polygon or MultiPolygon)."
        )
    col = name_col or next((c for c in COMPOUND_NAME_COLUMNS if c in compounds), None)
    if col is None:
        names = np.array([f"compound {i + 1}" for i in range(len(compounds))], dtype=object)
    else:
        names = compounds[col].astype(object).to_numpy()
        blank = pd.isna(names) | (pd.Series(names).astype(str).str.strip() == "").to_numpy()
        names = np.where(blank, [f"compound {i + 1}" for i in range(len(names))], names)
    polys = compounds.to_crs(households.crs).geometry.to_numpy()
    valid = ~shapely.is_missing(polys) & ~shapely.is_empty(polys)
    polys = np.where(shapely.is_valid(polys), polys, shapely.make_valid(polys))
    hh_geoms = households.geometry.to_numpy()
    points = np.where(
        shapely.get_type_id(hh_geoms) == 0, hh_geoms, shapely.point_on_surface(hh_geoms)
    )
    tree = shapely.STRtree(np.where(valid, polys, None))
    row, poly = tree.query(points, predicate="intersects")
    out = households.copy()
    compound = np.full(len(households), None, dtype=object)
    if len(row):
        order = np.lexsort((shapely.area(polys[poly]), row))  # by row, smallest area first
        row, poly = row[order], poly[order]
        first = np.r_[True, row[1:] != row[:-1]]
        compound[row[first]] = names[poly[first]]
    out["compound"] = pd.Series(compound, index=out.index, dtype=object)
    log.info(
        "%d of %d household rows lie in one of %d compounds",
        int(pd.notna(compound).sum()),
        len(out),
        len(compounds),
    )
    return out


#: Columns searched, in order, for a compound row's number of buildings (楼栋数).
COMPOUND_BUILDING_COLUMNS = ("compound_buildings", "buildings", "楼栋数", "楼栋总数")


def compound_buildings_column(
    frame: pd.DataFrame, column: str | None = None, source: str = "households"
) -> str | None:
    """The column giving each compound row's buildings: ``column``, else the first of
    :data:`COMPOUND_BUILDING_COLUMNS` present, else None (the rows are not compounds).

    Raises
    ------
    InputError
        When ``column`` is given but absent, naming the columns there are.
    """
    if column is not None and column not in frame:
        raise InputError(
            f"{source} has no column '{column}' (--compound-buildings-col); it has: "
            f"{', '.join(map(str, frame.columns.drop('geometry', errors='ignore')))}."
        )
    return column or next((c for c in COMPOUND_BUILDING_COLUMNS if c in frame), None)


def _compound_building_counts(
    hh: pd.DataFrame, column: str | None, source_frame: pd.DataFrame
) -> tuple[np.ndarray, bool]:
    """Buildings per row (NaN where not given) and whether the rows are compounds."""
    source = source_frame.attrs.get("source", "households")
    col = compound_buildings_column(hh, column, source)
    if col is None:
        return np.full(len(hh), np.nan), False
    text = hh[col].astype(object).where(hh[col].notna(), None)
    values = pd.to_numeric(pd.Series(text).astype(str).str.strip().replace({"None": None,
                                                                             "": None}),
                           errors="coerce").to_numpy(dtype=float)  # fmt: skip
    given = pd.notna(text.to_numpy()) & (pd.Series(text).astype(str).str.strip() != "").to_numpy()
    bad = given & ~(np.isfinite(values) & (values >= 1) & (np.mod(values, 1) == 0))
    if bad.any():
        rows = hh["row"].to_numpy()[bad] if "row" in hh else np.flatnonzero(bad) + 1
        first = text.to_numpy()[bad][0]
        raise InputError(
            f"{source}: column '{col}' (buildings per compound) has values that are not a whole "
            f"number of buildings >= 1 at rows {format_ids(rows)} (row {rows[0]}: {first!r}); "
            "correct them, leave them empty where unknown, or pass --compound-buildings-col "
            "to use another column."
        )
    return np.where(given, values, np.nan), True


def _compound_names(hh: pd.DataFrame) -> np.ndarray:
    """A compound row's name for messages (``name``, ``小区``, ...), else None."""
    candidates = ("compound_name", *COMPOUND_NAME_COLUMNS)
    col = next((c for c in candidates if c in hh and c != "compound"), None)
    if col is None:
        return np.full(len(hh), None, dtype=object)
    names = hh[col].astype(object)
    return names.where(names.notna(), None).to_numpy(dtype=object)


def compound_shares(
    households: int, buildings: int, *, max_households: int
) -> list[tuple[int, int, int]]:
    """Split a compound into the fewest grids of whole (virtual) buildings that fit.

    Every building holds ``households / buildings``; grids get consecutive
    building numbers, as evenly as possible.  The fewest grids ``k`` with every
    grid at most ``max_households`` are used: the fullest grids possible, so the
    likeliest to reach a grid's minimum too.

    Returns
    -------
    list of (first building, last building, households)
        Building numbers from 1; households sum to ``households``.

    Examples
    --------
    >>> compound_shares(6124, 40, max_households=800)[:2]
    [(1, 5, 766), (6, 10, 765)]
    >>> len(compound_shares(6124, 40, max_households=800))
    8
    """
    per = households / buildings
    best = [1] * buildings  # (one building alone above the maximum: a building a grid)
    for k in range(max(1, -(-households // max_households)), buildings + 1):
        counts = [buildings // k + (1 if j < buildings % k else 0) for j in range(k)]
        if max(counts) * per <= max_households + 1e-9:
            best = counts  # the fewest grids: also the fullest, so the likeliest >= min
            break
    edges = np.cumsum([0, *best])
    shares = np.diff(np.round(edges * per)).astype(int)
    shares[-1] += households - int(shares.sum())
    return [
        (int(edges[j]) + 1, int(edges[j + 1]), int(shares[j])) for j in range(len(best))
    ]


def split_compound(cell: shapely.Geometry, weights: list[float]) -> list[shapely.Geometry]:
    """Divide a cell into strips across its long axis, with areas in proportion to ``weights``.

    Each strip is one polygon (where the cell is concave, a stray piece of a strip
    joins its neighbour, so areas are then only near their shares).

    Examples
    --------
    >>> parts = split_compound(shapely.box(0, 0, 300, 100), [1, 1, 1])
    >>> [round(p.area) for p in parts], [round(p.centroid.x) for p in parts]
    ([10000, 10000, 10000], [50, 150, 250])
    """
    rect = shapely.minimum_rotated_rectangle(cell)
    coords = np.asarray(rect.exterior.coords)[:4]
    sides = np.diff(np.vstack([coords, coords[:1]]), axis=0)
    long = sides[int(np.argmax(np.hypot(*sides.T)))]
    angle = float(np.degrees(np.arctan2(long[1], long[0])))
    centre = cell.centroid
    turned = affinity.rotate(cell, -angle, origin=centre)
    xmin, ymin, xmax, ymax = turned.bounds
    total, want = turned.area, np.cumsum(weights)[:-1] / float(np.sum(weights))
    cuts = [xmin]
    for share in want:
        lo, hi = cuts[-1], xmax
        for _ in range(50):
            mid = (lo + hi) / 2
            if shapely.clip_by_rect(turned, xmin - 1, ymin - 1, mid, ymax + 1).area < share * total:
                lo = mid
            else:
                hi = mid
        cuts.append((lo + hi) / 2)
    cuts.append(xmax)
    # bands between the cuts, turned back and intersected with the cell itself: the
    # strips keep the cell's own edges exactly, and neighbours share their cut line
    cuts[0], cuts[-1] = xmin - 1.0, xmax + 1.0
    lines = [
        affinity.rotate(shapely.LineString([(c, ymin - 1.0), (c, ymax + 1.0)]), angle,
                        origin=centre)
        for c in cuts
    ]  # fmt: skip
    bands = [
        shapely.Polygon([*lines[j].coords, *lines[j + 1].coords[::-1]])
        for j in range(len(lines) - 1)
    ]
    strips = shapely.intersection(cell, np.asarray(bands, dtype=object))
    # a concave cell can leave a strip in pieces: its largest piece stays, the others
    # join the strip they share the longest border with, so every part is one polygon
    parts, owner = shapely.get_parts(strips, return_index=True)
    if len(parts) > len(strips):
        area = shapely.area(parts)
        order = np.lexsort((-area, owner))
        first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
        assigned = np.full(len(parts), -1, dtype=np.int64)
        assigned[first] = owner[first]
        strips, _ = _attach(strips, parts, assigned)
    return list(strips)


def _split_compounds(
    units: pd.DataFrame, cells: np.ndarray, *, split_above: int
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None, dict[str, list[str]]]:
    """Replace every compound unit above ``split_above`` with known buildings by its parts."""
    big = np.flatnonzero(
        (units["households"].to_numpy() > split_above) & (units["cb"].to_numpy() >= 2)
    )
    if len(big) == 0:
        return units, cells, None, {}
    notes: dict[str, list[str]] = {}
    keep = np.ones(len(units), dtype=bool)
    keep[big] = False
    frames = [units[keep].assign(_orig=np.flatnonzero(keep), _part=0, _cell=cells[keep])]
    holders = {}
    for i in big.tolist():
        record = units.iloc[i]
        h, b = int(record["households"]), int(record["cb"])
        shares = compound_shares(h, b, max_households=split_above)
        parts = split_compound(cells[i], [share for _, _, share in shares])
        label = record["building_id"] or f"row {record['first_household_id']}"
        point = shapely.Point(record["x"], record["y"])
        holders[i] = next((j for j, part in enumerate(parts) if part.covers(point)), 0)
        centres = shapely.get_coordinates(shapely.point_on_surface(np.asarray(parts)))
        first, last, share = (np.array(v) for v in zip(*shares, strict=True))
        names = [f"{label} buildings {a}-{z}" for a, z in zip(first, last, strict=True)]
        frames.append(
            pd.DataFrame([record] * len(shares)).assign(
                households=share,
                rows=np.where(np.arange(len(shares)) == holders[i], int(record["rows"]), 0),
                building_id=names,
                x=centres[:, 0],
                y=centres[:, 1],
                split_of=str(label),
                buildings=last - first + 1,
                compound=None,  # the parts are grids of their own, never contracted
                _orig=i,
                _part=np.arange(len(shares)),
                _cell=np.asarray(parts, dtype=object),
            )
        )
        ranges = ", ".join(f"{a}-{z}" for a, z, _ in shares)
        notes.setdefault(str(record["community_id"]), []).append(
            f"compound {label} ({h} households, {b} buildings) is split into {len(shares)} grids "
            f"of whole buildings, by building number ({ranges}); the split on the ground "
            "follows the compound's building numbers"
        )
    out = pd.concat(frames).sort_values(["_orig", "_part"], kind="stable").reset_index(drop=True)
    # each input unit's rows go to the unit now holding them: itself, or the part at its point
    holder = out["_part"].to_numpy() == out["_orig"].map(holders).fillna(0).to_numpy()
    moved = np.empty(len(units), dtype=np.int64)
    moved[out["_orig"].to_numpy()[holder]] = np.flatnonzero(holder)
    new_cells = out["_cell"].to_numpy(dtype=object)
    out = out.drop(columns=["_orig", "_part", "_cell"])
    out["unit_id"] = np.arange(len(out), dtype=np.int64)
    return out, new_cells, moved, notes


def _metric_geometries(layer: gpd.GeoDataFrame | None, metric: pyproj.CRS) -> np.ndarray:
    """A layer's valid, non-empty geometries in ``metric`` (empty when there is no layer)."""
    if layer is None or len(layer) == 0:
        return np.array([], dtype=object)
    if layer.crs is None:
        source = layer.attrs.get("source", "a barriers or compounds layer")
        raise InputError(
            f"{source} has no CRS: declare one in the file (e.g. write it as GeoJSON in "
            "WGS84) or call `gdf.set_crs(...)`."
        )
    geoms = layer.to_crs(metric).geometry.to_numpy()
    geoms = geoms[~shapely.is_missing(geoms)]
    geoms = np.where(shapely.is_valid(geoms), geoms, shapely.make_valid(geoms))
    return geoms[~shapely.is_empty(geoms)]


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


def _grouping_figures(
    rows: pd.DataFrame, loose: np.ndarray, distance: float, community_ids: np.ndarray
) -> dict[str, dict[str, float]]:
    """Rows without a building id and the buildings they were grouped into, per community."""
    frame = rows[rows["key"].str.startswith("g:") | rows["key"].str.startswith("p:")]
    frame = frame[frame["building"].isna()]
    if len(frame) == 0 or len(loose) == 0:
        return {}
    figures = frame.groupby("comm").agg(rows=("key", "size"), buildings=("key", "nunique"))
    return {
        str(community_ids[c]): {
            "rows": int(r.rows),
            "buildings": int(r.buildings),
            "merge_distance_m": float(distance),
        }
        for c, r in figures.iterrows()
    }


def _shared_location_notes(units: pd.DataFrame, community_ids: np.ndarray) -> dict[int, list[str]]:
    """Say where buildings with different ids share one location (and so form one unit)."""
    shared = units[units["ids"].map(len) > 1]
    notes: dict[int, list[str]] = {}
    for comm_idx, group in shared.groupby("comm", sort=True):
        examples = "; ".join(" + ".join(ids) for ids in group["ids"].head(3))
        notes[int(comm_idx)] = [
            f"{len(group)} location(s) hold several buildings with different ids at one point "
            f"({examples}{'; ...' if len(group) > 3 else ''}); the buildings at one location "
            "form one unit, so they always share a grid. Give them their own coordinates to "
            "let them go to different grids"
        ]
    return notes


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
    return _attach(cells, parts, assigned)


def _attach(
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
        faces, _ = _attach(faces.astype(object), parts, assigned)
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
        cells, island_notes = _attach(cells, parts, assigned)
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


def build_units(
    boundaries: gpd.GeoDataFrame,
    households: gpd.GeoDataFrame,
    *,
    crs: pyproj.CRS | str | None = None,
    merge_distance: float = MERGE_DISTANCE,
    barriers: gpd.GeoDataFrame | None = None,
    compounds: gpd.GeoDataFrame | None = None,
    split_above: int | None = None,
    compound_buildings_col: str | None = None,
) -> Units:
    """Group household rows into buildings and give each building a cell.

    Rows with a ``building_id`` form one building per id.  Rows without one
    (one point per household, the most basic input) form one building per
    group of points within ``merge_distance`` metres of each other
    (:func:`group_points`); footprints form one building per footprint.

    Parameters
    ----------
    boundaries
        Communities as returned by :func:`gridkit.read_boundaries`.
    households
        Households as returned by :func:`gridkit.read_households`.
    crs
        Metric CRS to work in; default the UTM zone of the boundaries.
    merge_distance
        Household points without a building id closer than this (metres) are one
        building (default :data:`MERGE_DISTANCE`, 5 m); 0 keeps only points at
        one location (to 0.1 m) together.
    barriers, compounds
        Roads, rivers, railways, walls (lines or polygons) and compound outlines
        (polygons), any CRS: each community is first cut into blocks along them
        (:func:`community_blocks`) and every cell is built inside its building's
        block (:func:`block_cells`), so no cell straddles a road or a compound
        wall and grid borders follow them wherever the plan keeps to them.
    split_above
        The grids' ``max_households``.  A row that is a whole compound (one
        point per compound, with its number of buildings in
        ``compound_buildings_col``) holding more than ``split_above``
        households is split into the fewest grids that fit, made of whole
        virtual buildings (households / buildings each): its cell is divided
        into that many parts (:func:`split_compound`), each a unit with
        ``split_of`` set, which the partition keeps as a grid of its own
        (status ``split_compound``).  ``None``: no split.
    compound_buildings_col
        Column giving a compound row's number of buildings (楼栋数); default the
        first of :data:`COMPOUND_BUILDING_COLUMNS` present.  When the
        households have one, every row is a compound (``unit_kind``
        ``compound``).

    Returns
    -------
    Units
        Units with cells, the row → unit membership and the unassigned rows.

    Warns
    -----
    GridkitWarning
        When household rows lie outside every community (they are listed as
        unassigned, never dropped).
    """
    if not (np.isfinite(merge_distance) and merge_distance >= 0):
        raise InputError(
            f"`merge_distance` must be a distance in metres >= 0, got {merge_distance}; "
            f"pass e.g. --merge-distance {MERGE_DISTANCE:g}."
        )
    metric = pyproj.CRS.from_user_input(crs) if crs is not None else local_metric_crs(boundaries)
    comm = boundaries.to_crs(metric).reset_index(drop=True)
    hh = households.to_crs(metric)
    geoms = hh.geometry.to_numpy()
    points = np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.point_on_surface(geoms))
    where = community_of_points(points, comm.geometry.to_numpy())
    community_ids = comm["community_id"].to_numpy()
    membership = pd.DataFrame(
        {
            "unit_id": pd.array([pd.NA] * len(hh), dtype="Int64"),
            "community_id": pd.array(
                np.where(where >= 0, community_ids[np.maximum(where, 0)], None), dtype="string"
            ),
            "reason": np.where(where >= 0, "", "outside_communities"),
        },
        index=hh.index,
    )
    outside = np.flatnonzero(where < 0)
    if len(hh) and len(outside) == len(hh):
        source = households.attrs.get("source", "households")
        raise InputError(
            f"none of the {len(hh)} household rows of {source} lies inside any community of "
            f"{boundaries.attrs.get('source', 'the boundaries')}: the two files are probably in "
            "different coordinate systems (e.g. Baidu BD-09 or Amap GCJ-02 points on WGS84 "
            "outlines). Pass --input-crs for the households (bd09, gcj02, wgs84 or EPSG:nnnn) "
            "and --communities-crs for the boundaries if they were traced on a Chinese web map."
        )
    if len(outside):
        rows = hh["row"].to_numpy()[outside] if "row" in hh else outside + 1
        source = households.attrs.get("source", "households")
        warnings.warn(
            f"{len(outside)} household row(s) of {source} lie outside every community "
            f"(rows {format_ids(rows)}); they are listed as unassigned with reason "
            "'outside_communities'. Check the input CRS (--input-crs) or extend the boundaries.",
            GridkitWarning,
            stacklevel=2,
        )
    inside = np.flatnonzero(where >= 0)
    xy = shapely.get_coordinates(points[inside])
    if "building_id" in hh and hh["building_id"].notna().any():
        building = hh["building_id"].to_numpy(dtype=object)[inside]
    else:
        building = np.full(len(inside), None, dtype=object)
    has_building = pd.notna(building)
    counts_b, compound_rows = _compound_building_counts(hh, compound_buildings_col, households)
    compound_names = _compound_names(hh)
    snapped = np.round(xy / _SNAP).astype(np.int64)
    footprint = shapely.get_type_id(geoms[inside]) != 0
    # household points without a building id are grouped by distance; a row that is a
    # whole compound (a compound-buildings column) stays a unit of its own
    loose = np.flatnonzero(~has_building & ~footprint & (not compound_rows))
    cluster = group_points(xy[loose], where[inside][loose], merge_distance)
    if footprint.any():
        wkb = shapely.to_wkb(shapely.normalize(geoms[inside]), hex=True)
    else:
        wkb = np.full(len(inside), "", dtype=object)
    key = np.array(
        [
            f"b:{b}" if has else (f"f:{f}" if fp else f"p:{sx}_{sy}")
            for b, has, fp, f, sx, sy in zip(
                building,
                has_building,
                footprint,
                wkb,
                snapped[:, 0],
                snapped[:, 1],
                strict=True,
            )
        ],
        dtype=object,
    )
    if merge_distance > 0 and len(loose):
        key[loose] = np.char.add("g:", cluster.astype(str)).astype(object)
    rows_frame = pd.DataFrame(
        {
            "pos": inside,
            "comm": where[inside],
            "key": key,
            "x": xy[:, 0],
            "y": xy[:, 1],
            "hh": hh["households"].to_numpy(dtype=np.int64)[inside],
            "building": pd.Series(building, dtype=object).where(has_building, None).to_numpy(),
            "compound": hh["compound"]
            .astype(object)
            .where(hh["compound"].notna(), None)
            .to_numpy()[inside]
            if "compound" in hh
            else np.full(len(inside), None, dtype=object),
            "hid": hh["household_id"].astype(str).to_numpy()[inside]
            if "household_id" in hh
            else (inside + 1).astype(str),
            "cb": counts_b[inside],
            "cname": compound_names[inside],
        }
    )
    first = rows_frame.groupby(["comm", "key"], sort=True).agg(
        x=("x", "mean"),
        y=("y", "mean"),
        hh=("hh", "sum"),
        n=("hh", "size"),
        building=("building", "first"),
        hid=("hid", "first"),
        compound=("compound", "first"),
        cb=("cb", "max"),
        cname=("cname", "first"),
    )
    # Rows of one building id far apart (one id, several geocodes) can average to a
    # point outside the community, e.g. across the notch of a U, whose Voronoi cell
    # misses the community: use the building's row point nearest to the mean instead.
    mean_points = shapely.points(first[["x", "y"]].to_numpy())
    comm_idx = first.index.get_level_values("comm").to_numpy()
    astray = np.flatnonzero(~shapely.covers(comm.geometry.to_numpy()[comm_idx], mean_points))
    for i in astray:
        members = rows_frame.loc[
            (rows_frame["comm"] == comm_idx[i])
            & (rows_frame["key"] == first.index.get_level_values("key")[i]),
            ["x", "y"],
        ].to_numpy()
        gaps = np.hypot(*(members - first[["x", "y"]].to_numpy()[i]).T)
        first.iloc[i, [first.columns.get_loc("x"), first.columns.get_loc("y")]] = members[
            int(np.argmin(gaps))
        ]
    first["rx"] = np.round(first["x"].to_numpy() / _SNAP).astype(np.int64)
    first["ry"] = np.round(first["y"].to_numpy() / _SNAP).astype(np.int64)
    first = first.reset_index()
    units = (
        first.groupby(["comm", "rx", "ry"], sort=True)
        .agg(
            households=("hh", "sum"),
            rows=("n", "sum"),
            building_id=("building", "first"),
            first_household_id=("hid", "first"),
            compound=("compound", "first"),
            ids=("building", lambda b: sorted({str(v) for v in b if v is not None})),
            cb=("cb", "max"),
            cname=("cname", "first"),
        )
        .reset_index()
    )
    shared_notes = _shared_location_notes(units, community_ids)
    grouping = _grouping_figures(rows_frame, loose, merge_distance, community_ids)
    units = units.drop(columns="ids")
    units["building_id"] = (
        units["building_id"].astype(object).where(units["building_id"].notna(), None)
    )
    units["unit_id"] = np.arange(len(units), dtype=np.int64)
    first = first.merge(units[["comm", "rx", "ry", "unit_id"]], on=["comm", "rx", "ry"])
    rows_frame = rows_frame.merge(first[["comm", "key", "unit_id"]], on=["comm", "key"])
    membership.iloc[rows_frame["pos"].to_numpy(), 0] = rows_frame["unit_id"].to_numpy()
    units["x"] = units["rx"] * _SNAP
    units["y"] = units["ry"] * _SNAP
    unit_points = shapely.points(units[["x", "y"]].to_numpy())
    cells = np.empty(len(units), dtype=object)
    notes: dict[str, list[str]] = {}
    cutters = {
        name: _metric_geometries(layer, metric)
        for name, layer in (("barriers", barriers), ("compounds", compounds))
    }
    trees = {name: shapely.STRtree(g) for name, g in cutters.items() if len(g)}
    for comm_idx, group in units.groupby("comm", sort=True):
        idx = group.index.to_numpy()
        outline = comm.geometry.iloc[comm_idx]
        near = {
            name: cutters[name][tree.query(outline, predicate="intersects")]
            for name, tree in trees.items()
        }
        if any(len(g) for g in near.values()):
            blocks = community_blocks(outline, near.get("barriers"), near.get("compounds"))
            cells[idx], comm_notes = block_cells(unit_points[idx], outline, blocks)
        else:
            cells[idx], comm_notes = unit_cells(unit_points[idx], outline)
        comm_notes = shared_notes.get(comm_idx, []) + comm_notes
        if comm_notes:
            notes[str(community_ids[comm_idx])] = comm_notes
    units["community_id"] = community_ids[units["comm"].to_numpy()]
    units["unit_kind"] = "compound" if compound_rows else "building"
    units["split_of"] = None
    units["buildings"] = np.where(np.isfinite(units["cb"]), units["cb"], 1).astype(np.int64)
    if compound_rows:  # a compound row is named by its name where it has no building id
        units["building_id"] = units["building_id"].where(
            units["building_id"].notna(), units["cname"]
        )
    if split_above is not None and compound_rows:
        units, cells, moved, split_notes = _split_compounds(units, cells, split_above=split_above)
        if moved is not None:
            old = membership["unit_id"]
            new = moved[old.fillna(0).to_numpy(dtype=np.int64)]
            membership["unit_id"] = pd.Series(new, index=old.index, dtype="Int64").where(
                old.notna(), pd.NA
            )
        for cid, extra in split_notes.items():
            notes.setdefault(cid, []).extend(extra)
    result = gpd.GeoDataFrame(
        units[
            [
                "unit_id",
                "community_id",
                "households",
                "rows",
                "building_id",
                "first_household_id",
                "compound",
                "x",
                "y",
                "unit_kind",
                "split_of",
                "buildings",
            ]
        ],
        geometry=gpd.GeoSeries(cells, crs=metric),
        crs=metric,
    )
    comm = comm.copy()
    comm["n_units"] = np.bincount(units["comm"], minlength=len(comm))
    comm["households"] = np.bincount(
        units["comm"], weights=units["households"], minlength=len(comm)
    ).astype(np.int64)
    log.info(
        "built %d units from %d household rows in %d communities (%d rows unassigned)",
        len(result),
        len(hh),
        len(comm),
        len(outside),
    )
    return Units(
        units=result,
        membership=membership,
        communities=comm,
        crs=metric,
        notes=notes,
        grouping=grouping,
    )
