"""Write grids and reports: GeoJSON (RFC 7946), assignments CSV, report JSON."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd

if TYPE_CHECKING:
    from gridkit.pipeline import GridPlan

__all__ = ["to_assignments_csv", "to_geojson", "to_report_json", "write_outputs"]

log = logging.getLogger(__name__)


def to_geojson(gdf: gpd.GeoDataFrame, path: str | os.PathLike) -> Path:
    """Write a layer as RFC 7946 GeoJSON (WGS84 lon/lat, 7 decimals) and return the path.

    Parent folders are created.  The output is byte-identical for identical
    input.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = gdf.to_crs(4326) if gdf.crs is not None else gdf
    if path.exists():
        path.unlink()
    out.to_file(
        path,
        driver="GeoJSON",
        engine="pyogrio",
        layer_options={"RFC7946": "YES", "WRITE_NAME": "NO"},
    )
    log.info("wrote %d features to %s", len(out), path)
    return path


def to_assignments_csv(assignments: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the household → grid table as UTF-8 CSV (with BOM, so Excel shows Chinese)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    assignments.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\n")
    log.info("wrote %d rows to %s", len(assignments), path)
    return path


def to_report_json(report: dict, path: str | os.PathLike) -> Path:
    """Write the run report as pretty-printed UTF-8 JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def write_outputs(
    plan: GridPlan, out_dir: str | os.PathLike, *, map_html: bool = False, offline: bool = False
) -> dict[str, Path]:
    """Write ``grids.geojson``, ``assignments.csv``, ``report.json``, ``buildings.geojson``
    (one point per building with its grid) and optionally ``map.html``.

    With ``offline=True`` the map embeds its JavaScript/CSS and has no web basemap, so
    it opens on a closed intranet.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "grids": to_geojson(plan.grids, out / "grids.geojson"),
        "assignments": to_assignments_csv(plan.assignments, out / "assignments.csv"),
        "report": to_report_json(plan.report, out / "report.json"),
        "buildings": to_geojson(plan.buildings, out / "buildings.geojson"),
    }
    if map_html:
        from gridkit.maps import explore, save_map

        communities = plan.units.communities
        m = explore(plan.grids, communities=communities, households=plan.buildings, offline=offline)
        paths["map"] = save_map(m, out / "map.html")
    return paths
