"""Command line: ``gridkit locate`` (a thin wrapper over :func:`gridkit.locate.locate_points`).

:func:`register` adds the subcommand to the ``gridkit`` parser and sets ``handler``
(``args.handler(args)`` returns the exit code); the caller turns a
:class:`~gridkit.errors.GridkitError` into ``error: ...`` and exit code 2.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from gridkit.errors import InputError
from gridkit.locate import locate_points, write_located

__all__ = ["format_summary", "register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``locate`` subcommand.

    Parameters
    ----------
    subparsers
        What ``argparse.ArgumentParser.add_subparsers()`` returned.
    """
    p = subparsers.add_parser(
        "locate",
        help="find the grid of each point (a request, a dispute, an address already "
        "geocoded): grid code and name, community, street and the people responsible",
        description="For each point: the grid that holds it, its community and street, and "
        "the people responsible (from the grid layer of `gridkit assign` or --roster). A "
        "point outside every grid gets the nearest grid, the distance and a reason.",
    )
    p.add_argument(
        "--grids",
        required=True,
        metavar="DIR",
        help="output folder of `gridkit partition`, `regenerate` or `assign`, or a grid layer",
    )
    p.add_argument(
        "--points",
        required=True,
        metavar="PATH",
        help="points: GeoJSON, GeoPackage, Shapefile, or CSV/TSV with lon/lat columns",
    )
    p.add_argument(
        "--roster",
        metavar="DIR",
        help="folder written by `gridkit assign` (or its roster.csv): adds the people of "
        "each grid, one column per role",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="answer file: .csv (for Excel, UTF-8 with BOM) or .geojson",
    )
    g = p.add_argument_group("points file")
    g.add_argument("--id-col", metavar="COL", help="point id column (default: the row number)")
    g.add_argument("--lon-col", metavar="COL", help="longitude column of a table")
    g.add_argument("--lat-col", metavar="COL", help="latitude column of a table")
    g.add_argument(
        "--input-crs",
        metavar="CRS",
        help="CRS of the points: wgs84 (a CSV's default), gcj02 (Amap/Tencent), bd09 (Baidu) "
        "or EPSG:nnnn",
    )
    g.add_argument("--points-layer", metavar="NAME", help="layer of a multi-layer file")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of the summary")
    p.set_defaults(handler=run)


def format_summary(located: Any, path: Path, seconds: float, lang: str = "zh") -> str:
    """One line: how many points were inside a grid, on a grid line, outside every grid."""
    counts = located["match"].value_counts()
    inside, edge, near = (int(counts.get(k, 0)) for k in ("inside", "edge", "nearest"))
    if lang == "zh":
        return (
            f"定位 {len(located):,} 个点：网格内 {inside:,}，网格边线上 {edge:,}，"
            f"所有网格之外 {near:,}（已给出最近网格及距离）；用时 {seconds:.1f} 秒；写入 {path}"
        )
    return (
        f"located {len(located):,} points: {inside:,} inside a grid, {edge:,} on a grid line, "
        f"{near:,} outside every grid (nearest grid and distance given) in {seconds:.1f} s; "
        f"wrote {path}"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``gridkit locate``; returns the exit code."""
    out = Path(args.out)
    if out.is_dir():
        raise InputError(f"--out '{out}' is a folder: give a file name ending in .csv or .geojson")
    started = time.perf_counter()
    located = locate_points(
        args.grids,
        args.points,
        roster=args.roster,
        id_col=args.id_col,
        lon_col=args.lon_col,
        lat_col=args.lat_col,
        input_crs=args.input_crs,
        layer=args.points_layer,
    )
    path = write_located(located, out)
    if not args.quiet:
        print(format_summary(located, path, time.perf_counter() - started, lang=args.lang))
    return 0
