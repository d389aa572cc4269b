"""Command line: the ``gridkit`` parser, ``main``, and the ``partition`` and ``map`` commands.

Each further command family registers its sub-commands from its own module:
:mod:`~gridkit.cli.exchange` (``audit``, ``export``), :mod:`~gridkit.cli.assign`
(``assign``), :mod:`~gridkit.cli.regenerate` (``regenerate``) and :mod:`~gridkit.cli.locate`
(``locate``).  Options shared by several commands live in :mod:`~gridkit.cli.options`, the
reading and writing of their files in :mod:`~gridkit.cli.files`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from gridkit.cli import assign, exchange, files, locate, regenerate
from gridkit.cli.options import (
    add_grid_options,
    add_input_options,
    add_layer_options,
    add_map_mode_options,
    add_output_options,
)
from gridkit.errors import GridkitError, InputError
from gridkit.export import check_set, headline, read_output_layer
from gridkit.maps import explore, overview_png, save_map, size_histogram_png
from gridkit.partition import PROGRESS_ENV
from gridkit.pipeline import DEFAULT_CHUNK_ROWS, DEFAULT_WORK, HouseholdFile, partition_files
from gridkit.utils import __version__, progress_class

__all__ = ["main"]

log = logging.getLogger("gridkit")


def _add_execution_options(p: argparse.ArgumentParser) -> None:
    """Where communities are solved, the work folder and resuming (docs/cluster.md)."""
    e = p.add_argument_group("execution (docs/cluster.md)")
    e.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="solve communities on Dask: `local` starts a cluster of --jobs workers on this "
        "machine, tcp://HOST:PORT uses a running `dask scheduler` (default: local processes; "
        "the output does not depend on it)",
    )
    e.add_argument(
        "--work-dir",
        metavar="DIR",
        help="folder for the household shards and per-community results (default: "
        "OUT/.gridkit-work, removed after a run in which every community succeeded)",
    )
    e.add_argument(
        "--resume",
        action="store_true",
        help="reuse what an interrupted or partly failed run left in the work folder: only "
        "communities without a result for the same inputs, settings and code are solved",
    )
    e.add_argument(
        "--chunk-rows",
        type=int,
        default=DEFAULT_CHUNK_ROWS,
        metavar="N",
        help="household rows read at a time (default: %(default)s)",
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridkit",
        description="Community grid management: split communities into contiguous "
        "grids of 400-800 households.",
    )
    parser.add_argument("--version", action="version", version=f"gridkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "partition",
        help="split every community into grids and write grids.geojson, assignments.csv, "
        "report.json and map.html",
        description="Split every community into contiguous grids within the household bounds.",
    )
    add_input_options(p)
    add_grid_options(p)
    add_layer_options(p)
    grids = p.add_argument_group("grids")
    grids.add_argument(
        "--prove",
        action="store_true",
        help="spend the budget on proofs: communities above 20 buildings get the whole exact "
        "model (a proven gap, slow) instead of the faster multilevel search",
    )
    add_map_mode_options(add_output_options(p))
    _add_execution_options(p)
    p.set_defaults(handler=_partition)
    _add_map_parser(sub)
    exchange.register(sub)
    assign.register(sub)
    regenerate.register(sub)
    locate.register(sub)
    return parser


def _add_map_parser(sub) -> None:
    p = sub.add_parser(
        "map",
        help="draw the grids of an output folder as an interactive map (and a PNG)",
        description="Draw DIR/grids.geojson (from `gridkit partition` or `gridkit assign`) as "
        "a folium map: grids by households or status, names, community and street outlines.",
    )
    p.add_argument("dir", metavar="DIR", help="output folder, or a grids.geojson file")
    p.add_argument("--out", metavar="PATH", help="map file (default: DIR/map.html)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--offline",
        dest="online",
        action="store_false",
        default=False,
        help="embed the JavaScript/CSS so the page works with no internet (the default)",
    )
    mode.add_argument(
        "--online",
        dest="online",
        action="store_true",
        help="load the JavaScript/CSS from public CDNs (and OpenStreetMap tiles unless "
        "--basemap says otherwise)",
    )
    p.add_argument(
        "--basemap",
        choices=["osm", "amap", "tianditu", "none"],
        default=None,
        help="background tiles (default: none, or osm with --online); web tiles on an "
        "offline page show when the computer is online, and a note says when they cannot "
        "be reached",
    )
    p.add_argument("--tianditu-key", metavar="KEY", help="your Tianditu key (basemap tianditu)")
    p.add_argument("--tiles-url", metavar="URL", help="local/intranet tile server URL template")
    p.add_argument(
        "--tiles-crs",
        choices=["wgs84", "gcj02"],
        default="wgs84",
        help="coordinate system of --tiles-url tiles (default: %(default)s)",
    )
    p.add_argument("--color-by", choices=["households", "status"], default="households")
    p.add_argument("--lang", choices=["zh", "en"], default="zh", help="labels (default: zh)")
    p.add_argument(
        "--png",
        metavar="PATH",
        help="also write a static overview PNG for printed reports (filled as --color-by)",
    )
    p.add_argument(
        "--histogram",
        metavar="PATH",
        help="also write a PNG histogram of households per grid, the bounds marked",
    )
    p.set_defaults(handler=_map)


def _map(args: argparse.Namespace) -> int:
    import pandas as pd
    import shapely

    src = Path(args.dir)
    path = src / "grids.geojson" if src.is_dir() else src
    if not path.exists():
        raise InputError(
            f"no grid layer at '{path}': pass the folder written by `gridkit partition` "
            "(it holds grids.geojson) or a grids.geojson file."
        )
    if path.name == "grids.geojson":
        check_set(path.parent, ["grids.geojson", "buildings.geojson"])
    fix = (
        "Write the folder again with `gridkit partition` (or `gridkit regenerate`), or pass "
        "another grid layer."
    )
    grids = read_output_layer(path, what="grid layer", fix=fix)
    missing = [c for c in ("grid_code", "households", "status", "community_id") if c not in grids]
    if missing:
        raise InputError(
            f"'{path}' lacks the grid columns {', '.join(missing)}: it does not look like a "
            "gridkit grid layer. Make one with `gridkit partition` (or audit a hand-drawn "
            "map with `gridkit audit`)."
        )
    hh = pd.to_numeric(grids["households"], errors="coerce")
    if hh.isna().any() or not shapely.is_valid(grids.geometry.to_numpy()).all():
        rows = sorted(
            set((hh.isna().to_numpy().nonzero()[0] + 1).tolist())
            | set((~shapely.is_valid(grids.geometry.to_numpy())).nonzero()[0] + 1)
        )
        raise InputError(
            f"'{path}' has grids with a non-numeric `households` value or an invalid polygon "
            f"(features {', '.join(map(str, rows[:10]))}{' …' if len(rows) > 10 else ''}): it "
            f"was edited or damaged. {fix}"
        )
    grids["community_id"] = grids["community_id"].astype(str)
    communities = grids.dissolve(by="community_id", as_index=False, aggfunc="first")
    buildings_path = path.parent / "buildings.geojson"
    buildings = (
        read_output_layer(buildings_path, what="building layer", fix=fix)
        if buildings_path.exists()
        else None
    )
    m = explore(
        grids,
        communities=communities,
        households=buildings,
        color_by=args.color_by,
        basemap=args.basemap,
        tianditu_key=args.tianditu_key,
        tiles_url=args.tiles_url,
        tiles_crs=args.tiles_crs,
        lang=args.lang,
        offline=not args.online,
    )
    out = Path(args.out) if args.out else path.parent / "map.html"
    written = [save_map(m, out)]
    if args.png:
        written.append(
            overview_png(
                grids, args.png, communities=communities, lang=args.lang, color_by=args.color_by
            )
        )
    if args.histogram:
        written.append(
            size_histogram_png(grids, args.histogram, lang=args.lang, **_bounds_of(path.parent))
        )
    counts = {str(k): int(v) for k, v in grids["status"].value_counts().items()}
    print(headline(counts, lang=args.lang))
    for w in written:
        print(f"wrote {w}")
    return 0


def _bounds_of(folder: Path) -> dict[str, int]:
    """``min_households`` / ``max_households`` from the folder's report.json, when known."""
    import json

    try:
        params = json.loads((folder / "report.json").read_text(encoding="utf-8"))["parameters"]
        return {k: int(params[k]) for k in ("min_households", "max_households")}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _partition(args: argparse.Namespace) -> int:
    tqdm = progress_class()

    files.check_out_dir(args.out)
    communities = files.read_communities(args)
    households = HouseholdFile(
        args.households,
        id_col=args.id_col,
        households_col=args.households_col,
        building_col=args.building_col,
        lon_col=args.lon_col,
        lat_col=args.lat_col,
        input_crs=args.input_crs,
        layer=args.households_layer,
    )
    work_dir = Path(args.work_dir) if args.work_dir else Path(args.out) / DEFAULT_WORK

    def report_failure(failure) -> None:
        if not args.quiet:
            tqdm.write(f"community {failure.community_id} failed: {failure.error}", file=sys.stderr)

    progress_before = os.environ.get(PROGRESS_ENV)
    if not args.quiet:  # long searches say how they are going, from every worker
        os.environ[PROGRESS_ENV] = "1"
    try:
        run = partition_files(
            communities,
            households,
            args.out,
            min_households=args.min_households,
            max_households=args.max_households,
            target_households=args.target_households,
            time_limit=args.time_limit,
            seed=args.seed,
            jobs=args.jobs,
            scheduler=args.scheduler,
            work_dir=args.work_dir,
            resume=args.resume,
            chunk_rows=args.chunk_rows,
            keep_compounds=args.keep_compounds,
            compounds=files.read_compounds(args),
            barriers=(
                files.read_layer(args.barriers, "barriers", "--barriers") if args.barriers else None
            ),
            prove=args.prove,
            merge_distance=args.merge_distance,
            compound_buildings_col=args.compound_buildings_col,
            dedicated=files.read_dedicated_parcels(args),
            community_rules=args.community_rules,
            map_html=not args.no_map,
            offline=not args.online_map,
            lang=args.lang,
            verbose=not args.quiet,
            on_failure=report_failure,
        )
    except KeyboardInterrupt:
        print(
            f"interrupted: the communities solved so far are kept in '{work_dir}'; run the same "
            "command with --resume to go on from there.",
            file=sys.stderr,
        )
        return 130
    finally:
        if progress_before is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = progress_before
    if not args.quiet:
        files.print_summary(run.report, run.paths, extra=_run_lines(run), lang=args.lang)
    if run.failures:
        total = run.report["totals"]["communities"]
        lines = [
            f"error: {len(run.failures)} of {total} communities could not be partitioned and "
            "have no grids (their households are unassigned with reason community_failed; "
            "report.json lists them under failed_communities):"
        ]
        lines += [f"  {f.community_id}: {f.error}" for f in run.failures.values()]
        lines.append(
            "The outputs hold every other community. Fix the cause, then run the same command "
            f"with --resume to solve only these (tracebacks in '{run.work_dir}/failed')."
        )
        print("\n".join(lines), file=sys.stderr)
        return 3
    return 0


def _n(count: int, one: str, many: str) -> str:
    """``1 community``, ``2 communities``."""
    return f"{count} {one if count == 1 else many}"


def _run_lines(run) -> list[str]:
    """How the communities were solved: back-end, reused results, time per community."""
    import numpy as np

    line = f"  ran on {run.backend}: {_n(run.solved, 'community', 'communities')} solved"
    if run.reused:
        line += f", {run.reused} taken from the work folder (--resume)"
    if run.failures:
        line += f", {len(run.failures)} failed"
    lines = [line]
    if run.task_times:
        t = np.asarray(run.task_times)
        lines.append(
            f"  time per community: mean {t.mean():.2f} s, median {np.median(t):.2f} s, "
            f"p95 {np.percentile(t, 95):.2f} s, max {t.max():.2f} s"
        )
    if run.dashboard:
        lines.append(f"  Dask dashboard: {run.dashboard}")
    return lines


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gridkit`` command; returns the exit code.

    0 ok; 2 an error stopped the command (bad input, unreachable scheduler: an
    ``error:`` message names the cause and the fix); 3 ``partition`` finished but some
    communities could not be partitioned (outputs written without them, listed on
    stderr and in report.json; ``--resume`` retries only those); 130 interrupted.
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    level = logging.INFO if getattr(args, "verbose", False) else logging.WARNING
    before = list(logging.getLogger().handlers)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        if handler not in before:
            # Libraries that set their own logger levels (Dask's are at INFO) stay quiet too.
            handler.setLevel(level)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        try:
            return args.handler(args)
        except GridkitError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:  # unwritable --out, permission denied, disk full ...
            print(
                f"error: {exc.strerror or exc} ({exc.filename or ''}): check the path and its "
                "permissions, or choose another --out folder.",
                file=sys.stderr,
            )
            return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
