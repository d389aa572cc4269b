"""The last step of a file-to-file run: the per-community results, read back from the work
folder in community order, streamed into one partition output set.

The files are written by :func:`gridkit.export.write_plan_set`, the one writer of a
partition output set: this module hands it the grid layer, a function that streams
``assignments.csv`` chunk by chunk (in input order, from the work folder's chunk tables)
and counts its rows, a function that makes the report from those counts, and the
buildings layer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit.errors import InputError
from gridkit.export import spreadsheet_safe, write_plan_set
from gridkit.partition import CommunityPlan, GridRules
from gridkit.pipeline.community import CommunityResult
from gridkit.pipeline.dedicated import dedicated_grid_rows, residential_outline
from gridkit.pipeline.execute import Failure
from gridkit.pipeline.grids import (
    GridRow,
    buildings_layer,
    compounds_by_grid,
    empty_grid,
    grid_layer,
    split_compounds_of,
)
from gridkit.pipeline.report import RowTotals, report_from
from gridkit.pipeline.storage import DamagedWorkFile, load_arrays
from gridkit.pipeline.workdir import WorkDir
from gridkit.units import Dedicated, PieceTally

__all__ = [
    "assemble_and_write",
]


def _iter_results(
    boundaries: gpd.GeoDataFrame,
    manifest: dict,
    hashes: dict[int, str],
    work: WorkDir,
    failures: dict[str, Failure],
) -> Iterator[tuple[int, str, CommunityResult | None]]:
    """``(index, id, result)`` of every community, in order (None: no households or failed)."""
    for k, cid in enumerate(boundaries["community_id"].astype(str)):
        info = manifest["communities"].get(str(k))
        if info is None:
            yield k, cid, None
            continue
        result = work.load_result(cid, hashes[k])
        if result is None and cid not in failures:
            failures[cid] = Failure(cid, "no result in the work folder (it was removed?)")
        yield k, cid, result


def assemble_and_write(
    boundaries: gpd.GeoDataFrame,
    comm_metric: gpd.GeoDataFrame,
    metric,
    manifest: dict,
    hashes: dict[int, str],
    work: WorkDir,
    failures: dict[str, Failure],
    out: Path,
    *,
    rules: GridRules,
    time_limit: float,
    seed: int,
    started: float,
    bounds: Mapping[str, GridRules] | None = None,
    bounds_info: dict | None = None,
    map_html: bool,
    offline: bool,
    lang: str = "zh",
    carving: Dedicated | None = None,
) -> tuple[dict, dict[str, Path]]:
    """Stream the per-community results into the outputs, written as one set.

    With ``carving`` (dedicated parcels), each piece is one more grid, whose households
    the shards counted (``manifest["dedicated"]``) and whose rows the chunk tables
    name (``piece``).

    The files go through :class:`gridkit.export.OutputSet` (in
    :func:`gridkit.export.write_plan_set`): a run killed at any point leaves the
    previous set or the new one in ``out``, never a mix.

    Returns
    -------
    report, paths
        The report written, and kind -> the path of each file written.
    """
    n = len(boundaries)
    grid_rows: list[GridRow] = []
    plans: list[CommunityPlan] = []
    notes: dict[str, list[str]] = {}
    n_units: list[Any] = [0] * n
    households = np.zeros(n, dtype=np.int64)
    building_parts: list[pd.DataFrame] = []
    compound_of: dict[str, str] = {}
    code_of_row = np.full(manifest["rows"] + 1, -1, dtype=np.int64)
    codes: list[str] = []
    unit_offset = 0
    for k, cid, result in _iter_results(boundaries, manifest, hashes, work, failures):
        if result is None:
            if cid in failures:
                n_units[k] = None
                households[k] = manifest["communities"][str(k)]["households"]
            else:
                outline = residential_outline(carving, cid, metric, comm_metric.geometry.iloc[k])
                if not outline.is_empty:
                    grid_rows.append(empty_grid(cid, outline))
            continue
        base = len(codes)
        codes += [row[0] for row in result.grids]
        grid_rows += result.grids
        plans.append(result.plan)
        if result.notes:
            notes[cid] = result.notes
        n_units[k] = result.n_units
        households[k] = result.households
        code_of_row[result.rows] = base + result.row_grid
        b = result.buildings
        building_parts.append(
            pd.DataFrame(
                {
                    "unit_id": np.arange(unit_offset, unit_offset + len(b), dtype=np.int64),
                    "community_id": cid,
                    "building_id": b["building_id"].to_numpy(dtype=object),
                    "households": b["households"].to_numpy(dtype=np.int64),
                    "rows": b["rows"].to_numpy(dtype=np.int64),
                    "x": b["x"].to_numpy(dtype=float),
                    "y": b["y"].to_numpy(dtype=float),
                    "code": base + b["grid"].to_numpy(dtype=np.int64),
                    "compound": b["compound"].to_numpy(dtype=object)
                    if "compound" in b
                    else np.full(len(b), None, dtype=object),
                }
            )
        )
        if "split_of" in b:
            compound_of.update(
                split_compounds_of(
                    np.array([result.grids[g][0] for g in b["grid"].to_numpy()], dtype=object),
                    b["split_of"].to_numpy(dtype=object),
                )
            )
        unit_offset += len(b)
    communities = comm_metric.copy()
    communities["n_units"] = pd.array(n_units, dtype="Int64")
    communities["households"] = households
    units = pd.concat(building_parts or [_no_units()], ignore_index=True)
    compounds = compounds_by_grid(
        np.array(codes, dtype=object)[units["code"].to_numpy()],
        units["compound"].to_numpy(dtype=object),
    )
    piece_base = len(codes)
    if carving is not None:
        tally = PieceTally.from_json(manifest["dedicated"]).frame()
        grid_rows += dedicated_grid_rows(carving, tally, metric)
        codes += carving.pieces["grid_code"].astype(str).tolist()
        named = tally["compounds"].notna().to_numpy()
        compounds.update(zip(carving.pieces["grid_code"][named], tally["compounds"][named],
                             strict=True))  # fmt: skip
    code_array = np.array([*codes, ""], dtype=object)  # -1 -> ""
    grids = grid_layer(
        grid_rows,
        communities,
        metric,
        compound_of=compound_of,
        compounds=compounds,
        dedicated=carving.types() if carving is not None else None,
    )

    def write_assignments(path: Path) -> RowTotals:
        return _write_assignments(
            path, work, manifest, boundaries, code_of_row, code_array, failures,
            piece_base=piece_base,
            piece_community=None if carving is None
            else carving.pieces["community_id"].astype(str).to_numpy(dtype=object),
        )  # fmt: skip

    def make_report(rows: RowTotals) -> dict:
        return report_from(
            grids,
            communities,
            notes,
            plans,
            rows,
            rules=rules,
            time_limit=time_limit,
            seed=seed,
            elapsed=time.perf_counter() - started,
            failures=failures,
            bounds=bounds,
            bounds_info=bounds_info,
        )

    def make_buildings() -> gpd.GeoDataFrame:
        return buildings_layer(units, code_array[units["code"].to_numpy()], metric)

    return write_plan_set(
        out,
        grids=grids.to_crs(4326),
        assignments=write_assignments,
        report=make_report,
        buildings=make_buildings,
        communities=communities,
        map_html=map_html,
        offline=offline,
        lang=lang,
    )


def _no_units() -> pd.DataFrame:
    """An empty building table (a run in which every community failed)."""
    int64, obj = np.int64, object
    columns = {"unit_id": int64, "community_id": obj, "building_id": obj, "households": int64,
               "rows": int64, "x": float, "y": float, "code": int64, "compound": obj}  # fmt: skip
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


def _write_assignments(
    path: Path,
    work: WorkDir,
    manifest: dict,
    boundaries: gpd.GeoDataFrame,
    code_of_row: np.ndarray,
    code_array: np.ndarray,
    failures: dict[str, Failure],
    *,
    piece_base: int = 0,
    piece_community: np.ndarray | None = None,
) -> RowTotals:
    """``assignments.csv`` chunk by chunk, in input order; returns the row totals.

    A row in a dedicated piece (``piece`` of the chunk table, with ``piece_community``
    the community of each piece) gets the piece's code, at ``piece_base`` + piece in
    ``code_array``."""
    ids = np.array([*boundaries["community_id"].astype(str), ""], dtype=object)  # -1 -> ""
    failed = np.zeros(len(ids), dtype=bool)
    if failures:
        failed[:-1] = boundaries["community_id"].astype(str).isin(list(failures)).to_numpy()
    totals = RowTotals()
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        for chunk in range(manifest["chunks"]):
            try:
                table = load_arrays(work.rows_path(chunk))
            except (FileNotFoundError, DamagedWorkFile) as exc:
                raise InputError(
                    f"the work folder '{work.path}' is damaged (chunk table {chunk}: {exc}): run "
                    "the same command without --resume to start afresh."
                ) from None
            community = table["community"].astype(np.int64)
            piece = table["piece"].astype(np.int64) if "piece" in table else None
            in_piece = piece >= 0 if piece is not None else np.zeros(len(community), bool)
            reason = np.where(
                (community < 0) & ~in_piece,
                "outside_communities",
                np.where(failed[community], "community_failed", ""),
            ).astype(object)
            grid = code_array[code_of_row[table["row"]]]
            community_id = ids[community]
            if in_piece.any():
                reason[in_piece] = ""
                grid[in_piece] = code_array[piece_base + piece[in_piece]]
                community_id = community_id.copy()
                community_id[in_piece] = piece_community[piece[in_piece]]
            frame = pd.DataFrame(
                {
                    "household_id": table["household_id"],
                    "row": table["row"],
                    "community_id": community_id,
                    "grid_code": grid,
                    "reason": reason,
                }
            )
            spreadsheet_safe(frame).to_csv(
                fh, index=False, header=chunk == 0, lineterminator="\n"
            )
            totals.add(table["households"], reason)
    return totals

