"""Audit an existing grid map: households per grid, problems, gaps and overlaps.

:func:`audit_grids` takes any grid map (drawn by hand, exported by another
platform, or made by gridkit), the households and optionally the community
boundaries, and returns an :class:`AuditResult`: one row per grid with its
households, buildings and ``problems``, the uncovered parts of the
communities (gaps), and a report.  :func:`read_grids` reads a grid file.

Problem codes (a contract, in this order, joined by ``;`` in ``problems``)
    ``below_min``          fewer households than ``min_households``
    ``above_max``          more households than ``max_households``
    ``not_contiguous``     more than one piece
    ``overlap``            shares area with another grid
    ``outside_community``  extends beyond its community (communities given)
    ``crosses_community``  spans two or more communities (communities given)

Tolerances
    Everything is measured in the local UTM zone
    (:func:`gridkit.crs.local_metric_crs`).  A shared, outside or uncovered
    part counts only if it is *significant*: each polygonal piece of it must
    be larger than ``tolerance_m2`` (default 1 m²) **and** wider than
    ``sliver_width_m`` (default 0.1 m) on average, the width being
    ``2 * area / perimeter``.  Digitising slivers along shared borders (a
    border drawn twice 2 cm apart, coordinates rounded to 7 decimals by a
    GeoJSON export, a reprojection) are therefore neither overlaps, nor
    outside parts, nor gaps.  A grid's pieces smaller than ``tolerance_m2``
    (crumbs) do not make it ``not_contiguous``.

Locating households
    Household rows of one building (same ``building_id``; without ids, same
    footprint or the same point to 0.1 m, as in :mod:`gridkit.units`) are one
    *building*, located at the mean of its rows' points (a footprint's point
    on surface), so a building is never split between grids.  A building
    strictly inside several grids is in each of them and its households count
    in ``households_in_several_grids``; a building exactly on the shared
    border of two grids goes to the first of them in input order; a building
    in no grid counts in ``households_outside_grids``.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridkit.crs import local_metric_crs, normalise_crs_name
from gridkit.errors import GridkitWarning, InputError, format_ids
from gridkit.io import BOUNDARY_COLUMNS, HOUSEHOLD_COLUMNS, read_boundaries, read_households
from gridkit.io import readers as _io
from gridkit.io import validate as _validate
from gridkit.utils import __version__

__all__ = [
    "AUDIT_COLUMNS",
    "AUDIT_FILES",
    "GAP_COLUMNS",
    "PROBLEMS",
    "SLIVER_WIDTH_M",
    "TOLERANCE_M2",
    "AuditResult",
    "audit_grids",
    "format_summary",
    "read_grids",
]

log = logging.getLogger(__name__)

#: Files ``gridkit audit`` writes, by kind (one set: :class:`gridkit.outputs.OutputSet`).
AUDIT_FILES = {
    "audit": "audit.geojson",
    "gaps": "gaps.geojson",
    "assignments": "assignments.csv",
    "report": "report.json",
}

#: Problem codes and their meaning, in the order they appear in ``problems``.
PROBLEMS: dict[str, str] = {
    "below_min": "fewer households than `min_households`",
    "above_max": "more households than `max_households`",
    "not_contiguous": "more than one piece",
    "overlap": "shares area with another grid",
    "outside_community": "extends beyond its community",
    "crosses_community": "spans two or more communities",
}

#: A shared / outside / uncovered piece must be larger than this (m²) to count.
TOLERANCE_M2 = 1.0
#: ... and wider than this on average (m), the width being 2 * area / perimeter.
SLIVER_WIDTH_M = 0.1

#: Columns of ``audit.geojson`` (``grid_name`` and ``declared_households`` only when the
#: audited map has ``grid_name`` / ``households`` columns).
AUDIT_COLUMNS = (
    "grid_code",
    "grid_name",
    "community_id",
    "households",
    "buildings",
    "problems",
    "area_m2",
    "pieces",
    "overlap_m2",
    "overlaps_with",
    "outside_m2",
    "communities",
    "declared_households",
)

#: Columns of ``gaps.geojson``.
GAP_COLUMNS = (
    "gap_id",
    "community_id",
    "community_name",
    "area_m2",
    "households",
    "buildings",
    "household_rows",
)

GRID_COLUMNS = ("grid_code", "community_id", "row", "geometry")

_GRID_CODE_NAMES = ("grid_code",)
# community id of a grid: the grids.geojson name, then the shapefile export's short name.
_GRID_COMMUNITY_NAMES = ("community_id", "comm_id")
_SNAP = 0.1  # metres: building points closer than this on both axes are one building

PathOrFrame = str | os.PathLike[str] | pd.DataFrame


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------


def _marker_system(frame: pd.DataFrame) -> str | None:
    """``"gcj02"``/``"bd09"`` when a gridkit export marked the file with ``crs_note``."""
    from gridkit.export import crs_from_note

    cols = [c for c in frame.columns if str(c).strip().lower() == "crs_note"]
    if not cols:
        return None
    found = {crs_from_note(v) for v in frame[cols[0]].dropna().astype(str).unique()}
    found.discard(None)
    return found.pop() if len(found) == 1 else None


def _own_wgs84_layer(path: Any, frame: pd.DataFrame) -> bool:
    """Whether ``path`` is a WGS84 grid layer gridkit wrote (partition, regenerate, assign)."""
    from gridkit.contracts import GRID_COLUMNS
    from gridkit.export import read_manifest

    if not isinstance(path, str | os.PathLike):
        return False
    p = Path(path)
    if p.suffix.lower() not in (".geojson", ".json"):
        return False
    try:
        manifest = read_manifest(p.parent)
    except InputError:
        manifest = None
    if manifest is not None and p.name in manifest["files"]:
        return manifest.get("command") in ("partition", "regenerate", "assign")
    return all(c in frame.columns for c in GRID_COLUMNS)


def _find_column(columns: list[Any], explicit: str | None, candidates: tuple[str, ...]) -> Any:
    if explicit is not None:
        if explicit in columns:
            return explicit
        matches = [c for c in columns if str(c).strip().lower() == explicit.strip().lower()]
        return matches[0] if len(matches) == 1 else None
    for name in candidates:
        matches = [c for c in columns if str(c).strip().lower() == name]
        if len(matches) == 1:
            return matches[0]
    return None


def read_grids(
    path: PathOrFrame,
    *,
    grid_code_col: str | None = None,
    community_col: str | None = None,
    input_crs: Any = None,
    layer: str | int | None = None,
    crs_given: bool = False,
) -> gpd.GeoDataFrame:
    """Read a grid map (one polygon per grid) into a normalised grids frame.

    Parameters
    ----------
    path
        A GeoJSON, GeoPackage or Shapefile (``.shp`` or zipped ``.zip``), or a
        GeoDataFrame (copied, never modified).
    grid_code_col
        Column with the unique grid code; default ``grid_code``
        (case-insensitive).  CLI ``--grid-code-col``.
    community_col
        Column with the community id of each grid; default ``community_id``
        or ``comm_id`` (the Shapefile export's name) when present, else none.
        CLI ``--grid-community-col``.
    input_crs
        CRS of the coordinates when the file declares none, or to override
        it: ``"wgs84"``, ``"gcj02"``, ``"bd09"`` or anything pyproj accepts.
        A file exported by ``gridkit export --crs gcj02|bd09`` carries a
        ``crs_note`` column saying so; that marker wins over ``input_crs``.
    layer
        Layer name or index, required when the file has several layers.
    crs_given
        ``input_crs`` names the grids' own CRS (CLI ``--grids-crs``).  Otherwise it
        is a CRS for all inputs (``--input-crs``) and does not apply to a grid layer
        gridkit wrote itself (a ``grids.geojson`` listed in its folder's
        ``gridkit-outputs.json``, or a GeoJSON with every column of the grid
        contract), which is WGS84 by contract.

    Returns
    -------
    geopandas.GeoDataFrame
        In EPSG:4326 with a RangeIndex and ``attrs["source"]``; columns
        ``grid_code`` (str), ``community_id`` (str or None), ``row`` (1-based
        feature number), ``geometry`` (valid Polygon / MultiPolygon), then the
        other source columns (``<name>_src`` on a name collision).

    Raises
    ------
    InputError
        The file is missing or unreadable, has no grid-code column, codes are
        missing or duplicated, geometries are missing, empty, not polygons or
        not lon/lat where they should be, or the CRS is missing or unknown.
        All row-level problems are listed in one error.

    Warns
    -----
    GridkitWarning
        When invalid polygons were repaired with ``shapely.make_valid``, or
        when ``input_crs`` contradicts the file's ``crs_note`` marker.
    """
    what = "grid map"
    if isinstance(path, str | os.PathLike) and Path(path).is_file():
        from gridkit.export import check_set

        check_set(Path(path).parent, [Path(path).name])  # a set gridkit wrote is whole
    source, frame, is_table = _io.load_file(path, layer=layer, what=what, tables=False)
    if is_table:
        msg = (
            f"{what} '{source}' has no geometry column: grids must be polygons; pass a "
            f"GeoDataFrame or a {_io.VECTOR_FORMATS} file."
        )
        raise InputError(msg)
    if len(frame) == 0:
        msg = f"{what} file '{source}' contains no features: check the file and `layer`."
        raise InputError(msg)
    problems = _validate.Problems(source, what)
    columns = [c for c in frame.columns if c != frame.geometry.name]
    code_src = _find_column(columns, grid_code_col, _GRID_CODE_NAMES)
    if code_src is None:
        given = (
            f"column {grid_code_col!r} given as `grid_code_col` does not exist"
            if grid_code_col is not None
            else "no grid code column found (looked for `grid_code`, case-insensitive)"
        )
        msg = (
            f"{what} '{source}': {given}; available columns: {_io.columns_text(columns)}. "
            "Pass the column holding the grid codes as `grid_code_col=...` "
            "(CLI `--grid-code-col COL`)."
        )
        raise InputError(msg)
    comm_src = _find_column(columns, community_col, _GRID_COMMUNITY_NAMES)
    if community_col is not None and comm_src is None:
        msg = (
            f"{what} '{source}': column {community_col!r} given as `community_col` does not "
            f"exist; available columns: {_io.columns_text(columns)}. Pass one of them "
            "(CLI `--grid-community-col COL`)."
        )
        raise InputError(msg)

    marker = _marker_system(frame)
    if marker is None and not crs_given and _own_wgs84_layer(path, frame):
        if input_crs is not None and normalise_crs_name(input_crs) != "wgs84":
            warnings.warn(
                f"{what} '{source}' is a grid layer gridkit wrote (WGS84 by contract), so "
                f"`input_crs={input_crs!r}` (CLI `--input-crs`) is not applied to it, only to "
                "the other inputs; pass `--grids-crs` to force a CRS on the grids.",
                GridkitWarning,
                stacklevel=2,
            )
        input_crs = None
    if marker is not None:
        if input_crs is not None and normalise_crs_name(input_crs) != marker:
            warnings.warn(
                f"{what} '{source}' is marked {marker} by its `crs_note` column (a gridkit "
                f"export), so it is read as {marker}, not as `input_crs={input_crs!r}`; drop "
                "the `crs_note` column to override the marker.",
                GridkitWarning,
                stacklevel=2,
            )
        input_crs = marker
    kind = "boundaries"  # same `--input-crs` flag in messages
    crs = _io.resolve_input_crs(
        frame.crs, input_crs, source=source, what=what, kind=kind, is_table=False
    )
    n = len(frame)
    rows = np.arange(1, n + 1, dtype=np.int64)
    codes = _io.as_text(frame[code_src])
    _validate.check_ids(
        codes,
        rows,
        column=str(code_src),
        missing_fix="give every grid a code, or pass `grid_code_col=...` (CLI "
        "`--grid-code-col`) to use another column.",
        duplicate_fix="give each grid its own code, or, if these features are pieces of one "
        f"grid, dissolve them first (`gdf.dissolve(by={str(code_src)!r}, as_index=False)`).",
        problems=problems,
    )
    geoms = shapely.force_2d(np.asarray(frame.geometry.array, dtype=object))
    _validate.check_geometries(
        geoms,
        rows,
        allowed=_validate.POLYGONAL,
        type_fix="Grids must be closed polygons: convert lines with `shapely.polygonize` or "
        "delete these features.",
        problems=problems,
    )
    _io.check_coordinates(
        geoms,
        rows,
        crs,
        kind=kind,
        swap_fix="the file stores (lat, lon); exchange x and y at the source (e.g. "
        "`shapely.transform(geoms, lambda c: c[:, ::-1])`) and read it again.",
        problems=problems,
    )
    problems.raise_if_any()
    labels = [f"grid {c}" for c in codes]
    geoms, repaired = _validate.repair_geometries(geoms, rows, labels, problems=problems)
    problems.raise_if_any()
    community = (
        _io.as_optional_text(frame[comm_src])
        if comm_src is not None
        else pd.Series([None] * n, dtype=object)
    )
    contract = {"grid_code": codes, "community_id": community, "row": rows}
    used = {code_src, comm_src} - {None}
    out = _io.assemble_frame(contract, geoms, frame, used, source=source)
    out = _io.frame_to_wgs84(out, crs, kind=kind, problems=problems)
    if repaired:
        warnings.warn(f"{what} '{source}': {repaired}", GridkitWarning, stacklevel=2)
    log.info("read %d grids from %s (code column %r, CRS %s)", n, source, code_src, crs.label)
    return out


def _normalised(frame: Any, columns: tuple[str, ...]) -> bool:
    return (
        isinstance(frame, gpd.GeoDataFrame)
        and frame.crs is not None
        and all(c in frame.columns for c in columns)
    )


def _as_grids(grids: Any, grid_code_col: str | None) -> gpd.GeoDataFrame:
    if grid_code_col is None and _normalised(grids, GRID_COLUMNS):
        out = grids.to_crs(4326).reset_index(drop=True)
        out.attrs = dict(grids.attrs)
        return out
    return read_grids(grids, grid_code_col=grid_code_col)


def _as_households(households: Any) -> gpd.GeoDataFrame:
    if _normalised(households, HOUSEHOLD_COLUMNS):
        out = households.to_crs(4326).reset_index(drop=True)
        out.attrs = dict(households.attrs)
        return out
    return read_households(households)


def _as_communities(communities: Any) -> gpd.GeoDataFrame:
    if _normalised(communities, BOUNDARY_COLUMNS):
        out = communities.to_crs(4326).reset_index(drop=True)
        out.attrs = dict(communities.attrs)
        return out
    return read_boundaries(communities)


# ---------------------------------------------------------------------------
# geometry helpers (vectorised)
# ---------------------------------------------------------------------------


def _polygons(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every Polygon inside ``geoms`` (collections flattened) and the index of its owner."""
    parts, owner = shapely.get_parts(np.asarray(geoms, dtype=object), return_index=True)
    while True:
        multi = shapely.get_type_id(parts) >= 4
        if not multi.any():
            break
        sub, sub_owner = shapely.get_parts(parts[multi], return_index=True)
        parts = np.concatenate([parts[~multi], sub])
        owner = np.concatenate([owner[~multi], owner[multi][sub_owner]])
    keep = shapely.get_type_id(parts) == 3
    return parts[keep], owner[keep]


def _significant(parts: np.ndarray, *, tolerance_m2: float, sliver_width_m: float) -> np.ndarray:
    """Pieces larger than ``tolerance_m2`` and wider than ``sliver_width_m`` (2 A / P)."""
    area = shapely.area(parts)
    perimeter = shapely.length(parts)
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.where(perimeter > 0, 2 * area / perimeter, 0.0)
    return (area > tolerance_m2) & (width > sliver_width_m)


def _significant_area(
    geoms: np.ndarray, *, tolerance_m2: float, sliver_width_m: float
) -> np.ndarray:
    """Per geometry, the total area of its significant polygonal pieces."""
    parts, owner = _polygons(geoms)
    keep = _significant(parts, tolerance_m2=tolerance_m2, sliver_width_m=sliver_width_m)
    return np.bincount(owner[keep], weights=shapely.area(parts[keep]), minlength=len(geoms))


# ---------------------------------------------------------------------------
# households → buildings → grids
# ---------------------------------------------------------------------------


@dataclass
class _Buildings:
    points: np.ndarray  # shapely Points, metric CRS
    households: np.ndarray  # int64 per building
    rows: np.ndarray  # household rows per building
    of_row: np.ndarray  # building index of each household row


def _buildings(hh: gpd.GeoDataFrame) -> _Buildings:
    """Group household rows (metric CRS) into buildings located at their mean point."""
    geoms = hh.geometry.to_numpy()
    points = np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.point_on_surface(geoms))
    xy = shapely.get_coordinates(points)
    n = len(hh)
    building = hh["building_id"].to_numpy(dtype=object) if n else np.array([], dtype=object)
    has_building = pd.notna(building)
    footprint = shapely.get_type_id(geoms) != 0
    wkb = (
        shapely.to_wkb(shapely.normalize(geoms), hex=True)
        if footprint.any()
        else np.full(n, "", dtype=object)
    )
    snapped = np.round(xy / _SNAP).astype(np.int64) if n else np.zeros((0, 2), np.int64)
    key = [
        f"b:{b}" if has else (f"f:{f}" if fp else f"p:{sx}_{sy}")
        for b, has, fp, f, sx, sy in zip(
            building, has_building, footprint, wkb, snapped[:, 0], snapped[:, 1], strict=True
        )
    ]
    frame = pd.DataFrame(
        {
            "key": key,
            "x": xy[:, 0],
            "y": xy[:, 1],
            "hh": hh["households"].to_numpy(dtype=np.int64),
        }
    )
    first = frame.groupby("key", sort=True).agg(
        x=("x", "mean"), y=("y", "mean"), hh=("hh", "sum"), n=("hh", "size")
    )
    first["rx"] = np.round(first["x"].to_numpy() / _SNAP).astype(np.int64)
    first["ry"] = np.round(first["y"].to_numpy() / _SNAP).astype(np.int64)
    # Buildings at the same point (to 0.1 m) are one building, as in gridkit.units.
    merged = first.groupby(["rx", "ry"], sort=True).agg(hh=("hh", "sum"), n=("n", "sum"))
    merged["b"] = np.arange(len(merged), dtype=np.int64)
    first = first.join(merged["b"], on=["rx", "ry"])
    of_row = first.loc[frame["key"], "b"].to_numpy(dtype=np.int64)
    rx = merged.index.get_level_values("rx").to_numpy()
    ry = merged.index.get_level_values("ry").to_numpy()
    return _Buildings(
        points=shapely.points(rx * _SNAP, ry * _SNAP),
        households=merged["hh"].to_numpy(dtype=np.int64),
        rows=merged["n"].to_numpy(dtype=np.int64),
        of_row=of_row,
    )


def _locate_in(points: np.ndarray, polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (point, polygon) placing each point; several pairs when inside several polygons.

    A point strictly inside polygons is placed in each of them; a point only on
    boundaries goes to the first such polygon (lowest index); others get none.
    """
    if len(points) == 0 or len(polygons) == 0:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    tree = shapely.STRtree(polygons)
    pt, poly = tree.query(points, predicate="intersects")
    inside = shapely.contains_properly(polygons[poly], points[pt])
    has_inside = np.zeros(len(points), dtype=bool)
    has_inside[pt[inside]] = True
    edge_pt, edge_poly = pt[~inside & ~has_inside[pt]], poly[~inside & ~has_inside[pt]]
    frame = pd.DataFrame({"pt": edge_pt, "poly": edge_poly}).sort_values(["pt", "poly"])
    frame = frame.drop_duplicates("pt")
    out_pt = np.concatenate([pt[inside], frame["pt"].to_numpy(dtype=np.int64)])
    out_poly = np.concatenate([poly[inside], frame["poly"].to_numpy(dtype=np.int64)])
    order = np.lexsort((out_poly, out_pt))
    return out_pt[order].astype(np.int64), out_poly[order].astype(np.int64)


# ---------------------------------------------------------------------------
# result
# ---------------------------------------------------------------------------


@dataclass
class AuditResult:
    """What :func:`audit_grids` found.

    Attributes
    ----------
    grids
        One row per audited grid, in input order, EPSG:4326: ``grid_code``,
        ``grid_name`` (when the map has one), ``community_id`` (the map's, or
        the community holding most of the grid when the map has none and
        communities are given), ``households``, ``buildings``, ``problems``
        (codes of :data:`PROBLEMS` joined by ``;``, empty when fine),
        ``area_m2``, ``pieces`` (pieces larger than the tolerance),
        ``overlap_m2`` and ``overlaps_with`` (codes, ``;``-joined),
        ``outside_m2`` (area outside its community), ``communities`` (ids of
        the communities it covers significantly, largest share first),
        ``declared_households`` (the map's own ``households`` value, when it
        has that column).
    gaps
        Significant parts of the communities that no grid covers (without
        communities: holes enclosed by the grids), EPSG:4326, with
        :data:`GAP_COLUMNS`.
    assignments
        One row per household row, in input order: ``household_id``, ``row``,
        ``grid_code`` (``;``-joined when in several grids, empty when in
        none), ``gap_id`` (when in a gap), ``reason`` (empty,
        ``outside_grids`` or ``several_grids``).
    report
        The figures written to ``report.json`` (see :func:`audit_grids`).
    """

    grids: gpd.GeoDataFrame
    gaps: gpd.GeoDataFrame
    assignments: pd.DataFrame
    report: dict

    def write(self, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``audit.geojson``, ``gaps.geojson``, ``assignments.csv`` and ``report.json``.

        Parameters
        ----------
        out_dir
            Output folder, created if needed.

        Returns
        -------
        dict
            The path of each file, keyed ``audit``, ``gaps``, ``assignments``, ``report``.
        """
        from gridkit.export import OutputSet, to_assignments_csv, to_geojson, to_report_json

        with OutputSet(out_dir, "audit", known=AUDIT_FILES.values()) as out:
            to_geojson(self.grids, out.path(AUDIT_FILES["audit"]))
            to_geojson(self.gaps, out.path(AUDIT_FILES["gaps"]))
            to_assignments_csv(self.assignments, out.path(AUDIT_FILES["assignments"]))
            to_report_json(self.report, out.path(AUDIT_FILES["report"]))
            written = out.commit()
        return {kind: written[n] for kind, n in AUDIT_FILES.items()}


# ---------------------------------------------------------------------------
# the audit
# ---------------------------------------------------------------------------


def _split_compound_households(grids: pd.DataFrame, located: np.ndarray) -> np.ndarray:
    """Households per grid, with each compound split by building number checked as a group.

    A compound given as one point and split into several grids by building number
    (``compound`` on gridkit's grid layer) is located in one of them only: its
    households cannot be told apart by place.  When the households located in the
    compound's grids add up to what those grids declare, each grid is credited
    with its declared households; otherwise the located counts stand (and are
    flagged).
    """
    if "compound" not in grids or "households" not in grids:
        return located
    names = grids["compound"].to_numpy(dtype=object)
    declared = pd.to_numeric(grids["households"], errors="coerce").to_numpy()
    out = located.copy()
    for name in sorted({str(v) for v in names if v is not None and not pd.isna(v)}):
        members = np.flatnonzero(names == name)
        if np.isfinite(declared[members]).all() and int(located[members].sum()) == int(
            declared[members].sum()
        ):
            out[members] = declared[members].astype(np.int64)
    return out


def _check_parameters(
    min_households: int, max_households: int, tolerance_m2: float, sliver_width_m: float
) -> None:
    bad = []
    if min_households < 0 or max_households < 0:
        bad.append(
            f"`min_households`={min_households} and `max_households`={max_households} must be ≥ 0"
        )
    elif min_households > max_households:
        bad.append(
            f"`min_households`={min_households} is above `max_households`={max_households}: "
            "swap them"
        )
    if not (tolerance_m2 >= 0 and sliver_width_m >= 0):
        bad.append(
            f"`tolerance_m2`={tolerance_m2} and `sliver_width_m`={sliver_width_m} must be ≥ 0"
        )
    if bad:
        msg = "audit parameters: " + "; ".join(bad) + "."
        raise InputError(msg)


def _join(values: Any) -> str:
    return ";".join(str(v) for v in values)


def audit_grids(
    grids: gpd.GeoDataFrame | str | os.PathLike[str],
    households: gpd.GeoDataFrame | pd.DataFrame | str | os.PathLike[str],
    *,
    communities: gpd.GeoDataFrame | str | os.PathLike[str] | None = None,
    min_households: int = 400,
    max_households: int = 800,
    grid_code_col: str | None = None,
    tolerance_m2: float = TOLERANCE_M2,
    sliver_width_m: float = SLIVER_WIDTH_M,
) -> AuditResult:
    """Count households and buildings per grid and list every grid's problems.

    Parameters
    ----------
    grids
        The grid map: a frame from :func:`read_grids`, any GeoDataFrame with
        a ``grid_code`` column (or ``grid_code_col``), or a file path.
    households
        Household points or building footprints: a frame from
        :func:`gridkit.read_households`, or anything it reads (read with its
        defaults; call it yourself for other columns or CRSs).
    communities
        Community boundaries (a frame from :func:`gridkit.read_boundaries`
        or anything it reads).  Needed for ``outside_community``,
        ``crosses_community`` and community gaps.
    min_households, max_households
        Household bounds per grid (``below_min`` / ``above_max``).
    grid_code_col
        Column with the grid codes when ``grids`` is not a :func:`read_grids` frame.
    tolerance_m2, sliver_width_m
        A shared, outside or uncovered piece counts only when larger than
        ``tolerance_m2`` and wider than ``sliver_width_m`` (2 × area /
        perimeter); see the module notes.

    Returns
    -------
    AuditResult
        ``grids``, ``gaps``, ``assignments`` and ``report``.  The report holds
        ``parameters``; ``grids``, ``grids_with_problems`` and ``problems``
        (grids per problem code, every code present); ``households``,
        ``household_rows``, ``households_in_grids``,
        ``households_outside_grids``, ``households_in_several_grids`` (and
        the same as ``household_rows_*``), ``households_outside_communities``
        (``None`` without communities); ``gaps``, ``gap_area_m2``,
        ``households_in_gaps``, ``overlap_area_m2``; the ids of the household
        rows outside grids and in several grids; and one entry per grid with
        problems and per gap.  Identical inputs give identical results.

    Raises
    ------
    InputError
        Bad parameters, or input files the readers reject.

    Examples
    --------
    Two grids in Wuhan overlapping by a 96 m strip, with a 300-household
    building in the strip:

    >>> import geopandas as gpd, shapely
    >>> grids = gpd.GeoDataFrame({"grid_code": ["A-001", "A-002"]}, crs=4326,
    ...     geometry=[shapely.box(114.300, 30.60, 114.305, 30.605),
    ...               shapely.box(114.304, 30.60, 114.309, 30.605)])
    >>> homes = gpd.GeoDataFrame({"households": [450, 300, 500]}, crs=4326,
    ...     geometry=shapely.points([[114.301, 30.601], [114.3045, 30.602], [114.308, 30.601]]))
    >>> result = audit_grids(grids, homes)
    >>> result.grids["households"].tolist(), result.grids["problems"].tolist()
    ([750, 800], ['overlap', 'overlap'])
    >>> result.report["households_in_several_grids"]
    300
    """
    _check_parameters(min_households, max_households, tolerance_m2, sliver_width_m)
    g = _as_grids(grids, grid_code_col)
    hh = _as_households(households)
    comm = _as_communities(communities) if communities is not None else None
    significant = {"tolerance_m2": tolerance_m2, "sliver_width_m": sliver_width_m}

    metric = local_metric_crs(g)
    G = np.asarray(g.geometry.to_crs(metric).array, dtype=object)
    n = len(G)
    codes = g["grid_code"].to_numpy(dtype=object)
    area = shapely.area(G)

    # pieces
    parts, owner = _polygons(G)
    pieces = np.bincount(owner[shapely.area(parts) > tolerance_m2], minlength=n)

    # overlaps (vectorised over candidate pairs from one STRtree query)
    tree = shapely.STRtree(G)
    a, b = tree.query(G, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    shared = (
        _significant_area(shapely.intersection(G[a], G[b]), **significant)
        if len(a)
        else np.array([])
    )
    hit = shared > 0
    a, b, shared = a[hit], b[hit], shared[hit]
    overlap_m2 = np.bincount(a, weights=shared, minlength=n) + np.bincount(
        b, weights=shared, minlength=n
    )
    overlaps_with: list[list[str]] = [[] for _ in range(n)]
    for i, j in zip(a, b, strict=True):
        overlaps_with[i].append(codes[j])
        overlaps_with[j].append(codes[i])

    # households: buildings located in grids
    hh_metric = hh.to_crs(metric)
    bld = _buildings(hh_metric)
    b_pt, b_grid = _locate_in(bld.points, G)
    n_grids_of = np.bincount(b_pt, minlength=len(bld.points))
    grid_households = np.bincount(b_grid, weights=bld.households[b_pt], minlength=n).astype(
        np.int64
    )
    grid_buildings = np.bincount(b_grid, minlength=n).astype(np.int64)
    grid_households = _split_compound_households(g, grid_households)

    # communities
    outside_m2 = np.zeros(n)
    covered: list[list[str]] = [[] for _ in range(n)]
    community_of = g["community_id"].to_numpy(dtype=object).copy()
    unknown_ids: list[str] = []
    gap_geoms: list[Any] = []
    gap_comm: list[int] = []
    bld_in_comm = None
    if comm is not None:
        C = np.asarray(comm.geometry.to_crs(metric).array, dtype=object)
        comm_ids = comm["community_id"].to_numpy(dtype=object)
        index_of = {cid: k for k, cid in enumerate(comm_ids)}
        own = np.array(
            [index_of.get(c, -1) if c is not None and not pd.isna(c) else -1 for c in community_of],
            dtype=np.int64,
        )
        unknown_ids = sorted(
            {str(c) for c, k in zip(community_of, own, strict=True) if k < 0 and pd.notna(c)}
        )
        everything = shapely.union_all(C)
        target = np.where(own >= 0, C[np.maximum(own, 0)], everything)
        outside_m2 = _significant_area(shapely.difference(G, target), **significant)
        ctree = shapely.STRtree(C)
        gi, ci = ctree.query(G, predicate="intersects")
        share = (
            _significant_area(shapely.intersection(G[gi], C[ci]), **significant)
            if len(gi)
            else np.array([])
        )
        frame = pd.DataFrame({"g": gi, "c": ci, "share": share})
        frame = frame[frame["share"] > 0].sort_values(
            ["g", "share", "c"], ascending=[True, False, True]
        )
        for gk, ck in zip(frame["g"].to_numpy(), frame["c"].to_numpy(), strict=True):
            covered[gk].append(comm_ids[ck])
        for k in range(n):
            if (community_of[k] is None or pd.isna(community_of[k])) and covered[k]:
                community_of[k] = covered[k][0]
        # gaps: each community minus the grids touching it
        grids_of_comm = pd.Series(gi).groupby(ci).apply(list).to_dict() if len(ci) else {}
        for k, poly in enumerate(C):
            members = grids_of_comm.get(k, [])
            rest = shapely.difference(poly, shapely.union_all(G[members])) if members else poly
            pieces_k, _ = _polygons(np.array([rest], dtype=object))
            for piece in pieces_k[_significant(pieces_k, **significant)]:
                gap_geoms.append(piece)
                gap_comm.append(k)
        b_in, _ = _locate_in(bld.points, C)
        bld_in_comm = np.zeros(len(bld.points), dtype=bool)
        bld_in_comm[b_in] = True
    else:
        union = shapely.union_all(G)
        holes = []
        for poly in _polygons(np.array([union], dtype=object))[0]:
            holes.extend(shapely.polygons(list(poly.interiors)) if poly.interiors else [])
        holes_arr = np.array(holes, dtype=object)
        if len(holes_arr):
            for piece in holes_arr[_significant(holes_arr, **significant)]:
                gap_geoms.append(piece)
                gap_comm.append(-1)

    # problems per grid
    flags = {
        "below_min": grid_households < min_households,
        "above_max": grid_households > max_households,
        "not_contiguous": pieces > 1,
        "overlap": overlap_m2 > 0,
        "outside_community": outside_m2 > 0,
        "crosses_community": np.array([len(c) >= 2 for c in covered], dtype=bool),
    }
    problems = [_join(code for code, mask in flags.items() if mask[k]) for k in range(n)]

    # gaps with the households of buildings in no grid
    gaps = _gap_frame(gap_geoms, gap_comm, comm, metric)
    outside = n_grids_of == 0
    b_gap = np.full(len(bld.points), -1, dtype=np.int64)
    if len(gaps):
        gp = np.asarray(gaps.geometry.to_crs(metric).array, dtype=object)
        idx = np.flatnonzero(outside)
        p, q = _locate_in(bld.points[idx], gp)
        first = pd.DataFrame({"p": p, "q": q}).drop_duplicates("p")
        b_gap[idx[first["p"].to_numpy(dtype=np.int64)]] = first["q"].to_numpy(dtype=np.int64)
        in_gap = b_gap >= 0
        gaps["households"] = np.bincount(
            b_gap[in_gap], weights=bld.households[in_gap], minlength=len(gaps)
        ).astype(np.int64)
        gaps["buildings"] = np.bincount(b_gap[in_gap], minlength=len(gaps)).astype(np.int64)
        gaps["household_rows"] = np.bincount(
            b_gap[in_gap], weights=bld.rows[in_gap], minlength=len(gaps)
        ).astype(np.int64)

    out = _grid_frame(
        g,
        codes=codes,
        community_of=community_of,
        households=grid_households,
        buildings=grid_buildings,
        problems=problems,
        area=area,
        pieces=pieces,
        overlap_m2=overlap_m2,
        overlaps_with=overlaps_with,
        outside_m2=outside_m2,
        covered=covered,
    )
    assignments = _assignments(hh, bld, b_pt, b_grid, b_gap, codes, gaps)
    report = _report(
        out,
        gaps,
        hh,
        bld,
        assignments,
        n_grids_of=n_grids_of,
        bld_in_comm=bld_in_comm,
        parameters={
            "min_households": int(min_households),
            "max_households": int(max_households),
            "tolerance_m2": float(tolerance_m2),
            "sliver_width_m": float(sliver_width_m),
            "metric_crs": pyproj.CRS.from_user_input(metric).to_string(),
            "grids": str(g.attrs.get("source", "")) or None,
            "households": str(hh.attrs.get("source", "")) or None,
            "communities": (str(comm.attrs.get("source", "")) or None)
            if comm is not None
            else None,
        },
        unknown_ids=unknown_ids,
    )
    if unknown_ids:
        warnings.warn(
            f"{len(unknown_ids)} community id(s) of the grid map are not in the community "
            f"boundaries ({format_ids(unknown_ids)}); those grids were checked against all "
            "communities together. Check the `community_id` column of the grids, or pass the "
            "matching boundaries.",
            GridkitWarning,
            stacklevel=2,
        )
    log.info(
        "audited %d grids: %d with problems, %d households outside grids, %d gaps",
        n,
        report["grids_with_problems"],
        report["households_outside_grids"],
        report["gaps"],
    )
    return AuditResult(grids=out, gaps=gaps, assignments=assignments, report=report)


def _gap_frame(
    geoms: list[Any], comm_index: list[int], comm: gpd.GeoDataFrame | None, metric: Any
) -> gpd.GeoDataFrame:
    """Gap pieces ordered by community, then north → south, west → east; with ids."""
    arr = np.array(geoms, dtype=object)
    ck = np.array(comm_index, dtype=np.int64)
    if len(arr):
        rep = shapely.point_on_surface(arr)
        x, y = shapely.get_x(rep), shapely.get_y(rep)
        order = np.lexsort((np.round(x, 1), -np.round(y, 1), ck))
        arr, ck = arr[order], ck[order]
    ids, cids, names = [], [], []
    counter: dict[int, int] = {}
    for k in ck:
        counter[k] = counter.get(k, 0) + 1
        if k >= 0 and comm is not None:
            cid = str(comm["community_id"].iloc[k])
            cids.append(cid)
            names.append(str(comm["community_name"].iloc[k]))
            ids.append(f"{cid}-gap{counter[k]:02d}")
        else:
            cids.append(None)
            names.append(None)
            ids.append(f"gap{counter[k]:02d}")
    frame = gpd.GeoDataFrame(
        {
            "gap_id": pd.Series(ids, dtype=object),
            "community_id": pd.Series(cids, dtype=object),
            "community_name": pd.Series(names, dtype=object),
            "area_m2": np.round(shapely.area(arr), 1) if len(arr) else np.array([], float),
            "households": np.zeros(len(arr), dtype=np.int64),
            "buildings": np.zeros(len(arr), dtype=np.int64),
            "household_rows": np.zeros(len(arr), dtype=np.int64),
        },
        geometry=gpd.GeoSeries(arr, crs=metric),
    )
    return frame.to_crs(4326)


def _grid_frame(
    g: gpd.GeoDataFrame,
    *,
    codes: np.ndarray,
    community_of: np.ndarray,
    households: np.ndarray,
    buildings: np.ndarray,
    problems: list[str],
    area: np.ndarray,
    pieces: np.ndarray,
    overlap_m2: np.ndarray,
    overlaps_with: list[list[str]],
    outside_m2: np.ndarray,
    covered: list[list[str]],
) -> gpd.GeoDataFrame:
    data: dict[str, Any] = {"grid_code": pd.Series(codes, dtype=object)}
    if "grid_name" in g.columns:
        data["grid_name"] = pd.Series(
            [None if pd.isna(v) else str(v) for v in g["grid_name"]], dtype=object
        )
    data.update(
        {
            "community_id": pd.Series(
                [None if pd.isna(v) else str(v) for v in community_of], dtype=object
            ),
            "households": households.astype(np.int64),
            "buildings": buildings.astype(np.int64),
            "problems": pd.Series(problems, dtype=object),
            "area_m2": np.round(area, 1),
            "pieces": pieces.astype(np.int64),
            "overlap_m2": np.round(overlap_m2, 1),
            "overlaps_with": pd.Series([_join(v) for v in overlaps_with], dtype=object),
            "outside_m2": np.round(outside_m2, 1),
            "communities": pd.Series([_join(v) for v in covered], dtype=object),
        }
    )
    if "households" in g.columns:
        declared = pd.to_numeric(g["households"], errors="coerce")
        data["declared_households"] = declared.astype("Int64").to_numpy()
    frame = gpd.GeoDataFrame(data, geometry=g.geometry.reset_index(drop=True), crs=4326)
    return frame


def _assignments(
    hh: gpd.GeoDataFrame,
    bld: _Buildings,
    b_pt: np.ndarray,
    b_grid: np.ndarray,
    b_gap: np.ndarray,
    codes: np.ndarray,
    gaps: gpd.GeoDataFrame,
) -> pd.DataFrame:
    per_building = pd.Series(codes[b_grid], dtype=object).groupby(b_pt).agg(_join)
    code_of_building = np.full(len(bld.points), "", dtype=object)
    code_of_building[per_building.index.to_numpy(dtype=np.int64)] = per_building.to_numpy()
    count = np.bincount(b_pt, minlength=len(bld.points))
    gap_ids = gaps["gap_id"].to_numpy(dtype=object) if len(gaps) else np.array([], dtype=object)
    gap_of_building = np.full(len(bld.points), "", dtype=object)
    if len(gap_ids):
        gap_of_building[b_gap >= 0] = gap_ids[b_gap[b_gap >= 0]]
    reason = np.where(count == 0, "outside_grids", np.where(count > 1, "several_grids", ""))
    rb = bld.of_row
    return pd.DataFrame(
        {
            "household_id": hh["household_id"].astype(str).to_numpy(),
            "row": hh["row"].to_numpy(dtype=np.int64),
            "grid_code": code_of_building[rb],
            "gap_id": gap_of_building[rb] if len(rb) else np.array([], dtype=object),
            "reason": reason[rb],
        }
    )


def _report(
    grids: gpd.GeoDataFrame,
    gaps: gpd.GeoDataFrame,
    hh: gpd.GeoDataFrame,
    bld: _Buildings,
    assignments: pd.DataFrame,
    *,
    n_grids_of: np.ndarray,
    bld_in_comm: np.ndarray | None,
    parameters: dict,
    unknown_ids: list[str],
) -> dict:
    codes_per_grid = [p.split(";") if p else [] for p in grids["problems"]]
    counts = {code: sum(code in c for c in codes_per_grid) for code in PROBLEMS}
    outside = n_grids_of == 0
    several = n_grids_of > 1
    hh_counts = hh["households"].to_numpy(dtype=np.int64)
    rows_outside = assignments["reason"].to_numpy() == "outside_grids"
    rows_several = assignments["reason"].to_numpy() == "several_grids"
    flagged = []
    for k, codes in enumerate(codes_per_grid):
        if not codes:
            continue
        entry: dict[str, Any] = {
            "grid_code": str(grids["grid_code"].iloc[k]),
            "households": int(grids["households"].iloc[k]),
            "buildings": int(grids["buildings"].iloc[k]),
            "problems": codes,
            "pieces": int(grids["pieces"].iloc[k]),
        }
        if "overlap" in codes:
            entry["overlaps_with"] = grids["overlaps_with"].iloc[k].split(";")
            entry["overlap_m2"] = float(grids["overlap_m2"].iloc[k])
        if "outside_community" in codes:
            entry["outside_m2"] = float(grids["outside_m2"].iloc[k])
        if "crosses_community" in codes:
            entry["communities"] = grids["communities"].iloc[k].split(";")
        flagged.append(entry)
    overlap_total = float(grids["overlap_m2"].sum()) / 2
    return {
        "gridkit_version": __version__,
        "parameters": parameters,
        "grids": len(grids),
        "grids_with_problems": len(flagged),
        "problems": counts,
        "households": int(hh_counts.sum()),
        "household_rows": len(hh),
        "buildings": len(bld.points),
        "households_in_grids": int(bld.households[~outside].sum()),
        "households_outside_grids": int(bld.households[outside].sum()),
        "households_in_several_grids": int(bld.households[several].sum()),
        "household_rows_outside_grids": int(rows_outside.sum()),
        "household_rows_in_several_grids": int(rows_several.sum()),
        "households_outside_communities": (
            None if bld_in_comm is None else int(bld.households[~bld_in_comm].sum())
        ),
        "gaps": len(gaps),
        "gap_area_m2": round(float(gaps["area_m2"].sum()), 1) if len(gaps) else 0.0,
        "households_in_gaps": int(gaps["households"].sum()) if len(gaps) else 0,
        "overlap_area_m2": round(overlap_total, 1),
        "unknown_community_ids": unknown_ids,
        "household_ids_outside_grids": assignments.loc[rows_outside, "household_id"].tolist(),
        "household_ids_in_several_grids": assignments.loc[rows_several, "household_id"].tolist(),
        "grids_with_problems_detail": flagged,
        "gaps_detail": [
            {
                "gap_id": str(r.gap_id),
                "community_id": None if r.community_id is None else str(r.community_id),
                "area_m2": float(r.area_m2),
                "households": int(r.households),
                "buildings": int(r.buildings),
            }
            for r in gaps.itertuples()
        ],
    }


def format_summary(report: dict, *, limit: int = 20, lang: str = "en") -> str:
    """The terminal summary of an audit report (the CLI prints it).

    The second line is the headline every gridkit command prints
    (:func:`gridkit.attention.headline`): the grids within the household bounds among
    all grids, then the others by reason.

    Parameters
    ----------
    report
        :attr:`AuditResult.report`.
    limit
        Show at most this many problem grids and gaps.
    lang
        {"zh", "en"}: language of the headline.

    Returns
    -------
    str
        Several lines, without a trailing newline.
    """
    from gridkit.export import headline

    p = report["parameters"]
    by_bounds = {k: int(report["problems"].get(k, 0)) for k in ("below_min", "above_max")}
    by_bounds["ok"] = int(report["grids"]) - sum(by_bounds.values())
    lines = [
        f"gridkit audit: {report['grids']} grids, {report['households']:,} households in "
        f"{report['household_rows']:,} rows ({report['buildings']:,} buildings)",
        "  " + headline(by_bounds, lang="zh" if lang == "zh" else "en"),
        f"  grids with problems: {report['grids_with_problems']} of {report['grids']} "
        f"(bounds [{p['min_households']}, {p['max_households']}])",
        "  grids per problem: "
        + ", ".join(f"{code} {count}" for code, count in report["problems"].items()),
        f"  households outside grids: {report['households_outside_grids']:,} "
        f"({report['household_rows_outside_grids']} rows); in several grids: "
        f"{report['households_in_several_grids']:,} "
        f"({report['household_rows_in_several_grids']} rows)",
    ]
    if report["households_outside_communities"] is not None:
        lines.append(
            f"  households outside every community: {report['households_outside_communities']:,}"
        )
    lines.append(
        f"  gaps: {report['gaps']} ({report['gap_area_m2']:,.0f} m², "
        f"{report['households_in_gaps']:,} households); overlap area "
        f"{report['overlap_area_m2']:,.0f} m²"
    )
    detail = report["grids_with_problems_detail"]
    if detail:
        lines.append("  problem grids:")
        for entry in detail[:limit]:
            extra = []
            if "overlaps_with" in entry:
                extra.append(
                    f"overlaps {', '.join(entry['overlaps_with'])} by {entry['overlap_m2']:,.0f} m²"
                )
            if "outside_m2" in entry:
                extra.append(f"{entry['outside_m2']:,.0f} m² outside its community")
            if "communities" in entry:
                extra.append(f"spans {', '.join(entry['communities'])}")
            if entry["pieces"] > 1:
                extra.append(f"{entry['pieces']} pieces")
            tail = f" ({'; '.join(extra)})" if extra else ""
            lines.append(
                f"    {entry['grid_code']}: {';'.join(entry['problems'])}, "
                f"{entry['households']} households{tail}"
            )
        if len(detail) > limit:
            lines.append(f"    … and {len(detail) - limit} more (see report.json)")
    gaps = report["gaps_detail"]
    if gaps:
        lines.append("  gaps:")
        for gap in gaps[:limit]:
            lines.append(
                f"    {gap['gap_id']}: {gap['area_m2']:,.0f} m², {gap['households']} households"
            )
        if len(gaps) > limit:
            lines.append(f"    … and {len(gaps) - limit} more (see gaps.geojson)")
    return "\n".join(lines)
