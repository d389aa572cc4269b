"""Command line: ``gridkit regenerate`` (a thin wrapper over :func:`gridkit.regenerate.regenerate`).

:func:`register` adds the subcommand to the ``gridkit`` parser and sets ``handler``
(``args.handler(args)`` returns the exit code).  The caller configures logging and
warnings and turns a :class:`~gridkit.errors.GridkitError` into ``error: ...`` and exit
code 2, as for ``gridkit partition``.
"""

from __future__ import annotations

import argparse
from typing import Any

from gridkit.cli.files import (
    check_out_dir,
    print_summary,
    read_compounds,
    read_dedicated_parcels,
    read_inputs,
    read_layer,
    write_plan,
)
from gridkit.cli.options import (
    add_grid_options,
    add_input_options,
    add_layer_options,
    add_map_mode_options,
    add_output_options,
)
from gridkit.regenerate import regenerate

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``regenerate`` subcommand.

    Parameters
    ----------
    subparsers
        What ``argparse.ArgumentParser.add_subparsers()`` returned.
    """
    p = subparsers.add_parser(
        "regenerate",
        help="redraw the grids after housing changed: keep valid grids and their codes, "
        "write the new layer plus changes.csv, diff.geojson and summary.json",
        description="Regenerate a grid map for changed inputs (new or demolished buildings, "
        "new household counts, edited community boundaries) with as little change as "
        "possible: valid grids keep their buildings and codes; broken grids and their "
        "neighbours are re-solved minimising the households that change grid.",
    )
    p.add_argument(
        "--previous",
        required=True,
        metavar="OLD_DIR",
        help="output folder of an earlier `gridkit partition`/`regenerate`, or its grids.geojson",
    )
    add_input_options(p)
    add_grid_options(p, time_limit=10.0, budget="re-solved area")
    add_layer_options(p)
    add_map_mode_options(add_output_options(p))
    p.set_defaults(handler=run)


def format_summary(summary: dict, lang: str = "en") -> str:
    """The regeneration figures as a few lines of text (``lang``: "en" or "zh")."""
    if lang == "zh":
        lines = [
            f"住户未变网格：{summary['households_unchanged_pct']}%"
            f"（{summary['households_in_previous_grids']:,} 户中 "
            f"{summary['households_unchanged']:,} 户；调整 {summary['households_moved']:,} 户，"
            f"新增 {summary['households_new']:,} 户，新划入 {summary['households_placed']:,} 户）",
            f"网格：保留 {summary['grids_kept']} 个，调整 {summary['grids_changed']} 个，新增 "
            f"{summary['grids_added']} 个，撤销 {summary['grids_retired']} 个"
            f"（{summary['grids_previous']} → {summary['grids']}）",
        ]
        if summary["added_codes"]:
            lines.append("  新增编码：" + "、".join(summary["added_codes"]))
        if summary["retired_codes"]:
            lines.append("  撤销编码（永不复用）：" + "、".join(summary["retired_codes"]))
        return "\n".join(lines)
    lines = [
        f"households unchanged: {summary['households_unchanged_pct']}% "
        f"({summary['households_unchanged']:,} of {summary['households_in_previous_grids']:,}; "
        f"{summary['households_moved']:,} moved, {summary['households_new']:,} new, "
        f"{summary['households_placed']:,} placed)",
        f"grids: {summary['grids_kept']} kept, {summary['grids_changed']} changed, "
        f"{summary['grids_added']} added, {summary['grids_retired']} retired "
        f"({summary['grids_previous']} -> {summary['grids']})",
    ]
    if summary["added_codes"]:
        lines.append("  added codes: " + ", ".join(summary["added_codes"]))
    if summary["retired_codes"]:
        lines.append("  retired codes (never reused): " + ", ".join(summary["retired_codes"]))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``gridkit regenerate``; returns the exit code."""
    check_out_dir(args.out)
    communities, households = read_inputs(args)
    barriers = read_layer(args.barriers, "barriers", "--barriers") if args.barriers else None
    plan = regenerate(
        args.previous,
        communities,
        households,
        min_households=args.min_households,
        max_households=args.max_households,
        target_households=args.target_households,
        time_limit=args.time_limit,
        seed=args.seed,
        jobs=args.jobs,
        verbose=not args.quiet,
        keep_compounds=args.keep_compounds,
        compounds=read_compounds(args),
        barriers=barriers,
        merge_distance=args.merge_distance,
        compound_buildings_col=args.compound_buildings_col,
        dedicated=read_dedicated_parcels(args),
        community_rules=args.community_rules,
    )
    paths = write_plan(plan, args, offline=not args.online_map)
    if not args.quiet:
        print_summary(plan.report, paths, lang=args.lang)
        print(format_summary(plan.summary, lang=args.lang))
    return 0
