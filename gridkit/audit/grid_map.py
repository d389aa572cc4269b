"""Reading a grid map: one polygon per grid, from a file or a GeoDataFrame.

:func:`read_grids` reads any grid map (drawn by hand, exported by another
platform, or written by gridkit) into a normalised frame (:data:`GRID_MAP_COLUMNS`
first).  Staffing reads the grid layers it is given with it, too.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit.contracts import GRID_COLUMNS
from gridkit.crs import normalise_crs_name
from gridkit.errors import GridkitWarning, InputError
from gridkit.export import check_set, crs_from_note, read_manifest

# Not yet exported by the door of gridkit.io: the reader kit.
from gridkit.io import (
    VECTOR_FORMATS,
    Problems,
    as_optional_text,
    as_text,
    assemble_frame,
    check_ids,
    checked_polygons,
    columns_text,
    frame_to_wgs84,
    load_file,
    resolve_input_crs,
)

__all__ = ["GRID_MAP_COLUMNS", "read_grids"]

log = logging.getLogger(__name__)

#: The first columns of :func:`read_grids`' result (other source columns follow).
GRID_MAP_COLUMNS = ("grid_code", "community_id", "row", "geometry")

_GRID_CODE_NAMES = ("grid_code",)
# community id of a grid: the grids.geojson name, then the shapefile export's short name.
_GRID_COMMUNITY_NAMES = ("community_id", "comm_id")

PathOrFrame = str | os.PathLike[str] | pd.DataFrame


def _marker_system(frame: pd.DataFrame) -> str | None:
    """``"gcj02"``/``"bd09"`` when a gridkit export marked the file with ``crs_note``."""
    cols = [c for c in frame.columns if str(c).strip().lower() == "crs_note"]
    if not cols:
        return None
    found = {crs_from_note(v) for v in frame[cols[0]].dropna().astype(str).unique()}
    found.discard(None)
    return found.pop() if len(found) == 1 else None


def _own_wgs84_layer(path: Any, frame: pd.DataFrame) -> bool:
    """Whether ``path`` is a WGS84 grid layer gridkit wrote (partition, regenerate, assign)."""
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
        A GeoJSON, GeoPackage or Shapefile (``.shp`` or zipped ``.zip``), an output
        folder of gridkit (its ``grids.geojson``), or a GeoDataFrame (copied, never
        modified).
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
    if isinstance(path, str | os.PathLike) and Path(path).is_dir():
        folder, path = Path(path), Path(path) / "grids.geojson"
        if not path.is_file():
            raise InputError(
                f"folder '{folder}' holds no grids.geojson: pass the folder written by "
                "`gridkit partition`, `regenerate` or `assign`, or the grid file itself "
                "(GeoJSON, GeoPackage or Shapefile)."
            )
    if isinstance(path, str | os.PathLike) and Path(path).is_file():
        check_set(Path(path).parent, [Path(path).name])  # a set gridkit wrote is whole
    source, frame, is_table = load_file(path, layer=layer, what=what, tables=False)
    if is_table:
        msg = (
            f"{what} '{source}' has no geometry column: grids must be polygons; pass a "
            f"GeoDataFrame or a {VECTOR_FORMATS} file."
        )
        raise InputError(msg)
    if len(frame) == 0:
        msg = f"{what} file '{source}' contains no features: check the file and `layer`."
        raise InputError(msg)
    problems = Problems(source, what)
    columns = [c for c in frame.columns if c != frame.geometry.name]
    code_src = _find_column(columns, grid_code_col, _GRID_CODE_NAMES)
    if code_src is None:
        given = (
            f"column {grid_code_col!r} given as `grid_code_col` does not exist"
            if grid_code_col is not None
            else "no grid code column found (looked for `grid_code`, case-insensitive)"
        )
        msg = (
            f"{what} '{source}': {given}; available columns: {columns_text(columns)}. "
            "Pass the column holding the grid codes as `grid_code_col=...` "
            "(CLI `--grid-code-col COL`)."
        )
        raise InputError(msg)
    comm_src = _find_column(columns, community_col, _GRID_COMMUNITY_NAMES)
    if community_col is not None and comm_src is None:
        msg = (
            f"{what} '{source}': column {community_col!r} given as `community_col` does not "
            f"exist; available columns: {columns_text(columns)}. Pass one of them "
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
    crs = resolve_input_crs(
        frame.crs, input_crs, source=source, what=what, kind=kind, is_table=False
    )
    n = len(frame)
    rows = np.arange(1, n + 1, dtype=np.int64)
    codes = as_text(frame[code_src])
    check_ids(
        codes,
        rows,
        column=str(code_src),
        missing_fix="give every grid a code, or pass `grid_code_col=...` (CLI "
        "`--grid-code-col`) to use another column.",
        duplicate_fix="give each grid its own code, or, if these features are pieces of one "
        f"grid, dissolve them first (`gdf.dissolve(by={str(code_src)!r}, as_index=False)`).",
        problems=problems,
    )
    geoms, repaired = checked_polygons(
        frame, rows, crs, [f"grid {c}" for c in codes], kind=kind,
        type_fix="Grids must be closed polygons: convert lines with `shapely.polygonize` or "
        "delete these features.",
        problems=problems,
    )  # fmt: skip
    community = (
        as_optional_text(frame[comm_src])
        if comm_src is not None
        else pd.Series([None] * n, dtype=object)
    )
    contract = {"grid_code": codes, "community_id": community, "row": rows}
    used = {code_src, comm_src} - {None}
    out = assemble_frame(contract, geoms, frame, used, source=source)
    out = frame_to_wgs84(out, crs, kind=kind, problems=problems)
    if repaired:
        warnings.warn(f"{what} '{source}': {repaired}", GridkitWarning, stacklevel=2)
    log.info("read %d grids from %s (code column %r, CRS %s)", n, source, code_src, crs.label)
    return out
