"""Options shared by several ``gridkit`` commands: inputs, households, grids, layers, output.

Each ``add_*`` function adds one group of options to a parser (or to an argument group)
of ``partition``, ``regenerate``, ``audit`` and ``assign``, so that a flag means the same
everywhere.
"""

from __future__ import annotations

import argparse

from gridkit.units import MERGE_DISTANCE

__all__ = [
    "add_dedicated_options",
    "add_grid_options",
    "add_household_options",
    "add_input_options",
    "add_lang_option",
    "add_layer_options",
    "add_map_mode_options",
    "add_output_options",
]


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
        "--community-rules",
        metavar="FILE",
        help="household bounds by community type (TOML: [types.\"村\"] min_households = 200, "
        "max_households = 400), looked up in the communities' type column (community_type, "
        "type, 类型); min_households/max_households columns of the communities win over it, "
        "both over --min/--max-households",
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
    add_dedicated_options(grids)
    grids.add_argument(
        "--compound-buildings-col",
        metavar="COL",
        help="when every household row is a whole compound (one point per 小区): the column "
        "with its number of buildings (default: buildings, 楼栋数 or 楼栋总数); a compound above "
        "--max-households is split into the fewest grids of whole buildings (split_compound)",
    )


def add_dedicated_options(g, *, audit: bool = False) -> None:
    """``--dedicated PATH`` and how to read it (partition, regenerate, audit)."""
    g.add_argument(
        "--dedicated",
        metavar="PATH",
        help=(
            "dedicated-grid parcels (专属网格: schools, hospitals, parks, ...; polygons, any "
            "vector format, a `type` and optional `name` column): residential grids that "
            "overlap one are flagged `overlaps_dedicated`"
            if audit
            else "dedicated-grid parcels (专属网格: schools, hospitals, parks, enterprises, "
            "markets, ...; polygons, any vector format, with a `type` and optional `name` "
            "column): each is carved out of its community and becomes a grid of its own "
            "(coded 901-999, no household bounds)"
        ),
    )
    g.add_argument(
        "--dedicated-type-col",
        metavar="COL",
        help="type column of --dedicated (default: type, grid_type, 类型, kind or category)",
    )
    g.add_argument(
        "--dedicated-name-col",
        metavar="COL",
        help="name column of --dedicated (default: name, grid_name, 名称 or 单位名称)",
    )
    g.add_argument("--dedicated-layer", metavar="NAME", help="layer of a multi-layer file")


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
    """``--communities``, ``--households`` and how to read them (partition, regenerate)."""
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
