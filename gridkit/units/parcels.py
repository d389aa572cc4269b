"""Dedicated grids (专属网格): non-residential parcels carved out of their communities.

:func:`carve_parcels` cuts each parcel (a school, a hospital, a park, ... as
:func:`gridkit.io.read_dedicated` reads them) out of the communities it lies in, before
they are partitioned.  Every part of a parcel inside a community becomes one dedicated
grid (:attr:`Dedicated.pieces`), coded in the community's block 901-999
(:func:`gridkit.codes.dedicated_grid_code`); the community minus its pieces
(:attr:`Dedicated.residential`) is what its residential grids tile.

:func:`locate_rows` finds the household rows in a piece: they belong to its dedicated grid
(counted, no household bounds) and are left out of the units.  :class:`PieceTally` counts
their households, buildings and compounds, in one go or chunk by chunk, and
:func:`full_membership` puts them back among the rows of :class:`gridkit.units.Units`.

Rules
    - A part of a parcel outside every community is dropped, with a warning (and a note
      on the communities holding the rest of it).
    - A parcel across two communities gives one dedicated grid per community part, with
      a note on each community.
    - A part smaller than :data:`MIN_PIECE_M2` or thinner than :data:`MIN_PIECE_WIDTH_M`
      on average (a digitising sliver over a community line) is no grid.
    - Codes go in a stable order within a community: by parcel name (named parcels
      first), then by input row.  Given the previous dedicated grids (``regenerate``),
      a piece overlapping one of them by at least :data:`SAME_PARCEL_IOU` (intersection
      over union) keeps its code; other pieces take the next sequence after every one
      ever issued, so a removed parcel's code is never reused.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.codes import DEDICATED_BLOCK, dedicated_grid_code
from gridkit.contracts import GRID_TYPE_WORDS
from gridkit.crs import local_metric_crs
from gridkit.errors import GridkitWarning, InputError, format_ids
from gridkit.units.points import community_of_points

__all__ = [
    "MIN_PIECE_M2",
    "MIN_PIECE_WIDTH_M",
    "PIECE_COLUMNS",
    "SAME_PARCEL_IOU",
    "Dedicated",
    "PieceTally",
    "carve_parcels",
    "full_membership",
    "locate_rows",
    "row_points",
]

#: Columns of :attr:`Dedicated.pieces`, in order.
PIECE_COLUMNS = (
    "community_id",
    "grid_code",
    "grid_type",
    "grid_name",
    "parcel_row",
    "parcel_name",
    "geometry",
)

#: A part of a parcel in a community must be larger than this (m²) to be a grid ...
MIN_PIECE_M2 = 1.0
#: ... and wider than this on average (m), the width being 2 * area / perimeter.
MIN_PIECE_WIDTH_M = 0.1
#: Intersection over union above which a piece is the same parcel as a previous grid.
SAME_PARCEL_IOU = 0.5

_SEP = "、"
#: Pieces and remainders are cut on a grid of this size (m, GEOS snap-rounding): a
#: parcel edge running along a community edge leaves no spike thinner than a micrometre,
#: which a reprojection to lon/lat would turn into a self-intersecting ring.
_GRID_M = 1e-6
#: Polygon parts smaller than this (m²) are dropped from pieces and remainders.
_CRUMB_M2 = 0.01


@dataclass
class Dedicated:
    """The dedicated grids of a district and what is left for the residential ones.

    Attributes
    ----------
    pieces
        One row per dedicated grid (:data:`PIECE_COLUMNS`), in community order then by
        code, in the metric CRS of the carving: ``community_id``, ``grid_code``,
        ``grid_type`` (the parcel's type), ``grid_name`` (its name, else the
        community's name and the type in words), ``parcel_row`` and ``parcel_name``
        (the input feature), ``geometry`` (the part of the parcel in the community).
    residential
        The boundaries, same rows and columns, in the same metric CRS, each
        community's geometry less its pieces (possibly empty: a community that is all
        parcel).  Carving happens in the metric CRS the units are built in, so that no
        reprojection can bend the shared edges apart.
    notes
        Per community id, what carving did (a parcel across communities, a part
        outside every community).
    row_piece
        Per household row, the position of its piece in ``pieces`` or -1 (set when
        the rows are located, :func:`locate_rows`).
    tally
        Per piece: ``households``, ``rows``, ``buildings``, ``compounds``
        (:meth:`PieceTally.frame`), once counted.
    """

    pieces: gpd.GeoDataFrame
    residential: gpd.GeoDataFrame
    notes: dict[str, list[str]] = field(default_factory=dict)
    row_piece: np.ndarray | None = None
    tally: pd.DataFrame | None = None

    def types(self) -> dict[str, tuple[str, str]]:
        """Grid code -> ``(grid_type, grid_name)`` of every dedicated grid."""
        return {
            str(c): (str(t), str(n))
            for c, t, n in zip(
                self.pieces["grid_code"], self.pieces["grid_type"], self.pieces["grid_name"],
                strict=True,
            )
        }  # fmt: skip


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """The polygonal part of each geometry (empty Polygon where there is none)."""
    out = np.array(geoms, dtype=object)
    for i, g in enumerate(out):
        if g is None or g.is_empty:
            out[i] = shapely.Polygon()
        elif g.geom_type not in ("Polygon", "MultiPolygon"):
            parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
            out[i] = shapely.union_all(parts) if parts else shapely.Polygon()
    return out


def _without_crumbs(geom):
    """``geom`` without its polygon parts below :data:`_CRUMB_M2` (valid, polygonal)."""
    if geom is None or geom.is_empty:
        return shapely.Polygon()
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    parts = [p for p in shapely.get_parts(_polygonal(np.array([geom], dtype=object))[0])
             if p.area >= _CRUMB_M2]  # fmt: skip
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _label(name: object, row: int) -> str:
    return f"'{name}' (row {row})" if name is not None and not pd.isna(name) else f"row {row}"


def _check_frames(boundaries: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame, crs) -> tuple:
    source = parcels.attrs.get("source", "`dedicated`")
    if boundaries.crs is None or parcels.crs is None:
        raise InputError(
            f"{source if parcels.crs is None else 'the boundaries'} have no CRS: set it "
            "(`gdf.set_crs(4326)`) or read the parcels with `gridkit.io.read_dedicated`."
        )
    if "type" not in parcels:
        raise InputError(
            f"{source} has no `type` column (school, hospital, park, ...): read the file "
            "with `gridkit.io.read_dedicated`, which finds and checks it."
        )
    rows = (
        parcels["row"].to_numpy() if "row" in parcels else np.arange(1, len(parcels) + 1)
    )
    names = (
        parcels["name"].to_numpy(dtype=object) if "name" in parcels
        else np.full(len(parcels), None, dtype=object)
    )  # fmt: skip
    geoms = parcels.to_crs(crs).geometry.to_numpy()
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if bad.any():
        raise InputError(
            f"{source}: parcels without geometry at rows {format_ids(rows[bad])}: draw them or "
            "delete those rows (`gridkit.io.read_dedicated` checks every row)."
        )
    geoms = np.where(shapely.is_valid(geoms), geoms, shapely.make_valid(geoms))
    return source, rows, names, _polygonal(geoms)


def carve_parcels(
    boundaries: gpd.GeoDataFrame,
    parcels: gpd.GeoDataFrame,
    *,
    crs=None,
    previous: gpd.GeoDataFrame | None = None,
    issued: Mapping[str, Iterable[str]] | None = None,
) -> Dedicated:
    """Cut dedicated parcels out of their communities and code their grids.

    Parameters
    ----------
    boundaries
        The communities (``community_id``, ``community_name``, polygons, any CRS).
    parcels
        The parcels, as :func:`gridkit.io.read_dedicated` returns them (``type``,
        ``name``, ``row``, polygons, any CRS).
    crs
        The metric CRS to carve in: the one the units are built in (default
        :func:`gridkit.crs.local_metric_crs` of the boundaries, as the pipeline uses).
    previous
        The previous grid layer (``regenerate``): its dedicated grids (codes 901-999)
        give their code to the piece of the same parcel.
    issued
        Per community id, every code it ever issued (``codes.json``): a new piece
        takes the next dedicated sequence after all of them.

    Returns
    -------
    Dedicated
        The pieces and the residential remainder of every community, in ``crs``;
        notes per community.

    Warns
    -----
    GridkitWarning
        A parcel (or a part of one) outside every community: it is dropped.
    """
    metric = crs if crs is not None else local_metric_crs(boundaries)
    source, rows, names, P = _check_frames(boundaries, parcels, metric)
    types = parcels["type"].to_numpy(dtype=object)
    comm = boundaries.to_crs(metric).reset_index(drop=True)
    C = comm.geometry.to_numpy()
    cids = comm["community_id"].astype(str).to_numpy()
    pi, ci = shapely.STRtree(C).query(P, predicate="intersects")
    parts = (
        _polygonal(shapely.intersection(P[pi], C[ci], grid_size=_GRID_M))
        if len(pi) else np.array([])
    )  # fmt: skip
    if len(pi):
        pm = parts
        area = shapely.area(pm)
        with np.errstate(divide="ignore", invalid="ignore"):
            width = np.where(area > 0, 2 * area / shapely.length(pm), 0.0)
        keep = (area > MIN_PIECE_M2) & (width > MIN_PIECE_WIDTH_M)
        pi, ci, parts = pi[keep], ci[keep], parts[keep]
    order = np.lexsort((pi, ci))
    pi, ci, parts = pi[order], ci[order], parts[order]
    parts = np.array([_without_crumbs(p) for p in parts], dtype=object)
    notes: dict[str, list[str]] = {}
    _outside_notes(P, C, pi, ci, rows, names, cids, notes, source)
    for k in np.unique(pi):
        where = cids[ci[pi == k]]
        if len(where) > 1:
            for cid in where:
                notes.setdefault(str(cid), []).append(
                    f"dedicated parcel {_label(names[k], rows[k])} spans communities "
                    f"{', '.join(where)}: one dedicated grid in each"
                )
    codes = _codes(cids[ci], rows[pi], names[pi], parts, previous, issued, metric)
    community_names = comm.set_index(comm["community_id"].astype(str))["community_name"]
    grid_names = [
        str(names[k]) if names[k] is not None and not pd.isna(names[k])
        else f"{community_names.loc[cids[c]]}{GRID_TYPE_WORDS['zh'].get(str(types[k]), types[k])}"
        for k, c in zip(pi, ci, strict=True)
    ]  # fmt: skip
    pieces = gpd.GeoDataFrame(
        {
            "community_id": pd.Series(cids[ci], dtype=object),
            "grid_code": pd.Series(codes, dtype=object),
            "grid_type": pd.Series(types[pi], dtype=object).astype(str),
            "grid_name": pd.Series(grid_names, dtype=object),
            "parcel_row": rows[pi].astype(np.int64),
            "parcel_name": pd.Series(names[pi], dtype=object),
        },
        geometry=gpd.GeoSeries(parts, crs=comm.crs),
        crs=comm.crs,
    )
    pieces = pieces.iloc[np.lexsort((pieces["grid_code"].to_numpy(), ci))].reset_index(drop=True)
    residential = comm.copy()
    geoms = C.copy()
    for c in np.unique(ci):
        cut = shapely.difference(C[c], shapely.union_all(parts[ci == c]), grid_size=_GRID_M)
        geoms[c] = _without_crumbs(cut)
    residential[comm.geometry.name] = gpd.GeoSeries(geoms, crs=comm.crs)
    residential.attrs = dict(boundaries.attrs)
    return Dedicated(pieces=pieces, residential=residential, notes=notes)


def _outside_notes(P, C, pi, ci, rows, names, cids, notes, source) -> None:
    """Warn about parcels (and parts of parcels) outside every community; note the parts."""
    lost: list[str] = []
    for k in range(len(P)):
        held = ci[pi == k]
        if not len(held):
            lost.append(_label(names[k], rows[k]))
            continue
        rest = shapely.difference(P[k], shapely.union_all(C[np.unique(held)]))
        outside = float(shapely.area(rest))
        if outside > MIN_PIECE_M2:
            text = (
                f"dedicated parcel {_label(names[k], rows[k])}: {outside:,.0f} m² lie outside "
                "every community and are left out of its grid"
            )
            for cid in np.unique(cids[held]):
                notes.setdefault(str(cid), []).append(text)
            lost.append(f"{_label(names[k], rows[k])} in part ({outside:,.0f} m²)")
    if lost:
        warnings.warn(
            f"{source}: {len(lost)} dedicated parcel(s) lie outside every community, wholly or "
            f"in part ({format_ids(lost)}); what lies outside is dropped (no grid). Check the "
            "parcels' CRS, or extend the community boundaries.",
            GridkitWarning,
            stacklevel=3,
        )


def _seq(code: str) -> int:
    try:
        return int(str(code)[-3:])
    except ValueError:
        return 0


def _codes(
    cids: np.ndarray,
    rows: np.ndarray,
    names: np.ndarray,
    metric_parts: np.ndarray,
    previous: gpd.GeoDataFrame | None,
    issued: Mapping[str, Iterable[str]] | None,
    metric,
) -> list[str]:
    """The dedicated grid code of each piece (see the module notes)."""
    codes: list[str | None] = [None] * len(cids)
    prev = None
    if previous is not None and len(previous):
        seqs = np.array([_seq(c) for c in previous["grid_code"].astype(str)])
        prev = previous[seqs > DEDICATED_BLOCK]
        prev = prev.assign(community_id=prev["community_id"].astype(str)).to_crs(metric)
    for cid in pd.unique(cids):
        members = np.flatnonzero(cids == cid)
        used = {_seq(c) for c in (issued or {}).get(cid, ())} if issued else set()
        if prev is not None:
            mine = prev[prev["community_id"] == cid]
            used |= {_seq(c) for c in mine["grid_code"].astype(str)}
            _match_previous(members, metric_parts, mine, codes)
        used = {s for s in used if s > DEDICATED_BLOCK}
        taken = {_seq(codes[i]) for i in members if codes[i] is not None}
        nxt = max(used | taken | {DEDICATED_BLOCK}) + 1
        order = sorted(
            members,
            key=lambda i: (names[i] is None or pd.isna(names[i]), str(names[i] or ""), rows[i]),
        )
        for i in order:
            if codes[i] is None:
                codes[i] = dedicated_grid_code(str(cid), nxt - DEDICATED_BLOCK)
                nxt += 1
    return [str(c) for c in codes]


def _match_previous(
    members: np.ndarray, metric_parts: np.ndarray, previous: gpd.GeoDataFrame,
    codes: list[str | None],
) -> None:  # fmt: skip
    """Give a piece the code of the previous dedicated grid it overlaps most (IoU ≥ 0.5)."""
    if not len(previous) or not len(members):
        return
    old = previous.geometry.to_numpy()
    old_codes = previous["grid_code"].astype(str).to_numpy()
    pairs = []
    for i in members:
        inter = shapely.area(shapely.intersection(metric_parts[i], old))
        union = shapely.area(metric_parts[i]) + shapely.area(old) - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, inter / union, 0.0)
        pairs += [(float(v), int(i), int(j)) for j, v in enumerate(iou) if v >= SAME_PARCEL_IOU]
    taken_pieces: set[int] = set()
    taken_codes: set[int] = set()
    for _, i, j in sorted(pairs, key=lambda t: (-t[0], t[1], t[2])):
        if i in taken_pieces or j in taken_codes:
            continue
        codes[i] = str(old_codes[j])
        taken_pieces.add(i)
        taken_codes.add(j)


def row_points(geoms: np.ndarray) -> np.ndarray:
    """The point gridkit locates each household row by: itself, or a point on a footprint."""
    geoms = np.asarray(geoms, dtype=object)
    return np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.point_on_surface(geoms))


def locate_rows(
    points: np.ndarray, residential: np.ndarray, pieces: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The community and the piece of each household point (all in one metric CRS).

    A point in a community's residential part belongs to it (on a shared edge, to the
    first community, as :func:`gridkit.units.community_of_points`); a point in no
    residential part goes to the piece holding it.

    Returns
    -------
    community, piece
        Positions in ``residential`` and ``pieces``, -1 where none.
    """
    where = community_of_points(points, residential)
    piece = np.full(len(points), -1, dtype=np.int64)
    out = np.flatnonzero(where < 0)
    if len(out) and len(pieces):
        piece[out] = community_of_points(points[out], pieces)
    return where, piece


class PieceTally:
    """Households, rows, buildings and compounds of the rows in each piece.

    Buildings are the distinct building ids, and the distinct locations (to 0.1 m) of
    rows without one.  Fed in one go or chunk by chunk (:meth:`add`); saved and read
    back as JSON (:meth:`to_json`, :meth:`from_json`) by file-to-file runs.
    """

    def __init__(self, n: int) -> None:
        self.households = np.zeros(n, dtype=np.int64)
        self.rows = np.zeros(n, dtype=np.int64)
        self.keys: list[set[str]] = [set() for _ in range(n)]
        self.compounds: list[set[str]] = [set() for _ in range(n)]
        self.counted: np.ndarray | None = None

    def add(
        self,
        piece: np.ndarray,
        households: np.ndarray,
        building_ids: np.ndarray | None,
        points: np.ndarray,
        compounds: np.ndarray | None = None,
    ) -> None:
        """Count rows: their piece (-1: none), households, building ids, points, compounds."""
        inside = np.flatnonzero(np.asarray(piece) >= 0)
        if not len(inside):
            return
        k = np.asarray(piece)[inside]
        hh = np.asarray(households, dtype=np.int64)[inside]
        np.add.at(self.households, k, hh)
        np.add.at(self.rows, k, 1)
        xy = np.round(shapely.get_coordinates(np.asarray(points, dtype=object)[inside]) / 0.1)
        ids = (
            np.asarray(building_ids, dtype=object)[inside]
            if building_ids is not None
            else np.full(len(inside), None, dtype=object)
        )
        names = (
            np.asarray(compounds, dtype=object)[inside]
            if compounds is not None
            else np.full(len(inside), None, dtype=object)
        )
        for j, p in enumerate(k):
            b = ids[j]
            has = b is not None and not pd.isna(b)
            self.keys[p].add(f"b:{b}" if has else f"p:{int(xy[j, 0])}_{int(xy[j, 1])}")
            if names[j] is not None and not pd.isna(names[j]):
                self.compounds[p].add(str(names[j]))

    def frame(self) -> pd.DataFrame:
        """Per piece: ``households``, ``rows``, ``buildings``, ``compounds`` (or None)."""
        buildings = (
            self.counted if self.counted is not None
            else np.array([len(s) for s in self.keys], dtype=np.int64)
        )  # fmt: skip
        return pd.DataFrame(
            {
                "households": self.households,
                "rows": self.rows,
                "buildings": buildings,
                "compounds": pd.Series(
                    [_SEP.join(sorted(s)) if s else None for s in self.compounds], dtype=object
                ),
            }
        )

    def to_json(self) -> dict:
        """The counts as JSON-able lists (building keys are counted, not kept)."""
        f = self.frame()
        return {k: [None if pd.isna(v) else (v if isinstance(v, str) else int(v))
                    for v in f[k]] for k in f.columns}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict) -> PieceTally:
        """The tally :meth:`to_json` saved."""
        tally = cls(len(data["households"]))
        tally.households = np.asarray(data["households"], dtype=np.int64)
        tally.rows = np.asarray(data["rows"], dtype=np.int64)
        tally.counted = np.asarray(data["buildings"], dtype=np.int64)
        tally.compounds = [set(str(c).split(_SEP)) if c else set() for c in data["compounds"]]
        return tally


def full_membership(
    membership: pd.DataFrame,
    kept: np.ndarray,
    index: pd.Index,
    piece: np.ndarray,
    piece_community: np.ndarray,
) -> pd.DataFrame:
    """The row -> unit membership of every household row, the rows in pieces put back.

    Parameters
    ----------
    membership
        :attr:`gridkit.units.Units.membership` of the rows outside the pieces.
    kept
        Their positions among all rows.
    index
        The index of all rows.
    piece
        Per row, its piece or -1.
    piece_community
        Per piece, its community id.

    Returns
    -------
    pandas.DataFrame
        ``unit_id`` (``<NA>`` for a row in a piece), ``community_id`` (a piece's row: the
        piece's community) and ``reason`` (empty for a row in a piece), on ``index``.
    """
    n = len(index)
    unit = pd.array([pd.NA] * n, dtype="Int64")
    unit[kept] = membership["unit_id"].to_numpy()
    community = np.full(n, None, dtype=object)
    community[kept] = membership["community_id"].to_numpy(dtype=object)
    inside = np.flatnonzero(piece >= 0)
    community[inside] = np.asarray(piece_community, dtype=object)[piece[inside]]
    reason = np.full(n, "", dtype=object)
    reason[kept] = membership["reason"].to_numpy(dtype=object)
    return pd.DataFrame(
        {
            "unit_id": unit,
            "community_id": pd.array(
                [None if pd.isna(c) else str(c) for c in community], dtype="string"
            ),
            "reason": reason.astype(str),
        },
        index=index,
    )
