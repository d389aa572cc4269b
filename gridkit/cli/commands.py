"""Command line: ``gridkit partition`` (a thin wrapper over the public functions)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from gridkit.errors import GridkitError, InputError
from gridkit.partition import PROGRESS_ENV
from gridkit.units import MERGE_DISTANCE
from gridkit.utils import __version__

__all__ = ["main"]

log = logging.getLogger("gridkit")


def add_household_options(g) -> None:
    """Options that say how to read the households file (shared by several commands)."""
    g.add_argument(
        "--id-col", metavar="COL", help="household row id column (default: the row number)"
    )
    g.add_argument(
        "--households-col",
        metavar="COL",
        help="households per row (default: households, hh, 户数; else 1 per row)",
    )
    g.add_argument(
        "--building-col",
        metavar="COL",
        help="building id column: rows sharing it form one building",
    )
    g.add_argument("--lon-col", metavar="COL", help="longitude column of a CSV")
    g.add_argument("--lat-col", metavar="COL", help="latitude column of a CSV")
    g.add_argument("--households-layer", metavar="NAME", help="layer of a multi-layer file")


def add_grid_options(
    p: argparse.ArgumentParser, *, time_limit: float = 5.0, budget: str = "community"
) -> None:
    """Household bounds and solver options (partition, regenerate)."""
    g = p.add_argument_group("grids")
    g.add_argument("--min-households", type=int, default=400, help="default: %(default)s")
    g.add_argument("--max-households", type=int, default=800, help="default: %(default)s")
    g.add_argument(
        "--target-households",
        type=int,
        default=None,
        help="preferred grid size (default: middle of the bounds)",
    )
    g.add_argument(
        "--time-limit",
        type=float,
        default=time_limit,
        help=f"solver budget per {budget}, deterministic seconds (default: %(default)s)",
    )
    g.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    g.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="processes solving communities in parallel (default: all cores, one solver "
        "thread each; the output does not depend on it)",
    )


def add_output_options(p: argparse.ArgumentParser):
    """``--out``, ``--no-map``, ``-q`` and ``-v``; returns the group to add more."""
    o = p.add_argument_group("output")
    o.add_argument("--out", required=True, metavar="DIR", help="output folder")
    o.add_argument("--no-map", action="store_true", help="do not write map.html")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    o.add_argument("-v", "--verbose", action="store_true", help="log every step")
    add_lang_option(o)
    return o


def add_lang_option(g) -> None:
    """``--lang zh|en``: language of the summary printed (and of maps where drawn)."""
    g.add_argument(
        "--lang",
        choices=["zh", "en"],
        default="zh",
        help="language of the printed summary (default: %(default)s)",
    )


def add_layer_options(p: argparse.ArgumentParser) -> None:
    """``--barriers``, ``--compounds`` and the building options (partition, regenerate)."""
    grids = p.add_argument_group("grids")
    grids.add_argument(
        "--barriers",
        metavar="PATH",
        help="roads, rivers, railways, walls (lines, any vector format, optional `name`): "
        "grids do not cross them unless the bounds cannot be met otherwise",
    )
    grids.add_argument(
        "--compounds",
        metavar="PATH",
        help="compound (小区) outlines (polygons, any vector format): each compound of at most "
        "--max-households stays in one grid, a larger one is split into as few grids as "
        "possible (replaces a `compound` column of the households)",
    )
    grids.add_argument(
        "--compound-name-col",
        metavar="COL",
        help="column naming each compound in --compounds (default: name, compound, 名称 or 小区)",
    )
    compound_mode = grids.add_mutually_exclusive_group()
    compound_mode.add_argument(
        "--keep-compounds",
        dest="keep_compounds",
        action="store_true",
        default=True,
        help="respect compounds (--compounds or a `compound` column on the households); "
        "the default",
    )
    compound_mode.add_argument(
        "--ignore-compounds",
        dest="keep_compounds",
        action="store_false",
        help="partition building by building, ignoring compounds",
    )
    grids.add_argument(
        "--merge-distance",
        type=float,
        default=MERGE_DISTANCE,
        metavar="M",
        help="household points without a building id closer than M metres form one building "
        "(default: %(default)s; 0: only points at one location)",
    )
    grids.add_argument(
        "--compound-buildings-col",
        metavar="COL",
        help="when every household row is a whole compound (one point per 小区): the column "
        "with its number of buildings (default: buildings, 楼栋数 or 楼栋总数); a compound above "
        "--max-households is split into the fewest grids of whole buildings (split_compound)",
    )


def add_map_mode_options(o) -> None:
    """``--offline-map`` (the default) and ``--online-map`` (shared by several commands)."""
    mode = o.add_mutually_exclusive_group()
    mode.add_argument(
        "--offline-map",
        dest="online_map",
        action="store_false",
        default=False,
        help="map.html that works with no internet: scripts embedded, no web basemap (the "
        "default; a note in its corner says that no basemap tiles are shown)",
    )
    mode.add_argument(
        "--online-map",
        dest="online_map",
        action="store_true",
        help="map.html that loads Leaflet from public CDNs and shows OpenStreetMap tiles "
        "(needs internet access when opened)",
    )


def add_input_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("inputs")
    g.add_argument(
        "--communities",
        required=True,
        metavar="PATH",
        help="community boundaries (GeoJSON, GeoPackage, Shapefile)",
    )
    g.add_argument(
        "--households",
        required=True,
        metavar="PATH",
        help="household or building points/footprints (GeoJSON, GPKG, SHP, CSV)",
    )
    g.add_argument(
        "--community-id",
        metavar="COL",
        help="community id column (default: community_id, id or code)",
    )
    g.add_argument("--name-col", metavar="COL", help="community name column")
    g.add_argument("--street-col", metavar="COL", help="street (街道) column")
    g.add_argument("--communities-layer", metavar="NAME", help="layer of a multi-layer file")
    add_household_options(g)
    g.add_argument(
        "--input-crs",
        metavar="CRS",
        help="CRS of the households file (a CSV declares none) and of a communities file "
        "that declares none: wgs84, gcj02 (Amap/Tencent), bd09 (Baidu) or EPSG:nnnn",
    )
    g.add_argument(
        "--communities-crs",
        metavar="CRS",
        help="CRS of the communities file, overriding what it declares "
        "(e.g. bd09 for outlines traced on Baidu maps)",
    )


def _add_execution_options(p: argparse.ArgumentParser) -> None:
    """Where communities are solved, the work folder and resuming (docs/cluster.md)."""
    from gridkit.pipeline import DEFAULT_CHUNK_ROWS

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
    p.add_argument_group("grids").add_argument(
        "--prove",
        action="store_true",
        help="spend the budget on proofs: communities above 20 buildings get the whole exact "
        "model (a proven gap, slow) instead of the faster multilevel search",
    )
    add_map_mode_options(add_output_options(p))
    _add_execution_options(p)
    p.set_defaults(handler=_partition)
    _add_map_parser(sub)
    from gridkit.cli.exchange import register as register_exchange

    register_exchange(sub)
    from gridkit.cli import assign as _cli_assign

    _cli_assign.register(sub)
    from gridkit.cli.regenerate import register as register_regenerate

    register_regenerate(sub)
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

    from gridkit.maps import explore, overview_png, save_map

    src = Path(args.dir)
    path = src / "grids.geojson" if src.is_dir() else src
    if not path.exists():
        raise InputError(
            f"no grid layer at '{path}': pass the folder written by `gridkit partition` "
            "(it holds grids.geojson) or a grids.geojson file."
        )
    from gridkit.export import check_set, read_output_layer

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
        from gridkit.maps import size_histogram_png

        written.append(
            size_histogram_png(grids, args.histogram, lang=args.lang, **_bounds_of(path.parent))
        )
    from gridkit.export import headline

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


def print_summary(
    report: dict, paths: dict[str, Path], extra: Sequence[str] = (), *, lang: str = "zh"
) -> None:
    """Print a partition or regenerate report: the headline, then what needs attention.

    Parameters
    ----------
    report
        The ``report.json`` dict.
    paths
        The files written, by kind.
    extra
        More lines (how the run went), printed before the files.
    lang
        {"zh", "en"}: language of the headline and the attention list.
    """
    from gridkit.export import attention_lines, headline, information_line

    t = report["totals"]
    zh = lang == "zh"
    if zh:
        first = (
            f"gridkit {report['gridkit_version']}：{t['communities']} 个社区，"
            f"{t['households']:,} 户（{t['household_rows']:,} 行"
            + (f"，{t['buildings']:,} 栋楼" if "buildings" in t else "")
            + f"）→ {t['grids']} 个网格，用时 {t['time_s']:.1f} 秒"
        )
        assigned = (
            f"  住户已分入网格 {t['households_assigned']:,} 户；未分入 "
            f"{t['households_unassigned']:,} 户（{t['rows_unassigned']} 行）"
        )
    else:
        first = (
            f"gridkit {report['gridkit_version']}: {t['communities']} communities, "
            f"{t['households']:,} households in {t['household_rows']:,} rows"
            + (f" ({t['buildings']:,} buildings)" if "buildings" in t else "")
            + f" -> {t['grids']} grids in {t['time_s']:.1f} s"
        )
        assigned = (
            f"  households assigned: {t['households_assigned']:,}; unassigned: "
            f"{t['households_unassigned']:,} ({t['rows_unassigned']} rows)"
        )
    lines = [first, "  " + headline(t["grids_by_status"], lang=lang), assigned]
    for reason, info in t["unassigned_by_reason"].items():
        rows = f"{info['rows']} 行" if zh else f"{info['rows']} rows"
        lines.append(f"    {reason}: {rows} ({info['meaning']})")
    lines += attention_lines(report, lang=lang)
    info_line = information_line(report, lang=lang)
    if info_line:
        lines.append(info_line)
    statuses: dict[str, int] = {}
    for c in report["communities"]:
        statuses[c["solver_status"]] = statuses.get(c["solver_status"], 0) + 1
    lines.append(
        ("  求解状态：" if zh else "  solver: ")
        + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
    )
    lines += list(extra)
    lines.append(("  已写出：" if zh else "  wrote: ") + ", ".join(str(p) for p in paths.values()))
    print("\n".join(lines))


def check_out_dir(out: str) -> None:
    """Fail before any work when ``--out`` cannot become a folder we write to."""
    path = Path(out)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is" if existing == path else f"is inside '{existing}', which is"
        msg = (
            f"output folder '{out}' (--out) {what} a file, not a folder: pass the path of a "
            "folder (it is created if missing)."
        )
        raise InputError(msg)
    if not os.access(existing, os.W_OK | os.X_OK):
        msg = (
            f"output folder '{out}' (--out): no permission to write in '{existing}'; pass a "
            "folder you can write to."
        )
        raise InputError(msg)


def resolve_grids_path(path: str, flag: str) -> Path:
    """The grid layer a command reads: ``DIR/grids.geojson`` for an output folder, else ``path``.

    Every command that reads grids (``map``, ``assign``, ``audit``, ``export``,
    ``regenerate --previous``) accepts the output folder of another command as well
    as the file itself.

    Raises
    ------
    InputError
        When ``path`` is a folder without ``grids.geojson``.
    """
    p = Path(path)
    if not p.is_dir():
        return p
    grids = p / "grids.geojson"
    if not grids.is_file():
        raise InputError(
            f"folder '{p}' ({flag}) holds no grids.geojson: pass the folder written by "
            "`gridkit partition`, `regenerate` or `assign`, or the grid file itself "
            "(GeoJSON, GeoPackage or Shapefile)."
        )
    return grids


def read_communities(args: argparse.Namespace):
    """Read ``--communities`` with the CLI's options (shared by several commands).

    ``--communities-crs`` overrides the file's CRS; ``--input-crs`` applies only when
    the file declares none.
    """
    from gridkit.io import read_boundaries

    return read_boundaries(
        args.communities,
        id_col=args.community_id,
        name_col=getattr(args, "name_col", None),
        street_col=getattr(args, "street_col", None),
        input_crs=args.communities_crs
        or _undeclared(args.communities, args.input_crs, args.communities_layer),
        layer=args.communities_layer,
    )


def read_household_rows(args: argparse.Namespace):
    """Read ``--households`` with the CLI's options (shared by several commands)."""
    from gridkit.io import read_households

    return read_households(
        args.households,
        id_col=args.id_col,
        households_col=args.households_col,
        building_col=args.building_col,
        lon_col=args.lon_col,
        lat_col=args.lat_col,
        input_crs=args.input_crs,
        layer=args.households_layer,
    )


def read_inputs(args: argparse.Namespace):
    """Communities and households, checked against each other for swapped lon/lat."""
    from gridkit.io import check_swapped_against

    communities = read_communities(args)
    households = read_household_rows(args)
    check_swapped_against(households, communities)
    return communities, households


def read_layer(path: str, what: str, flag: str):
    """Read an extra layer (barriers, compounds; any vector format pyogrio reads)."""
    import geopandas as gpd

    if not Path(path).exists():
        raise InputError(f"{what} file '{path}' ({flag}) not found: check the path.")
    try:
        layer = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InputError(
            f"cannot read {what} file '{path}' ({flag}): {exc}. Use GeoJSON, "
            "GeoPackage or Shapefile."
        ) from exc
    layer.attrs["source"] = f"{what} file '{path}'"
    return layer


def read_compounds(args: argparse.Namespace):
    """The --compounds layer with the name column chosen by --compound-name-col as ``name``."""
    if not args.compounds:
        if args.compound_name_col:
            raise InputError("--compound-name-col needs --compounds PATH (the compound outlines).")
        return None
    compounds = read_layer(args.compounds, "compounds", "--compounds")
    col = args.compound_name_col
    if col is not None:
        if col not in compounds:
            raise InputError(
                f"compounds file '{args.compounds}' has no column '{col}' "
                f"(--compound-name-col); it has: "
                f"{', '.join(map(str, compounds.columns.drop('geometry')))}."
            )
        compounds = compounds.rename(columns={c: f"_{c}" for c in ("name",) if c != col})
        compounds = compounds.rename(columns={col: "name"})
    return compounds


def _partition(args: argparse.Namespace) -> int:
    from gridkit.utils import progress_class

    tqdm = progress_class()

    from gridkit.pipeline import DEFAULT_WORK, HouseholdFile, partition_files

    check_out_dir(args.out)
    communities = read_communities(args)
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
            compounds=read_compounds(args),
            barriers=read_layer(args.barriers, "barriers", "--barriers") if args.barriers else None,
            prove=args.prove,
            merge_distance=args.merge_distance,
            compound_buildings_col=args.compound_buildings_col,
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
        print_summary(run.report, run.paths, extra=_run_lines(run), lang=args.lang)
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


def write_plan(plan, args: argparse.Namespace, **options) -> dict[str, Path]:
    """``plan.write(args.out, ...)`` with an unwritable folder explained (shared by commands)."""
    try:
        return plan.write(args.out, map_html=not args.no_map, **options)
    except OSError as exc:
        raise InputError(
            f"cannot write the outputs to '{args.out}' (--out): {exc.strerror or exc} "
            f"({exc.filename or args.out}). Pass a folder you can write to."
        ) from exc


def _undeclared(path: str, crs: str | None, layer: str | None) -> str | None:
    """``crs`` when the file declares no CRS of its own, else None (keep the declared one).

    ``--input-crs`` is meant for the household table (CSV has no CRS) and for files
    without one; a boundaries file that declares its CRS keeps it unless
    ``--communities-crs`` says otherwise.
    """
    if crs is None:
        return None
    try:
        import pyogrio

        declared = pyogrio.read_info(path, layer=layer).get("crs")
    except Exception:  # unreadable here: let read_boundaries report it properly
        return crs
    return None if declared else crs


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
