"""Compounds (小区): households named by compound outlines, and whole-compound rows split.

:func:`attach_compounds` names each household row by the compound polygon it lies in.
Where every household row is a whole compound (one point per compound, with its number
of buildings), a compound above a grid's maximum is split into the fewest grids of whole
(virtual) buildings (:func:`compound_shares`), and its cell into strips across its long
axis with areas in proportion (:func:`split_compound`); :func:`split_compound_units`
replaces such a unit by its parts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import affinity

from gridkit.errors import InputError, format_ids
from gridkit.units.cells import attach_pieces

__all__ = [
    "COMPOUND_BUILDING_COLUMNS",
    "COMPOUND_NAME_COLUMNS",
    "attach_compounds",
    "compound_building_counts",
    "compound_buildings_column",
    "compound_row_names",
    "compound_shares",
    "split_compound",
    "split_compound_units",
]

#: The stage's logger (the name units logged under as one module): stable for users who
#: configure it.
log = logging.getLogger("gridkit.units")


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


def compound_building_counts(
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


def compound_row_names(hh: pd.DataFrame) -> np.ndarray:
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
        strips, _ = attach_pieces(strips, parts, assigned)
    return list(strips)


def split_compound_units(
    units: pd.DataFrame, cells: np.ndarray, *, split_above: int | Mapping[str, int]
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None, dict[str, list[str]]]:
    """Replace every compound unit above ``split_above`` with known buildings by its parts.

    ``split_above`` is one number, or a number per community id (communities with bounds
    of their own); a community missing from the mapping is never split.
    """
    if isinstance(split_above, Mapping):
        limit = units["community_id"].astype(str).map(split_above)
        limit = limit.fillna(np.inf).to_numpy(dtype=float)
    else:
        limit = np.full(len(units), float(split_above))
    big = np.flatnonzero((units["households"].to_numpy() > limit) & (units["cb"].to_numpy() >= 2))
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
        shares = compound_shares(h, b, max_households=int(limit[i]))
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
