"""Command line: ``gridkit audit`` and ``gridkit export`` (thin wrappers).

:func:`register` adds both subcommands to the ``gridkit`` parser (wired in by
:mod:`gridkit.cli.commands`); each sets ``handler`` (``args.handler(args)`` returns the
exit code).  The caller configures logging and warnings and turns a
:class:`~gridkit.errors.GridkitError` into ``error: ...`` and exit code 2, as for
``gridkit partition``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from gridkit.audit import audit_grids, format_summary, read_grids
from gridkit.cli.files import (
    read_communities,
    read_dedicated_parcels,
    read_household_rows,
    resolve_grids_path,
)
from gridkit.cli.options import add_dedicated_options, add_household_options, add_lang_option
from gridkit.crs import normalise_crs_name
from gridkit.export import CRS_NOTES, ExportError, export_layers, postgis_url

__all__ = ["register", "run_audit", "run_export"]


def register(subparsers: Any) -> None:
    """Add the ``audit`` and ``export`` subcommands.

    Parameters
    ----------
    subparsers
        What ``argparse.ArgumentParser.add_subparsers()`` returned.
    """
    _register_audit(subparsers)
    _register_export(subparsers)


def _register_audit(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "audit",
        help="check an existing grid map: households per grid, problems, gaps, overlaps",
        description="Count households and buildings in every grid of an existing grid map and "
        "list its problems (below_min, above_max, not_contiguous, overlap, outside_community, "
        "crosses_community, overlaps_dedicated); write audit.geojson, gaps.geojson, "
        "assignments.csv and "
        "report.json.",
    )
    g = p.add_argument_group("inputs")
    g.add_argument(
        "--grids",
        required=True,
        metavar="DIR_or_PATH",
        help="grid polygons (GeoJSON, GeoPackage, Shapefile), or an output folder of "
        "`gridkit partition`/`regenerate`/`assign` (its grids.geojson is read)",
    )
    g.add_argument(
        "--households",
        required=True,
        metavar="PATH",
        help="household or building points/footprints (GeoJSON, GPKG, SHP, CSV)",
    )
    g.add_argument(
        "--communities",
        metavar="PATH",
        help="community boundaries: enables outside_community, crosses_community "
        "and community gaps",
    )
    g.add_argument(
        "--grid-code-col", metavar="COL", help="grid code column of --grids (default: grid_code)"
    )
    g.add_argument(
        "--grid-community-col",
        metavar="COL",
        help="community id column of --grids (default: community_id or comm_id)",
    )
    g.add_argument("--grids-layer", metavar="NAME", help="layer of a multi-layer grids file")
    g.add_argument(
        "--community-id",
        metavar="COL",
        help="community id column of --communities (default: community_id, id or code)",
    )
    g.add_argument("--communities-layer", metavar="NAME", help="layer of a multi-layer file")
    add_household_options(g)
    g.add_argument(
        "--input-crs",
        metavar="CRS",
        help="CRS of the input files when they declare none, or to override: "
        "wgs84, gcj02 (Amap/Tencent), bd09 (Baidu) or EPSG:nnnn",
    )
    g.add_argument(
        "--grids-crs",
        metavar="CRS",
        help="CRS of the grids file only (default: its crs_note marker; WGS84 for a "
        "grids.geojson gridkit wrote; else --input-crs)",
    )
    g.add_argument(
        "--communities-crs",
        metavar="CRS",
        help="CRS of the communities file only (default: --input-crs)",
    )
    add_dedicated_options(g, audit=True)
    r = p.add_argument_group("rules")
    r.add_argument("--min-households", type=int, default=400, help="default: %(default)s")
    r.add_argument("--max-households", type=int, default=800, help="default: %(default)s")
    r.add_argument(
        "--community-rules",
        metavar="FILE",
        help="household bounds by community type (TOML, as for `gridkit partition`), looked "
        "up in the type column of --communities; min_households/max_households columns of "
        "the communities win over it",
    )
    r.add_argument(
        "--tolerance-m2",
        type=float,
        default=1.0,
        help="shared/outside/uncovered pieces up to this area are slivers (default: %(default)s)",
    )
    r.add_argument(
        "--sliver-width-m",
        type=float,
        default=0.1,
        help="... and so are pieces at most this wide on average (default: %(default)s)",
    )
    o = p.add_argument_group("output")
    o.add_argument("--out", required=True, metavar="DIR", help="output folder")
    o.add_argument(
        "--strict",
        action="store_true",
        help="exit with code 1 when any problem, gap or misplaced household is found",
    )
    o.add_argument("-q", "--quiet", action="store_true", help="no summary")
    o.add_argument("-v", "--verbose", action="store_true", help="log every step")
    add_lang_option(o)
    p.set_defaults(handler=run_audit)


def _register_export(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="export an output folder to GeoJSON, GeoPackage, Shapefile, CSV or PostGIS",
        description="Export the layers of a `gridkit partition` output folder. The format "
        "follows --to: .geojson/.json, .gpkg, .shp, .csv or a postgresql:// URL.",
    )
    p.add_argument("dir", metavar="DIR", help="folder written by `gridkit partition`")
    p.add_argument(
        "--to",
        required=True,
        metavar="PATH_or_URL",
        help="destination: x.geojson, x.gpkg, x.shp, x.csv, summary.xlsx (one sheet per "
        "street, community and grid, Chinese headers, totals) or "
        "postgresql://user:password@host:port/database[?schema=name]",
    )
    p.add_argument(
        "--crs",
        default="wgs84",
        metavar="CRS",
        help="wgs84 (default), gcj02 (Amap/Gaode, Tencent), bd09 (Baidu) or "
        "EPSG:nnnn; gcj02/bd09 outputs carry a crs_note",
    )
    p.add_argument(
        "--layers",
        metavar="LIST",
        help="comma-separated layers among grids, buildings, workers "
        "(default: every layer present in DIR)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.add_argument("-v", "--verbose", action="store_true", help="log every step")
    p.set_defaults(handler=run_export)


def run_audit(args: argparse.Namespace) -> int:
    """Run ``gridkit audit``; return the exit code (0, or 1 with ``--strict`` and problems)."""
    grids = read_grids(
        resolve_grids_path(args.grids, "--grids"),
        grid_code_col=args.grid_code_col,
        community_col=args.grid_community_col,
        input_crs=args.grids_crs or args.input_crs,
        layer=args.grids_layer,
        crs_given=args.grids_crs is not None,
    )
    households = read_household_rows(args)
    communities = read_communities(args) if args.communities else None
    result = audit_grids(
        grids,
        households,
        communities=communities,
        min_households=args.min_households,
        max_households=args.max_households,
        tolerance_m2=args.tolerance_m2,
        sliver_width_m=args.sliver_width_m,
        dedicated=read_dedicated_parcels(args),
        community_rules=args.community_rules,
    )
    paths = result.write(args.out)
    if not args.quiet:
        print(format_summary(result.report, lang=args.lang))
        print("  wrote: " + ", ".join(str(p) for p in paths.values()))
    report = result.report
    found = (
        report["grids_with_problems"]
        or report["gaps"]
        or report["households_outside_grids"]
        or report["household_rows_outside_grids"]
        or report["households_in_several_grids"]
    )
    return 1 if args.strict and found else 0


def run_export(args: argparse.Namespace) -> int:
    """Run ``gridkit export``; return the exit code (0)."""
    started = time.perf_counter()
    try:
        written = export_layers(args.dir, args.to, crs=args.crs, layers=args.layers)
    except ImportError as err:  # the postgis extra is missing: a message, not a traceback
        raise ExportError(str(err)) from err
    elapsed = time.perf_counter() - started
    if not args.quiet:
        shown = args.to
        if "://" in str(args.to):
            shown = postgis_url(str(args.to))[2]
        print(
            f"gridkit export: {len(written)} {'table' if '://' in str(args.to) else 'file'}"
            f"{'s' if len(written) != 1 else ''} to {shown} in {elapsed:.2f} s "
            f"(coordinates {args.crs})"
        )
        for item in written:
            print(f"  {item}")
        note = CRS_NOTES.get(normalise_crs_name(args.crs))
        if note:
            print(f"  note: {note}")
    return 0
