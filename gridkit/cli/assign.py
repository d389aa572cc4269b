"""Command line: ``gridkit assign`` (a thin wrapper over :func:`gridkit.staffing.assign_workers`).

Wired into :mod:`gridkit.cli` with :func:`register` (adds the subcommand and its options)
and :func:`run` (runs it and returns the exit code: 0 done — shortages are reported, not
fatal — or 2 on bad input, with an ``error:`` message naming the file, rows and fix).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gridkit.cli.options import add_lang_option, add_map_mode_options
from gridkit.errors import GridkitError
from gridkit.export import headline
from gridkit.staffing import assign_workers, read_staffing_grids, read_workers

__all__ = ["register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``assign`` subcommand and its options to ``subparsers``.

    Parameters
    ----------
    subparsers
        What ``ArgumentParser.add_subparsers()`` returned.

    Returns
    -------
    argparse.ArgumentParser
        The subcommand's parser (its ``handler`` default is :func:`run`).
    """
    p = subparsers.add_parser(
        "assign",
        help="staff every grid: assign grid workers, leaders, police, part-time workers, "
        "volunteers, mediators and legal advisers; write roster.csv, grids.geojson, "
        "shortages.csv, staffing_report.json and map.html",
        description="Assign the people of a roster to grids and communities with OR-Tools "
        "(min-cost flow or CP-SAT), meeting the staffing policy and minimising home-to-grid "
        "distance plus penalties for crossing community lines and unbalanced workload.",
    )
    g = p.add_argument_group("inputs")
    g.add_argument("--grids", required=True, metavar="DIR_or_grids.geojson",
                   help="the output folder of `gridkit partition`, or its grids.geojson")
    g.add_argument("--workers", required=True, metavar="PATH",
                   help="roster: CSV/XLSX with worker_id, name, role and lon/lat and/or "
                   "home_community (or a point layer); see docs/staffing.md")
    g.add_argument("--policy", metavar="FILE",
                   help="staffing policy (TOML); default: gridkit/policies/default.toml")
    g.add_argument("--buildings", metavar="PATH",
                   help="the buildings that building roles of the policy (scope = \"building\", "
                   "楼栋长) serve; default: the buildings.geojson beside --grids")
    g.add_argument("--previous", metavar="PATH",
                   help="an earlier `gridkit assign` output folder (or its roster.csv): keep "
                   "people where the rules still allow, moving as few as possible")
    g.add_argument("--lon-col", metavar="COL", help="longitude column of the roster")
    g.add_argument("--lat-col", metavar="COL", help="latitude column of the roster")
    g.add_argument("--input-crs", metavar="CRS",
                   help="CRS of the roster's coordinates: wgs84, gcj02 (Amap/Tencent), bd09 "
                   "(Baidu) or EPSG:nnnn (default for tables: wgs84, with a warning)")
    g.add_argument("--workers-layer", metavar="NAME",
                   help="layer of a multi-layer file, or sheet of a workbook")
    s = p.add_argument_group("solver")
    s.add_argument("--time-limit", type=float, default=10.0,
                   help="CP-SAT budget per role and phase, deterministic seconds "
                   "(default: %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    s.add_argument("--threads", type=int, default=1,
                   help="CP-SAT workers, interleaved so results stay reproducible "
                   "(default: %(default)s)")
    o = p.add_argument_group("output")
    o.add_argument("--out", required=True, metavar="DIR", help="output folder")
    o.add_argument("--include-phone", action="store_true",
                   help="write full phone numbers to roster.csv (personal data; masked as "
                   "138****5678 otherwise)")
    o.add_argument("--no-map", action="store_true", help="do not write map.html")
    add_map_mode_options(o)
    add_lang_option(o)
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    o.add_argument("-v", "--verbose", action="store_true", help="log every step")
    p.set_defaults(handler=run)
    return p


def _summary_lines(
    summary: dict[str, Any],
    hires: Any,
    paths: dict[str, Path],
    grids: Any = None,
    lang: str = "en",
) -> list[str]:
    t = summary["totals"]
    lines = [
        f"gridkit {summary['gridkit_version']}: {t['people']} people for {t['grids']} grids in "
        f"{t['communities']} communities ({t['households']:,} households) in "
        f"{summary['timing']['total_s']:.1f} s",
        f"  assigned {t['assigned_people']}, unavailable {t['unavailable_people']}, spare "
        f"{t['spare_people']}, idle {t['idle_people']}; {t['grids_fully_staffed']} of "
        f"{t['grids']} grids fully staffed",
        f"  slots filled {t['slots_filled']} (required {t['slots_required']}), missing "
        f"{t['slots_missing']}; total home-to-grid distance {t['total_distance_m']:,.0f} m "
        f"(mean {t['mean_distance_m'] or 0:,.0f} m), {t['cross_community_assignments']} "
        "across community lines",
        f"  solver: {'all roles proven optimal' if t['all_optimal'] else 'not all proven'}"
        f", largest gap {t['max_gap']:.2%}",
    ]
    if grids is not None and "status" in grids:
        counts = {str(k): int(v) for k, v in grids["status"].value_counts().items()}
        lines.insert(1, "  " + headline(counts, lang="zh" if lang == "zh" else "en"))
    for role, r in summary["roles"].items():
        lines.append(
            f"    {role:<14}{r['people_assigned']:>4}/{r['people_available']:<4} people "
            f"{r['filled']:>4} filled {r['missing']:>3} missing  {r['solver']['method']:<16}"
            f"{r['solver']['status']:<9}gap {r['solver']['gap']:.2%}  ({r['label_zh']})"
        )
    if "restaffing" in t:
        rs = t["restaffing"]
        lines.append(
            f"  re-staffing: {rs['people_kept_in_place']} of {rs['people_previously_assigned']}"
            f" kept in place, {rs['people_moved']} moved, {rs['people_released']} released, "
            f"{rs['people_new']} new"
        )
    if len(hires):
        lines.append(f"  short of people: {t['new_people_needed']} more would close every gap:")
        for h in hires.itertuples(index=False):
            lines.append(f"    {h.people} {h.role} for {h.community_name} ({h.community_id}): "
                         f"{h.units}")
    lines.append("  wrote: " + ", ".join(str(p) for p in paths.values()))
    return lines


def run(args: argparse.Namespace) -> int:
    """Run ``gridkit assign`` with parsed ``args``; return the exit code.

    Reads the grids and the roster, assigns, writes the outputs and prints a short
    summary (unless ``--quiet``).  A :class:`~gridkit.errors.GridkitError` is printed as
    ``error: ...`` to stderr and gives exit code 2.
    """
    try:
        grids = read_staffing_grids(args.grids)
        workers = read_workers(
            args.workers, lon_col=args.lon_col, lat_col=args.lat_col,
            input_crs=args.input_crs, layer=args.workers_layer, policy=args.policy,
        )
        plan = assign_workers(
            grids, workers, policy=args.policy, previous=args.previous,
            buildings=args.buildings,
            time_limit=args.time_limit, seed=args.seed, threads=args.threads,
            include_phone=args.include_phone, verbose=not args.quiet,
        )
        paths = plan.write(args.out, map_html=not args.no_map, offline=not args.online_map)
    except GridkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write to output folder '{args.out}' (--out): {exc}; pass a "
              "folder you can write to.", file=sys.stderr)
        return 2
    if not args.quiet:
        print("\n".join(_summary_lines(plan.summary, plan.hires, paths, plan.grids, args.lang)))
    return 0
