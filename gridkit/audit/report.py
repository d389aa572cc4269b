"""What an audit returns and writes: the grid, gap and household frames, the figures of
``report.json`` and the terminal summary, and the vocabulary they use (files, problem codes,
columns).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.audit._buildings import Buildings
from gridkit.export import OutputSet, headline, to_assignments_csv, to_geojson, to_report_json
from gridkit.utils import __version__

__all__ = [
    "AUDIT_COLUMNS",
    "AUDIT_FILES",
    "GAP_COLUMNS",
    "PROBLEMS",
    "AuditResult",
    "assignments_frame",
    "format_summary",
    "gap_frame",
    "grid_frame",
    "join_codes",
    "report_figures",
]

#: Files ``gridkit audit`` writes, by kind (one set: :class:`gridkit.export.OutputSet`).
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
    "overlaps_dedicated": "a residential grid sharing area with a dedicated grid (专属网格) or "
    "parcel",
}

#: Columns of ``audit.geojson`` (``grid_name``, ``grid_type`` and ``declared_households``
#: only when the audited map has ``grid_name`` / ``grid_type`` / ``households`` columns).
AUDIT_COLUMNS = (
    "grid_code",
    "grid_name",
    "grid_type",
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
    "dedicated_overlap_m2",
    "dedicated_overlaps",
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
        ``dedicated_overlap_m2`` and ``dedicated_overlaps`` (for a residential grid,
        the area it shares with dedicated grids and parcels, and their codes or
        names, ``;``-joined), ``declared_households`` (the map's own ``households``
        value, when it has that column).
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
        with OutputSet(out_dir, "audit", known=AUDIT_FILES.values()) as out:
            to_geojson(self.grids, out.path(AUDIT_FILES["audit"]))
            to_geojson(self.gaps, out.path(AUDIT_FILES["gaps"]))
            to_assignments_csv(self.assignments, out.path(AUDIT_FILES["assignments"]))
            to_report_json(self.report, out.path(AUDIT_FILES["report"]))
            written = out.commit()
        return {kind: written[n] for kind, n in AUDIT_FILES.items()}


def join_codes(values: Any) -> str:
    """Values joined by ``;`` (problem codes, grid codes, community ids in one cell)."""
    return ";".join(str(v) for v in values)


def gap_frame(
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


def grid_frame(
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
    dedicated_overlap_m2: np.ndarray | None = None,
    dedicated_overlaps: list[list[str]] | None = None,
) -> gpd.GeoDataFrame:
    """The audited grids, one row per grid in input order (:data:`AUDIT_COLUMNS`)."""
    n = len(codes)
    data: dict[str, Any] = {"grid_code": pd.Series(codes, dtype=object)}
    for col in ("grid_name", "grid_type"):
        if col in g.columns:
            data[col] = pd.Series([None if pd.isna(v) else str(v) for v in g[col]], dtype=object)
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
            "overlaps_with": pd.Series([join_codes(v) for v in overlaps_with], dtype=object),
            "outside_m2": np.round(outside_m2, 1),
            "communities": pd.Series([join_codes(v) for v in covered], dtype=object),
            "dedicated_overlap_m2": np.round(
                np.zeros(n) if dedicated_overlap_m2 is None else dedicated_overlap_m2, 1
            ),
            "dedicated_overlaps": pd.Series(
                [join_codes(v) for v in (dedicated_overlaps or [[] for _ in range(n)])],
                dtype=object,
            ),
        }
    )
    if "households" in g.columns:
        declared = pd.to_numeric(g["households"], errors="coerce")
        data["declared_households"] = declared.astype("Int64").to_numpy()
    frame = gpd.GeoDataFrame(data, geometry=g.geometry.reset_index(drop=True), crs=4326)
    return frame


def assignments_frame(
    hh: gpd.GeoDataFrame,
    bld: Buildings,
    b_pt: np.ndarray,
    b_grid: np.ndarray,
    b_gap: np.ndarray,
    codes: np.ndarray,
    gaps: gpd.GeoDataFrame,
) -> pd.DataFrame:
    """One row per household row: its grid codes, its gap and why it is in none or several."""
    per_building = pd.Series(codes[b_grid], dtype=object).groupby(b_pt).agg(join_codes)
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


def report_figures(
    grids: gpd.GeoDataFrame,
    gaps: gpd.GeoDataFrame,
    hh: gpd.GeoDataFrame,
    bld: Buildings,
    assignments: pd.DataFrame,
    *,
    n_grids_of: np.ndarray,
    bld_in_comm: np.ndarray | None,
    parameters: dict,
    unknown_ids: list[str],
    dedicated_grids: int = 0,
) -> dict:
    """The figures of ``report.json`` (listed under :func:`gridkit.audit.audit_grids`)."""
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
        if "overlaps_dedicated" in codes:
            entry["dedicated_overlaps"] = grids["dedicated_overlaps"].iloc[k].split(";")
            entry["dedicated_overlap_m2"] = float(grids["dedicated_overlap_m2"].iloc[k])
        flagged.append(entry)
    overlap_total = float(grids["overlap_m2"].sum()) / 2
    return {
        "gridkit_version": __version__,
        "parameters": parameters,
        "grids": len(grids),
        "dedicated_grids": int(dedicated_grids),
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
    (:func:`gridkit.export.headline`): the grids within the household bounds among
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
    p = report["parameters"]
    by_bounds = {k: int(report["problems"].get(k, 0)) for k in ("below_min", "above_max")}
    by_bounds["dedicated"] = int(report.get("dedicated_grids", 0))
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
            if "dedicated_overlaps" in entry:
                extra.append(
                    f"overlaps dedicated {', '.join(entry['dedicated_overlaps'])} by "
                    f"{entry['dedicated_overlap_m2']:,.0f} m²"
                )
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
