"""Read and check worker rosters, and write them as tables.

A roster lists the people who staff grids (网格): full-time grid workers (专职网格员),
part-time workers (兼职网格员), grid leaders (网格长), police officers (民警), volunteers
(志愿者), and per community a mediator (民调员) and a legal adviser (法律顾问).
:func:`read_workers` reads it from CSV/TSV, XLSX or a point layer into a normalised
GeoDataFrame and :func:`write_workers` writes one as a table.  The staffing rules that say
which roles each grid or community needs are :mod:`gridkit.staffing.policy`'s;
:mod:`gridkit.staffing.synthetic` invents a roster for a grid layer (the sample
district's demo); :mod:`gridkit.staffing.assign` puts the people in their grids.

Roster columns (matched case-insensitively; the first name listed is the canonical one)
    ``worker_id`` (also ``id``, ``工号``, ``编号``) — unique; ``name`` (``姓名``);
    ``role`` (``岗位``, ``角色``) in English or Chinese, see :data:`ROLE_LABELS` (with a
    policy also the key, ``label`` or ``aliases`` of each of its roles);
    the home: ``lon``/``lat`` columns (or a point geometry) and/or ``home_community``
    (``community_id``, ``community``, ``社区``: a community id or name);
    optional ``phone`` (``电话``, ``手机``), ``max_grids``, ``max_communities``,
    ``max_households``, ``max_buildings`` (``最多楼栋数``, for building roles) (capacities
    overriding the policy), ``pinned_grid`` (``固定网格``:
    keep this person in this grid; several codes separated by ``;``) and ``unavailable``
    (``不可用``: 1/0, true/false, yes/no, 是/否; the person is listed but not assigned).

Every problem of a roster is collected and raised once as an
:class:`~gridkit.errors.InputError` naming the file, the 1-based rows and the fix;
nobody is dropped silently.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj.exceptions import CRSError, ProjError

from gridkit.contracts import WORKER_COLUMNS
from gridkit.crs import to_wgs84
from gridkit.errors import GridkitWarning, InputError, format_ids
from gridkit.export import spreadsheet_safe
from gridkit.io import (
    Problems,
    as_optional_text,
    as_text,
    assemble_frame,
    cell_text,
    check_coordinates,
    check_ids,
    columns_text,
    load_file,
    parse_coordinates,
    pick_lonlat_columns,
    resolve_input_crs,
    rows_text,
    simplify_single_parts,
)
from gridkit.staffing.policy import StaffingPolicy, load_policy, normalise_role

__all__ = [
    "MAX_BUILDINGS",
    "WORKER_COLUMNS",
    "mask_phone",
    "read_workers",
    "write_workers",
]

logger = logging.getLogger(__name__)

_WHAT = "workers"
_ID_NAMES = ("worker_id", "id", "工号", "编号", "人员编号")
_NAME_NAMES = ("name", "姓名")
_ROLE_NAMES = ("role", "岗位", "角色", "职务")
_COMMUNITY_NAMES = ("home_community", "community_id", "community", "所在社区", "社区")
_PHONE_NAMES = ("phone", "mobile", "tel", "电话", "手机", "手机号", "联系电话")
_MAX_GRIDS_NAMES = ("max_grids", "最多网格数")
_MAX_COMMUNITIES_NAMES = ("max_communities", "最多社区数")
_MAX_HOUSEHOLDS_NAMES = ("max_households", "最多户数")
_MAX_BUILDINGS_NAMES = ("max_buildings", "最多楼栋数")
#: The column holding per-person building capacities (building roles), when a roster has it.
MAX_BUILDINGS = "max_buildings"
_PINNED_NAMES = ("pinned_grid", "pinned", "固定网格")
_UNAVAILABLE_NAMES = ("unavailable", "不可用")
_EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
_TRUE = frozenset({"1", "true", "yes", "y", "t", "是", "x", "unavailable", "不可用"})
_FALSE = frozenset({"0", "false", "no", "n", "f", "否", "available", "可用"})
_SPLIT_CODES = re.compile(r"[;,；，、\s]+")


# --------------------------------------------------------------------------- reading rosters


def _find(columns: list[Any], names: tuple[str, ...], problems: Problems) -> Any:
    """The first column matching one of ``names`` (case-insensitive), else ``None``."""
    for name in names:
        matches = [c for c in columns if str(c).strip().lower() == name]
        if len(matches) > 1:
            problems.add(
                f"several columns are named {name!r} ({', '.join(map(str, matches))}): rename "
                "all but one."
            )
            return None
        if matches:
            return matches[0]
    return None


def _load_roster(path: Any, *, layer: str | int | None) -> tuple[str, pd.DataFrame, bool]:
    """``(source, frame, is_table)`` of a roster path or frame."""
    if isinstance(path, str | os.PathLike) and not isinstance(path, pd.DataFrame):
        p = Path(path)
        if p.suffix.lower() in _EXCEL_SUFFIXES and p.exists():
            return os.fspath(path), _read_excel(p, layer=layer), True
        if p.exists() and p.suffix.lower() not in (".csv", ".tsv", ".txt"):
            try:
                names = [str(n) for n in pyogrio.list_layers(p)[:, 0]]
            except (RuntimeError, OSError, ValueError):
                names = []  # unreadable: load_file reports it
            if layer is None and len(names) > 1:
                msg = (
                    f"{_WHAT} file '{p}' has {len(names)} layers ({format_ids(names)}): pass "
                    f"`layer=...` (CLI `--workers-layer ...`) to choose one."
                )
                raise InputError(msg)
    return load_file(path, layer=layer, what=_WHAT, tables=True)


def _read_excel(p: Path, *, layer: str | int | None) -> pd.DataFrame:
    try:
        import openpyxl  # noqa: F401
    except ImportError as err:  # pragma: no cover - depends on the environment
        msg = (
            f"reading the Excel roster '{p}' needs openpyxl: `pip install openpyxl`, or save "
            "the sheet as 'CSV UTF-8'."
        )
        raise InputError(msg) from err
    try:
        frame = pd.read_excel(p, sheet_name=0 if layer is None else layer, dtype=object)
    except (ValueError, KeyError, OSError) as err:
        msg = (
            f"cannot read {_WHAT} file '{p}' as an Excel workbook ({err}): check the file and "
            "the sheet (`layer=...`, CLI `--workers-layer`)."
        )
        raise InputError(msg) from err
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.dropna(how="all").reset_index(drop=True)


def _flags(values: pd.Series, rows: np.ndarray, *, column: str, problems: Problems
           ) -> np.ndarray:
    text = [cell_text(v) for v in values.to_numpy(dtype=object)]
    out = np.zeros(len(text), dtype=bool)
    bad = []
    for i, value in enumerate(text):
        key = (value or "").strip().lower()
        if key in _TRUE:
            out[i] = True
        elif key and key not in _FALSE:
            bad.append(i)
    if bad:
        problems.add(
            f"column `{column}` has values that are not yes/no at {rows_text(rows[bad])} "
            f"({format_ids(sorted({text[i] for i in bad}), limit=5)}): write 1 or 0 (also "
            "true/false, yes/no, 是/否), or leave the cell empty for available."
        )
    return out


def _capacities(values: pd.Series, rows: np.ndarray, *, column: str,
                problems: Problems) -> pd.Series:
    text = pd.Series([cell_text(v) for v in values.to_numpy(dtype=object)], dtype=object)
    present = text.notna().to_numpy()
    numbers = pd.to_numeric(text.where(present), errors="coerce").to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = present & ~(np.isfinite(numbers) & (numbers >= 1) & (numbers == np.floor(numbers)))
    if bad.any():
        problems.add(
            f"column `{column}` is not a whole number ≥ 1 at {rows_text(rows[bad])} "
            f"({format_ids(text[bad].tolist(), limit=5)}): write a capacity such as 2, or leave "
            "the cell empty to use the policy's."
        )
    good = present & ~bad
    caps = pd.array(np.where(good, numbers, 0).astype(np.int64), dtype="Int64")
    caps[~good] = pd.NA
    return pd.Series(caps)


def read_workers(
    path: str | os.PathLike[str] | pd.DataFrame,
    *,
    lon_col: str | None = None,
    lat_col: str | None = None,
    input_crs: Any = None,
    layer: str | int | None = None,
    policy: str | os.PathLike[str] | Mapping[str, Any] | StaffingPolicy | None = None,
) -> gpd.GeoDataFrame:
    """Read a roster of grid staff into the normalised workers frame.

    Parameters
    ----------
    path
        A CSV/TSV/TXT table (UTF-8 or GB18030), an Excel workbook (``.xlsx``; needs
        openpyxl), a GeoJSON/GeoPackage/Shapefile of home points, or a DataFrame /
        GeoDataFrame (copied, never modified).  Columns: see the module docstring.
    lon_col, lat_col
        Home coordinate columns of a table (pass both or neither); auto-detected like
        :func:`gridkit.read_households` (``lon``/``lng``/``经度``, ``lat``/``纬度``, ...).
    input_crs
        CRS of the coordinates: ``"wgs84"``, ``"gcj02"`` (Amap/Gaode, Tencent), ``"bd09"``
        (Baidu) or anything pyproj accepts.  A table without it is assumed to be WGS84
        (with a warning).
    layer
        Layer of a multi-layer file, or sheet of a workbook (default: the first sheet).
    policy
        The staffing policy whose roles the roster may name (see :func:`load_policy`):
        a policy file may define roles of its own (社区负责人, 楼栋长, ...).  Default: the
        built-in roles.

    Returns
    -------
    geopandas.GeoDataFrame
        In EPSG:4326 with a RangeIndex and ``attrs["source"]``; columns
        :data:`WORKER_COLUMNS`: ``worker_id`` (str), ``name`` (str), ``role`` (a role key
        of the policy), ``home_community`` (str or None, as written), ``phone`` (str or
        None), ``max_grids``, ``max_communities``, ``max_households`` (Int64, NA = the
        policy's), ``pinned_grid`` (str of ``;``-separated codes, or None),
        ``unavailable`` (bool), ``row`` (1-based), ``geometry`` (home Point, or None when
        only the home community is known); then ``max_buildings`` (Int64) when the roster
        has it, and the other source columns (e.g. attributes a role ``requires``).

    Raises
    ------
    InputError
        Listing every problem with its rows: missing columns, missing or duplicated ids,
        missing names, missing or unknown roles, rows without any home location,
        unparseable or out-of-range coordinates, bad capacities or flags, and people both
        pinned and unavailable.

    Warns
    -----
    GridkitWarning
        When a table's coordinates were assumed to be WGS84.

    Examples
    --------
    >>> import pandas as pd
    >>> roster = pd.DataFrame({"工号": ["A1", "A2"], "姓名": ["王芳", "李军"],
    ...                        "岗位": ["专职网格员", "民警"], "社区": ["420204001001"] * 2})
    >>> workers = read_workers(roster)
    >>> workers[["worker_id", "role", "home_community"]].values.tolist()
    [['A1', 'grid_worker', '420204001001'], ['A2', 'police', '420204001001']]
    """
    rules = load_policy(policy)
    source, frame, is_table = _load_roster(path, layer=layer)
    if len(frame) == 0:
        msg = f"{_WHAT} file '{source}' contains no rows: check the file (and `layer`)."
        raise InputError(msg)
    problems = Problems(source, _WHAT)
    geometry_name = None if is_table else frame.geometry.name
    columns = [c for c in frame.columns if c != geometry_name]
    src = {
        "worker_id": _find(columns, _ID_NAMES, problems),
        "name": _find(columns, _NAME_NAMES, problems),
        "role": _find(columns, _ROLE_NAMES, problems),
        "home_community": _find(columns, _COMMUNITY_NAMES, problems),
        "phone": _find(columns, _PHONE_NAMES, problems),
        "max_grids": _find(columns, _MAX_GRIDS_NAMES, problems),
        "max_communities": _find(columns, _MAX_COMMUNITIES_NAMES, problems),
        "max_households": _find(columns, _MAX_HOUSEHOLDS_NAMES, problems),
        "pinned_grid": _find(columns, _PINNED_NAMES, problems),
        "unavailable": _find(columns, _UNAVAILABLE_NAMES, problems),
        "max_buildings": _find(columns, _MAX_BUILDINGS_NAMES, problems),
    }
    for key, names in (("worker_id", _ID_NAMES), ("name", _NAME_NAMES), ("role", _ROLE_NAMES)):
        if src[key] is None and not any(str(c).strip().lower() in names for c in columns):
            problems.add(
                f"no {key} column (looked for {', '.join(names)}, case-insensitive); available "
                f"columns: {columns_text(columns)}. Rename the column holding it."
            )
    lon_src = lat_src = None
    if is_table:
        scratch = Problems(source, _WHAT)
        lon_src, lat_src = pick_lonlat_columns(columns, lon_col, lat_col, problems=scratch)
        not_found = len(scratch) == 1 and scratch.messages[0].startswith("no longitude")
        if lon_col is not None or not not_found:
            for message in scratch.messages:
                problems.add(message)
        elif src["home_community"] is None:
            problems.add(
                f"no home location columns: give each person `lon`/`lat` columns (or a point "
                f"layer) and/or a `home_community` column (looked for "
                f"{', '.join(_COMMUNITY_NAMES)}); available columns: "
                f"{columns_text(columns)}."
            )
    elif lon_col is not None or lat_col is not None:
        problems.add(
            "`lon_col`/`lat_col` (CLI `--lon-col`/`--lat-col`) only apply to tables but this "
            "file has a geometry: drop these options."
        )
    problems.raise_if_any()
    has_coordinates = not is_table or lon_src is not None
    crs = (
        resolve_input_crs(
            None if is_table else frame.crs, input_crs, source=source, what=_WHAT,
            kind="households", is_table=is_table,
        )
        if has_coordinates
        else None
    )

    n = len(frame)
    rows = np.arange(1, n + 1, dtype=np.int64)
    ids = as_text(frame[src["worker_id"]])
    check_ids(
        ids, rows, column=str(src["worker_id"]),
        missing_fix="give every person an id (e.g. the staff number 工号).",
        duplicate_fix="give each person their own id; list a person once (one role each).",
        problems=problems,
    )
    names = as_text(frame[src["name"]])
    if names.isna().any():
        problems.add(
            f"column `{src['name']}` is empty at {rows_text(rows[names.isna()])}: "
            "fill in the person's name."
        )
    raw_roles = as_optional_text(frame[src["role"]])
    roles = raw_roles.map(lambda v: normalise_role(v, rules))
    missing_role = raw_roles.isna().to_numpy()
    if missing_role.any():
        problems.add(
            f"column `{src['role']}` is empty at {rows_text(rows[missing_role])}: "
            f"fill in one of {rules.roles_text()}."
        )
    unknown = roles.isna().to_numpy() & ~missing_role
    if unknown.any():
        values = sorted(set(raw_roles[unknown]))
        problems.add(
            f"unknown role at {rows_text(rows[unknown])} "
            f"({format_ids([repr(v) for v in values], limit=5)}): use one of {rules.roles_text()}"
            + (" (a role that a policy file defines is known when the policy is passed: "
               "`policy=...`, CLI `--policy FILE`)." if rules.source == "default"
               else f" (the roles of policy {rules.source!r}).")
        )
    home = (
        as_optional_text(frame[src["home_community"]])
        if src["home_community"] is not None
        else pd.Series([None] * n, dtype=object)
    )
    geoms, bounds = _home_points(frame, rows, is_table, lon_src, lat_src, problems)
    no_place = shapely.is_missing(geoms) & home.isna().to_numpy()
    if no_place.any():
        problems.add(
            f"no home location at {rows_text(rows[no_place])}: fill in lon/lat (or "
            "draw the home point) or the home community, so distances can be measured."
        )
    if crs is not None:
        check_coordinates(
            geoms, rows, crs, kind="households",
            swap_fix="exchange the lon and lat values (or pass `lon_col`/`lat_col` the other "
            "way round, CLI `--lon-col`/`--lat-col`).",
            problems=problems, bounds=bounds,
        )
    caps = {
        key: _capacities(frame[src[key]], rows, column=str(src[key]), problems=problems)
        if src[key] is not None
        else pd.Series(pd.array([pd.NA] * n, dtype="Int64"))
        for key in ("max_grids", "max_communities", "max_households", "max_buildings")
    }
    max_buildings = caps.pop("max_buildings")
    pinned = (
        as_optional_text(frame[src["pinned_grid"]]).map(
            lambda v: None if v is None else ";".join(c for c in _SPLIT_CODES.split(v) if c)
        )
        if src["pinned_grid"] is not None
        else pd.Series([None] * n, dtype=object)
    )
    unavailable = (
        _flags(frame[src["unavailable"]], rows, column=str(src["unavailable"]), problems=problems)
        if src["unavailable"] is not None
        else np.zeros(n, dtype=bool)
    )
    both = unavailable & pinned.notna().to_numpy()
    if both.any():
        problems.add(
            f"people both pinned to a grid and unavailable at {rows_text(rows[both])}: "
            f"clear `{src['pinned_grid']}` or `{src['unavailable']}` for them."
        )
    problems.raise_if_any()

    phone = (
        as_optional_text(frame[src["phone"]])
        if src["phone"] is not None
        else pd.Series([None] * n, dtype=object)
    )
    contract = {
        "worker_id": ids,
        "name": names,
        "role": roles.astype(object),
        "home_community": home,
        "phone": phone,
        **caps,
        "pinned_grid": pinned,
        "unavailable": unavailable,
        "row": rows,
    }
    used = {v for v in src.values() if v is not None} | {lon_src, lat_src} - {None}
    out = assemble_frame(contract, geoms, frame, used, source=source)
    if src["max_buildings"] is not None:
        out.insert(len(WORKER_COLUMNS), MAX_BUILDINGS, max_buildings.array)
    if crs is None:
        out = out.set_crs(4326)
    else:
        try:
            out = to_wgs84(out, crs.spec)
        except (ProjError, CRSError) as err:
            msg = (
                f"{_WHAT} '{source}': cannot transform from {crs.label} to EPSG:4326 ({err}): "
                "pass the data's real CRS as `input_crs=...` (CLI `--input-crs ...`)."
            )
            raise InputError(msg) from err
        if crs.assumed:
            warnings.warn(
                f"{_WHAT} '{source}' declares no CRS (a table), so WGS84 lon/lat was assumed. If "
                "the coordinates come from Amap/Gaode or Tencent pass `input_crs='gcj02'` (CLI "
                "`--input-crs gcj02`), from Baidu `input_crs='bd09'`; pass `input_crs='wgs84'` "
                "(CLI `--input-crs wgs84`) to confirm WGS84 and silence this warning.",
                GridkitWarning,
                stacklevel=2,
            )
    logger.info(
        "read %d workers from %s (%s)", n, source,
        ", ".join(f"{r} {c}" for r, c in out["role"].value_counts().sort_index().items()),
    )
    return out


def _home_points(
    frame: pd.DataFrame,
    rows: np.ndarray,
    is_table: bool,
    lon_src: Any,
    lat_src: Any,
    problems: Problems,
) -> tuple[np.ndarray, np.ndarray]:
    """Home points (None where unknown) and their ``(n, 4)`` bounds (NaN where unknown)."""
    n = len(frame)
    geoms = np.full(n, None, dtype=object)
    if is_table and lon_src is None:
        return geoms, np.full((n, 4), np.nan)
    if is_table:
        lon = as_optional_text(frame[lon_src])
        lat = as_optional_text(frame[lat_src])
        given = (lon.notna() | lat.notna()).to_numpy()
        x = np.full(n, np.nan)
        y = np.full(n, np.nan)
        if given.any():
            x[given] = parse_coordinates(
                lon[given], rows[given], column=str(lon_src), problems=problems
            )
            y[given] = parse_coordinates(
                lat[given], rows[given], column=str(lat_src), problems=problems
            )
        ok = np.isfinite(x) & np.isfinite(y)
        geoms[ok] = shapely.points(x[ok], y[ok])
        return geoms, np.column_stack([x, y, x, y])
    raw = simplify_single_parts(
        shapely.force_2d(np.asarray(frame.geometry.array, dtype=object))
    )
    present = ~shapely.is_missing(raw) & ~shapely.is_empty(raw)
    types = np.array([g.geom_type if g is not None else "" for g in raw], dtype=object)
    wrong = present & (types != "Point")
    if wrong.any():
        problems.add(
            f"home geometry is not a point at {rows_text(rows[wrong])} "
            f"({', '.join(sorted(set(types[wrong])))}): draw each home as one point, or use "
            "`gdf.representative_point()`."
        )
    keep = present & ~wrong
    geoms[keep] = raw[keep]
    bounds = np.full((n, 4), np.nan)
    if keep.any():
        bounds[keep] = shapely.bounds(raw[keep])
    return geoms, bounds


def mask_phone(phone: Any) -> str | None:
    """Mask a phone number for output, keeping the first 3 and last 4 digits.

    Examples
    --------
    >>> mask_phone("13812345678"), mask_phone("027-8765 4321"), mask_phone(None)
    ('138****5678', '027****4321', None)
    >>> mask_phone("12345")
    '***45'
    """
    if phone is None or (np.ndim(phone) == 0 and pd.isna(phone)):
        return None
    digits = re.sub(r"\D", "", str(phone))
    if len(digits) >= 8:
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * max(len(digits) - 2, 1) + digits[-2:]


def write_workers(workers: gpd.GeoDataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a roster as a CSV (UTF-8 with BOM) or XLSX table with ``lon``/``lat`` columns.

    Parameters
    ----------
    workers
        A roster with point homes (``None`` where unknown), e.g. from :func:`make_roster`.
    path
        ``.csv`` or ``.xlsx`` (needs openpyxl).  Parent folders are created.

    Returns
    -------
    pathlib.Path
        ``path``; writing the same roster twice gives identical bytes (CSV).

    Notes
    -----
    Text cells that a spreadsheet would run as formulas get a leading ``'``
    (:func:`gridkit.export.spreadsheet_safe`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    geoms = workers.to_crs(4326).geometry.to_numpy() if workers.crs else workers.geometry.to_numpy()
    ok = ~shapely.is_missing(geoms)
    lon = np.full(len(workers), np.nan)
    lat = np.full(len(workers), np.nan)
    lon[ok], lat[ok] = shapely.get_x(geoms[ok]), shapely.get_y(geoms[ok])
    table = pd.DataFrame(workers.drop(columns=workers.geometry.name))
    table["lon"] = np.round(lon, 7)
    table["lat"] = np.round(lat, 7)
    table = spreadsheet_safe(table)  # no cell runs as a formula (gridkit.export's rule)
    if path.suffix.lower() in _EXCEL_SUFFIXES:
        table.to_excel(path, index=False)
    else:
        table.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\n")
    logger.info("wrote %d workers to %s", len(table), path)
    return path
