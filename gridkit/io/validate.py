"""Input checks shared by the readers of every folder: collect problems, then raise one error.

Row-level checks add one line per kind of problem to a :class:`Problems`
collector, so that a single :class:`~gridkit.errors.InputError` lists every bad
row of a file (osmnx ``_validate`` style).  Whole-dataset checks
(:func:`check_boundaries_overlap`, :func:`check_swapped_against`) raise
directly.  Every message says what is wrong, where (file, 1-based rows, ids,
truncated with :func:`~gridkit.errors.format_ids`), why (the values) and what
to do next.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely

from gridkit.crs import local_metric_crs
from gridkit.errors import GridkitWarning, InputError, format_ids

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = [
    "OVERLAP_TOLERANCE_M2",
    "POLYGONAL",
    "ROW_NOTE",
    "SLIVER_WIDTH_M",
    "Problems",
    "check_boundaries_overlap",
    "check_geometries",
    "check_household_counts",
    "check_ids",
    "check_lonlat_range",
    "check_not_degrees",
    "check_swapped_against",
    "parse_coordinates",
    "repair_geometries",
    "rows_text",
]

#: Overlaps between two communities up to this area (m²) are tolerated as slivers.
OVERLAP_TOLERANCE_M2 = 1.0
#: Larger overlaps at most this wide on average (m) are thin border slivers: a warning.
SLIVER_WIDTH_M = 0.2

ROW_NOTE = (
    "Row numbers are 1-based: row 1 is the first feature, or the first data row after the header."
)

POLYGONAL = ("Polygon", "MultiPolygon")


def rows_text(rows: Iterable[Any]) -> str:
    """``"row 3"`` or ``"rows 3, 5, 8"`` (truncated after 10, see ``format_ids``).

    Examples
    --------
    >>> rows_text([3])
    'row 3'
    >>> rows_text(range(1, 14))
    'rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 … and 3 more'
    """
    rows = [int(r) for r in rows]
    return f"{'row' if len(rows) == 1 else 'rows'} {format_ids(rows)}"


def _samples(values: Sequence[Any] | np.ndarray, limit: int = 3) -> str:
    """A few example values, repr'd, for messages."""
    shown = [repr(v) if isinstance(v, str) else f"{v:.10g}" for v in list(values)[:limit]]
    more = " …" if len(values) > limit else ""
    return ", ".join(shown) + more


class Problems:
    """Collect the problems found in one input, then raise them as one ``InputError``.

    Parameters
    ----------
    source
        The file (or frame description) the problems are in.
    what
        What the input is, e.g. ``"community boundaries"``.
    """

    def __init__(self, source: str, what: str) -> None:
        self.source = source
        self.what = what
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        """Record one problem (a full sentence naming the rows and the fix)."""
        self.messages.append(message)

    def __len__(self) -> int:
        return len(self.messages)

    def raise_if_any(self) -> None:
        """Raise one ``InputError`` listing every recorded problem, if there is any."""
        if not self.messages:
            return
        n = len(self.messages)
        head = f"{self.what} '{self.source}': {n} problem{'s' if n > 1 else ''} found"
        body = "\n".join(f"  - {m}" for m in self.messages)
        msg = f"{head}:\n{body}"
        if any(" row " in m or " rows " in m for m in self.messages):
            msg += f"\n{ROW_NOTE}"
        self.messages = []
        raise InputError(msg)


# ---------------------------------------------------------------------------
# row-level checks (add to a Problems collector)
# ---------------------------------------------------------------------------


def check_ids(
    ids: pd.Series,
    rows: np.ndarray,
    *,
    column: str,
    missing_fix: str,
    duplicate_fix: str,
    problems: Problems,
) -> None:
    """Report missing and duplicated ids.

    Parameters
    ----------
    ids
        Ids as strings, missing as NaN/None, aligned with ``rows``.
    rows
        1-based row numbers.
    column
        The source column the ids come from, for messages.
    missing_fix, duplicate_fix
        The next step to suggest for each problem.
    problems
        Collector.
    """
    values = ids.to_numpy(dtype=object)
    missing = pd.isna(ids).to_numpy()
    if missing.any():
        problems.add(f"column `{column}` has no id at {rows_text(rows[missing])}: {missing_fix}")
    dup = ids.duplicated(keep=False).to_numpy() & ~missing
    if dup.any():
        groups: dict[str, list[int]] = {}
        for value, row in zip(values[dup], rows[dup], strict=True):
            groups.setdefault(str(value), []).append(int(row))
        items = [f"{value!r} at {rows_text(r)}" for value, r in groups.items()]
        problems.add(
            f"column `{column}` has {len(groups)} duplicated id{'s' if len(groups) > 1 else ''} "
            f"({format_ids(items)}): {duplicate_fix}"
        )


def check_geometries(
    geoms: np.ndarray,
    rows: np.ndarray,
    *,
    allowed: Sequence[str],
    type_fix: str,
    problems: Problems,
) -> None:
    """Report missing (null), empty and wrongly typed geometries.

    Parameters
    ----------
    geoms
        Object array of shapely geometries (``None`` for missing).
    rows
        1-based row numbers.
    allowed
        Accepted geometry type names, e.g. ``("Polygon", "MultiPolygon")``.
    type_fix
        The next step to suggest for a wrong type.
    problems
        Collector.
    """
    missing = shapely.is_missing(geoms)
    if missing.any():
        problems.add(
            f"no geometry at {rows_text(rows[missing])}: draw the missing features or delete "
            "those rows."
        )
    empty = ~missing & shapely.is_empty(geoms)
    if empty.any():
        problems.add(
            f"empty geometry at {rows_text(rows[empty])}: draw the missing features or delete "
            "those rows."
        )
    present = ~missing & ~empty
    types = np.array([g.geom_type if g is not None else "" for g in geoms], dtype=object)
    wrong = present & ~np.isin(types, list(allowed))
    if wrong.any():
        parts = [
            f"{t} at {rows_text(rows[wrong & (types == t)])}" for t in sorted(set(types[wrong]))
        ]
        problems.add(
            f"wrong geometry type ({'; '.join(parts)}): expected {' or '.join(allowed)}. {type_fix}"
        )


def _polygonal_part(geom: Any) -> Any:
    """The polygonal part of ``geom`` as a Polygon/MultiPolygon, or ``None``."""
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type in POLYGONAL:
        return geom
    parts = []
    for part in shapely.get_parts(geom):
        if part.geom_type == "Polygon":
            parts.append(part)
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            sub = _polygonal_part(part)
            if sub is not None:
                parts.append(sub)
    if not parts:
        return None
    merged = shapely.union_all(parts)
    return None if merged.is_empty or merged.area == 0 else merged


def repair_geometries(
    geoms: np.ndarray,
    rows: np.ndarray,
    labels: Sequence[str] | None,
    *,
    problems: Problems,
) -> tuple[np.ndarray, str | None]:
    """Repair invalid polygons with ``shapely.make_valid``, keeping only polygonal parts.

    Parameters
    ----------
    geoms
        Object array of valid-typed, non-empty geometries.
    rows
        1-based row numbers.
    labels
        An id per geometry to show next to the row (``None``: rows only).
    problems
        Collector for geometries whose repair leaves nothing polygonal.

    Returns
    -------
    geoms
        A new array with the repaired geometries.
    warning
        The text of the warning to emit (rows, ids, reasons), or ``None``.
    """
    out = np.array(geoms, dtype=object)
    invalid = ~shapely.is_missing(out) & ~shapely.is_valid(out)
    if not invalid.any():
        return out, None
    idx = np.flatnonzero(invalid)
    reasons = shapely.is_valid_reason(out[idx])
    repaired = [_polygonal_part(g) for g in shapely.make_valid(out[idx])]
    fixed, lost = [], []
    for i, reason, geom in zip(idx, reasons, repaired, strict=True):
        where = f"row {rows[i]}" if labels is None else f"{labels[i]} (row {rows[i]})"
        if geom is None:
            lost.append((i, where, reason))
        else:
            out[i] = geom
            fixed.append(f"{where}: {reason}")
    if lost:
        details = format_ids([f"{where}: {reason}" for _, where, reason in lost])
        problems.add(
            f"invalid geometry at {rows_text(rows[[i for i, _, _ in lost]])} that "
            f"`shapely.make_valid` cannot turn into a polygon ({details}): redraw these "
            "features, or delete them."
        )
    warning = None
    if fixed:
        warning = (
            f"repaired {len(fixed)} invalid geometr{'y' if len(fixed) == 1 else 'ies'} with "
            f"`shapely.make_valid` (polygonal parts kept): {format_ids(fixed)}. Check these "
            "features; fix them at the source (e.g. QGIS 'Fix geometries') to silence this warning."
        )
    return out, warning


def _stripped(values: pd.Series) -> pd.Series:
    """Values as objects, text cells stripped of surrounding blanks.

    A column of text only (what a CSV reader gives) is stripped in one vectorised
    call; numbers are left as they are; a mix goes cell by cell.
    """
    text = values.astype(object)
    if pd.api.types.infer_dtype(text, skipna=True) == "string":
        return text.str.strip()
    if pd.api.types.is_numeric_dtype(values):
        return text
    return text.map(lambda v: v.strip() if isinstance(v, str) else v)


def parse_coordinates(
    values: pd.Series,
    rows: np.ndarray,
    *,
    column: str,
    problems: Problems,
) -> np.ndarray:
    """Parse a lon or lat column to float, reporting missing and non-numeric cells.

    Returns
    -------
    numpy.ndarray
        float64 values, NaN where missing or not a number.
    """
    text = _stripped(values)
    missing = (pd.isna(text) | (text == "")).to_numpy()
    numbers = np.array(pd.to_numeric(text.where(~missing), errors="coerce"), dtype=np.float64)
    if missing.any():
        problems.add(
            f"column `{column}` is empty at {rows_text(rows[missing])}: fill in the coordinate "
            "or delete those rows."
        )
    bad = ~missing & ~np.isfinite(numbers)
    if bad.any():
        problems.add(
            f"column `{column}` is not a number at {rows_text(rows[bad])} "
            f"({_samples(text.to_numpy()[bad].tolist())}): write decimal degrees such as "
            "114.305 (no units or degree signs) or delete those rows."
        )
    numbers[~np.isfinite(numbers)] = np.nan
    return numbers


def check_lonlat_range(
    bounds: np.ndarray,
    rows: np.ndarray,
    *,
    swap_fix: str,
    crs_option: str,
    problems: Problems,
) -> None:
    """Report coordinates that cannot be lon/lat degrees.

    Parameters
    ----------
    bounds
        ``(n, 4)`` array of per-row ``minx, miny, maxx, maxy`` (NaN rows are skipped).
    rows
        1-based row numbers.
    swap_fix
        How to exchange lon and lat for this input (columns or axes).
    crs_option
        How to pass ``input_crs`` (keyword and CLI flag), for the projected-metres fix.
    problems
        Collector.

    Notes
    -----
    Three cases are told apart: values that look like projected metres (at
    most rows have a coordinate beyond ±360), rows whose values
    would be valid with lon and lat exchanged (``|lat| > 90`` but ``|lon| <= 90``),
    and any other value outside ±180 / ±90.
    """
    minx, miny, maxx, maxy = bounds.T
    known = np.isfinite(bounds).all(axis=1)
    with np.errstate(invalid="ignore"):
        bad = known & ((minx < -180) | (maxx > 180) | (miny < -90) | (maxy > 90))
        if not bad.any():
            return
        span = np.nanmax(np.abs(bounds), axis=1)
        metres = known & (span > 360)
        if metres.sum() * 2 > known.sum():
            problems.add(
                f"coordinates look like projected metres, not lon/lat degrees "
                f"(x {np.nanmin(minx[metres]):.0f}…{np.nanmax(maxx[metres]):.0f}, "
                f"y {np.nanmin(miny[metres]):.0f}…{np.nanmax(maxy[metres]):.0f}; "
                f"{int(bad.sum())} of {int(known.sum())} rows are outside ±180/±90, e.g. "
                f"{rows_text(rows[bad])}): pass the data's projected CRS as {crs_option}, "
                "e.g. EPSG:4547 (CGCS2000 / 3-degree Gauss-Kruger CM 114E) or EPSG:32650 "
                "(UTM 50N)."
            )
            return
        swappable = bad & (np.maximum(np.abs(miny), np.abs(maxy)) <= 180)
        swappable &= np.maximum(np.abs(minx), np.abs(maxx)) <= 90
    if swappable.any():
        count = int(swappable.sum())
        scope = "every row" if count == known.sum() else f"{count} row{'s' if count > 1 else ''}"
        problems.add(
            f"lon and lat look swapped at {rows_text(rows[swappable])} ({scope}: latitude "
            f"{_samples(np.where(np.abs(miny) > 90, miny, maxy)[swappable])} is beyond ±90 "
            f"but would be a valid longitude): {swap_fix}"
        )
    other = bad & ~swappable
    if other.any():
        problems.add(
            f"coordinates outside lon ±180 / lat ±90 at {rows_text(rows[other])} "
            f"(x {_samples(minx[other])}; y {_samples(miny[other])}): correct or delete these "
            f"rows, or pass the right CRS as {crs_option}."
        )


def check_not_degrees(
    bounds: np.ndarray,
    *,
    crs_label: str,
    crs_option: str,
    problems: Problems,
) -> None:
    """Report data in a projected CRS whose every coordinate looks like lon/lat degrees."""
    known = np.isfinite(bounds).all(axis=1)
    if not known.any():
        return
    b = bounds[known]
    if (np.abs(b[:, [0, 2]]) <= 180).all() and (np.abs(b[:, [1, 3]]) <= 90).all():
        problems.add(
            f"the CRS is the projected {crs_label} (metres) but every coordinate is within "
            f"±180/±90 (x {b[:, 0].min():.6g}…{b[:, 2].max():.6g}, y {b[:, 1].min():.6g}…"
            f"{b[:, 3].max():.6g}), which looks like lon/lat degrees: pass {crs_option} "
            "with wgs84, gcj02 (Amap/Gaode/Tencent) or bd09 (Baidu)."
        )


def check_household_counts(
    values: pd.Series,
    rows: np.ndarray,
    *,
    column: str,
    option: str,
    problems: Problems,
) -> np.ndarray:
    """Validate a household-count column and return it as int64.

    Missing, non-numeric, non-finite, negative and non-integer values (``12.5``)
    are each reported with their rows; integral floats (``12.0``) are accepted.

    Returns
    -------
    numpy.ndarray
        int64 counts (0 where the value was bad; only meaningful without problems).
    """
    text = _stripped(values)
    missing = (pd.isna(text) | (text == "")).to_numpy()
    numbers = np.array(pd.to_numeric(text.where(~missing), errors="coerce"), dtype=np.float64)
    fix = (
        f"household counts must be whole numbers ≥ 0: correct these rows in the file, or pass "
        f"{option} to use another column."
    )
    if missing.any():
        problems.add(
            f"column `{column}` is empty at {rows_text(rows[missing])}: fill in the count "
            f"(0 for a building with no households), delete those rows, or pass {option} to use "
            "another column."
        )
    not_number = ~missing & ~np.isfinite(numbers)
    if not_number.any():
        problems.add(
            f"column `{column}` is not a number at {rows_text(rows[not_number])} "
            f"({_samples(text.to_numpy()[not_number].tolist())}): {fix}"
        )
    finite = np.isfinite(numbers)
    with np.errstate(invalid="ignore"):
        negative = finite & (numbers < 0)
        fractional = finite & ~negative & (numbers != np.floor(numbers))
    if negative.any():
        problems.add(
            f"column `{column}` is negative at {rows_text(rows[negative])} "
            f"({_samples(numbers[negative])}): {fix}"
        )
    if fractional.any():
        problems.add(
            f"column `{column}` is not a whole number at {rows_text(rows[fractional])} "
            f"({_samples(numbers[fractional])}): {fix}"
        )
    good = finite & ~negative & ~fractional
    return np.where(good, numbers, 0).astype(np.int64)


# ---------------------------------------------------------------------------
# whole-dataset checks (raise directly)
# ---------------------------------------------------------------------------


def _where(gdf: gpd.GeoDataFrame) -> str:
    source = gdf.attrs.get("source")
    return f" in '{source}'" if source else ""


def _rows_of(gdf: gpd.GeoDataFrame) -> np.ndarray:
    if "row" in gdf.columns:
        return gdf["row"].to_numpy()
    return np.arange(1, len(gdf) + 1)


def check_boundaries_overlap(
    boundaries: gpd.GeoDataFrame,
    *,
    id_col: str = "community_id",
    tolerance_m2: float = OVERLAP_TOLERANCE_M2,
    sliver_width_m: float = SLIVER_WIDTH_M,
    stacklevel: int = 2,
) -> None:
    """Raise if two communities overlap by more than ``tolerance_m2`` square metres.

    Candidate pairs come from one vectorised ``shapely.STRtree`` query with the
    ``"overlaps"`` predicate plus one with ``"contains"`` (which ``overlaps``
    misses: a community inside, or identical to, another).  Neighbours that only
    touch are never candidates.  Areas are measured in the local UTM zone
    (:func:`gridkit.crs.local_metric_crs`).  Each overlap is then sorted by
    area and mean width (``2 * area / perimeter`` of the shared part):

    - ``area <= tolerance_m2``: a digitising sliver, tolerated silently;
    - ``area > tolerance_m2`` but mean width ``<= sliver_width_m``: a thin
      sliver along a shared border (typical after reprojection), reported with
      a :class:`~gridkit.errors.GridkitWarning`;
    - otherwise: a real overlap, an :class:`~gridkit.errors.InputError`.

    Parameters
    ----------
    boundaries
        Valid community polygons with a CRS and an ``id_col`` column; not modified.
    id_col
        Column naming each community in the message.
    tolerance_m2
        Overlaps up to this area (m²) are tolerated.
    sliver_width_m
        Larger overlaps at most this wide on average (m) only warn.
    stacklevel
        Passed to :func:`warnings.warn` (2: the caller of this function).

    Raises
    ------
    InputError
        Naming each overlapping pair (ids, rows, overlap area and width), largest first.

    Warns
    -----
    GridkitWarning
        Naming the pairs that share only a thin sliver larger than ``tolerance_m2``.
    """
    if len(boundaries) < 2:
        return
    metric = boundaries.geometry.to_crs(local_metric_crs(boundaries))
    geoms = np.asarray(metric.array, dtype=object)
    tree = shapely.STRtree(geoms)
    pairs = np.concatenate(
        [tree.query(geoms, predicate=p) for p in ("overlaps", "contains")], axis=1
    )
    pairs = pairs[:, pairs[0] != pairs[1]]
    if pairs.size == 0:
        return
    left, right = np.unique(np.sort(pairs, axis=0), axis=1)
    shared = shapely.intersection(geoms[left], geoms[right])
    areas = shapely.area(shared)
    with np.errstate(divide="ignore", invalid="ignore"):
        widths = np.where(areas > 0, 2 * areas / shapely.length(shared), 0.0)
    over = areas > tolerance_m2
    if not over.any():
        return
    ids = boundaries[id_col].to_numpy(dtype=object)
    rows = _rows_of(boundaries)

    def describe(mask: np.ndarray) -> list[str]:
        items = []
        for k in np.flatnonzero(mask)[np.argsort(-areas[mask], kind="stable")]:
            i, j, w = left[k], right[k], widths[k]
            width = f"{w:,.1f}" if w >= 1 else f"{w:.3f}"
            items.append(
                f"{ids[i]} (row {rows[i]}) and {ids[j]} (row {rows[j]}): {areas[k]:,.1f} m², "
                f"{width} m wide"
            )
        return items

    thin = over & (widths <= sliver_width_m)
    wide = over & ~thin
    where = _where(boundaries)
    if wide.any():
        items = describe(wide)
        msg = (
            f"community boundaries{where} overlap: {len(items)} "
            f"{'pairs share' if len(items) > 1 else 'pair shares'} more than {tolerance_m2:g} m² "
            f"({format_ids(items)}). Each place must belong to exactly one community: correct "
            "the boundaries so they do not overlap (e.g. QGIS 'Topology Checker', or subtract "
            "one from the other with `geopandas.overlay(..., how='difference')`); overlaps "
            f"up to {tolerance_m2:g} m², or thinner than {sliver_width_m:g} m, are tolerated."
        )
        raise InputError(msg)
    items = describe(thin)
    msg = (
        f"community boundaries{where}: {len(items)} pair{'s' if len(items) > 1 else ''} of "
        f"neighbours share a thin sliver larger than {tolerance_m2:g} m² but under "
        f"{sliver_width_m:g} m wide ({format_ids(items)}), typical of reprojected or "
        "re-digitised borders; a household exactly on such a border may match both "
        "communities. Snap the shared borders (e.g. QGIS 'Snap geometries to layer') to "
        "silence this warning."
    )
    warnings.warn(msg, GridkitWarning, stacklevel=stacklevel)


def _points_xy(gdf: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    geoms = np.asarray(gdf.geometry.array, dtype=object)
    ok = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    points = shapely.point_on_surface(geoms[ok])
    return shapely.get_x(points), shapely.get_y(points)


def check_swapped_against(
    households: gpd.GeoDataFrame,
    boundaries: gpd.GeoDataFrame,
    *,
    swap_fix: str | None = None,
    inside_max: float = 0.05,
    swapped_min: float = 0.5,
) -> None:
    """Raise if the households look like (lat, lon) relative to the boundaries.

    Both frames must be in the same geographic CRS (as returned by
    :mod:`gridkit.io`).  The test: fewer than ``inside_max`` of the household
    points fall inside the boundaries' total bounds, but more than
    ``swapped_min`` would after exchanging x and y.  This catches swapped
    columns that are still valid lon/lat (e.g. both values within ±90), which
    the readers cannot see on their own.

    Parameters
    ----------
    households, boundaries
        Normalised frames; not modified.
    swap_fix
        The next step to suggest; defaults to swapping ``lon_col``/``lat_col``.
    inside_max, swapped_min
        Fractions of household points (see above).

    Raises
    ------
    InputError
        Naming both files, the fractions and the fix.
    """
    x, y = _points_xy(households)
    if x.size == 0 or len(boundaries) == 0:
        return
    minx, miny, maxx, maxy = boundaries.geometry.total_bounds

    def share(px: np.ndarray, py: np.ndarray) -> float:
        return float(np.mean((px >= minx) & (px <= maxx) & (py >= miny) & (py <= maxy)))

    inside, swapped = share(x, y), share(y, x)
    if inside < inside_max and swapped > swapped_min:
        fix = swap_fix or (
            "pass `lon_col=`/`lat_col=` the other way round (CLI `--lon-col`/`--lat-col`)"
        )
        msg = (
            f"households{_where(households)} look like (lat, lon) instead of (lon, lat): "
            f"only {inside:.0%} of the {x.size} household points fall inside the bounds of the "
            f"community boundaries{_where(boundaries)} (lon {minx:.6g}…{maxx:.6g}, lat "
            f"{miny:.6g}…{maxy:.6g}), but {swapped:.0%} would with x and y exchanged. "
            f"Swap them: {fix}."
        )
        raise InputError(msg)
