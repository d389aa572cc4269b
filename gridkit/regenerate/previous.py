"""Reading the previous grid map: its grids, the codes issued in earlier generations
(``codes.json``) and its household table (``assignments.csv``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.errors import InputError
from gridkit.export import check_set, original_text, read_output_layer
from gridkit.regenerate.stable_codes import CODE_END

__all__ = ["CODES_FILE", "Previous", "read_previous"]

#: Sidecar listing every grid code ever issued per community (read from and
#: written to the output folder), so that retired codes are never reused.
CODES_FILE = "codes.json"
_GRID_COLUMNS = ("grid_code", "community_id", "households", "buildings", "status")


@dataclass
class Previous:
    """The previous grid map: its grids (EPSG:4326) and the codes ever issued per community."""

    grids: gpd.GeoDataFrame
    issued: dict[str, set[str]]
    source: str
    assignments: pd.DataFrame | None = None

    @property
    def household_ids(self) -> set[str] | None:
        """Household ids of the previous run, when they identify households across runs.

        ``None`` without ``assignments.csv`` or when its ids are just row numbers
        (``--id-col`` not given), which do not survive added or removed rows.
        """
        a = self.assignments
        if a is None or (a["household_id"] == a["row"]).all():
            return None
        return set(a["household_id"])


def read_previous(previous: str | os.PathLike | gpd.GeoDataFrame) -> Previous:
    """Read a previous grid map: an output folder, a ``grids.geojson`` or a GeoDataFrame.

    ``codes.json`` beside the grids (written by :func:`regenerate`) adds the codes
    issued in earlier generations; without it, the codes in use are all that is known.
    """
    codes_path = assignments = None
    fix = (
        "Pass the folder exactly as `gridkit partition` or `gridkit regenerate` wrote it "
        "(write it again if it was edited or damaged)."
    )
    if isinstance(previous, gpd.GeoDataFrame):
        grids, source = previous.copy(), "previous grids"
    else:
        path = Path(previous)
        grids_path = path / "grids.geojson" if path.is_dir() else path
        if grids_path.name == "grids.geojson":
            check_set(grids_path.parent, ["grids.geojson", CODES_FILE, "assignments.csv"])
        if not grids_path.is_file():
            msg = (
                f"no previous grid layer at '{grids_path}' (`previous`): pass the folder "
                "written by `gridkit partition` or `gridkit regenerate` (it holds "
                "grids.geojson) or a grids.geojson file."
            )
            raise InputError(msg)
        grids = read_output_layer(grids_path, what="previous grid layer (--previous)", fix=fix)
        codes_path = grids_path.parent / CODES_FILE
        source = str(grids_path)
        table = grids_path.parent / "assignments.csv"
        if table.is_file():
            assignments = _read_previous_assignments(table, fix)
            if not {"household_id", "row", "grid_code"} <= set(assignments.columns):
                assignments = None
            else:
                for col in ("household_id", "grid_code"):
                    assignments[col] = assignments[col].map(original_text)
    missing = [c for c in _GRID_COLUMNS if c not in grids]
    if missing:
        msg = (
            f"{source} lacks the grid columns {', '.join(missing)}: it does not look like a "
            "gridkit grid layer. Pass the grids.geojson written by `gridkit partition`."
        )
        raise InputError(msg)
    if grids.crs is None:
        grids = grids.set_crs(4326)
    grids["grid_code"] = grids["grid_code"].astype(str)
    grids["community_id"] = grids["community_id"].astype(str)
    _check_previous_grids(grids, source, fix)
    dup = grids["grid_code"][grids["grid_code"].duplicated()].tolist()
    if dup:
        msg = f"{source} repeats grid codes {dup[:10]}; every grid needs its own code."
        raise InputError(msg)
    issued: dict[str, set[str]] = {}
    for cid, code in zip(grids["community_id"], grids["grid_code"], strict=True):
        issued.setdefault(cid, set()).add(code)
    if codes_path is not None and codes_path.is_file():
        for cid, codes in _read_codes(codes_path).items():
            issued.setdefault(cid, set()).update(codes)
    return Previous(
        grids=grids.reset_index(drop=True), issued=issued, source=source, assignments=assignments
    )


def _check_previous_grids(grids: gpd.GeoDataFrame, source: str, fix: str) -> None:
    """Codes ending in a 3-digit sequence, numeric households, polygon geometries."""
    bad = [c for c in grids["grid_code"] if not CODE_END.search(c)]
    if bad:
        raise InputError(
            f"{source}: grid codes {bad[:5]}{' …' if len(bad) > 5 else ''} do not end in the "
            "3-digit sequence number gridkit gives every grid (e.g. 420204001003007 or "
            "C01-007), so new codes cannot be numbered after them. " + fix
        )
    hh = pd.to_numeric(grids["households"], errors="coerce")
    if hh.isna().any():
        rows = (np.flatnonzero(hh.isna().to_numpy()) + 1).tolist()
        raise InputError(
            f"{source}: `households` is missing or not a number at features {rows[:10]}. " + fix
        )
    polygon = grids.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    if not polygon.all():
        rows = (np.flatnonzero(~polygon) + 1).tolist()
        raise InputError(f"{source}: features {rows[:10]} are not polygons. " + fix)
    invalid = ~shapely.is_valid(grids.geometry.to_numpy())
    if invalid.any():
        grids.loc[invalid, grids.geometry.name] = shapely.make_valid(
            grids.geometry.to_numpy()[invalid]
        )


def _read_previous_assignments(table: Path, fix: str) -> pd.DataFrame:
    """The previous ``assignments.csv`` (text cells), or an InputError naming the file."""
    try:
        return pd.read_csv(table, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"cannot read the previous household table '{table}' ({first}). {fix} Or move "
            "assignments.csv out of the folder: without it, households are matched by "
            "location only."
        ) from None


def _read_codes(path: Path) -> dict[str, set[str]]:
    """The codes ever issued per community, from ``codes.json``; an InputError when damaged."""
    how = (
        f"Restore {CODES_FILE} from a copy of the earlier run, or delete it to number new "
        "grids after the codes in use only (a retired code could then be issued again)."
    )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot read '{path}': it is not valid JSON ({exc}). {how}") from None
    communities = data.get("communities") if isinstance(data, dict) else None
    if not isinstance(communities, dict):
        raise InputError(
            f"'{path}' is not a gridkit codes file (expected {{\"communities\": {{id: "
            f"{{\"issued\": [codes]}}}}}}). {how}"
        )
    issued: dict[str, set[str]] = {}
    for cid, entry in communities.items():
        codes = entry.get("issued") if isinstance(entry, dict) else None
        if not isinstance(codes, list) or not all(isinstance(c, str | int) for c in codes):
            raise InputError(
                f"'{path}': community {str(cid)!r} has no list of issued codes. {how}"
            )
        bad = [str(c) for c in codes if not CODE_END.search(str(c))]
        if bad:
            raise InputError(
                f"'{path}': community {str(cid)!r} lists codes {bad[:5]} that do not end in a "
                f"3-digit sequence number. {how}"
            )
        issued[str(cid)] = set(map(str, codes))
    return issued
